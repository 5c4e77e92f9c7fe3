-- Late awards within the horizon are decided in time order and the later awards decided again as correction rows (issue 16 item 4); reversals reverse an award's net grant; seasons finalise after the horizon
--
-- Written by `xpbase migration new` from the feature files in supabase/sql/:
-- the function and trigger definitions that changed since the last migration.
-- Edit the feature files, not this file; landed migrations never change.
-- Changed:
--   function private.apply_xp(uuid, text, jsonb, timestamptz, text, uuid, text, text, jsonb, jsonb)
--   function private.award_xp(uuid, text, text, int4, timestamptz, jsonb, text)
--   function public.award_xp(uuid, text, text, int4, timestamptz, jsonb, text)
--   function private.reverse_row(public.xp_ledger, text, jsonb, text, uuid, text)
--   function public.reverse_award(int8, text)
--   function private.redecide_plan(uuid, timestamptz, text, jsonb)
--   function private.apply_redecisions(uuid, jsonb, int8, text)
--   function private.finalize_seasons(timestamptz)
--   function public.finalize_seasons(timestamptz)
--   function public.list_my_ledger(int4, text)

-- from supabase/sql/30_award.sql --------------------------------------------

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

  -- The profile row lock serialises every award of one member: cooldowns, caps
  -- and totals are decided on a consistent view.
  select p.xp into v_profile_xp from public.profiles p where p.id = p_profile_id for update;
  if not found then
    raise exception 'Unknown profile: %', p_profile_id using errcode = 'XPPRF';
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

-- from supabase/sql/31_reversals.sql ----------------------------------------

create or replace function private.reverse_row(
  p_row public.xp_ledger,
  p_key text,
  p_request jsonb,
  p_reason text,
  p_actor_id uuid,
  p_actor_role text
)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
-- The caller holds the member's row lock and the key's lock, and has checked the key is new.
declare
  v_receipt jsonb;
  v_layer_xp bigint;
  v_amount bigint;
  v_floored boolean := false;
  v_cap_group public.cap_groups;
  v_earned bigint;
  v_net bigint;
begin
  if p_row.reverses_id is not null then
    raise exception 'Ledger row % is itself a reversal (of row %); award again instead of reversing it',
      p_row.id, p_row.reverses_id using errcode = 'XPREV';
  end if;
  if p_row.corrects_id is not null then
    raise exception 'Ledger row % corrects row % (a late award decided it again); reverse row % instead',
      p_row.id, p_row.corrects_id, p_row.corrects_id using errcode = 'XPREV';
  end if;
  -- What the row granted in the end: its amount and the corrections that decided it again (34_redecisions.sql).
  select p_row.amount + coalesce(sum(c.amount), 0) into v_net
    from public.xp_ledger c where c.corrects_id = p_row.id;
  if v_net = 0 then
    raise exception 'Ledger row % granted no XP; there is nothing to reverse', p_row.id
      using errcode = 'XPREV';
  end if;

  -- Layer XP never goes below zero: when later penalties already took part of this row's XP, the
  -- reversal takes what is left and says so (floored).
  select coalesce(max(pl.xp), 0) into v_layer_xp from public.profile_layers pl
   where pl.profile_id = p_row.profile_id and pl.layer_slug = p_row.layer_slug;
  v_amount := -v_net;
  if v_layer_xp + v_amount < 0 then
    v_amount := -v_layer_xp;
    v_floored := true;
  end if;

  -- The daily cap usage the row counted for is given back (or, for a reversed penalty, taken again).
  select c.* into v_cap_group
    from public.activity_types a join public.cap_groups c on c.slug = a.cap_group
   where a.slug = p_row.activity_slug;
  if found and v_amount <> 0 then
    update private.daily_cap_usage u
       set used = u.used + v_amount
     where u.profile_id = p_row.profile_id and u.cap_group = v_cap_group.slug
       and u.day = (p_row.occurred_at at time zone v_cap_group.time_zone)::date;
  end if;

  v_receipt := private.apply_xp(
    p_row.profile_id, p_row.activity_slug,
    jsonb_build_array(jsonb_build_object('layer', p_row.layer_slug, 'amount', v_amount)),
    p_row.occurred_at, p_key, p_actor_id, p_actor_role, p_reason, p_request,
    jsonb_build_object('correction', 'reverse_award', 'reverses_id', p_row.id, 'requested', -v_net,
                       'base', -v_net, 'multiplier', 1, 'multipliers', '[]'::jsonb, 'cooldown', false,
                       'cooldown_remaining_seconds', 0, 'capped', false, 'cap', null, 'floored', v_floored,
                       'actor_id', p_actor_id, 'actor_role', p_actor_role));

  -- The points the row earned go too, as far as the balance holds them (points already spent stay spent).
  -- The row's own earned points, and what the corrections that decided it again added or took back.
  select coalesce(sum(pl.amount), 0)
         + coalesce((select sum(cp.amount) from public.xp_ledger c
                       join public.points_ledger cp on cp.idempotency_key = c.idempotency_key
                      where c.corrects_id = p_row.id), 0)
    into v_earned
    from public.points_ledger pl where pl.xp_ledger_id = p_row.id and pl.kind = 'earned';
  if v_earned > 0 then
    perform private.apply_points(
      p_row.profile_id, 'reversal', -v_earned, p_key, p_actor_id, p_actor_role, p_reason, p_request,
      jsonb_build_object('xp_ledger_id', p_row.id), true);
  end if;
  return v_receipt;
