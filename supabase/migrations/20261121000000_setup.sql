-- Setup: default privileges and the private schema.
--
-- Postgres grants `execute` on every new function to PUBLIC, and Supabase
-- additionally grants everything in `public` to anon and authenticated by
-- default. xpbase wants the opposite: nothing is callable or readable until a
-- later statement grants it to the narrowest role (basejump's setup migration).
-- The `private` schema holds the security-definer implementations and internal
-- state; PostgREST never exposes it.

-- Postgres' own default (execute for PUBLIC) is global: a per-schema revoke
-- cannot remove it, so it is revoked globally for the migrating role.
alter default privileges revoke execute on functions from public;
-- Supabase's defaults are per schema: revoke them where they are granted.
alter default privileges in schema public revoke execute on functions from anon, authenticated;
alter default privileges in schema public revoke all on tables from anon, authenticated;
alter default privileges in schema public revoke all on sequences from anon, authenticated;

create schema if not exists private;
comment on schema private is 'xpbase internals: security-definer implementations and engine state. Not exposed through PostgREST.';

revoke all on schema private from public;
alter default privileges in schema private revoke execute on functions from anon, authenticated;
