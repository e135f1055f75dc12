-- Migration webhooks_deadlines: drafted by `make migration` from sql/schema; review before committing.
-- Write by hand only what a diff cannot express: data moves, backfills, renames (drafted
-- as drop + create), default privileges.
-- Unsafe statements: the old signatures of private.job_insert, service.job_create(_request)
-- and service.batch_create(_request) are dropped: each gained p_delivery (webhook, deadline).
-- Reordered by hand: tables and columns first, then the functions whose types use them
-- (the draft's drop and re-add of unchanged foreign keys left out).

create table "private"."webhook_signing_secrets" (
    "user_id" uuid not null,
    "secret" text not null,
    "created_at" timestamp with time zone not null default now(),
    "rotated_at" timestamp with time zone
);

alter table "private"."webhook_signing_secrets" enable row level security;

create table "public"."webhook_deliveries" (
    "id" uuid not null default gen_random_uuid(),
    "user_id" uuid not null,
    "job_id" uuid not null,
    "event" text not null,
    "url" text not null,
    "status" text not null default 'pending'::text,
    "attempts" integer not null default 0,
    "next_attempt_at" timestamp with time zone default now(),
    "lease_expires_at" timestamp with time zone,
    "last_status_code" integer,
    "last_error" text,
    "created_at" timestamp with time zone not null default now(),
    "delivered_at" timestamp with time zone
);

alter table "public"."webhook_deliveries" enable row level security;

create table "public"."webhook_delivery_attempts" (
    "id" bigint generated always as identity not null,
    "delivery_id" uuid not null,
    "user_id" uuid not null,
    "attempt" integer not null,
    "status_code" integer,
    "error" text,
    "duration_ms" integer,
    "next_attempt_at" timestamp with time zone,
    "created_at" timestamp with time zone not null default now()
);

alter table "public"."webhook_delivery_attempts" enable row level security;

alter table "public"."jobs" add column "webhook" text;

alter table "public"."jobs" add column "webhook_events" text[];

alter table "public"."jobs" add column "deadline_at" timestamp with time zone;

drop function if exists "private"."job_insert"(p_uid uuid, p_model_id text, p_params jsonb, p_priority integer, p_project_id uuid, p_batch_id uuid);

drop function if exists "service"."batch_create"(p_items jsonb, p_project_id uuid, p_title text, p_max_credits bigint);

drop function if exists "service"."batch_create_request"(p_request jsonb, p_items jsonb, p_project_id uuid, p_title text, p_max_credits bigint);

drop function if exists "service"."job_create"(p_model_id text, p_params jsonb, p_priority integer, p_project_id uuid, p_max_credits bigint);

drop function if exists "service"."job_create_request"(p_request jsonb, p_model_id text, p_params jsonb, p_priority integer, p_project_id uuid, p_max_credits bigint);

set check_function_bodies = off;

CREATE OR REPLACE FUNCTION private.job_delivery(p_delivery jsonb)
 RETURNS jsonb
 LANGUAGE plpgsql
 IMMUTABLE
 SET search_path TO ''
AS $function$
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
$function$
;

CREATE OR REPLACE FUNCTION private.job_get_json(p_job public.jobs)
 RETURNS jsonb
 LANGUAGE sql
 STABLE
 SET search_path TO ''
AS $function$
  select private.job_read_json(p_job) || jsonb_build_object('events', coalesce((
           select jsonb_agg(to_jsonb(e) - 'user_id' order by e.id)
             from public.job_events e where e.job_id = p_job.id), '[]'))
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

CREATE OR REPLACE FUNCTION private.webhook_enqueue(p_job public.jobs, p_job_event text, p_old_status public.job_status)
 RETURNS void
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  v_event text;
  v_id uuid;
begin
  v_event := case
    when p_job_event = 'processing' and p_old_status is distinct from 'processing' then 'started'
    when p_job_event in ('progress', 'completed', 'failed', 'canceled') then p_job_event
  end;
  if v_event is null or p_job.webhook is null
     or not (v_event = any (coalesce(p_job.webhook_events, '{}'))) then
    return;
  end if;
  if v_event = 'progress' and exists (
       select 1 from public.webhook_deliveries d
        where d.job_id = p_job.id and d.event = 'progress'
          and d.created_at > clock_timestamp() - interval '500 milliseconds') then
    return;
  end if;
  insert into public.webhook_deliveries (user_id, job_id, event, url, created_at)
  values (p_job.user_id, p_job.id, v_event, p_job.webhook, clock_timestamp())
  returning id into v_id;
  perform pg_notify('videogen_webhooks', v_id::text);
end;
$function$
;

CREATE OR REPLACE FUNCTION private.webhook_secret_new()
 RETURNS text
 LANGUAGE sql
 SET search_path TO ''
AS $function$
  select 'whsec_' || encode(decode(replace(gen_random_uuid()::text || gen_random_uuid()::text,
                                           '-', ''), 'hex'), 'base64')
$function$
;

CREATE OR REPLACE FUNCTION private.webhook_secret_of(p_uid uuid)
 RETURNS private.webhook_signing_secrets
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  v_row private.webhook_signing_secrets;
begin
  insert into private.webhook_signing_secrets (user_id, secret)
  values (p_uid, private.webhook_secret_new())
  on conflict (user_id) do nothing;
  select * into v_row from private.webhook_signing_secrets where user_id = p_uid;
  return v_row;
end;
$function$
;

CREATE OR REPLACE FUNCTION public.list_webhook_deliveries(p_job_id uuid DEFAULT NULL::uuid, p_limit integer DEFAULT 20, p_offset integer DEFAULT 0)
 RETURNS jsonb
 LANGUAGE sql
 STABLE
 SET search_path TO ''
AS $function$
  select jsonb_build_object(
    'total', (select count(*) from public.webhook_deliveries d
               where d.user_id = (select auth.uid()) and (p_job_id is null or d.job_id = p_job_id)),
    'items', coalesce((
      select jsonb_agg(to_jsonb(d) - 'user_id' || jsonb_build_object('attempts_log', coalesce((
               select jsonb_agg(to_jsonb(a) - 'user_id' - 'delivery_id' order by a.attempt)
                 from public.webhook_delivery_attempts a where a.delivery_id = d.id), '[]'))
             order by d.created_at desc, d.id)
        from (select * from public.webhook_deliveries d
               where d.user_id = (select auth.uid()) and (p_job_id is null or d.job_id = p_job_id)
               order by d.created_at desc, d.id
               limit least(greatest(p_limit, 1), 100) offset greatest(p_offset, 0)) d), '[]'))
$function$
;

CREATE OR REPLACE FUNCTION service.batch_create(p_items jsonb, p_project_id uuid DEFAULT NULL::uuid, p_title text DEFAULT NULL::text, p_max_credits bigint DEFAULT NULL::bigint, p_delivery jsonb DEFAULT NULL::jsonb)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  v_uid uuid := auth.uid();
  v_batch public.batches;
  v_item jsonb;
  v_job public.jobs;
  v_jobs public.jobs[] := '{}';
  v_total bigint := 0;
  v_profile public.profiles;
  v_index integer := 0;
  v_state text;
  v_message text;
  v_hint text;
begin
  if v_uid is null then
    raise exception 'sign in first' using errcode = 'VG403';
  end if;
  if jsonb_typeof(p_items) is distinct from 'array'
     or jsonb_array_length(p_items) not between 1 and 20 then
    raise exception 'a batch has 1 to 20 items' using errcode = 'VGP22';
  end if;
  insert into public.batches (user_id, project_id, title, jobs_total, cost)
  values (v_uid, null, nullif(btrim(p_title), ''), jsonb_array_length(p_items), 0)
  returning * into v_batch;
  for v_item in select * from jsonb_array_elements(p_items) loop
    begin
      v_job := private.job_insert(
        v_uid, v_item ->> 'model', coalesce(v_item -> 'params', '{}'),
        coalesce((v_item ->> 'priority')::integer, 0), p_project_id, v_batch.id, p_delivery);
    exception when sqlstate 'VGP22' or sqlstate 'VGM04' or sqlstate 'VGM03' then
      -- Say which item: the client shows the problem next to it.
      get stacked diagnostics v_state = returned_sqlstate, v_message = message_text,
                              v_hint = pg_exception_hint;
      raise exception 'item %: %', v_index, v_message
        using errcode = v_state, hint = v_hint,
              detail = jsonb_build_object('field', 'items.' || v_index,
                                          'message', v_message)::text;
    end;
    v_jobs := v_jobs || v_job;
    v_total := v_total + v_job.cost;
    v_index := v_index + 1;
  end loop;
  -- All or nothing: the whole cost against the balance, under the profile's row lock.
  select * into v_profile from public.profiles where id = v_uid for update;
  if v_profile.balance < v_total then
    raise exception 'not enough credits: this batch needs %, you have % to spend', v_total,
      v_profile.balance
      using errcode = 'VG402', hint = 'Buy credits, or make the batch smaller.',
            detail = jsonb_build_object('required', v_total, 'balance', v_profile.balance,
                                        'reserved', v_profile.reserved,
                                        'items', jsonb_array_length(p_items))::text;
  end if;
  foreach v_job in array v_jobs loop
    perform private.credits_reserve(v_job);
  end loop;
  perform private.check_spend(v_uid, v_total, p_max_credits);
  perform private.check_job_limit(v_uid);
  update public.batches set project_id = p_project_id, cost = v_total
   where id = v_batch.id;
  return private.batch_progress(v_batch.id) || jsonb_build_object(
    'jobs', (select jsonb_agg(private.job_json(j) order by j.created_at, j.id)
               from public.jobs j where j.batch_id = v_batch.id));
end;
$function$
;

CREATE OR REPLACE FUNCTION service.batch_create_request(p_request jsonb, p_items jsonb, p_project_id uuid DEFAULT NULL::uuid, p_title text DEFAULT NULL::text, p_max_credits bigint DEFAULT NULL::bigint, p_delivery jsonb DEFAULT NULL::jsonb)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  v_replay jsonb := private.request_begin(p_request);
begin
  if v_replay is not null then
    return v_replay;
  end if;
  return private.request_finish(p_request, 202,
                                service.batch_create(p_items, p_project_id, p_title,
                                                    p_max_credits, p_delivery));
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
begin
  if v_uid is null then
    raise exception 'sign in first' using errcode = 'VG403';
  end if;
  v_job := private.job_insert(v_uid, p_model_id, p_params, p_priority, p_project_id, null,
                             p_delivery);
  perform private.credits_reserve(v_job);
  perform private.check_spend(v_uid, v_job.cost, p_max_credits);
  perform private.check_job_limit(v_uid);
  return private.job_json(v_job);
end;
$function$
;

CREATE OR REPLACE FUNCTION service.job_create_request(p_request jsonb, p_model_id text, p_params jsonb DEFAULT '{}'::jsonb, p_priority integer DEFAULT 0, p_project_id uuid DEFAULT NULL::uuid, p_max_credits bigint DEFAULT NULL::bigint, p_delivery jsonb DEFAULT NULL::jsonb)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  v_replay jsonb := private.request_begin(p_request);
begin
  if v_replay is not null then
    return v_replay;
  end if;
  return private.request_finish(p_request, 202,
                                service.job_create(p_model_id, p_params, p_priority, p_project_id,
                                                  p_max_credits, p_delivery));
end;
$function$
;

CREATE OR REPLACE FUNCTION service.jobs_cancel_overdue(p_limit integer DEFAULT 500)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  v_job public.jobs;
  v_worker public.workers;
  v_running jsonb := '[]';
  v_count integer := 0;
begin
  for v_job in
    select * from public.jobs
     where deadline_at <= now() and status in ('queued', 'dispatched', 'processing')
     order by deadline_at
     limit p_limit
     for update skip locked
  loop
    v_worker := null;
    select * into v_worker from public.workers where id = v_job.worker_id;
    update public.jobs
       set status = 'canceled', finished_at = now(), lease_expires_at = null,
           error_code = 'DEADLINE',
           error_message = 'canceled: not finished by its deadline (cancel_after)'
     where id = v_job.id
    returning * into v_job;
    perform private.credits_release(v_job);
    v_count := v_count + 1;
    if v_worker.id is not null or v_job.provider_job_id is not null then
      v_running := v_running || jsonb_build_object(
        'job', private.job_json(v_job),
        'notify', case when v_worker.id is null then null
                       else jsonb_build_object('worker_id', v_worker.id, 'url', v_worker.url) end,
        'provider', v_job.provider, 'provider_job_id', v_job.provider_job_id);
    end if;
  end loop;
  return jsonb_build_object('canceled', v_count, 'running', v_running);
end;
$function$
;

CREATE OR REPLACE FUNCTION service.webhook_deliveries_backlog()
 RETURNS jsonb
 LANGUAGE sql
 STABLE SECURITY DEFINER
 SET search_path TO ''
AS $function$
  select jsonb_build_object('pending', count(*),
                            'due', count(*) filter (where d.next_attempt_at <= now()))
    from public.webhook_deliveries d where d.status = 'pending'
$function$
;

CREATE OR REPLACE FUNCTION service.webhook_deliveries_claim(p_limit integer DEFAULT 20, p_lease_seconds integer DEFAULT 60)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  v_out jsonb;
begin
  with due as (
    select d.id from public.webhook_deliveries d
     where d.status = 'pending' and d.next_attempt_at <= now()
       and (d.lease_expires_at is null or d.lease_expires_at <= now())
     order by d.next_attempt_at, d.created_at
     limit least(greatest(p_limit, 1), 100)
     for update skip locked),
  claimed as (
    update public.webhook_deliveries d
       set attempts = d.attempts + 1,
           lease_expires_at = now() + make_interval(secs => greatest(p_lease_seconds, 5))
      from due where d.id = due.id
    returning d.*)
  select coalesce(jsonb_agg(jsonb_build_object(
           'id', c.id, 'user_id', c.user_id, 'job_id', c.job_id, 'event', c.event,
           'url', c.url, 'attempt', c.attempts, 'created_at', c.created_at,
           'secret', (private.webhook_secret_of(c.user_id)).secret,
           'job', (select private.job_get_json(j) from public.jobs j where j.id = c.job_id))
         order by c.created_at), '[]')
    into v_out
    from claimed c;
  return v_out;
end;
$function$
;

CREATE OR REPLACE FUNCTION service.webhook_delivery_record(p_id uuid, p_attempt integer, p_status_code integer DEFAULT NULL::integer, p_error text DEFAULT NULL::text, p_duration_ms integer DEFAULT NULL::integer)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  v_row public.webhook_deliveries;
  v_next timestamptz;
  v_ok boolean := coalesce(p_status_code between 200 and 299, false);
begin
  select * into v_row from public.webhook_deliveries where id = p_id for update;
  if not found or v_row.status <> 'pending' or v_row.attempts <> p_attempt then
    return jsonb_build_object('applied', false, 'delivery', to_jsonb(v_row));
  end if;
  if not v_ok then
    v_next := now() + make_interval(secs => least(
      private.setting_int('webhook_retry_base_seconds') * power(4, p_attempt - 1),
      private.setting_int('webhook_retry_max_seconds')));
    if p_attempt >= private.setting_int('webhook_max_attempts')
       or v_next > v_row.created_at
                   + make_interval(secs => private.setting_int('webhook_max_age_seconds')) then
      v_next := null;
    end if;
  end if;
  update public.webhook_deliveries
     set status = case when v_ok then 'delivered' when v_next is null then 'failed'
                       else 'pending' end,
         next_attempt_at = case when v_ok then null else v_next end,
         lease_expires_at = null,
         last_status_code = p_status_code,
         last_error = left(p_error, 500),
         delivered_at = case when v_ok then now() end
   where id = p_id
  returning * into v_row;
  insert into public.webhook_delivery_attempts
    (delivery_id, user_id, attempt, status_code, error, duration_ms, next_attempt_at)
  values (p_id, v_row.user_id, p_attempt, p_status_code, left(p_error, 500),
          greatest(p_duration_ms, 0), v_row.next_attempt_at);
  return jsonb_build_object('applied', true, 'delivery', to_jsonb(v_row));
end;
$function$
;

CREATE OR REPLACE FUNCTION service.webhook_secret_get()
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  v_uid uuid := auth.uid();
begin
  if v_uid is null then
    raise exception 'sign in first' using errcode = 'VG403';
  end if;
  return to_jsonb(private.webhook_secret_of(v_uid)) - 'user_id';
end;
$function$
;

CREATE OR REPLACE FUNCTION service.webhook_secret_rotate()
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  v_uid uuid := auth.uid();
  v_row private.webhook_signing_secrets;
begin
  if v_uid is null then
    raise exception 'sign in first' using errcode = 'VG403';
  end if;
  perform private.webhook_secret_of(v_uid);
  update private.webhook_signing_secrets
     set secret = private.webhook_secret_new(), rotated_at = now()
   where user_id = v_uid
  returning * into v_row;
  return to_jsonb(v_row) - 'user_id';
end;
$function$
;

CREATE OR REPLACE FUNCTION service.webhook_secret_rotate_request(p_request jsonb)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  v_replay jsonb := private.request_begin(p_request);
begin
  if v_replay is not null then
    return v_replay;
  end if;
  return private.request_finish(p_request, 200, service.webhook_secret_rotate());
end;
$function$
;

CREATE OR REPLACE FUNCTION private.account_forget()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
begin
  perform set_config('videogen.erasing', 'on', true);
  update public.jobs
     set params = '{}', progress_message = null, error_message = null, webhook = null,
         deleted_at = coalesce(deleted_at, now())
   where user_id = old.id and finished_at is not null
     and (params <> '{}' or deleted_at is null or progress_message is not null
          or error_message is not null or webhook is not null);
  perform set_config('videogen.erasing', 'off', true);
  return old;
end;
$function$
;

CREATE OR REPLACE FUNCTION private.jobs_emit_event()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
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
  -- A job of a batch also moves the batch: its progress as GET ?batch= answers it.
  if new.batch_id is not null then
    perform realtime.send(private.batch_progress(new.batch_id), 'batch_progress',
                          'user:' || new.user_id || ':jobs', true);
  end if;
  -- The owner's webhook, when the job has one and wants this event: an outbox row in
  -- this same transaction (module 22), sent after commit.
  if new.webhook is not null then
    perform private.webhook_enqueue(new, v_event, case when tg_op = 'UPDATE' then old.status end);
  end if;
  return null;
end;
$function$
;

CREATE OR REPLACE FUNCTION private.jobs_guard_transition()
 RETURNS trigger
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
begin
  -- Removing a worker, a project or a batch sets its id to null on its jobs, finished ones
  -- too (an FK action, run inside the RI trigger): a change a finished job accepts.
  if pg_trigger_depth() > 1
     and (old.worker_id is not null and new.worker_id is null
          or old.project_id is not null and new.project_id is null
          or old.batch_id is not null and new.batch_id is null)
     and to_jsonb(new) - '{worker_id,project_id,batch_id}'::text[]
         = to_jsonb(old) - '{worker_id,project_id,batch_id}'::text[] then
    return new;
  end if;
  -- An account's erasure (module 21) empties a finished job's personal fields.
  if old.finished_at is not null and current_setting('videogen.erasing', true) = 'on'
     and to_jsonb(new) - '{params,output,progress_message,error_message,webhook,deleted_at,output_expired_at,updated_at}'::text[]
         = to_jsonb(old) - '{params,output,progress_message,error_message,webhook,deleted_at,output_expired_at,updated_at}'::text[] then
    new.updated_at := now();
    return new;
  end if;
  if old.finished_at is not null
     and to_jsonb(new) - '{deleted_at,output_expired_at,updated_at}'::text[]
         = to_jsonb(old) - '{deleted_at,output_expired_at,updated_at}'::text[]
     and (old.deleted_at is null or new.deleted_at is not distinct from old.deleted_at)
     and (old.output_expired_at is null
          or new.output_expired_at is not distinct from old.output_expired_at) then
    new.updated_at := now();
    return new;
  end if;
  if not private.job_transition_allowed(old.status, new.status) then
    raise exception 'job % cannot go from % to %', old.id, old.status, new.status
      using errcode = 'VGJ09';
  end if;
  if new.user_id <> old.user_id or new.cost <> old.cost or new.model_id <> old.model_id then
    raise exception 'owner, model and cost of a job never change' using errcode = 'VGJ09';
  end if;
  new.updated_at := now();
  return new;
end;
$function$
;

CREATE OR REPLACE FUNCTION public.get_job(p_job_id uuid)
 RETURNS jsonb
 LANGUAGE sql
 STABLE
 SET search_path TO ''
AS $function$
  select private.job_get_json(j) from public.jobs j where j.id = p_job_id and j.deleted_at is null
$function$
;

CREATE OR REPLACE FUNCTION service.account_erase(p_request jsonb)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  v_user uuid := auth.uid();
  v_jobs integer;
  v_events integer;
begin
  perform private.request_begin(p_request - 'key');
  if v_user is null then
    raise exception 'only a signed-in user can delete their account' using errcode = 'VG403';
  end if;
  perform 1 from public.profiles where id = v_user for update;
  if exists (select 1 from public.jobs
              where user_id = v_user and status in ('queued', 'dispatched', 'processing')) then
    raise exception 'your account still has unfinished jobs' using errcode = 'VGX09',
      hint = 'Cancel them (DELETE /queue-job?id=) or wait for them to finish, then retry.';
  end if;
  perform set_config('videogen.erasing', 'on', true);
  update public.jobs
     set params = '{}', output = null, progress_message = null, error_message = null,
         webhook = null, deleted_at = coalesce(deleted_at, now()),
         output_expired_at = coalesce(output_expired_at, now())
   where user_id = v_user;
  get diagnostics v_jobs = row_count;
  delete from public.job_events where user_id = v_user;
  get diagnostics v_events = row_count;
  perform set_config('videogen.erasing', 'off', true);
  delete from public.share_links where user_id = v_user;
  delete from public.webhook_deliveries where user_id = v_user;  -- module 22
  delete from private.webhook_signing_secrets where user_id = v_user;
  delete from public.api_keys where user_id = v_user;
  delete from public.provider_keys where user_id = v_user;
  delete from public.batches where user_id = v_user;
  delete from public.projects where user_id = v_user;
  update public.profiles set display_name = null where id = v_user;
  return private.request_finish(p_request - 'key', 200, jsonb_build_object(
    'jobs_erased', v_jobs, 'events_erased', v_events));
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
           'thumbnail_path', j.output ->> 'thumbnail_path')), '[]')
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

