-- api_reads
--
-- Written by `xpbase migration new` from the feature files in supabase/sql/:
-- the function and trigger definitions that changed since the last migration.
-- Edit the feature files, not this file; landed migrations never change.
-- Changed:
--   function public.update_my_profile(jsonb)
--   function public.list_seasons(text, int4, text)
--   function public.list_season_results(int8, int4, text)
--   function public.list_my_ledger(int4, text)
--   function public.list_notifications(int4, text, bool)
--   function public.mark_notifications_read(int8[], int8)

-- from supabase/sql/10_profiles.sql -----------------------------------------

create or replace function public.update_my_profile(changes jsonb)
returns jsonb
language plpgsql
volatile
security invoker
set search_path = ''
as $$
declare
  v_uid uuid := (select auth.uid());
  v_unknown text;
  v_bad text;
  v_row public.profiles;
begin
  if v_uid is null then
    raise exception 'Sign in to edit your profile' using errcode = '42501';
  end if;
  if update_my_profile.changes is null or jsonb_typeof(update_my_profile.changes) <> 'object' then
    raise exception 'changes must be a JSON object' using errcode = 'XPBAD';
  end if;
  select string_agg(k.key, ', ' order by k.key) into v_unknown
    from jsonb_object_keys(update_my_profile.changes) as k (key)
   where k.key not in ('display_name', 'bio', 'avatar_url', 'social_links', 'time_zone', 'leaderboard_visible');
  if v_unknown is not null then
    raise exception 'Not editable: % (editable: display_name, bio, avatar_url, social_links, time_zone, '
      'leaderboard_visible)', v_unknown using errcode = 'XPBAD';
  end if;
  select string_agg(c.key, ', ' order by c.key) into v_bad
    from jsonb_each(update_my_profile.changes) as c (key, value)
   where jsonb_typeof(c.value) <> case c.key
           when 'social_links' then 'object'
           when 'leaderboard_visible' then 'boolean'
           else 'string' end
     and not (c.key = 'avatar_url' and jsonb_typeof(c.value) = 'null');
  if v_bad is not null then
    raise exception 'Wrong type for % (text, avatar_url text or null, social_links an object, '
      'leaderboard_visible a boolean)', v_bad using errcode = 'XPBAD';
  end if;
  update public.profiles p
     set display_name = coalesce(update_my_profile.changes ->> 'display_name', p.display_name),
         bio = coalesce(update_my_profile.changes ->> 'bio', p.bio),
         avatar_url = case when update_my_profile.changes ? 'avatar_url'
                           then update_my_profile.changes ->> 'avatar_url' else p.avatar_url end,
         social_links = coalesce(update_my_profile.changes -> 'social_links', p.social_links),
         time_zone = coalesce(update_my_profile.changes ->> 'time_zone', p.time_zone),
         leaderboard_visible = coalesce((update_my_profile.changes ->> 'leaderboard_visible')::boolean,
                                        p.leaderboard_visible)
   where p.id = v_uid
   returning p.* into v_row;
  if not found then
    raise exception 'Unknown profile: %', v_uid using errcode = 'XPPRF';
  end if;
  return jsonb_build_object(
    'id', v_row.id, 'display_name', v_row.display_name, 'bio', v_row.bio, 'avatar_url', v_row.avatar_url,
    'social_links', v_row.social_links, 'time_zone', v_row.time_zone,
    'leaderboard_visible', v_row.leaderboard_visible, 'role', v_row.role, 'xp', v_row.xp,
    'level', v_row.level, 'tier', v_row.tier, 'points', v_row.points, 'created_at', v_row.created_at);
end
$$;

