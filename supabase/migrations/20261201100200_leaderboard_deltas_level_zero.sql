-- Leaderboard count changes become level-0 rows only (issue 18: one visibility toggle appended 8 rows per
-- board, 408 for a member on 51 boards). From the next migration on, private.leaderboard_count_move appends
-- one row per member and board moved at level 0 (bucket = exact XP) and the compaction spreads it over the 8
-- levels. The changes still pending were written the old way (a row per level): fold them in now, with the
-- old compaction, so no old-style row is read the new way.
select private.compact_leaderboard_counts();
