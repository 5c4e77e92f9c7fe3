-- Discord account linking: one-time codes a signed-in member hands to the bot.
--
-- A member signed in on the web (say with GitHub) calls create_link_code() and
-- types `/link <code>` in Discord; the bot calls
-- service_role_redeem_link_code(), which attaches that Discord account to the
-- member's profile. Codes are short-lived, single-use, rate-limited per member
-- and stored as sha256 hashes. How long a code lives and how many a member may
-- make per hour are rows in public.auth_settings (seed.sql has the defaults).

create table public.auth_settings (
  id boolean primary key default true check (id),
  link_code_ttl_seconds integer not null default 600 check (link_code_ttl_seconds between 60 and 86400),
  link_code_hourly_limit integer not null default 5 check (link_code_hourly_limit between 1 and 1000),
  updated_at timestamptz not null default now()
);
comment on table public.auth_settings is
  'Account-linking settings, one row: link_code_ttl_seconds is how long a link code lives (default 600), '
  'link_code_hourly_limit how many codes one member may create per rolling hour (default 5).';

create table private.link_codes (
  id bigint generated always as identity primary key,
  profile_id uuid not null references public.profiles (id) on delete cascade,
  code_hash bytea not null unique check (length(code_hash) = 32),
  created_at timestamptz not null default now(),
  expires_at timestamptz not null,
  replaced_at timestamptz,
  used_at timestamptz,
  used_by_provider text,
  used_by_subject text,
  check (expires_at > created_at),
  check ((used_at is null) = (used_by_provider is null) and (used_at is null) = (used_by_subject is null))
);
comment on table private.link_codes is
  'Account-link codes, sha256 of the normalised code. A code works once (used_at, with the identity it bound), '
  'until expires_at, and only while it is its member''s newest (replaced_at is set when a newer one is made).';
create index link_codes_profile_created_idx on private.link_codes (profile_id, created_at desc);
create index link_codes_created_at_idx on private.link_codes (created_at);

alter table public.auth_settings enable row level security;
revoke all on public.auth_settings from anon, authenticated, service_role;
grant select on public.auth_settings to anon, authenticated, service_role;
grant update (link_code_ttl_seconds, link_code_hourly_limit) on public.auth_settings to service_role;
create policy "Anyone can read the auth settings." on public.auth_settings
  for select to anon, authenticated using (true);

alter table private.link_codes enable row level security;
revoke all on private.link_codes from public, anon, authenticated, service_role;
