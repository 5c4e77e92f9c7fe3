-- leaderboards_hide_suspended
--
-- Written by `xpbase migration new` from the feature files in supabase/sql/:
-- the function and trigger definitions that changed since the last migration.
-- Edit the feature files, not this file; landed migrations never change.
-- Changed:
--   function private.finalize_seasons(timestamptz)
--   function public.list_season_results(int8, int4, text)
--   function public.leaderboard_suspended_ids()
--   function private.tg_moderation_actions__leaderboard_suspensions()
--   trigger public.moderation_actions._600_leaderboard_suspensions
--   function public.leaderboard(text, text, int8, int4, int4)
--   function public.leaderboard_rank(uuid, text, text, int8)
--   function public.leaderboard_around(uuid, text, text, int8, int4)
--   function public.guild_leaderboard(text, int4, int4)
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
     where sc.season_id = v_season.id and sc.xp > 0 and p.leaderboard_visible and not (p.id = any (v_susp));
    get diagnostics v_participants = row_count;
    insert into public.season_results (season_id, profile_id, rank, xp)
    select sc.season_id, sc.profile_id,
           1 + (select count(*) from public.season_scores o join public.profiles op on op.id = o.profile_id
                 where o.season_id = sc.season_id and o.xp > sc.xp and op.leaderboard_visible
                   and not (op.id = any (v_susp))),
           sc.xp
      from public.season_scores sc join public.profiles p on p.id = sc.profile_id
     where sc.season_id = v_season.id and sc.xp > 0 and not (p.leaderboard_visible and not (p.id = any (v_susp)));

    select r.reward_activity into v_activity from public.season_rules r where r.layer_slug = v_season.layer_slug;
    v_rewarded := 0;
    for v_row in
      select res.profile_id, res.rank, res.xp, w.xp as reward_xp, w.points as reward_points, w.title
        from public.season_results res
        join public.season_scores sc on sc.season_id = res.season_id and sc.profile_id = res.profile_id
        join public.profiles vp on vp.id = res.profile_id and vp.leaderboard_visible and not (vp.id = any (v_susp))
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
             and ((p.leaderboard_visible and not (p.id = any (v_susp))) or p.id = v_uid)
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

-- Leaderboards: all-time, per layer and per season; top N, a member's rank and the members
-- around them, with hidden members left out by policy (members who hide themselves, and suspended
-- members while the suspension is in force); the exact count histogram behind ranks.
--
-- Tables: public.leaderboard_counts, public.leaderboard_count_deltas, public.leaderboard_suspensions.
-- Tests: tests/sql/test_leaderboards.py

------------------------------------------------------------------------------
-- Leaderboards (issue 4)
--
-- Security invoker: the profiles, profile_layers and season_scores policies
-- decide who is listed (visible members, plus a hidden member for themself).
-- The queries repeat the policies' predicate, so service_role, which bypasses
-- RLS (the bot posting in a public channel), gets the public view too.
-- Tie rule: equal XP shares a rank (rank()); among equals whoever reached the
-- score first is listed first, then the profile id.
------------------------------------------------------------------------------

------------------------------------------------------------------------------
-- Suspended members (issue 13): hidden from every board while a suspension is
-- in force. The histogram below counts them (a suspension's end changes nothing
-- stored), and the boards take them out at read time: listings filter them,
-- ranks subtract the suspended members the counts hold.
------------------------------------------------------------------------------
create or replace function public.leaderboard_suspended_ids()
returns uuid[]
language plpgsql
stable
security invoker
set search_path = ''
as $$
begin
  -- Members and anon read through the policy, which shows the suspensions in force; roles that bypass RLS
  -- (service_role, definer code) apply the same test here. Each branch is planned only when it runs, so anon
  -- never names the until column it may not read.
  if row_security_active('public.leaderboard_suspensions') then
    return array(select distinct s.profile_id from public.leaderboard_suspensions s);
  end if;
  return array(select distinct s.profile_id from public.leaderboard_suspensions s
                where s.until is null or s.until > now());
