-- A canceled job's stored answer is what the client was answered ({job, worker_notified}),
-- not the routing facts: a replay used to hand the user the worker's internal URL.

/**
 * Service, for the user in the claims: cancel_job as one request. The answer (stored for
 * the key) is the client's {job, worker_notified: false}; "running" (the worker or
 * provider to tell, after the commit) goes to the caller only, never into a replay.
 */
create or replace function public.cancel_job_request(p_request jsonb, p_job_id uuid)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_replay jsonb := private.request_begin(p_request);
  v_canceled jsonb;
begin
  if v_replay is not null then
    return v_replay;
  end if;
  v_canceled := public.cancel_job(p_job_id);
  return private.request_finish(p_request, 200,
           jsonb_build_object('job', v_canceled -> 'job', 'worker_notified', false))
         || jsonb_build_object('running', v_canceled);
end;
$$;
