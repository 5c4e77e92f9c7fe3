-- service_role_award_group splits a group around a refused call, found without deciding the calls before it (award_set's p_fail_fast), instead of deciding the whole group call by call; a batch of fewer than 6 calls, and the rest after two refused attempts, go call by call (issue 16)
--
-- Written by `xpbase migration new` from the feature files in supabase/sql/:
-- the function and trigger definitions that changed since the last migration.
-- Edit the feature files, not this file; landed migrations never change.
-- Changed:
--   function private.award_group_keys(text)
--   function private.award_group_set(jsonb)
--   function private.award_group_call(jsonb)
--   function private.award_group(jsonb)
--   function public.service_role_award_group(jsonb)
--   function private.award_set(jsonb, bool)
--   drop function private.award_set(jsonb)

-- No longer in the feature files.
drop function if exists private.award_set(jsonb);

-- from supabase/sql/34_award_group.sql --------------------------------------

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
      or exists (select 1 from jsonb_object_keys(c.value) k
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

-- from supabase/sql/39_award_set.sql ----------------------------------------

create or replace function private.award_set(p_awards jsonb, p_fail_fast boolean default false)
returns table (ord integer, receipt jsonb)
language plpgsql
volatile
security definer
set search_path = ''
as $$
#variable_conflict use_column
declare
  v_index integer := 0; v_item jsonb; v_state text; v_message text; v_detail text; v_need record;
  v_clean boolean; v_set integer[] := '{}'; v_rest integer[] := '{}'; v_late integer[] := '{}';
  v_points_per_xp numeric; v_max_multiplier numeric; v_horizon integer; v_n integer; v_i integer;
  v_amount integer; v_left integer; v_capped boolean; v_floored boolean; v_used integer; v_xp bigint;
  v_season bigint; v_season_amount integer;
  -- The batch's items parsed once (private.award_set_items), in array order.
  a_ord integer[]; a_clean boolean[]; a_pid uuid[]; a_activity text[]; a_key text[]; a_amount integer[];
  a_at timestamptz[]; a_context jsonb[]; a_reason text[]; a_request jsonb[];
  -- The set's items in (profile, array order), as arrays: what the ordered pass reads (d_), the slots it keeps
  -- running state in (s_: per profile and activity the last credited award; per profile, cap group and day the
  -- cap usage; per profile and layer the layer XP; per profile and season the season score) and what it decides
  -- (o_). Slot 0 is none.
  d_ord integer[]; d_pid uuid[]; d_slug text[]; d_layer text[]; d_at timestamptz[]; d_season bigint[];
  d_cap_group text[]; d_day date[]; d_base integer[]; d_multiplier numeric[]; d_multipliers jsonb[];
  d_key text[]; d_reason text[]; d_request jsonb[]; d_requested integer[]; d_late boolean[];
  d_pre integer[]; d_cooldown integer[]; d_floor integer[]; d_cap integer[];
  d_cd_slot integer[]; d_cap_slot integer[]; d_layer_slot integer[]; d_season_slot integer[];
  s_last timestamptz[]; s_used integer[]; s_layer bigint[]; s_season bigint[];
  o_amount integer[]; o_left integer[]; o_capped boolean[]; o_floored boolean[]; o_used integer[];
  o_season_amount integer[];
  v_members uuid[]; b_board text[]; b_scope text[]; b_pid uuid[]; b_xp bigint[];  -- board scores before
begin
  if p_awards is null or jsonb_typeof(p_awards) <> 'array' then
    raise exception 'awards must be a JSON array' using errcode = 'XPBAD';
  end if;
  if jsonb_array_length(p_awards) > 10000 then
    raise exception 'awards may hold at most 10000 items, got %', jsonb_array_length(p_awards)
      using errcode = 'XPBAD';
  end if;

  -- One block for the whole batch (one subtransaction, not one per item): any failure rolls the batch back
  -- and names the item.
  begin
    -- Lock order (issue 18): every profile the batch names, in profile id order, before the first award, so
    -- two batches over the same members in opposite orders wait for each other instead of deadlocking.
    perform 1 from public.profiles p
     where p.id in (select (a.value ->> 'profile_id')::uuid from jsonb_array_elements(p_awards) as a
                     where jsonb_typeof(a.value) = 'object'
                       and a.value ->> 'profile_id' ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$')
     order by p.id
     for update;

    select array_agg(i.ord order by i.ord), array_agg(i.clean order by i.ord), array_agg(i.profile_id order by i.ord),
           array_agg(i.activity order by i.ord), array_agg(i.idempotency_key order by i.ord),
           array_agg(i.amount order by i.ord), array_agg(i.occurred_at order by i.ord),
           array_agg(i.context order by i.ord), array_agg(i.reason order by i.ord), array_agg(i.request order by i.ord)
      into a_ord, a_clean, a_pid, a_activity, a_key, a_amount, a_at, a_context, a_reason, a_request
      from private.award_set_items(p_awards) i;
    select coalesce(max(e.late_award_horizon_seconds), 172800) into v_horizon from public.engine_settings e;
    -- The keys' locks, as private.award_xp takes them, before the ledger is read for replays and late awards (a
    -- racing award of one of these keys for another profile waits, then finds it and raises XPIDM).
    perform pg_advisory_xact_lock(hashtextextended('xp_ledger:' || k.key, 0))
       from (select distinct i.key from unnest(a_key) as i (key) where i.key is not null) k
      order by k.key;

    -- Which items the set path takes. Every item must be one award_xp takes without an error, else the whole
    -- batch is decided item by item (so an error and its index are award_xp's). Then a member's items are
    -- decided as a set only when none is a replay or shares its key with another item, no base lies beyond
    -- +-1,000,000 XP, no layer_status multiplier applies (it reads the status each award leaves), no season
    -- they fall in is finalised, and no item is late (dated before an award of the member already in the
    -- ledger or earlier in the batch: award_xp decides it again with the later ones) unless it is late beyond
    -- the horizon (decided as of its arrival, as the set path does) and its activity has no cooldown (whose
    -- window reaches both ways). An item of an activity with a cooldown must come after every ledger row of
    -- the member (so the state before the batch is the last credited award before it).
    with it as materialized (
      select * from unnest(a_ord, a_clean, a_pid, a_activity, a_key, a_amount, a_at, a_request)
                      as i (ord, clean, profile_id, activity, idempotency_key, amount, occurred_at, request)
    ), member as (
      select m.profile_id, private.suspended_until(m.profile_id) as suspended_until
        from (select distinct it.profile_id from it where it.clean) m
    ), chk as (
      select it.ord, it.profile_id, it.clean, it.amount, it.occurred_at, it.idempotency_key, it.request,
             a.slug as activity_slug, a.active, a.min_xp, a.max_xp, a.layer_slug, a.cooldown_seconds,
             coalesce(a.counts_for_season, true) as counts_for_season, coalesce(r.base_xp, a.base_xp) as rate,
             p.id is not null as profile_found, mb.suspended_until, ex.request as ledger_request,
             count(*) over (partition by it.idempotency_key) > 1 as shared_key,
             row_number() over (partition by it.idempotency_key order by it.ord) as key_rank,
             first_value(it.request) over (partition by it.idempotency_key order by it.ord) as first_request,
             max(it.occurred_at) over (partition by it.profile_id order by it.ord
                                       rows between unbounded preceding and 1 preceding) as prev_at,
             max(it.idempotency_key) over (partition by it.profile_id, it.occurred_at order by it.ord
                                           rows between unbounded preceding and 1 preceding) as prev_key
        from it
        left join member mb on mb.profile_id = it.profile_id
        left join public.profiles p on p.id = it.profile_id
        left join public.activity_types a on a.slug = it.activity
        left join lateral (
          select r.base_xp from public.activity_rates r
           where r.activity_slug = a.slug and r.effective_from <= it.occurred_at
           order by r.effective_from desc limit 1
        ) r on true
        left join lateral (
          select l.request from public.xp_ledger l where l.idempotency_key = it.idempotency_key limit 1
        ) ex on it.clean
    ), judged as (
      select c.*,
             coalesce(c.ledger_request = c.request, c.key_rank > 1 and c.first_request = c.request, false) as replay,
             coalesce(c.clean
                      and case when c.ledger_request is not null then c.ledger_request = c.request
                               when c.key_rank > 1 then c.first_request = c.request
                               else c.profile_found and c.suspended_until is null and c.active
                                    and (c.amount is null
                                         or case when c.min_xp is null then c.amount = c.rate
                                                 else c.amount between c.min_xp and c.max_xp end)
                          end, false) as valid,
             -- award_xp's late: an award of the member dated after this one (time, then key).
             coalesce(c.prev_at > c.occurred_at, false) or coalesce(c.prev_key > c.idempotency_key, false)
             or exists (select 1 from public.xp_ledger l
                         where l.profile_id = c.profile_id and l.occurred_at >= c.occurred_at
                           and (l.occurred_at, l.idempotency_key) > (c.occurred_at, c.idempotency_key)
                           and l.request ->> 'fn' = 'award_xp') as late
        from chk c
    ), hard as (
      select j.ord, j.valid, j.late,
             bool_or(j.replay or j.shared_key
                     or coalesce(coalesce(j.amount, j.rate) not between -1000000 and 1000000, true)
                     or (j.late and (j.cooldown_seconds > 0
                                     or (v_horizon > 0 and j.occurred_at >= now() - make_interval(secs => v_horizon))))
                     or (j.cooldown_seconds > 0 and exists (
                           select 1 from public.xp_ledger l
                            where l.profile_id = j.profile_id and l.occurred_at >= j.occurred_at
                              and (l.occurred_at, l.idempotency_key) > (j.occurred_at, j.idempotency_key)))
                     or exists (
                          select 1 from public.multipliers x
                           where x.kind = 'layer_status'
                             and (x.activity_slug is null or x.activity_slug = j.activity_slug)
                             and (x.starts_at is null or x.starts_at <= j.occurred_at)
                             and (x.ends_at is null or j.occurred_at < x.ends_at))
                     or coalesce(j.counts_for_season and (
                          select s.finalized_at is not null from public.seasons s
                           where s.layer_slug = j.layer_slug and s.starts_at <= j.occurred_at
                             and j.occurred_at < s.ends_at
                           order by s.starts_at desc limit 1), false))
               over (partition by j.profile_id) as fallback
        from judged j
    )
    select coalesce(bool_and(h.valid), true), min(h.ord) filter (where not h.valid) - 1,
           coalesce(array_agg(h.ord order by h.ord) filter (where not h.fallback), '{}'),
           coalesce(array_agg(h.ord order by h.ord) filter (where h.fallback), '{}'),
           coalesce(array_agg(h.ord order by h.ord) filter (where h.late and not h.fallback), '{}')
      into v_clean, v_index, v_set, v_rest, v_late
      from hard h;
    -- Fail fast: name the first item award_xp would refuse without deciding the items before it.
    if not v_clean and p_fail_fast then
      raise exception 'refused (fail fast: decide it alone for its error)' using errcode = 'XPBAD';
    end if;
    v_index := 0;
    -- Tiers must cover every level (apply_xp keeps the tier held when none does; the set path does not).
    if not v_clean or not exists (select 1 from public.tiers t
                                   where t.min_level <= least(1, (select min(c.level) from public.level_curve c))) then
      v_set := '{}';
      select coalesce(array_agg(e.ord::integer order by e.ord), '{}') into v_rest
        from jsonb_array_elements(p_awards) with ordinality as e (v, ord);
    end if;

    if cardinality(v_set) > 0 then
      select coalesce((select s.points_per_xp from public.engine_settings s limit 1), 1),
             coalesce((select s.max_multiplier from public.engine_settings s limit 1), 5)
        into v_points_per_xp, v_max_multiplier;
      -- Seasons are made on first use (private.season_for) in array order, as the items one at a time would
      -- make them, those left to award_xp included (replays make none), so that season ids follow array order.
      for v_need in
        select x.layer_slug, x.occurred_at
          from (select i.ord, i.occurred_at, a.layer_slug
                  from unnest(a_ord, a_activity, a_key, a_at) as i (ord, activity, key, occurred_at)
                  join public.activity_types a on a.slug = i.activity
                 where coalesce(a.counts_for_season, true)
                   and not exists (select 1 from public.xp_ledger l where l.idempotency_key = i.key)
               ) x
         where not exists (select 1 from public.seasons s
                            where s.layer_slug = x.layer_slug and s.starts_at <= x.occurred_at
                              and x.occurred_at < s.ends_at)
         order by x.ord
      loop
        perform private.season_for(v_need.layer_slug, v_need.occurred_at);
      end loop;

      -- What the ordered pass needs: per item the rate in force (or the named amount), the multipliers, the
      -- cap group and its local day, the season; per slot the state before the batch (the last credited award
      -- of the activity within the cooldown before the member's first item of it, as award_xp finds it).
      with d as materialized (
        select i.ord, i.profile_id as pid, i.occurred_at as at, i.context, a.slug, a.layer_slug as layer,
               a.cooldown_seconds, a.xp_floor, a.cap_group, c.daily_cap,
               (i.occurred_at at time zone c.time_zone)::date as day,
               coalesce(i.amount, r.base_xp, a.base_xp) as base, se.id as season_id,
               i.key, i.reason, i.request, i.amount as requested, i.ord = any (v_late) as late
          from unnest(a_ord, a_pid, a_activity, a_key, a_amount, a_at, a_context, a_reason, a_request)
                 as i (ord, profile_id, activity, key, amount, occurred_at, context, reason, request)
          join public.activity_types a on a.slug = i.activity
          left join public.cap_groups c on c.slug = a.cap_group
          left join lateral (
            select r.base_xp from public.activity_rates r
             where r.activity_slug = a.slug and r.effective_from <= i.occurred_at
             order by r.effective_from desc limit 1
          ) r on true
          left join lateral (
            select s.id from public.seasons s
             where coalesce(a.counts_for_season, true) and s.layer_slug = a.layer_slug
               and s.starts_at <= i.occurred_at and i.occurred_at < s.ends_at
             order by s.starts_at desc limit 1
          ) se on true
         where i.ord = any (v_set)
      ), x as materialized (
        select d.*, mm.multiplier, mm.multipliers,
               case when d.base > 0 then floor(d.base * mm.multiplier)::integer else d.base end as pre,
               dense_rank() over (order by d.pid, d.slug) as cd_slot,
               dense_rank() over (order by d.pid, d.cap_group, d.day) as cap_slot,
               dense_rank() over (order by d.pid, d.layer) as layer_slot,
               dense_rank() over (order by d.pid, d.season_id) as season_slot
          from d
         cross join lateral (
           -- Multipliers as award_xp takes them: the largest factor per kind, kinds multiply, capped.
           select case when d.base > 0 then round(least(coalesce(exp(sum(ln(m.factor))), 1), v_max_multiplier), 3)
                       else 1 end as multiplier,
                  case when d.base > 0 then
                    coalesce(jsonb_agg(jsonb_build_object('kind', m.kind, 'match', m.match_value, 'factor', m.factor)
                                       order by m.kind), '[]')
                  else '[]' end as multipliers
             from (
               select distinct on (y.kind) y.kind, y.match_value, y.factor
                 from public.multipliers y
                where d.base > 0
                  and (y.activity_slug is null or y.activity_slug = d.slug)
                  and (y.starts_at is null or y.starts_at <= d.at)
                  and (y.ends_at is null or d.at < y.ends_at)
                  and ((y.kind = 'role' and d.context ? 'role_ids'
                          and y.match_value in (select jsonb_array_elements_text(d.context -> 'role_ids')))
                       or (y.kind = 'channel' and y.match_value = d.context ->> 'channel_id')
                       or (y.kind = 'event' and (y.match_value is null or y.match_value = d.context ->> 'event_id')))
                order by y.kind, y.factor desc
             ) m
         ) mm
      )
      select array_agg(x.ord order by x.pid, x.ord), array_agg(x.pid order by x.pid, x.ord),
             array_agg(x.slug order by x.pid, x.ord), array_agg(x.layer order by x.pid, x.ord),
             array_agg(x.at order by x.pid, x.ord), array_agg(x.season_id order by x.pid, x.ord),
             array_agg(x.cap_group order by x.pid, x.ord), array_agg(x.day order by x.pid, x.ord),
             array_agg(x.base order by x.pid, x.ord), array_agg(x.multiplier order by x.pid, x.ord),
             array_agg(x.multipliers order by x.pid, x.ord), array_agg(x.pre order by x.pid, x.ord),
             array_agg(x.key order by x.pid, x.ord), array_agg(x.reason order by x.pid, x.ord),
             array_agg(x.request order by x.pid, x.ord), array_agg(x.requested order by x.pid, x.ord),
             array_agg(x.late order by x.pid, x.ord),
             array_agg(x.cooldown_seconds order by x.pid, x.ord), array_agg(x.xp_floor order by x.pid, x.ord),
             array_agg(coalesce(x.daily_cap, 0) order by x.pid, x.ord),
             array_agg(x.cd_slot::integer order by x.pid, x.ord),
             array_agg(case when x.cap_group is not null then x.cap_slot::integer else 0 end order by x.pid, x.ord),
             array_agg(x.layer_slot::integer order by x.pid, x.ord),
             array_agg(case when x.season_id is not null then x.season_slot::integer else 0 end order by x.pid, x.ord),
             (select array_agg(coalesce(
                       case when g.cooldown_seconds > 0 then (
                         select max(u.occurred_at)
                           from public.xp_ledger u
                          where u.id in (
                                  select coalesce(l.corrects_id, l.id) from public.xp_ledger l
                                   where l.profile_id = g.pid
                                     and l.activity_slug = g.slug
                                     and l.amount > 0
                                     and l.reverses_id is null
                                     and l.occurred_at > g.first_at - make_interval(secs => g.cooldown_seconds)
                                     and l.occurred_at < g.first_at + make_interval(secs => g.cooldown_seconds))
                            and u.amount + coalesce((select sum(c.amount) from public.xp_ledger c
                                                      where c.corrects_id = u.id or c.reverses_id = u.id), 0) > 0)
                       end, '-infinity') order by g.cd_slot)
                from (select x.cd_slot, x.pid, x.slug, x.cooldown_seconds, min(x.at) as first_at
                        from x group by 1, 2, 3, 4) g),
             (select array_agg(coalesce(u.used, 0) order by g.cap_slot)
                from (select distinct x.cap_slot, x.pid, x.cap_group, x.day from x) g
                left join private.daily_cap_usage u
                  on u.profile_id = g.pid and u.cap_group = g.cap_group and u.day = g.day),
             (select array_agg(coalesce(pl.xp, 0) order by g.layer_slot)
                from (select distinct x.layer_slot, x.pid, x.layer from x) g
                left join public.profile_layers pl on pl.profile_id = g.pid and pl.layer_slug = g.layer),
             (select array_agg(coalesce(ss.xp, 0) order by g.season_slot)
                from (select distinct x.season_slot, x.pid, x.season_id from x) g
                left join public.season_scores ss on ss.season_id = g.season_id and ss.profile_id = g.pid)
        into d_ord, d_pid, d_slug, d_layer, d_at, d_season, d_cap_group, d_day, d_base, d_multiplier,
             d_multipliers, d_pre, d_key, d_reason, d_request, d_requested, d_late, d_cooldown, d_floor, d_cap, d_cd_slot, d_cap_slot, d_layer_slot, d_season_slot,
             s_last, s_used, s_layer, s_season
        from x;

      -- The ordered pass: cooldown, daily cap and floor, award after award of each member, as award_xp decides
      -- them (arithmetic on arrays, no statement per item).
      v_n := cardinality(d_ord);
      o_amount := array_fill(0, array[v_n]);
      o_left := array_fill(0, array[v_n]);
      o_capped := array_fill(false, array[v_n]);
      o_floored := array_fill(false, array[v_n]);
      o_used := array_fill(0, array[v_n]);
      o_season_amount := array_fill(0, array[v_n]);
      for v_i in 1 .. v_n loop
        v_amount := d_pre[v_i];
        v_left := 0;
        v_capped := false;
        v_floored := false;
        -- Cooldown: at most one credited award of the activity per window.
        if d_cooldown[v_i] > 0 and v_amount > 0
           and s_last[d_cd_slot[v_i]] > d_at[v_i] - make_interval(secs => d_cooldown[v_i]) then
          v_left := greatest(1, ceil(extract(epoch from s_last[d_cd_slot[v_i]]
                                     + make_interval(secs => d_cooldown[v_i]) - d_at[v_i]))::integer);
          v_amount := 0;
        end if;
        -- Daily cap of the cap group, on that local day.
        if d_cap_slot[v_i] > 0 then
          v_used := s_used[d_cap_slot[v_i]];
          if v_amount > 0 and v_used + v_amount > d_cap[v_i] then
            v_amount := greatest(d_cap[v_i] - v_used, 0);
            v_capped := true;
          end if;
        end if;
        -- Floor: a penalty never takes the layer's XP below the activity's xp_floor.
        v_xp := s_layer[d_layer_slot[v_i]];
        if v_amount < 0 and v_xp + v_amount < d_floor[v_i] then
          v_amount := least(d_floor[v_i] - v_xp, 0);
          v_floored := true;
        end if;
        if d_cap_slot[v_i] > 0 then
          s_used[d_cap_slot[v_i]] := v_used + v_amount;
          o_used[v_i] := v_used + v_amount;
        end if;
        if v_amount > 0 then
          s_last[d_cd_slot[v_i]] := d_at[v_i];
        end if;
        s_layer[d_layer_slot[v_i]] := v_xp + v_amount;
        -- Each season floors on its own.
        if d_season_slot[v_i] > 0 then
          v_season := s_season[d_season_slot[v_i]];
          v_season_amount := greatest(v_amount, -v_season);
          s_season[d_season_slot[v_i]] := v_season + v_season_amount;
          o_season_amount[v_i] := v_season_amount;
        end if;
        o_amount[v_i] := v_amount;
        o_left[v_i] := v_left;
        o_capped[v_i] := v_capped;
        o_floored[v_i] := v_floored;
      end loop;

      -- The leaderboard counts of the set's members move once per member and board (from their scores
      -- before the write to those after it), not once per row written (60_leaderboards.sql).
      v_members := array(select distinct x from unnest(d_pid) x);
      select array_agg(b.board), array_agg(b.scope), array_agg(b.profile_id), array_agg(b.xp)
        into b_board, b_scope, b_pid, b_xp
        from private.leaderboard_scores(v_members) b;
      perform set_config('xpbase.leaderboard_counts_batched', 'on', true);
      return query select w.ord, w.receipt
                     from private.award_set_write(d_ord, d_pid, d_slug, d_layer, d_at, d_season,
                                                  d_cap_group, d_day, d_cap, d_base, d_multiplier, d_multipliers,
                                                  d_key, d_reason, d_request, d_requested, d_late,
                                                  o_amount, o_left, o_capped, o_floored, o_used, o_season_amount,
                                                  v_points_per_xp) w;
      perform set_config('xpbase.leaderboard_counts_batched', 'off', true);
      perform private.leaderboard_counts_since(v_members, b_board, b_scope, b_pid, b_xp);
    end if;

    -- The rest, one award at a time, in array order.
    for v_item, v_index in
      select e.value, e.ord::integer - 1 from jsonb_array_elements(p_awards) with ordinality as e (value, ord)
       where e.ord::integer = any (v_rest) order by e.ord
    loop
      if jsonb_typeof(v_item) <> 'object' then
        raise exception 'must be a JSON object' using errcode = 'XPBAD';
      end if;
      if exists (select 1 from jsonb_object_keys(v_item) k
                  where k not in ('profile_id', 'activity', 'idempotency_key', 'amount', 'occurred_at', 'context',
                                  'reason')) then
        raise exception 'unknown key; allowed: profile_id, activity, idempotency_key, amount, occurred_at, context, reason'
          using errcode = 'XPBAD';
      end if;
      ord := v_index + 1;
      receipt := private.award_xp(
        (v_item ->> 'profile_id')::uuid,
        v_item ->> 'activity',
        v_item ->> 'idempotency_key',
        (v_item ->> 'amount')::integer,
        (v_item ->> 'occurred_at')::timestamptz,
        coalesce(v_item -> 'context', '{}'),
        v_item ->> 'reason');
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

comment on function private.award_set(jsonb, boolean) is
  'Decides a batch of awards (p_awards: a JSON array of at most 10000 objects {profile_id, activity, '
  'idempotency_key, amount?, occurred_at?, context?, reason?}, the parameters of award_xp) as award_xp would one '
  'at a time in array order, and returns (ord: the item''s position from 1, receipt: award_xp''s receipt) for '
  'every item. A member whose items are all new, in time order after their ledger, without a layer_status '
  'multiplier or a finalised season, is decided as a set (private.award_set_write); anything else, and the '
  'whole batch when any item is one award_xp refuses, goes through private.award_xp item by item. All or '
  'nothing: the first failing item (in array order) rolls the batch back with award_xp''s SQLSTATE (XPIDM, '
  'XPACT, XPAMT, XPPRF, XPSUS, XPBAD, XPTIM, XPINF, XPBIG) and a message starting with awards[<index from 0>]. '
  'With p_fail_fast, a batch holding an item that award_xp would refuse is not decided at all: it fails at once '
  'with XPBAD and awards[<the first such item>] (its own error is left to the caller to find, deciding it '
  'alone). Locks every profile it names in profile id order first. Only the engine calls it.';

revoke all on function private.award_set(jsonb, boolean) from public;
