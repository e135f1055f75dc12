/*
 * Module 8: triggers — profiles on signup, updated_at, the job state machine, job events
 * with their realtime broadcast, and append-only ledger and history.
 */

/** A profile for every new auth user. */
create function private.handle_new_user()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  insert into public.profiles (id, display_name)
  values (new.id, coalesce(new.raw_user_meta_data ->> 'display_name', split_part(new.email, '@', 1)))
  on conflict (id) do nothing;
  return new;
end;
$$;

create trigger on_auth_user_created
  after insert on auth.users
  for each row execute function private.handle_new_user();

/** Keep updated_at true. */
create function private.touch_updated_at()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  new.updated_at := now();
  return new;
end;
$$;

create trigger profiles_touch before update on public.profiles
  for each row execute function private.touch_updated_at();
create trigger models_touch before update on public.models
  for each row execute function private.touch_updated_at();
create trigger workers_touch before update on public.workers
  for each row execute function private.touch_updated_at();

/** The legal moves of the job state machine. */
create function private.job_transition_allowed(p_from public.job_status, p_to public.job_status)
returns boolean
language plpgsql immutable
set search_path = ''
as $$
begin
  return (
    select p_from = p_to and p_from in ('queued', 'dispatched', 'processing')
        or (p_from, p_to) in (
          ('queued', 'dispatched'), ('queued', 'canceled'), ('queued', 'failed'),
          ('dispatched', 'processing'), ('dispatched', 'completed'), ('dispatched', 'failed'),
          ('dispatched', 'queued'), ('dispatched', 'canceled'),
          ('processing', 'completed'), ('processing', 'failed'), ('processing', 'queued'),
          ('processing', 'canceled'))
  );
end;
$$;

/**
 * Reject every illegal status change, and any change to a finished job but three: leaving
 * its owner's history (deleted_at), losing its files (output_expired_at), each once, and
 * the erasure of its personal fields when the account is deleted (module 21).
 */
