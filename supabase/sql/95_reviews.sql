-- Resume reviews: professionals and their availability, members' review requests, the workflow
-- (requested -> matched -> scheduled -> completed, or cancelled, no_show, rescheduled) with actor and
-- time, notifications to both sides, XP on completion, feedback both ways and calendar feeds
-- (one session's details for its .ics: review_session in 96_review_matching.sql).
-- Professionals' availability, matching, booking (the no-double-booking path) and reviewer
-- statistics are in 96_review_matching.sql.
--
-- Tables: public.review_specialties, public.professionals, public.review_requests,
-- public.review_sessions, public.review_feedback, private.review_events,
-- private.review_calendar_tokens.
-- Tests: tests/sql/test_reviews.py
--
-- Who acts: every RPC takes the acting profile from the caller. A member (authenticated) acts as
-- themselves; the bot (service_role) names the member it acts for; service_role without a profile is
-- the backend itself (the periodic matcher) and counts as an admin. Admins are profiles with role admin.
--
-- SQLSTATEs of this feature (xpbase/errors.py):
--   XPRTZ  unknown time zone              XPRAV  availability interval not valid
--   XPRSP  unknown specialty              XPRNP  no active professional offers that specialty
--   XPRVO  the member has an open request XPRVS  the request is not in a state for that step
--   XPRVT  a time in the past, or a session that has not started
--   XPRVC  the slot is taken              XPRVK  the professional is at weekly capacity
--   XPRVP  unknown or inactive professional
--   XPRVQ  unknown review request         XPRVR  rating outside 1-5
--   XPRVF  feedback already given         XPRCT  unknown calendar token

------------------------------------------------------------------------------
-- Callers and checks
------------------------------------------------------------------------------

create or replace function private.review_caller(
  p_profile_id uuid,
  out actor_id uuid,
  out actor_role text,
  out is_admin boolean
)
language plpgsql
stable
security definer
set search_path = ''
as $$
begin
  if private.is_service_role() then
    actor_role := 'service_role';
    actor_id := p_profile_id;
    if actor_id is null then
      is_admin := true;
      return;
    end if;
  elsif (select auth.uid()) is not null then
    actor_role := 'authenticated';
    actor_id := (select auth.uid());
    if p_profile_id is not null and p_profile_id <> actor_id then
      raise exception 'Members act only for themselves' using errcode = '42501';
    end if;
  else
    raise exception 'Sign in to use resume reviews' using errcode = '42501';
  end if;
  select p.role = 'admin' into is_admin from public.profiles p where p.id = actor_id;
  if not found then
    raise exception 'Unknown profile: %', actor_id using errcode = 'XPPRF';
  end if;
end
$$;
comment on function private.review_caller(uuid) is
  'Who is acting on resume reviews: (profile, role, is_admin). A member acts as auth.uid() (naming another '
  'profile raises 42501); service_role acts for p_profile_id, or as the backend (an admin) when it is null; '
  'anon raises 42501; an unknown profile raises XPPRF.';
revoke all on function private.review_caller(uuid) from public;

create or replace function private.review_admin(p_profile_id uuid)
returns uuid
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_caller record;
begin
  v_caller := private.review_caller(p_profile_id);
  if not v_caller.is_admin then
    raise exception 'Only admins may manage resume reviews' using errcode = '42501';
  end if;
  return v_caller.actor_id;
end
$$;
comment on function private.review_admin(uuid) is
  'The acting admin''s profile id (null for the backend itself); raises 42501 for anyone who is not an admin.';
revoke all on function private.review_admin(uuid) from public;

create or replace function private.check_time_zone(p_time_zone text)
returns text
language plpgsql
stable
set search_path = ''
as $$
begin
  if p_time_zone is null or length(p_time_zone) > 64
     or not exists (select 1 from pg_catalog.pg_timezone_names z where z.name = p_time_zone) then
    raise exception 'Unknown time zone: % (use an IANA name such as Asia/Kolkata)', coalesce(p_time_zone, 'null')
      using errcode = 'XPRTZ';
  end if;
  return p_time_zone;
end
$$;
comment on function private.check_time_zone(text) is 'Returns an IANA time zone name unchanged, or raises XPRTZ.';
revoke all on function private.check_time_zone(text) from public;

create or replace function private.check_weekly(p_intervals jsonb)
returns jsonb
language plpgsql
immutable
set search_path = ''
as $$
declare
  v_item jsonb;
  v_out jsonb := '[]';
  v_weekday integer;
  v_start integer;
  v_end integer;
begin
  if p_intervals is null or jsonb_typeof(p_intervals) <> 'array' or jsonb_array_length(p_intervals) > 50 then
    raise exception 'Availability is a list of at most 50 {weekday, start_minute, end_minute}' using errcode = 'XPRAV';
  end if;
  for v_item in select * from jsonb_array_elements(p_intervals) loop
    begin
      v_weekday := (v_item ->> 'weekday')::integer;
      v_start := (v_item ->> 'start_minute')::integer;
      v_end := (v_item ->> 'end_minute')::integer;
    exception when others then
      raise exception 'Not an availability interval: %', v_item using errcode = 'XPRAV';
    end;
    if v_weekday is null or v_weekday not between 1 and 7 then
      raise exception 'weekday must be 1 (Monday) to 7 (Sunday): %', v_item using errcode = 'XPRAV';
    end if;
    if v_start is null or v_end is null or v_start not between 0 and 1440 or v_end not between 0 and 1440 then
      raise exception 'Times must lie within the day, 0 to 1440 minutes (0-24 h): %', v_item using errcode = 'XPRAV';
    end if;
    if v_end = v_start then
      raise exception 'An availability interval cannot be of zero length: %', v_item using errcode = 'XPRAV';
    end if;
    if v_end < v_start then
      raise exception 'An availability interval cannot end before it starts: %', v_item using errcode = 'XPRAV';
    end if;
    v_out := v_out || jsonb_build_object('weekday', v_weekday, 'start_minute', v_start, 'end_minute', v_end);
  end loop;
  return v_out;
end
$$;
comment on function private.check_weekly(jsonb) is
  'Validates weekly intervals [{weekday 1-7, start_minute, end_minute}] (minutes after local midnight, '
  '0-1440, end after start) and returns them normalised; raises XPRAV naming the bad item.';
revoke all on function private.check_weekly(jsonb) from public;

create or replace function private.check_specialties(p_specialties text[])
returns text[]
language plpgsql
stable
set search_path = ''
as $$
declare
  v_unknown text;
begin
  select s into v_unknown from unnest(coalesce(p_specialties, '{}')) s
   where not exists (select 1 from public.review_specialties r where r.slug = s and r.active) limit 1;
  if v_unknown is not null then
    raise exception 'Unknown specialty: % (see public.review_specialties)', v_unknown using errcode = 'XPRSP';
  end if;
  return (select coalesce(array_agg(distinct s order by s), '{}') from unnest(coalesce(p_specialties, '{}')) s);
end
$$;
comment on function private.check_specialties(text[]) is
  'Returns the specialties sorted and without duplicates, or raises XPRSP for one not active in review_specialties.';
revoke all on function private.check_specialties(text[]) from public;

create or replace function private.tg_professionals__validate()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  perform private.check_time_zone(new.time_zone);
  new.specialties := private.check_specialties(new.specialties);
  new.updated_at := now();
  return new;
end
$$;
comment on function private.tg_professionals__validate() is
  'Before insert or update of professionals: an IANA time zone (XPRTZ) and known specialties (XPRSP).';
revoke all on function private.tg_professionals__validate() from public;

drop trigger if exists _100_validate on public.professionals;
create trigger _100_validate before insert or update on public.professionals
  for each row execute function private.tg_professionals__validate();

create or replace function private.review_event(
  p_request_id bigint, p_session_id bigint, p_from text, p_to text, p_actor_id uuid, p_actor_role text, p_note text
)
returns void
language sql
volatile
security definer
set search_path = ''
as $$
  insert into private.review_events (request_id, session_id, from_status, to_status, actor_id, actor_role, note)
  values (p_request_id, p_session_id, p_from, p_to, p_actor_id, p_actor_role, left(coalesce(p_note, ''), 500))
$$;
comment on function private.review_event(bigint, bigint, text, text, uuid, text, text) is
  'Records one workflow step of a request (and session) with its actor and the time.';
revoke all on function private.review_event(bigint, bigint, text, text, uuid, text, text) from public;

------------------------------------------------------------------------------
-- Shapes
------------------------------------------------------------------------------

create or replace function private.review_session_json(p_session_id bigint)
returns jsonb
language sql
stable
security definer
set search_path = ''
as $$
  select jsonb_build_object(
    'id', s.id, 'request_id', s.request_id, 'status', s.status,
    'starts_at', private.utc_text(lower(s.during)), 'ends_at', private.utc_text(upper(s.during)),
    'meeting_url', s.meeting_url, 'target_role', r.target_role,
    'member', jsonb_build_object('id', m.id, 'display_name', m.display_name, 'time_zone', r.time_zone),
    'professional', jsonb_build_object('id', pr.id, 'name', pr.name, 'time_zone', pr.time_zone,
                                       'profile_id', pr.profile_id),
    'member_confirmed', s.member_confirmed_at is not null,
    'professional_confirmed', s.professional_confirmed_at is not null)
    from public.review_sessions s
    join public.review_requests r on r.id = s.request_id
    join public.profiles m on m.id = s.member_id
    join public.professionals pr on pr.id = s.professional_id
   where s.id = p_session_id
$$;
comment on function private.review_session_json(bigint) is
  'One session as {id, request_id, status, starts_at, ends_at (UTC), meeting_url, target_role, member {id, '
  'display_name, time_zone}, professional {id, name, time_zone, profile_id}, member_confirmed, professional_confirmed}.';
revoke all on function private.review_session_json(bigint) from public;

create or replace function private.review_request_json(p_request_id bigint)
returns jsonb
language sql
stable
security definer
set search_path = ''
as $$
  select jsonb_build_object(
    'id', r.id, 'member_id', r.member_id, 'status', r.status, 'target_role', r.target_role,
    'industry', r.industry, 'specialties', to_jsonb(r.specialties), 'resume_url', r.resume_url,
    'notes', r.notes, 'time_zone', r.time_zone, 'preferred_times', r.preferred_times,
    'created_at', private.utc_text(r.created_at),
    'session', (select private.review_session_json(s.id) from public.review_sessions s
                 where s.request_id = r.id order by s.id desc limit 1))
    from public.review_requests r
   where r.id = p_request_id
$$;
comment on function private.review_request_json(bigint) is
  'One request as {id, member_id, status, target_role, industry, specialties, resume_url, notes, time_zone, '
  'preferred_times, created_at (UTC), session (its latest session, or null)}.';
revoke all on function private.review_request_json(bigint) from public;

create or replace function private.professional_json(p_professional_id uuid)
returns jsonb
language sql
stable
security definer
set search_path = ''
as $$
  select jsonb_build_object(
    'id', p.id, 'profile_id', p.profile_id, 'name', p.name, 'email', p.email,
    'specialties', to_jsonb(p.specialties), 'industries', to_jsonb(p.industries), 'seniority', p.seniority,
    'languages', to_jsonb(p.languages), 'time_zone', p.time_zone, 'weekly_capacity', p.weekly_capacity,
    'active', p.active, 'rating', p.rating, 'ratings_count', p.ratings_count,
    'availability', coalesce((
      select jsonb_agg(jsonb_build_object('weekday', a.weekday, 'start_minute', a.start_minute,
                                          'end_minute', a.end_minute) order by a.weekday, a.start_minute)
        from private.availability_rules a where a.professional_id = p.id), '[]'))
    from public.professionals p
   where p.id = p_professional_id
$$;
comment on function private.professional_json(uuid) is
  'One professional as {id, profile_id, name, email, specialties, industries, seniority, languages, time_zone, '
  'weekly_capacity, active, rating, ratings_count, availability [{weekday, start_minute, end_minute}] local}.';
revoke all on function private.professional_json(uuid) from public;

------------------------------------------------------------------------------
-- Requests and the workflow
------------------------------------------------------------------------------

create or replace function private.request_review(p_profile_id uuid, p_request jsonb)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_caller record := private.review_caller(p_profile_id);
  v_r jsonb := coalesce(p_request, '{}');
  v_specialties text[];
  v_missing text;
  v_times jsonb;
  v_id bigint;
begin
  if v_caller.actor_id is null then
    raise exception 'A review request needs the member it is for' using errcode = 'XPBAD';
  end if;
  if jsonb_typeof(v_r) <> 'object' or nullif(trim(v_r ->> 'target_role'), '') is null then
    raise exception 'A review request needs a target role' using errcode = 'XPBAD';
  end if;
  perform private.check_time_zone(v_r ->> 'time_zone');
  v_specialties := private.check_specialties(
    (select array_agg(x) from jsonb_array_elements_text(coalesce(v_r -> 'specialties', '[]')) x));
  select s into v_missing from unnest(v_specialties) s
   where not exists (select 1 from public.professionals p where p.active and s = any (p.specialties)) limit 1;
  if v_missing is not null then
    raise exception 'No active professional reviews % yet', v_missing using errcode = 'XPRNP';
  end if;
  v_times := private.check_weekly(coalesce(v_r -> 'preferred_times', '[]'));
  if jsonb_array_length(v_times) = 0 then
    raise exception 'Name at least one preferred time' using errcode = 'XPRAV';
  end if;
  perform pg_advisory_xact_lock(hashtextextended('review request' || chr(31) || v_caller.actor_id::text, 0));
  if exists (select 1 from public.review_requests r where r.member_id = v_caller.actor_id
               and r.status in ('requested', 'matched', 'scheduled')) then
    raise exception 'You already have an open review request' using errcode = 'XPRVO';
  end if;
  insert into public.review_requests
    (member_id, target_role, industry, specialties, resume_url, notes, time_zone, preferred_times)
  values (v_caller.actor_id, trim(v_r ->> 'target_role'), nullif(trim(v_r ->> 'industry'), ''), v_specialties,
          nullif(trim(v_r ->> 'resume_url'), ''), coalesce(v_r ->> 'notes', ''), v_r ->> 'time_zone', v_times)
  returning id into v_id;
  perform private.review_event(v_id, null, null, 'requested', v_caller.actor_id, v_caller.actor_role, '');
  return private.review_request_json(v_id);
end
$$;
comment on function private.request_review(uuid, jsonb) is 'Implementation of public.request_review.';
revoke all on function private.request_review(uuid, jsonb) from public;
grant execute on function private.request_review(uuid, jsonb) to authenticated, service_role;

create or replace function public.request_review(request jsonb, profile_id uuid default null)
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.request_review(request_review.profile_id, request_review.request)
$$;
comment on function public.request_review(jsonb, uuid) is
  'Asks for a resume review: request {target_role, industry?, specialties [slug], resume_url (https), notes, '
  'time_zone (IANA, the member''s), preferred_times [{weekday 1-7, start_minute, end_minute}] local}. A member '
  'asks for themselves; service_role (the bot) names profile_id. Returns the request '
  '(private.review_request_json). Errors: XPRVO an open request exists, XPRSP unknown specialty, XPRNP no '
  'professional offers it, XPRTZ, XPRAV bad or missing preferred times, XPBAD, 23514 values out of range.';
revoke all on function public.request_review(jsonb, uuid) from public, anon;
grant execute on function public.request_review(jsonb, uuid) to authenticated, service_role;

create or replace function private.my_reviews(p_profile_id uuid)
returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_caller record := private.review_caller(p_profile_id);
begin
  if v_caller.actor_id is null then
    raise exception 'Name the member' using errcode = 'XPBAD';
  end if;
  return jsonb_build_object(
    'requests', coalesce((select jsonb_agg(private.review_request_json(r.id) order by r.id desc)
                            from public.review_requests r where r.member_id = v_caller.actor_id), '[]'),
    'reviewing', coalesce((select jsonb_agg(private.review_session_json(s.id) order by lower(s.during))
                             from public.review_sessions s join public.professionals pr on pr.id = s.professional_id
                            where pr.profile_id = v_caller.actor_id and s.status in ('scheduled', 'completed')), '[]'));
end
$$;
comment on function private.my_reviews(uuid) is 'Implementation of public.my_reviews.';
revoke all on function private.my_reviews(uuid) from public;
grant execute on function private.my_reviews(uuid) to authenticated, service_role;

create or replace function public.my_reviews(profile_id uuid default null)
returns jsonb
language sql
stable
security invoker
set search_path = ''
as $$
  select private.my_reviews(my_reviews.profile_id)
$$;
comment on function public.my_reviews(uuid) is
  'The caller''s review requests (newest first, each with its latest session) and, for a professional, the '
  'sessions they review: {requests: [request], reviewing: [session]}. service_role names profile_id.';
revoke all on function public.my_reviews(uuid) from public, anon;
grant execute on function public.my_reviews(uuid) to authenticated, service_role;

create or replace function private.notify_review(p_profile_id uuid, p_kind text, p_title text, p_data jsonb)
returns void
language sql
volatile
security definer
set search_path = ''
as $$
  insert into public.notifications (profile_id, kind, title, data)
  select p_profile_id, p_kind, p_title, p_data where p_profile_id is not null
$$;
comment on function private.notify_review(uuid, text, text, jsonb) is
  'A review notification to one person (nothing for a professional without a profile).';
revoke all on function private.notify_review(uuid, text, text, jsonb) from public;

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

create or replace function public.review_action(
  request_id bigint, action text, note text default '', profile_id uuid default null
)
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.review_action(review_action.profile_id, review_action.request_id, review_action.action,
                               review_action.note)
$$;
comment on function public.review_action(bigint, text, text, uuid) is
  'One workflow step on a review request and its scheduled session, recorded with actor and time: confirm '
  '(member or professional), cancel (either side or an admin), reschedule (the session ends, the request goes '
  'back to requested for the matcher), complete and no_show (the professional or an admin, once the session '
  'has started). complete awards resume_review_received to the member and resume_review_given to the reviewer '
  '(award_xp, idempotent per session). The other side is notified. Returns the request. Errors: XPRVQ unknown '
  'request, XPRVS wrong state, XPRVT not started, XPBAD unknown action, 42501 not a party.';
revoke all on function public.review_action(bigint, text, text, uuid) from public, anon;
grant execute on function public.review_action(bigint, text, text, uuid) to authenticated, service_role;

create or replace function private.review_feedback(p_profile_id uuid, p_request_id bigint, p_rating integer, p_body text)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_caller record := private.review_caller(p_profile_id);
  v_ses public.review_sessions;
  v_pro public.professionals;
  v_side text;
begin
  if p_rating is null or p_rating not between 1 and 5 then
    raise exception 'A rating is 1 to 5, got %', coalesce(p_rating::text, 'null') using errcode = 'XPRVR';
  end if;
  if length(coalesce(p_body, '')) > 2000 then
    raise exception 'Feedback is at most 2000 characters' using errcode = 'XPBAD';
  end if;
  if not exists (select 1 from public.review_requests r where r.id = p_request_id) then
    raise exception 'Unknown review request: %', p_request_id using errcode = 'XPRVQ';
  end if;
  select * into v_ses from public.review_sessions s
   where s.request_id = p_request_id and s.status = 'completed' order by s.id desc limit 1;
  if not found then
    raise exception 'Feedback opens once the session is completed' using errcode = 'XPRVS';
  end if;
  select * into v_pro from public.professionals p where p.id = v_ses.professional_id for update;
  v_side := case when v_ses.member_id = v_caller.actor_id then 'member'
                 when v_pro.profile_id = v_caller.actor_id then 'professional' end;
  if v_side is null then
    raise exception 'Only the member and the reviewer give feedback on a session' using errcode = '42501';
  end if;
  if exists (select 1 from public.review_feedback f where f.session_id = v_ses.id and f.side = v_side) then
    raise exception 'You already gave feedback on this session' using errcode = 'XPRVF';
  end if;
  insert into public.review_feedback (session_id, author_id, side, rating, body)
  values (v_ses.id, v_caller.actor_id, v_side, p_rating, coalesce(p_body, ''));
  if v_side = 'member' then
    update public.professionals p
       set rating = (select round(avg(f.rating), 2) from public.review_feedback f
                       join public.review_sessions s on s.id = f.session_id
                      where s.professional_id = p.id and f.side = 'member'),
           ratings_count = p.ratings_count + 1
     where p.id = v_pro.id;
  end if;
  return jsonb_build_object('session_id', v_ses.id, 'side', v_side, 'rating', p_rating);
end
$$;
comment on function private.review_feedback(uuid, bigint, integer, text) is 'Implementation of public.review_feedback.';
revoke all on function private.review_feedback(uuid, bigint, integer, text) from public;
grant execute on function private.review_feedback(uuid, bigint, integer, text) to authenticated, service_role;

create or replace function public.review_feedback(
  request_id bigint, rating integer, body text default '', profile_id uuid default null
)
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.review_feedback(review_feedback.profile_id, review_feedback.request_id, review_feedback.rating,
                                 review_feedback.body)
$$;
comment on function public.review_feedback(bigint, integer, text, uuid) is
  'Feedback on a completed session, once per side: the member rates the reviewer (which updates the '
  'professional''s mean rating), the reviewer rates the member. rating 1-5, body up to 2000 characters. '
  'Returns {session_id, side, rating}. Errors: XPRVR rating outside 1-5, XPRVF second feedback, XPRVS not '
  'completed, XPRVQ unknown request, 42501 not a party.';
revoke all on function public.review_feedback(bigint, integer, text, uuid) from public, anon;
grant execute on function public.review_feedback(bigint, integer, text, uuid) to authenticated, service_role;

------------------------------------------------------------------------------
-- Calendars: a feed token per person
------------------------------------------------------------------------------

create or replace function private.review_calendar_token(p_profile_id uuid)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_caller record := private.review_caller(p_profile_id);
  v_token text := encode(uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid()), 'hex');
