-- =========================================================================================
-- Supabase platform stand-in, part 2: the auth schema.
--
-- Mirrors what supabase/auth (GoTrue) migrations leave behind that a backend touches:
-- auth.users with its current columns, the claim helpers auth.uid(), auth.role(),
-- auth.email(), auth.jwt() exactly as GoTrue defines them (20240624145325), and the tables
-- the local Auth API (videogen_dev.auth_api) keeps sessions in: auth.identities,
-- auth.sessions, auth.refresh_tokens, auth.mfa_amr_claims, with GoTrue's column names.
-- MFA factors, SSO, flow state, one-time tokens and the rest are not mirrored.
-- No auth.schema_migrations table on purpose: its presence means "real Supabase".
-- =========================================================================================

create schema if not exists auth;

/** The API roles may call the helpers below; the tables stay closed to them. */
grant usage on schema auth to anon, authenticated, service_role;


-- -----------------------------------------------------------------------------------------
-- auth.users
-- -----------------------------------------------------------------------------------------

/** Auth: Stores user login data within a secure schema. */
create table if not exists auth.users (
    instance_id                 uuid,
    id                          uuid not null primary key,
    aud                         varchar(255),
    "role"                      varchar(255),
    email                       varchar(255),
    encrypted_password          varchar(255),
    email_confirmed_at          timestamptz,
    invited_at                  timestamptz,
    confirmation_token          varchar(255),
    confirmation_sent_at        timestamptz,
    recovery_token              varchar(255),
    recovery_sent_at            timestamptz,
    email_change_token_new      varchar(255),
    email_change                varchar(255),
    email_change_sent_at        timestamptz,
    last_sign_in_at             timestamptz,
    raw_app_meta_data           jsonb,
    raw_user_meta_data          jsonb,
    is_super_admin              boolean,
    created_at                  timestamptz,
    updated_at                  timestamptz,
    phone                       text default null unique,
    phone_confirmed_at          timestamptz,
    phone_change                text default '',
    phone_change_token          varchar(255) default '',
    phone_change_sent_at        timestamptz,
    confirmed_at                timestamptz generated always as (least(email_confirmed_at, phone_confirmed_at)) stored,
    email_change_token_current  varchar(255) default '',
    email_change_confirm_status smallint default 0 check (email_change_confirm_status >= 0 and email_change_confirm_status <= 2),
    banned_until                timestamptz,
    reauthentication_token      varchar(255) default '',
    reauthentication_sent_at    timestamptz,
    is_sso_user                 boolean not null default false,
    deleted_at                  timestamptz,
    is_anonymous                boolean not null default false
);

comment on table auth.users is 'Auth: Stores user login data within a secure schema.';
comment on column auth.users.is_sso_user is 'Auth: Set this column to true when the account comes from SSO. These accounts can have duplicate emails.';

create unique index if not exists users_email_partial_key on auth.users (email) where (is_sso_user = false);
create index if not exists users_instance_id_idx on auth.users (instance_id);
create index if not exists users_instance_id_email_idx on auth.users (instance_id, lower((email)::text));
create index if not exists users_is_anonymous_idx on auth.users (is_anonymous);

/** Row level security on, no policies: only the owner and BYPASSRLS roles read it. */
alter table auth.users enable row level security;


-- -----------------------------------------------------------------------------------------
-- Claim helpers (read what PostgREST / our scoped client put in request.jwt.claims)
-- -----------------------------------------------------------------------------------------

/** The user id (`sub` claim) of the current request, or null. */
create or replace function auth.uid()
    returns uuid
    language sql stable
    set search_path to ''
as $$
    select
        coalesce(
            nullif(current_setting('request.jwt.claim.sub', true), ''),
            (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
        )::uuid
$$;

/** The `role` claim of the current request (anon, authenticated, service_role), or null. */
create or replace function auth.role()
    returns text
    language sql stable
    set search_path to ''
as $$
    select
        coalesce(
            nullif(current_setting('request.jwt.claim.role', true), ''),
            (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role')
        )::text
$$;

/** The `email` claim of the current request, or null. */
create or replace function auth.email()
    returns text
    language sql stable
    set search_path to ''
as $$
    select
        coalesce(
            nullif(current_setting('request.jwt.claim.email', true), ''),
            (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'email')
        )::text
$$;

/** All claims of the current request as jsonb, or null. */
create or replace function auth.jwt()
    returns jsonb
    language sql stable
    set search_path to ''
as $$
    select
        coalesce(
            nullif(current_setting('request.jwt.claim', true), ''),
            nullif(current_setting('request.jwt.claims', true), '')
        )::jsonb
$$;

comment on function auth.uid()   is 'Deprecated. Use auth.jwt() -> ''sub'' instead.';
comment on function auth.role()  is 'Deprecated. Use auth.jwt() -> ''role'' instead.';
comment on function auth.email() is 'Deprecated. Use auth.jwt() -> ''email'' instead.';
