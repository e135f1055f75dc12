-- Migration compose_outputs_captions: drafted by `make migration` from sql/schema; review before committing.
-- Write by hand only what a diff cannot express: data moves, backfills, renames (drafted
-- as drop + create), default privileges.
-- Unsafe statements (drops): none. (The draft dropped and re-added subscription_plans'
-- foreign key to tier_limits, which nothing here changes; removed by hand.)


set check_function_bodies = off;

CREATE OR REPLACE FUNCTION private.job_output_files(p_output jsonb)
 RETURNS jsonb
 LANGUAGE sql
 IMMUTABLE
 SET search_path TO ''
AS $function$
  select coalesce(jsonb_agg(value order by key), '[]')
    from jsonb_each_text(coalesce(p_output, '{}'))
   where key like '%\_path' and key not in ('video_path', 'image_path', 'thumbnail_path')
$function$
;

CREATE OR REPLACE FUNCTION private.job_insert(p_uid uuid, p_model_id text, p_params jsonb, p_priority integer, p_project_id uuid DEFAULT NULL::uuid, p_batch_id uuid DEFAULT NULL::uuid, p_delivery jsonb DEFAULT NULL::jsonb)
 RETURNS public.jobs
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  v_model public.models;
  v_params jsonb;
  v_job public.jobs;
  v_delivery jsonb := private.job_delivery(p_delivery);
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
                           provider, project_id, batch_id, webhook, webhook_events, deadline_at)
  values (p_uid, v_model.id, v_model.job_type, v_params, p_priority,
          private.job_price(v_model, v_params), v_model.max_attempts, v_model.provider,
          p_project_id, p_batch_id, v_delivery ->> 'webhook',
          case when v_delivery ? 'webhook'
               then array(select jsonb_array_elements_text(v_delivery -> 'webhook_events')) end,
          now() + make_interval(secs => (v_delivery ->> 'cancel_after_seconds')::double precision))
  returning * into v_job;
  if v_job.webhook is not null then
    perform private.webhook_secret_of(p_uid);  -- the key its deliveries are signed with
  end if;
  return v_job;
end;
$function$
;

CREATE OR REPLACE FUNCTION private.job_price(p_model public.models, p_params jsonb)
 RETURNS bigint
 LANGUAGE plpgsql
 STABLE
 SET search_path TO ''
AS $function$
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
      '{prompt,topic,script,sections,voice,language,speaking_rate,images,music_path,narration_paths,captions,caption_style,formats,poster,size,transition,elements,section_clips,duration,aspect_ratio,resolution,fps}'::text[]
    when 'narration' then '{prompt,script,voice,language,speaking_rate,duration,fps}'::text[]
    when 'script' then '{prompt,topic,script,instruction,sections,language,duration}'::text[]
    when 'images' then
      '{prompt,script,source,timings,speaking_rate,duration,aspect_ratio,resolution}'::text[]
    when 'text_to_image' then '{prompt,negative_prompt,aspect_ratio,resolution,seed}'::text[]
    when 'image_to_image' then
      '{prompt,negative_prompt,image_path,strength,aspect_ratio,resolution,seed}'::text[]
  end || '{original_prompt}'::text[]
$function$
;

CREATE OR REPLACE FUNCTION private.normalize_params(p_model public.models, p_params jsonb)
 RETURNS jsonb
 LANGUAGE plpgsql
 STABLE
 SET search_path TO ''
AS $function$
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
$function$
;

CREATE OR REPLACE FUNCTION service.job_create(p_model_id text, p_params jsonb DEFAULT '{}'::jsonb, p_priority integer DEFAULT 0, p_project_id uuid DEFAULT NULL::uuid, p_max_credits bigint DEFAULT NULL::bigint, p_delivery jsonb DEFAULT NULL::jsonb)
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
  v_job := private.job_insert(v_uid, p_model_id, p_params, p_priority, p_project_id, null,
                             p_delivery);
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

CREATE OR REPLACE FUNCTION service.jobs_list_outputs_due(p_retention_days integer, p_limit integer DEFAULT 200)
 RETURNS jsonb
 LANGUAGE sql
 STABLE SECURITY DEFINER
 SET search_path TO ''
AS $function$
  select coalesce(jsonb_agg(jsonb_build_object(
           'id', j.id, 'video_path', j.output ->> 'video_path',
           'image_path', j.output ->> 'image_path',
           'thumbnail_path', j.output ->> 'thumbnail_path',
           'files', private.job_output_files(j.output))), '[]')
    from (select * from public.jobs j
           where j.output_expired_at is null
             and (j.output ? 'video_path' or j.output ? 'image_path'
                  or j.output ? 'thumbnail_path')
             and ((j.deleted_at is not null)
                  or (j.finished_at is not null
                      and j.finished_at < now() - make_interval(days => (
                        select least(nullif(p_retention_days, 0), l.output_retention_days)
                          from private.tier_limits_of(j.user_id) l))))
           order by j.finished_at
           limit greatest(p_limit, 1)) j
$function$
;

alter table "private"."tier_limits" add column "max_frame_pixels" integer not null default 2073600;

alter table "private"."tier_limits" add constraint "tier_limits_max_frame_pixels_check" CHECK (((max_frame_pixels >= 2073600) AND (max_frame_pixels <= 8294400))) not valid;

alter table "private"."tier_limits" validate constraint "tier_limits_max_frame_pixels_check";

-- By hand (data): the videos bucket takes a composed video's other forms and uploads the
-- narration step's word timings (sql/schema/12), and the reference compose model renders
-- 4:5 too (supabase/seed.sql).
update storage.buckets
   set allowed_mime_types = array['video/mp4', 'video/webm', 'image/gif', 'audio/mpeg',
                                  'image/png', 'image/jpeg', 'text/vtt', 'application/x-subrip']
 where id = 'videos';

update storage.buckets
   set allowed_mime_types = array['image/png', 'image/jpeg', 'image/webp',
         'audio/mpeg', 'audio/mp4', 'audio/wav', 'audio/x-wav', 'audio/ogg',
         'video/mp4', 'video/quicktime', 'video/x-msvideo', 'video/avi', 'video/webm',
         'application/json']
 where id = 'uploads';

update public.models
   set aspect_ratios = aspect_ratios || '{4:5}'::text[]
 where id = 'reference/compose' and not '4:5' = any(aspect_ratios);

-- The premium tier renders custom frames up to 4K's pixels (sql/schema/01).
update private.tier_limits set max_frame_pixels = 3840 * 2160 where tier = 'premium';
