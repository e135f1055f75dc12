/*
 * Module 11: reads. Security-invoker functions, so RLS decides what the caller sees; the
 * functions (and PostgREST clients) read through these instead of writing SQL.
 */

/**
 * Whether a list is sorted ascending: `p_order` is asc or desc and `p_sort` one of
 * `p_allowed` (the functions validate both first; a direct caller gets VG400).
 */
create function private.list_order_asc(p_sort text, p_order text, p_allowed text[])
returns boolean
language plpgsql immutable
set search_path = ''
as $$
begin
  if p_sort is null or not (p_sort = any (p_allowed)) then
    raise exception 'sort must be one of %', array_to_string(p_allowed, ', ')
      using errcode = 'VG400';
  end if;
  if p_order is null or p_order not in ('asc', 'desc') then
    raise exception 'order must be asc or desc' using errcode = 'VG400';
  end if;
  return p_order = 'asc';
end;
$$;

/**
 * The caller's jobs (not removed from history), optionally of one status, project or
 * batch, sorted by `p_sort` (created | updated | status — in lifecycle order — | cost) in
 * `p_order` (asc | desc; ties by creation, then id); each as a read shows it (queue
 * position and estimate, module 15).
 */
create function public.list_jobs(
  p_status public.job_status default null, p_limit integer default 20, p_offset integer default 0,
  p_project_id uuid default null, p_batch_id uuid default null,
  p_sort text default 'created', p_order text default 'desc'
)
returns jsonb
language plpgsql stable
security invoker
set search_path = ''
as $$
declare
  v_asc boolean := private.list_order_asc(p_sort, p_order, '{created,updated,status,cost}');
begin
  return jsonb_build_object(
    'total', (select count(*) from public.jobs j
               where j.user_id = (select auth.uid()) and (p_status is null or j.status = p_status)
                 and (p_project_id is null or j.project_id = p_project_id)
                 and (p_batch_id is null or j.batch_id = p_batch_id)
                 and j.deleted_at is null),
    'items', coalesce((
      select jsonb_agg(private.job_read_json(x.job) order by x.n)
        from (select j as job, row_number() over (order by
                       case when v_asc and p_sort = 'updated' then j.updated_at end asc,
                       case when not v_asc and p_sort = 'updated' then j.updated_at end desc,
                       case when v_asc and p_sort = 'status' then j.status end asc,
                       case when not v_asc and p_sort = 'status' then j.status end desc,
                       case when v_asc and p_sort = 'cost' then j.cost end asc,
                       case when not v_asc and p_sort = 'cost' then j.cost end desc,
                       case when v_asc then j.created_at end asc,
                       case when not v_asc then j.created_at end desc,
                       j.id) as n
                from public.jobs j
               where j.user_id = (select auth.uid()) and (p_status is null or j.status = p_status)
                 and (p_project_id is null or j.project_id = p_project_id)
                 and (p_batch_id is null or j.batch_id = p_batch_id)
                 and j.deleted_at is null
               order by n
               limit least(greatest(p_limit, 1), 100) offset greatest(p_offset, 0)) x), '[]'));
end;
$$;

/**
 * A job as GET ?id= answers it: job_read_json with its events (read as the caller: RLS
 * applies to the events; the webhook deliveries of module 22 read it as the service).
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

/**
 * The caller's balance, hold and ledger page: {balance, reserved, debt, items, total}, the
 * ledger sorted by `p_sort` (created | amount) in `p_order` (asc | desc; ties by id).
 */
create function public.get_credits(
  p_limit integer default 20, p_offset integer default 0,
  p_sort text default 'created', p_order text default 'desc'
)
returns jsonb
language plpgsql stable
security invoker
set search_path = ''
as $$
declare
  v_asc boolean := private.list_order_asc(p_sort, p_order, '{created,amount}');
begin
  return (
    select jsonb_build_object(
      'balance', p.balance, 'reserved', p.reserved, 'debt', p.debt,
      'initial_grant_claimed', p.initial_grant_claimed_at is not null,
      'total', (select count(*) from public.credit_ledger l where l.user_id = p.id),
      'items', coalesce((
        select jsonb_agg(x.entry - 'user_id' order by x.n)
          from (select to_jsonb(l) as entry, row_number() over (order by
                         case when v_asc and p_sort = 'amount' then l.amount end asc,
                         case when not v_asc and p_sort = 'amount' then l.amount end desc,
                         case when v_asc then l.id end asc,
                         case when not v_asc then l.id end desc) as n
                  from public.credit_ledger l where l.user_id = p.id
                 order by n
                 limit least(greatest(p_limit, 1), 100) offset greatest(p_offset, 0)) x), '[]'))
      from public.profiles p where p.id = (select auth.uid()));
end;
$$;

/**
 * The available models (anyone may read the catalogue), featured first, then by category
 * and id; only those of one category (`text-to-image`, `image-to-video`…) when given.
 */
create function public.list_models(p_category text default null)
returns jsonb
language sql stable
security invoker
set search_path = ''
as $$
  select coalesce(jsonb_agg(to_jsonb(m) - 'provider_model_id'
                            order by m.featured desc, m.category, m.id), '[]')
    from public.models m
   where m.is_available and (p_category is null or m.category = p_category)
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

revoke execute on function private.list_order_asc(text, text, text[]) from public, anon;
grant execute on function private.list_order_asc(text, text, text[]) to authenticated, service_role;

revoke execute on function public.list_jobs(public.job_status, integer, integer, uuid, uuid, text, text),
  public.get_job(uuid), public.get_credits(integer, integer, text, text), public.list_models(text),
  service.job_get_any(uuid), service.workers_list()
  from public, anon, authenticated;
grant execute on function public.list_jobs(public.job_status, integer, integer, uuid, uuid, text, text),
  public.get_job(uuid), public.get_credits(integer, integer, text, text) to authenticated;
grant execute on function public.list_models(text) to anon, authenticated;
grant execute on function public.list_jobs(public.job_status, integer, integer, uuid, uuid, text, text),
  public.get_job(uuid), public.get_credits(integer, integer, text, text), public.list_models(text),
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
