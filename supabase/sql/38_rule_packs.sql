-- Rule packs and batch awards: dated activity rates validated on write, and
-- service_role_award_xp_batch (up to 10,000 awards in one transaction).
--
-- Tables: public.activity_rates.
-- Tests: tests/sql/test_rule_packs.py

------------------------------------------------------------------------------
-- Rule packs and batch awards (issue 3: replaying a Stack Exchange site)
------------------------------------------------------------------------------

create or replace function private.tg_activity_rates__validate()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_act public.activity_types;
begin
  select * into v_act from public.activity_types a where a.slug = new.activity_slug;
  if v_act.min_xp is not null and new.base_xp not between v_act.min_xp and v_act.max_xp then
    raise exception 'Rate % XP of activity % is outside its range % to %',
      new.base_xp, new.activity_slug, v_act.min_xp, v_act.max_xp
      using errcode = 'XPAMT';
  end if;
  return new;
end
$$;
comment on function private.tg_activity_rates__validate() is
  'Refuses a dated rate outside the activity''s [min_xp, max_xp] range (XPAMT).';
revoke all on function private.tg_activity_rates__validate() from public;

drop trigger if exists _100_validate on public.activity_rates;
create trigger _100_validate before insert or update on public.activity_rates
  for each row execute function private.tg_activity_rates__validate();

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
comment on function private.award_xp_batch(jsonb) is 'Implementation of public.service_role_award_xp_batch.';
revoke all on function private.award_xp_batch(jsonb) from public;
grant execute on function private.award_xp_batch(jsonb) to service_role;

create or replace function public.service_role_award_xp_batch(awards jsonb)
returns table (
  idempotency_key text,
  granted integer,
  replayed boolean,
  capped boolean,
  floored boolean,
  cooldown boolean
)
language sql
volatile
security invoker
set search_path = ''
as $$
  select * from private.award_xp_batch(service_role_award_xp_batch.awards)
$$;
comment on function public.service_role_award_xp_batch(jsonb) is
  'Many award_xp calls in one round trip and one transaction, in array order: awards is a JSON array (at most '
  '10000) of objects {profile_id, activity, idempotency_key, amount?, occurred_at?, context?} with the meaning '
  'of public.award_xp''s parameters, each decided by private.award_xp itself (the same rules, no second '
  'implementation). Returns one row per item: idempotency_key, granted (XP), replayed, capped, floored, '
  'cooldown. All or nothing: the first failing item rolls the batch back with its SQLSTATE (XPIDM, XPACT, '
  'XPAMT, XPPRF, XPBAD) and a message starting with awards[<index from 0>]. Holds the row lock of every '
  'profile it touched until it commits. service_role only.';
revoke all on function public.service_role_award_xp_batch(jsonb) from public, anon, authenticated;
grant execute on function public.service_role_award_xp_batch(jsonb) to service_role;
