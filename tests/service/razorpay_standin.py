"""A local stand-in for Razorpay that speaks its real HTTP API, for the official SDK to talk to.

One Quart app on 127.0.0.1 (a random port), served by Hypercorn in a thread:

- HTTP Basic auth with the key id and secret on every call; a wrong pair is
  401 with Razorpay's error body ``{"error": {"code": "BAD_REQUEST_ERROR",
  "description": "Authentication failed", ...}}``;
- ``POST /v1/orders`` (``amount`` in paise, at least 100; ``currency``;
  ``receipt`` at most 40 characters; ``notes`` at most 15 keys), ``GET
  /v1/orders/:id``, ``GET /v1/orders/:id/payments`` (a ``collection``);
- ``GET /v1/payments/:id``, ``POST /v1/payments/:id/capture`` (the amount
  must equal the payment's), ``POST /v1/payments/:id/refund`` (at most what
  is left);
- unknown ids are 400 ``BAD_REQUEST_ERROR`` "The id provided does not exist",
  as Razorpay answers.

The member's side of Checkout is :meth:`RazorpayStandIn.pay`: it makes a
payment against an order (captured, as with ``payment_capture`` on, or only
authorized) and returns what Checkout hands the page: ``razorpay_order_id``,
``razorpay_payment_id`` and ``razorpay_signature`` = HMAC-SHA256 of
``order_id|payment_id`` with the key secret. :meth:`webhook` builds a webhook
delivery as Razorpay sends it: the JSON body, ``X-Razorpay-Signature`` (HMAC-
SHA256 of the raw body with the webhook secret) and ``x-razorpay-event-id``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import secrets
import socket
import string
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hypercorn.asyncio import serve
from hypercorn.config import Config
from quart import Quart, Response, jsonify, request

KEY_ID = "rzp_test_standin0001"
KEY_SECRET = "standin-key-secret-0123456789"
WEBHOOK_SECRET = "standin-webhook-secret-9876543210"
ALPHABET = string.ascii_letters + string.digits


def razorpay_id(prefix: str) -> str:
    """An id shaped like Razorpay's: prefix, underscore, 14 alphanumerics."""
    return f"{prefix}_" + "".join(secrets.choice(ALPHABET) for _ in range(14))


def sign(message: str | bytes, secret: str) -> str:
    """Hex HMAC-SHA256, Razorpay's signature for checkout and webhooks."""
    data = message.encode() if isinstance(message, str) else message
    return hmac.new(secret.encode(), data, hashlib.sha256).hexdigest()


def _error(status: int, description: str, field_name: str | None = None) -> Response:
    response = jsonify(
        {
            "error": {
                "code": "BAD_REQUEST_ERROR",
                "description": description,
                "source": "business" if status == 400 else "NA",
                "step": "payment_initiation" if status == 400 else "NA",
                "reason": "input_validation_failed" if status == 400 else "NA",
                "metadata": {},
                "field": field_name,
            }
        }
    )
    response.status_code = status
    return response


