"""Flow-run heartbeats: the last one and when it expires, indexed for the zombie reaper.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import flowplane.server.db.tables as t

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("flow_run", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_heartbeat", t.Timestamp(), nullable=True))
        batch_op.add_column(sa.Column("heartbeat_expires", t.Timestamp(), nullable=True))
        batch_op.create_index(
            "ix_flow_run__state_type_heartbeat_expires",
            ["state_type", "heartbeat_expires"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("flow_run", schema=None) as batch_op:
        batch_op.drop_index("ix_flow_run__state_type_heartbeat_expires")
        batch_op.drop_column("heartbeat_expires")
        batch_op.drop_column("last_heartbeat")
