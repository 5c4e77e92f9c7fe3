-- Rule changes replayed over the ledger: before a change to activity amounts, rates, daily caps, multipliers
-- or the level curve is applied, public.admin_rules_diff shows who would gain or lose XP, levels, tiers and
-- Discord reward roles; public.admin_rules_apply writes the change, appends one correction row per award whose
-- grant changes (never edits) and re-derives levels and tiers. `xpbase rules diff|apply FILE` and
-- POST /v1/admin/rules/diff|apply call them.
--
-- Tables: public.rule_changes (and the rule tables it changes: public.activity_types, public.activity_rates,
--   public.cap_groups, public.multipliers, public.level_curve).
-- Tests: tests/sql/test_rule_changes.py
--
-- The change document (jsonb, at most 64 KiB as JSON text, XPBIG beyond), every section optional:
--   activities      {"<slug>": {base_xp, min_xp, max_xp, cooldown_seconds, cap_group, xp_floor}} (fields to set;
--                   cap_group null makes the activity exempt from caps)
--   activity_rates  {"<slug>": [{effective_from, base_xp, description}]} (replaces that activity's dated rates)
--   cap_groups      {"<slug>": {daily_cap, time_zone, description}} (a new slug needs daily_cap)
--   multipliers     [{id, delete: true} | {id, <fields to set>} | {kind, match_value, activity_slug, factor,
--                   starts_at, ends_at, description}] (change, remove or add)
--   level_curve     [{level, xp_required}] (1-1000 levels; replaces the curve: level 1 at 0 XP, XP rising with
--                   the level)
--
-- The replay decides every award again in time order per member (occurred_at, then idempotency key) from
-- what its request named (activity, amount, context, time) under the rules as they would be: the rate in force,
-- the amount clamped into the activity's range, multipliers (including layer statuses held before the award,
-- from the replayed layer XP), cooldowns, daily caps and floors. Awards already reversed stay at zero. Rows that
-- are not awards (admin corrections, imports, season rewards) keep their amounts. An award's net grant is its
-- amount plus the rows that correct or reverse it; the correction is the difference, keyed
-- 'rules:<corrected ledger id>:<rule change id>'. An award whose grant stays but whose XP wanted before
-- cooldown and cap changes gets a row of 0 XP that records the new wanted amount, so a later late award
-- (34_redecisions.sql) decides it with the new rules.
--

create or replace function private.rule_change_write(p_change jsonb)
returns void
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_key text;
  v_val jsonb;
  v_item jsonb;
  v_field text;
  v_levels integer;
