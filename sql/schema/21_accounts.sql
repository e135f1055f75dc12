/*
 * Module 21: a user's account as a whole (issue 23; seed 004's privacy requirements and
 * public URLs) — personal API keys for the servers that integrate us, share links to a
 * finished video, the export of everything we hold about a user and the erasure of it.
 *
 * Personal API keys are stored as the SHA-256 of the key: a key is 256 random bits, so a
 * fast hash is as good as a slow one (nothing to brute-force), and the lookup is one index
 * probe. The key itself reaches no procedure, so no statement log can carry it.
 *
 * Erasure keeps the books: jobs and ledger rows carry the user's id but no foreign key to
 * auth.users (module 1), so when the auth user goes they stay — a pseudonym that names
 * nobody (the profile, the email and the auth user are gone) — with every personal field
 * of the jobs emptied first (`service.account_erase`).
 */

-- ===================================================================================
-- Personal API keys
-- ===================================================================================

/** A user's key for their own servers: its SHA-256, what may be shown, what it may do. */
create table public.api_keys (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references auth.users (id) on delete cascade,
  name text not null default '' check (char_length(name) <= 80),
  key_hash text not null unique check (key_hash ~ '^[0-9a-f]{64}$'),
  prefix text not null check (prefix ~ '^[a-z]{2,8}_[a-z]{2,8}_$'),
  last4 text not null check (char_length(last4) = 4),
  scopes text[] not null default '{read,jobs}'
    check (cardinality(scopes) >= 1 and scopes <@ '{read,jobs}'::text[]),
  created_at timestamptz not null default now(),
  expires_at timestamptz,
  last_used_at timestamptz,
  revoked_at timestamptz,
  check (expires_at is null or expires_at > created_at)
);

create index api_keys_user_idx on public.api_keys (user_id, created_at desc);

comment on table public.api_keys is
  'Personal API keys: only the SHA-256 of a key is kept (shown once, at creation).';

alter table public.api_keys enable row level security;

create policy "Users see their own API keys" on public.api_keys
  for select to authenticated
  using (user_id = (select auth.uid()));

revoke all on public.api_keys from anon, authenticated;
grant select (id, user_id, name, prefix, last4, scopes, created_at, expires_at, last_used_at,
              revoked_at) on public.api_keys to authenticated;
grant all on public.api_keys to service_role;

insert into private.settings (name, value) values
  ('api_keys_active_max', '10'),
  ('api_key_creates_per_hour', '20');

/** What a client sees of one key (never its hash). */
create function private.api_key_json(p_row public.api_keys)
returns jsonb
language sql stable
set search_path = ''
as $$
  select jsonb_build_object(
    'id', p_row.id, 'name', p_row.name, 'masked', p_row.prefix || '…' || p_row.last4,
    'scopes', to_jsonb(p_row.scopes), 'created_at', p_row.created_at,
    'expires_at', p_row.expires_at, 'last_used_at', p_row.last_used_at,
    'revoked_at', p_row.revoked_at,
    'state', case when p_row.revoked_at is not null then 'revoked'
                  when p_row.expires_at is not null and p_row.expires_at <= now() then 'expired'
                  else 'active' end)
$$;

/**
 * Service, for the user in the claims: keep a new key's hash (the functions made the key
 * and show it once). At most `api_key_creates_per_hour` creations an hour and
 * `api_keys_active_max` active keys per user (VGY09); a guest (anonymous) has none.
 * Takes the write's rate-limit slot; no Idempotency-Key (a replay could not show the key).
 */
create function service.api_key_create(
  p_request jsonb, p_name text, p_key_hash text, p_prefix text, p_last4 text,
  p_scopes text[], p_expires_at timestamptz
)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_user uuid := auth.uid();
  v_row public.api_keys;
  v_active integer;
