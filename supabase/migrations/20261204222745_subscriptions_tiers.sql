-- Migration subscriptions_tiers: drafted by `make migration` from sql/schema; review before committing.
-- Write by hand only what a diff cannot express: data moves, backfills, renames (drafted
-- as drop + create), default privileges.
-- Unsafe statements (drops): none.

set check_function_bodies = off;

CREATE OR REPLACE FUNCTION private.subscription_tier_apply(p_user_id uuid)
 RETURNS text
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
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
$function$
;

CREATE OR REPLACE FUNCTION service.subscription_record(p_store text, p_subscription_id text, p_product_id text, p_status text, p_event_at timestamp with time zone, p_user_id uuid DEFAULT NULL::uuid, p_current_period_end timestamp with time zone DEFAULT NULL::timestamp with time zone, p_period_id text DEFAULT NULL::text, p_payment_ref text DEFAULT NULL::text, p_amount_minor bigint DEFAULT NULL::bigint, p_currency text DEFAULT NULL::text, p_reversal_id text DEFAULT NULL::text, p_share_per_100000 integer DEFAULT NULL::integer)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
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
$function$
;

CREATE OR REPLACE FUNCTION service.subscription_record_request(p_request jsonb, p_store text, p_subscription_id text, p_product_id text, p_status text, p_event_at timestamp with time zone, p_user_id uuid DEFAULT NULL::uuid, p_current_period_end timestamp with time zone DEFAULT NULL::timestamp with time zone, p_period_id text DEFAULT NULL::text, p_payment_ref text DEFAULT NULL::text, p_amount_minor bigint DEFAULT NULL::bigint, p_currency text DEFAULT NULL::text, p_reversal_id text DEFAULT NULL::text, p_share_per_100000 integer DEFAULT NULL::integer)
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
  return private.request_finish(p_request, 200, service.subscription_record(
    p_store, p_subscription_id, p_product_id, p_status, p_event_at, p_user_id,
    p_current_period_end, p_period_id, p_payment_ref, p_amount_minor, p_currency,
    p_reversal_id, p_share_per_100000));
end;
$function$
;

CREATE OR REPLACE FUNCTION service.subscriptions_expire()
 RETURNS integer
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
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
                  or (j.finished_at is not null
                      and j.finished_at < now() - make_interval(days => (
                        select least(nullif(p_retention_days, 0), l.output_retention_days)
                          from private.tier_limits_of(j.user_id) l))))
           order by j.finished_at
           limit greatest(p_limit, 1)) j
$function$
;

create table "private"."subscription_plans" (
    "product_id" text not null,
    "tier" text not null,
    "period_credits" bigint not null
);

alter table "private"."subscription_plans" enable row level security;

create table "private"."subscriptions" (
    "id" bigint generated always as identity not null,
    "user_id" uuid,
    "store" text not null,
    "subscription_id" text not null,
    "product_id" text not null,
    "status" text not null,
    "current_period_end" timestamp with time zone,
    "event_at" timestamp with time zone not null,
    "created_at" timestamp with time zone not null default now(),
    "updated_at" timestamp with time zone not null default now()
);

alter table "private"."subscriptions" enable row level security;

alter table "private"."tier_limits" add column "concurrent_jobs" integer not null default 5;

alter table "private"."tier_limits" add column "output_retention_days" integer;

CREATE UNIQUE INDEX subscription_plans_pkey ON private.subscription_plans USING btree (product_id);

CREATE UNIQUE INDEX subscriptions_pkey ON private.subscriptions USING btree (id);

CREATE UNIQUE INDEX subscriptions_store_subscription_id_key ON private.subscriptions USING btree (store, subscription_id);

CREATE INDEX subscriptions_user_idx ON private.subscriptions USING btree (user_id);

grant delete on table "private"."subscription_plans" to "service_role";

grant insert on table "private"."subscription_plans" to "service_role";

grant references on table "private"."subscription_plans" to "service_role";

grant select on table "private"."subscription_plans" to "service_role";

grant trigger on table "private"."subscription_plans" to "service_role";

grant truncate on table "private"."subscription_plans" to "service_role";

grant update on table "private"."subscription_plans" to "service_role";

grant delete on table "private"."subscriptions" to "service_role";

grant insert on table "private"."subscriptions" to "service_role";

grant references on table "private"."subscriptions" to "service_role";

grant select on table "private"."subscriptions" to "service_role";

grant trigger on table "private"."subscriptions" to "service_role";

grant truncate on table "private"."subscriptions" to "service_role";

grant update on table "private"."subscriptions" to "service_role";

alter table "private"."subscription_plans" add constraint "subscription_plans_pkey" PRIMARY KEY using index "subscription_plans_pkey";

alter table "private"."subscriptions" add constraint "subscriptions_pkey" PRIMARY KEY using index "subscriptions_pkey";

alter table "private"."subscription_plans" add constraint "subscription_plans_period_credits_check" CHECK ((period_credits >= 0)) not valid;

alter table "private"."subscription_plans" validate constraint "subscription_plans_period_credits_check";

