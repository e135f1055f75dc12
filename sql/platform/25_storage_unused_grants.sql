-- =========================================================================================
-- Supabase platform stand-in, part 3b: the storage tables' grants scoped down to row-level
-- reads and writes.
--
-- Mirrors supabase/storage tenant migration 0073-revoke-grants-to-unused-operations: anon
-- and authenticated keep select, insert, update and delete on storage.objects and
-- storage.buckets (what policies filter) and lose truncate, references and trigger (and
-- maintain on Postgres 17+), which no policy filters and Storage never uses; the storage
-- schema's default privileges for tables lose them too. service_role keeps all. Upstream
-- also revokes them on buckets_analytics and scopes buckets_vectors and vector_indexes to
-- select; the stand-in has none of those tables.
--
-- Its own file, as upstream's own migration, so that a local database made before it gains
-- it (videogen_dev.migrations applies it again while anon can still truncate objects).
-- =========================================================================================

do $$
begin
    revoke truncate, references, trigger on storage.objects, storage.buckets
        from anon, authenticated;
    alter default privileges in schema storage
        revoke truncate, references, trigger on tables from anon, authenticated;

    -- maintain exists from Postgres 17 on; as text, so older servers never parse it.
    if current_setting('server_version_num')::int >= 170000 then
        execute 'revoke maintain on storage.objects, storage.buckets from anon, authenticated';
        execute 'alter default privileges in schema storage'
            ' revoke maintain on tables from anon, authenticated';
    end if;
end
$$;
