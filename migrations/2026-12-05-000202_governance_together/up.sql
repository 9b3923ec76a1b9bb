-- The application role and row-level security (000200, 000201) meet the audit archive (000101,
-- 000102): the role reads what was archived, runs the two owner functions, and the chain's head
-- goes on from the last archived hash when every event of an organization was archived.

-- What was archived, to the organization's members (`Organization.auditRetention`); rows are
-- written only by `fv_audit_archive_month`, which runs as the owner.
GRANT SELECT ON audit_archives TO finvision_app;
ALTER TABLE audit_archives ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON audit_archives FOR SELECT TO finvision_app
    USING ((SELECT fv_sees_all()) OR organization_id = ANY ((SELECT fv_caller_orgs())::uuid[]));

-- Partitions ahead of time and the archive's removal: the owner's work, through its functions.
REVOKE ALL ON FUNCTION fv_audit_events_ensure_partitions(date, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION fv_audit_events_ensure_partitions(date, integer) TO finvision_app;
REVOKE ALL ON FUNCTION fv_audit_archive_month(uuid, date, text, bigint, bigint, bigint, bytea, bytea, bytea, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION fv_audit_archive_month(uuid, date, text, bigint, bigint, bigint, bytea, bytea, bytea, bigint) TO finvision_app;

-- One snapshot for both reads (a STABLE function): the archive records its row and removes its
-- events in one transaction, so this sees either the events or the row, never neither.
CREATE OR REPLACE FUNCTION fv_audit_chain_head(org uuid) RETURNS bytea
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    head bytea;
BEGIN
    IF org IS NULL THEN
        RETURN (SELECT e.hash FROM public.audit_events e WHERE e.organization_id IS NULL
                ORDER BY e.id DESC LIMIT 1);
    END IF;
    head := (SELECT e.hash FROM public.audit_events e WHERE e.organization_id = org
             ORDER BY e.id DESC LIMIT 1);
    IF head IS NULL THEN
        head := (SELECT a.last_hash FROM public.audit_archives a WHERE a.organization_id = org
                 ORDER BY a.last_sequence DESC LIMIT 1);
    END IF;
    RETURN head;
END
$$;
