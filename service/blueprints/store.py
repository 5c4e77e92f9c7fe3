"""The store: the catalogue, buying with points, the caller's inventory (rules: supabase/sql/55_store.sql)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field
from quart import Blueprint, g
from quart_schema import security_scheme, tag_blueprint, validate_request, validate_response

from service.lib.access import current_member, require_member
from service.lib.context import get_db
from service.lib.openapi import BEARER, errors
from xpbase.models.economy import Catalogue, Inventory, Purchase

blueprint = Blueprint("store", __name__)
tag_blueprint(blueprint, ["store"])


class CatalogueOut(BaseModel):
    """Items on sale now; ``bought`` counts the caller's purchases (0 without a token)."""

    items: list[dict[str, Any]]


class PurchaseIn(BaseModel):
    """One unit of ``item``. ``idempotency_key``: the same key buys once. ``expected_price``: the points the
    member saw (a different price is 409 ``price_mismatch``). ``delivery``: ``{"email": ...}`` or
    ``{"address": ...}`` for items a person delivers."""

    item: str = Field(min_length=1, max_length=64)
    idempotency_key: str = Field(min_length=1, max_length=200)
    expected_price: int | None = Field(default=None, ge=0, le=2**31 - 1)  # SQL integer
    delivery: dict[str, str] | None = None


@blueprint.get("/v1/store/items")
@validate_response(CatalogueOut, 200)
@errors(401, 502)
async def get_items() -> CatalogueOut:
    """The store's items on sale now (prices in points and/or paise); with a token, what the caller bought."""
    claims = await current_member()
    db = get_db()
    if claims is None:
        answer = await db.rpc("store_catalogue", role="anon")
    else:
        answer = await db.rpc("store_catalogue", role="authenticated", claims=claims)
    return CatalogueOut(items=[i.model_dump(mode="json") for i in Catalogue.model_validate(answer).root])


@blueprint.post("/v1/store/purchases")
@security_scheme(BEARER)
@require_member
@validate_request(PurchaseIn)
@validate_response(Purchase, 201)
@errors(400, 401, 403, 404, 409)
async def post_purchase(data: PurchaseIn) -> tuple[Purchase, int]:
    """Buy one item with points (one SQL function: price, rules, stock and the debit together).

    Errors: 404 ``unknown_item``; 409 ``item_not_on_sale``, ``price_mismatch``, ``sold_out``,
    ``member_limit_reached``, ``insufficient_points``, ``freeze_limit_reached``, ``idempotency_key_reused``;
    403 ``requirement_not_met``; 400 ``invalid_argument`` (delivery details). Nothing changes on an error.
    """
    answer = await get_db().rpc(
        "buy_item",
        role="authenticated",
        claims=g.claims,
        item=data.item,
        idempotency_key=data.idempotency_key,
        expected_price=data.expected_price,
        delivery=data.delivery,
    )
    return Purchase.model_validate(answer), 201


@blueprint.get("/v1/store/inventory")
@security_scheme(BEARER)
@require_member
@validate_response(Inventory, 200)
@errors(401)
async def get_inventory() -> Inventory:
    """The caller's cosmetics and tools, streak freezes held and rank card style."""
    return Inventory.model_validate(await get_db().rpc("inventory_of", role="authenticated", claims=g.claims))