begin
  if v_caller.actor_id is null then
    raise exception 'Name the member' using errcode = 'XPBAD';
  end if;
  insert into private.review_calendar_tokens (profile_id, token_hash)
  values (v_caller.actor_id, sha256(convert_to(v_token, 'UTF8')))
  on conflict (profile_id) do update set token_hash = excluded.token_hash, created_at = now();
  return jsonb_build_object('token', v_token);
end
$$;
comment on function private.review_calendar_token(uuid) is 'Implementation of public.review_calendar_token.';
revoke all on function private.review_calendar_token(uuid) from public;
grant execute on function private.review_calendar_token(uuid) to authenticated, service_role;

create or replace function public.review_calendar_token(profile_id uuid default null)
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.review_calendar_token(review_calendar_token.profile_id)
$$;
comment on function public.review_calendar_token(uuid) is
  'A new calendar feed token for the caller ({token}: 64 hex characters, 244 random bits), replacing the '
  'previous one; the service serves the feed at /v1/reviews/calendar/<token>.ics. Stored as sha256.';
revoke all on function public.review_calendar_token(uuid) from public, anon;
grant execute on function public.review_calendar_token(uuid) to authenticated, service_role;

create or replace function private.review_calendar_feed(p_token text)
returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_profile_id uuid;
begin
  if p_token is null or p_token !~ '^[0-9a-f]{64}$' then
    raise exception 'Unknown calendar token' using errcode = 'XPRCT';
  end if;
  select t.profile_id into v_profile_id from private.review_calendar_tokens t
   where t.token_hash = sha256(convert_to(p_token, 'UTF8'));
  if not found then
    raise exception 'Unknown calendar token' using errcode = 'XPRCT';
  end if;
  return jsonb_build_object('profile_id', v_profile_id, 'sessions', coalesce((
    select jsonb_agg(private.review_session_json(s.id) order by lower(s.during))
      from public.review_sessions s join public.professionals pr on pr.id = s.professional_id
     where (s.member_id = v_profile_id or pr.profile_id = v_profile_id)
       and s.status in ('scheduled', 'completed')), '[]'));
end
$$;
comment on function private.review_calendar_feed(text) is 'Implementation of public.service_role_review_calendar_feed.';
revoke all on function private.review_calendar_feed(text) from public;
grant execute on function private.review_calendar_feed(text) to service_role;

create or replace function public.service_role_review_calendar_feed(token text)
returns jsonb
language sql
stable
security invoker
set search_path = ''
as $$
  select private.review_calendar_feed(service_role_review_calendar_feed.token)
$$;
comment on function public.service_role_review_calendar_feed(text) is
  'The sessions (scheduled or completed) of the person a calendar token belongs to, as member or reviewer: '
  '{profile_id, sessions: [session]}. Errors: XPRCT unknown token. service_role only (the feed route).';
revoke all on function public.service_role_review_calendar_feed(text) from public, anon, authenticated;
grant execute on function public.service_role_review_calendar_feed(text) to service_role;
