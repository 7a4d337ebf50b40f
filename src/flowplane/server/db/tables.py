"""ORM tables: the one place the database's shape is declared (migrations follow it)."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


class Timestamp(TypeDecorator[dt.datetime]):
    """An aware UTC datetime on every dialect (SQLite stores it naive, in UTC)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: sa.Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(postgresql.TIMESTAMP(timezone=True))
        return dialect.type_descriptor(sa.DateTime())

    def process_bind_param(self, value: dt.datetime | None, dialect: sa.Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        value = value.astimezone(dt.timezone.utc)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.timezone.utc)
        return value.astimezone(dt.timezone.utc)


#: JSON everywhere; JSONB on PostgreSQL so tag containment can use a GIN index.
JSON = sa.JSON().with_variant(postgresql.JSONB(none_as_null=True), "postgresql")


class JSONValue(TypeDecorator[Any]):
    """Any JSON value, scalars included; JSONB on PostgreSQL, JSON text on SQLite.

    A column declared JSON on SQLite has numeric affinity, which turns the stored
    text ``42`` or ``1.5`` into a number that no longer reads back as JSON; a TEXT
    column keeps it as written.
    """

    impl = sa.Text
    cache_ok = True

    def load_dialect_impl(self, dialect: sa.Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(postgresql.JSONB(none_as_null=True))
        return dialect.type_descriptor(sa.Text())

    def process_bind_param(self, value: Any, dialect: sa.Dialect) -> Any:
        if dialect.name == "postgresql" or value is None:
            return value
        return json.dumps(value, separators=(",", ":"))

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> Any:
        if dialect.name == "postgresql" or value is None:
            return value
        return json.loads(value)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class Base(DeclarativeBase):
    """Common columns: a UUID primary key and creation/update times."""

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=uuid.uuid4)
    created: Mapped[dt.datetime] = mapped_column(Timestamp, default=_now, nullable=False)
    # Not indexed here: only flows are listed by update time, and every index costs each
    # write (runs, states, events and logs are written far more often than read this way).
    updated: Mapped[dt.datetime] = mapped_column(
        Timestamp, default=_now, onupdate=_now, nullable=False
    )


def _sparse_index(name: str, *columns: str, where: str | None = None) -> sa.Index:
    """An index of the rows whose ``where`` column (default: the first) is set."""
    condition = sa.text(f"{where or columns[0]} IS NOT NULL")
    return sa.Index(name, *columns, sqlite_where=condition, postgresql_where=condition)


class Flow(Base):
    __tablename__ = "flow"

    name: Mapped[str] = mapped_column(sa.String, nullable=False, unique=True)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list, nullable=False)
    labels: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=dict)

    __table_args__ = (sa.Index("ix_flow_updated", "updated"),)


class _RunColumns:
    """Columns shared by flow runs and task runs (state pointers and bookkeeping)."""

    name: Mapped[str] = mapped_column(sa.String, nullable=False, default="")
    state_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    state_type: Mapped[str | None] = mapped_column(sa.String(20))
    state_name: Mapped[str | None] = mapped_column(sa.String)
    state_timestamp: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    run_count: Mapped[int] = mapped_column(sa.Integer, default=0, nullable=False)
    expected_start_time: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    next_scheduled_start_time: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    start_time: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    end_time: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    total_run_time: Mapped[float] = mapped_column(sa.Float, default=0.0, nullable=False)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list, nullable=False)
    labels: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=dict)
    empirical_policy: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, nullable=False)


