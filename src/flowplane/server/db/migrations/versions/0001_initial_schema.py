"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-21 05:15:09.255756
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import flowplane.server.db.tables as t

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "csrf_token",
        sa.Column("token", sa.String(), nullable=False),
        sa.Column("client", sa.String(), nullable=False),
        sa.Column("expiration", t.Timestamp(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created", t.Timestamp(), nullable=False),
        sa.Column("updated", t.Timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("client"),
    )
    with op.batch_alter_table("csrf_token", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_csrf_token_updated"), ["updated"], unique=False)

    op.create_table(
        "event",
        sa.Column("occurred", t.Timestamp(), nullable=False),
        sa.Column("received", t.Timestamp(), nullable=False),
        sa.Column("event", sa.String(), nullable=False),
        sa.Column("resource_id", sa.String(), nullable=False),
        sa.Column("resource", t.JSON, nullable=False),
        sa.Column("related_resource_ids", t.JSON, nullable=False),
        sa.Column("related", t.JSON, nullable=False),
        sa.Column("payload", t.JSON, nullable=False),
        sa.Column("follows", sa.Uuid(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created", t.Timestamp(), nullable=False),
        sa.Column("updated", t.Timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("event", schema=None) as batch_op:
        batch_op.create_index("ix_event__event_occurred", ["event", "occurred"], unique=False)
        batch_op.create_index("ix_event__occurred", ["occurred"], unique=False)
        batch_op.create_index(
            "ix_event__resource_id_occurred", ["resource_id", "occurred"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_event_updated"), ["updated"], unique=False)

    op.create_table(
        "flow",
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("tags", t.JSON, nullable=False),
        sa.Column("labels", t.JSON, nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created", t.Timestamp(), nullable=False),
        sa.Column("updated", t.Timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    with op.batch_alter_table("flow", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_flow_updated"), ["updated"], unique=False)

    op.create_table(
        "log",
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("level", sa.SmallInteger(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("timestamp", t.Timestamp(), nullable=False),
        sa.Column("flow_run_id", sa.Uuid(), nullable=True),
        sa.Column("task_run_id", sa.Uuid(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created", t.Timestamp(), nullable=False),
        sa.Column("updated", t.Timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("log", schema=None) as batch_op:
        batch_op.create_index(
            "ix_log__flow_run_id_timestamp", ["flow_run_id", "timestamp"], unique=False
        )
        batch_op.create_index("ix_log__level", ["level"], unique=False)
        batch_op.create_index("ix_log__task_run_id", ["task_run_id"], unique=False)
        batch_op.create_index("ix_log__timestamp", ["timestamp"], unique=False)
        batch_op.create_index(batch_op.f("ix_log_updated"), ["updated"], unique=False)

    op.create_table(
        "event_resource",
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("occurred", t.Timestamp(), nullable=False),
        sa.Column("resource_id", sa.String(), nullable=False),
        sa.Column("resource_role", sa.String(), nullable=False),
        sa.Column("resource", t.JSON, nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created", t.Timestamp(), nullable=False),
        sa.Column("updated", t.Timestamp(), nullable=False),
        sa.ForeignKeyConstraint(["event_id"], ["event.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("event_resource", schema=None) as batch_op:
        batch_op.create_index("ix_event_resource__event_id", ["event_id"], unique=False)
        batch_op.create_index(
            "ix_event_resource__resource_id_occurred", ["resource_id", "occurred"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_event_resource_updated"), ["updated"], unique=False)

    op.create_table(
        "flow_run",
        sa.Column("flow_id", sa.Uuid(), nullable=False),
        sa.Column("deployment_id", sa.Uuid(), nullable=True),
        sa.Column("deployment_version", sa.String(), nullable=True),
        sa.Column("work_queue_id", sa.Uuid(), nullable=True),
        sa.Column("work_queue_name", sa.String(), nullable=True),
        sa.Column("work_pool_id", sa.Uuid(), nullable=True),
        sa.Column("work_pool_name", sa.String(), nullable=True),
        sa.Column("flow_version", sa.String(), nullable=True),
        sa.Column("parameters", t.JSON, nullable=False),
        sa.Column("idempotency_key", sa.String(), nullable=True),
        sa.Column("context", t.JSON, nullable=False),
        sa.Column("parent_task_run_id", sa.Uuid(), nullable=True),
        sa.Column("auto_scheduled", sa.Boolean(), nullable=False),
        sa.Column("infrastructure_document_id", sa.Uuid(), nullable=True),
        sa.Column("infrastructure_pid", sa.String(), nullable=True),
        sa.Column("created_by", t.JSON, nullable=True),
        sa.Column("job_variables", t.JSON, nullable=True),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("state_id", sa.Uuid(), nullable=True),
        sa.Column("state_type", sa.String(length=20), nullable=True),
        sa.Column("state_name", sa.String(), nullable=True),
        sa.Column("state_timestamp", t.Timestamp(), nullable=True),
        sa.Column("run_count", sa.Integer(), nullable=False),
        sa.Column("expected_start_time", t.Timestamp(), nullable=True),
        sa.Column("next_scheduled_start_time", t.Timestamp(), nullable=True),
        sa.Column("start_time", t.Timestamp(), nullable=True),
        sa.Column("end_time", t.Timestamp(), nullable=True),
        sa.Column("total_run_time", sa.Float(), nullable=False),
        sa.Column("tags", t.JSON, nullable=False),
        sa.Column("labels", t.JSON, nullable=True),
        sa.Column("empirical_policy", t.JSON, nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created", t.Timestamp(), nullable=False),
        sa.Column("updated", t.Timestamp(), nullable=False),
        sa.ForeignKeyConstraint(["flow_id"], ["flow.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "flow_id", "idempotency_key", name="uq_flow_run__flow_id_idempotency_key"
        ),
    )
    with op.batch_alter_table("flow_run", schema=None) as batch_op:
        batch_op.create_index("ix_flow_run__deployment_id", ["deployment_id"], unique=False)
        batch_op.create_index("ix_flow_run__flow_id", ["flow_id"], unique=False)
        batch_op.create_index("ix_flow_run__idempotency_key", ["idempotency_key"], unique=False)
        batch_op.create_index("ix_flow_run__name", ["name"], unique=False)
        batch_op.create_index(
            "ix_flow_run__next_scheduled_start_time", ["next_scheduled_start_time"], unique=False
        )
        batch_op.create_index(
            "ix_flow_run__parent_task_run_id", ["parent_task_run_id"], unique=False
        )
        batch_op.create_index("ix_flow_run__start_time", ["start_time"], unique=False)
        batch_op.create_index("ix_flow_run__state_name", ["state_name"], unique=False)
        batch_op.create_index(
            "ix_flow_run__state_type_expected_start_time",
            ["state_type", "expected_start_time"],
            unique=False,
        )
        batch_op.create_index("ix_flow_run__work_queue_name", ["work_queue_name"], unique=False)
        batch_op.create_index(batch_op.f("ix_flow_run_updated"), ["updated"], unique=False)

    op.create_table(
        "flow_run_input",
        sa.Column("flow_run_id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("sender", sa.String(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created", t.Timestamp(), nullable=False),
        sa.Column("updated", t.Timestamp(), nullable=False),
        sa.ForeignKeyConstraint(["flow_run_id"], ["flow_run.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("flow_run_id", "key", name="uq_flow_run_input__flow_run_id_key"),
    )
    with op.batch_alter_table("flow_run_input", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_flow_run_input_updated"), ["updated"], unique=False)

    op.create_table(
        "flow_run_state",
        sa.Column("flow_run_id", sa.Uuid(), nullable=False),
        sa.Column("type", sa.String(length=20), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("timestamp", t.Timestamp(), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("state_details", t.JSON, nullable=False),
        sa.Column("data", t.JSON, nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created", t.Timestamp(), nullable=False),
        sa.Column("updated", t.Timestamp(), nullable=False),
        sa.ForeignKeyConstraint(["flow_run_id"], ["flow_run.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("flow_run_state", schema=None) as batch_op:
        batch_op.create_index(
            "ix_flow_run_state__flow_run_id_timestamp", ["flow_run_id", "timestamp"], unique=False
        )
        batch_op.create_index("ix_flow_run_state__type", ["type"], unique=False)
        batch_op.create_index(batch_op.f("ix_flow_run_state_updated"), ["updated"], unique=False)

    op.create_table(
        "task_run",
        sa.Column("flow_run_id", sa.Uuid(), nullable=True),
        sa.Column("task_key", sa.String(), nullable=False),
        sa.Column("dynamic_key", sa.String(), nullable=False),
        sa.Column("cache_key", sa.String(), nullable=True),
        sa.Column("cache_expiration", t.Timestamp(), nullable=True),
        sa.Column("task_version", sa.String(), nullable=True),
        sa.Column("task_inputs", t.JSON, nullable=False),
        sa.Column("flow_run_run_count", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("state_id", sa.Uuid(), nullable=True),
        sa.Column("state_type", sa.String(length=20), nullable=True),
        sa.Column("state_name", sa.String(), nullable=True),
        sa.Column("state_timestamp", t.Timestamp(), nullable=True),
        sa.Column("run_count", sa.Integer(), nullable=False),
        sa.Column("expected_start_time", t.Timestamp(), nullable=True),
        sa.Column("next_scheduled_start_time", t.Timestamp(), nullable=True),
        sa.Column("start_time", t.Timestamp(), nullable=True),
        sa.Column("end_time", t.Timestamp(), nullable=True),
        sa.Column("total_run_time", sa.Float(), nullable=False),
        sa.Column("tags", t.JSON, nullable=False),
        sa.Column("labels", t.JSON, nullable=True),
        sa.Column("empirical_policy", t.JSON, nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created", t.Timestamp(), nullable=False),
        sa.Column("updated", t.Timestamp(), nullable=False),
        sa.ForeignKeyConstraint(["flow_run_id"], ["flow_run.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "flow_run_id",
            "task_key",
            "dynamic_key",
            name="uq_task_run__flow_run_id_task_key_dynamic_key",
        ),
    )
    with op.batch_alter_table("task_run", schema=None) as batch_op:
        batch_op.create_index("ix_task_run__cache_key", ["cache_key"], unique=False)
        batch_op.create_index("ix_task_run__flow_run_id", ["flow_run_id"], unique=False)
        batch_op.create_index("ix_task_run__name", ["name"], unique=False)
        batch_op.create_index(
            "ix_task_run__next_scheduled_start_time", ["next_scheduled_start_time"], unique=False
        )
        batch_op.create_index("ix_task_run__start_time", ["start_time"], unique=False)
        batch_op.create_index("ix_task_run__state_name", ["state_name"], unique=False)
        batch_op.create_index(
            "ix_task_run__state_type_expected_start_time",
            ["state_type", "expected_start_time"],
            unique=False,
        )
        batch_op.create_index(batch_op.f("ix_task_run_updated"), ["updated"], unique=False)

    op.create_table(
        "task_run_state",
        sa.Column("task_run_id", sa.Uuid(), nullable=False),
        sa.Column("type", sa.String(length=20), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("timestamp", t.Timestamp(), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("state_details", t.JSON, nullable=False),
        sa.Column("data", t.JSON, nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created", t.Timestamp(), nullable=False),
        sa.Column("updated", t.Timestamp(), nullable=False),
        sa.ForeignKeyConstraint(["task_run_id"], ["task_run.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("task_run_state", schema=None) as batch_op:
        batch_op.create_index(
            "ix_task_run_state__task_run_id_timestamp", ["task_run_id", "timestamp"], unique=False
        )
        batch_op.create_index("ix_task_run_state__type", ["type"], unique=False)
        batch_op.create_index(batch_op.f("ix_task_run_state_updated"), ["updated"], unique=False)

    # flow_run and task_run point at each other: the flow run -> parent task run key
    # is added once both exist.
    with op.batch_alter_table("flow_run") as batch_op:
        batch_op.create_foreign_key(
            "fk_flow_run__parent_task_run_id__task_run",
            "task_run",
            ["parent_task_run_id"],
            ["id"],
            ondelete="SET NULL",
        )
    for table in ("flow_run", "task_run"):
        op.create_index(
            f"ix_{table}__expected_start_time_desc", table, [sa.text("expected_start_time DESC")]
        )
        op.create_index(f"ix_{table}__end_time_desc", table, [sa.text("end_time DESC")])
        if op.get_bind().dialect.name == "postgresql":
            op.create_index(f"ix_{table}__tags", table, ["tags"], postgresql_using="gin")


def downgrade() -> None:
    with op.batch_alter_table("flow_run") as batch_op:
        batch_op.drop_constraint("fk_flow_run__parent_task_run_id__task_run", type_="foreignkey")
    op.drop_table("task_run_state")
    op.drop_table("task_run")
    op.drop_table("flow_run_state")
    op.drop_table("flow_run_input")
    op.drop_table("flow_run")
    op.drop_table("event_resource")
    op.drop_table("log")
    op.drop_table("flow")
    op.drop_table("event")
    op.drop_table("csrf_token")
