/*
 * Module 15: what a frontend shows before anything is bought — the catalogue (models with
 * category, featured flag and thumbnail; voices), a quote for any request (its cost, the
 * queue ahead, when it would be done, whether it is affordable) without creating a job,
 * and the user's own profile and preferences (language and theme; the tier is shown).
 * Estimates of running jobs are private.job_estimate (module 3).
 */

-- ===================================================================================
-- Voices
-- ===================================================================================

/** The narration voices each engine offers, by language (anyone may read them). */
create table public.voices (
  id text primary key check (id ~ '^[a-z]+:[A-Za-z0-9._+-]{1,80}$'),
  engine text not null check (engine in ('espeak', 'google')),
  language text not null check (language ~ '^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$'),
  name text not null check (char_length(name) between 1 and 80),
  gender text check (gender in ('female', 'male', 'neutral')),
  description text not null default '' check (char_length(description) <= 500),
  is_available boolean not null default true,
  created_at timestamptz not null default now()
);

create index voices_engine_language_idx on public.voices (engine, language);

alter table public.voices enable row level security;

create policy "Available voices are visible to everyone" on public.voices
  for select to anon, authenticated using (is_available);

revoke all on public.voices from anon, authenticated;
grant select on public.voices to anon, authenticated;
grant all on public.voices to service_role;

/** The available voices, optionally of one engine and one language (prefix: 'en'). */
create function public.list_voices(p_engine text default null, p_language text default null)
returns jsonb
language sql stable
security invoker
set search_path = ''
as $$
  select coalesce(jsonb_agg(to_jsonb(v) - 'created_at' order by v.engine, v.language, v.id), '[]')
    from public.voices v
   where v.is_available and (p_engine is null or v.engine = p_engine)
     and (p_language is null or v.language = p_language
          or v.language like p_language || '-%')
$$;

-- ===================================================================================
-- Quotes
-- ===================================================================================

/**
 * What 1–20 requests `[{model, params, priority}]` would cost and when they would be done,
 * without creating anything: per item the normalised params, the cost, the jobs queued
 * ahead of it (exact to 100) and the estimate; then the total, and for a signed-in caller
 * the balance and whether it covers the total. Bad items raise as a create would (with
 * `items.<n>` in the detail).
 */
create function public.quote_jobs(p_items jsonb)
returns jsonb
language plpgsql stable
security definer
set search_path = ''
as $$
declare
  v_item jsonb;
  v_model public.models;
  v_params jsonb;
  v_job public.jobs;
  v_ahead bigint;
  v_out jsonb := '[]';
  v_total bigint := 0;
  v_index integer := 0;
  v_priority integer;
  v_profile public.profiles;
begin
  if jsonb_typeof(p_items) is distinct from 'array'
     or jsonb_array_length(p_items) not between 1 and 20 then
    raise exception 'a quote has 1 to 20 items' using errcode = 'VGP22';
  end if;
  for v_item in select * from jsonb_array_elements(p_items) loop
    select * into v_model from public.models where id = v_item ->> 'model' and is_available;
    if not found then
      raise exception 'item %: model % not found', v_index, v_item ->> 'model'
        using errcode = 'VGM04',
              detail = jsonb_build_object('field', 'items.' || v_index || '.model',
                                          'message', 'not in the catalogue')::text;
    end if;
    v_priority := coalesce((v_item ->> 'priority')::integer, 0);
    begin
      v_params := private.normalize_params(v_model, coalesce(v_item -> 'params', '{}'));
    exception when sqlstate 'VGP22' then
      raise exception 'item %: %', v_index, sqlerrm
        using errcode = 'VGP22',
              detail = jsonb_build_object('field', 'items.' || v_index || '.params',
                                          'message', sqlerrm)::text;
    end;
    select count(*) into v_ahead from (
      select 1 from public.jobs j
       where j.status = 'queued' and j.model_id = v_model.id and j.priority >= v_priority
       limit 100) a;
    v_job.model_id := v_model.id;
    v_job.provider := v_model.provider;
    v_job.status := 'queued';
    v_job.run_after := now();
    v_out := v_out || jsonb_build_array(jsonb_build_object(
      'model', v_model.id, 'job_type', v_model.job_type, 'params', v_params,
      'cost', private.job_price(v_model, v_params), 'queue_ahead', v_ahead)
      || private.job_estimate(v_job, v_ahead + 1));
    v_total := v_total + private.job_price(v_model, v_params);
    v_index := v_index + 1;
  end loop;
  select * into v_profile from public.profiles where id = auth.uid();
  return jsonb_build_object(
    'items', v_out, 'total', v_total,
    'balance', v_profile.balance, 'reserved', v_profile.reserved,
    'affordable', case when v_profile.id is null then null
                       else v_profile.balance >= v_total end);
end;
$$;

-- ===================================================================================
-- The user's own profile
-- ===================================================================================

/** The caller's profile: preferences, tier, balance and limits; null without one. */
create function public.get_profile()
returns jsonb
language sql stable
security invoker
set search_path = ''
as $$
  select jsonb_build_object(
    'id', p.id, 'display_name', p.display_name, 'language', p.language, 'theme', p.theme,
    'tier', p.tier, 'balance', p.balance, 'reserved', p.reserved, 'debt', p.debt,
    'concurrent_job_limit', p.concurrent_job_limit,
    'initial_grant_claimed', p.initial_grant_claimed_at is not null,
    'created_at', p.created_at, 'updated_at', p.updated_at)
    from public.profiles p where p.id = (select auth.uid())
$$;

/**
 * Change the caller's display name, language or theme (a null keeps it). Runs with the
 * caller's rights: RLS and the column grants (those three columns only) decide.
 */
create function public.update_profile(
  p_display_name text default null, p_language text default null, p_theme text default null
)
returns jsonb
language plpgsql
security invoker
set search_path = ''
as $$
begin
  update public.profiles
     set display_name = coalesce(p_display_name, display_name),
         language = coalesce(p_language, language),
         theme = coalesce(p_theme, theme)
   where id = (select auth.uid());
  if not found then
    raise exception 'no profile for this user' using errcode = 'VG404';
  end if;
  return public.get_profile();
end;
$$;

revoke execute on function public.list_voices(text, text), public.quote_jobs(jsonb),
  public.get_profile(), public.update_profile(text, text, text)
  from public, anon, authenticated;
grant execute on function public.list_voices(text, text), public.quote_jobs(jsonb)
  to anon, authenticated;
grant execute on function public.get_profile(), public.update_profile(text, text, text)
  to authenticated;
grant execute on function public.list_voices(text, text), public.quote_jobs(jsonb),
  public.get_profile(), public.update_profile(text, text, text) to service_role;
