-- Profiles and identities: making or finding the profile of a (provider, subject), validating what members
-- and admins edit on a profile (display name, bio, avatar, links, time zone, visibility), and who may see a
-- profile card (profile_visibility, issue 13 item 3).
--
-- Tables: public.profiles, public.identities.
-- Tests: tests/sql/test_profiles.py

------------------------------------------------------------------------------
-- Profiles and identities
------------------------------------------------------------------------------

create or replace function private.clean_display_name(p_name text)
returns text
language sql
immutable
set search_path = ''
as $$
  -- NFC, without control, zero-width and bidi-override characters, trimmed, at most 64 characters; null when
  -- nothing is left (issue 18: names arrive from Discord and OAuth providers as they are). Only the first 1024
  -- characters are looked at, so a 10 MB name costs what a short one does.
  select left(nullif(btrim(regexp_replace(normalize(left(coalesce(p_name, ''), 1024), nfc),
                                          '[\u0001-\u001F\u007F-\u009F\u00AD\u061C\u180E\u200B-\u200F\u202A-\u202E\u2060-\u206F\uFEFF]',
                                          '', 'g')), ''), 64)
$$;
comment on function private.clean_display_name(text) is
  'A display name from an outside source made acceptable: NFC-normalised, control, zero-width and bidi '
  'control characters removed, trimmed, at most 64 characters; null when nothing is left.';
revoke all on function private.clean_display_name(text) from public;

create or replace function private.ensure_profile(p_provider text, p_subject text, p_display_name text)
returns uuid
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_id uuid;
  v_name text := private.clean_display_name(p_display_name);
begin
  if p_provider is null or p_provider !~ '^[a-z][a-z0-9_.:-]{0,63}$' then
    raise exception 'provider must match ^[a-z][a-z0-9_.:-]{0,63}$, got %', coalesce(p_provider, 'null')
      using errcode = 'XPBAD';
  end if;
  if p_subject is null or length(p_subject) not between 1 and 255 then
    raise exception 'subject must be 1 to 255 characters' using errcode = 'XPBAD';
  end if;

  select i.profile_id into v_id from public.identities i
   where i.provider = p_provider and i.subject = p_subject;
  if v_id is not null then
    return v_id;
  end if;

  -- Serialise first sight of one identity so two callers make one profile.
  perform pg_advisory_xact_lock(hashtextextended(p_provider || chr(31) || p_subject, 0));
  select i.profile_id into v_id from public.identities i
   where i.provider = p_provider and i.subject = p_subject;
  if v_id is not null then
    return v_id;
  end if;

  insert into public.profiles (display_name, tier)
  values (coalesce(v_name, p_provider || ' member'), public.tier_for_level(1))
  returning id into v_id;
  insert into public.identities (profile_id, provider, subject) values (v_id, p_provider, p_subject);
  return v_id;
end
$$;
comment on function private.ensure_profile(text, text, text) is 'Implementation of public.ensure_profile.';
revoke all on function private.ensure_profile(text, text, text) from public;
grant execute on function private.ensure_profile(text, text, text) to service_role;

create or replace function public.ensure_profile(provider text, subject text, display_name text)
returns uuid
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.ensure_profile(ensure_profile.provider, ensure_profile.subject, ensure_profile.display_name)
$$;
comment on function public.ensure_profile(text, text, text) is
  'The profile id (uuid) of an external identity, created on first sight with display_name (trimmed, at most '
  '64 characters; provider || '' member'' when empty). An existing profile keeps its name. '
  'Errors: XPBAD for a malformed provider or subject. service_role only.';
revoke all on function public.ensure_profile(text, text, text) from public, anon, authenticated;
grant execute on function public.ensure_profile(text, text, text) to service_role;

create or replace function private.own_profile(p_profile_id uuid)
returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_row public.profiles;
begin
  if p_profile_id is null then
    raise exception 'Sign in to read your profile' using errcode = '42501';
  end if;
  select * into v_row from public.profiles p where p.id = p_profile_id;
  if not found then
    raise exception 'Unknown profile: %', p_profile_id using errcode = 'XPPRF';
  end if;
  return jsonb_build_object(
    'id', v_row.id, 'display_name', v_row.display_name, 'bio', v_row.bio, 'avatar_url', v_row.avatar_url,
    'social_links', v_row.social_links, 'time_zone', v_row.time_zone,
    'leaderboard_visible', v_row.leaderboard_visible, 'profile_visibility', v_row.profile_visibility,
    'role', v_row.role, 'xp', v_row.xp,
    'level', v_row.level, 'tier', v_row.tier, 'points', v_row.points, 'created_at', v_row.created_at);
end
$$;
comment on function private.own_profile(uuid) is
  'A profile as its owner sees it (every column a member may see of their own row). Called with the caller''s '
  'own id by public.my_profile and public.update_my_profile only.';
