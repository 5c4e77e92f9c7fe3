-- The ledger's AFTER INSERT triggers _700_activity_feed and _800_badges become statement triggers with a
-- transition table (issue 16 item 1, throughput): a batch written by private.award_set in one INSERT costs a
-- few statements instead of two trigger calls per row. The results are what the row triggers gave: the feed
-- rows in ledger id order; badges decided as of each row with the ledger as that row found it
-- (private.badge_met gains p_as_written: rows written before it only), granted at the first row that meets
-- them, in (ledger id, position, slug) order.
--
-- Written by `xpbase migration new` from the feature files in supabase/sql/:
-- the function and trigger definitions that changed since the last migration.
-- Edit the feature files, not this file; landed migrations never change.
-- Changed:
--   function private.badge_met(public.badges, public.xp_ledger, bool)
--   function private.tg_xp_ledger__badges()
--   trigger public.xp_ledger._800_badges
--   function private.tg_xp_ledger__activity_feed()
--   trigger public.xp_ledger._700_activity_feed
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
  v_grant record;
begin
  for v_grant in
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
    )
    select g.new_row, g.badge
      from (
        -- A badge granted at one row is held at the later ones: the first row that meets it earns it.
        select distinct on (c.slug, (c.new_row).profile_id, c.subject) c.new_row, c.badge, c.position, c.slug
          from candidate c
         where private.badge_met(c.badge, c.new_row, true)
         order by c.slug, (c.new_row).profile_id, c.subject, (c.new_row).id
      ) g
     order by (g.new_row).id, g.position, g.slug
  loop
    perform private.grant_badge(v_grant.badge, (v_grant.new_row).profile_id, (v_grant.new_row).subject,
                                (v_grant.new_row).occurred_at, (v_grant.new_row).id, null, 'live');
  end loop;
  return null;
end
$$;

comment on function private.tg_xp_ledger__badges() is
  'Statement trigger (transition table new_rows): decides every active badge (but season placings) for the '
  'new ledger rows, each as of its row (the ledger as that row found it), as a row trigger firing in ledger id '
  'order would; grants through private.grant_badge in (ledger id, badge position, slug) order.';

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