create function private.jobs_guard_transition()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  -- Removing a worker, a project or a batch sets its id to null on its jobs, finished ones
  -- too (an FK action, run inside the RI trigger): a change a finished job accepts.
  if pg_trigger_depth() > 1
     and (old.worker_id is not null and new.worker_id is null
          or old.project_id is not null and new.project_id is null
          or old.batch_id is not null and new.batch_id is null)
     and to_jsonb(new) - '{worker_id,project_id,batch_id}'::text[]
         = to_jsonb(old) - '{worker_id,project_id,batch_id}'::text[] then
    return new;
  end if;
  -- An account's erasure (module 21) empties a finished job's personal fields.
  if old.finished_at is not null and current_setting('videogen.erasing', true) = 'on'
     and to_jsonb(new) - '{params,output,progress_message,error_message,webhook,deleted_at,output_expired_at,updated_at}'::text[]
         = to_jsonb(old) - '{params,output,progress_message,error_message,webhook,deleted_at,output_expired_at,updated_at}'::text[] then
    new.updated_at := now();
    return new;
  end if;
  -- A compose job that ended early still records how its section clips ended with it
  -- (module 04's private.section_clips_cancel): their status, and no more waiting.
  if old.finished_at is not null
     and to_jsonb(new) - '{params,waiting_for,updated_at}'::text[]
         = to_jsonb(old) - '{params,waiting_for,updated_at}'::text[]
     and new.params - 'section_clips' = old.params - 'section_clips'
     and new.waiting_for <@ old.waiting_for then
    new.updated_at := now();
    return new;
  end if;
  if old.finished_at is not null
     and to_jsonb(new) - '{deleted_at,output_expired_at,updated_at}'::text[]
         = to_jsonb(old) - '{deleted_at,output_expired_at,updated_at}'::text[]
     and (old.deleted_at is null or new.deleted_at is not distinct from old.deleted_at)
     and (old.output_expired_at is null
          or new.output_expired_at is not distinct from old.output_expired_at) then
    new.updated_at := now();
    return new;
  end if;
  if not private.job_transition_allowed(old.status, new.status) then
    raise exception 'job % cannot go from % to %', old.id, old.status, new.status
      using errcode = 'VGJ09';
  end if;
  if new.user_id <> old.user_id or new.cost <> old.cost or new.model_id <> old.model_id then
    raise exception 'owner, model and cost of a job never change' using errcode = 'VGJ09';
  end if;
  new.updated_at := now();
  return new;
end;
$$;

create trigger jobs_guard_transition before update on public.jobs
  for each row execute function private.jobs_guard_transition();

/**
 * Every status or progress change → one job_events row and one broadcast on the
 * owner's private topic `user:<uid>:jobs` (see realtime.messages policies); for a job of
 * a batch, a second one with the batch's progress (`batch_progress`); for a job with a
 * webhook, the delivery of a subscribed event (private.webhook_enqueue).
 */
create function private.jobs_emit_event()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_event text;
  v_row public.job_events;
begin
  if tg_op = 'INSERT' then
    v_event := 'created';
  elsif new.status is distinct from old.status then
    v_event := new.status::text;
  elsif new.progress is distinct from old.progress then
    v_event := 'progress';
  else
    return null;
  end if;

  insert into public.job_events (job_id, user_id, event, status, progress, attempt, data)
  values (new.id, new.user_id, v_event, new.status, new.progress, new.attempt,
          jsonb_strip_nulls(jsonb_build_object(
            'message', new.progress_message, 'error_code', new.error_code,
            'error_message', new.error_message,
            'output', case when new.status = 'completed' then new.output end,
            'run_after', case when new.status = 'queued' and tg_op = 'UPDATE' then new.run_after end)))
  returning * into v_row;

  -- The payload is the job_events row as GET ?id= returns it: one shape for both.
  perform realtime.send(
    to_jsonb(v_row) - 'user_id',
    'job_' || v_event,
    'user:' || new.user_id || ':jobs',
    true);
  -- A job of a batch also moves the batch: its progress as GET ?batch= answers it.
  if new.batch_id is not null then
    perform realtime.send(private.batch_progress(new.batch_id), 'batch_progress',
                          'user:' || new.user_id || ':jobs', true);
  end if;
  -- The owner's webhook, when the job has one and wants this event: an outbox row in
  -- this same transaction (module 22), sent after commit.
  if new.webhook is not null then
    perform private.webhook_enqueue(new, v_event, case when tg_op = 'UPDATE' then old.status end);
  end if;
  return null;
end;
$$;

create trigger jobs_emit_event after insert or update on public.jobs
  for each row execute function private.jobs_emit_event();

/** Ledger and history rows are facts: never updated, deleted only with their user. */
create function private.forbid_change()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  -- A cascade from deleting the auth user (or its jobs) runs inside the FK trigger.
  if tg_op = 'DELETE' and pg_trigger_depth() > 1 then
    return old;
  end if;
  -- Retention (service.job_events_prune) and an account's erasure (module 21) are the
  -- sanctioned deletes of history.
  if tg_op = 'DELETE' and tg_table_name = 'job_events'
     and (current_setting('videogen.pruning', true) = 'on'
          or current_setting('videogen.erasing', true) = 'on') then
    return old;
  end if;
  raise exception '% is append-only', tg_table_name using errcode = 'VG403';
end;
$$;

create trigger credit_ledger_append_only before update or delete on public.credit_ledger
  for each row execute function private.forbid_change();
create trigger job_events_append_only before update or delete on public.job_events
  for each row execute function private.forbid_change();

/** Service (sweep): delete the history of jobs that finished more than p_days ago. */
create function service.job_events_prune(p_days integer default 90)
returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_count integer;
begin
  perform set_config('videogen.pruning', 'on', true);
  delete from public.job_events e using public.jobs j
   where e.job_id = j.id and j.finished_at < now() - make_interval(days => p_days);
  get diagnostics v_count = row_count;
  perform set_config('videogen.pruning', 'off', true);
  return v_count;
end;
$$;
