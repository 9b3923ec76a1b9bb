-- Publish every audit event to LISTENers on channel `fv_audit` as '<organization_id>:<id>'
-- (organization empty for platform events). NOTIFY from a trigger is delivered when the
-- inserting transaction commits, and never when it rolls back: exactly "published after commit".
CREATE FUNCTION fv_audit_events_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('fv_audit', coalesce(NEW.organization_id::text, '') || ':' || NEW.id::text);
    RETURN NULL;
END;
$$;

CREATE TRIGGER audit_events_notify
    AFTER INSERT ON audit_events
    FOR EACH ROW EXECUTE FUNCTION fv_audit_events_notify();
