-- Hardening (issue 8): errors a client can act on, params each job type takes, outputs kept
-- in the owner's folder, user writes only through the functions, one event shape.

/** Apply one change to a profile and append its ledger row; the single write path. */
create or replace function private.ledger_apply(
  p_user_id uuid,
  p_kind public.ledger_kind,
  p_amount bigint,
  p_hold bigint,
  p_job_id uuid default null,
  p_external_id text default null,
  p_description text default ''
)
returns public.credit_ledger
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_profile public.profiles;
  v_row public.credit_ledger;
begin
  update public.profiles
     set balance = balance + p_amount,
         reserved = reserved + p_hold
   where id = p_user_id
     and balance + p_amount >= 0
     and reserved + p_hold >= 0
  returning * into v_profile;

  if not found then
    select * into v_profile from public.profiles where id = p_user_id;
    if not found then
      raise exception 'no profile for user %', p_user_id using errcode = 'VG404';
    end if;
    -- DETAIL is JSON: the client shows "you need 65, you have 59" from it.
    raise exception 'not enough credits: this needs %, you have % to spend', -p_amount,
      v_profile.balance
      using errcode = 'VG402', hint = 'Buy credits or claim the initial grant.',
            detail = jsonb_build_object('required', -p_amount, 'balance', v_profile.balance,
                                        'reserved', v_profile.reserved)::text;
  end if;

  insert into public.credit_ledger
    (user_id, kind, amount, hold, balance_after, reserved_after, job_id, external_id, description)
  values
    (p_user_id, p_kind, p_amount, p_hold, v_profile.balance, v_profile.reserved,
     p_job_id, p_external_id, p_description)
  returning * into v_row;
  return v_row;
end;
$$;

/** The params keys a job type takes (the typed shapes are the functions' JobParams). */
create function private.job_type_params(p_job_type public.job_type)
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
      '{prompt,topic,script,sections,voice,language,speaking_rate,images,music_path,captions,duration,aspect_ratio,resolution,fps}'::text[]
    when 'narration' then '{prompt,voice,language,speaking_rate,duration}'::text[]
    when 'script' then '{prompt,topic,sections,language,duration}'::text[]
  end
$$;

/** Normalise request params against the model's limits; raises VGP22 with the reason. */
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
  v_duration := coalesce((p_params ->> 'duration')::integer, p_model.default_duration_s);
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
create or replace function public.job_complete(
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

/**
 * Every status or progress change → one job_events row and one broadcast on the
 * owner's private topic `user:<uid>:jobs` (see realtime.messages policies).
 */
create or replace function private.jobs_emit_event()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_event text;
  v_row public.job_events;
begin
  if tg_op = 'INSERT' then
    v_event := 'created';
  elsif new.status is distinct from old.status then
    v_event := new.status::text;
  elsif new.progress is distinct from old.progress then
    v_event := 'progress';
  else
    return null;
  end if;

  insert into public.job_events (job_id, user_id, event, status, progress, attempt, data)
  values (new.id, new.user_id, v_event, new.status, new.progress, new.attempt,
          jsonb_strip_nulls(jsonb_build_object(
            'message', new.progress_message, 'error_code', new.error_code,
            'error_message', new.error_message,
            'output', case when new.status = 'completed' then new.output end,
            'run_after', case when new.status = 'queued' and tg_op = 'UPDATE' then new.run_after end)))
  returning * into v_row;

  -- The payload is the job_events row as GET ?id= returns it: one shape for both.
  perform realtime.send(
    to_jsonb(v_row) - 'user_id',
    'job_' || v_event,
    'user:' || new.user_id || ':jobs',
    true);
  return null;
end;
$$;

/**
 * Refuse claims whose user Supabase Auth does not know (deleted, or a token it never
 * issued): the functions run this first in every user's transaction. Raises VGU01.
 */
create function private.require_known_user()
returns void
language plpgsql stable
security definer
set search_path = ''
as $$
begin
  if not exists (select 1 from auth.users u
                  where u.id = (select auth.uid()) and u.deleted_at is null) then
    raise exception 'the access token''s user does not exist' using errcode = 'VGU01';
  end if;
end;
$$;

revoke all on function private.job_type_params(public.job_type),
  private.check_job_output(public.jobs, jsonb), private.require_known_user() from public;
grant execute on function private.require_known_user() to authenticated;
grant execute on function private.job_type_params(public.job_type),
  private.check_job_output(public.jobs, jsonb), private.require_known_user() to service_role;

-- Writes are service-only: the functions call them for the user after auth, rate limit
-- and idempotency, and route the job after commit.
revoke execute on function public.create_job(text, jsonb, integer), public.cancel_job(uuid),
  public.claim_initial_grant() from authenticated;
