"""Discord account linking: create_link_code (members) and service_role_redeem_link_code (the bot)."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
import pytest

from tests.helpers import acting_as, new_profile
from xpbase.db import Database, member_claims
from xpbase.errors import DomainError

CODE = re.compile(r"^[0-9A-HJKMNP-TV-Z]{5}-[0-9A-HJKMNP-TV-Z]{5}$")
DISCORD_ID = "80351110224678912"


async def create_code(db: Database, profile_id: UUID) -> dict[str, Any]:
    """create_link_code as the member."""
    result: dict[str, Any] = await db.rpc(
        "create_link_code", role="authenticated", claims=member_claims(profile_id)
    )
    return result


async def redeem(
    db: Database, code: str, subject: str = DISCORD_ID, name: str | None = "ada"
) -> dict[str, Any]:
    """service_role_redeem_link_code as the bot."""
    result: dict[str, Any] = await db.rpc(
        "service_role_redeem_link_code", code=code, provider="discord", subject=subject, display_name=name
    )
    return result


async def sqlstate_of(coro: Any) -> str:
    with pytest.raises(DomainError) as info:
        await coro
    assert isinstance(info.value.__cause__, asyncpg.PostgresError)
    return str(info.value.__cause__.sqlstate)


async def test_member_gets_a_short_lived_code(db: Database) -> None:
    """A code looks like ABCDE-FGHJK and expires after auth_settings.link_code_ttl_seconds (default 600)."""
    pid = await new_profile(db, "Grace", provider="github")
    before = datetime.now(UTC)
    result = await create_code(db, pid)
    assert CODE.match(result["code"])
    assert result["ttl_seconds"] == 600
    expires_at = datetime.fromisoformat(result["expires_at"])
    assert before + timedelta(seconds=590) < expires_at < before + timedelta(seconds=610)


async def test_redeeming_links_the_discord_account_to_the_code_owner(db: Database) -> None:
    """The bot's redeem attaches (discord, id) to the member's profile and says whose it is."""
    pid = await new_profile(db, "Grace", provider="github")
    code = (await create_code(db, pid))["code"]
    result = await redeem(db, code, name="gracie")
    assert result["profile_id"] == str(pid)
    assert result["user"]["display_name"] == "Grace"
    assert (result["provider"], result["subject"], result["display_name"]) == (
        "discord",
        DISCORD_ID,
        "gracie",
    )
    assert result["already_linked"] is False
    assert await db.rpc("ensure_profile", provider="discord", subject=DISCORD_ID, display_name="x") == pid


async def test_a_code_works_once(db: Database) -> None:
    """Redeeming a spent code is XPLCD, even for the same Discord account."""
    pid = await new_profile(db, "Grace", provider="github")
    code = (await create_code(db, pid))["code"]
    await redeem(db, code)
    assert await sqlstate_of(redeem(db, code)) == "XPLCD"


async def test_unknown_code_is_xplcu(db: Database) -> None:
    """A well-formed code nobody made is XPLCU."""
    assert await sqlstate_of(redeem(db, "ABCDE-FGHJK")) == "XPLCU"


@pytest.mark.parametrize("code", ["", "ABCD", "ABCDE-FGHJKM", "ABCDE-FGHJU", "ABCDE_FGHJK", "Ä" * 10])
async def test_malformed_code_is_xpbad(code: str, db: Database) -> None:
    """Codes of the wrong length or with letters outside Crockford base32 are XPBAD."""
    assert await sqlstate_of(redeem(db, code)) == "XPBAD"


async def test_expired_code_is_xplcx(db: Database) -> None:
    """A code past expires_at is XPLCX."""
    pid = await new_profile(db, "Grace", provider="github")
    code = (await create_code(db, pid))["code"]
    async with db.pool.acquire() as conn:
        await conn.execute(
            "update private.link_codes set created_at = now() - interval '20 minutes', "
            "expires_at = now() - interval '10 minutes'"
        )
    assert await sqlstate_of(redeem(db, code)) == "XPLCX"


async def test_a_new_code_replaces_the_old_one(db: Database) -> None:
    """Making a new code retires the member's unused earlier one (XPLCX); the new one works."""
    pid = await new_profile(db, "Grace", provider="github")
    old = (await create_code(db, pid))["code"]
    new = (await create_code(db, pid))["code"]
    assert await sqlstate_of(redeem(db, old)) == "XPLCX"
    assert (await redeem(db, new))["profile_id"] == str(pid)


async def test_codes_are_rate_limited_per_member(db: Database) -> None:
    """The sixth code within an hour is XPLCR and creates nothing; another member is unaffected."""
    pid = await new_profile(db, "Grace", provider="github")
    for _ in range(5):
        await create_code(db, pid)
    assert await sqlstate_of(create_code(db, pid)) == "XPLCR"
    async with db.pool.acquire() as conn:
        assert await conn.fetchval("select count(*) from private.link_codes") == 5
    other = await new_profile(db, "Alan", provider="google")
    assert CODE.match((await create_code(db, other))["code"])


