-- audit_events partitioned by month (range on created_at), so that a month of history is one
-- table: scans by time prune to it, and an archived month leaves an empty table that can be
-- dropped without touching the others. The server creates partitions ahead of time
-- (`fv_audit_events_ensure_partitions`, called at start-up and daily); the default partition
-- is the safety net that keeps inserts working if it did not.
--
-- Everything else stays as it was: `id` is still the identity (the global cursor; sequence
-- order per organization is commit order under the chain lock), the indexes, the append-only
-- triggers, the NOTIFY trigger and the hash chain. A partitioned table's primary key must
-- include the partition key: it is (id, created_at); the identity alone keeps ids unique.

ALTER TABLE audit_events RENAME TO audit_events_unpartitioned;
ALTER TABLE audit_events_unpartitioned RENAME CONSTRAINT audit_events_pkey TO audit_events_unpartitioned_pkey;
ALTER TABLE audit_events_unpartitioned RENAME CONSTRAINT audit_events_organization_id_fkey TO audit_events_unpartitioned_organization_id_fkey;
ALTER SEQUENCE audit_events_id_seq RENAME TO audit_events_unpartitioned_id_seq;
DROP INDEX audit_events_organization_id_id_idx, audit_events_entity_idx,
    audit_events_actor_user_id_id_idx, audit_events_created_at_idx,
    audit_events_login_failed_email_idx, audit_events_login_failed_ip_idx;
DROP TRIGGER audit_events_notify ON audit_events_unpartitioned;
DROP TRIGGER audit_events_append_only ON audit_events_unpartitioned;
DROP TRIGGER audit_events_no_truncate ON audit_events_unpartitioned;

CREATE TABLE audit_events (
    id               bigint      GENERATED ALWAYS AS IDENTITY,
    organization_id  uuid        NULL,
    actor_user_id    uuid        NULL,
    actor_api_key_id uuid        NULL,
    action           text        NOT NULL,
    entity_type      text        NOT NULL,
    entity_id        uuid        NULL,
    old_values       jsonb       NULL,
    new_values       jsonb       NULL,
    ip_address       inet        NULL,
    user_agent       text        NULL,
    request_id       text        NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    prev_hash        bytea       NULL,
    hash             bytea       NOT NULL,
    CONSTRAINT audit_events_pkey PRIMARY KEY (id, created_at),
    CONSTRAINT audit_events_organization_id_fkey FOREIGN KEY (organization_id)
        REFERENCES organizations (id) ON DELETE RESTRICT
) PARTITION BY RANGE (created_at);

COMMENT ON TABLE audit_events IS 'Append-only audit history, partitioned by month of created_at; UPDATE, DELETE and TRUNCATE are refused by triggers (DELETE allowed only to the archive job, fv_audit_archive_month). hash = SHA-256(prev_hash || canonical JSON of the event), chained per organization.';
COMMENT ON COLUMN audit_events.id IS 'Strictly increasing stream cursor.';
COMMENT ON COLUMN audit_events.organization_id IS 'NULL for platform events.';
COMMENT ON COLUMN audit_events.actor_user_id IS 'Acting user (no foreign key: history outlives the user row).';
COMMENT ON COLUMN audit_events.actor_api_key_id IS 'Acting API key (no foreign key: history outlives the key row).';

CREATE INDEX audit_events_organization_id_id_idx ON audit_events (organization_id, id);
CREATE INDEX audit_events_entity_idx ON audit_events (entity_type, entity_id);
CREATE INDEX audit_events_actor_user_id_id_idx ON audit_events (actor_user_id, id);
CREATE INDEX audit_events_created_at_idx ON audit_events (created_at);
CREATE INDEX audit_events_login_failed_email_idx
    ON audit_events ((new_values ->> 'email'), created_at)
    WHERE action = 'auth.login_failed';
CREATE INDEX audit_events_login_failed_ip_idx
    ON audit_events (ip_address, created_at)
    WHERE action = 'auth.login_failed';

CREATE TABLE audit_events_default PARTITION OF audit_events DEFAULT;

