/*
 * Module 5: workers and routing — register, heartbeat and health of workers; a queued job
 * assigned (push) or claimed (pull), dispatched to an external provider, returned.
 */

-- ===================================================================================
-- Workers: register, heartbeat, health
-- ===================================================================================

/** Register (or re-register by name) a worker; returns it. */
create function service.worker_register(
  p_name text, p_url text, p_health_url text, p_models text[],
  p_capacity integer default 1, p_mode text default 'push', p_metadata jsonb default '{}'
)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_worker public.workers;
  v_unknown text[];
begin
  select array_agg(m) into v_unknown from unnest(p_models) m
   where not exists (select 1 from public.models where id = m);
  if v_unknown is not null then
    raise exception 'unknown models: %', array_to_string(v_unknown, ', ') using errcode = 'VGM04';
  end if;
  insert into public.workers (name, url, health_url, models, capacity, mode, metadata, status,
                              consecutive_failures, last_heartbeat_at)
  values (p_name, p_url, p_health_url, p_models, p_capacity, p_mode, coalesce(p_metadata, '{}'),
          'online', 0, now())
  on conflict (name) do update
     set url = excluded.url, health_url = excluded.health_url, models = excluded.models,
         capacity = excluded.capacity, mode = excluded.mode, metadata = excluded.metadata,
         status = 'online', consecutive_failures = 0, last_heartbeat_at = now()
  returning * into v_worker;
  return to_jsonb(v_worker);
end;
$$;

/**
 * A worker is alive: mark it online, extend the leases of the jobs it holds, and tell it
 * which of its jobs are still its own (anything else it runs was canceled or reassigned).
 */
create function service.worker_heartbeat(p_worker_id uuid, p_status text default 'online')
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_worker public.workers;
  v_jobs jsonb;
begin
  if p_status not in ('online', 'draining') then
    raise exception 'status must be online or draining' using errcode = 'VG400';
  end if;
  update public.workers
     set last_heartbeat_at = now(), status = p_status::public.worker_status,
         consecutive_failures = 0
   where id = p_worker_id
  returning * into v_worker;
  if not found then
    raise exception 'worker % not registered', p_worker_id using errcode = 'VGW04';
  end if;
  with extended as (
    update public.jobs j
       set lease_expires_at = greatest(j.lease_expires_at, private.lease_until(j.model_id))
     where j.worker_id = p_worker_id and j.status in ('dispatched', 'processing')
    returning j.id, j.attempt
  )
  select coalesce(jsonb_agg(jsonb_build_object('job_id', id, 'attempt', attempt)), '[]')
    into v_jobs from extended;
  return jsonb_build_object('worker', to_jsonb(v_worker), 'jobs', v_jobs);
end;
$$;

/** Record one health probe; unhealthy after N failures in a row, online after a success. */
create function service.worker_health_record(p_worker_id uuid, p_ok boolean, p_detail jsonb default '{}')
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_worker public.workers;
begin
  update public.workers
     set last_health_at = now(),
         consecutive_failures = case when p_ok then 0 else consecutive_failures + 1 end,
         status = case
           when status = 'draining' then status
           when p_ok then 'online'
           when consecutive_failures + 1 >= private.setting_int('worker_unhealthy_after_failures')
             then 'unhealthy'
           else status end,
         metadata = metadata || jsonb_build_object('last_health', coalesce(p_detail, '{}'))
   where id = p_worker_id
  returning * into v_worker;
  if not found then
    raise exception 'worker % not registered', p_worker_id using errcode = 'VGW04';
  end if;
  return to_jsonb(v_worker);
end;
$$;

-- ===================================================================================
-- Routing: assign (push), claim (pull), dispatch to an external provider
-- ===================================================================================

/** Move a queued job to a worker (dispatched, new attempt, lease) and return it. */
create function private.job_dispatch(p_job public.jobs, p_worker_id uuid)
returns public.jobs
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_job public.jobs;
begin
  update public.jobs j
     set status = 'dispatched', worker_id = p_worker_id, attempt = j.attempt + 1,
         dispatched_at = now(), progress = 0, lease_expires_at = private.lease_until(j.model_id)
   where j.id = p_job.id
  returning j.* into v_job;
  return v_job;
end;
$$;

/** The healthy push worker with spare capacity for a model, least loaded first; locked. */
create function private.pick_worker(p_model_id text)
returns public.workers
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_candidate uuid;
  v_worker public.workers;
  v_active integer;
