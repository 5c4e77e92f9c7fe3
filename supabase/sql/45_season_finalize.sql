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
  -- A season is final once it ended the late-award horizon ago (engine_settings.late_award_horizon_seconds,
  -- 48 h by default): until then a late award may still be decided into it (34_redecisions.sql).
  v_seasons := array(
    select s.id from public.seasons s
     where s.finalized_at is null
       and s.ends_at + make_interval(secs => (select coalesce(max(e.late_award_horizon_seconds), 172800)
                                                from public.engine_settings e)) <= v_at
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

create or replace function public.finalize_seasons(at timestamptz default null)
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.finalize_seasons(finalize_seasons.at)
$$;
comment on function public.finalize_seasons(timestamptz) is
  'Freezes the standings of every season that ended by at (default now) minus the late-award horizon '
  '(engine_settings.late_award_horizon_seconds, default 48 h: late awards may still reach it until then) and is '
  'not finalized yet, once: '
  'season_results gets every member with XP in it and their rank (equal XP shares a rank) among the members '
  'visible on leaderboards (a hidden member gets the place they would see for themselves, takes no one''s rank '
  'and no reward, and is listed only to themselves); the ranks named in '
  'season_rewards get their XP (award_xp with the layer''s reward activity, key season_reward:<season>:<profile>), '
  'points and title, and a season_result notification. Returns {finalized: [{season_id, layer, name, '
  'participants (visible members ranked), rewarded}], count, at}. Running it again finalizes nothing twice. '
  'at lies in [2000-01-01, now + 5 minutes] (XPTIM; XPINF for infinity). Locks the seasons, then the '
  'rewarded profiles in id order, before any award. service_role only.';
revoke all on function public.finalize_seasons(timestamptz) from public, anon, authenticated;
grant execute on function public.finalize_seasons(timestamptz) to service_role;

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
