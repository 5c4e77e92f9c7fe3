-- Every function and trigger of xpbase.
--
-- Re-applied by `xpbase migrate` after the migrations on every deploy, so
-- everything here is create-or-replace (or drop-if-exists first) and safe to run
-- twice. Privileged implementations live in `private` as security definer with
-- an empty search_path and fully qualified names; the RPCs that PostgREST
-- exposes are thin security-invoker wrappers in `public`. Every function is
-- followed by its grants, to the narrowest role.
--
-- Domain errors carry fixed SQLSTATEs, translated in one place in Python
-- (xpbase/errors.py):
--   XPBAD  invalid argument            XPACT  unknown or inactive activity
--   XPAMT  amount not allowed          XPPRF  unknown profile
--   XPIDM  idempotency key reused with other parameters
--   XPLVL  level outside the curve     XPLED  ledger rows are append-only
--   XPRAT  rate limit reached          XPCFG  required configuration missing
--   42501  caller may not do this (Postgres' insufficient_privilege)

grant usage on schema private to service_role, authenticated;

------------------------------------------------------------------------------
-- Level curve, tiers, layer statuses, seasons: lookups
------------------------------------------------------------------------------

create or replace function private.utc_text(p_at timestamptz)
returns text
language sql
immutable
set search_path = ''
as $$
  select to_char(p_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
$$;
comment on function private.utc_text(timestamptz) is
  'ISO 8601 text of a moment in UTC (2026-11-21T04:33:10.000000Z), whatever the session time zone: the form '
  'receipts and requests store, so that equal moments compare equal.';
revoke all on function private.utc_text(timestamptz) from public;

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
-- Callers
------------------------------------------------------------------------------

create or replace function private.assert_admin(out actor_id uuid, out actor_role text)
language plpgsql
stable
security definer
set search_path = ''
as $$
begin
  if (select auth.role()) = 'service_role' then
    -- The backend may name the person it acts for (private.act_for); null otherwise.
    actor_id := nullif(current_setting('xpbase.actor_id', true), '')::uuid;
    actor_role := 'service_role';
    return;
  end if;
  actor_id := (select auth.uid());
  if actor_id is null or not exists (
    select 1 from public.profiles p where p.id = actor_id and p.role = 'admin'
  ) then
    raise exception 'Only admins may correct XP' using errcode = '42501';
  end if;
  actor_role := 'admin';
end
$$;
comment on function private.assert_admin() is
  'Who is correcting XP: (null, service_role) for the backend, or (the profile it acts for, service_role) '
  'inside private.act_for; (profile id, admin) for an admin member; raises 42501 for anyone else.';
revoke all on function private.assert_admin() from public;

------------------------------------------------------------------------------
-- Profiles and identities
------------------------------------------------------------------------------

create or replace function private.ensure_profile(p_provider text, p_subject text, p_display_name text)
returns uuid
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_id uuid;
  v_name text := left(nullif(btrim(coalesce(p_display_name, '')), ''), 64);
begin
  if p_provider is null or p_provider !~ '^[a-z][a-z0-9_.:-]{0,63}$' then
    raise exception 'provider must match ^[a-z][a-z0-9_.:-]{0,63}$, got %', coalesce(p_provider, 'null')
      using errcode = 'XPBAD';
  end if;
  if p_subject is null or length(p_subject) not between 1 and 255 then
    raise exception 'subject must be 1 to 255 characters' using errcode = 'XPBAD';
  end if;

  select i.profile_id into v_id from public.identities i
   where i.provider = p_provider and i.subject = p_subject;
  if v_id is not null then
    return v_id;
  end if;

  -- Serialise first sight of one identity so two callers make one profile.
  perform pg_advisory_xact_lock(hashtextextended(p_provider || chr(31) || p_subject, 0));
  select i.profile_id into v_id from public.identities i
   where i.provider = p_provider and i.subject = p_subject;
  if v_id is not null then
    return v_id;
  end if;

  insert into public.profiles (display_name, tier)
  values (coalesce(v_name, p_provider || ' member'), public.tier_for_level(1))
  returning id into v_id;
  insert into public.identities (profile_id, provider, subject) values (v_id, p_provider, p_subject);
  return v_id;
end
$$;
comment on function private.ensure_profile(text, text, text) is 'Implementation of public.ensure_profile.';
revoke all on function private.ensure_profile(text, text, text) from public;
grant execute on function private.ensure_profile(text, text, text) to service_role;

create or replace function public.ensure_profile(provider text, subject text, display_name text)
returns uuid
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.ensure_profile(ensure_profile.provider, ensure_profile.subject, ensure_profile.display_name)
$$;
comment on function public.ensure_profile(text, text, text) is
  'The profile id (uuid) of an external identity, created on first sight with display_name (trimmed, at most '
  '64 characters; provider || '' member'' when empty). An existing profile keeps its name. '
  'Errors: XPBAD for a malformed provider or subject. service_role only.';
revoke all on function public.ensure_profile(text, text, text) from public, anon, authenticated;
grant execute on function public.ensure_profile(text, text, text) to service_role;

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
-- (multipliers, cooldown, cap and floor applied). The caller holds the profile row lock.
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
           se.id, coalesce(ss.xp, 0)
      into v_layer_found, v_layer_xp, v_status_before, v_status_after, v_season_id, v_season_before
      from (select) one
      left join public.profile_layers pl on pl.profile_id = p_profile_id and pl.layer_slug = v_layer
      -- An existing season that contains the moment wins (as in private.season_for).
      left join lateral (
        select s.id from public.seasons s
         where v_counts_for_season and s.layer_slug = v_layer
           and s.starts_at <= p_occurred_at and p_occurred_at < s.ends_at
         order by s.starts_at desc limit 1
      ) se on true
      left join public.season_scores ss on ss.season_id = se.id and ss.profile_id = p_profile_id;
    if not v_layer_found then
      v_status_before := (select s.slug from public.layer_statuses s
                           where s.layer_slug = v_layer and s.min_xp <= 0 order by s.min_xp desc limit 1);
    end if;
    if v_counts_for_season and v_season_id is null then
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
        idempotency_key, actor_id, actor_role, reason, request, receipt
      ) overriding system value values (
        v_id, p_profile_id, p_activity, v_part ->> 'layer', (v_part ->> 'season_id')::bigint,
        v_amount, (v_part ->> 'season_amount')::integer, case when v_first_id = v_id then v_points else 0 end,
        p_occurred_at, p_idempotency_key, p_actor_id, p_actor_role, p_reason, p_request, v_receipt
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
  'level_up / tier_up / layer_status_up notifications. Returns the receipt. Only the engine calls it. '
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
  p_context jsonb
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
  -- Awards happen now or in the past (replays); five minutes of clock skew are tolerated.
  if p_occurred_at > now() + interval '5 minutes' then
    raise exception 'occurred_at % is in the future', private.utc_text(p_occurred_at) using errcode = 'XPBAD';
  end if;

  v_request := jsonb_build_object(
    'fn', 'award_xp', 'profile_id', p_profile_id, 'activity', p_activity, 'amount', p_amount,
    'occurred_at', private.utc_text(p_occurred_at), 'context', v_context);

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
           )
         order by x.kind, x.factor desc
      ) m;
    v_multiplier := round(least(v_multiplier, coalesce(v_max_multiplier, 5)), 3);
    v_amount := floor(v_base * v_multiplier);
  end if;

  -- Cooldown: at most one credited award of this activity per window.
  if v_act.cooldown_seconds > 0 and v_amount > 0 then
    select max(l.occurred_at) into v_last
      from public.xp_ledger l
     where l.profile_id = p_profile_id
       and l.activity_slug = v_act.slug
       and l.amount > 0
       and l.occurred_at > v_occurred - make_interval(secs => v_act.cooldown_seconds)
       and l.occurred_at < v_occurred + make_interval(secs => v_act.cooldown_seconds);
    if v_last is not null then
      v_cooldown_left := greatest(1, ceil(extract(epoch from
                           v_last + make_interval(secs => v_act.cooldown_seconds) - v_occurred))::integer);
      v_amount := 0;
    end if;
  end if;

  -- Daily cap of the activity's cap group, in the group's time zone.
  if v_act.cap_group is not null then
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
    v_cap_info := jsonb_build_object('group', v_cap_slug, 'daily_cap', v_daily_cap, 'day', v_day,
                                     'used', v_used, 'remaining', greatest(v_daily_cap - v_used, 0));
  end if;

  return private.apply_xp(
    p_profile_id, v_act.slug,
    jsonb_build_array(jsonb_build_object('layer', v_act.layer_slug, 'amount', v_amount)),
    v_occurred, p_idempotency_key, null, 'service_role', null, v_request,
    jsonb_build_object(
      'requested', p_amount,
      'base', v_base,
      'multiplier', v_multiplier,
      'multipliers', v_multipliers,
      'cooldown', v_cooldown_left > 0,
      'cooldown_remaining_seconds', v_cooldown_left,
      'capped', v_capped,
      'cap', v_cap_info,
      'floored', v_floored));
end
$$;
comment on function private.award_xp(uuid, text, text, integer, timestamptz, jsonb) is 'Implementation of public.award_xp.';
revoke all on function private.award_xp(uuid, text, text, integer, timestamptz, jsonb) from public;
grant execute on function private.award_xp(uuid, text, text, integer, timestamptz, jsonb) to service_role;

create or replace function public.award_xp(
  profile_id uuid,
  activity text,
  idempotency_key text,
  amount integer default null,
  occurred_at timestamptz default null,
  context jsonb default '{}'
)
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.award_xp(award_xp.profile_id, award_xp.activity, award_xp.idempotency_key,
                          award_xp.amount, award_xp.occurred_at, award_xp.context)
$$;
comment on function public.award_xp(uuid, text, text, integer, timestamptz, jsonb) is
  'The one award path. Grants XP for an activity to a profile and returns a receipt (jsonb): granted (XP '
  'actually credited), base, requested, multiplier and multipliers, cooldown (bool) and '
  'cooldown_remaining_seconds, capped (bool) and cap {group, daily_cap, day, used, remaining}, floored, '
  'total_xp_before/total_xp, level_before/level, tier_before/tier, layer, layer_xp, '
  'layer_status_before/layer_status, season_id, season_xp, points_granted, points, unlocks '
  '[{tier, slug, name}], tier_up (a new tier was reached) and tier_name, ledger_id, replayed. The base is the rate in force at occurred_at '
  '(public.activity_rates) or the activity''s base_xp; a penalty stops at the activity''s xp_floor. '
  'amount (XP) may only be named for activities with a range; '
  'occurred_at defaults to now (UTC); context carries role_ids (array of text), channel_id and event_id for '
  'multipliers. The same idempotency_key returns the first receipt (replayed = true) and credits nothing. '
  'Errors: XPIDM key reused with other parameters, XPACT unknown activity, XPAMT amount not allowed, '
  'XPPRF unknown profile, XPBAD malformed arguments. service_role only.';
revoke all on function public.award_xp(uuid, text, text, integer, timestamptz, jsonb) from public, anon, authenticated;
grant execute on function public.award_xp(uuid, text, text, integer, timestamptz, jsonb) to service_role;

------------------------------------------------------------------------------
-- Admin corrections: ledger rows with actor and reason, never edits
------------------------------------------------------------------------------

create or replace function private.correct_xp(
  p_fn text,
  p_profile_id uuid,
  p_value bigint,
  p_layer text,
  p_reason text,
  p_idempotency_key text,
  p_request jsonb
)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_actor record;
  v_receipt jsonb;
  v_layer text := p_layer;
  v_parts jsonb := '[]';
  v_left bigint;
  v_row record;
  v_take bigint;
  v_delta bigint := p_value;
  v_target bigint;
  v_floored boolean := false;
begin
  select * into v_actor from private.assert_admin();
  if p_profile_id is null then
    raise exception 'profile_id is required' using errcode = 'XPBAD';
  end if;
  if p_reason is null or length(btrim(p_reason)) not between 1 and 500 then
    raise exception 'reason must be 1 to 500 characters' using errcode = 'XPBAD';
  end if;
  if p_idempotency_key is null or length(p_idempotency_key) not between 1 and 200 then
    raise exception 'idempotency_key must be 1 to 200 characters' using errcode = 'XPBAD';
  end if;
  if v_layer is not null and not exists (select 1 from public.layers l where l.slug = v_layer) then
    raise exception 'Unknown layer: %', v_layer using errcode = 'XPBAD';
  end if;

  v_receipt := private.find_receipt(p_idempotency_key, p_request);
  if v_receipt is not null then
    return v_receipt;
  end if;
  perform 1 from public.profiles p where p.id = p_profile_id for update;
  if not found then
    raise exception 'Unknown profile: %', p_profile_id using errcode = 'XPPRF';
  end if;
  perform pg_advisory_xact_lock(hashtextextended('xp_ledger:' || p_idempotency_key, 0));
  v_receipt := private.find_receipt(p_idempotency_key, p_request);
  if v_receipt is not null then
    return v_receipt;
  end if;

  if p_fn = 'admin_set_level' then
    v_target := public.xp_for_level(p_value::integer);
    if v_target is null then
      raise exception 'Level % is not on the level curve', p_value using errcode = 'XPLVL';
    end if;
    v_delta := v_target - (select p.xp from public.profiles p where p.id = p_profile_id);
  elsif p_fn = 'admin_reset_xp' then
    v_delta := -(select p.xp from public.profiles p where p.id = p_profile_id);
  end if;

  if v_delta > 2147483647 or v_delta < -2147483647 then
    raise exception 'A correction may move at most 2147483647 XP at once' using errcode = 'XPAMT';
  end if;

  if v_delta > 0 then
    v_layer := coalesce(v_layer, (select s.default_layer from public.engine_settings s limit 1), 'cyber');
    v_parts := jsonb_build_array(jsonb_build_object('layer', v_layer, 'amount', v_delta));
  elsif v_delta < 0 then
    -- Take from the named layer, or from the layers holding the most XP first.
    v_left := -v_delta;
    for v_row in
      select pl.layer_slug, pl.xp from public.profile_layers pl
       where pl.profile_id = p_profile_id and pl.xp > 0 and (v_layer is null or pl.layer_slug = v_layer)
       order by pl.xp desc, pl.layer_slug
    loop
      exit when v_left = 0;
      v_take := least(v_left, v_row.xp);
      v_parts := v_parts || jsonb_build_object('layer', v_row.layer_slug, 'amount', -v_take);
      v_left := v_left - v_take;
    end loop;
    v_floored := v_left > 0;
  end if;
  if jsonb_array_length(v_parts) = 0 then
    v_layer := coalesce(v_layer, (select s.default_layer from public.engine_settings s limit 1), 'cyber');
    v_parts := jsonb_build_array(jsonb_build_object('layer', v_layer, 'amount', 0));
  end if;

  return private.apply_xp(
    p_profile_id, 'admin_adjustment', v_parts, now(), p_idempotency_key,
    v_actor.actor_id, v_actor.actor_role, btrim(p_reason), p_request,
    jsonb_build_object('correction', p_fn, 'requested', p_value, 'base', v_delta, 'multiplier', 1,
                       'multipliers', '[]'::jsonb, 'cooldown', false, 'cooldown_remaining_seconds', 0,
                       'capped', false, 'cap', null, 'floored', v_floored,
                       'actor_id', v_actor.actor_id, 'actor_role', v_actor.actor_role));
end
$$;
comment on function private.correct_xp(text, uuid, bigint, text, text, text, jsonb) is
  'Shared implementation of the admin corrections: checks the caller, splits the change over layers and '
  'writes it through private.apply_xp with actor and reason. p_value is the XP amount for admin_adjust_xp, '
  'the target level for admin_set_level, and ignored for admin_reset_xp.';
revoke all on function private.correct_xp(text, uuid, bigint, text, text, text, jsonb) from public;
grant execute on function private.correct_xp(text, uuid, bigint, text, text, text, jsonb) to service_role, authenticated;

create or replace function public.admin_adjust_xp(
  profile_id uuid,
  amount integer,
  reason text,
  idempotency_key text,
  layer text default null
)
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.correct_xp(
    'admin_adjust_xp', admin_adjust_xp.profile_id, admin_adjust_xp.amount, admin_adjust_xp.layer,
    admin_adjust_xp.reason, admin_adjust_xp.idempotency_key,
    jsonb_build_object('fn', 'admin_adjust_xp', 'profile_id', admin_adjust_xp.profile_id,
                       'amount', admin_adjust_xp.amount, 'layer', admin_adjust_xp.layer,
                       'reason', admin_adjust_xp.reason))
$$;
comment on function public.admin_adjust_xp(uuid, integer, text, text, text) is
  'Adds (amount > 0) or removes (amount < 0) XP as a ledger row with the caller as actor and a reason '
  '(1-500 characters). Positive amounts go to layer (default engine_settings.default_layer); negative ones '
  'come from layer, or from the layers holding the most XP, never below zero. Returns the receipt. '
  'Idempotent on idempotency_key. Errors: 42501 unless service_role or an admin member, XPBAD, XPPRF, XPIDM.';
revoke all on function public.admin_adjust_xp(uuid, integer, text, text, text) from public, anon;
grant execute on function public.admin_adjust_xp(uuid, integer, text, text, text) to service_role, authenticated;

create or replace function public.admin_set_level(
  profile_id uuid,
  level integer,
  reason text,
  idempotency_key text default null
)
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.correct_xp(
    'admin_set_level', admin_set_level.profile_id, admin_set_level.level, null, admin_set_level.reason,
    coalesce(admin_set_level.idempotency_key, 'admin_set_level:' || gen_random_uuid()),
    jsonb_build_object('fn', 'admin_set_level', 'profile_id', admin_set_level.profile_id,
                       'level', admin_set_level.level, 'reason', admin_set_level.reason))
$$;
comment on function public.admin_set_level(uuid, integer, text, text) is
  'Moves a profile to exactly the XP at which level starts (public.xp_for_level) with one correction per '
  'layer touched, recorded with actor and reason. Returns the receipt. Errors: XPLVL level not on the curve, '
  '42501 unless service_role or an admin member, XPBAD, XPPRF.';
revoke all on function public.admin_set_level(uuid, integer, text, text) from public, anon;
grant execute on function public.admin_set_level(uuid, integer, text, text) to service_role, authenticated;

create or replace function public.admin_reset_xp(
  profile_id uuid,
  reason text,
  idempotency_key text default null
)
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.correct_xp(
    'admin_reset_xp', admin_reset_xp.profile_id, 0, null, admin_reset_xp.reason,
    coalesce(admin_reset_xp.idempotency_key, 'admin_reset_xp:' || gen_random_uuid()),
    jsonb_build_object('fn', 'admin_reset_xp', 'profile_id', admin_reset_xp.profile_id,
                       'reason', admin_reset_xp.reason))
$$;
comment on function public.admin_reset_xp(uuid, text, text) is
  'Brings a profile''s XP (every layer) to zero with correction rows carrying actor and reason; points are '
  'kept (corrections never change points). Returns the receipt. Errors: 42501 unless service_role or an admin member, XPBAD, XPPRF.';
revoke all on function public.admin_reset_xp(uuid, text, text) from public, anon;
grant execute on function public.admin_reset_xp(uuid, text, text) to service_role, authenticated;

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

