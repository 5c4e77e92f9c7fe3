"""Replay a Stack Exchange data dump through the XP engine.

Stack Exchange reputation is an XP system with a daily cap, and every user's
published ``Reputation`` is in ``Users.xml``: replaying ``Votes.xml`` through
``award_xp`` and comparing is a check of the engine on input nobody here wrote.

How a replay runs (one database session, everything as ``service_role``):

1. The rule pack ``supabase/rulepacks/stackexchange.sql`` is loaded into the
   engine's configuration (``se_*`` activity types, the ``se_reputation`` cap
   group of 200 per UTC day, the dated rate of question upvotes, floors of 1).
2. ``Users.xml``, ``Posts.xml`` and ``Votes.xml`` are streamed with
   ``iterparse`` (each element cleared once read, so memory does not grow with
   the dump) into temporary tables by binary ``COPY``. Any :class:`DumpSource`
   can stand for the folder: ``xpbase.replay.synthetic.SyntheticDump``
   generates a real dump's distribution scaled K times, for benchmarks.
3. Every user gets a profile through ``public.ensure_profile`` (provider
   ``stackexchange``, subject ``<site>:<UserId>``).
4. Each vote becomes zero, one or two awards (:data:`CANDIDATES_SQL`, the
   importer's translation of Stack Exchange events into activities: who is
   credited, and which votes carry no reputation). Amounts, the cap, the dated
   rate and the floor are decided by the engine alone.
5. The awards go, in order, all or the first ``max_awards`` (every
   account's starting point first, then votes by ``CreationDate``, then
   ``Id``, then role), through
   ``public.service_role_award_xp_batch``, which decides them with
   ``private.award_set``: the receipts ``private.award_xp`` gives one at a
   time, decided as a set where it can (issue 16). Each award's idempotency key is
   ``stackexchange:<site>:vote:<VoteId>:<role>`` (or
   ``stackexchange:<site>:user:<UserId>:start``), so a second replay credits
   nothing. Batches are built in the server from the staged plan
   (:data:`BATCH_SQL`), 2000 awards per transaction by default: the client
   holds no award, whatever the dump's size.
6. The report's figures are SQL aggregates over the database and the staged
   dump (:func:`collect_report`), among them, per badge of the rule pack, how
   many the engine awarded against ``Badges.xml`` (read when present). Each
   vote award names its post as its subject (``question:<PostId>``,
   ``answer:<PostId>``): the score badges add up a post's votes as they land.

The data is CC BY-SA (see the dump's README): the report links users to their
profiles on the site.
"""

from __future__ import annotations

import csv
import re
import time
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import asyncpg

from xpbase.db import connect, transaction_as

SITE_PATTERN = re.compile(r"^[a-z0-9][a-z0-9.-]{0,62}$")
DEFAULT_BATCH_SIZE = 2000
ASSOCIATION_BONUS = 100

VOTE_TYPES: dict[int, str] = {
    1: "accepted answer",
    2: "upvote",
    3: "downvote",
    4: "offensive",
    5: "favourite",
    6: "close",
    7: "reopen",
    8: "bounty start",
    9: "bounty close",
    10: "deletion",
    11: "undeletion",
    12: "spam",
    13: "moderator notification",
    15: "moderator review",
    16: "approved edit suggestion",
}

SKIP_REASONS: dict[str, str] = {
    "no_reputation": "vote type carries no reputation (or no voter/editor id in the dump)",
    "deleted_post": "post not in Posts.xml (deleted)",
    "not_question_or_answer": "post is not a question or an answer (tag wiki, ...)",
    "owner_unknown": "the user to credit is not in Users.xml (deleted account)",
    "community_wiki": "community-wiki post: no reputation",
    "self_accept": "accepting one's own answer: no reputation",
    "bounty_not_awarded": "bounty closed without an award (no BountyAmount)",
}


class DumpError(ValueError):
    """The folder is not a readable Stack Exchange dump (missing file, malformed row)."""


# ---------------------------------------------------------------------------
# Reading the dump
# ---------------------------------------------------------------------------


def site_from_dir(dump_dir: Path) -> str:
    """The site name of a dump folder: ``quantumcomputing``, or ``beer`` for ``beer.stackexchange.com``.

    Raises DumpError when the name cannot be a site name (lowercase letters,
    digits, dots and dashes).
    """
    name = dump_dir.resolve().name.lower()
    name = name.removesuffix(".7z").removesuffix(".stackexchange.com").removesuffix(".com")
    return check_site(name)


def check_site(site: str) -> str:
    """``site`` if it is a valid site name, else DumpError."""
    if not SITE_PATTERN.match(site):
        raise DumpError(f"not a site name: {site!r} (lowercase letters, digits, '.', '-'); pass --site")
    return site


def site_url(site: str) -> str:
    """The site's address: ``https://<site>.stackexchange.com``; ``https://<site>.com`` for a dotted name."""
    return f"https://{site}.com" if "." in site else f"https://{site}.stackexchange.com"


