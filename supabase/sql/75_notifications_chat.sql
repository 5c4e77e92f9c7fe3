-- Notifications (a pg_notify for every new row; listing and marking read) and the global chat (post, history,
-- rate limit, pg_notify).
--
-- Tables: public.notifications, public.chat_messages, public.chat_settings.
-- Tests: tests/sql/test_notifications_chat.py

create or replace function private.tg_notifications__notify()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform pg_notify('xpbase_notifications',
                    json_build_object('id', new.id, 'profile_id', new.profile_id, 'kind', new.kind)::text);
  return null;
end
$$;
comment on function private.tg_notifications__notify() is 'Announces each new notification on channel xpbase_notifications.';
revoke all on function private.tg_notifications__notify() from public;

drop trigger if exists _500_notify on public.notifications;
create trigger _500_notify after insert on public.notifications
  for each row execute function private.tg_notifications__notify();

create or replace function public.list_notifications(
  size integer default 50,
  cursor text default null,
  unread_only boolean default false
)
returns jsonb
language plpgsql
stable
security invoker
set search_path = ''
as $$
declare
  v_uid uuid := (select auth.uid());
  v_before bigint;
  v_items jsonb;
  v_count integer;
  v_unread bigint;
begin
  if v_uid is null then
    raise exception 'Sign in to read your notifications' using errcode = '42501';
  end if;
  if list_notifications.size is null or list_notifications.size not between 1 and 100 then
    raise exception 'size must be 1 to 100' using errcode = 'XPBAD';
  end if;
  if list_notifications.cursor is not null then
    if list_notifications.cursor !~ '^[1-9][0-9]{0,17}$' then
      raise exception 'Not a notifications cursor: %', left(list_notifications.cursor, 40) using errcode = 'XPBAD';
    end if;
    v_before := list_notifications.cursor::bigint;
  end if;
  -- One row more than asked says whether another page follows.
  select coalesce(jsonb_agg(x.item order by x.id desc), '[]'), count(*)
    into v_items, v_count
    from (select n.id, jsonb_build_object('id', n.id, 'kind', n.kind, 'title', n.title, 'body', n.body,
                                          'data', n.data, 'created_at', n.created_at, 'read_at', n.read_at) as item
            from public.notifications n
           where n.profile_id = v_uid and (v_before is null or n.id < v_before)
             and (not coalesce(list_notifications.unread_only, false) or n.read_at is null)
           order by n.id desc
           limit list_notifications.size + 1) x;
  select count(*) into v_unread from public.notifications n where n.profile_id = v_uid and n.read_at is null;
  if v_count > list_notifications.size then
    v_items := v_items - list_notifications.size;
  end if;
  return jsonb_build_object(
    'items', v_items,
    'next_cursor', case when v_count > list_notifications.size
                        then v_items -> (list_notifications.size - 1) ->> 'id' end,
    'unread', v_unread);
end
$$;
comment on function public.list_notifications(integer, text, boolean) is
  'The signed-in member''s notifications, newest first: {items [{id, kind, title, body, data, created_at, '
  'read_at (UTC, null while unread)}], next_cursor (text for the next page, null on the last), unread (how '
  'many are unread in all)}. size 1-100; unread_only leaves read ones out. Errors: 42501 when not signed in, '
  'XPBAD.';
revoke all on function public.list_notifications(integer, text, boolean) from public, anon;
grant execute on function public.list_notifications(integer, text, boolean) to authenticated;

create or replace function public.mark_notifications_read(ids bigint[] default null, up_to_id bigint default null)
returns jsonb
language plpgsql
volatile
security invoker
set search_path = ''
as $$
declare
  v_uid uuid := (select auth.uid());
  v_marked integer;
  v_unread bigint;
begin
  if v_uid is null then
    raise exception 'Sign in to mark notifications read' using errcode = '42501';
  end if;
  if (mark_notifications_read.ids is null) = (mark_notifications_read.up_to_id is null) then
    raise exception 'Name either ids or up_to_id' using errcode = 'XPBAD';
  end if;
  if cardinality(mark_notifications_read.ids) not between 1 and 100 then
    raise exception 'ids must hold 1 to 100 ids' using errcode = 'XPBAD';
  end if;
  update public.notifications n
     set read_at = now()
   where n.profile_id = v_uid and n.read_at is null
     and (n.id = any (mark_notifications_read.ids) or n.id <= mark_notifications_read.up_to_id);
  get diagnostics v_marked = row_count;
  select count(*) into v_unread from public.notifications n where n.profile_id = v_uid and n.read_at is null;
  return jsonb_build_object('marked', v_marked, 'unread', v_unread);
end
$$;
comment on function public.mark_notifications_read(bigint[], bigint) is
  'Marks the signed-in member''s notifications read: those in ids (1-100), or every one up to and including '
  'up_to_id (name exactly one). Ids of other members'' notifications are ignored (the policy hides them). '
  'Returns {marked (rows changed now; already read ones are not counted), unread (left unread)}. Errors: 42501 '
  'when not signed in, XPBAD.';
revoke all on function public.mark_notifications_read(bigint[], bigint) from public, anon;
grant execute on function public.mark_notifications_read(bigint[], bigint) to authenticated;