create or replace function private.tg_profiles__validate()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  new.display_name := btrim(new.display_name);
  if tg_op = 'UPDATE' then
    new.updated_at := now();
  end if;
  if (tg_op = 'INSERT' or new.time_zone is distinct from old.time_zone)
     and new.time_zone <> 'UTC'
     and not exists (select 1 from pg_catalog.pg_timezone_names z where z.name = new.time_zone) then
    raise exception 'Unknown time zone: % (use an IANA name such as Europe/Berlin)', new.time_zone
      using errcode = 'XPBAD';
  end if;
  return new;
end
$$;
comment on function private.tg_profiles__validate() is
  'Trims the display name, stamps updated_at and checks the time zone is an IANA name (inserts and updates of '
  'the editable columns).';
revoke all on function private.tg_profiles__validate() from public;

-- Only the columns a member or an admin edits: the award path (private.apply_xp) and season rewards
-- (private.finalize_seasons) write xp, level, tier, points and xp_reached_at and stamp updated_at themselves.
drop trigger if exists _100_validate on public.profiles;
create trigger _100_validate
  before insert or update of display_name, bio, avatar_url, social_links, time_zone, leaderboard_visible, role
  on public.profiles
  for each row execute function private.tg_profiles__validate();

create or replace function private.tg_notifications__notify()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform pg_notify('xpbase_notifications',
                    json_build_object('id', new.id, 'profile_id', new.profile_id, 'kind', new.kind)::text);
  return null;
end
$$;
comment on function private.tg_notifications__notify() is 'Announces each new notification on channel xpbase_notifications.';
revoke all on function private.tg_notifications__notify() from public;

drop trigger if exists _500_notify on public.notifications;
create trigger _500_notify after insert on public.notifications
  for each row execute function private.tg_notifications__notify();


------------------------------------------------------------------------------
-- Operations
------------------------------------------------------------------------------

create or replace function private.schema_version()
returns text
language sql
stable
security definer
set search_path = ''
as $$
  select max(m.version) from supabase_migrations.schema_migrations m
$$;
comment on function private.schema_version() is 'Implementation of public.schema_version.';
revoke all on function private.schema_version() from public;
grant execute on function private.schema_version() to service_role;

create or replace function public.schema_version()
returns text
language sql
stable
security invoker
set search_path = ''
as $$
  select private.schema_version()
$$;
comment on function public.schema_version() is
  'The newest migration version applied (YYYYMMDDHHmmss, from supabase_migrations.schema_migrations); '
  'what GET /health reports. service_role only.';
revoke all on function public.schema_version() from public, anon, authenticated;
grant execute on function public.schema_version() to service_role;

------------------------------------------------------------------------------
-- Rule packs and batch awards (issue 3: replaying a Stack Exchange site)
------------------------------------------------------------------------------

create or replace function private.tg_activity_rates__validate()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_act public.activity_types;
begin
  select * into v_act from public.activity_types a where a.slug = new.activity_slug;
  if v_act.min_xp is not null and new.base_xp not between v_act.min_xp and v_act.max_xp then
    raise exception 'Rate % XP of activity % is outside its range % to %',
      new.base_xp, new.activity_slug, v_act.min_xp, v_act.max_xp
      using errcode = 'XPAMT';
  end if;
  return new;
end
$$;
comment on function private.tg_activity_rates__validate() is
  'Refuses a dated rate outside the activity''s [min_xp, max_xp] range (XPAMT).';
revoke all on function private.tg_activity_rates__validate() from public;

drop trigger if exists _100_validate on public.activity_rates;
create trigger _100_validate before insert or update on public.activity_rates
  for each row execute function private.tg_activity_rates__validate();

create or replace function private.award_xp_batch(p_awards jsonb)
returns table (
  idempotency_key text,
  granted integer,
  replayed boolean,
  capped boolean,
  floored boolean,
  cooldown boolean
)
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_item jsonb;
  v_index bigint := 0;
  v_receipt jsonb;
  v_state text;
  v_message text;
  v_detail text;
begin
  if p_awards is null or jsonb_typeof(p_awards) <> 'array' then
    raise exception 'awards must be a JSON array' using errcode = 'XPBAD';
  end if;
  if jsonb_array_length(p_awards) > 10000 then
    raise exception 'awards may hold at most 10000 items, got %', jsonb_array_length(p_awards)
      using errcode = 'XPBAD';
  end if;

  -- One block for the whole batch (one subtransaction, not one per item): any
  -- failure rolls the batch back and names the item.
  begin
    for v_item in select a.value from jsonb_array_elements(p_awards) as a loop
      if jsonb_typeof(v_item) <> 'object' then
        raise exception 'must be a JSON object' using errcode = 'XPBAD';
      end if;
      if exists (select 1 from jsonb_object_keys(v_item) k
                  where k not in ('profile_id', 'activity', 'idempotency_key', 'amount', 'occurred_at', 'context')) then
        raise exception 'unknown key; allowed: profile_id, activity, idempotency_key, amount, occurred_at, context'
          using errcode = 'XPBAD';
      end if;
      v_receipt := private.award_xp(
        (v_item ->> 'profile_id')::uuid,
        v_item ->> 'activity',
        v_item ->> 'idempotency_key',
        (v_item ->> 'amount')::integer,
        (v_item ->> 'occurred_at')::timestamptz,
        coalesce(v_item -> 'context', '{}'));
      idempotency_key := v_item ->> 'idempotency_key';
      granted := (v_receipt ->> 'granted')::integer;
      replayed := (v_receipt ->> 'replayed')::boolean;
      capped := coalesce((v_receipt ->> 'capped')::boolean, false);
      floored := coalesce((v_receipt ->> 'floored')::boolean, false);
      cooldown := coalesce((v_receipt ->> 'cooldown')::boolean, false);
      v_index := v_index + 1;
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
comment on function private.award_xp_batch(jsonb) is 'Implementation of public.service_role_award_xp_batch.';
revoke all on function private.award_xp_batch(jsonb) from public;
grant execute on function private.award_xp_batch(jsonb) to service_role;

create or replace function public.service_role_award_xp_batch(awards jsonb)
returns table (
  idempotency_key text,
  granted integer,
  replayed boolean,
  capped boolean,
  floored boolean,
  cooldown boolean
)
language sql
volatile
security invoker
set search_path = ''
as $$
  select * from private.award_xp_batch(service_role_award_xp_batch.awards)
$$;
comment on function public.service_role_award_xp_batch(jsonb) is
  'Many award_xp calls in one round trip and one transaction, in array order: awards is a JSON array (at most '
  '10000) of objects {profile_id, activity, idempotency_key, amount?, occurred_at?, context?} with the meaning '
  'of public.award_xp''s parameters, each decided by private.award_xp itself (the same rules, no second '
  'implementation). Returns one row per item: idempotency_key, granted (XP), replayed, capped, floored, '
  'cooldown. All or nothing: the first failing item rolls the batch back with its SQLSTATE (XPIDM, XPACT, '
  'XPAMT, XPPRF, XPBAD) and a message starting with awards[<index from 0>]. Holds the row lock of every '
  'profile it touched until it commits. service_role only.';
revoke all on function public.service_role_award_xp_batch(jsonb) from public, anon, authenticated;
grant execute on function public.service_role_award_xp_batch(jsonb) to service_role;


------------------------------------------------------------------------------
-- Sign-in, sessions and refresh tokens
------------------------------------------------------------------------------
-- The service (service/blueprints/auth.py) proves who someone is with OAuth
-- and calls these as service_role. Secrets arrive only as sha256 hashes
-- (32 bytes): OAuth states, browser nonces and refresh tokens.
--
-- SQLSTATEs of this section (xpbase/errors.py):
--   XPRTK  unknown refresh token      XPRTX  refresh token expired
--   XPRTR  session revoked (logout or reuse of a spent token)
--   XPLNK  identity already linked to another profile
--   XPLNP  profile already has an account of that provider

create or replace function private.check_provider(p_provider text)
returns void
language plpgsql
immutable
set search_path = ''
as $$
begin
  if p_provider is null or p_provider !~ '^[a-z][a-z0-9_.:-]{0,63}$' then
    raise exception 'provider must match ^[a-z][a-z0-9_.:-]{0,63}$, got %', coalesce(p_provider, 'null')
      using errcode = 'XPBAD';
  end if;
end
$$;
comment on function private.check_provider(text) is 'Raises XPBAD unless the provider name is well-formed (the identities table''s rule).';
revoke all on function private.check_provider(text) from public;

create or replace function private.check_identity_args(p_provider text, p_subject text)
returns void
language plpgsql
immutable
set search_path = ''
as $$
begin
  perform private.check_provider(p_provider);
  if p_subject is null or length(p_subject) not between 1 and 255 then
    raise exception 'subject must be 1 to 255 characters' using errcode = 'XPBAD';
  end if;
end
$$;
comment on function private.check_identity_args(text, text) is 'Raises XPBAD unless provider and subject are well-formed (the identities table''s rules).';
revoke all on function private.check_identity_args(text, text) from public;

create or replace function private.check_hash(p_name text, p_hash bytea)
returns void
language plpgsql
immutable
set search_path = ''
as $$
begin
  if p_hash is null or length(p_hash) <> 32 then
    raise exception '% must be a sha256 digest (32 bytes)', p_name using errcode = 'XPBAD';
  end if;
end
$$;
comment on function private.check_hash(text, bytea) is 'Raises XPBAD unless the value is 32 bytes (a sha256 digest).';
revoke all on function private.check_hash(text, bytea) from public;

create or replace function private.profile_summary(p_profile_id uuid)
returns jsonb
language sql
stable
security definer
set search_path = ''
as $$
  select jsonb_build_object('id', p.id, 'display_name', p.display_name, 'avatar_url', p.avatar_url, 'role', p.role)
    from public.profiles p
   where p.id = p_profile_id
$$;
comment on function private.profile_summary(uuid) is
  'What sign-in answers about a profile: {id, display_name, avatar_url, role}; role is profiles.role, the app '
  'role access tokens carry. Null for an unknown profile.';
revoke all on function private.profile_summary(uuid) from public;

create or replace function private.sign_in_identity(
  p_provider text,
  p_subject text,
  p_display_name text,
  p_avatar_url text
)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_id uuid;
  v_created boolean;
  v_name text := left(nullif(btrim(coalesce(p_display_name, '')), ''), 100);
  v_avatar text := nullif(btrim(coalesce(p_avatar_url, '')), '');
begin
  v_id := private.ensure_profile(p_provider, p_subject, p_display_name);
  -- Created by this transaction: the provider's picture becomes the avatar.
  select p.created_at = now() into v_created from public.profiles p where p.id = v_id;
  if v_created and v_avatar ~ '^https://[^\s]+$' and length(v_avatar) <= 500 then
    update public.profiles p set avatar_url = v_avatar where p.id = v_id and p.avatar_url is null;
  end if;
  update public.identities i
     set display_name = coalesce(v_name, i.display_name), last_sign_in_at = now()
   where i.provider = p_provider and i.subject = p_subject;
  return jsonb_build_object('profile_id', v_id, 'created', v_created, 'user', private.profile_summary(v_id));
end
$$;
comment on function private.sign_in_identity(text, text, text, text) is 'Implementation of public.service_role_sign_in.';
revoke all on function private.sign_in_identity(text, text, text, text) from public;
grant execute on function private.sign_in_identity(text, text, text, text) to service_role;

create or replace function public.service_role_sign_in(
  provider text,
  subject text,
  display_name text,
  avatar_url text default null
)
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.sign_in_identity(service_role_sign_in.provider, service_role_sign_in.subject,
                                  service_role_sign_in.display_name, service_role_sign_in.avatar_url)
$$;
comment on function public.service_role_sign_in(text, text, text, text) is
  'Signs an external identity in: its profile through ensure_profile (created on first sight with the '
  'provider''s display name, and avatar_url when it is an https URL of at most 500 characters), and records '
  'the provider-side name and last_sign_in_at on the identity. Returns {profile_id, created, user: {id, '
  'display_name, avatar_url, role}}; role is profiles.role (the app role tokens carry). Errors: XPBAD for a '
  'malformed provider or subject. service_role only.';
revoke all on function public.service_role_sign_in(text, text, text, text) from public, anon, authenticated;
grant execute on function public.service_role_sign_in(text, text, text, text) to service_role;

create or replace function private.link_identity(
  p_profile_id uuid,
  p_provider text,
  p_subject text,
  p_display_name text
)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_owner uuid;
  v_name text := left(nullif(btrim(coalesce(p_display_name, '')), ''), 100);
begin
  perform private.check_identity_args(p_provider, p_subject);
  if p_profile_id is null or not exists (select 1 from public.profiles p where p.id = p_profile_id) then
    raise exception 'Unknown profile: %', p_profile_id using errcode = 'XPPRF';
  end if;
  -- One account per provider and profile, and first sight of an identity
  -- serialised with ensure_profile (same advisory key), always in this order.
  perform pg_advisory_xact_lock(hashtextextended('link' || chr(31) || p_profile_id::text || chr(31) || p_provider, 0));
  perform pg_advisory_xact_lock(hashtextextended(p_provider || chr(31) || p_subject, 0));

  select i.profile_id into v_owner from public.identities i
   where i.provider = p_provider and i.subject = p_subject;
  if v_owner is not null and v_owner <> p_profile_id then
    raise exception 'This % account is already linked to another profile', p_provider
      using errcode = 'XPLNK', hint = 'Sign in with that account instead, or ask an admin to merge the profiles.';
  end if;
  if v_owner is null then
    if exists (select 1 from public.identities i where i.profile_id = p_profile_id and i.provider = p_provider) then
      raise exception 'This profile already has a % account linked', p_provider using errcode = 'XPLNP';
    end if;
    insert into public.identities (profile_id, provider, subject, display_name)
    values (p_profile_id, p_provider, p_subject, v_name);
  elsif v_name is not null then
    update public.identities i set display_name = v_name
     where i.provider = p_provider and i.subject = p_subject;
  end if;
  return jsonb_build_object(
    'profile_id', p_profile_id,
    'provider', p_provider,
    'subject', p_subject,
    'display_name', v_name,
    'already_linked', v_owner is not null,
    'user', private.profile_summary(p_profile_id));
end
$$;
comment on function private.link_identity(uuid, text, text, text) is 'Implementation of public.service_role_link_identity.';
revoke all on function private.link_identity(uuid, text, text, text) from public;
grant execute on function private.link_identity(uuid, text, text, text) to service_role;

create or replace function public.service_role_link_identity(
  profile_id uuid,
  provider text,
  subject text,
  display_name text default null
)
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.link_identity(service_role_link_identity.profile_id, service_role_link_identity.provider,
                               service_role_link_identity.subject, service_role_link_identity.display_name)
$$;
comment on function public.service_role_link_identity(uuid, text, text, text) is
  'Attaches an external identity (provider, subject) to an existing profile, e.g. a second sign-in provider. '
  'Linking an identity the profile already has is a no-op (already_linked = true). Returns {profile_id, '
  'provider, subject, display_name, already_linked, user: {id, display_name, avatar_url, role}}. Errors: XPLNK the identity '
  'belongs to another profile, XPLNP the profile already has another account of that provider, XPPRF unknown '
  'profile, XPBAD malformed provider or subject. service_role only.';
revoke all on function public.service_role_link_identity(uuid, text, text, text) from public, anon, authenticated;
grant execute on function public.service_role_link_identity(uuid, text, text, text) to service_role;

-- OAuth states -----------------------------------------------------------------

create or replace function private.create_oauth_state(
  p_state_hash bytea,
  p_browser_hash bytea,
  p_provider text,
  p_redirect_uri text,
  p_code_verifier text,
  p_nonce text,
  p_link_profile_id uuid,
  p_cookie_mode boolean,
  p_ttl_seconds integer
)
returns timestamptz
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_expires_at timestamptz;
begin
  perform private.check_hash('state_hash', p_state_hash);
  perform private.check_hash('browser_hash', p_browser_hash);
  perform private.check_provider(p_provider);
  if p_ttl_seconds is null or p_ttl_seconds not between 60 and 3600 then
    raise exception 'ttl_seconds must be between 60 and 3600' using errcode = 'XPBAD';
  end if;
  if p_redirect_uri is null or p_redirect_uri !~ '^https?://' or length(p_redirect_uri) > 2000 then
    raise exception 'redirect_uri must be an http(s) URL of at most 2000 characters' using errcode = 'XPBAD';
  end if;
  if p_code_verifier is null or p_code_verifier !~ '^[A-Za-z0-9._~-]{43,128}$' then
    raise exception 'code_verifier must be 43 to 128 unreserved characters (RFC 7636)' using errcode = 'XPBAD';
  end if;
  if p_nonce is null or length(p_nonce) not between 16 and 128 then
    raise exception 'nonce must be 16 to 128 characters' using errcode = 'XPBAD';
  end if;
  if p_link_profile_id is not null and not exists (select 1 from public.profiles p where p.id = p_link_profile_id) then
    raise exception 'Unknown profile: %', p_link_profile_id using errcode = 'XPPRF';
  end if;

  delete from private.oauth_states s where s.expires_at < now();
  insert into private.oauth_states (
    state_hash, browser_hash, provider, redirect_uri, code_verifier, nonce, link_profile_id, cookie_mode, expires_at
  ) values (
    p_state_hash, p_browser_hash, p_provider, p_redirect_uri, p_code_verifier, p_nonce, p_link_profile_id,
    coalesce(p_cookie_mode, false), now() + make_interval(secs => p_ttl_seconds)
  )
  returning expires_at into v_expires_at;
  return v_expires_at;
end
$$;
comment on function private.create_oauth_state(bytea, bytea, text, text, text, text, uuid, boolean, integer) is
  'Implementation of public.service_role_create_oauth_state.';
revoke all on function private.create_oauth_state(bytea, bytea, text, text, text, text, uuid, boolean, integer) from public;
grant execute on function private.create_oauth_state(bytea, bytea, text, text, text, text, uuid, boolean, integer) to service_role;

create or replace function public.service_role_create_oauth_state(
  state_hash bytea,
  browser_hash bytea,
  provider text,
  redirect_uri text,
  code_verifier text,
  nonce text,
  link_profile_id uuid,
  cookie_mode boolean,
  ttl_seconds integer
)
returns timestamptz
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.create_oauth_state(
    service_role_create_oauth_state.state_hash, service_role_create_oauth_state.browser_hash,
    service_role_create_oauth_state.provider, service_role_create_oauth_state.redirect_uri,
    service_role_create_oauth_state.code_verifier, service_role_create_oauth_state.nonce,
    service_role_create_oauth_state.link_profile_id, service_role_create_oauth_state.cookie_mode,
    service_role_create_oauth_state.ttl_seconds)
$$;
comment on function public.service_role_create_oauth_state(bytea, bytea, text, text, text, text, uuid, boolean, integer) is
  'Remembers a sign-in in flight for ttl_seconds (60-3600): sha256 of the state and of the browser nonce it is '
  'bound to, the provider, the exact redirect_uri, the PKCE code_verifier, the OIDC nonce, the profile to link '
  'to (null for a sign-in) and whether tokens go to cookies. Deletes expired states. Returns expires_at. '
  'Errors: XPBAD malformed input, XPPRF unknown link profile. service_role only.';
revoke all on function public.service_role_create_oauth_state(bytea, bytea, text, text, text, text, uuid, boolean, integer) from public, anon, authenticated;
grant execute on function public.service_role_create_oauth_state(bytea, bytea, text, text, text, text, uuid, boolean, integer) to service_role;

create or replace function private.take_oauth_state(p_state_hash bytea, p_browser_hash bytea, p_provider text)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_row private.oauth_states;
  v_status text;
