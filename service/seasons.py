"""The season job: finalize_seasons on a schedule, inside the service process."""

from __future__ import annotations

import asyncio
import logging

import asyncpg

from xpbase.db import Database
from xpbase.errors import DomainError

log = logging.getLogger(__name__)


async def finalize_seasons_forever(database: Database, interval: float) -> None:
    """Call ``public.finalize_seasons()`` as service_role now and then every ``interval`` seconds.

    Errors are logged and retried at the next tick: the function is idempotent
    and safe to run from several processes at once (seasons are claimed with
    ``for update skip locked``), so a failed or doubled run costs nothing.
    """
    while True:
        try:
            result = await database.rpc("finalize_seasons")
            if result["count"]:
                log.info(
                    "finalized %d season(s): %s",
                    result["count"],
                    ", ".join(s["name"] for s in result["finalized"]),
                )
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, DomainError) as exc:
            log.warning("finalize_seasons failed, retrying in %.0f s: %s", interval, exc)
        await asyncio.sleep(interval)
