-- Helpers every feature uses: the private schema's usage grant, UTC text for receipts,
-- who is the backend (is_service_role), who may correct XP (assert_admin), and the schema version /health reports.
--
-- Tables: none of its own (reads public.profiles and supabase_migrations.schema_migrations).
-- Tests: tests/sql/test_helpers.py

grant usage on schema private to service_role, authenticated;

create or replace function private.utc_text(p_at timestamptz)
returns text
language sql
immutable
set search_path = ''
as $$
  select to_char(p_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
$$;
comment on function private.utc_text(timestamptz) is
  'ISO 8601 text of a moment in UTC (2026-11-21T04:33:10.000000Z), whatever the session time zone: the form '
  'receipts and requests store, so that equal moments compare equal.';
revoke all on function private.utc_text(timestamptz) from public;

------------------------------------------------------------------------------
-- Callers
------------------------------------------------------------------------------

create or replace function private.is_service_role()
returns boolean
language sql
stable
security invoker
set search_path = ''
as $$
  select coalesce((select auth.role()), '') = 'service_role'
     and pg_catalog.pg_has_role(
           coalesce(nullif(pg_catalog.current_setting('role', true), 'none'), session_user::text),
           'service_role', 'member')
$$;
comment on function private.is_service_role() is
  'True when the caller is the backend: the claims say role service_role AND the database role the request runs '
  'as (the role set by SET ROLE / PostgREST, else the session user) is service_role or a member of it. The '
  'claims alone are a setting anyone holding a connection can write, so an authenticated request whose claims '
  'say service_role is not the backend. The SET ROLE value survives security definer calls, so this answers the '
  'same inside private functions.';
revoke all on function private.is_service_role() from public;
grant execute on function private.is_service_role() to authenticated, service_role;

create or replace function private.assert_admin(out actor_id uuid, out actor_role text)
language plpgsql
stable
security definer
set search_path = ''
as $$
begin
  if private.is_service_role() then
    -- The backend may name the person it acts for (private.act_for); null otherwise.
    actor_id := nullif(current_setting('xpbase.actor_id', true), '')::uuid;
    actor_role := 'service_role';
    return;
  end if;
  actor_id := (select auth.uid());
  if actor_id is null or not exists (
    select 1 from public.profiles p where p.id = actor_id and p.role = 'admin'
  ) then
    raise exception 'Only admins may correct XP' using errcode = '42501';
  end if;
  actor_role := 'admin';
end
$$;
comment on function private.assert_admin() is
  'Who is correcting XP: (null, service_role) for the backend, or (the profile it acts for, service_role) '
  'inside private.act_for; (profile id, admin) for an admin member; raises 42501 for anyone else.';
revoke all on function private.assert_admin() from public;

------------------------------------------------------------------------------
-- Operations
------------------------------------------------------------------------------

create or replace function private.schema_version()
returns text
language sql
stable
security definer
set search_path = ''
as $$
  select max(m.version) from supabase_migrations.schema_migrations m
$$;
comment on function private.schema_version() is 'Implementation of public.schema_version.';
revoke all on function private.schema_version() from public;
grant execute on function private.schema_version() to service_role;

create or replace function public.schema_version()
returns text
language sql
stable
security invoker
set search_path = ''
as $$
  select private.schema_version()
$$;
comment on function public.schema_version() is
  'The newest migration version applied (YYYYMMDDHHmmss, from supabase_migrations.schema_migrations); '
  'what GET /health reports. service_role only.';
revoke all on function public.schema_version() from public, anon, authenticated;
grant execute on function public.schema_version() to service_role;

------------------------------------------------------------------------------
-- Input bounds (issue 18): every time an RPC takes lies in a sane window
------------------------------------------------------------------------------

create or replace function private.assert_time(p_at timestamptz, p_name text, p_ahead interval)
returns timestamptz
language plpgsql
stable
set search_path = ''
as $$
-- Null passes through (the caller's default applies). The window is [2000-01-01T00:00Z, now() + p_ahead]:
-- XPINF for +-infinity, XPTIM for a finite moment outside it.
begin
  if p_at is null then
    return null;
  end if;
  if not isfinite(p_at) then
    raise exception '% is %: give a finite moment (2000-01-01 to now + %)', p_name, p_at, p_ahead
      using errcode = 'XPINF';
  end if;
  if p_at < timestamptz '2000-01-01 00:00:00+00' or p_at > now() + p_ahead then
    raise exception '% % is outside 2000-01-01T00:00:00Z .. now + %', p_name,
      to_char(p_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), p_ahead
      using errcode = 'XPTIM';
  end if;
  return p_at;
end
$$;
comment on function private.assert_time(timestamptz, text, interval) is
  'p_at when it lies in [2000-01-01T00:00Z, now() + p_ahead] (null passes): raises XPINF for +-infinity and '
  'XPTIM for any other moment outside the window; p_name names the parameter in the message. Writes use '
  'p_ahead 5 minutes (clock skew), reads 366 days.';
revoke all on function private.assert_time(timestamptz, text, interval) from public;
grant execute on function private.assert_time(timestamptz, text, interval) to authenticated, service_role;

create or replace function private.assert_json_size(p_value jsonb, p_name text, p_max_bytes integer)
returns jsonb
language plpgsql
immutable
set search_path = ''
as $$
begin
  if p_value is not null and octet_length(p_value::text) > p_max_bytes then
    raise exception '% is % bytes as JSON text; at most % allowed', p_name, octet_length(p_value::text), p_max_bytes
      using errcode = 'XPBIG';
  end if;
  return p_value;
end
$$;
comment on function private.assert_json_size(jsonb, text, integer) is
  'p_value when its JSON text is at most p_max_bytes bytes (null passes); raises XPBIG otherwise.';
revoke all on function private.assert_json_size(jsonb, text, integer) from public;
