/*
 * Module 11: reads. Security-invoker functions, so RLS decides what the caller sees; the
 * functions (and PostgREST clients) read through these instead of writing SQL.
 */

/**
 * The caller's jobs (not removed from history), newest first, optionally of one status,
 * project or batch; each as a read shows it (queue position and estimate, module 15).
 */
create function public.list_jobs(
  p_status public.job_status default null, p_limit integer default 20, p_offset integer default 0,
  p_project_id uuid default null, p_batch_id uuid default null
)
returns jsonb
language sql stable
security invoker
set search_path = ''
as $$
  select jsonb_build_object(
    'total', (select count(*) from public.jobs j
               where j.user_id = (select auth.uid()) and (p_status is null or j.status = p_status)
                 and (p_project_id is null or j.project_id = p_project_id)
                 and (p_batch_id is null or j.batch_id = p_batch_id)
                 and j.deleted_at is null),
    'items', coalesce((
      select jsonb_agg(private.job_read_json(j) order by j.created_at desc, j.id)
        from (select * from public.jobs j
               where j.user_id = (select auth.uid()) and (p_status is null or j.status = p_status)
                 and (p_project_id is null or j.project_id = p_project_id)
                 and (p_batch_id is null or j.batch_id = p_batch_id)
                 and j.deleted_at is null
               order by j.created_at desc, j.id
               limit least(greatest(p_limit, 1), 100) offset greatest(p_offset, 0)) j), '[]'))
$$;

/**
 * A job as GET ?id= answers it: job_read_json with its events (read as the caller: RLS
 * applies to the events; the webhook deliveries of module 21 read it as the service).
 */
create function private.job_get_json(p_job public.jobs)
returns jsonb
language sql stable
security invoker
set search_path = ''
as $$
  select private.job_read_json(p_job) || jsonb_build_object('events', coalesce((
           select jsonb_agg(to_jsonb(e) - 'user_id' order by e.id)
             from public.job_events e where e.job_id = p_job.id), '[]'))
$$;

/** One job the caller can see, with its events; null when it is not theirs. */
create function public.get_job(p_job_id uuid)
returns jsonb
language sql stable
security invoker
set search_path = ''
as $$
  select private.job_get_json(j) from public.jobs j where j.id = p_job_id and j.deleted_at is null
$$;

/** The caller's balance, hold and ledger page; {profile, items, total}. */
create function public.get_credits(p_limit integer default 20, p_offset integer default 0)
returns jsonb
language sql stable
security invoker
set search_path = ''
as $$
  select jsonb_build_object(
    'balance', p.balance, 'reserved', p.reserved, 'debt', p.debt,
    'initial_grant_claimed', p.initial_grant_claimed_at is not null,
    'total', (select count(*) from public.credit_ledger l where l.user_id = p.id),
    'items', coalesce((
      select jsonb_agg(to_jsonb(l) - 'user_id' order by l.id desc)
        from (select * from public.credit_ledger l where l.user_id = p.id
               order by l.id desc
               limit least(greatest(p_limit, 1), 100) offset greatest(p_offset, 0)) l), '[]'))
    from public.profiles p where p.id = (select auth.uid())
$$;

/** The available models (anyone may read the catalogue). */
create function public.list_models()
returns jsonb
language sql stable
security invoker
set search_path = ''
as $$
  select coalesce(jsonb_agg(to_jsonb(m) - 'provider_model_id' order by m.id), '[]')
    from public.models m where m.is_available
$$;

/** Service: one job whatever its owner (workers, callbacks, sweeps). */
create function service.job_get_any(p_job_id uuid)
returns jsonb
language sql stable
security definer
set search_path = ''
as $$
  select to_jsonb(j) || jsonb_build_object('model', to_jsonb(m))
    from public.jobs j join public.models m on m.id = j.model_id where j.id = p_job_id
$$;

/** Service: every registered worker (for the health sweep). */
create function service.workers_list()
returns jsonb
language sql stable
security definer
set search_path = ''
as $$
  select coalesce(jsonb_agg(to_jsonb(w) order by w.name), '[]') from public.workers w
$$;

revoke execute on function public.list_jobs(public.job_status, integer, integer, uuid, uuid),
  public.get_job(uuid), public.get_credits(integer, integer), public.list_models(),
  service.job_get_any(uuid), service.workers_list()
  from public, anon, authenticated;
grant execute on function public.list_jobs(public.job_status, integer, integer, uuid, uuid),
  public.get_job(uuid), public.get_credits(integer, integer) to authenticated;
grant execute on function public.list_models() to anon, authenticated;
grant execute on function public.list_jobs(public.job_status, integer, integer, uuid, uuid),
  public.get_job(uuid), public.get_credits(integer, integer), public.list_models(),
  service.job_get_any(uuid), service.workers_list(), private.job_get_json(public.jobs)
  to service_role;

-- The invoker reads above format rows through these helpers; they read only the row they
-- are given, plus aggregates (a queue count, a model's mean run, its worker slots), so
-- authenticated may call them.
grant usage on schema private to authenticated;
revoke execute on function private.job_get_json(public.jobs) from public, anon, authenticated;
grant execute on function private.job_json(public.jobs), private.queue_position(public.jobs),
  private.job_read_json(public.jobs), private.job_estimate(public.jobs, bigint),
  private.model_run_seconds(text), private.job_get_json(public.jobs)
  to authenticated;

/** Service: jobs at external providers that have not finished (for reconcile polls). */
create function service.jobs_list_active_external()
returns jsonb
language sql stable
security definer
set search_path = ''
as $$
  select coalesce(jsonb_agg(jsonb_build_object('id', j.id, 'attempt', j.attempt,
           'provider', j.provider, 'provider_job_id', j.provider_job_id)), '[]')
    from public.jobs j
   where j.status in ('dispatched', 'processing') and j.provider_job_id is not null
     and j.provider in ('fal', 'replicate', 'runway', 'runpod')
$$;

revoke execute on function service.jobs_list_active_external() from public, anon, authenticated;
grant execute on function service.jobs_list_active_external() to service_role;

/** Service: the catalogue with the providers' own model ids (health sweeps, routing). */
create function service.models_list_by_provider(p_provider text)
returns jsonb
language sql stable
security definer
set search_path = ''
as $$
  select coalesce(jsonb_agg(jsonb_build_object('id', m.id, 'provider_model_id', m.provider_model_id,
                                               'is_available', m.is_available) order by m.id), '[]')
    from public.models m where m.provider = p_provider
$$;

revoke execute on function service.models_list_by_provider(text) from public, anon, authenticated;
grant execute on function service.models_list_by_provider(text) to service_role;
