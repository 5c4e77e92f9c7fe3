-- chat_notify_carries_ids
--
-- Written by `xpbase migration new` from the feature files in supabase/sql/:
-- the function and trigger definitions that changed since the last migration.
-- Edit the feature files, not this file; landed migrations never change.
-- Changed:
--   function private.tg_chat_messages__notify()

-- from supabase/sql/75_notifications_chat.sql -------------------------------

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
