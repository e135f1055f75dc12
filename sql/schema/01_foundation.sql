/*
 * videogen — current schema, module 1: schemas, types, tables.
 *
 * This folder (sql/schema/NN_name.sql, applied in name order) is the readable current state.
 * supabase/migrations/ holds the deltas production runs; tests/db/test_migrations.py
 * proves both give the same schema. Each table, function, view, policy, trigger and type is
 * created once, in its final form, in its home module (tests/db/test_schema_shape.py).
 * Conventions:
 *   - `public` holds only what clients reach over PostgREST (anon, authenticated): the
 *     tables and views they read (through RLS) and the few procedures they call, under
 *     the names frontends know;
 *   - `service` holds the procedures only the service role runs (the functions, workers,
 *     sweeps, operations). Usage on it is granted to service_role alone, and PostgREST
 *     does not expose it (supabase/config.toml `api.schemas`). Naming rule for them:
 *     `<noun>_<verb>` — the thing first, then what is done to it (job_create, job_cancel,
 *     worker_claim, credits_grant, purchase_record, ops_metrics_read); the one-request
 *     wrapper of a write (rate limit, Idempotency-Key, stored answer) adds `_request`
 *     (job_create_request);
 *   - `private` holds internal tables and every privileged helper;
 *   - every `security definer` function pins `search_path = ''` and qualifies names;
 *   - procedures raise custom SQLSTATEs of class VG (see shared/videogen/errors.py);
 *   - helpers that procedures call per job are plpgsql, not sql: Postgres re-plans a
 *     non-inlined SQL function on every call, plpgsql keeps its plans for the session.
 */

create schema if not exists private;
grant usage on schema private to service_role;

create schema if not exists service;
grant usage on schema service to service_role;

-- ===================================================================================
-- Types
-- ===================================================================================

/** Life of a job: queued → dispatched → processing → completed / failed / canceled. */
create type public.job_status as enum (
  'queued', 'dispatched', 'processing', 'completed', 'failed', 'canceled'
);

/**
 * What a job produces; a model serves exactly one job type. `images` is the wizard's step
 * (a picture per section); `text_to_image` and `image_to_image` make one still picture.
 */
create type public.job_type as enum (
  'text_to_video', 'image_to_video', 'compose', 'narration', 'script', 'images',
  'text_to_image', 'image_to_image'
);

/**
 * Kinds of ledger rows. amount = change of the spendable balance, hold = change of reserved.
 * The last four belong to module 16: a refund's clawback, the settling of a debt, and the
 * two halves of moving an anonymous user's credits to their account.
 */
