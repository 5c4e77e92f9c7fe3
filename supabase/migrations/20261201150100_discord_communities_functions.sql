-- discord_communities_functions
--
-- Written by `xpbase migration new` from the feature files in supabase/sql/:
-- the function and trigger definitions that changed since the last migration.
-- Edit the feature files, not this file; landed migrations never change.
-- Changed:
--   function private.tg_notifications__in_app()
--   function private.discord_award(text, text, text, text, text, timestamptz, text, text[])
--   function private.discord_notifications(int8, int4)
--   function private.import_target_xp(text, int8, int4, numeric)
--   function private.import_members(text, text, text, jsonb, bool)
--   function public.admin_import_members(text, text, text, jsonb, bool)
--   function private.import_role_rewards(text, jsonb, bool)
--   function public.admin_import_role_rewards(text, jsonb, bool)
--   function private.discord_take_role_resyncs()
--   function public.service_role_discord_take_role_resyncs()
--   function private.discord_see_members(text, jsonb)
--   function public.service_role_discord_see_members(text, jsonb)
--   function private.discord_forget_member(text, text)
--   function public.service_role_discord_forget_member(text, text)
--   function public.guild_leaderboard(text, int4, int4)
--   function private.discord_guild_rank(text, text)
--   function public.service_role_discord_guild_rank(text, text)
--   function private.member_export(uuid)
--   function public.my_export()
--   function private.erase_profile(uuid)
--   function public.erase_me()
--   function public.admin_erase_profile(uuid)
--   function private.set_rank_card(uuid, text, text)
--   function private.discord_set_rank_card(text, text, text)
--   function public.service_role_discord_set_rank_card(text, text, text)
--   function private.discord_rank_card(text)
--   function public.service_role_discord_rank_card(text)

-- from supabase/sql/77_outbox.sql -------------------------------------------

create or replace function private.tg_notifications__in_app()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  -- An import (92_imports.sql) sets xpbase.importing for its transaction: a level reached by moving in from
  -- another bot is not news (no notification, hence no DM, push or email to every member of a server).
  if current_setting('xpbase.importing', true) = 'on' then
    return null;
  end if;
  if not 'in_app' = any (private.routed_channels(new.profile_id, new.kind)) then
    new.read_at := coalesce(new.read_at, new.created_at);
  end if;
  return new;
end
$$;

comment on function private.tg_notifications__in_app() is
  'A notification of a kind the member routed away from in_app is stored already read (it stays the record '
  'that deliveries point to, but never counts as unread). None is stored while an import runs '
  '(xpbase.importing = on, set by private.import_members for its transaction).';

revoke all on function private.tg_notifications__in_app() from public;

-- from supabase/sql/91_discord_members.sql ----------------------------------

