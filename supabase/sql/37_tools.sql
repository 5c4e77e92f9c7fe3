-- Tools (issue 15, item 5; the Discord Bot Hub's tools API): a catalogue of tools (every tier unlock, plus
-- tools an admin adds), per-member access decided in one place (private.has_tool: by tier, by a store item
-- in the inventory, or by an admin unlock with who and why), and a tool_unlocked notification when a member
-- newly gains a tool.
--
-- Tables: public.tools, public.tool_unlocks.
-- Tests: tests/sql/test_tools.py

------------------------------------------------------------------------------
-- Who holds what
------------------------------------------------------------------------------

create or replace function private.tool_sources(p_profile_id uuid, p_slug text)
returns jsonb
language sql
stable
security definer
set search_path = ''
as $$
  -- Every way the member holds the tool right now, whether or not the tool is active.
  select coalesce(jsonb_agg(s.src order by s.ord), '[]')
    from (
      select 1 as ord, jsonb_build_object('source', 'tier', 'tier', t.slug, 'tier_name', t.name,
                                          'min_level', t.min_level) as src
        from public.tier_unlocks u
        join public.tiers t on t.slug = u.tier_slug
        join public.profiles p on p.id = p_profile_id and t.min_level <= p.level
       where u.slug = p_slug
      union all
      select 2, jsonb_build_object('source', 'store', 'item', i.slug, 'item_name', i.name, 'item_id', i.id,
                                   'quantity', inv.quantity, 'acquired_at', private.utc_text(inv.acquired_at))
        from public.inventory inv
        join public.store_items i on i.id = inv.item_id
       where inv.profile_id = p_profile_id and i.tool_slug = p_slug and inv.quantity > 0
      union all
      select 3, jsonb_build_object('source', 'admin', 'unlock_id', tu.id, 'unlocked_by', tu.unlocked_by,
                                   'reason', tu.reason, 'unlocked_at', private.utc_text(tu.unlocked_at))
        from public.tool_unlocks tu
       where tu.profile_id = p_profile_id and tu.tool_slug = p_slug and tu.revoked_at is null
    ) s
$$;
comment on function private.tool_sources(uuid, text) is
  'How a member holds a tool right now: [{source: tier, tier, tier_name, min_level} | {source: store, item, '
  'item_name, item_id, quantity, acquired_at} | {source: admin, unlock_id, unlocked_by, reason, unlocked_at}] '
  '(times UTC text); [] when they hold it by none. Ignores whether the tool is active (private.has_tool does not).';
revoke all on function private.tool_sources(uuid, text) from public;

create or replace function private.has_tool(p_profile_id uuid, p_slug text)
returns boolean
language sql
stable
security definer
set search_path = ''
as $$
  select exists (select 1 from public.tools t where t.slug = p_slug and t.active)
     and (exists (select 1 from public.tier_unlocks u
                    join public.tiers t on t.slug = u.tier_slug
                    join public.profiles p on p.id = p_profile_id and t.min_level <= p.level
                   where u.slug = p_slug)
          or exists (select 1 from public.inventory inv
                       join public.store_items i on i.id = inv.item_id
                      where inv.profile_id = p_profile_id and i.tool_slug = p_slug and inv.quantity > 0)
          or exists (select 1 from public.tool_unlocks tu
                      where tu.profile_id = p_profile_id and tu.tool_slug = p_slug and tu.revoked_at is null))
$$;
comment on function private.has_tool(uuid, text) is
  'The access check other features call: true when the tool is in the catalogue and active, and the member '
  'holds it by at least one of: their level reaches a tier that unlocks it (public.tier_unlocks; access '
  'follows the current level, so a correction below the tier takes it away until the tier is reached again); '
  'a store item with that tool_slug in their inventory with quantity > 0; an unrevoked admin unlock '
  '(public.tool_unlocks). False for an unknown tool or profile; never raises.';
revoke all on function private.has_tool(uuid, text) from public;

