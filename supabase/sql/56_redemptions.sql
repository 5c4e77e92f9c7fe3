-- Redemptions: items a person delivers (merchandise, gift cards, experiences, services) move
-- pending -> approved -> fulfilled, or rejected / cancelled with the points refunded and the stock restored;
-- each step is one redemption_events row (actor, time, note) and one notification to the member. Delivery
-- details are readable only by the member and admins. The admins' queue and a member's history.
--
-- Lock order (as in 55_store.sql): redemption, then item, then profile.
--
-- Tables: public.redemptions, public.redemption_events.
-- Tests: tests/sql/test_redemptions.py

------------------------------------------------------------------------------
-- Redemptions
------------------------------------------------------------------------------

create or replace function private.move_redemption(
  p_redemption_id bigint,
  p_status text,
  p_note text,
  p_actor_id uuid,
  p_actor_role text,
  p_as_admin boolean
)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
-- Allowed steps: pending -> approved | rejected | cancelled; approved -> fulfilled | rejected | cancelled.
-- Members may only cancel their own pending redemptions. rejected and cancelled refund the points and
-- restore the stock.
declare
  v_red public.redemptions;
  v_purchase public.store_purchases;
  v_item public.store_items;
  v_refund jsonb;
begin
  if p_status is null or p_status not in ('approved', 'fulfilled', 'rejected', 'cancelled') then
    raise exception 'status must be approved, fulfilled, rejected or cancelled' using errcode = 'XPBAD';
  end if;
  if p_note is not null and length(p_note) > 1000 then
    raise exception 'note must be at most 1000 characters' using errcode = 'XPBAD';
  end if;
  select * into v_red from public.redemptions r where r.id = p_redemption_id for update;
  if not found then
    raise exception 'Unknown redemption: %', p_redemption_id using errcode = 'XPRDU';
  end if;
  if not p_as_admin and (v_red.profile_id is distinct from p_actor_id or p_status <> 'cancelled') then
    raise exception 'Members may only cancel their own pending redemptions' using errcode = '42501';
  end if;
  if not ((v_red.status = 'pending' and p_status in ('approved', 'rejected', 'cancelled'))
          or (v_red.status = 'approved' and p_status in ('fulfilled', 'rejected', 'cancelled')))
     or (not p_as_admin and v_red.status <> 'pending') then
    raise exception 'A % redemption cannot become %', v_red.status, p_status using errcode = 'XPRDS';
  end if;
  select * into v_purchase from public.store_purchases sp where sp.id = v_red.purchase_id;
  select * into v_item from public.store_items i where i.id = v_red.item_id for update;

  if p_status in ('rejected', 'cancelled') then
    if v_item.stock is not null then
      update public.store_items i set stock = i.stock + 1, updated_at = now() where i.id = v_item.id;
    end if;
    if v_purchase.price_points > 0 then
      v_refund := private.apply_points(
        v_red.profile_id, 'refund', v_purchase.price_points, 'redemption_refund:' || v_red.id, p_actor_id,
        p_actor_role, coalesce(p_note, v_item.name || ' ' || p_status),
        jsonb_build_object('fn', 'move_redemption', 'redemption_id', v_red.id),
        jsonb_build_object('redemption_id', v_red.id, 'purchase_id', v_purchase.id, 'item', v_item.slug), false);
    end if;
    update public.store_purchases sp set status = 'refunded' where sp.id = v_purchase.id;
  end if;
  update public.redemptions r set status = p_status, updated_at = now() where r.id = v_red.id;
  insert into public.redemption_events (redemption_id, profile_id, status, actor_id, actor_role, note)
  values (v_red.id, v_red.profile_id, p_status, p_actor_id, p_actor_role, p_note);
  insert into public.notifications (profile_id, kind, title, body, data)
  values (v_red.profile_id, 'redemption_update', v_item.name || ': ' || p_status,
          concat_ws(' ', case when v_refund is not null then (v_refund ->> 'amount') || ' points refunded.' end, p_note),
          jsonb_build_object('redemption_id', v_red.id, 'item', v_item.slug, 'status', p_status,
                             'status_before', v_red.status,
                             'points_refunded', coalesce((v_refund ->> 'amount')::bigint, 0)));
  return jsonb_build_object('redemption_id', v_red.id, 'profile_id', v_red.profile_id, 'item', v_item.slug,
                            'status_before', v_red.status, 'status', p_status,
                            'points_refunded', coalesce((v_refund ->> 'amount')::bigint, 0),
                            'points_balance', (select p.points from public.profiles p where p.id = v_red.profile_id));
