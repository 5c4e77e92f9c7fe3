-- accounts_functions
--
-- Written by `xpbase migration new` from the feature files in supabase/sql/:
-- the function and trigger definitions that changed since the last migration.
-- Edit the feature files, not this file; landed migrations never change.
-- Changed:
--   function private.is_service_role()
--   function private.assert_admin()
--   function private.has_permission(text)
--   function private.assert_permission(text)
--   function private.set_role(uuid, text, text, uuid, text)
--   function private.change_role(uuid, text, text)
--   function public.admin_set_role(uuid, text, text)
--   function public.service_role_set_role(uuid, uuid, text, text)
--   function public.my_permissions()
--   function private.suspended_until(uuid)
--   function private.assert_not_suspended(uuid)
--   function private.moderation_json(public.moderation_actions)
--   function private.moderate(text, uuid, text, timestamptz)
--   function public.moderate(text, uuid, text, timestamptz)
--   function public.service_role_moderate(uuid, text, uuid, text, timestamptz)
--   function private.moderation_record(uuid, int4)
--   function public.moderation_record(uuid, int4)
--   function private.award_xp(uuid, text, text, int4, timestamptz, jsonb)
--   function public.service_role_grant_admin(uuid)
--   function private.buy_item(uuid, text, text, int4, jsonb, text)
--   function private.update_redemption(int8, text, text)
--   function public.update_redemption(int8, text, text)
--   function private.list_redemptions(uuid, text, int4, int8)
--   function public.redemption_queue(text, int4, int8)
--   function private.create_payment_order(uuid, text, text, int4)
--   function private.assert_can_read_ledger(uuid)
--   function private.post_chat_message(text)
--   function private.create_session(uuid, text, bytea, int4)
--   function public.service_role_create_session(uuid, text, bytea, int4)
--   function private.check_email(text)
--   function private.request_email_code(text, inet)
--   function public.service_role_request_email_code(text, inet)
--   function private.verify_email_code(text, text, bytea, int4, uuid)
--   function public.service_role_verify_email_code(text, text, bytea, int4, uuid)
--   function private.tg_auth_users__profile()
--   trigger auth.users._100_profile
--   function private.tg_auth_identities__identity()
--   trigger auth.identities._100_identity
--   function private.act_for(uuid)

-- from supabase/sql/00_helpers.sql ------------------------------------------

------------------------------------------------------------------------------
-- Callers
------------------------------------------------------------------------------
create or replace function private.is_service_role()
returns boolean
language sql
stable
security invoker
set search_path = ''
as $$
  select coalesce((select auth.role()), '') = 'service_role'
     and pg_catalog.pg_has_role(
           coalesce(nullif(pg_catalog.current_setting('role', true), 'none'), session_user::text),
           'service_role', 'member')
$$;

comment on function private.is_service_role() is
  'True when the caller is the backend: the claims say role service_role AND the database role the request runs '
  'as (the role set by SET ROLE / PostgREST, else the session user) is service_role or a member of it. The '
  'claims alone are a setting anyone holding a connection can write, so an authenticated request whose claims '
  'say service_role is not the backend. The SET ROLE value survives security definer calls, so this answers the '
  'same inside private functions.';

revoke all on function private.is_service_role() from public;

grant execute on function private.is_service_role() to authenticated, service_role;

create or replace function private.assert_admin(out actor_id uuid, out actor_role text)
language plpgsql
stable
security definer
set search_path = ''
as $$
begin
  if private.is_service_role() then
    -- The backend may name the person it acts for (private.act_for); null otherwise.
    actor_id := nullif(current_setting('xpbase.actor_id', true), '')::uuid;
    actor_role := 'service_role';
    return;
  end if;
  actor_id := (select auth.uid());
  if actor_id is null or not exists (
    select 1 from public.profiles p where p.id = actor_id and p.role = 'admin'
  ) then
    raise exception 'Only admins may correct XP' using errcode = '42501';
  end if;
  actor_role := 'admin';
end
$$;

comment on function private.assert_admin() is
  'Who is correcting XP: (null, service_role) for the backend, or (the profile it acts for, service_role) '
  'inside private.act_for; (profile id, admin) for an admin member; raises 42501 for anyone else.';

revoke all on function private.assert_admin() from public;

-- from supabase/sql/12_roles.sql --------------------------------------------

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
  select jsonb_build_object('permissions', coalesce(jsonb_agg(rp.permission_slug order by rp.permission_slug), '[]'))
    from public.role_permissions rp
   where rp.role_slug = (select p.role from public.profiles p where p.id = (select auth.uid()))
$$;

comment on function public.my_permissions() is
  'The permission slugs the signed-in member''s role holds: {permissions: [...]} (empty for a plain member). '
  'authenticated only.';

revoke all on function public.my_permissions() from public, anon, service_role;

grant execute on function public.my_permissions() to authenticated;

-- from supabase/sql/13_moderation.sql ---------------------------------------

-- Moderation (issue 13): warnings and suspensions with reason, actor and end. A suspended
-- member earns no XP (award_xp raises XPSUS), cannot post in chat, buy or redeem; a ban (a
-- suspension without an end) also ends every session of the member (refresh families revoked).
-- Members read their own record, holders of read_moderation everyone's.
--
-- Tables: public.moderation_actions.
-- Tests: tests/sql/test_moderation.py
create or replace function private.suspended_until(p_profile_id uuid)
returns timestamptz
language sql
stable
security definer
set search_path = ''
as $$
  -- 'infinity' for a ban; null when no suspension is in force.
  select max(coalesce(m.until, 'infinity'::timestamptz))
    from public.moderation_actions m
   where m.profile_id = p_profile_id
     and m.kind = 'suspension'
     and m.lifted_at is null
     and (m.until is null or m.until > now())
$$;

comment on function private.suspended_until(uuid) is
  'When the suspension in force on a profile ends (timestamptz; ''infinity'' for a ban), or null when none is.';

revoke all on function private.suspended_until(uuid) from public;

create or replace function private.assert_not_suspended(p_profile_id uuid)
returns void
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_until timestamptz := private.suspended_until(p_profile_id);
begin
  if v_until is not null then
    raise exception 'This member is suspended %',
      case when v_until = 'infinity' then 'indefinitely' else 'until ' || private.utc_text(v_until) end
      using errcode = 'XPSUS';
  end if;
end
$$;

comment on function private.assert_not_suspended(uuid) is
  'Raises XPSUS (with the end of the suspension, UTC) when a suspension is in force on the profile; awards, chat, '
  'purchases and redemptions call it first.';

revoke all on function private.assert_not_suspended(uuid) from public;

create or replace function private.moderation_json(p_row public.moderation_actions)
returns jsonb
language sql
stable
security definer
set search_path = ''
as $$
  select jsonb_build_object(
    'id', p_row.id, 'profile_id', p_row.profile_id, 'kind', p_row.kind, 'reason', p_row.reason,
    'actor_id', p_row.actor_id, 'actor_role', p_row.actor_role, 'created_at', private.utc_text(p_row.created_at),
    'until', private.utc_text(p_row.until), 'lifted_at', private.utc_text(p_row.lifted_at),
    'lifted_by', p_row.lifted_by, 'lift_reason', p_row.lift_reason)
$$;

comment on function private.moderation_json(public.moderation_actions) is
  'A moderation action as JSON: {id, profile_id, kind, reason, actor_id, actor_role, created_at, until, lifted_at, '
  'lifted_by, lift_reason}; times are UTC text or null.';

revoke all on function private.moderation_json(public.moderation_actions) from public;

create or replace function private.moderate(p_action text, p_profile_id uuid, p_reason text, p_until timestamptz)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_actor record;
  v_reason text := nullif(btrim(coalesce(p_reason, '')), '');
  v_row public.moderation_actions;
  v_lifted integer := 0;
  v_revoked integer := 0;
