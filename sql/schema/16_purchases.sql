/*
 * Module 16: purchases that can be taken back, debt, subscriptions (the tier follows
 * them) and anonymous accounts merged.
 *
 * A store purchase (Stripe Checkout, the App Store) is credited once per store transaction
 * and remembered in private.purchases with what was paid. A refund or a dispute of it
 * claws back the credits it granted, once per the store's refund/dispute id:
 *   credits clawed back so far = floor(credits × money returned so far / money paid)
 * (Stripe: the refunded or disputed amounts; the App Store: the revocation share, the whole
 * purchase when it gives none), so partial refunds claw back proportionally, rounding in
 * the customer's favour, and refunds of the whole amount take back exactly all of it.
 *
 * The debt rule. A clawback takes what it can from the spendable balance; whatever the
 * user already spent (or holds for running jobs) becomes profiles.debt. The balance never
 * goes below zero. While debt is positive:
 *   - every credit that reaches the balance (purchase, grant, initial grant, adjust, the
 *     release of a job's hold, a merge) settles the debt first, in the same transaction,
 *     as a `debt_settle` ledger row right after it (the trigger below): so debt > 0 implies
 *     balance = 0, and the money audit checks it;
 *   - no new job may be created (VGD02, 402 CREDITS_IN_DEBT); running jobs go on.
 * Every movement is a ledger row: `clawback` (amount = −taken from the balance,
 * debt = +the rest), `debt_settle` (amount = debt = −settled). credit_ledger.debt is the
 * change of the debt, so profiles.debt = sum(ledger.debt), which the audit checks too.
 *
 * An anonymous (device) user who signs in to an existing account hands it what they paid
 * for, once (service.anonymous_merge): `merge_out` on the anonymous user, `merge_in` on the
 * account, and their purchases follow (a later refund claws back from the account). Free
 * credits do not move: a guest spends them first, so what moves is the balance up to what
 * they bought (purchases less clawbacks); the rest stays with the guest.
 */

-- ===================================================================================
-- Tables and columns
-- ===================================================================================

-- profiles.debt and credit_ledger.debt, and the ledger's checks on the new kinds, are in
-- module 1 (the reads of modules 11 and 15 show the debt); the rules on them are here.

/** A credited store purchase and what it paid: what a refund is matched against. */
create table private.purchases (
  id bigint generated always as identity primary key,
  user_id uuid not null,  -- no foreign key: kept for the books when the account goes
  store text not null check (store in ('stripe', 'app_store')),
  -- The id it was credited by: a Checkout Session id, an App Store transaction id.
  transaction_id text not null check (char_length(transaction_id) between 1 and 200),
  -- Stripe: the PaymentIntent (refunds and disputes name it); App Store: the original
  -- transaction id.
  payment_ref text check (char_length(payment_ref) between 1 and 200),
  product_id text check (char_length(product_id) <= 200),
  credits bigint not null check (credits > 0),
  amount_minor bigint check (amount_minor >= 0),  -- what was paid, in the currency's minor unit
  currency text check (char_length(currency) <= 10),
  clawed_back bigint not null default 0,
  ledger_id bigint not null references public.credit_ledger (id),
  created_at timestamptz not null default now(),
  unique (store, transaction_id),
  check (clawed_back between 0 and credits)
);

create unique index purchases_stripe_payment_idx on private.purchases (payment_ref)
  where store = 'stripe';
create index purchases_user_idx on private.purchases (user_id);

/**
 * What a subscription product is worth: the tier it gives while active and the credits
 * each paid period grants (once per invoice / renewal transaction). A deployment adds its
 * own products (Stripe price ids, App Store product ids) with a migration.
 */
create table private.subscription_plans (
  product_id text primary key check (char_length(product_id) between 1 and 200),
  tier text not null references private.tier_limits (tier),
  period_credits bigint not null check (period_credits >= 0)
);

insert into private.subscription_plans (product_id, tier, period_credits) values
  ('price_premium_monthly', 'premium', 1000),
  ('com.videogen.premium.monthly', 'premium', 1000);

/**
 * A store subscription (a Stripe Subscription, an App Store original transaction) and its
 * latest known state. Events may arrive out of order: a state older than the one stored
 * (event_at) is not applied. The profile's tier is the best tier among its active ones.
 */
