-- Resume review availability and matching: admins manage professionals and their availability
-- (weekly local rules, dated exceptions, one-off slots, the Google Forms import); local weekly
-- times become UTC instants (DST-correct, date by date); each professional's free time; what the
-- matcher reads (open requests, professionals with capacity left, both sides' free time within
-- the horizon); the one booking path, where the exclusion constraints on review_sessions refuse
-- any double booking; booked sessions as calendar entries; reviewer statistics. The optimal
-- assignment itself is computed in Python (xpbase/matching.py, scipy's linear_sum_assignment),
-- which reads and books through these functions.
--
-- Tables: private.availability_rules, private.availability_exceptions, private.availability_slots,
-- private.review_matches (writes professionals, review_sessions, review_requests of 95_reviews.sql).
-- Tests: tests/sql/test_review_matching.py

------------------------------------------------------------------------------
-- Professionals and availability (admins; a professional for their own availability)
------------------------------------------------------------------------------

create or replace function public.review_specialty_list()
returns jsonb
language sql
stable
security invoker
set search_path = ''
as $$
  select coalesce(jsonb_agg(jsonb_build_object('slug', s.slug, 'name', s.name) order by s.name), '[]')
    from public.review_specialties s
   where s.active
$$;
comment on function public.review_specialty_list() is
  'The specialties requests and professionals may name: [{slug, name}] of the active review_specialties, by '
  'name (what the bot offers while a member types). Anyone.';
revoke all on function public.review_specialty_list() from public;
grant execute on function public.review_specialty_list() to anon, authenticated, service_role;

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
-- Free time and booking
------------------------------------------------------------------------------

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
  v_actor_role text := case when private.is_service_role() then 'service_role' else 'authenticated' end;
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
-- One session, for its .ics invitation
------------------------------------------------------------------------------

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
  if not exists (
    select 1 from public.review_sessions s join public.professionals pr on pr.id = s.professional_id
     where s.id = p_session_id
       and (v_caller.is_admin or s.member_id = v_caller.actor_id or pr.profile_id = v_caller.actor_id)
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
