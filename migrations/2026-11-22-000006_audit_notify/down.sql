DROP TRIGGER audit_events_notify ON audit_events;
DROP FUNCTION fv_audit_events_notify();