create or replace function private.tools_member(p_profile_id uuid)
returns uuid
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_id uuid;
begin
  if private.is_service_role() then
    v_id := p_profile_id;
    if v_id is null then
      raise exception 'Name the member (profile_id)' using errcode = 'XPBAD';
    end if;
  -- A signed-in member is auth.uid(), whatever the role claim says (a custom access token hook may name
  -- a custom role), as everywhere else (private.claims_caller).
  elsif (select auth.uid()) is not null then
    v_id := (select auth.uid());
    if p_profile_id is not null and p_profile_id <> v_id then
      raise exception 'Members see only their own tools' using errcode = '42501';
    end if;
  else
    raise exception 'Sign in to see your tools' using errcode = '42501';
  end if;
  if not exists (select 1 from public.profiles p where p.id = v_id) then
    raise exception 'Unknown profile: %', v_id using errcode = 'XPPRF';
  end if;
  return v_id;
end
$$;
comment on function private.tools_member(uuid) is
  'Whose tools a call is about: a member (auth.uid(), whatever the role claim) is always themselves (naming '
  'another raises 42501); service_role '
  'names profile_id (null raises XPBAD); anon raises 42501; an unknown profile raises XPPRF.';
revoke all on function private.tools_member(uuid) from public;

create or replace function private.member_has_tool(p_tool text, p_profile_id uuid)
returns boolean
language sql
stable
security definer
set search_path = ''
as $$
  select private.has_tool(private.tools_member(p_profile_id), p_tool)
$$;
comment on function private.member_has_tool(text, uuid) is 'Implementation of public.has_tool.';
revoke all on function private.member_has_tool(text, uuid) from public;
grant execute on function private.member_has_tool(text, uuid) to authenticated, service_role;

create or replace function public.has_tool(tool text, profile_id uuid default null)
returns boolean
language sql
stable
security invoker
set search_path = ''
as $$
  select private.member_has_tool(has_tool.tool, has_tool.profile_id)
$$;
comment on function public.has_tool(text, uuid) is
  'Whether a member may use a tool (rules: private.has_tool): a member asks for themselves, service_role names '
  'profile_id. False for an unknown or inactive tool. Errors: XPPRF unknown profile, XPBAD no profile named '
  '(service_role), 42501 anon or another member.';
revoke all on function public.has_tool(text, uuid) from public, anon;
grant execute on function public.has_tool(text, uuid) to authenticated, service_role;

------------------------------------------------------------------------------
-- The catalogue
------------------------------------------------------------------------------

create or replace function public.tool_catalogue(include_inactive boolean default false, tool text default null)
returns jsonb
language sql
stable
security invoker
set search_path = ''
as $$
  select coalesce(jsonb_agg(jsonb_build_object(
           'slug', t.slug, 'name', t.name, 'description', t.description, 'active', t.active,
           'tiers', coalesce(x.tiers, '[]'),
           'store_items', coalesce((select jsonb_agg(jsonb_build_object('item', i.slug, 'name', i.name,
                                                                        'price_points', i.price_points,
                                                                        'price_paise', i.price_paise) order by i.id)
                                      from public.store_items i where i.tool_slug = t.slug and i.active), '[]'))
           order by x.min_level nulls last, t.slug), '[]')
    from public.tools t
   cross join lateral (
     select min(ti.min_level) as min_level,
            jsonb_agg(jsonb_build_object('tier', ti.slug, 'tier_name', ti.name, 'min_level', ti.min_level)
                      order by ti.min_level) as tiers
       from public.tier_unlocks u join public.tiers ti on ti.slug = u.tier_slug
      where u.slug = t.slug) x
   where (t.active or coalesce(tool_catalogue.include_inactive, false))
     and (tool_catalogue.tool is null or t.slug = tool_catalogue.tool)
$$;
comment on function public.tool_catalogue(boolean, text) is
  'The tool catalogue: [{slug, name, description, active, tiers: [{tier, tier_name, min_level}] (reaching any '
  'unlocks it), store_items: [{item, name, price_points, price_paise}] (active items that sell it)}], by the '
  'lowest tier that unlocks each (tools no tier unlocks last), then slug. Any tool may also be unlocked by an '
  'admin. Active tools only unless include_inactive; only the tool named when tool is given. Anyone may read it.';
