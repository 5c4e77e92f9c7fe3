"""Group commit of awards: ``service_role_award_group``'s answer, one item per call, in call order.

Source: supabase/sql/34_award_group.sql. Each item is the call's receipt
(``ok`` true: award_xp's AwardReceipt, or service_role_discord_award's
DiscordAward) or its error (``ok`` false: the SQLSTATE, message and detail
the call raised; it changed nothing). xpbase/group_commit.py reads them.
"""

from __future__ import annotations

from typing import Literal

from xpbase.models import Result
from xpbase.models.discord import DiscordAward
from xpbase.models.engine import AwardReceipt


class GroupCallError(Result):
    """The error one call of a group raised: its SQLSTATE (``XPACT``...; malformed values are ``XPBAD``),
    message, and detail (None when the error had none)."""

    sqlstate: str
    message: str
    detail: str | None


class GroupAwarded(Result):
    """An award_xp call of the group that succeeded: its receipt."""

    fn: Literal["award_xp"]
    ok: Literal[True]
    receipt: AwardReceipt


class GroupDiscordAwarded(Result):
    """A discord_award call of the group that succeeded: its receipt, or skipped (a no-XP channel or role)."""

    fn: Literal["discord_award"]
    ok: Literal[True]
    receipt: DiscordAward


class GroupRefused(Result):
    """A call of the group that failed and changed nothing; ``fn`` is None when the call named none."""

    fn: str | None
    ok: Literal[False]
    error: GroupCallError


GroupAnswer = GroupAwarded | GroupDiscordAwarded | GroupRefused
"""One item of service_role_award_group's answer (told apart by ``ok`` and ``fn``)."""

RESULTS = {"service_role_award_group": GroupAnswer}
