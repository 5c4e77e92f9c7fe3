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

create or replace function public.service_role_discord_award(
  guild_id text,
  user_id text,
  display_name text,
  activity text,
  idempotency_key text,
  occurred_at timestamptz default null,
  channel_id text default null,
  role_ids text[] default '{}'
)
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.discord_award(service_role_discord_award.guild_id, service_role_discord_award.user_id,
                               service_role_discord_award.display_name, service_role_discord_award.activity,
                               service_role_discord_award.idempotency_key, service_role_discord_award.occurred_at,
                               service_role_discord_award.channel_id, service_role_discord_award.role_ids)
$$;
comment on function public.service_role_discord_award(text, text, text, text, text, timestamptz, text, text[]) is
  'Passive Discord XP (message, voice_minute, command): nothing when the channel (threads: their parent) or '
  'one of the member''s roles is a no-XP target of the guild ({granted: 0, skipped: no_xp_channel|no_xp_role}, '
  'no ledger row); otherwise the member''s profile (created on first sight from the discord identity) gets '
  'award_xp with context {guild_id, channel_id, role_ids} for multipliers, and the receipt is returned with '
  'skipped null. Errors as award_xp (XPIDM for a key reused with other parameters, e.g. changed roles), XPBAD '
  'for malformed ids. service_role only.';
revoke all on function public.service_role_discord_award(text, text, text, text, text, timestamptz, text, text[]) from public, anon, authenticated;
grant execute on function public.service_role_discord_award(text, text, text, text, text, timestamptz, text, text[]) to service_role;

-- Members: profile, levels, seasons, role rewards -----------------------------

create or replace function private.discord_member(p_user_id text, p_recent integer, p_viewer_id text)
returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_profile public.profiles;
  v_viewer uuid;
begin
  perform private.discord_id('user_id', p_user_id);
  if p_viewer_id is not null then
    perform private.discord_id('viewer_user_id', p_viewer_id);
  end if;
  if p_recent is null or p_recent not between 0 and 25 then
    raise exception 'recent must be 0 to 25' using errcode = 'XPBAD';
  end if;
  select p.* into v_profile
    from public.identities i join public.profiles p on p.id = i.profile_id
   where i.provider = 'discord' and i.subject = p_user_id;
  if not found then
    raise exception 'No profile for Discord user %', p_user_id using errcode = 'XPPRF';
  end if;
  -- Someone else asking sees what the card shows them (private.can_see_profile, issue 13 item 3): members
  -- hidden from boards and private profiles only to staff, members profiles to viewers with a profile.
  if p_viewer_id is not null and p_viewer_id <> p_user_id then
    select i.profile_id into v_viewer from public.identities i
     where i.provider = 'discord' and i.subject = p_viewer_id;
    if not private.can_see_profile(v_profile.id, v_viewer) then
      raise exception 'That member keeps their profile private' using errcode = 'XPHID';
    end if;
  end if;
  return jsonb_build_object(
    'profile_id', v_profile.id,
    'display_name', v_profile.display_name,
    'bio', v_profile.bio,
    'avatar_url', v_profile.avatar_url,
    'social_links', v_profile.social_links,
    'role', v_profile.role,
    'leaderboard_visible', v_profile.leaderboard_visible,
    'created_at', v_profile.created_at,
    'xp', v_profile.xp,
    'level', v_profile.level,
    'tier', v_profile.tier,
    'tier_name', (select t.name from public.tiers t where t.slug = v_profile.tier),
    'points', v_profile.points,
    'rank_card_style', v_profile.rank_card_style,
    'level_xp', public.xp_for_level(v_profile.level),
    'next_level_xp', public.xp_for_level(v_profile.level + 1),
    'layers', coalesce((
      select jsonb_agg(jsonb_build_object(
               'layer', l.slug, 'name', l.name, 'xp', coalesce(pl.xp, 0),
               'status', coalesce(pl.status, public.layer_status_for(l.slug, 0)),
               'status_name', (select s.name from public.layer_statuses s
                                where s.layer_slug = l.slug
                                  and s.slug = coalesce(pl.status, public.layer_status_for(l.slug, 0))))
             order by l.position, l.slug)
        from public.layers l
        left join public.profile_layers pl on pl.profile_id = v_profile.id and pl.layer_slug = l.slug), '[]'),
    'unlocks', coalesce((
      select jsonb_agg(jsonb_build_object('tier', u.tier_slug, 'slug', u.slug, 'name', u.name)
                       order by t.min_level, u.position, u.slug)
        from public.tier_unlocks u join public.tiers t on t.slug = u.tier_slug
       where t.min_level <= v_profile.level), '[]'),
    'identities', coalesce((
      select jsonb_agg(i.provider order by i.provider) from public.identities i where i.profile_id = v_profile.id), '[]'),
    'recent', coalesce((
      select jsonb_agg(jsonb_build_object('activity', r.activity_slug, 'activity_name', r.name, 'layer', r.layer_slug,
                                          'amount', r.amount, 'occurred_at', r.occurred_at, 'reason', r.reason)
                       order by r.occurred_at desc, r.id desc)
        from (select l.id, l.activity_slug, a.name, l.layer_slug, l.amount, l.occurred_at, l.reason
                from public.xp_ledger l join public.activity_types a on a.slug = l.activity_slug
               where l.profile_id = v_profile.id and l.amount <> 0
               order by l.occurred_at desc, l.id desc
               limit p_recent) r), '[]'));
