-- Default configuration of the XP engine.
--
-- Applied by `xpbase migrate` after functions.sql. Every insert is
-- `on conflict do nothing`: a community's own changes to these rows survive
-- every later migrate, and running it twice changes nothing.

insert into public.engine_settings (id, max_multiplier, points_per_xp, default_layer)
values (true, 5, 1, 'cyber')
on conflict (id) do nothing;

-- Layers and their status ladders (iGoUltra: reality and cyber layers gate
-- events and dungeons).
insert into public.layers (slug, name, description, position) values
  ('reality', 'Reality', 'Real-world actions: events attended, challenges completed, workouts.', 1),
  ('cyber', 'Cyber', 'Online actions: Discord messages and voice, check-ins, purchases.', 2)
on conflict (slug) do nothing;

insert into public.layer_statuses (layer_slug, slug, name, min_xp) values
  ('reality', 'dormant', 'Dormant', 0),
  ('reality', 'awakened', 'Awakened', 500),
  ('reality', 'grounded', 'Grounded', 2500),
  ('reality', 'ascendant', 'Ascendant', 10000),
  ('reality', 'transcendent', 'Transcendent', 50000),
  ('cyber', 'offline', 'Offline', 0),
  ('cyber', 'connected', 'Connected', 500),
  ('cyber', 'synced', 'Synced', 2500),
  ('cyber', 'overclocked', 'Overclocked', 10000),
  ('cyber', 'singularity', 'Singularity', 50000)
on conflict (layer_slug, slug) do nothing;

-- One daily cap for passive Discord XP, counted per UTC day.
insert into public.cap_groups (slug, daily_cap, time_zone, description) values
  ('discord', 3000, 'UTC', 'Messages, voice minutes and commands together: at most 3000 XP per UTC day.')
on conflict (slug) do nothing;

