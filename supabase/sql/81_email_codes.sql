-- Email one-time codes (issue 13): a 6-digit code mailed to an address signs its owner in
-- (identity provider `email`, subject = the normalised address) or links the address to the
-- signed-in member. Codes are stored as sha256(salt || code) with a random salt per code, live
-- email_code_ttl_seconds (600), work once, die after email_code_max_tries (5) wrong tries, and
-- only the newest code of an address works. Requests are limited per address and per client IP
-- per rolling hour (public.auth_settings). The service mails the code and answers every request
-- for a well-formed address alike, known or not.
--
-- Tables: private.email_codes (and the email_code_* columns of public.auth_settings).
-- Tests: tests/sql/test_email_codes.py

create or replace function private.check_email(p_email text)
returns text
language plpgsql
immutable
set search_path = ''
as $$
begin
  -- The service normalises (xpbase/email_address.py): lower-case, IDNA (ASCII) domain. Here: the shape only,
  -- never echoing the address (errors reach logs).
  if p_email is null or length(p_email) not between 3 and 254
     or p_email ~ '[\x00-\x20\x7f]'
     or p_email !~ '^[^@]{1,64}@[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$'
     or p_email <> lower(p_email) then
    raise exception 'email must be a normalised address (at most 254 characters, lower case, ASCII domain)'
      using errcode = 'XPBAD';
  end if;
  return p_email;
end
$$;
comment on function private.check_email(text) is
  'Returns a normalised email address unchanged or raises XPBAD (without echoing it): 3-254 characters, no spaces '
  'or control characters (no header injection), lower case, one @, an ASCII (IDNA) domain of dotted labels.';
revoke all on function private.check_email(text) from public;

create or replace function private.request_email_code(p_email text, p_client_ip inet)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_settings public.auth_settings;
  v_code text;
  v_salt bytea;
  v_row private.email_codes;
begin
  perform private.check_email(p_email);
  select * into v_settings from public.auth_settings limit 1;
  -- One request of an address at a time, so that the limit and "newest code wins" hold under concurrency.
  perform pg_advisory_xact_lock(hashtextextended('email-code' || chr(31) || p_email, 0));
  if (select count(*) from private.email_codes c
       where c.email = p_email and c.created_at > now() - interval '1 hour')
     >= coalesce(v_settings.email_code_hourly_limit, 5) then
    raise exception 'Too many codes for this address this hour' using errcode = 'XPOTR';
  end if;
  if p_client_ip is not null and (select count(*) from private.email_codes c
       where c.client_ip = p_client_ip and c.created_at > now() - interval '1 hour')
     >= coalesce(v_settings.email_code_ip_hourly_limit, 20) then
    raise exception 'Too many codes from this client this hour' using errcode = 'XPOTR';
  end if;

  update private.email_codes c set replaced_at = now()
   where c.email = p_email and c.used_at is null and c.replaced_at is null;
  -- 48 bits from the server's strong random source (gen_random_uuid: the first 12 hex digits of a v4 uuid
  -- are random), reduced to 6 digits (bias below 2^-28).
  v_code := lpad(((('x' || left(replace(gen_random_uuid()::text, '-', ''), 12))::bit(48)::bigint) % 1000000)::text,
                 6, '0');
  v_salt := uuid_send(gen_random_uuid());
  insert into private.email_codes (email, client_ip, salt, code_hash, expires_at)
  values (p_email, p_client_ip, v_salt, sha256(v_salt || convert_to(v_code, 'UTF8')),
          now() + make_interval(secs => coalesce(v_settings.email_code_ttl_seconds, 600)))
  returning * into v_row;
  -- Old rows count for nothing after an hour; keep a day for the record.
  delete from private.email_codes c where c.created_at < now() - interval '1 day';
  return jsonb_build_object('code', v_code, 'expires_at', private.utc_text(v_row.expires_at),
                            'ttl_seconds', coalesce(v_settings.email_code_ttl_seconds, 600));
end
$$;
comment on function private.request_email_code(text, inet) is 'Implementation of public.service_role_request_email_code.';
revoke all on function private.request_email_code(text, inet) from public;
grant execute on function private.request_email_code(text, inet) to service_role;

create or replace function public.service_role_request_email_code(email text, client_ip inet default null)
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.request_email_code(service_role_request_email_code.email, service_role_request_email_code.client_ip)
$$;
comment on function public.service_role_request_email_code(text, inet) is
  'Makes a sign-in code for a normalised email address (any address: unknown ones sign up on first use) and '
  'returns it for mailing: {code (6 digits), expires_at (UTC text), ttl_seconds}. Earlier codes of the address '
  'stop working. Errors: XPBAD malformed address, XPOTR more than email_code_hourly_limit codes for the address '
  'or email_code_ip_hourly_limit for client_ip in the last hour. service_role only.';
