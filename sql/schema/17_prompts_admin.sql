/*
 * Module 17: prompt templates and the admin view.
 *
 * A prompt template says, per job type, how a user's prompt is improved: the instruction
 * an OpenAI-compatible engine gets, and the cues the offline engine adds. Each change is a
 * new version (rows are never rewritten or deleted: history is kept); one version per job
 * type is active. The service reads the active one (service.prompt_template_get); the
 * enhanced prompt goes back to the user, who may use it — a job then keeps both prompts in
 * its params (`prompt` and `original_prompt`, module 4).
 *
 * An admin is a user whose access token carries `app_metadata.role = 'admin'` (only the
 * service role can set app_metadata; Supabase Auth copies it into every token it issues).
 * By RLS an admin reads every job, worker and template version; admin procedures requeue
 * or fail a stuck job and change templates, each checking the claim (or the secret key).
 */

-- ===================================================================================
-- Who is an admin
-- ===================================================================================

/** Raise VG403 unless the claims are an admin's (`app_metadata.role`) or the service's. */
create function private.require_admin()
returns void
language plpgsql stable
set search_path = ''
as $$
begin
  if coalesce((auth.jwt() -> 'app_metadata' ->> 'role') = 'admin', false)
     or auth.role() = 'service_role' then
    return;
  end if;
  raise exception 'admins only' using errcode = 'VG403',
    hint = 'An admin''s access token carries app_metadata.role = admin.';
end;
$$;

-- ===================================================================================
-- Prompt templates
-- ===================================================================================

/**
 * The offline engine's rules: {"cues": [{"kind", "text", "skip_if": [words]}], "max_chars"}.
 * A cue is added unless the prompt already has one of its skip_if words; max_chars bounds
 * the enhanced prompt (the user's own words are always kept whole).
 */
create function private.prompt_hints_valid(p_hints jsonb)
returns boolean
language sql immutable
set search_path = ''
as $$
  select jsonb_typeof(p_hints) = 'object'
     and jsonb_typeof(p_hints -> 'cues') = 'array'
     and jsonb_array_length(p_hints -> 'cues') <= 12
     and coalesce(jsonb_typeof(p_hints -> 'max_chars') = 'number'
                  and (p_hints ->> 'max_chars')::numeric between 100 and 2000, true)
     and not exists (
       select 1 from jsonb_array_elements(p_hints -> 'cues') c
        where jsonb_typeof(c) <> 'object'
           or jsonb_typeof(c -> 'kind') is distinct from 'string'
           or jsonb_typeof(c -> 'text') is distinct from 'string'
           or char_length(c ->> 'text') not between 1 and 300
           or coalesce(jsonb_typeof(c -> 'skip_if'), 'array') <> 'array')
$$;

/** One version of a job type's prompt template. */
create table public.prompt_templates (
  id uuid primary key default gen_random_uuid(),
  job_type public.job_type not null,
  version integer not null check (version >= 1),
  instruction text not null check (char_length(instruction) between 1 and 4000),
  hints jsonb not null default '{"cues": []}' check (private.prompt_hints_valid(hints)),
  note text not null default '' check (char_length(note) <= 500),
  active boolean not null default false,
  updated_by uuid references auth.users (id) on delete set null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  unique (job_type, version)
);

create unique index prompt_templates_one_active_idx on public.prompt_templates (job_type)
  where active;

/** A version is a fact: only whether it is active (and who made it so, when) changes. */
create function private.prompt_templates_guard()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if tg_op = 'DELETE' then
    raise exception 'prompt template versions are kept' using errcode = 'VGJ09';
  end if;
  if to_jsonb(new) - '{active,updated_by,updated_at}'::text[]
     <> to_jsonb(old) - '{active,updated_by,updated_at}'::text[] then
    raise exception 'a prompt template version never changes: save a new one'
      using errcode = 'VGJ09';
  end if;
  new.updated_at := now();
  return new;
end;
$$;

create trigger prompt_templates_guard before update or delete on public.prompt_templates
  for each row execute function private.prompt_templates_guard();

alter table public.prompt_templates enable row level security;

create policy "Admins see every prompt template version" on public.prompt_templates
  for select to authenticated
  using (((select auth.jwt()) -> 'app_metadata' ->> 'role') = 'admin');

revoke all on public.prompt_templates from anon, authenticated;
grant select on public.prompt_templates to authenticated;
grant all on public.prompt_templates to service_role;

