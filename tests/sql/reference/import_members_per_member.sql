-- The per-member import as it was before the set-based private.import_members (supabase/sql/92_imports.sql,
-- issue 17): each member through private.ensure_profile and private.apply_xp, with every ledger trigger
-- firing (the badge and leaderboard count triggers without their xpbase.importing condition; the badge trigger
-- is a statement trigger, and apply_xp writes one ledger row per statement).
-- tests/sql/test_imports_set_based.py applies this file to a reference database of its own, to compare the
-- set-based import against; it is never part of a migration.

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

drop trigger if exists _800_badges on public.xp_ledger;
create trigger _800_badges after insert on public.xp_ledger
  referencing new table as new_rows
  for each statement execute function private.tg_xp_ledger__badges();
drop trigger if exists _600_leaderboard_counts on public.profiles;
create trigger _600_leaderboard_counts after insert or delete or update of xp, leaderboard_visible on public.profiles
  for each row execute function private.tg_profiles__leaderboard_counts();
drop trigger if exists _600_leaderboard_counts on public.profile_layers;
create trigger _600_leaderboard_counts after insert or delete or update of xp, layer_slug on public.profile_layers
  for each row execute function private.tg_board_scores__leaderboard_counts();
drop trigger if exists _600_leaderboard_counts on public.season_scores;
create trigger _600_leaderboard_counts after insert or delete or update of xp, season_id on public.season_scores
  for each row execute function private.tg_board_scores__leaderboard_counts();
