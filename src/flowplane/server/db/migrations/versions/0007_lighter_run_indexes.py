"""Run indexes: lighter for inserts (each is paid on millions of them), and one for reading task-run events.

- ``ix_task_run__flow_run_id`` goes: the unique (flow_run_id, task_key, dynamic_key)
  index starts with the flow run and serves the same lookups.
- ``next_scheduled_start_time`` and ``cache_key`` are set on few task runs (scheduled
  retries, cached results), and a local flow run has no deployment, queue, pool, parent,
  idempotency key or schedule: those indexes now hold only the rows that have one;
  every query comparing such a column implies it is not null, so they still serve it.
- ``ix_flow_run__flow_id`` goes too: the unique (flow_id, idempotency_key) index
  starts with the flow.
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

#: (table, index, columns, the column that must be set): indexes of the rows that have one.
_PARTIAL = [
    ("task_run", "ix_task_run__next_scheduled_start_time", ["next_scheduled_start_time"], None),
    ("task_run", "ix_task_run__cache_key", ["cache_key"], None),
    ("flow_run", "ix_flow_run__deployment_id", ["deployment_id"], None),
    ("flow_run", "ix_flow_run__parent_task_run_id", ["parent_task_run_id"], None),
    ("flow_run", "ix_flow_run__next_scheduled_start_time", ["next_scheduled_start_time"], None),
    ("flow_run", "ix_flow_run__work_queue_name", ["work_queue_name"], None),
    (
        "flow_run",
        "ix_flow_run__work_queue_id_state_type",
        ["work_queue_id", "state_type"],
        None,
    ),
    ("flow_run", "ix_flow_run__idempotency_key", ["idempotency_key"], None),
    (
        "flow_run",
        "ix_flow_run__state_type_heartbeat_expires",
        ["state_type", "heartbeat_expires"],
        "heartbeat_expires",
    ),
]


def upgrade() -> None:
    op.drop_index("ix_task_run_state__type", table_name="task_run_state")
    op.create_index("ix_task_run_state__timestamp_id", "task_run_state", ["timestamp", "id"])
    op.drop_index("ix_task_run__flow_run_id", table_name="task_run")
    op.drop_index("ix_flow_run__flow_id", table_name="flow_run")
    for table, name, columns, set_column in _PARTIAL:
        op.drop_index(name, table_name=table)
        where = sa.text(f"{set_column or columns[0]} IS NOT NULL")
        op.create_index(name, table, columns, sqlite_where=where, postgresql_where=where)


def downgrade() -> None:
    for table, name, columns, _ in _PARTIAL:
        op.drop_index(name, table_name=table)
        op.create_index(name, table, columns)
    op.create_index("ix_flow_run__flow_id", "flow_run", ["flow_id"])
    op.create_index("ix_task_run__flow_run_id", "task_run", ["flow_run_id"])
    op.drop_index("ix_task_run_state__timestamp_id", table_name="task_run_state")
    op.create_index("ix_task_run_state__type", "task_run_state", ["type"])