begin
  perform private.request_begin(p_request - 'key');
  if v_user is null or coalesce((auth.jwt() ->> 'is_anonymous')::boolean, false) then
    raise exception 'API keys belong to a signed-in, permanent account' using errcode = 'VG403';
  end if;
  perform service.rate_limit_take('user:' || v_user, 'api_key_create',
                                  private.setting_int('api_key_creates_per_hour')::integer, 3600);
  perform pg_advisory_xact_lock(hashtextextended('api_keys:' || v_user, 0));
  select count(*) into v_active from public.api_keys
   where user_id = v_user and revoked_at is null and (expires_at is null or expires_at > now());
  if v_active >= private.setting_int('api_keys_active_max') then
    raise exception 'you already have % active API keys', v_active
      using errcode = 'VGY09',
            hint = 'Revoke one you no longer use (DELETE /update-credits/api-keys?id=).';
  end if;
  if p_expires_at is not null and p_expires_at <= now() then
    raise exception 'expires_at must be in the future' using errcode = 'VG400';
  end if;
  insert into public.api_keys (user_id, name, key_hash, prefix, last4, scopes, expires_at)
  values (v_user, coalesce(p_name, ''), p_key_hash, p_prefix, p_last4,
          (select array_agg(distinct s order by s) from unnest(p_scopes) s), p_expires_at)
  returning * into v_row;
  return private.request_finish(p_request - 'key', 201, private.api_key_json(v_row));
end;
$$;

/** Service, for the user in the claims: revoke one of their keys (VGY04 when not theirs). */
create function service.api_key_revoke(p_request jsonb, p_id uuid)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_replay jsonb := private.request_begin(p_request);
  v_row public.api_keys;
begin
  if v_replay is not null then
    return v_replay;
  end if;
  update public.api_keys set revoked_at = coalesce(revoked_at, now())
   where id = p_id and user_id = auth.uid()
  returning * into v_row;
  if not found then
    raise exception 'API key % not found', p_id using errcode = 'VGY04';
  end if;
  return private.request_finish(p_request, 200, private.api_key_json(v_row));
end;
$$;

/**
 * The caller's keys as they may be shown, newest first (RLS and the column grants decide:
 * their own, never the hash — so the row is not handed whole to private.api_key_json).
 */
create function public.api_keys_list()
returns jsonb
language sql stable
security invoker
set search_path = ''
as $$
  select coalesce(jsonb_agg(jsonb_build_object(
           'id', k.id, 'name', k.name, 'masked', k.prefix || '…' || k.last4,
           'scopes', to_jsonb(k.scopes), 'created_at', k.created_at,
           'expires_at', k.expires_at, 'last_used_at', k.last_used_at,
           'revoked_at', k.revoked_at,
           'state', case when k.revoked_at is not null then 'revoked'
                         when k.expires_at is not null and k.expires_at <= now() then 'expired'
                         else 'active' end)
         order by k.created_at desc, k.id), '[]')
    from (select id, name, prefix, last4, scopes, created_at, expires_at, last_used_at,
                 revoked_at
            from public.api_keys where user_id = (select auth.uid())) k
$$;

/**
 * Service (the functions' auth): the key with this SHA-256 — {state: active, key_id,
 * user_id, scopes, email} for a usable one, {state: revoked | expired} otherwise, null when
 * unknown or when its user is gone. Marks it used (at most once a minute per key).
 */
create function service.api_key_authenticate(p_key_hash text)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_row public.api_keys;
  v_user auth.users;
begin
  select * into v_row from public.api_keys where key_hash = p_key_hash;
  if not found then
    return null;
  end if;
  select * into v_user from auth.users u where u.id = v_row.user_id;
  if not found then
    return null;
  end if;
  if v_row.revoked_at is not null then
    return jsonb_build_object('state', 'revoked', 'key_id', v_row.id);
  end if;
  if v_row.expires_at is not null and v_row.expires_at <= now() then
    return jsonb_build_object('state', 'expired', 'key_id', v_row.id);
  end if;
  if v_row.last_used_at is null or v_row.last_used_at < now() - interval '1 minute' then
    update public.api_keys set last_used_at = now() where id = v_row.id;
  end if;
  return jsonb_build_object(
    'state', 'active', 'key_id', v_row.id, 'user_id', v_row.user_id,
    'scopes', to_jsonb(v_row.scopes), 'email', coalesce(v_user.email, ''),
    'is_anonymous', coalesce(v_user.is_anonymous, false));
end;
$$;

-- ===================================================================================
-- Share links
-- ===================================================================================

/** A revocable public link to one finished video; the id is the capability (128+ bits). */
create table public.share_links (
  id text primary key check (id ~ '^[A-Za-z0-9_-]{22,64}$'),
  user_id uuid not null references auth.users (id) on delete cascade,
  job_id uuid not null references public.jobs (id) on delete cascade,
  created_at timestamptz not null default now(),
  expires_at timestamptz,
  revoked_at timestamptz,
  check (expires_at is null or expires_at > created_at)
);

create index share_links_user_idx on public.share_links (user_id, created_at desc);
create index share_links_job_idx on public.share_links (job_id);

alter table public.share_links enable row level security;

