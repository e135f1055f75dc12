-- create_job takes one row lock on the profile instead of two: the reserve's update is the
-- lock that serialises a user's creates, and the concurrent-job count follows it.

/**
 * Create a job for the caller: check the model and params, price it, enforce the
 * concurrent-job limit, reserve the cost and queue it — one transaction.
 */
create or replace function public.create_job(
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

  insert into public.jobs (user_id, model_id, job_type, params, priority, cost, max_attempts, provider)
  values (v_uid, v_model.id, v_model.job_type, v_params, p_priority,
          private.job_price(v_model, v_params), v_model.max_attempts, v_model.provider)
  returning * into v_job;
  -- The reserve updates the profile row: that row lock serialises this user's creates, and
  -- the count below (a new snapshot, after the lock) sees every job committed before it.
  perform private.credits_reserve(v_job);
  select p.concurrent_job_limit,
         (select count(*) from public.jobs j
           where j.user_id = v_uid and j.status in ('queued', 'dispatched', 'processing'))
    into v_limit, v_active
    from public.profiles p where p.id = v_uid;
  if v_active > v_limit then
    raise exception 'you already have % jobs running (limit %)', v_active - 1, v_limit
      using errcode = 'VGJ29';
  end if;
  return private.job_json(v_job);
end;
$$;
