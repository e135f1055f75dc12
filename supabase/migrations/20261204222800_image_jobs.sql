/*
 * Still pictures as jobs of their own (text_to_image, image_to_image) with an `images`
 * output bucket; the catalogue listed featured first and filtered by category.
 *
 * Written by hand: a diff drafts the new enum values as drop + create of public.job_type
 * (which every jobs row depends on). `alter type … add value` keeps the type; the new
 * values are only compared as text in this transaction (private.job_type_params), never
 * used as values, so the file runs as one transaction.
 */

alter type public.job_type add value if not exists 'text_to_image';
alter type public.job_type add value if not exists 'image_to_image';

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
      '{prompt,topic,script,sections,voice,language,speaking_rate,images,music_path,narration_paths,captions,elements,duration,aspect_ratio,resolution,fps}'::text[]
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

drop function if exists public.list_models();

create or replace function public.list_models(p_category text default null)
returns jsonb
language sql stable
security invoker
set search_path = ''
as $$
  select coalesce(jsonb_agg(to_jsonb(m) - 'provider_model_id'
                            order by m.featured desc, m.category, m.id), '[]')
    from public.models m
   where m.is_available and (p_category is null or m.category = p_category)
$$;

revoke execute on function public.list_models(text) from public, anon, authenticated;
grant execute on function public.list_models(text) to anon, authenticated;
grant execute on function public.list_models(text) to service_role;

CREATE OR REPLACE FUNCTION service.jobs_list_outputs_due(p_retention_days integer, p_limit integer DEFAULT 200)
 RETURNS jsonb
 LANGUAGE sql
 STABLE SECURITY DEFINER
 SET search_path TO ''
AS $function$
  select coalesce(jsonb_agg(jsonb_build_object(
           'id', j.id, 'video_path', j.output ->> 'video_path',
           'image_path', j.output ->> 'image_path',
           'thumbnail_path', j.output ->> 'thumbnail_path')), '[]')
    from (select * from public.jobs j
           where j.output_expired_at is null
             and (j.output ? 'video_path' or j.output ? 'image_path'
                  or j.output ? 'thumbnail_path')
             and ((j.deleted_at is not null)
                  or (p_retention_days > 0 and j.finished_at is not null
                      and j.finished_at < now() - make_interval(days => p_retention_days)))
           order by j.finished_at
           limit greatest(p_limit, 1)) j
$function$
;

-- The `images` bucket: generated pictures; read by their owner, written by the service.
insert into storage.buckets (id, name, public, file_size_limit, allowed_mime_types)
values ('images', 'images', false, 52428800, array['image/png', 'image/jpeg', 'image/webp'])
on conflict (id) do update
  set name = excluded.name,
      public = excluded.public,
      file_size_limit = excluded.file_size_limit,
      allowed_mime_types = excluded.allowed_mime_types;

drop policy if exists "Users read their own videos and thumbnails" on storage.objects;
create policy "Users read their own videos and thumbnails" on storage.objects
  for select to authenticated
  using (
    bucket_id in ('videos', 'images', 'thumbnails')
    and (storage.foldername(name))[1] = (select auth.uid())::text
  );