CREATE OR REPLACE FUNCTION service.requests_clean_up()
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  v_keys integer;
  v_receipts integer;
  v_deliveries integer;
begin
  delete from private.idempotency_keys where expires_at < now();
  get diagnostics v_keys = row_count;
  delete from private.webhook_receipts where received_at < now() - interval '7 days';
  get diagnostics v_receipts = row_count;
  delete from private.rate_limits where window_start < now() - interval '1 day';
  delete from public.webhook_deliveries
   where status <> 'pending'
     and created_at
         < now() - make_interval(days => private.setting_int('webhook_retention_days')::integer);
  get diagnostics v_deliveries = row_count;
  return jsonb_build_object('idempotency_keys', v_keys, 'webhook_receipts', v_receipts,
                            'webhook_deliveries', v_deliveries);
end;
$function$
;

--   drop function if exists "service"."batch_create"(p_items jsonb, p_project_id uuid, p_title text, p_max_credits bigint);

--   drop function if exists "service"."batch_create_request"(p_request jsonb, p_items jsonb, p_project_id uuid, p_title text, p_max_credits bigint);

--   drop function if exists "service"."job_create"(p_model_id text, p_params jsonb, p_priority integer, p_project_id uuid, p_max_credits bigint);

--   drop function if exists "service"."job_create_request"(p_request jsonb, p_model_id text, p_params jsonb, p_priority integer, p_project_id uuid, p_max_credits bigint);

