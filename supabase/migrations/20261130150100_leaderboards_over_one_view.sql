-- Leaderboards read one view: public.leaderboard_entries replaces the three per-board copies of
-- leaderboard, leaderboard_rank and leaderboard_around, and public.leaderboard_members_above the four
-- copies of "members above this XP" (issue 9).
--
-- Written by `xpbase migration new` from the feature files in supabase/sql/:
-- the function and trigger definitions that changed since the last migration.
-- Edit the feature files, not this file; landed migrations never change.
-- Changed:
--   function public.leaderboard_members_above(text, text, int8)
--   function public.leaderboard(text, text, int8, int4, int4)
--   function public.leaderboard_rank(uuid, text, text, int8)
--   function public.leaderboard_around(uuid, text, text, int8, int4)

-- from supabase/sql/60_leaderboards.sql -------------------------------------

-- Members above an XP on a board, from the count histogram: per level, the buckets after the member's
-- within its 64-block (every later bucket at the top level), at most 8 x 63 rows.
create or replace function public.leaderboard_members_above(board text, scope text, xp bigint)
returns bigint
language sql
stable
security invoker
set search_path = ''
as $$
  select coalesce(sum(x.n), 0)::bigint
    from generate_series(0, 7) as l (level)
    cross join lateral (
      select c.members as n from public.leaderboard_counts c
       where c.board = leaderboard_members_above.board and c.scope = leaderboard_members_above.scope
         and c.level = l.level
         and c.bucket > (leaderboard_members_above.xp >> (6 * l.level))
         and c.bucket <= case when l.level = 7 then 9223372036854775807
                              else (leaderboard_members_above.xp >> (6 * l.level)) | 63 end
      union all
      select d.delta from public.leaderboard_count_deltas d
       where d.board = leaderboard_members_above.board and d.scope = leaderboard_members_above.scope
         and d.level = l.level
         and d.bucket > (leaderboard_members_above.xp >> (6 * l.level))
         and d.bucket <= case when l.level = 7 then 9223372036854775807
                              else (leaderboard_members_above.xp >> (6 * l.level)) | 63 end
    ) x
$$;

comment on function public.leaderboard_members_above(text, text, bigint) is
  'How many visible members have more XP than xp on a board (board all_time|layer|season; scope '''' for '
  'all_time, the layer slug, or the season id as text), from public.leaderboard_counts plus the changes not yet '
  'folded in: at most 8 x 63 rows, whatever the board''s size. The rank of a visible member is 1 + this.';

revoke all on function public.leaderboard_members_above(text, text, bigint) from public;

grant execute on function public.leaderboard_members_above(text, text, bigint) to anon, authenticated, service_role;

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
               and e.season_id = v_scope.season_key and (e.visible or e.profile_id = v_uid)
             order by e.xp desc, e.reached_at, e.profile_id) e
     order by e.xp desc, e.reached_at, e.profile_id
    offset v_offset limit page_size;
end
$$;

comment on function public.leaderboard(text, text, bigint, integer, integer) is
  'One page of a leaderboard: rows (rank, profile_id, display_name, avatar_url, xp, level, tier), best first. '
  'board: all_time (total XP), layer (XP in layer, default engine_settings.default_layer) or season (XP in '
  'season_id, default the layer''s running season). Equal XP shares a rank; among equals whoever reached the '
  'score first comes first. Members who hide themselves (leaderboard_visible = false) are left out for everyone '
  'but themselves. page_size 1-100, page from 1. Errors: XPBAD.';

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
  v_xp bigint;
  v_visible boolean;
  v_self_hidden bigint;
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
  select e.xp, e.visible into v_xp, v_visible from public.leaderboard_entries e
   where e.board = v_scope.board and e.layer_slug = v_scope.layer_key and e.season_id = v_scope.season_key
     and e.profile_id = leaderboard_rank.profile_id;
  select e.xp into v_self_hidden from public.leaderboard_entries e
   where e.board = v_scope.board and e.layer_slug = v_scope.layer_key and e.season_id = v_scope.season_key
     and e.profile_id = v_uid and not e.visible;
  if not coalesce(v_visible or leaderboard_rank.profile_id = v_uid, false) then
    v_xp := null;
  end if;
  select coalesce(sum(x.n), 0) + (v_self_hidden is not null)::integer into v_total
    from (select c.members as n from public.leaderboard_counts c
           where c.board = v_scope.board and c.scope = v_scope.count_key and c.level = 7
          union all
          select d.delta from public.leaderboard_count_deltas d
           where d.board = v_scope.board and d.scope = v_scope.count_key and d.level = 7) x;
  if v_xp is not null then
    v_rank := 1 + public.leaderboard_members_above(v_scope.board, v_scope.count_key, v_xp)
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
  select e.xp, e.reached_at, e.visible into v_xp, v_reached_at, v_visible from public.leaderboard_entries e
   where e.board = v_scope.board and e.layer_slug = v_scope.layer_key and e.season_id = v_scope.season_key
     and e.profile_id = leaderboard_around.profile_id;
  select e.xp into v_self_hidden from public.leaderboard_entries e
   where e.board = v_scope.board and e.layer_slug = v_scope.layer_key and e.season_id = v_scope.season_key
     and e.profile_id = v_uid and not e.visible;
  if v_xp is null or not coalesce(v_visible or leaderboard_around.profile_id = v_uid, false) then
    return;
  end if;
  -- Each part walks the board's index outwards from the member (their XP and moment are index bounds), and the
  -- ranks come from public.leaderboard_counts: the cost is the window, never the whole board.
  return query
  with board as (
    select e.profile_id, e.xp, e.reached_at, e.visible from public.leaderboard_entries e
     where e.board = v_scope.board and e.layer_slug = v_scope.layer_key and e.season_id = v_scope.season_key
       and (e.visible or e.profile_id = v_uid)
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
  top as materialized (
    select t.xp, public.leaderboard_members_above(v_scope.board, v_scope.count_key, t.xp) as above,
           (select coalesce(sum(x.n), 0)
              from (select c.members as n from public.leaderboard_counts c
                     where c.board = v_scope.board and c.scope = v_scope.count_key and c.level = 0 and c.bucket = t.xp
                    union all
                    select d.delta from public.leaderboard_count_deltas d
                     where d.board = v_scope.board and d.scope = v_scope.count_key and d.level = 0
                       and d.bucket = t.xp) x)::bigint as tied
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