revoke all on function public.tool_catalogue(boolean, text) from public;
grant execute on function public.tool_catalogue(boolean, text) to anon, authenticated, service_role;

create or replace function private.my_tools(p_profile_id uuid)
returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_id uuid := private.tools_member(p_profile_id);
begin
  return (
    select coalesce(jsonb_agg(jsonb_build_object('slug', t.slug, 'name', t.name, 'description', t.description,
                                                 'sources', s.sources) order by t.slug), '[]')
      from public.tools t
     cross join lateral (select private.tool_sources(v_id, t.slug) as sources) s
     where t.active and jsonb_array_length(s.sources) > 0);
end
$$;
comment on function private.my_tools(uuid) is 'Implementation of public.my_tools.';
revoke all on function private.my_tools(uuid) from public;
grant execute on function private.my_tools(uuid) to authenticated, service_role;

create or replace function public.my_tools(profile_id uuid default null)
returns jsonb
language sql
stable
security invoker
set search_path = ''
as $$
  select private.my_tools(my_tools.profile_id)
$$;
comment on function public.my_tools(uuid) is
  'The active tools a member may use, each with how they hold it: [{slug, name, description, sources: '
  '[private.tool_sources]}] by slug. A member reads their own; service_role names profile_id. Errors: XPPRF, '
  'XPBAD (service_role named nobody), 42501.';
revoke all on function public.my_tools(uuid) from public, anon;
grant execute on function public.my_tools(uuid) to authenticated, service_role;

------------------------------------------------------------------------------
-- Notifying newly gained access
------------------------------------------------------------------------------

create or replace function private.notify_tool_unlocked(p_profile_id uuid, p_slug text, p_how jsonb)
returns void
language sql
volatile
security definer
set search_path = ''
as $$
  insert into public.notifications (profile_id, kind, title, body, data)
  select p_profile_id, 'tool_unlocked', 'Tool unlocked: ' || t.name, t.description,
         jsonb_build_object('tool', t.slug, 'name', t.name, 'how', p_how)
    from public.tools t
   where t.slug = p_slug and t.active
$$;
comment on function private.notify_tool_unlocked(uuid, text, jsonb) is
  'Writes one tool_unlocked notification {tool, name, how: the source just gained} for an active tool; nothing '
  'for an unknown or inactive one. Callers decide that the access is new.';
revoke all on function private.notify_tool_unlocked(uuid, text, jsonb) from public;

create or replace function private.tg_notifications__tier_tools()
returns trigger
language plpgsql
volatile
security definer
set search_path = ''
as $$
-- A tier_up notification (30_award.sql) lists what the tiers passed unlock: each of those tools the member
-- did not hold before (by a lower tier, the store or an admin) is newly gained. Firing on the tier_up row
-- rather than in apply_xp keeps the award path untouched; the trigger's WHEN skips every other kind.
declare
  v_before_level integer := coalesce((select t.min_level from public.tiers t
                                      where t.slug = new.data ->> 'tier_before'), 0);
  v_slug text;
begin
  for v_slug in
    select distinct u ->> 'slug' from jsonb_array_elements(coalesce(new.data -> 'unlocks', '[]')) u
  loop
    if not exists (select 1 from jsonb_array_elements(private.tool_sources(new.profile_id, v_slug)) s
                    where s ->> 'source' <> 'tier' or (s ->> 'min_level')::integer <= v_before_level) then
      perform private.notify_tool_unlocked(new.profile_id, v_slug,
                                           jsonb_build_object('source', 'tier', 'tier', new.data ->> 'tier'));
    end if;
  end loop;
  return null;
end
$$;
comment on function private.tg_notifications__tier_tools() is
  'After a tier_up notification: one tool_unlocked per unlocked tool the member did not already hold.';
revoke all on function private.tg_notifications__tier_tools() from public;

