-- Awards decided as a set (issue 16 item 1): private.award_set decides a batch of awards with the rules of
-- private.award_xp (rate in force, multipliers, cooldown, daily cap, floor, levels, tiers, layers, seasons,
-- points) in a few set-based statements and one ordered pass, and writes the ledger rows in one statement and
-- the derived state (profile, layer and season totals, cap usage) once per profile per batch. Every receipt is
-- the one private.award_xp would have stored for the items sent one at a time in array order. What the set
-- path does not take is decided by private.award_xp itself, item by item, in array order, in the same call.
--
-- Tables: none of its own; through private.award_set_write (39_award_set_write.sql) it writes what
--   private.apply_xp writes, and public.leaderboard_count_deltas once per member and board per batch (count
--   triggers off meanwhile); the ledger's statement triggers (badges, feed) decide the batch's rows together.
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


create or replace function private.award_set(p_awards jsonb, p_fail_fast boolean default false)
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
  v_members uuid[]; b_board text[]; b_scope text[]; b_pid uuid[]; b_xp bigint[];  -- board scores before
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
    select coalesce(bool_and(h.valid), true), min(h.ord) filter (where not h.valid) - 1,
           coalesce(array_agg(h.ord order by h.ord) filter (where not h.fallback), '{}'),
           coalesce(array_agg(h.ord order by h.ord) filter (where h.fallback), '{}'),
           coalesce(array_agg(h.ord order by h.ord) filter (where h.late and not h.fallback), '{}')
      into v_clean, v_index, v_set, v_rest, v_late
      from hard h;
    -- Fail fast: name the first item award_xp would refuse without deciding the items before it.
    if not v_clean and p_fail_fast then
      raise exception 'refused (fail fast: decide it alone for its error)' using errcode = 'XPBAD';
    end if;
    v_index := 0;
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

      -- The leaderboard counts of the set's members move once per member and board (from their scores
      -- before the write to those after it), not once per row written (60_leaderboards.sql).
      v_members := array(select distinct x from unnest(d_pid) x);
      select array_agg(b.board), array_agg(b.scope), array_agg(b.profile_id), array_agg(b.xp)
        into b_board, b_scope, b_pid, b_xp
        from private.leaderboard_scores(v_members) b;
      perform set_config('xpbase.leaderboard_counts_batched', 'on', true);
      return query select w.ord, w.receipt
                     from private.award_set_write(d_ord, d_pid, d_slug, d_layer, d_at, d_season,
                                                  d_cap_group, d_day, d_cap, d_base, d_multiplier, d_multipliers,
                                                  d_key, d_reason, d_request, d_requested, d_late,
                                                  o_amount, o_left, o_capped, o_floored, o_used, o_season_amount,
                                                  v_points_per_xp) w;
      perform set_config('xpbase.leaderboard_counts_batched', 'off', true);
      perform private.leaderboard_counts_since(v_members, b_board, b_scope, b_pid, b_xp);
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
comment on function private.award_set(jsonb, boolean) is
  'Decides a batch of awards (p_awards: a JSON array of at most 10000 objects {profile_id, activity, '
  'idempotency_key, amount?, occurred_at?, context?, reason?}, the parameters of award_xp) as award_xp would one '
  'at a time in array order, and returns (ord: the item''s position from 1, receipt: award_xp''s receipt) for '
  'every item. A member whose items are all new, in time order after their ledger, without a layer_status '
  'multiplier or a finalised season, is decided as a set (private.award_set_write); anything else, and the '
  'whole batch when any item is one award_xp refuses, goes through private.award_xp item by item. All or '
  'nothing: the first failing item (in array order) rolls the batch back with award_xp''s SQLSTATE (XPIDM, '
  'XPACT, XPAMT, XPPRF, XPSUS, XPBAD, XPTIM, XPINF, XPBIG) and a message starting with awards[<index from 0>]. '
  'With p_fail_fast, a batch holding an item that award_xp would refuse is not decided at all: it fails at once '
  'with XPBAD and awards[<the first such item>] (its own error is left to the caller to find, deciding it '
  'alone). Locks every profile it names in profile id order first. Only the engine calls it.';
revoke all on function private.award_set(jsonb, boolean) from public;
