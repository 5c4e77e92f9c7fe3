"""A member's own data: everything held about them (GET /v1/me/export) and erasure (DELETE /v1/me, and an
admin's DELETE /v1/admin/profiles/<id>).

Each runs its SQL function as the caller (role authenticated, their claims): ``public.my_export``,
``public.erase_me`` and ``public.admin_erase_profile`` (which refuses everyone but admins, 403
``forbidden``). Erasure anonymises the profile and removes identities, sessions, devices and personal
fields; the ledger keeps its rows against the anonymous profile, so totals still add up.
"""

from __future__ import annotations

from uuid import UUID

from quart import Blueprint, g
from quart_schema import security_scheme, tag_blueprint, validate_response

from service.lib.access import require_member
from service.lib.context import get_rpc
from service.lib.openapi import BEARER, errors
from xpbase.models.communities import Erasure, MemberExport

blueprint = Blueprint("member_data", __name__)
tag_blueprint(blueprint, ["profiles"])


@blueprint.get("/v1/me/export")
@security_scheme(BEARER)
@require_member
@validate_response(MemberExport, 200)
@errors(401, 403, 404)
async def export_me() -> MemberExport:
    """Everything held about you, as one JSON document.

    Calls `public.my_export()` as the caller: the profile (every column), identities, XP per layer and
    season, the servers you were seen in, every ledger row, your chat messages. Times are UTC ISO 8601,
    amounts XP. Errors: 401; 404 `unknown_profile`.
    """
    export: MemberExport = await get_rpc().call("my_export", role="authenticated", claims=g.claims)
    return export


@blueprint.delete("/v1/me")
@security_scheme(BEARER)
@require_member
@validate_response(Erasure, 200)
@errors(401, 403, 404)
async def erase_me() -> Erasure:
    """Erase yourself.

    Calls `public.erase_me()` as the caller: your display name becomes "Deleted member"; bio, avatar,
    social links and time zone are cleared; you leave every board; identities (you can sign in anew as
    a new member), sessions (every token stops working), push devices, preferences, link codes,
    notifications and server memberships are removed; chat messages keep their place as "[erased]". XP
    and the ledger stay against the anonymous profile. Errors: 401; 404 `unknown_profile`.
    """
    erased: Erasure = await get_rpc().call("erase_me", role="authenticated", claims=g.claims)
    return erased


@blueprint.delete("/v1/admin/profiles/<uuid:profile_id>")
@security_scheme(BEARER)
@require_member
@validate_response(Erasure, 200)
@errors(400, 401, 403, 404)
async def admin_erase_profile(profile_id: UUID) -> Erasure:
    """Erase a member (admins).

    Calls `public.admin_erase_profile(profile_id)` as the caller, which erases as `DELETE /v1/me` does.
    Errors: 401; 403 `forbidden` (not an admin); 404 `unknown_profile`.
    """
    erased: Erasure = await get_rpc().call(
        "admin_erase_profile", role="authenticated", claims=g.claims, profile_id=profile_id
    )
    return erased