revoke all on function public.service_role_request_email_code(text, inet) from public, anon, authenticated;
grant execute on function public.service_role_request_email_code(text, inet) to service_role;

create or replace function private.verify_email_code(
  p_email text,
  p_code text,
  p_token_hash bytea,
  p_ttl_seconds integer,
  p_link_profile_id uuid
)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_max integer;
  v_row private.email_codes;
  v_signed jsonb;
  v_session jsonb;
begin
  perform private.check_email(p_email);
  if p_code is null or p_code !~ '^[0-9]{6}$' then
    raise exception 'code must be 6 digits' using errcode = 'XPBAD';
  end if;
  if p_link_profile_id is null then
    perform private.check_hash('token_hash', p_token_hash);
  end if;
  select coalesce(s.email_code_max_tries, 5) into v_max from public.auth_settings s limit 1;
  v_max := coalesce(v_max, 5);

  -- The live code's row lock serialises verifies of one code: after the first success commits, the others
  -- re-read the row, see used_at and find nothing (one session however many try at once).
  select * into v_row from private.email_codes c
   where c.email = p_email and c.used_at is null and c.replaced_at is null and c.expires_at > now()
   order by c.created_at desc, c.id desc
   limit 1
   for update;
  if not found then
    raise exception 'No live code for this address (expired, used, replaced or never sent)' using errcode = 'XPOTC';
  end if;
  if v_row.tries >= v_max then
    raise exception 'Too many wrong tries; ask for a new code' using errcode = 'XPOTD';
  end if;
  -- Digests of a salted secret are compared, so the time taken says nothing about the code.
  if sha256(v_row.salt || convert_to(p_code, 'UTF8')) <> v_row.code_hash then
    update private.email_codes c set tries = c.tries + 1 where c.id = v_row.id;
    -- Returned, not raised: raising would roll the count back.
    return jsonb_build_object('status', case when v_row.tries + 1 >= v_max then 'locked' else 'wrong' end,
                              'tries_left', greatest(v_max - v_row.tries - 1, 0));
  end if;
  update private.email_codes c set used_at = now() where c.id = v_row.id;

  if p_link_profile_id is not null then
    return jsonb_build_object('status', 'linked',
                              'link', private.link_identity(p_link_profile_id, 'email', p_email, null));
  end if;
  v_signed := private.sign_in_identity('email', p_email, null, null);
  v_session := private.create_session((v_signed ->> 'profile_id')::uuid, 'email', p_token_hash, p_ttl_seconds);
  return jsonb_build_object('status', 'signed_in', 'created', (v_signed ->> 'created')::boolean,
                            'session', v_session);
end
$$;
comment on function private.verify_email_code(text, text, bytea, integer, uuid) is
  'Implementation of public.service_role_verify_email_code.';
revoke all on function private.verify_email_code(text, text, bytea, integer, uuid) from public;
grant execute on function private.verify_email_code(text, text, bytea, integer, uuid) to service_role;

create or replace function public.service_role_verify_email_code(
  email text,
  code text,
  token_hash bytea,
  ttl_seconds integer,
  link_profile_id uuid default null
)
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.verify_email_code(service_role_verify_email_code.email, service_role_verify_email_code.code,
                                   service_role_verify_email_code.token_hash, service_role_verify_email_code.ttl_seconds,
                                   service_role_verify_email_code.link_profile_id)
$$;
comment on function public.service_role_verify_email_code(text, text, bytea, integer, uuid) is
  'Checks a 6-digit code against the address''s newest live code. Right: the code is spent and either the email '
  'identity (provider email, subject the address) is signed in with a new session whose first refresh token is '
  'token_hash (sha256, valid ttl_seconds): {status signed_in, created, session: as service_role_create_session}, '
  'or, with link_profile_id, the address is linked to that profile: {status linked, link: as '
  'service_role_link_identity}. Wrong: the try is counted and committed: {status wrong or locked (no tries '
  'left), tries_left}. Errors: XPBAD malformed address or code (not 6 digits), XPOTC no live code (expired, '
  'used, replaced, never sent), XPOTD too many wrong tries, XPSUS banned, XPLNK/XPLNP when linking. '
  'service_role only.';
revoke all on function public.service_role_verify_email_code(text, text, bytea, integer, uuid) from public, anon, authenticated;
grant execute on function public.service_role_verify_email_code(text, text, bytea, integer, uuid) to service_role;
