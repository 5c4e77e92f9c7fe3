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
  if not private.is_service_role() and v_profile is distinct from (select auth.uid()) then
    raise exception 'Members read only their own points' using errcode = '42501';
  end if;
  -- The balance after the newest points-ledger row (members may not read profiles.points of the table).
  select coalesce((select l.balance_after from public.points_ledger l
                    where l.profile_id = p.id order by l.id desc limit 1), 0)
    into v_balance from public.profiles p where p.id = v_profile;
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
