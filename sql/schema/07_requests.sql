/*
 * Module 7: request plumbing the functions share — rate limits, idempotency keys, and the
 * `*_request` procedures that run a write with both in one transaction.
 */

/**
 * Service: count one request in a fixed window; raises VGR29 with DETAIL
 * "retry_after=<seconds>" when over the limit (the refused request is not counted).
 */
create function service.rate_limit_take(
  p_principal text, p_bucket text, p_limit integer, p_window_seconds integer default 60
)
returns integer
language plpgsql
security definer
set search_path = ''
as $$
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
$$;

/**
 * Service (sweep): drop expired idempotency keys, old rate windows and webhook ids, and
 * the webhook deliveries (module 22) that ended more than webhook_retention_days ago.
 */
create function service.requests_clean_up()
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
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
$$;

-- ===================================================================================
-- Writes as one transaction: rate limit, Idempotency-Key, the action, its stored answer
-- ===================================================================================

/*
 * The functions send each write as one call of a `*_request` procedure, so there is no
 * state between the steps that a crash could strand. `p_request` describes the request:
 *   {"principal": "user:<uid>" | "secret:<key name>", "scope": "<function>:<METHOD>",
 *    "bucket": "<function>", "limit": <per minute> | null, "key": "<Idempotency-Key>" | null,
 *    "hash": "<sha256 of body and query>"}
 * A twin with the same key waits on the key's row for the first to commit, then replays
 * its answer; if the first rolled back, the twin runs. Every `*_request` returns
 * {"status", "data"} or, for a replay, the stored {"status", "body", "replayed": true}.
 */

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
create function service.request_refuse(
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

/** Service, for the user in the claims: service.job_create as one request (rate limit, key). */
create function service.job_create_request(
  p_request jsonb, p_model_id text, p_params jsonb default '{}', p_priority integer default 0,
  p_project_id uuid default null, p_max_credits bigint default null,
  p_delivery jsonb default null
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
                                service.job_create(p_model_id, p_params, p_priority, p_project_id,
                                                  p_max_credits, p_delivery));
end;
$$;

/**
 * Service, for the user in the claims: service.job_cancel as one request. The answer (stored for
 * the key) is the client's {job, worker_notified: false}; "running" (the worker or
 * provider to tell, after the commit) goes to the caller only, never into a replay.
 */
create function service.job_cancel_request(p_request jsonb, p_job_id uuid)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
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
$$;

/** Service, for the user in the claims: service.initial_grant_claim as one request. */
create function service.initial_grant_claim_request(p_request jsonb, p_client jsonb default '{}')
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
  return private.request_finish(p_request, 200, service.initial_grant_claim(p_client));
end;
$$;

/** Service: service.credits_grant as one request. */
create function service.credits_grant_request(
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
  return private.request_finish(p_request, 200, service.credits_grant(
    p_user_id, p_amount, p_grant_id, p_kind, p_description));
end;
$$;

/** Service: service.credits_purchase as one request. */
create function service.credits_purchase_request(
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
  return private.request_finish(p_request, 200, service.credits_purchase(
    p_user_id, p_transaction_id, p_credits, p_description));
end;
$$;

/** Service: give a request's key a later, final answer (a composed video rendered at once). */
create function service.request_answer_replace(p_request jsonb, p_status integer, p_data jsonb)
returns void
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform private.request_finish(p_request, p_status, p_data);
end;
$$;