class FlowRun(_RunColumns, Base):
    __tablename__ = "flow_run"

    flow_id: Mapped[uuid.UUID] = mapped_column(
        sa.Uuid, sa.ForeignKey("flow.id", ondelete="CASCADE"), nullable=False
    )
    deployment_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    deployment_version: Mapped[str | None] = mapped_column(sa.String)
    work_queue_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    work_queue_name: Mapped[str | None] = mapped_column(sa.String)
    work_pool_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    work_pool_name: Mapped[str | None] = mapped_column(sa.String)
    flow_version: Mapped[str | None] = mapped_column(sa.String)
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, nullable=False)
    idempotency_key: Mapped[str | None] = mapped_column(sa.String)
    context: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, nullable=False)
    parent_task_run_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.Uuid,
        sa.ForeignKey(
            "task_run.id",
            ondelete="SET NULL",
            use_alter=True,
            name="fk_flow_run__parent_task_run_id__task_run",
        ),
    )
    auto_scheduled: Mapped[bool] = mapped_column(sa.Boolean, default=False, nullable=False)
    infrastructure_document_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    infrastructure_pid: Mapped[str | None] = mapped_column(sa.String)
    created_by: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    job_variables: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=dict)
    # Liveness: when the run's process last said it was alive (the heartbeat's own time),
    # and when the server stops believing it (set by the heartbeat recorder service).
    last_heartbeat: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    heartbeat_expires: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    #: A worker took this Scheduled run from its pool; no other poll returns it until then.
    claimed_until: Mapped[dt.datetime | None] = mapped_column(Timestamp)

    __table_args__ = (
        sa.UniqueConstraint(
            "flow_id", "idempotency_key", name="uq_flow_run__flow_id_idempotency_key"
        ),
        # No index of its own on flow_id: the unique index above starts with it. Columns
        # most runs leave empty (a run of no deployment, pool or parent) are indexed only
        # where set: a local run enters 7 fewer indexes, and every query comparing one of
        # them implies it is not null, so the indexes still serve it.
        _sparse_index("ix_flow_run__deployment_id", "deployment_id"),
        _sparse_index("ix_flow_run__parent_task_run_id", "parent_task_run_id"),
        sa.Index(
            "ix_flow_run__state_type_expected_start_time", "state_type", "expected_start_time"
        ),
        sa.Index("ix_flow_run__state_name", "state_name"),
        sa.Index("ix_flow_run__expected_start_time_desc", sa.desc("expected_start_time")),
        _sparse_index("ix_flow_run__next_scheduled_start_time", "next_scheduled_start_time"),
        sa.Index("ix_flow_run__start_time", "start_time"),
        sa.Index("ix_flow_run__end_time_desc", sa.desc("end_time")),
        sa.Index("ix_flow_run__name", "name"),
        _sparse_index("ix_flow_run__work_queue_name", "work_queue_name"),
        _sparse_index("ix_flow_run__work_queue_id_state_type", "work_queue_id", "state_type"),
        _sparse_index("ix_flow_run__idempotency_key", "idempotency_key"),
        # The zombie reaper looks for RUNNING runs whose heartbeats expired.
        _sparse_index(
            "ix_flow_run__state_type_heartbeat_expires",
            "state_type",
            "heartbeat_expires",
            where="heartbeat_expires",
        ),
        # JSON arrays cannot be indexed usefully on SQLite; PostgreSQL gets a GIN index.
        sa.Index("ix_flow_run__tags", "tags", postgresql_using="gin").ddl_if(dialect="postgresql"),
    )


class TaskRun(_RunColumns, Base):
    __tablename__ = "task_run"

    flow_run_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.Uuid, sa.ForeignKey("flow_run.id", ondelete="CASCADE")
    )
    task_key: Mapped[str] = mapped_column(sa.String, nullable=False)
    dynamic_key: Mapped[str] = mapped_column(sa.String, nullable=False)
    cache_key: Mapped[str | None] = mapped_column(sa.String)
    cache_expiration: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    task_version: Mapped[str | None] = mapped_column(sa.String)
    task_inputs: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, nullable=False)
    flow_run_run_count: Mapped[int] = mapped_column(sa.Integer, default=0, nullable=False)

    __table_args__ = (
        sa.UniqueConstraint(
            "flow_run_id",
            "task_key",
            "dynamic_key",
            name="uq_task_run__flow_run_id_task_key_dynamic_key",
        ),
        # No index of its own on flow_run_id: the unique index above starts with it.
        sa.Index(
            "ix_task_run__state_type_expected_start_time", "state_type", "expected_start_time"
        ),
        sa.Index("ix_task_run__state_name", "state_name"),
        sa.Index("ix_task_run__expected_start_time_desc", sa.desc("expected_start_time")),
        # Few task runs have these two: their indexes hold only the rows that do.
        _sparse_index("ix_task_run__next_scheduled_start_time", "next_scheduled_start_time"),
        sa.Index("ix_task_run__start_time", "start_time"),
        sa.Index("ix_task_run__end_time_desc", sa.desc("end_time")),
        sa.Index("ix_task_run__name", "name"),
        _sparse_index("ix_task_run__cache_key", "cache_key"),
        sa.Index("ix_task_run__tags", "tags", postgresql_using="gin").ddl_if(dialect="postgresql"),
    )


class _StateColumns:
    type: Mapped[str] = mapped_column(sa.String(20), nullable=False)
    name: Mapped[str] = mapped_column(sa.String, nullable=False)
    timestamp: Mapped[dt.datetime] = mapped_column(Timestamp, nullable=False, default=_now)
    message: Mapped[str | None] = mapped_column(sa.Text)
    state_details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, nullable=False)
    data: Mapped[Any | None] = mapped_column(JSON)


