"""deployments, their schedules, work pools, work queues and workers; flow runs can be claimed

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-21 07:30:47.764733
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import flowplane.server.db.tables as t

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "work_pool",
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("type", sa.String(), nullable=False),
        sa.Column("base_job_template", t.JSON, nullable=False),
        sa.Column("is_paused", sa.Boolean(), nullable=False),
        sa.Column("concurrency_limit", sa.Integer(), nullable=True),
        sa.Column("storage_configuration", t.JSON, nullable=False),
        sa.Column("default_queue_id", sa.Uuid(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created", t.Timestamp(), nullable=False),
        sa.Column("updated", t.Timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name", name="uq_work_pool__name"),
    )
    op.create_table(
        "work_queue",
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("is_paused", sa.Boolean(), nullable=False),
        sa.Column("concurrency_limit", sa.Integer(), nullable=True),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("work_pool_id", sa.Uuid(), nullable=False),
        sa.Column("filter", t.JSON, nullable=True),
        sa.Column("last_polled", t.Timestamp(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created", t.Timestamp(), nullable=False),
        sa.Column("updated", t.Timestamp(), nullable=False),
        sa.ForeignKeyConstraint(["work_pool_id"], ["work_pool.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("work_pool_id", "name", name="uq_work_queue__work_pool_id_name"),
    )
    op.create_table(
        "worker",
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("work_pool_id", sa.Uuid(), nullable=False),
        sa.Column("last_heartbeat_time", t.Timestamp(), nullable=True),
        sa.Column("heartbeat_interval_seconds", sa.Integer(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created", t.Timestamp(), nullable=False),
        sa.Column("updated", t.Timestamp(), nullable=False),
        sa.ForeignKeyConstraint(["work_pool_id"], ["work_pool.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("work_pool_id", "name", name="uq_worker__work_pool_id_name"),
    )
    op.create_table(
        "deployment",
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("flow_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.String(), nullable=True),
        sa.Column("version_info", t.JSON, nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("concurrency_limit", sa.Integer(), nullable=True),
        sa.Column("concurrency_options", t.JSON, nullable=True),
        sa.Column("global_concurrency_limit_id", sa.Uuid(), nullable=True),
        sa.Column("job_variables", t.JSON, nullable=False),
        sa.Column("parameters", t.JSON, nullable=False),
        sa.Column("parameter_openapi_schema", t.JSON, nullable=True),
        sa.Column("enforce_parameter_schema", sa.Boolean(), nullable=False),
        sa.Column("tags", t.JSON, nullable=False),
        sa.Column("labels", t.JSON, nullable=True),
        sa.Column("work_queue_name", sa.String(), nullable=True),
        sa.Column("work_queue_id", sa.Uuid(), nullable=True),
        sa.Column("last_polled", t.Timestamp(), nullable=True),
        sa.Column("path", sa.String(), nullable=True),
        sa.Column("entrypoint", sa.String(), nullable=True),
        sa.Column("pull_steps", t.JSON, nullable=True),
        sa.Column("storage_document_id", sa.Uuid(), nullable=True),
        sa.Column("infrastructure_document_id", sa.Uuid(), nullable=True),
        sa.Column("created_by", t.JSON, nullable=True),
        sa.Column("updated_by", t.JSON, nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created", t.Timestamp(), nullable=False),
        sa.Column("updated", t.Timestamp(), nullable=False),
        sa.ForeignKeyConstraint(["flow_id"], ["flow.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["work_queue_id"], ["work_queue.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("flow_id", "name", name="uq_deployment__flow_id_name"),
    )
    with op.batch_alter_table("deployment", schema=None) as batch_op:
        batch_op.create_index("ix_deployment__name", ["name"], unique=False)
        batch_op.create_index("ix_deployment__work_queue_id", ["work_queue_id"], unique=False)

    op.create_table(
        "deployment_schedule",
        sa.Column("deployment_id", sa.Uuid(), nullable=False),
        sa.Column("schedule", t.JSON, nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("max_scheduled_runs", sa.Integer(), nullable=True),
        sa.Column("parameters", t.JSON, nullable=False),
        sa.Column("slug", sa.String(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created", t.Timestamp(), nullable=False),
        sa.Column("updated", t.Timestamp(), nullable=False),
        sa.ForeignKeyConstraint(["deployment_id"], ["deployment.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "deployment_id", "slug", name="uq_deployment_schedule__deployment_id_slug"
        ),
    )
    with op.batch_alter_table("deployment_schedule", schema=None) as batch_op:
        batch_op.create_index(
            "ix_deployment_schedule__deployment_id", ["deployment_id"], unique=False
        )

    with op.batch_alter_table("flow_run", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claimed_until", t.Timestamp(), nullable=True))
        batch_op.create_index(
            "ix_flow_run__work_queue_id_state_type", ["work_queue_id", "state_type"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("flow_run", schema=None) as batch_op:
        batch_op.drop_index("ix_flow_run__work_queue_id_state_type")
        batch_op.drop_column("claimed_until")

    with op.batch_alter_table("deployment_schedule", schema=None) as batch_op:
        batch_op.drop_index("ix_deployment_schedule__deployment_id")

    op.drop_table("deployment_schedule")
    with op.batch_alter_table("deployment", schema=None) as batch_op:
        batch_op.drop_index("ix_deployment__work_queue_id")
        batch_op.drop_index("ix_deployment__name")

    op.drop_table("deployment")
    op.drop_table("worker")
    op.drop_table("work_queue")
    op.drop_table("work_pool")
