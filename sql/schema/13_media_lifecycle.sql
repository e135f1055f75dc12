/*
 * Module 13: the media lifecycle. An owner removes a finished job from their history
 * (soft delete: the job row and its ledger entries stay, its files go); the sweep removes
 * the files of removed jobs and of outputs past their retention, and uploads past theirs.
 * Files live in Storage, so the functions remove them through the Storage API and then
 * record it here (output_expired_at): a job whose files are gone answers no links.
 */

/** Remove a finished job from its owner's history (the owner, or the service). */
create function private.job_delete(p_job_id uuid)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_job public.jobs;
begin
  select * into v_job from public.jobs where id = p_job_id for update;
  if not found or v_job.deleted_at is not null
     or (auth.role() <> 'service_role' and v_job.user_id is distinct from auth.uid()) then
    raise exception 'job % not found', p_job_id using errcode = 'VGJ04';
  end if;
  if v_job.finished_at is null then
    raise exception 'job is still %: cancel it first', v_job.status using errcode = 'VGJ09';
  end if;
  update public.jobs set deleted_at = now() where id = p_job_id returning * into v_job;
  return private.job_json(v_job);
end;
$$;

/** Service, for the user in the claims: private.job_delete as one request (rate limit, key). */
create function service.job_delete_request(p_request jsonb, p_job_id uuid)
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
  return private.request_finish(p_request, 200, private.job_delete(p_job_id));
end;
$$;

/**
 * The other files of a job's output in the `videos` bucket: every `…_path` but the video's,
 * the picture's and the thumbnail's (a composed video's webm, gif, mp3, poster, vtt, srt).
 */
create function private.job_output_files(p_output jsonb)
returns jsonb
language sql immutable
set search_path = ''
as $$
  select coalesce(jsonb_agg(value order by key), '[]')
    from jsonb_each_text(coalesce(p_output, '{}'))
   where key like '%\_path' and key not in ('video_path', 'image_path', 'thumbnail_path')
$$;

/**
 * Service (sweep): outputs whose files are due for removal — of jobs removed from history,
 * and of jobs finished longer ago than their owner's retention: the tier's
 * output_retention_days and the deployment's p_retention_days (0: none), the shorter of
 * the two when both are set (kept until removed when neither is).
 */
create function service.jobs_list_outputs_due(p_retention_days integer, p_limit integer default 200)
returns jsonb
language sql
stable
security definer
set search_path = ''
as $$
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
$$;

/** Service: the files of these jobs were removed; returns how many jobs it marked. */
create function service.jobs_mark_outputs_expired(p_job_ids uuid[])
returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_count integer;
begin
  update public.jobs set output_expired_at = now()
   where id = any(p_job_ids) and output_expired_at is null and finished_at is not null;
  get diagnostics v_count = row_count;
  return v_count;
end;
$$;

/** Service (sweep): uploads older than p_retention_days that no unfinished job names. */
create function service.uploads_list_due(p_retention_days integer, p_limit integer default 200)
returns text[]
language sql
stable
security definer
set search_path = ''
as $$
  select coalesce(array_agg(o.name order by o.created_at), '{}')
    from (select o.name, o.created_at from storage.objects o
           where o.bucket_id = 'uploads' and p_retention_days > 0
             and o.created_at < now() - make_interval(days => p_retention_days)
             and not exists (
               select 1 from public.jobs j
                where j.status in ('queued', 'dispatched', 'processing')
                  and (j.params ->> 'image_path' = o.name or j.params ->> 'music_path' = o.name
                       or coalesce(j.params -> 'images', '[]') ? o.name))
           order by o.created_at
           limit greatest(p_limit, 1)) o
$$;

revoke execute on function private.job_delete(uuid), service.job_delete_request(jsonb, uuid),
  service.jobs_list_outputs_due(integer, integer), service.jobs_mark_outputs_expired(uuid[]),
  service.uploads_list_due(integer, integer), private.job_output_files(jsonb)
  from public, anon, authenticated;
grant execute on function private.job_delete(uuid), service.job_delete_request(jsonb, uuid),
  service.jobs_list_outputs_due(integer, integer), service.jobs_mark_outputs_expired(uuid[]),
  service.uploads_list_due(integer, integer), private.job_output_files(jsonb)
  to service_role;
