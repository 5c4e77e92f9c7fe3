-- leaderboard_visibility_per_board
--
-- Written by `xpbase migration new` from the feature files in supabase/sql/:
-- the function and trigger definitions that changed since the last migration.
-- Edit the feature files, not this file; landed migrations never change.
-- Changed:
--   function private.on_season_board(uuid, int8)
--   function private.finalize_seasons(timestamptz)
--   function public.list_season_results(int8, int4, text)
--   function private.rebuild_leaderboard_counts()
--   function private.tg_profiles__leaderboard_counts()
--   function private.tg_board_scores__leaderboard_counts()
--   function private.tg_leaderboard_hidden_boards__leaderboard_counts()
--   trigger public.leaderboard_hidden_boards._600_leaderboard_counts
--   function public.my_leaderboard_visibility()
--   function public.set_leaderboard_visibility(bool, jsonb)
--   function public.guild_leaderboard(text, int4, int4)
--   function private.on_server_board(uuid, text)
--   function private.discord_guild_rank(text, text)

-- from supabase/sql/45_season_finalize.sql ----------------------------------

-- Finalizing seasons: a finished season is frozen once (standings, rewards, notifications),
-- idempotently; listing seasons and their archived results.
--
-- Tables: public.season_results, public.season_rewards.
-- Tests: tests/sql/test_season_finalize.py

------------------------------------------------------------------------------
-- Seasons: finalizing (issue 4)
------------------------------------------------------------------------------
create or replace function private.on_season_board(p_profile_id uuid, p_season_id bigint)
returns boolean
language sql
stable
security definer
set search_path = ''
as $$
  select not exists (select 1 from public.leaderboard_hidden_boards h join public.seasons s on s.layer_slug = h.scope
                      where h.profile_id = p_profile_id and h.board = 'season' and s.id = p_season_id)
$$;

comment on function private.on_season_board(uuid, bigint) is
  'Whether a member stays on a season''s board as far as leaderboard_hidden_boards goes (they did not leave the '
  'season boards of its layer); leaderboard_visible and suspensions are asked apart.';

revoke all on function private.on_season_board(uuid, bigint) from public;

create or replace function private.finalize_seasons(p_at timestamptz)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_at timestamptz := coalesce(p_at, now());
  v_season public.seasons;
  v_activity text;
  v_row record;
  v_award jsonb;
  v_participants integer;
  v_rewarded integer;
  v_done jsonb := '[]';
  v_seasons bigint[];
  -- Suspended members (issue 13) are off the boards while the suspension is in force, so off the archive too.
  v_susp uuid[] := public.leaderboard_suspended_ids();
