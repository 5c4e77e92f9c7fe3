-- claims_events_functions
--
-- Written by `xpbase migration new` from the feature files in supabase/sql/:
-- the function and trigger definitions that changed since the last migration.
-- Edit the feature files, not this file; landed migrations never change.
-- Changed:
--   function private.award_xp(uuid, text, text, int4, timestamptz, jsonb, text)
--   function private.claims_caller(uuid)
--   function private.assert_can_review_claims(uuid)
--   function private.claim_json(int8)
--   function private.approve_claim(int8, uuid, text)
--   function private.submit_claim(uuid, text, text, text, timestamptz)
--   function public.submit_claim(text, text, text, timestamptz, uuid)
--   function private.review_claim(int8, text, text, uuid)
--   function public.review_claim(int8, text, text, uuid)
--   function private.claim_queue(text, int4, uuid)
--   function public.claim_queue(text, int4, uuid)
--   function private.my_claims(uuid)
--   function public.my_claims(uuid)
--   function public.point_values()
--   function private.event_gate(uuid, int8)
--   function private.event_line_position(int8, uuid)
--   function private.event_json(int8, uuid)
--   function private.event_member(uuid)
--   function private.event_list(text, bool, uuid)
--   function public.event_list(text, bool, uuid)
--   function private.admin_save_event(jsonb, uuid)
--   function public.admin_save_event(jsonb, uuid)
--   function private.join_event(int8, uuid)
--   function public.join_event(int8, uuid)
--   function private.leave_event(int8, uuid)
--   function public.leave_event(int8, uuid)
--   function private.record_attendance(public.events, uuid)
--   function private.event_check_in(int8, text, uuid)
--   function public.event_check_in(int8, text, uuid)
--   function private.admin_mark_attended(int8, uuid, uuid)
--   function public.admin_mark_attended(int8, uuid, uuid)

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
  -- Awards happen now or in the past (replays); five minutes of clock skew are tolerated.
  if p_occurred_at > now() + interval '5 minutes' then
    raise exception 'occurred_at % is in the future', private.utc_text(p_occurred_at) using errcode = 'XPBAD';
  end if;

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
             -- A layer status the member holds before this award ('<layer>:<status>'; 40_events.sql).
             or (x.kind = 'layer_status' and x.match_value in (
                   select pl.layer_slug || ':' || pl.status from public.profile_layers pl
                    where pl.profile_id = p_profile_id))
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

-- from supabase/sql/36_claims.sql -------------------------------------------

-- Member claims with review (issue 15): a member claims a claimable activity (note, evidence URL, when),
-- a reviewer approves it (award_xp keyed on the claim: approving twice credits once) or rejects it with
-- a reason; per-member claim limits; the review queue; what earns what (point_values).
--
-- Tables: public.activity_claims, public.activity_categories.
-- Tests: tests/sql/test_claims.py

------------------------------------------------------------------------------
-- Who is acting
------------------------------------------------------------------------------
create or replace function private.claims_caller(p_profile_id uuid, out actor_id uuid, out actor_role text)
language plpgsql
stable
security definer
set search_path = ''
as $$
begin
  if (select auth.role()) = 'service_role' then
    actor_role := 'service_role';
    actor_id := p_profile_id;
  elsif (select auth.role()) = 'authenticated' and (select auth.uid()) is not null then
    actor_role := 'authenticated';
    actor_id := (select auth.uid());
    if p_profile_id is not null and p_profile_id <> actor_id then
      raise exception 'Members act only for themselves' using errcode = '42501';
    end if;
  else
    raise exception 'Sign in to claim activities' using errcode = '42501';
  end if;
  if actor_id is not null and not exists (select 1 from public.profiles p where p.id = actor_id) then
    raise exception 'Unknown profile: %', actor_id using errcode = 'XPPRF';
  end if;
end
$$;

comment on function private.claims_caller(uuid) is
  'Who is acting on claims: a member acts as auth.uid() (naming another profile raises 42501); service_role '
  'acts for p_profile_id (null: the backend itself); anon raises 42501; an unknown profile raises XPPRF.';

revoke all on function private.claims_caller(uuid) from public;

create or replace function private.assert_can_review_claims(p_profile_id uuid, out actor_id uuid, out actor_role text)
language plpgsql
stable
security definer
set search_path = ''
as $$
-- The one place that decides who reviews claims (today: admins). service_role is trusted: it checks its
-- own callers (the bot: Manage Server) and names the reviewer it acts for, or nobody (the backend).
begin
  select c.actor_id, c.actor_role into actor_id, actor_role from private.claims_caller(p_profile_id) c;
  if actor_role = 'service_role' then
    return;
  end if;
  if not exists (select 1 from public.profiles p where p.id = actor_id and p.role = 'admin') then
    raise exception 'Only admins may review claims' using errcode = '42501';
  end if;
end
$$;

comment on function private.assert_can_review_claims(uuid) is
  'The reviewer of a claim (and of events): (admin profile id, authenticated) for an admin member; for '
  'service_role, which checks its own callers, (the profile it names, or null, service_role); raises 42501 for '
  'anyone else. The one function to change when moderators may review.';

revoke all on function private.assert_can_review_claims(uuid) from public;

