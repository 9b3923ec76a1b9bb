-- Audit history: append-only, hash-chained event stream.

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
    -- No cascade: history outlives the organization, which therefore cannot be hard-deleted
    -- once it has history (organizations are soft-deleted).
    CONSTRAINT audit_events_organization_id_fkey FOREIGN KEY (organization_id)
        REFERENCES organizations (id) ON DELETE RESTRICT
    -- actor_user_id / actor_api_key_id deliberately have no foreign key: the table is
    -- append-only, so ON DELETE SET NULL (an UPDATE) is impossible, and the actor must stay
    -- recorded even if the user or key row is removed.
);

COMMENT ON TABLE audit_events IS 'Append-only audit history; UPDATE, DELETE and TRUNCATE are refused by triggers. hash = SHA-256(prev_hash || canonical JSON of the event), chained per organization.';
COMMENT ON COLUMN audit_events.id IS 'Strictly increasing stream cursor.';
COMMENT ON COLUMN audit_events.organization_id IS 'NULL for platform events.';
COMMENT ON COLUMN audit_events.actor_user_id IS 'Acting user (no foreign key: history outlives the user row).';
COMMENT ON COLUMN audit_events.actor_api_key_id IS 'Acting API key (no foreign key: history outlives the key row).';

-- organization_id FK is covered by (organization_id, id).
CREATE INDEX audit_events_organization_id_id_idx ON audit_events (organization_id, id);
CREATE INDEX audit_events_entity_idx ON audit_events (entity_type, entity_id);
CREATE INDEX audit_events_actor_user_id_id_idx ON audit_events (actor_user_id, id);
CREATE INDEX audit_events_created_at_idx ON audit_events (created_at);
-- Login rate limiting: recent failures per email and per client address.
CREATE INDEX audit_events_login_failed_email_idx
    ON audit_events ((new_values ->> 'email'), created_at)
    WHERE action = 'auth.login_failed';
CREATE INDEX audit_events_login_failed_ip_idx
    ON audit_events (ip_address, created_at)
    WHERE action = 'auth.login_failed';

CREATE FUNCTION fv_audit_events_append_only() RETURNS trigger
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
