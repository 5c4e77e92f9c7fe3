-- Resume reviews (issue 12): professionals, their availability, review requests, sessions with no
-- double booking, match records, the workflow's steps, feedback both ways and calendar feed tokens.
--
-- Why: the career system's "Resume review" unlock (Advanced tier) had nothing behind it. Members ask
-- for a review, professionals give weekly availability in their own IANA time zone (plus dated
-- exceptions and one-off slots), an optimal matcher pairs them and books the earliest common slot.
-- Two sessions of one professional, or of one member, can never overlap: exclusion constraints on
-- tstzrange (btree_gist for the uuid equality), so concurrent schedulers cannot double-book whatever
-- the Python does. On Supabase extensions live in schema `extensions`; on plain Postgres this migration
-- makes that schema, so the operator classes are named the same way on both.
-- Functions and triggers: supabase/sql/95_reviews.sql (migration 20261130220100).

create schema if not exists extensions;
create extension if not exists btree_gist with schema extensions;

create table public.review_specialties (
  slug text primary key check (slug ~ '^[a-z][a-z0-9_]{0,39}$'),
  name text not null check (length(name) between 1 and 80),
  active boolean not null default true
);
comment on table public.review_specialties is
  'What professionals review (resume, software, data, ...): the list an admin manages; professionals and '
  'review requests may only name active slugs.';