def _int(value: str | None) -> int | None:
    return int(value) if value not in (None, "") else None


def _when(value: str | None) -> datetime | None:
    # Dump dates are UTC without an offset: 2018-03-12T00:00:00.000
    return datetime.fromisoformat(value).replace(tzinfo=UTC) if value else None


def _user(a: dict[str, str]) -> tuple[Any, ...]:
    return (
        int(a["Id"]),
        int(a.get("Reputation", "1")),
        _when(a["CreationDate"]),
        a.get("DisplayName") or None,
    )


def _post(a: dict[str, str]) -> tuple[Any, ...]:
    return (
        int(a["Id"]),
        int(a["PostTypeId"]),
        _int(a.get("OwnerUserId")),
        _int(a.get("ParentId")),
        _when(a.get("CommunityOwnedDate")),
        _int(a.get("Score")),
    )


def _vote(a: dict[str, str]) -> tuple[Any, ...]:
    return (
        int(a["Id"]),
        _int(a.get("PostId")),
        int(a["VoteTypeId"]),
        _int(a.get("UserId")),
        _when(a["CreationDate"]),
        _int(a.get("BountyAmount")),
    )


def _badge(a: dict[str, str]) -> tuple[Any, ...]:
    return (int(a["Id"]), int(a["UserId"]), a["Name"], _when(a["Date"]), _int(a.get("Class")))


USER_COLUMNS = ("id", "reputation", "created_at", "display_name")
POST_COLUMNS = ("id", "post_type_id", "owner_user_id", "parent_id", "community_owned_at", "score")
VOTE_COLUMNS = ("id", "post_id", "vote_type_id", "user_id", "created_at", "bounty_amount")


@dataclass(frozen=True)
class DumpFile:
    """One file of the dump: its staging table, columns, row converter and the report's counter."""

    name: str
    table: str
    columns: tuple[str, ...]
    convert: Callable[[dict[str, str]], tuple[Any, ...]]
    counter: str


FILES = (
    DumpFile("Users.xml", "se_users", USER_COLUMNS, _user, "users_read"),
    DumpFile("Posts.xml", "se_posts", POST_COLUMNS, _post, "posts_read"),
    DumpFile("Votes.xml", "se_votes", VOTE_COLUMNS, _vote, "votes_read"),
)
#: Read when present: the badges Stack Exchange awarded, compared with the rule pack's badges.
BADGES_FILE = DumpFile(
    "Badges.xml", "se_badges", ("id", "user_id", "name", "awarded_at", "class"), _badge, "badges_read"
)


def iter_rows(
    path: Path,
    convert: Callable[[dict[str, str]], tuple[Any, ...]],
    on_bytes: Callable[[int], None] | None = None,
) -> Iterator[tuple[Any, ...]]:
    """Stream the ``<row .../>`` elements of a dump file as tuples made by ``convert``.

    Uses ``iterparse`` and clears every element once converted, so memory
    stays flat whatever the file size. ``on_bytes`` receives the byte offset
    read so far (for a progress bar). Raises DumpError naming the file and row
    for a malformed row or XML.
    """
    with path.open("rb") as f:
        context = ET.iterparse(f, events=("start", "end"))
        try:
            _, root = next(context)
            count = 0
            for event, elem in context:
                if event != "end" or elem.tag != "row":
                    continue
                try:
                    record = convert(elem.attrib)
                except (KeyError, ValueError) as exc:
                    raise DumpError(
                        f"{path.name}: row {count + 1} ({dict(elem.attrib)!r:.200}): {exc!r}"
                    ) from exc
                elem.clear()
                root.clear()
                count += 1
                if on_bytes is not None and count % 2000 == 0:
                    on_bytes(f.tell())
                yield record
        except ET.ParseError as exc:
            raise DumpError(f"{path.name}: {exc}") from exc
        if on_bytes is not None:
            on_bytes(f.tell())


class DumpSource(Protocol):
    """Where a replay reads its rows: a dump folder (:class:`XmlDump`) or a generator of the same rows
    (``xpbase.replay.synthetic.SyntheticDump``). Rows are tuples in the order of the file's ``columns``."""

    @property
    def site(self) -> str:
        """The default site name (idempotency keys, profile subjects, links)."""
        ...

    def check(self) -> None:
        """Raise DumpError when a required file (Users, Posts, Votes) is missing."""
        ...

    def size(self, file: DumpFile) -> int | None:
        """The progress total of ``file`` (bytes, rows, ...); None when the source has no such file."""
        ...

    def rows(self, file: DumpFile, on_progress: Callable[[int], None] | None) -> Iterator[tuple[Any, ...]]:
        """Stream ``file``'s rows; ``on_progress`` receives the progress so far in the units of ``size``."""
        ...


