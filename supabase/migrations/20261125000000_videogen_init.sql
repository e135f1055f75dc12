-- videogen initial schema: generated from sql/schema/ (see sql/README.md).

-- ---- sql/schema/01_foundation.sql ----
/*
 * videogen — current schema, module 1: schemas, types, tables.
 *
 * This folder (sql/schema/NN_name.sql, applied in name order) is the readable current state.
 * supabase/migrations/ holds the deltas production runs; tests/db/test_migrations.py
 * proves both give the same schema. Conventions:
 *   - `public` holds tables clients read (through RLS) and the few procedures they call;
 *   - `private` holds internal tables and every privileged helper;
 *   - every `security definer` function pins `search_path = ''` and qualifies names;
 *   - procedures raise custom SQLSTATEs of class VG (see shared/videogen/errors.py);
 *   - helpers that procedures call per job are plpgsql, not sql: Postgres re-plans a
 *     non-inlined SQL function on every call, plpgsql keeps its plans for the session.
 */

create schema if not exists private;
grant usage on schema private to service_role;

-- ===================================================================================
-- Types
-- ===================================================================================

/** Life of a job: queued → dispatched → processing → completed / failed / canceled. */
create type public.job_status as enum (
  'queued', 'dispatched', 'processing', 'completed', 'failed', 'canceled'
);

/** What a job produces; a model serves exactly one job type. */
create type public.job_type as enum (
  'text_to_video', 'image_to_video', 'compose', 'narration', 'script'
);

/** Kinds of ledger rows. amount = change of the spendable balance, hold = change of reserved. */
create type public.ledger_kind as enum (
  'initial_grant', 'grant', 'purchase', 'adjust', 'reserve', 'capture', 'release'
);

/** Worker health as the sweep last saw it. */
create type public.worker_status as enum ('online', 'unhealthy', 'offline', 'draining');

-- ===================================================================================
-- Tables
-- ===================================================================================

