-- Leaderboards: all-time, per layer and per season; top N, a member's rank and the members
-- around them, with hidden members left out by policy (members who hide themselves, and suspended
-- members while the suspension is in force); the exact count histogram behind ranks.
--
-- Who is on which board beyond leaderboard_visible (suspensions, boards left one by one):
-- 61_leaderboard_visibility.sql. A member's rank and around-me: 63_leaderboard_ranks.sql.
--
-- Tables: public.leaderboard_counts, public.leaderboard_count_deltas.
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

create or replace function public.leaderboard_scope(board text, layer text default null, season_id bigint default null)
returns table (board_name text, layer_slug text, season bigint)
language plpgsql
stable
security invoker
set search_path = ''
as $$
begin
  if leaderboard_scope.board is null or leaderboard_scope.board not in ('all_time', 'layer', 'season') then
    raise exception 'board must be all_time, layer or season, got %', coalesce(leaderboard_scope.board, 'null') using errcode = 'XPBAD';
  end if;
  board_name := leaderboard_scope.board;
  if leaderboard_scope.board = 'all_time' then
    return next;
    return;
  end if;
  if leaderboard_scope.board = 'season' and leaderboard_scope.season_id is not null then
    select s.id, s.layer_slug into season, layer_slug from public.seasons s where s.id = leaderboard_scope.season_id;
    if not found then
      raise exception 'Unknown season: %', leaderboard_scope.season_id using errcode = 'XPBAD';
    end if;
    if leaderboard_scope.layer is not null and leaderboard_scope.layer <> layer_slug then
      raise exception 'Season % belongs to layer %, not %', leaderboard_scope.season_id, layer_slug, leaderboard_scope.layer using errcode = 'XPBAD';
    end if;
    return next;
    return;
  end if;
  layer_slug := coalesce(leaderboard_scope.layer, (select e.default_layer from public.engine_settings e limit 1));
  if not exists (select 1 from public.layers l where l.slug = layer_slug) then
    raise exception 'Unknown layer: %', coalesce(leaderboard_scope.layer, 'null') using errcode = 'XPBAD';
  end if;
  if leaderboard_scope.board = 'season' then
    -- The season running now; a layer with no award this season has none yet (an empty board).
    select s.id into season from public.seasons s
     where s.layer_slug = leaderboard_scope.layer_slug and s.starts_at <= now() and now() < s.ends_at
     order by s.starts_at desc limit 1;
  end if;
  return next;
end
$$;
comment on function public.leaderboard_scope(text, text, bigint) is
  'The board a leaderboard call would show: (board_name, layer_slug, season), validated (XPBAD for an unknown '
  'board, layer or season) with the defaults filled in: the default layer, and for the season board without '
  'season_id the layer''s running season (null when it has none yet).';
revoke all on function public.leaderboard_scope(text, text, bigint) from public;
grant execute on function public.leaderboard_scope(text, text, bigint) to anon, authenticated, service_role;

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
  if page is null or page < 1 then
    raise exception 'page must be 1 or more' using errcode = 'XPBAD';
  end if;
  -- An offset page costs the rows before it (issue 18: 159 ms for page 2,000 on 200,000 members): pages reach
  -- the first 10,000 rows, and public.leaderboard_after walks the rest by cursor at the cost of one page.
  if page::bigint * page_size > 10000 then
    raise exception 'Pages reach the first 10000 rows of a board (page % of % rows ends at row %): read further '
                    'with public.leaderboard_after and its cursor', page, page_size, page::bigint * page_size
      using errcode = 'XPBAD';
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
  '(while the suspension is in force) are left out for everyone but themselves. page_size 1-100, page from 1, '
  'page * page_size at most 10,000 (deeper: public.leaderboard_after, by cursor). Errors: XPBAD (bad board, '
  'layer, season, page_size or page; a page past the first 10,000 rows).';
revoke all on function public.leaderboard(text, text, bigint, integer, integer) from public;
grant execute on function public.leaderboard(text, text, bigint, integer, integer) to anon, authenticated, service_role;

-- A member's rank and the members around them: 63_leaderboard_ranks.sql.

------------------------------------------------------------------------------
-- Leaderboard counts (issue 4): an exact histogram of visible members per
-- board at 8 levels of 64-wide XP buckets, kept by triggers, so that the
-- number of members above an XP is a sum of at most 8 x 63 rows.
------------------------------------------------------------------------------