@dataclass(frozen=True)
class XmlDump:
    """A Stack Exchange dump folder on disk; its files are streamed with :func:`iter_rows`."""

    folder: Path

    @property
    def site(self) -> str:
        """The folder's site name (:func:`site_from_dir`)."""
        return site_from_dir(self.folder)

    def check(self) -> None:
        """DumpError when Users.xml, Posts.xml or Votes.xml is missing."""
        missing = [file.name for file in FILES if not (self.folder / file.name).is_file()]
        if missing:
            raise DumpError(
                f"{self.folder}: missing {', '.join(missing)} (a Stack Exchange dump folder holds them)"
            )

    def size(self, file: DumpFile) -> int | None:
        """The file's size in bytes; None when it is absent."""
        path = self.folder / file.name
        return path.stat().st_size if path.is_file() else None

    def rows(self, file: DumpFile, on_progress: Callable[[int], None] | None) -> Iterator[tuple[Any, ...]]:
        """The file's rows (:func:`iter_rows`); progress in bytes read."""
        return iter_rows(self.folder / file.name, file.convert, on_progress)


# ---------------------------------------------------------------------------
# SQL: staging, translation of votes into awards, report
# ---------------------------------------------------------------------------

STAGING_SQL = """
create temporary table se_users (
  id integer primary key, reputation integer not null, created_at timestamptz not null, display_name text
);
create temporary table se_posts (
  id integer primary key, post_type_id smallint not null, owner_user_id integer, parent_id integer,
  community_owned_at timestamptz, score integer
);
create temporary table se_votes (
  id bigint primary key, post_id integer, vote_type_id smallint not null, user_id integer,
  created_at timestamptz not null, bounty_amount integer
);
create temporary table se_badges (
  id bigint primary key, user_id integer not null, name text not null, awarded_at timestamptz not null,
  class smallint
);
create temporary table se_profiles (user_id integer primary key, profile_id uuid not null unique);
create temporary table se_candidates (
  vote_id bigint not null, occurred_at timestamptz not null, role_order smallint not null, role text not null,
  user_id integer, activity text, amount integer, skip text, subject text,
  primary key (vote_id, role_order)
);
create temporary table se_awards (
  seq bigint primary key, idempotency_key text not null, profile_id uuid not null, activity text not null,
  amount integer, occurred_at timestamptz not null, subject text
);
"""

PROFILES_SQL = """
insert into pg_temp.se_profiles (user_id, profile_id)
select u.id,
       public.ensure_profile('stackexchange', $1 || ':' || u.id, coalesce(u.display_name, 'user' || u.id))
  from pg_temp.se_users u
 where u.id > $2
 order by u.id
 limit $3
returning user_id
"""

