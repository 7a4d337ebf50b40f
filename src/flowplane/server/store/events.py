"""Queries on stored events: bulk writes, filtered pages with cursors, and counts.

The SQL here follows the same rules as the in-memory matcher
(``flowplane.server.events.matching``), so a stream and a query agree on what matches.
Criteria on related resources (and ``any_resource``) go through the ``event_resource``
table, which holds one row per resource an event names: its own (role ``""``) and
each related one.
"""

from __future__ import annotations

import base64
import binascii
import json
import random
import time
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from flowplane.schemas.base import now_utc
from flowplane.schemas.events import (
    Countable,
    EventAnyResourceFilter,
    EventCount,
    EventFilter,
    EventRelatedFilter,
    ReceivedEvent,
    ResourceSpecification,
    TimeUnit,
)
from flowplane.schemas.sorting import EventOrder
from flowplane.server.db import dialects
from flowplane.server.db import tables as t
from flowplane.server.events import counting
from flowplane.server.events.matching import (
    RESOURCE_ID,
    RESOURCE_ROLE,
    label_patterns,
    parse_text_query,
)
from flowplane.server.store import task_run_events
from flowplane.server.store.event_globs import glob

# --- writing ---------------------------------------------------------------------------

_EVENT = cast(sa.Table, t.Event.__table__)
_EVENT_RESOURCE = cast(sa.Table, t.EventResource.__table__)


def _event_row(event: ReceivedEvent, now: datetime) -> dict[str, Any]:
    return {
        "id": event.id,
        "created": now,
        "updated": now,
        "occurred": event.occurred,
        "received": event.received,
        "event": event.event,
        "resource_id": event.resource_id,
        "resource": event.resource,
        "related_resource_ids": [r[RESOURCE_ID] for r in event.related],
        "related": event.related,
        "payload": event.payload,
        "follows": event.follows,
    }


def _resource_rows(event: ReceivedEvent, now: datetime) -> list[dict[str, Any]]:
    base = {"event_id": event.id, "occurred": event.occurred, "created": now, "updated": now}
    rows = [
        {
            **base,
            "id": uuid.uuid4(),
            "resource_id": event.resource_id,
            "resource_role": "",
            "resource": event.resource,
        }
    ]
    for related in event.related:
        rows.append(
            {
                **base,
                "id": uuid.uuid4(),
                "resource_id": related[RESOURCE_ID],
                "resource_role": related.get(RESOURCE_ROLE, ""),
                "resource": related,
            }
        )
    return rows


async def write_many(session: AsyncSession, events: Sequence[ReceivedEvent]) -> int:
    """Store ``events`` and their resource rows; events already stored (by id) are skipped.

    Returns:
        How many events were new.
    """
    unique: dict[uuid.UUID, ReceivedEvent] = {}
    for event in events:
        unique.setdefault(event.id, event)
    if not unique:
        return 0
    dialect = dialects.dialect_name(session)
    if dialect == "sqlite":
        return await _write_many_sqlite(session, unique)
    now = now_utc()
    rows = [_event_row(e, now) for e in unique.values()]
    # Executed with a list of rows, these compile once and go out as multi-row VALUES.
    stmt = (
        dialects.insert(dialect, _EVENT)
        .on_conflict_do_nothing(index_elements=[_EVENT.c.id])
        .returning(_EVENT.c.id)
        .execution_options(
            insertmanyvalues_page_size=dialects.rows_per_statement(dialect, len(rows[0]))
        )
    )
    inserted = set((await session.execute(stmt, rows)).scalars().all())
    resource_rows = [
        r for eid in unique if eid in inserted for r in _resource_rows(unique[eid], now)
    ]
    if resource_rows:
        page = dialects.rows_per_statement(dialect, len(resource_rows[0]))
        stmt = (
            sa.insert(_EVENT_RESOURCE)
            .returning(_EVENT_RESOURCE.c.id)
            .execution_options(insertmanyvalues_page_size=page)
        )
        await session.execute(stmt, resource_rows)
    return len(inserted)


