/*
 * Module 20: running it as a business — the money audit, what the metrics endpoint reads
 * at scrape time, readiness, and the business views a dashboard reads. Everything here is
 * for the service only (service_role): anon and authenticated can neither call nor read it.
 */

-- ===================================================================================
-- The money audit
-- ===================================================================================

/**
 * Service: every way the books can disagree with themselves, one row per difference;
 * no rows = healthy. Checks:
 *   balance          profiles.balance  = sum(ledger.amount) of the account
 *   reserved         profiles.reserved = sum(ledger.hold) of the account
 *   ledger_chain     each ledger row's balance_after / reserved_after = the running sums
 *                    (the first broken row per account)
 *   job_hold         a job's own holds: its cost while unfinished, 0 once finished
 *   capture          a completed job captured exactly its credits_used
 *   stale_reservation an unfinished job still holding credits whose lease ran out more
 *                    than p_grace_seconds ago (or that is running with no lease at all):
 *                    the sweep should have requeued or failed it
 *   debt             profiles.debt = sum(ledger.debt) of the account
 *   debt_unsettled   an account owes credits while it has a spendable balance (every
 *                    credit settles the debt first, module 16)
 *   purchase_ledger  a purchase's credits = the amount of the ledger row that credited it
 *   purchase_clawback a purchase's clawed_back = the credits of its refunds and disputes
 *   reversal_ledger  a refund's clawback row took exactly its from_balance and to_debt
 *   merge_ledger     a merge moved its credits out of the anonymous user and into the account
 */
create function service.money_audit(p_grace_seconds integer default 300)
returns table (
  check_name text, user_id uuid, job_id uuid, expected bigint, actual bigint, detail text
)
language sql
stable
security definer
set search_path = ''
as $$
  with sums as (
    select p.id, p.balance, p.reserved, p.debt,
           coalesce(sum(l.amount), 0)::bigint as amount, coalesce(sum(l.hold), 0)::bigint as hold,
           coalesce(sum(l.debt), 0)::bigint as debt_sum
      from public.profiles p left join public.credit_ledger l on l.user_id = p.id
     group by p.id
  ),
  chain as (
    select distinct on (c.user_id) c.user_id, c.id, c.balance_after, c.reserved_after,
           c.run_amount, c.run_hold
      from (select l.user_id, l.id, l.balance_after, l.reserved_after,
                   sum(l.amount) over w as run_amount, sum(l.hold) over w as run_hold
              from public.credit_ledger l
            window w as (partition by l.user_id order by l.id)) c
     where c.balance_after <> c.run_amount or c.reserved_after <> c.run_hold
     order by c.user_id, c.id
  ),
  holds as (
    select j.id, j.user_id, j.status, j.cost, j.credits_used, j.lease_expires_at,
           coalesce(sum(l.hold), 0)::bigint as hold,
           coalesce(-sum(l.hold) filter (where l.kind = 'capture'), 0)::bigint as captured
      from public.jobs j left join public.credit_ledger l on l.job_id = j.id
     group by j.id
  )
  select 'balance', s.id, null::uuid, s.amount, s.balance,
         'balance differs from the sum of the ledger''s amounts'
    from sums s where s.balance <> s.amount
  union all
  select 'reserved', s.id, null, s.hold, s.reserved,
         'reserved differs from the sum of the ledger''s holds'
    from sums s where s.reserved <> s.hold
  union all
  select 'ledger_chain', c.user_id, null, c.run_amount, c.balance_after,
         format('ledger row %s: balance_after %s / reserved_after %s, running sums %s / %s',
                c.id, c.balance_after, c.reserved_after, c.run_amount, c.run_hold)
    from chain c
  union all
  select 'job_hold', h.user_id, h.id,
         case when h.status in ('queued', 'dispatched', 'processing') then h.cost else 0 end,
         h.hold, format('job is %s and holds %s of its cost %s', h.status, h.hold, h.cost)
    from holds h
   where h.hold <> case when h.status in ('queued', 'dispatched', 'processing') then h.cost
                        else 0 end
  union all
  select 'capture', h.user_id, h.id, h.credits_used, h.captured,
         'the capture differs from the job''s credits_used'
    from holds h where h.status = 'completed' and h.captured <> h.credits_used
  union all
  select 'stale_reservation', h.user_id, h.id, 0, h.hold,
         case when h.lease_expires_at is null then format('%s with no lease', h.status)
              else format('%s, lease ran out at %s', h.status, h.lease_expires_at) end
    from holds h
   where h.status in ('dispatched', 'processing') and h.hold > 0
     and (h.lease_expires_at is null
          or h.lease_expires_at < now() - make_interval(secs => greatest(p_grace_seconds, 0)))
  union all
  select 'debt', s.id, null, s.debt_sum, s.debt,
         'debt differs from the sum of the ledger''s debt changes'
    from sums s where s.debt <> s.debt_sum
  union all
  select 'debt_unsettled', s.id, null, 0, least(s.debt, s.balance),
         format('owes %s while %s is spendable', s.debt, s.balance)
    from sums s where s.debt > 0 and s.balance > 0
  union all
  select 'purchase_ledger', p.user_id, null, p.credits, coalesce(l.amount, 0),
         format('%s purchase %s: credits differ from its ledger row', p.store, p.transaction_id)
    from private.purchases p left join public.credit_ledger l on l.id = p.ledger_id
   where l.id is null or l.kind <> 'purchase' or l.amount <> p.credits
  union all
  select 'purchase_clawback', p.user_id, null, coalesce(r.credits, 0), p.clawed_back,
         format('%s purchase %s: clawed_back differs from its refunds', p.store,
                p.transaction_id)
    from private.purchases p
    left join (select purchase_id, sum(credits)::bigint as credits
                 from private.purchase_reversals group by purchase_id) r
      on r.purchase_id = p.id
   where p.clawed_back <> coalesce(r.credits, 0)
  union all
  select 'reversal_ledger', r.user_id, null, r.credits, coalesce(l.debt - l.amount, 0),
         format('reversal %s: from_balance %s / to_debt %s, ledger amount %s / debt %s',
                r.reversal_id, r.from_balance, r.to_debt, l.amount, l.debt)
    from private.purchase_reversals r left join public.credit_ledger l on l.id = r.ledger_id
   where r.credits > 0
     and (l.id is null or l.kind <> 'clawback' or l.user_id <> r.user_id
          or -l.amount <> r.from_balance or l.debt <> r.to_debt)
  union all
  select 'merge_ledger', m.account_id, null, m.credits, coalesce(i.amount, 0),
         format('merge of %s: %s credits, out %s, in %s', m.anonymous_id, m.credits,
                o.amount, i.amount)
    from private.account_merges m
    left join public.credit_ledger o on o.id = m.out_ledger_id
    left join public.credit_ledger i on i.id = m.in_ledger_id
   where m.credits > 0
     and (o.id is null or i.id is null or o.kind <> 'merge_out' or i.kind <> 'merge_in'
          or o.user_id <> m.anonymous_id or i.user_id <> m.account_id
          or -o.amount <> m.credits or i.amount <> m.credits)