create policy "Webhook deliveries are visible to their owner"
on "public"."webhook_deliveries"
as permissive
for select
to authenticated
using ((( SELECT auth.uid() AS uid) = user_id));

create policy "Webhook attempts are visible to their owner"
on "public"."webhook_delivery_attempts"
as permissive
for select
to authenticated
using ((( SELECT auth.uid() AS uid) = user_id));

CREATE UNIQUE INDEX webhook_signing_secrets_pkey ON private.webhook_signing_secrets USING btree (user_id);

CREATE INDEX jobs_deadline_idx ON public.jobs USING btree (deadline_at) WHERE ((deadline_at IS NOT NULL) AND (status = ANY (ARRAY['queued'::public.job_status, 'dispatched'::public.job_status, 'processing'::public.job_status])));

CREATE INDEX webhook_deliveries_due_idx ON public.webhook_deliveries USING btree (next_attempt_at) WHERE (status = 'pending'::text);

CREATE INDEX webhook_deliveries_ended_idx ON public.webhook_deliveries USING btree (created_at) WHERE (status <> 'pending'::text);

CREATE INDEX webhook_deliveries_job_idx ON public.webhook_deliveries USING btree (job_id, created_at DESC);

CREATE UNIQUE INDEX webhook_deliveries_pkey ON public.webhook_deliveries USING btree (id);

