-- Late awards are decided again (issue 16, item 4): correction rows name the award they correct, and the
-- late-award horizon is an engine setting.
--
-- An award that arrives after awards of the same member dated later than it (within the horizon) makes the
-- engine decide those later awards again, in time order, and append the differences as correction rows
-- (supabase/sql/34_redecisions.sql). Such a row names the award it corrects in corrects_id; the award's net
-- grant is its amount plus its corrections' (and a reversal's) amounts.

alter table public.xp_ledger add column corrects_id bigint references public.xp_ledger (id);
comment on column public.xp_ledger.corrects_id is
  'For a correction row written when a late award (or a rules change) decided an earlier award again: the award '
  'row it corrects. Its amount is the change to that award''s grant (XP); the award''s net grant is its amount '
  'plus the amounts of the rows that correct or reverse it. Null on every other row.';
create index xp_ledger_corrects_id_idx on public.xp_ledger (corrects_id) where corrects_id is not null;

alter table public.engine_settings
  add column late_award_horizon_seconds integer not null default 172800
    check (late_award_horizon_seconds between 0 and 2592000);
comment on column public.engine_settings.late_award_horizon_seconds is
  'How late an award may arrive and still be decided in time order (seconds, default 172800 = 48 h, at most 30 '
  'days; 0 turns re-decision off). An award dated within the horizon before now that arrives after awards of '
  'the same member dated later than it is decided as of its time, and those later awards are decided again '
  '(correction rows). An older one is decided as of its arrival, and its receipt says so (beyond_horizon). '
  'Seasons are finalised only once they ended this long ago, so no award within the horizon reaches a closed '
  'season.';
