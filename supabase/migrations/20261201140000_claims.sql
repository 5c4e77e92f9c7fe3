-- Member claims with review and activity categories (issue 15, item 3).
--
-- Why: the career system's members claim points themselves (`!event`, `!resource <description>`,
-- `!linkedin`) and a person reviews each claim. Activities get a category (what `/pointvalues` groups
-- by) and may be marked claimable: a member submits a claim (note, evidence URL, when it happened), a
-- reviewer approves it (the award goes through award_xp keyed on the claim, so approving twice credits
-- once) or rejects it with a reason. claim_limit caps a member's claims of one activity per
-- claim_window_seconds (rejected claims do not count). Activities that do not require review are
-- awarded as soon as they are claimed.
-- Functions: supabase/sql/36_claims.sql (migration 20261201161415).

create table public.activity_categories (
  slug text primary key check (slug ~ '^[a-z][a-z0-9_]{0,39}$'),
  name text not null check (length(name) between 1 and 80),
  description text not null default '' check (length(description) <= 500),
  position integer not null default 0
);
comment on table public.activity_categories is
  'Groups of activity types (events, resources, professional presence ...): what /pointvalues lists by. '
  'position orders them.';

alter table public.activity_types
  add column category text references public.activity_categories (slug) on update cascade on delete set null,
  add column claimable boolean not null default false,
  add column requires_review boolean not null default true,
  add column claim_limit integer check (claim_limit between 1 and 1000),
  add column claim_window_seconds integer not null default 604800
    check (claim_window_seconds between 3600 and 31536000);
comment on column public.activity_types.category is 'The activity''s category (public.activity_categories), or null.';
comment on column public.activity_types.claimable is 'Members may claim this activity themselves (submit_claim).';
comment on column public.activity_types.requires_review is
  'A claim waits for a reviewer (true) or is awarded when submitted (false). Only read for claimable activities.';
comment on column public.activity_types.claim_limit is
  'At most this many pending or approved claims of the activity per member per claim_window_seconds; null: no limit.';
comment on column public.activity_types.claim_window_seconds is
  'The window claim_limit counts over, in seconds (default 7 days), ending at the moment of submission.';
create index activity_types_category_idx on public.activity_types (category);

create table public.activity_claims (
  id bigint generated always as identity primary key,
  profile_id uuid not null references public.profiles (id),
  activity_slug text not null references public.activity_types (slug) on update cascade,
  note text not null default '' check (length(note) <= 1000),
  evidence_url text check (length(evidence_url) <= 500 and evidence_url ~ '^https?://[^[:space:]]+$'),
  occurred_at timestamptz not null,
  status text not null default 'pending' check (status in ('pending', 'approved', 'rejected')),
  reviewer_id uuid references public.profiles (id),
  reviewer_role text,
  reviewed_at timestamptz,
  reason text check (length(reason) <= 500),
  ledger_id bigint,
  granted integer,
  created_at timestamptz not null default now(),
  check ((status = 'pending') = (reviewed_at is null)),
  check (status <> 'rejected' or reason is not null)
);
comment on table public.activity_claims is
  'A member''s claim of a claimable activity: note, evidence_url, occurred_at (when it happened, UTC), and the '
  'review (status pending -> approved | rejected, reviewer, reviewed_at, reason for a rejection). An approved '
  'claim names its ledger row (ledger_id) and the XP granted; the award''s idempotency key is claim:<id>.';
create index activity_claims_profile_idx on public.activity_claims (profile_id, activity_slug, created_at);
create index activity_claims_pending_idx on public.activity_claims (created_at) where status = 'pending';
create index activity_claims_reviewer_idx on public.activity_claims (reviewer_id);

insert into public.notification_kinds (kind, description, default_channels, collapse_seconds) values
  ('claim_reviewed', 'A claim you submitted was approved or rejected', '{in_app,discord_dm}', 0)
on conflict (kind) do nothing;

------------------------------------------------------------------------------
-- Row-level security and grants
------------------------------------------------------------------------------

alter table public.activity_categories enable row level security;
revoke all on public.activity_categories from anon, authenticated, service_role;
grant select on public.activity_categories to anon, authenticated;
grant select, insert, update, delete on public.activity_categories to service_role;
create policy "Anyone can read the activity categories." on public.activity_categories
  for select to anon, authenticated using (true);

alter table public.activity_claims enable row level security;
revoke all on public.activity_claims from anon, authenticated, service_role;
grant select on public.activity_claims to authenticated, service_role;
create policy "Members and admins can read claims." on public.activity_claims
  for select to authenticated using (
    profile_id = (select auth.uid())
    or exists (select 1 from public.profiles p where p.id = (select auth.uid()) and p.role = 'admin')
  );
