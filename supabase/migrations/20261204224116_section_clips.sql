-- Migration section_clips: drafted by `make migration` from sql/schema; review before committing.
-- Write by hand only what a diff cannot express: data moves, backfills, renames (drafted
-- as drop + create), default privileges.
-- Unsafe statements (drops): none. The draft also dropped and re-added every foreign key
-- of public.jobs and of the tables pointing at it; removed by hand (they do not change,
-- and validating them again scans the whole jobs history).

set check_function_bodies = off;

CREATE OR REPLACE FUNCTION private.section_clip_finished()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  v_parent public.jobs;
  v_clips jsonb;
  v_index integer;
begin
  select * into v_parent from public.jobs where id = new.parent_job_id for update;
  if not found then
    return null;
  end if;
  v_clips := v_parent.params -> 'section_clips';
  select (i - 1)::integer into v_index
    from jsonb_array_elements(v_clips) with ordinality as c(clip, i)
   where c.clip ->> 'job_id' = new.id::text;
  if v_index is not null then
    v_clips := jsonb_set(v_clips, array[v_index::text],
      (v_clips -> v_index) || jsonb_strip_nulls(jsonb_build_object(
        'status', new.status, 'video_path', new.output ->> 'video_path',
        'error_code', new.error_code)));
  end if;
  update public.jobs
     set params = jsonb_set(params, '{section_clips}', coalesce(v_clips, 'null'::jsonb)),
         waiting_for = array_remove(waiting_for, new.id)
   where id = v_parent.id;
  return null;
end;
$function$
;

CREATE OR REPLACE FUNCTION private.section_clips_create(p_job public.jobs)
 RETURNS public.jobs
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  v_clips jsonb := p_job.params -> 'section_clips';
  v_clip jsonb;
  v_child public.jobs;
  v_index integer := 0;
  v_waiting uuid[] := '{}';
begin
  if p_job.job_type <> 'compose' or jsonb_array_length(v_clips) > 12 then
    raise exception 'section_clips: up to 12, on a compose job' using errcode = 'VGP22';
  end if;
  for v_clip in select * from jsonb_array_elements(v_clips) loop
    if jsonb_typeof(v_clip) = 'object' then
      if jsonb_typeof(v_clip -> 'model') is distinct from 'string'
         or jsonb_typeof(v_clip -> 'prompt') is distinct from 'string' then
        raise exception 'section_clips.%: a model and a prompt', v_index using errcode = 'VGP22';
      end if;
      v_child := private.job_insert(
        p_job.user_id, v_clip ->> 'model',
        jsonb_strip_nulls(jsonb_build_object(
          'prompt', v_clip -> 'prompt', 'image_path', v_clip -> 'image_path',
          'duration', coalesce(v_clip -> 'duration', '5'::jsonb),
          'aspect_ratio', p_job.params -> 'aspect_ratio',
          'resolution', p_job.params -> 'resolution')),
        p_job.priority, p_job.project_id);
      if v_child.job_type not in ('text_to_video', 'image_to_video') then
        raise exception 'section_clips.%: % makes %, not a clip', v_index, v_child.model_id,
          v_child.job_type using errcode = 'VGP22';
      end if;
      update public.jobs set parent_job_id = p_job.id where id = v_child.id
      returning * into v_child;
      perform private.credits_reserve(v_child);
      v_clips := jsonb_set(v_clips, array[v_index::text, 'job_id'], to_jsonb(v_child.id));
      v_waiting := v_waiting || v_child.id;
    elsif jsonb_typeof(v_clip) <> 'null' then
      raise exception 'section_clips.%: an object or null', v_index using errcode = 'VGP22';
    end if;
    v_index := v_index + 1;
  end loop;
  update public.jobs
     set params = jsonb_set(params, '{section_clips}', v_clips), waiting_for = v_waiting
   where id = p_job.id
  returning * into p_job;
  return p_job;
end;
$function$
;

CREATE OR REPLACE FUNCTION private.job_insert(p_uid uuid, p_model_id text, p_params jsonb, p_priority integer, p_project_id uuid DEFAULT NULL::uuid, p_batch_id uuid DEFAULT NULL::uuid)
 RETURNS public.jobs
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
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
  if p_batch_id is not null and v_params ? 'section_clips' then
    raise exception 'section_clips are made for one compose job at a time, not in a batch'
      using errcode = 'VGP22';
  end if;
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
$function$
;

