-- The ledger's AFTER INSERT triggers _700_activity_feed and _800_badges become statement triggers with a
-- transition table (issue 16 item 1, throughput): a batch written by private.award_set in one INSERT costs a
-- few statements instead of two trigger calls per row. The results are what the row triggers gave: the feed
-- rows in ledger id order; badges decided as of each row with the ledger as that row found it
-- (private.badge_met gains p_as_written: rows written before it only), granted at the first row that meets
-- them, in (ledger id, position, slug) order, by one call of the new private.grant_badges (one INSERT into
-- badge_awards, one into notifications), which private.grant_badge now calls with one element.
--
-- Written by `xpbase migration new` from the feature files in supabase/sql/:
-- the function and trigger definitions that changed since the last migration.
-- Edit the feature files, not this file; landed migrations never change.
-- Changed:
--   function private.badge_met(public.badges, public.xp_ledger, bool)
--   function private.grant_badges(public.badges[], uuid[], text[], timestamptz[], int8[], int8[], text)
--   function private.grant_badge(public.badges, uuid, text, timestamptz, int8, int8, text)
--   function private.tg_xp_ledger__badges()
--   trigger public.xp_ledger._800_badges
--   function private.tg_xp_ledger__activity_feed()
--   trigger public.xp_ledger._700_activity_feed
--   function private.import_members(text, text, text, jsonb, bool)
--   drop function private.badge_met(public.badges, public.xp_ledger)

-- No longer in the feature files.
drop function if exists private.badge_met(public.badges, public.xp_ledger);

-- from supabase/sql/33_badges.sql -------------------------------------------

------------------------------------------------------------------------------
-- The rule check
------------------------------------------------------------------------------
create or replace function private.badge_met(
  p_badge public.badges,
  p_row public.xp_ledger,
  p_as_written boolean default false
)
returns boolean
language plpgsql
stable
security definer
set search_path = ''
as $$
-- Whether the rule holds as of p_row: the ledger rows of p_row's member up to (occurred_at, id) of p_row;
-- with p_as_written, only those written before p_row too (id <= p_row.id): the ledger as p_row found it, what
-- the live trigger decides on (a later row of the same statement is not seen, even when dated earlier).
-- The caller has checked the filters (activities, subject_prefix) on p_row itself.
declare
  v_count bigint;
  v_sum numeric;
  v_zone text;
  v_day date;
