-- Notification preferences and push devices (issue 13 item 3, the part that routes notifications; issue 14):
-- which channels (in_app, discord_dm, email, push) each kind of notification goes to for one member, quiet
-- hours in the member's time zone, the streak reminder's local time, and the FCM / Web Push devices a member
-- registers. The outbox (77_outbox.sql) reads these to turn a notification into deliveries.
--
-- Tables: public.notification_kinds, public.notification_preferences, public.push_devices.
-- Tests: tests/sql/test_preferences.py

create or replace function private.notification_channels()
returns text[]
language sql
immutable
set search_path = ''
as $$
  select array['in_app', 'discord_dm', 'email', 'push']
$$;
comment on function private.notification_channels() is
  'The channels a notification kind can be routed to, in display order: in_app (the notification row, read '
  'in the app and over the websocket), discord_dm (the bot), email (SMTP), push (FCM and Web Push devices).';
revoke all on function private.notification_channels() from public;

create or replace function private.routed_channels(p_profile_id uuid, p_kind text)
returns text[]
language sql
stable
security definer
set search_path = ''
as $$
  select coalesce(
    (select array(select jsonb_array_elements_text(np.channels -> p_kind))
       from public.notification_preferences np
      where np.profile_id = p_profile_id and np.channels ? p_kind),
    (select k.default_channels from public.notification_kinds k where k.kind = p_kind),
    array['in_app'])
$$;
comment on function private.routed_channels(uuid, text) is
  'The channels a notification of kind p_kind goes to for one member: their own choice for that kind if they '
  'made one, else the kind''s default_channels, else in_app alone (kinds without a notification_kinds row).';
revoke all on function private.routed_channels(uuid, text) from public;

create or replace function private.quiet_hours_end(p_profile_id uuid, p_at timestamptz)
returns timestamptz
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_start time;
  v_end time;
  v_zone text;
  v_local timestamp;
  v_day date;
begin
  select np.quiet_hours_start, np.quiet_hours_end, p.time_zone
    into v_start, v_end, v_zone
    from public.profiles p
    left join public.notification_preferences np on np.profile_id = p.id
   where p.id = p_profile_id;
  if v_start is null or v_end is null or v_start = v_end then
    return null;
  end if;
  v_local := p_at at time zone v_zone;
  v_day := v_local::date;
  if v_start < v_end then
    -- Within one local day, e.g. 13:00-15:00.
    if v_local::time >= v_start and v_local::time < v_end then
      return (v_day + v_end) at time zone v_zone;
    end if;
  else
    -- Across midnight, e.g. 22:00-07:00.
    if v_local::time >= v_start then
      return (v_day + 1 + v_end) at time zone v_zone;
    elsif v_local::time < v_end then
      return (v_day + v_end) at time zone v_zone;
    end if;
  end if;
  return null;
end
$$;
comment on function private.quiet_hours_end(uuid, timestamptz) is
  'When the quiet hours a member is in at p_at end (UTC), or null when p_at is outside their quiet hours or '
  'they set none. Quiet hours are local times in the profile''s time_zone; start > end spans midnight.';
revoke all on function private.quiet_hours_end(uuid, timestamptz) from public;

create or replace function private.my_notification_preferences(p_profile_id uuid)
returns jsonb
language sql
stable
security definer
set search_path = ''
as $$
  select jsonb_build_object(
    'channels', (select jsonb_object_agg(k.kind, to_jsonb(private.routed_channels(p_profile_id, k.kind))
                                         order by k.kind)
                   from public.notification_kinds k),
    'quiet_hours_start', to_char(np.quiet_hours_start, 'HH24:MI'),
    'quiet_hours_end', to_char(np.quiet_hours_end, 'HH24:MI'),
    'streak_reminder_at', to_char(coalesce(np.streak_reminder_at, time '20:00'), 'HH24:MI'),
    'time_zone', p.time_zone)
    from public.profiles p
    left join public.notification_preferences np on np.profile_id = p.id
   where p.id = p_profile_id
$$;
comment on function private.my_notification_preferences(uuid) is
  'Implementation of public.my_notification_preferences (effective channels per kind, defaults filled in).';
revoke all on function private.my_notification_preferences(uuid) from public;
grant execute on function private.my_notification_preferences(uuid) to authenticated;

