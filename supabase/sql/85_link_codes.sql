-- Linking a Discord account: one-time link codes a signed-in member creates and the bot
-- redeems.
--
-- Tables: private.link_codes.
-- Tests: tests/sql/test_link_codes.py

------------------------------------------------------------------------------
-- Discord account linking
------------------------------------------------------------------------------
-- A signed-in member creates a code (create_link_code), the bot's
-- `/link <code>` redeems it (service_role_redeem_link_code). Codes are 10
-- Crockford base32 characters (50 bits), shown as ABCDE-FGHJK and accepted in
-- any case, with or without the dash, O read as 0 and I/L as 1.
--
-- SQLSTATEs of this section (xpbase/errors.py):
--   XPLCU  unknown link code          XPLCX  link code expired or replaced
--   XPLCD  link code already used     XPLCR  too many link codes this hour

create or replace function private.normalize_link_code(p_code text)
returns text
language sql
immutable
set search_path = ''
as $$
  select translate(upper(regexp_replace(coalesce(p_code, ''), '[\s-]', '', 'g')), 'OIL', '011')
$$;
comment on function private.normalize_link_code(text) is
  'A link code as stored: dashes and spaces removed, upper case, O read as 0 and I, L as 1 (Crockford base32).';
revoke all on function private.normalize_link_code(text) from public;


create or replace function private.create_link_code()
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_profile_id uuid := (select auth.uid());
  v_alphabet constant text := '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
  v_ttl integer;
  v_limit integer;
  v_recent integer;
  v_oldest timestamptz;
  v_bits bigint;
  v_code text := '';
  v_expires_at timestamptz;
begin
  if v_profile_id is null then
    raise exception 'Sign in to create a link code' using errcode = '42501';
  end if;
  if not exists (select 1 from public.profiles p where p.id = v_profile_id) then
    raise exception 'Unknown profile: %', v_profile_id using errcode = 'XPPRF';
  end if;
  select s.link_code_ttl_seconds, s.link_code_hourly_limit into v_ttl, v_limit from public.auth_settings s limit 1;
  v_ttl := coalesce(v_ttl, 600);
  v_limit := coalesce(v_limit, 5);

  -- One member's code creations run one at a time, so the hourly count holds.
  perform pg_advisory_xact_lock(hashtextextended('link code' || chr(31) || v_profile_id::text, 0));
  select count(*), min(c.created_at) into v_recent, v_oldest
    from private.link_codes c
   where c.profile_id = v_profile_id and c.created_at > now() - interval '1 hour';
  if v_recent >= v_limit then
    raise exception 'At most % link codes per hour; try again after %', v_limit,
      private.utc_text(v_oldest + interval '1 hour') using errcode = 'XPLCR';
  end if;

  update private.link_codes c set replaced_at = now()
   where c.profile_id = v_profile_id and c.used_at is null and c.replaced_at is null and c.expires_at > now();
  delete from private.link_codes c where c.profile_id = v_profile_id and c.created_at < now() - interval '1 day';

  -- 50 bits from the server's strong random source (gen_random_uuid uses pg_strong_random).
  v_bits := ('x' || encode(substring(sha256(uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid())) from 1 for 7), 'hex'))::bit(56)::bigint;
  for i in 0..9 loop
    v_code := v_code || substr(v_alphabet, ((v_bits >> (5 * i)) & 31)::integer + 1, 1);
  end loop;
  v_expires_at := now() + make_interval(secs => v_ttl);
  insert into private.link_codes (profile_id, code_hash, expires_at)
  values (v_profile_id, sha256(convert_to(v_code, 'UTF8')), v_expires_at);
  return jsonb_build_object(
    'code', substr(v_code, 1, 5) || '-' || substr(v_code, 6, 5),
    'expires_at', private.utc_text(v_expires_at),
    'ttl_seconds', v_ttl);
end
$$;
comment on function private.create_link_code() is 'Implementation of public.create_link_code.';
revoke all on function private.create_link_code() from public;
grant execute on function private.create_link_code() to authenticated;

create or replace function public.create_link_code()
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.create_link_code()
$$;
comment on function public.create_link_code() is
  'A one-time code that links a Discord account to the caller''s profile through the bot''s /link command: '
  '{code (ABCDE-FGHJK), expires_at (UTC), ttl_seconds}. Valid auth_settings.link_code_ttl_seconds (default 600); '
  'making a new code replaces the caller''s earlier unused ones; at most auth_settings.link_code_hourly_limit '
  '(default 5) per rolling hour. Errors: XPLCR too many codes this hour, 42501 not signed in, XPPRF no profile. '
  'authenticated only.';
revoke all on function public.create_link_code() from public, anon, service_role;
grant execute on function public.create_link_code() to authenticated;

create or replace function private.redeem_link_code(
  p_code text,
  p_provider text,
  p_subject text,
  p_display_name text
)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_code text := private.normalize_link_code(p_code);
  v_row private.link_codes;
  v_result jsonb;
begin
  if v_code !~ '^[0-9A-HJKMNP-TV-Z]{10}$' then
    raise exception 'A link code is 10 letters and digits, like ABCDE-12345' using errcode = 'XPBAD';
  end if;
  perform private.check_identity_args(p_provider, p_subject);
  select * into v_row from private.link_codes c
   where c.code_hash = sha256(convert_to(v_code, 'UTF8'))
     for update;
  if not found then
    raise exception 'Unknown link code' using errcode = 'XPLCU';
  end if;
  if v_row.used_at is not null then
    raise exception 'This link code was already used' using errcode = 'XPLCD';
  end if;
  if v_row.replaced_at is not null or v_row.expires_at <= now() then
    raise exception 'This link code has expired or was replaced by a newer one; create a new one'
      using errcode = 'XPLCX';
  end if;
  v_result := private.link_identity(v_row.profile_id, p_provider, p_subject, p_display_name);
  update private.link_codes c
     set used_at = now(), used_by_provider = p_provider, used_by_subject = p_subject
   where c.id = v_row.id;
  return v_result;
end
$$;
comment on function private.redeem_link_code(text, text, text, text) is 'Implementation of public.service_role_redeem_link_code.';
revoke all on function private.redeem_link_code(text, text, text, text) from public;
grant execute on function private.redeem_link_code(text, text, text, text) to service_role;

create or replace function public.service_role_redeem_link_code(
  code text,
  provider text,
  subject text,
  display_name text default null
)
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.redeem_link_code(service_role_redeem_link_code.code, service_role_redeem_link_code.provider,
                                   service_role_redeem_link_code.subject, service_role_redeem_link_code.display_name)
$$;
comment on function public.service_role_redeem_link_code(text, text, text, text) is
  'Redeems a link code for an external identity (the bot passes provider discord, the Discord user id as '
  'subject and their display name): the identity is attached to the code''s profile and the code is spent. '
  'Returns {profile_id, provider, subject, display_name, already_linked, user: {id, display_name, '
  'avatar_url, role}}. Errors: XPLCU unknown code, XPLCD code already used, XPLCX code expired or replaced, XPLNK the identity belongs '
  'to another profile, XPLNP the profile already has another account of that provider, XPBAD malformed '
  'code, provider or subject. A refused code stays usable. service_role only.';
revoke all on function public.service_role_redeem_link_code(text, text, text, text) from public, anon, authenticated;
grant execute on function public.service_role_redeem_link_code(text, text, text, text) to service_role;