insert into public.prompt_templates (job_type, version, instruction, hints, note, active) values
  ('text_to_video', 1,
   'Rewrite the user''s idea as one prompt for a text-to-video model. Keep every subject, '
   'action and detail the user gave, in their order; add a camera move, the lighting, the '
   'motion and a visual style where the user gave none. One paragraph, present tense, no '
   'lists, no quotes, at most 600 characters.',
   '{"max_chars": 600, "cues": [
      {"kind": "camera", "text": "slow cinematic dolly-in, steady framing",
       "skip_if": ["camera", "shot", "dolly", "pan", "zoom", "tracking", "drone", "close-up", "wide"]},
      {"kind": "lighting", "text": "soft natural light with gentle contrast",
       "skip_if": ["light", "lighting", "lit", "sunset", "sunrise", "golden hour", "neon", "night"]},
      {"kind": "motion", "text": "smooth, natural motion",
       "skip_if": ["motion", "slow motion", "timelapse", "time-lapse", "moving"]},
      {"kind": "style", "text": "photorealistic, rich detail, 4k",
       "skip_if": ["style", "anime", "cartoon", "watercolor", "photorealistic", "realistic", "3d", "pixel"]}]}',
   'initial version', true),
  ('image_to_video', 1,
   'Rewrite the user''s idea as one prompt that animates a still image. Keep every subject '
   'and action the user gave; describe how the scene moves and how the camera moves, keep '
   'the image''s look. One paragraph, present tense, at most 500 characters.',
   '{"max_chars": 500, "cues": [
      {"kind": "camera", "text": "gentle parallax push-in",
       "skip_if": ["camera", "shot", "dolly", "pan", "zoom", "tracking", "parallax"]},
      {"kind": "motion", "text": "subtle, natural movement of the subject and background",
       "skip_if": ["motion", "moving", "moves", "wind", "flowing", "timelapse"]},
      {"kind": "style", "text": "keep the original image''s colors and style",
       "skip_if": ["style", "colors", "colours", "look"]}]}',
   'initial version', true),
  ('compose', 1,
   'Rewrite the user''s topic as a clear brief for a short narrated explainer video: the '
   'topic in the user''s words first, then who it is for, the tone and what the viewer '
   'should take away. One paragraph, at most 400 characters.',
   '{"max_chars": 400, "cues": [
      {"kind": "audience", "text": "for a curious general audience",
       "skip_if": ["audience", "for kids", "for children", "beginners", "experts", "students"]},
      {"kind": "tone", "text": "friendly, clear narration",
       "skip_if": ["tone", "friendly", "serious", "funny", "formal", "casual"]},
      {"kind": "structure", "text": "a hook, three key points and a short recap",
       "skip_if": ["hook", "points", "recap", "steps", "sections"]}]}',
   'initial version', true),
  ('narration', 1,
   'Rewrite the user''s text so it reads well aloud: keep every word of meaning, fix '
   'punctuation for natural pauses, and say nothing more. At most 2000 characters.',
   '{"max_chars": 2000, "cues": []}',
   'initial version', true),
  ('script', 1,
   'Rewrite the user''s topic as a brief for a narrated script: the topic in the user''s '
   'words first, then the audience, the tone and the structure. One paragraph, at most 400 '
   'characters.',
   '{"max_chars": 400, "cues": [
      {"kind": "audience", "text": "for a curious general audience",
       "skip_if": ["audience", "for kids", "for children", "beginners", "experts", "students"]},
      {"kind": "structure", "text": "an opening hook, clear sections and a closing takeaway",
       "skip_if": ["hook", "sections", "takeaway", "structure"]}]}',
   'initial version', true),
  ('images', 1,
   'Rewrite the user''s idea as a prompt for one still picture: the subject in the user''s '
   'words first, then the composition, the light and a visual style. One sentence, at most '
   '300 characters.',
   '{"max_chars": 300, "cues": [
      {"kind": "composition", "text": "clear composition, one focal subject",
       "skip_if": ["composition", "close-up", "wide", "portrait", "landscape", "centered"]},
      {"kind": "style", "text": "clean editorial photograph",
       "skip_if": ["style", "photo", "photograph", "illustration", "drawing", "painting", "3d"]}]}',
   'initial version', true),
  ('text_to_image', 1,
   'Rewrite the user''s idea as one prompt for a text-to-image model: the subject in the '
   'user''s words first, then the composition, the light and a visual style where the user '
   'gave none. One sentence or two, no lists, at most 400 characters.',
   '{"max_chars": 400, "cues": [
      {"kind": "composition", "text": "balanced composition, one clear focal subject",
       "skip_if": ["composition", "close-up", "wide", "portrait", "landscape", "centered", "symmetry"]},
      {"kind": "lighting", "text": "soft natural light",
       "skip_if": ["light", "lighting", "lit", "sunset", "sunrise", "golden hour", "neon", "night"]},
      {"kind": "style", "text": "highly detailed, sharp focus",
       "skip_if": ["style", "photo", "photograph", "illustration", "drawing", "painting", "anime", "3d"]}]}',
   'initial version', true),
  ('image_to_image', 1,
   'Rewrite the user''s idea as one prompt that changes a given picture: say what to change '
   'in the user''s words first, and keep the picture''s subject and layout unless told '
   'otherwise. One sentence or two, at most 300 characters.',
   '{"max_chars": 300, "cues": [
      {"kind": "keep", "text": "keep the original composition",
       "skip_if": ["composition", "layout", "keep", "same"]}]}',
   'initial version', true);

