-- Accounts (issue 13): the read policies of role_changes and moderation_actions.
--
-- The permission test is written out (the member's role holds the permission)
-- so that members need no execute right on private functions. A member reads
-- their own rows; holders of manage_roles (role changes) or read_moderation
-- (warnings and suspensions: moderators, admins) read everyone's. Nobody
-- writes these tables directly: the functions of 12_roles.sql and
-- 13_moderation.sql do.

create policy "Members can read their own role changes; role managers read all." on public.role_changes
  for select to authenticated
  using (profile_id = (select auth.uid()) or exists (
    select 1 from public.profiles p
      join public.role_permissions rp on rp.role_slug = p.role and rp.permission_slug = 'manage_roles'
     where p.id = (select auth.uid())));

create policy "Members can read their own moderation record; moderators read all." on public.moderation_actions
  for select to authenticated
  using (profile_id = (select auth.uid()) or exists (
    select 1 from public.profiles p
      join public.role_permissions rp on rp.role_slug = p.role and rp.permission_slug = 'read_moderation'
     where p.id = (select auth.uid())));
