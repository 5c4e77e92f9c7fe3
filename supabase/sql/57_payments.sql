-- XP packages and store items paid with Razorpay. The service talks to Razorpay (orders, signature
-- checks, webhooks; service/payments.py); every decision is here: an order's amount comes from our rows
-- (never from the client), a captured payment credits exactly once (payments' primary key is the
-- Razorpay payment id, written in the same transaction as the award_xp of activity xp_purchase or the
-- item's grant), whichever of verify, webhook and reconciliation arrives first; a refund reverses the XP
-- and the points the payment earned, in proportion to the amount refunded, without taking either below
-- zero; webhooks are handled once per x-razorpay-event-id; open orders expire (a payment that still
-- arrives later is credited: the money was taken).
--
-- Lock order: payment order, then item, then profile.
--
-- Tables: public.xp_packages, public.payment_orders, public.payments, public.payment_refunds,
--   private.razorpay_webhook_events.
-- Tests: tests/sql/test_payments.py

------------------------------------------------------------------------------
-- Orders
------------------------------------------------------------------------------

create or replace function private.order_json(p_order public.payment_orders)
returns jsonb
language sql
stable
security definer
set search_path = ''
as $$
  select jsonb_build_object(
    'order_id', p_order.id, 'profile_id', p_order.profile_id, 'package', p_order.package_slug,
    'item', (select i.slug from public.store_items i where i.id = p_order.item_id),
    'xp', p_order.xp, 'amount_paise', p_order.amount_paise, 'currency', p_order.currency,
    'razorpay_order_id', p_order.razorpay_order_id, 'status', p_order.status, 'receipt', p_order.id::text,
    'expires_at', private.utc_text(p_order.expires_at), 'created_at', private.utc_text(p_order.created_at))
$$;
comment on function private.order_json(public.payment_orders) is
  'A payment order as the payment functions answer it: {order_id, profile_id, package, item, xp, amount_paise, '
  'currency, razorpay_order_id, status, receipt, expires_at, created_at}.';
revoke all on function private.order_json(public.payment_orders) from public;

create or replace function private.create_payment_order(
  profile_id uuid,
  package text,
  item text,
  ttl_seconds integer
)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_package public.xp_packages;
  v_item public.store_items;
  v_order public.payment_orders;
begin
  if (package is null) = (item is null) then
    raise exception 'Name exactly one of package and item' using errcode = 'XPBAD';
  end if;
  if ttl_seconds is null or ttl_seconds not between 60 and 86400 then
    raise exception 'ttl_seconds must be 60 to 86400' using errcode = 'XPBAD';
  end if;
  if not exists (select 1 from public.profiles p where p.id = create_payment_order.profile_id) then
    raise exception 'Unknown profile: %', create_payment_order.profile_id using errcode = 'XPPRF';
  end if;
  perform private.assert_not_suspended(create_payment_order.profile_id);
  if package is not null then
    select * into v_package from public.xp_packages x where x.slug = package;
    if not found or not v_package.active then
      raise exception 'Unknown or inactive XP package: %', left(package, 64) using errcode = 'XPPKG';
    end if;
    insert into public.payment_orders (profile_id, package_slug, xp, amount_paise, currency, expires_at)
    values (create_payment_order.profile_id, v_package.slug, v_package.xp, v_package.amount_paise,
            v_package.currency, now() + make_interval(secs => ttl_seconds))
    returning * into v_order;
  else
    select * into v_item from public.store_items i where i.slug = item;
    if not found then
      raise exception 'Unknown item: %', left(item, 64) using errcode = 'XPITM';
    end if;
    if v_item.price_paise is null then
      raise exception 'Item % is sold for points only', v_item.slug using errcode = 'XPPRC';
    end if;
    if v_item.category in ('merchandise', 'gift_card', 'experience', 'service') then
      raise exception 'Item % needs delivery details: redeem it with points', v_item.slug using errcode = 'XPBAD';
    end if;
    perform private.check_item(v_item, create_payment_order.profile_id, 1);
    insert into public.payment_orders (profile_id, item_id, amount_paise, currency, expires_at)
    values (create_payment_order.profile_id, v_item.id, v_item.price_paise, 'INR',
            now() + make_interval(secs => ttl_seconds))
    returning * into v_order;
  end if;
  return private.order_json(v_order);
end
$$;
comment on function private.create_payment_order(uuid, text, text, integer) is 'Implementation of public.service_role_create_payment_order.';
revoke all on function private.create_payment_order(uuid, text, text, integer) from public;
grant execute on function private.create_payment_order(uuid, text, text, integer) to service_role;

create or replace function public.service_role_create_payment_order(
  profile_id uuid,
  package text default null,
  item text default null,
  ttl_seconds integer default 1800
)
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.create_payment_order(service_role_create_payment_order.profile_id, service_role_create_payment_order.package, service_role_create_payment_order.item, service_role_create_payment_order.ttl_seconds)
$$;
comment on function public.service_role_create_payment_order(uuid, text, text, integer) is
  'Step 1 of a payment: our order for a package (XP) or a store item with a rupee price, amount and currency '
  'from our rows, status new, expiring after ttl_seconds (60 to 86400). Returns the order (see '
  'private.order_json); receipt is the order id to send to Razorpay. Errors: XPPKG unknown or inactive package, '
  'XPITM unknown item, XPPRC points-only item, XPINA/XPTIR/XPLIM/XPSTK/XPFRZ (the item''s rules), XPPRF, XPBAD. '
  'service_role only.';
revoke all on function public.service_role_create_payment_order(uuid, text, text, integer) from public, anon, authenticated;
grant execute on function public.service_role_create_payment_order(uuid, text, text, integer) to service_role;

create or replace function private.attach_razorpay_order(
  order_id uuid,
  razorpay_order_id text,
  amount_paise integer,
  currency text
)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_order public.payment_orders;
begin
  if razorpay_order_id is null or length(razorpay_order_id) not between 1 and 64 then
    raise exception 'razorpay_order_id must be 1 to 64 characters' using errcode = 'XPBAD';
  end if;
  select * into v_order from public.payment_orders o where o.id = attach_razorpay_order.order_id for update;
  if not found then
    raise exception 'Unknown order: %', attach_razorpay_order.order_id using errcode = 'XPORD';
  end if;
  if v_order.status <> 'new' then
    raise exception 'Order % is already %', v_order.id, v_order.status using errcode = 'XPBAD';
  end if;
  if v_order.amount_paise is distinct from attach_razorpay_order.amount_paise
     or v_order.currency is distinct from attach_razorpay_order.currency then
    raise exception 'Razorpay order is for % % , ours for % %', attach_razorpay_order.amount_paise,
      attach_razorpay_order.currency, v_order.amount_paise, v_order.currency using errcode = 'XPAMM';
  end if;
  update public.payment_orders o
     set razorpay_order_id = attach_razorpay_order.razorpay_order_id, status = 'created', updated_at = now()
   where o.id = v_order.id
  returning * into v_order;
  return private.order_json(v_order);
end
$$;
comment on function private.attach_razorpay_order(uuid, text, integer, text) is 'Implementation of public.service_role_attach_razorpay_order.';
revoke all on function private.attach_razorpay_order(uuid, text, integer, text) from public;
grant execute on function private.attach_razorpay_order(uuid, text, integer, text) to service_role;

create or replace function public.service_role_attach_razorpay_order(
  order_id uuid,
  razorpay_order_id text,
  amount_paise integer,
  currency text
)
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.attach_razorpay_order(service_role_attach_razorpay_order.order_id, service_role_attach_razorpay_order.razorpay_order_id, service_role_attach_razorpay_order.amount_paise, service_role_attach_razorpay_order.currency)
$$;
comment on function public.service_role_attach_razorpay_order(uuid, text, integer, text) is
  'Step 2: records the Razorpay order created for our order (status created). Errors: XPORD unknown order, '
  'XPAMM Razorpay''s amount or currency differs from ours, XPBAD not a new order. service_role only.';
revoke all on function public.service_role_attach_razorpay_order(uuid, text, integer, text) from public, anon, authenticated;
grant execute on function public.service_role_attach_razorpay_order(uuid, text, integer, text) to service_role;

create or replace function private.fail_payment_order(order_id uuid, error text)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_order public.payment_orders;
begin
  update public.payment_orders o
     set status = 'failed', last_error = left(fail_payment_order.error, 500), updated_at = now()
   where o.id = fail_payment_order.order_id and o.status = 'new'
  returning * into v_order;
  if not found then
    raise exception 'No new order %', fail_payment_order.order_id using errcode = 'XPORD';
  end if;
  return private.order_json(v_order);
end
$$;
comment on function private.fail_payment_order(uuid, text) is 'Implementation of public.service_role_fail_payment_order.';
revoke all on function private.fail_payment_order(uuid, text) from public;
grant execute on function private.fail_payment_order(uuid, text) to service_role;

create or replace function public.service_role_fail_payment_order(order_id uuid, error text)
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.fail_payment_order(service_role_fail_payment_order.order_id, service_role_fail_payment_order.error)
$$;
comment on function public.service_role_fail_payment_order(uuid, text) is
  'Marks a new order failed when Razorpay refused to create it (error: its description, kept to 500 characters). '
  'Errors: XPORD no such new order. service_role only.';
revoke all on function public.service_role_fail_payment_order(uuid, text) from public, anon, authenticated;
grant execute on function public.service_role_fail_payment_order(uuid, text) to service_role;

------------------------------------------------------------------------------
-- Crediting a captured payment, exactly once
------------------------------------------------------------------------------

create or replace function private.capture_payment(
  p_razorpay_order_id text,
  p_payment_id text,
  p_amount_paise integer,
  p_source text,
  p_profile_id uuid
)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_order public.payment_orders;
  v_payment public.payments;
  v_item public.store_items;
  v_receipt jsonb;
  v_purchase_id bigint;
  v_fulfilled boolean := true;
  v_grants jsonb;
  v_xp integer := 0;
  v_points integer := 0;
begin
  if p_payment_id is null or length(p_payment_id) not between 1 and 64
     or p_razorpay_order_id is null or length(p_razorpay_order_id) not between 1 and 64 then
    raise exception 'order and payment ids must be 1 to 64 characters' using errcode = 'XPBAD';
  end if;
  select * into v_order from public.payment_orders o where o.razorpay_order_id = p_razorpay_order_id for update;
  if not found then
    raise exception 'Unknown Razorpay order: %', p_razorpay_order_id using errcode = 'XPORD';
  end if;
  if p_profile_id is not null and v_order.profile_id <> p_profile_id then
    raise exception 'Order % belongs to another member', p_razorpay_order_id using errcode = 'XPOWN';
  end if;
  -- The item's row lock (for an item), then the member's, before any insert that references the profile: a
  -- foreign key takes a key-share lock on it, and upgrading that to award_xp's update lock would deadlock with
  -- the member's other payments.
  if v_order.item_id is not null then
    select * into v_item from public.store_items i where i.id = v_order.item_id for update;
  end if;
  perform 1 from public.profiles p where p.id = v_order.profile_id for update;
  select * into v_payment from public.payments p where p.razorpay_payment_id = p_payment_id;
  if found then
    if v_payment.order_id <> v_order.id then
      raise exception 'Payment % belongs to another order', p_payment_id using errcode = 'XPORD';
    end if;
    return private.order_json(v_order) || jsonb_build_object(
      'payment_id', p_payment_id, 'credited', false, 'duplicate', true, 'source', v_payment.source,
      'xp_granted', v_payment.xp_granted, 'points_granted', v_payment.points_granted,
      'purchase_id', v_payment.purchase_id, 'fulfilled', v_payment.fulfilled);
  end if;
  if p_amount_paise is distinct from v_order.amount_paise then
    raise exception 'Payment % is for % paise, the order for %', p_payment_id, p_amount_paise, v_order.amount_paise
      using errcode = 'XPAMM';
  end if;

  insert into public.payments (razorpay_payment_id, order_id, profile_id, amount_paise, source)
  values (p_payment_id, v_order.id, v_order.profile_id, p_amount_paise, p_source);

  if v_order.package_slug is not null then
    v_receipt := private.award_xp(v_order.profile_id, 'xp_purchase', 'razorpay:' || p_payment_id, v_order.xp, now(),
                                  jsonb_build_object('order_id', v_order.id, 'razorpay_order_id', p_razorpay_order_id,
                                                     'payment_id', p_payment_id, 'package', v_order.package_slug));
    v_xp := (v_receipt ->> 'granted')::integer;
    v_points := (v_receipt ->> 'points_granted')::integer;
  else
    begin
      -- The item's rules at payment time; a payment for an item that sold out meanwhile is kept unfulfilled
      -- (to refund) rather than overselling.
      perform private.check_item(v_item, v_order.profile_id, 1);
    exception when sqlstate 'XPSTK' or sqlstate 'XPLIM' or sqlstate 'XPINA' or sqlstate 'XPFRZ' or sqlstate 'XPTIR' then
      v_fulfilled := false;
    end;
    if v_fulfilled then
      if v_item.stock is not null then
        update public.store_items i set stock = i.stock - 1, updated_at = now() where i.id = v_item.id;
      end if;
      insert into public.store_purchases (profile_id, item_id, price_paise, idempotency_key, payment_id, request)
      values (v_order.profile_id, v_item.id, v_order.amount_paise, 'razorpay:' || p_payment_id, p_payment_id,
              jsonb_build_object('fn', 'capture_payment', 'payment_id', p_payment_id))
      returning id into v_purchase_id;
      v_grants := private.grant_item(v_order.profile_id, v_item, v_purchase_id, '{}', 'service_role');
      update public.store_purchases sp set grants = jsonb_build_object('grants', v_grants) where sp.id = v_purchase_id;
    end if;
  end if;

  update public.payments p
     set xp_granted = v_xp, points_granted = v_points, xp_ledger_id = (v_receipt ->> 'ledger_id')::bigint,
         purchase_id = v_purchase_id, fulfilled = v_fulfilled
   where p.razorpay_payment_id = p_payment_id;
  update public.payment_orders o set status = 'paid', paid_at = coalesce(o.paid_at, now()), updated_at = now()
   where o.id = v_order.id
  returning * into v_order;
  insert into public.notifications (profile_id, kind, title, body, data)
  values (v_order.profile_id, 'payment_received',
          'Payment received: ₹' || to_char(p_amount_paise / 100.0, 'FM999999990.00'),
          case when v_order.package_slug is not null then v_xp || ' XP added.'
               when v_fulfilled then 'Your item is ready.'
               else 'The item sold out before your payment arrived; it will be refunded.' end,
          jsonb_build_object('order_id', v_order.id, 'payment_id', p_payment_id, 'amount_paise', p_amount_paise,
                             'xp_granted', v_xp, 'fulfilled', v_fulfilled));
  return private.order_json(v_order) || jsonb_build_object(
    'payment_id', p_payment_id, 'credited', true, 'duplicate', false, 'source', p_source,
    'xp_granted', v_xp, 'points_granted', v_points, 'purchase_id', v_purchase_id, 'fulfilled', v_fulfilled);
end
$$;
comment on function private.capture_payment(text, text, integer, text, uuid) is
  'Credits a captured Razorpay payment once (see the file header). p_profile_id, when given, must own the order '
  '(the verify path). Returns the order plus {payment_id, credited, duplicate, source, xp_granted, '
  'points_granted, purchase_id, fulfilled}. Errors: XPORD unknown order, XPOWN another member''s order, XPAMM '
  'amount differs from the order, XPBAD.';
revoke all on function private.capture_payment(text, text, integer, text, uuid) from public;
grant execute on function private.capture_payment(text, text, integer, text, uuid) to service_role;

create or replace function public.service_role_verify_payment(
  profile_id uuid,
  razorpay_order_id text,
  razorpay_payment_id text,
  amount_paise integer
)
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.capture_payment(service_role_verify_payment.razorpay_order_id,
                                 service_role_verify_payment.razorpay_payment_id,
                                 service_role_verify_payment.amount_paise, 'verify', service_role_verify_payment.profile_id)
$$;
comment on function public.service_role_verify_payment(uuid, text, text, integer) is
  'The checkout''s verify step, after the service checked razorpay_signature and fetched the payment from '
  'Razorpay (amount_paise, captured): credits it once for the member who owns the order. Same answer as '
  'private.capture_payment. Errors: XPORD, XPOWN, XPAMM, XPBAD. service_role only.';
revoke all on function public.service_role_verify_payment(uuid, text, text, integer) from public, anon, authenticated;
grant execute on function public.service_role_verify_payment(uuid, text, text, integer) to service_role;

create or replace function public.service_role_reconcile_payment(
  razorpay_order_id text,
  razorpay_payment_id text,
  amount_paise integer
)
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.capture_payment(service_role_reconcile_payment.razorpay_order_id,
                                 service_role_reconcile_payment.razorpay_payment_id,
                                 service_role_reconcile_payment.amount_paise, 'reconcile', null)
$$;
comment on function public.service_role_reconcile_payment(text, text, integer) is
  'Credits a captured payment the reconciliation job found by asking Razorpay (GET /v1/orders/:id/payments). '
  'Same answer and errors as service_role_verify_payment, without the owner check. service_role only.';
revoke all on function public.service_role_reconcile_payment(text, text, integer) from public, anon, authenticated;
grant execute on function public.service_role_reconcile_payment(text, text, integer) to service_role;

------------------------------------------------------------------------------
-- Refunds
------------------------------------------------------------------------------

create or replace function private.refund_payment(p_refund_id text, p_payment_id text, p_amount_paise integer)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_payment public.payments;
  v_refund public.payment_refunds;
  v_layer text;
  v_layer_xp bigint;
  v_xp_due integer;
  v_points_due integer;
  v_xp_take integer := 0;
  v_receipt jsonb;
  v_points jsonb;
begin
  if p_refund_id is null or length(p_refund_id) not between 1 and 64 then
    raise exception 'refund id must be 1 to 64 characters' using errcode = 'XPBAD';
  end if;
  select * into v_payment from public.payments p where p.razorpay_payment_id = p_payment_id;
  if not found then
    raise exception 'Unknown payment: %', p_payment_id using errcode = 'XPORD';
  end if;
  perform 1 from public.payment_orders o where o.id = v_payment.order_id for update;
  select * into v_payment from public.payments p where p.razorpay_payment_id = p_payment_id;
  select * into v_refund from public.payment_refunds r where r.razorpay_refund_id = p_refund_id;
  if found then
    return jsonb_build_object('refund_id', p_refund_id, 'payment_id', p_payment_id, 'duplicate', true,
                              'xp_reversed', v_refund.xp_reversed, 'points_reversed', v_refund.points_reversed,
                              'xp_floored', v_refund.xp_floored, 'points_floored', v_refund.points_floored);
  end if;
  if p_amount_paise is null or p_amount_paise <= 0 or v_payment.refunded_paise + p_amount_paise > v_payment.amount_paise then
    raise exception 'Refund of % paise exceeds what is left of payment % (% of %)', p_amount_paise, p_payment_id,
      v_payment.amount_paise - v_payment.refunded_paise, v_payment.amount_paise using errcode = 'XPAMM';
  end if;
  -- What this refund owes, in proportion: the cumulative share after it minus the share before it.
  v_xp_due := floor(v_payment.xp_granted::numeric * (v_payment.refunded_paise + p_amount_paise) / v_payment.amount_paise)
              - floor(v_payment.xp_granted::numeric * v_payment.refunded_paise / v_payment.amount_paise);
  v_points_due := floor(v_payment.points_granted::numeric * (v_payment.refunded_paise + p_amount_paise) / v_payment.amount_paise)
                  - floor(v_payment.points_granted::numeric * v_payment.refunded_paise / v_payment.amount_paise);
  if v_xp_due > 0 then
    perform 1 from public.profiles p where p.id = v_payment.profile_id for update;
    select l.layer_slug into v_layer from public.xp_ledger l where l.id = v_payment.xp_ledger_id;
    select coalesce(max(pl.xp), 0) into v_layer_xp from public.profile_layers pl
     where pl.profile_id = v_payment.profile_id and pl.layer_slug = v_layer;
    v_xp_take := least(v_xp_due, v_layer_xp);
    v_receipt := private.apply_xp(
      v_payment.profile_id, 'xp_purchase', jsonb_build_array(jsonb_build_object('layer', v_layer, 'amount', -v_xp_take)),
      now(), 'razorpay_refund:' || p_refund_id, null, 'service_role', 'Razorpay refund ' || p_refund_id,
      jsonb_build_object('fn', 'refund_payment', 'refund_id', p_refund_id, 'payment_id', p_payment_id,
                         'amount_paise', p_amount_paise),
      jsonb_build_object('correction', 'payment_refund', 'requested', -v_xp_due, 'base', -v_xp_due, 'multiplier', 1,
                         'multipliers', '[]'::jsonb, 'cooldown', false, 'cooldown_remaining_seconds', 0,
                         'capped', false, 'cap', null, 'floored', v_xp_take < v_xp_due,
                         'reverses_ledger_id', v_payment.xp_ledger_id));
  end if;
  if v_points_due > 0 then
    v_points := private.apply_points(
      v_payment.profile_id, 'reversal', -v_points_due, 'razorpay_refund:' || p_refund_id, null, 'service_role',
      'Razorpay refund ' || p_refund_id,
      jsonb_build_object('fn', 'refund_payment', 'refund_id', p_refund_id),
      jsonb_build_object('payment_id', p_payment_id, 'refund_id', p_refund_id), true);
  end if;
  insert into public.payment_refunds (razorpay_refund_id, razorpay_payment_id, profile_id, amount_paise, xp_reversed,
                                      points_reversed, xp_floored, points_floored, xp_ledger_id, points_ledger_id)
  values (p_refund_id, p_payment_id, v_payment.profile_id, p_amount_paise, v_xp_take,
          coalesce(-(v_points ->> 'amount')::integer, 0), v_xp_take < v_xp_due,
          coalesce((v_points ->> 'floored')::boolean, false), (v_receipt ->> 'ledger_id')::bigint,
          (v_points ->> 'points_ledger_id')::bigint)
  returning * into v_refund;
  update public.payments p
     set refunded_paise = p.refunded_paise + p_amount_paise,
         status = case when p.refunded_paise + p_amount_paise = p.amount_paise then 'refunded' else 'partially_refunded' end
   where p.razorpay_payment_id = p_payment_id;
  insert into public.notifications (profile_id, kind, title, body, data)
  values (v_payment.profile_id, 'payment_refunded',
          'Refund: ₹' || to_char(p_amount_paise / 100.0, 'FM999999990.00'),
          concat_ws(' ', v_refund.xp_reversed || ' XP and ' || v_refund.points_reversed || ' points taken back.',
                    case when v_refund.xp_floored or v_refund.points_floored
                         then 'You held less than the purchase gave, so less was taken back.' end),
          jsonb_build_object('refund_id', p_refund_id, 'payment_id', p_payment_id, 'amount_paise', p_amount_paise,
                             'xp_reversed', v_refund.xp_reversed, 'points_reversed', v_refund.points_reversed,
                             'xp_floored', v_refund.xp_floored, 'points_floored', v_refund.points_floored));
  return jsonb_build_object('refund_id', p_refund_id, 'payment_id', p_payment_id, 'duplicate', false,
                            'xp_reversed', v_refund.xp_reversed, 'points_reversed', v_refund.points_reversed,
                            'xp_floored', v_refund.xp_floored, 'points_floored', v_refund.points_floored);
end
$$;
comment on function private.refund_payment(text, text, integer) is
  'Applies a Razorpay refund once (keyed on its id): reverses floor(share) of the XP and points the payment '
  'earned, share = amount refunded / amount paid, each taken down to zero at most (xp_floored, points_floored), '
  'with an xp_ledger row (activity xp_purchase, key razorpay_refund:<id>) and a points_ledger reversal row, and a '
  'payment_refunded notification that says so. Items bought with rupees are not taken back. Returns {refund_id, '
  'payment_id, duplicate, xp_reversed, points_reversed, xp_floored, points_floored}. Errors: XPORD unknown '
  'payment, XPAMM more than what is left, XPBAD.';
revoke all on function private.refund_payment(text, text, integer) from public;

------------------------------------------------------------------------------
-- Webhooks
------------------------------------------------------------------------------

create or replace function private.payment_webhook(event_id text, event text, payload jsonb)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_entity jsonb;
  v_outcome jsonb;
  v_order public.payment_orders;
begin
  if event_id is null or length(event_id) not between 1 and 128 then
    raise exception 'x-razorpay-event-id must be 1 to 128 characters' using errcode = 'XPBAD';
  end if;
  if event is null or length(event) not between 1 and 64 or jsonb_typeof(payload) is distinct from 'object' then
    raise exception 'A webhook needs an event name and a payload object' using errcode = 'XPBAD';
  end if;
  insert into private.razorpay_webhook_events (event_id, event) values (event_id, event) on conflict do nothing;
  if not found then
    raise exception 'Webhook event % was already handled', event_id using errcode = 'XPWHR';
  end if;
  if event in ('payment.captured', 'order.paid') then
    v_entity := payload -> 'payment' -> 'entity';
    if v_entity ->> 'status' is distinct from 'captured' then
      v_outcome := jsonb_build_object('handled', false, 'reason', 'payment not captured');
    else
      v_outcome := private.capture_payment(v_entity ->> 'order_id', v_entity ->> 'id', (v_entity ->> 'amount')::integer,
                                           'webhook', null);
    end if;
  elsif event = 'payment.failed' then
    v_entity := payload -> 'payment' -> 'entity';
    update public.payment_orders o
       set status = case when o.status in ('new', 'created') then 'attempted' else o.status end,
           last_error = left(coalesce(v_entity ->> 'error_description', v_entity ->> 'error_code', 'payment failed'), 500),
           updated_at = now()
     where o.razorpay_order_id = v_entity ->> 'order_id'
    returning * into v_order;
    if not found then
      raise exception 'Unknown Razorpay order: %', v_entity ->> 'order_id' using errcode = 'XPORD';
    end if;
    v_outcome := private.order_json(v_order);
  elsif event = 'refund.processed' then
    v_entity := payload -> 'refund' -> 'entity';
    v_outcome := private.refund_payment(v_entity ->> 'id', v_entity ->> 'payment_id', (v_entity ->> 'amount')::integer);
  else
    v_outcome := jsonb_build_object('handled', false, 'reason', 'event not used');
  end if;
  update private.razorpay_webhook_events w set outcome = v_outcome where w.event_id = payment_webhook.event_id;
  return jsonb_build_object('event_id', event_id, 'event', event, 'outcome', v_outcome);
exception
  when invalid_text_representation or numeric_value_out_of_range then
    raise exception 'Malformed webhook payload: %', sqlerrm using errcode = 'XPBAD';
end
$$;
comment on function private.payment_webhook(text, text, jsonb) is 'Implementation of public.service_role_payment_webhook.';
revoke all on function private.payment_webhook(text, text, jsonb) from public;
grant execute on function private.payment_webhook(text, text, jsonb) to service_role;

create or replace function public.service_role_payment_webhook(event_id text, event text, payload jsonb)
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.payment_webhook(service_role_payment_webhook.event_id, service_role_payment_webhook.event, service_role_payment_webhook.payload)
$$;
comment on function public.service_role_payment_webhook(text, text, jsonb) is
  'A Razorpay webhook whose X-Razorpay-Signature the service checked: handled once per event_id '
  '(x-razorpay-event-id; a replay raises XPWHR and changes nothing). payment.captured and order.paid credit the '
  'payment (private.capture_payment), payment.failed marks the order attempted, refund.processed reverses '
  '(private.refund_payment); other events are recorded and ignored. Returns {event_id, event, outcome}. Errors: '
  'XPWHR replay, XPORD unknown order or payment, XPAMM amount differs, XPBAD malformed. service_role only.';
revoke all on function public.service_role_payment_webhook(text, text, jsonb) from public, anon, authenticated;
grant execute on function public.service_role_payment_webhook(text, text, jsonb) to service_role;

------------------------------------------------------------------------------
-- Expiry and reconciliation
------------------------------------------------------------------------------

create or replace function private.open_payment_orders(older_than_seconds integer,
                                                                   size integer)
returns jsonb
language sql
stable
security definer
set search_path = ''
as $$
  select coalesce(jsonb_agg(private.order_json(o) order by o.created_at), '[]')
    from (select * from public.payment_orders o
           where o.status in ('created', 'attempted') and o.razorpay_order_id is not null
             and o.created_at <= now() - make_interval(secs => greatest(coalesce(older_than_seconds, 900), 0))
           order by o.created_at
           limit least(greatest(coalesce(size, 100), 1), 1000)) o
$$;
comment on function private.open_payment_orders(integer, integer) is 'Implementation of public.service_role_open_payment_orders.';
revoke all on function private.open_payment_orders(integer, integer) from public;
grant execute on function private.open_payment_orders(integer, integer) to service_role;

create or replace function public.service_role_open_payment_orders(older_than_seconds integer default 900,
                                                                   size integer default 100)
returns jsonb
language sql
stable
security invoker
set search_path = ''
as $$
  select private.open_payment_orders(service_role_open_payment_orders.older_than_seconds, service_role_open_payment_orders.size)
$$;
comment on function public.service_role_open_payment_orders(integer, integer) is
  'Orders still waiting for a payment after older_than_seconds (default 900), oldest first, at most size (1 to '
  '1000): what the reconciliation job asks Razorpay about. Same shape as private.order_json. service_role only.';
revoke all on function public.service_role_open_payment_orders(integer, integer) from public, anon, authenticated;
grant execute on function public.service_role_open_payment_orders(integer, integer) to service_role;

create or replace function private.expire_payment_orders(at timestamptz)
returns integer
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_count integer;
begin
  perform private.assert_time(expire_payment_orders.at, 'at', interval '5 minutes');
  update public.payment_orders o set status = 'expired', updated_at = now()
   where o.status in ('new', 'created', 'attempted') and o.expires_at <= coalesce(expire_payment_orders.at, now())
     and not exists (select 1 from public.payments p where p.order_id = o.id);
  get diagnostics v_count = row_count;
  return v_count;
end
$$;
comment on function private.expire_payment_orders(timestamp with time zone) is 'Implementation of public.service_role_expire_payment_orders.';
revoke all on function private.expire_payment_orders(timestamp with time zone) from public;
grant execute on function private.expire_payment_orders(timestamp with time zone) to service_role;

create or replace function public.service_role_expire_payment_orders(at timestamptz default null)
returns integer
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.expire_payment_orders(service_role_expire_payment_orders.at)
$$;
comment on function public.service_role_expire_payment_orders(timestamp with time zone) is
  'Expires the open orders past their expires_at (at, default now) that have no payment; returns how many. A '
  'payment captured later is still credited. service_role only.';
revoke all on function public.service_role_expire_payment_orders(timestamp with time zone) from public, anon, authenticated;
grant execute on function public.service_role_expire_payment_orders(timestamp with time zone) to service_role;

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