create table public.professionals (
  id uuid primary key default gen_random_uuid(),
  profile_id uuid unique references public.profiles (id) on delete set null,
  name text not null check (length(name) between 1 and 100),
  email text check (email is null or (length(email) <= 254 and email ~ '^[^@[:space:]]+@[^@[:space:]]+$')),
  specialties text[] not null default '{}' check (cardinality(specialties) <= 10),
  industries text[] not null default '{}' check (cardinality(industries) <= 10),
  seniority text not null default 'senior' check (seniority in ('junior', 'mid', 'senior', 'lead', 'executive')),
  languages text[] not null default '{en}' check (cardinality(languages) between 1 and 10),
  time_zone text not null check (length(time_zone) between 1 and 64),
  weekly_capacity integer not null default 2 check (weekly_capacity between 0 and 40),
  active boolean not null default true,
  rating numeric(3, 2) check (rating between 1 and 5),
  ratings_count integer not null default 0 check (ratings_count >= 0),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
comment on table public.professionals is
  'Professional reviewers: linked to a profile when they have one; specialties from review_specialties, '
  'industries, seniority, languages, IANA time_zone (availability is read in it), weekly_capacity '
  '(sessions per 7 days), active flag, rating (mean of members'' ratings, 1-5) over ratings_count.';
create unique index professionals_email_key on public.professionals (lower(email));

create table private.availability_rules (
  id bigint generated always as identity primary key,
  professional_id uuid not null references public.professionals (id) on delete cascade,
  weekday smallint not null check (weekday between 1 and 7),
  start_minute smallint not null check (start_minute between 0 and 1439),
  end_minute smallint not null check (end_minute between 1 and 1440),
  source text not null default 'manual' check (source in ('manual', 'form')),
  created_at timestamptz not null default now(),
  check (end_minute > start_minute)
);
comment on table private.availability_rules is
  'Weekly recurring availability in the professional''s time zone: ISO weekday (1 Monday .. 7 Sunday), '
  'minutes after local midnight [start_minute, end_minute). Turned into UTC instants date by date, so '
  'a rule keeps its local hours across DST changes.';
create index availability_rules_professional_idx on private.availability_rules (professional_id);

create table private.availability_exceptions (
  id bigint generated always as identity primary key,
  professional_id uuid not null references public.professionals (id) on delete cascade,
  local_date date not null,
  start_minute smallint check (start_minute between 0 and 1439),
  end_minute smallint check (end_minute between 1 and 1440),
  note text not null default '' check (length(note) <= 200),
  created_at timestamptz not null default now(),
  check ((start_minute is null) = (end_minute is null)),
  check (end_minute > start_minute)
);
comment on table private.availability_exceptions is
  'Dated exceptions: on local_date (professional''s time zone) the professional is away for '
  '[start_minute, end_minute), or the whole day when both are null.';
create index availability_exceptions_professional_idx on private.availability_exceptions (professional_id, local_date);

create table private.availability_slots (
  id bigint generated always as identity primary key,
  professional_id uuid not null references public.professionals (id) on delete cascade,
  during tstzrange not null check (
    not isempty(during) and lower(during) is not null and upper(during) is not null
    and lower_inc(during) and not upper_inc(during)
  ),
  created_at timestamptz not null default now()
);
comment on table private.availability_slots is 'One-off extra availability of a professional, [start, end) in UTC.';
create index availability_slots_professional_idx on private.availability_slots (professional_id);

create table public.review_requests (
  id bigint generated always as identity primary key,
  member_id uuid not null references public.profiles (id),
  target_role text not null check (length(target_role) between 1 and 100),
  industry text check (length(industry) between 1 and 100),
  specialties text[] not null default '{}' check (cardinality(specialties) <= 5),
  resume_url text check (length(resume_url) <= 500 and resume_url ~ '^https://[^[:space:]]+$'),
  notes text not null default '' check (length(notes) <= 2000),
  time_zone text not null check (length(time_zone) between 1 and 64),
  preferred_times jsonb not null default '[]' check (jsonb_typeof(preferred_times) = 'array'),
  status text not null default 'requested'
    check (status in ('requested', 'matched', 'scheduled', 'completed', 'cancelled', 'no_show')),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
comment on table public.review_requests is
  'A member''s request for a resume review: target role and industry, wanted specialties, resume link, '
  'notes, preferred_times [{weekday 1-7, start_minute, end_minute}] in the member''s time_zone, and the '
  'workflow status (requested, matched, scheduled, completed, cancelled, no_show). One open request per member.';
create index review_requests_member_idx on public.review_requests (member_id);
create unique index review_requests_one_open_per_member
  on public.review_requests (member_id) where status in ('requested', 'matched', 'scheduled');
create index review_requests_open_idx on public.review_requests (created_at) where status = 'requested';

create table private.review_matches (
  id bigint generated always as identity primary key,
  run_id uuid not null,
  request_id bigint not null references public.review_requests (id),
  professional_id uuid not null references public.professionals (id),
  score double precision not null,
  terms jsonb not null check (jsonb_typeof(terms) = 'object'),
  slot tstzrange not null,
  actor_id uuid references public.profiles (id),
  actor_role text not null,
  created_at timestamptz not null default now()
);
comment on table private.review_matches is
  'Every booked match and why: the matcher''s run_id, the total score and its terms (specialty, industry, '
  'slot, capacity, rating, wait, with weights), the slot booked and who ran the matcher.';
create index review_matches_request_idx on private.review_matches (request_id);
create index review_matches_professional_idx on private.review_matches (professional_id);

create table public.review_sessions (
  id bigint generated always as identity primary key,
  request_id bigint not null references public.review_requests (id),
  professional_id uuid not null references public.professionals (id),
  member_id uuid not null references public.profiles (id),
  match_id bigint references private.review_matches (id),
  during tstzrange not null check (
    not isempty(during) and lower(during) is not null and upper(during) is not null
    and lower_inc(during) and not upper_inc(during)
  ),
  meeting_url text check (length(meeting_url) <= 500 and meeting_url ~ '^https://[^[:space:]]+$'),
  status text not null default 'scheduled'
    check (status in ('scheduled', 'completed', 'cancelled', 'no_show', 'rescheduled')),
  member_confirmed_at timestamptz,
  professional_confirmed_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint review_sessions_professional_no_overlap exclude using gist (
    professional_id extensions.gist_uuid_ops with operator(pg_catalog.=),
    during with operator(pg_catalog.&&)
  ) where (status in ('scheduled', 'completed')),
  constraint review_sessions_member_no_overlap exclude using gist (
    member_id extensions.gist_uuid_ops with operator(pg_catalog.=),
    during with operator(pg_catalog.&&)
  ) where (status in ('scheduled', 'completed'))
);
comment on table public.review_sessions is
  'A booked review: request, professional, member, the time as [start, end) in UTC, meeting link, status '
  '(scheduled, completed, cancelled, no_show, rescheduled) and each side''s confirmation. Scheduled or '
  'completed sessions of one professional, or of one member, never overlap (exclusion constraints).';
create index review_sessions_request_idx on public.review_sessions (request_id);
create index review_sessions_member_idx on public.review_sessions (member_id);
create index review_sessions_professional_idx on public.review_sessions (professional_id);

create table private.review_events (
  id bigint generated always as identity primary key,
  request_id bigint not null references public.review_requests (id),
  session_id bigint references public.review_sessions (id),
  from_status text,
  to_status text not null,
  actor_id uuid references public.profiles (id),
  actor_role text not null,
  note text not null default '' check (length(note) <= 500),
  at timestamptz not null default now()
);
comment on table private.review_events is
  'The workflow''s steps: each status change of a request (requested, matched, scheduled, confirmed, '
  'completed, cancelled, no_show, rescheduled) with its actor (profile and role) and time.';
create index review_events_request_idx on private.review_events (request_id, at);

create table public.review_feedback (
  id bigint generated always as identity primary key,
  session_id bigint not null references public.review_sessions (id),
  author_id uuid references public.profiles (id),
  side text not null check (side in ('member', 'professional')),
  rating smallint not null check (rating between 1 and 5),
  body text not null default '' check (length(body) <= 2000),
  created_at timestamptz not null default now(),
  unique (session_id, side)
);
comment on table public.review_feedback is
  'Feedback both ways on a session: side member rates the professional, side professional rates the '
  'member; rating 1-5, text; one per side. Both parties of the session read both.';
create index review_feedback_author_idx on public.review_feedback (author_id);

create table private.review_calendar_tokens (
  profile_id uuid primary key references public.profiles (id) on delete cascade,
  token_hash bytea not null unique check (length(token_hash) = 32),
  created_at timestamptz not null default now()
);
comment on table private.review_calendar_tokens is
  'One calendar feed token per person (sha256 of the token): the feed URL lists their review sessions.';

------------------------------------------------------------------------------
-- Row-level security and grants
------------------------------------------------------------------------------

alter table public.review_specialties enable row level security;
revoke all on public.review_specialties from anon, authenticated, service_role;
grant select on public.review_specialties to anon, authenticated;
grant select, insert, update, delete on public.review_specialties to service_role;
create policy "Anyone can read the review specialties." on public.review_specialties
  for select to anon, authenticated using (true);

alter table public.professionals enable row level security;
revoke all on public.professionals from anon, authenticated, service_role;
grant select on public.professionals to authenticated, service_role;
create policy "Professionals and admins can read professionals." on public.professionals
  for select to authenticated using (
    profile_id = (select auth.uid())
    or exists (select 1 from public.profiles p where p.id = (select auth.uid()) and p.role = 'admin')
  );

alter table public.review_requests enable row level security;
revoke all on public.review_requests from anon, authenticated, service_role;
grant select on public.review_requests to authenticated, service_role;
create policy "Members, their reviewers and admins can read review requests." on public.review_requests
  for select to authenticated using (
    member_id = (select auth.uid())
    or exists (
      select 1 from public.review_sessions s join public.professionals pr on pr.id = s.professional_id
       where s.request_id = review_requests.id and pr.profile_id = (select auth.uid())
    )
    or exists (select 1 from public.profiles p where p.id = (select auth.uid()) and p.role = 'admin')
  );

alter table public.review_sessions enable row level security;
revoke all on public.review_sessions from anon, authenticated, service_role;
grant select on public.review_sessions to authenticated, service_role;
create policy "Members, their reviewers and admins can read review sessions." on public.review_sessions
  for select to authenticated using (
    member_id = (select auth.uid())
    or professional_id in (select pr.id from public.professionals pr where pr.profile_id = (select auth.uid()))
    or exists (select 1 from public.profiles p where p.id = (select auth.uid()) and p.role = 'admin')
  );

alter table public.review_feedback enable row level security;
revoke all on public.review_feedback from anon, authenticated, service_role;
grant select on public.review_feedback to authenticated, service_role;
create policy "Both parties of a session and admins can read its feedback." on public.review_feedback
  for select to authenticated using (
    author_id = (select auth.uid())
    or session_id in (select s.id from public.review_sessions s)
  );

alter table private.availability_rules enable row level security;
alter table private.availability_exceptions enable row level security;
alter table private.availability_slots enable row level security;
alter table private.review_matches enable row level security;
alter table private.review_events enable row level security;
alter table private.review_calendar_tokens enable row level security;
revoke all on private.availability_rules, private.availability_exceptions, private.availability_slots,
  private.review_matches, private.review_events, private.review_calendar_tokens
  from public, anon, authenticated, service_role;

------------------------------------------------------------------------------
-- Seed rows: specialties and the two XP activities of a completed review
------------------------------------------------------------------------------

insert into public.review_specialties (slug, name) values
  ('resume', 'Resume and cover letter'),
  ('software', 'Software engineering'),
  ('data', 'Data and analytics'),
  ('product', 'Product management'),
  ('design', 'Design'),
  ('finance', 'Finance'),
  ('consulting', 'Consulting'),
  ('marketing', 'Marketing')
on conflict (slug) do nothing;

-- The activities reference the layer 'reality', which seed.sql makes after the migrations on a new
-- database: here they are added where the layer exists already (a database seeded before this
-- migration); seed.sql adds the same rows on a new one.
insert into public.activity_types
  (slug, name, description, layer_slug, base_xp, min_xp, max_xp, cooldown_seconds, cap_group, active)
select v.* from (values
  ('resume_review_received', 'Resume review received', 'A completed resume review session, for the member.', 'reality', 50, null::integer, null::integer, 0, null::text, true),
  ('resume_review_given', 'Resume review given', 'A completed resume review session, for the reviewer.', 'reality', 100, null, null, 0, null, true)
) as v
 where exists (select 1 from public.layers l where l.slug = 'reality')
on conflict (slug) do nothing;
