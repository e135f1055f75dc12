/*
 * Module 9: who may do what. RLS is on for every table; users read only their own rows;
 * nobody but the procedures writes money, jobs or history. Grants are spelled out:
 * Supabase's default privileges give anon/authenticated everything in public, so we take
 * it back and grant what each role needs.
 */

-- ===================================================================================
-- Row level security
-- ===================================================================================

alter table public.profiles enable row level security;
alter table public.models enable row level security;
alter table public.workers enable row level security;
alter table public.jobs enable row level security;
alter table public.job_events enable row level security;
alter table public.credit_ledger enable row level security;
alter table public.projects enable row level security;
alter table public.batches enable row level security;
alter table private.idempotency_keys enable row level security;
alter table private.rate_limits enable row level security;
alter table private.webhook_receipts enable row level security;
alter table private.settings enable row level security;

create policy "Profiles are visible to their owner" on public.profiles
  for select to authenticated using ((select auth.uid()) = id);

create policy "Owners can change their profile" on public.profiles
  for update to authenticated
  using ((select auth.uid()) = id) with check ((select auth.uid()) = id);

create policy "Available models are visible to everyone" on public.models
  for select to anon, authenticated using (is_available);

create policy "Jobs are visible to their owner" on public.jobs
  for select to authenticated using ((select auth.uid()) = user_id and deleted_at is null);

create policy "Job events are visible to the job owner" on public.job_events
  for select to authenticated using ((select auth.uid()) = user_id);

create policy "Ledger entries are visible to their owner" on public.credit_ledger
  for select to authenticated using ((select auth.uid()) = user_id);

-- workers, idempotency_keys, rate_limits, webhook_receipts, settings: no policy at all —
-- only service_role (bypasses RLS) and the security-definer procedures reach them.

-- ===================================================================================
-- Table and column grants
-- ===================================================================================

revoke all on public.profiles, public.models, public.workers, public.jobs, public.job_events,
  public.credit_ledger from anon, authenticated;
revoke all on all tables in schema private from anon, authenticated;

grant select on public.models to anon, authenticated;
grant select on public.profiles, public.jobs, public.job_events, public.credit_ledger
  to authenticated;
grant update (display_name, language, theme) on public.profiles to authenticated;

grant all on all tables in schema public to service_role;
grant all on all tables in schema private to service_role;

-- Supabase's default privileges give anon and authenticated ALL on every new table in
-- public, TRUNCATE (which ignores RLS), REFERENCES and TRIGGER included. No client needs
-- those three on anything of ours: new tables start without them.
alter default privileges in schema public revoke truncate, references, trigger on tables
  from anon, authenticated;

-- ===================================================================================
-- Function grants: nothing is executable by default; then exactly what each role calls
-- ===================================================================================

revoke execute on all functions in schema public from public, anon, authenticated;
revoke execute on all functions in schema private from public, anon, authenticated;
revoke execute on all functions in schema service from public, anon, authenticated;
alter default privileges in schema private revoke execute on functions from public;
alter default privileges in schema service revoke execute on functions from public;

-- Writes are service-only: the functions call service.job_create, service.job_cancel and
-- service.initial_grant_claim as service_role with the user's claims (auth.uid() is the
-- user), after authentication, the rate limit and the idempotency key, and route the job
-- after commit. A client calling them over PostgREST would skip all of that: the schema
-- is not exposed, and anon and authenticated have neither usage on it nor execute (42501).

/**
 * Refuse claims whose user Supabase Auth does not know (deleted, or a token it never
 * issued): the functions run this first in every user's transaction. Raises VGU01.
 */
create function private.require_known_user()
returns void
language plpgsql stable
security definer
set search_path = ''
as $$
begin
  if not exists (select 1 from auth.users u
                  where u.id = (select auth.uid()) and u.deleted_at is null) then
    raise exception 'the access token''s user does not exist' using errcode = 'VGU01';
  end if;
end;
$$;

revoke all on function private.require_known_user() from public;
grant execute on function private.require_known_user() to authenticated;

grant execute on all functions in schema public to service_role;
grant execute on all functions in schema private to service_role;
grant execute on all functions in schema service to service_role;

-- ===================================================================================
-- Realtime: the owner (only) may receive broadcasts on user:<uid>:jobs
-- ===================================================================================

create policy "Users receive broadcasts on their own jobs topic" on realtime.messages
  for select to authenticated
  using (
    realtime.messages.extension = 'broadcast'
    -- The row's own topic too: without it, joining one's own topic reads every user's rows.
    and realtime.messages.topic = (select realtime.topic())
    and (select realtime.topic()) = 'user:' || (select auth.uid()) || ':jobs'
  );

-- Row changes a frontend follows with postgres_changes (each subscriber gets only the rows
-- its RLS lets it select): its jobs and its profile (balance, reserved).
alter publication supabase_realtime add table public.jobs, public.profiles;