create policy "Users see their own share links" on public.share_links
  for select to authenticated
  using (user_id = (select auth.uid()));

revoke all on public.share_links from anon, authenticated;
grant select on public.share_links to authenticated;
grant all on public.share_links to service_role;

/** What the owner sees of one link. */
create function private.share_link_json(p_row public.share_links)
returns jsonb
language sql stable
set search_path = ''
as $$
  select jsonb_build_object(
    'id', p_row.id, 'job_id', p_row.job_id, 'created_at', p_row.created_at,
    'expires_at', p_row.expires_at, 'revoked_at', p_row.revoked_at,
    'state', case when p_row.revoked_at is not null then 'revoked'
                  when p_row.expires_at is not null and p_row.expires_at <= now() then 'expired'
                  else 'active' end)
$$;

/**
 * Service, for the user in the claims: share one of their completed videos (its files
 * still kept) under the id the functions drew. VGJ04 when the job is not theirs (or
 * removed), VGH09 when it has no video to show. As one request (rate limit, key).
 */
create function service.share_link_create(
  p_request jsonb, p_id text, p_job_id uuid, p_expires_at timestamptz
)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_replay jsonb := private.request_begin(p_request);
  v_job public.jobs;
  v_row public.share_links;
begin
  if v_replay is not null then
    return v_replay;
  end if;
  select * into v_job from public.jobs
   where id = p_job_id and user_id = auth.uid() and deleted_at is null;
  if not found then
    raise exception 'job % not found', p_job_id using errcode = 'VGJ04';
  end if;
  if v_job.status <> 'completed' or v_job.output_expired_at is not null
     or v_job.output ->> 'video_path' is null then
    raise exception 'job % has no video to share', p_job_id
      using errcode = 'VGH09', hint = 'Share a completed video whose files are still kept.';
  end if;
  if p_expires_at is not null and p_expires_at <= now() then
    raise exception 'expires_at must be in the future' using errcode = 'VG400';
  end if;
  insert into public.share_links (id, user_id, job_id, expires_at)
  values (p_id, auth.uid(), p_job_id, p_expires_at)
  returning * into v_row;
  return private.request_finish(p_request, 201, private.share_link_json(v_row));
end;
$$;

/** Service, for the user in the claims: revoke one of their links (VGH04 when not theirs). */
create function service.share_link_revoke(p_request jsonb, p_id text)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_replay jsonb := private.request_begin(p_request);
  v_row public.share_links;
begin
  if v_replay is not null then
    return v_replay;
  end if;
  update public.share_links set revoked_at = coalesce(revoked_at, now())
   where id = p_id and user_id = auth.uid()
  returning * into v_row;
  if not found then
    raise exception 'share link not found' using errcode = 'VGH04';
  end if;
  return private.request_finish(p_request, 200, private.share_link_json(v_row));
end;
$$;

/** The caller's share links, newest first (RLS: their own). */
create function public.share_links_list()
returns jsonb
language sql stable
security invoker
set search_path = ''
as $$
  select coalesce(jsonb_agg(private.share_link_json(s) order by s.created_at desc, s.id), '[]')
    from public.share_links s
   where s.user_id = (select auth.uid())
$$;

/**
 * Service (the public route, anyone holding the id): the shared video's paths and what
 * may be shown of it — {state: active, job_id, video_path, thumbnail_path, duration_s,
 * expires_at}; {state: gone} once revoked, expired, removed or its files expired; null for
 * an id that never existed.
 */
create function service.share_link_resolve(p_id text)
returns jsonb
language sql stable
security definer
set search_path = ''
as $$
  select case
    when s.revoked_at is not null or (s.expires_at is not null and s.expires_at <= now())
         or j.deleted_at is not null or j.output_expired_at is not null
         or j.output ->> 'video_path' is null
      then jsonb_build_object('state', 'gone')
    else jsonb_build_object(
      'state', 'active', 'job_id', j.id, 'video_path', j.output ->> 'video_path',
      'thumbnail_path', j.output ->> 'thumbnail_path',
      'duration_s', j.output -> 'duration_s', 'created_at', s.created_at,
      'expires_at', s.expires_at)
  end
    from public.share_links s join public.jobs j on j.id = s.job_id
   where s.id = p_id
$$;

-- ===================================================================================
-- Export and erasure
-- ===================================================================================

