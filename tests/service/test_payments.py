"""Payments over HTTP with the official razorpay SDK against a local stand-in of Razorpay's API."""

from __future__ import annotations

import asyncio
import random
from typing import Any
from uuid import UUID

import pytest
import razorpay as razorpay_sdk
from quart.typing import TestClientProtocol as Client
from razorpay.errors import SignatureVerificationError

from tests.helpers import new_profile
from tests.service.conftest import make_token
from tests.service.razorpay_standin import KEY_ID, KEY_SECRET, WEBHOOK_SECRET, RazorpayStandIn, sign
from xpbase.db import Database
from xpbase.razorpay_gateway import gateway_from_settings, reconcile_open_orders, reconcile_with_settings
from xpbase.settings import Settings
from xpbase.worker import Worker


@pytest.fixture
def settings_overrides(razorpay: RazorpayStandIn) -> dict[str, Any]:
    return razorpay.settings()


def auth(pid: UUID) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_token(sub=str(pid))}"}


async def xp_of(db: Database, pid: UUID) -> int:
    return int(await db.pool.fetchval("select xp from public.profiles where id = $1", pid))


async def order_for(client: Client, pid: UUID, **body: Any) -> dict[str, Any]:
    response = await client.post("/v1/payments/orders", json=body or {"package": "xp_100"}, headers=auth(pid))
    assert response.status_code == 201, await response.get_json()
    return dict(await response.get_json())


async def post_webhook(client: Client, delivery: tuple[bytes, dict[str, str]]) -> Any:
    body, headers = delivery
    return await client.post("/v1/payments/webhook", data=body, headers=headers)


def flipped(text: str, index: int) -> str:
    """``text`` with the hex digit at ``index`` changed."""
    return text[:index] + ("0" if text[index] != "0" else "1") + text[index + 1 :]


def test_the_sdk_accepts_our_signatures_and_refuses_a_flipped_byte_anywhere() -> None:
    """The SDK's own test vector and our signatures pass its checks; any one changed digit fails."""
    client = razorpay_sdk.Client(auth=("key_id", "key_secret"))
    vector = "b2335e3b0801106b84a7faff035df56ecffde06918c9ddd1f0fafbb37a51cc89"  # razorpay-python's test
    assert sign("fake_order_id|fake_payment_id", "key_secret") == vector
    params = {"razorpay_order_id": "fake_order_id", "razorpay_payment_id": "fake_payment_id"}
    assert client.utility.verify_payment_signature(params | {"razorpay_signature": vector})
    body = '{"event":"payment.captured","payload":{}}'
    signature = sign(body, WEBHOOK_SECRET)
    assert client.utility.verify_webhook_signature(body, signature, WEBHOOK_SECRET)
    for index in range(64):
        with pytest.raises(SignatureVerificationError):
            client.utility.verify_payment_signature(params | {"razorpay_signature": flipped(vector, index)})
        with pytest.raises(SignatureVerificationError):
            client.utility.verify_webhook_signature(body, flipped(signature, index), WEBHOOK_SECRET)
    with pytest.raises(SignatureVerificationError):
        client.utility.verify_webhook_signature(
            body.replace("captured", "capturec"), signature, WEBHOOK_SECRET
        )


async def test_checkout_verify_and_webhooks_credit_once(
    client: Client, db: Database, razorpay: RazorpayStandIn
) -> None:
    """Order through the SDK, pay, verify: 100 XP; both webhooks and a replay after it credit nothing more."""
    pid = await new_profile(db, "Payer")
    order = await order_for(client, pid)
    assert (order["amount_paise"], order["currency"], order["xp"], order["key_id"]) == (
        9900,
        "INR",
        100,
        KEY_ID,
    )
    sent = razorpay.orders[order["razorpay_order_id"]]
    assert sent["receipt"] == order["order_id"] and sent["notes"] == {
        "order_id": order["order_id"],
        "profile_id": str(pid),
    }
    paid = razorpay.pay(order["razorpay_order_id"])
    response = await client.post("/v1/payments/verify", json=paid, headers=auth(pid))
    assert response.status_code == 200
    credit = await response.get_json()
    assert (credit["credited"], credit["xp_granted"], credit["source"], credit["status"]) == (
        True,
        100,
        "verify",
        "paid",
    )
    captured = razorpay.webhook("payment.captured", payment_id=paid["razorpay_payment_id"])
    for delivery in (
        captured,
        razorpay.webhook("order.paid", payment_id=paid["razorpay_payment_id"]),
        captured,
    ):
        answer = await post_webhook(client, delivery)
        assert answer.status_code == 200
    assert (await answer.get_json()) == {
        "status": "ignored",
        "code": "webhook_replayed",
        "event": "payment.captured",
    }
    assert await xp_of(db, pid) == 100
    orders = await (await client.get("/v1/payments/orders", headers=auth(pid))).get_json()
    assert [(o["status"], o["payments"][0]["xp_granted"]) for o in orders["orders"]] == [("paid", 100)]


