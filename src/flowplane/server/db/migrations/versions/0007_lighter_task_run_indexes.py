"""Task-run indexes: lighter for inserts (each is paid on millions of them), and one for reading task-run events.

- ``ix_task_run__flow_run_id`` goes: the unique (flow_run_id, task_key, dynamic_key)
  index starts with the flow run and serves the same lookups.
- ``next_scheduled_start_time`` and ``cache_key`` are set on few task runs (scheduled
  retries, cached results): their indexes now hold only the rows that have one; every
  query comparing either column implies it is not null, so both still serve them.
- Task-run events are no longer stored: they are read from task-run states, newest first
  within a time range, so states are indexed by (timestamp, id) instead of by type
  (which nothing filters them by): as many index entries per state as before.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_PARTIAL = {
    "ix_task_run__next_scheduled_start_time": "next_scheduled_start_time",
    "ix_task_run__cache_key": "cache_key",
}


def upgrade() -> None:
    op.drop_index("ix_task_run_state__type", table_name="task_run_state")
    op.create_index("ix_task_run_state__timestamp_id", "task_run_state", ["timestamp", "id"])
    op.drop_index("ix_task_run__flow_run_id", table_name="task_run")
    for name, column in _PARTIAL.items():
        op.drop_index(name, table_name="task_run")
        where = sa.text(f"{column} IS NOT NULL")
        op.create_index(name, "task_run", [column], sqlite_where=where, postgresql_where=where)


def downgrade() -> None:
    for name, column in _PARTIAL.items():
        op.drop_index(name, table_name="task_run")
        op.create_index(name, "task_run", [column])
    op.create_index("ix_task_run__flow_run_id", "task_run", ["flow_run_id"])
    op.drop_index("ix_task_run_state__timestamp_id", table_name="task_run_state")
    op.create_index("ix_task_run_state__type", "task_run_state", ["type"])
