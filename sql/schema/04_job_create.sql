/*
 * Module 4: a user's jobs — insert one checked against the tier's limits and spend caps,
 * create it with its reserve, cancel it with its release.
 */

-- ===================================================================================
-- Users: create, cancel
-- ===================================================================================

/**
 * A create's delivery options, checked: {webhook?, webhook_events?, cancel_after_seconds?}
 * → {webhook, webhook_events (default completed, failed, canceled), cancel_after_seconds}
 * with only what was given. The functions check the webhook's host (public_http); here
 * its form. VGP22 for anything else.
 */
create function private.job_delivery(p_delivery jsonb)
returns jsonb
language plpgsql immutable
set search_path = ''
as $$
declare
  v_out jsonb := '{}';
  v_webhook text;
  v_events jsonb;
  v_seconds numeric;
begin
  if p_delivery is null or p_delivery = '{}'::jsonb then
    return v_out;
  end if;
  if jsonb_typeof(p_delivery) <> 'object'
     or exists (select 1 from jsonb_object_keys(p_delivery) k
                 where k not in ('webhook', 'webhook_events', 'cancel_after_seconds')) then
    raise exception 'delivery options are {webhook, webhook_events, cancel_after_seconds}'
      using errcode = 'VGP22';
  end if;
  v_webhook := nullif(btrim(p_delivery ->> 'webhook'), '');
  v_events := coalesce(p_delivery -> 'webhook_events', '["completed", "failed", "canceled"]');
  if v_webhook is not null then
    if v_webhook !~ '^https?://[^/?#]' or char_length(v_webhook) > 2048 then
      raise exception 'webhook must be an https URL of at most 2048 characters'
        using errcode = 'VGP22';
    end if;
    if jsonb_typeof(v_events) <> 'array' or exists (
         select 1 from jsonb_array_elements(v_events) e
          where jsonb_typeof(e) <> 'string'
             or e #>> '{}' not in ('started', 'progress', 'completed', 'failed', 'canceled')) then
      raise exception 'webhook_events are some of started, progress, completed, failed, canceled'
        using errcode = 'VGP22';
    end if;
    v_out := jsonb_build_object('webhook', v_webhook, 'webhook_events',
               (select coalesce(jsonb_agg(distinct e), '[]') from jsonb_array_elements(v_events) e));
  elsif p_delivery ? 'webhook_events' and p_delivery -> 'webhook_events' <> 'null'::jsonb then
    raise exception 'webhook_events needs a webhook' using errcode = 'VGP22';
  end if;
  if p_delivery -> 'cancel_after_seconds' is not null
     and p_delivery -> 'cancel_after_seconds' <> 'null'::jsonb then
    if jsonb_typeof(p_delivery -> 'cancel_after_seconds') <> 'number' then
      raise exception 'cancel_after is a number of seconds' using errcode = 'VGP22';
    end if;
    v_seconds := (p_delivery ->> 'cancel_after_seconds')::numeric;
    if v_seconds not between 1 and 604800 then
      raise exception 'cancel_after is 1 second to 7 days' using errcode = 'VGP22';
    end if;
    v_out := v_out || jsonb_build_object('cancel_after_seconds', v_seconds);
  end if;
  return v_out;
end;
$$;

/**
 * Check a model and params for the user, price them and insert the queued job — no money
 * yet: service.job_create and service.batch_create (module 14) reserve after it. A project named must be
 * the user's own (VGR04 otherwise). `p_delivery` is {webhook?, webhook_events?,
 * cancel_after_seconds?} (module 22; private.job_delivery).
 */
create function private.job_insert(
  p_uid uuid, p_model_id text, p_params jsonb, p_priority integer,
  p_project_id uuid default null, p_batch_id uuid default null, p_delivery jsonb default null
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
 * A compose job's generated section clips (`params.section_clips`: per section null or
 * {model, prompt, image_path?, duration?}): each becomes a text- or image-to-video job of
 * its own (its own price, reserved now, in the compose job's transaction; the frame of
 * the compose job), and the compose job waits for them (`waiting_for`: not handed to a
 * worker or rendered until each has finished, private.section_clip_finished). Returns
 * the compose job with each clip's `job_id` in its params.
 */
create function private.section_clips_create(p_job public.jobs)
returns public.jobs
language plpgsql
security definer
set search_path = ''
as $$
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
$$;

/**
 * A section clip has finished (completed, failed or canceled; a failure has released its
 * own reservation already): its compose job's params say so — `status`, and the clip's
 * `video_path` when it completed (a failed one leaves the section a still) — and the
 * compose job stops waiting for it; with nothing left to wait for, a queued compose job
 * is handed out as any other.
 */
create function private.section_clip_finished()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
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
$$;

create trigger jobs_section_clip_finished
  after update of status on public.jobs
  for each row
  when (new.parent_job_id is not null
        and new.status in ('completed', 'failed', 'canceled')
        and old.status not in ('completed', 'failed', 'canceled'))
  execute function private.section_clip_finished();

/**
 * A compose job that ends before its section clips have (canceled by its owner, a batch
 * cancel, the deadline sweep; failed by an admin) takes them with it: each unfinished clip
 * is canceled — error_code PARENT_CANCELED or PARENT_FAILED — and its reservation released,
 * in the same transaction, whoever ended the compose job. Whom to tell (the clip's worker
 * or provider) comes back with the compose job (private.job_cancellation).
 */
create function private.section_clips_cancel()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_clip public.jobs;
begin
  for v_clip in select * from public.jobs
                 where id = any(new.waiting_for) and finished_at is null
                 order by id
                   for update loop
    update public.jobs
       set status = 'canceled', finished_at = now(), lease_expires_at = null,
           error_code = 'PARENT_' || upper(new.status::text),
           error_message = format('canceled: its compose job %s was %s', new.id, new.status)
     where id = v_clip.id
    returning * into v_clip;
    perform private.credits_release(v_clip);
  end loop;
  return null;
end;
$$;

create trigger jobs_section_clips_cancel
  after update of status on public.jobs
  for each row
  when (cardinality(new.waiting_for) > 0
        and new.status in ('failed', 'canceled')
        and old.status not in ('completed', 'failed', 'canceled'))
  execute function private.section_clips_cancel();

/**
 * Create a job for the caller: check the model and params, price it, enforce the
 * concurrent-job limit and the spend caps (`p_max_credits`, the tier's daily cap), reserve
 * the cost and queue it — one transaction. `p_delivery`: its webhook and deadline.
 */
create function service.job_create(
  p_model_id text, p_params jsonb default '{}', p_priority integer default 0,
  p_project_id uuid default null, p_max_credits bigint default null,
  p_delivery jsonb default null
)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
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
$$;

/**
 * Whom to tell, after the commit, that a job ended before it finished: the job, the worker
 * that had it (`notify`: its id and url) and the provider's job.
 */
create function private.job_notice(p_job public.jobs)
returns jsonb
language sql
stable
security definer
set search_path = ''
as $$
  select jsonb_build_object(
    'job', private.job_json(p_job),
    'notify', (select jsonb_build_object('worker_id', w.id, 'url', w.url)
                 from public.workers w where w.id = p_job.worker_id),
    'provider', p_job.provider, 'provider_job_id', p_job.provider_job_id)
$$;

/**
 * private.job_notice for a job that was just canceled or failed, with `clips`: the notices
 * of its section clips that ended with it in this transaction (private.section_clips_cancel)
 * and had a worker or a provider job.
 */
create function private.job_cancellation(p_job public.jobs)
returns jsonb
language sql
stable
security definer
set search_path = ''
as $$
  select private.job_notice(p_job) || jsonb_build_object('clips', coalesce((
    select jsonb_agg(private.job_notice(c) order by c.id)
      from public.jobs c
     where c.parent_job_id = p_job.id and c.finished_at = now()
       and c.error_code in ('PARENT_CANCELED', 'PARENT_FAILED')
       and (c.worker_id is not null or c.provider_job_id is not null)), '[]'))
$$;

/** Whether a private.job_cancellation names anybody to tell. */
create function private.job_cancellation_tells(p_notice jsonb)
returns boolean
language sql
immutable
set search_path = ''
as $$
  select p_notice -> 'notify' <> 'null'::jsonb or p_notice ->> 'provider_job_id' is not null
         or p_notice -> 'clips' <> '[]'::jsonb
$$;

/**
 * Cancel a job that has not finished: the owner (or the service) may; credits are
 * released, and those of its unfinished section clips. Returns whom to tell
 * (private.job_cancellation).
 */
create function service.job_cancel(p_job_id uuid)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_job public.jobs;
begin
  select * into v_job from public.jobs where id = p_job_id for update;
  if not found or (auth.role() <> 'service_role' and v_job.user_id is distinct from auth.uid()) then
    raise exception 'job % not found', p_job_id using errcode = 'VGJ04';
  end if;
  if v_job.status in ('completed', 'failed', 'canceled') then
    raise exception 'job is already %', v_job.status using errcode = 'VGJ09';
  end if;
  update public.jobs
     set status = 'canceled', finished_at = now(), lease_expires_at = null,
         error_code = 'CANCELED', error_message = 'canceled by request'
   where id = p_job_id
  returning * into v_job;
  perform private.credits_release(v_job);
  return private.job_cancellation(v_job);
end;
$$;

