-- economy_functions
--
-- Written by `xpbase migration new` from the feature files in supabase/sql/:
-- the function and trigger definitions that changed since the last migration.
-- Edit the feature files, not this file; landed migrations never change.
-- Changed:
--   function private.apply_xp(uuid, text, jsonb, timestamptz, text, uuid, text, text, jsonb, jsonb)
--   function private.apply_points(uuid, text, int8, text, uuid, text, text, jsonb, jsonb, bool)
--   function private.adjust_points(uuid, int4, text, text)
--   function public.admin_adjust_points(uuid, int4, text, text)
--   function public.service_role_admin_adjust_points(uuid, uuid, int4, text, text)
--   function public.points_statement(uuid, int4, int8)
--   function private.tg_points_ledger__append_only()
--   trigger public.points_ledger._100_append_only
--   trigger public.points_ledger._101_append_only_truncate
--   function private.finalize_seasons(timestamptz)
--   function private.check_item(public.store_items, uuid, int4)
--   function private.check_delivery(public.store_items, jsonb)
--   function private.grant_item(uuid, public.store_items, int8, jsonb, text)
--   function private.buy_item(uuid, text, text, int4, jsonb, text)
--   function public.buy_item(text, text, int4, jsonb)
--   function public.service_role_buy_item(uuid, text, text, int4, jsonb)
--   function public.store_catalogue(uuid)
--   function public.inventory_of(uuid)
--   function private.save_store_item(jsonb)
--   function public.admin_save_store_item(jsonb)
--   function private.move_redemption(int8, text, text, uuid, text, bool)
--   function private.update_redemption(int8, text, text)
--   function public.update_redemption(int8, text, text)
--   function public.service_role_update_redemption(uuid, int8, text, text)
--   function private.list_redemptions(uuid, text, int4, int8)
--   function public.redemption_queue(text, int4, int8)
--   function public.redemption_history(uuid, int4, int8)
--   function private.tg_redemption_events__append_only()
--   trigger public.redemption_events._100_append_only
--   function private.order_json(public.payment_orders)
--   function private.create_payment_order(uuid, text, text, int4)
--   function public.service_role_create_payment_order(uuid, text, text, int4)
--   function private.attach_razorpay_order(uuid, text, int4, text)
--   function public.service_role_attach_razorpay_order(uuid, text, int4, text)
--   function private.fail_payment_order(uuid, text)
--   function public.service_role_fail_payment_order(uuid, text)
--   function private.capture_payment(text, text, int4, text, uuid)
--   function public.service_role_verify_payment(uuid, text, text, int4)
--   function public.service_role_reconcile_payment(text, text, int4)
--   function private.refund_payment(text, text, int4)
--   function private.payment_webhook(text, text, jsonb)
--   function public.service_role_payment_webhook(text, text, jsonb)
--   function private.open_payment_orders(int4, int4)
--   function public.service_role_open_payment_orders(int4, int4)
--   function private.expire_payment_orders(timestamptz)
--   function public.service_role_expire_payment_orders(timestamptz)
--   function public.payment_orders_of(uuid, int4)
--   function private.discord_member(text, int4)
--   function public.service_role_discord_member(text, int4)

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
  'level_up / tier_up / layer_status_up notifications. Returns the receipt. Only the engine calls it. '
  'Cached totals are functions of the ledger: profiles.xp and profile_layers.xp are sums of amount (never '
  'negative: amounts are floored before they get here); season_scores.xp is the sum of season_amount over the '
  'season''s rows (each season floors at zero on its own).';

revoke all on function private.apply_xp(uuid, text, jsonb, timestamptz, text, uuid, text, text, jsonb, jsonb) from public;

-- from supabase/sql/32_points.sql -------------------------------------------