end
$$;

comment on function private.reverse_row(public.xp_ledger, text, jsonb, text, uuid, text) is
  'Writes the reversal of one ledger row (private.reverse_award has checked the caller and holds the locks): '
  'the opposite amount on the same layer at the same occurred_at, floored at zero layer XP, the daily cap '
  'usage given back, the earned points taken back as far as the balance holds them. Returns the receipt. '
  'Errors: XPREV the row is a reversal or a correction itself, or granted nothing in the end.';

revoke all on function private.reverse_row(public.xp_ledger, text, jsonb, text, uuid, text) from public;

create or replace function public.reverse_award(ledger_id bigint, reason text)
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.reverse_award(reverse_award.ledger_id, reverse_award.reason)
$$;

comment on function public.reverse_award(bigint, text) is
  'Reverses one ledger row: appends a row with reverses_id = ledger_id and the opposite amount (XP) on the '
  'same layer, dated at the original''s occurred_at (so it lands in the same season and daily cap day), '
  'gives back the daily cap usage and takes back the points the row earned (as far as the balance holds '
  'them: points_reversed). The layer''s XP never goes below zero (floored). reason: 1-500 characters, '
  'stored on the row. Idempotent: a second call answers the first receipt (replayed = true). Returns the '
  'award receipt with correction = ''reverse_award'', reverses_id, actor_id, actor_role, points_reversed. '
  'Errors: 42501 unless service_role or an admin member, XPLGU no such ledger row, XPREV the row is a '
  'reversal or a correction of a late award itself (reverse the award it corrects), or granted nothing in the end (its amount plus its corrections), XPBAD missing id or bad reason.';

revoke all on function public.reverse_award(bigint, text) from public, anon;

grant execute on function public.reverse_award(bigint, text) to service_role, authenticated;

-- from supabase/sql/34_redecisions.sql --------------------------------------

-- Decisions taken again: when an award arrives late (dated before awards of the same member already decided,
-- within engine_settings.late_award_horizon_seconds), the awards after it are decided again in time order
-- and the differences appended as correction rows that name the award they correct (corrects_id), never
-- edits. The ledger then ends as if every award had arrived in time order.
--
-- What is decided again is what depends on order: the cooldown (at most one credited award of an activity
-- per window) and the daily cap of a cap group. The amount an award wanted before them (its base times its
-- multipliers, as its receipt recorded them) stands. An award's net grant is its amount plus the amounts of
-- the rows that correct or reverse it; it is "credited" while that net is positive.
--
-- Tables: none of its own (writes public.xp_ledger and public.points_ledger through the award path, and
-- private.daily_cap_usage).
-- Tests: tests/sql/test_redecisions.py
create or replace function private.redecide_plan(
  p_profile_id uuid,
  p_at timestamptz,
  p_key text,
  p_new jsonb
)
returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
-- Walks the member's awards from far enough back to know the cooldowns and the day's cap usage at p_at (two
-- days, or the longest cooldown when longer) in time order (occurred_at, then idempotency key). Awards at or
-- before (p_at, p_key) keep their net grant and only build the state. p_new, when given, is the award being
-- decided now ({activity, occurred_at, amount: XP wanted before cooldown and cap}) at (p_at, p_key): it is
-- decided on that state. Every award after it that wanted XP and is not reversed is decided again.
-- Returns {granted (p_new's XP), cooldown_until (the credited award's end of window that held p_new back, or
-- null), capped, used_before (the cap group's XP used that day before p_new), plan: [{ledger_id, activity,
-- occurred_at, granted_before, granted}]} where plan lists the awards whose net grant changes.
declare
  v_since timestamptz;
  v_row record;
  v_last jsonb := '{}';   -- activity -> occurred_at of the last credited award
  v_used jsonb := '{}';   -- '<cap group>:<day>' -> XP used
  v_cell text;
  v_amount bigint;
  v_plan jsonb := '[]';
  v_answer jsonb := '{}';
