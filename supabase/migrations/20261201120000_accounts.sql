-- Accounts (issue 13): roles as data with their permissions, an audit of role
-- changes, warnings and suspensions, and one-time email sign-in codes.
--
-- Until now a check constraint allowed only the roles member and admin, an
-- admin was made by hand and there was no email sign-in. Roles become rows of
-- public.roles with the permissions of public.role_permissions (what a
-- moderator may do: warn, suspend, approve claims and redemptions; admins hold
-- every permission, and only they manage roles, rules and corrections);
-- profiles.role references them. Every role change is a row of
-- public.role_changes (who, when, from, to, why). Warnings and suspensions are
-- rows of public.moderation_actions, readable by the member and moderators.
-- Email codes live hashed in private.email_codes (10 minutes, single use, five
-- wrong tries); their limits are columns of public.auth_settings. The
-- functions are in supabase/sql/12_roles.sql, 13_moderation.sql and
-- 81_email_codes.sql.

create table public.roles (
  slug text primary key check (slug ~ '^[a-z][a-z_]{1,31}$'),
  name text not null check (length(name) between 1 and 64),
  description text not null default '' check (length(description) <= 500),
  created_at timestamptz not null default now()
);
comment on table public.roles is
  'The roles a profile can hold (profiles.role): member (default), student, company, university, professional '
  '(a reviewer), moderator and admin. What each may do is public.role_permissions.';

create table public.permissions (
  slug text primary key check (slug ~ '^[a-z][a-z_]{1,63}$'),
  description text not null check (length(description) between 1 and 500)
);
comment on table public.permissions is
  'Privileged actions checked in SQL by private.has_permission / private.assert_permission.';

create table public.role_permissions (
  role_slug text not null references public.roles (slug) on delete cascade,
  permission_slug text not null references public.permissions (slug) on delete cascade,
  primary key (role_slug, permission_slug)
);
comment on table public.role_permissions is 'Which role holds which permission (admins hold all of them).';
create index role_permissions_permission_slug_idx on public.role_permissions (permission_slug);

insert into public.roles (slug, name, description) values
  ('member', 'Member', 'Everyone starts here.'),
  ('student', 'Student', 'A learner (the career points seed).'),
  ('company', 'Company', 'A hiring organisation (the career points seed).'),
  ('university', 'University', 'An institution (the career points seed).'),
  ('professional', 'Professional', 'A reviewer of resumes and claims.'),
  ('moderator', 'Moderator', 'Warns and suspends members; approves claims and redemptions.'),
  ('admin', 'Admin', 'Holds every permission: roles, rules and XP corrections too.')
on conflict do nothing;

insert into public.permissions (slug, description) values
  ('warn_members', 'Warn a member.'),
  ('suspend_members', 'Suspend, ban or unsuspend a member.'),
  ('approve_claims', 'Approve or reject claims for XP.'),
  ('approve_redemptions', 'Approve, fulfil or reject redemptions.'),
  ('read_moderation', 'Read every member''s warnings and suspensions.'),
  ('manage_roles', 'Change members'' roles.'),
  ('manage_rules', 'Change activities, rules, the store and settings.'),
  ('correct_xp', 'Adjust, set or reset a member''s XP and points.')
on conflict do nothing;

insert into public.role_permissions (role_slug, permission_slug)
select 'moderator', p from unnest(array['warn_members', 'suspend_members', 'approve_claims', 'approve_redemptions',
                                        'read_moderation']) as p
union all
select 'admin', p.slug from public.permissions p
on conflict do nothing;

alter table public.profiles drop constraint profiles_role_check;
alter table public.profiles
  add constraint profiles_role_fkey foreign key (role) references public.roles (slug) on update cascade;
create index profiles_role_idx on public.profiles (role) where role <> 'member';

create table public.role_changes (
  id bigint generated always as identity primary key,
  profile_id uuid not null references public.profiles (id) on delete cascade,
  from_role text not null,
  to_role text not null references public.roles (slug) on update cascade,
  actor_id uuid references public.profiles (id) on delete set null,
  actor_role text not null check (length(actor_role) between 1 and 64),
  reason text not null check (length(reason) between 1 and 500),
  created_at timestamptz not null default now()
);
comment on table public.role_changes is
  'Audit of every role change: whose (profile_id), from and to, who made it (actor_id, null for the backend or '
  'the command line; actor_role their role then) and why. Written only by private.set_role.';
create index role_changes_profile_id_idx on public.role_changes (profile_id, created_at desc);
create index role_changes_actor_id_idx on public.role_changes (actor_id) where actor_id is not null;

