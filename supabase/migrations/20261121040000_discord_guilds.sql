-- The Discord bot's per-guild configuration.
--
-- A community admin configures the bot from Discord (Manage Server): where
-- level-ups are announced, channels and roles that earn no XP, and roles
-- granted at a level or tier. The rules that use this configuration live in
-- the database (functions.sql, section "The Discord bot"), so the bot only
-- reports what happened in Discord and applies what the database decides.
-- XP multipliers per Discord role and channel are rows of public.multipliers;
-- this migration adds the guild that owns such a row so a guild can list and
-- replace its own.
--
-- Discord ids (snowflakes) are stored as text: they do not fit every JSON
-- client's numbers and they are what award contexts carry (role_ids,
-- channel_id). Only the bot writes these tables, through service_role RPCs;
-- members and anon have no access.

create table public.discord_guilds (
  guild_id text primary key check (guild_id ~ '^[0-9]{1,20}$'),
  announce_mode text not null default 'current'
    check (announce_mode in ('channel', 'current', 'dm', 'off')),
  announce_channel_id text check (announce_channel_id ~ '^[0-9]{1,20}$'),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  check (announce_mode <> 'channel' or announce_channel_id is not null)
);
comment on table public.discord_guilds is
  'One row per Discord guild (server) the bot was configured in. announce_mode says where level-ups and '
  'tier-ups are announced: channel (announce_channel_id), current (the channel where the XP was earned; '
  'announce_channel_id, when set, for XP earned elsewhere), dm, or off. A guild without a row uses the defaults.';

create table public.discord_no_xp_targets (
  guild_id text not null references public.discord_guilds (guild_id) on delete cascade,
  kind text not null check (kind in ('channel', 'role')),
  target_id text not null check (target_id ~ '^[0-9]{1,20}$'),
  created_at timestamptz not null default now(),
  primary key (guild_id, kind, target_id)
);
comment on table public.discord_no_xp_targets is
  'Channels (messages and voice, threads by their parent) and roles of a guild that earn no passive XP.';

create table public.discord_role_rewards (
  guild_id text not null references public.discord_guilds (guild_id) on delete cascade,
  role_id text not null check (role_id ~ '^[0-9]{1,20}$'),
  min_level integer check (min_level >= 1),
  tier_slug text references public.tiers (slug) on update cascade on delete cascade,
  created_at timestamptz not null default now(),
  primary key (guild_id, role_id),
  check (num_nonnulls(min_level, tier_slug) = 1)
);
comment on table public.discord_role_rewards is
  'Discord roles a member holds while at or above a level (min_level) or a tier (tier_slug, by the tier''s '
  'min_level). Rewards stack: a member holds every reward role they qualify for and none of the others.';
create index discord_role_rewards_tier_slug_idx on public.discord_role_rewards (tier_slug);

alter table public.multipliers add column discord_guild_id text
  references public.discord_guilds (guild_id) on delete cascade;
comment on column public.multipliers.discord_guild_id is
  'The Discord guild whose admins manage this role or channel multiplier (null for multipliers made elsewhere).';
create unique index multipliers_discord_target_key on public.multipliers (discord_guild_id, kind, match_value)
  where discord_guild_id is not null;

alter table public.discord_guilds enable row level security;
alter table public.discord_no_xp_targets enable row level security;
alter table public.discord_role_rewards enable row level security;
revoke all on public.discord_guilds, public.discord_no_xp_targets, public.discord_role_rewards
  from anon, authenticated, service_role;
grant select on public.discord_guilds, public.discord_no_xp_targets, public.discord_role_rewards to service_role;

-- /botstats counts today's passive awards per activity without scanning the whole ledger.
create index xp_ledger_activity_occurred_idx on public.xp_ledger (activity_slug, occurred_at) where amount > 0;
