-- Member claims with review (issue 15): a member claims a claimable activity (note, evidence URL, when),
-- a reviewer approves it (award_xp keyed on the claim: approving twice credits once) or rejects it with
-- a reason; per-member claim limits; the review queue; what earns what (point_values).
--
-- Tables: public.activity_claims, public.activity_categories.
-- Tests: tests/sql/test_claims.py

------------------------------------------------------------------------------
-- Who is acting
------------------------------------------------------------------------------

create or replace function private.claims_caller(p_profile_id uuid, out actor_id uuid, out actor_role text)
language plpgsql
stable
security definer
set search_path = ''
as $$
begin
  -- The backend only when the claims say so and the request really runs as service_role (12_roles.sql).
  if private.is_service_role() then
    actor_role := 'service_role';
    actor_id := p_profile_id;
  elsif (select auth.uid()) is not null then
    actor_role := 'authenticated';
    actor_id := (select auth.uid());
    if p_profile_id is not null and p_profile_id <> actor_id then
      raise exception 'Members act only for themselves' using errcode = '42501';
    end if;
  else
    raise exception 'Sign in to claim activities' using errcode = '42501';
  end if;
  if actor_id is not null and not exists (select 1 from public.profiles p where p.id = actor_id) then
    raise exception 'Unknown profile: %', actor_id using errcode = 'XPPRF';
  end if;
end
$$;
comment on function private.claims_caller(uuid) is
  'Who is acting on claims: a member acts as auth.uid() (naming another profile raises 42501); service_role '
  'acts for p_profile_id (null: the backend itself); anon raises 42501; an unknown profile raises XPPRF.';
revoke all on function private.claims_caller(uuid) from public;

create or replace function private.assert_can_review_claims(p_profile_id uuid, out actor_id uuid, out actor_role text)
language plpgsql
stable
security definer
set search_path = ''
as $$
-- The one place that decides who reviews claims: members whose role holds the approve_claims permission
-- (moderators and admins; public.role_permissions, 12_roles.sql). service_role is trusted: it checks its
-- own callers (the bot: Manage Server) and names the reviewer it acts for, or nobody (the backend).
begin
  select c.actor_id, c.actor_role into actor_id, actor_role from private.claims_caller(p_profile_id) c;
  if actor_role = 'service_role' then
    return;
  end if;
  if not exists (select 1 from public.profiles p
                   join public.role_permissions rp on rp.role_slug = p.role
                  where p.id = actor_id and rp.permission_slug = 'approve_claims') then
    raise exception 'Only moderators and admins may review claims' using errcode = '42501';
  end if;
end
$$;
comment on function private.assert_can_review_claims(uuid) is
  'The reviewer of a claim (and of events): (profile id, authenticated) for a member whose role holds '
  'approve_claims (moderators, admins); for service_role, which checks its own callers, (the profile it names, or '
  'null, service_role); raises 42501 for anyone else.';
revoke all on function private.assert_can_review_claims(uuid) from public;

------------------------------------------------------------------------------
-- Reading
------------------------------------------------------------------------------

create or replace function private.claim_json(p_claim_id bigint)
returns jsonb
language sql
stable
security definer
set search_path = ''
as $$
  select jsonb_build_object(
    'id', c.id, 'profile_id', c.profile_id, 'display_name', p.display_name,
    'activity', c.activity_slug, 'activity_name', a.name, 'category', a.category,
    'note', c.note, 'evidence_url', c.evidence_url, 'occurred_at', private.utc_text(c.occurred_at),
    'status', c.status, 'reviewer_id', c.reviewer_id,
    'reviewed_at', private.utc_text(c.reviewed_at), 'reason', c.reason,
    'granted', c.granted, 'ledger_id', c.ledger_id, 'created_at', private.utc_text(c.created_at))
    from public.activity_claims c
    join public.activity_types a on a.slug = c.activity_slug
    join public.profiles p on p.id = c.profile_id
   where c.id = p_claim_id
$$;
comment on function private.claim_json(bigint) is
  'One claim as the claim RPCs answer it: {id, profile_id, display_name, activity, activity_name, category, note, '
  'evidence_url, occurred_at, status, reviewer_id, reviewed_at, reason, granted (XP), ledger_id, created_at} '
  '(times UTC text); null for an unknown id.';
revoke all on function private.claim_json(bigint) from public;

------------------------------------------------------------------------------
-- Deciding
------------------------------------------------------------------------------

