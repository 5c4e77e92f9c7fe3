-- profile_visibility_functions
--
-- Written by `xpbase migration new` from the feature files in supabase/sql/:
-- the function and trigger definitions that changed since the last migration.
-- Edit the feature files, not this file; landed migrations never change.
-- Changed:
--   function private.own_profile(uuid)
--   function private.update_own_profile(uuid, jsonb)
--   function public.my_profile()
--   function public.update_my_profile(jsonb)
--   trigger public.profiles._100_validate
--   function private.can_see_profile(uuid, uuid)
--   function private.has_permission(text)
--   function public.my_permissions()
--   function public.points_statement(uuid, int4, int8)
--   function public.profile_badges(uuid)
--   function private.claims_caller(uuid)
--   function private.event_member(uuid)
--   function public.store_catalogue(uuid)
--   function public.inventory_of(uuid)
--   function public.payment_orders_of(uuid, int4)
--   function public.profile_card(uuid, int4)
--   function private.assert_can_read_ledger(uuid)
--   function private.discord_member(text, int4, text)
--   function public.service_role_discord_member(text, int4, text)
--   function private.member_export(uuid)
--   function private.erase_profile(uuid)
--   function private.review_caller(uuid)
--   function private.book_review(uuid, int8, uuid, timestamptz, int4, uuid, float8, jsonb, text)

-- from supabase/sql/10_profiles.sql -----------------------------------------

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

-- from supabase/sql/12_roles.sql --------------------------------------------

-- Roles and permissions (issue 13): roles are rows of public.roles, what each may do is
-- public.role_permissions, and every privileged function asks private.assert_permission.
-- Role changes are admin RPCs, audited in public.role_changes, and reach access tokens at the
-- next refresh (sign-in and refresh read profiles.role into app_metadata.role).
--
-- Tables: public.roles, public.permissions, public.role_permissions, public.role_changes.
-- Tests: tests/sql/test_roles.py

------------------------------------------------------------------------------
-- Who may do what
------------------------------------------------------------------------------
create or replace function private.has_permission(p_permission text)
returns boolean
language sql
stable
security definer
set search_path = ''
as $$
  select private.is_service_role() or exists (
    select 1
      from public.profiles p
      join public.role_permissions rp on rp.role_slug = p.role
     where p.id = (select auth.uid())
       and rp.permission_slug = p_permission)
$$;

comment on function private.has_permission(text) is
  'True when the caller may do p_permission (a public.permissions slug): the backend always, a member when their '
  'role holds it. For policies and reads; privileged writes call private.assert_permission.';

revoke all on function private.has_permission(text) from public;

-- The read policies of staff tables ask it as the member (members may not read profiles.role: issue 18).
grant execute on function private.has_permission(text) to authenticated;

create or replace function public.my_permissions()
returns jsonb
language sql
stable
security invoker
set search_path = ''
as $$
  -- Through private.has_permission: members may not read profiles.role, their own included (issue 18).
  select jsonb_build_object('permissions', coalesce(jsonb_agg(pm.slug order by pm.slug), '[]'))
    from public.permissions pm
   where private.has_permission(pm.slug)
$$;

comment on function public.my_permissions() is
  'The permission slugs the signed-in member''s role holds: {permissions: [...]} (empty for a plain member). '
  'authenticated only.';

revoke all on function public.my_permissions() from public, anon, service_role;

grant execute on function public.my_permissions() to authenticated;

-- from supabase/sql/32_points.sql -------------------------------------------

------------------------------------------------------------------------------
-- Reading
------------------------------------------------------------------------------
create or replace function public.points_statement(
  profile_id uuid default null,
  size integer default 20,
  before_id bigint default null
)
returns jsonb
language plpgsql
stable
security invoker
set search_path = ''
as $$
declare
  v_profile uuid := coalesce(points_statement.profile_id, (select auth.uid()));
  v_balance bigint;
  v_entries jsonb;
