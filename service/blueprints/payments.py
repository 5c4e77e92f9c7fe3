"""XP packages and store items paid with Razorpay: orders, checkout verification, webhooks, a member's orders.

The amount always comes from our rows (``service_role_create_payment_order``);
a captured payment is credited exactly once in SQL whichever of ``verify``,
the webhook and reconciliation comes first (supabase/sql/57_payments.sql).
Razorpay is reached with the official SDK (xpbase/razorpay_gateway.py).
"""

from __future__ import annotations

import json
import logging
from typing import Any
from uuid import UUID

from pydantic import BaseModel, Field, model_validator
from quart import Blueprint, current_app, g, request
from quart_schema import (
    security_scheme,
    tag_blueprint,
    validate_querystring,
    validate_request,
    validate_response,
)

from service.lib.access import require_member
from service.lib.api_error import APIError
from service.lib.context import get_db
from service.lib.openapi import BEARER, errors
from xpbase.errors import DomainError
from xpbase.models.economy import MemberOrders, PaymentCredit, PaymentOrder, WebhookResult
from xpbase.razorpay_gateway import GatewayFailure, RazorpayGateway, gateway_from_settings

blueprint = Blueprint("payments", __name__)
tag_blueprint(blueprint, ["payments"])
log = logging.getLogger(__name__)

RazorpayId = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_]+$")


def _gateway() -> RazorpayGateway:
    gateway = gateway_from_settings(current_app.config["XPBASE_SETTINGS"])
    if gateway is None:
        raise APIError(503, "not_configured", "Payments are not configured (XPBASE_RAZORPAY_KEY_ID).")
    return gateway


def _provider_error(exc: GatewayFailure) -> APIError:
    return APIError(502, "payment_provider_error", f"Razorpay: {exc.message}")


class PackageOut(BaseModel):
    slug: str
    name: str
    xp: int
    amount_paise: int
    currency: str


class PackagesOut(BaseModel):
    packages: list[PackageOut]


class OrderIn(BaseModel):
    """Exactly one of ``package`` (an XP package slug) or ``item`` (a store item with a rupee price)."""

    package: str | None = Field(default=None, min_length=1, max_length=64)
    item: str | None = Field(default=None, min_length=1, max_length=64)

    @model_validator(mode="after")
    def _one(self) -> OrderIn:
        if (self.package is None) == (self.item is None):
            raise ValueError("name exactly one of package and item")
        return self


class OrderOut(BaseModel):
    """What Razorpay Checkout needs (key_id, razorpay_order_id, amount_paise, currency) and our order."""

    order_id: UUID
    razorpay_order_id: str
    key_id: str
    amount_paise: int
    currency: str
    package: str | None
    item: str | None
    xp: int | None
    status: str
    expires_at: str


class VerifyIn(BaseModel):
    """Checkout's handler response, as Razorpay hands it to the page."""

    razorpay_order_id: str = RazorpayId
    razorpay_payment_id: str = RazorpayId
    razorpay_signature: str = Field(min_length=64, max_length=64, pattern=r"^[0-9a-f]{64}$")


class CreditOut(BaseModel):
    """The payment and what it credited; ``credited`` false when another path (webhook) had credited it."""

    order_id: UUID
    payment_id: str
    status: str
    credited: bool
    duplicate: bool
    source: str
    xp_granted: int
    points_granted: int
    purchase_id: int | None
    fulfilled: bool


class WebhookOut(BaseModel):
    """``processed`` or ``ignored`` (with the reason's API code: webhook_replayed, unknown_order...)."""

    status: str
    code: str | None = None
    event: str | None = None


class OrdersQuery(BaseModel):
    size: int = Field(default=20, ge=1, le=100)


class OrdersOut(BaseModel):
    orders: list[dict[str, Any]]


@blueprint.get("/v1/payments/packages")
@validate_response(PackagesOut, 200)
async def get_packages() -> PackagesOut:
    """The XP packages on sale (amounts in paise)."""
    async with get_db().as_anon() as conn:
        rows = await conn.fetch(
            "select slug, name, xp, amount_paise, currency from public.xp_packages"
            " where active order by position, slug"
        )
    return PackagesOut(packages=[PackageOut(**dict(r)) for r in rows])


@blueprint.post("/v1/payments/orders")
@security_scheme(BEARER)
@require_member
@validate_request(OrderIn)
@validate_response(OrderOut, 201)
@errors(400, 401, 403, 404, 409, 502, 503)
async def post_order(data: OrderIn) -> tuple[OrderOut, int]:
    """Create a Razorpay order for an XP package or a store item.

    The amount is the package's or item's (never the client's). Razorpay's
    order carries our order id as ``receipt`` and in ``notes`` with the
    profile. Errors: 404 ``unknown_package`` / ``unknown_item``; 409
    ``price_mismatch`` (points-only item), ``sold_out``, ``member_limit_reached``,
    ``item_not_on_sale``; 403 ``requirement_not_met``; 502
    ``payment_provider_error``; 503 ``not_configured``.
    """
    gateway = _gateway()
    db = get_db()
    settings = current_app.config["XPBASE_SETTINGS"]
    order = PaymentOrder.model_validate(
        await db.rpc(
            "service_role_create_payment_order",
            profile_id=g.profile_id,
            package=data.package,
            item=data.item,
            ttl_seconds=settings.payment_order_ttl_seconds,
        )
    )
    try:
        created = await gateway.create_order(
            order.amount_paise,
            order.currency,
            order.receipt,
            {"order_id": str(order.order_id), "profile_id": str(order.profile_id)},
        )
    except GatewayFailure as exc:
        await db.rpc("service_role_fail_payment_order", order_id=order.order_id, error=exc.message)
        raise _provider_error(exc) from exc
    attached = PaymentOrder.model_validate(
        await db.rpc(
            "service_role_attach_razorpay_order",
            order_id=order.order_id,
            razorpay_order_id=str(created["id"]),
            amount_paise=int(created["amount"]),
            currency=str(created["currency"]),
        )
    )
    assert attached.razorpay_order_id is not None
    return (
        OrderOut(
            order_id=attached.order_id,
            razorpay_order_id=attached.razorpay_order_id,
            key_id=gateway.key_id,
            amount_paise=attached.amount_paise,
            currency=attached.currency,
            package=attached.package,
            item=attached.item,
            xp=attached.xp,
            status=attached.status,
            expires_at=attached.expires_at,
        ),
        201,
    )