class FlowRunState(_StateColumns, Base):
    __tablename__ = "flow_run_state"

    flow_run_id: Mapped[uuid.UUID] = mapped_column(
        sa.Uuid, sa.ForeignKey("flow_run.id", ondelete="CASCADE"), nullable=False
    )

    __table_args__ = (
        sa.Index("ix_flow_run_state__flow_run_id_timestamp", "flow_run_id", "timestamp"),
        sa.Index("ix_flow_run_state__type", "type"),
    )


class TaskRunState(_StateColumns, Base):
    __tablename__ = "task_run_state"

    task_run_id: Mapped[uuid.UUID] = mapped_column(
        sa.Uuid, sa.ForeignKey("task_run.id", ondelete="CASCADE"), nullable=False
    )

    __table_args__ = (
        sa.Index("ix_task_run_state__task_run_id_timestamp", "task_run_id", "timestamp"),
        # Task-run events are read from these rows (store/task_run_events.py), newest first.
        sa.Index("ix_task_run_state__timestamp_id", "timestamp", "id"),
    )


class Log(Base):
    __tablename__ = "log"

    name: Mapped[str] = mapped_column(sa.String, nullable=False)
    level: Mapped[int] = mapped_column(sa.SmallInteger, nullable=False)
    message: Mapped[str] = mapped_column(sa.Text, nullable=False)
    timestamp: Mapped[dt.datetime] = mapped_column(Timestamp, nullable=False)
    # No foreign keys: log lines may arrive before (or outlive) the runs they name.
    flow_run_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    task_run_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)

    __table_args__ = (
        sa.Index("ix_log__flow_run_id_timestamp", "flow_run_id", "timestamp"),
        sa.Index("ix_log__task_run_id", "task_run_id"),
        sa.Index("ix_log__timestamp", "timestamp"),
        sa.Index("ix_log__level", "level"),
    )


class FlowRunInput(Base):
    __tablename__ = "flow_run_input"

    flow_run_id: Mapped[uuid.UUID] = mapped_column(
        sa.Uuid, sa.ForeignKey("flow_run.id", ondelete="CASCADE"), nullable=False
    )
    key: Mapped[str] = mapped_column(sa.String, nullable=False)
    value: Mapped[str] = mapped_column(sa.Text, nullable=False)
    sender: Mapped[str | None] = mapped_column(sa.String)

    __table_args__ = (
        sa.UniqueConstraint("flow_run_id", "key", name="uq_flow_run_input__flow_run_id_key"),
    )


class CsrfToken(Base):
    __tablename__ = "csrf_token"

    token: Mapped[str] = mapped_column(sa.String, nullable=False)
    client: Mapped[str] = mapped_column(sa.String, nullable=False, unique=True)
    expiration: Mapped[dt.datetime] = mapped_column(Timestamp, nullable=False)


class Event(Base):
    """A received event. ``resource_id`` and ``related_resource_ids`` are copied out for queries."""

    __tablename__ = "event"

    occurred: Mapped[dt.datetime] = mapped_column(Timestamp, nullable=False)
    received: Mapped[dt.datetime] = mapped_column(Timestamp, nullable=False, default=_now)
    event: Mapped[str] = mapped_column(sa.String, nullable=False)
    resource_id: Mapped[str] = mapped_column(sa.String, nullable=False)
    resource: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    related_resource_ids: Mapped[list[str]] = mapped_column(JSON, default=list, nullable=False)
    related: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list, nullable=False)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, nullable=False)
    follows: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)

    __table_args__ = (
        sa.Index("ix_event__occurred", "occurred"),
        sa.Index("ix_event__event_occurred", "event", "occurred"),
        sa.Index("ix_event__resource_id_occurred", "resource_id", "occurred"),
    )


class EventResource(Base):
    """One row per resource an event names (its own and each related one), for related-filters."""

    __tablename__ = "event_resource"

    event_id: Mapped[uuid.UUID] = mapped_column(
        sa.Uuid, sa.ForeignKey("event.id", ondelete="CASCADE"), nullable=False
    )
    occurred: Mapped[dt.datetime] = mapped_column(Timestamp, nullable=False)
    resource_id: Mapped[str] = mapped_column(sa.String, nullable=False)
    resource_role: Mapped[str] = mapped_column(sa.String, nullable=False, default="")
    resource: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)

    __table_args__ = (
        sa.Index("ix_event_resource__resource_id_occurred", "resource_id", "occurred"),
        sa.Index("ix_event_resource__event_id", "event_id"),
    )