# How Stack Exchange events become awards: one row per (vote, role), with the
# reason it is skipped (null: award it). Only who is credited for what is
# decided here; every amount, the cap, the dated rate and the floor are the
# engine's (the se_* rows of the rule pack).
CANDIDATES_SQL = """
insert into pg_temp.se_candidates
  (vote_id, occurred_at, role_order, role, user_id, activity, amount, skip, subject)
-- Upvotes and downvotes: the post's owner. The post is the award's subject (its running score is what the
-- score badges of the rule pack add up).
select v.id, v.created_at, 1, 'owner', p.owner_user_id,
       case when v.vote_type_id = 3 then 'se_post_downvoted'
            when p.post_type_id = 1 then 'se_question_upvoted'
            else 'se_answer_upvoted' end,
       null::integer,
       case when p.id is null then 'deleted_post'
            when p.post_type_id not in (1, 2) then 'not_question_or_answer'
            when p.community_owned_at is not null then 'community_wiki'
            when o.id is null then 'owner_unknown'
       end,
       case p.post_type_id when 1 then 'question:' when 2 then 'answer:' end || p.id
  from pg_temp.se_votes v
  left join pg_temp.se_posts p on p.id = v.post_id
  left join pg_temp.se_users o on o.id = p.owner_user_id
 where v.vote_type_id in (2, 3)
union all
-- Accepted answer: +15 to the answer's owner, unless they accepted it themselves.
select v.id, v.created_at, 1, 'answerer', a.owner_user_id, 'se_answer_accepted', null::integer,
       case when a.id is null then 'deleted_post'
            when a.post_type_id <> 2 then 'not_question_or_answer'
            when a.owner_user_id = q.owner_user_id then 'self_accept'
            when a.community_owned_at is not null then 'community_wiki'
            when o.id is null then 'owner_unknown'
       end,
       'answer:' || a.id
  from pg_temp.se_votes v
  left join pg_temp.se_posts a on a.id = v.post_id
  left join pg_temp.se_posts q on q.id = a.parent_id
  left join pg_temp.se_users o on o.id = a.owner_user_id
 where v.vote_type_id = 1
union all
-- Accepted answer: +2 to the question's owner, unless it is their own answer.
select v.id, v.created_at, 2, 'asker', q.owner_user_id, 'se_accepted_answer', null::integer,
       case when a.id is null or q.id is null then 'deleted_post'
            when a.post_type_id <> 2 then 'not_question_or_answer'
            when a.owner_user_id = q.owner_user_id then 'self_accept'
            when o.id is null then 'owner_unknown'
       end,
       'question:' || q.id
  from pg_temp.se_votes v
  left join pg_temp.se_posts a on a.id = v.post_id
  left join pg_temp.se_posts q on q.id = a.parent_id
  left join pg_temp.se_users o on o.id = q.owner_user_id
 where v.vote_type_id = 1
union all
-- Bounty start: the starter (the vote's UserId) pays the amount. A deleted
-- question's bounty is refunded, so votes on absent posts are skipped.
select v.id, v.created_at, 1, 'starter', v.user_id, 'se_bounty_started', -v.bounty_amount,
       case when p.id is null then 'deleted_post'
            when v.bounty_amount is null then 'bounty_not_awarded'
            when o.id is null then 'owner_unknown'
       end,
       'question:' || p.id
  from pg_temp.se_votes v
  left join pg_temp.se_posts p on p.id = v.post_id
  left join pg_temp.se_users o on o.id = v.user_id
 where v.vote_type_id = 8
union all
-- Bounty close: the owner of the awarded answer receives the amount (also on
-- community-wiki answers). Without an amount the bounty ended unawarded.
select v.id, v.created_at, 1, 'answerer', p.owner_user_id, 'se_bounty_awarded', v.bounty_amount,
       case when v.bounty_amount is null then 'bounty_not_awarded'
            when p.id is null then 'deleted_post'
            when p.post_type_id not in (1, 2) then 'not_question_or_answer'
            when o.id is null then 'owner_unknown'
       end,
       case p.post_type_id when 1 then 'question:' when 2 then 'answer:' end || p.id
  from pg_temp.se_votes v
  left join pg_temp.se_posts p on p.id = v.post_id
  left join pg_temp.se_users o on o.id = p.owner_user_id
 where v.vote_type_id = 9
union all
-- Every other vote type: read, counted, no reputation.
select v.id, v.created_at, 1, 'none', null::integer, null::text, null::integer, 'no_reputation', null::text
  from pg_temp.se_votes v
 where v.vote_type_id not in (1, 2, 3, 8, 9)
"""

# Awards in replay order: every account's starting point (by creation), then
# the votes by CreationDate, Id and role.
AWARDS_SQL = """
insert into pg_temp.se_awards (seq, idempotency_key, profile_id, activity, amount, occurred_at, subject)
select row_number() over (order by x.phase, x.occurred_at, x.source_id, x.role_order),
       'stackexchange:' || $1 || ':' || x.kind || ':' || x.source_id || ':' || x.role,
       sp.profile_id, x.activity, x.amount, x.occurred_at, x.subject
  from (
    select 0 as phase, 'user' as kind, u.id::bigint as source_id, 0::smallint as role_order,
           'start' as role, u.id as user_id, 'se_account_created' as activity, null::integer as amount,
           u.created_at as occurred_at, null::text as subject
      from pg_temp.se_users u
    union all
    select 1, 'vote', c.vote_id, c.role_order, c.role, c.user_id, c.activity, c.amount, c.occurred_at,
           c.subject
      from pg_temp.se_candidates c
     where c.skip is null
  ) x
  join pg_temp.se_profiles sp on sp.user_id = x.user_id
"""

BATCH_SQL = """
select count(*) as awards,
       count(*) filter (where r.replayed) as replayed,
       coalesce(sum(r.granted) filter (where not r.replayed), 0) as granted,
       count(*) filter (where r.capped and not r.replayed) as capped,
       count(*) filter (where r.floored and not r.replayed) as floored,
       -- evaluated once the aggregate has consumed the batch: the statement's time in the server, seconds
       extract(epoch from clock_timestamp() - statement_timestamp())::float8 as server_seconds
  from public.service_role_award_xp_batch((
    select coalesce(jsonb_agg(jsonb_build_object(
             'profile_id', a.profile_id, 'activity', a.activity, 'idempotency_key', a.idempotency_key,
             'amount', a.amount, 'occurred_at', a.occurred_at,
             'context', jsonb_strip_nulls(jsonb_build_object('subject', a.subject)))
           order by a.seq), '[]'::jsonb)
      from pg_temp.se_awards a
     where a.seq > $1 and a.seq <= $2
  )) r
"""

