"""Workers: poll a work pool, claim its scheduled runs, launch each in its own process, watch them.

``flowplane worker start --pool NAME`` runs :class:`~flowplane.worker.process.ProcessWorker`.
"""

from flowplane.worker.process import ProcessWorker, WorkerOptions

__all__ = ["ProcessWorker", "WorkerOptions"]