_EVENT_COLUMNS = (
    "id",
    "created",
    "updated",
    "occurred",
    "received",
    "event",
    "resource_id",
    "resource",
    "related_resource_ids",
    "related",
    "payload",
    "follows",
)
_RESOURCE_COLUMNS = (
    "id",
    "created",
    "updated",
    "event_id",
    "occurred",
    "resource_id",
    "resource_role",
    "resource",
)
_INSERT_EVENTS = f"INSERT INTO event ({', '.join(_EVENT_COLUMNS)}) VALUES ({', '.join('?' * 12)})"
_INSERT_RESOURCES = (
    f"INSERT INTO event_resource ({', '.join(_RESOURCE_COLUMNS)}) VALUES ({', '.join('?' * 8)})"
)
_getrandbits = random.getrandbits


def _first_row_id() -> int:
    """The first of a batch's resource row ids: a time-ordered (version 7) UUID as an int.

    The batch numbers its rows up from it (the low 20 bits count), so resource rows
    get ids that grow with time, and their primary-key index takes them at its right
    edge instead of touching a random page per row (fewer pages written per commit).
    """
    millis = time.time_ns() // 1_000_000
    return (
        (millis & (1 << 48) - 1) << 80
        | 0x7 << 76
        | _getrandbits(12) << 64
        | 0x2 << 62
        | _getrandbits(42) << 20
    )


async def _write_many_sqlite(session: AsyncSession, unique: dict[uuid.UUID, ReceivedEvent]) -> int:
    """:func:`write_many` on SQLite: the rows built as stored values, written by ``executemany``.

    Writers on SQLite hold the database's write lock for the whole transaction, so the
    ids found stored here cannot change before the inserts run. Each JSON value is
    serialized once: an event's own resource is the same text in both tables, and its
    ``related`` column is the related resources' texts joined.
    """
    stored = await dialects.sqlite_existing(session, _EVENT, "id", (i.hex for i in unique))
    now = dialects.sqlite_datetime(now_utc())
    datetime_text = dialects.sqlite_datetime
    dumps = dialects.json_text
    event_rows: list[tuple[Any, ...]] = []
    resource_rows: list[tuple[Any, ...]] = []
    row_id = _first_row_id()
    last_received: datetime | None = None
    received = None
    for event in unique.values():
        event_id = event.id.hex
        if event_id in stored:
            continue
        occurred = datetime_text(event.occurred)
        if event.received is not last_received:
            last_received = event.received
            received = datetime_text(last_received)
        resource = dumps(event.resource)
        resource_id = event.resource_id
        related_texts = []
        related_ids = []
        resource_rows.append(
            (f"{row_id:032x}", now, now, event_id, occurred, resource_id, "", resource)
        )
        row_id += 1
        for item in event.related:
            text = dumps(item)
            related_texts.append(text)
            rid = item[RESOURCE_ID]
            related_ids.append(rid)
            resource_rows.append(
                (
                    f"{row_id:032x}",
                    now,
                    now,
                    event_id,
                    occurred,
                    rid,
                    item.get(RESOURCE_ROLE, ""),
                    text,
                )
            )
            row_id += 1
        event_rows.append(
            (
                event_id,
                now,
                now,
                occurred,
                received,
                event.event,
                resource_id,
                resource,
                dumps(related_ids),
                "[" + ",".join(related_texts) + "]",
                dumps(event.payload),
                None if event.follows is None else event.follows.hex,
            )
        )
    await dialects.sqlite_execute_many(session, _INSERT_EVENTS, event_rows)
    await dialects.sqlite_execute_many(session, _INSERT_RESOURCES, resource_rows)
    return len(event_rows)


# --- filtering ---------------------------------------------------------------------------


def _labels(
    dialect: str,
    spec: ResourceSpecification,
    json_column: Any,
    id_column: Any,
    role_column: Any | None,
) -> list[ColumnElement[bool]]:
    clauses: list[ColumnElement[bool]] = []
    for label, value in spec.items():
        patterns = label_patterns(value)
        if not patterns:
            clauses.append(sa.false())
            continue
        if label == RESOURCE_ID:
            column = id_column
        elif label == RESOURCE_ROLE and role_column is not None:
            column = role_column
        else:
            column = dialects.json_key_text(dialect, json_column, label)
        clauses.append(sa.or_(*(glob(column, p) for p in patterns)))
    return clauses


def _resources_in_scope(
    flt: EventFilter, clauses: list[ColumnElement[bool]]
) -> ColumnElement[bool]:
    """Events having one ``event_resource`` row (within the time range) meeting ``clauses``."""
    er = t.EventResource
    inner = sa.select(er.event_id).where(
        er.occurred >= flt.occurred.since, er.occurred <= flt.occurred.until, *clauses
    )
    return t.Event.id.in_(inner)