CREATE OR REPLACE FUNCTION private.job_type_params(p_job_type public.job_type)
 RETURNS text[]
 LANGUAGE sql
 IMMUTABLE
 SET search_path TO ''
AS $function$
  select case p_job_type::text
    when 'text_to_video' then
      '{prompt,negative_prompt,duration,aspect_ratio,resolution,seed,fps}'::text[]
    when 'image_to_video' then
      '{prompt,negative_prompt,image_path,duration,aspect_ratio,resolution,seed,fps}'::text[]
    when 'compose' then
      '{prompt,topic,script,sections,voice,language,speaking_rate,images,music_path,narration_paths,captions,elements,section_clips,duration,aspect_ratio,resolution,fps}'::text[]
    when 'narration' then '{prompt,script,voice,language,speaking_rate,duration,fps}'::text[]
    when 'script' then '{prompt,topic,script,instruction,sections,language,duration}'::text[]
    when 'images' then
      '{prompt,script,source,timings,speaking_rate,duration,aspect_ratio,resolution}'::text[]
  end || '{original_prompt}'::text[]
$function$
;

CREATE OR REPLACE FUNCTION service.job_assign(p_job_id uuid, p_worker_id uuid DEFAULT NULL::uuid)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
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
$function$
;

CREATE OR REPLACE FUNCTION service.job_create(p_model_id text, p_params jsonb DEFAULT '{}'::jsonb, p_priority integer DEFAULT 0, p_project_id uuid DEFAULT NULL::uuid, p_max_credits bigint DEFAULT NULL::bigint)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  v_uid uuid := auth.uid();
  v_job public.jobs;
  v_total bigint;
begin
  if v_uid is null then
    raise exception 'sign in first' using errcode = 'VG403';
  end if;
  v_job := private.job_insert(v_uid, p_model_id, p_params, p_priority, p_project_id);
  perform private.credits_reserve(v_job);
  v_total := v_job.cost;
  if jsonb_typeof(v_job.params -> 'section_clips') = 'array' then
    v_job := private.section_clips_create(v_job);
    v_total := v_total + (select coalesce(sum(c.cost), 0) from public.jobs c
                           where c.parent_job_id = v_job.id);
  end if;
  perform private.check_spend(v_uid, v_total, p_max_credits);
  perform private.check_job_limit(v_uid);
  return private.job_json(v_job);
end;
$function$
;

CREATE OR REPLACE FUNCTION service.job_dispatch_external(p_job_id uuid)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
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
$function$
;

CREATE OR REPLACE FUNCTION service.jobs_assign_pending(p_limit integer DEFAULT 20)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
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
$function$
;

CREATE OR REPLACE FUNCTION service.worker_claim(p_worker_id uuid, p_limit integer DEFAULT 1)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
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
$function$
;

alter table "public"."jobs" add column "parent_job_id" uuid;

alter table "public"."jobs" add column "waiting_for" uuid[] not null default '{}'::uuid[];

CREATE TRIGGER jobs_section_clip_finished AFTER UPDATE OF status ON public.jobs FOR EACH ROW WHEN (((new.parent_job_id IS NOT NULL) AND (new.status = ANY (ARRAY['completed'::public.job_status, 'failed'::public.job_status, 'canceled'::public.job_status])) AND (old.status <> ALL (ARRAY['completed'::public.job_status, 'failed'::public.job_status, 'canceled'::public.job_status])))) EXECUTE FUNCTION private.section_clip_finished();

CREATE INDEX jobs_parent_idx ON public.jobs USING btree (parent_job_id) WHERE (parent_job_id IS NOT NULL);

alter table "public"."jobs" add constraint "jobs_parent_job_id_fkey" FOREIGN KEY ("parent_job_id") REFERENCES "public"."jobs"("id") ON DELETE SET NULL NOT VALID;

alter table "public"."jobs" validate constraint "jobs_parent_job_id_fkey";

revoke execute on function private.section_clip_finished() from public;

revoke execute on function private.section_clips_create(p_job public.jobs) from public;

grant execute on function private.section_clip_finished() to service_role;

grant execute on function private.section_clips_create(p_job public.jobs) to service_role;
