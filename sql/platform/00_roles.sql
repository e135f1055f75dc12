-- =========================================================================================
-- Supabase platform stand-in, part 1: roles, default grants, extensions.
--
-- Applied by videogen.schema only on a plain Postgres (never on a real Supabase project,
-- where all of this already exists). Mirrors supabase/postgres
-- migrations/db/init-scripts/00000000000000-initial-schema.sql.
--
-- Roles belong to the whole cluster, so every role is created only if it is missing: the
-- same cluster holds many databases (the dev database, test templates, test clones).
-- Not mirrored: supabase_admin and the other *_admin roles (their absence is how we tell a
-- plain Postgres from a real Supabase), and `postgres` stays a superuser locally.
-- =========================================================================================


-- -----------------------------------------------------------------------------------------
-- API roles
-- -----------------------------------------------------------------------------------------

/** anon: requests without a user (publishable / anon key). */
do $$
begin
    if not exists (select 1 from pg_roles where rolname = 'anon') then
        create role anon nologin noinherit;
    end if;
end $$;

/** authenticated: requests carrying a user's JWT. */
do $$
begin
    if not exists (select 1 from pg_roles where rolname = 'authenticated') then
        create role authenticated nologin noinherit;
    end if;
end $$;

/** service_role: trusted servers (secret / service_role key); bypasses row level security. */
do $$
begin
    if not exists (select 1 from pg_roles where rolname = 'service_role') then
        create role service_role nologin noinherit bypassrls;
    end if;
end $$;

/**
 * authenticator: the role PostgREST logs in as before switching to one of the three above.
 * Password `postgres`, as in the Supabase CLI's local stack (a well-known local default).
 */
do $$
begin
    if not exists (select 1 from pg_roles where rolname = 'authenticator') then
        create role authenticator login noinherit password 'postgres';
    end if;
end $$;

grant anon          to authenticator;
grant authenticated to authenticator;
grant service_role  to authenticator;

/** Short statement timeouts for the API roles, as Supabase sets them. */
alter role anon          set statement_timeout = '3s';
alter role authenticated set statement_timeout = '8s';


-- -----------------------------------------------------------------------------------------
-- Schema public: what Supabase grants by default
-- -----------------------------------------------------------------------------------------

/**
 * Every table, function and sequence created in public is reachable by the API roles;
 * row level security and explicit revokes are what keep data private.
 */
grant usage on schema public to postgres, anon, authenticated, service_role;

alter default privileges in schema public grant all on tables    to postgres, anon, authenticated, service_role;
alter default privileges in schema public grant all on functions to postgres, anon, authenticated, service_role;
alter default privileges in schema public grant all on sequences to postgres, anon, authenticated, service_role;

grant all on all tables    in schema public to anon, authenticated, service_role;
grant all on all functions in schema public to anon, authenticated, service_role;
grant all on all sequences in schema public to anon, authenticated, service_role;


-- -----------------------------------------------------------------------------------------
-- Extensions
-- -----------------------------------------------------------------------------------------

/** Extensions live in their own schema, usable by every API role. */
create schema if not exists extensions;

grant usage on schema extensions to postgres, anon, authenticated, service_role;

create extension if not exists pgcrypto    with schema extensions;
create extension if not exists "uuid-ossp" with schema extensions;

/** Unqualified extension functions (gen_random_bytes, crypt, …) resolve for postgres, as on Supabase. */
alter role postgres set search_path to "$user", public, extensions;
