-- admin_save_event checks the layer, tier and status names itself: an unknown one is XPBAD, not a foreign key violation (a 500 over HTTP, found by schemathesis)
--
-- Written by `xpbase migration new` from the feature files in supabase/sql/:
-- the function and trigger definitions that changed since the last migration.
-- Edit the feature files, not this file; landed migrations never change.
-- Changed:
--   function private.admin_save_event(jsonb, uuid)
--   function public.admin_save_event(jsonb, uuid)

-- from supabase/sql/40_events.sql -------------------------------------------

------------------------------------------------------------------------------
-- Managing events
------------------------------------------------------------------------------
create or replace function private.admin_save_event(p_event jsonb, p_profile_id uuid)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_actor record := private.assert_can_review_claims(p_profile_id);
  v_e jsonb := coalesce(p_event, '{}');
  v_id bigint;
  v_code text := nullif(v_e ->> 'check_in_code', '');
  v_layer text;
begin
  if jsonb_typeof(v_e) <> 'object' then
    raise exception 'event must be a JSON object' using errcode = 'XPBAD';
  end if;
  if v_code is not null and length(v_code) not between 4 and 64 then
    raise exception 'A check-in code is 4 to 64 characters' using errcode = 'XPBAD';
  end if;
  if (v_e ->> 'ends_at')::timestamptz - (v_e ->> 'starts_at')::timestamptz > interval '30 days' then
    raise exception 'An event lasts at most 30 days' using errcode = 'XPBAD';
  end if;
  -- Names are checked here, so a wrong one is a clear XPBAD rather than a foreign key violation.
  if v_e ? 'id' then
    select e.layer_slug into v_layer from public.events e where e.id = (v_e ->> 'id')::bigint;
    if not found then
      raise exception 'Unknown event: %', left(v_e ->> 'id', 64) using errcode = 'XPEVU';
    end if;
  else
    v_layer := v_e ->> 'layer';
    if not exists (select 1 from public.layers l where l.slug = v_layer) then
      raise exception 'Unknown layer: %', left(coalesce(v_layer, 'null'), 64) using errcode = 'XPBAD';
    end if;
  end if;
  if v_e ->> 'min_tier' is not null
     and not exists (select 1 from public.tiers t where t.slug = v_e ->> 'min_tier') then
    raise exception 'Unknown tier: %', left(v_e ->> 'min_tier', 64) using errcode = 'XPBAD';
  end if;
  if v_e ->> 'min_status' is not null and not exists (
       select 1 from public.layer_statuses s where s.layer_slug = v_layer and s.slug = v_e ->> 'min_status') then
    raise exception 'Unknown status of layer %: %', v_layer, left(v_e ->> 'min_status', 64) using errcode = 'XPBAD';
  end if;
  if v_e ? 'id' then
    update public.events e
       set title = coalesce(v_e ->> 'title', e.title),
           description = coalesce(v_e ->> 'description', e.description),
           min_status = case when v_e ? 'min_status' then v_e ->> 'min_status' else e.min_status end,
           min_level = case when v_e ? 'min_level' then (v_e ->> 'min_level')::integer else e.min_level end,
           min_tier = case when v_e ? 'min_tier' then v_e ->> 'min_tier' else e.min_tier end,
           capacity = case when v_e ? 'capacity' then (v_e ->> 'capacity')::integer else e.capacity end,
           starts_at = coalesce((v_e ->> 'starts_at')::timestamptz, e.starts_at),
           ends_at = coalesce((v_e ->> 'ends_at')::timestamptz, e.ends_at),
           location = case when v_e ? 'location' then v_e ->> 'location' else e.location end,
           online_url = case when v_e ? 'online_url' then v_e ->> 'online_url' else e.online_url end,
           xp = coalesce((v_e ->> 'xp')::integer, e.xp),
           cancelled = coalesce((v_e ->> 'cancelled')::boolean, e.cancelled),
           updated_at = now()
     where e.id = (v_e ->> 'id')::bigint
    returning e.id into v_id;
    if v_id is null then
      raise exception 'Unknown event: %', v_e ->> 'id' using errcode = 'XPEVU';
    end if;
  else
    insert into public.events (title, description, layer_slug, min_status, min_level, min_tier, capacity,
                               starts_at, ends_at, location, online_url, xp, created_by)
    values (v_e ->> 'title', coalesce(v_e ->> 'description', ''), v_e ->> 'layer', v_e ->> 'min_status',
            (v_e ->> 'min_level')::integer, v_e ->> 'min_tier', (v_e ->> 'capacity')::integer,
            (v_e ->> 'starts_at')::timestamptz, (v_e ->> 'ends_at')::timestamptz, v_e ->> 'location',
            v_e ->> 'online_url', coalesce((v_e ->> 'xp')::integer, 50), v_actor.actor_id)
    returning id into v_id;
  end if;
  if v_code is not null then
    insert into private.event_check_in_codes (event_id, code_hash)
    values (v_id, pg_catalog.sha256(convert_to(v_code, 'UTF8')))
    on conflict (event_id) do update set code_hash = excluded.code_hash;
  end if;
  return private.event_json(v_id, null);
end
$$;

comment on function private.admin_save_event(jsonb, uuid) is 'Implementation of public.admin_save_event.';

revoke all on function private.admin_save_event(jsonb, uuid) from public;

grant execute on function private.admin_save_event(jsonb, uuid) to authenticated, service_role;

create or replace function public.admin_save_event(event jsonb, profile_id uuid default null)
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.admin_save_event(admin_save_event.event, admin_save_event.profile_id)
$$;

comment on function public.admin_save_event(jsonb, uuid) is
  'Creates an event, or with id changes the keys given: {title, description, layer (new only), min_status (a '
  'status of the layer), min_level, min_tier, capacity, starts_at, ends_at (UTC, at most 30 days apart), '
  'location and/or online_url (https), xp (10-500, awarded on attendance), cancelled, check_in_code (4-64 '
  'characters, stored hashed)}. Reviewers only (the claim reviewers: private.assert_can_review_claims). Answers '
  'the event. Errors: XPEVU unknown id, XPBAD (also an unknown layer, status or tier), 23514 values out of range.';

revoke all on function public.admin_save_event(jsonb, uuid) from public, anon;

grant execute on function public.admin_save_event(jsonb, uuid) to authenticated, service_role;
