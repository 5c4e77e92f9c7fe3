-- Reversals and re-levelling (issue 16, items 5 and 6 in part). Reversals (public.reverse_award,
-- supabase/sql/31_reversals.sql) write xp_ledger.reverses_id, which nothing wrote before. A row is reversed at most once: the index on reverses_id becomes unique, so the
-- database itself refuses a second reversal of the same row even if the function's key check were bypassed.
drop index if exists public.xp_ledger_reverses_id_idx;
create unique index xp_ledger_reverses_id_key on public.xp_ledger (reverses_id) where reverses_id is not null;
comment on column public.xp_ledger.reverses_id is
  'The ledger row this row reverses (public.reverse_award), at most one reversal per row; null otherwise.';
comment on column public.xp_ledger.reason is
  'Why: required on corrections and reversals (1-500 characters), optional on awards (award_xp''s reason).';

-- A changed level curve or tier table re-derives every cached level and tier at commit
-- (private.rederive_levels, supabase/sql/20_levels.sql) and tells each member who moved, in-app by default.
insert into public.notification_kinds (kind, description, default_channels, collapse_seconds) values
  ('level_changed', 'Your level or tier moved because the community changed its level curve or tiers', '{in_app}', 0)
on conflict (kind) do nothing;
