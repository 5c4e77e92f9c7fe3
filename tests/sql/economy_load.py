"""Concurrency scenarios of the economy, shared by tests/sql/ (small counts) and bench/store.py (the issue's).

Both run real concurrent clients: ``connections`` asyncpg connections, each
calling the public functions one transaction at a time, as the service and
the bot do (``xpbase.db.Database.rpc``).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from xpbase.db import Database, member_claims
from xpbase.errors import DomainError

MISMATCHED_BALANCES = """
select count(*) from (
  select p.id from public.profiles p left join public.points_ledger l on l.profile_id = p.id
   group by p.id having p.points <> coalesce(sum(l.amount), 0)) s
"""


async def make_members(db: Database, count: int, prefix: str) -> list[UUID]:
    """``count`` profiles made through ensure_profile in one statement."""
    async with db.as_service() as conn:
        rows = await conn.fetch(
            "select public.ensure_profile('discord', $1 || g, $1 || g) as id from generate_series(1, $2) g",
            prefix,
            count,
        )
    return [r["id"] for r in rows]


@dataclass(frozen=True)
class PurchaseRun:
    outcomes: Counter[str]
    stock_left: int
    purchases: int
    mismatched_balances: int
    seconds: float


async def concurrent_purchases(
    db: Database, url: str, *, attempts: int, members: int, stock: int, connections: int, seed: int = 11
) -> PurchaseRun:
    """``attempts`` purchases of one item with ``stock`` units by ``members`` members (1,000 points each,
    price 10) over ``connections`` connections, in a shuffled order. Outcomes count "ok" and each SQLSTATE."""
    slug = f"rare_{seed}"
    await db.rpc(
        "admin_save_store_item",
        item={"slug": slug, "name": "Rare", "category": "cosmetic", "price_points": 10, "stock": stock},
    )
    people = await make_members(db, members, f"buyer{seed}-")
    async with db.as_service() as conn:
        await conn.execute(
            "select public.admin_adjust_points(p, 1000, 'seed', 'seed:' || p) from unnest($1::uuid[]) p",
            people,
        )
    tries = [(people[i % members], f"buy-{seed}-{i}") for i in range(attempts)]
    random.Random(seed).shuffle(tries)
    pool = await Database.connect(url, min_size=connections, max_size=connections)
    outcomes: Counter[str] = Counter()

    async def worker(chunk: list[tuple[UUID, str]]) -> None:
        for pid, key in chunk:
            try:
                await pool.rpc(
                    "buy_item",
                    role="authenticated",
                    claims=member_claims(pid),
                    item=slug,
                    idempotency_key=key,
                )
                outcomes["ok"] += 1
            except DomainError as exc:
                outcomes[exc.error.sqlstate] += 1

    started = time.perf_counter()
    try:
        await asyncio.gather(*(worker(tries[i::connections]) for i in range(connections)))
    finally:
        await pool.close()
    seconds = time.perf_counter() - started
    return PurchaseRun(
        outcomes=outcomes,
        stock_left=int(await db.pool.fetchval("select stock from public.store_items where slug = $1", slug)),
        purchases=int(
            await db.pool.fetchval(
                "select count(*) from public.store_purchases sp"
                " join public.store_items i on i.id = sp.item_id"
                " where i.slug = $1",
                slug,
            )
        ),
        mismatched_balances=int(await db.pool.fetchval(MISMATCHED_BALANCES)),
        seconds=seconds,
    )


def payment_payload(order: str, payment: str, amount: int = 9900) -> dict[str, Any]:
    """A webhook payload's ``payment`` entity, as Razorpay sends it for payment.captured and order.paid."""
    entity = {"id": payment, "entity": "payment", "order_id": order, "amount": amount, "currency": "INR"}
    return {"payment": {"entity": entity | {"status": "captured"}}}


@dataclass(frozen=True)
class PaymentRun:
    credited: int
    distinct_credited: int
    replays: int
    ledger_rows: int
    ledger_keys: int
    ledger_xp: int
    refunded_payments: int
    xp_after_refunds: int
    points_after_refunds: int
    mismatched_balances: int
    seconds: float


