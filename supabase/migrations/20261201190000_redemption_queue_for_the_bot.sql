-- The bot's /redemptions reads the queue on behalf of the person asking, who must hold approve_redemptions
--
-- Written by `xpbase migration new` from the feature files in supabase/sql/:
-- the function and trigger definitions that changed since the last migration.
-- Edit the feature files, not this file; landed migrations never change.
-- Changed:
--   function private.redemption_queue_for(uuid, text, int4, int8)
--   function public.service_role_redemption_queue(uuid, text, int4, int8)

-- from supabase/sql/56_redemptions.sql --------------------------------------

create or replace function private.redemption_queue_for(p_actor_id uuid, p_status text, p_size integer,
                                                         p_before_id bigint)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_result jsonb;
begin
  -- The queue holds members' delivery details (emails, addresses): the person the backend acts for must hold
  -- approve_redemptions in their xpbase role; a Discord permission alone does not show it.
  perform private.act_for(p_actor_id);
  perform private.assert_permission('approve_redemptions');
  v_result := private.list_redemptions(null, p_status, p_size, p_before_id);
  perform set_config('xpbase.actor_id', '', true);
  return v_result;
end
$$;

comment on function private.redemption_queue_for(uuid, text, integer, bigint) is
  'Implementation of public.service_role_redemption_queue.';

revoke all on function private.redemption_queue_for(uuid, text, integer, bigint) from public;

grant execute on function private.redemption_queue_for(uuid, text, integer, bigint) to service_role;

create or replace function public.service_role_redemption_queue(
  actor_id uuid,
  status text default 'pending',
  size integer default 25,
  before_id bigint default null
)
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.redemption_queue_for(service_role_redemption_queue.actor_id, service_role_redemption_queue.status,
                                      service_role_redemption_queue.size, service_role_redemption_queue.before_id)
$$;

comment on function public.service_role_redemption_queue(uuid, text, integer, bigint) is
  'redemption_queue on behalf of a person (the bot''s /redemptions): answers only when actor_id''s role holds '
  'approve_redemptions (moderators, admins). Same answer as redemption_queue. Errors: 42501 (the actor may not), '
  'XPPRF (unknown actor), XPBAD. service_role only.';

revoke all on function public.service_role_redemption_queue(uuid, text, integer, bigint) from public, anon, authenticated;

grant execute on function public.service_role_redemption_queue(uuid, text, integer, bigint) to service_role;
