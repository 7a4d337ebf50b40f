"""concurrency limits and their leases

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import flowplane.server.db.tables as t

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "concurrency_limit",
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("limit", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("active_slots", sa.Float(), nullable=False),
        sa.Column("denied_slots", sa.Float(), nullable=False),
        sa.Column("slot_decay_per_second", sa.Float(), nullable=False),
        sa.Column("avg_slot_occupancy_seconds", sa.Float(), nullable=False),
        sa.Column("slots_updated", t.Timestamp(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created", t.Timestamp(), nullable=False),
        sa.Column("updated", t.Timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name", name="uq_concurrency_limit__name"),
    )
    with op.batch_alter_table("concurrency_limit", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_concurrency_limit_updated"), ["updated"], unique=False)

    op.create_table(
        "concurrency_lease",
        sa.Column("expiration", t.Timestamp(), nullable=False),
        sa.Column("slots", sa.Integer(), nullable=False),
        sa.Column("holder_type", sa.String(length=20), nullable=True),
        sa.Column("holder_id", sa.Uuid(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created", t.Timestamp(), nullable=False),
        sa.Column("updated", t.Timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("concurrency_lease", schema=None) as batch_op:
        batch_op.create_index("ix_concurrency_lease__expiration", ["expiration"], unique=False)
        batch_op.create_index("ix_concurrency_lease__holder_id", ["holder_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_concurrency_lease_updated"), ["updated"], unique=False)

    op.create_table(
        "concurrency_lease_limit",
        sa.Column("lease_id", sa.Uuid(), nullable=False),
        sa.Column("limit_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(["lease_id"], ["concurrency_lease.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["limit_id"], ["concurrency_limit.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("lease_id", "limit_id"),
    )
    with op.batch_alter_table("concurrency_lease_limit", schema=None) as batch_op:
        batch_op.create_index("ix_concurrency_lease_limit__limit_id", ["limit_id"], unique=False)


def downgrade() -> None:
    op.drop_table("concurrency_lease_limit")
    op.drop_table("concurrency_lease")
    op.drop_table("concurrency_limit")
