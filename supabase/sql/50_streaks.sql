-- Streaks and daily check-ins: one check-in per local day, streak freezes, the check-in rules
-- and their XP, milestones.
--
-- Tables: public.streaks, public.check_ins, public.check_in_rules.
-- Tests: tests/sql/test_streaks.py

------------------------------------------------------------------------------
-- Streaks and check-ins (issue 4)
--
-- One check-in per local day in the profile's time zone. A missed local day
-- consumes a held freeze; a missed day with no freeze left restarts the streak
-- at 1 (the freezes used up on the way stay used, exactly as a nightly job
-- that spent one freeze per missed night would have left them: the lazy
-- computation here gives the same answer whenever it runs). Frozen days keep
-- the streak but do not grow it. Local dates that do not exist in the zone
-- (Samoa skipped 2011-12-30 when it crossed the date line) are not missed.
------------------------------------------------------------------------------

create or replace function private.missed_local_days(p_time_zone text, p_last date, p_today date)
returns integer
language sql
stable
set search_path = ''
as $$
  select case
    when p_last is null or p_today - p_last <= 1 then 0
    when p_today - p_last > 400 then p_today - p_last - 1
    else (
      select count(*)::integer
        from generate_series(p_last + 1, p_today - 1, interval '1 day') as g (day)
       where ((g.day::date::timestamp at time zone p_time_zone) at time zone p_time_zone)::date = g.day::date
    )
  end
$$;
comment on function private.missed_local_days(text, date, date) is
  'How many local dates strictly between two check-in dates existed in a time zone (a date skipped by a '
  'date-line change does not count). 0 for consecutive days.';
revoke all on function private.missed_local_days(text, date, date) from public;

create or replace function private.local_day_start(p_time_zone text, p_day date)
returns timestamptz
language sql
stable
set search_path = ''
as $$
  -- Local midnight; where midnight does not exist (a DST change at 00:00, a skipped date) the first moment
  -- of the next existing local time, as Postgres resolves it.
  select p_day::timestamp at time zone p_time_zone
$$;
comment on function private.local_day_start(text, date) is 'The UTC moment a local date starts in a time zone.';
revoke all on function private.local_day_start(text, date) from public;
grant execute on function private.local_day_start(text, date) to authenticated, service_role;

create or replace function private.check_in_rule()
returns public.check_in_rules
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_rule public.check_in_rules;
begin
  select r.* into v_rule
    from public.engine_settings e join public.check_in_rules r on r.slug = e.check_in_rule
   limit 1;
  if not found then
    raise exception 'No check-in rule is configured (engine_settings.check_in_rule)' using errcode = 'XPCFG';
  end if;
  return v_rule;
end
$$;
comment on function private.check_in_rule() is 'The check-in rule in use; raises XPCFG when none is configured.';
revoke all on function private.check_in_rule() from public;

create or replace function private.check_in_xp(p_rule public.check_in_rules, p_streak integer)
returns integer
language sql
immutable
set search_path = ''
as $$
  select least(p_rule.daily_xp::bigint + p_rule.xp_per_streak_day::bigint * p_streak,
               coalesce(p_rule.max_xp, 2147483647))::integer
$$;
comment on function private.check_in_xp(public.check_in_rules, integer) is
  'XP of a check-in on streak day n: least(daily_xp + xp_per_streak_day * n, max_xp).';
revoke all on function private.check_in_xp(public.check_in_rules, integer) from public;

create or replace function private.streak_status(p_profile_id uuid, p_at timestamptz)
returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_at timestamptz := coalesce(p_at, now());
  v_tz text;
  v_streak public.streaks;
  v_rule public.check_in_rules := private.check_in_rule();
  v_today date;
  v_done boolean;
  v_missed integer := 0;
  v_current integer;
  v_freezes integer;
  v_next_day date;
  v_claimed_until timestamptz;
