"""Liveness and schema version."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import asyncpg
from quart import Blueprint
from quart_schema import tag_blueprint, validate_response

from service.lib.context import get_db

blueprint = Blueprint("health", __name__)
tag_blueprint(blueprint, ["health"])
log = logging.getLogger(__name__)


@dataclass
class Health:
    """``status`` ok or unavailable, ``database`` ok or unreachable, the schema version when it answers."""

    status: str
    database: str
    schema_version: str | None


@blueprint.get("/health")
@validate_response(Health, 200)
@validate_response(Health, 503)
async def get_health() -> tuple[Health, int]:
    """Service health: whether the database answers and which schema version it runs.

    200 with status "ok" and the newest applied migration version; 503 with
    status "unavailable" when the database cannot be reached within 5 seconds.
    """
    try:
        version = await asyncio.wait_for(get_db().rpc("schema_version"), timeout=5)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
        log.warning("health check: database unreachable: %s", exc)
        return Health(status="unavailable", database="unreachable", schema_version=None), 503
    return Health(status="ok", database="ok", schema_version=version), 200
