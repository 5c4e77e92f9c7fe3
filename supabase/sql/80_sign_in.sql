-- Sign-in: identities from OAuth, OAuth states, sessions and rotating refresh tokens with
-- reuse detection, and the housekeeping that purges what expired.
--
-- Tables: private.oauth_states, private.auth_sessions, private.refresh_tokens, public.auth_settings.
-- Tests: tests/sql/test_sign_in.py

------------------------------------------------------------------------------
-- Sign-in, sessions and refresh tokens
------------------------------------------------------------------------------
-- The service (service/blueprints/auth.py) proves who someone is with OAuth
-- and calls these as service_role. Secrets arrive only as sha256 hashes
-- (32 bytes): OAuth states, browser nonces and refresh tokens.
--
-- SQLSTATEs of this section (xpbase/errors.py):
--   XPRTK  unknown refresh token      XPRTX  refresh token expired
--   XPRTR  session revoked (logout or reuse of a spent token)
--   XPLNK  identity already linked to another profile
--   XPLNP  profile already has an account of that provider

create or replace function private.check_provider(p_provider text)
returns void
language plpgsql
immutable
set search_path = ''
as $$
begin
  if p_provider is null or p_provider !~ '^[a-z][a-z0-9_.:-]{0,63}$' then
    raise exception 'provider must match ^[a-z][a-z0-9_.:-]{0,63}$, got %', coalesce(p_provider, 'null')
      using errcode = 'XPBAD';
  end if;
end
$$;
comment on function private.check_provider(text) is 'Raises XPBAD unless the provider name is well-formed (the identities table''s rule).';
revoke all on function private.check_provider(text) from public;

create or replace function private.check_identity_args(p_provider text, p_subject text)
returns void
language plpgsql
immutable
set search_path = ''
as $$
begin
  perform private.check_provider(p_provider);
  if p_subject is null or length(p_subject) not between 1 and 255 then
    raise exception 'subject must be 1 to 255 characters' using errcode = 'XPBAD';
  end if;
end
$$;
comment on function private.check_identity_args(text, text) is 'Raises XPBAD unless provider and subject are well-formed (the identities table''s rules).';
revoke all on function private.check_identity_args(text, text) from public;

create or replace function private.check_hash(p_name text, p_hash bytea)
returns void
language plpgsql
immutable
set search_path = ''
as $$
begin
  if p_hash is null or length(p_hash) <> 32 then
    raise exception '% must be a sha256 digest (32 bytes)', p_name using errcode = 'XPBAD';
  end if;
end
$$;
comment on function private.check_hash(text, bytea) is 'Raises XPBAD unless the value is 32 bytes (a sha256 digest).';
revoke all on function private.check_hash(text, bytea) from public;

create or replace function private.profile_summary(p_profile_id uuid)
returns jsonb
language sql
stable
security definer
set search_path = ''
as $$
  select jsonb_build_object('id', p.id, 'display_name', p.display_name, 'avatar_url', p.avatar_url, 'role', p.role)
    from public.profiles p
   where p.id = p_profile_id
$$;
comment on function private.profile_summary(uuid) is
  'What sign-in answers about a profile: {id, display_name, avatar_url, role}; role is profiles.role, the app '
  'role access tokens carry. Null for an unknown profile.';
revoke all on function private.profile_summary(uuid) from public;

create or replace function private.sign_in_identity(
  p_provider text,
  p_subject text,
  p_display_name text,
  p_avatar_url text
)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_id uuid;
  v_created boolean;
  v_name text := left(nullif(btrim(coalesce(p_display_name, '')), ''), 100);
  v_avatar text := nullif(btrim(coalesce(p_avatar_url, '')), '');
begin
  v_id := private.ensure_profile(p_provider, p_subject, p_display_name);
  -- Created by this transaction: the provider's picture becomes the avatar.
  select p.created_at = now() into v_created from public.profiles p where p.id = v_id;
  if v_created and v_avatar ~ '^https://[^\s]+$' and length(v_avatar) <= 500 then
    update public.profiles p set avatar_url = v_avatar where p.id = v_id and p.avatar_url is null;
  end if;
  update public.identities i
     set display_name = coalesce(v_name, i.display_name), last_sign_in_at = now()
   where i.provider = p_provider and i.subject = p_subject;
  return jsonb_build_object('profile_id', v_id, 'created', v_created, 'user', private.profile_summary(v_id));
end
$$;
comment on function private.sign_in_identity(text, text, text, text) is 'Implementation of public.service_role_sign_in.';
revoke all on function private.sign_in_identity(text, text, text, text) from public;
grant execute on function private.sign_in_identity(text, text, text, text) to service_role;