begin
  select p_at - greatest(interval '2 days', make_interval(secs => coalesce(max(a.cooldown_seconds), 0)))
    into v_since from public.activity_types a;
  for v_row in
    with units as (
      select u.id, u.activity_slug, u.occurred_at, u.idempotency_key,
             case when (u.receipt ->> 'base')::bigint > 0
                  then floor((u.receipt ->> 'base')::bigint * coalesce((u.receipt ->> 'multiplier')::numeric, 1))::bigint
                  else u.amount end as wanted,
             u.amount + coalesce((select sum(c.amount) from public.xp_ledger c
                                   where c.corrects_id = u.id or c.reverses_id = u.id), 0) as net,
             exists (select 1 from public.xp_ledger c where c.reverses_id = u.id) as reversed
        from public.xp_ledger u
       where u.profile_id = p_profile_id and u.occurred_at >= v_since and u.request ->> 'fn' = 'award_xp'
      union all
      select null, p_new ->> 'activity', p_at, p_key, (p_new ->> 'amount')::bigint, 0, false
       where p_new is not null
    )
    select x.*, a.cooldown_seconds, a.cap_group, c.daily_cap,
           (x.occurred_at at time zone c.time_zone)::date as day,
           (x.occurred_at, x.idempotency_key) > (p_at, p_key) as after
      from units x
      join public.activity_types a on a.slug = x.activity_slug
      left join public.cap_groups c on c.slug = a.cap_group
     order by x.occurred_at, x.idempotency_key, x.id nulls first
  loop
    v_cell := v_row.cap_group || ':' || v_row.day;
    v_amount := v_row.net;
    if v_row.id is null or (v_row.after and not v_row.reversed and v_row.wanted > 0) then
      v_amount := greatest(v_row.wanted, 0);
      if v_amount > 0 and v_row.cooldown_seconds > 0 and v_last ? v_row.activity_slug
         and (v_last ->> v_row.activity_slug)::timestamptz
             > v_row.occurred_at - make_interval(secs => v_row.cooldown_seconds) then
        if v_row.id is null then
          v_answer := v_answer || jsonb_build_object('cooldown_until',
            (v_last ->> v_row.activity_slug)::timestamptz + make_interval(secs => v_row.cooldown_seconds));
        end if;
        v_amount := 0;
      end if;
      if v_row.cap_group is not null and v_amount > 0
         and coalesce((v_used ->> v_cell)::bigint, 0) + v_amount > v_row.daily_cap then
        v_amount := greatest(v_row.daily_cap - coalesce((v_used ->> v_cell)::bigint, 0), 0);
        if v_row.id is null then
          v_answer := v_answer || jsonb_build_object('capped', true);
        end if;
      end if;
      if v_row.id is null then
        v_answer := v_answer || jsonb_build_object('granted', v_amount,
                                                   'used_before', coalesce((v_used ->> v_cell)::bigint, 0));
      elsif v_amount <> v_row.net then
        v_plan := v_plan || jsonb_build_object(
          'ledger_id', v_row.id, 'activity', v_row.activity_slug, 'occurred_at', private.utc_text(v_row.occurred_at),
          'granted_before', v_row.net, 'granted', v_amount);
      end if;
    end if;
    if v_amount > 0 then
      v_last := v_last || jsonb_build_object(v_row.activity_slug, v_row.occurred_at);
    end if;
    if v_row.cap_group is not null then
      v_used := v_used || jsonb_build_object(v_cell, coalesce((v_used ->> v_cell)::bigint, 0) + v_amount);
    end if;
  end loop;
  return jsonb_build_object('capped', false, 'cooldown_until', null) || v_answer || jsonb_build_object('plan', v_plan);
