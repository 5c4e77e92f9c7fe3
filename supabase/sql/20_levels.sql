-- Levels, tiers and layer statuses as data: XP to level on the curve, level to tier, layer XP
-- to status, and the level guide (curve, tiers with their unlocks, layers) that anyone may read.
--
-- Tables: public.level_curve, public.tiers, public.tier_unlocks, public.layers, public.layer_statuses.
-- Tests: tests/sql/test_levels.py

create or replace function public.level_for_xp(xp bigint)
returns integer
language sql
stable
security invoker
set search_path = ''
as $$
  select coalesce(
    (select c.level from public.level_curve c
      where c.xp_required <= greatest(level_for_xp.xp, 0)
      order by c.xp_required desc limit 1),
    1)
$$;
comment on function public.level_for_xp(bigint) is
  'The level reached with this much total XP (integer >= 1), from public.level_curve.';
revoke all on function public.level_for_xp(bigint) from public;
grant execute on function public.level_for_xp(bigint) to anon, authenticated, service_role;

create or replace function public.xp_for_level(level integer)
returns bigint
language sql
stable
security invoker
set search_path = ''
as $$
  select c.xp_required from public.level_curve c where c.level = xp_for_level.level
$$;
comment on function public.xp_for_level(integer) is
  'Total XP needed to reach a level (null above the curve). Default curve: 100*(L-1)^2 + 50*(L-1).';
revoke all on function public.xp_for_level(integer) from public;
grant execute on function public.xp_for_level(integer) to anon, authenticated, service_role;

create or replace function public.tier_for_level(level integer)
returns text
language sql
stable
security invoker
set search_path = ''
as $$
  select t.slug from public.tiers t
   where t.min_level <= tier_for_level.level
   order by t.min_level desc
   limit 1
$$;
comment on function public.tier_for_level(integer) is 'The slug of the tier that holds this level (the tier with the highest min_level not above it).';
revoke all on function public.tier_for_level(integer) from public;
grant execute on function public.tier_for_level(integer) to anon, authenticated, service_role;

create or replace function public.layer_status_for(layer text, xp bigint)
returns text
language sql
stable
security invoker
set search_path = ''
as $$
  select s.slug from public.layer_statuses s
   where s.layer_slug = layer_status_for.layer and s.min_xp <= greatest(layer_status_for.xp, 0)
   order by s.min_xp desc
   limit 1
$$;
comment on function public.layer_status_for(text, bigint) is 'The status slug a profile holds in a layer with this much layer XP.';
revoke all on function public.layer_status_for(text, bigint) from public;
grant execute on function public.layer_status_for(text, bigint) to anon, authenticated, service_role;

create or replace function public.level_guide()
returns jsonb
language sql
stable
security invoker
set search_path = ''
as $$
  select jsonb_build_object(
    'max_level', (select max(c.level) from public.level_curve c),
    'layers', coalesce((
      select jsonb_agg(jsonb_build_object(
               'slug', l.slug, 'name', l.name, 'description', l.description,
               'statuses', coalesce((select jsonb_agg(jsonb_build_object('slug', s.slug, 'name', s.name,
                                                                         'min_xp', s.min_xp) order by s.min_xp)
                                       from public.layer_statuses s where s.layer_slug = l.slug), '[]'))
             order by l.position, l.slug)
        from public.layers l), '[]'),
    'levels', coalesce((select jsonb_agg(jsonb_build_object('level', c.level, 'xp_required', c.xp_required)
                                         order by c.level) from public.level_curve c), '[]'),
    'tiers', coalesce((
      select jsonb_agg(jsonb_build_object(
               'slug', t.slug, 'name', t.name, 'min_level', t.min_level, 'max_level', t.max_level,
               'xp_required', public.xp_for_level(t.min_level),
               'unlocks', coalesce((select jsonb_agg(jsonb_build_object('slug', u.slug, 'name', u.name,
                                                                        'description', u.description)
                                                     order by u.position, u.slug)
                                      from public.tier_unlocks u where u.tier_slug = t.slug), '[]'))
             order by t.min_level)
        from public.tiers t), '[]'))
