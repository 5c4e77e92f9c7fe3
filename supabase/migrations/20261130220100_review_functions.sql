-- review_functions
--
-- Written by `xpbase migration new` from the feature files in supabase/sql/:
-- the function and trigger definitions that changed since the last migration.
-- Edit the feature files, not this file; landed migrations never change.
-- Changed:
--   function private.review_caller(uuid)
--   function private.review_admin(uuid)
--   function private.check_time_zone(text)
--   function private.check_weekly(jsonb)
--   function private.check_specialties(text[])
--   function private.tg_professionals__validate()
--   trigger public.professionals._100_validate
--   function private.review_event(int8, int8, text, text, uuid, text, text)
--   function private.review_session_json(int8)
--   function private.review_request_json(int8)
--   function private.professional_json(uuid)
--   function private.upsert_professional(uuid, jsonb)
--   function public.admin_upsert_professional(jsonb, uuid)
--   function private.set_availability(uuid, uuid, jsonb, jsonb, jsonb, text)
--   function public.set_review_availability(uuid, jsonb, jsonb, jsonb, uuid)
--   function private.import_availability(uuid, jsonb)
--   function public.admin_import_review_availability(jsonb, uuid)
--   function private.request_review(uuid, jsonb)
--   function public.request_review(jsonb, uuid)
--   function private.my_reviews(uuid)
--   function public.my_reviews(uuid)
--   function private.notify_review(uuid, text, text, jsonb)
--   function private.review_action(uuid, int8, text, text)
--   function public.review_action(int8, text, text, uuid)
--   function private.review_feedback(uuid, int8, int4, text)
--   function public.review_feedback(int8, int4, text, uuid)
--   function private.reviewer_stats(uuid, uuid)
--   function public.reviewer_stats(uuid, uuid)
--   function private.review_calendar_token(uuid)
--   function public.review_calendar_token(uuid)
--   function private.review_calendar_feed(text)
--   function public.service_role_review_calendar_feed(text)
--   function private.review_session(uuid, int8)
--   function public.review_session(int8, uuid)
--   function private.weekly_instants(jsonb, text, timestamptz, timestamptz)
--   function private.professional_free(uuid, timestamptz, timestamptz)
--   function private.request_free(int8, timestamptz, timestamptz)
--   function private.epoch_pairs(tstzmultirange)
--   function private.used_capacity(uuid, timestamptz)
--   function private.review_match_input(uuid, timestamptz, int4, int4)
--   function public.admin_review_match_input(int4, int4, timestamptz, uuid)
--   function private.book_review(uuid, int8, uuid, timestamptz, int4, uuid, float8, jsonb, text)
--   function public.admin_book_review(int8, uuid, timestamptz, uuid, float8, jsonb, int4, text, uuid)
--   function private.review_matches_of(uuid, int8)
--   function public.admin_review_matches(int8, uuid)

-- from supabase/sql/95_reviews.sql ------------------------------------------

-- Resume reviews: professionals and their availability, members' review requests, the workflow
-- (requested -> matched -> scheduled -> completed, or cancelled, no_show, rescheduled) with actor and
-- time, notifications to both sides, XP on completion, feedback both ways, reviewer statistics and
-- calendar feeds. Matching and booking (free time in UTC, the no-double-booking path) are in
-- 96_review_matching.sql.
--
-- Tables: public.review_specialties, public.professionals, public.review_requests,
-- public.review_sessions, public.review_feedback, private.availability_rules,
-- private.availability_exceptions, private.availability_slots, private.review_events,
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
declare
  v_role text := (select auth.role());
begin
  if v_role = 'service_role' then
    actor_role := 'service_role';
    actor_id := p_profile_id;
    if actor_id is null then
      is_admin := true;
      return;
    end if;
  elsif v_role = 'authenticated' and (select auth.uid()) is not null then
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
-- Professionals and availability (admins; a professional for their own availability)
------------------------------------------------------------------------------
create or replace function private.upsert_professional(p_actor_id uuid, p_professional jsonb)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_p jsonb := coalesce(p_professional, '{}');
  v_id uuid;
  v_email text := nullif(lower(trim(v_p ->> 'email')), '');
  v_profile_id uuid := (v_p ->> 'profile_id')::uuid;
