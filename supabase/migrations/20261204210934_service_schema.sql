-- The service schema, and the pro-rata capture rule in SQL (sql/schema modules 1, 2, 5–20):
-- `public` keeps only what clients call over PostgREST and the tables they read; the
-- procedures only the service role runs move to schema `service` (not exposed, usage for
-- service_role only), renamed <noun>_<verb> (docs/service-schema-renames.txt), two helpers
-- to `private`; service.job_complete captures pro rata of p_rendered_seconds.
--
-- Everything above the section "pg_cron" is `make migration NAME=service_schema` as drafted
-- (verified equal to sql/schema by the tool); the section "pg_cron" is hand-written: the
-- schedules' commands are rows of cron.job (data), which a schema diff does not carry.
--
-- Migration service_schema: drafted by `make migration` from sql/schema; review before committing.
-- Write by hand only what a diff cannot express: data moves, backfills, renames (drafted
-- as drop + create), default privileges.
-- Unsafe statements (drops; check that no data is lost):
--   drop view if exists "public"."ops_costs_daily";
--   drop view if exists "public"."ops_costs_daily_by_model";
--   drop view if exists "public"."ops_job_costs";
--   drop view if exists "public"."ops_videos_daily";
--   drop view if exists "public"."ops_videos_daily_by_model";
--   drop function if exists "public"."admin_fail_job"(p_job_id uuid, p_reason text);
--   drop function if exists "public"."admin_job_request"(p_request jsonb, p_action text, p_job_id uuid, p_reason text);
--   drop function if exists "public"."admin_requeue_job"(p_job_id uuid, p_reason text);
--   drop function if exists "public"."audit_money"(p_grace_seconds integer);
--   drop function if exists "public"."audit_money_report"(p_grace_seconds integer);
--   drop function if exists "public"."cancel_batch"(p_batch_id uuid);
--   drop function if exists "public"."cancel_batch_request"(p_request jsonb, p_batch_id uuid);
--   drop function if exists "public"."cancel_job"(p_job_id uuid);
--   drop function if exists "public"."cancel_job_request"(p_request jsonb, p_job_id uuid);
--   drop function if exists "public"."claim_initial_grant"(p_client jsonb);
--   drop function if exists "public"."claim_initial_grant_request"(p_request jsonb, p_client jsonb);
--   drop function if exists "public"."create_batch"(p_items jsonb, p_project_id uuid, p_title text, p_max_credits bigint);
--   drop function if exists "public"."create_batch_request"(p_request jsonb, p_items jsonb, p_project_id uuid, p_title text, p_max_credits bigint);
--   drop function if exists "public"."create_job"(p_model_id text, p_params jsonb, p_priority integer, p_project_id uuid, p_max_credits bigint);
--   drop function if exists "public"."create_job_request"(p_request jsonb, p_model_id text, p_params jsonb, p_priority integer, p_project_id uuid, p_max_credits bigint);
--   drop function if exists "public"."create_project"(p_title text, p_description text);
--   drop function if exists "public"."create_project_request"(p_request jsonb, p_title text, p_description text);
--   drop function if exists "public"."delete_job"(p_job_id uuid);
--   drop function if exists "public"."delete_job_request"(p_request jsonb, p_job_id uuid);
--   drop function if exists "public"."delete_project"(p_project_id uuid);
--   drop function if exists "public"."delete_project_request"(p_request jsonb, p_project_id uuid);
--   drop function if exists "public"."grant_credits"(p_user_id uuid, p_amount bigint, p_grant_id text, p_kind public.ledger_kind, p_description text);
--   drop function if exists "public"."grant_credits_request"(p_request jsonb, p_user_id uuid, p_amount bigint, p_grant_id text, p_kind public.ledger_kind, p_description text);
--   drop function if exists "public"."job_assign"(p_job_id uuid, p_worker_id uuid);
--   drop function if exists "public"."job_by_provider_id"(p_provider text, p_provider_job_id text);
--   drop function if exists "public"."job_claim"(p_worker_id uuid, p_limit integer);
--   drop function if exists "public"."job_complete"(p_job_id uuid, p_attempt integer, p_output jsonb, p_credits_used bigint);
--   drop function if exists "public"."job_dispatch_external"(p_job_id uuid);
--   drop function if exists "public"."job_events_prune"(p_days integer);
--   drop function if exists "public"."job_fail"(p_job_id uuid, p_attempt integer, p_error_code text, p_error_message text, p_retryable boolean);
--   drop function if exists "public"."job_get_any"(p_job_id uuid);
--   drop function if exists "public"."job_progress"(p_job_id uuid, p_attempt integer, p_progress integer, p_message text);
--   drop function if exists "public"."job_report"(p_webhook_id text, p_source text, p_report jsonb);
--   drop function if exists "public"."job_return"(p_job_id uuid, p_attempt integer, p_reason text);
--   drop function if exists "public"."job_set_provider_id"(p_job_id uuid, p_attempt integer, p_provider_job_id text);
--   drop function if exists "public"."job_start"(p_job_id uuid, p_attempt integer);
--   drop function if exists "public"."jobs_active_external"();
--   drop function if exists "public"."jobs_assign_pending"(p_limit integer);
--   drop function if exists "public"."jobs_mark_outputs_expired"(p_job_ids uuid[]);
--   drop function if exists "public"."jobs_outputs_due"(p_retention_days integer, p_limit integer);
--   drop function if exists "public"."jobs_requeue_expired"(p_limit integer);
--   drop function if exists "public"."merge_anonymous"(p_anonymous_id uuid);
--   drop function if exists "public"."merge_anonymous_request"(p_request jsonb, p_anonymous_id uuid);
--   drop function if exists "public"."models_by_provider"(p_provider text);
--   drop function if exists "public"."ops_metrics"();
--   drop function if exists "public"."ops_readiness"();
--   drop function if exists "public"."ops_set_unit_prices"(p_prices jsonb);
--   drop function if exists "public"."ops_unit_prices"();
--   drop function if exists "public"."prompt_template_activate"(p_template_id uuid);
--   drop function if exists "public"."prompt_template_for"(p_request jsonb, p_model_id text, p_job_type public.job_type);
--   drop function if exists "public"."prompt_template_request"(p_request jsonb, p_change jsonb);
--   drop function if exists "public"."prompt_template_save"(p_job_type public.job_type, p_instruction text, p_hints jsonb, p_note text, p_activate boolean);
--   drop function if exists "public"."provider_key_delete"(p_request jsonb, p_provider text);
--   drop function if exists "public"."provider_key_for_job"(p_job_id uuid, p_provider text);
--   drop function if exists "public"."provider_key_mine"(p_provider text);
--   drop function if exists "public"."provider_key_save"(p_request jsonb, p_provider text, p_key text);
--   drop function if exists "public"."purchase_credits"(p_user_id uuid, p_transaction_id text, p_credits bigint, p_description text);
--   drop function if exists "public"."purchase_credits_request"(p_request jsonb, p_user_id uuid, p_transaction_id text, p_credits bigint, p_description text);
--   drop function if exists "public"."rate_limit_take"(p_principal text, p_bucket text, p_limit integer, p_window_seconds integer);
--   drop function if exists "public"."record_purchase"(p_user_id uuid, p_store text, p_transaction_id text, p_credits bigint, p_payment_ref text, p_amount_minor bigint, p_currency text, p_product_id text, p_description text);
--   drop function if exists "public"."record_purchase_request"(p_request jsonb, p_user_id uuid, p_store text, p_transaction_id text, p_credits bigint, p_payment_ref text, p_amount_minor bigint, p_currency text, p_product_id text, p_description text);
--   drop function if exists "public"."request_refused"(p_request jsonb, p_status integer, p_body jsonb, p_store boolean);
--   drop function if exists "public"."request_replace_answer"(p_request jsonb, p_status integer, p_data jsonb);
--   drop function if exists "public"."requests_cleanup"();
--   drop function if exists "public"."reverse_purchase"(p_store text, p_reversal_id text, p_kind text, p_transaction_id text, p_payment_ref text, p_amount_minor bigint, p_share_per_100000 integer, p_description text);
--   drop function if exists "public"."reverse_purchase_request"(p_request jsonb, p_store text, p_reversal_id text, p_kind text, p_transaction_id text, p_payment_ref text, p_amount_minor bigint, p_share_per_100000 integer, p_description text);
--   drop function if exists "public"."update_project"(p_project_id uuid, p_title text, p_description text);
--   drop function if exists "public"."update_project_request"(p_request jsonb, p_project_id uuid, p_title text, p_description text);
--   drop function if exists "public"."uploads_due"(p_retention_days integer, p_limit integer);
--   drop function if exists "public"."webhook_receipt"(p_webhook_id text, p_source text);
--   drop function if exists "public"."worker_heartbeat"(p_worker_id uuid, p_status text);
--   drop function if exists "public"."worker_record_health"(p_worker_id uuid, p_ok boolean, p_detail jsonb);
--   drop function if exists "public"."worker_register"(p_name text, p_url text, p_health_url text, p_models text[], p_capacity integer, p_mode text, p_metadata jsonb);
--   drop function if exists "public"."workers_list"();

create schema if not exists "service";

drop view if exists "public"."ops_costs_daily";

drop view if exists "public"."ops_costs_daily_by_model";

drop view if exists "public"."ops_job_costs";

drop view if exists "public"."ops_videos_daily";

drop view if exists "public"."ops_videos_daily_by_model";

set check_function_bodies = off;

CREATE OR REPLACE FUNCTION private.credits_pro_rata(p_job public.jobs, p_seconds double precision)
 RETURNS bigint
 LANGUAGE plpgsql
 IMMUTABLE STRICT
 SET search_path TO ''
AS $function$
declare
  v_reserved double precision :=
    greatest(coalesce((p_job.params ->> 'duration')::double precision, p_seconds), 1.0);
begin
  return least(p_job.cost,
               ceil(p_job.cost::double precision * least(1.0, p_seconds / v_reserved))::bigint);
end;
$function$
;

CREATE OR REPLACE FUNCTION private.job_delete(p_job_id uuid)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
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
$function$
;

CREATE OR REPLACE FUNCTION private.webhook_receipt_record(p_webhook_id text, p_source text)
 RETURNS boolean
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
begin
  insert into private.webhook_receipts (webhook_id, source) values (p_webhook_id, p_source)
  on conflict do nothing;
  return found;
end;
$function$
;

CREATE OR REPLACE FUNCTION service.admin_job_fail(p_job_id uuid, p_reason text)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
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
     set status = 'failed', finished_at = now(), lease_expires_at = null,
         error_code = 'ADMIN_FAILED', error_message = left(p_reason, 2000)
   where id = p_job_id
  returning * into v_job;
  perform private.credits_release(v_job);
  return jsonb_build_object(
    'job', private.job_json(v_job),
    'notify', case when v_worker.id is null then null
                   else jsonb_build_object('worker_id', v_worker.id, 'url', v_worker.url) end,
    'provider', v_job.provider, 'provider_job_id', v_job.provider_job_id);
end;
$function$
;

CREATE OR REPLACE FUNCTION service.admin_job_request(p_request jsonb, p_action text, p_job_id uuid, p_reason text)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
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
$function$
;

CREATE OR REPLACE FUNCTION service.admin_job_requeue(p_job_id uuid, p_reason text)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
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
$function$
;

CREATE OR REPLACE FUNCTION service.anonymous_merge(p_anonymous_id uuid)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  v_uid uuid := auth.uid();
  v_caller_anonymous boolean;
  v_anonymous boolean;
  v_merge private.account_merges;
  v_from public.profiles;
  v_out public.credit_ledger;
  v_in public.credit_ledger;
  v_debt_before bigint;
  v_paid bigint;
  v_moved bigint;