$$;
comment on function public.level_guide() is
  'The level curve, the tiers with what they unlock and the layers with their status ladders: {max_level, '
  'levels [{level, xp_required}], tiers [{slug, name, min_level, max_level, xp_required, unlocks [{slug, name, '
  'description}]}], layers [{slug, name, description, statuses [{slug, name, min_xp}]}]}. Public data.';
revoke all on function public.level_guide() from public;
grant execute on function public.level_guide() to anon, authenticated, service_role;

------------------------------------------------------------------------------
-- A changed curve or tier table re-derives every cached level and tier
------------------------------------------------------------------------------

create or replace function private.rederive_levels(p_reason text)
returns integer
language plpgsql
volatile
security definer
set search_path = ''
as $$
-- Each member's cached level and tier are functions of their total XP, the curve and the tiers (the award
-- path writes them; 30_award.sql). When the curve or the tiers change, every member whose cached values
-- no longer follow is moved, and told why with a level_changed notification. Returns how many moved.
declare
  v_moved integer;
begin
  if p_reason is null or length(p_reason) not between 1 and 200 then
    raise exception 'reason must be 1 to 200 characters' using errcode = 'XPBAD';
  end if;
  with target as (
    -- The same lookups anyone may call (level_for_xp, tier_for_level); the award path writes them inline.
    select p.id, p.xp, p.level as level_before, p.tier as tier_before, lv.level,
           coalesce(public.tier_for_level(lv.level), p.tier) as tier
      from public.profiles p
     cross join lateral (select public.level_for_xp(p.xp) as level) lv
  ), changed as (
    update public.profiles p
       set level = t.level, tier = t.tier, updated_at = now()
      from target t
     where p.id = t.id and (p.level is distinct from t.level or p.tier is distinct from t.tier)
    returning t.id, t.xp, t.level_before, t.level, t.tier_before, t.tier
  ), told as (
    insert into public.notifications (profile_id, kind, title, body, data)
    select c.id, 'level_changed',
           case when c.level = c.level_before then 'Your tier is now ' || coalesce(c.tier, 'none')
                else 'Your level is now ' || c.level end,
           'The community changed its ' || p_reason || '; your ' || c.xp || ' XP stay as they are.',
           jsonb_build_object('reason', p_reason, 'total_xp', c.xp, 'level_before', c.level_before,
                              'level', c.level, 'tier_before', c.tier_before, 'tier', c.tier)
      from changed c
    returning 1
  )
  select count(*) into v_moved from told;
  return v_moved;
end
$$;
comment on function private.rederive_levels(text) is
  'Moves every member whose cached level or tier (profiles.level, profiles.tier) no longer follows the level '
  'curve and tiers for their total XP, with a level_changed notification {reason, total_xp, level_before, '
  'level, tier_before, tier} saying why (p_reason, e.g. ''level curve''). Returns the number moved. XP and the '
  'ledger are untouched. Called at commit by the level_curve and tiers triggers.';
revoke all on function private.rederive_levels(text) from public;

create or replace function private.tg_levels__rederive()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
-- A deferred constraint trigger: it fires at commit, once per changed row, so a curve replaced by a delete
-- and an insert is read once, complete. The first firing of the transaction does the work; the others see
-- the transaction-local mark and return.
begin
  if current_setting('xpbase.levels_rederived', true) is distinct from txid_current()::text then
    perform set_config('xpbase.levels_rederived', txid_current()::text, true);
    perform private.rederive_levels(case tg_table_name when 'tiers' then 'tiers' else 'level curve' end);
  end if;
  return null;
end
$$;
comment on function private.tg_levels__rederive() is
  'Deferred trigger on public.level_curve and public.tiers: at commit, re-derives every cached level and tier '
  '(private.rederive_levels), once per transaction.';
revoke all on function private.tg_levels__rederive() from public;

drop trigger if exists _200_rederive_levels on public.level_curve;
create constraint trigger _200_rederive_levels after insert or update or delete on public.level_curve
  deferrable initially deferred for each row execute function private.tg_levels__rederive();
drop trigger if exists _200_rederive_levels on public.tiers;
create constraint trigger _200_rederive_levels after insert or update or delete on public.tiers
  deferrable initially deferred for each row execute function private.tg_levels__rederive();