begin
  perform private.review_admin(p_actor_id);
  if jsonb_typeof(v_p) <> 'object' or nullif(trim(v_p ->> 'name'), '') is null then
    raise exception 'A professional needs a name' using errcode = 'XPBAD';
  end if;
  perform private.check_time_zone(v_p ->> 'time_zone');
  if v_profile_id is not null and not exists (select 1 from public.profiles p where p.id = v_profile_id) then
    raise exception 'Unknown profile: %', v_profile_id using errcode = 'XPPRF';
  end if;
  select p.id into v_id from public.professionals p
   where (v_email is not null and lower(p.email) = v_email) or (v_profile_id is not null and p.profile_id = v_profile_id)
   order by p.created_at limit 1
     for update;
  if v_id is null then
    insert into public.professionals (profile_id, name, email, time_zone) values
      (v_profile_id, trim(v_p ->> 'name'), v_email, v_p ->> 'time_zone')
    returning id into v_id;
  end if;
  update public.professionals p set
    profile_id = coalesce(v_profile_id, p.profile_id),
    name = trim(v_p ->> 'name'),
    email = coalesce(v_email, p.email),
    time_zone = v_p ->> 'time_zone',
    specialties = coalesce((select array_agg(x) from jsonb_array_elements_text(v_p -> 'specialties') x), p.specialties),
    industries = coalesce((select array_agg(x) from jsonb_array_elements_text(v_p -> 'industries') x), p.industries),
    seniority = coalesce(v_p ->> 'seniority', p.seniority),
    languages = coalesce((select array_agg(x) from jsonb_array_elements_text(v_p -> 'languages') x), p.languages),
    weekly_capacity = coalesce((v_p ->> 'weekly_capacity')::integer, p.weekly_capacity),
    active = coalesce((v_p ->> 'active')::boolean, p.active)
   where p.id = v_id;
  return private.professional_json(v_id);
end
$$;

comment on function private.upsert_professional(uuid, jsonb) is 'Implementation of public.admin_upsert_professional.';

revoke all on function private.upsert_professional(uuid, jsonb) from public;

grant execute on function private.upsert_professional(uuid, jsonb) to authenticated, service_role;

create or replace function public.admin_upsert_professional(professional jsonb, actor_id uuid default null)
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.upsert_professional(admin_upsert_professional.actor_id, admin_upsert_professional.professional)
$$;

comment on function public.admin_upsert_professional(jsonb, uuid) is
  'Adds or updates a professional reviewer, matched by email or profile_id: professional {name, email, '
  'profile_id, time_zone (IANA), specialties [slug], industries, seniority (junior|mid|senior|lead|executive), '
  'languages, weekly_capacity (0-40 sessions per 7 days), active}; omitted fields keep their value. Returns '
  'the professional (private.professional_json). actor_id: the admin the backend acts for. Errors: XPRTZ, '
  'XPRSP, XPPRF, XPBAD, 23514 values out of range, 42501 not an admin. Admins and service_role.';

revoke all on function public.admin_upsert_professional(jsonb, uuid) from public, anon;

grant execute on function public.admin_upsert_professional(jsonb, uuid) to authenticated, service_role;

create or replace function private.set_availability(
  p_actor_id uuid, p_professional_id uuid, p_weekly jsonb, p_exceptions jsonb, p_slots jsonb, p_source text
)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_caller record := private.review_caller(p_actor_id);
  v_pro public.professionals;
  v_weekly jsonb;
  v_item jsonb;
  v_from timestamptz;
  v_to timestamptz;
