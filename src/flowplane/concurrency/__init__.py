"""Global concurrency limits and rate limits in flows, tasks and any Python code (``flowplane.concurrency.sync`` / ``.asyncio``)."""
