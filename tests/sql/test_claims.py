"""Member claims with review and the career rule pack: submit, approve once, reject, limits, point values."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest

from tests.helpers import load_career_pack, new_profile
from xpbase.db import Database, member_claims
from xpbase.errors import DomainError
from xpbase.models.claims import Claim, ClaimList, PointValues


async def people(db: Database) -> dict[str, UUID]:
    ids = {name: await new_profile(db, name.title()) for name in ("admin", "member", "other")}
    async with db.as_service() as conn:
        await conn.execute("update public.profiles set role = 'admin' where id = $1", ids["admin"])
    return ids


async def submit(db: Database, pid: UUID, activity: str = "linkedin_update", **params: Any) -> Claim:
    answer = await db.rpc(
        "submit_claim", role="authenticated", claims=member_claims(pid), activity=activity, **params
    )
    return Claim.model_validate(answer)


async def review(
    db: Database, reviewer: UUID, claim_id: int, decision: str, reason: str | None = None
) -> Claim:
    answer = await db.rpc(
        "review_claim",
        role="authenticated",
        claims=member_claims(reviewer),
        claim_id=claim_id,
        decision=decision,
        reason=reason,
    )
    return Claim.model_validate(answer)


async def xp_of(db: Database, pid: UUID) -> int:
    return int(await db.pool.fetchval("select xp from public.profiles where id = $1", pid))


async def test_career_pack_seeds_seven_categorised_claimable_activities(db: Database) -> None:
    """The pack's seven activities are claimable and categorised; point_values lists them with their XP."""
    await load_career_pack(db)
    await load_career_pack(db)  # idempotent
    values = PointValues.model_validate(await db.rpc("point_values", role="anon")).root
    career = [v for v in values if v.claimable]
    assert sorted(v.slug for v in career) == [
        "career_event_attendance",
        "informational_interview",
        "job_application",
        "linkedin_update",
        "mock_interview",
        "resource_submission",
        "resume_review_claim",
    ]
    assert all(v.category is not None and v.category_name for v in career)
    by_slug = {v.slug: v for v in values}
    assert by_slug["linkedin_update"].base_xp == 5 and by_slug["linkedin_update"].claim_limit == 1
    assert by_slug["event_attendance"].category == "events"
    assert not by_slug["job_application"].requires_review
    assert "admin_adjustment" not in by_slug  # inactive activities are not listed


async def test_a_claim_waits_for_review_then_approval_awards_once(db: Database) -> None:
    """A pending claim credits nothing; approval awards via award_xp; approving again is a no-op."""
    await load_career_pack(db)
    ids = await people(db)
    claim = await submit(
        db, ids["member"], note="Updated headline", evidence_url="https://linkedin.example/in/bo"
    )
    assert claim.status == "pending" and claim.granted is None and await xp_of(db, ids["member"]) == 0

    approved = await review(db, ids["admin"], claim.id, "approve")
    assert approved.status == "approved" and approved.granted == 5 and approved.reviewer_id == ids["admin"]
    again = await review(db, ids["admin"], claim.id, "approve")
    assert again == approved and await xp_of(db, ids["member"]) == 5
    key = await db.pool.fetchval(
        "select idempotency_key from public.xp_ledger where id = $1", approved.ledger_id
    )
    assert key == f"claim:{claim.id}"
    kinds = await db.pool.fetch(
        "select data from public.notifications where profile_id = $1 and kind = 'claim_reviewed'",
        ids["member"],
    )
    assert len(kinds) == 1
    mine = ClaimList.model_validate(await db.rpc("my_claims", profile_id=ids["member"])).root
    assert [c.id for c in mine] == [claim.id]


async def test_rejection_needs_a_reason_and_blocks_approval(db: Database) -> None:
    await load_career_pack(db)
    ids = await people(db)
    claim = await submit(db, ids["member"], "resource_submission", note="A guide")
    with pytest.raises(DomainError) as no_reason:
        await review(db, ids["admin"], claim.id, "reject", "  ")
    assert no_reason.value.error.sqlstate == "XPBAD"
    rejected = await review(db, ids["admin"], claim.id, "reject", "No link to the resource")
    assert rejected.status == "rejected" and rejected.reason == "No link to the resource"
    with pytest.raises(DomainError) as decided:
        await review(db, ids["admin"], claim.id, "approve")
    assert decided.value.error.sqlstate == "XPCLS"
    assert await xp_of(db, ids["member"]) == 0


async def test_fifty_concurrent_approvals_credit_once(db: Database, database_url: str) -> None:
    """50 reviewers' approvals of one claim race on 50 connections: one award, 50 equal answers."""
    await load_career_pack(db)
    ids = await people(db)
    claim = await submit(db, ids["member"], "mock_interview", note="With Ana")
    pool = await Database.connect(database_url, min_size=50, max_size=50)
    try:
        answers = await asyncio.gather(
            *(
                pool.rpc(
                    "review_claim",
                    role="authenticated",
                    claims=member_claims(ids["admin"]),
                    claim_id=claim.id,
                    decision="approve",
                )
                for _ in range(50)
            )
        )
    finally:
        await pool.close()
    assert len({Claim.model_validate(a).ledger_id for a in answers}) == 1
    assert await xp_of(db, ids["member"]) == 25
    rows = await db.pool.fetchval(
        "select count(*) from public.xp_ledger where profile_id = $1", ids["member"]
    )
    assert rows == 1


