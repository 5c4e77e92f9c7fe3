-- Statement timeouts for the API roles, as Supabase sets them (issue 18): anon 3 s, authenticated 8 s.
-- A member or visitor can no longer start a query that runs until the server is restarted. PostgREST
-- applies a role's settings when it switches to the role; xpbase.db.switch_role does the same, so the
-- service, the bot and the embedded server get the same limits. service_role keeps the server default.
alter role anon set statement_timeout = '3s';
alter role authenticated set statement_timeout = '8s';
