-- Group commit of awards (issue 16 item 2): service_role_award_group runs many award calls (award_xp and
-- the bot's passive discord_award) in one transaction and answers per call either its receipt or its error;
-- a failing call changes nothing, the others commit together. xpbase/group_commit.py merges award calls that
-- arrive within a few milliseconds into one such call and hands each caller its answer after the commit.
-- Unlike service_role_award_xp_batch (38_rule_packs.sql: all or nothing, summary rows) it is made for
-- unrelated callers sharing a transaction: one caller's bad award must not fail the others.
--
-- Tables: none (writes through private.award_set, private.award_xp and private.discord_award).
-- Tests: tests/sql/test_award_group.py, tests/xpbase/test_group_commit.py
--
-- How: the group is first decided as one batch by private.award_set (39_award_set.sql: the awards as a set,
-- with award_xp's receipts), in one subtransaction. When a call fails there, that subtransaction is rolled
-- back and the group is decided call by call, each call in its own subtransaction, so that each failing call
-- answers its own error and the others still commit. Both give the answers award_xp gives the calls one at a
-- time in array order (tests/sql/test_award_group.py holds them together). A rolled-back set attempt leaves
-- gaps in the ledger's and seasons' ids (sequences do not roll back).

create or replace function private.award_group_set(p_calls jsonb)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_call jsonb;
  v_index integer := 0;
  v_award jsonb;
  v_items jsonb[] := '{}';
  -- Per call (from 1): its item's position in v_items (null for a skipped call), and its answer.
  v_item_of integer[] := array_fill(null::integer, array[jsonb_array_length(p_calls)]);
  v_answers jsonb[] := array_fill(null::jsonb, array[jsonb_array_length(p_calls)]);
  v_row record;
begin
  -- Only calls that private.award_group's own checks would pass; anything else is decided call by call, where
  -- it answers its own error.
  if exists (
    select 1 from jsonb_array_elements(p_calls) as c
     where jsonb_typeof(c.value) <> 'object'
        or coalesce(c.value ->> 'fn', '') not in ('award_xp', 'discord_award')
        or octet_length(c.value::text) > 16384
        or exists (select 1 from jsonb_object_keys(c.value) k
                    where k <> all (case when c.value ->> 'fn' = 'award_xp'
                                         then array['fn', 'profile_id', 'activity', 'idempotency_key', 'amount',
                                                    'occurred_at', 'context', 'reason']
                                         else array['fn', 'guild_id', 'user_id', 'display_name', 'activity',
                                                    'idempotency_key', 'occurred_at', 'channel_id', 'role_ids']
                                    end))
        or (c.value ->> 'fn' = 'discord_award' and jsonb_typeof(c.value -> 'role_ids') not in ('array', 'null'))
  ) then
    return null;
  end if;

  for v_call in select c.value from jsonb_array_elements(p_calls) with ordinality as c order by c.ordinality loop
    v_index := v_index + 1;
    if v_call ->> 'fn' = 'award_xp' then
      v_items := v_items || (v_call - 'fn' || jsonb_build_object(
                               'context', coalesce(nullif(v_call -> 'context', 'null'), '{}')));
      v_item_of[v_index] := cardinality(v_items);
    else
      v_award := private.discord_award_prepare(
        v_call ->> 'guild_id', v_call ->> 'user_id', v_call ->> 'display_name', v_call ->> 'activity',
        v_call ->> 'idempotency_key', v_call ->> 'channel_id',
        array(select jsonb_array_elements_text(coalesce(nullif(v_call -> 'role_ids', 'null'), '[]'))));
      if v_award ? 'skipped' then
        v_answers[v_index] := jsonb_build_object('fn', 'discord_award', 'ok', true, 'receipt', v_award -> 'skipped');
      else
        v_items := v_items || jsonb_build_object(
          'profile_id', v_award ->> 'profile_id', 'activity', v_call -> 'activity',
          'idempotency_key', v_call -> 'idempotency_key',
          'occurred_at', to_jsonb((v_call ->> 'occurred_at')::timestamptz), 'context', v_award -> 'context');
        v_item_of[v_index] := cardinality(v_items);
      end if;
    end if;
  end loop;

  for v_row in select a.ord, a.receipt from private.award_set(to_jsonb(v_items)) as a loop
    v_index := array_position(v_item_of, v_row.ord);
    v_answers[v_index] := jsonb_build_object(
      'fn', p_calls -> (v_index - 1) ->> 'fn', 'ok', true,
      'receipt', case when p_calls -> (v_index - 1) ->> 'fn' = 'discord_award'
                      then v_row.receipt || jsonb_build_object('skipped', null)
                      else v_row.receipt end);
  end loop;
  return to_jsonb(v_answers);
end
$$;
comment on function private.award_group_set(jsonb) is
  'The group commit''s set path: decides every call of p_calls (service_role_award_group''s calls) as one '
  'private.award_set batch (a discord_award call through private.discord_award_prepare first) and returns the '
  'answers array ({fn, ok: true, receipt} per call, in order); null, having done nothing, when a call is not '
  'an object with fn award_xp or discord_award and its known keys, or is over 16 KiB. Raises the first '
  'failing call''s error (award_set''s awards[<index>] message): private.award_group then rolls it back and '
  'decides the group call by call.';
revoke all on function private.award_group_set(jsonb) from public;

create or replace function private.award_group(p_calls jsonb)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_call jsonb;
  v_fn text;
  v_receipt jsonb;
  v_answers jsonb[] := '{}';
  v_set jsonb;
  v_state text;
  v_message text;
  v_detail text;
begin
  if p_calls is null or jsonb_typeof(p_calls) <> 'array' then
    raise exception 'calls must be a JSON array' using errcode = 'XPBAD';
  end if;
  if jsonb_array_length(p_calls) > 500 then
    raise exception 'calls may hold at most 500 items, got %', jsonb_array_length(p_calls) using errcode = 'XPBIG';
  end if;

  -- Lock order (as in service_role_award_xp_batch): every existing profile the group names, in profile id
  -- order, before the first award, so two groups over the same members in opposite orders wait for each
  -- other instead of deadlocking. Taken here, outside the calls' subtransactions, so a call that fails
  -- does not release them. A discord_award's profile is its discord identity's (none yet on first sight:
  -- ensure_profile makes it inside the call).
  perform 1 from public.profiles p
   where p.id in (
           select (c.value ->> 'profile_id')::uuid from jsonb_array_elements(p_calls) as c
            where c.value ->> 'fn' = 'award_xp'
              and c.value ->> 'profile_id' ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
           union
           select i.profile_id from jsonb_array_elements(p_calls) as c
             join public.identities i on i.provider = 'discord' and i.subject = c.value ->> 'user_id'
            where c.value ->> 'fn' = 'discord_award')
   order by p.id
     for update;

  -- The set path: the whole group as one batch. Any failing call rolls it back (one subtransaction) and the
  -- group is decided call by call below. Errors that are not a call's fault fail the group as below.
  begin
    v_set := private.award_group_set(p_calls);
  exception when others then
    get stacked diagnostics v_state = returned_sqlstate;
    if left(v_state, 2) in ('40', '53', '55', '57', '58', '08', 'XX') then
      raise;
    end if;
    v_set := null;
  end;
  -- Which path decided the group, for the transaction (tests and benchmarks read it): set or calls.
  perform set_config('xpbase.award_group_path', case when v_set is not null then 'set' else 'calls' end, true);
  if v_set is not null then
    return v_set;
  end if;

  for v_call in select c.value from jsonb_array_elements(p_calls) with ordinality as c order by c.ordinality loop
    v_fn := case when jsonb_typeof(v_call) = 'object' then v_call ->> 'fn' end;
    -- One subtransaction per call: whatever it wrote is undone when it fails, and only it answers the error.
    begin
      if jsonb_typeof(v_call) <> 'object' then
        raise exception 'each call must be a JSON object' using errcode = 'XPBAD';
      end if;
      -- Bounded per call, so that one caller's oversized call fails alone (award_xp's context: 4096 bytes).
      perform private.assert_json_size(v_call, 'a call', 16384);
      if v_fn = 'award_xp' then
        if exists (select 1 from jsonb_object_keys(v_call) k
                    where k not in ('fn', 'profile_id', 'activity', 'idempotency_key', 'amount', 'occurred_at',
                                    'context', 'reason')) then
          raise exception 'unknown key in an award_xp call; allowed: fn, profile_id, activity, idempotency_key, '
                          'amount, occurred_at, context, reason'
            using errcode = 'XPBAD';
        end if;
        v_receipt := private.award_xp(
          (v_call ->> 'profile_id')::uuid,
          v_call ->> 'activity',
          v_call ->> 'idempotency_key',
          (v_call ->> 'amount')::integer,
          (v_call ->> 'occurred_at')::timestamptz,
          coalesce(nullif(v_call -> 'context', 'null'), '{}'),
          v_call ->> 'reason');
      elsif v_fn = 'discord_award' then
        if exists (select 1 from jsonb_object_keys(v_call) k
                    where k not in ('fn', 'guild_id', 'user_id', 'display_name', 'activity', 'idempotency_key',
                                    'occurred_at', 'channel_id', 'role_ids')) then
          raise exception 'unknown key in a discord_award call; allowed: fn, guild_id, user_id, display_name, '
                          'activity, idempotency_key, occurred_at, channel_id, role_ids'
            using errcode = 'XPBAD';
        end if;
        if jsonb_typeof(v_call -> 'role_ids') not in ('array', 'null') then
          raise exception 'role_ids must be an array of ids' using errcode = 'XPBAD';
        end if;
        v_receipt := private.discord_award(
          v_call ->> 'guild_id',
          v_call ->> 'user_id',
          v_call ->> 'display_name',
          v_call ->> 'activity',
          v_call ->> 'idempotency_key',
          (v_call ->> 'occurred_at')::timestamptz,
          v_call ->> 'channel_id',
          array(select jsonb_array_elements_text(coalesce(nullif(v_call -> 'role_ids', 'null'), '[]'))));
      else
        raise exception 'fn must be award_xp or discord_award, got %', coalesce(v_fn, 'null') using errcode = 'XPBAD';
      end if;
      v_answers := v_answers || jsonb_build_object('fn', v_fn, 'ok', true, 'receipt', v_receipt);
    exception when others then
      get stacked diagnostics v_state = returned_sqlstate, v_message = message_text, v_detail = pg_exception_detail;
      -- Not the call's fault: a deadlock or serialization failure (class 40: the whole group runs again),
      -- lack of resources (53), a lock not available (55), the server going away (57, 58, 08) or an internal
      -- error (XX) fail the whole group, so nothing of it commits. (query_canceled is never caught here.)
      if left(v_state, 2) in ('40', '53', '55', '57', '58', '08', 'XX') then
        raise;
      end if;
      if v_state in ('22P02', '22007', '22008', '22003', '22023') then
        v_state := 'XPBAD';  -- a malformed uuid, timestamp or integer in the call
      end if;
      v_answers := v_answers || jsonb_build_object(
        'fn', v_fn, 'ok', false,
        'error', jsonb_build_object('sqlstate', v_state, 'message', v_message, 'detail', nullif(v_detail, '')));
    end;
  end loop;
  return to_jsonb(v_answers);
end
$$;
comment on function private.award_group(jsonb) is 'Implementation of public.service_role_award_group.';
revoke all on function private.award_group(jsonb) from public;
grant execute on function private.award_group(jsonb) to service_role;

create or replace function public.service_role_award_group(calls jsonb)
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.award_group(service_role_award_group.calls)
$$;
comment on function public.service_role_award_group(jsonb) is
  'Group commit of award calls: calls is a JSON array (at most 500 items, each at most 16 KiB as JSON text) of '
  '{fn: "award_xp", profile_id, activity, idempotency_key, amount?, occurred_at?, context?, reason?} (the '
  'parameters of public.award_xp) or {fn: "discord_award", guild_id, user_id, display_name, activity, '
  'idempotency_key, occurred_at?, channel_id?, role_ids?} (those of public.service_role_discord_award). '
  'The group is decided as one batch by private.award_set (award_xp''s rules and receipts, as a set); when a '
  'call fails there, the group is decided again call by call, each in its own subtransaction, in array '
  'order. Either way each call answers what award_xp (or service_role_discord_award) answers it one at a '
  'time in array order; the answer is a JSON array with one item per call, in order: {fn, ok: true, receipt} '
  '(the receipt that function returns, replayed = true for a used key) or {fn, ok: false, error: {sqlstate, '
  'message, detail}} (XPIDM, XPACT, XPAMT, XPPRF, XPSUS, XPBAD, XPTIM, XPINF, XPBIG ...; a malformed uuid, '
  'time or integer is XPBAD); a failed call changed nothing. The whole call fails (nothing commits) for '
  'calls that is not an array (XPBAD) or holds more than 500 calls (XPBIG), and for errors that are not a '
  'call''s fault: deadlock or serialization failure (40P01, 40001: run it again), resources, lock or server '
  'errors. '
  'Sets xpbase.award_group_path for the transaction to set or calls (which path decided the group). '
  'Locks every existing profile it names in profile id order before the first call and holds the locks '
  'until it commits. The receipts are durable only once the transaction commits. service_role only.';
revoke all on function public.service_role_award_group(jsonb) from public, anon, authenticated;
grant execute on function public.service_role_award_group(jsonb) to service_role;
