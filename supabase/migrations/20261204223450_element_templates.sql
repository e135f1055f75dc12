-- Migration element_templates: drafted by `make migration` from sql/schema; review before committing.
-- Write by hand only what a diff cannot express: data moves, backfills, renames (drafted
-- as drop + create), default privileges.
-- Unsafe statements (drops): none.

set check_function_bodies = off;

CREATE OR REPLACE FUNCTION public.get_element_template(p_template_id uuid)
 RETURNS jsonb
 LANGUAGE sql
 STABLE
 SET search_path TO ''
AS $function$
  select to_jsonb(t) from public.element_templates t where t.id = p_template_id
$function$
;

CREATE OR REPLACE FUNCTION public.list_element_templates(p_limit integer DEFAULT 20, p_offset integer DEFAULT 0)
 RETURNS jsonb
 LANGUAGE sql
 STABLE
 SET search_path TO ''
AS $function$
  select jsonb_build_object(
    'total', (select count(*) from public.element_templates t
               where t.user_id = (select auth.uid())),
    'items', coalesce((
      select jsonb_agg(to_jsonb(t) order by t.created_at desc, t.id)
        from (select * from public.element_templates t where t.user_id = (select auth.uid())
               order by t.created_at desc, t.id
               limit least(greatest(p_limit, 1), 100) offset greatest(p_offset, 0)) t), '[]'))
$function$
;

CREATE OR REPLACE FUNCTION service.element_template_create(p_name text, p_description text, p_elements jsonb, p_settings jsonb, p_fields text[])
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
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
$function$
;

CREATE OR REPLACE FUNCTION service.element_template_create_request(p_request jsonb, p_name text, p_description text, p_elements jsonb, p_settings jsonb, p_fields text[])
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  v_replay jsonb := private.request_begin(p_request);
begin
  if v_replay is not null then
    return v_replay;
  end if;
  return private.request_finish(p_request, 201, service.element_template_create(
    p_name, p_description, p_elements, p_settings, p_fields));
end;
$function$
;

CREATE OR REPLACE FUNCTION service.element_template_delete(p_template_id uuid)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
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
$function$
;

CREATE OR REPLACE FUNCTION service.element_template_delete_request(p_request jsonb, p_template_id uuid)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  v_replay jsonb := private.request_begin(p_request);
begin
  if v_replay is not null then
    return v_replay;
  end if;
  return private.request_finish(p_request, 200, service.element_template_delete(p_template_id));
end;
$function$
;

CREATE OR REPLACE FUNCTION service.element_template_update(p_template_id uuid, p_name text DEFAULT NULL::text, p_description text DEFAULT NULL::text, p_elements jsonb DEFAULT NULL::jsonb, p_settings jsonb DEFAULT NULL::jsonb, p_fields text[] DEFAULT NULL::text[])
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
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
$function$
;

CREATE OR REPLACE FUNCTION service.element_template_update_request(p_request jsonb, p_template_id uuid, p_name text DEFAULT NULL::text, p_description text DEFAULT NULL::text, p_elements jsonb DEFAULT NULL::jsonb, p_settings jsonb DEFAULT NULL::jsonb, p_fields text[] DEFAULT NULL::text[])
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  v_replay jsonb := private.request_begin(p_request);
begin
  if v_replay is not null then
    return v_replay;
  end if;
  return private.request_finish(p_request, 200, service.element_template_update(
    p_template_id, p_name, p_description, p_elements, p_settings, p_fields));
end;
$function$
;

create table "public"."element_templates" (
    "id" uuid not null default gen_random_uuid(),
    "user_id" uuid not null,
    "name" text not null,
    "description" text not null default ''::text,
    "elements" jsonb not null,
    "settings" jsonb not null default '{}'::jsonb,
    "fields" text[] not null default '{}'::text[],
    "created_at" timestamp with time zone not null default now(),
    "updated_at" timestamp with time zone not null default now()
);

alter table "public"."element_templates" enable row level security;

CREATE TRIGGER element_templates_touch BEFORE UPDATE ON public.element_templates FOR EACH ROW EXECUTE FUNCTION private.touch_updated_at();

create policy "Element templates are visible to their owner"
on "public"."element_templates"
as permissive
for select
to authenticated
using ((( SELECT auth.uid() AS uid) = user_id));

CREATE UNIQUE INDEX element_templates_pkey ON public.element_templates USING btree (id);

CREATE INDEX element_templates_user_created_idx ON public.element_templates USING btree (user_id, created_at DESC);

grant select on table "public"."element_templates" to "authenticated";

grant delete on table "public"."element_templates" to "service_role";

grant insert on table "public"."element_templates" to "service_role";

grant references on table "public"."element_templates" to "service_role";

grant select on table "public"."element_templates" to "service_role";

grant trigger on table "public"."element_templates" to "service_role";

grant truncate on table "public"."element_templates" to "service_role";

