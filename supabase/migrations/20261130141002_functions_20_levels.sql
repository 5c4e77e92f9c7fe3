-- Functions and triggers of supabase/sql/20_levels.sql, as migrations.
--
-- Until now supabase/functions.sql was re-applied by `xpbase migrate` on every start, outside
-- the Supabase CLI's model: `supabase db push` left a project with no functions at all. From
-- here on every definition reaches a database through a migration, one per feature file for
-- this first move; later edits arrive as `xpbase migration new` writes them.
--
-- Written by `xpbase migration new` from the feature files in supabase/sql/:
-- the function and trigger definitions that changed since the last migration.
-- Edit the feature files, not this file; landed migrations never change.
-- Changed:
--   function public.level_for_xp(int8)
--   function public.xp_for_level(int4)
--   function public.tier_for_level(int4)
--   function public.layer_status_for(text, int8)
--   function public.level_guide()

-- from supabase/sql/20_levels.sql -------------------------------------------

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