drop trigger if exists _500_tier_tools on public.notifications;
create trigger _500_tier_tools
  after insert on public.notifications
  for each row when (new.kind = 'tier_up')
  execute function private.tg_notifications__tier_tools();

create or replace function private.tg_inventory__tool_unlocked()
returns trigger
language plpgsql
volatile
security definer
set search_path = ''
as $$
-- A tool item reaching the inventory (a purchase, a fulfilled order) is newly gained access unless the
-- member already held the tool some other way.
declare
  v_item public.store_items;
begin
  if new.quantity <= 0 or (tg_op = 'UPDATE' and old.quantity > 0) then
    return null;
  end if;
  select * into v_item from public.store_items i where i.id = new.item_id;
  if v_item.tool_slug is null then
    return null;
  end if;
  if not exists (select 1 from jsonb_array_elements(private.tool_sources(new.profile_id, v_item.tool_slug)) s
                  where s ->> 'source' <> 'store' or (s ->> 'item_id')::bigint <> new.item_id) then
    perform private.notify_tool_unlocked(new.profile_id, v_item.tool_slug,
                                         jsonb_build_object('source', 'store', 'item', v_item.slug));
  end if;
  return null;
end
$$;
comment on function private.tg_inventory__tool_unlocked() is
  'After an inventory row gains quantity from 0: tool_unlocked when its item sells a tool the member did not '
  'already hold.';
revoke all on function private.tg_inventory__tool_unlocked() from public;

drop trigger if exists _500_tool_unlocked on public.inventory;
create trigger _500_tool_unlocked
  after insert or update of quantity on public.inventory
  for each row execute function private.tg_inventory__tool_unlocked();

create or replace function private.tg_tools__register()
returns trigger
language plpgsql
volatile
security definer
set search_path = ''
as $$
-- Keeps the catalogue whole: a tier unlock or a store item naming a tool not yet catalogued adds it, with
-- the unlock's (or item's) name and description. Existing tools are left as an admin saved them.
begin
  if tg_table_name = 'tier_unlocks' then
    insert into public.tools (slug, name, description)
    values (new.slug, new.name, new.description) on conflict (slug) do nothing;
  elsif new.tool_slug is not null then
    insert into public.tools (slug, name, description)
    values (new.tool_slug, new.name, left(new.description, 2000)) on conflict (slug) do nothing;
  end if;
  return null;
end
$$;
comment on function private.tg_tools__register() is
  'After a tier_unlocks or store_items row is written: catalogues its tool (public.tools) if it is new.';
revoke all on function private.tg_tools__register() from public;

drop trigger if exists _500_register_tool on public.tier_unlocks;
create trigger _500_register_tool
  after insert or update of slug on public.tier_unlocks
  for each row execute function private.tg_tools__register();
drop trigger if exists _500_register_tool on public.store_items;
create trigger _500_register_tool
  after insert or update of tool_slug on public.store_items
  for each row execute function private.tg_tools__register();

------------------------------------------------------------------------------
-- Admin: the catalogue and unlocks
------------------------------------------------------------------------------

create or replace function private.admin_save_tool(p_slug text, p_name text, p_description text, p_active boolean)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_actor record := private.assert_permission('manage_tools');
begin
  if p_slug is null or p_slug !~ '^[a-z][a-z0-9_]{0,63}$' then
    raise exception 'slug is 1 to 64 lowercase letters, digits or _, starting with a letter' using errcode = 'XPBAD';
  end if;
  if p_name is null or length(trim(p_name)) not between 1 and 100 then
    raise exception 'name is 1 to 100 characters' using errcode = 'XPBAD';
  end if;
  if length(coalesce(p_description, '')) > 2000 then
    raise exception 'description is at most 2000 characters' using errcode = 'XPBAD';
  end if;
  insert into public.tools as t (slug, name, description, active, updated_by)
  values (p_slug, trim(p_name), coalesce(p_description, ''), coalesce(p_active, true), v_actor.actor_id)
  on conflict (slug) do update
    set name = excluded.name, description = excluded.description, active = excluded.active,
        updated_at = now(), updated_by = excluded.updated_by;
  return public.tool_catalogue(true, p_slug) -> 0;
