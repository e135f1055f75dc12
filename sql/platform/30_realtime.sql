-- =========================================================================================
-- Supabase platform stand-in, part 4: Realtime broadcast from the database.
--
-- Mirrors supabase/realtime tenant migrations (squashed 20260420000000, default partition
-- 20260604120000): realtime.messages, realtime.topic(), realtime.send() and
-- realtime.broadcast_changes(), plus the empty supabase_realtime publication that
-- supabase/postgres creates. On Supabase the Realtime server reads realtime.messages
-- through logical replication and pushes each row to the topic's subscribers; locally the
-- dev server's Realtime (videogen_dev.realtime_api) does the same. Nothing is added to
-- the sending transaction: no NOTIFY, whose commit-time lock would serialise every job
-- change.
-- =========================================================================================

create schema if not exists realtime;

grant usage on schema realtime to postgres, anon, authenticated, service_role;


-- -----------------------------------------------------------------------------------------
-- realtime.messages
-- -----------------------------------------------------------------------------------------

/**
 * Broadcast messages, partitioned by day on Supabase (the Realtime server creates the daily
 * partitions); locally everything lands in the default partition.
 */
create table if not exists realtime.messages (
    topic       text not null,
    extension   text not null,
    payload     jsonb,
    event       text,
    private     boolean default false,
    updated_at  timestamp without time zone not null default now(),
    inserted_at timestamp without time zone not null default now(),
    id          uuid not null default gen_random_uuid(),
    constraint messages_pkey primary key (id, inserted_at)
) partition by range (inserted_at);

create table if not exists realtime.messages_default partition of realtime.messages default;

create index if not exists messages_inserted_at_topic_index
    on realtime.messages using btree (inserted_at desc, topic)
    where extension = 'broadcast' and private is true;

/**
 * Row level security on, no policies: who may receive or send on a private topic is
 * decided by policies on this table written in migrations (see realtime.topic()).
 */
alter table realtime.messages enable row level security;

grant select, insert, update on realtime.messages to postgres, anon, authenticated, service_role;


-- -----------------------------------------------------------------------------------------
-- Functions
-- -----------------------------------------------------------------------------------------

/** The topic being authorised or sent to; policies on realtime.messages compare against it. */
create or replace function realtime.topic()
    returns text
    language sql stable
as $$
    select nullif(current_setting('realtime.topic', true), '')::text;
$$;

/**
 * Broadcast `payload` as `event` on `topic` (private topics need an authorised subscriber).
 * As on Supabase it runs with the caller's rights, so a trigger calling it from a user's
 * request should be `security definer`; a failure is a WARNING, never an error, so a
 * broadcast can not undo the change that caused it.
 */
create or replace function realtime.send(payload jsonb, event text, topic text, private boolean default true)
    returns void
    language plpgsql
as $$
declare
    generated_id uuid;
    final_payload jsonb;
begin
    begin
        generated_id := gen_random_uuid();
        if payload ? 'id' then
            final_payload := payload;
        else
            final_payload := jsonb_set(payload, '{id}', to_jsonb(generated_id));
        end if;
        execute format('set local realtime.topic to %L', topic);
        -- As on Supabase, the row is the message: the Realtime server reads it from the
        -- table. No NOTIFY: it would serialise every committing transaction on one lock.
        insert into realtime.messages (id, payload, event, topic, private, extension)
        values (generated_id, final_payload, event, topic, private, 'broadcast');
    exception
        when others then
            raise warning 'ErrorSendingBroadcastMessage: %', sqlerrm;
    end;
end;
$$;

/**
 * Broadcast a row change from a trigger:
 *     perform realtime.broadcast_changes('topic', tg_op, tg_op, tg_table_name,
 *                                        tg_table_schema, new, old);
 * The payload is {old_record, record, operation, table, schema}.
 */
create or replace function realtime.broadcast_changes(
    topic_name text,
    event_name text,
    operation text,
    table_name text,
    table_schema text,
    new record,
    old record,
    level text default 'ROW'
)
    returns void
    language plpgsql
as $$
declare
    row_data jsonb := '{}'::jsonb;
begin
    if level = 'STATEMENT' then
        raise exception 'function can only be triggered for each row, not for each statement';
    end if;
    if operation = 'INSERT' or operation = 'UPDATE' or operation = 'DELETE' then
        row_data := jsonb_build_object(
            'old_record', old, 'record', new, 'operation', operation,
            'table', table_name, 'schema', table_schema
        );
        perform realtime.send(row_data, event_name, topic_name);
    else
        raise exception 'Unexpected operation type: %', operation;
    end if;
exception
    when others then
        raise exception 'Failed to process the row: %', sqlerrm;
end;
$$;


-- -----------------------------------------------------------------------------------------
-- Publication for postgres_changes
-- -----------------------------------------------------------------------------------------

/** Empty at first; migrations add tables with `alter publication supabase_realtime add table …`. */
do $$
begin
    if not exists (select 1 from pg_publication where pubname = 'supabase_realtime') then
        create publication supabase_realtime;
    end if;
end $$;