-- The Discord bot, member side: passive XP, a member's profile and seasons, reward-role plans,
-- notifications to announce and guild statistics.
--
-- Tables: none of its own (reads the guild tables and the engine's).
-- Tests: tests/sql/test_discord_members.py

-- Passive XP -------------------------------------------------------------------
create or replace function private.discord_award(
  p_guild_id text,
  p_user_id text,
  p_display_name text,
  p_activity text,
  p_idempotency_key text,
  p_occurred_at timestamptz,
  p_channel_id text,
  p_role_ids text[]
)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_roles text[] := coalesce(p_role_ids, '{}');
  v_role text;
  v_skip text;
  v_profile_id uuid;
begin
  perform private.discord_id('guild_id', p_guild_id);
  perform private.discord_id('user_id', p_user_id);
  if p_channel_id is not null then
    perform private.discord_id('channel_id', p_channel_id);
  end if;
  if cardinality(v_roles) > 250 then
    raise exception 'at most 250 role ids' using errcode = 'XPBAD';
  end if;
  foreach v_role in array v_roles loop
    perform private.discord_id('role_ids[]', v_role);
  end loop;

  select case
           when exists (select 1 from public.discord_no_xp_targets t
                         where t.guild_id = p_guild_id and t.kind = 'channel' and t.target_id = p_channel_id)
             then 'no_xp_channel'
           when exists (select 1 from public.discord_no_xp_targets t
                         where t.guild_id = p_guild_id and t.kind = 'role' and t.target_id = any (v_roles))
             then 'no_xp_role'
         end
    into v_skip;
  if v_skip is not null then
    return jsonb_build_object('granted', 0, 'skipped', v_skip, 'activity', p_activity,
                              'idempotency_key', p_idempotency_key, 'profile_id', null, 'replayed', false);
  end if;

  v_profile_id := private.ensure_profile('discord', p_user_id, p_display_name);
  -- The member is seen in this server (per-server boards, 93_guild_boards.sql).
  insert into public.discord_guild_members as m (guild_id, profile_id) values (p_guild_id, v_profile_id)
  on conflict (guild_id, profile_id) do update set last_seen_at = excluded.last_seen_at;
  return private.award_xp(
    v_profile_id, p_activity, p_idempotency_key, null, p_occurred_at,
    jsonb_build_object('guild_id', p_guild_id, 'channel_id', p_channel_id, 'role_ids', to_jsonb(v_roles))
  ) || jsonb_build_object('skipped', null);
end
$$;

comment on function private.discord_award(text, text, text, text, text, timestamptz, text, text[]) is
  'Implementation of public.service_role_discord_award.';

revoke all on function private.discord_award(text, text, text, text, text, timestamptz, text, text[]) from public;

grant execute on function private.discord_award(text, text, text, text, text, timestamptz, text, text[]) to service_role;

-- Notifications to announce, and statistics ------------------------------------
create or replace function private.discord_notifications(p_after_id bigint, p_max_rows integer)
returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_cursor bigint;
  v_found jsonb;
begin
  if p_max_rows is null or p_max_rows not between 1 and 1000 then
    raise exception 'max_rows must be 1 to 1000' using errcode = 'XPBAD';
  end if;
  if p_after_id is null then
    return jsonb_build_object('cursor', coalesce((select max(n.id) from public.notifications n), 0),
                              'notifications', '[]'::jsonb);
  end if;
  -- A window of the next notifications of any kind; the cursor moves past all of them.
  with window_rows as (
    select n.* from public.notifications n where n.id > p_after_id order by n.id limit p_max_rows
  )
  select max(w.id),
         coalesce(jsonb_agg(jsonb_build_object(
                    'id', w.id, 'kind', w.kind, 'profile_id', w.profile_id, 'user_id', i.subject,
                    'title', w.title, 'body', w.body, 'data', w.data, 'created_at', w.created_at,
                    'idempotency_key', l.idempotency_key)
                  order by w.id) filter (where i.subject is not null and w.kind in ('level_up', 'tier_up')
                          and l.activity_slug is distinct from 'import'), '[]')
    into v_cursor, v_found
    from window_rows w
    left join public.identities i on i.profile_id = w.profile_id and i.provider = 'discord'
    left join public.xp_ledger l on l.id = (w.data ->> 'ledger_id')::bigint;
  return jsonb_build_object('cursor', coalesce(v_cursor, p_after_id), 'notifications', v_found);
end
$$;

comment on function private.discord_notifications(bigint, integer) is 'Implementation of public.service_role_discord_notifications.';

revoke all on function private.discord_notifications(bigint, integer) from public;

grant execute on function private.discord_notifications(bigint, integer) to service_role;

-- from supabase/sql/92_imports.sql ------------------------------------------

-- Importers: members moved in from another Discord leveling bot (MEE6, Amari, Polaris, LevelUp, a CSV)
-- as ledger rows of the `import` activity, one idempotency key per source, server and member (a second
-- run changes nothing), profiles made for members not seen yet, the server membership recorded, role
-- rewards copied into the server's configuration and a role resync queued for the bot.
-- Python (xpbase/importers.py) reads each bot's file format and hands batches of members here; which
-- XP a member gets (--keep xp or --keep level on xpbase's curve) is decided here.
--
-- Tables: none of its own (writes public.xp_ledger through the award path, public.discord_guild_members,
-- public.discord_role_rewards, public.discord_role_resyncs).
-- Tests: tests/sql/test_imports.py
create or replace function private.import_target_xp(p_keep text, p_xp bigint, p_level integer, p_progress numeric)
returns bigint
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_level integer := greatest(coalesce(p_level, 1), 1);
  v_floor bigint;
  v_next bigint;
begin
  if p_keep = 'xp' then
    return p_xp;
  end if;
  v_floor := public.xp_for_level(v_level);
  if v_floor is null then
    return null;
  end if;
  v_next := public.xp_for_level(v_level + 1);
  if v_next is null or p_progress is null then
    return v_floor;
  end if;
  return v_floor + floor((v_next - v_floor) * least(greatest(p_progress, 0), 0.999999))::bigint;
end
$$;

comment on function private.import_target_xp(text, bigint, integer, numeric) is
  'The XP an imported member gets: p_xp unchanged for keep = xp; for keep = level, the start of p_level on '
  'xpbase''s curve (level 0 of bots that start at 0 counts as 1) plus p_progress (0 to 1, the fraction of the '
  'way to the next level) of that level''s span. Null when the level is not on the curve.';

revoke all on function private.import_target_xp(text, bigint, integer, numeric) from public;

create or replace function private.import_members(
  p_source text,
  p_guild_id text,
  p_keep text,
  p_members jsonb,
  p_dry_run boolean
)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_actor record;
  v_layer text;
  v_member jsonb;
  v_user_id text;
  v_name text;
  v_xp bigint;
  v_level integer;
  v_progress numeric;
  v_target bigint;
  v_key text;
  v_request jsonb;
  v_first jsonb;
  v_profile_id uuid;
  v_current record;
  v_receipt jsonb;
  v_rows jsonb[] := '{}';  -- an expanded array: appending is in place (a jsonb || would copy every time)
  v_status text;
  v_reason text;
  v_new_level integer;
  v_counts jsonb;
  v_parts jsonb;
  v_layer_sum numeric;
begin
  select * into v_actor from private.assert_admin();
  if p_source is null or p_source not in ('mee6', 'amari', 'polaris', 'levelup', 'csv') then
    raise exception 'source must be mee6, amari, polaris, levelup or csv, got %', coalesce(p_source, 'null')
      using errcode = 'XPBAD';
  end if;
  perform private.discord_id('guild_id', p_guild_id);
  if p_keep is null or p_keep not in ('xp', 'level') then
    raise exception 'keep must be xp or level, got %', coalesce(p_keep, 'null') using errcode = 'XPBAD';
  end if;
  if p_members is null or jsonb_typeof(p_members) <> 'array'
     or jsonb_array_length(p_members) not between 1 and 1000 then
    raise exception 'members must be an array of 1 to 1000 members' using errcode = 'XPBAD';
  end if;
  -- Levels reached by import are not announced: no notification (77_outbox.sql), no DM to every member.
  perform set_config('xpbase.importing', 'on', true);
  v_layer := coalesce((select a.layer_slug from public.activity_types a where a.slug = 'import'), '');
  if v_layer = '' then
    raise exception 'The import activity is missing (seed.sql)' using errcode = 'XPCFG';
  end if;

  for v_member in select * from jsonb_array_elements(p_members) loop
    v_status := null;
    v_reason := null;
    v_user_id := v_member ->> 'user_id';
    v_name := left(nullif(btrim(coalesce(v_member ->> 'display_name', '')), ''), 64);
    if jsonb_typeof(v_member) <> 'object' or v_user_id is null or v_user_id !~ '^[0-9]{1,20}$' then
      raise exception 'members[].user_id must be a Discord id (1 to 20 digits), got %', coalesce(v_user_id, 'null')
        using errcode = 'XPBAD';
    end if;
    if jsonb_typeof(v_member -> 'xp') is distinct from 'number' or (v_member ->> 'xp')::numeric < 0
       or (v_member ->> 'xp')::numeric <> floor((v_member ->> 'xp')::numeric) then
      raise exception 'members[].xp of % must be a whole number of XP, 0 or more', v_user_id using errcode = 'XPBAD';
    end if;
    if jsonb_typeof(v_member -> 'level') is distinct from 'number' or (v_member ->> 'level')::numeric < 0
       or (v_member ->> 'level')::numeric > 100000 then
      raise exception 'members[].level of % must be 0 to 100000', v_user_id using errcode = 'XPBAD';
    end if;
    if v_member ? 'progress' and jsonb_typeof(v_member -> 'progress') <> 'null'
       and (jsonb_typeof(v_member -> 'progress') <> 'number'
            or (v_member ->> 'progress')::numeric not between 0 and 1) then
      raise exception 'members[].progress of % must be 0 to 1', v_user_id using errcode = 'XPBAD';
    end if;
    v_parts := null;
    if jsonb_typeof(v_member -> 'layers') = 'object' then
      -- An xpbase export moved back in: XP per layer, which must add up to xp (keep xp only).
      if p_keep <> 'xp' then
        raise exception 'members[].layers of % needs keep = xp', v_user_id using errcode = 'XPBAD';
      end if;
      if exists (select 1 from jsonb_each(v_member -> 'layers') e
                  where jsonb_typeof(e.value) <> 'number' or (e.value #>> '{}') !~ '^[0-9]{1,12}$'
                     or not exists (select 1 from public.layers l where l.slug = e.key)) then
        raise exception 'members[].layers of % must map known layers to whole XP', v_user_id using errcode = 'XPBAD';
      end if;
      select jsonb_agg(jsonb_build_object('layer', e.key, 'amount', (e.value #>> '{}')::bigint) order by e.key)
               filter (where (e.value #>> '{}')::bigint > 0),
             coalesce(sum((e.value #>> '{}')::bigint), 0)
        into v_parts, v_layer_sum
        from jsonb_each(v_member -> 'layers') e;
      if v_layer_sum <> (v_member ->> 'xp')::numeric then
        raise exception 'members[].layers of % add up to %, not xp', v_user_id, v_layer_sum using errcode = 'XPBAD';
      end if;
    end if;
    v_xp := (v_member ->> 'xp')::numeric;
    v_level := (v_member ->> 'level')::numeric;
    v_progress := (v_member ->> 'progress')::numeric;
    v_target := private.import_target_xp(p_keep, v_xp, v_level, v_progress);
    if v_target is null then
      v_status := 'rejected';
      v_reason := 'level ' || v_level || ' is not on the level curve';
    elsif v_target > 2147483647 then
      v_status := 'rejected';
      v_reason := 'more than 2147483647 XP';
    end if;

    v_key := 'import:' || p_source || ':' || p_guild_id || ':' || v_user_id;
    v_request := jsonb_build_object('source', p_source, 'guild_id', p_guild_id, 'user_id', v_user_id,
                                    'keep', p_keep, 'xp', v_target);
    if v_parts is not null then
      v_request := v_request || jsonb_build_object('layers', v_parts);
    end if;
    select i.profile_id into v_profile_id from public.identities i
     where i.provider = 'discord' and i.subject = v_user_id;
    select p.xp, p.level into v_current from public.profiles p where p.id = v_profile_id;
    if v_status is null then
      select l.request into v_first from public.xp_ledger l where l.idempotency_key = v_key limit 1;
      if found then
        v_status := case when v_first = v_request then 'unchanged' else 'conflict' end;
        if v_status = 'conflict' then
          v_reason := 'imported before with ' || (v_first ->> 'xp') || ' XP (keep ' || (v_first ->> 'keep') || ')';
        end if;
      end if;
    end if;
    v_new_level := public.level_for_xp(coalesce(v_current.xp, 0) + coalesce(v_target, 0));

    if v_status is null and not p_dry_run then
      v_profile_id := coalesce(v_profile_id, private.ensure_profile('discord', v_user_id, coalesce(v_name, 'Discord member')));
      perform 1 from public.profiles p where p.id = v_profile_id for update;
      perform pg_advisory_xact_lock(hashtextextended('xp_ledger:' || v_key, 0));
      if exists (select 1 from public.xp_ledger l where l.idempotency_key = v_key) then
        v_status := 'unchanged';
      elsif v_target = 0 then
        v_status := 'zero';
      else
        v_receipt := private.apply_xp(
          v_profile_id, 'import',
          coalesce(v_parts, jsonb_build_array(jsonb_build_object('layer', v_layer, 'amount', v_target))),
          now(), v_key, v_actor.actor_id, v_actor.actor_role, 'import from ' || p_source, v_request,
          jsonb_build_object('correction', 'import', 'requested', v_target, 'base', v_target, 'multiplier', 1,
                             'multipliers', '[]'::jsonb, 'cooldown', false, 'cooldown_remaining_seconds', 0,
                             'capped', false, 'cap', null, 'floored', false, 'source', p_source,
                             'guild_id', p_guild_id, 'keep', p_keep,
                             'actor_id', v_actor.actor_id, 'actor_role', v_actor.actor_role));
        v_new_level := (v_receipt ->> 'level')::integer;
        v_status := 'imported';
      end if;
    elsif v_status is null then
      v_status := case when v_target = 0 then 'zero' else 'imported' end;
    end if;
    if not p_dry_run and v_profile_id is not null and v_status <> 'rejected' then
      insert into public.discord_guild_members (guild_id, profile_id) values (p_guild_id, v_profile_id)
      on conflict (guild_id, profile_id) do nothing;
    end if;

    v_rows := array_append(v_rows, jsonb_build_object(
      'user_id', v_user_id, 'status', v_status, 'reason', v_reason, 'new_profile', v_current.xp is null,
      'xp_before', coalesce(v_current.xp, 0), 'level_before', coalesce(v_current.level, 1),
      'xp_granted', case when v_status in ('imported', 'zero') then v_target else 0 end,
      'level', case when v_status = 'imported' then v_new_level else coalesce(v_current.level, 1) end));
  end loop;

  if not p_dry_run and exists (select 1 from unnest(v_rows) r where r ->> 'status' = 'imported') then
    insert into public.discord_role_resyncs (guild_id) values (p_guild_id)
    on conflict (guild_id) do update set requested_at = excluded.requested_at;
  end if;
  perform set_config('xpbase.importing', 'off', true);
  select jsonb_object_agg(s.status, s.n) into v_counts
    from (select r ->> 'status' as status, count(*) as n from unnest(v_rows) r group by 1) s;
  return jsonb_build_object('source', p_source, 'guild_id', p_guild_id, 'keep', p_keep, 'dry_run', p_dry_run,
                            'counts', coalesce(v_counts, '{}'::jsonb), 'members', to_jsonb(v_rows));
end
$$;

comment on function private.import_members(text, text, text, jsonb, boolean) is
  'Implementation of public.admin_import_members.';

revoke all on function private.import_members(text, text, text, jsonb, boolean) from public;

grant execute on function private.import_members(text, text, text, jsonb, boolean) to service_role, authenticated;

create or replace function public.admin_import_members(
  source text,
  guild_id text,
  keep text,
  members jsonb,
  dry_run boolean default false
)
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.import_members(source, guild_id, keep, members, coalesce(dry_run, false))
$$;

comment on function public.admin_import_members(text, text, text, jsonb, boolean) is
  'Imports one batch of members of a Discord server from another bot. source: mee6|amari|polaris|levelup|csv; '
  'guild_id: the server (Discord id); keep: xp (the number of XP is kept) or level (the same level and progress '
  'on xpbase''s curve); members: 1 to 1000 objects {user_id (Discord id), display_name?, xp (whole XP >= 0), '
  'level (0-100000, the source bot''s level), progress? (0-1 of the way to the next level), layers? ({layer: '
  'XP} adding up to xp, keep xp only: an xpbase export moved back in)}. Each member is one ledger row of '
  'activity import (in the activity''s layer, or one per layer given; no points) keyed '
  'import:<source>:<guild>:<user>: a '
  'second run answers unchanged, the same key with other figures answers conflict (nothing written). '
  'Profiles are made for members not seen yet, membership of the server recorded, a role resync queued. '
  'dry_run: the same answer, nothing written. Returns {source, guild_id, keep, dry_run, counts {status: n}, '
  'members [{user_id, status imported|unchanged|zero|conflict|rejected, reason, new_profile, xp_before, '
  'level_before, xp_granted, level}]}. Admins and service_role. Errors: XPBAD (a malformed member: the whole '
  'batch is refused), XPCFG, 42501 (not an admin).';

revoke all on function public.admin_import_members(text, text, text, jsonb, boolean) from public;

grant execute on function public.admin_import_members(text, text, text, jsonb, boolean) to authenticated, service_role;

create or replace function private.import_role_rewards(p_guild_id text, p_rewards jsonb, p_dry_run boolean)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_reward jsonb;
  v_rows jsonb := '[]';
  v_exists boolean;
begin
  perform private.assert_admin();
  perform private.discord_id('guild_id', p_guild_id);
  if p_rewards is null or jsonb_typeof(p_rewards) <> 'array' or jsonb_array_length(p_rewards) > 250 then
    raise exception 'rewards must be an array of at most 250 role rewards' using errcode = 'XPBAD';
  end if;
  for v_reward in select * from jsonb_array_elements(p_rewards) loop
    perform private.discord_id('rewards[].role_id', v_reward ->> 'role_id');
    if jsonb_typeof(v_reward -> 'min_level') is distinct from 'number'
       or (v_reward ->> 'min_level')::numeric not between 1 and 100000 then
      raise exception 'rewards[].min_level must be 1 to 100000' using errcode = 'XPBAD';
    end if;
    v_exists := exists (select 1 from public.discord_role_rewards r
                         where r.guild_id = p_guild_id and r.role_id = v_reward ->> 'role_id');
    if not p_dry_run and not v_exists then
      perform private.discord_set_role_reward(p_guild_id, v_reward ->> 'role_id',
                                              (v_reward ->> 'min_level')::integer, null);
    end if;
    v_rows := v_rows || jsonb_build_object('role_id', v_reward ->> 'role_id',
                                           'min_level', (v_reward ->> 'min_level')::integer,
                                           'status', case when v_exists then 'kept' else 'added' end);
  end loop;
  if not p_dry_run and jsonb_array_length(v_rows) > 0 then
    insert into public.discord_role_resyncs (guild_id) values (p_guild_id)
    on conflict (guild_id) do update set requested_at = excluded.requested_at;
  end if;
  return jsonb_build_object('guild_id', p_guild_id, 'dry_run', p_dry_run, 'rewards', v_rows);
end
$$;

comment on function private.import_role_rewards(text, jsonb, boolean) is
  'Implementation of public.admin_import_role_rewards.';

revoke all on function private.import_role_rewards(text, jsonb, boolean) from public;

grant execute on function private.import_role_rewards(text, jsonb, boolean) to service_role, authenticated;

create or replace function public.admin_import_role_rewards(guild_id text, rewards jsonb, dry_run boolean default false)
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.import_role_rewards(guild_id, rewards, coalesce(dry_run, false))
$$;

comment on function public.admin_import_role_rewards(text, jsonb, boolean) is
  'Copies another bot''s level roles into the server''s role rewards: rewards is at most 250 objects '
  '{role_id (Discord id), min_level (1-100000, on xpbase''s curve)}. A role that already has a reward is kept '
  'as configured; a role resync is queued. Returns {guild_id, dry_run, rewards [{role_id, min_level, status '
  'added|kept}]}. Admins and service_role. Errors: XPBAD, XPLVL, 42501.';

revoke all on function public.admin_import_role_rewards(text, jsonb, boolean) from public;

grant execute on function public.admin_import_role_rewards(text, jsonb, boolean) to authenticated, service_role;

create or replace function private.discord_take_role_resyncs()
returns jsonb
language sql
volatile
security definer
set search_path = ''
as $$
  with taken as (delete from public.discord_role_resyncs returning guild_id, requested_at)
  select jsonb_build_object('resyncs', coalesce(jsonb_agg(jsonb_build_object('guild_id', t.guild_id,
                                                                          'requested_at', t.requested_at)
                                                       order by t.requested_at), '[]'::jsonb))
    from taken t
$$;

comment on function private.discord_take_role_resyncs() is
  'Implementation of public.service_role_discord_take_role_resyncs.';

revoke all on function private.discord_take_role_resyncs() from public;

grant execute on function private.discord_take_role_resyncs() to service_role;

create or replace function public.service_role_discord_take_role_resyncs()
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.discord_take_role_resyncs()
$$;

comment on function public.service_role_discord_take_role_resyncs() is
  'Takes (removes and returns) the servers whose reward roles must be resynced after an import: '
  '{resyncs: [{guild_id, requested_at}]}, oldest first. The bot resyncs each server it is in. service_role only.';

revoke all on function public.service_role_discord_take_role_resyncs() from public;

grant execute on function public.service_role_discord_take_role_resyncs() to service_role;

-- from supabase/sql/93_guild_boards.sql -------------------------------------

-- Per-server boards: which members belong to which Discord server (recorded as the bot sees them),
-- and the all-time leaderboard and rank among one server's members (XP stays one total per community;
-- the server only filters the board). Members who hide themselves are left out, as on every board.
--
-- Tables: public.discord_guild_members.
-- Tests: tests/sql/test_guild_boards.py
create or replace function private.discord_see_members(p_guild_id text, p_members jsonb)
returns integer
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_member jsonb;
  v_profile_id uuid;
  v_seen integer := 0;
begin
  perform private.discord_id('guild_id', p_guild_id);
  if p_members is null or jsonb_typeof(p_members) <> 'array' or jsonb_array_length(p_members) > 1000 then
    raise exception 'members must be an array of at most 1000 members' using errcode = 'XPBAD';
  end if;
  for v_member in select * from jsonb_array_elements(p_members) loop
    perform private.discord_id('members[].user_id', v_member ->> 'user_id');
    v_profile_id := private.ensure_profile('discord', v_member ->> 'user_id',
                                           coalesce(v_member ->> 'display_name', 'Discord member'));
    insert into public.discord_guild_members as m (guild_id, profile_id) values (p_guild_id, v_profile_id)
    on conflict (guild_id, profile_id) do update set last_seen_at = now();
    v_seen := v_seen + 1;
  end loop;
  return v_seen;
end
$$;

comment on function private.discord_see_members(text, jsonb) is
  'Implementation of public.service_role_discord_see_members.';

revoke all on function private.discord_see_members(text, jsonb) from public;

grant execute on function private.discord_see_members(text, jsonb) to service_role;

create or replace function public.service_role_discord_see_members(guild_id text, members jsonb)
returns integer
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.discord_see_members(guild_id, members)
$$;

comment on function public.service_role_discord_see_members(text, jsonb) is
  'Records that members belong to a Discord server (the bot calls it on joins and with the member list when '
  'it becomes ready): members is at most 1000 objects {user_id (Discord id), display_name}; profiles are made '
  'for members not seen yet. Returns how many were recorded. service_role only. Errors: XPBAD.';

revoke all on function public.service_role_discord_see_members(text, jsonb) from public;

grant execute on function public.service_role_discord_see_members(text, jsonb) to service_role;

create or replace function private.discord_forget_member(p_guild_id text, p_user_id text)
returns boolean
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_gone integer;
begin
  perform private.discord_id('guild_id', p_guild_id);
  perform private.discord_id('user_id', p_user_id);
  delete from public.discord_guild_members m
   using public.identities i
   where i.provider = 'discord' and i.subject = p_user_id and m.profile_id = i.profile_id
     and m.guild_id = p_guild_id;
  get diagnostics v_gone = row_count;
  return v_gone > 0;
end
$$;

comment on function private.discord_forget_member(text, text) is
  'Implementation of public.service_role_discord_forget_member.';

revoke all on function private.discord_forget_member(text, text) from public;

grant execute on function private.discord_forget_member(text, text) to service_role;

create or replace function public.service_role_discord_forget_member(guild_id text, user_id text)
returns boolean
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.discord_forget_member(guild_id, user_id)
$$;

comment on function public.service_role_discord_forget_member(text, text) is
  'A member left a Discord server: they leave its board (their XP stays). Returns whether they were a member. '
  'service_role only. Errors: XPBAD.';

revoke all on function public.service_role_discord_forget_member(text, text) from public;

grant execute on function public.service_role_discord_forget_member(text, text) to service_role;

create or replace function public.guild_leaderboard(guild_id text, page_size integer default 50, page integer default 1)
returns setof public.leaderboard_entry
language plpgsql
stable
security invoker
set search_path = ''
as $$
declare
  v_uid uuid := (select auth.uid());
begin
  if guild_id is null or guild_id !~ '^[0-9]{1,20}$' then
    raise exception 'guild_id must be a Discord id (1 to 20 digits), got %', coalesce(guild_id, 'null')
      using errcode = 'XPBAD';
  end if;
  if page_size is null or page_size not between 1 and 100 then
    raise exception 'page_size must be 1 to 100' using errcode = 'XPBAD';
  end if;
  if page is null or page not between 1 and 1000000 then
    raise exception 'page must be 1 or more' using errcode = 'XPBAD';
  end if;
  -- As the caller: RLS shows the memberships and board rows of visible members (and the caller's own).
  return query
    select rank() over (order by e.xp desc), e.profile_id, e.display_name, e.avatar_url, e.xp, e.level, e.tier
      from public.discord_guild_members m
      join public.leaderboard_entries e
        on e.board = 'all_time' and e.layer_slug = '' and e.season_id = 0 and e.profile_id = m.profile_id
     where m.guild_id = guild_leaderboard.guild_id and (e.visible or e.profile_id = v_uid)
     order by e.xp desc, e.reached_at, e.profile_id
    offset (page - 1) * page_size limit page_size;
end
$$;

comment on function public.guild_leaderboard(text, integer, integer) is
  'One page of a Discord server''s all-time board: rows (rank, profile_id, display_name, avatar_url, xp, level, '
  'tier) of the server''s members who show themselves (and the caller), best first; equal XP shares a rank, '
  'whoever reached it first comes first. page_size 1-100, page from 1. Anyone may read it (like every board). '
  'Errors: XPBAD.';

revoke all on function public.guild_leaderboard(text, integer, integer) from public;

grant execute on function public.guild_leaderboard(text, integer, integer) to anon, authenticated, service_role;

create or replace function private.discord_guild_rank(p_guild_id text, p_user_id text)
returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_profile record;
  v_member boolean;
  v_rank bigint;
  v_total bigint;
begin
  perform private.discord_id('guild_id', p_guild_id);
  perform private.discord_id('user_id', p_user_id);
  select p.id, p.xp, p.level, p.tier, p.leaderboard_visible into v_profile
    from public.identities i join public.profiles p on p.id = i.profile_id
   where i.provider = 'discord' and i.subject = p_user_id;
  if not found then
    raise exception 'No profile for Discord user %', p_user_id using errcode = 'XPPRF';
  end if;
  v_member := exists (select 1 from public.discord_guild_members m
                       where m.guild_id = p_guild_id and m.profile_id = v_profile.id);
  select count(*) into v_total
    from public.discord_guild_members m join public.profiles p on p.id = m.profile_id
   where m.guild_id = p_guild_id and p.leaderboard_visible;
  if v_member and v_profile.leaderboard_visible then
    select 1 + count(*) into v_rank
      from public.discord_guild_members m join public.profiles p on p.id = m.profile_id
     where m.guild_id = p_guild_id and p.leaderboard_visible and p.xp > v_profile.xp;
  end if;
  return jsonb_build_object('guild_id', p_guild_id, 'user_id', p_user_id, 'profile_id', v_profile.id,
                            'member', v_member, 'rank', v_rank, 'total', v_total, 'xp', v_profile.xp,
                            'level', v_profile.level, 'tier', v_profile.tier);
end
$$;

comment on function private.discord_guild_rank(text, text) is 'Implementation of public.service_role_discord_guild_rank.';

revoke all on function private.discord_guild_rank(text, text) from public;

grant execute on function private.discord_guild_rank(text, text) to service_role;

create or replace function public.service_role_discord_guild_rank(guild_id text, user_id text)
returns jsonb
language sql
stable
security invoker
set search_path = ''
as $$
  select private.discord_guild_rank(guild_id, user_id)
$$;

comment on function public.service_role_discord_guild_rank(text, text) is
  'A Discord user''s place among one server''s members: {guild_id, user_id, profile_id, member, rank, total, '
  'xp, level, tier}. rank = 1 + the visible members with more XP; null when the user is not a recorded member '
  'or hides themselves; total counts the visible members. service_role only. Errors: XPBAD, XPPRF.';

revoke all on function public.service_role_discord_guild_rank(text, text) from public;

grant execute on function public.service_role_discord_guild_rank(text, text) to service_role;

-- from supabase/sql/94_member_data.sql --------------------------------------

-- A member's data out and erased: the export of everything held about a profile (its own copy, GET
-- /v1/me/export), and erasure (DELETE /v1/me, or an admin's): the profile is anonymised, identities,
-- sessions, devices, preferences, link codes and notifications are removed, chat messages lose their
-- words and author, while the append-only ledger keeps its rows against the anonymous profile so every
-- total (profile, layers, seasons, points) still adds up.
--
-- Tables: public.profile_erasures.
-- Tests: tests/sql/test_member_data.py
create or replace function private.member_export(p_profile_id uuid)
returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_profile jsonb;
begin
  -- Callers: the member themselves, an admin, or the backend.
  if (select auth.role()) is distinct from 'service_role' and (select auth.uid()) is distinct from p_profile_id then
    perform private.assert_admin();
  end if;
  select to_jsonb(p) into v_profile from public.profiles p where p.id = p_profile_id;
  if v_profile is null then
    raise exception 'Unknown profile: %', p_profile_id using errcode = 'XPPRF';
  end if;
  return jsonb_build_object(
    'exported_at', private.utc_text(now()),
    'profile', v_profile,
    'erased_at', (select private.utc_text(e.erased_at) from public.profile_erasures e where e.profile_id = p_profile_id),
    'identities', coalesce((select jsonb_agg(jsonb_build_object('provider', i.provider, 'subject', i.subject,
                                                                 'created_at', private.utc_text(i.created_at))
                                             order by i.id)
                              from public.identities i where i.profile_id = p_profile_id), '[]'::jsonb),
    'layers', coalesce((select jsonb_agg(jsonb_build_object('layer', pl.layer_slug, 'xp', pl.xp, 'status', pl.status)
                                         order by pl.layer_slug)
                          from public.profile_layers pl where pl.profile_id = p_profile_id), '[]'::jsonb),
    'seasons', coalesce((select jsonb_agg(jsonb_build_object('season_id', s.season_id, 'xp', s.xp) order by s.season_id)
                           from public.season_scores s where s.profile_id = p_profile_id), '[]'::jsonb),
    'servers', coalesce((select jsonb_agg(m.guild_id order by m.guild_id)
                           from public.discord_guild_members m where m.profile_id = p_profile_id), '[]'::jsonb),
    'ledger', coalesce((select jsonb_agg(jsonb_build_object(
                                  'id', l.id, 'activity', l.activity_slug, 'layer', l.layer_slug,
                                  'season_id', l.season_id, 'amount', l.amount, 'season_amount', l.season_amount,
                                  'points', l.points, 'occurred_at', private.utc_text(l.occurred_at),
                                  'idempotency_key', l.idempotency_key, 'reason', l.reason) order by l.id)
                          from public.xp_ledger l where l.profile_id = p_profile_id), '[]'::jsonb),
    'chat_messages', coalesce((select jsonb_agg(jsonb_build_object('id', c.id, 'body', c.body,
                                                                    'created_at', private.utc_text(c.created_at))
                                                order by c.id)
                                 from public.chat_messages c where c.profile_id = p_profile_id), '[]'::jsonb));
end
$$;

comment on function private.member_export(uuid) is 'Implementation of public.my_export.';

revoke all on function private.member_export(uuid) from public;

grant execute on function private.member_export(uuid) to authenticated;

create or replace function public.my_export()
returns jsonb
language plpgsql
stable
security invoker
set search_path = ''
as $$
begin
  if (select auth.uid()) is null then
    raise exception 'Sign in to export your data' using errcode = '42501';
  end if;
  return private.member_export((select auth.uid()));
end
$$;

comment on function public.my_export() is
  'Everything held about the caller: {exported_at, profile (every column), erased_at, identities [{provider, '
  'subject, created_at}], layers [{layer, xp, status}], seasons [{season_id, xp}], servers [Discord ids], '
  'ledger [{id, activity, layer, season_id, amount, season_amount, points, occurred_at, idempotency_key, '
  'reason}], chat_messages [{id, body, created_at}]}; times are UTC ISO 8601, amounts XP. Errors: 42501, XPPRF.';

revoke all on function public.my_export() from public;

grant execute on function public.my_export() to authenticated;

create or replace function private.erase_profile(p_profile_id uuid)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_removed jsonb := '{}';
  v_n integer;
  v_requested_by text;
begin
  if p_profile_id is null then
    raise exception 'profile_id is required' using errcode = 'XPBAD';
  end if;
  -- Callers: the member themselves, an admin, or the backend.
  if (select auth.role()) = 'service_role' then
    v_requested_by := 'service';
  elsif (select auth.uid()) = p_profile_id then
    v_requested_by := 'member';
  else
    perform private.assert_admin();
    v_requested_by := 'admin';
  end if;
  perform 1 from public.profiles p where p.id = p_profile_id for update;
  if not found then
    raise exception 'Unknown profile: %', p_profile_id using errcode = 'XPPRF';
  end if;
  if exists (select 1 from public.profile_erasures e where e.profile_id = p_profile_id) then
    return jsonb_build_object('profile_id', p_profile_id, 'erased', false, 'removed', v_removed);
  end if;

  update public.profiles p
     set display_name = 'Deleted member', bio = '', avatar_url = null, social_links = '{}',
         time_zone = 'UTC', leaderboard_visible = false, role = 'member', updated_at = now()
   where p.id = p_profile_id;
  delete from public.identities i where i.profile_id = p_profile_id;
  get diagnostics v_n = row_count;
  v_removed := v_removed || jsonb_build_object('identities', v_n);
  delete from private.auth_sessions s where s.profile_id = p_profile_id;
  get diagnostics v_n = row_count;
  v_removed := v_removed || jsonb_build_object('sessions', v_n);
  delete from private.oauth_states o where o.link_profile_id = p_profile_id;
  delete from private.link_codes c where c.profile_id = p_profile_id;
  delete from private.deliveries d where d.profile_id = p_profile_id;
  delete from public.push_devices d where d.profile_id = p_profile_id;
  get diagnostics v_n = row_count;
  v_removed := v_removed || jsonb_build_object('push_devices', v_n);
  delete from public.notification_preferences n where n.profile_id = p_profile_id;
  delete from public.notifications n where n.profile_id = p_profile_id;
  get diagnostics v_n = row_count;
  v_removed := v_removed || jsonb_build_object('notifications', v_n);
  update public.chat_messages c set author_name = 'Deleted member', body = '[erased]'
   where c.profile_id = p_profile_id;
  get diagnostics v_n = row_count;
  v_removed := v_removed || jsonb_build_object('chat_messages', v_n);
  delete from public.discord_guild_members m where m.profile_id = p_profile_id;
  insert into public.profile_erasures (profile_id, requested_by) values (p_profile_id, v_requested_by);
  return jsonb_build_object('profile_id', p_profile_id, 'erased', true, 'removed', v_removed);
end
$$;

comment on function private.erase_profile(uuid) is
  'Implementation of public.erase_me, admin_erase_profile: anonymises the profile and removes what identifies '
  'the person; ledger rows (append-only) stay, so totals still add up. Callers: the member, an admin, the backend.';

revoke all on function private.erase_profile(uuid) from public;

grant execute on function private.erase_profile(uuid) to authenticated, service_role;

create or replace function public.erase_me()
returns jsonb
language plpgsql
volatile
security invoker
set search_path = ''
as $$
begin
  if (select auth.uid()) is null then
    raise exception 'Sign in to erase your data' using errcode = '42501';
  end if;
  return private.erase_profile((select auth.uid()));
end
$$;

comment on function public.erase_me() is
  'Erases the caller: display name becomes "Deleted member", bio, avatar, social links and time zone are '
  'cleared, the profile leaves every board; identities, sessions (every token stops working), push devices, '
  'notification preferences, link codes, notifications and server memberships are removed; chat messages keep '
  'their place with "[erased]" as body. XP, points and the ledger stay against the anonymous profile. Returns '
  '{profile_id, erased (false when it was erased before), removed {identities, sessions, push_devices, '
  'notifications, chat_messages}}. Errors: 42501, XPPRF.';

revoke all on function public.erase_me() from public;

grant execute on function public.erase_me() to authenticated;

create or replace function public.admin_erase_profile(profile_id uuid)
returns jsonb
language plpgsql
volatile
security invoker
set search_path = ''
as $$
begin
  -- private.erase_profile refuses everyone but the member themselves, admins and the backend.
  return private.erase_profile(admin_erase_profile.profile_id);
end
$$;

comment on function public.admin_erase_profile(uuid) is
  'Erases a member at an admin''s hands, as public.erase_me does for oneself; same answer. Admins and '
  'service_role. Errors: 42501, XPBAD, XPPRF.';

revoke all on function public.admin_erase_profile(uuid) from public;

grant execute on function public.admin_erase_profile(uuid) to authenticated, service_role;

-- from supabase/sql/97_rank_cards.sql ---------------------------------------

-- Rank cards people keep: holders of the "Custom rank card" unlock (tier_unlocks slug custom_rank_card,
-- reached with their tier) choose the card's accent and background from a safe set; the bot draws them.
--
-- Tables: public.rank_card_choices.
-- Tests: tests/sql/test_rank_cards.py
create or replace function private.set_rank_card(p_profile_id uuid, p_accent text, p_background text)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_level integer;
begin
  select p.level into v_level from public.profiles p where p.id = p_profile_id for update;
  if not found then
    raise exception 'Unknown profile: %', p_profile_id using errcode = 'XPPRF';
  end if;
  if p_accent is null or p_accent not in ('ember', 'gold', 'neon', 'rose', 'ocean', 'violet') then
    raise exception 'accent must be ember, gold, neon, rose, ocean or violet' using errcode = 'XPBAD';
  end if;
  if p_background is null or p_background not in ('slate', 'night', 'forest', 'wine', 'ocean') then
    raise exception 'background must be slate, night, forest, wine or ocean' using errcode = 'XPBAD';
  end if;
  if not exists (select 1 from public.tier_unlocks u join public.tiers t on t.slug = u.tier_slug
                  where u.slug = 'custom_rank_card' and t.min_level <= v_level) then
    raise exception 'Choosing rank card colours needs the Custom rank card unlock' using errcode = 'XPCRD';
  end if;
  insert into public.rank_card_choices as c (profile_id, accent, background)
  values (p_profile_id, p_accent, p_background)
  on conflict (profile_id) do update
    set accent = excluded.accent, background = excluded.background, updated_at = now();
  return jsonb_build_object('accent', p_accent, 'background', p_background);
end
$$;

comment on function private.set_rank_card(uuid, text, text) is
  'Implementation of set_my_rank_card and service_role_discord_set_rank_card.';

revoke all on function private.set_rank_card(uuid, text, text) from public;

create or replace function private.discord_set_rank_card(p_user_id text, p_accent text, p_background text)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_profile_id uuid;
begin
  perform private.discord_id('user_id', p_user_id);
  select i.profile_id into v_profile_id from public.identities i
   where i.provider = 'discord' and i.subject = p_user_id;
  if v_profile_id is null then
    raise exception 'No profile for Discord user %', p_user_id using errcode = 'XPPRF';
  end if;
  return private.set_rank_card(v_profile_id, p_accent, p_background);
end
$$;

comment on function private.discord_set_rank_card(text, text, text) is
  'Implementation of public.service_role_discord_set_rank_card.';

revoke all on function private.discord_set_rank_card(text, text, text) from public;

grant execute on function private.discord_set_rank_card(text, text, text) to service_role;

create or replace function public.service_role_discord_set_rank_card(user_id text, accent text, background text)
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.discord_set_rank_card(user_id, accent, background)
$$;

comment on function public.service_role_discord_set_rank_card(text, text, text) is
  'A Discord user chooses their rank card''s colours: accent ember|gold|neon|rose|ocean|violet, background '
  'slate|night|forest|wine|ocean. Returns {accent, background}. Needs the Custom rank card unlock (a tier '
  'reached whose unlocks include custom_rank_card). service_role only. Errors: XPBAD, XPPRF, XPCRD.';

revoke all on function public.service_role_discord_set_rank_card(text, text, text) from public;

grant execute on function public.service_role_discord_set_rank_card(text, text, text) to service_role;

create or replace function private.discord_rank_card(p_user_id text)
returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_choice record;
begin
  perform private.discord_id('user_id', p_user_id);
  select c.accent, c.background into v_choice
    from public.identities i
    join public.profiles p on p.id = i.profile_id
    join public.rank_card_choices c on c.profile_id = p.id
   where i.provider = 'discord' and i.subject = p_user_id
     -- A choice counts while the member still holds the unlock (a correction down may take it away).
     and exists (select 1 from public.tier_unlocks u join public.tiers t on t.slug = u.tier_slug
                  where u.slug = 'custom_rank_card' and t.min_level <= p.level);
  return jsonb_build_object('accent', v_choice.accent, 'background', v_choice.background);
end
$$;

comment on function private.discord_rank_card(text) is 'Implementation of public.service_role_discord_rank_card.';

revoke all on function private.discord_rank_card(text) from public;

grant execute on function private.discord_rank_card(text) to service_role;

create or replace function public.service_role_discord_rank_card(user_id text)
returns jsonb
language sql
stable
security invoker
set search_path = ''
as $$
  select private.discord_rank_card(user_id)
$$;

comment on function public.service_role_discord_rank_card(text) is
  'The colours a Discord user chose for their rank card: {accent, background}, both null when they chose '
  'none or no longer hold the Custom rank card unlock. service_role only. Errors: XPBAD.';

revoke all on function public.service_role_discord_rank_card(text) from public;

grant execute on function public.service_role_discord_rank_card(text) to service_role;
