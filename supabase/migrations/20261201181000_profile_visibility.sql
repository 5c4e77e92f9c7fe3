-- Profile visibility (issue 13 item 3) and the last owner-only columns of public.profiles (issue 18).
--
-- A member chooses who sees their profile card (public.profile_card, GET /v1/profiles/{id}, the web page
-- /u/<id>, their badges and recent activity, the bot's /profile and /rank for someone else):
--   public   anyone, signed in or not;
--   members  signed-in members (the default: a community's members know each other, the open web does not);
--   private  only the owner, members whose role holds read_private_profiles (moderators, admins) and the
--            backend.
-- Leaderboards are separate: profile visibility removes nobody from a board (leaderboard_visible does), and a
-- member hidden from boards stays hidden from other members' views of their card as before.
--
-- Issue 18: members could still read time_zone and role of every profile row they see (and
-- created_at, which belongs to the card). authenticated now reads what anon reads, the leaderboard columns
-- and profile_visibility (the card functions, running as the caller, test it), and rank_card_style (the
-- colours of the rank card the bot posts publicly; inventory_of reads it as the member); the owner reads the
-- rest through public.my_profile(). The policies that asked "is the caller an admin?" by
-- reading profiles.role as the caller ask private.has_permission instead (12_roles.sql), with the permission
-- the feature's functions check: approve_claims (claims, event sign-ups), approve_redemptions, manage_reviews
-- (new, admins), read_moderation, manage_roles. Those policies are in 20261201181200_profile_visibility_policies.sql,
-- after the functions they call.

alter table public.profiles
  add column profile_visibility text not null default 'members'
    check (profile_visibility in ('public', 'members', 'private'));
comment on column public.profiles.profile_visibility is
  'Who sees the profile card: public (anyone), members (signed-in members; the default) or private (the owner, '
  'moderators and admins, the backend). Leaderboards are governed by leaderboard_visible alone.';

revoke select on public.profiles from authenticated;
grant select (id, display_name, avatar_url, leaderboard_visible, xp, level, tier, xp_reached_at, profile_visibility,
              rank_card_style)
  on public.profiles to authenticated;
grant select (profile_visibility) on public.profiles to anon;
grant update (profile_visibility) on public.profiles to authenticated, service_role;

insert into public.permissions (slug, description) values
  ('read_private_profiles', 'See every profile card, private ones included.'),
  ('manage_reviews', 'Read every resume review request and session, and every professional.')
on conflict do nothing;
insert into public.role_permissions (role_slug, permission_slug) values
  ('moderator', 'read_private_profiles'),
  ('admin', 'read_private_profiles'),
  ('admin', 'manage_reviews')
on conflict do nothing;

