-- A claim answers what the worker runs the attempt with (the fields a push sends), not the
-- whole job: less JSON to build per claim.

/** Service: a pull worker claims up to p_limit jobs of its models, with a lease each. */
create or replace function public.job_claim(p_worker_id uuid, p_limit integer default 1)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_worker public.workers;
  v_job public.jobs;
  v_active integer;
  v_out jsonb := '[]';
begin
  -- Claiming is a sign of life, and the one write to the worker row per claim.
  update public.workers set last_heartbeat_at = now(), last_assigned_at = now()
   where id = p_worker_id
  returning * into v_worker;
  if not found then
    raise exception 'worker % not registered', p_worker_id using errcode = 'VGW04';
  end if;
  if v_worker.status not in ('online', 'unhealthy') then
    return v_out;
  end if;
  select count(*) into v_active from public.jobs
   where worker_id = p_worker_id and status in ('dispatched', 'processing');
  for v_job in
    select * from public.jobs
     where status = 'queued' and run_after <= now() and model_id = any(v_worker.models)
     order by priority desc, created_at
     limit greatest(0, least(p_limit, v_worker.capacity - v_active))
     for update skip locked
  loop
    v_job := private.job_dispatch(v_job, p_worker_id);
    -- What the worker runs the attempt with (the push's fields), not the whole job.
    v_out := v_out || jsonb_build_array(jsonb_build_object(
      'id', v_job.id, 'attempt', v_job.attempt, 'user_id', v_job.user_id,
      'model_id', v_job.model_id, 'job_type', v_job.job_type, 'params', v_job.params,
      'cost', v_job.cost, 'lease_expires_at', v_job.lease_expires_at));
  end loop;
  return v_out;
end;
$$;