revoke all on function private.own_profile(uuid) from public;
grant execute on function private.own_profile(uuid) to authenticated;

create or replace function private.update_own_profile(p_profile_id uuid, p_changes jsonb)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
begin
  update public.profiles p
     set display_name = coalesce(p_changes ->> 'display_name', p.display_name),
         bio = coalesce(p_changes ->> 'bio', p.bio),
         avatar_url = case when p_changes ? 'avatar_url' then p_changes ->> 'avatar_url' else p.avatar_url end,
         social_links = coalesce(p_changes -> 'social_links', p.social_links),
         time_zone = coalesce(p_changes ->> 'time_zone', p.time_zone),
         leaderboard_visible = coalesce((p_changes ->> 'leaderboard_visible')::boolean, p.leaderboard_visible),
         profile_visibility = coalesce(p_changes ->> 'profile_visibility', p.profile_visibility)
   where p.id = p_profile_id;
  if not found then
    raise exception 'Unknown profile: %', p_profile_id using errcode = 'XPPRF';
  end if;
  return private.own_profile(p_profile_id);
end
$$;
comment on function private.update_own_profile(uuid, jsonb) is
  'The write of public.update_my_profile (changes already validated), for the caller''s own id only.';
revoke all on function private.update_own_profile(uuid, jsonb) from public;
grant execute on function private.update_own_profile(uuid, jsonb) to authenticated;

create or replace function public.my_profile()
returns jsonb
language sql
stable
security invoker
set search_path = ''
as $$
  select private.own_profile((select auth.uid()))
$$;
comment on function public.my_profile() is
  'The signed-in member''s own profile, with the columns only its owner may read (issue 18: other members see '
  'the leaderboard columns of public.profiles, not bio, social_links or points): {id, display_name, bio, '
  'avatar_url, social_links, time_zone, leaderboard_visible, profile_visibility, role, xp, level, tier, points, '
  'created_at}. Errors: 42501 when not signed in, XPPRF.';
revoke all on function public.my_profile() from public, anon, service_role;
grant execute on function public.my_profile() to authenticated;

create or replace function public.update_my_profile(changes jsonb)
returns jsonb
language plpgsql
volatile
security invoker
set search_path = ''
as $$
declare
  v_uid uuid := (select auth.uid());
  v_unknown text;
  v_bad text;
begin
  if v_uid is null then
    raise exception 'Sign in to edit your profile' using errcode = '42501';
  end if;
  if update_my_profile.changes is null or jsonb_typeof(update_my_profile.changes) <> 'object' then
    raise exception 'changes must be a JSON object' using errcode = 'XPBAD';
  end if;
  select string_agg(k.key, ', ' order by k.key) into v_unknown
    from jsonb_object_keys(update_my_profile.changes) as k (key)
   where k.key not in ('display_name', 'bio', 'avatar_url', 'social_links', 'time_zone', 'leaderboard_visible',
                       'profile_visibility');
  if v_unknown is not null then
    raise exception 'Not editable: % (editable: display_name, bio, avatar_url, social_links, time_zone, '
      'leaderboard_visible, profile_visibility)', v_unknown using errcode = 'XPBAD';
  end if;
  select string_agg(c.key, ', ' order by c.key) into v_bad
    from jsonb_each(update_my_profile.changes) as c (key, value)
   where jsonb_typeof(c.value) <> case c.key
           when 'social_links' then 'object'
           when 'leaderboard_visible' then 'boolean'
           else 'string' end
     and not (c.key = 'avatar_url' and jsonb_typeof(c.value) = 'null');
  if v_bad is not null then
    raise exception 'Wrong type for % (text, avatar_url text or null, social_links an object, '
      'leaderboard_visible a boolean)', v_bad using errcode = 'XPBAD';
  end if;
  if update_my_profile.changes ? 'profile_visibility'
     and update_my_profile.changes ->> 'profile_visibility' not in ('public', 'members', 'private') then
    raise exception 'profile_visibility must be public, members or private' using errcode = 'XPBAD';
  end if;
  -- The write runs in private.update_own_profile: members may not read bio, social_links and points of
  -- profiles (issue 18), and an update that keeps a column's value must read it.
  return private.update_own_profile(v_uid, update_my_profile.changes);
end
$$;
comment on function public.update_my_profile(jsonb) is
  'Edits the signed-in member''s own profile: changes is an object with any of display_name (1-64 characters, '
  'trimmed, NFC; XPNAM for control, zero-width or bidi control characters), bio (at most 500), avatar_url (a plain https URL, at most 500, XPURL otherwise, or null to clear), social_links (an object, '
  'at most 2000 characters as JSON), time_zone (an IANA name), leaderboard_visible (boolean) and '
  'profile_visibility (public, members or private: who sees the profile card); keys left out '
  'stay as they are. Returns the profile as its owner sees it: {id, display_name, bio, avatar_url, '
  'social_links, time_zone, leaderboard_visible, profile_visibility, role, xp, level, tier, points, created_at}. Validates as the '
  'caller, writes the caller''s own row alone (private.update_own_profile). Errors: 42501 when not signed in, XPBAD (an '
  'unknown key, a wrong type, an unknown time zone), 23514 or 22001 (a value outside the table''s checks), XPPRF.';
