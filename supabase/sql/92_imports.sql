-- Importers: members moved in from another Discord leveling bot (MEE6, Amari, Polaris, LevelUp, a CSV)
-- as ledger rows of the `import` activity, one idempotency key per source, server and member (a second
-- run changes nothing), profiles made for members not seen yet, the server membership recorded, role
-- rewards copied into the server's configuration and a role resync queued for the bot.
-- Python (xpbase/importers.py) reads each bot's file format and hands batches of members here; which
-- XP a member gets (--keep xp or --keep level on xpbase's curve) is decided here. A batch is written
-- set-based (what the award path writes, for up to 1,000 members in a few statements).
--
-- Tables: none of its own (writes what private.ensure_profile, private.apply_xp and their triggers write:
-- public.profiles, public.identities, public.xp_ledger, public.profile_layers, public.season_scores,
-- public.leaderboard_count_deltas, public.badge_awards; and public.discord_guild_members,
-- public.discord_role_rewards, public.discord_role_resyncs).
-- Tests: tests/sql/test_imports.py

create or replace function private.import_target_xp(p_keep text, p_xp bigint, p_level integer, p_progress numeric)
returns bigint
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_level integer := greatest(coalesce(p_level, 1), 1);
  v_floor bigint;
  v_next bigint;
begin
  if p_keep = 'xp' then
    return p_xp;
  end if;
  v_floor := public.xp_for_level(v_level);
  if v_floor is null then
    return null;
  end if;
  v_next := public.xp_for_level(v_level + 1);
  if v_next is null or p_progress is null then
    return v_floor;
  end if;
  return v_floor + floor((v_next - v_floor) * least(greatest(p_progress, 0), 0.999999))::bigint;
end
$$;
comment on function private.import_target_xp(text, bigint, integer, numeric) is
  'The XP an imported member gets: p_xp unchanged for keep = xp; for keep = level, the start of p_level on '
  'xpbase''s curve (level 0 of bots that start at 0 counts as 1) plus p_progress (0 to 1, the fraction of the '
  'way to the next level) of that level''s span. Null when the level is not on the curve.';
revoke all on function private.import_target_xp(text, bigint, integer, numeric) from public;

create or replace function private.import_members(
  p_source text,
  p_guild_id text,
  p_keep text,
  p_members jsonb,
  p_dry_run boolean
)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
-- Set-based per batch (issue 17: taking the award path one member at a time cost about 7 ms of SQL per member,
-- 143 members/s). The batch is checked and prepared in two statements; then profiles and identities for
-- unseen members, ledger rows, layer, season and profile totals and the leaderboard count changes are each
-- written by one statement, the server membership by one more, and the badges by one pass. What it writes is
-- what private.ensure_profile and private.apply_xp wrote for each member (apply_xp's receipt with the same
-- keys, computed for the whole batch; no notification: xpbase.importing), and what the ledger and totals
-- triggers it switches off for its transaction would have added: the badge (33_badges.sql) and leaderboard count
-- (60_leaderboards.sql) triggers skip while xpbase.importing is on, and this function applies their effect
-- for the batch (count moves summed per board, scope, level and bucket; badges decided per ledger row with
-- private.badge_applies and private.badge_met, the first row that earns a badge recording it).
-- A Discord id (or a profile) that appears more than once in a batch is taken in rounds, in batch order: each
-- later appearance sees what the earlier ones wrote, as it did when members were taken one by one.
declare
  v_actor record; v_layer text; v_tier1 text; v_counts_for_season boolean; v_now timestamptz := now();
  v_receipt jsonb; v_error text; v_xp_text text; v_rounds integer; v_layer_row record; v_season_id bigint;
  v_season_closed boolean; v_ledger_ids bigint[]; v_counts jsonb;
  -- The batch in batch order (ord is the member's position, from 1).
  m_ord integer[]; m_user text[]; m_name text[]; m_target bigint[]; m_reason text[]; m_parts jsonb[];
  m_request jsonb[]; m_key text[]; m_round integer[];
  -- The members of one round, in batch order: profile and totals before, status, reason.
  w_ord integer[]; w_user text[]; w_name text[]; w_target bigint[]; w_parts jsonb[]; w_request jsonb[];
  w_key text[]; w_pid uuid[]; w_xp bigint[]; w_level integer[]; w_status text[]; w_reason text[];
  w_created boolean[];
  -- The season each layer's imports count for (one moment, now(), for the whole batch).
  s_layer text[]; s_season bigint[]; s_closed boolean[];
  -- The level each imported member reached, and the answer's rows.
  i_ord integer[]; i_level integer[]; a_ord integer[] := '{}'; a_row jsonb[] := '{}';
begin
  select * into v_actor from private.assert_admin();
  if p_source is null or p_source not in ('mee6', 'amari', 'polaris', 'levelup', 'csv') then
    raise exception 'source must be mee6, amari, polaris, levelup or csv, got %', coalesce(p_source, 'null')
      using errcode = 'XPBAD';
  end if;
  perform private.discord_id('guild_id', p_guild_id);
  if p_keep is null or p_keep not in ('xp', 'level') then
    raise exception 'keep must be xp or level, got %', coalesce(p_keep, 'null') using errcode = 'XPBAD';
  end if;
  if p_members is null or jsonb_typeof(p_members) <> 'array'
     or jsonb_array_length(p_members) not between 1 and 1000 then
    raise exception 'members must be an array of 1 to 1000 members' using errcode = 'XPBAD';
  end if;
  -- Levels reached by import are not announced: no notification (77_outbox.sql), no DM to every member. The
  -- badge and leaderboard count triggers skip too: their effect is applied below for the whole batch.
  perform set_config('xpbase.importing', 'on', true);
  select a.layer_slug, coalesce(a.counts_for_season, true) into v_layer, v_counts_for_season
    from public.activity_types a where a.slug = 'import';
  if coalesce(v_layer, '') = '' then
    raise exception 'The import activity is missing (seed.sql)' using errcode = 'XPCFG';
  end if;
  v_tier1 := public.tier_for_level(1);
  -- The part of apply_xp's receipt that is the same for every member of the batch: the import's decision (what
  -- it passes as p_decision) and the keys that do not depend on the member.
  v_receipt := jsonb_build_object(
    'correction', 'import', 'multiplier', 1, 'multipliers', '[]'::jsonb, 'cooldown', false,
    'cooldown_remaining_seconds', 0, 'capped', false, 'cap', null, 'floored', false, 'source', p_source,
    'guild_id', p_guild_id, 'keep', p_keep, 'actor_id', v_actor.actor_id, 'actor_role', v_actor.actor_role,
    'activity', 'import', 'occurred_at', private.utc_text(v_now),
    'points_granted', 0,  -- admin corrections (an import is one) never mint points
    'replayed', false);

  -- The first malformed member (in batch order) refuses the whole batch; the checks run in the order they
  -- always did, each guarding the casts of the next (an empty text marks XP beyond bigint, raised by its cast).
  select c.error, c.xp_text into v_error, v_xp_text
    from (
      select e.ord, e.m ->> 'xp' as xp_text,
             case
               when jsonb_typeof(e.m) <> 'object' or (e.m ->> 'user_id') is null
                    or (e.m ->> 'user_id') !~ '^[0-9]{1,20}$' then
                 'members[].user_id must be a Discord id (1 to 20 digits), got ' || coalesce(e.m ->> 'user_id', 'null')
               when jsonb_typeof(e.m -> 'xp') is distinct from 'number' then
                 'members[].xp of ' || (e.m ->> 'user_id') || ' must be a whole number of XP, 0 or more'
               when (e.m ->> 'xp')::numeric < 0 or (e.m ->> 'xp')::numeric <> floor((e.m ->> 'xp')::numeric) then
                 'members[].xp of ' || (e.m ->> 'user_id') || ' must be a whole number of XP, 0 or more'
               when jsonb_typeof(e.m -> 'level') is distinct from 'number' then
                 'members[].level of ' || (e.m ->> 'user_id') || ' must be 0 to 100000'
               when (e.m ->> 'level')::numeric < 0 or (e.m ->> 'level')::numeric > 100000 then
                 'members[].level of ' || (e.m ->> 'user_id') || ' must be 0 to 100000'
               when e.m ? 'progress' and jsonb_typeof(e.m -> 'progress') <> 'null'
                    and jsonb_typeof(e.m -> 'progress') <> 'number' then
                 'members[].progress of ' || (e.m ->> 'user_id') || ' must be 0 to 1'
               when e.m ? 'progress' and jsonb_typeof(e.m -> 'progress') = 'number'
                    and (e.m ->> 'progress')::numeric not between 0 and 1 then
                 'members[].progress of ' || (e.m ->> 'user_id') || ' must be 0 to 1'
               -- An xpbase export moved back in: XP per layer, which must add up to xp (keep xp only).
               when jsonb_typeof(e.m -> 'layers') = 'object' and p_keep <> 'xp' then
                 'members[].layers of ' || (e.m ->> 'user_id') || ' needs keep = xp'
               when jsonb_typeof(e.m -> 'layers') = 'object'
                    and exists (select 1 from jsonb_each(e.m -> 'layers') l
                                 where jsonb_typeof(l.value) <> 'number' or (l.value #>> '{}') !~ '^[0-9]{1,12}$'
                                    or not exists (select 1 from public.layers x where x.slug = l.key)) then
                 'members[].layers of ' || (e.m ->> 'user_id') || ' must map known layers to whole XP'
               when jsonb_typeof(e.m -> 'layers') = 'object'
                    and (select coalesce(sum((l.value #>> '{}')::bigint), 0) from jsonb_each(e.m -> 'layers') l)
                        <> (e.m ->> 'xp')::numeric then
                 'members[].layers of ' || (e.m ->> 'user_id') || ' add up to '
                 || (select coalesce(sum((l.value #>> '{}')::bigint), 0) from jsonb_each(e.m -> 'layers') l)
                 || ', not xp'
               when (e.m ->> 'xp')::numeric > 9223372036854775807 then ''
             end as error
        from jsonb_array_elements(p_members) with ordinality as e (m, ord)
    ) c
   where c.error is not null
   order by c.ord
   limit 1;
  if v_error = '' then
    perform v_xp_text::numeric::bigint;  -- bigint out of range (22003), as the per-member import raised it
  elsif v_error is not null then
    raise exception '%', v_error using errcode = 'XPBAD';
  end if;

  -- Each member's XP (private.import_target_xp), rejection, layer parts, idempotency key and request, and its
  -- round: the how-manieth appearance of its Discord id (or of the profile that id belongs to) in the batch.
  select array_agg(x.ord order by x.ord), array_agg(x.user_id order by x.ord), array_agg(x.name order by x.ord),
         array_agg(x.target order by x.ord), array_agg(x.reason order by x.ord), array_agg(x.parts order by x.ord),
         array_agg(jsonb_build_object('source', p_source, 'guild_id', p_guild_id, 'user_id', x.user_id,
                                      'keep', p_keep, 'xp', x.target)
                   || case when x.parts is not null then jsonb_build_object('layers', x.parts) else '{}' end
                   order by x.ord),
         array_agg('import:' || p_source || ':' || p_guild_id || ':' || x.user_id order by x.ord),
         array_agg(x.round order by x.ord), max(x.round)
    into m_ord, m_user, m_name, m_target, m_reason, m_parts, m_request, m_key, m_round, v_rounds
    from (
      select t.ord, t.user_id, t.name, t.target, t.parts,
             case when t.target is null then 'level ' || t.level || ' is not on the level curve'
                  when t.target > 2147483647 then 'more than 2147483647 XP' end as reason,
             row_number() over (partition by coalesce(i.profile_id::text, t.user_id) order by t.ord)::integer as round
        from (
          select e.ord::integer as ord, e.m ->> 'user_id' as user_id,
                 left(nullif(btrim(coalesce(e.m ->> 'display_name', '')), ''), 64) as name,
                 (e.m ->> 'level')::numeric::integer as level,
                 case when p_keep = 'xp' then (e.m ->> 'xp')::numeric::bigint
                      else private.import_target_xp(p_keep, (e.m ->> 'xp')::numeric::bigint,
                                                    (e.m ->> 'level')::numeric::integer, (e.m ->> 'progress')::numeric)
                 end as target,
                 case when jsonb_typeof(e.m -> 'layers') = 'object' then
                   (select jsonb_agg(jsonb_build_object('layer', l.key, 'amount', (l.value #>> '{}')::bigint) order by l.key)
                             filter (where (l.value #>> '{}')::bigint > 0)
                      from jsonb_each(e.m -> 'layers') l)
                 end as parts
            from jsonb_array_elements(p_members) with ordinality as e (m, ord)
        ) t
        left join lateral (
          select i.profile_id from public.identities i where i.provider = 'discord' and i.subject = t.user_id limit 1
        ) i on true
    ) x;

  for v_round in 1 .. v_rounds loop
    -- Who each member is now and whether its key was used: rejected, unchanged, conflict, or (null) to import.
    select array_agg(m.ord order by m.ord), array_agg(m.user_id order by m.ord), array_agg(m.name order by m.ord),
           array_agg(m.target order by m.ord), array_agg(m.parts order by m.ord), array_agg(m.request order by m.ord),
           array_agg(m.key order by m.ord), array_agg(p.profile_id order by m.ord), array_agg(p.xp order by m.ord),
           array_agg(p.level order by m.ord),
           array_agg(case when m.reason is not null then 'rejected'
                          when f.request is null then null
                          when f.request = m.request then 'unchanged'
                          else 'conflict' end order by m.ord),
           array_agg(case when m.reason is not null then m.reason
                          when f.request is not null and f.request <> m.request then
                            'imported before with ' || (f.request ->> 'xp') || ' XP (keep ' || (f.request ->> 'keep') || ')'
                     end order by m.ord)
      into w_ord, w_user, w_name, w_target, w_parts, w_request, w_key, w_pid, w_xp, w_level, w_status, w_reason
      from unnest(m_ord, m_user, m_name, m_target, m_reason, m_parts, m_request, m_key, m_round)
             as m (ord, user_id, name, target, reason, parts, request, key, round)
      left join lateral (
        select i.profile_id, p.xp, p.level
          from public.identities i join public.profiles p on p.id = i.profile_id
         where i.provider = 'discord' and i.subject = m.user_id
         limit 1
      ) p on true
      left join lateral (select l.request from public.xp_ledger l where l.idempotency_key = m.key limit 1) f
        on m.reason is null
     where m.round = v_round;
    w_created := array_fill(false, array[cardinality(w_ord)]);
    i_ord := '{}';
    i_level := '{}';

    if not p_dry_run then
      -- Members not seen yet get a profile and an identity (private.ensure_profile's values, under its lock),
      -- written with the imports below; a profile someone else made meanwhile is found after the lock.
      if exists (select 1 from unnest(w_pid, w_status) w (pid, status) where w.pid is null and w.status is null) then
        perform pg_advisory_xact_lock(hashtextextended('discord' || chr(31) || w.user_id, 0))
           from unnest(w_user, w_pid, w_status) w (user_id, pid, status)
          where w.pid is null and w.status is null
          order by w.user_id;
        select array_agg(coalesce(w.pid, case when w.status is null then
                                           (select i.profile_id from public.identities i
                                             where i.provider = 'discord' and i.subject = w.user_id limit 1) end)
                         order by w.ord)
          into w_pid
          from unnest(w_ord, w_user, w_pid, w_status) w (ord, user_id, pid, status);
        select array_agg(w.pid is null and w.status is null order by w.ord),
               array_agg(case when w.pid is null and w.status is null then gen_random_uuid() else w.pid end
                         order by w.ord)
          into w_created, w_pid
          from unnest(w_ord, w_pid, w_status) w (ord, pid, status);
      end if;

      -- The profile row locks (in id order) and the key locks that private.award_xp and apply_xp take; then the
      -- keys again (a racing import of the same key answers unchanged) and zero XP (a profile, no ledger row).
      perform 1 from public.profiles p
        where p.id in (select w.pid from unnest(w_pid, w_status, w_created) w (pid, status, created)
                        where w.status is null and not w.created)
        order by p.id for update;
      perform pg_advisory_xact_lock(hashtextextended('xp_ledger:' || w.key, 0))
         from unnest(w_key, w_status) w (key, status) where w.status is null order by w.key;
      select array_agg(case when w.status is not null then w.status
                            when exists (select 1 from public.xp_ledger l where l.idempotency_key = w.key) then 'unchanged'
                            when w.target = 0 then 'zero'
                            else 'imported' end order by w.ord)
        into w_status
        from unnest(w_ord, w_status, w_key, w_target) w (ord, status, key, target);

      -- The season of each layer imported into (as apply_xp: an existing season containing now wins; a
      -- finalised one is closed, counting for no season; the activity may count for none).
      s_layer := '{}';
      s_season := '{}';
      s_closed := '{}';
      if v_counts_for_season then
        for v_layer_row in
          select distinct coalesce(e.part ->> 'layer', v_layer) as layer
            from unnest(w_status, w_parts) w (status, parts)
            left join lateral jsonb_array_elements(w.parts) as e (part) on true
           where w.status = 'imported'
        loop
          select s.id, s.finalized_at is not null into v_season_id, v_season_closed
            from public.seasons s
           where s.layer_slug = v_layer_row.layer and s.starts_at <= v_now and v_now < s.ends_at
           order by s.starts_at desc limit 1;
          if coalesce(v_season_closed, false) then
            v_season_id := null;
          elsif v_season_id is null then
            v_season_id := private.season_for(v_layer_row.layer, v_now);
            v_season_closed := false;
          end if;
          s_layer := array_append(s_layer, v_layer_row.layer);
          s_season := array_append(s_season, v_season_id);
          s_closed := array_append(s_closed, v_season_closed);
        end loop;
      end if;

      -- The imports: ledger rows (one per layer part, sharing the key and apply_xp's receipt), layer and
      -- season totals, the profile's total, level and tier, and the leaderboard count changes of the batch.
      -- Lookups in the large tables are lateral with a limit: an index probe per member, whatever the
      -- statistics say during a long import.
      -- A new member's profile is inserted with its totals (it starts as ensure_profile makes it: 0 XP, level 1,
      -- the first tier, visible), an existing one read and updated.
      with base as materialized (
        select w.ord, w.pid, w.key, w.request, w.target, w.created,
               coalesce(w.parts, jsonb_build_array(jsonb_build_object('layer', v_layer, 'amount', w.target))) as parts,
               p.xp as xp_before, p.level as level_before, p.tier as tier_before, p.points as points_before,
               p.leaderboard_visible as visible, lv.level as level_after, coalesce(tr.slug, p.tier) as tier_after
          from unnest(w_ord, w_pid, w_key, w_request, w_target, w_parts, w_status, w_created)
                 as w (ord, pid, key, request, target, parts, status, created)
          join lateral (
            select 0::bigint as xp, 1 as level, v_tier1 as tier, 0::bigint as points, true as leaderboard_visible
             where w.created
            union all
            (select p.xp, p.level, p.tier, p.points, p.leaderboard_visible from public.profiles p
              where not w.created and p.id = w.pid limit 1)
          ) p on true
         cross join lateral (
           select coalesce((select c.level from public.level_curve c
                             where c.xp_required <= greatest(p.xp + w.target, 0)
                             order by c.xp_required desc limit 1), 1) as level
         ) lv
          left join lateral (
            select t.slug from public.tiers t where t.min_level <= lv.level order by t.min_level desc limit 1
          ) tr on true
         where w.status = 'imported'
      ), unlocked as materialized (
        -- The tiers' unlocks passed on the way up, once per pair of levels before and after.
        select b.level_before, b.level_after,
               (select coalesce(jsonb_agg(jsonb_build_object('tier', u.tier_slug, 'slug', u.slug, 'name', u.name)
                                          order by t.min_level, u.position, u.slug), '[]')
                  from public.tier_unlocks u
                  join public.tiers t on t.slug = u.tier_slug
                 where t.min_level > b.level_before and t.min_level <= b.level_after) as list
          from (select distinct b.level_before, b.level_after from base b) b
      ), member as materialized (
        select b.*, u.list as unlocks
          from base b join unlocked u on u.level_before = b.level_before and u.level_after = b.level_after
      ), part as materialized (
        -- Ledger ids in batch order, then layer order, as the per-member import drew them.
        select x.*, nextval('public.xp_ledger_id_seq') as id,
               case when x.season_id is not null then greatest(x.amount, -x.season_before) else 0 end as season_amount
          from (
            select mb.ord, mb.pid, mb.key, mb.request, mb.visible, e.idx, e.part ->> 'layer' as layer,
                   (e.part ->> 'amount')::integer as amount, pl.status is not null as layer_found,
                   coalesce(pl.xp, 0) as xp_before,
                   case when pl.status is not null then pl.status
                        else (select s.slug from public.layer_statuses s
                               where s.layer_slug = e.part ->> 'layer' and s.min_xp <= 0
                               order by s.min_xp desc limit 1) end as status_before,
                   (select s.slug from public.layer_statuses s
                     where s.layer_slug = e.part ->> 'layer'
                       and s.min_xp <= greatest(coalesce(pl.xp, 0) + (e.part ->> 'amount')::integer, 0)
                     order by s.min_xp desc limit 1) as status,
                   se.season_id, coalesce(se.closed, false) as closed, ss.xp is not null as season_found,
                   coalesce(ss.xp, 0) as season_before
              from member mb
             cross join lateral jsonb_array_elements(mb.parts) with ordinality as e (part, idx)
              left join lateral (
                select pl.xp, pl.status from public.profile_layers pl
                 where pl.profile_id = mb.pid and pl.layer_slug = e.part ->> 'layer' limit 1
              ) pl on true
              left join unnest(s_layer, s_season, s_closed) as se (layer, season_id, closed)
                on se.layer = e.part ->> 'layer'
              left join lateral (
                select ss.xp from public.season_scores ss
                 where ss.season_id = se.season_id and ss.profile_id = mb.pid limit 1
              ) ss on true
             order by mb.ord, e.idx
          ) x
      ), receipt as materialized (
        select mb.ord, mb.pid, mb.created, mb.visible, mb.xp_before, mb.xp_before + mb.target as xp_after,
               mb.level_after, mb.tier_after,
               v_receipt || jsonb_build_object(
                 'requested', mb.target,
                 'base', mb.target,
                 'profile_id', mb.pid,
                 'idempotency_key', mb.key,
                 'granted', mb.target,
                 'total_xp_before', mb.xp_before,
                 'total_xp', mb.xp_before + mb.target,
                 'level_before', mb.level_before,
                 'level', mb.level_after,
                 'tier_before', mb.tier_before,
                 'tier', mb.tier_after,
                 'points', mb.points_before,
                 'layers', g.layers,
                 'layer', g.layers -> 0 ->> 'layer',
                 'layer_xp', (g.layers -> 0 ->> 'xp')::bigint,
                 'layer_status_before', g.layers -> 0 ->> 'status_before',
                 'layer_status', g.layers -> 0 ->> 'status',
                 'season_id', (g.layers -> 0 ->> 'season_id')::bigint,
                 'season_xp', (g.layers -> 0 ->> 'season_xp')::bigint,
                 'unlocks', mb.unlocks,
                 'season_closed', g.any_closed,
                 'tier_up', mb.tier_after is distinct from mb.tier_before and jsonb_array_length(mb.unlocks) > 0,
                 'tier_name', case when mb.tier_after is distinct from mb.tier_before
                                        and jsonb_array_length(mb.unlocks) > 0
                                   then (select t.name from public.tiers t where t.slug = mb.tier_after) end,
                 'ledger_id', g.first_id) as receipt
          from member mb
          join (
            select pt.ord, min(pt.id) as first_id, bool_or(pt.closed) as any_closed,
                   jsonb_agg(jsonb_build_object(
                     'layer', pt.layer, 'amount', pt.amount, 'xp_before', pt.xp_before, 'xp', pt.xp_before + pt.amount,
                     'status_before', pt.status_before, 'status', pt.status, 'season_id', pt.season_id,
                     'season_amount', pt.season_amount,
                     'season_xp', case when pt.season_id is not null then pt.season_before + pt.season_amount end)
                     order by pt.idx) as layers
              from part pt
             group by pt.ord
          ) g on g.ord = mb.ord
      ), ledger as (
        insert into public.xp_ledger (
          id, profile_id, activity_slug, layer_slug, season_id, amount, season_amount, points, occurred_at,
          idempotency_key, actor_id, actor_role, reason, reverses_id, request, receipt
        ) overriding system value
        select pt.id, pt.pid, 'import', pt.layer, pt.season_id, pt.amount, pt.season_amount, 0, v_now, pt.key,
               v_actor.actor_id, v_actor.actor_role, 'import from ' || p_source, null, pt.request, r.receipt
          from part pt
          join receipt r on r.ord = pt.ord
         order by pt.id
        returning id
      ), layer_total as (
        insert into public.profile_layers as pl (profile_id, layer_slug, xp, status, reached_at)
        select pt.pid, pt.layer, pt.xp_before + pt.amount, pt.status, v_now from part pt where pt.amount <> 0
        on conflict (profile_id, layer_slug) do update
          set xp = excluded.xp, status = excluded.status, reached_at = excluded.reached_at
      ), season_total as (
        insert into public.season_scores as s (season_id, profile_id, xp, reached_at)
        select pt.season_id, pt.pid, pt.season_before + pt.season_amount, v_now from part pt where pt.season_amount <> 0
        on conflict (season_id, profile_id) do update
          set xp = excluded.xp, reached_at = excluded.reached_at
      ), made as (
        insert into public.profiles (id, display_name, tier, xp, level, xp_reached_at, updated_at)
        select w.pid, coalesce(private.clean_display_name(coalesce(w.name, 'Discord member')), 'discord member'),
               case when r.ord is null then v_tier1 else r.tier_after end, coalesce(r.xp_after, 0),
               coalesce(r.level_after, 1), v_now, now()
          from unnest(w_ord, w_pid, w_name, w_created) as w (ord, pid, name, created)
          left join receipt r on r.ord = w.ord
         where w.created
         order by w.ord
      ), linked as (
        insert into public.identities (profile_id, provider, subject)
        select w.pid, 'discord', w.user_id
          from unnest(w_ord, w_pid, w_user, w_created) as w (ord, pid, user_id, created)
         where w.created
         order by w.ord
      ), profile_total as (
        -- updated_at is stamped here: profiles' _100_validate trigger fires only for the editable columns.
        update public.profiles p
           set xp = r.xp_after, level = r.level_after, tier = r.tier_after, xp_reached_at = v_now, updated_at = now()
          from receipt r
         where p.id = r.pid and not r.created
      ), moves (board, scope, old_xp, new_xp) as (
        -- What private.tg_profiles__leaderboard_counts and tg_board_scores__leaderboard_counts would have
        -- moved (visible members, boards not left in leaderboard_hidden_boards), one move per member and
        -- board from before the batch to after it (a new profile enters at its XP).
        select 'all_time'::text, ''::text, case when not r.created then r.xp_before end, r.xp_after
          from receipt r
         where r.visible
           and not exists (select 1 from public.leaderboard_hidden_boards h
                            where h.profile_id = r.pid and h.board = 'all_time' and h.scope = '')
        union all
        select 'all_time', '', null::bigint, 0::bigint
          from unnest(w_created, w_status) w (created, status)
         where w.created and w.status <> 'imported'
        union all
        select 'layer', pt.layer, case when pt.layer_found then pt.xp_before end, pt.xp_before + pt.amount
          from part pt
         where pt.amount <> 0 and pt.visible
           and not exists (select 1 from public.leaderboard_hidden_boards h
                            where h.profile_id = pt.pid and h.board = 'layer' and h.scope = pt.layer)
        union all
        select 'season', pt.season_id::text, case when pt.season_found then pt.season_before end,
               pt.season_before + pt.season_amount
          from part pt
         where pt.season_amount <> 0 and pt.visible
           and not exists (select 1 from public.leaderboard_hidden_boards h
                            where h.profile_id = pt.pid and h.board = 'season' and h.scope = pt.layer)
      ), counted as (
        -- private.leaderboard_count_move's rows (private.leaderboard_count_rows) for every move, summed per
        -- board, scope, level and bucket.
        insert into public.leaderboard_count_deltas (board, scope, level, bucket, delta)
        select d.board, d.scope, d.level, d.bucket, sum(d.delta)
          from moves mv
         cross join lateral private.leaderboard_count_rows(mv.board, mv.scope, mv.old_xp, mv.new_xp) d
         group by d.board, d.scope, d.level, d.bucket
        having sum(d.delta) <> 0
         order by 1, 2, 3, 4
      )
      select (select array_agg(l.id order by l.id) from ledger l),
             (select array_agg(r.ord order by r.ord) from receipt r),
             (select array_agg(r.level_after order by r.ord) from receipt r)
        into v_ledger_ids, i_ord, i_level;

      -- Membership of the server, for every member not rejected that has a profile.
      insert into public.discord_guild_members (guild_id, profile_id)
      select p_guild_id, w.pid
        from unnest(w_ord, w_pid, w_status) w (ord, pid, status)
       where w.pid is not null and w.status <> 'rejected'
       order by w.ord
      on conflict (guild_id, profile_id) do nothing;

      -- Badges, as private.tg_xp_ledger__badges decides them for each new ledger row (the same functions,
      -- as of that row): a badge is recorded at the first of the batch's rows that earns it for a member who
      -- did not hold it (no badge_awarded notification: none is stored during an import).
      if v_ledger_ids is not null then
        insert into public.badge_awards (badge_slug, profile_id, subject, level, awarded_at, ledger_id, season_id,
                                         source)
        select g.slug, g.profile_id, g.subject, g.level, g.occurred_at, g.id, null, 'live'
          from (
            select distinct on (b.slug, l.profile_id, x.subject)
                   b.slug, b.position, b.level, l.profile_id, x.subject, l.occurred_at, l.id
              from public.xp_ledger l
             cross join public.badges b
             cross join lateral (select case when b.once_per = 'subject' then coalesce(l.subject, '') else '' end
                                   as subject) x
             where l.id = any (v_ledger_ids)
               and b.active and b.kind <> 'season_placing'
               and (b.activities is null or l.activity_slug = any (b.activities))
               and case when private.badge_applies(b, l)
                             and (select a.id from public.badge_awards a
                                   where a.badge_slug = b.slug and a.profile_id = l.profile_id
                                     and a.subject = x.subject limit 1) is null  -- private.held
                        then private.badge_met(b, l) else false end
             order by b.slug, l.profile_id, x.subject, l.id
          ) g
         order by g.id, g.position, g.slug
        on conflict (badge_slug, profile_id, subject) do nothing;
      end if;
    end if;

    -- The answer's rows of this round.
    select a_ord || array_agg(w.ord order by w.ord),
           a_row || array_agg(jsonb_build_object(
             'user_id', w.user_id, 'status', x.status, 'reason', w.reason, 'new_profile', w.xp is null,
             'xp_before', coalesce(w.xp, 0), 'level_before', coalesce(w.level, 1),
             'xp_granted', case when x.status in ('imported', 'zero') then w.target else 0 end,
             'level', case when x.status <> 'imported' then coalesce(w.level, 1)
                           when p_dry_run then public.level_for_xp(coalesce(w.xp, 0) + coalesce(w.target, 0))
                           else i.level end) order by w.ord)
      into a_ord, a_row
      from unnest(w_ord, w_user, w_status, w_reason, w_xp, w_level, w_target)
             as w (ord, user_id, status, reason, xp, level, target)
     cross join lateral (
       select coalesce(w.status, case when w.target = 0 then 'zero' else 'imported' end) as status
     ) x
      left join unnest(i_ord, i_level) as i (ord, level) on i.ord = w.ord;
  end loop;

  if not p_dry_run and exists (select 1 from unnest(a_row) r where r ->> 'status' = 'imported') then
    insert into public.discord_role_resyncs (guild_id) values (p_guild_id)
    on conflict (guild_id) do update set requested_at = excluded.requested_at;
  end if;
  perform set_config('xpbase.importing', 'off', true);
  select jsonb_object_agg(s.status, s.n) into v_counts
    from (select r ->> 'status' as status, count(*) as n from unnest(a_row) r group by 1) s;
  return jsonb_build_object('source', p_source, 'guild_id', p_guild_id, 'keep', p_keep, 'dry_run', p_dry_run,
                            'counts', coalesce(v_counts, '{}'::jsonb),
                            'members', (select jsonb_agg(r.answer order by r.ord)
                                               from unnest(a_ord, a_row) r (ord, answer)));
end
$$;
comment on function private.import_members(text, text, text, jsonb, boolean) is
  'Implementation of public.admin_import_members: set-based per batch (profiles, identities, ledger rows, '
  'totals, leaderboard count changes and badges written by one statement each for the whole batch), with what '
  'private.ensure_profile, private.apply_xp and the per-row triggers wrote one member at a time.';
revoke all on function private.import_members(text, text, text, jsonb, boolean) from public;
grant execute on function private.import_members(text, text, text, jsonb, boolean) to service_role, authenticated;

create or replace function public.admin_import_members(
  source text,
  guild_id text,
  keep text,
  members jsonb,
  dry_run boolean default false
)
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.import_members(source, guild_id, keep, members, coalesce(dry_run, false))
$$;
comment on function public.admin_import_members(text, text, text, jsonb, boolean) is
  'Imports one batch of members of a Discord server from another bot. source: mee6|amari|polaris|levelup|csv; '
  'guild_id: the server (Discord id); keep: xp (the number of XP is kept) or level (the same level and progress '
  'on xpbase''s curve); members: 1 to 1000 objects {user_id (Discord id), display_name?, xp (whole XP >= 0), '
  'level (0-100000, the source bot''s level), progress? (0-1 of the way to the next level), layers? ({layer: '
  'XP} adding up to xp, keep xp only: an xpbase export moved back in)}. Each member is one ledger row of '
  'activity import (in the activity''s layer, or one per layer given; no points) keyed '
  'import:<source>:<guild>:<user>: a '
  'second run answers unchanged, the same key with other figures answers conflict (nothing written). '
  'Profiles are made for members not seen yet, membership of the server recorded, a role resync queued. '
  'dry_run: the same answer, nothing written. Returns {source, guild_id, keep, dry_run, counts {status: n}, '
  'members [{user_id, status imported|unchanged|zero|conflict|rejected, reason, new_profile, xp_before, '
  'level_before, xp_granted, level}]}. Admins and service_role. Errors: XPBAD (a malformed member: the whole '
  'batch is refused), XPCFG, 42501 (not an admin).';
revoke all on function public.admin_import_members(text, text, text, jsonb, boolean) from public;
grant execute on function public.admin_import_members(text, text, text, jsonb, boolean) to authenticated, service_role;

create or replace function private.import_role_rewards(p_guild_id text, p_rewards jsonb, p_dry_run boolean)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_reward jsonb;
  v_rows jsonb := '[]';
  v_exists boolean;
begin
  perform private.assert_admin();
  perform private.discord_id('guild_id', p_guild_id);
  if p_rewards is null or jsonb_typeof(p_rewards) <> 'array' or jsonb_array_length(p_rewards) > 250 then
    raise exception 'rewards must be an array of at most 250 role rewards' using errcode = 'XPBAD';
  end if;
  for v_reward in select * from jsonb_array_elements(p_rewards) loop
    perform private.discord_id('rewards[].role_id', v_reward ->> 'role_id');
    if jsonb_typeof(v_reward -> 'min_level') is distinct from 'number'
       or (v_reward ->> 'min_level')::numeric not between 1 and 100000 then
      raise exception 'rewards[].min_level must be 1 to 100000' using errcode = 'XPBAD';
    end if;
    v_exists := exists (select 1 from public.discord_role_rewards r
                         where r.guild_id = p_guild_id and r.role_id = v_reward ->> 'role_id');
    if not p_dry_run and not v_exists then
      perform private.discord_set_role_reward(p_guild_id, v_reward ->> 'role_id',
                                              (v_reward ->> 'min_level')::integer, null);
    end if;
    v_rows := v_rows || jsonb_build_object('role_id', v_reward ->> 'role_id',
                                           'min_level', (v_reward ->> 'min_level')::integer,
                                           'status', case when v_exists then 'kept' else 'added' end);
  end loop;
  if not p_dry_run and jsonb_array_length(v_rows) > 0 then
    insert into public.discord_role_resyncs (guild_id) values (p_guild_id)
    on conflict (guild_id) do update set requested_at = excluded.requested_at;
  end if;
  return jsonb_build_object('guild_id', p_guild_id, 'dry_run', p_dry_run, 'rewards', v_rows);
end
$$;
comment on function private.import_role_rewards(text, jsonb, boolean) is
  'Implementation of public.admin_import_role_rewards.';
revoke all on function private.import_role_rewards(text, jsonb, boolean) from public;
grant execute on function private.import_role_rewards(text, jsonb, boolean) to service_role, authenticated;

create or replace function public.admin_import_role_rewards(guild_id text, rewards jsonb, dry_run boolean default false)
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.import_role_rewards(guild_id, rewards, coalesce(dry_run, false))
$$;
comment on function public.admin_import_role_rewards(text, jsonb, boolean) is
  'Copies another bot''s level roles into the server''s role rewards: rewards is at most 250 objects '
  '{role_id (Discord id), min_level (1-100000, on xpbase''s curve)}. A role that already has a reward is kept '
  'as configured; a role resync is queued. Returns {guild_id, dry_run, rewards [{role_id, min_level, status '
  'added|kept}]}. Admins and service_role. Errors: XPBAD, XPLVL, 42501.';
revoke all on function public.admin_import_role_rewards(text, jsonb, boolean) from public;
grant execute on function public.admin_import_role_rewards(text, jsonb, boolean) to authenticated, service_role;

create or replace function private.discord_take_role_resyncs()
returns jsonb
language sql
volatile
security definer
set search_path = ''
as $$
  with taken as (delete from public.discord_role_resyncs returning guild_id, requested_at)
  select jsonb_build_object('resyncs', coalesce(jsonb_agg(jsonb_build_object('guild_id', t.guild_id,
                                                                          'requested_at', t.requested_at)
                                                       order by t.requested_at), '[]'::jsonb))
    from taken t
$$;
comment on function private.discord_take_role_resyncs() is
  'Implementation of public.service_role_discord_take_role_resyncs.';
revoke all on function private.discord_take_role_resyncs() from public;
grant execute on function private.discord_take_role_resyncs() to service_role;

create or replace function public.service_role_discord_take_role_resyncs()
returns jsonb
language sql
volatile
security invoker
set search_path = ''
as $$
  select private.discord_take_role_resyncs()
$$;
comment on function public.service_role_discord_take_role_resyncs() is
  'Takes (removes and returns) the servers whose reward roles must be resynced after an import: '
  '{resyncs: [{guild_id, requested_at}]}, oldest first. The bot resyncs each server it is in. service_role only.';
revoke all on function public.service_role_discord_take_role_resyncs() from public;
grant execute on function public.service_role_discord_take_role_resyncs() to service_role;