alter table "private"."subscription_plans" add constraint "subscription_plans_product_id_check" CHECK (((char_length(product_id) >= 1) AND (char_length(product_id) <= 200))) not valid;

alter table "private"."subscription_plans" validate constraint "subscription_plans_product_id_check";

alter table "private"."subscriptions" add constraint "subscriptions_product_id_check" CHECK (((char_length(product_id) >= 1) AND (char_length(product_id) <= 200))) not valid;

alter table "private"."subscriptions" validate constraint "subscriptions_product_id_check";

alter table "private"."subscriptions" add constraint "subscriptions_status_check" CHECK ((status = ANY (ARRAY['active'::text, 'past_due'::text, 'canceled'::text, 'expired'::text, 'refunded'::text]))) not valid;

alter table "private"."subscriptions" validate constraint "subscriptions_status_check";

alter table "private"."subscriptions" add constraint "subscriptions_store_check" CHECK ((store = ANY (ARRAY['stripe'::text, 'app_store'::text]))) not valid;

alter table "private"."subscriptions" validate constraint "subscriptions_store_check";

alter table "private"."subscriptions" add constraint "subscriptions_store_subscription_id_key" UNIQUE using index "subscriptions_store_subscription_id_key";

alter table "private"."subscriptions" add constraint "subscriptions_subscription_id_check" CHECK (((char_length(subscription_id) >= 1) AND (char_length(subscription_id) <= 200))) not valid;

alter table "private"."subscriptions" validate constraint "subscriptions_subscription_id_check";

alter table "private"."tier_limits" add constraint "tier_limits_concurrent_jobs_check" CHECK (((concurrent_jobs >= 0) AND (concurrent_jobs <= 100))) not valid;

alter table "private"."tier_limits" validate constraint "tier_limits_concurrent_jobs_check";

alter table "private"."tier_limits" add constraint "tier_limits_output_retention_days_check" CHECK ((output_retention_days > 0)) not valid;

alter table "private"."tier_limits" validate constraint "tier_limits_output_retention_days_check";

alter table "private"."subscription_plans" add constraint "subscription_plans_tier_fkey" FOREIGN KEY ("tier") REFERENCES "private"."tier_limits"("tier") NOT VALID;

alter table "private"."subscription_plans" validate constraint "subscription_plans_tier_fkey";

alter table "private"."subscriptions" add constraint "subscriptions_user_id_fkey" FOREIGN KEY ("user_id") REFERENCES "auth"."users"("id") ON DELETE SET NULL NOT VALID;

alter table "private"."subscriptions" validate constraint "subscriptions_user_id_fkey";

revoke execute on function private.subscription_tier_apply(p_user_id uuid) from public;

revoke execute on function service.subscription_record(p_store text, p_subscription_id text, p_product_id text, p_status text, p_event_at timestamp with time zone, p_user_id uuid, p_current_period_end timestamp with time zone, p_period_id text, p_payment_ref text, p_amount_minor bigint, p_currency text, p_reversal_id text, p_share_per_100000 integer) from public;

revoke execute on function service.subscription_record_request(p_request jsonb, p_store text, p_subscription_id text, p_product_id text, p_status text, p_event_at timestamp with time zone, p_user_id uuid, p_current_period_end timestamp with time zone, p_period_id text, p_payment_ref text, p_amount_minor bigint, p_currency text, p_reversal_id text, p_share_per_100000 integer) from public;

revoke execute on function service.subscriptions_expire() from public;

grant execute on function private.subscription_tier_apply(p_user_id uuid) to service_role;

grant execute on function service.subscription_record(p_store text, p_subscription_id text, p_product_id text, p_status text, p_event_at timestamp with time zone, p_user_id uuid, p_current_period_end timestamp with time zone, p_period_id text, p_payment_ref text, p_amount_minor bigint, p_currency text, p_reversal_id text, p_share_per_100000 integer) to service_role;

grant execute on function service.subscription_record_request(p_request jsonb, p_store text, p_subscription_id text, p_product_id text, p_status text, p_event_at timestamp with time zone, p_user_id uuid, p_current_period_end timestamp with time zone, p_period_id text, p_payment_ref text, p_amount_minor bigint, p_currency text, p_reversal_id text, p_share_per_100000 integer) to service_role;

grant execute on function service.subscriptions_expire() to service_role;


-- ===================================================================================
-- Data (hand-written): the tiers' new limits, the plans, and the hourly expiry
-- ===================================================================================

update private.tier_limits set concurrent_jobs = 5, output_retention_days = 30
 where tier = 'free';
update private.tier_limits set concurrent_jobs = 20, output_retention_days = null
 where tier = 'premium';

insert into private.subscription_plans (product_id, tier, period_credits) values
  ('price_premium_monthly', 'premium', 1000),
  ('com.videogen.premium.monthly', 'premium', 1000)
on conflict (product_id) do nothing;

do $cron$
begin
  if to_regnamespace('cron') is null then
    return;
  end if;
  perform cron.schedule('videogen-subscriptions-expire', '7 * * * *',
                        'select service.subscriptions_expire()');
end;
$cron$;
