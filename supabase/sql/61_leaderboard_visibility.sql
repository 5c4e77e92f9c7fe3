-- Leaderboard visibility: who is on which board beyond leaderboard_visible. Suspended members are off every
-- board while the suspension is in force (read at board time, so nothing has to run when it ends), and a
-- member may leave single boards (all-time, a layer's, a layer's season boards, a Discord server's) under
-- RLS, with the leaderboard counts (60_leaderboards.sql) following them.
--
-- Tables: public.leaderboard_suspensions, public.leaderboard_hidden_boards.
-- Tests: tests/sql/test_leaderboard_visibility.py

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

------------------------------------------------------------------------------
-- Visibility per board (issue 13 item 3): a member leaves some boards and
-- stays on others (public.leaderboard_hidden_boards, written by the member
-- under its policies); the counts follow.
------------------------------------------------------------------------------

create or replace function private.tg_leaderboard_hidden_boards__leaderboard_counts()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_row public.leaderboard_hidden_boards := case when tg_op = 'DELETE' then old else new end;
  v_back boolean := tg_op = 'DELETE';
  v_score record;
begin
  -- A member hidden from every board (leaderboard_visible false) is counted nowhere: nothing moves.
  if not coalesce((select p.leaderboard_visible from public.profiles p where p.id = v_row.profile_id), false) then
    return null;
  end if;
  for v_score in
    select 'all_time' as board, '' as scope, p.xp from public.profiles p
     where v_row.board = 'all_time' and p.id = v_row.profile_id
    union all
    select 'layer', pl.layer_slug, pl.xp from public.profile_layers pl
     where v_row.board = 'layer' and pl.profile_id = v_row.profile_id and pl.layer_slug = v_row.scope
    union all
    select 'season', sc.season_id::text, sc.xp from public.season_scores sc join public.seasons s on s.id = sc.season_id
     where v_row.board = 'season' and sc.profile_id = v_row.profile_id and s.layer_slug = v_row.scope
  loop
    perform private.leaderboard_count_move(v_score.board, v_score.scope,
      case when v_back then null else v_score.xp end, case when v_back then v_score.xp end);
  end loop;
  return null;
end
$$;
comment on function private.tg_leaderboard_hidden_boards__leaderboard_counts() is
  'Moves a member off (insert) or back onto (delete) the counts of the boards a leaderboard_hidden_boards row '
  'names; server boards have no counts.';
revoke all on function private.tg_leaderboard_hidden_boards__leaderboard_counts() from public;

drop trigger if exists _600_leaderboard_counts on public.leaderboard_hidden_boards;
create trigger _600_leaderboard_counts after insert or delete on public.leaderboard_hidden_boards
  for each row execute function private.tg_leaderboard_hidden_boards__leaderboard_counts();

create or replace function public.my_leaderboard_visibility()
returns jsonb
language plpgsql
stable
security invoker
set search_path = ''
as $$
declare
  v_uid uuid := (select auth.uid());
begin
  if v_uid is null then
    raise exception 'Sign in to read your leaderboard visibility' using errcode = '42501';
  end if;
  return jsonb_build_object(
    'visible', (select p.leaderboard_visible from public.profiles p where p.id = v_uid),
    'hidden_boards', (select coalesce(jsonb_agg(jsonb_build_object('board', h.board, 'scope', h.scope)
                                                order by h.board, h.scope), '[]')
                        from public.leaderboard_hidden_boards h where h.profile_id = v_uid));
end
$$;
comment on function public.my_leaderboard_visibility() is
  'The signed-in member''s leaderboard visibility: {visible (false: off every board), hidden_boards [{board '
  'all_time|layer|season|server, scope ('''' for all_time, the layer slug for layer and season, the Discord '
  'guild id for server)}]}. Errors: 42501 when not signed in.';
revoke all on function public.my_leaderboard_visibility() from public, anon;
grant execute on function public.my_leaderboard_visibility() to authenticated;

create or replace function public.set_leaderboard_visibility(visible boolean default null, hidden_boards jsonb default null)
returns jsonb
language plpgsql
volatile
security invoker
set search_path = ''
as $$
declare
  v_uid uuid := (select auth.uid());
  v_item jsonb;
  v_board text;
  v_scope text;
  v_wanted text[] := '{}';
begin
  -- As the caller: the policies let a member write only their own rows and profile.
  if v_uid is null then
    raise exception 'Sign in to change your leaderboard visibility' using errcode = '42501';
  end if;
  if set_leaderboard_visibility.hidden_boards is not null then
    if jsonb_typeof(set_leaderboard_visibility.hidden_boards) <> 'array'
       or jsonb_array_length(set_leaderboard_visibility.hidden_boards) > 100 then
      raise exception 'hidden_boards must be an array of at most 100 boards' using errcode = 'XPBAD';
    end if;
    for v_item in select * from jsonb_array_elements(set_leaderboard_visibility.hidden_boards) loop
      if jsonb_typeof(v_item) <> 'object' or exists (select 1 from jsonb_object_keys(v_item) k
                                                      where k not in ('board', 'scope')) then
        raise exception 'Each hidden board is {board, scope}' using errcode = 'XPBAD';
      end if;
      v_board := v_item ->> 'board';
      v_scope := coalesce(v_item ->> 'scope', '');
      if v_board is null or v_board not in ('all_time', 'layer', 'season', 'server') then
        raise exception 'board must be all_time, layer, season or server, got %', left(coalesce(v_board, 'null'), 32)
          using errcode = 'XPBAD';
      end if;
      if v_board = 'all_time' and v_scope <> '' then
        raise exception 'The all_time board has no scope' using errcode = 'XPBAD';
      end if;
      if v_board in ('layer', 'season') and not exists (select 1 from public.layers l where l.slug = v_scope) then
        raise exception 'Unknown layer: %', left(v_scope, 64) using errcode = 'XPBAD';
      end if;
      if v_board = 'server' and v_scope !~ '^[0-9]{1,20}$' then
        raise exception 'A server board''s scope is a Discord guild id (1 to 20 digits)' using errcode = 'XPBAD';
      end if;
      v_wanted := v_wanted || (v_board || ':' || v_scope);
    end loop;
    -- Only the changes are written: boards kept stay untouched, so their counts do not move.
    delete from public.leaderboard_hidden_boards h
     where h.profile_id = v_uid and not (h.board || ':' || h.scope) = any (v_wanted);
    insert into public.leaderboard_hidden_boards (profile_id, board, scope)
    select v_uid, split_part(w, ':', 1), substr(w, strpos(w, ':') + 1) from unnest(v_wanted) w
    on conflict (profile_id, board, scope) do nothing;
  end if;
  if set_leaderboard_visibility.visible is not null then
    update public.profiles p set leaderboard_visible = set_leaderboard_visibility.visible
     where p.id = v_uid and p.leaderboard_visible is distinct from set_leaderboard_visibility.visible;
  end if;
  return public.my_leaderboard_visibility();
end
$$;
comment on function public.set_leaderboard_visibility(boolean, jsonb) is
  'Changes the signed-in member''s leaderboard visibility: visible (null keeps it; false leaves every board), '
  'hidden_boards (null keeps them; else the whole list, at most 100 {board all_time|layer|season|server, scope}; '
  'scope '''' for all_time, a layer slug for layer and season, a Discord guild id for server). Answers as '
  'my_leaderboard_visibility. Errors: 42501 when not signed in, XPBAD for a bad board or scope.';
revoke all on function public.set_leaderboard_visibility(boolean, jsonb) from public, anon;
grant execute on function public.set_leaderboard_visibility(boolean, jsonb) to authenticated;
