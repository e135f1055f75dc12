-- The creator's workspace, part 1 (sql/schema/12_projects_batches.sql,
-- 13_catalogue_quotes.sql): projects and batches; an estimate of when each unfinished job
-- will be done on every read; quotes without a job; the catalogue's category, featured
-- flag, thumbnail and typical run time, and the voices; the user's language and theme.
-- create_job and create_job_request take a project; list_jobs filters by project and batch.

alter table public.models
  add column category text not null default 'video' check (category ~ '^[a-z][a-z0-9-]{0,39}$'),
  add column featured boolean not null default false,
  add column thumbnail_url text check (thumbnail_url ~ '^https://'),
  add column typical_run_seconds integer not null default 60
    check (typical_run_seconds between 1 and 86400);

alter table public.profiles
  add column language text not null default 'en'
    check (language ~ '^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$'),
  add column theme text not null default 'system' check (theme in ('light', 'dark', 'system')),
  add column tier text not null default 'free' check (tier ~ '^[a-z][a-z0-9-]{0,29}$');

-- A model's recent runs, for the estimates (private.model_run_seconds).
create index jobs_model_completed_idx on public.jobs (model_id, finished_at desc)
  where status = 'completed';

/** A user's folder of generations. */
create table public.projects (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references auth.users (id) on delete cascade,
  title text not null check (char_length(title) between 1 and 120 and title = btrim(title)),
  description text not null default '' check (char_length(description) <= 2000),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

create index projects_user_created_idx on public.projects (user_id, created_at desc);

/** Jobs made by one request; each job of it carries its id. */
create table public.batches (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references auth.users (id) on delete cascade,
  project_id uuid references public.projects (id) on delete set null,
  title text check (char_length(title) <= 120),
  jobs_total integer not null check (jobs_total between 1 and 20),
  cost bigint not null check (cost >= 0),
  created_at timestamptz not null default now(),
  canceled_at timestamptz
);

create index batches_user_created_idx on public.batches (user_id, created_at desc);

alter table public.jobs
  add column project_id uuid references public.projects (id) on delete set null,
  add column batch_id uuid references public.batches (id) on delete set null;

create index jobs_project_created_idx on public.jobs (project_id, created_at desc)
  where project_id is not null;
create index jobs_batch_idx on public.jobs (batch_id) where batch_id is not null;

create trigger projects_touch before update on public.projects
  for each row execute function private.touch_updated_at();

alter table public.projects enable row level security;
alter table public.batches enable row level security;

create policy "Projects are visible to their owner" on public.projects
  for select to authenticated using ((select auth.uid()) = user_id);

create policy "Batches are visible to their owner" on public.batches
  for select to authenticated using ((select auth.uid()) = user_id);

revoke all on public.projects, public.batches from anon, authenticated;
grant select on public.projects, public.batches to authenticated;
grant all on public.projects, public.batches to service_role;

-- ===================================================================================
-- Jobs: estimates, one insert for create_job and create_batch (module 3)
-- ===================================================================================

/**
 * How long a run of this model takes, in seconds: the mean of its last 20 completed runs
 * of the past 7 days when there are at least 3, else the catalogue's typical_run_seconds.
 */
create function private.model_run_seconds(p_model_id text)
returns integer
language sql stable
security definer
set search_path = ''
as $$
  select coalesce(
    (select case when count(*) >= 3
                 then ceil(avg(extract(epoch from r.finished_at - r.started_at)))::integer end
       from (select j.finished_at, j.started_at from public.jobs j
              where j.model_id = p_model_id and j.status = 'completed'
                and j.started_at is not null and j.finished_at > now() - interval '7 days'
              order by j.finished_at desc limit 20) r),
    (select m.typical_run_seconds from public.models m where m.id = p_model_id))
$$;

/**
 * When an unfinished job should be done: {estimated_seconds_left, estimated_completion_at}
 * (nulls once it finished). Queued: the runs ahead of it shared among the healthy workers
 * serving its model (providers run jobs side by side), plus its own run; processing: the
 * pace of its own progress so far, or what is left of a typical run.
 */
create function private.job_estimate(p_job public.jobs, p_position bigint)
returns jsonb
language plpgsql stable
security definer
set search_path = ''
as $$
declare
  v_run integer;
  v_slots integer;
  v_elapsed numeric;
  v_left numeric;
begin
  if p_job.finished_at is not null then
    return jsonb_build_object('estimated_seconds_left', null, 'estimated_completion_at', null);
  end if;
  v_run := private.model_run_seconds(p_job.model_id);
  if p_job.status = 'queued' then
    if p_job.provider = 'reference' then
      select coalesce(sum(w.capacity), 0)::integer into v_slots from public.workers w
       where w.status = 'online' and p_job.model_id = any(w.models)
         and w.last_heartbeat_at
             > now() - make_interval(secs => private.setting_int('worker_heartbeat_timeout_seconds'));
    else
      v_slots := 100;  -- an external provider: no queue of ours ahead of it
    end if;
    v_left := ceil((coalesce(p_position, 1) - 1)::numeric / greatest(v_slots, 1)) * v_run + v_run
              + greatest(extract(epoch from p_job.run_after - now()), 0);
  elsif p_job.status = 'processing' and p_job.started_at is not null then
    v_elapsed := greatest(extract(epoch from now() - p_job.started_at), 0);
    if p_job.progress >= 5 then
      v_left := v_elapsed * (100 - p_job.progress) / p_job.progress;
    else
      v_left := greatest(v_run - v_elapsed, 1);
    end if;
  else
    v_left := v_run;
  end if;
  v_left := ceil(greatest(v_left, 1));
  return jsonb_build_object('estimated_seconds_left', v_left::bigint,
                            'estimated_completion_at', now() + make_interval(secs => v_left));
end;
$$;

/** The job as a read shows it: job_json plus when it should be done. */
create function private.job_read_json(p_job public.jobs)
returns jsonb
language plpgsql stable
security definer
set search_path = ''
as $$
declare
  v_json jsonb := private.job_json(p_job);
begin
  return v_json || private.job_estimate(p_job, (v_json ->> 'queue_position')::bigint);
end;
$$;

/**
 * Check a model and params for the user, price them and insert the queued job — no money
 * yet: create_job and create_batch (module 12) reserve after it. A project named must be
 * the user's own (VGR04 otherwise).
 */
create function private.job_insert(
  p_uid uuid, p_model_id text, p_params jsonb, p_priority integer,
  p_project_id uuid default null, p_batch_id uuid default null
)
returns public.jobs
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_model public.models;
  v_params jsonb;
  v_job public.jobs;
begin
  select * into v_model from public.models where id = p_model_id;
  if not found then
    raise exception 'model % not found', p_model_id using errcode = 'VGM04';
  end if;
  if not v_model.is_available then
    raise exception 'model % is not available right now', p_model_id using errcode = 'VGM03';
  end if;
  if p_priority not between -100 and 100 then
    raise exception 'priority outside -100..100' using errcode = 'VGP22';
  end if;
  if p_project_id is not null
     and not exists (select 1 from public.projects where id = p_project_id and user_id = p_uid) then
    raise exception 'project % not found', p_project_id using errcode = 'VGR04';
  end if;
  v_params := private.normalize_params(v_model, p_params);
  -- First segment the caller's id, and no empty, '.' or '..' segment to climb out with.
  if v_params ? 'image_path' and (split_part(v_params ->> 'image_path', '/', 1) <> p_uid::text
                                  or v_params ->> 'image_path' ~ '(^|/)\.{0,2}(/|$)') then
    raise exception 'image_path must be in your own uploads folder (%/…)', p_uid
      using errcode = 'VGP22';
  end if;

  insert into public.jobs (user_id, model_id, job_type, params, priority, cost, max_attempts,
                           provider, project_id, batch_id)
  values (p_uid, v_model.id, v_model.job_type, v_params, p_priority,
          private.job_price(v_model, v_params), v_model.max_attempts, v_model.provider,
          p_project_id, p_batch_id)
  returning * into v_job;
  return v_job;
end;
$$;

/** Raise VGJ29 when the user has more unfinished jobs than their limit allows. */
create function private.check_job_limit(p_uid uuid)
returns void
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_limit integer;
  v_active integer;
begin
  -- Called after the reserve, whose row lock on the profile serialises this user's creates:
  -- the count (a new snapshot, after the lock) sees every job committed before it.
  select p.concurrent_job_limit,
         (select count(*) from public.jobs j
           where j.user_id = p_uid and j.status in ('queued', 'dispatched', 'processing'))
    into v_limit, v_active
    from public.profiles p where p.id = p_uid;
  if v_active > v_limit then
    raise exception 'you would have % unfinished jobs (limit %)', v_active, v_limit
      using errcode = 'VGJ29',
            detail = jsonb_build_object('unfinished', v_active, 'limit', v_limit)::text;
  end if;
end;
$$;

drop function public.create_job(text, jsonb, integer);

/**
 * Create a job for the caller: check the model and params, price it, enforce the
 * concurrent-job limit, reserve the cost and queue it — one transaction.
 */
create function public.create_job(
  p_model_id text, p_params jsonb default '{}', p_priority integer default 0,
  p_project_id uuid default null
)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_uid uuid := auth.uid();
  v_job public.jobs;
begin
  if v_uid is null then
    raise exception 'sign in first' using errcode = 'VG403';
  end if;
  v_job := private.job_insert(v_uid, p_model_id, p_params, p_priority, p_project_id);
  perform private.credits_reserve(v_job);
  perform private.check_job_limit(v_uid);
  return private.job_json(v_job);
end;
$$;

drop function public.create_job_request(jsonb, text, jsonb, integer);

/** Service, for the user in the claims: create_job as one request (rate limit, key). */
create function public.create_job_request(
  p_request jsonb, p_model_id text, p_params jsonb default '{}', p_priority integer default 0,
  p_project_id uuid default null
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
                                public.create_job(p_model_id, p_params, p_priority, p_project_id));
end;
$$;

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

/**
 * Every status or progress change → one job_events row and one broadcast on the
 * owner's private topic `user:<uid>:jobs` (see realtime.messages policies); for a job of
 * a batch, a second one with the batch's progress (`batch_progress`).
 */
create or replace function private.jobs_emit_event()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_event text;
  v_row public.job_events;
begin
  if tg_op = 'INSERT' then
    v_event := 'created';
  elsif new.status is distinct from old.status then
    v_event := new.status::text;
  elsif new.progress is distinct from old.progress then
    v_event := 'progress';
  else
    return null;
  end if;

  insert into public.job_events (job_id, user_id, event, status, progress, attempt, data)
  values (new.id, new.user_id, v_event, new.status, new.progress, new.attempt,
          jsonb_strip_nulls(jsonb_build_object(
            'message', new.progress_message, 'error_code', new.error_code,
            'error_message', new.error_message,
            'output', case when new.status = 'completed' then new.output end,
            'run_after', case when new.status = 'queued' and tg_op = 'UPDATE' then new.run_after end)))
  returning * into v_row;

  -- The payload is the job_events row as GET ?id= returns it: one shape for both.
  perform realtime.send(
    to_jsonb(v_row) - 'user_id',
    'job_' || v_event,
    'user:' || new.user_id || ':jobs',
    true);
  -- A job of a batch also moves the batch: its progress as GET ?batch= answers it.
  if new.batch_id is not null then
    perform realtime.send(private.batch_progress(new.batch_id), 'batch_progress',
                          'user:' || new.user_id || ':jobs', true);
  end if;
  return null;
end;
$$;

drop function public.list_jobs(public.job_status, integer, integer);

/**
 * The caller's jobs (not removed from history), newest first, optionally of one status,
 * project or batch; each as a read shows it (queue position and estimate, module 13).
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

revoke execute on function public.list_jobs(public.job_status, integer, integer, uuid, uuid)
  from public, anon, authenticated;
grant execute on function public.list_jobs(public.job_status, integer, integer, uuid, uuid)
  to authenticated;
grant execute on function public.list_jobs(public.job_status, integer, integer, uuid, uuid)
  to service_role;

/** One job the caller can see, with its events; null when it is not theirs. */
create or replace function public.get_job(p_job_id uuid)
returns jsonb
language sql stable
security invoker
set search_path = ''
as $$
  select private.job_read_json(j) || jsonb_build_object('events', coalesce((
           select jsonb_agg(to_jsonb(e) - 'user_id' order by e.id)
             from public.job_events e where e.job_id = j.id), '[]'))
    from public.jobs j where j.id = p_job_id and j.deleted_at is null
$$;

alter policy "Owners can rename their profile" on public.profiles
  rename to "Owners can change their profile";
grant update (language, theme) on public.profiles to authenticated;

revoke execute on function private.model_run_seconds(text),
  private.job_estimate(public.jobs, bigint), private.job_read_json(public.jobs),
  public.create_job(text, jsonb, integer, uuid),
  public.create_job_request(jsonb, text, jsonb, integer, uuid)
  from public, anon, authenticated;
grant execute on function private.model_run_seconds(text),
  private.job_estimate(public.jobs, bigint), private.job_read_json(public.jobs),
  public.create_job(text, jsonb, integer, uuid),
  public.create_job_request(jsonb, text, jsonb, integer, uuid)
  to service_role;
grant execute on function private.model_run_seconds(text),
  private.job_estimate(public.jobs, bigint), private.job_read_json(public.jobs)
  to authenticated;

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
create function public.create_project(p_title text, p_description text default '')
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
create function public.update_project(
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
create function public.delete_project(p_project_id uuid)
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

/** The caller's projects, newest first: {items, total}. */
create function public.list_projects(p_limit integer default 20, p_offset integer default 0)
returns jsonb
language sql stable
security invoker
set search_path = ''
as $$
  select jsonb_build_object(
    'total', (select count(*) from public.projects p where p.user_id = (select auth.uid())),
    'items', coalesce((
      select jsonb_agg(private.project_json(p) order by p.created_at desc, p.id)
        from (select * from public.projects p where p.user_id = (select auth.uid())
               order by p.created_at desc, p.id
               limit least(greatest(p_limit, 1), 100) offset greatest(p_offset, 0)) p), '[]'))
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
 * the total reserved, or nothing happens. `p_items` is `[{model, params, priority}]`.
 * Short of credits: VG402 with `{required, balance, reserved, items}` in the detail; over
 * the concurrent-job limit (batch jobs count like any): VGJ29.
 */
create function public.create_batch(
  p_items jsonb, p_project_id uuid default null, p_title text default null
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
        coalesce((v_item ->> 'priority')::integer, 0), p_project_id, v_batch.id);
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
create function public.cancel_batch(p_batch_id uuid)
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
    v_canceled := public.cancel_job(v_job_id);
    if v_canceled -> 'notify' <> 'null'::jsonb or v_canceled ->> 'provider_job_id' is not null then
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

/** The caller's batches (optionally of one project), newest first, with their progress. */
create function public.list_batches(
  p_project_id uuid default null, p_limit integer default 20, p_offset integer default 0
)
returns jsonb
language sql stable
security invoker
set search_path = ''
as $$
  select jsonb_build_object(
    'total', (select count(*) from public.batches b
               where b.user_id = (select auth.uid())
                 and (p_project_id is null or b.project_id = p_project_id)),
    'items', coalesce((
      select jsonb_agg(private.batch_progress(b.id) order by b.created_at desc, b.id)
        from (select * from public.batches b
               where b.user_id = (select auth.uid())
                 and (p_project_id is null or b.project_id = p_project_id)
               order by b.created_at desc, b.id
               limit least(greatest(p_limit, 1), 100) offset greatest(p_offset, 0)) b), '[]'))
$$;

-- ===================================================================================
-- As one request (rate limit, Idempotency-Key, stored answer; see module 4)
-- ===================================================================================

/** Service, for the user in the claims: create_project as one request. */
create function public.create_project_request(
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
  return private.request_finish(p_request, 201, public.create_project(p_title, p_description));
end;
$$;

/** Service, for the user in the claims: update_project as one request. */
create function public.update_project_request(
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
                                public.update_project(p_project_id, p_title, p_description));
end;
$$;

/** Service, for the user in the claims: delete_project as one request. */
create function public.delete_project_request(p_request jsonb, p_project_id uuid)
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
  return private.request_finish(p_request, 200, public.delete_project(p_project_id));
end;
$$;

/** Service, for the user in the claims: create_batch as one request. */
create function public.create_batch_request(
  p_request jsonb, p_items jsonb, p_project_id uuid default null, p_title text default null
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
                                public.create_batch(p_items, p_project_id, p_title));
end;
$$;

/**
 * Service, for the user in the claims: cancel_batch as one request. As cancel_job_request:
 * the stored answer is the client's {batch, workers_notified: 0}; "running" goes to the
 * caller only.
 */
create function public.cancel_batch_request(p_request jsonb, p_batch_id uuid)
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
  v_canceled := public.cancel_batch(p_batch_id);
  return private.request_finish(p_request, 200,
           jsonb_build_object('batch', v_canceled -> 'batch', 'workers_notified', 0))
         || jsonb_build_object('running', v_canceled -> 'running');
end;
$$;

-- ===================================================================================
-- Grants
-- ===================================================================================

revoke execute on function
  private.job_insert(uuid, text, jsonb, integer, uuid, uuid), private.check_job_limit(uuid),
  private.project_json(public.projects), private.batch_progress(uuid),
  public.create_project(text, text), public.update_project(uuid, text, text),
  public.delete_project(uuid), public.list_projects(integer, integer), public.get_project(uuid),
  public.create_batch(jsonb, uuid, text), public.cancel_batch(uuid), public.get_batch(uuid),
  public.list_batches(uuid, integer, integer),
  public.create_project_request(jsonb, text, text),
  public.update_project_request(jsonb, uuid, text, text),
  public.delete_project_request(jsonb, uuid),
  public.create_batch_request(jsonb, jsonb, uuid, text),
  public.cancel_batch_request(jsonb, uuid)
  from public, anon, authenticated;

-- Reads as the user (RLS decides); the helpers read only the row they are given.
grant execute on function public.list_projects(integer, integer), public.get_project(uuid),
  public.get_batch(uuid), public.list_batches(uuid, integer, integer),
  private.project_json(public.projects), private.batch_progress(uuid)
  to authenticated;

grant execute on function
  private.job_insert(uuid, text, jsonb, integer, uuid, uuid), private.check_job_limit(uuid),
  private.project_json(public.projects), private.batch_progress(uuid),
  public.create_project(text, text), public.update_project(uuid, text, text),
  public.delete_project(uuid), public.list_projects(integer, integer), public.get_project(uuid),
  public.create_batch(jsonb, uuid, text), public.cancel_batch(uuid), public.get_batch(uuid),
  public.list_batches(uuid, integer, integer),
  public.create_project_request(jsonb, text, text),
  public.update_project_request(jsonb, uuid, text, text),
  public.delete_project_request(jsonb, uuid),
  public.create_batch_request(jsonb, jsonb, uuid, text),
  public.cancel_batch_request(jsonb, uuid)
  to service_role;

-- ===================================================================================
-- Voices
-- ===================================================================================

/** The narration voices each engine offers, by language (anyone may read them). */
create table public.voices (
  id text primary key check (id ~ '^[a-z]+:[A-Za-z0-9._+-]{1,80}$'),
  engine text not null check (engine in ('espeak', 'google')),
  language text not null check (language ~ '^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$'),
  name text not null check (char_length(name) between 1 and 80),
  gender text check (gender in ('female', 'male', 'neutral')),
  description text not null default '' check (char_length(description) <= 500),
  is_available boolean not null default true,
  created_at timestamptz not null default now()
);

create index voices_engine_language_idx on public.voices (engine, language);

alter table public.voices enable row level security;

create policy "Available voices are visible to everyone" on public.voices
  for select to anon, authenticated using (is_available);

revoke all on public.voices from anon, authenticated;
grant select on public.voices to anon, authenticated;
grant all on public.voices to service_role;

/** The available voices, optionally of one engine and one language (prefix: 'en'). */
create function public.list_voices(p_engine text default null, p_language text default null)
returns jsonb
language sql stable
security invoker
set search_path = ''
as $$
  select coalesce(jsonb_agg(to_jsonb(v) - 'created_at' order by v.engine, v.language, v.id), '[]')
    from public.voices v
   where v.is_available and (p_engine is null or v.engine = p_engine)
     and (p_language is null or v.language = p_language
          or v.language like p_language || '-%')
$$;

-- ===================================================================================
-- Quotes
-- ===================================================================================

/**
 * What 1–20 requests `[{model, params, priority}]` would cost and when they would be done,
 * without creating anything: per item the normalised params, the cost, the jobs queued
 * ahead of it (exact to 100) and the estimate; then the total, and for a signed-in caller
 * the balance and whether it covers the total. Bad items raise as a create would (with
 * `items.<n>` in the detail).
 */
create function public.quote_jobs(p_items jsonb)
returns jsonb
language plpgsql stable
security definer
set search_path = ''
as $$
declare
  v_item jsonb;
  v_model public.models;
  v_params jsonb;
  v_job public.jobs;
  v_ahead bigint;
  v_out jsonb := '[]';
  v_total bigint := 0;
  v_index integer := 0;
  v_priority integer;
  v_profile public.profiles;
begin
  if jsonb_typeof(p_items) is distinct from 'array'
     or jsonb_array_length(p_items) not between 1 and 20 then
    raise exception 'a quote has 1 to 20 items' using errcode = 'VGP22';
  end if;
  for v_item in select * from jsonb_array_elements(p_items) loop
    select * into v_model from public.models where id = v_item ->> 'model' and is_available;
    if not found then
      raise exception 'item %: model % not found', v_index, v_item ->> 'model'
        using errcode = 'VGM04',
              detail = jsonb_build_object('field', 'items.' || v_index || '.model',
                                          'message', 'not in the catalogue')::text;
    end if;
    v_priority := coalesce((v_item ->> 'priority')::integer, 0);
    begin
      v_params := private.normalize_params(v_model, coalesce(v_item -> 'params', '{}'));
    exception when sqlstate 'VGP22' then
      raise exception 'item %: %', v_index, sqlerrm
        using errcode = 'VGP22',
              detail = jsonb_build_object('field', 'items.' || v_index || '.params',
                                          'message', sqlerrm)::text;
    end;
    select count(*) into v_ahead from (
      select 1 from public.jobs j
       where j.status = 'queued' and j.model_id = v_model.id and j.priority >= v_priority
       limit 100) a;
    v_job.model_id := v_model.id;
    v_job.provider := v_model.provider;
    v_job.status := 'queued';
    v_job.run_after := now();
    v_out := v_out || jsonb_build_array(jsonb_build_object(
      'model', v_model.id, 'job_type', v_model.job_type, 'params', v_params,
      'cost', private.job_price(v_model, v_params), 'queue_ahead', v_ahead)
      || private.job_estimate(v_job, v_ahead + 1));
    v_total := v_total + private.job_price(v_model, v_params);
    v_index := v_index + 1;
  end loop;
  select * into v_profile from public.profiles where id = auth.uid();
  return jsonb_build_object(
    'items', v_out, 'total', v_total,
    'balance', v_profile.balance, 'reserved', v_profile.reserved,
    'affordable', case when v_profile.id is null then null
                       else v_profile.balance >= v_total end);
end;
$$;

-- ===================================================================================
-- The user's own profile
-- ===================================================================================

/** The caller's profile: preferences, tier, balance and limits; null without one. */
create function public.get_profile()
returns jsonb
language sql stable
security invoker
set search_path = ''
as $$
  select jsonb_build_object(
    'id', p.id, 'display_name', p.display_name, 'language', p.language, 'theme', p.theme,
    'tier', p.tier, 'balance', p.balance, 'reserved', p.reserved,
    'concurrent_job_limit', p.concurrent_job_limit,
    'initial_grant_claimed', p.initial_grant_claimed_at is not null,
    'created_at', p.created_at, 'updated_at', p.updated_at)
    from public.profiles p where p.id = (select auth.uid())
$$;

/**
 * Change the caller's display name, language or theme (a null keeps it). Runs with the
 * caller's rights: RLS and the column grants (those three columns only) decide.
 */
create function public.update_profile(
  p_display_name text default null, p_language text default null, p_theme text default null
)
returns jsonb
language plpgsql
security invoker
set search_path = ''
as $$
begin
  update public.profiles
     set display_name = coalesce(p_display_name, display_name),
         language = coalesce(p_language, language),
         theme = coalesce(p_theme, theme)
   where id = (select auth.uid());
  if not found then
    raise exception 'no profile for this user' using errcode = 'VG404';
  end if;
  return public.get_profile();
end;
$$;

revoke execute on function public.list_voices(text, text), public.quote_jobs(jsonb),
  public.get_profile(), public.update_profile(text, text, text)
  from public, anon, authenticated;
grant execute on function public.list_voices(text, text), public.quote_jobs(jsonb)
  to anon, authenticated;
grant execute on function public.get_profile(), public.update_profile(text, text, text)
  to authenticated;
grant execute on function public.list_voices(text, text), public.quote_jobs(jsonb),
  public.get_profile(), public.update_profile(text, text, text) to service_role;
