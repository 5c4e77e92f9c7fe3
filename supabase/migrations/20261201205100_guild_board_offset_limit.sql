-- guild_leaderboard pages reach the first 10,000 rows, as public.leaderboard: an offset page costs the rows before it (page 1,000,000 of 100 was allowed)
--
-- Written by `xpbase migration new` from the feature files in supabase/sql/:
-- the function and trigger definitions that changed since the last migration.
-- Edit the feature files, not this file; landed migrations never change.
-- Changed:
--   function public.guild_leaderboard(text, int4, int4)

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
  -- As public.leaderboard: an offset page costs the rows before it, so pages reach the first 10,000 rows.
  if page::bigint * page_size > 10000 then
    raise exception 'Pages reach the first 10000 rows of a board (page % of % rows ends at row %)',
                    page, page_size, page::bigint * page_size
      using errcode = 'XPBAD';
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
  'whoever reached it first comes first. page_size 1-100, page from 1, page * page_size at most 10,000. Anyone '
  'may read it (like every board). '
  'Errors: XPBAD.';

revoke all on function public.guild_leaderboard(text, integer, integer) from public;

grant execute on function public.guild_leaderboard(text, integer, integer) to anon, authenticated, service_role;
