"""Resume review matching: score every request-professional pair, solve the assignment optimally, book.

The database is the authority on time and on booking: ``admin_review_match_input``
returns each open request's and each available professional's free time in
UTC (weekly local times made into instants date by date, DST-correct), and
``admin_book_review`` books one pair through the exclusion constraints that
refuse any double booking. This module only decides who goes with whom:

1. **read**: one call to ``admin_review_match_input``.
2. **score**: for each pair, the earliest common slots of ``session_seconds``
   inside both sides' free time, and a score from six terms, each in 0..1 and
   weighted (``Weights``): specialty fit (share of the wanted specialties the
   professional covers), industry fit, slot (how early the first common slot
   is within the horizon), remaining capacity, rating, and how long the
   request has waited. A pair with no common slot, or covering none of the
   wanted specialties, is infeasible.
3. **solve**: ``scipy.optimize.linear_sum_assignment`` on a matrix whose
   columns are professionals repeated by their remaining capacity (capacity
   k = k columns). The objective is lexicographic: the most matches, then the
   highest total score (each feasible cell weighs ``big + score`` with
   ``big`` above any possible total score; infeasible cells weigh 0 and are
   dropped).
4. **book**: each pair's earliest common slot through ``admin_book_review``; on
   a conflict (XPRVC) the next common slot; a professional at capacity
   (XPRVK) drops that copy; requests left unbooked are re-matched with fresh
   free time, up to ``max_rounds``.

Each booked match keeps its score terms (``private.review_matches.terms``).
A dry run stops after scoring and solving and proposes each pair's first slot
that does not clash with the run's other proposals.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from xpbase.errors import DomainError
from xpbase.models.reviews import MatchInput, MatchProfessional, MatchRequest, Session

#: ``await call("sql_function_name", **params)``: an RPC as some role (e.g. Database.rpc bound to a role).
Call = Callable[..., Awaitable[Any]]

Interval = tuple[int, int]
#: At most this many candidate slots are kept per pair (the booking's fallbacks on conflict).
MAX_SLOTS = 8
#: Candidate starts are on this grid (seconds): quarter hours.
GRID = 900
#: A request waiting this long (seconds) gets the full wait term.
FULL_WAIT = 14 * 24 * 3600


@dataclass(frozen=True)
class Weights:
    """How much each score term (each in 0..1) counts."""

    specialty: float = 3.0
    industry: float = 1.0
    slot: float = 1.0
    capacity: float = 0.5
    rating: float = 1.0
    wait: float = 2.0

    @property
    def max_score(self) -> float:
        return self.specialty + self.industry + self.slot + self.capacity + self.rating + self.wait


@dataclass(frozen=True)
class Pair:
    """One feasible request-professional pair: its score, terms and candidate slot starts (Unix seconds)."""

    request_id: int
    professional_id: str
    score: float
    terms: dict[str, Any]
    starts: tuple[int, ...]


@dataclass
class Match:
    """A pair the solver chose, and what booking made of it."""

    request_id: int
    professional_id: str
    score: float
    terms: dict[str, Any]
    starts_at: int | None = None  # Unix seconds, UTC; the booked (or, in a dry run, proposed) slot
    session_id: int | None = None
    round: int = 1


@dataclass
class Report:
    """What one run did: matches (booked or proposed), the unmatched request ids and phase times (seconds)."""

    run_id: str
    dry_run: bool
    matches: list[Match] = field(default_factory=list)
    unmatched: list[int] = field(default_factory=list)
    conflicts: int = 0
    rounds: int = 0
    phases: dict[str, float] = field(
        default_factory=lambda: {"read": 0.0, "score": 0.0, "solve": 0.0, "book": 0.0}
    )

    @property
    def total_score(self) -> float:
        return sum(m.score for m in self.matches)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "total_score": self.total_score}


def intersect(a: Sequence[Sequence[int]], b: Sequence[Sequence[int]]) -> list[Interval]:
    """The intersection of two sorted lists of disjoint [start, end) intervals."""
    out: list[Interval] = []
    i = j = 0
    while i < len(a) and j < len(b):
        lo = max(a[i][0], b[j][0])
        hi = min(a[i][1], b[j][1])
        if lo < hi:
            out.append((lo, hi))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out


def slot_starts(common: Sequence[Interval], length: int, limit: int = MAX_SLOTS) -> list[int]:
    """Earliest starts (on the quarter-hour grid) of back-to-back ``length``-second slots in ``common``."""
    starts: list[int] = []
    for lo, hi in common:
        start = -(-lo // GRID) * GRID
        while start + length <= hi:
            starts.append(start)
            if len(starts) >= limit:
                return starts
            start += length
    return starts


def score_pair(
    request: MatchRequest, professional: MatchProfessional, data: MatchInput, weights: Weights
) -> Pair | None:
    """The pair's score and terms, or None when it is infeasible (no common slot, no wanted specialty)."""
    wanted = set(request.specialties)
    covered = len(wanted & set(professional.specialties))
    if wanted and covered == 0:
        return None
    starts = slot_starts(intersect(request.free, professional.free), data.session_seconds)
    if not starts:
        return None
    horizon = max(1, data.until - data.at)
    terms = {
        "specialty": covered / len(wanted) if wanted else 1.0,
        "industry": 1.0 if request.industry and request.industry in professional.industries else 0.0,
        "slot": max(0.0, 1.0 - (starts[0] - data.at) / horizon),
        "capacity": professional.remaining / professional.weekly_capacity
        if professional.weekly_capacity
        else 0.0,
        "rating": (float(professional.rating) - 1.0) / 4.0 if professional.rating is not None else 0.5,
        "wait": min(1.0, request.wait_seconds / FULL_WAIT),
    }
    score = sum(getattr(weights, name) * value for name, value in terms.items())
    return Pair(
        request.id,
        professional.id,
        score,
        {**terms, "weights": asdict(weights), "first_slot": starts[0]},
        tuple(starts),
    )


