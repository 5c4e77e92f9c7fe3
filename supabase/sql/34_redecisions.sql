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
             -- What the award wanted before cooldown and cap: a rule change's record of it (47_rule_changes.sql)
             -- wins over the receipt's base and multiplier.
             coalesce(
               (select (c.receipt ->> 'wanted')::bigint from public.xp_ledger c
                 where c.corrects_id = u.id and c.receipt ->> 'correction' = 'rules' order by c.id desc limit 1),
               case when (u.receipt ->> 'base')::bigint > 0
                    then floor((u.receipt ->> 'base')::bigint * coalesce((u.receipt ->> 'multiplier')::numeric, 1))::bigint
                    else u.amount end) as wanted,
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

create or replace function private.apply_corrections(
  p_profile_id uuid,
  p_plan jsonb,
  p_kind text,
  p_cause_id bigint,
  p_reason text
)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
-- The caller holds the member's row lock. Each item of the plan ({ledger_id, granted_before, granted, and for
-- rule changes wanted}) becomes one correction row, keyed '<kind>:<corrected ledger id>:<cause id>', dated at
-- the corrected award's occurred_at (its season, its cap day), with the change of its grant as amount; the
-- daily cap usage and the points the award earned follow. Points taken back stop at the balance (points
-- already spent stay spent). p_kind is 'redecide' (the cause is the late award's ledger row) or 'rules' (the
-- cause is a public.rule_changes row).
declare
  v_item jsonb;
  v_row public.xp_ledger;
  v_delta bigint;
  v_layer_xp bigint;
  v_floored boolean;
  v_key text;
  v_cause jsonb;
  v_request jsonb;
  v_rate numeric;
  v_points bigint;
  v_cap public.cap_groups;
  v_receipts jsonb := '[]';
  v_receipt jsonb;
begin
  if p_kind not in ('redecide', 'rules') then
    raise exception 'Unknown correction kind: %', p_kind using errcode = 'XPBAD';
  end if;
  v_cause := jsonb_build_object(case p_kind when 'redecide' then 'cause_ledger_id' else 'rule_change_id' end,
                                p_cause_id);
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
    v_key := p_kind || ':' || v_row.id || ':' || p_cause_id;
    v_request := jsonb_build_object('fn', p_kind, 'ledger_id', v_row.id) || v_cause;

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
      jsonb_build_object('correction', p_kind, 'corrects_id', v_row.id,
                         'granted_before', (v_item ->> 'granted_before')::bigint,
                         'granted_after', (v_item ->> 'granted_before')::bigint + v_delta,
                         'requested', v_delta, 'base', v_delta, 'multiplier', 1, 'multipliers', '[]'::jsonb,
                         'cooldown', false, 'cooldown_remaining_seconds', 0, 'capped', false, 'cap', null,
                         'floored', v_floored)
        || v_cause
        || case when v_item ? 'wanted' then jsonb_build_object('wanted', (v_item ->> 'wanted')::bigint)
                else '{}'::jsonb end);

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
comment on function private.apply_corrections(uuid, jsonb, text, bigint, text) is
  'Writes correction rows for a plan [{ledger_id, granted_before, granted, wanted?}] (XP): one row per award '
  '(corrects_id; correction = p_kind, redecide or rules; granted_before, granted_after, floored at zero layer '
  'XP; wanted when given), keyed ''<kind>:<ledger id>:<cause id>'', with the daily cap usage and the award''s '
  'points. Returns the correction receipts. The caller holds the member''s row lock.';
revoke all on function private.apply_corrections(uuid, jsonb, text, bigint, text) from public;

create or replace function private.apply_redecisions(
  p_profile_id uuid,
  p_plan jsonb,
  p_cause_ledger_id bigint,
  p_reason text
)
returns jsonb
language sql
volatile
security definer
set search_path = ''
as $$
  select private.apply_corrections(p_profile_id, p_plan, 'redecide', p_cause_ledger_id, p_reason)
$$;
comment on function private.apply_redecisions(uuid, jsonb, bigint, text) is
  'Writes a plan of private.redecide_plan: one correction row per award whose grant changes (corrects_id, '
  'correction = redecide, granted_before, granted_after, floored at zero layer XP), with the daily cap usage and '
  'the award''s points (private.apply_corrections). Returns the correction receipts. The caller holds the '
  'member''s row lock.';
revoke all on function private.apply_redecisions(uuid, jsonb, bigint, text) from public;