create table public.moderation_actions (
  id bigint generated always as identity primary key,
  profile_id uuid not null references public.profiles (id) on delete cascade,
  kind text not null check (kind in ('warning', 'suspension')),
  reason text not null check (length(reason) between 1 and 500),
  actor_id uuid references public.profiles (id) on delete set null,
  actor_role text not null check (length(actor_role) between 1 and 64),
  created_at timestamptz not null default now(),
  until timestamptz,
  lifted_at timestamptz,
  lifted_by uuid references public.profiles (id) on delete set null,
  lift_reason text check (lift_reason is null or length(lift_reason) between 1 and 500),
  check (kind = 'suspension' or (until is null and lifted_at is null)),
  check ((lifted_at is null) = (lift_reason is null)),
  check (until is null or until > created_at)
);
comment on table public.moderation_actions is
  'Warnings and suspensions: reason, who (actor_id, null for the backend), when, and for suspensions until when '
  '(null: a ban, until lifted). A suspension is in force while lifted_at is null and until is null or later than '
  'now. Members read their own, moderators everyone''s; written only by the functions of 13_moderation.sql.';
create index moderation_actions_profile_id_idx on public.moderation_actions (profile_id, created_at desc);
create index moderation_actions_in_force_idx on public.moderation_actions (profile_id)
  where kind = 'suspension' and lifted_at is null;
create index moderation_actions_actor_id_idx on public.moderation_actions (actor_id) where actor_id is not null;
create index moderation_actions_lifted_by_idx on public.moderation_actions (lifted_by) where lifted_by is not null;

-- A ban (a suspension without an end) ends the member's sessions.
alter table private.auth_sessions drop constraint auth_sessions_revoked_reason_check;
alter table private.auth_sessions add constraint auth_sessions_revoked_reason_check check (
  revoked_reason is null or revoked_reason in ('logout', 'logout_global', 'refresh_token_reused', 'banned'));

alter table public.auth_settings
  add column email_code_ttl_seconds integer not null default 600 check (email_code_ttl_seconds between 60 and 3600),
  add column email_code_max_tries integer not null default 5 check (email_code_max_tries between 1 and 20),
  add column email_code_hourly_limit integer not null default 5 check (email_code_hourly_limit between 1 and 100),
  add column email_code_ip_hourly_limit integer not null default 20
    check (email_code_ip_hourly_limit between 1 and 10000);
comment on column public.auth_settings.email_code_ttl_seconds is 'How long an email sign-in code lives (default 600 s).';
comment on column public.auth_settings.email_code_max_tries is 'Wrong tries after which a code is dead (default 5).';
comment on column public.auth_settings.email_code_hourly_limit is 'Codes one address may be sent per rolling hour (default 5).';
comment on column public.auth_settings.email_code_ip_hourly_limit is 'Codes one client IP may request per rolling hour (default 20).';
grant update (email_code_ttl_seconds, email_code_max_tries, email_code_hourly_limit, email_code_ip_hourly_limit)
  on public.auth_settings to service_role;

create table private.email_codes (
  id bigint generated always as identity primary key,
  email text not null check (length(email) between 3 and 254),
  client_ip inet,
  salt bytea not null check (length(salt) = 16),
  code_hash bytea not null check (length(code_hash) = 32),
  tries integer not null default 0 check (tries >= 0),
  created_at timestamptz not null default now(),
  expires_at timestamptz not null,
  replaced_at timestamptz,
  used_at timestamptz,
  check (expires_at > created_at)
);
comment on table private.email_codes is
  'Email sign-in codes: sha256(salt || code) with a random 16-byte salt per code. A code works once (used_at), '
  'until expires_at, while it is the address''s newest (replaced_at) and fewer than email_code_max_tries wrong '
  'tries were made. Rows also count requests for the per-address and per-IP hourly limits.';
create index email_codes_email_created_idx on private.email_codes (email, created_at desc);
create index email_codes_client_ip_created_idx on private.email_codes (client_ip, created_at desc);
create index email_codes_created_at_idx on private.email_codes (created_at);

alter table private.email_codes enable row level security;
revoke all on private.email_codes from public, anon, authenticated, service_role;

-- Roles and permissions: public configuration, changed only through migrations.
alter table public.roles enable row level security;
alter table public.permissions enable row level security;
alter table public.role_permissions enable row level security;
revoke all on public.roles, public.permissions, public.role_permissions from anon, authenticated, service_role;
grant select on public.roles, public.permissions, public.role_permissions to anon, authenticated, service_role;
create policy "Anyone can read the roles." on public.roles for select to anon, authenticated using (true);
create policy "Anyone can read the permissions." on public.permissions for select to anon, authenticated using (true);
create policy "Anyone can read which role holds which permission." on public.role_permissions
  for select to anon, authenticated using (true);

-- Role changes: the member sees their own, holders of manage_roles everyone's.
alter table public.role_changes enable row level security;
revoke all on public.role_changes from anon, authenticated, service_role;
grant select on public.role_changes to authenticated, service_role;
-- Moderation: the member sees their own, holders of read_moderation everyone's.
alter table public.moderation_actions enable row level security;
revoke all on public.moderation_actions from anon, authenticated, service_role;
grant select on public.moderation_actions to authenticated, service_role;
