"""variables, artifacts and the latest artifact per key

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21 08:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import flowplane.server.db.tables as t

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _base_columns() -> list[sa.Column]:  # type: ignore[type-arg]
    return [
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created", t.Timestamp(), nullable=False),
        sa.Column("updated", t.Timestamp(), nullable=False),
    ]


def _artifact_columns(key_nullable: bool) -> list[sa.Column]:  # type: ignore[type-arg]
    return [
        sa.Column("key", sa.String(), nullable=key_nullable),
        sa.Column("type", sa.String(), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("data", t.JSONValue(), nullable=True),
        sa.Column("metadata_", t.JSON, nullable=True),
        sa.Column("flow_run_id", sa.Uuid(), nullable=True),
        sa.Column("task_run_id", sa.Uuid(), nullable=True),
    ]


def upgrade() -> None:
    op.create_table(
        "variable",
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("value", t.JSONValue(), nullable=True),
        sa.Column("tags", t.JSON, nullable=False),
        *_base_columns(),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name", name="uq_variable__name"),
    )
    op.create_table(
        "artifact",
        *_artifact_columns(key_nullable=True),
        *_base_columns(),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_artifact__key_created", "artifact", ["key", "created"], unique=False)
    op.create_index("ix_artifact__flow_run_id", "artifact", ["flow_run_id"], unique=False)
    op.create_index("ix_artifact__task_run_id", "artifact", ["task_run_id"], unique=False)
    op.create_table(
        "artifact_collection",
        *_artifact_columns(key_nullable=False),
        sa.Column("latest_id", sa.Uuid(), nullable=False),
        sa.Column("latest_created", t.Timestamp(), nullable=False),
        *_base_columns(),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key", name="uq_artifact_collection__key"),
    )


def downgrade() -> None:
    op.drop_table("artifact_collection")
    op.drop_index("ix_artifact__task_run_id", table_name="artifact")
    op.drop_index("ix_artifact__flow_run_id", table_name="artifact")
    op.drop_index("ix_artifact__key_created", table_name="artifact")
    op.drop_table("artifact")
    op.drop_table("variable")