begin
  if v_profile is null then
    raise exception 'profile_id is required' using errcode = 'XPBAD';
  end if;
  if points_statement.size is null or points_statement.size not between 1 and 100 then
    raise exception 'size must be 1 to 100' using errcode = 'XPBAD';
  end if;
  if not private.is_service_role() and v_profile is distinct from (select auth.uid()) then
    raise exception 'Members read only their own points' using errcode = '42501';
  end if;
  -- The balance after the newest points-ledger row (members may not read profiles.points of the table).
  select coalesce((select l.balance_after from public.points_ledger l
                    where l.profile_id = p.id order by l.id desc limit 1), 0)
    into v_balance from public.profiles p where p.id = v_profile;
  if not found then
    raise exception 'Unknown profile: %', v_profile using errcode = 'XPPRF';
  end if;
  select coalesce(jsonb_agg(jsonb_build_object(
           'id', l.id, 'kind', l.kind, 'amount', l.amount, 'balance_after', l.balance_after,
           'reason', l.reason, 'actor_id', l.actor_id, 'ref', l.ref,
           'created_at', to_char(l.created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))
           order by l.id desc), '[]')
    into v_entries
    from (select * from public.points_ledger l
           where l.profile_id = v_profile and (points_statement.before_id is null or l.id < points_statement.before_id)
           order by l.id desc limit points_statement.size) l;
  return jsonb_build_object(
    'profile_id', v_profile, 'balance', v_balance, 'entries', v_entries,
    'next_before_id', case when jsonb_array_length(v_entries) = points_statement.size
                           then (v_entries -> -1 ->> 'id')::bigint end);
end
$$;

comment on function public.points_statement(uuid, integer, bigint) is
  'A member''s points: {profile_id, balance, entries: [{id, kind, amount, balance_after, reason, actor_id, ref, '
  'created_at (UTC)}] newest first, next_before_id (pass as before_id for the next page, null at the end)}. '
  'profile_id defaults to the caller; size 1 to 100. Members read only their own (42501 otherwise); '
  'service_role reads anyone''s. Errors: XPBAD, XPPRF, 42501.';

revoke all on function public.points_statement(uuid, integer, bigint) from public, anon;

grant execute on function public.points_statement(uuid, integer, bigint) to service_role, authenticated;

-- from supabase/sql/33_badges.sql -------------------------------------------

create or replace function public.profile_badges(profile_id uuid)
returns jsonb
language plpgsql
stable
security invoker
set search_path = ''
as $$
declare
  v_uid uuid := (select auth.uid());
begin
  if profile_badges.profile_id is null then
    raise exception 'profile_id is required' using errcode = 'XPBAD';
  end if;
  -- As on the profile card (65_profile_card.sql): anon the public view, the backend every card, a member
  -- what private.can_see_profile allows; a card the caller may not see reads as unknown.
  if v_uid is null and pg_catalog.pg_has_role(current_user, 'service_role', 'member') then
    if not exists (select 1 from public.profiles p where p.id = profile_badges.profile_id) then
      raise exception 'Unknown profile: %', profile_badges.profile_id using errcode = 'XPPRF';
    end if;
  elsif v_uid is null then
    if not exists (select 1 from public.profiles p
                    where p.id = profile_badges.profile_id and p.leaderboard_visible
                      and p.profile_visibility = 'public') then
      raise exception 'Unknown profile: %', profile_badges.profile_id using errcode = 'XPPRF';
    end if;
  elsif not private.can_see_profile(profile_badges.profile_id, v_uid) then
    raise exception 'Unknown profile: %', profile_badges.profile_id using errcode = 'XPPRF';
  end if;
  return (
    select jsonb_build_object(
      'profile_id', profile_badges.profile_id,
      'counts', jsonb_build_object(
        'bronze', coalesce(sum(x.times) filter (where x.level = 'bronze'), 0),
        'silver', coalesce(sum(x.times) filter (where x.level = 'silver'), 0),
        'gold', coalesce(sum(x.times) filter (where x.level = 'gold'), 0)),
      'badges', coalesce(jsonb_agg(jsonb_build_object(
        'slug', x.slug, 'name', x.name, 'description', x.description, 'level', x.level, 'series', x.series,
        'times', x.times, 'first_awarded_at', x.first_at, 'last_awarded_at', x.last_at, 'subjects', x.subjects)
        order by x.last_at desc, x.slug) filter (where x.slug is not null), '[]'))
      from (
        select b.slug, b.name, b.description, a.level, b.series, count(*) as times,
               min(a.awarded_at) as first_at, max(a.awarded_at) as last_at,
               coalesce((array_agg(a.subject order by a.awarded_at desc, a.id desc)
                           filter (where a.subject <> ''))[1:10], '{}') as subjects
          from public.badge_awards a
          join public.badges b on b.slug = a.badge_slug
         where a.profile_id = profile_badges.profile_id
         group by b.slug, b.name, b.description, a.level, b.series
      ) x);