async def test_rate_limit_holds_under_concurrency(db: Database) -> None:
    """Twelve simultaneous requests from one member yield exactly five codes."""
    pid = await new_profile(db, "Grace", provider="github")
    results = await asyncio.gather(*(create_code(db, pid) for _ in range(12)), return_exceptions=True)
    made = [r for r in results if isinstance(r, dict)]
    refused = [r for r in results if isinstance(r, DomainError)]
    assert len(made) == 5 and len(refused) == 7
    assert {r.code for r in refused} == {"rate_limited"}


async def test_rate_limit_and_lifetime_are_settings(db: Database) -> None:
    """auth_settings.link_code_hourly_limit and link_code_ttl_seconds change the rules without code."""
    async with db.as_service() as conn:
        await conn.execute(
            "update public.auth_settings set link_code_hourly_limit = 1, link_code_ttl_seconds = 120"
        )
    pid = await new_profile(db, "Grace", provider="github")
    assert (await create_code(db, pid))["ttl_seconds"] == 120
    assert await sqlstate_of(create_code(db, pid)) == "XPLCR"


async def test_an_account_on_another_profile_is_xplnk_and_the_code_survives(db: Database) -> None:
    """A Discord account with a profile of its own is XPLNK; the code stays usable for another account."""
    await new_profile(db, "Ada", provider="discord", subject=DISCORD_ID)
    pid = await new_profile(db, "Grace", provider="github")
    code = (await create_code(db, pid))["code"]
    assert await sqlstate_of(redeem(db, code)) == "XPLNK"
    assert (await redeem(db, code, subject="80351110224678999"))["profile_id"] == str(pid)


async def test_a_profile_links_one_discord_account(db: Database) -> None:
    """A profile that already has a Discord account refuses a second one with XPLNP."""
    pid = await new_profile(db, "Ada", provider="discord", subject=DISCORD_ID)
    code = (await create_code(db, pid))["code"]
    assert await sqlstate_of(redeem(db, code, subject="80351110224678999")) == "XPLNP"


async def test_relinking_the_same_account_is_already_linked(db: Database) -> None:
    """Redeeming with the Discord account the profile already has succeeds with already_linked."""
    pid = await new_profile(db, "Ada", provider="discord", subject=DISCORD_ID)
    code = (await create_code(db, pid))["code"]
    assert (await redeem(db, code))["already_linked"] is True


@pytest.mark.parametrize(("provider", "subject"), [("Discord", DISCORD_ID), ("discord", ""), ("", "1")])
async def test_redeem_checks_the_identity(provider: str, subject: str, db: Database) -> None:
    """A malformed provider or subject is XPBAD and spends nothing."""
    pid = await new_profile(db, "Grace", provider="github")
    code = (await create_code(db, pid))["code"]
    coro = db.rpc(
        "service_role_redeem_link_code", code=code, provider=provider, subject=subject, display_name=None
    )
    assert await sqlstate_of(coro) == "XPBAD"
    assert (await redeem(db, code))["profile_id"] == str(pid)


async def test_typed_codes_read_as_the_shown_code(db: Database) -> None:
    """Lower case, dashes, spaces, and O, I, L for 0, 1, 1 all redeem the code that was shown (Crockford)."""
    pid = await new_profile(db, "Grace", provider="github")
    shown = (await create_code(db, pid))["code"]
    plain = shown.replace("-", "")
    typed = [
        plain,
        plain.lower(),
        f" {shown.lower()} ",
        plain[:5] + " - " + plain[5:],
        plain.replace("0", "O").replace("1", "I"),
        plain.lower().replace("0", "o").replace("1", "l"),
    ]
    async with db.pool.acquire() as conn:
        read = await conn.fetch(
            "select private.normalize_link_code(t) as code from unnest($1::text[]) t", typed
        )
    assert [r["code"] for r in read] == [plain] * len(typed)
    assert (await redeem(db, typed[-1]))["profile_id"] == str(pid)


async def test_codes_are_stored_hashed(db: Database) -> None:
    """Only sha256 of the normalised code is stored."""
    pid = await new_profile(db, "Grace", provider="github")
    code = (await create_code(db, pid))["code"]
    async with db.pool.acquire() as conn:
        stored = await conn.fetchval("select code_hash from private.link_codes")
        expected = await conn.fetchval("select sha256(convert_to($1, 'UTF8'))", code.replace("-", ""))
    assert stored == expected


@pytest.mark.parametrize(
    ("role", "sql"),
    [
        ("anon", "select public.create_link_code()"),
        ("service_role", "select public.create_link_code()"),
        ("anon", "select public.service_role_redeem_link_code('ABCDE-FGHJK', 'discord', '1', null)"),
        ("authenticated", "select public.service_role_redeem_link_code('ABCDE-FGHJK', 'discord', '1', null)"),
        ("authenticated", "select * from private.link_codes"),
        ("service_role", "select * from private.link_codes"),
    ],
)
async def test_who_may_call_what(role: str, sql: str, db: Database) -> None:
    """Members create codes; only service_role redeems; nobody reads the codes table directly."""
    pid = await new_profile(db, "Grace", provider="github")
    async with acting_as(db, role, pid if role == "authenticated" else None) as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetch(sql)


async def test_a_token_without_a_profile_cannot_make_codes(db: Database) -> None:
    """A signed-in subject with no profile gets XPPRF."""
    assert await sqlstate_of(create_code(db, UUID("00000000-0000-4000-8000-000000000000"))) == "XPPRF"
