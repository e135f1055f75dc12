-- =========================================================================================
-- Supabase platform stand-in, part 4: Supabase Vault (the `supabase_vault` extension, 0.3.x),
-- which every Supabase project has.
--
-- Same names, signatures and grants as on Supabase: the `vault.secrets` table whose `secret`
-- column holds only ciphertext (base64), `vault.create_secret`, `vault.update_secret`, the
-- `vault.decrypted_secrets` view, and the `vault._crypto_aead_det_*` functions behind them.
-- Supabase grants postgres and service_role `usage` on the schema, `select, delete` on the
-- table and the view and `execute` on create_secret, update_secret and
-- _crypto_aead_det_decrypt; anon and authenticated get nothing.
--
-- What differs is the cipher and where its key lives. Supabase's Vault encrypts with
-- libsodium (deterministic XChaCha20-Poly1305, the secret's id as additional data) under a
-- root key held outside the database. Plain Postgres has no libsodium, so here the message
-- is sealed with pgcrypto (OpenPGP symmetric encryption, AES-256, with its modification
-- check), the secret's id sealed inside it and checked on decryption (a ciphertext copied
-- onto another row does not decrypt), under a 32-byte root key drawn when this file is
-- applied and kept in `vault._local_root_key`: a table only its owner (postgres, who can
-- read everything locally anyway) may read, used only by the security-definer crypto
-- functions. anon, authenticated and service_role cannot read it; service_role reads
-- secrets through the view as on Supabase. It is a local key: a dump of the whole local
-- database (taken as postgres) holds key and ciphertext together, which is acceptable for
-- development data and is exactly what Supabase avoids by keeping its root key out of the
-- database.
--
-- Its own file, so that a local database made before the Vault existed gains it
-- (videogen_dev.migrations applies a stand-in file again when its marker table is missing).
-- =========================================================================================

create schema if not exists vault;
comment on schema vault is 'Supabase Vault (local stand-in): secrets encrypted at rest.';

/** The stand-in's root key: one row, only postgres reads it. */
create table if not exists vault._local_root_key (
    id  boolean primary key default true check (id),
    key bytea not null default extensions.gen_random_bytes(32)
);
insert into vault._local_root_key default values on conflict (id) do nothing;
revoke all on vault._local_root_key from public, anon, authenticated, service_role;

/** A fresh nonce (kept as Supabase keeps it; pgcrypto draws its own per message). */
create or replace function vault._crypto_aead_det_noncegen()
returns bytea
language sql
volatile
set search_path = ''
as $$ select extensions.gen_random_bytes(24) $$;

/** Seal `message` with the root key; `additional` (the secret's id) is bound to it. */
create or replace function vault._crypto_aead_det_encrypt(
    message bytea, additional bytea, key_id bigint, context bytea = 'pgsodium',
    nonce bytea = null
)
returns bytea
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
    v_key text := (select encode(k.key, 'hex') from vault._local_root_key k);
begin
    if v_key is null then
        raise exception 'the local Vault has no root key' using errcode = '39000';
    end if;
    return extensions.pgp_sym_encrypt_bytea(
        int4send(length(additional)) || additional || message,
        v_key || ':' || encode(coalesce(context, ''), 'hex') || ':' || key_id::text,
        'cipher-algo=aes256, s2k-mode=1');
end;
$$;

/** Open a sealed message; a wrong key, tampering or another row's `additional` raise. */
create or replace function vault._crypto_aead_det_decrypt(
    message bytea, additional bytea, key_id bigint, context bytea = 'pgsodium',
    nonce bytea = null
)
returns bytea
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
    v_key text := (select encode(k.key, 'hex') from vault._local_root_key k);
    v_plain bytea;
    v_length integer;
begin
    if message is null then
        return null;
    end if;
    v_plain := extensions.pgp_sym_decrypt_bytea(
        message, v_key || ':' || encode(coalesce(context, ''), 'hex') || ':' || key_id::text);
    v_length := ('x' || encode(substring(v_plain from 1 for 4), 'hex'))::bit(32)::integer;
    if substring(v_plain from 5 for v_length) is distinct from additional then
        raise exception 'this ciphertext belongs to another secret' using errcode = '22000';
    end if;
    return substring(v_plain from 5 + v_length);