begin
  if v_uid is null then
    raise exception 'sign in first' using errcode = 'VG403';
  end if;
  if p_anonymous_id = v_uid then
    raise exception 'that is this account''s own session' using errcode = 'VGN22';
  end if;
  select coalesce(is_anonymous, false) into v_caller_anonymous from auth.users where id = v_uid;
  if v_caller_anonymous then
    raise exception 'sign in to a permanent account to merge into it' using errcode = 'VG403';
  end if;
  select coalesce(is_anonymous, false) into v_anonymous from auth.users
   where id = p_anonymous_id and deleted_at is null;
  if not found then
    raise exception 'no such user' using errcode = 'VG404';
  end if;

  -- Both profiles, in id order (two merges of the same pair cannot deadlock).
  perform 1 from public.profiles where id in (v_uid, p_anonymous_id) order by id for update;
  select * into v_merge from private.account_merges where anonymous_id = p_anonymous_id;
  if found then
    if v_merge.account_id <> v_uid then
      raise exception 'this anonymous user was merged into another account'
        using errcode = 'VGC09';
    end if;
    return jsonb_build_object('applied', false, 'merge', to_jsonb(v_merge))
           || private.credit_state(v_uid);
  end if;
  if not v_anonymous then
    raise exception 'that user is not anonymous' using errcode = 'VGN22';
  end if;

  select * into v_from from public.profiles where id = p_anonymous_id;
  if not found then
    raise exception 'no profile for user %', p_anonymous_id using errcode = 'VG404';
  end if;
  if exists (select 1 from public.jobs
              where user_id = p_anonymous_id and status in ('queued', 'dispatched', 'processing'))
     or v_from.reserved > 0 then
    raise exception 'the anonymous user still has unfinished jobs' using errcode = 'VGN09',
      hint = 'Wait for them to finish (or cancel them), then merge.';
  end if;
  if v_from.debt > 0 then
    raise exception 'the anonymous user owes % credits', v_from.debt using errcode = 'VGN09',
      detail = jsonb_build_object('debt', v_from.debt)::text;
  end if;

  select debt into v_debt_before from public.profiles where id = v_uid;
  -- Free credits are spent first, so the balance is paid-for up to what was bought.
  select greatest(0, coalesce(sum(amount), 0)) into v_paid
    from public.credit_ledger
   where user_id = p_anonymous_id and kind in ('purchase', 'clawback');
  v_moved := least(v_from.balance, v_paid);
  if v_moved > 0 then
    v_out := private.ledger_apply(p_anonymous_id, 'merge_out', -v_moved, 0, null,
                                  'merge_out:' || p_anonymous_id, 'moved to account ' || v_uid);
    v_in := private.ledger_apply(v_uid, 'merge_in', v_moved, 0, null,
                                 'merge_in:' || p_anonymous_id,
                                 'from anonymous user ' || p_anonymous_id);
  end if;
  update private.purchases set user_id = v_uid where user_id = p_anonymous_id;
  insert into private.account_merges (anonymous_id, account_id, credits, out_ledger_id,
                                      in_ledger_id)
  values (p_anonymous_id, v_uid, v_moved, v_out.id, v_in.id)
  returning * into v_merge;

  return jsonb_build_object('applied', true, 'merge', to_jsonb(v_merge),
                            'free_credits_kept', v_from.balance - v_moved,
                            'entry', case when v_in.id is not null then to_jsonb(v_in) end)
         || private.credit_state(v_uid)
         || jsonb_build_object('debt_settled',
              v_debt_before - (select debt from public.profiles where id = v_uid));
end;
$function$
;

CREATE OR REPLACE FUNCTION service.anonymous_merge_request(p_request jsonb, p_anonymous_id uuid)
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
  return private.request_finish(p_request, 200, service.anonymous_merge(p_anonymous_id));
end;
$function$
;

CREATE OR REPLACE FUNCTION service.batch_cancel(p_batch_id uuid)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  v_batch public.batches;
  v_job_id uuid;
  v_running jsonb := '[]';
  v_canceled jsonb;
begin
  select * into v_batch from public.batches
   where id = p_batch_id and (user_id = auth.uid() or auth.role() = 'service_role')
     for update;
  if not found then
    raise exception 'batch % not found', p_batch_id using errcode = 'VGB04';
  end if;
  for v_job_id in select id from public.jobs
                   where batch_id = p_batch_id and finished_at is null
                   order by created_at, id loop
    v_canceled := service.job_cancel(v_job_id);
    if v_canceled -> 'notify' <> 'null'::jsonb or v_canceled ->> 'provider_job_id' is not null then
      v_running := v_running || jsonb_build_array(v_canceled);
    end if;
  end loop;
  update public.batches set canceled_at = coalesce(canceled_at, now()) where id = p_batch_id;
  return jsonb_build_object('batch', private.batch_progress(p_batch_id), 'running', v_running);
end;
$function$
;

CREATE OR REPLACE FUNCTION service.batch_cancel_request(p_request jsonb, p_batch_id uuid)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  v_replay jsonb := private.request_begin(p_request);
  v_canceled jsonb;
begin
  if v_replay is not null then
    return v_replay;
  end if;
  v_canceled := service.batch_cancel(p_batch_id);
  return private.request_finish(p_request, 200,
           jsonb_build_object('batch', v_canceled -> 'batch', 'workers_notified', 0))
         || jsonb_build_object('running', v_canceled -> 'running');
end;
$function$
;

CREATE OR REPLACE FUNCTION service.batch_create(p_items jsonb, p_project_id uuid DEFAULT NULL::uuid, p_title text DEFAULT NULL::text, p_max_credits bigint DEFAULT NULL::bigint)
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
        coalesce((v_item ->> 'priority')::integer, 0), p_project_id, v_batch.id);
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

CREATE OR REPLACE FUNCTION service.batch_create_request(p_request jsonb, p_items jsonb, p_project_id uuid DEFAULT NULL::uuid, p_title text DEFAULT NULL::text, p_max_credits bigint DEFAULT NULL::bigint)
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
                                                    p_max_credits));
end;
$function$
;

CREATE OR REPLACE FUNCTION service.credits_grant(p_user_id uuid, p_amount bigint, p_grant_id text, p_kind public.ledger_kind DEFAULT 'grant'::public.ledger_kind, p_description text DEFAULT ''::text)
 RETURNS jsonb
 LANGUAGE sql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
  select private.credits_add(p_user_id, p_kind, p_amount, p_kind || ':' || p_grant_id,
                             p_description);
$function$
;

CREATE OR REPLACE FUNCTION service.credits_grant_request(p_request jsonb, p_user_id uuid, p_amount bigint, p_grant_id text, p_kind public.ledger_kind DEFAULT 'grant'::public.ledger_kind, p_description text DEFAULT ''::text)
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
  return private.request_finish(p_request, 200, service.credits_grant(
    p_user_id, p_amount, p_grant_id, p_kind, p_description));
end;
$function$
;

CREATE OR REPLACE FUNCTION service.credits_purchase(p_user_id uuid, p_transaction_id text, p_credits bigint, p_description text DEFAULT 'purchase'::text)
 RETURNS jsonb
 LANGUAGE sql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
  select private.credits_add(p_user_id, 'purchase', p_credits, 'purchase:' || p_transaction_id,
                             p_description);
$function$
;

CREATE OR REPLACE FUNCTION service.credits_purchase_request(p_request jsonb, p_user_id uuid, p_transaction_id text, p_credits bigint, p_description text DEFAULT 'purchase'::text)
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
  return private.request_finish(p_request, 200, service.credits_purchase(
    p_user_id, p_transaction_id, p_credits, p_description));
end;
$function$
;

CREATE OR REPLACE FUNCTION service.initial_grant_claim(p_client jsonb DEFAULT '{}'::jsonb)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  v_uid uuid := auth.uid();
  v_user auth.users;
  v_anonymous boolean;
  v_identity text;
  v_address text := nullif(btrim(coalesce(p_client ->> 'address', '')), '');
  v_device_checked boolean := coalesce((p_client ->> 'device_checked')::boolean, false);
  v_recent integer;
  v_oldest timestamptz;
  v_amount bigint;
begin
  if v_uid is null then
    raise exception 'sign in first' using errcode = 'VG403';
  end if;
  select * into v_user from auth.users where id = v_uid;
  v_anonymous := coalesce(v_user.is_anonymous, false);
  v_identity := case when not v_anonymous then private.email_identity(v_user.email) end;

  update public.profiles set initial_grant_claimed_at = now()
   where id = v_uid and initial_grant_claimed_at is null;
  if not found then
    raise exception 'initial credits already claimed' using errcode = 'VGC09';
  end if;
  -- One free grant per mailbox: a second account of the same email gets none.
  perform pg_advisory_xact_lock(hashtext('free_grant:' || coalesce(v_identity, v_address, '')));
  if v_identity is not null
     and exists (select 1 from private.free_grants where identity = v_identity) then
    raise exception 'this email address already took its free credits' using errcode = 'VGC09',
      hint = 'Free credits come once per person; buy credits to go on.';
  end if;
  if v_anonymous and not v_device_checked and v_address is not null then
    select count(*), min(created_at) into v_recent, v_oldest
      from private.free_grants
     where client_address = v_address and identity is null
       and created_at > now() - interval '24 hours';
    if v_recent >= private.setting_int('guest_grants_per_address_per_day') then
      raise exception 'guests from this address took % free grants in 24 hours', v_recent
        using errcode = 'VGR29',
              hint = 'Sign up with an email address to claim your free credits.',
              detail = 'retry_after=' || greatest(1, ceil(extract(epoch from
                (v_oldest + interval '24 hours' - now()))))::integer;
    end if;
  end if;

  v_amount := least(
    private.setting_int(
      case when v_anonymous then 'initial_grant_credits_anonymous' else 'initial_grant_credits' end),
    private.setting_int('free_credits_cap'));
  insert into private.free_grants (user_id, identity, client_address, device_checked, amount)
  values (v_uid, v_identity, left(v_address, 64), v_device_checked, v_amount);
  return private.credits_add(v_uid, 'initial_grant', v_amount, 'initial:' || v_uid,
                             'initial grant');
end;
$function$
;

CREATE OR REPLACE FUNCTION service.initial_grant_claim_request(p_request jsonb, p_client jsonb DEFAULT '{}'::jsonb)
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
  return private.request_finish(p_request, 200, service.initial_grant_claim(p_client));
end;
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

CREATE OR REPLACE FUNCTION service.job_cancel(p_job_id uuid)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  v_job public.jobs;
  v_worker public.workers;
begin
  select * into v_job from public.jobs where id = p_job_id for update;
  if not found or (auth.role() <> 'service_role' and v_job.user_id is distinct from auth.uid()) then
    raise exception 'job % not found', p_job_id using errcode = 'VGJ04';
  end if;
  if v_job.status in ('completed', 'failed', 'canceled') then
    raise exception 'job is already %', v_job.status using errcode = 'VGJ09';
  end if;
  select * into v_worker from public.workers where id = v_job.worker_id;
  update public.jobs
     set status = 'canceled', finished_at = now(), lease_expires_at = null,
         error_code = 'CANCELED', error_message = 'canceled by request'
   where id = p_job_id
  returning * into v_job;
  perform private.credits_release(v_job);
  return jsonb_build_object(
    'job', private.job_json(v_job),
    'notify', case when v_worker.id is null then null
                   else jsonb_build_object('worker_id', v_worker.id, 'url', v_worker.url) end,
    'provider', v_job.provider, 'provider_job_id', v_job.provider_job_id);
end;
$function$
;

CREATE OR REPLACE FUNCTION service.job_cancel_request(p_request jsonb, p_job_id uuid)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  v_replay jsonb := private.request_begin(p_request);
  v_canceled jsonb;
begin
  if v_replay is not null then
    return v_replay;
  end if;
  v_canceled := service.job_cancel(p_job_id);
  return private.request_finish(p_request, 200,
           jsonb_build_object('job', v_canceled -> 'job', 'worker_notified', false))
         || jsonb_build_object('running', v_canceled);
end;
$function$
;

CREATE OR REPLACE FUNCTION service.job_complete(p_job_id uuid, p_attempt integer, p_output jsonb, p_credits_used bigint DEFAULT NULL::bigint, p_rendered_seconds double precision DEFAULT NULL::double precision)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  v_job public.jobs := private.job_lock_for_attempt(p_job_id, p_attempt);
  v_used bigint;
begin
  if v_job.id is null then
    return private.not_applied(p_job_id, 'stale_attempt');
  end if;
  if p_rendered_seconds is not null and p_rendered_seconds < 0 then
    raise exception 'rendered_seconds % is negative', p_rendered_seconds using errcode = 'VGC22';
  end if;
  v_used := coalesce(p_credits_used,
                     private.credits_pro_rata(v_job, p_rendered_seconds),
                     v_job.cost);
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
begin
  if v_uid is null then
    raise exception 'sign in first' using errcode = 'VG403';
  end if;
  v_job := private.job_insert(v_uid, p_model_id, p_params, p_priority, p_project_id);
  perform private.credits_reserve(v_job);
  perform private.check_spend(v_uid, v_job.cost, p_max_credits);
  perform private.check_job_limit(v_uid);
  return private.job_json(v_job);
end;
$function$
;

CREATE OR REPLACE FUNCTION service.job_create_request(p_request jsonb, p_model_id text, p_params jsonb DEFAULT '{}'::jsonb, p_priority integer DEFAULT 0, p_project_id uuid DEFAULT NULL::uuid, p_max_credits bigint DEFAULT NULL::bigint)
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
                                                  p_max_credits));
end;
$function$
;

CREATE OR REPLACE FUNCTION service.job_delete_request(p_request jsonb, p_job_id uuid)
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
  return private.request_finish(p_request, 200, private.job_delete(p_job_id));
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
  select * into v_job from public.jobs where id = p_job_id and status = 'queued' for update;
  if not found then
    return null;
  end if;
  v_job := private.job_dispatch(v_job, null);
  return private.job_json(v_job);
end;
$function$
;

CREATE OR REPLACE FUNCTION service.job_events_prune(p_days integer DEFAULT 90)
 RETURNS integer
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  v_count integer;
begin
  perform set_config('videogen.pruning', 'on', true);
  delete from public.job_events e using public.jobs j
   where e.job_id = j.id and j.finished_at < now() - make_interval(days => p_days);
  get diagnostics v_count = row_count;
  perform set_config('videogen.pruning', 'off', true);
  return v_count;
end;
$function$
;