begin
  if p_action is null or p_action not in ('warn', 'suspend', 'unsuspend') then
    raise exception 'action must be warn, suspend or unsuspend' using errcode = 'XPBAD';
  end if;
  if v_reason is null or length(v_reason) > 500 or v_reason ~ '[\x00-\x08\x0b\x0c\x0e-\x1f]' then
    raise exception 'reason must be 1 to 500 characters of text' using errcode = 'XPBAD';
  end if;
  if p_profile_id is null then
    raise exception 'profile_id is required' using errcode = 'XPBAD';
  end if;
  select * into v_actor
    from private.assert_permission(case p_action when 'warn' then 'warn_members' else 'suspend_members' end);
  if v_actor.actor_id = p_profile_id then
    raise exception 'Nobody may moderate themselves' using errcode = '42501';
  end if;
  -- Lock the member: concurrent suspensions and lifts of one member run one at a time.
  perform 1 from public.profiles p where p.id = p_profile_id for update;
  if not found then
    raise exception 'Unknown profile: %', p_profile_id using errcode = 'XPPRF';
  end if;
  -- Moderators do not moderate each other: only role managers (admins, the backend) act on a moderator.
  if exists (select 1 from public.profiles p
               join public.role_permissions rp on rp.role_slug = p.role and rp.permission_slug = 'suspend_members'
              where p.id = p_profile_id)
     and v_actor.actor_role <> 'service_role'
     and not exists (select 1 from public.role_permissions rp
                      where rp.role_slug = v_actor.actor_role and rp.permission_slug = 'manage_roles') then
    raise exception 'Only an admin may moderate a moderator' using errcode = '42501';
  end if;

  if p_action = 'unsuspend' then
    if p_until is not null then
      raise exception 'until is only for suspend' using errcode = 'XPBAD';
    end if;
    update public.moderation_actions m
       set lifted_at = now(), lifted_by = v_actor.actor_id, lift_reason = v_reason
     where m.profile_id = p_profile_id and m.kind = 'suspension' and m.lifted_at is null
       and (m.until is null or m.until > now());
    get diagnostics v_lifted = row_count;
    return jsonb_build_object('action', p_action, 'profile_id', p_profile_id, 'lifted', v_lifted,
                              'sessions_revoked', 0, 'record', null);
  end if;

  if p_action = 'warn' and p_until is not null then
    raise exception 'until is only for suspend' using errcode = 'XPBAD';
  end if;
  if p_action = 'suspend' and p_until is not null
     and (p_until <= now() or p_until > now() + interval '10 years') then
    raise exception 'until must be in the future, at most 10 years away (omit it for a ban)' using errcode = 'XPBAD';
  end if;
  insert into public.moderation_actions (profile_id, kind, reason, actor_id, actor_role, until)
  values (p_profile_id, case p_action when 'warn' then 'warning' else 'suspension' end, v_reason,
          v_actor.actor_id, v_actor.actor_role, p_until)
  returning * into v_row;
  if p_action = 'suspend' and p_until is null then
    -- A ban ends every session: refresh tokens of revoked families no longer rotate.
    update private.auth_sessions s set revoked_at = now(), revoked_reason = 'banned'
     where s.profile_id = p_profile_id and s.revoked_at is null;
    get diagnostics v_revoked = row_count;
  end if;
  return jsonb_build_object('action', p_action, 'profile_id', p_profile_id, 'lifted', 0,
                            'sessions_revoked', v_revoked, 'record', private.moderation_json(v_row));
end
$$;

comment on function private.moderate(text, uuid, text, timestamptz) is 'Implementation of public.moderate and service_role_moderate.';

revoke all on function private.moderate(text, uuid, text, timestamptz) from public;

grant execute on function private.moderate(text, uuid, text, timestamptz) to authenticated, service_role;

create or replace function public.moderate(action text, profile_id uuid, reason text, until timestamptz default null)
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.moderate(moderate.action, moderate.profile_id, moderate.reason, moderate.until)
$$;

comment on function public.moderate(text, uuid, text, timestamptz) is
  'warn, suspend (until a UTC time at most 10 years away; without until it is a ban, which also revokes every '
  'session of the member) or unsuspend (lifts every suspension in force) a member, with a reason (1-500 '
  'characters). Returns {action, profile_id, lifted, sessions_revoked, record (the new warning or suspension, '
  'null for unsuspend)}. Errors: 42501 unless the caller holds warn_members / suspend_members (moderators, '
  'admins), for themselves, or a moderator acting on a moderator; XPBAD, XPPRF.';

revoke all on function public.moderate(text, uuid, text, timestamptz) from public, anon;

grant execute on function public.moderate(text, uuid, text, timestamptz) to authenticated, service_role;

create or replace function public.service_role_moderate(
  actor_id uuid,
  action text,
  profile_id uuid,
  reason text,
  until timestamptz default null
)
returns jsonb
language plpgsql
volatile
security invoker
set search_path = ''
as $$
begin
  perform private.act_for(service_role_moderate.actor_id);
  return private.moderate(service_role_moderate.action, service_role_moderate.profile_id,
                          service_role_moderate.reason, service_role_moderate.until);
end
$$;

comment on function public.service_role_moderate(uuid, text, uuid, text, timestamptz) is
  'public.moderate for the backend acting for actor_id (the bot''s /warn, /suspend, /unsuspend), whose role must '
  'hold the permission. Same answer and errors. service_role only.';

revoke all on function public.service_role_moderate(uuid, text, uuid, text, timestamptz) from public, anon, authenticated;

grant execute on function public.service_role_moderate(uuid, text, uuid, text, timestamptz) to service_role;

create or replace function private.moderation_record(p_profile_id uuid, p_size integer)
returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_profile uuid := coalesce(p_profile_id, (select auth.uid()));
begin
  if v_profile is null then
    raise exception 'profile_id is required' using errcode = 'XPBAD';
  end if;
  if p_size is null or p_size not between 1 and 200 then
    raise exception 'size must be 1 to 200' using errcode = 'XPBAD';
  end if;
  if v_profile is distinct from (select auth.uid()) and not private.has_permission('read_moderation') then
    raise exception 'Only moderators read other members'' records' using errcode = '42501';
  end if;
  return jsonb_build_object(
    'profile_id', v_profile,
    'suspended_until', private.utc_text(nullif(private.suspended_until(v_profile), 'infinity')),
    'banned', coalesce(private.suspended_until(v_profile) = 'infinity', false),
    'actions', coalesce((
      select jsonb_agg(private.moderation_json(m) order by m.created_at desc, m.id desc)
        from (select * from public.moderation_actions m
               where m.profile_id = v_profile
               order by m.created_at desc, m.id desc
               limit p_size) m), '[]'::jsonb));
end
$$;

comment on function private.moderation_record(uuid, integer) is 'Implementation of public.moderation_record.';

revoke all on function private.moderation_record(uuid, integer) from public;

grant execute on function private.moderation_record(uuid, integer) to authenticated, service_role;

create or replace function public.moderation_record(profile_id uuid default null, size integer default 50)
returns jsonb
language sql
stable
security invoker
set search_path = ''
as $$
  select private.moderation_record(moderation_record.profile_id, moderation_record.size)
$$;

comment on function public.moderation_record(uuid, integer) is
  'A member''s warnings and suspensions, newest first (at most size, 1-200), and whether a suspension is in force: '
  '{profile_id, suspended_until (UTC text, null when none or for a ban), banned, actions: [...]}. Members read '
  'their own (profile_id null = the caller); read_moderation holders (moderators, admins) and the backend anyone''s. '
  'Errors: 42501, XPBAD.';

revoke all on function public.moderation_record(uuid, integer) from public, anon;

