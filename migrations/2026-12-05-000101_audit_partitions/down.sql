-- Back to one unpartitioned table (as 000005 and 000006 left it), with every row kept.
-- Events already archived stay in the object store: they do not come back.
ALTER TABLE audit_events RENAME TO audit_events_partitioned;
ALTER TABLE audit_events_partitioned RENAME CONSTRAINT audit_events_pkey TO audit_events_partitioned_pkey;
ALTER TABLE audit_events_partitioned RENAME CONSTRAINT audit_events_organization_id_fkey TO audit_events_partitioned_organization_id_fkey;
ALTER SEQUENCE audit_events_id_seq RENAME TO audit_events_partitioned_id_seq;
ALTER INDEX audit_events_organization_id_id_idx RENAME TO audit_events_partitioned_organization_id_id_idx;
ALTER INDEX audit_events_entity_idx RENAME TO audit_events_partitioned_entity_idx;
ALTER INDEX audit_events_actor_user_id_id_idx RENAME TO audit_events_partitioned_actor_user_id_id_idx;
ALTER INDEX audit_events_created_at_idx RENAME TO audit_events_partitioned_created_at_idx;
ALTER INDEX audit_events_login_failed_email_idx RENAME TO audit_events_partitioned_login_failed_email_idx;
ALTER INDEX audit_events_login_failed_ip_idx RENAME TO audit_events_partitioned_login_failed_ip_idx;

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
    CONSTRAINT audit_events_pkey PRIMARY KEY (id),
    CONSTRAINT audit_events_organization_id_fkey FOREIGN KEY (organization_id)
        REFERENCES organizations (id) ON DELETE RESTRICT
);

COMMENT ON TABLE audit_events IS 'Append-only audit history; UPDATE, DELETE and TRUNCATE are refused by triggers. hash = SHA-256(prev_hash || canonical JSON of the event), chained per organization.';
COMMENT ON COLUMN audit_events.id IS 'Strictly increasing stream cursor.';
COMMENT ON COLUMN audit_events.organization_id IS 'NULL for platform events.';
COMMENT ON COLUMN audit_events.actor_user_id IS 'Acting user (no foreign key: history outlives the user row).';
COMMENT ON COLUMN audit_events.actor_api_key_id IS 'Acting API key (no foreign key: history outlives the key row).';

INSERT INTO audit_events
    (id, organization_id, actor_user_id, actor_api_key_id, action, entity_type, entity_id,
     old_values, new_values, ip_address, user_agent, request_id, created_at, prev_hash, hash)
OVERRIDING SYSTEM VALUE
SELECT id, organization_id, actor_user_id, actor_api_key_id, action, entity_type, entity_id,
       old_values, new_values, ip_address, user_agent, request_id, created_at, prev_hash, hash
  FROM audit_events_partitioned
 ORDER BY id;
SELECT setval(pg_get_serial_sequence('audit_events', 'id'), last_value, is_called)
  FROM audit_events_partitioned_id_seq;

DROP TABLE audit_events_partitioned;
DROP FUNCTION fv_audit_events_ensure_partitions(date, integer);

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

CREATE OR REPLACE FUNCTION fv_audit_events_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only'
        USING ERRCODE = 'P0001',
              DETAIL = format('%s on audit_events is not allowed', TG_OP);
END;
$$;

CREATE TRIGGER audit_events_append_only
    BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION fv_audit_events_append_only();
CREATE TRIGGER audit_events_no_truncate
    BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION fv_audit_events_append_only();
CREATE TRIGGER audit_events_notify
    AFTER INSERT ON audit_events
    FOR EACH ROW EXECUTE FUNCTION fv_audit_events_notify();
