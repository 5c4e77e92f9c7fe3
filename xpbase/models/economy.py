"""Result models of the economy's SQL functions (points, store, redemptions, payments; issue 11).

Amounts: points are whole numbers; money is in paise (1/100 rupee); times are UTC ISO 8601 text as the
functions write them (``2026-11-30T21:00:00.000000Z``).
"""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

from pydantic import RootModel

from xpbase.models import Result

RedemptionStatus = Literal["pending", "approved", "fulfilled", "rejected", "cancelled"]


class PointsChange(Result):
    """admin_adjust_points: the ledger row written (amount may be floored so the balance stays >= 0)."""

    points_ledger_id: int
    profile_id: UUID
    kind: str
    requested: int
    amount: int
    balance: int
    floored: bool
    replayed: bool
    actor_id: UUID | None
    actor_role: str


class PointsEntry(Result):
    """One points ledger row as points_statement lists it."""

    id: int
    kind: str
    amount: int
    balance_after: int
    reason: str | None
    actor_id: UUID | None
    ref: dict[str, Any]
    created_at: str


class PointsStatement(Result):
    """points_statement: balance and entries newest first; next_before_id pages back (None at the end)."""

    profile_id: UUID
    balance: int
    entries: list[PointsEntry]
    next_before_id: int | None


class Purchase(Result):
    """buy_item: what was bought, the balance after, and what it granted (grants.kind: streak_freeze,
    inventory or redemption)."""

    purchase_id: int
    profile_id: UUID
    item: str
    item_name: str
    category: str
    price_points: int
    points_balance: int
    points_ledger_id: int
    stock_left: int | None
    grants: dict[str, Any]
    replayed: bool


class StoreItem(Result):
    """admin_save_store_item: the item's row as stored (see public.store_items)."""

    id: int
    slug: str
    name: str
    description: str
    category: str
    price_points: int | None
    price_paise: int | None
    stock: int | None
    per_member_limit: int | None
    starts_at: str | None
    ends_at: str | None
    image_url: str | None
    required_tier: str | None
    required_layer: str | None
    required_layer_xp: int
    freezes: int
    tool_slug: str | None
    rank_card_style: str | None
    delivery: str
    active: bool
    created_at: str
    updated_at: str


class CatalogueItem(Result):
    """One item on sale (store_catalogue); prices in points and/or paise, stock None = unlimited."""

    slug: str
    name: str
    description: str
    category: str
    price_points: int | None
    price_paise: int | None
    stock: int | None
    per_member_limit: int | None
    image_url: str | None
    required_tier: str | None
    required_layer: str | None
    required_layer_xp: int
    delivery: str
    ends_at: str | None
    bought: int


class Catalogue(RootModel[list[CatalogueItem]]):
    """store_catalogue: the items on sale now."""


class InventoryItem(Result):
    item: str
    name: str
    category: str
    quantity: int
    tool: str | None
    rank_card_style: str | None
    acquired_at: str


class Inventory(Result):
    """inventory_of: items owned, streak freezes held and the rank card style in use."""

    profile_id: UUID
    items: list[InventoryItem]
    freezes_held: int
    rank_card_style: str | None


class RedemptionStep(Result):
    status: RedemptionStatus
    actor_id: UUID | None
    actor_role: str
    note: str | None
    at: str


class Redemption(Result):
    """One redemption with its delivery details (member and admins only) and every step."""

    id: int
    profile_id: UUID
    display_name: str
    item: str
    item_name: str
    category: str
    status: RedemptionStatus
    delivery: dict[str, str]
    points: int
    created_at: str
    steps: list[RedemptionStep]


class Redemptions(RootModel[list[Redemption]]):
    """redemption_queue / service_role_redemption_queue / redemption_history: newest first."""


class RedemptionUpdate(Result):
    """update_redemption: the step taken and the refund it made (rejected/cancelled)."""

    redemption_id: int
    profile_id: UUID
    item: str
    status_before: RedemptionStatus
    status: RedemptionStatus
    points_refunded: int
    points_balance: int


class PaymentOrder(Result):
    """Our order for a package or item: amount from our rows, receipt = our order id."""

    order_id: UUID
    profile_id: UUID
    package: str | None
    item: str | None
    xp: int | None
    amount_paise: int
    currency: str
    razorpay_order_id: str | None
    status: Literal["new", "created", "attempted", "paid", "failed", "expired"]
    receipt: str
    expires_at: str
    created_at: str


class PaymentOrders(RootModel[list[PaymentOrder]]):
    """service_role_open_payment_orders: orders still waiting for a payment."""


class PaymentCredit(PaymentOrder):
    """service_role_verify_payment / _reconcile_payment: the order after the payment, and whether this call
    credited it (credited) or found it credited already (duplicate)."""

    payment_id: str
    credited: bool
    duplicate: bool
    source: Literal["verify", "webhook", "reconcile"]
    xp_granted: int
    points_granted: int
    purchase_id: int | None
    fulfilled: bool


class WebhookResult(Result):
    """service_role_payment_webhook: the event and what handling it did (a capture, refund or order)."""

    event_id: str
    event: str
    outcome: dict[str, Any]


class MemberPayment(Result):
    payment_id: str
    amount_paise: int
    refunded_paise: int
    status: Literal["captured", "partially_refunded", "refunded"]
    xp_granted: int
    fulfilled: bool


class MemberOrder(Result):
    order_id: UUID
    package: str | None
    item: str | None
    xp: int | None
    amount_paise: int
    currency: str
    razorpay_order_id: str | None
    status: str
    created_at: str
    expires_at: str
    payments: list[MemberPayment]


class MemberOrders(RootModel[list[MemberOrder]]):
    """payment_orders_of: a member's orders newest first, with their payments."""


#: Functions answering a JSON array map to the model of one element (xpbase.rpc.typed makes a list of them);
#: the RootModel lists above read such an answer in one call.
RESULTS = {
    "admin_adjust_points": PointsChange,
    "service_role_admin_adjust_points": PointsChange,
    "points_statement": PointsStatement,
    "buy_item": Purchase,
    "service_role_buy_item": Purchase,
    "store_catalogue": CatalogueItem,
    "admin_save_store_item": StoreItem,
    "inventory_of": Inventory,
    "update_redemption": RedemptionUpdate,
    "service_role_update_redemption": RedemptionUpdate,
    "redemption_queue": Redemption,
    "service_role_redemption_queue": Redemption,
    "redemption_history": Redemption,
    "service_role_create_payment_order": PaymentOrder,
    "service_role_attach_razorpay_order": PaymentOrder,
    "service_role_fail_payment_order": PaymentOrder,
    "service_role_open_payment_orders": PaymentOrder,
    "service_role_verify_payment": PaymentCredit,
    "service_role_reconcile_payment": PaymentCredit,
    "service_role_payment_webhook": WebhookResult,
    "payment_orders_of": MemberOrder,
}