begin
  perform private.assert_time(p_at, 'at', interval '366 days');
  if p_profile_id is null then
    raise exception 'profile_id is required' using errcode = 'XPBAD';
  end if;
  select p.time_zone into v_tz from public.profiles p where p.id = p_profile_id;
  if not found then
    raise exception 'Unknown profile: %', p_profile_id using errcode = 'XPPRF';
  end if;
  select * into v_streak from public.streaks s where s.profile_id = p_profile_id;
  v_today := (v_at at time zone v_tz)::date;
  -- The last check-in's local day ends in the time zone it was made in (a time zone change claims no day).
  select private.local_day_start(c.time_zone, c.local_date + 1) into v_claimed_until from public.check_ins c
   where c.profile_id = p_profile_id and c.local_date = v_streak.last_check_in_date;
  v_done := v_streak.last_check_in_date is not null
            and (v_today <= v_streak.last_check_in_date or v_at < coalesce(v_claimed_until, v_at));
  v_current := coalesce(v_streak.current_streak, 0);
  v_freezes := coalesce(v_streak.freezes_held, 0);
  if not v_done and v_streak.last_check_in_date is not null then
    -- What a check-in now would find: freezes spent on the missed days, or a broken streak.
    v_missed := private.missed_local_days(v_tz, v_streak.last_check_in_date, v_today);
    if v_missed > v_freezes then
      v_current := 0;
    end if;
    v_freezes := v_freezes - least(v_missed, v_freezes);
  end if;
  v_next_day := case when v_done then greatest(v_streak.last_check_in_date, v_today) + 1 else v_today end;
  if v_done and v_today > v_streak.last_check_in_date then
    v_next_day := v_today;  -- the local day has begun here, the claimed one is not over yet
  end if;
  return jsonb_build_object(
    'profile_id', p_profile_id,
    'current_streak', v_current,
    'longest_streak', coalesce(v_streak.longest_streak, 0),
    'freezes_held', v_freezes,
    'max_freezes_held', v_rule.max_freezes_held,
    'missed_days', v_missed,
    'done_today', v_done,
    'last_check_in_date', v_streak.last_check_in_date,
    'local_date', v_today,
    'time_zone', v_tz,
    'day_ends_at', private.utc_text(private.local_day_start(v_tz, v_today + 1)),
    'next_check_in_at', private.utc_text(greatest(v_at, private.local_day_start(v_tz, v_next_day),
                                                  case when v_done then v_claimed_until end)),
    'next_check_in_xp', private.check_in_xp(v_rule, v_current + 1),
    'rule', v_rule.slug);
end
$$;
comment on function private.streak_status(uuid, timestamptz) is 'Implementation of the streak status RPCs.';
revoke all on function private.streak_status(uuid, timestamptz) from public;
grant execute on function private.streak_status(uuid, timestamptz) to service_role;

create or replace function private.check_in(p_profile_id uuid, p_at timestamptz)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_at timestamptz := coalesce(p_at, now());
  v_profile public.profiles;
  v_rule public.check_in_rules := private.check_in_rule();
  v_streak public.streaks;
  v_today date;
  v_missed integer := 0;
  v_used integer := 0;
  v_freezes integer;
  v_new integer;
  v_restarted boolean := false;
  v_earned boolean := false;
  v_milestone jsonb;
  v_amount integer;
  v_award jsonb;
