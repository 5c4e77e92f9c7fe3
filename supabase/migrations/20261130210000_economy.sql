-- The economy (issue 11): a points ledger, a store, redemptions with approval, XP packages paid
-- with Razorpay.
--
-- Until now points were a bare counter (profiles.points) that awards and season rewards bumped
-- without a record, and nothing could spend them. This migration adds:
-- - public.points_ledger: append-only, one row per change of a member's points (earned with XP,
--   season reward, purchase, refund, admin correction, payment reversal), with idempotency key,
--   actor and reason; profiles.points becomes its cached sum. Existing balances get one
--   opening_balance row each, so the sum holds from the start;
-- - the store: public.store_items (items as data), public.store_purchases (one row per purchase,
--   points or rupees), public.inventory (what members own), profiles.rank_card_style;
-- - redemptions for items a person delivers: public.redemptions and one public.redemption_events
--   row per step (actor, time, note);
-- - XP packages and Razorpay: public.xp_packages (₹99 -> 100 XP seeded), public.payment_orders,
--   public.payments (unique on the Razorpay payment id: the exactly-once credit),
--   public.payment_refunds, and private.razorpay_webhook_events (de-duplication by event id).
-- Every decision is in supabase/sql/32_points.sql, 55_store.sql and 57_payments.sql; this file
-- holds shapes, constraints, grants, RLS and the seed rows of the new tables.

------------------------------------------------------------------------------
-- Points ledger
------------------------------------------------------------------------------

create table public.points_ledger (
  id bigint generated always as identity primary key,
  profile_id uuid not null references public.profiles (id),
  kind text not null check (kind in ('opening_balance', 'earned', 'season_reward', 'purchase', 'refund',
                                     'admin_adjustment', 'reversal')),
  amount bigint not null,
  balance_after bigint not null check (balance_after >= 0),
  idempotency_key text not null unique check (length(idempotency_key) between 1 and 256),
  actor_id uuid references public.profiles (id),
  actor_role text not null,
  reason text check (reason is null or length(reason) <= 500),
  xp_ledger_id bigint references public.xp_ledger (id),
  reverses_id bigint references public.points_ledger (id),
  request jsonb not null default '{}',
  ref jsonb not null default '{}',
  created_at timestamptz not null default now()
);
comment on table public.points_ledger is
  'Append-only record of every change of a member''s spendable points: one row per change (kind '
  'opening_balance, earned with XP, season_reward, purchase, refund, admin_adjustment, reversal), amount '
  'positive or negative, balance_after the balance it left (never negative). profiles.points always equals '
  'sum(amount) of the member''s rows. idempotency_key makes each change happen once; request holds the call''s '
  'parameters (to detect a reused key); ref links what caused it (purchase, redemption, payment, season).';
create index points_ledger_profile_id_idx on public.points_ledger (profile_id, id desc);
create index points_ledger_actor_id_idx on public.points_ledger (actor_id) where actor_id is not null;
create index points_ledger_xp_ledger_id_idx on public.points_ledger (xp_ledger_id) where xp_ledger_id is not null;
create index points_ledger_reverses_id_idx on public.points_ledger (reverses_id) where reverses_id is not null;

insert into public.points_ledger (profile_id, kind, amount, balance_after, idempotency_key, actor_role, reason)
select p.id, 'opening_balance', p.points, p.points, 'opening_balance:' || p.id, 'service_role',
       'Balance before the points ledger existed'
  from public.profiles p
 where p.points > 0;

------------------------------------------------------------------------------
-- The store
------------------------------------------------------------------------------

