DROP FUNCTION fv_audit_archive_month(uuid, date, text, bigint, bigint, bigint, bytea, bytea, bytea, bigint);
DROP TABLE audit_archives;
ALTER TABLE organizations DROP COLUMN audit_retention_months;
