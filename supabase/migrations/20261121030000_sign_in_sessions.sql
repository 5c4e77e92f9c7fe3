-- Sign-in: OAuth states, sessions and refresh tokens; provider names on identities.
--
-- The service signs members in with Discord, GitHub and Google and hands out
-- access tokens plus rotating refresh tokens. Everything it must remember
-- between requests lives here, in `private` (never exposed by PostgREST), and
-- only as hashes: an OAuth `state` and the browser nonce it is bound to, and
-- every refresh token. A session is one refresh-token family: rotating a token
-- adds a child row; reusing a spent one revokes the session (functions.sql,
-- section "Sign-in, sessions and refresh tokens").

-- What the provider calls the account, for showing linked accounts, and when
-- it was last used to sign in.
alter table public.identities
  add column display_name text check (display_name is null or length(display_name) between 1 and 100),
  add column last_sign_in_at timestamptz;
comment on column public.identities.display_name is 'The account''s name at the provider (Discord global name, GitHub name or login, Google name).';
comment on column public.identities.last_sign_in_at is 'When this identity last signed in through the service (null: linked, never signed in).';

create table private.oauth_states (
  id bigint generated always as identity primary key,
  state_hash bytea not null unique check (length(state_hash) = 32),
  browser_hash bytea not null check (length(browser_hash) = 32),
  provider text not null check (provider ~ '^[a-z][a-z0-9_.:-]{0,63}$'),
  redirect_uri text not null check (length(redirect_uri) between 1 and 2000),
  code_verifier text not null check (code_verifier ~ '^[A-Za-z0-9._~-]{43,128}$'),
  nonce text not null check (length(nonce) between 16 and 128),
  link_profile_id uuid references public.profiles (id) on delete cascade,
  cookie_mode boolean not null default false,
  created_at timestamptz not null default now(),
  expires_at timestamptz not null,
  check (expires_at > created_at)
);
comment on table private.oauth_states is
  'Sign-ins in flight: sha256 of the OAuth state and of the browser nonce cookie it is bound to, the PKCE '
  'code_verifier and OIDC nonce, the exact redirect_uri sent to the provider, the profile a link attaches to '
  '(link_profile_id) and whether tokens go to cookies. A row is deleted when its state is presented, so a '
  'state works once.';
create index oauth_states_expires_at_idx on private.oauth_states (expires_at);
create index oauth_states_link_profile_id_idx on private.oauth_states (link_profile_id) where link_profile_id is not null;

create table private.auth_sessions (
  id uuid primary key default gen_random_uuid(),
  profile_id uuid not null references public.profiles (id) on delete cascade,
  provider text check (provider is null or provider ~ '^[a-z][a-z0-9_.:-]{0,63}$'),
  created_at timestamptz not null default now(),
  refreshed_at timestamptz,
  revoked_at timestamptz,
  revoked_reason text check (revoked_reason is null or revoked_reason in ('logout', 'logout_global', 'refresh_token_reused'))
);
comment on table private.auth_sessions is
  'One row per sign-in: a refresh-token family. Revoking it (logout, or reuse of a spent refresh token) '
  'ends every token of the family; access tokens carry its id as session_id.';
create index auth_sessions_profile_id_idx on private.auth_sessions (profile_id);
create index auth_sessions_revoked_at_idx on private.auth_sessions (revoked_at) where revoked_at is not null;

create table private.refresh_tokens (
  id bigint generated always as identity primary key,
  session_id uuid not null references private.auth_sessions (id) on delete cascade,
  token_hash bytea not null unique check (length(token_hash) = 32),
  parent_id bigint unique references private.refresh_tokens (id) on delete set null,
  created_at timestamptz not null default now(),
  expires_at timestamptz not null,
  used_at timestamptz,
  check (expires_at > created_at)
);
comment on table private.refresh_tokens is
  'Refresh tokens, sha256-hashed. Each is used once (used_at) and replaced by exactly one child (parent_id is '
  'unique): a family is a chain whose only unused row is the live token.';
create index refresh_tokens_session_id_idx on private.refresh_tokens (session_id);
create index refresh_tokens_expires_at_idx on private.refresh_tokens (expires_at);

alter table private.oauth_states enable row level security;
alter table private.auth_sessions enable row level security;
alter table private.refresh_tokens enable row level security;
revoke all on private.oauth_states, private.auth_sessions, private.refresh_tokens
  from public, anon, authenticated, service_role;