grant update on table "public"."element_templates" to "service_role";

alter table "public"."element_templates" add constraint "element_templates_pkey" PRIMARY KEY using index "element_templates_pkey";

alter table "public"."element_templates" add constraint "element_templates_description_check" CHECK ((char_length(description) <= 2000)) not valid;

alter table "public"."element_templates" validate constraint "element_templates_description_check";

alter table "public"."element_templates" add constraint "element_templates_elements_check" CHECK (((jsonb_typeof(elements) = 'array'::text) AND ((jsonb_array_length(elements) >= 1) AND (jsonb_array_length(elements) <= 50)))) not valid;

alter table "public"."element_templates" validate constraint "element_templates_elements_check";

alter table "public"."element_templates" add constraint "element_templates_fields_check" CHECK (((cardinality(fields) <= 100) AND (array_position(fields, NULL::text) IS NULL))) not valid;

alter table "public"."element_templates" validate constraint "element_templates_fields_check";

alter table "public"."element_templates" add constraint "element_templates_name_check" CHECK ((name = btrim(name))) not valid;

alter table "public"."element_templates" validate constraint "element_templates_name_check";

alter table "public"."element_templates" add constraint "element_templates_name_check1" CHECK (((char_length(name) >= 1) AND (char_length(name) <= 120))) not valid;

alter table "public"."element_templates" validate constraint "element_templates_name_check1";

alter table "public"."element_templates" add constraint "element_templates_settings_check" CHECK ((jsonb_typeof(settings) = 'object'::text)) not valid;

alter table "public"."element_templates" validate constraint "element_templates_settings_check";

alter table "public"."element_templates" add constraint "element_templates_user_id_fkey" FOREIGN KEY ("user_id") REFERENCES "auth"."users"("id") ON DELETE CASCADE NOT VALID;

alter table "public"."element_templates" validate constraint "element_templates_user_id_fkey";

revoke execute on function public.get_element_template(p_template_id uuid) from public;

revoke execute on function public.get_element_template(p_template_id uuid) from anon;

revoke execute on function public.list_element_templates(p_limit integer, p_offset integer) from public;

revoke execute on function public.list_element_templates(p_limit integer, p_offset integer) from anon;

revoke execute on function service.element_template_create(p_name text, p_description text, p_elements jsonb, p_settings jsonb, p_fields text[]) from public;

revoke execute on function service.element_template_create_request(p_request jsonb, p_name text, p_description text, p_elements jsonb, p_settings jsonb, p_fields text[]) from public;

revoke execute on function service.element_template_delete(p_template_id uuid) from public;

revoke execute on function service.element_template_delete_request(p_request jsonb, p_template_id uuid) from public;

revoke execute on function service.element_template_update(p_template_id uuid, p_name text, p_description text, p_elements jsonb, p_settings jsonb, p_fields text[]) from public;

revoke execute on function service.element_template_update_request(p_request jsonb, p_template_id uuid, p_name text, p_description text, p_elements jsonb, p_settings jsonb, p_fields text[]) from public;

revoke delete, insert, select, update on table public.element_templates from anon;

revoke delete, insert, update on table public.element_templates from authenticated;

grant execute on function service.element_template_create(p_name text, p_description text, p_elements jsonb, p_settings jsonb, p_fields text[]) to service_role;

grant execute on function service.element_template_create_request(p_request jsonb, p_name text, p_description text, p_elements jsonb, p_settings jsonb, p_fields text[]) to service_role;

grant execute on function service.element_template_delete(p_template_id uuid) to service_role;

grant execute on function service.element_template_delete_request(p_request jsonb, p_template_id uuid) to service_role;

grant execute on function service.element_template_update(p_template_id uuid, p_name text, p_description text, p_elements jsonb, p_settings jsonb, p_fields text[]) to service_role;

grant execute on function service.element_template_update_request(p_request jsonb, p_template_id uuid, p_name text, p_description text, p_elements jsonb, p_settings jsonb, p_fields text[]) to service_role;

-- Pass 2: what pass 1 left different.

revoke all on function public.get_element_template(p_template_id uuid) from authenticated;

revoke all on function public.get_element_template(p_template_id uuid) from service_role;

revoke all on function public.list_element_templates(p_limit integer, p_offset integer) from authenticated;

revoke all on function public.list_element_templates(p_limit integer, p_offset integer) from service_role;

revoke all on table public.element_templates from authenticated;

revoke all on table public.element_templates from service_role;

grant execute on function public.get_element_template(p_template_id uuid) to service_role;

grant execute on function public.get_element_template(p_template_id uuid) to authenticated;

grant execute on function public.list_element_templates(p_limit integer, p_offset integer) to service_role;

grant execute on function public.list_element_templates(p_limit integer, p_offset integer) to authenticated;

grant delete, insert, references, select, trigger, truncate, update on table public.element_templates to service_role;

grant select on table public.element_templates to authenticated;
