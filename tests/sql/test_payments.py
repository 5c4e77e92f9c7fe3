"""Payments in SQL: orders priced from our rows, each captured payment credited once, refunds reversed."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest

from tests.helpers import new_profile
from tests.sql.economy_load import concurrent_payments
from tests.sql.engine import as_service
from xpbase.db import Database
from xpbase.errors import DomainError
from xpbase.models.economy import PaymentCredit, PaymentOrder, WebhookResult


async def open_order(db: Database, pid: UUID, rzp: str, **params: Any) -> PaymentOrder:
    """Steps 1 and 2: our order for the seeded ₹99 package, with a Razorpay order id."""
    order = PaymentOrder.model_validate(
        await db.rpc("service_role_create_payment_order", profile_id=pid, **({"package": "xp_100"} | params))
    )
    return PaymentOrder.model_validate(
        await db.rpc(
            "service_role_attach_razorpay_order",
            order_id=order.order_id,
            razorpay_order_id=rzp,
            amount_paise=order.amount_paise,
            currency=order.currency,
        )
    )


def payment_event(event: str, order: str, payment: str, amount: int = 9900) -> dict[str, Any]:
    entity = {
        "id": payment,
        "entity": "payment",
        "order_id": order,
        "amount": amount,
        "currency": "INR",
        "status": "captured",
    }
    return {"payment": {"entity": entity}}


async def webhook(db: Database, event_id: str, event: str, payload: dict[str, Any]) -> WebhookResult:
    return WebhookResult.model_validate(
        await db.rpc("service_role_payment_webhook", event_id=event_id, event=event, payload=payload)
    )


async def totals(db: Database, pid: UUID) -> tuple[int, int]:
    row = await db.pool.fetchrow("select xp, points from public.profiles where id = $1", pid)
    return row["xp"], row["points"]


async def test_order_amount_comes_from_the_package(db: Database) -> None:
    """The seeded package is ₹99 (9900 paise) for 100 XP; the order snapshots both."""
    pid = await new_profile(db, "Payer")
    order = await open_order(db, pid, "order_A")
    assert (order.amount_paise, order.currency, order.xp, order.status, order.receipt) == (
        9900,
        "INR",
        100,
        "created",
        str(order.order_id),
    )


@pytest.mark.parametrize(
    ("params", "sqlstate"),
    [
        ({"package": "xp_nope"}, "XPPKG"),
        ({"package": None, "item": "nope"}, "XPITM"),
        ({"package": None, "item": "streak_freeze"}, "XPPRC"),
        ({"package": "xp_100", "item": "streak_freeze"}, "XPBAD"),
        ({"ttl_seconds": 5}, "XPBAD"),
    ],
)
async def test_bad_orders_are_refused(db: Database, params: dict[str, Any], sqlstate: str) -> None:
    """Unknown package or item, a points-only item, both or a silly TTL: own SQLSTATE, no order."""
    pid = await new_profile(db, "Payer")
    with pytest.raises(DomainError) as refused:
        await db.rpc("service_role_create_payment_order", profile_id=pid, **({"package": "xp_100"} | params))
    assert refused.value.error.sqlstate == sqlstate
    assert await db.pool.fetchval("select count(*) from public.payment_orders") == 0


async def test_inactive_package_and_razorpay_amount_mismatch(db: Database) -> None:
    """An inactive package is XPPKG; a Razorpay order for another amount than ours is XPAMM."""
    pid = await new_profile(db, "Payer")
    order = PaymentOrder.model_validate(
        await db.rpc("service_role_create_payment_order", profile_id=pid, package="xp_100")
    )
    with pytest.raises(DomainError) as mismatch:
        await db.rpc(
            "service_role_attach_razorpay_order",
            order_id=order.order_id,
            razorpay_order_id="order_B",
            amount_paise=100,
            currency="INR",
        )
    assert mismatch.value.error.sqlstate == "XPAMM"
    await as_service(db, "update public.xp_packages set active = false")
    with pytest.raises(DomainError) as inactive:
        await db.rpc("service_role_create_payment_order", profile_id=pid, package="xp_100")
    assert inactive.value.error.sqlstate == "XPPKG"


async def test_verify_then_webhooks_credit_once_through_award_xp(db: Database) -> None:
    """verify credits 100 XP (activity xp_purchase, key razorpay:<payment>); later webhooks: duplicates."""
    pid = await new_profile(db, "Payer")
    await open_order(db, pid, "order_C")
    first = PaymentCredit.model_validate(
        await db.rpc(
            "service_role_verify_payment",
            profile_id=pid,
            razorpay_order_id="order_C",
            razorpay_payment_id="pay_C",
            amount_paise=9900,
        )
    )
    assert (first.credited, first.xp_granted, first.points_granted, first.status) == (True, 100, 100, "paid")
    for i, event in enumerate(("payment.captured", "order.paid")):
        result = await webhook(db, f"evt_C{i}", event, payment_event(event, "order_C", "pay_C"))
        assert result.outcome["duplicate"] is True and result.outcome["credited"] is False
    rows = await db.pool.fetch("select activity_slug, amount, idempotency_key from public.xp_ledger")
    assert [tuple(r) for r in rows] == [("xp_purchase", 100, "razorpay:pay_C")]
    assert await totals(db, pid) == (100, 100)


@pytest.mark.parametrize(
    ("who", "order", "amount", "sqlstate"),
    [
        ("other", "order_D", 9900, "XPOWN"),
        ("owner", "order_X", 9900, "XPORD"),
        ("owner", "order_D", 100, "XPAMM"),
    ],
)
async def test_verify_refusals_change_nothing(
    db: Database, who: str, order: str, amount: int, sqlstate: str
) -> None:
    """Someone else's order, an order we never made, a different amount: own SQLSTATE, nothing credited."""
    pid = await new_profile(db, "Payer")
    other = await new_profile(db, "Other")
    await open_order(db, pid, "order_D")
    with pytest.raises(DomainError) as refused:
        await db.rpc(
            "service_role_verify_payment",
            profile_id=pid if who == "owner" else other,
            razorpay_order_id=order,
            razorpay_payment_id="pay_D",
            amount_paise=amount,
        )
    assert refused.value.error.sqlstate == sqlstate
    assert await db.pool.fetchval("select count(*) from public.payments") == 0
    assert await totals(db, pid) == (0, 0)