end
$$;
comment on function private.discord_member(text, integer, text) is 'Implementation of public.service_role_discord_member.';
revoke all on function private.discord_member(text, integer, text) from public;
grant execute on function private.discord_member(text, integer, text) to service_role;

create or replace function public.service_role_discord_member(
  user_id text,
  recent integer default 0,
  viewer_user_id text default null
)
returns jsonb
language sql
stable
security invoker
set search_path = ''
as $$
  select private.discord_member(service_role_discord_member.user_id, service_role_discord_member.recent,
                                service_role_discord_member.viewer_user_id)
$$;
comment on function public.service_role_discord_member(text, integer, text) is
  'The profile of a Discord user for /rank, /xp and /profile: profile_id, display_name, bio, avatar_url, '
  'social_links, role, leaderboard_visible, created_at, xp, level, tier, tier_name, points, rank_card_style, level_xp (XP where '
  'the level starts), next_level_xp (null at the top of the curve), layers [{layer, name, xp, status, '
  'status_name}], unlocks [{tier, slug, name}], identities [provider], and the last `recent` (0-25) non-zero '
  'ledger entries [{activity, activity_name, layer, amount, occurred_at, reason}]. viewer_user_id is the Discord '
  'user asking (/profile @them, /rank @them): when it is someone else who may not see the user''s profile card '
  '(private.can_see_profile: a private profile or one hidden from leaderboards unless the viewer''s role holds '
  'read_private_profiles; a members profile unless the viewer has a profile) the answer is XPHID; null is the '
  'member themself or the backend. Errors: XPPRF when the user has no profile, XPHID, XPBAD. service_role only.';
revoke all on function public.service_role_discord_member(text, integer, text) from public, anon, authenticated;
grant execute on function public.service_role_discord_member(text, integer, text) to service_role;

create or replace function private.discord_card_viewing(
  p_user_id text,
  p_viewer_id text,
  out profile_id uuid,
  out viewer_id uuid
)
language plpgsql
stable
security definer
set search_path = ''
as $$
begin
  perform private.discord_id('user_id', p_user_id);
  perform private.discord_id('viewer_user_id', p_viewer_id);
  select i.profile_id into profile_id from public.identities i
   where i.provider = 'discord' and i.subject = p_user_id;
  if profile_id is null then
    raise exception 'No profile for Discord user %', p_user_id using errcode = 'XPPRF';
  end if;
  select i.profile_id into viewer_id from public.identities i
   where i.provider = 'discord' and i.subject = p_viewer_id;
  if viewer_id is null then
    raise exception 'No profile for Discord user %', p_viewer_id using errcode = 'XPPRF';
  end if;
  -- The same rule as the card itself (private.can_see_profile), answered as XPHID for the bot's reply.
  if not private.can_see_profile(profile_id, viewer_id) then
    raise exception 'That member keeps their profile private' using errcode = 'XPHID';
  end if;
end
$$;
comment on function private.discord_card_viewing(text, text) is
  'The profiles of a Discord user and of the Discord user asking to see their card (both must have one: XPPRF), '
  'XPHID when the viewer may not see it (private.can_see_profile), XPBAD for ids that are not Discord ids. For '
  'public.service_role_discord_profile_card.';
