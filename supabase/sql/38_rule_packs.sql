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
begin
  -- Decided by private.award_set (39_award_set.sql): as a set where it can, by private.award_xp item by item
  -- where it cannot, with award_xp's receipts either way; errors name the item (awards[<index from 0>]).
  return query
  select s.receipt ->> 'idempotency_key', (s.receipt ->> 'granted')::integer, (s.receipt ->> 'replayed')::boolean,
         coalesce((s.receipt ->> 'capped')::boolean, false), coalesce((s.receipt ->> 'floored')::boolean, false),
         coalesce((s.receipt ->> 'cooldown')::boolean, false)
    from private.award_set(p_awards) s
   order by s.ord;
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
  'of public.award_xp''s parameters, decided by private.award_set: the receipts award_xp would give one at a '
  'time in array order (members whose awards are all new and in time order as one set, the rest by award_xp '
  'itself). Returns one row per item: idempotency_key, granted (XP), replayed, capped, floored, '
  'cooldown. All or nothing: the first failing item rolls the batch back with its SQLSTATE (XPIDM, XPACT, '
  'XPAMT, XPPRF, XPBAD, XPTIM, XPINF, XPBIG) and a message starting with awards[<index from 0>]. Locks every '
  'profile it names in profile id order before the first award (no deadlock between batches) and holds the '
  'locks until it commits. service_role only.';
revoke all on function public.service_role_award_xp_batch(jsonb) from public, anon, authenticated;
grant execute on function public.service_role_award_xp_batch(jsonb) to service_role;