revoke all on function public.update_my_profile(jsonb) from public, anon;
grant execute on function public.update_my_profile(jsonb) to authenticated;

create or replace function private.tg_profiles__validate()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  -- Display names (issue 18): NFC, and no control, zero-width or bidi-override characters (they reorder or hide
  -- text wherever a name is shown). Avatars: a plain https URL, nothing a page could break out of.
  new.display_name := btrim(normalize(new.display_name, nfc));
  if new.display_name ~ '[--­؜᠎​-‏‪-‮⁠-⁯﻿]' then
    raise exception 'display_name may not contain control, zero-width or bidi control characters'
      using errcode = 'XPNAM';
  end if;
  if new.avatar_url is not null and (tg_op = 'INSERT' or new.avatar_url is distinct from old.avatar_url)
     and new.avatar_url !~ '^https://[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?(:[0-9]{1,5})?(/[A-Za-z0-9._~!$&()*+,;=:@%/-]*)?([?][A-Za-z0-9._~!$&()*+,;=:@%/?-]*)?$' then
    raise exception 'avatar_url must be a plain https URL (host, path and query; no spaces, quotes or brackets)'
      using errcode = 'XPURL';
  end if;
  if tg_op = 'UPDATE' then
    new.updated_at := now();
  end if;
  if (tg_op = 'INSERT' or new.time_zone is distinct from old.time_zone)
     and new.time_zone <> 'UTC'
     and not exists (select 1 from pg_catalog.pg_timezone_names z where z.name = new.time_zone) then
    raise exception 'Unknown time zone: % (use an IANA name such as Europe/Berlin)', new.time_zone
      using errcode = 'XPBAD';
  end if;
  return new;
end
$$;
comment on function private.tg_profiles__validate() is
  'Trims and NFC-normalises the display name and refuses control, zero-width and bidi control characters '
  '(XPNAM), refuses an avatar_url that is not a plain https URL (XPURL), stamps updated_at and checks the time '
  'zone is an IANA name (inserts and updates of the editable columns).';
revoke all on function private.tg_profiles__validate() from public;

-- Only the columns a member or an admin edits: the award path (private.apply_xp) and season rewards
-- (private.finalize_seasons) write xp, level, tier, points and xp_reached_at and stamp updated_at themselves.
drop trigger if exists _100_validate on public.profiles;
create trigger _100_validate
  before insert or update of display_name, bio, avatar_url, social_links, time_zone, leaderboard_visible,
                             profile_visibility, role
  on public.profiles
  for each row execute function private.tg_profiles__validate();

------------------------------------------------------------------------------
-- Who sees a profile card (issue 13 item 3)
------------------------------------------------------------------------------

create or replace function private.can_see_profile(p_profile_id uuid, p_viewer_id uuid)
returns boolean
language sql
stable
security definer
set search_path = ''
as $$
  -- The owner and staff (a role holding read_private_profiles: moderators, admins) see every card; others
  -- see a card of a member listed on the boards (leaderboard_visible) whose profile_visibility admits them:
  -- public for anyone, members for a viewer who has a profile. A null viewer is anyone (anon), and the
  -- anon policies and the anon branches of profile_card and profile_badges repeat that case in SQL anon may
  -- run (anon has no usage on schema private): p.leaderboard_visible and p.profile_visibility = 'public'.
  select exists (
    select 1 from public.profiles p
     where p.id = p_profile_id
       and (p.id = p_viewer_id
            or exists (select 1 from public.profiles v
                         join public.role_permissions rp
                           on rp.role_slug = v.role and rp.permission_slug = 'read_private_profiles'
                        where v.id = p_viewer_id)
            or (p.leaderboard_visible
                and (p.profile_visibility = 'public'
                     or (p.profile_visibility = 'members'
                         and exists (select 1 from public.profiles v where v.id = p_viewer_id))))))
$$;
comment on function private.can_see_profile(uuid, uuid) is
  'True when p_viewer_id (a profile id, or null for anyone) may see the profile card of p_profile_id: the '
  'owner; a viewer whose role holds read_private_profiles; anyone for a public profile, members (viewers with '
  'a profile) for a members profile, provided the member is listed on the boards (leaderboard_visible). False '
  'for an unknown profile. Used by the card functions, the bot and the policies of the card''s data.';
revoke all on function private.can_see_profile(uuid, uuid) from public;
grant execute on function private.can_see_profile(uuid, uuid) to authenticated, service_role;
