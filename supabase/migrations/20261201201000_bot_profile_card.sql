-- bot_profile_card
--
-- Written by `xpbase migration new` from the feature files in supabase/sql/:
-- the function and trigger definitions that changed since the last migration.
-- Edit the feature files, not this file; landed migrations never change.
-- Changed:
--   function public.profile_card(uuid, int4)
--   function private.discord_card_viewing(text, text)
--   function public.service_role_discord_profile_card(text, text, int4)

-- from supabase/sql/65_profile_card.sql -------------------------------------

------------------------------------------------------------------------------
-- The card
------------------------------------------------------------------------------
create or replace function public.profile_card(profile_id uuid, recent integer default 10)
returns jsonb
language plpgsql
stable
security invoker
set search_path = ''
as $$
declare
  v_uid uuid := (select auth.uid());
  v_backend boolean := false;
  v_profile record;
  v_level_xp bigint;
  v_next_xp bigint;
  v_rank jsonb;
begin
  if profile_card.profile_id is null then
    raise exception 'profile_id is required' using errcode = 'XPBAD';
  end if;
  if profile_card.recent is null or profile_card.recent not between 0 and 50 then
    raise exception 'recent must be 0 to 50' using errcode = 'XPBAD';
  end if;
  -- Only the leaderboard columns (all anon may read). Who sees the card (issue 13 item 3): anon the public
  -- view, the anon case of private.can_see_profile written out because anon may not use schema private; the
  -- backend (running as service_role, naming no member) every card; a member as private.can_see_profile
  -- decides (the owner, staff, members profiles, public ones). A card the caller may not see reads as unknown.
  -- The backend acting for a member (private.act_for, e.g. the bot for whoever ran /profile @someone) sees
  -- the card as that member does.
  if v_uid is null and pg_catalog.pg_has_role(current_user, 'service_role', 'member') then
    v_uid := nullif(pg_catalog.current_setting('xpbase.actor_id', true), '')::uuid;
    v_backend := v_uid is null;
  end if;
  if v_backend then
    select p.id, p.display_name, p.avatar_url, p.xp, p.level, p.tier, t.name as tier_name
      into v_profile
      from public.profiles p
      left join public.tiers t on t.slug = p.tier
     where p.id = profile_card.profile_id;
  elsif v_uid is null then
    select p.id, p.display_name, p.avatar_url, p.xp, p.level, p.tier, t.name as tier_name
      into v_profile
      from public.profiles p
      left join public.tiers t on t.slug = p.tier
     where p.id = profile_card.profile_id and p.leaderboard_visible and p.profile_visibility = 'public';
  else
    select p.id, p.display_name, p.avatar_url, p.xp, p.level, p.tier, t.name as tier_name
      into v_profile
      from public.profiles p
      left join public.tiers t on t.slug = p.tier
     where p.id = profile_card.profile_id and private.can_see_profile(p.id, v_uid);
  end if;
  if not found then
    raise exception 'Unknown profile: %', profile_card.profile_id using errcode = 'XPPRF';
  end if;
  v_level_xp := coalesce(public.xp_for_level(v_profile.level), 0);
  v_next_xp := public.xp_for_level(v_profile.level + 1);
  v_rank := public.leaderboard_rank(v_profile.id);

  return jsonb_build_object(
    'id', v_profile.id,
    'display_name', v_profile.display_name,
    'avatar_url', v_profile.avatar_url,
    'is_self', coalesce(v_profile.id = v_uid, false),
    'xp', v_profile.xp,
    'level', v_profile.level,
    'tier', v_profile.tier,
    'tier_name', v_profile.tier_name,
    'progress', jsonb_build_object(
      'level_xp', v_level_xp,
      'next_level', case when v_next_xp is null then null else v_profile.level + 1 end,
      'next_level_xp', v_next_xp,
      'xp_into_level', v_profile.xp - v_level_xp,
      'xp_needed', case when v_next_xp is null then null else v_next_xp - v_level_xp end,
      'xp_to_next_level', case when v_next_xp is null then null else v_next_xp - v_profile.xp end),
    'rank', v_rank -> 'rank',
    'ranked_members', v_rank -> 'total',
    'layers', coalesce((
      select jsonb_agg(jsonb_build_object(
               'slug', l.slug, 'name', l.name, 'xp', coalesce(pl.xp, 0),
               'status', s.slug, 'status_name', s.name)
             order by l.position, l.slug)
        from public.layers l
        left join public.profile_layers pl on pl.profile_id = v_profile.id and pl.layer_slug = l.slug
        left join lateral (
          select ls.slug, ls.name from public.layer_statuses ls
           where ls.layer_slug = l.slug and ls.min_xp <= coalesce(pl.xp, 0)
           order by ls.min_xp desc limit 1) s on true), '[]'),
    'seasons', coalesce((
      select jsonb_agg(jsonb_build_object(
               'season_id', se.id, 'layer', se.layer_slug, 'name', se.name,
               'starts_at', se.starts_at, 'ends_at', se.ends_at, 'xp', coalesce(sc.xp, 0),
               'rank', case when sc.xp > 0
                            then public.leaderboard_rank(v_profile.id, 'season', null, se.id) -> 'rank' end)
             order by se.layer_slug)
        from public.seasons se
        left join public.season_scores sc on sc.season_id = se.id and sc.profile_id = v_profile.id
       where se.starts_at <= now() and now() < se.ends_at), '[]'),
    'recent_activity', coalesce((
      select jsonb_agg(jsonb_build_object(
               'activity', f.activity_slug, 'activity_name', a.name, 'layer', f.layer_slug,
               'amount', f.amount, 'occurred_at', f.occurred_at)
             order by f.occurred_at desc, f.ledger_id desc)
        from (select * from public.activity_feed af
               where af.profile_id = v_profile.id
               order by af.occurred_at desc, af.ledger_id desc
               limit profile_card.recent) f
        join public.activity_types a on a.slug = f.activity_slug), '[]'));
end
$$;

comment on function public.profile_card(uuid, integer) is
  'What anyone may see of a member: {id, display_name, avatar_url, is_self, xp, level, tier, tier_name, '
  'progress {level_xp, next_level, next_level_xp, xp_into_level, xp_needed, xp_to_next_level} (XP; the next '
  'level fields null at the top of the curve), rank and ranked_members (all-time board; rank null when not '
  'listed), layers [{slug, name, xp, status, status_name}], seasons [{season_id, layer, name, starts_at, '
  'ends_at, xp, rank}] (the seasons running now), recent_activity [{activity, activity_name, layer, amount, '
  'occurred_at}] (the last `recent` (0-50) positive awards, newest first; corrections and penalties are '
  'private)}. Never bio, time zone, points, role or links. Who sees it follows profile_visibility: public '
  'cards anyone, members cards signed-in members, private cards the owner and moderators/admins '
  '(read_private_profiles); a member hidden from leaderboards only the owner and staff; service_role naming no '
  'member every card, and as that member inside private.act_for. Any other card is XPPRF (unknown profile, as '
  'if absent). Errors: XPBAD, XPPRF.';

revoke all on function public.profile_card(uuid, integer) from public;

grant execute on function public.profile_card(uuid, integer) to anon, authenticated, service_role;

-- from supabase/sql/91_discord_members.sql ----------------------------------

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
