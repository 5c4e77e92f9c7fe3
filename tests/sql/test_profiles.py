"""supabase/sql/10_profiles.sql: one profile per (provider, subject), and what an edit may store."""

from __future__ import annotations

import json

import asyncpg
import pytest

from tests.helpers import acting_as, award, new_profile
from xpbase.db import Database, member_claims
from xpbase.errors import DomainError


async def test_ensure_profile_makes_one_profile_per_identity(db: Database) -> None:
    """The same (provider, subject) always answers the same profile; another subject gets a new one."""
    first = await db.rpc("ensure_profile", provider="github", subject="42", display_name="  Ada  ")
    again = await db.rpc("ensure_profile", provider="github", subject="42", display_name="Someone else")
    other = await db.rpc("ensure_profile", provider="github", subject="43", display_name="Grace")
    assert first == again != other
    async with db.as_service() as conn:
        name = await conn.fetchval("select display_name from public.profiles where id = $1", first)
        count = await conn.fetchval("select count(*) from public.identities where provider = 'github'")
    assert (name, count) == ("Ada", 2)


@pytest.mark.parametrize(
    ("provider", "subject"), [("GitHub", "1"), ("", "1"), ("github", ""), ("github", "x" * 256)]
)
async def test_malformed_identities_are_refused_and_change_nothing(
    db: Database, provider: str, subject: str
) -> None:
    """A provider that is not a lowercase slug, or a subject of 0 or over 255 characters, is XPBAD."""
    with pytest.raises(DomainError) as info:
        await db.rpc("ensure_profile", provider=provider, subject=subject, display_name="X")
    assert info.value.code == "invalid_argument"
    async with db.as_service() as conn:
        assert await conn.fetchval("select count(*) from public.profiles") == 0


async def test_members_cannot_call_ensure_profile(db: Database) -> None:
    """Making profiles is the backend's: anon and members get 42501."""
    for role in ("anon", "authenticated"):
        async with acting_as(db, role) as conn:
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.fetchval("select public.ensure_profile('github', '1', 'X')")


async def test_edits_are_trimmed_stamped_and_time_zones_checked(db: Database) -> None:
    """An edit trims the display name and stamps updated_at; a time zone that is not IANA is XPBAD."""
    pid = await new_profile(db, "Ada")
    async with db.as_service() as conn:
        before = await conn.fetchval("select updated_at from public.profiles where id = $1", pid)
    async with db.as_member(pid) as conn:
        await conn.execute(
            "update public.profiles set display_name = $2, time_zone = 'Asia/Kolkata' where id = $1",
            pid,
            "  Ada L.  ",
        )
    async with db.as_service() as conn:
        row = await conn.fetchrow(
            "select display_name, time_zone, updated_at from public.profiles where id = $1", pid
        )
    assert (row["display_name"], row["time_zone"]) == ("Ada L.", "Asia/Kolkata")
    assert row["updated_at"] > before
    with pytest.raises(DomainError) as info:
        async with db.as_member(pid) as conn:
            await conn.execute("update public.profiles set time_zone = 'Mars/Olympus' where id = $1", pid)
    assert info.value.code == "invalid_argument"


# ---------------------------------------------------------------------------
# Owner-only columns (issue 18) and profile visibility (issue 13 item 3)
# ---------------------------------------------------------------------------

OWNER_ONLY = ("time_zone", "points", "social_links", "bio", "role", "created_at", "updated_at")
VIEWERS = ("anon", "other", "owner", "admin")


async def _edit(db: Database, profile_id: object, **changes: object) -> None:
    """update_my_profile as the member, committed."""
    await db.rpc("update_my_profile", role="authenticated", claims=member_claims(profile_id), changes=changes)


async def _set_role(db: Database, profile_id: object, role: str) -> None:
    await db.pool.execute("select private.set_role($1, $2, 'test', null, 'service_role')", profile_id, role)


async def _viewer(db: Database, viewer: str, owner: object) -> tuple[str, object]:
    """(database role, acting profile id) for a viewer of ``owner``'s profile: anon, another member, the
    owner, a moderator, an admin or the backend."""
    if viewer == "anon":
        return "anon", None
    if viewer == "service_role":
        return "service_role", None
    if viewer == "owner":
        return "authenticated", owner
    pid = await new_profile(db, viewer.title())
    if viewer in ("moderator", "admin"):
        await _set_role(db, pid, viewer)
    return "authenticated", pid


@pytest.mark.parametrize("column", OWNER_ONLY)
async def test_owner_only_columns_are_not_readable_through_the_table(db: Database, column: str) -> None:
    """time_zone, points, social_links, bio, role (and created_at, updated_at): 42501 through public.profiles
    for anon, another member, the owner and an admin alike (one case per viewer); the owner reads them
    through my_profile."""
    owner = await new_profile(db, "Owner")
    for viewer in VIEWERS:
        role, actor = await _viewer(db, viewer, owner)
        async with acting_as(db, role, actor) as conn:
            # The leaderboard columns stay readable for the boards.
            name = await conn.fetchval("select display_name from public.profiles where id = $1", owner)
            assert name == "Owner", viewer
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.fetchval(f"select {column} from public.profiles where id = $1", owner)


async def test_the_owner_reads_the_owner_only_columns_through_my_profile(db: Database) -> None:
    """my_profile answers time_zone, points, social_links, bio, role and profile_visibility to the owner."""
    owner = await new_profile(db, "Owner")
    await _edit(db, owner, bio="hi", time_zone="Europe/Berlin", social_links={"gh": "x"})
    async with acting_as(db, "authenticated", owner) as conn:
        own = json.loads(await conn.fetchval("select public.my_profile()::text"))
    assert (own["bio"], own["time_zone"], own["social_links"], own["points"], own["role"]) == (
        "hi",
        "Europe/Berlin",
        {"gh": "x"},
        0,
        "member",
    )
    assert own["profile_visibility"] == "members"


