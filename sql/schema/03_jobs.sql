/*
 * Module 3: jobs and workers — create, route, claim, report, finish, cancel, sweep.
 *
 * Every procedure locks the job row it changes, checks the state and the attempt token,
 * and moves money in the same transaction as the status, so a job is reserved, captured
 * and released at most once whatever order callbacks, sweeps and cancels arrive in.
 * Callback procedures return {"applied": false, "reason": …} for late or duplicate
 * reports instead of raising: the sender did nothing wrong and must not retry.
 */

-- ===================================================================================
-- Helpers
-- ===================================================================================

/**
 * 1-based place in its model's queue, exact up to 100; 101 means "more than 100 ahead";
 * null when the job is not queued. Two index range scans over the jobs ahead only (higher
 * priority; same priority and older), each stopped at 100 rows: the cost of a create does
 * not grow with the queue.
 */
create function private.queue_position(p_job public.jobs)
returns bigint
language plpgsql stable
security definer
set search_path = ''
as $$
begin
  if p_job.status <> 'queued' then
    return null;
  end if;
  return 1 + least(100,
    (select count(*) from (
       select 1 from public.jobs j
        where j.status = 'queued' and j.model_id = p_job.model_id
          and j.priority > p_job.priority
        limit 100) higher)
    + (select count(*) from (
       select 1 from public.jobs j
        where j.status = 'queued' and j.model_id = p_job.model_id
          and j.priority = p_job.priority and j.created_at <= p_job.created_at
          and (j.created_at < p_job.created_at or j.id < p_job.id)
        limit 100) older));
end;
$$;

/** The job as clients see it, with its queue position while queued. */
create function private.job_json(p_job public.jobs)
returns jsonb
language plpgsql stable
security definer
set search_path = ''
as $$
begin
  return (
    select to_jsonb(p_job) - 'provider_job_id'
           || jsonb_build_object('queue_position', private.queue_position(p_job))
  );
