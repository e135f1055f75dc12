/*
 * Module 22: webhooks to the users' own servers. A job created with `webhook` (and
 * `webhook_events`) gets one delivery row per subscribed event, written by the jobs
 * trigger (module 8) in the transaction of the change: the outbox. The functions drain it
 * after commit (LISTEN videogen_webhooks) and the sweep drains whatever is left: a
 * delivery is claimed with FOR UPDATE SKIP LOCKED and a lease, sent signed (Standard
 * Webhooks, webhook-id = the delivery's id, the same on every retry) with the owner's own
 * secret, and its attempt recorded; failures are retried with exponential backoff until
 * webhook_max_attempts or webhook_max_age_seconds (private.settings). A crash loses
 * nothing: the row stays pending and its lease runs out.
 */

/** Each user's signing secret (whsec_ + base64 of 32 bytes); read and rotated by them. */
create table private.webhook_signing_secrets (
  user_id uuid primary key references auth.users (id) on delete cascade,
  secret text not null check (secret ~ '^whsec_[A-Za-z0-9+/=]{40,}$'),
  created_at timestamptz not null default now(),
  rotated_at timestamptz
);

/** The outbox: one event of one job for its owner's webhook. */
create table public.webhook_deliveries (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references auth.users (id) on delete cascade,
  job_id uuid not null references public.jobs (id) on delete cascade,
  event text not null check (event in ('started', 'progress', 'completed', 'failed', 'canceled')),
  url text not null check (char_length(url) <= 2048),
  -- pending: to send (again); delivered: a 2xx came back; failed: given up.
  status text not null default 'pending' check (status in ('pending', 'delivered', 'failed')),
  attempts integer not null default 0 check (attempts >= 0),
  next_attempt_at timestamptz default now(),
  lease_expires_at timestamptz,
  last_status_code integer,
  last_error text,
  created_at timestamptz not null default now(),
  delivered_at timestamptz,
  check ((status = 'pending') = (next_attempt_at is not null))
);

create index webhook_deliveries_due_idx on public.webhook_deliveries (next_attempt_at)
  where status = 'pending';
create index webhook_deliveries_user_idx on public.webhook_deliveries (user_id, created_at desc);
create index webhook_deliveries_job_idx on public.webhook_deliveries (job_id, created_at desc);
-- The hourly clean-up (service.requests_clean_up) finds the ended ones past retention.
create index webhook_deliveries_ended_idx on public.webhook_deliveries (created_at)
  where status <> 'pending';

/** Every try of a delivery: what came back, and when the next one is due. */
create table public.webhook_delivery_attempts (
  id bigint generated always as identity primary key,
  delivery_id uuid not null references public.webhook_deliveries (id) on delete cascade,
  user_id uuid not null references auth.users (id) on delete cascade,
  attempt integer not null check (attempt >= 1),
  status_code integer,
  error text check (char_length(error) <= 500),
  duration_ms integer check (duration_ms >= 0),
  next_attempt_at timestamptz,
  created_at timestamptz not null default now(),
  unique (delivery_id, attempt)
);

create index webhook_delivery_attempts_user_idx on public.webhook_delivery_attempts (user_id);

alter table private.webhook_signing_secrets enable row level security;
alter table public.webhook_deliveries enable row level security;
alter table public.webhook_delivery_attempts enable row level security;

create policy "Webhook deliveries are visible to their owner" on public.webhook_deliveries
  for select to authenticated using ((select auth.uid()) = user_id);
create policy "Webhook attempts are visible to their owner" on public.webhook_delivery_attempts
  for select to authenticated using ((select auth.uid()) = user_id);

revoke all on public.webhook_deliveries, public.webhook_delivery_attempts,
  private.webhook_signing_secrets from anon, authenticated;
grant select on public.webhook_deliveries, public.webhook_delivery_attempts to authenticated;
grant all on public.webhook_deliveries, public.webhook_delivery_attempts,
  private.webhook_signing_secrets to service_role;

-- ===================================================================================
-- Secrets
-- ===================================================================================

/** A fresh secret: whsec_ + base64 of 32 bytes (two v4 UUIDs: 244 random bits). */
create function private.webhook_secret_new()
returns text
language sql volatile
set search_path = ''
as $$
  select 'whsec_' || encode(decode(replace(gen_random_uuid()::text || gen_random_uuid()::text,
                                           '-', ''), 'hex'), 'base64')
$$;

/** The user's signing secret, made on first use. */
create function private.webhook_secret_of(p_uid uuid)
returns private.webhook_signing_secrets
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_row private.webhook_signing_secrets;
begin
  insert into private.webhook_signing_secrets (user_id, secret)
  values (p_uid, private.webhook_secret_new())
  on conflict (user_id) do nothing;
  select * into v_row from private.webhook_signing_secrets where user_id = p_uid;
  return v_row;