end
$$;

comment on function private.redecide_plan(uuid, timestamptz, text, jsonb) is
  'The time-order decision of cooldowns and daily caps over a member''s awards after (p_at, p_key), and of the '
  'award p_new at that point: {granted, cooldown_until, capped, used_before, plan: [{ledger_id, activity, '
  'occurred_at, granted_before, granted}]} (XP). Writes nothing; private.apply_redecisions writes the plan.';

revoke all on function private.redecide_plan(uuid, timestamptz, text, jsonb) from public;

create or replace function private.apply_redecisions(
  p_profile_id uuid,
  p_plan jsonb,
  p_cause_ledger_id bigint,
  p_reason text
)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
-- The caller holds the member's row lock. Each item of the plan becomes one correction row, keyed
-- 'redecide:<corrected ledger id>:<cause ledger id>', dated at the corrected award's occurred_at (its season,
-- its cap day), with the change of its grant as amount; the daily cap usage and the points the award earned
-- follow. Points taken back stop at the balance (points already spent stay spent).
declare
  v_item jsonb;
  v_row public.xp_ledger;
  v_delta bigint;
  v_layer_xp bigint;
  v_floored boolean;
  v_key text;
  v_request jsonb;
  v_rate numeric;
  v_points bigint;
  v_cap public.cap_groups;
  v_receipts jsonb := '[]';
  v_receipt jsonb;
begin
  select coalesce(max(s.points_per_xp), 1) into v_rate from public.engine_settings s;
  for v_item in select * from jsonb_array_elements(p_plan) loop
    select * into strict v_row from public.xp_ledger l where l.id = (v_item ->> 'ledger_id')::bigint;
    v_delta := (v_item ->> 'granted')::bigint - (v_item ->> 'granted_before')::bigint;
    -- Layer XP never goes below zero: penalties after the award may already have taken part of it.
    select coalesce(max(pl.xp), 0) into v_layer_xp from public.profile_layers pl
     where pl.profile_id = p_profile_id and pl.layer_slug = v_row.layer_slug;
    v_floored := v_layer_xp + v_delta < 0;
    if v_floored then
      v_delta := -v_layer_xp;
    end if;
    v_key := 'redecide:' || v_row.id || ':' || p_cause_ledger_id;
    v_request := jsonb_build_object('fn', 'redecide', 'ledger_id', v_row.id, 'cause_ledger_id', p_cause_ledger_id);

    select c.* into v_cap
      from public.activity_types a join public.cap_groups c on c.slug = a.cap_group
     where a.slug = v_row.activity_slug;
    if found and v_delta <> 0 then
      insert into private.daily_cap_usage as u (profile_id, cap_group, day, used)
      values (p_profile_id, v_cap.slug, (v_row.occurred_at at time zone v_cap.time_zone)::date, v_delta)
      on conflict (profile_id, cap_group, day) do update set used = u.used + excluded.used;
    end if;

    v_receipt := private.apply_xp(
      p_profile_id, v_row.activity_slug,
      jsonb_build_array(jsonb_build_object('layer', v_row.layer_slug, 'amount', v_delta)),
      v_row.occurred_at, v_key, null, 'service_role', p_reason, v_request,
      jsonb_build_object('correction', 'redecide', 'corrects_id', v_row.id, 'cause_ledger_id', p_cause_ledger_id,
                         'granted_before', (v_item ->> 'granted_before')::bigint,
                         'granted_after', (v_item ->> 'granted_before')::bigint + v_delta,
                         'requested', v_delta, 'base', v_delta, 'multiplier', 1, 'multipliers', '[]'::jsonb,
                         'cooldown', false, 'cooldown_remaining_seconds', 0, 'capped', false, 'cap', null,
                         'floored', v_floored));

    -- The points the award earned follow its grant (points are earned by positive grants only).
    v_points := floor(greatest((v_item ->> 'granted_before')::bigint + v_delta, 0) * v_rate)
                - floor(greatest((v_item ->> 'granted_before')::bigint, 0) * v_rate);
    if v_points <> 0 then
      perform private.apply_points(
        p_profile_id, case when v_points > 0 then 'earned' else 'reversal' end, v_points, v_key, null,
        'service_role', p_reason, v_request, jsonb_build_object('xp_ledger_id', v_row.id), true);
    end if;
    v_receipts := v_receipts || v_receipt;
  end loop;
  return v_receipts;
