-- Roles and permissions (issue 13): roles are rows of public.roles, what each may do is
-- public.role_permissions, and every privileged function asks private.assert_permission.
-- Role changes are admin RPCs, audited in public.role_changes, and reach access tokens at the
-- next refresh (sign-in and refresh read profiles.role into app_metadata.role).
--
-- Tables: public.roles, public.permissions, public.role_permissions, public.role_changes.
-- Tests: tests/sql/test_roles.py

------------------------------------------------------------------------------
-- Who may do what
------------------------------------------------------------------------------

create or replace function private.has_permission(p_permission text)
returns boolean
language sql
stable
security definer
set search_path = ''
as $$
  select private.is_service_role() or exists (
    select 1
      from public.profiles p
      join public.role_permissions rp on rp.role_slug = p.role
     where p.id = (select auth.uid())
       and rp.permission_slug = p_permission)
$$;
comment on function private.has_permission(text) is
  'True when the caller may do p_permission (a public.permissions slug): the backend always, a member when their '
  'role holds it. For policies and reads; privileged writes call private.assert_permission.';
revoke all on function private.has_permission(text) from public;
-- The read policies of staff tables ask it as the member (members may not read profiles.role: issue 18).
grant execute on function private.has_permission(text) to authenticated;

create or replace function private.assert_permission(p_permission text, out actor_id uuid, out actor_role text)
language plpgsql
stable
security definer
set search_path = ''
as $$
begin
  if not exists (select 1 from public.permissions p where p.slug = p_permission) then
    raise exception 'Unknown permission: %', coalesce(p_permission, 'null') using errcode = 'XPBAD';
  end if;
  if private.is_service_role() then
    -- The backend acting for someone (private.act_for): that person must hold the permission.
    actor_id := nullif(current_setting('xpbase.actor_id', true), '')::uuid;
    if actor_id is null then
      actor_role := 'service_role';
      return;
    end if;
  else
    actor_id := (select auth.uid());
  end if;
  select p.role into actor_role
    from public.profiles p
    join public.role_permissions rp on rp.role_slug = p.role and rp.permission_slug = p_permission
   where p.id = actor_id;
  if actor_role is null then
    raise exception 'Your role may not do this (%)', p_permission using errcode = '42501';
  end if;
end
$$;
comment on function private.assert_permission(text) is
  'Who is doing a privileged action p_permission: (null, service_role) for the backend; (profile id, their role) '
  'for a member whose role holds the permission, or for the profile the backend acts for (private.act_for), who '
  'must hold it too. Raises 42501 for anyone else, XPBAD for an unknown permission.';
revoke all on function private.assert_permission(text) from public;

------------------------------------------------------------------------------
-- Changing roles
------------------------------------------------------------------------------

create or replace function private.set_role(
  p_profile_id uuid,
  p_role text,
  p_reason text,
  p_actor_id uuid,
  p_actor_role text
)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_reason text := nullif(btrim(coalesce(p_reason, '')), '');
  v_before text;
  v_name text;
begin
  if p_profile_id is null then
    raise exception 'profile_id is required' using errcode = 'XPBAD';
  end if;
  if v_reason is null or length(v_reason) > 500 then
    raise exception 'reason must be 1 to 500 characters' using errcode = 'XPBAD';
  end if;
  if p_role is null or not exists (select 1 from public.roles r where r.slug = p_role) then
    raise exception 'Unknown role: %', left(coalesce(p_role, 'null'), 40) using errcode = 'XPROL';
  end if;
  select p.role, p.display_name into v_before, v_name from public.profiles p where p.id = p_profile_id for update;
  if not found then
    raise exception 'Unknown profile: %', p_profile_id using errcode = 'XPPRF';
  end if;
  if v_before <> p_role then
    update public.profiles p set role = p_role, updated_at = now() where p.id = p_profile_id;
    insert into public.role_changes (profile_id, from_role, to_role, actor_id, actor_role, reason)
    values (p_profile_id, v_before, p_role, p_actor_id, p_actor_role, v_reason);
  end if;
  return jsonb_build_object('profile_id', p_profile_id, 'display_name', v_name, 'from_role', v_before,
                            'role', p_role, 'changed', v_before <> p_role);
end
$$;
comment on function private.set_role(uuid, text, text, uuid, text) is
  'Sets a profile''s role and audits the change in public.role_changes (nothing is written when the role is '
  'unchanged). No permission check: callers check first (service_role only, for `xpbase admin grant`). Errors: XPBAD, XPROL unknown role, XPPRF.';
revoke all on function private.set_role(uuid, text, text, uuid, text) from public;
grant execute on function private.set_role(uuid, text, text, uuid, text) to service_role;

create or replace function private.change_role(p_profile_id uuid, p_role text, p_reason text)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_actor record;
begin
  select * into v_actor from private.assert_permission('manage_roles');
  if v_actor.actor_id is not null and v_actor.actor_id = p_profile_id then
    raise exception 'Nobody may change their own role' using errcode = '42501';
  end if;
  return private.set_role(p_profile_id, p_role, p_reason, v_actor.actor_id, v_actor.actor_role);
end
$$;
comment on function private.change_role(uuid, text, text) is 'Implementation of public.admin_set_role and service_role_set_role.';
revoke all on function private.change_role(uuid, text, text) from public;
grant execute on function private.change_role(uuid, text, text) to authenticated, service_role;

create or replace function public.admin_set_role(profile_id uuid, new_role text, reason text)
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.change_role(admin_set_role.profile_id, admin_set_role.new_role, admin_set_role.reason)
$$;
comment on function public.admin_set_role(uuid, text, text) is
  'Gives a profile new_role (a public.roles slug), audited with the caller and reason (1-500 characters); the '
  'member''s access token carries it from their next refresh. Returns {profile_id, display_name, from_role, role, '
  'changed}. Errors: 42501 unless the caller holds manage_roles (admins) or for their own role, XPROL unknown '
  'role, XPBAD, XPPRF.';
revoke all on function public.admin_set_role(uuid, text, text) from public, anon;
grant execute on function public.admin_set_role(uuid, text, text) to authenticated, service_role;

create or replace function public.service_role_set_role(actor_id uuid, profile_id uuid, new_role text, reason text)
returns jsonb
language plpgsql
volatile
security invoker
set search_path = ''
as $$
begin
  perform private.act_for(service_role_set_role.actor_id);
  return private.change_role(service_role_set_role.profile_id, service_role_set_role.new_role,
                             service_role_set_role.reason);
end
$$;
comment on function public.service_role_set_role(uuid, uuid, text, text) is
  'admin_set_role for the backend acting for actor_id (the HTTP route and the bot), who must hold manage_roles. '
  'Same answer and errors. service_role only.';
revoke all on function public.service_role_set_role(uuid, uuid, text, text) from public, anon, authenticated;
grant execute on function public.service_role_set_role(uuid, uuid, text, text) to service_role;

create or replace function public.my_permissions()
returns jsonb
language sql
stable
security invoker
set search_path = ''
as $$
  -- Through private.has_permission: members may not read profiles.role, their own included (issue 18).
  select jsonb_build_object('permissions', coalesce(jsonb_agg(pm.slug order by pm.slug), '[]'))
    from public.permissions pm
   where private.has_permission(pm.slug)
$$;
comment on function public.my_permissions() is
  'The permission slugs the signed-in member''s role holds: {permissions: [...]} (empty for a plain member). '
  'authenticated only.';
revoke all on function public.my_permissions() from public, anon, service_role;
grant execute on function public.my_permissions() to authenticated;
