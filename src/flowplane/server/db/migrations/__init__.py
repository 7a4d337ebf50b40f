"""Alembic migrations of the flowplane database, run in-process (no alembic.ini)."""
