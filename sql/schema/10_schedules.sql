/*
 * Module 10: pg_cron schedules, where the extension exists (Supabase has it; a plain
 * Postgres usually does not, and then this is skipped). The HTTP health sweep
 * (health-check-workers) does the same work when called by any scheduler.
 */

do $cron$
begin
  if not exists (select 1 from pg_available_extensions where name = 'pg_cron') then
    raise notice 'pg_cron not available: schedules skipped (call health-check-workers instead)';
    return;
  end if;
  create extension if not exists pg_cron;
  perform cron.schedule('videogen-requeue-expired', '* * * * *',
                        'select service.jobs_requeue_expired()');
  perform cron.schedule('videogen-cancel-overdue', '* * * * *',
                        'select service.jobs_cancel_overdue()');
  perform cron.schedule('videogen-requests-cleanup', '17 * * * *',
                        'select service.requests_clean_up()');
  perform cron.schedule('videogen-prune-events', '42 3 * * *',
                        'select service.job_events_prune(90)');
  perform cron.schedule('videogen-subscriptions-expire', '7 * * * *',
                        'select service.subscriptions_expire()');
end;
$cron$;
