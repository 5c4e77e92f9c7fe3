-- discord_member_viewer
--
-- Written by `xpbase migration new` from the feature files in supabase/sql/:
-- the function and trigger definitions that changed since the last migration.
-- Edit the feature files, not this file; landed migrations never change.
-- Changed:
--   function private.discord_member(text, int4, text)
--   function public.service_role_discord_member(text, int4, text)
--   drop function private.discord_member(text, int4)
--   drop function public.service_role_discord_member(text, int4)

-- No longer in the feature files.
drop function if exists private.discord_member(text, int4);
drop function if exists public.service_role_discord_member(text, int4);

-- from supabase/sql/91_discord_members.sql ----------------------------------

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
  -- Members hidden from boards are hidden from other members' /profile and /rank too (the member sees themself).
  if not v_profile.leaderboard_visible and p_viewer_id is not null and p_viewer_id <> p_user_id then
    raise exception 'That member keeps their profile private' using errcode = 'XPHID';
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
  'user asking (/profile @them, /rank @them): when it is someone else and the user hides from leaderboards '
  '(leaderboard_visible false) the answer is XPHID, as boards leave them out; null is the member themself or a '
  'moderator. Errors: XPPRF when the user has no profile, XPHID, XPBAD. service_role only.';

revoke all on function public.service_role_discord_member(text, integer, text) from public, anon, authenticated;

grant execute on function public.service_role_discord_member(text, integer, text) to service_role;
