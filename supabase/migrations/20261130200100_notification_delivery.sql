-- Notification delivery (issue 14; preferences from issue 13 item 3): which channels each kind of
-- notification goes to (notification_kinds, with defaults; notification_preferences, per member, with quiet
-- hours), the push devices members register (push_devices: FCM tokens and Web Push subscriptions), and the
-- outbox (private.deliveries): one row per notification, channel and target, written by a trigger in the same
-- transaction as the notification, so nothing is lost when a process dies. Workers (procrastinate, see the
-- previous migration) and the Discord bot deliver them. Also a unique index that makes the daily streak
-- reminder idempotent. Functions and triggers: supabase/sql/76_preferences.sql, 77_outbox.sql.

create table public.notification_kinds (
  kind text primary key check (kind ~ '^[a-z][a-z0-9_]{0,63}$'),
  description text not null check (length(description) <= 200),
  default_channels text[] not null default '{in_app}'
    check (default_channels <@ array['in_app', 'discord_dm', 'email', 'push']),
  collapse_seconds integer not null default 0 check (collapse_seconds between 0 and 86400)
);
comment on table public.notification_kinds is
  'The kinds of notification members can route: default channels (in_app, discord_dm, email, push) for members '
  'who chose none, and collapse_seconds: a notification of this kind that comes within that many seconds of the '
  'last one sent on a channel waits for the end of that window and is merged with any others that arrive '
  'meanwhile (one message for a burst of level-ups). Kinds without a row go in-app only.';

insert into public.notification_kinds (kind, description, default_channels, collapse_seconds) values
  ('level_up', 'You reached a new level', '{in_app,discord_dm,push}', 300),
  ('tier_up', 'You reached a new tier (tools unlocked)', '{in_app,discord_dm,email,push}', 0),
  ('layer_status_up', 'Your reality or cyber status went up', '{in_app,discord_dm}', 300),
  ('streak_milestone', 'Your check-in streak reached a milestone', '{in_app,discord_dm,push}', 0),
  ('streak_reminder', 'Your streak ends tonight unless you check in', '{in_app,discord_dm,push}', 0),
  ('season_result', 'A season ended: your rank and rewards', '{in_app,discord_dm,email,push}', 0),
  ('redemption_update', 'A reward redemption changed state', '{in_app,email,push}', 0),
  ('review_session', 'A resume review was booked, moved or cancelled', '{in_app,email,push}', 0)
on conflict (kind) do nothing;

create table public.notification_preferences (
  profile_id uuid primary key references public.profiles (id),
  channels jsonb not null default '{}' check (jsonb_typeof(channels) = 'object'),
  quiet_hours_start time,
  quiet_hours_end time,
  streak_reminder_at time,
  updated_at timestamptz not null default now(),
  check ((quiet_hours_start is null) = (quiet_hours_end is null))
);
comment on table public.notification_preferences is
  'One member''s notification routing: channels {kind: [channel, ...]} (kinds not named use the kind''s '
  'default_channels), quiet hours as local times in the profile''s time_zone (deliveries wait until they end), '
  'and the local time of the daily streak reminder (default 20:00). Written by set_notification_preferences.';

create table public.push_devices (
  id bigint generated always as identity primary key,
  profile_id uuid not null references public.profiles (id),
  platform text not null check (platform in ('fcm', 'webpush')),
  token text not null check (length(token) between 1 and 4096),
  p256dh text check (length(p256dh) <= 200),
  auth text check (length(auth) <= 64),
  created_at timestamptz not null default now(),
  last_seen_at timestamptz not null default now(),
  unique (platform, token),
  check ((platform = 'webpush') = (p256dh is not null and auth is not null))
);
comment on table public.push_devices is
  'Devices that receive a member''s push notifications: FCM registration tokens (apps) and Web Push '
  'subscriptions (browsers: the endpoint in token, with its p256dh and auth keys). Registered with '
  'register_push_device; a token FCM reports UNREGISTERED (or an endpoint that answers 404/410) is deleted.';