end
$$;
comment on function private.move_redemption(bigint, text, text, uuid, text, boolean) is
  'One step of a redemption (see the file header): the status, a redemption_events row with actor and note, a '
  'redemption_update notification, and on rejected/cancelled the points refund and the stock. Errors: XPRDU '
  'unknown redemption, XPRDS a step that status does not allow, 42501, XPBAD.';
revoke all on function private.move_redemption(bigint, text, text, uuid, text, boolean) from public;

create or replace function private.update_redemption(p_redemption_id bigint, p_status text, p_note text)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_actor_id uuid;
  v_actor_role text;
  v_admin boolean;
begin
  -- Moderators and admins approve redemptions (the approve_redemptions permission, 12_roles.sql).
  v_admin := private.has_permission('approve_redemptions');
  if v_admin then
    select a.actor_id, a.actor_role into v_actor_id, v_actor_role from private.assert_permission('approve_redemptions') a;
  else
    v_actor_id := (select auth.uid());
    v_actor_role := 'authenticated';
    if v_actor_id is null then
      raise exception 'Sign in first' using errcode = '42501';
    end if;
  end if;
  return private.move_redemption(p_redemption_id, p_status, nullif(btrim(p_note), ''), v_actor_id, v_actor_role,
                                 v_admin);
end
$$;
comment on function private.update_redemption(bigint, text, text) is 'Implementation of public.update_redemption.';
revoke all on function private.update_redemption(bigint, text, text) from public;
grant execute on function private.update_redemption(bigint, text, text) to service_role, authenticated;

create or replace function public.update_redemption(redemption_id bigint, status text, note text default null)
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.update_redemption(update_redemption.redemption_id, update_redemption.status, update_redemption.note)
$$;
comment on function public.update_redemption(bigint, text, text) is
  'Moves a redemption one step: moderators and admins (approve_redemptions) and service_role approve, fulfil or reject; a member cancels their own '
  'pending one. note (at most 1000 characters) is kept on the step and sent in the notification. Returns '
  '{redemption_id, profile_id, item, status_before, status, points_refunded, points_balance}. Errors: XPRDU, '
  'XPRDS, 42501, XPBAD.';
revoke all on function public.update_redemption(bigint, text, text) from public, anon;
grant execute on function public.update_redemption(bigint, text, text) to service_role, authenticated;

create or replace function public.service_role_update_redemption(
  actor_id uuid,
  redemption_id bigint,
  status text,
  note text default null
)
returns jsonb
language plpgsql
volatile
security invoker
set search_path = ''
as $$
declare
  v_result jsonb;
begin
  perform private.act_for(service_role_update_redemption.actor_id);
  v_result := public.update_redemption(service_role_update_redemption.redemption_id,
                                       service_role_update_redemption.status, service_role_update_redemption.note);
  perform set_config('xpbase.actor_id', '', true);
  return v_result;
end
$$;
comment on function public.service_role_update_redemption(uuid, bigint, text, text) is
  'update_redemption on behalf of an admin (the bot''s approve/reject buttons): the step names actor_id. Same '
  'answer and errors. service_role only.';
revoke all on function public.service_role_update_redemption(uuid, bigint, text, text) from public, anon, authenticated;
grant execute on function public.service_role_update_redemption(uuid, bigint, text, text) to service_role;

