-- A rule change reports its progress as NOTICEs (ledger rows decided again, members corrected) for xpbase rules diff|apply's progress bars
--
-- Written by `xpbase migration new` from the feature files in supabase/sql/:
-- the function and trigger definitions that changed since the last migration.
-- Edit the feature files, not this file; landed migrations never change.
-- Changed:
--   function private.rules_walk()
--   function private.rules_change_run(jsonb, text, int4, uuid, text, bool)

-- from supabase/sql/47_rule_changes.sql -------------------------------------

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
