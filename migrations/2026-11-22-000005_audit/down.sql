DROP TRIGGER audit_events_no_truncate ON audit_events;
DROP TRIGGER audit_events_append_only ON audit_events;
DROP FUNCTION fv_audit_events_append_only();
DROP TABLE audit_events;
