"""Resume reviews: the answers of supabase/sql/95_reviews.sql and 96_review_matching.sql.

Times are UTC: ISO text (``2026-11-21T04:33:10.000000Z``) in sessions and
requests, Unix seconds in the matcher's input. Local times are minutes after
local midnight in the named IANA time zone.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from pydantic import Field, RootModel

from xpbase.models import Result


class WeeklyInterval(Result):
    """[start_minute, end_minute) on an ISO weekday (1 Monday .. 7 Sunday), local time."""

    weekday: int = Field(ge=1, le=7)
    start_minute: int = Field(ge=0, le=1440)
    end_minute: int = Field(ge=0, le=1440)


class SessionMember(Result):
    id: UUID
    display_name: str
    time_zone: str


class SessionProfessional(Result):
    id: UUID
    name: str
    time_zone: str
    profile_id: UUID | None


class Session(Result):
    """One booked review (private.review_session_json); match_id only in admin_book_review's answer."""

    id: int
    request_id: int
    status: str
    starts_at: str
    ends_at: str
    meeting_url: str | None
    target_role: str
    member: SessionMember
    professional: SessionProfessional
    member_confirmed: bool
    professional_confirmed: bool
    match_id: int | None = None


class Request(Result):
    """One review request with its latest session (private.review_request_json)."""

    id: int
    member_id: UUID
    status: str
    target_role: str
    industry: str | None
    specialties: list[str]
    resume_url: str | None
    notes: str
    time_zone: str
    preferred_times: list[WeeklyInterval]
    created_at: str
    session: Session | None


class MyReviews(Result):
    requests: list[Request]
    reviewing: list[Session]


class Specialty(Result):
    """One active review specialty (review_specialty_list's elements)."""

    slug: str
    name: str


class Professional(Result):
    id: UUID
    profile_id: UUID | None
    name: str
    email: str | None
    specialties: list[str]
    industries: list[str]
    seniority: str
    languages: list[str]
    time_zone: str
    weekly_capacity: int
    active: bool
    rating: float | None
    ratings_count: int
    availability: list[WeeklyInterval]


class ImportResult(Result):
    created: int
    updated: int


class Feedback(Result):
    session_id: int
    side: str
    rating: int


class ReviewerStats(Result):
    professional_id: UUID
    name: str
    sessions_done: int
    no_shows: int
    no_show_rate: float | None
    mean_rating: float | None
    ratings_count: int
    median_seconds_to_first_slot: float | None


class CalendarToken(Result):
    token: str


class CalendarFeed(Result):
    profile_id: UUID
    sessions: list[Session]


class MatchRequest(Result):
    id: int
    member_id: str
    specialties: list[str]
    industry: str | None
    wait_seconds: int
    free: list[tuple[int, int]]


class MatchProfessional(Result):
    id: str
    specialties: list[str]
    industries: list[str]
    rating: float | None
    weekly_capacity: int
    remaining: int
    free: list[tuple[int, int]]


class MatchInput(Result):
    """admin_review_match_input: both sides' free time within the horizon, Unix seconds (UTC)."""

    at: int
    until: int
    session_seconds: int
    requests: list[MatchRequest]
    professionals: list[MatchProfessional]


class MatchRecord(Result):
    id: int
    run_id: UUID
    request_id: int
    professional_id: UUID
    score: float
    terms: dict[str, Any]
    starts_at: str
    ends_at: str
    actor_id: UUID | None
    actor_role: str
    created_at: str


class ReviewerStatsList(RootModel[list[ReviewerStats]]):
    """reviewer_stats: one entry per professional (for reading a raw answer; ``rpc.call`` gives a list of
    ReviewerStats)."""


class MatchRecords(RootModel[list[MatchRecord]]):
    """admin_review_matches: a request's match records, oldest first (for reading a raw answer;
    ``rpc.call`` gives a list of MatchRecord)."""


RESULTS = {
    "admin_upsert_professional": Professional,
    "set_review_availability": Professional,
    "admin_import_review_availability": ImportResult,
    "request_review": Request,
    "my_reviews": MyReviews,
    "review_action": Request,
    "review_feedback": Feedback,
    # jsonb arrays: xpbase.rpc.typed validates each element against the element's model.
    "reviewer_stats": ReviewerStats,
    "review_calendar_token": CalendarToken,
    "service_role_review_calendar_feed": CalendarFeed,
    "review_session": Session,
    "admin_review_match_input": MatchInput,
    "admin_book_review": Session,
    "admin_review_matches": MatchRecord,
    "review_specialty_list": Specialty,
}