end
$$;

comment on function private.apply_redecisions(uuid, jsonb, bigint, text) is
  'Writes a plan of private.redecide_plan: one correction row per award whose grant changes (corrects_id, '
  'correction = redecide, granted_before, granted_after, floored at zero layer XP), with the daily cap usage and '
  'the award''s points. Returns the correction receipts. The caller holds the member''s row lock.';

revoke all on function private.apply_redecisions(uuid, jsonb, bigint, text) from public;

-- from supabase/sql/45_season_finalize.sql ----------------------------------

create or replace function private.finalize_seasons(p_at timestamptz)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_at timestamptz := coalesce(p_at, now());
  v_season public.seasons;
  v_activity text;
  v_row record;
  v_award jsonb;
  v_participants integer;
  v_rewarded integer;
  v_done jsonb := '[]';
  v_seasons bigint[];
  -- Suspended members (issue 13) are off the boards while the suspension is in force, so off the archive too.
  v_susp uuid[] := public.leaderboard_suspended_ids();
begin
  -- Finalizing is never ahead of now (a running season is not over): XPTIM, XPINF for infinity.
  perform private.assert_time(p_at, 'at', interval '5 minutes');
  -- Lock order (issue 18): seasons first, then every profile that will get a reward, in profile id order,
  -- before any award; the award path takes the profile lock first and only a key-share lock on the season
  -- (its foreign key), which "for no key update" does not block. skip locked: two services finalizing at
  -- once split the seasons between them instead of waiting.
  -- A season is final once it ended the late-award horizon ago (engine_settings.late_award_horizon_seconds,
  -- 48 h by default): until then a late award may still be decided into it (34_redecisions.sql).
  v_seasons := array(
    select s.id from public.seasons s
     where s.finalized_at is null
       and s.ends_at + make_interval(secs => (select coalesce(max(e.late_award_horizon_seconds), 172800)
                                                from public.engine_settings e)) <= v_at
     order by s.ends_at, s.id
     for no key update skip locked);
  perform 1 from public.profiles p
   where p.id in (select v.profile_id
                    from (select sc.season_id, sc.profile_id, rank() over (partition by sc.season_id order by sc.xp desc) as rank
                            from public.season_scores sc join public.profiles vp on vp.id = sc.profile_id
                           where sc.season_id = any (v_seasons) and sc.xp > 0 and vp.leaderboard_visible
                             and private.on_season_board(vp.id, sc.season_id)
                             and not (vp.id = any (v_susp))) v
                    join public.seasons s on s.id = v.season_id
                    join public.season_rewards w on w.layer_slug = s.layer_slug and v.rank between w.rank_from and w.rank_to)
   order by p.id
   for update;
  for v_season in
    select s.* from public.seasons s where s.id = any (v_seasons) order by s.ends_at, s.id
  loop
    -- Archived ranks follow the live boards' privacy: visible members are ranked among themselves; a member
    -- who hides gets the place they would see for themselves (1 + visible members with more XP), takes no
    -- rank from anyone and no reward slot (the reward loop below reads visible members only).
    insert into public.season_results (season_id, profile_id, rank, xp)
    select sc.season_id, sc.profile_id, rank() over (order by sc.xp desc), sc.xp
      from public.season_scores sc join public.profiles p on p.id = sc.profile_id
     where sc.season_id = v_season.id and sc.xp > 0 and p.leaderboard_visible and not (p.id = any (v_susp))
       and private.on_season_board(p.id, sc.season_id);
    get diagnostics v_participants = row_count;
    insert into public.season_results (season_id, profile_id, rank, xp)
    select sc.season_id, sc.profile_id,
           1 + (select count(*) from public.season_scores o join public.profiles op on op.id = o.profile_id
                 where o.season_id = sc.season_id and o.xp > sc.xp and op.leaderboard_visible
                   and private.on_season_board(op.id, o.season_id)
                   and not (op.id = any (v_susp))),
           sc.xp
      from public.season_scores sc join public.profiles p on p.id = sc.profile_id
     where sc.season_id = v_season.id and sc.xp > 0
       and not (p.leaderboard_visible and not (p.id = any (v_susp)) and private.on_season_board(p.id, sc.season_id));

    select r.reward_activity into v_activity from public.season_rules r where r.layer_slug = v_season.layer_slug;
    v_rewarded := 0;
    for v_row in
      select res.profile_id, res.rank, res.xp, w.xp as reward_xp, w.points as reward_points, w.title
        from public.season_results res
        join public.season_scores sc on sc.season_id = res.season_id and sc.profile_id = res.profile_id
        join public.profiles vp on vp.id = res.profile_id and vp.leaderboard_visible and not (vp.id = any (v_susp))
                                   and private.on_season_board(vp.id, res.season_id)
        join public.season_rewards w
          on w.layer_slug = v_season.layer_slug and res.rank between w.rank_from and w.rank_to
       where res.season_id = v_season.id
       order by res.rank, sc.reached_at, res.profile_id
    loop
      v_award := null;
      if v_row.reward_xp > 0 and v_activity is not null then
        -- Granted now (or at p_at when that is earlier, for backfills): awards never happen in the future.
        v_award := private.award_xp(v_row.profile_id, v_activity,
                                    'season_reward:' || v_season.id || ':' || v_row.profile_id,
                                    v_row.reward_xp, least(v_at, now()),
                                    jsonb_build_object('season_id', v_season.id, 'rank', v_row.rank));
      end if;
      if v_row.reward_points > 0 then
        -- On the points ledger (32_points.sql), once per season and member.
        perform private.apply_points(
          v_row.profile_id, 'season_reward', v_row.reward_points,
          'season_reward_points:' || v_season.id || ':' || v_row.profile_id, null, 'service_role',
          v_season.name || ': rank ' || v_row.rank,
          jsonb_build_object('fn', 'finalize_seasons', 'season_id', v_season.id, 'points', v_row.reward_points),
          jsonb_build_object('season_id', v_season.id, 'rank', v_row.rank), false);
      end if;
      update public.season_results res
         set reward_xp = coalesce((v_award ->> 'granted')::integer, 0),
             reward_points = v_row.reward_points,
             title = v_row.title,
             ledger_id = (v_award ->> 'ledger_id')::bigint
       where res.season_id = v_season.id and res.profile_id = v_row.profile_id;
      insert into public.notifications (profile_id, kind, title, body, data)
      values (v_row.profile_id, 'season_result',
              v_season.name || ': rank ' || v_row.rank,
              concat_ws(', ',
                        nullif(coalesce((v_award ->> 'granted')::integer, 0), 0) || ' XP',
                        nullif(v_row.reward_points, 0) || ' points',
                        case when v_row.title is not null then 'title "' || v_row.title || '"' end),
              jsonb_build_object('season_id', v_season.id, 'layer', v_season.layer_slug, 'season', v_season.name,
                                 'rank', v_row.rank, 'xp', v_row.xp,
                                 'reward_xp', coalesce((v_award ->> 'granted')::integer, 0),
                                 'reward_points', v_row.reward_points, 'title', v_row.title));
      v_rewarded := v_rewarded + 1;
    end loop;

    update public.seasons s set finalized_at = v_at where s.id = v_season.id;
    v_done := v_done || jsonb_build_object('season_id', v_season.id, 'layer', v_season.layer_slug,
                                           'name', v_season.name, 'participants', v_participants,
                                           'rewarded', v_rewarded);
  end loop;
  return jsonb_build_object('finalized', v_done, 'count', jsonb_array_length(v_done),
                            'at', private.utc_text(v_at));
