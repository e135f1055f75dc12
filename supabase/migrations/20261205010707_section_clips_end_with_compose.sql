-- Migration section_clips_end_with_compose: drafted by `make migration` from sql/schema; review before committing.
-- Write by hand only what a diff cannot express: data moves, backfills, renames (drafted
-- as drop + create), default privileges.
-- Unsafe statements (drops): none.

set check_function_bodies = off;

CREATE OR REPLACE FUNCTION private.job_cancellation(p_job public.jobs)
 RETURNS jsonb
 LANGUAGE sql
 STABLE SECURITY DEFINER
 SET search_path TO ''
AS $function$
  select private.job_notice(p_job) || jsonb_build_object('clips', coalesce((
    select jsonb_agg(private.job_notice(c) order by c.id)
      from public.jobs c
     where c.parent_job_id = p_job.id and c.finished_at = now()
       and c.error_code in ('PARENT_CANCELED', 'PARENT_FAILED')
       and (c.worker_id is not null or c.provider_job_id is not null)), '[]'))
$function$
;

CREATE OR REPLACE FUNCTION private.job_cancellation_tells(p_notice jsonb)
 RETURNS boolean
 LANGUAGE sql
 IMMUTABLE
 SET search_path TO ''
AS $function$
  select p_notice -> 'notify' <> 'null'::jsonb or p_notice ->> 'provider_job_id' is not null
         or p_notice -> 'clips' <> '[]'::jsonb
$function$
;

CREATE OR REPLACE FUNCTION private.job_notice(p_job public.jobs)
 RETURNS jsonb
 LANGUAGE sql
 STABLE SECURITY DEFINER
 SET search_path TO ''
AS $function$
  select jsonb_build_object(
    'job', private.job_json(p_job),
    'notify', (select jsonb_build_object('worker_id', w.id, 'url', w.url)
                 from public.workers w where w.id = p_job.worker_id),
    'provider', p_job.provider, 'provider_job_id', p_job.provider_job_id)
$function$
;

CREATE OR REPLACE FUNCTION private.section_clips_cancel()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  v_clip public.jobs;
begin
  for v_clip in select * from public.jobs
                 where id = any(new.waiting_for) and finished_at is null
                 order by id
                   for update loop
    update public.jobs
       set status = 'canceled', finished_at = now(), lease_expires_at = null,
           error_code = 'PARENT_' || upper(new.status::text),
           error_message = format('canceled: its compose job %s was %s', new.id, new.status)
     where id = v_clip.id
    returning * into v_clip;
    perform private.credits_release(v_clip);
  end loop;
  return null;
end;
$function$
;

