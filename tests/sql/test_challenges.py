"""Challenges: the YAML loader (validation with lines, idempotent upsert), judged completions awarded once,
prerequisites and the active window enforced, a member's progress."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from tests.helpers import acting_as_custom_role, new_profile
from xpbase.challenges import ChallengeFileError, load_challenges, read_challenges
from xpbase.db import Database, member_claims
from xpbase.errors import DomainError
from xpbase.models.challenges import ChallengeCatalogue, Completion, MyChallenges

SAMPLE = Path(__file__).resolve().parents[2] / "supabase" / "rulepacks" / "challenges.yaml"


async def complete(db: Database, pid: UUID, challenge: str, **params: Any) -> Completion:
    params.setdefault("judge", "judge0")
    answer = await db.rpc("service_role_complete_challenge", profile_id=pid, challenge=challenge, **params)
    return Completion.model_validate(answer)


async def xp_of(db: Database, pid: UUID) -> int:
    return int(await db.pool.fetchval("select xp from public.profiles where id = $1", pid))


async def test_sample_file_loads_once_and_again_changes_nothing(db: Database) -> None:
    """The repo's sample loads with progress; the second load reports every challenge unchanged."""
    seen: list[tuple[int, int]] = []
    first = await load_challenges(db, SAMPLE, lambda saved, read: seen.append((saved, read)))
    assert (first.read, first.created, first.updated, first.total) == (6, 6, 0, 6)
    assert seen == [(6, 6)]
    again = await load_challenges(db, SAMPLE)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 6)
    catalogue = ChallengeCatalogue.model_validate(await db.rpc("challenge_catalogue", role="anon"))
    by_slug = {c.slug: c for c in catalogue.root}
    assert [c.slug for c in catalogue.root][:3] == ["hello-world", "fizzbuzz", "binary-search"]
    assert by_slug["december-sprint"].prerequisites == ["binary-search", "meetup-talk"]
    assert by_slug["december-sprint"].starts_at == "2026-12-01T00:00:00.000000Z"
    assert by_slug["meetup-talk"].layer == "reality"
    # A cyber challenge awards its own activity, of the cyber layer.
    layer = await db.pool.fetchval(
        "select layer_slug from public.activity_types where slug = 'challenge_completed_cyber'"
    )
    assert layer == "cyber"


async def test_editing_a_challenge_updates_it_and_its_prerequisites(db: Database, tmp_path: Path) -> None:
    """Changing a field or a prerequisite counts as an update; the rest stay unchanged."""
    await load_challenges(db, SAMPLE)
    text = SAMPLE.read_text(encoding="utf-8").replace("xp: 40", "xp: 45")
    text = text.replace("prerequisites: [binary-search, meetup-talk]", "prerequisites: [meetup-talk]")
    edited = tmp_path / "edited.yaml"
    edited.write_text(text, encoding="utf-8")
    report = await load_challenges(db, edited)
    assert (report.created, report.updated, report.unchanged) == (0, 2, 4)
    catalogue = {
        c.slug: c for c in ChallengeCatalogue.model_validate(await db.rpc("challenge_catalogue")).root
    }
    assert catalogue["fizzbuzz"].xp == 45
    assert catalogue["december-sprint"].prerequisites == ["meetup-talk"]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "challenges:\n  - slug: a\n    title: A: B\n    difficulty: easy\n",
            ":3: not valid YAML",
        ),
        ("challenges: 3\n", ":1: the file is a mapping"),
        (
            "challenges:\n  - slug: a\n    title: A\n    difficulty: trivial\n    layer: cyber\n    xp: 10\n",
            ":4: challenge 'a': difficulty: Input should be",
        ),
        (
            "challenges:\n  - slug: a\n    title: A\n    difficulty: easy\n    layer: cyber\n    xp: 10\n"
            "    colour: red\n",
            ":7: challenge 'a': colour: Extra inputs",
        ),
        (
            "challenges:\n  - slug: a\n    title: A\n    difficulty: easy\n    layer: cyber\n    xp: 10\n"
            "  - slug: a\n    title: B\n    difficulty: easy\n    layer: cyber\n    xp: 10\n",
            ":7: challenge 'a': slug already used on line 2",
        ),
        (
            "challenges:\n  - slug: a\n    title: A\n    difficulty: easy\n    layer: cyber\n    xp: 10\n"
            "    prerequisites: [b]\n  - slug: b\n    title: B\n    difficulty: easy\n    layer: cyber\n"
            "    xp: 10\n    prerequisites: [a]\n",
            "prerequisites lead back to it (a -> b -> a)",
        ),
        (
            "challenges:\n  - slug: a\n    title: A\n    difficulty: easy\n    layer: cyber\n    xp: 10\n"
            "    starts_at: 2026-01-01T00:00:00\n",
            ":7: challenge 'a': starts_at: Input should have timezone info",
        ),
    ],
)
def test_file_problems_are_reported_with_their_line(tmp_path: Path, body: str, expected: str) -> None:
    """YAML syntax, shape, fields, duplicates and cycles are refused before anything is written."""
    path = tmp_path / "bad.yaml"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(ChallengeFileError) as refused:
        read_challenges(path)
    assert expected in str(refused.value), str(refused.value)
    assert str(refused.value).startswith(str(path))


