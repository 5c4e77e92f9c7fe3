-- Profile cards: what anyone may see of a member (the web member page /u/<id>, GET /v1/profiles/{id}):
-- name, avatar, level and progress to the next, tier, XP per layer, this season's scores and ranks, the
-- all-time rank and recent public activity; and the public activity feed that the last part reads.
--
-- Tables: public.activity_feed.
-- Tests: tests/sql/test_profile_card.py

------------------------------------------------------------------------------
-- The public activity feed: the public part of positive award-path ledger rows
------------------------------------------------------------------------------

create or replace function private.tg_xp_ledger__activity_feed()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  insert into public.activity_feed (ledger_id, profile_id, activity_slug, layer_slug, amount, occurred_at)
  select n.id, n.profile_id, n.activity_slug, n.layer_slug, n.amount, n.occurred_at
    from new_rows n
   where n.amount > 0 and n.reason is null
   order by n.id;
  return null;
end
$$;
comment on function private.tg_xp_ledger__activity_feed() is
  'Statement trigger (transition table new_rows): copies activity, layer, amount and occurred_at of the '
  'statement''s positive award-path ledger rows (no reason: not a correction), in ledger id order, into '
  'public.activity_feed, the part of the ledger a member page shows to anyone.';
revoke all on function private.tg_xp_ledger__activity_feed() from public;

drop trigger if exists _700_activity_feed on public.xp_ledger;
create trigger _700_activity_feed after insert on public.xp_ledger
  referencing new table as new_rows
  for each statement execute function private.tg_xp_ledger__activity_feed();

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
