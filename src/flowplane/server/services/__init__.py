"""Background services the server runs beside the API (task-run recorder, event persister, ...)."""
