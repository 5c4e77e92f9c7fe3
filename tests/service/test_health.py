"""GET /health and the OpenAPI docs."""

from quart.typing import TestClientProtocol as Client

from xpbase.migrate import list_migrations
from xpbase.settings import REPO_ROOT


async def test_health_reports_database_and_schema_version(client: Client) -> None:
    """/health answers 200 with the newest migration version when the database is reachable."""
    response = await client.get("/health")
    assert response.status_code == 200
    body = await response.get_json()
    assert body == {
        "status": "ok",
        "database": "ok",
        "schema_version": list_migrations(REPO_ROOT / "supabase")[-1].version,
    }


async def test_health_is_503_when_database_is_down(client: Client, app) -> None:  # type: ignore[no-untyped-def]
    """/health answers 503 with status unavailable when the pool cannot reach Postgres."""
    await app.config["XPBASE_DB"].pool.close()
    response = await client.get("/health")
    assert response.status_code == 503
    assert (await response.get_json())["database"] == "unreachable"


async def test_openapi_docs_are_served(client: Client) -> None:
    """The OpenAPI document lists /v1/me and /health, and /docs serves the UI."""
    spec = await (await client.get("/openapi.json")).get_json()
    assert "/v1/me" in spec["paths"] and "/health" in spec["paths"]
    docs = await client.get("/docs")
    assert docs.status_code == 200
    assert "swagger" in (await docs.get_data(as_text=True)).lower()


async def test_unknown_route_uses_the_error_shape(client: Client) -> None:
    """A 404 has the same error body as every other failure."""
    response = await client.get("/nope")
    assert response.status_code == 404
    body = await response.get_json()
    assert body["error"]["code"] == "not_found"
