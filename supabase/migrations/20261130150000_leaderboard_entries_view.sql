-- One view of every board: public.leaderboard_entries.
--
-- The all-time, layer and season boards used to be three copies of each
-- leaderboard query (one per table), and "members above this XP" four copies.
-- This view says once what a board row is; the leaderboard functions filter
-- it by board, layer_slug and season_id. A view is inlined into the query that
-- uses it, so each function still plans one index walk per board: the
-- filters turn the other two branches off as one-time filters.
--
-- security_invoker: the profiles, profile_layers and season_scores policies
-- decide, for the caller, which rows exist (visible members, plus a hidden
-- member for themself); the view adds no access of its own.

create view public.leaderboard_entries with (security_invoker = true) as
  select 'all_time'::text as board, ''::text as layer_slug, 0::bigint as season_id,
         p.id as profile_id, p.xp, p.xp_reached_at as reached_at, p.leaderboard_visible as visible,
         p.display_name, p.avatar_url, p.level, p.tier
    from public.profiles p
  union all
  select 'layer'::text, pl.layer_slug, 0::bigint,
         pl.profile_id, pl.xp, pl.reached_at, p.leaderboard_visible,
         p.display_name, p.avatar_url, p.level, p.tier
    from public.profile_layers pl
    join public.profiles p on p.id = pl.profile_id
  union all
  select 'season'::text, ''::text, sc.season_id,
         sc.profile_id, sc.xp, sc.reached_at, p.leaderboard_visible,
         p.display_name, p.avatar_url, p.level, p.tier
    from public.season_scores sc
    join public.profiles p on p.id = sc.profile_id;

comment on view public.leaderboard_entries is
  'Every board''s rows: (board all_time|layer|season, layer_slug for the layer board else '''', season_id for '
  'the season board else 0, profile_id, xp on that board, reached_at, visible, display_name, avatar_url, level, '
  'tier). Runs as the caller: hidden members appear only to themselves. Read it through public.leaderboard, '
  'leaderboard_rank and leaderboard_around, which add ranks and the tie rule.';

revoke all on public.leaderboard_entries from anon, authenticated;
grant select on public.leaderboard_entries to anon, authenticated, service_role;