/**
 * Service, for the user in the claims: everything we hold about them, as one document —
 * profile, jobs (removed ones too), their events and usage, the ledger, purchases and
 * their refunds, merges, projects, batches, the free grant, daily spend, and the metadata
 * of their API keys, provider keys and share links (never a key or a hash) — with
 * `counts` per table and `files` (every object in their storage folders, for the
 * functions to sign).
 */
create function service.account_export()
returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_user uuid := auth.uid();
  v_doc jsonb;
begin
  if v_user is null then
    raise exception 'an export belongs to a signed-in user' using errcode = 'VG403';
  end if;
  select jsonb_build_object(
    'user', (select jsonb_build_object('id', u.id, 'email', u.email, 'phone', u.phone,
                                       'created_at', u.created_at,
                                       'last_sign_in_at', u.last_sign_in_at,
                                       'is_anonymous', u.is_anonymous,
                                       'user_metadata', u.raw_user_meta_data)
               from auth.users u where u.id = v_user),
    'profile', (select to_jsonb(p) from public.profiles p where p.id = v_user),
    'jobs', coalesce((select jsonb_agg(to_jsonb(j) order by j.created_at, j.id)
                        from public.jobs j where j.user_id = v_user), '[]'),
    'job_events', coalesce((select jsonb_agg(to_jsonb(e) - 'user_id' order by e.id)
                              from public.job_events e where e.user_id = v_user), '[]'),
    'job_usage', coalesce((select jsonb_agg(to_jsonb(u) order by u.job_id)
                             from private.job_usage u join public.jobs j on j.id = u.job_id
                            where j.user_id = v_user), '[]'),
    'credit_ledger', coalesce((select jsonb_agg(to_jsonb(l) - 'user_id' order by l.id)
                                 from public.credit_ledger l where l.user_id = v_user), '[]'),
    'purchases', coalesce((select jsonb_agg(to_jsonb(p) - 'user_id' order by p.id)
                             from private.purchases p where p.user_id = v_user), '[]'),
    'purchase_reversals', coalesce((select jsonb_agg(to_jsonb(r) - 'user_id' order by r.id)
                                      from private.purchase_reversals r
                                     where r.user_id = v_user), '[]'),
    'account_merges', coalesce((select jsonb_agg(to_jsonb(m) order by m.merged_at)
                                  from private.account_merges m
                                 where v_user in (m.anonymous_id, m.account_id)), '[]'),
    'free_grants', coalesce((select jsonb_agg(to_jsonb(g) - 'user_id' order by g.id)
                               from private.free_grants g where g.user_id = v_user), '[]'),
    'spend_days', coalesce((select jsonb_agg(to_jsonb(d) - 'user_id' order by d.day)
                              from private.spend_days d where d.user_id = v_user), '[]'),
    'projects', coalesce((select jsonb_agg(to_jsonb(p) - 'user_id' order by p.created_at, p.id)
                            from public.projects p where p.user_id = v_user), '[]'),
    'batches', coalesce((select jsonb_agg(to_jsonb(b) - 'user_id' order by b.created_at, b.id)
                           from public.batches b where b.user_id = v_user), '[]'),
    'api_keys', coalesce((select jsonb_agg(private.api_key_json(k) order by k.created_at, k.id)
                            from public.api_keys k where k.user_id = v_user), '[]'),
    'provider_keys', coalesce((select jsonb_agg(private.provider_key_json(k)
                                                order by k.provider)
                                 from public.provider_keys k where k.user_id = v_user), '[]'),
    'share_links', coalesce((select jsonb_agg(private.share_link_json(s)
                                              order by s.created_at, s.id)
                               from public.share_links s where s.user_id = v_user), '[]'),
    'files', coalesce((select jsonb_agg(jsonb_build_object('bucket', o.bucket_id,
                                                           'path', o.name,
                                                           'created_at', o.created_at)
                                        order by o.bucket_id, o.name)
                         from storage.objects o
                        where o.bucket_id in ('videos', 'thumbnails', 'uploads')
                          and (storage.foldername(o.name))[1] = v_user::text), '[]'))
    into v_doc;
  return v_doc || jsonb_build_object('counts', (
    select jsonb_object_agg(k, jsonb_array_length(v))
      from jsonb_each(v_doc) as e(k, v) where jsonb_typeof(v) = 'array'));
end;
$$;

/**
 * Service, for the user in the claims: erase their personal data before the auth user is
 * deleted (the functions remove their files first and delete the auth user after). Refused
 * (VGX09) while a job still runs: its credits are still held. Jobs and ledger rows stay for
 * the books under the user's id, which names nobody once the auth user is gone: each job
 * loses its params (prompts, file names), output, messages and events and leaves history;
 * projects, batches, keys, share links and the profile's name go. Answers what it erased.
 */
