-- The store: items as data, bought with points in one function (price, requirements, per-member limit,
-- stock and the points debit in one transaction, idempotent by key, never oversold), and what a purchase
-- grants, decided here (streak freezes within the maximum, cosmetics and tools into the inventory, a rank
-- card style, or a pending redemption a person fulfils: 56_redemptions.sql).
--
-- Lock order, everywhere: redemption, then item, then profile (awards lock only the profile).
--
-- Tables: public.store_items, public.store_purchases, public.inventory.
-- Tests: tests/sql/test_store.py

------------------------------------------------------------------------------
-- Rules of an item
------------------------------------------------------------------------------

create or replace function private.check_item(p_item public.store_items, p_profile_id uuid, p_quantity integer)
returns void
language plpgsql
stable
security definer
set search_path = ''
as $$
-- Raises the refusal for a member who may not buy p_quantity of the item now: XPINA inactive or outside
-- its window, XPTIR tier or layer too low, XPLIM the member's limit reached, XPSTK sold out, XPFRZ more
-- streak freezes than the check-in rule lets a member hold.
declare
  v_level integer;
  v_layer_xp bigint;
  v_bought bigint;
  v_held integer;
  v_max integer;
begin
  if not p_item.active or (p_item.starts_at is not null and now() < p_item.starts_at)
     or (p_item.ends_at is not null and now() >= p_item.ends_at) then
    raise exception 'Item % is not on sale', p_item.slug using errcode = 'XPINA';
  end if;
  if p_item.required_tier is not null then
    select p.level into v_level from public.profiles p where p.id = p_profile_id;
    if v_level < (select t.min_level from public.tiers t where t.slug = p_item.required_tier) then
      raise exception 'Item % needs the % tier', p_item.slug, p_item.required_tier using errcode = 'XPTIR';
    end if;
  end if;
  if p_item.required_layer is not null and p_item.required_layer_xp > 0 then
    select coalesce(max(pl.xp), 0) into v_layer_xp from public.profile_layers pl
     where pl.profile_id = p_profile_id and pl.layer_slug = p_item.required_layer;
    if v_layer_xp < p_item.required_layer_xp then
      raise exception 'Item % needs % XP in the % layer', p_item.slug, p_item.required_layer_xp, p_item.required_layer
        using errcode = 'XPTIR';
    end if;
  end if;
  if p_item.per_member_limit is not null then
    select count(*) into v_bought from public.store_purchases sp
     where sp.profile_id = p_profile_id and sp.item_id = p_item.id and sp.status = 'completed';
    if v_bought + p_quantity > p_item.per_member_limit then
      raise exception 'Item % is limited to % per member', p_item.slug, p_item.per_member_limit using errcode = 'XPLIM';
    end if;
  end if;
  if p_item.stock is not null and p_item.stock < p_quantity then
    raise exception 'Item % is sold out', p_item.slug using errcode = 'XPSTK';
  end if;
  if p_item.category = 'streak_freeze' then
    select coalesce(max(s.freezes_held), 0) into v_held from public.streaks s where s.profile_id = p_profile_id;
    select coalesce(max(r.max_freezes_held), 2) into v_max
      from public.engine_settings e join public.check_in_rules r on r.slug = e.check_in_rule;
    if v_held + p_item.freezes * p_quantity > v_max then
      raise exception 'You hold % streak freezes; at most % may be held', v_held, v_max using errcode = 'XPFRZ';
    end if;
  end if;
end
$$;
comment on function private.check_item(public.store_items, uuid, integer) is
  'Raises why a member may not buy the item now (XPINA, XPTIR, XPLIM, XPSTK, XPFRZ), or returns.';
revoke all on function private.check_item(public.store_items, uuid, integer) from public;

create or replace function private.check_delivery(p_item public.store_items, p_delivery jsonb)
returns jsonb
language plpgsql
immutable
security definer
set search_path = ''
as $$
declare
  v_delivery jsonb := coalesce(p_delivery, '{}');
  v_value text;
