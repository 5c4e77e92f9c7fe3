-- oauth_state_limit_functions
--
-- Written by `xpbase migration new` from the feature files in supabase/sql/:
-- the function and trigger definitions that changed since the last migration.
-- Edit the feature files, not this file; landed migrations never change.
-- Changed:
--   function private.create_oauth_state(bytea, bytea, text, text, text, text, uuid, bool, int4, bytea)
--   function public.service_role_create_oauth_state(bytea, bytea, text, text, text, text, uuid, bool, int4, bytea)
--   drop function private.create_oauth_state(bytea, bytea, text, text, text, text, uuid, bool, int4)
--   drop function public.service_role_create_oauth_state(bytea, bytea, text, text, text, text, uuid, bool, int4)

-- No longer in the feature files.
drop function if exists private.create_oauth_state(bytea, bytea, text, text, text, text, uuid, bool, int4);
drop function if exists public.service_role_create_oauth_state(bytea, bytea, text, text, text, text, uuid, bool, int4);

-- from supabase/sql/80_sign_in.sql ------------------------------------------

-- OAuth states -----------------------------------------------------------------
create or replace function private.create_oauth_state(
  p_state_hash bytea,
  p_browser_hash bytea,
  p_provider text,
  p_redirect_uri text,
  p_code_verifier text,
  p_nonce text,
  p_link_profile_id uuid,
  p_cookie_mode boolean,
  p_ttl_seconds integer,
  p_client_hash bytea
)
returns timestamptz
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_expires_at timestamptz;
  v_settings public.auth_settings;
begin
  perform private.check_hash('state_hash', p_state_hash);
  perform private.check_hash('browser_hash', p_browser_hash);
  if p_client_hash is not null then
    perform private.check_hash('client_hash', p_client_hash);
  end if;
  perform private.check_provider(p_provider);
  if p_ttl_seconds is null or p_ttl_seconds not between 60 and 3600 then
    raise exception 'ttl_seconds must be between 60 and 3600' using errcode = 'XPBAD';
  end if;
  if p_redirect_uri is null or p_redirect_uri !~ '^https?://' or length(p_redirect_uri) > 2000 then
    raise exception 'redirect_uri must be an http(s) URL of at most 2000 characters' using errcode = 'XPBAD';
  end if;
  if p_code_verifier is null or p_code_verifier !~ '^[A-Za-z0-9._~-]{43,128}$' then
    raise exception 'code_verifier must be 43 to 128 unreserved characters (RFC 7636)' using errcode = 'XPBAD';
  end if;
  if p_nonce is null or length(p_nonce) not between 16 and 128 then
    raise exception 'nonce must be 16 to 128 characters' using errcode = 'XPBAD';
  end if;
  if p_link_profile_id is not null and not exists (select 1 from public.profiles p where p.id = p_link_profile_id) then
    raise exception 'Unknown profile: %', p_link_profile_id using errcode = 'XPPRF';
  end if;

  -- One sign-in starts at a time, so the counts below are exact (a short insert; sign-ins are rare).
  perform pg_advisory_xact_lock(hashtextextended('xpbase.oauth_states', 0));
  delete from private.oauth_states s where s.expires_at < now();
  select * into v_settings from public.auth_settings limit 1;
  if p_client_hash is not null
     and (select count(*) from private.oauth_states s where s.client_hash = p_client_hash)
         >= coalesce(v_settings.oauth_states_per_client, 20) then
    raise exception 'Too many sign-ins started from this address; finish one or wait a few minutes'
      using errcode = 'XPRAT';
  end if;
  if (select count(*) from private.oauth_states) >= coalesce(v_settings.oauth_states_total, 10000) then
    raise exception 'Too many sign-ins in flight; try again in a few minutes' using errcode = 'XPRAT';
  end if;
  insert into private.oauth_states (
    state_hash, browser_hash, provider, redirect_uri, code_verifier, nonce, link_profile_id, cookie_mode, expires_at,
    client_hash
  ) values (
    p_state_hash, p_browser_hash, p_provider, p_redirect_uri, p_code_verifier, p_nonce, p_link_profile_id,
    coalesce(p_cookie_mode, false), now() + make_interval(secs => p_ttl_seconds), p_client_hash
  )
  returning expires_at into v_expires_at;
  return v_expires_at;
end
$$;

comment on function private.create_oauth_state(bytea, bytea, text, text, text, text, uuid, boolean, integer, bytea) is
  'Implementation of public.service_role_create_oauth_state.';

revoke all on function private.create_oauth_state(bytea, bytea, text, text, text, text, uuid, boolean, integer, bytea) from public;

grant execute on function private.create_oauth_state(bytea, bytea, text, text, text, text, uuid, boolean, integer, bytea) to service_role;

create or replace function public.service_role_create_oauth_state(
  state_hash bytea,
  browser_hash bytea,
  provider text,
  redirect_uri text,
  code_verifier text,
  nonce text,
  link_profile_id uuid,
  cookie_mode boolean,
  ttl_seconds integer,
  client_hash bytea default null
)
returns timestamptz
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.create_oauth_state(
    service_role_create_oauth_state.state_hash, service_role_create_oauth_state.browser_hash,
    service_role_create_oauth_state.provider, service_role_create_oauth_state.redirect_uri,
    service_role_create_oauth_state.code_verifier, service_role_create_oauth_state.nonce,
    service_role_create_oauth_state.link_profile_id, service_role_create_oauth_state.cookie_mode,
    service_role_create_oauth_state.ttl_seconds, service_role_create_oauth_state.client_hash)
$$;

comment on function public.service_role_create_oauth_state(bytea, bytea, text, text, text, text, uuid, boolean, integer, bytea) is
  'Remembers a sign-in in flight for ttl_seconds (60-3600): sha256 of the state and of the browser nonce it is '
  'bound to, the provider, the exact redirect_uri, the PKCE code_verifier, the OIDC nonce, the profile to link '
  'to (null for a sign-in), whether tokens go to cookies and the sha256 of the client''s address (null: '
  'unknown). Deletes expired states. At most auth_settings.oauth_states_per_client states of one client and '
  'oauth_states_total of all clients may be in flight. Returns expires_at. Errors: XPBAD malformed input, XPPRF '
  'unknown link profile, XPRAT a limit reached. service_role only.';

revoke all on function public.service_role_create_oauth_state(bytea, bytea, text, text, text, text, uuid, boolean, integer, bytea) from public, anon, authenticated;

grant execute on function public.service_role_create_oauth_state(bytea, bytea, text, text, text, text, uuid, boolean, integer, bytea) to service_role;