begin
  perform private.assert_time(p_at, 'at', interval '5 minutes');
  if p_profile_id is null then
    raise exception 'profile_id is required' using errcode = 'XPBAD';
  end if;
  if v_at > now() + interval '5 minutes' then
    raise exception 'A check-in cannot be in the future (at %)', private.utc_text(v_at) using errcode = 'XPBAD';
  end if;
  -- The profile row lock (taken by award_xp too, in the same order) makes concurrent check-ins of one member
  -- run one after the other.
  select * into v_profile from public.profiles p where p.id = p_profile_id for update;
  if not found then
    raise exception 'Unknown profile: %', p_profile_id using errcode = 'XPPRF';
  end if;
  v_today := (v_at at time zone v_profile.time_zone)::date;
  insert into public.streaks (profile_id) values (p_profile_id) on conflict (profile_id) do nothing;
  select * into strict v_streak from public.streaks s where s.profile_id = p_profile_id;

  -- Already checked in today; or (issue 18) the last check-in's local day, in the time zone it was made in,
  -- is not over yet: changing one's time zone (UTC-12 to UTC+14) never claims a second day at one instant.
  if v_streak.last_check_in_date is not null
     and (v_today <= v_streak.last_check_in_date
          or exists (select 1 from public.check_ins c
                      where c.profile_id = p_profile_id and c.local_date = v_streak.last_check_in_date
                        and v_at < private.local_day_start(c.time_zone, c.local_date + 1))) then
    return private.streak_status(p_profile_id, v_at) || jsonb_build_object(
      'checked_in', false, 'streak', v_streak.current_streak, 'freezes_used', 0, 'freeze_earned', false,
      'streak_restarted', false, 'granted', 0, 'xp', null, 'milestone', null);
  end if;

  v_freezes := v_streak.freezes_held;
  if v_streak.last_check_in_date is null then
    v_new := 1;
  else
    v_missed := private.missed_local_days(v_profile.time_zone, v_streak.last_check_in_date, v_today);
    v_used := least(v_missed, v_freezes);
    v_freezes := v_freezes - v_used;
    if v_missed > v_used then
      v_new := 1;
      v_restarted := true;
    else
      v_new := v_streak.current_streak + 1;
    end if;
  end if;

  if v_new % v_rule.freeze_every_days = 0 and v_freezes < v_rule.max_freezes_held then
    v_freezes := v_freezes + 1;
    v_earned := true;
  end if;
  if v_new % v_rule.freeze_every_days = 0 or v_new = any (v_rule.milestone_days) then
    v_milestone := jsonb_build_object('days', v_new, 'freeze_earned', v_earned);
  end if;

  v_amount := private.check_in_xp(v_rule, v_new);
  v_award := private.award_xp(
    p_profile_id, v_rule.activity_slug, 'check_in:' || p_profile_id || ':' || v_today, v_amount, v_at,
    jsonb_build_object('check_in', jsonb_build_object('local_date', v_today, 'streak', v_new)));

  update public.streaks s
     set current_streak = v_new,
         longest_streak = greatest(s.longest_streak, v_new),
         freezes_held = v_freezes,
         last_check_in_date = v_today,
         updated_at = now()
   where s.profile_id = p_profile_id;
  insert into public.check_ins (profile_id, local_date, time_zone, checked_in_at, streak, missed_days,
                                freezes_used, freeze_earned, xp, ledger_id)
  values (p_profile_id, v_today, v_profile.time_zone, v_at, v_new, v_missed, v_used, v_earned,
          (v_award ->> 'granted')::integer, (v_award ->> 'ledger_id')::bigint);

  if v_milestone is not null then
    insert into public.notifications (profile_id, kind, title, body, data)
    values (p_profile_id, 'streak_milestone', v_new || '-day streak',
            case when v_earned then 'You earned a streak freeze.' else '' end,
            v_milestone || jsonb_build_object('local_date', v_today, 'freezes_held', v_freezes));
  end if;

  return private.streak_status(p_profile_id, v_at) || jsonb_build_object(
    'checked_in', true,
    'streak', v_new,
    'missed_days', v_missed,
    'freezes_used', v_used,
    'freeze_earned', v_earned,
    'streak_restarted', v_restarted,
    'granted', (v_award ->> 'granted')::integer,
    'xp', v_award,
    'milestone', v_milestone);