begin
  if jsonb_typeof(v_delivery) <> 'object' then
    raise exception 'delivery must be a JSON object' using errcode = 'XPBAD';
  end if;
  if p_item.delivery in ('none', 'discord') then
    if v_delivery <> '{}' then
      raise exception 'Item % takes no delivery details', p_item.slug using errcode = 'XPBAD';
    end if;
    return '{}';
  end if;
  if (select count(*) from jsonb_object_keys(v_delivery)) <> 1 or not v_delivery ? p_item.delivery then
    raise exception 'Item % needs exactly {"%": ...} as delivery details', p_item.slug, p_item.delivery
      using errcode = 'XPBAD';
  end if;
  v_value := btrim(v_delivery ->> p_item.delivery);
  if p_item.delivery = 'email'
     and (v_value is null or length(v_value) > 254 or v_value !~ '^[^@[:space:][:cntrl:]]+@[^@[:space:][:cntrl:]]+\.[^@[:space:][:cntrl:]]+$') then
    raise exception 'delivery email is not an email address' using errcode = 'XPBAD';
  end if;
  if p_item.delivery = 'address'
     and (v_value is null or length(v_value) not between 10 and 1000 or v_value ~ '[\x01-\x09\x0b-\x1f\x7f]') then
    raise exception 'delivery address must be 10 to 1000 characters without control characters' using errcode = 'XPBAD';
  end if;
  return jsonb_build_object(p_item.delivery, v_value);
end
$$;
comment on function private.check_delivery(public.store_items, jsonb) is
  'The delivery details an item needs, validated and trimmed: {"email": text} or {"address": text} (10-1000 '
  'characters), {} for items that need none. Raises XPBAD otherwise.';
revoke all on function private.check_delivery(public.store_items, jsonb) from public;

create or replace function private.grant_item(
  p_profile_id uuid,
  p_item public.store_items,
  p_purchase_id bigint,
  p_delivery jsonb,
  p_actor_role text
)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
-- What one unit of the item gives (checked beforehand by check_item): the decision of what a purchase
-- grants, for points and rupee purchases alike.
declare
  v_freezes integer;
  v_redemption_id bigint;
begin
  if p_item.category = 'streak_freeze' then
    insert into public.streaks as s (profile_id, freezes_held) values (p_profile_id, p_item.freezes)
    on conflict (profile_id) do update set freezes_held = s.freezes_held + excluded.freezes_held, updated_at = now()
    returning s.freezes_held into v_freezes;
    return jsonb_build_object('kind', 'streak_freeze', 'freezes_added', p_item.freezes, 'freezes_held', v_freezes);
  elsif p_item.category in ('cosmetic', 'tool') then
    insert into public.inventory as i (profile_id, item_id, quantity) values (p_profile_id, p_item.id, 1)
    on conflict (profile_id, item_id) do update set quantity = i.quantity + 1;
    if p_item.rank_card_style is not null then
      update public.profiles p set rank_card_style = p_item.rank_card_style, updated_at = now()
       where p.id = p_profile_id;
    end if;
    return jsonb_build_object('kind', 'inventory', 'tool', p_item.tool_slug, 'rank_card_style', p_item.rank_card_style);
  end if;
  insert into public.redemptions (purchase_id, profile_id, item_id, delivery)
  values (p_purchase_id, p_profile_id, p_item.id, p_delivery)
  returning id into v_redemption_id;
  insert into public.redemption_events (redemption_id, profile_id, status, actor_id, actor_role, note)
  values (v_redemption_id, p_profile_id, 'pending', p_profile_id, p_actor_role, null);
  insert into public.notifications (profile_id, kind, title, body, data)
  values (p_profile_id, 'redemption_update', p_item.name || ': requested',
          'An admin will review your request.',
          jsonb_build_object('redemption_id', v_redemption_id, 'item', p_item.slug, 'status', 'pending'));
  return jsonb_build_object('kind', 'redemption', 'redemption_id', v_redemption_id, 'status', 'pending');
