"""Drop the ``updated`` indexes no query uses (every table but flow).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TABLES = (
    "csrf_token",
    "event",
    "event_resource",
    "log",
    "flow_run",
    "flow_run_input",
    "flow_run_state",
    "task_run",
    "task_run_state",
    "concurrency_limit",
    "concurrency_lease",
)


def upgrade() -> None:
    for table in TABLES:
        op.drop_index(f"ix_{table}_updated", table_name=table)


def downgrade() -> None:
    for table in TABLES:
        op.create_index(f"ix_{table}_updated", table, ["updated"], unique=False)
