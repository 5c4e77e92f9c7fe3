-- Challenges (issue 15, item 6; Clash of Code's `load_levels` and `/challenges/`): a catalogue of challenges
-- (title, difficulty, layer, XP, prerequisites, an active window) saved in batches by `xpbase load
-- challenges`, completions recorded by a trusted judge and awarded once through award_xp, and a member's
-- progress.
--
-- Tables: public.challenges, public.challenge_prerequisites, public.challenge_completions.
-- Tests: tests/sql/test_challenges.py

------------------------------------------------------------------------------
-- The activity a challenge awards
------------------------------------------------------------------------------

create or replace function private.challenge_activity(p_layer text, p_create boolean)
returns public.activity_types
language plpgsql
volatile
security definer
set search_path = ''
as $$
-- A challenge of layer L awards the activity challenge_completed when that activity is of layer L (the seed's:
-- reality), otherwise challenge_completed_<L>, made on first use with challenge_completed's XP range (10 to
-- 1000 XP when that activity is gone) and no daily cap.
declare
  v_act public.activity_types;
  v_template public.activity_types;
  v_slug text;
begin
  select * into v_act from public.activity_types a where a.slug = 'challenge_completed' and a.layer_slug = p_layer;
  if found then
    return v_act;
  end if;
  v_slug := 'challenge_completed_' || p_layer;
  select * into v_act from public.activity_types a where a.slug = v_slug;
  if found or not p_create then
    return v_act;
  end if;
  select * into v_template from public.activity_types a where a.slug = 'challenge_completed';
  insert into public.activity_types (slug, name, description, layer_slug, base_xp, min_xp, max_xp, cap_group)
  select v_slug, 'Challenge completed (' || l.name || ')', 'A ' || l.name || ' challenge, XP set by the challenge.',
         l.slug, coalesce(v_template.base_xp, 100), coalesce(v_template.min_xp, 10), coalesce(v_template.max_xp, 1000),
         null
    from public.layers l where l.slug = p_layer
  on conflict (slug) do nothing;
  select * into v_act from public.activity_types a where a.slug = v_slug;
  return v_act;
end
$$;
comment on function private.challenge_activity(text, boolean) is
  'The activity type a challenge of layer p_layer awards: challenge_completed when it is of that layer, else '
  'challenge_completed_<layer> (made when p_create with challenge_completed''s range). A row of nulls when none.';
revoke all on function private.challenge_activity(text, boolean) from public;

------------------------------------------------------------------------------
-- Saving (the loader)
------------------------------------------------------------------------------

create or replace function private.challenge_time(p_value jsonb, p_field text, p_slug text)
returns timestamptz
language plpgsql
immutable
security definer
set search_path = ''
as $$
declare
  v_at timestamptz;
