-- Tools as a catalogue with per-member access (issue 15, item 5).
--
-- Why: the Discord Bot Hub has a tools API (create, list, per-member access, manual unlock) and a
-- tool_unlocked event; xpbase only labelled tools in tier_unlocks and checked nothing. public.tools is
-- the catalogue (every tier unlock is registered there, plus tools an admin adds); access is decided by
-- public.has_tool (supabase/sql/37_tools.sql): the member's tier, a store item in their inventory, or an
-- admin unlock. Admin unlocks are rows of public.tool_unlocks with who and why, never deleted: a
-- revocation stamps the row (who, why, when), so the table is the audit trail.
-- Functions: supabase/sql/37_tools.sql (migration 20261201183100).

create table public.tools (
  slug text primary key check (slug ~ '^[a-z][a-z0-9_]{0,63}$'),
  name text not null check (length(name) between 1 and 100),
  description text not null default '' check (length(description) <= 2000),
  active boolean not null default true,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  updated_by uuid references public.profiles (id)
);
comment on table public.tools is
  'The tool catalogue: every tier unlock (public.tier_unlocks, registered by trigger) and tools an admin adds '
  '(admin_save_tool). An inactive tool grants nobody access. How each is obtained (tiers, store items, admin '
  'unlock) is computed by public.tool_catalogue.';
create index tools_updated_by_idx on public.tools (updated_by);

create table public.tool_unlocks (
  id bigint generated always as identity primary key,
  profile_id uuid not null references public.profiles (id),
  tool_slug text not null references public.tools (slug) on update cascade,
  unlocked_by uuid references public.profiles (id),
  unlocked_by_role text not null check (length(unlocked_by_role) between 1 and 64),
  reason text not null check (length(reason) between 1 and 500),
  unlocked_at timestamptz not null default now(),
  revoked_by uuid references public.profiles (id),
  revoked_by_role text check (length(revoked_by_role) between 1 and 64),
  revoke_reason text check (length(revoke_reason) between 1 and 500),
  revoked_at timestamptz,
  check ((revoked_at is null) = (revoke_reason is null) and (revoked_at is null) = (revoked_by_role is null))
);
comment on table public.tool_unlocks is
  'Admin unlocks of a tool for one member, with who (unlocked_by, null for the backend) and why; a revocation '
  'stamps revoked_* and the row stays (the audit trail). At most one unrevoked unlock per member and tool.';
create unique index tool_unlocks_active_idx on public.tool_unlocks (profile_id, tool_slug) where revoked_at is null;
create index tool_unlocks_profile_idx on public.tool_unlocks (profile_id, unlocked_at desc);
create index tool_unlocks_tool_slug_idx on public.tool_unlocks (tool_slug);
create index tool_unlocks_unlocked_by_idx on public.tool_unlocks (unlocked_by);
create index tool_unlocks_revoked_by_idx on public.tool_unlocks (revoked_by);

-- Existing databases: the tier unlocks seeded before this migration (fresh ones get them by trigger
-- when seed.sql runs). The first tier's name wins for a slug unlocked by several tiers.
insert into public.tools (slug, name, description)
select distinct on (u.slug) u.slug, u.name, u.description
  from public.tier_unlocks u join public.tiers t on t.slug = u.tier_slug
 order by u.slug, t.min_level, u.position
on conflict (slug) do nothing;
-- Store items that unlock a tool not yet in the catalogue.
insert into public.tools (slug, name, description)
select distinct on (i.tool_slug) i.tool_slug, i.name, i.description
  from public.store_items i where i.tool_slug is not null
 order by i.tool_slug, i.id
on conflict (slug) do nothing;

insert into public.permissions (slug, description) values
  ('manage_tools', 'Add and change tools; unlock or revoke a tool for a member.')
on conflict do nothing;
insert into public.role_permissions (role_slug, permission_slug) values ('admin', 'manage_tools')
on conflict do nothing;

insert into public.notification_kinds (kind, description, default_channels, collapse_seconds) values
  ('tool_unlocked', 'You can now use a tool', '{in_app,discord_dm}', 300)
on conflict (kind) do nothing;

------------------------------------------------------------------------------
-- Row-level security and grants
------------------------------------------------------------------------------

alter table public.tools enable row level security;
revoke all on public.tools from anon, authenticated, service_role;
grant select on public.tools to anon, authenticated;
grant select, insert, update, delete on public.tools to service_role;
create policy "Anyone can read the tool catalogue." on public.tools
  for select to anon, authenticated using (true);

alter table public.tool_unlocks enable row level security;
revoke all on public.tool_unlocks from anon, authenticated, service_role;
grant select on public.tool_unlocks to authenticated, service_role;
create policy "Members read their own tool unlocks and tool managers read all." on public.tool_unlocks
  for select to authenticated using (
    profile_id = (select auth.uid())
    or exists (select 1 from public.profiles p
                 join public.role_permissions rp on rp.role_slug = p.role
                where p.id = (select auth.uid()) and rp.permission_slug = 'manage_tools')
  );
