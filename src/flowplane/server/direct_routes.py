"""The hot flow-run routes served in-process by their own handlers, for the embedded transport.

Every flow run makes two requests: ``POST /flow_runs/`` (created in Running) and
``POST /flow_runs/{id}/set_state`` (its final state). Embedded, :func:`serve` answers them by
calling the very router functions FastAPI would call, with the body validated by the same
models, skipping only HTTP framing, middleware and routing. Anything it is not sure to
answer exactly as the app would (a body the models refuse, an error answer) returns
``None`` and the request takes the app's usual path; a refused request has changed nothing
(handlers raise before or instead of committing), so serving it again is safe.
"""

from __future__ import annotations

import logging
import re
from typing import Any
from uuid import UUID

import orjson
from fastapi import HTTPException
from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from starlette.responses import Response

from flowplane.schemas.flow_runs import FlowRunCreate
from flowplane.schemas.states import StateCreate
from flowplane.server.api import flow_runs
from flowplane.server.app import API_PREFIX

logger = logging.getLogger("flowplane.embedded")

_CREATE = f"{API_PREFIX}/flow_runs/"
# The UUID spellings FastAPI's path parameter accepts (uuid.UUID would also take misplaced dashes).
_UUID = (
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[0-9a-fA-F]{32}"
)
_SET_STATE = re.compile(rf"^{re.escape(API_PREFIX)}/flow_runs/({_UUID})/set_state$")


async def serve(app: Any, path: str, body: bytes) -> Response | None:
    """Answer ``POST path`` with ``body`` by the route's own handler, or None to let the app do it."""
    try:
        if path == _CREATE:
            run = FlowRunCreate.model_validate(orjson.loads(body))
            call = flow_runs.create_flow_run(run, db=app.state.db, bus=app.state.bus)
        else:
            match = _SET_STATE.match(path)
            if match is None:
                return None
            data = orjson.loads(body)
            force = data.get("force", False) if type(data) is dict else None
            if type(force) is not bool or set(data) - {"state", "force"}:
                return None
            state = StateCreate.model_validate(data["state"])
            call = flow_runs.set_flow_run_state(
                UUID(match.group(1)), state, force, db=app.state.db, bus=app.state.bus
            )
    except (orjson.JSONDecodeError, ValidationError, KeyError, ValueError):
        return None
    try:
        return await call
    except (HTTPException, IntegrityError):
        return None  # nothing was written: the app serves it and answers its own way
