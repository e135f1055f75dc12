-- Usage and cost per video (sql/schema/17_usage.sql): private.job_usage written by
-- job_report with a completed or failed attempt, unit prices in private.settings,
-- ops_job_costs and the daily cost views, the measured render real-time factor in
-- ops_metrics.

-- ===================================================================================
-- Usage per job
-- ===================================================================================

/**
 * One row per job: the sums over the reports of its attempts (a retried attempt consumed
 * too). provider_cost_usd is null while no report gave the provider's own cost; then the
 * provider's seconds are priced with provider_cost_per_second_usd.
 */
create table private.job_usage (
  job_id uuid primary key references public.jobs (id) on delete cascade,
  llm_model text check (char_length(llm_model) between 1 and 100),
  prompt_tokens bigint not null default 0 check (prompt_tokens >= 0),
  completion_tokens bigint not null default 0 check (completion_tokens >= 0),
  tts_engine text check (char_length(tts_engine) between 1 and 100),
  tts_characters bigint not null default 0 check (tts_characters >= 0),
  provider_calls integer not null default 0 check (provider_calls >= 0),
  provider_seconds numeric not null default 0 check (provider_seconds >= 0),
  provider_cost_usd numeric check (provider_cost_usd >= 0),
  render_seconds numeric not null default 0 check (render_seconds >= 0),
  render_output_seconds numeric not null default 0 check (render_output_seconds >= 0),
  reports integer not null default 1 check (reports >= 1),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

alter table private.job_usage enable row level security;

/** Unit prices (USD) and the value of a credit; ops_set_unit_prices changes them. */
insert into private.settings (name, value) values
  ('cost_per_1k_tokens_usd', '0.0006'),
  ('cost_per_1m_tts_chars_usd', '16'),
  ('cost_per_render_hour_usd', '0.1'),
  ('provider_cost_per_second_usd', '{}'),
  ('credit_value_usd', '0.01');

/**
 * A usage object as reports carry it (schemas.JobUsage is the same shape): every key
 * optional, nothing else. Counts are integers, seconds and dollars non-negative numbers,
 * names short strings. Raises VGU22.
 */
create function private.check_job_usage(p_usage jsonb)
returns void
language plpgsql immutable
set search_path = ''
as $$
declare
  v_key text;
  v_value jsonb;
begin
  if jsonb_typeof(p_usage) is distinct from 'object' then
    raise exception 'usage must be an object' using errcode = 'VGU22';
  end if;
  for v_key, v_value in select * from jsonb_each(p_usage) loop
    if v_key in ('llm_model', 'tts_engine') then
      if jsonb_typeof(v_value) <> 'string'
         or char_length(v_value #>> '{}') not between 1 and 100 then
        raise exception 'usage.% must be a name of 1 to 100 characters', v_key
          using errcode = 'VGU22';
      end if;
    elsif v_key in ('prompt_tokens', 'completion_tokens', 'tts_characters', 'provider_calls')
    then
      if jsonb_typeof(v_value) <> 'number' or (v_value #>> '{}')::numeric < 0
         or (v_value #>> '{}')::numeric <> trunc((v_value #>> '{}')::numeric)
         or (v_value #>> '{}')::numeric > 1000000000 then
        raise exception 'usage.% must be a whole number from 0 to 1e9', v_key
          using errcode = 'VGU22';
      end if;
    elsif v_key in ('provider_seconds', 'provider_cost_usd', 'render_seconds',
                    'render_output_seconds') then
      if jsonb_typeof(v_value) <> 'number' or (v_value #>> '{}')::numeric < 0
         or (v_value #>> '{}')::numeric > 100000000 then
        raise exception 'usage.% must be a number from 0 to 1e8', v_key
          using errcode = 'VGU22';
      end if;
    else
      raise exception 'usage.% is not a usage field', v_key using errcode = 'VGU22';
    end if;
  end loop;
end;
$$;

/** Add one report's usage to its job's row (checked first; VGU22). */
create function private.job_usage_record(p_job_id uuid, p_usage jsonb)
returns void
language plpgsql
set search_path = ''
as $$
begin
  perform private.check_job_usage(p_usage);
  insert into private.job_usage as u (
    job_id, llm_model, prompt_tokens, completion_tokens, tts_engine, tts_characters,
    provider_calls, provider_seconds, provider_cost_usd, render_seconds, render_output_seconds
  ) values (
    p_job_id, p_usage ->> 'llm_model',
    coalesce((p_usage ->> 'prompt_tokens')::bigint, 0),
    coalesce((p_usage ->> 'completion_tokens')::bigint, 0),
    p_usage ->> 'tts_engine',
    coalesce((p_usage ->> 'tts_characters')::bigint, 0),
    coalesce((p_usage ->> 'provider_calls')::integer, 0),
    coalesce((p_usage ->> 'provider_seconds')::numeric, 0),
    (p_usage ->> 'provider_cost_usd')::numeric,
    coalesce((p_usage ->> 'render_seconds')::numeric, 0),
    coalesce((p_usage ->> 'render_output_seconds')::numeric, 0)
  )
  on conflict (job_id) do update
     set llm_model = coalesce(excluded.llm_model, u.llm_model),
         prompt_tokens = u.prompt_tokens + excluded.prompt_tokens,
         completion_tokens = u.completion_tokens + excluded.completion_tokens,
         tts_engine = coalesce(excluded.tts_engine, u.tts_engine),
         tts_characters = u.tts_characters + excluded.tts_characters,
         provider_calls = u.provider_calls + excluded.provider_calls,
         provider_seconds = u.provider_seconds + excluded.provider_seconds,
         provider_cost_usd = case
           when u.provider_cost_usd is null and excluded.provider_cost_usd is null then null
           else coalesce(u.provider_cost_usd, 0) + coalesce(excluded.provider_cost_usd, 0) end,
         render_seconds = u.render_seconds + excluded.render_seconds,
         render_output_seconds = u.render_output_seconds + excluded.render_output_seconds,
         reports = u.reports + 1,
         updated_at = now();
end;
$$;

/**
 * Service: one report about a job's current attempt — a worker's signed callback, a
 * provider's news, or an inline step's own result — as one transaction: the delivery's
 * receipt (when it has an id; a repeat answers {"applied": false, "reason":
 * "duplicate_delivery"}), the change, and for a completed or failed attempt the usage it
 * reports (private.job_usage, only when the change applied). `p_report` is {type:
 * started|progress|completed|failed, job_id, attempt, progress?, message?, output?,
 * credits_used?, usage?, error?: {code, message, retryable}}. A malformed usage is VGU22
 * and nothing is applied.
 */
create or replace function public.job_report(p_webhook_id text, p_source text, p_report jsonb)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_job_id uuid := (p_report ->> 'job_id')::uuid;
  v_attempt integer := (p_report ->> 'attempt')::integer;
  v_error jsonb := coalesce(p_report -> 'error', '{}');
  v_usage jsonb := p_report -> 'usage';
  v_change jsonb;
begin
  if v_usage = 'null'::jsonb then
    v_usage := null;
  end if;
  if v_usage is not null then
    perform private.check_job_usage(v_usage);
  end if;
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
      v_change := public.job_complete(v_job_id, v_attempt,
                                      coalesce(p_report -> 'output', '{}'),
                                      (p_report ->> 'credits_used')::bigint);
    when 'failed' then
      v_change := public.job_fail(v_job_id, v_attempt,
                                  coalesce(v_error ->> 'code', 'WORKER_ERROR'),
                                  coalesce(v_error ->> 'message', ''),
                                  coalesce((v_error ->> 'retryable')::boolean, true));
    else
      raise exception 'unknown report type %', p_report ->> 'type' using errcode = 'VG400';
  end case;
  if v_usage is not null and (v_change ->> 'applied')::boolean then
    perform private.job_usage_record(v_job_id, v_usage);
  end if;
  return v_change;
end;
$$;

-- ===================================================================================
-- Unit prices
-- ===================================================================================

/** Service: the unit prices (USD) and the value of a credit, as the cost views use them. */
create function public.ops_unit_prices()
returns jsonb
language sql
stable
security definer
set search_path = ''
as $$
  select coalesce(jsonb_object_agg(s.name, s.value order by s.name), '{}')
    from private.settings s
   where s.name in ('cost_per_1k_tokens_usd', 'cost_per_1m_tts_chars_usd',
                    'cost_per_render_hour_usd', 'provider_cost_per_second_usd',
                    'credit_value_usd')
$$;

/**
 * Service: set unit prices (the health sweep passes the environment's: COST_PER_1K_…).
 * Each key optional: non-negative numbers, and provider_cost_per_second_usd an object of
 * provider → non-negative number (it replaces the whole map). Rows change only when their
 * value does. Answers the prices now in force. Raises VG400 for anything else.
 */
create function public.ops_set_unit_prices(p_prices jsonb)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_key text;
  v_value jsonb;
begin
  if jsonb_typeof(p_prices) is distinct from 'object' then
    raise exception 'prices must be an object' using errcode = 'VG400';
  end if;
  for v_key, v_value in select * from jsonb_each(p_prices) loop
    if v_key in ('cost_per_1k_tokens_usd', 'cost_per_1m_tts_chars_usd',
                 'cost_per_render_hour_usd', 'credit_value_usd') then
      if jsonb_typeof(v_value) <> 'number' or (v_value #>> '{}')::numeric < 0 then
        raise exception 'price % must be a number ≥ 0', v_key using errcode = 'VG400';
      end if;
    elsif v_key = 'provider_cost_per_second_usd' then
      if jsonb_typeof(v_value) <> 'object' or exists (
           select 1 from jsonb_each(v_value) e
            where jsonb_typeof(e.value) <> 'number' or (e.value #>> '{}')::numeric < 0) then
        raise exception 'provider_cost_per_second_usd must map providers to numbers ≥ 0'
          using errcode = 'VG400';
      end if;
    else
      raise exception 'unknown price %', v_key using errcode = 'VG400';
    end if;
    update private.settings set value = v_value
     where name = v_key and value is distinct from v_value;
  end loop;
  return public.ops_unit_prices();
end;
$$;

-- ===================================================================================
-- Cost per job and per day
-- ===================================================================================

/**
 * Per finished job: what it consumed (zeros when nothing was recorded: has_usage false),
 * the credits captured (credits_used of a completed job, else 0) and their value in USD,
 * the estimated cost in USD by component at the current unit prices — LLM tokens (prompt
 * + completion) per 1k, TTS characters per million, the provider's reported cost or else
 * its seconds × that provider's per-second price, render wall time per hour — each
 * rounded to 6 decimals, their sum, and the margin (credits' value − cost). The render
 * real-time factor is render wall seconds per output second.
 */
create view public.ops_job_costs with (security_invoker = true) as
  with prices as (
    select coalesce(max((s.value #>> '{}')::numeric)
                      filter (where s.name = 'cost_per_1k_tokens_usd'), 0) as per_1k_tokens,
           coalesce(max((s.value #>> '{}')::numeric)
                      filter (where s.name = 'cost_per_1m_tts_chars_usd'), 0) as per_1m_chars,
           coalesce(max((s.value #>> '{}')::numeric)
                      filter (where s.name = 'cost_per_render_hour_usd'), 0) as per_render_hour,
           coalesce(max((s.value #>> '{}')::numeric)
                      filter (where s.name = 'credit_value_usd'), 0) as credit_value,
           coalesce(jsonb_object_agg(s.name, s.value)
                      filter (where s.name = 'provider_cost_per_second_usd')
                      -> 'provider_cost_per_second_usd', '{}') as provider_rates
      from private.settings s
  ),
  costs as (
    select j.id as job_id, j.user_id, j.model_id, j.job_type, j.status,
           coalesce(j.provider, m.provider) as provider, j.finished_at,
           u.job_id is not null as has_usage,
           u.llm_model,
           coalesce(u.prompt_tokens, 0) as prompt_tokens,
           coalesce(u.completion_tokens, 0) as completion_tokens,
           u.tts_engine,
           coalesce(u.tts_characters, 0) as tts_characters,
           coalesce(u.provider_calls, 0) as provider_calls,
           coalesce(u.provider_seconds, 0) as provider_seconds,
           u.provider_cost_usd as provider_reported_cost_usd,
           coalesce(u.render_seconds, 0) as render_seconds,
           coalesce(u.render_output_seconds, 0) as render_output_seconds,
           case when j.status = 'completed' then j.credits_used else 0 end as credits_captured,
           p.credit_value,
           round((coalesce(u.prompt_tokens, 0) + coalesce(u.completion_tokens, 0))
                 * p.per_1k_tokens / 1000, 6) as llm_cost_usd,
           round(coalesce(u.tts_characters, 0) * p.per_1m_chars / 1000000, 6) as tts_cost_usd,
           round(coalesce(u.provider_cost_usd,
                          coalesce(u.provider_seconds, 0)
                            * coalesce((p.provider_rates ->> coalesce(j.provider, m.provider))
                                         ::numeric, 0)), 6) as provider_cost_usd,
           round(coalesce(u.render_seconds, 0) * p.per_render_hour / 3600, 6)
             as render_cost_usd
      from public.jobs j
      join public.models m on m.id = j.model_id
      cross join prices p
      left join private.job_usage u on u.job_id = j.id
     where j.finished_at is not null
  )
  select c.job_id, c.user_id, c.model_id, c.job_type, c.status, c.provider, c.finished_at,
         c.has_usage, c.llm_model, c.prompt_tokens, c.completion_tokens, c.tts_engine,
         c.tts_characters, c.provider_calls, c.provider_seconds,
         c.provider_reported_cost_usd, c.render_seconds, c.render_output_seconds,
         round(c.render_seconds / nullif(c.render_output_seconds, 0), 4)
           as render_realtime_factor,
         c.credits_captured,
         c.credits_captured * c.credit_value as credits_usd,
         c.llm_cost_usd, c.tts_cost_usd, c.provider_cost_usd, c.render_cost_usd,
         c.llm_cost_usd + c.tts_cost_usd + c.provider_cost_usd + c.render_cost_usd
           as cost_usd,
         c.credits_captured * c.credit_value
           - (c.llm_cost_usd + c.tts_cost_usd + c.provider_cost_usd + c.render_cost_usd)
           as margin_usd
    from costs c;

/**
 * Per UTC day (of finishing), model and job type: finished and completed jobs, credits
 * captured and their value, cost by component and in all, the margin and its share of the
 * credits' value, the average cost of a completed job, and what was consumed. Every job
 * type (the wizard's steps cost too).
 */
create view public.ops_costs_daily_by_model with (security_invoker = true) as
  select (c.finished_at at time zone 'utc')::date as day,
         c.model_id,
         c.job_type,
         count(*) as finished,
         count(*) filter (where c.status = 'completed') as completed,
         count(*) filter (where c.has_usage) as with_usage,
         sum(c.credits_captured) as credits_captured,
         sum(c.credits_usd) as credits_usd,
         sum(c.llm_cost_usd) as llm_cost_usd,
         sum(c.tts_cost_usd) as tts_cost_usd,
         sum(c.provider_cost_usd) as provider_cost_usd,
         sum(c.render_cost_usd) as render_cost_usd,
         sum(c.cost_usd) as cost_usd,
         sum(c.margin_usd) as margin_usd,
         round(sum(c.margin_usd) / nullif(sum(c.credits_usd), 0), 4) as margin_rate,
         round(sum(c.cost_usd) / nullif(count(*) filter (where c.status = 'completed'), 0), 6)
           as cost_per_completed_usd,
         sum(c.prompt_tokens) as prompt_tokens,
         sum(c.completion_tokens) as completion_tokens,
         sum(c.tts_characters) as tts_characters,
         sum(c.provider_calls) as provider_calls,
         sum(c.provider_seconds) as provider_seconds,
         sum(c.render_seconds) as render_seconds,
         sum(c.render_output_seconds) as render_output_seconds
    from public.ops_job_costs c
   group by 1, 2, 3;

/** The same per UTC day, all models together. */
create view public.ops_costs_daily with (security_invoker = true) as
  select (c.finished_at at time zone 'utc')::date as day,
         count(*) as finished,
         count(*) filter (where c.status = 'completed') as completed,
         count(*) filter (where c.has_usage) as with_usage,
         sum(c.credits_captured) as credits_captured,
         sum(c.credits_usd) as credits_usd,
         sum(c.llm_cost_usd) as llm_cost_usd,
         sum(c.tts_cost_usd) as tts_cost_usd,
         sum(c.provider_cost_usd) as provider_cost_usd,
         sum(c.render_cost_usd) as render_cost_usd,
         sum(c.cost_usd) as cost_usd,
         sum(c.margin_usd) as margin_usd,
         round(sum(c.margin_usd) / nullif(sum(c.credits_usd), 0), 4) as margin_rate,
         round(sum(c.cost_usd) / nullif(count(*) filter (where c.status = 'completed'), 0), 6)
           as cost_per_completed_usd,
         sum(c.prompt_tokens) as prompt_tokens,
         sum(c.completion_tokens) as completion_tokens,
         sum(c.tts_characters) as tts_characters,
         sum(c.provider_calls) as provider_calls,
         sum(c.provider_seconds) as provider_seconds,
         sum(c.render_seconds) as render_seconds,
         sum(c.render_output_seconds) as render_output_seconds
    from public.ops_job_costs c
   group by 1;

-- ===================================================================================
-- Metrics: the render real-time factor as measured
-- ===================================================================================

/**
 * Service: module 11's numbers, plus `render_realtime_factor_measured` — per model, the
 * ffmpeg wall seconds the renders of the last 24 h reported (private.job_usage) per
 * second of video they made — next to the started→finished estimate.
 */
create or replace function public.ops_metrics()
returns jsonb
language sql
stable
security definer
set search_path = ''
as $$
  select jsonb_build_object(
    'jobs', coalesce((
      select jsonb_agg(jsonb_build_object('model', j.model_id, 'status', j.status,
                                          'count', j.n) order by j.model_id, j.status)
        from (select model_id, status, count(*) as n from public.jobs
               group by model_id, status) j), '[]'),
    'queue', coalesce((
      select jsonb_agg(jsonb_build_object(
               'model', q.model_id, 'depth', q.n,
               'oldest_age_seconds', extract(epoch from now() - q.oldest)) order by q.model_id)
        from (select model_id, count(*) as n, min(created_at) as oldest from public.jobs
               where status = 'queued' group by model_id) q), '[]'),
    'attempts', coalesce((select sum(attempt) from public.jobs), 0),
    'failures', coalesce((
      select jsonb_agg(jsonb_build_object('error_code', f.code, 'count', f.n) order by f.code)
        from (select e.data ->> 'error_code' as code, count(*) as n from public.job_events e
               where e.event in ('queued', 'failed') and e.data ? 'error_code'
               group by 1) f), '[]'),
    'workers', coalesce((
      select jsonb_agg(jsonb_build_object('status', w.status, 'count', w.n) order by w.status)
        from (select status, count(*) as n from public.workers group by status) w), '[]'),
    'healthy_workers', (public.ops_readiness() ->> 'healthy_workers')::bigint,
    'credits', (
      select jsonb_build_object(
               'reserved', coalesce(-sum(l.amount) filter (where l.kind = 'reserve'), 0),
               'captured', coalesce(-sum(l.hold) filter (where l.kind = 'capture'), 0),
               'released', coalesce(sum(l.amount) filter (where l.kind = 'release'), 0),
               'granted', coalesce(sum(l.amount) filter (
                            where l.kind in ('initial_grant', 'grant', 'purchase', 'adjust')), 0))
        from public.credit_ledger l),
    'credits_outstanding', (
      select jsonb_build_object('balance', coalesce(sum(p.balance), 0),
                                'reserved', coalesce(sum(p.reserved), 0))
        from public.profiles p),
    'render_realtime_factor', coalesce((
      select jsonb_agg(jsonb_build_object('model', r.model_id, 'factor', r.factor, 'jobs', r.n)
                       order by r.model_id)
        from (select j.model_id, count(*) as n,
                     sum(extract(epoch from j.finished_at - j.started_at))
                       / nullif(sum((j.output ->> 'duration_s')::numeric), 0) as factor
                from public.jobs j
               where j.status = 'completed' and j.finished_at > now() - interval '24 hours'
                 and j.started_at is not null
                 and jsonb_typeof(j.output -> 'duration_s') = 'number'
               group by j.model_id) r
       where r.factor is not null), '[]'),
    'render_realtime_factor_measured', coalesce((
      select jsonb_agg(jsonb_build_object('model', r.model_id, 'factor', r.factor, 'jobs', r.n)
                       order by r.model_id)
        from (select j.model_id, count(*) as n,
                     sum(u.render_seconds) / sum(u.render_output_seconds) as factor
                from public.jobs j join private.job_usage u on u.job_id = j.id
               where j.status = 'completed' and j.finished_at > now() - interval '24 hours'
                 and u.render_output_seconds > 0
               group by j.model_id) r), '[]'))
$$;

-- ===================================================================================
-- Grants: the service only (module 6's blanket grants cover modules 1–5 only)
-- ===================================================================================

revoke all on private.job_usage from anon, authenticated;
grant all on private.job_usage to service_role;

revoke all on public.ops_job_costs, public.ops_costs_daily_by_model, public.ops_costs_daily
  from public, anon, authenticated;
grant select on public.ops_job_costs, public.ops_costs_daily_by_model, public.ops_costs_daily
  to service_role;

revoke execute on function private.check_job_usage(jsonb),
  private.job_usage_record(uuid, jsonb), public.ops_unit_prices(),
  public.ops_set_unit_prices(jsonb)
  from public, anon, authenticated;
grant execute on function private.check_job_usage(jsonb),
  private.job_usage_record(uuid, jsonb), public.ops_unit_prices(),
  public.ops_set_unit_prices(jsonb)
  to service_role;