end
$$;
comment on function private.check_in(uuid, timestamptz) is 'Implementation of the check-in RPCs.';
revoke all on function private.check_in(uuid, timestamptz) from public;
grant execute on function private.check_in(uuid, timestamptz) to service_role;

create or replace function private.check_in_self()
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_uid uuid := (select auth.uid());
begin
  if v_uid is null then
    raise exception 'Sign in to check in' using errcode = '42501';
  end if;
  return private.check_in(v_uid, null);
end
$$;
comment on function private.check_in_self() is 'Implementation of public.check_in: the caller''s own check-in, now.';
revoke all on function private.check_in_self() from public;
grant execute on function private.check_in_self() to authenticated;

create or replace function private.streak_status_self()
returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_uid uuid := (select auth.uid());
begin
  if v_uid is null then
    raise exception 'Sign in to see your streak' using errcode = '42501';
  end if;
  return private.streak_status(v_uid, null);
end
$$;
comment on function private.streak_status_self() is 'Implementation of public.streak_status: the caller''s own streak, now.';
revoke all on function private.streak_status_self() from public;
grant execute on function private.streak_status_self() to authenticated;

create or replace function public.check_in()
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.check_in_self()
$$;
comment on function public.check_in() is
  'The signed-in member''s daily check-in (one per local day in their profile time zone). Returns a receipt: '
  'checked_in (false when today is already done, or the day of the last check-in, in the time zone it was '
  'made in, is not over yet, so a time zone change never claims a second day; nothing changes), local_date, time_zone, streak, '
  'longest_streak, current_streak, freezes_held, freezes_used (this check-in), missed_days, freeze_earned, '
  'streak_restarted, granted (XP), xp (the award_xp receipt of the daily_check_in activity, idempotency key '
  'check_in:<profile>:<local date>), milestone ({days, freeze_earned} or null), day_ends_at and '
  'next_check_in_at (UTC), next_check_in_xp. Errors: 42501 when not signed in, XPPRF, XPCFG.';
revoke all on function public.check_in() from public, anon;
grant execute on function public.check_in() to authenticated;

create or replace function public.service_role_check_in(profile_id uuid, at timestamptz default null)
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.check_in(service_role_check_in.profile_id, service_role_check_in.at)
$$;
comment on function public.service_role_check_in(uuid, timestamptz) is
  'check_in for a profile (the bot''s /checkin), as of at (default now; for tests and backfills). Same receipt '
  'as public.check_in. Errors: XPBAD, XPPRF, XPCFG. service_role only.';
revoke all on function public.service_role_check_in(uuid, timestamptz) from public, anon, authenticated;
grant execute on function public.service_role_check_in(uuid, timestamptz) to service_role;

create or replace function public.streak_status()
returns jsonb
language sql
stable
security invoker
set search_path = ''
as $$
  select private.streak_status_self()
$$;
comment on function public.streak_status() is
  'The signed-in member''s streak as a check-in now would find it: current_streak (0 when missed days broke '
  'it), longest_streak, freezes_held (after the missed days took theirs), max_freezes_held, missed_days, '
  'done_today, last_check_in_date, local_date, time_zone, day_ends_at (UTC, end of the local day), '
  'next_check_in_at (UTC), next_check_in_xp, rule. Errors: 42501 when not signed in.';
revoke all on function public.streak_status() from public, anon;
grant execute on function public.streak_status() to authenticated;

create or replace function public.service_role_streak_status(profile_id uuid, at timestamptz default null)
returns jsonb
language sql
stable
security invoker
set search_path = ''
as $$
  select private.streak_status(service_role_streak_status.profile_id, service_role_streak_status.at)
$$;
comment on function public.service_role_streak_status(uuid, timestamptz) is
  'streak_status for a profile as of at (default now). Errors: XPBAD, XPPRF. service_role only.';
revoke all on function public.service_role_streak_status(uuid, timestamptz) from public, anon, authenticated;
grant execute on function public.service_role_streak_status(uuid, timestamptz) to service_role;