CREATE OR REPLACE FUNCTION private.jobs_guard_transition()
 RETURNS trigger
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
begin
  -- Removing a worker, a project or a batch sets its id to null on its jobs, finished ones
  -- too (an FK action, run inside the RI trigger): a change a finished job accepts.
  if pg_trigger_depth() > 1
     and (old.worker_id is not null and new.worker_id is null
          or old.project_id is not null and new.project_id is null
          or old.batch_id is not null and new.batch_id is null)
     and to_jsonb(new) - '{worker_id,project_id,batch_id}'::text[]
         = to_jsonb(old) - '{worker_id,project_id,batch_id}'::text[] then
    return new;
  end if;
  -- An account's erasure (module 21) empties a finished job's personal fields.
  if old.finished_at is not null and current_setting('videogen.erasing', true) = 'on'
     and to_jsonb(new) - '{params,output,progress_message,error_message,webhook,deleted_at,output_expired_at,updated_at}'::text[]
         = to_jsonb(old) - '{params,output,progress_message,error_message,webhook,deleted_at,output_expired_at,updated_at}'::text[] then
    new.updated_at := now();
    return new;
  end if;
  -- A compose job that ended early still records how its section clips ended with it
  -- (module 04's private.section_clips_cancel): their status, and no more waiting.
  if old.finished_at is not null
     and to_jsonb(new) - '{params,waiting_for,updated_at}'::text[]
         = to_jsonb(old) - '{params,waiting_for,updated_at}'::text[]
     and new.params - 'section_clips' = old.params - 'section_clips'
     and new.waiting_for <@ old.waiting_for then
    new.updated_at := now();
    return new;
  end if;
  if old.finished_at is not null
     and to_jsonb(new) - '{deleted_at,output_expired_at,updated_at}'::text[]
         = to_jsonb(old) - '{deleted_at,output_expired_at,updated_at}'::text[]
     and (old.deleted_at is null or new.deleted_at is not distinct from old.deleted_at)
     and (old.output_expired_at is null
          or new.output_expired_at is not distinct from old.output_expired_at) then
    new.updated_at := now();
    return new;
  end if;
  if not private.job_transition_allowed(old.status, new.status) then
    raise exception 'job % cannot go from % to %', old.id, old.status, new.status
      using errcode = 'VGJ09';
  end if;
  if new.user_id <> old.user_id or new.cost <> old.cost or new.model_id <> old.model_id then
    raise exception 'owner, model and cost of a job never change' using errcode = 'VGJ09';
  end if;
  new.updated_at := now();
  return new;
end;
$function$
;

CREATE OR REPLACE FUNCTION service.admin_job_fail(p_job_id uuid, p_reason text)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  v_job public.jobs;
begin
  perform private.require_admin();
  select * into v_job from public.jobs where id = p_job_id for update;
  if not found then
    raise exception 'job % not found', p_job_id using errcode = 'VGJ04';
  end if;
  if v_job.status in ('completed', 'failed', 'canceled') then
    raise exception 'job is already %', v_job.status using errcode = 'VGJ09';
  end if;
  update public.jobs
     set status = 'failed', finished_at = now(), lease_expires_at = null,
         error_code = 'ADMIN_FAILED', error_message = left(p_reason, 2000)
   where id = p_job_id
  returning * into v_job;
  perform private.credits_release(v_job);
  return private.job_cancellation(v_job);
end;
$function$
;

CREATE OR REPLACE FUNCTION service.batch_cancel(p_batch_id uuid)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  v_batch public.batches;
  v_job_id uuid;
  v_running jsonb := '[]';
  v_canceled jsonb;
begin
  select * into v_batch from public.batches
   where id = p_batch_id and (user_id = auth.uid() or auth.role() = 'service_role')
     for update;
  if not found then
    raise exception 'batch % not found', p_batch_id using errcode = 'VGB04';
  end if;
  for v_job_id in select id from public.jobs
                   where batch_id = p_batch_id and finished_at is null
                   order by created_at, id loop
    v_canceled := service.job_cancel(v_job_id);
    if private.job_cancellation_tells(v_canceled) then
      v_running := v_running || jsonb_build_array(v_canceled);
    end if;
  end loop;
  update public.batches set canceled_at = coalesce(canceled_at, now()) where id = p_batch_id;
  return jsonb_build_object('batch', private.batch_progress(p_batch_id), 'running', v_running);
end;
$function$
;

CREATE OR REPLACE FUNCTION service.job_cancel(p_job_id uuid)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  v_job public.jobs;
begin
  select * into v_job from public.jobs where id = p_job_id for update;
  if not found or (auth.role() <> 'service_role' and v_job.user_id is distinct from auth.uid()) then
    raise exception 'job % not found', p_job_id using errcode = 'VGJ04';
  end if;
  if v_job.status in ('completed', 'failed', 'canceled') then
    raise exception 'job is already %', v_job.status using errcode = 'VGJ09';
  end if;
  update public.jobs
     set status = 'canceled', finished_at = now(), lease_expires_at = null,
         error_code = 'CANCELED', error_message = 'canceled by request'
   where id = p_job_id
  returning * into v_job;
  perform private.credits_release(v_job);
  return private.job_cancellation(v_job);
end;
$function$
;

CREATE OR REPLACE FUNCTION service.jobs_cancel_overdue(p_limit integer DEFAULT 500)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  v_job public.jobs;
  v_canceled jsonb;
  v_running jsonb := '[]';
  v_count integer := 0;
begin
  for v_job in
    select * from public.jobs
     where deadline_at <= now() and status in ('queued', 'dispatched', 'processing')
     order by deadline_at
     limit p_limit
     for update skip locked
  loop
    update public.jobs
       set status = 'canceled', finished_at = now(), lease_expires_at = null,
           error_code = 'DEADLINE',
           error_message = 'canceled: not finished by its deadline (cancel_after)'
     where id = v_job.id
    returning * into v_job;
    perform private.credits_release(v_job);
    v_count := v_count + 1;
    v_canceled := private.job_cancellation(v_job);
    if private.job_cancellation_tells(v_canceled) then
      v_running := v_running || v_canceled;
    end if;
  end loop;
  return jsonb_build_object('canceled', v_count, 'running', v_running);
end;
$function$
;

CREATE TRIGGER jobs_section_clips_cancel AFTER UPDATE OF status ON public.jobs FOR EACH ROW WHEN (((cardinality(new.waiting_for) > 0) AND (new.status = ANY (ARRAY['failed'::public.job_status, 'canceled'::public.job_status])) AND (old.status <> ALL (ARRAY['completed'::public.job_status, 'failed'::public.job_status, 'canceled'::public.job_status])))) EXECUTE FUNCTION private.section_clips_cancel();

revoke execute on function private.job_cancellation(p_job public.jobs) from public;

revoke execute on function private.job_cancellation_tells(p_notice jsonb) from public;

revoke execute on function private.job_notice(p_job public.jobs) from public;

revoke execute on function private.section_clips_cancel() from public;

grant execute on function private.job_cancellation(p_job public.jobs) to service_role;

grant execute on function private.job_cancellation_tells(p_notice jsonb) to service_role;

grant execute on function private.job_notice(p_job public.jobs) to service_role;

grant execute on function private.section_clips_cancel() to service_role;
