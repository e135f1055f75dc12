/*
 * Module 14: projects and batches — how a creator groups generations.
 *
 * A project is a user's folder of jobs (title, description). Lists and history filter by
 * it; deleting it ungroups its jobs, which stay with their ledger. A batch is many jobs
 * made by one request: every cost reserved in the same transaction or none (402 with the
 * total and the balance), one progress for the whole batch (counts per status, overall
 * percent) read over HTTP and broadcast as `batch_progress` on the owner's topic with
 * every change of one of its jobs, and canceled as one. Writes go through the procedures
 * below (as every write here), reads through security-invoker functions (RLS decides).
 */

-- ===================================================================================
-- Tables (defined in module 1: public.projects, public.batches, jobs.project_id/batch_id)
-- ===================================================================================

create trigger projects_touch before update on public.projects
  for each row execute function private.touch_updated_at();

create policy "Projects are visible to their owner" on public.projects
  for select to authenticated using ((select auth.uid()) = user_id);

create policy "Batches are visible to their owner" on public.batches
  for select to authenticated using ((select auth.uid()) = user_id);

revoke all on public.projects, public.batches from anon, authenticated;
grant select on public.projects, public.batches to authenticated;
grant all on public.projects, public.batches to service_role;

-- Followed by the owner's frontend with postgres_changes (RLS decides who sees a row).
alter publication supabase_realtime add table public.projects, public.batches;

-- ===================================================================================
-- Projects
-- ===================================================================================

/**
 * A project with how many of its jobs are in each status. Runs with the caller's rights:
 * a user counts only their own jobs (RLS), whatever row they pass.
 */
create function private.project_json(p_project public.projects)
returns jsonb
language sql stable
security invoker
set search_path = ''
as $$
  select to_jsonb(p_project) || jsonb_build_object(
    'jobs', (select coalesce(jsonb_object_agg(s.status, s.n), '{}')
               from (select j.status, count(*) as n from public.jobs j
                      where j.project_id = p_project.id and j.deleted_at is null
                      group by j.status) s))
$$;

/** Create a project for the caller. */
create function service.project_create(p_title text, p_description text default '')
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_project public.projects;
begin
  if auth.uid() is null then
    raise exception 'sign in first' using errcode = 'VG403';
  end if;
  insert into public.projects (user_id, title, description)
  values (auth.uid(), btrim(p_title), coalesce(p_description, ''))
  returning * into v_project;
  return private.project_json(v_project);
end;
$$;

/** Rename or redescribe one of the caller's projects (a null keeps the field). */
create function service.project_update(
  p_project_id uuid, p_title text default null, p_description text default null
)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_project public.projects;
begin
  update public.projects
     set title = coalesce(btrim(p_title), title),
         description = coalesce(p_description, description)
   where id = p_project_id and user_id = auth.uid()
  returning * into v_project;
  if not found then
    raise exception 'project % not found', p_project_id using errcode = 'VGR04';
  end if;
  return private.project_json(v_project);
end;
$$;

/**
 * Delete one of the caller's projects. Its jobs and batches stay (ungrouped), with every
 * ledger entry: nothing about money changes. Returns the project and how many jobs left it.
 */
create function service.project_delete(p_project_id uuid)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_project public.projects;
  v_jobs bigint;
begin
  select * into v_project from public.projects
   where id = p_project_id and user_id = auth.uid() for update;
  if not found then
    raise exception 'project % not found', p_project_id using errcode = 'VGR04';
  end if;
  select count(*) into v_jobs from public.jobs where project_id = p_project_id;
  delete from public.projects where id = p_project_id;
  return jsonb_build_object('project', to_jsonb(v_project), 'jobs_ungrouped', v_jobs);
end;
$$;

/**
 * The caller's projects: {items, total}, sorted by `p_sort` (created | updated | title) in
 * `p_order` (asc | desc; ties by creation, then id).
 */
create function public.list_projects(
  p_limit integer default 20, p_offset integer default 0,
  p_sort text default 'created', p_order text default 'desc'
)
returns jsonb
language plpgsql stable
security invoker
set search_path = ''
as $$
declare
  v_asc boolean := private.list_order_asc(p_sort, p_order, '{created,updated,title}');
