-- leaderboard_rank is one SQL statement and leaderboard_around one statement after its radius check (issue 16 item 7): the member's entry and the caller's own are read together once, and the suspension corrections run only while someone is suspended. Same answers, errors and privacy.
--
-- Written by `xpbase migration new` from the feature files in supabase/sql/:
-- the function and trigger definitions that changed since the last migration.
-- Edit the feature files, not this file; landed migrations never change.
-- Changed:
--   function public.leaderboard_rank(uuid, text, text, int8)
--   function public.leaderboard_around(uuid, text, text, int8, int4)

-- from supabase/sql/60_leaderboards.sql -------------------------------------

-- Rank and around-me (issue 16 item 7) are one statement each: a call's cost is mostly the setting up of its
-- statements' plans, not the few index entries they read, so the member's entry and the caller's own are read
-- together once, and the suspension corrections run only while someone is suspended.
create or replace function public.leaderboard_rank(
  profile_id uuid,
  board text default 'all_time',
  layer text default null,
  season_id bigint default null
)
returns jsonb
language sql
stable
security invoker
set search_path = ''
-- Plans with the caller's values as parameters are as good here and save replanning on every call.
set plan_cache_mode = force_generic_plan
as $$
  with caller as materialized (
    select (select auth.uid()) as uid, public.leaderboard_suspended_ids() as susp
  ),
  scope as materialized (
    select z.board_name as board, z.layer_slug as layer, z.season as season_id,
           case when z.board_name = 'layer' then z.layer_slug else '' end as layer_key,
           case when z.board_name = 'season' then coalesce(z.season, 0) else 0 end as season_key,
           case z.board_name when 'all_time' then '' when 'layer' then z.layer_slug
                             else z.season::text end as count_key
      from public.leaderboard_scope(leaderboard_rank.board, leaderboard_rank.layer, leaderboard_rank.season_id) z
  ),
  -- The member's entry and the caller's own as the caller may read them (RLS), in one read; listed: on the
  -- board for everyone (visible, not suspended). The counts hold visible members only.
  entries as materialized (
    select e.profile_id, e.xp, e.visible and not (e.profile_id = any ((select c.susp from caller c)::uuid[])) as listed
      from public.leaderboard_entries e
     where e.board = (select s.board from scope s) and e.layer_slug = (select s.layer_key from scope s)
       and e.season_id = (select s.season_key from scope s)
       and (e.profile_id = leaderboard_rank.profile_id or e.profile_id = (select c.uid from caller c))
  ),
  me as (
    select (select m.xp from entries m
             where m.profile_id = leaderboard_rank.profile_id
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
       and e.board = (select s.board from scope s) and e.layer_slug = (select s.layer_key from scope s)
       and e.season_id = (select s.season_key from scope s)
       and e.visible and e.profile_id = any ((select c.susp from caller c)::uuid[])
  )
  select jsonb_build_object(
           'profile_id', leaderboard_rank.profile_id, 'board', s.board, 'layer', s.layer,
           'season_id', s.season_id,
           'rank', case when me.xp is not null
                        then 1 + public.leaderboard_members_above(s.board, s.count_key, me.xp) - susp.above
                             + coalesce(me.self_hidden > me.xp, false)::integer end,
           'xp', me.xp,
           'total', (select coalesce(sum(x.n), 0)
                       from (select c.members as n from public.leaderboard_counts c
                              where c.board = s.board and c.scope = s.count_key and c.level = 7
                             union all
                             select d.delta from public.leaderboard_count_deltas d
                              where d.board = s.board and d.scope = s.count_key and d.level in (7, -1)) x)
                    - susp.total + (me.self_hidden is not null)::integer)
    from scope s cross join me cross join susp
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
begin
  if radius is null or radius not between 0 and 50 then
    raise exception 'radius must be 0 to 50' using errcode = 'XPBAD';
  end if;
  return query
  with caller as materialized (
    select (select auth.uid()) as uid, public.leaderboard_suspended_ids() as susp
  ),
  scope as materialized (
    select z.board_name as board,
           case when z.board_name = 'layer' then z.layer_slug else '' end as layer_key,
           case when z.board_name = 'season' then coalesce(z.season, 0) else 0 end as season_key,
           case z.board_name when 'all_time' then '' when 'layer' then z.layer_slug
                             else z.season::text end as count_key
      from public.leaderboard_scope(leaderboard_around.board, leaderboard_around.layer,
                                    leaderboard_around.season_id) z
  ),
  -- The member's entry and the caller's own as the caller may read them (RLS), in one read; listed: on the
  -- board for everyone (visible, not suspended). The counts hold visible members only.
  entries as materialized (
    select e.profile_id, e.xp, e.reached_at, e.display_name, e.avatar_url, e.level, e.tier,
           e.visible and not (e.profile_id = any ((select c.susp from caller c)::uuid[])) as listed
      from public.leaderboard_entries e
     where e.board = (select s.board from scope s) and e.layer_slug = (select s.layer_key from scope s)
       and e.season_id = (select s.season_key from scope s)
       and (e.profile_id = leaderboard_around.profile_id or e.profile_id = (select c.uid from caller c))
  ),
  -- The member, when the caller may see them on the board (none: the answer is empty).
  me as materialized (
    select m.profile_id, m.xp, m.reached_at, m.display_name, m.avatar_url, m.level, m.tier from entries m
     where m.profile_id = leaderboard_around.profile_id
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
     where e.board = (select s.board from scope s) and e.layer_slug = (select s.layer_key from scope s)
       and e.season_id = (select s.season_key from scope s)
       and ((e.visible and not (e.profile_id = any ((select c.susp from caller c)::uuid[])))
            or e.profile_id = (select c.uid from caller c))
  ),
  -- Each part walks the board's index outwards from the member (their XP and moment are index bounds), and
  -- the ranks come from public.leaderboard_counts: the cost is the window, never the whole board.
  win as materialized (
    select * from (
      (select b.* from board b
        where b.xp = (select me.xp from me)
          and (b.reached_at, b.profile_id) < ((select me.reached_at from me), leaderboard_around.profile_id)
        order by b.reached_at desc, b.profile_id desc limit radius)
      union all
      (select b.* from board b
        where b.xp > (select me.xp from me)
        order by b.xp, b.reached_at desc, b.profile_id desc limit radius)
      order by 2, 3 desc, 1 desc limit radius
    ) above
    union all
    select * from me
    union all
    select * from (
      (select b.* from board b
        where b.xp = (select me.xp from me)
          and (b.reached_at, b.profile_id) > ((select me.reached_at from me), leaderboard_around.profile_id)
        order by b.reached_at, b.profile_id limit radius)
      union all
      (select b.* from board b
        where b.xp < (select me.xp from me)
        order by b.xp desc, b.reached_at, b.profile_id limit radius)
      order by 2 desc, 3, 1 limit radius
    ) below
  ),
  -- The counts hold suspended members: take out those above and at the window's best XP (nothing to take out
  -- when nobody is suspended).
  top as materialized (
    select t.xp,
           public.leaderboard_members_above((select s.board from scope s), (select s.count_key from scope s), t.xp)
           - (select count(*) from public.leaderboard_entries x
               where cardinality((select c.susp from caller c)) > 0
                 and x.board = (select s.board from scope s) and x.layer_slug = (select s.layer_key from scope s)
                 and x.season_id = (select s.season_key from scope s) and x.visible
                 and x.profile_id = any ((select c.susp from caller c)::uuid[]) and x.xp > t.xp) as above,
           (select coalesce(sum(x.n), 0)
              from (select c.members as n from public.leaderboard_counts c
                     where c.board = (select s.board from scope s) and c.scope = (select s.count_key from scope s)
                       and c.level = 0 and c.bucket = t.xp
                    union all
                    select d.delta from public.leaderboard_count_deltas d
                     where d.board = (select s.board from scope s) and d.scope = (select s.count_key from scope s)
                       and d.level in (0, -1) and d.bucket = t.xp) x)::bigint
           - (select count(*) from public.leaderboard_entries x
               where cardinality((select c.susp from caller c)) > 0
                 and x.board = (select s.board from scope s) and x.layer_slug = (select s.layer_key from scope s)
                 and x.season_id = (select s.season_key from scope s) and x.visible
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
   order by w.xp desc, w.reached_at, w.profile_id;
end
$$;

comment on function public.leaderboard_around(uuid, text, text, bigint, integer) is
  'The members around one member on a leaderboard (radius 0-50 on each side), same rows and rules as '
  'public.leaderboard; empty when the member is hidden from the caller or not on the board. Errors: XPBAD.';

revoke all on function public.leaderboard_around(uuid, text, text, bigint, integer) from public;

grant execute on function public.leaderboard_around(uuid, text, text, bigint, integer) to anon, authenticated, service_role;