end;
$$;

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
 * The params keys a job type takes (the typed shapes are the functions' JobParams). The
 * wizard's steps (script, narration, images) feed each other and the compose job
 * (videogen.steps). Every type also keeps `original_prompt`: the user's own words when
 * `prompt` is an enhanced prompt they chose (module 15). Compared as text: a migration
 * that adds a type can create this too.
 */
create function private.job_type_params(p_job_type public.job_type)
returns text[]
language sql immutable
set search_path = ''
as $$
  select case p_job_type::text
    when 'text_to_video' then
      '{prompt,negative_prompt,duration,aspect_ratio,resolution,seed,fps}'::text[]
    when 'image_to_video' then
      '{prompt,negative_prompt,image_path,duration,aspect_ratio,resolution,seed,fps}'::text[]
    when 'compose' then
      '{prompt,topic,script,sections,voice,language,speaking_rate,images,music_path,narration_paths,captions,elements,duration,aspect_ratio,resolution,fps}'::text[]
    when 'narration' then '{prompt,script,voice,language,speaking_rate,duration,fps}'::text[]
    when 'script' then '{prompt,topic,script,instruction,sections,language,duration}'::text[]
    when 'images' then
      '{prompt,script,source,timings,speaking_rate,duration,aspect_ratio,resolution}'::text[]
  end || '{original_prompt}'::text[]
$$;

/**
 * The length a composed video will have, in whole seconds, before anything is rendered —
 * what it is priced and capped at: exactly the narration's when it brings a narration
 * step's files (that step's output says how long they run, padding included); else its
 * words read at 160 a minute (times speaking_rate, 40 a section when the script is still
 * to be written) with 0.7 s of padding a section, plus a margin of 25 % and 2 s. Null for
 * a timeline of elements (priced by its end) and for other job types.
 */
create function private.compose_length(p_uid uuid, p_model public.models, p_params jsonb)
returns integer
language plpgsql stable
security definer
set search_path = ''
as $$
declare
  v_first text := p_params -> 'narration_paths' ->> 0;
  v_seconds numeric;
  v_words integer;
  v_sections integer;
  v_rate numeric := 1;
begin
  if p_model.job_type <> 'compose' or jsonb_typeof(p_params -> 'elements') = 'array' then
    return null;
  end if;
  if v_first is not null then
    -- <uid>/steps/<narration job>/narration_00.wav: the step that made them, if it is ours.
    if v_first ~ '^[0-9a-f-]{36}/steps/[0-9a-f-]{36}/' then
      select (j.output ->> 'duration_s')::numeric into v_seconds
        from public.jobs j
       where j.id = split_part(v_first, '/', 3)::uuid and j.user_id = p_uid
         and j.status = 'completed' and j.output -> 'narration_paths' = p_params -> 'narration_paths';
    end if;
    return ceil(v_seconds)::integer;  -- null (unknown files): priced by the duration asked
  end if;
  if jsonb_typeof(p_params -> 'speaking_rate') = 'number' then
    v_rate := greatest((p_params ->> 'speaking_rate')::numeric, 0.25);
  end if;
  if jsonb_typeof(p_params -> 'script' -> 'sections') = 'array' then
    select count(*), coalesce(sum(cardinality(regexp_split_to_array(
             btrim(coalesce(s ->> 'narration', '')), '\s+'))), 0)
      into v_sections, v_words
      from jsonb_array_elements(p_params -> 'script' -> 'sections') s;
  else
    v_sections := case when jsonb_typeof(p_params -> 'sections') = 'number'
                       then (p_params ->> 'sections')::integer else 4 end;
    v_words := 40 * v_sections;
  end if;
  v_seconds := v_words / (160 * v_rate) * 60 + v_sections * 0.7;
  return ceil(v_seconds * 1.25 + 2)::integer;
end;
$$;

/** Normalise request params against the model's limits; raises VGP22 with the reason. */
create function private.normalize_params(p_model public.models, p_params jsonb)
returns jsonb
language plpgsql stable
set search_path = ''
as $$
declare
  v_duration integer;
  v_length integer;
  v_unknown text[];
  v_aspect text := coalesce(p_params ->> 'aspect_ratio', p_model.aspect_ratios[1]);
  v_resolution text := coalesce(p_params ->> 'resolution',
    case when '720p' = any(p_model.resolutions) then '720p' else p_model.resolutions[1] end);
begin
  if jsonb_typeof(coalesce(p_params, '{}')) <> 'object' then
    raise exception 'params must be an object' using errcode = 'VGP22';
  end if;
  if octet_length(p_params::text) > 65536 then
    raise exception 'params are larger than 64 KiB' using errcode = 'VGP22';
  end if;
  select array_agg(k order by k) into v_unknown
    from jsonb_object_keys(coalesce(p_params, '{}')) k
   where k <> all (private.job_type_params(p_model.job_type));
  if v_unknown is not null then
    raise exception 'model % (%) does not take %', p_model.id, p_model.job_type,
      array_to_string(v_unknown, ', ')
      using errcode = 'VGP22',
            hint = 'It takes: ' || array_to_string(private.job_type_params(p_model.job_type), ', ');
  end if;
  if p_params ? 'original_prompt'
     and (jsonb_typeof(p_params -> 'original_prompt') <> 'string'
          or btrim(p_params ->> 'original_prompt') = ''
          or char_length(p_params ->> 'original_prompt') > 2000
          or jsonb_typeof(p_params -> 'prompt') is distinct from 'string') then
    raise exception 'original_prompt must be the text (1–2000 characters) the prompt was made from, given with the prompt'
      using errcode = 'VGP22';
  end if;
  -- Checked with a pattern, not a cast in an exception block (that would open a
  -- subtransaction on every job).
  if coalesce(p_params ->> 'duration', '0') !~ '^\s*\d{1,6}\s*$' then
    raise exception 'duration must be a whole number of seconds' using errcode = 'VGP22';
  end if;
  -- A timeline of elements without a duration is paid by its length: the end of its last
  -- element in whole seconds, at least the model's minimum.
  if p_params ->> 'duration' is null and jsonb_typeof(p_params -> 'elements') = 'array' then
    select greatest(p_model.min_duration_s,
                    ceil(max((e ->> 'start')::numeric + (e ->> 'duration')::numeric)))::integer
      into v_duration
      from jsonb_array_elements(p_params -> 'elements') e
     where jsonb_typeof(e -> 'start') = 'number' and jsonb_typeof(e -> 'duration') = 'number';
  end if;
  v_length := private.compose_length(auth.uid(), p_model, p_params);
  v_duration := coalesce((p_params ->> 'duration')::integer, v_duration, v_length,
                         p_model.default_duration_s);
  -- A composed video's duration is the most it may run: never more than it will.
  if v_length is not null then
    v_duration := greatest(p_model.min_duration_s, least(v_duration, v_length));
  end if;
  if v_duration not between p_model.min_duration_s and p_model.max_duration_s then
    raise exception 'duration % s outside %–% s for model %', v_duration,
      p_model.min_duration_s, p_model.max_duration_s, p_model.id using errcode = 'VGP22';
  end if;
  if not v_aspect = any(p_model.aspect_ratios) then
    raise exception 'aspect ratio % not offered by model % (%)', v_aspect, p_model.id,
      array_to_string(p_model.aspect_ratios, ', ') using errcode = 'VGP22';
  end if;
  if not v_resolution = any(p_model.resolutions) then
    raise exception 'resolution % not offered by model % (%)', v_resolution, p_model.id,
      array_to_string(p_model.resolutions, ', ') using errcode = 'VGP22';
  end if;
  if p_model.requires_image and coalesce(p_params ->> 'image_path', '') = '' then
    raise exception 'model % needs an input image (image_path)', p_model.id
      using errcode = 'VGP22';
  end if;
  return coalesce(p_params, '{}') || jsonb_build_object(
    'duration', v_duration, 'aspect_ratio', v_aspect, 'resolution', v_resolution);
end;
$$;

/**
 * Price of a job from the model's rule and the normalised params. A composed video that
 * brings its narration (the wizard's assembly) pays the render alone — its script, speech
 * and pictures were paid in their own steps: one credit and a quarter of the per-second
 * price.
 */
create function private.job_price(p_model public.models, p_params jsonb)
returns bigint
language plpgsql stable
set search_path = ''
as $$
declare
  v_factor numeric := coalesce(
    (p_model.resolution_factors ->> (p_params ->> 'resolution'))::numeric, 1);
  v_duration numeric := (p_params ->> 'duration')::numeric;
begin
  if p_model.job_type = 'compose' and jsonb_typeof(p_params -> 'narration_paths') = 'array' then
    return ceil((1 + p_model.credits_per_second * v_duration / 4) * v_factor)::bigint;
  end if;
  return ceil((p_model.credits_base + p_model.credits_per_second * v_duration) * v_factor)::bigint;
end;
$$;

/** Lock a job for a callback; null when the attempt is not the current one or it ended. */
create function private.job_lock_for_attempt(p_job_id uuid, p_attempt integer)
returns public.jobs
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_job public.jobs;
begin
  select * into v_job from public.jobs where id = p_job_id for update;
  if not found then
    raise exception 'job % not found', p_job_id using errcode = 'VGJ04';
  end if;
  if v_job.attempt <> p_attempt or v_job.status not in ('dispatched', 'processing') then
    return null;
  end if;
  return v_job;
end;
$$;

/** Answer for a callback that changed nothing. */
create function private.not_applied(p_job_id uuid, p_reason text)
returns jsonb
language plpgsql stable
security definer
set search_path = ''
as $$
begin
  return (
    select jsonb_build_object('applied', false, 'reason', p_reason,
      'job', (select private.job_json(j) from public.jobs j where j.id = p_job_id))
  );
end;
$$;

/** Seconds to wait before retry number n (exponential, capped). */
create function private.backoff_seconds(p_failures integer)
returns integer
language plpgsql stable
set search_path = ''
as $$
begin
  return (
    select least(private.setting_int('retry_backoff_max_seconds'),
                 private.setting_int('retry_backoff_base_seconds') * power(2, greatest(p_failures - 1, 0)))::integer
  );
end;
$$;

/** When a lease taken now on a job of this model runs out. */
create function private.lease_until(p_model_id text)
returns timestamptz
language plpgsql stable
set search_path = ''
as $$
begin
  return (
    select now() + make_interval(secs => m.lease_seconds) from public.models m where m.id = p_model_id
  );
end;
$$;

/** Record a failed try: retry later with backoff, or fail for good and release credits. */
create function private.job_fail_or_retry(
  p_job public.jobs, p_code text, p_message text, p_retryable boolean
)
returns public.jobs
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_job public.jobs;
begin
  if p_retryable and p_job.failures + 1 < p_job.max_attempts then
    update public.jobs
       set status = 'queued', failures = failures + 1, worker_id = null,
           lease_expires_at = null, progress = 0, progress_message = null,
           run_after = now() + make_interval(secs => private.backoff_seconds(failures + 1)),
           error_code = p_code, error_message = p_message
     where id = p_job.id
    returning * into v_job;
  else
    update public.jobs
       set status = 'failed', failures = least(failures + 1, max_attempts),
           lease_expires_at = null, finished_at = now(),
           error_code = p_code, error_message = p_message
     where id = p_job.id
    returning * into v_job;
    perform private.credits_release(v_job);
  end if;
  return v_job;
end;
$$;

-- ===================================================================================
-- Users: create, cancel
-- ===================================================================================

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
  perform private.check_priority(p_uid, p_priority);
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

/** The limits of a user's tier (the `free` row's for a tier without one). */
create function private.tier_limits_of(p_uid uuid)
returns private.tier_limits
language sql stable
security definer
set search_path = ''
as $$
  select l.* from private.tier_limits l
   where l.tier in ((select p.tier from public.profiles p where p.id = p_uid), 'free')
   order by l.tier = 'free'
   limit 1;
$$;

/**
 * Raise VGQ03 when a user sets a priority above their tier's bound: a queue place is paid
 * for by the tier. Admins and the service may set any priority.
 */
create function private.check_priority(p_uid uuid, p_priority integer)
returns void
language plpgsql stable
security definer
set search_path = ''
as $$
declare
  v_limits private.tier_limits;
begin
  if p_priority <= 0 or auth.role() = 'service_role'
     or coalesce((auth.jwt() -> 'app_metadata' ->> 'role') = 'admin', false) then
    return;
  end if;
  v_limits := private.tier_limits_of(p_uid);
  if p_priority > v_limits.max_priority then
    raise exception 'your tier (%) may set priority up to %', v_limits.tier,
      v_limits.max_priority
      using errcode = 'VGQ03',
            detail = jsonb_build_object('priority', p_priority, 'max_priority',
                                        v_limits.max_priority, 'tier', v_limits.tier)::text;
  end if;
end;
$$;

/**
 * Raise when what was just reserved breaks a spend cap: VGS02 (402) when it costs more
 * than the caller's own `p_max_credits`; VGS29 (429, until 00:00 UTC) when the credits
 * committed to jobs made today (private.spend_days: their cost, less what they gave back
 * when they ended) pass the tier's daily cap. Called after the reserve, whose row lock on
 * the profile serialises this user's creates; a refusal rolls the count back with it.
 */
create function private.check_spend(p_uid uuid, p_cost bigint, p_max_credits bigint)
returns void
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_limits private.tier_limits;
  v_day date := (now() at time zone 'UTC')::date;
  v_spent bigint;
begin
  if p_max_credits is not null and p_cost > p_max_credits then
    raise exception 'this costs % credits, more than your max_credits of %', p_cost,
      p_max_credits
      using errcode = 'VGS02',
            detail = jsonb_build_object('cost', p_cost, 'max_credits', p_max_credits)::text;
  end if;
  insert into private.spend_days as d (user_id, day, committed)
  values (p_uid, v_day, p_cost)
  on conflict (user_id, day) do update set committed = d.committed + excluded.committed
  returning committed into v_spent;
  v_limits := private.tier_limits_of(p_uid);
  if v_limits.daily_spend_credits is not null and v_spent > v_limits.daily_spend_credits then
    raise exception 'this would take today''s spending to % credits; your tier (%) allows % a day',
      v_spent, v_limits.tier, v_limits.daily_spend_credits
      using errcode = 'VGS29',
            hint = 'The daily cap resets at 00:00 UTC.',
            detail = jsonb_build_object(
              'spent_today', v_spent - p_cost, 'cost', p_cost,
              'daily_limit', v_limits.daily_spend_credits, 'tier', v_limits.tier,
              'retry_after', ceil(extract(epoch from
                ((v_day + 1)::timestamp at time zone 'UTC' - now())))::integer)::text;
  end if;
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

/**
 * Create a job for the caller: check the model and params, price it, enforce the
 * concurrent-job limit and the spend caps (`p_max_credits`, the tier's daily cap), reserve
 * the cost and queue it — one transaction.
 */
create function public.create_job(
  p_model_id text, p_params jsonb default '{}', p_priority integer default 0,
  p_project_id uuid default null, p_max_credits bigint default null
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
  perform private.check_spend(v_uid, v_job.cost, p_max_credits);
  perform private.check_job_limit(v_uid);
  return private.job_json(v_job);
end;
$$;

/**
 * Cancel a job that has not finished: the owner (or the service) may; credits are
 * released. Returns the job and, when a worker had it, that worker's url to tell.
 */
create function public.cancel_job(p_job_id uuid)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_job public.jobs;
  v_worker public.workers;
begin
  select * into v_job from public.jobs where id = p_job_id for update;
  if not found or (auth.role() <> 'service_role' and v_job.user_id is distinct from auth.uid()) then
    raise exception 'job % not found', p_job_id using errcode = 'VGJ04';
  end if;
  if v_job.status in ('completed', 'failed', 'canceled') then
    raise exception 'job is already %', v_job.status using errcode = 'VGJ09';
  end if;
  select * into v_worker from public.workers where id = v_job.worker_id;
  update public.jobs
     set status = 'canceled', finished_at = now(), lease_expires_at = null,
         error_code = 'CANCELED', error_message = 'canceled by request'
   where id = p_job_id
  returning * into v_job;
  perform private.credits_release(v_job);
  return jsonb_build_object(
    'job', private.job_json(v_job),
    'notify', case when v_worker.id is null then null
                   else jsonb_build_object('worker_id', v_worker.id, 'url', v_worker.url) end,
    'provider', v_job.provider, 'provider_job_id', v_job.provider_job_id);
end;
$$;

-- ===================================================================================
-- Workers: register, heartbeat, health
-- ===================================================================================

/** Register (or re-register by name) a worker; returns it. */
create function public.worker_register(
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
create function public.worker_heartbeat(p_worker_id uuid, p_status text default 'online')
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
create function public.worker_record_health(p_worker_id uuid, p_ok boolean, p_detail jsonb default '{}')
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
create function public.job_assign(p_job_id uuid, p_worker_id uuid default null)
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
create function public.jobs_assign_pending(p_limit integer default 20)
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
     where j.status = 'queued' and j.run_after <= now()
     order by j.priority desc, j.created_at
     limit p_limit
  loop
    v_one := public.job_assign(v_id);
    if v_one is not null then
      v_out := v_out || jsonb_build_array(v_one);
    end if;
  end loop;
  return v_out;
end;
$$;

/** Service: a pull worker claims up to p_limit jobs of its models, with a lease each. */
create function public.job_claim(p_worker_id uuid, p_limit integer default 1)
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

/** Service: a queued job goes to an external provider (dispatched, new attempt). */
create function public.job_dispatch_external(p_job_id uuid)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_job public.jobs;
begin
  select * into v_job from public.jobs where id = p_job_id and status = 'queued' for update;
  if not found then
    return null;
  end if;
  v_job := private.job_dispatch(v_job, null);
  return private.job_json(v_job);
end;
$$;

/** Service: remember the provider's id for a dispatched attempt (webhooks find it by it). */
create function public.job_set_provider_id(p_job_id uuid, p_attempt integer, p_provider_job_id text)
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
create function public.job_by_provider_id(p_provider text, p_provider_job_id text)
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
create function public.job_return(p_job_id uuid, p_attempt integer, p_reason text)
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

-- ===================================================================================
-- Callbacks: started, progress, completed, failed
-- ===================================================================================

/** Service: the worker started the current attempt. */
create function public.job_start(p_job_id uuid, p_attempt integer)
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
create function public.job_progress(
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

/** Service: the current attempt finished; capture what it used, release the rest. */
create function public.job_complete(
  p_job_id uuid, p_attempt integer, p_output jsonb, p_credits_used bigint default null
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
  v_used := coalesce(p_credits_used, v_job.cost);
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
create function public.job_fail(
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
create function public.jobs_requeue_expired(p_limit integer default 500)
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

/** Service: true the first time a webhook id is seen (same transaction as its effect). */
create function public.webhook_receipt(p_webhook_id text, p_source text)
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
 * Service: one report about a job's current attempt — a worker's signed callback or a
 * provider's news — as one transaction: the delivery's receipt (when it has an id; a
 * repeat answers {"applied": false, "reason": "duplicate_delivery"}) and the change.
 * `p_report` is {type: started|progress|completed|failed, job_id, attempt, progress?,
 * message?, output?, credits_used?, error?: {code, message, retryable}}.
 */
create function public.job_report(p_webhook_id text, p_source text, p_report jsonb)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_job_id uuid := (p_report ->> 'job_id')::uuid;
  v_attempt integer := (p_report ->> 'attempt')::integer;
  v_error jsonb := coalesce(p_report -> 'error', '{}');
begin
  if p_webhook_id is not null and not public.webhook_receipt(p_webhook_id, p_source) then
    return jsonb_build_object('applied', false, 'reason', 'duplicate_delivery');
  end if;
  case p_report ->> 'type'
    when 'started' then
      return public.job_start(v_job_id, v_attempt);
    when 'progress' then
      return public.job_progress(v_job_id, v_attempt,
                                 coalesce((p_report ->> 'progress')::integer, 0),
                                 p_report ->> 'message');
    when 'completed' then
      return public.job_complete(v_job_id, v_attempt, coalesce(p_report -> 'output', '{}'),
                                 (p_report ->> 'credits_used')::bigint);
    when 'failed' then
      return public.job_fail(v_job_id, v_attempt,
                             coalesce(v_error ->> 'code', 'WORKER_ERROR'),
                             coalesce(v_error ->> 'message', ''),
                             coalesce((v_error ->> 'retryable')::boolean, true));
    else
      raise exception 'unknown report type %', p_report ->> 'type' using errcode = 'VG400';
  end case;
end;
$$;