class ConcurrencyLimit(Base):
    """A global concurrency or rate limit; a task-run tag's limit is the one named ``tag:<tag>``.

    ``active_slots`` and ``denied_slots`` are floats: rate limits decay continuously
    (see :mod:`flowplane.core.concurrency`), and both counts are as of ``slots_updated``.
    """

    __tablename__ = "concurrency_limit"

    name: Mapped[str] = mapped_column(sa.String, nullable=False)
    limit: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    active: Mapped[bool] = mapped_column(sa.Boolean, default=True, nullable=False)
    active_slots: Mapped[float] = mapped_column(sa.Float, default=0.0, nullable=False)
    denied_slots: Mapped[float] = mapped_column(sa.Float, default=0.0, nullable=False)
    slot_decay_per_second: Mapped[float] = mapped_column(sa.Float, default=0.0, nullable=False)
    avg_slot_occupancy_seconds: Mapped[float] = mapped_column(sa.Float, default=2.0, nullable=False)
    slots_updated: Mapped[dt.datetime] = mapped_column(Timestamp, default=_now, nullable=False)

    __table_args__ = (sa.UniqueConstraint("name", name="uq_concurrency_limit__name"),)


class ConcurrencyLease(Base):
    """Slots held on concurrency limits until released or expired; ``created`` is when they were taken.

    The limits it holds slots on are its rows in ``concurrency_lease_limit``.
    """

    __tablename__ = "concurrency_lease"

    expiration: Mapped[dt.datetime] = mapped_column(Timestamp, nullable=False)
    slots: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    holder_type: Mapped[str | None] = mapped_column(sa.String(20))
    holder_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)

    __table_args__ = (
        sa.Index("ix_concurrency_lease__expiration", "expiration"),
        sa.Index("ix_concurrency_lease__holder_id", "holder_id"),
    )


#: Which limits a lease holds slots on (a lease with no rows holds none: its limits were inactive).
concurrency_lease_limit = sa.Table(
    "concurrency_lease_limit",
    Base.metadata,
    sa.Column(
        "lease_id",
        sa.Uuid,
        sa.ForeignKey("concurrency_lease.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column(
        "limit_id",
        sa.Uuid,
        sa.ForeignKey("concurrency_limit.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Index("ix_concurrency_lease_limit__limit_id", "limit_id"),
)


class Variable(Base):
    """A named JSON value shared by flows, tasks and deployments."""

    __tablename__ = "variable"

    name: Mapped[str] = mapped_column(sa.String(255), nullable=False)
    value: Mapped[Any | None] = mapped_column(JSONValue)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list, nullable=False)

    __table_args__ = (sa.UniqueConstraint("name", name="uq_variable__name"),)


class _ArtifactColumns:
    key: Mapped[str | None] = mapped_column(sa.String)
    type: Mapped[str | None] = mapped_column(sa.String)
    description: Mapped[str | None] = mapped_column(sa.Text)
    data: Mapped[Any | None] = mapped_column(JSONValue)
    metadata_: Mapped[dict[str, str] | None] = mapped_column("metadata_", JSON)
    # No foreign keys: task runs are recorded from events, after their artifacts may arrive.
    flow_run_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    task_run_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)


class Artifact(_ArtifactColumns, Base):
    """Data a run published for people: markdown, a table, a link, progress, an image."""

    __tablename__ = "artifact"

    __table_args__ = (
        sa.Index("ix_artifact__key_created", "key", "created"),
        sa.Index("ix_artifact__flow_run_id", "flow_run_id"),
        sa.Index("ix_artifact__task_run_id", "task_run_id"),
    )


class ArtifactCollection(_ArtifactColumns, Base):
    """The newest artifact of each key (a copy of its fields, and its id as ``latest_id``)."""

    __tablename__ = "artifact_collection"

    key: Mapped[str] = mapped_column(sa.String, nullable=False)  # type: ignore[assignment]
    latest_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, nullable=False)
    #: When the latest artifact was created: a racing older artifact compares against it.
    latest_created: Mapped[dt.datetime] = mapped_column(Timestamp, nullable=False)

    __table_args__ = (sa.UniqueConstraint("key", name="uq_artifact_collection__key"),)


