-- Indexes for the REST API's paged reads (issue 10): a member's ledger and notifications are listed newest
-- first by id with an id cursor (public.list_my_ledger, public.list_notifications), so each page is an index
-- range scan instead of a sort of the member's whole history.
create index if not exists xp_ledger_profile_id_id_idx on public.xp_ledger (profile_id, id desc);
create index if not exists notifications_profile_id_id_idx on public.notifications (profile_id, id desc);
