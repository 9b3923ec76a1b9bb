-- Audit retention: an organization may keep only its last N months of events in the table
-- (at least 12; NULL keeps everything). Older whole months are archived to the object store as
-- JSON Lines by the archive job, recorded here, and removed from audit_events.
ALTER TABLE organizations
    ADD COLUMN audit_retention_months integer NULL
        CONSTRAINT organizations_audit_retention_months_check
        CHECK (audit_retention_months IS NULL OR audit_retention_months >= 12);
COMMENT ON COLUMN organizations.audit_retention_months IS 'Months of audit events kept in audit_events; older whole months are archived. NULL: kept forever.';

CREATE TABLE audit_archives (
    id              uuid        NOT NULL DEFAULT gen_random_uuid(),
    organization_id uuid        NOT NULL,
    month           date        NOT NULL,
    storage_key     text        NOT NULL,
    first_sequence  bigint      NOT NULL,
    last_sequence   bigint      NOT NULL,
    event_count     bigint      NOT NULL,
    prev_hash       bytea       NULL,
    last_hash       bytea       NOT NULL,
    file_sha256     bytea       NOT NULL,
    size_bytes      bigint      NOT NULL,
    archived_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT audit_archives_pkey PRIMARY KEY (id),
    CONSTRAINT audit_archives_organization_id_fkey FOREIGN KEY (organization_id)
        REFERENCES organizations (id) ON DELETE RESTRICT,
    -- Also the index of the foreign key.
    CONSTRAINT audit_archives_organization_id_month_key UNIQUE (organization_id, month),
    CONSTRAINT audit_archives_sequences_check
        CHECK (first_sequence <= last_sequence AND event_count > 0)
);
COMMENT ON TABLE audit_archives IS 'One row per archived month of an organization''s audit events: the object-store file, its sequences, and the chain hashes around it. verifyAuditChain starts from the last row''s last_hash.';
COMMENT ON COLUMN audit_archives.prev_hash IS 'The hash the first archived event follows (NULL: the start of the chain).';
COMMENT ON COLUMN audit_archives.last_hash IS 'The hash of the last archived event: the first event left in audit_events follows it.';

-- The database half of archiving one month, in the caller's transaction (the caller has
-- written and verified the file): record the archive, then
-- remove exactly those events. It refuses a range that does not continue the last archive or
-- whose last hash is not the stored one. SECURITY DEFINER, owned by the table owner: with
-- separate roles, the application role gets EXECUTE on this function and no DELETE on
-- audit_events, and the append-only trigger lets only the owner's flagged DELETE through.
CREATE FUNCTION fv_audit_archive_month(
    p_organization_id uuid, p_month date, p_storage_key text,
    p_first_sequence bigint, p_last_sequence bigint, p_event_count bigint,
    p_prev_hash bytea, p_last_hash bytea, p_file_sha256 bytea, p_size_bytes bigint)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
DECLARE
    removed bigint;
BEGIN
    IF EXISTS (SELECT 1 FROM audit_events
                WHERE organization_id = p_organization_id AND id < p_first_sequence) THEN
        RAISE EXCEPTION 'audit archive: older events of % remain before %',
            p_organization_id, p_first_sequence;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM audit_events
                    WHERE organization_id = p_organization_id AND id = p_last_sequence
                      AND hash = p_last_hash) THEN
        RAISE EXCEPTION 'audit archive: event % of % does not have the archived hash',
            p_last_sequence, p_organization_id;
    END IF;
    INSERT INTO audit_archives
        (organization_id, month, storage_key, first_sequence, last_sequence, event_count,
         prev_hash, last_hash, file_sha256, size_bytes)
    VALUES (p_organization_id, p_month, p_storage_key, p_first_sequence, p_last_sequence,
            p_event_count, p_prev_hash, p_last_hash, p_file_sha256, p_size_bytes);
    PERFORM set_config('fv.audit_archive', 'on', true);
    DELETE FROM audit_events
     WHERE organization_id = p_organization_id
       AND id BETWEEN p_first_sequence AND p_last_sequence;
    GET DIAGNOSTICS removed = ROW_COUNT;
    PERFORM set_config('fv.audit_archive', 'off', true);
    IF removed <> p_event_count THEN
        RAISE EXCEPTION 'audit archive: % events of % in the file, % in the table',
            p_event_count, p_organization_id, removed;
    END IF;
    RETURN removed;
END;
$$;
