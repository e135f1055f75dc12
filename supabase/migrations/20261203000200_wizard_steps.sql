-- The creation wizard's steps as jobs (videogen.steps): a job type for the images of a
-- script, and the params each step takes to feed the next (narration_paths for compose).

alter type public.job_type add value if not exists 'images';

/**
 * The params keys a job type takes (the typed shapes are the functions' JobParams). The
 * wizard's steps (script, narration, images) feed each other and the compose job
 * (videogen.steps). Compared as text: a migration that adds a type can create this too.
 */
create or replace function private.job_type_params(p_job_type public.job_type)
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
      '{prompt,topic,script,sections,voice,language,speaking_rate,images,music_path,narration_paths,captions,duration,aspect_ratio,resolution,fps}'::text[]
    when 'narration' then '{prompt,script,voice,language,speaking_rate,duration,fps}'::text[]
    when 'script' then '{prompt,topic,script,instruction,sections,language,duration}'::text[]
    when 'images' then
      '{prompt,script,source,timings,speaking_rate,duration,aspect_ratio,resolution}'::text[]
  end
$$;