def _related(dialect: str, flt: EventFilter, rel: EventRelatedFilter) -> ColumnElement[bool] | None:
    er = t.EventResource
    clauses: list[ColumnElement[bool]] = []
    if rel.id:
        clauses.append(er.resource_id.in_(rel.id))
    if rel.role:
        clauses.append(er.resource_role.in_(rel.role))
    if rel.resources_in_roles:
        clauses.append(
            sa.or_(
                *(
                    sa.and_(er.resource_id == rid, er.resource_role == role)
                    for rid, role in rel.resources_in_roles
                )
            )
        )
    if rel.labels:
        clauses.extend(_labels(dialect, rel.labels, er.resource, er.resource_id, er.resource_role))
    if not clauses:
        return None
    clauses.append(er.resource_role != "")
    return _resources_in_scope(flt, clauses)


def _any_resource(
    dialect: str, flt: EventFilter, anyf: EventAnyResourceFilter
) -> ColumnElement[bool] | None:
    er = t.EventResource
    clauses: list[ColumnElement[bool]] = []
    if anyf.id:
        clauses.append(er.resource_id.in_(anyf.id))
    if anyf.id_prefix:
        clauses.append(
            sa.or_(*(er.resource_id.startswith(p, autoescape=True) for p in anyf.id_prefix))
        )
    if anyf.labels:
        clauses.extend(_labels(dialect, anyf.labels, er.resource, er.resource_id, er.resource_role))
    if not clauses:
        return None
    return _resources_in_scope(flt, clauses)


def _text(flt: EventFilter) -> list[ColumnElement[bool]]:
    if flt.text is None:
        return []
    parsed = parse_text_query(flt.text.query)
    if parsed.empty:
        return []
    e = t.Event
    haystack = sa.func.lower(
        sa.cast(e.event, sa.Text)
        + " "
        + sa.cast(e.resource, sa.Text)
        + " "
        + sa.cast(e.related, sa.Text)
        + " "
        + sa.cast(e.payload, sa.Text)
    )
    clauses: list[ColumnElement[bool]] = []
    if parsed.include:
        clauses.append(
            sa.or_(*(haystack.contains(term.lower(), autoescape=True) for term in parsed.include))
        )
    clauses.extend(
        sa.not_(haystack.contains(term.lower(), autoescape=True)) for term in parsed.exclude
    )
    clauses.extend(haystack.contains(term.lower(), autoescape=True) for term in parsed.required)
    return clauses


def event_where(dialect: str, flt: EventFilter) -> ColumnElement[bool]:
    """The WHERE clause over ``event`` for ``flt``."""
    e = t.Event
    clauses: list[ColumnElement[bool]] = [
        e.occurred >= flt.occurred.since,
        e.occurred <= flt.occurred.until,
    ]
    if flt.id.id:
        clauses.append(e.id.in_(flt.id.id))
    if flt.event is not None:
        name = flt.event
        if name.prefix:
            clauses.append(sa.or_(*(e.event.startswith(p, autoescape=True) for p in name.prefix)))
        for p in name.exclude_prefix or ():
            clauses.append(sa.not_(e.event.startswith(p, autoescape=True)))
        if name.name:
            clauses.append(e.event.in_(name.name))
        if name.exclude_name:
            clauses.append(e.event.not_in(name.exclude_name))
    if flt.resource is not None:
        res = flt.resource
        if res.id:
            clauses.append(e.resource_id.in_(res.id))
        if res.id_prefix:
            clauses.append(
                sa.or_(*(e.resource_id.startswith(p, autoescape=True) for p in res.id_prefix))
            )
        if res.labels:
            clauses.extend(_labels(dialect, res.labels, e.resource, e.resource_id, None))
    for rel in flt.related_filters():
        clause = _related(dialect, flt, rel)
        if clause is not None:
            clauses.append(clause)
    for anyf in flt.any_resource_filters():
        clause = _any_resource(dialect, flt, anyf)
        if clause is not None:
            clauses.append(clause)
    clauses.extend(_text(flt))
    return sa.and_(*clauses)


