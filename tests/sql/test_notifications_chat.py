"""Notifications (pg_notify on xpbase_notifications) and chat: validation, rate limit, RLS, xpbase_chat."""

from __future__ import annotations

import asyncio
import json

import asyncpg
import pytest

from tests.helpers import acting_as, award, new_profile
from tests.sql.engine import level_threshold
from xpbase.db import Database, member_claims
from xpbase.errors import DomainError


async def post(db: Database, pid, body: str) -> dict:  # type: ignore[no-untyped-def]
    return await db.rpc("post_chat_message", role="authenticated", claims=member_claims(pid), body=body)


async def test_post_trims_and_returns_the_message(db: Database) -> None:
    """A message is trimmed, stored with the author's name, and returned."""
    pid = await new_profile(db, "Ada")
    message = await post(db, pid, "  hello world \n")
    assert (message["body"], message["author_name"], message["profile_id"]) == (
        "hello world",
        "Ada",
        str(pid),
    )


@pytest.mark.parametrize("body", ["", "   \n ", "x" * 501, "bell\x07", "nul-ish\x01"])
async def test_bad_messages_are_refused(db: Database, body: str) -> None:
    """Empty, too long (over 500 characters) or control characters: XPBAD and nothing stored."""
    pid = await new_profile(db, "Ada")
    with pytest.raises(DomainError) as info:
        await post(db, pid, body)
    assert info.value.code == "invalid_argument"
    async with db.as_service() as conn:
        assert await conn.fetchval("select count(*) from public.chat_messages") == 0


async def test_newlines_and_500_characters_are_fine(db: Database) -> None:
    """Multi-line messages of exactly the limit are accepted."""
    pid = await new_profile(db, "Ada")
    body = ("a" * 99 + "\n") * 4 + "b" * 100
    assert len(body) == 500
    assert (await post(db, pid, body))["body"] == body


async def test_rate_limit(db: Database) -> None:
    """The sixth message within 10 seconds is XPRAT (429) with a retry hint; other members are unaffected."""
    ada, bob = await new_profile(db, "Ada"), await new_profile(db, "Bob")
    for i in range(5):
        await post(db, ada, f"m{i}")
    with pytest.raises(DomainError) as info:
        await post(db, ada, "one too many")
    assert (info.value.code, info.value.status) == ("rate_limited", 429)
    assert "retry_after_seconds=" in str(info.value.__cause__.detail)  # type: ignore[union-attr]
    await post(db, bob, "still fine")


async def test_concurrent_posts_cannot_beat_the_rate_limit(db: Database) -> None:
    """Ten posts at once from one member: exactly five get through."""
    pid = await new_profile(db, "Ada")
    results = await asyncio.gather(*(post(db, pid, f"m{i}") for i in range(10)), return_exceptions=True)
    assert sum(1 for r in results if isinstance(r, dict)) == 5
    assert all(
        isinstance(r, DomainError) and r.code == "rate_limited" for r in results if not isinstance(r, dict)
    )


async def test_chat_rls(db: Database) -> None:
    """Members read all messages; anon reads none; nobody inserts directly; anon cannot post."""
    ada, bob = await new_profile(db, "Ada"), await new_profile(db, "Bob")
    await post(db, ada, "hi")
    async with acting_as(db, "authenticated", bob) as conn:
        rows = await conn.fetch("select * from public.chat_history()")
        assert [r["body"] for r in rows] == ["hi"]
    async with acting_as(db, "authenticated", bob) as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute(
                "insert into public.chat_messages (profile_id, author_name, body) values ($1, 'x', 'y')", bob
            )
    async with acting_as(db, "anon") as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetch("select * from public.chat_messages")
    async with acting_as(db, "anon") as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetchval("select public.post_chat_message('hello')")


async def test_history_pages_backwards(db: Database) -> None:
    """chat_history(size, before_id) gives the newest messages before an id, oldest first."""
    pid = await new_profile(db, "Ada")
    async with db.as_service() as conn:
        await conn.execute("update public.chat_settings set rate_limit_count = 100")
    ids = [(await post(db, pid, f"m{i}"))["id"] for i in range(6)]
    async with acting_as(db, "authenticated", pid) as conn:
        newest = await conn.fetch("select body from public.chat_history(3)")
        older = await conn.fetch("select body from public.chat_history(2, $1)", ids[3])
    assert [r["body"] for r in newest] == ["m3", "m4", "m5"]
    assert [r["body"] for r in older] == ["m1", "m2"]


async def test_each_message_is_announced_on_xpbase_chat(db: Database, database_url: str) -> None:
    """Every stored message is announced on channel xpbase_chat by its ids only (listeners read the row)."""
    pid = await new_profile(db, "Ada")
    listener = await asyncpg.connect(database_url)
    received: asyncio.Queue[str] = asyncio.Queue()
    await listener.add_listener("xpbase_chat", lambda *args: received.put_nowait(args[3]))
    try:
        message = await post(db, pid, "ping")
        payload = json.loads(await asyncio.wait_for(received.get(), 10))
        assert payload == {"id": message["id"], "profile_id": message["profile_id"]}
    finally:
        await listener.close()


async def test_notifications_are_announced_with_pg_notify(db: Database) -> None:
    """Each new notification row is also sent on channel xpbase_notifications with its id and kind."""
    pid = await new_profile(db)
    heard: list[str] = []

    def hear(_conn: object, _pid: int, _channel: str, payload: str) -> None:
        heard.append(payload)

    listener: asyncpg.Connection
    async with db.pool.acquire() as listener:
        await listener.add_listener("xpbase_notifications", hear)
        await award(db, pid, "xp_purchase", "buy-1", amount=level_threshold(11))
        await listener.execute("select 1")  # the server delivers pending notifications before answering
        await asyncio.sleep(0)
        await listener.remove_listener("xpbase_notifications", hear)
    async with db.as_service() as conn:
        rows = await conn.fetch(
            "select id, kind from public.notifications where profile_id = $1 order by id", pid
        )
    assert sorted(json.loads(h)["id"] for h in heard) == [r["id"] for r in rows]
    # the default badges First steps and Level 10 are earned on the way (supabase/sql/33_badges.sql), and
    # the Member tier's tools (supabase/sql/37_tools.sql)
    assert {json.loads(h)["kind"] for h in heard} == {
        "level_up",
        "tier_up",
        "layer_status_up",
        "badge_awarded",
        "tool_unlocked",
    }
