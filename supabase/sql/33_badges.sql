-- Badges as data (issue 15): rules in public.badges decided as awards land. A statement trigger on xp_ledger
-- inserts checks every active badge whose filters a new row passes, as of that row (the ledger rows up to its
-- (occurred_at, id) written before it), and records the badge once per member or once per subject, with a
-- badge_awarded notification; a trigger on season_results does the same for season placings. A new or changed rule queues a
-- retroactive evaluation (procrastinate job xpbase.evaluate_badge, queue badges) that walks the ledger
-- member by member with the same check, recording progress. Reads: the catalogue and a member's badges.
--
-- Awards name their subject in award_xp's context ({"subject": "answer:123"}); a trigger copies it into
-- xp_ledger.subject, so the award path itself is unchanged.
--
-- Tables: public.badges, public.badge_awards, public.badge_evaluations.
-- Tests: tests/sql/test_badges.py

------------------------------------------------------------------------------
-- The subject of an award
------------------------------------------------------------------------------

create or replace function private.tg_xp_ledger__subject()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_subject jsonb := new.request -> 'context' -> 'subject';
begin
  if new.subject is null and v_subject is not null and jsonb_typeof(v_subject) <> 'null' then
    if jsonb_typeof(v_subject) <> 'string' or length(v_subject #>> '{}') not between 1 and 200 then
      raise exception 'context.subject must be a text of 1 to 200 characters' using errcode = 'XPBAD';
    end if;
    new.subject := v_subject #>> '{}';
  end if;
  return new;
end
$$;
comment on function private.tg_xp_ledger__subject() is
  'Sets xp_ledger.subject from the award''s context.subject (text, 1-200 characters; XPBAD otherwise).';
revoke all on function private.tg_xp_ledger__subject() from public;

drop trigger if exists _050_subject on public.xp_ledger;
create trigger _050_subject before insert on public.xp_ledger
  for each row execute function private.tg_xp_ledger__subject();

------------------------------------------------------------------------------
-- The rule check
------------------------------------------------------------------------------

-- The rule kinds decided by the row's own receipt alone (no table read): null for every other kind. Inlined
-- into private.badge_met and ahead of it in the badge trigger, where most candidate pairs are of these kinds
-- (the default badges: first_time and three levels), so those pairs need no PL/pgSQL call. Being inlined it
-- cannot set search_path: it names nothing outside pg_catalog, and runs as the caller.
create or replace function private.badge_met_by_receipt(p_badge public.badges, p_row public.xp_ledger)
returns boolean
language sql
immutable
security invoker
as $$
  select case p_badge.kind
           when 'total_xp' then (p_row.receipt ->> 'total_xp')::bigint >= p_badge.threshold
           when 'level' then (p_row.receipt ->> 'level')::integer >= p_badge.threshold
           when 'first_time' then p_row.amount > 0
         end
$$;
comment on function private.badge_met_by_receipt(public.badges, public.xp_ledger) is
  'private.badge_met for the kinds p_row''s receipt decides alone (total_xp, level, first_time); null for the '
  'other kinds (and when the receipt lacks the figure, as badge_met answers then).';
revoke all on function private.badge_met_by_receipt(public.badges, public.xp_ledger) from public;

create or replace function private.badge_met(
  p_badge public.badges,
  p_row public.xp_ledger,
  p_as_written boolean default false
)
returns boolean
language plpgsql
stable
security definer
set search_path = ''
as $$
-- Whether the rule holds as of p_row: the ledger rows of p_row's member up to (occurred_at, id) of p_row;
-- with p_as_written, only those written before p_row too (id <= p_row.id): the ledger as p_row found it, what
-- the live trigger decides on (a later row of the same statement is not seen, even when dated earlier).
-- The caller has checked the filters (activities, subject_prefix) on p_row itself.
declare
  v_count bigint;
  v_sum numeric;
  v_zone text;
  v_day date;
begin
  case p_badge.kind
  when 'total_xp', 'level', 'first_time' then
    return private.badge_met_by_receipt(p_badge, p_row);
  when 'tier' then
    return (select t.min_level from public.tiers t where t.slug = p_row.receipt ->> 'tier')
           >= (select t.min_level from public.tiers t where t.slug = p_badge.tier_slug);
  when 'layer_status' then
    return exists (
      select 1 from jsonb_array_elements(coalesce(p_row.receipt -> 'layers', '[]')) e
        join public.layer_statuses s on s.layer_slug = p_badge.layer_slug and s.slug = p_badge.status_slug
       where e ->> 'layer' = p_badge.layer_slug and (e ->> 'xp')::bigint >= s.min_xp);
  when 'activity_count' then
    select count(*) into v_count
      from public.xp_ledger l
     where l.profile_id = p_row.profile_id and l.amount > 0
       and (p_badge.activities is null or l.activity_slug = any (p_badge.activities))
       and (p_badge.subject_prefix is null or starts_with(l.subject, p_badge.subject_prefix))
       and (l.occurred_at, l.id) <= (p_row.occurred_at, p_row.id)
       and (not p_as_written or l.id <= p_row.id)
       and (p_badge.window_seconds is null
            or l.occurred_at > p_row.occurred_at - make_interval(secs => p_badge.window_seconds));
    return v_count >= p_badge.threshold;
  when 'streak' then
    -- threshold consecutive local days (the member's time zone) ending on p_row's day.
    select coalesce(p.time_zone, 'UTC') into v_zone from public.profiles p where p.id = p_row.profile_id;
    v_day := (p_row.occurred_at at time zone v_zone)::date;
    select count(distinct (l.occurred_at at time zone v_zone)::date) into v_count
      from public.xp_ledger l
     where l.profile_id = p_row.profile_id and l.amount > 0
       and (p_badge.activities is null or l.activity_slug = any (p_badge.activities))
       and (l.occurred_at, l.id) <= (p_row.occurred_at, p_row.id)
       and (not p_as_written or l.id <= p_row.id)
       -- The local days v_day - threshold + 1 .. v_day, with a day of margin either side for the zone.
       and l.occurred_at >= (v_day - p_badge.threshold::integer)::timestamp at time zone 'UTC'
       and (l.occurred_at at time zone v_zone)::date between v_day - p_badge.threshold::integer + 1 and v_day;
    return v_count >= p_badge.threshold;
  when 'subject_sum' then
    if p_row.subject is null then
      return false;
    end if;
    select coalesce(sum(case when p_badge.weights is null then l.amount
                             else coalesce((p_badge.weights ->> l.activity_slug)::numeric, 0) end), 0)
      into v_sum
      from public.xp_ledger l
     where l.profile_id = p_row.profile_id and l.subject = p_row.subject
       and (p_badge.activities is null or l.activity_slug = any (p_badge.activities))
       and (l.occurred_at, l.id) <= (p_row.occurred_at, p_row.id)
       and (not p_as_written or l.id <= p_row.id);
    return v_sum >= p_badge.threshold;
  else
    return false;  -- season_placing is decided on season_results
  end case;
end
$$;
comment on function private.badge_met(public.badges, public.xp_ledger, boolean) is
  'Whether badge p_badge''s rule holds for p_row''s member as of p_row (ledger rows up to its occurred_at, id; '
  'with p_as_written only those written before it, id <= p_row.id, as the live trigger sees them). '
  'Thresholds read p_row''s receipt (total_xp, level, tier, layers); counts, streaks and subject sums read the '
  'ledger through its indexes.';
revoke all on function private.badge_met(public.badges, public.xp_ledger, boolean) from public;

-- Inlined: called once per (new ledger row, active badge) pair, as a separate call it cost about 7 us a pair
-- (bench/replay.py --profile: 177,795 calls, 1.3 s of a 20 s replay). Being inlined it cannot set search_path:
-- it names no table or function outside pg_catalog, and runs as the caller.
create or replace function private.badge_applies(p_badge public.badges, p_row public.xp_ledger)
returns boolean
language sql
immutable
security invoker
as $$
  -- Only a row that can move the rule forward is looked at: a credited award, or for weighted subject sums an
  -- award whose weight is positive (a capped upvote still raises a score).
  select p_badge.kind <> 'season_placing'
     and (p_badge.activities is null or p_row.activity_slug = any (p_badge.activities))
     and (p_badge.subject_prefix is null or starts_with(p_row.subject, p_badge.subject_prefix))
     and (p_badge.kind <> 'subject_sum' or p_row.subject is not null)
     and case when p_badge.kind = 'subject_sum' and p_badge.weights is not null
              then coalesce((p_badge.weights ->> p_row.activity_slug)::numeric, 0) > 0
              else p_row.amount > 0 end
$$;
comment on function private.badge_applies(public.badges, public.xp_ledger) is
  'Whether ledger row p_row passes badge p_badge''s filters (activities, subject_prefix) and can advance it.';
revoke all on function private.badge_applies(public.badges, public.xp_ledger) from public;

create or replace function private.grant_badges(
  p_badges public.badges[],
  p_profile_ids uuid[],
  p_subjects text[],
  p_awarded_at timestamptz[],
  p_ledger_ids bigint[],
  p_season_ids bigint[],
  p_source text
)
returns setof bigint
language sql
volatile
security definer
set search_path = ''
as $$
  -- One INSERT for the awards, in array order (their ids in that order), and one for their notifications, in
  -- badge_awards id order: what one call per element in array order writes.
  with granted as (
    insert into public.badge_awards (badge_slug, profile_id, subject, level, awarded_at, ledger_id, season_id,
                                     source)
    select (p_badges[i]).slug, p_profile_ids[i],
           case when (p_badges[i]).once_per = 'subject' then coalesce(p_subjects[i], '') else '' end,
           (p_badges[i]).level, p_awarded_at[i], p_ledger_ids[i], p_season_ids[i], p_source
      from generate_subscripts(p_badges, 1) as i
     order by i
    on conflict (badge_slug, profile_id, subject) do nothing
    returning id, badge_slug, profile_id, subject, ledger_id
  ), notified as (
    insert into public.notifications (profile_id, kind, title, body, data)
    select a.profile_id, 'badge_awarded', 'Badge earned: ' || (b.badge).name, (b.badge).description,
           jsonb_build_object('badge', a.badge_slug, 'name', (b.badge).name, 'level', (b.badge).level,
                              'subject', case when (b.badge).once_per = 'subject' then nullif(a.subject, '') end,
                              'badge_award_id', a.id, 'ledger_id', a.ledger_id,
                              'retroactive', p_source = 'retroactive')
      from granted a
      join (select distinct on ((p_badges[i]).slug) p_badges[i] as badge
              from generate_subscripts(p_badges, 1) as i) b on (b.badge).slug = a.badge_slug
     order by a.id
  )
  select a.id from granted a order by a.id
$$;
comment on function private.grant_badges(public.badges[], uuid[], text[], timestamptz[], bigint[], bigint[], text) is
  'Records badges for members, element i of the arrays being one award: p_badges[i] for p_profile_ids[i] '
  '(per subject p_subjects[i] when the badge is once per subject; its notification''s subject is null for an '
  'empty one), awarded at p_awarded_at[i] for ledger row p_ledger_ids[i] or season p_season_ids[i]; p_source '
  'live or retroactive. In array order, each with a badge_awarded notification; one already held is skipped. '
  'Returns the new badge_awards ids.';
revoke all on function private.grant_badges(public.badges[], uuid[], text[], timestamptz[], bigint[], bigint[], text)
  from public;

create or replace function private.grant_badge(
  p_badge public.badges,
  p_profile_id uuid,
  p_subject text,
  p_awarded_at timestamptz,
  p_ledger_id bigint,
  p_season_id bigint,
  p_source text
)
returns boolean
language sql
volatile
security definer
set search_path = ''
as $$
  select exists (
    select 1 from private.grant_badges(array[p_badge], array[p_profile_id], array[p_subject], array[p_awarded_at],
                                       array[p_ledger_id], array[p_season_id], p_source))
$$;
comment on function private.grant_badge(public.badges, uuid, text, timestamptz, bigint, bigint, text) is
  'Records badge p_badge for a member (per subject when the badge is once per subject) and notifies them '
  '(badge_awarded), through private.grant_badges; returns false, changing nothing, when they hold it already.';
revoke all on function private.grant_badge(public.badges, uuid, text, timestamptz, bigint, bigint, text) from public;

create or replace function private.held(p_badge public.badges, p_profile_id uuid, p_subject text)
returns boolean
language sql
stable
security definer
set search_path = ''
as $$
  select exists (
    select 1 from public.badge_awards a
     where a.badge_slug = p_badge.slug and a.profile_id = p_profile_id
       and a.subject = case when p_badge.once_per = 'subject' then coalesce(p_subject, '') else '' end)
$$;
comment on function private.held(public.badges, uuid, text) is
  'Whether the member holds the badge already (for that subject, when it is once per subject).';
revoke all on function private.held(public.badges, uuid, text) from public;

------------------------------------------------------------------------------
-- Live: as awards land and seasons end
------------------------------------------------------------------------------

create or replace function private.tg_xp_ledger__badges()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
-- For the statement's new ledger rows (transition table new_rows), what a row trigger deciding one row at a
-- time in id order gives: each active badge (but season placings) whose filters a row passes and that the
-- member does not hold, met as of that row (private.badge_met, the ledger as the row found it; the kinds the
-- row's receipt decides by private.badge_met_by_receipt, inlined, without a call), granted at the
-- first such row of the statement per member (and subject), in (ledger id, position, slug) order.
declare
  v_badges public.badges[];
  v_profile_ids uuid[];
  v_subjects text[];
  v_awarded_at timestamptz[];
  v_ledger_ids bigint[];
begin
  with candidate as materialized (
    -- The (row, badge) pairs that can apply at all: the badge's filters (private.badge_applies, narrowed
    -- first by its activities and subject_prefix) and not held before the statement (private.held, as a
    -- probe of badge_awards' unique key per pair: a subplan, so no join order can turn it into a scan).
    select n::public.xp_ledger as new_row, b as badge, b.position, b.slug, x.subject
      from new_rows n
      join public.badges b
        on b.active and b.kind <> 'season_placing'
       and (b.activities is null or n.activity_slug = any (b.activities))
       and (b.subject_prefix is null or starts_with(n.subject, b.subject_prefix))
     cross join lateral (select case when b.once_per = 'subject' then coalesce(n.subject, '') else '' end
                           as subject) x
     where private.badge_applies(b, n)
       and (select a.id from public.badge_awards a
             where a.badge_slug = b.slug and a.profile_id = n.profile_id and a.subject = x.subject
             limit 1) is null
  ), winner as (
    -- A badge granted at one row is held at the later ones: the first row that meets it earns it.
    select distinct on (c.slug, (c.new_row).profile_id, c.subject) c.new_row, c.badge, c.position, c.slug
      from candidate c
     where coalesce(private.badge_met_by_receipt(c.badge, c.new_row), private.badge_met(c.badge, c.new_row, true))
     order by c.slug, (c.new_row).profile_id, c.subject, (c.new_row).id
  ), ordered as (
    select w.*, row_number() over (order by (w.new_row).id, w.position, w.slug) as ord from winner w
  )
  select array_agg(o.badge order by o.ord), array_agg((o.new_row).profile_id order by o.ord),
         array_agg((o.new_row).subject order by o.ord), array_agg((o.new_row).occurred_at order by o.ord),
         array_agg((o.new_row).id order by o.ord)
    into v_badges, v_profile_ids, v_subjects, v_awarded_at, v_ledger_ids
    from ordered o;
  if v_badges is not null then
    perform private.grant_badges(v_badges, v_profile_ids, v_subjects, v_awarded_at, v_ledger_ids,
                                 array_fill(null::bigint, array[cardinality(v_badges)]), 'live');
  end if;
  return null;
end
$$;
comment on function private.tg_xp_ledger__badges() is
  'Statement trigger (transition table new_rows): decides every active badge (but season placings) for the '
  'new ledger rows, each as of its row (the ledger as that row found it), as a row trigger firing in ledger id '
  'order would; grants them with one private.grant_badges call in (ledger id, badge position, slug) order.';
revoke all on function private.tg_xp_ledger__badges() from public;

-- An import (92_imports.sql) sets xpbase.importing for its transaction and decides the badges of its batch
-- itself, with the same functions, once the batch's ledger rows are in.
drop trigger if exists _800_badges on public.xp_ledger;
create trigger _800_badges after insert on public.xp_ledger
  referencing new table as new_rows
  for each statement when (current_setting('xpbase.importing', true) is distinct from 'on')
  execute function private.tg_xp_ledger__badges();

create or replace function private.tg_season_results__badges()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_badge public.badges;
  v_season public.seasons;
begin
  select * into v_season from public.seasons s where s.id = new.season_id;
  for v_badge in
    select b.* from public.badges b
     where b.active and b.kind = 'season_placing' and new.rank <= b.threshold
       and (b.layer_slug is null or b.layer_slug = v_season.layer_slug)
  loop
    perform private.grant_badge(v_badge, new.profile_id, 'season:' || new.season_id, v_season.ends_at, null,
                                new.season_id, 'live');
  end loop;
  return null;
end
$$;
comment on function private.tg_season_results__badges() is
  'Decides the season_placing badges for a final standing as a season is finalized.';
revoke all on function private.tg_season_results__badges() from public;

drop trigger if exists _800_badges on public.season_results;
create trigger _800_badges after insert on public.season_results
  for each row execute function private.tg_season_results__badges();

------------------------------------------------------------------------------
-- Retroactive: a new or changed rule is evaluated over the ledger, as a job
------------------------------------------------------------------------------

create or replace function private.tg_badges__revision()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  new.updated_at := now();
  if (new.kind, new.threshold, new.activities, new.weights, new.subject_prefix, new.window_seconds,
      new.layer_slug, new.status_slug, new.tier_slug, new.once_per, new.active)
     is distinct from
     (old.kind, old.threshold, old.activities, old.weights, old.subject_prefix, old.window_seconds,
      old.layer_slug, old.status_slug, old.tier_slug, old.once_per, old.active) then
    new.revision := old.revision + 1;
  else
    new.revision := old.revision;
  end if;
  return new;
end
$$;
comment on function private.tg_badges__revision() is
  'Stamps updated_at; a change of the rule (kind, threshold, filters, once_per, active) bumps revision.';
revoke all on function private.tg_badges__revision() from public;

drop trigger if exists _100_revision on public.badges;
create trigger _100_revision before update on public.badges
  for each row execute function private.tg_badges__revision();

create or replace function private.tg_badges__evaluate()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_id bigint;
begin
  if new.active and (tg_op = 'INSERT' or new.revision <> old.revision) then
    insert into public.badge_evaluations (badge_slug, revision)
    values (new.slug, new.revision)
    on conflict (badge_slug, revision) do nothing
    returning id into v_id;
    if v_id is not null then
      insert into procrastinate.procrastinate_jobs (queue_name, task_name, queueing_lock, args)
      values ('badges', 'xpbase.evaluate_badge', 'badge_evaluation:' || v_id,
              jsonb_build_object('evaluation_id', v_id))
      on conflict (queueing_lock) where status = 'todo' do nothing;
    end if;
  end if;
  return null;
end
$$;
comment on function private.tg_badges__evaluate() is
  'A new active badge, or a changed rule, gets a badge_evaluations row and a procrastinate job '
  '(queue badges, task xpbase.evaluate_badge) that evaluates it over the ledger.';
revoke all on function private.tg_badges__evaluate() from public;

drop trigger if exists _200_evaluate on public.badges;
create trigger _200_evaluate after insert or update on public.badges
  for each row execute function private.tg_badges__evaluate();

create or replace function private.evaluate_badge(p_evaluation_id bigint, p_max_profiles integer)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_eval public.badge_evaluations;
  v_badge public.badges;
  v_profiles uuid[];
  v_row public.xp_ledger;
  v_result record;
  v_awarded integer := 0;
begin
  if p_max_profiles is null or p_max_profiles not between 1 and 10000 then
    raise exception 'max_profiles must be 1 to 10000' using errcode = 'XPBAD';
  end if;
  -- One evaluator at a time per evaluation: a second caller waits, then continues after the first's cursor.
  select * into v_eval from public.badge_evaluations e where e.id = p_evaluation_id for update;
  if not found then
    raise exception 'Unknown badge evaluation: %', coalesce(p_evaluation_id::text, 'null') using errcode = 'XPBDG';
  end if;
  select * into v_badge from public.badges b where b.slug = v_eval.badge_slug;
  -- A later revision (or a switched-off badge) supersedes this evaluation: it ends with nothing more to do.
  if v_eval.status = 'done' or not v_badge.active or v_badge.revision <> v_eval.revision then
    update public.badge_evaluations e
       set status = 'done', finished_at = coalesce(e.finished_at, now())
     where e.id = v_eval.id
    returning * into v_eval;
    return to_jsonb(v_eval);
  end if;
  if v_eval.status = 'queued' then
    v_eval.profiles_total := (select count(*) from public.profiles);
    v_eval.started_at := now();
  end if;

  select coalesce(array_agg(x.id order by x.id), '{}') into v_profiles
    from (select p.id from public.profiles p
           where v_eval.cursor is null or p.id > v_eval.cursor
           order by p.id limit p_max_profiles) x;

  if v_badge.kind = 'season_placing' then
    for v_result in
      select r.profile_id, r.season_id, s.ends_at
        from public.season_results r
        join public.seasons s on s.id = r.season_id
       where r.profile_id = any (v_profiles) and r.rank <= v_badge.threshold
         and (v_badge.layer_slug is null or s.layer_slug = v_badge.layer_slug)
       order by r.profile_id, s.ends_at
    loop
      if private.grant_badge(v_badge, v_result.profile_id, 'season:' || v_result.season_id, v_result.ends_at,
                             null, v_result.season_id, 'retroactive') then
        v_awarded := v_awarded + 1;
      end if;
    end loop;
  else
    for v_row in
      select l.* from public.xp_ledger l
       where l.profile_id = any (v_profiles)
         and (v_badge.activities is null or l.activity_slug = any (v_badge.activities))
       order by l.profile_id, l.occurred_at, l.id
    loop
      if private.badge_applies(v_badge, v_row)
         and not private.held(v_badge, v_row.profile_id, v_row.subject)
         and private.badge_met(v_badge, v_row) then
        if private.grant_badge(v_badge, v_row.profile_id, v_row.subject, v_row.occurred_at, v_row.id, null,
                               'retroactive') then
          v_awarded := v_awarded + 1;
        end if;
      end if;
    end loop;
  end if;

  update public.badge_evaluations e
     set status = case when cardinality(v_profiles) < p_max_profiles then 'done' else 'running' end,
         profiles_total = greatest(v_eval.profiles_total, e.profiles_done + cardinality(v_profiles)),
         profiles_done = e.profiles_done + cardinality(v_profiles),
         awarded = e.awarded + v_awarded,
         cursor = coalesce(v_profiles[cardinality(v_profiles)], e.cursor),
         started_at = v_eval.started_at,
         finished_at = case when cardinality(v_profiles) < p_max_profiles then now() end
   where e.id = v_eval.id
  returning * into v_eval;
  return to_jsonb(v_eval);
end
$$;
comment on function private.evaluate_badge(bigint, integer) is 'Implementation of public.service_role_evaluate_badge.';
revoke all on function private.evaluate_badge(bigint, integer) from public;
grant execute on function private.evaluate_badge(bigint, integer) to service_role;

create or replace function public.service_role_evaluate_badge(evaluation_id bigint, max_profiles integer default 500)
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.evaluate_badge(service_role_evaluate_badge.evaluation_id, service_role_evaluate_badge.max_profiles)
$$;
comment on function public.service_role_evaluate_badge(bigint, integer) is
  'One step of a retroactive badge evaluation: the next max_profiles (1-10000) members in id order, each '
  'member''s ledger walked in (occurred_at, id) order with the live rule check (season placings: their '
  'season_results). Returns the badge_evaluations row {id, badge_slug, revision, status (running, or done when '
  'no member is left or a later revision superseded it), profiles_total, profiles_done, awarded, cursor, '
  'queued_at, started_at, finished_at}; call again until status is done. Idempotent: badges already held are '
  'skipped. Errors: XPBDG unknown evaluation, XPBAD. service_role only (the worker''s xpbase.evaluate_badge).';
revoke all on function public.service_role_evaluate_badge(bigint, integer) from public, anon, authenticated;
grant execute on function public.service_role_evaluate_badge(bigint, integer) to service_role;

------------------------------------------------------------------------------
-- Reads
------------------------------------------------------------------------------

create or replace function public.badge_catalogue()
returns jsonb
language sql
stable
security invoker
set search_path = ''
as $$
  select jsonb_build_object('badges', coalesce(jsonb_agg(jsonb_build_object(
           'slug', b.slug, 'name', b.name, 'description', b.description, 'level', b.level, 'series', b.series,
           'kind', b.kind, 'threshold', b.threshold, 'once_per', b.once_per,
           'holders', (select count(distinct a.profile_id) from public.badge_awards a where a.badge_slug = b.slug),
           'evaluation', (select jsonb_build_object('revision', e.revision, 'status', e.status,
                                                    'profiles_done', e.profiles_done,
                                                    'profiles_total', e.profiles_total, 'awarded', e.awarded)
                            from public.badge_evaluations e
                           where e.badge_slug = b.slug order by e.revision desc limit 1))
         order by b.position, b.slug), '[]'))
    from public.badges b
   where b.active
$$;
comment on function public.badge_catalogue() is
  'Every active badge: {badges [{slug, name, description, level (bronze, silver, gold), series, kind, threshold, '
  'once_per, holders (members the caller may see who hold it), evaluation {revision, status, profiles_done, '
  'profiles_total, awarded} of its latest retroactive evaluation, or null}]}, in display order.';
revoke all on function public.badge_catalogue() from public;
grant execute on function public.badge_catalogue() to anon, authenticated, service_role;

create or replace function public.profile_badges(profile_id uuid)
returns jsonb
language plpgsql
stable
security invoker
set search_path = ''
as $$
declare
  v_uid uuid := (select auth.uid());
begin
  if profile_badges.profile_id is null then
    raise exception 'profile_id is required' using errcode = 'XPBAD';
  end if;
  -- As on the profile card (65_profile_card.sql): anon the public view, the backend every card, a member
  -- what private.can_see_profile allows; a card the caller may not see reads as unknown.
  if v_uid is null and pg_catalog.pg_has_role(current_user, 'service_role', 'member') then
    if not exists (select 1 from public.profiles p where p.id = profile_badges.profile_id) then
      raise exception 'Unknown profile: %', profile_badges.profile_id using errcode = 'XPPRF';
    end if;
  elsif v_uid is null then
    if not exists (select 1 from public.profiles p
                    where p.id = profile_badges.profile_id and p.leaderboard_visible
                      and p.profile_visibility = 'public') then
      raise exception 'Unknown profile: %', profile_badges.profile_id using errcode = 'XPPRF';
    end if;
  elsif not private.can_see_profile(profile_badges.profile_id, v_uid) then
    raise exception 'Unknown profile: %', profile_badges.profile_id using errcode = 'XPPRF';
  end if;
  return (
    select jsonb_build_object(
      'profile_id', profile_badges.profile_id,
      'counts', jsonb_build_object(
        'bronze', coalesce(sum(x.times) filter (where x.level = 'bronze'), 0),
        'silver', coalesce(sum(x.times) filter (where x.level = 'silver'), 0),
        'gold', coalesce(sum(x.times) filter (where x.level = 'gold'), 0)),
      'badges', coalesce(jsonb_agg(jsonb_build_object(
        'slug', x.slug, 'name', x.name, 'description', x.description, 'level', x.level, 'series', x.series,
        'times', x.times, 'first_awarded_at', x.first_at, 'last_awarded_at', x.last_at, 'subjects', x.subjects)
        order by x.last_at desc, x.slug) filter (where x.slug is not null), '[]'))
      from (
        select b.slug, b.name, b.description, a.level, b.series, count(*) as times,
               min(a.awarded_at) as first_at, max(a.awarded_at) as last_at,
               coalesce((array_agg(a.subject order by a.awarded_at desc, a.id desc)
                           filter (where a.subject <> ''))[1:10], '{}') as subjects
          from public.badge_awards a
          join public.badges b on b.slug = a.badge_slug
         where a.profile_id = profile_badges.profile_id
         group by b.slug, b.name, b.description, a.level, b.series
      ) x);
end
$$;
comment on function public.profile_badges(uuid) is
  'The badges a member holds: {profile_id, counts {bronze, silver, gold} (awards, a once-per-subject badge '
  'counting once per subject), badges [{slug, name, description, level, series, times (how many subjects or 1), '
  'first_awarded_at, last_awarded_at, subjects (the latest 10, text[])}] newest first}. Seen by whoever sees the '
  'profile card (profile_visibility, public.profile_card); XPPRF to anyone else. Errors: XPBAD, XPPRF.';
revoke all on function public.profile_badges(uuid) from public;
grant execute on function public.profile_badges(uuid) to anon, authenticated, service_role;