create or replace function public.service_role_sign_in(
  provider text,
  subject text,
  display_name text,
  avatar_url text default null
)
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.sign_in_identity(service_role_sign_in.provider, service_role_sign_in.subject,
                                  service_role_sign_in.display_name, service_role_sign_in.avatar_url)
$$;
comment on function public.service_role_sign_in(text, text, text, text) is
  'Signs an external identity in: its profile through ensure_profile (created on first sight with the '
  'provider''s display name, and avatar_url when it is an https URL of at most 500 characters), and records '
  'the provider-side name and last_sign_in_at on the identity. Returns {profile_id, created, user: {id, '
  'display_name, avatar_url, role}}; role is profiles.role (the app role tokens carry). Errors: XPBAD for a '
  'malformed provider or subject. service_role only.';
revoke all on function public.service_role_sign_in(text, text, text, text) from public, anon, authenticated;
grant execute on function public.service_role_sign_in(text, text, text, text) to service_role;

create or replace function private.link_identity(
  p_profile_id uuid,
  p_provider text,
  p_subject text,
  p_display_name text
)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_owner uuid;
  v_name text := left(nullif(btrim(coalesce(p_display_name, '')), ''), 100);
begin
  perform private.check_identity_args(p_provider, p_subject);
  if p_profile_id is null or not exists (select 1 from public.profiles p where p.id = p_profile_id) then
    raise exception 'Unknown profile: %', p_profile_id using errcode = 'XPPRF';
  end if;
  -- One account per provider and profile, and first sight of an identity
  -- serialised with ensure_profile (same advisory key), always in this order.
  perform pg_advisory_xact_lock(hashtextextended('link' || chr(31) || p_profile_id::text || chr(31) || p_provider, 0));
  perform pg_advisory_xact_lock(hashtextextended(p_provider || chr(31) || p_subject, 0));

  select i.profile_id into v_owner from public.identities i
   where i.provider = p_provider and i.subject = p_subject;
  if v_owner is not null and v_owner <> p_profile_id then
    raise exception 'This % account is already linked to another profile', p_provider
      using errcode = 'XPLNK', hint = 'Sign in with that account instead, or ask an admin to merge the profiles.';
  end if;
  if v_owner is null then
    if exists (select 1 from public.identities i where i.profile_id = p_profile_id and i.provider = p_provider) then
      raise exception 'This profile already has a % account linked', p_provider using errcode = 'XPLNP';
    end if;
    insert into public.identities (profile_id, provider, subject, display_name)
    values (p_profile_id, p_provider, p_subject, v_name);
  elsif v_name is not null then
    update public.identities i set display_name = v_name
     where i.provider = p_provider and i.subject = p_subject;
  end if;
  return jsonb_build_object(
    'profile_id', p_profile_id,
    'provider', p_provider,
    'subject', p_subject,
    'display_name', v_name,
    'already_linked', v_owner is not null,
    'user', private.profile_summary(p_profile_id));
end
$$;
comment on function private.link_identity(uuid, text, text, text) is 'Implementation of public.service_role_link_identity.';
revoke all on function private.link_identity(uuid, text, text, text) from public;
grant execute on function private.link_identity(uuid, text, text, text) to service_role;

create or replace function public.service_role_link_identity(
  profile_id uuid,
  provider text,
  subject text,
  display_name text default null
)
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.link_identity(service_role_link_identity.profile_id, service_role_link_identity.provider,
                               service_role_link_identity.subject, service_role_link_identity.display_name)
$$;
comment on function public.service_role_link_identity(uuid, text, text, text) is
  'Attaches an external identity (provider, subject) to an existing profile, e.g. a second sign-in provider. '
  'Linking an identity the profile already has is a no-op (already_linked = true). Returns {profile_id, '
  'provider, subject, display_name, already_linked, user: {id, display_name, avatar_url, role}}. Errors: XPLNK the identity '
  'belongs to another profile, XPLNP the profile already has another account of that provider, XPPRF unknown '
  'profile, XPBAD malformed provider or subject. service_role only.';
revoke all on function public.service_role_link_identity(uuid, text, text, text) from public, anon, authenticated;
grant execute on function public.service_role_link_identity(uuid, text, text, text) to service_role;

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

create or replace function private.take_oauth_state(p_state_hash bytea, p_browser_hash bytea, p_provider text)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_row private.oauth_states;
  v_status text;
