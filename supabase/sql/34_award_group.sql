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
-- with award_xp's receipts), in one subtransaction. When a call is refused there, that attempt is rolled back
-- and the group is split around the first refused call: the calls before it are decided again as one batch,
-- the refused call alone in its own subtransaction (where it answers its own error), and the calls after it
-- go round again. After two refused attempts the rest is decided call by call, and so is any batch of fewer
-- than 6 calls (as a set it would cost more than its calls one by one). Every way gives the answers
-- award_xp gives the calls one at a time in array order (tests/sql/test_award_group.py holds them together).
-- A rolled-back set attempt leaves gaps in the ledger's and seasons' ids (sequences do not roll back).

create or replace function private.award_group_keys(p_fn text)
returns text[]
language sql
immutable
security definer
set search_path = ''
as $$
  select case p_fn
           when 'award_xp' then array['fn', 'profile_id', 'activity', 'idempotency_key', 'amount', 'occurred_at',
                                      'context', 'reason']
           when 'discord_award' then array['fn', 'guild_id', 'user_id', 'display_name', 'activity',
                                           'idempotency_key', 'occurred_at', 'channel_id', 'role_ids']
         end
$$;
comment on function private.award_group_keys(text) is
  'The keys a service_role_award_group call of fn p_fn may hold (award_xp: those of public.award_xp; '
  'discord_award: those of public.service_role_discord_award), in the order error messages list them; null '
  'for any other fn.';
revoke all on function private.award_group_keys(text) from public;

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
  v_deciding boolean := false;
  v_refused integer;
  v_state text;
  v_message text;
begin
  -- The first call that private.award_group_call's own checks would refuse (not an object with fn award_xp
  -- or discord_award and its known keys, over 16 KiB, role_ids not an array): the calls before it can go.
  select min(c.ordinality) - 1 into v_refused
    from jsonb_array_elements(p_calls) with ordinality as c
   where jsonb_typeof(c.value) <> 'object'
      or coalesce(c.value ->> 'fn', '') not in ('award_xp', 'discord_award')
      or octet_length(c.value::text) > 16384
      -- (a non-object reads as {} here, so that this part cannot raise whatever order the ORs run in)
      or exists (select 1 from jsonb_object_keys(case when jsonb_typeof(c.value) = 'object' then c.value
                                                      else '{}' end) k
                  where k <> all (private.award_group_keys(c.value ->> 'fn')))
      or (c.value ->> 'fn' = 'discord_award' and jsonb_typeof(c.value -> 'role_ids') not in ('array', 'null'));
  if v_refused is not null then
    return jsonb_build_object('refused', v_refused);
  end if;

  -- One subtransaction: a refused call rolls back everything the attempt wrote.
  begin
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
          v_answers[v_index] := jsonb_build_object('fn', 'discord_award', 'ok', true,
                                                   'receipt', v_award -> 'skipped');
        else
          v_items := v_items || jsonb_build_object(
            'profile_id', v_award ->> 'profile_id', 'activity', v_call -> 'activity',
            'idempotency_key', v_call -> 'idempotency_key',
            'occurred_at', to_jsonb((v_call ->> 'occurred_at')::timestamptz), 'context', v_award -> 'context');
          v_item_of[v_index] := cardinality(v_items);
        end if;
      end if;
    end loop;

    v_deciding := true;
    for v_row in select a.ord, a.receipt from private.award_set(to_jsonb(v_items), p_fail_fast => true) as a loop
      v_index := array_position(v_item_of, v_row.ord);
      v_answers[v_index] := jsonb_build_object(
        'fn', p_calls -> (v_index - 1) ->> 'fn', 'ok', true,
        'receipt', case when p_calls -> (v_index - 1) ->> 'fn' = 'discord_award'
                        then v_row.receipt || jsonb_build_object('skipped', null)
                        else v_row.receipt end);
    end loop;
  exception when others then
    get stacked diagnostics v_state = returned_sqlstate, v_message = message_text;
    -- Not a call's fault (as in private.award_group_call): the whole group fails.
    if left(v_state, 2) in ('40', '53', '55', '57', '58', '08', 'XX') then
      raise;
    end if;
    -- The refused call: the one being prepared, or the one whose item award_set names (awards[<index from
    -- 0>]: ..., its first failing item in array order, found without deciding the items before it: fail
    -- fast); the first call when it names none.
    return jsonb_build_object('refused', coalesce(
      case when not v_deciding then v_index
           else array_position(v_item_of, (substring(v_message from '^awards\[([0-9]+)\]'))::integer + 1) end - 1,
      0));
  end;
  return jsonb_build_object('answers', to_jsonb(v_answers));
