"""The sign-in SQL: service_role_sign_in, identities, OAuth states, sessions, grants, RLS and housekeeping."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from typing import Any
from uuid import UUID

import asyncpg
import pytest

from tests.helpers import acting_as, new_profile
from xpbase.db import Database
from xpbase.errors import DomainError

NEW_TABLES = [
    "private.oauth_states",
    "private.auth_sessions",
    "private.refresh_tokens",
    "private.link_codes",
    "public.auth_settings",
]
SERVICE_FUNCTIONS = [
    "public.service_role_sign_in(text, text, text, text)",
    "public.service_role_link_identity(uuid, text, text, text)",
    "public.service_role_create_oauth_state(bytea, bytea, text, text, text, text, uuid, boolean, integer,"
    " bytea)",
    "public.service_role_take_oauth_state(bytea, bytea, text)",
    "public.service_role_create_session(uuid, text, bytea, integer)",
    "public.service_role_refresh_session(bytea, bytea, integer, integer)",
    "public.service_role_sign_out(bytea, uuid, text)",
    "public.service_role_redeem_link_code(text, text, text, text)",
    "public.service_role_purge_auth()",
]


def h(value: str) -> bytes:
    return hashlib.sha256(value.encode()).digest()


async def sign_in(
    db: Database,
    subject: str = "1",
    name: str | None = "Ada",
    avatar: str | None = None,
    provider: str = "discord",
) -> dict[str, Any]:
    result: dict[str, Any] = await db.rpc(
        "service_role_sign_in", provider=provider, subject=subject, display_name=name, avatar_url=avatar
    )
    return result


async def sqlstate_of(coro: Any) -> str:
    with pytest.raises(DomainError) as info:
        await coro
    return str(getattr(info.value.__cause__, "sqlstate", ""))


# service_role_sign_in -----------------------------------------------------------------------


async def test_first_sign_in_makes_the_profile_with_the_providers_avatar(db: Database) -> None:
    """First sight creates the profile (created) with the https avatar; later sign-ins change nothing."""
    first = await sign_in(db, avatar="https://cdn.example.test/a.png")
    assert first["created"] is True
    assert first["user"] == {
        "id": first["profile_id"],
        "display_name": "Ada",
        "avatar_url": "https://cdn.example.test/a.png",
        "role": "member",
    }
    again = await sign_in(db, name="Countess", avatar="https://cdn.example.test/b.png")
    assert again["created"] is False
    assert again["user"] == first["user"]


@pytest.mark.parametrize(
    "avatar",
    [
        "http://cdn.example.test/a.png",
        "javascript:alert(1)",
        "https://a b/c.png",
        "https://cdn.example.test/" + "a" * 490,
        "",
        None,
    ],
)
async def test_avatar_must_be_a_short_https_url(avatar: str | None, db: Database) -> None:
    """Anything but an https URL of at most 500 characters leaves avatar_url null; sign-in still works."""
    assert (await sign_in(db, avatar=avatar))["user"]["avatar_url"] is None


async def test_sign_in_records_the_provider_name_and_time(db: Database) -> None:
    """identities.display_name follows the provider (at most 100 characters) and last_sign_in_at is set."""
    await sign_in(db, name="Ada")
    await sign_in(db, name="  " + "A" * 150)
    async with db.pool.acquire() as conn:
        row = await conn.fetchrow("select display_name, last_sign_in_at from public.identities")
    assert row["display_name"] == "A" * 100
    assert row["last_sign_in_at"] is not None


async def test_simultaneous_first_sign_ins_make_one_profile(db: Database) -> None:
    """Ten concurrent first sign-ins of one identity: one profile, and exactly one answer says created."""
    results = await asyncio.gather(*(sign_in(db, subject="42") for _ in range(10)))
    assert len({r["profile_id"] for r in results}) == 1
    assert sum(r["created"] for r in results) == 1


@pytest.mark.parametrize(("provider", "subject"), [("Discord", "1"), ("discord", ""), ("a" * 80, "1")])
async def test_sign_in_refuses_malformed_identities(provider: str, subject: str, db: Database) -> None:
    """A malformed provider or subject is XPBAD and creates nothing."""
    assert await sqlstate_of(sign_in(db, subject=subject, provider=provider)) == "XPBAD"
    async with db.pool.acquire() as conn:
        assert await conn.fetchval("select count(*) from public.profiles") == 0


async def test_link_identity_to_an_unknown_profile_is_xpprf(db: Database) -> None:
    """Linking to a profile that does not exist is XPPRF."""
    coro = db.rpc(
        "service_role_link_identity",
        profile_id=UUID(int=1),
        provider="github",
        subject="7",
        display_name=None,
    )
    assert await sqlstate_of(coro) == "XPPRF"


async def test_link_identity_and_ensure_profile_race_makes_no_duplicate(db: Database) -> None:
    """Linking an identity while the bot first sees it: one wins and the identity is on one profile."""
    pid = await new_profile(db, "Grace", provider="github")
    link = db.rpc(
        "service_role_link_identity", profile_id=pid, provider="discord", subject="99", display_name=None
    )
    ensure = db.rpc("ensure_profile", provider="discord", subject="99", display_name="Bot-seen")
    results = await asyncio.gather(link, ensure, return_exceptions=True)
    async with db.pool.acquire() as conn:
        owners = await conn.fetch("select profile_id from public.identities where provider = 'discord'")
    assert len(owners) == 1
    if isinstance(results[0], DomainError):
        assert results[0].code == "identity_linked_elsewhere" and owners[0]["profile_id"] != pid
    else:
        assert owners[0]["profile_id"] == pid == results[1]


# OAuth states ---------------------------------------------------------------------------------


async def create_state(db: Database, state: str = "s", browser: str = "b", **overrides: Any) -> Any:
    params: dict[str, Any] = {
        "state_hash": h(state),
        "browser_hash": h(browser),
        "provider": "discord",
        "redirect_uri": "https://app.example.test/cb",
        "code_verifier": secrets.token_urlsafe(64),
        "nonce": secrets.token_urlsafe(24),
        "link_profile_id": None,
        "cookie_mode": False,
        "ttl_seconds": 600,
    }
    params.update(overrides)
    return await db.rpc("service_role_create_oauth_state", **params)


async def take(
    db: Database, state: str = "s", browser: str | None = "b", provider: str = "discord"
) -> dict[str, Any]:
    result: dict[str, Any] = await db.rpc(
        "service_role_take_oauth_state",
        state_hash=h(state),
        browser_hash=h(browser) if browser else None,
        provider=provider,
    )
    return result


async def test_a_state_is_taken_once(db: Database) -> None:
    """The first take answers ok with the flow's secrets; the second answers unknown."""
    await create_state(db)
    first = await take(db)
    assert first["status"] == "ok" and first["redirect_uri"] == "https://app.example.test/cb"
    assert (await take(db))["status"] == "unknown"