begin
  if p_change is null or jsonb_typeof(p_change) <> 'object' then
    raise exception 'change must be a JSON object' using errcode = 'XPBAD';
  end if;
  perform private.assert_json_size(p_change, 'change', 65536);
  for v_key in select jsonb_object_keys(p_change) loop
    if v_key not in ('activities', 'activity_rates', 'cap_groups', 'multipliers', 'level_curve') then
      raise exception 'change.% is not a rule section (activities, activity_rates, cap_groups, multipliers, '
                      'level_curve)', v_key using errcode = 'XPBAD';
    end if;
  end loop;
  foreach v_key in array array['activities', 'activity_rates', 'cap_groups'] loop
    if p_change ? v_key and jsonb_typeof(p_change -> v_key) <> 'object' then
      raise exception 'change.% must be an object keyed by slug', v_key using errcode = 'XPBAD';
    end if;
  end loop;
  foreach v_key in array array['multipliers', 'level_curve'] loop
    if p_change ? v_key and jsonb_typeof(p_change -> v_key) <> 'array' then
      raise exception 'change.% must be an array', v_key using errcode = 'XPBAD';
    end if;
  end loop;

  -- Table constraints (ranges, references, time zones, dates) refuse bad values; they are answered as XPBAD
  -- and nothing of the change is kept.
  begin
    for v_key, v_val in select * from jsonb_each(coalesce(p_change -> 'cap_groups', '{}')) loop
      if jsonb_typeof(v_val) <> 'object' then
        raise exception 'change.cap_groups.% must be an object', v_key using errcode = 'XPBAD';
      end if;
      for v_field in select jsonb_object_keys(v_val) loop
        if v_field not in ('daily_cap', 'time_zone', 'description') then
          raise exception 'change.cap_groups.%.% is not a field (daily_cap, time_zone, description)', v_key, v_field
            using errcode = 'XPBAD';
        end if;
      end loop;
      if v_val ? 'time_zone' then
        perform now() at time zone (v_val ->> 'time_zone');
      end if;
      if exists (select 1 from public.cap_groups c where c.slug = v_key) then
        update public.cap_groups c
           set daily_cap = case when v_val ? 'daily_cap' then (v_val ->> 'daily_cap')::integer else c.daily_cap end,
               time_zone = case when v_val ? 'time_zone' then v_val ->> 'time_zone' else c.time_zone end,
               description = case when v_val ? 'description' then v_val ->> 'description' else c.description end
         where c.slug = v_key;
      else
        insert into public.cap_groups (slug, daily_cap, time_zone, description)
        values (v_key, (v_val ->> 'daily_cap')::integer, coalesce(v_val ->> 'time_zone', 'UTC'),
                coalesce(v_val ->> 'description', ''));
      end if;
    end loop;

    for v_key, v_val in select * from jsonb_each(coalesce(p_change -> 'activities', '{}')) loop
      if jsonb_typeof(v_val) <> 'object' then
        raise exception 'change.activities.% must be an object', v_key using errcode = 'XPBAD';
      end if;
      for v_field in select jsonb_object_keys(v_val) loop
        if v_field not in ('base_xp', 'min_xp', 'max_xp', 'cooldown_seconds', 'cap_group', 'xp_floor') then
          raise exception 'change.activities.%.% is not a field (base_xp, min_xp, max_xp, cooldown_seconds, '
                          'cap_group, xp_floor)', v_key, v_field using errcode = 'XPBAD';
        end if;
      end loop;
      update public.activity_types a
         set base_xp = case when v_val ? 'base_xp' then (v_val ->> 'base_xp')::integer else a.base_xp end,
             min_xp = case when v_val ? 'min_xp' then (v_val ->> 'min_xp')::integer else a.min_xp end,
             max_xp = case when v_val ? 'max_xp' then (v_val ->> 'max_xp')::integer else a.max_xp end,
             cooldown_seconds = case when v_val ? 'cooldown_seconds' then (v_val ->> 'cooldown_seconds')::integer
                                     else a.cooldown_seconds end,
             cap_group = case when v_val ? 'cap_group' then v_val ->> 'cap_group' else a.cap_group end,
             xp_floor = case when v_val ? 'xp_floor' then (v_val ->> 'xp_floor')::integer else a.xp_floor end
       where a.slug = v_key;
      if not found then
        raise exception 'Unknown activity: %', v_key using errcode = 'XPACT';
      end if;
    end loop;

    for v_key, v_val in select * from jsonb_each(coalesce(p_change -> 'activity_rates', '{}')) loop
      if not exists (select 1 from public.activity_types a where a.slug = v_key) then
        raise exception 'Unknown activity: %', v_key using errcode = 'XPACT';
      end if;
      if jsonb_typeof(v_val) <> 'array' or jsonb_array_length(v_val) > 100 then
        raise exception 'change.activity_rates.% must be an array of at most 100 rates', v_key using errcode = 'XPBAD';
      end if;
      delete from public.activity_rates r where r.activity_slug = v_key;
      for v_item in select * from jsonb_array_elements(v_val) loop
        if jsonb_typeof(v_item) <> 'object' or not (v_item ? 'effective_from' and v_item ? 'base_xp')
           or exists (select 1 from jsonb_object_keys(v_item) k where k not in ('effective_from', 'base_xp', 'description')) then
          raise exception 'change.activity_rates.%[] must be {effective_from, base_xp, description}', v_key
            using errcode = 'XPBAD';
        end if;
        insert into public.activity_rates (activity_slug, effective_from, base_xp, description)
        values (v_key, (v_item ->> 'effective_from')::timestamptz, (v_item ->> 'base_xp')::integer,
                coalesce(v_item ->> 'description', ''));
      end loop;
    end loop;

    for v_item in select * from jsonb_array_elements(coalesce(p_change -> 'multipliers', '[]')) loop
      if jsonb_typeof(v_item) <> 'object' or exists (
           select 1 from jsonb_object_keys(v_item) k
            where k not in ('id', 'delete', 'kind', 'match_value', 'activity_slug', 'factor', 'starts_at', 'ends_at',
                            'description')) then
        raise exception 'change.multipliers[] must be objects with id, delete, kind, match_value, activity_slug, '
                        'factor, starts_at, ends_at, description' using errcode = 'XPBAD';
      end if;
      if v_item ? 'id' then
        if v_item -> 'delete' = 'true'::jsonb then
          delete from public.multipliers m where m.id = (v_item ->> 'id')::bigint;
        else
          update public.multipliers m
             set kind = case when v_item ? 'kind' then v_item ->> 'kind' else m.kind end,
                 match_value = case when v_item ? 'match_value' then v_item ->> 'match_value' else m.match_value end,
                 activity_slug = case when v_item ? 'activity_slug' then v_item ->> 'activity_slug'
                                      else m.activity_slug end,
                 factor = case when v_item ? 'factor' then (v_item ->> 'factor')::numeric else m.factor end,
                 starts_at = case when v_item ? 'starts_at' then (v_item ->> 'starts_at')::timestamptz
                                  else m.starts_at end,
                 ends_at = case when v_item ? 'ends_at' then (v_item ->> 'ends_at')::timestamptz else m.ends_at end,
                 description = case when v_item ? 'description' then v_item ->> 'description' else m.description end
           where m.id = (v_item ->> 'id')::bigint;
        end if;
        if not found then
          raise exception 'Unknown multiplier: %', v_item ->> 'id' using errcode = 'XPBAD';
        end if;
      elsif v_item ? 'delete' then
        raise exception 'change.multipliers[]: delete needs the id' using errcode = 'XPBAD';
      else
        insert into public.multipliers (kind, match_value, activity_slug, factor, starts_at, ends_at, description)
        values (v_item ->> 'kind', v_item ->> 'match_value', v_item ->> 'activity_slug',
                (v_item ->> 'factor')::numeric, (v_item ->> 'starts_at')::timestamptz,
                (v_item ->> 'ends_at')::timestamptz, coalesce(v_item ->> 'description', ''));
      end if;
    end loop;

    if p_change ? 'level_curve' then
      select count(*) into v_levels from jsonb_array_elements(p_change -> 'level_curve');
      if v_levels not between 1 and 1000 or exists (
           select 1 from jsonb_array_elements(p_change -> 'level_curve') e
            where jsonb_typeof(e) <> 'object' or jsonb_typeof(e -> 'level') <> 'number'
               or jsonb_typeof(e -> 'xp_required') <> 'number'
               or exists (select 1 from jsonb_object_keys(e) k where k not in ('level', 'xp_required'))) then
        raise exception 'change.level_curve must be 1 to 1000 {level, xp_required} objects' using errcode = 'XPBAD';
      end if;
      delete from public.level_curve;
      insert into public.level_curve (level, xp_required)
      select (e ->> 'level')::integer, (e ->> 'xp_required')::bigint
        from jsonb_array_elements(p_change -> 'level_curve') e;
      -- Level 1 at 0 XP, and each level needs more XP than the one before it.
      if not exists (select 1 from public.level_curve c where c.level = 1 and c.xp_required = 0)
         or exists (select 1 from (select c.xp_required, lag(c.xp_required) over (order by c.level) as before
                                     from public.level_curve c) x
                     where x.xp_required <= x.before) then
        raise exception 'change.level_curve must start at level 1 with 0 XP and need more XP for each higher level'
          using errcode = 'XPBAD';
      end if;
    end if;
  exception
    when check_violation or foreign_key_violation or unique_violation or not_null_violation
         or invalid_text_representation or numeric_value_out_of_range or invalid_datetime_format
         or datetime_field_overflow or invalid_parameter_value or string_data_right_truncation then
      raise exception 'The rule change was refused: %', sqlerrm using errcode = 'XPBAD';
  end;