create or replace function private.approve_claim(p_claim_id bigint, p_actor_id uuid, p_actor_role text)
returns void
language plpgsql
volatile
security definer
set search_path = ''
as $$
-- The caller holds the claim row lock and has checked it is pending.
declare
  v_claim public.activity_claims;
  v_receipt jsonb;
begin
  select * into strict v_claim from public.activity_claims c where c.id = p_claim_id;
  v_receipt := private.award_xp(v_claim.profile_id, v_claim.activity_slug, 'claim:' || v_claim.id, null,
                                v_claim.occurred_at, '{}');
  update public.activity_claims c
     set status = 'approved', reviewer_id = p_actor_id, reviewer_role = p_actor_role, reviewed_at = now(),
         granted = (v_receipt ->> 'granted')::integer, ledger_id = (v_receipt ->> 'ledger_id')::bigint
   where c.id = p_claim_id;
  insert into public.notifications (profile_id, kind, title, data)
  values (v_claim.profile_id, 'claim_reviewed',
          'Claim approved: +' || (v_receipt ->> 'granted') || ' XP',
          jsonb_build_object('claim_id', v_claim.id, 'activity', v_claim.activity_slug, 'status', 'approved',
                             'granted', (v_receipt ->> 'granted')::integer));
end
$$;
comment on function private.approve_claim(bigint, uuid, text) is
  'Awards a pending claim through award_xp (idempotency key claim:<id>, occurred_at the claim''s) and marks it '
  'approved with the XP granted and the ledger row; notifies the member (claim_reviewed).';
revoke all on function private.approve_claim(bigint, uuid, text) from public;

create or replace function private.submit_claim(
  p_profile_id uuid, p_activity text, p_note text, p_evidence_url text, p_occurred_at timestamptz
)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_caller record := private.claims_caller(p_profile_id);
  v_act public.activity_types;
  v_occurred timestamptz := coalesce(p_occurred_at, now());
  v_used integer;
  v_id bigint;
begin
  if v_caller.actor_id is null then
    raise exception 'A claim needs the member it is for' using errcode = 'XPBAD';
  end if;
  select * into v_act from public.activity_types a where a.slug = p_activity;
  if not found or not v_act.active then
    raise exception 'Unknown or inactive activity: %', coalesce(p_activity, 'null') using errcode = 'XPACT';
  end if;
  if not v_act.claimable then
    raise exception 'Activity % cannot be claimed', v_act.slug using errcode = 'XPCLN';
  end if;
  if length(coalesce(p_note, '')) > 1000 then
    raise exception 'A note is at most 1000 characters' using errcode = 'XPBAD';
  end if;
  if p_evidence_url is not null
     and (length(p_evidence_url) > 500 or p_evidence_url !~ '^https?://[^[:space:]]+$') then
    raise exception 'The evidence URL must be an http(s) link of at most 500 characters' using errcode = 'XPBAD';
  end if;
  if v_occurred > now() + interval '5 minutes' or v_occurred < now() - interval '365 days' then
    raise exception 'A claim is for something done in the last 365 days' using errcode = 'XPBAD';
  end if;
  -- One member's claims of one activity are counted and written one at a time.
  perform pg_advisory_xact_lock(hashtextextended('claim' || chr(31) || v_caller.actor_id::text || chr(31) || v_act.slug, 0));
  if v_act.claim_limit is not null then
    select count(*) into v_used from public.activity_claims c
     where c.profile_id = v_caller.actor_id and c.activity_slug = v_act.slug and c.status <> 'rejected'
       and c.created_at > now() - make_interval(secs => v_act.claim_window_seconds);
    if v_used >= v_act.claim_limit then
      raise exception 'You may claim % at most % times in % days', v_act.name, v_act.claim_limit,
        round(v_act.claim_window_seconds / 86400.0, 1)
        using errcode = 'XPCLL';
    end if;
  end if;
  insert into public.activity_claims (profile_id, activity_slug, note, evidence_url, occurred_at)
  values (v_caller.actor_id, v_act.slug, coalesce(p_note, ''), nullif(p_evidence_url, ''), v_occurred)
  returning id into v_id;
  if not v_act.requires_review then
    perform private.approve_claim(v_id, null, 'service_role');
  end if;
  return private.claim_json(v_id);
end
$$;
comment on function private.submit_claim(uuid, text, text, text, timestamptz) is 'Implementation of public.submit_claim.';
revoke all on function private.submit_claim(uuid, text, text, text, timestamptz) from public;
grant execute on function private.submit_claim(uuid, text, text, text, timestamptz) to authenticated, service_role;