grant execute on function public.moderation_record(uuid, integer) to authenticated, service_role;

-- from supabase/sql/30_award.sql --------------------------------------------

------------------------------------------------------------------------------
-- award_xp: the one award path
------------------------------------------------------------------------------
create or replace function private.award_xp(
  p_profile_id uuid,
  p_activity text,
  p_idempotency_key text,
  p_amount integer,
  p_occurred_at timestamptz,
  p_context jsonb
)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_context jsonb := coalesce(p_context, '{}');
  v_request jsonb;
  v_first_request jsonb;
  v_receipt jsonb;
  v_act public.activity_types;
  v_cap_slug text;
  v_daily_cap integer;
  v_max_multiplier numeric;
  v_profile_xp bigint;
  v_layer_xp bigint;
  v_occurred timestamptz := coalesce(p_occurred_at, now());
  v_base integer;
  v_multiplier numeric := 1;
  v_multipliers jsonb := '[]';
  v_amount integer;
  v_last timestamptz;
  v_cooldown_left integer := 0;
  v_day date;
  v_used integer;
  v_capped boolean := false;
  v_floored boolean := false;
  v_cap_info jsonb;
  v_rate integer;
begin
  if p_idempotency_key is null or length(p_idempotency_key) not between 1 and 200 then
    raise exception 'idempotency_key must be 1 to 200 characters' using errcode = 'XPBAD';
  end if;
  if p_profile_id is null then
    raise exception 'profile_id is required' using errcode = 'XPBAD';
  end if;
  if jsonb_typeof(v_context) <> 'object' then
    raise exception 'context must be a JSON object' using errcode = 'XPBAD';
  end if;
  if v_context ? 'role_ids' and jsonb_typeof(v_context -> 'role_ids') <> 'array' then
    raise exception 'context.role_ids must be an array' using errcode = 'XPBAD';
  end if;
  -- Awards happen now or in the past (replays); five minutes of clock skew are tolerated.
  if p_occurred_at > now() + interval '5 minutes' then
    raise exception 'occurred_at % is in the future', private.utc_text(p_occurred_at) using errcode = 'XPBAD';
  end if;

  v_request := jsonb_build_object(
    'fn', 'award_xp', 'profile_id', p_profile_id, 'activity', p_activity, 'amount', p_amount,
    'occurred_at', private.utc_text(p_occurred_at), 'context', v_context);

  -- A replay answers from the ledger without taking any lock (private.find_receipt, written inline here
  -- and below because every award runs it).
  select l.request, l.receipt into v_first_request, v_receipt
    from public.xp_ledger l where l.idempotency_key = p_idempotency_key
   limit 1;
  if found then
    if v_first_request is distinct from v_request then
      raise exception 'Idempotency key % was already used with other parameters', p_idempotency_key
        using errcode = 'XPIDM', detail = 'first request: ' || v_first_request::text;
    end if;
    return v_receipt || jsonb_build_object('replayed', true);
  end if;
  -- Suspended members earn nothing (13_moderation.sql): XPSUS.
  perform private.assert_not_suspended(p_profile_id);

  select * into v_act from public.activity_types a where a.slug = p_activity;
  if not found or not v_act.active then
    raise exception 'Unknown or inactive activity: %', coalesce(p_activity, 'null') using errcode = 'XPACT';
  end if;
  -- The rate in force at occurred_at (public.activity_rates) replaces the activity's own base_xp.
  select r.base_xp into v_rate from public.activity_rates r
   where r.activity_slug = v_act.slug and r.effective_from <= v_occurred
   order by r.effective_from desc
   limit 1;
  if found then
    v_act.base_xp := v_rate;
  end if;

  -- The profile row lock serialises every award of one member: cooldowns, caps
  -- and totals are decided on a consistent view.
  select p.xp into v_profile_xp from public.profiles p where p.id = p_profile_id for update;
  if not found then
    raise exception 'Unknown profile: %', p_profile_id using errcode = 'XPPRF';
  end if;
  -- The key lock serialises one key across profiles: a racing call for another
  -- profile waits, then finds this row and raises XPIDM (not a unique violation).
  perform pg_advisory_xact_lock(hashtextextended('xp_ledger:' || p_idempotency_key, 0));
  select l.request, l.receipt into v_first_request, v_receipt
    from public.xp_ledger l where l.idempotency_key = p_idempotency_key
   limit 1;
  if found then
    if v_first_request is distinct from v_request then
      raise exception 'Idempotency key % was already used with other parameters', p_idempotency_key
        using errcode = 'XPIDM', detail = 'first request: ' || v_first_request::text;
    end if;
    return v_receipt || jsonb_build_object('replayed', true);
  end if;

  -- Under the lock: the activity's cap group with today's usage, and the multiplier cap (one statement).
  select c.slug, c.daily_cap, (v_occurred at time zone c.time_zone)::date, u.used, s.max_multiplier
    into v_cap_slug, v_daily_cap, v_day, v_used, v_max_multiplier
    from (select) one
    left join public.cap_groups c on c.slug = v_act.cap_group
    left join private.daily_cap_usage u
      on u.profile_id = p_profile_id and u.cap_group = c.slug
     and u.day = (v_occurred at time zone c.time_zone)::date
    left join lateral (select e.max_multiplier from public.engine_settings e limit 1) s on true;

  -- Amount: fixed, or a caller-named amount inside the activity's range.
  if p_amount is null then
    v_base := v_act.base_xp;
  elsif v_act.min_xp is null then
    if p_amount <> v_act.base_xp then
      raise exception 'Activity % grants a fixed % XP, not %', v_act.slug, v_act.base_xp, p_amount
        using errcode = 'XPAMT';
    end if;
    v_base := p_amount;
  elsif p_amount not between v_act.min_xp and v_act.max_xp then
    raise exception 'Activity % allows % to % XP, not %', v_act.slug, v_act.min_xp, v_act.max_xp, p_amount
      using errcode = 'XPAMT';
  else
    v_base := p_amount;
  end if;
  v_amount := v_base;

  -- Multipliers: the largest factor per kind, kinds multiply, capped.
  if v_base > 0 then
    select coalesce(exp(sum(ln(m.factor))), 1),
           coalesce(jsonb_agg(jsonb_build_object('kind', m.kind, 'match', m.match_value, 'factor', m.factor)
                              order by m.kind), '[]')
      into v_multiplier, v_multipliers
      from (
        select distinct on (x.kind) x.kind, x.match_value, x.factor
          from public.multipliers x
         where (x.activity_slug is null or x.activity_slug = v_act.slug)
           and (x.starts_at is null or x.starts_at <= v_occurred)
           and (x.ends_at is null or v_occurred < x.ends_at)
           and (
             (x.kind = 'role' and v_context ? 'role_ids'
                and x.match_value in (select jsonb_array_elements_text(v_context -> 'role_ids')))
             or (x.kind = 'channel' and x.match_value = v_context ->> 'channel_id')
             or (x.kind = 'event' and (x.match_value is null or x.match_value = v_context ->> 'event_id'))
           )
         order by x.kind, x.factor desc
      ) m;
    v_multiplier := round(least(v_multiplier, coalesce(v_max_multiplier, 5)), 3);
    v_amount := floor(v_base * v_multiplier);
  end if;

  -- Cooldown: at most one credited award of this activity per window.
  if v_act.cooldown_seconds > 0 and v_amount > 0 then
    select max(l.occurred_at) into v_last
      from public.xp_ledger l
     where l.profile_id = p_profile_id
       and l.activity_slug = v_act.slug
       and l.amount > 0
       and l.occurred_at > v_occurred - make_interval(secs => v_act.cooldown_seconds)
       and l.occurred_at < v_occurred + make_interval(secs => v_act.cooldown_seconds);
    if v_last is not null then
      v_cooldown_left := greatest(1, ceil(extract(epoch from
                           v_last + make_interval(secs => v_act.cooldown_seconds) - v_occurred))::integer);
      v_amount := 0;
    end if;
  end if;

  -- Daily cap of the activity's cap group, in the group's time zone.
  if v_act.cap_group is not null then
    v_used := coalesce(v_used, 0);
    if v_amount > 0 and v_used + v_amount > v_daily_cap then
      v_amount := greatest(v_daily_cap - v_used, 0);
      v_capped := true;
    end if;
  end if;

  -- Floor: a negative award never takes the layer's XP below the activity's xp_floor (0 by
  -- default, so neither a layer's XP nor the total goes below zero); at or below it, it grants 0.
  if v_amount < 0 then
    select coalesce(max(pl.xp), 0) into v_layer_xp from public.profile_layers pl
     where pl.profile_id = p_profile_id and pl.layer_slug = v_act.layer_slug;
    if v_layer_xp + v_amount < v_act.xp_floor then
      v_amount := least(v_act.xp_floor - v_layer_xp, 0);
      v_floored := true;
    end if;
  end if;

  if v_act.cap_group is not null and v_amount <> 0 then
    insert into private.daily_cap_usage as u (profile_id, cap_group, day, used)
    values (p_profile_id, v_cap_slug, v_day, v_amount)
    on conflict (profile_id, cap_group, day) do update set used = u.used + excluded.used;
    v_used := v_used + v_amount;
  end if;
  if v_act.cap_group is not null then
    v_cap_info := jsonb_build_object('group', v_cap_slug, 'daily_cap', v_daily_cap, 'day', v_day,
                                     'used', v_used, 'remaining', greatest(v_daily_cap - v_used, 0));
  end if;

  return private.apply_xp(
    p_profile_id, v_act.slug,
    jsonb_build_array(jsonb_build_object('layer', v_act.layer_slug, 'amount', v_amount)),
    v_occurred, p_idempotency_key, null, 'service_role', null, v_request,
    jsonb_build_object(
      'requested', p_amount,
      'base', v_base,
      'multiplier', v_multiplier,
      'multipliers', v_multipliers,
      'cooldown', v_cooldown_left > 0,
      'cooldown_remaining_seconds', v_cooldown_left,
      'capped', v_capped,
      'cap', v_cap_info,
      'floored', v_floored));
end
$$;

comment on function private.award_xp(uuid, text, text, integer, timestamptz, jsonb) is 'Implementation of public.award_xp.';

revoke all on function private.award_xp(uuid, text, text, integer, timestamptz, jsonb) from public;

grant execute on function private.award_xp(uuid, text, text, integer, timestamptz, jsonb) to service_role;

-- from supabase/sql/35_admin.sql --------------------------------------------

------------------------------------------------------------------------------
-- Making an admin (`xpbase admin grant PROFILE`)
------------------------------------------------------------------------------
create or replace function public.service_role_grant_admin(profile_id uuid)
returns jsonb
language plpgsql
volatile
security invoker
set search_path = ''
as $$
declare
  v_row record;
  v_before text;
begin
  if service_role_grant_admin.profile_id is null then
    raise exception 'profile_id is required' using errcode = 'XPBAD';
  end if;
  select p.role into v_before from public.profiles p where p.id = service_role_grant_admin.profile_id for update;
  if not found then
    raise exception 'Unknown profile: %', service_role_grant_admin.profile_id using errcode = 'XPPRF';
  end if;
  -- Audited in public.role_changes (12_roles.sql) like every role change.
  perform private.set_role(service_role_grant_admin.profile_id, 'admin', 'xpbase admin grant', null, 'service_role');
  select p.id, p.display_name, p.role into v_row from public.profiles p
   where p.id = service_role_grant_admin.profile_id;
  return jsonb_build_object('profile_id', v_row.id, 'display_name', v_row.display_name, 'role', v_row.role,
                            'changed', v_before <> 'admin');
end
$$;

comment on function public.service_role_grant_admin(uuid) is
  'Gives a profile the admin role (profiles.role), which the admin corrections and admin routes check: '
  '{profile_id, display_name, role, changed} (changed false when it was an admin already). How the first '
  'admin is made (`xpbase admin grant`). Errors: XPBAD, XPPRF. service_role only.';

revoke all on function public.service_role_grant_admin(uuid) from public, anon, authenticated;

grant execute on function public.service_role_grant_admin(uuid) to service_role;

-- from supabase/sql/55_store.sql --------------------------------------------

------------------------------------------------------------------------------
-- Buying with points
------------------------------------------------------------------------------
create or replace function private.buy_item(
  p_profile_id uuid,
  p_item text,
  p_idempotency_key text,
  p_expected_price integer,
  p_delivery jsonb,
  p_actor_role text
)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_request jsonb;
  v_key text;
  v_purchase public.store_purchases;
  v_item public.store_items;
  v_delivery jsonb;
  v_points jsonb;
  v_grants jsonb;
  v_receipt jsonb;
begin
  if p_profile_id is null then
    raise exception 'profile_id is required' using errcode = 'XPBAD';
  end if;
  perform private.assert_not_suspended(p_profile_id);
  if p_item is null or length(p_item) not between 1 and 64 then
    raise exception 'item must be 1 to 64 characters' using errcode = 'XPBAD';
  end if;
  if p_idempotency_key is null or length(p_idempotency_key) not between 1 and 200 then
    raise exception 'idempotency_key must be 1 to 200 characters' using errcode = 'XPBAD';
  end if;
  if p_expected_price is not null and p_expected_price < 0 then
    raise exception 'expected_price must not be negative' using errcode = 'XPBAD';
  end if;
  v_request := jsonb_build_object('fn', 'buy_item', 'profile_id', p_profile_id, 'item', p_item,
                                  'expected_price', p_expected_price, 'delivery', p_delivery);

  -- One key, one purchase: replays answer from the row (the advisory lock serialises racing replays). Keys are
  -- the member's own: two members may use the same one.
  v_key := 'points:' || p_profile_id || ':' || p_idempotency_key;
  perform pg_advisory_xact_lock(hashtextextended('store_purchases:' || v_key, 0));
  select * into v_purchase from public.store_purchases sp where sp.idempotency_key = v_key;
  if found then
    if v_purchase.request is distinct from v_request then
      raise exception 'Idempotency key % was already used with other parameters', p_idempotency_key
        using errcode = 'XPIDM', detail = 'first request: ' || v_purchase.request::text;
    end if;
    return v_purchase.grants || jsonb_build_object('replayed', true);
  end if;

  -- The item row lock serialises every purchase of the item: stock is decided on a consistent view.
  select * into v_item from public.store_items i where i.slug = p_item for update;
  if not found then
    raise exception 'Unknown item: %', p_item using errcode = 'XPITM';
  end if;
  -- Then the member's row: before the purchase row's foreign key takes a key-share lock on it (upgrading that
  -- to apply_points' update lock would deadlock with the member's purchases of other items).
  perform 1 from public.profiles p where p.id = p_profile_id for update;
  if not found then
    raise exception 'Unknown profile: %', p_profile_id using errcode = 'XPPRF';
  end if;
  if v_item.price_points is null then
    raise exception 'Item % is sold for rupees only (POST /v1/payments/orders)', v_item.slug using errcode = 'XPPRC';
  end if;
  if p_expected_price is not null and p_expected_price <> v_item.price_points then
    raise exception 'Item % costs % points, not %', v_item.slug, v_item.price_points, p_expected_price
      using errcode = 'XPPRC';
  end if;
  perform private.check_item(v_item, p_profile_id, 1);
  v_delivery := private.check_delivery(v_item, p_delivery);

  if v_item.stock is not null then
    update public.store_items i set stock = i.stock - 1, updated_at = now() where i.id = v_item.id;
  end if;
  insert into public.store_purchases (profile_id, item_id, price_points, idempotency_key, request)
  values (p_profile_id, v_item.id, v_item.price_points, v_key, v_request)
  returning * into v_purchase;
  v_points := private.apply_points(
    p_profile_id, 'purchase', -v_item.price_points, 'purchase:' || v_purchase.id, p_profile_id, p_actor_role,
    v_item.name, jsonb_build_object('fn', 'buy_item', 'purchase_id', v_purchase.id),
    jsonb_build_object('purchase_id', v_purchase.id, 'item', v_item.slug), false);
  v_grants := private.grant_item(p_profile_id, v_item, v_purchase.id, v_delivery, p_actor_role);
  v_receipt := jsonb_build_object(
    'purchase_id', v_purchase.id, 'profile_id', p_profile_id, 'item', v_item.slug, 'item_name', v_item.name,
    'category', v_item.category, 'price_points', v_item.price_points,
    'points_balance', (v_points ->> 'balance')::bigint, 'points_ledger_id', (v_points ->> 'points_ledger_id')::bigint,
    'stock_left', case when v_item.stock is not null then v_item.stock - 1 end,
    'grants', v_grants, 'replayed', false);
  update public.store_purchases sp
     set points_ledger_id = (v_points ->> 'points_ledger_id')::bigint, grants = v_receipt
   where sp.id = v_purchase.id;
  return v_receipt;
end
$$;

comment on function private.buy_item(uuid, text, text, integer, jsonb, text) is 'Implementation of public.buy_item.';

revoke all on function private.buy_item(uuid, text, text, integer, jsonb, text) from public;

grant execute on function private.buy_item(uuid, text, text, integer, jsonb, text) to service_role, authenticated;

-- from supabase/sql/56_redemptions.sql --------------------------------------

create or replace function private.update_redemption(p_redemption_id bigint, p_status text, p_note text)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_actor_id uuid;
  v_actor_role text;
  v_admin boolean;
begin
  -- Moderators and admins approve redemptions (the approve_redemptions permission, 12_roles.sql).
  v_admin := private.has_permission('approve_redemptions');
  if v_admin then
    select a.actor_id, a.actor_role into v_actor_id, v_actor_role from private.assert_permission('approve_redemptions') a;
  else
    v_actor_id := (select auth.uid());
    v_actor_role := 'authenticated';
    if v_actor_id is null then
      raise exception 'Sign in first' using errcode = '42501';
    end if;
  end if;
  return private.move_redemption(p_redemption_id, p_status, nullif(btrim(p_note), ''), v_actor_id, v_actor_role,
                                 v_admin);
end
$$;

comment on function private.update_redemption(bigint, text, text) is 'Implementation of public.update_redemption.';

revoke all on function private.update_redemption(bigint, text, text) from public;

grant execute on function private.update_redemption(bigint, text, text) to service_role, authenticated;

create or replace function public.update_redemption(redemption_id bigint, status text, note text default null)
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.update_redemption(update_redemption.redemption_id, update_redemption.status, update_redemption.note)
$$;

comment on function public.update_redemption(bigint, text, text) is
  'Moves a redemption one step: moderators and admins (approve_redemptions) and service_role approve, fulfil or reject; a member cancels their own '
  'pending one. note (at most 1000 characters) is kept on the step and sent in the notification. Returns '
  '{redemption_id, profile_id, item, status_before, status, points_refunded, points_balance}. Errors: XPRDU, '
  'XPRDS, 42501, XPBAD.';

revoke all on function public.update_redemption(bigint, text, text) from public, anon;

grant execute on function public.update_redemption(bigint, text, text) to service_role, authenticated;

create or replace function private.list_redemptions(p_profile_id uuid, p_status text, p_size integer, p_before_id bigint)
returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_admin boolean := private.has_permission('approve_redemptions');
begin
  if p_size is null or p_size not between 1 and 100 then
    raise exception 'size must be 1 to 100' using errcode = 'XPBAD';
  end if;
  if p_status is not null and p_status not in ('pending', 'approved', 'fulfilled', 'rejected', 'cancelled') then
    raise exception 'Unknown status: %', p_status using errcode = 'XPBAD';
  end if;
  if not v_admin and (p_profile_id is null or p_profile_id is distinct from (select auth.uid())) then
    raise exception 'Only admins see other members'' redemptions' using errcode = '42501';
  end if;
  return (
    select coalesce(jsonb_agg(jsonb_build_object(
             'id', r.id, 'profile_id', r.profile_id, 'display_name', p.display_name, 'item', i.slug,
             'item_name', i.name, 'category', i.category, 'status', r.status, 'delivery', r.delivery,
             'points', sp.price_points,
             'created_at', to_char(r.created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
             'steps', (select jsonb_agg(jsonb_build_object(
                                'status', e.status, 'actor_id', e.actor_id, 'actor_role', e.actor_role, 'note', e.note,
                                'at', to_char(e.created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))
                              order by e.id)
                         from public.redemption_events e where e.redemption_id = r.id))
           order by r.id desc), '[]')
      from (select * from public.redemptions r
             where (p_profile_id is null or r.profile_id = p_profile_id)
               and (p_status is null or r.status = p_status)
               and (p_before_id is null or r.id < p_before_id)
             order by r.id desc limit p_size) r
      join public.profiles p on p.id = r.profile_id
      join public.store_items i on i.id = r.item_id
      join public.store_purchases sp on sp.id = r.purchase_id
  );
end
$$;

comment on function private.list_redemptions(uuid, text, integer, bigint) is
  'Redemptions newest first, with delivery details and steps; a member may list only their own.';

revoke all on function private.list_redemptions(uuid, text, integer, bigint) from public;

grant execute on function private.list_redemptions(uuid, text, integer, bigint) to service_role, authenticated;

create or replace function public.redemption_queue(status text default 'pending', size integer default 25,
                                                   before_id bigint default null)
returns jsonb
language sql
stable
security invoker
set search_path = ''
as $$
  select private.list_redemptions(null, redemption_queue.status, redemption_queue.size, redemption_queue.before_id)
$$;

comment on function public.redemption_queue(text, integer, bigint) is
  'The admins'' queue: every member''s redemptions in a status (default pending; null for all), newest first: '
  '[{id, profile_id, display_name, item, item_name, category, status, delivery, points, created_at, steps: '
  '[{status, actor_id, actor_role, note, at}]}]. size 1 to 100, before_id pages back. Errors: 42501 unless a '
  'moderator, admin (approve_redemptions) or service_role; XPBAD.';

revoke all on function public.redemption_queue(text, integer, bigint) from public, anon;

grant execute on function public.redemption_queue(text, integer, bigint) to service_role, authenticated;

-- from supabase/sql/57_payments.sql -----------------------------------------

create or replace function private.create_payment_order(
  profile_id uuid,
  package text,
  item text,
  ttl_seconds integer
)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_package public.xp_packages;
  v_item public.store_items;
  v_order public.payment_orders;
begin
  if (package is null) = (item is null) then
    raise exception 'Name exactly one of package and item' using errcode = 'XPBAD';
  end if;
  if ttl_seconds is null or ttl_seconds not between 60 and 86400 then
    raise exception 'ttl_seconds must be 60 to 86400' using errcode = 'XPBAD';
  end if;
  if not exists (select 1 from public.profiles p where p.id = create_payment_order.profile_id) then
    raise exception 'Unknown profile: %', create_payment_order.profile_id using errcode = 'XPPRF';
  end if;
  perform private.assert_not_suspended(create_payment_order.profile_id);
  if package is not null then
    select * into v_package from public.xp_packages x where x.slug = package;
    if not found or not v_package.active then
      raise exception 'Unknown or inactive XP package: %', left(package, 64) using errcode = 'XPPKG';
    end if;
    insert into public.payment_orders (profile_id, package_slug, xp, amount_paise, currency, expires_at)
    values (create_payment_order.profile_id, v_package.slug, v_package.xp, v_package.amount_paise,
            v_package.currency, now() + make_interval(secs => ttl_seconds))
    returning * into v_order;
  else
    select * into v_item from public.store_items i where i.slug = item;
    if not found then
      raise exception 'Unknown item: %', left(item, 64) using errcode = 'XPITM';
    end if;
    if v_item.price_paise is null then
      raise exception 'Item % is sold for points only', v_item.slug using errcode = 'XPPRC';
    end if;
    if v_item.category in ('merchandise', 'gift_card', 'experience', 'service') then
      raise exception 'Item % needs delivery details: redeem it with points', v_item.slug using errcode = 'XPBAD';
    end if;
    perform private.check_item(v_item, create_payment_order.profile_id, 1);
    insert into public.payment_orders (profile_id, item_id, amount_paise, currency, expires_at)
    values (create_payment_order.profile_id, v_item.id, v_item.price_paise, 'INR',
            now() + make_interval(secs => ttl_seconds))
    returning * into v_order;
  end if;
  return private.order_json(v_order);
end
$$;

comment on function private.create_payment_order(uuid, text, text, integer) is 'Implementation of public.service_role_create_payment_order.';

revoke all on function private.create_payment_order(uuid, text, text, integer) from public;

grant execute on function private.create_payment_order(uuid, text, text, integer) to service_role;

-- from supabase/sql/70_timeline.sql -----------------------------------------

-- XP timeline and dashboard statistics, read from the ledger as the caller.
--
-- Tables: none of its own (reads public.xp_ledger).
-- Tests: tests/sql/test_timeline.py

------------------------------------------------------------------------------
-- Points timeline and dashboard stats (issue 4; the career-points seed)
--
-- Read from the ledger as the caller: members see only their own rows (the
-- ledger's policy), service_role sees everyone's. Periods are local days,
-- weeks (Monday first) or months in the profile's time zone.
------------------------------------------------------------------------------
create or replace function private.assert_can_read_ledger(p_profile_id uuid)
returns text
language plpgsql
stable
security invoker
set search_path = ''
as $$
declare
  v_tz text;
begin
  if p_profile_id is null then
    raise exception 'profile_id is required' using errcode = 'XPBAD';
  end if;
  if not private.is_service_role() and p_profile_id is distinct from (select auth.uid()) then
    raise exception 'Members can read only their own XP history' using errcode = '42501';
  end if;
  select p.time_zone into v_tz from public.profiles p where p.id = p_profile_id;
  if not found then
    raise exception 'Unknown profile: %', p_profile_id using errcode = 'XPPRF';
  end if;
  return v_tz;
end
$$;

comment on function private.assert_can_read_ledger(uuid) is
  'The time zone of a profile whose ledger the caller may read (their own, or any for service_role); '
  'raises 42501 for someone else''s, XPPRF for an unknown profile.';

revoke all on function private.assert_can_read_ledger(uuid) from public;

grant execute on function private.assert_can_read_ledger(uuid) to authenticated, service_role;

-- from supabase/sql/75_notifications_chat.sql -------------------------------

------------------------------------------------------------------------------
-- Global chat (issue 4)
------------------------------------------------------------------------------
create or replace function private.post_chat_message(p_body text)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_uid uuid := (select auth.uid());
  v_settings public.chat_settings;
  v_body text := btrim(p_body, E' \t\r\n');
  v_name text;
  v_recent integer;
  v_oldest timestamptz;
  v_row public.chat_messages;
begin
  if v_uid is null then
    raise exception 'Sign in to chat' using errcode = '42501';
  end if;
  perform private.assert_not_suspended(v_uid);
  select * into v_settings from public.chat_settings limit 1;
  v_settings.max_length := coalesce(v_settings.max_length, 500);
  v_settings.rate_limit_count := coalesce(v_settings.rate_limit_count, 5);
  v_settings.rate_limit_seconds := coalesce(v_settings.rate_limit_seconds, 10);
  if v_body is null or length(v_body) = 0 then
    raise exception 'A message needs some text' using errcode = 'XPBAD';
  end if;
  if length(v_body) > v_settings.max_length then
    raise exception 'A message is at most % characters, this one has %', v_settings.max_length, length(v_body)
      using errcode = 'XPBAD';
  end if;
  if v_body ~ '[\x01-\x08\x0b\x0c\x0e-\x1f\x7f]' then
    raise exception 'A message cannot contain control characters' using errcode = 'XPBAD';
  end if;
  -- One member's posts are serialised on their profile row, so two services cannot both let a burst through.
  select p.display_name into v_name from public.profiles p where p.id = v_uid for no key update;
  if not found then
    raise exception 'Unknown profile: %', v_uid using errcode = 'XPPRF';
  end if;
  select count(*), min(m.created_at) into v_recent, v_oldest
    from (select c.created_at from public.chat_messages c
           where c.profile_id = v_uid and c.created_at > now() - make_interval(secs => v_settings.rate_limit_seconds)
           order by c.created_at desc limit v_settings.rate_limit_count) m;
  if v_recent >= v_settings.rate_limit_count then
    raise exception 'Slow down: at most % messages per % seconds', v_settings.rate_limit_count,
      v_settings.rate_limit_seconds
      using errcode = 'XPRAT',
            detail = 'retry_after_seconds=' || greatest(1, ceil(extract(epoch from
                       v_oldest + make_interval(secs => v_settings.rate_limit_seconds) - now())))::integer;
  end if;
  insert into public.chat_messages (profile_id, author_name, body)
  values (v_uid, v_name, v_body)
  returning * into v_row;
  return jsonb_build_object('id', v_row.id, 'profile_id', v_row.profile_id, 'author_name', v_row.author_name,
                            'body', v_row.body, 'created_at', private.utc_text(v_row.created_at));
end
$$;

comment on function private.post_chat_message(text) is 'Implementation of public.post_chat_message.';

revoke all on function private.post_chat_message(text) from public;

grant execute on function private.post_chat_message(text) to authenticated;

-- from supabase/sql/80_sign_in.sql ------------------------------------------

-- Sessions and refresh tokens ---------------------------------------------------
create or replace function private.create_session(
  p_profile_id uuid,
  p_provider text,
  p_token_hash bytea,
  p_ttl_seconds integer
)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_session_id uuid;
  v_expires_at timestamptz;
begin
  perform private.check_hash('token_hash', p_token_hash);
  if p_provider is not null then
    perform private.check_provider(p_provider);
  end if;
  if p_ttl_seconds is null or p_ttl_seconds < 60 then
    raise exception 'ttl_seconds must be at least 60' using errcode = 'XPBAD';
  end if;
  if p_profile_id is null or not exists (select 1 from public.profiles p where p.id = p_profile_id) then
    raise exception 'Unknown profile: %', p_profile_id using errcode = 'XPPRF';
  end if;
  if private.suspended_until(p_profile_id) = 'infinity' then
    raise exception 'This account is banned' using errcode = 'XPSUS';  -- 13_moderation.sql
  end if;
  insert into private.auth_sessions (profile_id, provider) values (p_profile_id, p_provider)
  returning id into v_session_id;
  insert into private.refresh_tokens (session_id, token_hash, expires_at)
  values (v_session_id, p_token_hash, now() + make_interval(secs => p_ttl_seconds))
  returning expires_at into v_expires_at;
  return jsonb_build_object(
    'session_id', v_session_id,
    'profile_id', p_profile_id,
    'provider', p_provider,
    'refresh_expires_at', private.utc_text(v_expires_at),
    'user', private.profile_summary(p_profile_id));
end
$$;

comment on function private.create_session(uuid, text, bytea, integer) is 'Implementation of public.service_role_create_session.';

revoke all on function private.create_session(uuid, text, bytea, integer) from public;

grant execute on function private.create_session(uuid, text, bytea, integer) to service_role;

create or replace function public.service_role_create_session(
  profile_id uuid,
  provider text,
  token_hash bytea,
  ttl_seconds integer
)
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.create_session(service_role_create_session.profile_id, service_role_create_session.provider,
                                service_role_create_session.token_hash, service_role_create_session.ttl_seconds)
$$;

comment on function public.service_role_create_session(uuid, text, bytea, integer) is
  'Starts a session (a refresh-token family) for a profile with its first refresh token (sha256 token_hash, '
  'valid ttl_seconds). Returns {session_id, profile_id, provider, refresh_expires_at, user: {id, '
  'display_name, avatar_url, role}}; role is profiles.role. Errors: XPPRF unknown profile, XPSUS banned, XPBAD malformed input. service_role only.';

revoke all on function public.service_role_create_session(uuid, text, bytea, integer) from public, anon, authenticated;

grant execute on function public.service_role_create_session(uuid, text, bytea, integer) to service_role;

-- from supabase/sql/81_email_codes.sql --------------------------------------

-- Email one-time codes (issue 13): a 6-digit code mailed to an address signs its owner in
-- (identity provider `email`, subject = the normalised address) or links the address to the
-- signed-in member. Codes are stored as sha256(salt || code) with a random salt per code, live
-- email_code_ttl_seconds (600), work once, die after email_code_max_tries (5) wrong tries, and
-- only the newest code of an address works. Requests are limited per address and per client IP
-- per rolling hour (public.auth_settings). The service mails the code and answers every request
-- for a well-formed address alike, known or not.
--
-- Tables: private.email_codes (and the email_code_* columns of public.auth_settings).
-- Tests: tests/sql/test_email_codes.py
create or replace function private.check_email(p_email text)
returns text
language plpgsql
immutable
set search_path = ''
as $$
begin
  -- The service normalises (xpbase/email_address.py): lower-case, IDNA (ASCII) domain. Here: the shape only,
  -- never echoing the address (errors reach logs).
  if p_email is null or length(p_email) not between 3 and 254
     or p_email ~ '[\x00-\x20\x7f]'
     or p_email !~ '^[^@]{1,64}@[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$'
     or p_email <> lower(p_email) then
    raise exception 'email must be a normalised address (at most 254 characters, lower case, ASCII domain)'
      using errcode = 'XPBAD';
  end if;
  return p_email;
end
$$;

comment on function private.check_email(text) is
  'Returns a normalised email address unchanged or raises XPBAD (without echoing it): 3-254 characters, no spaces '
  'or control characters (no header injection), lower case, one @, an ASCII (IDNA) domain of dotted labels.';

revoke all on function private.check_email(text) from public;

create or replace function private.request_email_code(p_email text, p_client_ip inet)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_settings public.auth_settings;
  v_code text;
  v_salt bytea;
  v_row private.email_codes;
begin
  perform private.check_email(p_email);
  select * into v_settings from public.auth_settings limit 1;
  -- One request of an address at a time, so that the limit and "newest code wins" hold under concurrency.
  perform pg_advisory_xact_lock(hashtextextended('email-code' || chr(31) || p_email, 0));
  if (select count(*) from private.email_codes c
       where c.email = p_email and c.created_at > now() - interval '1 hour')
     >= coalesce(v_settings.email_code_hourly_limit, 5) then
    raise exception 'Too many codes for this address this hour' using errcode = 'XPOTR';
  end if;
  if p_client_ip is not null and (select count(*) from private.email_codes c
       where c.client_ip = p_client_ip and c.created_at > now() - interval '1 hour')
     >= coalesce(v_settings.email_code_ip_hourly_limit, 20) then
    raise exception 'Too many codes from this client this hour' using errcode = 'XPOTR';
  end if;

  update private.email_codes c set replaced_at = now()
   where c.email = p_email and c.used_at is null and c.replaced_at is null;
  -- 48 bits from the server's strong random source (gen_random_uuid: the first 12 hex digits of a v4 uuid
  -- are random), reduced to 6 digits (bias below 2^-28).
  v_code := lpad(((('x' || left(replace(gen_random_uuid()::text, '-', ''), 12))::bit(48)::bigint) % 1000000)::text,
                 6, '0');
  v_salt := uuid_send(gen_random_uuid());
  insert into private.email_codes (email, client_ip, salt, code_hash, expires_at)
  values (p_email, p_client_ip, v_salt, sha256(v_salt || convert_to(v_code, 'UTF8')),
          now() + make_interval(secs => coalesce(v_settings.email_code_ttl_seconds, 600)))
  returning * into v_row;
  -- Old rows count for nothing after an hour; keep a day for the record.
  delete from private.email_codes c where c.created_at < now() - interval '1 day';
  return jsonb_build_object('code', v_code, 'expires_at', private.utc_text(v_row.expires_at),
                            'ttl_seconds', coalesce(v_settings.email_code_ttl_seconds, 600));
end
$$;

comment on function private.request_email_code(text, inet) is 'Implementation of public.service_role_request_email_code.';

revoke all on function private.request_email_code(text, inet) from public;

grant execute on function private.request_email_code(text, inet) to service_role;

create or replace function public.service_role_request_email_code(email text, client_ip inet default null)
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.request_email_code(service_role_request_email_code.email, service_role_request_email_code.client_ip)
$$;

comment on function public.service_role_request_email_code(text, inet) is
  'Makes a sign-in code for a normalised email address (any address: unknown ones sign up on first use) and '
  'returns it for mailing: {code (6 digits), expires_at (UTC text), ttl_seconds}. Earlier codes of the address '
  'stop working. Errors: XPBAD malformed address, XPOTR more than email_code_hourly_limit codes for the address '
  'or email_code_ip_hourly_limit for client_ip in the last hour. service_role only.';

revoke all on function public.service_role_request_email_code(text, inet) from public, anon, authenticated;

grant execute on function public.service_role_request_email_code(text, inet) to service_role;

create or replace function private.verify_email_code(
  p_email text,
  p_code text,
  p_token_hash bytea,
  p_ttl_seconds integer,
  p_link_profile_id uuid
)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_max integer;
  v_row private.email_codes;
  v_signed jsonb;
  v_session jsonb;
begin
  perform private.check_email(p_email);
  if p_code is null or p_code !~ '^[0-9]{6}$' then
    raise exception 'code must be 6 digits' using errcode = 'XPBAD';
  end if;
  if p_link_profile_id is null then
    perform private.check_hash('token_hash', p_token_hash);
  end if;
  select coalesce(s.email_code_max_tries, 5) into v_max from public.auth_settings s limit 1;
  v_max := coalesce(v_max, 5);

  -- The live code's row lock serialises verifies of one code: after the first success commits, the others
  -- re-read the row, see used_at and find nothing (one session however many try at once).
  select * into v_row from private.email_codes c
   where c.email = p_email and c.used_at is null and c.replaced_at is null and c.expires_at > now()
   order by c.created_at desc, c.id desc
   limit 1
   for update;
  if not found then
    raise exception 'No live code for this address (expired, used, replaced or never sent)' using errcode = 'XPOTC';
  end if;
  if v_row.tries >= v_max then
    raise exception 'Too many wrong tries; ask for a new code' using errcode = 'XPOTD';
  end if;
  -- Digests of a salted secret are compared, so the time taken says nothing about the code.
  if sha256(v_row.salt || convert_to(p_code, 'UTF8')) <> v_row.code_hash then
    update private.email_codes c set tries = c.tries + 1 where c.id = v_row.id;
    -- Returned, not raised: raising would roll the count back.
    return jsonb_build_object('status', case when v_row.tries + 1 >= v_max then 'locked' else 'wrong' end,
                              'tries_left', greatest(v_max - v_row.tries - 1, 0));
  end if;
  update private.email_codes c set used_at = now() where c.id = v_row.id;

  if p_link_profile_id is not null then
    return jsonb_build_object('status', 'linked',
                              'link', private.link_identity(p_link_profile_id, 'email', p_email, null));
  end if;
  v_signed := private.sign_in_identity('email', p_email, null, null);
  v_session := private.create_session((v_signed ->> 'profile_id')::uuid, 'email', p_token_hash, p_ttl_seconds);
  return jsonb_build_object('status', 'signed_in', 'created', (v_signed ->> 'created')::boolean,
                            'session', v_session);
end
$$;

comment on function private.verify_email_code(text, text, bytea, integer, uuid) is
  'Implementation of public.service_role_verify_email_code.';

revoke all on function private.verify_email_code(text, text, bytea, integer, uuid) from public;

grant execute on function private.verify_email_code(text, text, bytea, integer, uuid) to service_role;

create or replace function public.service_role_verify_email_code(
  email text,
  code text,
  token_hash bytea,
  ttl_seconds integer,
  link_profile_id uuid default null
)
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.verify_email_code(service_role_verify_email_code.email, service_role_verify_email_code.code,
                                   service_role_verify_email_code.token_hash, service_role_verify_email_code.ttl_seconds,
                                   service_role_verify_email_code.link_profile_id)
$$;

comment on function public.service_role_verify_email_code(text, text, bytea, integer, uuid) is
  'Checks a 6-digit code against the address''s newest live code. Right: the code is spent and either the email '
  'identity (provider email, subject the address) is signed in with a new session whose first refresh token is '
  'token_hash (sha256, valid ttl_seconds): {status signed_in, created, session: as service_role_create_session}, '
  'or, with link_profile_id, the address is linked to that profile: {status linked, link: as '
  'service_role_link_identity}. Wrong: the try is counted and committed: {status wrong or locked (no tries '
  'left), tries_left}. Errors: XPBAD malformed address or code (not 6 digits), XPOTC no live code (expired, '
  'used, replaced, never sent), XPOTD too many wrong tries, XPSUS banned, XPLNK/XPLNP when linking. '
  'service_role only.';

revoke all on function public.service_role_verify_email_code(text, text, bytea, integer, uuid) from public, anon, authenticated;

grant execute on function public.service_role_verify_email_code(text, text, bytea, integer, uuid) to service_role;

-- from supabase/sql/82_supabase_auth.sql ------------------------------------

-- Supabase Auth mode (issue 13): when people sign in with Supabase Auth (GoTrue, supabase-js)
-- instead of, or beside, xpbase's own sign-in, every new auth.users row gets a profile with the
-- same id (so auth.uid() is the profile id in every xpbase policy), and every auth.identities row
-- becomes an identity of it (provider and subject as xpbase's own sign-in writes them: the
-- provider's account id, or for provider email the lower-cased address). The service verifies
-- GoTrue's access tokens (XPBASE_SUPABASE_AUTH_*, service/lib/access.py). On plain Postgres the
-- compat script creates auth.users and auth.identities with Supabase's columns.
--
-- Tables: none of its own (writes public.profiles and public.identities; reads auth.users, auth.identities).
-- Tests: tests/sql/test_supabase_auth.py
create or replace function private.tg_auth_users__profile()
returns trigger
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_meta jsonb := coalesce(new.raw_user_meta_data, '{}'::jsonb);
  v_name text := left(nullif(btrim(coalesce(v_meta ->> 'full_name', v_meta ->> 'name', v_meta ->> 'user_name',
                                            v_meta ->> 'preferred_username', '')), ''), 64);
  v_avatar text := nullif(btrim(coalesce(v_meta ->> 'avatar_url', v_meta ->> 'picture', '')), '');
  v_provider text := coalesce(new.raw_app_meta_data ->> 'provider', 'supabase');
begin
  -- Never the email address as a public name: members on leaderboards would show it.
  insert into public.profiles (id, display_name, avatar_url, tier)
  values (new.id,
          coalesce(v_name, left(case when v_provider ~ '^[a-z][a-z0-9_]{0,30}$' then v_provider else 'supabase' end
                                || ' member', 64)),
          case when v_avatar ~ '^https://[^\s]+$' and length(v_avatar) <= 500 then v_avatar end,
          public.tier_for_level(1))
  on conflict (id) do nothing;
  return new;
end
$$;

comment on function private.tg_auth_users__profile() is
  'After a GoTrue user is inserted: the profile with the same id (display name from raw_user_meta_data full_name, '
  'name, user_name or preferred_username, else "<provider> member"; avatar_url when an https URL of at most 500 '
  'characters). An existing profile of that id is kept.';

revoke all on function private.tg_auth_users__profile() from public;

drop trigger if exists _100_profile on auth.users;

create trigger _100_profile
  after insert on auth.users
  for each row execute function private.tg_auth_users__profile();

create or replace function private.tg_auth_identities__identity()
returns trigger
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_subject text := case when new.provider = 'email'
                         then lower(nullif(btrim(coalesce(new.identity_data ->> 'email', '')), ''))
                         else new.provider_id end;
  v_name text := left(nullif(btrim(coalesce(new.identity_data ->> 'full_name', new.identity_data ->> 'name',
                                            new.identity_data ->> 'user_name', '')), ''), 100);
begin
  if new.provider !~ '^[a-z][a-z0-9_.:-]{0,63}$' or v_subject is null or length(v_subject) not between 1 and 255
     or not exists (select 1 from public.profiles p where p.id = new.user_id) then
    return new;
  end if;
  -- An account that already belongs to another profile (signed in through xpbase before) stays there.
  insert into public.identities (profile_id, provider, subject, display_name, last_sign_in_at)
  values (new.user_id, new.provider, v_subject, v_name, new.last_sign_in_at)
  on conflict (provider, subject) do nothing;
  return new;
end
$$;

comment on function private.tg_auth_identities__identity() is
  'After a GoTrue identity is inserted: the same (provider, subject) in public.identities for the profile of '
  'user_id (subject: provider_id, or the lower-cased address for provider email). Skipped when the identity '
  'belongs to another profile already, or its provider or subject does not fit public.identities.';

revoke all on function private.tg_auth_identities__identity() from public;

drop trigger if exists _100_identity on auth.identities;

create trigger _100_identity
  after insert on auth.identities
  for each row execute function private.tg_auth_identities__identity();

-- from supabase/sql/90_discord_guilds.sql -----------------------------------

create or replace function private.act_for(p_actor_id uuid)
returns void
language plpgsql
volatile
security definer
set search_path = ''
as $$
begin
  if not private.is_service_role() then
    raise exception 'Only the backend may act for someone' using errcode = '42501';
  end if;
  if p_actor_id is null then
    raise exception 'actor_id is required' using errcode = 'XPBAD';
  end if;
  if not exists (select 1 from public.profiles p where p.id = p_actor_id) then
    raise exception 'Unknown actor profile: %', p_actor_id using errcode = 'XPPRF';
  end if;
  perform set_config('xpbase.actor_id', p_actor_id::text, true);
end
$$;

comment on function private.act_for(uuid) is
  'Names the profile the backend acts for until the end of the transaction (or until cleared), so the admin '
  'corrections record it as the ledger''s actor_id. service_role only.';

revoke all on function private.act_for(uuid) from public;

grant execute on function private.act_for(uuid) to service_role;