comment on function public.update_my_profile(jsonb) is
  'Edits the signed-in member''s own profile: changes is an object with any of display_name (1-64 characters, '
  'trimmed), bio (at most 500), avatar_url (https, at most 500, or null to clear), social_links (an object, '
  'at most 2000 characters as JSON), time_zone (an IANA name) and leaderboard_visible (boolean); keys left out '
  'stay as they are. Returns the profile as its owner sees it: {id, display_name, bio, avatar_url, '
  'social_links, time_zone, leaderboard_visible, role, xp, level, tier, points, created_at}. Runs as the '
  'caller, so the column grants and the update policy apply. Errors: 42501 when not signed in, XPBAD (an '
  'unknown key, a wrong type, an unknown time zone), 23514 or 22001 (a value outside the table''s checks), XPPRF.';

revoke all on function public.update_my_profile(jsonb) from public, anon;

grant execute on function public.update_my_profile(jsonb) to authenticated;

-- from supabase/sql/45_season_finalize.sql ----------------------------------

------------------------------------------------------------------------------
-- Seasons and their archived results, as the caller may see them
------------------------------------------------------------------------------
create or replace function public.list_seasons(layer text default null, size integer default 20, cursor text default null)
returns jsonb
language plpgsql
stable
security invoker
set search_path = ''
as $$
declare
  v_before bigint;
  v_items jsonb;
  v_count integer;
begin
  if list_seasons.size is null or list_seasons.size not between 1 and 100 then
    raise exception 'size must be 1 to 100' using errcode = 'XPBAD';
  end if;
  if list_seasons.layer is not null and not exists (select 1 from public.layers l where l.slug = list_seasons.layer) then
    raise exception 'Unknown layer: %', left(list_seasons.layer, 64) using errcode = 'XPBAD';
  end if;
  if list_seasons.cursor is not null then
    if list_seasons.cursor !~ '^[1-9][0-9]{0,17}$' then
      raise exception 'Not a seasons cursor: %', left(list_seasons.cursor, 40) using errcode = 'XPBAD';
    end if;
    v_before := list_seasons.cursor::bigint;
  end if;
  select coalesce(jsonb_agg(x.item order by x.id desc), '[]'), count(*)
    into v_items, v_count
    from (select s.id, jsonb_build_object(
                   'id', s.id, 'layer', s.layer_slug, 'name', s.name, 'starts_at', s.starts_at,
                   'ends_at', s.ends_at, 'finalized_at', s.finalized_at,
                   'status', case when s.finalized_at is not null then 'finalized'
                                  when now() >= s.ends_at then 'ended'
                                  when now() >= s.starts_at then 'running'
                                  else 'upcoming' end) as item
            from public.seasons s
           where (list_seasons.layer is null or s.layer_slug = list_seasons.layer)
             and (v_before is null or s.id < v_before)
           order by s.id desc
           limit list_seasons.size + 1) x;
  if v_count > list_seasons.size then
    v_items := v_items - list_seasons.size;
  end if;
  return jsonb_build_object(
    'items', v_items,
    'next_cursor', case when v_count > list_seasons.size then v_items -> (list_seasons.size - 1) ->> 'id' end);
end
$$;

comment on function public.list_seasons(text, integer, text) is
  'Seasons, newest first (all layers, or one): {items [{id, layer, name, starts_at, ends_at (UTC, exclusive), '
  'finalized_at, status (upcoming, running, ended, finalized)}], next_cursor (text for the next page, null on '
  'the last)}. size 1-100. Public data. Errors: XPBAD (size, cursor, unknown layer).';

revoke all on function public.list_seasons(text, integer, text) from public;

grant execute on function public.list_seasons(text, integer, text) to anon, authenticated, service_role;

create or replace function public.list_season_results(season_id bigint, size integer default 50, cursor text default null)
returns jsonb
language plpgsql
stable
security invoker
set search_path = ''
as $$
declare
  v_uid uuid := (select auth.uid());
  v_season public.seasons;
  v_rank integer;
  v_profile uuid;
  v_items jsonb;
  v_count integer;
