-- Realtime: the tables a frontend subscribes to join the supabase_realtime publication.
--
-- supabase-js's `channel().on('postgres_changes', ...)` receives the changes of
-- the tables in Supabase's `supabase_realtime` publication, filtered by the
-- same row-level security as a select: a member hears of their own
-- notifications, the chat messages they may read, and the profile changes that
-- the profiles policies show them (level-ups, tier changes). The tables keep
-- their RLS; nothing else is published.
--
-- Supabase creates the publication with every project; on plain Postgres the
-- compat script creates it (supabase/compat/auth.sql). Where it is missing
-- (a database migrated before the compat script made it) this changes nothing,
-- and a table already in it is skipped, so the migration runs anywhere.

do $$
declare
  v_table text;
begin
  if exists (select 1 from pg_publication where pubname = 'supabase_realtime') then
    foreach v_table in array array['notifications', 'chat_messages', 'profiles'] loop
      if not exists (
        select 1
        from pg_publication_tables
        where pubname = 'supabase_realtime' and schemaname = 'public' and tablename = v_table
      ) then
        execute format('alter publication supabase_realtime add table public.%I', v_table);
      end if;
    end loop;
  end if;
end
$$;
