"""Log endpoints: write log lines in bulk, read them filtered, and stream them live."""

from __future__ import annotations

from fastapi import APIRouter, Body, Depends, WebSocket, status
from pydantic import ValidationError

from flowplane.schemas import filters as f
from flowplane.schemas.logs import Log, LogCreate
from flowplane.schemas.sorting import LogSort
from flowplane.server.api import API_PREFIX
from flowplane.server.api.deps import get_bus, get_db
from flowplane.server.api.lazy_route import LazyAPIRoute
from flowplane.server.db.session import Database
from flowplane.server.events import websockets as ws
from flowplane.server.events.bus import EventBus, SubscriberOverflow
from flowplane.server.events.matching import log_matches
from flowplane.server.ingestion import ingest_logs
from flowplane.server.store import logs as store

router = APIRouter(prefix=f"{API_PREFIX}/logs", tags=["Logs"], route_class=LazyAPIRoute)

#: The most lines one read returns, and the default.
DEFAULT_LIMIT = 200
#: Log lines a live subscriber may have waiting before it is cut off.
STREAM_BACKLOG = 10_000


@router.post("/", status_code=status.HTTP_201_CREATED)
async def create_logs(
    logs: list[LogCreate], db: Database = Depends(get_db), bus: EventBus = Depends(get_bus)
) -> None:
    """Store a batch of log lines (all or none), then hand them to live subscribers."""
    await ingest_logs(db, bus, logs)


@router.post("/filter", response_model=list[Log])
async def read_logs(
    limit: int | None = Body(None, ge=0, le=DEFAULT_LIMIT),
    offset: int | None = Body(0, ge=0),
    logs: f.LogFilter | None = None,
    sort: LogSort | None = Body(LogSort.TIMESTAMP_ASC),
    db: Database = Depends(get_db),
) -> list[Log]:
    """Log lines matching ``logs``. Prefect's client sends ``null`` for an unset limit or offset."""
    async with db.read_session() as session:
        rows = await store.read_many(
            session,
            logs=logs,
            sort=sort or LogSort.TIMESTAMP_ASC,
            offset=offset or 0,
            limit=DEFAULT_LIMIT if limit is None else limit,
        )
    return [Log.model_validate(r) for r in rows]


@router.websocket("/out")
async def stream_logs_out(websocket: WebSocket) -> None:
    """Stream log lines as they are written: auth, then ``{"type": "filter", "filter": LogFilter}``.

    Each matching line arrives as ``{"type": "log", "log": Log}``. There is no backfill.
    """
    if not await ws.accept(websocket):
        return
    try:
        message = await ws.receive_json(websocket)
    except Exception:
        return
    if not isinstance(message, dict) or message.get("type") != "filter":
        await ws.close(websocket, ws.PROTOCOL_ERROR, "Expected 'filter' message")
        return
    try:
        flt = f.LogFilter.model_validate(message.get("filter") or {})
    except ValidationError as exc:
        await ws.close(
            websocket, ws.PROTOCOL_ERROR, f"Invalid filter: {exc.error_count()} error(s)"
        )
        return

    bus: EventBus = websocket.app.state.bus
    subscription = bus.subscribe(
        "logs", maxsize=STREAM_BACKLOG, predicate=lambda log: log_matches(flt, log)
    )

    async def send() -> None:
        try:
            while True:
                log = await subscription.get()
                await websocket.send_json({"type": "log", "log": log.model_dump(mode="json")})
        except SubscriberOverflow:
            await ws.close(websocket, ws.TRY_AGAIN_LATER, "Subscriber fell too far behind")

    with subscription:
        await ws.serve_until_disconnect(websocket, send)