/** One per auth.users row. balance is spendable; reserved is held by running jobs. */
create table public.profiles (
  id uuid primary key references auth.users (id) on delete cascade,
  display_name text check (char_length(display_name) <= 80),
  balance bigint not null default 0 check (balance >= 0),
  reserved bigint not null default 0 check (reserved >= 0),
  concurrent_job_limit integer not null default 5 check (concurrent_job_limit between 0 and 100),
  initial_grant_claimed_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

/** The catalogue: who runs a model, what it costs, what it accepts. */
create table public.models (
  id text primary key check (id ~ '^[a-z0-9][a-z0-9._/-]{1,79}$'),
  name text not null,
  description text not null default '',
  provider text not null check (provider in ('reference', 'runpod', 'fal', 'replicate', 'runway')),
  provider_model_id text not null,
  job_type public.job_type not null,
  -- Price rule: ceil((credits_base + credits_per_second × duration) × resolution factor).
  credits_base integer not null default 0 check (credits_base >= 0),
  credits_per_second integer not null default 0 check (credits_per_second >= 0),
  resolution_factors jsonb not null default '{"480p": 1, "720p": 1.5, "1080p": 2.5}',
  min_duration_s integer not null default 1 check (min_duration_s >= 1),
  max_duration_s integer not null default 10 check (max_duration_s >= min_duration_s),
  default_duration_s integer not null default 5,
  aspect_ratios text[] not null default '{16:9,9:16,1:1}',
  resolutions text[] not null default '{480p,720p,1080p}',
  requires_image boolean not null default false,
  max_attempts integer not null default 3 check (max_attempts between 1 and 10),
  lease_seconds integer not null default 120 check (lease_seconds between 5 and 86400),
  is_available boolean not null default true,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  check (default_duration_s between min_duration_s and max_duration_s)
);

/** GPU workers (ours) that take jobs by push or claim them by pull. */
create table public.workers (
  id uuid primary key default gen_random_uuid(),
  name text not null unique check (char_length(name) between 1 and 100),
  url text check (url ~ '^https?://'),
  health_url text check (health_url ~ '^https?://'),
  models text[] not null default '{}',
  capacity integer not null default 1 check (capacity between 1 and 1000),
  mode text not null default 'push' check (mode in ('push', 'pull')),
  status public.worker_status not null default 'online',
  consecutive_failures integer not null default 0,
  last_heartbeat_at timestamptz not null default now(),
  last_health_at timestamptz,
  last_assigned_at timestamptz,
  metadata jsonb not null default '{}',
  registered_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

/** Every generation is a job. `attempt` names the current try; callbacks carry it. */
create table public.jobs (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references auth.users (id) on delete cascade,
  model_id text not null references public.models (id),
  job_type public.job_type not null,
  status public.job_status not null default 'queued',
  params jsonb not null default '{}',
  priority integer not null default 0 check (priority between -100 and 100),
  cost bigint not null check (cost >= 0),
  credits_used bigint check (credits_used between 0 and cost),
  progress smallint not null default 0 check (progress between 0 and 100),
  progress_message text,
  -- attempt: number of the current dispatch, the token every callback must carry;
  -- failures: tries that failed retryably or lost their lease; at max_attempts → failed.
  attempt integer not null default 0 check (attempt >= 0),
  failures integer not null default 0 check (failures >= 0),
  max_attempts integer not null check (max_attempts >= 1),
  worker_id uuid references public.workers (id) on delete set null,
  provider text,
  provider_job_id text,
  lease_expires_at timestamptz,
  run_after timestamptz not null default now(),
  output jsonb,
  error_code text,
  error_message text,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  dispatched_at timestamptz,
  started_at timestamptz,
  finished_at timestamptz,
  check (failures <= max_attempts),
  check ((status in ('completed', 'failed', 'canceled')) = (finished_at is not null)),
  check (status <> 'completed' or credits_used is not null)
);

create index jobs_user_created_idx on public.jobs (user_id, created_at desc);
-- The concurrent-job limit counts a user's unfinished jobs: constant time, whatever the history.
create index jobs_user_active_idx on public.jobs (user_id)
  where status in ('queued', 'dispatched', 'processing');
create index jobs_queue_idx on public.jobs (model_id, priority desc, created_at)
  where status = 'queued';
create index jobs_lease_idx on public.jobs (lease_expires_at)
  where status in ('dispatched', 'processing');
create index jobs_worker_active_idx on public.jobs (worker_id)
  where status in ('dispatched', 'processing');
create unique index jobs_provider_job_idx on public.jobs (provider, provider_job_id)
  where provider_job_id is not null;

/** Append-only history of every job change; the realtime broadcast carries the same row. */
create table public.job_events (
  id bigint generated always as identity primary key,
  job_id uuid not null references public.jobs (id) on delete cascade,
  user_id uuid not null references auth.users (id) on delete cascade,
  event text not null,
  status public.job_status not null,
  progress smallint not null,
  attempt integer not null,
  data jsonb not null default '{}',
  created_at timestamptz not null default now()
);

create index job_events_job_idx on public.job_events (job_id, id);
create index job_events_user_idx on public.job_events (user_id, id);

/** Append-only money: every change of balance or reserved is one row with its result. */
create table public.credit_ledger (
  id bigint generated always as identity primary key,
  user_id uuid not null references auth.users (id) on delete cascade,
  kind public.ledger_kind not null,
  amount bigint not null,
  hold bigint not null default 0,
  balance_after bigint not null check (balance_after >= 0),
  reserved_after bigint not null check (reserved_after >= 0),
  job_id uuid references public.jobs (id) on delete cascade,
  external_id text unique,
  description text not null default '',
  created_at timestamptz not null default now(),
  check ((kind in ('reserve', 'capture', 'release')) = (job_id is not null)),
  check ((kind in ('reserve', 'capture', 'release')) = (external_id is null)),
  check (kind <> 'reserve' or (amount < 0 and hold = -amount)),
  check (kind <> 'release' or (amount > 0 and hold = -amount)),
  check (kind <> 'capture' or (amount = 0 and hold < 0)),
  check (kind not in ('initial_grant', 'grant', 'purchase') or (amount > 0 and hold = 0))
);

-- At most one reserve, one capture and one release per job, whatever the code does.
create unique index credit_ledger_one_per_job_kind on public.credit_ledger (job_id, kind)
  where kind in ('reserve', 'capture', 'release');
create index credit_ledger_user_idx on public.credit_ledger (user_id, id desc);

/** Idempotency-Key records: the first response is replayed for 24 hours. */
create table private.idempotency_keys (
  principal text not null,
  scope text not null,
  key text not null check (char_length(key) between 1 and 255),
  request_hash text not null,
  state text not null default 'in_progress' check (state in ('in_progress', 'completed')),
  response_status integer,
  response_body jsonb,
  created_at timestamptz not null default now(),
  expires_at timestamptz not null default now() + interval '24 hours',
  primary key (principal, scope, key)
);

create index idempotency_keys_expiry_idx on private.idempotency_keys (expires_at);

/** Fixed-window request counters per principal and bucket. */
create table private.rate_limits (
  principal text not null,
  bucket text not null,
  window_start timestamptz not null,
  count integer not null,
  primary key (principal, bucket)
);

/** webhook-id values already processed (Standard Webhooks replay protection). */
create table private.webhook_receipts (
  webhook_id text primary key,
  source text not null,
  received_at timestamptz not null default now()
);

/** Tunables the procedures read; one row per name. */
create table private.settings (
  name text primary key,
  value jsonb not null
);

insert into private.settings (name, value) values
  ('initial_grant_credits', '100'),
  ('initial_grant_credits_anonymous', '20'),
  ('retry_backoff_base_seconds', '2'),
  ('retry_backoff_max_seconds', '300'),
  ('worker_heartbeat_timeout_seconds', '60'),
  ('worker_unhealthy_after_failures', '3');

-- ---- sql/schema/02_credits.sql ----
/*
 * Module 2: credits. The only code that changes profiles.balance / profiles.reserved.
 *
 * Money model: balance is spendable, reserved is held for running jobs.
 *   reserve  amount -cost  hold +cost   (job created)
 *   capture  amount 0      hold -used   (job completed)
 *   release  amount +rest  hold -rest   (rest of a completed job, or all of a failed one)
 * So sum(amount) = balance and sum(hold) = reserved at all times, and every row carries
 * the balance and reserved it left behind.
 */

-- ===================================================================================
-- Internal helpers (private)
-- ===================================================================================

/** Read one numeric tunable from private.settings. */
create function private.setting_int(p_name text)
returns bigint
language plpgsql stable
set search_path = ''
as $$
begin
  return (
    select (value #>> '{}')::bigint from private.settings where name = p_name
  );
end;
$$;

/** Apply one change to a profile and append its ledger row; the single write path. */
create function private.ledger_apply(
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
    if not exists (select 1 from public.profiles where id = p_user_id) then
      raise exception 'no profile for user %', p_user_id using errcode = 'VG404';
    end if;
    raise exception 'insufficient credits' using errcode = 'VG402',
      hint = 'Buy credits or claim the initial grant.';
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

/** Hold a job's cost; raises VG402 when the spendable balance is short. */
create function private.credits_reserve(p_job public.jobs)
returns void
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform private.ledger_apply(p_job.user_id, 'reserve', -p_job.cost, p_job.cost, p_job.id,
                              null, 'reserve for ' || p_job.model_id);
end;
$$;

/** Capture what a completed job used and give back the rest of its hold. */
create function private.credits_capture(p_job public.jobs, p_used bigint)
returns void
language plpgsql
security definer
set search_path = ''
as $$
begin
  if p_used < 0 or p_used > p_job.cost then
    raise exception 'credits used % outside 0..%', p_used, p_job.cost using errcode = 'VGC22';
  end if;
  if p_used > 0 then
    perform private.ledger_apply(p_job.user_id, 'capture', 0, -p_used, p_job.id, null,
                                 'capture for ' || p_job.model_id);
  end if;
  if p_job.cost - p_used > 0 then
    perform private.ledger_apply(p_job.user_id, 'release', p_job.cost - p_used,
                                 -(p_job.cost - p_used), p_job.id, null,
                                 'unused part of ' || p_job.model_id);
  end if;
end;
$$;

/** Give back a failed or canceled job's whole hold. */
create function private.credits_release(p_job public.jobs)
returns void
language plpgsql
security definer
set search_path = ''
as $$
begin
  if p_job.cost > 0 then
    perform private.ledger_apply(p_job.user_id, 'release', p_job.cost, -p_job.cost, p_job.id,
                                 null, 'release for ' || p_job.model_id);
  end if;
end;
$$;

-- ===================================================================================
-- Procedures clients and the service call
-- ===================================================================================

/**
 * Credit a user once per external id (store transaction, grant id). A repeated id
 * changes nothing and returns the first row with applied = false.
 */
create function private.credits_add(
  p_user_id uuid,
  p_kind public.ledger_kind,
  p_amount bigint,
  p_external_id text,
  p_description text default ''
)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_row public.credit_ledger;
begin
  if p_kind not in ('grant', 'purchase', 'initial_grant', 'adjust') then
    raise exception 'kind % cannot be added', p_kind using errcode = 'VG400';
  end if;
  if p_amount = 0 or (p_kind <> 'adjust' and p_amount < 0) then
    raise exception 'amount must be positive' using errcode = 'VGC22';
  end if;
  if p_external_id is null or char_length(p_external_id) not between 1 and 200 then
    raise exception 'external id required (1–200 characters)' using errcode = 'VG400';
  end if;

  -- Serialise on the profile row, then look for the id: a concurrent duplicate waits
  -- here and then sees the first one's committed row.
  perform 1 from public.profiles where id = p_user_id for update;
  if not found then
    raise exception 'no profile for user %', p_user_id using errcode = 'VG404';
  end if;

  select * into v_row from public.credit_ledger where external_id = p_external_id;
  if found then
    if v_row.user_id <> p_user_id then
      raise exception 'external id already used by another account' using errcode = 'VGC09';
    end if;
    return jsonb_build_object('applied', false, 'entry', to_jsonb(v_row));
  end if;

  v_row := private.ledger_apply(p_user_id, p_kind, p_amount, 0, null, p_external_id,
                                p_description);
  return jsonb_build_object('applied', true, 'entry', to_jsonb(v_row));
end;
$$;

/** The caller's one-time starting credits (anonymous users get the smaller amount). */
create function public.claim_initial_grant()
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_uid uuid := auth.uid();
  v_anonymous boolean;
  v_amount bigint;
  v_result jsonb;
begin
  if v_uid is null then
    raise exception 'sign in first' using errcode = 'VG403';
  end if;
  select coalesce(is_anonymous, false) into v_anonymous from auth.users where id = v_uid;

  update public.profiles set initial_grant_claimed_at = now()
   where id = v_uid and initial_grant_claimed_at is null;
  if not found then
    raise exception 'initial credits already claimed' using errcode = 'VGC09';
  end if;

  v_amount := private.setting_int(
    case when v_anonymous then 'initial_grant_credits_anonymous' else 'initial_grant_credits' end);
  v_result := private.credits_add(v_uid, 'initial_grant', v_amount, 'initial:' || v_uid,
                                  'initial grant');
  return v_result;
end;
$$;

/** Service: credit a verified store purchase, once per transaction id. */
create function public.purchase_credits(
  p_user_id uuid, p_transaction_id text, p_credits bigint, p_description text default 'purchase'
)
returns jsonb
language sql
security definer
set search_path = ''
as $$
  select private.credits_add(p_user_id, 'purchase', p_credits, 'purchase:' || p_transaction_id,
                             p_description);
$$;

/** Service: grant (positive) or adjust (either sign, never below zero), once per id. */
create function public.grant_credits(
  p_user_id uuid, p_amount bigint, p_grant_id text, p_kind public.ledger_kind default 'grant',
  p_description text default ''
)
returns jsonb
language sql
security definer
set search_path = ''
as $$
  select private.credits_add(p_user_id, p_kind, p_amount, p_kind || ':' || p_grant_id,
                             p_description);
$$;

-- ---- sql/schema/03_jobs.sql ----
/*
 * Module 3: jobs and workers — create, route, claim, report, finish, cancel, sweep.
 *
 * Every procedure locks the job row it changes, checks the state and the attempt token,
 * and moves money in the same transaction as the status, so a job is reserved, captured
 * and released at most once whatever order callbacks, sweeps and cancels arrive in.
 * Callback procedures return {"applied": false, "reason": …} for late or duplicate
 * reports instead of raising: the sender did nothing wrong and must not retry.
 */

-- ===================================================================================
-- Helpers
-- ===================================================================================

/** 1-based place in its model's queue, or null when the job is not queued. */
create function private.queue_position(p_job public.jobs)
returns bigint
language plpgsql stable
security definer
set search_path = ''
as $$
begin
  return (
    select case when p_job.status <> 'queued' then null else (
      select count(*) + 1 from public.jobs j
       where j.status = 'queued' and j.model_id = p_job.model_id and j.id <> p_job.id
         and (j.priority > p_job.priority
              or (j.priority = p_job.priority and j.created_at < p_job.created_at)
              or (j.priority = p_job.priority and j.created_at = p_job.created_at and j.id < p_job.id))
    ) end
  );
end;
$$;

/** The job as clients see it, with its queue position while queued. */
create function private.job_json(p_job public.jobs)
returns jsonb
language plpgsql stable
security definer
set search_path = ''
as $$
begin
  return (
    select to_jsonb(p_job) - 'provider_job_id'
           || jsonb_build_object('queue_position', private.queue_position(p_job))
  );
end;
$$;

/** Normalise request params against the model's limits; raises VGP22 with the reason. */
create function private.normalize_params(p_model public.models, p_params jsonb)
returns jsonb
language plpgsql stable
set search_path = ''
as $$
declare
  v_duration integer;
  v_aspect text := coalesce(p_params ->> 'aspect_ratio', p_model.aspect_ratios[1]);
  v_resolution text := coalesce(p_params ->> 'resolution',
    case when '720p' = any(p_model.resolutions) then '720p' else p_model.resolutions[1] end);
begin
  if jsonb_typeof(coalesce(p_params, '{}')) <> 'object' then
    raise exception 'params must be an object' using errcode = 'VGP22';
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

/** Price of a job from the model's rule and the normalised params. */
create function private.job_price(p_model public.models, p_params jsonb)
returns bigint
language plpgsql stable
set search_path = ''
as $$
begin
  return (
    select ceil(
      (p_model.credits_base + p_model.credits_per_second * (p_params ->> 'duration')::numeric)
      * coalesce((p_model.resolution_factors ->> (p_params ->> 'resolution'))::numeric, 1)
    )::bigint
  );
end;
$$;

/** Lock a job for a callback; null when the attempt is not the current one or it ended. */
create function private.job_lock_for_attempt(p_job_id uuid, p_attempt integer)
returns public.jobs
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_job public.jobs;
begin
  select * into v_job from public.jobs where id = p_job_id for update;
  if not found then
    raise exception 'job % not found', p_job_id using errcode = 'VGJ04';
  end if;
  if v_job.attempt <> p_attempt or v_job.status not in ('dispatched', 'processing') then
    return null;
  end if;
  return v_job;
end;
$$;

/** Answer for a callback that changed nothing. */
create function private.not_applied(p_job_id uuid, p_reason text)
returns jsonb
language plpgsql stable
security definer
set search_path = ''
as $$
begin
  return (
    select jsonb_build_object('applied', false, 'reason', p_reason,
      'job', (select private.job_json(j) from public.jobs j where j.id = p_job_id))
  );
end;
$$;

/** Seconds to wait before retry number n (exponential, capped). */
create function private.backoff_seconds(p_failures integer)
returns integer
language plpgsql stable
set search_path = ''
as $$
begin
  return (
    select least(private.setting_int('retry_backoff_max_seconds'),
                 private.setting_int('retry_backoff_base_seconds') * power(2, greatest(p_failures - 1, 0)))::integer
  );
end;
$$;

/** When a lease taken now on a job of this model runs out. */
create function private.lease_until(p_model_id text)
returns timestamptz
language plpgsql stable
set search_path = ''
as $$
begin
  return (
    select now() + make_interval(secs => m.lease_seconds) from public.models m where m.id = p_model_id
  );
end;
$$;

/** Record a failed try: retry later with backoff, or fail for good and release credits. */
create function private.job_fail_or_retry(
  p_job public.jobs, p_code text, p_message text, p_retryable boolean
)
returns public.jobs
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_job public.jobs;
begin
  if p_retryable and p_job.failures + 1 < p_job.max_attempts then
    update public.jobs
       set status = 'queued', failures = failures + 1, worker_id = null,
           lease_expires_at = null, progress = 0, progress_message = null,
           run_after = now() + make_interval(secs => private.backoff_seconds(failures + 1)),
           error_code = p_code, error_message = p_message
     where id = p_job.id
    returning * into v_job;
  else
    update public.jobs
       set status = 'failed', failures = least(failures + 1, max_attempts),
           lease_expires_at = null, finished_at = now(),
           error_code = p_code, error_message = p_message
     where id = p_job.id
    returning * into v_job;
    perform private.credits_release(v_job);
  end if;
  return v_job;
end;
$$;

-- ===================================================================================
-- Users: create, cancel
-- ===================================================================================

/**
 * Create a job for the caller: check the model and params, price it, enforce the
 * concurrent-job limit, reserve the cost and queue it — one transaction.
 */
create function public.create_job(
  p_model_id text, p_params jsonb default '{}', p_priority integer default 0
)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_uid uuid := auth.uid();
  v_model public.models;
  v_params jsonb;
  v_limit integer;
  v_active integer;
  v_job public.jobs;
begin
  if v_uid is null then
    raise exception 'sign in first' using errcode = 'VG403';
  end if;
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
  v_params := private.normalize_params(v_model, p_params);
  -- First segment the caller's id, and no empty, '.' or '..' segment to climb out with.
  if v_params ? 'image_path' and (split_part(v_params ->> 'image_path', '/', 1) <> v_uid::text
                                  or v_params ->> 'image_path' ~ '(^|/)\.{0,2}(/|$)') then
    raise exception 'image_path must be in your own uploads folder (%/…)', v_uid
      using errcode = 'VGP22';
  end if;

  -- The profile lock serialises this user's creates, so the limit cannot be overrun.
  select concurrent_job_limit into v_limit from public.profiles where id = v_uid for update;
  if not found then
    raise exception 'no profile for user %', v_uid using errcode = 'VG404';
  end if;
  select count(*) into v_active from public.jobs
   where user_id = v_uid and status in ('queued', 'dispatched', 'processing');
  if v_active >= v_limit then
    raise exception 'you already have % jobs running (limit %)', v_active, v_limit
      using errcode = 'VGJ29';
  end if;

  insert into public.jobs (user_id, model_id, job_type, params, priority, cost, max_attempts, provider)
  values (v_uid, v_model.id, v_model.job_type, v_params, p_priority,
          private.job_price(v_model, v_params), v_model.max_attempts, v_model.provider)
  returning * into v_job;
  perform private.credits_reserve(v_job);
  return private.job_json(v_job);
end;
$$;

/**
 * Cancel a job that has not finished: the owner (or the service) may; credits are
 * released. Returns the job and, when a worker had it, that worker's url to tell.
 */
create function public.cancel_job(p_job_id uuid)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
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
$$;

-- ===================================================================================
-- Workers: register, heartbeat, health
-- ===================================================================================

/** Register (or re-register by name) a worker; returns it. */
create function public.worker_register(
  p_name text, p_url text, p_health_url text, p_models text[],
  p_capacity integer default 1, p_mode text default 'push', p_metadata jsonb default '{}'
)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
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
$$;

/**
 * A worker is alive: mark it online, extend the leases of the jobs it holds, and tell it
 * which of its jobs are still its own (anything else it runs was canceled or reassigned).
 */
create function public.worker_heartbeat(p_worker_id uuid, p_status text default 'online')
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
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
$$;

/** Record one health probe; unhealthy after N failures in a row, online after a success. */
create function public.worker_record_health(p_worker_id uuid, p_ok boolean, p_detail jsonb default '{}')
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
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
$$;

-- ===================================================================================
-- Routing: assign (push), claim (pull), dispatch to an external provider
-- ===================================================================================

/** Move a queued job to a worker (dispatched, new attempt, lease) and return it. */
create function private.job_dispatch(p_job public.jobs, p_worker_id uuid)
returns public.jobs
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_job public.jobs;
begin
  update public.jobs j
     set status = 'dispatched', worker_id = p_worker_id, attempt = j.attempt + 1,
         dispatched_at = now(), progress = 0, lease_expires_at = private.lease_until(j.model_id)
   where j.id = p_job.id
  returning j.* into v_job;
  return v_job;
end;
$$;

/** The healthy push worker with spare capacity for a model, least loaded first; locked. */
create function private.pick_worker(p_model_id text)
returns public.workers
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_candidate uuid;
  v_worker public.workers;
  v_active integer;
begin
  for v_candidate in
    select w.id from public.workers w
     where w.status = 'online' and w.mode = 'push' and w.url is not null
       and p_model_id = any(w.models)
       and w.last_heartbeat_at > now() - make_interval(secs => private.setting_int('worker_heartbeat_timeout_seconds'))
     order by (select count(*) from public.jobs j
                where j.worker_id = w.id and j.status in ('dispatched', 'processing'))::numeric
              / w.capacity,
              w.last_assigned_at nulls first
  loop
    -- Lock, then count again in a fresh statement (it sees what earlier assigners
    -- committed). SKIP LOCKED: a worker another assigner holds is passed over, never
    -- waited for — waiting while holding an earlier candidate's lock could deadlock.
    select * into v_worker from public.workers where id = v_candidate for update skip locked;
    continue when not found;
    select count(*) into v_active from public.jobs
     where worker_id = v_candidate and status in ('dispatched', 'processing');
    if v_active < v_worker.capacity and v_worker.status = 'online' then
      return v_worker;
    end if;
  end loop;
  return null;
end;
$$;

/**
 * Service: give one queued job to a push worker (the named one, or the best one).
 * Returns {job, worker} or null when the job is not queued or no worker can take it.
 */
create function public.job_assign(p_job_id uuid, p_worker_id uuid default null)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
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
$$;

/** Service: assign up to p_limit queued jobs (oldest first) to push workers. */
create function public.jobs_assign_pending(p_limit integer default 20)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
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
    v_one := public.job_assign(v_id);
    if v_one is not null then
      v_out := v_out || jsonb_build_array(v_one);
    end if;
  end loop;
  return v_out;
end;
$$;

/** Service: a pull worker claims up to p_limit jobs of its models, with a lease each. */
create function public.job_claim(p_worker_id uuid, p_limit integer default 1)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
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
    v_out := v_out || jsonb_build_array(private.job_json(v_job));
  end loop;
  return v_out;
end;
$$;

/** Service: a queued job goes to an external provider (dispatched, new attempt). */
create function public.job_dispatch_external(p_job_id uuid)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
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
$$;

/** Service: remember the provider's id for a dispatched attempt (webhooks find it by it). */
create function public.job_set_provider_id(p_job_id uuid, p_attempt integer, p_provider_job_id text)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
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
$$;

/** Service: the job behind a provider's id, with its current attempt (for webhooks). */
create function public.job_by_provider_id(p_provider text, p_provider_job_id text)
returns jsonb
language sql stable
security definer
set search_path = ''
as $$
  select to_jsonb(j) from public.jobs j
   where j.provider = p_provider and j.provider_job_id = p_provider_job_id
$$;

/**
 * Service: a push was refused or failed before the worker took the job: back to the
 * queue at once, not counted as a failure (the worker never ran it).
 */
create function public.job_return(p_job_id uuid, p_attempt integer, p_reason text)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
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
$$;

-- ===================================================================================
-- Callbacks: started, progress, completed, failed
-- ===================================================================================

/** Service: the worker started the current attempt. */
create function public.job_start(p_job_id uuid, p_attempt integer)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
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
$$;

/** Service: progress of the current attempt (never backwards); extends the lease. */
create function public.job_progress(
  p_job_id uuid, p_attempt integer, p_progress integer, p_message text default null
)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
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
$$;

/** Service: the current attempt finished; capture what it used, release the rest. */
create function public.job_complete(
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

/** Service: the current attempt failed; retry with backoff or fail and release. */
create function public.job_fail(
  p_job_id uuid, p_attempt integer, p_error_code text, p_error_message text,
  p_retryable boolean default true
)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
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
$$;

/**
 * Service (sweep): jobs whose lease ran out go back to the queue with backoff, or fail
 * (credits released) when out of attempts. Safe to run concurrently with callbacks.
 */
create function public.jobs_requeue_expired(p_limit integer default 500)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
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
$$;

/** Service: true the first time a webhook id is seen (same transaction as its effect). */
create function public.webhook_receipt(p_webhook_id text, p_source text)
returns boolean
language plpgsql
security definer
set search_path = ''
as $$
begin
  insert into private.webhook_receipts (webhook_id, source) values (p_webhook_id, p_source)
  on conflict do nothing;
  return found;
end;
$$;

-- ---- sql/schema/04_requests.sql ----
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

-- ---- sql/schema/05_triggers.sql ----
/*
 * Module 5: triggers — profiles on signup, updated_at, the job state machine, job events
 * with their realtime broadcast, and append-only ledger and history.
 */

/** A profile for every new auth user. */
create function private.handle_new_user()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  insert into public.profiles (id, display_name)
  values (new.id, coalesce(new.raw_user_meta_data ->> 'display_name', split_part(new.email, '@', 1)))
  on conflict (id) do nothing;
  return new;
end;
$$;

create trigger on_auth_user_created
  after insert on auth.users
  for each row execute function private.handle_new_user();

/** Keep updated_at true. */
create function private.touch_updated_at()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  new.updated_at := now();
  return new;
end;
$$;

create trigger profiles_touch before update on public.profiles
  for each row execute function private.touch_updated_at();
create trigger models_touch before update on public.models
  for each row execute function private.touch_updated_at();
create trigger workers_touch before update on public.workers
  for each row execute function private.touch_updated_at();

/** The legal moves of the job state machine. */
create function private.job_transition_allowed(p_from public.job_status, p_to public.job_status)
returns boolean
language plpgsql immutable
set search_path = ''
as $$
begin
  return (
    select p_from = p_to and p_from in ('queued', 'dispatched', 'processing')
        or (p_from, p_to) in (
          ('queued', 'dispatched'), ('queued', 'canceled'), ('queued', 'failed'),
          ('dispatched', 'processing'), ('dispatched', 'completed'), ('dispatched', 'failed'),
          ('dispatched', 'queued'), ('dispatched', 'canceled'),
          ('processing', 'completed'), ('processing', 'failed'), ('processing', 'queued'),
          ('processing', 'canceled'))
  );
end;
$$;

/** Reject every illegal status change, and any change to a finished job. */
create function private.jobs_guard_transition()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  -- Removing a worker sets worker_id to null on its jobs, finished ones too (an FK action,
  -- run inside the RI trigger): the one change a finished job accepts.
  if pg_trigger_depth() > 1 and old.worker_id is not null and new.worker_id is null
     and to_jsonb(new) - 'worker_id' = to_jsonb(old) - 'worker_id' then
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
$$;

create trigger jobs_guard_transition before update on public.jobs
  for each row execute function private.jobs_guard_transition();

/**
 * Every status or progress change → one job_events row and one broadcast on the
 * owner's private topic `user:<uid>:jobs` (see realtime.messages policies).
 */
create function private.jobs_emit_event()
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

  perform realtime.send(
    jsonb_build_object('event_id', v_row.id, 'job_id', new.id, 'event', v_event,
                       'status', new.status, 'progress', new.progress, 'attempt', new.attempt,
                       'data', v_row.data, 'at', v_row.created_at),
    'job_' || v_event,
    'user:' || new.user_id || ':jobs',
    true);
  return null;
end;
$$;

create trigger jobs_emit_event after insert or update on public.jobs
  for each row execute function private.jobs_emit_event();

/** Ledger and history rows are facts: never updated, deleted only with their user. */
create function private.forbid_change()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  -- A cascade from deleting the auth user (or its jobs) runs inside the FK trigger.
  if tg_op = 'DELETE' and pg_trigger_depth() > 1 then
    return old;
  end if;
  -- Retention (public.job_events_prune) is the one sanctioned delete of history.
  if tg_op = 'DELETE' and tg_table_name = 'job_events'
     and current_setting('videogen.pruning', true) = 'on' then
    return old;
  end if;
  raise exception '% is append-only', tg_table_name using errcode = 'VG403';
end;
$$;

create trigger credit_ledger_append_only before update or delete on public.credit_ledger
  for each row execute function private.forbid_change();
create trigger job_events_append_only before update or delete on public.job_events
  for each row execute function private.forbid_change();

/** Service (sweep): delete the history of jobs that finished more than p_days ago. */
create function public.job_events_prune(p_days integer default 90)
returns integer
language plpgsql
security definer
set search_path = ''
as $$
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
$$;

-- ---- sql/schema/06_security.sql ----
/*
 * Module 6: who may do what. RLS is on for every table; users read only their own rows;
 * nobody but the procedures writes money, jobs or history. Grants are spelled out:
 * Supabase's default privileges give anon/authenticated everything in public, so we take
 * it back and grant what each role needs.
 */

-- ===================================================================================
-- Row level security
-- ===================================================================================

alter table public.profiles enable row level security;
alter table public.models enable row level security;
alter table public.workers enable row level security;
alter table public.jobs enable row level security;
alter table public.job_events enable row level security;
alter table public.credit_ledger enable row level security;
alter table private.idempotency_keys enable row level security;
alter table private.rate_limits enable row level security;
alter table private.webhook_receipts enable row level security;
alter table private.settings enable row level security;

create policy "Profiles are visible to their owner" on public.profiles
  for select to authenticated using ((select auth.uid()) = id);

create policy "Owners can rename their profile" on public.profiles
  for update to authenticated
  using ((select auth.uid()) = id) with check ((select auth.uid()) = id);

create policy "Available models are visible to everyone" on public.models
  for select to anon, authenticated using (is_available);

create policy "Jobs are visible to their owner" on public.jobs
  for select to authenticated using ((select auth.uid()) = user_id);

create policy "Job events are visible to the job owner" on public.job_events
  for select to authenticated using ((select auth.uid()) = user_id);

create policy "Ledger entries are visible to their owner" on public.credit_ledger
  for select to authenticated using ((select auth.uid()) = user_id);

-- workers, idempotency_keys, rate_limits, webhook_receipts, settings: no policy at all —
-- only service_role (bypasses RLS) and the security-definer procedures reach them.

-- ===================================================================================
-- Table and column grants
-- ===================================================================================

revoke all on public.profiles, public.models, public.workers, public.jobs, public.job_events,
  public.credit_ledger from anon, authenticated;
revoke all on all tables in schema private from anon, authenticated;

grant select on public.models to anon, authenticated;
grant select on public.profiles, public.jobs, public.job_events, public.credit_ledger
  to authenticated;
grant update (display_name) on public.profiles to authenticated;

grant all on all tables in schema public to service_role;
grant all on all tables in schema private to service_role;

-- ===================================================================================
-- Function grants: nothing is executable by default; then exactly what each role calls
-- ===================================================================================

revoke execute on all functions in schema public from public, anon, authenticated;
revoke execute on all functions in schema private from public, anon, authenticated;
alter default privileges in schema private revoke execute on functions from public;

grant execute on function
  public.create_job(text, jsonb, integer),
  public.cancel_job(uuid),
  public.claim_initial_grant()
  to authenticated;

grant execute on all functions in schema public to service_role;
grant execute on all functions in schema private to service_role;

-- ===================================================================================
-- Realtime: the owner (only) may receive broadcasts on user:<uid>:jobs
-- ===================================================================================

create policy "Users receive broadcasts on their own jobs topic" on realtime.messages
  for select to authenticated
  using (
    realtime.messages.extension = 'broadcast'
    -- The row's own topic too: without it, joining one's own topic reads every user's rows.
    and realtime.messages.topic = (select realtime.topic())
    and (select realtime.topic()) = 'user:' || (select auth.uid()) || ':jobs'
  );

alter publication supabase_realtime add table public.jobs;

-- ---- sql/schema/07_schedules.sql ----
/*
 * Module 7: pg_cron schedules, where the extension exists (Supabase has it; a plain
 * Postgres usually does not, and then this is skipped). The HTTP health sweep
 * (health-check-workers) does the same work when called by any scheduler.
 */

do $cron$
begin
  -- pg_cron can be created only where it is loaded at server start, in its database.
  if not exists (select 1 from pg_available_extensions where name = 'pg_cron')
     or not 'pg_cron' = any (string_to_array(
              replace(current_setting('shared_preload_libraries'), ' ', ''), ','))
     or current_database() <> coalesce(current_setting('cron.database_name', true), 'postgres')
  then
    raise notice 'pg_cron not available: schedules skipped (call health-check-workers instead)';
    return;
  end if;
  create extension if not exists pg_cron;
  perform cron.schedule('videogen-requeue-expired', '* * * * *',
                        'select public.jobs_requeue_expired()');
  perform cron.schedule('videogen-requests-cleanup', '17 * * * *',
                        'select public.requests_cleanup()');
  perform cron.schedule('videogen-prune-events', '42 3 * * *',
                        'select public.job_events_prune(90)');
end;
$cron$;

-- ---- sql/schema/08_reads.sql ----
/*
 * Module 8: reads. Security-invoker functions, so RLS decides what the caller sees; the
 * functions (and PostgREST clients) read through these instead of writing SQL.
 */

/** The caller's jobs, newest first, optionally one status; {items, total}. */
create function public.list_jobs(
  p_status public.job_status default null, p_limit integer default 20, p_offset integer default 0
)
returns jsonb
language sql stable
security invoker
set search_path = ''
as $$
  select jsonb_build_object(
    'total', (select count(*) from public.jobs j
               where j.user_id = (select auth.uid()) and (p_status is null or j.status = p_status)),
    'items', coalesce((
      select jsonb_agg(private.job_json(j) order by j.created_at desc, j.id)
        from (select * from public.jobs j
               where j.user_id = (select auth.uid()) and (p_status is null or j.status = p_status)
               order by j.created_at desc, j.id
               limit least(greatest(p_limit, 1), 100) offset greatest(p_offset, 0)) j), '[]'))
$$;

/** One job the caller can see, with its events; null when it is not theirs. */
create function public.get_job(p_job_id uuid)
returns jsonb
language sql stable
security invoker
set search_path = ''
as $$
  select private.job_json(j) || jsonb_build_object('events', coalesce((
           select jsonb_agg(to_jsonb(e) - 'user_id' order by e.id)
             from public.job_events e where e.job_id = j.id), '[]'))
    from public.jobs j where j.id = p_job_id
$$;

/** The caller's balance, hold and ledger page; {profile, items, total}. */
create function public.get_credits(p_limit integer default 20, p_offset integer default 0)
returns jsonb
language sql stable
security invoker
set search_path = ''
as $$
  select jsonb_build_object(
    'balance', p.balance, 'reserved', p.reserved,
    'initial_grant_claimed', p.initial_grant_claimed_at is not null,
    'total', (select count(*) from public.credit_ledger l where l.user_id = p.id),
    'items', coalesce((
      select jsonb_agg(to_jsonb(l) - 'user_id' order by l.id desc)
        from (select * from public.credit_ledger l where l.user_id = p.id
               order by l.id desc
               limit least(greatest(p_limit, 1), 100) offset greatest(p_offset, 0)) l), '[]'))
    from public.profiles p where p.id = (select auth.uid())
$$;

/** The available models (anyone may read the catalogue). */
create function public.list_models()
returns jsonb
language sql stable
security invoker
set search_path = ''
as $$
  select coalesce(jsonb_agg(to_jsonb(m) - 'provider_model_id' order by m.id), '[]')
    from public.models m where m.is_available
$$;

/** Service: one job whatever its owner (workers, callbacks, sweeps). */
create function public.job_get_any(p_job_id uuid)
returns jsonb
language sql stable
security definer
set search_path = ''
as $$
  select to_jsonb(j) || jsonb_build_object('model', to_jsonb(m))
    from public.jobs j join public.models m on m.id = j.model_id where j.id = p_job_id
$$;

/** Service: every registered worker (for the health sweep). */
create function public.workers_list()
returns jsonb
language sql stable
security definer
set search_path = ''
as $$
  select coalesce(jsonb_agg(to_jsonb(w) order by w.name), '[]') from public.workers w
$$;

revoke execute on function public.list_jobs(public.job_status, integer, integer),
  public.get_job(uuid), public.get_credits(integer, integer), public.list_models(),
  public.job_get_any(uuid), public.workers_list()
  from public, anon, authenticated;
grant execute on function public.list_jobs(public.job_status, integer, integer),
  public.get_job(uuid), public.get_credits(integer, integer) to authenticated;
grant execute on function public.list_models() to anon, authenticated;
grant execute on function public.list_jobs(public.job_status, integer, integer),
  public.get_job(uuid), public.get_credits(integer, integer), public.list_models(),
  public.job_get_any(uuid), public.workers_list() to service_role;

-- The invoker reads above format rows through these two helpers; they read only the
-- row they are given (plus a queue count), so authenticated may call them.
grant usage on schema private to authenticated;
grant execute on function private.job_json(public.jobs), private.queue_position(public.jobs)
  to authenticated;

/** Service: jobs at external providers that have not finished (for reconcile polls). */
create function public.jobs_active_external()
returns jsonb
language sql stable
security definer
set search_path = ''
as $$
  select coalesce(jsonb_agg(jsonb_build_object('id', j.id, 'attempt', j.attempt,
           'provider', j.provider, 'provider_job_id', j.provider_job_id)), '[]')
    from public.jobs j
   where j.status in ('dispatched', 'processing') and j.provider_job_id is not null
     and j.provider in ('fal', 'replicate', 'runway', 'runpod')
$$;

revoke execute on function public.jobs_active_external() from public, anon, authenticated;
grant execute on function public.jobs_active_external() to service_role;

/** Service: the catalogue with the providers' own model ids (health sweeps, routing). */
create function public.models_by_provider(p_provider text)
returns jsonb
language sql stable
security definer
set search_path = ''
as $$
  select coalesce(jsonb_agg(jsonb_build_object('id', m.id, 'provider_model_id', m.provider_model_id,
                                               'is_available', m.is_available) order by m.id), '[]')
    from public.models m where m.provider = p_provider
$$;

revoke execute on function public.models_by_provider(text) from public, anon, authenticated;
grant execute on function public.models_by_provider(text) to service_role;
