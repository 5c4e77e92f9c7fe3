-- Every function and trigger of xpbase, as the ordered list of its feature files.
--
-- Each file in supabase/sql/ tells one feature whole: its functions, triggers
-- and their comments and grants, create-or-replace (or drop-if-exists first),
-- so applying this list twice changes nothing. `psql -f supabase/functions.sql`
-- applies them; `xpbase migration new NAME` reads the same list and writes the
-- definitions that changed into a new migration, which is how they reach a
-- database (`xpbase migrate` or `supabase db push`). Tables, policies and
-- table grants live in supabase/migrations/.
--
-- Privileged implementations live in `private` as security definer with an
-- empty search_path and fully qualified names; the RPCs that PostgREST exposes
-- are thin security-invoker wrappers in `public`. Every function is followed by
-- its grants, to the narrowest role.
--
-- Domain errors carry fixed SQLSTATEs, translated in one place in Python
-- (xpbase/errors.py):
--   XPBAD  invalid argument            XPACT  unknown or inactive activity
--   XPAMT  amount not allowed          XPPRF  unknown profile
--   XPIDM  idempotency key reused with other parameters
--   XPLVL  level outside the curve     XPLED  ledger rows are append-only
--   XPRAT  rate limit reached          XPCFG  required configuration missing
--   42501  caller may not do this (Postgres' insufficient_privilege)

\ir sql/00_helpers.sql
\ir sql/10_profiles.sql
\ir sql/12_roles.sql
\ir sql/13_moderation.sql
\ir sql/20_levels.sql
\ir sql/25_seasons.sql
\ir sql/30_award.sql
\ir sql/31_reversals.sql
\ir sql/32_points.sql
\ir sql/33_badges.sql
\ir sql/34_award_group.sql
\ir sql/34_redecisions.sql
\ir sql/35_admin.sql
\ir sql/36_claims.sql
\ir sql/37_tools.sql
\ir sql/38_rule_packs.sql
\ir sql/39_award_set.sql
\ir sql/39_award_set_write.sql
\ir sql/39_challenges.sql
\ir sql/40_events.sql
\ir sql/45_season_finalize.sql
\ir sql/47_rule_changes.sql
\ir sql/50_streaks.sql
\ir sql/55_store.sql
\ir sql/56_redemptions.sql
\ir sql/57_payments.sql
\ir sql/60_leaderboards.sql
\ir sql/61_leaderboard_visibility.sql
\ir sql/62_leaderboard_keyset.sql
\ir sql/63_leaderboard_ranks.sql
\ir sql/65_profile_card.sql
\ir sql/68_ledger_reads.sql
\ir sql/70_timeline.sql
\ir sql/75_notifications_chat.sql
\ir sql/76_preferences.sql
\ir sql/77_outbox.sql
\ir sql/80_sign_in.sql
\ir sql/81_email_codes.sql
\ir sql/82_supabase_auth.sql
\ir sql/85_link_codes.sql
\ir sql/90_discord_guilds.sql
\ir sql/91_discord_members.sql
\ir sql/92_imports.sql
\ir sql/93_guild_boards.sql
\ir sql/94_member_data.sql
\ir sql/95_reviews.sql
\ir sql/96_review_matching.sql
\ir sql/97_rank_cards.sql
