-- The public activity feed behind a member's page (supabase/sql/65_profile_card.sql).
--
-- The ledger is private to its member (its rows carry requests, receipts, reasons and actors), but a
-- member page shows "recent activity" to anyone. This table holds only what is public of a ledger row:
-- which activity, which layer, how much XP, when, for positive grants through the award path (amount > 0,
-- no reason: admin corrections, penalties and held-back awards stay private). A trigger on xp_ledger
-- (65_profile_card.sql) appends a row for each; like the ledger, nobody updates or deletes them.
-- Rows are read like profile_layers: anyone sees those of members shown on leaderboards, a hidden member
-- sees their own.

create table public.activity_feed (
  ledger_id bigint primary key references public.xp_ledger (id),
  profile_id uuid not null references public.profiles (id),
  activity_slug text not null references public.activity_types (slug) on update cascade,
  layer_slug text not null references public.layers (slug) on update cascade,
  amount integer not null check (amount > 0),
  occurred_at timestamptz not null
);
comment on table public.activity_feed is
  'The public part of positive award-path ledger rows (activity, layer, amount, occurred_at), appended by a '
  'trigger on xp_ledger; what a member page lists as recent activity. Corrections (rows with a reason), '
  'penalties and zero rows are not copied. Visible like profile_layers: hidden members only to themselves.';
create index activity_feed_profile_idx on public.activity_feed (profile_id, occurred_at desc, ledger_id desc);
create index activity_feed_activity_slug_idx on public.activity_feed (activity_slug);
create index activity_feed_layer_slug_idx on public.activity_feed (layer_slug);

alter table public.activity_feed enable row level security;
revoke all on public.activity_feed from anon, authenticated, service_role;
grant select on public.activity_feed to anon, authenticated, service_role;
-- Anon reads only visible profiles (its profiles policy), so the existence test is the visibility test.
create policy "Anon can read the activity of visible profiles." on public.activity_feed
  for select to anon using (
    exists (select 1 from public.profiles p where p.id = profile_id)
  );
create policy "Members can read their own and visible activity." on public.activity_feed
  for select to authenticated using (
    profile_id = (select auth.uid())
    or exists (select 1 from public.profiles p where p.id = profile_id and p.leaderboard_visible)
  );

-- What the ledger already holds.
insert into public.activity_feed (ledger_id, profile_id, activity_slug, layer_slug, amount, occurred_at)
select l.id, l.profile_id, l.activity_slug, l.layer_slug, l.amount, l.occurred_at
  from public.xp_ledger l
 where l.amount > 0 and l.reason is null
on conflict (ledger_id) do nothing;
