-- Leaderboard visibility per board (issue 13 item 3): a member may stay on some boards and leave others.
--
-- profiles.leaderboard_visible stays the switch for every board at once; public.leaderboard_hidden_boards
-- holds the boards a member leaves one by one: all_time (scope ''), a layer board (scope: the layer slug), the
-- season boards of a layer (scope: the layer slug) and a Discord server's board (scope: the guild id). Members
-- write only their own rows (policies); the leaderboard count triggers of 60_leaderboards.sql move the member
-- on the boards a row names, and public.leaderboard_entries leaves them out of those boards. Everyone may read
-- the rows (the boards run as the caller, anon included): that a member is off a board is visible on the
-- board anyway.
create table public.leaderboard_hidden_boards (
  profile_id uuid not null references public.profiles (id) on delete cascade,
  board text not null check (board in ('all_time', 'layer', 'season', 'server')),
  scope text not null default '',
  created_at timestamptz not null default now(),
  primary key (profile_id, board, scope),
  check ((board = 'all_time') = (scope = '')),
  check (board <> 'server' or scope ~ '^[0-9]{1,20}$'),
  check (board not in ('layer', 'season') or length(scope) between 1 and 64)
);
comment on table public.leaderboard_hidden_boards is
  'Boards a member leaves while staying on the others (profiles.leaderboard_visible hides from all of them): '
  'board all_time (scope ''''), layer (scope: layer slug), season (scope: layer slug, every season board of '
  'that layer) or server (scope: Discord guild id). Written by the member (set_leaderboard_visibility).';

alter table public.leaderboard_hidden_boards enable row level security;
revoke all on public.leaderboard_hidden_boards from anon, authenticated, service_role;
grant select on public.leaderboard_hidden_boards to anon, authenticated, service_role;
grant insert, delete on public.leaderboard_hidden_boards to authenticated;
grant insert, delete on public.leaderboard_hidden_boards to service_role;
create policy "Anyone can see which boards a member leaves." on public.leaderboard_hidden_boards
  for select to anon, authenticated using (true);
create policy "Members can leave boards for themselves." on public.leaderboard_hidden_boards
  for insert to authenticated with check (profile_id = (select auth.uid()));
create policy "Members can come back to boards for themselves." on public.leaderboard_hidden_boards
  for delete to authenticated using (profile_id = (select auth.uid()));

-- The boards' rows: visible now also asks whether the member left that board.
create or replace view public.leaderboard_entries with (security_invoker = true) as
  select 'all_time'::text as board, ''::text as layer_slug, 0::bigint as season_id,
         p.id as profile_id, p.xp, p.xp_reached_at as reached_at,
         p.leaderboard_visible
           and not exists (select 1 from public.leaderboard_hidden_boards h
                            where h.profile_id = p.id and h.board = 'all_time' and h.scope = '') as visible,
         p.display_name, p.avatar_url, p.level, p.tier
    from public.profiles p
  union all
  select 'layer'::text, pl.layer_slug, 0::bigint,
         pl.profile_id, pl.xp, pl.reached_at,
         p.leaderboard_visible
           and not exists (select 1 from public.leaderboard_hidden_boards h
                            where h.profile_id = pl.profile_id and h.board = 'layer' and h.scope = pl.layer_slug),
         p.display_name, p.avatar_url, p.level, p.tier
    from public.profile_layers pl
    join public.profiles p on p.id = pl.profile_id
  union all
  select 'season'::text, ''::text, sc.season_id,
         sc.profile_id, sc.xp, sc.reached_at,
         p.leaderboard_visible
           and not exists (select 1 from public.leaderboard_hidden_boards h
                             join public.seasons s on s.layer_slug = h.scope
                            where h.profile_id = sc.profile_id and h.board = 'season' and s.id = sc.season_id),
         p.display_name, p.avatar_url, p.level, p.tier
    from public.season_scores sc
    join public.profiles p on p.id = sc.profile_id;
comment on view public.leaderboard_entries is
  'Every board''s rows: (board all_time|layer|season, layer_slug for the layer board else '''', season_id for '
  'the season board else 0, profile_id, xp on that board, reached_at, visible (leaderboard_visible and not '
  'left this board in leaderboard_hidden_boards), display_name, avatar_url, level, tier). Runs as the caller: '
  'hidden members appear only to themselves. Read it through public.leaderboard, leaderboard_rank and '
  'leaderboard_around, which add ranks, the tie rule, and leave suspended members out.';
