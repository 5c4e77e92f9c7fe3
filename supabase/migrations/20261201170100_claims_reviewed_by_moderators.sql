-- Claims and events are reviewed by members whose role holds approve_claims (moderators too), and claims_caller trusts service_role only when the request runs as it
--
-- Written by `xpbase migration new` from the feature files in supabase/sql/:
-- the function and trigger definitions that changed since the last migration.
-- Edit the feature files, not this file; landed migrations never change.
-- Changed:
--   function private.claims_caller(uuid)
--   function private.assert_can_review_claims(uuid)

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
  -- The backend only when the claims say so and the request really runs as service_role (12_roles.sql).
  if private.is_service_role() then
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
-- The one place that decides who reviews claims: members whose role holds the approve_claims permission
-- (moderators and admins; public.role_permissions, 12_roles.sql). service_role is trusted: it checks its
-- own callers (the bot: Manage Server) and names the reviewer it acts for, or nobody (the backend).
begin
  select c.actor_id, c.actor_role into actor_id, actor_role from private.claims_caller(p_profile_id) c;
  if actor_role = 'service_role' then
    return;
  end if;
  if not exists (select 1 from public.profiles p
                   join public.role_permissions rp on rp.role_slug = p.role
                  where p.id = actor_id and rp.permission_slug = 'approve_claims') then
    raise exception 'Only moderators and admins may review claims' using errcode = '42501';
  end if;
end
$$;

comment on function private.assert_can_review_claims(uuid) is
  'The reviewer of a claim (and of events): (profile id, authenticated) for a member whose role holds '
  'approve_claims (moderators, admins); for service_role, which checks its own callers, (the profile it names, or '
  'null, service_role); raises 42501 for anyone else.';

revoke all on function private.assert_can_review_claims(uuid) from public;