create index push_devices_profile_id_idx on public.push_devices (profile_id);

create table private.deliveries (
  id bigint generated always as identity primary key,
  notification_id bigint not null references public.notifications (id) on delete cascade,
  profile_id uuid not null references public.profiles (id),
  kind text not null,
  channel text not null check (channel in ('fcm', 'webpush', 'email', 'discord_dm')),
  target text not null check (length(target) between 1 and 4096),
  device_id bigint references public.push_devices (id) on delete set null,
  state text not null default 'pending' check (state in ('pending', 'sending', 'sent', 'dead', 'dropped')),
  attempts integer not null default 0 check (attempts >= 0),
  next_attempt_at timestamptz not null default now(),
  claimed_at timestamptz,
  sent_at timestamptz,
  last_error text check (length(last_error) <= 1000),
  collapsed integer not null default 0 check (collapsed >= 0),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
comment on table private.deliveries is
  'The outbox: one notification to deliver on one channel (fcm, webpush, email, discord_dm) to one target '
  '(device token or endpoint, address, Discord user id). pending -> sending (claimed, attempts counted) -> sent, '
  'or back to pending with next_attempt_at (backoff, Retry-After, quiet hours), or dead after the last attempt '
  'or a permanent error; dropped when its device was pruned. collapsed counts the notifications merged into it.';
create index deliveries_due_idx on private.deliveries (next_attempt_at) where state in ('pending', 'sending');
create index deliveries_open_idx on private.deliveries (profile_id, kind, channel, target)
  where state in ('pending', 'sending');
create index deliveries_sent_idx on private.deliveries (profile_id, kind, channel, target, sent_at desc)
  where state = 'sent';
create index deliveries_notification_id_idx on private.deliveries (notification_id);
create index deliveries_device_id_idx on private.deliveries (device_id) where device_id is not null;
create index deliveries_dead_idx on private.deliveries (updated_at desc) where state = 'dead';

-- One streak reminder per member and local day, however often and wherever the job runs.
create unique index notifications_streak_reminder_day_idx on public.notifications (profile_id, (data ->> 'local_date'))
  where kind = 'streak_reminder';

-- Kinds are configuration: everyone reads them, only the backend changes them.
alter table public.notification_kinds enable row level security;
revoke all on public.notification_kinds from anon, authenticated, service_role;
grant select on public.notification_kinds to anon, authenticated, service_role;
grant insert, update, delete on public.notification_kinds to service_role;
create policy "Anyone can read notification kinds." on public.notification_kinds
  for select to anon, authenticated, service_role using (true);
create policy "The backend can add notification kinds." on public.notification_kinds
  for insert to service_role with check (true);
create policy "The backend can change notification kinds." on public.notification_kinds
  for update to service_role using (true) with check (true);
create policy "The backend can remove notification kinds." on public.notification_kinds
  for delete to service_role using (true);

-- Preferences: a member reads their own (writes go through set_notification_preferences); the backend reads all.
alter table public.notification_preferences enable row level security;
revoke all on public.notification_preferences from anon, authenticated, service_role;
grant select on public.notification_preferences to authenticated, service_role;
create policy "Members can read their own notification preferences." on public.notification_preferences
  for select to authenticated using (profile_id = (select auth.uid()));
create policy "The backend can read notification preferences." on public.notification_preferences
  for select to service_role using (true);

-- Devices: a member reads and removes their own (registration goes through register_push_device).
alter table public.push_devices enable row level security;
revoke all on public.push_devices from anon, authenticated, service_role;
grant select, delete on public.push_devices to authenticated;
grant select on public.push_devices to service_role;
create policy "Members can read their own devices." on public.push_devices
  for select to authenticated using (profile_id = (select auth.uid()));
create policy "Members can remove their own devices." on public.push_devices
  for delete to authenticated using (profile_id = (select auth.uid()));
create policy "The backend can read devices." on public.push_devices
  for select to service_role using (true);

-- The outbox is reached only through its functions.
alter table private.deliveries enable row level security;
revoke all on private.deliveries from anon, authenticated, service_role;
