-- Supabase compatibility layer for plain Postgres.
--
-- Supabase projects already have the roles `anon`, `authenticated` and
-- `service_role`, the `auth` schema with `auth.uid()`, `auth.role()` and
-- `auth.jwt()`, the `extensions` schema (with pg_stat_statements) and the
-- `supabase_realtime` publication. A plain Postgres (the embedded server, CI, a
-- self-hosted cluster) has none of them, so `xpbase migrate` applies this
-- script first, and only when the `auth` schema is missing. It is never
-- applied on Supabase.
--
-- The definitions follow Supabase's own (supabase/postgres, migrations/db/
-- init-scripts/00000000000001-auth-schema.sql): the claims come from the
-- `request.jwt.claims` setting that PostgREST (and xpbase's Python code) sets
-- inside each transaction, with the older per-claim settings as a fallback.

do $$
begin
  if not exists (select 1 from pg_roles where rolname = 'anon') then
    create role anon nologin noinherit;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'authenticated') then
    create role authenticated nologin noinherit;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'service_role') then
    create role service_role nologin noinherit bypassrls;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'authenticator') then
    create role authenticator noinherit login;
  end if;
end
$$;

grant anon, authenticated, service_role to authenticator;

create schema if not exists auth;
grant usage on schema auth to anon, authenticated, service_role;

create or replace function auth.uid()
returns uuid
language sql
stable
as $$
  select
    coalesce(
      nullif(current_setting('request.jwt.claim.sub', true), ''),
      (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
    )::uuid
$$;
comment on function auth.uid() is 'The `sub` claim of the current request: the caller''s profile id, or null.';

create or replace function auth.role()
returns text
language sql
stable
as $$
  select
    coalesce(
      nullif(current_setting('request.jwt.claim.role', true), ''),
      (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role')
    )::text
$$;
comment on function auth.role() is 'The `role` claim of the current request (anon, authenticated or service_role), or null.';

create or replace function auth.jwt()
returns jsonb
language sql
stable
as $$
  select
    coalesce(
      nullif(current_setting('request.jwt.claim', true), ''),
      nullif(current_setting('request.jwt.claims', true), '')
    )::jsonb
$$;
comment on function auth.jwt() is 'All claims of the current request as jsonb, or null.';

grant execute on function auth.uid(), auth.role(), auth.jwt() to anon, authenticated, service_role;

-- Extensions live in their own schema, as on Supabase (supabase/postgres,
-- 00000000000000-initial-schema.sql), usable by the API roles.
-- pg_stat_statements feeds `supabase inspect db outliers` and `calls`; it
-- collects only where the server preloads it (the embedded server does). A
-- Postgres without the contrib modules skips it.
create schema if not exists extensions;
grant usage on schema extensions to anon, authenticated, service_role;

do $$
begin
  if exists (select 1 from pg_available_extensions where name = 'pg_stat_statements') then
    create extension if not exists pg_stat_statements with schema extensions;
  end if;
end
$$;

-- Supabase Realtime streams the changes of the tables in this publication
-- (empty here; migration 20261130170000_realtime_publication.sql adds xpbase's).
-- Creating it needs no wal_level = logical (only streaming does); on a server
-- with a lower wal_level Postgres warns, and nothing else changes.
do $$
begin
  if not exists (select 1 from pg_publication where pubname = 'supabase_realtime') then
    create publication supabase_realtime;
  end if;
end
$$;
