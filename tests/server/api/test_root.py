"""Server-level endpoints the real Prefect client relies on."""

from __future__ import annotations


async def test_health_ready_hello(client) -> None:
    assert (await client.get("/health")).json() is True
    assert (await client.get("/ready")).json() == {"message": "OK"}
    assert (await client.get("/hello")).status_code == 200


async def test_version_has_prefect_major_3(client) -> None:
    for path in ("/version", "/admin/version"):
        version = (await client.get(path)).json()
        assert version.split(".")[0] == "3"


async def test_csrf_disabled_answers_as_the_prefect_client_expects(client) -> None:
    response = await client.get("/csrf-token", params={"client": "abc"})
    assert response.status_code == 422
    assert "CSRF protection is disabled." in response.text


async def test_settings_mask_secrets(client) -> None:
    data = (await client.get("/admin/settings")).json()
    assert data["server_port"] == 4200
    assert "flowplane_version" in data
