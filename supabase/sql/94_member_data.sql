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

create or replace function public.my_export()
returns jsonb
language plpgsql
stable
security invoker
set search_path = ''
as $$
begin
  if (select auth.uid()) is null then
    raise exception 'Sign in to export your data' using errcode = '42501';
  end if;
  return private.member_export((select auth.uid()));
end
$$;
comment on function public.my_export() is
  'Everything held about the caller: {exported_at, profile (every column), erased_at, identities [{provider, '
  'subject, created_at}], layers [{layer, xp, status}], seasons [{season_id, xp}], servers [Discord ids], '
  'ledger [{id, activity, layer, season_id, amount, season_amount, points, occurred_at, idempotency_key, '
  'reason}], chat_messages [{id, body, created_at}]}; times are UTC ISO 8601, amounts XP. Errors: 42501, XPPRF.';
revoke all on function public.my_export() from public;
grant execute on function public.my_export() to authenticated;

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

create or replace function public.erase_me()
returns jsonb
language plpgsql
volatile
security invoker
set search_path = ''
as $$
begin
  if (select auth.uid()) is null then
    raise exception 'Sign in to erase your data' using errcode = '42501';
  end if;
  return private.erase_profile((select auth.uid()));
end
$$;
comment on function public.erase_me() is
  'Erases the caller: display name becomes "Deleted member", bio, avatar, social links and time zone are '
  'cleared, the profile leaves every board; identities, sessions (every token stops working), push devices, '
  'notification preferences, link codes, notifications and server memberships are removed; chat messages keep '
  'their place with "[erased]" as body. XP, points and the ledger stay against the anonymous profile. Returns '
  '{profile_id, erased (false when it was erased before), removed {identities, sessions, push_devices, '
  'notifications, chat_messages}}. Errors: 42501, XPPRF.';
revoke all on function public.erase_me() from public;
grant execute on function public.erase_me() to authenticated;

create or replace function public.admin_erase_profile(profile_id uuid)
returns jsonb
language plpgsql
volatile
security invoker
set search_path = ''
as $$
begin
  -- private.erase_profile refuses everyone but the member themselves, admins and the backend.
  return private.erase_profile(admin_erase_profile.profile_id);
end
$$;
comment on function public.admin_erase_profile(uuid) is
  'Erases a member at an admin''s hands, as public.erase_me does for oneself; same answer. Admins and '
  'service_role. Errors: 42501, XPBAD, XPPRF.';
revoke all on function public.admin_erase_profile(uuid) from public;
grant execute on function public.admin_erase_profile(uuid) to authenticated, service_role;