begin
  perform private.check_hash('state_hash', p_state_hash);
  -- Deleted whatever happens next: a state is good for one attempt.
  delete from private.oauth_states s where s.state_hash = p_state_hash returning * into v_row;
  if not found then
    return jsonb_build_object('status', 'unknown');
  end if;
  v_status := case
    when v_row.provider is distinct from p_provider then 'other_provider'
    when p_browser_hash is null or v_row.browser_hash <> p_browser_hash then 'other_browser'
    when v_row.expires_at <= now() then 'expired'
    else 'ok'
  end;
  if v_status <> 'ok' then
    return jsonb_build_object('status', v_status);
  end if;
  return jsonb_build_object(
    'status', 'ok',
    'provider', v_row.provider,
    'redirect_uri', v_row.redirect_uri,
    'code_verifier', v_row.code_verifier,
    'nonce', v_row.nonce,
    'link_profile_id', v_row.link_profile_id,
    'cookie_mode', v_row.cookie_mode);
end
$$;
comment on function private.take_oauth_state(bytea, bytea, text) is 'Implementation of public.service_role_take_oauth_state.';
revoke all on function private.take_oauth_state(bytea, bytea, text) from public;
grant execute on function private.take_oauth_state(bytea, bytea, text) to service_role;

create or replace function public.service_role_take_oauth_state(state_hash bytea, browser_hash bytea, provider text)
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.take_oauth_state(service_role_take_oauth_state.state_hash, service_role_take_oauth_state.browser_hash,
                                  service_role_take_oauth_state.provider)
$$;
comment on function public.service_role_take_oauth_state(bytea, bytea, text) is
  'Consumes a sign-in state (deleted on first presentation, whatever the outcome) and says whether it may be '
  'used: {status} is unknown (never issued, tampered or already used), other_provider, other_browser (the '
  'browser nonce hash differs), expired, or ok with {provider, redirect_uri, code_verifier, nonce, '
  'link_profile_id, cookie_mode}. service_role only.';
revoke all on function public.service_role_take_oauth_state(bytea, bytea, text) from public, anon, authenticated;
grant execute on function public.service_role_take_oauth_state(bytea, bytea, text) to service_role;

-- Sessions and refresh tokens ---------------------------------------------------

create or replace function private.create_session(
  p_profile_id uuid,
  p_provider text,
  p_token_hash bytea,
  p_ttl_seconds integer
)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_session_id uuid;
  v_expires_at timestamptz;
begin
  perform private.check_hash('token_hash', p_token_hash);
  if p_provider is not null then
    perform private.check_provider(p_provider);
  end if;
  if p_ttl_seconds is null or p_ttl_seconds < 60 then
    raise exception 'ttl_seconds must be at least 60' using errcode = 'XPBAD';
  end if;
  if p_profile_id is null or not exists (select 1 from public.profiles p where p.id = p_profile_id) then
    raise exception 'Unknown profile: %', p_profile_id using errcode = 'XPPRF';
  end if;
  insert into private.auth_sessions (profile_id, provider) values (p_profile_id, p_provider)
  returning id into v_session_id;
  insert into private.refresh_tokens (session_id, token_hash, expires_at)
  values (v_session_id, p_token_hash, now() + make_interval(secs => p_ttl_seconds))
  returning expires_at into v_expires_at;
  return jsonb_build_object(
    'session_id', v_session_id,
    'profile_id', p_profile_id,
    'provider', p_provider,
    'refresh_expires_at', private.utc_text(v_expires_at),
    'user', private.profile_summary(p_profile_id));
end
$$;
comment on function private.create_session(uuid, text, bytea, integer) is 'Implementation of public.service_role_create_session.';
revoke all on function private.create_session(uuid, text, bytea, integer) from public;
grant execute on function private.create_session(uuid, text, bytea, integer) to service_role;

create or replace function public.service_role_create_session(
  profile_id uuid,
  provider text,
  token_hash bytea,
  ttl_seconds integer
)
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.create_session(service_role_create_session.profile_id, service_role_create_session.provider,
                                service_role_create_session.token_hash, service_role_create_session.ttl_seconds)
$$;
comment on function public.service_role_create_session(uuid, text, bytea, integer) is
  'Starts a session (a refresh-token family) for a profile with its first refresh token (sha256 token_hash, '
  'valid ttl_seconds). Returns {session_id, profile_id, provider, refresh_expires_at, user: {id, '
  'display_name, avatar_url, role}}; role is profiles.role. Errors: XPPRF unknown profile, XPBAD malformed input. service_role only.';
revoke all on function public.service_role_create_session(uuid, text, bytea, integer) from public, anon, authenticated;
grant execute on function public.service_role_create_session(uuid, text, bytea, integer) to service_role;

create or replace function private.refresh_session(
  p_token_hash bytea,
  p_next_hash bytea,
  p_ttl_seconds integer,
  p_grace_seconds integer
)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_token private.refresh_tokens;
  v_child private.refresh_tokens;
  v_session private.auth_sessions;
  v_outcome text;
begin
  perform private.check_hash('token_hash', p_token_hash);
  perform private.check_hash('next_token_hash', p_next_hash);
  if p_ttl_seconds is null or p_ttl_seconds < 60 then
    raise exception 'ttl_seconds must be at least 60' using errcode = 'XPBAD';
  end if;
  if p_grace_seconds is null or p_grace_seconds not between 0 and 300 then
    raise exception 'grace_seconds must be between 0 and 300' using errcode = 'XPBAD';
  end if;

  select * into v_token from private.refresh_tokens t where t.token_hash = p_token_hash;
  if not found then
    raise exception 'Unknown refresh token' using errcode = 'XPRTK';
  end if;
  -- The session row is the family's lock: refreshes of one family run one at a time.
  select * into strict v_session from private.auth_sessions s where s.id = v_token.session_id for update;
  if v_session.revoked_at is not null then
    raise exception 'This session has ended (%)', v_session.revoked_reason using errcode = 'XPRTR';
  end if;
  select * into strict v_token from private.refresh_tokens t where t.id = v_token.id;
  if v_token.expires_at <= now() then
    raise exception 'This refresh token has expired; sign in again' using errcode = 'XPRTX';
  end if;

  if v_token.used_at is null then
    update private.refresh_tokens t set used_at = clock_timestamp() where t.id = v_token.id;
    insert into private.refresh_tokens (session_id, token_hash, parent_id, expires_at)
    values (v_session.id, p_next_hash, v_token.id, now() + make_interval(secs => p_ttl_seconds))
    returning * into v_child;
    update private.auth_sessions s set refreshed_at = now() where s.id = v_session.id;
    v_outcome := 'rotated';
  else
    select * into v_child from private.refresh_tokens c where c.parent_id = v_token.id;
    if v_token.used_at > clock_timestamp() - make_interval(secs => p_grace_seconds)
       and v_child.used_at is null
       and v_child.token_hash = p_next_hash then
      -- The immediate parent of the live token, again, within the grace window
      -- (concurrent refreshes, a lost response): the caller gets the live token.
      v_outcome := 'reissued';
    else
      update private.auth_sessions s set revoked_at = now(), revoked_reason = 'refresh_token_reused'
       where s.id = v_session.id;
      -- Returned, not raised: raising would roll the revocation back.
      return jsonb_build_object('outcome', 'reuse_detected', 'session_id', v_session.id,
                                'profile_id', v_session.profile_id);
    end if;
  end if;

  return jsonb_build_object(
    'outcome', v_outcome,
    'session_id', v_session.id,
    'profile_id', v_session.profile_id,
    'provider', v_session.provider,
    'refresh_expires_at', private.utc_text(v_child.expires_at),
    'user', private.profile_summary(v_session.profile_id));
end
$$;
comment on function private.refresh_session(bytea, bytea, integer, integer) is 'Implementation of public.service_role_refresh_session.';
revoke all on function private.refresh_session(bytea, bytea, integer, integer) from public;
grant execute on function private.refresh_session(bytea, bytea, integer, integer) to service_role;

create or replace function public.service_role_refresh_session(
  token_hash bytea,
  next_token_hash bytea,
  ttl_seconds integer,
  grace_seconds integer
)
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.refresh_session(service_role_refresh_session.token_hash, service_role_refresh_session.next_token_hash,
                                 service_role_refresh_session.ttl_seconds, service_role_refresh_session.grace_seconds)
$$;
comment on function public.service_role_refresh_session(bytea, bytea, integer, integer) is
  'Rotates a refresh token (sha256 token_hash) to its successor (next_token_hash, valid ttl_seconds), holding '
  'the session row lock so concurrent refreshes of one family are serialised. Returns {outcome, session_id, '
  'profile_id, provider, refresh_expires_at, user: {id, display_name, avatar_url, role}}: outcome rotated (the token was live: it is now spent); '
  'reissued (the token is the immediate parent of the live token, spent less than grace_seconds ago, and '
  'next_token_hash is the live token: nothing changes); reuse_detected (any other spent token: the whole '
  'session is revoked and committed; only outcome, session_id and profile_id are returned). user.role is '
  'profiles.role, read now. Errors: XPRTK unknown token, XPRTR session revoked, XPRTX token expired, XPBAD '
  'malformed input. service_role only.';
revoke all on function public.service_role_refresh_session(bytea, bytea, integer, integer) from public, anon, authenticated;
grant execute on function public.service_role_refresh_session(bytea, bytea, integer, integer) to service_role;

create or replace function private.sign_out(p_token_hash bytea, p_session_id uuid, p_scope text)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_session private.auth_sessions;
  v_count integer;
begin
  if p_scope is null or p_scope not in ('local', 'global') then
    raise exception 'scope must be local or global' using errcode = 'XPBAD';
  end if;
  if p_token_hash is not null then
    perform private.check_hash('token_hash', p_token_hash);
    select s.* into v_session from private.auth_sessions s
      join private.refresh_tokens t on t.session_id = s.id
     where t.token_hash = p_token_hash;
  elsif p_session_id is not null then
    select s.* into v_session from private.auth_sessions s where s.id = p_session_id;
  else
    raise exception 'Name a refresh token or a session' using errcode = 'XPBAD';
  end if;
  if v_session.id is null or v_session.revoked_at is not null then
    return jsonb_build_object('revoked', 0, 'profile_id', v_session.profile_id, 'session_id', v_session.id);
  end if;
  if p_scope = 'local' then
    update private.auth_sessions s set revoked_at = now(), revoked_reason = 'logout'
     where s.id = v_session.id and s.revoked_at is null;
  else
    update private.auth_sessions s set revoked_at = now(), revoked_reason = 'logout_global'
     where s.profile_id = v_session.profile_id and s.revoked_at is null;
  end if;
  get diagnostics v_count = row_count;
  return jsonb_build_object('revoked', v_count, 'profile_id', v_session.profile_id, 'session_id', v_session.id);
end
$$;
comment on function private.sign_out(bytea, uuid, text) is 'Implementation of public.service_role_sign_out.';
revoke all on function private.sign_out(bytea, uuid, text) from public;
grant execute on function private.sign_out(bytea, uuid, text) to service_role;

create or replace function public.service_role_sign_out(
  token_hash bytea default null,
  session_id uuid default null,
  scope text default 'local'
)
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.sign_out(service_role_sign_out.token_hash, service_role_sign_out.session_id, service_role_sign_out.scope)
$$;
comment on function public.service_role_sign_out(bytea, uuid, text) is
  'Ends the session named by a refresh token (sha256 token_hash, any token of the family) or by session_id: '
  'scope local revokes that session, global every live session of its profile. A session already ended, or '
  'an unknown token, revokes nothing. Returns {revoked (count), profile_id, session_id}. Errors: XPBAD when '
  'neither is given or scope is not local/global. service_role only.';
revoke all on function public.service_role_sign_out(bytea, uuid, text) from public, anon, authenticated;
grant execute on function public.service_role_sign_out(bytea, uuid, text) to service_role;

------------------------------------------------------------------------------
-- Discord account linking
------------------------------------------------------------------------------
-- A signed-in member creates a code (create_link_code), the bot's
-- `/link <code>` redeems it (service_role_redeem_link_code). Codes are 10
-- Crockford base32 characters (50 bits), shown as ABCDE-FGHJK and accepted in
-- any case, with or without the dash, O read as 0 and I/L as 1.
--
-- SQLSTATEs of this section (xpbase/errors.py):
--   XPLCU  unknown link code          XPLCX  link code expired or replaced
--   XPLCD  link code already used     XPLCR  too many link codes this hour

create or replace function private.normalize_link_code(p_code text)
returns text
language sql
immutable
set search_path = ''
as $$
  select translate(upper(regexp_replace(coalesce(p_code, ''), '[\s-]', '', 'g')), 'OIL', '011')
$$;
comment on function private.normalize_link_code(text) is
  'A link code as stored: dashes and spaces removed, upper case, O read as 0 and I, L as 1 (Crockford base32).';
revoke all on function private.normalize_link_code(text) from public;


create or replace function private.create_link_code()
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_profile_id uuid := (select auth.uid());
  v_alphabet constant text := '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
  v_ttl integer;
  v_limit integer;
  v_recent integer;
  v_oldest timestamptz;
  v_bits bigint;
  v_code text := '';
  v_expires_at timestamptz;
begin
  if v_profile_id is null then
    raise exception 'Sign in to create a link code' using errcode = '42501';
  end if;
  if not exists (select 1 from public.profiles p where p.id = v_profile_id) then
    raise exception 'Unknown profile: %', v_profile_id using errcode = 'XPPRF';
  end if;
  select s.link_code_ttl_seconds, s.link_code_hourly_limit into v_ttl, v_limit from public.auth_settings s limit 1;
  v_ttl := coalesce(v_ttl, 600);
  v_limit := coalesce(v_limit, 5);

  -- One member's code creations run one at a time, so the hourly count holds.
  perform pg_advisory_xact_lock(hashtextextended('link code' || chr(31) || v_profile_id::text, 0));
  select count(*), min(c.created_at) into v_recent, v_oldest
    from private.link_codes c
   where c.profile_id = v_profile_id and c.created_at > now() - interval '1 hour';
  if v_recent >= v_limit then
    raise exception 'At most % link codes per hour; try again after %', v_limit,
      private.utc_text(v_oldest + interval '1 hour') using errcode = 'XPLCR';
  end if;

  update private.link_codes c set replaced_at = now()
   where c.profile_id = v_profile_id and c.used_at is null and c.replaced_at is null and c.expires_at > now();
  delete from private.link_codes c where c.profile_id = v_profile_id and c.created_at < now() - interval '1 day';

  -- 50 bits from the server's strong random source (gen_random_uuid uses pg_strong_random).
  v_bits := ('x' || encode(substring(sha256(uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid())) from 1 for 7), 'hex'))::bit(56)::bigint;
  for i in 0..9 loop
    v_code := v_code || substr(v_alphabet, ((v_bits >> (5 * i)) & 31)::integer + 1, 1);
  end loop;
  v_expires_at := now() + make_interval(secs => v_ttl);
  insert into private.link_codes (profile_id, code_hash, expires_at)
  values (v_profile_id, sha256(convert_to(v_code, 'UTF8')), v_expires_at);
  return jsonb_build_object(
    'code', substr(v_code, 1, 5) || '-' || substr(v_code, 6, 5),
    'expires_at', private.utc_text(v_expires_at),
    'ttl_seconds', v_ttl);
end
$$;
comment on function private.create_link_code() is 'Implementation of public.create_link_code.';
revoke all on function private.create_link_code() from public;
grant execute on function private.create_link_code() to authenticated;

create or replace function public.create_link_code()
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.create_link_code()
$$;
comment on function public.create_link_code() is
  'A one-time code that links a Discord account to the caller''s profile through the bot''s /link command: '
  '{code (ABCDE-FGHJK), expires_at (UTC), ttl_seconds}. Valid auth_settings.link_code_ttl_seconds (default 600); '
  'making a new code replaces the caller''s earlier unused ones; at most auth_settings.link_code_hourly_limit '
  '(default 5) per rolling hour. Errors: XPLCR too many codes this hour, 42501 not signed in, XPPRF no profile. '
  'authenticated only.';
revoke all on function public.create_link_code() from public, anon, service_role;
grant execute on function public.create_link_code() to authenticated;

create or replace function private.redeem_link_code(
  p_code text,
  p_provider text,
  p_subject text,
  p_display_name text
)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_code text := private.normalize_link_code(p_code);
  v_row private.link_codes;
  v_result jsonb;
begin
  if v_code !~ '^[0-9A-HJKMNP-TV-Z]{10}$' then
    raise exception 'A link code is 10 letters and digits, like ABCDE-12345' using errcode = 'XPBAD';
  end if;
  perform private.check_identity_args(p_provider, p_subject);
  select * into v_row from private.link_codes c
   where c.code_hash = sha256(convert_to(v_code, 'UTF8'))
     for update;
  if not found then
    raise exception 'Unknown link code' using errcode = 'XPLCU';
  end if;
  if v_row.used_at is not null then
    raise exception 'This link code was already used' using errcode = 'XPLCD';
  end if;
  if v_row.replaced_at is not null or v_row.expires_at <= now() then
    raise exception 'This link code has expired or was replaced by a newer one; create a new one'
      using errcode = 'XPLCX';
  end if;
  v_result := private.link_identity(v_row.profile_id, p_provider, p_subject, p_display_name);
  update private.link_codes c
     set used_at = now(), used_by_provider = p_provider, used_by_subject = p_subject
   where c.id = v_row.id;
  return v_result;
end
$$;
comment on function private.redeem_link_code(text, text, text, text) is 'Implementation of public.service_role_redeem_link_code.';
revoke all on function private.redeem_link_code(text, text, text, text) from public;
grant execute on function private.redeem_link_code(text, text, text, text) to service_role;

create or replace function public.service_role_redeem_link_code(
  code text,
  provider text,
  subject text,
  display_name text default null
)
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.redeem_link_code(service_role_redeem_link_code.code, service_role_redeem_link_code.provider,
                                   service_role_redeem_link_code.subject, service_role_redeem_link_code.display_name)
$$;
comment on function public.service_role_redeem_link_code(text, text, text, text) is
  'Redeems a link code for an external identity (the bot passes provider discord, the Discord user id as '
  'subject and their display name): the identity is attached to the code''s profile and the code is spent. '
  'Returns {profile_id, provider, subject, display_name, already_linked, user: {id, display_name, '
  'avatar_url, role}}. Errors: XPLCU unknown code, XPLCD code already used, XPLCX code expired or replaced, XPLNK the identity belongs '
  'to another profile, XPLNP the profile already has another account of that provider, XPBAD malformed '
  'code, provider or subject. A refused code stays usable. service_role only.';
revoke all on function public.service_role_redeem_link_code(text, text, text, text) from public, anon, authenticated;
grant execute on function public.service_role_redeem_link_code(text, text, text, text) to service_role;

------------------------------------------------------------------------------
-- Sign-in housekeeping
------------------------------------------------------------------------------

create or replace function private.purge_auth()
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_states integer;
  v_tokens integer;
  v_sessions integer;
  v_codes integer;
begin
  delete from private.oauth_states s where s.expires_at < now();
  get diagnostics v_states = row_count;
  -- An expired token is refused as expired whether or not it was spent, so
  -- keeping it adds nothing; a live chain keeps its recent rows.
  delete from private.refresh_tokens t where t.expires_at < now();
  get diagnostics v_tokens = row_count;
  delete from private.auth_sessions s
   where s.revoked_at < now() - interval '1 day'
      or not exists (select 1 from private.refresh_tokens t where t.session_id = s.id);
  get diagnostics v_sessions = row_count;
  delete from private.link_codes c where c.created_at < now() - interval '1 day';
  get diagnostics v_codes = row_count;
  return jsonb_build_object('oauth_states', v_states, 'refresh_tokens', v_tokens,
                            'sessions', v_sessions, 'link_codes', v_codes);
