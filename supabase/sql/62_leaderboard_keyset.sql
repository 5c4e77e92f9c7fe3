-- Leaderboards by cursor (issue 18): the next page after a row, found in the board's index instead of by
-- counting the rows before it, so page 2,000 costs what page 1 costs. The rows, tie rule and visibility are
-- public.leaderboard's (60_leaderboards.sql); ranks come from the count histogram, never from an offset.
--
-- Tables: none of its own (reads public.leaderboard_entries and the leaderboard counts).
-- Tests: tests/sql/test_leaderboard_keyset.py

------------------------------------------------------------------------------
-- The cursor is the last row's place in board order (xp desc, reached_at,
-- profile_id) as text: '<xp>.<reached_at in microseconds since 1970-01-01
-- UTC>.<profile id>', e.g. '1500.1772323200000000.0b6c…'. Clients treat it as
-- opaque; it holds nothing the page did not show but the moment the score was
-- reached. It is read strictly: only the exact form this function writes is
-- accepted (no signs, spaces, leading zeros or upper-case ids), anything else
-- is XPBAD. It names a place, not a member: if that member's score changes,
-- the next page still starts right after where the previous one ended.
------------------------------------------------------------------------------

create or replace function public.leaderboard_after(
  board text default 'all_time',
  layer text default null,
  season_id bigint default null,
  page_size integer default 50,
  after text default null
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
  v_parts text[];
  v_xp bigint;
  v_reached_at timestamptz;
  v_id uuid;
  v_self_hidden bigint;
  v_items jsonb;
  v_next text;
begin
  if page_size is null or page_size not between 1 and 100 then
    raise exception 'page_size must be 1 to 100' using errcode = 'XPBAD';
  end if;
  if leaderboard_after.after is not null then
    v_parts := regexp_match(leaderboard_after.after,
      '^(0|[1-9][0-9]{0,18})\.(0|-?[1-9][0-9]{0,15})\.([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$');
    if v_parts is null or v_parts[1]::numeric > 9223372036854775807 then
      raise exception 'after is not a leaderboard cursor: pass the next of the previous page' using errcode = 'XPBAD';
    end if;
    v_xp := v_parts[1]::bigint;
    -- Whole seconds and microseconds apart: exact (a double of seconds would round the microseconds).
    v_reached_at := timestamptz 'epoch' + (v_parts[2]::bigint / 1000000) * interval '1 second'
                    + (v_parts[2]::bigint % 1000000) * interval '1 microsecond';
    v_id := v_parts[3]::uuid;
  end if;
  select z.board_name as board,
         case when z.board_name = 'layer' then z.layer_slug else '' end as layer_key,
         case when z.board_name = 'season' then coalesce(z.season, 0) else 0 end as season_key,
         case z.board_name when 'all_time' then '' when 'layer' then z.layer_slug else z.season::text end as count_key
    into v_scope
    from public.leaderboard_scope(board, layer, season_id) z;
  -- The first page: every listed member above a row is on the page, so its ranks are rank() over the page,
  -- as public.leaderboard's page 1. One walk of the board's index, page_size + 1 rows (is there a next page?).
  if leaderboard_after.after is null then
    with win as (
      select e.profile_id, e.xp, e.reached_at, e.display_name, e.avatar_url, e.level, e.tier
        from public.leaderboard_entries e
       where e.board = v_scope.board and e.layer_slug = v_scope.layer_key and e.season_id = v_scope.season_key
         and ((e.visible and not (e.profile_id = any (v_susp))) or e.profile_id = v_uid)
       order by e.xp desc, e.reached_at, e.profile_id limit page_size + 1
    ),
    ranked as (
      select row_number() over (order by w.xp desc, w.reached_at, w.profile_id) as n,
             row(rank() over (order by w.xp desc), w.profile_id, w.display_name, w.avatar_url, w.xp, w.level,
                 w.tier)::public.leaderboard_entry as entry,
             w.xp || '.' || (extract(epoch from w.reached_at) * 1000000)::bigint || '.' || w.profile_id as place
        from win w
    )
    select coalesce(jsonb_agg(to_jsonb(r.entry) order by r.n) filter (where r.n <= page_size), '[]'::jsonb),
           case when count(*) > page_size then min(r.place) filter (where r.n = page_size) end
      into v_items, v_next
      from ranked r;
    return jsonb_build_object('items', v_items, 'next', v_next);
  end if;
  -- The caller's own entry when they hide (or are suspended): listed for them, not in the counts.
  select e.xp into v_self_hidden from public.leaderboard_entries e
   where e.board = v_scope.board and e.layer_slug = v_scope.layer_key and e.season_id = v_scope.season_key
     and e.profile_id = v_uid and not (e.visible and not (e.profile_id = any (v_susp)));
  -- not materialized: each use below is inlined, so its filters reach the board's index.
  with board as not materialized (
    select e.profile_id, e.xp, e.reached_at, e.display_name, e.avatar_url, e.level, e.tier
      from public.leaderboard_entries e
     where e.board = v_scope.board and e.layer_slug = v_scope.layer_key and e.season_id = v_scope.season_key
       and ((e.visible and not (e.profile_id = any (v_susp))) or e.profile_id = v_uid)
  ),
  -- The page and one row more. Each part walks the board's index from the cursor: the rest of the cursor's
  -- XP after it, then the XP below. The cost is the page, not the offset.
  win as materialized (
    select * from (
      (select b.* from board b
        where b.xp = v_xp and (b.reached_at, b.profile_id) > (v_reached_at, v_id)
        order by b.reached_at, b.profile_id limit page_size + 1)
      union all
      (select b.* from board b
        where b.xp < v_xp
        order by b.xp desc, b.reached_at, b.profile_id limit page_size + 1)
    ) w
    order by w.xp desc, w.reached_at, w.profile_id limit page_size + 1
  ),
  -- The counts hold suspended members: take out those above and at the page's best XP (as leaderboard_around;
  -- nothing to take out when nobody is suspended).
  top as materialized (
    select t.xp,
           public.leaderboard_members_above(v_scope.board, v_scope.count_key, t.xp)
           - case when cardinality(v_susp) = 0 then 0
                  else (select count(*) from public.leaderboard_entries s
                         where s.board = v_scope.board and s.layer_slug = v_scope.layer_key
                           and s.season_id = v_scope.season_key and s.visible
                           and s.profile_id = any (v_susp) and s.xp > t.xp) end as above,
           (select coalesce(sum(x.n), 0)
              from (select c.members as n from public.leaderboard_counts c
                     where c.board = v_scope.board and c.scope = v_scope.count_key and c.level = 0 and c.bucket = t.xp
                    union all
                    select d.delta from public.leaderboard_count_deltas d
                     where d.board = v_scope.board and d.scope = v_scope.count_key and d.level in (0, -1)
                       and d.bucket = t.xp) x)::bigint
           - case when cardinality(v_susp) = 0 then 0
                  else (select count(*) from public.leaderboard_entries s
                         where s.board = v_scope.board and s.layer_slug = v_scope.layer_key
                           and s.season_id = v_scope.season_key and s.visible
                           and s.profile_id = any (v_susp) and s.xp = t.xp) end as tied
      from (select max(w.xp) as xp from win w) t
  ),
  -- rank(v) = 1 + listed members above v: above the page's best XP from the counts, at it from the counts
  -- (level 0), and in between the page's own rows (every member with XP strictly between two rows of the
  -- page is on the page); the caller, when hidden, once, wherever they stand above v.
  ranked as (
    select row_number() over (order by w.xp desc, w.reached_at, w.profile_id) as n,
           row(1 + top.above + coalesce(v_self_hidden > w.xp, false)::integer
                 + case when w.xp = top.xp then 0
                        else top.tied + (select count(*) from win v
                                          where v.xp > w.xp and v.xp < top.xp
                                            and (v.profile_id <> v_uid or v_self_hidden is null))
                   end,
               w.profile_id, w.display_name, w.avatar_url, w.xp, w.level, w.tier)::public.leaderboard_entry as entry,
           w.xp || '.' || (extract(epoch from w.reached_at) * 1000000)::bigint || '.' || w.profile_id as place
      from win w cross join top
  )
  select coalesce(jsonb_agg(to_jsonb(r.entry) order by r.n) filter (where r.n <= page_size), '[]'::jsonb),
         case when count(*) > page_size then min(r.place) filter (where r.n = page_size) end
    into v_items, v_next
    from ranked r;
  return jsonb_build_object('items', v_items, 'next', v_next);
end
$$;
comment on function public.leaderboard_after(text, text, bigint, integer, text) is
  'One page of a leaderboard by cursor: {items [rows as public.leaderboard: rank, profile_id, display_name, '
  'avatar_url, xp, level, tier], next (text: the cursor of the page after this one, null on the last page)}. '
  'board, layer and season_id as public.leaderboard; page_size 1-100; after null for the first page, else the '
  'next of the previous page (the last row''s place, ''<xp>.<reached_at in microseconds since 1970>.<profile '
  'id>''; opaque to clients). The cost is one page at any depth, and ranks come from the count histogram, so '
  'equal XP shares a rank across pages. Same rows and privacy as public.leaderboard. Errors: XPBAD (bad board, '
  'layer, season or page_size; an after that is not a cursor this function wrote).';
revoke all on function public.leaderboard_after(text, text, bigint, integer, text) from public;
grant execute on function public.leaderboard_after(text, text, bigint, integer, text) to anon, authenticated, service_role;
