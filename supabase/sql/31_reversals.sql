-- Reversals: take one ledger row back. A reversal is a new ledger row that names the row it reverses
-- (reverses_id) and undoes that row's effect on the member's totals, layer XP, season score, daily cap
-- usage and earned points, never an edit. service_role and admins.
--
-- Tables: none of its own (writes public.xp_ledger through the award path, public.points_ledger through
-- private.apply_points and private.daily_cap_usage).
-- Tests: tests/sql/test_reversals.py

create or replace function private.reverse_award(p_ledger_id bigint, p_reason text)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
-- The reversal's idempotency key is 'reverse:<ledger_id>' and its request names only the row, so a second
-- call (with any reason) answers the first reversal's receipt with replayed = true and changes nothing.
-- The reversal is dated at the original's occurred_at: it lands in the same season and the same daily cap
-- day as the row it reverses.
declare
  v_actor record;
  v_row public.xp_ledger;
  v_key text;
  v_request jsonb;
  v_receipt jsonb;
  v_points_reversed bigint;
  v_balance bigint;
begin
  select * into v_actor from private.assert_admin();
  if p_ledger_id is null then
    raise exception 'ledger_id is required' using errcode = 'XPBAD';
  end if;
  if p_reason is null or length(btrim(p_reason)) not between 1 and 500 then
    raise exception 'reason must be 1 to 500 characters' using errcode = 'XPBAD';
  end if;

  select * into v_row from public.xp_ledger l where l.id = p_ledger_id;
  if not found then
    raise exception 'No ledger row %', p_ledger_id using errcode = 'XPLGU';
  end if;
  v_key := 'reverse:' || p_ledger_id;
  v_request := jsonb_build_object('fn', 'reverse_award', 'ledger_id', p_ledger_id);

  -- The member's row lock first (the order every award path takes), then the key.
  perform 1 from public.profiles p where p.id = v_row.profile_id for update;
  perform pg_advisory_xact_lock(hashtextextended('xp_ledger:' || v_key, 0));
  v_receipt := private.find_receipt(v_key, v_request);
  if v_receipt is null then
    v_receipt := private.reverse_row(v_row, v_key, v_request, btrim(p_reason), v_actor.actor_id,
                                     v_actor.actor_role);
  end if;
  -- The points the reversal took back, read from the points ledger (the same answer on a replay).
  select -pl.amount, pl.balance_after into v_points_reversed, v_balance
    from public.points_ledger pl where pl.idempotency_key = v_key;
  return v_receipt || jsonb_build_object(
    'points_reversed', coalesce(v_points_reversed, 0),
    'points', coalesce(v_balance, (v_receipt ->> 'points')::bigint));
end
$$;
comment on function private.reverse_award(bigint, text) is 'Implementation of public.reverse_award.';
revoke all on function private.reverse_award(bigint, text) from public;
grant execute on function private.reverse_award(bigint, text) to service_role, authenticated;

create or replace function private.reverse_row(
  p_row public.xp_ledger,
  p_key text,
  p_request jsonb,
  p_reason text,
  p_actor_id uuid,
  p_actor_role text
)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
-- The caller holds the member's row lock and the key's lock, and has checked the key is new.
declare
  v_receipt jsonb;
  v_layer_xp bigint;
  v_amount bigint;
  v_floored boolean := false;
  v_cap_group public.cap_groups;
  v_earned bigint;
  v_net bigint;