end;
$$;

/** Table with encrypted `secret` column for storing sensitive information on disk. */
create table if not exists vault.secrets (
    id          uuid primary key default gen_random_uuid(),
    name        text,
    description text not null default '',
    secret      text not null,
    key_id      uuid,
    nonce       bytea default vault._crypto_aead_det_noncegen(),
    created_at  timestamptz not null default current_timestamp,
    updated_at  timestamptz not null default current_timestamp
);
comment on table vault.secrets is
    'Table with encrypted `secret` column for storing sensitive information on disk.';
create unique index if not exists secrets_name_idx on vault.secrets using btree (name)
    where name is not null;

create or replace view vault.decrypted_secrets as
select s.id,
       s.name,
       s.description,
       s.secret,
       convert_from(
           vault._crypto_aead_det_decrypt(
               message := decode(s.secret, 'base64'),
               additional := convert_to(s.id::text, 'utf8'),
               key_id := 0,
               context := 'pgsodium'::bytea,
               nonce := s.nonce),
           'utf8') as decrypted_secret,
       s.key_id,
       s.nonce,
       s.created_at,
       s.updated_at
  from vault.secrets s;

/** Store a secret; returns its id. The plaintext never stays in the row. */
create or replace function vault.create_secret(
    new_secret text, new_name text = null, new_description text = '', new_key_id uuid = null
)
returns uuid
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_id uuid := gen_random_uuid();
begin
    insert into vault.secrets (id, secret, name, description)
    values (v_id,
            encode(vault._crypto_aead_det_encrypt(
                message := convert_to(new_secret, 'utf8'),
                additional := convert_to(v_id::text, 'utf8'),
                key_id := 0,
                context := 'pgsodium'::bytea), 'base64'),
            new_name, coalesce(new_description, ''));
    return v_id;
end;
$$;

/** Replace a secret's value (and/or name, description); the old ciphertext is overwritten. */
create or replace function vault.update_secret(
    secret_id uuid, new_secret text = null, new_name text = null, new_description text = null,
    new_key_id uuid = null
)
returns void
language plpgsql
security definer
set search_path = ''
as $$
begin
    update vault.secrets s
       set secret = case when new_secret is null then s.secret
                         else encode(vault._crypto_aead_det_encrypt(
                                  message := convert_to(new_secret, 'utf8'),
                                  additional := convert_to(s.id::text, 'utf8'),
                                  key_id := 0,
                                  context := 'pgsodium'::bytea), 'base64') end,
           name = coalesce(new_name, s.name),
           description = coalesce(new_description, s.description),
           updated_at = now()
     where s.id = secret_id;
end;
$$;

-- -----------------------------------------------------------------------------------------
-- Grants, as Supabase sets them
-- -----------------------------------------------------------------------------------------

revoke all on schema vault from public, anon, authenticated;
revoke all on vault.secrets, vault.decrypted_secrets from public, anon, authenticated;
revoke all on function
    vault._crypto_aead_det_noncegen(),
    vault._crypto_aead_det_encrypt(bytea, bytea, bigint, bytea, bytea),
    vault._crypto_aead_det_decrypt(bytea, bytea, bigint, bytea, bytea),
    vault.create_secret(text, text, text, uuid),
    vault.update_secret(uuid, text, text, text, uuid)
    from public, anon, authenticated;

grant usage on schema vault to postgres with grant option;
grant usage on schema vault to service_role;
grant select, delete on vault.secrets, vault.decrypted_secrets to service_role;
grant execute on function
    vault.create_secret(text, text, text, uuid),
    vault.update_secret(uuid, text, text, text, uuid),
    vault._crypto_aead_det_decrypt(bytea, bytea, bigint, bytea, bytea)
    to service_role;