/**
 * Service, for the user in the claims: the active template for a model's job type (or a
 * job type), taking the caller's rate-limit slot like a write (`p_request`, module 7) —
 * an enhancement costs no credits but may cost an LLM call. VGM04/VGM03 for a model not
 * found or unavailable, VGT04 when the job type has no active template.
 */
create function service.prompt_template_get(
  p_request jsonb, p_model_id text default null, p_job_type public.job_type default null
)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_type public.job_type := p_job_type;
  v_model public.models;
  v_template public.prompt_templates;
begin
  if p_request ->> 'limit' is not null then
    perform service.rate_limit_take(p_request ->> 'principal', p_request ->> 'bucket',
                                   (p_request ->> 'limit')::integer, 60);
  end if;
  if p_model_id is not null then
    select * into v_model from public.models where id = p_model_id;
    if not found then
      raise exception 'model % not found', p_model_id using errcode = 'VGM04';
    end if;
    if not v_model.is_available then
      raise exception 'model % is not available right now', p_model_id using errcode = 'VGM03';
    end if;
    if p_job_type is not null and p_job_type <> v_model.job_type then
      raise exception 'model % is of job type %, not %', p_model_id, v_model.job_type,
        p_job_type using errcode = 'VGP22';
    end if;
    v_type := v_model.job_type;
  end if;
  if v_type is null then
    raise exception 'give a model or a job_type' using errcode = 'VGP22';
  end if;
  select * into v_template from public.prompt_templates where job_type = v_type and active;
  if not found then
    raise exception 'no active prompt template for %', v_type using errcode = 'VGT04';
  end if;
  return to_jsonb(v_template);
end;
$$;

/**
 * Admin: save a new version of a job type's template (the next version number), active at
 * once unless `p_activate` is false. Concurrent saves of one job type queue on the locks of
 * its versions, so each numbers its own after the other's commit.
 */
create function service.prompt_template_save(
  p_job_type public.job_type, p_instruction text, p_hints jsonb default '{"cues": []}',
  p_note text default '', p_activate boolean default true
)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_template public.prompt_templates;
begin
  perform private.require_admin();
  perform 1 from public.prompt_templates where job_type = p_job_type for update;
  if p_activate then
    update public.prompt_templates set active = false, updated_by = auth.uid()
     where job_type = p_job_type and active;
  end if;
  insert into public.prompt_templates (job_type, version, instruction, hints, note, active,
                                       updated_by)
  values (p_job_type,
          coalesce((select max(version) from public.prompt_templates
                     where job_type = p_job_type), 0) + 1,
          btrim(p_instruction), coalesce(p_hints, '{"cues": []}'), coalesce(p_note, ''),
          p_activate, auth.uid())
  returning * into v_template;
  return to_jsonb(v_template);
end;
$$;

/** Admin: make one version its job type's active template (rolling back is activating an
 * older one). VGT04 when there is no such version. */
create function service.prompt_template_activate(p_template_id uuid)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_template public.prompt_templates;
begin
  perform private.require_admin();
  select * into v_template from public.prompt_templates where id = p_template_id;
  if not found then
    raise exception 'prompt template % not found', p_template_id using errcode = 'VGT04';
  end if;
  perform 1 from public.prompt_templates
   where job_type = v_template.job_type and active for update;
  update public.prompt_templates set active = false, updated_by = auth.uid()
   where job_type = v_template.job_type and active and id <> p_template_id;
  update public.prompt_templates set active = true, updated_by = auth.uid()
   where id = p_template_id and not active;
  select * into v_template from public.prompt_templates where id = p_template_id;
  return to_jsonb(v_template);
end;
$$;

/**
 * Admin (RLS decides): every version, newest first, optionally of one job type. A caller
 * who is not an admin gets VG403 rather than an empty list.
 */