begin
  return jsonb_build_object(
    'total', (select count(*) from public.projects p where p.user_id = (select auth.uid())),
    'items', coalesce((
      select jsonb_agg(private.project_json(x.project) order by x.n)
        from (select p as project, row_number() over (order by
                       case when v_asc and p_sort = 'updated' then p.updated_at end asc,
                       case when not v_asc and p_sort = 'updated' then p.updated_at end desc,
                       case when v_asc and p_sort = 'title' then p.title end asc,
                       case when not v_asc and p_sort = 'title' then p.title end desc,
                       case when v_asc then p.created_at end asc,
                       case when not v_asc then p.created_at end desc,
                       p.id) as n
                from public.projects p where p.user_id = (select auth.uid())
               order by n
               limit least(greatest(p_limit, 1), 100) offset greatest(p_offset, 0)) x), '[]'));
end;
$$;

/** One of the caller's projects, or null. */
create function public.get_project(p_project_id uuid)
returns jsonb
language sql stable
security invoker
set search_path = ''
as $$
  select private.project_json(p) from public.projects p where p.id = p_project_id
$$;

-- ===================================================================================
-- Batches
-- ===================================================================================

/**
 * A batch's progress: its jobs per status, how many finished, the overall percent (a
 * finished job counts 100, a running one its progress) and the credits it used. Runs with
 * the caller's rights (a user reads only their own batch, RLS); jobs removed from history
 * leave the counts, so the owner and the broadcast (from the trigger) see the same numbers.
 */
create function private.batch_progress(p_batch_id uuid)
returns jsonb
language sql stable
security invoker
set search_path = ''
as $$
  select to_jsonb(b) || jsonb_build_object(
    'counts', coalesce((select jsonb_object_agg(c.status, c.n)
                          from (select j.status, count(*) as n from public.jobs j
                                 where j.batch_id = b.id and j.deleted_at is null
                                 group by j.status) c), '{}'),
    'finished', a.finished, 'percent', a.percent, 'credits_used', a.credits_used,
    'done', a.finished = a.jobs)
    from public.batches b,
         lateral (select count(*) as jobs, count(j.finished_at) as finished,
                         coalesce(round(avg(case when j.finished_at is not null then 100
                                                 else j.progress end)), 0)::integer as percent,
                         coalesce(sum(j.credits_used), 0) as credits_used
                    from public.jobs j
                   where j.batch_id = b.id and j.deleted_at is null) a
   where b.id = p_batch_id
$$;

/**
 * Create 1–20 jobs for the caller in one transaction: every item is checked and priced,
 * the total reserved, or nothing happens. `p_items` is `[{model, params, priority}]`;
 * `p_delivery` (webhook, deadline: private.job_delivery) applies to every job.
 * Short of credits: VG402 with `{required, balance, reserved, items}` in the detail; over
 * the concurrent-job limit (batch jobs count like any): VGJ29.
 */
create function service.batch_create(
  p_items jsonb, p_project_id uuid default null, p_title text default null,
  p_max_credits bigint default null, p_delivery jsonb default null
)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_uid uuid := auth.uid();
  v_batch public.batches;
  v_item jsonb;
  v_job public.jobs;
  v_jobs public.jobs[] := '{}';
  v_total bigint := 0;
  v_profile public.profiles;
  v_index integer := 0;
  v_state text;
  v_message text;
  v_hint text;