@dataclass
class RazorpayStandIn:
    """The stand-in's state: orders, payments and refunds by id, and the calls it answered."""

    base_url: str
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    payments: dict[str, dict[str, Any]] = field(default_factory=dict)
    refunds: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def settings(self) -> dict[str, Any]:
        """Settings overrides that point the service at this stand-in."""
        return {
            "razorpay_key_id": KEY_ID,
            "razorpay_key_secret": KEY_SECRET,
            "razorpay_webhook_secret": WEBHOOK_SECRET,
            "razorpay_api_url": self.base_url,
        }

    # The member's side of Checkout ------------------------------------------------------------

    def pay(self, order_id: str, *, capture: bool = True, amount: int | None = None) -> dict[str, str]:
        """A successful payment against ``order_id``; returns Checkout's handler response (signed)."""
        with self.lock:
            order = self.orders[order_id]
            payment = {
                "id": razorpay_id("pay"),
                "entity": "payment",
                "amount": order["amount"] if amount is None else amount,
                "currency": order["currency"],
                "status": "captured" if capture else "authorized",
                "order_id": order_id,
                "invoice_id": None,
                "international": False,
                "method": "upi",
                "amount_refunded": 0,
                "refund_status": None,
                "captured": capture,
                "description": None,
                "email": "member@example.com",
                "contact": "+919000090000",
                "notes": order["notes"],
                "fee": 0,
                "tax": 0,
                "error_code": None,
                "error_description": None,
                "created_at": int(time.time()),
            }
            self.payments[payment["id"]] = payment
            order["attempts"] += 1
            if capture:
                self._mark_paid(order, payment["amount"])
        return {
            "razorpay_order_id": order_id,
            "razorpay_payment_id": payment["id"],
            "razorpay_signature": sign(f"{order_id}|{payment['id']}", KEY_SECRET),
        }

    def _mark_paid(self, order: dict[str, Any], amount: int) -> None:
        order["amount_paid"] += amount
        order["amount_due"] = max(order["amount"] - order["amount_paid"], 0)
        order["status"] = "paid"

    def refund(self, payment_id: str, amount: int | None = None) -> dict[str, Any]:
        """A processed refund of ``amount`` (default: all that is left) of a captured payment."""
        with self.lock:
            payment = self.payments[payment_id]
            amount = payment["amount"] - payment["amount_refunded"] if amount is None else amount
            return self._refund(payment, amount)

    def _refund(self, payment: dict[str, Any], amount: int) -> dict[str, Any]:
        refund = {
            "id": razorpay_id("rfnd"),
            "entity": "refund",
            "amount": amount,
            "currency": payment["currency"],
            "payment_id": payment["id"],
            "notes": {},
            "receipt": None,
            "acquirer_data": {"arn": None},
            "created_at": int(time.time()),
            "batch_id": None,
            "status": "processed",
            "speed_processed": "normal",
            "speed_requested": "normal",
        }
        payment["amount_refunded"] += amount
        payment["refund_status"] = "full" if payment["amount_refunded"] == payment["amount"] else "partial"
        if payment["refund_status"] == "full":
            payment["status"] = "refunded"
        self.refunds[refund["id"]] = refund
        return refund

    def webhook(
        self,
        event: str,
        *,
        payment_id: str | None = None,
        refund_id: str | None = None,
        event_id: str | None = None,
        secret: str = WEBHOOK_SECRET,
    ) -> tuple[bytes, dict[str, str]]:
        """One webhook delivery as Razorpay sends it: (raw JSON body, headers with signature and event id)."""
        with self.lock:
            payload: dict[str, Any] = {}
            if refund_id is not None:
                refund = self.refunds[refund_id]
                payload["refund"] = {"entity": dict(refund)}
                payment_id = refund["payment_id"]
            if payment_id is not None:
                payment = self.payments[payment_id]
                payload["payment"] = {"entity": dict(payment)}
                if event == "order.paid":
                    payload["order"] = {"entity": dict(self.orders[payment["order_id"]])}
        body = json.dumps(
            {
                "entity": "event",
                "account_id": "acc_StandIn0000001",
                "event": event,
                "contains": list(payload),
                "payload": payload,
                "created_at": int(time.time()),
            },
            separators=(",", ":"),
        ).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Razorpay-Signature": sign(body, secret),
            "x-razorpay-event-id": event_id or razorpay_id("evt"),
        }
        return body, headers


