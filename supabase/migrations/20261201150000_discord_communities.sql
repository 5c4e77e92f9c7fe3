-- Discord communities (issue 17): which members belong to which server (per-server boards), the
-- `import` activity that importers write ledger rows under, role resyncs queued after an import, and
-- the record of erased profiles. XP stays one per community; membership only filters the boards.

-- Per-server membership, recorded as the bot sees members (and by importers). -------------------
create table public.discord_guild_members (
  guild_id text not null check (guild_id ~ '^[0-9]{1,20}$'),
  profile_id uuid not null references public.profiles (id),
  first_seen_at timestamptz not null default now(),
  last_seen_at timestamptz not null default now(),
  primary key (guild_id, profile_id)
);
comment on table public.discord_guild_members is
  'Which profiles are members of which Discord server, as the bot saw them (message, voice, join, '
  'member list) or an importer recorded them. Drives the per-server leaderboard and rank; XP itself is '
  'one total per community.';
create index discord_guild_members_profile_id_idx on public.discord_guild_members (profile_id);
alter table public.discord_guild_members enable row level security;
revoke all on public.discord_guild_members from anon, authenticated;
grant select on public.discord_guild_members to anon, authenticated;
grant select, insert, update, delete on public.discord_guild_members to service_role;
-- The boards are public: which server a listed member belongs to is as public as the board; a member who
-- hides from the boards is seen only by themselves.
create policy "Anyone can see the servers of members shown on the boards." on public.discord_guild_members
  for select to anon, authenticated
  using (exists (select 1 from public.profiles p
                  where p.id = profile_id and (p.leaderboard_visible or p.id = (select auth.uid()))));

-- Role resyncs queued after an import, taken by the bot. ----------------------------------------
create table public.discord_role_resyncs (
  guild_id text primary key check (guild_id ~ '^[0-9]{1,20}$'),
  requested_at timestamptz not null default now()
);
comment on table public.discord_role_resyncs is
  'Servers whose reward roles must be resynced (written after an import); the bot takes the rows '
  '(service_role_discord_take_role_resyncs) and brings every member''s roles in line.';
alter table public.discord_role_resyncs enable row level security;
revoke all on public.discord_role_resyncs from anon, authenticated;
grant select, insert, update, delete on public.discord_role_resyncs to service_role;

-- Erased profiles. ---------------------------------------------------------------------------------
create table public.profile_erasures (
  profile_id uuid primary key references public.profiles (id),
  erased_at timestamptz not null default now(),
  requested_by text not null check (requested_by in ('member', 'admin', 'service'))
);
comment on table public.profile_erasures is
  'Profiles erased at their own or an admin''s request: the profile row stays (anonymised) so the '
  'append-only ledger keeps adding up; identities, sessions, devices and personal fields are gone.';
alter table public.profile_erasures enable row level security;
revoke all on public.profile_erasures from anon, authenticated;
grant select, insert on public.profile_erasures to service_role;

-- The import activity: ledger rows written by importers only (inactive: award_xp refuses it). A
-- database seeded before this migration gets the row here; a fresh one gets it from seed.sql (its layers
-- come from the seed, after the migrations).
insert into public.activity_types
  (slug, name, description, layer_slug, base_xp, min_xp, max_xp, cooldown_seconds, cap_group, active, counts_for_season)
select 'import', 'Import', 'XP moved in from another bot (MEE6, Amari, Polaris, LevelUp, CSV) by an importer.',
       s.default_layer, 0, null, null, 0, null, false, false
  from public.engine_settings s
  join public.layers l on l.slug = s.default_layer
on conflict (slug) do nothing;

-- The "Custom rank card" unlock: the colours a holder chose, from a safe set. ------------------------
create table public.rank_card_choices (
  profile_id uuid primary key references public.profiles (id),
  accent text not null check (accent in ('ember', 'gold', 'neon', 'rose', 'ocean', 'violet')),
  background text not null check (background in ('slate', 'night', 'forest', 'wine', 'ocean')),
  updated_at timestamptz not null default now()
);
comment on table public.rank_card_choices is
  'A member''s own rank card colours (accent and background, from a fixed safe set), for holders of the '
  '"Custom rank card" unlock (tier_unlocks slug custom_rank_card). Written through set_my_rank_card / '
  'service_role_discord_set_rank_card, which check the unlock.';
alter table public.rank_card_choices enable row level security;
revoke all on public.rank_card_choices from anon, authenticated;
grant select on public.rank_card_choices to authenticated;
grant select, insert, update, delete on public.rank_card_choices to service_role;
create policy "Members can read their own rank card choices." on public.rank_card_choices
  for select to authenticated using (profile_id = (select auth.uid()));
