-- Streaks, seasons, leaderboards and live chat (issue 4).
--
-- Adds what the daily game needs on top of the XP engine:
-- - check-in rules as data (the default 5 XP x streak day with a cap, and the
--   Discord Bot Hub rule of 50 XP + 10 XP per streak day as an alternative a
--   community switches to with one update), each member's streak state and
--   one row per check-in (the per-day uniqueness that makes a check-in once);
-- - season rules per layer (length, anchor, time zone, reward activity), the
--   rewards for the top ranks, and the frozen final standings of each season;
-- - activity_types.counts_for_season, so that season rewards do not count
--   towards the next season's race;
-- - leaderboard indexes shaped like the queries (order, then tie rule, then id);
-- - the global chat table and its settings (length limit and rate limit are
--   decided in SQL).
-- Every decision is in functions.sql; this file holds shapes, grants and RLS.

------------------------------------------------------------------------------
-- Check-ins and streaks
------------------------------------------------------------------------------

create table public.check_in_rules (
  slug text primary key check (slug ~ '^[a-z][a-z0-9_]{0,31}$'),
  name text not null check (length(name) between 1 and 64),
  description text not null default '',
  activity_slug text not null references public.activity_types (slug) on update cascade,
  daily_xp integer not null default 0 check (daily_xp >= 0),
  xp_per_streak_day integer not null default 5 check (xp_per_streak_day >= 0),
  max_xp integer check (max_xp is null or max_xp >= 0),
  max_freezes_held integer not null default 2 check (max_freezes_held between 0 and 100),
  freeze_every_days integer not null default 7 check (freeze_every_days between 1 and 3650),
  milestone_days integer[] not null default '{3, 7, 14, 30, 50, 100, 365}'
);
comment on table public.check_in_rules is
  'How a daily check-in is rewarded. XP for streak day n = least(daily_xp + xp_per_streak_day * n, max_xp) '
  '(max_xp null: no cap), granted through award_xp as activity_slug. One streak freeze is earned each time the '
  'streak reaches a multiple of freeze_every_days, up to max_freezes_held. milestone_days (and every multiple of '
  'freeze_every_days) send a streak_milestone notification. engine_settings.check_in_rule picks the rule in use.';
create index check_in_rules_activity_slug_idx on public.check_in_rules (activity_slug);

alter table public.engine_settings
  add column check_in_rule text references public.check_in_rules (slug) on update cascade;
comment on column public.engine_settings.check_in_rule is
  'The check-in rule in use (public.check_in_rules.slug). Switch with: update public.engine_settings set check_in_rule = ''hub_bonus''.';

create table public.streaks (
  profile_id uuid primary key references public.profiles (id),
  current_streak integer not null default 0 check (current_streak >= 0),
  longest_streak integer not null default 0 check (longest_streak >= current_streak),
  freezes_held integer not null default 0 check (freezes_held >= 0),
  last_check_in_date date,
  updated_at timestamptz not null default now()
);
comment on table public.streaks is
  'Each member''s check-in streak: current and longest streak (days), streak freezes held, and the local date '
  '(in the profile''s time zone) of the last check-in. Written only by the check-in functions.';

create table public.check_ins (
  profile_id uuid not null references public.profiles (id),
  local_date date not null,
  time_zone text not null,
  checked_in_at timestamptz not null,
  streak integer not null check (streak >= 1),
  missed_days integer not null default 0 check (missed_days >= 0),
  freezes_used integer not null default 0 check (freezes_used >= 0),
  freeze_earned boolean not null default false,
  xp integer not null default 0,
  ledger_id bigint references public.xp_ledger (id),
  primary key (profile_id, local_date)
);
comment on table public.check_ins is
  'One row per member and local day checked in: the streak it made, the missed days it covered with freezes '
  '(or that broke the streak), the XP granted and the ledger row of that grant.';
create index check_ins_ledger_id_idx on public.check_ins (ledger_id);

