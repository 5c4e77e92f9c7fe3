"""Redemptions: pending -> approved -> fulfilled, or rejected / cancelled with refund and stock restored."""

from __future__ import annotations

import pytest

from tests.helpers import new_profile
from tests.sql.engine import as_service
from tests.sql.test_store import buy, give_points, mismatched_balances, points_of, save_item
from xpbase.db import Database, member_claims
from xpbase.errors import DomainError
from xpbase.models.economy import Redemptions, RedemptionUpdate


async def test_redemption_flow_with_steps_notifications_and_refund(db: Database) -> None:
    """pending -> approved -> fulfilled, a step and notification each; a rejected one refunds and restocks."""
    await save_item(
        db,
        slug="tshirt",
        name="T-shirt",
        category="merchandise",
        price_points=300,
        stock=2,
        delivery="address",
    )
    admin = await new_profile(db, "Admin")
    await as_service(db, "update public.profiles set role = 'admin' where id = $1", admin)
    pid = await new_profile(db, "Member")
    await give_points(db, pid, 1000)
    address = {"address": "12 MG Road, Bengaluru 560001"}
    first = await buy(db, pid, "tshirt", "r1", delivery=address)
    second = await buy(db, pid, "tshirt", "r2", delivery=address)
    assert first.grants["status"] == "pending" and await points_of(db, pid) == 400
    admin_claims = member_claims(admin)
    for status in ("approved", "fulfilled"):
        step = RedemptionUpdate.model_validate(
            await db.rpc(
                "update_redemption",
                role="authenticated",
                claims=admin_claims,
                redemption_id=first.grants["redemption_id"],
                status=status,
                note=f"{status}!",
            )
        )
        assert step.status == status and step.points_refunded == 0
    rejected = RedemptionUpdate.model_validate(
        await db.rpc(
            "update_redemption",
            role="authenticated",
            claims=admin_claims,
            redemption_id=second.grants["redemption_id"],
            status="rejected",
            note="out of size",
        )
    )
    assert (rejected.points_refunded, rejected.points_balance) == (300, 700)
    assert await db.pool.fetchval("select stock from public.store_items where slug = 'tshirt'") == 1
    with pytest.raises(DomainError) as again:
        await db.rpc("update_redemption", redemption_id=second.grants["redemption_id"], status="approved")
    assert again.value.error.sqlstate == "XPRDS"
    history = Redemptions.model_validate(
        await db.rpc("redemption_history", role="authenticated", claims=member_claims(pid))
    ).root
    assert [r.status for r in history] == ["rejected", "fulfilled"]
    assert [s.status for s in history[1].steps] == ["pending", "approved", "fulfilled"]
    assert history[1].steps[1].actor_id == admin and history[1].delivery == address
    kinds = await db.pool.fetch(
        "select data ->> 'status' as s from public.notifications"
        " where profile_id = $1 and kind = 'redemption_update'"
        " order by id",
        pid,
    )
    assert [r["s"] for r in kinds] == ["pending", "pending", "approved", "fulfilled", "rejected"]
    assert await mismatched_balances(db) == 0


async def test_members_cancel_only_their_own_pending_redemptions(db: Database) -> None:
    """The owner cancels a pending redemption (refund); another member gets 42501; the queue is for admins."""
    await save_item(
        db, slug="card", name="Gift card", category="gift_card", price_points=100, delivery="email"
    )
    pid = await new_profile(db, "Member")
    other = await new_profile(db, "Other")
    await give_points(db, pid, 100)
    bought = await buy(db, pid, "card", "c", delivery={"email": "me@example.com"})
    rid = bought.grants["redemption_id"]
    with pytest.raises(DomainError) as denied:
        await db.rpc(
            "update_redemption",
            role="authenticated",
            claims=member_claims(other),
            redemption_id=rid,
            status="cancelled",
        )
    assert denied.value.error.sqlstate == "42501"
    with pytest.raises(DomainError) as no_queue:
        await db.rpc("redemption_queue", role="authenticated", claims=member_claims(pid))
    assert no_queue.value.error.sqlstate == "42501"
    done = await db.rpc(
        "update_redemption",
        role="authenticated",
        claims=member_claims(pid),
        redemption_id=rid,
        status="cancelled",
        note="changed my mind",
    )
    assert done["points_refunded"] == 100 and await points_of(db, pid) == 100
    queue = Redemptions.model_validate(await db.rpc("redemption_queue", status=None)).root
    assert [(r.id, r.status) for r in queue] == [(rid, "cancelled")]


@pytest.mark.parametrize(("role", "allowed"), [("member", False), ("moderator", True), ("admin", True)])
async def test_the_backend_shows_the_queue_only_to_whom_it_acts_for_if_they_may_approve(
    db: Database, role: str, allowed: bool
) -> None:
    """service_role_redemption_queue (the bot's /redemptions) answers as the actor's role allows: delivery
    details are for holders of approve_redemptions, whatever their Discord permissions."""
    await save_item(
        db, slug="card", name="Gift card", category="gift_card", price_points=100, delivery="email"
    )
    pid = await new_profile(db, "Member")
    await give_points(db, pid, 100)
    await buy(db, pid, "card", "q1", delivery={"email": "member@example.org"})
    actor = await new_profile(db, "Actor")
    await as_service(db, "update public.profiles set role = $2 where id = $1", actor, role)
    if allowed:
        queue = Redemptions.model_validate(await db.rpc("service_role_redemption_queue", actor_id=actor)).root
        assert [(r.profile_id, r.delivery) for r in queue] == [(pid, {"email": "member@example.org"})]
    else:
        with pytest.raises(DomainError) as info:
            await db.rpc("service_role_redemption_queue", actor_id=actor)
        assert info.value.error.sqlstate == "42501"