CREATE INDEX webhook_deliveries_user_idx ON public.webhook_deliveries USING btree (user_id, created_at DESC);

CREATE UNIQUE INDEX webhook_delivery_attempts_delivery_id_attempt_key ON public.webhook_delivery_attempts USING btree (delivery_id, attempt);

CREATE UNIQUE INDEX webhook_delivery_attempts_pkey ON public.webhook_delivery_attempts USING btree (id);

CREATE INDEX webhook_delivery_attempts_user_idx ON public.webhook_delivery_attempts USING btree (user_id);

grant delete on table "private"."webhook_signing_secrets" to "service_role";

grant insert on table "private"."webhook_signing_secrets" to "service_role";

grant references on table "private"."webhook_signing_secrets" to "service_role";

grant select on table "private"."webhook_signing_secrets" to "service_role";

grant trigger on table "private"."webhook_signing_secrets" to "service_role";

grant truncate on table "private"."webhook_signing_secrets" to "service_role";

grant update on table "private"."webhook_signing_secrets" to "service_role";

grant select on table "public"."webhook_deliveries" to "authenticated";

grant delete on table "public"."webhook_deliveries" to "service_role";

grant insert on table "public"."webhook_deliveries" to "service_role";

grant references on table "public"."webhook_deliveries" to "service_role";