@pytest.mark.parametrize(
    ("browser", "provider", "status"),
    [
        ("other", "discord", "other_browser"),
        (None, "discord", "other_browser"),
        ("b", "github", "other_provider"),
    ],
)
async def test_a_mismatched_take_spends_the_state(
    browser: str | None, provider: str, status: str, db: Database
) -> None:
    """Another browser or provider gets a refusal without secrets, and the state is gone."""
    await create_state(db)
    assert await take(db, browser=browser, provider=provider) == {"status": status}
    assert (await take(db))["status"] == "unknown"


@pytest.mark.parametrize(
    "overrides",
    [
        {"state_hash": b"short"},
        {"code_verifier": "too-short"},
        {"code_verifier": "a" * 43 + "!"},
        {"ttl_seconds": 30},
        {"ttl_seconds": 7200},
        {"redirect_uri": "javascript:alert(1)"},
        {"nonce": "n"},
        {"provider": "Not A Provider"},
    ],
)
async def test_create_state_validates_its_input(overrides: dict[str, Any], db: Database) -> None:
    """Malformed hashes, verifiers, lifetimes, redirect URIs, nonces and providers are XPBAD."""
    assert await sqlstate_of(create_state(db, **overrides)) == "XPBAD"


async def test_creating_a_state_sweeps_expired_ones(db: Database) -> None:
    """Expired states are deleted when a new one is made."""
    await create_state(db, state="old")
    async with db.pool.acquire() as conn:
        await conn.execute(
            "update private.oauth_states set created_at = now() - interval '1 hour', "
            "expires_at = now() - interval '50 minutes'"
        )
    await create_state(db, state="new")
    async with db.pool.acquire() as conn:
        assert await conn.fetchval("select count(*) from private.oauth_states") == 1