create or replace function private.list_redemptions(p_profile_id uuid, p_status text, p_size integer, p_before_id bigint)
returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_admin boolean := private.has_permission('approve_redemptions');
begin
  if p_size is null or p_size not between 1 and 100 then
    raise exception 'size must be 1 to 100' using errcode = 'XPBAD';
  end if;
  if p_status is not null and p_status not in ('pending', 'approved', 'fulfilled', 'rejected', 'cancelled') then
    raise exception 'Unknown status: %', p_status using errcode = 'XPBAD';
  end if;
  if not v_admin and (p_profile_id is null or p_profile_id is distinct from (select auth.uid())) then
    raise exception 'Only admins see other members'' redemptions' using errcode = '42501';
  end if;
  return (
    select coalesce(jsonb_agg(jsonb_build_object(
             'id', r.id, 'profile_id', r.profile_id, 'display_name', p.display_name, 'item', i.slug,
             'item_name', i.name, 'category', i.category, 'status', r.status, 'delivery', r.delivery,
             'points', sp.price_points,
             'created_at', to_char(r.created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
             'steps', (select jsonb_agg(jsonb_build_object(
                                'status', e.status, 'actor_id', e.actor_id, 'actor_role', e.actor_role, 'note', e.note,
                                'at', to_char(e.created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))
                              order by e.id)
                         from public.redemption_events e where e.redemption_id = r.id))
           order by r.id desc), '[]')
      from (select * from public.redemptions r
             where (p_profile_id is null or r.profile_id = p_profile_id)
               and (p_status is null or r.status = p_status)
               and (p_before_id is null or r.id < p_before_id)
             order by r.id desc limit p_size) r
      join public.profiles p on p.id = r.profile_id
      join public.store_items i on i.id = r.item_id
      join public.store_purchases sp on sp.id = r.purchase_id
  );
end
$$;
comment on function private.list_redemptions(uuid, text, integer, bigint) is
  'Redemptions newest first, with delivery details and steps; a member may list only their own.';
revoke all on function private.list_redemptions(uuid, text, integer, bigint) from public;
grant execute on function private.list_redemptions(uuid, text, integer, bigint) to service_role, authenticated;

create or replace function public.redemption_queue(status text default 'pending', size integer default 25,
                                                   before_id bigint default null)
returns jsonb
language sql
stable
security invoker
set search_path = ''
as $$
  select private.list_redemptions(null, redemption_queue.status, redemption_queue.size, redemption_queue.before_id)
$$;
comment on function public.redemption_queue(text, integer, bigint) is
  'The admins'' queue: every member''s redemptions in a status (default pending; null for all), newest first: '
  '[{id, profile_id, display_name, item, item_name, category, status, delivery, points, created_at, steps: '
  '[{status, actor_id, actor_role, note, at}]}]. size 1 to 100, before_id pages back. Errors: 42501 unless a '
  'moderator, admin (approve_redemptions) or service_role; XPBAD.';
revoke all on function public.redemption_queue(text, integer, bigint) from public, anon;
grant execute on function public.redemption_queue(text, integer, bigint) to service_role, authenticated;

create or replace function private.redemption_queue_for(p_actor_id uuid, p_status text, p_size integer,
                                                         p_before_id bigint)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_result jsonb;
begin
  -- The queue holds members' delivery details (emails, addresses): the person the backend acts for must hold
  -- approve_redemptions in their xpbase role; a Discord permission alone does not show it.
  perform private.act_for(p_actor_id);
  perform private.assert_permission('approve_redemptions');
  v_result := private.list_redemptions(null, p_status, p_size, p_before_id);
  perform set_config('xpbase.actor_id', '', true);
  return v_result;
end
$$;
comment on function private.redemption_queue_for(uuid, text, integer, bigint) is
  'Implementation of public.service_role_redemption_queue.';
revoke all on function private.redemption_queue_for(uuid, text, integer, bigint) from public;
grant execute on function private.redemption_queue_for(uuid, text, integer, bigint) to service_role;

create or replace function public.service_role_redemption_queue(
  actor_id uuid,
  status text default 'pending',
  size integer default 25,
  before_id bigint default null
)
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.redemption_queue_for(service_role_redemption_queue.actor_id, service_role_redemption_queue.status,
                                      service_role_redemption_queue.size, service_role_redemption_queue.before_id)
$$;
comment on function public.service_role_redemption_queue(uuid, text, integer, bigint) is
  'redemption_queue on behalf of a person (the bot''s /redemptions): answers only when actor_id''s role holds '
  'approve_redemptions (moderators, admins). Same answer as redemption_queue. Errors: 42501 (the actor may not), '
  'XPPRF (unknown actor), XPBAD. service_role only.';
revoke all on function public.service_role_redemption_queue(uuid, text, integer, bigint) from public, anon, authenticated;
grant execute on function public.service_role_redemption_queue(uuid, text, integer, bigint) to service_role;

create or replace function public.redemption_history(profile_id uuid default null, size integer default 25,
                                                     before_id bigint default null)
returns jsonb
language sql
stable
security invoker
set search_path = ''
as $$
  select private.list_redemptions(coalesce(redemption_history.profile_id, (select auth.uid())), null,
                                  redemption_history.size, redemption_history.before_id)
$$;
comment on function public.redemption_history(uuid, integer, bigint) is
  'One member''s redemptions (default: the caller''s), same rows as redemption_queue. Members read only their '
  'own (42501); admins and service_role anyone''s. Errors: 42501, XPBAD.';
revoke all on function public.redemption_history(uuid, integer, bigint) from public, anon;
grant execute on function public.redemption_history(uuid, integer, bigint) to service_role, authenticated;

------------------------------------------------------------------------------
-- Triggers
------------------------------------------------------------------------------

create or replace function private.tg_redemption_events__append_only()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  raise exception 'redemption_events is append-only: a step is a new row, never % it', lower(tg_op)
    using errcode = 'XPLED';
end
$$;
comment on function private.tg_redemption_events__append_only() is 'Refuses every update and delete of redemption steps.';
revoke all on function private.tg_redemption_events__append_only() from public;

drop trigger if exists _100_append_only on public.redemption_events;
create trigger _100_append_only before update or delete on public.redemption_events
  for each row execute function private.tg_redemption_events__append_only();