begin
  -- Finalizing is never ahead of now (a running season is not over): XPTIM, XPINF for infinity.
  perform private.assert_time(p_at, 'at', interval '5 minutes');
  -- Lock order (issue 18): seasons first, then every profile that will get a reward, in profile id order,
  -- before any award; the award path takes the profile lock first and only a key-share lock on the season
  -- (its foreign key), which "for no key update" does not block. skip locked: two services finalizing at
  -- once split the seasons between them instead of waiting.
  v_seasons := array(
    select s.id from public.seasons s
     where s.finalized_at is null and s.ends_at <= v_at
     order by s.ends_at, s.id
     for no key update skip locked);
  perform 1 from public.profiles p
   where p.id in (select v.profile_id
                    from (select sc.season_id, sc.profile_id, rank() over (partition by sc.season_id order by sc.xp desc) as rank
                            from public.season_scores sc join public.profiles vp on vp.id = sc.profile_id
                           where sc.season_id = any (v_seasons) and sc.xp > 0 and vp.leaderboard_visible
                             and private.on_season_board(vp.id, sc.season_id)
                             and not (vp.id = any (v_susp))) v
                    join public.seasons s on s.id = v.season_id
                    join public.season_rewards w on w.layer_slug = s.layer_slug and v.rank between w.rank_from and w.rank_to)
   order by p.id
   for update;
  for v_season in
    select s.* from public.seasons s where s.id = any (v_seasons) order by s.ends_at, s.id
  loop
    -- Archived ranks follow the live boards' privacy: visible members are ranked among themselves; a member
    -- who hides gets the place they would see for themselves (1 + visible members with more XP), takes no
    -- rank from anyone and no reward slot (the reward loop below reads visible members only).
    insert into public.season_results (season_id, profile_id, rank, xp)
    select sc.season_id, sc.profile_id, rank() over (order by sc.xp desc), sc.xp
      from public.season_scores sc join public.profiles p on p.id = sc.profile_id
     where sc.season_id = v_season.id and sc.xp > 0 and p.leaderboard_visible and not (p.id = any (v_susp))
       and private.on_season_board(p.id, sc.season_id);
    get diagnostics v_participants = row_count;
    insert into public.season_results (season_id, profile_id, rank, xp)
    select sc.season_id, sc.profile_id,
           1 + (select count(*) from public.season_scores o join public.profiles op on op.id = o.profile_id
                 where o.season_id = sc.season_id and o.xp > sc.xp and op.leaderboard_visible
                   and private.on_season_board(op.id, o.season_id)
                   and not (op.id = any (v_susp))),
           sc.xp
      from public.season_scores sc join public.profiles p on p.id = sc.profile_id
     where sc.season_id = v_season.id and sc.xp > 0
       and not (p.leaderboard_visible and not (p.id = any (v_susp)) and private.on_season_board(p.id, sc.season_id));

    select r.reward_activity into v_activity from public.season_rules r where r.layer_slug = v_season.layer_slug;
    v_rewarded := 0;
    for v_row in
      select res.profile_id, res.rank, res.xp, w.xp as reward_xp, w.points as reward_points, w.title
        from public.season_results res
        join public.season_scores sc on sc.season_id = res.season_id and sc.profile_id = res.profile_id
        join public.profiles vp on vp.id = res.profile_id and vp.leaderboard_visible and not (vp.id = any (v_susp))
                                   and private.on_season_board(vp.id, res.season_id)
        join public.season_rewards w
          on w.layer_slug = v_season.layer_slug and res.rank between w.rank_from and w.rank_to
       where res.season_id = v_season.id
       order by res.rank, sc.reached_at, res.profile_id
    loop
      v_award := null;
      if v_row.reward_xp > 0 and v_activity is not null then
        -- Granted now (or at p_at when that is earlier, for backfills): awards never happen in the future.
        v_award := private.award_xp(v_row.profile_id, v_activity,
                                    'season_reward:' || v_season.id || ':' || v_row.profile_id,
                                    v_row.reward_xp, least(v_at, now()),
                                    jsonb_build_object('season_id', v_season.id, 'rank', v_row.rank));
      end if;
      if v_row.reward_points > 0 then
        -- On the points ledger (32_points.sql), once per season and member.
        perform private.apply_points(
          v_row.profile_id, 'season_reward', v_row.reward_points,
          'season_reward_points:' || v_season.id || ':' || v_row.profile_id, null, 'service_role',
          v_season.name || ': rank ' || v_row.rank,
          jsonb_build_object('fn', 'finalize_seasons', 'season_id', v_season.id, 'points', v_row.reward_points),
          jsonb_build_object('season_id', v_season.id, 'rank', v_row.rank), false);
      end if;
      update public.season_results res
         set reward_xp = coalesce((v_award ->> 'granted')::integer, 0),
             reward_points = v_row.reward_points,
             title = v_row.title,
             ledger_id = (v_award ->> 'ledger_id')::bigint
       where res.season_id = v_season.id and res.profile_id = v_row.profile_id;
      insert into public.notifications (profile_id, kind, title, body, data)
      values (v_row.profile_id, 'season_result',
              v_season.name || ': rank ' || v_row.rank,
              concat_ws(', ',
                        nullif(coalesce((v_award ->> 'granted')::integer, 0), 0) || ' XP',
                        nullif(v_row.reward_points, 0) || ' points',
                        case when v_row.title is not null then 'title "' || v_row.title || '"' end),
              jsonb_build_object('season_id', v_season.id, 'layer', v_season.layer_slug, 'season', v_season.name,
                                 'rank', v_row.rank, 'xp', v_row.xp,
                                 'reward_xp', coalesce((v_award ->> 'granted')::integer, 0),
                                 'reward_points', v_row.reward_points, 'title', v_row.title));
      v_rewarded := v_rewarded + 1;
    end loop;

    update public.seasons s set finalized_at = v_at where s.id = v_season.id;
    v_done := v_done || jsonb_build_object('season_id', v_season.id, 'layer', v_season.layer_slug,
                                           'name', v_season.name, 'participants', v_participants,
                                           'rewarded', v_rewarded);
  end loop;
  return jsonb_build_object('finalized', v_done, 'count', jsonb_array_length(v_done),
                            'at', private.utc_text(v_at));