end
$$;
comment on function private.admin_save_tool(text, text, text, boolean) is 'Implementation of public.admin_save_tool.';
revoke all on function private.admin_save_tool(text, text, text, boolean) from public;
grant execute on function private.admin_save_tool(text, text, text, boolean) to authenticated, service_role;

create or replace function public.admin_save_tool(
  slug text, name text, description text default '', active boolean default true
)
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.admin_save_tool(admin_save_tool.slug, admin_save_tool.name, admin_save_tool.description,
                                 admin_save_tool.active)
$$;
comment on function public.admin_save_tool(text, text, text, boolean) is
  'Adds or changes a catalogue tool (slug ^[a-z][a-z0-9_]{0,63}$, name 1-100 characters, description <= 2000, '
  'active: an inactive tool grants nobody access). Needs manage_tools (admins). Answers the tool as '
  'tool_catalogue lists it. Errors: XPBAD, 42501.';
revoke all on function public.admin_save_tool(text, text, text, boolean) from public, anon;
grant execute on function public.admin_save_tool(text, text, text, boolean) to authenticated, service_role;

create or replace function private.tool_unlock_json(p_id bigint)
returns jsonb
language sql
stable
security definer
set search_path = ''
as $$
  select jsonb_build_object(
    'id', tu.id, 'profile_id', tu.profile_id, 'tool', tu.tool_slug, 'unlocked_by', tu.unlocked_by,
    'unlocked_by_role', tu.unlocked_by_role, 'reason', tu.reason, 'unlocked_at', private.utc_text(tu.unlocked_at),
    'revoked_by', tu.revoked_by, 'revoke_reason', tu.revoke_reason, 'revoked_at', private.utc_text(tu.revoked_at),
    'has_tool', private.has_tool(tu.profile_id, tu.tool_slug))
    from public.tool_unlocks tu where tu.id = p_id
$$;
comment on function private.tool_unlock_json(bigint) is
  'One admin unlock: {id, profile_id, tool, unlocked_by, unlocked_by_role, reason, unlocked_at, revoked_by, '
  'revoke_reason, revoked_at (UTC text or null), has_tool (the member''s access now, by any source)}.';
revoke all on function private.tool_unlock_json(bigint) from public;

create or replace function private.admin_tool_access_args(p_profile_id uuid, p_slug text, p_reason text)
returns void
language plpgsql
stable
security definer
set search_path = ''
as $$
begin
  if p_reason is null or length(trim(p_reason)) not between 1 and 500 then
    raise exception 'A reason of 1 to 500 characters is needed' using errcode = 'XPBAD';
  end if;
  if p_profile_id is null or not exists (select 1 from public.profiles p where p.id = p_profile_id) then
    raise exception 'Unknown profile: %', coalesce(p_profile_id::text, 'null') using errcode = 'XPPRF';
  end if;
  if p_slug is null or not exists (select 1 from public.tools t where t.slug = p_slug) then
    raise exception 'Unknown tool: %', coalesce(left(p_slug, 64), 'null') using errcode = 'XPTOL';
  end if;
end
$$;
comment on function private.admin_tool_access_args(uuid, text, text) is
  'Checks an unlock or revocation''s arguments: reason 1-500 characters (XPBAD), a known profile (XPPRF), a '
  'catalogued tool (XPTOL).';
revoke all on function private.admin_tool_access_args(uuid, text, text) from public;

create or replace function private.admin_unlock_tool(p_profile_id uuid, p_slug text, p_reason text)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_actor record := private.assert_permission('manage_tools');
  v_had boolean;
  v_id bigint;
