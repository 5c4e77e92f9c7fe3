-- The ledger and the one award path: award_xp decides amount, rate, multipliers, cooldown,
-- daily cap and floor, appends one ledger row and applies it (totals, layers, seasons, level,
-- tier, unlocks, points, notifications); idempotency keys; the ledger is append-only.
--
-- Points earned with XP are appended to public.points_ledger here (32_points.sql owns it).
--
-- Tables: public.xp_ledger, public.profile_layers, public.season_scores, private.daily_cap_usage,
--   public.activity_types, public.cap_groups, public.multipliers, public.engine_settings.
-- Tests: tests/sql/test_award.py

------------------------------------------------------------------------------
-- The ledger writer
------------------------------------------------------------------------------

create or replace function private.find_receipt(p_idempotency_key text, p_request jsonb)
returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_request jsonb;
  v_receipt jsonb;
begin
  select l.request, l.receipt into v_request, v_receipt
    from public.xp_ledger l where l.idempotency_key = p_idempotency_key
   limit 1;
  if not found then
    return null;
  end if;
  if v_request is distinct from p_request then
    raise exception 'Idempotency key % was already used with other parameters', p_idempotency_key
      using errcode = 'XPIDM', detail = 'first request: ' || v_request::text;
  end if;
  return v_receipt || jsonb_build_object('replayed', true);
end
$$;
comment on function private.find_receipt(text, jsonb) is
  'The first receipt of an idempotency key (with replayed = true), null for a new key; raises XPIDM when the '
  'key was used with another request.';
revoke all on function private.find_receipt(text, jsonb) from public;

create or replace function private.apply_xp(
  p_profile_id uuid,
  p_activity text,
  p_parts jsonb,
  p_occurred_at timestamptz,
  p_idempotency_key text,
  p_actor_id uuid,
  p_actor_role text,
  p_reason text,
  p_request jsonb,
  p_decision jsonb
)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
-- p_parts: [{"layer": text, "amount": integer}, ...], one per layer touched, amounts already decided
-- (multipliers, cooldown, cap and floor applied). The caller holds the profile row lock. p_decision is
-- merged into the receipt; its reverses_id (private.reverse_row) and corrects_id (private.apply_redecisions) are
-- stored on the ledger rows.
-- This runs on every award: lookups are written inline (one statement for the profile, level, tier,
-- unlocks and settings; one per layer for its totals, status and season) rather than through the
-- lookup functions (level_for_xp, tier_for_level, layer_status_for, season_for), which compute the same.
declare
  v_xp_before bigint;
  v_level_before integer;
  v_tier_before text;
  v_points_before bigint;
  v_points_per_xp numeric;
  v_counts_for_season boolean;
  v_part jsonb;
  v_layer text;
  v_amount integer;
  v_total integer := 0;
  v_points integer := 0;
  v_layer_found boolean;
  v_layer_xp bigint;
  v_status_before text;
  v_status_after text;
  v_season_id bigint;
  v_season_xp bigint;
  v_season_before bigint;
  v_season_amount integer;
  v_layers jsonb := '[]';
  v_season_closed boolean;
  v_any_closed boolean := false;
  v_xp_after bigint;
  v_level_after integer;
  v_tier_after text;
  v_tier_up boolean;
  v_unlocks jsonb;
  v_receipt jsonb;
  v_first_id bigint;
  v_id bigint;
