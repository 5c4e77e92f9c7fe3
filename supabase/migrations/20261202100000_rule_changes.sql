-- Rule changes replayed over the ledger (issue 16, item 5): `xpbase rules diff` shows who would gain or lose
-- XP, levels, tiers and reward roles if a change to activity amounts, rates, caps, multipliers or the level
-- curve were applied; `xpbase rules apply` writes the change, appends the corrections (rows naming the award
-- they correct, never edits) and records it here. supabase/sql/47_rule_changes.sql holds the functions.

create table public.rule_changes (
  id bigint generated always as identity primary key,
  change jsonb not null check (jsonb_typeof(change) = 'object'),
  reason text not null check (length(reason) between 1 and 500),
  actor_id uuid references public.profiles (id),
  actor_role text not null check (actor_role ~ '^[a-z][a-z0-9_]{0,31}$'),
  summary jsonb not null default '{}' check (jsonb_typeof(summary) = 'object'),
  applied_at timestamptz not null default now()
);
comment on table public.rule_changes is
  'Every rule change applied with public.admin_rules_apply: the change document (sections activities, '
  'activity_rates, cap_groups, multipliers, level_curve), the reason, who applied it (actor_role: service_role or '
  'the member''s role) and the summary of what '
  'it moved (awards_changed, members_changed, xp_delta, levels_changed, tiers_changed). The corrections it '
  'wrote are the ledger rows keyed ''rules:<corrected ledger id>:<id>''. Members whose role holds manage_rules '
  '(admins) read it; only the engine writes.';
create index rule_changes_actor_id_idx on public.rule_changes (actor_id) where actor_id is not null;

alter table public.rule_changes enable row level security;
revoke all on public.rule_changes from anon, authenticated, service_role;
grant select on public.rule_changes to authenticated;
grant select, insert on public.rule_changes to service_role;
-- Who may diff and apply rule changes, and read their record (private.has_permission, 12_roles.sql).
insert into public.permissions (slug, description) values
  ('manage_rules', 'Preview and apply changes to the XP rules (amounts, rates, caps, multipliers, level curve).')
on conflict do nothing;
insert into public.role_permissions (role_slug, permission_slug) values ('admin', 'manage_rules')
on conflict do nothing;
create policy "Members who manage the rules can read the rule changes." on public.rule_changes
  for select to authenticated using ((select private.has_permission('manage_rules')));

insert into public.notification_kinds (kind, description, default_channels, collapse_seconds) values
  ('xp_recalculated', 'Your XP was recalculated because the community changed its XP rules', '{in_app}', 0)
on conflict (kind) do nothing;
