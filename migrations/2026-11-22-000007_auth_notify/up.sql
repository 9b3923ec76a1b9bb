-- Tell every server instance (LISTEN fv_auth) that what a credential resolves to may have
-- changed, so each one clears its in-process cache of callers (src/domain/auth/cache.rs).
-- Statement-level: one notice per statement, however many rows it touched (a statement that
-- touched none notifies too: harmless, a cache miss). Delivered when the transaction commits,
-- never when it rolls back. The payload is empty: the whole cache is cleared, since such changes
-- are rare next to reads.
--
-- UPDATE triggers list only the columns that a credential lookup reads: the usage flush
-- (`last_used_at`, every ~30 s) and `login` (`last_login_at`) must not clear every cache.
-- INSERTs of sessions, keys and users need nothing: a new token is simply a miss.
CREATE FUNCTION fv_auth_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('fv_auth', '');
    RETURN NULL;
END;
$$;

CREATE TRIGGER sessions_auth_notify
    AFTER UPDATE OF user_id, token_hash, expires_at, revoked_at OR DELETE OR TRUNCATE ON sessions
    FOR EACH STATEMENT EXECUTE FUNCTION fv_auth_notify();

CREATE TRIGGER users_auth_notify
    AFTER UPDATE OF id, is_active, is_superadmin, deleted_at OR DELETE OR TRUNCATE ON users
    FOR EACH STATEMENT EXECUTE FUNCTION fv_auth_notify();

CREATE TRIGGER memberships_auth_notify
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON memberships
    FOR EACH STATEMENT EXECUTE FUNCTION fv_auth_notify();

CREATE TRIGGER api_keys_auth_notify
    AFTER UPDATE OF organization_id, key_hash, role, expires_at, revoked_at OR DELETE OR TRUNCATE
    ON api_keys
    FOR EACH STATEMENT EXECUTE FUNCTION fv_auth_notify();

CREATE TRIGGER organizations_auth_notify
    AFTER UPDATE OF id, deleted_at OR DELETE OR TRUNCATE ON organizations
    FOR EACH STATEMENT EXECUTE FUNCTION fv_auth_notify();