async def test_an_authorized_payment_is_captured_at_verify(
    client: Client, db: Database, razorpay: RazorpayStandIn
) -> None:
    """Without auto-capture, verify captures the payment through the SDK (same amount) and credits it."""
    pid = await new_profile(db, "Payer")
    order = await order_for(client, pid)
    paid = razorpay.pay(order["razorpay_order_id"], capture=False)
    response = await client.post("/v1/payments/verify", json=paid, headers=auth(pid))
    assert response.status_code == 200 and (await response.get_json())["xp_granted"] == 100
    assert razorpay.payments[paid["razorpay_payment_id"]]["status"] == "captured"


async def test_verify_refusals(client: Client, db: Database, razorpay: RazorpayStandIn) -> None:
    """A flipped signature byte is 400 invalid_signature; someone else's order 403; nothing credited."""
    pid = await new_profile(db, "Payer")
    other = await new_profile(db, "Other")
    order = await order_for(client, pid)
    paid = razorpay.pay(order["razorpay_order_id"])
    bad = paid | {"razorpay_signature": flipped(paid["razorpay_signature"], 17)}
    response = await client.post("/v1/payments/verify", json=bad, headers=auth(pid))
    assert response.status_code == 400 and (await response.get_json())["error"]["code"] == "invalid_signature"
    response = await client.post("/v1/payments/verify", json=paid, headers=auth(other))
    assert response.status_code == 403 and (await response.get_json())["error"]["code"] == "order_not_yours"
    assert await xp_of(db, pid) == 0 and await xp_of(db, other) == 0
    assert await db.pool.fetchval("select count(*) from public.payments") == 0


async def test_webhook_refusals_change_nothing(
    client: Client, db: Database, razorpay: RazorpayStandIn
) -> None:
    """Bad signature 400; an order we never made and an amount that differs answer 200 ignored with a code."""
    pid = await new_profile(db, "Payer")
    body, headers = razorpay.webhook(
        "payment.captured",
        payment_id=razorpay.pay((await order_for(client, pid))["razorpay_order_id"])["razorpay_payment_id"],
    )
    forged = await post_webhook(
        client, (body, headers | {"X-Razorpay-Signature": flipped(headers["X-Razorpay-Signature"], 3)})
    )
    assert forged.status_code == 400 and (await forged.get_json())["error"]["code"] == "invalid_signature"
    stranger = razorpay.webhook(
        "payment.captured",
        payment_id=razorpay.pay((await razorpay_order(razorpay))["id"])["razorpay_payment_id"],
    )
    answer = await post_webhook(client, stranger)
    assert (await answer.get_json())["code"] == "unknown_order"
    other_order = await order_for(client, pid)
    short = razorpay.pay(other_order["razorpay_order_id"], amount=100)
    answer = await post_webhook(
        client, razorpay.webhook("payment.captured", payment_id=short["razorpay_payment_id"])
    )
    assert (await answer.get_json())["code"] == "amount_mismatch"
    assert await db.pool.fetchval("select count(*) from public.payments") == 0
    # The first delivery, untampered, still credits: the refusals recorded nothing.
    assert (await (await post_webhook(client, (body, headers))).get_json())["status"] == "processed"
    assert await xp_of(db, pid) == 100


async def razorpay_order(razorpay: RazorpayStandIn) -> dict[str, Any]:
    """An order made on the Razorpay account by someone else (not through xpbase)."""
    client = razorpay_client(razorpay)
    return dict(await asyncio.to_thread(client.order.create, {"amount": 9900, "currency": "INR"}))


def razorpay_client(razorpay: RazorpayStandIn) -> razorpay_sdk.Client:
    """The SDK on the stand-in, as the account's owner would use it (dashboard-side refunds)."""
    return razorpay_sdk.Client(auth=(KEY_ID, KEY_SECRET), base_url=razorpay.base_url)


async def test_refund_webhook_reverses_xp_and_points(
    client: Client, db: Database, razorpay: RazorpayStandIn
) -> None:
    """A refund made through the SDK, announced by refund.processed, takes the 100 XP and 100 points back."""
    pid = await new_profile(db, "Payer")
    paid = razorpay.pay((await order_for(client, pid))["razorpay_order_id"])
    await post_webhook(client, razorpay.webhook("order.paid", payment_id=paid["razorpay_payment_id"]))
    refund = await asyncio.to_thread(
        razorpay_client(razorpay).payment.refund, paid["razorpay_payment_id"], {}
    )
    answer = await post_webhook(client, razorpay.webhook("refund.processed", refund_id=refund["id"]))
    assert (await answer.get_json())["status"] == "processed"
    assert await db.pool.fetchrow("select xp, points from public.profiles where id = $1", pid) == (0, 0)