end
$$;

comment on function private.finalize_seasons(timestamptz) is 'Implementation of public.finalize_seasons.';

revoke all on function private.finalize_seasons(timestamptz) from public;

grant execute on function private.finalize_seasons(timestamptz) to service_role;

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
  v_susp uuid[] := public.leaderboard_suspended_ids();
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
           where r.season_id = v_season.id
             and ((p.leaderboard_visible and not (p.id = any (v_susp))
                   and not exists (select 1 from public.leaderboard_hidden_boards h
                                    where h.profile_id = p.id and h.board = 'season'
                                      and h.scope = v_season.layer_slug))
                  or p.id = v_uid)
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
  'hide from leaderboards, and suspended members while suspended, are left out for everyone but themselves. size 1-100. Errors: XPBAD (size, cursor, '
  'unknown season).';

revoke all on function public.list_season_results(bigint, integer, text) from public;

grant execute on function public.list_season_results(bigint, integer, text) to anon, authenticated, service_role;

-- from supabase/sql/60_leaderboards.sql -------------------------------------

create or replace function private.rebuild_leaderboard_counts()
returns void
language sql
volatile
security definer
set search_path = ''
as $$
  delete from public.leaderboard_count_deltas;
  delete from public.leaderboard_counts;
  insert into public.leaderboard_counts (board, scope, level, bucket, members)
  select e.board, e.scope, l.level, e.xp >> (6 * l.level), count(*)
    from (
      select e.board, case e.board when 'all_time' then '' when 'layer' then e.layer_slug
                                    else e.season_id::text end as scope, e.xp
        from public.leaderboard_entries e where e.visible
    ) e
    cross join generate_series(0, 7) as l (level)
   group by 1, 2, 3, 4;
$$;

comment on function private.rebuild_leaderboard_counts() is
  'Recomputes public.leaderboard_counts from scratch (after a bulk load that bypassed triggers). Superuser/owner only.';

revoke all on function private.rebuild_leaderboard_counts() from public;

create or replace function private.tg_profiles__leaderboard_counts()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_old_visible boolean := tg_op <> 'INSERT' and old.leaderboard_visible;
  v_new_visible boolean := tg_op <> 'DELETE' and new.leaderboard_visible;
  v_row record;
begin
  if tg_op = 'UPDATE' and old.xp = new.xp and v_old_visible = v_new_visible then
    return null;
  end if;
  -- A member who left the all-time board alone (leaderboard_hidden_boards) is not counted there either way.
  if tg_op = 'INSERT' or not exists (select 1 from public.leaderboard_hidden_boards h
                                      where h.profile_id = old.id and h.board = 'all_time' and h.scope = '') then
    perform private.leaderboard_count_move(
      'all_time', '',
      case when v_old_visible then old.xp end,
      case when v_new_visible then new.xp end);
  end if;
  if tg_op = 'UPDATE' and v_old_visible <> v_new_visible then
    -- Showing or hiding oneself moves every board the member is on (but those they left one by one).
    for v_row in select pl.layer_slug, pl.xp from public.profile_layers pl
                  where pl.profile_id = new.id
                    and not exists (select 1 from public.leaderboard_hidden_boards h
                                     where h.profile_id = new.id and h.board = 'layer' and h.scope = pl.layer_slug)
    loop
      perform private.leaderboard_count_move('layer', v_row.layer_slug,
        case when v_old_visible then v_row.xp end, case when v_new_visible then v_row.xp end);
    end loop;
    for v_row in select sc.season_id, sc.xp from public.season_scores sc join public.seasons s on s.id = sc.season_id
                  where sc.profile_id = new.id
                    and not exists (select 1 from public.leaderboard_hidden_boards h
                                     where h.profile_id = new.id and h.board = 'season' and h.scope = s.layer_slug)
    loop
      perform private.leaderboard_count_move('season', v_row.season_id::text,
        case when v_old_visible then v_row.xp end, case when v_new_visible then v_row.xp end);
    end loop;
  end if;
  return null;
