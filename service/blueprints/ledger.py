"""The signed-in member's XP ledger with receipts, newest first."""

from __future__ import annotations

from quart import Blueprint, g
from quart_schema import security_scheme, tag_blueprint, validate_querystring, validate_response

from service.lib.access import require_member
from service.lib.context import get_rpc
from service.lib.openapi import BEARER, errors
from service.lib.paging import PageQuery
from xpbase.models.ledger import LedgerPage

blueprint = Blueprint("ledger", __name__)
tag_blueprint(blueprint, ["ledger"])


@blueprint.get("/v1/me/ledger")
@security_scheme(BEARER)
@require_member
@validate_querystring(PageQuery)
@validate_response(LedgerPage, 200)
@errors(400, 401, 403)
async def list_my_ledger(query_args: PageQuery) -> LedgerPage:
    """The member's XP history, newest first, each entry with its receipt.

    Calls `public.list_my_ledger(size, cursor)` as the member (the ledger's
    policy shows only their own rows). Amounts are XP; corrections and
    penalties are negative. Errors: 400 `invalid_argument` (bad cursor),
    401 `invalid_token`.
    """
    page: LedgerPage = await get_rpc().call(
        "list_my_ledger",
        role="authenticated",
        claims=g.claims,
        size=query_args.size,
        cursor=query_args.cursor,
    )
    return page