begin
  perform private.admin_tool_access_args(p_profile_id, p_slug, p_reason);
  -- One unlock of one member's tool at a time: a second unlock finds the first.
  perform pg_advisory_xact_lock(hashtextextended('tool' || chr(31) || p_profile_id::text || chr(31) || p_slug, 0));
  select tu.id into v_id from public.tool_unlocks tu
   where tu.profile_id = p_profile_id and tu.tool_slug = p_slug and tu.revoked_at is null;
  if v_id is not null then
    return private.tool_unlock_json(v_id);
  end if;
  v_had := private.has_tool(p_profile_id, p_slug);
  insert into public.tool_unlocks (profile_id, tool_slug, unlocked_by, unlocked_by_role, reason)
  values (p_profile_id, p_slug, v_actor.actor_id, v_actor.actor_role, trim(p_reason))
  returning id into v_id;
  if not v_had then
    perform private.notify_tool_unlocked(p_profile_id, p_slug,
                                         jsonb_build_object('source', 'admin', 'reason', trim(p_reason)));
  end if;
  return private.tool_unlock_json(v_id);
end
$$;
comment on function private.admin_unlock_tool(uuid, text, text) is 'Implementation of public.admin_unlock_tool.';
revoke all on function private.admin_unlock_tool(uuid, text, text) from public;
grant execute on function private.admin_unlock_tool(uuid, text, text) to authenticated, service_role;

create or replace function public.admin_unlock_tool(profile_id uuid, tool text, reason text)
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.admin_unlock_tool(admin_unlock_tool.profile_id, admin_unlock_tool.tool, admin_unlock_tool.reason)
$$;
comment on function public.admin_unlock_tool(uuid, text, text) is
  'Unlocks a tool for a member, recording who (the caller; service_role acting for nobody leaves it null) and '
  'why (reason, 1-500 characters). Unlocking an unrevoked unlock again answers it unchanged. tool_unlocked '
  'is sent when the member did not hold the tool before. Needs manage_tools (admins). Answers the unlock '
  '(private.tool_unlock_json). Errors: XPTOL unknown tool, XPPRF unknown profile, XPBAD reason, 42501.';
revoke all on function public.admin_unlock_tool(uuid, text, text) from public, anon;
grant execute on function public.admin_unlock_tool(uuid, text, text) to authenticated, service_role;

create or replace function private.admin_revoke_tool(p_profile_id uuid, p_slug text, p_reason text)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_actor record := private.assert_permission('manage_tools');
  v_id bigint;
begin
  perform private.admin_tool_access_args(p_profile_id, p_slug, p_reason);
  perform pg_advisory_xact_lock(hashtextextended('tool' || chr(31) || p_profile_id::text || chr(31) || p_slug, 0));
  update public.tool_unlocks tu
     set revoked_at = now(), revoked_by = v_actor.actor_id, revoked_by_role = v_actor.actor_role,
         revoke_reason = trim(p_reason)
   where tu.profile_id = p_profile_id and tu.tool_slug = p_slug and tu.revoked_at is null
  returning tu.id into v_id;
  if v_id is null then
    raise exception 'No admin unlock of % for this member to revoke', p_slug using errcode = 'XPTLN';
  end if;
  return private.tool_unlock_json(v_id);
end
$$;
comment on function private.admin_revoke_tool(uuid, text, text) is 'Implementation of public.admin_revoke_tool.';
revoke all on function private.admin_revoke_tool(uuid, text, text) from public;
grant execute on function private.admin_revoke_tool(uuid, text, text) to authenticated, service_role;

create or replace function public.admin_revoke_tool(profile_id uuid, tool text, reason text)
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.admin_revoke_tool(admin_revoke_tool.profile_id, admin_revoke_tool.tool, admin_revoke_tool.reason)
$$;
comment on function public.admin_revoke_tool(uuid, text, text) is
  'Revokes a member''s admin unlock of a tool, recording who and why (reason 1-500 characters); the unlock row '
  'stays as the audit trail. Access by tier or store is not revoked (has_tool in the answer says whether the '
  'member still holds the tool). Needs manage_tools (admins). Answers the unlock. Errors: XPTLN no unrevoked '
  'admin unlock, XPTOL, XPPRF, XPBAD, 42501.';
revoke all on function public.admin_revoke_tool(uuid, text, text) from public, anon;
grant execute on function public.admin_revoke_tool(uuid, text, text) to authenticated, service_role;