CREATE OR REPLACE FUNCTION service.job_fail(p_job_id uuid, p_attempt integer, p_error_code text, p_error_message text, p_retryable boolean DEFAULT true)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  v_job public.jobs := private.job_lock_for_attempt(p_job_id, p_attempt);
begin
  if v_job.id is null then
    return private.not_applied(p_job_id, 'stale_attempt');
  end if;
  v_job := private.job_fail_or_retry(v_job, coalesce(p_error_code, 'WORKER_ERROR'),
                                     left(p_error_message, 2000), p_retryable);
  return jsonb_build_object('applied', true, 'job', private.job_json(v_job));
end;
$function$
;

CREATE OR REPLACE FUNCTION service.job_get_any(p_job_id uuid)
 RETURNS jsonb
 LANGUAGE sql
 STABLE SECURITY DEFINER
 SET search_path TO ''
AS $function$
  select to_jsonb(j) || jsonb_build_object('model', to_jsonb(m))
    from public.jobs j join public.models m on m.id = j.model_id where j.id = p_job_id
$function$
;

CREATE OR REPLACE FUNCTION service.job_get_by_provider_id(p_provider text, p_provider_job_id text)
 RETURNS jsonb
 LANGUAGE sql
 STABLE SECURITY DEFINER
 SET search_path TO ''
AS $function$
  select to_jsonb(j) from public.jobs j
   where j.provider = p_provider and j.provider_job_id = p_provider_job_id
$function$
;

CREATE OR REPLACE FUNCTION service.job_progress(p_job_id uuid, p_attempt integer, p_progress integer, p_message text DEFAULT NULL::text)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  v_job public.jobs := private.job_lock_for_attempt(p_job_id, p_attempt);
begin
  if p_progress not between 0 and 100 then
    raise exception 'progress must be 0..100' using errcode = 'VG400';
  end if;
  if v_job.id is null then
    return private.not_applied(p_job_id, 'stale_attempt');
  end if;
  if p_progress <= v_job.progress and v_job.status = 'processing' then
    return private.not_applied(p_job_id, 'not_newer');
  end if;
  update public.jobs j
     set status = 'processing', progress = greatest(j.progress, p_progress),
         progress_message = coalesce(p_message, j.progress_message),
         started_at = coalesce(j.started_at, now()),
         lease_expires_at = private.lease_until(j.model_id)
   where j.id = p_job_id
  returning j.* into v_job;
  return jsonb_build_object('applied', true, 'job', private.job_json(v_job));
end;
$function$
;

CREATE OR REPLACE FUNCTION service.job_report(p_webhook_id text, p_source text, p_report jsonb)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  v_job_id uuid := (p_report ->> 'job_id')::uuid;
  v_attempt integer := (p_report ->> 'attempt')::integer;
  v_error jsonb := coalesce(p_report -> 'error', '{}');
  v_usage jsonb := p_report -> 'usage';
  v_change jsonb;
begin
  if v_usage = 'null'::jsonb then
    v_usage := null;
  end if;
  if v_usage is not null then
    perform private.check_job_usage(v_usage);
  end if;
  if p_webhook_id is not null and not private.webhook_receipt_record(p_webhook_id, p_source) then
    return jsonb_build_object('applied', false, 'reason', 'duplicate_delivery');
  end if;
  case p_report ->> 'type'
    when 'started' then
      return service.job_start(v_job_id, v_attempt);
    when 'progress' then
      return service.job_progress(v_job_id, v_attempt,
                                 coalesce((p_report ->> 'progress')::integer, 0),
                                 p_report ->> 'message');
    when 'completed' then
      v_change := service.job_complete(v_job_id, v_attempt,
                                       coalesce(p_report -> 'output', '{}'),
                                       (p_report ->> 'credits_used')::bigint,
                                       (p_report ->> 'rendered_seconds')::double precision);
    when 'failed' then
      v_change := service.job_fail(v_job_id, v_attempt,
                                  coalesce(v_error ->> 'code', 'WORKER_ERROR'),
                                  coalesce(v_error ->> 'message', ''),
                                  coalesce((v_error ->> 'retryable')::boolean, true));
    else
      raise exception 'unknown report type %', p_report ->> 'type' using errcode = 'VG400';
  end case;
  if v_usage is not null and (v_change ->> 'applied')::boolean then
    perform private.job_usage_record(v_job_id, v_usage);
  end if;
  return v_change;
end;
$function$
;

CREATE OR REPLACE FUNCTION service.job_return(p_job_id uuid, p_attempt integer, p_reason text)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  v_job public.jobs := private.job_lock_for_attempt(p_job_id, p_attempt);
begin
  if v_job.id is null or v_job.status <> 'dispatched' then
    return private.not_applied(p_job_id, 'stale_attempt');
  end if;
  update public.jobs
     set status = 'queued', worker_id = null, lease_expires_at = null,
         error_code = 'DISPATCH_FAILED', error_message = p_reason
   where id = p_job_id
  returning * into v_job;
  return jsonb_build_object('applied', true, 'job', private.job_json(v_job));
end;
$function$
;

CREATE OR REPLACE FUNCTION service.job_set_provider_id(p_job_id uuid, p_attempt integer, p_provider_job_id text)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  v_job public.jobs := private.job_lock_for_attempt(p_job_id, p_attempt);
begin
  if v_job.id is null then
    return private.not_applied(p_job_id, 'stale_attempt');
  end if;
  update public.jobs set provider_job_id = p_provider_job_id where id = p_job_id
  returning * into v_job;
  return jsonb_build_object('applied', true, 'job', private.job_json(v_job));
end;
$function$
;

CREATE OR REPLACE FUNCTION service.job_start(p_job_id uuid, p_attempt integer)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  v_job public.jobs := private.job_lock_for_attempt(p_job_id, p_attempt);
begin
  if v_job.id is null then
    return private.not_applied(p_job_id, 'stale_attempt');
  end if;
  if v_job.status = 'processing' then
    return private.not_applied(p_job_id, 'duplicate');
  end if;
  update public.jobs j
     set status = 'processing', started_at = now(),
         lease_expires_at = private.lease_until(j.model_id)
   where j.id = p_job_id
  returning j.* into v_job;
  return jsonb_build_object('applied', true, 'job', private.job_json(v_job));
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
     where j.status = 'queued' and j.run_after <= now()
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

CREATE OR REPLACE FUNCTION service.jobs_list_active_external()
 RETURNS jsonb
 LANGUAGE sql
 STABLE SECURITY DEFINER
 SET search_path TO ''
AS $function$
  select coalesce(jsonb_agg(jsonb_build_object('id', j.id, 'attempt', j.attempt,
           'provider', j.provider, 'provider_job_id', j.provider_job_id)), '[]')
    from public.jobs j
   where j.status in ('dispatched', 'processing') and j.provider_job_id is not null
     and j.provider in ('fal', 'replicate', 'runway', 'runpod')
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
           'thumbnail_path', j.output ->> 'thumbnail_path')), '[]')
    from (select * from public.jobs j
           where j.output_expired_at is null
             and (j.output ? 'video_path' or j.output ? 'thumbnail_path')
             and ((j.deleted_at is not null)
                  or (p_retention_days > 0 and j.finished_at is not null
                      and j.finished_at < now() - make_interval(days => p_retention_days)))
           order by j.finished_at
           limit greatest(p_limit, 1)) j
$function$
;

CREATE OR REPLACE FUNCTION service.jobs_mark_outputs_expired(p_job_ids uuid[])
 RETURNS integer
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  v_count integer;
begin
  update public.jobs set output_expired_at = now()
   where id = any(p_job_ids) and output_expired_at is null and finished_at is not null;
  get diagnostics v_count = row_count;
  return v_count;
end;
$function$
;

CREATE OR REPLACE FUNCTION service.jobs_requeue_expired(p_limit integer DEFAULT 500)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  v_job public.jobs;
  v_requeued integer := 0;
  v_failed integer := 0;
begin
  for v_job in
    select * from public.jobs
     where status in ('dispatched', 'processing') and lease_expires_at < now()
     order by lease_expires_at
     limit p_limit
     for update skip locked
  loop
    v_job := private.job_fail_or_retry(v_job, 'LEASE_EXPIRED',
                                       'the worker stopped reporting', true);
    if v_job.status = 'queued' then
      v_requeued := v_requeued + 1;
    else
      v_failed := v_failed + 1;
    end if;
  end loop;
  return jsonb_build_object('requeued', v_requeued, 'failed', v_failed);
end;
$function$
;

CREATE OR REPLACE FUNCTION service.models_list_by_provider(p_provider text)
 RETURNS jsonb
 LANGUAGE sql
 STABLE SECURITY DEFINER
 SET search_path TO ''
AS $function$
  select coalesce(jsonb_agg(jsonb_build_object('id', m.id, 'provider_model_id', m.provider_model_id,
                                               'is_available', m.is_available) order by m.id), '[]')
    from public.models m where m.provider = p_provider
$function$
;

CREATE OR REPLACE FUNCTION service.money_audit(p_grace_seconds integer DEFAULT 300)
 RETURNS TABLE(check_name text, user_id uuid, job_id uuid, expected bigint, actual bigint, detail text)
 LANGUAGE sql
 STABLE SECURITY DEFINER
 SET search_path TO ''
AS $function$
  with sums as (
    select p.id, p.balance, p.reserved, p.debt,
           coalesce(sum(l.amount), 0)::bigint as amount, coalesce(sum(l.hold), 0)::bigint as hold,
           coalesce(sum(l.debt), 0)::bigint as debt_sum
      from public.profiles p left join public.credit_ledger l on l.user_id = p.id
     group by p.id
  ),
  chain as (
    select distinct on (c.user_id) c.user_id, c.id, c.balance_after, c.reserved_after,
           c.run_amount, c.run_hold
      from (select l.user_id, l.id, l.balance_after, l.reserved_after,
                   sum(l.amount) over w as run_amount, sum(l.hold) over w as run_hold
              from public.credit_ledger l
            window w as (partition by l.user_id order by l.id)) c
     where c.balance_after <> c.run_amount or c.reserved_after <> c.run_hold
     order by c.user_id, c.id
  ),
  holds as (
    select j.id, j.user_id, j.status, j.cost, j.credits_used, j.lease_expires_at,
           coalesce(sum(l.hold), 0)::bigint as hold,
           coalesce(-sum(l.hold) filter (where l.kind = 'capture'), 0)::bigint as captured
      from public.jobs j left join public.credit_ledger l on l.job_id = j.id
     group by j.id
  )
  select 'balance', s.id, null::uuid, s.amount, s.balance,
         'balance differs from the sum of the ledger''s amounts'
    from sums s where s.balance <> s.amount
  union all
  select 'reserved', s.id, null, s.hold, s.reserved,
         'reserved differs from the sum of the ledger''s holds'
    from sums s where s.reserved <> s.hold
  union all
  select 'ledger_chain', c.user_id, null, c.run_amount, c.balance_after,
         format('ledger row %s: balance_after %s / reserved_after %s, running sums %s / %s',
                c.id, c.balance_after, c.reserved_after, c.run_amount, c.run_hold)
    from chain c
  union all
  select 'job_hold', h.user_id, h.id,
         case when h.status in ('queued', 'dispatched', 'processing') then h.cost else 0 end,
         h.hold, format('job is %s and holds %s of its cost %s', h.status, h.hold, h.cost)
    from holds h
   where h.hold <> case when h.status in ('queued', 'dispatched', 'processing') then h.cost
                        else 0 end
  union all
  select 'capture', h.user_id, h.id, h.credits_used, h.captured,
         'the capture differs from the job''s credits_used'
    from holds h where h.status = 'completed' and h.captured <> h.credits_used
  union all
  select 'stale_reservation', h.user_id, h.id, 0, h.hold,
         case when h.lease_expires_at is null then format('%s with no lease', h.status)
              else format('%s, lease ran out at %s', h.status, h.lease_expires_at) end
    from holds h
   where h.status in ('dispatched', 'processing') and h.hold > 0
     and (h.lease_expires_at is null
          or h.lease_expires_at < now() - make_interval(secs => greatest(p_grace_seconds, 0)))
  union all
  select 'debt', s.id, null, s.debt_sum, s.debt,
         'debt differs from the sum of the ledger''s debt changes'
    from sums s where s.debt <> s.debt_sum
  union all
  select 'debt_unsettled', s.id, null, 0, least(s.debt, s.balance),
         format('owes %s while %s is spendable', s.debt, s.balance)
    from sums s where s.debt > 0 and s.balance > 0
  union all
  select 'purchase_ledger', p.user_id, null, p.credits, coalesce(l.amount, 0),
         format('%s purchase %s: credits differ from its ledger row', p.store, p.transaction_id)
    from private.purchases p left join public.credit_ledger l on l.id = p.ledger_id
   where l.id is null or l.kind <> 'purchase' or l.amount <> p.credits
  union all
  select 'purchase_clawback', p.user_id, null, coalesce(r.credits, 0), p.clawed_back,
         format('%s purchase %s: clawed_back differs from its refunds', p.store,
                p.transaction_id)
    from private.purchases p
    left join (select purchase_id, sum(credits)::bigint as credits
                 from private.purchase_reversals group by purchase_id) r
      on r.purchase_id = p.id
   where p.clawed_back <> coalesce(r.credits, 0)
  union all
  select 'reversal_ledger', r.user_id, null, r.credits, coalesce(l.debt - l.amount, 0),
         format('reversal %s: from_balance %s / to_debt %s, ledger amount %s / debt %s',
                r.reversal_id, r.from_balance, r.to_debt, l.amount, l.debt)
    from private.purchase_reversals r left join public.credit_ledger l on l.id = r.ledger_id
   where r.credits > 0
     and (l.id is null or l.kind <> 'clawback' or l.user_id <> r.user_id
          or -l.amount <> r.from_balance or l.debt <> r.to_debt)
  union all
  select 'merge_ledger', m.account_id, null, m.credits, coalesce(i.amount, 0),
         format('merge of %s: %s credits, out %s, in %s', m.anonymous_id, m.credits,
                o.amount, i.amount)
    from private.account_merges m
    left join public.credit_ledger o on o.id = m.out_ledger_id
    left join public.credit_ledger i on i.id = m.in_ledger_id
   where m.credits > 0
     and (o.id is null or i.id is null or o.kind <> 'merge_out' or i.kind <> 'merge_in'
          or o.user_id <> m.anonymous_id or i.user_id <> m.account_id
          or -o.amount <> m.credits or i.amount <> m.credits)
