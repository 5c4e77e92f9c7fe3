-- Tool unlocks: tool managers are found through private.has_permission('manage_tools'), as every staff policy
-- since 20261201181200_profile_visibility_policies.sql is. The policy of 20261201183000_tools.sql joined
-- public.profiles.role, which members may no longer read (issue 18: role is owner-only, through my_profile),
-- so every member's read of tool_unlocks failed with "permission denied for table profiles".

drop policy "Members read their own tool unlocks and tool managers read all." on public.tool_unlocks;
create policy "Members read their own tool unlocks and tool managers read all." on public.tool_unlocks
  for select to authenticated using (
    profile_id = (select auth.uid()) or (select private.has_permission('manage_tools'))
  );