------------------------------------------------------------------------------
-- Reading
------------------------------------------------------------------------------
create or replace function private.claim_json(p_claim_id bigint)
returns jsonb
language sql
stable
security definer
set search_path = ''
as $$
  select jsonb_build_object(
    'id', c.id, 'profile_id', c.profile_id, 'display_name', p.display_name,
    'activity', c.activity_slug, 'activity_name', a.name, 'category', a.category,
    'note', c.note, 'evidence_url', c.evidence_url, 'occurred_at', private.utc_text(c.occurred_at),
    'status', c.status, 'reviewer_id', c.reviewer_id,
    'reviewed_at', private.utc_text(c.reviewed_at), 'reason', c.reason,
    'granted', c.granted, 'ledger_id', c.ledger_id, 'created_at', private.utc_text(c.created_at))
    from public.activity_claims c
    join public.activity_types a on a.slug = c.activity_slug
    join public.profiles p on p.id = c.profile_id
   where c.id = p_claim_id
$$;

comment on function private.claim_json(bigint) is
  'One claim as the claim RPCs answer it: {id, profile_id, display_name, activity, activity_name, category, note, '
  'evidence_url, occurred_at, status, reviewer_id, reviewed_at, reason, granted (XP), ledger_id, created_at} '
  '(times UTC text); null for an unknown id.';

revoke all on function private.claim_json(bigint) from public;

------------------------------------------------------------------------------
-- Deciding
------------------------------------------------------------------------------
create or replace function private.approve_claim(p_claim_id bigint, p_actor_id uuid, p_actor_role text)
returns void
language plpgsql
volatile
security definer
set search_path = ''
as $$
-- The caller holds the claim row lock and has checked it is pending.
declare
  v_claim public.activity_claims;
  v_receipt jsonb;
begin
  select * into strict v_claim from public.activity_claims c where c.id = p_claim_id;
  v_receipt := private.award_xp(v_claim.profile_id, v_claim.activity_slug, 'claim:' || v_claim.id, null,
                                v_claim.occurred_at, '{}');
  update public.activity_claims c
     set status = 'approved', reviewer_id = p_actor_id, reviewer_role = p_actor_role, reviewed_at = now(),
         granted = (v_receipt ->> 'granted')::integer, ledger_id = (v_receipt ->> 'ledger_id')::bigint
   where c.id = p_claim_id;
  insert into public.notifications (profile_id, kind, title, data)
  values (v_claim.profile_id, 'claim_reviewed',
          'Claim approved: +' || (v_receipt ->> 'granted') || ' XP',
          jsonb_build_object('claim_id', v_claim.id, 'activity', v_claim.activity_slug, 'status', 'approved',
                             'granted', (v_receipt ->> 'granted')::integer));
end
$$;

comment on function private.approve_claim(bigint, uuid, text) is
  'Awards a pending claim through award_xp (idempotency key claim:<id>, occurred_at the claim''s) and marks it '
  'approved with the XP granted and the ledger row; notifies the member (claim_reviewed).';

revoke all on function private.approve_claim(bigint, uuid, text) from public;

create or replace function private.submit_claim(
  p_profile_id uuid, p_activity text, p_note text, p_evidence_url text, p_occurred_at timestamptz
)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_caller record := private.claims_caller(p_profile_id);
  v_act public.activity_types;
  v_occurred timestamptz := coalesce(p_occurred_at, now());
  v_used integer;
  v_id bigint;
begin
  if v_caller.actor_id is null then
    raise exception 'A claim needs the member it is for' using errcode = 'XPBAD';
  end if;
  select * into v_act from public.activity_types a where a.slug = p_activity;
  if not found or not v_act.active then
    raise exception 'Unknown or inactive activity: %', coalesce(p_activity, 'null') using errcode = 'XPACT';
  end if;
  if not v_act.claimable then
    raise exception 'Activity % cannot be claimed', v_act.slug using errcode = 'XPCLN';
  end if;
  if length(coalesce(p_note, '')) > 1000 then
    raise exception 'A note is at most 1000 characters' using errcode = 'XPBAD';
  end if;
  if p_evidence_url is not null
     and (length(p_evidence_url) > 500 or p_evidence_url !~ '^https?://[^[:space:]]+$') then
    raise exception 'The evidence URL must be an http(s) link of at most 500 characters' using errcode = 'XPBAD';
  end if;
  if v_occurred > now() + interval '5 minutes' or v_occurred < now() - interval '365 days' then
    raise exception 'A claim is for something done in the last 365 days' using errcode = 'XPBAD';
  end if;
  -- One member's claims of one activity are counted and written one at a time.
  perform pg_advisory_xact_lock(hashtextextended('claim' || chr(31) || v_caller.actor_id::text || chr(31) || v_act.slug, 0));
  if v_act.claim_limit is not null then
    select count(*) into v_used from public.activity_claims c
     where c.profile_id = v_caller.actor_id and c.activity_slug = v_act.slug and c.status <> 'rejected'
       and c.created_at > now() - make_interval(secs => v_act.claim_window_seconds);
    if v_used >= v_act.claim_limit then
      raise exception 'You may claim % at most % times in % days', v_act.name, v_act.claim_limit,
        round(v_act.claim_window_seconds / 86400.0, 1)
        using errcode = 'XPCLL';
    end if;
  end if;
  insert into public.activity_claims (profile_id, activity_slug, note, evidence_url, occurred_at)
  values (v_caller.actor_id, v_act.slug, coalesce(p_note, ''), nullif(p_evidence_url, ''), v_occurred)
  returning id into v_id;
  if not v_act.requires_review then
    perform private.approve_claim(v_id, null, 'service_role');
  end if;
  return private.claim_json(v_id);
