-- Badges as data (issue 15 items 1 and 2): definitions a community edits, the badges members earn, and the
-- progress of retroactive evaluations.
--
-- Every peer (Stack Exchange, Discourse, ActiDoo, Oasis) has badges; xpbase had none. This migration adds:
-- - xp_ledger.subject: what an award is for (a post, an event: 'answer:123'), taken from award_xp's
--   context.subject by a trigger (supabase/sql/33_badges.sql), so that badges can look at a subject's running
--   sum ("an answer reaching score 10"); indexed per member and subject;
-- - public.badges: one rule per badge (kind, threshold, filters, level bronze/silver/gold, once per member or
--   per subject); edited by service_role (or the admin RPC), each edit of a rule bumps its revision and queues
--   a retroactive evaluation over the ledger (a procrastinate job, queue 'badges');
-- - public.badge_awards: the badges members hold, one row per (badge, member, subject), never taken back;
--   read like the leaderboards (anyone sees visible members', a hidden member only their own);
-- - public.badge_evaluations: one row per (badge, revision), the evaluation's progress;
-- - the notification kind badge_awarded. (The default badges come in 20261201130200, after the triggers that
--   queue their retroactive evaluation.)
-- Every decision is in supabase/sql/33_badges.sql.

alter table public.xp_ledger
  add column subject text check (subject is null or length(subject) between 1 and 200);
comment on column public.xp_ledger.subject is
  'What the award is for (''answer:123'', ''event:42''), from award_xp''s context.subject; null for most awards. '
  'Badges of kind subject_sum add up a subject''s awards.';
create index xp_ledger_subject_idx on public.xp_ledger (profile_id, subject, occurred_at, id)
  where subject is not null;

create table public.badges (
  slug text primary key check (slug ~ '^[a-z][a-z0-9_]{0,63}$'),
  name text not null check (length(name) between 1 and 64),
  description text not null default '' check (length(description) <= 500),
  level text not null default 'bronze' check (level in ('bronze', 'silver', 'gold')),
  series text check (series is null or series ~ '^[a-z][a-z0-9_]{0,63}$'),
  kind text not null check (kind in ('total_xp', 'level', 'tier', 'layer_status', 'activity_count', 'streak',
                                     'first_time', 'season_placing', 'subject_sum')),
  threshold bigint not null default 1 check (threshold between -1000000000000 and 1000000000000),
  activities text[] check (activities is null or cardinality(activities) between 1 and 50),
  weights jsonb check (weights is null or (jsonb_typeof(weights) = 'object' and length(weights::text) <= 4000)),
  subject_prefix text check (subject_prefix is null or length(subject_prefix) between 1 and 100),
  window_seconds integer check (window_seconds is null or window_seconds between 60 and 31622400),
  layer_slug text references public.layers (slug) on update cascade,
  status_slug text check (status_slug is null or length(status_slug) <= 64),
  tier_slug text references public.tiers (slug) on update cascade,
  once_per text not null default 'member' check (once_per in ('member', 'subject')),
  active boolean not null default true,
  position integer not null default 0,
  revision integer not null default 1,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  check (kind <> 'tier' or tier_slug is not null),
  check (kind <> 'layer_status' or (layer_slug is not null and status_slug is not null)),
  check (kind not in ('total_xp', 'level', 'activity_count', 'streak', 'subject_sum', 'season_placing')
         or threshold >= 1),
  check (kind in ('activity_count', 'streak', 'first_time', 'subject_sum')
         or (activities is null and subject_prefix is null)),
  check (kind = 'activity_count' or window_seconds is null),
  check (kind = 'subject_sum' or weights is null),
  check (once_per = 'member' or kind in ('subject_sum', 'season_placing'))
);
comment on table public.badges is
  'Badge definitions, one rule each, decided in SQL as awards land (supabase/sql/33_badges.sql). kind: total_xp, '
  'level (threshold reached), tier (tier_slug reached), layer_status (status_slug of layer_slug reached), '
  'activity_count (threshold credited awards of activities, within window_seconds when set), streak (threshold '
  'consecutive local days with a credited award of activities), first_time (the first credited award of '
  'activities), season_placing (final rank <= threshold in a season of layer_slug, or any layer), subject_sum '
  '(the running sum over one subject''s awards reaches threshold: weights maps activity -> points per award, '
  'else XP amounts). activities and subject_prefix filter the awards looked at. level: bronze, silver, gold; '
  'series groups levels of one idea. once_per member, or subject (subject_sum: per subject; season_placing: per '
  'season). An edit of the rule bumps revision and queues a retroactive evaluation; badges already earned stay.';
create index badges_layer_slug_idx on public.badges (layer_slug);
create index badges_tier_slug_idx on public.badges (tier_slug);

alter table public.badges enable row level security;
revoke all on public.badges from anon, authenticated, service_role;
grant select on public.badges to anon, authenticated, service_role;
grant insert, update, delete on public.badges to service_role;
create policy "Anyone can read badge definitions." on public.badges
  for select to anon, authenticated using (true);
create policy "The backend can read badge definitions." on public.badges
  for select to service_role using (true);
create policy "The backend can add badges." on public.badges
  for insert to service_role with check (true);
create policy "The backend can change badges." on public.badges
  for update to service_role using (true) with check (true);
create policy "The backend can remove badges." on public.badges
  for delete to service_role using (true);

create table public.badge_awards (
  id bigint generated always as identity primary key,
  badge_slug text not null references public.badges (slug) on update cascade on delete cascade,
  profile_id uuid not null references public.profiles (id),
  subject text not null default '' check (length(subject) <= 200),
  level text not null check (level in ('bronze', 'silver', 'gold')),
  awarded_at timestamptz not null,
  ledger_id bigint references public.xp_ledger (id),
  season_id bigint references public.seasons (id),
  source text not null check (source in ('live', 'retroactive')),
  created_at timestamptz not null default now(),
  unique (badge_slug, profile_id, subject)
);
comment on table public.badge_awards is
  'The badges members hold: one row per (badge, member, subject) (subject '''' for once-per-member badges), '
  'awarded_at the occurred_at of the award that met the rule (a season''s end for placings), ledger_id that '
  'award, source live (as the award landed) or retroactive (an evaluation over the ledger). Never taken back. '
  'Visible like profile_layers: anyone sees visible members'', a hidden member only their own.';
create index badge_awards_profile_idx on public.badge_awards (profile_id, awarded_at desc);
create index badge_awards_ledger_id_idx on public.badge_awards (ledger_id) where ledger_id is not null;
create index badge_awards_season_id_idx on public.badge_awards (season_id) where season_id is not null;

alter table public.badge_awards enable row level security;
revoke all on public.badge_awards from anon, authenticated, service_role;
grant select on public.badge_awards to anon, authenticated, service_role;
create policy "Anon can read the badges of visible profiles." on public.badge_awards
  for select to anon using (
    exists (select 1 from public.profiles p where p.id = profile_id)
  );
create policy "Members can read their own and visible badges." on public.badge_awards
  for select to authenticated using (
    profile_id = (select auth.uid())
    or exists (select 1 from public.profiles p where p.id = profile_id and p.leaderboard_visible)
  );
create policy "The backend can read every badge." on public.badge_awards
  for select to service_role using (true);

create table public.badge_evaluations (
  id bigint generated always as identity primary key,
  badge_slug text not null references public.badges (slug) on update cascade on delete cascade,
  revision integer not null,
  status text not null default 'queued' check (status in ('queued', 'running', 'done')),
  profiles_total integer,
  profiles_done integer not null default 0,
  awarded integer not null default 0,
  cursor uuid,
  queued_at timestamptz not null default now(),
  started_at timestamptz,
  finished_at timestamptz,
  unique (badge_slug, revision)
);
comment on table public.badge_evaluations is
  'Retroactive evaluations of a badge over the ledger, one per (badge, revision): status queued, running, '
  'done; profiles_done of profiles_total (members looked at so far, in id order; cursor the last), awarded (new '
  'badge_awards). Written by the evaluation functions only; anyone may read the progress.';

alter table public.badge_evaluations enable row level security;
revoke all on public.badge_evaluations from anon, authenticated, service_role;
grant select on public.badge_evaluations to anon, authenticated, service_role;
create policy "Anyone can read badge evaluation progress." on public.badge_evaluations
  for select to anon, authenticated using (true);
create policy "The backend can read badge evaluation progress." on public.badge_evaluations
  for select to service_role using (true);

insert into public.notification_kinds (kind, description, default_channels, collapse_seconds) values
  ('badge_awarded', 'You earned a badge', '{in_app,discord_dm,push}', 300)
on conflict (kind) do nothing;