begin
  if jsonb_array_length(p_parts) = 1 then
    v_total := (p_parts -> 0 ->> 'amount')::integer;
  else
    select coalesce(sum((e ->> 'amount')::integer), 0) into v_total from jsonb_array_elements(p_parts) e;
  end if;

  -- The profile, its level and tier after the award, the tiers' unlocks passed on the way, the points
  -- rate and whether the activity counts for seasons: one statement.
  select p.xp, p.level, p.tier, p.points, lv.level, coalesce(tr.slug, p.tier), un.list,
         coalesce((select s.points_per_xp from public.engine_settings s limit 1), 1),
         coalesce((select a.counts_for_season from public.activity_types a where a.slug = p_activity), true)
    into strict v_xp_before, v_level_before, v_tier_before, v_points_before, v_level_after, v_tier_after,
         v_unlocks, v_points_per_xp, v_counts_for_season
    from public.profiles p
   cross join lateral (
     select coalesce((select c.level from public.level_curve c
                       where c.xp_required <= greatest(p.xp + v_total, 0)
                       order by c.xp_required desc limit 1), 1) as level
   ) lv
    left join lateral (
      select t.slug from public.tiers t where t.min_level <= lv.level order by t.min_level desc limit 1
    ) tr on true
   cross join lateral (
     select coalesce(jsonb_agg(jsonb_build_object('tier', u.tier_slug, 'slug', u.slug, 'name', u.name)
                               order by t.min_level, u.position, u.slug), '[]') as list
       from public.tier_unlocks u
       join public.tiers t on t.slug = u.tier_slug
      where t.min_level > p.level and t.min_level <= lv.level
   ) un
   where p.id = p_profile_id;
  v_xp_after := v_xp_before + v_total;
  -- Points are earned by awards only; admin corrections never mint or burn them.
  if v_total > 0 and p_decision ->> 'correction' is null then
    v_points := floor(v_total * v_points_per_xp);
  end if;

  -- Per layer: totals before and after, status, season and season score (one statement; the season is
  -- created by private.season_for only when none contains occurred_at yet).
  for v_part in select * from jsonb_array_elements(p_parts) loop
    v_layer := v_part ->> 'layer';
    v_amount := (v_part ->> 'amount')::integer;
    select pl.profile_id is not null, coalesce(pl.xp, 0), pl.status,
           (select s.slug from public.layer_statuses s
             where s.layer_slug = v_layer and s.min_xp <= greatest(coalesce(pl.xp, 0) + v_amount, 0)
             order by s.min_xp desc limit 1),
           se.id, coalesce(ss.xp, 0), se.finalized_at is not null
      into v_layer_found, v_layer_xp, v_status_before, v_status_after, v_season_id, v_season_before,
           v_season_closed
      from (select) one
      left join public.profile_layers pl on pl.profile_id = p_profile_id and pl.layer_slug = v_layer
      -- An existing season that contains the moment wins (as in private.season_for).
      left join lateral (
        select s.id, s.finalized_at from public.seasons s
         where v_counts_for_season and s.layer_slug = v_layer
           and s.starts_at <= p_occurred_at and p_occurred_at < s.ends_at
         order by s.starts_at desc limit 1
      ) se on true
      left join public.season_scores ss on ss.season_id = se.id and ss.profile_id = p_profile_id;
    if not v_layer_found then
      v_status_before := (select s.slug from public.layer_statuses s
                           where s.layer_slug = v_layer and s.min_xp <= 0 order by s.min_xp desc limit 1);
    end if;
    -- A finalised season is closed: its archived results stand, so a late award (or a reversal of one of
    -- its awards) counts for all-time and layer XP only, and the receipt says so (season_closed).
    if v_season_closed then
      v_season_id := null;
      v_any_closed := true;
    elsif v_counts_for_season and v_season_id is null then
      v_season_id := private.season_for(v_layer, p_occurred_at);
      select coalesce(max(s.xp), 0) into v_season_before
        from public.season_scores s where s.season_id = v_season_id and s.profile_id = p_profile_id;
    end if;
    -- Each season floors on its own: a correction takes from this season's score at most what it
    -- holds. The part applied to the season is stored on the ledger row (season_amount), so
    -- season_scores.xp is always the sum of season_amount over the season's rows. Activities with
    -- counts_for_season = false (season rewards) touch no season.
    v_season_amount := case when v_season_id is not null then greatest(v_amount, -v_season_before) else 0 end;
    v_season_xp := case when v_season_id is not null then v_season_before + v_season_amount end;
    v_layers := v_layers || jsonb_build_object(
      'layer', v_layer, 'amount', v_amount,
      'xp_before', v_layer_xp, 'xp', v_layer_xp + v_amount,
      'status_before', v_status_before, 'status', v_status_after,
      'season_id', v_season_id, 'season_amount', v_season_amount, 'season_xp', v_season_xp);
  end loop;

  -- A tier is reached when the tier changes and something is unlocked on the way (not on a correction down).
  v_tier_up := v_tier_after is distinct from v_tier_before and jsonb_array_length(v_unlocks) > 0;
  v_receipt := coalesce(p_decision, '{}') || jsonb_build_object(
    'profile_id', p_profile_id,
    'activity', p_activity,
    'idempotency_key', p_idempotency_key,
    'occurred_at', private.utc_text(p_occurred_at),
    'granted', v_total,
    'total_xp_before', v_xp_before,
    'total_xp', v_xp_after,
    'level_before', v_level_before,
    'level', v_level_after,
    'tier_before', v_tier_before,
    'tier', v_tier_after,
    'points_granted', v_points,
    'points', v_points_before + v_points,
    'layers', v_layers,
    'layer', v_layers -> 0 ->> 'layer',
    'layer_xp', (v_layers -> 0 ->> 'xp')::bigint,
    'layer_status_before', v_layers -> 0 ->> 'status_before',
    'layer_status', v_layers -> 0 ->> 'status',
    'season_id', (v_layers -> 0 ->> 'season_id')::bigint,
    'season_xp', (v_layers -> 0 ->> 'season_xp')::bigint,
    'unlocks', v_unlocks,
    'season_closed', v_any_closed,
    'tier_up', v_tier_up,
    'tier_name', case when v_tier_up then (select t.name from public.tiers t where t.slug = v_tier_after) end,
    'replayed', false
  );

  -- One ledger row per layer part (they share the key and the receipt), with that layer's total and
  -- season score: one statement per part.
  for v_part in select * from jsonb_array_elements(v_layers) loop
    v_id := nextval('public.xp_ledger_id_seq');
    v_first_id := coalesce(v_first_id, v_id);
    if v_first_id = v_id then
      v_receipt := v_receipt || jsonb_build_object('ledger_id', v_id);
    end if;
    v_amount := (v_part ->> 'amount')::integer;
    with ledger_row as (
      insert into public.xp_ledger (
        id, profile_id, activity_slug, layer_slug, season_id, amount, season_amount, points, occurred_at,
        idempotency_key, actor_id, actor_role, reason, reverses_id, corrects_id, request, receipt
      ) overriding system value values (
        v_id, p_profile_id, p_activity, v_part ->> 'layer', (v_part ->> 'season_id')::bigint,
        v_amount, (v_part ->> 'season_amount')::integer, case when v_first_id = v_id then v_points else 0 end,
        p_occurred_at, p_idempotency_key, p_actor_id, p_actor_role, p_reason,
        (p_decision ->> 'reverses_id')::bigint, (p_decision ->> 'corrects_id')::bigint, p_request, v_receipt
      )
    ), layer_total as (
      insert into public.profile_layers as pl (profile_id, layer_slug, xp, status, reached_at)
      select p_profile_id, v_part ->> 'layer', (v_part ->> 'xp')::bigint, v_part ->> 'status', p_occurred_at
       where v_amount <> 0
      on conflict (profile_id, layer_slug) do update
        set xp = excluded.xp, status = excluded.status, reached_at = excluded.reached_at
    )
    insert into public.season_scores as s (season_id, profile_id, xp, reached_at)
    select (v_part ->> 'season_id')::bigint, p_profile_id, (v_part ->> 'season_xp')::bigint, p_occurred_at
     where (v_part ->> 'season_amount')::integer <> 0
    on conflict (season_id, profile_id) do update
      set xp = excluded.xp, reached_at = excluded.reached_at;

    -- status is the layer status at the new xp, status_before the one held before.
    if v_amount > 0 and v_part ->> 'status' is distinct from v_part ->> 'status_before' then
      insert into public.notifications (profile_id, kind, title, data)
      values (p_profile_id, 'layer_status_up',
              'New ' || (v_part ->> 'layer') || ' status: ' || (v_part ->> 'status'),
              jsonb_build_object('layer', v_part ->> 'layer', 'status_before', v_part ->> 'status_before',
                                 'status', v_part ->> 'status', 'ledger_id', v_first_id));
    end if;
  end loop;

  if v_total <> 0 then
    -- updated_at is stamped here: profiles' _100_validate trigger fires only for the editable columns.
    update public.profiles p
       set xp = v_xp_after,
           level = v_level_after,
           tier = v_tier_after,
           points = p.points + v_points,
           xp_reached_at = p_occurred_at,
           updated_at = now()
     where p.id = p_profile_id;
  end if;
  -- The points the award earned, as a points_ledger row (32_points.sql), keyed on the award's key.
  if v_points > 0 then
    insert into public.points_ledger (profile_id, kind, amount, balance_after, idempotency_key, actor_id, actor_role,
                                      reason, xp_ledger_id, ref)
    values (p_profile_id, 'earned', v_points, v_points_before + v_points, 'xp:' || p_idempotency_key, p_actor_id,
            p_actor_role, p_reason, v_first_id, jsonb_build_object('activity', p_activity));
  end if;

  if v_level_after > v_level_before then
    insert into public.notifications (profile_id, kind, title, data)
    values (p_profile_id, 'level_up', 'Level ' || v_level_after || ' reached',
            jsonb_build_object('level_before', v_level_before, 'level', v_level_after,
                               'total_xp', v_xp_after, 'ledger_id', v_first_id));
  end if;
  if v_tier_up then
    insert into public.notifications (profile_id, kind, title, body, data)
    values (p_profile_id, 'tier_up',
            'Tier ' || coalesce(v_receipt ->> 'tier_name', v_tier_after) || ' reached',
            'Unlocked: ' || (select string_agg(u ->> 'name', ', ') from jsonb_array_elements(v_unlocks) u),
            jsonb_build_object('tier_before', v_tier_before, 'tier', v_tier_after,
                               'tier_name', coalesce(v_receipt ->> 'tier_name', v_tier_after),
                               'unlocks', v_unlocks, 'ledger_id', v_first_id));
  end if;

  return v_receipt;
