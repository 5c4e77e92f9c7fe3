-- Per-server boards: which members belong to which Discord server (recorded as the bot sees them),
-- and the all-time leaderboard and rank among one server's members (XP stays one total per community;
-- the server only filters the board). Members who hide themselves are left out, as on every board.
--
-- Tables: public.discord_guild_members.
-- Tests: tests/sql/test_guild_boards.py

create or replace function private.discord_see_members(p_guild_id text, p_members jsonb)
returns integer
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_member jsonb;
  v_profile_id uuid;
  v_seen integer := 0;
begin
  perform private.discord_id('guild_id', p_guild_id);
  if p_members is null or jsonb_typeof(p_members) <> 'array' or jsonb_array_length(p_members) > 1000 then
    raise exception 'members must be an array of at most 1000 members' using errcode = 'XPBAD';
  end if;
  for v_member in select * from jsonb_array_elements(p_members) loop
    perform private.discord_id('members[].user_id', v_member ->> 'user_id');
    v_profile_id := private.ensure_profile('discord', v_member ->> 'user_id',
                                           coalesce(v_member ->> 'display_name', 'Discord member'));
    insert into public.discord_guild_members as m (guild_id, profile_id) values (p_guild_id, v_profile_id)
    on conflict (guild_id, profile_id) do update set last_seen_at = now();
    v_seen := v_seen + 1;
  end loop;
  return v_seen;
end
$$;
comment on function private.discord_see_members(text, jsonb) is
  'Implementation of public.service_role_discord_see_members.';
revoke all on function private.discord_see_members(text, jsonb) from public;
grant execute on function private.discord_see_members(text, jsonb) to service_role;

create or replace function public.service_role_discord_see_members(guild_id text, members jsonb)
returns integer
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.discord_see_members(guild_id, members)
$$;
comment on function public.service_role_discord_see_members(text, jsonb) is
  'Records that members belong to a Discord server (the bot calls it on joins and with the member list when '
  'it becomes ready): members is at most 1000 objects {user_id (Discord id), display_name}; profiles are made '
  'for members not seen yet. Returns how many were recorded. service_role only. Errors: XPBAD.';
revoke all on function public.service_role_discord_see_members(text, jsonb) from public;
grant execute on function public.service_role_discord_see_members(text, jsonb) to service_role;

create or replace function private.discord_forget_member(p_guild_id text, p_user_id text)
returns boolean
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_gone integer;
begin
  perform private.discord_id('guild_id', p_guild_id);
  perform private.discord_id('user_id', p_user_id);
  delete from public.discord_guild_members m
   using public.identities i
   where i.provider = 'discord' and i.subject = p_user_id and m.profile_id = i.profile_id
     and m.guild_id = p_guild_id;
  get diagnostics v_gone = row_count;
  return v_gone > 0;
end
$$;
comment on function private.discord_forget_member(text, text) is
  'Implementation of public.service_role_discord_forget_member.';
revoke all on function private.discord_forget_member(text, text) from public;
grant execute on function private.discord_forget_member(text, text) to service_role;

create or replace function public.service_role_discord_forget_member(guild_id text, user_id text)
returns boolean
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.discord_forget_member(guild_id, user_id)
$$;
comment on function public.service_role_discord_forget_member(text, text) is
  'A member left a Discord server: they leave its board (their XP stays). Returns whether they were a member. '
  'service_role only. Errors: XPBAD.';
revoke all on function public.service_role_discord_forget_member(text, text) from public;
grant execute on function public.service_role_discord_forget_member(text, text) to service_role;

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

create or replace function private.on_server_board(p_profile_id uuid, p_guild_id text)
returns boolean
language sql
stable
security definer
set search_path = ''
as $$
  -- A server board is the all-time board among the server's members: leaving either leaves it.
  select not exists (select 1 from public.leaderboard_hidden_boards h
                      where h.profile_id = p_profile_id
                        and ((h.board = 'all_time' and h.scope = '') or (h.board = 'server' and h.scope = p_guild_id)))
$$;
comment on function private.on_server_board(uuid, text) is
  'Whether a member stays on a Discord server''s board as far as leaderboard_hidden_boards goes (they left '
  'neither the all-time board nor that server''s); leaderboard_visible and suspensions are asked apart.';
revoke all on function private.on_server_board(uuid, text) from public;

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
  select p.id, p.xp, p.level, p.tier,
         p.leaderboard_visible and not (p.id = any (v_susp)) and private.on_server_board(p.id, p_guild_id)
           as leaderboard_visible
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
   where m.guild_id = p_guild_id and p.leaderboard_visible and not (p.id = any (v_susp))
     and private.on_server_board(p.id, p_guild_id);
  if v_member and v_profile.leaderboard_visible then
    select 1 + count(*) into v_rank
      from public.discord_guild_members m join public.profiles p on p.id = m.profile_id
     where m.guild_id = p_guild_id and p.leaderboard_visible and not (p.id = any (v_susp))
       and private.on_server_board(p.id, p_guild_id) and p.xp > v_profile.xp;
  end if;
  return jsonb_build_object('guild_id', p_guild_id, 'user_id', p_user_id, 'profile_id', v_profile.id,
                            'member', v_member, 'rank', v_rank, 'total', v_total, 'xp', v_profile.xp,
                            'level', v_profile.level, 'tier', v_profile.tier);
end
$$;
comment on function private.discord_guild_rank(text, text) is 'Implementation of public.service_role_discord_guild_rank.';
revoke all on function private.discord_guild_rank(text, text) from public;
grant execute on function private.discord_guild_rank(text, text) to service_role;

create or replace function public.service_role_discord_guild_rank(guild_id text, user_id text)
returns jsonb
language sql
stable
security invoker
set search_path = ''
as $$
  select private.discord_guild_rank(guild_id, user_id)
$$;
comment on function public.service_role_discord_guild_rank(text, text) is
  'A Discord user''s place among one server''s members: {guild_id, user_id, profile_id, member, rank, total, '
  'xp, level, tier}. rank = 1 + the visible members with more XP; null when the user is not a recorded member '
  'or hides themselves; total counts the visible members. service_role only. Errors: XPBAD, XPPRF.';
revoke all on function public.service_role_discord_guild_rank(text, text) from public;
grant execute on function public.service_role_discord_guild_rank(text, text) to service_role;