end
$$;

comment on function private.submit_claim(uuid, text, text, text, timestamptz) is 'Implementation of public.submit_claim.';

revoke all on function private.submit_claim(uuid, text, text, text, timestamptz) from public;

grant execute on function private.submit_claim(uuid, text, text, text, timestamptz) to authenticated, service_role;

create or replace function public.submit_claim(
  activity text,
  note text default '',
  evidence_url text default null,
  occurred_at timestamptz default null,
  profile_id uuid default null
)
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.submit_claim(submit_claim.profile_id, submit_claim.activity, submit_claim.note,
                              submit_claim.evidence_url, submit_claim.occurred_at)
$$;

comment on function public.submit_claim(text, text, text, timestamptz, uuid) is
  'Claims a claimable activity: note (<= 1000 characters), evidence_url (http(s), <= 500), occurred_at (when it '
  'happened, UTC, within the last 365 days; default now). A member claims for themselves; service_role (the '
  'bot) names profile_id. Answers the claim (private.claim_json): pending, or approved at once when the '
  'activity does not require review. Errors: XPACT unknown activity, XPCLN not claimable, XPCLL the '
  'activity''s claim_limit per claim_window_seconds is reached, XPBAD bad note, URL or time, XPPRF, 42501.';

revoke all on function public.submit_claim(text, text, text, timestamptz, uuid) from public, anon;

grant execute on function public.submit_claim(text, text, text, timestamptz, uuid) to authenticated, service_role;

create or replace function private.review_claim(p_claim_id bigint, p_decision text, p_reason text, p_profile_id uuid)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_actor record := private.assert_can_review_claims(p_profile_id);
  v_claim public.activity_claims;
begin
  if p_decision is null or p_decision not in ('approve', 'reject') then
    raise exception 'decision is approve or reject' using errcode = 'XPBAD';
  end if;
  if p_decision = 'reject' and (nullif(trim(p_reason), '') is null or length(p_reason) > 500) then
    raise exception 'A rejection needs a reason of 1 to 500 characters' using errcode = 'XPBAD';
  end if;
  -- The row lock serialises reviewers of one claim: the first decides, the others see its decision.
  select * into v_claim from public.activity_claims c where c.id = p_claim_id for update;
  if not found then
    raise exception 'Unknown claim: %', p_claim_id using errcode = 'XPCLM';
  end if;
  if v_claim.status = 'pending' then
    if p_decision = 'approve' then
      perform private.approve_claim(v_claim.id, v_actor.actor_id, v_actor.actor_role);
    else
      update public.activity_claims c
         set status = 'rejected', reviewer_id = v_actor.actor_id, reviewer_role = v_actor.actor_role,
             reviewed_at = now(), reason = trim(p_reason)
       where c.id = v_claim.id;
      insert into public.notifications (profile_id, kind, title, body, data)
      values (v_claim.profile_id, 'claim_reviewed', 'Claim rejected', trim(p_reason),
              jsonb_build_object('claim_id', v_claim.id, 'activity', v_claim.activity_slug, 'status', 'rejected',
                                 'reason', trim(p_reason)));
    end if;
  elsif v_claim.status <> (case p_decision when 'approve' then 'approved' else 'rejected' end) then
    raise exception 'Claim % was already %', v_claim.id, v_claim.status using errcode = 'XPCLS';
  end if;
  -- The same decision again answers the claim as it stands (approving twice credits once).
  return private.claim_json(v_claim.id);
end
$$;

comment on function private.review_claim(bigint, text, text, uuid) is 'Implementation of public.review_claim.';

revoke all on function private.review_claim(bigint, text, text, uuid) from public;

grant execute on function private.review_claim(bigint, text, text, uuid) to authenticated, service_role;

create or replace function public.review_claim(
  claim_id bigint, decision text, reason text default null, profile_id uuid default null
)
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.review_claim(review_claim.claim_id, review_claim.decision, review_claim.reason,
                              review_claim.profile_id)
$$;

comment on function public.review_claim(bigint, text, text, uuid) is
  'Approves (award_xp with idempotency key claim:<id> at the claim''s occurred_at) or rejects (reason of 1 to '
  '500 characters) a pending claim, and notifies the member (claim_reviewed). The same decision again answers '
  'the claim unchanged, so approving twice credits once. Reviewers: admins; service_role names the reviewer '
  'in profile_id (or null for the backend). Answers the claim. Errors: XPCLM unknown claim, XPCLS the '
  'claim was already decided the other way, XPBAD bad decision or reason, 42501 not a reviewer.';

revoke all on function public.review_claim(bigint, text, text, uuid) from public, anon;

grant execute on function public.review_claim(bigint, text, text, uuid) to authenticated, service_role;

create or replace function private.claim_queue(p_status text, p_size integer, p_profile_id uuid)
returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
begin
  perform private.assert_can_review_claims(p_profile_id);
  if p_status is null or p_status not in ('pending', 'approved', 'rejected') then
    raise exception 'status is pending, approved or rejected' using errcode = 'XPBAD';
  end if;
  if p_size is null or p_size not between 1 and 200 then
    raise exception 'size is 1 to 200' using errcode = 'XPBAD';
  end if;
  return coalesce((
    select jsonb_agg(private.claim_json(q.id) order by q.position)
      from (select c.id,
                   row_number() over (order by case when p_status = 'pending' then c.created_at end,
                                               case when p_status <> 'pending' then c.reviewed_at end desc,
                                               c.id) as position
              from public.activity_claims c where c.status = p_status
             order by position
             limit p_size) q), '[]');
