"""The engine's SQLSTATEs, translated in one place.

SQL functions raise domain errors with fixed five-character SQLSTATEs
(``raise exception ... using errcode = 'XPAMT'``). The service turns them into
an ``APIError`` (HTTP status + code) and the bot into a friendly ephemeral
reply; both read this table.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg


@dataclass(frozen=True)
class EngineError:
    """How one SQLSTATE is shown: HTTP status, API error code and a short text for people."""

    sqlstate: str
    status: int
    code: str
    title: str


ENGINE_ERRORS: dict[str, EngineError] = {
    e.sqlstate: e
    for e in (
        EngineError("XPBAD", 400, "invalid_argument", "That input is not valid."),
        EngineError("XPACT", 404, "unknown_activity", "That activity does not exist or is switched off."),
        EngineError("XPAMT", 400, "amount_not_allowed", "That amount is not allowed for this activity."),
        EngineError("XPPRF", 404, "unknown_profile", "That member has no profile yet."),
        EngineError("XPHID", 403, "profile_hidden", "That member keeps their profile private."),
        EngineError(
            "XPCRD", 403, "unlock_required", "Choosing rank card colours needs the Custom rank card unlock."
        ),
        EngineError(
            "XPIDM", 409, "idempotency_key_reused", "That request id was already used for something else."
        ),
        EngineError("XPLVL", 400, "level_out_of_range", "That level is not on the level curve."),
        EngineError("XPLED", 409, "ledger_append_only", "Ledger rows cannot be changed; add a correction."),
        EngineError("XPLGU", 404, "unknown_ledger_row", "There is no ledger row with that id."),
        EngineError(
            "XPREV", 409, "cannot_reverse", "That row cannot be reversed: a reversal, or it granted nothing."
        ),
        EngineError("XPRTK", 401, "invalid_refresh_token", "That refresh token is not valid; sign in again."),
        EngineError("XPRTX", 401, "refresh_token_expired", "That refresh token has expired; sign in again."),
        EngineError("XPRTR", 401, "session_revoked", "That session has ended; sign in again."),
        EngineError("XPLNK", 409, "identity_linked_elsewhere", "That account is on another profile."),
        EngineError("XPLNP", 409, "provider_already_linked", "Your profile has an account of that kind."),
        EngineError("XPLCU", 404, "unknown_link_code", "No such link code; check it or make a new one."),
        EngineError("XPLCD", 409, "link_code_used", "That link code was already used."),
        EngineError("XPLCX", 410, "link_code_expired", "That link code expired or was replaced."),
        EngineError("XPLCR", 429, "rate_limited", "Too many link codes this hour; try again later."),
        EngineError("XPRAT", 429, "rate_limited", "Slow down a little and try again in a few seconds."),
        EngineError("XPNFD", 404, "unknown_delivery", "That delivery does not exist (any more)."),
        EngineError("XPCFG", 503, "not_configured", "This feature is not configured on this community yet."),
        # The economy (issue 11): points, store, redemptions, payments.
        EngineError("XPPTS", 409, "insufficient_points", "You do not have enough points for that."),
        EngineError("XPITM", 404, "unknown_item", "That item is not in the store."),
        EngineError("XPINA", 409, "item_not_on_sale", "That item is not on sale right now."),
        EngineError("XPPRC", 409, "price_mismatch", "That price is not the item's price; look again."),
        EngineError("XPSTK", 409, "sold_out", "Sold out."),
        EngineError("XPLIM", 409, "member_limit_reached", "You already have as many of these as allowed."),
        EngineError("XPTIR", 403, "requirement_not_met", "Your tier or layer status is too low for that."),
        EngineError(
            "XPFRZ", 409, "freeze_limit_reached", "You already hold the most streak freezes allowed."
        ),
        EngineError("XPRDU", 404, "unknown_redemption", "No such redemption."),
        EngineError("XPRDS", 409, "redemption_state", "That redemption cannot take that step now."),
        EngineError("XPPKG", 404, "unknown_package", "That XP package does not exist or is not on sale."),
        EngineError("XPORD", 404, "unknown_order", "No such order or payment."),
        EngineError("XPOWN", 403, "order_not_yours", "That order belongs to someone else."),
        EngineError("XPAMM", 409, "amount_mismatch", "The amount paid does not match the order."),
        EngineError("XPWHR", 200, "webhook_replayed", "That webhook event was handled already."),
        EngineError("XPSIG", 400, "invalid_signature", "The payment signature does not match."),
        EngineError(
            "XPRTZ", 400, "unknown_time_zone", "That time zone is unknown; use a name like Asia/Kolkata."
        ),
        EngineError(
            "XPRAV", 400, "invalid_availability", "Those times are not valid (0-24 h, end after start)."
        ),
        EngineError("XPRSP", 400, "unknown_specialty", "That specialty is not on the list."),
        EngineError("XPRNP", 409, "no_reviewer_for_specialty", "No reviewer offers that specialty yet."),
        EngineError("XPRVO", 409, "review_already_open", "You already have an open review request."),
        EngineError(
            "XPRVS", 409, "review_wrong_state", "That review is not at a step where this is possible."
        ),
        EngineError(
            "XPRVT", 400, "review_time_invalid", "That time is in the past, or the session has not started."
        ),
        EngineError("XPRVC", 409, "slot_taken", "That slot is taken; pick another one."),
        EngineError("XPRVK", 409, "reviewer_at_capacity", "That reviewer is fully booked this week."),
        EngineError("XPRVP", 404, "unknown_professional", "That reviewer does not exist or is inactive."),
        EngineError("XPRVQ", 404, "unknown_review", "That review request does not exist."),
        EngineError("XPRVR", 400, "rating_out_of_range", "A rating is 1 to 5."),
        EngineError("XPRVF", 409, "feedback_already_given", "You already gave feedback on this session."),
        EngineError(
            "XPRCT", 404, "unknown_calendar_token", "That calendar link is not valid; make a new one."
        ),
        # Input bounds (issue 18): times in a sane window, sizes under documented limits.
        EngineError(
            "XPTIM", 400, "time_out_of_range", "That time is outside 2000-01-01 .. now (a little ahead)."
        ),
        EngineError("XPINF", 400, "time_infinite", "Give a real moment, not infinity."),
        EngineError("XPBIG", 413, "input_too_large", "That input is larger than allowed."),
        EngineError(
            "XPNAM",
            400,
            "invalid_display_name",
            "Names may not hold control, zero-width or direction characters.",
        ),
        EngineError("XPURL", 400, "invalid_avatar_url", "An avatar must be a plain https:// address."),
        EngineError("XPCLN", 400, "activity_not_claimable", "That activity cannot be claimed."),
        EngineError(
            "XPCLL", 429, "claim_limit_reached", "You have claimed that as often as allowed for now."
        ),
        EngineError("XPCLS", 409, "claim_already_decided", "That claim was already decided the other way."),
        EngineError("XPCLM", 404, "unknown_claim", "That claim does not exist."),
        EngineError("XPEVG", 403, "event_gate_refused", "You do not meet this event's requirements yet."),
        EngineError("XPEVC", 409, "event_closed", "That is not possible at this point of the event."),
        EngineError("XPEVU", 404, "unknown_event", "That event does not exist or was cancelled."),
        EngineError("XPEVK", 403, "wrong_check_in_code", "That check-in code is not this event's."),
        EngineError("XPBDG", 404, "unknown_badge", "That badge (or badge evaluation) does not exist."),
        # Tools and challenges (issue 15, items 5 and 6).
        EngineError("XPTOL", 404, "unknown_tool", "That tool is not in the catalogue."),
        EngineError("XPTLN", 404, "tool_unlock_not_found", "That member has no admin unlock of that tool."),
        EngineError("XPCHU", 404, "unknown_challenge", "That challenge does not exist."),
        EngineError(
            "XPCHP", 409, "challenge_prerequisites_missing", "Finish this challenge's prerequisites first."
        ),
        EngineError("XPCHW", 409, "challenge_not_open", "That challenge is not open right now."),
        # Accounts (issue 13): roles, moderation, email sign-in codes.
        EngineError("XPROL", 400, "unknown_role", "That role does not exist."),
        EngineError("XPSUS", 403, "member_suspended", "This account is suspended; that is not possible now."),
        EngineError(
            "XPOTC", 400, "invalid_code", "That code is not valid (expired, used or never sent); ask again."
        ),
        EngineError("XPOTW", 400, "wrong_code", "That code is wrong; check the email and try again."),
        EngineError("XPOTD", 400, "code_locked", "Too many wrong tries; ask for a new code."),
        EngineError("XPOTR", 429, "rate_limited", "Too many codes asked for; try again in an hour."),
        EngineError("42501", 403, "forbidden", "You are not allowed to do that."),
        EngineError("23514", 400, "constraint_violated", "That value is outside what is allowed."),
        EngineError("22001", 400, "value_too_long", "That value is too long."),
        # Values Python accepts and Postgres cannot hold (found by schemathesis, issue 18): ids beyond
        # bigint, UTC offsets beyond ±15:59, dates beyond Postgres' range.
        EngineError("22003", 400, "value_out_of_range", "That number is out of range."),
        EngineError("22008", 400, "value_out_of_range", "That date or time is out of range."),
        EngineError("22009", 400, "value_out_of_range", "That UTC offset is out of range."),
        # Text Postgres cannot store: a NUL character (JSON ``\u0000`` in a jsonb argument is 22P05, a NUL
        # in a text argument 22021). Found by schemathesis in a ledger cursor.
        EngineError("22P05", 400, "invalid_text", "That text holds a character that cannot be stored (NUL)."),
        EngineError("22021", 400, "invalid_text", "That text holds a character that cannot be stored (NUL)."),
    )
}


class DomainError(Exception):
    """A database refusal with a known SQLSTATE, carrying its EngineError and the database's message."""

    def __init__(self, error: EngineError, message: str) -> None:
        super().__init__(message)
        self.error = error
        self.message = message

    @property
    def code(self) -> str:
        return self.error.code

    @property
    def status(self) -> int:
        return self.error.status


def from_sqlstate(sqlstate: str | None, message: str) -> DomainError | None:
    """The DomainError for a known SQLSTATE (e.g. the ``code`` of a PostgREST error body), else None."""
    if sqlstate in ENGINE_ERRORS:
        return DomainError(ENGINE_ERRORS[sqlstate], message)
    return None


def translate(exc: BaseException) -> DomainError | None:
    """The DomainError for a Postgres error with a known SQLSTATE, or None for anything else."""
    if isinstance(exc, DomainError):
        return exc
    if isinstance(exc, asyncpg.PostgresError):
        return from_sqlstate(getattr(exc, "sqlstate", None), str(exc))
    return None
