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
-- Identities, sessions, refresh tokens (GoTrue's tables, as its migrations leave them)
-- -----------------------------------------------------------------------------------------

do $$ begin
    create type auth.aal_level as enum ('aal1', 'aal2', 'aal3');
exception when duplicate_object then null;
end $$;

/** Auth: Stores identities associated to a user. */
create table if not exists auth.identities (
    provider_id     text not null,
    user_id         uuid not null references auth.users (id) on delete cascade,
    identity_data   jsonb not null,
    provider        text not null,
    last_sign_in_at timestamptz,
    created_at      timestamptz,
    updated_at      timestamptz,
    email           text generated always as (lower(identity_data ->> 'email')) stored,
    id              uuid not null default gen_random_uuid() primary key,
    constraint identities_provider_id_provider_unique unique (provider_id, provider)
);
comment on table auth.identities is 'Auth: Stores identities associated to a user.';
create index if not exists identities_user_id_idx on auth.identities (user_id);
create index if not exists identities_email_idx on auth.identities (email text_pattern_ops);
alter table auth.identities enable row level security;

/** Auth: Stores session data associated to a user. */
create table if not exists auth.sessions (
    id           uuid not null primary key,
    user_id      uuid not null references auth.users (id) on delete cascade,
    created_at   timestamptz,
    updated_at   timestamptz,
    factor_id    uuid,
    aal          auth.aal_level,
    not_after    timestamptz,
    refreshed_at timestamp without time zone,
    user_agent   text,
    ip           inet,
    tag          text
);
comment on table auth.sessions is 'Auth: Stores session data associated to a user.';
comment on column auth.sessions.not_after is 'Auth: Not after is a nullable column that contains a timestamp after which the session should be regarded as expired.';
create index if not exists sessions_user_id_idx on auth.sessions (user_id);
create index if not exists user_id_created_at_idx on auth.sessions (user_id, created_at);
create index if not exists sessions_not_after_idx on auth.sessions (not_after desc);
alter table auth.sessions enable row level security;

/** Auth: Store of tokens used to refresh JWT tokens once they expire. */
create table if not exists auth.refresh_tokens (
    instance_id uuid,
    id          bigserial not null primary key,
    token       varchar(255),
    user_id     varchar(255),
    revoked     boolean,
    created_at  timestamptz,
    updated_at  timestamptz,
    parent      varchar(255),
    session_id  uuid references auth.sessions (id) on delete cascade,
    constraint refresh_tokens_token_unique unique (token)
);
comment on table auth.refresh_tokens is 'Auth: Store of tokens used to refresh JWT tokens once they expire.';
create index if not exists refresh_tokens_instance_id_idx on auth.refresh_tokens (instance_id);
create index if not exists refresh_tokens_instance_id_user_id_idx on auth.refresh_tokens (instance_id, user_id);
create index if not exists refresh_tokens_parent_idx on auth.refresh_tokens (parent);
create index if not exists refresh_tokens_session_id_revoked_idx on auth.refresh_tokens (session_id, revoked);
create index if not exists refresh_tokens_updated_at_idx on auth.refresh_tokens (updated_at desc);
alter table auth.refresh_tokens enable row level security;

/** auth: stores authenticator method reference claims for multi factor authentication */
create table if not exists auth.mfa_amr_claims (
    session_id            uuid not null references auth.sessions (id) on delete cascade,
    created_at            timestamptz not null,
    updated_at            timestamptz not null,
    authentication_method text not null,
    id                    uuid not null primary key,
    constraint mfa_amr_claims_session_id_authentication_method_pkey unique (session_id, authentication_method)
);
comment on table auth.mfa_amr_claims is 'auth: stores authenticator method reference claims for multi factor authentication';
alter table auth.mfa_amr_claims enable row level security;


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
