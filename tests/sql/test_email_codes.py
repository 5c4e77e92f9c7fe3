"""Email sign-in codes (supabase/sql/81_email_codes.sql): hashed, single use, five tries, limits."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any
from uuid import UUID

import pytest

from tests.helpers import new_profile
from xpbase.db import Database
from xpbase.errors import DomainError

EMAIL = "ada@example.com"


def token(n: int) -> bytes:
    return hashlib.sha256(f"refresh-{n}".encode()).digest()


async def request_code(db: Database, email: str = EMAIL, ip: str | None = "198.51.100.7") -> dict[str, Any]:
    return await db.rpc("service_role_request_email_code", email=email, client_ip=ip)


async def verify(
    db: Database, code: str, email: str = EMAIL, n: int = 0, link: UUID | None = None
) -> dict[str, Any]:
    return await db.rpc(
        "service_role_verify_email_code",
        email=email,
        code=code,
        token_hash=token(n),
        ttl_seconds=3600,
        link_profile_id=link,
    )


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1000000:06d}"


async def test_codes_are_stored_hashed_and_work_once(db: Database) -> None:
    """The code is not in the table; the right code signs the email identity in once; then it is spent."""
    sent = await request_code(db)
    assert len(sent["code"]) == 6 and sent["ttl_seconds"] == 600
    row = await db.pool.fetchrow("select * from private.email_codes")
    assert sent["code"].encode() not in bytes(row["code_hash"]) + bytes(row["salt"])
    assert bytes(row["code_hash"]) == hashlib.sha256(bytes(row["salt"]) + sent["code"].encode()).digest()
    first = await verify(db, sent["code"])
    assert first["status"] == "signed_in" and first["created"] is True
    assert first["session"]["provider"] == "email"
    identity = await db.pool.fetchrow(
        "select profile_id, subject from public.identities where provider = 'email'"
    )
    assert (str(identity["profile_id"]), identity["subject"]) == (first["session"]["profile_id"], EMAIL)
    with pytest.raises(DomainError) as used:
        await verify(db, sent["code"], n=1)
    assert used.value.error.sqlstate == "XPOTC"
    # Next day, the same address: the same profile, not a new one.
    again = await verify(db, (await request_code(db))["code"], n=2)
    assert (again["created"], again["session"]["profile_id"]) == (False, first["session"]["profile_id"])


async def test_five_wrong_tries_kill_the_code(db: Database) -> None:
    """Each wrong try is counted (and committed); the 5th locks; the 6th and the right code are refused."""
    code = (await request_code(db))["code"]
    answers = [await verify(db, wrong(code)) for _ in range(5)]
    assert [a["status"] for a in answers] == ["wrong"] * 4 + ["locked"]
    assert [a["tries_left"] for a in answers] == [4, 3, 2, 1, 0]
    for attempt in (wrong(code), code):
        with pytest.raises(DomainError) as dead:
            await verify(db, attempt)
        assert dead.value.error.sqlstate == "XPOTD"
    assert await db.pool.fetchval("select count(*) from private.auth_sessions") == 0


@pytest.mark.parametrize(
    ("email", "code"),
    [
        ("Ada@example.com", "123456"),  # not normalised
        ("ada@example.com\r\nBcc: x@example.com", "123456"),  # header injection
        ("a" * 250 + "@example.com", "123456"),  # overlong
        ("no-at-sign", "123456"),
        (EMAIL, "1234567"),  # a 7-digit code
        (EMAIL, "12345"),
        (EMAIL, "12345a"),
    ],
)
async def test_malformed_input_is_refused_without_echoing_it(db: Database, email: str, code: str) -> None:
    await request_code(db)
    with pytest.raises(DomainError) as caught:
        await verify(db, code, email=email)
    assert caught.value.error.sqlstate == "XPBAD"
    assert email not in caught.value.message and code not in caught.value.message
    assert await db.pool.fetchval("select sum(tries) from private.email_codes") == 0


async def test_expired_replaced_and_other_address_codes_do_not_work(db: Database) -> None:
    first = (await request_code(db))["code"]
    second = (await request_code(db))["code"]
    other = (await request_code(db, "bob@example.com"))["code"]
    if first != second:
        # Only the newest code counts: the replaced one is a wrong try.
        assert (await verify(db, first))["status"] == "wrong"
    if other != second:
        # Bob's code presented for Ada's address: a wrong try on Ada's code.
        assert (await verify(db, other))["status"] == "wrong"
    await db.pool.execute(
        "update private.email_codes set created_at = now() - interval '11 minutes',"
        " expires_at = now() - interval '1 minute'"
    )
    with pytest.raises(DomainError) as expired:
        await verify(db, second)
    assert expired.value.error.sqlstate == "XPOTC"


async def test_rate_limits_per_address_and_per_ip(db: Database) -> None:
    """At most 5 codes an hour per address and 20 per client IP (auth_settings); refusals change nothing."""
    for _ in range(5):
        await request_code(db)
    with pytest.raises(DomainError) as per_address:
        await request_code(db)
    assert per_address.value.error.sqlstate == "XPOTR"
    await db.pool.execute("update public.auth_settings set email_code_ip_hourly_limit = 7")
    await request_code(db, "c1@example.com")
    await request_code(db, "c2@example.com")
    with pytest.raises(DomainError) as per_ip:
        await request_code(db, "c3@example.com")
    assert per_ip.value.error.sqlstate == "XPOTR"
    assert await db.pool.fetchval("select count(*) from private.email_codes") == 7
    await request_code(db, "c3@example.com", ip="203.0.113.9")  # another client still may


async def test_concurrent_verifies_of_one_code_make_one_session(database_url: str, db: Database) -> None:
    """50 verifies of the same right code at once: exactly one session, the rest XPOTC."""
    code = (await request_code(db))["code"]
    crowd = await Database.connect(database_url, min_size=50, max_size=50)
    try:
        outcomes = await asyncio.gather(
            *(verify(crowd, code, n=n) for n in range(50)), return_exceptions=True
        )
    finally:
        await crowd.close()
    wins = [o for o in outcomes if isinstance(o, dict)]
    losses = [o for o in outcomes if isinstance(o, DomainError)]
    assert len(wins) == 1 and wins[0]["status"] == "signed_in"
    assert len(losses) == 49 and {e.error.sqlstate for e in losses} == {"XPOTC"}
    assert await db.pool.fetchval("select count(*) from private.auth_sessions") == 1


async def test_a_signed_in_member_links_an_address(db: Database) -> None:
    """With link_profile_id the address becomes an identity of that profile; signing in by email finds it."""
    member = await new_profile(db, "Gita", provider="github", subject="gita")
    linked = await verify(db, (await request_code(db))["code"], link=member)
    assert linked["status"] == "linked" and linked["link"]["profile_id"] == str(member)
    signed = await verify(db, (await request_code(db))["code"], n=1)
    assert signed["session"]["profile_id"] == str(member) and signed["created"] is False


async def test_a_banned_member_cannot_sign_in_by_email(db: Database) -> None:
    signed = await verify(db, (await request_code(db))["code"])
    pid = signed["session"]["profile_id"]
    async with db.as_service() as conn:
        await conn.execute("select public.moderate('suspend', $1::uuid, 'Fraud')", pid)
    with pytest.raises(DomainError) as banned:
        await verify(db, (await request_code(db))["code"], n=1)
    assert banned.value.error.sqlstate == "XPSUS"
    # The refusal rolled back: the code is still live (not spent by a refused sign-in).
    assert await db.pool.fetchval("select count(*) from private.email_codes where used_at is not null") == 1
