DROP TRIGGER organizations_auth_notify ON organizations;
DROP TRIGGER api_keys_auth_notify ON api_keys;
DROP TRIGGER memberships_auth_notify ON memberships;
DROP TRIGGER users_auth_notify ON users;
DROP TRIGGER sessions_auth_notify ON sessions;
DROP FUNCTION fv_auth_notify();
