-- The notification outbox (issue 14): every notification that a member's preferences route to a channel
-- becomes deliveries (one per channel and target) in the same transaction, by a trigger on
-- public.notifications. FCM, Web Push and email deliveries are jobs on the procrastinate queue (schema
-- procrastinate) that workers run (xpbase/worker.py): claim, send, finish with backoff and jitter,
-- Retry-After, a last attempt (dead, listed for admins), quiet hours (deferred, never dropped). Discord DMs are
-- drained by the bot through its own claim function. Less noise: kinds with collapse_seconds (level-ups)
-- merge a burst into one message; a daily streak reminder before the member's local day ends. Also the
-- retention of old chat messages, notifications and finished deliveries.
--
-- Tables: private.deliveries.
-- Tests: tests/sql/test_outbox.py

create or replace function private.enqueue_delivery(p_delivery_id bigint, p_channel text, p_at timestamptz)
returns void
language plpgsql
volatile
security definer
set search_path = ''
as $$
begin
  if p_channel = 'discord_dm' then
    -- The bot drains Discord deliveries itself; wake it.
    perform pg_notify('xpbase_deliveries', json_build_object('id', p_delivery_id, 'channel', p_channel)::text);
    return;
  end if;
  -- At most one waiting job per delivery (procrastinate's queueing lock): enqueueing again is a no-op.
  insert into procrastinate.procrastinate_jobs (queue_name, task_name, queueing_lock, args, scheduled_at)
  values ('deliveries', 'xpbase.deliver', 'delivery:' || p_delivery_id,
          jsonb_build_object('delivery_id', p_delivery_id), case when p_at > now() then p_at end)
  on conflict (queueing_lock) where status = 'todo' do nothing;
end
$$;
comment on function private.enqueue_delivery(bigint, text, timestamptz) is
  'Puts a job on the procrastinate queue (queue deliveries, task xpbase.deliver) that delivers p_delivery_id at '
  'p_at or later; a no-op while a job for it is still waiting. Discord deliveries get a pg_notify on '
  'xpbase_deliveries for the bot instead.';
revoke all on function private.enqueue_delivery(bigint, text, timestamptz) from public;

create or replace function private.tg_notifications__in_app()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  -- An import (92_imports.sql) sets xpbase.importing for its transaction: a level reached by moving in from
  -- another bot is not news (no notification, hence no DM, push or email to every member of a server).
  if current_setting('xpbase.importing', true) = 'on' then
    return null;
  end if;
  if not 'in_app' = any (private.routed_channels(new.profile_id, new.kind)) then
    new.read_at := coalesce(new.read_at, new.created_at);
  end if;
  return new;
end
$$;
comment on function private.tg_notifications__in_app() is
  'A notification of a kind the member routed away from in_app is stored already read (it stays the record '
  'that deliveries point to, but never counts as unread). None is stored while an import runs '
  '(xpbase.importing = on, set by private.import_members for its transaction).';
revoke all on function private.tg_notifications__in_app() from public;

drop trigger if exists _050_in_app on public.notifications;
create trigger _050_in_app before insert on public.notifications
  for each row execute function private.tg_notifications__in_app();

create or replace function private.tg_notifications__route()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_channels text[] := private.routed_channels(new.profile_id, new.kind);
  v_collapse integer;
  v_at timestamptz;
  v_due timestamptz;
  v_last timestamptz;
  v_target record;
  v_id bigint;
begin
  if not v_channels && array['discord_dm', 'email', 'push'] then
    return null;
  end if;
  select k.collapse_seconds into v_collapse from public.notification_kinds k where k.kind = new.kind;
  v_at := coalesce(private.quiet_hours_end(new.profile_id, now()), now());
  for v_target in
    select d.platform as channel, d.token as target, d.id as device_id
      from public.push_devices d
     where 'push' = any (v_channels) and d.profile_id = new.profile_id
    union all
    (select 'email', i.subject, null::bigint
       from public.identities i
      where 'email' = any (v_channels) and i.profile_id = new.profile_id and i.provider = 'email'
      order by i.created_at desc limit 1)
    union all
    select 'discord_dm', i.subject, null
      from public.identities i
     where 'discord_dm' = any (v_channels) and i.profile_id = new.profile_id and i.provider = 'discord'
  loop
    v_due := v_at;
    if coalesce(v_collapse, 0) > 0 then
      -- A burst: fold into the delivery of this kind that has not been tried yet.
      update private.deliveries d
         set notification_id = new.id, collapsed = d.collapsed + 1, updated_at = now()
       where d.profile_id = new.profile_id and d.kind = new.kind and d.channel = v_target.channel
         and d.target = v_target.target and d.state = 'pending' and d.attempts = 0
      returning d.id into v_id;
      if v_id is not null then
        continue;
      end if;
      -- The last message of this kind went out (or is going out) less than collapse_seconds ago: wait.
      select max(coalesce(d.sent_at, d.claimed_at)) into v_last
        from private.deliveries d
       where d.profile_id = new.profile_id and d.kind = new.kind and d.channel = v_target.channel
         and d.target = v_target.target and d.state in ('sent', 'sending', 'pending')
         and coalesce(d.sent_at, d.claimed_at) > now() - make_interval(secs => v_collapse);
      if v_last is not null then
        v_due := greatest(v_due, v_last + make_interval(secs => v_collapse));
      end if;
    end if;
    insert into private.deliveries (notification_id, profile_id, kind, channel, target, device_id, next_attempt_at)
    values (new.id, new.profile_id, new.kind, v_target.channel, v_target.target, v_target.device_id, v_due)
    returning id into v_id;
    perform private.enqueue_delivery(v_id, v_target.channel, v_due);
  end loop;
  return null;
end
$$;
comment on function private.tg_notifications__route() is
  'The outbox: turns a new notification into one delivery per channel its member routes the kind to (push: '
  'each registered device; email: their newest email identity; discord_dm: their Discord identity), due at '
  'once or when their quiet hours end, and enqueues them, in the notification''s own transaction. Kinds with '
  'collapse_seconds fold into an untried delivery of the same kind, or wait out the window after the last one.';
revoke all on function private.tg_notifications__route() from public;

drop trigger if exists _600_route on public.notifications;
create trigger _600_route after insert on public.notifications
  for each row execute function private.tg_notifications__route();

create or replace function private.delivery_payload(p_delivery private.deliveries)
returns jsonb
language sql
stable
security definer
set search_path = ''
as $$
  select jsonb_build_object(
    'id', p_delivery.id, 'channel', p_delivery.channel, 'target', p_delivery.target,
    'kind', p_delivery.kind, 'attempts', p_delivery.attempts, 'collapsed', p_delivery.collapsed,
    'notification_id', n.id, 'title', n.title, 'body', n.body, 'data', n.data,
    'created_at', private.utc_text(n.created_at),
    'display_name', p.display_name,
    'p256dh', dev.p256dh, 'auth', dev.auth,
    'idempotency_key', 'xpbase-delivery-' || p_delivery.id)
    from public.notifications n
    join public.profiles p on p.id = p_delivery.profile_id
    left join public.push_devices dev on dev.id = p_delivery.device_id
   where n.id = p_delivery.notification_id
$$;
comment on function private.delivery_payload(private.deliveries) is
  'What a worker needs to send one delivery: the delivery, its (newest) notification, the member''s display '
  'name, the Web Push keys of its device, and the idempotency key the receiver sees.';
revoke all on function private.delivery_payload(private.deliveries) from public;

create or replace function private.claim_delivery(p_delivery_id bigint, p_lease_seconds integer)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_row private.deliveries;
  v_quiet timestamptz;
begin
  if p_lease_seconds is null or p_lease_seconds not between 1 and 3600 then
    raise exception 'lease_seconds must be 1 to 3600' using errcode = 'XPBAD';
  end if;
  select * into v_row from private.deliveries d where d.id = p_delivery_id for update;
  if not found then
    return jsonb_build_object('status', 'gone');
  end if;
  if v_row.state not in ('pending', 'sending') then
    return jsonb_build_object('status', 'done', 'state', v_row.state);
  end if;
  if v_row.state = 'sending' and v_row.claimed_at > now() - make_interval(secs => p_lease_seconds) then
    return jsonb_build_object('status', 'busy');
  end if;
  if v_row.state = 'pending' and v_row.next_attempt_at > now() then
    perform private.enqueue_delivery(v_row.id, v_row.channel, v_row.next_attempt_at);
    return jsonb_build_object('status', 'later', 'next_attempt_at', private.utc_text(v_row.next_attempt_at));
  end if;
  v_quiet := private.quiet_hours_end(v_row.profile_id, now());
  if v_quiet is not null then
    update private.deliveries d
       set state = 'pending', next_attempt_at = v_quiet, updated_at = now()
     where d.id = v_row.id;
    perform private.enqueue_delivery(v_row.id, v_row.channel, v_quiet);
    return jsonb_build_object('status', 'later', 'next_attempt_at', private.utc_text(v_quiet));
  end if;
  update private.deliveries d
     set state = 'sending', attempts = d.attempts + 1, claimed_at = now(), updated_at = now()
   where d.id = v_row.id
  returning * into v_row;
  return jsonb_build_object('status', 'claimed', 'delivery', private.delivery_payload(v_row));
end
$$;
comment on function private.claim_delivery(bigint, integer) is 'Implementation of public.service_role_claim_delivery.';
revoke all on function private.claim_delivery(bigint, integer) from public;
grant execute on function private.claim_delivery(bigint, integer) to service_role;

create or replace function public.service_role_claim_delivery(delivery_id bigint, lease_seconds integer default 60)
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.claim_delivery(service_role_claim_delivery.delivery_id, service_role_claim_delivery.lease_seconds)
$$;
comment on function public.service_role_claim_delivery(bigint, integer) is
  'A worker takes one delivery to send: {status: claimed, delivery {id, channel, target, kind, attempts (this '
  'one included), collapsed, notification_id, title, body, data, created_at, display_name, p256dh, auth, '
  'idempotency_key}}; or {status: later, next_attempt_at} (not due, or the member''s quiet hours: a job is '
  'queued for then), busy (another worker holds it for lease_seconds, 1-3600), done (sent, dead or dropped), '
  'gone. Errors: XPBAD. service_role only.';
revoke all on function public.service_role_claim_delivery(bigint, integer) from public, anon, authenticated;
grant execute on function public.service_role_claim_delivery(bigint, integer) to service_role;

create or replace function private.finish_delivery(
  p_delivery_id bigint, p_outcome text, p_error text, p_retry_after_seconds integer, p_max_attempts integer,
  p_backoff_base_seconds numeric, p_backoff_max_seconds numeric
)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_row private.deliveries;
  v_next timestamptz;
  v_error text := left(p_error, 1000);
begin
  if p_outcome is null or p_outcome not in ('sent', 'retry', 'failed', 'gone') then
    raise exception 'outcome must be sent, retry, failed or gone' using errcode = 'XPBAD';
  end if;
  if p_max_attempts is null or p_max_attempts not between 1 and 100
     or p_backoff_base_seconds is null or p_backoff_base_seconds not between 0.01 and 86400
     or p_backoff_max_seconds is null or p_backoff_max_seconds not between p_backoff_base_seconds and 604800
     or p_retry_after_seconds not between 0 and 604800 then
    raise exception 'max_attempts 1-100, backoff seconds 0.01-86400 (max >= base), retry_after 0-604800'
      using errcode = 'XPBAD';
  end if;
  select * into v_row from private.deliveries d where d.id = p_delivery_id for update;
  if not found then
    raise exception 'Unknown delivery: %', p_delivery_id using errcode = 'XPNFD';
  end if;
  if v_row.state <> 'sending' then
    -- Finished already (a retried job, a second worker): nothing changes.
    return jsonb_build_object('id', v_row.id, 'state', v_row.state, 'attempts', v_row.attempts,
                              'next_attempt_at', null, 'changed', false);
  end if;
  if p_outcome = 'sent' then
    update private.deliveries d
       set state = 'sent', sent_at = now(), last_error = null, updated_at = now()
     where d.id = v_row.id returning * into v_row;
  elsif p_outcome = 'gone' then
    -- The device is gone for good (FCM UNREGISTERED, Web Push 404/410): prune it with its other deliveries.
    update private.deliveries d
       set state = 'dropped', last_error = 'device unregistered', updated_at = now()
     where d.device_id = v_row.device_id and d.id <> v_row.id and d.state in ('pending', 'sending');
    update private.deliveries d
       set state = 'dead', last_error = coalesce(v_error, 'gone'), updated_at = now()
     where d.id = v_row.id returning * into v_row;
    delete from public.push_devices dev where dev.id = v_row.device_id;
  elsif p_outcome = 'failed' or v_row.attempts >= p_max_attempts then
    update private.deliveries d
       set state = 'dead', last_error = coalesce(v_error, 'failed'), updated_at = now()
     where d.id = v_row.id returning * into v_row;
  else
    -- Exponential backoff with equal jitter (half fixed, half random), or the receiver's Retry-After.
    v_next := now() + make_interval(secs => coalesce(
      p_retry_after_seconds::numeric,
      least(p_backoff_max_seconds, p_backoff_base_seconds * 2 ^ (v_row.attempts - 1)) * (0.5 + random() / 2)));
    update private.deliveries d
       set state = 'pending', next_attempt_at = v_next, last_error = v_error, updated_at = now()
     where d.id = v_row.id returning * into v_row;
    perform private.enqueue_delivery(v_row.id, v_row.channel, v_next);
  end if;
  return jsonb_build_object('id', v_row.id, 'state', v_row.state, 'attempts', v_row.attempts,
                            'next_attempt_at', case when v_row.state = 'pending'
                                                    then private.utc_text(v_row.next_attempt_at) end,
                            'changed', true);
end
$$;
comment on function private.finish_delivery(bigint, text, text, integer, integer, numeric, numeric) is
  'Implementation of public.service_role_finish_delivery.';
revoke all on function private.finish_delivery(bigint, text, text, integer, integer, numeric, numeric) from public;
grant execute on function private.finish_delivery(bigint, text, text, integer, integer, numeric, numeric) to service_role;

create or replace function public.service_role_finish_delivery(
  delivery_id bigint, outcome text, error text default null, retry_after_seconds integer default null,
  max_attempts integer default 8, backoff_base_seconds numeric default 30, backoff_max_seconds numeric default 3600
)
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.finish_delivery(service_role_finish_delivery.delivery_id, service_role_finish_delivery.outcome,
                                 service_role_finish_delivery.error, service_role_finish_delivery.retry_after_seconds,
                                 service_role_finish_delivery.max_attempts,
                                 service_role_finish_delivery.backoff_base_seconds,
                                 service_role_finish_delivery.backoff_max_seconds)
$$;
comment on function public.service_role_finish_delivery(bigint, text, text, integer, integer, numeric, numeric) is
  'Records how a claimed delivery went and returns {id, state, attempts, next_attempt_at, changed}. outcome '
  'sent; retry (again after retry_after_seconds when the receiver said so, else after backoff_base_seconds * '
  '2^(attempts-1), at most backoff_max_seconds, times a random 0.5-1; dead once attempts reached max_attempts); '
  'failed (permanent: dead); gone (the device is unregistered: dead, the device deleted, its other deliveries '
  'dropped). error (at most 1000 characters kept) is last_error. A delivery that is not being sent is left '
  'alone (changed false). Errors: XPBAD, XPNFD. service_role only.';
revoke all on function public.service_role_finish_delivery(bigint, text, text, integer, integer, numeric, numeric)
  from public, anon, authenticated;
grant execute on function public.service_role_finish_delivery(bigint, text, text, integer, integer, numeric, numeric)
  to service_role;

create or replace function private.claim_discord_deliveries(p_max_rows integer, p_lease_seconds integer)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_claimed jsonb := '[]';
  v_row private.deliveries;
  v_quiet timestamptz;
begin
  if p_max_rows is null or p_max_rows not between 1 and 100 or p_lease_seconds is null
     or p_lease_seconds not between 1 and 3600 then
    raise exception 'max_rows must be 1 to 100, lease_seconds 1 to 3600' using errcode = 'XPBAD';
  end if;
  for v_row in
    select * from private.deliveries d
     where d.channel = 'discord_dm' and d.next_attempt_at <= now()
       and (d.state = 'pending'
            or (d.state = 'sending' and d.claimed_at <= now() - make_interval(secs => p_lease_seconds)))
     order by d.next_attempt_at, d.id
     limit p_max_rows
     for update skip locked
  loop
    v_quiet := private.quiet_hours_end(v_row.profile_id, now());
    if v_quiet is not null then
      update private.deliveries d set state = 'pending', next_attempt_at = v_quiet, updated_at = now()
       where d.id = v_row.id;
      continue;
    end if;
    update private.deliveries d
       set state = 'sending', attempts = d.attempts + 1, claimed_at = now(), updated_at = now()
     where d.id = v_row.id
    returning * into v_row;
    v_claimed := v_claimed || jsonb_build_array(private.delivery_payload(v_row));
  end loop;
  return jsonb_build_object('deliveries', v_claimed);
end
$$;
comment on function private.claim_discord_deliveries(integer, integer) is
  'Implementation of public.service_role_claim_discord_deliveries.';
revoke all on function private.claim_discord_deliveries(integer, integer) from public;
grant execute on function private.claim_discord_deliveries(integer, integer) to service_role;

create or replace function public.service_role_claim_discord_deliveries(
  max_rows integer default 20, lease_seconds integer default 60
)
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.claim_discord_deliveries(service_role_claim_discord_deliveries.max_rows,
                                          service_role_claim_discord_deliveries.lease_seconds)
$$;
comment on function public.service_role_claim_discord_deliveries(integer, integer) is
  'The bot takes up to max_rows (1-100) due Discord DMs to send: {deliveries [{id, channel, target (the Discord '
  'user id), kind, attempts, collapsed, notification_id, title, body, data, created_at, display_name, p256dh, '
  'auth, idempotency_key}]}, each held for lease_seconds (1-3600; then another bot may take it). Deliveries in '
  'their member''s quiet hours move to the end of them. Finish each with service_role_finish_delivery. '
  'Errors: XPBAD. service_role only.';
revoke all on function public.service_role_claim_discord_deliveries(integer, integer) from public, anon, authenticated;
grant execute on function public.service_role_claim_discord_deliveries(integer, integer) to service_role;

create or replace function private.sweep_deliveries(p_lease_seconds integer)
returns integer
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_count integer := 0;
  v_row record;
begin
  if p_lease_seconds is null or p_lease_seconds not between 1 and 3600 then
    raise exception 'lease_seconds must be 1 to 3600' using errcode = 'XPBAD';
  end if;
  for v_row in
    select d.id, d.channel from private.deliveries d
     where d.channel <> 'discord_dm'
       and ((d.state = 'pending' and d.next_attempt_at <= now() - interval '1 minute')
            or (d.state = 'sending' and d.claimed_at <= now() - make_interval(secs => p_lease_seconds)))
     order by d.next_attempt_at
     limit 10000
  loop
    perform private.enqueue_delivery(v_row.id, v_row.channel, now());
    v_count := v_count + 1;
  end loop;
  return v_count;
end
$$;
comment on function private.sweep_deliveries(integer) is 'Implementation of public.service_role_sweep_deliveries.';
revoke all on function private.sweep_deliveries(integer) from public;
grant execute on function private.sweep_deliveries(integer) to service_role;

create or replace function public.service_role_sweep_deliveries(lease_seconds integer default 60)
returns integer
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.sweep_deliveries(service_role_sweep_deliveries.lease_seconds)
$$;
comment on function public.service_role_sweep_deliveries(integer) is
  'The safety net of the outbox: enqueues again (at most 10,000) FCM, Web Push and email deliveries that are '
  'overdue by a minute or whose worker has held them longer than lease_seconds (1-3600: it died mid-send). '
  'Deliveries that already have a waiting job are not doubled. Returns how many it looked at. Errors: XPBAD. '
  'service_role only.';
revoke all on function public.service_role_sweep_deliveries(integer) from public, anon, authenticated;
grant execute on function public.service_role_sweep_deliveries(integer) to service_role;

create or replace function private.dead_deliveries(p_max_rows integer, p_before_id bigint)
returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
begin
  perform private.assert_admin();
  if p_max_rows is null or p_max_rows not between 1 and 500 then
    raise exception 'max_rows must be 1 to 500' using errcode = 'XPBAD';
  end if;
  return coalesce((
    select jsonb_agg(jsonb_build_object(
             'id', d.id, 'notification_id', d.notification_id, 'profile_id', d.profile_id, 'kind', d.kind,
             'channel', d.channel, 'attempts', d.attempts, 'last_error', d.last_error,
             'created_at', private.utc_text(d.created_at), 'updated_at', private.utc_text(d.updated_at))
           order by d.id desc)
      from (select * from private.deliveries d
             where d.state = 'dead' and (p_before_id is null or d.id < p_before_id)
             order by d.id desc limit p_max_rows) d), '[]');
end
$$;
comment on function private.dead_deliveries(integer, bigint) is 'Implementation of public.dead_deliveries.';
revoke all on function private.dead_deliveries(integer, bigint) from public;
grant execute on function private.dead_deliveries(integer, bigint) to authenticated, service_role;

create or replace function public.dead_deliveries(max_rows integer default 50, before_id bigint default null)
returns jsonb
language sql
stable
security invoker
set search_path = ''
as $$
  select private.dead_deliveries(dead_deliveries.max_rows, dead_deliveries.before_id)
$$;
comment on function public.dead_deliveries(integer, bigint) is
  'Deliveries that gave up (the last attempt failed, a permanent error, an unregistered device), newest first: '
  '[{id, notification_id, profile_id, kind, channel, attempts, last_error, created_at, updated_at}], max_rows '
  '(1-500) before delivery before_id. The target (address, token) is not shown. Admins and service_role. '
  'Errors: 42501 for anyone else, XPBAD.';
revoke all on function public.dead_deliveries(integer, bigint) from public, anon;
grant execute on function public.dead_deliveries(integer, bigint) to authenticated, service_role;

create or replace function private.queue_streak_reminders(p_at timestamptz)
returns integer
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_count integer;
begin
  perform private.assert_time(p_at, 'at', interval '5 minutes');
  with due as (
    select s.profile_id, s.current_streak, (p_at at time zone p.time_zone)::date as local_date
      from public.streaks s
      join public.profiles p on p.id = s.profile_id
      left join public.notification_preferences np on np.profile_id = s.profile_id
     where s.current_streak > 0
       -- Checked in yesterday (local), not yet today: the streak ends at local midnight.
       and s.last_check_in_date = (p_at at time zone p.time_zone)::date - 1
       and (p_at at time zone p.time_zone)::time >= coalesce(np.streak_reminder_at, time '20:00')
  ), inserted as (
    insert into public.notifications (profile_id, kind, title, body, data)
    select d.profile_id, 'streak_reminder', 'Keep your ' || d.current_streak || '-day streak',
           'Check in before midnight to keep it.',
           jsonb_build_object('local_date', d.local_date, 'streak', d.current_streak)
      from due d
    on conflict (profile_id, (data ->> 'local_date')) where kind = 'streak_reminder' do nothing
    returning 1
  )
  select count(*) into v_count from inserted;
  return v_count;
end
$$;
comment on function private.queue_streak_reminders(timestamptz) is
  'Implementation of public.service_role_queue_streak_reminders.';
revoke all on function private.queue_streak_reminders(timestamptz) from public;
grant execute on function private.queue_streak_reminders(timestamptz) to service_role;

create or replace function public.service_role_queue_streak_reminders(at timestamptz default now())
returns integer
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.queue_streak_reminders(coalesce(service_role_queue_streak_reminders.at, now()))
$$;
comment on function public.service_role_queue_streak_reminders(timestamp with time zone) is
  'Writes a streak_reminder notification (routed like any other) for each member with a streak who checked in '
  'on their local yesterday but not yet today, once their local time (profile time_zone) has passed their '
  'streak_reminder_at (default 20:00). At most one per member and local day, however often it runs. Returns '
  'how many it wrote. service_role only.';
revoke all on function public.service_role_queue_streak_reminders(timestamp with time zone) from public, anon, authenticated;
grant execute on function public.service_role_queue_streak_reminders(timestamp with time zone) to service_role;

create or replace function private.purge_old_messages(p_chat_days integer, p_notification_days integer,
                                                      p_delivery_days integer)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_chat integer;
  v_notifications integer;
  v_deliveries integer;
begin
  if p_chat_days is null or p_chat_days not between 1 and 36500 or p_notification_days is null
     or p_notification_days not between 1 and 36500 or p_delivery_days is null
     or p_delivery_days not between 1 and 36500 then
    raise exception 'Retention is 1 to 36500 days' using errcode = 'XPBAD';
  end if;
  delete from public.chat_messages c where c.created_at < now() - make_interval(days => p_chat_days);
  get diagnostics v_chat = row_count;
  -- Never delivered in delivery_days (no bot drains Discord, a channel without settings): expired.
  update private.deliveries d
     set state = 'dropped', last_error = 'expired: still open after ' || p_delivery_days || ' days', updated_at = now()
   where d.state in ('pending', 'sending') and d.created_at < now() - make_interval(days => p_delivery_days);
  delete from private.deliveries d
   where d.state in ('sent', 'dead', 'dropped') and d.updated_at < now() - make_interval(days => p_delivery_days);
  get diagnostics v_deliveries = row_count;
  -- Deliveries still open keep their notification (they cascade with it otherwise).
  delete from public.notifications n
   where n.created_at < now() - make_interval(days => p_notification_days)
     and not exists (select 1 from private.deliveries d
                      where d.notification_id = n.id and d.state in ('pending', 'sending'));
  get diagnostics v_notifications = row_count;
  return jsonb_build_object('chat_messages', v_chat, 'notifications', v_notifications, 'deliveries', v_deliveries);
end
$$;
comment on function private.purge_old_messages(integer, integer, integer) is
  'Implementation of public.service_role_purge_old_messages.';
revoke all on function private.purge_old_messages(integer, integer, integer) from public;
grant execute on function private.purge_old_messages(integer, integer, integer) to service_role;

create or replace function public.service_role_purge_old_messages(
  chat_days integer default 90, notification_days integer default 180, delivery_days integer default 30
)
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.purge_old_messages(service_role_purge_old_messages.chat_days,
                                    service_role_purge_old_messages.notification_days,
                                    service_role_purge_old_messages.delivery_days)
$$;
comment on function public.service_role_purge_old_messages(integer, integer, integer) is
  'Retention: deletes chat messages older than chat_days, notifications older than notification_days (with '
  'their finished deliveries; not while a delivery is open) and finished deliveries (sent, dead, dropped) '
  'last changed more than delivery_days ago; deliveries still open after delivery_days are dropped (expired) '
  'and go at the next run. Days 1-36500. Returns {chat_messages, notifications, '
  'deliveries} (counts). Running it again at once deletes nothing more. Errors: XPBAD. service_role only.';
revoke all on function public.service_role_purge_old_messages(integer, integer, integer) from public, anon, authenticated;
grant execute on function public.service_role_purge_old_messages(integer, integer, integer) to service_role;