revoke all on function private.discord_card_viewing(text, text) from public;
grant execute on function private.discord_card_viewing(text, text) to service_role;

create or replace function public.service_role_discord_profile_card(
  user_id text,
  viewer_user_id text,
  recent integer default 0
)
returns jsonb
language plpgsql
volatile
security invoker
set search_path = ''
as $$
declare
  v_seen record;
  v_card jsonb;
begin
  select v.profile_id, v.viewer_id into v_seen
    from private.discord_card_viewing(service_role_discord_profile_card.user_id,
                                      service_role_discord_profile_card.viewer_user_id) v;
  -- profile_card as the viewer would call it themself: what a member may see of another member.
  perform private.act_for(v_seen.viewer_id);
  v_card := public.profile_card(v_seen.profile_id, service_role_discord_profile_card.recent);
  perform set_config('xpbase.actor_id', '', true);
  return v_card;
end
$$;
comment on function public.service_role_discord_profile_card(text, text, integer) is
  'The profile card of Discord user user_id as Discord user viewer_user_id sees it (/profile @them): '
  'public.profile_card run for the viewer (private.act_for), so the same shape and fields, never bio, time '
  'zone, points, role, links or linked accounts; is_self when they are the same person. recent: 0-50 latest '
  'awards. Errors: XPPRF when either has no profile, XPHID when the viewer may not see the card '
  '(private.can_see_profile), XPBAD. service_role only.';
revoke all on function public.service_role_discord_profile_card(text, text, integer) from public, anon, authenticated;
grant execute on function public.service_role_discord_profile_card(text, text, integer) to service_role;

create or replace function public.service_role_discord_seasons(layer text default null, max_rows integer default 25)
returns jsonb
language plpgsql
stable
security invoker
set search_path = ''
as $$
begin
  if max_rows is null or max_rows not between 1 and 100 then
    raise exception 'max_rows must be 1 to 100' using errcode = 'XPBAD';
  end if;
  return coalesce((
    select jsonb_agg(jsonb_build_object('id', s.id, 'layer', s.layer_slug, 'name', s.name, 'starts_at', s.starts_at,
                                        'ends_at', s.ends_at, 'finalized_at', s.finalized_at)
                     order by s.starts_at desc, s.layer_slug)
      from (select * from public.seasons x
             where service_role_discord_seasons.layer is null or x.layer_slug = service_role_discord_seasons.layer
             order by x.starts_at desc, x.layer_slug
             limit service_role_discord_seasons.max_rows) s), '[]');
end
$$;
comment on function public.service_role_discord_seasons(text, integer) is
  'The newest seasons (of one layer, or all), newest first: [{id, layer, name, starts_at, ends_at, '
  'finalized_at}], for the bot''s /leaderboard season choices. Errors: XPBAD. service_role only.';
revoke all on function public.service_role_discord_seasons(text, integer) from public, anon, authenticated;
grant execute on function public.service_role_discord_seasons(text, integer) to service_role;

create or replace function private.discord_role_plan(p_guild_id text, p_user_ids text[])
returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_id text;
begin
  perform private.discord_id('guild_id', p_guild_id);
  if p_user_ids is null or cardinality(p_user_ids) > 1000 then
    raise exception 'user_ids must hold at most 1000 ids' using errcode = 'XPBAD';
  end if;
  foreach v_id in array p_user_ids loop
    perform private.discord_id('user_ids[]', v_id);
  end loop;
  return (
    with rewards as (
      select r.role_id, coalesce(r.min_level, t.min_level) as level
        from public.discord_role_rewards r
        left join public.tiers t on t.slug = r.tier_slug
       where r.guild_id = p_guild_id
    ),
    members as (
      select u.user_id, p.id as profile_id, coalesce(p.level, 1) as level,
             coalesce(p.tier, public.tier_for_level(1)) as tier
        from (select distinct x as user_id from unnest(p_user_ids) as x) u
        left join public.identities i on i.provider = 'discord' and i.subject = u.user_id
        left join public.profiles p on p.id = i.profile_id
    )
    select jsonb_build_object(
      'managed', coalesce((select jsonb_agg(r.role_id order by r.role_id) from rewards r), '[]'),
      'members', coalesce((
        select jsonb_agg(jsonb_build_object(
                 'user_id', m.user_id, 'profile_id', m.profile_id, 'level', m.level, 'tier', m.tier,
                 'roles', coalesce((select jsonb_agg(r.role_id order by r.level, r.role_id)
                                      from rewards r where r.level <= m.level), '[]'))
               order by m.user_id)
          from members m), '[]'))
  );
