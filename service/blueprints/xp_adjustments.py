"""Admin XP corrections over HTTP: ``POST /v1/admin/xp-adjustments`` (one call of ``public.admin_adjust_xp``).

The README's quick start uses it to award XP and watch the board change. It runs as the caller
(role authenticated with their verified claims), so the SQL function decides who may: admins
(``profiles.role = 'admin'``, see ``xpbase admin grant``), everyone else gets 403 ``forbidden``.
"""

from __future__ import annotations

from uuid import UUID, uuid4

from pydantic import BaseModel, Field
from quart import Blueprint, g
from quart_schema import security_scheme, validate_request, validate_response

from service.auth import require_member
from service.context import get_db

blueprint = Blueprint("xp_adjustments", __name__)


class XPAdjustment(BaseModel):
    """``amount`` XP to add (> 0) or remove (< 0) with a ``reason`` (1-500 characters, recorded with you as
    the actor); ``layer`` (default the engine's default layer); ``idempotency_key`` makes retries safe
    (default: a new key per request)."""

    profile_id: UUID
    amount: int = Field(ge=-2147483647, le=2147483647)
    reason: str
    layer: str | None = None
    idempotency_key: str | None = None


class AdjustmentReceipt(BaseModel):
    """The engine's receipt (``admin_adjust_xp``): ``granted`` XP, totals, level and tier before and after…"""

    model_config = {"extra": "allow"}

    granted: int
    replayed: bool


@blueprint.post("/v1/admin/xp-adjustments")
@security_scheme([{"bearer": []}, {"cookie": []}])
@require_member
@validate_request(XPAdjustment)
@validate_response(AdjustmentReceipt, 200)
async def post_xp_adjustment(data: XPAdjustment) -> AdjustmentReceipt:
    """Add or remove XP for a member as an admin.

    A ledger row with you as actor and your reason; never below zero. 401 without a token, 403
    ``forbidden`` unless your profile is an admin, 404 ``unknown_profile``, 400 ``invalid_argument``,
    409 ``idempotency_key_reused`` for a key used before with other parameters.
    """
    receipt = await get_db().rpc(
        "admin_adjust_xp",
        role="authenticated",
        claims=g.claims,
        profile_id=data.profile_id,
        amount=data.amount,
        reason=data.reason,
        idempotency_key=data.idempotency_key or f"http:{uuid4()}",
        layer=data.layer,
    )
    return AdjustmentReceipt.model_validate(receipt)
