-- Rank cards people keep: holders of the "Custom rank card" unlock (tier_unlocks slug custom_rank_card,
-- reached with their tier) choose the card's accent and background from a safe set; the bot draws them.
--
-- Tables: public.rank_card_choices.
-- Tests: tests/sql/test_rank_cards.py

create or replace function private.set_rank_card(p_profile_id uuid, p_accent text, p_background text)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_level integer;
begin
  select p.level into v_level from public.profiles p where p.id = p_profile_id for update;
  if not found then
    raise exception 'Unknown profile: %', p_profile_id using errcode = 'XPPRF';
  end if;
  if p_accent is null or p_accent not in ('ember', 'gold', 'neon', 'rose', 'ocean', 'violet') then
    raise exception 'accent must be ember, gold, neon, rose, ocean or violet' using errcode = 'XPBAD';
  end if;
  if p_background is null or p_background not in ('slate', 'night', 'forest', 'wine', 'ocean') then
    raise exception 'background must be slate, night, forest, wine or ocean' using errcode = 'XPBAD';
  end if;
  if not exists (select 1 from public.tier_unlocks u join public.tiers t on t.slug = u.tier_slug
                  where u.slug = 'custom_rank_card' and t.min_level <= v_level) then
    raise exception 'Choosing rank card colours needs the Custom rank card unlock' using errcode = 'XPCRD';
  end if;
  insert into public.rank_card_choices as c (profile_id, accent, background)
  values (p_profile_id, p_accent, p_background)
  on conflict (profile_id) do update
    set accent = excluded.accent, background = excluded.background, updated_at = now();
  return jsonb_build_object('accent', p_accent, 'background', p_background);
end
$$;
comment on function private.set_rank_card(uuid, text, text) is
  'Implementation of set_my_rank_card and service_role_discord_set_rank_card.';
revoke all on function private.set_rank_card(uuid, text, text) from public;

create or replace function private.discord_set_rank_card(p_user_id text, p_accent text, p_background text)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_profile_id uuid;
begin
  perform private.discord_id('user_id', p_user_id);
  select i.profile_id into v_profile_id from public.identities i
   where i.provider = 'discord' and i.subject = p_user_id;
  if v_profile_id is null then
    raise exception 'No profile for Discord user %', p_user_id using errcode = 'XPPRF';
  end if;
  return private.set_rank_card(v_profile_id, p_accent, p_background);
end
$$;
comment on function private.discord_set_rank_card(text, text, text) is
  'Implementation of public.service_role_discord_set_rank_card.';
revoke all on function private.discord_set_rank_card(text, text, text) from public;
grant execute on function private.discord_set_rank_card(text, text, text) to service_role;

create or replace function public.service_role_discord_set_rank_card(user_id text, accent text, background text)
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.discord_set_rank_card(user_id, accent, background)
$$;
comment on function public.service_role_discord_set_rank_card(text, text, text) is
  'A Discord user chooses their rank card''s colours: accent ember|gold|neon|rose|ocean|violet, background '
  'slate|night|forest|wine|ocean. Returns {accent, background}. Needs the Custom rank card unlock (a tier '
  'reached whose unlocks include custom_rank_card). service_role only. Errors: XPBAD, XPPRF, XPCRD.';
revoke all on function public.service_role_discord_set_rank_card(text, text, text) from public;
grant execute on function public.service_role_discord_set_rank_card(text, text, text) to service_role;

create or replace function private.discord_rank_card(p_user_id text)
returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_choice record;
begin
  perform private.discord_id('user_id', p_user_id);
  select c.accent, c.background into v_choice
    from public.identities i
    join public.profiles p on p.id = i.profile_id
    join public.rank_card_choices c on c.profile_id = p.id
   where i.provider = 'discord' and i.subject = p_user_id
     -- A choice counts while the member still holds the unlock (a correction down may take it away).
     and exists (select 1 from public.tier_unlocks u join public.tiers t on t.slug = u.tier_slug
                  where u.slug = 'custom_rank_card' and t.min_level <= p.level);
  return jsonb_build_object('accent', v_choice.accent, 'background', v_choice.background);
end
$$;
comment on function private.discord_rank_card(text) is 'Implementation of public.service_role_discord_rank_card.';
revoke all on function private.discord_rank_card(text) from public;
grant execute on function private.discord_rank_card(text) to service_role;

create or replace function public.service_role_discord_rank_card(user_id text)
returns jsonb
language sql
stable
security invoker
set search_path = ''
as $$
  select private.discord_rank_card(user_id)
$$;
comment on function public.service_role_discord_rank_card(text) is
  'The colours a Discord user chose for their rank card: {accent, background}, both null when they chose '
  'none or no longer hold the Custom rank card unlock. service_role only. Errors: XPBAD.';
revoke all on function public.service_role_discord_rank_card(text) from public;
grant execute on function public.service_role_discord_rank_card(text) to service_role;
