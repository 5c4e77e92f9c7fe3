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

-- Supabase Auth's users and identities (GoTrue's tables, supabase/auth migrations), with the columns
-- xpbase reads and the ones GoTrue always writes, under their Supabase names and types. xpbase's
-- triggers on them (supabase/sql/82_supabase_auth.sql) make a profile with the user's id and its
-- identities, so the same schema works where supabase-js signs people in. Only GoTrue (here: tests
-- and importers as the table owner) writes them; the API roles have no access, as on Supabase.
create table if not exists auth.users (
  instance_id uuid,
  id uuid primary key,
  aud varchar(255),
  role varchar(255),
  email varchar(255),
  encrypted_password varchar(255),
  email_confirmed_at timestamptz,
  last_sign_in_at timestamptz,
  raw_app_meta_data jsonb,
  raw_user_meta_data jsonb,
  is_super_admin boolean,
  created_at timestamptz,
  updated_at timestamptz,
  phone text unique default null,
  phone_confirmed_at timestamptz,
  banned_until timestamptz,
  is_sso_user boolean not null default false,
  deleted_at timestamptz,
  is_anonymous boolean not null default false
);
comment on table auth.users is 'Auth: Stores user login data within a secure schema.';

create table if not exists auth.identities (
  provider_id text not null,
  user_id uuid not null references auth.users (id) on delete cascade,
  identity_data jsonb not null,
  provider text not null,
  last_sign_in_at timestamptz,
  created_at timestamptz,
  updated_at timestamptz,
  email text generated always as (lower(identity_data ->> 'email')) stored,
  id uuid not null default gen_random_uuid() primary key,
  constraint identities_provider_id_provider_unique unique (provider_id, provider)
);
comment on table auth.identities is 'Auth: Stores identities associated to a user.';
create index if not exists identities_user_id_idx on auth.identities (user_id);
revoke all on auth.users, auth.identities from public, anon, authenticated, service_role;
