-- hardening_functions
--
-- Written by `xpbase migration new` from the feature files in supabase/sql/:
-- the function and trigger definitions that changed since the last migration.
-- Edit the feature files, not this file; landed migrations never change.
-- Changed:
--   function private.assert_time(timestamptz, text, interval)
--   function private.assert_json_size(jsonb, text, int4)
--   function private.clean_display_name(text)
--   function private.ensure_profile(text, text, text)
--   function private.own_profile(uuid)
--   function private.update_own_profile(uuid, jsonb)
--   function public.my_profile()
--   function public.update_my_profile(jsonb)
--   function private.tg_profiles__validate()
--   function private.award_xp(uuid, text, text, int4, timestamptz, jsonb, text)
--   function public.award_xp(uuid, text, text, int4, timestamptz, jsonb, text)
--   function public.points_statement(uuid, int4, int8)
--   function private.award_xp_batch(jsonb)
--   function public.service_role_award_xp_batch(jsonb)
--   function private.finalize_seasons(timestamptz)
--   function public.finalize_seasons(timestamptz)
--   function private.streak_status(uuid, timestamptz)
--   function private.check_in(uuid, timestamptz)
--   function public.check_in()
--   function private.expire_payment_orders(timestamptz)
--   function public.xp_timeline(uuid, text, int4, timestamptz)
--   function public.dashboard_stats(uuid, text, timestamptz)
--   function private.queue_streak_reminders(timestamptz)
--   function private.review_action(uuid, int8, text, text)
--   function private.review_match_input(uuid, timestamptz, int4, int4)
--   function private.book_review(uuid, int8, uuid, timestamptz, int4, uuid, float8, jsonb, text)

-- from supabase/sql/00_helpers.sql ------------------------------------------

