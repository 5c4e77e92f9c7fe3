-- Awards decided as a set (issue 16 item 1): private.award_set decides a batch of awards with the rules of
-- private.award_xp (rate in force, multipliers, cooldown, daily cap, floor, levels, tiers, layers, seasons,
-- points) in a few set-based statements and one ordered pass, and writes the ledger rows in one statement and
-- the derived state (profile, layer and season totals, cap usage) once per profile per batch. Every receipt is
-- the one private.award_xp would have stored for the items sent one at a time in array order. What the set
-- path does not take is decided by private.award_xp itself, item by item, in array order, in the same call.
--
-- Tables: none of its own; it writes what private.apply_xp writes (public.xp_ledger, public.profiles,
--   public.profile_layers, public.season_scores, private.daily_cap_usage, public.points_ledger,
--   public.notifications); the ledger's statement triggers (badges, activity feed) decide the batch's rows
--   together, as row triggers firing in ledger id order would.
-- Tests: tests/sql/test_award_set.py

create or replace function private.award_set_items(p_awards jsonb)
returns table (
  ord integer,
  clean boolean,
  profile_id uuid,
  activity text,
  idempotency_key text,
  amount integer,
  occurred_at timestamptz,
  context jsonb,
  reason text,
  request jsonb
)
language sql
stable
security definer
set search_path = ''
as $$
  -- clean: the item is an object with known keys whose values private.award_xp takes without an XPBAD, XPTIM,
  -- XPINF or XPBIG error and whose casts cannot fail (uuid text; an integer of at most 9 digits; occurred_at as
  -- ISO 8601 text, 2000-2099, a valid day of the month). Anything else is not clean (and left to award_xp).
  with x as materialized (
    select e.ord::integer as ord, e.value as v,
           case
             when jsonb_typeof(e.value) <> 'object' then false
             when exists (select 1 from jsonb_object_keys(e.value) k
                           where k not in ('profile_id', 'activity', 'idempotency_key', 'amount', 'occurred_at',
                                           'context', 'reason')) then false
             when coalesce(length(e.value ->> 'idempotency_key'), 0) not between 1 and 200 then false
             when coalesce(e.value ->> 'profile_id', '')
                  !~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' then false
             when coalesce(e.value ->> 'amount', '0') !~ '^-?[0-9]{1,9}$' then false
             when jsonb_typeof(coalesce(e.value -> 'context', '{}')) <> 'object' then false
             when e.value -> 'context' ? 'role_ids' and jsonb_typeof(e.value -> 'context' -> 'role_ids') <> 'array'
               then false
             when octet_length(coalesce(e.value -> 'context', '{}')::text) > 4096 then false
             when e.value ->> 'reason' is not null and length(btrim(e.value ->> 'reason')) not between 1 and 500
               then false
             when e.value ->> 'occurred_at' is null then true
             when jsonb_typeof(e.value -> 'occurred_at') <> 'string' then false
             when (e.value ->> 'occurred_at') !~ ('^20[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])[T ]'
                                                  '([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?'
                                                  '(Z|[+-](0[0-9]|1[0-4])(:?[0-5][0-9])?)?$') then false
             else substr(e.value ->> 'occurred_at', 9, 2)::integer
                  <= extract(day from make_date(substr(e.value ->> 'occurred_at', 1, 4)::integer,
                                                substr(e.value ->> 'occurred_at', 6, 2)::integer, 1)
                                      + interval '1 month - 1 day')
           end as clean
      from jsonb_array_elements(p_awards) with ordinality as e (value, ord)
  )
  select x.ord, x.clean and c.at is not null and c.at >= timestamptz '2000-01-01 00:00:00+00'
                and c.at <= now() + interval '5 minutes',
         c.pid, x.v ->> 'activity', x.v ->> 'idempotency_key', c.amount, c.at, c.context,
         btrim(x.v ->> 'reason'),
         case when x.clean then
           jsonb_build_object('fn', 'award_xp', 'profile_id', c.pid, 'activity', x.v ->> 'activity',
                              'amount', c.amount, 'occurred_at', private.utc_text(c.given_at), 'context', c.context)
           || case when x.v ->> 'reason' is not null
                   then jsonb_build_object('reason', btrim(x.v ->> 'reason')) else '{}' end
         end
    from x
   cross join lateral (
     select case when x.clean then (x.v ->> 'profile_id')::uuid end as pid,
            case when x.clean then (x.v ->> 'amount')::integer end as amount,
            case when x.clean then (x.v ->> 'occurred_at')::timestamptz end as given_at,
            case when x.clean then coalesce((x.v ->> 'occurred_at')::timestamptz, now()) end as at,
            case when x.clean then coalesce(x.v -> 'context', '{}') end as context
   ) c