create table public.store_items (
  id bigint generated always as identity primary key,
  slug text not null unique check (slug ~ '^[a-z][a-z0-9_]{0,63}$'),
  name text not null check (length(name) between 1 and 100),
  description text not null default '' check (length(description) <= 2000),
  category text not null check (category in ('cosmetic', 'tool', 'streak_freeze', 'merchandise', 'gift_card',
                                             'experience', 'service')),
  price_points integer check (price_points is null or price_points > 0),
  price_paise integer check (price_paise is null or price_paise >= 100),
  stock integer check (stock is null or stock >= 0),
  per_member_limit integer check (per_member_limit is null or per_member_limit > 0),
  starts_at timestamptz,
  ends_at timestamptz,
  image_url text check (image_url is null or (image_url ~ '^https://' and length(image_url) <= 500)),
  required_tier text references public.tiers (slug) on update cascade,
  required_layer text references public.layers (slug) on update cascade,
  required_layer_xp bigint not null default 0 check (required_layer_xp >= 0),
  freezes integer not null default 0 check (freezes between 0 and 10),
  tool_slug text check (tool_slug is null or tool_slug ~ '^[a-z][a-z0-9_]{0,63}$'),
  rank_card_style text check (rank_card_style is null or rank_card_style ~ '^[a-z][a-z0-9_]{0,31}$'),
  delivery text not null default 'none' check (delivery in ('none', 'email', 'address', 'discord')),
  active boolean not null default true,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  check (price_points is not null or price_paise is not null),
  check (starts_at is null or ends_at is null or starts_at < ends_at),
  check (category <> 'streak_freeze' or freezes > 0),
  check (category <> 'tool' or tool_slug is not null),
  check ((category in ('merchandise', 'gift_card', 'experience', 'service')) = (delivery <> 'none'))
);
comment on table public.store_items is
  'What the store sells, as data. category decides what a purchase grants (55_store.sql): streak_freeze adds '
  '`freezes` to the held streak freezes (within the check-in rule''s maximum), cosmetic goes into the inventory '
  '(and rank_card_style, when set, becomes the member''s rank card), tool unlocks tool_slug, and merchandise, '
  'gift_card, experience and service start a redemption a person fulfils (delivery: which details the member '
  'gives: email, address, or discord for none beyond their account). Prices: price_points (points) and/or '
  'price_paise (Razorpay, paise). stock null = unlimited; per_member_limit null = none; sold in '
  '[starts_at, ends_at) while active; required_tier (or a higher one) and required_layer_xp XP in required_layer.';
create index store_items_required_tier_idx on public.store_items (required_tier);
create index store_items_required_layer_idx on public.store_items (required_layer);

alter table public.profiles add column rank_card_style text
  check (rank_card_style is null or rank_card_style ~ '^[a-z][a-z0-9_]{0,31}$');
comment on column public.profiles.rank_card_style is
  'The rank card style the member bought last (store_items.rank_card_style); null is the default card.';

create table public.store_purchases (
  id bigint generated always as identity primary key,
  profile_id uuid not null references public.profiles (id),
  item_id bigint not null references public.store_items (id),
  price_points integer not null default 0 check (price_points >= 0),
  price_paise integer not null default 0 check (price_paise >= 0),
  status text not null default 'completed' check (status in ('completed', 'refunded')),
  idempotency_key text not null unique check (length(idempotency_key) between 1 and 256),
  points_ledger_id bigint references public.points_ledger (id),
  payment_id text,
  grants jsonb not null default '{}',
  request jsonb not null default '{}',
  created_at timestamptz not null default now()
);
comment on table public.store_purchases is
  'One row per item bought, with points (points_ledger_id, the debit) or rupees (payment_id, the Razorpay '
  'payment). grants says what it gave (freezes, inventory, tool, rank card, redemption). status refunded when '
  'a redemption was rejected or cancelled (points back, stock restored).';
create index store_purchases_profile_item_idx on public.store_purchases (profile_id, item_id);
create index store_purchases_item_id_idx on public.store_purchases (item_id);
create index store_purchases_points_ledger_id_idx on public.store_purchases (points_ledger_id);

create table public.inventory (
  profile_id uuid not null references public.profiles (id),
  item_id bigint not null references public.store_items (id),
  quantity integer not null default 1 check (quantity >= 0),
  acquired_at timestamptz not null default now(),
  primary key (profile_id, item_id)
);
comment on table public.inventory is
  'Cosmetics and tools a member owns (quantity of each item). A tool item''s tool_slug is unlocked for them.';
create index inventory_item_id_idx on public.inventory (item_id);

------------------------------------------------------------------------------
-- Redemptions
------------------------------------------------------------------------------