create or replace function private.leaderboard_count_rows(p_board text, p_scope text, p_old bigint, p_new bigint)
returns table (board text, scope text, level integer, bucket bigint, delta integer)
language sql
immutable
set search_path = ''
as $$
-- One member leaves XP p_old (null: was not counted) for p_new (null: is not counted any more). A score
-- change gives -1 and +1 rows for the levels whose bucket changes (a +15 XP award usually touches level 0
-- alone). Entering or leaving the board (a first score, showing or hiding oneself, a suspension does not
-- count here) gives one row at level -1 whose bucket is the XP itself (issue 18: a visibility toggle used
-- to append 8 per board); readers count it at every level and compaction spreads it over the 8 levels.
-- Once both buckets agree at a level they agree at every higher level too.
  select p_board, p_scope, -1, coalesce(p_new, p_old), case when p_new is null then -1 else 1 end
   where (p_old is null) <> (p_new is null)
  union all
  select p_board, p_scope, l.level, m.bucket, m.delta
    from generate_series(0, 7) as l (level)
   cross join lateral (values (p_old >> (6 * l.level), -1), (p_new >> (6 * l.level), 1)) as m (bucket, delta)
   where p_old is not null and p_new is not null
     and (p_old >> (6 * l.level)) is distinct from (p_new >> (6 * l.level))
$$;
comment on function private.leaderboard_count_rows(text, text, bigint, bigint) is
  'The leaderboard_count_deltas rows (board, scope, level -1 to 7, bucket, delta +-1) that move one member '
  'of a board from XP p_old to p_new (null: not counted); none when nothing moves.';
revoke all on function private.leaderboard_count_rows(text, text, bigint, bigint) from public;

create or replace function private.leaderboard_count_move(p_board text, p_scope text, p_old bigint, p_new bigint)
returns void
language sql
volatile
security definer
set search_path = ''
as $$
  -- Appended in one insert: nothing shared is updated, so concurrent awards never wait for each other here.
  insert into public.leaderboard_count_deltas (board, scope, level, bucket, delta)
  select r.board, r.scope, r.level, r.bucket, r.delta
    from private.leaderboard_count_rows(p_board, p_scope, p_old, p_new) r
$$;
comment on function private.leaderboard_count_move(text, text, bigint, bigint) is
  'Moves one member between XP buckets of a board''s counts (null = not counted): appends the rows of '
  'private.leaderboard_count_rows.';
revoke all on function private.leaderboard_count_move(text, text, bigint, bigint) from public;

create or replace function private.leaderboard_scores(p_profiles uuid[])
returns table (board text, scope text, profile_id uuid, xp bigint)
language sql
stable
security definer
set search_path = ''
as $$
  -- What the counts hold of these members: their all-time XP, layer XP and season scores on the boards they
  -- are counted on (visible, and not a board they left in leaderboard_hidden_boards), as the count triggers
  -- below keep them.
  select 'all_time'::text, ''::text, p.id, p.xp
    from public.profiles p
   where p.id = any (p_profiles) and p.leaderboard_visible
     and not exists (select 1 from public.leaderboard_hidden_boards h
                      where h.profile_id = p.id and h.board = 'all_time' and h.scope = '')
  union all
  select 'layer', pl.layer_slug, pl.profile_id, pl.xp
    from public.profile_layers pl
    join public.profiles p on p.id = pl.profile_id and p.leaderboard_visible
   where pl.profile_id = any (p_profiles)
     and not exists (select 1 from public.leaderboard_hidden_boards h
                      where h.profile_id = pl.profile_id and h.board = 'layer' and h.scope = pl.layer_slug)
  union all
  select 'season', sc.season_id::text, sc.profile_id, sc.xp
    from public.season_scores sc
    join public.seasons s on s.id = sc.season_id
    join public.profiles p on p.id = sc.profile_id and p.leaderboard_visible
   where sc.profile_id = any (p_profiles)
     and not exists (select 1 from public.leaderboard_hidden_boards h
                      where h.profile_id = sc.profile_id and h.board = 'season' and h.scope = s.layer_slug)