begin
  select * into v_pro from public.professionals p where p.id = p_professional_id for update;
  if not found then
    raise exception 'Unknown professional: %', p_professional_id using errcode = 'XPRVP';
  end if;
  if not v_caller.is_admin and v_pro.profile_id is distinct from v_caller.actor_id then
    raise exception 'Only admins and the professional may change this availability' using errcode = '42501';
  end if;
  if p_source not in ('manual', 'form') then
    raise exception 'source must be manual or form' using errcode = 'XPBAD';
  end if;
  if p_weekly is not null then
    v_weekly := private.check_weekly(p_weekly);
    delete from private.availability_rules a where a.professional_id = v_pro.id;
    insert into private.availability_rules (professional_id, weekday, start_minute, end_minute, source)
    select v_pro.id, (w ->> 'weekday')::smallint, (w ->> 'start_minute')::smallint,
           (w ->> 'end_minute')::smallint, p_source
      from jsonb_array_elements(v_weekly) w;
  end if;
  for v_item in select * from jsonb_array_elements(coalesce(p_exceptions, '[]')) loop
    if (v_item ->> 'local_date') is null then
      raise exception 'An exception needs a local_date: %', v_item using errcode = 'XPRAV';
    end if;
    if (v_item ->> 'start_minute') is not null or (v_item ->> 'end_minute') is not null then
      perform private.check_weekly(jsonb_build_array(v_item || '{"weekday": 1}'));
    end if;
    if (v_item ->> 'local_date')::date < (now() at time zone v_pro.time_zone)::date then
      raise exception 'That date is in the past: %', v_item ->> 'local_date' using errcode = 'XPRVT';
    end if;
    insert into private.availability_exceptions (professional_id, local_date, start_minute, end_minute, note)
    values (v_pro.id, (v_item ->> 'local_date')::date, (v_item ->> 'start_minute')::smallint,
            (v_item ->> 'end_minute')::smallint, coalesce(v_item ->> 'note', ''));
  end loop;
  for v_item in select * from jsonb_array_elements(coalesce(p_slots, '[]')) loop
    v_from := (v_item ->> 'starts_at')::timestamptz;
    v_to := (v_item ->> 'ends_at')::timestamptz;
    if v_from is null or v_to is null then
      raise exception 'A slot needs starts_at and ends_at: %', v_item using errcode = 'XPRAV';
    end if;
    if v_to <= v_from then
      raise exception 'A slot cannot end before it starts or be of zero length: %', v_item using errcode = 'XPRAV';
    end if;
    if v_to - v_from > interval '1 day' then
      raise exception 'A one-off slot lasts at most a day: %', v_item using errcode = 'XPRAV';
    end if;
    if v_from < now() then
      raise exception 'That slot is in the past: %', v_item using errcode = 'XPRVT';
    end if;
    insert into private.availability_slots (professional_id, during) values (v_pro.id, tstzrange(v_from, v_to, '[)'));
  end loop;
  return private.professional_json(v_pro.id);
end
$$;

comment on function private.set_availability(uuid, uuid, jsonb, jsonb, jsonb, text) is
  'Implementation of public.set_review_availability.';

revoke all on function private.set_availability(uuid, uuid, jsonb, jsonb, jsonb, text) from public;

grant execute on function private.set_availability(uuid, uuid, jsonb, jsonb, jsonb, text) to authenticated, service_role;

create or replace function public.set_review_availability(
  professional_id uuid,
  weekly jsonb default null,
  exceptions jsonb default null,
  slots jsonb default null,
  actor_id uuid default null
)
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.set_availability(set_review_availability.actor_id, set_review_availability.professional_id,
                                  set_review_availability.weekly, set_review_availability.exceptions,
                                  set_review_availability.slots, 'manual')
$$;

comment on function public.set_review_availability(uuid, jsonb, jsonb, jsonb, uuid) is
  'A professional''s availability. weekly (when given) replaces the weekly rules: [{weekday 1-7, start_minute, '
  'end_minute}] in minutes after local midnight in the professional''s time zone; exceptions adds dated '
  'absences [{local_date, start_minute?, end_minute?, note?}] (no minutes: the whole day); slots adds one-off '
  'times [{starts_at, ends_at}] (UTC instants, at most a day). Returns the professional. Errors: XPRAV bad '
  'interval (outside 0-24 h, zero length, end before start), XPRVT a date or slot in the past, XPRVP unknown '
  'professional, 42501 neither an admin nor that professional. Nothing changes on an error.';

revoke all on function public.set_review_availability(uuid, jsonb, jsonb, jsonb, uuid) from public, anon;

grant execute on function public.set_review_availability(uuid, jsonb, jsonb, jsonb, uuid) to authenticated, service_role;

create or replace function private.import_availability(p_actor_id uuid, p_rows jsonb)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_row jsonb;
  v_pro jsonb;
  v_created integer := 0;
  v_updated integer := 0;