end
$$;
comment on function private.grant_item(uuid, public.store_items, bigint, jsonb, text) is
  'Gives one unit of an item: streak freezes, an inventory row (tools, cosmetics, rank card style) or a pending '
  'redemption with its first step and notification. Returns what it gave as jsonb {kind, ...}.';
revoke all on function private.grant_item(uuid, public.store_items, bigint, jsonb, text) from public;

------------------------------------------------------------------------------
-- Buying with points
------------------------------------------------------------------------------

create or replace function private.buy_item(
  p_profile_id uuid,
  p_item text,
  p_idempotency_key text,
  p_expected_price integer,
  p_delivery jsonb,
  p_actor_role text
)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_request jsonb;
  v_key text;
  v_purchase public.store_purchases;
  v_item public.store_items;
  v_delivery jsonb;
  v_points jsonb;
  v_grants jsonb;
  v_receipt jsonb;
begin
  if p_profile_id is null then
    raise exception 'profile_id is required' using errcode = 'XPBAD';
  end if;
  perform private.assert_not_suspended(p_profile_id);
  if p_item is null or length(p_item) not between 1 and 64 then
    raise exception 'item must be 1 to 64 characters' using errcode = 'XPBAD';
  end if;
  if p_idempotency_key is null or length(p_idempotency_key) not between 1 and 200 then
    raise exception 'idempotency_key must be 1 to 200 characters' using errcode = 'XPBAD';
  end if;
  if p_expected_price is not null and p_expected_price < 0 then
    raise exception 'expected_price must not be negative' using errcode = 'XPBAD';
  end if;
  v_request := jsonb_build_object('fn', 'buy_item', 'profile_id', p_profile_id, 'item', p_item,
                                  'expected_price', p_expected_price, 'delivery', p_delivery);

  -- One key, one purchase: replays answer from the row (the advisory lock serialises racing replays). Keys are
  -- the member's own: two members may use the same one.
  v_key := 'points:' || p_profile_id || ':' || p_idempotency_key;
  perform pg_advisory_xact_lock(hashtextextended('store_purchases:' || v_key, 0));
  select * into v_purchase from public.store_purchases sp where sp.idempotency_key = v_key;
  if found then
    if v_purchase.request is distinct from v_request then
      raise exception 'Idempotency key % was already used with other parameters', p_idempotency_key
        using errcode = 'XPIDM', detail = 'first request: ' || v_purchase.request::text;
    end if;
    return v_purchase.grants || jsonb_build_object('replayed', true);
  end if;

  -- The item row lock serialises every purchase of the item: stock is decided on a consistent view.
  select * into v_item from public.store_items i where i.slug = p_item for update;
  if not found then
    raise exception 'Unknown item: %', p_item using errcode = 'XPITM';
  end if;
  -- Then the member's row: before the purchase row's foreign key takes a key-share lock on it (upgrading that
  -- to apply_points' update lock would deadlock with the member's purchases of other items).
  perform 1 from public.profiles p where p.id = p_profile_id for update;
  if not found then
    raise exception 'Unknown profile: %', p_profile_id using errcode = 'XPPRF';
  end if;
  if v_item.price_points is null then
    raise exception 'Item % is sold for rupees only (POST /v1/payments/orders)', v_item.slug using errcode = 'XPPRC';
  end if;
  if p_expected_price is not null and p_expected_price <> v_item.price_points then
    raise exception 'Item % costs % points, not %', v_item.slug, v_item.price_points, p_expected_price
      using errcode = 'XPPRC';
  end if;
  perform private.check_item(v_item, p_profile_id, 1);
  v_delivery := private.check_delivery(v_item, p_delivery);

  if v_item.stock is not null then
    update public.store_items i set stock = i.stock - 1, updated_at = now() where i.id = v_item.id;
  end if;
  insert into public.store_purchases (profile_id, item_id, price_points, idempotency_key, request)
  values (p_profile_id, v_item.id, v_item.price_points, v_key, v_request)
  returning * into v_purchase;
  v_points := private.apply_points(
    p_profile_id, 'purchase', -v_item.price_points, 'purchase:' || v_purchase.id, p_profile_id, p_actor_role,
    v_item.name, jsonb_build_object('fn', 'buy_item', 'purchase_id', v_purchase.id),
    jsonb_build_object('purchase_id', v_purchase.id, 'item', v_item.slug), false);
  v_grants := private.grant_item(p_profile_id, v_item, v_purchase.id, v_delivery, p_actor_role);
  v_receipt := jsonb_build_object(
    'purchase_id', v_purchase.id, 'profile_id', p_profile_id, 'item', v_item.slug, 'item_name', v_item.name,
    'category', v_item.category, 'price_points', v_item.price_points,
    'points_balance', (v_points ->> 'balance')::bigint, 'points_ledger_id', (v_points ->> 'points_ledger_id')::bigint,
    'stock_left', case when v_item.stock is not null then v_item.stock - 1 end,
    'grants', v_grants, 'replayed', false);
  update public.store_purchases sp
     set points_ledger_id = (v_points ->> 'points_ledger_id')::bigint, grants = v_receipt
   where sp.id = v_purchase.id;
  return v_receipt;
