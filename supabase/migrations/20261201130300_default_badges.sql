-- Default badges (issue 15): one per rule kind that the default configuration (seed.sql) can meet. Inserted
-- after the badge triggers (20261201130100), so that each gets a retroactive evaluation over the existing
-- ledger (a procrastinate job on queue badges; see supabase/sql/33_badges.sql). `on conflict do nothing`:
-- a community's own edits survive.

insert into public.badges (slug, name, description, level, series, kind, threshold, activities, tier_slug,
                           layer_slug, status_slug, position, once_per) values
  ('first_steps', 'First steps', 'Earned your first XP.', 'bronze', null, 'first_time', 1, null, null, null,
   null, 10, 'member'),
  ('level_10', 'Level 10', 'Reached level 10.', 'bronze', 'levels', 'level', 10, null, null, null, null, 20, 'member'),
  ('level_25', 'Level 25', 'Reached level 25.', 'silver', 'levels', 'level', 25, null, null, null, null, 21, 'member'),
  ('level_50', 'Level 50', 'Reached level 50.', 'gold', 'levels', 'level', 50, null, null, null, null, 22, 'member'),
  ('streak_7', 'Week streak', 'Checked in 7 days in a row.', 'bronze', 'streaks', 'streak', 7,
   '{daily_check_in}', null, null, null, 30, 'member'),
  ('streak_30', 'Month streak', 'Checked in 30 days in a row.', 'silver', 'streaks', 'streak', 30,
   '{daily_check_in}', null, null, null, 31, 'member'),
  ('season_podium', 'Season podium', 'Finished a season in the top 3 (once per season).', 'gold', null, 'season_placing', 3,
   null, null, null, null, 40, 'subject')
on conflict (slug) do nothing;