end
$$;
comment on function private.apply_xp(uuid, text, jsonb, timestamptz, text, uuid, text, text, jsonb, jsonb) is
  'Writes decided XP: ledger rows, cached totals (profile, layers, season), level and tier, points, and '
  'level_up / tier_up / layer_status_up notifications. Returns the receipt. Only the engine calls it. A moment '
  'inside a finalised season counts for no season (season_closed in the receipt). '
  'Cached totals are functions of the ledger: profiles.xp and profile_layers.xp are sums of amount (never '
  'negative: amounts are floored before they get here); season_scores.xp is the sum of season_amount over the '
  'season''s rows (each season floors at zero on its own).';
revoke all on function private.apply_xp(uuid, text, jsonb, timestamptz, text, uuid, text, text, jsonb, jsonb) from public;

------------------------------------------------------------------------------
-- award_xp: the one award path
------------------------------------------------------------------------------

create or replace function private.award_xp(
  p_profile_id uuid,
  p_activity text,
  p_idempotency_key text,
  p_amount integer,
  p_occurred_at timestamptz,
  p_context jsonb,
  p_reason text default null
)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_context jsonb := coalesce(p_context, '{}');
  v_request jsonb;
  v_first_request jsonb;
  v_receipt jsonb;
  v_act public.activity_types;
  v_cap_slug text;
  v_daily_cap integer;
  v_max_multiplier numeric;
  v_profile_xp bigint;
  v_layer_xp bigint;
  v_occurred timestamptz := coalesce(p_occurred_at, now());
  v_base integer;
  v_multiplier numeric := 1;
  v_multipliers jsonb := '[]';
  v_amount integer;
  v_last timestamptz;
  v_cooldown_left integer := 0;
  v_day date;
  v_used integer;
  v_capped boolean := false;
  v_floored boolean := false;
  v_cap_info jsonb;
  v_rate integer;
  v_horizon integer;
  v_late boolean := false;
  v_in_horizon boolean := false;
  v_redecision jsonb;
  v_receipt_out jsonb;
