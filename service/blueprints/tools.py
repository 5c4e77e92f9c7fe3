"""Tools: the catalogue, the caller's tools, and admin saves, unlocks and revocations (rules:
supabase/sql/37_tools.sql).

Every route calls the database as the caller (anon, or role authenticated with their claims), so SQL decides
who may manage tools (the manage_tools permission: admins; 403 ``forbidden`` otherwise).
"""

from __future__ import annotations

from uuid import UUID

from pydantic import BaseModel, Field, StrictBool
from quart import Blueprint
from quart_schema import security_scheme, tag_blueprint, validate_request, validate_response

from service.lib.access import require_member
from service.lib.context import caller, get_rpc
from service.lib.openapi import BEARER, errors
from xpbase.models.tools import MyTool, Tool, ToolUnlock

blueprint = Blueprint("tools", __name__)
tag_blueprint(blueprint, ["tools"])


class ToolsOut(BaseModel):
    """The catalogue: each tool with the tiers that unlock it and the store items that sell it."""

    tools: list[Tool]


class MyToolsOut(BaseModel):
    """The tools the caller may use, each with every way they hold it (tier, store, admin)."""

    tools: list[MyTool]


class ToolIn(BaseModel):
    """A catalogue tool: ``slug`` (lowercase letters, digits, _), ``name``, ``description``, ``active``."""

    slug: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")
    name: str = Field(min_length=1, max_length=100)
    description: str = Field(default="", max_length=2000)
    active: StrictBool = True


class UnlockIn(BaseModel):
    """The ``tool`` to unlock and the ``reason`` (1-500 characters, kept as the audit trail)."""

    tool: str = Field(min_length=1, max_length=64)
    reason: str = Field(min_length=1, max_length=500)


class RevokeIn(BaseModel):
    """The ``reason`` for revoking the admin unlock (1-500 characters)."""

    reason: str = Field(min_length=1, max_length=500)


@blueprint.get("/v1/tools")
@validate_response(ToolsOut, 200)
async def list_tools() -> ToolsOut:
    """The tool catalogue: every active tool, by the lowest tier that unlocks it.

    Each tool lists the tiers whose reaching unlocks it and the store items that sell it; an admin may
    unlock any tool for a member. Calls `public.tool_catalogue()` as anon.
    """
    return ToolsOut(tools=(await get_rpc().call("tool_catalogue", role="anon")).root)


@blueprint.get("/v1/me/tools")
@security_scheme(BEARER)
@require_member
@validate_response(MyToolsOut, 200)
@errors(400, 401, 403, 404)
async def get_my_tools() -> MyToolsOut:
    """The tools the signed-in member may use, with how they got each (tier, store item, admin unlock).

    Calls `public.my_tools()` as the member. 404 `unknown_profile` when the token's subject has no profile.
    """
    return MyToolsOut(tools=(await get_rpc().call("my_tools", **caller())).root)


@blueprint.post("/v1/admin/tools")
@security_scheme(BEARER)
@require_member
@validate_request(ToolIn)
@validate_response(Tool, 200)
@errors(400, 401, 403)
async def post_admin_tool(data: ToolIn) -> Tool:
    """Add or change a catalogue tool (admins).

    Calls `public.admin_save_tool` as the caller; an inactive tool grants nobody access. Errors: 403
    `forbidden`, 400 `invalid_argument`.
    """
    tool: Tool = await get_rpc().call(
        "admin_save_tool",
        **caller(),
        slug=data.slug,
        name=data.name,
        description=data.description,
        active=data.active,
    )
    return tool


@blueprint.post("/v1/admin/profiles/<uuid:profile_id>/tools")
@security_scheme(BEARER)
@require_member
@validate_request(UnlockIn)
@validate_response(ToolUnlock, 200)
@errors(400, 401, 403, 404)
async def post_admin_tool_unlock(profile_id: UUID, data: UnlockIn) -> ToolUnlock:
    """Unlock a tool for a member, with the reason (admins); unlocking again answers the same unlock.

    Calls `public.admin_unlock_tool` as the caller, who is recorded with the reason; the member gets a
    `tool_unlocked` notification when they did not hold the tool before. Errors: 403 `forbidden`, 404
    `unknown_tool`, `unknown_profile`, 400 `invalid_argument`.
    """
    unlock: ToolUnlock = await get_rpc().call(
        "admin_unlock_tool", **caller(), profile_id=profile_id, tool=data.tool, reason=data.reason
    )
    return unlock


@blueprint.post("/v1/admin/profiles/<uuid:profile_id>/tools/<tool>/revoke")
@security_scheme(BEARER)
@require_member
@validate_request(RevokeIn)
@validate_response(ToolUnlock, 200)
@errors(400, 401, 403, 404)
async def post_admin_tool_revoke(profile_id: UUID, tool: str, data: RevokeIn) -> ToolUnlock:
    """Revoke a member's admin unlock of a tool, with the reason (admins).

    Calls `public.admin_revoke_tool` as the caller; the unlock stays as the audit trail, and access by tier
    or store is untouched (`has_tool` in the answer). Errors: 403 `forbidden`, 404 `tool_unlock_not_found`,
    `unknown_tool`, `unknown_profile`, 400 `invalid_argument`.
    """
    unlock: ToolUnlock = await get_rpc().call(
        "admin_revoke_tool", **caller(), profile_id=profile_id, tool=tool, reason=data.reason
    )
    return unlock
