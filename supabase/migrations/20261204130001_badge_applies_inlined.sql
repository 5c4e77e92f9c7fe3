-- private.badge_applies inlined into the badge trigger's candidate query (security invoker, no search_path): one call per (row, badge) pair cost about 7 us
--
-- Written by `xpbase migration new` from the feature files in supabase/sql/:
-- the function and trigger definitions that changed since the last migration.
-- Edit the feature files, not this file; landed migrations never change.
-- Changed:
--   function private.badge_applies(public.badges, public.xp_ledger)

-- from supabase/sql/33_badges.sql -------------------------------------------

-- Inlined: called once per (new ledger row, active badge) pair, as a separate call it cost about 7 us a pair
-- (bench/replay.py --profile: 177,795 calls, 1.3 s of a 20 s replay). Being inlined it cannot set search_path:
-- it names no table or function outside pg_catalog, and runs as the caller.
create or replace function private.badge_applies(p_badge public.badges, p_row public.xp_ledger)
returns boolean
language sql
immutable
security invoker
as $$
  -- Only a row that can move the rule forward is looked at: a credited award, or for weighted subject sums an
  -- award whose weight is positive (a capped upvote still raises a score).
  select p_badge.kind <> 'season_placing'
     and (p_badge.activities is null or p_row.activity_slug = any (p_badge.activities))
     and (p_badge.subject_prefix is null or starts_with(p_row.subject, p_badge.subject_prefix))
     and (p_badge.kind <> 'subject_sum' or p_row.subject is not null)
     and case when p_badge.kind = 'subject_sum' and p_badge.weights is not null
              then coalesce((p_badge.weights ->> p_row.activity_slug)::numeric, 0) > 0
              else p_row.amount > 0 end
$$;

comment on function private.badge_applies(public.badges, public.xp_ledger) is
  'Whether ledger row p_row passes badge p_badge''s filters (activities, subject_prefix) and can advance it.';

revoke all on function private.badge_applies(public.badges, public.xp_ledger) from public;