grant select on table "public"."webhook_deliveries" to "service_role";

grant trigger on table "public"."webhook_deliveries" to "service_role";

grant truncate on table "public"."webhook_deliveries" to "service_role";

grant update on table "public"."webhook_deliveries" to "service_role";

grant select on table "public"."webhook_delivery_attempts" to "authenticated";

grant delete on table "public"."webhook_delivery_attempts" to "service_role";

grant insert on table "public"."webhook_delivery_attempts" to "service_role";

grant references on table "public"."webhook_delivery_attempts" to "service_role";

grant select on table "public"."webhook_delivery_attempts" to "service_role";

grant trigger on table "public"."webhook_delivery_attempts" to "service_role";

grant truncate on table "public"."webhook_delivery_attempts" to "service_role";

grant update on table "public"."webhook_delivery_attempts" to "service_role";

alter table "private"."webhook_signing_secrets" add constraint "webhook_signing_secrets_pkey" PRIMARY KEY using index "webhook_signing_secrets_pkey";

alter table "public"."webhook_deliveries" add constraint "webhook_deliveries_pkey" PRIMARY KEY using index "webhook_deliveries_pkey";

alter table "public"."webhook_delivery_attempts" add constraint "webhook_delivery_attempts_pkey" PRIMARY KEY using index "webhook_delivery_attempts_pkey";