end
$$;

comment on function private.tg_profiles__leaderboard_counts() is
  'Keeps public.leaderboard_counts in step with profiles.xp and leaderboard_visible (boards the member left '
  'in leaderboard_hidden_boards excepted).';

revoke all on function private.tg_profiles__leaderboard_counts() from public;

create or replace function private.tg_board_scores__leaderboard_counts()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
-- Shared by profile_layers (board layer, scope layer_slug) and season_scores (board season, scope season_id).
declare
  v_profile_id uuid := case when tg_op = 'DELETE' then old.profile_id else new.profile_id end;
  v_visible boolean;
  v_old_scope text;
  v_new_scope text;
  v_board text := case when tg_table_name = 'profile_layers' then 'layer' else 'season' end;
begin
  select p.leaderboard_visible into v_visible from public.profiles p where p.id = v_profile_id;
  if not coalesce(v_visible, false) then
    return null;
  end if;
  -- Left this board alone (leaderboard_hidden_boards: a layer board, or the season boards of a layer)?
  if tg_table_name = 'profile_layers' then
    if exists (select 1 from public.leaderboard_hidden_boards h
                where h.profile_id = v_profile_id and h.board = 'layer'
                  and h.scope = case when tg_op = 'DELETE' then old.layer_slug else new.layer_slug end) then
      return null;
    end if;
  elsif exists (select 1 from public.leaderboard_hidden_boards h join public.seasons s on s.layer_slug = h.scope
                 where h.profile_id = v_profile_id and h.board = 'season'
                   and s.id = case when tg_op = 'DELETE' then old.season_id else new.season_id end) then
    return null;
  end if;
  if tg_table_name = 'profile_layers' then
    v_old_scope := case when tg_op <> 'INSERT' then old.layer_slug end;
    v_new_scope := case when tg_op <> 'DELETE' then new.layer_slug end;
  else
    v_old_scope := case when tg_op <> 'INSERT' then old.season_id::text end;
    v_new_scope := case when tg_op <> 'DELETE' then new.season_id::text end;
  end if;
  if tg_op = 'UPDATE' and old.xp = new.xp and v_old_scope = v_new_scope then
    return null;
  end if;
  if v_old_scope is not distinct from v_new_scope then
    perform private.leaderboard_count_move(v_board, v_new_scope, old.xp, new.xp);
  else
    if v_old_scope is not null then
      perform private.leaderboard_count_move(v_board, v_old_scope, old.xp, null);
    end if;
    if v_new_scope is not null then
      perform private.leaderboard_count_move(v_board, v_new_scope, null, new.xp);
    end if;
  end if;
  return null;
end
$$;

comment on function private.tg_board_scores__leaderboard_counts() is
  'Keeps public.leaderboard_counts in step with profile_layers and season_scores (visible members only, and '
  'not on the boards they left in leaderboard_hidden_boards).';

revoke all on function private.tg_board_scores__leaderboard_counts() from public;

------------------------------------------------------------------------------
-- Visibility per board (issue 13 item 3): a member leaves some boards and
-- stays on others (public.leaderboard_hidden_boards, written by the member
-- under its policies); the counts follow.
------------------------------------------------------------------------------
create or replace function private.tg_leaderboard_hidden_boards__leaderboard_counts()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_row public.leaderboard_hidden_boards := case when tg_op = 'DELETE' then old else new end;
  v_back boolean := tg_op = 'DELETE';
  v_score record;
