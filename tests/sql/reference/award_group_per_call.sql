-- private.award_group as it was before the set path (supabase/sql/34_award_group.sql on main before
-- 20261203100000, issue 16 item 2): every call through private.award_xp or private.discord_award in its own
-- subtransaction, in array order. tests/sql/test_award_group.py loads it into a second database as the
-- reference the set path must agree with.

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
