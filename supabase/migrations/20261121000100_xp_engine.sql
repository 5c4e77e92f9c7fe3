-- The XP engine: profiles and identities, the rule configuration (activity
-- types, cap groups, multipliers, level curve, tiers and unlocks, layers and
-- layer statuses), the append-only ledger, cached totals per layer and season,
-- and notifications.
--
-- Rules are data: seed.sql loads the defaults and a community changes rows,
-- never code. Every decision is made by the functions in functions.sql; this
-- file only holds shapes, constraints, grants and row-level security.

------------------------------------------------------------------------------
-- Configuration
------------------------------------------------------------------------------

create table public.engine_settings (
  id boolean primary key default true check (id),
  max_multiplier numeric(6, 3) not null default 5 check (max_multiplier >= 1),
  points_per_xp numeric(8, 4) not null default 1 check (points_per_xp >= 0),
  default_layer text not null default 'cyber',
  updated_at timestamptz not null default now()
);
comment on table public.engine_settings is
  'Engine-wide settings, one row. max_multiplier caps the product of all multipliers; '
  'points_per_xp is how many spendable points each positive XP grant credits; '
  'default_layer receives admin corrections that name no layer.';

create table public.layers (
  slug text primary key check (slug ~ '^[a-z][a-z0-9_]{0,31}$'),
  name text not null check (length(name) between 1 and 64),
  description text not null default '',
  position integer not null default 0
);
comment on table public.layers is 'The two worlds XP is earned in (reality, cyber); every activity belongs to one.';

create table public.layer_statuses (
  layer_slug text not null references public.layers (slug) on update cascade,
  slug text not null check (slug ~ '^[a-z][a-z0-9_]{0,31}$'),
  name text not null check (length(name) between 1 and 64),
  min_xp bigint not null check (min_xp >= 0),
  primary key (layer_slug, slug),
  unique (layer_slug, min_xp)
);
comment on table public.layer_statuses is
  'Status ladder per layer: a profile holds the status with the highest min_xp not above its layer XP. '
  'Each layer needs a status at min_xp 0. Gates events and dungeons.';

create table public.cap_groups (
  slug text primary key check (slug ~ '^[a-z][a-z0-9_]{0,31}$'),
  daily_cap integer not null check (daily_cap > 0),
  time_zone text not null default 'UTC',
  description text not null default ''
);
comment on table public.cap_groups is
  'Daily XP caps: the positive XP one profile may earn per local day (in time_zone, an IANA name) '
  'from all activities of the group together. An award that would cross the cap is granted up to it.';

create table public.activity_types (
  slug text primary key check (slug ~ '^[a-z][a-z0-9_]{0,63}$'),
  name text not null check (length(name) between 1 and 100),
  description text not null default '',
  layer_slug text not null references public.layers (slug) on update cascade,
  base_xp integer not null,
  min_xp integer,
  max_xp integer,
  cooldown_seconds integer not null default 0 check (cooldown_seconds >= 0),
  cap_group text references public.cap_groups (slug) on update cascade,
  active boolean not null default true,
  check ((min_xp is null) = (max_xp is null)),
  check (min_xp is null or (min_xp <= base_xp and base_xp <= max_xp))
);
comment on table public.activity_types is
  'What earns XP. base_xp is granted when the caller names no amount; with min_xp/max_xp set the caller '
  'may name any amount in that range (a bounded range), otherwise the amount is fixed. cooldown_seconds is '
  'per profile and activity; cap_group null means the activity is exempt from daily caps.';
create index activity_types_cap_group_idx on public.activity_types (cap_group);
create index activity_types_layer_slug_idx on public.activity_types (layer_slug);

create table public.multipliers (
  id bigint generated always as identity primary key,
  kind text not null check (kind in ('role', 'channel', 'event')),
  match_value text,
  activity_slug text references public.activity_types (slug) on update cascade on delete cascade,
  factor numeric(6, 3) not null check (factor > 0 and factor <= 100),
  starts_at timestamptz,
  ends_at timestamptz,
  description text not null default '',
  check (kind = 'event' or match_value is not null),
  check (starts_at is null or ends_at is null or starts_at < ends_at)
);
comment on table public.multipliers is
  'XP multipliers. kind role matches a Discord role id in context.role_ids, channel matches context.channel_id, '
  'event matches context.event_id (or every award when match_value is null) while occurred_at is in '
  '[starts_at, ends_at). Stacking rule: within one kind only the largest matching factor counts; the kinds '
  'multiply; the product is capped at engine_settings.max_multiplier. Multipliers only scale positive amounts.';
create index multipliers_kind_match_idx on public.multipliers (kind, match_value);
create index multipliers_activity_slug_idx on public.multipliers (activity_slug);

