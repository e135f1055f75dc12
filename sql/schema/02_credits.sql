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
    select * into v_profile from public.profiles where id = p_user_id;
    if not found then
      raise exception 'no profile for user %', p_user_id using errcode = 'VG404';
    end if;
    -- DETAIL is JSON: the client shows "you need 65, you have 59" from it.
    raise exception 'not enough credits: this needs %, you have % to spend', -p_amount,
      v_profile.balance
      using errcode = 'VG402', hint = 'Buy credits or claim the initial grant.',
            detail = jsonb_build_object('required', -p_amount, 'balance', v_profile.balance,
                                        'reserved', v_profile.reserved)::text;
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

/**
 * The pro-rata rule: what a completed job that made `p_seconds` of media captures — its
 * cost × the share of the length reserved (params.duration; the length made when the
 * params name none; at least 1 s) that it made, rounded up, never more than the cost.
 * In float8, as the services computed it before (videogen.composition), so the numbers
 * are the same to the credit.
 */
create function private.credits_pro_rata(p_job public.jobs, p_seconds double precision)
returns bigint
language plpgsql immutable strict
set search_path = ''
as $$
declare
  v_reserved double precision :=
    greatest(coalesce((p_job.params ->> 'duration')::double precision, p_seconds), 1.0);
begin
  return least(p_job.cost,
               ceil(p_job.cost::double precision * least(1.0, p_seconds / v_reserved))::bigint);
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
    perform private.spend_give_back(p_job, p_job.cost - p_used);
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
    perform private.spend_give_back(p_job, p_job.cost);
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
create function service.initial_grant_claim(p_client jsonb default '{}')
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

/** Service: credit a verified store purchase, once per transaction id. */
create function service.credits_purchase(
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
create function service.credits_grant(
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
