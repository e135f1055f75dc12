/*
 * Module 19: what each job consumed, what that cost, and the margin against the credits
 * it captured. A job's usage (LLM tokens, TTS characters, provider calls and seconds, the
 * provider's reported cost, render wall time and output seconds) arrives with its
 * completion — a worker's signed callback, a provider's webhook or poll, or the inline
 * steps and renders that measure themselves — and is written by service.job_report in
 * the same transaction as the capture. Unit prices are private.settings rows (the health
 * sweep writes them from the environment, service.ops_unit_prices_set); ops_job_costs
 * prices every finished job with them, and the daily views add it up. Service only, like
 * module 20: the views are in schema `service`.
 */

-- The usage itself (private.job_usage, written by service.job_report) is in module 6.

/** Unit prices (USD) and the value of a credit; service.ops_unit_prices_set changes them. */
insert into private.settings (name, value) values
  ('cost_per_1k_tokens_usd', '0.0006'),
  ('cost_per_1m_tts_chars_usd', '16'),
  ('cost_per_render_hour_usd', '0.1'),
  ('provider_cost_per_second_usd', '{}'),
  ('credit_value_usd', '0.01');

-- ===================================================================================
-- Unit prices
-- ===================================================================================

/** Service: the unit prices (USD) and the value of a credit, as the cost views use them. */
create function service.ops_unit_prices_read()
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
create function service.ops_unit_prices_set(p_prices jsonb)
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
  return service.ops_unit_prices_read();
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
create view service.ops_job_costs with (security_invoker = true) as
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
create view service.ops_costs_daily_by_model with (security_invoker = true) as
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
    from service.ops_job_costs c
   group by 1, 2, 3;

/** The same per UTC day, all models together. */
create view service.ops_costs_daily with (security_invoker = true) as
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
    from service.ops_job_costs c
   group by 1;

-- ===================================================================================
-- Grants: the service only (module 9's blanket grants cover modules 1–8 only)
-- ===================================================================================

revoke all on service.ops_job_costs, service.ops_costs_daily_by_model, service.ops_costs_daily
  from public, anon, authenticated;
grant select on service.ops_job_costs, service.ops_costs_daily_by_model, service.ops_costs_daily
  to service_role;

revoke execute on function service.ops_unit_prices_read(), service.ops_unit_prices_set(jsonb)
  from public, anon, authenticated;
grant execute on function service.ops_unit_prices_read(), service.ops_unit_prices_set(jsonb)
  to service_role;