-- Removal of events is the archive job's alone: it runs `fv_audit_archive_month`, which sets
-- `fv.audit_archive` for its own transaction and runs as the table's owner. Anyone else's
-- DELETE (even one that sets the flag) is refused unless it is the owner; UPDATE and TRUNCATE
-- are refused always.
CREATE OR REPLACE FUNCTION fv_audit_events_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE'
       AND current_setting('fv.audit_archive', true) = 'on'
       AND pg_has_role(current_user,
                       (SELECT relowner FROM pg_class WHERE oid = 'audit_events'::regclass),
                       'USAGE') THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit_events is append-only'
        USING ERRCODE = 'P0001',
              DETAIL = format('%s on audit_events is not allowed', TG_OP);
END;
$$;

-- Row triggers on the parent are cloned onto every partition; statement (TRUNCATE) triggers
-- are not, so each partition gets its own.
CREATE TRIGGER audit_events_append_only
    BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION fv_audit_events_append_only();
CREATE TRIGGER audit_events_no_truncate
    BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION fv_audit_events_append_only();
CREATE TRIGGER audit_events_no_truncate
    BEFORE TRUNCATE ON audit_events_default
    FOR EACH STATEMENT EXECUTE FUNCTION fv_audit_events_append_only();

-- Create the monthly partitions of `months` months from the month of `from` (UTC) that do not
-- exist yet; returns how many were created. A month that already has rows in the default
-- partition is left there (a warning): moving them would need a DELETE, and they are served
-- and archived from the default partition just the same. SECURITY DEFINER so that partitions
-- belong to the table's owner whoever runs it (the application role may EXECUTE it).
CREATE FUNCTION fv_audit_events_ensure_partitions(p_from date, p_months integer)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = public, pg_temp
SET lock_timeout = '5s'
AS $$
DECLARE
    month date := date_trunc('month', p_from)::date;
    name text;
    low timestamptz;
    high timestamptz;
    created integer := 0;
BEGIN
    -- Instances that start together do not race on CREATE TABLE.
    PERFORM pg_advisory_xact_lock(4996056094327370001);
    FOR i IN 1 .. p_months LOOP
        name := format('audit_events_p%s', to_char(month, 'YYYY_MM'));
        low := month::timestamp AT TIME ZONE 'UTC';
        high := (month + interval '1 month')::timestamp AT TIME ZONE 'UTC';
        IF to_regclass(name) IS NULL THEN
            IF EXISTS (SELECT 1 FROM audit_events_default
                        WHERE created_at >= low AND created_at < high) THEN
                RAISE WARNING 'audit_events: % stays in the default partition (it has rows)', name;
            ELSE
                EXECUTE format('CREATE TABLE %I PARTITION OF audit_events FOR VALUES FROM (%L) TO (%L)',
                               name, low, high);
                EXECUTE format('CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON %I '
                               'FOR EACH STATEMENT EXECUTE FUNCTION fv_audit_events_append_only()', name);
                created := created + 1;
            END IF;
        END IF;
        month := (month + interval '1 month')::date;
    END LOOP;
    RETURN created;
END;
$$;

-- Partitions for the existing history and the months ahead, then the rows, in id order.
SELECT fv_audit_events_ensure_partitions(
    coalesce((SELECT min(created_at) FROM audit_events_unpartitioned), now())::date,
    (SELECT (extract(year FROM age(date_trunc('month', now()),
                                   date_trunc('month', coalesce(min(created_at), now())))) * 12
           + extract(month FROM age(date_trunc('month', now()),
                                    date_trunc('month', coalesce(min(created_at), now())))))::integer + 4
       FROM audit_events_unpartitioned));

INSERT INTO audit_events
    (id, organization_id, actor_user_id, actor_api_key_id, action, entity_type, entity_id,
     old_values, new_values, ip_address, user_agent, request_id, created_at, prev_hash, hash)
OVERRIDING SYSTEM VALUE
SELECT id, organization_id, actor_user_id, actor_api_key_id, action, entity_type, entity_id,
       old_values, new_values, ip_address, user_agent, request_id, created_at, prev_hash, hash
  FROM audit_events_unpartitioned
 ORDER BY id;

-- The identity goes on from where the old one stopped (ids of rolled-back inserts included).
SELECT setval(pg_get_serial_sequence('audit_events', 'id'), last_value, is_called)
  FROM audit_events_unpartitioned_id_seq;

DROP TABLE audit_events_unpartitioned;

-- Published after commit, as before (000006); created after the copy, which is not news.
CREATE TRIGGER audit_events_notify
    AFTER INSERT ON audit_events
    FOR EACH ROW EXECUTE FUNCTION fv_audit_events_notify();