begin
  perform private.check_hash('state_hash', p_state_hash);
  -- Deleted whatever happens next: a state is good for one attempt.
  delete from private.oauth_states s where s.state_hash = p_state_hash returning * into v_row;
  if not found then
    return jsonb_build_object('status', 'unknown');
  end if;
  v_status := case
    when v_row.provider is distinct from p_provider then 'other_provider'
    when p_browser_hash is null or v_row.browser_hash <> p_browser_hash then 'other_browser'
    when v_row.expires_at <= now() then 'expired'
    else 'ok'
  end;
  if v_status <> 'ok' then
    return jsonb_build_object('status', v_status);
  end if;
  return jsonb_build_object(
    'status', 'ok',
    'provider', v_row.provider,
    'redirect_uri', v_row.redirect_uri,
    'code_verifier', v_row.code_verifier,
    'nonce', v_row.nonce,
    'link_profile_id', v_row.link_profile_id,
    'cookie_mode', v_row.cookie_mode);
end
$$;
comment on function private.take_oauth_state(bytea, bytea, text) is 'Implementation of public.service_role_take_oauth_state.';
revoke all on function private.take_oauth_state(bytea, bytea, text) from public;
grant execute on function private.take_oauth_state(bytea, bytea, text) to service_role;

create or replace function public.service_role_take_oauth_state(state_hash bytea, browser_hash bytea, provider text)
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.take_oauth_state(service_role_take_oauth_state.state_hash, service_role_take_oauth_state.browser_hash,
                                  service_role_take_oauth_state.provider)
$$;
comment on function public.service_role_take_oauth_state(bytea, bytea, text) is
  'Consumes a sign-in state (deleted on first presentation, whatever the outcome) and says whether it may be '
  'used: {status} is unknown (never issued, tampered or already used), other_provider, other_browser (the '
  'browser nonce hash differs), expired, or ok with {provider, redirect_uri, code_verifier, nonce, '
  'link_profile_id, cookie_mode}. service_role only.';
revoke all on function public.service_role_take_oauth_state(bytea, bytea, text) from public, anon, authenticated;
grant execute on function public.service_role_take_oauth_state(bytea, bytea, text) to service_role;

-- Sessions and refresh tokens ---------------------------------------------------

create or replace function private.create_session(
  p_profile_id uuid,
  p_provider text,
  p_token_hash bytea,
  p_ttl_seconds integer
)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_session_id uuid;
  v_expires_at timestamptz;
begin
  perform private.check_hash('token_hash', p_token_hash);
  if p_provider is not null then
    perform private.check_provider(p_provider);
  end if;
  if p_ttl_seconds is null or p_ttl_seconds < 60 then
    raise exception 'ttl_seconds must be at least 60' using errcode = 'XPBAD';
  end if;
  if p_profile_id is null or not exists (select 1 from public.profiles p where p.id = p_profile_id) then
    raise exception 'Unknown profile: %', p_profile_id using errcode = 'XPPRF';
  end if;
  if private.suspended_until(p_profile_id) = 'infinity' then
    raise exception 'This account is banned' using errcode = 'XPSUS';  -- 13_moderation.sql
  end if;
  insert into private.auth_sessions (profile_id, provider) values (p_profile_id, p_provider)
  returning id into v_session_id;
  insert into private.refresh_tokens (session_id, token_hash, expires_at)
  values (v_session_id, p_token_hash, now() + make_interval(secs => p_ttl_seconds))
  returning expires_at into v_expires_at;
  return jsonb_build_object(
    'session_id', v_session_id,
    'profile_id', p_profile_id,
    'provider', p_provider,
    'refresh_expires_at', private.utc_text(v_expires_at),
    'user', private.profile_summary(p_profile_id));
end
$$;
comment on function private.create_session(uuid, text, bytea, integer) is 'Implementation of public.service_role_create_session.';
revoke all on function private.create_session(uuid, text, bytea, integer) from public;
grant execute on function private.create_session(uuid, text, bytea, integer) to service_role;

create or replace function public.service_role_create_session(
  profile_id uuid,
  provider text,
  token_hash bytea,
  ttl_seconds integer
)
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.create_session(service_role_create_session.profile_id, service_role_create_session.provider,
                                service_role_create_session.token_hash, service_role_create_session.ttl_seconds)
$$;
comment on function public.service_role_create_session(uuid, text, bytea, integer) is
  'Starts a session (a refresh-token family) for a profile with its first refresh token (sha256 token_hash, '
  'valid ttl_seconds). Returns {session_id, profile_id, provider, refresh_expires_at, user: {id, '
  'display_name, avatar_url, role}}; role is profiles.role. Errors: XPPRF unknown profile, XPSUS banned, XPBAD malformed input. service_role only.';
revoke all on function public.service_role_create_session(uuid, text, bytea, integer) from public, anon, authenticated;
grant execute on function public.service_role_create_session(uuid, text, bytea, integer) to service_role;