begin
  perform private.review_admin(p_actor_id);
  if p_rows is null or jsonb_typeof(p_rows) <> 'array' or jsonb_array_length(p_rows) > 5000 then
    raise exception 'rows must be a list of at most 5000 professionals' using errcode = 'XPBAD';
  end if;
  for v_row in select * from jsonb_array_elements(p_rows) loop
    if nullif(trim(v_row ->> 'email'), '') is null then
      raise exception 'Every imported row needs an email: %', v_row using errcode = 'XPBAD';
    end if;
    if exists (select 1 from public.professionals p where lower(p.email) = lower(trim(v_row ->> 'email'))) then
      v_updated := v_updated + 1;
    else
      v_created := v_created + 1;
    end if;
    v_pro := private.upsert_professional(p_actor_id, jsonb_build_object(
      'name', v_row ->> 'name', 'email', v_row ->> 'email', 'time_zone', v_row ->> 'time_zone'));
    perform private.set_availability(p_actor_id, (v_pro ->> 'id')::uuid, v_row -> 'weekly', null, null, 'form');
  end loop;
  return jsonb_build_object('created', v_created, 'updated', v_updated);
end
$$;

comment on function private.import_availability(uuid, jsonb) is 'Implementation of public.admin_import_review_availability.';

revoke all on function private.import_availability(uuid, jsonb) from public;

grant execute on function private.import_availability(uuid, jsonb) to authenticated, service_role;

create or replace function public.admin_import_review_availability(rows jsonb, actor_id uuid default null)
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.import_availability(admin_import_review_availability.actor_id, admin_import_review_availability.rows)
$$;

comment on function public.admin_import_review_availability(jsonb, uuid) is
  'Imports availability read from a Google Forms export (xpbase/availability_text.py parses it): rows '
  '[{name, email, time_zone, weekly [{weekday, start_minute, end_minute}]}]; a professional is found by email '
  'or added, and their weekly rules are replaced. All rows or none. Returns {created, updated}. Errors: as '
  'admin_upsert_professional and set_review_availability. Admins and service_role.';

revoke all on function public.admin_import_review_availability(jsonb, uuid) from public, anon;

grant execute on function public.admin_import_review_availability(jsonb, uuid) to authenticated, service_role;

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
-- Reviewer statistics
------------------------------------------------------------------------------
create or replace function private.reviewer_stats(p_actor_id uuid, p_professional_id uuid)
returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_caller record := private.review_caller(p_actor_id);
begin
  if not v_caller.is_admin and not exists (
    select 1 from public.professionals p where p.id = p_professional_id and p.profile_id = v_caller.actor_id
  ) then
    raise exception 'Only admins and the professional may read these statistics' using errcode = '42501';
  end if;
  return coalesce((
    select jsonb_agg(jsonb_build_object(
             'professional_id', p.id, 'name', p.name,
             'sessions_done', st.done, 'no_shows', st.no_shows,
             'no_show_rate', case when st.done + st.no_shows > 0
                                  then round(st.no_shows::numeric / (st.done + st.no_shows), 4) end,
             'mean_rating', p.rating, 'ratings_count', p.ratings_count,
             'median_seconds_to_first_slot', st.median_wait) order by p.name, p.id)
      from public.professionals p
      cross join lateral (
        select count(*) filter (where s.status = 'completed') as done,
               count(*) filter (where s.status = 'no_show') as no_shows,
               percentile_cont(0.5) within group (
                 order by extract(epoch from lower(s.during) - r.created_at)) as median_wait
          from public.review_sessions s join public.review_requests r on r.id = s.request_id
         where s.professional_id = p.id and s.status in ('scheduled', 'completed', 'no_show')
      ) st
     where p_professional_id is null or p.id = p_professional_id), '[]');
end
$$;

comment on function private.reviewer_stats(uuid, uuid) is 'Implementation of public.reviewer_stats.';

revoke all on function private.reviewer_stats(uuid, uuid) from public;

grant execute on function private.reviewer_stats(uuid, uuid) to authenticated, service_role;

create or replace function public.reviewer_stats(professional_id uuid default null, actor_id uuid default null)
returns jsonb
language sql
stable
security invoker
set search_path = ''
as $$
  select private.reviewer_stats(reviewer_stats.actor_id, reviewer_stats.professional_id)
$$;