begin
  if p_value is null or p_value = 'null'::jsonb then
    return null;
  end if;
  begin
    v_at := (p_value #>> '{}')::timestamptz;
  exception when others then
    raise exception 'challenge %: % is not a time (ISO 8601 with a UTC offset)', p_slug, p_field using errcode = 'XPBAD';
  end;
  if jsonb_typeof(p_value) <> 'string' or not isfinite(v_at) or v_at < '2000-01-01Z' or v_at > '2100-01-01Z' then
    raise exception 'challenge %: % must be a time between 2000 and 2100', p_slug, p_field using errcode = 'XPBAD';
  end if;
  return v_at;
end
$$;
comment on function private.challenge_time(jsonb, text, text) is
  'A challenge''s starts_at / ends_at from JSON: null, or ISO 8601 text between 2000 and 2100 (XPBAD otherwise).';
revoke all on function private.challenge_time(jsonb, text, text) from public;

create or replace function private.admin_save_challenges(p_challenges jsonb)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_actor record := private.assert_permission('manage_rules');
  v_item jsonb;
  v_index integer := 0;
  v_slug text;
  v_act public.activity_types;
  v_xp integer;
  v_id bigint;
  v_inserted boolean;
  v_before jsonb;
  v_after jsonb;
  v_ids bigint[] := '{}';
  v_created bigint[] := '{}';
  v_changed bigint[] := '{}';
  v_prereqs text[];
  v_missing text;
  v_cycle text;
begin
  if p_challenges is null or jsonb_typeof(p_challenges) <> 'array'
     or jsonb_array_length(p_challenges) not between 1 and 500 then
    raise exception 'challenges is an array of 1 to 500 challenges' using errcode = 'XPBAD';
  end if;
  -- One loader at a time: prerequisites and the cycle check read the whole catalogue.
  perform pg_advisory_xact_lock(hashtextextended('challenges', 0));
  for v_item in select * from jsonb_array_elements(p_challenges) loop
    v_index := v_index + 1;
    if jsonb_typeof(v_item) <> 'object' then
      raise exception 'challenge #%: not an object', v_index using errcode = 'XPBAD';
    end if;
    v_slug := v_item ->> 'slug';
    if v_slug is null or v_slug !~ '^[a-z][a-z0-9_-]{0,63}$' then
      raise exception 'challenge #%: slug is 1 to 64 lowercase letters, digits, _ or -', v_index using errcode = 'XPBAD';
    end if;
    if length(trim(coalesce(v_item ->> 'title', ''))) not between 1 and 200
       or length(coalesce(v_item ->> 'description', '')) > 4000 then
      raise exception 'challenge %: title is 1 to 200 characters, description at most 4000', v_slug
        using errcode = 'XPBAD';
    end if;
    if coalesce(v_item ->> 'difficulty', '') not in ('easy', 'medium', 'hard', 'expert') then
      raise exception 'challenge %: difficulty is easy, medium, hard or expert', v_slug using errcode = 'XPBAD';
    end if;
    if not exists (select 1 from public.layers l where l.slug = v_item ->> 'layer') then
      raise exception 'challenge %: unknown layer %', v_slug, coalesce(v_item ->> 'layer', 'null') using errcode = 'XPBAD';
    end if;
    v_act := private.challenge_activity(v_item ->> 'layer', true);
    if jsonb_typeof(v_item -> 'xp') is distinct from 'number' or (v_item ->> 'xp') !~ '^[0-9]{1,9}$' then
      raise exception 'challenge %: xp is a whole number', v_slug using errcode = 'XPBAD';
    end if;
    v_xp := (v_item ->> 'xp')::integer;
    if v_xp not between coalesce(v_act.min_xp, v_act.base_xp) and coalesce(v_act.max_xp, v_act.base_xp) then
      raise exception 'challenge %: xp % is outside % to % (activity %)', v_slug, v_xp,
        coalesce(v_act.min_xp, v_act.base_xp), coalesce(v_act.max_xp, v_act.base_xp), v_act.slug
        using errcode = 'XPAMT';
    end if;
    if (v_item ? 'active' and jsonb_typeof(v_item -> 'active') <> 'boolean')
       or (v_item ? 'position' and (v_item ->> 'position') !~ '^-?[0-9]{1,7}$')
       or (v_item ? 'prerequisites' and jsonb_typeof(v_item -> 'prerequisites') <> 'array') then
      raise exception 'challenge %: active is true or false, position a whole number, prerequisites a list',
        v_slug using errcode = 'XPBAD';
    end if;
    select to_jsonb(c) - 'id' - 'created_at' - 'updated_at' into v_before from public.challenges c where c.slug = v_slug;
    insert into public.challenges as c (slug, title, description, difficulty, layer_slug, xp, starts_at, ends_at,
                                        active, position)
    values (v_slug, trim(v_item ->> 'title'), coalesce(v_item ->> 'description', ''), v_item ->> 'difficulty',
            v_item ->> 'layer', v_xp, private.challenge_time(v_item -> 'starts_at', 'starts_at', v_slug),
            private.challenge_time(v_item -> 'ends_at', 'ends_at', v_slug),
            coalesce((v_item ->> 'active')::boolean, true), coalesce((v_item ->> 'position')::integer, v_index))
    on conflict (slug) do update
      set title = excluded.title, description = excluded.description, difficulty = excluded.difficulty,
          layer_slug = excluded.layer_slug, xp = excluded.xp, starts_at = excluded.starts_at,
          ends_at = excluded.ends_at, active = excluded.active, position = excluded.position
    returning c.id, (xmax = 0), to_jsonb(c) - 'id' - 'created_at' - 'updated_at' into v_id, v_inserted, v_after;
    if v_id = any (v_ids) then
      raise exception 'challenge %: named twice', v_slug using errcode = 'XPBAD';
    end if;
    v_ids := v_ids || v_id;
    if v_inserted then
      v_created := v_created || v_id;
    elsif v_before is distinct from v_after then
      v_changed := v_changed || v_id;
    end if;
  end loop;
  -- Prerequisites, once every challenge of the batch exists: replaced per challenge.
  v_index := 0;
  for v_item in select * from jsonb_array_elements(p_challenges) loop
    v_index := v_index + 1;
    v_slug := v_item ->> 'slug';
    select coalesce(array_agg(distinct p), '{}') into v_prereqs
      from jsonb_array_elements_text(coalesce(v_item -> 'prerequisites', '[]')) p;
    select p into v_missing from unnest(v_prereqs) p
     where not exists (select 1 from public.challenges c where c.slug = p) limit 1;
    if v_missing is not null then
      raise exception 'challenge %: unknown prerequisite %', v_slug, left(v_missing, 64) using errcode = 'XPBAD';
    end if;
    if v_slug = any (v_prereqs) then
      raise exception 'challenge %: a challenge cannot be its own prerequisite', v_slug using errcode = 'XPBAD';
    end if;
    v_id := v_ids[v_index];
    if (select coalesce(array_agg(p.prerequisite_id order by p.prerequisite_id), '{}')
          from public.challenge_prerequisites p where p.challenge_id = v_id)
       is distinct from
       (select coalesce(array_agg(c.id order by c.id), '{}') from public.challenges c where c.slug = any (v_prereqs)) then
      delete from public.challenge_prerequisites p where p.challenge_id = v_id;
      insert into public.challenge_prerequisites (challenge_id, prerequisite_id)
      select v_id, c.id from public.challenges c where c.slug = any (v_prereqs);
      v_changed := v_changed || v_id;
    end if;
  end loop;
  -- No challenge may need itself, however far down.
  with recursive reach (start_id, id, path) as (
    select p.challenge_id, p.prerequisite_id, array[p.challenge_id, p.prerequisite_id]
      from public.challenge_prerequisites p where p.challenge_id = any (v_ids)
    union all
    select r.start_id, p.prerequisite_id, r.path || p.prerequisite_id
      from reach r join public.challenge_prerequisites p on p.challenge_id = r.id
     where not p.prerequisite_id = any (r.path[2:])
  )
  select (select c.slug from public.challenges c where c.id = r.start_id) into v_cycle
    from reach r where r.id = r.start_id limit 1;
  if v_cycle is not null then
    raise exception 'challenge %: its prerequisites lead back to it', v_cycle using errcode = 'XPBAD';
  end if;
  update public.challenges c set updated_at = now()
   where c.id = any (v_changed) and not c.id = any (v_created);
  return jsonb_build_object(
    'created', cardinality(v_created),
    'updated', (select count(distinct x) from unnest(v_changed) x where not x = any (v_created)),
    'unchanged', cardinality(v_ids) - cardinality(v_created)
                 - (select count(distinct x) from unnest(v_changed) x where not x = any (v_created)),
                            'total', (select count(*) from public.challenges));
end
$$;
comment on function private.admin_save_challenges(jsonb) is 'Implementation of public.admin_save_challenges.';
revoke all on function private.admin_save_challenges(jsonb) from public;
grant execute on function private.admin_save_challenges(jsonb) to authenticated, service_role;

create or replace function public.admin_save_challenges(challenges jsonb)
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.admin_save_challenges(admin_save_challenges.challenges)
$$;
comment on function public.admin_save_challenges(jsonb) is
  'Adds or updates challenges by slug (idempotent: the same batch again changes nothing): [{slug, title, '
  'description?, difficulty (easy|medium|hard|expert), layer, xp (within the layer''s challenge activity range, '
  '10-1000 by default), prerequisites? [slug] (in the batch or the catalogue; replaced), starts_at?, ends_at? '
  '(ISO 8601, the active window), active? (default true), position? (default the batch order)}], 1 to 500 at a '
  'time. Challenges not named are left alone. Needs manage_rules (admins). Answers {created, updated, '
  'unchanged, total}. Errors: XPBAD (the message names the challenge), XPAMT xp outside the range, 42501.';
revoke all on function public.admin_save_challenges(jsonb) from public, anon;
grant execute on function public.admin_save_challenges(jsonb) to authenticated, service_role;

------------------------------------------------------------------------------
-- The catalogue
------------------------------------------------------------------------------

create or replace function public.challenge_catalogue()
returns jsonb
language sql
stable
security invoker
set search_path = ''
as $$
  select coalesce(jsonb_agg(jsonb_build_object(
           'slug', c.slug, 'title', c.title, 'description', c.description, 'difficulty', c.difficulty,
           'layer', c.layer_slug, 'xp', c.xp,
           'prerequisites', coalesce((select jsonb_agg(pc.slug order by pc.position, pc.slug)
                                        from public.challenge_prerequisites p
                                        join public.challenges pc on pc.id = p.prerequisite_id
                                       where p.challenge_id = c.id), '[]'),
           'starts_at', to_char(c.starts_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
           'ends_at', to_char(c.ends_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
           'open', coalesce(c.starts_at <= now(), true) and coalesce(c.ends_at > now(), true))
           order by c.position, c.slug), '[]')
    from public.challenges c
   where c.active
$$;
comment on function public.challenge_catalogue() is
  'The active challenges by position then slug: [{slug, title, description, difficulty, layer, xp, '
  'prerequisites: [slug], starts_at, ends_at (UTC text or null: the window), open (now inside the window)}]. '
  'Anyone may read it.';
revoke all on function public.challenge_catalogue() from public;
grant execute on function public.challenge_catalogue() to anon, authenticated, service_role;

------------------------------------------------------------------------------
-- Completing (the judge)
------------------------------------------------------------------------------

create or replace function private.challenge_completion_json(p_id bigint, p_replayed boolean)
returns jsonb
language sql
stable
security definer
set search_path = ''
as $$
  select jsonb_build_object(
    'id', cc.id, 'challenge', c.slug, 'title', c.title, 'profile_id', cc.profile_id,
    'completed_at', private.utc_text(cc.completed_at), 'judge', cc.judge, 'submission', cc.submission,
    'granted', cc.granted, 'ledger_id', cc.ledger_id, 'replayed', p_replayed)
    from public.challenge_completions cc join public.challenges c on c.id = cc.challenge_id
   where cc.id = p_id
$$;
comment on function private.challenge_completion_json(bigint, boolean) is
  'One completion: {id, challenge, title, profile_id, completed_at (UTC text), judge, submission, granted (XP), '
  'ledger_id, replayed (true when it had been recorded before)}.';
revoke all on function private.challenge_completion_json(bigint, boolean) from public;

create or replace function private.complete_challenge(
  p_profile_id uuid, p_challenge text, p_judge text, p_completed_at timestamptz, p_submission text
)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_challenge public.challenges;
  v_completed timestamptz := coalesce(p_completed_at, now());
  v_act public.activity_types;
  v_missing text;
  v_receipt jsonb;
  v_id bigint;
begin
  if p_judge is null or length(trim(p_judge)) not between 1 and 100 then
    raise exception 'judge names who judged, 1 to 100 characters' using errcode = 'XPBAD';
  end if;
  if p_submission is not null and length(trim(p_submission)) not between 1 and 200 then
    raise exception 'submission is 1 to 200 characters, or null' using errcode = 'XPBAD';
  end if;
  if not isfinite(v_completed) or v_completed < '2000-01-01Z' or v_completed > now() + interval '5 minutes' then
    raise exception 'completed_at must be between 2000-01-01 and now' using errcode = 'XPTIM';
  end if;
  if p_profile_id is null or not exists (select 1 from public.profiles p where p.id = p_profile_id) then
    raise exception 'Unknown profile: %', coalesce(p_profile_id::text, 'null') using errcode = 'XPPRF';
  end if;
  select * into v_challenge from public.challenges c where c.slug = p_challenge;
  if not found then
    raise exception 'Unknown challenge: %', coalesce(left(p_challenge, 64), 'null') using errcode = 'XPCHU';
  end if;
  -- One member's completion of one challenge at a time: the second finds the first.
  perform pg_advisory_xact_lock(
    hashtextextended('challenge' || chr(31) || p_profile_id::text || chr(31) || v_challenge.id::text, 0));
  select cc.id into v_id from public.challenge_completions cc
   where cc.profile_id = p_profile_id and cc.challenge_id = v_challenge.id;
  if v_id is not null then
    return private.challenge_completion_json(v_id, true);
  end if;
  if not v_challenge.active then
    raise exception 'Challenge % is not active', v_challenge.slug using errcode = 'XPCHW';
  end if;
  if v_completed < coalesce(v_challenge.starts_at, '-infinity') or v_completed >= coalesce(v_challenge.ends_at, 'infinity') then
    raise exception 'Challenge % is open from % to %', v_challenge.slug,
      coalesce(private.utc_text(v_challenge.starts_at), 'the start'), coalesce(private.utc_text(v_challenge.ends_at), 'no end')
      using errcode = 'XPCHW';
  end if;
  select string_agg(pc.slug, ', ' order by pc.slug) into v_missing
    from public.challenge_prerequisites p
    join public.challenges pc on pc.id = p.prerequisite_id
   where p.challenge_id = v_challenge.id
     and not exists (select 1 from public.challenge_completions cc
                      where cc.profile_id = p_profile_id and cc.challenge_id = p.prerequisite_id);
  if v_missing is not null then
    raise exception 'Challenge % needs % first', v_challenge.slug, v_missing using errcode = 'XPCHP';
  end if;
  v_act := private.challenge_activity(v_challenge.layer_slug, false);
  if v_act.slug is null then
    raise exception 'No challenge activity for layer %', v_challenge.layer_slug using errcode = 'XPCFG';
  end if;
  v_receipt := private.award_xp(p_profile_id, v_act.slug, 'challenge:' || v_challenge.id || ':' || p_profile_id,
                                v_challenge.xp, v_completed, '{}', 'Challenge ' || v_challenge.slug);
  insert into public.challenge_completions (challenge_id, profile_id, completed_at, judge, submission, granted,
                                            ledger_id)
  values (v_challenge.id, p_profile_id, v_completed, trim(p_judge), nullif(trim(p_submission), ''),
          (v_receipt ->> 'granted')::integer, (v_receipt ->> 'ledger_id')::bigint)
  returning id into v_id;
  return private.challenge_completion_json(v_id, false);
end
$$;
comment on function private.complete_challenge(uuid, text, text, timestamptz, text) is
  'Implementation of public.service_role_complete_challenge.';
revoke all on function private.complete_challenge(uuid, text, text, timestamptz, text) from public;
grant execute on function private.complete_challenge(uuid, text, text, timestamptz, text) to service_role;

create or replace function public.service_role_complete_challenge(
  profile_id uuid, challenge text, judge text, completed_at timestamptz default null, submission text default null
)
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.complete_challenge(service_role_complete_challenge.profile_id, service_role_complete_challenge.challenge,
                                    service_role_complete_challenge.judge, service_role_complete_challenge.completed_at,
                                    service_role_complete_challenge.submission)
$$;
comment on function public.service_role_complete_challenge(uuid, text, text, timestamptz, text) is
  'A trusted judge (the backend) records that a member completed a challenge: judge (1-100 characters), '
  'completed_at (UTC, default now; inside the challenge''s window), submission (the judge''s reference, <= 200). '
  'The challenge must be active and its prerequisites completed; its XP is awarded through award_xp at '
  'completed_at with the idempotency key challenge:<challenge id>:<profile id>, so a member is credited once '
  'however often the judge reports it (later reports answer the first with replayed true). Answers the '
  'completion. Errors: XPCHU unknown challenge, XPCHW inactive or outside the window, XPCHP prerequisites '
  'missing, XPPRF, XPTIM, XPBAD, and award_xp''s own refusals (XPSUS a suspended member).';
revoke all on function public.service_role_complete_challenge(uuid, text, text, timestamptz, text) from public, anon,
  authenticated;
grant execute on function public.service_role_complete_challenge(uuid, text, text, timestamptz, text) to service_role;

------------------------------------------------------------------------------
-- A member's progress
------------------------------------------------------------------------------

create or replace function private.my_challenges(p_profile_id uuid)
returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_id uuid;
begin
  if private.is_service_role() then
    v_id := p_profile_id;
    if v_id is null then
      raise exception 'Name the member (profile_id)' using errcode = 'XPBAD';
    end if;
  -- A signed-in member is auth.uid(), whatever the role claim says (a custom access token hook may name
  -- a custom role), as everywhere else (private.claims_caller).
  elsif (select auth.uid()) is not null then
    v_id := (select auth.uid());
    if p_profile_id is not null and p_profile_id <> v_id then
      raise exception 'Members see only their own challenges' using errcode = '42501';
    end if;
  else
    raise exception 'Sign in to see your challenges' using errcode = '42501';
  end if;
  if not exists (select 1 from public.profiles p where p.id = v_id) then
    raise exception 'Unknown profile: %', v_id using errcode = 'XPPRF';
  end if;
  return (
    with rows as (
      select c.slug, c.title, c.difficulty, c.layer_slug, c.xp, c.position, cc.completed_at, cc.granted,
             coalesce((select jsonb_agg(pc.slug order by pc.slug)
                         from public.challenge_prerequisites p
                         join public.challenges pc on pc.id = p.prerequisite_id
                        where p.challenge_id = c.id
                          and not exists (select 1 from public.challenge_completions x
                                           where x.profile_id = v_id and x.challenge_id = p.prerequisite_id)),
                      '[]') as missing,
             coalesce(c.starts_at <= now(), true) and coalesce(c.ends_at > now(), true) as open
        from public.challenges c
        left join public.challenge_completions cc on cc.challenge_id = c.id and cc.profile_id = v_id
       where c.active or cc.id is not null
    )
    select jsonb_build_object(
      'profile_id', v_id,
      'completed', count(*) filter (where r.completed_at is not null),
      'total', count(*),
      'xp_earned', coalesce(sum(r.granted), 0),
      'challenges', coalesce(jsonb_agg(jsonb_build_object(
        'slug', r.slug, 'title', r.title, 'difficulty', r.difficulty, 'layer', r.layer_slug, 'xp', r.xp,
        'status', case when r.completed_at is not null then 'completed'
                       when jsonb_array_length(r.missing) > 0 then 'locked'
                       when not r.open then 'closed'
                       else 'open' end,
        'completed_at', private.utc_text(r.completed_at), 'granted', r.granted,
        'missing_prerequisites', r.missing) order by r.position, r.slug), '[]'))
      from rows r);
end
$$;
comment on function private.my_challenges(uuid) is 'Implementation of public.my_challenges.';
revoke all on function private.my_challenges(uuid) from public;
grant execute on function private.my_challenges(uuid) to authenticated, service_role;

create or replace function public.my_challenges(profile_id uuid default null)
returns jsonb
language sql
stable
security invoker
set search_path = ''
as $$
  select private.my_challenges(my_challenges.profile_id)
$$;
comment on function public.my_challenges(uuid) is
  'A member''s progress: {profile_id, completed, total, xp_earned (XP granted by completions), challenges: '
  '[{slug, title, difficulty, layer, xp, status (completed | locked: prerequisites missing | closed: outside '
  'the window | open), completed_at (UTC text), granted, missing_prerequisites: [slug]}]} over the active '
  'challenges and any the member completed, by position then slug. A member reads their own; service_role '
  'names profile_id. Errors: XPPRF, XPBAD (service_role named nobody), 42501.';
revoke all on function public.my_challenges(uuid) from public, anon;
grant execute on function public.my_challenges(uuid) to authenticated, service_role;