end
$$;
comment on function private.buy_item(uuid, text, text, integer, jsonb, text) is 'Implementation of public.buy_item.';
revoke all on function private.buy_item(uuid, text, text, integer, jsonb, text) from public;
grant execute on function private.buy_item(uuid, text, text, integer, jsonb, text) to service_role, authenticated;

create or replace function public.buy_item(
  item text,
  idempotency_key text,
  expected_price integer default null,
  delivery jsonb default null
)
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.buy_item((select auth.uid()), buy_item.item, buy_item.idempotency_key, buy_item.expected_price,
                          buy_item.delivery, 'authenticated')
$$;
comment on function public.buy_item(text, text, integer, jsonb) is
  'The caller buys one unit of a store item with points: price check (expected_price, when given, must equal '
  'the item''s price_points), tier/layer requirement, per-member limit, stock decrement and points debit in one '
  'transaction, then the grant. delivery: {"email": ...} or {"address": ...} for items a person delivers. '
  'Returns {purchase_id, profile_id, item, item_name, category, price_points, points_balance, points_ledger_id, '
  'stock_left (null: unlimited), grants {kind: streak_freeze|inventory|redemption, ...}, replayed}. The same '
  'idempotency_key buys once. Errors: XPITM unknown item, XPINA not on sale, XPPRC price mismatch or rupees only, '
  'XPSTK sold out, XPLIM member limit reached, XPPTS not enough points, XPTIR tier or layer too low, XPFRZ '
  'streak freeze maximum, XPIDM, XPBAD. Nothing changes on an error.';
revoke all on function public.buy_item(text, text, integer, jsonb) from public, anon;
grant execute on function public.buy_item(text, text, integer, jsonb) to authenticated;

create or replace function public.service_role_buy_item(
  profile_id uuid,
  item text,
  idempotency_key text,
  expected_price integer default null,
  delivery jsonb default null
)
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.buy_item(service_role_buy_item.profile_id, service_role_buy_item.item,
                          service_role_buy_item.idempotency_key, service_role_buy_item.expected_price,
                          service_role_buy_item.delivery, 'service_role')
$$;
comment on function public.service_role_buy_item(uuid, text, text, integer, jsonb) is
  'buy_item for a member the backend names (the bot''s /buy and /redeem). Same answer and errors as buy_item. '
  'service_role only.';
revoke all on function public.service_role_buy_item(uuid, text, text, integer, jsonb) from public, anon, authenticated;
grant execute on function public.service_role_buy_item(uuid, text, text, integer, jsonb) to service_role;

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