begin
  if p_idempotency_key is null or length(p_idempotency_key) not between 1 and 200 then
    raise exception 'idempotency_key must be 1 to 200 characters' using errcode = 'XPBAD';
  end if;
  if p_profile_id is null then
    raise exception 'profile_id is required' using errcode = 'XPBAD';
  end if;
  if jsonb_typeof(v_context) <> 'object' then
    raise exception 'context must be a JSON object' using errcode = 'XPBAD';
  end if;
  if v_context ? 'role_ids' and jsonb_typeof(v_context -> 'role_ids') <> 'array' then
    raise exception 'context.role_ids must be an array' using errcode = 'XPBAD';
  end if;
  if p_reason is not null and length(btrim(p_reason)) not between 1 and 500 then
    raise exception 'reason must be 1 to 500 characters when given' using errcode = 'XPBAD';
  end if;
  -- Awards happen now or in the past (replays, from 2000 on); five minutes of clock skew are tolerated.
  perform private.assert_time(p_occurred_at, 'occurred_at', interval '5 minutes');
  perform private.assert_json_size(v_context, 'context', 4096);

  v_request := jsonb_build_object(
    'fn', 'award_xp', 'profile_id', p_profile_id, 'activity', p_activity, 'amount', p_amount,
    'occurred_at', private.utc_text(p_occurred_at), 'context', v_context);
  -- The reason joins the request only when given, so requests recorded before awards took one still match.
  if p_reason is not null then
    v_request := v_request || jsonb_build_object('reason', btrim(p_reason));
  end if;

  -- A replay answers from the ledger without taking any lock (private.find_receipt, written inline here
  -- and below because every award runs it).
  select l.request, l.receipt into v_first_request, v_receipt
    from public.xp_ledger l where l.idempotency_key = p_idempotency_key
   limit 1;
  if found then
    if v_first_request is distinct from v_request then
      raise exception 'Idempotency key % was already used with other parameters', p_idempotency_key
        using errcode = 'XPIDM', detail = 'first request: ' || v_first_request::text;
    end if;
    return v_receipt || jsonb_build_object('replayed', true);
  end if;
  -- Suspended members earn nothing (13_moderation.sql): XPSUS.
  perform private.assert_not_suspended(p_profile_id);

  -- The profile row lock serialises every award of one member: cooldowns, caps
  -- and totals are decided on a consistent view.
  select p.xp into v_profile_xp from public.profiles p where p.id = p_profile_id for update;
  if not found then
    raise exception 'Unknown profile: %', p_profile_id using errcode = 'XPPRF';
  end if;
  -- The rules are read under the lock: a rule change (47_rule_changes.sql) holds every profile while it
  -- applies, so an award that waited for it is decided under the changed rules, never the ones it replaced.
  select * into v_act from public.activity_types a where a.slug = p_activity;
  if not found or not v_act.active then
    raise exception 'Unknown or inactive activity: %', coalesce(p_activity, 'null') using errcode = 'XPACT';
  end if;
  -- The rate in force at occurred_at (public.activity_rates) replaces the activity's own base_xp.
  select r.base_xp into v_rate from public.activity_rates r
   where r.activity_slug = v_act.slug and r.effective_from <= v_occurred
   order by r.effective_from desc
   limit 1;
  if found then
    v_act.base_xp := v_rate;
  end if;
  -- The key lock serialises one key across profiles: a racing call for another
  -- profile waits, then finds this row and raises XPIDM (not a unique violation).
  perform pg_advisory_xact_lock(hashtextextended('xp_ledger:' || p_idempotency_key, 0));
  select l.request, l.receipt into v_first_request, v_receipt
    from public.xp_ledger l where l.idempotency_key = p_idempotency_key
   limit 1;
  if found then
    if v_first_request is distinct from v_request then
      raise exception 'Idempotency key % was already used with other parameters', p_idempotency_key
        using errcode = 'XPIDM', detail = 'first request: ' || v_first_request::text;
    end if;
    return v_receipt || jsonb_build_object('replayed', true);
  end if;

  -- Under the lock: the activity's cap group with today's usage, and the multiplier cap (one statement).
  select c.slug, c.daily_cap, (v_occurred at time zone c.time_zone)::date, u.used, s.max_multiplier
    into v_cap_slug, v_daily_cap, v_day, v_used, v_max_multiplier
    from (select) one
    left join public.cap_groups c on c.slug = v_act.cap_group
    left join private.daily_cap_usage u
      on u.profile_id = p_profile_id and u.cap_group = c.slug
     and u.day = (v_occurred at time zone c.time_zone)::date
    left join lateral (select e.max_multiplier from public.engine_settings e limit 1) s on true;

  -- Amount: fixed, or a caller-named amount inside the activity's range.
  if p_amount is null then
    v_base := v_act.base_xp;
  elsif v_act.min_xp is null then
    if p_amount <> v_act.base_xp then
      raise exception 'Activity % grants a fixed % XP, not %', v_act.slug, v_act.base_xp, p_amount
        using errcode = 'XPAMT';
    end if;
    v_base := p_amount;
  elsif p_amount not between v_act.min_xp and v_act.max_xp then
    raise exception 'Activity % allows % to % XP, not %', v_act.slug, v_act.min_xp, v_act.max_xp, p_amount
      using errcode = 'XPAMT';
  else
    v_base := p_amount;
  end if;
  v_amount := v_base;

  -- Multipliers: the largest factor per kind, kinds multiply, capped.
  if v_base > 0 then
    select coalesce(exp(sum(ln(m.factor))), 1),
           coalesce(jsonb_agg(jsonb_build_object('kind', m.kind, 'match', m.match_value, 'factor', m.factor)
                              order by m.kind), '[]')
      into v_multiplier, v_multipliers
      from (
        select distinct on (x.kind) x.kind, x.match_value, x.factor
          from public.multipliers x
         where (x.activity_slug is null or x.activity_slug = v_act.slug)
           and (x.starts_at is null or x.starts_at <= v_occurred)
           and (x.ends_at is null or v_occurred < x.ends_at)
           and (
             (x.kind = 'role' and v_context ? 'role_ids'
                and x.match_value in (select jsonb_array_elements_text(v_context -> 'role_ids')))
             or (x.kind = 'channel' and x.match_value = v_context ->> 'channel_id')
             or (x.kind = 'event' and (x.match_value is null or x.match_value = v_context ->> 'event_id'))
             -- A layer status the member holds before this award ('<layer>:<status>'; 40_events.sql).
             or (x.kind = 'layer_status' and x.match_value in (
                   select pl.layer_slug || ':' || pl.status from public.profile_layers pl
                    where pl.profile_id = p_profile_id))
           )
         order by x.kind, x.factor desc
      ) m;
    v_multiplier := round(least(v_multiplier, coalesce(v_max_multiplier, 5)), 3);
    v_amount := floor(v_base * v_multiplier);
  end if;

  -- Late: the member already has an award dated after this one (time, then key). Within the horizon
  -- (engine_settings.late_award_horizon_seconds, 48 h by default) a late award is decided as of its time and
  -- the later awards are decided again (private.redecide_plan, 34_redecisions.sql): the ledger ends as if
  -- everything had arrived in time order. An older late award, or a late penalty, is decided as of its arrival.
  select coalesce(max(e.late_award_horizon_seconds), 172800) into v_horizon from public.engine_settings e;
  v_in_horizon := v_horizon > 0 and v_occurred >= now() - make_interval(secs => v_horizon);
  v_late := exists (
    select 1 from public.xp_ledger l
     where l.profile_id = p_profile_id and l.occurred_at >= v_occurred
       and (l.occurred_at, l.idempotency_key) > (v_occurred, p_idempotency_key)
       and l.request ->> 'fn' = 'award_xp');
  if v_late and v_in_horizon and v_amount > 0 then
    v_redecision := private.redecide_plan(p_profile_id, v_occurred, p_idempotency_key,
      jsonb_build_object('activity', v_act.slug, 'occurred_at', v_occurred, 'amount', v_amount));
    if (v_redecision ->> 'cooldown_until') is not null then
      v_cooldown_left := greatest(1, ceil(extract(epoch from
                           (v_redecision ->> 'cooldown_until')::timestamptz - v_occurred))::integer);
    end if;
    v_capped := (v_redecision ->> 'capped')::boolean;
    v_used := (v_redecision ->> 'used_before')::integer;
    v_amount := (v_redecision ->> 'granted')::integer;
  end if;

  -- Cooldown: at most one credited award of this activity per window. An award counts as credited while its
  -- net grant (its amount plus the rows that correct or reverse it) is positive.
  if v_redecision is null and v_act.cooldown_seconds > 0 and v_amount > 0 then
    select max(u.occurred_at) into v_last
      from public.xp_ledger u
     where u.id in (
             select coalesce(l.corrects_id, l.id) from public.xp_ledger l
              where l.profile_id = p_profile_id
                and l.activity_slug = v_act.slug
                and l.amount > 0
                and l.reverses_id is null
                and l.occurred_at > v_occurred - make_interval(secs => v_act.cooldown_seconds)
                and l.occurred_at < v_occurred + make_interval(secs => v_act.cooldown_seconds))
       and u.amount + coalesce((select sum(c.amount) from public.xp_ledger c
                                 where c.corrects_id = u.id or c.reverses_id = u.id), 0) > 0;
    if v_last is not null then
      v_cooldown_left := greatest(1, ceil(extract(epoch from
                           v_last + make_interval(secs => v_act.cooldown_seconds) - v_occurred))::integer);
      v_amount := 0;
    end if;
  end if;

  -- Daily cap of the activity's cap group, in the group's time zone.
  if v_redecision is null and v_act.cap_group is not null then
    v_used := coalesce(v_used, 0);
    if v_amount > 0 and v_used + v_amount > v_daily_cap then
      v_amount := greatest(v_daily_cap - v_used, 0);
      v_capped := true;
    end if;
  end if;

  -- Floor: a negative award never takes the layer's XP below the activity's xp_floor (0 by
  -- default, so neither a layer's XP nor the total goes below zero); at or below it, it grants 0.
  if v_amount < 0 then
    select coalesce(max(pl.xp), 0) into v_layer_xp from public.profile_layers pl
     where pl.profile_id = p_profile_id and pl.layer_slug = v_act.layer_slug;
    if v_layer_xp + v_amount < v_act.xp_floor then
      v_amount := least(v_act.xp_floor - v_layer_xp, 0);
      v_floored := true;
    end if;
  end if;

  if v_act.cap_group is not null and v_amount <> 0 then
    insert into private.daily_cap_usage as u (profile_id, cap_group, day, used)
    values (p_profile_id, v_cap_slug, v_day, v_amount)
    on conflict (profile_id, cap_group, day) do update set used = u.used + excluded.used;
    v_used := v_used + v_amount;
  end if;
  if v_act.cap_group is not null then
    v_used := coalesce(v_used, 0);
    v_cap_info := jsonb_build_object('group', v_cap_slug, 'daily_cap', v_daily_cap, 'day', v_day,
                                     'used', v_used, 'remaining', greatest(v_daily_cap - v_used, 0));
  end if;

  v_receipt_out := private.apply_xp(
    p_profile_id, v_act.slug,
    jsonb_build_array(jsonb_build_object('layer', v_act.layer_slug, 'amount', v_amount)),
    v_occurred, p_idempotency_key, null, 'service_role', btrim(p_reason), v_request,
    jsonb_build_object(
      'requested', p_amount,
      'base', v_base,
      'multiplier', v_multiplier,
      'multipliers', v_multipliers,
      'cooldown', v_cooldown_left > 0,
      'cooldown_remaining_seconds', v_cooldown_left,
      'capped', v_capped,
      'cap', v_cap_info,
      'floored', v_floored,
      'late', v_late,
      'beyond_horizon', v_late and v_redecision is null,
      'redecided', coalesce(v_redecision -> 'plan', '[]')));
  -- The later awards decided again, as correction rows after this award's row (each names the award it corrects).
  if jsonb_array_length(coalesce(v_redecision -> 'plan', '[]')) > 0 then
    perform private.apply_redecisions(p_profile_id, v_redecision -> 'plan', (v_receipt_out ->> 'ledger_id')::bigint,
                                      'late award ' || p_idempotency_key);
  end if;
  return v_receipt_out;
end
$$;
comment on function private.award_xp(uuid, text, text, integer, timestamptz, jsonb, text) is 'Implementation of public.award_xp.';
revoke all on function private.award_xp(uuid, text, text, integer, timestamptz, jsonb, text) from public;
grant execute on function private.award_xp(uuid, text, text, integer, timestamptz, jsonb, text) to service_role;

create or replace function public.award_xp(
  profile_id uuid,
  activity text,
  idempotency_key text,
  amount integer default null,
  occurred_at timestamptz default null,
  context jsonb default '{}',
  reason text default null
)
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.award_xp(award_xp.profile_id, award_xp.activity, award_xp.idempotency_key,
                          award_xp.amount, award_xp.occurred_at, award_xp.context, award_xp.reason)
$$;
comment on function public.award_xp(uuid, text, text, integer, timestamptz, jsonb, text) is
  'The one award path. Grants XP for an activity to a profile and returns a receipt (jsonb): granted (XP '
  'actually credited), base, requested, multiplier and multipliers, cooldown (bool) and '
  'cooldown_remaining_seconds, capped (bool) and cap {group, daily_cap, day, used, remaining}, floored, '
  'total_xp_before/total_xp, level_before/level, tier_before/tier, layer, layer_xp, '
  'layer_status_before/layer_status, season_id, season_xp (null when occurred_at lies in a season already '
  'finalised: season_closed = true, the award counts for all-time and layer XP only), points_granted, points, unlocks '
  '[{tier, slug, name}], tier_up (a new tier was reached) and tier_name, ledger_id, replayed, late (the member '
  'already had an award dated after this one), beyond_horizon (late by more than '
  'engine_settings.late_award_horizon_seconds, 48 h by default: decided as of its arrival) and redecided '
  '[{ledger_id, activity, occurred_at, granted_before, granted}]: within the horizon a late award is decided as of '
  'its time and the later awards whose cooldown or daily cap it changes are decided again, each difference '
  'appended as a correction row (corrects_id), so the ledger ends as if the awards had arrived in time order. The base is the rate in force at occurred_at '
  '(public.activity_rates) or the activity''s base_xp; a penalty stops at the activity''s xp_floor. '
  'amount (XP) may only be named for activities with a range; '
  'occurred_at defaults to now (UTC); context carries role_ids (array of text), channel_id and event_id for '
  'multipliers, at most 4096 bytes as JSON text (XPBIG); reason (1-500 characters, optional) is stored on the '
  'ledger row and joins the request. occurred_at lies in [2000-01-01T00:00Z, now + 5 minutes] (XPTIM; XPINF for '
  '+-infinity). The same idempotency_key returns the first receipt (replayed = true) and credits nothing. '
  'Errors: XPIDM key reused with other parameters, XPACT unknown activity, XPAMT amount not allowed, '
  'XPPRF unknown profile, XPBAD malformed arguments. service_role only.';
revoke all on function public.award_xp(uuid, text, text, integer, timestamptz, jsonb, text) from public, anon, authenticated;
grant execute on function public.award_xp(uuid, text, text, integer, timestamptz, jsonb, text) to service_role;

------------------------------------------------------------------------------
-- Triggers
------------------------------------------------------------------------------

create or replace function private.tg_xp_ledger__append_only()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  raise exception 'xp_ledger is append-only: correct XP with a new row (admin_adjust_xp), never % it', lower(tg_op)
    using errcode = 'XPLED';
end
$$;
comment on function private.tg_xp_ledger__append_only() is 'Refuses every update, delete and truncate of the ledger.';
revoke all on function private.tg_xp_ledger__append_only() from public;

drop trigger if exists _100_append_only on public.xp_ledger;
create trigger _100_append_only before update or delete on public.xp_ledger
  for each row execute function private.tg_xp_ledger__append_only();
drop trigger if exists _101_append_only_truncate on public.xp_ledger;
create trigger _101_append_only_truncate before truncate on public.xp_ledger
  for each statement execute function private.tg_xp_ledger__append_only();