begin
  -- A member hidden from every board (leaderboard_visible false) is counted nowhere: nothing moves.
  if not coalesce((select p.leaderboard_visible from public.profiles p where p.id = v_row.profile_id), false) then
    return null;
  end if;
  for v_score in
    select 'all_time' as board, '' as scope, p.xp from public.profiles p
     where v_row.board = 'all_time' and p.id = v_row.profile_id
    union all
    select 'layer', pl.layer_slug, pl.xp from public.profile_layers pl
     where v_row.board = 'layer' and pl.profile_id = v_row.profile_id and pl.layer_slug = v_row.scope
    union all
    select 'season', sc.season_id::text, sc.xp from public.season_scores sc join public.seasons s on s.id = sc.season_id
     where v_row.board = 'season' and sc.profile_id = v_row.profile_id and s.layer_slug = v_row.scope
  loop
    perform private.leaderboard_count_move(v_score.board, v_score.scope,
      case when v_back then null else v_score.xp end, case when v_back then v_score.xp end);
  end loop;
  return null;
end
$$;

comment on function private.tg_leaderboard_hidden_boards__leaderboard_counts() is
  'Moves a member off (insert) or back onto (delete) the counts of the boards a leaderboard_hidden_boards row '
  'names; server boards have no counts.';

revoke all on function private.tg_leaderboard_hidden_boards__leaderboard_counts() from public;

drop trigger if exists _600_leaderboard_counts on public.leaderboard_hidden_boards;

create trigger _600_leaderboard_counts after insert or delete on public.leaderboard_hidden_boards
  for each row execute function private.tg_leaderboard_hidden_boards__leaderboard_counts();

create or replace function public.my_leaderboard_visibility()
returns jsonb
language plpgsql
stable
security invoker
set search_path = ''
as $$
declare
  v_uid uuid := (select auth.uid());
begin
  if v_uid is null then
    raise exception 'Sign in to read your leaderboard visibility' using errcode = '42501';
  end if;
  return jsonb_build_object(
    'visible', (select p.leaderboard_visible from public.profiles p where p.id = v_uid),
    'hidden_boards', (select coalesce(jsonb_agg(jsonb_build_object('board', h.board, 'scope', h.scope)
                                                order by h.board, h.scope), '[]')
                        from public.leaderboard_hidden_boards h where h.profile_id = v_uid));
end
$$;