begin
  case p_badge.kind
  when 'total_xp' then
    return (p_row.receipt ->> 'total_xp')::bigint >= p_badge.threshold;
  when 'level' then
    return (p_row.receipt ->> 'level')::integer >= p_badge.threshold;
  when 'tier' then
    return (select t.min_level from public.tiers t where t.slug = p_row.receipt ->> 'tier')
           >= (select t.min_level from public.tiers t where t.slug = p_badge.tier_slug);
  when 'layer_status' then
    return exists (
      select 1 from jsonb_array_elements(coalesce(p_row.receipt -> 'layers', '[]')) e
        join public.layer_statuses s on s.layer_slug = p_badge.layer_slug and s.slug = p_badge.status_slug
       where e ->> 'layer' = p_badge.layer_slug and (e ->> 'xp')::bigint >= s.min_xp);
  when 'first_time' then
    return p_row.amount > 0;
  when 'activity_count' then
    select count(*) into v_count
      from public.xp_ledger l
     where l.profile_id = p_row.profile_id and l.amount > 0
       and (p_badge.activities is null or l.activity_slug = any (p_badge.activities))
       and (p_badge.subject_prefix is null or starts_with(l.subject, p_badge.subject_prefix))
       and (l.occurred_at, l.id) <= (p_row.occurred_at, p_row.id)
       and (not p_as_written or l.id <= p_row.id)
       and (p_badge.window_seconds is null
            or l.occurred_at > p_row.occurred_at - make_interval(secs => p_badge.window_seconds));
    return v_count >= p_badge.threshold;
  when 'streak' then
    -- threshold consecutive local days (the member's time zone) ending on p_row's day.
    select coalesce(p.time_zone, 'UTC') into v_zone from public.profiles p where p.id = p_row.profile_id;
    v_day := (p_row.occurred_at at time zone v_zone)::date;
    select count(distinct (l.occurred_at at time zone v_zone)::date) into v_count
      from public.xp_ledger l
     where l.profile_id = p_row.profile_id and l.amount > 0
       and (p_badge.activities is null or l.activity_slug = any (p_badge.activities))
       and (l.occurred_at, l.id) <= (p_row.occurred_at, p_row.id)
       and (not p_as_written or l.id <= p_row.id)
       -- The local days v_day - threshold + 1 .. v_day, with a day of margin either side for the zone.
       and l.occurred_at >= (v_day - p_badge.threshold::integer)::timestamp at time zone 'UTC'
       and (l.occurred_at at time zone v_zone)::date between v_day - p_badge.threshold::integer + 1 and v_day;
    return v_count >= p_badge.threshold;
  when 'subject_sum' then
    if p_row.subject is null then
      return false;
    end if;
    select coalesce(sum(case when p_badge.weights is null then l.amount
                             else coalesce((p_badge.weights ->> l.activity_slug)::numeric, 0) end), 0)
      into v_sum
      from public.xp_ledger l
     where l.profile_id = p_row.profile_id and l.subject = p_row.subject
       and (p_badge.activities is null or l.activity_slug = any (p_badge.activities))
       and (l.occurred_at, l.id) <= (p_row.occurred_at, p_row.id)
       and (not p_as_written or l.id <= p_row.id);
    return v_sum >= p_badge.threshold;
  else
    return false;  -- season_placing is decided on season_results
  end case;
end
$$;

comment on function private.badge_met(public.badges, public.xp_ledger, boolean) is
  'Whether badge p_badge''s rule holds for p_row''s member as of p_row (ledger rows up to its occurred_at, id; '
  'with p_as_written only those written before it, id <= p_row.id, as the live trigger sees them). '
  'Thresholds read p_row''s receipt (total_xp, level, tier, layers); counts, streaks and subject sums read the '
  'ledger through its indexes.';

revoke all on function private.badge_met(public.badges, public.xp_ledger, boolean) from public;

create or replace function private.grant_badges(
  p_badges public.badges[],
  p_profile_ids uuid[],
  p_subjects text[],
  p_awarded_at timestamptz[],
  p_ledger_ids bigint[],
  p_season_ids bigint[],
  p_source text
)
returns setof bigint
language sql
volatile
security definer
set search_path = ''
as $$
  -- One INSERT for the awards, in array order (their ids in that order), and one for their notifications, in
  -- badge_awards id order: what one call per element in array order writes.
  with granted as (
    insert into public.badge_awards (badge_slug, profile_id, subject, level, awarded_at, ledger_id, season_id,
                                     source)
    select (p_badges[i]).slug, p_profile_ids[i],
           case when (p_badges[i]).once_per = 'subject' then coalesce(p_subjects[i], '') else '' end,
           (p_badges[i]).level, p_awarded_at[i], p_ledger_ids[i], p_season_ids[i], p_source
      from generate_subscripts(p_badges, 1) as i
     order by i
    on conflict (badge_slug, profile_id, subject) do nothing
    returning id, badge_slug, profile_id, subject, ledger_id
  ), notified as (
    insert into public.notifications (profile_id, kind, title, body, data)
    select a.profile_id, 'badge_awarded', 'Badge earned: ' || (b.badge).name, (b.badge).description,
           jsonb_build_object('badge', a.badge_slug, 'name', (b.badge).name, 'level', (b.badge).level,
                              'subject', case when (b.badge).once_per = 'subject' then nullif(a.subject, '') end,
                              'badge_award_id', a.id, 'ledger_id', a.ledger_id,
                              'retroactive', p_source = 'retroactive')
      from granted a
      join (select distinct on ((p_badges[i]).slug) p_badges[i] as badge
              from generate_subscripts(p_badges, 1) as i) b on (b.badge).slug = a.badge_slug
     order by a.id
  )
  select a.id from granted a order by a.id
$$;

comment on function private.grant_badges(public.badges[], uuid[], text[], timestamptz[], bigint[], bigint[], text) is
  'Records badges for members, element i of the arrays being one award: p_badges[i] for p_profile_ids[i] '
  '(per subject p_subjects[i] when the badge is once per subject; its notification''s subject is null for an '
  'empty one), awarded at p_awarded_at[i] for ledger row p_ledger_ids[i] or season p_season_ids[i]; p_source '
  'live or retroactive. In array order, each with a badge_awarded notification; one already held is skipped. '
  'Returns the new badge_awards ids.';

revoke all on function private.grant_badges(public.badges[], uuid[], text[], timestamptz[], bigint[], bigint[], text)
  from public;

create or replace function private.grant_badge(
  p_badge public.badges,
  p_profile_id uuid,
  p_subject text,
  p_awarded_at timestamptz,
  p_ledger_id bigint,
  p_season_id bigint,
  p_source text
)
returns boolean
language sql
volatile
security definer
set search_path = ''
as $$
  select exists (
    select 1 from private.grant_badges(array[p_badge], array[p_profile_id], array[p_subject], array[p_awarded_at],
                                       array[p_ledger_id], array[p_season_id], p_source))
$$;

comment on function private.grant_badge(public.badges, uuid, text, timestamptz, bigint, bigint, text) is
  'Records badge p_badge for a member (per subject when the badge is once per subject) and notifies them '
  '(badge_awarded), through private.grant_badges; returns false, changing nothing, when they hold it already.';

revoke all on function private.grant_badge(public.badges, uuid, text, timestamptz, bigint, bigint, text) from public;

------------------------------------------------------------------------------
-- Live: as awards land and seasons end
------------------------------------------------------------------------------
create or replace function private.tg_xp_ledger__badges()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
-- For the statement's new ledger rows (transition table new_rows), what a row trigger deciding one row at a
-- time in id order gives: each active badge (but season placings) whose filters a row passes and that the
-- member does not hold, met as of that row (private.badge_met, the ledger as the row found it), granted at the
-- first such row of the statement per member (and subject), in (ledger id, position, slug) order.
declare
  v_badges public.badges[];
  v_profile_ids uuid[];
  v_subjects text[];
  v_awarded_at timestamptz[];
  v_ledger_ids bigint[];
begin
  with candidate as materialized (
    -- The (row, badge) pairs that can apply at all: the badge's filters (private.badge_applies, narrowed
    -- first by its activities and subject_prefix) and not held before the statement (private.held, as a
    -- probe of badge_awards' unique key per pair: a subplan, so no join order can turn it into a scan).
    select n::public.xp_ledger as new_row, b as badge, b.position, b.slug, x.subject
      from new_rows n
      join public.badges b
        on b.active and b.kind <> 'season_placing'
       and (b.activities is null or n.activity_slug = any (b.activities))
       and (b.subject_prefix is null or starts_with(n.subject, b.subject_prefix))
     cross join lateral (select case when b.once_per = 'subject' then coalesce(n.subject, '') else '' end
                           as subject) x
     where private.badge_applies(b, n)
       and (select a.id from public.badge_awards a
             where a.badge_slug = b.slug and a.profile_id = n.profile_id and a.subject = x.subject
             limit 1) is null
  ), winner as (
    -- A badge granted at one row is held at the later ones: the first row that meets it earns it.
    select distinct on (c.slug, (c.new_row).profile_id, c.subject) c.new_row, c.badge, c.position, c.slug
      from candidate c
     where private.badge_met(c.badge, c.new_row, true)
     order by c.slug, (c.new_row).profile_id, c.subject, (c.new_row).id
  ), ordered as (
    select w.*, row_number() over (order by (w.new_row).id, w.position, w.slug) as ord from winner w
  )
  select array_agg(o.badge order by o.ord), array_agg((o.new_row).profile_id order by o.ord),
         array_agg((o.new_row).subject order by o.ord), array_agg((o.new_row).occurred_at order by o.ord),
         array_agg((o.new_row).id order by o.ord)
    into v_badges, v_profile_ids, v_subjects, v_awarded_at, v_ledger_ids
    from ordered o;
  if v_badges is not null then
    perform private.grant_badges(v_badges, v_profile_ids, v_subjects, v_awarded_at, v_ledger_ids,
                                 array_fill(null::bigint, array[cardinality(v_badges)]), 'live');
  end if;
  return null;
end
$$;

comment on function private.tg_xp_ledger__badges() is
  'Statement trigger (transition table new_rows): decides every active badge (but season placings) for the '
  'new ledger rows, each as of its row (the ledger as that row found it), as a row trigger firing in ledger id '
  'order would; grants them with one private.grant_badges call in (ledger id, badge position, slug) order.';

revoke all on function private.tg_xp_ledger__badges() from public;

-- An import (92_imports.sql) sets xpbase.importing for its transaction and decides the badges of its batch
-- itself, with the same functions, once the batch's ledger rows are in.
drop trigger if exists _800_badges on public.xp_ledger;

create trigger _800_badges after insert on public.xp_ledger
  referencing new table as new_rows
  for each statement when (current_setting('xpbase.importing', true) is distinct from 'on')
  execute function private.tg_xp_ledger__badges();

-- from supabase/sql/65_profile_card.sql -------------------------------------

-- Profile cards: what anyone may see of a member (the web member page /u/<id>, GET /v1/profiles/{id}):
-- name, avatar, level and progress to the next, tier, XP per layer, this season's scores and ranks, the
-- all-time rank and recent public activity; and the public activity feed that the last part reads.
--
-- Tables: public.activity_feed.
-- Tests: tests/sql/test_profile_card.py

------------------------------------------------------------------------------
-- The public activity feed: the public part of positive award-path ledger rows
------------------------------------------------------------------------------
create or replace function private.tg_xp_ledger__activity_feed()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  insert into public.activity_feed (ledger_id, profile_id, activity_slug, layer_slug, amount, occurred_at)
  select n.id, n.profile_id, n.activity_slug, n.layer_slug, n.amount, n.occurred_at
    from new_rows n
   where n.amount > 0 and n.reason is null
   order by n.id;
  return null;
end
$$;

comment on function private.tg_xp_ledger__activity_feed() is
  'Statement trigger (transition table new_rows): copies activity, layer, amount and occurred_at of the '
  'statement''s positive award-path ledger rows (no reason: not a correction), in ledger id order, into '
  'public.activity_feed, the part of the ledger a member page shows to anyone.';

revoke all on function private.tg_xp_ledger__activity_feed() from public;

drop trigger if exists _700_activity_feed on public.xp_ledger;

create trigger _700_activity_feed after insert on public.xp_ledger
  referencing new table as new_rows
  for each statement execute function private.tg_xp_ledger__activity_feed();

-- from supabase/sql/92_imports.sql ------------------------------------------

create or replace function private.import_members(
  p_source text,
  p_guild_id text,
  p_keep text,
  p_members jsonb,
  p_dry_run boolean
)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
-- Set-based per batch (issue 17: taking the award path one member at a time cost about 7 ms of SQL per member,
-- 143 members/s). The batch is checked and prepared in two statements; then profiles and identities for
-- unseen members, ledger rows, layer, season and profile totals and the leaderboard count changes are each
-- written by one statement, the server membership by one more, and the badges by one pass. What it writes is
-- what private.ensure_profile and private.apply_xp wrote for each member (apply_xp's receipt with the same
-- keys, computed for the whole batch; no notification: xpbase.importing), and what the ledger and totals
-- triggers it switches off for its transaction would have added: the badge (33_badges.sql) and leaderboard count
-- (60_leaderboards.sql) triggers skip while xpbase.importing is on, and this function applies their effect
-- for the batch (count moves summed per board, scope, level and bucket; badges decided per ledger row with
-- private.badge_applies and private.badge_met, the first row that earns a badge recording it).
-- A Discord id (or a profile) that appears more than once in a batch is taken in rounds, in batch order: each
-- later appearance sees what the earlier ones wrote, as it did when members were taken one by one.
declare
  v_actor record; v_layer text; v_tier1 text; v_counts_for_season boolean; v_now timestamptz := now();
  v_receipt jsonb; v_error text; v_xp_text text; v_rounds integer; v_layer_row record; v_season_id bigint;
  v_season_closed boolean; v_ledger_ids bigint[]; v_counts jsonb;
  -- The batch in batch order (ord is the member's position, from 1).
  m_ord integer[]; m_user text[]; m_name text[]; m_target bigint[]; m_reason text[]; m_parts jsonb[];
  m_request jsonb[]; m_key text[]; m_round integer[];
  -- The members of one round, in batch order: profile and totals before, status, reason.
  w_ord integer[]; w_user text[]; w_name text[]; w_target bigint[]; w_parts jsonb[]; w_request jsonb[];
  w_key text[]; w_pid uuid[]; w_xp bigint[]; w_level integer[]; w_status text[]; w_reason text[];
  w_created boolean[];
  -- The season each layer's imports count for (one moment, now(), for the whole batch).
  s_layer text[]; s_season bigint[]; s_closed boolean[];
  -- The level each imported member reached, and the answer's rows.
  i_ord integer[]; i_level integer[]; a_ord integer[] := '{}'; a_row jsonb[] := '{}';
begin
  select * into v_actor from private.assert_admin();
  if p_source is null or p_source not in ('mee6', 'amari', 'polaris', 'levelup', 'csv') then
    raise exception 'source must be mee6, amari, polaris, levelup or csv, got %', coalesce(p_source, 'null')
      using errcode = 'XPBAD';
  end if;
  perform private.discord_id('guild_id', p_guild_id);
  if p_keep is null or p_keep not in ('xp', 'level') then
    raise exception 'keep must be xp or level, got %', coalesce(p_keep, 'null') using errcode = 'XPBAD';
  end if;
  if p_members is null or jsonb_typeof(p_members) <> 'array'
     or jsonb_array_length(p_members) not between 1 and 1000 then
    raise exception 'members must be an array of 1 to 1000 members' using errcode = 'XPBAD';
  end if;
  -- Levels reached by import are not announced: no notification (77_outbox.sql), no DM to every member. The
  -- badge and leaderboard count triggers skip too: their effect is applied below for the whole batch.
  perform set_config('xpbase.importing', 'on', true);
  select a.layer_slug, coalesce(a.counts_for_season, true) into v_layer, v_counts_for_season
    from public.activity_types a where a.slug = 'import';
  if coalesce(v_layer, '') = '' then
    raise exception 'The import activity is missing (seed.sql)' using errcode = 'XPCFG';
  end if;
  v_tier1 := public.tier_for_level(1);
  -- The part of apply_xp's receipt that is the same for every member of the batch: the import's decision (what
  -- it passes as p_decision) and the keys that do not depend on the member.
  v_receipt := jsonb_build_object(
    'correction', 'import', 'multiplier', 1, 'multipliers', '[]'::jsonb, 'cooldown', false,
    'cooldown_remaining_seconds', 0, 'capped', false, 'cap', null, 'floored', false, 'source', p_source,
    'guild_id', p_guild_id, 'keep', p_keep, 'actor_id', v_actor.actor_id, 'actor_role', v_actor.actor_role,
    'activity', 'import', 'occurred_at', private.utc_text(v_now),
    'points_granted', 0,  -- admin corrections (an import is one) never mint points
    'replayed', false);

  -- The first malformed member (in batch order) refuses the whole batch; the checks run in the order they
  -- always did, each guarding the casts of the next (an empty text marks XP beyond bigint, raised by its cast).
  select c.error, c.xp_text into v_error, v_xp_text
    from (
      select e.ord, e.m ->> 'xp' as xp_text,
             case
               when jsonb_typeof(e.m) <> 'object' or (e.m ->> 'user_id') is null
                    or (e.m ->> 'user_id') !~ '^[0-9]{1,20}$' then
                 'members[].user_id must be a Discord id (1 to 20 digits), got ' || coalesce(e.m ->> 'user_id', 'null')
               when jsonb_typeof(e.m -> 'xp') is distinct from 'number' then
                 'members[].xp of ' || (e.m ->> 'user_id') || ' must be a whole number of XP, 0 or more'
               when (e.m ->> 'xp')::numeric < 0 or (e.m ->> 'xp')::numeric <> floor((e.m ->> 'xp')::numeric) then
                 'members[].xp of ' || (e.m ->> 'user_id') || ' must be a whole number of XP, 0 or more'
               when jsonb_typeof(e.m -> 'level') is distinct from 'number' then
                 'members[].level of ' || (e.m ->> 'user_id') || ' must be 0 to 100000'
               when (e.m ->> 'level')::numeric < 0 or (e.m ->> 'level')::numeric > 100000 then
                 'members[].level of ' || (e.m ->> 'user_id') || ' must be 0 to 100000'
               when e.m ? 'progress' and jsonb_typeof(e.m -> 'progress') <> 'null'
                    and jsonb_typeof(e.m -> 'progress') <> 'number' then
                 'members[].progress of ' || (e.m ->> 'user_id') || ' must be 0 to 1'
               when e.m ? 'progress' and jsonb_typeof(e.m -> 'progress') = 'number'
                    and (e.m ->> 'progress')::numeric not between 0 and 1 then
                 'members[].progress of ' || (e.m ->> 'user_id') || ' must be 0 to 1'
               -- An xpbase export moved back in: XP per layer, which must add up to xp (keep xp only).
               when jsonb_typeof(e.m -> 'layers') = 'object' and p_keep <> 'xp' then
                 'members[].layers of ' || (e.m ->> 'user_id') || ' needs keep = xp'
               when jsonb_typeof(e.m -> 'layers') = 'object'
                    and exists (select 1 from jsonb_each(e.m -> 'layers') l
                                 where jsonb_typeof(l.value) <> 'number' or (l.value #>> '{}') !~ '^[0-9]{1,12}$'
                                    or not exists (select 1 from public.layers x where x.slug = l.key)) then
                 'members[].layers of ' || (e.m ->> 'user_id') || ' must map known layers to whole XP'
               when jsonb_typeof(e.m -> 'layers') = 'object'
                    and (select coalesce(sum((l.value #>> '{}')::bigint), 0) from jsonb_each(e.m -> 'layers') l)
                        <> (e.m ->> 'xp')::numeric then
                 'members[].layers of ' || (e.m ->> 'user_id') || ' add up to '
                 || (select coalesce(sum((l.value #>> '{}')::bigint), 0) from jsonb_each(e.m -> 'layers') l)
                 || ', not xp'
               when (e.m ->> 'xp')::numeric > 9223372036854775807 then ''
             end as error
        from jsonb_array_elements(p_members) with ordinality as e (m, ord)
    ) c
   where c.error is not null
   order by c.ord
   limit 1;
  if v_error = '' then
    perform v_xp_text::numeric::bigint;  -- bigint out of range (22003), as the per-member import raised it
  elsif v_error is not null then
    raise exception '%', v_error using errcode = 'XPBAD';
  end if;

  -- Each member's XP (private.import_target_xp), rejection, layer parts, idempotency key and request, and its
  -- round: the how-manieth appearance of its Discord id (or of the profile that id belongs to) in the batch.
  select array_agg(x.ord order by x.ord), array_agg(x.user_id order by x.ord), array_agg(x.name order by x.ord),
         array_agg(x.target order by x.ord), array_agg(x.reason order by x.ord), array_agg(x.parts order by x.ord),
         array_agg(jsonb_build_object('source', p_source, 'guild_id', p_guild_id, 'user_id', x.user_id,
                                      'keep', p_keep, 'xp', x.target)
                   || case when x.parts is not null then jsonb_build_object('layers', x.parts) else '{}' end
                   order by x.ord),
         array_agg('import:' || p_source || ':' || p_guild_id || ':' || x.user_id order by x.ord),
         array_agg(x.round order by x.ord), max(x.round)
    into m_ord, m_user, m_name, m_target, m_reason, m_parts, m_request, m_key, m_round, v_rounds
    from (
      select t.ord, t.user_id, t.name, t.target, t.parts,
             case when t.target is null then 'level ' || t.level || ' is not on the level curve'
                  when t.target > 2147483647 then 'more than 2147483647 XP' end as reason,
             row_number() over (partition by coalesce(i.profile_id::text, t.user_id) order by t.ord)::integer as round
        from (
          select e.ord::integer as ord, e.m ->> 'user_id' as user_id,
                 left(nullif(btrim(coalesce(e.m ->> 'display_name', '')), ''), 64) as name,
                 (e.m ->> 'level')::numeric::integer as level,
                 case when p_keep = 'xp' then (e.m ->> 'xp')::numeric::bigint
                      else private.import_target_xp(p_keep, (e.m ->> 'xp')::numeric::bigint,
                                                    (e.m ->> 'level')::numeric::integer, (e.m ->> 'progress')::numeric)
                 end as target,
                 case when jsonb_typeof(e.m -> 'layers') = 'object' then
                   (select jsonb_agg(jsonb_build_object('layer', l.key, 'amount', (l.value #>> '{}')::bigint) order by l.key)
                             filter (where (l.value #>> '{}')::bigint > 0)
                      from jsonb_each(e.m -> 'layers') l)
                 end as parts
            from jsonb_array_elements(p_members) with ordinality as e (m, ord)
        ) t
        left join lateral (
          select i.profile_id from public.identities i where i.provider = 'discord' and i.subject = t.user_id limit 1
        ) i on true
    ) x;

  for v_round in 1 .. v_rounds loop
    -- Who each member is now and whether its key was used: rejected, unchanged, conflict, or (null) to import.
    select array_agg(m.ord order by m.ord), array_agg(m.user_id order by m.ord), array_agg(m.name order by m.ord),
           array_agg(m.target order by m.ord), array_agg(m.parts order by m.ord), array_agg(m.request order by m.ord),
           array_agg(m.key order by m.ord), array_agg(p.profile_id order by m.ord), array_agg(p.xp order by m.ord),
           array_agg(p.level order by m.ord),
           array_agg(case when m.reason is not null then 'rejected'
                          when f.request is null then null
                          when f.request = m.request then 'unchanged'
                          else 'conflict' end order by m.ord),
           array_agg(case when m.reason is not null then m.reason
                          when f.request is not null and f.request <> m.request then
                            'imported before with ' || (f.request ->> 'xp') || ' XP (keep ' || (f.request ->> 'keep') || ')'
                     end order by m.ord)
      into w_ord, w_user, w_name, w_target, w_parts, w_request, w_key, w_pid, w_xp, w_level, w_status, w_reason
      from unnest(m_ord, m_user, m_name, m_target, m_reason, m_parts, m_request, m_key, m_round)
             as m (ord, user_id, name, target, reason, parts, request, key, round)
      left join lateral (
        select i.profile_id, p.xp, p.level
          from public.identities i join public.profiles p on p.id = i.profile_id
         where i.provider = 'discord' and i.subject = m.user_id
         limit 1
      ) p on true
      left join lateral (select l.request from public.xp_ledger l where l.idempotency_key = m.key limit 1) f
        on m.reason is null
     where m.round = v_round;
    w_created := array_fill(false, array[cardinality(w_ord)]);
    i_ord := '{}';
    i_level := '{}';

    if not p_dry_run then
      -- Members not seen yet get a profile and an identity (private.ensure_profile's values, under its lock),
      -- written with the imports below; a profile someone else made meanwhile is found after the lock.
      if exists (select 1 from unnest(w_pid, w_status) w (pid, status) where w.pid is null and w.status is null) then
        perform pg_advisory_xact_lock(hashtextextended('discord' || chr(31) || w.user_id, 0))
           from unnest(w_user, w_pid, w_status) w (user_id, pid, status)
          where w.pid is null and w.status is null
          order by w.user_id;
        select array_agg(coalesce(w.pid, case when w.status is null then
                                           (select i.profile_id from public.identities i
                                             where i.provider = 'discord' and i.subject = w.user_id limit 1) end)
                         order by w.ord)
          into w_pid
          from unnest(w_ord, w_user, w_pid, w_status) w (ord, user_id, pid, status);
        select array_agg(w.pid is null and w.status is null order by w.ord),
               array_agg(case when w.pid is null and w.status is null then gen_random_uuid() else w.pid end
                         order by w.ord)
          into w_created, w_pid
          from unnest(w_ord, w_pid, w_status) w (ord, pid, status);
      end if;

      -- The profile row locks (in id order) and the key locks that private.award_xp and apply_xp take; then the
      -- keys again (a racing import of the same key answers unchanged) and zero XP (a profile, no ledger row).
      perform 1 from public.profiles p
        where p.id in (select w.pid from unnest(w_pid, w_status, w_created) w (pid, status, created)
                        where w.status is null and not w.created)
        order by p.id for update;
      perform pg_advisory_xact_lock(hashtextextended('xp_ledger:' || w.key, 0))
         from unnest(w_key, w_status) w (key, status) where w.status is null order by w.key;
      select array_agg(case when w.status is not null then w.status
                            when exists (select 1 from public.xp_ledger l where l.idempotency_key = w.key) then 'unchanged'
                            when w.target = 0 then 'zero'
                            else 'imported' end order by w.ord)
        into w_status
        from unnest(w_ord, w_status, w_key, w_target) w (ord, status, key, target);

      -- The season of each layer imported into (as apply_xp: an existing season containing now wins; a
      -- finalised one is closed, counting for no season; the activity may count for none).
      s_layer := '{}';
      s_season := '{}';
      s_closed := '{}';
      if v_counts_for_season then
        for v_layer_row in
          select distinct coalesce(e.part ->> 'layer', v_layer) as layer
            from unnest(w_status, w_parts) w (status, parts)
            left join lateral jsonb_array_elements(w.parts) as e (part) on true
           where w.status = 'imported'
        loop
          select s.id, s.finalized_at is not null into v_season_id, v_season_closed
            from public.seasons s
           where s.layer_slug = v_layer_row.layer and s.starts_at <= v_now and v_now < s.ends_at
           order by s.starts_at desc limit 1;
          if coalesce(v_season_closed, false) then
            v_season_id := null;
          elsif v_season_id is null then
            v_season_id := private.season_for(v_layer_row.layer, v_now);
            v_season_closed := false;
          end if;
          s_layer := array_append(s_layer, v_layer_row.layer);
          s_season := array_append(s_season, v_season_id);
          s_closed := array_append(s_closed, v_season_closed);
        end loop;
      end if;

      -- The imports: ledger rows (one per layer part, sharing the key and apply_xp's receipt), layer and
      -- season totals, the profile's total, level and tier, and the leaderboard count changes of the batch.
      -- Lookups in the large tables are lateral with a limit: an index probe per member, whatever the
      -- statistics say during a long import.
      -- A new member's profile is inserted with its totals (it starts as ensure_profile makes it: 0 XP, level 1,
      -- the first tier, visible), an existing one read and updated.
      with base as materialized (
        select w.ord, w.pid, w.key, w.request, w.target, w.created,
               coalesce(w.parts, jsonb_build_array(jsonb_build_object('layer', v_layer, 'amount', w.target))) as parts,
               p.xp as xp_before, p.level as level_before, p.tier as tier_before, p.points as points_before,
               p.leaderboard_visible as visible, lv.level as level_after, coalesce(tr.slug, p.tier) as tier_after
          from unnest(w_ord, w_pid, w_key, w_request, w_target, w_parts, w_status, w_created)
                 as w (ord, pid, key, request, target, parts, status, created)
          join lateral (
            select 0::bigint as xp, 1 as level, v_tier1 as tier, 0::bigint as points, true as leaderboard_visible
             where w.created
            union all
            (select p.xp, p.level, p.tier, p.points, p.leaderboard_visible from public.profiles p
              where not w.created and p.id = w.pid limit 1)
          ) p on true
         cross join lateral (
           select coalesce((select c.level from public.level_curve c
                             where c.xp_required <= greatest(p.xp + w.target, 0)
                             order by c.xp_required desc limit 1), 1) as level
         ) lv
          left join lateral (
            select t.slug from public.tiers t where t.min_level <= lv.level order by t.min_level desc limit 1
          ) tr on true
         where w.status = 'imported'
      ), unlocked as materialized (
        -- The tiers' unlocks passed on the way up, once per pair of levels before and after.
        select b.level_before, b.level_after,
               (select coalesce(jsonb_agg(jsonb_build_object('tier', u.tier_slug, 'slug', u.slug, 'name', u.name)
                                          order by t.min_level, u.position, u.slug), '[]')
                  from public.tier_unlocks u
                  join public.tiers t on t.slug = u.tier_slug
                 where t.min_level > b.level_before and t.min_level <= b.level_after) as list
          from (select distinct b.level_before, b.level_after from base b) b
      ), member as materialized (
        select b.*, u.list as unlocks
          from base b join unlocked u on u.level_before = b.level_before and u.level_after = b.level_after
      ), part as materialized (
        -- Ledger ids in batch order, then layer order, as the per-member import drew them.
        select x.*, nextval('public.xp_ledger_id_seq') as id,
               case when x.season_id is not null then greatest(x.amount, -x.season_before) else 0 end as season_amount
          from (
            select mb.ord, mb.pid, mb.key, mb.request, mb.visible, e.idx, e.part ->> 'layer' as layer,
                   (e.part ->> 'amount')::integer as amount, pl.status is not null as layer_found,
                   coalesce(pl.xp, 0) as xp_before,
                   case when pl.status is not null then pl.status
                        else (select s.slug from public.layer_statuses s
                               where s.layer_slug = e.part ->> 'layer' and s.min_xp <= 0
                               order by s.min_xp desc limit 1) end as status_before,
                   (select s.slug from public.layer_statuses s
                     where s.layer_slug = e.part ->> 'layer'
                       and s.min_xp <= greatest(coalesce(pl.xp, 0) + (e.part ->> 'amount')::integer, 0)
                     order by s.min_xp desc limit 1) as status,
                   se.season_id, coalesce(se.closed, false) as closed, ss.xp is not null as season_found,
                   coalesce(ss.xp, 0) as season_before
              from member mb
             cross join lateral jsonb_array_elements(mb.parts) with ordinality as e (part, idx)
              left join lateral (
                select pl.xp, pl.status from public.profile_layers pl
                 where pl.profile_id = mb.pid and pl.layer_slug = e.part ->> 'layer' limit 1
              ) pl on true
              left join unnest(s_layer, s_season, s_closed) as se (layer, season_id, closed)
                on se.layer = e.part ->> 'layer'
              left join lateral (
                select ss.xp from public.season_scores ss
                 where ss.season_id = se.season_id and ss.profile_id = mb.pid limit 1
              ) ss on true
             order by mb.ord, e.idx
          ) x
      ), receipt as materialized (
        select mb.ord, mb.pid, mb.created, mb.visible, mb.xp_before, mb.xp_before + mb.target as xp_after,
               mb.level_after, mb.tier_after,
               v_receipt || jsonb_build_object(
                 'requested', mb.target,
                 'base', mb.target,
                 'profile_id', mb.pid,
                 'idempotency_key', mb.key,
                 'granted', mb.target,
                 'total_xp_before', mb.xp_before,
                 'total_xp', mb.xp_before + mb.target,
                 'level_before', mb.level_before,
                 'level', mb.level_after,
                 'tier_before', mb.tier_before,
                 'tier', mb.tier_after,
                 'points', mb.points_before,
                 'layers', g.layers,
                 'layer', g.layers -> 0 ->> 'layer',
                 'layer_xp', (g.layers -> 0 ->> 'xp')::bigint,
                 'layer_status_before', g.layers -> 0 ->> 'status_before',
                 'layer_status', g.layers -> 0 ->> 'status',
                 'season_id', (g.layers -> 0 ->> 'season_id')::bigint,
                 'season_xp', (g.layers -> 0 ->> 'season_xp')::bigint,
                 'unlocks', mb.unlocks,
                 'season_closed', g.any_closed,
                 'tier_up', mb.tier_after is distinct from mb.tier_before and jsonb_array_length(mb.unlocks) > 0,
                 'tier_name', case when mb.tier_after is distinct from mb.tier_before
                                        and jsonb_array_length(mb.unlocks) > 0
                                   then (select t.name from public.tiers t where t.slug = mb.tier_after) end,
                 'ledger_id', g.first_id) as receipt
          from member mb
          join (
            select pt.ord, min(pt.id) as first_id, bool_or(pt.closed) as any_closed,
                   jsonb_agg(jsonb_build_object(
                     'layer', pt.layer, 'amount', pt.amount, 'xp_before', pt.xp_before, 'xp', pt.xp_before + pt.amount,
                     'status_before', pt.status_before, 'status', pt.status, 'season_id', pt.season_id,
                     'season_amount', pt.season_amount,
                     'season_xp', case when pt.season_id is not null then pt.season_before + pt.season_amount end)
                     order by pt.idx) as layers
              from part pt
             group by pt.ord
          ) g on g.ord = mb.ord
      ), ledger as (
        insert into public.xp_ledger (
          id, profile_id, activity_slug, layer_slug, season_id, amount, season_amount, points, occurred_at,
          idempotency_key, actor_id, actor_role, reason, reverses_id, request, receipt
        ) overriding system value
        select pt.id, pt.pid, 'import', pt.layer, pt.season_id, pt.amount, pt.season_amount, 0, v_now, pt.key,
               v_actor.actor_id, v_actor.actor_role, 'import from ' || p_source, null, pt.request, r.receipt
          from part pt
          join receipt r on r.ord = pt.ord
         order by pt.id
        returning id
      ), layer_total as (
        insert into public.profile_layers as pl (profile_id, layer_slug, xp, status, reached_at)
        select pt.pid, pt.layer, pt.xp_before + pt.amount, pt.status, v_now from part pt where pt.amount <> 0
        on conflict (profile_id, layer_slug) do update
          set xp = excluded.xp, status = excluded.status, reached_at = excluded.reached_at
      ), season_total as (
        insert into public.season_scores as s (season_id, profile_id, xp, reached_at)
        select pt.season_id, pt.pid, pt.season_before + pt.season_amount, v_now from part pt where pt.season_amount <> 0
        on conflict (season_id, profile_id) do update
          set xp = excluded.xp, reached_at = excluded.reached_at
      ), made as (
        insert into public.profiles (id, display_name, tier, xp, level, xp_reached_at, updated_at)
        select w.pid, coalesce(private.clean_display_name(coalesce(w.name, 'Discord member')), 'discord member'),
               case when r.ord is null then v_tier1 else r.tier_after end, coalesce(r.xp_after, 0),
               coalesce(r.level_after, 1), v_now, now()
          from unnest(w_ord, w_pid, w_name, w_created) as w (ord, pid, name, created)
          left join receipt r on r.ord = w.ord
         where w.created
         order by w.ord
      ), linked as (
        insert into public.identities (profile_id, provider, subject)
        select w.pid, 'discord', w.user_id
          from unnest(w_ord, w_pid, w_user, w_created) as w (ord, pid, user_id, created)
         where w.created
         order by w.ord
      ), profile_total as (
        -- updated_at is stamped here: profiles' _100_validate trigger fires only for the editable columns.
        update public.profiles p
           set xp = r.xp_after, level = r.level_after, tier = r.tier_after, xp_reached_at = v_now, updated_at = now()
          from receipt r
         where p.id = r.pid and not r.created
      ), moves (board, scope, old_xp, new_xp) as (
        -- What private.tg_profiles__leaderboard_counts and tg_board_scores__leaderboard_counts would have
        -- moved (visible members, boards not left in leaderboard_hidden_boards), one move per member and
        -- board from before the batch to after it (a new profile enters at its XP).
        select 'all_time'::text, ''::text, case when not r.created then r.xp_before end, r.xp_after
          from receipt r
         where r.visible
           and not exists (select 1 from public.leaderboard_hidden_boards h
                            where h.profile_id = r.pid and h.board = 'all_time' and h.scope = '')
        union all
        select 'all_time', '', null::bigint, 0::bigint
          from unnest(w_created, w_status) w (created, status)
         where w.created and w.status <> 'imported'
        union all
        select 'layer', pt.layer, case when pt.layer_found then pt.xp_before end, pt.xp_before + pt.amount
          from part pt
         where pt.amount <> 0 and pt.visible
           and not exists (select 1 from public.leaderboard_hidden_boards h
                            where h.profile_id = pt.pid and h.board = 'layer' and h.scope = pt.layer)
        union all
        select 'season', pt.season_id::text, case when pt.season_found then pt.season_before end,
               pt.season_before + pt.season_amount
          from part pt
         where pt.season_amount <> 0 and pt.visible
           and not exists (select 1 from public.leaderboard_hidden_boards h
                            where h.profile_id = pt.pid and h.board = 'season' and h.scope = pt.layer)
      ), counted as (
        -- private.leaderboard_count_move's rows for every move, summed per board, scope, level and bucket.
        insert into public.leaderboard_count_deltas (board, scope, level, bucket, delta)
        select d.board, d.scope, d.level, d.bucket, sum(d.delta)
          from (
            select mv.board, mv.scope, -1 as level, coalesce(mv.new_xp, mv.old_xp) as bucket,
                   case when mv.new_xp is null then -1 else 1 end as delta
              from moves mv
             where (mv.old_xp is null) <> (mv.new_xp is null)
            union all
            select mv.board, mv.scope, l.level, x.bucket, x.delta
              from moves mv
             cross join generate_series(0, 7) as l (level)
             cross join lateral (values (mv.old_xp >> (6 * l.level), -1), (mv.new_xp >> (6 * l.level), 1))
                          as x (bucket, delta)
             where mv.old_xp is not null and mv.new_xp is not null
               and (mv.old_xp >> (6 * l.level)) <> (mv.new_xp >> (6 * l.level))
          ) d
         group by d.board, d.scope, d.level, d.bucket
        having sum(d.delta) <> 0
         order by 1, 2, 3, 4
      )
      select (select array_agg(l.id order by l.id) from ledger l),
             (select array_agg(r.ord order by r.ord) from receipt r),
             (select array_agg(r.level_after order by r.ord) from receipt r)
        into v_ledger_ids, i_ord, i_level;

      -- Membership of the server, for every member not rejected that has a profile.
      insert into public.discord_guild_members (guild_id, profile_id)
      select p_guild_id, w.pid
        from unnest(w_ord, w_pid, w_status) w (ord, pid, status)
       where w.pid is not null and w.status <> 'rejected'
       order by w.ord
      on conflict (guild_id, profile_id) do nothing;

      -- Badges, as private.tg_xp_ledger__badges decides them for each new ledger row (the same functions,
      -- as of that row): a badge is recorded at the first of the batch's rows that earns it for a member who
      -- did not hold it (no badge_awarded notification: none is stored during an import).
      if v_ledger_ids is not null then
        insert into public.badge_awards (badge_slug, profile_id, subject, level, awarded_at, ledger_id, season_id,
                                         source)
        select g.slug, g.profile_id, g.subject, g.level, g.occurred_at, g.id, null, 'live'
          from (
            select distinct on (b.slug, l.profile_id, x.subject)
                   b.slug, b.position, b.level, l.profile_id, x.subject, l.occurred_at, l.id
              from public.xp_ledger l
             cross join public.badges b
             cross join lateral (select case when b.once_per = 'subject' then coalesce(l.subject, '') else '' end
                                   as subject) x
             where l.id = any (v_ledger_ids)
               and b.active and b.kind <> 'season_placing'
               and (b.activities is null or l.activity_slug = any (b.activities))
               and case when private.badge_applies(b, l)
                             and (select a.id from public.badge_awards a
                                   where a.badge_slug = b.slug and a.profile_id = l.profile_id
                                     and a.subject = x.subject limit 1) is null  -- private.held
                        then private.badge_met(b, l) else false end
             order by b.slug, l.profile_id, x.subject, l.id
          ) g
         order by g.id, g.position, g.slug
        on conflict (badge_slug, profile_id, subject) do nothing;
      end if;
    end if;

    -- The answer's rows of this round.
    select a_ord || array_agg(w.ord order by w.ord),
           a_row || array_agg(jsonb_build_object(
             'user_id', w.user_id, 'status', x.status, 'reason', w.reason, 'new_profile', w.xp is null,
             'xp_before', coalesce(w.xp, 0), 'level_before', coalesce(w.level, 1),
             'xp_granted', case when x.status in ('imported', 'zero') then w.target else 0 end,
             'level', case when x.status <> 'imported' then coalesce(w.level, 1)
                           when p_dry_run then public.level_for_xp(coalesce(w.xp, 0) + coalesce(w.target, 0))
                           else i.level end) order by w.ord)
      into a_ord, a_row
      from unnest(w_ord, w_user, w_status, w_reason, w_xp, w_level, w_target)
             as w (ord, user_id, status, reason, xp, level, target)
     cross join lateral (
       select coalesce(w.status, case when w.target = 0 then 'zero' else 'imported' end) as status
     ) x
      left join unnest(i_ord, i_level) as i (ord, level) on i.ord = w.ord;
  end loop;

  if not p_dry_run and exists (select 1 from unnest(a_row) r where r ->> 'status' = 'imported') then
    insert into public.discord_role_resyncs (guild_id) values (p_guild_id)
    on conflict (guild_id) do update set requested_at = excluded.requested_at;
  end if;
  perform set_config('xpbase.importing', 'off', true);
  select jsonb_object_agg(s.status, s.n) into v_counts
    from (select r ->> 'status' as status, count(*) as n from unnest(a_row) r group by 1) s;
  return jsonb_build_object('source', p_source, 'guild_id', p_guild_id, 'keep', p_keep, 'dry_run', p_dry_run,
                            'counts', coalesce(v_counts, '{}'::jsonb),
                            'members', (select jsonb_agg(r.answer order by r.ord)
                                               from unnest(a_ord, a_row) r (ord, answer)));
end
$$;

comment on function private.import_members(text, text, text, jsonb, boolean) is
  'Implementation of public.admin_import_members: set-based per batch (profiles, identities, ledger rows, '
  'totals, leaderboard count changes and badges written by one statement each for the whole batch), with what '
  'private.ensure_profile, private.apply_xp and the per-row triggers wrote one member at a time.';

revoke all on function private.import_members(text, text, text, jsonb, boolean) from public;

grant execute on function private.import_members(text, text, text, jsonb, boolean) to service_role, authenticated;