create or replace function private.refresh_session(
  p_token_hash bytea,
  p_next_hash bytea,
  p_ttl_seconds integer,
  p_grace_seconds integer
)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_token private.refresh_tokens;
  v_child private.refresh_tokens;
  v_session private.auth_sessions;
  v_outcome text;
begin
  perform private.check_hash('token_hash', p_token_hash);
  perform private.check_hash('next_token_hash', p_next_hash);
  if p_ttl_seconds is null or p_ttl_seconds < 60 then
    raise exception 'ttl_seconds must be at least 60' using errcode = 'XPBAD';
  end if;
  if p_grace_seconds is null or p_grace_seconds not between 0 and 300 then
    raise exception 'grace_seconds must be between 0 and 300' using errcode = 'XPBAD';
  end if;

  select * into v_token from private.refresh_tokens t where t.token_hash = p_token_hash;
  if not found then
    raise exception 'Unknown refresh token' using errcode = 'XPRTK';
  end if;
  -- The session row is the family's lock: refreshes of one family run one at a time.
  select * into strict v_session from private.auth_sessions s where s.id = v_token.session_id for update;
  if v_session.revoked_at is not null then
    raise exception 'This session has ended (%)', v_session.revoked_reason using errcode = 'XPRTR';
  end if;
  select * into strict v_token from private.refresh_tokens t where t.id = v_token.id;
  if v_token.expires_at <= now() then
    raise exception 'This refresh token has expired; sign in again' using errcode = 'XPRTX';
  end if;

  if v_token.used_at is null then
    update private.refresh_tokens t set used_at = clock_timestamp() where t.id = v_token.id;
    insert into private.refresh_tokens (session_id, token_hash, parent_id, expires_at)
    values (v_session.id, p_next_hash, v_token.id, now() + make_interval(secs => p_ttl_seconds))
    returning * into v_child;
    update private.auth_sessions s set refreshed_at = now() where s.id = v_session.id;
    v_outcome := 'rotated';
  else
    select * into v_child from private.refresh_tokens c where c.parent_id = v_token.id;
    if v_token.used_at > clock_timestamp() - make_interval(secs => p_grace_seconds)
       and v_child.used_at is null
       and v_child.token_hash = p_next_hash then
      -- The immediate parent of the live token, again, within the grace window
      -- (concurrent refreshes, a lost response): the caller gets the live token.
      v_outcome := 'reissued';
    else
      update private.auth_sessions s set revoked_at = now(), revoked_reason = 'refresh_token_reused'
       where s.id = v_session.id;
      -- Returned, not raised: raising would roll the revocation back.
      return jsonb_build_object('outcome', 'reuse_detected', 'session_id', v_session.id,
                                'profile_id', v_session.profile_id);
    end if;
  end if;

  return jsonb_build_object(
    'outcome', v_outcome,
    'session_id', v_session.id,
    'profile_id', v_session.profile_id,
    'provider', v_session.provider,
    'refresh_expires_at', private.utc_text(v_child.expires_at),
    'user', private.profile_summary(v_session.profile_id));
end
$$;
comment on function private.refresh_session(bytea, bytea, integer, integer) is 'Implementation of public.service_role_refresh_session.';
revoke all on function private.refresh_session(bytea, bytea, integer, integer) from public;
grant execute on function private.refresh_session(bytea, bytea, integer, integer) to service_role;

create or replace function public.service_role_refresh_session(
  token_hash bytea,
  next_token_hash bytea,
  ttl_seconds integer,
  grace_seconds integer
)
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.refresh_session(service_role_refresh_session.token_hash, service_role_refresh_session.next_token_hash,
                                 service_role_refresh_session.ttl_seconds, service_role_refresh_session.grace_seconds)
$$;
comment on function public.service_role_refresh_session(bytea, bytea, integer, integer) is
  'Rotates a refresh token (sha256 token_hash) to its successor (next_token_hash, valid ttl_seconds), holding '
  'the session row lock so concurrent refreshes of one family are serialised. Returns {outcome, session_id, '
  'profile_id, provider, refresh_expires_at, user: {id, display_name, avatar_url, role}}: outcome rotated (the token was live: it is now spent); '
  'reissued (the token is the immediate parent of the live token, spent less than grace_seconds ago, and '
  'next_token_hash is the live token: nothing changes); reuse_detected (any other spent token: the whole '
  'session is revoked and committed; only outcome, session_id and profile_id are returned). user.role is '
  'profiles.role, read now. Errors: XPRTK unknown token, XPRTR session revoked, XPRTX token expired, XPBAD '
  'malformed input. service_role only.';