# --- reading -----------------------------------------------------------------------------
# Every read spans two kinds of event: those stored in ``event``, and the task-run state
# events read back from ``task_run_state`` (see ``store.task_run_events``). Each kind is
# one SELECT of the same columns; the queries below combine them with UNION ALL, so that
# ordering, paging and counting happen in the database for both at once.


def _not_synthesized() -> ColumnElement[bool]:
    """Not a task-run event stored before they were read from their states (those are
    read from the states now, and would otherwise come twice)."""
    e, s = t.Event, t.TaskRunState
    return sa.not_(
        sa.and_(
            e.event.startswith(task_run_events.EVENT_PREFIX, autoescape=True),
            sa.exists(sa.select(sa.literal(1)).where(s.id == e.id)),
        )
    )


def _stored(dialect: str, flt: EventFilter, columns: Sequence[str]) -> sa.Select[Any]:
    e = t.Event
    makers: dict[str, Any] = {
        "occurred": lambda: e.occurred,
        "id": lambda: e.id,
        "event": lambda: e.event,
        "resource_id": lambda: e.resource_id,
        "label": lambda: sa.func.coalesce(
            dialects.json_key_text(dialect, e.resource, "prefect.resource.name"),
            dialects.json_key_text(dialect, e.resource, "prefect.name"),
            e.resource_id,
        ),
        "kind": lambda: sa.literal(_STORED),
    }
    return sa.select(*(makers[name]().label(name) for name in columns)).where(
        event_where(dialect, flt), _not_synthesized()
    )


#: The ``kind`` column of each side.
_STORED, _SYNTHESIZED = 0, task_run_events.KIND


def _branches(dialect: str, flt: EventFilter, columns: Sequence[str]) -> list[sa.Select[Any]]:
    """One SELECT of ``columns`` per kind of event that can match ``flt``."""
    branches = [_stored(dialect, flt, columns)]
    synthesized = task_run_events.matching(dialect, flt, columns)
    if synthesized is not None:
        branches.append(synthesized)
    return branches


def _matching(dialect: str, flt: EventFilter, columns: Sequence[str]) -> Any:
    """Every matching event of both kinds, as a subquery of ``columns``."""
    branches = _branches(dialect, flt, columns)
    if len(branches) == 1:
        return branches[0].subquery("matching")
    return sa.union_all(*branches).subquery("matching")


def _distinct(flt: EventFilter) -> bool:
    return bool(flt.resource is not None and flt.resource.distinct)


async def count(session: AsyncSession, flt: EventFilter) -> int:
    """How many events match (distinct resources when ``resource.distinct``)."""
    dialect = dialects.dialect_name(session)
    if _distinct(flt):
        matching = _matching(dialect, flt, ("resource_id",))
        measure = sa.func.count(sa.distinct(matching.c.resource_id))
        return (await session.execute(sa.select(measure).select_from(matching))).scalar_one()
    total = 0
    for branch in _branches(dialect, flt, ("id",)):
        counted = sa.select(sa.func.count()).select_from(branch.subquery())
        total += (await session.execute(counted)).scalar_one()
    return total


#: A position in a result: the (occurred, id) of the last event already returned.
Cursor = tuple[datetime, uuid.UUID]


def _ordered(
    source: Any, descending: bool, after: Cursor | None, limit: int | None
) -> sa.Select[Any]:
    """(occurred, id, kind) of ``source`` after the cursor, in order, at most ``limit``."""
    occurred, id_ = source.c.occurred, source.c.id
    stmt = sa.select(occurred, id_, source.c.kind)
    if after is not None:
        at, last_id = after
        if descending:
            stmt = stmt.where(sa.or_(occurred < at, sa.and_(occurred == at, id_ < last_id)))
        else:
            stmt = stmt.where(sa.or_(occurred > at, sa.and_(occurred == at, id_ > last_id)))
    if descending:
        stmt = stmt.order_by(occurred.desc(), id_.desc())
    else:
        stmt = stmt.order_by(occurred.asc(), id_.asc())
    return stmt if limit is None else stmt.limit(limit)