-- Activities (Discord Bot Hub's XP sources; reality activities from iGoUltra).
insert into public.activity_types
  (slug, name, description, layer_slug, base_xp, min_xp, max_xp, cooldown_seconds, cap_group, active) values
  ('message', 'Message', 'A Discord message.', 'cyber', 15, null, null, 60, 'discord', true),
  ('voice_minute', 'Voice minute', 'One minute in a Discord voice channel with another member.', 'cyber', 10, null, null, 0, 'discord', true),
  ('command', 'Command', 'A bot command.', 'cyber', 5, null, null, 30, 'discord', true),
  ('event_attendance', 'Event attendance', 'Attending a live community event.', 'reality', 50, 10, 500, 0, null, true),
  ('challenge_completed', 'Challenge completed', 'A real-world challenge, XP set by the challenge.', 'reality', 100, 10, 1000, 0, null, true),
  ('xp_purchase', 'XP purchase', 'XP bought as a package.', 'cyber', 100, 1, 100000, 0, null, true),
  ('admin_adjustment', 'Admin correction', 'A correction by an admin; written only by the admin functions (inactive for award_xp).', 'cyber', 0, -2147483647, 2147483647, 0, null, false)
on conflict (slug) do nothing;

-- Resume reviews (issue 12): XP for a completed review, both sides (also in migration 20261130220000).
insert into public.activity_types
  (slug, name, description, layer_slug, base_xp, min_xp, max_xp, cooldown_seconds, cap_group, active) values
  ('resume_review_received', 'Resume review received', 'A completed resume review session, for the member.', 'reality', 50, null, null, 0, null, true),
  ('resume_review_given', 'Resume review given', 'A completed resume review session, for the reviewer.', 'reality', 100, null, null, 0, null, true)
on conflict (slug) do nothing;

-- The level curve: level L starts at 100*(L-1)^2 + 50*(L-1) total XP.
insert into public.level_curve (level, xp_required)
select l, 100 * (l - 1) * (l - 1) + 50 * (l - 1)
  from generate_series(1, 100) as l
on conflict (level) do nothing;

-- Tiers and the four tools each unlocks (Discord Bot Hub).
insert into public.tiers (slug, name, min_level, max_level) values
  ('basic', 'Basic', 1, 10),
  ('member', 'Member', 11, 25),
  ('advanced', 'Advanced', 26, 50),
  ('elite', 'Elite', 51, 75),
  ('master', 'Master', 76, 100)
on conflict (slug) do nothing;

insert into public.tier_unlocks (tier_slug, slug, name, description, position) values
  ('basic', 'rank_card', 'Rank card', 'Your rank card with /rank.', 1),
  ('basic', 'daily_check_in', 'Daily check-in', 'Check in every day to grow a streak.', 2),
  ('basic', 'global_chat', 'Global chat', 'The community chat on the web.', 3),
  ('basic', 'leaderboards', 'Leaderboards', 'All-time, layer and season leaderboards.', 4),
  ('member', 'custom_rank_card', 'Custom rank card', 'Pick the colours of your rank card.', 1),
  ('member', 'event_signup', 'Event sign-up', 'Sign up for live events early.', 2),
  ('member', 'store_access', 'Store', 'Spend points in the store.', 3),
  ('member', 'streak_freeze_purchase', 'Streak freezes', 'Buy streak freezes with points.', 4),
  ('advanced', 'resume_review', 'Resume review', 'Book a review of your resume with a professional.', 1),
  ('advanced', 'project_showcase', 'Project showcase', 'Post projects in the showcase channel.', 2),
  ('advanced', 'voice_rooms', 'Voice rooms', 'Create temporary voice rooms.', 3),
  ('advanced', 'polls', 'Polls', 'Start community polls.', 4),
  ('elite', 'mentor_matching', 'Mentor matching', 'Be matched with a mentor.', 1),
  ('elite', 'event_hosting', 'Event hosting', 'Host community events.', 2),
  ('elite', 'dungeon_access', 'Dungeons', 'Enter reality and cyber dungeons.', 3),
  ('elite', 'custom_role_colour', 'Role colour', 'Choose your Discord role colour.', 4),
  ('master', 'mentor_role', 'Mentor', 'Mentor other members.', 1),
  ('master', 'season_judge', 'Season judge', 'Judge season challenges.', 2),
  ('master', 'beta_features', 'Beta features', 'Try new features first.', 3),
  ('master', 'hall_of_fame', 'Hall of fame', 'A place in the hall of fame.', 4)
on conflict (tier_slug, slug) do nothing;

-- Sign-in and account linking: link codes live 10 minutes, 5 per member per hour.
insert into public.auth_settings (id, link_code_ttl_seconds, link_code_hourly_limit)
values (true, 600, 5)
on conflict (id) do nothing;

-- Check-ins and streaks (issue 4). The default rule is Code of Clans' "5 XP x
-- streak day" (day 7 awards 35 XP) capped at 100 XP; Discord Bot Hub's rule
-- (a 50 XP daily bonus plus 10 XP per streak day) ships as the alternative:
--   update public.engine_settings set check_in_rule = 'hub_bonus';
insert into public.activity_types
  (slug, name, description, layer_slug, base_xp, min_xp, max_xp, cooldown_seconds, cap_group, active) values
  ('daily_check_in', 'Daily check-in', 'The daily check-in; the amount follows the check-in rule and the streak.', 'cyber', 5, 0, 100000, 0, null, true)
on conflict (slug) do nothing;

insert into public.check_in_rules
  (slug, name, description, activity_slug, daily_xp, xp_per_streak_day, max_xp, max_freezes_held, freeze_every_days, milestone_days) values
  ('streak_x5', '5 XP per streak day', 'Code of Clans: 5 XP x streak day (day 7 awards 35 XP), at most 100 XP a day.',
   'daily_check_in', 0, 5, 100, 2, 7, '{3, 7, 14, 30, 50, 100, 365}'),
  ('hub_bonus', 'Daily bonus + streak bonus', 'Discord Bot Hub: a 50 XP daily bonus plus 10 XP per streak day, at most 300 XP a day.',
   'daily_check_in', 50, 10, 300, 2, 7, '{3, 7, 14, 30, 50, 100, 365}')
on conflict (slug) do nothing;

update public.engine_settings set check_in_rule = 'streak_x5' where check_in_rule is null;

-- Seasons (issue 4): monthly UTC seasons on both layers; the top 10 of each
-- season are rewarded through a season-reward activity that does not count
-- towards the next season.
insert into public.activity_types
  (slug, name, description, layer_slug, base_xp, min_xp, max_xp, cooldown_seconds, cap_group, active, counts_for_season) values
  ('season_reward_reality', 'Season reward (reality)', 'Reward for a top rank in a reality season.', 'reality', 100, 1, 100000, 0, null, true, false),
  ('season_reward_cyber', 'Season reward (cyber)', 'Reward for a top rank in a cyber season.', 'cyber', 100, 1, 100000, 0, null, true, false)
on conflict (slug) do nothing;

insert into public.season_rules (layer_slug, length_unit, length, anchor, time_zone, reward_activity) values
  ('reality', 'month', 1, '2026-01-01', 'UTC', 'season_reward_reality'),
  ('cyber', 'month', 1, '2026-01-01', 'UTC', 'season_reward_cyber')
on conflict (layer_slug) do nothing;

insert into public.season_rewards (layer_slug, rank_from, rank_to, xp, points, title) values
  ('reality', 1, 1, 500, 500, 'Reality champion'),
  ('reality', 2, 2, 300, 300, 'Reality runner-up'),
  ('reality', 3, 3, 200, 200, 'Reality bronze'),
  ('reality', 4, 10, 100, 50, null),
  ('cyber', 1, 1, 500, 500, 'Cyber champion'),
  ('cyber', 2, 2, 300, 300, 'Cyber runner-up'),
  ('cyber', 3, 3, 200, 200, 'Cyber bronze'),
  ('cyber', 4, 10, 100, 50, null)
on conflict (layer_slug, rank_from) do nothing;

-- Global chat limits (issue 4).
insert into public.chat_settings (id, max_length, rate_limit_count, rate_limit_seconds, history_size)
values (true, 500, 5, 10, 50)
on conflict (id) do nothing;

-- Importers (issue 17): XP moved in from another bot is a ledger row of this
-- activity; inactive, so award_xp refuses it and only the importer writes it.
insert into public.activity_types
  (slug, name, description, layer_slug, base_xp, min_xp, max_xp, cooldown_seconds, cap_group, active, counts_for_season) values
  ('import', 'Import', 'XP moved in from another bot (MEE6, Amari, Polaris, LevelUp, CSV) by an importer.', 'cyber', 0, null, null, 0, null, false, false)
on conflict (slug) do nothing;
