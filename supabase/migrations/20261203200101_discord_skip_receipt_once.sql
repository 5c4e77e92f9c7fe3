-- discord_award_prepare answers a skipped call's whole receipt, so discord_award and the group's set path do not each build it
--
-- Written by `xpbase migration new` from the feature files in supabase/sql/:
-- the function and trigger definitions that changed since the last migration.
-- Edit the feature files, not this file; landed migrations never change.
-- Changed:
--   function private.award_group_set(jsonb)
--   function private.discord_award_prepare(text, text, text, text, text, text, text[])
--   function private.discord_award(text, text, text, text, text, timestamptz, text, text[])
--   drop function private.discord_award_prepare(text, text, text, text, text[])

-- No longer in the feature files.
drop function if exists private.discord_award_prepare(text, text, text, text, text[]);

-- from supabase/sql/34_award_group.sql --------------------------------------

-- Group commit of awards (issue 16 item 2): service_role_award_group runs many award calls (award_xp and
-- the bot's passive discord_award) in one transaction and answers per call either its receipt or its error;
-- a failing call changes nothing, the others commit together. xpbase/group_commit.py merges award calls that
-- arrive within a few milliseconds into one such call and hands each caller its answer after the commit.
-- Unlike service_role_award_xp_batch (38_rule_packs.sql: all or nothing, summary rows) it is made for
-- unrelated callers sharing a transaction: one caller's bad award must not fail the others.
--
-- Tables: none (writes through private.award_set, private.award_xp and private.discord_award).
-- Tests: tests/sql/test_award_group.py, tests/xpbase/test_group_commit.py
--
-- How: the group is first decided as one batch by private.award_set (39_award_set.sql: the awards as a set,
-- with award_xp's receipts), in one subtransaction. When a call fails there, that subtransaction is rolled
-- back and the group is decided call by call, each call in its own subtransaction, so that each failing call
-- answers its own error and the others still commit. Both give the answers award_xp gives the calls one at a
-- time in array order (tests/sql/test_award_group.py holds them together). A rolled-back set attempt leaves
-- gaps in the ledger's and seasons' ids (sequences do not roll back).
create or replace function private.award_group_set(p_calls jsonb)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_call jsonb;
  v_index integer := 0;
  v_award jsonb;
  v_items jsonb[] := '{}';
  -- Per call (from 1): its item's position in v_items (null for a skipped call), and its answer.
  v_item_of integer[] := array_fill(null::integer, array[jsonb_array_length(p_calls)]);
  v_answers jsonb[] := array_fill(null::jsonb, array[jsonb_array_length(p_calls)]);
  v_row record;
begin
  -- Only calls that private.award_group's own checks would pass; anything else is decided call by call, where
  -- it answers its own error.
  if exists (
    select 1 from jsonb_array_elements(p_calls) as c
     where jsonb_typeof(c.value) <> 'object'
        or coalesce(c.value ->> 'fn', '') not in ('award_xp', 'discord_award')
        or octet_length(c.value::text) > 16384
        or exists (select 1 from jsonb_object_keys(c.value) k
                    where k <> all (case when c.value ->> 'fn' = 'award_xp'
                                         then array['fn', 'profile_id', 'activity', 'idempotency_key', 'amount',
                                                    'occurred_at', 'context', 'reason']
                                         else array['fn', 'guild_id', 'user_id', 'display_name', 'activity',
                                                    'idempotency_key', 'occurred_at', 'channel_id', 'role_ids']
                                    end))
        or (c.value ->> 'fn' = 'discord_award' and jsonb_typeof(c.value -> 'role_ids') not in ('array', 'null'))
  ) then
    return null;
  end if;

  for v_call in select c.value from jsonb_array_elements(p_calls) with ordinality as c order by c.ordinality loop
    v_index := v_index + 1;
    if v_call ->> 'fn' = 'award_xp' then
      v_items := v_items || (v_call - 'fn' || jsonb_build_object(
                               'context', coalesce(nullif(v_call -> 'context', 'null'), '{}')));
      v_item_of[v_index] := cardinality(v_items);
    else
      v_award := private.discord_award_prepare(
        v_call ->> 'guild_id', v_call ->> 'user_id', v_call ->> 'display_name', v_call ->> 'activity',
        v_call ->> 'idempotency_key', v_call ->> 'channel_id',
        array(select jsonb_array_elements_text(coalesce(nullif(v_call -> 'role_ids', 'null'), '[]'))));
      if v_award ? 'skipped' then
        v_answers[v_index] := jsonb_build_object('fn', 'discord_award', 'ok', true, 'receipt', v_award -> 'skipped');
      else
        v_items := v_items || jsonb_build_object(
          'profile_id', v_award ->> 'profile_id', 'activity', v_call -> 'activity',
          'idempotency_key', v_call -> 'idempotency_key',
          'occurred_at', to_jsonb((v_call ->> 'occurred_at')::timestamptz), 'context', v_award -> 'context');
        v_item_of[v_index] := cardinality(v_items);
      end if;
    end if;
  end loop;

  for v_row in select a.ord, a.receipt from private.award_set(to_jsonb(v_items)) as a loop
    v_index := array_position(v_item_of, v_row.ord);
    v_answers[v_index] := jsonb_build_object(
      'fn', p_calls -> (v_index - 1) ->> 'fn', 'ok', true,
      'receipt', case when p_calls -> (v_index - 1) ->> 'fn' = 'discord_award'
                      then v_row.receipt || jsonb_build_object('skipped', null)
                      else v_row.receipt end);
  end loop;
  return to_jsonb(v_answers);
end
$$;

comment on function private.award_group_set(jsonb) is
  'The group commit''s set path: decides every call of p_calls (service_role_award_group''s calls) as one '
  'private.award_set batch (a discord_award call through private.discord_award_prepare first) and returns the '
  'answers array ({fn, ok: true, receipt} per call, in order); null, having done nothing, when a call is not '
  'an object with fn award_xp or discord_award and its known keys, or is over 16 KiB. Raises the first '
  'failing call''s error (award_set''s awards[<index>] message): private.award_group then rolls it back and '
  'decides the group call by call.';

revoke all on function private.award_group_set(jsonb) from public;

-- from supabase/sql/91_discord_members.sql ----------------------------------

-- The Discord bot, member side: passive XP, a member's profile and seasons, reward-role plans, the
-- level-ups the bot acts on (reward roles and announcements, claimed from its queue) and guild statistics.
--
-- Tables: private.discord_level_ups (and reads the guild tables and the engine's).
-- Tests: tests/sql/test_discord_members.py

-- Passive XP -------------------------------------------------------------------
create or replace function private.discord_award_prepare(
  p_guild_id text,
  p_user_id text,
  p_display_name text,
  p_activity text,
  p_idempotency_key text,
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
    return jsonb_build_object('skipped', jsonb_build_object(
      'granted', 0, 'skipped', v_skip, 'activity', p_activity, 'idempotency_key', p_idempotency_key,
      'profile_id', null, 'replayed', false));
  end if;

  v_profile_id := private.ensure_profile('discord', p_user_id, p_display_name);
  -- The member is seen in this server (per-server boards, 93_guild_boards.sql).
  insert into public.discord_guild_members as m (guild_id, profile_id) values (p_guild_id, v_profile_id)
  on conflict (guild_id, profile_id) do update set last_seen_at = excluded.last_seen_at;
  return jsonb_build_object(
    'profile_id', v_profile_id,
    'context', jsonb_build_object('guild_id', p_guild_id, 'channel_id', p_channel_id, 'role_ids', to_jsonb(v_roles)));
end
$$;

comment on function private.discord_award_prepare(text, text, text, text, text, text, text[]) is
  'What private.discord_award does before the award: checks the ids (XPBAD), answers {skipped: <the call''s '
  'receipt {granted: 0, skipped: no_xp_channel|no_xp_role, activity, idempotency_key, profile_id: null, '
  'replayed: false}>} when the channel or a role earns no XP in that server, else makes sure '
  'the Discord user has a profile, records them as seen in the server and answers {profile_id, context: '
  '{guild_id, channel_id, role_ids}}, the award_xp parameters the award takes. p_activity is not read (the '
  'award checks it). Shared by discord_award and the group commit''s set path (34_award_group.sql).';

revoke all on function private.discord_award_prepare(text, text, text, text, text, text, text[]) from public;

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
  v_award jsonb := private.discord_award_prepare(p_guild_id, p_user_id, p_display_name, p_activity,
                                                 p_idempotency_key, p_channel_id, p_role_ids);
begin
  if v_award ? 'skipped' then
    return v_award -> 'skipped';
  end if;
  return private.award_xp(
    (v_award ->> 'profile_id')::uuid, p_activity, p_idempotency_key, null, p_occurred_at, v_award -> 'context'
  ) || jsonb_build_object('skipped', null);
end
$$;

comment on function private.discord_award(text, text, text, text, text, timestamptz, text, text[]) is
  'Implementation of public.service_role_discord_award.';

revoke all on function private.discord_award(text, text, text, text, text, timestamptz, text, text[]) from public;

grant execute on function private.discord_award(text, text, text, text, text, timestamptz, text, text[]) to service_role;