async def read_page(
    session: AsyncSession, flt: EventFilter, limit: int, after: Cursor | None = None
) -> tuple[list[ReceivedEvent], Cursor | None]:
    """Up to ``limit`` matching events in ``flt.order`` after the ``after`` cursor.

    Pages are keyed on (occurred, id), so events stored while a client pages through a
    result neither repeat nor shift the pages it has not read yet. Each kind of event
    is ordered and cut to the page size on its own before the two are merged, so the
    database never sorts more than a page from either.

    Returns:
        The events, and the cursor for the next page (``None`` if this was the last).
    """
    dialect = dialects.dialect_name(session)
    descending = flt.order is EventOrder.DESC
    if _distinct(flt):
        matching = _matching(dialect, flt, ("occurred", "id", "resource_id", "kind"))
        ordering = (
            (matching.c.occurred.desc(), matching.c.id.desc())
            if descending
            else (matching.c.occurred, matching.c.id)
        )
        rank = sa.func.row_number().over(partition_by=matching.c.resource_id, order_by=ordering)
        ranked = sa.select(
            matching.c.occurred, matching.c.id, matching.c.kind, rank.label("rank")
        ).subquery()
        firsts = (
            sa.select(ranked.c.occurred, ranked.c.id, ranked.c.kind)
            .where(ranked.c.rank == 1)
            .subquery()
        )
        stmt = _ordered(firsts, descending, after, limit + 1)
    else:
        branches = _branches(dialect, flt, ("occurred", "id", "kind"))
        pages = [_ordered(b.subquery(), descending, after, limit + 1) for b in branches]
        if len(pages) == 1:
            stmt = pages[0]
        else:
            merged = sa.union_all(*(sa.select(p.subquery()) for p in pages)).subquery()
            stmt = _ordered(merged, descending, None, limit + 1)
    keys = (await session.execute(stmt)).all()
    page = keys[:limit]
    events = await _load(session, page)
    more = len(keys) > limit and limit > 0
    cursor = (page[-1].occurred, page[-1].id) if more and page else None
    return events, cursor


async def _load(session: AsyncSession, keys: Sequence[Any]) -> list[ReceivedEvent]:
    """The events ``keys`` (occurred, id, kind) name, in that order."""
    stored_ids = [key.id for key in keys if key.kind == _STORED]
    found: dict[uuid.UUID, ReceivedEvent] = {}
    if stored_ids:
        rows = await session.execute(sa.select(t.Event).where(t.Event.id.in_(stored_ids)))
        found.update((row.id, ReceivedEvent.model_validate(row)) for row in rows.scalars())
    synthesized = await task_run_events.load(
        session, [key.id for key in keys if key.kind == _SYNTHESIZED]
    )
    events = []
    for key in keys:
        event = (found if key.kind == _STORED else synthesized).get(key.id)
        if event is not None:  # deleted since the keys were read
            events.append(event)
    return events


# --- page tokens -------------------------------------------------------------------------


class InvalidPageToken(ValueError):
    """A page token that this server did not produce (or that was altered)."""


def encode_page_token(flt: EventFilter, limit: int, total: int, cursor: Cursor) -> str:
    """An opaque, URL-safe token for the page after ``cursor`` of the query ``flt``."""
    body = {
        "filter": flt.model_dump(mode="json"),
        "limit": limit,
        "total": total,
        "after": [cursor[0].isoformat(), str(cursor[1])],
    }
    return (
        base64.urlsafe_b64encode(json.dumps(body, separators=(",", ":")).encode())
        .decode()
        .rstrip("=")
    )


def decode_page_token(token: str) -> tuple[EventFilter, int, int, Cursor]:
    """The query, page size, total and cursor a token carries.

    Raises:
        InvalidPageToken: the token cannot be read.
    """
    try:
        padded = token + "=" * (-len(token) % 4)
        body = json.loads(base64.urlsafe_b64decode(padded.encode()))
        flt = EventFilter.model_validate(body["filter"])
        occurred = datetime.fromisoformat(body["after"][0])
        cursor = (occurred, uuid.UUID(body["after"][1]))
        return flt, int(body["limit"]), int(body["total"]), cursor
    except (binascii.Error, ValueError, KeyError, TypeError, IndexError, ValidationError) as exc:
        raise InvalidPageToken(str(exc)) from exc


# --- counting ----------------------------------------------------------------------------