create table public.level_curve (
  level integer primary key check (level >= 1),
  xp_required bigint not null unique check (xp_required >= 0)
);
comment on table public.level_curve is
  'Total XP needed to reach each level. Level 1 must be at 0 XP. The default is 100*(L-1)^2 + 50*(L-1) up to '
  'level 100 (seed.sql); load another curve (e.g. MEE6) by replacing the rows.';

create table public.tiers (
  slug text primary key check (slug ~ '^[a-z][a-z0-9_]{0,31}$'),
  name text not null check (length(name) between 1 and 64),
  min_level integer not null unique check (min_level >= 1),
  max_level integer not null check (max_level >= min_level)
);
comment on table public.tiers is 'Tiers by level range (Basic 1-10, Member 11-25, Advanced 26-50, Elite 51-75, Master 76-100).';

create table public.tier_unlocks (
  tier_slug text not null references public.tiers (slug) on update cascade on delete cascade,
  slug text not null check (slug ~ '^[a-z][a-z0-9_]{0,63}$'),
  name text not null check (length(name) between 1 and 100),
  description text not null default '',
  position integer not null default 0,
  primary key (tier_slug, slug)
);
comment on table public.tier_unlocks is 'Tools and perks a tier unlocks; reaching the tier unlocks them for good.';

------------------------------------------------------------------------------
-- Profiles and identities
------------------------------------------------------------------------------

