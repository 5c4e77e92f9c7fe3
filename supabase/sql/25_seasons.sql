-- Season lookups and rules: which season of a layer contains a moment (monthly UTC by
-- default, or public.season_rules), created on first use; season rules validated on write.
--
-- Tables: public.seasons, public.season_rules.
-- Tests: tests/sql/test_seasons.py

create or replace function private.season_bounds(p_layer text, p_at timestamptz, out starts_at timestamptz, out ends_at timestamptz, out name text)
language plpgsql
stable
security definer
set search_path = ''
as $$
-- The season of a layer that contains p_at, from public.season_rules (monthly UTC seasons without a row).
declare
  v_rule public.season_rules;
  v_local timestamp;
  v_days integer;
  v_months integer;
  v_k integer;
  v_start date;
  v_end date;
begin
  select * into v_rule from public.season_rules r where r.layer_slug = p_layer;
  if not found then
    v_rule.length_unit := 'month';
    v_rule.length := 1;
    v_rule.anchor := date '2026-01-01';
    v_rule.time_zone := 'UTC';
  end if;
  v_local := p_at at time zone v_rule.time_zone;
  if v_rule.length_unit = 'month' then
    v_months := (extract(year from v_local)::integer * 12 + extract(month from v_local)::integer)
              - (extract(year from v_rule.anchor)::integer * 12 + extract(month from v_rule.anchor)::integer);
    v_k := floor(v_months::numeric / v_rule.length);
    v_start := (v_rule.anchor + make_interval(months => v_k * v_rule.length))::date;
    v_end := (v_rule.anchor + make_interval(months => (v_k + 1) * v_rule.length))::date;
  else
    v_days := v_rule.length * case v_rule.length_unit when 'week' then 7 else 1 end;
    v_k := floor((v_local::date - v_rule.anchor)::numeric / v_days);
    v_start := v_rule.anchor + v_k * v_days;
    v_end := v_start + v_days;
  end if;
  starts_at := v_start::timestamp at time zone v_rule.time_zone;
  ends_at := v_end::timestamp at time zone v_rule.time_zone;
  name := case
            when v_rule.length_unit = 'month' and v_rule.length = 1 then to_char(v_start, 'YYYY-MM')
            else to_char(v_start, 'YYYY-MM-DD') || '..' || to_char(v_end - 1, 'YYYY-MM-DD')
          end || ' ' || p_layer;
end
$$;
comment on function private.season_bounds(text, timestamptz) is
  'Start, end (exclusive) and name of the season of a layer that contains a moment, from public.season_rules '
  '(monthly UTC seasons for a layer without a rule).';
revoke all on function private.season_bounds(text, timestamptz) from public;

create or replace function private.season_for(p_layer text, p_at timestamptz)
returns bigint
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_bounds record;
  v_id bigint;
begin
  -- An existing season that contains the moment wins (a changed rule never splits a running season).
  select s.id into v_id from public.seasons s
   where s.layer_slug = p_layer and s.starts_at <= p_at and p_at < s.ends_at
   order by s.starts_at desc limit 1;
  if v_id is not null then
    return v_id;
  end if;
  select * into v_bounds from private.season_bounds(p_layer, p_at);
  insert into public.seasons (layer_slug, name, starts_at, ends_at)
  values (p_layer, v_bounds.name, v_bounds.starts_at, v_bounds.ends_at)
  on conflict (layer_slug, starts_at) do nothing
  returning id into v_id;
  if v_id is null then
    select s.id into v_id from public.seasons s where s.layer_slug = p_layer and s.starts_at = v_bounds.starts_at;
  end if;
  return v_id;
end
$$;
comment on function private.season_for(text, timestamptz) is
  'The id of the season of a layer that contains a moment (bounds from public.season_rules; monthly UTC by '
  'default), created on first use.';
revoke all on function private.season_for(text, timestamptz) from public;

------------------------------------------------------------------------------
-- Season rules: validation (issue 4)
------------------------------------------------------------------------------

create or replace function private.tg_season_rules__validate()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  if new.time_zone <> 'UTC' and not exists (select 1 from pg_catalog.pg_timezone_names z where z.name = new.time_zone) then
    raise exception 'Unknown time zone: % (use an IANA name such as Europe/Berlin)', new.time_zone
      using errcode = 'XPBAD';
  end if;
  return new;
end
$$;
comment on function private.tg_season_rules__validate() is
  'Checks a season rule''s time zone is an IANA name (a bad one would stop every award in the layer).';
revoke all on function private.tg_season_rules__validate() from public;

drop trigger if exists _100_validate on public.season_rules;
create trigger _100_validate before insert or update on public.season_rules
  for each row execute function private.tg_season_rules__validate();
