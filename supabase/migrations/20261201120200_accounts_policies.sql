-- Accounts (issue 13): the read policies of role_changes and moderation_actions.
--
-- They call private.has_permission, which the function migration before this
-- one creates (supabase/sql/12_roles.sql), so they come after it. A member reads
-- their own rows; holders of manage_roles (role changes) or read_moderation
-- (warnings and suspensions: moderators, admins) read everyone's. Nobody
-- writes these tables directly: the functions of 12_roles.sql and
-- 13_moderation.sql do.

create policy "Members can read their own role changes; role managers read all." on public.role_changes
  for select to authenticated
  using (profile_id = (select auth.uid()) or (select private.has_permission('manage_roles')));

create policy "Members can read their own moderation record; moderators read all." on public.moderation_actions
  for select to authenticated
  using (profile_id = (select auth.uid()) or (select private.has_permission('read_moderation')));
