-- Resume reviews: review_session gives XPRVQ (404) to an admin asking for a session that does not exist, instead of a null answer the .ics route could not read (a 500); review_specialty_list() lists the active specialties for the bot's autocomplete.
--
-- Written by `xpbase migration new` from the feature files in supabase/sql/:
-- the function and trigger definitions that changed since the last migration.
-- Edit the feature files, not this file; landed migrations never change.
-- Changed:
--   function public.review_specialty_list()
--   function private.review_session(uuid, int8)

-- from supabase/sql/96_review_matching.sql ----------------------------------

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