end
$$;

comment on function public.leaderboard_suspended_ids() is
  'The profile ids under a suspension in force now (until null or later than now, not lifted): uuid[], read '
  'once per board call. Every leaderboard leaves them out. No errors.';

revoke all on function public.leaderboard_suspended_ids() from public;

grant execute on function public.leaderboard_suspended_ids() to anon, authenticated, service_role;

create or replace function private.tg_moderation_actions__leaderboard_suspensions()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  if new.kind <> 'suspension' then
    return null;
  end if;
  if new.lifted_at is null then
    insert into public.leaderboard_suspensions (moderation_action_id, profile_id, until)
    values (new.id, new.profile_id, new.until)
    on conflict (moderation_action_id) do update set until = excluded.until;
  else
    delete from public.leaderboard_suspensions s where s.moderation_action_id = new.id;
  end if;
  return null;
end
$$;

comment on function private.tg_moderation_actions__leaderboard_suspensions() is
  'Mirrors the suspensions not lifted into public.leaderboard_suspensions (a lift removes the row).';

revoke all on function private.tg_moderation_actions__leaderboard_suspensions() from public;

drop trigger if exists _600_leaderboard_suspensions on public.moderation_actions;

create trigger _600_leaderboard_suspensions after insert or update of until, lifted_at on public.moderation_actions
  for each row execute function private.tg_moderation_actions__leaderboard_suspensions();

create or replace function public.leaderboard(
  board text default 'all_time',
  layer text default null,
  season_id bigint default null,
  page_size integer default 50,
  page integer default 1
)
returns setof public.leaderboard_entry
language plpgsql
stable
security invoker
set search_path = ''
-- Plans with the caller's values as parameters are as good here and save replanning on every call.
set plan_cache_mode = force_generic_plan
as $$
declare
  v_scope record;
  v_uid uuid := (select auth.uid());
  v_susp uuid[] := public.leaderboard_suspended_ids();
  v_offset integer;
