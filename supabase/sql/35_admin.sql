-- Admin corrections: adjust XP, set a level, reset XP. Ledger rows with actor and reason,
-- never edits; service_role and members whose profile role is admin.
--
-- Tables: none of its own (writes public.xp_ledger through the award path).
-- Tests: tests/sql/test_admin.py

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
-- Making an admin (`xpbase admin grant PROFILE`)
------------------------------------------------------------------------------

create or replace function public.service_role_grant_admin(profile_id uuid)
returns jsonb
language plpgsql
volatile
security invoker
set search_path = ''
as $$
declare
  v_row record;
  v_before text;
begin
  if service_role_grant_admin.profile_id is null then
    raise exception 'profile_id is required' using errcode = 'XPBAD';
  end if;
  select p.role into v_before from public.profiles p where p.id = service_role_grant_admin.profile_id for update;
  if not found then
    raise exception 'Unknown profile: %', service_role_grant_admin.profile_id using errcode = 'XPPRF';
  end if;
  -- Audited in public.role_changes (12_roles.sql) like every role change.
  perform private.set_role(service_role_grant_admin.profile_id, 'admin', 'xpbase admin grant', null, 'service_role');
  select p.id, p.display_name, p.role into v_row from public.profiles p
   where p.id = service_role_grant_admin.profile_id;
  return jsonb_build_object('profile_id', v_row.id, 'display_name', v_row.display_name, 'role', v_row.role,
                            'changed', v_before <> 'admin');
end
$$;
comment on function public.service_role_grant_admin(uuid) is
  'Gives a profile the admin role (profiles.role), which the admin corrections and admin routes check: '
  '{profile_id, display_name, role, changed} (changed false when it was an admin already). How the first '
  'admin is made (`xpbase admin grant`). Errors: XPBAD, XPPRF. service_role only.';
revoke all on function public.service_role_grant_admin(uuid) from public, anon, authenticated;
grant execute on function public.service_role_grant_admin(uuid) to service_role;