$$;

/** Service: the audit's rows as one JSON array (what the functions and the CLI read). */
create function service.money_audit_report(p_grace_seconds integer default 300)
returns jsonb
language sql
stable
security definer
set search_path = ''
as $$
  select coalesce(jsonb_agg(to_jsonb(a) order by a.check_name, a.user_id, a.job_id), '[]')
    from service.money_audit(p_grace_seconds) a
$$;

-- ===================================================================================
-- Readiness and metrics (read by health-check-workers at probe and scrape time)
-- ===================================================================================

/**
 * Service: what can serve jobs right now — push/pull workers that are online with a fresh
 * heartbeat, and the external providers with available models in the catalogue (whether
 * their keys are set is the functions' to know). Reads two small tables.
 */
create function service.ops_readiness_check()
returns jsonb
language sql
stable
security definer
set search_path = ''
as $$
  select jsonb_build_object(
    'healthy_workers', (
      select count(*) from public.workers w
       where w.status = 'online'
         and w.last_heartbeat_at > now() - make_interval(
               secs => private.setting_int('worker_heartbeat_timeout_seconds'))),
    'providers', coalesce((
      select jsonb_agg(distinct m.provider order by m.provider) from public.models m
       where m.is_available and m.provider <> 'reference'), '[]'))
$$;

/** Where failed tries are counted from: the events a failure writes (few rows). */
create index job_events_failures_idx on public.job_events ((data ->> 'error_code'))
  where event in ('queued', 'failed') and data ? 'error_code';

/**
 * Service: the fleet's render speed of the last `p_hours` hours (1 to 720; VG400 else),
 * per frame size, frame rate and sections rendered at once: the ffmpeg wall seconds the
 * sectioned renders took (private.render_speeds) per second of video they made, and how
 * many renders that is. A process that has not rendered a kind yet starts its progress
 * estimate from this figure instead of the calibration. Ordered by width, height, fps,
 * sections.
 */
create function service.render_speeds_read(p_hours integer default 24)
returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
begin
  if p_hours is null or p_hours not between 1 and 720 then
    raise exception 'hours must be 1 to 720' using errcode = 'VG400';
  end if;
  return coalesce((
    select jsonb_agg(jsonb_build_object(
             'width', r.width, 'height', r.height, 'fps', r.fps, 'sections', r.sections,
             'factor', round(r.factor, 4), 'renders', r.n)
           order by r.width, r.height, r.fps, r.sections)
      from (select s.width, s.height, s.fps, s.sections, count(*) as n,
                   sum(s.wall_seconds) / sum(s.output_seconds) as factor
              from private.render_speeds s
             where s.recorded_at > now() - make_interval(hours => p_hours)
             group by s.width, s.height, s.fps, s.sections) r), '[]');