create function public.prompt_templates_list(p_job_type public.job_type default null)
returns jsonb
language plpgsql stable
security invoker
set search_path = ''
as $$
begin
  perform private.require_admin();
  return (select coalesce(jsonb_agg(to_jsonb(t) order by t.job_type, t.version desc), '[]')
            from public.prompt_templates t
           where p_job_type is null or t.job_type = p_job_type);
end;
$$;

-- ===================================================================================
-- The admin view: every job and worker (RLS), requeue or fail a stuck job
-- ===================================================================================

create policy "Admins see every job" on public.jobs
  for select to authenticated
  using (((select auth.jwt()) -> 'app_metadata' ->> 'role') = 'admin');

create policy "Admins see every worker" on public.workers
  for select to authenticated
  using (((select auth.jwt()) -> 'app_metadata' ->> 'role') = 'admin');

grant select on public.workers to authenticated;

/**
 * Admin (RLS decides): a page of every user's jobs, optionally of one status, user or
 * model, removed ones included, sorted by `p_sort` (created | updated | status | cost) in
 * `p_order` (asc | desc; ties by creation, then id): {items, total}. VG403 for anyone else.
 */
create function public.admin_list_jobs(
  p_status public.job_status default null, p_user_id uuid default null,
  p_model_id text default null, p_limit integer default 20, p_offset integer default 0,
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
  perform private.require_admin();
  return jsonb_build_object(
    'total', (select count(*) from public.jobs j
               where (p_status is null or j.status = p_status)
                 and (p_user_id is null or j.user_id = p_user_id)
                 and (p_model_id is null or j.model_id = p_model_id)),
    'items', coalesce((
      select jsonb_agg(private.job_json(x.job) order by x.n)
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
               where (p_status is null or j.status = p_status)
                 and (p_user_id is null or j.user_id = p_user_id)
                 and (p_model_id is null or j.model_id = p_model_id)
               order by n
               limit least(greatest(p_limit, 1), 100) offset greatest(p_offset, 0)) x), '[]'));
end;
$$;

/** Admin (RLS decides): every registered worker by name. VG403 for anyone else. */
create function public.admin_list_workers()
returns jsonb
language plpgsql stable
security invoker
set search_path = ''
as $$
begin
  perform private.require_admin();
  return (select coalesce(jsonb_agg(to_jsonb(w) order by w.name), '[]') from public.workers w);
end;
$$;

/**
 * Admin: put an unfinished job back in the queue now, as the state machine puts back a
 * job whose lease ran out — worker and lease cleared, progress reset, due at once — but
 * not counted as one of its failures. Its attempt number stays: the next dispatch takes
 * the next one, so reports of the abandoned attempt are stale. Its credits stay reserved.
 * Returns {job, notify, provider, provider_job_id} (who had it, to be told to stop).
 */
create function service.admin_job_requeue(p_job_id uuid, p_reason text)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_job public.jobs;
  v_worker public.workers;
begin
  perform private.require_admin();
  select * into v_job from public.jobs where id = p_job_id for update;
  if not found then
    raise exception 'job % not found', p_job_id using errcode = 'VGJ04';
  end if;
  if v_job.status in ('completed', 'failed', 'canceled') then
    raise exception 'job is already %', v_job.status using errcode = 'VGJ09';
  end if;
  select * into v_worker from public.workers where id = v_job.worker_id;
  update public.jobs
     set status = 'queued', worker_id = null, lease_expires_at = null, progress = 0,
         progress_message = null, run_after = now(), error_code = 'ADMIN_REQUEUED',
         error_message = left(p_reason, 2000)
   where id = p_job_id
  returning * into v_job;
  return jsonb_build_object(
    'job', private.job_json(v_job),
    'notify', case when v_worker.id is null then null
                   else jsonb_build_object('worker_id', v_worker.id, 'url', v_worker.url) end,
    'provider', v_job.provider, 'provider_job_id', v_job.provider_job_id);
end;
$$;

/**
 * Admin: fail an unfinished job for good; its reserved credits are released (once: a
 * finished job cannot be failed again, VGJ09), and its unfinished section clips canceled.
 * Returns whom to tell (private.job_cancellation).
 */
