/*
 * Module 21: element templates — a user's saved timelines with merge fields.
 *
 * A template is an `elements` timeline (docs/elements.md) whose strings may hold `{{name}}`
 * placeholders (text, an upload's path, a colour), saved with the frame it renders in. The
 * function finds the fields when it saves one (`fields`, sorted) and fills them in when it
 * renders one: a job, or a batch of them (module 14's rules: all reserved or none). Only
 * the owner reads or changes a template (RLS, and the procedures check the owner); no
 * money is involved here.
 */

create table public.element_templates (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references auth.users (id) on delete cascade,
  name text not null check (name = btrim(name)) check (char_length(name) between 1 and 120),
  description text not null default '' check (char_length(description) <= 2000),
  elements jsonb not null
    check (jsonb_typeof(elements) = 'array' and jsonb_array_length(elements) between 1 and 50),
  -- The frame and length it renders with: aspect_ratio, resolution, fps, duration.
  settings jsonb not null default '{}' check (jsonb_typeof(settings) = 'object'),
  fields text[] not null default '{}'
    check (cardinality(fields) <= 100 and array_position(fields, null) is null),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

create index element_templates_user_created_idx
  on public.element_templates (user_id, created_at desc);

create trigger element_templates_touch before update on public.element_templates
  for each row execute function private.touch_updated_at();

alter table public.element_templates enable row level security;

create policy "Element templates are visible to their owner" on public.element_templates
  for select to authenticated using ((select auth.uid()) = user_id);

revoke all on public.element_templates from anon, authenticated;
grant select on public.element_templates to authenticated;
grant all on public.element_templates to service_role;

/** Save a template for the caller. */
create function service.element_template_create(
  p_name text, p_description text, p_elements jsonb, p_settings jsonb, p_fields text[]
)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_template public.element_templates;
begin
  if auth.uid() is null then
    raise exception 'sign in first' using errcode = 'VG403';
  end if;
  insert into public.element_templates (user_id, name, description, elements, settings, fields)
  values (auth.uid(), btrim(p_name), coalesce(p_description, ''), p_elements,
          coalesce(p_settings, '{}'), coalesce(p_fields, '{}'))
  returning * into v_template;
  return to_jsonb(v_template);
end;
$$;

/**
 * Change one of the caller's templates: a null keeps the field; new elements come with
 * their fields.
 */
create function service.element_template_update(
  p_template_id uuid, p_name text default null, p_description text default null,
  p_elements jsonb default null, p_settings jsonb default null, p_fields text[] default null
)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_template public.element_templates;
begin
  update public.element_templates
     set name = coalesce(btrim(p_name), name),
         description = coalesce(p_description, description),
         elements = coalesce(p_elements, elements),
         settings = coalesce(p_settings, settings),
         fields = coalesce(p_fields, fields)
   where id = p_template_id and user_id = auth.uid()
  returning * into v_template;
  if not found then
    raise exception 'element template % not found', p_template_id using errcode = 'VGE04';
  end if;
  return to_jsonb(v_template);
end;
$$;

/** Delete one of the caller's templates (jobs rendered from it stay). */
create function service.element_template_delete(p_template_id uuid)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_template public.element_templates;
begin
  delete from public.element_templates
   where id = p_template_id and user_id = auth.uid()
  returning * into v_template;
  if not found then
    raise exception 'element template % not found', p_template_id using errcode = 'VGE04';
  end if;
  return jsonb_build_object('template', to_jsonb(v_template), 'deleted', true);
end;
$$;

/** The caller's templates, newest first: {items, total}. */
create function public.list_element_templates(p_limit integer default 20, p_offset integer default 0)
returns jsonb
language sql stable
security invoker
set search_path = ''
as $$
  select jsonb_build_object(
    'total', (select count(*) from public.element_templates t
               where t.user_id = (select auth.uid())),
    'items', coalesce((
      select jsonb_agg(to_jsonb(t) order by t.created_at desc, t.id)
        from (select * from public.element_templates t where t.user_id = (select auth.uid())
               order by t.created_at desc, t.id
               limit least(greatest(p_limit, 1), 100) offset greatest(p_offset, 0)) t), '[]'))
$$;

/** One of the caller's templates, or null. */
create function public.get_element_template(p_template_id uuid)
returns jsonb
language sql stable
security invoker
set search_path = ''
as $$
  select to_jsonb(t) from public.element_templates t where t.id = p_template_id
$$;

/** Service, for the user in the claims: service.element_template_create as one request. */
create function service.element_template_create_request(
  p_request jsonb, p_name text, p_description text, p_elements jsonb, p_settings jsonb,
  p_fields text[]
)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_replay jsonb := private.request_begin(p_request);
begin
  if v_replay is not null then
    return v_replay;
  end if;
  return private.request_finish(p_request, 201, service.element_template_create(
    p_name, p_description, p_elements, p_settings, p_fields));
end;
$$;

/** Service, for the user in the claims: service.element_template_update as one request. */
create function service.element_template_update_request(
  p_request jsonb, p_template_id uuid, p_name text default null,
  p_description text default null, p_elements jsonb default null,
  p_settings jsonb default null, p_fields text[] default null
)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_replay jsonb := private.request_begin(p_request);
begin
  if v_replay is not null then
    return v_replay;
  end if;
  return private.request_finish(p_request, 200, service.element_template_update(
    p_template_id, p_name, p_description, p_elements, p_settings, p_fields));
end;
$$;

/** Service, for the user in the claims: service.element_template_delete as one request. */
create function service.element_template_delete_request(p_request jsonb, p_template_id uuid)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_replay jsonb := private.request_begin(p_request);
begin
  if v_replay is not null then
    return v_replay;
  end if;
  return private.request_finish(p_request, 200, service.element_template_delete(p_template_id));
end;
$$;

revoke execute on function
  service.element_template_create(text, text, jsonb, jsonb, text[]),
  service.element_template_update(uuid, text, text, jsonb, jsonb, text[]),
  service.element_template_delete(uuid),
  public.list_element_templates(integer, integer), public.get_element_template(uuid),
  service.element_template_create_request(jsonb, text, text, jsonb, jsonb, text[]),
  service.element_template_update_request(jsonb, uuid, text, text, jsonb, jsonb, text[]),
  service.element_template_delete_request(jsonb, uuid)
  from public, anon, authenticated;

-- Reads as the user (RLS decides).
grant execute on function
  public.list_element_templates(integer, integer), public.get_element_template(uuid)
  to authenticated;

grant execute on function
  service.element_template_create(text, text, jsonb, jsonb, text[]),
  service.element_template_update(uuid, text, text, jsonb, jsonb, text[]),
  service.element_template_delete(uuid),
  public.list_element_templates(integer, integer), public.get_element_template(uuid),
  service.element_template_create_request(jsonb, text, text, jsonb, jsonb, text[]),
  service.element_template_update_request(jsonb, uuid, text, text, jsonb, jsonb, text[]),
  service.element_template_delete_request(jsonb, uuid)
  to service_role;