create or replace function public.submit_claim(
  activity text,
  note text default '',
  evidence_url text default null,
  occurred_at timestamptz default null,
  profile_id uuid default null
)
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.submit_claim(submit_claim.profile_id, submit_claim.activity, submit_claim.note,
                              submit_claim.evidence_url, submit_claim.occurred_at)
$$;
comment on function public.submit_claim(text, text, text, timestamptz, uuid) is
  'Claims a claimable activity: note (<= 1000 characters), evidence_url (http(s), <= 500), occurred_at (when it '
  'happened, UTC, within the last 365 days; default now). A member claims for themselves; service_role (the '
  'bot) names profile_id. Answers the claim (private.claim_json): pending, or approved at once when the '
  'activity does not require review. Errors: XPACT unknown activity, XPCLN not claimable, XPCLL the '
  'activity''s claim_limit per claim_window_seconds is reached, XPBAD bad note, URL or time, XPPRF, 42501.';
revoke all on function public.submit_claim(text, text, text, timestamptz, uuid) from public, anon;
grant execute on function public.submit_claim(text, text, text, timestamptz, uuid) to authenticated, service_role;

create or replace function private.review_claim(p_claim_id bigint, p_decision text, p_reason text, p_profile_id uuid)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_actor record := private.assert_can_review_claims(p_profile_id);
  v_claim public.activity_claims;
begin
  if p_decision is null or p_decision not in ('approve', 'reject') then
    raise exception 'decision is approve or reject' using errcode = 'XPBAD';
  end if;
  if p_decision = 'reject' and (nullif(trim(p_reason), '') is null or length(p_reason) > 500) then
    raise exception 'A rejection needs a reason of 1 to 500 characters' using errcode = 'XPBAD';
  end if;
  -- The row lock serialises reviewers of one claim: the first decides, the others see its decision.
  select * into v_claim from public.activity_claims c where c.id = p_claim_id for update;
  if not found then
    raise exception 'Unknown claim: %', p_claim_id using errcode = 'XPCLM';
  end if;
  if v_claim.status = 'pending' then
    if p_decision = 'approve' then
      perform private.approve_claim(v_claim.id, v_actor.actor_id, v_actor.actor_role);
    else
      update public.activity_claims c
         set status = 'rejected', reviewer_id = v_actor.actor_id, reviewer_role = v_actor.actor_role,
             reviewed_at = now(), reason = trim(p_reason)
       where c.id = v_claim.id;
      insert into public.notifications (profile_id, kind, title, body, data)
      values (v_claim.profile_id, 'claim_reviewed', 'Claim rejected', trim(p_reason),
              jsonb_build_object('claim_id', v_claim.id, 'activity', v_claim.activity_slug, 'status', 'rejected',
                                 'reason', trim(p_reason)));
    end if;
  elsif v_claim.status <> (case p_decision when 'approve' then 'approved' else 'rejected' end) then
    raise exception 'Claim % was already %', v_claim.id, v_claim.status using errcode = 'XPCLS';
  end if;
  -- The same decision again answers the claim as it stands (approving twice credits once).
  return private.claim_json(v_claim.id);
end
$$;
comment on function private.review_claim(bigint, text, text, uuid) is 'Implementation of public.review_claim.';
revoke all on function private.review_claim(bigint, text, text, uuid) from public;
grant execute on function private.review_claim(bigint, text, text, uuid) to authenticated, service_role;

create or replace function public.review_claim(
  claim_id bigint, decision text, reason text default null, profile_id uuid default null
)
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.review_claim(review_claim.claim_id, review_claim.decision, review_claim.reason,
                              review_claim.profile_id)
$$;
comment on function public.review_claim(bigint, text, text, uuid) is
  'Approves (award_xp with idempotency key claim:<id> at the claim''s occurred_at) or rejects (reason of 1 to '
  '500 characters) a pending claim, and notifies the member (claim_reviewed). The same decision again answers '
  'the claim unchanged, so approving twice credits once. Reviewers: admins; service_role names the reviewer '
  'in profile_id (or null for the backend). Answers the claim. Errors: XPCLM unknown claim, XPCLS the '
  'claim was already decided the other way, XPBAD bad decision or reason, 42501 not a reviewer.';
revoke all on function public.review_claim(bigint, text, text, uuid) from public, anon;
grant execute on function public.review_claim(bigint, text, text, uuid) to authenticated, service_role;