revoke all on function public.service_role_refresh_session(bytea, bytea, integer, integer) from public, anon, authenticated;
grant execute on function public.service_role_refresh_session(bytea, bytea, integer, integer) to service_role;

create or replace function private.sign_out(p_token_hash bytea, p_session_id uuid, p_scope text)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_session private.auth_sessions;
  v_count integer;
begin
  if p_scope is null or p_scope not in ('local', 'global') then
    raise exception 'scope must be local or global' using errcode = 'XPBAD';
  end if;
  if p_token_hash is not null then
    perform private.check_hash('token_hash', p_token_hash);
    select s.* into v_session from private.auth_sessions s
      join private.refresh_tokens t on t.session_id = s.id
     where t.token_hash = p_token_hash;
  elsif p_session_id is not null then
    select s.* into v_session from private.auth_sessions s where s.id = p_session_id;
  else
    raise exception 'Name a refresh token or a session' using errcode = 'XPBAD';
  end if;
  if v_session.id is null or v_session.revoked_at is not null then
    return jsonb_build_object('revoked', 0, 'profile_id', v_session.profile_id, 'session_id', v_session.id);
  end if;
  if p_scope = 'local' then
    update private.auth_sessions s set revoked_at = now(), revoked_reason = 'logout'
     where s.id = v_session.id and s.revoked_at is null;
  else
    update private.auth_sessions s set revoked_at = now(), revoked_reason = 'logout_global'
     where s.profile_id = v_session.profile_id and s.revoked_at is null;
  end if;
  get diagnostics v_count = row_count;
  return jsonb_build_object('revoked', v_count, 'profile_id', v_session.profile_id, 'session_id', v_session.id);
end
$$;
comment on function private.sign_out(bytea, uuid, text) is 'Implementation of public.service_role_sign_out.';
revoke all on function private.sign_out(bytea, uuid, text) from public;
grant execute on function private.sign_out(bytea, uuid, text) to service_role;

create or replace function public.service_role_sign_out(
  token_hash bytea default null,
  session_id uuid default null,
  scope text default 'local'
)
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.sign_out(service_role_sign_out.token_hash, service_role_sign_out.session_id, service_role_sign_out.scope)
$$;
comment on function public.service_role_sign_out(bytea, uuid, text) is
  'Ends the session named by a refresh token (sha256 token_hash, any token of the family) or by session_id: '
  'scope local revokes that session, global every live session of its profile. A session already ended, or '
  'an unknown token, revokes nothing. Returns {revoked (count), profile_id, session_id}. Errors: XPBAD when '
  'neither is given or scope is not local/global. service_role only.';
revoke all on function public.service_role_sign_out(bytea, uuid, text) from public, anon, authenticated;
grant execute on function public.service_role_sign_out(bytea, uuid, text) to service_role;

------------------------------------------------------------------------------
-- Sign-in housekeeping
------------------------------------------------------------------------------

create or replace function private.purge_auth()
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_states integer;
  v_tokens integer;
  v_sessions integer;
  v_codes integer;
begin
  delete from private.oauth_states s where s.expires_at < now();
  get diagnostics v_states = row_count;
  -- An expired token is refused as expired whether or not it was spent, so
  -- keeping it adds nothing; a live chain keeps its recent rows.
  delete from private.refresh_tokens t where t.expires_at < now();
  get diagnostics v_tokens = row_count;
  delete from private.auth_sessions s
   where s.revoked_at < now() - interval '1 day'
      or not exists (select 1 from private.refresh_tokens t where t.session_id = s.id);
  get diagnostics v_sessions = row_count;
  delete from private.link_codes c where c.created_at < now() - interval '1 day';
  get diagnostics v_codes = row_count;
  return jsonb_build_object('oauth_states', v_states, 'refresh_tokens', v_tokens,
                            'sessions', v_sessions, 'link_codes', v_codes);
end
$$;
comment on function private.purge_auth() is 'Implementation of public.service_role_purge_auth.';
revoke all on function private.purge_auth() from public;
grant execute on function private.purge_auth() to service_role;

create or replace function public.service_role_purge_auth()
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.purge_auth()
$$;
comment on function public.service_role_purge_auth() is
  'Deletes what sign-in no longer needs: expired OAuth states and refresh tokens, sessions revoked more than a '
  'day ago or without tokens, link codes older than a day. Returns the counts {oauth_states, refresh_tokens, '
  'sessions, link_codes}. Run it now and then (pg_cron on Supabase). service_role only.';
revoke all on function public.service_role_purge_auth() from public, anon, authenticated;
grant execute on function public.service_role_purge_auth() to service_role;
