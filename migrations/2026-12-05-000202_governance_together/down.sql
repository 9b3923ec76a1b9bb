CREATE OR REPLACE FUNCTION fv_audit_chain_head(org uuid) RETURNS bytea
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    IF org IS NULL THEN
        RETURN (SELECT e.hash FROM public.audit_events e WHERE e.organization_id IS NULL
                ORDER BY e.id DESC LIMIT 1);
    END IF;
    RETURN (SELECT e.hash FROM public.audit_events e WHERE e.organization_id = org
            ORDER BY e.id DESC LIMIT 1);
END
$$;
REVOKE EXECUTE ON FUNCTION fv_audit_archive_month(uuid, date, text, bigint, bigint, bigint, bytea, bytea, bytea, bigint) FROM finvision_app;
REVOKE EXECUTE ON FUNCTION fv_audit_events_ensure_partitions(date, integer) FROM finvision_app;
DROP POLICY tenant ON audit_archives;
ALTER TABLE audit_archives DISABLE ROW LEVEL SECURITY;
REVOKE SELECT ON audit_archives FROM finvision_app;