async def count_by(
    session: AsyncSession,
    flt: EventFilter,
    countable: Countable,
    time_unit: TimeUnit = TimeUnit.day,
    time_interval: float = 1.0,
    now: datetime | None = None,
) -> list[EventCount]:
    """Matching events counted per time bucket, event name or resource.

    Time buckets (``day``, ``time``) cover the whole filtered range, empty ones with a
    zero count, oldest first. Names and resources come most frequent first.

    Raises:
        counting.InvalidCountRequest: the time range needs too many buckets.
    """
    if countable in (Countable.day, Countable.time):
        if countable is Countable.day:
            time_unit, time_interval = TimeUnit.day, 1.0
        return await _count_by_time(
            session, flt, time_unit.as_timedelta(time_interval), now or now_utc()
        )
    return await _count_by_value(session, flt, countable)


async def _count_by_time(
    session: AsyncSession, flt: EventFilter, delta: Any, now: datetime
) -> list[EventCount]:
    spans = counting.buckets(flt.occurred.since, flt.occurred.until, now, delta)
    dialect = dialects.dialect_name(session)
    pivot = counting.PIVOT.timestamp()
    matching = _matching(dialect, flt, ("occurred",))
    index = dialects.floor(
        dialect,
        (dialects.epoch_seconds(dialect, matching.c.occurred) - pivot) / delta.total_seconds(),
    )
    bucket = index.label("bucket")
    stmt = sa.select(bucket, sa.func.count().label("n")).select_from(matching).group_by(bucket)
    counts = {int(row.bucket): int(row.n) for row in (await session.execute(stmt)).all()}
    return [
        EventCount(
            value=str(position),
            label=span.start.isoformat(),
            count=counts.get(span.index, 0),
            start_time=span.start,
            end_time=span.end,
        )
        for position, span in enumerate(spans)
    ]


async def _count_by_value(
    session: AsyncSession, flt: EventFilter, countable: Countable
) -> list[EventCount]:
    dialect = dialects.dialect_name(session)
    by_event = countable is Countable.event
    columns = (
        ("occurred", "id", "event") if by_event else ("occurred", "id", "resource_id", "label")
    )
    found: dict[str, tuple[str, int, datetime, datetime]] = {}
    for position, branch in enumerate(_branches(dialect, flt, columns)):
        m = branch.subquery()
        value = m.c.event if by_event else m.c.resource_id
        if by_event or position > 0:
            # A name labels itself; a synthesized event's label (its task run's name) is
            # the same for all events of its resource: a plain GROUP BY is enough.
            label = value if by_event else sa.func.max(m.c.label)
            stmt: sa.Select[Any] = sa.select(
                value.label("value"),
                label.label("label"),
                sa.func.count().label("n"),
                sa.func.min(m.c.occurred).label("first"),
                sa.func.max(m.c.occurred).label("last"),
            ).group_by(value)
        else:
            # Each stored resource is labelled as its most recent event labels it.
            window: dict[str, Any] = {"partition_by": value}
            inner = sa.select(
                value.label("value"),
                m.c.label.label("label"),
                sa.func.row_number()
                .over(order_by=(m.c.occurred.desc(), m.c.id.desc()), **window)
                .label("rank"),
                sa.func.count().over(**window).label("n"),
                sa.func.min(m.c.occurred).over(**window).label("first"),
                sa.func.max(m.c.occurred).over(**window).label("last"),
            ).subquery()
            stmt = sa.select(
                inner.c.value, inner.c.label, inner.c.n, inner.c.first, inner.c.last
            ).where(inner.c.rank == 1)
        for row in (await session.execute(stmt)).all():
            key, first, last = str(row.value), _as_datetime(row.first), _as_datetime(row.last)
            seen = found.get(key)
            if seen is None:
                found[key] = (str(row.label), int(row.n), first, last)
            else:  # a value both kinds have: one count, labelled by the latest event
                found[key] = (
                    seen[0] if seen[3] >= last else str(row.label),
                    seen[1] + int(row.n),
                    min(seen[2], first),
                    max(seen[3], last),
                )
    counts = [
        EventCount(value=key, label=label, count=n, start_time=first, end_time=last)
        for key, (label, n, first, last) in found.items()
    ]
    counts.sort(key=lambda c: (-c.count, c.label))
    return counts


def _as_datetime(value: Any) -> datetime:
    """Window aggregates lose the column type on SQLite; read them back as UTC datetimes."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=counting.PIVOT.tzinfo)
    return datetime.fromisoformat(str(value)).replace(tzinfo=counting.PIVOT.tzinfo)
