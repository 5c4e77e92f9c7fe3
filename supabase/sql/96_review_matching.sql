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