$$;
comment on function private.award_set_items(jsonb) is
  'The items of an award batch (p_awards: a JSON array of award_xp_batch items), in array order (ord from 1): '
  'profile_id, activity, idempotency_key, amount (XP), occurred_at (now when not given), context, reason '
  '(trimmed) and the request award_xp stores, and clean: whether award_xp would take the item without an '
  'argument error (XPBAD, XPTIM, XPINF, XPBIG) and every cast is safe. Parsed fields are null when not clean.';
revoke all on function private.award_set_items(jsonb) from public;


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

create or replace function private.award_set(p_awards jsonb)
returns table (ord integer, receipt jsonb)
language plpgsql
volatile
security definer
set search_path = ''
as $$
#variable_conflict use_column
declare
  v_index integer := 0; v_item jsonb; v_state text; v_message text; v_detail text; v_need record;
  v_clean boolean; v_set integer[] := '{}'; v_rest integer[] := '{}'; v_late integer[] := '{}';
  v_points_per_xp numeric; v_max_multiplier numeric; v_horizon integer; v_n integer; v_i integer;
  v_amount integer; v_left integer; v_capped boolean; v_floored boolean; v_used integer; v_xp bigint;
  v_season bigint; v_season_amount integer;
  -- The batch's items parsed once (private.award_set_items), in array order.
  a_ord integer[]; a_clean boolean[]; a_pid uuid[]; a_activity text[]; a_key text[]; a_amount integer[];
  a_at timestamptz[]; a_context jsonb[]; a_reason text[]; a_request jsonb[];
  -- The set's items in (profile, array order), as arrays: what the ordered pass reads (d_), the slots it keeps
  -- running state in (s_: per profile and activity the last credited award; per profile, cap group and day the
  -- cap usage; per profile and layer the layer XP; per profile and season the season score) and what it decides
  -- (o_). Slot 0 is none.
  d_ord integer[]; d_pid uuid[]; d_slug text[]; d_layer text[]; d_at timestamptz[]; d_season bigint[];
  d_cap_group text[]; d_day date[]; d_base integer[]; d_multiplier numeric[]; d_multipliers jsonb[];
  d_key text[]; d_reason text[]; d_request jsonb[]; d_requested integer[]; d_late boolean[];
  d_pre integer[]; d_cooldown integer[]; d_floor integer[]; d_cap integer[];
  d_cd_slot integer[]; d_cap_slot integer[]; d_layer_slot integer[]; d_season_slot integer[];
  s_last timestamptz[]; s_used integer[]; s_layer bigint[]; s_season bigint[];
  o_amount integer[]; o_left integer[]; o_capped boolean[]; o_floored boolean[]; o_used integer[];
  o_season_amount integer[];