------------------------------------------------------------------------------
-- Seasons: rules, rewards, final standings
------------------------------------------------------------------------------

alter table public.activity_types
  add column counts_for_season boolean not null default true;
comment on column public.activity_types.counts_for_season is
  'Whether XP of this activity adds to season scores. False for season rewards, so a season''s winners do not '
  'start the next race ahead.';

create table public.season_rules (
  layer_slug text primary key references public.layers (slug) on update cascade on delete cascade,
  length_unit text not null default 'month' check (length_unit in ('day', 'week', 'month')),
  length integer not null default 1 check (length between 1 and 120),
  anchor date not null default '2026-01-01',
  time_zone text not null default 'UTC' check (length(time_zone) <= 64),
  reward_activity text references public.activity_types (slug) on update cascade,
  check (length_unit <> 'month' or extract(day from anchor) = 1)
);
comment on table public.season_rules is
  'Season length per layer: seasons are length x length_unit long and start at local midnight of anchor + k '
  'lengths in time_zone (anchor must be the first of a month for monthly units). A layer without a row has '
  'monthly UTC seasons. reward_activity is the activity through which season rewards are granted. Changing a '
  'rule affects seasons created afterwards; existing seasons keep their bounds.';
create index season_rules_reward_activity_idx on public.season_rules (reward_activity);

create table public.season_rewards (
  layer_slug text not null references public.layers (slug) on update cascade on delete cascade,
  rank_from integer not null check (rank_from >= 1),
  rank_to integer not null,
  xp integer not null default 0 check (xp >= 0),
  points integer not null default 0 check (points >= 0),
  title text check (title is null or length(title) between 1 and 64),
  primary key (layer_slug, rank_from),
  check (rank_to >= rank_from)
);
comment on table public.season_rewards is
  'Rewards for final ranks rank_from..rank_to of a layer''s seasons: xp (granted through award_xp as the '
  'layer''s season_rules.reward_activity), extra points on top of those the XP credits, and a title.';

create table public.season_results (
  season_id bigint not null references public.seasons (id),
  profile_id uuid not null references public.profiles (id),
  rank integer not null check (rank >= 1),
  xp bigint not null check (xp >= 0),
  reward_xp integer not null default 0,
  reward_points integer not null default 0,
  title text,
  ledger_id bigint references public.xp_ledger (id),
  created_at timestamptz not null default now(),
  primary key (season_id, profile_id)
);
comment on table public.season_results is
  'Frozen final standings of a finalized season: every member with XP in it, ranked by the leaderboard tie rule '
  '(equal XP shares a rank), and the rewards granted. reward_points are credited to profiles.points besides '
  'the points the reward XP earns. Written once by finalize_seasons.';
create index season_results_profile_id_idx on public.season_results (profile_id);
create index season_results_rank_idx on public.season_results (season_id, rank);
create index season_results_ledger_id_idx on public.season_results (ledger_id);

create index seasons_unfinalized_idx on public.seasons (ends_at) where finalized_at is null;

------------------------------------------------------------------------------
-- Leaderboard indexes: the order of the board, then the tie rule, then id
------------------------------------------------------------------------------

create index profile_layers_board_idx on public.profile_layers (layer_slug, xp desc, reached_at, profile_id);
create index season_scores_board_idx on public.season_scores (season_id, xp desc, reached_at, profile_id);

------------------------------------------------------------------------------
-- Global chat
------------------------------------------------------------------------------

create table public.chat_settings (
  id boolean primary key default true check (id),
  max_length integer not null default 500 check (max_length between 1 and 1000),
  rate_limit_count integer not null default 5 check (rate_limit_count >= 1),
  rate_limit_seconds integer not null default 10 check (rate_limit_seconds >= 1),
  history_size integer not null default 50 check (history_size between 1 and 500)
);
comment on table public.chat_settings is
  'Global chat limits, one row: messages are 1..max_length characters after trimming; a member may post at most '
  'rate_limit_count messages per rate_limit_seconds; history_size messages are sent on connect.';

