"""Group commit of awards: award calls that arrive within a few milliseconds share one transaction.

Every award is its own transaction when it goes through ``rpc.call("award_xp", ...)``: one commit (a WAL
flush) and four round trips per award. ``AwardGroupCommit`` sits on top of an :class:`xpbase.rpc.RPC`
(either transport) and merges the awards that callers make at about the same time into one call of
``public.service_role_award_group`` (supabase/sql/34_award_group.sql), which decides the group as one set
(``private.award_set``), split into sets around a refused call (decided alone in a subtransaction), and
answers per award its receipt or its error::

    group = AwardGroupCommit(rpc, window=0.002, max_batch=64)
    receipt = await group.award(profile_id, "message", "discord:message:123")     # an AwardReceipt
    receipt = await group.discord_award(guild_id=..., user_id=..., ...)           # a DiscordAward

The first call of a group starts a timer of ``window`` seconds; the calls that arrive before it fires (or
until ``max_batch`` of them wait) are sent together. Several groups may be in flight at once (as many as
the transport's pool allows).

What each caller gets:

- its own receipt, typed as ``rpc.call`` would type it, only after the group's transaction has committed
  (the answer is read after COMMIT returned), so nothing is acknowledged before it is durable;
- its own error when its award failed (``DomainError`` for the engine's SQLSTATEs such as XPIDM, XPACT,
  XPSUS, XPBAD; ``RPCError`` for others): a failed award changed nothing, and the other awards of the
  group commit without it;
- when the whole group failed (the database unreachable or the connection lost, a commit that failed, a
  deadlock that persisted through the transport's retries), the same error as every other caller of that
  group: ``RPCUnavailable``, ``RPCError`` or ``DomainError``, and none of the group's awards is
  acknowledged. As with a single call, a connection lost during COMMIT leaves the outcome unknown: the
  awards may have committed, and a retry with the same idempotency key is safe (it replays the receipt).

A caller cancelled while its award still waits for its group is dropped from it (never sent); one
cancelled after the group was sent may still be credited, as with a single call.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from uuid import UUID

from pydantic import ValidationError

from xpbase.errors import DomainError, from_sqlstate
from xpbase.models.award_group import GroupCallError
from xpbase.models.discord import DiscordAward
from xpbase.models.engine import AwardReceipt
from xpbase.rpc import RPC, RPCError, RPCUnavailable, jsonable, typed
from xpbase.settings import Settings

log = logging.getLogger(__name__)

GROUP_FUNCTION = "service_role_award_group"
MAX_GROUP = 500
"""The most calls service_role_award_group takes at once (XPBIG beyond)."""


@dataclass(frozen=True)
class _Waiting:
    call: dict[str, Any]
    future: asyncio.Future[Any]


def call_error(error: GroupCallError) -> DomainError | RPCError:
    """The exception a call's error item stands for, as ``rpc.call`` would raise it for a single call."""
    domain = from_sqlstate(error.sqlstate, error.message)
    return domain if domain is not None else RPCError(error.sqlstate, error.message, error.detail)