begin
  if list_season_results.size is null or list_season_results.size not between 1 and 100 then
    raise exception 'size must be 1 to 100' using errcode = 'XPBAD';
  end if;
  select * into v_season from public.seasons s where s.id = list_season_results.season_id;
  if not found then
    raise exception 'Unknown season: %', coalesce(list_season_results.season_id::text, 'null') using errcode = 'XPBAD';
  end if;
  if list_season_results.cursor is not null then
    if list_season_results.cursor !~ '^[1-9][0-9]{0,8}:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' then
      raise exception 'Not a season results cursor: %', left(list_season_results.cursor, 60) using errcode = 'XPBAD';
    end if;
    v_rank := split_part(list_season_results.cursor, ':', 1)::integer;
    v_profile := split_part(list_season_results.cursor, ':', 2)::uuid;
  end if;
  -- The policies hide members who hide themselves (but not from themselves); the predicate is repeated so
  -- service_role, which bypasses them, gets the public view too.
  select coalesce(jsonb_agg(x.item order by x.rank, x.profile_id), '[]'), count(*)
    into v_items, v_count
    from (select r.rank, r.profile_id, jsonb_build_object(
                   'rank', r.rank, 'profile_id', r.profile_id, 'display_name', p.display_name,
                   'avatar_url', p.avatar_url, 'xp', r.xp, 'reward_xp', r.reward_xp,
                   'reward_points', r.reward_points, 'title', r.title) as item
            from public.season_results r
            join public.profiles p on p.id = r.profile_id
           where r.season_id = v_season.id and (p.leaderboard_visible or p.id = v_uid)
             and (v_rank is null or (r.rank, r.profile_id) > (v_rank, v_profile))
           order by r.rank, r.profile_id
           limit list_season_results.size + 1) x;
  if v_count > list_season_results.size then
    v_items := v_items - list_season_results.size;
  end if;
  return jsonb_build_object(
    'season', jsonb_build_object('id', v_season.id, 'layer', v_season.layer_slug, 'name', v_season.name,
                                 'starts_at', v_season.starts_at, 'ends_at', v_season.ends_at,
                                 'finalized_at', v_season.finalized_at),
    'items', v_items,
    'next_cursor', case when v_count > list_season_results.size
                        then (v_items -> (list_season_results.size - 1) ->> 'rank') || ':'
                             || (v_items -> (list_season_results.size - 1) ->> 'profile_id') end);
end
$$;

comment on function public.list_season_results(bigint, integer, text) is
  'The archived final standings of a season, best first: {season {id, layer, name, starts_at, ends_at, '
  'finalized_at}, items [{rank, profile_id, display_name, avatar_url, xp, reward_xp, reward_points, title}], '
  'next_cursor (text for the next page, null on the last)}. Empty until the season is finalized. Members who '
  'hide from leaderboards are left out for everyone but themselves. size 1-100. Errors: XPBAD (size, cursor, '
  'unknown season).';

revoke all on function public.list_season_results(bigint, integer, text) from public;

grant execute on function public.list_season_results(bigint, integer, text) to anon, authenticated, service_role;

-- from supabase/sql/68_ledger_reads.sql -------------------------------------

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
                   'receipt', l.receipt) as entry
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
  'actor_role, reason, reverses_id, receipt (what the call that wrote the entry answered)}], next_cursor '
  '(text to pass as cursor for the next page, null on the last)}. size 1-100. Entries are ordered by id '
  '(recording order), so a page never shifts when older activity is backfilled. Errors: 42501 when not '
  'signed in, XPBAD.';

revoke all on function public.list_my_ledger(integer, text) from public, anon;

grant execute on function public.list_my_ledger(integer, text) to authenticated;

-- from supabase/sql/75_notifications_chat.sql -------------------------------

create or replace function public.list_notifications(
  size integer default 50,
  cursor text default null,
  unread_only boolean default false
)
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
  v_unread bigint;