comment on function public.my_leaderboard_visibility() is
  'The signed-in member''s leaderboard visibility: {visible (false: off every board), hidden_boards [{board '
  'all_time|layer|season|server, scope ('''' for all_time, the layer slug for layer and season, the Discord '
  'guild id for server)}]}. Errors: 42501 when not signed in.';

revoke all on function public.my_leaderboard_visibility() from public, anon;

grant execute on function public.my_leaderboard_visibility() to authenticated;

create or replace function public.set_leaderboard_visibility(visible boolean default null, hidden_boards jsonb default null)
returns jsonb
language plpgsql
volatile
security invoker
set search_path = ''
as $$
declare
  v_uid uuid := (select auth.uid());
  v_item jsonb;
  v_board text;
  v_scope text;
  v_wanted text[] := '{}';
begin
  -- As the caller: the policies let a member write only their own rows and profile.
  if v_uid is null then
    raise exception 'Sign in to change your leaderboard visibility' using errcode = '42501';
  end if;
  if set_leaderboard_visibility.hidden_boards is not null then
    if jsonb_typeof(set_leaderboard_visibility.hidden_boards) <> 'array'
       or jsonb_array_length(set_leaderboard_visibility.hidden_boards) > 100 then
      raise exception 'hidden_boards must be an array of at most 100 boards' using errcode = 'XPBAD';
    end if;
    for v_item in select * from jsonb_array_elements(set_leaderboard_visibility.hidden_boards) loop
      if jsonb_typeof(v_item) <> 'object' or exists (select 1 from jsonb_object_keys(v_item) k
                                                      where k not in ('board', 'scope')) then
        raise exception 'Each hidden board is {board, scope}' using errcode = 'XPBAD';
      end if;
      v_board := v_item ->> 'board';
      v_scope := coalesce(v_item ->> 'scope', '');
      if v_board is null or v_board not in ('all_time', 'layer', 'season', 'server') then
        raise exception 'board must be all_time, layer, season or server, got %', left(coalesce(v_board, 'null'), 32)
          using errcode = 'XPBAD';
      end if;
      if v_board = 'all_time' and v_scope <> '' then
        raise exception 'The all_time board has no scope' using errcode = 'XPBAD';
      end if;
      if v_board in ('layer', 'season') and not exists (select 1 from public.layers l where l.slug = v_scope) then
        raise exception 'Unknown layer: %', left(v_scope, 64) using errcode = 'XPBAD';
      end if;
      if v_board = 'server' and v_scope !~ '^[0-9]{1,20}$' then
        raise exception 'A server board''s scope is a Discord guild id (1 to 20 digits)' using errcode = 'XPBAD';
      end if;
      v_wanted := v_wanted || (v_board || ':' || v_scope);
    end loop;
    -- Only the changes are written: boards kept stay untouched, so their counts do not move.
    delete from public.leaderboard_hidden_boards h
     where h.profile_id = v_uid and not (h.board || ':' || h.scope) = any (v_wanted);
    insert into public.leaderboard_hidden_boards (profile_id, board, scope)
    select v_uid, split_part(w, ':', 1), substr(w, strpos(w, ':') + 1) from unnest(v_wanted) w
    on conflict (profile_id, board, scope) do nothing;
  end if;
  if set_leaderboard_visibility.visible is not null then
    update public.profiles p set leaderboard_visible = set_leaderboard_visibility.visible
     where p.id = v_uid and p.leaderboard_visible is distinct from set_leaderboard_visibility.visible;
  end if;
  return public.my_leaderboard_visibility();
end
$$;

comment on function public.set_leaderboard_visibility(boolean, jsonb) is
  'Changes the signed-in member''s leaderboard visibility: visible (null keeps it; false leaves every board), '
  'hidden_boards (null keeps them; else the whole list, at most 100 {board all_time|layer|season|server, scope}; '
  'scope '''' for all_time, a layer slug for layer and season, a Discord guild id for server). Answers as '
  'my_leaderboard_visibility. Errors: 42501 when not signed in, XPBAD for a bad board or scope.';

revoke all on function public.set_leaderboard_visibility(boolean, jsonb) from public, anon;

grant execute on function public.set_leaderboard_visibility(boolean, jsonb) to authenticated;

-- from supabase/sql/93_guild_boards.sql -------------------------------------

create or replace function public.guild_leaderboard(guild_id text, page_size integer default 50, page integer default 1)
returns setof public.leaderboard_entry
language plpgsql
stable
security invoker
set search_path = ''
as $$
declare
  v_uid uuid := (select auth.uid());
  v_susp uuid[] := public.leaderboard_suspended_ids();
