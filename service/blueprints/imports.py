"""Moving a Discord server in from another bot over HTTP: an admin uploads the export file.

``POST /v1/admin/imports/<source>?guild_id=...&keep=xp|level&dry_run=true|false`` with the file as the
request body (MEE6/Amari/Polaris/LevelUp JSON, or CSV). The body is spooled to a temporary file (at most
Quart's ``MAX_CONTENT_LENGTH``, 16 MiB by default: larger servers use ``xpbase import``), then read as a
stream by xpbase.importers and sent in batches to ``public.admin_import_members`` as the caller, so the
SQL decides who may import (admins: 403 ``forbidden`` otherwise).
"""

from __future__ import annotations

import csv
import tempfile
from functools import partial
from typing import Literal

import ijson
from pydantic import BaseModel, Field
from quart import Blueprint, g, request
from quart_schema import security_scheme, tag_blueprint, validate_querystring, validate_response

from service.lib.access import require_member
from service.lib.api_error import APIError
from service.lib.context import get_rpc
from service.lib.openapi import BEARER, errors
from xpbase.importers import run_import
from xpbase.models.communities import ImportedMember, RoleRewardImport

blueprint = Blueprint("imports", __name__)
tag_blueprint(blueprint, ["admin"])

SOURCE = "<any(mee6, amari, polaris, levelup, csv):source>"
BAD_ROWS_SHOWN = 1000


class ImportQuery(BaseModel):
    """``guild_id``: the Discord server; ``keep``: xp (the number) or level (level and progress on xpbase's
    curve); ``dry_run``: answer what would change, write nothing."""

    guild_id: str = Field(pattern=r"^[0-9]{1,20}$")
    keep: Literal["xp", "level"] = "xp"
    dry_run: bool = False


class BadRowOut(BaseModel):
    """A row not imported: where in the file (``players[12]``, ``line 14``) and why."""

    where: str
    reason: str


class ImportOut(BaseModel):
    """What the import did (or would do): members read, members per status, XP granted, profiles made,
    level roles, the first members' outcomes, the bad rows (at most 1,000 listed; ``bad_row_count``: all)."""

    source: str
    guild_id: str
    keep: Literal["xp", "level"]
    dry_run: bool
    read: int
    counts: dict[str, int]
    xp_granted: int
    new_profiles: int
    members: list[ImportedMember]
    role_rewards: RoleRewardImport | None
    bad_rows: list[BadRowOut]
    bad_row_count: int


@blueprint.post(f"/v1/admin/imports/{SOURCE}")
@security_scheme(BEARER)
@require_member
@validate_querystring(ImportQuery)
@validate_response(ImportOut, 200)
@errors(400, 401, 403, 413, 404)
async def import_server(
    source: Literal["mee6", "amari", "polaris", "levelup", "csv"], query_args: ImportQuery
) -> ImportOut:
    """Import a Discord server's members from another bot's export (admins).

    The request body is the file. Each member becomes one ledger row of activity `import` (a second
    upload changes nothing), level roles are copied into the server's role rewards and a role resync is
    queued for the bot. Errors: 400 `invalid_argument` (a batch the database refuses), `invalid_file`
    (not JSON or CSV of that export's shape); 401; 403
    `forbidden` (not an admin); 413 (larger than the upload limit).
    """
    call = partial(get_rpc().call, role="authenticated", claims=g.claims)
    with tempfile.SpooledTemporaryFile(max_size=1 << 20) as spool:
        async for chunk in request.body:
            spool.write(chunk)
        spool.seek(0)
        try:
            summary = await run_import(
                call, source, spool, query_args.guild_id, keep=query_args.keep, dry_run=query_args.dry_run
            )
        except (ijson.JSONError, csv.Error, UnicodeDecodeError) as exc:  # not a file of that kind at all
            raise APIError(400, "invalid_file", f"Not a {source} export: {exc}") from exc
    return ImportOut(
        source=summary.source,
        guild_id=summary.guild_id,
        keep=summary.keep,
        dry_run=summary.dry_run,
        read=summary.read,
        counts=summary.counts,
        xp_granted=summary.xp_granted,
        new_profiles=summary.new_profiles,
        members=summary.members,
        role_rewards=summary.role_rewards,
        bad_rows=[BadRowOut(where=b.where, reason=b.reason) for b in summary.bad_rows[:BAD_ROWS_SHOWN]],
        bad_row_count=len(summary.bad_rows),
    )