create or replace function public.my_notification_preferences()
returns jsonb
language plpgsql
stable
security invoker
set search_path = ''
as $$
begin
  if (select auth.uid()) is null then
    raise exception 'Sign in to read your preferences' using errcode = '42501';
  end if;
  return private.my_notification_preferences((select auth.uid()));
end
$$;
comment on function public.my_notification_preferences() is
  'The signed-in member''s notification preferences: {channels: {kind: [channel, ...]} for every kind in '
  'notification_kinds (their choice, else the kind''s default), quiet_hours_start, quiet_hours_end ("HH:MM" '
  'local, or null), streak_reminder_at ("HH:MM" local), time_zone (the profile''s)}. Errors: 42501 when not '
  'signed in.';
revoke all on function public.my_notification_preferences() from public, anon;
grant execute on function public.my_notification_preferences() to authenticated;

create or replace function private.set_notification_preferences(
  p_channels jsonb, p_quiet_hours_start text, p_quiet_hours_end text, p_streak_reminder_at text
)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_uid uuid := (select auth.uid());
  v_kind text;
  v_list jsonb;
  v_clean jsonb := '{}';
  v_start time;
  v_end time;
  v_reminder time;
begin
  if v_uid is null then
    raise exception 'Sign in to change your preferences' using errcode = '42501';
  end if;
  if p_channels is null or jsonb_typeof(p_channels) <> 'object' then
    raise exception 'channels must be an object {kind: [channel, ...]}' using errcode = 'XPBAD';
  end if;
  for v_kind, v_list in select * from jsonb_each(p_channels) loop
    if not exists (select 1 from public.notification_kinds k where k.kind = v_kind) then
      raise exception 'Unknown notification kind: %', left(v_kind, 64) using errcode = 'XPBAD';
    end if;
    if jsonb_typeof(v_list) <> 'array'
       or exists (select 1 from jsonb_array_elements(v_list) c
                   where jsonb_typeof(c) <> 'string' or not (c #>> '{}') = any (private.notification_channels())) then
      raise exception 'Channels of % must be a list drawn from %', v_kind, private.notification_channels()
        using errcode = 'XPBAD';
    end if;
    v_clean := v_clean || jsonb_build_object(v_kind, (
      select coalesce(jsonb_agg(c order by array_position(private.notification_channels(), c)), '[]')
        from (select distinct jsonb_array_elements_text(v_list) c) d));
  end loop;
  if (p_quiet_hours_start is null) <> (p_quiet_hours_end is null) then
    raise exception 'Quiet hours need both a start and an end (or neither)' using errcode = 'XPBAD';
  end if;
  begin
    if p_quiet_hours_start is not null then
      if p_quiet_hours_start !~ '^\d{2}:\d{2}$' or p_quiet_hours_end !~ '^\d{2}:\d{2}$' then
        raise exception using errcode = '22007';
      end if;
      v_start := p_quiet_hours_start::time;
      v_end := p_quiet_hours_end::time;
    end if;
    if p_streak_reminder_at is not null then
      if p_streak_reminder_at !~ '^\d{2}:\d{2}$' then
        raise exception using errcode = '22007';
      end if;
      v_reminder := p_streak_reminder_at::time;
    end if;
  exception when invalid_datetime_format or datetime_field_overflow then
    raise exception 'Times are local "HH:MM" (00:00 to 23:59)' using errcode = 'XPBAD';
  end;
  insert into public.notification_preferences as np
         (profile_id, channels, quiet_hours_start, quiet_hours_end, streak_reminder_at)
  values (v_uid, v_clean, v_start, v_end, v_reminder)
  on conflict (profile_id) do update
    set channels = np.channels || excluded.channels,
        quiet_hours_start = excluded.quiet_hours_start,
        quiet_hours_end = excluded.quiet_hours_end,
        streak_reminder_at = coalesce(excluded.streak_reminder_at, np.streak_reminder_at),
        updated_at = now();
  return private.my_notification_preferences(v_uid);
end
$$;
comment on function private.set_notification_preferences(jsonb, text, text, text) is
  'Implementation of public.set_notification_preferences.';
revoke all on function private.set_notification_preferences(jsonb, text, text, text) from public;
grant execute on function private.set_notification_preferences(jsonb, text, text, text) to authenticated;

create or replace function public.set_notification_preferences(
  channels jsonb default '{}', quiet_hours_start text default null, quiet_hours_end text default null,
  streak_reminder_at text default null
)
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.set_notification_preferences(set_notification_preferences.channels,
                                              set_notification_preferences.quiet_hours_start,
                                              set_notification_preferences.quiet_hours_end,
                                              set_notification_preferences.streak_reminder_at)
$$;
comment on function public.set_notification_preferences(jsonb, text, text, text) is
  'Sets the signed-in member''s notification preferences and returns them as my_notification_preferences does. '
  'channels {kind: [channel, ...]} replaces the list of each kind named (an empty list opts out of that kind; '
  'kinds not named keep their setting); channels are in_app, discord_dm, email, push. quiet_hours_start and '
  'quiet_hours_end are local "HH:MM" (both, or both null to clear; start after end spans midnight): '
  'deliveries due then wait until the end. streak_reminder_at "HH:MM" local (null keeps it). Errors: XPBAD '
  '(unknown kind or channel, bad time), 42501 when not signed in.';
revoke all on function public.set_notification_preferences(jsonb, text, text, text) from public, anon;
grant execute on function public.set_notification_preferences(jsonb, text, text, text) to authenticated;

create or replace function private.register_push_device(
  p_platform text, p_token text, p_p256dh text, p_auth text
)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_uid uuid := (select auth.uid());
  v_row public.push_devices;
begin
  if v_uid is null then
    raise exception 'Sign in to register a device' using errcode = '42501';
  end if;
  if p_platform is null or p_platform not in ('fcm', 'webpush') then
    raise exception 'platform must be fcm or webpush' using errcode = 'XPBAD';
  end if;
  if p_token is null or length(p_token) not between 1 and 4096 or p_token ~ '\s' then
    raise exception 'A device token is 1 to 4096 characters without spaces' using errcode = 'XPBAD';
  end if;
  if p_platform = 'webpush' then
    if p_token !~ '^https://[^\s/]+/' and p_token !~ '^http://(127\.0\.0\.1|localhost)(:\d+)?/' then
      raise exception 'A Web Push endpoint is an https URL' using errcode = 'XPBAD';
    end if;
    if p_p256dh is null or p_auth is null or p_p256dh !~ '^[A-Za-z0-9_-]{40,200}={0,2}$'
       or p_auth !~ '^[A-Za-z0-9_-]{16,64}={0,2}$' then
      raise exception 'A Web Push subscription needs its p256dh and auth keys (base64url)' using errcode = 'XPBAD';
    end if;
  elsif p_p256dh is not null or p_auth is not null then
    raise exception 'Only Web Push subscriptions carry keys' using errcode = 'XPBAD';
  end if;
  if (select count(*) from public.push_devices d where d.profile_id = v_uid) >= 20
     and not exists (select 1 from public.push_devices d where d.platform = p_platform and d.token = p_token) then
    raise exception 'At most 20 devices per member: remove one first' using errcode = 'XPBAD';
  end if;
  -- A token belongs to the member who registered it last (an app signed in as someone else).
  insert into public.push_devices as d (profile_id, platform, token, p256dh, auth)
  values (v_uid, p_platform, p_token, p_p256dh, p_auth)
  on conflict (platform, token) do update
    set profile_id = excluded.profile_id, p256dh = excluded.p256dh, auth = excluded.auth, last_seen_at = now()
  returning * into v_row;
  return jsonb_build_object('id', v_row.id, 'platform', v_row.platform, 'created_at',
                            private.utc_text(v_row.created_at), 'last_seen_at', private.utc_text(v_row.last_seen_at));
end
$$;
comment on function private.register_push_device(text, text, text, text) is
  'Implementation of public.register_push_device.';
revoke all on function private.register_push_device(text, text, text, text) from public;
grant execute on function private.register_push_device(text, text, text, text) to authenticated;

create or replace function public.register_push_device(
  platform text, token text, p256dh text default null, auth text default null
)
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.register_push_device(register_push_device.platform, register_push_device.token,
                                      register_push_device.p256dh, register_push_device.auth)
$$;
comment on function public.register_push_device(text, text, text, text) is
  'Registers a device of the signed-in member for push notifications and returns {id, platform, created_at, '
  'last_seen_at}. platform fcm: token is the FCM registration token; platform webpush: token is the '
  'subscription endpoint (https) with its p256dh and auth keys (base64url). Registering a known token again '
  'refreshes it (and moves it to this member). At most 20 devices per member. Errors: XPBAD, 42501.';
revoke all on function public.register_push_device(text, text, text, text) from public, anon;
grant execute on function public.register_push_device(text, text, text, text) to authenticated;