end
$$;
comment on function private.award_group_set(jsonb) is
  'The group commit''s set path: decides every call of p_calls (service_role_award_group''s calls) as one '
  'private.award_set batch (a discord_award call through private.discord_award_prepare first). Returns '
  '{answers: [{fn, ok: true, receipt}, ...]} (one per call, in order), or {refused: k}, having changed nothing, '
  'when a call is refused: k (from 0) is the first call refused in array order (award_set''s first failing '
  'item, or a call private.award_group_call''s checks refuse); the calls before it would all pass. Raises '
  'errors that are not a call''s fault (classes 40, 53, 55, 57, 58, 08, XX).';
revoke all on function private.award_group_set(jsonb) from public;

create or replace function private.award_group_call(p_call jsonb)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_fn text := case when jsonb_typeof(p_call) = 'object' then p_call ->> 'fn' end;
  v_receipt jsonb;
  v_state text;
  v_message text;
  v_detail text;
begin
  -- One subtransaction: whatever the call wrote is undone when it fails, and only it answers the error.
  begin
    if jsonb_typeof(p_call) <> 'object' then
      raise exception 'each call must be a JSON object' using errcode = 'XPBAD';
    end if;
    -- Bounded per call, so that one caller's oversized call fails alone (award_xp's context: 4096 bytes).
    perform private.assert_json_size(p_call, 'a call', 16384);
    if v_fn in ('award_xp', 'discord_award')
       and exists (select 1 from jsonb_object_keys(p_call) k where k <> all (private.award_group_keys(v_fn))) then
      raise exception 'unknown key in % call; allowed: %',
                      case v_fn when 'award_xp' then 'an award_xp' else 'a discord_award' end,
                      array_to_string(private.award_group_keys(v_fn), ', ')
        using errcode = 'XPBAD';
    end if;
    if v_fn = 'award_xp' then
      v_receipt := private.award_xp(
        (p_call ->> 'profile_id')::uuid,
        p_call ->> 'activity',
        p_call ->> 'idempotency_key',
        (p_call ->> 'amount')::integer,
        (p_call ->> 'occurred_at')::timestamptz,
        coalesce(nullif(p_call -> 'context', 'null'), '{}'),
        p_call ->> 'reason');
    elsif v_fn = 'discord_award' then
      if jsonb_typeof(p_call -> 'role_ids') not in ('array', 'null') then
        raise exception 'role_ids must be an array of ids' using errcode = 'XPBAD';
      end if;
      v_receipt := private.discord_award(
        p_call ->> 'guild_id',
        p_call ->> 'user_id',
        p_call ->> 'display_name',
        p_call ->> 'activity',
        p_call ->> 'idempotency_key',
        (p_call ->> 'occurred_at')::timestamptz,
        p_call ->> 'channel_id',
        array(select jsonb_array_elements_text(coalesce(nullif(p_call -> 'role_ids', 'null'), '[]'))));
    else
      raise exception 'fn must be award_xp or discord_award, got %', coalesce(v_fn, 'null') using errcode = 'XPBAD';
    end if;
    return jsonb_build_object('fn', v_fn, 'ok', true, 'receipt', v_receipt);
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
    return jsonb_build_object(
      'fn', v_fn, 'ok', false,
      'error', jsonb_build_object('sqlstate', v_state, 'message', v_message, 'detail', nullif(v_detail, '')));
  end;
end
$$;
comment on function private.award_group_call(jsonb) is
  'One call of service_role_award_group decided alone, in its own subtransaction: {fn, ok: true, receipt} (what '
  'private.award_xp or private.discord_award returns) or {fn, ok: false, error: {sqlstate, message, detail}} '
  'having changed nothing (a malformed uuid, time or integer is XPBAD). Raises errors that are not the call''s '
  'fault (classes 40, 53, 55, 57, 58, 08, XX).';
revoke all on function private.award_group_call(jsonb) from public;

create or replace function private.award_group(p_calls jsonb)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_n integer;
  v_at integer := 0;      -- the calls before this one (from 0) have their answers
  v_end integer;
  v_refusals integer := 0;
  v_batches integer := 0;
  v_alone integer := 0;
  v_set jsonb;
  v_answers jsonb := '[]';