begin
  if p_awards is null or jsonb_typeof(p_awards) <> 'array' then
    raise exception 'awards must be a JSON array' using errcode = 'XPBAD';
  end if;
  if jsonb_array_length(p_awards) > 10000 then
    raise exception 'awards may hold at most 10000 items, got %', jsonb_array_length(p_awards)
      using errcode = 'XPBAD';
  end if;

  -- One block for the whole batch (one subtransaction, not one per item): any failure rolls the batch back
  -- and names the item.
  begin
    -- Lock order (issue 18): every profile the batch names, in profile id order, before the first award, so
    -- two batches over the same members in opposite orders wait for each other instead of deadlocking.
    perform 1 from public.profiles p
     where p.id in (select (a.value ->> 'profile_id')::uuid from jsonb_array_elements(p_awards) as a
                     where jsonb_typeof(a.value) = 'object'
                       and a.value ->> 'profile_id' ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$')
     order by p.id
     for update;

    select array_agg(i.ord order by i.ord), array_agg(i.clean order by i.ord), array_agg(i.profile_id order by i.ord),
           array_agg(i.activity order by i.ord), array_agg(i.idempotency_key order by i.ord),
           array_agg(i.amount order by i.ord), array_agg(i.occurred_at order by i.ord),
           array_agg(i.context order by i.ord), array_agg(i.reason order by i.ord), array_agg(i.request order by i.ord)
      into a_ord, a_clean, a_pid, a_activity, a_key, a_amount, a_at, a_context, a_reason, a_request
      from private.award_set_items(p_awards) i;
    select coalesce(max(e.late_award_horizon_seconds), 172800) into v_horizon from public.engine_settings e;
    -- The keys' locks, as private.award_xp takes them, before the ledger is read for replays and late awards (a
    -- racing award of one of these keys for another profile waits, then finds it and raises XPIDM).
    perform pg_advisory_xact_lock(hashtextextended('xp_ledger:' || k.key, 0))
       from (select distinct i.key from unnest(a_key) as i (key) where i.key is not null) k
      order by k.key;

    -- Which items the set path takes. Every item must be one award_xp takes without an error, else the whole
    -- batch is decided item by item (so an error and its index are award_xp's). Then a member's items are
    -- decided as a set only when none is a replay or shares its key with another item, no base lies beyond
    -- +-1,000,000 XP, no layer_status multiplier applies (it reads the status each award leaves), no season
    -- they fall in is finalised, and no item is late (dated before an award of the member already in the
    -- ledger or earlier in the batch: award_xp decides it again with the later ones) unless it is late beyond
    -- the horizon (decided as of its arrival, as the set path does) and its activity has no cooldown (whose
    -- window reaches both ways). An item of an activity with a cooldown must come after every ledger row of
    -- the member (so the state before the batch is the last credited award before it).
    with it as materialized (
      select * from unnest(a_ord, a_clean, a_pid, a_activity, a_key, a_amount, a_at, a_request)
                      as i (ord, clean, profile_id, activity, idempotency_key, amount, occurred_at, request)
    ), member as (
      select m.profile_id, private.suspended_until(m.profile_id) as suspended_until
        from (select distinct it.profile_id from it where it.clean) m
    ), chk as (
      select it.ord, it.profile_id, it.clean, it.amount, it.occurred_at, it.idempotency_key, it.request,
             a.slug as activity_slug, a.active, a.min_xp, a.max_xp, a.layer_slug, a.cooldown_seconds,
             coalesce(a.counts_for_season, true) as counts_for_season, coalesce(r.base_xp, a.base_xp) as rate,
             p.id is not null as profile_found, mb.suspended_until, ex.request as ledger_request,
             count(*) over (partition by it.idempotency_key) > 1 as shared_key,
             row_number() over (partition by it.idempotency_key order by it.ord) as key_rank,
             first_value(it.request) over (partition by it.idempotency_key order by it.ord) as first_request,
             max(it.occurred_at) over (partition by it.profile_id order by it.ord
                                       rows between unbounded preceding and 1 preceding) as prev_at,
             max(it.idempotency_key) over (partition by it.profile_id, it.occurred_at order by it.ord
                                           rows between unbounded preceding and 1 preceding) as prev_key
        from it
        left join member mb on mb.profile_id = it.profile_id
        left join public.profiles p on p.id = it.profile_id
        left join public.activity_types a on a.slug = it.activity
        left join lateral (
          select r.base_xp from public.activity_rates r
           where r.activity_slug = a.slug and r.effective_from <= it.occurred_at
           order by r.effective_from desc limit 1
        ) r on true
        left join lateral (
          select l.request from public.xp_ledger l where l.idempotency_key = it.idempotency_key limit 1
        ) ex on it.clean
    ), judged as (
      select c.*,
             coalesce(c.ledger_request = c.request, c.key_rank > 1 and c.first_request = c.request, false) as replay,
             coalesce(c.clean
                      and case when c.ledger_request is not null then c.ledger_request = c.request
                               when c.key_rank > 1 then c.first_request = c.request
                               else c.profile_found and c.suspended_until is null and c.active
                                    and (c.amount is null
                                         or case when c.min_xp is null then c.amount = c.rate
                                                 else c.amount between c.min_xp and c.max_xp end)
                          end, false) as valid,
             -- award_xp's late: an award of the member dated after this one (time, then key).
             coalesce(c.prev_at > c.occurred_at, false) or coalesce(c.prev_key > c.idempotency_key, false)
             or exists (select 1 from public.xp_ledger l
                         where l.profile_id = c.profile_id and l.occurred_at >= c.occurred_at
                           and (l.occurred_at, l.idempotency_key) > (c.occurred_at, c.idempotency_key)
                           and l.request ->> 'fn' = 'award_xp') as late
        from chk c
    ), hard as (
      select j.ord, j.valid, j.late,
             bool_or(j.replay or j.shared_key
                     or coalesce(coalesce(j.amount, j.rate) not between -1000000 and 1000000, true)
                     or (j.late and (j.cooldown_seconds > 0
                                     or (v_horizon > 0 and j.occurred_at >= now() - make_interval(secs => v_horizon))))
                     or (j.cooldown_seconds > 0 and exists (
                           select 1 from public.xp_ledger l
                            where l.profile_id = j.profile_id and l.occurred_at >= j.occurred_at
                              and (l.occurred_at, l.idempotency_key) > (j.occurred_at, j.idempotency_key)))
                     or exists (
                          select 1 from public.multipliers x
                           where x.kind = 'layer_status'
                             and (x.activity_slug is null or x.activity_slug = j.activity_slug)
                             and (x.starts_at is null or x.starts_at <= j.occurred_at)
                             and (x.ends_at is null or j.occurred_at < x.ends_at))
                     or coalesce(j.counts_for_season and (
                          select s.finalized_at is not null from public.seasons s
                           where s.layer_slug = j.layer_slug and s.starts_at <= j.occurred_at
                             and j.occurred_at < s.ends_at
                           order by s.starts_at desc limit 1), false))
               over (partition by j.profile_id) as fallback
        from judged j
    )
    select coalesce(bool_and(h.valid), true),
           coalesce(array_agg(h.ord order by h.ord) filter (where not h.fallback), '{}'),
           coalesce(array_agg(h.ord order by h.ord) filter (where h.fallback), '{}'),
           coalesce(array_agg(h.ord order by h.ord) filter (where h.late and not h.fallback), '{}')
      into v_clean, v_set, v_rest, v_late
      from hard h;
    -- Tiers must cover every level (apply_xp keeps the tier held when none does; the set path does not).
    if not v_clean or not exists (select 1 from public.tiers t
                                   where t.min_level <= least(1, (select min(c.level) from public.level_curve c))) then
      v_set := '{}';
      select coalesce(array_agg(e.ord::integer order by e.ord), '{}') into v_rest
        from jsonb_array_elements(p_awards) with ordinality as e (v, ord);
    end if;

    if cardinality(v_set) > 0 then
      select coalesce((select s.points_per_xp from public.engine_settings s limit 1), 1),
             coalesce((select s.max_multiplier from public.engine_settings s limit 1), 5)
        into v_points_per_xp, v_max_multiplier;
      -- Seasons are made on first use (private.season_for) in array order, as the items one at a time would
      -- make them, those left to award_xp included (replays make none), so that season ids follow array order.
      for v_need in
        select x.layer_slug, x.occurred_at
          from (select i.ord, i.occurred_at, a.layer_slug
                  from unnest(a_ord, a_activity, a_key, a_at) as i (ord, activity, key, occurred_at)
                  join public.activity_types a on a.slug = i.activity
                 where coalesce(a.counts_for_season, true)
                   and not exists (select 1 from public.xp_ledger l where l.idempotency_key = i.key)
               ) x
         where not exists (select 1 from public.seasons s
                            where s.layer_slug = x.layer_slug and s.starts_at <= x.occurred_at
                              and x.occurred_at < s.ends_at)
         order by x.ord
      loop
        perform private.season_for(v_need.layer_slug, v_need.occurred_at);
      end loop;

      -- What the ordered pass needs: per item the rate in force (or the named amount), the multipliers, the
      -- cap group and its local day, the season; per slot the state before the batch (the last credited award
      -- of the activity within the cooldown before the member's first item of it, as award_xp finds it).
      with d as materialized (
        select i.ord, i.profile_id as pid, i.occurred_at as at, i.context, a.slug, a.layer_slug as layer,
               a.cooldown_seconds, a.xp_floor, a.cap_group, c.daily_cap,
               (i.occurred_at at time zone c.time_zone)::date as day,
               coalesce(i.amount, r.base_xp, a.base_xp) as base, se.id as season_id,
               i.key, i.reason, i.request, i.amount as requested, i.ord = any (v_late) as late
          from unnest(a_ord, a_pid, a_activity, a_key, a_amount, a_at, a_context, a_reason, a_request)
                 as i (ord, profile_id, activity, key, amount, occurred_at, context, reason, request)
          join public.activity_types a on a.slug = i.activity
          left join public.cap_groups c on c.slug = a.cap_group
          left join lateral (
            select r.base_xp from public.activity_rates r
             where r.activity_slug = a.slug and r.effective_from <= i.occurred_at
             order by r.effective_from desc limit 1
          ) r on true
          left join lateral (
            select s.id from public.seasons s
             where coalesce(a.counts_for_season, true) and s.layer_slug = a.layer_slug
               and s.starts_at <= i.occurred_at and i.occurred_at < s.ends_at
             order by s.starts_at desc limit 1
          ) se on true
         where i.ord = any (v_set)
      ), x as materialized (
        select d.*, mm.multiplier, mm.multipliers,
               case when d.base > 0 then floor(d.base * mm.multiplier)::integer else d.base end as pre,
               dense_rank() over (order by d.pid, d.slug) as cd_slot,
               dense_rank() over (order by d.pid, d.cap_group, d.day) as cap_slot,
               dense_rank() over (order by d.pid, d.layer) as layer_slot,
               dense_rank() over (order by d.pid, d.season_id) as season_slot
          from d
         cross join lateral (
           -- Multipliers as award_xp takes them: the largest factor per kind, kinds multiply, capped.
           select case when d.base > 0 then round(least(coalesce(exp(sum(ln(m.factor))), 1), v_max_multiplier), 3)
                       else 1 end as multiplier,
                  case when d.base > 0 then
                    coalesce(jsonb_agg(jsonb_build_object('kind', m.kind, 'match', m.match_value, 'factor', m.factor)
                                       order by m.kind), '[]')
                  else '[]' end as multipliers
             from (
               select distinct on (y.kind) y.kind, y.match_value, y.factor
                 from public.multipliers y
                where d.base > 0
                  and (y.activity_slug is null or y.activity_slug = d.slug)
                  and (y.starts_at is null or y.starts_at <= d.at)
                  and (y.ends_at is null or d.at < y.ends_at)
                  and ((y.kind = 'role' and d.context ? 'role_ids'
                          and y.match_value in (select jsonb_array_elements_text(d.context -> 'role_ids')))
                       or (y.kind = 'channel' and y.match_value = d.context ->> 'channel_id')
                       or (y.kind = 'event' and (y.match_value is null or y.match_value = d.context ->> 'event_id')))
                order by y.kind, y.factor desc
             ) m
         ) mm
      )
      select array_agg(x.ord order by x.pid, x.ord), array_agg(x.pid order by x.pid, x.ord),
             array_agg(x.slug order by x.pid, x.ord), array_agg(x.layer order by x.pid, x.ord),
             array_agg(x.at order by x.pid, x.ord), array_agg(x.season_id order by x.pid, x.ord),
             array_agg(x.cap_group order by x.pid, x.ord), array_agg(x.day order by x.pid, x.ord),
             array_agg(x.base order by x.pid, x.ord), array_agg(x.multiplier order by x.pid, x.ord),
             array_agg(x.multipliers order by x.pid, x.ord), array_agg(x.pre order by x.pid, x.ord),
             array_agg(x.key order by x.pid, x.ord), array_agg(x.reason order by x.pid, x.ord),
             array_agg(x.request order by x.pid, x.ord), array_agg(x.requested order by x.pid, x.ord),
             array_agg(x.late order by x.pid, x.ord),
             array_agg(x.cooldown_seconds order by x.pid, x.ord), array_agg(x.xp_floor order by x.pid, x.ord),
             array_agg(coalesce(x.daily_cap, 0) order by x.pid, x.ord),
             array_agg(x.cd_slot::integer order by x.pid, x.ord),
             array_agg(case when x.cap_group is not null then x.cap_slot::integer else 0 end order by x.pid, x.ord),
             array_agg(x.layer_slot::integer order by x.pid, x.ord),
             array_agg(case when x.season_id is not null then x.season_slot::integer else 0 end order by x.pid, x.ord),
             (select array_agg(coalesce(
                       case when g.cooldown_seconds > 0 then (
                         select max(u.occurred_at)
                           from public.xp_ledger u
                          where u.id in (
                                  select coalesce(l.corrects_id, l.id) from public.xp_ledger l
                                   where l.profile_id = g.pid
                                     and l.activity_slug = g.slug
                                     and l.amount > 0
                                     and l.reverses_id is null
                                     and l.occurred_at > g.first_at - make_interval(secs => g.cooldown_seconds)
                                     and l.occurred_at < g.first_at + make_interval(secs => g.cooldown_seconds))
                            and u.amount + coalesce((select sum(c.amount) from public.xp_ledger c
                                                      where c.corrects_id = u.id or c.reverses_id = u.id), 0) > 0)
                       end, '-infinity') order by g.cd_slot)
                from (select x.cd_slot, x.pid, x.slug, x.cooldown_seconds, min(x.at) as first_at
                        from x group by 1, 2, 3, 4) g),
             (select array_agg(coalesce(u.used, 0) order by g.cap_slot)
                from (select distinct x.cap_slot, x.pid, x.cap_group, x.day from x) g
                left join private.daily_cap_usage u
                  on u.profile_id = g.pid and u.cap_group = g.cap_group and u.day = g.day),
             (select array_agg(coalesce(pl.xp, 0) order by g.layer_slot)
                from (select distinct x.layer_slot, x.pid, x.layer from x) g
                left join public.profile_layers pl on pl.profile_id = g.pid and pl.layer_slug = g.layer),
             (select array_agg(coalesce(ss.xp, 0) order by g.season_slot)
                from (select distinct x.season_slot, x.pid, x.season_id from x) g
                left join public.season_scores ss on ss.season_id = g.season_id and ss.profile_id = g.pid)
        into d_ord, d_pid, d_slug, d_layer, d_at, d_season, d_cap_group, d_day, d_base, d_multiplier,
             d_multipliers, d_pre, d_key, d_reason, d_request, d_requested, d_late, d_cooldown, d_floor, d_cap, d_cd_slot, d_cap_slot, d_layer_slot, d_season_slot,
             s_last, s_used, s_layer, s_season
        from x;

      -- The ordered pass: cooldown, daily cap and floor, award after award of each member, as award_xp decides
      -- them (arithmetic on arrays, no statement per item).
      v_n := cardinality(d_ord);
      o_amount := array_fill(0, array[v_n]);
      o_left := array_fill(0, array[v_n]);
      o_capped := array_fill(false, array[v_n]);
      o_floored := array_fill(false, array[v_n]);
      o_used := array_fill(0, array[v_n]);
      o_season_amount := array_fill(0, array[v_n]);
      for v_i in 1 .. v_n loop
        v_amount := d_pre[v_i];
        v_left := 0;
        v_capped := false;
        v_floored := false;
        -- Cooldown: at most one credited award of the activity per window.
        if d_cooldown[v_i] > 0 and v_amount > 0
           and s_last[d_cd_slot[v_i]] > d_at[v_i] - make_interval(secs => d_cooldown[v_i]) then
          v_left := greatest(1, ceil(extract(epoch from s_last[d_cd_slot[v_i]]
                                     + make_interval(secs => d_cooldown[v_i]) - d_at[v_i]))::integer);
          v_amount := 0;
        end if;
        -- Daily cap of the cap group, on that local day.
        if d_cap_slot[v_i] > 0 then
          v_used := s_used[d_cap_slot[v_i]];
          if v_amount > 0 and v_used + v_amount > d_cap[v_i] then
            v_amount := greatest(d_cap[v_i] - v_used, 0);
            v_capped := true;
          end if;
        end if;
        -- Floor: a penalty never takes the layer's XP below the activity's xp_floor.
        v_xp := s_layer[d_layer_slot[v_i]];
        if v_amount < 0 and v_xp + v_amount < d_floor[v_i] then
          v_amount := least(d_floor[v_i] - v_xp, 0);
          v_floored := true;
        end if;
        if d_cap_slot[v_i] > 0 then
          s_used[d_cap_slot[v_i]] := v_used + v_amount;
          o_used[v_i] := v_used + v_amount;
        end if;
        if v_amount > 0 then
          s_last[d_cd_slot[v_i]] := d_at[v_i];
        end if;
        s_layer[d_layer_slot[v_i]] := v_xp + v_amount;
        -- Each season floors on its own.
        if d_season_slot[v_i] > 0 then
          v_season := s_season[d_season_slot[v_i]];
          v_season_amount := greatest(v_amount, -v_season);
          s_season[d_season_slot[v_i]] := v_season + v_season_amount;
          o_season_amount[v_i] := v_season_amount;
        end if;
        o_amount[v_i] := v_amount;
        o_left[v_i] := v_left;
        o_capped[v_i] := v_capped;
        o_floored[v_i] := v_floored;
      end loop;

      return query select w.ord, w.receipt
                     from private.award_set_write(d_ord, d_pid, d_slug, d_layer, d_at, d_season,
                                                  d_cap_group, d_day, d_cap, d_base, d_multiplier, d_multipliers,
                                                  d_key, d_reason, d_request, d_requested, d_late,
                                                  o_amount, o_left, o_capped, o_floored, o_used, o_season_amount,
                                                  v_points_per_xp) w;
    end if;

    -- The rest, one award at a time, in array order.
    for v_item, v_index in
      select e.value, e.ord::integer - 1 from jsonb_array_elements(p_awards) with ordinality as e (value, ord)
       where e.ord::integer = any (v_rest) order by e.ord
    loop
      if jsonb_typeof(v_item) <> 'object' then
        raise exception 'must be a JSON object' using errcode = 'XPBAD';
      end if;
      if exists (select 1 from jsonb_object_keys(v_item) k
                  where k not in ('profile_id', 'activity', 'idempotency_key', 'amount', 'occurred_at', 'context',
                                  'reason')) then
        raise exception 'unknown key; allowed: profile_id, activity, idempotency_key, amount, occurred_at, context, reason'
          using errcode = 'XPBAD';
      end if;
      ord := v_index + 1;
      receipt := private.award_xp(
        (v_item ->> 'profile_id')::uuid,
        v_item ->> 'activity',
        v_item ->> 'idempotency_key',
        (v_item ->> 'amount')::integer,
        (v_item ->> 'occurred_at')::timestamptz,
        coalesce(v_item -> 'context', '{}'),
        v_item ->> 'reason');
      return next;
    end loop;
  exception when others then
    get stacked diagnostics v_state = returned_sqlstate, v_message = message_text, v_detail = pg_exception_detail;
    if v_state in ('22P02', '22007', '22008', '22003', '22023') then
      v_state := 'XPBAD';  -- a malformed uuid, timestamp or integer in the item
    end if;
    raise exception 'awards[%]: %', v_index, v_message using errcode = v_state, detail = coalesce(v_detail, '');
  end;
end
$$;
comment on function private.award_set(jsonb) is
  'Decides a batch of awards (p_awards: a JSON array of at most 10000 objects {profile_id, activity, '
  'idempotency_key, amount?, occurred_at?, context?, reason?}, the parameters of award_xp) as award_xp would one '
  'at a time in array order, and returns (ord: the item''s position from 1, receipt: award_xp''s receipt) for '
  'every item. A member whose items are all new, in time order after their ledger, without a layer_status '
  'multiplier or a finalised season, is decided as a set (private.award_set_write); anything else, and the '
  'whole batch when any item is one award_xp refuses, goes through private.award_xp item by item. All or '
  'nothing: the first failing item (in array order) rolls the batch back with award_xp''s SQLSTATE (XPIDM, '
  'XPACT, XPAMT, XPPRF, XPSUS, XPBAD, XPTIM, XPINF, XPBIG) and a message starting with awards[<index from 0>]. '
  'Locks every profile it names in profile id order first. Only the engine calls it.';
revoke all on function private.award_set(jsonb) from public;