end
$$;
comment on function private.discord_role_plan(text, text[]) is 'Implementation of public.service_role_discord_role_plan.';
revoke all on function private.discord_role_plan(text, text[]) from public;
grant execute on function private.discord_role_plan(text, text[]) to service_role;

create or replace function public.service_role_discord_role_plan(guild_id text, user_ids text[])
returns jsonb
language sql
stable
security invoker
set search_path = ''
as $$
  select private.discord_role_plan(service_role_discord_role_plan.guild_id, service_role_discord_role_plan.user_ids)
$$;
comment on function public.service_role_discord_role_plan(text, text[]) is
  'Which reward roles of a guild each member (up to 1000 Discord user ids) should hold: {managed [role ids of '
  'all the guild''s rewards], members [{user_id, profile_id, level, tier, roles [role ids]}]}. Rewards stack: '
  'a member holds every reward whose level (or tier''s first level) they reached; users without a profile are '
  'planned at level 1. The bot adds what is missing and removes managed roles not listed. Errors: XPBAD. '
  'service_role only.';
revoke all on function public.service_role_discord_role_plan(text, text[]) from public, anon, authenticated;
grant execute on function public.service_role_discord_role_plan(text, text[]) to service_role;

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

create or replace function public.service_role_discord_notifications(after_id bigint default null, max_rows integer default 100)
returns jsonb
language sql
stable
security invoker
set search_path = ''
as $$
  select private.discord_notifications(service_role_discord_notifications.after_id,
                                       service_role_discord_notifications.max_rows)
$$;
comment on function public.service_role_discord_notifications(bigint, integer) is
  'Level-ups and tier-ups to announce on Discord, read after a cursor: {cursor, notifications [{id, kind, '
  'profile_id, user_id (Discord), title, body, data, created_at, idempotency_key (of the ledger row that caused '
  'it)}]}. Looks at the next max_rows (1-1000) notifications of any kind and returns the cursor past them; with '
  'after_id null returns the newest id as the cursor and nothing else. Errors: XPBAD. service_role only.';
revoke all on function public.service_role_discord_notifications(bigint, integer) from public, anon, authenticated;
grant execute on function public.service_role_discord_notifications(bigint, integer) to service_role;

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

create or replace function private.discord_stats(p_guild_id text)
returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_today timestamptz := date_trunc('day', now(), 'UTC');
begin
  perform private.discord_id('guild_id', p_guild_id);
  return jsonb_build_object(
    'profiles', (select count(*) from public.profiles),
    'discord_profiles', (select count(*) from public.identities i where i.provider = 'discord'),
    'total_xp', (select coalesce(sum(p.xp), 0) from public.profiles p),
    'today', coalesce((
      select jsonb_object_agg(a.activity_slug, jsonb_build_object('awards', a.awards, 'xp', a.xp))
        from (select l.activity_slug, count(*) as awards, sum(l.amount) as xp
                from public.xp_ledger l
               where l.activity_slug in ('message', 'voice_minute', 'command')
                 and l.occurred_at >= v_today and l.amount > 0
               group by l.activity_slug) a), '{}'),
    'guild', private.discord_guild_config(p_guild_id));
end
$$;
comment on function private.discord_stats(text) is 'Implementation of public.service_role_discord_stats.';
revoke all on function private.discord_stats(text) from public;
grant execute on function private.discord_stats(text) to service_role;

create or replace function public.service_role_discord_stats(guild_id text)
returns jsonb
language sql
stable
security invoker
set search_path = ''
as $$
  select private.discord_stats(service_role_discord_stats.guild_id)
$$;
comment on function public.service_role_discord_stats(text) is
  'Numbers for /botstats: profiles, discord_profiles, total_xp, today {activity: {awards, xp}} for message, '
  'voice_minute and command since 00:00 UTC, and the guild configuration. Errors: XPBAD. service_role only.';
revoke all on function public.service_role_discord_stats(text) from public, anon, authenticated;
grant execute on function public.service_role_discord_stats(text) to service_role;
