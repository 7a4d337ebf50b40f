"""Bad request bodies get Prefect-shaped 422s, even when they hold values JSON cannot carry."""

from __future__ import annotations

from typing import Any


async def test_nan_in_a_bad_body_is_still_a_422(client: Any) -> None:
    response = await client.post(
        "/flow_runs/filter",
        content=b'{"limit": NaN}',
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "limit"]
    assert error["input"] is None  # NaN has no JSON form


async def test_ordinary_validation_errors_name_the_field(client: Any) -> None:
    response = await client.post("/flow_runs/filter", json={"limit": "many"})
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "limit"]
    assert error["input"] == "many"
