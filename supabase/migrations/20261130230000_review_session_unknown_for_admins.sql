-- review_session: an admin asking for a session that does not exist gets XPRVQ (404) like anyone else, instead of a null answer the .ics route could not read (a 500).
--
-- Written by `xpbase migration new` from the feature files in supabase/sql/:
-- the function and trigger definitions that changed since the last migration.
-- Edit the feature files, not this file; landed migrations never change.
-- Changed:
--   function private.review_session(uuid, int8)

-- from supabase/sql/96_review_matching.sql ----------------------------------

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