begin
  if page_size is null or page_size not between 1 and 100 then
    raise exception 'page_size must be 1 to 100' using errcode = 'XPBAD';
  end if;
  if page is null or page < 1 or page > 1000000 then
    raise exception 'page must be 1 or more' using errcode = 'XPBAD';
  end if;
  v_offset := (page - 1) * page_size;
  select z.board_name as board,
         case when z.board_name = 'layer' then z.layer_slug else '' end as layer_key,
         case when z.board_name = 'season' then coalesce(z.season, 0) else 0 end as season_key
    into v_scope
    from public.leaderboard_scope(board, layer, season_id) z;
  -- The window runs over rows already in board order (the subquery walks the board's index), so the page
  -- costs offset + page_size index entries, not the whole board.
  return query
    select rank() over (order by e.xp desc), e.profile_id, e.display_name, e.avatar_url, e.xp, e.level, e.tier
      from (select e.profile_id, e.display_name, e.avatar_url, e.xp, e.level, e.tier, e.reached_at
              from public.leaderboard_entries e
             where e.board = v_scope.board and e.layer_slug = v_scope.layer_key
               and e.season_id = v_scope.season_key
               and ((e.visible and not (e.profile_id = any (v_susp))) or e.profile_id = v_uid)
             order by e.xp desc, e.reached_at, e.profile_id) e
     order by e.xp desc, e.reached_at, e.profile_id
    offset v_offset limit page_size;
end
$$;

comment on function public.leaderboard(text, text, bigint, integer, integer) is
  'One page of a leaderboard: rows (rank, profile_id, display_name, avatar_url, xp, level, tier), best first. '
  'board: all_time (total XP), layer (XP in layer, default engine_settings.default_layer) or season (XP in '
  'season_id, default the layer''s running season). Equal XP shares a rank; among equals whoever reached the '
  'score first comes first. Members who hide themselves (leaderboard_visible = false) and suspended members '
  '(while the suspension is in force) are left out for everyone but themselves. page_size 1-100, page from 1. Errors: XPBAD.';

revoke all on function public.leaderboard(text, text, bigint, integer, integer) from public;

grant execute on function public.leaderboard(text, text, bigint, integer, integer) to anon, authenticated, service_role;

create or replace function public.leaderboard_rank(
  profile_id uuid,
  board text default 'all_time',
  layer text default null,
  season_id bigint default null
)
returns jsonb
language plpgsql
stable
security invoker
set search_path = ''
-- Plans with the caller's values as parameters are as good here and save replanning on every call.
set plan_cache_mode = force_generic_plan
as $$
declare
  v_scope record;
  v_uid uuid := (select auth.uid());
  v_susp uuid[] := public.leaderboard_suspended_ids();
  v_xp bigint;
  v_visible boolean;
  v_self_hidden bigint;
  v_susp_total bigint;
  v_susp_above bigint;
  v_rank bigint;
  v_total bigint;
begin
  select z.board_name as board, z.layer_slug as layer, z.season as season_id,
         case when z.board_name = 'layer' then z.layer_slug else '' end as layer_key,
         case when z.board_name = 'season' then coalesce(z.season, 0) else 0 end as season_key,
         case z.board_name when 'all_time' then '' when 'layer' then z.layer_slug else z.season::text end as count_key
    into v_scope
    from public.leaderboard_scope(board, layer, season_id) z;
  -- The member's entry as the caller may read it (RLS), and the caller's own entry when they hide:
  -- the counts hold visible members only.
  select e.xp, e.visible and not (e.profile_id = any (v_susp)) into v_xp, v_visible from public.leaderboard_entries e
   where e.board = v_scope.board and e.layer_slug = v_scope.layer_key and e.season_id = v_scope.season_key
     and e.profile_id = leaderboard_rank.profile_id;
  select e.xp into v_self_hidden from public.leaderboard_entries e
   where e.board = v_scope.board and e.layer_slug = v_scope.layer_key and e.season_id = v_scope.season_key
     and e.profile_id = v_uid and not (e.visible and not (e.profile_id = any (v_susp)));
  if not coalesce(v_visible or leaderboard_rank.profile_id = v_uid, false) then
    v_xp := null;
  end if;
  -- The counts hold suspended members (a suspension's end changes nothing stored): take them out here.
  select count(*), count(*) filter (where e.xp > v_xp) into v_susp_total, v_susp_above
    from public.leaderboard_entries e
   where e.board = v_scope.board and e.layer_slug = v_scope.layer_key and e.season_id = v_scope.season_key
     and e.visible and e.profile_id = any (v_susp);
  select coalesce(sum(x.n), 0) - v_susp_total + (v_self_hidden is not null)::integer into v_total
    from (select c.members as n from public.leaderboard_counts c
           where c.board = v_scope.board and c.scope = v_scope.count_key and c.level = 7
          union all
          select d.delta from public.leaderboard_count_deltas d
           where d.board = v_scope.board and d.scope = v_scope.count_key and d.level = 7) x;
  if v_xp is not null then
    v_rank := 1 + public.leaderboard_members_above(v_scope.board, v_scope.count_key, v_xp) - v_susp_above
                + coalesce(v_self_hidden > v_xp, false)::integer;
  end if;
  return jsonb_build_object(
    'profile_id', leaderboard_rank.profile_id, 'board', v_scope.board, 'layer', v_scope.layer,
    'season_id', v_scope.season_id, 'rank', v_rank, 'xp', v_xp, 'total', v_total);
end
$$;

comment on function public.leaderboard_rank(uuid, text, text, bigint) is
  'A member''s place on a leaderboard as the caller sees it: {profile_id, board, layer, season_id, rank, xp, '
  'total}. rank = 1 + the listed members with more XP (equal XP shares a rank); rank and xp are null when the '
  'member is hidden from the caller or not on the board; total counts the members listed. Errors: XPBAD.';

revoke all on function public.leaderboard_rank(uuid, text, text, bigint) from public;

grant execute on function public.leaderboard_rank(uuid, text, text, bigint) to anon, authenticated, service_role;

create or replace function public.leaderboard_around(
  profile_id uuid,
  board text default 'all_time',
  layer text default null,
  season_id bigint default null,
  radius integer default 5
)
returns setof public.leaderboard_entry
language plpgsql
stable
security invoker
set search_path = ''
-- Plans with the caller's values as parameters are as good here and save replanning on every call.
set plan_cache_mode = force_generic_plan
as $$
declare
  v_scope record;
  v_uid uuid := (select auth.uid());
  v_susp uuid[] := public.leaderboard_suspended_ids();
  v_xp bigint;
  v_reached_at timestamptz;
  v_visible boolean;
  v_self_hidden bigint;
begin
  if radius is null or radius not between 0 and 50 then
    raise exception 'radius must be 0 to 50' using errcode = 'XPBAD';
  end if;
  select z.board_name as board,
         case when z.board_name = 'layer' then z.layer_slug else '' end as layer_key,
         case when z.board_name = 'season' then coalesce(z.season, 0) else 0 end as season_key,
         case z.board_name when 'all_time' then '' when 'layer' then z.layer_slug else z.season::text end as count_key
    into v_scope
    from public.leaderboard_scope(board, layer, season_id) z;
  -- The member's entry as the caller may read it (RLS), and the caller's own entry when they hide:
  -- the counts hold visible members only.
  select e.xp, e.reached_at, e.visible and not (e.profile_id = any (v_susp)) into v_xp, v_reached_at, v_visible
    from public.leaderboard_entries e
   where e.board = v_scope.board and e.layer_slug = v_scope.layer_key and e.season_id = v_scope.season_key
     and e.profile_id = leaderboard_around.profile_id;
  select e.xp into v_self_hidden from public.leaderboard_entries e
   where e.board = v_scope.board and e.layer_slug = v_scope.layer_key and e.season_id = v_scope.season_key
     and e.profile_id = v_uid and not (e.visible and not (e.profile_id = any (v_susp)));
  if v_xp is null or not coalesce(v_visible or leaderboard_around.profile_id = v_uid, false) then
    return;
  end if;
  -- Each part walks the board's index outwards from the member (their XP and moment are index bounds), and the
  -- ranks come from public.leaderboard_counts: the cost is the window, never the whole board.
  return query
  -- not materialized: each use below is inlined, so its filters reach the board's index.
  with board as not materialized (
    select e.profile_id, e.xp, e.reached_at, e.visible from public.leaderboard_entries e
     where e.board = v_scope.board and e.layer_slug = v_scope.layer_key and e.season_id = v_scope.season_key
       and ((e.visible and not (e.profile_id = any (v_susp))) or e.profile_id = v_uid)
  ),
  win as (
    select * from (
      (select b.profile_id as id, b.xp, b.reached_at from board b
        where b.xp = v_xp and (b.reached_at, b.profile_id) < (v_reached_at, leaderboard_around.profile_id)
        order by b.reached_at desc, b.profile_id desc limit radius)
      union all
      (select b.profile_id, b.xp, b.reached_at from board b
        where b.xp > v_xp
        order by b.xp, b.reached_at desc, b.profile_id desc limit radius)
      order by 2, 3 desc, 1 desc limit radius
    ) above
    union all
    select leaderboard_around.profile_id, v_xp, v_reached_at
    union all
    select * from (
      (select b.profile_id, b.xp, b.reached_at from board b
        where b.xp = v_xp and (b.reached_at, b.profile_id) > (v_reached_at, leaderboard_around.profile_id)
        order by b.reached_at, b.profile_id limit radius)
      union all
      (select b.profile_id, b.xp, b.reached_at from board b
        where b.xp < v_xp
        order by b.xp desc, b.reached_at, b.profile_id limit radius)
      order by 2 desc, 3, 1 limit radius
    ) below
  ),
  -- The counts hold suspended members: take out those above and at the window's best XP.
  top as materialized (
    select t.xp, public.leaderboard_members_above(v_scope.board, v_scope.count_key, t.xp)
                 - (select count(*) from public.leaderboard_entries s
                     where s.board = v_scope.board and s.layer_slug = v_scope.layer_key
                       and s.season_id = v_scope.season_key and s.visible and s.profile_id = any (v_susp)
                       and s.xp > t.xp) as above,
           (select coalesce(sum(x.n), 0)
              from (select c.members as n from public.leaderboard_counts c
                     where c.board = v_scope.board and c.scope = v_scope.count_key and c.level = 0 and c.bucket = t.xp
                    union all
                    select d.delta from public.leaderboard_count_deltas d
                     where d.board = v_scope.board and d.scope = v_scope.count_key and d.level = 0
                       and d.bucket = t.xp) x)::bigint
           - (select count(*) from public.leaderboard_entries s
               where s.board = v_scope.board and s.layer_slug = v_scope.layer_key
                 and s.season_id = v_scope.season_key and s.visible and s.profile_id = any (v_susp)
                 and s.xp = t.xp) as tied
      from (select max(win.xp) as xp from win) t
  )
  -- rank(v) = 1 + visible members above v + the caller when hidden and above v. Above the window's best XP
  -- they come from the counts; below it, add the visible members at that best XP (counts, level 0) and the
  -- window's own rows in between (every member with XP strictly between two window rows is in the window).
  select 1 + top.above + coalesce(v_self_hidden > w.xp, false)::integer
           + case when w.xp = top.xp then 0
                  else top.tied + (select count(*) from win v
                                    where v.xp > w.xp and v.xp < top.xp and (v.id <> v_uid or v_self_hidden is null))
             end,
         w.id, p.display_name, p.avatar_url, w.xp, p.level, p.tier
    from win w cross join top join public.profiles p on p.id = w.id
   order by w.xp desc, w.reached_at, w.id;
end
$$;

comment on function public.leaderboard_around(uuid, text, text, bigint, integer) is
  'The members around one member on a leaderboard (radius 0-50 on each side), same rows and rules as '
  'public.leaderboard; empty when the member is hidden from the caller or not on the board. Errors: XPBAD.';

revoke all on function public.leaderboard_around(uuid, text, text, bigint, integer) from public;

grant execute on function public.leaderboard_around(uuid, text, text, bigint, integer) to anon, authenticated, service_role;

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
       and ((e.visible and not (e.profile_id = any (v_susp))) or e.profile_id = v_uid)
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
  select p.id, p.xp, p.level, p.tier, p.leaderboard_visible and not (p.id = any (v_susp)) as leaderboard_visible
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
   where m.guild_id = p_guild_id and p.leaderboard_visible and not (p.id = any (v_susp));
  if v_member and v_profile.leaderboard_visible then
    select 1 + count(*) into v_rank
      from public.discord_guild_members m join public.profiles p on p.id = m.profile_id
     where m.guild_id = p_guild_id and p.leaderboard_visible and not (p.id = any (v_susp))
       and p.xp > v_profile.xp;
  end if;
  return jsonb_build_object('guild_id', p_guild_id, 'user_id', p_user_id, 'profile_id', v_profile.id,
                            'member', v_member, 'rank', v_rank, 'total', v_total, 'xp', v_profile.xp,
                            'level', v_profile.level, 'tier', v_profile.tier);
end
$$;

comment on function private.discord_guild_rank(text, text) is 'Implementation of public.service_role_discord_guild_rank.';

revoke all on function private.discord_guild_rank(text, text) from public;

grant execute on function private.discord_guild_rank(text, text) to service_role;