create table public.redemptions (
  id bigint generated always as identity primary key,
  purchase_id bigint not null unique references public.store_purchases (id),
  profile_id uuid not null references public.profiles (id),
  item_id bigint not null references public.store_items (id),
  status text not null default 'pending' check (status in ('pending', 'approved', 'fulfilled', 'rejected',
                                                            'cancelled')),
  delivery jsonb not null default '{}' check (jsonb_typeof(delivery) = 'object' and length(delivery::text) <= 2000),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
comment on table public.redemptions is
  'An item a person delivers (merchandise, gift card, experience, service): pending -> approved -> fulfilled, '
  'or rejected / cancelled with the points refunded and the stock restored. delivery holds what the member '
  'gave (email or address): readable only by the member and admins. Each step is a redemption_events row.';
create index redemptions_profile_id_idx on public.redemptions (profile_id, id desc);
create index redemptions_status_idx on public.redemptions (status, id);
create index redemptions_item_id_idx on public.redemptions (item_id);

create table public.redemption_events (
  id bigint generated always as identity primary key,
  redemption_id bigint not null references public.redemptions (id),
  profile_id uuid not null references public.profiles (id),
  status text not null check (status in ('pending', 'approved', 'fulfilled', 'rejected', 'cancelled')),
  actor_id uuid references public.profiles (id),
  actor_role text not null,
  note text check (note is null or length(note) <= 1000),
  created_at timestamptz not null default now()
);
comment on table public.redemption_events is
  'One row per step of a redemption: the status it reached, who did it (actor), when, and their note. '
  'profile_id is the redeeming member (for row-level security).';
create index redemption_events_redemption_id_idx on public.redemption_events (redemption_id, id);
create index redemption_events_profile_id_idx on public.redemption_events (profile_id);
create index redemption_events_actor_id_idx on public.redemption_events (actor_id) where actor_id is not null;

------------------------------------------------------------------------------
-- XP packages and Razorpay payments
------------------------------------------------------------------------------

create table public.xp_packages (
  slug text primary key check (slug ~ '^[a-z][a-z0-9_]{0,63}$'),
  name text not null check (length(name) between 1 and 100),
  xp integer not null check (xp between 1 and 100000),
  amount_paise integer not null check (amount_paise >= 100),
  currency text not null default 'INR' check (currency ~ '^[A-Z]{3}$'),
  active boolean not null default true,
  position integer not null default 0
);
comment on table public.xp_packages is
  'XP sold for money: xp (granted through award_xp, activity xp_purchase) for amount_paise (paise, the '
  'smallest unit of currency). Only active packages can be ordered.';

create table public.payment_orders (
  id uuid primary key default gen_random_uuid(),
  profile_id uuid not null references public.profiles (id),
  package_slug text references public.xp_packages (slug) on update cascade,
  item_id bigint references public.store_items (id),
  xp integer check (xp is null or xp > 0),
  amount_paise integer not null check (amount_paise >= 100),
  currency text not null check (currency ~ '^[A-Z]{3}$'),
  razorpay_order_id text unique check (razorpay_order_id is null or length(razorpay_order_id) between 1 and 64),
  status text not null default 'new' check (status in ('new', 'created', 'attempted', 'paid', 'failed',
                                                       'expired')),
  last_error text,
  expires_at timestamptz not null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  paid_at timestamptz,
  check ((package_slug is null) <> (item_id is null))
);
comment on table public.payment_orders is
  'Our side of a Razorpay order: who pays, for which package (xp snapshot) or store item, amount_paise and '
  'currency taken from our rows (never from the client). status: new (Razorpay not asked yet), created '
  '(razorpay_order_id known, awaiting payment), attempted (a payment failed; the member may retry), paid, '
  'failed (Razorpay refused the order), expired (no payment by expires_at). Written by service_role functions.';
create index payment_orders_profile_id_idx on public.payment_orders (profile_id, created_at desc);
create index payment_orders_open_idx on public.payment_orders (created_at) where status in ('new', 'created', 'attempted');
create index payment_orders_package_slug_idx on public.payment_orders (package_slug);
create index payment_orders_item_id_idx on public.payment_orders (item_id);

create table public.payments (
  razorpay_payment_id text primary key check (length(razorpay_payment_id) between 1 and 64),
  order_id uuid not null references public.payment_orders (id),
  profile_id uuid not null references public.profiles (id),
  amount_paise integer not null check (amount_paise > 0),
  refunded_paise integer not null default 0 check (refunded_paise >= 0 and refunded_paise <= amount_paise),
  status text not null default 'captured' check (status in ('captured', 'partially_refunded', 'refunded')),
  source text not null check (source in ('verify', 'webhook', 'reconcile')),
  xp_granted integer not null default 0,
  points_granted integer not null default 0,
  xp_ledger_id bigint references public.xp_ledger (id),
  purchase_id bigint references public.store_purchases (id),
  fulfilled boolean not null default true,
  created_at timestamptz not null default now()
);
comment on table public.payments is
  'Each captured Razorpay payment, credited exactly once: the primary key is the Razorpay payment id, written '
  'in the same transaction as the XP award (xp_ledger_id) or the item purchase (purchase_id). source says '
  'which path arrived first (verify, webhook, reconcile). fulfilled false: an item sold out before the payment '
  'arrived (to be refunded). refunded_paise is the sum of its refunds.';
create index payments_order_id_idx on public.payments (order_id);
create index payments_profile_id_idx on public.payments (profile_id);
create index payments_xp_ledger_id_idx on public.payments (xp_ledger_id);
create index payments_purchase_id_idx on public.payments (purchase_id);

create table public.payment_refunds (
  razorpay_refund_id text primary key check (length(razorpay_refund_id) between 1 and 64),
  razorpay_payment_id text not null references public.payments (razorpay_payment_id),
  profile_id uuid not null references public.profiles (id),
  amount_paise integer not null check (amount_paise > 0),
  xp_reversed integer not null default 0,
  points_reversed integer not null default 0,
  xp_floored boolean not null default false,
  points_floored boolean not null default false,
  xp_ledger_id bigint references public.xp_ledger (id),
  points_ledger_id bigint references public.points_ledger (id),
  created_at timestamptz not null default now()
);
comment on table public.payment_refunds is
  'Each Razorpay refund, applied once (keyed on its id): the XP and points of the payment it reversed '
  '(proportional to the amount refunded), and whether the member held less than that (floored: neither goes '
  'below zero).';
create index payment_refunds_payment_idx on public.payment_refunds (razorpay_payment_id);
create index payment_refunds_profile_id_idx on public.payment_refunds (profile_id);
create index payment_refunds_xp_ledger_id_idx on public.payment_refunds (xp_ledger_id);
create index payment_refunds_points_ledger_id_idx on public.payment_refunds (points_ledger_id);

create table private.razorpay_webhook_events (
  event_id text primary key check (length(event_id) between 1 and 128),
  event text not null,
  received_at timestamptz not null default now(),
  outcome jsonb not null default '{}'
);
comment on table private.razorpay_webhook_events is
  'Razorpay webhook deliveries already handled, by x-razorpay-event-id: a replay changes nothing.';

------------------------------------------------------------------------------
-- Row-level security and grants
------------------------------------------------------------------------------

-- Configuration: anyone reads, service_role writes (admins through their RPCs).
alter table public.store_items enable row level security;
alter table public.xp_packages enable row level security;
revoke all on public.store_items, public.xp_packages from anon, authenticated, service_role;
grant select on public.store_items, public.xp_packages to anon, authenticated;
grant select, insert, update, delete on public.store_items, public.xp_packages to service_role;
create policy "Anyone can read the store items." on public.store_items for select to anon, authenticated using (true);
create policy "Anyone can read the XP packages." on public.xp_packages for select to anon, authenticated using (true);

-- Member-owned records: a member reads their own; only the economy's functions write.
alter table public.points_ledger enable row level security;
alter table public.store_purchases enable row level security;
alter table public.inventory enable row level security;
alter table public.payment_orders enable row level security;
alter table public.payments enable row level security;
alter table public.payment_refunds enable row level security;
revoke all on public.points_ledger, public.store_purchases, public.inventory, public.payment_orders,
  public.payments, public.payment_refunds
  from anon, authenticated, service_role;
grant select on public.points_ledger, public.store_purchases, public.inventory, public.payment_orders,
  public.payments, public.payment_refunds
  to authenticated, service_role;
create policy "Members can read their own points ledger." on public.points_ledger
  for select to authenticated using (profile_id = (select auth.uid()));
create policy "Members can read their own purchases." on public.store_purchases
  for select to authenticated using (profile_id = (select auth.uid()));
create policy "Members can read their own inventory." on public.inventory
  for select to authenticated using (profile_id = (select auth.uid()));
create policy "Members can read their own payment orders." on public.payment_orders
  for select to authenticated using (profile_id = (select auth.uid()));
create policy "Members can read their own payments." on public.payments
  for select to authenticated using (profile_id = (select auth.uid()));
create policy "Members can read their own refunds." on public.payment_refunds
  for select to authenticated using (profile_id = (select auth.uid()));

-- Redemptions carry delivery details: the member and admins read them, nobody else.
alter table public.redemptions enable row level security;
alter table public.redemption_events enable row level security;
revoke all on public.redemptions, public.redemption_events from anon, authenticated, service_role;
grant select on public.redemptions, public.redemption_events to authenticated, service_role;
create policy "Members read their own redemptions, admins all." on public.redemptions
  for select to authenticated using (
    profile_id = (select auth.uid())
    or exists (select 1 from public.profiles p where p.id = (select auth.uid()) and p.role = 'admin')
  );
create policy "Members read their own redemption steps, admins all." on public.redemption_events
  for select to authenticated using (
    profile_id = (select auth.uid())
    or exists (select 1 from public.profiles p where p.id = (select auth.uid()) and p.role = 'admin')
  );

alter table private.razorpay_webhook_events enable row level security;
revoke all on private.razorpay_webhook_events from anon, authenticated, service_role;

------------------------------------------------------------------------------
-- Seed rows (once; a community edits them afterwards)
------------------------------------------------------------------------------

insert into public.xp_packages (slug, name, xp, amount_paise, currency, active, position) values
  ('xp_100', '100 XP', 100, 9900, 'INR', true, 1)
on conflict (slug) do nothing;

-- No required_tier: tiers are seed.sql's rows, which a fresh database gets after its migrations (set it with
-- admin_save_store_item, e.g. 'member' for the tier whose unlock is called "Streak freezes").
insert into public.store_items (slug, name, description, category, price_points, freezes)
values ('streak_freeze', 'Streak freeze', 'Keeps your streak through one missed day.', 'streak_freeze', 500, 1)
on conflict (slug) do nothing;
