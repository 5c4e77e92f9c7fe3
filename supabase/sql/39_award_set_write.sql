-- The write half of awards decided as a set (issue 16 item 1): private.award_set_write takes the items
-- private.award_set (39_award_set.sql) decided, with their granted XP, and writes them as private.apply_xp
-- would one at a time: each receipt from running totals (window sums over the member's items before it), the
-- ledger rows in one statement, and the derived state once per member per batch (profile, layer and season
-- totals, cap usage), points_ledger rows and level, tier and layer status notifications in one insert each.
--
-- Tables: none of its own (writes public.xp_ledger, public.profiles, public.profile_layers,
--   public.season_scores, private.daily_cap_usage, public.points_ledger, public.notifications).
-- Tests: tests/sql/test_award_set_write.py, tests/sql/test_award_set.py

create or replace function private.award_set_write(
  p_ord integer[],
  p_pid uuid[],
  p_slug text[],
  p_layer text[],
  p_at timestamptz[],
  p_season bigint[],
  p_cap_group text[],
  p_day date[],
  p_daily_cap integer[],
  p_base integer[],
  p_multiplier numeric[],
  p_multipliers jsonb[],
  p_key text[],
  p_reason text[],
  p_request jsonb[],
  p_requested integer[],
  p_late boolean[],
  p_amount integer[],
  p_cooldown_left integer[],
  p_capped boolean[],
  p_floored boolean[],
  p_used integer[],
  p_season_amount integer[],
  p_points_per_xp numeric
)
returns table (ord integer, receipt jsonb)
language sql
volatile
security definer
set search_path = ''
as $$
  -- Running totals per member (window sums over the items before each one): XP, points, layer XP and
  -- season score before each award; level, tier, layer status and unlocks before and after it, as
  -- private.apply_xp finds them (the cached level, tier and status until an award of the batch moves them).
  with o as materialized (
    select o.*, case when o.amount > 0 then floor(o.amount * p_points_per_xp)::integer else 0 end as points
      from unnest(p_ord, p_pid, p_slug, p_layer, p_at, p_season, p_cap_group, p_day, p_daily_cap, p_base,
                  p_multiplier, p_multipliers, p_key, p_reason, p_request, p_requested, p_late, p_amount,
                  p_cooldown_left, p_capped, p_floored, p_used, p_season_amount)
             as o (ord, pid, slug, layer, at, season_id, cap_group, day, daily_cap, base, multiplier, multipliers,
                   key, reason, request, requested, late, amount, cooldown_left, capped, floored, used,
                   season_amount)
  ), run as materialized (
    select o.*,
           p.xp + coalesce(sum(o.amount) over w, 0) as xp_before,
           p.points + coalesce(sum(o.points) over w, 0) as points_before,
           coalesce(bool_or(o.amount <> 0) over w, false) as moved,
           p.level as cached_level, p.tier as cached_tier,
           coalesce(pl.xp, 0) + coalesce(sum(o.amount) over wl, 0) as layer_before,
           coalesce(bool_or(o.amount <> 0) over wl, false) as layer_moved,
           pl.profile_id is not null as layer_found, pl.status as cached_status,
           coalesce(ss.xp, 0) + coalesce(sum(o.season_amount) over ws, 0) as season_before
      from o
      join public.profiles p on p.id = o.pid
      left join public.profile_layers pl on pl.profile_id = o.pid and pl.layer_slug = o.layer
      left join public.season_scores ss on ss.season_id = o.season_id and ss.profile_id = o.pid
    window w as (partition by o.pid order by o.ord rows between unbounded preceding and 1 preceding),
           wl as (partition by o.pid, o.layer order by o.ord rows between unbounded preceding and 1 preceding),
           ws as (partition by o.pid, o.season_id order by o.ord rows between unbounded preceding and 1 preceding)
  ), lv as materialized (
    select r.*, r.xp_before + r.amount as xp_after,
           case when r.moved then lb.level else r.cached_level end as level_before, la.level as level_after,
           case when r.moved then tb.slug else r.cached_tier end as tier_before, ta.slug as tier_after,
           case when r.layer_moved then sb.slug when r.layer_found then r.cached_status else s0.slug end
             as status_before,
           sa.slug as status_after
      from run r
     cross join lateral (
       select coalesce((select c.level from public.level_curve c where c.xp_required <= greatest(r.xp_before, 0)
                         order by c.xp_required desc limit 1), 1) as level
     ) lb
     cross join lateral (
       select coalesce((select c.level from public.level_curve c
                         where c.xp_required <= greatest(r.xp_before + r.amount, 0)
                         order by c.xp_required desc limit 1), 1) as level
     ) la
      left join lateral (
        select t.slug from public.tiers t where t.min_level <= lb.level order by t.min_level desc limit 1
      ) tb on true
      left join lateral (
        select t.slug from public.tiers t where t.min_level <= la.level order by t.min_level desc limit 1
      ) ta on true
      left join lateral (
        select s.slug from public.layer_statuses s
         where s.layer_slug = r.layer and s.min_xp <= greatest(r.layer_before, 0) order by s.min_xp desc limit 1
      ) sb on true
      left join lateral (
        select s.slug from public.layer_statuses s
         where s.layer_slug = r.layer and s.min_xp <= 0 order by s.min_xp desc limit 1
      ) s0 on true
      left join lateral (
        select s.slug from public.layer_statuses s
         where s.layer_slug = r.layer and s.min_xp <= greatest(r.layer_before + r.amount, 0)
         order by s.min_xp desc limit 1
      ) sa on true
  ), ids as materialized (
    -- Ledger ids in array order, as the items one at a time draw them.
    select y.ord, nextval('public.xp_ledger_id_seq') as id from (select lv.ord from lv order by lv.ord) y
  ), rc as materialized (
    select lv.*, ids.id, un.unlocks, t.tier_up, t.tier_name,
           jsonb_build_object(
             'requested', lv.requested, 'base', lv.base, 'multiplier', lv.multiplier,
             'multipliers', lv.multipliers, 'cooldown', lv.cooldown_left > 0,
             'cooldown_remaining_seconds', lv.cooldown_left, 'capped', lv.capped,
             'cap', case when lv.cap_group is not null then
                      jsonb_build_object('group', lv.cap_group, 'daily_cap', lv.daily_cap, 'day', lv.day,
                                         'used', lv.used, 'remaining', greatest(lv.daily_cap - lv.used, 0)) end,
             'floored', lv.floored, 'late', lv.late, 'beyond_horizon', lv.late, 'redecided', '[]'::jsonb)
           || jsonb_build_object(
             'profile_id', lv.pid, 'activity', lv.slug, 'idempotency_key', lv.key,
             'occurred_at', private.utc_text(lv.at), 'granted', lv.amount,
             'total_xp_before', lv.xp_before, 'total_xp', lv.xp_after,
             'level_before', lv.level_before, 'level', lv.level_after,
             'tier_before', lv.tier_before, 'tier', lv.tier_after,
             'points_granted', lv.points, 'points', lv.points_before + lv.points,
             'layers', jsonb_build_array(jsonb_build_object(
               'layer', lv.layer, 'amount', lv.amount, 'xp_before', lv.layer_before,
               'xp', lv.layer_before + lv.amount, 'status_before', lv.status_before, 'status', lv.status_after,
               'season_id', lv.season_id, 'season_amount', lv.season_amount,
               'season_xp', case when lv.season_id is not null then lv.season_before + lv.season_amount end)),
             'layer', lv.layer, 'layer_xp', lv.layer_before + lv.amount,
             'layer_status_before', lv.status_before, 'layer_status', lv.status_after,
             'season_id', lv.season_id,
             'season_xp', case when lv.season_id is not null then lv.season_before + lv.season_amount end,
             'unlocks', un.unlocks, 'season_closed', false, 'tier_up', t.tier_up,
             'tier_name', t.tier_name,
             'replayed', false, 'ledger_id', ids.id) as receipt
      from lv
      join ids on ids.ord = lv.ord
     cross join lateral (
       select coalesce(jsonb_agg(jsonb_build_object('tier', u.tier_slug, 'slug', u.slug, 'name', u.name)
                                 order by x.min_level, u.position, u.slug), '[]') as unlocks
         from public.tier_unlocks u
         join public.tiers x on x.slug = u.tier_slug
        where x.min_level > lv.level_before and x.min_level <= lv.level_after
     ) un
     cross join lateral (
       select lv.tier_after is distinct from lv.tier_before and jsonb_array_length(un.unlocks) > 0 as tier_up
     ) tu
     cross join lateral (
       select tu.tier_up, case when tu.tier_up then (select x.name from public.tiers x where x.slug = lv.tier_after)
                          end as tier_name
     ) t
  ), ledger as (
    insert into public.xp_ledger (
      id, profile_id, activity_slug, layer_slug, season_id, amount, season_amount, points, occurred_at,
      idempotency_key, actor_id, actor_role, reason, reverses_id, corrects_id, request, receipt
    ) overriding system value
    select rc.id, rc.pid, rc.slug, rc.layer, rc.season_id, rc.amount, rc.season_amount, rc.points, rc.at, rc.key,
           null, 'service_role', rc.reason, null, null, rc.request, rc.receipt
      from rc
     order by rc.id
  ), profile_total as (
    -- Once per member: where the last award that moved the total left it. updated_at is stamped here:
    -- profiles' _100_validate trigger fires only for the editable columns.
    update public.profiles p
       set xp = f.xp_after, level = f.level_after, tier = f.tier_after, points = p.points + f.points,
           xp_reached_at = f.at, updated_at = now()
      from (select distinct on (rc.pid) rc.pid, rc.xp_after, rc.level_after, rc.tier_after, rc.at,
                   sum(rc.points) over (partition by rc.pid) as points
              from rc where rc.amount <> 0
             order by rc.pid, rc.ord desc) f
     where p.id = f.pid
  ), layer_total as (
    insert into public.profile_layers as pl (profile_id, layer_slug, xp, status, reached_at)
    select distinct on (rc.pid, rc.layer) rc.pid, rc.layer, rc.layer_before + rc.amount, rc.status_after, rc.at
      from rc where rc.amount <> 0
     order by rc.pid, rc.layer, rc.ord desc
    on conflict (profile_id, layer_slug) do update
      set xp = excluded.xp, status = excluded.status, reached_at = excluded.reached_at
  ), season_total as (
    insert into public.season_scores as s (season_id, profile_id, xp, reached_at)
    select distinct on (rc.season_id, rc.pid) rc.season_id, rc.pid, rc.season_before + rc.season_amount, rc.at
      from rc where rc.season_amount <> 0
     order by rc.season_id, rc.pid, rc.ord desc
    on conflict (season_id, profile_id) do update
      set xp = excluded.xp, reached_at = excluded.reached_at
  ), cap_usage as (
    insert into private.daily_cap_usage as u (profile_id, cap_group, day, used)
    select rc.pid, rc.cap_group, rc.day, sum(rc.amount)
      from rc where rc.cap_group is not null and rc.amount <> 0
     group by rc.pid, rc.cap_group, rc.day
     order by rc.pid, rc.cap_group, rc.day
    on conflict (profile_id, cap_group, day) do update set used = u.used + excluded.used
  ), points as (
    -- The points each award earned, as points_ledger rows (32_points.sql), keyed on the award's key.
    insert into public.points_ledger (profile_id, kind, amount, balance_after, idempotency_key, actor_id,
                                      actor_role, reason, xp_ledger_id, ref)
    select rc.pid, 'earned', rc.points, rc.points_before + rc.points, 'xp:' || rc.key, null, 'service_role',
           rc.reason, rc.id, jsonb_build_object('activity', rc.slug)
      from rc where rc.points > 0
     order by rc.ord
  ), notified as (
    insert into public.notifications (profile_id, kind, title, body, data)
    select n.pid, n.kind, n.title, n.body, n.data
      from (
        select rc.ord, 1 as k, rc.pid, 'layer_status_up' as kind,
               'New ' || rc.layer || ' status: ' || rc.status_after as title, '' as body,  -- the column's default
               jsonb_build_object('layer', rc.layer, 'status_before', rc.status_before, 'status', rc.status_after,
                                  'ledger_id', rc.id) as data
          from rc where rc.amount > 0 and rc.status_after is distinct from rc.status_before
        union all
        select rc.ord, 2, rc.pid, 'level_up', 'Level ' || rc.level_after || ' reached', '',
               jsonb_build_object('level_before', rc.level_before, 'level', rc.level_after,
                                  'total_xp', rc.xp_after, 'ledger_id', rc.id)
          from rc where rc.level_after > rc.level_before
        union all
        select rc.ord, 3, rc.pid, 'tier_up', 'Tier ' || coalesce(rc.tier_name, rc.tier_after) || ' reached',
               'Unlocked: ' || (select string_agg(u ->> 'name', ', ') from jsonb_array_elements(rc.unlocks) u),
               jsonb_build_object('tier_before', rc.tier_before, 'tier', rc.tier_after,
                                  'tier_name', coalesce(rc.tier_name, rc.tier_after), 'unlocks', rc.unlocks,
                                  'ledger_id', rc.id)
          from rc where rc.tier_up
      ) n
     order by n.ord, n.k
  )
  select rc.ord, rc.receipt from rc order by rc.ord
$$;
comment on function private.award_set_write(integer[], uuid[], text[], text[], timestamptz[], bigint[], text[], date[],
                                            integer[], integer[], numeric[], jsonb[], text[], text[], jsonb[],
                                            integer[], boolean[], integer[], integer[], boolean[], boolean[],
                                            integer[], integer[], numeric) is
  'The write half of private.award_set: for the items it decided (p_ord, array positions from 1, in profile then '
  'array order, with each one''s profile, activity, layer, moment, season, cap group and local day, daily cap, '
  'base XP, multiplier and multipliers, key, reason, request, requested amount, late (beyond the horizon), '
  'and the ordered pass''s granted XP, cooldown seconds left, capped, '
  'floored, cap usage after and season amount), the receipts private.apply_xp would build one at a time '
  '(running totals), the ledger rows in one statement, and profile, layer and season totals, cap usage, '
  'points_ledger rows and level_up / tier_up / layer_status_up notifications. Returns (ord, receipt).';
revoke all on function private.award_set_write(integer[], uuid[], text[], text[], timestamptz[], bigint[], text[],
                                               date[], integer[], integer[], numeric[], jsonb[], text[], text[],
                                               jsonb[], integer[], boolean[], integer[], integer[], boolean[],
                                               boolean[], integer[], integer[], numeric)
  from public;
