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
  if private.is_service_role() then
    return p_profile_id;
  elsif (select auth.uid()) is not null then
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
  v_layer text;
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
  -- Names are checked here, so a wrong one is a clear XPBAD rather than a foreign key violation.
  if v_e ? 'id' then
    select e.layer_slug into v_layer from public.events e where e.id = (v_e ->> 'id')::bigint;
    if not found then
      raise exception 'Unknown event: %', left(v_e ->> 'id', 64) using errcode = 'XPEVU';
    end if;
  else
    v_layer := v_e ->> 'layer';
    if not exists (select 1 from public.layers l where l.slug = v_layer) then
      raise exception 'Unknown layer: %', left(coalesce(v_layer, 'null'), 64) using errcode = 'XPBAD';
    end if;
  end if;
  if v_e ->> 'min_tier' is not null
     and not exists (select 1 from public.tiers t where t.slug = v_e ->> 'min_tier') then
    raise exception 'Unknown tier: %', left(v_e ->> 'min_tier', 64) using errcode = 'XPBAD';
  end if;
  if v_e ->> 'min_status' is not null and not exists (
       select 1 from public.layer_statuses s where s.layer_slug = v_layer and s.slug = v_e ->> 'min_status') then
    raise exception 'Unknown status of layer %: %', v_layer, left(v_e ->> 'min_status', 64) using errcode = 'XPBAD';
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
  'the event. Errors: XPEVU unknown id, XPBAD (also an unknown layer, status or tier), 23514 values out of range.';
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