create table public.profiles (
  id uuid primary key default gen_random_uuid(),
  display_name text not null check (length(display_name) between 1 and 64),
  bio text not null default '' check (length(bio) <= 500),
  avatar_url text check (avatar_url is null or (avatar_url ~ '^https://' and length(avatar_url) <= 500)),
  social_links jsonb not null default '{}' check (jsonb_typeof(social_links) = 'object' and length(social_links::text) <= 2000),
  time_zone text not null default 'UTC' check (length(time_zone) <= 64),
  leaderboard_visible boolean not null default true,
  role text not null default 'member' check (role in ('member', 'admin')),
  xp bigint not null default 0 check (xp >= 0),
  level integer not null default 1,
  tier text references public.tiers (slug) on update cascade,
  points bigint not null default 0 check (points >= 0),
  xp_reached_at timestamptz not null default now(),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
comment on table public.profiles is
  'One row per member. xp, level, tier and points are cached from the ledger by the engine and can only change '
  'through its functions; members edit display_name, bio, avatar_url, social_links, time_zone and '
  'leaderboard_visible of their own row. xp_reached_at is when xp last changed (the leaderboard tie rule).';
create index profiles_xp_idx on public.profiles (xp desc, xp_reached_at asc, id) where leaderboard_visible;

create table public.identities (
  id bigint generated always as identity primary key,
  profile_id uuid not null references public.profiles (id),
  provider text not null check (provider ~ '^[a-z][a-z0-9_.:-]{0,63}$'),
  subject text not null check (length(subject) between 1 and 255),
  created_at timestamptz not null default now(),
  unique (provider, subject)
);
comment on table public.identities is 'Maps an external account (provider, subject) to a profile: discord, github, google, importers.';
create index identities_profile_id_idx on public.identities (profile_id);

create table public.profile_layers (
  profile_id uuid not null references public.profiles (id),
  layer_slug text not null references public.layers (slug) on update cascade,
  xp bigint not null default 0 check (xp >= 0),
  status text not null,
  reached_at timestamptz not null default now(),
  primary key (profile_id, layer_slug)
);
comment on table public.profile_layers is 'XP and layer status of a profile per layer, cached from the ledger.';
create index profile_layers_layer_xp_idx on public.profile_layers (layer_slug, xp desc, reached_at asc);

------------------------------------------------------------------------------
-- Seasons
------------------------------------------------------------------------------

create table public.seasons (
  id bigint generated always as identity primary key,
  layer_slug text not null references public.layers (slug) on update cascade,
  name text not null,
  starts_at timestamptz not null,
  ends_at timestamptz not null check (ends_at > starts_at),
  finalized_at timestamptz,
  unique (layer_slug, starts_at)
);
comment on table public.seasons is 'Monthly seasons per layer (UTC month boundaries); created by the engine when the first award lands in one.';

create table public.season_scores (
  season_id bigint not null references public.seasons (id),
  profile_id uuid not null references public.profiles (id),
  xp bigint not null default 0 check (xp >= 0),
  reached_at timestamptz not null default now(),
  primary key (season_id, profile_id)
);
comment on table public.season_scores is 'XP a profile earned in a season, from the occurred_at of each award.';
create index season_scores_rank_idx on public.season_scores (season_id, xp desc, reached_at asc);
create index season_scores_profile_id_idx on public.season_scores (profile_id);

------------------------------------------------------------------------------
-- The ledger
------------------------------------------------------------------------------

create table public.xp_ledger (
  id bigint generated always as identity primary key,
  profile_id uuid not null references public.profiles (id),
  activity_slug text not null references public.activity_types (slug) on update cascade,
  layer_slug text not null references public.layers (slug) on update cascade,
  season_id bigint references public.seasons (id),
  amount integer not null,
  season_amount integer not null default 0,
  points integer not null default 0,
  occurred_at timestamptz not null,
  recorded_at timestamptz not null default now(),
  idempotency_key text not null check (length(idempotency_key) between 1 and 200),
  actor_id uuid references public.profiles (id),
  actor_role text not null,
  reason text,
  reverses_id bigint references public.xp_ledger (id),
  request jsonb not null default '{}',
  receipt jsonb not null default '{}',
  unique (idempotency_key, layer_slug)
);
comment on table public.xp_ledger is
  'Append-only record of every award decision: one row per idempotency key (a correction that touches '
  'several layers writes one row per layer under the same key), amount being the XP actually '
  'granted (0 when a cooldown or cap held it back, negative for penalties and corrections). No role may update '
  'or delete rows; profiles.xp always equals the sum of amount. request holds the call''s parameters (to '
  'detect a reused key), receipt what the caller was told. season_amount is the part of amount applied to the '
  'season score (a correction never takes a season below zero), so season_scores.xp = sum(season_amount).';
create index xp_ledger_profile_occurred_idx on public.xp_ledger (profile_id, occurred_at desc);
create index xp_ledger_cooldown_idx on public.xp_ledger (profile_id, activity_slug, occurred_at desc) where amount > 0;
create index xp_ledger_actor_id_idx on public.xp_ledger (actor_id) where actor_id is not null;
create index xp_ledger_reverses_id_idx on public.xp_ledger (reverses_id) where reverses_id is not null;
create index xp_ledger_season_id_idx on public.xp_ledger (season_id);

create table private.daily_cap_usage (
  profile_id uuid not null references public.profiles (id),
  cap_group text not null references public.cap_groups (slug) on update cascade,
  day date not null,
  used integer not null default 0,
  primary key (profile_id, cap_group, day)
);
comment on table private.daily_cap_usage is 'Net XP each profile earned per cap group and local day; the engine''s cap counter.';

------------------------------------------------------------------------------
-- Notifications
------------------------------------------------------------------------------

create table public.notifications (
  id bigint generated always as identity primary key,
  profile_id uuid not null references public.profiles (id),
  kind text not null check (kind ~ '^[a-z][a-z0-9_]{0,63}$'),
  title text not null,
  body text not null default '',
  data jsonb not null default '{}',
  created_at timestamptz not null default now(),
  read_at timestamptz
);
comment on table public.notifications is
  'Messages to one member (level_up, tier_up, layer_status_up, ...). Every insert is also sent with '
  'pg_notify on channel xpbase_notifications as {"id", "profile_id", "kind"}.';
create index notifications_profile_created_idx on public.notifications (profile_id, created_at desc);

------------------------------------------------------------------------------
-- Row-level security and grants
------------------------------------------------------------------------------

-- Configuration: public reading, service_role writing.
alter table public.engine_settings enable row level security;
alter table public.layers enable row level security;
alter table public.layer_statuses enable row level security;
alter table public.cap_groups enable row level security;
alter table public.activity_types enable row level security;
alter table public.multipliers enable row level security;
alter table public.level_curve enable row level security;
alter table public.tiers enable row level security;
alter table public.tier_unlocks enable row level security;
alter table public.seasons enable row level security;

revoke all on public.engine_settings, public.layers, public.layer_statuses, public.cap_groups,
  public.activity_types, public.multipliers, public.level_curve, public.tiers, public.tier_unlocks,
  public.seasons
  from anon, authenticated, service_role;
grant select on public.engine_settings, public.layers, public.layer_statuses, public.cap_groups,
  public.activity_types, public.multipliers, public.level_curve, public.tiers, public.tier_unlocks,
  public.seasons
  to anon, authenticated;
grant select, insert, update, delete on public.engine_settings, public.layers, public.layer_statuses,
  public.cap_groups, public.activity_types, public.multipliers, public.level_curve, public.tiers,
  public.tier_unlocks
  to service_role;
grant select on public.seasons to service_role;
grant usage on sequence public.multipliers_id_seq to service_role;

create policy "Anyone can read the engine settings." on public.engine_settings for select to anon, authenticated using (true);
create policy "Anyone can read the layers." on public.layers for select to anon, authenticated using (true);
create policy "Anyone can read the layer statuses." on public.layer_statuses for select to anon, authenticated using (true);
create policy "Anyone can read the cap groups." on public.cap_groups for select to anon, authenticated using (true);
create policy "Anyone can read the activity types." on public.activity_types for select to anon, authenticated using (true);
create policy "Anyone can read the multipliers." on public.multipliers for select to anon, authenticated using (true);
create policy "Anyone can read the level curve." on public.level_curve for select to anon, authenticated using (true);
create policy "Anyone can read the tiers." on public.tiers for select to anon, authenticated using (true);
create policy "Anyone can read the tier unlocks." on public.tier_unlocks for select to anon, authenticated using (true);
create policy "Anyone can read the seasons." on public.seasons for select to anon, authenticated using (true);

-- Profiles: members read their own row and the rows of members who show
-- themselves on leaderboards; anon reads only what a public leaderboard shows.
alter table public.profiles enable row level security;
revoke all on public.profiles from anon, authenticated, service_role;
grant select (id, display_name, avatar_url, xp, level, tier, xp_reached_at) on public.profiles to anon;
grant select on public.profiles to authenticated, service_role;
grant update (display_name, bio, avatar_url, social_links, time_zone, leaderboard_visible) on public.profiles to authenticated;
grant update (display_name, bio, avatar_url, social_links, time_zone, leaderboard_visible, role) on public.profiles to service_role;

create policy "Anon can read profiles shown on leaderboards." on public.profiles
  for select to anon using (leaderboard_visible);
create policy "Members can read their own profile and visible profiles." on public.profiles
  for select to authenticated using (id = (select auth.uid()) or leaderboard_visible);
create policy "Members can update their own profile." on public.profiles
  for update to authenticated using (id = (select auth.uid())) with check (id = (select auth.uid()));

-- Identities: a member sees their own linked accounts.
alter table public.identities enable row level security;
revoke all on public.identities from anon, authenticated, service_role;
grant select on public.identities to authenticated, service_role;
create policy "Members can read their own identities." on public.identities
  for select to authenticated using (profile_id = (select auth.uid()));

-- Per-layer and per-season totals: read like profiles.
alter table public.profile_layers enable row level security;
revoke all on public.profile_layers from anon, authenticated, service_role;
grant select on public.profile_layers to anon, authenticated, service_role;
-- Anon may not read profiles.leaderboard_visible (only the leaderboard columns),
-- so the anon policies ask whether the profile is visible to the caller at all:
-- the profiles policy for anon shows only visible rows.
create policy "Anon can read layer totals of visible profiles." on public.profile_layers
  for select to anon using (
    exists (select 1 from public.profiles p where p.id = profile_id)
  );
create policy "Members can read their own and visible layer totals." on public.profile_layers
  for select to authenticated using (
    profile_id = (select auth.uid())
    or exists (select 1 from public.profiles p where p.id = profile_id and p.leaderboard_visible)
  );

alter table public.season_scores enable row level security;
revoke all on public.season_scores from anon, authenticated, service_role;
grant select on public.season_scores to anon, authenticated, service_role;
create policy "Anon can read season scores of visible profiles." on public.season_scores
  for select to anon using (
    exists (select 1 from public.profiles p where p.id = profile_id)  -- visible rows only, as above
  );
create policy "Members can read their own and visible season scores." on public.season_scores
  for select to authenticated using (
    profile_id = (select auth.uid())
    or exists (select 1 from public.profiles p where p.id = profile_id and p.leaderboard_visible)
  );

-- The ledger: members read their own rows; nobody writes except the engine.
alter table public.xp_ledger enable row level security;
revoke all on public.xp_ledger from anon, authenticated, service_role;
grant select on public.xp_ledger to authenticated, service_role;
create policy "Members can read their own ledger." on public.xp_ledger
  for select to authenticated using (profile_id = (select auth.uid()));

alter table private.daily_cap_usage enable row level security;
revoke all on private.daily_cap_usage from anon, authenticated, service_role;

-- Notifications: a member reads their own and marks them read.
alter table public.notifications enable row level security;
revoke all on public.notifications from anon, authenticated, service_role;
grant select on public.notifications to authenticated, service_role;
grant update (read_at) on public.notifications to authenticated;
create policy "Members can read their own notifications." on public.notifications
  for select to authenticated using (profile_id = (select auth.uid()));
create policy "Members can mark their own notifications read." on public.notifications
  for update to authenticated using (profile_id = (select auth.uid())) with check (profile_id = (select auth.uid()));
