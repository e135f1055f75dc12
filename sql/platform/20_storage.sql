-- =========================================================================================
-- Supabase platform stand-in, part 3: the storage schema.
--
-- Mirrors supabase/storage tenant migrations (0002-storage-schema and later column
-- additions, 0036 for the path helpers): the two tables a backend and its policies touch,
-- and the path helpers policies are written with. The Storage server's own machinery
-- (migrations table, prefixes, multipart uploads, search functions) is not mirrored.
-- =========================================================================================

create schema if not exists storage;

/**
 * Storage's default grants (0002-storage-schema): the API roles reach everything, policies
 * decide per row. 25_storage_unused_grants.sql then scopes anon and authenticated down.
 */
grant usage on schema storage to postgres, anon, authenticated, service_role;

alter default privileges in schema storage grant all on tables    to postgres, anon, authenticated, service_role;
alter default privileges in schema storage grant all on functions to postgres, anon, authenticated, service_role;
alter default privileges in schema storage grant all on sequences to postgres, anon, authenticated, service_role;


-- -----------------------------------------------------------------------------------------
-- Tables
-- -----------------------------------------------------------------------------------------

/** One row per bucket; `public` buckets are readable without a policy through the API. */
create table if not exists storage.buckets (
    id                 text not null primary key,
    name               text not null,
    owner              uuid,
    created_at         timestamptz default now(),
    updated_at         timestamptz default now(),
    public             boolean default false,
    avif_autodetection boolean default false,
    file_size_limit    bigint,
    allowed_mime_types text[],
    owner_id           text
);

create unique index if not exists bname on storage.buckets using btree (name);

comment on column storage.buckets.owner is 'Field is deprecated, use owner_id instead';

/** One row per stored file; `name` is the path inside the bucket ("user-id/jobs/x.mp4"). */
create table if not exists storage.objects (
    id               uuid not null default gen_random_uuid() primary key,
    bucket_id        text,
    name             text,
    owner            uuid,
    created_at       timestamptz default now(),
    updated_at       timestamptz default now(),
    last_accessed_at timestamptz default now(),
    metadata         jsonb,
    path_tokens      text[] generated always as (string_to_array(name, '/')) stored,
    version          text,
    owner_id         text,
    user_metadata    jsonb,
    constraint "objects_bucketId_fkey" foreign key (bucket_id) references storage.buckets (id)
);

create unique index if not exists bucketid_objname on storage.objects using btree (bucket_id, name);
create index if not exists name_prefix_search on storage.objects using btree (name text_pattern_ops);

comment on column storage.objects.owner is 'Field is deprecated, use owner_id instead';

/** Row level security on both tables, no policies: access is granted by migrations. */
alter table storage.buckets enable row level security;
alter table storage.objects enable row level security;

/** 0046-buckets-objects-grants; 25_storage_unused_grants.sql takes back what RLS cannot filter. */
grant all on storage.buckets, storage.objects to anon, authenticated, service_role;


-- -----------------------------------------------------------------------------------------
-- Path helpers (used in storage policies)
-- -----------------------------------------------------------------------------------------

/** The folders of an object path: 'a/b/c.mp4' -> {a,b}. */
create or replace function storage.foldername(name text)
    returns text[]
    language plpgsql immutable
as $$
declare
    _parts text[];
begin
    select string_to_array(name, '/') into _parts;
    return _parts[1 : array_length(_parts, 1) - 1];
end
$$;

/** The last segment of an object path: 'a/b/c.mp4' -> 'c.mp4'. */
create or replace function storage.filename(name text)
    returns text
    language plpgsql immutable
as $$
declare
    _parts text[];
begin
    select string_to_array(name, '/') into _parts;
    return _parts[array_length(_parts, 1)];
end
$$;

/** The extension of an object path: 'a/b/c.mp4' -> 'mp4'. */
create or replace function storage.extension(name text)
    returns text
    language plpgsql immutable
as $$
declare
    _parts text[];
    _filename text;
begin
    select string_to_array(name, '/') into _parts;
    select _parts[array_length(_parts, 1)] into _filename;
    return reverse(split_part(reverse(_filename), '.', 1));
end
$$;

/** Keeps objects.updated_at current on every update. */
create or replace function storage.update_updated_at_column()
    returns trigger
    language plpgsql
as $$
begin
    new.updated_at = now();
    return new;
end;
$$;

drop trigger if exists update_objects_updated_at on storage.objects;
create trigger update_objects_updated_at
    before update on storage.objects
    for each row execute function storage.update_updated_at_column();

grant execute on all functions in schema storage to anon, authenticated, service_role;
