-- Rule packs beyond the Discord defaults: amounts that change on a date and a
-- floor other than zero.
--
-- A real reputation system (Stack Exchange, issue 3) changed the XP of one
-- activity on a date (question upvotes: +5 before 2019-11-13, +10 from then on)
-- and never lets a member fall below 1. Both are data here, read by
-- private.award_xp:
-- - public.activity_rates: the base XP of an activity from a moment on; the
--   rate in force at an award's occurred_at wins over activity_types.base_xp
--   (which stays the rate before the first dated row).
-- - activity_types.xp_floor: a negative award of the activity never takes the
--   layer's XP below this (0 for every existing activity, as before).

alter table public.activity_types
  add column xp_floor integer not null default 0 check (xp_floor >= 0);
comment on column public.activity_types.xp_floor is
  'The lowest layer XP a negative award of this activity may leave (0 by default; Stack Exchange: 1). '
  'An award that would go below it is reduced to reach it exactly, and to 0 when the layer is already at or below it.';

create table public.activity_rates (
  activity_slug text not null references public.activity_types (slug) on update cascade on delete cascade,
  effective_from timestamptz not null,
  base_xp integer not null,
  description text not null default '',
  primary key (activity_slug, effective_from)
);
comment on table public.activity_rates is
  'Base XP of an activity that changes on a date: from effective_from on (compared with the award''s '
  'occurred_at), base_xp replaces activity_types.base_xp, until a later row takes over. Without a row in force '
  'the activity''s own base_xp applies. For an activity with a range the rate must lie inside [min_xp, max_xp].';

alter table public.activity_rates enable row level security;
revoke all on public.activity_rates from anon, authenticated, service_role;
grant select on public.activity_rates to anon, authenticated;
grant select, insert, update, delete on public.activity_rates to service_role;
create policy "Anyone can read the activity rates." on public.activity_rates
  for select to anon, authenticated using (true);
