-- Two indexes that every award maintains and no query needs: profile_layers_layer_xp_idx (layer_slug, xp desc,
-- reached_at) and season_scores_rank_idx (season_id, xp desc, reached_at) from the first engine migration are
-- prefixes of profile_layers_board_idx and season_scores_board_idx (the same columns, then profile_id), which
-- the layer and season boards read since 20261121020000. An award that moves a member's layer XP and season
-- score updates both rows with new index keys, so each dropped index saved one index insert per award.

drop index if exists public.profile_layers_layer_xp_idx;
drop index if exists public.season_scores_rank_idx;