create or replace function private.claim_queue(p_status text, p_size integer, p_profile_id uuid)
returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
begin
  perform private.assert_can_review_claims(p_profile_id);
  if p_status is null or p_status not in ('pending', 'approved', 'rejected') then
    raise exception 'status is pending, approved or rejected' using errcode = 'XPBAD';
  end if;
  if p_size is null or p_size not between 1 and 200 then
    raise exception 'size is 1 to 200' using errcode = 'XPBAD';
  end if;
  return coalesce((
    select jsonb_agg(private.claim_json(q.id) order by q.position)
      from (select c.id,
                   row_number() over (order by case when p_status = 'pending' then c.created_at end,
                                               case when p_status <> 'pending' then c.reviewed_at end desc,
                                               c.id) as position
              from public.activity_claims c where c.status = p_status
             order by position
             limit p_size) q), '[]');
end
$$;
comment on function private.claim_queue(text, integer, uuid) is 'Implementation of public.claim_queue.';
revoke all on function private.claim_queue(text, integer, uuid) from public;
grant execute on function private.claim_queue(text, integer, uuid) to authenticated, service_role;

create or replace function public.claim_queue(status text default 'pending', size integer default 50,
                                              profile_id uuid default null)
returns jsonb
language sql
stable
security invoker
set search_path = ''
as $$
  select private.claim_queue(claim_queue.status, claim_queue.size, claim_queue.profile_id)
$$;
comment on function public.claim_queue(text, integer, uuid) is
  'The review queue for reviewers: claims of one status (pending oldest first; decided ones newest decision '
  'first), at most size (1-200), as [claim]. service_role names the reviewing admin in profile_id (or null '
  'for the backend). Errors: XPBAD, 42501 not a reviewer.';
revoke all on function public.claim_queue(text, integer, uuid) from public, anon;
grant execute on function public.claim_queue(text, integer, uuid) to authenticated, service_role;

create or replace function private.my_claims(p_profile_id uuid)
returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_caller record := private.claims_caller(p_profile_id);
begin
  if v_caller.actor_id is null then
    raise exception 'Name the member' using errcode = 'XPBAD';
  end if;
  return coalesce((
    select jsonb_agg(private.claim_json(q.id) order by q.id desc)
      from (select c.id from public.activity_claims c where c.profile_id = v_caller.actor_id
             order by c.id desc limit 100) q), '[]');
end
$$;
comment on function private.my_claims(uuid) is 'Implementation of public.my_claims.';
revoke all on function private.my_claims(uuid) from public;
grant execute on function private.my_claims(uuid) to authenticated, service_role;

create or replace function public.my_claims(profile_id uuid default null)
returns jsonb
language sql
stable
security invoker
set search_path = ''
as $$
  select private.my_claims(my_claims.profile_id)
$$;
comment on function public.my_claims(uuid) is
  'The caller''s last 100 claims, newest first, as [claim]. service_role names profile_id. Errors: XPBAD, XPPRF.';
revoke all on function public.my_claims(uuid) from public, anon;
grant execute on function public.my_claims(uuid) to authenticated, service_role;

create or replace function public.point_values()
returns jsonb
language sql
stable
security invoker
set search_path = ''
as $$
  select coalesce(jsonb_agg(jsonb_build_object(
           'slug', a.slug, 'name', a.name, 'description', a.description, 'layer', a.layer_slug,
           'category', a.category, 'category_name', c.name,
           'base_xp', coalesce((select r.base_xp from public.activity_rates r
                                 where r.activity_slug = a.slug and r.effective_from <= now()
                                 order by r.effective_from desc limit 1), a.base_xp),
           'min_xp', a.min_xp, 'max_xp', a.max_xp, 'cooldown_seconds', a.cooldown_seconds,
           'claimable', a.claimable, 'requires_review', a.requires_review,
           'claim_limit', a.claim_limit, 'claim_window_seconds', a.claim_window_seconds)
         order by c.position nulls last, a.category nulls last, a.slug), '[]')
    from public.activity_types a
    left join public.activity_categories c on c.slug = a.category
   where a.active
$$;
comment on function public.point_values() is
  'What earns what: every active activity as [{slug, name, description, layer, category, category_name, base_xp '
  '(the rate in force now), min_xp, max_xp (a range, or null), cooldown_seconds, claimable, requires_review, '
  'claim_limit, claim_window_seconds}], by category position then slug. Anyone may call it.';
revoke all on function public.point_values() from public;
grant execute on function public.point_values() to anon, authenticated, service_role;
