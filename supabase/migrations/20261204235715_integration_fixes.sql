-- Migration integration_fixes: drafted by `make migration` from sql/schema; review before committing.
-- Write by hand only what a diff cannot express: data moves, backfills, renames (drafted
-- as drop + create), default privileges.
-- Unsafe statements (drops): none.

revoke execute on function private.job_output_files(p_output jsonb) from public;

revoke execute on function private.pg_cron_possible() from public;

revoke execute on function private.schedule_sync() from public;

revoke execute on function private.schedules_by_pg_cron() from public;

grant execute on function private.job_output_files(p_output jsonb) to service_role;

grant execute on function private.pg_cron_possible() to service_role;

grant execute on function private.schedule_sync() to service_role;

grant execute on function private.schedules_by_pg_cron() to service_role;

-- Data (hand-written): the deadline sweep is one of the schedules (its migration scheduled
-- it in pg_cron directly, before private.schedules was the one list).
insert into private.schedules (name, schedule, command) values
  ('videogen-cancel-overdue', '* * * * *', 'select service.jobs_cancel_overdue()')
on conflict (name) do nothing;