$function$
;

CREATE OR REPLACE FUNCTION service.money_audit_report(p_grace_seconds integer DEFAULT 300)
 RETURNS jsonb
 LANGUAGE sql
 STABLE SECURITY DEFINER
 SET search_path TO ''
AS $function$
  select coalesce(jsonb_agg(to_jsonb(a) order by a.check_name, a.user_id, a.job_id), '[]')
    from service.money_audit(p_grace_seconds) a
$function$
;

CREATE OR REPLACE FUNCTION service.ops_metrics_read()
 RETURNS jsonb
 LANGUAGE sql
 STABLE SECURITY DEFINER
 SET search_path TO ''
AS $function$
  select jsonb_build_object(
    'jobs', coalesce((
      select jsonb_agg(jsonb_build_object('model', j.model_id, 'status', j.status,
                                          'count', j.n) order by j.model_id, j.status)
        from (select model_id, status, count(*) as n from public.jobs
               group by model_id, status) j), '[]'),
    'queue', coalesce((
      select jsonb_agg(jsonb_build_object(
               'model', q.model_id, 'depth', q.n,
               'oldest_age_seconds', extract(epoch from now() - q.oldest)) order by q.model_id)
        from (select model_id, count(*) as n, min(created_at) as oldest from public.jobs
               where status = 'queued' group by model_id) q), '[]'),
    'attempts', coalesce((select sum(attempt) from public.jobs), 0),
    'failures', coalesce((
      select jsonb_agg(jsonb_build_object('error_code', f.code, 'count', f.n) order by f.code)
        from (select e.data ->> 'error_code' as code, count(*) as n from public.job_events e
               where e.event in ('queued', 'failed') and e.data ? 'error_code'
               group by 1) f), '[]'),
    'workers', coalesce((
      select jsonb_agg(jsonb_build_object('status', w.status, 'count', w.n) order by w.status)
        from (select status, count(*) as n from public.workers group by status) w), '[]'),
    'healthy_workers', (service.ops_readiness_check() ->> 'healthy_workers')::bigint,
    'credits', (
      select jsonb_build_object(
               'reserved', coalesce(-sum(l.amount) filter (where l.kind = 'reserve'), 0),
               'captured', coalesce(-sum(l.hold) filter (where l.kind = 'capture'), 0),
               'released', coalesce(sum(l.amount) filter (where l.kind = 'release'), 0),
               'granted', coalesce(sum(l.amount) filter (
                            where l.kind in ('initial_grant', 'grant', 'purchase', 'adjust')), 0))
        from public.credit_ledger l),
    'credits_outstanding', (
      select jsonb_build_object('balance', coalesce(sum(p.balance), 0),
                                'reserved', coalesce(sum(p.reserved), 0))
        from public.profiles p),
    'render_realtime_factor', coalesce((
      select jsonb_agg(jsonb_build_object('model', r.model_id, 'factor', r.factor, 'jobs', r.n)
                       order by r.model_id)
        from (select j.model_id, count(*) as n,
                     sum(extract(epoch from j.finished_at - j.started_at))
                       / nullif(sum((j.output ->> 'duration_s')::numeric), 0) as factor
                from public.jobs j
               where j.status = 'completed' and j.finished_at > now() - interval '24 hours'
                 and j.started_at is not null
                 and jsonb_typeof(j.output -> 'duration_s') = 'number'
               group by j.model_id) r
       where r.factor is not null), '[]'),
    'render_realtime_factor_measured', coalesce((
      select jsonb_agg(jsonb_build_object('model', r.model_id, 'factor', r.factor, 'jobs', r.n)
                       order by r.model_id)
        from (select j.model_id, count(*) as n,
                     sum(u.render_seconds) / sum(u.render_output_seconds) as factor
                from public.jobs j join private.job_usage u on u.job_id = j.id
               where j.status = 'completed' and j.finished_at > now() - interval '24 hours'
                 and u.render_output_seconds > 0
               group by j.model_id) r), '[]'))
$function$
;

CREATE OR REPLACE FUNCTION service.ops_readiness_check()
 RETURNS jsonb
 LANGUAGE sql
 STABLE SECURITY DEFINER
 SET search_path TO ''
AS $function$
  select jsonb_build_object(
    'healthy_workers', (
      select count(*) from public.workers w
       where w.status = 'online'
         and w.last_heartbeat_at > now() - make_interval(
               secs => private.setting_int('worker_heartbeat_timeout_seconds'))),
    'providers', coalesce((
      select jsonb_agg(distinct m.provider order by m.provider) from public.models m
       where m.is_available and m.provider <> 'reference'), '[]'))
$function$
;

CREATE OR REPLACE FUNCTION service.ops_unit_prices_read()
 RETURNS jsonb
 LANGUAGE sql
 STABLE SECURITY DEFINER
 SET search_path TO ''
AS $function$
  select coalesce(jsonb_object_agg(s.name, s.value order by s.name), '{}')
    from private.settings s
   where s.name in ('cost_per_1k_tokens_usd', 'cost_per_1m_tts_chars_usd',
                    'cost_per_render_hour_usd', 'provider_cost_per_second_usd',
                    'credit_value_usd')
$function$
;

CREATE OR REPLACE FUNCTION service.ops_unit_prices_set(p_prices jsonb)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  v_key text;
  v_value jsonb;
