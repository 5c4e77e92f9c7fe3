-- Profile visibility (issue 13 item 3) and staff checks by permission (issue 18): the policies of
-- 20261201181000_profile_visibility.sql, written after the functions they call (private.can_see_profile in
-- 10_profiles.sql, private.has_permission in 12_roles.sql, granted to authenticated for these policies).
--
-- Profiles: staff read every row (the leaderboard columns; the boards still leave hidden members out).
create policy "Moderators and admins can read every profile." on public.profiles
  for select to authenticated using ((select private.has_permission('read_private_profiles')));

-- The card's data follows the card's visibility. Anon: listed members with a public profile.
drop policy "Anon can read the activity of visible profiles." on public.activity_feed;
create policy "Anon can read the activity of public profiles." on public.activity_feed
  for select to anon
  using (exists (select 1 from public.profiles p
                  where p.id = activity_feed.profile_id and p.leaderboard_visible
                    and p.profile_visibility = 'public'));
drop policy "Members can read their own and visible activity." on public.activity_feed;
create policy "Members can read the activity of the profiles they may see." on public.activity_feed
  for select to authenticated
  using (private.can_see_profile(activity_feed.profile_id, (select auth.uid())));

drop policy "Anon can read the badges of visible profiles." on public.badge_awards;
create policy "Anon can read the badges of public profiles." on public.badge_awards
  for select to anon
  using (exists (select 1 from public.profiles p
                  where p.id = badge_awards.profile_id and p.leaderboard_visible
                    and p.profile_visibility = 'public'));
drop policy "Members can read their own and visible badges." on public.badge_awards;
create policy "Members can read the badges of the profiles they may see." on public.badge_awards
  for select to authenticated
  using (private.can_see_profile(badge_awards.profile_id, (select auth.uid())));

-- Staff checks through permissions, not by reading profiles.role as the caller.
drop policy "Members and admins can read claims." on public.activity_claims;
create policy "Members read their own claims; claim reviewers read all." on public.activity_claims
  for select to authenticated
  using (profile_id = (select auth.uid()) or (select private.has_permission('approve_claims')));

drop policy "Members and admins can read sign-ups." on public.event_signups;
create policy "Members read their own sign-ups; claim reviewers read all." on public.event_signups
  for select to authenticated
  using (profile_id = (select auth.uid()) or (select private.has_permission('approve_claims')));

drop policy "Members read their own redemptions, admins all." on public.redemptions;
create policy "Members read their own redemptions; redemption approvers read all." on public.redemptions
  for select to authenticated
  using (profile_id = (select auth.uid()) or (select private.has_permission('approve_redemptions')));

drop policy "Members read their own redemption steps, admins all." on public.redemption_events;
create policy "Members read their own redemption steps; redemption approvers read all." on public.redemption_events
  for select to authenticated
  using (profile_id = (select auth.uid()) or (select private.has_permission('approve_redemptions')));

drop policy "Professionals and admins can read professionals." on public.professionals;
create policy "Professionals read their own entry; review managers read all." on public.professionals
  for select to authenticated
  using (profile_id = (select auth.uid()) or (select private.has_permission('manage_reviews')));

drop policy "Members, their reviewers and admins can read review requests." on public.review_requests;
create policy "Members, their reviewers and review managers can read review requests." on public.review_requests
  for select to authenticated
  using (member_id = (select auth.uid())
         or exists (select 1 from public.review_sessions s join public.professionals pr on pr.id = s.professional_id
                     where s.request_id = review_requests.id and pr.profile_id = (select auth.uid()))
         or (select private.has_permission('manage_reviews')));

drop policy "Members, their reviewers and admins can read review sessions." on public.review_sessions;
create policy "Members, their reviewers and review managers can read review sessions." on public.review_sessions
  for select to authenticated
  using (member_id = (select auth.uid())
         or professional_id in (select pr.id from public.professionals pr where pr.profile_id = (select auth.uid()))
         or (select private.has_permission('manage_reviews')));

drop policy "Members can read their own role changes; role managers read all." on public.role_changes;
create policy "Members can read their own role changes; role managers read all." on public.role_changes
  for select to authenticated
  using (profile_id = (select auth.uid()) or (select private.has_permission('manage_roles')));

drop policy "Members can read their own moderation record; moderators read all." on public.moderation_actions;
create policy "Members can read their own moderation record; moderators read all." on public.moderation_actions
  for select to authenticated
  using (profile_id = (select auth.uid()) or (select private.has_permission('read_moderation')));