alter table "private"."webhook_signing_secrets" add constraint "webhook_signing_secrets_secret_check" CHECK ((secret ~ '^whsec_[A-Za-z0-9+/=]{40,}$'::text)) not valid;

alter table "private"."webhook_signing_secrets" validate constraint "webhook_signing_secrets_secret_check";

alter table "public"."jobs" add constraint "jobs_webhook_check" CHECK (((char_length(webhook) <= 2048) AND (webhook ~ '^https?://'::text))) not valid;

alter table "public"."jobs" validate constraint "jobs_webhook_check";

alter table "public"."jobs" add constraint "jobs_webhook_events_check" CHECK ((webhook_events <@ '{started,progress,completed,failed,canceled}'::text[])) not valid;

alter table "public"."jobs" validate constraint "jobs_webhook_events_check";

alter table "public"."webhook_deliveries" add constraint "webhook_deliveries_attempts_check" CHECK ((attempts >= 0)) not valid;

alter table "public"."webhook_deliveries" validate constraint "webhook_deliveries_attempts_check";

alter table "public"."webhook_deliveries" add constraint "webhook_deliveries_check" CHECK (((status = 'pending'::text) = (next_attempt_at IS NOT NULL))) not valid;

alter table "public"."webhook_deliveries" validate constraint "webhook_deliveries_check";

alter table "public"."webhook_deliveries" add constraint "webhook_deliveries_event_check" CHECK ((event = ANY (ARRAY['started'::text, 'progress'::text, 'completed'::text, 'failed'::text, 'canceled'::text]))) not valid;

alter table "public"."webhook_deliveries" validate constraint "webhook_deliveries_event_check";

