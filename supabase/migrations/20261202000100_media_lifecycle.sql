-- The media lifecycle (issue 10): a job removed from its owner's history keeps its row and
-- ledger; its files, and outputs and uploads past their retention, are removed by the sweep.

alter table public.jobs add column deleted_at timestamptz;
alter table public.jobs add column output_expired_at timestamptz;

-- The retention sweep finds outputs due for removal without reading the whole history.
create index jobs_outputs_kept_idx on public.jobs (finished_at)
  where output_expired_at is null and finished_at is not null;
create index jobs_deleted_outputs_idx on public.jobs (deleted_at)
  where output_expired_at is null and deleted_at is not null;

/**
 * Reject every illegal status change, and any change to a finished job but two: leaving
 * its owner's history (deleted_at) and losing its files (output_expired_at), each once.
 */
create or replace function private.jobs_guard_transition()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  -- Removing a worker sets worker_id to null on its jobs, finished ones too (an FK action,
  -- run inside the RI trigger): a change a finished job accepts.
  if pg_trigger_depth() > 1 and old.worker_id is not null and new.worker_id is null
     and to_jsonb(new) - 'worker_id' = to_jsonb(old) - 'worker_id' then
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
$$;

/** The caller's jobs (not removed from history), newest first, optionally one status. */
create or replace function public.list_jobs(
  p_status public.job_status default null, p_limit integer default 20, p_offset integer default 0
)
returns jsonb
language sql stable
security invoker
set search_path = ''
as $$
  select jsonb_build_object(
    'total', (select count(*) from public.jobs j
               where j.user_id = (select auth.uid()) and (p_status is null or j.status = p_status)
                 and j.deleted_at is null),
    'items', coalesce((
      select jsonb_agg(private.job_json(j) order by j.created_at desc, j.id)
        from (select * from public.jobs j
               where j.user_id = (select auth.uid()) and (p_status is null or j.status = p_status)
                 and j.deleted_at is null
               order by j.created_at desc, j.id
               limit least(greatest(p_limit, 1), 100) offset greatest(p_offset, 0)) j), '[]'))
$$;

/** One job the caller can see, with its events; null when it is not theirs. */
create or replace function public.get_job(p_job_id uuid)
returns jsonb
language sql stable
security invoker
set search_path = ''
as $$
  select private.job_json(j) || jsonb_build_object('events', coalesce((
           select jsonb_agg(to_jsonb(e) - 'user_id' order by e.id)
             from public.job_events e where e.job_id = j.id), '[]'))
    from public.jobs j where j.id = p_job_id and j.deleted_at is null
$$;

alter policy "Jobs are visible to their owner" on public.jobs
  using ((select auth.uid()) = user_id and deleted_at is null);

/** Remove a finished job from its owner's history (the owner, or the service). */
create function public.delete_job(p_job_id uuid)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_job public.jobs;
begin
  select * into v_job from public.jobs where id = p_job_id for update;
  if not found or v_job.deleted_at is not null
     or (auth.role() <> 'service_role' and v_job.user_id is distinct from auth.uid()) then
    raise exception 'job % not found', p_job_id using errcode = 'VGJ04';
  end if;
  if v_job.finished_at is null then
    raise exception 'job is still %: cancel it first', v_job.status using errcode = 'VGJ09';
  end if;
  update public.jobs set deleted_at = now() where id = p_job_id returning * into v_job;
  return private.job_json(v_job);
end;
$$;

/** Service, for the user in the claims: delete_job as one request (rate limit, key). */
create function public.delete_job_request(p_request jsonb, p_job_id uuid)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_replay jsonb := private.request_begin(p_request);
begin
  if v_replay is not null then
    return v_replay;
  end if;
  return private.request_finish(p_request, 200, public.delete_job(p_job_id));
end;
$$;

/**
 * Service (sweep): outputs whose files are due for removal — of jobs removed from history,
 * and of jobs finished more than p_retention_days ago (0: kept until removed).
 */
create function public.jobs_outputs_due(p_retention_days integer, p_limit integer default 200)
returns jsonb
language sql
stable
security definer
set search_path = ''
as $$
  select coalesce(jsonb_agg(jsonb_build_object(
           'id', j.id, 'video_path', j.output ->> 'video_path',
           'thumbnail_path', j.output ->> 'thumbnail_path')), '[]')
    from (select * from public.jobs j
           where j.output_expired_at is null
             and (j.output ? 'video_path' or j.output ? 'thumbnail_path')
             and ((j.deleted_at is not null)
                  or (p_retention_days > 0 and j.finished_at is not null
                      and j.finished_at < now() - make_interval(days => p_retention_days)))
           order by j.finished_at
           limit greatest(p_limit, 1)) j
$$;

/** Service: the files of these jobs were removed; returns how many jobs it marked. */
create function public.jobs_mark_outputs_expired(p_job_ids uuid[])
returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_count integer;
begin
  update public.jobs set output_expired_at = now()
   where id = any(p_job_ids) and output_expired_at is null and finished_at is not null;
  get diagnostics v_count = row_count;
  return v_count;
end;
$$;

/** Service (sweep): uploads older than p_retention_days that no unfinished job names. */
create function public.uploads_due(p_retention_days integer, p_limit integer default 200)
returns text[]
language sql
stable
security definer
set search_path = ''
as $$
  select coalesce(array_agg(o.name order by o.created_at), '{}')
    from (select o.name, o.created_at from storage.objects o
           where o.bucket_id = 'uploads' and p_retention_days > 0
             and o.created_at < now() - make_interval(days => p_retention_days)
             and not exists (
               select 1 from public.jobs j
                where j.status in ('queued', 'dispatched', 'processing')
                  and (j.params ->> 'image_path' = o.name or j.params ->> 'music_path' = o.name
                       or coalesce(j.params -> 'images', '[]') ? o.name))
           order by o.created_at
           limit greatest(p_limit, 1)) o
$$;

revoke execute on function public.delete_job(uuid), public.delete_job_request(jsonb, uuid),
  public.jobs_outputs_due(integer, integer), public.jobs_mark_outputs_expired(uuid[]),
  public.uploads_due(integer, integer)
  from public, anon, authenticated;
grant execute on function public.delete_job(uuid), public.delete_job_request(jsonb, uuid),
  public.jobs_outputs_due(integer, integer), public.jobs_mark_outputs_expired(uuid[]),
  public.uploads_due(integer, integer)
  to service_role;
