-- private.tools_member and private.my_challenges take a signed-in member as auth.uid() whatever the role claim says (a Supabase custom access token hook may name a custom role, which PostgREST sets), as private.claims_caller and the rest of the API do; they refused such a member with 'Sign in'
--
-- Written by `xpbase migration new` from the feature files in supabase/sql/:
-- the function and trigger definitions that changed since the last migration.
-- Edit the feature files, not this file; landed migrations never change.
-- Changed:
--   function private.tools_member(uuid)
--   function private.my_challenges(uuid)

-- from supabase/sql/37_tools.sql --------------------------------------------

create or replace function private.tools_member(p_profile_id uuid)
returns uuid
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_id uuid;
begin
  if private.is_service_role() then
    v_id := p_profile_id;
    if v_id is null then
      raise exception 'Name the member (profile_id)' using errcode = 'XPBAD';
    end if;
  -- A signed-in member is auth.uid(), whatever the role claim says (a custom access token hook may name
  -- a custom role), as everywhere else (private.claims_caller).
  elsif (select auth.uid()) is not null then
    v_id := (select auth.uid());
    if p_profile_id is not null and p_profile_id <> v_id then
      raise exception 'Members see only their own tools' using errcode = '42501';
    end if;
  else
    raise exception 'Sign in to see your tools' using errcode = '42501';
  end if;
  if not exists (select 1 from public.profiles p where p.id = v_id) then
    raise exception 'Unknown profile: %', v_id using errcode = 'XPPRF';
  end if;
  return v_id;
end
$$;

comment on function private.tools_member(uuid) is
  'Whose tools a call is about: a member (auth.uid(), whatever the role claim) is always themselves (naming '
  'another raises 42501); service_role '
  'names profile_id (null raises XPBAD); anon raises 42501; an unknown profile raises XPPRF.';

revoke all on function private.tools_member(uuid) from public;

-- from supabase/sql/39_challenges.sql ---------------------------------------

------------------------------------------------------------------------------
-- A member's progress
------------------------------------------------------------------------------
create or replace function private.my_challenges(p_profile_id uuid)
returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_id uuid;
begin
  if private.is_service_role() then
    v_id := p_profile_id;
    if v_id is null then
      raise exception 'Name the member (profile_id)' using errcode = 'XPBAD';
    end if;
  -- A signed-in member is auth.uid(), whatever the role claim says (a custom access token hook may name
  -- a custom role), as everywhere else (private.claims_caller).
  elsif (select auth.uid()) is not null then
    v_id := (select auth.uid());
    if p_profile_id is not null and p_profile_id <> v_id then
      raise exception 'Members see only their own challenges' using errcode = '42501';
    end if;
  else
    raise exception 'Sign in to see your challenges' using errcode = '42501';
  end if;
  if not exists (select 1 from public.profiles p where p.id = v_id) then
    raise exception 'Unknown profile: %', v_id using errcode = 'XPPRF';
  end if;
  return (
    with rows as (
      select c.slug, c.title, c.difficulty, c.layer_slug, c.xp, c.position, cc.completed_at, cc.granted,
             coalesce((select jsonb_agg(pc.slug order by pc.slug)
                         from public.challenge_prerequisites p
                         join public.challenges pc on pc.id = p.prerequisite_id
                        where p.challenge_id = c.id
                          and not exists (select 1 from public.challenge_completions x
                                           where x.profile_id = v_id and x.challenge_id = p.prerequisite_id)),
                      '[]') as missing,
             coalesce(c.starts_at <= now(), true) and coalesce(c.ends_at > now(), true) as open
        from public.challenges c
        left join public.challenge_completions cc on cc.challenge_id = c.id and cc.profile_id = v_id
       where c.active or cc.id is not null
    )
    select jsonb_build_object(
      'profile_id', v_id,
      'completed', count(*) filter (where r.completed_at is not null),
      'total', count(*),
      'xp_earned', coalesce(sum(r.granted), 0),
      'challenges', coalesce(jsonb_agg(jsonb_build_object(
        'slug', r.slug, 'title', r.title, 'difficulty', r.difficulty, 'layer', r.layer_slug, 'xp', r.xp,
        'status', case when r.completed_at is not null then 'completed'
                       when jsonb_array_length(r.missing) > 0 then 'locked'
                       when not r.open then 'closed'
                       else 'open' end,
        'completed_at', private.utc_text(r.completed_at), 'granted', r.granted,
        'missing_prerequisites', r.missing) order by r.position, r.slug), '[]'))
      from rows r);
end
$$;

comment on function private.my_challenges(uuid) is 'Implementation of public.my_challenges.';

revoke all on function private.my_challenges(uuid) from public;

grant execute on function private.my_challenges(uuid) to authenticated, service_role;