begin
  if p_calls is null or jsonb_typeof(p_calls) <> 'array' then
    raise exception 'calls must be a JSON array' using errcode = 'XPBAD';
  end if;
  v_n := jsonb_array_length(p_calls);
  if v_n > 500 then
    raise exception 'calls may hold at most 500 items, got %', v_n using errcode = 'XPBIG';
  end if;
  v_end := v_n;

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

  -- The calls left as one set batch, [v_at, v_end). When one is refused, the calls before it go as a batch
  -- (they would all pass), then the refused call alone (it answers its own error, or its receipt when only
  -- the set path refused it), then the rest as a batch again. Call by call instead (each in its own
  -- subtransaction, private.award_group_call): a batch of fewer than 6 calls, and the rest after two refused
  -- attempts. private.award_set costs about 7 ms a call whatever its size (it plans its statements for the
  -- batch), a refused attempt about 5 ms, an award_xp call about 2 ms: past that, splitting costs more than
  -- it saves (bench/README.md, "Refused calls and small groups").
  while v_at < v_n loop
    if v_at = v_end then
      v_answers := v_answers || jsonb_build_array(private.award_group_call(p_calls -> v_at));
      v_alone := v_alone + 1;
      v_at := v_at + 1;
      v_end := v_n;
    elsif v_end - v_at < 6 or (v_end = v_n and v_refusals >= 2) then
      while v_at < v_end loop
        v_answers := v_answers || jsonb_build_array(private.award_group_call(p_calls -> v_at));
        v_alone := v_alone + 1;
        v_at := v_at + 1;
      end loop;
    else
      v_set := private.award_group_set((select jsonb_agg(c.value order by c.ordinality)
                                          from jsonb_array_elements(p_calls) with ordinality as c
                                         where c.ordinality > v_at and c.ordinality <= v_end));
      if v_set ? 'answers' then
        v_answers := v_answers || (v_set -> 'answers');
        v_batches := v_batches + 1;
        v_at := v_end;
      else
        v_refusals := v_refusals + 1;
        v_end := v_at + (v_set ->> 'refused')::integer;
      end if;
    end if;
  end loop;
  -- How the group was decided, for the transaction (tests and benchmarks read it): set (one batch), split
  -- (batches and calls decided alone) or calls (every call alone).
  perform set_config('xpbase.award_group_path',
                     case when v_alone = 0 then 'set' when v_batches = 0 then 'calls' else 'split' end, true);
  return v_answers;
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
  'Group commit of award calls: calls is a JSON array (at most 500 items, each at most 16 KiB as JSON text) '
  'of {fn: "award_xp", profile_id, activity, idempotency_key, amount?, occurred_at?, context?, reason?} (the '
  'parameters of public.award_xp) or {fn: "discord_award", guild_id, user_id, display_name, activity, '
  'idempotency_key, occurred_at?, channel_id?, role_ids?} (those of public.service_role_discord_award). The '
  'group is decided as one batch by private.award_set (award_xp''s rules and receipts, as a set); when a call'
  ' is refused there, the calls before it are decided again as a batch, the refused call alone in its own '
  'subtransaction, and the calls after it likewise; after two refused attempts the rest is decided call by '
  'call, each in its own subtransaction, in array order, and so is a batch of fewer than 6 calls. Every way '
  'each call answers what award_xp (or service_role_discord_award) answers it one at a time in array order; '
  'the answer is a JSON array with one item per call, in order: {fn, ok: true, receipt} (the receipt that '
  'function returns, replayed = true for a used key) or {fn, ok: false, error: {sqlstate, message, detail}} '
  '(XPIDM, XPACT, XPAMT, XPPRF, XPSUS, XPBAD, XPTIM, XPINF, XPBIG ...; a malformed uuid, time or integer is '
  'XPBAD); a failed call changed nothing. The whole call fails (nothing commits) for calls that is not an '
  'array (XPBAD) or holds more than 500 calls (XPBIG), and for errors that are not a call''s fault: deadlock '
  'or serialization failure (40P01, 40001: run it again), resources, lock or server errors. Sets '
  'xpbase.award_group_path for the transaction to set (one batch), split (batches and calls decided alone) or'
  ' calls (every call alone). Locks every existing profile it names in profile id order before the first call'
  ' and holds the locks until it commits. The receipts are durable only once the transaction commits. '
  'service_role only.';
revoke all on function public.service_role_award_group(jsonb) from public, anon, authenticated;
grant execute on function public.service_role_award_group(jsonb) to service_role;