end
$$;

comment on function private.claim_queue(text, integer, uuid) is 'Implementation of public.claim_queue.';

revoke all on function private.claim_queue(text, integer, uuid) from public;

grant execute on function private.claim_queue(text, integer, uuid) to authenticated, service_role;

create or replace function public.claim_queue(status text default 'pending', size integer default 50,
                                              profile_id uuid default null)
returns jsonb
language sql
stable
security invoker
set search_path = ''
as $$
  select private.claim_queue(claim_queue.status, claim_queue.size, claim_queue.profile_id)
$$;

comment on function public.claim_queue(text, integer, uuid) is
  'The review queue for reviewers: claims of one status (pending oldest first; decided ones newest decision '
  'first), at most size (1-200), as [claim]. service_role names the reviewing admin in profile_id (or null '
  'for the backend). Errors: XPBAD, 42501 not a reviewer.';

revoke all on function public.claim_queue(text, integer, uuid) from public, anon;

grant execute on function public.claim_queue(text, integer, uuid) to authenticated, service_role;

create or replace function private.my_claims(p_profile_id uuid)
returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_caller record := private.claims_caller(p_profile_id);
begin
  if v_caller.actor_id is null then
    raise exception 'Name the member' using errcode = 'XPBAD';
  end if;
  return coalesce((
    select jsonb_agg(private.claim_json(q.id) order by q.id desc)
      from (select c.id from public.activity_claims c where c.profile_id = v_caller.actor_id
             order by c.id desc limit 100) q), '[]');
end
$$;

comment on function private.my_claims(uuid) is 'Implementation of public.my_claims.';

revoke all on function private.my_claims(uuid) from public;

grant execute on function private.my_claims(uuid) to authenticated, service_role;

create or replace function public.my_claims(profile_id uuid default null)
returns jsonb
language sql
stable
security invoker
set search_path = ''
as $$
  select private.my_claims(my_claims.profile_id)
$$;

comment on function public.my_claims(uuid) is
  'The caller''s last 100 claims, newest first, as [claim]. service_role names profile_id. Errors: XPBAD, XPPRF.';

revoke all on function public.my_claims(uuid) from public, anon;

grant execute on function public.my_claims(uuid) to authenticated, service_role;

create or replace function public.point_values()
returns jsonb
language sql
stable
security invoker
set search_path = ''
as $$
  select coalesce(jsonb_agg(jsonb_build_object(
           'slug', a.slug, 'name', a.name, 'description', a.description, 'layer', a.layer_slug,
           'category', a.category, 'category_name', c.name,
           'base_xp', coalesce((select r.base_xp from public.activity_rates r
                                 where r.activity_slug = a.slug and r.effective_from <= now()
                                 order by r.effective_from desc limit 1), a.base_xp),
           'min_xp', a.min_xp, 'max_xp', a.max_xp, 'cooldown_seconds', a.cooldown_seconds,
           'claimable', a.claimable, 'requires_review', a.requires_review,
           'claim_limit', a.claim_limit, 'claim_window_seconds', a.claim_window_seconds)
         order by c.position nulls last, a.category nulls last, a.slug), '[]')
    from public.activity_types a
    left join public.activity_categories c on c.slug = a.category
   where a.active
$$;

comment on function public.point_values() is
  'What earns what: every active activity as [{slug, name, description, layer, category, category_name, base_xp '
  '(the rate in force now), min_xp, max_xp (a range, or null), cooldown_seconds, claimable, requires_review, '
  'claim_limit, claim_window_seconds}], by category position then slug. Anyone may call it.';

revoke all on function public.point_values() from public;

grant execute on function public.point_values() to anon, authenticated, service_role;

-- from supabase/sql/40_events.sql -------------------------------------------