end
$$;

comment on function private.finalize_seasons(timestamptz) is 'Implementation of public.finalize_seasons.';

revoke all on function private.finalize_seasons(timestamptz) from public;

grant execute on function private.finalize_seasons(timestamptz) to service_role;

create or replace function public.finalize_seasons(at timestamptz default null)
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.finalize_seasons(finalize_seasons.at)
$$;

comment on function public.finalize_seasons(timestamptz) is
  'Freezes the standings of every season that ended by at (default now) minus the late-award horizon '
  '(engine_settings.late_award_horizon_seconds, default 48 h: late awards may still reach it until then) and is '
  'not finalized yet, once: '
  'season_results gets every member with XP in it and their rank (equal XP shares a rank) among the members '
  'visible on leaderboards (a hidden member gets the place they would see for themselves, takes no one''s rank '
  'and no reward, and is listed only to themselves); the ranks named in '
  'season_rewards get their XP (award_xp with the layer''s reward activity, key season_reward:<season>:<profile>), '
  'points and title, and a season_result notification. Returns {finalized: [{season_id, layer, name, '
  'participants (visible members ranked), rewarded}], count, at}. Running it again finalizes nothing twice. '
  'at lies in [2000-01-01, now + 5 minutes] (XPTIM; XPINF for infinity). Locks the seasons, then the '
  'rewarded profiles in id order, before any award. service_role only.';