REPORT_SQL: dict[str, str] = {
    "votes_by_type": """
        select v.vote_type_id, count(*) as votes from pg_temp.se_votes v group by 1 order by 1
    """,
    "outcomes": """
        select coalesce(x.skip, 'applied') as outcome, count(*) as votes
          from (select c.vote_id,
                       case when bool_or(c.skip is null) then null
                            else (array_agg(c.skip order by c.role_order))[1] end as skip
                  from pg_temp.se_candidates c group by c.vote_id) x
         group by 1 order by 2 desc, 1
    """,
    "activities": """
        select l.activity_slug as activity, count(*) as awards, sum(l.amount) as xp,
               count(*) filter (where (l.receipt ->> 'capped')::boolean) as capped,
               count(*) filter (where (l.receipt ->> 'floored')::boolean) as floored
          from public.xp_ledger l join pg_temp.se_profiles sp on sp.profile_id = l.profile_id
         group by 1 order by 1
    """,
    "levels": """
        select p.level, p.tier, t.name as tier_name, count(*) as members
          from public.profiles p
          join pg_temp.se_profiles sp on sp.profile_id = p.id
          left join public.tiers t on t.slug = p.tier
         group by 1, 2, 3 order by 1
    """,
    "seasons": """
        select s.name as season, s.starts_at, x.rank, x.user_id, x.display_name, x.xp
          from (select ss.season_id, sp.user_id, u.display_name, ss.xp,
                       row_number() over (partition by ss.season_id
                                          order by ss.xp desc, ss.reached_at, sp.user_id) as rank
                  from public.season_scores ss
                  join pg_temp.se_profiles sp on sp.profile_id = ss.profile_id
                  join pg_temp.se_users u on u.id = sp.user_id
                 where ss.xp > 0) x
          join public.seasons s on s.id = x.season_id
         where x.rank <= 5
         order by s.starts_at, s.layer_slug, x.rank
    """,
    "streaks": """
        with days as (
          select distinct l.profile_id, (l.occurred_at at time zone 'UTC')::date as day
            from public.xp_ledger l join pg_temp.se_profiles sp on sp.profile_id = l.profile_id
           where l.amount > 0
        ), runs as (
          select d.profile_id, d.day,
                 d.day - (row_number() over (partition by d.profile_id order by d.day))::integer as run
            from days d
        )
        select sp.user_id, u.display_name, count(*) as days, min(r.day) as first_day, max(r.day) as last_day
          from runs r
          join pg_temp.se_profiles sp on sp.profile_id = r.profile_id
          join pg_temp.se_users u on u.id = sp.user_id
         group by r.profile_id, r.run, sp.user_id, u.display_name
         order by days desc, first_day, sp.user_id
         limit $1
    """,
    "agreement": """
        with r as (
          select u.id, u.reputation as published, coalesce(sum(l.amount), 0) as xp
            from pg_temp.se_users u
            join pg_temp.se_profiles sp on sp.user_id = u.id
            left join public.xp_ledger l on l.profile_id = sp.profile_id
           where u.reputation > 1
           group by u.id, u.reputation
        )
        select count(*) as users,
               count(*) filter (where xp = published) as exact_no_bonus,
               count(*) filter (where xp = published or xp + $1 = published) as exact,
               count(*) filter (where abs(xp - published) <= 0.05 * published) as within_5_no_bonus,
               count(*) filter (
                 where least(abs(xp - published), abs(xp + $1 - published)) <= 0.05 * published
               ) as within_5
          from r
    """,
    "differences": """
        with r as (
          select u.id, u.display_name, u.reputation as published, coalesce(sum(l.amount), 0) as xp
            from pg_temp.se_users u
            join pg_temp.se_profiles sp on sp.user_id = u.id
            left join public.xp_ledger l on l.profile_id = sp.profile_id
           where u.reputation > 1
           group by u.id, u.display_name, u.reputation
        )
        select id as user_id, display_name, published, xp,
               case when abs(xp + $1 - published) < abs(xp - published) then $1 else 0 end as bonus
          from r
         where xp <> published and xp + $1 <> published
         order by least(abs(xp - published), abs(xp + $1 - published)) desc, id
         limit $2
    """,
    "scores": """
        with v as (
          select v.post_id,
                 count(*) filter (where v.vote_type_id = 2) as up,
                 count(*) filter (where v.vote_type_id = 3) as down
            from pg_temp.se_votes v where v.vote_type_id in (2, 3) group by v.post_id
        )
        select count(*) as posts,
               count(*) filter (where p.score = coalesce(v.up, 0) - coalesce(v.down, 0)) as matching
          from pg_temp.se_posts p left join v on v.post_id = p.id
         where p.post_type_id in (1, 2)
    """,
    "score_mismatches": """
        with v as (
          select v.post_id,
                 count(*) filter (where v.vote_type_id = 2) as up,
                 count(*) filter (where v.vote_type_id = 3) as down
            from pg_temp.se_votes v where v.vote_type_id in (2, 3) group by v.post_id
        )
        select p.id as post_id, p.score, coalesce(v.up, 0) as up, coalesce(v.down, 0) as down
          from pg_temp.se_posts p left join v on v.post_id = p.id
         where p.post_type_id in (1, 2) and p.score is distinct from coalesce(v.up, 0) - coalesce(v.down, 0)
         order by p.id
         limit $1
    """,
    # Per badge of the rule pack: how many the engine awarded to the site's users, how many Badges.xml
    # holds for users in Users.xml, and (score badges) how many posts absent from Posts.xml (deleted, so
    # neither owner nor type is known) reached the threshold on their votes.
    "badges": """
        with deleted as (
          select x.post_id, max(x.score) as best
            from (select v.post_id,
                         sum(case v.vote_type_id when 2 then 1 else -1 end)
                           over (partition by v.post_id order by v.created_at, v.id) as score
                    from pg_temp.se_votes v
                   where v.vote_type_id in (2, 3)
                     and not exists (select 1 from pg_temp.se_posts p where p.id = v.post_id)) x
           group by x.post_id
        )
        select b.slug, b.name, b.level, b.kind, b.threshold,
               (select count(*) from public.badge_awards a
                  join pg_temp.se_profiles sp on sp.profile_id = a.profile_id
                 where a.badge_slug = b.slug) as engine,
               (select count(*) from pg_temp.se_badges d
                  join pg_temp.se_users u on u.id = d.user_id
                 where d.name = b.name) as dump,
               case when b.kind = 'subject_sum' and b.once_per = 'subject'
                    then (select count(*) from deleted d where d.best >= b.threshold) end as deleted_posts
          from public.badges b
         where b.slug like 'se\\_%' and b.active
         order by b.position, b.slug
    """,
    "rule_pack": """
        select a.slug, a.base_xp, a.min_xp, a.max_xp, a.cap_group, c.daily_cap, c.time_zone, a.xp_floor,
               coalesce((select jsonb_agg(jsonb_build_object('from', r.effective_from, 'xp', r.base_xp)
                                          order by r.effective_from)
                           from public.activity_rates r where r.activity_slug = a.slug), '[]'::jsonb) as rates
          from public.activity_types a left join public.cap_groups c on c.slug = a.cap_group
         where a.slug like 'se\\_%'
         order by a.slug
    """,
    "csv": """
        select u.id as se_user_id, u.reputation as published_reputation,
               coalesce((select sum(l.amount) from public.xp_ledger l where l.profile_id = sp.profile_id), 0)
                 as xp,
               p.level, p.tier
          from pg_temp.se_users u
          join pg_temp.se_profiles sp on sp.user_id = u.id
          join public.profiles p on p.id = sp.profile_id
         order by u.id
    """,
}