async def test_webhook_replays_and_faults(db: Database) -> None:
    """Replayed event id XPWHR; unknown order XPORD; amount mismatch XPAMM; payment.failed: attempted."""
    pid = await new_profile(db, "Payer")
    await open_order(db, pid, "order_E")
    failed = await webhook(
        db,
        "evt_E0",
        "payment.failed",
        {
            "payment": {
                "entity": {
                    "id": "pay_E0",
                    "order_id": "order_E",
                    "status": "failed",
                    "error_description": "Card declined",
                }
            }
        },
    )
    assert failed.outcome["status"] == "attempted"
    for event_id, payload, sqlstate in (
        ("evt_E0", payment_event("payment.captured", "order_E", "pay_E"), "XPWHR"),
        ("evt_E1", payment_event("payment.captured", "order_nope", "pay_E"), "XPORD"),
        ("evt_E2", payment_event("payment.captured", "order_E", "pay_E", amount=990), "XPAMM"),
    ):
        with pytest.raises(DomainError) as refused:
            await webhook(db, event_id, "payment.captured", payload)
        assert refused.value.error.sqlstate == sqlstate
    assert await db.pool.fetchval("select count(*) from public.payments") == 0
    done = await webhook(
        db, "evt_E3", "payment.captured", payment_event("payment.captured", "order_E", "pay_E")
    )
    assert done.outcome["credited"] is True and await totals(db, pid) == (100, 100)