end
$$;
comment on function private.purge_auth() is 'Implementation of public.service_role_purge_auth.';
revoke all on function private.purge_auth() from public;
grant execute on function private.purge_auth() to service_role;

create or replace function public.service_role_purge_auth()
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.purge_auth()
$$;
comment on function public.service_role_purge_auth() is
  'Deletes what sign-in no longer needs: expired OAuth states and refresh tokens, sessions revoked more than a '
  'day ago or without tokens, link codes older than a day. Returns the counts {oauth_states, refresh_tokens, '
  'sessions, link_codes}. Run it now and then (pg_cron on Supabase). service_role only.';
revoke all on function public.service_role_purge_auth() from public, anon, authenticated;
grant execute on function public.service_role_purge_auth() to service_role;

------------------------------------------------------------------------------
-- The Discord bot
--
-- The bot (bot/) reports what happened in Discord (a message, a minute in
-- voice, a command, an admin's correction) and applies what these functions
-- decide: whether it earns XP (no-XP channels and roles, then award_xp's
-- multipliers, cooldown and caps), which reward roles a member holds, and
-- which level-ups to announce. Discord ids are text of digits (snowflakes).
-- Every RPC here is service_role only.
------------------------------------------------------------------------------

create or replace function private.discord_id(p_name text, p_value text)
returns text
language plpgsql
immutable
set search_path = ''
as $$
begin
  if p_value is null or p_value !~ '^[0-9]{1,20}$' then
    raise exception '% must be a Discord id (1 to 20 digits), got %', p_name, coalesce(p_value, 'null')
      using errcode = 'XPBAD';
  end if;
  return p_value;
end
$$;
comment on function private.discord_id(text, text) is 'Returns a Discord id (snowflake as text) unchanged, or raises XPBAD naming the argument.';
revoke all on function private.discord_id(text, text) from public;
grant execute on function private.discord_id(text, text) to service_role;

create or replace function private.act_for(p_actor_id uuid)
returns void
language plpgsql
volatile
security definer
set search_path = ''
as $$
begin
  if (select auth.role()) is distinct from 'service_role' then
    raise exception 'Only the backend may act for someone' using errcode = '42501';
  end if;
  if p_actor_id is null then
    raise exception 'actor_id is required' using errcode = 'XPBAD';
  end if;
  if not exists (select 1 from public.profiles p where p.id = p_actor_id) then
    raise exception 'Unknown actor profile: %', p_actor_id using errcode = 'XPPRF';
  end if;
  perform set_config('xpbase.actor_id', p_actor_id::text, true);
end
$$;
comment on function private.act_for(uuid) is
  'Names the profile the backend acts for until the end of the transaction (or until cleared), so the admin '
  'corrections record it as the ledger''s actor_id. service_role only.';
revoke all on function private.act_for(uuid) from public;
grant execute on function private.act_for(uuid) to service_role;

create or replace function public.service_role_admin_adjust_xp(
  actor_id uuid,
  profile_id uuid,
  amount integer,
  reason text,
  idempotency_key text,
  layer text default null
)
returns jsonb
language plpgsql
volatile
security invoker
set search_path = ''
as $$
declare
  v_receipt jsonb;
begin
  perform private.act_for(service_role_admin_adjust_xp.actor_id);
  v_receipt := public.admin_adjust_xp(service_role_admin_adjust_xp.profile_id, service_role_admin_adjust_xp.amount,
                                      service_role_admin_adjust_xp.reason, service_role_admin_adjust_xp.idempotency_key,
                                      service_role_admin_adjust_xp.layer);
  perform set_config('xpbase.actor_id', '', true);
  return v_receipt;
end
$$;
comment on function public.service_role_admin_adjust_xp(uuid, uuid, integer, text, text, text) is
  'admin_adjust_xp on behalf of a person: the ledger rows name actor_id (a profile, e.g. the Discord admin who '
  'ran /addxp) as their actor. Same arguments, receipt and errors as admin_adjust_xp, plus XPPRF for an '
  'unknown actor. service_role only.';
revoke all on function public.service_role_admin_adjust_xp(uuid, uuid, integer, text, text, text) from public, anon, authenticated;
grant execute on function public.service_role_admin_adjust_xp(uuid, uuid, integer, text, text, text) to service_role;

create or replace function public.service_role_admin_set_level(
  actor_id uuid,
  profile_id uuid,
  level integer,
  reason text,
  idempotency_key text
)
returns jsonb
language plpgsql
volatile
security invoker
set search_path = ''
as $$
declare
  v_receipt jsonb;
begin
  perform private.act_for(service_role_admin_set_level.actor_id);
  v_receipt := public.admin_set_level(service_role_admin_set_level.profile_id, service_role_admin_set_level.level,
                                      service_role_admin_set_level.reason, service_role_admin_set_level.idempotency_key);
  perform set_config('xpbase.actor_id', '', true);
  return v_receipt;
end
$$;
comment on function public.service_role_admin_set_level(uuid, uuid, integer, text, text) is
  'admin_set_level on behalf of a person recorded as the ledger''s actor. Errors as admin_set_level, plus XPPRF '
  'for an unknown actor. service_role only.';
revoke all on function public.service_role_admin_set_level(uuid, uuid, integer, text, text) from public, anon, authenticated;
grant execute on function public.service_role_admin_set_level(uuid, uuid, integer, text, text) to service_role;

create or replace function public.service_role_admin_reset_xp(
  actor_id uuid,
  profile_id uuid,
  reason text,
  idempotency_key text
)
returns jsonb
language plpgsql
volatile
security invoker
set search_path = ''
as $$
declare
  v_receipt jsonb;
begin
  perform private.act_for(service_role_admin_reset_xp.actor_id);
  v_receipt := public.admin_reset_xp(service_role_admin_reset_xp.profile_id, service_role_admin_reset_xp.reason,
                                     service_role_admin_reset_xp.idempotency_key);
  perform set_config('xpbase.actor_id', '', true);
  return v_receipt;
end
$$;
comment on function public.service_role_admin_reset_xp(uuid, uuid, text, text) is
  'admin_reset_xp on behalf of a person recorded as the ledger''s actor. Errors as admin_reset_xp, plus XPPRF '
  'for an unknown actor. service_role only.';
revoke all on function public.service_role_admin_reset_xp(uuid, uuid, text, text) from public, anon, authenticated;
grant execute on function public.service_role_admin_reset_xp(uuid, uuid, text, text) to service_role;

-- Guild configuration --------------------------------------------------------

create or replace function private.discord_guild_config(p_guild_id text)
returns jsonb
language sql
stable
security definer
set search_path = ''
as $$
  select jsonb_build_object(
    'guild_id', p_guild_id,
    'announce_mode', coalesce(g.announce_mode, 'current'),
    'announce_channel_id', g.announce_channel_id,
    'no_xp_channels', coalesce((
      select jsonb_agg(t.target_id order by t.target_id) from public.discord_no_xp_targets t
       where t.guild_id = p_guild_id and t.kind = 'channel'), '[]'),
    'no_xp_roles', coalesce((
      select jsonb_agg(t.target_id order by t.target_id) from public.discord_no_xp_targets t
       where t.guild_id = p_guild_id and t.kind = 'role'), '[]'),
    'multipliers', coalesce((
      select jsonb_agg(jsonb_build_object('kind', m.kind, 'target_id', m.match_value, 'factor', m.factor)
                       order by m.kind, m.match_value)
        from public.multipliers m where m.discord_guild_id = p_guild_id), '[]'),
    'role_rewards', coalesce((
      select jsonb_agg(jsonb_build_object('role_id', r.role_id, 'min_level', r.min_level, 'tier', r.tier_slug,
                                          'tier_name', t.name, 'level', coalesce(r.min_level, t.min_level))
                       order by coalesce(r.min_level, t.min_level), r.role_id)
        from public.discord_role_rewards r
        left join public.tiers t on t.slug = r.tier_slug
       where r.guild_id = p_guild_id), '[]'))
    from (select 1) as one
    left join public.discord_guilds g on g.guild_id = p_guild_id
$$;
comment on function private.discord_guild_config(text) is 'The configuration of one guild as jsonb (see public.service_role_discord_guild).';
revoke all on function private.discord_guild_config(text) from public;
grant execute on function private.discord_guild_config(text) to service_role;

create or replace function public.service_role_discord_guild(guild_id text)
returns jsonb
language sql
stable
security invoker
set search_path = ''
as $$
  select private.discord_guild_config(private.discord_id('guild_id', service_role_discord_guild.guild_id))
$$;
comment on function public.service_role_discord_guild(text) is
  'A guild''s bot configuration: {guild_id, announce_mode (channel|current|dm|off), announce_channel_id, '
  'no_xp_channels [id], no_xp_roles [id], multipliers [{kind, target_id, factor}], role_rewards [{role_id, '
  'min_level, tier, tier_name, level}] (level: the level that earns the role)}; defaults for an unknown guild. '
  'Errors: XPBAD for a malformed id. service_role only.';
revoke all on function public.service_role_discord_guild(text) from public, anon, authenticated;
grant execute on function public.service_role_discord_guild(text) to service_role;

create or replace function private.discord_touch_guild(p_guild_id text)
returns void
language sql
volatile
security definer
set search_path = ''
as $$
  insert into public.discord_guilds as g (guild_id) values (p_guild_id)
  on conflict (guild_id) do update set updated_at = now()
$$;
comment on function private.discord_touch_guild(text) is 'Creates the guild''s configuration row with defaults, or stamps updated_at.';
revoke all on function private.discord_touch_guild(text) from public;

create or replace function private.discord_set_announcements(p_guild_id text, p_mode text, p_channel_id text)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
begin
  perform private.discord_id('guild_id', p_guild_id);
  if p_mode is null or p_mode not in ('channel', 'current', 'dm', 'off') then
    raise exception 'mode must be channel, current, dm or off, got %', coalesce(p_mode, 'null') using errcode = 'XPBAD';
  end if;
  if p_channel_id is not null then
    perform private.discord_id('channel_id', p_channel_id);
  elsif p_mode = 'channel' then
    raise exception 'mode channel needs a channel_id' using errcode = 'XPBAD';
  end if;
  perform private.discord_touch_guild(p_guild_id);
  update public.discord_guilds g
     set announce_mode = p_mode, announce_channel_id = p_channel_id
   where g.guild_id = p_guild_id;
  return private.discord_guild_config(p_guild_id);
end
$$;
comment on function private.discord_set_announcements(text, text, text) is 'Implementation of public.service_role_discord_set_announcements.';
revoke all on function private.discord_set_announcements(text, text, text) from public;
grant execute on function private.discord_set_announcements(text, text, text) to service_role;

create or replace function public.service_role_discord_set_announcements(guild_id text, mode text, channel_id text default null)
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.discord_set_announcements(service_role_discord_set_announcements.guild_id,
                                           service_role_discord_set_announcements.mode,
                                           service_role_discord_set_announcements.channel_id)
$$;
comment on function public.service_role_discord_set_announcements(text, text, text) is
  'Where a guild''s level-ups are announced: mode channel (channel_id required), current (the channel the XP '
  'was earned in; channel_id, when given, for XP earned elsewhere), dm or off. Returns the guild configuration. '
  'Errors: XPBAD. service_role only.';
revoke all on function public.service_role_discord_set_announcements(text, text, text) from public, anon, authenticated;
grant execute on function public.service_role_discord_set_announcements(text, text, text) to service_role;

create or replace function private.discord_set_no_xp(p_guild_id text, p_kind text, p_target_id text, p_no_xp boolean)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
begin
  perform private.discord_id('guild_id', p_guild_id);
  perform private.discord_id('target_id', p_target_id);
  if p_kind is null or p_kind not in ('channel', 'role') then
    raise exception 'kind must be channel or role, got %', coalesce(p_kind, 'null') using errcode = 'XPBAD';
  end if;
  if p_no_xp is null then
    raise exception 'no_xp must be true or false' using errcode = 'XPBAD';
  end if;
  perform private.discord_touch_guild(p_guild_id);
  if p_no_xp then
    insert into public.discord_no_xp_targets (guild_id, kind, target_id)
    values (p_guild_id, p_kind, p_target_id)
    on conflict do nothing;
  else
    delete from public.discord_no_xp_targets t
     where t.guild_id = p_guild_id and t.kind = p_kind and t.target_id = p_target_id;
  end if;
  return private.discord_guild_config(p_guild_id);
end
$$;
comment on function private.discord_set_no_xp(text, text, text, boolean) is 'Implementation of public.service_role_discord_set_no_xp.';
revoke all on function private.discord_set_no_xp(text, text, text, boolean) from public;
grant execute on function private.discord_set_no_xp(text, text, text, boolean) to service_role;

create or replace function public.service_role_discord_set_no_xp(guild_id text, kind text, target_id text, no_xp boolean)
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.discord_set_no_xp(service_role_discord_set_no_xp.guild_id, service_role_discord_set_no_xp.kind,
                                   service_role_discord_set_no_xp.target_id, service_role_discord_set_no_xp.no_xp)
$$;
comment on function public.service_role_discord_set_no_xp(text, text, text, boolean) is
  'Marks a channel or role of a guild as earning no passive XP (no_xp true) or clears the mark (false). '
  'Returns the guild configuration. Errors: XPBAD. service_role only.';
revoke all on function public.service_role_discord_set_no_xp(text, text, text, boolean) from public, anon, authenticated;
grant execute on function public.service_role_discord_set_no_xp(text, text, text, boolean) to service_role;

create or replace function private.discord_set_multiplier(p_guild_id text, p_kind text, p_target_id text, p_factor numeric)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
begin
  perform private.discord_id('guild_id', p_guild_id);
  perform private.discord_id('target_id', p_target_id);
  if p_kind is null or p_kind not in ('channel', 'role') then
    raise exception 'kind must be channel or role, got %', coalesce(p_kind, 'null') using errcode = 'XPBAD';
  end if;
  if p_factor is not null and (p_factor <= 0 or p_factor > 100 or p_factor <> round(p_factor, 3)) then
    raise exception 'factor must be above 0 and at most 100 with at most 3 decimals, got %', p_factor
      using errcode = 'XPBAD';
  end if;
  perform private.discord_touch_guild(p_guild_id);
  if p_factor is null then
    delete from public.multipliers m
     where m.discord_guild_id = p_guild_id and m.kind = p_kind and m.match_value = p_target_id;
  else
    insert into public.multipliers as m (kind, match_value, factor, description, discord_guild_id)
    values (p_kind, p_target_id, p_factor, 'Discord ' || p_kind || ' multiplier of guild ' || p_guild_id, p_guild_id)
    on conflict (discord_guild_id, kind, match_value) where discord_guild_id is not null
    do update set factor = excluded.factor;
  end if;
  return private.discord_guild_config(p_guild_id);
end
$$;
comment on function private.discord_set_multiplier(text, text, text, numeric) is 'Implementation of public.service_role_discord_set_multiplier.';
revoke all on function private.discord_set_multiplier(text, text, text, numeric) from public;
grant execute on function private.discord_set_multiplier(text, text, text, numeric) to service_role;

create or replace function public.service_role_discord_set_multiplier(guild_id text, kind text, target_id text, factor numeric)
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.discord_set_multiplier(service_role_discord_set_multiplier.guild_id,
                                        service_role_discord_set_multiplier.kind,
                                        service_role_discord_set_multiplier.target_id,
                                        service_role_discord_set_multiplier.factor)
$$;
comment on function public.service_role_discord_set_multiplier(text, text, text, numeric) is
  'Sets the XP multiplier (factor above 0, at most 100) of a Discord role or channel of a guild, a row of '
  'public.multipliers applying to every activity; factor null removes it. award_xp''s stacking rule applies '
  '(largest per kind, kinds multiply, capped). Returns the guild configuration. Errors: XPBAD. service_role only.';
revoke all on function public.service_role_discord_set_multiplier(text, text, text, numeric) from public, anon, authenticated;
grant execute on function public.service_role_discord_set_multiplier(text, text, text, numeric) to service_role;

create or replace function private.discord_set_role_reward(p_guild_id text, p_role_id text, p_min_level integer, p_tier text)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
begin
  perform private.discord_id('guild_id', p_guild_id);
  perform private.discord_id('role_id', p_role_id);
  if p_min_level is not null and p_tier is not null then
    raise exception 'A role reward is for a level or for a tier, not both' using errcode = 'XPBAD';
  end if;
  if p_min_level is not null and not exists (select 1 from public.level_curve c where c.level = p_min_level) then
    raise exception 'Level % is not on the level curve', p_min_level using errcode = 'XPLVL';
  end if;
  if p_tier is not null and not exists (select 1 from public.tiers t where t.slug = p_tier) then
    raise exception 'Unknown tier: %', p_tier using errcode = 'XPBAD';
  end if;
  perform private.discord_touch_guild(p_guild_id);
  if p_min_level is null and p_tier is null then
    delete from public.discord_role_rewards r where r.guild_id = p_guild_id and r.role_id = p_role_id;
  else
    insert into public.discord_role_rewards as r (guild_id, role_id, min_level, tier_slug)
    values (p_guild_id, p_role_id, p_min_level, p_tier)
    on conflict (guild_id, role_id) do update set min_level = excluded.min_level, tier_slug = excluded.tier_slug;
  end if;
  return private.discord_guild_config(p_guild_id);
end
$$;
comment on function private.discord_set_role_reward(text, text, integer, text) is 'Implementation of public.service_role_discord_set_role_reward.';
revoke all on function private.discord_set_role_reward(text, text, integer, text) from public;
grant execute on function private.discord_set_role_reward(text, text, integer, text) to service_role;

create or replace function public.service_role_discord_set_role_reward(
  guild_id text,
  role_id text,
  min_level integer default null,
  tier text default null
)
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.discord_set_role_reward(service_role_discord_set_role_reward.guild_id,
                                         service_role_discord_set_role_reward.role_id,
                                         service_role_discord_set_role_reward.min_level,
                                         service_role_discord_set_role_reward.tier)
$$;
comment on function public.service_role_discord_set_role_reward(text, text, integer, text) is
  'Makes a Discord role the reward for reaching a level (min_level) or a tier (tier slug); neither removes the '
  'reward. Returns the guild configuration. Errors: XPBAD (both given, unknown tier, malformed id), XPLVL '
  '(level not on the curve). service_role only.';
revoke all on function public.service_role_discord_set_role_reward(text, text, integer, text) from public, anon, authenticated;
grant execute on function public.service_role_discord_set_role_reward(text, text, integer, text) to service_role;

-- Passive XP -------------------------------------------------------------------

create or replace function private.discord_award(
  p_guild_id text,
  p_user_id text,
  p_display_name text,
  p_activity text,
  p_idempotency_key text,
  p_occurred_at timestamptz,
  p_channel_id text,
  p_role_ids text[]
)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_roles text[] := coalesce(p_role_ids, '{}');
  v_role text;
  v_skip text;
  v_profile_id uuid;
begin
  perform private.discord_id('guild_id', p_guild_id);
  perform private.discord_id('user_id', p_user_id);
  if p_channel_id is not null then
    perform private.discord_id('channel_id', p_channel_id);
  end if;
  if cardinality(v_roles) > 250 then
    raise exception 'at most 250 role ids' using errcode = 'XPBAD';
  end if;
  foreach v_role in array v_roles loop
    perform private.discord_id('role_ids[]', v_role);
  end loop;

  select case
           when exists (select 1 from public.discord_no_xp_targets t
                         where t.guild_id = p_guild_id and t.kind = 'channel' and t.target_id = p_channel_id)
             then 'no_xp_channel'
           when exists (select 1 from public.discord_no_xp_targets t
                         where t.guild_id = p_guild_id and t.kind = 'role' and t.target_id = any (v_roles))
             then 'no_xp_role'
         end
    into v_skip;
  if v_skip is not null then
    return jsonb_build_object('granted', 0, 'skipped', v_skip, 'activity', p_activity,
                              'idempotency_key', p_idempotency_key, 'profile_id', null, 'replayed', false);
  end if;

  v_profile_id := private.ensure_profile('discord', p_user_id, p_display_name);
  return private.award_xp(
    v_profile_id, p_activity, p_idempotency_key, null, p_occurred_at,
    jsonb_build_object('guild_id', p_guild_id, 'channel_id', p_channel_id, 'role_ids', to_jsonb(v_roles))
  ) || jsonb_build_object('skipped', null);
end
$$;
comment on function private.discord_award(text, text, text, text, text, timestamptz, text, text[]) is
  'Implementation of public.service_role_discord_award.';
revoke all on function private.discord_award(text, text, text, text, text, timestamptz, text, text[]) from public;
grant execute on function private.discord_award(text, text, text, text, text, timestamptz, text, text[]) to service_role;

create or replace function public.service_role_discord_award(
  guild_id text,
  user_id text,
  display_name text,
  activity text,
  idempotency_key text,
  occurred_at timestamptz default null,
  channel_id text default null,
  role_ids text[] default '{}'
)
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.discord_award(service_role_discord_award.guild_id, service_role_discord_award.user_id,
                               service_role_discord_award.display_name, service_role_discord_award.activity,
                               service_role_discord_award.idempotency_key, service_role_discord_award.occurred_at,
                               service_role_discord_award.channel_id, service_role_discord_award.role_ids)
$$;
comment on function public.service_role_discord_award(text, text, text, text, text, timestamptz, text, text[]) is
  'Passive Discord XP (message, voice_minute, command): nothing when the channel (threads: their parent) or '
  'one of the member''s roles is a no-XP target of the guild ({granted: 0, skipped: no_xp_channel|no_xp_role}, '
  'no ledger row); otherwise the member''s profile (created on first sight from the discord identity) gets '
  'award_xp with context {guild_id, channel_id, role_ids} for multipliers, and the receipt is returned with '
  'skipped null. Errors as award_xp (XPIDM for a key reused with other parameters, e.g. changed roles), XPBAD '
  'for malformed ids. service_role only.';
revoke all on function public.service_role_discord_award(text, text, text, text, text, timestamptz, text, text[]) from public, anon, authenticated;
grant execute on function public.service_role_discord_award(text, text, text, text, text, timestamptz, text, text[]) to service_role;

-- Members: profile, levels, seasons, role rewards -----------------------------

create or replace function private.discord_member(p_user_id text, p_recent integer)
returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_profile public.profiles;
begin
  perform private.discord_id('user_id', p_user_id);
  if p_recent is null or p_recent not between 0 and 25 then
    raise exception 'recent must be 0 to 25' using errcode = 'XPBAD';
  end if;
  select p.* into v_profile
    from public.identities i join public.profiles p on p.id = i.profile_id
   where i.provider = 'discord' and i.subject = p_user_id;
  if not found then
    raise exception 'No profile for Discord user %', p_user_id using errcode = 'XPPRF';
  end if;
  return jsonb_build_object(
    'profile_id', v_profile.id,
    'display_name', v_profile.display_name,
    'bio', v_profile.bio,
    'avatar_url', v_profile.avatar_url,
    'social_links', v_profile.social_links,
    'role', v_profile.role,
    'leaderboard_visible', v_profile.leaderboard_visible,
    'created_at', v_profile.created_at,
    'xp', v_profile.xp,
    'level', v_profile.level,
    'tier', v_profile.tier,
    'tier_name', (select t.name from public.tiers t where t.slug = v_profile.tier),
    'points', v_profile.points,
    'level_xp', public.xp_for_level(v_profile.level),
    'next_level_xp', public.xp_for_level(v_profile.level + 1),
    'layers', coalesce((
      select jsonb_agg(jsonb_build_object(
               'layer', l.slug, 'name', l.name, 'xp', coalesce(pl.xp, 0),
               'status', coalesce(pl.status, public.layer_status_for(l.slug, 0)),
               'status_name', (select s.name from public.layer_statuses s
                                where s.layer_slug = l.slug
                                  and s.slug = coalesce(pl.status, public.layer_status_for(l.slug, 0))))
             order by l.position, l.slug)
        from public.layers l
        left join public.profile_layers pl on pl.profile_id = v_profile.id and pl.layer_slug = l.slug), '[]'),
    'unlocks', coalesce((
      select jsonb_agg(jsonb_build_object('tier', u.tier_slug, 'slug', u.slug, 'name', u.name)
                       order by t.min_level, u.position, u.slug)
        from public.tier_unlocks u join public.tiers t on t.slug = u.tier_slug
       where t.min_level <= v_profile.level), '[]'),
    'identities', coalesce((
      select jsonb_agg(i.provider order by i.provider) from public.identities i where i.profile_id = v_profile.id), '[]'),
    'recent', coalesce((
      select jsonb_agg(jsonb_build_object('activity', r.activity_slug, 'activity_name', r.name, 'layer', r.layer_slug,
                                          'amount', r.amount, 'occurred_at', r.occurred_at, 'reason', r.reason)
                       order by r.occurred_at desc, r.id desc)
        from (select l.id, l.activity_slug, a.name, l.layer_slug, l.amount, l.occurred_at, l.reason
                from public.xp_ledger l join public.activity_types a on a.slug = l.activity_slug
               where l.profile_id = v_profile.id and l.amount <> 0
               order by l.occurred_at desc, l.id desc
               limit p_recent) r), '[]'));
end
$$;
comment on function private.discord_member(text, integer) is 'Implementation of public.service_role_discord_member.';
revoke all on function private.discord_member(text, integer) from public;
grant execute on function private.discord_member(text, integer) to service_role;

create or replace function public.service_role_discord_member(user_id text, recent integer default 0)
returns jsonb
language sql
stable
security invoker
set search_path = ''
as $$
  select private.discord_member(service_role_discord_member.user_id, service_role_discord_member.recent)
$$;
comment on function public.service_role_discord_member(text, integer) is
  'The profile of a Discord user for /rank, /xp and /profile: profile_id, display_name, bio, avatar_url, '
  'social_links, role, leaderboard_visible, created_at, xp, level, tier, tier_name, points, level_xp (XP where '
  'the level starts), next_level_xp (null at the top of the curve), layers [{layer, name, xp, status, '
  'status_name}], unlocks [{tier, slug, name}], identities [provider], and the last `recent` (0-25) non-zero '
  'ledger entries [{activity, activity_name, layer, amount, occurred_at, reason}]. Errors: XPPRF when the user '
  'has no profile, XPBAD. service_role only.';
revoke all on function public.service_role_discord_member(text, integer) from public, anon, authenticated;
grant execute on function public.service_role_discord_member(text, integer) to service_role;

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

create or replace function public.service_role_discord_seasons(layer text default null, max_rows integer default 25)
returns jsonb
language plpgsql
stable
security invoker
set search_path = ''
as $$
begin
  if max_rows is null or max_rows not between 1 and 100 then
    raise exception 'max_rows must be 1 to 100' using errcode = 'XPBAD';
  end if;
  return coalesce((
    select jsonb_agg(jsonb_build_object('id', s.id, 'layer', s.layer_slug, 'name', s.name, 'starts_at', s.starts_at,
                                        'ends_at', s.ends_at, 'finalized_at', s.finalized_at)
                     order by s.starts_at desc, s.layer_slug)
      from (select * from public.seasons x
             where service_role_discord_seasons.layer is null or x.layer_slug = service_role_discord_seasons.layer
             order by x.starts_at desc, x.layer_slug
             limit service_role_discord_seasons.max_rows) s), '[]');
end
$$;
comment on function public.service_role_discord_seasons(text, integer) is
  'The newest seasons (of one layer, or all), newest first: [{id, layer, name, starts_at, ends_at, '
  'finalized_at}], for the bot''s /leaderboard season choices. Errors: XPBAD. service_role only.';
revoke all on function public.service_role_discord_seasons(text, integer) from public, anon, authenticated;
grant execute on function public.service_role_discord_seasons(text, integer) to service_role;

create or replace function private.discord_role_plan(p_guild_id text, p_user_ids text[])
returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_id text;
begin
  perform private.discord_id('guild_id', p_guild_id);
  if p_user_ids is null or cardinality(p_user_ids) > 1000 then
    raise exception 'user_ids must hold at most 1000 ids' using errcode = 'XPBAD';
  end if;
  foreach v_id in array p_user_ids loop
    perform private.discord_id('user_ids[]', v_id);
  end loop;
  return (
    with rewards as (
      select r.role_id, coalesce(r.min_level, t.min_level) as level
        from public.discord_role_rewards r
        left join public.tiers t on t.slug = r.tier_slug
       where r.guild_id = p_guild_id
    ),
    members as (
      select u.user_id, p.id as profile_id, coalesce(p.level, 1) as level,
             coalesce(p.tier, public.tier_for_level(1)) as tier
        from (select distinct x as user_id from unnest(p_user_ids) as x) u
        left join public.identities i on i.provider = 'discord' and i.subject = u.user_id
        left join public.profiles p on p.id = i.profile_id
    )
    select jsonb_build_object(
      'managed', coalesce((select jsonb_agg(r.role_id order by r.role_id) from rewards r), '[]'),
      'members', coalesce((
        select jsonb_agg(jsonb_build_object(
                 'user_id', m.user_id, 'profile_id', m.profile_id, 'level', m.level, 'tier', m.tier,
                 'roles', coalesce((select jsonb_agg(r.role_id order by r.level, r.role_id)
                                      from rewards r where r.level <= m.level), '[]'))
               order by m.user_id)
          from members m), '[]'))
  );
end
$$;
comment on function private.discord_role_plan(text, text[]) is 'Implementation of public.service_role_discord_role_plan.';
revoke all on function private.discord_role_plan(text, text[]) from public;
grant execute on function private.discord_role_plan(text, text[]) to service_role;

create or replace function public.service_role_discord_role_plan(guild_id text, user_ids text[])
returns jsonb
language sql
stable
security invoker
set search_path = ''
as $$
  select private.discord_role_plan(service_role_discord_role_plan.guild_id, service_role_discord_role_plan.user_ids)
$$;
comment on function public.service_role_discord_role_plan(text, text[]) is
  'Which reward roles of a guild each member (up to 1000 Discord user ids) should hold: {managed [role ids of '
  'all the guild''s rewards], members [{user_id, profile_id, level, tier, roles [role ids]}]}. Rewards stack: '
  'a member holds every reward whose level (or tier''s first level) they reached; users without a profile are '
  'planned at level 1. The bot adds what is missing and removes managed roles not listed. Errors: XPBAD. '
  'service_role only.';
revoke all on function public.service_role_discord_role_plan(text, text[]) from public, anon, authenticated;
grant execute on function public.service_role_discord_role_plan(text, text[]) to service_role;

-- Notifications to announce, and statistics ------------------------------------

create or replace function private.discord_notifications(p_after_id bigint, p_max_rows integer)
returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_cursor bigint;
  v_found jsonb;
begin
  if p_max_rows is null or p_max_rows not between 1 and 1000 then
    raise exception 'max_rows must be 1 to 1000' using errcode = 'XPBAD';
  end if;
  if p_after_id is null then
    return jsonb_build_object('cursor', coalesce((select max(n.id) from public.notifications n), 0),
                              'notifications', '[]'::jsonb);
  end if;
  -- A window of the next notifications of any kind; the cursor moves past all of them.
  with window_rows as (
    select n.* from public.notifications n where n.id > p_after_id order by n.id limit p_max_rows
  )
  select max(w.id),
         coalesce(jsonb_agg(jsonb_build_object(
                    'id', w.id, 'kind', w.kind, 'profile_id', w.profile_id, 'user_id', i.subject,
                    'title', w.title, 'body', w.body, 'data', w.data, 'created_at', w.created_at,
                    'idempotency_key', l.idempotency_key)
                  order by w.id) filter (where i.subject is not null and w.kind in ('level_up', 'tier_up')), '[]')
    into v_cursor, v_found
    from window_rows w
    left join public.identities i on i.profile_id = w.profile_id and i.provider = 'discord'
    left join public.xp_ledger l on l.id = (w.data ->> 'ledger_id')::bigint;
  return jsonb_build_object('cursor', coalesce(v_cursor, p_after_id), 'notifications', v_found);
end
$$;
comment on function private.discord_notifications(bigint, integer) is 'Implementation of public.service_role_discord_notifications.';
revoke all on function private.discord_notifications(bigint, integer) from public;
grant execute on function private.discord_notifications(bigint, integer) to service_role;

create or replace function public.service_role_discord_notifications(after_id bigint default null, max_rows integer default 100)
returns jsonb
language sql
stable
security invoker
set search_path = ''
as $$
  select private.discord_notifications(service_role_discord_notifications.after_id,
                                       service_role_discord_notifications.max_rows)
$$;
comment on function public.service_role_discord_notifications(bigint, integer) is
  'Level-ups and tier-ups to announce on Discord, read after a cursor: {cursor, notifications [{id, kind, '
  'profile_id, user_id (Discord), title, body, data, created_at, idempotency_key (of the ledger row that caused '
  'it)}]}. Looks at the next max_rows (1-1000) notifications of any kind and returns the cursor past them; with '
  'after_id null returns the newest id as the cursor and nothing else. Errors: XPBAD. service_role only.';
revoke all on function public.service_role_discord_notifications(bigint, integer) from public, anon, authenticated;
grant execute on function public.service_role_discord_notifications(bigint, integer) to service_role;

create or replace function private.discord_stats(p_guild_id text)
returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_today timestamptz := date_trunc('day', now(), 'UTC');
begin
  perform private.discord_id('guild_id', p_guild_id);
  return jsonb_build_object(
    'profiles', (select count(*) from public.profiles),
    'discord_profiles', (select count(*) from public.identities i where i.provider = 'discord'),
    'total_xp', (select coalesce(sum(p.xp), 0) from public.profiles p),
    'today', coalesce((
      select jsonb_object_agg(a.activity_slug, jsonb_build_object('awards', a.awards, 'xp', a.xp))
        from (select l.activity_slug, count(*) as awards, sum(l.amount) as xp
                from public.xp_ledger l
               where l.activity_slug in ('message', 'voice_minute', 'command')
                 and l.occurred_at >= v_today and l.amount > 0
               group by l.activity_slug) a), '{}'),
    'guild', private.discord_guild_config(p_guild_id));
end
$$;
comment on function private.discord_stats(text) is 'Implementation of public.service_role_discord_stats.';
revoke all on function private.discord_stats(text) from public;
grant execute on function private.discord_stats(text) to service_role;

create or replace function public.service_role_discord_stats(guild_id text)
returns jsonb
language sql
stable
security invoker
set search_path = ''
as $$
  select private.discord_stats(service_role_discord_stats.guild_id)
$$;
comment on function public.service_role_discord_stats(text) is
  'Numbers for /botstats: profiles, discord_profiles, total_xp, today {activity: {awards, xp}} for message, '
  'voice_minute and command since 00:00 UTC, and the guild configuration. Errors: XPBAD. service_role only.';
revoke all on function public.service_role_discord_stats(text) from public, anon, authenticated;
grant execute on function public.service_role_discord_stats(text) to service_role;

------------------------------------------------------------------------------
-- Streaks and check-ins (issue 4)
--
-- One check-in per local day in the profile's time zone. A missed local day
-- consumes a held freeze; a missed day with no freeze left restarts the streak
-- at 1 (the freezes used up on the way stay used, exactly as a nightly job
-- that spent one freeze per missed night would have left them: the lazy
-- computation here gives the same answer whenever it runs). Frozen days keep
-- the streak but do not grow it. Local dates that do not exist in the zone
-- (Samoa skipped 2011-12-30 when it crossed the date line) are not missed.
------------------------------------------------------------------------------

create or replace function private.missed_local_days(p_time_zone text, p_last date, p_today date)
returns integer
language sql
stable
set search_path = ''
as $$
  select case
    when p_last is null or p_today - p_last <= 1 then 0
    when p_today - p_last > 400 then p_today - p_last - 1
    else (
      select count(*)::integer
        from generate_series(p_last + 1, p_today - 1, interval '1 day') as g (day)
       where ((g.day::date::timestamp at time zone p_time_zone) at time zone p_time_zone)::date = g.day::date
    )
  end
$$;
comment on function private.missed_local_days(text, date, date) is
  'How many local dates strictly between two check-in dates existed in a time zone (a date skipped by a '
  'date-line change does not count). 0 for consecutive days.';
revoke all on function private.missed_local_days(text, date, date) from public;

create or replace function private.local_day_start(p_time_zone text, p_day date)
returns timestamptz
language sql
stable
set search_path = ''
as $$
  -- Local midnight; where midnight does not exist (a DST change at 00:00, a skipped date) the first moment
  -- of the next existing local time, as Postgres resolves it.
  select p_day::timestamp at time zone p_time_zone
$$;
comment on function private.local_day_start(text, date) is 'The UTC moment a local date starts in a time zone.';
revoke all on function private.local_day_start(text, date) from public;
grant execute on function private.local_day_start(text, date) to authenticated, service_role;

create or replace function private.check_in_rule()
returns public.check_in_rules
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_rule public.check_in_rules;
begin
  select r.* into v_rule
    from public.engine_settings e join public.check_in_rules r on r.slug = e.check_in_rule
   limit 1;
  if not found then
    raise exception 'No check-in rule is configured (engine_settings.check_in_rule)' using errcode = 'XPCFG';
  end if;
  return v_rule;
end
$$;
comment on function private.check_in_rule() is 'The check-in rule in use; raises XPCFG when none is configured.';
revoke all on function private.check_in_rule() from public;

create or replace function private.check_in_xp(p_rule public.check_in_rules, p_streak integer)
returns integer
language sql
immutable
set search_path = ''
as $$
  select least(p_rule.daily_xp::bigint + p_rule.xp_per_streak_day::bigint * p_streak,
               coalesce(p_rule.max_xp, 2147483647))::integer
$$;
comment on function private.check_in_xp(public.check_in_rules, integer) is
  'XP of a check-in on streak day n: least(daily_xp + xp_per_streak_day * n, max_xp).';
revoke all on function private.check_in_xp(public.check_in_rules, integer) from public;

create or replace function private.streak_status(p_profile_id uuid, p_at timestamptz)
returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_at timestamptz := coalesce(p_at, now());
  v_tz text;
  v_streak public.streaks;
  v_rule public.check_in_rules := private.check_in_rule();
  v_today date;
  v_done boolean;
  v_missed integer := 0;
  v_current integer;
  v_freezes integer;
  v_next_day date;
begin
  if p_profile_id is null then
    raise exception 'profile_id is required' using errcode = 'XPBAD';
  end if;
  select p.time_zone into v_tz from public.profiles p where p.id = p_profile_id;
  if not found then
    raise exception 'Unknown profile: %', p_profile_id using errcode = 'XPPRF';
  end if;
  select * into v_streak from public.streaks s where s.profile_id = p_profile_id;
  v_today := (v_at at time zone v_tz)::date;
  v_done := v_streak.last_check_in_date is not null and v_today <= v_streak.last_check_in_date;
  v_current := coalesce(v_streak.current_streak, 0);
  v_freezes := coalesce(v_streak.freezes_held, 0);
  if not v_done and v_streak.last_check_in_date is not null then
    -- What a check-in now would find: freezes spent on the missed days, or a broken streak.
    v_missed := private.missed_local_days(v_tz, v_streak.last_check_in_date, v_today);
    if v_missed > v_freezes then
      v_current := 0;
    end if;
    v_freezes := v_freezes - least(v_missed, v_freezes);
  end if;
  v_next_day := case when v_done then v_streak.last_check_in_date + 1 else v_today end;
  return jsonb_build_object(
    'profile_id', p_profile_id,
    'current_streak', v_current,
    'longest_streak', coalesce(v_streak.longest_streak, 0),
    'freezes_held', v_freezes,
    'max_freezes_held', v_rule.max_freezes_held,
    'missed_days', v_missed,
    'done_today', v_done,
    'last_check_in_date', v_streak.last_check_in_date,
    'local_date', v_today,
    'time_zone', v_tz,
    'day_ends_at', private.utc_text(private.local_day_start(v_tz, v_today + 1)),
    'next_check_in_at', private.utc_text(greatest(v_at, private.local_day_start(v_tz, v_next_day))),
    'next_check_in_xp', private.check_in_xp(v_rule, v_current + 1),
    'rule', v_rule.slug);
end
$$;
comment on function private.streak_status(uuid, timestamptz) is 'Implementation of the streak status RPCs.';
revoke all on function private.streak_status(uuid, timestamptz) from public;
grant execute on function private.streak_status(uuid, timestamptz) to service_role;

create or replace function private.check_in(p_profile_id uuid, p_at timestamptz)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_at timestamptz := coalesce(p_at, now());
  v_profile public.profiles;
  v_rule public.check_in_rules := private.check_in_rule();
  v_streak public.streaks;
  v_today date;
  v_missed integer := 0;
  v_used integer := 0;
  v_freezes integer;
  v_new integer;
  v_restarted boolean := false;
  v_earned boolean := false;
  v_milestone jsonb;
  v_amount integer;
  v_award jsonb;
begin
  if p_profile_id is null then
    raise exception 'profile_id is required' using errcode = 'XPBAD';
  end if;
  if v_at > now() + interval '5 minutes' then
    raise exception 'A check-in cannot be in the future (at %)', private.utc_text(v_at) using errcode = 'XPBAD';
  end if;
  -- The profile row lock (taken by award_xp too, in the same order) makes concurrent check-ins of one member
  -- run one after the other.
  select * into v_profile from public.profiles p where p.id = p_profile_id for update;
  if not found then
    raise exception 'Unknown profile: %', p_profile_id using errcode = 'XPPRF';
  end if;
  v_today := (v_at at time zone v_profile.time_zone)::date;
  insert into public.streaks (profile_id) values (p_profile_id) on conflict (profile_id) do nothing;
  select * into strict v_streak from public.streaks s where s.profile_id = p_profile_id;

  if v_streak.last_check_in_date is not null and v_today <= v_streak.last_check_in_date then
    return private.streak_status(p_profile_id, v_at) || jsonb_build_object(
      'checked_in', false, 'streak', v_streak.current_streak, 'freezes_used', 0, 'freeze_earned', false,
      'streak_restarted', false, 'granted', 0, 'xp', null, 'milestone', null);
  end if;

  v_freezes := v_streak.freezes_held;
  if v_streak.last_check_in_date is null then
    v_new := 1;
  else
    v_missed := private.missed_local_days(v_profile.time_zone, v_streak.last_check_in_date, v_today);
    v_used := least(v_missed, v_freezes);
    v_freezes := v_freezes - v_used;
    if v_missed > v_used then
      v_new := 1;
      v_restarted := true;
    else
      v_new := v_streak.current_streak + 1;
    end if;
  end if;

  if v_new % v_rule.freeze_every_days = 0 and v_freezes < v_rule.max_freezes_held then
    v_freezes := v_freezes + 1;
    v_earned := true;
  end if;
  if v_new % v_rule.freeze_every_days = 0 or v_new = any (v_rule.milestone_days) then
    v_milestone := jsonb_build_object('days', v_new, 'freeze_earned', v_earned);
  end if;

  v_amount := private.check_in_xp(v_rule, v_new);
  v_award := private.award_xp(
    p_profile_id, v_rule.activity_slug, 'check_in:' || p_profile_id || ':' || v_today, v_amount, v_at,
    jsonb_build_object('check_in', jsonb_build_object('local_date', v_today, 'streak', v_new)));

  update public.streaks s
     set current_streak = v_new,
         longest_streak = greatest(s.longest_streak, v_new),
         freezes_held = v_freezes,
         last_check_in_date = v_today,
         updated_at = now()
   where s.profile_id = p_profile_id;
  insert into public.check_ins (profile_id, local_date, time_zone, checked_in_at, streak, missed_days,
                                freezes_used, freeze_earned, xp, ledger_id)
  values (p_profile_id, v_today, v_profile.time_zone, v_at, v_new, v_missed, v_used, v_earned,
          (v_award ->> 'granted')::integer, (v_award ->> 'ledger_id')::bigint);

  if v_milestone is not null then
    insert into public.notifications (profile_id, kind, title, body, data)
    values (p_profile_id, 'streak_milestone', v_new || '-day streak',
            case when v_earned then 'You earned a streak freeze.' else '' end,
            v_milestone || jsonb_build_object('local_date', v_today, 'freezes_held', v_freezes));
  end if;

  return private.streak_status(p_profile_id, v_at) || jsonb_build_object(
    'checked_in', true,
    'streak', v_new,
    'missed_days', v_missed,
    'freezes_used', v_used,
    'freeze_earned', v_earned,
    'streak_restarted', v_restarted,
    'granted', (v_award ->> 'granted')::integer,
    'xp', v_award,
    'milestone', v_milestone);
end
$$;
comment on function private.check_in(uuid, timestamptz) is 'Implementation of the check-in RPCs.';
revoke all on function private.check_in(uuid, timestamptz) from public;
grant execute on function private.check_in(uuid, timestamptz) to service_role;

create or replace function private.check_in_self()
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_uid uuid := (select auth.uid());
begin
  if v_uid is null then
    raise exception 'Sign in to check in' using errcode = '42501';
  end if;
  return private.check_in(v_uid, null);
end
$$;
comment on function private.check_in_self() is 'Implementation of public.check_in: the caller''s own check-in, now.';
revoke all on function private.check_in_self() from public;
grant execute on function private.check_in_self() to authenticated;

create or replace function private.streak_status_self()
returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_uid uuid := (select auth.uid());
begin
  if v_uid is null then
    raise exception 'Sign in to see your streak' using errcode = '42501';
  end if;
  return private.streak_status(v_uid, null);
end
$$;
comment on function private.streak_status_self() is 'Implementation of public.streak_status: the caller''s own streak, now.';
revoke all on function private.streak_status_self() from public;
grant execute on function private.streak_status_self() to authenticated;

create or replace function public.check_in()
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.check_in_self()
$$;
comment on function public.check_in() is
  'The signed-in member''s daily check-in (one per local day in their profile time zone). Returns a receipt: '
  'checked_in (false when today is already done; nothing changes), local_date, time_zone, streak, '
  'longest_streak, current_streak, freezes_held, freezes_used (this check-in), missed_days, freeze_earned, '
  'streak_restarted, granted (XP), xp (the award_xp receipt of the daily_check_in activity, idempotency key '
  'check_in:<profile>:<local date>), milestone ({days, freeze_earned} or null), day_ends_at and '
  'next_check_in_at (UTC), next_check_in_xp. Errors: 42501 when not signed in, XPPRF, XPCFG.';
revoke all on function public.check_in() from public, anon;
grant execute on function public.check_in() to authenticated;

create or replace function public.service_role_check_in(profile_id uuid, at timestamptz default null)
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.check_in(service_role_check_in.profile_id, service_role_check_in.at)
$$;
comment on function public.service_role_check_in(uuid, timestamptz) is
  'check_in for a profile (the bot''s /checkin), as of at (default now; for tests and backfills). Same receipt '
  'as public.check_in. Errors: XPBAD, XPPRF, XPCFG. service_role only.';
revoke all on function public.service_role_check_in(uuid, timestamptz) from public, anon, authenticated;
grant execute on function public.service_role_check_in(uuid, timestamptz) to service_role;

create or replace function public.streak_status()
returns jsonb
language sql
stable
security invoker
set search_path = ''
as $$
  select private.streak_status_self()
$$;
comment on function public.streak_status() is
  'The signed-in member''s streak as a check-in now would find it: current_streak (0 when missed days broke '
  'it), longest_streak, freezes_held (after the missed days took theirs), max_freezes_held, missed_days, '
  'done_today, last_check_in_date, local_date, time_zone, day_ends_at (UTC, end of the local day), '
  'next_check_in_at (UTC), next_check_in_xp, rule. Errors: 42501 when not signed in.';
revoke all on function public.streak_status() from public, anon;
grant execute on function public.streak_status() to authenticated;

create or replace function public.service_role_streak_status(profile_id uuid, at timestamptz default null)
returns jsonb
language sql
stable
security invoker
set search_path = ''
as $$
  select private.streak_status(service_role_streak_status.profile_id, service_role_streak_status.at)
$$;
comment on function public.service_role_streak_status(uuid, timestamptz) is
  'streak_status for a profile as of at (default now). Errors: XPBAD, XPPRF. service_role only.';
revoke all on function public.service_role_streak_status(uuid, timestamptz) from public, anon, authenticated;
grant execute on function public.service_role_streak_status(uuid, timestamptz) to service_role;

------------------------------------------------------------------------------
-- Seasons: finalizing (issue 4)
------------------------------------------------------------------------------

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
begin
  -- skip locked: two services finalizing at once split the seasons between them instead of waiting.
  for v_season in
    select s.* from public.seasons s
     where s.finalized_at is null and s.ends_at <= v_at
     order by s.ends_at, s.id
     for update skip locked
  loop
    insert into public.season_results (season_id, profile_id, rank, xp)
    select sc.season_id, sc.profile_id, rank() over (order by sc.xp desc), sc.xp
      from public.season_scores sc
     where sc.season_id = v_season.id and sc.xp > 0;
    get diagnostics v_participants = row_count;

    select r.reward_activity into v_activity from public.season_rules r where r.layer_slug = v_season.layer_slug;
    v_rewarded := 0;
    for v_row in
      select res.profile_id, res.rank, res.xp, w.xp as reward_xp, w.points as reward_points, w.title
        from public.season_results res
        join public.season_scores sc on sc.season_id = res.season_id and sc.profile_id = res.profile_id
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
        update public.profiles p
           set points = p.points + v_row.reward_points, updated_at = now()
         where p.id = v_row.profile_id;
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
  'Freezes the standings of every season that ended by at (default now) and is not finalized yet, once: '
  'season_results gets every member with XP in it and their rank (equal XP shares a rank); the ranks named in '
  'season_rewards get their XP (award_xp with the layer''s reward activity, key season_reward:<season>:<profile>), '
  'points and title, and a season_result notification. Returns {finalized: [{season_id, layer, name, '
  'participants, rewarded}], count, at}. Running it again finalizes nothing twice. service_role only.';
revoke all on function public.finalize_seasons(timestamptz) from public, anon, authenticated;
grant execute on function public.finalize_seasons(timestamptz) to service_role;

------------------------------------------------------------------------------
-- Leaderboards (issue 4)
--
-- Security invoker: the profiles, profile_layers and season_scores policies
-- decide who is listed (visible members, plus a hidden member for themself).
-- The queries repeat the policies' predicate, so service_role, which bypasses
-- RLS (the bot posting in a public channel), gets the public view too.
-- Tie rule: equal XP shares a rank (rank()); among equals whoever reached the
-- score first is listed first, then the profile id.
------------------------------------------------------------------------------

create or replace function public.leaderboard_scope(board text, layer text default null, season_id bigint default null)
returns table (board_name text, layer_slug text, season bigint)
language plpgsql
stable
security invoker
set search_path = ''
as $$
begin
  if leaderboard_scope.board is null or leaderboard_scope.board not in ('all_time', 'layer', 'season') then
    raise exception 'board must be all_time, layer or season, got %', coalesce(leaderboard_scope.board, 'null') using errcode = 'XPBAD';
  end if;
  board_name := leaderboard_scope.board;
  if leaderboard_scope.board = 'all_time' then
    return next;
    return;
  end if;
  if leaderboard_scope.board = 'season' and leaderboard_scope.season_id is not null then
    select s.id, s.layer_slug into season, layer_slug from public.seasons s where s.id = leaderboard_scope.season_id;
    if not found then
      raise exception 'Unknown season: %', leaderboard_scope.season_id using errcode = 'XPBAD';
    end if;
    if leaderboard_scope.layer is not null and leaderboard_scope.layer <> layer_slug then
      raise exception 'Season % belongs to layer %, not %', leaderboard_scope.season_id, layer_slug, leaderboard_scope.layer using errcode = 'XPBAD';
    end if;
    return next;
    return;
  end if;
  layer_slug := coalesce(leaderboard_scope.layer, (select e.default_layer from public.engine_settings e limit 1));
  if not exists (select 1 from public.layers l where l.slug = layer_slug) then
    raise exception 'Unknown layer: %', coalesce(leaderboard_scope.layer, 'null') using errcode = 'XPBAD';
  end if;
  if leaderboard_scope.board = 'season' then
    -- The season running now; a layer with no award this season has none yet (an empty board).
    select s.id into season from public.seasons s
     where s.layer_slug = leaderboard_scope.layer_slug and s.starts_at <= now() and now() < s.ends_at
     order by s.starts_at desc limit 1;
  end if;
  return next;
end
$$;
comment on function public.leaderboard_scope(text, text, bigint) is
  'The board a leaderboard call would show: (board_name, layer_slug, season), validated (XPBAD for an unknown '
  'board, layer or season) with the defaults filled in: the default layer, and for the season board without '
  'season_id the layer''s running season (null when it has none yet).';
revoke all on function public.leaderboard_scope(text, text, bigint) from public;
grant execute on function public.leaderboard_scope(text, text, bigint) to anon, authenticated, service_role;

create or replace function public.leaderboard(
  board text default 'all_time',
  layer text default null,
  season_id bigint default null,
  page_size integer default 50,
  page integer default 1
)
returns setof public.leaderboard_entry
language plpgsql
stable
security invoker
set search_path = ''
-- Plans with the caller's values as parameters are as good here and save replanning on every call.
set plan_cache_mode = force_generic_plan
as $$
declare
  v_scope record;
  v_uid uuid := (select auth.uid());
  v_offset integer;
begin
  if page_size is null or page_size not between 1 and 100 then
    raise exception 'page_size must be 1 to 100' using errcode = 'XPBAD';
  end if;
  if page is null or page < 1 or page > 1000000 then
    raise exception 'page must be 1 or more' using errcode = 'XPBAD';
  end if;
  v_offset := (page - 1) * page_size;
  select z.board_name as board, z.layer_slug as layer, z.season as season_id into v_scope
    from public.leaderboard_scope(board, layer, season_id) z;
  -- The window runs over rows already in board order (the subquery walks the board's index), so the page
  -- costs offset + page_size index entries, not the whole board.
  if v_scope.board = 'all_time' then
    return query
      select rank() over (order by e.xp desc), e.id, e.display_name, e.avatar_url, e.xp, e.level, e.tier
        from (select p.id, p.display_name, p.avatar_url, p.xp, p.level, p.tier, p.xp_reached_at as reached_at
                from public.profiles p
               where (p.leaderboard_visible or p.id = v_uid)
               order by p.xp desc, p.xp_reached_at, p.id) e
       order by e.xp desc, e.reached_at, e.id
      offset v_offset limit page_size;
  elsif v_scope.board = 'layer' then
    return query
      select rank() over (order by e.xp desc), e.id, e.display_name, e.avatar_url, e.xp, e.level, e.tier
        from (select p.id, p.display_name, p.avatar_url, pl.xp, p.level, p.tier, pl.reached_at
                from public.profile_layers pl
                join public.profiles p on p.id = pl.profile_id
               where pl.layer_slug = v_scope.layer and (p.leaderboard_visible or p.id = v_uid)
               order by pl.xp desc, pl.reached_at, pl.profile_id) e
       order by e.xp desc, e.reached_at, e.id
      offset v_offset limit page_size;
  else
    return query
      select rank() over (order by e.xp desc), e.id, e.display_name, e.avatar_url, e.xp, e.level, e.tier
        from (select p.id, p.display_name, p.avatar_url, sc.xp, p.level, p.tier, sc.reached_at
                from public.season_scores sc
                join public.profiles p on p.id = sc.profile_id
               where sc.season_id = v_scope.season_id and (p.leaderboard_visible or p.id = v_uid)
               order by sc.xp desc, sc.reached_at, sc.profile_id) e
       order by e.xp desc, e.reached_at, e.id
      offset v_offset limit page_size;
  end if;
end
$$;
comment on function public.leaderboard(text, text, bigint, integer, integer) is
  'One page of a leaderboard: rows (rank, profile_id, display_name, avatar_url, xp, level, tier), best first. '
  'board: all_time (total XP), layer (XP in layer, default engine_settings.default_layer) or season (XP in '
  'season_id, default the layer''s running season). Equal XP shares a rank; among equals whoever reached the '
  'score first comes first. Members who hide themselves (leaderboard_visible = false) are left out for everyone '
  'but themselves. page_size 1-100, page from 1. Errors: XPBAD.';
revoke all on function public.leaderboard(text, text, bigint, integer, integer) from public;
grant execute on function public.leaderboard(text, text, bigint, integer, integer) to anon, authenticated, service_role;

create or replace function public.leaderboard_rank(
  profile_id uuid,
  board text default 'all_time',
  layer text default null,
  season_id bigint default null
)
returns jsonb
language plpgsql
stable
security invoker
set search_path = ''
-- Plans with the caller's values as parameters are as good here and save replanning on every call.
set plan_cache_mode = force_generic_plan
as $$
declare
  v_scope record;
  v_key text;
  v_uid uuid := (select auth.uid());
  v_xp bigint;
  v_reached_at timestamptz;
  v_visible boolean;
  v_self_hidden bigint;
  v_rank bigint;
  v_total bigint;
begin
  select z.board_name as board, z.layer_slug as layer, z.season as season_id into v_scope
    from public.leaderboard_scope(board, layer, season_id) z;
  v_key := case v_scope.board when 'all_time' then '' when 'layer' then v_scope.layer else v_scope.season_id::text end;
  -- The member's entry as the caller may read it (RLS), and the caller's own entry when they hide:
  -- the counts hold visible members only.
  if v_scope.board = 'all_time' then
    select p.xp, p.xp_reached_at, p.leaderboard_visible into v_xp, v_reached_at, v_visible from public.profiles p where p.id = leaderboard_rank.profile_id;
    select p.xp into v_self_hidden from public.profiles p where p.id = v_uid and not p.leaderboard_visible;
  elsif v_scope.board = 'layer' then
    select pl.xp, pl.reached_at, p.leaderboard_visible into v_xp, v_reached_at, v_visible
      from public.profile_layers pl join public.profiles p on p.id = pl.profile_id
     where pl.profile_id = leaderboard_rank.profile_id and pl.layer_slug = v_scope.layer;
    select pl.xp into v_self_hidden
      from public.profile_layers pl join public.profiles p on p.id = pl.profile_id
     where pl.profile_id = v_uid and pl.layer_slug = v_scope.layer and not p.leaderboard_visible;
  else
    select sc.xp, sc.reached_at, p.leaderboard_visible into v_xp, v_reached_at, v_visible
      from public.season_scores sc join public.profiles p on p.id = sc.profile_id
     where sc.profile_id = leaderboard_rank.profile_id and sc.season_id = v_scope.season_id;
    select sc.xp into v_self_hidden
      from public.season_scores sc join public.profiles p on p.id = sc.profile_id
     where sc.profile_id = v_uid and sc.season_id = v_scope.season_id and not p.leaderboard_visible;
  end if;
  if not coalesce(v_visible or leaderboard_rank.profile_id = v_uid, false) then
    v_xp := null;
  end if;
  select coalesce(sum(x.n), 0) + (v_self_hidden is not null)::integer into v_total
    from (select c.members as n from public.leaderboard_counts c
           where c.board = v_scope.board and c.scope = v_key and c.level = 7
          union all
          select d.delta from public.leaderboard_count_deltas d
           where d.board = v_scope.board and d.scope = v_key and d.level = 7) x;
  if v_xp is not null then
    -- rank = 1 + members with more XP: per level, the buckets after the member's within its 64-block
    -- (every later bucket at the top level), at most 8 x 63 rows.
    v_rank := 1 + (select coalesce(sum(x.n), 0)::bigint
                from generate_series(0, 7) as l (level)
                cross join lateral (
                  select c.members as n from public.leaderboard_counts c
                   where c.board = v_scope.board and c.scope = v_key and c.level = l.level
                          and c.bucket > (v_xp >> (6 * l.level))
                          and c.bucket <= case when l.level = 7 then 9223372036854775807 else (v_xp >> (6 * l.level)) | 63 end
                  union all
                  select d.delta from public.leaderboard_count_deltas d
                   where d.board = v_scope.board and d.scope = v_key and d.level = l.level
                          and d.bucket > (v_xp >> (6 * l.level))
                          and d.bucket <= case when l.level = 7 then 9223372036854775807 else (v_xp >> (6 * l.level)) | 63 end
                ) x)
                + coalesce(v_self_hidden > v_xp, false)::integer;
  end if;
  return jsonb_build_object(
    'profile_id', leaderboard_rank.profile_id, 'board', v_scope.board, 'layer', v_scope.layer,
    'season_id', v_scope.season_id, 'rank', v_rank, 'xp', v_xp, 'total', v_total);
end
$$;
comment on function public.leaderboard_rank(uuid, text, text, bigint) is
  'A member''s place on a leaderboard as the caller sees it: {profile_id, board, layer, season_id, rank, xp, '
  'total}. rank = 1 + the listed members with more XP (equal XP shares a rank); rank and xp are null when the '
  'member is hidden from the caller or not on the board; total counts the members listed. Errors: XPBAD.';
revoke all on function public.leaderboard_rank(uuid, text, text, bigint) from public;
grant execute on function public.leaderboard_rank(uuid, text, text, bigint) to anon, authenticated, service_role;

create or replace function public.leaderboard_around(
  profile_id uuid,
  board text default 'all_time',
  layer text default null,
  season_id bigint default null,
  radius integer default 5
)
returns setof public.leaderboard_entry
language plpgsql
stable
security invoker
set search_path = ''
-- Plans with the caller's values as parameters are as good here and save replanning on every call.
set plan_cache_mode = force_generic_plan
as $$
declare
  v_scope record;
  v_key text;
  v_uid uuid := (select auth.uid());
  v_xp bigint;
  v_reached_at timestamptz;
  v_visible boolean;
  v_self_hidden bigint;
begin
  if radius is null or radius not between 0 and 50 then
    raise exception 'radius must be 0 to 50' using errcode = 'XPBAD';
  end if;
  select z.board_name as board, z.layer_slug as layer, z.season as season_id into v_scope
    from public.leaderboard_scope(board, layer, season_id) z;
  v_key := case v_scope.board when 'all_time' then '' when 'layer' then v_scope.layer else v_scope.season_id::text end;
  -- The member's entry as the caller may read it (RLS), and the caller's own entry when they hide:
  -- the counts hold visible members only.
  if v_scope.board = 'all_time' then
    select p.xp, p.xp_reached_at, p.leaderboard_visible into v_xp, v_reached_at, v_visible from public.profiles p where p.id = leaderboard_around.profile_id;
    select p.xp into v_self_hidden from public.profiles p where p.id = v_uid and not p.leaderboard_visible;
  elsif v_scope.board = 'layer' then
    select pl.xp, pl.reached_at, p.leaderboard_visible into v_xp, v_reached_at, v_visible
      from public.profile_layers pl join public.profiles p on p.id = pl.profile_id
     where pl.profile_id = leaderboard_around.profile_id and pl.layer_slug = v_scope.layer;
    select pl.xp into v_self_hidden
      from public.profile_layers pl join public.profiles p on p.id = pl.profile_id
     where pl.profile_id = v_uid and pl.layer_slug = v_scope.layer and not p.leaderboard_visible;
  else
    select sc.xp, sc.reached_at, p.leaderboard_visible into v_xp, v_reached_at, v_visible
      from public.season_scores sc join public.profiles p on p.id = sc.profile_id
     where sc.profile_id = leaderboard_around.profile_id and sc.season_id = v_scope.season_id;
    select sc.xp into v_self_hidden
      from public.season_scores sc join public.profiles p on p.id = sc.profile_id
     where sc.profile_id = v_uid and sc.season_id = v_scope.season_id and not p.leaderboard_visible;
  end if;
  if v_xp is null or not coalesce(v_visible or leaderboard_around.profile_id = v_uid, false) then
    return;
  end if;
  -- Each part walks the board's index outwards from the member (their XP and moment are index bounds), and the
  -- ranks come from public.leaderboard_counts: the cost is the window, never the whole board. The three boards
  -- run the same query over their own table (written out, so that each plan is cached).
  if v_scope.board = 'all_time' then
    return query
    with win as (
      select * from (
        (select p.id as id, p.xp as xp, p.xp_reached_at as reached_at from public.profiles p
          where p.xp = v_xp and (p.xp_reached_at, p.id) < (v_reached_at, leaderboard_around.profile_id) and (p.leaderboard_visible or p.id = v_uid)
          order by p.xp_reached_at desc, p.id desc limit radius)
        union all
        (select p.id, p.xp, p.xp_reached_at from public.profiles p
          where p.xp > v_xp and (p.leaderboard_visible or p.id = v_uid)
          order by p.xp, p.xp_reached_at desc, p.id desc limit radius)
        order by 2, 3 desc, 1 desc limit radius
      ) above
      union all
      select leaderboard_around.profile_id, v_xp, v_reached_at
      union all
      select * from (
        (select p.id, p.xp, p.xp_reached_at from public.profiles p
          where p.xp = v_xp and (p.xp_reached_at, p.id) > (v_reached_at, leaderboard_around.profile_id) and (p.leaderboard_visible or p.id = v_uid)
          order by p.xp_reached_at, p.id limit radius)
        union all
        (select p.id, p.xp, p.xp_reached_at from public.profiles p
          where p.xp < v_xp and (p.leaderboard_visible or p.id = v_uid)
          order by p.xp desc, p.xp_reached_at, p.id limit radius)
        order by 2 desc, 3, 1 limit radius
      ) below
    )
    ,
    top as materialized (
      select t.xp, (select coalesce(sum(x.n), 0)::bigint
                   from generate_series(0, 7) as l (level)
                   cross join lateral (
                     select c.members as n from public.leaderboard_counts c
                      where c.board = v_scope.board and c.scope = v_key and c.level = l.level
                             and c.bucket > (t.xp >> (6 * l.level))
                             and c.bucket <= case when l.level = 7 then 9223372036854775807 else (t.xp >> (6 * l.level)) | 63 end
                     union all
                     select d.delta from public.leaderboard_count_deltas d
                      where d.board = v_scope.board and d.scope = v_key and d.level = l.level
                             and d.bucket > (t.xp >> (6 * l.level))
                             and d.bucket <= case when l.level = 7 then 9223372036854775807 else (t.xp >> (6 * l.level)) | 63 end
                   ) x) as above,
             (select coalesce(sum(x.n), 0)
                from (select c.members as n from public.leaderboard_counts c
                       where c.board = v_scope.board and c.scope = v_key and c.level = 0 and c.bucket = t.xp
                      union all
                      select d.delta from public.leaderboard_count_deltas d
                       where d.board = v_scope.board and d.scope = v_key and d.level = 0 and d.bucket = t.xp) x)::bigint as tied
        from (select max(win.xp) as xp from win) t
    )
    -- rank(v) = 1 + visible members above v + the caller when hidden and above v. Above the window's best XP
    -- they come from the counts; below it, add the visible members at that best XP (counts, level 0) and the
    -- window's own rows in between (every member with XP strictly between two window rows is in the window).
    select 1 + top.above + coalesce(v_self_hidden > w.xp, false)::integer
             + case when w.xp = top.xp then 0
                    else top.tied + (select count(*) from win v
                                      where v.xp > w.xp and v.xp < top.xp and (v.id <> v_uid or v_self_hidden is null))
               end,
           w.id, p.display_name, p.avatar_url, w.xp, p.level, p.tier
      from win w cross join top join public.profiles p on p.id = w.id
     order by w.xp desc, w.reached_at, w.id;
  elsif v_scope.board = 'layer' then
    return query
    with win as (
      select * from (
        (select e.profile_id as id, e.xp as xp, e.reached_at as reached_at from public.profile_layers e join public.profiles p on p.id = e.profile_id and e.layer_slug = v_scope.layer
          where e.xp = v_xp and (e.reached_at, e.profile_id) < (v_reached_at, leaderboard_around.profile_id) and (p.leaderboard_visible or p.id = v_uid)
          order by e.reached_at desc, e.profile_id desc limit radius)
        union all
        (select e.profile_id, e.xp, e.reached_at from public.profile_layers e join public.profiles p on p.id = e.profile_id and e.layer_slug = v_scope.layer
          where e.xp > v_xp and (p.leaderboard_visible or p.id = v_uid)
          order by e.xp, e.reached_at desc, e.profile_id desc limit radius)
        order by 2, 3 desc, 1 desc limit radius
      ) above
      union all
      select leaderboard_around.profile_id, v_xp, v_reached_at
      union all
      select * from (
        (select e.profile_id, e.xp, e.reached_at from public.profile_layers e join public.profiles p on p.id = e.profile_id and e.layer_slug = v_scope.layer
          where e.xp = v_xp and (e.reached_at, e.profile_id) > (v_reached_at, leaderboard_around.profile_id) and (p.leaderboard_visible or p.id = v_uid)
          order by e.reached_at, e.profile_id limit radius)
        union all
        (select e.profile_id, e.xp, e.reached_at from public.profile_layers e join public.profiles p on p.id = e.profile_id and e.layer_slug = v_scope.layer
          where e.xp < v_xp and (p.leaderboard_visible or p.id = v_uid)
          order by e.xp desc, e.reached_at, e.profile_id limit radius)
        order by 2 desc, 3, 1 limit radius
      ) below
    )
    ,
    top as materialized (
      select t.xp, (select coalesce(sum(x.n), 0)::bigint
                   from generate_series(0, 7) as l (level)
                   cross join lateral (
                     select c.members as n from public.leaderboard_counts c
                      where c.board = v_scope.board and c.scope = v_key and c.level = l.level
                             and c.bucket > (t.xp >> (6 * l.level))
                             and c.bucket <= case when l.level = 7 then 9223372036854775807 else (t.xp >> (6 * l.level)) | 63 end
                     union all
                     select d.delta from public.leaderboard_count_deltas d
                      where d.board = v_scope.board and d.scope = v_key and d.level = l.level
                             and d.bucket > (t.xp >> (6 * l.level))
                             and d.bucket <= case when l.level = 7 then 9223372036854775807 else (t.xp >> (6 * l.level)) | 63 end
                   ) x) as above,
             (select coalesce(sum(x.n), 0)
                from (select c.members as n from public.leaderboard_counts c
                       where c.board = v_scope.board and c.scope = v_key and c.level = 0 and c.bucket = t.xp
                      union all
                      select d.delta from public.leaderboard_count_deltas d
                       where d.board = v_scope.board and d.scope = v_key and d.level = 0 and d.bucket = t.xp) x)::bigint as tied
        from (select max(win.xp) as xp from win) t
    )
    -- rank(v) = 1 + visible members above v + the caller when hidden and above v. Above the window's best XP
    -- they come from the counts; below it, add the visible members at that best XP (counts, level 0) and the
    -- window's own rows in between (every member with XP strictly between two window rows is in the window).
    select 1 + top.above + coalesce(v_self_hidden > w.xp, false)::integer
             + case when w.xp = top.xp then 0
                    else top.tied + (select count(*) from win v
                                      where v.xp > w.xp and v.xp < top.xp and (v.id <> v_uid or v_self_hidden is null))
               end,
           w.id, p.display_name, p.avatar_url, w.xp, p.level, p.tier
      from win w cross join top join public.profiles p on p.id = w.id
     order by w.xp desc, w.reached_at, w.id;
  else
    return query
    with win as (
      select * from (
        (select e.profile_id as id, e.xp as xp, e.reached_at as reached_at from public.season_scores e join public.profiles p on p.id = e.profile_id and e.season_id = v_scope.season_id
          where e.xp = v_xp and (e.reached_at, e.profile_id) < (v_reached_at, leaderboard_around.profile_id) and (p.leaderboard_visible or p.id = v_uid)
          order by e.reached_at desc, e.profile_id desc limit radius)
        union all
        (select e.profile_id, e.xp, e.reached_at from public.season_scores e join public.profiles p on p.id = e.profile_id and e.season_id = v_scope.season_id
          where e.xp > v_xp and (p.leaderboard_visible or p.id = v_uid)
          order by e.xp, e.reached_at desc, e.profile_id desc limit radius)
        order by 2, 3 desc, 1 desc limit radius
      ) above
      union all
      select leaderboard_around.profile_id, v_xp, v_reached_at
      union all
      select * from (
        (select e.profile_id, e.xp, e.reached_at from public.season_scores e join public.profiles p on p.id = e.profile_id and e.season_id = v_scope.season_id
          where e.xp = v_xp and (e.reached_at, e.profile_id) > (v_reached_at, leaderboard_around.profile_id) and (p.leaderboard_visible or p.id = v_uid)
          order by e.reached_at, e.profile_id limit radius)
        union all
        (select e.profile_id, e.xp, e.reached_at from public.season_scores e join public.profiles p on p.id = e.profile_id and e.season_id = v_scope.season_id
          where e.xp < v_xp and (p.leaderboard_visible or p.id = v_uid)
          order by e.xp desc, e.reached_at, e.profile_id limit radius)
        order by 2 desc, 3, 1 limit radius
      ) below
    )
    ,
    top as materialized (
      select t.xp, (select coalesce(sum(x.n), 0)::bigint
                   from generate_series(0, 7) as l (level)
                   cross join lateral (
                     select c.members as n from public.leaderboard_counts c
                      where c.board = v_scope.board and c.scope = v_key and c.level = l.level
                             and c.bucket > (t.xp >> (6 * l.level))
                             and c.bucket <= case when l.level = 7 then 9223372036854775807 else (t.xp >> (6 * l.level)) | 63 end
                     union all
                     select d.delta from public.leaderboard_count_deltas d
                      where d.board = v_scope.board and d.scope = v_key and d.level = l.level
                             and d.bucket > (t.xp >> (6 * l.level))
                             and d.bucket <= case when l.level = 7 then 9223372036854775807 else (t.xp >> (6 * l.level)) | 63 end
                   ) x) as above,
             (select coalesce(sum(x.n), 0)
                from (select c.members as n from public.leaderboard_counts c
                       where c.board = v_scope.board and c.scope = v_key and c.level = 0 and c.bucket = t.xp
                      union all
                      select d.delta from public.leaderboard_count_deltas d
                       where d.board = v_scope.board and d.scope = v_key and d.level = 0 and d.bucket = t.xp) x)::bigint as tied
        from (select max(win.xp) as xp from win) t
    )
    -- rank(v) = 1 + visible members above v + the caller when hidden and above v. Above the window's best XP
    -- they come from the counts; below it, add the visible members at that best XP (counts, level 0) and the
    -- window's own rows in between (every member with XP strictly between two window rows is in the window).
    select 1 + top.above + coalesce(v_self_hidden > w.xp, false)::integer
             + case when w.xp = top.xp then 0
                    else top.tied + (select count(*) from win v
                                      where v.xp > w.xp and v.xp < top.xp and (v.id <> v_uid or v_self_hidden is null))
               end,
           w.id, p.display_name, p.avatar_url, w.xp, p.level, p.tier
      from win w cross join top join public.profiles p on p.id = w.id
     order by w.xp desc, w.reached_at, w.id;
  end if;
end
$$;
comment on function public.leaderboard_around(uuid, text, text, bigint, integer) is
  'The members around one member on a leaderboard (radius 0-50 on each side), same rows and rules as '
  'public.leaderboard; empty when the member is hidden from the caller or not on the board. Errors: XPBAD.';
revoke all on function public.leaderboard_around(uuid, text, text, bigint, integer) from public;
grant execute on function public.leaderboard_around(uuid, text, text, bigint, integer) to anon, authenticated, service_role;

------------------------------------------------------------------------------
-- Points timeline and dashboard stats (issue 4; the career-points seed)
--
-- Read from the ledger as the caller: members see only their own rows (the
-- ledger's policy), service_role sees everyone's. Periods are local days,
-- weeks (Monday first) or months in the profile's time zone.
------------------------------------------------------------------------------

create or replace function private.assert_can_read_ledger(p_profile_id uuid)
returns text
language plpgsql
stable
security invoker
set search_path = ''
as $$
declare
  v_tz text;
begin
  if p_profile_id is null then
    raise exception 'profile_id is required' using errcode = 'XPBAD';
  end if;
  if coalesce((select auth.role()), '') <> 'service_role' and p_profile_id is distinct from (select auth.uid()) then
    raise exception 'Members can read only their own XP history' using errcode = '42501';
  end if;
  select p.time_zone into v_tz from public.profiles p where p.id = p_profile_id;
  if not found then
    raise exception 'Unknown profile: %', p_profile_id using errcode = 'XPPRF';
  end if;
  return v_tz;
end
$$;
comment on function private.assert_can_read_ledger(uuid) is
  'The time zone of a profile whose ledger the caller may read (their own, or any for service_role); '
  'raises 42501 for someone else''s, XPPRF for an unknown profile.';
revoke all on function private.assert_can_read_ledger(uuid) from public;
grant execute on function private.assert_can_read_ledger(uuid) to authenticated, service_role;

create or replace function public.xp_timeline(
  profile_id uuid,
  granularity text default 'day',
  periods integer default 30,
  at timestamptz default null
)
returns table (period_start date, period_end date, xp bigint, awards bigint, cumulative_xp bigint)
language plpgsql
stable
security invoker
set search_path = ''
as $$
declare
  v_tz text;
  v_step interval;
  v_last date;
  v_first date;
  v_before bigint;
begin
  if granularity is null or granularity not in ('day', 'week', 'month') then
    raise exception 'granularity must be day, week or month' using errcode = 'XPBAD';
  end if;
  if periods is null or periods not between 1 and 366 then
    raise exception 'periods must be 1 to 366' using errcode = 'XPBAD';
  end if;
  v_tz := private.assert_can_read_ledger(xp_timeline.profile_id);
  v_step := ('1 ' || granularity)::interval;
  v_last := date_trunc(granularity, coalesce(xp_timeline.at, now()) at time zone v_tz)::date;
  v_first := (v_last - (periods - 1) * v_step)::date;
  select coalesce(sum(l.amount), 0) into v_before from public.xp_ledger l
   where l.profile_id = xp_timeline.profile_id and l.occurred_at < private.local_day_start(v_tz, v_first);
  return query
    select g.day::date, (g.day + v_step)::date, coalesce(sum(l.amount), 0)::bigint,
           count(l.id) filter (where l.amount <> 0),
           (v_before + sum(coalesce(sum(l.amount), 0)) over (order by g.day))::bigint
      from generate_series(v_first, v_last, v_step) as g (day)
      left join public.xp_ledger l
        on l.profile_id = xp_timeline.profile_id
       and l.occurred_at >= private.local_day_start(v_tz, g.day::date)
       and l.occurred_at < private.local_day_start(v_tz, (g.day + v_step)::date)
     group by g.day
     order by g.day;
end
$$;
comment on function public.xp_timeline(uuid, text, integer, timestamptz) is
  'XP per period for a member: rows (period_start, period_end (exclusive), xp (net XP of the period, '
  'corrections included), awards (ledger rows that moved XP), cumulative_xp (total at the period''s end)) for '
  'the last periods (1-366) days, weeks (Monday first) or months up to the one holding at (default now), in '
  'the profile''s time zone. Members read only their own; service_role anyone''s. Errors: XPBAD, 42501, XPPRF.';
revoke all on function public.xp_timeline(uuid, text, integer, timestamptz) from public, anon;
grant execute on function public.xp_timeline(uuid, text, integer, timestamptz) to authenticated, service_role;

create or replace function public.dashboard_stats(
  profile_id uuid,
  period text default 'week',
  at timestamptz default null
)
returns jsonb
language plpgsql
stable
security invoker
set search_path = ''
as $$
declare
  v_tz text;
  v_step interval;
  v_start date;
  v_current bigint;
  v_previous bigint;
  v_profile record;
  v_by_activity jsonb;
  v_by_layer jsonb;
  v_streak record;
begin
  if period is null or period not in ('day', 'week', 'month') then
    raise exception 'period must be day, week or month' using errcode = 'XPBAD';
  end if;
  v_tz := private.assert_can_read_ledger(dashboard_stats.profile_id);
  v_step := ('1 ' || period)::interval;
  v_start := date_trunc(period, coalesce(dashboard_stats.at, now()) at time zone v_tz)::date;
  select coalesce(sum(l.amount) filter (where l.occurred_at >= private.local_day_start(v_tz, v_start)), 0),
         coalesce(sum(l.amount) filter (where l.occurred_at < private.local_day_start(v_tz, v_start)), 0)
    into v_current, v_previous
    from public.xp_ledger l
   where l.profile_id = dashboard_stats.profile_id
     and l.occurred_at >= private.local_day_start(v_tz, (v_start - v_step)::date)
     and l.occurred_at < private.local_day_start(v_tz, (v_start + v_step)::date);
  select coalesce(jsonb_agg(jsonb_build_object('activity', x.activity_slug, 'xp', x.xp, 'awards', x.n)
                            order by x.xp desc, x.activity_slug), '[]')
    into v_by_activity
    from (select l.activity_slug, sum(l.amount) as xp, count(*) filter (where l.amount <> 0) as n
            from public.xp_ledger l
           where l.profile_id = dashboard_stats.profile_id
             and l.occurred_at >= private.local_day_start(v_tz, v_start)
             and l.occurred_at < private.local_day_start(v_tz, (v_start + v_step)::date)
           group by l.activity_slug) x;
  select coalesce(jsonb_agg(jsonb_build_object('layer', pl.layer_slug, 'xp', pl.xp, 'status', pl.status)
                            order by pl.layer_slug), '[]')
    into v_by_layer
    from public.profile_layers pl where pl.profile_id = dashboard_stats.profile_id;
  select p.xp, p.level, p.tier, p.points into v_profile from public.profiles p where p.id = dashboard_stats.profile_id;
  select s.current_streak, s.longest_streak into v_streak from public.streaks s
   where s.profile_id = dashboard_stats.profile_id;
  return jsonb_build_object(
    'profile_id', dashboard_stats.profile_id,
    'period', period,
    'period_start', v_start,
    'period_end', (v_start + v_step)::date,
    'time_zone', v_tz,
    'xp', v_current,
    'previous_xp', v_previous,
    'change', v_current - v_previous,
    'change_pct', case when v_previous <> 0 then round((v_current - v_previous) * 100.0 / abs(v_previous), 1) end,
    'direction', case when v_current > v_previous then 'up' when v_current < v_previous then 'down' else 'flat' end,
    'total_xp', v_profile.xp,
    'level', v_profile.level,
    'tier', v_profile.tier,
    'points', v_profile.points,
    'rank', public.leaderboard_rank(dashboard_stats.profile_id) -> 'rank',
    'current_streak', coalesce(v_streak.current_streak, 0),
    'longest_streak', coalesce(v_streak.longest_streak, 0),
    'by_activity', v_by_activity,
    'by_layer', v_by_layer);
end
$$;
comment on function public.dashboard_stats(uuid, text, timestamptz) is
  'Dashboard numbers for a member: XP of the current period (day, week or month in the profile''s time zone, '
  'holding at, default now) against the previous one: xp, previous_xp, change, change_pct (null when the '
  'previous period had none), direction (up/down/flat); total_xp, level, tier, points, all-time rank, '
  'current_streak (as last stored), longest_streak, by_activity [{activity, xp, awards}] for the period, '
  'by_layer [{layer, xp, status}]. Members read only their own; service_role anyone''s. Errors: XPBAD, 42501, XPPRF.';
revoke all on function public.dashboard_stats(uuid, text, timestamptz) from public, anon;
grant execute on function public.dashboard_stats(uuid, text, timestamptz) to authenticated, service_role;

------------------------------------------------------------------------------
-- Global chat (issue 4)
------------------------------------------------------------------------------

create or replace function private.post_chat_message(p_body text)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_uid uuid := (select auth.uid());
  v_settings public.chat_settings;
  v_body text := btrim(p_body, E' \t\r\n');
  v_name text;
  v_recent integer;
  v_oldest timestamptz;
  v_row public.chat_messages;
begin
  if v_uid is null then
    raise exception 'Sign in to chat' using errcode = '42501';
  end if;
  select * into v_settings from public.chat_settings limit 1;
  v_settings.max_length := coalesce(v_settings.max_length, 500);
  v_settings.rate_limit_count := coalesce(v_settings.rate_limit_count, 5);
  v_settings.rate_limit_seconds := coalesce(v_settings.rate_limit_seconds, 10);
  if v_body is null or length(v_body) = 0 then
    raise exception 'A message needs some text' using errcode = 'XPBAD';
  end if;
  if length(v_body) > v_settings.max_length then
    raise exception 'A message is at most % characters, this one has %', v_settings.max_length, length(v_body)
      using errcode = 'XPBAD';
  end if;
  if v_body ~ '[\x01-\x08\x0b\x0c\x0e-\x1f\x7f]' then
    raise exception 'A message cannot contain control characters' using errcode = 'XPBAD';
  end if;
  -- One member's posts are serialised on their profile row, so two services cannot both let a burst through.
  select p.display_name into v_name from public.profiles p where p.id = v_uid for no key update;
  if not found then
    raise exception 'Unknown profile: %', v_uid using errcode = 'XPPRF';
  end if;
  select count(*), min(m.created_at) into v_recent, v_oldest
    from (select c.created_at from public.chat_messages c
           where c.profile_id = v_uid and c.created_at > now() - make_interval(secs => v_settings.rate_limit_seconds)
           order by c.created_at desc limit v_settings.rate_limit_count) m;
  if v_recent >= v_settings.rate_limit_count then
    raise exception 'Slow down: at most % messages per % seconds', v_settings.rate_limit_count,
      v_settings.rate_limit_seconds
      using errcode = 'XPRAT',
            detail = 'retry_after_seconds=' || greatest(1, ceil(extract(epoch from
                       v_oldest + make_interval(secs => v_settings.rate_limit_seconds) - now())))::integer;
  end if;
  insert into public.chat_messages (profile_id, author_name, body)
  values (v_uid, v_name, v_body)
  returning * into v_row;
  return jsonb_build_object('id', v_row.id, 'profile_id', v_row.profile_id, 'author_name', v_row.author_name,
                            'body', v_row.body, 'created_at', private.utc_text(v_row.created_at));
end
$$;
comment on function private.post_chat_message(text) is 'Implementation of public.post_chat_message.';
revoke all on function private.post_chat_message(text) from public;
grant execute on function private.post_chat_message(text) to authenticated;

create or replace function public.post_chat_message(body text)
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.post_chat_message(post_chat_message.body)
$$;
comment on function public.post_chat_message(text) is
  'Posts a message to the global chat as the signed-in member and returns it: {id, profile_id, author_name, '
  'body, created_at}. The body is trimmed and must hold 1 to chat_settings.max_length characters without '
  'control characters (newlines and tabs are fine); a member may post chat_settings.rate_limit_count messages '
  'per rate_limit_seconds. Errors: XPBAD, XPRAT (rate limit; detail retry_after_seconds=N), 42501 when not signed in.';
revoke all on function public.post_chat_message(text) from public, anon;
grant execute on function public.post_chat_message(text) to authenticated;

create or replace function public.chat_history(size integer default 50, before_id bigint default null)
returns setof public.chat_messages
language sql
stable
security invoker
set search_path = ''
as $$
  select * from (
    select c.* from public.chat_messages c
     where chat_history.before_id is null or c.id < chat_history.before_id
     order by c.id desc
     limit least(greatest(coalesce(chat_history.size, 50), 1), 500)
  ) m
  order by m.id
$$;
comment on function public.chat_history(integer, bigint) is
  'The newest size (1-500) chat messages before message before_id (default: the newest), oldest first. '
  'Signed-in members (the chat''s policy).';
revoke all on function public.chat_history(integer, bigint) from public, anon;
grant execute on function public.chat_history(integer, bigint) to authenticated, service_role;

create or replace function private.tg_chat_messages__notify()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform pg_notify('xpbase_chat', json_build_object(
    'id', new.id, 'profile_id', new.profile_id, 'author_name', new.author_name, 'body', new.body,
    'created_at', private.utc_text(new.created_at))::text);
  return null;
end
$$;
comment on function private.tg_chat_messages__notify() is
  'Sends each new chat message on channel xpbase_chat as {id, profile_id, author_name, body, created_at}: every '
  'service process relays it to its chat websockets.';
revoke all on function private.tg_chat_messages__notify() from public;

drop trigger if exists _500_notify on public.chat_messages;
create trigger _500_notify after insert on public.chat_messages
  for each row execute function private.tg_chat_messages__notify();

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

------------------------------------------------------------------------------
-- Leaderboard counts (issue 4): an exact histogram of visible members per
-- board at 8 levels of 64-wide XP buckets, kept by triggers, so that the
-- number of members above an XP is a sum of at most 8 x 63 rows.
------------------------------------------------------------------------------

create or replace function private.leaderboard_count_move(p_board text, p_scope text, p_old bigint, p_new bigint)
returns void
language sql
volatile
security definer
set search_path = ''
as $$
-- One member leaves XP p_old (null: was not counted) for p_new (null: is not counted any more): -1 and +1
-- rows for the levels whose bucket changes (a +15 XP award usually touches level 0 alone), appended in one
-- insert. Nothing shared is updated, so concurrent awards never wait for each other here. Once both
-- buckets agree at a level they agree at every higher level too.
  insert into public.leaderboard_count_deltas (board, scope, level, bucket, delta)
  select p_board, p_scope, l.level, m.bucket, m.delta
    from generate_series(0, 7) as l (level)
   cross join lateral (values (p_old >> (6 * l.level), -1), (p_new >> (6 * l.level), 1)) as m (bucket, delta)
   where (p_old >> (6 * l.level)) is distinct from (p_new >> (6 * l.level))
     and m.bucket is not null
$$;
comment on function private.leaderboard_count_move(text, text, bigint, bigint) is
  'Moves one member between XP buckets of a board''s counts (null = not counted).';
revoke all on function private.leaderboard_count_move(text, text, bigint, bigint) from public;

create or replace function private.rebuild_leaderboard_counts()
returns void
language sql
volatile
security definer
set search_path = ''
as $$
  delete from public.leaderboard_count_deltas;
  delete from public.leaderboard_counts;
  insert into public.leaderboard_counts (board, scope, level, bucket, members)
  select e.board, e.scope, l.level, e.xp >> (6 * l.level), count(*)
    from (
      select 'all_time' as board, '' as scope, p.xp from public.profiles p where p.leaderboard_visible
      union all
      select 'layer', pl.layer_slug, pl.xp
        from public.profile_layers pl join public.profiles p on p.id = pl.profile_id where p.leaderboard_visible
      union all
      select 'season', sc.season_id::text, sc.xp
        from public.season_scores sc join public.profiles p on p.id = sc.profile_id where p.leaderboard_visible
    ) e
    cross join generate_series(0, 7) as l (level)
   group by 1, 2, 3, 4;
$$;
comment on function private.rebuild_leaderboard_counts() is
  'Recomputes public.leaderboard_counts from scratch (after a bulk load that bypassed triggers). Superuser/owner only.';
revoke all on function private.rebuild_leaderboard_counts() from public;

create or replace function private.compact_leaderboard_counts()
returns bigint
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_rows bigint;
begin
  -- One compactor at a time; the rows it deletes are exactly the ones it folds in (deltas of transactions
  -- still running are invisible to it and stay for the next run).
  if not pg_try_advisory_xact_lock(hashtextextended('xpbase.compact_leaderboard_counts', 0)) then
    return 0;
  end if;
  with moved as (
    delete from public.leaderboard_count_deltas d returning d.board, d.scope, d.level, d.bucket, d.delta
  ), folded as (
    insert into public.leaderboard_counts as c (board, scope, level, bucket, members)
    select m.board, m.scope, m.level, m.bucket, sum(m.delta)
      from moved m
     group by m.board, m.scope, m.level, m.bucket
    having sum(m.delta) <> 0
     order by m.board, m.scope, m.level, m.bucket
    on conflict (board, scope, level, bucket) do update set members = c.members + excluded.members
  )
  select count(*) into v_rows from moved;
  delete from public.leaderboard_counts c where c.members = 0;
  return v_rows;
end
$$;
comment on function private.compact_leaderboard_counts() is 'Implementation of public.service_role_compact_leaderboard_counts.';
revoke all on function private.compact_leaderboard_counts() from public;
grant execute on function private.compact_leaderboard_counts() to service_role;

create or replace function public.service_role_compact_leaderboard_counts()
returns bigint
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.compact_leaderboard_counts()
$$;
comment on function public.service_role_compact_leaderboard_counts() is
  'Folds the appended leaderboard_count_deltas into leaderboard_counts and returns how many rows it folded '
  '(0 when another compaction is running). Run by the service every XPBASE_LEADERBOARD_COMPACT_INTERVAL '
  'seconds, or by pg_cron. service_role only.';
revoke all on function public.service_role_compact_leaderboard_counts() from public, anon, authenticated;
grant execute on function public.service_role_compact_leaderboard_counts() to service_role;

create or replace function private.tg_profiles__leaderboard_counts()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_old_visible boolean := tg_op <> 'INSERT' and old.leaderboard_visible;
  v_new_visible boolean := tg_op <> 'DELETE' and new.leaderboard_visible;
  v_row record;
begin
  if tg_op = 'UPDATE' and old.xp = new.xp and v_old_visible = v_new_visible then
    return null;
  end if;
  perform private.leaderboard_count_move(
    'all_time', '',
    case when v_old_visible then old.xp end,
    case when v_new_visible then new.xp end);
  if tg_op = 'UPDATE' and v_old_visible <> v_new_visible then
    -- Showing or hiding oneself moves every board the member is on.
    for v_row in select pl.layer_slug, pl.xp from public.profile_layers pl where pl.profile_id = new.id loop
      perform private.leaderboard_count_move('layer', v_row.layer_slug,
        case when v_old_visible then v_row.xp end, case when v_new_visible then v_row.xp end);
    end loop;
    for v_row in select sc.season_id, sc.xp from public.season_scores sc where sc.profile_id = new.id loop
      perform private.leaderboard_count_move('season', v_row.season_id::text,
        case when v_old_visible then v_row.xp end, case when v_new_visible then v_row.xp end);
    end loop;
  end if;
  return null;
end
$$;
comment on function private.tg_profiles__leaderboard_counts() is
  'Keeps public.leaderboard_counts in step with profiles.xp and leaderboard_visible.';
revoke all on function private.tg_profiles__leaderboard_counts() from public;

drop trigger if exists _600_leaderboard_counts on public.profiles;
create trigger _600_leaderboard_counts after insert or delete or update of xp, leaderboard_visible on public.profiles
  for each row execute function private.tg_profiles__leaderboard_counts();

create or replace function private.tg_board_scores__leaderboard_counts()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
-- Shared by profile_layers (board layer, scope layer_slug) and season_scores (board season, scope season_id).
declare
  v_profile_id uuid := case when tg_op = 'DELETE' then old.profile_id else new.profile_id end;
  v_visible boolean;
  v_old_scope text;
  v_new_scope text;
  v_board text := case when tg_table_name = 'profile_layers' then 'layer' else 'season' end;
begin
  select p.leaderboard_visible into v_visible from public.profiles p where p.id = v_profile_id;
  if not coalesce(v_visible, false) then
    return null;
  end if;
  if tg_table_name = 'profile_layers' then
    v_old_scope := case when tg_op <> 'INSERT' then old.layer_slug end;
    v_new_scope := case when tg_op <> 'DELETE' then new.layer_slug end;
  else
    v_old_scope := case when tg_op <> 'INSERT' then old.season_id::text end;
    v_new_scope := case when tg_op <> 'DELETE' then new.season_id::text end;
  end if;
  if tg_op = 'UPDATE' and old.xp = new.xp and v_old_scope = v_new_scope then
    return null;
  end if;
  if v_old_scope is not distinct from v_new_scope then
    perform private.leaderboard_count_move(v_board, v_new_scope, old.xp, new.xp);
  else
    if v_old_scope is not null then
      perform private.leaderboard_count_move(v_board, v_old_scope, old.xp, null);
    end if;
    if v_new_scope is not null then
      perform private.leaderboard_count_move(v_board, v_new_scope, null, new.xp);
    end if;
  end if;
  return null;
end
$$;
comment on function private.tg_board_scores__leaderboard_counts() is
  'Keeps public.leaderboard_counts in step with profile_layers and season_scores (visible members only).';
revoke all on function private.tg_board_scores__leaderboard_counts() from public;

drop trigger if exists _600_leaderboard_counts on public.profile_layers;
create trigger _600_leaderboard_counts after insert or delete or update of xp, layer_slug on public.profile_layers
  for each row execute function private.tg_board_scores__leaderboard_counts();
drop trigger if exists _600_leaderboard_counts on public.season_scores;
create trigger _600_leaderboard_counts after insert or delete or update of xp, season_id on public.season_scores
  for each row execute function private.tg_board_scores__leaderboard_counts();
