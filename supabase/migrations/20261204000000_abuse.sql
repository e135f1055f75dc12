-- Abuse: nobody gets credits, compute or a queue place they did not pay for
-- (sql/schema modules 1, 2, 3, 4, 6, 12, 14).
--   * free credits: one free grant per account and per mailbox, guests limited per client
--     address (or vouched for by Apple's DeviceCheck), capped by free_credits_cap, and never
--     moved by merge_anonymous (only what was bought moves);
--   * queue places: the priority a user may set is bounded by their tier;
--   * spend caps: a caller's max_credits per job or batch, and the tier's daily cap
--     (private.spend_days: what each day's jobs committed);
--   * a composed video is priced at the length it will have (a narration step's exact
--     length, or its words' with a 25 % + 2 s margin), and the wizard's assembly pays the
--     render alone;
--   * new public tables start without TRUNCATE, REFERENCES, TRIGGER for anon and
--     authenticated.

-- ===================================================================================
-- Tables and settings
-- ===================================================================================
/**
 * What each tier may do: the highest job priority its users may set (admins and the
 * service may set any) and the credits they may commit to jobs per UTC day (null: no cap).
 * A tier without a row gets the `free` row's limits.
 */
create table private.tier_limits (
  tier text primary key check (tier ~ '^[a-z][a-z0-9-]{0,29}$'),
  max_priority integer not null check (max_priority between -100 and 100),
  daily_spend_credits bigint check (daily_spend_credits >= 0)
);

insert into private.tier_limits (tier, max_priority, daily_spend_credits) values
  ('free', 0, 500),
  ('premium', 50, 20000);

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

/** Limits on free credits (module 2): see claim_initial_grant and merge_anonymous. */
insert into private.settings (name, value) values
  ('free_credits_cap', '100'),
  ('guest_grants_per_address_per_day', '3');

-- ===================================================================================
-- Functions whose arguments change: the old signatures go
-- ===================================================================================

drop function public.claim_initial_grant_request(jsonb);
drop function public.claim_initial_grant();
drop function public.create_job_request(jsonb, text, jsonb, integer, uuid);
drop function public.create_job(text, jsonb, integer, uuid);
drop function public.create_batch_request(jsonb, jsonb, uuid, text);
drop function public.create_batch(jsonb, uuid, text);

-- ===================================================================================
-- Free credits
-- ===================================================================================
/**
 * The identity a free grant is counted against: a permanent account's email, lower-cased,
 * without a "+tag" (and, for Gmail, without dots), so one mailbox takes one free grant.
 */
create function private.email_identity(p_email text)
returns text
language sql immutable
set search_path = ''
as $$
  select case
    when p_email is null or position('@' in p_email) = 0 then null
    else (
      select 'email:' || case
               when v_domain in ('gmail.com', 'googlemail.com') then replace(v_local, '.', '')
               else v_local end
             || '@' || case when v_domain = 'googlemail.com' then 'gmail.com' else v_domain end
        from (select split_part(split_part(lower(btrim(p_email)), '@', 1), '+', 1) as v_local,
                     split_part(lower(btrim(p_email)), '@', 2) as v_domain) parts)
  end;
$$;

/**
 * The caller's one-time free credits (anonymous users get the smaller amount), at most
 * `free_credits_cap`. `p_client` is what the function saw: {"address": the client's IP,
 * "device_checked": true when Apple's DeviceCheck vouched this device never took one}.
 * Refused (VGC09) when this account, or another account of the same email, took one; a
 * guest is refused (VGR29, retry_after) past `guest_grants_per_address_per_day` guest
 * grants from one address in 24 hours, unless its device was checked.
 */
create function public.claim_initial_grant(p_client jsonb default '{}')
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
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
$$;

/** Service, for the user in the claims: claim_initial_grant as one request. */
create function public.claim_initial_grant_request(p_request jsonb, p_client jsonb default '{}')
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
  return private.request_finish(p_request, 200, public.claim_initial_grant(p_client));
end;
$$;

/**
 * For the user in the claims (a permanent account): take over an anonymous user's credits,
 * once. Refused (VGN09) while the anonymous user has unfinished jobs or debt; VGN22 when it
 * is not anonymous; VGC09 when it was merged into another account. A repeat answers
 * applied=false with the first merge.
 */
create or replace function public.merge_anonymous(p_anonymous_id uuid)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
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
$$;

-- ===================================================================================
-- Queue places and spend caps
-- ===================================================================================

/** A job gave ``p_amount`` back: it no longer counts in its day's spending. */
create function private.spend_give_back(p_job public.jobs, p_amount bigint)
returns void
language sql
security definer
set search_path = ''
as $$
  update private.spend_days
     set committed = greatest(0, committed - p_amount)
   where user_id = p_job.user_id and day = (p_job.created_at at time zone 'UTC')::date
     and p_amount > 0;
$$;

/** Capture what a completed job used and give back the rest of its hold. */
create or replace function private.credits_capture(p_job public.jobs, p_used bigint)
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
    perform private.spend_give_back(p_job, p_job.cost - p_used);
  end if;
end;
$$;

/** Give back a failed or canceled job's whole hold. */
create or replace function private.credits_release(p_job public.jobs)
returns void
language plpgsql
security definer
set search_path = ''
as $$
begin
  if p_job.cost > 0 then
    perform private.ledger_apply(p_job.user_id, 'release', p_job.cost, -p_job.cost, p_job.id,
                                 null, 'release for ' || p_job.model_id);
    perform private.spend_give_back(p_job, p_job.cost);
  end if;
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

/**
 * Check a model and params for the user, price them and insert the queued job — no money
 * yet: create_job and create_batch (module 12) reserve after it. A project named must be
 * the user's own (VGR04 otherwise).
 */
create or replace function private.job_insert(
  p_uid uuid, p_model_id text, p_params jsonb, p_priority integer,
  p_project_id uuid default null, p_batch_id uuid default null
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
                           provider, project_id, batch_id)
  values (p_uid, v_model.id, v_model.job_type, v_params, p_priority,
          private.job_price(v_model, v_params), v_model.max_attempts, v_model.provider,
          p_project_id, p_batch_id)
  returning * into v_job;
  return v_job;
end;
$$;

/**
 * Create a job for the caller: check the model and params, price it, enforce the
 * concurrent-job limit and the spend caps (`p_max_credits`, the tier's daily cap), reserve
 * the cost and queue it — one transaction.
 */
create function public.create_job(
  p_model_id text, p_params jsonb default '{}', p_priority integer default 0,
  p_project_id uuid default null, p_max_credits bigint default null
)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
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
$$;

/** Service, for the user in the claims: create_job as one request (rate limit, key). */
create function public.create_job_request(
  p_request jsonb, p_model_id text, p_params jsonb default '{}', p_priority integer default 0,
  p_project_id uuid default null, p_max_credits bigint default null
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
                                public.create_job(p_model_id, p_params, p_priority, p_project_id,
                                                  p_max_credits));
end;
$$;

/**
 * Create 1–20 jobs for the caller in one transaction: every item is checked and priced,
 * the total reserved, or nothing happens. `p_items` is `[{model, params, priority}]`.
 * Short of credits: VG402 with `{required, balance, reserved, items}` in the detail; over
 * the concurrent-job limit (batch jobs count like any): VGJ29.
 */
create function public.create_batch(
  p_items jsonb, p_project_id uuid default null, p_title text default null,
  p_max_credits bigint default null
)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
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
$$;

/** Service, for the user in the claims: create_batch as one request. */
create function public.create_batch_request(
  p_request jsonb, p_items jsonb, p_project_id uuid default null, p_title text default null,
  p_max_credits bigint default null
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
                                public.create_batch(p_items, p_project_id, p_title,
                                                    p_max_credits));
end;
$$;

-- ===================================================================================
-- A composed video is priced at the length it will have
-- ===================================================================================

/**
 * The length a composed video will have, in whole seconds, before anything is rendered —
 * what it is priced and capped at: exactly the narration's when it brings a narration
 * step's files (that step's output says how long they run, padding included); else its
 * words read at 160 a minute (times speaking_rate, 40 a section when the script is still
 * to be written) with 0.7 s of padding a section, plus a margin of 25 % and 2 s. Null for
 * a timeline of elements (priced by its end) and for other job types.
 */
create function private.compose_length(p_uid uuid, p_model public.models, p_params jsonb)
returns integer
language plpgsql stable
security definer
set search_path = ''
as $$
declare
  v_first text := p_params -> 'narration_paths' ->> 0;
  v_seconds numeric;
  v_words integer;
  v_sections integer;
  v_rate numeric := 1;
begin
  if p_model.job_type <> 'compose' or jsonb_typeof(p_params -> 'elements') = 'array' then
    return null;
  end if;
  if v_first is not null then
    -- <uid>/steps/<narration job>/narration_00.wav: the step that made them, if it is ours.
    if v_first ~ '^[0-9a-f-]{36}/steps/[0-9a-f-]{36}/' then
      select (j.output ->> 'duration_s')::numeric into v_seconds
        from public.jobs j
       where j.id = split_part(v_first, '/', 3)::uuid and j.user_id = p_uid
         and j.status = 'completed' and j.output -> 'narration_paths' = p_params -> 'narration_paths';
    end if;
    return ceil(v_seconds)::integer;  -- null (unknown files): priced by the duration asked
  end if;
  if jsonb_typeof(p_params -> 'speaking_rate') = 'number' then
    v_rate := greatest((p_params ->> 'speaking_rate')::numeric, 0.25);
  end if;
  if jsonb_typeof(p_params -> 'script' -> 'sections') = 'array' then
    select count(*), coalesce(sum(cardinality(regexp_split_to_array(
             btrim(coalesce(s ->> 'narration', '')), '\s+'))), 0)
      into v_sections, v_words
      from jsonb_array_elements(p_params -> 'script' -> 'sections') s;
  else
    v_sections := case when jsonb_typeof(p_params -> 'sections') = 'number'
                       then (p_params ->> 'sections')::integer else 4 end;
    v_words := 40 * v_sections;
  end if;
  v_seconds := v_words / (160 * v_rate) * 60 + v_sections * 0.7;
  return ceil(v_seconds * 1.25 + 2)::integer;
end;
$$;

/** Normalise request params against the model's limits; raises VGP22 with the reason. */
create or replace function private.normalize_params(p_model public.models, p_params jsonb)
returns jsonb
language plpgsql stable
set search_path = ''
as $$
declare
  v_duration integer;
  v_length integer;
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
  if p_params ? 'original_prompt'
     and (jsonb_typeof(p_params -> 'original_prompt') <> 'string'
          or btrim(p_params ->> 'original_prompt') = ''
          or char_length(p_params ->> 'original_prompt') > 2000
          or jsonb_typeof(p_params -> 'prompt') is distinct from 'string') then
    raise exception 'original_prompt must be the text (1–2000 characters) the prompt was made from, given with the prompt'
      using errcode = 'VGP22';
  end if;
  -- Checked with a pattern, not a cast in an exception block (that would open a
  -- subtransaction on every job).
  if coalesce(p_params ->> 'duration', '0') !~ '^\s*\d{1,6}\s*$' then
    raise exception 'duration must be a whole number of seconds' using errcode = 'VGP22';
  end if;
  -- A timeline of elements without a duration is paid by its length: the end of its last
  -- element in whole seconds, at least the model's minimum.
  if p_params ->> 'duration' is null and jsonb_typeof(p_params -> 'elements') = 'array' then
    select greatest(p_model.min_duration_s,
                    ceil(max((e ->> 'start')::numeric + (e ->> 'duration')::numeric)))::integer
      into v_duration
      from jsonb_array_elements(p_params -> 'elements') e
     where jsonb_typeof(e -> 'start') = 'number' and jsonb_typeof(e -> 'duration') = 'number';
  end if;
  v_length := private.compose_length(auth.uid(), p_model, p_params);
  v_duration := coalesce((p_params ->> 'duration')::integer, v_duration, v_length,
                         p_model.default_duration_s);
  -- A composed video's duration is the most it may run: never more than it will.
  if v_length is not null then
    v_duration := greatest(p_model.min_duration_s, least(v_duration, v_length));
  end if;
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
 * Price of a job from the model's rule and the normalised params. A composed video that
 * brings its narration (the wizard's assembly) pays the render alone — its script, speech
 * and pictures were paid in their own steps: one credit and a quarter of the per-second
 * price.
 */
create or replace function private.job_price(p_model public.models, p_params jsonb)
returns bigint
language plpgsql stable
set search_path = ''
as $$
declare
  v_factor numeric := coalesce(
    (p_model.resolution_factors ->> (p_params ->> 'resolution'))::numeric, 1);
  v_duration numeric := (p_params ->> 'duration')::numeric;
begin
  if p_model.job_type = 'compose' and jsonb_typeof(p_params -> 'narration_paths') = 'array' then
    return ceil((1 + p_model.credits_per_second * v_duration / 4) * v_factor)::bigint;
  end if;
  return ceil((p_model.credits_base + p_model.credits_per_second * v_duration) * v_factor)::bigint;
end;
$$;

-- ===================================================================================
-- Grants
-- ===================================================================================

revoke execute on function private.email_identity(text), private.tier_limits_of(uuid),
  private.check_priority(uuid, integer), private.check_spend(uuid, bigint, bigint),
  private.spend_give_back(public.jobs, bigint),
  private.compose_length(uuid, public.models, jsonb)
  from public, anon, authenticated;
revoke execute on function public.claim_initial_grant(jsonb),
  public.claim_initial_grant_request(jsonb, jsonb),
  public.create_job(text, jsonb, integer, uuid, bigint),
  public.create_job_request(jsonb, text, jsonb, integer, uuid, bigint),
  public.create_batch(jsonb, uuid, text, bigint),
  public.create_batch_request(jsonb, jsonb, uuid, text, bigint)
  from public, anon, authenticated;
grant execute on function private.email_identity(text), private.tier_limits_of(uuid),
  private.check_priority(uuid, integer), private.check_spend(uuid, bigint, bigint),
  private.spend_give_back(public.jobs, bigint),
  private.compose_length(uuid, public.models, jsonb)
  to service_role;
grant execute on function public.claim_initial_grant(jsonb),
  public.claim_initial_grant_request(jsonb, jsonb),
  public.create_job(text, jsonb, integer, uuid, bigint),
  public.create_job_request(jsonb, text, jsonb, integer, uuid, bigint),
  public.create_batch(jsonb, uuid, text, bigint),
  public.create_batch_request(jsonb, jsonb, uuid, text, bigint)
  to service_role;
revoke all on private.tier_limits, private.spend_days, private.free_grants
  from anon, authenticated;
grant all on private.tier_limits, private.spend_days, private.free_grants to service_role;

alter default privileges in schema public revoke truncate, references, trigger on tables
  from anon, authenticated;