async def test_database_refusals_name_the_challenge_and_write_nothing(db: Database) -> None:
    """XP outside the activity range, an unknown layer or prerequisite: refused, with the challenge named."""
    base = {"slug": "x", "title": "X", "difficulty": "easy", "layer": "cyber", "xp": 10}
    for change, code, words in (
        ({"xp": 5000}, "amount_not_allowed", "challenge x: xp 5000 is outside 10 to 1000"),
        ({"layer": "astral"}, "invalid_argument", "challenge x: unknown layer astral"),
        ({"prerequisites": ["nope"]}, "invalid_argument", "challenge x: unknown prerequisite nope"),
        ({"starts_at": "soon"}, "invalid_argument", "challenge x: starts_at is not a time"),
    ):
        with pytest.raises(DomainError) as refused:
            await db.rpc("admin_save_challenges", challenges=[{**base, **change}])
        assert (refused.value.code, words in refused.value.message) == (code, True), refused.value.message
    member = await new_profile(db, "Member")
    with pytest.raises(DomainError) as forbidden:
        await db.rpc(
            "admin_save_challenges", role="authenticated", claims=member_claims(member), challenges=[base]
        )
    assert forbidden.value.code == "forbidden"
    assert await db.pool.fetchval("select count(*) from public.challenges") == 0


async def test_completion_is_awarded_once_with_prerequisites_enforced(db: Database) -> None:
    """A judge's report awards the challenge's XP once; prerequisites must be completed first."""
    await load_challenges(db, SAMPLE)
    pid = await new_profile(db, "Coder")
    with pytest.raises(DomainError) as locked:
        await complete(db, pid, "fizzbuzz")
    assert locked.value.code == "challenge_prerequisites_missing"
    assert "needs hello-world first" in locked.value.message
    first = await complete(db, pid, "hello-world", submission="run-1")
    assert (first.granted, first.replayed, first.submission) == (20, False, "run-1")
    again = await complete(db, pid, "hello-world", judge="another judge")
    assert (again.id, again.granted, again.replayed, again.judge) == (first.id, 20, True, "judge0")
    assert await xp_of(db, pid) == 20
    key = await db.pool.fetchval(
        "select idempotency_key from public.xp_ledger where id = $1", first.ledger_id
    )
    challenge_id = await db.pool.fetchval("select id from public.challenges where slug = 'hello-world'")
    assert key == f"challenge:{challenge_id}:{pid}"
    await complete(db, pid, "fizzbuzz")
    assert await xp_of(db, pid) == 60
    with pytest.raises(DomainError) as unknown:
        await complete(db, pid, "nope")
    assert unknown.value.code == "unknown_challenge"
    with pytest.raises(DomainError) as members_may_not:
        await db.rpc(
            "service_role_complete_challenge",
            role="authenticated",
            claims=member_claims(pid),
            profile_id=pid,
            challenge="binary-search",
            judge="me",
        )
    assert members_may_not.value.code == "forbidden"


