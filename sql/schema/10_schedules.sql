/*
 * Module 10: the schedules. private.schedules is the one list of what runs when, in
 * pg_cron's syntax (five cron fields; 'N seconds' where pg_cron ≥ 1.5 runs it). Where
 * pg_cron runs for this database (Supabase; the embedded Postgres with Debian's
 * postgresql-<major>-cron, which videogen_dev.localdb preloads) every row is the cron.job
 * of the same name, kept in step by a trigger. Elsewhere `videogen up` runs the same rows
 * itself (videogen_dev.scheduler), and any scheduler may call the HTTP health sweep
 * (health-check-workers) instead.
 */

/** What runs when: pg_cron's schedule syntax and the SQL command it runs. */
create table private.schedules (
  name text primary key,
  schedule text not null,
  command text not null
);

alter table private.schedules enable row level security;
revoke all on private.schedules from anon, authenticated;
grant all on private.schedules to service_role;

/**
 * True when pg_cron can be created in this database: installed, loaded at server start
 * (it refuses otherwise) and this is its database (``cron.database_name``).
 */
create function private.pg_cron_possible()
returns boolean
language sql
stable
set search_path = ''
as $$
  select exists (select 1 from pg_catalog.pg_available_extensions where name = 'pg_cron')
     and 'pg_cron' = any (string_to_array(
           replace(pg_catalog.current_setting('shared_preload_libraries'), ' ', ''), ','))
     and pg_catalog.current_database()
         = coalesce(pg_catalog.current_setting('cron.database_name', true), 'postgres')
$$;

/**
 * True when pg_cron runs this database's schedules now: its extension is here and its
 * scheduler is running (it stops for good when its database is dropped, as by
 * `videogen db reset`, until the server restarts). Otherwise a scheduler of ours must.
 */
create function private.schedules_by_pg_cron()
returns boolean
language sql
stable
set search_path = ''
as $$
  select exists (select 1 from pg_catalog.pg_extension where extname = 'pg_cron')
     and exists (select 1 from pg_catalog.pg_stat_activity
                  where backend_type = 'pg_cron launcher'
                    and datname = pg_catalog.current_database())
$$;

/** Keeps cron.job in step with private.schedules (same name) where pg_cron is. */
create function private.schedule_sync()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  if not exists (select 1 from pg_catalog.pg_extension where extname = 'pg_cron') then
    return null;
  end if;
  if tg_op = 'DELETE' then
    perform cron.unschedule(jobid) from cron.job where jobname = old.name;
  else
    perform cron.schedule(new.name, new.schedule, new.command);
  end if;
  return null;
end;
$$;

create trigger schedules_sync
after insert or update or delete on private.schedules
for each row execute function private.schedule_sync();

revoke execute on function private.pg_cron_possible(), private.schedules_by_pg_cron(),
  private.schedule_sync()
  from public, anon, authenticated;
grant execute on function private.pg_cron_possible(), private.schedules_by_pg_cron(),
  private.schedule_sync()
  to service_role;

do $cron$
begin
  if private.pg_cron_possible() then
    create extension if not exists pg_cron;
  else
    raise notice 'pg_cron not running for this database: `videogen up` runs private.schedules';
  end if;
end;
$cron$;

insert into private.schedules (name, schedule, command) values
  ('videogen-requeue-expired', '* * * * *', 'select service.jobs_requeue_expired()'),
  ('videogen-cancel-overdue', '* * * * *', 'select service.jobs_cancel_overdue()'),
  ('videogen-requests-cleanup', '17 * * * *', 'select service.requests_clean_up()'),
  ('videogen-prune-events', '42 3 * * *', 'select service.job_events_prune(90)'),
  ('videogen-subscriptions-expire', '7 * * * *', 'select service.subscriptions_expire()');