end
$$;
comment on function private.rule_change_write(jsonb) is
  'Writes a rule change document (see 47_rule_changes.sql) into the rule tables. Errors: XPBAD for a malformed '
  'document or a value a table refuses, XPBIG over 64 KiB, XPACT for an unknown activity; nothing is kept then.';
revoke all on function private.rule_change_write(jsonb) from public;

create or replace function private.rules_walk()
returns table (
  ledger_id bigint,
  profile_id uuid,
  granted_before bigint,
  granted bigint,
  wanted_before bigint,
  wanted bigint
)
language plpgsql
stable
security definer
set search_path = ''
as $$
-- One pass over the ledger in (member, occurred_at, idempotency key, id) order. State per member: the last
-- credited award per activity (cooldowns), XP used per cap group and local day (caps), XP per layer (floors
-- and layer-status multipliers). Rows that correct or reverse an award are folded into that award.
declare
  v_row record;
  v_profile uuid;
  v_last jsonb;
  v_used jsonb;
  v_layer_xp jsonb;
  v_max_multiplier numeric;
  v_base bigint;
  v_named bigint;
  v_multiplier numeric;
  v_wanted bigint;
  v_amount bigint;
  v_cell text;
  v_xp bigint;
  v_reversed boolean;
  v_done bigint := 0;
  v_total bigint;