alter table "public"."webhook_deliveries" add constraint "webhook_deliveries_status_check" CHECK ((status = ANY (ARRAY['pending'::text, 'delivered'::text, 'failed'::text]))) not valid;

alter table "public"."webhook_deliveries" validate constraint "webhook_deliveries_status_check";

alter table "public"."webhook_deliveries" add constraint "webhook_deliveries_url_check" CHECK ((char_length(url) <= 2048)) not valid;

alter table "public"."webhook_deliveries" validate constraint "webhook_deliveries_url_check";

alter table "public"."webhook_delivery_attempts" add constraint "webhook_delivery_attempts_attempt_check" CHECK ((attempt >= 1)) not valid;

alter table "public"."webhook_delivery_attempts" validate constraint "webhook_delivery_attempts_attempt_check";

alter table "public"."webhook_delivery_attempts" add constraint "webhook_delivery_attempts_delivery_id_attempt_key" UNIQUE using index "webhook_delivery_attempts_delivery_id_attempt_key";

alter table "public"."webhook_delivery_attempts" add constraint "webhook_delivery_attempts_duration_ms_check" CHECK ((duration_ms >= 0)) not valid;

alter table "public"."webhook_delivery_attempts" validate constraint "webhook_delivery_attempts_duration_ms_check";

alter table "public"."webhook_delivery_attempts" add constraint "webhook_delivery_attempts_error_check" CHECK ((char_length(error) <= 500)) not valid;

alter table "public"."webhook_delivery_attempts" validate constraint "webhook_delivery_attempts_error_check";

alter table "private"."webhook_signing_secrets" add constraint "webhook_signing_secrets_user_id_fkey" FOREIGN KEY ("user_id") REFERENCES "auth"."users"("id") ON DELETE CASCADE NOT VALID;

alter table "private"."webhook_signing_secrets" validate constraint "webhook_signing_secrets_user_id_fkey";

alter table "public"."webhook_deliveries" add constraint "webhook_deliveries_job_id_fkey" FOREIGN KEY ("job_id") REFERENCES "public"."jobs"("id") ON DELETE CASCADE NOT VALID;

alter table "public"."webhook_deliveries" validate constraint "webhook_deliveries_job_id_fkey";

alter table "public"."webhook_deliveries" add constraint "webhook_deliveries_user_id_fkey" FOREIGN KEY ("user_id") REFERENCES "auth"."users"("id") ON DELETE CASCADE NOT VALID;

alter table "public"."webhook_deliveries" validate constraint "webhook_deliveries_user_id_fkey";

alter table "public"."webhook_delivery_attempts" add constraint "webhook_delivery_attempts_delivery_id_fkey" FOREIGN KEY ("delivery_id") REFERENCES "public"."webhook_deliveries"("id") ON DELETE CASCADE NOT VALID;

alter table "public"."webhook_delivery_attempts" validate constraint "webhook_delivery_attempts_delivery_id_fkey";

alter table "public"."webhook_delivery_attempts" add constraint "webhook_delivery_attempts_user_id_fkey" FOREIGN KEY ("user_id") REFERENCES "auth"."users"("id") ON DELETE CASCADE NOT VALID;

alter table "public"."webhook_delivery_attempts" validate constraint "webhook_delivery_attempts_user_id_fkey";

insert into private.settings (name, value) values
  ('webhook_retry_base_seconds', '5'),
  ('webhook_retry_max_seconds', '21600'),
  ('webhook_max_attempts', '12'),
  ('webhook_max_age_seconds', '86400'),
  ('webhook_retention_days', '30')
on conflict (name) do nothing;

do $cron$
begin
  if exists (select 1 from pg_extension where extname = 'pg_cron') then
    perform cron.schedule('videogen-cancel-overdue', '* * * * *',
                          'select service.jobs_cancel_overdue()');
  end if;
end;
$cron$;

-- Grants (drafted by a second pass: functions and tables as sql/schema grants them).

revoke delete on table "public"."webhook_deliveries" from "anon";

revoke insert on table "public"."webhook_deliveries" from "anon";

revoke select on table "public"."webhook_deliveries" from "anon";

revoke update on table "public"."webhook_deliveries" from "anon";

revoke delete on table "public"."webhook_deliveries" from "authenticated";

revoke insert on table "public"."webhook_deliveries" from "authenticated";

revoke update on table "public"."webhook_deliveries" from "authenticated";

revoke delete on table "public"."webhook_delivery_attempts" from "anon";

revoke insert on table "public"."webhook_delivery_attempts" from "anon";

revoke select on table "public"."webhook_delivery_attempts" from "anon";

revoke update on table "public"."webhook_delivery_attempts" from "anon";

revoke delete on table "public"."webhook_delivery_attempts" from "authenticated";

revoke insert on table "public"."webhook_delivery_attempts" from "authenticated";

revoke update on table "public"."webhook_delivery_attempts" from "authenticated";

revoke execute on function private.job_delivery(p_delivery jsonb) from public;

revoke execute on function private.job_get_json(p_job public.jobs) from public;