end;
$$;

/**
 * Service: the numbers /metrics exposes, read in one call at scrape time.
 * jobs by model and status; the queue (depth, oldest queued job) by model; attempts and
 * failed tries (from job_events: each retry or final failure, by error code); workers by
 * status (and how many are online with a fresh heartbeat); ledger totals; the render
 * real-time factor of the last 24 h: wall time from started to finished over the seconds
 * of video made (output.duration_s), where the output says its length; and
 * `render_realtime_factor_measured` — per model, the ffmpeg wall seconds the renders of
 * the last 24 h reported (private.job_usage) per second of video they made; and
 * `render_speeds` — the same per frame size, frame rate and sections at once
 * (service.render_speeds_read).
 */
create function service.ops_metrics_read()
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
    'healthy_workers', (service.ops_readiness_check() ->> 'healthy_workers')::bigint,
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
               group by j.model_id) r), '[]'),
    'render_speeds', service.render_speeds_read(24))
$$;

-- ===================================================================================
-- Business views (a dashboard reads them with the secret key)
-- ===================================================================================

/**
 * Per UTC day (of finishing) and model: videos finished, completed, failed, canceled; the
 * success rate (completed over completed + failed: a cancel is the user's choice); the
 * average generation time (started → finished) and turnaround (created → finished) of
 * completed jobs; credits captured and the average cost of a completed video. Only job
 * types that make a video (not narration or script jobs).
 */
create view service.ops_videos_daily_by_model with (security_invoker = true) as
  select (j.finished_at at time zone 'utc')::date as day,
         j.model_id,
         j.job_type,
         count(*) as finished,
         count(*) filter (where j.status = 'completed') as completed,
         count(*) filter (where j.status = 'failed') as failed,
         count(*) filter (where j.status = 'canceled') as canceled,
         round(count(*) filter (where j.status = 'completed')::numeric
               / nullif(count(*) filter (where j.status in ('completed', 'failed')), 0), 4)
           as success_rate,
         round(avg(extract(epoch from j.finished_at - j.started_at))
                 filter (where j.status = 'completed'), 3) as avg_generation_seconds,
         round(avg(extract(epoch from j.finished_at - j.created_at))
                 filter (where j.status = 'completed'), 3) as avg_turnaround_seconds,
         coalesce(sum(j.credits_used) filter (where j.status = 'completed'), 0)
           as credits_captured,
         round(avg(j.credits_used) filter (where j.status = 'completed'), 2)
           as credits_per_video
    from public.jobs j
   where j.finished_at is not null
     and j.job_type in ('text_to_video', 'image_to_video', 'compose')
   group by 1, 2, 3;

/** The same per UTC day, all models together. */
create view service.ops_videos_daily with (security_invoker = true) as
  select (j.finished_at at time zone 'utc')::date as day,
         count(*) as finished,
         count(*) filter (where j.status = 'completed') as completed,
         count(*) filter (where j.status = 'failed') as failed,
         count(*) filter (where j.status = 'canceled') as canceled,
         round(count(*) filter (where j.status = 'completed')::numeric
               / nullif(count(*) filter (where j.status in ('completed', 'failed')), 0), 4)
           as success_rate,
         round(avg(extract(epoch from j.finished_at - j.started_at))
                 filter (where j.status = 'completed'), 3) as avg_generation_seconds,
         round(avg(extract(epoch from j.finished_at - j.created_at))
                 filter (where j.status = 'completed'), 3) as avg_turnaround_seconds,
         coalesce(sum(j.credits_used) filter (where j.status = 'completed'), 0)
           as credits_captured,
         round(avg(j.credits_used) filter (where j.status = 'completed'), 2)
           as credits_per_video
    from public.jobs j
   where j.finished_at is not null
     and j.job_type in ('text_to_video', 'image_to_video', 'compose')
   group by 1;

-- ===================================================================================
-- Grants: the service only
-- ===================================================================================

revoke all on service.ops_videos_daily_by_model, service.ops_videos_daily
  from public, anon, authenticated;
grant select on service.ops_videos_daily_by_model, service.ops_videos_daily to service_role;

revoke execute on function service.money_audit(integer), service.money_audit_report(integer),
  service.ops_readiness_check(), service.ops_metrics_read(), service.render_speeds_read(integer)
  from public, anon, authenticated;
grant execute on function service.money_audit(integer), service.money_audit_report(integer),
  service.ops_readiness_check(), service.ops_metrics_read(), service.render_speeds_read(integer)
  to service_role;