end
$$;

comment on function public.profile_badges(uuid) is
  'The badges a member holds: {profile_id, counts {bronze, silver, gold} (awards, a once-per-subject badge '
  'counting once per subject), badges [{slug, name, description, level, series, times (how many subjects or 1), '
  'first_awarded_at, last_awarded_at, subjects (the latest 10, text[])}] newest first}. Seen by whoever sees the '
  'profile card (profile_visibility, public.profile_card); XPPRF to anyone else. Errors: XPBAD, XPPRF.';

revoke all on function public.profile_badges(uuid) from public;

grant execute on function public.profile_badges(uuid) to anon, authenticated, service_role;

-- from supabase/sql/36_claims.sql -------------------------------------------

-- Member claims with review (issue 15): a member claims a claimable activity (note, evidence URL, when),
-- a reviewer approves it (award_xp keyed on the claim: approving twice credits once) or rejects it with
-- a reason; per-member claim limits; the review queue; what earns what (point_values).
--
-- Tables: public.activity_claims, public.activity_categories.
-- Tests: tests/sql/test_claims.py

------------------------------------------------------------------------------
-- Who is acting
------------------------------------------------------------------------------
create or replace function private.claims_caller(p_profile_id uuid, out actor_id uuid, out actor_role text)
language plpgsql
stable
security definer
set search_path = ''
as $$
begin
  -- The backend only when the claims say so and the request really runs as service_role (12_roles.sql).
  if private.is_service_role() then
    actor_role := 'service_role';
    actor_id := p_profile_id;
  elsif (select auth.uid()) is not null then
    actor_role := 'authenticated';
    actor_id := (select auth.uid());
    if p_profile_id is not null and p_profile_id <> actor_id then
      raise exception 'Members act only for themselves' using errcode = '42501';
    end if;
  else
    raise exception 'Sign in to claim activities' using errcode = '42501';
  end if;
  if actor_id is not null and not exists (select 1 from public.profiles p where p.id = actor_id) then
    raise exception 'Unknown profile: %', actor_id using errcode = 'XPPRF';
  end if;
end
$$;

comment on function private.claims_caller(uuid) is
  'Who is acting on claims: a member acts as auth.uid() (naming another profile raises 42501); service_role '
  'acts for p_profile_id (null: the backend itself); anon raises 42501; an unknown profile raises XPPRF.';

revoke all on function private.claims_caller(uuid) from public;

-- from supabase/sql/40_events.sql -------------------------------------------

create or replace function private.event_member(p_profile_id uuid)
returns uuid
language plpgsql
stable
security definer
set search_path = ''
as $$
-- The member an event call is for: auth.uid() for a member (naming another raises 42501), profile_id
-- named by service_role, null for anon.
begin
  if private.is_service_role() then
    return p_profile_id;
  elsif (select auth.uid()) is not null then
    if p_profile_id is not null and p_profile_id <> (select auth.uid()) then
      raise exception 'Members act only for themselves' using errcode = '42501';
    end if;
    return (select auth.uid());
  end if;
  return null;
end
$$;

comment on function private.event_member(uuid) is
  'Whom an event call is for: auth.uid() for a member (42501 when naming someone else), profile_id for '
  'service_role, null for anon.';

revoke all on function private.event_member(uuid) from public;

-- from supabase/sql/55_store.sql --------------------------------------------

------------------------------------------------------------------------------
-- Reading the store and the inventory
------------------------------------------------------------------------------
create or replace function public.store_catalogue(profile_id uuid default null)
returns jsonb
language plpgsql
stable
security invoker
set search_path = ''
as $$
declare
  v_profile uuid := coalesce(store_catalogue.profile_id, (select auth.uid()));
  v_bought jsonb := '{}';
