-- award_group_set's precheck reads a non-object call as {} before listing its keys, so it cannot raise whatever order its ORs run in (an error there would now fail the whole group)
--
-- Written by `xpbase migration new` from the feature files in supabase/sql/:
-- the function and trigger definitions that changed since the last migration.
-- Edit the feature files, not this file; landed migrations never change.
-- Changed:
--   function private.award_group_set(jsonb)

-- from supabase/sql/34_award_group.sql --------------------------------------

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
