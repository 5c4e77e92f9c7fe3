-- private.award_xp_batch as it was before private.award_set (supabase/sql/38_rule_packs.sql on main, issue 16):
-- every item through private.award_xp in array order. tests/sql/test_award_set.py loads it into a second
-- database as the reference the set path must agree with.

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
    -- Lock order (issue 18): every profile the batch names, in profile id order, before the first award, so
    -- two batches over the same members in opposite orders wait for each other instead of deadlocking.
    perform 1 from public.profiles p
     where p.id in (select (a.value ->> 'profile_id')::uuid from jsonb_array_elements(p_awards) as a
                     where jsonb_typeof(a.value) = 'object'
                       and a.value ->> 'profile_id' ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$')
     order by p.id
     for update;
    for v_item in select a.value from jsonb_array_elements(p_awards) as a loop
      if jsonb_typeof(v_item) <> 'object' then
        raise exception 'must be a JSON object' using errcode = 'XPBAD';
      end if;
      if exists (select 1 from jsonb_object_keys(v_item) k
                  where k not in ('profile_id', 'activity', 'idempotency_key', 'amount', 'occurred_at', 'context',
                                  'reason')) then
        raise exception 'unknown key; allowed: profile_id, activity, idempotency_key, amount, occurred_at, context, reason'
          using errcode = 'XPBAD';
      end if;
      v_receipt := private.award_xp(
        (v_item ->> 'profile_id')::uuid,
        v_item ->> 'activity',
        v_item ->> 'idempotency_key',
        (v_item ->> 'amount')::integer,
        (v_item ->> 'occurred_at')::timestamptz,
        coalesce(v_item -> 'context', '{}'),
        v_item ->> 'reason');
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
