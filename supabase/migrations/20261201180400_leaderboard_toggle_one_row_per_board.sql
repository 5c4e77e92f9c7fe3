-- leaderboard_toggle_one_row_per_board
--
-- Written by `xpbase migration new` from the feature files in supabase/sql/:
-- the function and trigger definitions that changed since the last migration.
-- Edit the feature files, not this file; landed migrations never change.
-- Changed:
--   function public.leaderboard_members_above(text, text, int8)
--   function public.leaderboard_rank(uuid, text, text, int8)
--   function public.leaderboard_around(uuid, text, text, int8, int4)
--   function private.leaderboard_count_move(text, text, int8, int8)
--   function private.compact_leaderboard_counts()

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
  select sum(y.n)::bigint from (
  select coalesce(sum(x.n), 0)::bigint as n
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
  -- Members who entered or left the board since the last compaction: one row each at level -1, bucket = XP.
  union all
  select coalesce(sum(d.delta), 0)::bigint from public.leaderboard_count_deltas d
   where d.board = leaderboard_members_above.board and d.scope = leaderboard_members_above.scope
     and d.level = -1 and d.bucket > leaderboard_members_above.xp
  ) y
$$;

comment on function public.leaderboard_members_above(text, text, bigint) is
  'How many visible members have more XP than xp on a board (board all_time|layer|season; scope '''' for '
  'all_time, the layer slug, or the season id as text), from public.leaderboard_counts plus the changes not yet '
  'folded in: at most 8 x 63 rows, whatever the board''s size, plus the members who entered or left the board '
  'since the last compaction. The rank of a visible member is 1 + this.';

revoke all on function public.leaderboard_members_above(text, text, bigint) from public;

grant execute on function public.leaderboard_members_above(text, text, bigint) to anon, authenticated, service_role;

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

------------------------------------------------------------------------------
-- Leaderboard counts (issue 4): an exact histogram of visible members per
-- board at 8 levels of 64-wide XP buckets, kept by triggers, so that the
-- number of members above an XP is a sum of at most 8 x 63 rows.
------------------------------------------------------------------------------
create or replace function private.leaderboard_count_move(p_board text, p_scope text, p_old bigint, p_new bigint)
returns void
language sql
volatile
security definer
set search_path = ''
as $$
-- One member leaves XP p_old (null: was not counted) for p_new (null: is not counted any more). A score
-- change appends -1 and +1 rows for the levels whose bucket changes (a +15 XP award usually touches level 0
-- alone). Entering or leaving the board (a first score, showing or hiding oneself, a suspension does not
-- count here) appends one row at level -1 whose bucket is the XP itself (issue 18: a visibility toggle used
-- to append 8 per board); readers count it at every level and compaction spreads it over the 8 levels.
-- Appended in one insert: nothing shared is updated, so concurrent awards never wait for each other here.
-- Once both buckets agree at a level they agree at every higher level too.
  insert into public.leaderboard_count_deltas (board, scope, level, bucket, delta)
  select p_board, p_scope, -1, coalesce(p_new, p_old), case when p_new is null then -1 else 1 end
   where (p_old is null) <> (p_new is null)
  union all
  select p_board, p_scope, l.level, m.bucket, m.delta
    from generate_series(0, 7) as l (level)
   cross join lateral (values (p_old >> (6 * l.level), -1), (p_new >> (6 * l.level), 1)) as m (bucket, delta)
   where p_old is not null and p_new is not null
     and (p_old >> (6 * l.level)) is distinct from (p_new >> (6 * l.level))
$$;

comment on function private.leaderboard_count_move(text, text, bigint, bigint) is
  'Moves one member between XP buckets of a board''s counts (null = not counted).';

revoke all on function private.leaderboard_count_move(text, text, bigint, bigint) from public;

create or replace function private.compact_leaderboard_counts()
returns bigint
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_rows bigint;
begin
  -- One compactor at a time; the rows it deletes are exactly the ones it folds in (deltas of transactions
  -- still running are invisible to it and stay for the next run).
  if not pg_try_advisory_xact_lock(hashtextextended('xpbase.compact_leaderboard_counts', 0)) then
    return 0;
  end if;
  with moved as (
    delete from public.leaderboard_count_deltas d returning d.board, d.scope, d.level, d.bucket, d.delta
  ), folded as (
    insert into public.leaderboard_counts as c (board, scope, level, bucket, members)
    -- A level -1 row (a member entering or leaving, bucket = XP) counts at each of the 8 levels.
    select m.board, m.scope, l.level, l.bucket, sum(m.delta)
      from moved m
      cross join lateral (select m.level, m.bucket where m.level >= 0
                          union all
                          select g, m.bucket >> (6 * g) from generate_series(0, 7) g where m.level = -1) l (level, bucket)
     group by m.board, m.scope, l.level, l.bucket
    having sum(m.delta) <> 0
     order by 1, 2, 3, 4
    on conflict (board, scope, level, bucket) do update set members = c.members + excluded.members
  )
  select count(*) into v_rows from moved;
  delete from public.leaderboard_counts c where c.members = 0;
  return v_rows;
end
$$;

comment on function private.compact_leaderboard_counts() is 'Implementation of public.service_role_compact_leaderboard_counts.';

revoke all on function private.compact_leaderboard_counts() from public;

grant execute on function private.compact_leaderboard_counts() to service_role;
