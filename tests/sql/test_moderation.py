"""Moderation (supabase/sql/13_moderation.sql): warnings, suspensions, bans, and what a suspension stops."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg
import pytest

from tests.helpers import acting_as, award, new_profile
from tests.sql.engine import T0
from tests.sql.test_roles import with_role
from xpbase.db import Database, member_claims
from xpbase.errors import DomainError


async def moderate(
    db: Database, actor: UUID, action: str, target: UUID, reason: str, until: str | None = None
) -> Any:
    """public.moderate as the signed-in ``actor`` (until: SQL interval from now, e.g. '1 day')."""
    async with db.as_member(actor) as conn:
        return await conn.fetchval(
            "select public.moderate($1, $2, $3,"
            " case when $4::text is null then null else now() + $4::interval end)",
            action,
            target,
            reason,
            until,
        )


async def ledger_count(db: Database, pid: UUID) -> int:
    return int(await db.pool.fetchval("select count(*) from public.xp_ledger where profile_id = $1", pid))


async def test_suspended_member_earns_nothing_chats_nothing_buys_nothing(db: Database) -> None:
    """award_xp, the award batch, chat, purchases and payment orders raise XPSUS and change nothing."""
    moderator, member = await with_role(db, "moderator"), await new_profile(db, "Rowdy")
    await award(db, member, "event_attendance", "before", amount=100, occurred_at=T0)
    await db.rpc("admin_adjust_points", profile_id=member, amount=500, reason="seed", idempotency_key="seed")
    await db.rpc(
        "admin_save_store_item",
        item={"slug": "badge", "name": "Badge", "category": "cosmetic", "price_points": 40},
    )
    answer = await moderate(db, moderator, "suspend", member, "Spamming the chat", "1 day")
    assert answer["record"]["kind"] == "suspension" and answer["sessions_revoked"] == 0
    before = await ledger_count(db, member)
    points = await db.pool.fetchval("select points from public.profiles where id = $1", member)

    with pytest.raises(DomainError) as caught:
        await award(db, member, "event_attendance", "during", amount=100, occurred_at=T0)
    assert caught.value.error.sqlstate == "XPSUS" and "suspended until" in caught.value.message
    async with db.as_service() as conn:
        with pytest.raises(asyncpg.PostgresError) as batch:
            await conn.fetch(
                "select * from public.service_role_award_xp_batch($1::jsonb)",
                [
                    {
                        "profile_id": str(member),
                        "activity": "event_attendance",
                        "idempotency_key": "q1",
                        "amount": 5,
                    }
                ],
            )
    assert batch.value.sqlstate == "XPSUS" and "awards[0]: This member is suspended" in str(batch.value)
    for function, params in (
        ("post_chat_message", {"body": "hello"}),
        ("buy_item", {"item": "badge", "idempotency_key": "buy-1"}),
    ):
        with pytest.raises(DomainError) as refused:
            await db.rpc(function, role="authenticated", claims=member_claims(member), **params)
        assert refused.value.error.sqlstate == "XPSUS"
    with pytest.raises(DomainError) as order:
        await db.rpc(
            "service_role_create_payment_order",
            profile_id=member,
            package=None,
            item="badge",
            ttl_seconds=600,
        )
    assert order.value.error.sqlstate == "XPSUS"
    assert await ledger_count(db, member) == before
    assert await db.pool.fetchval("select count(*) from public.chat_messages") == 0
    assert await db.pool.fetchval("select points from public.profiles where id = $1", member) == points

    # A replay of an award made before the suspension still answers its receipt.
    replay = await award(db, member, "event_attendance", "before", amount=100, occurred_at=T0)
    assert replay["replayed"] is True

    lifted = await moderate(db, moderator, "unsuspend", member, "Apologised")
    assert lifted["lifted"] == 1
    assert (await award(db, member, "event_attendance", "after", amount=100, occurred_at=T0))[
        "granted"
    ] == 100


async def test_a_suspension_ends_by_itself(db: Database) -> None:
    """A suspension whose until has passed no longer holds anything back."""
    moderator, member = await with_role(db, "moderator"), await new_profile(db, "Later")
    await moderate(db, moderator, "suspend", member, "Cool down", "1 day")
    await db.pool.execute(
        "update public.moderation_actions"
        " set created_at = now() - interval '3 days', until = now() - interval '1 day'"
        " where profile_id = $1",
        member,
    )
    assert (await award(db, member, "event_attendance", "back", amount=10, occurred_at=T0))["granted"] == 10


async def test_a_ban_revokes_every_session(db: Database) -> None:
    """A suspension without until is a ban: the member's refresh families are revoked at once."""
    admin, member = await with_role(db, "admin"), await new_profile(db, "Banned")
    for n in range(2):
        await db.rpc(
            "service_role_create_session",
            profile_id=member,
            provider="discord",
            token_hash=bytes([n]) * 32,
            ttl_seconds=3600,
        )
    answer = await moderate(db, admin, "suspend", member, "Fraud")
    assert answer["sessions_revoked"] == 2 and answer["record"]["until"] is None
    with pytest.raises(DomainError) as caught:
        await db.rpc(
            "service_role_refresh_session",
            token_hash=bytes([0]) * 32,
            next_token_hash=bytes([9]) * 32,
            ttl_seconds=3600,
            grace_seconds=0,
        )
    assert caught.value.error.sqlstate == "XPRTR"
    record = await db.rpc("moderation_record", role="authenticated", claims=member_claims(member))
    assert record["banned"] is True and record["suspended_until"] is None