begin
  if p_row.reverses_id is not null then
    raise exception 'Ledger row % is itself a reversal (of row %); award again instead of reversing it',
      p_row.id, p_row.reverses_id using errcode = 'XPREV';
  end if;
  if p_row.corrects_id is not null then
    raise exception 'Ledger row % corrects row % (a late award decided it again); reverse row % instead',
      p_row.id, p_row.corrects_id, p_row.corrects_id using errcode = 'XPREV';
  end if;
  -- What the row granted in the end: its amount and the corrections that decided it again (34_redecisions.sql).
  select p_row.amount + coalesce(sum(c.amount), 0) into v_net
    from public.xp_ledger c where c.corrects_id = p_row.id;
  if v_net = 0 then
    raise exception 'Ledger row % granted no XP; there is nothing to reverse', p_row.id
      using errcode = 'XPREV';
  end if;

  -- Layer XP never goes below zero: when later penalties already took part of this row's XP, the
  -- reversal takes what is left and says so (floored).
  select coalesce(max(pl.xp), 0) into v_layer_xp from public.profile_layers pl
   where pl.profile_id = p_row.profile_id and pl.layer_slug = p_row.layer_slug;
  v_amount := -v_net;
  if v_layer_xp + v_amount < 0 then
    v_amount := -v_layer_xp;
    v_floored := true;
  end if;

  -- The daily cap usage the row counted for is given back (or, for a reversed penalty, taken again).
  select c.* into v_cap_group
    from public.activity_types a join public.cap_groups c on c.slug = a.cap_group
   where a.slug = p_row.activity_slug;
  if found and v_amount <> 0 then
    update private.daily_cap_usage u
       set used = u.used + v_amount
     where u.profile_id = p_row.profile_id and u.cap_group = v_cap_group.slug
       and u.day = (p_row.occurred_at at time zone v_cap_group.time_zone)::date;
  end if;

  v_receipt := private.apply_xp(
    p_row.profile_id, p_row.activity_slug,
    jsonb_build_array(jsonb_build_object('layer', p_row.layer_slug, 'amount', v_amount)),
    p_row.occurred_at, p_key, p_actor_id, p_actor_role, p_reason, p_request,
    jsonb_build_object('correction', 'reverse_award', 'reverses_id', p_row.id, 'requested', -v_net,
                       'base', -v_net, 'multiplier', 1, 'multipliers', '[]'::jsonb, 'cooldown', false,
                       'cooldown_remaining_seconds', 0, 'capped', false, 'cap', null, 'floored', v_floored,
                       'actor_id', p_actor_id, 'actor_role', p_actor_role));

  -- The points the row earned go too, as far as the balance holds them (points already spent stay spent).
  -- The row's own earned points, and what the corrections that decided it again added or took back.
  select coalesce(sum(pl.amount), 0)
         + coalesce((select sum(cp.amount) from public.xp_ledger c
                       join public.points_ledger cp on cp.idempotency_key = c.idempotency_key
                      where c.corrects_id = p_row.id), 0)
    into v_earned
    from public.points_ledger pl where pl.xp_ledger_id = p_row.id and pl.kind = 'earned';
  if v_earned > 0 then
    perform private.apply_points(
      p_row.profile_id, 'reversal', -v_earned, p_key, p_actor_id, p_actor_role, p_reason, p_request,
      jsonb_build_object('xp_ledger_id', p_row.id), true);
  end if;
  return v_receipt;
end
$$;
comment on function private.reverse_row(public.xp_ledger, text, jsonb, text, uuid, text) is
  'Writes the reversal of one ledger row (private.reverse_award has checked the caller and holds the locks): '
  'the opposite amount on the same layer at the same occurred_at, floored at zero layer XP, the daily cap '
  'usage given back, the earned points taken back as far as the balance holds them. Returns the receipt. '
  'Errors: XPREV the row is a reversal or a correction itself, or granted nothing in the end.';
revoke all on function private.reverse_row(public.xp_ledger, text, jsonb, text, uuid, text) from public;

create or replace function public.reverse_award(ledger_id bigint, reason text)
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.reverse_award(reverse_award.ledger_id, reverse_award.reason)
$$;
comment on function public.reverse_award(bigint, text) is
  'Reverses one ledger row: appends a row with reverses_id = ledger_id and the opposite amount (XP) on the '
  'same layer, dated at the original''s occurred_at (so it lands in the same season and daily cap day), '
  'gives back the daily cap usage and takes back the points the row earned (as far as the balance holds '
  'them: points_reversed). The layer''s XP never goes below zero (floored). reason: 1-500 characters, '
  'stored on the row. Idempotent: a second call answers the first receipt (replayed = true). Returns the '
  'award receipt with correction = ''reverse_award'', reverses_id, actor_id, actor_role, points_reversed. '
  'Errors: 42501 unless service_role or an admin member, XPLGU no such ledger row, XPREV the row is a '
  'reversal or a correction of a late award itself (reverse the award it corrects), or granted nothing in the end (its amount plus its corrections), XPBAD missing id or bad reason.';
revoke all on function public.reverse_award(bigint, text) from public, anon;
grant execute on function public.reverse_award(bigint, text) to service_role, authenticated;