# ---------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------


@dataclass
class Agreement:
    """Replayed XP against published Reputation, for users with Reputation > 1 (counts of users)."""

    users: int
    exact: int
    within_5: int
    exact_no_bonus: int
    within_5_no_bonus: int

    def share(self, count: int) -> float:
        """``count`` as a fraction of ``users`` (0.0 when there are none)."""
        return count / self.users if self.users else 0.0


@dataclass
class ScoreCheck:
    """Posts (questions and answers) whose Score equals upvotes minus downvotes in Votes.xml."""

    posts: int
    matching: int
    mismatches: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Every post's Score matched its votes."""
        return self.posts == self.matching


@dataclass
class BadgeCount:
    """One badge of the rule pack: awarded by the engine against Badges.xml (None without the file)."""

    slug: str
    name: str
    level: str
    engine: int
    dump: int | None
    deleted_posts: int | None
    """Posts absent from Posts.xml (deleted) whose votes reach the threshold: badges no replay can find."""

    @property
    def difference(self) -> float | None:
        """(engine - dump) / dump; None without Badges.xml, 0.0 when both are 0."""
        if self.dump is None:
            return None
        if self.dump == 0:
            return 0.0 if self.engine == 0 else float("inf")
        return (self.engine - self.dump) / self.dump


@dataclass
class ReplayReport:
    """Everything ``xpbase replay stackexchange`` prints. XP and reputation are integers; times in seconds."""

    site: str
    site_url: str
    users_read: int = 0
    posts_read: int = 0
    votes_read: int = 0
    badges_read: int | None = None
    votes_by_type: dict[int, int] = field(default_factory=dict)
    outcomes: dict[str, int] = field(default_factory=dict)
    awards: int = 0
    awards_replayed: int = 0
    awards_planned: int = 0
    """Awards the dump translates to; ``awards`` is fewer when the replay was capped (``max_awards``)."""
    xp_granted: int = 0
    capped: int = 0
    floored: int = 0
    read_seconds: float = 0.0
    replay_seconds: float = 0.0
    server_seconds: float = 0.0
    """The batch statements' time in the server, summed (see ProgressSink.batch)."""
    wall_seconds: float = 0.0
    activities: list[dict[str, Any]] = field(default_factory=list)
    levels: list[dict[str, Any]] = field(default_factory=list)
    seasons: list[dict[str, Any]] = field(default_factory=list)
    streaks: list[dict[str, Any]] = field(default_factory=list)
    agreement: Agreement | None = None
    differences: list[dict[str, Any]] = field(default_factory=list)
    scores: ScoreCheck | None = None
    rule_pack: list[dict[str, Any]] = field(default_factory=list)
    badges: list[BadgeCount] = field(default_factory=list)
    csv_rows: int | None = None

    @property
    def votes_applied(self) -> int:
        """Votes that changed reputation (outcome ``applied``)."""
        return self.outcomes.get("applied", 0)

    @property
    def votes_skipped(self) -> int:
        """Votes read but not applied (``votes_read - votes_applied``, whatever the outcome)."""
        return self.votes_read - self.votes_applied

    @property
    def events_per_second(self) -> float:
        """Votes read per second of wall time (the whole command: reading, staging, replay, report)."""
        return self.votes_read / self.wall_seconds if self.wall_seconds else 0.0

    @property
    def awards_per_second(self) -> float:
        """Awards decided by the engine per second of the replay phase."""
        return self.awards / self.replay_seconds if self.replay_seconds else 0.0