async def test_the_service_role_reads_every_column(db: Database) -> None:
    """The backend reads the owner-only columns of any profile."""
    owner = await new_profile(db, "Owner")
    async with acting_as(db, "service_role") as conn:
        assert await conn.fetchval("select time_zone from public.profiles where id = $1", owner) == "UTC"
        assert await conn.fetchval("select role from public.profiles where id = $1", owner) == "member"


#: Who sees a card per visibility: (anon, other member, owner, moderator, admin, service_role naming nobody).
SEES = {
    "public": (True, True, True, True, True, True),
    "members": (False, True, True, True, True, True),
    "private": (False, False, True, True, True, True),
}
CARD_VIEWERS = ("anon", "other", "owner", "moderator", "admin", "service_role")


@pytest.mark.parametrize("visibility", list(SEES))
async def test_profile_visibility_decides_who_sees_the_card_badges_and_activity(
    db: Database, visibility: str
) -> None:
    """profile_card, profile_badges and the activity_feed and badge_awards tables follow profile_visibility
    for every viewer; a card the viewer may not see is XPPRF, its rows are not there."""
    owner = await new_profile(db, "Owner")
    await award(db, owner, "challenge_completed", "vis-1", amount=100)
    await _edit(db, owner, profile_visibility=visibility)
    for viewer, sees in zip(CARD_VIEWERS, SEES[visibility], strict=True):
        role, actor = await _viewer(db, viewer, owner)
        async with acting_as(db, role, actor) as conn:
            for call in ("select public.profile_card($1)", "select public.profile_badges($1)"):
                if sees:
                    assert await conn.fetchval(call, owner) is not None, (viewer, call)
                else:
                    with pytest.raises(asyncpg.PostgresError) as refused:
                        async with conn.transaction():
                            await conn.fetchval(call, owner)
                    assert refused.value.sqlstate == "XPPRF", (viewer, call)
            if role != "service_role":  # the backend reads every row of the tables
                feed = await conn.fetchval(
                    "select count(*) from public.activity_feed where profile_id = $1", owner
                )
                assert (feed > 0) is sees, (viewer, "activity_feed")


async def test_a_member_hidden_from_boards_is_seen_by_staff_only(db: Database) -> None:
    """A public profile hidden from leaderboards: the owner, moderators and admins see the card; anon and
    other members get XPPRF. Profile visibility removes nobody from boards: a private listed member is
    listed."""
    hidden = await new_profile(db, "Hidden")
    listed = await new_profile(db, "Listed")
    await _edit(db, hidden, leaderboard_visible=False, profile_visibility="public")
    await _edit(db, listed, profile_visibility="private")
    for viewer, sees in (
        ("anon", False),
        ("other", False),
        ("owner", True),
        ("moderator", True),
        ("admin", True),
    ):
        role, actor = await _viewer(db, viewer, hidden)
        async with acting_as(db, role, actor) as conn:
            if sees:
                assert await conn.fetchval("select public.profile_card($1)", hidden) is not None
            else:
                with pytest.raises(asyncpg.PostgresError) as refused:
                    async with conn.transaction():
                        await conn.fetchval("select public.profile_card($1)", hidden)
                assert refused.value.sqlstate == "XPPRF"
            board = await conn.fetch(
                "select profile_id from public.leaderboard('all_time', null, null, 100, 1)"
            )
            assert listed in {r["profile_id"] for r in board}


async def test_profile_visibility_must_be_one_of_three(db: Database) -> None:
    """update_my_profile refuses another visibility with XPBAD and changes nothing."""
    owner = await new_profile(db, "Owner")
    async with acting_as(db, "authenticated", owner) as conn:
        with pytest.raises(DomainError) as refused:
            await db.rpc(
                "update_my_profile",
                role="authenticated",
                claims={"role": "authenticated", "sub": str(owner)},
                changes={"profile_visibility": "friends"},
            )
        assert refused.value.error.sqlstate == "XPBAD"
        assert (
            json.loads(await conn.fetchval("select public.my_profile()::text"))["profile_visibility"]
            == "members"
        )


@pytest.mark.parametrize(
    ("visibility", "viewer", "sees"),
    [
        ("members", "member", True),
        ("members", "stranger", False),
        ("private", "member", False),
        ("private", "moderator", True),
        ("public", "stranger", True),
    ],
)
async def test_the_bot_shows_another_member_only_what_their_card_allows(
    db: Database, visibility: str, viewer: str, sees: bool
) -> None:
    """service_role_discord_member with a viewer: XPHID when the viewer may not see the card; a Discord user
    without a profile is not a member."""
    owner = await db.rpc("ensure_profile", provider="discord", subject="100", display_name="Owner")
    await _edit(db, owner, profile_visibility=visibility)
    if viewer != "stranger":
        pid = await db.rpc("ensure_profile", provider="discord", subject="200", display_name="Viewer")
        if viewer == "moderator":
            await _set_role(db, pid, "moderator")
    call = {"user_id": "100", "recent": 0, "viewer_user_id": "200"}
    if sees:
        assert (await db.rpc("service_role_discord_member", **call))["profile_id"] == str(owner)
    else:
        with pytest.raises(DomainError) as refused:
            await db.rpc("service_role_discord_member", **call)
        assert refused.value.error.sqlstate == "XPHID"