-- The points ledger: every change of a member's spendable points is one append-only row (earned with
-- XP, season reward, purchase, refund, admin correction, payment reversal) with an idempotency key,
-- actor and reason; profiles.points is its cached sum and never goes below zero. Spending points never
-- touches XP or level. Admin corrections (admin_adjust_points, the bot's /addpoints and /removepoints)
-- and the member's statement (points_statement) live here; the award path (30_award.sql) writes the
-- "earned" rows itself, on its hot path.
--
-- Tables: public.points_ledger.
-- Tests: tests/sql/test_points.py

------------------------------------------------------------------------------
-- The writer
------------------------------------------------------------------------------
create or replace function private.apply_points(
  p_profile_id uuid,
  p_kind text,
  p_amount bigint,
  p_idempotency_key text,
  p_actor_id uuid,
  p_actor_role text,
  p_reason text,
  p_request jsonb,
  p_ref jsonb,
  p_floor boolean
)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
-- Locks the profile row (so concurrent changes of one member's points serialise), then appends one
-- ledger row and moves the cached balance with it. A debit larger than the balance raises XPPTS, or with
-- p_floor takes the balance to zero and says so (floored). The same key returns the first answer
-- (replayed = true); the same key with another p_request raises XPIDM.
declare
  v_balance bigint;
  v_amount bigint := p_amount;
  v_floored boolean := false;
  v_row public.points_ledger;
begin
  if p_idempotency_key is null or length(p_idempotency_key) not between 1 and 256 then
    raise exception 'idempotency_key must be 1 to 256 characters' using errcode = 'XPBAD';
  end if;
  select p.points into v_balance from public.profiles p where p.id = p_profile_id for update;
  if not found then
    raise exception 'Unknown profile: %', p_profile_id using errcode = 'XPPRF';
  end if;
  select * into v_row from public.points_ledger l where l.idempotency_key = p_idempotency_key;
  if found then
    if v_row.request is distinct from coalesce(p_request, '{}') or v_row.profile_id <> p_profile_id then
      raise exception 'Idempotency key % was already used with other parameters', p_idempotency_key
        using errcode = 'XPIDM', detail = 'first request: ' || v_row.request::text;
    end if;
    return jsonb_build_object('points_ledger_id', v_row.id, 'profile_id', v_row.profile_id, 'kind', v_row.kind,
                              'requested', p_amount, 'amount', v_row.amount, 'balance', v_row.balance_after,
                              'floored', v_row.amount <> p_amount, 'replayed', true);
  end if;
  if v_balance + v_amount < 0 then
    if not p_floor then
      raise exception 'Not enough points: % held, % needed', v_balance, -v_amount using errcode = 'XPPTS';
    end if;
    v_amount := -v_balance;
    v_floored := true;
  end if;
  insert into public.points_ledger (profile_id, kind, amount, balance_after, idempotency_key, actor_id, actor_role,
                                    reason, request, ref)
  values (p_profile_id, p_kind, v_amount, v_balance + v_amount, p_idempotency_key, p_actor_id, p_actor_role,
          p_reason, coalesce(p_request, '{}'), coalesce(p_ref, '{}'))
  returning * into v_row;
  if v_amount <> 0 then
    update public.profiles p set points = v_row.balance_after, updated_at = now() where p.id = p_profile_id;
  end if;
  return jsonb_build_object('points_ledger_id', v_row.id, 'profile_id', p_profile_id, 'kind', p_kind,
                            'requested', p_amount, 'amount', v_amount, 'balance', v_row.balance_after,
                            'floored', v_floored, 'replayed', false);
end
$$;

comment on function private.apply_points(uuid, text, bigint, text, uuid, text, text, jsonb, jsonb, boolean) is
  'The one writer of points (besides the award path''s earned rows): appends a points_ledger row and moves '
  'profiles.points with it, under the profile row lock. Returns {points_ledger_id, profile_id, kind, requested, '
  'amount, balance, floored, replayed}. Errors: XPPTS not enough points (unless p_floor), XPIDM key reused with '
  'another request, XPPRF unknown profile, XPBAD bad key.';

revoke all on function private.apply_points(uuid, text, bigint, text, uuid, text, text, jsonb, jsonb, boolean) from public;

------------------------------------------------------------------------------
-- Admin corrections
------------------------------------------------------------------------------
create or replace function private.adjust_points(
  p_profile_id uuid,
  p_amount integer,
  p_reason text,
  p_idempotency_key text
)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_actor record;
begin
  select * into v_actor from private.assert_admin();
  if p_profile_id is null then
    raise exception 'profile_id is required' using errcode = 'XPBAD';
  end if;
  if p_amount is null or p_amount = 0 or abs(p_amount) > 100000000 then
    raise exception 'amount must be a non-zero number of points within 100000000' using errcode = 'XPBAD';
  end if;
  if p_reason is null or length(btrim(p_reason)) not between 1 and 500 then
    raise exception 'reason must be 1 to 500 characters' using errcode = 'XPBAD';
  end if;
  if p_idempotency_key is null or length(p_idempotency_key) not between 1 and 200 then
    raise exception 'idempotency_key must be 1 to 200 characters' using errcode = 'XPBAD';
  end if;
  return private.apply_points(
    p_profile_id, 'admin_adjustment', p_amount, 'admin_points:' || p_idempotency_key,
    v_actor.actor_id, v_actor.actor_role, btrim(p_reason),
    jsonb_build_object('fn', 'admin_adjust_points', 'amount', p_amount, 'reason', btrim(p_reason)),
    '{}', true
  ) || jsonb_build_object('actor_id', v_actor.actor_id, 'actor_role', v_actor.actor_role);
end
$$;

comment on function private.adjust_points(uuid, integer, text, text) is 'Implementation of public.admin_adjust_points.';

revoke all on function private.adjust_points(uuid, integer, text, text) from public;

grant execute on function private.adjust_points(uuid, integer, text, text) to service_role, authenticated;

create or replace function public.admin_adjust_points(
  profile_id uuid,
  amount integer,
  reason text,
  idempotency_key text
)
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.adjust_points(admin_adjust_points.profile_id, admin_adjust_points.amount,
                               admin_adjust_points.reason, admin_adjust_points.idempotency_key)
$$;

comment on function public.admin_adjust_points(uuid, integer, text, text) is
  'Adds (amount > 0) or removes (amount < 0) points, as a points_ledger row (kind admin_adjustment) with the '
  'caller as actor and the reason. A removal larger than the balance takes it to zero (floored = true); XP '
  'and level never change. Returns {points_ledger_id, profile_id, kind, requested, amount, balance, floored, '
  'replayed, actor_id, actor_role}. The same idempotency_key changes nothing twice. Errors: 42501 unless '
  'service_role or an admin member, XPBAD, XPPRF, XPIDM.';

revoke all on function public.admin_adjust_points(uuid, integer, text, text) from public, anon;

grant execute on function public.admin_adjust_points(uuid, integer, text, text) to service_role, authenticated;

create or replace function public.service_role_admin_adjust_points(
  actor_id uuid,
  profile_id uuid,
  amount integer,
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
  perform private.act_for(service_role_admin_adjust_points.actor_id);
  v_receipt := public.admin_adjust_points(service_role_admin_adjust_points.profile_id,
                                          service_role_admin_adjust_points.amount,
                                          service_role_admin_adjust_points.reason,
                                          service_role_admin_adjust_points.idempotency_key);
  perform set_config('xpbase.actor_id', '', true);
  return v_receipt;
end
$$;

comment on function public.service_role_admin_adjust_points(uuid, uuid, integer, text, text) is
  'admin_adjust_points on behalf of a person (the Discord admin who ran /addpoints or /removepoints): the '
  'ledger row names actor_id. Same answer and errors as admin_adjust_points, plus XPPRF for an unknown actor. '
  'service_role only.';

revoke all on function public.service_role_admin_adjust_points(uuid, uuid, integer, text, text) from public, anon, authenticated;

grant execute on function public.service_role_admin_adjust_points(uuid, uuid, integer, text, text) to service_role;

------------------------------------------------------------------------------
-- Reading
------------------------------------------------------------------------------
create or replace function public.points_statement(
  profile_id uuid default null,
  size integer default 20,
  before_id bigint default null
)
returns jsonb
language plpgsql
stable
security invoker
set search_path = ''
as $$
declare
  v_profile uuid := coalesce(points_statement.profile_id, (select auth.uid()));
  v_balance bigint;
  v_entries jsonb;
begin
  if v_profile is null then
    raise exception 'profile_id is required' using errcode = 'XPBAD';
  end if;
  if points_statement.size is null or points_statement.size not between 1 and 100 then
    raise exception 'size must be 1 to 100' using errcode = 'XPBAD';
  end if;
  if (select auth.role()) is distinct from 'service_role' and v_profile is distinct from (select auth.uid()) then
    raise exception 'Members read only their own points' using errcode = '42501';
  end if;
  select p.points into v_balance from public.profiles p where p.id = v_profile;
  if not found then
    raise exception 'Unknown profile: %', v_profile using errcode = 'XPPRF';
  end if;
  select coalesce(jsonb_agg(jsonb_build_object(
           'id', l.id, 'kind', l.kind, 'amount', l.amount, 'balance_after', l.balance_after,
           'reason', l.reason, 'actor_id', l.actor_id, 'ref', l.ref,
           'created_at', to_char(l.created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))
           order by l.id desc), '[]')
    into v_entries
    from (select * from public.points_ledger l
           where l.profile_id = v_profile and (points_statement.before_id is null or l.id < points_statement.before_id)
           order by l.id desc limit points_statement.size) l;
  return jsonb_build_object(
    'profile_id', v_profile, 'balance', v_balance, 'entries', v_entries,
    'next_before_id', case when jsonb_array_length(v_entries) = points_statement.size
                           then (v_entries -> -1 ->> 'id')::bigint end);
end
$$;

comment on function public.points_statement(uuid, integer, bigint) is
  'A member''s points: {profile_id, balance, entries: [{id, kind, amount, balance_after, reason, actor_id, ref, '
  'created_at (UTC)}] newest first, next_before_id (pass as before_id for the next page, null at the end)}. '
  'profile_id defaults to the caller; size 1 to 100. Members read only their own (42501 otherwise); '
  'service_role reads anyone''s. Errors: XPBAD, XPPRF, 42501.';

revoke all on function public.points_statement(uuid, integer, bigint) from public, anon;

grant execute on function public.points_statement(uuid, integer, bigint) to service_role, authenticated;

------------------------------------------------------------------------------
-- Triggers
------------------------------------------------------------------------------
create or replace function private.tg_points_ledger__append_only()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  raise exception 'points_ledger is append-only: correct points with a new row (admin_adjust_points), never % it',
    lower(tg_op) using errcode = 'XPLED';
end
$$;

comment on function private.tg_points_ledger__append_only() is 'Refuses every update, delete and truncate of the points ledger.';

revoke all on function private.tg_points_ledger__append_only() from public;

drop trigger if exists _100_append_only on public.points_ledger;

create trigger _100_append_only before update or delete on public.points_ledger
  for each row execute function private.tg_points_ledger__append_only();

drop trigger if exists _101_append_only_truncate on public.points_ledger;

create trigger _101_append_only_truncate before truncate on public.points_ledger
  for each statement execute function private.tg_points_ledger__append_only();

-- from supabase/sql/45_season_finalize.sql ----------------------------------

-- Finalizing seasons: a finished season is frozen once (standings, rewards, notifications),
-- idempotently; listing seasons and their archived results.
--
-- Tables: public.season_results, public.season_rewards.
-- Tests: tests/sql/test_season_finalize.py

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

-- from supabase/sql/55_store.sql --------------------------------------------

-- The store: items as data, bought with points in one function (price, requirements, per-member limit,
-- stock and the points debit in one transaction, idempotent by key, never oversold), and what a purchase
-- grants, decided here (streak freezes within the maximum, cosmetics and tools into the inventory, a rank
-- card style, or a pending redemption a person fulfils: 56_redemptions.sql).
--
-- Lock order, everywhere: redemption, then item, then profile (awards lock only the profile).
--
-- Tables: public.store_items, public.store_purchases, public.inventory.
-- Tests: tests/sql/test_store.py

------------------------------------------------------------------------------
-- Rules of an item
------------------------------------------------------------------------------
create or replace function private.check_item(p_item public.store_items, p_profile_id uuid, p_quantity integer)
returns void
language plpgsql
stable
security definer
set search_path = ''
as $$
-- Raises the refusal for a member who may not buy p_quantity of the item now: XPINA inactive or outside
-- its window, XPTIR tier or layer too low, XPLIM the member's limit reached, XPSTK sold out, XPFRZ more
-- streak freezes than the check-in rule lets a member hold.
declare
  v_level integer;
  v_layer_xp bigint;
  v_bought bigint;
  v_held integer;
  v_max integer;
begin
  if not p_item.active or (p_item.starts_at is not null and now() < p_item.starts_at)
     or (p_item.ends_at is not null and now() >= p_item.ends_at) then
    raise exception 'Item % is not on sale', p_item.slug using errcode = 'XPINA';
  end if;
  if p_item.required_tier is not null then
    select p.level into v_level from public.profiles p where p.id = p_profile_id;
    if v_level < (select t.min_level from public.tiers t where t.slug = p_item.required_tier) then
      raise exception 'Item % needs the % tier', p_item.slug, p_item.required_tier using errcode = 'XPTIR';
    end if;
  end if;
  if p_item.required_layer is not null and p_item.required_layer_xp > 0 then
    select coalesce(max(pl.xp), 0) into v_layer_xp from public.profile_layers pl
     where pl.profile_id = p_profile_id and pl.layer_slug = p_item.required_layer;
    if v_layer_xp < p_item.required_layer_xp then
      raise exception 'Item % needs % XP in the % layer', p_item.slug, p_item.required_layer_xp, p_item.required_layer
        using errcode = 'XPTIR';
    end if;
  end if;
  if p_item.per_member_limit is not null then
    select count(*) into v_bought from public.store_purchases sp
     where sp.profile_id = p_profile_id and sp.item_id = p_item.id and sp.status = 'completed';
    if v_bought + p_quantity > p_item.per_member_limit then
      raise exception 'Item % is limited to % per member', p_item.slug, p_item.per_member_limit using errcode = 'XPLIM';
    end if;
  end if;
  if p_item.stock is not null and p_item.stock < p_quantity then
    raise exception 'Item % is sold out', p_item.slug using errcode = 'XPSTK';
  end if;
  if p_item.category = 'streak_freeze' then
    select coalesce(max(s.freezes_held), 0) into v_held from public.streaks s where s.profile_id = p_profile_id;
    select coalesce(max(r.max_freezes_held), 2) into v_max
      from public.engine_settings e join public.check_in_rules r on r.slug = e.check_in_rule;
    if v_held + p_item.freezes * p_quantity > v_max then
      raise exception 'You hold % streak freezes; at most % may be held', v_held, v_max using errcode = 'XPFRZ';
    end if;
  end if;
end
$$;

comment on function private.check_item(public.store_items, uuid, integer) is
  'Raises why a member may not buy the item now (XPINA, XPTIR, XPLIM, XPSTK, XPFRZ), or returns.';

revoke all on function private.check_item(public.store_items, uuid, integer) from public;

create or replace function private.check_delivery(p_item public.store_items, p_delivery jsonb)
returns jsonb
language plpgsql
immutable
security definer
set search_path = ''
as $$
declare
  v_delivery jsonb := coalesce(p_delivery, '{}');
  v_value text;
begin
  if jsonb_typeof(v_delivery) <> 'object' then
    raise exception 'delivery must be a JSON object' using errcode = 'XPBAD';
  end if;
  if p_item.delivery in ('none', 'discord') then
    if v_delivery <> '{}' then
      raise exception 'Item % takes no delivery details', p_item.slug using errcode = 'XPBAD';
    end if;
    return '{}';
  end if;
  if (select count(*) from jsonb_object_keys(v_delivery)) <> 1 or not v_delivery ? p_item.delivery then
    raise exception 'Item % needs exactly {"%": ...} as delivery details', p_item.slug, p_item.delivery
      using errcode = 'XPBAD';
  end if;
  v_value := btrim(v_delivery ->> p_item.delivery);
  if p_item.delivery = 'email'
     and (v_value is null or length(v_value) > 254 or v_value !~ '^[^@[:space:][:cntrl:]]+@[^@[:space:][:cntrl:]]+\.[^@[:space:][:cntrl:]]+$') then
    raise exception 'delivery email is not an email address' using errcode = 'XPBAD';
  end if;
  if p_item.delivery = 'address'
     and (v_value is null or length(v_value) not between 10 and 1000 or v_value ~ '[\x01-\x09\x0b-\x1f\x7f]') then
    raise exception 'delivery address must be 10 to 1000 characters without control characters' using errcode = 'XPBAD';
  end if;
  return jsonb_build_object(p_item.delivery, v_value);
end
$$;

comment on function private.check_delivery(public.store_items, jsonb) is
  'The delivery details an item needs, validated and trimmed: {"email": text} or {"address": text} (10-1000 '
  'characters), {} for items that need none. Raises XPBAD otherwise.';

revoke all on function private.check_delivery(public.store_items, jsonb) from public;

create or replace function private.grant_item(
  p_profile_id uuid,
  p_item public.store_items,
  p_purchase_id bigint,
  p_delivery jsonb,
  p_actor_role text
)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
-- What one unit of the item gives (checked beforehand by check_item): the decision of what a purchase
-- grants, for points and rupee purchases alike.
declare
  v_freezes integer;
  v_redemption_id bigint;
begin
  if p_item.category = 'streak_freeze' then
    insert into public.streaks as s (profile_id, freezes_held) values (p_profile_id, p_item.freezes)
    on conflict (profile_id) do update set freezes_held = s.freezes_held + excluded.freezes_held, updated_at = now()
    returning s.freezes_held into v_freezes;
    return jsonb_build_object('kind', 'streak_freeze', 'freezes_added', p_item.freezes, 'freezes_held', v_freezes);
  elsif p_item.category in ('cosmetic', 'tool') then
    insert into public.inventory as i (profile_id, item_id, quantity) values (p_profile_id, p_item.id, 1)
    on conflict (profile_id, item_id) do update set quantity = i.quantity + 1;
    if p_item.rank_card_style is not null then
      update public.profiles p set rank_card_style = p_item.rank_card_style, updated_at = now()
       where p.id = p_profile_id;
    end if;
    return jsonb_build_object('kind', 'inventory', 'tool', p_item.tool_slug, 'rank_card_style', p_item.rank_card_style);
  end if;
  insert into public.redemptions (purchase_id, profile_id, item_id, delivery)
  values (p_purchase_id, p_profile_id, p_item.id, p_delivery)
  returning id into v_redemption_id;
  insert into public.redemption_events (redemption_id, profile_id, status, actor_id, actor_role, note)
  values (v_redemption_id, p_profile_id, 'pending', p_profile_id, p_actor_role, null);
  insert into public.notifications (profile_id, kind, title, body, data)
  values (p_profile_id, 'redemption_update', p_item.name || ': requested',
          'An admin will review your request.',
          jsonb_build_object('redemption_id', v_redemption_id, 'item', p_item.slug, 'status', 'pending'));
  return jsonb_build_object('kind', 'redemption', 'redemption_id', v_redemption_id, 'status', 'pending');
end
$$;

comment on function private.grant_item(uuid, public.store_items, bigint, jsonb, text) is
  'Gives one unit of an item: streak freezes, an inventory row (tools, cosmetics, rank card style) or a pending '
  'redemption with its first step and notification. Returns what it gave as jsonb {kind, ...}.';

revoke all on function private.grant_item(uuid, public.store_items, bigint, jsonb, text) from public;

------------------------------------------------------------------------------
-- Buying with points
------------------------------------------------------------------------------
create or replace function private.buy_item(
  p_profile_id uuid,
  p_item text,
  p_idempotency_key text,
  p_expected_price integer,
  p_delivery jsonb,
  p_actor_role text
)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_request jsonb;
  v_key text;
  v_purchase public.store_purchases;
  v_item public.store_items;
  v_delivery jsonb;
  v_points jsonb;
  v_grants jsonb;
  v_receipt jsonb;
begin
  if p_profile_id is null then
    raise exception 'profile_id is required' using errcode = 'XPBAD';
  end if;
  if p_item is null or length(p_item) not between 1 and 64 then
    raise exception 'item must be 1 to 64 characters' using errcode = 'XPBAD';
  end if;
  if p_idempotency_key is null or length(p_idempotency_key) not between 1 and 200 then
    raise exception 'idempotency_key must be 1 to 200 characters' using errcode = 'XPBAD';
  end if;
  if p_expected_price is not null and p_expected_price < 0 then
    raise exception 'expected_price must not be negative' using errcode = 'XPBAD';
  end if;
  v_request := jsonb_build_object('fn', 'buy_item', 'profile_id', p_profile_id, 'item', p_item,
                                  'expected_price', p_expected_price, 'delivery', p_delivery);

  -- One key, one purchase: replays answer from the row (the advisory lock serialises racing replays). Keys are
  -- the member's own: two members may use the same one.
  v_key := 'points:' || p_profile_id || ':' || p_idempotency_key;
  perform pg_advisory_xact_lock(hashtextextended('store_purchases:' || v_key, 0));
  select * into v_purchase from public.store_purchases sp where sp.idempotency_key = v_key;
  if found then
    if v_purchase.request is distinct from v_request then
      raise exception 'Idempotency key % was already used with other parameters', p_idempotency_key
        using errcode = 'XPIDM', detail = 'first request: ' || v_purchase.request::text;
    end if;
    return v_purchase.grants || jsonb_build_object('replayed', true);
  end if;

  -- The item row lock serialises every purchase of the item: stock is decided on a consistent view.
  select * into v_item from public.store_items i where i.slug = p_item for update;
  if not found then
    raise exception 'Unknown item: %', p_item using errcode = 'XPITM';
  end if;
  -- Then the member's row: before the purchase row's foreign key takes a key-share lock on it (upgrading that
  -- to apply_points' update lock would deadlock with the member's purchases of other items).
  perform 1 from public.profiles p where p.id = p_profile_id for update;
  if not found then
    raise exception 'Unknown profile: %', p_profile_id using errcode = 'XPPRF';
  end if;
  if v_item.price_points is null then
    raise exception 'Item % is sold for rupees only (POST /v1/payments/orders)', v_item.slug using errcode = 'XPPRC';
  end if;
  if p_expected_price is not null and p_expected_price <> v_item.price_points then
    raise exception 'Item % costs % points, not %', v_item.slug, v_item.price_points, p_expected_price
      using errcode = 'XPPRC';
  end if;
  perform private.check_item(v_item, p_profile_id, 1);
  v_delivery := private.check_delivery(v_item, p_delivery);

  if v_item.stock is not null then
    update public.store_items i set stock = i.stock - 1, updated_at = now() where i.id = v_item.id;
  end if;
  insert into public.store_purchases (profile_id, item_id, price_points, idempotency_key, request)
  values (p_profile_id, v_item.id, v_item.price_points, v_key, v_request)
  returning * into v_purchase;
  v_points := private.apply_points(
    p_profile_id, 'purchase', -v_item.price_points, 'purchase:' || v_purchase.id, p_profile_id, p_actor_role,
    v_item.name, jsonb_build_object('fn', 'buy_item', 'purchase_id', v_purchase.id),
    jsonb_build_object('purchase_id', v_purchase.id, 'item', v_item.slug), false);
  v_grants := private.grant_item(p_profile_id, v_item, v_purchase.id, v_delivery, p_actor_role);
  v_receipt := jsonb_build_object(
    'purchase_id', v_purchase.id, 'profile_id', p_profile_id, 'item', v_item.slug, 'item_name', v_item.name,
    'category', v_item.category, 'price_points', v_item.price_points,
    'points_balance', (v_points ->> 'balance')::bigint, 'points_ledger_id', (v_points ->> 'points_ledger_id')::bigint,
    'stock_left', case when v_item.stock is not null then v_item.stock - 1 end,
    'grants', v_grants, 'replayed', false);
  update public.store_purchases sp
     set points_ledger_id = (v_points ->> 'points_ledger_id')::bigint, grants = v_receipt
   where sp.id = v_purchase.id;
  return v_receipt;
end
$$;

comment on function private.buy_item(uuid, text, text, integer, jsonb, text) is 'Implementation of public.buy_item.';

revoke all on function private.buy_item(uuid, text, text, integer, jsonb, text) from public;

grant execute on function private.buy_item(uuid, text, text, integer, jsonb, text) to service_role, authenticated;

create or replace function public.buy_item(
  item text,
  idempotency_key text,
  expected_price integer default null,
  delivery jsonb default null
)
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.buy_item((select auth.uid()), buy_item.item, buy_item.idempotency_key, buy_item.expected_price,
                          buy_item.delivery, 'authenticated')
$$;

comment on function public.buy_item(text, text, integer, jsonb) is
  'The caller buys one unit of a store item with points: price check (expected_price, when given, must equal '
  'the item''s price_points), tier/layer requirement, per-member limit, stock decrement and points debit in one '
  'transaction, then the grant. delivery: {"email": ...} or {"address": ...} for items a person delivers. '
  'Returns {purchase_id, profile_id, item, item_name, category, price_points, points_balance, points_ledger_id, '
  'stock_left (null: unlimited), grants {kind: streak_freeze|inventory|redemption, ...}, replayed}. The same '
  'idempotency_key buys once. Errors: XPITM unknown item, XPINA not on sale, XPPRC price mismatch or rupees only, '
  'XPSTK sold out, XPLIM member limit reached, XPPTS not enough points, XPTIR tier or layer too low, XPFRZ '
  'streak freeze maximum, XPIDM, XPBAD. Nothing changes on an error.';

revoke all on function public.buy_item(text, text, integer, jsonb) from public, anon;

grant execute on function public.buy_item(text, text, integer, jsonb) to authenticated;

create or replace function public.service_role_buy_item(
  profile_id uuid,
  item text,
  idempotency_key text,
  expected_price integer default null,
  delivery jsonb default null
)
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.buy_item(service_role_buy_item.profile_id, service_role_buy_item.item,
                          service_role_buy_item.idempotency_key, service_role_buy_item.expected_price,
                          service_role_buy_item.delivery, 'service_role')
$$;

comment on function public.service_role_buy_item(uuid, text, text, integer, jsonb) is
  'buy_item for a member the backend names (the bot''s /buy and /redeem). Same answer and errors as buy_item. '
  'service_role only.';

revoke all on function public.service_role_buy_item(uuid, text, text, integer, jsonb) from public, anon, authenticated;

grant execute on function public.service_role_buy_item(uuid, text, text, integer, jsonb) to service_role;

------------------------------------------------------------------------------
-- Reading the store and the inventory
------------------------------------------------------------------------------
create or replace function public.store_catalogue(profile_id uuid default null)
returns jsonb
language plpgsql
stable
security invoker
set search_path = ''
as $$
declare
  v_profile uuid := coalesce(store_catalogue.profile_id, (select auth.uid()));
  v_bought jsonb := '{}';
begin
  if v_profile is not null and (select auth.role()) is distinct from 'service_role'
     and v_profile is distinct from (select auth.uid()) then
    raise exception 'Members read only their own purchases' using errcode = '42501';
  end if;
  -- Anon holds no privilege on purchases: they are read only for a member.
  if v_profile is not null then
    select coalesce(jsonb_object_agg(sp.item_id::text, sp.n), '{}') into v_bought
      from (select sp.item_id, count(*) as n from public.store_purchases sp
             where sp.profile_id = v_profile and sp.status = 'completed' group by sp.item_id) sp;
  end if;
  return (
    select coalesce(jsonb_agg(jsonb_build_object(
             'slug', i.slug, 'name', i.name, 'description', i.description, 'category', i.category,
             'price_points', i.price_points, 'price_paise', i.price_paise, 'stock', i.stock,
             'per_member_limit', i.per_member_limit, 'image_url', i.image_url,
             'required_tier', i.required_tier, 'required_layer', i.required_layer,
             'required_layer_xp', i.required_layer_xp, 'delivery', i.delivery,
             'ends_at', to_char(i.ends_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
             'bought', coalesce((v_bought ->> i.id::text)::bigint, 0))
           order by i.category, coalesce(i.price_points, 0), i.slug), '[]')
      from public.store_items i
     where i.active and (i.starts_at is null or i.starts_at <= now()) and (i.ends_at is null or now() < i.ends_at)
  );
end
$$;

comment on function public.store_catalogue(uuid) is
  'Items on sale now: [{slug, name, description, category, price_points, price_paise (paise), stock (null: '
  'unlimited), per_member_limit, image_url, required_tier, required_layer, required_layer_xp, delivery, ends_at '
  '(UTC), bought (how many the member holds; 0 without a member)}]. profile_id defaults to the caller; members '
  'pass only their own (42501). Anyone may call it.';

revoke all on function public.store_catalogue(uuid) from public;

grant execute on function public.store_catalogue(uuid) to anon, authenticated, service_role;

create or replace function public.inventory_of(profile_id uuid default null)
returns jsonb
language plpgsql
stable
security invoker
set search_path = ''
as $$
declare
  v_profile uuid := coalesce(inventory_of.profile_id, (select auth.uid()));
begin
  if v_profile is null then
    raise exception 'profile_id is required' using errcode = 'XPBAD';
  end if;
  if (select auth.role()) is distinct from 'service_role' and v_profile is distinct from (select auth.uid()) then
    raise exception 'Members read only their own inventory' using errcode = '42501';
  end if;
  return jsonb_build_object(
    'profile_id', v_profile,
    'items', (select coalesce(jsonb_agg(jsonb_build_object(
                       'item', i.slug, 'name', i.name, 'category', i.category, 'quantity', inv.quantity,
                       'tool', i.tool_slug, 'rank_card_style', i.rank_card_style,
                       'acquired_at', to_char(inv.acquired_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))
                     order by inv.acquired_at, i.slug), '[]')
                from public.inventory inv join public.store_items i on i.id = inv.item_id
               where inv.profile_id = v_profile and inv.quantity > 0),
    'freezes_held', (select coalesce(max(s.freezes_held), 0) from public.streaks s where s.profile_id = v_profile),
    'rank_card_style', (select p.rank_card_style from public.profiles p where p.id = v_profile));
end
$$;

comment on function public.inventory_of(uuid) is
  'What a member owns: {profile_id, items: [{item, name, category, quantity, tool (unlocked tool slug or null), '
  'rank_card_style, acquired_at (UTC)}], freezes_held, rank_card_style}. profile_id defaults to the caller; '
  'members read only their own (42501); service_role anyone''s.';

revoke all on function public.inventory_of(uuid) from public, anon;

grant execute on function public.inventory_of(uuid) to authenticated, service_role;

------------------------------------------------------------------------------
-- Managing items (admins)
------------------------------------------------------------------------------
create or replace function private.save_store_item(p_item jsonb)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_row public.store_items;
  v_allowed constant text[] := array['slug', 'name', 'description', 'category', 'price_points', 'price_paise',
    'stock', 'per_member_limit', 'starts_at', 'ends_at', 'image_url', 'required_tier', 'required_layer',
    'required_layer_xp', 'freezes', 'tool_slug', 'rank_card_style', 'delivery', 'active'];
  v_unknown text;
begin
  perform private.assert_admin();
  if p_item is null or jsonb_typeof(p_item) <> 'object' or length(p_item::text) > 8000 then
    raise exception 'item must be a JSON object of at most 8000 characters' using errcode = 'XPBAD';
  end if;
  select k into v_unknown from jsonb_object_keys(p_item) k where k <> all (v_allowed) limit 1;
  if v_unknown is not null then
    raise exception 'Unknown item field: %', v_unknown using errcode = 'XPBAD';
  end if;
  v_row := jsonb_populate_record(null::public.store_items, p_item);
  insert into public.store_items as i (slug, name, description, category, price_points, price_paise, stock,
    per_member_limit, starts_at, ends_at, image_url, required_tier, required_layer, required_layer_xp, freezes,
    tool_slug, rank_card_style, delivery, active)
  values (v_row.slug, v_row.name, coalesce(v_row.description, ''), v_row.category, v_row.price_points,
    v_row.price_paise, v_row.stock, v_row.per_member_limit, v_row.starts_at, v_row.ends_at, v_row.image_url,
    v_row.required_tier, v_row.required_layer, coalesce(v_row.required_layer_xp, 0), coalesce(v_row.freezes, 0),
    v_row.tool_slug, v_row.rank_card_style, coalesce(v_row.delivery, 'none'), coalesce(v_row.active, true))
  on conflict (slug) do update set
    name = excluded.name, description = excluded.description, category = excluded.category,
    price_points = excluded.price_points, price_paise = excluded.price_paise, stock = excluded.stock,
    per_member_limit = excluded.per_member_limit, starts_at = excluded.starts_at, ends_at = excluded.ends_at,
    image_url = excluded.image_url, required_tier = excluded.required_tier,
    required_layer = excluded.required_layer, required_layer_xp = excluded.required_layer_xp,
    freezes = excluded.freezes, tool_slug = excluded.tool_slug, rank_card_style = excluded.rank_card_style,
    delivery = excluded.delivery, active = excluded.active, updated_at = now()
  returning * into v_row;
  return to_jsonb(v_row);
exception
  when check_violation or not_null_violation or foreign_key_violation or invalid_text_representation
       or datetime_field_overflow or invalid_datetime_format or numeric_value_out_of_range then
    raise exception 'Invalid item: %', sqlerrm using errcode = 'XPBAD';
end
$$;

comment on function private.save_store_item(jsonb) is 'Implementation of public.admin_save_store_item.';

revoke all on function private.save_store_item(jsonb) from public;

grant execute on function private.save_store_item(jsonb) to service_role, authenticated;

create or replace function public.admin_save_store_item(item jsonb)
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.save_store_item(admin_save_store_item.item)
$$;

comment on function public.admin_save_store_item(jsonb) is
  'Creates or updates (by slug) a store item from {slug, name, category, price_points?, price_paise?, stock?, '
  'per_member_limit?, starts_at?, ends_at?, image_url?, required_tier?, required_layer?, required_layer_xp?, '
  'freezes?, tool_slug?, rank_card_style?, delivery?, active?, description?}; omitted fields take their '
  'defaults. Returns the row. Errors: 42501 unless service_role or an admin member; XPBAD for unknown fields or '
  'values the table refuses.';

revoke all on function public.admin_save_store_item(jsonb) from public, anon;

grant execute on function public.admin_save_store_item(jsonb) to service_role, authenticated;

-- from supabase/sql/56_redemptions.sql --------------------------------------

-- Redemptions: items a person delivers (merchandise, gift cards, experiences, services) move
-- pending -> approved -> fulfilled, or rejected / cancelled with the points refunded and the stock restored;
-- each step is one redemption_events row (actor, time, note) and one notification to the member. Delivery
-- details are readable only by the member and admins. The admins' queue and a member's history.
--
-- Lock order (as in 55_store.sql): redemption, then item, then profile.
--
-- Tables: public.redemptions, public.redemption_events.
-- Tests: tests/sql/test_redemptions.py

------------------------------------------------------------------------------
-- Redemptions
------------------------------------------------------------------------------
create or replace function private.move_redemption(
  p_redemption_id bigint,
  p_status text,
  p_note text,
  p_actor_id uuid,
  p_actor_role text,
  p_as_admin boolean
)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
-- Allowed steps: pending -> approved | rejected | cancelled; approved -> fulfilled | rejected | cancelled.
-- Members may only cancel their own pending redemptions. rejected and cancelled refund the points and
-- restore the stock.
declare
  v_red public.redemptions;
  v_purchase public.store_purchases;
  v_item public.store_items;
  v_refund jsonb;
begin
  if p_status is null or p_status not in ('approved', 'fulfilled', 'rejected', 'cancelled') then
    raise exception 'status must be approved, fulfilled, rejected or cancelled' using errcode = 'XPBAD';
  end if;
  if p_note is not null and length(p_note) > 1000 then
    raise exception 'note must be at most 1000 characters' using errcode = 'XPBAD';
  end if;
  select * into v_red from public.redemptions r where r.id = p_redemption_id for update;
  if not found then
    raise exception 'Unknown redemption: %', p_redemption_id using errcode = 'XPRDU';
  end if;
  if not p_as_admin and (v_red.profile_id is distinct from p_actor_id or p_status <> 'cancelled') then
    raise exception 'Members may only cancel their own pending redemptions' using errcode = '42501';
  end if;
  if not ((v_red.status = 'pending' and p_status in ('approved', 'rejected', 'cancelled'))
          or (v_red.status = 'approved' and p_status in ('fulfilled', 'rejected', 'cancelled')))
     or (not p_as_admin and v_red.status <> 'pending') then
    raise exception 'A % redemption cannot become %', v_red.status, p_status using errcode = 'XPRDS';
  end if;
  select * into v_purchase from public.store_purchases sp where sp.id = v_red.purchase_id;
  select * into v_item from public.store_items i where i.id = v_red.item_id for update;

  if p_status in ('rejected', 'cancelled') then
    if v_item.stock is not null then
      update public.store_items i set stock = i.stock + 1, updated_at = now() where i.id = v_item.id;
    end if;
    if v_purchase.price_points > 0 then
      v_refund := private.apply_points(
        v_red.profile_id, 'refund', v_purchase.price_points, 'redemption_refund:' || v_red.id, p_actor_id,
        p_actor_role, coalesce(p_note, v_item.name || ' ' || p_status),
        jsonb_build_object('fn', 'move_redemption', 'redemption_id', v_red.id),
        jsonb_build_object('redemption_id', v_red.id, 'purchase_id', v_purchase.id, 'item', v_item.slug), false);
    end if;
    update public.store_purchases sp set status = 'refunded' where sp.id = v_purchase.id;
  end if;
  update public.redemptions r set status = p_status, updated_at = now() where r.id = v_red.id;
  insert into public.redemption_events (redemption_id, profile_id, status, actor_id, actor_role, note)
  values (v_red.id, v_red.profile_id, p_status, p_actor_id, p_actor_role, p_note);
  insert into public.notifications (profile_id, kind, title, body, data)
  values (v_red.profile_id, 'redemption_update', v_item.name || ': ' || p_status,
          concat_ws(' ', case when v_refund is not null then (v_refund ->> 'amount') || ' points refunded.' end, p_note),
          jsonb_build_object('redemption_id', v_red.id, 'item', v_item.slug, 'status', p_status,
                             'status_before', v_red.status,
                             'points_refunded', coalesce((v_refund ->> 'amount')::bigint, 0)));
  return jsonb_build_object('redemption_id', v_red.id, 'profile_id', v_red.profile_id, 'item', v_item.slug,
                            'status_before', v_red.status, 'status', p_status,
                            'points_refunded', coalesce((v_refund ->> 'amount')::bigint, 0),
                            'points_balance', (select p.points from public.profiles p where p.id = v_red.profile_id));
end
$$;

comment on function private.move_redemption(bigint, text, text, uuid, text, boolean) is
  'One step of a redemption (see the file header): the status, a redemption_events row with actor and note, a '
  'redemption_update notification, and on rejected/cancelled the points refund and the stock. Errors: XPRDU '
  'unknown redemption, XPRDS a step that status does not allow, 42501, XPBAD.';

revoke all on function private.move_redemption(bigint, text, text, uuid, text, boolean) from public;

create or replace function private.update_redemption(p_redemption_id bigint, p_status text, p_note text)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_actor_id uuid;
  v_actor_role text;
  v_admin boolean;
begin
  v_admin := (select auth.role()) = 'service_role'
             or exists (select 1 from public.profiles p where p.id = (select auth.uid()) and p.role = 'admin');
  if v_admin then
    select a.actor_id, a.actor_role into v_actor_id, v_actor_role from private.assert_admin() a;
  else
    v_actor_id := (select auth.uid());
    v_actor_role := 'authenticated';
    if v_actor_id is null then
      raise exception 'Sign in first' using errcode = '42501';
    end if;
  end if;
  return private.move_redemption(p_redemption_id, p_status, nullif(btrim(p_note), ''), v_actor_id, v_actor_role,
                                 v_admin);
end
$$;

comment on function private.update_redemption(bigint, text, text) is 'Implementation of public.update_redemption.';

revoke all on function private.update_redemption(bigint, text, text) from public;

grant execute on function private.update_redemption(bigint, text, text) to service_role, authenticated;

create or replace function public.update_redemption(redemption_id bigint, status text, note text default null)
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.update_redemption(update_redemption.redemption_id, update_redemption.status, update_redemption.note)
$$;

comment on function public.update_redemption(bigint, text, text) is
  'Moves a redemption one step: admins (and service_role) approve, fulfil or reject; a member cancels their own '
  'pending one. note (at most 1000 characters) is kept on the step and sent in the notification. Returns '
  '{redemption_id, profile_id, item, status_before, status, points_refunded, points_balance}. Errors: XPRDU, '
  'XPRDS, 42501, XPBAD.';

revoke all on function public.update_redemption(bigint, text, text) from public, anon;

grant execute on function public.update_redemption(bigint, text, text) to service_role, authenticated;

create or replace function public.service_role_update_redemption(
  actor_id uuid,
  redemption_id bigint,
  status text,
  note text default null
)
returns jsonb
language plpgsql
volatile
security invoker
set search_path = ''
as $$
declare
  v_result jsonb;
begin
  perform private.act_for(service_role_update_redemption.actor_id);
  v_result := public.update_redemption(service_role_update_redemption.redemption_id,
                                       service_role_update_redemption.status, service_role_update_redemption.note);
  perform set_config('xpbase.actor_id', '', true);
  return v_result;
end
$$;

comment on function public.service_role_update_redemption(uuid, bigint, text, text) is
  'update_redemption on behalf of an admin (the bot''s approve/reject buttons): the step names actor_id. Same '
  'answer and errors. service_role only.';

revoke all on function public.service_role_update_redemption(uuid, bigint, text, text) from public, anon, authenticated;

grant execute on function public.service_role_update_redemption(uuid, bigint, text, text) to service_role;

create or replace function private.list_redemptions(p_profile_id uuid, p_status text, p_size integer, p_before_id bigint)
returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_admin boolean := (select auth.role()) = 'service_role'
    or exists (select 1 from public.profiles p where p.id = (select auth.uid()) and p.role = 'admin');
begin
  if p_size is null or p_size not between 1 and 100 then
    raise exception 'size must be 1 to 100' using errcode = 'XPBAD';
  end if;
  if p_status is not null and p_status not in ('pending', 'approved', 'fulfilled', 'rejected', 'cancelled') then
    raise exception 'Unknown status: %', p_status using errcode = 'XPBAD';
  end if;
  if not v_admin and (p_profile_id is null or p_profile_id is distinct from (select auth.uid())) then
    raise exception 'Only admins see other members'' redemptions' using errcode = '42501';
  end if;
  return (
    select coalesce(jsonb_agg(jsonb_build_object(
             'id', r.id, 'profile_id', r.profile_id, 'display_name', p.display_name, 'item', i.slug,
             'item_name', i.name, 'category', i.category, 'status', r.status, 'delivery', r.delivery,
             'points', sp.price_points,
             'created_at', to_char(r.created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
             'steps', (select jsonb_agg(jsonb_build_object(
                                'status', e.status, 'actor_id', e.actor_id, 'actor_role', e.actor_role, 'note', e.note,
                                'at', to_char(e.created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))
                              order by e.id)
                         from public.redemption_events e where e.redemption_id = r.id))
           order by r.id desc), '[]')
      from (select * from public.redemptions r
             where (p_profile_id is null or r.profile_id = p_profile_id)
               and (p_status is null or r.status = p_status)
               and (p_before_id is null or r.id < p_before_id)
             order by r.id desc limit p_size) r
      join public.profiles p on p.id = r.profile_id
      join public.store_items i on i.id = r.item_id
      join public.store_purchases sp on sp.id = r.purchase_id
  );
end
$$;

comment on function private.list_redemptions(uuid, text, integer, bigint) is
  'Redemptions newest first, with delivery details and steps; a member may list only their own.';

revoke all on function private.list_redemptions(uuid, text, integer, bigint) from public;

grant execute on function private.list_redemptions(uuid, text, integer, bigint) to service_role, authenticated;

create or replace function public.redemption_queue(status text default 'pending', size integer default 25,
                                                   before_id bigint default null)
returns jsonb
language sql
stable
security invoker
set search_path = ''
as $$
  select private.list_redemptions(null, redemption_queue.status, redemption_queue.size, redemption_queue.before_id)
$$;

comment on function public.redemption_queue(text, integer, bigint) is
  'The admins'' queue: every member''s redemptions in a status (default pending; null for all), newest first: '
  '[{id, profile_id, display_name, item, item_name, category, status, delivery, points, created_at, steps: '
  '[{status, actor_id, actor_role, note, at}]}]. size 1 to 100, before_id pages back. Errors: 42501 unless an '
  'admin or service_role; XPBAD.';

revoke all on function public.redemption_queue(text, integer, bigint) from public, anon;

grant execute on function public.redemption_queue(text, integer, bigint) to service_role, authenticated;

create or replace function public.redemption_history(profile_id uuid default null, size integer default 25,
                                                     before_id bigint default null)
returns jsonb
language sql
stable
security invoker
set search_path = ''
as $$
  select private.list_redemptions(coalesce(redemption_history.profile_id, (select auth.uid())), null,
                                  redemption_history.size, redemption_history.before_id)
$$;

comment on function public.redemption_history(uuid, integer, bigint) is
  'One member''s redemptions (default: the caller''s), same rows as redemption_queue. Members read only their '
  'own (42501); admins and service_role anyone''s. Errors: 42501, XPBAD.';

revoke all on function public.redemption_history(uuid, integer, bigint) from public, anon;

grant execute on function public.redemption_history(uuid, integer, bigint) to service_role, authenticated;

------------------------------------------------------------------------------
-- Triggers
------------------------------------------------------------------------------
create or replace function private.tg_redemption_events__append_only()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  raise exception 'redemption_events is append-only: a step is a new row, never % it', lower(tg_op)
    using errcode = 'XPLED';
end
$$;

comment on function private.tg_redemption_events__append_only() is 'Refuses every update and delete of redemption steps.';

revoke all on function private.tg_redemption_events__append_only() from public;

drop trigger if exists _100_append_only on public.redemption_events;

create trigger _100_append_only before update or delete on public.redemption_events
  for each row execute function private.tg_redemption_events__append_only();

-- from supabase/sql/57_payments.sql -----------------------------------------

-- XP packages and store items paid with Razorpay. The service talks to Razorpay (orders, signature
-- checks, webhooks; service/payments.py); every decision is here: an order's amount comes from our rows
-- (never from the client), a captured payment credits exactly once (payments' primary key is the
-- Razorpay payment id, written in the same transaction as the award_xp of activity xp_purchase or the
-- item's grant), whichever of verify, webhook and reconciliation arrives first; a refund reverses the XP
-- and the points the payment earned, in proportion to the amount refunded, without taking either below
-- zero; webhooks are handled once per x-razorpay-event-id; open orders expire (a payment that still
-- arrives later is credited: the money was taken).
--
-- Lock order: payment order, then item, then profile.
--
-- Tables: public.xp_packages, public.payment_orders, public.payments, public.payment_refunds,
--   private.razorpay_webhook_events.
-- Tests: tests/sql/test_payments.py

------------------------------------------------------------------------------
-- Orders
------------------------------------------------------------------------------
create or replace function private.order_json(p_order public.payment_orders)
returns jsonb
language sql
stable
security definer
set search_path = ''
as $$
  select jsonb_build_object(
    'order_id', p_order.id, 'profile_id', p_order.profile_id, 'package', p_order.package_slug,
    'item', (select i.slug from public.store_items i where i.id = p_order.item_id),
    'xp', p_order.xp, 'amount_paise', p_order.amount_paise, 'currency', p_order.currency,
    'razorpay_order_id', p_order.razorpay_order_id, 'status', p_order.status, 'receipt', p_order.id::text,
    'expires_at', private.utc_text(p_order.expires_at), 'created_at', private.utc_text(p_order.created_at))
$$;

comment on function private.order_json(public.payment_orders) is
  'A payment order as the payment functions answer it: {order_id, profile_id, package, item, xp, amount_paise, '
  'currency, razorpay_order_id, status, receipt, expires_at, created_at}.';

revoke all on function private.order_json(public.payment_orders) from public;

create or replace function private.create_payment_order(
  profile_id uuid,
  package text,
  item text,
  ttl_seconds integer
)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_package public.xp_packages;
  v_item public.store_items;
  v_order public.payment_orders;
begin
  if (package is null) = (item is null) then
    raise exception 'Name exactly one of package and item' using errcode = 'XPBAD';
  end if;
  if ttl_seconds is null or ttl_seconds not between 60 and 86400 then
    raise exception 'ttl_seconds must be 60 to 86400' using errcode = 'XPBAD';
  end if;
  if not exists (select 1 from public.profiles p where p.id = create_payment_order.profile_id) then
    raise exception 'Unknown profile: %', create_payment_order.profile_id using errcode = 'XPPRF';
  end if;
  if package is not null then
    select * into v_package from public.xp_packages x where x.slug = package;
    if not found or not v_package.active then
      raise exception 'Unknown or inactive XP package: %', left(package, 64) using errcode = 'XPPKG';
    end if;
    insert into public.payment_orders (profile_id, package_slug, xp, amount_paise, currency, expires_at)
    values (create_payment_order.profile_id, v_package.slug, v_package.xp, v_package.amount_paise,
            v_package.currency, now() + make_interval(secs => ttl_seconds))
    returning * into v_order;
  else
    select * into v_item from public.store_items i where i.slug = item;
    if not found then
      raise exception 'Unknown item: %', left(item, 64) using errcode = 'XPITM';
    end if;
    if v_item.price_paise is null then
      raise exception 'Item % is sold for points only', v_item.slug using errcode = 'XPPRC';
    end if;
    if v_item.category in ('merchandise', 'gift_card', 'experience', 'service') then
      raise exception 'Item % needs delivery details: redeem it with points', v_item.slug using errcode = 'XPBAD';
    end if;
    perform private.check_item(v_item, create_payment_order.profile_id, 1);
    insert into public.payment_orders (profile_id, item_id, amount_paise, currency, expires_at)
    values (create_payment_order.profile_id, v_item.id, v_item.price_paise, 'INR',
            now() + make_interval(secs => ttl_seconds))
    returning * into v_order;
  end if;
  return private.order_json(v_order);
end
$$;

comment on function private.create_payment_order(uuid, text, text, integer) is 'Implementation of public.service_role_create_payment_order.';

revoke all on function private.create_payment_order(uuid, text, text, integer) from public;

grant execute on function private.create_payment_order(uuid, text, text, integer) to service_role;

create or replace function public.service_role_create_payment_order(
  profile_id uuid,
  package text default null,
  item text default null,
  ttl_seconds integer default 1800
)
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.create_payment_order(service_role_create_payment_order.profile_id, service_role_create_payment_order.package, service_role_create_payment_order.item, service_role_create_payment_order.ttl_seconds)
$$;

comment on function public.service_role_create_payment_order(uuid, text, text, integer) is
  'Step 1 of a payment: our order for a package (XP) or a store item with a rupee price, amount and currency '
  'from our rows, status new, expiring after ttl_seconds (60 to 86400). Returns the order (see '
  'private.order_json); receipt is the order id to send to Razorpay. Errors: XPPKG unknown or inactive package, '
  'XPITM unknown item, XPPRC points-only item, XPINA/XPTIR/XPLIM/XPSTK/XPFRZ (the item''s rules), XPPRF, XPBAD. '
  'service_role only.';

revoke all on function public.service_role_create_payment_order(uuid, text, text, integer) from public, anon, authenticated;

grant execute on function public.service_role_create_payment_order(uuid, text, text, integer) to service_role;

create or replace function private.attach_razorpay_order(
  order_id uuid,
  razorpay_order_id text,
  amount_paise integer,
  currency text
)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_order public.payment_orders;
begin
  if razorpay_order_id is null or length(razorpay_order_id) not between 1 and 64 then
    raise exception 'razorpay_order_id must be 1 to 64 characters' using errcode = 'XPBAD';
  end if;
  select * into v_order from public.payment_orders o where o.id = attach_razorpay_order.order_id for update;
  if not found then
    raise exception 'Unknown order: %', attach_razorpay_order.order_id using errcode = 'XPORD';
  end if;
  if v_order.status <> 'new' then
    raise exception 'Order % is already %', v_order.id, v_order.status using errcode = 'XPBAD';
  end if;
  if v_order.amount_paise is distinct from attach_razorpay_order.amount_paise
     or v_order.currency is distinct from attach_razorpay_order.currency then
    raise exception 'Razorpay order is for % % , ours for % %', attach_razorpay_order.amount_paise,
      attach_razorpay_order.currency, v_order.amount_paise, v_order.currency using errcode = 'XPAMM';
  end if;
  update public.payment_orders o
     set razorpay_order_id = attach_razorpay_order.razorpay_order_id, status = 'created', updated_at = now()
   where o.id = v_order.id
  returning * into v_order;
  return private.order_json(v_order);
end
$$;

comment on function private.attach_razorpay_order(uuid, text, integer, text) is 'Implementation of public.service_role_attach_razorpay_order.';

revoke all on function private.attach_razorpay_order(uuid, text, integer, text) from public;

grant execute on function private.attach_razorpay_order(uuid, text, integer, text) to service_role;

create or replace function public.service_role_attach_razorpay_order(
  order_id uuid,
  razorpay_order_id text,
  amount_paise integer,
  currency text
)
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.attach_razorpay_order(service_role_attach_razorpay_order.order_id, service_role_attach_razorpay_order.razorpay_order_id, service_role_attach_razorpay_order.amount_paise, service_role_attach_razorpay_order.currency)
$$;

comment on function public.service_role_attach_razorpay_order(uuid, text, integer, text) is
  'Step 2: records the Razorpay order created for our order (status created). Errors: XPORD unknown order, '
  'XPAMM Razorpay''s amount or currency differs from ours, XPBAD not a new order. service_role only.';

revoke all on function public.service_role_attach_razorpay_order(uuid, text, integer, text) from public, anon, authenticated;

grant execute on function public.service_role_attach_razorpay_order(uuid, text, integer, text) to service_role;

create or replace function private.fail_payment_order(order_id uuid, error text)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_order public.payment_orders;
begin
  update public.payment_orders o
     set status = 'failed', last_error = left(fail_payment_order.error, 500), updated_at = now()
   where o.id = fail_payment_order.order_id and o.status = 'new'
  returning * into v_order;
  if not found then
    raise exception 'No new order %', fail_payment_order.order_id using errcode = 'XPORD';
  end if;
  return private.order_json(v_order);
end
$$;

comment on function private.fail_payment_order(uuid, text) is 'Implementation of public.service_role_fail_payment_order.';

revoke all on function private.fail_payment_order(uuid, text) from public;

grant execute on function private.fail_payment_order(uuid, text) to service_role;

create or replace function public.service_role_fail_payment_order(order_id uuid, error text)
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.fail_payment_order(service_role_fail_payment_order.order_id, service_role_fail_payment_order.error)
$$;

comment on function public.service_role_fail_payment_order(uuid, text) is
  'Marks a new order failed when Razorpay refused to create it (error: its description, kept to 500 characters). '
  'Errors: XPORD no such new order. service_role only.';

revoke all on function public.service_role_fail_payment_order(uuid, text) from public, anon, authenticated;

grant execute on function public.service_role_fail_payment_order(uuid, text) to service_role;

------------------------------------------------------------------------------
-- Crediting a captured payment, exactly once
------------------------------------------------------------------------------
create or replace function private.capture_payment(
  p_razorpay_order_id text,
  p_payment_id text,
  p_amount_paise integer,
  p_source text,
  p_profile_id uuid
)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_order public.payment_orders;
  v_payment public.payments;
  v_item public.store_items;
  v_receipt jsonb;
  v_purchase_id bigint;
  v_fulfilled boolean := true;
  v_grants jsonb;
  v_xp integer := 0;
  v_points integer := 0;
begin
  if p_payment_id is null or length(p_payment_id) not between 1 and 64
     or p_razorpay_order_id is null or length(p_razorpay_order_id) not between 1 and 64 then
    raise exception 'order and payment ids must be 1 to 64 characters' using errcode = 'XPBAD';
  end if;
  select * into v_order from public.payment_orders o where o.razorpay_order_id = p_razorpay_order_id for update;
  if not found then
    raise exception 'Unknown Razorpay order: %', p_razorpay_order_id using errcode = 'XPORD';
  end if;
  if p_profile_id is not null and v_order.profile_id <> p_profile_id then
    raise exception 'Order % belongs to another member', p_razorpay_order_id using errcode = 'XPOWN';
  end if;
  -- The item's row lock (for an item), then the member's, before any insert that references the profile: a
  -- foreign key takes a key-share lock on it, and upgrading that to award_xp's update lock would deadlock with
  -- the member's other payments.
  if v_order.item_id is not null then
    select * into v_item from public.store_items i where i.id = v_order.item_id for update;
  end if;
  perform 1 from public.profiles p where p.id = v_order.profile_id for update;
  select * into v_payment from public.payments p where p.razorpay_payment_id = p_payment_id;
  if found then
    if v_payment.order_id <> v_order.id then
      raise exception 'Payment % belongs to another order', p_payment_id using errcode = 'XPORD';
    end if;
    return private.order_json(v_order) || jsonb_build_object(
      'payment_id', p_payment_id, 'credited', false, 'duplicate', true, 'source', v_payment.source,
      'xp_granted', v_payment.xp_granted, 'points_granted', v_payment.points_granted,
      'purchase_id', v_payment.purchase_id, 'fulfilled', v_payment.fulfilled);
  end if;
  if p_amount_paise is distinct from v_order.amount_paise then
    raise exception 'Payment % is for % paise, the order for %', p_payment_id, p_amount_paise, v_order.amount_paise
      using errcode = 'XPAMM';
  end if;

  insert into public.payments (razorpay_payment_id, order_id, profile_id, amount_paise, source)
  values (p_payment_id, v_order.id, v_order.profile_id, p_amount_paise, p_source);

  if v_order.package_slug is not null then
    v_receipt := private.award_xp(v_order.profile_id, 'xp_purchase', 'razorpay:' || p_payment_id, v_order.xp, now(),
                                  jsonb_build_object('order_id', v_order.id, 'razorpay_order_id', p_razorpay_order_id,
                                                     'payment_id', p_payment_id, 'package', v_order.package_slug));
    v_xp := (v_receipt ->> 'granted')::integer;
    v_points := (v_receipt ->> 'points_granted')::integer;
  else
    begin
      -- The item's rules at payment time; a payment for an item that sold out meanwhile is kept unfulfilled
      -- (to refund) rather than overselling.
      perform private.check_item(v_item, v_order.profile_id, 1);
    exception when sqlstate 'XPSTK' or sqlstate 'XPLIM' or sqlstate 'XPINA' or sqlstate 'XPFRZ' or sqlstate 'XPTIR' then
      v_fulfilled := false;
    end;
    if v_fulfilled then
      if v_item.stock is not null then
        update public.store_items i set stock = i.stock - 1, updated_at = now() where i.id = v_item.id;
      end if;
      insert into public.store_purchases (profile_id, item_id, price_paise, idempotency_key, payment_id, request)
      values (v_order.profile_id, v_item.id, v_order.amount_paise, 'razorpay:' || p_payment_id, p_payment_id,
              jsonb_build_object('fn', 'capture_payment', 'payment_id', p_payment_id))
      returning id into v_purchase_id;
      v_grants := private.grant_item(v_order.profile_id, v_item, v_purchase_id, '{}', 'service_role');
      update public.store_purchases sp set grants = jsonb_build_object('grants', v_grants) where sp.id = v_purchase_id;
    end if;
  end if;

  update public.payments p
     set xp_granted = v_xp, points_granted = v_points, xp_ledger_id = (v_receipt ->> 'ledger_id')::bigint,
         purchase_id = v_purchase_id, fulfilled = v_fulfilled
   where p.razorpay_payment_id = p_payment_id;
  update public.payment_orders o set status = 'paid', paid_at = coalesce(o.paid_at, now()), updated_at = now()
   where o.id = v_order.id
  returning * into v_order;
  insert into public.notifications (profile_id, kind, title, body, data)
  values (v_order.profile_id, 'payment_received',
          'Payment received: ₹' || to_char(p_amount_paise / 100.0, 'FM999999990.00'),
          case when v_order.package_slug is not null then v_xp || ' XP added.'
               when v_fulfilled then 'Your item is ready.'
               else 'The item sold out before your payment arrived; it will be refunded.' end,
          jsonb_build_object('order_id', v_order.id, 'payment_id', p_payment_id, 'amount_paise', p_amount_paise,
                             'xp_granted', v_xp, 'fulfilled', v_fulfilled));
  return private.order_json(v_order) || jsonb_build_object(
    'payment_id', p_payment_id, 'credited', true, 'duplicate', false, 'source', p_source,
    'xp_granted', v_xp, 'points_granted', v_points, 'purchase_id', v_purchase_id, 'fulfilled', v_fulfilled);
end
$$;

comment on function private.capture_payment(text, text, integer, text, uuid) is
  'Credits a captured Razorpay payment once (see the file header). p_profile_id, when given, must own the order '
  '(the verify path). Returns the order plus {payment_id, credited, duplicate, source, xp_granted, '
  'points_granted, purchase_id, fulfilled}. Errors: XPORD unknown order, XPOWN another member''s order, XPAMM '
  'amount differs from the order, XPBAD.';

revoke all on function private.capture_payment(text, text, integer, text, uuid) from public;

grant execute on function private.capture_payment(text, text, integer, text, uuid) to service_role;

create or replace function public.service_role_verify_payment(
  profile_id uuid,
  razorpay_order_id text,
  razorpay_payment_id text,
  amount_paise integer
)
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.capture_payment(service_role_verify_payment.razorpay_order_id,
                                 service_role_verify_payment.razorpay_payment_id,
                                 service_role_verify_payment.amount_paise, 'verify', service_role_verify_payment.profile_id)
$$;

comment on function public.service_role_verify_payment(uuid, text, text, integer) is
  'The checkout''s verify step, after the service checked razorpay_signature and fetched the payment from '
  'Razorpay (amount_paise, captured): credits it once for the member who owns the order. Same answer as '
  'private.capture_payment. Errors: XPORD, XPOWN, XPAMM, XPBAD. service_role only.';

revoke all on function public.service_role_verify_payment(uuid, text, text, integer) from public, anon, authenticated;

grant execute on function public.service_role_verify_payment(uuid, text, text, integer) to service_role;

create or replace function public.service_role_reconcile_payment(
  razorpay_order_id text,
  razorpay_payment_id text,
  amount_paise integer
)
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.capture_payment(service_role_reconcile_payment.razorpay_order_id,
                                 service_role_reconcile_payment.razorpay_payment_id,
                                 service_role_reconcile_payment.amount_paise, 'reconcile', null)
$$;

comment on function public.service_role_reconcile_payment(text, text, integer) is
  'Credits a captured payment the reconciliation job found by asking Razorpay (GET /v1/orders/:id/payments). '
  'Same answer and errors as service_role_verify_payment, without the owner check. service_role only.';

revoke all on function public.service_role_reconcile_payment(text, text, integer) from public, anon, authenticated;

grant execute on function public.service_role_reconcile_payment(text, text, integer) to service_role;

------------------------------------------------------------------------------
-- Refunds
------------------------------------------------------------------------------
create or replace function private.refund_payment(p_refund_id text, p_payment_id text, p_amount_paise integer)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_payment public.payments;
  v_refund public.payment_refunds;
  v_layer text;
  v_layer_xp bigint;
  v_xp_due integer;
  v_points_due integer;
  v_xp_take integer := 0;
  v_receipt jsonb;
  v_points jsonb;
begin
  if p_refund_id is null or length(p_refund_id) not between 1 and 64 then
    raise exception 'refund id must be 1 to 64 characters' using errcode = 'XPBAD';
  end if;
  select * into v_payment from public.payments p where p.razorpay_payment_id = p_payment_id;
  if not found then
    raise exception 'Unknown payment: %', p_payment_id using errcode = 'XPORD';
  end if;
  perform 1 from public.payment_orders o where o.id = v_payment.order_id for update;
  select * into v_payment from public.payments p where p.razorpay_payment_id = p_payment_id;
  select * into v_refund from public.payment_refunds r where r.razorpay_refund_id = p_refund_id;
  if found then
    return jsonb_build_object('refund_id', p_refund_id, 'payment_id', p_payment_id, 'duplicate', true,
                              'xp_reversed', v_refund.xp_reversed, 'points_reversed', v_refund.points_reversed,
                              'xp_floored', v_refund.xp_floored, 'points_floored', v_refund.points_floored);
  end if;
  if p_amount_paise is null or p_amount_paise <= 0 or v_payment.refunded_paise + p_amount_paise > v_payment.amount_paise then
    raise exception 'Refund of % paise exceeds what is left of payment % (% of %)', p_amount_paise, p_payment_id,
      v_payment.amount_paise - v_payment.refunded_paise, v_payment.amount_paise using errcode = 'XPAMM';
  end if;
  -- What this refund owes, in proportion: the cumulative share after it minus the share before it.
  v_xp_due := floor(v_payment.xp_granted::numeric * (v_payment.refunded_paise + p_amount_paise) / v_payment.amount_paise)
              - floor(v_payment.xp_granted::numeric * v_payment.refunded_paise / v_payment.amount_paise);
  v_points_due := floor(v_payment.points_granted::numeric * (v_payment.refunded_paise + p_amount_paise) / v_payment.amount_paise)
                  - floor(v_payment.points_granted::numeric * v_payment.refunded_paise / v_payment.amount_paise);
  if v_xp_due > 0 then
    perform 1 from public.profiles p where p.id = v_payment.profile_id for update;
    select l.layer_slug into v_layer from public.xp_ledger l where l.id = v_payment.xp_ledger_id;
    select coalesce(max(pl.xp), 0) into v_layer_xp from public.profile_layers pl
     where pl.profile_id = v_payment.profile_id and pl.layer_slug = v_layer;
    v_xp_take := least(v_xp_due, v_layer_xp);
    v_receipt := private.apply_xp(
      v_payment.profile_id, 'xp_purchase', jsonb_build_array(jsonb_build_object('layer', v_layer, 'amount', -v_xp_take)),
      now(), 'razorpay_refund:' || p_refund_id, null, 'service_role', 'Razorpay refund ' || p_refund_id,
      jsonb_build_object('fn', 'refund_payment', 'refund_id', p_refund_id, 'payment_id', p_payment_id,
                         'amount_paise', p_amount_paise),
      jsonb_build_object('correction', 'payment_refund', 'requested', -v_xp_due, 'base', -v_xp_due, 'multiplier', 1,
                         'multipliers', '[]'::jsonb, 'cooldown', false, 'cooldown_remaining_seconds', 0,
                         'capped', false, 'cap', null, 'floored', v_xp_take < v_xp_due,
                         'reverses_ledger_id', v_payment.xp_ledger_id));
  end if;
  if v_points_due > 0 then
    v_points := private.apply_points(
      v_payment.profile_id, 'reversal', -v_points_due, 'razorpay_refund:' || p_refund_id, null, 'service_role',
      'Razorpay refund ' || p_refund_id,
      jsonb_build_object('fn', 'refund_payment', 'refund_id', p_refund_id),
      jsonb_build_object('payment_id', p_payment_id, 'refund_id', p_refund_id), true);
  end if;
  insert into public.payment_refunds (razorpay_refund_id, razorpay_payment_id, profile_id, amount_paise, xp_reversed,
                                      points_reversed, xp_floored, points_floored, xp_ledger_id, points_ledger_id)
  values (p_refund_id, p_payment_id, v_payment.profile_id, p_amount_paise, v_xp_take,
          coalesce(-(v_points ->> 'amount')::integer, 0), v_xp_take < v_xp_due,
          coalesce((v_points ->> 'floored')::boolean, false), (v_receipt ->> 'ledger_id')::bigint,
          (v_points ->> 'points_ledger_id')::bigint)
  returning * into v_refund;
  update public.payments p
     set refunded_paise = p.refunded_paise + p_amount_paise,
         status = case when p.refunded_paise + p_amount_paise = p.amount_paise then 'refunded' else 'partially_refunded' end
   where p.razorpay_payment_id = p_payment_id;
  insert into public.notifications (profile_id, kind, title, body, data)
  values (v_payment.profile_id, 'payment_refunded',
          'Refund: ₹' || to_char(p_amount_paise / 100.0, 'FM999999990.00'),
          concat_ws(' ', v_refund.xp_reversed || ' XP and ' || v_refund.points_reversed || ' points taken back.',
                    case when v_refund.xp_floored or v_refund.points_floored
                         then 'You held less than the purchase gave, so less was taken back.' end),
          jsonb_build_object('refund_id', p_refund_id, 'payment_id', p_payment_id, 'amount_paise', p_amount_paise,
                             'xp_reversed', v_refund.xp_reversed, 'points_reversed', v_refund.points_reversed,
                             'xp_floored', v_refund.xp_floored, 'points_floored', v_refund.points_floored));
  return jsonb_build_object('refund_id', p_refund_id, 'payment_id', p_payment_id, 'duplicate', false,
                            'xp_reversed', v_refund.xp_reversed, 'points_reversed', v_refund.points_reversed,
                            'xp_floored', v_refund.xp_floored, 'points_floored', v_refund.points_floored);
end
$$;

comment on function private.refund_payment(text, text, integer) is
  'Applies a Razorpay refund once (keyed on its id): reverses floor(share) of the XP and points the payment '
  'earned, share = amount refunded / amount paid, each taken down to zero at most (xp_floored, points_floored), '
  'with an xp_ledger row (activity xp_purchase, key razorpay_refund:<id>) and a points_ledger reversal row, and a '
  'payment_refunded notification that says so. Items bought with rupees are not taken back. Returns {refund_id, '
  'payment_id, duplicate, xp_reversed, points_reversed, xp_floored, points_floored}. Errors: XPORD unknown '
  'payment, XPAMM more than what is left, XPBAD.';

revoke all on function private.refund_payment(text, text, integer) from public;

------------------------------------------------------------------------------
-- Webhooks
------------------------------------------------------------------------------
create or replace function private.payment_webhook(event_id text, event text, payload jsonb)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_entity jsonb;
  v_outcome jsonb;
  v_order public.payment_orders;
begin
  if event_id is null or length(event_id) not between 1 and 128 then
    raise exception 'x-razorpay-event-id must be 1 to 128 characters' using errcode = 'XPBAD';
  end if;
  if event is null or length(event) not between 1 and 64 or jsonb_typeof(payload) is distinct from 'object' then
    raise exception 'A webhook needs an event name and a payload object' using errcode = 'XPBAD';
  end if;
  insert into private.razorpay_webhook_events (event_id, event) values (event_id, event) on conflict do nothing;
  if not found then
    raise exception 'Webhook event % was already handled', event_id using errcode = 'XPWHR';
  end if;
  if event in ('payment.captured', 'order.paid') then
    v_entity := payload -> 'payment' -> 'entity';
    if v_entity ->> 'status' is distinct from 'captured' then
      v_outcome := jsonb_build_object('handled', false, 'reason', 'payment not captured');
    else
      v_outcome := private.capture_payment(v_entity ->> 'order_id', v_entity ->> 'id', (v_entity ->> 'amount')::integer,
                                           'webhook', null);
    end if;
  elsif event = 'payment.failed' then
    v_entity := payload -> 'payment' -> 'entity';
    update public.payment_orders o
       set status = case when o.status in ('new', 'created') then 'attempted' else o.status end,
           last_error = left(coalesce(v_entity ->> 'error_description', v_entity ->> 'error_code', 'payment failed'), 500),
           updated_at = now()
     where o.razorpay_order_id = v_entity ->> 'order_id'
    returning * into v_order;
    if not found then
      raise exception 'Unknown Razorpay order: %', v_entity ->> 'order_id' using errcode = 'XPORD';
    end if;
    v_outcome := private.order_json(v_order);
  elsif event = 'refund.processed' then
    v_entity := payload -> 'refund' -> 'entity';
    v_outcome := private.refund_payment(v_entity ->> 'id', v_entity ->> 'payment_id', (v_entity ->> 'amount')::integer);
  else
    v_outcome := jsonb_build_object('handled', false, 'reason', 'event not used');
  end if;
  update private.razorpay_webhook_events w set outcome = v_outcome where w.event_id = payment_webhook.event_id;
  return jsonb_build_object('event_id', event_id, 'event', event, 'outcome', v_outcome);
exception
  when invalid_text_representation or numeric_value_out_of_range then
    raise exception 'Malformed webhook payload: %', sqlerrm using errcode = 'XPBAD';
end
$$;

comment on function private.payment_webhook(text, text, jsonb) is 'Implementation of public.service_role_payment_webhook.';

revoke all on function private.payment_webhook(text, text, jsonb) from public;

grant execute on function private.payment_webhook(text, text, jsonb) to service_role;

create or replace function public.service_role_payment_webhook(event_id text, event text, payload jsonb)
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.payment_webhook(service_role_payment_webhook.event_id, service_role_payment_webhook.event, service_role_payment_webhook.payload)
$$;

comment on function public.service_role_payment_webhook(text, text, jsonb) is
  'A Razorpay webhook whose X-Razorpay-Signature the service checked: handled once per event_id '
  '(x-razorpay-event-id; a replay raises XPWHR and changes nothing). payment.captured and order.paid credit the '
  'payment (private.capture_payment), payment.failed marks the order attempted, refund.processed reverses '
  '(private.refund_payment); other events are recorded and ignored. Returns {event_id, event, outcome}. Errors: '
  'XPWHR replay, XPORD unknown order or payment, XPAMM amount differs, XPBAD malformed. service_role only.';

revoke all on function public.service_role_payment_webhook(text, text, jsonb) from public, anon, authenticated;

grant execute on function public.service_role_payment_webhook(text, text, jsonb) to service_role;

------------------------------------------------------------------------------
-- Expiry and reconciliation
------------------------------------------------------------------------------
create or replace function private.open_payment_orders(older_than_seconds integer,
                                                                   size integer)
returns jsonb
language sql
stable
security definer
set search_path = ''
as $$
  select coalesce(jsonb_agg(private.order_json(o) order by o.created_at), '[]')
    from (select * from public.payment_orders o
           where o.status in ('created', 'attempted') and o.razorpay_order_id is not null
             and o.created_at <= now() - make_interval(secs => greatest(coalesce(older_than_seconds, 900), 0))
           order by o.created_at
           limit least(greatest(coalesce(size, 100), 1), 1000)) o
$$;

comment on function private.open_payment_orders(integer, integer) is 'Implementation of public.service_role_open_payment_orders.';

revoke all on function private.open_payment_orders(integer, integer) from public;

grant execute on function private.open_payment_orders(integer, integer) to service_role;

create or replace function public.service_role_open_payment_orders(older_than_seconds integer default 900,
                                                                   size integer default 100)
returns jsonb
language sql
stable
security invoker
set search_path = ''
as $$
  select private.open_payment_orders(service_role_open_payment_orders.older_than_seconds, service_role_open_payment_orders.size)
$$;

comment on function public.service_role_open_payment_orders(integer, integer) is
  'Orders still waiting for a payment after older_than_seconds (default 900), oldest first, at most size (1 to '
  '1000): what the reconciliation job asks Razorpay about. Same shape as private.order_json. service_role only.';

revoke all on function public.service_role_open_payment_orders(integer, integer) from public, anon, authenticated;

grant execute on function public.service_role_open_payment_orders(integer, integer) to service_role;

create or replace function private.expire_payment_orders(at timestamptz)
returns integer
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_count integer;
begin
  update public.payment_orders o set status = 'expired', updated_at = now()
   where o.status in ('new', 'created', 'attempted') and o.expires_at <= coalesce(expire_payment_orders.at, now())
     and not exists (select 1 from public.payments p where p.order_id = o.id);
  get diagnostics v_count = row_count;
  return v_count;
end
$$;

comment on function private.expire_payment_orders(timestamp with time zone) is 'Implementation of public.service_role_expire_payment_orders.';

revoke all on function private.expire_payment_orders(timestamp with time zone) from public;

grant execute on function private.expire_payment_orders(timestamp with time zone) to service_role;

create or replace function public.service_role_expire_payment_orders(at timestamptz default null)
returns integer
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.expire_payment_orders(service_role_expire_payment_orders.at)
$$;

comment on function public.service_role_expire_payment_orders(timestamp with time zone) is
  'Expires the open orders past their expires_at (at, default now) that have no payment; returns how many. A '
  'payment captured later is still credited. service_role only.';

revoke all on function public.service_role_expire_payment_orders(timestamp with time zone) from public, anon, authenticated;

grant execute on function public.service_role_expire_payment_orders(timestamp with time zone) to service_role;

------------------------------------------------------------------------------
-- Reading
------------------------------------------------------------------------------
create or replace function public.payment_orders_of(profile_id uuid default null, size integer default 20)
returns jsonb
language plpgsql
stable
security invoker
set search_path = ''
as $$
declare
  v_profile uuid := coalesce(payment_orders_of.profile_id, (select auth.uid()));
begin
  if v_profile is null then
    raise exception 'profile_id is required' using errcode = 'XPBAD';
  end if;
  if size is null or size not between 1 and 100 then
    raise exception 'size must be 1 to 100' using errcode = 'XPBAD';
  end if;
  if (select auth.role()) is distinct from 'service_role' and v_profile is distinct from (select auth.uid()) then
    raise exception 'Members read only their own orders' using errcode = '42501';
  end if;
  return (
    select coalesce(jsonb_agg(jsonb_build_object(
             'order_id', o.id, 'package', o.package_slug, 'item', i.slug, 'xp', o.xp, 'amount_paise', o.amount_paise,
             'currency', o.currency, 'razorpay_order_id', o.razorpay_order_id, 'status', o.status,
             'created_at', to_char(o.created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
             'expires_at', to_char(o.expires_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
             'payments', (select coalesce(jsonb_agg(jsonb_build_object(
                                   'payment_id', p.razorpay_payment_id, 'amount_paise', p.amount_paise,
                                   'refunded_paise', p.refunded_paise, 'status', p.status, 'xp_granted', p.xp_granted,
                                   'fulfilled', p.fulfilled) order by p.created_at), '[]')
                            from public.payments p where p.order_id = o.id))
           order by o.created_at desc), '[]')
      from (select * from public.payment_orders o where o.profile_id = v_profile
             order by o.created_at desc limit size) o
      left join public.store_items i on i.id = o.item_id
  );
end
$$;

comment on function public.payment_orders_of(uuid, integer) is
  'A member''s payment orders, newest first, at most size (1 to 100): [{order_id, package, item, xp, '
  'amount_paise, currency, razorpay_order_id, status, created_at, expires_at (UTC), payments: [{payment_id, '
  'amount_paise, refunded_paise, status, xp_granted, fulfilled}]}]. profile_id defaults to the caller; members '
  'read only their own (42501); service_role anyone''s.';

revoke all on function public.payment_orders_of(uuid, integer) from public, anon;

grant execute on function public.payment_orders_of(uuid, integer) to authenticated, service_role;

-- from supabase/sql/91_discord_members.sql ----------------------------------

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
    'rank_card_style', v_profile.rank_card_style,
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
  'social_links, role, leaderboard_visible, created_at, xp, level, tier, tier_name, points, rank_card_style, level_xp (XP where '
  'the level starts), next_level_xp (null at the top of the curve), layers [{layer, name, xp, status, '
  'status_name}], unlocks [{tier, slug, name}], identities [provider], and the last `recent` (0-25) non-zero '
  'ledger entries [{activity, activity_name, layer, amount, occurred_at, reason}]. Errors: XPPRF when the user '
  'has no profile, XPBAD. service_role only.';

revoke all on function public.service_role_discord_member(text, integer) from public, anon, authenticated;

grant execute on function public.service_role_discord_member(text, integer) to service_role;