class ProgressSink:
    """Receives progress: a rich Progress adapter, or nothing (tests, scripts)."""

    def start(self, name: str, total: int | None) -> None:
        """A new phase called ``name`` with ``total`` steps (None: unknown)."""

    def update(self, name: str, completed: int) -> None:
        """``completed`` steps of phase ``name`` are done."""

    def batch(self, done: int, server_seconds: float) -> None:
        """A batch of awards is committed: ``done`` awards so far; the batch statement took ``server_seconds``
        in the server (from its start to the end of its aggregate, before the commit)."""


# ---------------------------------------------------------------------------
# The replay
# ---------------------------------------------------------------------------


def rule_pack_path(supabase_dir: Path) -> Path:
    """The Stack Exchange rule pack file in a supabase folder."""
    return supabase_dir / "rulepacks" / "stackexchange.sql"


async def load_rule_pack(conn: asyncpg.Connection, supabase_dir: Path) -> None:
    """Load the Stack Exchange rule pack (idempotent; edits already made to its rows are kept)."""
    async with transaction_as(conn, "service_role"):
        await conn.execute(rule_pack_path(supabase_dir).read_text(encoding="utf-8"))


async def stage_dump(
    conn: asyncpg.Connection, source: DumpSource, report: ReplayReport, progress: ProgressSink
) -> None:
    """Create the session's staging tables and COPY the source's files into them (streamed: asyncpg sends
    the rows as the iterator yields them, so the client holds no file)."""
    source.check()
    async with transaction_as(conn, "service_role"):
        await conn.execute(STAGING_SQL)
    for file in (*FILES, BADGES_FILE):
        size = source.size(file)
        if file is BADGES_FILE and size is None:
            continue
        progress.start(file.name, size)
        async with transaction_as(conn, "service_role"):
            status = await conn.copy_records_to_table(
                file.table,
                schema_name="pg_temp",
                columns=list(file.columns),
                records=source.rows(file, lambda done, name=file.name: progress.update(name, done)),
            )
        setattr(report, file.counter, int(status.split()[-1]))  # "COPY <rows>"
    async with transaction_as(conn, "service_role"):
        await conn.execute(
            "analyze pg_temp.se_users; analyze pg_temp.se_posts; analyze pg_temp.se_votes;"
            " analyze pg_temp.se_badges"
        )


async def ensure_profiles(
    conn: asyncpg.Connection, site: str, report: ReplayReport, progress: ProgressSink, chunk: int = 5000
) -> None:
    """A profile per user via public.ensure_profile (provider stackexchange, subject <site>:<UserId>)."""
    progress.start("profiles", report.users_read)
    last, done = -(2**31), 0
    while True:
        async with transaction_as(conn, "service_role"):
            ids = [r["user_id"] for r in await conn.fetch(PROFILES_SQL, site, last, chunk)]
        if not ids:
            break
        last, done = max(ids), done + len(ids)
        progress.update("profiles", done)


async def plan_awards(conn: asyncpg.Connection, site: str) -> int:
    """Translate the staged votes into ordered awards; returns how many."""
    async with transaction_as(conn, "service_role"):
        await conn.execute(CANDIDATES_SQL)
        await conn.execute(AWARDS_SQL, site)
        await conn.execute("analyze pg_temp.se_candidates; analyze pg_temp.se_awards")
        return int(await conn.fetchval("select count(*) from pg_temp.se_awards"))


async def run_awards(
    conn: asyncpg.Connection, total: int, report: ReplayReport, progress: ProgressSink, batch_size: int
) -> None:
    """Send the planned awards through public.service_role_award_xp_batch, one transaction per batch."""
    progress.start("awards", total)
    done = 0
    while done < total:
        async with transaction_as(conn, "service_role"):
            row = await conn.fetchrow(BATCH_SQL, done, min(done + batch_size, total))
        done = min(done + batch_size, total)
        report.server_seconds += row["server_seconds"]
        report.awards += row["awards"]
        report.awards_replayed += row["replayed"]
        report.xp_granted += row["granted"]
        report.capped += row["capped"]
        report.floored += row["floored"]
        progress.update("awards", done)
        progress.batch(done, row["server_seconds"])


