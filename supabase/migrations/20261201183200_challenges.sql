-- Challenges: a catalogue, prerequisites and judged completions (issue 15, item 6).
--
-- Why: Clash of Code seeds its coding challenges with `load_levels` and lists them at `/challenges/`;
-- xpbase had only a `challenge_completed` activity that anyone with service_role could award at any
-- amount. Challenges are now data (slug, title, difficulty, layer, XP, prerequisites, an active window),
-- loaded from YAML by `xpbase load challenges`; a trusted judge records a completion
-- (service_role_complete_challenge), which is awarded once through award_xp with the idempotency key
-- challenge:<id>:<profile id>, after the prerequisites and the window are checked.
-- Functions: supabase/sql/39_challenges.sql (migration 20261201183300).

create table public.challenges (
  id bigint generated always as identity primary key,
  slug text not null unique check (slug ~ '^[a-z][a-z0-9_-]{0,63}$'),
  title text not null check (length(title) between 1 and 200),
  description text not null default '' check (length(description) <= 4000),
  difficulty text not null check (difficulty in ('easy', 'medium', 'hard', 'expert')),
  layer_slug text not null references public.layers (slug) on update cascade,
  xp integer not null check (xp between 1 and 100000),
  starts_at timestamptz,
  ends_at timestamptz,
  active boolean not null default true,
  position integer not null default 0 check (position between -1000000 and 1000000),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  check (starts_at is null or ends_at is null or ends_at > starts_at)
);
comment on table public.challenges is
  'Challenges a trusted judge marks completed: title, difficulty (easy, medium, hard, expert), layer (the '
  'award''s layer), XP (awarded once per member), an optional active window [starts_at, ends_at) outside which '
  'completions are refused, position (catalogue order). Loaded by `xpbase load challenges FILE.yaml`.';
create index challenges_layer_slug_idx on public.challenges (layer_slug);

create table public.challenge_prerequisites (
  challenge_id bigint not null references public.challenges (id) on delete cascade,
  prerequisite_id bigint not null references public.challenges (id) on delete cascade,
  primary key (challenge_id, prerequisite_id),
  check (challenge_id <> prerequisite_id)
);
comment on table public.challenge_prerequisites is
  'Challenges a member must have completed before completing challenge_id (no cycles: the loader refuses them).';
create index challenge_prerequisites_prerequisite_idx on public.challenge_prerequisites (prerequisite_id);

create table public.challenge_completions (
  id bigint generated always as identity primary key,
  challenge_id bigint not null references public.challenges (id),
  profile_id uuid not null references public.profiles (id),
  completed_at timestamptz not null,
  judge text not null check (length(judge) between 1 and 100),
  submission text check (length(submission) between 1 and 200),
  granted integer not null,
  ledger_id bigint,
  created_at timestamptz not null default now(),
  unique (profile_id, challenge_id)
);
comment on table public.challenge_completions is
  'A member''s completion of a challenge as the judge reported it (judge: who judged, submission: the judge''s '
  'reference), with the XP granted and its ledger row (idempotency key challenge:<challenge id>:<profile id>). '
  'One per member and challenge.';
create index challenge_completions_challenge_idx on public.challenge_completions (challenge_id);

------------------------------------------------------------------------------
-- Row-level security and grants
------------------------------------------------------------------------------

alter table public.challenges enable row level security;
revoke all on public.challenges from anon, authenticated, service_role;
grant select on public.challenges to anon, authenticated;
grant select, insert, update, delete on public.challenges to service_role;
create policy "Anyone can read the challenges." on public.challenges
  for select to anon, authenticated using (true);

alter table public.challenge_prerequisites enable row level security;
revoke all on public.challenge_prerequisites from anon, authenticated, service_role;
grant select on public.challenge_prerequisites to anon, authenticated;
grant select, insert, update, delete on public.challenge_prerequisites to service_role;
create policy "Anyone can read the challenge prerequisites." on public.challenge_prerequisites
  for select to anon, authenticated using (true);

alter table public.challenge_completions enable row level security;
revoke all on public.challenge_completions from anon, authenticated, service_role;
grant select on public.challenge_completions to authenticated, service_role;
create policy "Members read their own challenge completions." on public.challenge_completions
  for select to authenticated using (profile_id = (select auth.uid()));
