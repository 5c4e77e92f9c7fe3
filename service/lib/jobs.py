"""Periodic database jobs that the service runs in the background.

- ``finalize_seasons()`` every ``XPBASE_SEASON_FINALIZE_INTERVAL`` seconds:
  freezes ended seasons and grants their rewards.
- ``service_role_compact_leaderboard_counts()`` every
  ``XPBASE_LEADERBOARD_COMPACT_INTERVAL`` seconds: folds the count changes
  that awards append into the leaderboard counts.

Both are idempotent and safe to run from several processes at once (seasons
are claimed with ``for update skip locked``, compaction takes an advisory
lock), so every service process may run them; on Supabase, ``pg_cron`` can run
them instead (README).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from xpbase.errors import DomainError
from xpbase.models.seasons import Finalized
from xpbase.rpc import RPC, RPCError

log = logging.getLogger(__name__)


async def call_forever(
    rpc: RPC, function: str, interval: float, describe: Callable[[Any], str | None]
) -> None:
    """Call ``public.<function>()`` as service_role now and then every ``interval`` seconds, forever.

    ``describe`` turns a result (its model from xpbase.models, or a JSON
    value) into a log line (None: nothing worth logging). Errors are logged
    and the call is retried at the next tick.
    """
    while True:
        try:
            line = describe(await rpc.call(function))
            if line:
                log.info("%s", line)
        except (RPCError, DomainError, ValidationError) as exc:
            log.warning("%s failed, retrying in %.0f s: %s", function, interval, exc)
        await asyncio.sleep(interval)


def describe_finalized(result: Finalized) -> str | None:
    """A log line for a finalize_seasons result that finalized something."""
    if not result.count:
        return None
    return f"finalized {result.count} season(s): " + ", ".join(s.name for s in result.finalized)


def describe_compacted(rows: int) -> str | None:
    """A log line for a compaction that folded rows."""
    return f"folded {rows} leaderboard count change(s)" if rows else None
