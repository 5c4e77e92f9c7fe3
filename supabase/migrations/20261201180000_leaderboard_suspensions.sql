-- Suspended members leave every leaderboard while the suspension is in force (issue 13 item 4).
--
-- public.moderation_actions is private to the member and moderators, but the boards run as the caller (anon
-- included), so they read this public mirror of the suspensions in force instead: a trigger of
-- 60_leaderboards.sql adds a row when a suspension is recorded and removes it when it is lifted. A suspension
-- with an end stops hiding the member at that end without any job: the select policy shows only the rows still
-- in force, and public.leaderboard_suspended_ids() applies the same test for roles that bypass RLS. Only the
-- profile id is readable by members and anon (the fact that a member is off the boards is visible on the
-- boards anyway); the end of the suspension is not.
create table public.leaderboard_suspensions (
  moderation_action_id bigint primary key references public.moderation_actions (id) on delete cascade,
  profile_id uuid not null references public.profiles (id) on delete cascade,
  until timestamptz
);
comment on table public.leaderboard_suspensions is
  'The suspensions not lifted (one row per public.moderation_actions suspension, until = its end, null for a '
  'ban), kept by a trigger; members and anon see the profile_id of those in force, which every leaderboard '
  'leaves out.';
create index leaderboard_suspensions_profile_id_idx on public.leaderboard_suspensions (profile_id);

alter table public.leaderboard_suspensions enable row level security;
revoke all on public.leaderboard_suspensions from anon, authenticated, service_role;
grant select (profile_id) on public.leaderboard_suspensions to anon, authenticated;
grant select on public.leaderboard_suspensions to service_role;
create policy "Anyone can see which members a suspension in force keeps off the leaderboards."
  on public.leaderboard_suspensions for select to anon, authenticated
  using (until is null or until > now());

insert into public.leaderboard_suspensions (moderation_action_id, profile_id, until)
select m.id, m.profile_id, m.until
  from public.moderation_actions m
 where m.kind = 'suspension' and m.lifted_at is null and (m.until is null or m.until > now());