# Sessions ---------------------------------------------------------------------------------------


async def test_session_functions_validate_their_input(db: Database) -> None:
    """Unknown profiles are XPPRF; bad hashes, lifetimes, grace windows and scopes are XPBAD."""
    pid = await new_profile(db)
    assert (
        await sqlstate_of(
            db.rpc(
                "service_role_create_session",
                profile_id=UUID(int=1),
                provider="discord",
                token_hash=h("t"),
                ttl_seconds=3600,
            )
        )
        == "XPPRF"
    )
    assert (
        await sqlstate_of(
            db.rpc(
                "service_role_create_session",
                profile_id=pid,
                provider="discord",
                token_hash=b"x",
                ttl_seconds=3600,
            )
        )
        == "XPBAD"
    )
    assert (
        await sqlstate_of(
            db.rpc(
                "service_role_refresh_session",
                token_hash=h("t"),
                next_token_hash=h("u"),
                ttl_seconds=3600,
                grace_seconds=301,
            )
        )
        == "XPBAD"
    )
    assert (
        await sqlstate_of(db.rpc("service_role_sign_out", token_hash=None, session_id=None, scope="local"))
        == "XPBAD"
    )
    assert (
        await sqlstate_of(
            db.rpc("service_role_sign_out", token_hash=h("t"), session_id=None, scope="everywhere")
        )
        == "XPBAD"
    )


async def test_refresh_outcomes_in_sql(db: Database) -> None:
    """rotated, then reissued for the parent within grace, then reuse_detected outside it."""
    pid = await new_profile(db)
    await db.rpc(
        "service_role_create_session", profile_id=pid, provider=None, token_hash=h("r0"), ttl_seconds=3600
    )

    async def refresh(token: str, successor: str, grace: int = 10) -> dict[str, Any]:
        result: dict[str, Any] = await db.rpc(
            "service_role_refresh_session",
            token_hash=h(token),
            next_token_hash=h(successor),
            ttl_seconds=3600,
            grace_seconds=grace,
        )
        return result

    assert (await refresh("r0", "r1"))["outcome"] == "rotated"
    assert (await refresh("r0", "r1"))["outcome"] == "reissued"
    assert (await refresh("r0", "not-the-live-one"))["outcome"] == "reuse_detected"
    assert await sqlstate_of(refresh("r1", "r2")) == "XPRTR"
    assert await sqlstate_of(refresh("never", "r9")) == "XPRTK"


# Housekeeping ------------------------------------------------------------------------------------


async def test_purge_removes_only_what_is_dead(db: Database) -> None:
    """Expired states and tokens, long-revoked or empty sessions and day-old codes go; live sessions stay."""
    pid = await new_profile(db)
    live = await db.rpc(
        "service_role_create_session", profile_id=pid, provider=None, token_hash=h("live"), ttl_seconds=3600
    )
    await db.rpc(
        "service_role_create_session", profile_id=pid, provider=None, token_hash=h("stale"), ttl_seconds=3600
    )
    ended = await db.rpc(
        "service_role_create_session", profile_id=pid, provider=None, token_hash=h("ended"), ttl_seconds=3600
    )
    await db.rpc("service_role_sign_out", token_hash=h("ended"), session_id=None, scope="local")
    await create_state(db, state="old")
    async with db.pool.acquire() as conn:
        await conn.execute(
            "update private.refresh_tokens set created_at = now() - interval '40 days', "
            "expires_at = now() - interval '10 days' where token_hash = $1",
            h("stale"),
        )
        await conn.execute(
            "update private.auth_sessions set revoked_at = now() - interval '2 days' where id = $1",
            UUID(ended["session_id"]),
        )
        await conn.execute(
            "update private.oauth_states set created_at = now() - interval '1 hour', "
            "expires_at = now() - interval '50 minutes'"
        )
    counts = await db.rpc("service_role_purge_auth")
    assert counts == {"oauth_states": 1, "refresh_tokens": 1, "sessions": 2, "link_codes": 0}
    async with db.pool.acquire() as conn:
        assert await conn.fetchval("select array_agg(id) from private.auth_sessions") == [
            UUID(live["session_id"])
        ]


# Grants and row-level security ---------------------------------------------------------------------


