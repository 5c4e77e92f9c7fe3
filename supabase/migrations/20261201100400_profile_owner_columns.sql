-- Members no longer read each other's bio, social_links, points and updated_at through public.profiles
-- (issue 18: SELECT was granted on the whole table). authenticated keeps SELECT on the columns others may see
-- (the leaderboard columns, created_at, rank_card_style) and, for now, time_zone and role, which invoker code
-- still reads as the caller (private.assert_can_read_ledger, the admin checks in the economy and review
-- policies; they move with the roles work). The owner reads every column of their own row through public.my_profile() and
-- update_my_profile's answer. A per-profile visibility predicate can be added to the select policy later
-- without touching these grants. anon keeps only the leaderboard columns.
revoke select on public.profiles from authenticated;
grant select (id, display_name, avatar_url, leaderboard_visible, xp, level, tier, xp_reached_at, created_at,
              rank_card_style, time_zone, role)
  on public.profiles to authenticated;
