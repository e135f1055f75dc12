-- Migration render_speeds: drafted by `make migration` from sql/schema; review before committing.
-- Write by hand only what a diff cannot express: data moves, backfills, renames (drafted
-- as drop + create), default privileges.
-- Unsafe statements (drops): none.

set check_function_bodies = off;

CREATE OR REPLACE FUNCTION service.render_speeds_read(p_hours integer DEFAULT 24)
 RETURNS jsonb
 LANGUAGE plpgsql
 STABLE SECURITY DEFINER
 SET search_path TO ''
AS $function$
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
$function$
;

CREATE OR REPLACE FUNCTION private.check_job_usage(p_usage jsonb)
 RETURNS void
 LANGUAGE plpgsql
 IMMUTABLE
 SET search_path TO ''
AS $function$
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
    elsif v_key = 'renders' then
      -- Each sectioned render: {width, height, fps, sections, wall_seconds, output_seconds}.
      if jsonb_typeof(v_value) <> 'array' or jsonb_array_length(v_value) > 100
         or exists (
           select 1 from jsonb_array_elements(v_value) r
            where jsonb_typeof(r) <> 'object'
               or (select count(*) from jsonb_object_keys(r)) <> 6
               or jsonb_typeof(r -> 'width') is distinct from 'number'
               or jsonb_typeof(r -> 'height') is distinct from 'number'
               or jsonb_typeof(r -> 'fps') is distinct from 'number'
               or jsonb_typeof(r -> 'sections') is distinct from 'number'
               or jsonb_typeof(r -> 'wall_seconds') is distinct from 'number'
               or jsonb_typeof(r -> 'output_seconds') is distinct from 'number'
               or (r ->> 'width')::numeric not between 1 and 16384
               or (r ->> 'height')::numeric not between 1 and 16384
               or (r ->> 'fps')::numeric not between 1 and 240
               or (r ->> 'sections')::numeric not between 1 and 4096
               or (r ->> 'width')::numeric <> trunc((r ->> 'width')::numeric)
               or (r ->> 'height')::numeric <> trunc((r ->> 'height')::numeric)
               or (r ->> 'fps')::numeric <> trunc((r ->> 'fps')::numeric)
               or (r ->> 'sections')::numeric <> trunc((r ->> 'sections')::numeric)
               or (r ->> 'wall_seconds')::numeric not between 0.000001 and 100000000
               or (r ->> 'output_seconds')::numeric not between 0.000001 and 100000000) then
        raise exception 'usage.renders must be at most 100 renders of {width, height, fps, '
                        'sections, wall_seconds, output_seconds}' using errcode = 'VGU22';
      end if;
    else
      raise exception 'usage.% is not a usage field', v_key using errcode = 'VGU22';
    end if;
  end loop;
end;
$function$
;

CREATE OR REPLACE FUNCTION private.job_usage_record(p_job_id uuid, p_usage jsonb)
 RETURNS void
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
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
  insert into private.render_speeds (job_id, width, height, fps, sections, wall_seconds,
                                     output_seconds)
  select p_job_id, (r ->> 'width')::integer, (r ->> 'height')::integer,
         (r ->> 'fps')::integer, (r ->> 'sections')::integer,
         (r ->> 'wall_seconds')::numeric, (r ->> 'output_seconds')::numeric
    from jsonb_array_elements(coalesce(p_usage -> 'renders', '[]')) r;
end;
$function$
;

CREATE OR REPLACE FUNCTION service.ops_metrics_read()
 RETURNS jsonb
 LANGUAGE sql
 STABLE SECURITY DEFINER
 SET search_path TO ''
AS $function$
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
$function$
;

create table "private"."render_speeds" (
    "id" bigint generated always as identity not null,
    "job_id" uuid not null,
    "width" integer not null,
    "height" integer not null,
    "fps" integer not null,
    "sections" integer not null,
    "wall_seconds" numeric not null,
    "output_seconds" numeric not null,
    "recorded_at" timestamp with time zone not null default now()
);

alter table "private"."render_speeds" enable row level security;

CREATE INDEX render_speeds_job_idx ON private.render_speeds USING btree (job_id);

CREATE UNIQUE INDEX render_speeds_pkey ON private.render_speeds USING btree (id);

CREATE INDEX render_speeds_recent_idx ON private.render_speeds USING btree (recorded_at);

grant delete on table "private"."render_speeds" to "service_role";

grant insert on table "private"."render_speeds" to "service_role";

grant references on table "private"."render_speeds" to "service_role";

grant select on table "private"."render_speeds" to "service_role";

grant trigger on table "private"."render_speeds" to "service_role";

grant truncate on table "private"."render_speeds" to "service_role";

grant update on table "private"."render_speeds" to "service_role";

alter table "private"."render_speeds" add constraint "render_speeds_pkey" PRIMARY KEY using index "render_speeds_pkey";

alter table "private"."render_speeds" add constraint "render_speeds_fps_check" CHECK (((fps >= 1) AND (fps <= 240))) not valid;

alter table "private"."render_speeds" validate constraint "render_speeds_fps_check";

alter table "private"."render_speeds" add constraint "render_speeds_height_check" CHECK (((height >= 1) AND (height <= 16384))) not valid;

alter table "private"."render_speeds" validate constraint "render_speeds_height_check";

alter table "private"."render_speeds" add constraint "render_speeds_output_seconds_check" CHECK (((output_seconds > (0)::numeric) AND (output_seconds <= (100000000)::numeric))) not valid;

alter table "private"."render_speeds" validate constraint "render_speeds_output_seconds_check";

alter table "private"."render_speeds" add constraint "render_speeds_sections_check" CHECK (((sections >= 1) AND (sections <= 4096))) not valid;

alter table "private"."render_speeds" validate constraint "render_speeds_sections_check";

alter table "private"."render_speeds" add constraint "render_speeds_wall_seconds_check" CHECK (((wall_seconds > (0)::numeric) AND (wall_seconds <= (100000000)::numeric))) not valid;

alter table "private"."render_speeds" validate constraint "render_speeds_wall_seconds_check";

alter table "private"."render_speeds" add constraint "render_speeds_width_check" CHECK (((width >= 1) AND (width <= 16384))) not valid;

alter table "private"."render_speeds" validate constraint "render_speeds_width_check";

alter table "private"."render_speeds" add constraint "render_speeds_job_id_fkey" FOREIGN KEY ("job_id") REFERENCES "public"."jobs"("id") ON DELETE CASCADE NOT VALID;

alter table "private"."render_speeds" validate constraint "render_speeds_job_id_fkey";

revoke execute on function service.render_speeds_read(p_hours integer) from public;

grant execute on function service.render_speeds_read(p_hours integer) to service_role;
