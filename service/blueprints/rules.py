"""Rule changes over HTTP: preview who a change to the XP rules moves, then apply it.

``POST /v1/admin/rules/diff`` and ``POST /v1/admin/rules/apply`` take a rule change (xpbase.rules.RuleChange:
activities, activity_rates, cap_groups, multipliers, level_curve) and call ``public.admin_rules_diff`` /
``public.admin_rules_apply`` as the caller, so the SQL decides who may (members whose role holds
``manage_rules``, admins by default: 403 ``forbidden`` otherwise). The diff keeps nothing; apply writes the
change, appends a correction row per award whose grant changes, and records the change. Same answer shape.
"""

from __future__ import annotations

from pydantic import BaseModel, Field
from quart import Blueprint, g
from quart_schema import security_scheme, tag_blueprint, validate_request, validate_response

from service.lib.access import require_member
from service.lib.context import get_rpc
from service.lib.openapi import BEARER, errors
from xpbase.models.rules import RuleChangeOutcome
from xpbase.rules import RuleChange

blueprint = Blueprint("rules", __name__)
tag_blueprint(blueprint, ["admin"])


class RulesDiffIn(BaseModel):
    """The ``change`` to preview, and ``max_members``: how many of the most-moved members to list (the counts
    cover everyone)."""

    change: RuleChange
    max_members: int = Field(default=100, ge=0, le=1000)


class RulesApplyIn(RulesDiffIn):
    """The ``change`` to apply, the ``reason`` stored on every correction row and told to the members it moves
    (1-500 characters), and ``max_members`` as for the diff."""

    reason: str = Field(min_length=1, max_length=500)


@blueprint.post("/v1/admin/rules/diff")
@security_scheme(BEARER)
@require_member
@validate_request(RulesDiffIn)
@validate_response(RuleChangeOutcome, 200)
@errors(400, 401, 403, 404, 413)
async def rules_diff(data: RulesDiffIn) -> RuleChangeOutcome:
    """Preview a change to the XP rules.

    Calls `public.admin_rules_diff` as the caller: every award of the ledger is decided again in time order
    under the changed rules and the answer says who would gain or lose XP, levels, tiers and Discord reward
    roles. Nothing is kept. Errors: 400 `invalid_argument` (a malformed change, or a value the rule tables
    refuse), 404 `unknown_activity`, 403 `forbidden`, 413 `input_too_large` (a change over 64 KiB as JSON).
    """
    outcome: RuleChangeOutcome = await get_rpc().call(
        "admin_rules_diff",
        role="authenticated",
        claims=g.claims,
        change=data.change.document(),
        max_members=data.max_members,
    )
    return outcome


@blueprint.post("/v1/admin/rules/apply")
@security_scheme(BEARER)
@require_member
@validate_request(RulesApplyIn)
@validate_response(RuleChangeOutcome, 200)
@errors(400, 401, 403, 404, 413)
async def rules_apply(data: RulesApplyIn) -> RuleChangeOutcome:
    """Apply a change to the XP rules.

    Calls `public.admin_rules_apply` as the caller: the change is written, every award whose grant changes
    gets a correction row (never an edit) with the reason, levels and tiers follow, members whose XP moved
    are notified (`xp_recalculated`) and the change is recorded (`rule_change_id`). Awards wait while it
    runs. Errors as the diff.
    """
    outcome: RuleChangeOutcome = await get_rpc().call(
        "admin_rules_apply",
        role="authenticated",
        claims=g.claims,
        change=data.change.document(),
        reason=data.reason,
        max_members=data.max_members,
    )
    return outcome