create table public.chat_messages (
  id bigint generated always as identity primary key,
  profile_id uuid not null references public.profiles (id),
  author_name text not null,
  body text not null check (length(body) between 1 and 1000),
  created_at timestamptz not null default now()
);
comment on table public.chat_messages is
  'Global chat messages. author_name is the display name when posted (so a hidden profile is never read to show '
  'it). Inserted only through post_chat_message; every insert is sent on channel xpbase_chat.';
create index chat_messages_profile_created_idx on public.chat_messages (profile_id, created_at desc);
create index chat_messages_created_idx on public.chat_messages (created_at desc, id desc);

------------------------------------------------------------------------------
-- Row-level security and grants
------------------------------------------------------------------------------

alter table public.check_in_rules enable row level security;
alter table public.season_rules enable row level security;
alter table public.season_rewards enable row level security;
alter table public.chat_settings enable row level security;
revoke all on public.check_in_rules, public.season_rules, public.season_rewards, public.chat_settings
  from anon, authenticated, service_role;
grant select on public.check_in_rules, public.season_rules, public.season_rewards, public.chat_settings
  to anon, authenticated;
grant select, insert, update, delete on public.check_in_rules, public.season_rules, public.season_rewards,
  public.chat_settings to service_role;
create policy "Anyone can read the check-in rules." on public.check_in_rules for select to anon, authenticated using (true);
create policy "Anyone can read the season rules." on public.season_rules for select to anon, authenticated using (true);
create policy "Anyone can read the season rewards." on public.season_rewards for select to anon, authenticated using (true);
create policy "Anyone can read the chat settings." on public.chat_settings for select to anon, authenticated using (true);

-- Streaks and check-ins: a member reads their own; only the functions write.
alter table public.streaks enable row level security;
revoke all on public.streaks from anon, authenticated, service_role;
grant select on public.streaks to authenticated, service_role;
create policy "Members can read their own streak." on public.streaks
  for select to authenticated using (profile_id = (select auth.uid()));

alter table public.check_ins enable row level security;
revoke all on public.check_ins from anon, authenticated, service_role;
grant select on public.check_ins to authenticated, service_role;
create policy "Members can read their own check-ins." on public.check_ins
  for select to authenticated using (profile_id = (select auth.uid()));

-- Final standings: read like season scores (hidden members only by themselves).
alter table public.season_results enable row level security;
revoke all on public.season_results from anon, authenticated, service_role;
grant select on public.season_results to anon, authenticated, service_role;
create policy "Anon can read season results of visible profiles." on public.season_results
  for select to anon using (
    exists (select 1 from public.profiles p where p.id = profile_id and p.leaderboard_visible)
  );
create policy "Members can read their own and visible season results." on public.season_results
  for select to authenticated using (
    profile_id = (select auth.uid())
    or exists (select 1 from public.profiles p where p.id = profile_id and p.leaderboard_visible)
  );

-- Chat: signed-in members read everything; posting only through the RPC.
alter table public.chat_messages enable row level security;
revoke all on public.chat_messages from anon, authenticated, service_role;
grant select on public.chat_messages to authenticated, service_role;
create policy "Members can read the chat." on public.chat_messages
  for select to authenticated using (true);

------------------------------------------------------------------------------
-- Leaderboards read profiles through RLS; the functions also name
-- leaderboard_visible (so that service_role, which bypasses RLS, gets the
-- public view), which anon may therefore read: it is true on every row anon sees.
------------------------------------------------------------------------------

grant select (leaderboard_visible) on public.profiles to anon;

-- The all-time board: one index in board order (XP, then who reached it first,
-- then id) that also carries the visibility flag, so counting the members ahead
-- of someone is an index-only scan for anon and members alike. It replaces the
-- engine's partial index, which members' policy (own row or visible) cannot use.
create index profiles_board_idx on public.profiles (xp desc, xp_reached_at, id) include (leaderboard_visible);
drop index public.profiles_xp_idx;