class Deployment(Base):
    """A flow made runnable by name, with defaults for its runs and where they wait."""

    __tablename__ = "deployment"

    name: Mapped[str] = mapped_column(sa.String, nullable=False)
    flow_id: Mapped[uuid.UUID] = mapped_column(
        sa.Uuid, sa.ForeignKey("flow.id", ondelete="CASCADE"), nullable=False
    )
    version: Mapped[str | None] = mapped_column(sa.String)
    version_info: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    description: Mapped[str | None] = mapped_column(sa.Text)
    paused: Mapped[bool] = mapped_column(sa.Boolean, default=False, nullable=False)
    concurrency_limit: Mapped[int | None] = mapped_column(sa.Integer)
    concurrency_options: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    global_concurrency_limit_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    job_variables: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, nullable=False)
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, nullable=False)
    parameter_openapi_schema: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    enforce_parameter_schema: Mapped[bool] = mapped_column(sa.Boolean, default=True, nullable=False)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list, nullable=False)
    labels: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=dict)
    work_queue_name: Mapped[str | None] = mapped_column(sa.String)
    work_queue_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.Uuid, sa.ForeignKey("work_queue.id", ondelete="SET NULL")
    )
    last_polled: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    path: Mapped[str | None] = mapped_column(sa.String)
    entrypoint: Mapped[str | None] = mapped_column(sa.String)
    pull_steps: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    storage_document_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    infrastructure_document_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    created_by: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    updated_by: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    __table_args__ = (
        sa.UniqueConstraint("flow_id", "name", name="uq_deployment__flow_id_name"),
        sa.Index("ix_deployment__work_queue_id", "work_queue_id"),
        sa.Index("ix_deployment__name", "name"),
    )


class DeploymentSchedule(Base):
    """One schedule of a deployment (the rule itself is a JSON cron/interval/rrule object)."""

    __tablename__ = "deployment_schedule"

    deployment_id: Mapped[uuid.UUID] = mapped_column(
        sa.Uuid, sa.ForeignKey("deployment.id", ondelete="CASCADE"), nullable=False
    )
    schedule: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    active: Mapped[bool] = mapped_column(sa.Boolean, default=True, nullable=False)
    max_scheduled_runs: Mapped[int | None] = mapped_column(sa.Integer)
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, nullable=False)
    slug: Mapped[str | None] = mapped_column(sa.String)

    __table_args__ = (
        sa.Index("ix_deployment_schedule__deployment_id", "deployment_id"),
        sa.UniqueConstraint(
            "deployment_id", "slug", name="uq_deployment_schedule__deployment_id_slug"
        ),
    )


class WorkPool(Base):
    """A pool of work queues served by workers of one infrastructure type."""

    __tablename__ = "work_pool"

    name: Mapped[str] = mapped_column(sa.String, nullable=False)
    description: Mapped[str | None] = mapped_column(sa.Text)
    type: Mapped[str] = mapped_column(sa.String, nullable=False)
    base_job_template: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, nullable=False)
    is_paused: Mapped[bool] = mapped_column(sa.Boolean, default=False, nullable=False)
    concurrency_limit: Mapped[int | None] = mapped_column(sa.Integer)
    storage_configuration: Mapped[dict[str, Any]] = mapped_column(
        JSON, default=dict, nullable=False
    )
    #: No foreign key: the pool and its default queue are created together.
    default_queue_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)

    __table_args__ = (sa.UniqueConstraint("name", name="uq_work_pool__name"),)


class WorkQueue(Base):
    """A queue in a work pool; workers take its Scheduled runs in priority order."""

    __tablename__ = "work_queue"

    name: Mapped[str] = mapped_column(sa.String, nullable=False)
    description: Mapped[str | None] = mapped_column(sa.Text, default="")
    is_paused: Mapped[bool] = mapped_column(sa.Boolean, default=False, nullable=False)
    concurrency_limit: Mapped[int | None] = mapped_column(sa.Integer)
    priority: Mapped[int] = mapped_column(sa.Integer, default=1, nullable=False)
    work_pool_id: Mapped[uuid.UUID] = mapped_column(
        sa.Uuid, sa.ForeignKey("work_pool.id", ondelete="CASCADE"), nullable=False
    )
    filter: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    last_polled: Mapped[dt.datetime | None] = mapped_column(Timestamp)

    __table_args__ = (
        sa.UniqueConstraint("work_pool_id", "name", name="uq_work_queue__work_pool_id_name"),
    )


class Worker(Base):
    """A worker process known from its heartbeats to a pool."""

    __tablename__ = "worker"

    name: Mapped[str] = mapped_column(sa.String, nullable=False)
    work_pool_id: Mapped[uuid.UUID] = mapped_column(
        sa.Uuid, sa.ForeignKey("work_pool.id", ondelete="CASCADE"), nullable=False
    )
    last_heartbeat_time: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    heartbeat_interval_seconds: Mapped[int | None] = mapped_column(sa.Integer)

    __table_args__ = (
        sa.UniqueConstraint("work_pool_id", "name", name="uq_worker__work_pool_id_name"),
    )


metadata = Base.metadata