def score_all(data: MatchInput, weights: Weights) -> dict[tuple[int, str], Pair]:
    """Every feasible pair, keyed by (request id, professional id)."""
    pairs: dict[tuple[int, str], Pair] = {}
    for request in data.requests:
        for professional in data.professionals:
            pair = score_pair(request, professional, data, weights)
            if pair is not None:
                pairs[(request.id, professional.id)] = pair
    return pairs


def solve(
    request_ids: Sequence[int],
    columns: Sequence[str],
    pairs: dict[tuple[int, str], Pair],
    max_score: float,
) -> list[Pair]:
    """The optimal assignment: most pairs, then the highest total score; ``columns`` repeat per capacity."""
    if not request_ids or not columns or not pairs:
        return []
    big = (max_score + 1.0) * min(len(request_ids), len(columns))
    weight = np.zeros((len(request_ids), len(columns)))
    for i, rid in enumerate(request_ids):
        for j, pid in enumerate(columns):
            pair = pairs.get((rid, pid))
            if pair is not None:
                weight[i, j] = big + pair.score
    rows, cols = linear_sum_assignment(weight, maximize=True)
    return [pairs[(request_ids[i], columns[j])] for i, j in zip(rows, cols, strict=True) if weight[i, j] > 0]


def _clashes(start: int, length: int, taken: list[Interval]) -> bool:
    return any(start < hi and lo < start + length for lo, hi in taken)


async def run_matching(
    call: Call,
    *,
    horizon_days: int = 14,
    session_minutes: int = 45,
    dry_run: bool = False,
    weights: Weights | None = None,
    max_rounds: int = 3,
    actor_id: str | None = None,
    meeting_url: str | None = None,
) -> Report:
    """Match open review requests with professionals and (unless ``dry_run``) book them.

    ``call`` runs SQL functions as an admin or service_role. ``actor_id`` is
    the admin the backend acts for (recorded on each match), if any. Returns
    a Report; raises DomainError when the database refuses the caller
    (42501) or the arguments (XPBAD). Booking refusals are handled here.
    """
    weights = weights or Weights()
    report = Report(run_id=str(uuid.uuid4()), dry_run=dry_run)
    done: set[int] = set()
    for round_no in range(1, (1 if dry_run else max_rounds) + 1):
        t0 = time.perf_counter()
        raw = await call(
            "admin_review_match_input",
            horizon_days=horizon_days,
            session_minutes=session_minutes,
            actor_id=actor_id,
        )
        data = MatchInput.model_validate(raw)
        data = data.model_copy(update={"requests": [r for r in data.requests if r.id not in done]})
        t1 = time.perf_counter()
        pairs = score_all(data, weights)
        t2 = time.perf_counter()
        columns = [p.id for p in data.professionals for _ in range(max(0, p.remaining))]
        chosen = solve([r.id for r in data.requests], columns, pairs, weights.max_score)
        t3 = time.perf_counter()
        report.phases["read"] += t1 - t0
        report.phases["score"] += t2 - t1
        report.phases["solve"] += t3 - t2
        report.rounds = round_no
        booked = await _book(call, report, data, chosen, dry_run, round_no, actor_id, meeting_url)
        report.phases["book"] += time.perf_counter() - t3
        done.update(m.request_id for m in booked)
        if dry_run or not chosen or len(booked) == len(chosen):
            break
    matched = {m.request_id for m in report.matches}
    report.unmatched = [r.id for r in data.requests if r.id not in matched] if data else []
    return report