async def collect_report(
    conn: asyncpg.Connection, report: ReplayReport, *, top: int = 10, report_csv: Path | None = None
) -> None:
    """Fill the report's figures from SQL aggregates; write the CSV when asked."""
    async with transaction_as(conn, "service_role"):
        q = REPORT_SQL
        report.votes_by_type = {r["vote_type_id"]: r["votes"] for r in await conn.fetch(q["votes_by_type"])}
        report.outcomes = {r["outcome"]: r["votes"] for r in await conn.fetch(q["outcomes"])}
        report.activities = [dict(r) for r in await conn.fetch(q["activities"])]
        report.levels = [dict(r) for r in await conn.fetch(q["levels"])]
        report.seasons = [dict(r) for r in await conn.fetch(q["seasons"])]
        report.streaks = [dict(r) for r in await conn.fetch(q["streaks"], top)]
        report.agreement = Agreement(**dict(await conn.fetchrow(q["agreement"], ASSOCIATION_BONUS)))
        report.differences = [dict(r) for r in await conn.fetch(q["differences"], ASSOCIATION_BONUS, top)]
        scores = await conn.fetchrow(q["scores"])
        report.scores = ScoreCheck(
            scores["posts"],
            scores["matching"],
            [dict(r) for r in await conn.fetch(q["score_mismatches"], top)],
        )
        report.rule_pack = [dict(r) for r in await conn.fetch(q["rule_pack"])]
        report.badges = [
            BadgeCount(
                r["slug"],
                r["name"],
                r["level"],
                r["engine"],
                r["dump"] if report.badges_read is not None else None,
                r["deleted_posts"],
            )
            for r in await conn.fetch(q["badges"])
        ]
        if report_csv is not None:
            # Streamed through a cursor: the client holds CSV_BATCH users at a time, whatever the dump.
            report.csv_rows = await write_csv(report_csv, conn.cursor(q["csv"], prefetch=CSV_BATCH))


CSV_HEADER = ("se_user_id", "published_reputation", "xp", "level", "tier")
CSV_BATCH = 5000


async def write_csv(path: Path, rows: AsyncIterable[Mapping[str, Any]]) -> int:
    """Write the CSV: one row per user, header :data:`CSV_HEADER`; returns the rows written.

    ``xp`` is the replayed reputation: the ledger sum including the starting
    point, without any association bonus.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(CSV_HEADER)
        async for row in rows:
            writer.writerow([row[c] for c in CSV_HEADER])
            written += 1
    return written


async def replay(
    url: str,
    dump: Path | DumpSource,
    supabase_dir: Path,
    *,
    site: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    report_csv: Path | None = None,
    progress: ProgressSink | None = None,
    max_awards: int | None = None,
    figures: bool = True,
) -> ReplayReport:
    """Replay ``dump`` (a dump folder, or a DumpSource such as a synthetic dump) into the (migrated)
    database at ``url``; returns the report.

    ``site`` defaults to the source's (a folder's name: :func:`site_from_dir`). Safe to run
    again: every award has a stable idempotency key, so a second run credits
    nothing and reports its awards as replayed. ``max_awards``: replay only the
    first that many awards of the plan (in replay order); ``figures=False``
    skips the report's SQL aggregates (agreement, levels, badges...: for
    benchmarks). Raises DumpError for a folder that is not a dump,
    ValueError for a batch size outside 1-10000 or a negative ``max_awards``,
    xpbase.errors.DomainError when the engine refuses an award (e.g. XPAMT for
    a bounty outside the rule pack's range).
    """
    if batch_size < 1 or batch_size > 10000:
        raise ValueError("batch_size must be 1 to 10000")
    if max_awards is not None and max_awards < 0:
        raise ValueError("max_awards must be 0 or more")
    source = XmlDump(dump) if isinstance(dump, Path) else dump
    site = check_site(site) if site else source.site
    sink = progress or ProgressSink()
    report = ReplayReport(site=site, site_url=site_url(site))
    started = time.perf_counter()
    conn = await connect(url)
    try:
        await load_rule_pack(conn, supabase_dir)
        await stage_dump(conn, source, report, sink)
        await ensure_profiles(conn, site, report, sink)
        report.awards_planned = await plan_awards(conn, site)
        total = report.awards_planned if max_awards is None else min(report.awards_planned, max_awards)
        report.read_seconds = time.perf_counter() - started
        replay_started = time.perf_counter()
        await run_awards(conn, total, report, sink, batch_size)
        report.replay_seconds = time.perf_counter() - replay_started
        if figures:
            await collect_report(conn, report, report_csv=report_csv)
    finally:
        await conn.close()
    report.wall_seconds = time.perf_counter() - started
    return report
