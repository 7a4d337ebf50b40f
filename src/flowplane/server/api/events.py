"""Event endpoints: receive events (HTTP and websocket), query and count them, stream them out."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Coroutine
from datetime import datetime, timedelta
from typing import Any

import orjson
from fastapi import (
    APIRouter,
    Body,
    Depends,
    HTTPException,
    Path,
    Query,
    Request,
    Response,
    WebSocket,
    status,
)
from fastapi.routing import APIRoute
from pydantic import ValidationError

from flowplane.schemas.base import now_utc
from flowplane.schemas.events import (
    Countable,
    Event,
    EventCount,
    EventFilter,
    EventPage,
    ReceivedEvent,
    TimeUnit,
)
from flowplane.schemas.sorting import EventOrder
from flowplane.server.api import API_PREFIX
from flowplane.server.api.deps import get_bus, get_db
from flowplane.server.db.session import Database
from flowplane.server.events import counting
from flowplane.server.events import websockets as ws
from flowplane.server.events.bus import EventBus, SubscriberOverflow
from flowplane.server.events.matching import event_matches
from flowplane.server.ingestion import ingest_events
from flowplane.server.store import events as store

logger = logging.getLogger("flowplane.server.api.events")


class _OrjsonRequest(Request):
    """A request whose JSON body is parsed by orjson (twice as fast as ``json`` on event batches)."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = await self.body()
            try:
                self._json = orjson.loads(body)
            except orjson.JSONDecodeError:
                # What orjson refuses but json reads (NaN, integers past 64 bits) stays accepted;
                # a body neither can read raises json's error, which FastAPI answers with a 422.
                self._json = json.loads(body)
        return self._json