begin
  if guild_id is null or guild_id !~ '^[0-9]{1,20}$' then
    raise exception 'guild_id must be a Discord id (1 to 20 digits), got %', coalesce(guild_id, 'null')
      using errcode = 'XPBAD';
  end if;
  if page_size is null or page_size not between 1 and 100 then
    raise exception 'page_size must be 1 to 100' using errcode = 'XPBAD';
  end if;
  if page is null or page not between 1 and 1000000 then
    raise exception 'page must be 1 or more' using errcode = 'XPBAD';
  end if;
  -- As the caller: RLS shows the memberships and board rows of visible members (and the caller's own).
  return query
    select rank() over (order by e.xp desc), e.profile_id, e.display_name, e.avatar_url, e.xp, e.level, e.tier
      from public.discord_guild_members m
      join public.leaderboard_entries e
        on e.board = 'all_time' and e.layer_slug = '' and e.season_id = 0 and e.profile_id = m.profile_id
     where m.guild_id = guild_leaderboard.guild_id
       and ((e.visible and not (e.profile_id = any (v_susp))
             and not exists (select 1 from public.leaderboard_hidden_boards h
                              where h.profile_id = e.profile_id and h.board = 'server'
                                and h.scope = guild_leaderboard.guild_id))
            or e.profile_id = v_uid)
     order by e.xp desc, e.reached_at, e.profile_id
    offset (page - 1) * page_size limit page_size;
end
$$;

comment on function public.guild_leaderboard(text, integer, integer) is
  'One page of a Discord server''s all-time board: rows (rank, profile_id, display_name, avatar_url, xp, level, '
  'tier) of the server''s members who show themselves and are not suspended (and the caller), best first; equal XP shares a rank, '
  'whoever reached it first comes first. page_size 1-100, page from 1. Anyone may read it (like every board). '
  'Errors: XPBAD.';

revoke all on function public.guild_leaderboard(text, integer, integer) from public;

grant execute on function public.guild_leaderboard(text, integer, integer) to anon, authenticated, service_role;

create or replace function private.on_server_board(p_profile_id uuid, p_guild_id text)
returns boolean
language sql
stable
security definer
set search_path = ''
as $$
  -- A server board is the all-time board among the server's members: leaving either leaves it.
  select not exists (select 1 from public.leaderboard_hidden_boards h
                      where h.profile_id = p_profile_id
                        and ((h.board = 'all_time' and h.scope = '') or (h.board = 'server' and h.scope = p_guild_id)))
$$;

comment on function private.on_server_board(uuid, text) is
  'Whether a member stays on a Discord server''s board as far as leaderboard_hidden_boards goes (they left '
  'neither the all-time board nor that server''s); leaderboard_visible and suspensions are asked apart.';

revoke all on function private.on_server_board(uuid, text) from public;

create or replace function private.discord_guild_rank(p_guild_id text, p_user_id text)
returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_profile record;
  v_member boolean;
  v_rank bigint;
  v_total bigint;
  v_susp uuid[] := public.leaderboard_suspended_ids();
begin
  perform private.discord_id('guild_id', p_guild_id);
  perform private.discord_id('user_id', p_user_id);
  select p.id, p.xp, p.level, p.tier,
         p.leaderboard_visible and not (p.id = any (v_susp)) and private.on_server_board(p.id, p_guild_id)
           as leaderboard_visible
    into v_profile
    from public.identities i join public.profiles p on p.id = i.profile_id
   where i.provider = 'discord' and i.subject = p_user_id;
  if not found then
    raise exception 'No profile for Discord user %', p_user_id using errcode = 'XPPRF';
  end if;
  v_member := exists (select 1 from public.discord_guild_members m
                       where m.guild_id = p_guild_id and m.profile_id = v_profile.id);
  select count(*) into v_total
    from public.discord_guild_members m join public.profiles p on p.id = m.profile_id
   where m.guild_id = p_guild_id and p.leaderboard_visible and not (p.id = any (v_susp))
     and private.on_server_board(p.id, p_guild_id);
  if v_member and v_profile.leaderboard_visible then
    select 1 + count(*) into v_rank
      from public.discord_guild_members m join public.profiles p on p.id = m.profile_id
     where m.guild_id = p_guild_id and p.leaderboard_visible and not (p.id = any (v_susp))
       and private.on_server_board(p.id, p_guild_id) and p.xp > v_profile.xp;
  end if;
  return jsonb_build_object('guild_id', p_guild_id, 'user_id', p_user_id, 'profile_id', v_profile.id,
                            'member', v_member, 'rank', v_rank, 'total', v_total, 'xp', v_profile.xp,
                            'level', v_profile.level, 'tier', v_profile.tier);
end
$$;

comment on function private.discord_guild_rank(text, text) is 'Implementation of public.service_role_discord_guild_rank.';

revoke all on function private.discord_guild_rank(text, text) from public;

grant execute on function private.discord_guild_rank(text, text) to service_role;
