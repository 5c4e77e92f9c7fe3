-- Leaderboard ranks: a member's place on a board (public.leaderboard_rank) and the members around them
-- (public.leaderboard_around), as the caller sees the board: the rows, tie rule and visibility of
-- public.leaderboard (60_leaderboards.sql), ranks from the count histogram, suspended members taken out
-- (61_leaderboard_visibility.sql).
--
-- Tables: none of its own (reads public.leaderboard_entries and the leaderboard counts).
-- Tests: tests/sql/test_leaderboard_ranks.py, tests/sql/test_leaderboards.py

-- Rank and around-me (issue 16 item 7): a call's cost is mostly the setting up of its statements' plans, not
-- the few index entries they read. leaderboard_rank and leaderboard_around each resolve the board, then run one
-- statement whose plan holds that board's rows only (public.leaderboard_rank_row and
-- public.leaderboard_around_rows, inlined with the board a constant): public.leaderboard_entries unions the
-- three boards with their RLS subplans, and a generic plan that keeps all three sets them all up on every call.

-- A member's rank on one board, for the caller. It is a building block: Postgres inlines it into
-- leaderboard_rank's statement, where the board is a constant, so that statement's plan holds the rows of that
-- board alone (see public.leaderboard_around_rows). Being inlined, it cannot set search_path: every name in it
-- is schema-qualified, and it runs as the caller.
create or replace function public.leaderboard_rank_row(
  board text,
  layer_key text,
  season_key bigint,
  count_key text,
  profile_id uuid
)
returns table (rank bigint, xp bigint, total bigint)
language sql
stable
security invoker
as $$
  with caller as materialized (
    select (select auth.uid()) as uid, public.leaderboard_suspended_ids() as susp
  ),
  -- The member's entry and the caller's own as the caller may read them (RLS), in one read; listed: on the
  -- board for everyone (visible, not suspended). The counts hold visible members only.
  entries as materialized (
    select e.profile_id, e.xp, e.visible and not (e.profile_id = any ((select c.susp from caller c)::uuid[])) as listed
      from public.leaderboard_entries e
     where e.board = leaderboard_rank_row.board and e.layer_slug = leaderboard_rank_row.layer_key
       and e.season_id = leaderboard_rank_row.season_key
       and (e.profile_id = leaderboard_rank_row.profile_id or e.profile_id = (select c.uid from caller c))
  ),
  me as (
    select (select m.xp from entries m
             where m.profile_id = leaderboard_rank_row.profile_id
               and (m.listed or m.profile_id = (select c.uid from caller c))) as xp,
           -- The caller's own entry when they are not listed: shown to them, not in the counts.
           (select m.xp from entries m
             where m.profile_id = (select c.uid from caller c) and not m.listed) as self_hidden
  ),
  -- The counts hold suspended members (a suspension's end changes nothing stored): take them out here.
  susp as (
    select count(*) as total, count(*) filter (where e.xp > (select me.xp from me)) as above
      from public.leaderboard_entries e
     where cardinality((select c.susp from caller c)) > 0
       and e.board = leaderboard_rank_row.board and e.layer_slug = leaderboard_rank_row.layer_key
       and e.season_id = leaderboard_rank_row.season_key
       and e.visible and e.profile_id = any ((select c.susp from caller c)::uuid[])
  )
  select case when me.xp is not null
              then 1 + public.leaderboard_members_above(leaderboard_rank_row.board, leaderboard_rank_row.count_key,
                                                        me.xp)
                   - susp.above + coalesce(me.self_hidden > me.xp, false)::integer end,
         me.xp,
         ((select coalesce(sum(x.n), 0)
             from (select c.members as n from public.leaderboard_counts c
                    where c.board = leaderboard_rank_row.board and c.scope = leaderboard_rank_row.count_key
                      and c.level = 7
                   union all
                   select d.delta from public.leaderboard_count_deltas d
                    where d.board = leaderboard_rank_row.board and d.scope = leaderboard_rank_row.count_key
                      and d.level in (7, -1)) x)
          - susp.total + (me.self_hidden is not null)::integer)::bigint
    from me cross join susp
$$;
comment on function public.leaderboard_rank_row(text, text, bigint, text, uuid) is
  'The rank of public.leaderboard_rank for a board given by its keys (board all_time|layer|season; layer_key '
  'the layer slug on the layer board else ''''; season_key the season id on the season board else 0; count_key '
  'the leaderboard_counts scope), as the caller sees it: one row (rank, xp, total); rank = 1 + the listed '
  'members with more XP, rank and xp null when the member is hidden from the caller or not on the board, total '
  'the members listed. Unchecked keys give an empty board: call public.leaderboard_rank. No errors.';
revoke all on function public.leaderboard_rank_row(text, text, bigint, text, uuid) from public;
grant execute on function public.leaderboard_rank_row(text, text, bigint, text, uuid)
  to anon, authenticated, service_role;

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
  v_row record;
begin
  select z.board_name as board, z.layer_slug as layer, z.season as season_id,
         case z.board_name when 'all_time' then '' when 'layer' then z.layer_slug else z.season::text end as count_key
    into v_scope
    from public.leaderboard_scope(board, layer, season_id) z;
  -- One statement per board, the board a constant in each (see public.leaderboard_rank_row).
  if v_scope.board = 'all_time' then
    select r.rank, r.xp, r.total into v_row
      from public.leaderboard_rank_row('all_time', '', 0, '', leaderboard_rank.profile_id) r;
  elsif v_scope.board = 'layer' then
    select r.rank, r.xp, r.total into v_row
      from public.leaderboard_rank_row('layer', v_scope.layer, 0, v_scope.count_key, leaderboard_rank.profile_id) r;
  else
    select r.rank, r.xp, r.total into v_row
      from public.leaderboard_rank_row('season', '', coalesce(v_scope.season_id, 0), v_scope.count_key,
                                       leaderboard_rank.profile_id) r;
  end if;
  return jsonb_build_object(
    'profile_id', leaderboard_rank.profile_id, 'board', v_scope.board, 'layer', v_scope.layer,
    'season_id', v_scope.season_id, 'rank', v_row.rank, 'xp', v_row.xp, 'total', v_row.total);
end
$$;
comment on function public.leaderboard_rank(uuid, text, text, bigint) is
  'A member''s place on a leaderboard as the caller sees it: {profile_id, board, layer, season_id, rank, xp, '
  'total}. rank = 1 + the listed members with more XP (equal XP shares a rank); rank and xp are null when the '
  'member is hidden from the caller or not on the board; total counts the members listed. Errors: XPBAD.';
revoke all on function public.leaderboard_rank(uuid, text, text, bigint) from public;
grant execute on function public.leaderboard_rank(uuid, text, text, bigint) to anon, authenticated, service_role;

-- The window of public.leaderboard_around on one board, for the caller. It is a building block: Postgres inlines
-- it into leaderboard_around's statement, where the board is a constant, so that statement's plan holds the
-- rows of that board alone (leaderboard_entries unions the three boards; a plan that keeps all three costs more
-- to set up on every call than the window costs to read). Being inlined, it cannot set search_path: every name
-- in it is schema-qualified, and it runs as the caller.
create or replace function public.leaderboard_around_rows(
  board text,
  layer_key text,
  season_key bigint,
  count_key text,
  profile_id uuid,
  radius integer
)
returns setof public.leaderboard_entry
language sql
stable
security invoker
as $$
  with caller as materialized (
    select (select auth.uid()) as uid, public.leaderboard_suspended_ids() as susp
  ),
  -- The member's entry and the caller's own as the caller may read them (RLS), in one read; listed: on the
  -- board for everyone (visible, not suspended). The counts hold visible members only.
  entries as materialized (
    select e.profile_id, e.xp, e.reached_at, e.display_name, e.avatar_url, e.level, e.tier,
           e.visible and not (e.profile_id = any ((select c.susp from caller c)::uuid[])) as listed
      from public.leaderboard_entries e
     where e.board = leaderboard_around_rows.board and e.layer_slug = leaderboard_around_rows.layer_key
       and e.season_id = leaderboard_around_rows.season_key
       and (e.profile_id = leaderboard_around_rows.profile_id or e.profile_id = (select c.uid from caller c))
  ),
  -- The member, when the caller may see them on the board (none: the answer is empty).
  me as materialized (
    select m.profile_id, m.xp, m.reached_at, m.display_name, m.avatar_url, m.level, m.tier from entries m
     where m.profile_id = leaderboard_around_rows.profile_id
       and (m.listed or m.profile_id = (select c.uid from caller c))
  ),
  -- The caller's own entry when they are not listed: shown to them, not in the counts.
  self as materialized (
    select (select m.xp from entries m
             where m.profile_id = (select c.uid from caller c) and not m.listed) as xp
  ),
  -- not materialized: each use below is inlined, so its filters reach the board's index.
  board as not materialized (
    select e.profile_id, e.xp, e.reached_at, e.display_name, e.avatar_url, e.level, e.tier
      from public.leaderboard_entries e
     where e.board = leaderboard_around_rows.board and e.layer_slug = leaderboard_around_rows.layer_key
       and e.season_id = leaderboard_around_rows.season_key
       and ((e.visible and not (e.profile_id = any ((select c.susp from caller c)::uuid[])))
            or e.profile_id = (select c.uid from caller c))
  ),
  -- Each part walks the board's index outwards from the member (their XP and moment are index bounds), and
  -- the ranks come from public.leaderboard_counts: the cost is the window, never the whole board.
  win as materialized (
    select * from (
      (select b.* from board b
        where b.xp = (select me.xp from me)
          and (b.reached_at, b.profile_id) < ((select me.reached_at from me), leaderboard_around_rows.profile_id)
        order by b.reached_at desc, b.profile_id desc limit least(greatest(leaderboard_around_rows.radius, 0), 50))
      union all
      (select b.* from board b
        where b.xp > (select me.xp from me)
        order by b.xp, b.reached_at desc, b.profile_id desc limit least(greatest(leaderboard_around_rows.radius, 0), 50))
      order by 2, 3 desc, 1 desc limit least(greatest(leaderboard_around_rows.radius, 0), 50)
    ) above
    union all
    select * from me
    union all
    select * from (
      (select b.* from board b
        where b.xp = (select me.xp from me)
          and (b.reached_at, b.profile_id) > ((select me.reached_at from me), leaderboard_around_rows.profile_id)
        order by b.reached_at, b.profile_id limit least(greatest(leaderboard_around_rows.radius, 0), 50))
      union all
      (select b.* from board b
        where b.xp < (select me.xp from me)
        order by b.xp desc, b.reached_at, b.profile_id limit least(greatest(leaderboard_around_rows.radius, 0), 50))
      order by 2 desc, 3, 1 limit least(greatest(leaderboard_around_rows.radius, 0), 50)
    ) below
  ),
  -- The counts hold suspended members: take out those above and at the window's best XP (nothing to take out
  -- when nobody is suspended).
  top as materialized (
    select t.xp,
           public.leaderboard_members_above(leaderboard_around_rows.board, leaderboard_around_rows.count_key, t.xp)
           - (select count(*) from public.leaderboard_entries x
               where cardinality((select c.susp from caller c)) > 0
                 and x.board = leaderboard_around_rows.board and x.layer_slug = leaderboard_around_rows.layer_key
                 and x.season_id = leaderboard_around_rows.season_key and x.visible
                 and x.profile_id = any ((select c.susp from caller c)::uuid[]) and x.xp > t.xp) as above,
           (select coalesce(sum(x.n), 0)
              from (select c.members as n from public.leaderboard_counts c
                     where c.board = leaderboard_around_rows.board and c.scope = leaderboard_around_rows.count_key
                       and c.level = 0 and c.bucket = t.xp
                    union all
                    select d.delta from public.leaderboard_count_deltas d
                     where d.board = leaderboard_around_rows.board and d.scope = leaderboard_around_rows.count_key
                       and d.level in (0, -1) and d.bucket = t.xp) x)::bigint
           - (select count(*) from public.leaderboard_entries x
               where cardinality((select c.susp from caller c)) > 0
                 and x.board = leaderboard_around_rows.board and x.layer_slug = leaderboard_around_rows.layer_key
                 and x.season_id = leaderboard_around_rows.season_key and x.visible
                 and x.profile_id = any ((select c.susp from caller c)::uuid[]) and x.xp = t.xp) as tied
      from (select max(w.xp) as xp from win w) t
     where t.xp is not null
  )
  -- rank(v) = 1 + visible members above v + the caller when hidden and above v. Above the window's best XP
  -- they come from the counts; below it, add the visible members at that best XP (counts, level 0) and the
  -- window's own rows in between (every member with XP strictly between two window rows is in the window).
  select 1 + top.above + coalesce((select self.xp from self) > w.xp, false)::integer
           + case when w.xp = top.xp then 0
                  else top.tied + (select count(*) from win v
                                    where v.xp > w.xp and v.xp < top.xp
                                      and (v.profile_id <> (select c.uid from caller c)
                                           or (select self.xp from self) is null))
             end,
         w.profile_id, w.display_name, w.avatar_url, w.xp, w.level, w.tier
    from win w cross join top
   order by w.xp desc, w.reached_at, w.profile_id
$$;
comment on function public.leaderboard_around_rows(text, text, bigint, text, uuid, integer) is
  'The rows of public.leaderboard_around for a board given by its keys (board all_time|layer|season; layer_key '
  'the layer slug on the layer board else ''''; season_key the season id on the season board else 0; count_key '
  'the leaderboard_counts scope), as the caller sees it: up to radius (clamped to 0-50) members each side of '
  'profile_id, ranked; empty when the member is hidden from the caller or not on the board. Unchecked keys give '
  'an empty board: call public.leaderboard_around. No errors.';
revoke all on function public.leaderboard_around_rows(text, text, bigint, text, uuid, integer) from public;
grant execute on function public.leaderboard_around_rows(text, text, bigint, text, uuid, integer)
  to anon, authenticated, service_role;

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
begin
  if radius is null or radius not between 0 and 50 then
    raise exception 'radius must be 0 to 50' using errcode = 'XPBAD';
  end if;
  select z.board_name as board, z.layer_slug as layer_key, z.season as season_key,
         case z.board_name when 'all_time' then '' when 'layer' then z.layer_slug else z.season::text end as count_key
    into v_scope
    from public.leaderboard_scope(board, layer, season_id) z;
  -- One statement per board, the board a constant in each (see public.leaderboard_around_rows).
  if v_scope.board = 'all_time' then
    return query select * from public.leaderboard_around_rows('all_time', '', 0, '', leaderboard_around.profile_id,
                                                              radius);
  elsif v_scope.board = 'layer' then
    return query select * from public.leaderboard_around_rows('layer', v_scope.layer_key, 0, v_scope.count_key,
                                                              leaderboard_around.profile_id, radius);
  else
    return query select * from public.leaderboard_around_rows('season', '', coalesce(v_scope.season_key, 0),
                                                              v_scope.count_key, leaderboard_around.profile_id,
                                                              radius);
  end if;
end
$$;
comment on function public.leaderboard_around(uuid, text, text, bigint, integer) is
  'The members around one member on a leaderboard (radius 0-50 on each side), same rows and rules as '
  'public.leaderboard; empty when the member is hidden from the caller or not on the board. Errors: XPBAD.';
revoke all on function public.leaderboard_around(uuid, text, text, bigint, integer) from public;
grant execute on function public.leaderboard_around(uuid, text, text, bigint, integer) to anon, authenticated, service_role;