create table private.subscriptions (
  id bigint generated always as identity primary key,
  user_id uuid references auth.users (id) on delete set null,
  store text not null check (store in ('stripe', 'app_store')),
  subscription_id text not null check (char_length(subscription_id) between 1 and 200),
  product_id text not null check (char_length(product_id) between 1 and 200),
  status text not null check (status in ('active', 'past_due', 'canceled', 'expired',
                                         'refunded')),
  current_period_end timestamptz,
  event_at timestamptz not null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  unique (store, subscription_id)
);

create index subscriptions_user_idx on private.subscriptions (user_id);

/** A refund or dispute of a purchase, applied once per the store's id for it. */
create table private.purchase_reversals (
  id bigint generated always as identity primary key,
  purchase_id bigint not null references private.purchases (id) on delete cascade,
  user_id uuid not null,  -- no foreign key: kept for the books when the account goes
  kind text not null check (kind in ('refund', 'dispute')),
  -- '<store>:<the store's id>': re_…/dp_… for Stripe, the revoked transaction for Apple.
  reversal_id text not null unique check (char_length(reversal_id) between 1 and 220),
  amount_minor bigint check (amount_minor >= 0),
  share_per_100000 integer check (share_per_100000 between 0 and 100000),
  credits bigint not null check (credits >= 0),
  from_balance bigint not null check (from_balance >= 0),
  to_debt bigint not null check (to_debt >= 0),
  ledger_id bigint references public.credit_ledger (id),
  created_at timestamptz not null default now(),
  check (credits = from_balance + to_debt),
  check ((credits > 0) = (ledger_id is not null))
);

create index purchase_reversals_purchase_idx on private.purchase_reversals (purchase_id);

/** An anonymous user whose credits moved to a permanent account (once). */
create table private.account_merges (
  anonymous_id uuid primary key references auth.users (id) on delete cascade,
  account_id uuid not null references auth.users (id) on delete cascade,
  credits bigint not null check (credits >= 0),
  out_ledger_id bigint references public.credit_ledger (id),
  in_ledger_id bigint references public.credit_ledger (id),
  merged_at timestamptz not null default now(),
  check (anonymous_id <> account_id),
  check ((credits > 0) = (in_ledger_id is not null and out_ledger_id is not null))
);

create index account_merges_account_idx on private.account_merges (account_id);

alter table private.purchases enable row level security;
alter table private.purchase_reversals enable row level security;
alter table private.account_merges enable row level security;
alter table private.subscription_plans enable row level security;
alter table private.subscriptions enable row level security;

-- ===================================================================================
-- Debt: the ledger rows that carry it, settling, and no new jobs while in debt
-- ===================================================================================

/**
 * Apply a change of balance and debt and append its ledger row (clawback, debt_settle):
 * ledger_apply's twin for the rows that move the debt. The caller holds the profile lock.
 */