create function service.account_erase(p_request jsonb)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_user uuid := auth.uid();
  v_jobs integer;
  v_events integer;
begin
  perform private.request_begin(p_request - 'key');
  if v_user is null then
    raise exception 'only a signed-in user can delete their account' using errcode = 'VG403';
  end if;
  perform 1 from public.profiles where id = v_user for update;
  if exists (select 1 from public.jobs
              where user_id = v_user and status in ('queued', 'dispatched', 'processing')) then
    raise exception 'your account still has unfinished jobs' using errcode = 'VGX09',
      hint = 'Cancel them (DELETE /queue-job?id=) or wait for them to finish, then retry.';
  end if;
  perform set_config('videogen.erasing', 'on', true);
  update public.jobs
     set params = '{}', output = null, progress_message = null, error_message = null,
         webhook = null, deleted_at = coalesce(deleted_at, now()),
         output_expired_at = coalesce(output_expired_at, now())
   where user_id = v_user;
  get diagnostics v_jobs = row_count;
  delete from public.job_events where user_id = v_user;
  get diagnostics v_events = row_count;
  perform set_config('videogen.erasing', 'off', true);
  delete from public.share_links where user_id = v_user;
  delete from public.webhook_deliveries where user_id = v_user;  -- module 22
  delete from private.webhook_signing_secrets where user_id = v_user;
  delete from public.api_keys where user_id = v_user;
  delete from public.provider_keys where user_id = v_user;
  delete from public.batches where user_id = v_user;
  delete from public.projects where user_id = v_user;
  update public.profiles set display_name = null where id = v_user;
  return private.request_finish(p_request - 'key', 200, jsonb_build_object(
    'jobs_erased', v_jobs, 'events_erased', v_events));
end;
$$;

/**
 * An auth user deleted another way than `DELETE /update-credits/account` (the dashboard,
 * the Auth admin API called directly) still loses the personal fields of their finished
 * jobs — params (prompts, file names) and messages — and those jobs leave history; their
 * outputs' paths stay so the retention sweep removes the files (`service.jobs_outputs_due`:
 * removed jobs). The rest goes by the foreign keys; the ledger stays.
 */
create function private.account_forget()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform set_config('videogen.erasing', 'on', true);
  update public.jobs
     set params = '{}', progress_message = null, error_message = null, webhook = null,
         deleted_at = coalesce(deleted_at, now())
   where user_id = old.id and finished_at is not null
     and (params <> '{}' or deleted_at is null or progress_message is not null
          or error_message is not null or webhook is not null);
  perform set_config('videogen.erasing', 'off', true);
  return old;
end;
$$;

create trigger on_auth_user_deleted after delete on auth.users
  for each row execute function private.account_forget();

revoke execute on function private.account_forget() from public, anon, authenticated;
grant execute on function private.account_forget() to service_role;

-- ===================================================================================
-- Grants (module 9's blanket grants cover modules 1–8 only)
-- ===================================================================================

revoke execute on function private.api_key_json(public.api_keys),
  private.share_link_json(public.share_links)
  from public, anon, authenticated;
revoke execute on function
  service.api_key_create(jsonb, text, text, text, text, text[], timestamptz),
  service.api_key_revoke(jsonb, uuid), public.api_keys_list(),
  service.api_key_authenticate(text),
  service.share_link_create(jsonb, text, uuid, timestamptz),
  service.share_link_revoke(jsonb, text), public.share_links_list(),
  service.share_link_resolve(text), service.account_export(), service.account_erase(jsonb)
  from public, anon, authenticated;

-- The lists are security invoker (RLS decides) and format rows with the helpers above;
-- everything that writes, resolves a credential or reads across tables is service-only.
grant execute on function public.api_keys_list(), public.share_links_list(),
  private.share_link_json(public.share_links)
  to authenticated;
grant execute on function private.api_key_json(public.api_keys),
  private.share_link_json(public.share_links),
  service.api_key_create(jsonb, text, text, text, text, text[], timestamptz),
  service.api_key_revoke(jsonb, uuid), public.api_keys_list(),
  service.api_key_authenticate(text),
  service.share_link_create(jsonb, text, uuid, timestamptz),
  service.share_link_revoke(jsonb, text), public.share_links_list(),
  service.share_link_resolve(text), service.account_export(), service.account_erase(jsonb)
  to service_role;