async def test_activities_without_review_are_awarded_when_claimed(db: Database) -> None:
    await load_career_pack(db)
    ids = await people(db)
    claim = await submit(db, ids["member"], "job_application", note="Acme, data analyst")
    assert claim.status == "approved" and claim.granted == 2 and claim.reviewer_id is None


@pytest.mark.parametrize(
    ("activity", "params", "sqlstate"),
    [
        ("message", {}, "XPCLN"),
        ("no_such", {}, "XPACT"),
        ("linkedin_update", {"evidence_url": "javascript:alert(1)"}, "XPBAD"),
        ("linkedin_update", {"note": "x" * 1001}, "XPBAD"),
        ("linkedin_update", {"occurred_at": datetime.now(UTC) + timedelta(hours=1)}, "XPBAD"),
        ("linkedin_update", {"occurred_at": datetime.now(UTC) - timedelta(days=400)}, "XPBAD"),
    ],
)
async def test_each_submit_refusal_has_its_sqlstate_and_writes_nothing(
    db: Database, activity: str, params: dict[str, Any], sqlstate: str
) -> None:
    await load_career_pack(db)
    ids = await people(db)
    with pytest.raises(DomainError) as refused:
        await submit(db, ids["member"], activity, **params)
    assert refused.value.error.sqlstate == sqlstate
    assert await db.pool.fetchval("select count(*) from public.activity_claims") == 0


async def test_claim_limit_per_member_and_window_rejected_claims_do_not_count(db: Database) -> None:
    """linkedin_update allows 1 a week: a second is refused (XPCLL) until the first is rejected."""
    await load_career_pack(db)
    ids = await people(db)
    first = await submit(db, ids["member"])
    with pytest.raises(DomainError) as limited:
        await submit(db, ids["member"])
    assert limited.value.error.sqlstate == "XPCLL"
    await submit(db, ids["other"])  # another member has their own limit
    await review(db, ids["admin"], first.id, "reject", "Not visible")
    assert (await submit(db, ids["member"])).status == "pending"


async def test_only_reviewers_decide_and_read_the_queue(db: Database) -> None:
    """Members may not approve or read the queue, nor claim for others (42501); the bot names the admin."""
    await load_career_pack(db)
    ids = await people(db)
    claim = await submit(db, ids["member"])
    for caller in ("member", "other"):
        with pytest.raises(DomainError) as refused:
            await review(db, ids[caller], claim.id, "approve")
        assert refused.value.error.sqlstate == "42501"
        with pytest.raises(DomainError) as queue_refused:
            await db.rpc("claim_queue", role="authenticated", claims=member_claims(ids[caller]))
        assert queue_refused.value.error.sqlstate == "42501"
    with pytest.raises(DomainError) as for_other:
        await db.rpc(
            "submit_claim",
            role="authenticated",
            claims=member_claims(ids["member"]),
            activity="linkedin_update",
            profile_id=ids["other"],
        )
    assert for_other.value.error.sqlstate == "42501"
    with pytest.raises(DomainError) as unknown:
        await review(db, ids["admin"], 999999, "approve")
    assert unknown.value.error.sqlstate == "XPCLM"

    queue = ClaimList.model_validate(await db.rpc("claim_queue", profile_id=ids["admin"])).root
    assert [c.id for c in queue] == [claim.id]
    approved = Claim.model_validate(
        await db.rpc("review_claim", claim_id=claim.id, decision="approve", profile_id=ids["admin"])
    )
    assert approved.reviewer_id == ids["admin"]
    assert ClaimList.model_validate(await db.rpc("claim_queue")).root == []


async def test_moderators_review_claims_and_other_roles_do_not(db: Database) -> None:
    """approve_claims decides (12_roles.sql): a moderator approves; student, company, professional may not."""
    await load_career_pack(db)
    ids = await people(db)
    roles = ("moderator", "student", "company", "professional")
    staff = {role: await new_profile(db, role.title()) for role in roles}
    async with db.as_service() as conn:
        for role, pid in staff.items():
            await conn.execute("update public.profiles set role = $2 where id = $1", pid, role)
    claim = await submit(db, ids["member"])
    for role in ("student", "company", "professional"):
        with pytest.raises(DomainError) as refused:
            await review(db, staff[role], claim.id, "approve")
        assert refused.value.error.sqlstate == "42501"
    before = await xp_of(db, ids["member"])
    approved = await review(db, staff["moderator"], claim.id, "approve")
    assert approved.status == "approved" and approved.reviewer_id == staff["moderator"]
    assert await xp_of(db, ids["member"]) > before