begin
  select coalesce(max(e.max_multiplier), 5) into v_max_multiplier from public.engine_settings e;
  -- Progress for the caller (a NOTICE every 10,000 rows and at the end; detail: {step: walk, done, total}).
  select count(*) into v_total from public.xp_ledger;
  for v_row in
    select u.id, u.profile_id, u.activity_slug, u.layer_slug, u.occurred_at, u.amount, u.request, u.receipt,
           u.request ->> 'fn' = 'award_xp' and u.corrects_id is null and u.reverses_id is null as award,
           coalesce(t.request ->> 'fn' = 'award_xp' and t.corrects_id is null and t.reverses_id is null, false)
             as folded,
           a.base_xp, a.min_xp, a.max_xp, a.cooldown_seconds, a.cap_group, a.xp_floor, c.daily_cap, c.time_zone
      from public.xp_ledger u
      left join public.xp_ledger t on t.id = coalesce(u.corrects_id, u.reverses_id)
      join public.activity_types a on a.slug = u.activity_slug
      left join public.cap_groups c on c.slug = a.cap_group
     order by u.profile_id, u.occurred_at, u.idempotency_key, u.id
  loop
    v_done := v_done + 1;
    if v_done % 10000 = 0 then
      raise notice 'rule change: % of % ledger rows decided again', v_done, greatest(v_total, v_done)
        using detail = jsonb_build_object('step', 'walk', 'done', v_done, 'total', greatest(v_total, v_done))::text;
    end if;
    if v_profile is distinct from v_row.profile_id then
      v_profile := v_row.profile_id;
      v_last := '{}';
      v_used := '{}';
      v_layer_xp := '{}';
    end if;
    v_xp := coalesce((v_layer_xp ->> v_row.layer_slug)::bigint, 0);
    if v_row.folded then
      continue;
    elsif not v_row.award then
      v_layer_xp := v_layer_xp || jsonb_build_object(v_row.layer_slug, greatest(v_xp + v_row.amount, 0));
      continue;
    end if;

    -- The award's net grant now, whether it was reversed, and the XP it wanted (a rules correction's record of
    -- it wins over the receipt's).
    select v_row.amount + coalesce(sum(c.amount), 0),
           bool_or(c.reverses_id is not null),
           (array_agg((c.receipt ->> 'wanted')::bigint order by c.id desc)
              filter (where c.receipt ->> 'correction' = 'rules'))[1]
      into granted_before, v_reversed, wanted_before
      from public.xp_ledger c where c.corrects_id = v_row.id or c.reverses_id = v_row.id;
    if v_reversed then
      -- A reversed award stays at zero and holds no cooldown or cap room.
      continue;
    end if;
    wanted_before := coalesce(wanted_before,
      case when (v_row.receipt ->> 'base')::bigint > 0
           then floor((v_row.receipt ->> 'base')::bigint * coalesce((v_row.receipt ->> 'multiplier')::numeric, 1))::bigint
           else (v_row.receipt ->> 'base')::bigint end);

    -- The base: a caller-named amount clamped into the activity's range, else the rate in force at the time.
    v_named := (v_row.request ->> 'amount')::bigint;
    if v_named is not null and v_row.min_xp is not null then
      v_base := least(greatest(v_named, v_row.min_xp), v_row.max_xp);
    else
      v_base := coalesce((select r.base_xp from public.activity_rates r
                           where r.activity_slug = v_row.activity_slug and r.effective_from <= v_row.occurred_at
                           order by r.effective_from desc limit 1), v_row.base_xp);
    end if;
    v_wanted := v_base;
    if v_base > 0 then
      -- The multiplier rule of private.award_xp (30_award.sql): the largest factor per kind, kinds multiply,
      -- capped at engine_settings.max_multiplier, rounded to 3 places; layer statuses from the replayed XP.
      select coalesce(exp(sum(ln(m.factor))), 1) into v_multiplier
        from (
          select distinct on (x.kind) x.kind, x.factor
            from public.multipliers x
           where (x.activity_slug is null or x.activity_slug = v_row.activity_slug)
             and (x.starts_at is null or x.starts_at <= v_row.occurred_at)
             and (x.ends_at is null or v_row.occurred_at < x.ends_at)
             and (
               (x.kind = 'role' and jsonb_typeof(v_row.request -> 'context' -> 'role_ids') = 'array'
                  and x.match_value in (select jsonb_array_elements_text(v_row.request -> 'context' -> 'role_ids')))
               or (x.kind = 'channel' and x.match_value = v_row.request -> 'context' ->> 'channel_id')
               or (x.kind = 'event' and (x.match_value is null or x.match_value = v_row.request -> 'context' ->> 'event_id'))
               or (x.kind = 'layer_status' and x.match_value in (
                     select l.key || ':' || public.layer_status_for(l.key, l.value::bigint)
                       from jsonb_each_text(v_layer_xp) l))
             )
           order by x.kind, x.factor desc
        ) m;
      v_wanted := floor(v_base * round(least(v_multiplier, v_max_multiplier), 3));
    end if;
    v_amount := v_wanted;

    -- Cooldown: one credited award of the activity per window.
    if v_amount > 0 and v_row.cooldown_seconds > 0 and v_last ? v_row.activity_slug
       and (v_last ->> v_row.activity_slug)::timestamptz
           > v_row.occurred_at - make_interval(secs => v_row.cooldown_seconds) then
      v_amount := 0;
    end if;
    -- Daily cap of the activity's cap group, in the group's time zone.
    v_cell := v_row.cap_group || ':' || (v_row.occurred_at at time zone v_row.time_zone)::date;
    if v_row.cap_group is not null and v_amount > 0
       and coalesce((v_used ->> v_cell)::bigint, 0) + v_amount > v_row.daily_cap then
      v_amount := greatest(v_row.daily_cap - coalesce((v_used ->> v_cell)::bigint, 0), 0);
    end if;
    -- Floor: a penalty never takes the layer below the activity's xp_floor.
    if v_amount < 0 and v_xp + v_amount < v_row.xp_floor then
      v_amount := least(v_row.xp_floor - v_xp, 0);
    end if;

    if v_amount > 0 then
      v_last := v_last || jsonb_build_object(v_row.activity_slug, v_row.occurred_at);
    end if;
    if v_row.cap_group is not null and v_amount <> 0 then
      v_used := v_used || jsonb_build_object(v_cell, coalesce((v_used ->> v_cell)::bigint, 0) + v_amount);
    end if;
    v_layer_xp := v_layer_xp || jsonb_build_object(v_row.layer_slug, greatest(v_xp + v_amount, 0));

    if v_amount <> granted_before or v_wanted is distinct from wanted_before then
      ledger_id := v_row.id;
      profile_id := v_row.profile_id;
      granted := v_amount;
      wanted := v_wanted;
      return next;
    end if;
  end loop;
  raise notice 'rule change: % of % ledger rows decided again', v_done, v_done
    using detail = jsonb_build_object('step', 'walk', 'done', v_done, 'total', v_done)::text;
