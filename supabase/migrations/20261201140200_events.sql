-- Events and dungeons gated by layers (issue 15, item 4), and layer status as a multiplier kind.
--
-- Why: iGoUltra's layer status is "used for event and dungeon access"; until now it gated nothing.
-- An event belongs to a layer (a dungeon is an event of the cyber layer) and may require a minimum
-- status in that layer, a level and/or a tier; sign-up below the gate is refused with the reason.
-- capacity places are confirmed in sign-up order, the rest wait in line and move up when someone
-- leaves. Attendance (the event's check-in code, or a reviewer) awards event_attendance once.
-- The check-in code is kept hashed in a private table (events are readable by anyone).
-- Multipliers get the kind layer_status: match_value '<layer>:<status>' matches members who hold that
-- status (profile_layers), so a status can carry an XP factor.
-- Functions: supabase/sql/40_events.sql (migration 20261201161415).

create table public.events (
  id bigint generated always as identity primary key,
  title text not null check (length(title) between 1 and 120),
  description text not null default '' check (length(description) <= 2000),
  layer_slug text not null references public.layers (slug) on update cascade,
  min_status text,
  min_level integer check (min_level between 1 and 1000),
  min_tier text references public.tiers (slug) on update cascade,
  capacity integer check (capacity between 1 and 100000),
  starts_at timestamptz not null,
  ends_at timestamptz not null,
  location text check (length(location) between 1 and 200),
  online_url text check (length(online_url) <= 500 and online_url ~ '^https://[^[:space:]]+$'),
  xp integer not null default 50 check (xp between 10 and 500),
  cancelled boolean not null default false,
  created_by uuid references public.profiles (id),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  foreign key (layer_slug, min_status) references public.layer_statuses (layer_slug, slug) on update cascade,
  check (starts_at < ends_at),
  check (location is not null or online_url is not null)
);
comment on table public.events is
  'Live events of a layer (a dungeon is an event of the cyber layer): title, description, the gate (min_status '
  'in the event''s layer, min_level, min_tier; any may be null), capacity (null: no limit), [starts_at, ends_at) '
  'in UTC, a place (location) and/or online_url, and the XP attendance awards (event_attendance). Sign-up '
  'closes when the event starts.';
create index events_starts_at_idx on public.events (starts_at);
create index events_layer_idx on public.events (layer_slug, starts_at);
create index events_min_status_idx on public.events (layer_slug, min_status);
create index events_min_tier_idx on public.events (min_tier);
create index events_created_by_idx on public.events (created_by);

create table private.event_check_in_codes (
  event_id bigint primary key references public.events (id) on delete cascade,
  code_hash bytea not null check (length(code_hash) = 32)
);
comment on table private.event_check_in_codes is 'The sha256 of an event''s check-in code (the code is shown once).';

create table public.event_signups (
  event_id bigint not null references public.events (id) on delete cascade,
  profile_id uuid not null references public.profiles (id),
  status text not null check (status in ('confirmed', 'waitlisted', 'cancelled')),
  signed_up_at timestamptz not null default now(),
  confirmed_at timestamptz,
  attended_at timestamptz,
  ledger_id bigint,
  primary key (event_id, profile_id),
  check (attended_at is null or status = 'confirmed')
);
comment on table public.event_signups is
  'Sign-ups: confirmed (holds a place), waitlisted (in line by signed_up_at) or cancelled; attended_at and the '
  'ledger row of the attendance award once attendance is recorded.';
create index event_signups_profile_idx on public.event_signups (profile_id);
create index event_signups_line_idx on public.event_signups (event_id, status, signed_up_at);

insert into public.notification_kinds (kind, description, default_channels, collapse_seconds) values
  ('event_place', 'A place at an event you waited for is yours', '{in_app,discord_dm,push}', 0)
on conflict (kind) do nothing;

alter table public.multipliers drop constraint multipliers_kind_check;
alter table public.multipliers add constraint multipliers_kind_check
  check (kind in ('role', 'channel', 'event', 'layer_status'));
comment on table public.multipliers is
  'XP multipliers. kind role matches a Discord role id in context.role_ids, channel matches context.channel_id, '
  'event matches context.event_id (or every award when match_value is null), layer_status matches '
  '''<layer>:<status>'' held by the member (profile_layers) before the award, while occurred_at is in '
  '[starts_at, ends_at). Stacking rule: within one kind only the largest matching factor counts; the kinds '
  'multiply; the product is capped at engine_settings.max_multiplier. Multipliers only scale positive amounts.';

------------------------------------------------------------------------------
-- Row-level security and grants
------------------------------------------------------------------------------

alter table public.events enable row level security;
revoke all on public.events from anon, authenticated, service_role;
grant select on public.events to anon, authenticated, service_role;
create policy "Anyone can read the events." on public.events for select to anon, authenticated using (true);

alter table private.event_check_in_codes enable row level security;
revoke all on private.event_check_in_codes from anon, authenticated, service_role;

alter table public.event_signups enable row level security;
revoke all on public.event_signups from anon, authenticated, service_role;
grant select on public.event_signups to authenticated, service_role;
create policy "Members and admins can read sign-ups." on public.event_signups
  for select to authenticated using (
    profile_id = (select auth.uid())
    or exists (select 1 from public.profiles p where p.id = (select auth.uid()) and p.role = 'admin')
  );