async def test_concurrent_reports_credit_once(db: Database) -> None:
    """Ten simultaneous reports of one completion: one completion row, the XP once."""
    await load_challenges(db, SAMPLE)
    pid = await new_profile(db, "Racer")
    answers = await asyncio.gather(*(complete(db, pid, "hello-world", judge=f"j{i}") for i in range(10)))
    assert sorted(a.replayed for a in answers) == [False] + [True] * 9
    assert len({a.id for a in answers}) == 1
    assert await xp_of(db, pid) == 20


async def test_the_active_window_and_inactive_challenges_are_enforced(db: Database) -> None:
    """Completions outside [starts_at, ends_at) or of an inactive challenge are refused; inside count."""
    now = datetime.now(UTC)
    window = {"difficulty": "easy", "layer": "reality", "xp": 50}
    await db.rpc(
        "admin_save_challenges",
        challenges=[
            {"slug": "past", "title": "Past", **window, "ends_at": (now - timedelta(days=1)).isoformat()},
            {
                "slug": "now",
                "title": "Now",
                **window,
                "starts_at": (now - timedelta(days=2)).isoformat(),
                "ends_at": (now + timedelta(days=1)).isoformat(),
            },
            {"slug": "off", "title": "Off", **window, "active": False},
        ],
    )
    pid = await new_profile(db, "Timely")
    for slug, params in (
        ("past", {}),
        ("now", {"completed_at": now - timedelta(days=3)}),
        ("off", {}),
    ):
        with pytest.raises(DomainError) as closed:
            await complete(db, pid, slug, **params)
        assert closed.value.code == "challenge_not_open", slug
    done = await complete(db, pid, "now", completed_at=now - timedelta(days=1))
    assert done.granted == 50
    with pytest.raises(DomainError) as future:
        await complete(db, pid, "past", completed_at=now + timedelta(days=1))
    assert future.value.code == "time_out_of_range"
    progress = MyChallenges.model_validate(
        await db.rpc("my_challenges", role="authenticated", claims=member_claims(pid))
    )
    assert {c.slug: c.status for c in progress.challenges} == {"past": "closed", "now": "completed"}
    assert (progress.completed, progress.total, progress.xp_earned) == (1, 2, 50)


async def test_progress_shows_locked_open_and_completed(db: Database) -> None:
    """my_challenges: completed with XP, open, locked with missing prerequisites; members see only theirs."""
    await load_challenges(db, SAMPLE)
    pid = await new_profile(db, "Progress")
    other = await new_profile(db, "Other")
    await complete(db, pid, "hello-world")
    progress = MyChallenges.model_validate(
        await db.rpc("my_challenges", role="authenticated", claims=member_claims(pid))
    )
    status = {c.slug: (c.status, c.missing_prerequisites) for c in progress.challenges}
    assert status["hello-world"] == ("completed", [])
    assert status["fizzbuzz"] == ("open", [])
    assert status["binary-search"] == ("locked", ["fizzbuzz"])
    assert status["december-sprint"][1] == ["binary-search", "meetup-talk"]
    assert (progress.completed, progress.total, progress.xp_earned) == (1, 6, 20)
    with pytest.raises(DomainError) as not_yours:
        await db.rpc("my_challenges", role="authenticated", claims=member_claims(other), profile_id=pid)
    assert not_yours.value.code == "forbidden"
    async with db.as_member(other) as conn:
        assert await conn.fetchval("select count(*) from public.challenge_completions") == 0


async def test_a_member_whose_role_claim_is_a_custom_role_sees_their_own_progress(db: Database) -> None:
    """my_challenges takes a signed-in member as auth.uid(), whatever their role claim says, as the rest
    of the API does (points_statement here)."""
    await load_challenges(db, SAMPLE)
    pid = await new_profile(db, "Custom")
    await complete(db, pid, "hello-world")
    async with acting_as_custom_role(db, pid) as conn:
        assert await conn.fetchval("select public.points_statement() ->> 'profile_id'") == str(pid)
        mine = await conn.fetchval("select public.my_challenges()")
    assert mine == await db.rpc("my_challenges", role="authenticated", claims=member_claims(pid))
    assert MyChallenges.model_validate(mine).completed == 1