class AwardGroupCommit:
    """Merges concurrent award calls into one ``service_role_award_group`` call per ``window`` seconds.

    ``rpc``: the transport (calls run as service_role). ``window``: seconds a group stays open after its
    first call (0: only the calls made in the same event loop turn). ``max_batch``: a group is sent as soon
    as this many calls wait (1 to 500; up to 64 keeps each group's subtransactions within Postgres' cache
    of 64 subtransaction ids per backend, beyond which other sessions' snapshots get slower).
    Raises ValueError for a negative window or a max_batch outside 1-500.

    ``groups_sent`` and ``calls_sent`` count the calls of service_role_award_group and the awards in them.
    """

    def __init__(self, rpc: RPC, *, window: float = 0.002, max_batch: int = 64) -> None:
        if window < 0:
            raise ValueError(f"window must be at least 0 seconds, got {window}")
        if not 1 <= max_batch <= MAX_GROUP:
            raise ValueError(f"max_batch must be 1 to {MAX_GROUP}, got {max_batch}")
        self.rpc = rpc
        self.window = window
        self.max_batch = max_batch
        self.groups_sent = 0
        self.calls_sent = 0
        self._waiting: list[_Waiting] = []
        self._timer: asyncio.TimerHandle | None = None
        self._in_flight: set[asyncio.Task[None]] = set()
        self._closed = False

    @classmethod
    def from_settings(cls, rpc: RPC, settings: Settings) -> AwardGroupCommit:
        """A group commit with the window and batch size of ``settings`` (XPBASE_AWARD_GROUP_...)."""
        return cls(
            rpc, window=settings.award_group_window_ms / 1000, max_batch=settings.award_group_max_batch
        )

    async def award(
        self,
        profile_id: UUID | str,
        activity: str,
        idempotency_key: str,
        *,
        amount: int | None = None,
        occurred_at: dt.datetime | None = None,
        context: Mapping[str, Any] | None = None,
        reason: str | None = None,
    ) -> AwardReceipt:
        """``public.award_xp`` with these parameters, in the next group: its receipt once committed.

        Raises DomainError (XPIDM, XPACT, XPAMT, XPPRF, XPSUS, XPBAD, XPTIM, XPBIG ...) when this award
        failed, and whatever the whole group failed with (RPCUnavailable, RPCError) otherwise.
        """
        call = {
            "fn": "award_xp",
            "profile_id": profile_id,
            "activity": activity,
            "idempotency_key": idempotency_key,
            "amount": amount,
            "occurred_at": occurred_at,
            "context": context,
            "reason": reason,
        }
        receipt: AwardReceipt = await self._submit(call)
        return receipt

    async def discord_award(
        self,
        *,
        guild_id: str,
        user_id: str,
        display_name: str,
        activity: str,
        idempotency_key: str,
        occurred_at: dt.datetime | None = None,
        channel_id: str | None = None,
        role_ids: Sequence[str] = (),
    ) -> DiscordAward:
        """``public.service_role_discord_award`` (passive Discord XP) in the next group: the receipt or
        DiscordAwardSkipped once committed. Errors as ``award``."""
        call = {
            "fn": "discord_award",
            "guild_id": guild_id,
            "user_id": user_id,
            "display_name": display_name,
            "activity": activity,
            "idempotency_key": idempotency_key,
            "occurred_at": occurred_at,
            "channel_id": channel_id,
            "role_ids": list(role_ids),
        }
        receipt: DiscordAward = await self._submit(call)
        return receipt

    async def _submit(self, call: dict[str, Any]) -> Any:
        if self._closed:
            raise RPCUnavailable(None, "the award group commit is closed (the process is stopping)")
        loop = asyncio.get_running_loop()
        waiting = _Waiting(jsonable({k: v for k, v in call.items() if v is not None}), loop.create_future())
        self._waiting.append(waiting)
        if len(self._waiting) >= self.max_batch:
            self._flush()
        elif self._timer is None:
            self._timer = loop.call_later(self.window, self._flush)
        return await waiting.future

    def _flush(self) -> None:
        """Send the waiting calls (those whose callers are still waiting) as one group."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        group = [w for w in self._waiting if not w.future.done()]
        self._waiting = []
        if group:
            task = asyncio.get_running_loop().create_task(self._send(group))
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)

    async def _send(self, group: list[_Waiting]) -> None:
        self.groups_sent += 1
        self.calls_sent += len(group)
        try:
            # call_json returns after the transaction committed (xpbase.rpc: one transaction per call).
            answers = await self.rpc.call_json(GROUP_FUNCTION, calls=[w.call for w in group])
            if not isinstance(answers, list) or len(answers) != len(group):
                raise RPCError(None, f"{GROUP_FUNCTION} answered {answers!r:.200} for {len(group)} calls")
        except asyncio.CancelledError:
            failure = RPCUnavailable(None, "the award group was cancelled before its answer came")
            for waiting in group:
                if not waiting.future.done():
                    waiting.future.set_exception(failure)
            raise
        except Exception as exc:
            log.warning("a group of %d awards failed: %s", len(group), exc)
            for waiting in group:
                if not waiting.future.done():
                    waiting.future.set_exception(exc)
            return
        for waiting, answer in zip(group, answers, strict=True):
            if waiting.future.done():
                continue
            try:
                item = typed(GROUP_FUNCTION, answer)
            except ValidationError as exc:
                waiting.future.set_exception(exc)
                continue
            if item.ok:
                waiting.future.set_result(item.receipt)
            else:
                waiting.future.set_exception(call_error(item.error))

    async def aclose(self) -> None:
        """Send the calls still waiting, wait for the groups in flight; later calls raise RPCUnavailable."""
        self._closed = True
        self._flush()
        if self._in_flight:
            await asyncio.gather(*self._in_flight, return_exceptions=True)

    async def __aenter__(self) -> AwardGroupCommit:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()