begin
  if v_uid is null then
    raise exception 'sign in first' using errcode = 'VG403';
  end if;
  if jsonb_typeof(p_items) is distinct from 'array'
     or jsonb_array_length(p_items) not between 1 and 20 then
    raise exception 'a batch has 1 to 20 items' using errcode = 'VGP22';
  end if;
  insert into public.batches (user_id, project_id, title, jobs_total, cost)
  values (v_uid, null, nullif(btrim(p_title), ''), jsonb_array_length(p_items), 0)
  returning * into v_batch;
  for v_item in select * from jsonb_array_elements(p_items) loop
    begin
      v_job := private.job_insert(
        v_uid, v_item ->> 'model', coalesce(v_item -> 'params', '{}'),
        coalesce((v_item ->> 'priority')::integer, 0), p_project_id, v_batch.id, p_delivery);
    exception when sqlstate 'VGP22' or sqlstate 'VGM04' or sqlstate 'VGM03' then
      -- Say which item: the client shows the problem next to it.
      get stacked diagnostics v_state = returned_sqlstate, v_message = message_text,
                              v_hint = pg_exception_hint;
      raise exception 'item %: %', v_index, v_message
        using errcode = v_state, hint = v_hint,
              detail = jsonb_build_object('field', 'items.' || v_index,
                                          'message', v_message)::text;
    end;
    v_jobs := v_jobs || v_job;
    v_total := v_total + v_job.cost;
    v_index := v_index + 1;
  end loop;
  -- All or nothing: the whole cost against the balance, under the profile's row lock.
  select * into v_profile from public.profiles where id = v_uid for update;
  if v_profile.balance < v_total then
    raise exception 'not enough credits: this batch needs %, you have % to spend', v_total,
      v_profile.balance
      using errcode = 'VG402', hint = 'Buy credits, or make the batch smaller.',
            detail = jsonb_build_object('required', v_total, 'balance', v_profile.balance,
                                        'reserved', v_profile.reserved,
                                        'items', jsonb_array_length(p_items))::text;
  end if;
  foreach v_job in array v_jobs loop
    perform private.credits_reserve(v_job);
  end loop;
  perform private.check_spend(v_uid, v_total, p_max_credits);
  perform private.check_job_limit(v_uid);
  update public.batches set project_id = p_project_id, cost = v_total
   where id = v_batch.id;
  return private.batch_progress(v_batch.id) || jsonb_build_object(
    'jobs', (select jsonb_agg(private.job_json(j) order by j.created_at, j.id)
               from public.jobs j where j.batch_id = v_batch.id));
end;
$$;

/**
 * Cancel every unfinished job of one of the caller's batches (credits released): the
 * batch's progress, and the workers and providers to tell (after the commit).
 */
create function service.batch_cancel(p_batch_id uuid)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
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
$$;

/** One of the caller's batches with its progress and its jobs, or null. */
create function public.get_batch(p_batch_id uuid)
returns jsonb
language sql stable
security invoker
set search_path = ''
as $$
  select private.batch_progress(b.id) || jsonb_build_object(
    'jobs', coalesce((select jsonb_agg(private.job_json(j) order by j.created_at, j.id)
                        from public.jobs j where j.batch_id = b.id and j.deleted_at is null),
                     '[]'))
    from public.batches b where b.id = p_batch_id
$$;

/**
 * The caller's batches (optionally of one project) with their progress, sorted by `p_sort`
 * (created | cost) in `p_order` (asc | desc; ties by creation, then id).
 */
create function public.list_batches(
  p_project_id uuid default null, p_limit integer default 20, p_offset integer default 0,
  p_sort text default 'created', p_order text default 'desc'
)
returns jsonb
language plpgsql stable
security invoker
set search_path = ''
as $$
declare
  v_asc boolean := private.list_order_asc(p_sort, p_order, '{created,cost}');
begin
  return jsonb_build_object(
    'total', (select count(*) from public.batches b
               where b.user_id = (select auth.uid())
                 and (p_project_id is null or b.project_id = p_project_id)),
    'items', coalesce((
      select jsonb_agg(private.batch_progress(x.id) order by x.n)
        from (select b.id, row_number() over (order by
                       case when v_asc and p_sort = 'cost' then b.cost end asc,
                       case when not v_asc and p_sort = 'cost' then b.cost end desc,
                       case when v_asc then b.created_at end asc,
                       case when not v_asc then b.created_at end desc,
                       b.id) as n
                from public.batches b
               where b.user_id = (select auth.uid())
                 and (p_project_id is null or b.project_id = p_project_id)
               order by n
               limit least(greatest(p_limit, 1), 100) offset greatest(p_offset, 0)) x), '[]'));
end;
$$;

-- ===================================================================================
-- As one request (rate limit, Idempotency-Key, stored answer; see module 7)
-- ===================================================================================