begin
  -- Nested: anon (no profile named) never runs the inner test, which needs schema private.
  if v_profile is not null then
    if not private.is_service_role() and v_profile is distinct from (select auth.uid()) then
      raise exception 'Members read only their own purchases' using errcode = '42501';
    end if;
  end if;
  -- Anon holds no privilege on purchases: they are read only for a member.
  if v_profile is not null then
    select coalesce(jsonb_object_agg(sp.item_id::text, sp.n), '{}') into v_bought
      from (select sp.item_id, count(*) as n from public.store_purchases sp
             where sp.profile_id = v_profile and sp.status = 'completed' group by sp.item_id) sp;
  end if;
  return (
    select coalesce(jsonb_agg(jsonb_build_object(
             'slug', i.slug, 'name', i.name, 'description', i.description, 'category', i.category,
             'price_points', i.price_points, 'price_paise', i.price_paise, 'stock', i.stock,
             'per_member_limit', i.per_member_limit, 'image_url', i.image_url,
             'required_tier', i.required_tier, 'required_layer', i.required_layer,
             'required_layer_xp', i.required_layer_xp, 'delivery', i.delivery,
             'ends_at', to_char(i.ends_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
             'bought', coalesce((v_bought ->> i.id::text)::bigint, 0))
           order by i.category, coalesce(i.price_points, 0), i.slug), '[]')
      from public.store_items i
     where i.active and (i.starts_at is null or i.starts_at <= now()) and (i.ends_at is null or now() < i.ends_at)
  );
end
$$;

comment on function public.store_catalogue(uuid) is
  'Items on sale now: [{slug, name, description, category, price_points, price_paise (paise), stock (null: '
  'unlimited), per_member_limit, image_url, required_tier, required_layer, required_layer_xp, delivery, ends_at '
  '(UTC), bought (how many the member holds; 0 without a member)}]. profile_id defaults to the caller; members '
  'pass only their own (42501). Anyone may call it.';

revoke all on function public.store_catalogue(uuid) from public;

grant execute on function public.store_catalogue(uuid) to anon, authenticated, service_role;

create or replace function public.inventory_of(profile_id uuid default null)
returns jsonb
language plpgsql
stable
security invoker
set search_path = ''
as $$
declare
  v_profile uuid := coalesce(inventory_of.profile_id, (select auth.uid()));
begin
  if v_profile is null then
    raise exception 'profile_id is required' using errcode = 'XPBAD';
  end if;
  if not private.is_service_role() and v_profile is distinct from (select auth.uid()) then
    raise exception 'Members read only their own inventory' using errcode = '42501';
  end if;
  return jsonb_build_object(
    'profile_id', v_profile,
    'items', (select coalesce(jsonb_agg(jsonb_build_object(
                       'item', i.slug, 'name', i.name, 'category', i.category, 'quantity', inv.quantity,
                       'tool', i.tool_slug, 'rank_card_style', i.rank_card_style,
                       'acquired_at', to_char(inv.acquired_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))
                     order by inv.acquired_at, i.slug), '[]')
                from public.inventory inv join public.store_items i on i.id = inv.item_id
               where inv.profile_id = v_profile and inv.quantity > 0),
    'freezes_held', (select coalesce(max(s.freezes_held), 0) from public.streaks s where s.profile_id = v_profile),
    'rank_card_style', (select p.rank_card_style from public.profiles p where p.id = v_profile));
end
$$;

comment on function public.inventory_of(uuid) is
  'What a member owns: {profile_id, items: [{item, name, category, quantity, tool (unlocked tool slug or null), '
  'rank_card_style, acquired_at (UTC)}], freezes_held, rank_card_style}. profile_id defaults to the caller; '
  'members read only their own (42501); service_role anyone''s.';

revoke all on function public.inventory_of(uuid) from public, anon;

grant execute on function public.inventory_of(uuid) to authenticated, service_role;

-- from supabase/sql/57_payments.sql -----------------------------------------

------------------------------------------------------------------------------
-- Reading
------------------------------------------------------------------------------
create or replace function public.payment_orders_of(profile_id uuid default null, size integer default 20)
returns jsonb
language plpgsql
stable
security invoker
set search_path = ''
as $$
declare
  v_profile uuid := coalesce(payment_orders_of.profile_id, (select auth.uid()));
begin
  if v_profile is null then
    raise exception 'profile_id is required' using errcode = 'XPBAD';
  end if;
  if size is null or size not between 1 and 100 then
    raise exception 'size must be 1 to 100' using errcode = 'XPBAD';
  end if;
  if not private.is_service_role() and v_profile is distinct from (select auth.uid()) then
    raise exception 'Members read only their own orders' using errcode = '42501';
  end if;
  return (
    select coalesce(jsonb_agg(jsonb_build_object(
             'order_id', o.id, 'package', o.package_slug, 'item', i.slug, 'xp', o.xp, 'amount_paise', o.amount_paise,
             'currency', o.currency, 'razorpay_order_id', o.razorpay_order_id, 'status', o.status,
             'created_at', to_char(o.created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
             'expires_at', to_char(o.expires_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
             'payments', (select coalesce(jsonb_agg(jsonb_build_object(
                                   'payment_id', p.razorpay_payment_id, 'amount_paise', p.amount_paise,
                                   'refunded_paise', p.refunded_paise, 'status', p.status, 'xp_granted', p.xp_granted,
                                   'fulfilled', p.fulfilled) order by p.created_at), '[]')
                            from public.payments p where p.order_id = o.id))
           order by o.created_at desc), '[]')
      from (select * from public.payment_orders o where o.profile_id = v_profile
             order by o.created_at desc limit size) o
      left join public.store_items i on i.id = o.item_id
  );
end
$$;

comment on function public.payment_orders_of(uuid, integer) is
  'A member''s payment orders, newest first, at most size (1 to 100): [{order_id, package, item, xp, '
  'amount_paise, currency, razorpay_order_id, status, created_at, expires_at (UTC), payments: [{payment_id, '
  'amount_paise, refunded_paise, status, xp_granted, fulfilled}]}]. profile_id defaults to the caller; members '
  'read only their own (42501); service_role anyone''s.';

revoke all on function public.payment_orders_of(uuid, integer) from public, anon;

grant execute on function public.payment_orders_of(uuid, integer) to authenticated, service_role;

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
  if v_uid is null and pg_catalog.pg_has_role(current_user, 'service_role', 'member') then
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
  'member every card. Any other card is XPPRF (unknown profile, as if absent). Errors: XPBAD, XPPRF.';

revoke all on function public.profile_card(uuid, integer) from public;

grant execute on function public.profile_card(uuid, integer) to anon, authenticated, service_role;

-- from supabase/sql/70_timeline.sql -----------------------------------------

-- XP timeline and dashboard statistics, read from the ledger as the caller.
--
-- Tables: none of its own (reads public.xp_ledger).
-- Tests: tests/sql/test_timeline.py

------------------------------------------------------------------------------
-- Points timeline and dashboard stats (issue 4; the career-points seed)
--
-- Read from the ledger as the caller: members see only their own rows (the
-- ledger's policy), service_role sees everyone's. Periods are local days,
-- weeks (Monday first) or months in the profile's time zone.
------------------------------------------------------------------------------
create or replace function private.assert_can_read_ledger(p_profile_id uuid)
returns text
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_tz text;
begin
  if p_profile_id is null then
    raise exception 'profile_id is required' using errcode = 'XPBAD';
  end if;
  if not private.is_service_role() and p_profile_id is distinct from (select auth.uid()) then
    raise exception 'Members can read only their own XP history' using errcode = '42501';
  end if;
  select p.time_zone into v_tz from public.profiles p where p.id = p_profile_id;
  if not found then
    raise exception 'Unknown profile: %', p_profile_id using errcode = 'XPPRF';
  end if;
  return v_tz;
end
$$;

comment on function private.assert_can_read_ledger(uuid) is
  'The time zone of a profile whose ledger the caller may read (their own, or any for service_role); '
  'raises 42501 for someone else''s, XPPRF for an unknown profile. A definer: members may not read '
  'profiles.time_zone (issue 18), and the check above admits only the owner and the backend.';

revoke all on function private.assert_can_read_ledger(uuid) from public;

grant execute on function private.assert_can_read_ledger(uuid) to authenticated, service_role;

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
  if not private.is_service_role() and (select auth.uid()) is distinct from p_profile_id then
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
  if private.is_service_role() then
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

-- from supabase/sql/95_reviews.sql ------------------------------------------

-- Resume reviews: professionals and their availability, members' review requests, the workflow
-- (requested -> matched -> scheduled -> completed, or cancelled, no_show, rescheduled) with actor and
-- time, notifications to both sides, XP on completion, feedback both ways and calendar feeds
-- (one session's details for its .ics: review_session in 96_review_matching.sql).
-- Professionals' availability, matching, booking (the no-double-booking path) and reviewer
-- statistics are in 96_review_matching.sql.
--
-- Tables: public.review_specialties, public.professionals, public.review_requests,
-- public.review_sessions, public.review_feedback, private.review_events,
-- private.review_calendar_tokens.
-- Tests: tests/sql/test_reviews.py
--
-- Who acts: every RPC takes the acting profile from the caller. A member (authenticated) acts as
-- themselves; the bot (service_role) names the member it acts for; service_role without a profile is
-- the backend itself (the periodic matcher) and counts as an admin. Admins are profiles with role admin.
--
-- SQLSTATEs of this feature (xpbase/errors.py):
--   XPRTZ  unknown time zone              XPRAV  availability interval not valid
--   XPRSP  unknown specialty              XPRNP  no active professional offers that specialty
--   XPRVO  the member has an open request XPRVS  the request is not in a state for that step
--   XPRVT  a time in the past, or a session that has not started
--   XPRVC  the slot is taken              XPRVK  the professional is at weekly capacity
--   XPRVP  unknown or inactive professional
--   XPRVQ  unknown review request         XPRVR  rating outside 1-5
--   XPRVF  feedback already given         XPRCT  unknown calendar token

------------------------------------------------------------------------------
-- Callers and checks
------------------------------------------------------------------------------
create or replace function private.review_caller(
  p_profile_id uuid,
  out actor_id uuid,
  out actor_role text,
  out is_admin boolean
)
language plpgsql
stable
security definer
set search_path = ''
as $$
begin
  if private.is_service_role() then
    actor_role := 'service_role';
    actor_id := p_profile_id;
    if actor_id is null then
      is_admin := true;
      return;
    end if;
  elsif (select auth.uid()) is not null then
    actor_role := 'authenticated';
    actor_id := (select auth.uid());
    if p_profile_id is not null and p_profile_id <> actor_id then
      raise exception 'Members act only for themselves' using errcode = '42501';
    end if;
  else
    raise exception 'Sign in to use resume reviews' using errcode = '42501';
  end if;
  select p.role = 'admin' into is_admin from public.profiles p where p.id = actor_id;
  if not found then
    raise exception 'Unknown profile: %', actor_id using errcode = 'XPPRF';
  end if;
end
$$;

comment on function private.review_caller(uuid) is
  'Who is acting on resume reviews: (profile, role, is_admin). A member acts as auth.uid() (naming another '
  'profile raises 42501); service_role acts for p_profile_id, or as the backend (an admin) when it is null; '
  'anon raises 42501; an unknown profile raises XPPRF.';

revoke all on function private.review_caller(uuid) from public;

-- from supabase/sql/96_review_matching.sql ----------------------------------

create or replace function private.book_review(
  p_actor_id uuid,
  p_request_id bigint,
  p_professional_id uuid,
  p_starts_at timestamptz,
  p_session_minutes integer,
  p_run_id uuid,
  p_score double precision,
  p_terms jsonb,
  p_meeting_url text
)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_actor_id uuid := private.review_admin(p_actor_id);
  v_actor_role text := case when private.is_service_role() then 'service_role' else 'authenticated' end;
  v_req public.review_requests;
  v_pro public.professionals;
  v_slot tstzrange;
  v_match_id bigint;
  v_session_id bigint;
  v_data jsonb;
begin
  perform private.assert_time(p_starts_at, 'starts_at', interval '366 days');
  if p_session_minutes is null or p_session_minutes not between 15 and 240 then
    raise exception 'session_minutes must be 15 to 240' using errcode = 'XPBAD';
  end if;
  if p_starts_at is null or p_starts_at < now() then
    raise exception 'That slot is in the past' using errcode = 'XPRVT';
  end if;
  if p_run_id is null or p_terms is null or jsonb_typeof(p_terms) <> 'object' or p_score is null then
    raise exception 'A booking needs run_id, score and score terms' using errcode = 'XPBAD';
  end if;
  v_slot := tstzrange(p_starts_at, p_starts_at + make_interval(mins => p_session_minutes), '[)');
  select * into v_req from public.review_requests r where r.id = p_request_id for update;
  if not found then
    raise exception 'Unknown review request: %', p_request_id using errcode = 'XPRVQ';
  end if;
  if v_req.status <> 'requested' then
    raise exception 'This request is % and cannot be booked', v_req.status using errcode = 'XPRVS';
  end if;
  -- One booking per professional at a time, so that the capacity count holds.
  select * into v_pro from public.professionals p where p.id = p_professional_id for update;
  if not found or not v_pro.active then
    raise exception 'Unknown or inactive professional: %', p_professional_id using errcode = 'XPRVP';
  end if;
  if private.used_capacity(v_pro.id, p_starts_at) >= v_pro.weekly_capacity then
    raise exception '% is at weekly capacity (%)', v_pro.name, v_pro.weekly_capacity using errcode = 'XPRVK';
  end if;
  if not private.request_free(v_req.id, lower(v_slot), upper(v_slot)) @> v_slot then
    raise exception 'That slot is outside the member''s free preferred times' using errcode = 'XPRVC';
  end if;
  if not private.professional_free(v_pro.id, lower(v_slot), upper(v_slot)) @> v_slot then
    raise exception 'That slot is not free for % any more', v_pro.name using errcode = 'XPRVC';
  end if;
  insert into private.review_matches (run_id, request_id, professional_id, score, terms, slot, actor_id, actor_role)
  values (p_run_id, v_req.id, v_pro.id, p_score, p_terms, v_slot, v_actor_id, v_actor_role)
  returning id into v_match_id;
  begin
    insert into public.review_sessions (request_id, professional_id, member_id, match_id, during, meeting_url)
    values (v_req.id, v_pro.id, v_req.member_id, v_match_id, v_slot, nullif(p_meeting_url, ''))
    returning id into v_session_id;
  exception when exclusion_violation then
    raise exception 'That slot was just booked by someone else' using errcode = 'XPRVC';
  end;
  update public.review_requests r set status = 'scheduled', updated_at = now() where r.id = v_req.id;
  perform private.review_event(v_req.id, null, 'requested', 'matched', v_actor_id, v_actor_role,
                               'match ' || v_match_id || ', score ' || round(p_score::numeric, 4));
  perform private.review_event(v_req.id, v_session_id, 'matched', 'scheduled', v_actor_id, v_actor_role, '');
  v_data := jsonb_build_object('request_id', v_req.id, 'session_id', v_session_id,
                               'starts_at', private.utc_text(lower(v_slot)), 'ends_at', private.utc_text(upper(v_slot)));
  perform private.notify_review(v_req.member_id, 'review_scheduled', 'Resume review scheduled with ' || v_pro.name, v_data);
  perform private.notify_review(v_pro.profile_id, 'review_scheduled', 'New resume review: ' || v_req.target_role, v_data);
  return private.review_session_json(v_session_id) || jsonb_build_object('match_id', v_match_id);
end
$$;

comment on function private.book_review(uuid, bigint, uuid, timestamptz, integer, uuid, double precision, jsonb, text) is
  'Implementation of public.admin_book_review.';

revoke all on function private.book_review(uuid, bigint, uuid, timestamptz, integer, uuid, double precision, jsonb, text) from public;

grant execute on function private.book_review(uuid, bigint, uuid, timestamptz, integer, uuid, double precision, jsonb, text)
  to authenticated, service_role;
