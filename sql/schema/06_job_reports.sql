/*
 * Module 6: reports about a job's attempt — started, progress, completed, failed (with
 * the capture or release of its credits), the lease sweep, webhook receipts, and what
 * each job consumed (private.job_usage; module 19 prices it).
 */

-- ===================================================================================
-- Usage per job
-- ===================================================================================

/**
 * One row per job: the sums over the reports of its attempts (a retried attempt consumed
 * too). provider_cost_usd is null while no report gave the provider's own cost; then the
 * provider's seconds are priced with provider_cost_per_second_usd.
 */
create table private.job_usage (
  job_id uuid primary key references public.jobs (id) on delete cascade,
  llm_model text check (char_length(llm_model) between 1 and 100),
  prompt_tokens bigint not null default 0 check (prompt_tokens >= 0),
  completion_tokens bigint not null default 0 check (completion_tokens >= 0),
  tts_engine text check (char_length(tts_engine) between 1 and 100),
  tts_characters bigint not null default 0 check (tts_characters >= 0),
  provider_calls integer not null default 0 check (provider_calls >= 0),
  provider_seconds numeric not null default 0 check (provider_seconds >= 0),
  provider_cost_usd numeric check (provider_cost_usd >= 0),
  render_seconds numeric not null default 0 check (render_seconds >= 0),
  render_output_seconds numeric not null default 0 check (render_output_seconds >= 0),
  reports integer not null default 1 check (reports >= 1),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

alter table private.job_usage enable row level security;

/**
 * One row per sectioned render a report measured (usage.renders): its frame size, frame
 * rate and sections rendered at once, with its ffmpeg wall seconds and the seconds of
 * video it made. service.render_speeds_read gives the fleet's recent figure per kind, so
 * a process that has not rendered yet starts its progress estimate from it; /metrics
 * shows it (service.ops_metrics_read).
 */
create table private.render_speeds (
  id bigint generated always as identity primary key,
  job_id uuid not null references public.jobs (id) on delete cascade,
  width integer not null check (width between 1 and 16384),
  height integer not null check (height between 1 and 16384),
  fps integer not null check (fps between 1 and 240),
  sections integer not null check (sections between 1 and 4096),
  wall_seconds numeric not null check (wall_seconds > 0 and wall_seconds <= 100000000),
  output_seconds numeric not null check (output_seconds > 0 and output_seconds <= 100000000),
  recorded_at timestamptz not null default now()
);

create index render_speeds_recent_idx on private.render_speeds (recorded_at);
create index render_speeds_job_idx on private.render_speeds (job_id);

alter table private.render_speeds enable row level security;

/**
 * A usage object as reports carry it (schemas.JobUsage is the same shape): every key
 * optional, nothing else. Counts are integers, seconds and dollars non-negative numbers,
 * names short strings. Raises VGU22.
 */
create function private.check_job_usage(p_usage jsonb)
returns void
language plpgsql immutable
set search_path = ''
as $$
declare
  v_key text;
  v_value jsonb;
begin
  if jsonb_typeof(p_usage) is distinct from 'object' then
    raise exception 'usage must be an object' using errcode = 'VGU22';
  end if;
  for v_key, v_value in select * from jsonb_each(p_usage) loop
    if v_key in ('llm_model', 'tts_engine') then
      if jsonb_typeof(v_value) <> 'string'
         or char_length(v_value #>> '{}') not between 1 and 100 then
        raise exception 'usage.% must be a name of 1 to 100 characters', v_key
          using errcode = 'VGU22';
      end if;
    elsif v_key in ('prompt_tokens', 'completion_tokens', 'tts_characters', 'provider_calls')
    then
      if jsonb_typeof(v_value) <> 'number' or (v_value #>> '{}')::numeric < 0
         or (v_value #>> '{}')::numeric <> trunc((v_value #>> '{}')::numeric)
         or (v_value #>> '{}')::numeric > 1000000000 then
        raise exception 'usage.% must be a whole number from 0 to 1e9', v_key
          using errcode = 'VGU22';
      end if;
    elsif v_key in ('provider_seconds', 'provider_cost_usd', 'render_seconds',
                    'render_output_seconds') then
      if jsonb_typeof(v_value) <> 'number' or (v_value #>> '{}')::numeric < 0
         or (v_value #>> '{}')::numeric > 100000000 then
        raise exception 'usage.% must be a number from 0 to 1e8', v_key
          using errcode = 'VGU22';
      end if;
    elsif v_key = 'renders' then
      -- Each sectioned render: {width, height, fps, sections, wall_seconds, output_seconds}.
      if jsonb_typeof(v_value) <> 'array' or jsonb_array_length(v_value) > 100
         or exists (
           select 1 from jsonb_array_elements(v_value) r
            where jsonb_typeof(r) <> 'object'
               or (select count(*) from jsonb_object_keys(r)) <> 6
               or jsonb_typeof(r -> 'width') is distinct from 'number'
               or jsonb_typeof(r -> 'height') is distinct from 'number'
               or jsonb_typeof(r -> 'fps') is distinct from 'number'
               or jsonb_typeof(r -> 'sections') is distinct from 'number'
               or jsonb_typeof(r -> 'wall_seconds') is distinct from 'number'
               or jsonb_typeof(r -> 'output_seconds') is distinct from 'number'
               or (r ->> 'width')::numeric not between 1 and 16384
               or (r ->> 'height')::numeric not between 1 and 16384
               or (r ->> 'fps')::numeric not between 1 and 240
               or (r ->> 'sections')::numeric not between 1 and 4096
               or (r ->> 'width')::numeric <> trunc((r ->> 'width')::numeric)
               or (r ->> 'height')::numeric <> trunc((r ->> 'height')::numeric)
               or (r ->> 'fps')::numeric <> trunc((r ->> 'fps')::numeric)
               or (r ->> 'sections')::numeric <> trunc((r ->> 'sections')::numeric)
               or (r ->> 'wall_seconds')::numeric not between 0.000001 and 100000000
               or (r ->> 'output_seconds')::numeric not between 0.000001 and 100000000) then
        raise exception 'usage.renders must be at most 100 renders of {width, height, fps, '
                        'sections, wall_seconds, output_seconds}' using errcode = 'VGU22';
      end if;
    else
      raise exception 'usage.% is not a usage field', v_key using errcode = 'VGU22';
    end if;
  end loop;
end;
$$;

/** Add one report's usage to its job's row, and its renders' speeds to
 * private.render_speeds (checked first; VGU22). */
create function private.job_usage_record(p_job_id uuid, p_usage jsonb)
returns void
language plpgsql
set search_path = ''
as $$
begin
  perform private.check_job_usage(p_usage);
  insert into private.job_usage as u (
    job_id, llm_model, prompt_tokens, completion_tokens, tts_engine, tts_characters,
    provider_calls, provider_seconds, provider_cost_usd, render_seconds, render_output_seconds
  ) values (
    p_job_id, p_usage ->> 'llm_model',
    coalesce((p_usage ->> 'prompt_tokens')::bigint, 0),
    coalesce((p_usage ->> 'completion_tokens')::bigint, 0),
    p_usage ->> 'tts_engine',
    coalesce((p_usage ->> 'tts_characters')::bigint, 0),
    coalesce((p_usage ->> 'provider_calls')::integer, 0),
    coalesce((p_usage ->> 'provider_seconds')::numeric, 0),
    (p_usage ->> 'provider_cost_usd')::numeric,
    coalesce((p_usage ->> 'render_seconds')::numeric, 0),
    coalesce((p_usage ->> 'render_output_seconds')::numeric, 0)
  )
  on conflict (job_id) do update
     set llm_model = coalesce(excluded.llm_model, u.llm_model),
         prompt_tokens = u.prompt_tokens + excluded.prompt_tokens,
         completion_tokens = u.completion_tokens + excluded.completion_tokens,
         tts_engine = coalesce(excluded.tts_engine, u.tts_engine),
         tts_characters = u.tts_characters + excluded.tts_characters,
         provider_calls = u.provider_calls + excluded.provider_calls,
         provider_seconds = u.provider_seconds + excluded.provider_seconds,
         provider_cost_usd = case
           when u.provider_cost_usd is null and excluded.provider_cost_usd is null then null
           else coalesce(u.provider_cost_usd, 0) + coalesce(excluded.provider_cost_usd, 0) end,
         render_seconds = u.render_seconds + excluded.render_seconds,
         render_output_seconds = u.render_output_seconds + excluded.render_output_seconds,
         reports = u.reports + 1,
         updated_at = now();
  insert into private.render_speeds (job_id, width, height, fps, sections, wall_seconds,
                                     output_seconds)
  select p_job_id, (r ->> 'width')::integer, (r ->> 'height')::integer,
         (r ->> 'fps')::integer, (r ->> 'sections')::integer,
         (r ->> 'wall_seconds')::numeric, (r ->> 'output_seconds')::numeric
    from jsonb_array_elements(coalesce(p_usage -> 'renders', '[]')) r;
end;
$$;

-- ===================================================================================
-- Callbacks: started, progress, completed, failed
-- ===================================================================================

/** Service: the worker started the current attempt. */
create function service.job_start(p_job_id uuid, p_attempt integer)
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
  if v_job.status = 'processing' then
    return private.not_applied(p_job_id, 'duplicate');
  end if;
  update public.jobs j
     set status = 'processing', started_at = now(),
         lease_expires_at = private.lease_until(j.model_id)
   where j.id = p_job_id
  returning j.* into v_job;
  return jsonb_build_object('applied', true, 'job', private.job_json(v_job));
end;
$$;

/** Service: progress of the current attempt (never backwards); extends the lease. */
create function service.job_progress(
  p_job_id uuid, p_attempt integer, p_progress integer, p_message text default null
)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_job public.jobs := private.job_lock_for_attempt(p_job_id, p_attempt);
begin
  if p_progress not between 0 and 100 then
    raise exception 'progress must be 0..100' using errcode = 'VG400';
  end if;
  if v_job.id is null then
    return private.not_applied(p_job_id, 'stale_attempt');
  end if;
  if p_progress <= v_job.progress and v_job.status = 'processing' then
    return private.not_applied(p_job_id, 'not_newer');
  end if;
  update public.jobs j
     set status = 'processing', progress = greatest(j.progress, p_progress),
         progress_message = coalesce(p_message, j.progress_message),
         started_at = coalesce(j.started_at, now()),
         lease_expires_at = private.lease_until(j.model_id)
   where j.id = p_job_id
  returning j.* into v_job;
  return jsonb_build_object('applied', true, 'job', private.job_json(v_job));
end;
$$;

/**
 * A finished job's output may name storage objects only inside its owner's folder
 * (`<user id>/…`, no empty, `.` or `..` segment) and carry no link of anyone else's:
 * links to our objects are signed by the service from those paths. Raises VGO22.
 */
create function private.check_job_output(p_job public.jobs, p_output jsonb)
returns void
language plpgsql immutable
set search_path = ''
as $$
declare
  v_key text;
  v_value jsonb;
begin
  if jsonb_typeof(p_output) <> 'object' then
    raise exception 'output must be an object' using errcode = 'VGO22';
  end if;
  for v_key, v_value in select * from jsonb_each(p_output) loop
    if v_key like '%\_path' then
      if jsonb_typeof(v_value) <> 'string'
         or split_part(v_value #>> '{}', '/', 1) <> p_job.user_id::text
         or v_value #>> '{}' !~ '^[0-9a-f-]{36}(/[A-Za-z0-9._-]+)+$'
         or v_value #>> '{}' ~ '(^|/)\.{1,2}(/|$)' then
        raise exception 'output % must be a path in the owner''s folder (%/…)', v_key,
          p_job.user_id using errcode = 'VGO22';
      end if;
    elsif v_key like '%\_url' and v_key not in ('video_url', 'thumbnail_url') then
      raise exception 'output % is not accepted: links are made from storage paths', v_key
        using errcode = 'VGO22';
    end if;
  end loop;
end;
$$;

/**
 * Service: the current attempt finished; capture what it used, release the rest. What it
 * used: `p_credits_used` when the worker says (docs/worker-protocol.md), else the pro-rata
 * share of the cost for the `p_rendered_seconds` of media it made (private.credits_pro_rata),
 * else the whole cost. Between 0 and the cost, else VGC22.
 */
create function service.job_complete(
  p_job_id uuid, p_attempt integer, p_output jsonb, p_credits_used bigint default null,
  p_rendered_seconds double precision default null
)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_job public.jobs := private.job_lock_for_attempt(p_job_id, p_attempt);
  v_used bigint;
begin
  if v_job.id is null then
    return private.not_applied(p_job_id, 'stale_attempt');
  end if;
  if p_rendered_seconds is not null and p_rendered_seconds < 0 then
    raise exception 'rendered_seconds % is negative', p_rendered_seconds using errcode = 'VGC22';
  end if;
  v_used := coalesce(p_credits_used,
                     private.credits_pro_rata(v_job, p_rendered_seconds),
                     v_job.cost);
  if v_used not between 0 and v_job.cost then
    raise exception 'credits_used % outside 0..%', v_used, v_job.cost using errcode = 'VGC22';
  end if;
  perform private.check_job_output(v_job, coalesce(p_output, '{}'));
  update public.jobs
     set status = 'completed', progress = 100, output = coalesce(p_output, '{}'),
         credits_used = v_used, finished_at = now(), lease_expires_at = null,
         started_at = coalesce(started_at, now()), error_code = null, error_message = null
   where id = p_job_id
  returning * into v_job;
  perform private.credits_capture(v_job, v_used);
  return jsonb_build_object('applied', true, 'job', private.job_json(v_job));
end;
$$;

/** Service: the current attempt failed; retry with backoff or fail and release. */
create function service.job_fail(
  p_job_id uuid, p_attempt integer, p_error_code text, p_error_message text,
  p_retryable boolean default true
)
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
  v_job := private.job_fail_or_retry(v_job, coalesce(p_error_code, 'WORKER_ERROR'),
                                     left(p_error_message, 2000), p_retryable);
  return jsonb_build_object('applied', true, 'job', private.job_json(v_job));
end;
$$;

/**
 * Service (sweep): jobs whose lease ran out go back to the queue with backoff, or fail
 * (credits released) when out of attempts. Safe to run concurrently with callbacks.
 */
create function service.jobs_requeue_expired(p_limit integer default 500)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_job public.jobs;
  v_requeued integer := 0;
  v_failed integer := 0;
begin
  for v_job in
    select * from public.jobs
     where status in ('dispatched', 'processing') and lease_expires_at < now()
     order by lease_expires_at
     limit p_limit
     for update skip locked
  loop
    v_job := private.job_fail_or_retry(v_job, 'LEASE_EXPIRED',
                                       'the worker stopped reporting', true);
    if v_job.status = 'queued' then
      v_requeued := v_requeued + 1;
    else
      v_failed := v_failed + 1;
    end if;
  end loop;
  return jsonb_build_object('requeued', v_requeued, 'failed', v_failed);
end;
$$;

/**
 * Service (sweep, pg_cron): unfinished jobs past their deadline (cancel_after) are
 * canceled as an owner's cancel is — credits released, section clips with them — with
 * error_code DEADLINE. Returns {canceled, running: [whom to tell, private.job_cancellation]}.
 */
create function service.jobs_cancel_overdue(p_limit integer default 500)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
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
$$;

/** Service: true the first time a webhook id is seen (same transaction as its effect). */
create function private.webhook_receipt_record(p_webhook_id text, p_source text)
returns boolean
language plpgsql
security definer
set search_path = ''
as $$
begin
  insert into private.webhook_receipts (webhook_id, source) values (p_webhook_id, p_source)
  on conflict do nothing;
  return found;
end;
$$;

/**
 * Service: one report about a job's current attempt — a worker's signed callback, a
 * provider's news, or an inline step's own result — as one transaction: the delivery's
 * receipt (when it has an id; a repeat answers {"applied": false, "reason":
 * "duplicate_delivery"}), the change, and for a completed or failed attempt the usage it
 * reports (private.job_usage, only when the change applied). `p_report` is {type:
 * started|progress|completed|failed, job_id, attempt, progress?, message?, output?,
 * credits_used?, rendered_seconds?, usage?, error?: {code, message, retryable}}. A
 * malformed usage is VGU22 and nothing is applied.
 */
create function service.job_report(p_webhook_id text, p_source text, p_report jsonb)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_job_id uuid := (p_report ->> 'job_id')::uuid;
  v_attempt integer := (p_report ->> 'attempt')::integer;
  v_error jsonb := coalesce(p_report -> 'error', '{}');
  v_usage jsonb := p_report -> 'usage';
  v_change jsonb;
begin
  if v_usage = 'null'::jsonb then
    v_usage := null;
  end if;
  if v_usage is not null then
    perform private.check_job_usage(v_usage);
  end if;
  if p_webhook_id is not null and not private.webhook_receipt_record(p_webhook_id, p_source) then
    return jsonb_build_object('applied', false, 'reason', 'duplicate_delivery');
  end if;
  case p_report ->> 'type'
    when 'started' then
      return service.job_start(v_job_id, v_attempt);
    when 'progress' then
      return service.job_progress(v_job_id, v_attempt,
                                 coalesce((p_report ->> 'progress')::integer, 0),
                                 p_report ->> 'message');
    when 'completed' then
      v_change := service.job_complete(v_job_id, v_attempt,
                                       coalesce(p_report -> 'output', '{}'),
                                       (p_report ->> 'credits_used')::bigint,
                                       (p_report ->> 'rendered_seconds')::double precision);
    when 'failed' then
      v_change := service.job_fail(v_job_id, v_attempt,
                                  coalesce(v_error ->> 'code', 'WORKER_ERROR'),
                                  coalesce(v_error ->> 'message', ''),
                                  coalesce((v_error ->> 'retryable')::boolean, true));
    else
      raise exception 'unknown report type %', p_report ->> 'type' using errcode = 'VG400';
  end case;
  if v_usage is not null and (v_change ->> 'applied')::boolean then
    perform private.job_usage_record(v_job_id, v_usage);
  end if;
  return v_change;
end;
$$;