end
$$;
comment on function private.rules_walk() is
  'Decides every award of the ledger again under the rule tables as they are (see 47_rule_changes.sql) and '
  'returns the awards whose net grant or wanted XP differs: (ledger_id, profile_id, granted_before, granted, '
  'wanted_before, wanted), XP. Writes nothing. Reports its progress as NOTICEs (every 10,000 ledger rows and '
  'once at the end) whose detail is {"step": "walk", "done": rows, "total": rows} (xpbase.models.rules.'
  'RuleChangeProgress).';
revoke all on function private.rules_walk() from public;

create or replace function private.rules_change_run(
  p_change jsonb,
  p_reason text,
  p_limit integer,
  p_actor_id uuid,
  p_actor_role text,
  p_dry_run boolean
)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
-- Writes the change, records it, replays the ledger (private.rules_walk) and appends the corrections member by
-- member in profile id order, then measures what moved against the members' state before. A dry run
-- (private.rules_change rolls it back) writes no corrections: it plays them on each member's layer XP as
-- private.apply_corrections would write them (in ledger id order, each floored at the layer's zero), so the
-- diff answers what apply would do at the cost of the decision alone.
declare
  v_id bigint;
  v_plan record;
  v_item record;
  v_before jsonb := '{}';
  v_after jsonb := '{}';
  v_layers jsonb;
  v_layer_xp bigint;
  v_delta bigint;
  v_xp bigint;
  v_awards bigint := 0;
  v_members bigint := 0;
  v_answer jsonb;
begin
  perform private.rule_change_write(p_change);
  insert into public.rule_changes (change, reason, actor_id, actor_role)
  values (p_change, p_reason, p_actor_id, p_actor_role)
  returning id into v_id;

  for v_plan in
    select w.profile_id, count(*) as n,
           jsonb_agg(jsonb_build_object('ledger_id', w.ledger_id, 'layer', l.layer_slug,
                                        'granted_before', w.granted_before, 'granted', w.granted,
                                        'wanted', w.wanted) order by w.ledger_id) as items,
           count(*) over () as members
      from private.rules_walk() w
      join public.xp_ledger l on l.id = w.ledger_id
     group by w.profile_id
     order by w.profile_id
  loop
    select v_before || jsonb_build_object(p.id::text, jsonb_build_object(
             'xp', p.xp, 'level', p.level, 'tier', p.tier, 'awards_changed', v_plan.n)), p.xp
      into v_before, v_xp
      from public.profiles p where p.id = v_plan.profile_id;
    if p_dry_run then
      select coalesce(jsonb_object_agg(pl.layer_slug, pl.xp), '{}') into v_layers
        from public.profile_layers pl where pl.profile_id = v_plan.profile_id;
      for v_item in
        select (e ->> 'layer') as layer, (e ->> 'granted')::bigint - (e ->> 'granted_before')::bigint as delta
          from jsonb_array_elements(v_plan.items) e
      loop
        v_layer_xp := coalesce((v_layers ->> v_item.layer)::bigint, 0);
        v_delta := greatest(v_item.delta, -v_layer_xp);
        v_layers := v_layers || jsonb_build_object(v_item.layer, v_layer_xp + v_delta);
        v_xp := v_xp + v_delta;
      end loop;
      v_after := v_after || jsonb_build_object(v_plan.profile_id::text, v_xp);
    else
      perform private.apply_corrections(v_plan.profile_id, v_plan.items, 'rules', v_id, p_reason);
    end if;
    v_awards := v_awards + v_plan.n;
    -- Progress for the caller: a NOTICE every 100 members and at the last (detail: {step: corrections, done,
    -- total}, members; played on a dry run, written on an apply).
    v_members := v_members + 1;
    if v_members % 100 = 0 or v_members = v_plan.members then
      raise notice 'rule change: corrections % for % of % members',
                   case when p_dry_run then 'played' else 'written' end, v_members, v_plan.members
        using detail = jsonb_build_object('step', 'corrections', 'done', v_members, 'total', v_plan.members)::text;
    end if;
  end loop;

  -- Before: the state of a corrected member when the replay reached them, the cached state of everyone else.
  -- After: total XP now (or as the dry run played it), and the level and tier it gives under the curve and
  -- tiers as they now are.
  with m as (
    select p.id, p.display_name, coalesce((v_after ->> p.id::text)::bigint, p.xp) as xp,
           coalesce((v_before -> p.id::text ->> 'xp')::bigint, p.xp) as xp_before,
           coalesce((v_before -> p.id::text ->> 'level')::integer, p.level) as level_before,
           case when v_before ? p.id::text then v_before -> p.id::text ->> 'tier' else p.tier end as tier_before,
           coalesce((v_before -> p.id::text ->> 'awards_changed')::integer, 0) as awards_changed
      from public.profiles p
  ), d as (
    select m.*, lv.level, coalesce(public.tier_for_level(lv.level), m.tier_before) as tier
      from m cross join lateral (select public.level_for_xp(m.xp) as level) lv
  ), changed as (
    select d.* from d
     where d.xp <> d.xp_before or d.level <> d.level_before or d.tier is distinct from d.tier_before
        or d.awards_changed > 0
  ), rewards as (
    select r.guild_id, r.role_id, coalesce(r.min_level, t.min_level) as level
      from public.discord_role_rewards r
      left join public.tiers t on t.slug = r.tier_slug
  ), roles as (
    select c.id,
           coalesce(jsonb_agg(jsonb_build_object('guild_id', r.guild_id, 'role_id', r.role_id)
                              order by r.guild_id, r.role_id)
                      filter (where r.level <= c.level and r.level > c.level_before), '[]') as gained,
           coalesce(jsonb_agg(jsonb_build_object('guild_id', r.guild_id, 'role_id', r.role_id)
                              order by r.guild_id, r.role_id)
                      filter (where r.level <= c.level_before and r.level > c.level), '[]') as lost
      from changed c
      join public.discord_guild_members gm on gm.profile_id = c.id
      join rewards r on r.guild_id = gm.guild_id
     group by c.id
  ), rows as (
    select c.*, coalesce(r.gained, '[]') as gained, coalesce(r.lost, '[]') as lost
      from changed c left join roles r on r.id = c.id
  )
  select jsonb_build_object(
    'rule_change_id', v_id,
    'awards_changed', v_awards,
    'members_changed', count(*),
    'members_gaining', count(*) filter (where x.xp > x.xp_before),
    'members_losing', count(*) filter (where x.xp < x.xp_before),
    'xp_delta', coalesce(sum(x.xp - x.xp_before), 0),
    'levels_changed', count(*) filter (where x.level <> x.level_before),
    'tiers_changed', count(*) filter (where x.tier is distinct from x.tier_before),
    'reward_roles_changed', count(*) filter (where x.gained <> '[]' or x.lost <> '[]'),
    'members', coalesce((
      select jsonb_agg(jsonb_build_object(
               'profile_id', y.id, 'display_name', y.display_name, 'xp_before', y.xp_before, 'xp', y.xp,
               'xp_delta', y.xp - y.xp_before, 'level_before', y.level_before, 'level', y.level,
               'tier_before', y.tier_before, 'tier', y.tier, 'awards_changed', y.awards_changed,
               'reward_roles_gained', y.gained, 'reward_roles_lost', y.lost)
             order by abs(y.xp - y.xp_before) desc, abs(y.level - y.level_before) desc, y.id)
        from (select * from rows z
               order by abs(z.xp - z.xp_before) desc, abs(z.level - z.level_before) desc, z.id
               limit p_limit) y), '[]'))
    into v_answer
    from rows x;

  if p_dry_run then
    return v_answer;
  end if;
  -- Members whose XP moved are told why; servers where someone's level moved resync their reward roles.
  insert into public.notifications (profile_id, kind, title, body, data)
  select p.id, 'xp_recalculated', 'Your XP was recalculated',
         'The community changed its rules (' || p_reason || '): your XP went from ' || (b.value ->> 'xp')
           || ' to ' || p.xp || '.',
         jsonb_build_object('rule_change_id', v_id, 'reason', p_reason, 'xp_before', (b.value ->> 'xp')::bigint,
                            'total_xp', p.xp, 'level_before', (b.value ->> 'level')::integer, 'level', p.level,
                            'awards_changed', (b.value ->> 'awards_changed')::integer)
    from jsonb_each(v_before) b
    join public.profiles p on p.id = b.key::uuid
   where p.xp <> (b.value ->> 'xp')::bigint;
  insert into public.discord_role_resyncs (guild_id)
  select distinct gm.guild_id
    from public.discord_guild_members gm
    join public.profiles p on p.id = gm.profile_id
   where public.level_for_xp(p.xp) <> coalesce((v_before -> p.id::text ->> 'level')::integer, p.level)
     and exists (select 1 from public.discord_role_rewards r where r.guild_id = gm.guild_id)
  on conflict (guild_id) do update set requested_at = excluded.requested_at;

  update public.rule_changes c set summary = v_answer - 'members' - 'rule_change_id' where c.id = v_id;
  return v_answer;
end
$$;
comment on function private.rules_change_run(jsonb, text, integer, uuid, text, boolean) is
  'Applies a rule change in the current transaction (p_dry_run: writes the rule tables only and plays the '
  'corrections) and answers what it moved (see public.admin_rules_apply). Reports its progress as NOTICEs: '
  'private.rules_walk''s, then every 100 members corrected and at the last, detail {"step": "corrections", '
  '"done": members, "total": members}. Only private.rules_change calls it.';
revoke all on function private.rules_change_run(jsonb, text, integer, uuid, text, boolean) from public;

create or replace function private.rules_change(p_change jsonb, p_reason text, p_limit integer, p_dry_run boolean)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_actor record;
  v_answer jsonb;
begin
  select * into v_actor from private.assert_permission('manage_rules');
  if p_limit is null or p_limit not between 0 and 1000 then
    raise exception 'max_members must be 0 to 1000' using errcode = 'XPBAD';
  end if;
  if not p_dry_run and (p_reason is null or length(btrim(p_reason)) not between 1 and 500) then
    raise exception 'reason must be 1 to 500 characters' using errcode = 'XPBAD';
  end if;
  if p_change is null or jsonb_typeof(p_change) <> 'object' then
    raise exception 'change must be a JSON object' using errcode = 'XPBAD';
  end if;
  if not p_dry_run then
    -- Awards (and every other write of a profile) wait while a change is applied, so the replay decides on a
    -- ledger that does not move under it; two changes apply one after the other.
    lock table public.profiles in exclusive mode;
  end if;
  begin
    v_answer := private.rules_change_run(p_change, coalesce(btrim(p_reason), 'dry run'), p_limit,
                                         v_actor.actor_id, v_actor.actor_role, p_dry_run);
    if p_dry_run then
      raise exception 'dry run' using errcode = 'XPDRY';
    end if;
  exception when sqlstate 'XPDRY' then
    -- Everything the dry run wrote (the rule tables, the record) is rolled back; the answer stays.
    v_answer := v_answer || jsonb_build_object('rule_change_id', null);
  end;
  return v_answer || jsonb_build_object('dry_run', p_dry_run);
end
$$;
comment on function private.rules_change(jsonb, text, integer, boolean) is
  'Implementation of public.admin_rules_diff (p_dry_run) and public.admin_rules_apply.';
revoke all on function private.rules_change(jsonb, text, integer, boolean) from public;
grant execute on function private.rules_change(jsonb, text, integer, boolean) to service_role, authenticated;

create or replace function public.admin_rules_diff(change jsonb, max_members integer default 100)
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.rules_change(admin_rules_diff.change, null, admin_rules_diff.max_members, true)
$$;
comment on function public.admin_rules_diff(jsonb, integer) is
  'A dry run of a rule change (the document of 47_rule_changes.sql: activities, activity_rates, cap_groups, '
  'multipliers, level_curve; {} replays the rules as they are): every award of the ledger decided again in time '
  'order under the changed rules, nothing kept. Returns {dry_run: true, rule_change_id: null, awards_changed, '
  'members_changed, members_gaining, members_losing, xp_delta (XP), levels_changed, tiers_changed, '
  'reward_roles_changed, members: [{profile_id, display_name, xp_before, xp, xp_delta, level_before, level, '
  'tier_before, tier, awards_changed, reward_roles_gained, reward_roles_lost: [{guild_id, role_id}]}]}, the '
  'members listed largest change first, at most max_members (0-1000, default 100) of them. Errors: 42501 '
  'unless service_role or a member whose role holds manage_rules (admins), XPBAD malformed change or a value '
  'the rule tables refuse, XPBIG a change over 64 KiB as JSON, XPACT unknown activity.';
revoke all on function public.admin_rules_diff(jsonb, integer) from public, anon;
grant execute on function public.admin_rules_diff(jsonb, integer) to service_role, authenticated;

create or replace function public.admin_rules_apply(change jsonb, reason text, max_members integer default 100)
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.rules_change(admin_rules_apply.change, admin_rules_apply.reason, admin_rules_apply.max_members, false)
$$;
comment on function public.admin_rules_apply(jsonb, text, integer) is
  'Applies a rule change: writes it into the rule tables, decides every award again in time order and appends '
  'one correction row per award whose grant changes (correction = rules, corrects_id, key '
  '''rules:<ledger id>:<rule_change_id>'', with the reason, 1-500 characters), with cap usage, season scores and '
  'points following; levels and tiers are re-derived; members whose XP moved get an xp_recalculated '
  'notification; servers where a level moved have their reward roles resynced; the change is recorded in '
  'public.rule_changes. Awards wait while it runs. Answers as public.admin_rules_diff with dry_run false and the '
  'rule_change_id. Errors as admin_rules_diff, and XPBAD for a missing reason.';
revoke all on function public.admin_rules_apply(jsonb, text, integer) from public, anon;
grant execute on function public.admin_rules_apply(jsonb, text, integer) to service_role, authenticated;