create function private.ledger_apply_debt(
  p_user_id uuid,
  p_kind public.ledger_kind,
  p_amount bigint,
  p_debt bigint,
  p_external_id text,
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
         debt = debt + p_debt
   where id = p_user_id
     and balance + p_amount >= 0
     and debt + p_debt >= 0
  returning * into v_profile;
  if not found then
    raise exception 'debt change % / % does not fit the profile of %', p_amount, p_debt,
      p_user_id using errcode = 'VGC22';
  end if;

  insert into public.credit_ledger
    (user_id, kind, amount, hold, balance_after, reserved_after, external_id, description, debt)
  values
    (p_user_id, p_kind, p_amount, 0, v_profile.balance, v_profile.reserved, p_external_id,
     p_description, p_debt)
  returning * into v_row;
  return v_row;
end;
$$;

/**
 * After any ledger row that adds to the balance: while the user owes credits, settle the
 * debt from the balance at once (a debt_settle row). The row's own transaction already
 * holds the profile's lock (every ledger write updates the profile first).
 */
create function private.ledger_settle_debt()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_profile public.profiles;
  v_settled bigint;
begin
  select * into v_profile from public.profiles where id = new.user_id;
  if v_profile.debt > 0 and v_profile.balance > 0 then
    v_settled := least(v_profile.debt, v_profile.balance);
    perform private.ledger_apply_debt(new.user_id, 'debt_settle', -v_settled, -v_settled,
                                      'debt_settle:' || new.id,
                                      'settles debt from ' || new.kind::text);
  end if;
  return null;
end;
$$;

create trigger credit_ledger_settle_debt after insert on public.credit_ledger
  for each row when (new.amount > 0) execute function private.ledger_settle_debt();

/** No new job while the owner owes credits (VGD02 → 402 CREDITS_IN_DEBT). */
create function private.refuse_job_in_debt()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_debt bigint;
begin
  select debt into v_debt from public.profiles where id = new.user_id;
  if v_debt > 0 then
    raise exception 'you owe % credits from a refunded purchase', v_debt
      using errcode = 'VGD02',
            hint = 'Buy credits: the debt is settled first, then new jobs can start.',
            detail = jsonb_build_object('debt', v_debt)::text;
  end if;
  return new;
end;
$$;

create trigger jobs_refuse_in_debt before insert on public.jobs
  for each row execute function private.refuse_job_in_debt();

-- ===================================================================================
-- Purchases and their reversals
-- ===================================================================================

/** The credit state of one profile, for answers. */
create function private.credit_state(p_user_id uuid)
returns jsonb
language sql stable
security definer
set search_path = ''
as $$
  select jsonb_build_object('balance', p.balance, 'reserved', p.reserved, 'debt', p.debt)
    from public.profiles p where p.id = p_user_id
$$;

/**
 * Service: credit a verified store purchase once per (store, transaction id) and remember
 * it for refunds. The answer is credits_add's {applied, entry} with the purchase and the
 * profile's {balance, reserved, debt} after it (a debt is settled first). A transaction
 * another user was credited for is VGC09.
 */
create function service.purchase_record(
  p_user_id uuid,
  p_store text,
  p_transaction_id text,
  p_credits bigint,
  p_payment_ref text default null,
  p_amount_minor bigint default null,
  p_currency text default null,
  p_product_id text default null,
  p_description text default 'purchase'
)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
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
$$;

/**
 * Service: a refund or dispute of a purchase, found by its store transaction id or its
 * payment reference (a Stripe PaymentIntent). Claws back, once per p_reversal_id, the
 * purchase's credits in proportion to the money returned so far (p_amount_minor of the
 * amount paid) or to the store's share (p_share_per_100000; both null: all of it), never
 * more than the purchase granted: from the balance first, the rest as debt. A purchase we
 * never credited answers applied=false with a reason.
 */
create function service.purchase_reverse(
  p_store text,
  p_reversal_id text,
  p_kind text,
  p_transaction_id text default null,
  p_payment_ref text default null,
  p_amount_minor bigint default null,
  p_share_per_100000 integer default null,
  p_description text default ''
)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
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
$$;

-- ===================================================================================
-- Subscriptions: the tier follows them, each paid period grants its credits once
-- ===================================================================================

/**
 * Set a profile's tier from its subscriptions: the tier of the highest priority bound
 * among those active (or past due: the store is still retrying the payment) whose period
 * has not ended, `free` without one; a new tier also sets the profile's concurrent-job
 * limit from tier_limits. Returns the tier.
 */
create function private.subscription_tier_apply(p_user_id uuid)
returns text
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_tier text;
begin
  select l.tier into v_tier
    from private.subscriptions s
    join private.subscription_plans p on p.product_id = s.product_id
    join private.tier_limits l on l.tier = p.tier
   where s.user_id = p_user_id and s.status in ('active', 'past_due')
     and (s.current_period_end is null or s.current_period_end > now())
   order by l.max_priority desc, l.concurrent_jobs desc
   limit 1;
  v_tier := coalesce(v_tier, 'free');
  update public.profiles p
     set tier = v_tier,
         concurrent_job_limit = (select l.concurrent_jobs from private.tier_limits l
                                  where l.tier in (v_tier, 'free')
                                  order by l.tier = 'free' limit 1),
         updated_at = now()
   where p.id = p_user_id and p.tier is distinct from v_tier;
  return v_tier;
end;
$$;

/**
 * Service: a verified store event about a subscription. Records its state unless a newer
 * one is stored (p_event_at), grants the period's credits once per p_period_id (a paid
 * Stripe invoice, an App Store renewal transaction) as a purchase — or, with
 * p_reversal_id (a refund), claws that period's credits back once, as purchase_reverse
 * does (p_share_per_100000 of them; null: all) — and sets the profile's tier. The user is p_user_id, or the one the
 * subscription was first recorded for. A product without a plan, or an unknown user, is
 * acknowledged with applied=false and a reason (the store must not retry it).
 */
create function service.subscription_record(
  p_store text,
  p_subscription_id text,
  p_product_id text,
  p_status text,
  p_event_at timestamptz,
  p_user_id uuid default null,
  p_current_period_end timestamptz default null,
  p_period_id text default null,
  p_payment_ref text default null,
  p_amount_minor bigint default null,
  p_currency text default null,
  p_reversal_id text default null,
  p_share_per_100000 integer default null
)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_plan private.subscription_plans;
  v_sub private.subscriptions;
  v_user uuid;
  v_grant jsonb;
  v_tier text;
begin
  select * into v_plan from private.subscription_plans where product_id = p_product_id;
  if not found then
    return jsonb_build_object('applied', false,
                              'reason', format('product %s gives no tier here', p_product_id));
  end if;
  select * into v_sub from private.subscriptions
   where store = p_store and subscription_id = p_subscription_id for update;
  v_user := coalesce(v_sub.user_id, p_user_id);
  if v_user is null or not exists (select 1 from public.profiles where id = v_user) then
    return jsonb_build_object('applied', false,
                              'reason', 'the subscription names no user of ours');
  end if;
  if v_sub.id is not null and p_user_id is not null and v_sub.user_id <> p_user_id then
    raise exception 'this subscription belongs to another account' using errcode = 'VGC09';
  end if;

  if v_sub.id is null then
    insert into private.subscriptions
      (user_id, store, subscription_id, product_id, status, current_period_end, event_at)
    values (v_user, p_store, p_subscription_id, p_product_id, p_status,
            p_current_period_end, p_event_at)
    returning * into v_sub;
  elsif p_event_at >= v_sub.event_at then
    update private.subscriptions
       set product_id = p_product_id, status = p_status,
           current_period_end = coalesce(p_current_period_end, current_period_end),
           event_at = p_event_at, updated_at = now()
     where id = v_sub.id
    returning * into v_sub;
  end if;

  if p_period_id is not null and p_reversal_id is not null then
    v_grant := service.purchase_reverse(
      p_store, p_reversal_id, 'refund', p_period_id, null, null, p_share_per_100000,
      format('refund of subscription %s (%s)', p_product_id, p_store));
  elsif p_period_id is not null and v_plan.period_credits > 0 then
    v_grant := service.purchase_record(
      v_user, p_store, p_period_id, v_plan.period_credits, p_payment_ref, p_amount_minor,
      p_currency, p_product_id, format('subscription %s (%s)', p_product_id, p_store));
  end if;
  v_tier := private.subscription_tier_apply(v_user);
  return coalesce(v_grant, jsonb_build_object('applied', true) || private.credit_state(v_user))
         || jsonb_build_object('tier', v_tier,
                               'subscription', to_jsonb(v_sub) - 'user_id' - 'id');
end;
$$;

/**
 * Service (sweep): subscriptions whose period ended without a renewal the store told us of
 * lose their tier; returns how many profiles changed.
 */
create function service.subscriptions_expire()
returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_user uuid;
  v_count integer := 0;
begin
  for v_user in
    select distinct s.user_id from private.subscriptions s
      join public.profiles p on p.id = s.user_id
     where s.current_period_end <= now() and p.tier <> 'free'
  loop
    if private.subscription_tier_apply(v_user) = 'free' then
      v_count := v_count + 1;
    end if;
  end loop;
  return v_count;
end;
$$;

-- ===================================================================================
-- Anonymous users who sign in to an existing account
-- ===================================================================================

/**
 * For the user in the claims (a permanent account): take over an anonymous user's credits,
 * once. Refused (VGN09) while the anonymous user has unfinished jobs or debt; VGN22 when it
 * is not anonymous; VGC09 when it was merged into another account. A repeat answers
 * applied=false with the first merge.
 */
create function service.anonymous_merge(p_anonymous_id uuid)
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
-- As one request (rate limit, Idempotency-Key, stored answer)
-- ===================================================================================

/** Service: service.purchase_record as one request. */
create function service.purchase_record_request(
  p_request jsonb,
  p_user_id uuid,
  p_store text,
  p_transaction_id text,
  p_credits bigint,
  p_payment_ref text default null,
  p_amount_minor bigint default null,
  p_currency text default null,
  p_product_id text default null,
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
  return private.request_finish(p_request, 200, service.purchase_record(
    p_user_id, p_store, p_transaction_id, p_credits, p_payment_ref, p_amount_minor,
    p_currency, p_product_id, p_description));
end;
$$;

/** Service: service.purchase_reverse as one request. */
create function service.purchase_reverse_request(
  p_request jsonb,
  p_store text,
  p_reversal_id text,
  p_kind text,
  p_transaction_id text default null,
  p_payment_ref text default null,
  p_amount_minor bigint default null,
  p_share_per_100000 integer default null,
  p_description text default ''
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
  return private.request_finish(p_request, 200, service.purchase_reverse(
    p_store, p_reversal_id, p_kind, p_transaction_id, p_payment_ref, p_amount_minor,
    p_share_per_100000, p_description));
end;
$$;

/** Service, for the user in the claims: service.anonymous_merge as one request. */
create function service.anonymous_merge_request(p_request jsonb, p_anonymous_id uuid)
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
  return private.request_finish(p_request, 200, service.anonymous_merge(p_anonymous_id));
end;
$$;

/** Service: service.subscription_record as one request. */
create function service.subscription_record_request(
  p_request jsonb,
  p_store text,
  p_subscription_id text,
  p_product_id text,
  p_status text,
  p_event_at timestamptz,
  p_user_id uuid default null,
  p_current_period_end timestamptz default null,
  p_period_id text default null,
  p_payment_ref text default null,
  p_amount_minor bigint default null,
  p_currency text default null,
  p_reversal_id text default null,
  p_share_per_100000 integer default null
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
  return private.request_finish(p_request, 200, service.subscription_record(
    p_store, p_subscription_id, p_product_id, p_status, p_event_at, p_user_id,
    p_current_period_end, p_period_id, p_payment_ref, p_amount_minor, p_currency,
    p_reversal_id, p_share_per_100000));
end;
$$;

-- ===================================================================================
-- Grants: the service only
-- ===================================================================================

revoke all on private.purchases, private.purchase_reversals, private.account_merges,
  private.subscription_plans, private.subscriptions
  from public, anon, authenticated;
grant all on private.purchases, private.purchase_reversals, private.account_merges,
  private.subscription_plans, private.subscriptions
  to service_role;

revoke execute on function
  private.ledger_apply_debt(uuid, public.ledger_kind, bigint, bigint, text, text),
  private.ledger_settle_debt(), private.refuse_job_in_debt(), private.credit_state(uuid),
  service.purchase_record(uuid, text, text, bigint, text, bigint, text, text, text),
  service.purchase_reverse(text, text, text, text, text, bigint, integer, text),
  service.anonymous_merge(uuid),
  service.purchase_record_request(jsonb, uuid, text, text, bigint, text, bigint, text, text,
                                 text),
  service.purchase_reverse_request(jsonb, text, text, text, text, text, bigint, integer, text),
  service.anonymous_merge_request(jsonb, uuid),
  private.subscription_tier_apply(uuid),
  service.subscription_record(text, text, text, text, timestamptz, uuid, timestamptz, text,
                              text, bigint, text, text, integer),
  service.subscriptions_expire(),
  service.subscription_record_request(jsonb, text, text, text, text, timestamptz, uuid,
                                      timestamptz, text, text, bigint, text, text, integer)
  from public, anon, authenticated;
grant execute on function
  private.ledger_apply_debt(uuid, public.ledger_kind, bigint, bigint, text, text),
  private.ledger_settle_debt(), private.refuse_job_in_debt(), private.credit_state(uuid),
  service.purchase_record(uuid, text, text, bigint, text, bigint, text, text, text),
  service.purchase_reverse(text, text, text, text, text, bigint, integer, text),
  service.anonymous_merge(uuid),
  service.purchase_record_request(jsonb, uuid, text, text, bigint, text, bigint, text, text,
                                 text),
  service.purchase_reverse_request(jsonb, text, text, text, text, text, bigint, integer, text),
  service.anonymous_merge_request(jsonb, uuid),
  private.subscription_tier_apply(uuid),
  service.subscription_record(text, text, text, text, timestamptz, uuid, timestamptz, text,
                              text, bigint, text, text, integer),
  service.subscriptions_expire(),
  service.subscription_record_request(jsonb, text, text, text, text, timestamptz, uuid,
                                      timestamptz, text, text, bigint, text, text, integer)
  to service_role;
