"""Lock managers for SERIALIZABLE caching: ``flowplane.locking.memory`` and ``flowplane.locking.filesystem``."""
