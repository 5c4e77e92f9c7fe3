"""Admin corrections: adjust a member's XP, set their level, reset their XP, reverse one ledger row.

Each runs the SQL function as the calling member (role authenticated, their
verified claims), so the SQL's own check decides: the caller's profile must
have role admin (403 ``forbidden`` otherwise). Every correction is a ledger
row with the admin as actor and the reason; nothing is edited in place.
"""

from __future__ import annotations

from uuid import UUID

from pydantic import BaseModel, Field
from quart import Blueprint, g
from quart_schema import security_scheme, tag_blueprint, validate_request, validate_response

from service.lib.access import require_member
from service.lib.context import get_rpc
from service.lib.openapi import BEARER, errors
from xpbase.models.engine import CorrectionReceipt, ReversalReceipt

blueprint = Blueprint("admin", __name__)
tag_blueprint(blueprint, ["admin"])


class AdjustXPIn(BaseModel):
    """``amount`` XP to add (positive) or remove (negative), ``reason`` (kept in the ledger), an
    ``idempotency_key`` (the same key answers the first receipt), and optionally the ``layer``."""

    amount: int = Field(ge=-10_000_000, le=10_000_000)
    reason: str = Field(min_length=1, max_length=500)
    idempotency_key: str = Field(min_length=1, max_length=200)
    layer: str | None = Field(default=None, max_length=64)


class SetLevelIn(BaseModel):
    """The ``level`` to move the member to (its first XP), the ``reason``, an optional ``idempotency_key``."""

    level: int = Field(ge=1, le=10_000)
    reason: str = Field(min_length=1, max_length=500)
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=200)


class ReverseIn(BaseModel):
    """The ``reason`` for reversing the ledger row (1-500 characters, kept on the reversal row)."""

    reason: str = Field(min_length=1, max_length=500)


class ResetXPIn(BaseModel):
    """The ``reason`` for bringing the member's XP to zero, an optional ``idempotency_key``."""

    reason: str = Field(min_length=1, max_length=500)
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=200)


@blueprint.post("/v1/admin/profiles/<uuid:profile_id>/xp-adjustments")
@security_scheme(BEARER)
@require_member
@validate_request(AdjustXPIn)
@validate_response(CorrectionReceipt, 200)
@errors(400, 401, 403, 404, 409)
async def admin_adjust_xp(profile_id: UUID, data: AdjustXPIn) -> CorrectionReceipt:
    """Add or remove a member's XP.

    Calls `public.admin_adjust_xp` as the caller. Removals never take a layer
    below zero. Errors: 403 `forbidden` (not an admin), 404 `unknown_profile`,
    400 `invalid_argument`, 409 `idempotency_key_reused`.
    """
    receipt: CorrectionReceipt = await get_rpc().call(
        "admin_adjust_xp",
        role="authenticated",
        claims=g.claims,
        profile_id=profile_id,
        amount=data.amount,
        reason=data.reason,
        idempotency_key=data.idempotency_key,
        layer=data.layer,
    )
    return receipt


@blueprint.post("/v1/admin/profiles/<uuid:profile_id>/level")
@security_scheme(BEARER)
@require_member
@validate_request(SetLevelIn)
@validate_response(CorrectionReceipt, 200)
@errors(400, 401, 403, 404, 409)
async def admin_set_level(profile_id: UUID, data: SetLevelIn) -> CorrectionReceipt:
    """Move a member to exactly the start of a level.

    Calls `public.admin_set_level` as the caller. Errors: 400
    `level_out_of_range`, 403 `forbidden`, 404 `unknown_profile`.
    """
    receipt: CorrectionReceipt = await get_rpc().call(
        "admin_set_level",
        role="authenticated",
        claims=g.claims,
        profile_id=profile_id,
        level=data.level,
        reason=data.reason,
        idempotency_key=data.idempotency_key,
    )
    return receipt


@blueprint.post("/v1/admin/profiles/<uuid:profile_id>/xp-reset")
@security_scheme(BEARER)
@require_member
@validate_request(ResetXPIn)
@validate_response(CorrectionReceipt, 200)
@errors(400, 401, 403, 404, 409)
async def admin_reset_xp(profile_id: UUID, data: ResetXPIn) -> CorrectionReceipt:
    """Bring a member's XP (every layer) to zero; points are kept.

    Calls `public.admin_reset_xp` as the caller. Errors: 403 `forbidden`,
    404 `unknown_profile`, 400 `invalid_argument`.
    """
    receipt: CorrectionReceipt = await get_rpc().call(
        "admin_reset_xp",
        role="authenticated",
        claims=g.claims,
        profile_id=profile_id,
        reason=data.reason,
        idempotency_key=data.idempotency_key,
    )
    return receipt


@blueprint.post("/v1/admin/ledger/<int(max=9223372036854775807):ledger_id>/reversal")
@security_scheme(BEARER)
@require_member
@validate_request(ReverseIn)
@validate_response(ReversalReceipt, 200)
@errors(400, 401, 403, 404, 409)
async def reverse_award(ledger_id: int, data: ReverseIn) -> ReversalReceipt:
    """Reverse one ledger row.

    Calls `public.reverse_award` as the caller: a new ledger row with the
    opposite amount (XP) on the same layer and day, naming the row it reverses;
    the member's totals, season score, daily cap usage and earned points move
    back. Posting again answers the first reversal (`replayed`). Errors: 403
    `forbidden` (not an admin), 404 `unknown_ledger_row`, 409
    `cannot_reverse` (a reversal, or a row that granted nothing), 400
    `invalid_argument`.
    """
    receipt: ReversalReceipt = await get_rpc().call(
        "reverse_award", role="authenticated", claims=g.claims, ledger_id=ledger_id, reason=data.reason
    )
    return receipt
