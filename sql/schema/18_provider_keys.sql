/*
 * Module 18: users' own provider keys (seed 001, "API keys encrypted at rest").
 *
 * A user may keep one API key per provider (openai, fal, replicate, runway); their jobs
 * then run on their own account instead of the deployment's. The key lives in Supabase
 * Vault (`vault.secrets`: ciphertext only; sql/platform/40_vault.sql is the local stand-in)
 * and is read back decrypted only by service-only, security-definer procedures, for the
 * one user it belongs to: `service.provider_key_get_for_job` (the owner of a job being dispatched) and
 * `service.provider_key_get_mine` (the user in the claims). `public.provider_keys` holds what may be
 * shown — the provider, the last four characters, when it was stored and rotated — and
 * which Vault secret is the key; no procedure returns a key to a client.
 *
 * The procedure that stores a key carries it in its statement, so it must not fail with an
 * ERROR: Postgres logs the statement of a failed one (log_min_error_statement). It traps
 * its own errors and answers them as {"error": {sqlstate, message, hint}}, which the
 * service raises as the usual envelope; the functions validate the key before calling it.
 */

-- ===================================================================================
-- What may be shown of a user's keys
-- ===================================================================================

/** One user's key for one provider: the Vault secret holding it, and what may be shown. */
create table public.provider_keys (
  user_id uuid not null references auth.users (id) on delete cascade,
  provider text not null check (provider in ('openai', 'fal', 'replicate', 'runway')),
  secret_id uuid not null unique,
  last4 text not null check (char_length(last4) = 4),
  created_at timestamptz not null default now(),
  rotated_at timestamptz,
  primary key (user_id, provider)
);

comment on table public.provider_keys is
  'Users'' own provider API keys: the key is the Vault secret secret_id, never a column.';

alter table public.provider_keys enable row level security;

create policy "Users see their own provider keys" on public.provider_keys
  for select to authenticated
  using (user_id = (select auth.uid()));

revoke all on public.provider_keys from anon, authenticated;
grant select (user_id, provider, last4, created_at, rotated_at) on public.provider_keys
  to authenticated;
grant all on public.provider_keys to service_role;

/** A row gone (deleted, or its user removed) takes its Vault secret with it. */
create function private.provider_keys_forget()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  delete from vault.secrets where id = old.secret_id;
  return old;
end;
$$;

create trigger provider_keys_forget after delete on public.provider_keys
  for each row execute function private.provider_keys_forget();

/** The shape a key must have here (the functions check each provider's own form first). */
create function private.provider_key_valid(p_provider text, p_key text)
returns boolean
language sql immutable
set search_path = ''
as $$
  select p_provider in ('openai', 'fal', 'replicate', 'runway')
     and char_length(p_key) between 16 and 512
     and p_key !~ '[^!-~]'
$$;

/** What a client sees of one key. */
create function private.provider_key_json(p_row public.provider_keys)
returns jsonb
language sql stable
set search_path = ''
as $$
  select jsonb_build_object('provider', p_row.provider, 'last4', p_row.last4,
                            'created_at', p_row.created_at, 'rotated_at', p_row.rotated_at)
$$;

-- ===================================================================================
-- Store, rotate, delete, list
-- ===================================================================================

/**
 * Service, for the user in the claims: store their key for a provider, or replace the one
 * stored (a rotation: the Vault secret is rewritten, the old value is gone). Takes the
 * caller's rate-limit slot (`p_request`, module 7; no Idempotency-Key: storing the same key
 * again is the same state). Answers {status: 201 stored | 200 rotated, data}; any failure
 * is answered as {"error": {...}} rather than raised (see the module comment).
 */
create function service.provider_key_save(p_request jsonb, p_provider text, p_key text)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_user uuid := auth.uid();
  v_row public.provider_keys;
  v_status integer := 201;
  v_state text;
  v_message text;
  v_detail text;
  v_hint text;