comment on function public.reviewer_stats(uuid, uuid) is
  'Reviewer performance, one professional or all (null): [{professional_id, name, sessions_done, no_shows, '
  'no_show_rate (0-1, null before any), mean_rating (1-5), ratings_count, median_seconds_to_first_slot (from '
  'request to session start, seconds)}]. Admins for all, a professional for themselves; 42501 otherwise.';

revoke all on function public.reviewer_stats(uuid, uuid) from public, anon;

grant execute on function public.reviewer_stats(uuid, uuid) to authenticated, service_role;

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

create or replace function private.review_session(p_profile_id uuid, p_session_id bigint)
returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_caller record := private.review_caller(p_profile_id);
begin
  if not v_caller.is_admin and not exists (
    select 1 from public.review_sessions s join public.professionals pr on pr.id = s.professional_id
     where s.id = p_session_id and (s.member_id = v_caller.actor_id or pr.profile_id = v_caller.actor_id)
  ) then
    raise exception 'Unknown review session: %', p_session_id using errcode = 'XPRVQ';
  end if;
  return private.review_session_json(p_session_id);
end
$$;

comment on function private.review_session(uuid, bigint) is 'Implementation of public.review_session.';

revoke all on function private.review_session(uuid, bigint) from public;

grant execute on function private.review_session(uuid, bigint) to authenticated, service_role;

create or replace function public.review_session(session_id bigint, profile_id uuid default null)
returns jsonb
language sql
stable
security invoker
set search_path = ''
as $$
  select private.review_session(review_session.profile_id, review_session.session_id)
$$;

comment on function public.review_session(bigint, uuid) is
  'One session the caller takes part in (or any, for an admin), as private.review_session_json: what its '
  '.ics invitation is made from. Errors: XPRVQ unknown session or not the caller''s.';

revoke all on function public.review_session(bigint, uuid) from public, anon;

grant execute on function public.review_session(bigint, uuid) to authenticated, service_role;

-- from supabase/sql/96_review_matching.sql ----------------------------------

