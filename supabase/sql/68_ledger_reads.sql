-- Ledger reads: a member's own XP history with the receipt of every entry, newest first, paged
-- by cursor (the REST API's GET /v1/me/ledger; supabase-js calls the same function).
--
-- Tables: none of its own (reads public.xp_ledger through its policy).
-- Tests: tests/sql/test_ledger_reads.py

create or replace function public.list_my_ledger(size integer default 50, cursor text default null)
returns jsonb
language plpgsql
stable
security invoker
set search_path = ''
as $$
declare
  v_uid uuid := (select auth.uid());
  v_before bigint;
  v_items jsonb;
  v_count integer;
begin
  if v_uid is null then
    raise exception 'Sign in to read your ledger' using errcode = '42501';
  end if;
  if list_my_ledger.size is null or list_my_ledger.size not between 1 and 100 then
    raise exception 'size must be 1 to 100' using errcode = 'XPBAD';
  end if;
  if list_my_ledger.cursor is not null then
    if list_my_ledger.cursor !~ '^[1-9][0-9]{0,17}$' then
      raise exception 'Not a ledger cursor: %', left(list_my_ledger.cursor, 40) using errcode = 'XPBAD';
    end if;
    v_before := list_my_ledger.cursor::bigint;
  end if;
  -- One row more than asked says whether another page follows.
  select coalesce(jsonb_agg(x.entry order by x.id desc), '[]'), count(*)
    into v_items, v_count
    from (select l.id, jsonb_build_object(
                   'id', l.id, 'activity', l.activity_slug, 'activity_name', a.name, 'layer', l.layer_slug,
                   'season_id', l.season_id, 'amount', l.amount, 'season_amount', l.season_amount,
                   'points', l.points, 'occurred_at', l.occurred_at, 'recorded_at', l.recorded_at,
                   'actor_role', l.actor_role, 'reason', l.reason, 'reverses_id', l.reverses_id,
                   'corrects_id', l.corrects_id, 'receipt', l.receipt) as entry
            from public.xp_ledger l
            join public.activity_types a on a.slug = l.activity_slug
           where l.profile_id = v_uid and (v_before is null or l.id < v_before)
           order by l.id desc
           limit list_my_ledger.size + 1) x;
  if v_count > list_my_ledger.size then
    v_items := v_items - list_my_ledger.size;
    return jsonb_build_object('items', v_items,
                              'next_cursor', (v_items -> (list_my_ledger.size - 1) ->> 'id'));
  end if;
  return jsonb_build_object('items', v_items, 'next_cursor', null);
end
$$;
comment on function public.list_my_ledger(integer, text) is
  'The signed-in member''s ledger, newest first: {items [{id, activity, activity_name, layer, season_id, amount '
  '(XP, negative for penalties and corrections), season_amount, points, occurred_at, recorded_at (UTC), '
  'actor_role, reason, reverses_id, corrects_id (the award a late award''s re-decision corrects), receipt (what the call that wrote the entry answered)}], next_cursor '
  '(text to pass as cursor for the next page, null on the last)}. size 1-100. Entries are ordered by id '
  '(recording order), so a page never shifts when older activity is backfilled. Errors: 42501 when not '
  'signed in, XPBAD.';
revoke all on function public.list_my_ledger(integer, text) from public, anon;
grant execute on function public.list_my_ledger(integer, text) to authenticated;