/** Service, for the user in the claims: service.project_create as one request. */
create function service.project_create_request(
  p_request jsonb, p_title text, p_description text default ''
)
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
  return private.request_finish(p_request, 201, service.project_create(p_title, p_description));
end;
$$;

/** Service, for the user in the claims: service.project_update as one request. */
create function service.project_update_request(
  p_request jsonb, p_project_id uuid, p_title text default null, p_description text default null
)
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
  return private.request_finish(p_request, 200,
                                service.project_update(p_project_id, p_title, p_description));
end;
$$;

/** Service, for the user in the claims: service.project_delete as one request. */
create function service.project_delete_request(p_request jsonb, p_project_id uuid)
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
  return private.request_finish(p_request, 200, service.project_delete(p_project_id));
end;
$$;

/** Service, for the user in the claims: service.batch_create as one request. */
create function service.batch_create_request(
  p_request jsonb, p_items jsonb, p_project_id uuid default null, p_title text default null,
  p_max_credits bigint default null, p_delivery jsonb default null
)
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
  return private.request_finish(p_request, 202,
                                service.batch_create(p_items, p_project_id, p_title,
                                                    p_max_credits, p_delivery));
end;
$$;

/**
 * Service, for the user in the claims: service.batch_cancel as one request. As service.job_cancel_request:
 * the stored answer is the client's {batch, workers_notified: 0}; "running" goes to the
 * caller only.
 */
create function service.batch_cancel_request(p_request jsonb, p_batch_id uuid)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_replay jsonb := private.request_begin(p_request);
  v_canceled jsonb;
begin
  if v_replay is not null then
    return v_replay;
  end if;
  v_canceled := service.batch_cancel(p_batch_id);
  return private.request_finish(p_request, 200,
           jsonb_build_object('batch', v_canceled -> 'batch', 'workers_notified', 0))
         || jsonb_build_object('running', v_canceled -> 'running');
end;
$$;

-- ===================================================================================
-- Grants
-- ===================================================================================

revoke execute on function
  private.job_insert(uuid, text, jsonb, integer, uuid, uuid, jsonb), private.check_job_limit(uuid),
  private.project_json(public.projects), private.batch_progress(uuid),
  service.project_create(text, text), service.project_update(uuid, text, text),
  service.project_delete(uuid), public.list_projects(integer, integer, text, text), public.get_project(uuid),
  service.batch_create(jsonb, uuid, text, bigint, jsonb), service.batch_cancel(uuid), public.get_batch(uuid),
  public.list_batches(uuid, integer, integer, text, text),
  service.project_create_request(jsonb, text, text),
  service.project_update_request(jsonb, uuid, text, text),
  service.project_delete_request(jsonb, uuid),
  service.batch_create_request(jsonb, jsonb, uuid, text, bigint, jsonb),
  service.batch_cancel_request(jsonb, uuid)
  from public, anon, authenticated;

-- Reads as the user (RLS decides); the helpers read only the row they are given.
grant execute on function public.list_projects(integer, integer, text, text), public.get_project(uuid),
  public.get_batch(uuid), public.list_batches(uuid, integer, integer, text, text),
  private.project_json(public.projects), private.batch_progress(uuid)
  to authenticated;

grant execute on function
  private.job_insert(uuid, text, jsonb, integer, uuid, uuid, jsonb), private.check_job_limit(uuid),
  private.project_json(public.projects), private.batch_progress(uuid),
  service.project_create(text, text), service.project_update(uuid, text, text),
  service.project_delete(uuid), public.list_projects(integer, integer, text, text), public.get_project(uuid),
  service.batch_create(jsonb, uuid, text, bigint, jsonb), service.batch_cancel(uuid), public.get_batch(uuid),
  public.list_batches(uuid, integer, integer, text, text),
  service.project_create_request(jsonb, text, text),
  service.project_update_request(jsonb, uuid, text, text),
  service.project_delete_request(jsonb, uuid),
  service.batch_create_request(jsonb, jsonb, uuid, text, bigint, jsonb),
  service.batch_cancel_request(jsonb, uuid)
  to service_role;
