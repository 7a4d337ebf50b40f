"""Task-run tag concurrency limits held directly by a task run (``flowplane.concurrency.v1.sync`` / ``.asyncio``)."""