async def test_warnings_are_visible_to_the_member_and_moderators_only(db: Database) -> None:
    """The member reads their warning; another member neither reads it nor the table's row."""
    moderator, member, other = (
        await with_role(db, "moderator"),
        await new_profile(db, "Warned"),
        await new_profile(db, "Nosy"),
    )
    await moderate(db, moderator, "warn", member, "Be kind")
    own = await db.rpc("moderation_record", role="authenticated", claims=member_claims(member))
    assert [(a["kind"], a["reason"], a["actor_id"]) for a in own["actions"]] == [
        ("warning", "Be kind", str(moderator))
    ]
    seen = await db.rpc(
        "moderation_record", role="authenticated", claims=member_claims(moderator), profile_id=member
    )
    assert len(seen["actions"]) == 1
    with pytest.raises(DomainError) as caught:
        await db.rpc(
            "moderation_record", role="authenticated", claims=member_claims(other), profile_id=member
        )
    assert caught.value.error.sqlstate == "42501"
    async with acting_as(db, "authenticated", other) as conn:
        assert await conn.fetchval("select count(*) from public.moderation_actions") == 0
    async with acting_as(db, "authenticated", member) as conn:
        assert await conn.fetchval("select count(*) from public.moderation_actions") == 1
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("delete from public.moderation_actions")


@pytest.mark.parametrize(
    ("actor", "target", "action", "until", "sqlstate"),
    [
        ("moderator", "moderator", "suspend", "1 day", "42501"),  # moderators do not moderate each other
        ("moderator", "self", "warn", None, "42501"),
        ("member", "member", "warn", None, "42501"),
        ("professional", "member", "suspend", "1 day", "42501"),
        ("moderator", "member", "suspend", "-1 day", "XPBAD"),  # until in the past
        ("moderator", "member", "warn", "1 day", "XPBAD"),  # until on a warning
        ("moderator", "member", "ban", None, "XPBAD"),  # unknown action
    ],
)
async def test_bad_moderation_is_refused_and_changes_nothing(
    db: Database, actor: str, target: str, action: str, until: str | None, sqlstate: str
) -> None:
    actor_id = await with_role(db, actor, "Actor")
    target_id = actor_id if target == "self" else await with_role(db, target, "Target")
    with pytest.raises(DomainError) as caught:
        await moderate(db, actor_id, action, target_id, "reason", until)
    assert caught.value.error.sqlstate == sqlstate
    assert await db.pool.fetchval("select count(*) from public.moderation_actions") == 0


async def test_admin_moderates_a_moderator_and_reason_is_validated(db: Database) -> None:
    admin, moderator = await with_role(db, "admin"), await with_role(db, "moderator")
    assert (await moderate(db, admin, "warn", moderator, "Too strict"))["record"]["actor_role"] == "admin"
    for reason in ("", "   ", "x" * 501, "bad\x01char"):
        with pytest.raises(DomainError) as caught:
            await moderate(db, admin, "warn", moderator, reason)
        assert caught.value.error.sqlstate == "XPBAD"


async def test_the_bot_moderates_for_a_member_who_holds_the_permission(db: Database) -> None:
    """service_role_moderate checks the actor's role, not just the backend's."""
    moderator, member = await with_role(db, "moderator"), await new_profile(db, "Target")
    answer = await db.rpc(
        "service_role_moderate", actor_id=moderator, action="warn", profile_id=member, reason="Bot"
    )
    assert answer["record"]["actor_id"] == str(moderator)
    with pytest.raises(DomainError) as caught:
        await db.rpc(
            "service_role_moderate", actor_id=member, action="warn", profile_id=moderator, reason="Bot"
        )
    assert caught.value.error.sqlstate == "42501"