end;
$$;

/** Service, for the user in the claims: their signing secret {secret, created_at, rotated_at}. */
create function service.webhook_secret_get()
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_uid uuid := auth.uid();
begin
  if v_uid is null then
    raise exception 'sign in first' using errcode = 'VG403';
  end if;
  return to_jsonb(private.webhook_secret_of(v_uid)) - 'user_id';
end;
$$;

/**
 * Service, for the user in the claims: a new signing secret; the old one signs nothing
 * from now on (deliveries not yet sent are signed with the new one).
 */
create function service.webhook_secret_rotate()
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
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
$$;

/** Service, for the user in the claims: service.webhook_secret_rotate as one request. */
create function service.webhook_secret_rotate_request(p_request jsonb)
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
  return private.request_finish(p_request, 200, service.webhook_secret_rotate());
end;
$$;

-- ===================================================================================
-- The outbox
-- ===================================================================================

/**
 * From the jobs trigger (module 8): the delivery of one change of a job with a webhook,
 * when its owner subscribed to it. Job events map to webhook events: processing (from
 * another status) → started; progress → progress, at most one per 500 ms per job (as
 * Replicate throttles); completed, failed, canceled as they are. Wakes the drainers
 * (NOTIFY, sent at commit).
 */
create function private.webhook_enqueue(
  p_job public.jobs, p_job_event text, p_old_status public.job_status
)
returns void
language plpgsql
security definer
set search_path = ''
as $$
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
$$;

/**
 * Service (drainers): lease up to p_limit due deliveries (FOR UPDATE SKIP LOCKED: two
 * drainers never take the same row) for p_lease_seconds, counting the attempt. Each:
 * {id, user_id, job_id, event, url, attempt, created_at, secret, job} — job as GET ?id=
 * answers it now (private.job_get_json), secret the owner's current one.
 */
create function service.webhook_deliveries_claim(
  p_limit integer default 20, p_lease_seconds integer default 60
)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
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
$$;

/**
 * Service (drainers): the outcome of one attempt. A 2xx delivers it; anything else (or
 * no answer: p_status_code null) schedules the next try after base·4^(attempt−1) seconds
 * (at most webhook_retry_max_seconds), or gives up after webhook_max_attempts or
 * webhook_max_age_seconds. Applied only by the holder of the attempt: {applied, delivery}.
 */
create function service.webhook_delivery_record(
  p_id uuid, p_attempt integer, p_status_code integer default null, p_error text default null,
  p_duration_ms integer default null
)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
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
$$;

/** Service (sweep, /ready): how many deliveries wait, and when the oldest due one was due. */
create function service.webhook_deliveries_backlog()
returns jsonb
language sql stable
security definer
set search_path = ''
as $$
  select jsonb_build_object('pending', count(*),
                            'due', count(*) filter (where d.next_attempt_at <= now()))
    from public.webhook_deliveries d where d.status = 'pending'
$$;

/**
 * The caller's deliveries, newest first, optionally of one job, each with its attempts
 * (oldest first): {items, total}. Security invoker: RLS shows only their own.
 */
create function public.list_webhook_deliveries(
  p_job_id uuid default null, p_limit integer default 20, p_offset integer default 0
)
returns jsonb
language sql stable
security invoker
set search_path = ''
as $$
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
$$;

revoke execute on function private.webhook_secret_new(), private.webhook_secret_of(uuid),
  service.webhook_secret_get(), service.webhook_secret_rotate(),
  service.webhook_secret_rotate_request(jsonb),
  private.webhook_enqueue(public.jobs, text, public.job_status),
  service.webhook_deliveries_claim(integer, integer),
  service.webhook_delivery_record(uuid, integer, integer, text, integer),
  service.webhook_deliveries_backlog(),
  public.list_webhook_deliveries(uuid, integer, integer)
  from public, anon, authenticated;
grant execute on function public.list_webhook_deliveries(uuid, integer, integer) to authenticated;
grant execute on function private.webhook_secret_new(), private.webhook_secret_of(uuid),
  service.webhook_secret_get(), service.webhook_secret_rotate(),
  service.webhook_secret_rotate_request(jsonb),
  private.webhook_enqueue(public.jobs, text, public.job_status),
  service.webhook_deliveries_claim(integer, integer),
  service.webhook_delivery_record(uuid, integer, integer, text, integer),
  service.webhook_deliveries_backlog(),
  public.list_webhook_deliveries(uuid, integer, integer)
  to service_role;