------------------------------------------------------------------------------
-- Global chat (issue 4)
------------------------------------------------------------------------------

create or replace function private.post_chat_message(p_body text)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_uid uuid := (select auth.uid());
  v_settings public.chat_settings;
  v_body text := btrim(p_body, E' \t\r\n');
  v_name text;
  v_recent integer;
  v_oldest timestamptz;
  v_row public.chat_messages;
begin
  if v_uid is null then
    raise exception 'Sign in to chat' using errcode = '42501';
  end if;
  perform private.assert_not_suspended(v_uid);
  select * into v_settings from public.chat_settings limit 1;
  v_settings.max_length := coalesce(v_settings.max_length, 500);
  v_settings.rate_limit_count := coalesce(v_settings.rate_limit_count, 5);
  v_settings.rate_limit_seconds := coalesce(v_settings.rate_limit_seconds, 10);
  if v_body is null or length(v_body) = 0 then
    raise exception 'A message needs some text' using errcode = 'XPBAD';
  end if;
  if length(v_body) > v_settings.max_length then
    raise exception 'A message is at most % characters, this one has %', v_settings.max_length, length(v_body)
      using errcode = 'XPBAD';
  end if;
  if v_body ~ '[\x01-\x08\x0b\x0c\x0e-\x1f\x7f]' then
    raise exception 'A message cannot contain control characters' using errcode = 'XPBAD';
  end if;
  -- One member's posts are serialised on their profile row, so two services cannot both let a burst through.
  select p.display_name into v_name from public.profiles p where p.id = v_uid for no key update;
  if not found then
    raise exception 'Unknown profile: %', v_uid using errcode = 'XPPRF';
  end if;
  select count(*), min(m.created_at) into v_recent, v_oldest
    from (select c.created_at from public.chat_messages c
           where c.profile_id = v_uid and c.created_at > now() - make_interval(secs => v_settings.rate_limit_seconds)
           order by c.created_at desc limit v_settings.rate_limit_count) m;
  if v_recent >= v_settings.rate_limit_count then
    raise exception 'Slow down: at most % messages per % seconds', v_settings.rate_limit_count,
      v_settings.rate_limit_seconds
      using errcode = 'XPRAT',
            detail = 'retry_after_seconds=' || greatest(1, ceil(extract(epoch from
                       v_oldest + make_interval(secs => v_settings.rate_limit_seconds) - now())))::integer;
  end if;
  insert into public.chat_messages (profile_id, author_name, body)
  values (v_uid, v_name, v_body)
  returning * into v_row;
  return jsonb_build_object('id', v_row.id, 'profile_id', v_row.profile_id, 'author_name', v_row.author_name,
                            'body', v_row.body, 'created_at', private.utc_text(v_row.created_at));
end
$$;
comment on function private.post_chat_message(text) is 'Implementation of public.post_chat_message.';
revoke all on function private.post_chat_message(text) from public;
grant execute on function private.post_chat_message(text) to authenticated;

create or replace function public.post_chat_message(body text)
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.post_chat_message(post_chat_message.body)
$$;
comment on function public.post_chat_message(text) is
  'Posts a message to the global chat as the signed-in member and returns it: {id, profile_id, author_name, '
  'body, created_at}. The body is trimmed and must hold 1 to chat_settings.max_length characters without '
  'control characters (newlines and tabs are fine); a member may post chat_settings.rate_limit_count messages '
  'per rate_limit_seconds. Errors: XPBAD, XPRAT (rate limit; detail retry_after_seconds=N), 42501 when not signed in.';
revoke all on function public.post_chat_message(text) from public, anon;
grant execute on function public.post_chat_message(text) to authenticated;

create or replace function public.chat_history(size integer default 50, before_id bigint default null)
returns setof public.chat_messages
language sql
stable
security invoker
set search_path = ''
as $$
  select * from (
    select c.* from public.chat_messages c
     where chat_history.before_id is null or c.id < chat_history.before_id
     order by c.id desc
     limit least(greatest(coalesce(chat_history.size, 50), 1), 500)
  ) m
  order by m.id
$$;
comment on function public.chat_history(integer, bigint) is
  'The newest size (1-500) chat messages before message before_id (default: the newest), oldest first. '
  'Signed-in members (the chat''s policy).';
revoke all on function public.chat_history(integer, bigint) from public, anon;
grant execute on function public.chat_history(integer, bigint) to authenticated, service_role;

create or replace function private.tg_chat_messages__notify()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform pg_notify('xpbase_chat', json_build_object('id', new.id, 'profile_id', new.profile_id)::text);
  return null;
end
$$;
comment on function private.tg_chat_messages__notify() is
  'Announces each new chat message on channel xpbase_chat as {id, profile_id}: every service process then reads '
  'the stored messages for its chat websockets (any role may NOTIFY, so the payload only carries ids).';
revoke all on function private.tg_chat_messages__notify() from public;

drop trigger if exists _500_notify on public.chat_messages;
create trigger _500_notify after insert on public.chat_messages
  for each row execute function private.tg_chat_messages__notify();
