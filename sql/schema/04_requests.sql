/*
 * Module 4: request plumbing the functions share — idempotency keys and rate limits.
 */

/**
 * Service: start an idempotent request. Returns {"state": "new"} when the caller should
 * do the work, {"state": "replay", "status", "body"} for a finished twin; raises VGI22
 * when the key was used with another body and VGI09 while the first is still running.
 */
create function public.idempotency_begin(
  p_principal text, p_scope text, p_key text, p_request_hash text
)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_row private.idempotency_keys;
begin
  insert into private.idempotency_keys (principal, scope, key, request_hash)
  values (p_principal, p_scope, p_key, p_request_hash)
  on conflict (principal, scope, key) do update
     set request_hash = excluded.request_hash, state = 'in_progress', response_status = null,
         response_body = null, created_at = now(), expires_at = now() + interval '24 hours'
   where private.idempotency_keys.expires_at < now()
  returning * into v_row;
  if found then
    return jsonb_build_object('state', 'new');
  end if;

  select * into v_row from private.idempotency_keys
   where principal = p_principal and scope = p_scope and key = p_key;
  if v_row.request_hash <> p_request_hash then
    raise exception 'Idempotency-Key % was used with a different request', p_key
      using errcode = 'VGI22';
  end if;
  if v_row.state = 'in_progress' then
    raise exception 'a request with Idempotency-Key % is still in progress', p_key
      using errcode = 'VGI09';
  end if;
  return jsonb_build_object('state', 'replay', 'status', v_row.response_status,
                            'body', v_row.response_body);
end;
$$;

/** Service: store the response of an idempotent request (same transaction as its work). */
create function public.idempotency_finish(
  p_principal text, p_scope text, p_key text, p_status integer, p_body jsonb
)
returns void
language plpgsql
security definer
set search_path = ''
as $$
begin
  update private.idempotency_keys
     set state = 'completed', response_status = p_status, response_body = p_body
   where principal = p_principal and scope = p_scope and key = p_key;
end;
$$;

/** Service: forget an in-progress key whose request failed unexpectedly, so it can retry. */
create function public.idempotency_abandon(p_principal text, p_scope text, p_key text)
returns void
language plpgsql
security definer
set search_path = ''
as $$
begin
  delete from private.idempotency_keys
   where principal = p_principal and scope = p_scope and key = p_key and state = 'in_progress';
end;
$$;

/**
 * Service: count one request in a fixed window; raises VGR29 with DETAIL
 * "retry_after=<seconds>" when over the limit (the refused request is not counted).
 */
create function public.rate_limit_take(
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

/** Service (sweep): drop expired idempotency keys, old rate windows and webhook ids. */
create function public.requests_cleanup()
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
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
$$;