async def test_new_tables_have_row_level_security(db: Database) -> None:
    """RLS is on for every table this feature adds."""
    async with db.pool.acquire() as conn:
        rows = await conn.fetch(
            "select oid::regclass::text as name, relrowsecurity from pg_class "
            "where oid = any($1::regclass[])",
            NEW_TABLES,
        )
    assert {r["name"]: r["relrowsecurity"] for r in rows} == {
        name.removeprefix("public."): True for name in NEW_TABLES
    }


@pytest.mark.parametrize("role", ["anon", "authenticated", "service_role"])
@pytest.mark.parametrize("table", [t for t in NEW_TABLES if t.startswith("private.")])
async def test_private_tables_are_closed_to_every_api_role(role: str, table: str, db: Database) -> None:
    """Nobody reads the sign-in tables directly, not even service_role: only the functions do."""
    pid = await new_profile(db)
    async with acting_as(db, role, pid if role == "authenticated" else None) as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetch(f"select * from {table}")


async def test_auth_settings_are_readable_and_only_service_role_writes(db: Database) -> None:
    """Anyone reads auth_settings; members cannot change them."""
    pid = await new_profile(db)
    async with acting_as(db, "anon") as conn:
        assert await conn.fetchval("select link_code_ttl_seconds from public.auth_settings") == 600
    async with acting_as(db, "authenticated", pid) as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("update public.auth_settings set link_code_hourly_limit = 1000")
    async with acting_as(db, "service_role") as conn:
        await conn.execute("update public.auth_settings set link_code_hourly_limit = 10")


async def test_function_grants(db: Database) -> None:
    """service_role_* functions are service_role's alone; create_link_code is for members only."""
    async with db.pool.acquire() as conn:
        grants = {
            (fn, role): await conn.fetchval("select has_function_privilege($1, $2, 'execute')", role, fn)
            for fn in [*SERVICE_FUNCTIONS, "public.create_link_code()"]
            for role in ("anon", "authenticated", "service_role")
        }
    for fn in SERVICE_FUNCTIONS:
        assert (grants[(fn, "anon")], grants[(fn, "authenticated")], grants[(fn, "service_role")]) == (
            False,
            False,
            True,
        ), fn
    assert (
        grants[("public.create_link_code()", "anon")],
        grants[("public.create_link_code()", "authenticated")],
        grants[("public.create_link_code()", "service_role")],
    ) == (False, True, False)


async def test_definer_functions_pin_an_empty_search_path(db: Database) -> None:
    """Every security-definer function this feature adds sets search_path to ''."""
    async with db.pool.acquire() as conn:
        rows = await conn.fetch(
            """
            select p.oid::regprocedure::text as name, p.proconfig
              from pg_proc p join pg_namespace n on n.oid = p.pronamespace
             where n.nspname = 'private' and p.prosecdef
               and p.proname = any($1::text[])
            """,
            [
                "sign_in_identity",
                "link_identity",
                "create_oauth_state",
                "take_oauth_state",
                "create_session",
                "refresh_session",
                "sign_out",
                "create_link_code",
                "redeem_link_code",
                "purge_auth",
                "profile_summary",
            ],
        )
    assert len(rows) == 11
    assert all(r["proconfig"] == ['search_path=""'] for r in rows), rows


async def test_oauth_states_in_flight_are_limited_per_client_and_in_total(db: Database) -> None:
    """XPRAT past auth_settings' per-client and total limits; a refused call stores nothing."""
    async with db.as_service() as conn:
        await conn.execute(
            "update public.auth_settings set oauth_states_per_client = 2, oauth_states_total = 3"
        )
    await create_state(db, "a1", client_hash=h("10.0.0.1"))
    await create_state(db, "a2", client_hash=h("10.0.0.1"))
    with pytest.raises(DomainError) as per_client:
        await create_state(db, "a3", client_hash=h("10.0.0.1"))
    await create_state(db, "b1", client_hash=h("10.0.0.2"))
    with pytest.raises(DomainError) as total:
        await create_state(db, "n1")  # an unknown client still counts towards the total
    assert per_client.value.code == total.value.code == "rate_limited"
    async with db.pool.acquire() as conn:
        assert await conn.fetchval("select count(*) from private.oauth_states") == 3
    with pytest.raises(DomainError) as bad:
        await create_state(db, "c1", client_hash=b"short")
    assert bad.value.code == "invalid_argument"