create type public.ledger_kind as enum (
  'initial_grant', 'grant', 'purchase', 'adjust', 'reserve', 'capture', 'release',
  'clawback', 'debt_settle', 'merge_out', 'merge_in'
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
  updated_at timestamptz not null default now(),
  -- Preferences the owner changes (module 15); the tier only the service sets.
  language text not null default 'en' check (language ~ '^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$'),
  theme text not null default 'system' check (theme in ('light', 'dark', 'system')),
  tier text not null default 'free' check (tier ~ '^[a-z][a-z0-9-]{0,29}$'),
  -- Credits owed after a refund took back more than was left (module 16): the next credit
  -- pays it first, and no job starts while it is positive.
  debt bigint not null default 0 check (debt >= 0)
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
  -- How the catalogue shows it, and how long a run takes before history says (module 15).
  category text not null default 'video' check (category ~ '^[a-z][a-z0-9-]{0,39}$'),
  featured boolean not null default false,
  thumbnail_url text check (thumbnail_url ~ '^https://'),
  typical_run_seconds integer not null default 60 check (typical_run_seconds between 1 and 86400),
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

/** A user's folder of generations. */
create table public.projects (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references auth.users (id) on delete cascade,
  title text not null check (char_length(title) between 1 and 120 and title = btrim(title)),
  description text not null default '' check (char_length(description) <= 2000),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

create index projects_user_created_idx on public.projects (user_id, created_at desc);

/** Jobs made by one request; each job of it carries its id. */
create table public.batches (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references auth.users (id) on delete cascade,
  project_id uuid references public.projects (id) on delete set null,
  title text check (char_length(title) <= 120),
  jobs_total integer not null check (jobs_total between 1 and 20),
  cost bigint not null check (cost >= 0),
  created_at timestamptz not null default now(),
  canceled_at timestamptz
);

create index batches_user_created_idx on public.batches (user_id, created_at desc);

/** Every generation is a job. `attempt` names the current try; callbacks carry it. */
create table public.jobs (
  id uuid primary key default gen_random_uuid(),
  -- No foreign key: a deleted account's jobs stay for the books, erased (module 21).
  user_id uuid not null,
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
  -- Removed from the owner's history (the row and its ledger stay), and when its files went.
  deleted_at timestamptz,
  output_expired_at timestamptz,
  -- The project and the batch it belongs to (module 14); removing them ungroups it.
  project_id uuid references public.projects (id) on delete set null,
  batch_id uuid references public.batches (id) on delete set null,
  -- A section clip (module 4): the compose job it was made for; that compose job waits,
  -- queued but not handed out, while `waiting_for` names a clip still unfinished.
  parent_job_id uuid references public.jobs (id) on delete set null,
  waiting_for uuid[] not null default '{}',
  -- The owner's server to tell about this job (module 22: an https URL, the events it
  -- wants), and when it is canceled if not finished (cancel_after; the sweep enforces it).
  webhook text check (char_length(webhook) <= 2048 and webhook ~ '^https?://'),
  webhook_events text[] check (webhook_events
    <@ '{started,progress,completed,failed,canceled}'::text[]),
  deadline_at timestamptz,
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
-- The retention sweep finds outputs due for removal without reading the whole history.
create index jobs_outputs_kept_idx on public.jobs (finished_at)
  where output_expired_at is null and finished_at is not null;
create index jobs_deleted_outputs_idx on public.jobs (deleted_at)
  where output_expired_at is null and deleted_at is not null;
create index jobs_project_created_idx on public.jobs (project_id, created_at desc)
  where project_id is not null;
create index jobs_batch_idx on public.jobs (batch_id) where batch_id is not null;
create index jobs_parent_idx on public.jobs (parent_job_id) where parent_job_id is not null;
-- The sweep finds unfinished jobs past their deadline (service.jobs_cancel_overdue).
create index jobs_deadline_idx on public.jobs (deadline_at)
  where deadline_at is not null and status in ('queued', 'dispatched', 'processing');
-- A model's recent runs, for the estimates (private.model_run_seconds).
create index jobs_model_completed_idx on public.jobs (model_id, finished_at desc)
  where status = 'completed';
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
  -- No foreign key: a deleted account's ledger stays, under an id that names nobody
  -- (module 21).
  user_id uuid not null,
  kind public.ledger_kind not null,
  amount bigint not null,
  hold bigint not null default 0,
  balance_after bigint not null check (balance_after >= 0),
  reserved_after bigint not null check (reserved_after >= 0),
  job_id uuid references public.jobs (id) on delete cascade,
  external_id text unique,
  description text not null default '',
  created_at timestamptz not null default now(),
  debt bigint not null default 0,  -- the change of the debt (module 16)
  check ((kind in ('reserve', 'capture', 'release')) = (job_id is not null)),
  check ((kind in ('reserve', 'capture', 'release')) = (external_id is null)),
  check (kind <> 'reserve' or (amount < 0 and hold = -amount)),
  check (kind <> 'release' or (amount > 0 and hold = -amount)),
  check (kind <> 'capture' or (amount = 0 and hold < 0)),
  check (kind not in ('initial_grant', 'grant', 'purchase') or (amount > 0 and hold = 0)),
  -- The debt rule's rows (module 16):
  constraint credit_ledger_debt_kinds check (debt = 0 or kind in ('clawback', 'debt_settle')),
  constraint credit_ledger_clawback check (
    kind <> 'clawback' or (amount <= 0 and hold = 0 and debt >= 0 and debt - amount > 0)),
  constraint credit_ledger_debt_settle check (
    kind <> 'debt_settle' or (amount < 0 and hold = 0 and debt = amount)),
  constraint credit_ledger_merge check (
    (kind <> 'merge_out' or (amount < 0 and hold = 0))
    and (kind <> 'merge_in' or (amount > 0 and hold = 0)))
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
  ('worker_unhealthy_after_failures', '3'),
  -- Deliveries to users' webhooks (module 22): the first retry waits the base, each next
  -- one four times longer up to the max; given up after max attempts or max age.
  ('webhook_retry_base_seconds', '5'),
  ('webhook_retry_max_seconds', '21600'),
  ('webhook_max_attempts', '12'),
  ('webhook_max_age_seconds', '86400'),
  ('webhook_retention_days', '30');

/**
 * What each tier may do: the highest job priority its users may set (admins and the
 * service may set any), the credits they may commit to jobs per UTC day (null: no cap),
 * how many unfinished jobs they may have (set on the profile when the tier changes,
 * module 16), how many days their outputs are kept (null: the deployment's
 * OUTPUT_RETENTION_DAYS; the shorter of the two when both are set, module 13) and the most
 * pixels a composed video's custom frame (`size`) may have (1080p's, or 4K's).
 * A tier without a row gets the `free` row's limits.
 */
create table private.tier_limits (
  tier text primary key check (tier ~ '^[a-z][a-z0-9-]{0,29}$'),
  max_priority integer not null check (max_priority between -100 and 100),
  daily_spend_credits bigint check (daily_spend_credits >= 0),
  concurrent_jobs integer not null default 5 check (concurrent_jobs between 0 and 100),
  output_retention_days integer check (output_retention_days > 0),
  max_frame_pixels integer not null default 2073600
    check (max_frame_pixels between 2073600 and 8294400)
);

insert into private.tier_limits
  (tier, max_priority, daily_spend_credits, concurrent_jobs, output_retention_days,
   max_frame_pixels) values
  ('free', 0, 500, 5, 30, 1920 * 1080),
  ('premium', 50, 20000, 20, null, 3840 * 2160);

/**
 * Credits each user committed to jobs per UTC day of the jobs' creation: a job's cost when
 * it is made, less what it gave back when it ended (all of it when it failed or was
 * canceled, the unused part when it completed). The tier's daily cap reads one row.
 */
create table private.spend_days (
  user_id uuid not null references auth.users (id) on delete cascade,
  day date not null,
  committed bigint not null default 0 check (committed >= 0),
  primary key (user_id, day)
);

/**
 * One row per free grant given (the initial credits): who took it, as which identity
 * (the normalised email of a permanent account; none for a guest), from which client
 * address. An identity takes one free grant, whichever account it signs in to.
 */
create table private.free_grants (
  id bigint generated always as identity primary key,
  -- Kept (without the person) when the account is deleted: the identity stays used.
  user_id uuid unique references auth.users (id) on delete set null,
  identity text unique check (char_length(identity) between 3 and 320),
  client_address text check (char_length(client_address) <= 64),
  device_checked boolean not null default false,
  amount bigint not null check (amount > 0),
  created_at timestamptz not null default now()
);

alter table private.tier_limits enable row level security;
alter table private.spend_days enable row level security;
alter table private.free_grants enable row level security;

create index free_grants_address_idx on private.free_grants (client_address, created_at desc);

/** Limits on free credits (module 2): see service.initial_grant_claim and merge_anonymous. */
insert into private.settings (name, value) values
  ('free_credits_cap', '100'),
  ('guest_grants_per_address_per_day', '3');
