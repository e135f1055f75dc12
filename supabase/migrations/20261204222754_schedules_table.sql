-- The schedules become rows of private.schedules (the one list; pg_cron's cron.job follows
-- it by a trigger where pg_cron runs, `videogen up` runs it elsewhere). Everything above the
-- section "rows and pg_cron" is `make migration NAME=schedules_table` as drafted (verified
-- equal to sql/schema by the tool); that section is hand-written (data).
--
-- Migration schedules_table: drafted by `make migration` from sql/schema; review before committing.
-- Write by hand only what a diff cannot express: data moves, backfills, renames (drafted
-- as drop + create), default privileges.
-- Unsafe statements (drops): none.

set check_function_bodies = off;

CREATE OR REPLACE FUNCTION private.pg_cron_possible()
 RETURNS boolean
 LANGUAGE sql
 STABLE
 SET search_path TO ''
AS $function$
  select exists (select 1 from pg_catalog.pg_available_extensions where name = 'pg_cron')
     and 'pg_cron' = any (string_to_array(
           replace(pg_catalog.current_setting('shared_preload_libraries'), ' ', ''), ','))
     and pg_catalog.current_database()
         = coalesce(pg_catalog.current_setting('cron.database_name', true), 'postgres')
$function$
;

CREATE OR REPLACE FUNCTION private.schedule_sync()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
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
$function$
;

CREATE OR REPLACE FUNCTION private.schedules_by_pg_cron()
 RETURNS boolean
 LANGUAGE sql
 STABLE
 SET search_path TO ''
AS $function$
  select exists (select 1 from pg_catalog.pg_extension where extname = 'pg_cron')
     and exists (select 1 from pg_catalog.pg_stat_activity
                  where backend_type = 'pg_cron launcher'
                    and datname = pg_catalog.current_database())
$function$
;

create table "private"."schedules" (
    "name" text not null,
    "schedule" text not null,
    "command" text not null
);

alter table "private"."schedules" enable row level security;

CREATE TRIGGER schedules_sync AFTER INSERT OR DELETE OR UPDATE ON private.schedules FOR EACH ROW EXECUTE FUNCTION private.schedule_sync();

CREATE UNIQUE INDEX schedules_pkey ON private.schedules USING btree (name);

grant delete on table "private"."schedules" to "service_role";

grant insert on table "private"."schedules" to "service_role";

grant references on table "private"."schedules" to "service_role";

grant select on table "private"."schedules" to "service_role";

grant trigger on table "private"."schedules" to "service_role";

grant truncate on table "private"."schedules" to "service_role";

grant update on table "private"."schedules" to "service_role";

alter table "private"."schedules" add constraint "schedules_pkey" PRIMARY KEY using index "schedules_pkey";


-- ===================================================================================
-- rows and pg_cron (hand-written): the extension where it can run for this database;
-- the rows (the trigger re-schedules the cron.job of the same name where pg_cron runs)
-- ===================================================================================

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
  ('videogen-requests-cleanup', '17 * * * *', 'select service.requests_clean_up()'),
  ('videogen-prune-events', '42 3 * * *', 'select service.job_events_prune(90)'),
  ('videogen-subscriptions-expire', '7 * * * *', 'select service.subscriptions_expire()');
