/*
 * Module 3: what a job is before it runs — its JSON, its place in the queue and estimate,
 * its params checked and normalized per job type, its price — and the attempt helpers the
 * procedures of modules 4–6 share (lock the current attempt, back off, lease, retry).
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
 * (videogen.steps). A still picture (text_to_image, image_to_image) has no length: its
 * models price it by credits_base alone. Every type also keeps `original_prompt`: the user's own words when
 * `prompt` is an enhanced prompt they chose (module 17). Compared as text: a migration
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
      '{prompt,topic,script,sections,voice,language,speaking_rate,images,music_path,narration_paths,captions,caption_style,formats,poster,size,transition,elements,section_clips,duration,aspect_ratio,resolution,fps}'::text[]
    when 'narration' then '{prompt,script,voice,language,speaking_rate,duration,fps}'::text[]
    when 'script' then '{prompt,topic,script,instruction,sections,language,duration}'::text[]
    when 'images' then
      '{prompt,script,source,timings,speaking_rate,duration,aspect_ratio,resolution}'::text[]
    when 'text_to_image' then '{prompt,negative_prompt,aspect_ratio,resolution,seed}'::text[]
    when 'image_to_image' then
      '{prompt,negative_prompt,image_path,strength,aspect_ratio,resolution,seed}'::text[]
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
  -- A custom frame may have as many pixels as the caller's tier allows (1080p's on the
  -- free tier, 4K's on premium: private.tier_limits).
  if jsonb_typeof(p_params -> 'size') = 'object'
     and coalesce((p_params #>> '{size,width}')::numeric, 0)
         * coalesce((p_params #>> '{size,height}')::numeric, 0)
         > (private.tier_limits_of(auth.uid())).max_frame_pixels then
    raise exception 'a frame of %x% has more pixels than your tier allows (%)',
      p_params #>> '{size,width}', p_params #>> '{size,height}',
      (private.tier_limits_of(auth.uid())).max_frame_pixels
      using errcode = 'VGP22', hint = 'Premium renders up to 3840x2160; free up to 1920x1080.';
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
 * price. What a composed video's render costs more is priced as it costs: a custom frame
 * by its pixels against 720p's (at 720p's factor, never below the resolution's own), 60 fps
 * twice 30's, and each extra file (`formats`: webm, gif, mp3) a credit a started minute.
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
  v_extra numeric := 0;
begin
  if p_model.job_type = 'compose' then
    if jsonb_typeof(p_params -> 'size') = 'object' then
      v_factor := greatest(v_factor,
        coalesce((p_model.resolution_factors ->> '720p')::numeric, 1)
        * (p_params #>> '{size,width}')::numeric * (p_params #>> '{size,height}')::numeric
        / (1280 * 720));
    end if;
    if coalesce((p_params ->> 'fps')::numeric, 30) > 30 then
      v_factor := v_factor * 2;
    end if;
    if jsonb_typeof(p_params -> 'formats') = 'array' then
      v_extra := jsonb_array_length(p_params -> 'formats') * ceil(v_duration / 60);
    end if;
  end if;
  if p_model.job_type = 'compose' and jsonb_typeof(p_params -> 'narration_paths') = 'array' then
    return ceil((1 + p_model.credits_per_second * v_duration / 4) * v_factor + v_extra)::bigint;
  end if;
  return ceil((p_model.credits_base + p_model.credits_per_second * v_duration) * v_factor
              + v_extra)::bigint;
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
