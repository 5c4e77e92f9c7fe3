-- Supabase Auth mode (issue 13): when people sign in with Supabase Auth (GoTrue, supabase-js)
-- instead of, or beside, xpbase's own sign-in, every new auth.users row gets a profile with the
-- same id (so auth.uid() is the profile id in every xpbase policy), and every auth.identities row
-- becomes an identity of it (provider and subject as xpbase's own sign-in writes them: the
-- provider's account id, or for provider email the lower-cased address). The service verifies
-- GoTrue's access tokens (XPBASE_SUPABASE_AUTH_*, service/lib/access.py). On plain Postgres the
-- compat script creates auth.users and auth.identities with Supabase's columns.
--
-- Tables: none of its own (writes public.profiles and public.identities; reads auth.users, auth.identities).
-- Tests: tests/sql/test_supabase_auth.py

create or replace function private.tg_auth_users__profile()
returns trigger
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_meta jsonb := coalesce(new.raw_user_meta_data, '{}'::jsonb);
  v_name text := left(nullif(btrim(coalesce(v_meta ->> 'full_name', v_meta ->> 'name', v_meta ->> 'user_name',
                                            v_meta ->> 'preferred_username', '')), ''), 64);
  v_avatar text := nullif(btrim(coalesce(v_meta ->> 'avatar_url', v_meta ->> 'picture', '')), '');
  v_provider text := coalesce(new.raw_app_meta_data ->> 'provider', 'supabase');
begin
  -- Never the email address as a public name: members on leaderboards would show it.
  insert into public.profiles (id, display_name, avatar_url, tier)
  values (new.id,
          coalesce(v_name, left(case when v_provider ~ '^[a-z][a-z0-9_]{0,30}$' then v_provider else 'supabase' end
                                || ' member', 64)),
          case when v_avatar ~ '^https://[^\s]+$' and length(v_avatar) <= 500 then v_avatar end,
          public.tier_for_level(1))
  on conflict (id) do nothing;
  return new;
end
$$;
comment on function private.tg_auth_users__profile() is
  'After a GoTrue user is inserted: the profile with the same id (display name from raw_user_meta_data full_name, '
  'name, user_name or preferred_username, else "<provider> member"; avatar_url when an https URL of at most 500 '
  'characters). An existing profile of that id is kept.';
revoke all on function private.tg_auth_users__profile() from public;

drop trigger if exists _100_profile on auth.users;
create trigger _100_profile
  after insert on auth.users
  for each row execute function private.tg_auth_users__profile();

create or replace function private.tg_auth_identities__identity()
returns trigger
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_subject text := case when new.provider = 'email'
                         then lower(nullif(btrim(coalesce(new.identity_data ->> 'email', '')), ''))
                         else new.provider_id end;
  v_name text := left(nullif(btrim(coalesce(new.identity_data ->> 'full_name', new.identity_data ->> 'name',
                                            new.identity_data ->> 'user_name', '')), ''), 100);
begin
  if new.provider !~ '^[a-z][a-z0-9_.:-]{0,63}$' or v_subject is null or length(v_subject) not between 1 and 255
     or not exists (select 1 from public.profiles p where p.id = new.user_id) then
    return new;
  end if;
  -- An account that already belongs to another profile (signed in through xpbase before) stays there.
  insert into public.identities (profile_id, provider, subject, display_name, last_sign_in_at)
  values (new.user_id, new.provider, v_subject, v_name, new.last_sign_in_at)
  on conflict (provider, subject) do nothing;
  return new;
end
$$;
comment on function private.tg_auth_identities__identity() is
  'After a GoTrue identity is inserted: the same (provider, subject) in public.identities for the profile of '
  'user_id (subject: provider_id, or the lower-cased address for provider email). Skipped when the identity '
  'belongs to another profile already, or its provider or subject does not fit public.identities.';
revoke all on function private.tg_auth_identities__identity() from public;

drop trigger if exists _100_identity on auth.identities;
create trigger _100_identity
  after insert on auth.identities
  for each row execute function private.tg_auth_identities__identity();