async def test_reconciliation_credits_payments_nobody_told_us_about(
    client: Client, db: Database, razorpay: RazorpayStandIn
) -> None:
    """reconcile_open_orders asks Razorpay (GET /v1/orders/:id/payments), credits a captured payment once."""
    pid = await new_profile(db, "Payer")
    paid_order = await order_for(client, pid)
    razorpay.pay(paid_order["razorpay_order_id"])
    unpaid = await order_for(client, pid)
    async with db.pool.acquire() as conn:
        await conn.execute("update public.payment_orders set created_at = now() - interval '1 hour'")
        await conn.execute(
            "update public.payment_orders set expires_at = now() where id = $1", UUID(unpaid["order_id"])
        )
    gateway = gateway_from_settings(Settings(**razorpay.settings()))
    assert gateway is not None
    report = await reconcile_open_orders(db, gateway, older_than_seconds=600)
    assert (report.checked, len(report.credited), report.expired, report.errors) == (2, 1, 1, [])
    again = await reconcile_with_settings(
        db, Settings(**razorpay.settings(), payment_reconcile_after_seconds=600)
    )
    assert again is not None and (again.checked, again.credited) == (0, [])
    assert await reconcile_with_settings(db, Settings(_env_file=None)) is None  # not configured: nothing done
    assert await xp_of(db, pid) == 100
    assert ("GET", f"/v1/orders/{paid_order['razorpay_order_id']}/payments") in razorpay.calls


async def test_the_periodic_task_reconciles_each_payment_once(
    client: Client, db: Database, razorpay: RazorpayStandIn, database_url: str
) -> None:
    """The job queue's reconcile_payments task credits a payment Razorpay captured; a second run, nothing."""
    pid = await new_profile(db, "Payer")
    order = await order_for(client, pid)
    razorpay.pay(order["razorpay_order_id"])
    await db.pool.execute("update public.payment_orders set created_at = now() - interval '1 hour'")
    worker = Worker(Settings(**razorpay.settings(), payment_reconcile_after_seconds=600), database_url)
    worker.database = db  # the task body alone; test_worker.py runs tasks through procrastinate
    first = await worker.reconcile_payments()
    second = await worker.reconcile_payments()
    assert (first["checked"], first["credited"], first["errors"]) == (1, 1, 0)
    assert (second["checked"], second["credited"]) == (0, 0)
    assert await xp_of(db, pid) == 100


async def test_order_errors(client: Client, db: Database) -> None:
    """An unknown package is 404 unknown_package; both package and item 400; no token 401."""
    pid = await new_profile(db, "Payer")
    response = await client.post("/v1/payments/orders", json={"package": "nope"}, headers=auth(pid))
    assert response.status_code == 404 and (await response.get_json())["error"]["code"] == "unknown_package"
    response = await client.post("/v1/payments/orders", json={"package": "a", "item": "b"}, headers=auth(pid))
    assert response.status_code == 400
    assert (await client.post("/v1/payments/orders", json={"package": "xp_100"})).status_code == 401


async def test_verify_and_shuffled_webhooks_over_http_credit_once(
    client: Client, db: Database, razorpay: RazorpayStandIn
) -> None:
    """60 payments, each verified and announced by three webhooks, sent concurrently in shuffled order."""
    payers = [await new_profile(db, f"P{i}") for i in range(6)]
    requests: list[tuple[str, Any, dict[str, str]]] = []
    for i in range(60):
        pid = payers[i % 6]
        paid = razorpay.pay((await order_for(client, pid))["razorpay_order_id"])
        requests.append(("verify", paid, auth(pid)))
        captured = razorpay.webhook("payment.captured", payment_id=paid["razorpay_payment_id"])
        requests += [("webhook", captured, {}), ("webhook", captured, {})]
        requests.append(
            ("webhook", razorpay.webhook("order.paid", payment_id=paid["razorpay_payment_id"]), {})
        )
    random.Random(5).shuffle(requests)
    semaphore = asyncio.Semaphore(12)

    async def send(kind: str, payload: Any, headers: dict[str, str]) -> int:
        async with semaphore:
            if kind == "verify":
                response = await client.post("/v1/payments/verify", json=payload, headers=headers)
            else:
                response = await post_webhook(client, payload)
            return response.status_code

    statuses = await asyncio.gather(*(send(*r) for r in requests))
    assert set(statuses) == {200}
    assert await db.pool.fetchval("select count(*) from public.payments") == 60
    assert (
        await db.pool.fetchval("select count(*) from public.xp_ledger where activity_slug = 'xp_purchase'")
        == 60
    )
    assert await db.pool.fetchval("select sum(xp) from public.profiles") == 6000


async def test_payments_are_off_without_keys(db: Database, tmp_path: Any) -> None:
    """Without XPBASE_RAZORPAY_KEY_ID the payment routes answer 503 not_configured."""
    from service.app import create_app
    from tests.service.conftest import JWT_SECRET

    app = create_app(Settings(jwt_secret=JWT_SECRET, data_dir=tmp_path), database=db)
    async with app.test_app():
        pid = await new_profile(db, "Payer")
        response = await app.test_client().post(
            "/v1/payments/orders", json={"package": "xp_100"}, headers=auth(pid)
        )
    assert response.status_code == 503 and (await response.get_json())["error"]["code"] == "not_configured"