------------------------------------------------------------------------------
-- Managing items (admins)
------------------------------------------------------------------------------

create or replace function private.save_store_item(p_item jsonb)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_row public.store_items;
  v_allowed constant text[] := array['slug', 'name', 'description', 'category', 'price_points', 'price_paise',
    'stock', 'per_member_limit', 'starts_at', 'ends_at', 'image_url', 'required_tier', 'required_layer',
    'required_layer_xp', 'freezes', 'tool_slug', 'rank_card_style', 'delivery', 'active'];
  v_unknown text;
begin
  perform private.assert_admin();
  if p_item is null or jsonb_typeof(p_item) <> 'object' or length(p_item::text) > 8000 then
    raise exception 'item must be a JSON object of at most 8000 characters' using errcode = 'XPBAD';
  end if;
  select k into v_unknown from jsonb_object_keys(p_item) k where k <> all (v_allowed) limit 1;
  if v_unknown is not null then
    raise exception 'Unknown item field: %', v_unknown using errcode = 'XPBAD';
  end if;
  v_row := jsonb_populate_record(null::public.store_items, p_item);
  insert into public.store_items as i (slug, name, description, category, price_points, price_paise, stock,
    per_member_limit, starts_at, ends_at, image_url, required_tier, required_layer, required_layer_xp, freezes,
    tool_slug, rank_card_style, delivery, active)
  values (v_row.slug, v_row.name, coalesce(v_row.description, ''), v_row.category, v_row.price_points,
    v_row.price_paise, v_row.stock, v_row.per_member_limit, v_row.starts_at, v_row.ends_at, v_row.image_url,
    v_row.required_tier, v_row.required_layer, coalesce(v_row.required_layer_xp, 0), coalesce(v_row.freezes, 0),
    v_row.tool_slug, v_row.rank_card_style, coalesce(v_row.delivery, 'none'), coalesce(v_row.active, true))
  on conflict (slug) do update set
    name = excluded.name, description = excluded.description, category = excluded.category,
    price_points = excluded.price_points, price_paise = excluded.price_paise, stock = excluded.stock,
    per_member_limit = excluded.per_member_limit, starts_at = excluded.starts_at, ends_at = excluded.ends_at,
    image_url = excluded.image_url, required_tier = excluded.required_tier,
    required_layer = excluded.required_layer, required_layer_xp = excluded.required_layer_xp,
    freezes = excluded.freezes, tool_slug = excluded.tool_slug, rank_card_style = excluded.rank_card_style,
    delivery = excluded.delivery, active = excluded.active, updated_at = now()
  returning * into v_row;
  return to_jsonb(v_row);
exception
  when check_violation or not_null_violation or foreign_key_violation or invalid_text_representation
       or datetime_field_overflow or invalid_datetime_format or numeric_value_out_of_range then
    raise exception 'Invalid item: %', sqlerrm using errcode = 'XPBAD';
end
$$;
comment on function private.save_store_item(jsonb) is 'Implementation of public.admin_save_store_item.';
revoke all on function private.save_store_item(jsonb) from public;
grant execute on function private.save_store_item(jsonb) to service_role, authenticated;

create or replace function public.admin_save_store_item(item jsonb)
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.save_store_item(admin_save_store_item.item)
$$;
comment on function public.admin_save_store_item(jsonb) is
  'Creates or updates (by slug) a store item from {slug, name, category, price_points?, price_paise?, stock?, '
  'per_member_limit?, starts_at?, ends_at?, image_url?, required_tier?, required_layer?, required_layer_xp?, '
  'freezes?, tool_slug?, rank_card_style?, delivery?, active?, description?}; omitted fields take their '
  'defaults. Returns the row. Errors: 42501 unless service_role or an admin member; XPBAD for unknown fields or '
  'values the table refuses.';
revoke all on function public.admin_save_store_item(jsonb) from public, anon;
grant execute on function public.admin_save_store_item(jsonb) to service_role, authenticated;

