"""Resume reviews over HTTP: the admin's matcher and availability upload, calendars for both sides.

Every route calls the database as the caller (role authenticated, their
claims), so the SQL functions decide who may do what (admins for the admin
routes: 403 ``forbidden`` otherwise). The calendar feed is the one route
without a token: its unguessable path token is the credential.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, StrictBool
from quart import Blueprint, Response, g, request
from quart_schema import security_scheme, tag_blueprint, validate_request, validate_response

from service.lib.access import require_member
from service.lib.api_error import APIError
from service.lib.context import get_rpc
from service.lib.openapi import BEARER, body, errors
from xpbase.availability_text import parse_csv
from xpbase.calendar import calendar
from xpbase.matching import run_matching
from xpbase.models.reviews import CalendarFeed, ImportResult, Session
from xpbase.settings import get_settings

blueprint = Blueprint("reviews", __name__)
tag_blueprint(blueprint, ["reviews"])

#: The largest CSV upload read (bytes): a form export of a few thousand rows.
MAX_CSV_BYTES = 2_000_000


class MatchIn(BaseModel):
    """A matcher run: dry_run proposes without booking; horizon in days, sessions in minutes."""

    dry_run: StrictBool = False
    horizon_days: int | None = Field(default=None, ge=1, le=60)
    session_minutes: int | None = Field(default=None, ge=15, le=240)


class MatchOut(BaseModel):
    """One matched pair: starts_at in Unix seconds (UTC); session_id null in a dry run; terms explain it."""

    request_id: int
    professional_id: str
    score: float
    terms: dict[str, Any]
    starts_at: int | None
    session_id: int | None
    round: int


class MatchReportOut(BaseModel):
    """The run: its matches, the requests left unmatched, conflicts met while booking, phase times (s)."""

    run_id: str
    dry_run: bool
    matches: list[MatchOut]
    unmatched: list[int]
    conflicts: int
    rounds: int
    phases: dict[str, float]
    total_score: float


class UnreadableRow(BaseModel):
    """A CSV row the parser could not read: its line, who sent it, the text and why it was not read."""

    line: int
    name: str
    email: str
    text: str
    reason: str


class ImportOut(BaseModel):
    """What an availability upload did: professionals created and updated, and every row not read."""

    created: int
    updated: int
    unreadable: list[UnreadableRow]


def _member_call(function: str, /, **params: Any) -> Any:
    return get_rpc().call(function, role="authenticated", claims=g.claims, **params)


@blueprint.post("/v1/admin/reviews/match")
@security_scheme(BEARER)
@require_member
@validate_request(MatchIn)
@validate_response(MatchReportOut, 200)
@errors(400, 401, 403)
async def post_review_match(data: MatchIn) -> MatchReportOut:
    """Match open review requests with professionals (admins).

    Solves the assignment optimally (xpbase/matching.py) and books each pair's
    earliest common slot, or with ``dry_run`` only proposes. 403 for members.
    """
    settings = get_settings()
    report = await run_matching(
        _member_call,
        horizon_days=data.horizon_days or settings.review_horizon_days,
        session_minutes=data.session_minutes or settings.review_session_minutes,
        dry_run=data.dry_run,
    )
    return MatchReportOut.model_validate(report.as_dict())


@blueprint.post("/v1/admin/reviews/availability")
@security_scheme(BEARER)
@require_member
@validate_response(ImportOut, 200)
@errors(400, 401, 403, 413)
async def post_review_availability() -> ImportOut:
    """Import professionals' availability from a Google Forms CSV export (admins).

    The body is the CSV (text/csv, UTF-8, at most 2 MB). Readable rows are
    imported in one transaction; every row that could not be read is listed.
    400 ``invalid_csv`` when a column is missing; 403 for members.
    """
    body = await request.get_data(cache=False)
    if len(body) > MAX_CSV_BYTES:
        raise APIError(413, "too_large", f"The export is larger than {MAX_CSV_BYTES} bytes.")
    try:
        result = parse_csv(body.decode("utf-8-sig"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise APIError(400, "invalid_csv", str(exc)) from exc
    imported = ImportResult.model_validate(
        await _member_call("admin_import_review_availability", rows=result.import_rows())
    )
    return ImportOut(
        created=imported.created,
        updated=imported.updated,
        unreadable=[
            UnreadableRow(line=r.line, name=r.name, email=r.email, text=r.text, reason=r.reason or "")
            for r in result.unreadable
        ],
    )


@blueprint.get("/v1/reviews/sessions/<int(max=9223372036854775807):session_id>.ics")
@security_scheme(BEARER)
@require_member
@body("text/calendar", "The session as an iCalendar (RFC 5545) invitation.")
@errors(401, 404)
async def get_review_session_ics(session_id: int) -> Response:
    """One review session as an iCalendar invitation (text/calendar); 404 when it is not the caller's."""
    session = Session.model_validate(await _member_call("review_session", session_id=session_id))
    return Response(calendar([session]), mimetype="text/calendar")


@blueprint.get("/v1/reviews/calendar/<token>.ics")
@security_scheme([])
@body("text/calendar", "The person's review sessions as an iCalendar (RFC 5545) feed.")
@errors(404)
async def get_review_calendar(token: str) -> Response:
    """A person's review sessions as a calendar feed; the token comes from review_calendar_token."""
    feed: CalendarFeed = await get_rpc().call("service_role_review_calendar_feed", token=token)
    return Response(calendar(feed.sessions), mimetype="text/calendar")