------------------------------------------------------------------------------
-- Input bounds (issue 18): every time an RPC takes lies in a sane window
------------------------------------------------------------------------------
create or replace function private.assert_time(p_at timestamptz, p_name text, p_ahead interval)
returns timestamptz
language plpgsql
stable
set search_path = ''
as $$
-- Null passes through (the caller's default applies). The window is [2000-01-01T00:00Z, now() + p_ahead]:
-- XPINF for +-infinity, XPTIM for a finite moment outside it.
begin
  if p_at is null then
    return null;
  end if;
  if not isfinite(p_at) then
    raise exception '% is %: give a finite moment (2000-01-01 to now + %)', p_name, p_at, p_ahead
      using errcode = 'XPINF';
  end if;
  if p_at < timestamptz '2000-01-01 00:00:00+00' or p_at > now() + p_ahead then
    raise exception '% % is outside 2000-01-01T00:00:00Z .. now + %', p_name,
      to_char(p_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), p_ahead
      using errcode = 'XPTIM';
  end if;
  return p_at;
end
$$;

comment on function private.assert_time(timestamptz, text, interval) is
  'p_at when it lies in [2000-01-01T00:00Z, now() + p_ahead] (null passes): raises XPINF for +-infinity and '
  'XPTIM for any other moment outside the window; p_name names the parameter in the message. Writes use '
  'p_ahead 5 minutes (clock skew), reads 366 days.';

revoke all on function private.assert_time(timestamptz, text, interval) from public;

grant execute on function private.assert_time(timestamptz, text, interval) to authenticated, service_role;

create or replace function private.assert_json_size(p_value jsonb, p_name text, p_max_bytes integer)
returns jsonb
language plpgsql
immutable
set search_path = ''
as $$
begin
  if p_value is not null and octet_length(p_value::text) > p_max_bytes then
    raise exception '% is % bytes as JSON text; at most % allowed', p_name, octet_length(p_value::text), p_max_bytes
      using errcode = 'XPBIG';
  end if;
  return p_value;
end
$$;

comment on function private.assert_json_size(jsonb, text, integer) is
  'p_value when its JSON text is at most p_max_bytes bytes (null passes); raises XPBIG otherwise.';

revoke all on function private.assert_json_size(jsonb, text, integer) from public;

-- from supabase/sql/10_profiles.sql -----------------------------------------

-- Profiles and identities: making or finding the profile of a (provider, subject), and
-- validating what members and admins edit on a profile (display name, bio, avatar, links, time zone).
--
-- Tables: public.profiles, public.identities.
-- Tests: tests/sql/test_profiles.py

------------------------------------------------------------------------------
-- Profiles and identities
------------------------------------------------------------------------------
create or replace function private.clean_display_name(p_name text)
returns text
language sql
immutable
set search_path = ''
as $$
  -- NFC, without control, zero-width and bidi-override characters, trimmed, at most 64 characters; null when
  -- nothing is left (issue 18: names arrive from Discord and OAuth providers as they are). Only the first 1024
  -- characters are looked at, so a 10 MB name costs what a short one does.
  select left(nullif(btrim(regexp_replace(normalize(left(coalesce(p_name, ''), 1024), nfc),
                                          '[\u0001-\u001F\u007F-\u009F\u00AD\u061C\u180E\u200B-\u200F\u202A-\u202E\u2060-\u206F\uFEFF]',
                                          '', 'g')), ''), 64)
$$;

comment on function private.clean_display_name(text) is
  'A display name from an outside source made acceptable: NFC-normalised, control, zero-width and bidi '
  'control characters removed, trimmed, at most 64 characters; null when nothing is left.';

revoke all on function private.clean_display_name(text) from public;

create or replace function private.ensure_profile(p_provider text, p_subject text, p_display_name text)
returns uuid
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_id uuid;
  v_name text := private.clean_display_name(p_display_name);
begin
  if p_provider is null or p_provider !~ '^[a-z][a-z0-9_.:-]{0,63}$' then
    raise exception 'provider must match ^[a-z][a-z0-9_.:-]{0,63}$, got %', coalesce(p_provider, 'null')
      using errcode = 'XPBAD';
  end if;
  if p_subject is null or length(p_subject) not between 1 and 255 then
    raise exception 'subject must be 1 to 255 characters' using errcode = 'XPBAD';
  end if;

  select i.profile_id into v_id from public.identities i
   where i.provider = p_provider and i.subject = p_subject;
  if v_id is not null then
    return v_id;
  end if;

  -- Serialise first sight of one identity so two callers make one profile.
  perform pg_advisory_xact_lock(hashtextextended(p_provider || chr(31) || p_subject, 0));
  select i.profile_id into v_id from public.identities i
   where i.provider = p_provider and i.subject = p_subject;
  if v_id is not null then
    return v_id;
  end if;

  insert into public.profiles (display_name, tier)
  values (coalesce(v_name, p_provider || ' member'), public.tier_for_level(1))
  returning id into v_id;
  insert into public.identities (profile_id, provider, subject) values (v_id, p_provider, p_subject);
  return v_id;
end
$$;

comment on function private.ensure_profile(text, text, text) is 'Implementation of public.ensure_profile.';

revoke all on function private.ensure_profile(text, text, text) from public;

grant execute on function private.ensure_profile(text, text, text) to service_role;

create or replace function private.own_profile(p_profile_id uuid)
returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_row public.profiles;
begin
  if p_profile_id is null then
    raise exception 'Sign in to read your profile' using errcode = '42501';
  end if;
  select * into v_row from public.profiles p where p.id = p_profile_id;
  if not found then
    raise exception 'Unknown profile: %', p_profile_id using errcode = 'XPPRF';
  end if;
  return jsonb_build_object(
    'id', v_row.id, 'display_name', v_row.display_name, 'bio', v_row.bio, 'avatar_url', v_row.avatar_url,
    'social_links', v_row.social_links, 'time_zone', v_row.time_zone,
    'leaderboard_visible', v_row.leaderboard_visible, 'role', v_row.role, 'xp', v_row.xp,
    'level', v_row.level, 'tier', v_row.tier, 'points', v_row.points, 'created_at', v_row.created_at);
end
$$;

comment on function private.own_profile(uuid) is
  'A profile as its owner sees it (every column a member may see of their own row). Called with the caller''s '
  'own id by public.my_profile and public.update_my_profile only.';

revoke all on function private.own_profile(uuid) from public;

grant execute on function private.own_profile(uuid) to authenticated;

create or replace function private.update_own_profile(p_profile_id uuid, p_changes jsonb)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
begin
  update public.profiles p
     set display_name = coalesce(p_changes ->> 'display_name', p.display_name),
         bio = coalesce(p_changes ->> 'bio', p.bio),
         avatar_url = case when p_changes ? 'avatar_url' then p_changes ->> 'avatar_url' else p.avatar_url end,
         social_links = coalesce(p_changes -> 'social_links', p.social_links),
         time_zone = coalesce(p_changes ->> 'time_zone', p.time_zone),
         leaderboard_visible = coalesce((p_changes ->> 'leaderboard_visible')::boolean, p.leaderboard_visible)
   where p.id = p_profile_id;
  if not found then
    raise exception 'Unknown profile: %', p_profile_id using errcode = 'XPPRF';
  end if;
  return private.own_profile(p_profile_id);
end
$$;

comment on function private.update_own_profile(uuid, jsonb) is
  'The write of public.update_my_profile (changes already validated), for the caller''s own id only.';

revoke all on function private.update_own_profile(uuid, jsonb) from public;

grant execute on function private.update_own_profile(uuid, jsonb) to authenticated;

create or replace function public.my_profile()
returns jsonb
language sql
stable
security invoker
set search_path = ''
as $$
  select private.own_profile((select auth.uid()))
$$;

comment on function public.my_profile() is
  'The signed-in member''s own profile, with the columns only its owner may read (issue 18: other members see '
  'the leaderboard columns of public.profiles, not bio, social_links or points): {id, display_name, bio, '
  'avatar_url, social_links, time_zone, leaderboard_visible, role, xp, level, tier, points, created_at}. '
  'Errors: 42501 when not signed in, XPPRF.';

revoke all on function public.my_profile() from public, anon, service_role;

grant execute on function public.my_profile() to authenticated;

create or replace function public.update_my_profile(changes jsonb)
returns jsonb
language plpgsql
volatile
security invoker
set search_path = ''
as $$
declare
  v_uid uuid := (select auth.uid());
  v_unknown text;
  v_bad text;
begin
  if v_uid is null then
    raise exception 'Sign in to edit your profile' using errcode = '42501';
  end if;
  if update_my_profile.changes is null or jsonb_typeof(update_my_profile.changes) <> 'object' then
    raise exception 'changes must be a JSON object' using errcode = 'XPBAD';
  end if;
  select string_agg(k.key, ', ' order by k.key) into v_unknown
    from jsonb_object_keys(update_my_profile.changes) as k (key)
   where k.key not in ('display_name', 'bio', 'avatar_url', 'social_links', 'time_zone', 'leaderboard_visible');
  if v_unknown is not null then
    raise exception 'Not editable: % (editable: display_name, bio, avatar_url, social_links, time_zone, '
      'leaderboard_visible)', v_unknown using errcode = 'XPBAD';
  end if;
  select string_agg(c.key, ', ' order by c.key) into v_bad
    from jsonb_each(update_my_profile.changes) as c (key, value)
   where jsonb_typeof(c.value) <> case c.key
           when 'social_links' then 'object'
           when 'leaderboard_visible' then 'boolean'
           else 'string' end
     and not (c.key = 'avatar_url' and jsonb_typeof(c.value) = 'null');
  if v_bad is not null then
    raise exception 'Wrong type for % (text, avatar_url text or null, social_links an object, '
      'leaderboard_visible a boolean)', v_bad using errcode = 'XPBAD';
  end if;
  -- The write runs in private.update_own_profile: members may not read bio, social_links and points of
  -- profiles (issue 18), and an update that keeps a column's value must read it.
  return private.update_own_profile(v_uid, update_my_profile.changes);
end
$$;

comment on function public.update_my_profile(jsonb) is
  'Edits the signed-in member''s own profile: changes is an object with any of display_name (1-64 characters, '
  'trimmed, NFC; XPNAM for control, zero-width or bidi control characters), bio (at most 500), avatar_url (a plain https URL, at most 500, XPURL otherwise, or null to clear), social_links (an object, '
  'at most 2000 characters as JSON), time_zone (an IANA name) and leaderboard_visible (boolean); keys left out '
  'stay as they are. Returns the profile as its owner sees it: {id, display_name, bio, avatar_url, '
  'social_links, time_zone, leaderboard_visible, role, xp, level, tier, points, created_at}. Validates as the '
  'caller, writes the caller''s own row alone (private.update_own_profile). Errors: 42501 when not signed in, XPBAD (an '
  'unknown key, a wrong type, an unknown time zone), 23514 or 22001 (a value outside the table''s checks), XPPRF.';

revoke all on function public.update_my_profile(jsonb) from public, anon;

grant execute on function public.update_my_profile(jsonb) to authenticated;

create or replace function private.tg_profiles__validate()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  -- Display names (issue 18): NFC, and no control, zero-width or bidi-override characters (they reorder or hide
  -- text wherever a name is shown). Avatars: a plain https URL, nothing a page could break out of.
  new.display_name := btrim(normalize(new.display_name, nfc));
  if new.display_name ~ '[--­؜᠎​-‏‪-‮⁠-⁯﻿]' then
    raise exception 'display_name may not contain control, zero-width or bidi control characters'
      using errcode = 'XPNAM';
  end if;
  if new.avatar_url is not null and (tg_op = 'INSERT' or new.avatar_url is distinct from old.avatar_url)
     and new.avatar_url !~ '^https://[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?(:[0-9]{1,5})?(/[A-Za-z0-9._~!$&()*+,;=:@%/-]*)?([?][A-Za-z0-9._~!$&()*+,;=:@%/?-]*)?$' then
    raise exception 'avatar_url must be a plain https URL (host, path and query; no spaces, quotes or brackets)'
      using errcode = 'XPURL';
  end if;
  if tg_op = 'UPDATE' then
    new.updated_at := now();
  end if;
  if (tg_op = 'INSERT' or new.time_zone is distinct from old.time_zone)
     and new.time_zone <> 'UTC'
     and not exists (select 1 from pg_catalog.pg_timezone_names z where z.name = new.time_zone) then
    raise exception 'Unknown time zone: % (use an IANA name such as Europe/Berlin)', new.time_zone
      using errcode = 'XPBAD';
  end if;
  return new;
end
$$;

comment on function private.tg_profiles__validate() is
  'Trims and NFC-normalises the display name and refuses control, zero-width and bidi control characters '
  '(XPNAM), refuses an avatar_url that is not a plain https URL (XPURL), stamps updated_at and checks the time '
  'zone is an IANA name (inserts and updates of the editable columns).';

revoke all on function private.tg_profiles__validate() from public;

-- from supabase/sql/30_award.sql --------------------------------------------

------------------------------------------------------------------------------
-- award_xp: the one award path
------------------------------------------------------------------------------
create or replace function private.award_xp(
  p_profile_id uuid,
  p_activity text,
  p_idempotency_key text,
  p_amount integer,
  p_occurred_at timestamptz,
  p_context jsonb,
  p_reason text default null
)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_context jsonb := coalesce(p_context, '{}');
  v_request jsonb;
  v_first_request jsonb;
  v_receipt jsonb;
  v_act public.activity_types;
  v_cap_slug text;
  v_daily_cap integer;
  v_max_multiplier numeric;
  v_profile_xp bigint;
  v_layer_xp bigint;
  v_occurred timestamptz := coalesce(p_occurred_at, now());
  v_base integer;
  v_multiplier numeric := 1;
  v_multipliers jsonb := '[]';
  v_amount integer;
  v_last timestamptz;
  v_cooldown_left integer := 0;
  v_day date;
  v_used integer;
  v_capped boolean := false;
  v_floored boolean := false;
  v_cap_info jsonb;
  v_rate integer;
begin
  if p_idempotency_key is null or length(p_idempotency_key) not between 1 and 200 then
    raise exception 'idempotency_key must be 1 to 200 characters' using errcode = 'XPBAD';
  end if;
  if p_profile_id is null then
    raise exception 'profile_id is required' using errcode = 'XPBAD';
  end if;
  if jsonb_typeof(v_context) <> 'object' then
    raise exception 'context must be a JSON object' using errcode = 'XPBAD';
  end if;
  if v_context ? 'role_ids' and jsonb_typeof(v_context -> 'role_ids') <> 'array' then
    raise exception 'context.role_ids must be an array' using errcode = 'XPBAD';
  end if;
  if p_reason is not null and length(btrim(p_reason)) not between 1 and 500 then
    raise exception 'reason must be 1 to 500 characters when given' using errcode = 'XPBAD';
  end if;
  -- Awards happen now or in the past (replays, from 2000 on); five minutes of clock skew are tolerated.
  perform private.assert_time(p_occurred_at, 'occurred_at', interval '5 minutes');
  perform private.assert_json_size(v_context, 'context', 4096);

  v_request := jsonb_build_object(
    'fn', 'award_xp', 'profile_id', p_profile_id, 'activity', p_activity, 'amount', p_amount,
    'occurred_at', private.utc_text(p_occurred_at), 'context', v_context);
  -- The reason joins the request only when given, so requests recorded before awards took one still match.
  if p_reason is not null then
    v_request := v_request || jsonb_build_object('reason', btrim(p_reason));
  end if;

  -- A replay answers from the ledger without taking any lock (private.find_receipt, written inline here
  -- and below because every award runs it).
  select l.request, l.receipt into v_first_request, v_receipt
    from public.xp_ledger l where l.idempotency_key = p_idempotency_key
   limit 1;
  if found then
    if v_first_request is distinct from v_request then
      raise exception 'Idempotency key % was already used with other parameters', p_idempotency_key
        using errcode = 'XPIDM', detail = 'first request: ' || v_first_request::text;
    end if;
    return v_receipt || jsonb_build_object('replayed', true);
  end if;

  select * into v_act from public.activity_types a where a.slug = p_activity;
  if not found or not v_act.active then
    raise exception 'Unknown or inactive activity: %', coalesce(p_activity, 'null') using errcode = 'XPACT';
  end if;
  -- The rate in force at occurred_at (public.activity_rates) replaces the activity's own base_xp.
  select r.base_xp into v_rate from public.activity_rates r
   where r.activity_slug = v_act.slug and r.effective_from <= v_occurred
   order by r.effective_from desc
   limit 1;
  if found then
    v_act.base_xp := v_rate;
  end if;

  -- The profile row lock serialises every award of one member: cooldowns, caps
  -- and totals are decided on a consistent view.
  select p.xp into v_profile_xp from public.profiles p where p.id = p_profile_id for update;
  if not found then
    raise exception 'Unknown profile: %', p_profile_id using errcode = 'XPPRF';
  end if;
  -- The key lock serialises one key across profiles: a racing call for another
  -- profile waits, then finds this row and raises XPIDM (not a unique violation).
  perform pg_advisory_xact_lock(hashtextextended('xp_ledger:' || p_idempotency_key, 0));
  select l.request, l.receipt into v_first_request, v_receipt
    from public.xp_ledger l where l.idempotency_key = p_idempotency_key
   limit 1;
  if found then
    if v_first_request is distinct from v_request then
      raise exception 'Idempotency key % was already used with other parameters', p_idempotency_key
        using errcode = 'XPIDM', detail = 'first request: ' || v_first_request::text;
    end if;
    return v_receipt || jsonb_build_object('replayed', true);
  end if;

  -- Under the lock: the activity's cap group with today's usage, and the multiplier cap (one statement).
  select c.slug, c.daily_cap, (v_occurred at time zone c.time_zone)::date, u.used, s.max_multiplier
    into v_cap_slug, v_daily_cap, v_day, v_used, v_max_multiplier
    from (select) one
    left join public.cap_groups c on c.slug = v_act.cap_group
    left join private.daily_cap_usage u
      on u.profile_id = p_profile_id and u.cap_group = c.slug
     and u.day = (v_occurred at time zone c.time_zone)::date
    left join lateral (select e.max_multiplier from public.engine_settings e limit 1) s on true;

  -- Amount: fixed, or a caller-named amount inside the activity's range.
  if p_amount is null then
    v_base := v_act.base_xp;
  elsif v_act.min_xp is null then
    if p_amount <> v_act.base_xp then
      raise exception 'Activity % grants a fixed % XP, not %', v_act.slug, v_act.base_xp, p_amount
        using errcode = 'XPAMT';
    end if;
    v_base := p_amount;
  elsif p_amount not between v_act.min_xp and v_act.max_xp then
    raise exception 'Activity % allows % to % XP, not %', v_act.slug, v_act.min_xp, v_act.max_xp, p_amount
      using errcode = 'XPAMT';
  else
    v_base := p_amount;
  end if;
  v_amount := v_base;

  -- Multipliers: the largest factor per kind, kinds multiply, capped.
  if v_base > 0 then
    select coalesce(exp(sum(ln(m.factor))), 1),
           coalesce(jsonb_agg(jsonb_build_object('kind', m.kind, 'match', m.match_value, 'factor', m.factor)
                              order by m.kind), '[]')
      into v_multiplier, v_multipliers
      from (
        select distinct on (x.kind) x.kind, x.match_value, x.factor
          from public.multipliers x
         where (x.activity_slug is null or x.activity_slug = v_act.slug)
           and (x.starts_at is null or x.starts_at <= v_occurred)
           and (x.ends_at is null or v_occurred < x.ends_at)
           and (
             (x.kind = 'role' and v_context ? 'role_ids'
                and x.match_value in (select jsonb_array_elements_text(v_context -> 'role_ids')))
             or (x.kind = 'channel' and x.match_value = v_context ->> 'channel_id')
             or (x.kind = 'event' and (x.match_value is null or x.match_value = v_context ->> 'event_id'))
           )
         order by x.kind, x.factor desc
      ) m;
    v_multiplier := round(least(v_multiplier, coalesce(v_max_multiplier, 5)), 3);
    v_amount := floor(v_base * v_multiplier);
  end if;

  -- Cooldown: at most one credited award of this activity per window.
  if v_act.cooldown_seconds > 0 and v_amount > 0 then
    select max(l.occurred_at) into v_last
      from public.xp_ledger l
     where l.profile_id = p_profile_id
       and l.activity_slug = v_act.slug
       and l.amount > 0
       and l.occurred_at > v_occurred - make_interval(secs => v_act.cooldown_seconds)
       and l.occurred_at < v_occurred + make_interval(secs => v_act.cooldown_seconds);
    if v_last is not null then
      v_cooldown_left := greatest(1, ceil(extract(epoch from
                           v_last + make_interval(secs => v_act.cooldown_seconds) - v_occurred))::integer);
      v_amount := 0;
    end if;
  end if;

  -- Daily cap of the activity's cap group, in the group's time zone.
  if v_act.cap_group is not null then
    v_used := coalesce(v_used, 0);
    if v_amount > 0 and v_used + v_amount > v_daily_cap then
      v_amount := greatest(v_daily_cap - v_used, 0);
      v_capped := true;
    end if;
  end if;

  -- Floor: a negative award never takes the layer's XP below the activity's xp_floor (0 by
  -- default, so neither a layer's XP nor the total goes below zero); at or below it, it grants 0.
  if v_amount < 0 then
    select coalesce(max(pl.xp), 0) into v_layer_xp from public.profile_layers pl
     where pl.profile_id = p_profile_id and pl.layer_slug = v_act.layer_slug;
    if v_layer_xp + v_amount < v_act.xp_floor then
      v_amount := least(v_act.xp_floor - v_layer_xp, 0);
      v_floored := true;
    end if;
  end if;

  if v_act.cap_group is not null and v_amount <> 0 then
    insert into private.daily_cap_usage as u (profile_id, cap_group, day, used)
    values (p_profile_id, v_cap_slug, v_day, v_amount)
    on conflict (profile_id, cap_group, day) do update set used = u.used + excluded.used;
    v_used := v_used + v_amount;
  end if;
  if v_act.cap_group is not null then
    v_cap_info := jsonb_build_object('group', v_cap_slug, 'daily_cap', v_daily_cap, 'day', v_day,
                                     'used', v_used, 'remaining', greatest(v_daily_cap - v_used, 0));
  end if;

  return private.apply_xp(
    p_profile_id, v_act.slug,
    jsonb_build_array(jsonb_build_object('layer', v_act.layer_slug, 'amount', v_amount)),
    v_occurred, p_idempotency_key, null, 'service_role', btrim(p_reason), v_request,
    jsonb_build_object(
      'requested', p_amount,
      'base', v_base,
      'multiplier', v_multiplier,
      'multipliers', v_multipliers,
      'cooldown', v_cooldown_left > 0,
      'cooldown_remaining_seconds', v_cooldown_left,
      'capped', v_capped,
      'cap', v_cap_info,
      'floored', v_floored));
end
$$;

comment on function private.award_xp(uuid, text, text, integer, timestamptz, jsonb, text) is 'Implementation of public.award_xp.';

revoke all on function private.award_xp(uuid, text, text, integer, timestamptz, jsonb, text) from public;

grant execute on function private.award_xp(uuid, text, text, integer, timestamptz, jsonb, text) to service_role;

create or replace function public.award_xp(
  profile_id uuid,
  activity text,
  idempotency_key text,
  amount integer default null,
  occurred_at timestamptz default null,
  context jsonb default '{}',
  reason text default null
)
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.award_xp(award_xp.profile_id, award_xp.activity, award_xp.idempotency_key,
                          award_xp.amount, award_xp.occurred_at, award_xp.context, award_xp.reason)
$$;

comment on function public.award_xp(uuid, text, text, integer, timestamptz, jsonb, text) is
  'The one award path. Grants XP for an activity to a profile and returns a receipt (jsonb): granted (XP '
  'actually credited), base, requested, multiplier and multipliers, cooldown (bool) and '
  'cooldown_remaining_seconds, capped (bool) and cap {group, daily_cap, day, used, remaining}, floored, '
  'total_xp_before/total_xp, level_before/level, tier_before/tier, layer, layer_xp, '
  'layer_status_before/layer_status, season_id, season_xp (null when occurred_at lies in a season already '
  'finalised: season_closed = true, the award counts for all-time and layer XP only), points_granted, points, unlocks '
  '[{tier, slug, name}], tier_up (a new tier was reached) and tier_name, ledger_id, replayed. The base is the rate in force at occurred_at '
  '(public.activity_rates) or the activity''s base_xp; a penalty stops at the activity''s xp_floor. '
  'amount (XP) may only be named for activities with a range; '
  'occurred_at defaults to now (UTC); context carries role_ids (array of text), channel_id and event_id for '
  'multipliers, at most 4096 bytes as JSON text (XPBIG); reason (1-500 characters, optional) is stored on the '
  'ledger row and joins the request. occurred_at lies in [2000-01-01T00:00Z, now + 5 minutes] (XPTIM; XPINF for '
  '+-infinity). The same idempotency_key returns the first receipt (replayed = true) and credits nothing. '
  'Errors: XPIDM key reused with other parameters, XPACT unknown activity, XPAMT amount not allowed, '
  'XPPRF unknown profile, XPBAD malformed arguments. service_role only.';

revoke all on function public.award_xp(uuid, text, text, integer, timestamptz, jsonb, text) from public, anon, authenticated;

grant execute on function public.award_xp(uuid, text, text, integer, timestamptz, jsonb, text) to service_role;

-- from supabase/sql/32_points.sql -------------------------------------------

------------------------------------------------------------------------------
-- Reading
------------------------------------------------------------------------------
create or replace function public.points_statement(
  profile_id uuid default null,
  size integer default 20,
  before_id bigint default null
)
returns jsonb
language plpgsql
stable
security invoker
set search_path = ''
as $$
declare
  v_profile uuid := coalesce(points_statement.profile_id, (select auth.uid()));
  v_balance bigint;
  v_entries jsonb;
begin
  if v_profile is null then
    raise exception 'profile_id is required' using errcode = 'XPBAD';
  end if;
  if points_statement.size is null or points_statement.size not between 1 and 100 then
    raise exception 'size must be 1 to 100' using errcode = 'XPBAD';
  end if;
  if (select auth.role()) is distinct from 'service_role' and v_profile is distinct from (select auth.uid()) then
    raise exception 'Members read only their own points' using errcode = '42501';
  end if;
  -- The balance after the newest points-ledger row (members may not read profiles.points of the table).
  select coalesce((select l.balance_after from public.points_ledger l
                    where l.profile_id = p.id order by l.id desc limit 1), 0)
    into v_balance from public.profiles p where p.id = v_profile;
  if not found then
    raise exception 'Unknown profile: %', v_profile using errcode = 'XPPRF';
  end if;
  select coalesce(jsonb_agg(jsonb_build_object(
           'id', l.id, 'kind', l.kind, 'amount', l.amount, 'balance_after', l.balance_after,
           'reason', l.reason, 'actor_id', l.actor_id, 'ref', l.ref,
           'created_at', to_char(l.created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))
           order by l.id desc), '[]')
    into v_entries
    from (select * from public.points_ledger l
           where l.profile_id = v_profile and (points_statement.before_id is null or l.id < points_statement.before_id)
           order by l.id desc limit points_statement.size) l;
  return jsonb_build_object(
    'profile_id', v_profile, 'balance', v_balance, 'entries', v_entries,
    'next_before_id', case when jsonb_array_length(v_entries) = points_statement.size
                           then (v_entries -> -1 ->> 'id')::bigint end);
end
$$;

comment on function public.points_statement(uuid, integer, bigint) is
  'A member''s points: {profile_id, balance, entries: [{id, kind, amount, balance_after, reason, actor_id, ref, '
  'created_at (UTC)}] newest first, next_before_id (pass as before_id for the next page, null at the end)}. '
  'profile_id defaults to the caller; size 1 to 100. Members read only their own (42501 otherwise); '
  'service_role reads anyone''s. Errors: XPBAD, XPPRF, 42501.';

revoke all on function public.points_statement(uuid, integer, bigint) from public, anon;

grant execute on function public.points_statement(uuid, integer, bigint) to service_role, authenticated;

-- from supabase/sql/38_rule_packs.sql ---------------------------------------

create or replace function private.award_xp_batch(p_awards jsonb)
returns table (
  idempotency_key text,
  granted integer,
  replayed boolean,
  capped boolean,
  floored boolean,
  cooldown boolean
)
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_item jsonb;
  v_index bigint := 0;
  v_receipt jsonb;
  v_state text;
  v_message text;
  v_detail text;
begin
  if p_awards is null or jsonb_typeof(p_awards) <> 'array' then
    raise exception 'awards must be a JSON array' using errcode = 'XPBAD';
  end if;
  if jsonb_array_length(p_awards) > 10000 then
    raise exception 'awards may hold at most 10000 items, got %', jsonb_array_length(p_awards)
      using errcode = 'XPBAD';
  end if;

  -- One block for the whole batch (one subtransaction, not one per item): any
  -- failure rolls the batch back and names the item.
  begin
    -- Lock order (issue 18): every profile the batch names, in profile id order, before the first award, so
    -- two batches over the same members in opposite orders wait for each other instead of deadlocking.
    perform 1 from public.profiles p
     where p.id in (select (a.value ->> 'profile_id')::uuid from jsonb_array_elements(p_awards) as a
                     where jsonb_typeof(a.value) = 'object'
                       and a.value ->> 'profile_id' ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$')
     order by p.id
     for update;
    for v_item in select a.value from jsonb_array_elements(p_awards) as a loop
      if jsonb_typeof(v_item) <> 'object' then
        raise exception 'must be a JSON object' using errcode = 'XPBAD';
      end if;
      if exists (select 1 from jsonb_object_keys(v_item) k
                  where k not in ('profile_id', 'activity', 'idempotency_key', 'amount', 'occurred_at', 'context',
                                  'reason')) then
        raise exception 'unknown key; allowed: profile_id, activity, idempotency_key, amount, occurred_at, context, reason'
          using errcode = 'XPBAD';
      end if;
      v_receipt := private.award_xp(
        (v_item ->> 'profile_id')::uuid,
        v_item ->> 'activity',
        v_item ->> 'idempotency_key',
        (v_item ->> 'amount')::integer,
        (v_item ->> 'occurred_at')::timestamptz,
        coalesce(v_item -> 'context', '{}'),
        v_item ->> 'reason');
      idempotency_key := v_item ->> 'idempotency_key';
      granted := (v_receipt ->> 'granted')::integer;
      replayed := (v_receipt ->> 'replayed')::boolean;
      capped := coalesce((v_receipt ->> 'capped')::boolean, false);
      floored := coalesce((v_receipt ->> 'floored')::boolean, false);
      cooldown := coalesce((v_receipt ->> 'cooldown')::boolean, false);
      v_index := v_index + 1;
      return next;
    end loop;
  exception when others then
    get stacked diagnostics v_state = returned_sqlstate, v_message = message_text, v_detail = pg_exception_detail;
    if v_state in ('22P02', '22007', '22008', '22003', '22023') then
      v_state := 'XPBAD';  -- a malformed uuid, timestamp or integer in the item
    end if;
    raise exception 'awards[%]: %', v_index, v_message using errcode = v_state, detail = coalesce(v_detail, '');
  end;
end
$$;

comment on function private.award_xp_batch(jsonb) is 'Implementation of public.service_role_award_xp_batch.';

revoke all on function private.award_xp_batch(jsonb) from public;

grant execute on function private.award_xp_batch(jsonb) to service_role;

create or replace function public.service_role_award_xp_batch(awards jsonb)
returns table (
  idempotency_key text,
  granted integer,
  replayed boolean,
  capped boolean,
  floored boolean,
  cooldown boolean
)
language sql
volatile
security invoker
set search_path = ''
as $$
  select * from private.award_xp_batch(service_role_award_xp_batch.awards)
$$;

comment on function public.service_role_award_xp_batch(jsonb) is
  'Many award_xp calls in one round trip and one transaction, in array order: awards is a JSON array (at most '
  '10000) of objects {profile_id, activity, idempotency_key, amount?, occurred_at?, context?} with the meaning '
  'of public.award_xp''s parameters, each decided by private.award_xp itself (the same rules, no second '
  'implementation). Returns one row per item: idempotency_key, granted (XP), replayed, capped, floored, '
  'cooldown. All or nothing: the first failing item rolls the batch back with its SQLSTATE (XPIDM, XPACT, '
  'XPAMT, XPPRF, XPBAD, XPTIM, XPINF, XPBIG) and a message starting with awards[<index from 0>]. Locks every '
  'profile it names in profile id order before the first award (no deadlock between batches) and holds the '
  'locks until it commits. service_role only.';

revoke all on function public.service_role_award_xp_batch(jsonb) from public, anon, authenticated;

grant execute on function public.service_role_award_xp_batch(jsonb) to service_role;

-- from supabase/sql/45_season_finalize.sql ----------------------------------

-- Finalizing seasons: a finished season is frozen once (standings, rewards, notifications),
-- idempotently; listing seasons and their archived results.
--
-- Tables: public.season_results, public.season_rewards.
-- Tests: tests/sql/test_season_finalize.py

------------------------------------------------------------------------------
-- Seasons: finalizing (issue 4)
------------------------------------------------------------------------------
create or replace function private.finalize_seasons(p_at timestamptz)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_at timestamptz := coalesce(p_at, now());
  v_season public.seasons;
  v_activity text;
  v_row record;
  v_award jsonb;
  v_participants integer;
  v_rewarded integer;
  v_done jsonb := '[]';
  v_seasons bigint[];
begin
  -- Finalizing is never ahead of now (a running season is not over): XPTIM, XPINF for infinity.
  perform private.assert_time(p_at, 'at', interval '5 minutes');
  -- Lock order (issue 18): seasons first, then every profile that will get a reward, in profile id order,
  -- before any award; the award path takes the profile lock first and only a key-share lock on the season
  -- (its foreign key), which "for no key update" does not block. skip locked: two services finalizing at
  -- once split the seasons between them instead of waiting.
  v_seasons := array(
    select s.id from public.seasons s
     where s.finalized_at is null and s.ends_at <= v_at
     order by s.ends_at, s.id
     for no key update skip locked);
  perform 1 from public.profiles p
   where p.id in (select v.profile_id
                    from (select sc.season_id, sc.profile_id, rank() over (partition by sc.season_id order by sc.xp desc) as rank
                            from public.season_scores sc join public.profiles vp on vp.id = sc.profile_id
                           where sc.season_id = any (v_seasons) and sc.xp > 0 and vp.leaderboard_visible) v
                    join public.seasons s on s.id = v.season_id
                    join public.season_rewards w on w.layer_slug = s.layer_slug and v.rank between w.rank_from and w.rank_to)
   order by p.id
   for update;
  for v_season in
    select s.* from public.seasons s where s.id = any (v_seasons) order by s.ends_at, s.id
  loop
    -- Archived ranks follow the live boards' privacy: visible members are ranked among themselves; a member
    -- who hides gets the place they would see for themselves (1 + visible members with more XP), takes no
    -- rank from anyone and no reward slot (the reward loop below reads visible members only).
    insert into public.season_results (season_id, profile_id, rank, xp)
    select sc.season_id, sc.profile_id, rank() over (order by sc.xp desc), sc.xp
      from public.season_scores sc join public.profiles p on p.id = sc.profile_id
     where sc.season_id = v_season.id and sc.xp > 0 and p.leaderboard_visible;
    get diagnostics v_participants = row_count;
    insert into public.season_results (season_id, profile_id, rank, xp)
    select sc.season_id, sc.profile_id,
           1 + (select count(*) from public.season_scores o join public.profiles op on op.id = o.profile_id
                 where o.season_id = sc.season_id and o.xp > sc.xp and op.leaderboard_visible),
           sc.xp
      from public.season_scores sc join public.profiles p on p.id = sc.profile_id
     where sc.season_id = v_season.id and sc.xp > 0 and not p.leaderboard_visible;

    select r.reward_activity into v_activity from public.season_rules r where r.layer_slug = v_season.layer_slug;
    v_rewarded := 0;
    for v_row in
      select res.profile_id, res.rank, res.xp, w.xp as reward_xp, w.points as reward_points, w.title
        from public.season_results res
        join public.season_scores sc on sc.season_id = res.season_id and sc.profile_id = res.profile_id
        join public.profiles vp on vp.id = res.profile_id and vp.leaderboard_visible
        join public.season_rewards w
          on w.layer_slug = v_season.layer_slug and res.rank between w.rank_from and w.rank_to
       where res.season_id = v_season.id
       order by res.rank, sc.reached_at, res.profile_id
    loop
      v_award := null;
      if v_row.reward_xp > 0 and v_activity is not null then
        -- Granted now (or at p_at when that is earlier, for backfills): awards never happen in the future.
        v_award := private.award_xp(v_row.profile_id, v_activity,
                                    'season_reward:' || v_season.id || ':' || v_row.profile_id,
                                    v_row.reward_xp, least(v_at, now()),
                                    jsonb_build_object('season_id', v_season.id, 'rank', v_row.rank));
      end if;
      if v_row.reward_points > 0 then
        -- On the points ledger (32_points.sql), once per season and member.
        perform private.apply_points(
          v_row.profile_id, 'season_reward', v_row.reward_points,
          'season_reward_points:' || v_season.id || ':' || v_row.profile_id, null, 'service_role',
          v_season.name || ': rank ' || v_row.rank,
          jsonb_build_object('fn', 'finalize_seasons', 'season_id', v_season.id, 'points', v_row.reward_points),
          jsonb_build_object('season_id', v_season.id, 'rank', v_row.rank), false);
      end if;
      update public.season_results res
         set reward_xp = coalesce((v_award ->> 'granted')::integer, 0),
             reward_points = v_row.reward_points,
             title = v_row.title,
             ledger_id = (v_award ->> 'ledger_id')::bigint
       where res.season_id = v_season.id and res.profile_id = v_row.profile_id;
      insert into public.notifications (profile_id, kind, title, body, data)
      values (v_row.profile_id, 'season_result',
              v_season.name || ': rank ' || v_row.rank,
              concat_ws(', ',
                        nullif(coalesce((v_award ->> 'granted')::integer, 0), 0) || ' XP',
                        nullif(v_row.reward_points, 0) || ' points',
                        case when v_row.title is not null then 'title "' || v_row.title || '"' end),
              jsonb_build_object('season_id', v_season.id, 'layer', v_season.layer_slug, 'season', v_season.name,
                                 'rank', v_row.rank, 'xp', v_row.xp,
                                 'reward_xp', coalesce((v_award ->> 'granted')::integer, 0),
                                 'reward_points', v_row.reward_points, 'title', v_row.title));
      v_rewarded := v_rewarded + 1;
    end loop;

    update public.seasons s set finalized_at = v_at where s.id = v_season.id;
    v_done := v_done || jsonb_build_object('season_id', v_season.id, 'layer', v_season.layer_slug,
                                           'name', v_season.name, 'participants', v_participants,
                                           'rewarded', v_rewarded);
  end loop;
  return jsonb_build_object('finalized', v_done, 'count', jsonb_array_length(v_done),
                            'at', private.utc_text(v_at));
end
$$;

comment on function private.finalize_seasons(timestamptz) is 'Implementation of public.finalize_seasons.';

revoke all on function private.finalize_seasons(timestamptz) from public;

grant execute on function private.finalize_seasons(timestamptz) to service_role;

create or replace function public.finalize_seasons(at timestamptz default null)
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.finalize_seasons(finalize_seasons.at)
$$;

comment on function public.finalize_seasons(timestamptz) is
  'Freezes the standings of every season that ended by at (default now) and is not finalized yet, once: '
  'season_results gets every member with XP in it and their rank (equal XP shares a rank) among the members '
  'visible on leaderboards (a hidden member gets the place they would see for themselves, takes no one''s rank '
  'and no reward, and is listed only to themselves); the ranks named in '
  'season_rewards get their XP (award_xp with the layer''s reward activity, key season_reward:<season>:<profile>), '
  'points and title, and a season_result notification. Returns {finalized: [{season_id, layer, name, '
  'participants (visible members ranked), rewarded}], count, at}. Running it again finalizes nothing twice. '
  'at lies in [2000-01-01, now + 5 minutes] (XPTIM; XPINF for infinity). Locks the seasons, then the '
  'rewarded profiles in id order, before any award. service_role only.';

revoke all on function public.finalize_seasons(timestamptz) from public, anon, authenticated;

grant execute on function public.finalize_seasons(timestamptz) to service_role;

-- from supabase/sql/50_streaks.sql ------------------------------------------

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

-- from supabase/sql/57_payments.sql -----------------------------------------

create or replace function private.expire_payment_orders(at timestamptz)
returns integer
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_count integer;
begin
  perform private.assert_time(expire_payment_orders.at, 'at', interval '5 minutes');
  update public.payment_orders o set status = 'expired', updated_at = now()
   where o.status in ('new', 'created', 'attempted') and o.expires_at <= coalesce(expire_payment_orders.at, now())
     and not exists (select 1 from public.payments p where p.order_id = o.id);
  get diagnostics v_count = row_count;
  return v_count;
end
$$;

comment on function private.expire_payment_orders(timestamp with time zone) is 'Implementation of public.service_role_expire_payment_orders.';

revoke all on function private.expire_payment_orders(timestamp with time zone) from public;

grant execute on function private.expire_payment_orders(timestamp with time zone) to service_role;

-- from supabase/sql/70_timeline.sql -----------------------------------------

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

-- from supabase/sql/77_outbox.sql -------------------------------------------

create or replace function private.queue_streak_reminders(p_at timestamptz)
returns integer
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_count integer;
begin
  perform private.assert_time(p_at, 'at', interval '5 minutes');
  with due as (
    select s.profile_id, s.current_streak, (p_at at time zone p.time_zone)::date as local_date
      from public.streaks s
      join public.profiles p on p.id = s.profile_id
      left join public.notification_preferences np on np.profile_id = s.profile_id
     where s.current_streak > 0
       -- Checked in yesterday (local), not yet today: the streak ends at local midnight.
       and s.last_check_in_date = (p_at at time zone p.time_zone)::date - 1
       and (p_at at time zone p.time_zone)::time >= coalesce(np.streak_reminder_at, time '20:00')
  ), inserted as (
    insert into public.notifications (profile_id, kind, title, body, data)
    select d.profile_id, 'streak_reminder', 'Keep your ' || d.current_streak || '-day streak',
           'Check in before midnight to keep it.',
           jsonb_build_object('local_date', d.local_date, 'streak', d.current_streak)
      from due d
    on conflict (profile_id, (data ->> 'local_date')) where kind = 'streak_reminder' do nothing
    returning 1
  )
  select count(*) into v_count from inserted;
  return v_count;
end
$$;

comment on function private.queue_streak_reminders(timestamptz) is
  'Implementation of public.service_role_queue_streak_reminders.';

revoke all on function private.queue_streak_reminders(timestamptz) from public;

grant execute on function private.queue_streak_reminders(timestamptz) to service_role;

-- from supabase/sql/95_reviews.sql ------------------------------------------

create or replace function private.review_action(p_profile_id uuid, p_request_id bigint, p_action text, p_note text)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_caller record := private.review_caller(p_profile_id);
  v_req public.review_requests;
  v_ses public.review_sessions;
  v_pro public.professionals;
  v_side text;
  v_next text;
  v_data jsonb;
begin
  if p_action is null or p_action not in ('confirm', 'cancel', 'complete', 'no_show', 'reschedule') then
    raise exception 'action must be confirm, cancel, complete, no_show or reschedule' using errcode = 'XPBAD';
  end if;
  if length(coalesce(p_note, '')) > 500 then
    raise exception 'A note is at most 500 characters' using errcode = 'XPBAD';
  end if;
  select * into v_req from public.review_requests r where r.id = p_request_id for update;
  if not found then
    raise exception 'Unknown review request: %', p_request_id using errcode = 'XPRVQ';
  end if;
  select * into v_ses from public.review_sessions s
   where s.request_id = v_req.id and s.status = 'scheduled' order by s.id desc limit 1 for update;
  if v_ses.id is not null then
    select * into v_pro from public.professionals p where p.id = v_ses.professional_id;
  end if;
  v_side := case
    when v_req.member_id = v_caller.actor_id then 'member'
    when v_pro.profile_id is not null and v_pro.profile_id = v_caller.actor_id then 'professional'
    when v_caller.is_admin then 'admin'
  end;
  if v_side is null
     or (p_action = 'confirm' and v_side = 'admin')
     or (p_action in ('complete', 'no_show') and v_side = 'member') then
    raise exception 'You may not % this review', replace(p_action, '_', '-') using errcode = '42501';
  end if;
  if v_req.status not in ('requested', 'matched', 'scheduled')
     or (p_action <> 'cancel' and v_ses.id is null) then
    raise exception 'This review is % and cannot be %', v_req.status, p_action using errcode = 'XPRVS';
  end if;
  if p_action in ('complete', 'no_show') and now() < lower(v_ses.during) then
    raise exception 'The session has not started yet (starts %)', private.utc_text(lower(v_ses.during))
      using errcode = 'XPRVT';
  end if;
  v_data := jsonb_build_object('request_id', v_req.id, 'session_id', v_ses.id, 'action', p_action, 'by', v_side);
  if p_action = 'confirm' then
    update public.review_sessions s set
      member_confirmed_at = case when v_side = 'member' then coalesce(s.member_confirmed_at, now()) else s.member_confirmed_at end,
      professional_confirmed_at = case when v_side = 'professional' then coalesce(s.professional_confirmed_at, now())
                                       else s.professional_confirmed_at end,
      updated_at = now()
     where s.id = v_ses.id;
    perform private.review_event(v_req.id, v_ses.id, v_req.status, 'confirmed', v_caller.actor_id, v_caller.actor_role, p_note);
    return private.review_request_json(v_req.id);
  end if;
  v_next := case p_action when 'cancel' then 'cancelled' when 'complete' then 'completed'
                          when 'no_show' then 'no_show' when 'reschedule' then 'requested' end;
  if v_ses.id is not null then
    update public.review_sessions s
       set status = case p_action when 'reschedule' then 'rescheduled' else v_next end, updated_at = now()
     where s.id = v_ses.id;
  end if;
  update public.review_requests r set status = v_next, updated_at = now() where r.id = v_req.id;
  perform private.review_event(v_req.id, v_ses.id, v_req.status,
                               case p_action when 'reschedule' then 'rescheduled' else v_next end,
                               v_caller.actor_id, v_caller.actor_role, p_note);
  if p_action = 'complete' then
    -- Both profiles in profile id order before either award (issue 18: one global lock order).
    perform 1 from public.profiles p where p.id in (v_req.member_id, v_pro.profile_id) order by p.id for update;
    perform private.award_xp(v_req.member_id, 'resume_review_received', 'resume_review:' || v_ses.id || ':member',
                             null, upper(v_ses.during), jsonb_build_object('review_session_id', v_ses.id));
    if v_pro.profile_id is not null then
      perform private.award_xp(v_pro.profile_id, 'resume_review_given', 'resume_review:' || v_ses.id || ':reviewer',
                               null, upper(v_ses.during), jsonb_build_object('review_session_id', v_ses.id));
    end if;
  end if;
  perform private.notify_review(v_req.member_id, 'review_' || v_next, 'Resume review ' || replace(v_next, '_', '-'), v_data)
   where v_side <> 'member';
  perform private.notify_review(v_pro.profile_id, 'review_' || v_next, 'Resume review ' || replace(v_next, '_', '-'), v_data)
   where v_side <> 'professional';
  return private.review_request_json(v_req.id);
end
$$;

comment on function private.review_action(uuid, bigint, text, text) is 'Implementation of public.review_action.';

revoke all on function private.review_action(uuid, bigint, text, text) from public;

grant execute on function private.review_action(uuid, bigint, text, text) to authenticated, service_role;

-- from supabase/sql/96_review_matching.sql ----------------------------------

create or replace function private.review_match_input(
  p_actor_id uuid, p_at timestamptz, p_horizon_days integer, p_session_minutes integer
)
returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_at timestamptz := coalesce(p_at, now());
  v_until timestamptz;
begin
  perform private.assert_time(p_at, 'at', interval '366 days');
  perform private.review_admin(p_actor_id);
  if p_horizon_days is null or p_horizon_days not between 1 and 60 then
    raise exception 'horizon_days must be 1 to 60' using errcode = 'XPBAD';
  end if;
  if p_session_minutes is null or p_session_minutes not between 15 and 240 then
    raise exception 'session_minutes must be 15 to 240' using errcode = 'XPBAD';
  end if;
  v_until := v_at + make_interval(days => p_horizon_days);
  return jsonb_build_object(
    'at', extract(epoch from v_at)::bigint,
    'until', extract(epoch from v_until)::bigint,
    'session_seconds', p_session_minutes * 60,
    'requests', coalesce((
      select jsonb_agg(jsonb_build_object(
               'id', r.id, 'member_id', r.member_id, 'specialties', to_jsonb(r.specialties),
               'industry', r.industry, 'wait_seconds', greatest(0, extract(epoch from v_at - r.created_at))::bigint,
               'free', private.epoch_pairs(private.request_free(r.id, v_at, v_until))) order by r.created_at, r.id)
        from public.review_requests r where r.status = 'requested'), '[]'),
    'professionals', coalesce((
      select jsonb_agg(jsonb_build_object(
               'id', p.id, 'specialties', to_jsonb(p.specialties), 'industries', to_jsonb(p.industries),
               'rating', p.rating, 'weekly_capacity', p.weekly_capacity,
               'remaining', p.weekly_capacity - private.used_capacity(p.id, v_at),
               'free', private.epoch_pairs(private.professional_free(p.id, v_at, v_until))) order by p.id)
        from public.professionals p
       where p.active and p.weekly_capacity > private.used_capacity(p.id, v_at)), '[]'));
end
$$;

comment on function private.review_match_input(uuid, timestamptz, integer, integer) is
  'Implementation of public.admin_review_match_input.';

revoke all on function private.review_match_input(uuid, timestamptz, integer, integer) from public;

grant execute on function private.review_match_input(uuid, timestamptz, integer, integer) to authenticated, service_role;

create or replace function private.book_review(
  p_actor_id uuid,
  p_request_id bigint,
  p_professional_id uuid,
  p_starts_at timestamptz,
  p_session_minutes integer,
  p_run_id uuid,
  p_score double precision,
  p_terms jsonb,
  p_meeting_url text
)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_actor_id uuid := private.review_admin(p_actor_id);
  v_actor_role text := (select auth.role());
  v_req public.review_requests;
  v_pro public.professionals;
  v_slot tstzrange;
  v_match_id bigint;
  v_session_id bigint;
  v_data jsonb;
begin
  perform private.assert_time(p_starts_at, 'starts_at', interval '366 days');
  if p_session_minutes is null or p_session_minutes not between 15 and 240 then
    raise exception 'session_minutes must be 15 to 240' using errcode = 'XPBAD';
  end if;
  if p_starts_at is null or p_starts_at < now() then
    raise exception 'That slot is in the past' using errcode = 'XPRVT';
  end if;
  if p_run_id is null or p_terms is null or jsonb_typeof(p_terms) <> 'object' or p_score is null then
    raise exception 'A booking needs run_id, score and score terms' using errcode = 'XPBAD';
  end if;
  v_slot := tstzrange(p_starts_at, p_starts_at + make_interval(mins => p_session_minutes), '[)');
  select * into v_req from public.review_requests r where r.id = p_request_id for update;
  if not found then
    raise exception 'Unknown review request: %', p_request_id using errcode = 'XPRVQ';
  end if;
  if v_req.status <> 'requested' then
    raise exception 'This request is % and cannot be booked', v_req.status using errcode = 'XPRVS';
  end if;
  -- One booking per professional at a time, so that the capacity count holds.
  select * into v_pro from public.professionals p where p.id = p_professional_id for update;
  if not found or not v_pro.active then
    raise exception 'Unknown or inactive professional: %', p_professional_id using errcode = 'XPRVP';
  end if;
  if private.used_capacity(v_pro.id, p_starts_at) >= v_pro.weekly_capacity then
    raise exception '% is at weekly capacity (%)', v_pro.name, v_pro.weekly_capacity using errcode = 'XPRVK';
  end if;
  if not private.request_free(v_req.id, lower(v_slot), upper(v_slot)) @> v_slot then
    raise exception 'That slot is outside the member''s free preferred times' using errcode = 'XPRVC';
  end if;
  if not private.professional_free(v_pro.id, lower(v_slot), upper(v_slot)) @> v_slot then
    raise exception 'That slot is not free for % any more', v_pro.name using errcode = 'XPRVC';
  end if;
  insert into private.review_matches (run_id, request_id, professional_id, score, terms, slot, actor_id, actor_role)
  values (p_run_id, v_req.id, v_pro.id, p_score, p_terms, v_slot, v_actor_id, v_actor_role)
  returning id into v_match_id;
  begin
    insert into public.review_sessions (request_id, professional_id, member_id, match_id, during, meeting_url)
    values (v_req.id, v_pro.id, v_req.member_id, v_match_id, v_slot, nullif(p_meeting_url, ''))
    returning id into v_session_id;
  exception when exclusion_violation then
    raise exception 'That slot was just booked by someone else' using errcode = 'XPRVC';
  end;
  update public.review_requests r set status = 'scheduled', updated_at = now() where r.id = v_req.id;
  perform private.review_event(v_req.id, null, 'requested', 'matched', v_actor_id, v_actor_role,
                               'match ' || v_match_id || ', score ' || round(p_score::numeric, 4));
  perform private.review_event(v_req.id, v_session_id, 'matched', 'scheduled', v_actor_id, v_actor_role, '');
  v_data := jsonb_build_object('request_id', v_req.id, 'session_id', v_session_id,
                               'starts_at', private.utc_text(lower(v_slot)), 'ends_at', private.utc_text(upper(v_slot)));
  perform private.notify_review(v_req.member_id, 'review_scheduled', 'Resume review scheduled with ' || v_pro.name, v_data);
  perform private.notify_review(v_pro.profile_id, 'review_scheduled', 'New resume review: ' || v_req.target_role, v_data);
  return private.review_session_json(v_session_id) || jsonb_build_object('match_id', v_match_id);
end
$$;

comment on function private.book_review(uuid, bigint, uuid, timestamptz, integer, uuid, double precision, jsonb, text) is
  'Implementation of public.admin_book_review.';

revoke all on function private.book_review(uuid, bigint, uuid, timestamptz, integer, uuid, double precision, jsonb, text) from public;

grant execute on function private.book_review(uuid, bigint, uuid, timestamptz, integer, uuid, double precision, jsonb, text)
  to authenticated, service_role;