create function service.admin_job_fail(p_job_id uuid, p_reason text)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_job public.jobs;
begin
  perform private.require_admin();
  select * into v_job from public.jobs where id = p_job_id for update;
  if not found then
    raise exception 'job % not found', p_job_id using errcode = 'VGJ04';
  end if;
  if v_job.status in ('completed', 'failed', 'canceled') then
    raise exception 'job is already %', v_job.status using errcode = 'VGJ09';
  end if;
  update public.jobs
     set status = 'failed', finished_at = now(), lease_expires_at = null,
         error_code = 'ADMIN_FAILED', error_message = left(p_reason, 2000)
   where id = p_job_id
  returning * into v_job;
  perform private.credits_release(v_job);
  return private.job_cancellation(v_job);
end;
$$;

/**
 * Service, for the admin in the claims: requeue or fail a job as one request (rate limit,
 * key). The answer (stored for the key) is {action, job, worker_notified: false}; "running"
 * (whom to tell, after the commit) goes to the caller only.
 */
create function service.admin_job_request(
  p_request jsonb, p_action text, p_job_id uuid, p_reason text
)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_replay jsonb := private.request_begin(p_request);
  v_done jsonb;
begin
  if v_replay is not null then
    return v_replay;
  end if;
  if p_action = 'requeue' then
    v_done := service.admin_job_requeue(p_job_id, p_reason);
  elsif p_action = 'fail' then
    v_done := service.admin_job_fail(p_job_id, p_reason);
  else
    raise exception 'action must be requeue or fail' using errcode = 'VGP22';
  end if;
  return private.request_finish(p_request, 200, jsonb_build_object(
           'action', p_action, 'job', v_done -> 'job', 'worker_notified', false))
         || jsonb_build_object('running', v_done);
end;
$$;

/**
 * Service, for the admin in the claims: a template change as one request. `p_change` is
 * {"action": "create", job_type, instruction, hints?, note?, activate?} or
 * {"action": "activate", id}; the answer is the version.
 */
create function service.prompt_template_change_request(p_request jsonb, p_change jsonb)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_replay jsonb := private.request_begin(p_request);
  v_status integer := 201;
  v_done jsonb;
begin
  if v_replay is not null then
    return v_replay;
  end if;
  if p_change ->> 'action' = 'create' then
    v_done := service.prompt_template_save(
      (p_change ->> 'job_type')::public.job_type, p_change ->> 'instruction',
      coalesce(p_change -> 'hints', '{"cues": []}'), coalesce(p_change ->> 'note', ''),
      coalesce((p_change ->> 'activate')::boolean, true));
  elsif p_change ->> 'action' = 'activate' then
    v_done := service.prompt_template_activate((p_change ->> 'id')::uuid);
    v_status := 200;
  else
    raise exception 'action must be create or activate' using errcode = 'VGP22';
  end if;
  return private.request_finish(p_request, v_status, v_done);
end;
$$;

-- ===================================================================================
-- Grants (module 9's blanket grants cover modules 1–8 only)
-- ===================================================================================

revoke execute on function private.require_admin(), private.prompt_hints_valid(jsonb),
  private.prompt_templates_guard()
  from public, anon, authenticated;
revoke execute on function
  service.prompt_template_get(jsonb, text, public.job_type),
  service.prompt_template_save(public.job_type, text, jsonb, text, boolean),
  service.prompt_template_activate(uuid), public.prompt_templates_list(public.job_type),
  public.admin_list_jobs(public.job_status, uuid, text, integer, integer, text, text),
  public.admin_list_workers(), service.admin_job_requeue(uuid, text),
  service.admin_job_fail(uuid, text), service.admin_job_request(jsonb, text, uuid, text),
  service.prompt_template_change_request(jsonb, jsonb)
  from public, anon, authenticated;

-- The admin reads are security invoker: RLS decides what they return, and an admin may
-- call them over PostgREST with their own token. The writes are service-only, as every
-- write here (rate limit, key, the worker told after commit).
grant execute on function private.require_admin() to authenticated;
grant execute on function public.prompt_templates_list(public.job_type),
  public.admin_list_jobs(public.job_status, uuid, text, integer, integer, text, text),
  public.admin_list_workers()
  to authenticated;
grant execute on function private.require_admin(), private.prompt_hints_valid(jsonb),
  private.prompt_templates_guard()
  to service_role;
grant execute on function
  service.prompt_template_get(jsonb, text, public.job_type),
  service.prompt_template_save(public.job_type, text, jsonb, text, boolean),
  service.prompt_template_activate(uuid), public.prompt_templates_list(public.job_type),
  public.admin_list_jobs(public.job_status, uuid, text, integer, integer, text, text),
  public.admin_list_workers(), service.admin_job_requeue(uuid, text),
  service.admin_job_fail(uuid, text), service.admin_job_request(jsonb, text, uuid, text),
  service.prompt_template_change_request(jsonb, jsonb)
  to service_role;
