"""Roles and moderation over HTTP: change a member's role, warn / suspend / unsuspend, read records.

Every route runs its SQL function as the calling member (role authenticated,
their verified claims), so SQL decides who may (supabase/sql/12_roles.sql,
13_moderation.sql): roles need manage_roles (admins), moderation
warn_members / suspend_members (moderators, admins); 403 ``forbidden``
otherwise. Role changes reach the member's access token at their next refresh.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, Field
from quart import Blueprint, g
from quart_schema import security_scheme, tag_blueprint, validate_request, validate_response

from service.lib.access import require_member
from service.lib.context import get_rpc
from service.lib.openapi import BEARER, errors
from xpbase.models.accounts import Moderated, ModerationRecord, Permissions, RoleChange

blueprint = Blueprint("moderation", __name__)
tag_blueprint(blueprint, ["admin"])


class RoleIn(BaseModel):
    """The new ``role`` (a role slug: member, student, company, university, professional, moderator, admin)
    and why (kept in the audit)."""

    role: str = Field(min_length=1, max_length=32)
    reason: str = Field(min_length=1, max_length=500)


class ModerateIn(BaseModel):
    """``warn``, ``suspend`` (``until``: a UTC time at most 10 years away; none: a ban, which also ends
    the member's sessions) or ``unsuspend``, with a ``reason`` the member can read."""

    action: Literal["warn", "suspend", "unsuspend"]
    reason: str = Field(min_length=1, max_length=500)
    until: datetime | None = None


class PermissionsOut(BaseModel):
    """The permission slugs the caller's role holds (empty for a plain member)."""

    permissions: list[str]


@blueprint.put("/v1/admin/profiles/<uuid:profile_id>/role")
@security_scheme(BEARER)
@require_member
@validate_request(RoleIn)
@validate_response(RoleChange, 200)
@errors(400, 401, 403, 404)
async def put_role(profile_id: UUID, data: RoleIn) -> RoleChange:
    """Give a member a role (admins), audited with you and the reason.

    Calls ``public.admin_set_role`` as the caller. Errors: 400 ``unknown_role``,
    ``invalid_argument``; 403 ``forbidden`` (not an admin, or your own role);
    404 ``unknown_profile``.
    """
    change: RoleChange = await get_rpc().call(
        "admin_set_role",
        role="authenticated",
        claims=g.claims,
        profile_id=profile_id,
        new_role=data.role,
        reason=data.reason,
    )
    return change


@blueprint.post("/v1/admin/profiles/<uuid:profile_id>/moderation")
@security_scheme(BEARER)
@require_member
@validate_request(ModerateIn)
@validate_response(Moderated, 200)
@errors(400, 401, 403, 404)
async def post_moderation(profile_id: UUID, data: ModerateIn) -> Moderated:
    """Warn, suspend or unsuspend a member (moderators, admins).

    Calls ``public.moderate`` as the caller. A suspended member earns no XP
    and cannot chat, buy or redeem; a ban also revokes their sessions. Errors:
    400 ``invalid_argument``; 403 ``forbidden`` (your role may not, yourself,
    or a moderator acting on a moderator); 404 ``unknown_profile``.
    """
    answer: Moderated = await get_rpc().call(
        "moderate",
        role="authenticated",
        claims=g.claims,
        action=data.action,
        profile_id=profile_id,
        reason=data.reason,
        until=data.until.isoformat() if data.until else None,
    )
    return answer


@blueprint.get("/v1/admin/profiles/<uuid:profile_id>/moderation")
@security_scheme(BEARER)
@require_member
@validate_response(ModerationRecord, 200)
@errors(400, 401, 403, 404)
async def get_moderation(profile_id: UUID) -> ModerationRecord:
    """A member's warnings and suspensions, newest first (moderators, admins; 403 ``forbidden`` otherwise)."""
    record: ModerationRecord = await get_rpc().call(
        "moderation_record", role="authenticated", claims=g.claims, profile_id=profile_id
    )
    return record


@blueprint.get("/v1/me/moderation")
@security_scheme(BEARER)
@require_member
@validate_response(ModerationRecord, 200)
@errors(400, 401)
async def get_my_moderation() -> ModerationRecord:
    """Your own warnings and suspensions, and whether a suspension is in force."""
    record: ModerationRecord = await get_rpc().call(
        "moderation_record", role="authenticated", claims=g.claims
    )
    return record


@blueprint.get("/v1/me/permissions")
@security_scheme(BEARER)
@require_member
@validate_response(PermissionsOut, 200)
@errors(401)
async def get_my_permissions() -> PermissionsOut:
    """What your role may do (``public.my_permissions``), e.g. ``["approve_redemptions", "warn_members"]``."""
    answer: Permissions = await get_rpc().call("my_permissions", role="authenticated", claims=g.claims)
    return PermissionsOut(permissions=answer.permissions)