begin
  if jsonb_typeof(p_prices) is distinct from 'object' then
    raise exception 'prices must be an object' using errcode = 'VG400';
  end if;
  for v_key, v_value in select * from jsonb_each(p_prices) loop
    if v_key in ('cost_per_1k_tokens_usd', 'cost_per_1m_tts_chars_usd',
                 'cost_per_render_hour_usd', 'credit_value_usd') then
      if jsonb_typeof(v_value) <> 'number' or (v_value #>> '{}')::numeric < 0 then
        raise exception 'price % must be a number ≥ 0', v_key using errcode = 'VG400';
      end if;
    elsif v_key = 'provider_cost_per_second_usd' then
      if jsonb_typeof(v_value) <> 'object' or exists (
           select 1 from jsonb_each(v_value) e
            where jsonb_typeof(e.value) <> 'number' or (e.value #>> '{}')::numeric < 0) then
        raise exception 'provider_cost_per_second_usd must map providers to numbers ≥ 0'
          using errcode = 'VG400';
      end if;
    else
      raise exception 'unknown price %', v_key using errcode = 'VG400';
    end if;
    update private.settings set value = v_value
     where name = v_key and value is distinct from v_value;
  end loop;
  return service.ops_unit_prices_read();
end;
$function$
;

CREATE OR REPLACE FUNCTION service.project_create(p_title text, p_description text DEFAULT ''::text)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  v_project public.projects;
begin
  if auth.uid() is null then
    raise exception 'sign in first' using errcode = 'VG403';
  end if;
  insert into public.projects (user_id, title, description)
  values (auth.uid(), btrim(p_title), coalesce(p_description, ''))
  returning * into v_project;
  return private.project_json(v_project);
end;
$function$
;

CREATE OR REPLACE FUNCTION service.project_create_request(p_request jsonb, p_title text, p_description text DEFAULT ''::text)
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
  return private.request_finish(p_request, 201, service.project_create(p_title, p_description));
end;
$function$
;

CREATE OR REPLACE FUNCTION service.project_delete(p_project_id uuid)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  v_project public.projects;
  v_jobs bigint;
begin
  select * into v_project from public.projects
   where id = p_project_id and user_id = auth.uid() for update;
  if not found then
    raise exception 'project % not found', p_project_id using errcode = 'VGR04';
  end if;
  select count(*) into v_jobs from public.jobs where project_id = p_project_id;
  delete from public.projects where id = p_project_id;
  return jsonb_build_object('project', to_jsonb(v_project), 'jobs_ungrouped', v_jobs);
end;
$function$
;

CREATE OR REPLACE FUNCTION service.project_delete_request(p_request jsonb, p_project_id uuid)
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
  return private.request_finish(p_request, 200, service.project_delete(p_project_id));
end;
$function$
;

CREATE OR REPLACE FUNCTION service.project_update(p_project_id uuid, p_title text DEFAULT NULL::text, p_description text DEFAULT NULL::text)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  v_project public.projects;
begin
  update public.projects
     set title = coalesce(btrim(p_title), title),
         description = coalesce(p_description, description)
   where id = p_project_id and user_id = auth.uid()
  returning * into v_project;
  if not found then
    raise exception 'project % not found', p_project_id using errcode = 'VGR04';
  end if;
  return private.project_json(v_project);
end;
$function$
;

CREATE OR REPLACE FUNCTION service.project_update_request(p_request jsonb, p_project_id uuid, p_title text DEFAULT NULL::text, p_description text DEFAULT NULL::text)
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
  return private.request_finish(p_request, 200,
                                service.project_update(p_project_id, p_title, p_description));
end;
$function$
;

CREATE OR REPLACE FUNCTION service.prompt_template_activate(p_template_id uuid)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
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
$function$
;

CREATE OR REPLACE FUNCTION service.prompt_template_change_request(p_request jsonb, p_change jsonb)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
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
$function$
;

CREATE OR REPLACE FUNCTION service.prompt_template_get(p_request jsonb, p_model_id text DEFAULT NULL::text, p_job_type public.job_type DEFAULT NULL::public.job_type)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
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
$function$
;

CREATE OR REPLACE FUNCTION service.prompt_template_save(p_job_type public.job_type, p_instruction text, p_hints jsonb DEFAULT '{"cues": []}'::jsonb, p_note text DEFAULT ''::text, p_activate boolean DEFAULT true)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
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
$function$
;

CREATE OR REPLACE FUNCTION service.provider_key_delete(p_request jsonb, p_provider text)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  v_replay jsonb := private.request_begin(p_request);
  v_row public.provider_keys;
begin
  if v_replay is not null then
    return v_replay;
  end if;
  delete from public.provider_keys where user_id = auth.uid() and provider = p_provider
  returning * into v_row;
  if not found then
    raise exception 'you have no % key stored', p_provider using errcode = 'VGK04';
  end if;
  return private.request_finish(p_request, 200, jsonb_build_object(
           'provider', v_row.provider, 'deleted', true));
end;
$function$
;

CREATE OR REPLACE FUNCTION service.provider_key_get_for_job(p_job_id uuid, p_provider text)
 RETURNS text
 LANGUAGE sql
 STABLE SECURITY DEFINER
 SET search_path TO ''
AS $function$
  select d.decrypted_secret
    from public.jobs j
    join public.provider_keys k on k.user_id = j.user_id and k.provider = p_provider
    join vault.decrypted_secrets d on d.id = k.secret_id
   where j.id = p_job_id
$function$
;

CREATE OR REPLACE FUNCTION service.provider_key_get_mine(p_provider text)
 RETURNS text
 LANGUAGE sql
 STABLE SECURITY DEFINER
 SET search_path TO ''
AS $function$
  select d.decrypted_secret
    from public.provider_keys k
    join vault.decrypted_secrets d on d.id = k.secret_id
   where k.user_id = auth.uid() and k.provider = p_provider
$function$
;

CREATE OR REPLACE FUNCTION service.provider_key_save(p_request jsonb, p_provider text, p_key text)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  v_user uuid := auth.uid();
  v_row public.provider_keys;
  v_status integer := 201;
  v_state text;
  v_message text;
  v_detail text;
  v_hint text;
begin
  begin
    if p_request ->> 'limit' is not null then
      perform service.rate_limit_take(p_request ->> 'principal', p_request ->> 'bucket',
                                     (p_request ->> 'limit')::integer, 60);
    end if;
    if v_user is null then
      raise exception 'a provider key belongs to a signed-in user' using errcode = 'VG403';
    end if;
    if not private.provider_key_valid(p_provider, p_key) then
      raise exception 'that is not a % key', coalesce(p_provider, 'provider')
        using errcode = 'VGK22';
    end if;
    -- One writer per user and provider: a first store has no row to lock yet.
    perform pg_advisory_xact_lock(
      hashtextextended('provider_key:' || v_user || ':' || p_provider, 0));
    select * into v_row from public.provider_keys
     where user_id = v_user and provider = p_provider for update;
    if found then
      perform vault.update_secret(v_row.secret_id, p_key);
      update public.provider_keys set last4 = right(p_key, 4), rotated_at = now()
       where user_id = v_user and provider = p_provider
      returning * into v_row;
      v_status := 200;
    else
      insert into public.provider_keys (user_id, provider, secret_id, last4)
      values (v_user, p_provider,
              vault.create_secret(p_key, 'videogen/provider_key/' || v_user || '/' || p_provider,
                                  'videogen: a user''s own ' || p_provider || ' API key'),
              right(p_key, 4))
      returning * into v_row;
    end if;
    return private.request_finish(p_request, v_status, private.provider_key_json(v_row));
  exception when others then
    get stacked diagnostics v_state = returned_sqlstate, v_message = message_text,
                            v_detail = pg_exception_detail, v_hint = pg_exception_hint;
    if v_state not like 'VG%' then  -- a driver's message may quote the row: say nothing of it
      v_message := 'the key could not be stored';
      v_detail := null;
      v_hint := null;
    end if;
    return jsonb_build_object('error', jsonb_build_object(
      'sqlstate', v_state, 'message', v_message, 'detail', v_detail, 'hint', v_hint));
  end;
end;
$function$
;

CREATE OR REPLACE FUNCTION service.purchase_record(p_user_id uuid, p_store text, p_transaction_id text, p_credits bigint, p_payment_ref text DEFAULT NULL::text, p_amount_minor bigint DEFAULT NULL::bigint, p_currency text DEFAULT NULL::text, p_product_id text DEFAULT NULL::text, p_description text DEFAULT 'purchase'::text)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  v_purchase private.purchases;
  v_debt_before bigint;
  v_result jsonb;
  v_entry public.credit_ledger;
begin
  if p_store not in ('stripe', 'app_store') then
    raise exception 'unknown store %', p_store using errcode = 'VG400';
  end if;
  select debt into v_debt_before from public.profiles where id = p_user_id for update;
  if not found then
    raise exception 'no profile for user %', p_user_id using errcode = 'VG404';
  end if;

  -- The purchase row, not the ledger row, says whose it is now (a merge moves purchases).
  select * into v_purchase from private.purchases
   where store = p_store and transaction_id = p_transaction_id;
  if found then
    if v_purchase.user_id <> p_user_id then
      raise exception 'this purchase was credited to another account' using errcode = 'VGC09';
    end if;
    select * into v_entry from public.credit_ledger where id = v_purchase.ledger_id;
    return jsonb_build_object('applied', false, 'entry', to_jsonb(v_entry),
                              'purchase', to_jsonb(v_purchase))
           || private.credit_state(p_user_id);
  end if;

  v_result := private.credits_add(p_user_id, 'purchase', p_credits,
                                  'purchase:' || p_store || ':' || p_transaction_id,
                                  p_description);
  if (v_result ->> 'applied')::boolean then
    insert into private.purchases
      (user_id, store, transaction_id, payment_ref, product_id, credits, amount_minor,
       currency, ledger_id)
    values
      (p_user_id, p_store, p_transaction_id, p_payment_ref, p_product_id, p_credits,
       p_amount_minor, lower(p_currency), (v_result -> 'entry' ->> 'id')::bigint)
    returning * into v_purchase;
    v_result := v_result || jsonb_build_object('purchase', to_jsonb(v_purchase));
  end if;
  return v_result || private.credit_state(p_user_id)
         || jsonb_build_object('debt_settled',
              v_debt_before - (select debt from public.profiles where id = p_user_id));
end;
$function$
;

CREATE OR REPLACE FUNCTION service.purchase_record_request(p_request jsonb, p_user_id uuid, p_store text, p_transaction_id text, p_credits bigint, p_payment_ref text DEFAULT NULL::text, p_amount_minor bigint DEFAULT NULL::bigint, p_currency text DEFAULT NULL::text, p_product_id text DEFAULT NULL::text, p_description text DEFAULT 'purchase'::text)
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
  return private.request_finish(p_request, 200, service.purchase_record(
    p_user_id, p_store, p_transaction_id, p_credits, p_payment_ref, p_amount_minor,
    p_currency, p_product_id, p_description));
end;
$function$
;

CREATE OR REPLACE FUNCTION service.purchase_reverse(p_store text, p_reversal_id text, p_kind text, p_transaction_id text DEFAULT NULL::text, p_payment_ref text DEFAULT NULL::text, p_amount_minor bigint DEFAULT NULL::bigint, p_share_per_100000 integer DEFAULT NULL::integer, p_description text DEFAULT ''::text)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  v_user uuid;
  v_purchase private.purchases;
  v_reversal private.purchase_reversals;
  v_profile public.profiles;
  v_returned numeric;
  v_target bigint;
  v_credits bigint;
  v_from_balance bigint;
  v_entry public.credit_ledger;
  v_id text := p_store || ':' || p_reversal_id;
begin
  if p_kind not in ('refund', 'dispute') then
    raise exception 'kind must be refund or dispute' using errcode = 'VG400';
  end if;
  if (p_transaction_id is null) = (p_payment_ref is null) then
    raise exception 'name the purchase by its transaction id or its payment reference'
      using errcode = 'VG400';
  end if;
  if p_reversal_id is null or char_length(p_reversal_id) not between 1 and 200 then
    raise exception 'reversal id required (1–200 characters)' using errcode = 'VG400';
  end if;
  if p_amount_minor < 0 or p_share_per_100000 not between 0 and 100000 then
    raise exception 'a refund returns a positive amount or share' using errcode = 'VGC22';
  end if;

  select user_id into v_user from private.purchases
   where store = p_store
     and (transaction_id = p_transaction_id or payment_ref = p_payment_ref);
  if not found then
    return jsonb_build_object('applied', false, 'reason', 'no purchase matches');
  end if;
  -- The profile first, as every money write does; then the purchase, which must still be
  -- that user's (a merge moves purchases while holding both profiles).
  select * into v_profile from public.profiles where id = v_user for update;
  select * into v_purchase from private.purchases
   where store = p_store
     and (transaction_id = p_transaction_id or payment_ref = p_payment_ref)
  for update;
  if v_purchase.user_id <> v_user then
    raise exception 'the purchase moved to another account meanwhile'
      using errcode = '40001';  -- retried by the caller
  end if;

  select * into v_reversal from private.purchase_reversals where reversal_id = v_id;
  if found then
    return jsonb_build_object('applied', false, 'reversal', to_jsonb(v_reversal),
                              'purchase', to_jsonb(v_purchase))
           || private.credit_state(v_user);
  end if;

  if p_amount_minor is not null then
    if coalesce(v_purchase.amount_minor, 0) = 0 then
      raise exception 'the purchase has no amount to refund from' using errcode = 'VG400';
    end if;
    select coalesce(sum(r.amount_minor), 0) + p_amount_minor into v_returned
      from private.purchase_reversals r where r.purchase_id = v_purchase.id;
    v_target := floor(v_purchase.credits * least(v_returned, v_purchase.amount_minor)
                      / v_purchase.amount_minor);
  else
    select coalesce(sum(r.share_per_100000), 0) + coalesce(p_share_per_100000, 100000)
      into v_returned
      from private.purchase_reversals r where r.purchase_id = v_purchase.id;
    v_target := floor(v_purchase.credits * least(v_returned, 100000) / 100000);
  end if;
  v_credits := greatest(least(v_target, v_purchase.credits) - v_purchase.clawed_back, 0);
  v_from_balance := least(v_profile.balance, v_credits);

  if v_credits > 0 then
    v_entry := private.ledger_apply_debt(
      v_user, 'clawback', -v_from_balance, v_credits - v_from_balance, 'clawback:' || v_id,
      coalesce(nullif(p_description, ''), p_kind || ' of ' || v_purchase.transaction_id));
    update private.purchases set clawed_back = clawed_back + v_credits
     where id = v_purchase.id returning * into v_purchase;
  end if;

  insert into private.purchase_reversals
    (purchase_id, user_id, kind, reversal_id, amount_minor, share_per_100000, credits,
     from_balance, to_debt, ledger_id)
  values
    (v_purchase.id, v_user, p_kind, v_id, p_amount_minor,
     case when p_amount_minor is null then coalesce(p_share_per_100000, 100000) end,
     v_credits, v_from_balance, v_credits - v_from_balance, v_entry.id)
  returning * into v_reversal;

  return jsonb_build_object('applied', true, 'reversal', to_jsonb(v_reversal),
                            'purchase', to_jsonb(v_purchase),
                            'entry', case when v_entry.id is not null then to_jsonb(v_entry) end)
         || private.credit_state(v_user);
end;
$function$
;

CREATE OR REPLACE FUNCTION service.purchase_reverse_request(p_request jsonb, p_store text, p_reversal_id text, p_kind text, p_transaction_id text DEFAULT NULL::text, p_payment_ref text DEFAULT NULL::text, p_amount_minor bigint DEFAULT NULL::bigint, p_share_per_100000 integer DEFAULT NULL::integer, p_description text DEFAULT ''::text)
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
  return private.request_finish(p_request, 200, service.purchase_reverse(
    p_store, p_reversal_id, p_kind, p_transaction_id, p_payment_ref, p_amount_minor,
    p_share_per_100000, p_description));
end;
$function$
;

CREATE OR REPLACE FUNCTION service.rate_limit_take(p_principal text, p_bucket text, p_limit integer, p_window_seconds integer DEFAULT 60)
 RETURNS integer
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  v_window timestamptz := to_timestamp(
    floor(extract(epoch from now()) / p_window_seconds) * p_window_seconds);
  v_count integer;
begin
  insert into private.rate_limits as r (principal, bucket, window_start, count)
  values (p_principal, p_bucket, v_window, 1)
  on conflict (principal, bucket) do update
     set count = case when r.window_start = excluded.window_start then r.count + 1 else 1 end,
         window_start = excluded.window_start
  returning count into v_count;
  if v_count > p_limit then
    raise exception 'rate limit of % requests per % s exceeded', p_limit, p_window_seconds
      using errcode = 'VGR29',
            detail = 'retry_after=' || ceil(extract(epoch from
              (v_window + make_interval(secs => p_window_seconds) - now())))::integer;
  end if;
  return p_limit - v_count;
end;
$function$
;

CREATE OR REPLACE FUNCTION service.request_answer_replace(p_request jsonb, p_status integer, p_data jsonb)
 RETURNS void
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
begin
  perform private.request_finish(p_request, p_status, p_data);
end;
$function$
;

CREATE OR REPLACE FUNCTION service.request_refuse(p_request jsonb, p_status integer, p_body jsonb, p_store boolean)
 RETURNS void
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  v_window timestamptz := to_timestamp(floor(extract(epoch from now()) / 60) * 60);
begin
  if p_request ->> 'limit' is not null then
    insert into private.rate_limits as r (principal, bucket, window_start, count)
    values (p_request ->> 'principal', p_request ->> 'bucket', v_window, 1)
    on conflict (principal, bucket) do update
       set count = case when r.window_start = excluded.window_start then r.count + 1 else 1 end,
           window_start = excluded.window_start;
  end if;
  if p_store and p_request ->> 'key' is not null then
    insert into private.idempotency_keys
      (principal, scope, key, request_hash, state, response_status, response_body)
    values (p_request ->> 'principal', p_request ->> 'scope', p_request ->> 'key',
            p_request ->> 'hash', 'completed', p_status, p_body)
    on conflict (principal, scope, key) do nothing;
  end if;
end;
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
begin
  delete from private.idempotency_keys where expires_at < now();
  get diagnostics v_keys = row_count;
  delete from private.webhook_receipts where received_at < now() - interval '7 days';
  get diagnostics v_receipts = row_count;
  delete from private.rate_limits where window_start < now() - interval '1 day';
  return jsonb_build_object('idempotency_keys', v_keys, 'webhook_receipts', v_receipts);
end;
$function$
;

CREATE OR REPLACE FUNCTION service.uploads_list_due(p_retention_days integer, p_limit integer DEFAULT 200)
 RETURNS text[]
 LANGUAGE sql
 STABLE SECURITY DEFINER
 SET search_path TO ''
AS $function$
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

CREATE OR REPLACE FUNCTION service.worker_health_record(p_worker_id uuid, p_ok boolean, p_detail jsonb DEFAULT '{}'::jsonb)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  v_worker public.workers;
begin
  update public.workers
     set last_health_at = now(),
         consecutive_failures = case when p_ok then 0 else consecutive_failures + 1 end,
         status = case
           when status = 'draining' then status
           when p_ok then 'online'
           when consecutive_failures + 1 >= private.setting_int('worker_unhealthy_after_failures')
             then 'unhealthy'
           else status end,
         metadata = metadata || jsonb_build_object('last_health', coalesce(p_detail, '{}'))
   where id = p_worker_id
  returning * into v_worker;
  if not found then
    raise exception 'worker % not registered', p_worker_id using errcode = 'VGW04';
  end if;
  return to_jsonb(v_worker);
end;
$function$
;

CREATE OR REPLACE FUNCTION service.worker_heartbeat(p_worker_id uuid, p_status text DEFAULT 'online'::text)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  v_worker public.workers;
  v_jobs jsonb;
begin
  if p_status not in ('online', 'draining') then
    raise exception 'status must be online or draining' using errcode = 'VG400';
  end if;
  update public.workers
     set last_heartbeat_at = now(), status = p_status::public.worker_status,
         consecutive_failures = 0
   where id = p_worker_id
  returning * into v_worker;
  if not found then
    raise exception 'worker % not registered', p_worker_id using errcode = 'VGW04';
  end if;
  with extended as (
    update public.jobs j
       set lease_expires_at = greatest(j.lease_expires_at, private.lease_until(j.model_id))
     where j.worker_id = p_worker_id and j.status in ('dispatched', 'processing')
    returning j.id, j.attempt
  )
  select coalesce(jsonb_agg(jsonb_build_object('job_id', id, 'attempt', attempt)), '[]')
    into v_jobs from extended;
  return jsonb_build_object('worker', to_jsonb(v_worker), 'jobs', v_jobs);
end;
$function$
;

CREATE OR REPLACE FUNCTION service.worker_register(p_name text, p_url text, p_health_url text, p_models text[], p_capacity integer DEFAULT 1, p_mode text DEFAULT 'push'::text, p_metadata jsonb DEFAULT '{}'::jsonb)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  v_worker public.workers;
  v_unknown text[];
begin
  select array_agg(m) into v_unknown from unnest(p_models) m
   where not exists (select 1 from public.models where id = m);
  if v_unknown is not null then
    raise exception 'unknown models: %', array_to_string(v_unknown, ', ') using errcode = 'VGM04';
  end if;
  insert into public.workers (name, url, health_url, models, capacity, mode, metadata, status,
                              consecutive_failures, last_heartbeat_at)
  values (p_name, p_url, p_health_url, p_models, p_capacity, p_mode, coalesce(p_metadata, '{}'),
          'online', 0, now())
  on conflict (name) do update
     set url = excluded.url, health_url = excluded.health_url, models = excluded.models,
         capacity = excluded.capacity, mode = excluded.mode, metadata = excluded.metadata,
         status = 'online', consecutive_failures = 0, last_heartbeat_at = now()
  returning * into v_worker;
  return to_jsonb(v_worker);
end;
$function$
;

CREATE OR REPLACE FUNCTION service.workers_list()
 RETURNS jsonb
 LANGUAGE sql
 STABLE SECURITY DEFINER
 SET search_path TO ''
AS $function$
  select coalesce(jsonb_agg(to_jsonb(w) order by w.name), '[]') from public.workers w
$function$
;

CREATE OR REPLACE FUNCTION private.forbid_change()
 RETURNS trigger
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
begin
  -- A cascade from deleting the auth user (or its jobs) runs inside the FK trigger.
  if tg_op = 'DELETE' and pg_trigger_depth() > 1 then
    return old;
  end if;
  -- Retention (service.job_events_prune) is the one sanctioned delete of history.
  if tg_op = 'DELETE' and tg_table_name = 'job_events'
     and current_setting('videogen.pruning', true) = 'on' then
    return old;
  end if;
  raise exception '% is append-only', tg_table_name using errcode = 'VG403';
end;
$function$
;

CREATE OR REPLACE FUNCTION private.request_begin(p_request jsonb)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  v_row private.idempotency_keys;
begin
  if p_request ->> 'limit' is not null then
    perform service.rate_limit_take(p_request ->> 'principal', p_request ->> 'bucket',
                                   (p_request ->> 'limit')::integer, 60);
  end if;
  if p_request ->> 'key' is null then
    return null;
  end if;
  -- A committed in_progress row can only be left by an older release that took keys in a
  -- transaction of their own: reclaim it like an expired one.
  insert into private.idempotency_keys (principal, scope, key, request_hash)
  values (p_request ->> 'principal', p_request ->> 'scope', p_request ->> 'key',
          p_request ->> 'hash')
  on conflict (principal, scope, key) do update
     set request_hash = excluded.request_hash, state = 'in_progress', response_status = null,
         response_body = null, created_at = now(), expires_at = now() + interval '24 hours'
   where private.idempotency_keys.expires_at < now()
      or private.idempotency_keys.state = 'in_progress'
  returning * into v_row;
  if found then
    return null;
  end if;
  select * into v_row from private.idempotency_keys
   where principal = p_request ->> 'principal' and scope = p_request ->> 'scope'
     and key = p_request ->> 'key';
  if v_row.request_hash <> p_request ->> 'hash' then
    raise exception 'Idempotency-Key % was used with a different request', p_request ->> 'key'
      using errcode = 'VGI22';
  end if;
  return jsonb_build_object('status', v_row.response_status, 'body', v_row.response_body,
                            'replayed', true);
end;
$function$
;

drop function if exists "public"."admin_fail_job"(p_job_id uuid, p_reason text);

drop function if exists "public"."admin_job_request"(p_request jsonb, p_action text, p_job_id uuid, p_reason text);

drop function if exists "public"."admin_requeue_job"(p_job_id uuid, p_reason text);

drop function if exists "public"."audit_money"(p_grace_seconds integer);

drop function if exists "public"."audit_money_report"(p_grace_seconds integer);

drop function if exists "public"."cancel_batch"(p_batch_id uuid);

drop function if exists "public"."cancel_batch_request"(p_request jsonb, p_batch_id uuid);

drop function if exists "public"."cancel_job"(p_job_id uuid);

drop function if exists "public"."cancel_job_request"(p_request jsonb, p_job_id uuid);

drop function if exists "public"."claim_initial_grant"(p_client jsonb);

drop function if exists "public"."claim_initial_grant_request"(p_request jsonb, p_client jsonb);

drop function if exists "public"."create_batch"(p_items jsonb, p_project_id uuid, p_title text, p_max_credits bigint);

drop function if exists "public"."create_batch_request"(p_request jsonb, p_items jsonb, p_project_id uuid, p_title text, p_max_credits bigint);

drop function if exists "public"."create_job"(p_model_id text, p_params jsonb, p_priority integer, p_project_id uuid, p_max_credits bigint);

drop function if exists "public"."create_job_request"(p_request jsonb, p_model_id text, p_params jsonb, p_priority integer, p_project_id uuid, p_max_credits bigint);

drop function if exists "public"."create_project"(p_title text, p_description text);

drop function if exists "public"."create_project_request"(p_request jsonb, p_title text, p_description text);

drop function if exists "public"."delete_job"(p_job_id uuid);

drop function if exists "public"."delete_job_request"(p_request jsonb, p_job_id uuid);

drop function if exists "public"."delete_project"(p_project_id uuid);

drop function if exists "public"."delete_project_request"(p_request jsonb, p_project_id uuid);

drop function if exists "public"."grant_credits"(p_user_id uuid, p_amount bigint, p_grant_id text, p_kind public.ledger_kind, p_description text);

drop function if exists "public"."grant_credits_request"(p_request jsonb, p_user_id uuid, p_amount bigint, p_grant_id text, p_kind public.ledger_kind, p_description text);

drop function if exists "public"."job_assign"(p_job_id uuid, p_worker_id uuid);

drop function if exists "public"."job_by_provider_id"(p_provider text, p_provider_job_id text);

drop function if exists "public"."job_claim"(p_worker_id uuid, p_limit integer);

drop function if exists "public"."job_complete"(p_job_id uuid, p_attempt integer, p_output jsonb, p_credits_used bigint);

drop function if exists "public"."job_dispatch_external"(p_job_id uuid);

drop function if exists "public"."job_events_prune"(p_days integer);

drop function if exists "public"."job_fail"(p_job_id uuid, p_attempt integer, p_error_code text, p_error_message text, p_retryable boolean);

drop function if exists "public"."job_get_any"(p_job_id uuid);

drop function if exists "public"."job_progress"(p_job_id uuid, p_attempt integer, p_progress integer, p_message text);

drop function if exists "public"."job_report"(p_webhook_id text, p_source text, p_report jsonb);

drop function if exists "public"."job_return"(p_job_id uuid, p_attempt integer, p_reason text);

drop function if exists "public"."job_set_provider_id"(p_job_id uuid, p_attempt integer, p_provider_job_id text);

drop function if exists "public"."job_start"(p_job_id uuid, p_attempt integer);

drop function if exists "public"."jobs_active_external"();

drop function if exists "public"."jobs_assign_pending"(p_limit integer);

drop function if exists "public"."jobs_mark_outputs_expired"(p_job_ids uuid[]);

drop function if exists "public"."jobs_outputs_due"(p_retention_days integer, p_limit integer);

drop function if exists "public"."jobs_requeue_expired"(p_limit integer);

drop function if exists "public"."merge_anonymous"(p_anonymous_id uuid);

drop function if exists "public"."merge_anonymous_request"(p_request jsonb, p_anonymous_id uuid);

drop function if exists "public"."models_by_provider"(p_provider text);

drop function if exists "public"."ops_metrics"();

drop function if exists "public"."ops_readiness"();

drop function if exists "public"."ops_set_unit_prices"(p_prices jsonb);

drop function if exists "public"."ops_unit_prices"();

drop function if exists "public"."prompt_template_activate"(p_template_id uuid);

drop function if exists "public"."prompt_template_for"(p_request jsonb, p_model_id text, p_job_type public.job_type);

drop function if exists "public"."prompt_template_request"(p_request jsonb, p_change jsonb);

drop function if exists "public"."prompt_template_save"(p_job_type public.job_type, p_instruction text, p_hints jsonb, p_note text, p_activate boolean);

drop function if exists "public"."provider_key_delete"(p_request jsonb, p_provider text);

drop function if exists "public"."provider_key_for_job"(p_job_id uuid, p_provider text);

drop function if exists "public"."provider_key_mine"(p_provider text);

drop function if exists "public"."provider_key_save"(p_request jsonb, p_provider text, p_key text);

drop function if exists "public"."purchase_credits"(p_user_id uuid, p_transaction_id text, p_credits bigint, p_description text);

drop function if exists "public"."purchase_credits_request"(p_request jsonb, p_user_id uuid, p_transaction_id text, p_credits bigint, p_description text);

drop function if exists "public"."rate_limit_take"(p_principal text, p_bucket text, p_limit integer, p_window_seconds integer);

drop function if exists "public"."record_purchase"(p_user_id uuid, p_store text, p_transaction_id text, p_credits bigint, p_payment_ref text, p_amount_minor bigint, p_currency text, p_product_id text, p_description text);

drop function if exists "public"."record_purchase_request"(p_request jsonb, p_user_id uuid, p_store text, p_transaction_id text, p_credits bigint, p_payment_ref text, p_amount_minor bigint, p_currency text, p_product_id text, p_description text);

drop function if exists "public"."request_refused"(p_request jsonb, p_status integer, p_body jsonb, p_store boolean);

drop function if exists "public"."request_replace_answer"(p_request jsonb, p_status integer, p_data jsonb);

drop function if exists "public"."requests_cleanup"();

drop function if exists "public"."reverse_purchase"(p_store text, p_reversal_id text, p_kind text, p_transaction_id text, p_payment_ref text, p_amount_minor bigint, p_share_per_100000 integer, p_description text);

drop function if exists "public"."reverse_purchase_request"(p_request jsonb, p_store text, p_reversal_id text, p_kind text, p_transaction_id text, p_payment_ref text, p_amount_minor bigint, p_share_per_100000 integer, p_description text);

drop function if exists "public"."update_project"(p_project_id uuid, p_title text, p_description text);

drop function if exists "public"."update_project_request"(p_request jsonb, p_project_id uuid, p_title text, p_description text);

drop function if exists "public"."uploads_due"(p_retention_days integer, p_limit integer);

drop function if exists "public"."webhook_receipt"(p_webhook_id text, p_source text);

drop function if exists "public"."worker_heartbeat"(p_worker_id uuid, p_status text);

drop function if exists "public"."worker_record_health"(p_worker_id uuid, p_ok boolean, p_detail jsonb);

drop function if exists "public"."worker_register"(p_name text, p_url text, p_health_url text, p_models text[], p_capacity integer, p_mode text, p_metadata jsonb);

drop function if exists "public"."workers_list"();

create or replace view "service"."ops_job_costs" with (security_invoker=true) as  WITH prices AS (
         SELECT COALESCE(max((s.value #>> '{}'::text[])::numeric) FILTER (WHERE s.name = 'cost_per_1k_tokens_usd'::text), 0::numeric) AS per_1k_tokens,
            COALESCE(max((s.value #>> '{}'::text[])::numeric) FILTER (WHERE s.name = 'cost_per_1m_tts_chars_usd'::text), 0::numeric) AS per_1m_chars,
            COALESCE(max((s.value #>> '{}'::text[])::numeric) FILTER (WHERE s.name = 'cost_per_render_hour_usd'::text), 0::numeric) AS per_render_hour,
            COALESCE(max((s.value #>> '{}'::text[])::numeric) FILTER (WHERE s.name = 'credit_value_usd'::text), 0::numeric) AS credit_value,
            COALESCE(jsonb_object_agg(s.name, s.value) FILTER (WHERE s.name = 'provider_cost_per_second_usd'::text) -> 'provider_cost_per_second_usd'::text, '{}'::jsonb) AS provider_rates
           FROM private.settings s
        ), costs AS (
         SELECT j.id AS job_id,
            j.user_id,
            j.model_id,
            j.job_type,
            j.status,
            COALESCE(j.provider, m.provider) AS provider,
            j.finished_at,
            u.job_id IS NOT NULL AS has_usage,
            u.llm_model,
            COALESCE(u.prompt_tokens, 0::bigint) AS prompt_tokens,
            COALESCE(u.completion_tokens, 0::bigint) AS completion_tokens,
            u.tts_engine,
            COALESCE(u.tts_characters, 0::bigint) AS tts_characters,
            COALESCE(u.provider_calls, 0) AS provider_calls,
            COALESCE(u.provider_seconds, 0::numeric) AS provider_seconds,
            u.provider_cost_usd AS provider_reported_cost_usd,
            COALESCE(u.render_seconds, 0::numeric) AS render_seconds,
            COALESCE(u.render_output_seconds, 0::numeric) AS render_output_seconds,
                CASE
                    WHEN j.status = 'completed'::public.job_status THEN j.credits_used
                    ELSE 0::bigint
                END AS credits_captured,
            p.credit_value,
            round((COALESCE(u.prompt_tokens, 0::bigint) + COALESCE(u.completion_tokens, 0::bigint))::numeric * p.per_1k_tokens / 1000::numeric, 6) AS llm_cost_usd,
            round(COALESCE(u.tts_characters, 0::bigint)::numeric * p.per_1m_chars / 1000000::numeric, 6) AS tts_cost_usd,
            round(COALESCE(u.provider_cost_usd, COALESCE(u.provider_seconds, 0::numeric) * COALESCE((p.provider_rates ->> COALESCE(j.provider, m.provider))::numeric, 0::numeric)), 6) AS provider_cost_usd,
            round(COALESCE(u.render_seconds, 0::numeric) * p.per_render_hour / 3600::numeric, 6) AS render_cost_usd
           FROM public.jobs j
             JOIN public.models m ON m.id = j.model_id
             CROSS JOIN prices p
             LEFT JOIN private.job_usage u ON u.job_id = j.id
          WHERE j.finished_at IS NOT NULL
        )
 SELECT c.job_id,
    c.user_id,
    c.model_id,
    c.job_type,
    c.status,
    c.provider,
    c.finished_at,
    c.has_usage,
    c.llm_model,
    c.prompt_tokens,
    c.completion_tokens,
    c.tts_engine,
    c.tts_characters,
    c.provider_calls,
    c.provider_seconds,
    c.provider_reported_cost_usd,
    c.render_seconds,
    c.render_output_seconds,
    round(c.render_seconds / NULLIF(c.render_output_seconds, 0::numeric), 4) AS render_realtime_factor,
    c.credits_captured,
    c.credits_captured::numeric * c.credit_value AS credits_usd,
    c.llm_cost_usd,
    c.tts_cost_usd,
    c.provider_cost_usd,
    c.render_cost_usd,
    c.llm_cost_usd + c.tts_cost_usd + c.provider_cost_usd + c.render_cost_usd AS cost_usd,
    c.credits_captured::numeric * c.credit_value - (c.llm_cost_usd + c.tts_cost_usd + c.provider_cost_usd + c.render_cost_usd) AS margin_usd
   FROM costs c;

create or replace view "service"."ops_videos_daily" with (security_invoker=true) as  SELECT (j.finished_at AT TIME ZONE 'utc'::text)::date AS day,
    count(*) AS finished,
    count(*) FILTER (WHERE j.status = 'completed'::public.job_status) AS completed,
    count(*) FILTER (WHERE j.status = 'failed'::public.job_status) AS failed,
    count(*) FILTER (WHERE j.status = 'canceled'::public.job_status) AS canceled,
    round(count(*) FILTER (WHERE j.status = 'completed'::public.job_status)::numeric / NULLIF(count(*) FILTER (WHERE j.status = ANY (ARRAY['completed'::public.job_status, 'failed'::public.job_status])), 0)::numeric, 4) AS success_rate,
    round(avg(EXTRACT(epoch FROM j.finished_at - j.started_at)) FILTER (WHERE j.status = 'completed'::public.job_status), 3) AS avg_generation_seconds,
    round(avg(EXTRACT(epoch FROM j.finished_at - j.created_at)) FILTER (WHERE j.status = 'completed'::public.job_status), 3) AS avg_turnaround_seconds,
    COALESCE(sum(j.credits_used) FILTER (WHERE j.status = 'completed'::public.job_status), 0::numeric) AS credits_captured,
    round(avg(j.credits_used) FILTER (WHERE j.status = 'completed'::public.job_status), 2) AS credits_per_video
   FROM public.jobs j
  WHERE j.finished_at IS NOT NULL AND (j.job_type = ANY (ARRAY['text_to_video'::public.job_type, 'image_to_video'::public.job_type, 'compose'::public.job_type]))
  GROUP BY ((j.finished_at AT TIME ZONE 'utc'::text)::date);

create or replace view "service"."ops_videos_daily_by_model" with (security_invoker=true) as  SELECT (j.finished_at AT TIME ZONE 'utc'::text)::date AS day,
    j.model_id,
    j.job_type,
    count(*) AS finished,
    count(*) FILTER (WHERE j.status = 'completed'::public.job_status) AS completed,
    count(*) FILTER (WHERE j.status = 'failed'::public.job_status) AS failed,
    count(*) FILTER (WHERE j.status = 'canceled'::public.job_status) AS canceled,
    round(count(*) FILTER (WHERE j.status = 'completed'::public.job_status)::numeric / NULLIF(count(*) FILTER (WHERE j.status = ANY (ARRAY['completed'::public.job_status, 'failed'::public.job_status])), 0)::numeric, 4) AS success_rate,
    round(avg(EXTRACT(epoch FROM j.finished_at - j.started_at)) FILTER (WHERE j.status = 'completed'::public.job_status), 3) AS avg_generation_seconds,
    round(avg(EXTRACT(epoch FROM j.finished_at - j.created_at)) FILTER (WHERE j.status = 'completed'::public.job_status), 3) AS avg_turnaround_seconds,
    COALESCE(sum(j.credits_used) FILTER (WHERE j.status = 'completed'::public.job_status), 0::numeric) AS credits_captured,
    round(avg(j.credits_used) FILTER (WHERE j.status = 'completed'::public.job_status), 2) AS credits_per_video
   FROM public.jobs j
  WHERE j.finished_at IS NOT NULL AND (j.job_type = ANY (ARRAY['text_to_video'::public.job_type, 'image_to_video'::public.job_type, 'compose'::public.job_type]))
  GROUP BY ((j.finished_at AT TIME ZONE 'utc'::text)::date), j.model_id, j.job_type;

create or replace view "service"."ops_costs_daily" with (security_invoker=true) as  SELECT (c.finished_at AT TIME ZONE 'utc'::text)::date AS day,
    count(*) AS finished,
    count(*) FILTER (WHERE c.status = 'completed'::public.job_status) AS completed,
    count(*) FILTER (WHERE c.has_usage) AS with_usage,
    sum(c.credits_captured) AS credits_captured,
    sum(c.credits_usd) AS credits_usd,
    sum(c.llm_cost_usd) AS llm_cost_usd,
    sum(c.tts_cost_usd) AS tts_cost_usd,
    sum(c.provider_cost_usd) AS provider_cost_usd,
    sum(c.render_cost_usd) AS render_cost_usd,
    sum(c.cost_usd) AS cost_usd,
    sum(c.margin_usd) AS margin_usd,
    round(sum(c.margin_usd) / NULLIF(sum(c.credits_usd), 0::numeric), 4) AS margin_rate,
    round(sum(c.cost_usd) / NULLIF(count(*) FILTER (WHERE c.status = 'completed'::public.job_status), 0)::numeric, 6) AS cost_per_completed_usd,
    sum(c.prompt_tokens) AS prompt_tokens,
    sum(c.completion_tokens) AS completion_tokens,
    sum(c.tts_characters) AS tts_characters,
    sum(c.provider_calls) AS provider_calls,
    sum(c.provider_seconds) AS provider_seconds,
    sum(c.render_seconds) AS render_seconds,
    sum(c.render_output_seconds) AS render_output_seconds
   FROM service.ops_job_costs c
  GROUP BY ((c.finished_at AT TIME ZONE 'utc'::text)::date);

create or replace view "service"."ops_costs_daily_by_model" with (security_invoker=true) as  SELECT (c.finished_at AT TIME ZONE 'utc'::text)::date AS day,
    c.model_id,
    c.job_type,
    count(*) AS finished,
    count(*) FILTER (WHERE c.status = 'completed'::public.job_status) AS completed,
    count(*) FILTER (WHERE c.has_usage) AS with_usage,
    sum(c.credits_captured) AS credits_captured,
    sum(c.credits_usd) AS credits_usd,
    sum(c.llm_cost_usd) AS llm_cost_usd,
    sum(c.tts_cost_usd) AS tts_cost_usd,
    sum(c.provider_cost_usd) AS provider_cost_usd,
    sum(c.render_cost_usd) AS render_cost_usd,
    sum(c.cost_usd) AS cost_usd,
    sum(c.margin_usd) AS margin_usd,
    round(sum(c.margin_usd) / NULLIF(sum(c.credits_usd), 0::numeric), 4) AS margin_rate,
    round(sum(c.cost_usd) / NULLIF(count(*) FILTER (WHERE c.status = 'completed'::public.job_status), 0)::numeric, 6) AS cost_per_completed_usd,
    sum(c.prompt_tokens) AS prompt_tokens,
    sum(c.completion_tokens) AS completion_tokens,
    sum(c.tts_characters) AS tts_characters,
    sum(c.provider_calls) AS provider_calls,
    sum(c.provider_seconds) AS provider_seconds,
    sum(c.render_seconds) AS render_seconds,
    sum(c.render_output_seconds) AS render_output_seconds
   FROM service.ops_job_costs c
  GROUP BY ((c.finished_at AT TIME ZONE 'utc'::text)::date), c.model_id, c.job_type;

revoke execute on function private.credits_pro_rata(p_job public.jobs, p_seconds double precision) from public;

revoke execute on function private.job_delete(p_job_id uuid) from public;

revoke execute on function private.webhook_receipt_record(p_webhook_id text, p_source text) from public;

revoke execute on function service.admin_job_fail(p_job_id uuid, p_reason text) from public;

revoke execute on function service.admin_job_request(p_request jsonb, p_action text, p_job_id uuid, p_reason text) from public;

revoke execute on function service.admin_job_requeue(p_job_id uuid, p_reason text) from public;

revoke execute on function service.anonymous_merge(p_anonymous_id uuid) from public;

revoke execute on function service.anonymous_merge_request(p_request jsonb, p_anonymous_id uuid) from public;

revoke execute on function service.batch_cancel(p_batch_id uuid) from public;

revoke execute on function service.batch_cancel_request(p_request jsonb, p_batch_id uuid) from public;

revoke execute on function service.batch_create(p_items jsonb, p_project_id uuid, p_title text, p_max_credits bigint) from public;

revoke execute on function service.batch_create_request(p_request jsonb, p_items jsonb, p_project_id uuid, p_title text, p_max_credits bigint) from public;

revoke execute on function service.credits_grant(p_user_id uuid, p_amount bigint, p_grant_id text, p_kind public.ledger_kind, p_description text) from public;

revoke execute on function service.credits_grant_request(p_request jsonb, p_user_id uuid, p_amount bigint, p_grant_id text, p_kind public.ledger_kind, p_description text) from public;

revoke execute on function service.credits_purchase(p_user_id uuid, p_transaction_id text, p_credits bigint, p_description text) from public;

revoke execute on function service.credits_purchase_request(p_request jsonb, p_user_id uuid, p_transaction_id text, p_credits bigint, p_description text) from public;

revoke execute on function service.initial_grant_claim(p_client jsonb) from public;

revoke execute on function service.initial_grant_claim_request(p_request jsonb, p_client jsonb) from public;

revoke execute on function service.job_assign(p_job_id uuid, p_worker_id uuid) from public;

revoke execute on function service.job_cancel(p_job_id uuid) from public;

revoke execute on function service.job_cancel_request(p_request jsonb, p_job_id uuid) from public;

revoke execute on function service.job_complete(p_job_id uuid, p_attempt integer, p_output jsonb, p_credits_used bigint, p_rendered_seconds double precision) from public;

revoke execute on function service.job_create(p_model_id text, p_params jsonb, p_priority integer, p_project_id uuid, p_max_credits bigint) from public;

revoke execute on function service.job_create_request(p_request jsonb, p_model_id text, p_params jsonb, p_priority integer, p_project_id uuid, p_max_credits bigint) from public;

revoke execute on function service.job_delete_request(p_request jsonb, p_job_id uuid) from public;

revoke execute on function service.job_dispatch_external(p_job_id uuid) from public;

revoke execute on function service.job_events_prune(p_days integer) from public;

revoke execute on function service.job_fail(p_job_id uuid, p_attempt integer, p_error_code text, p_error_message text, p_retryable boolean) from public;

revoke execute on function service.job_get_any(p_job_id uuid) from public;

revoke execute on function service.job_get_by_provider_id(p_provider text, p_provider_job_id text) from public;

revoke execute on function service.job_progress(p_job_id uuid, p_attempt integer, p_progress integer, p_message text) from public;

revoke execute on function service.job_report(p_webhook_id text, p_source text, p_report jsonb) from public;

revoke execute on function service.job_return(p_job_id uuid, p_attempt integer, p_reason text) from public;

revoke execute on function service.job_set_provider_id(p_job_id uuid, p_attempt integer, p_provider_job_id text) from public;

revoke execute on function service.job_start(p_job_id uuid, p_attempt integer) from public;

revoke execute on function service.jobs_assign_pending(p_limit integer) from public;

revoke execute on function service.jobs_list_active_external() from public;

revoke execute on function service.jobs_list_outputs_due(p_retention_days integer, p_limit integer) from public;

revoke execute on function service.jobs_mark_outputs_expired(p_job_ids uuid[]) from public;

revoke execute on function service.jobs_requeue_expired(p_limit integer) from public;

revoke execute on function service.models_list_by_provider(p_provider text) from public;

revoke execute on function service.money_audit(p_grace_seconds integer) from public;

revoke execute on function service.money_audit_report(p_grace_seconds integer) from public;

revoke execute on function service.ops_metrics_read() from public;

revoke execute on function service.ops_readiness_check() from public;

revoke execute on function service.ops_unit_prices_read() from public;

revoke execute on function service.ops_unit_prices_set(p_prices jsonb) from public;

revoke execute on function service.project_create(p_title text, p_description text) from public;

revoke execute on function service.project_create_request(p_request jsonb, p_title text, p_description text) from public;

revoke execute on function service.project_delete(p_project_id uuid) from public;

revoke execute on function service.project_delete_request(p_request jsonb, p_project_id uuid) from public;

revoke execute on function service.project_update(p_project_id uuid, p_title text, p_description text) from public;

revoke execute on function service.project_update_request(p_request jsonb, p_project_id uuid, p_title text, p_description text) from public;

revoke execute on function service.prompt_template_activate(p_template_id uuid) from public;

revoke execute on function service.prompt_template_change_request(p_request jsonb, p_change jsonb) from public;

revoke execute on function service.prompt_template_get(p_request jsonb, p_model_id text, p_job_type public.job_type) from public;

revoke execute on function service.prompt_template_save(p_job_type public.job_type, p_instruction text, p_hints jsonb, p_note text, p_activate boolean) from public;

revoke execute on function service.provider_key_delete(p_request jsonb, p_provider text) from public;

revoke execute on function service.provider_key_get_for_job(p_job_id uuid, p_provider text) from public;

revoke execute on function service.provider_key_get_mine(p_provider text) from public;

revoke execute on function service.provider_key_save(p_request jsonb, p_provider text, p_key text) from public;

revoke execute on function service.purchase_record(p_user_id uuid, p_store text, p_transaction_id text, p_credits bigint, p_payment_ref text, p_amount_minor bigint, p_currency text, p_product_id text, p_description text) from public;

revoke execute on function service.purchase_record_request(p_request jsonb, p_user_id uuid, p_store text, p_transaction_id text, p_credits bigint, p_payment_ref text, p_amount_minor bigint, p_currency text, p_product_id text, p_description text) from public;

revoke execute on function service.purchase_reverse(p_store text, p_reversal_id text, p_kind text, p_transaction_id text, p_payment_ref text, p_amount_minor bigint, p_share_per_100000 integer, p_description text) from public;

revoke execute on function service.purchase_reverse_request(p_request jsonb, p_store text, p_reversal_id text, p_kind text, p_transaction_id text, p_payment_ref text, p_amount_minor bigint, p_share_per_100000 integer, p_description text) from public;

revoke execute on function service.rate_limit_take(p_principal text, p_bucket text, p_limit integer, p_window_seconds integer) from public;

revoke execute on function service.request_answer_replace(p_request jsonb, p_status integer, p_data jsonb) from public;

revoke execute on function service.request_refuse(p_request jsonb, p_status integer, p_body jsonb, p_store boolean) from public;

revoke execute on function service.requests_clean_up() from public;

revoke execute on function service.uploads_list_due(p_retention_days integer, p_limit integer) from public;

revoke execute on function service.worker_claim(p_worker_id uuid, p_limit integer) from public;

revoke execute on function service.worker_health_record(p_worker_id uuid, p_ok boolean, p_detail jsonb) from public;

revoke execute on function service.worker_heartbeat(p_worker_id uuid, p_status text) from public;

revoke execute on function service.worker_register(p_name text, p_url text, p_health_url text, p_models text[], p_capacity integer, p_mode text, p_metadata jsonb) from public;

revoke execute on function service.workers_list() from public;

grant execute on function private.credits_pro_rata(p_job public.jobs, p_seconds double precision) to service_role;

grant execute on function private.job_delete(p_job_id uuid) to service_role;

grant execute on function private.webhook_receipt_record(p_webhook_id text, p_source text) to service_role;

grant execute on function service.admin_job_fail(p_job_id uuid, p_reason text) to service_role;

grant execute on function service.admin_job_request(p_request jsonb, p_action text, p_job_id uuid, p_reason text) to service_role;

grant execute on function service.admin_job_requeue(p_job_id uuid, p_reason text) to service_role;

grant execute on function service.anonymous_merge(p_anonymous_id uuid) to service_role;

grant execute on function service.anonymous_merge_request(p_request jsonb, p_anonymous_id uuid) to service_role;

grant execute on function service.batch_cancel(p_batch_id uuid) to service_role;

grant execute on function service.batch_cancel_request(p_request jsonb, p_batch_id uuid) to service_role;

grant execute on function service.batch_create(p_items jsonb, p_project_id uuid, p_title text, p_max_credits bigint) to service_role;

grant execute on function service.batch_create_request(p_request jsonb, p_items jsonb, p_project_id uuid, p_title text, p_max_credits bigint) to service_role;

grant execute on function service.credits_grant(p_user_id uuid, p_amount bigint, p_grant_id text, p_kind public.ledger_kind, p_description text) to service_role;

grant execute on function service.credits_grant_request(p_request jsonb, p_user_id uuid, p_amount bigint, p_grant_id text, p_kind public.ledger_kind, p_description text) to service_role;

grant execute on function service.credits_purchase(p_user_id uuid, p_transaction_id text, p_credits bigint, p_description text) to service_role;

grant execute on function service.credits_purchase_request(p_request jsonb, p_user_id uuid, p_transaction_id text, p_credits bigint, p_description text) to service_role;

grant execute on function service.initial_grant_claim(p_client jsonb) to service_role;

grant execute on function service.initial_grant_claim_request(p_request jsonb, p_client jsonb) to service_role;

grant execute on function service.job_assign(p_job_id uuid, p_worker_id uuid) to service_role;

grant execute on function service.job_cancel(p_job_id uuid) to service_role;

grant execute on function service.job_cancel_request(p_request jsonb, p_job_id uuid) to service_role;

grant execute on function service.job_complete(p_job_id uuid, p_attempt integer, p_output jsonb, p_credits_used bigint, p_rendered_seconds double precision) to service_role;

grant execute on function service.job_create(p_model_id text, p_params jsonb, p_priority integer, p_project_id uuid, p_max_credits bigint) to service_role;

grant execute on function service.job_create_request(p_request jsonb, p_model_id text, p_params jsonb, p_priority integer, p_project_id uuid, p_max_credits bigint) to service_role;

grant execute on function service.job_delete_request(p_request jsonb, p_job_id uuid) to service_role;

grant execute on function service.job_dispatch_external(p_job_id uuid) to service_role;

grant execute on function service.job_events_prune(p_days integer) to service_role;

grant execute on function service.job_fail(p_job_id uuid, p_attempt integer, p_error_code text, p_error_message text, p_retryable boolean) to service_role;

grant execute on function service.job_get_any(p_job_id uuid) to service_role;

grant execute on function service.job_get_by_provider_id(p_provider text, p_provider_job_id text) to service_role;

grant execute on function service.job_progress(p_job_id uuid, p_attempt integer, p_progress integer, p_message text) to service_role;

grant execute on function service.job_report(p_webhook_id text, p_source text, p_report jsonb) to service_role;

grant execute on function service.job_return(p_job_id uuid, p_attempt integer, p_reason text) to service_role;

grant execute on function service.job_set_provider_id(p_job_id uuid, p_attempt integer, p_provider_job_id text) to service_role;

grant execute on function service.job_start(p_job_id uuid, p_attempt integer) to service_role;

grant execute on function service.jobs_assign_pending(p_limit integer) to service_role;

grant execute on function service.jobs_list_active_external() to service_role;

grant execute on function service.jobs_list_outputs_due(p_retention_days integer, p_limit integer) to service_role;

grant execute on function service.jobs_mark_outputs_expired(p_job_ids uuid[]) to service_role;

grant execute on function service.jobs_requeue_expired(p_limit integer) to service_role;

grant execute on function service.models_list_by_provider(p_provider text) to service_role;

grant execute on function service.money_audit(p_grace_seconds integer) to service_role;

grant execute on function service.money_audit_report(p_grace_seconds integer) to service_role;

grant execute on function service.ops_metrics_read() to service_role;

grant execute on function service.ops_readiness_check() to service_role;

grant execute on function service.ops_unit_prices_read() to service_role;

grant execute on function service.ops_unit_prices_set(p_prices jsonb) to service_role;

grant execute on function service.project_create(p_title text, p_description text) to service_role;

grant execute on function service.project_create_request(p_request jsonb, p_title text, p_description text) to service_role;

grant execute on function service.project_delete(p_project_id uuid) to service_role;

grant execute on function service.project_delete_request(p_request jsonb, p_project_id uuid) to service_role;

grant execute on function service.project_update(p_project_id uuid, p_title text, p_description text) to service_role;

grant execute on function service.project_update_request(p_request jsonb, p_project_id uuid, p_title text, p_description text) to service_role;

grant execute on function service.prompt_template_activate(p_template_id uuid) to service_role;

grant execute on function service.prompt_template_change_request(p_request jsonb, p_change jsonb) to service_role;

grant execute on function service.prompt_template_get(p_request jsonb, p_model_id text, p_job_type public.job_type) to service_role;

grant execute on function service.prompt_template_save(p_job_type public.job_type, p_instruction text, p_hints jsonb, p_note text, p_activate boolean) to service_role;

grant execute on function service.provider_key_delete(p_request jsonb, p_provider text) to service_role;

grant execute on function service.provider_key_get_for_job(p_job_id uuid, p_provider text) to service_role;

grant execute on function service.provider_key_get_mine(p_provider text) to service_role;

grant execute on function service.provider_key_save(p_request jsonb, p_provider text, p_key text) to service_role;

grant execute on function service.purchase_record(p_user_id uuid, p_store text, p_transaction_id text, p_credits bigint, p_payment_ref text, p_amount_minor bigint, p_currency text, p_product_id text, p_description text) to service_role;

grant execute on function service.purchase_record_request(p_request jsonb, p_user_id uuid, p_store text, p_transaction_id text, p_credits bigint, p_payment_ref text, p_amount_minor bigint, p_currency text, p_product_id text, p_description text) to service_role;

grant execute on function service.purchase_reverse(p_store text, p_reversal_id text, p_kind text, p_transaction_id text, p_payment_ref text, p_amount_minor bigint, p_share_per_100000 integer, p_description text) to service_role;

grant execute on function service.purchase_reverse_request(p_request jsonb, p_store text, p_reversal_id text, p_kind text, p_transaction_id text, p_payment_ref text, p_amount_minor bigint, p_share_per_100000 integer, p_description text) to service_role;

grant execute on function service.rate_limit_take(p_principal text, p_bucket text, p_limit integer, p_window_seconds integer) to service_role;

grant execute on function service.request_answer_replace(p_request jsonb, p_status integer, p_data jsonb) to service_role;

grant execute on function service.request_refuse(p_request jsonb, p_status integer, p_body jsonb, p_store boolean) to service_role;

grant execute on function service.requests_clean_up() to service_role;

grant execute on function service.uploads_list_due(p_retention_days integer, p_limit integer) to service_role;

grant execute on function service.worker_claim(p_worker_id uuid, p_limit integer) to service_role;

grant execute on function service.worker_health_record(p_worker_id uuid, p_ok boolean, p_detail jsonb) to service_role;

grant execute on function service.worker_heartbeat(p_worker_id uuid, p_status text) to service_role;

grant execute on function service.worker_register(p_name text, p_url text, p_health_url text, p_models text[], p_capacity integer, p_mode text, p_metadata jsonb) to service_role;

grant execute on function service.workers_list() to service_role;

grant usage on schema service to service_role;

grant select on table service.ops_costs_daily to service_role;

grant select on table service.ops_costs_daily_by_model to service_role;

grant select on table service.ops_job_costs to service_role;

grant select on table service.ops_videos_daily to service_role;

grant select on table service.ops_videos_daily_by_model to service_role;


-- ===================================================================================
-- pg_cron (hand-written): the schedules call the procedures by their new names
-- (cron.schedule updates a job of the same name)
-- ===================================================================================

do $cron$
begin
  if to_regnamespace('cron') is null then
    return;
  end if;
  perform cron.schedule('videogen-requeue-expired', '* * * * *',
                        'select service.jobs_requeue_expired()');
  perform cron.schedule('videogen-requests-cleanup', '17 * * * *',
                        'select service.requests_clean_up()');
  perform cron.schedule('videogen-prune-events', '42 3 * * *',
                        'select service.job_events_prune(90)');
end;
$cron$;
