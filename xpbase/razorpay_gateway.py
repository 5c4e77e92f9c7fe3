"""Razorpay, through the official ``razorpay`` SDK: orders, payments, signatures, and reconciliation.

What is decided stays in SQL (supabase/sql/57_payments.sql): this module only
talks to Razorpay. The SDK is synchronous (requests), so each call runs in a
worker thread with a client of its own. Secrets come from settings
(``XPBASE_RAZORPAY_KEY_SECRET``, ``XPBASE_RAZORPAY_WEBHOOK_SECRET``) and are
never logged or put into an error message.

Signatures (Razorpay's documented scheme, checked with the SDK's
``utility`` functions):

- checkout: ``razorpay_signature`` = hex HMAC-SHA256 of
  ``"<razorpay_order_id>|<razorpay_payment_id>"`` with the key secret;
- webhooks: ``X-Razorpay-Signature`` = hex HMAC-SHA256 of the raw request
  body with the webhook secret.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

import razorpay
from razorpay.errors import BadRequestError, GatewayError, ServerError, SignatureVerificationError
from requests import RequestException

from xpbase.db import Database
from xpbase.errors import ENGINE_ERRORS, DomainError
from xpbase.models.economy import PaymentCredit, PaymentOrders
from xpbase.settings import Settings

log = logging.getLogger(__name__)


class GatewayFailure(Exception):
    """Razorpay refused a call or could not be reached. ``message`` is Razorpay's description (no secrets)."""

    def __init__(self, message: str, *, unreachable: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.unreachable = unreachable


def _invalid_signature(what: str) -> DomainError:
    return DomainError(ENGINE_ERRORS["XPSIG"], f"The {what} signature does not match.")


@dataclass(frozen=True)
class RazorpayGateway:
    """Razorpay API access with one account's keys. Build it with :func:`gateway_from_settings`."""

    key_id: str
    key_secret: str = field(repr=False)
    webhook_secret: str = field(repr=False)
    api_url: str

    def _client(self) -> razorpay.Client:
        return razorpay.Client(auth=(self.key_id, self.key_secret), base_url=self.api_url)

    async def _call(self, what: str, call: Any, *args: Any) -> Any:
        try:
            return await asyncio.to_thread(call, *args)
        except (BadRequestError, GatewayError, ServerError) as exc:
            log.warning("razorpay %s refused: %s", what, exc)
            raise GatewayFailure(str(exc) or f"Razorpay refused {what}") from exc
        except RequestException as exc:
            log.warning("razorpay %s: cannot reach the API (%s)", what, type(exc).__name__)
            raise GatewayFailure(f"Razorpay cannot be reached ({what})", unreachable=True) from exc

    async def create_order(
        self, amount_paise: int, currency: str, receipt: str, notes: dict[str, str]
    ) -> dict[str, Any]:
        """``POST /v1/orders``: Razorpay's order entity (``id``, ``amount``, ``currency``, ``status``...)."""
        data = {"amount": amount_paise, "currency": currency, "receipt": receipt, "notes": notes}
        return dict(await self._call("order creation", lambda: self._client().order.create(data=data)))

    async def fetch_payment(self, payment_id: str) -> dict[str, Any]:
        """``GET /v1/payments/:id``: the payment entity (``amount`` in paise, ``status``, ``order_id``)."""
        return dict(await self._call("payment fetch", lambda: self._client().payment.fetch(payment_id)))

    async def capture_payment(self, payment_id: str, amount_paise: int, currency: str) -> dict[str, Any]:
        """``POST /v1/payments/:id/capture`` for an authorized payment; the captured payment entity."""
        return dict(
            await self._call(
                "payment capture",
                lambda: self._client().payment.capture(payment_id, amount_paise, {"currency": currency}),
            )
        )

    async def order_payments(self, order_id: str) -> list[dict[str, Any]]:
        """``GET /v1/orders/:id/payments``: the payments made against an order (any status)."""
        answer = await self._call("order payments", lambda: self._client().order.payments(order_id))
        return list(answer.get("items", []))

    def verify_payment_signature(self, order_id: str, payment_id: str, signature: str) -> None:
        """Checkout's ``razorpay_signature``, checked by the SDK; DomainError XPSIG if it is wrong."""
        try:
            self._client().utility.verify_payment_signature(
                {
                    "razorpay_order_id": order_id,
                    "razorpay_payment_id": payment_id,
                    "razorpay_signature": signature,
                }
            )
        except SignatureVerificationError as exc:
            raise _invalid_signature("payment") from exc

    def verify_webhook_signature(self, body: bytes, signature: str) -> None:
        """``X-Razorpay-Signature`` over the raw body, by the SDK; XPSIG if wrong or not UTF-8."""
        if not self.webhook_secret:
            raise _invalid_signature("webhook")
        try:
            text = body.decode("utf-8")
            self._client().utility.verify_webhook_signature(text, signature, self.webhook_secret)
        except (UnicodeDecodeError, SignatureVerificationError) as exc:
            raise _invalid_signature("webhook") from exc


def gateway_from_settings(settings: Settings) -> RazorpayGateway | None:
    """The gateway for the configured account; None when the key id or the key secret is unset."""
    secret = settings.razorpay_key_secret.get_secret_value()
    if not settings.razorpay_key_id or not secret:
        return None
    return RazorpayGateway(
        key_id=settings.razorpay_key_id,
        key_secret=secret,
        webhook_secret=settings.razorpay_webhook_secret.get_secret_value(),
        api_url=settings.razorpay_api_url.rstrip("/"),
    )


@dataclass
class ReconcileReport:
    """What one reconciliation pass did: orders asked about, payments credited now, orders expired, errors."""

    checked: int = 0
    credited: list[str] = field(default_factory=list)
    expired: int = 0
    errors: list[str] = field(default_factory=list)


async def reconcile_open_orders(
    db: Database, gateway: RazorpayGateway, *, older_than_seconds: int = 900, size: int = 100
) -> ReconcileReport:
    """Ask Razorpay about orders still open after ``older_than_seconds`` and credit what was captured.

    For each such order (``service_role_open_payment_orders``), ``GET
    /v1/orders/:id/payments``; every captured payment goes through
    ``service_role_reconcile_payment`` (credited once, whichever path came
    first). Then orders past their ``expires_at`` without a payment expire
    (``service_role_expire_payment_orders``). An order Razorpay cannot answer
    for is reported in ``errors`` and asked about again next time. Meant to run
    periodically (a job queue, cron, or ``xpbase`` job runner).
    """
    report = ReconcileReport()
    orders = PaymentOrders.model_validate(
        await db.rpc("service_role_open_payment_orders", older_than_seconds=older_than_seconds, size=size)
    ).root
    for order in orders:
        assert order.razorpay_order_id is not None  # open orders always have one (the SQL filters on it)
        report.checked += 1
        try:
            payments = await gateway.order_payments(order.razorpay_order_id)
        except GatewayFailure as exc:
            report.errors.append(f"{order.razorpay_order_id}: {exc.message}")
            continue
        for payment in payments:
            if payment.get("status") != "captured":
                continue
            try:
                credit = PaymentCredit.model_validate(
                    await db.rpc(
                        "service_role_reconcile_payment",
                        razorpay_order_id=order.razorpay_order_id,
                        razorpay_payment_id=str(payment["id"]),
                        amount_paise=int(payment["amount"]),
                    )
                )
            except DomainError as exc:
                report.errors.append(f"{payment.get('id')}: {exc.code}")
                continue
            if credit.credited:
                report.credited.append(credit.payment_id)
    report.expired = int(await db.rpc("service_role_expire_payment_orders"))
    if report.credited or report.errors:
        log.info(
            "reconciled %d open orders: %d credited, %d expired, %d errors",
            report.checked,
            len(report.credited),
            report.expired,
            len(report.errors),
        )
    return report


async def reconcile_with_settings(db: Database, settings: Settings) -> ReconcileReport | None:
    """One reconciliation pass with the configured account and ``payment_reconcile_after_seconds``: what a
    periodic job calls. None (nothing done) when Razorpay is not configured."""
    gateway = gateway_from_settings(settings)
    if gateway is None:
        return None
    return await reconcile_open_orders(
        db, gateway, older_than_seconds=settings.payment_reconcile_after_seconds
    )
