-- Element composition: a compose job may give its timeline itself (params.elements: video,
-- image, audio and text elements placed in time, on the frame and by layer). The compose
-- job type takes the new key, and a timeline without a duration is priced by its length
-- (the end of its last element in whole seconds, at least the model's minimum). The
-- uploads bucket takes the videos an element names (mp4, mov, avi, webm).

update storage.buckets
   set allowed_mime_types = array['image/png', 'image/jpeg', 'image/webp',
         'audio/mpeg', 'audio/mp4', 'audio/wav', 'audio/x-wav', 'audio/ogg',
         'video/mp4', 'video/quicktime', 'video/x-msvideo', 'video/avi', 'video/webm']
 where id = 'uploads';

create or replace function private.job_type_params(p_job_type public.job_type)
returns text[]
language sql immutable
set search_path = ''
as $$
  select case p_job_type
    when 'text_to_video' then
      '{prompt,negative_prompt,duration,aspect_ratio,resolution,seed,fps}'::text[]
    when 'image_to_video' then
      '{prompt,negative_prompt,image_path,duration,aspect_ratio,resolution,seed,fps}'::text[]
    when 'compose' then
      '{prompt,topic,script,sections,voice,language,speaking_rate,images,music_path,captions,elements,duration,aspect_ratio,resolution,fps}'::text[]
    when 'narration' then '{prompt,voice,language,speaking_rate,duration}'::text[]
    when 'script' then '{prompt,topic,sections,language,duration}'::text[]
  end
$$;

create or replace function private.normalize_params(p_model public.models, p_params jsonb)
returns jsonb
language plpgsql stable
set search_path = ''
as $$
declare
  v_duration integer;
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
  v_duration := coalesce((p_params ->> 'duration')::integer, v_duration,
                         p_model.default_duration_s);
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