revoke all on function public.finalize_seasons(timestamptz) from public, anon, authenticated;

grant execute on function public.finalize_seasons(timestamptz) to service_role;

-- from supabase/sql/68_ledger_reads.sql -------------------------------------

-- Ledger reads: a member's own XP history with the receipt of every entry, newest first, paged
-- by cursor (the REST API's GET /v1/me/ledger; supabase-js calls the same function).
--
-- Tables: none of its own (reads public.xp_ledger through its policy).
-- Tests: tests/sql/test_ledger_reads.py
create or replace function public.list_my_ledger(size integer default 50, cursor text default null)
returns jsonb
language plpgsql
stable
security invoker
set search_path = ''
as $$
declare
  v_uid uuid := (select auth.uid());
  v_before bigint;
  v_items jsonb;
  v_count integer;
begin
  if v_uid is null then
    raise exception 'Sign in to read your ledger' using errcode = '42501';
  end if;
  if list_my_ledger.size is null or list_my_ledger.size not between 1 and 100 then
    raise exception 'size must be 1 to 100' using errcode = 'XPBAD';
  end if;
  if list_my_ledger.cursor is not null then
    if list_my_ledger.cursor !~ '^[1-9][0-9]{0,17}$' then
      raise exception 'Not a ledger cursor: %', left(list_my_ledger.cursor, 40) using errcode = 'XPBAD';
    end if;
    v_before := list_my_ledger.cursor::bigint;
  end if;
  -- One row more than asked says whether another page follows.
  select coalesce(jsonb_agg(x.entry order by x.id desc), '[]'), count(*)
    into v_items, v_count
    from (select l.id, jsonb_build_object(
                   'id', l.id, 'activity', l.activity_slug, 'activity_name', a.name, 'layer', l.layer_slug,
                   'season_id', l.season_id, 'amount', l.amount, 'season_amount', l.season_amount,
                   'points', l.points, 'occurred_at', l.occurred_at, 'recorded_at', l.recorded_at,
                   'actor_role', l.actor_role, 'reason', l.reason, 'reverses_id', l.reverses_id,
                   'corrects_id', l.corrects_id, 'receipt', l.receipt) as entry
            from public.xp_ledger l
            join public.activity_types a on a.slug = l.activity_slug
           where l.profile_id = v_uid and (v_before is null or l.id < v_before)
           order by l.id desc
           limit list_my_ledger.size + 1) x;
  if v_count > list_my_ledger.size then
    v_items := v_items - list_my_ledger.size;
    return jsonb_build_object('items', v_items,
                              'next_cursor', (v_items -> (list_my_ledger.size - 1) ->> 'id'));
  end if;
  return jsonb_build_object('items', v_items, 'next_cursor', null);
end
$$;

comment on function public.list_my_ledger(integer, text) is
  'The signed-in member''s ledger, newest first: {items [{id, activity, activity_name, layer, season_id, amount '
  '(XP, negative for penalties and corrections), season_amount, points, occurred_at, recorded_at (UTC), '
  'actor_role, reason, reverses_id, corrects_id (the award a late award''s re-decision corrects), receipt (what the call that wrote the entry answered)}], next_cursor '
  '(text to pass as cursor for the next page, null on the last)}. size 1-100. Entries are ordered by id '
  '(recording order), so a page never shifts when older activity is backfilled. Errors: 42501 when not '
  'signed in, XPBAD.';

revoke all on function public.list_my_ledger(integer, text) from public, anon;

grant execute on function public.list_my_ledger(integer, text) to authenticated;
