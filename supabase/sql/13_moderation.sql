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