class _OrjsonRoute(APIRoute):
    """Routes of this router read JSON bodies with orjson (FastAPI's custom-route pattern)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            return await handler(_OrjsonRequest(request.scope, request.receive))

        return handle


router = APIRouter(prefix=f"{API_PREFIX}/events", tags=["Events"], route_class=_OrjsonRoute)

#: The most events one page may hold (Prefect's contract says 50; its client asks for 100).
MAX_PAGE_SIZE = 200
#: How far back ``/events/out`` replays stored events, whatever the filter asks.
MAX_BACKFILL = timedelta(minutes=15)
BACKFILL_PAGE_SIZE = 250
#: Events a live subscriber may have waiting before it is cut off.
STREAM_BACKLOG = 10_000
#: "Until" for a stream whose filter gave none: it follows events indefinitely.
FAR_FUTURE = datetime(9999, 1, 1, tzinfo=counting.PIVOT.tzinfo)


@router.post("", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
async def create_events(events: list[Event], bus: EventBus = Depends(get_bus)) -> None:
    """Receive a batch of events; they are stored (and acted on) in the background."""
    await ingest_events(bus, events)


def _next_page_url(request: Request, token: str | None) -> str | None:
    if token is None:
        return None
    return f"{request.base_url}api/events/filter/next?page-token={token}"


@router.post("/filter", response_model=EventPage)
async def read_events(
    request: Request,
    filter: EventFilter | None = Body(None),
    limit: int = Body(50, ge=0, le=MAX_PAGE_SIZE),
    db: Database = Depends(get_db),
) -> EventPage:
    """The first page of matching events, the total, and the URL of the next page."""
    flt = filter or EventFilter()
    async with db.read_session() as session:
        total = await store.count(session, flt)
        events, cursor = await store.read_page(session, flt, limit)
    token = store.encode_page_token(flt, limit, total, cursor) if cursor else None
    return EventPage(events=events, total=total, next_page=_next_page_url(request, token))


@router.get("/filter/next", response_model=EventPage)
async def read_events_page(
    request: Request,
    page_token: str = Query(..., alias="page-token"),
    db: Database = Depends(get_db),
) -> EventPage:
    """The page a ``next_page`` URL points at."""
    try:
        flt, limit, total, after = store.decode_page_token(page_token)
    except store.InvalidPageToken:
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="Invalid page token.")
    async with db.read_session() as session:
        events, cursor = await store.read_page(session, flt, limit, after=after)
    token = store.encode_page_token(flt, limit, total, cursor) if cursor else None
    return EventPage(events=events, total=total, next_page=_next_page_url(request, token))


@router.post("/count-by/{countable}", response_model=list[EventCount])
async def count_events(
    filter: EventFilter = Body(...),
    countable: Countable = Path(...),
    time_unit: TimeUnit = Body(TimeUnit.day),
    time_interval: float = Body(1.0, ge=0.01),
    db: Database = Depends(get_db),
) -> list[EventCount]:
    """Matching events counted per time bucket (``day``, ``time``), event name or resource."""
    async with db.read_session() as session:
        try:
            return await store.count_by(session, filter, countable, time_unit, time_interval)
        except counting.InvalidCountRequest as exc:
            raise HTTPException(422, detail=str(exc))


@router.websocket("/in")
async def stream_events_in(websocket: WebSocket) -> None:
    """Receive events over a websocket: auth, then one JSON event per text frame."""
    if not await ws.accept(websocket):
        return
    bus: EventBus = websocket.app.state.bus
    async for text in ws.iter_text(websocket):
        try:
            event = Event.model_validate_json(text)
        except ValidationError as exc:
            logger.warning("Dropping an invalid event from /events/in: %s", exc.errors()[:3])
            continue
        await bus.wait_for_room("events")
        bus.publish("events", [event.receive()])


@router.websocket("/out")
async def stream_events_out(websocket: WebSocket) -> None:
    """Stream events: auth, then ``{"type": "filter", "filter": EventFilter, "backfill": bool}``.

    Matching events stored since ``filter.occurred.since`` (at most 15 minutes back)
    come first, oldest first, then new ones as they arrive, each once, as
    ``{"type": "event", "event": ReceivedEvent}``.
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
    raw = message.get("filter") or {}
    try:
        flt = EventFilter.model_validate(raw)
    except ValidationError as exc:
        await ws.close(
            websocket, ws.PROTOCOL_ERROR, f"Invalid filter: {exc.error_count()} error(s)"
        )
        return
    if not (
        isinstance(raw, dict)
        and isinstance(raw.get("occurred"), dict)
        and raw["occurred"].get("until")
    ):
        flt.occurred.until = FAR_FUTURE  # a stream without an end follows events indefinitely
    flt.occurred.since = max(flt.occurred.since, now_utc() - MAX_BACKFILL)
    flt.order = EventOrder.ASC
    wants_backfill = message.get("backfill", True) is not False

    bus: EventBus = websocket.app.state.bus
    db: Database = websocket.app.state.db
    # Subscribe before reading the backlog so that nothing falls between the two.
    subscription = bus.subscribe(
        "events", maxsize=STREAM_BACKLOG, predicate=lambda e: event_matches(flt, e)
    )

    async def send() -> None:
        sent: set[object] = set()
        if wants_backfill:
            for event in await _backfill(db, bus, flt):
                sent.add(event.id)
                await websocket.send_json({"type": "event", "event": event.model_dump(mode="json")})
        try:
            while True:
                event = await subscription.get()
                if event.id in sent:
                    sent.discard(event.id)
                    continue
                await websocket.send_json({"type": "event", "event": event.model_dump(mode="json")})
        except SubscriberOverflow:
            await ws.close(websocket, ws.TRY_AGAIN_LATER, "Subscriber fell too far behind")

    with subscription:
        await ws.serve_until_disconnect(websocket, send)


async def _backfill(db: Database, bus: EventBus, flt: EventFilter) -> list[ReceivedEvent]:
    """Stored matching events plus published ones not stored yet, oldest first, each once."""
    found: dict[object, ReceivedEvent] = {}
    async with db.read_session() as session:
        after = None
        while True:
            page, after = await store.read_page(session, flt, BACKFILL_PAGE_SIZE, after=after)
            for event in page:
                found.setdefault(event.id, event)
            if after is None:
                break
    for event in bus.recent("events"):
        if event.id not in found and event_matches(flt, event):
            found[event.id] = event
    return sorted(found.values(), key=lambda e: (e.occurred, str(e.id)))