def _credit_out(credit: PaymentCredit) -> CreditOut:
    return CreditOut(
        order_id=credit.order_id,
        payment_id=credit.payment_id,
        status=credit.status,
        credited=credit.credited,
        duplicate=credit.duplicate,
        source=credit.source,
        xp_granted=credit.xp_granted,
        points_granted=credit.points_granted,
        purchase_id=credit.purchase_id,
        fulfilled=credit.fulfilled,
    )


@blueprint.post("/v1/payments/verify")
@security_scheme(BEARER)
@require_member
@validate_request(VerifyIn)
@validate_response(CreditOut, 200)
@errors(400, 401, 403, 404, 409, 502, 503)
async def post_verify(data: VerifyIn) -> CreditOut:
    """Verify Checkout's signature and credit the payment (once).

    ``razorpay_signature`` must be HMAC-SHA256(``order_id|payment_id``, key
    secret), checked with the SDK's ``utility.verify_payment_signature``. The
    payment is then read from Razorpay (amount, status; an authorized one is
    captured) and credited in SQL for the member who owns the order. Errors:
    400 ``invalid_signature``; 404 ``unknown_order``; 403 ``order_not_yours``;
    409 ``amount_mismatch``, ``payment_not_captured``; 502; 503.
    """
    gateway = _gateway()
    gateway.verify_payment_signature(
        data.razorpay_order_id, data.razorpay_payment_id, data.razorpay_signature
    )
    try:
        payment = await gateway.fetch_payment(data.razorpay_payment_id)
        if payment.get("order_id") != data.razorpay_order_id:
            raise APIError(404, "unknown_order", "That payment was not made for that order.")
        if payment.get("status") == "authorized":
            payment = await gateway.capture_payment(
                data.razorpay_payment_id, int(payment["amount"]), str(payment["currency"])
            )
    except GatewayFailure as exc:
        raise _provider_error(exc) from exc
    if payment.get("status") not in ("captured", "refunded"):
        raise APIError(409, "payment_not_captured", f"The payment is {payment.get('status')}, not captured.")
    credit = PaymentCredit.model_validate(
        await get_db().rpc(
            "service_role_verify_payment",
            profile_id=g.profile_id,
            razorpay_order_id=data.razorpay_order_id,
            razorpay_payment_id=data.razorpay_payment_id,
            amount_paise=int(payment["amount"]),
        )
    )
    return _credit_out(credit)


#: Refusals a webhook answers with 200: Razorpay retries any other status for a day, and none of these can
#: succeed on a retry (the event is handled once already, or names an order or amount we never made).
WEBHOOK_IGNORED = {"XPWHR", "XPORD", "XPAMM", "XPBAD"}


@blueprint.post("/v1/payments/webhook")
@validate_response(WebhookOut, 200)
@errors(400, 503)
async def post_webhook() -> WebhookOut:
    """Razorpay webhooks: payment.captured, order.paid, payment.failed, refund.processed.

    ``X-Razorpay-Signature`` must be HMAC-SHA256 of the raw body with the
    webhook secret (the SDK's ``utility.verify_webhook_signature``): 400
    ``invalid_signature`` otherwise, nothing changed. Each
    ``x-razorpay-event-id`` is handled once. A replay, an order or payment we
    never made, an amount that differs from the order, and a malformed
    payload change nothing and answer 200 ``{"status": "ignored", "code":
    "webhook_replayed" | "unknown_order" | "amount_mismatch" |
    "invalid_argument"}`` so that Razorpay stops retrying; they are logged.
    """
    gateway = _gateway()
    body = await request.get_data(cache=False)
    gateway.verify_webhook_signature(body, request.headers.get("X-Razorpay-Signature", ""))
    event_id = request.headers.get("x-razorpay-event-id", "")
    try:
        event = json.loads(body)
        name = str(event["event"])
        payload = event["payload"]
    except (ValueError, KeyError, TypeError) as exc:
        raise APIError(400, "invalid_argument", "The webhook body is not a Razorpay event.") from exc
    try:
        result = WebhookResult.model_validate(
            await get_db().rpc("service_role_payment_webhook", event_id=event_id, event=name, payload=payload)
        )
    except DomainError as exc:
        if exc.error.sqlstate not in WEBHOOK_IGNORED:
            raise
        log.warning("razorpay webhook %s (%s) ignored: %s", event_id, name, exc.code)
        return WebhookOut(status="ignored", code=exc.code, event=name)
    return WebhookOut(status="processed", event=result.event)


@blueprint.get("/v1/payments/orders")
@security_scheme(BEARER)
@require_member
@validate_querystring(OrdersQuery)
@validate_response(OrdersOut, 200)
@errors(400, 401)
async def get_orders(query_args: OrdersQuery) -> OrdersOut:
    """The caller's payment orders, newest first, with their payments and refunds state (amounts in paise)."""
    orders = MemberOrders.model_validate(
        await get_db().rpc("payment_orders_of", role="authenticated", claims=g.claims, size=query_args.size)
    )
    return OrdersOut(orders=[o.model_dump(mode="json") for o in orders.root])
