-- store_catalogue: anon naming a profile_id is refused with 42501 "Sign in to read a member's purchases" instead of the private schema's permission error (anon has no usage on schema private)
--
-- Written by `xpbase migration new` from the feature files in supabase/sql/:
-- the function and trigger definitions that changed since the last migration.
-- Edit the feature files, not this file; landed migrations never change.
-- Changed:
--   function public.store_catalogue(uuid)

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
  -- Anon naming a member is told to sign in (the backend, also without auth.uid(), runs as service_role),
  -- before the member test, which needs schema private (anon has no usage on it).
  if v_profile is not null and (select auth.uid()) is null
     and not pg_catalog.pg_has_role(current_user, 'service_role', 'member') then
    raise exception 'Sign in to read a member''s purchases' using errcode = '42501';
  end if;
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
  'pass only their own; service_role names anyone. Anyone may call it; anon naming no profile gets every bought '
  '0. Errors: 42501 when anon names a profile (''Sign in to read a member''''s purchases''; PostgREST answers '
  'anon 401) or a member names another (''Members read only their own purchases'').';

revoke all on function public.store_catalogue(uuid) from public;

grant execute on function public.store_catalogue(uuid) to anon, authenticated, service_role;
