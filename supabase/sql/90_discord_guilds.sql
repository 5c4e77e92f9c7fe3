-- The Discord bot, guild side: per-guild configuration (announcements, no-XP channels and
-- roles, multipliers, reward roles) and admin corrections made through the bot for a named actor.
--
-- Tables: public.discord_guilds, public.discord_no_xp_targets, public.discord_role_rewards.
-- Tests: tests/sql/test_discord_guilds.py

------------------------------------------------------------------------------
-- The Discord bot
--
-- The bot (bot/) reports what happened in Discord (a message, a minute in
-- voice, a command, an admin's correction) and applies what these functions
-- decide: whether it earns XP (no-XP channels and roles, then award_xp's
-- multipliers, cooldown and caps), which reward roles a member holds, and
-- which level-ups to announce. Discord ids are text of digits (snowflakes).
-- Every RPC here is service_role only.
------------------------------------------------------------------------------

create or replace function private.discord_id(p_name text, p_value text)
returns text
language plpgsql
immutable
set search_path = ''
as $$
begin
  if p_value is null or p_value !~ '^[0-9]{1,20}$' then
    raise exception '% must be a Discord id (1 to 20 digits), got %', p_name, coalesce(p_value, 'null')
      using errcode = 'XPBAD';
  end if;
  return p_value;
end
$$;
comment on function private.discord_id(text, text) is 'Returns a Discord id (snowflake as text) unchanged, or raises XPBAD naming the argument.';
revoke all on function private.discord_id(text, text) from public;
grant execute on function private.discord_id(text, text) to service_role;

create or replace function private.act_for(p_actor_id uuid)
returns void
language plpgsql
volatile
security definer
set search_path = ''
as $$
begin
  if not private.is_service_role() then
    raise exception 'Only the backend may act for someone' using errcode = '42501';
  end if;
  if p_actor_id is null then
    raise exception 'actor_id is required' using errcode = 'XPBAD';
  end if;
  if not exists (select 1 from public.profiles p where p.id = p_actor_id) then
    raise exception 'Unknown actor profile: %', p_actor_id using errcode = 'XPPRF';
  end if;
  perform set_config('xpbase.actor_id', p_actor_id::text, true);
end
$$;
comment on function private.act_for(uuid) is
  'Names the profile the backend acts for until the end of the transaction (or until cleared), so the admin '
  'corrections record it as the ledger''s actor_id. service_role only.';
revoke all on function private.act_for(uuid) from public;
grant execute on function private.act_for(uuid) to service_role;

create or replace function public.service_role_admin_adjust_xp(
  actor_id uuid,
  profile_id uuid,
  amount integer,
  reason text,
  idempotency_key text,
  layer text default null
)
returns jsonb
language plpgsql
volatile
security invoker
set search_path = ''
as $$
declare
  v_receipt jsonb;
begin
  perform private.act_for(service_role_admin_adjust_xp.actor_id);
  v_receipt := public.admin_adjust_xp(service_role_admin_adjust_xp.profile_id, service_role_admin_adjust_xp.amount,
                                      service_role_admin_adjust_xp.reason, service_role_admin_adjust_xp.idempotency_key,
                                      service_role_admin_adjust_xp.layer);
  perform set_config('xpbase.actor_id', '', true);
  return v_receipt;
end
$$;
comment on function public.service_role_admin_adjust_xp(uuid, uuid, integer, text, text, text) is
  'admin_adjust_xp on behalf of a person: the ledger rows name actor_id (a profile, e.g. the Discord admin who '
  'ran /addxp) as their actor. Same arguments, receipt and errors as admin_adjust_xp, plus XPPRF for an '
  'unknown actor. service_role only.';
revoke all on function public.service_role_admin_adjust_xp(uuid, uuid, integer, text, text, text) from public, anon, authenticated;
grant execute on function public.service_role_admin_adjust_xp(uuid, uuid, integer, text, text, text) to service_role;

create or replace function public.service_role_admin_set_level(
  actor_id uuid,
  profile_id uuid,
  level integer,
  reason text,
  idempotency_key text
)
returns jsonb
language plpgsql
volatile
security invoker
set search_path = ''
as $$
declare
  v_receipt jsonb;
begin
  perform private.act_for(service_role_admin_set_level.actor_id);
  v_receipt := public.admin_set_level(service_role_admin_set_level.profile_id, service_role_admin_set_level.level,
                                      service_role_admin_set_level.reason, service_role_admin_set_level.idempotency_key);
  perform set_config('xpbase.actor_id', '', true);
  return v_receipt;
end
$$;
comment on function public.service_role_admin_set_level(uuid, uuid, integer, text, text) is
  'admin_set_level on behalf of a person recorded as the ledger''s actor. Errors as admin_set_level, plus XPPRF '
  'for an unknown actor. service_role only.';
revoke all on function public.service_role_admin_set_level(uuid, uuid, integer, text, text) from public, anon, authenticated;
grant execute on function public.service_role_admin_set_level(uuid, uuid, integer, text, text) to service_role;

create or replace function public.service_role_admin_reset_xp(
  actor_id uuid,
  profile_id uuid,
  reason text,
  idempotency_key text
)
returns jsonb
language plpgsql
volatile
security invoker
set search_path = ''
as $$
declare
  v_receipt jsonb;
begin
  perform private.act_for(service_role_admin_reset_xp.actor_id);
  v_receipt := public.admin_reset_xp(service_role_admin_reset_xp.profile_id, service_role_admin_reset_xp.reason,
                                     service_role_admin_reset_xp.idempotency_key);
  perform set_config('xpbase.actor_id', '', true);
  return v_receipt;
end
$$;
comment on function public.service_role_admin_reset_xp(uuid, uuid, text, text) is
  'admin_reset_xp on behalf of a person recorded as the ledger''s actor. Errors as admin_reset_xp, plus XPPRF '
  'for an unknown actor. service_role only.';
revoke all on function public.service_role_admin_reset_xp(uuid, uuid, text, text) from public, anon, authenticated;
grant execute on function public.service_role_admin_reset_xp(uuid, uuid, text, text) to service_role;

-- Guild configuration --------------------------------------------------------

create or replace function private.discord_guild_config(p_guild_id text)
returns jsonb
language sql
stable
security definer
set search_path = ''
as $$
  select jsonb_build_object(
    'guild_id', p_guild_id,
    'announce_mode', coalesce(g.announce_mode, 'current'),
    'announce_channel_id', g.announce_channel_id,
    'no_xp_channels', coalesce((
      select jsonb_agg(t.target_id order by t.target_id) from public.discord_no_xp_targets t
       where t.guild_id = p_guild_id and t.kind = 'channel'), '[]'),
    'no_xp_roles', coalesce((
      select jsonb_agg(t.target_id order by t.target_id) from public.discord_no_xp_targets t
       where t.guild_id = p_guild_id and t.kind = 'role'), '[]'),
    'multipliers', coalesce((
      select jsonb_agg(jsonb_build_object('kind', m.kind, 'target_id', m.match_value, 'factor', m.factor)
                       order by m.kind, m.match_value)
        from public.multipliers m where m.discord_guild_id = p_guild_id), '[]'),
    'role_rewards', coalesce((
      select jsonb_agg(jsonb_build_object('role_id', r.role_id, 'min_level', r.min_level, 'tier', r.tier_slug,
                                          'tier_name', t.name, 'level', coalesce(r.min_level, t.min_level))
                       order by coalesce(r.min_level, t.min_level), r.role_id)
        from public.discord_role_rewards r
        left join public.tiers t on t.slug = r.tier_slug
       where r.guild_id = p_guild_id), '[]'))
    from (select 1) as one
    left join public.discord_guilds g on g.guild_id = p_guild_id
$$;
comment on function private.discord_guild_config(text) is 'The configuration of one guild as jsonb (see public.service_role_discord_guild).';
revoke all on function private.discord_guild_config(text) from public;
grant execute on function private.discord_guild_config(text) to service_role;

create or replace function public.service_role_discord_guild(guild_id text)
returns jsonb
language sql
stable
security invoker
set search_path = ''
as $$
  select private.discord_guild_config(private.discord_id('guild_id', service_role_discord_guild.guild_id))
$$;
comment on function public.service_role_discord_guild(text) is
  'A guild''s bot configuration: {guild_id, announce_mode (channel|current|dm|off), announce_channel_id, '
  'no_xp_channels [id], no_xp_roles [id], multipliers [{kind, target_id, factor}], role_rewards [{role_id, '
  'min_level, tier, tier_name, level}] (level: the level that earns the role)}; defaults for an unknown guild. '
  'Errors: XPBAD for a malformed id. service_role only.';
revoke all on function public.service_role_discord_guild(text) from public, anon, authenticated;
grant execute on function public.service_role_discord_guild(text) to service_role;

create or replace function private.discord_touch_guild(p_guild_id text)
returns void
language sql
volatile
security definer
set search_path = ''
as $$
  insert into public.discord_guilds as g (guild_id) values (p_guild_id)
  on conflict (guild_id) do update set updated_at = now()
$$;
comment on function private.discord_touch_guild(text) is 'Creates the guild''s configuration row with defaults, or stamps updated_at.';
revoke all on function private.discord_touch_guild(text) from public;

create or replace function private.discord_set_announcements(p_guild_id text, p_mode text, p_channel_id text)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
begin
  perform private.discord_id('guild_id', p_guild_id);
  if p_mode is null or p_mode not in ('channel', 'current', 'dm', 'off') then
    raise exception 'mode must be channel, current, dm or off, got %', coalesce(p_mode, 'null') using errcode = 'XPBAD';
  end if;
  if p_channel_id is not null then
    perform private.discord_id('channel_id', p_channel_id);
  elsif p_mode = 'channel' then
    raise exception 'mode channel needs a channel_id' using errcode = 'XPBAD';
  end if;
  perform private.discord_touch_guild(p_guild_id);
  update public.discord_guilds g
     set announce_mode = p_mode, announce_channel_id = p_channel_id
   where g.guild_id = p_guild_id;
  return private.discord_guild_config(p_guild_id);
end
$$;
comment on function private.discord_set_announcements(text, text, text) is 'Implementation of public.service_role_discord_set_announcements.';
revoke all on function private.discord_set_announcements(text, text, text) from public;
grant execute on function private.discord_set_announcements(text, text, text) to service_role;

create or replace function public.service_role_discord_set_announcements(guild_id text, mode text, channel_id text default null)
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.discord_set_announcements(service_role_discord_set_announcements.guild_id,
                                           service_role_discord_set_announcements.mode,
                                           service_role_discord_set_announcements.channel_id)
$$;
comment on function public.service_role_discord_set_announcements(text, text, text) is
  'Where a guild''s level-ups are announced: mode channel (channel_id required), current (the channel the XP '
  'was earned in; channel_id, when given, for XP earned elsewhere), dm or off. Returns the guild configuration. '
  'Errors: XPBAD. service_role only.';
revoke all on function public.service_role_discord_set_announcements(text, text, text) from public, anon, authenticated;
grant execute on function public.service_role_discord_set_announcements(text, text, text) to service_role;

create or replace function private.discord_set_no_xp(p_guild_id text, p_kind text, p_target_id text, p_no_xp boolean)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
begin
  perform private.discord_id('guild_id', p_guild_id);
  perform private.discord_id('target_id', p_target_id);
  if p_kind is null or p_kind not in ('channel', 'role') then
    raise exception 'kind must be channel or role, got %', coalesce(p_kind, 'null') using errcode = 'XPBAD';
  end if;
  if p_no_xp is null then
    raise exception 'no_xp must be true or false' using errcode = 'XPBAD';
  end if;
  perform private.discord_touch_guild(p_guild_id);
  if p_no_xp then
    insert into public.discord_no_xp_targets (guild_id, kind, target_id)
    values (p_guild_id, p_kind, p_target_id)
    on conflict do nothing;
  else
    delete from public.discord_no_xp_targets t
     where t.guild_id = p_guild_id and t.kind = p_kind and t.target_id = p_target_id;
  end if;
  return private.discord_guild_config(p_guild_id);
end
$$;
comment on function private.discord_set_no_xp(text, text, text, boolean) is 'Implementation of public.service_role_discord_set_no_xp.';
revoke all on function private.discord_set_no_xp(text, text, text, boolean) from public;
grant execute on function private.discord_set_no_xp(text, text, text, boolean) to service_role;

create or replace function public.service_role_discord_set_no_xp(guild_id text, kind text, target_id text, no_xp boolean)
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.discord_set_no_xp(service_role_discord_set_no_xp.guild_id, service_role_discord_set_no_xp.kind,
                                   service_role_discord_set_no_xp.target_id, service_role_discord_set_no_xp.no_xp)
$$;
comment on function public.service_role_discord_set_no_xp(text, text, text, boolean) is
  'Marks a channel or role of a guild as earning no passive XP (no_xp true) or clears the mark (false). '
  'Returns the guild configuration. Errors: XPBAD. service_role only.';
revoke all on function public.service_role_discord_set_no_xp(text, text, text, boolean) from public, anon, authenticated;
grant execute on function public.service_role_discord_set_no_xp(text, text, text, boolean) to service_role;

create or replace function private.discord_set_multiplier(p_guild_id text, p_kind text, p_target_id text, p_factor numeric)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
begin
  perform private.discord_id('guild_id', p_guild_id);
  perform private.discord_id('target_id', p_target_id);
  if p_kind is null or p_kind not in ('channel', 'role') then
    raise exception 'kind must be channel or role, got %', coalesce(p_kind, 'null') using errcode = 'XPBAD';
  end if;
  if p_factor is not null and (p_factor <= 0 or p_factor > 100 or p_factor <> round(p_factor, 3)) then
    raise exception 'factor must be above 0 and at most 100 with at most 3 decimals, got %', p_factor
      using errcode = 'XPBAD';
  end if;
  perform private.discord_touch_guild(p_guild_id);
  if p_factor is null then
    delete from public.multipliers m
     where m.discord_guild_id = p_guild_id and m.kind = p_kind and m.match_value = p_target_id;
  else
    insert into public.multipliers as m (kind, match_value, factor, description, discord_guild_id)
    values (p_kind, p_target_id, p_factor, 'Discord ' || p_kind || ' multiplier of guild ' || p_guild_id, p_guild_id)
    on conflict (discord_guild_id, kind, match_value) where discord_guild_id is not null
    do update set factor = excluded.factor;
  end if;
  return private.discord_guild_config(p_guild_id);
end
$$;
comment on function private.discord_set_multiplier(text, text, text, numeric) is 'Implementation of public.service_role_discord_set_multiplier.';
revoke all on function private.discord_set_multiplier(text, text, text, numeric) from public;
grant execute on function private.discord_set_multiplier(text, text, text, numeric) to service_role;

create or replace function public.service_role_discord_set_multiplier(guild_id text, kind text, target_id text, factor numeric)
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.discord_set_multiplier(service_role_discord_set_multiplier.guild_id,
                                        service_role_discord_set_multiplier.kind,
                                        service_role_discord_set_multiplier.target_id,
                                        service_role_discord_set_multiplier.factor)
$$;
comment on function public.service_role_discord_set_multiplier(text, text, text, numeric) is
  'Sets the XP multiplier (factor above 0, at most 100) of a Discord role or channel of a guild, a row of '
  'public.multipliers applying to every activity; factor null removes it. award_xp''s stacking rule applies '
  '(largest per kind, kinds multiply, capped). Returns the guild configuration. Errors: XPBAD. service_role only.';
revoke all on function public.service_role_discord_set_multiplier(text, text, text, numeric) from public, anon, authenticated;
grant execute on function public.service_role_discord_set_multiplier(text, text, text, numeric) to service_role;

create or replace function private.discord_set_role_reward(p_guild_id text, p_role_id text, p_min_level integer, p_tier text)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
begin
  perform private.discord_id('guild_id', p_guild_id);
  perform private.discord_id('role_id', p_role_id);
  if p_min_level is not null and p_tier is not null then
    raise exception 'A role reward is for a level or for a tier, not both' using errcode = 'XPBAD';
  end if;
  if p_min_level is not null and not exists (select 1 from public.level_curve c where c.level = p_min_level) then
    raise exception 'Level % is not on the level curve', p_min_level using errcode = 'XPLVL';
  end if;
  if p_tier is not null and not exists (select 1 from public.tiers t where t.slug = p_tier) then
    raise exception 'Unknown tier: %', p_tier using errcode = 'XPBAD';
  end if;
  perform private.discord_touch_guild(p_guild_id);
  if p_min_level is null and p_tier is null then
    delete from public.discord_role_rewards r where r.guild_id = p_guild_id and r.role_id = p_role_id;
  else
    insert into public.discord_role_rewards as r (guild_id, role_id, min_level, tier_slug)
    values (p_guild_id, p_role_id, p_min_level, p_tier)
    on conflict (guild_id, role_id) do update set min_level = excluded.min_level, tier_slug = excluded.tier_slug;
  end if;
  return private.discord_guild_config(p_guild_id);
end
$$;
comment on function private.discord_set_role_reward(text, text, integer, text) is 'Implementation of public.service_role_discord_set_role_reward.';
revoke all on function private.discord_set_role_reward(text, text, integer, text) from public;
grant execute on function private.discord_set_role_reward(text, text, integer, text) to service_role;

create or replace function public.service_role_discord_set_role_reward(
  guild_id text,
  role_id text,
  min_level integer default null,
  tier text default null
)
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.discord_set_role_reward(service_role_discord_set_role_reward.guild_id,
                                         service_role_discord_set_role_reward.role_id,
                                         service_role_discord_set_role_reward.min_level,
                                         service_role_discord_set_role_reward.tier)
$$;
comment on function public.service_role_discord_set_role_reward(text, text, integer, text) is
  'Makes a Discord role the reward for reaching a level (min_level) or a tier (tier slug); neither removes the '
  'reward. Returns the guild configuration. Errors: XPBAD (both given, unknown tier, malformed id), XPLVL '
  '(level not on the curve). service_role only.';
revoke all on function public.service_role_discord_set_role_reward(text, text, integer, text) from public, anon, authenticated;
grant execute on function public.service_role_discord_set_role_reward(text, text, integer, text) to service_role;