-- Resume review matching: local weekly times turned into UTC instants (DST-correct, date by date),
-- each professional's free time, what the matcher reads (open requests, professionals with capacity
-- left, both sides' free time within the horizon) and the one booking path, where the exclusion
-- constraints on review_sessions refuse any double booking. The optimal assignment itself is
-- computed in Python (service/lib/matching.py, scipy's linear_sum_assignment), which reads and
-- books through these functions.
--
-- Tables: private.review_matches (writes review_sessions, review_requests of 95_reviews.sql).
-- Tests: tests/sql/test_review_matching.py
create or replace function private.weekly_instants(p_weekly jsonb, p_time_zone text, p_from timestamptz, p_until timestamptz)
returns tstzmultirange
language sql
stable
set search_path = ''
as $$
  select coalesce(range_agg(x.r), '{}'::tstzmultirange)
    from (
      select tstzrange(((d.day + make_interval(mins => w.start_minute)) at time zone p_time_zone),
                       ((d.day + make_interval(mins => w.end_minute)) at time zone p_time_zone), '[)')
             * tstzrange(p_from, p_until, '[)') as r
        from generate_series(0, ((p_until at time zone p_time_zone)::date - (p_from at time zone p_time_zone)::date) + 1) g(i)
        cross join lateral (select (p_from at time zone p_time_zone)::date - 1 + g.i as day) d
        join jsonb_to_recordset(p_weekly) as w(weekday integer, start_minute integer, end_minute integer)
          on w.weekday = extract(isodow from d.day)
    ) x
   where not isempty(x.r)
$$;

comment on function private.weekly_instants(jsonb, text, timestamptz, timestamptz) is
  'Weekly local intervals [{weekday 1-7, start_minute, end_minute}] in time zone p_time_zone as UTC instants '
  'between p_from and p_until. Each local date is converted on its own, so 18:00 stays 18:00 local on both '
  'sides of a DST change (a local time that does not exist in a spring-forward gap is read as Postgres '
  'reads it, one hour later).';

revoke all on function private.weekly_instants(jsonb, text, timestamptz, timestamptz) from public;

create or replace function private.professional_free(p_professional_id uuid, p_from timestamptz, p_until timestamptz)
returns tstzmultirange
language sql
stable
security definer
set search_path = ''
as $$
  select (
    private.weekly_instants(
      coalesce((select jsonb_agg(jsonb_build_object('weekday', a.weekday, 'start_minute', a.start_minute,
                                                    'end_minute', a.end_minute))
                  from private.availability_rules a where a.professional_id = p.id), '[]'),
      p.time_zone, p_from, p_until)
    + coalesce((select range_agg(sl.during * tstzrange(p_from, p_until, '[)'))
                  from private.availability_slots sl
                 where sl.professional_id = p.id and sl.during && tstzrange(p_from, p_until, '[)')), '{}')
    - coalesce((select range_agg(tstzrange(
                         ((e.local_date + make_interval(mins => coalesce(e.start_minute, 0))) at time zone p.time_zone),
                         ((e.local_date + make_interval(mins => coalesce(e.end_minute, 1440))) at time zone p.time_zone),
                         '[)'))
                  from private.availability_exceptions e
                 where e.professional_id = p.id
                   and e.local_date between (p_from at time zone p.time_zone)::date - 1
                                        and (p_until at time zone p.time_zone)::date + 1), '{}')
    - coalesce((select range_agg(s.during) from public.review_sessions s
                 where s.professional_id = p.id and s.status in ('scheduled', 'completed')
                   and s.during && tstzrange(p_from, p_until, '[)')), '{}')
  )
    from public.professionals p
   where p.id = p_professional_id
$$;

comment on function private.professional_free(uuid, timestamptz, timestamptz) is
  'A professional''s free time between p_from and p_until in UTC: weekly rules (in their time zone) and '
  'one-off slots, less dated exceptions and booked (scheduled or completed) sessions.';

revoke all on function private.professional_free(uuid, timestamptz, timestamptz) from public;

create or replace function private.request_free(p_request_id bigint, p_from timestamptz, p_until timestamptz)
returns tstzmultirange
language sql
stable
security definer
set search_path = ''
as $$
  select private.weekly_instants(r.preferred_times, r.time_zone, p_from, p_until)
         - coalesce((select range_agg(s.during) from public.review_sessions s
                      where s.member_id = r.member_id and s.status in ('scheduled', 'completed')
                        and s.during && tstzrange(p_from, p_until, '[)')), '{}')
    from public.review_requests r
   where r.id = p_request_id
$$;

comment on function private.request_free(bigint, timestamptz, timestamptz) is
  'The member''s preferred times of a request between p_from and p_until in UTC (their time zone, DST-correct), '
  'less their booked sessions.';

revoke all on function private.request_free(bigint, timestamptz, timestamptz) from public;

create or replace function private.epoch_pairs(p_ranges tstzmultirange)
returns jsonb
language sql
immutable
set search_path = ''
as $$
  select coalesce(jsonb_agg(jsonb_build_array(extract(epoch from lower(r))::bigint, extract(epoch from upper(r))::bigint)
                            order by lower(r)), '[]')
    from unnest(p_ranges) r
$$;

comment on function private.epoch_pairs(tstzmultirange) is 'A multirange as [[start, end], ...] in Unix seconds (UTC), in order.';

revoke all on function private.epoch_pairs(tstzmultirange) from public;

create or replace function private.used_capacity(p_professional_id uuid, p_at timestamptz)
returns integer
language sql
stable
security definer
set search_path = ''
as $$
  select count(*)::integer from public.review_sessions s
   where s.professional_id = p_professional_id and s.status in ('scheduled', 'completed')
     and lower(s.during) >= p_at - interval '7 days' and lower(s.during) < p_at + interval '7 days'
$$;

comment on function private.used_capacity(uuid, timestamptz) is
  'Sessions a professional holds within 7 days either side of p_at (what weekly_capacity limits: any 7-day '
  'window around a booking holds at most weekly_capacity sessions, read conservatively).';

revoke all on function private.used_capacity(uuid, timestamptz) from public;

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

create or replace function public.admin_review_match_input(
  horizon_days integer default 14,
  session_minutes integer default 45,
  at timestamptz default null,
  actor_id uuid default null
)
returns jsonb
language sql
stable
security invoker
set search_path = ''
as $$
  select private.review_match_input(admin_review_match_input.actor_id, admin_review_match_input.at,
                                    admin_review_match_input.horizon_days, admin_review_match_input.session_minutes)
$$;

comment on function public.admin_review_match_input(integer, integer, timestamptz, uuid) is
  'What the matcher reads: {at, until (Unix seconds, UTC), session_seconds, requests [{id, member_id, '
  'specialties, industry, wait_seconds, free [[start, end] Unix seconds]}] (open requests, oldest first), '
  'professionals [{id, specialties, industries, rating, weekly_capacity, remaining, free}] (active, with '
  'capacity left)}. free is each side''s free time within the horizon, DST-correct. horizon_days 1-60 '
  '(default 14), session_minutes 15-240 (default 45). Errors: XPBAD, 42501 not an admin.';

revoke all on function public.admin_review_match_input(integer, integer, timestamptz, uuid) from public, anon;

grant execute on function public.admin_review_match_input(integer, integer, timestamptz, uuid) to authenticated, service_role;

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

create or replace function public.admin_book_review(
  request_id bigint,
  professional_id uuid,
  starts_at timestamptz,
  run_id uuid,
  score double precision,
  terms jsonb,
  session_minutes integer default 45,
  meeting_url text default null,
  actor_id uuid default null
)
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.book_review(admin_book_review.actor_id, admin_book_review.request_id, admin_book_review.professional_id,
                             admin_book_review.starts_at, admin_book_review.session_minutes, admin_book_review.run_id,
                             admin_book_review.score, admin_book_review.terms, admin_book_review.meeting_url)
$$;

comment on function public.admin_book_review(bigint, uuid, timestamptz, uuid, double precision, jsonb, integer, text, uuid) is
  'Books one matched pair: a session of session_minutes (15-240) from starts_at (UTC) for an open request with '
  'a professional, recording the match (run_id, score and its terms) and the steps requested -> matched -> '
  'scheduled, and notifying both sides. The slot must lie in both sides'' free time; the exclusion '
  'constraints refuse an overlap with any booked session of the professional or the member, whoever books '
  'at the same moment. Returns the session with match_id. Errors: XPRVC slot taken or not free (try the next '
  'slot), XPRVK professional at capacity, XPRVS request not open, XPRVP unknown or inactive professional, '
  'XPRVQ unknown request, XPRVT slot in the past, XPBAD, 42501 not an admin. Nothing changes on an error.';

revoke all on function public.admin_book_review(bigint, uuid, timestamptz, uuid, double precision, jsonb, integer, text, uuid)
  from public, anon;

grant execute on function public.admin_book_review(bigint, uuid, timestamptz, uuid, double precision, jsonb, integer, text, uuid)
  to authenticated, service_role;

create or replace function private.review_matches_of(p_actor_id uuid, p_request_id bigint)
returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
begin
  perform private.review_admin(p_actor_id);
  return coalesce((
    select jsonb_agg(jsonb_build_object(
             'id', m.id, 'run_id', m.run_id, 'request_id', m.request_id, 'professional_id', m.professional_id,
             'score', m.score, 'terms', m.terms, 'starts_at', private.utc_text(lower(m.slot)),
             'ends_at', private.utc_text(upper(m.slot)), 'actor_id', m.actor_id, 'actor_role', m.actor_role,
             'created_at', private.utc_text(m.created_at)) order by m.id)
      from private.review_matches m where m.request_id = p_request_id), '[]');
end
$$;

comment on function private.review_matches_of(uuid, bigint) is 'Implementation of public.admin_review_matches.';

revoke all on function private.review_matches_of(uuid, bigint) from public;

grant execute on function private.review_matches_of(uuid, bigint) to authenticated, service_role;

create or replace function public.admin_review_matches(request_id bigint, actor_id uuid default null)
returns jsonb
language sql
stable
security invoker
set search_path = ''
as $$
  select private.review_matches_of(admin_review_matches.actor_id, admin_review_matches.request_id)
$$;

comment on function public.admin_review_matches(bigint, uuid) is
  'Why a request was matched as it was: its match records [{id, run_id, request_id, professional_id, score, '
  'terms, starts_at, ends_at, actor_id, actor_role, created_at}]. Admins and service_role (42501 otherwise).';

revoke all on function public.admin_review_matches(bigint, uuid) from public, anon;

grant execute on function public.admin_review_matches(bigint, uuid) to authenticated, service_role;
