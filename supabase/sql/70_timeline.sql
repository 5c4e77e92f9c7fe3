-- XP timeline and dashboard statistics, read from the ledger as the caller.
--
-- Tables: none of its own (reads public.xp_ledger).
-- Tests: tests/sql/test_timeline.py

------------------------------------------------------------------------------
-- Points timeline and dashboard stats (issue 4; the career-points seed)
--
-- Read from the ledger as the caller: members see only their own rows (the
-- ledger's policy), service_role sees everyone's. Periods are local days,
-- weeks (Monday first) or months in the profile's time zone.
------------------------------------------------------------------------------

create or replace function private.assert_can_read_ledger(p_profile_id uuid)
returns text
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_tz text;
begin
  if p_profile_id is null then
    raise exception 'profile_id is required' using errcode = 'XPBAD';
  end if;
  if not private.is_service_role() and p_profile_id is distinct from (select auth.uid()) then
    raise exception 'Members can read only their own XP history' using errcode = '42501';
  end if;
  select p.time_zone into v_tz from public.profiles p where p.id = p_profile_id;
  if not found then
    raise exception 'Unknown profile: %', p_profile_id using errcode = 'XPPRF';
  end if;
  return v_tz;
end
$$;
comment on function private.assert_can_read_ledger(uuid) is
  'The time zone of a profile whose ledger the caller may read (their own, or any for service_role); '
  'raises 42501 for someone else''s, XPPRF for an unknown profile. A definer: members may not read '
  'profiles.time_zone (issue 18), and the check above admits only the owner and the backend.';
revoke all on function private.assert_can_read_ledger(uuid) from public;
grant execute on function private.assert_can_read_ledger(uuid) to authenticated, service_role;

create or replace function public.xp_timeline(
  profile_id uuid,
  granularity text default 'day',
  periods integer default 30,
  at timestamptz default null
)
returns table (period_start date, period_end date, xp bigint, awards bigint, cumulative_xp bigint)
language plpgsql
stable
security invoker
set search_path = ''
as $$
declare
  v_tz text;
  v_step interval;
  v_last date;
  v_first date;
  v_before bigint;
begin
  perform private.assert_time(xp_timeline.at, 'at', interval '366 days');
  if granularity is null or granularity not in ('day', 'week', 'month') then
    raise exception 'granularity must be day, week or month' using errcode = 'XPBAD';
  end if;
  if periods is null or periods not between 1 and 366 then
    raise exception 'periods must be 1 to 366' using errcode = 'XPBAD';
  end if;
  v_tz := private.assert_can_read_ledger(xp_timeline.profile_id);
  v_step := ('1 ' || granularity)::interval;
  v_last := date_trunc(granularity, coalesce(xp_timeline.at, now()) at time zone v_tz)::date;
  v_first := (v_last - (periods - 1) * v_step)::date;
  select coalesce(sum(l.amount), 0) into v_before from public.xp_ledger l
   where l.profile_id = xp_timeline.profile_id and l.occurred_at < private.local_day_start(v_tz, v_first);
  return query
    select g.day::date, (g.day + v_step)::date, coalesce(sum(l.amount), 0)::bigint,
           count(l.id) filter (where l.amount <> 0),
           (v_before + sum(coalesce(sum(l.amount), 0)) over (order by g.day))::bigint
      from generate_series(v_first, v_last, v_step) as g (day)
      left join public.xp_ledger l
        on l.profile_id = xp_timeline.profile_id
       and l.occurred_at >= private.local_day_start(v_tz, g.day::date)
       and l.occurred_at < private.local_day_start(v_tz, (g.day + v_step)::date)
     group by g.day
     order by g.day;
end
$$;
comment on function public.xp_timeline(uuid, text, integer, timestamptz) is
  'XP per period for a member: rows (period_start, period_end (exclusive), xp (net XP of the period, '
  'corrections included), awards (ledger rows that moved XP), cumulative_xp (total at the period''s end)) for '
  'the last periods (1-366) days, weeks (Monday first) or months up to the one holding at (default now), in '
  'the profile''s time zone. Members read only their own; service_role anyone''s. Errors: XPBAD, 42501, XPPRF.';
revoke all on function public.xp_timeline(uuid, text, integer, timestamptz) from public, anon;
grant execute on function public.xp_timeline(uuid, text, integer, timestamptz) to authenticated, service_role;

create or replace function public.dashboard_stats(
  profile_id uuid,
  period text default 'week',
  at timestamptz default null
)
returns jsonb
language plpgsql
stable
security invoker
set search_path = ''
as $$
declare
  v_tz text;
  v_step interval;
  v_start date;
  v_current bigint;
  v_previous bigint;
  v_profile record;
  v_by_activity jsonb;
  v_by_layer jsonb;
  v_streak record;
begin
  perform private.assert_time(dashboard_stats.at, 'at', interval '366 days');
  if period is null or period not in ('day', 'week', 'month') then
    raise exception 'period must be day, week or month' using errcode = 'XPBAD';
  end if;
  v_tz := private.assert_can_read_ledger(dashboard_stats.profile_id);
  v_step := ('1 ' || period)::interval;
  v_start := date_trunc(period, coalesce(dashboard_stats.at, now()) at time zone v_tz)::date;
  select coalesce(sum(l.amount) filter (where l.occurred_at >= private.local_day_start(v_tz, v_start)), 0),
         coalesce(sum(l.amount) filter (where l.occurred_at < private.local_day_start(v_tz, v_start)), 0)
    into v_current, v_previous
    from public.xp_ledger l
   where l.profile_id = dashboard_stats.profile_id
     and l.occurred_at >= private.local_day_start(v_tz, (v_start - v_step)::date)
     and l.occurred_at < private.local_day_start(v_tz, (v_start + v_step)::date);
  select coalesce(jsonb_agg(jsonb_build_object('activity', x.activity_slug, 'xp', x.xp, 'awards', x.n)
                            order by x.xp desc, x.activity_slug), '[]')
    into v_by_activity
    from (select l.activity_slug, sum(l.amount) as xp, count(*) filter (where l.amount <> 0) as n
            from public.xp_ledger l
           where l.profile_id = dashboard_stats.profile_id
             and l.occurred_at >= private.local_day_start(v_tz, v_start)
             and l.occurred_at < private.local_day_start(v_tz, (v_start + v_step)::date)
           group by l.activity_slug) x;
  select coalesce(jsonb_agg(jsonb_build_object('layer', pl.layer_slug, 'xp', pl.xp, 'status', pl.status)
                            order by pl.layer_slug), '[]')
    into v_by_layer
    from public.profile_layers pl where pl.profile_id = dashboard_stats.profile_id;
  -- points: the balance after the newest points-ledger row (profiles.points is for its owner's eyes through
  -- public.my_profile; the ledger's policy shows members their own rows).
  select p.xp, p.level, p.tier,
         coalesce((select l.balance_after from public.points_ledger l
                    where l.profile_id = p.id order by l.id desc limit 1), 0) as points
    into v_profile from public.profiles p where p.id = dashboard_stats.profile_id;
  select s.current_streak, s.longest_streak into v_streak from public.streaks s
   where s.profile_id = dashboard_stats.profile_id;
  return jsonb_build_object(
    'profile_id', dashboard_stats.profile_id,
    'period', period,
    'period_start', v_start,
    'period_end', (v_start + v_step)::date,
    'time_zone', v_tz,
    'xp', v_current,
    'previous_xp', v_previous,
    'change', v_current - v_previous,
    'change_pct', case when v_previous <> 0 then round((v_current - v_previous) * 100.0 / abs(v_previous), 1) end,
    'direction', case when v_current > v_previous then 'up' when v_current < v_previous then 'down' else 'flat' end,
    'total_xp', v_profile.xp,
    'level', v_profile.level,
    'tier', v_profile.tier,
    'points', v_profile.points,
    'rank', public.leaderboard_rank(dashboard_stats.profile_id) -> 'rank',
    'current_streak', coalesce(v_streak.current_streak, 0),
    'longest_streak', coalesce(v_streak.longest_streak, 0),
    'by_activity', v_by_activity,
    'by_layer', v_by_layer);
end
$$;
comment on function public.dashboard_stats(uuid, text, timestamptz) is
  'Dashboard numbers for a member: XP of the current period (day, week or month in the profile''s time zone, '
  'holding at, default now) against the previous one: xp, previous_xp, change, change_pct (null when the '
  'previous period had none), direction (up/down/flat); total_xp, level, tier, points, all-time rank, '
  'current_streak (as last stored), longest_streak, by_activity [{activity, xp, awards}] for the period, '
  'by_layer [{layer, xp, status}]. Members read only their own; service_role anyone''s. Errors: XPBAD, 42501, XPPRF.';
revoke all on function public.dashboard_stats(uuid, text, timestamptz) from public, anon;
grant execute on function public.dashboard_stats(uuid, text, timestamptz) to authenticated, service_role;