$$;
comment on function private.leaderboard_scores(uuid[]) is
  'The board scores (board all_time/layer/season, scope, profile_id, xp) of these members as the leaderboard '
  'counts hold them: visible members, boards they did not leave.';
revoke all on function private.leaderboard_scores(uuid[]) from public;

create or replace function private.leaderboard_counts_since(
  p_profiles uuid[], p_board text[], p_scope text[], p_profile_id uuid[], p_xp bigint[]
)
returns void
language sql
volatile
security definer
set search_path = ''
as $$
  -- A batch writer (private.award_set) reads private.leaderboard_scores of its members before it writes, with
  -- the count triggers off (xpbase.leaderboard_counts_batched = on), and hands them here afterwards: each
  -- member's move from the score before to the score now, per board, appended summed per bucket. The counts
  -- depend only on the scores counted, so this appends what the triggers' moves would have added up to.
  insert into public.leaderboard_count_deltas (board, scope, level, bucket, delta)
  select r.board, r.scope, r.level, r.bucket, sum(r.delta)
    from (select b.board, b.scope, b.profile_id, b.xp
            from unnest(p_board, p_scope, p_profile_id, p_xp) as b (board, scope, profile_id, xp)) b
    full join private.leaderboard_scores(p_profiles) n
      on n.board = b.board and n.scope = b.scope and n.profile_id = b.profile_id
   cross join lateral private.leaderboard_count_rows(coalesce(n.board, b.board), coalesce(n.scope, b.scope),
                                                    b.xp, n.xp) r
   where b.xp is distinct from n.xp
   group by r.board, r.scope, r.level, r.bucket
  having sum(r.delta) <> 0
   order by 1, 2, 3, 4
$$;
comment on function private.leaderboard_counts_since(uuid[], text[], text[], uuid[], bigint[]) is
  'Appends to leaderboard_count_deltas the moves of members p_profiles from the board scores given (what '
  'private.leaderboard_scores answered before a batch: board, scope, profile_id, xp as parallel arrays) to '
  'their scores now, summed per board, scope, level and bucket.';
revoke all on function private.leaderboard_counts_since(uuid[], text[], text[], uuid[], bigint[]) from public;

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

create or replace function public.service_role_compact_leaderboard_counts()
returns bigint
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.compact_leaderboard_counts()
$$;
comment on function public.service_role_compact_leaderboard_counts() is
  'Folds the appended leaderboard_count_deltas into leaderboard_counts and returns how many rows it folded '
  '(0 when another compaction is running). Run by the service every XPBASE_LEADERBOARD_COMPACT_INTERVAL '
  'seconds, or by pg_cron. service_role only.';
revoke all on function public.service_role_compact_leaderboard_counts() from public, anon, authenticated;
grant execute on function public.service_role_compact_leaderboard_counts() to service_role;

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

-- An import (92_imports.sql) sets xpbase.importing for its transaction and appends the count changes of its
-- whole batch itself (here and on profile_layers and season_scores below); private.award_set sets
-- xpbase.leaderboard_counts_batched while it writes a batch and appends them through
-- private.leaderboard_counts_since.
drop trigger if exists _600_leaderboard_counts on public.profiles;
create trigger _600_leaderboard_counts after insert or delete or update of xp, leaderboard_visible on public.profiles
  for each row when (current_setting('xpbase.importing', true) is distinct from 'on'
                     and current_setting('xpbase.leaderboard_counts_batched', true) is distinct from 'on')
  execute function private.tg_profiles__leaderboard_counts();

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

drop trigger if exists _600_leaderboard_counts on public.profile_layers;
create trigger _600_leaderboard_counts after insert or delete or update of xp, layer_slug on public.profile_layers
  for each row when (current_setting('xpbase.importing', true) is distinct from 'on'
                     and current_setting('xpbase.leaderboard_counts_batched', true) is distinct from 'on')
  execute function private.tg_board_scores__leaderboard_counts();
drop trigger if exists _600_leaderboard_counts on public.season_scores;
create trigger _600_leaderboard_counts after insert or delete or update of xp, season_id on public.season_scores
  for each row when (current_setting('xpbase.importing', true) is distinct from 'on'
                     and current_setting('xpbase.leaderboard_counts_batched', true) is distinct from 'on')
  execute function private.tg_board_scores__leaderboard_counts();