begin
  begin
    if p_request ->> 'limit' is not null then
      perform service.rate_limit_take(p_request ->> 'principal', p_request ->> 'bucket',
                                     (p_request ->> 'limit')::integer, 60);
    end if;
    if v_user is null then
      raise exception 'a provider key belongs to a signed-in user' using errcode = 'VG403';
    end if;
    if not private.provider_key_valid(p_provider, p_key) then
      raise exception 'that is not a % key', coalesce(p_provider, 'provider')
        using errcode = 'VGK22';
    end if;
    -- One writer per user and provider: a first store has no row to lock yet.
    perform pg_advisory_xact_lock(
      hashtextextended('provider_key:' || v_user || ':' || p_provider, 0));
    select * into v_row from public.provider_keys
     where user_id = v_user and provider = p_provider for update;
    if found then
      perform vault.update_secret(v_row.secret_id, p_key);
      update public.provider_keys set last4 = right(p_key, 4), rotated_at = now()
       where user_id = v_user and provider = p_provider
      returning * into v_row;
      v_status := 200;
    else
      insert into public.provider_keys (user_id, provider, secret_id, last4)
      values (v_user, p_provider,
              vault.create_secret(p_key, 'videogen/provider_key/' || v_user || '/' || p_provider,
                                  'videogen: a user''s own ' || p_provider || ' API key'),
              right(p_key, 4))
      returning * into v_row;
    end if;
    return private.request_finish(p_request, v_status, private.provider_key_json(v_row));
  exception when others then
    get stacked diagnostics v_state = returned_sqlstate, v_message = message_text,
                            v_detail = pg_exception_detail, v_hint = pg_exception_hint;
    if v_state not like 'VG%' then  -- a driver's message may quote the row: say nothing of it
      v_message := 'the key could not be stored';
      v_detail := null;
      v_hint := null;
    end if;
    return jsonb_build_object('error', jsonb_build_object(
      'sqlstate', v_state, 'message', v_message, 'detail', v_detail, 'hint', v_hint));
  end;
end;
$$;

/**
 * Service, for the user in the claims: forget their key for a provider (the Vault secret
 * goes with it). As one request (rate limit, Idempotency-Key); VGK04 when there is none.
 */
create function service.provider_key_delete(p_request jsonb, p_provider text)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_replay jsonb := private.request_begin(p_request);
  v_row public.provider_keys;
begin
  if v_replay is not null then
    return v_replay;
  end if;
  delete from public.provider_keys where user_id = auth.uid() and provider = p_provider
  returning * into v_row;
  if not found then
    raise exception 'you have no % key stored', p_provider using errcode = 'VGK04';
  end if;
  return private.request_finish(p_request, 200, jsonb_build_object(
           'provider', v_row.provider, 'deleted', true));
end;
$$;

/** The caller's keys as they may be shown (RLS and the column grants decide: their own,
 * never secret_id). */
create function public.provider_keys_list()
returns jsonb
language sql stable
security invoker
set search_path = ''
as $$
  select coalesce(jsonb_agg(jsonb_build_object('provider', k.provider, 'last4', k.last4,
                                              'created_at', k.created_at,
                                              'rotated_at', k.rotated_at)
                            order by k.provider), '[]')
    from public.provider_keys k
   where k.user_id = (select auth.uid())
$$;

-- ===================================================================================
-- Using a key: only for its owner
-- ===================================================================================

/** Service: the key of a job's owner for a provider, decrypted, or null when they have none. */
create function service.provider_key_get_for_job(p_job_id uuid, p_provider text)
returns text
language sql stable
security definer
set search_path = ''
as $$
  select d.decrypted_secret
    from public.jobs j
    join public.provider_keys k on k.user_id = j.user_id and k.provider = p_provider
    join vault.decrypted_secrets d on d.id = k.secret_id
   where j.id = p_job_id
$$;

/** Service, for the user in the claims: their key for a provider, decrypted, or null. */
create function service.provider_key_get_mine(p_provider text)
returns text
language sql stable
security definer
set search_path = ''
as $$
  select d.decrypted_secret
    from public.provider_keys k
    join vault.decrypted_secrets d on d.id = k.secret_id
   where k.user_id = auth.uid() and k.provider = p_provider
$$;

-- ===================================================================================
-- Grants (module 9's blanket grants cover modules 1–8 only)
-- ===================================================================================

revoke execute on function private.provider_keys_forget(),
  private.provider_key_valid(text, text), private.provider_key_json(public.provider_keys)
  from public, anon, authenticated;
revoke execute on function
  service.provider_key_save(jsonb, text, text), service.provider_key_delete(jsonb, text),
  public.provider_keys_list(), service.provider_key_get_for_job(uuid, text),
  service.provider_key_get_mine(text)
  from public, anon, authenticated;

-- The list is security invoker (RLS decides), like a user's other reads; everything that
-- stores, removes or decrypts a key is service-only.
grant execute on function public.provider_keys_list() to authenticated;
grant execute on function private.provider_keys_forget(),
  private.provider_key_valid(text, text), private.provider_key_json(public.provider_keys)
  to service_role;
grant execute on function
  service.provider_key_save(jsonb, text, text), service.provider_key_delete(jsonb, text),
  public.provider_keys_list(), service.provider_key_get_for_job(uuid, text),
  service.provider_key_get_mine(text)
  to service_role;