revoke execute on function private.job_insert(p_uid uuid, p_model_id text, p_params jsonb, p_priority integer, p_project_id uuid, p_batch_id uuid, p_delivery jsonb) from public;

revoke execute on function private.webhook_enqueue(p_job public.jobs, p_job_event text, p_old_status public.job_status) from public;

revoke execute on function private.webhook_secret_new() from public;

revoke execute on function private.webhook_secret_of(p_uid uuid) from public;

revoke execute on function public.list_webhook_deliveries(p_job_id uuid, p_limit integer, p_offset integer) from public;

revoke execute on function public.list_webhook_deliveries(p_job_id uuid, p_limit integer, p_offset integer) from anon;

revoke execute on function service.batch_create(p_items jsonb, p_project_id uuid, p_title text, p_max_credits bigint, p_delivery jsonb) from public;

revoke execute on function service.batch_create_request(p_request jsonb, p_items jsonb, p_project_id uuid, p_title text, p_max_credits bigint, p_delivery jsonb) from public;

revoke execute on function service.job_create(p_model_id text, p_params jsonb, p_priority integer, p_project_id uuid, p_max_credits bigint, p_delivery jsonb) from public;

revoke execute on function service.job_create_request(p_request jsonb, p_model_id text, p_params jsonb, p_priority integer, p_project_id uuid, p_max_credits bigint, p_delivery jsonb) from public;

revoke execute on function service.jobs_cancel_overdue(p_limit integer) from public;

revoke execute on function service.webhook_deliveries_backlog() from public;

revoke execute on function service.webhook_deliveries_claim(p_limit integer, p_lease_seconds integer) from public;

revoke execute on function service.webhook_delivery_record(p_id uuid, p_attempt integer, p_status_code integer, p_error text, p_duration_ms integer) from public;

revoke execute on function service.webhook_secret_get() from public;

revoke execute on function service.webhook_secret_rotate() from public;

revoke execute on function service.webhook_secret_rotate_request(p_request jsonb) from public;

revoke all on table public.webhook_deliveries from authenticated;

revoke all on table public.webhook_deliveries from service_role;

revoke all on table public.webhook_delivery_attempts from authenticated;

revoke all on table public.webhook_delivery_attempts from service_role;

grant execute on function private.job_delivery(p_delivery jsonb) to service_role;

grant execute on function private.job_get_json(p_job public.jobs) to service_role;

grant execute on function private.job_get_json(p_job public.jobs) to authenticated;

grant execute on function private.job_insert(p_uid uuid, p_model_id text, p_params jsonb, p_priority integer, p_project_id uuid, p_batch_id uuid, p_delivery jsonb) to service_role;

grant execute on function private.webhook_enqueue(p_job public.jobs, p_job_event text, p_old_status public.job_status) to service_role;

grant execute on function private.webhook_secret_new() to service_role;

grant execute on function private.webhook_secret_of(p_uid uuid) to service_role;

grant execute on function service.batch_create(p_items jsonb, p_project_id uuid, p_title text, p_max_credits bigint, p_delivery jsonb) to service_role;

grant execute on function service.batch_create_request(p_request jsonb, p_items jsonb, p_project_id uuid, p_title text, p_max_credits bigint, p_delivery jsonb) to service_role;

grant execute on function service.job_create(p_model_id text, p_params jsonb, p_priority integer, p_project_id uuid, p_max_credits bigint, p_delivery jsonb) to service_role;

grant execute on function service.job_create_request(p_request jsonb, p_model_id text, p_params jsonb, p_priority integer, p_project_id uuid, p_max_credits bigint, p_delivery jsonb) to service_role;

grant execute on function service.jobs_cancel_overdue(p_limit integer) to service_role;

grant execute on function service.webhook_deliveries_backlog() to service_role;

grant execute on function service.webhook_deliveries_claim(p_limit integer, p_lease_seconds integer) to service_role;

grant execute on function service.webhook_delivery_record(p_id uuid, p_attempt integer, p_status_code integer, p_error text, p_duration_ms integer) to service_role;

grant execute on function service.webhook_secret_get() to service_role;

grant execute on function service.webhook_secret_rotate() to service_role;

grant execute on function service.webhook_secret_rotate_request(p_request jsonb) to service_role;

grant delete, insert, references, select, trigger, truncate, update on table public.webhook_deliveries to service_role;

grant select on table public.webhook_deliveries to authenticated;

grant delete, insert, references, select, trigger, truncate, update on table public.webhook_delivery_attempts to service_role;

grant select on table public.webhook_delivery_attempts to authenticated;

-- Pass 2: what pass 1 left different.

revoke all on function public.list_webhook_deliveries(p_job_id uuid, p_limit integer, p_offset integer) from authenticated;

revoke all on function public.list_webhook_deliveries(p_job_id uuid, p_limit integer, p_offset integer) from service_role;

grant execute on function public.list_webhook_deliveries(p_job_id uuid, p_limit integer, p_offset integer) to service_role;

grant execute on function public.list_webhook_deliveries(p_job_id uuid, p_limit integer, p_offset integer) to authenticated;
