-- public.leaderboard_rank and public.leaderboard_around as they were before they became one statement each
-- (supabase/sql/60_leaderboards.sql on main, issue 16 item 7): PL/pgSQL, eight and six statements a call.
-- tests/sql/test_leaderboard_ranks.py loads them into a second database as the reference the
-- current definitions must agree with.

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
           where d.board = v_scope.board and d.scope = v_scope.count_key and d.level in (7, -1)) x;
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
                     where d.board = v_scope.board and d.scope = v_scope.count_key and d.level in (0, -1)
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
