-- Rate limits on starting a sign-in (issue 18): GET /v1/auth/{provider}/authorize stored one OAuth state per
-- anonymous call (1,000 calls kept 1,000 states for ten minutes). Each state now records a sha256 of the
-- client's address, and public.auth_settings bounds the sign-ins in flight (states not yet used or expired)
-- per client and in total; service_role_create_oauth_state refuses more with XPRAT (429 rate_limited).

alter table private.oauth_states
  add column client_hash bytea check (client_hash is null or length(client_hash) = 32);
comment on column private.oauth_states.client_hash is
  'sha256 of the address of the client that started the sign-in (null: not known), for the per-client limit.';
create index oauth_states_client_hash_idx on private.oauth_states (client_hash, expires_at)
  where client_hash is not null;

alter table public.auth_settings
  add column oauth_states_per_client integer not null default 20
    check (oauth_states_per_client between 1 and 10000),
  add column oauth_states_total integer not null default 10000
    check (oauth_states_total between 1 and 1000000);
comment on column public.auth_settings.oauth_states_per_client is
  'Sign-ins one client address may have in flight (unused, unexpired OAuth states); more answer XPRAT.';
comment on column public.auth_settings.oauth_states_total is
  'Sign-ins all clients together may have in flight; more answer XPRAT.';
grant update (oauth_states_per_client, oauth_states_total) on public.auth_settings to service_role;