begin
  for v_candidate in
    select w.id from public.workers w
     where w.status = 'online' and w.mode = 'push' and w.url is not null
       and p_model_id = any(w.models)
       and w.last_heartbeat_at > now() - make_interval(secs => private.setting_int('worker_heartbeat_timeout_seconds'))
     order by (select count(*) from public.jobs j
                where j.worker_id = w.id and j.status in ('dispatched', 'processing'))::numeric
              / w.capacity,
              w.last_assigned_at nulls first
  loop
    -- Lock, then count again in a fresh statement (it sees what earlier assigners
    -- committed). SKIP LOCKED: a worker another assigner holds is passed over, never
    -- waited for — waiting while holding an earlier candidate's lock could deadlock.
    select * into v_worker from public.workers where id = v_candidate for update skip locked;
    continue when not found;
    select count(*) into v_active from public.jobs
     where worker_id = v_candidate and status in ('dispatched', 'processing');
    if v_active < v_worker.capacity and v_worker.status = 'online' then
      return v_worker;
    end if;
  end loop;
  return null;
end;
$$;

/**
 * Service: give one queued job to a push worker (the named one, or the best one).
 * Returns {job, worker} or null when the job is not queued or no worker can take it.
 */
create function service.job_assign(p_job_id uuid, p_worker_id uuid default null)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_job public.jobs;
  v_worker public.workers;
begin
  select * into v_job from public.jobs
   where id = p_job_id and status = 'queued' and run_after <= now()
     and cardinality(waiting_for) = 0
   for update skip locked;
  if not found then
    return null;
  end if;
  if p_worker_id is null then
    v_worker := private.pick_worker(v_job.model_id);
  else
    select * into v_worker from public.workers where id = p_worker_id for update;
  end if;
  if v_worker.id is null then
    return null;
  end if;
  v_job := private.job_dispatch(v_job, v_worker.id);
  update public.workers set last_assigned_at = now() where id = v_worker.id;
  return jsonb_build_object('job', private.job_json(v_job), 'worker', to_jsonb(v_worker));
end;
$$;

/** Service: assign up to p_limit queued jobs (oldest first) to push workers. */
create function service.jobs_assign_pending(p_limit integer default 20)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_id uuid;
  v_out jsonb := '[]';
  v_one jsonb;
begin
  for v_id in
    select j.id from public.jobs j
      join public.models m on m.id = j.model_id and m.provider in ('reference', 'runpod')
     where j.status = 'queued' and j.run_after <= now() and cardinality(j.waiting_for) = 0
     order by j.priority desc, j.created_at
     limit p_limit
  loop
    v_one := service.job_assign(v_id);
    if v_one is not null then
      v_out := v_out || jsonb_build_array(v_one);
    end if;
  end loop;
  return v_out;
end;
$$;

/** Service: a pull worker claims up to p_limit jobs of its models, with a lease each. */
create function service.worker_claim(p_worker_id uuid, p_limit integer default 1)
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
       and cardinality(waiting_for) = 0
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

/** Service: a queued job goes to an external provider (dispatched, new attempt). */
create function service.job_dispatch_external(p_job_id uuid)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_job public.jobs;
begin
  select * into v_job from public.jobs
   where id = p_job_id and status = 'queued' and cardinality(waiting_for) = 0 for update;
  if not found then
    return null;
  end if;
  v_job := private.job_dispatch(v_job, null);
  return private.job_json(v_job);
end;
$$;

/** Service: remember the provider's id for a dispatched attempt (webhooks find it by it). */
create function service.job_set_provider_id(p_job_id uuid, p_attempt integer, p_provider_job_id text)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_job public.jobs := private.job_lock_for_attempt(p_job_id, p_attempt);
begin
  if v_job.id is null then
    return private.not_applied(p_job_id, 'stale_attempt');
  end if;
  update public.jobs set provider_job_id = p_provider_job_id where id = p_job_id
  returning * into v_job;
  return jsonb_build_object('applied', true, 'job', private.job_json(v_job));
end;
$$;

/** Service: the job behind a provider's id, with its current attempt (for webhooks). */
create function service.job_get_by_provider_id(p_provider text, p_provider_job_id text)
returns jsonb
language sql stable
security definer
set search_path = ''
as $$
  select to_jsonb(j) from public.jobs j
   where j.provider = p_provider and j.provider_job_id = p_provider_job_id
$$;

/**
 * Service: a push was refused or failed before the worker took the job: back to the
 * queue at once, not counted as a failure (the worker never ran it).
 */
create function service.job_return(p_job_id uuid, p_attempt integer, p_reason text)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_job public.jobs := private.job_lock_for_attempt(p_job_id, p_attempt);
begin
  if v_job.id is null or v_job.status <> 'dispatched' then
    return private.not_applied(p_job_id, 'stale_attempt');
  end if;
  update public.jobs
     set status = 'queued', worker_id = null, lease_expires_at = null,
         error_code = 'DISPATCH_FAILED', error_message = p_reason
   where id = p_job_id
  returning * into v_job;
  return jsonb_build_object('applied', true, 'job', private.job_json(v_job));
end;
$$;