-- The row shape of the leaderboard RPCs (a type, because leaderboard_around
-- takes a profile_id parameter and returns a profile_id column).
create type public.leaderboard_entry as (
  rank bigint,
  profile_id uuid,
  display_name text,
  avatar_url text,
  xp bigint,
  level integer,
  tier text
);
comment on type public.leaderboard_entry is
  'One leaderboard row: rank (equal XP shares it), profile, display name, avatar, XP on the board, overall level and tier.';

------------------------------------------------------------------------------
-- Leaderboard counts: how many visible members each board has per XP bucket,
-- at 8 levels of 64-wide buckets (level L counts XP >> 6L). "How many members
-- have more XP than X" is then a sum over at most 8 x 63 rows instead of a
-- scan of everyone above X, which makes a member's rank O(log XP) like a Redis
-- sorted set. It holds only counts of members who show themselves, so it is
-- readable by everyone.
--
-- Awards never update a shared counter: triggers (functions.sql) append +1/-1
-- rows to leaderboard_count_deltas, and a periodic job folds them into
-- leaderboard_counts. Readers add both. Appending takes no row lock, so
-- concurrent awards never wait for each other on a hot counter, and a batch of
-- thousands of awards in one transaction does not pile up row versions.
------------------------------------------------------------------------------

create table public.leaderboard_counts (
  board text not null check (board in ('all_time', 'layer', 'season')),
  scope text not null default '',
  level smallint not null check (level between 0 and 7),
  bucket bigint not null check (bucket >= 0),
  members bigint not null default 0,
  primary key (board, scope, level, bucket)
);
comment on table public.leaderboard_counts is
  'Visible members per XP bucket of each leaderboard (scope: '''' for all_time, the layer slug, or the season id): '
  'at level L, bucket b counts members with XP >> (6 * L) = b, together with the rows of '
  'leaderboard_count_deltas not folded in yet. Rebuild with private.rebuild_leaderboard_counts().';

create table public.leaderboard_count_deltas (
  board text not null,
  scope text not null,
  level smallint not null,
  bucket bigint not null,
  delta integer not null
);
comment on table public.leaderboard_count_deltas is
  'Changes to public.leaderboard_counts appended by triggers (+1 when a visible member enters a bucket, -1 when '
  'one leaves); service_role_compact_leaderboard_counts() folds them in.';
create index leaderboard_count_deltas_key_idx on public.leaderboard_count_deltas (board, scope, level, bucket);

alter table public.leaderboard_counts enable row level security;
alter table public.leaderboard_count_deltas enable row level security;
revoke all on public.leaderboard_counts, public.leaderboard_count_deltas from anon, authenticated, service_role;
grant select on public.leaderboard_counts, public.leaderboard_count_deltas to anon, authenticated, service_role;
create policy "Anyone can read the leaderboard counts." on public.leaderboard_counts
  for select to anon, authenticated using (true);
create policy "Anyone can read the leaderboard count changes." on public.leaderboard_count_deltas
  for select to anon, authenticated using (true);

-- Backfill for a database that already has members (a fresh one has none).
insert into public.leaderboard_counts (board, scope, level, bucket, members)
select e.board, e.scope, l.level, e.xp >> (6 * l.level), count(*)
  from (
    select 'all_time' as board, '' as scope, p.xp from public.profiles p where p.leaderboard_visible
    union all
    select 'layer', pl.layer_slug, pl.xp
      from public.profile_layers pl join public.profiles p on p.id = pl.profile_id where p.leaderboard_visible
    union all
    select 'season', sc.season_id::text, sc.xp
      from public.season_scores sc join public.profiles p on p.id = sc.profile_id where p.leaderboard_visible
  ) e
  cross join generate_series(0, 7) as l (level)
 group by 1, 2, 3, 4;