async def test_refunds_reverse_in_proportion_and_never_below_zero(db: Database) -> None:
    """Half a refund takes 50 XP and 50 points; once the member spent points the rest floors at zero."""
    pid = await new_profile(db, "Payer")
    await open_order(db, pid, "order_F")
    await db.rpc(
        "service_role_verify_payment",
        profile_id=pid,
        razorpay_order_id="order_F",
        razorpay_payment_id="pay_F",
        amount_paise=9900,
    )
    refund = {"refund": {"entity": {"id": "rfnd_F1", "payment_id": "pay_F", "amount": 4950}}}
    half = await webhook(db, "evt_F1", "refund.processed", refund)
    assert (half.outcome["xp_reversed"], half.outcome["points_reversed"]) == (50, 50)
    with pytest.raises(DomainError) as replay:
        await webhook(db, "evt_F1", "refund.processed", refund)
    assert replay.value.error.sqlstate == "XPWHR"
    again = await webhook(db, "evt_F1b", "refund.processed", refund)  # same refund id, new delivery id
    assert again.outcome["duplicate"] is True
    await db.rpc("admin_adjust_points", profile_id=pid, amount=-40, reason="spent", idempotency_key="spend")
    rest = await webhook(
        db,
        "evt_F2",
        "refund.processed",
        {"refund": {"entity": {"id": "rfnd_F2", "payment_id": "pay_F", "amount": 4950}}},
    )
    assert (rest.outcome["xp_reversed"], rest.outcome["points_reversed"], rest.outcome["points_floored"]) == (
        50,
        10,
        True,
    )
    assert await totals(db, pid) == (0, 0)
    with pytest.raises(DomainError) as too_much:
        await webhook(
            db,
            "evt_F3",
            "refund.processed",
            {"refund": {"entity": {"id": "rfnd_F3", "payment_id": "pay_F", "amount": 1}}},
        )
    assert too_much.value.error.sqlstate == "XPAMM"
    note = await db.pool.fetchval(
        "select body from public.notifications where profile_id = $1 and kind = 'payment_refunded'"
        " order by id desc"
        " limit 1",
        pid,
    )
    assert "less was taken back" in note


async def test_open_orders_and_expiry(db: Database) -> None:
    """Old open orders are listed for reconciliation; past expires_at without a payment they expire."""
    pid = await new_profile(db, "Payer")
    order = await open_order(db, pid, "order_G", ttl_seconds=60)
    assert [
        o["razorpay_order_id"] for o in await db.rpc("service_role_open_payment_orders", older_than_seconds=0)
    ] == ["order_G"]
    assert await db.rpc("service_role_expire_payment_orders") == 0
    async with db.pool.acquire() as conn:
        await conn.execute("update public.payment_orders set expires_at = now() - interval '1 second'")
    assert await db.rpc("service_role_expire_payment_orders") == 1
    late = PaymentCredit.model_validate(
        await db.rpc(
            "service_role_reconcile_payment",
            razorpay_order_id="order_G",
            razorpay_payment_id="pay_G",
            amount_paise=9900,
        )
    )
    assert late.credited and late.status == "paid" and late.order_id == order.order_id


async def test_rupee_items_go_through_the_same_path(db: Database) -> None:
    """A store item with a rupee price is granted by the captured payment, once."""
    await db.rpc(
        "admin_save_store_item",
        item={
            "slug": "frame",
            "name": "Frame",
            "category": "cosmetic",
            "price_paise": 4900,
            "rank_card_style": "gold",
        },
    )
    pid = await new_profile(db, "Payer")
    order = await open_order(db, pid, "order_H", package=None, item="frame")
    assert order.amount_paise == 4900
    for _ in range(2):
        await db.rpc(
            "service_role_reconcile_payment",
            razorpay_order_id="order_H",
            razorpay_payment_id="pay_H",
            amount_paise=4900,
        )
    assert await db.pool.fetchval("select rank_card_style from public.profiles where id = $1", pid) == "gold"
    assert await db.pool.fetchval("select quantity from public.inventory where profile_id = $1", pid) == 1


async def test_verify_and_shuffled_webhooks_from_concurrent_clients_credit_each_payment_once(
    db: Database, database_url: str
) -> None:
    """300 payments, each with verify and three webhook deliveries, shuffled over 40 connections: 300 credits,
    300 XP ledger rows, no duplicate; refunding 30 of them reverses exactly 30.

    The issue's figure (1,000 payments, 100 refunds) is bench/store.py --payments 1000; the suite runs 300.
    """
    run = await concurrent_payments(db, database_url, payments=300, payers=50, refunds=30, connections=40)
    assert (run.credited, run.distinct_credited, run.replays) == (300, 300, 300)
    assert (run.ledger_rows, run.ledger_keys, run.ledger_xp) == (300, 300, 30_000)
    assert (run.refunded_payments, run.xp_after_refunds, run.points_after_refunds) == (30, 27_000, 27_000)
    assert run.mismatched_balances == 0