-- Events and dungeons gated by layers (issue 15): events of a layer (dungeons are the cyber layer's),
-- a gate on layer status, level and tier refused with its reason, capacity with a waiting list, and
-- attendance (check-in code or a reviewer) that awards event_attendance once.
--
-- Tables: public.events, public.event_signups, private.event_check_in_codes.
-- Tests: tests/sql/test_events.py

------------------------------------------------------------------------------
-- The gate
------------------------------------------------------------------------------
create or replace function private.event_gate(p_profile_id uuid, p_event_id bigint)
returns text
language sql
stable
security definer
set search_path = ''
as $$
  -- The first unmet requirement, as the member reads it; null when the member may join.
  select coalesce(
    case when e.min_status is not null
               and coalesce(pl.xp, 0) < (select s.min_xp from public.layer_statuses s
                                          where s.layer_slug = e.layer_slug and s.slug = e.min_status)
         then format('needs %s status ''%s'', you are ''%s''', e.layer_slug, e.min_status,
                     coalesce(pl.status, (select s.slug from public.layer_statuses s
                                           where s.layer_slug = e.layer_slug and s.min_xp <= 0
                                           order by s.min_xp desc limit 1), 'none')) end,
    case when e.min_level is not null and p.level < e.min_level
         then format('needs level %s, you are level %s', e.min_level, p.level) end,
    case when e.min_tier is not null
               and (select t.min_level from public.tiers t where t.slug = p.tier)
                   < (select t.min_level from public.tiers t where t.slug = e.min_tier)
         then format('needs tier ''%s'', you are ''%s''', e.min_tier, p.tier) end)
    from public.events e
    join public.profiles p on p.id = p_profile_id
    left join public.profile_layers pl on pl.profile_id = p.id and pl.layer_slug = e.layer_slug
   where e.id = p_event_id
$$;

comment on function private.event_gate(uuid, bigint) is
  'Why a member may not join an event: the first unmet requirement ("needs reality status ''grounded'', you are '
  '''dormant''", "needs level 5, you are level 2", "needs tier ''member'', you are ''basic''"), or null.';

revoke all on function private.event_gate(uuid, bigint) from public;

------------------------------------------------------------------------------
-- Reading
------------------------------------------------------------------------------
create or replace function private.event_line_position(p_event_id bigint, p_profile_id uuid)
returns integer
language sql
stable
security definer
set search_path = ''
as $$
  select (select count(*) + 1 from public.event_signups o
           where o.event_id = s.event_id and o.status = 'waitlisted'
             and (o.signed_up_at, o.profile_id) < (s.signed_up_at, s.profile_id))::integer
    from public.event_signups s
   where s.event_id = p_event_id and s.profile_id = p_profile_id and s.status = 'waitlisted'
$$;

comment on function private.event_line_position(bigint, uuid) is
  'A waitlisted member''s place in line (1 = next), by sign-up time; null when not waiting.';

revoke all on function private.event_line_position(bigint, uuid) from public;

create or replace function private.event_json(p_event_id bigint, p_profile_id uuid)
returns jsonb
language sql
stable
security definer
set search_path = ''
as $$
  select jsonb_build_object(
    'id', e.id, 'title', e.title, 'description', e.description, 'layer', e.layer_slug,
    'kind', case when e.layer_slug = 'cyber' then 'dungeon' else 'event' end,
    'min_status', e.min_status, 'min_level', e.min_level, 'min_tier', e.min_tier,
    'capacity', e.capacity, 'starts_at', private.utc_text(e.starts_at), 'ends_at', private.utc_text(e.ends_at),
    'location', e.location, 'online_url', e.online_url, 'xp', e.xp, 'cancelled', e.cancelled,
    'confirmed', (select count(*) from public.event_signups s where s.event_id = e.id and s.status = 'confirmed'),
    'waitlisted', (select count(*) from public.event_signups s where s.event_id = e.id and s.status = 'waitlisted'),
    'my_status', (select s.status from public.event_signups s where s.event_id = e.id and s.profile_id = p_profile_id),
    'my_position', (select private.event_line_position(e.id, p_profile_id)),
    'attended', (select s.attended_at is not null from public.event_signups s
                  where s.event_id = e.id and s.profile_id = p_profile_id),
    'gate', case when p_profile_id is not null then private.event_gate(p_profile_id, e.id) end)
    from public.events e where e.id = p_event_id
$$;

comment on function private.event_json(bigint, uuid) is
  'One event as the event RPCs answer it: {id, title, description, layer, kind (event | dungeon: the cyber '
  'layer), min_status, min_level, min_tier, capacity, starts_at, ends_at (UTC text), location, online_url, xp, '
  'cancelled, confirmed, waitlisted (counts), my_status, my_position (1-based place in the waiting list), '
  'attended, gate (why the member may not join, or null)}; the my_* keys and gate are null without a member.';

revoke all on function private.event_json(bigint, uuid) from public;

create or replace function private.event_member(p_profile_id uuid)
returns uuid
language plpgsql
stable
security definer
set search_path = ''
as $$
-- The member an event call is for: auth.uid() for a member (naming another raises 42501), profile_id
-- named by service_role, null for anon.
begin
  if (select auth.role()) = 'service_role' then
    return p_profile_id;
  elsif (select auth.role()) = 'authenticated' and (select auth.uid()) is not null then
    if p_profile_id is not null and p_profile_id <> (select auth.uid()) then
      raise exception 'Members act only for themselves' using errcode = '42501';
    end if;
    return (select auth.uid());
  end if;
  return null;
end
$$;

comment on function private.event_member(uuid) is
  'Whom an event call is for: auth.uid() for a member (42501 when naming someone else), profile_id for '
  'service_role, null for anon.';

revoke all on function private.event_member(uuid) from public;

create or replace function private.event_list(p_layer text, p_include_past boolean, p_profile_id uuid)
returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_member uuid := private.event_member(p_profile_id);
begin
  return coalesce((
    select jsonb_agg(private.event_json(e.id, v_member) order by e.starts_at, e.id)
      from public.events e
     where (p_layer is null or e.layer_slug = p_layer)
       and (p_include_past or e.ends_at > now())
       and not e.cancelled), '[]');
end
$$;

comment on function private.event_list(text, boolean, uuid) is 'Implementation of public.event_list.';

revoke all on function private.event_list(text, boolean, uuid) from public;

grant execute on function private.event_list(text, boolean, uuid) to authenticated, service_role;

create or replace function public.event_list(layer text default null, include_past boolean default false,
                                             profile_id uuid default null)
returns jsonb
language sql
stable
security invoker
set search_path = ''
as $$
  select private.event_list(event_list.layer, event_list.include_past, event_list.profile_id)
$$;

comment on function public.event_list(text, boolean, uuid) is
  'Events not cancelled (upcoming and running; with include_past also ended ones), soonest first, of one layer '
  '(''cyber'' lists dungeons) or all, as [event] (private.event_json) with the caller''s sign-up and gate. '
  'service_role names profile_id (or none: the public list the service shows visitors; anon has no access to '
  'the sign-up counts, which RLS keeps private).';

revoke all on function public.event_list(text, boolean, uuid) from public, anon;

grant execute on function public.event_list(text, boolean, uuid) to authenticated, service_role;

------------------------------------------------------------------------------
-- Managing events
------------------------------------------------------------------------------
create or replace function private.admin_save_event(p_event jsonb, p_profile_id uuid)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_actor record := private.assert_can_review_claims(p_profile_id);
  v_e jsonb := coalesce(p_event, '{}');
  v_id bigint;
  v_code text := nullif(v_e ->> 'check_in_code', '');
begin
  if jsonb_typeof(v_e) <> 'object' then
    raise exception 'event must be a JSON object' using errcode = 'XPBAD';
  end if;
  if v_code is not null and length(v_code) not between 4 and 64 then
    raise exception 'A check-in code is 4 to 64 characters' using errcode = 'XPBAD';
  end if;
  if (v_e ->> 'ends_at')::timestamptz - (v_e ->> 'starts_at')::timestamptz > interval '30 days' then
    raise exception 'An event lasts at most 30 days' using errcode = 'XPBAD';
  end if;
  if v_e ? 'id' then
    update public.events e
       set title = coalesce(v_e ->> 'title', e.title),
           description = coalesce(v_e ->> 'description', e.description),
           min_status = case when v_e ? 'min_status' then v_e ->> 'min_status' else e.min_status end,
           min_level = case when v_e ? 'min_level' then (v_e ->> 'min_level')::integer else e.min_level end,
           min_tier = case when v_e ? 'min_tier' then v_e ->> 'min_tier' else e.min_tier end,
           capacity = case when v_e ? 'capacity' then (v_e ->> 'capacity')::integer else e.capacity end,
           starts_at = coalesce((v_e ->> 'starts_at')::timestamptz, e.starts_at),
           ends_at = coalesce((v_e ->> 'ends_at')::timestamptz, e.ends_at),
           location = case when v_e ? 'location' then v_e ->> 'location' else e.location end,
           online_url = case when v_e ? 'online_url' then v_e ->> 'online_url' else e.online_url end,
           xp = coalesce((v_e ->> 'xp')::integer, e.xp),
           cancelled = coalesce((v_e ->> 'cancelled')::boolean, e.cancelled),
           updated_at = now()
     where e.id = (v_e ->> 'id')::bigint
    returning e.id into v_id;
    if v_id is null then
      raise exception 'Unknown event: %', v_e ->> 'id' using errcode = 'XPEVU';
    end if;
  else
    insert into public.events (title, description, layer_slug, min_status, min_level, min_tier, capacity,
                               starts_at, ends_at, location, online_url, xp, created_by)
    values (v_e ->> 'title', coalesce(v_e ->> 'description', ''), v_e ->> 'layer', v_e ->> 'min_status',
            (v_e ->> 'min_level')::integer, v_e ->> 'min_tier', (v_e ->> 'capacity')::integer,
            (v_e ->> 'starts_at')::timestamptz, (v_e ->> 'ends_at')::timestamptz, v_e ->> 'location',
            v_e ->> 'online_url', coalesce((v_e ->> 'xp')::integer, 50), v_actor.actor_id)
    returning id into v_id;
  end if;
  if v_code is not null then
    insert into private.event_check_in_codes (event_id, code_hash)
    values (v_id, pg_catalog.sha256(convert_to(v_code, 'UTF8')))
    on conflict (event_id) do update set code_hash = excluded.code_hash;
  end if;
  return private.event_json(v_id, null);
end
$$;

comment on function private.admin_save_event(jsonb, uuid) is 'Implementation of public.admin_save_event.';

revoke all on function private.admin_save_event(jsonb, uuid) from public;

grant execute on function private.admin_save_event(jsonb, uuid) to authenticated, service_role;

create or replace function public.admin_save_event(event jsonb, profile_id uuid default null)
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.admin_save_event(admin_save_event.event, admin_save_event.profile_id)
$$;

comment on function public.admin_save_event(jsonb, uuid) is
  'Creates an event, or with id changes the keys given: {title, description, layer (new only), min_status (a '
  'status of the layer), min_level, min_tier, capacity, starts_at, ends_at (UTC, at most 30 days apart), '
  'location and/or online_url (https), xp (10-500, awarded on attendance), cancelled, check_in_code (4-64 '
  'characters, stored hashed)}. Reviewers only (the claim reviewers: private.assert_can_review_claims). Answers '
  'the event. Errors: XPEVU unknown id, XPBAD, 23514/23503 values out of range or unknown layer, status, tier.';

revoke all on function public.admin_save_event(jsonb, uuid) from public, anon;

grant execute on function public.admin_save_event(jsonb, uuid) to authenticated, service_role;

------------------------------------------------------------------------------
-- Signing up
------------------------------------------------------------------------------
create or replace function private.join_event(p_event_id bigint, p_profile_id uuid)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_member uuid := private.event_member(p_profile_id);
  v_event public.events;
  v_status text;
  v_reason text;
  v_confirmed integer;
begin
  if v_member is null then
    raise exception 'Sign in to join events' using errcode = '42501';
  end if;
  -- The event row lock serialises sign-ups of one event: places are counted and taken one at a time.
  select * into v_event from public.events e where e.id = p_event_id for update;
  if not found or v_event.cancelled then
    raise exception 'Unknown event: %', p_event_id using errcode = 'XPEVU';
  end if;
  if not exists (select 1 from public.profiles p where p.id = v_member) then
    raise exception 'Unknown profile: %', v_member using errcode = 'XPPRF';
  end if;
  select s.status into v_status from public.event_signups s
   where s.event_id = v_event.id and s.profile_id = v_member;
  if v_status in ('confirmed', 'waitlisted') then
    return private.event_json(v_event.id, v_member);
  end if;
  if now() >= v_event.starts_at then
    raise exception 'Sign-up for % closed when it started', v_event.title using errcode = 'XPEVC';
  end if;
  v_reason := private.event_gate(v_member, v_event.id);
  if v_reason is not null then
    raise exception '%', v_reason using errcode = 'XPEVG';
  end if;
  select count(*) into v_confirmed from public.event_signups s
   where s.event_id = v_event.id and s.status = 'confirmed';
  v_status := case when v_event.capacity is null or v_confirmed < v_event.capacity
                   then 'confirmed' else 'waitlisted' end;
  -- clock_timestamp, taken under the event lock: the line is the order in which sign-ups got the lock.
  insert into public.event_signups as s (event_id, profile_id, status, signed_up_at, confirmed_at)
  values (v_event.id, v_member, v_status, clock_timestamp(), case when v_status = 'confirmed' then now() end)
  on conflict (event_id, profile_id) do update
    set status = excluded.status, signed_up_at = excluded.signed_up_at, confirmed_at = excluded.confirmed_at;
  return private.event_json(v_event.id, v_member);
end
$$;

comment on function private.join_event(bigint, uuid) is 'Implementation of public.join_event.';

revoke all on function private.join_event(bigint, uuid) from public;

grant execute on function private.join_event(bigint, uuid) to authenticated, service_role;

create or replace function public.join_event(event_id bigint, profile_id uuid default null)
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.join_event(join_event.event_id, join_event.profile_id)
$$;

comment on function public.join_event(bigint, uuid) is
  'Signs the caller up (service_role names profile_id): confirmed while places are free, else waitlisted; '
  'joining again answers the sign-up unchanged. Answers the event (my_status, my_position). Errors: XPEVG the '
  'gate refuses, with the reason as the message ("needs reality status ''grounded'', you are ''dormant''"), '
  'XPEVC the event has started, XPEVU unknown or cancelled event, XPPRF, 42501.';

revoke all on function public.join_event(bigint, uuid) from public, anon;

grant execute on function public.join_event(bigint, uuid) to authenticated, service_role;

create or replace function private.leave_event(p_event_id bigint, p_profile_id uuid)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_member uuid := private.event_member(p_profile_id);
  v_event public.events;
  v_was text;
  v_next uuid;
begin
  if v_member is null then
    raise exception 'Sign in to leave events' using errcode = '42501';
  end if;
  select * into v_event from public.events e where e.id = p_event_id for update;
  if not found then
    raise exception 'Unknown event: %', p_event_id using errcode = 'XPEVU';
  end if;
  select s.status into v_was from public.event_signups s
   where s.event_id = v_event.id and s.profile_id = v_member and s.attended_at is null;
  if v_was in ('confirmed', 'waitlisted') then
    update public.event_signups s set status = 'cancelled', confirmed_at = null
     where s.event_id = v_event.id and s.profile_id = v_member;
  end if;
  -- A freed place goes to the first in line (before the event starts).
  if v_was = 'confirmed' and now() < v_event.starts_at then
    select s.profile_id into v_next from public.event_signups s
     where s.event_id = v_event.id and s.status = 'waitlisted'
     order by s.signed_up_at, s.profile_id limit 1;
    if v_next is not null then
      update public.event_signups s set status = 'confirmed', confirmed_at = now()
       where s.event_id = v_event.id and s.profile_id = v_next;
      insert into public.notifications (profile_id, kind, title, data)
      values (v_next, 'event_place', 'You have a place at ' || v_event.title,
              jsonb_build_object('event_id', v_event.id, 'starts_at', private.utc_text(v_event.starts_at)));
    end if;
  end if;
  return private.event_json(v_event.id, v_member);
end
$$;

comment on function private.leave_event(bigint, uuid) is 'Implementation of public.leave_event.';

revoke all on function private.leave_event(bigint, uuid) from public;

grant execute on function private.leave_event(bigint, uuid) to authenticated, service_role;

create or replace function public.leave_event(event_id bigint, profile_id uuid default null)
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.leave_event(leave_event.event_id, leave_event.profile_id)
$$;

comment on function public.leave_event(bigint, uuid) is
  'Cancels the caller''s sign-up (not after attendance); a confirmed place freed before the start goes to the '
  'first in line, who is notified (event_place). Answers the event. Errors: XPEVU, 42501.';

revoke all on function public.leave_event(bigint, uuid) from public, anon;

grant execute on function public.leave_event(bigint, uuid) to authenticated, service_role;

------------------------------------------------------------------------------
-- Attendance
------------------------------------------------------------------------------
create or replace function private.record_attendance(p_event public.events, p_member uuid)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
-- The caller holds the event row lock.
declare
  v_receipt jsonb;
begin
  if not exists (select 1 from public.event_signups s where s.event_id = p_event.id and s.profile_id = p_member
                   and s.status = 'confirmed') then
    raise exception 'Only members with a confirmed place can attend' using errcode = 'XPEVC';
  end if;
  if exists (select 1 from public.event_signups s where s.event_id = p_event.id and s.profile_id = p_member
               and s.attended_at is not null) then
    return private.event_json(p_event.id, p_member) || jsonb_build_object('granted', 0);
  end if;
  v_receipt := private.award_xp(p_member, 'event_attendance', 'event:' || p_event.id || ':' || p_member,
                                p_event.xp, least(now(), p_event.ends_at),
                                jsonb_build_object('event_id', p_event.id::text));
  update public.event_signups s
     set attended_at = now(), ledger_id = (v_receipt ->> 'ledger_id')::bigint
   where s.event_id = p_event.id and s.profile_id = p_member;
  return private.event_json(p_event.id, p_member)
         || jsonb_build_object('granted', (v_receipt ->> 'granted')::integer);
end
$$;

comment on function private.record_attendance(public.events, uuid) is
  'Marks a confirmed member as attended and awards event_attendance (the event''s xp, idempotency key '
  'event:<id>:<member>, context.event_id) once; answers the event with granted (0 when already recorded).';

revoke all on function private.record_attendance(public.events, uuid) from public;

create or replace function private.event_check_in(p_event_id bigint, p_code text, p_profile_id uuid)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_member uuid := private.event_member(p_profile_id);
  v_event public.events;
begin
  if v_member is null then
    raise exception 'Sign in to check in' using errcode = '42501';
  end if;
  select * into v_event from public.events e where e.id = p_event_id for update;
  if not found or v_event.cancelled then
    raise exception 'Unknown event: %', p_event_id using errcode = 'XPEVU';
  end if;
  if now() < v_event.starts_at - interval '30 minutes' or now() >= v_event.ends_at + interval '1 hour' then
    raise exception 'Check-in is open from 30 minutes before the start to an hour after the end'
      using errcode = 'XPEVC';
  end if;
  if p_code is null or length(p_code) > 64 or not exists (
       select 1 from private.event_check_in_codes c
        where c.event_id = v_event.id and c.code_hash = pg_catalog.sha256(convert_to(p_code, 'UTF8'))) then
    raise exception 'That check-in code is not this event''s' using errcode = 'XPEVK';
  end if;
  return private.record_attendance(v_event, v_member);
end
$$;

comment on function private.event_check_in(bigint, text, uuid) is 'Implementation of public.event_check_in.';

revoke all on function private.event_check_in(bigint, text, uuid) from public;

grant execute on function private.event_check_in(bigint, text, uuid) to authenticated, service_role;

create or replace function public.event_check_in(event_id bigint, code text, profile_id uuid default null)
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.event_check_in(event_check_in.event_id, event_check_in.code, event_check_in.profile_id)
$$;

comment on function public.event_check_in(bigint, text, uuid) is
  'Checks the caller in with the event''s code (from 30 minutes before the start to an hour after the end) and '
  'awards event_attendance once. Answers the event with granted (XP; 0 when already checked in). Errors: XPEVK '
  'wrong code, XPEVC outside the check-in window or no confirmed place, XPEVU, 42501.';

revoke all on function public.event_check_in(bigint, text, uuid) from public, anon;

grant execute on function public.event_check_in(bigint, text, uuid) to authenticated, service_role;

create or replace function private.admin_mark_attended(p_event_id bigint, p_member_id uuid, p_profile_id uuid)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_event public.events;
begin
  perform private.assert_can_review_claims(p_profile_id);
  select * into v_event from public.events e where e.id = p_event_id for update;
  if not found then
    raise exception 'Unknown event: %', p_event_id using errcode = 'XPEVU';
  end if;
  if now() < v_event.starts_at then
    raise exception 'Attendance is recorded once the event has started' using errcode = 'XPEVC';
  end if;
  return private.record_attendance(v_event, p_member_id);
end
$$;

comment on function private.admin_mark_attended(bigint, uuid, uuid) is 'Implementation of public.admin_mark_attended.';

revoke all on function private.admin_mark_attended(bigint, uuid, uuid) from public;

grant execute on function private.admin_mark_attended(bigint, uuid, uuid) to authenticated, service_role;

create or replace function public.admin_mark_attended(event_id bigint, member_id uuid, profile_id uuid default null)
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.admin_mark_attended(admin_mark_attended.event_id, admin_mark_attended.member_id,
                                     admin_mark_attended.profile_id)
$$;

comment on function public.admin_mark_attended(bigint, uuid, uuid) is
  'A reviewer records that member_id attended (once the event started) and event_attendance is awarded once. '
  'Answers the event for the member with granted. Errors: XPEVC not started or no confirmed place, XPEVU, 42501.';

revoke all on function public.admin_mark_attended(bigint, uuid, uuid) from public, anon;

grant execute on function public.admin_mark_attended(bigint, uuid, uuid) to authenticated, service_role;
