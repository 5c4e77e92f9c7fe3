"""list_my_ledger, and the other reads the REST API pages through: own rows only, newest first, by cursor."""

from __future__ import annotations

import pytest

from tests.helpers import award, new_profile
from xpbase.db import Database, member_claims
from xpbase.errors import DomainError


async def test_ledger_pages_newest_first_and_only_the_callers_rows(db: Database) -> None:
    """Three pages of two cover the member's five rows once each, newest first; no one else's."""
    pid = await new_profile(db, "Ada")
    other = await new_profile(db, "Bo")
    for i in range(5):
        await award(db, pid, "challenge_completed", f"a{i}", amount=10 + i)
    await award(db, other, "challenge_completed", "b", amount=99)
    claims = member_claims(pid)
    seen: list[int] = []
    cursor = None
    for _ in range(3):
        page = await db.rpc("list_my_ledger", role="authenticated", claims=claims, size=2, cursor=cursor)
        seen += [entry["amount"] for entry in page["items"]]
        cursor = page["next_cursor"]
    assert seen == [14, 13, 12, 11, 10] and cursor is None
    assert page["items"][0]["receipt"]["granted"] == 10


async def test_ledger_refuses_anon_bad_sizes_and_cursors(db: Database) -> None:
    """Anon may not call it; size outside 1-100 and a malformed cursor are XPBAD."""
    pid = await new_profile(db, "Ada")
    with pytest.raises(Exception, match="permission denied"):
        await db.rpc("list_my_ledger", role="anon")
    for params in ({"size": 0}, {"size": 101}, {"cursor": "x1"}, {"cursor": "-1"}):
        with pytest.raises(DomainError) as info:
            await db.rpc("list_my_ledger", role="authenticated", claims=member_claims(pid), **params)
        assert info.value.code == "invalid_argument"


async def test_profile_edit_checks_keys_types_and_time_zone(db: Database) -> None:
    """update_my_profile edits only the editable keys, with the right types, and a real time zone."""
    pid = await new_profile(db, "Ada")
    claims = member_claims(pid)
    changed = await db.rpc(
        "update_my_profile",
        role="authenticated",
        claims=claims,
        changes={"bio": "hi", "leaderboard_visible": False},
    )
    assert (changed["bio"], changed["leaderboard_visible"], changed["display_name"]) == ("hi", False, "Ada")
    for changes in ({"xp": 5}, {"bio": 3}, {"time_zone": "Mars/Olympus"}, {"role": "admin"}):
        with pytest.raises(DomainError) as info:
            await db.rpc("update_my_profile", role="authenticated", claims=claims, changes=changes)
        assert info.value.code == "invalid_argument"
    async with db.as_service() as conn:
        assert await conn.fetchval("select role from public.profiles where id = $1", pid) == "member"


async def test_notifications_mark_read_touches_only_the_callers(db: Database) -> None:
    """Marking another member's notification id read changes nothing; up_to_id marks the caller's."""
    pid = await new_profile(db, "Ada")
    other = await new_profile(db, "Bo")
    await award(db, pid, "challenge_completed", "a", amount=500)
    await award(db, other, "challenge_completed", "b", amount=500)
    mine = await db.rpc("list_notifications", role="authenticated", claims=member_claims(pid))
    theirs = await db.rpc("list_notifications", role="authenticated", claims=member_claims(other))
    assert mine["unread"] > 0 and theirs["unread"] > 0
    ids = [n["id"] for n in theirs["items"]]
    marked = await db.rpc("mark_notifications_read", role="authenticated", claims=member_claims(pid), ids=ids)
    assert marked["marked"] == 0
    marked = await db.rpc(
        "mark_notifications_read", role="authenticated", claims=member_claims(pid), up_to_id=10**9
    )
    assert marked == {"marked": mine["unread"], "unread": 0}
    again = await db.rpc("list_notifications", role="authenticated", claims=member_claims(other))
    assert again["unread"] == theirs["unread"]