def build_app(state: RazorpayStandIn) -> Quart:
    app = Quart("razorpay-standin")

    @app.before_request
    async def basic_auth() -> Response | None:
        state.calls.append((request.method, request.path))
        header = request.headers.get("Authorization", "")
        expected = "Basic " + base64.b64encode(f"{KEY_ID}:{KEY_SECRET}".encode()).decode()
        if not hmac.compare_digest(header, expected):
            return _error(401, "Authentication failed")
        return None

    @app.post("/v1/orders")
    async def create_order() -> Response:
        body = await request.get_json(force=True, silent=True) or {}
        amount = body.get("amount")
        if not isinstance(amount, int) or amount < 100:
            return _error(400, "The amount must be atleast INR 1.00", "amount")
        if not isinstance(body.get("currency"), str) or len(body["currency"]) != 3:
            return _error(400, "The currency field is required.", "currency")
        receipt = body.get("receipt")
        if receipt is not None and len(str(receipt)) > 40:
            return _error(400, "The receipt may not be greater than 40 characters.", "receipt")
        notes = body.get("notes") or {}
        if not isinstance(notes, dict) or len(notes) > 15:
            return _error(400, "The notes may not have more than 15 items.", "notes")
        order = {
            "id": razorpay_id("order"),
            "entity": "order",
            "amount": amount,
            "amount_paid": 0,
            "amount_due": amount,
            "currency": body["currency"],
            "receipt": receipt,
            "offer_id": None,
            "status": "created",
            "attempts": 0,
            "notes": notes,
            "created_at": int(time.time()),
        }
        with state.lock:
            state.orders[order["id"]] = order
        return jsonify(order)

    @app.get("/v1/orders/<order_id>")
    async def fetch_order(order_id: str) -> Response:
        with state.lock:
            order = state.orders.get(order_id)
        return jsonify(order) if order else _error(400, "The id provided does not exist", "id")

    @app.get("/v1/orders/<order_id>/payments")
    async def order_payments(order_id: str) -> Response:
        with state.lock:
            if order_id not in state.orders:
                return _error(400, "The id provided does not exist", "id")
            items = [p for p in state.payments.values() if p["order_id"] == order_id]
        return jsonify({"entity": "collection", "count": len(items), "items": items})

    @app.get("/v1/payments/<payment_id>")
    async def fetch_payment(payment_id: str) -> Response:
        with state.lock:
            payment = state.payments.get(payment_id)
        return jsonify(payment) if payment else _error(400, "The id provided does not exist", "id")

    @app.post("/v1/payments/<payment_id>/capture")
    async def capture(payment_id: str) -> Response:
        body = await request.get_json(force=True, silent=True) or {}
        with state.lock:
            payment = state.payments.get(payment_id)
            if payment is None:
                return _error(400, "The id provided does not exist", "id")
            if payment["status"] != "authorized":
                return _error(400, "This payment has already been captured", None)
            if body.get("amount") != payment["amount"]:
                return _error(400, "Capture amount must be equal to the amount authorized", "amount")
            payment["status"] = "captured"
            payment["captured"] = True
            state._mark_paid(state.orders[payment["order_id"]], payment["amount"])
        return jsonify(payment)

    @app.post("/v1/payments/<payment_id>/refund")
    async def refund(payment_id: str) -> Response:
        body = await request.get_json(force=True, silent=True) or {}
        with state.lock:
            payment = state.payments.get(payment_id)
            if payment is None:
                return _error(400, "The id provided does not exist", "id")
            left = payment["amount"] - payment["amount_refunded"]
            amount = body.get("amount", left)
            if (
                payment["status"] not in ("captured", "refunded")
                or not isinstance(amount, int)
                or not 0 < amount <= left
            ):
                return _error(400, "The refund amount provided is greater than amount captured", "amount")
            return jsonify(state._refund(payment, amount))

    return app


def start() -> tuple[RazorpayStandIn, Callable[[], None]]:
    """Serve the stand-in on 127.0.0.1 (a random port) in a thread; returns its state and a stop function."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(256)
    port = sock.getsockname()[1]
    state = RazorpayStandIn(base_url=f"http://127.0.0.1:{port}")
    config = Config()
    config.bind = [f"fd://{sock.detach()}"]
    config.accesslog = None
    config.errorlog = None
    loop = asyncio.new_event_loop()
    shutdown = asyncio.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(serve(build_app(state), config, shutdown_trigger=shutdown.wait))  # type: ignore[arg-type]
        loop.close()

    thread = threading.Thread(target=run, name="razorpay-standin", daemon=True)
    thread.start()

    def stop() -> None:
        loop.call_soon_threadsafe(shutdown.set)
        thread.join()

    return state, stop