begin
  if v_uid is null then
    raise exception 'Sign in to read your notifications' using errcode = '42501';
  end if;
  if list_notifications.size is null or list_notifications.size not between 1 and 100 then
    raise exception 'size must be 1 to 100' using errcode = 'XPBAD';
  end if;
  if list_notifications.cursor is not null then
    if list_notifications.cursor !~ '^[1-9][0-9]{0,17}$' then
      raise exception 'Not a notifications cursor: %', left(list_notifications.cursor, 40) using errcode = 'XPBAD';
    end if;
    v_before := list_notifications.cursor::bigint;
  end if;
  -- One row more than asked says whether another page follows.
  select coalesce(jsonb_agg(x.item order by x.id desc), '[]'), count(*)
    into v_items, v_count
    from (select n.id, jsonb_build_object('id', n.id, 'kind', n.kind, 'title', n.title, 'body', n.body,
                                          'data', n.data, 'created_at', n.created_at, 'read_at', n.read_at) as item
            from public.notifications n
           where n.profile_id = v_uid and (v_before is null or n.id < v_before)
             and (not coalesce(list_notifications.unread_only, false) or n.read_at is null)
           order by n.id desc
           limit list_notifications.size + 1) x;
  select count(*) into v_unread from public.notifications n where n.profile_id = v_uid and n.read_at is null;
  if v_count > list_notifications.size then
    v_items := v_items - list_notifications.size;
  end if;
  return jsonb_build_object(
    'items', v_items,
    'next_cursor', case when v_count > list_notifications.size
                        then v_items -> (list_notifications.size - 1) ->> 'id' end,
    'unread', v_unread);
end
$$;

comment on function public.list_notifications(integer, text, boolean) is
  'The signed-in member''s notifications, newest first: {items [{id, kind, title, body, data, created_at, '
  'read_at (UTC, null while unread)}], next_cursor (text for the next page, null on the last), unread (how '
  'many are unread in all)}. size 1-100; unread_only leaves read ones out. Errors: 42501 when not signed in, '
  'XPBAD.';

revoke all on function public.list_notifications(integer, text, boolean) from public, anon;

grant execute on function public.list_notifications(integer, text, boolean) to authenticated;

create or replace function public.mark_notifications_read(ids bigint[] default null, up_to_id bigint default null)
returns jsonb
language plpgsql
volatile
security invoker
set search_path = ''
as $$
declare
  v_uid uuid := (select auth.uid());
  v_marked integer;
  v_unread bigint;
begin
  if v_uid is null then
    raise exception 'Sign in to mark notifications read' using errcode = '42501';
  end if;
  if (mark_notifications_read.ids is null) = (mark_notifications_read.up_to_id is null) then
    raise exception 'Name either ids or up_to_id' using errcode = 'XPBAD';
  end if;
  if cardinality(mark_notifications_read.ids) not between 1 and 100 then
    raise exception 'ids must hold 1 to 100 ids' using errcode = 'XPBAD';
  end if;
  update public.notifications n
     set read_at = now()
   where n.profile_id = v_uid and n.read_at is null
     and (n.id = any (mark_notifications_read.ids) or n.id <= mark_notifications_read.up_to_id);
  get diagnostics v_marked = row_count;
  select count(*) into v_unread from public.notifications n where n.profile_id = v_uid and n.read_at is null;
  return jsonb_build_object('marked', v_marked, 'unread', v_unread);
end
$$;

comment on function public.mark_notifications_read(bigint[], bigint) is
  'Marks the signed-in member''s notifications read: those in ids (1-100), or every one up to and including '
  'up_to_id (name exactly one). Ids of other members'' notifications are ignored (the policy hides them). '
  'Returns {marked (rows changed now; already read ones are not counted), unread (left unread)}. Errors: 42501 '
  'when not signed in, XPBAD.';

revoke all on function public.mark_notifications_read(bigint[], bigint) from public, anon;

grant execute on function public.mark_notifications_read(bigint[], bigint) to authenticated;
