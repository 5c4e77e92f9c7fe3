-- discord_level_up_queue
--
-- Written by `xpbase migration new` from the feature files in supabase/sql/:
-- the function and trigger definitions that changed since the last migration.
-- Edit the feature files, not this file; landed migrations never change.
-- Changed:
--   function private.tg_notifications__discord_level_up()
--   trigger public.notifications._610_discord_level_up
--   function private.claim_discord_level_ups(int4, int4)
--   function public.service_role_claim_discord_level_ups(int4, int4)
--   function private.finish_discord_level_ups(int8[])
--   function public.service_role_finish_discord_level_ups(int8[])

-- from supabase/sql/91_discord_members.sql ----------------------------------

-- The bot's queue of level-ups: the one source of reward roles and announcements ---------------------
create or replace function private.tg_notifications__discord_level_up()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_user_id text;
  v_ledger_id bigint := (new.data ->> 'ledger_id')::bigint;
  v_activity text;
  v_context jsonb;
  v_guild_id text;
  v_channel_id text;
begin
  select i.subject into v_user_id
    from public.identities i
   where i.profile_id = new.profile_id and i.provider = 'discord'
   order by i.created_at desc
   limit 1;
  if v_user_id is null or v_user_id !~ '^[0-9]{1,20}$' then
    return null;
  end if;
  select l.activity_slug, l.request -> 'context' into v_activity, v_context
    from public.xp_ledger l where l.id = v_ledger_id;
  if v_activity = 'import' then
    return null;  -- moving in from another bot is not news (92_imports.sql also stores no notification)
  end if;
  -- Where the XP was earned, when the bot awarded it (service_role_discord_award's context).
  v_guild_id := v_context ->> 'guild_id';
  if v_guild_id !~ '^[0-9]{1,20}$' then
    v_guild_id := null;
  end if;
  v_channel_id := case when v_guild_id is not null and v_context ->> 'channel_id' ~ '^[0-9]{1,20}$'
                       then v_context ->> 'channel_id' end;
  insert into private.discord_level_ups (notification_id, kind, ledger_id, user_id, guild_id, channel_id)
  values (new.id, new.kind, v_ledger_id, v_user_id, v_guild_id, v_channel_id)
  on conflict (notification_id) do nothing;
  -- One wake-up per transaction (identical payloads are folded): the bot claims whatever is there.
  perform pg_notify('xpbase_discord_level_ups', '');
  return null;
end
$$;

comment on function private.tg_notifications__discord_level_up() is
  'Queues a level_up or tier_up notification of a member with a Discord identity for the bot '
  '(private.discord_level_ups), with the guild and channel of the award''s ledger context when the bot awarded '
  'it, and wakes the bot on xpbase_discord_level_ups. Imports are not queued.';

revoke all on function private.tg_notifications__discord_level_up() from public;

drop trigger if exists _610_discord_level_up on public.notifications;

create trigger _610_discord_level_up after insert on public.notifications
  for each row when (new.kind in ('level_up', 'tier_up'))
  execute function private.tg_notifications__discord_level_up();

create or replace function private.claim_discord_level_ups(p_max_rows integer, p_lease_seconds integer)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_claimed jsonb;
begin
  if p_max_rows is null or p_max_rows not between 1 and 500 or p_lease_seconds is null
     or p_lease_seconds not between 1 and 3600 then
    raise exception 'max_rows must be 1 to 500, lease_seconds 1 to 3600' using errcode = 'XPBAD';
  end if;
  with due as (
    select q.notification_id, q.ledger_id
      from private.discord_level_ups q
     where q.attempts < 5
       and (q.claimed_at is null or q.claimed_at <= now() - make_interval(secs => p_lease_seconds))
     order by q.notification_id
     limit p_max_rows
       for update skip locked
  ), taken as (
    -- The first max_rows due rows and the other rows of their awards (a level_up and a tier_up of one award
    -- are one announcement), unless another bot holds them.
    select q.notification_id
      from private.discord_level_ups q
     where q.attempts < 5
       and (q.claimed_at is null or q.claimed_at <= now() - make_interval(secs => p_lease_seconds))
       and (q.notification_id in (select d.notification_id from due d)
            or q.ledger_id in (select d.ledger_id from due d))
       for update skip locked
  ), claimed as (
    update private.discord_level_ups q
       set claimed_at = now(), attempts = q.attempts + 1
      from taken t
     where q.notification_id = t.notification_id
    returning q.*
  )
  select coalesce(jsonb_agg(jsonb_build_object(
           'notification_id', c.notification_id, 'kind', c.kind, 'ledger_id', c.ledger_id, 'user_id', c.user_id,
           'guild_id', c.guild_id, 'channel_id', c.channel_id, 'attempts', c.attempts,
           'created_at', private.utc_text(n.created_at), 'data', n.data)
         order by c.notification_id), '[]')
    into v_claimed
    from claimed c
    join public.notifications n on n.id = c.notification_id;
  return jsonb_build_object('level_ups', v_claimed);
end
$$;

comment on function private.claim_discord_level_ups(integer, integer) is
  'Implementation of public.service_role_claim_discord_level_ups.';

revoke all on function private.claim_discord_level_ups(integer, integer) from public;

grant execute on function private.claim_discord_level_ups(integer, integer) to service_role;

create or replace function public.service_role_claim_discord_level_ups(
  max_rows integer default 100, lease_seconds integer default 60
)
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.claim_discord_level_ups(service_role_claim_discord_level_ups.max_rows,
                                         service_role_claim_discord_level_ups.lease_seconds)
$$;

comment on function public.service_role_claim_discord_level_ups(integer, integer) is
  'The bot takes the oldest level-ups and tier-ups of Discord members to act on (reward roles, announcement): '
  '{level_ups [{notification_id, kind (level_up|tier_up), ledger_id, user_id (Discord), guild_id and channel_id '
  '(where the XP was earned; null outside Discord), attempts (this claim included), created_at (UTC), data (the '
  'notification''s: level_before, level, total_xp or tier_before, tier, tier_name, unlocks; ledger_id)}]}: up to '
  'max_rows (1-500) and the other notification of the same awards, held for lease_seconds (1-3600; then another '
  'claim takes them again, at most 5 times). Rows another bot holds are skipped. Finish them with '
  'service_role_finish_discord_level_ups. Errors: XPBAD. service_role only.';

revoke all on function public.service_role_claim_discord_level_ups(integer, integer) from public, anon, authenticated;

grant execute on function public.service_role_claim_discord_level_ups(integer, integer) to service_role;

create or replace function private.finish_discord_level_ups(p_notification_ids bigint[])
returns integer
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_count integer;
begin
  if p_notification_ids is null or cardinality(p_notification_ids) > 1000
     or array_position(p_notification_ids, null) is not null then
    raise exception 'notification_ids must be at most 1000 ids, none null' using errcode = 'XPBAD';
  end if;
  delete from private.discord_level_ups q
   where q.notification_id = any (p_notification_ids) and q.claimed_at is not null;
  get diagnostics v_count = row_count;
  return v_count;
end
$$;

comment on function private.finish_discord_level_ups(bigint[]) is
  'Implementation of public.service_role_finish_discord_level_ups.';

revoke all on function private.finish_discord_level_ups(bigint[]) from public;

grant execute on function private.finish_discord_level_ups(bigint[]) to service_role;

create or replace function public.service_role_finish_discord_level_ups(notification_ids bigint[])
returns integer
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.finish_discord_level_ups(service_role_finish_discord_level_ups.notification_ids)
$$;

comment on function public.service_role_finish_discord_level_ups(bigint[]) is
  'The bot acted on these claimed level-ups (notification ids, at most 1000): they leave the queue and are never '
  'claimed again. Ids not claimed (or finished already) are ignored. Returns how many were finished. '
  'Errors: XPBAD. service_role only.';

revoke all on function public.service_role_finish_discord_level_ups(bigint[]) from public, anon, authenticated;

grant execute on function public.service_role_finish_discord_level_ups(bigint[]) to service_role;
