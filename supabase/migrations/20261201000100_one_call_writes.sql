-- One database call per write (issue 9): the rate limit, the Idempotency-Key, the action
-- and its stored answer in one transaction, so a crash strands no key "in progress".
-- Replaces idempotency_begin / _finish / _abandon, which took the key in a transaction of
-- its own.

drop function public.idempotency_begin(text, text, text, text);
drop function public.idempotency_finish(text, text, text, integer, jsonb);
drop function public.idempotency_abandon(text, text, text);

/** Take a rate-limit slot and the Idempotency-Key; the stored answer of a twin, or null. */
create function private.request_begin(p_request jsonb)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_row private.idempotency_keys;
begin
  if p_request ->> 'limit' is not null then
    perform public.rate_limit_take(p_request ->> 'principal', p_request ->> 'bucket',
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
$$;

/** Store the answer under the request's key (if it has one); returns {"status", "data"}. */
create function private.request_finish(p_request jsonb, p_status integer, p_data jsonb)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
begin
  if p_request ->> 'key' is not null then
    update private.idempotency_keys
       set state = 'completed', response_status = p_status,
           response_body = jsonb_build_object('success', true, 'data', p_data)
     where principal = p_request ->> 'principal' and scope = p_request ->> 'scope'
       and key = p_request ->> 'key';
  end if;
  return jsonb_build_object('status', p_status, 'data', p_data);
end;
$$;

/**
 * Service: a write was refused (its transaction rolled back). It still counts against the
 * rate limit, and with `p_store` a definite refusal (402, 404, 422…) becomes the key's
 * answer, so a retry with the key hears the same; a key that a twin completed meanwhile
 * keeps that answer. One call, on the error path only.
 */
create function public.request_refused(
  p_request jsonb, p_status integer, p_body jsonb, p_store boolean
)
returns void
language plpgsql
security definer
set search_path = ''
as $$
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
$$;

/** Service, for the user in the claims: create_job as one request (rate limit, key). */
create function public.create_job_request(
  p_request jsonb, p_model_id text, p_params jsonb default '{}', p_priority integer default 0
)
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
  return private.request_finish(p_request, 202,
                                public.create_job(p_model_id, p_params, p_priority));
end;
$$;

/** Service, for the user in the claims: cancel_job as one request. */
create function public.cancel_job_request(p_request jsonb, p_job_id uuid)
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
  return private.request_finish(p_request, 200, public.cancel_job(p_job_id));
end;
$$;

/** Service, for the user in the claims: claim_initial_grant as one request. */
create function public.claim_initial_grant_request(p_request jsonb)
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
  return private.request_finish(p_request, 200, public.claim_initial_grant());
end;
$$;

/** Service: grant_credits as one request. */
create function public.grant_credits_request(
  p_request jsonb, p_user_id uuid, p_amount bigint, p_grant_id text,
  p_kind public.ledger_kind default 'grant', p_description text default ''
)
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
  return private.request_finish(p_request, 200, public.grant_credits(
    p_user_id, p_amount, p_grant_id, p_kind, p_description));
end;
$$;

/** Service: purchase_credits as one request. */
create function public.purchase_credits_request(
  p_request jsonb, p_user_id uuid, p_transaction_id text, p_credits bigint,
  p_description text default 'purchase'
)
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
  return private.request_finish(p_request, 200, public.purchase_credits(
    p_user_id, p_transaction_id, p_credits, p_description));
end;
$$;

/** Service: give a request's key a later, final answer (a composed video rendered at once). */
create function public.request_replace_answer(p_request jsonb, p_status integer, p_data jsonb)
returns void
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform private.request_finish(p_request, p_status, p_data);
end;
$$;

revoke all on function private.request_begin(jsonb),
  private.request_finish(jsonb, integer, jsonb) from public;
revoke execute on function public.request_refused(jsonb, integer, jsonb, boolean),
  public.create_job_request(jsonb, text, jsonb, integer), public.cancel_job_request(jsonb, uuid),
  public.claim_initial_grant_request(jsonb),
  public.grant_credits_request(jsonb, uuid, bigint, text, public.ledger_kind, text),
  public.purchase_credits_request(jsonb, uuid, text, bigint, text),
  public.request_replace_answer(jsonb, integer, jsonb)
  from public, anon, authenticated;
grant execute on function private.request_begin(jsonb),
  private.request_finish(jsonb, integer, jsonb) to service_role;

-- The queue position costs the same whatever the queue's length (exact up to 100).
/**
 * 1-based place in its model's queue, exact up to 100; 101 means "more than 100 ahead";
 * null when the job is not queued. Two index range scans over the jobs ahead only (higher
 * priority; same priority and older), each stopped at 100 rows: the cost of a create does
 * not grow with the queue.
 */
create or replace function private.queue_position(p_job public.jobs)
returns bigint
language plpgsql stable
security definer
set search_path = ''
as $$
begin
  if p_job.status <> 'queued' then
    return null;
  end if;
  return 1 + least(100,
    (select count(*) from (
       select 1 from public.jobs j
        where j.status = 'queued' and j.model_id = p_job.model_id
          and j.priority > p_job.priority
        limit 100) higher)
    + (select count(*) from (
       select 1 from public.jobs j
        where j.status = 'queued' and j.model_id = p_job.model_id
          and j.priority = p_job.priority and j.created_at <= p_job.created_at
          and (j.created_at < p_job.created_at or j.id < p_job.id)
        limit 100) older));
end;
$$;

-- A job report (worker callback or provider news) with its receipt, as one call.
/**
 * Service: one report about a job's current attempt — a worker's signed callback or a
 * provider's news — as one transaction: the delivery's receipt (when it has an id; a
 * repeat answers {"applied": false, "reason": "duplicate_delivery"}) and the change.
 * `p_report` is {type: started|progress|completed|failed, job_id, attempt, progress?,
 * message?, output?, credits_used?, error?: {code, message, retryable}}.
 */
create function public.job_report(p_webhook_id text, p_source text, p_report jsonb)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_job_id uuid := (p_report ->> 'job_id')::uuid;
  v_attempt integer := (p_report ->> 'attempt')::integer;
  v_error jsonb := coalesce(p_report -> 'error', '{}');
begin
  if p_webhook_id is not null and not public.webhook_receipt(p_webhook_id, p_source) then
    return jsonb_build_object('applied', false, 'reason', 'duplicate_delivery');
  end if;
  case p_report ->> 'type'
    when 'started' then
      return public.job_start(v_job_id, v_attempt);
    when 'progress' then
      return public.job_progress(v_job_id, v_attempt,
                                 coalesce((p_report ->> 'progress')::integer, 0),
                                 p_report ->> 'message');
    when 'completed' then
      return public.job_complete(v_job_id, v_attempt, coalesce(p_report -> 'output', '{}'),
                                 (p_report ->> 'credits_used')::bigint);
    when 'failed' then
      return public.job_fail(v_job_id, v_attempt,
                             coalesce(v_error ->> 'code', 'WORKER_ERROR'),
                             coalesce(v_error ->> 'message', ''),
                             coalesce((v_error ->> 'retryable')::boolean, true));
    else
      raise exception 'unknown report type %', p_report ->> 'type' using errcode = 'VG400';
  end case;
end;
$$;
revoke execute on function public.job_report(text, text, jsonb) from public, anon, authenticated;
