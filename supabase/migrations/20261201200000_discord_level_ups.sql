-- The Discord bot's own queue of level-ups (issue 17, "a bot laid out like RoboDanny"): one row per level_up
-- or tier_up notification of a member with a Discord identity, written by a trigger on public.notifications in
-- the notification's transaction (supabase/sql/91_discord_members.sql), with the guild and channel where the
-- XP was earned (the ledger row's context). The bot claims rows (a lease, for update skip locked), applies
-- reward roles and posts the announcement, and finishes them (the row is deleted). It replaces the bot's
-- in-memory list of its own idempotency keys and its 0.5 s delay: the notification is the one source.

create table private.discord_level_ups (
  notification_id bigint primary key references public.notifications (id) on delete cascade,
  kind text not null check (kind in ('level_up', 'tier_up')),
  ledger_id bigint,
  user_id text not null check (user_id ~ '^[0-9]{1,20}$'),
  guild_id text check (guild_id ~ '^[0-9]{1,20}$'),
  channel_id text check (channel_id ~ '^[0-9]{1,20}$'),
  attempts integer not null default 0 check (attempts >= 0),
  claimed_at timestamptz,
  created_at timestamptz not null default now(),
  check (channel_id is null or guild_id is not null)
);
comment on table private.discord_level_ups is
  'Level-ups and tier-ups the Discord bot has still to act on (reward roles, announcement): the notification, '
  'its award''s ledger row (a level_up and a tier_up of one award share it and are claimed together), the '
  'member''s Discord user id, and the guild and channel the XP was earned in (null when it was earned outside '
  'Discord). claimed_at is set by a claim (attempts counted); a finished row is deleted; a row whose lease '
  'ran out is claimed again. Rows go with their notification (retention).';
create index discord_level_ups_ledger_id_idx on private.discord_level_ups (ledger_id);

-- Reached only through its functions.
alter table private.discord_level_ups enable row level security;
revoke all on private.discord_level_ups from anon, authenticated, service_role;