async def _book(
    call: Call,
    report: Report,
    data: MatchInput,
    chosen: list[Pair],
    dry_run: bool,
    round_no: int,
    actor_id: str | None,
    meeting_url: str | None,
) -> list[Match]:
    """Books (or proposes) each chosen pair, best first; returns those that got a slot."""
    length = data.session_seconds
    taken: dict[str, list[Interval]] = {}  # professional id -> slots given out in this run
    full: set[str] = set()
    member_of = {r.id: r.member_id for r in data.requests}
    member_taken: dict[str, list[Interval]] = {}
    out: list[Match] = []
    for pair in sorted(chosen, key=lambda p: (-p.score, p.request_id)):
        if pair.professional_id in full:
            continue
        member = member_of[pair.request_id]
        for start in pair.starts:
            if _clashes(start, length, taken.get(pair.professional_id, [])) or _clashes(
                start, length, member_taken.get(member, [])
            ):
                continue
            match = Match(
                pair.request_id, pair.professional_id, pair.score, pair.terms, start, None, round_no
            )
            if not dry_run:
                try:
                    session = await call(
                        "admin_book_review",
                        request_id=pair.request_id,
                        professional_id=pair.professional_id,
                        starts_at=_utc(start),
                        run_id=report.run_id,
                        score=pair.score,
                        terms=pair.terms,
                        session_minutes=length // 60,
                        meeting_url=meeting_url,
                        actor_id=actor_id,
                    )
                except DomainError as exc:
                    sqlstate = exc.error.sqlstate
                    if sqlstate == "XPRVC":
                        report.conflicts += 1
                        continue
                    if sqlstate == "XPRVK":
                        full.add(pair.professional_id)
                        break
                    if sqlstate in ("XPRVS", "XPRVQ", "XPRVP", "XPRVT"):
                        break
                    raise
                match.session_id = Session.model_validate(session).id
            taken.setdefault(pair.professional_id, []).append((start, start + length))
            member_taken.setdefault(member, []).append((start, start + length))
            report.matches.append(match)
            out.append(match)
            break
    return out


def _utc(epoch: int) -> Any:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(epoch, UTC)


def greedy(data: MatchInput, weights: Weights | None = None) -> list[Pair]:
    """First come, first served (the baseline in bench/matching.py): oldest request first takes the
    feasible professional with capacity left whose common slot is earliest; the same slots and scores."""
    weights = weights or Weights()
    pairs = score_all(data, weights)
    remaining = {p.id: p.remaining for p in data.professionals}
    out: list[Pair] = []
    for request in sorted(data.requests, key=lambda r: -r.wait_seconds):
        options = [
            pairs[(request.id, p.id)]
            for p in data.professionals
            if remaining[p.id] > 0 and (request.id, p.id) in pairs
        ]
        if options:
            best = min(options, key=lambda p: (p.starts[0], p.professional_id))
            remaining[best.professional_id] -= 1
            out.append(best)
    return out


async def match_reviews(
    database: Any, *, horizon_days: int = 14, session_minutes: int = 45, dry_run: bool = False
) -> Report:
    """The periodic job: match and book every open review request, as service_role (the backend itself).

    ``database`` is an xpbase.db.Database. Safe to run from several workers at
    once: a second booking of a slot is refused by the database (XPRVC) and
    booked requests are no longer open. Returns the run's Report.
    """

    async def call(function: str, /, **params: Any) -> Any:
        return await database.rpc(function, role="service_role", **params)

    return await run_matching(
        call, horizon_days=horizon_days, session_minutes=session_minutes, dry_run=dry_run
    )
