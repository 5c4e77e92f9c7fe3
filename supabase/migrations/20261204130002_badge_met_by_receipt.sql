-- The badge kinds a ledger row's receipt decides alone (total_xp, level, first_time) in an inlined SQL function, used by private.badge_met and ahead of it in the badge trigger: no PL/pgSQL call for most candidate pairs
--
-- Written by `xpbase migration new` from the feature files in supabase/sql/:
-- the function and trigger definitions that changed since the last migration.
-- Edit the feature files, not this file; landed migrations never change.
-- Changed:
--   function private.badge_met_by_receipt(public.badges, public.xp_ledger)
--   function private.badge_met(public.badges, public.xp_ledger, bool)
--   function private.tg_xp_ledger__badges()

-- from supabase/sql/33_badges.sql -------------------------------------------

------------------------------------------------------------------------------
-- The rule check
------------------------------------------------------------------------------

-- The rule kinds decided by the row's own receipt alone (no table read): null for every other kind. Inlined
-- into private.badge_met and ahead of it in the badge trigger, where most candidate pairs are of these kinds
-- (the default badges: first_time and three levels), so those pairs need no PL/pgSQL call. Being inlined it
-- cannot set search_path: it names nothing outside pg_catalog, and runs as the caller.
create or replace function private.badge_met_by_receipt(p_badge public.badges, p_row public.xp_ledger)
returns boolean
language sql
immutable
security invoker
as $$
  select case p_badge.kind
           when 'total_xp' then (p_row.receipt ->> 'total_xp')::bigint >= p_badge.threshold
           when 'level' then (p_row.receipt ->> 'level')::integer >= p_badge.threshold
           when 'first_time' then p_row.amount > 0
         end
$$;

comment on function private.badge_met_by_receipt(public.badges, public.xp_ledger) is
  'private.badge_met for the kinds p_row''s receipt decides alone (total_xp, level, first_time); null for the '
  'other kinds (and when the receipt lacks the figure, as badge_met answers then).';

revoke all on function private.badge_met_by_receipt(public.badges, public.xp_ledger) from public;

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
  when 'total_xp', 'level', 'first_time' then
    return private.badge_met_by_receipt(p_badge, p_row);
  when 'tier' then
    return (select t.min_level from public.tiers t where t.slug = p_row.receipt ->> 'tier')
           >= (select t.min_level from public.tiers t where t.slug = p_badge.tier_slug);
  when 'layer_status' then
    return exists (
      select 1 from jsonb_array_elements(coalesce(p_row.receipt -> 'layers', '[]')) e
        join public.layer_statuses s on s.layer_slug = p_badge.layer_slug and s.slug = p_badge.status_slug
       where e ->> 'layer' = p_badge.layer_slug and (e ->> 'xp')::bigint >= s.min_xp);
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
-- member does not hold, met as of that row (private.badge_met, the ledger as the row found it; the kinds the
-- row's receipt decides by private.badge_met_by_receipt, inlined, without a call), granted at the
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
     where coalesce(private.badge_met_by_receipt(c.badge, c.new_row), private.badge_met(c.badge, c.new_row, true))
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