async def concurrent_payments(
    db: Database, url: str, *, payments: int, payers: int, refunds: int, connections: int, seed: int = 11
) -> PaymentRun:
    """``payments`` orders of the ₹99 package, each confirmed by verify and three webhook deliveries
    (payment.captured, order.paid, and order.paid again with the same event id), all shuffled over
    ``connections`` connections; then ``refunds`` full refunds through refund.processed webhooks."""
    people = await make_members(db, payers, f"payer{seed}-")
    async with db.as_service() as conn:
        await conn.execute(
            """
            select public.service_role_attach_razorpay_order(
                     o.order_id, 'order_' || $2 || '_' || o.n, 9900, 'INR')
              from (select (public.service_role_create_payment_order(p, 'xp_100') ->> 'order_id')::uuid
                             as order_id,
                           g as n
                      from generate_series(0, $3 - 1) g, lateral (select ($1::uuid[])[g % $4 + 1] as p) x) o
            """,
            people,
            str(seed),
            payments,
            payers,
        )
    calls: list[tuple[str, dict[str, Any]]] = []
    for i in range(payments):
        order, payment = f"order_{seed}_{i}", f"pay_{seed}_{i}"
        calls.append(
            (
                "service_role_verify_payment",
                {
                    "profile_id": people[i % payers],
                    "razorpay_order_id": order,
                    "razorpay_payment_id": payment,
                    "amount_paise": 9900,
                },
            )
        )
        for n, event in ((0, "payment.captured"), (1, "order.paid"), (1, "order.paid")):
            calls.append(
                (
                    "service_role_payment_webhook",
                    {
                        "event_id": f"evt_{payment}_{n}",
                        "event": event,
                        "payload": payment_payload(order, payment),
                    },
                )
            )
    random.Random(seed).shuffle(calls)
    pool = await Database.connect(url, min_size=connections, max_size=connections)
    credited: list[str] = []
    replays = 0

    async def worker(chunk: list[tuple[str, dict[str, Any]]]) -> None:
        nonlocal replays
        for function, params in chunk:
            try:
                answer = await pool.rpc(function, **params)
            except DomainError as exc:
                if exc.error.sqlstate != "XPWHR":
                    raise
                replays += 1
                continue
            outcome = answer.get("outcome", answer)
            if outcome["credited"]:
                credited.append(outcome["payment_id"])

    started = time.perf_counter()
    try:
        await asyncio.gather(*(worker(calls[i::connections]) for i in range(connections)))
    finally:
        await pool.close()
    seconds = time.perf_counter() - started
    ledger = await db.pool.fetchrow(
        "select count(*) as n, count(distinct idempotency_key) as keys, coalesce(sum(amount), 0) as xp"
        " from public.xp_ledger where activity_slug = 'xp_purchase'"
    )
    for i in range(refunds):
        refund = {
            "id": f"rfnd_{seed}_{i}",
            "entity": "refund",
            "payment_id": f"pay_{seed}_{i}",
            "amount": 9900,
        }
        await db.rpc(
            "service_role_payment_webhook",
            event_id=f"evt_rfnd_{seed}_{i}",
            event="refund.processed",
            payload={"refund": {"entity": refund}},
        )
    return PaymentRun(
        credited=len(credited),
        distinct_credited=len(set(credited)),
        replays=replays,
        ledger_rows=int(ledger["n"]),
        ledger_keys=int(ledger["keys"]),
        ledger_xp=int(ledger["xp"]),
        refunded_payments=int(
            await db.pool.fetchval("select count(*) from public.payments where status = 'refunded'")
        ),
        xp_after_refunds=int(await db.pool.fetchval("select coalesce(sum(xp), 0) from public.profiles")),
        points_after_refunds=int(
            await db.pool.fetchval("select coalesce(sum(points), 0) from public.profiles")
        ),
        mismatched_balances=int(await db.pool.fetchval(MISMATCHED_BALANCES)),
        seconds=seconds,
    )
