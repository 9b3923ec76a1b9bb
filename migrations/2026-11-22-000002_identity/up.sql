-- Identity: users and their login sessions.

CREATE TABLE users (
    id            uuid        NOT NULL DEFAULT gen_random_uuid(),
    email         text        NOT NULL,
    password_hash text        NOT NULL,
    display_name  text        NOT NULL,
    is_active     boolean     NOT NULL DEFAULT true,
    is_superadmin boolean     NOT NULL DEFAULT false,
    timezone      text        NOT NULL DEFAULT 'UTC',
    locale        text        NOT NULL DEFAULT 'en',
    preferences   jsonb       NOT NULL DEFAULT '{}'::jsonb,
    last_login_at timestamptz NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    deleted_at    timestamptz NULL,
    CONSTRAINT users_pkey PRIMARY KEY (id)
);

COMMENT ON TABLE users IS 'People who can sign in. Soft-deleted rows (deleted_at IS NOT NULL) are invisible to the API.';
COMMENT ON COLUMN users.email IS 'Stored as typed; unique case-insensitively among non-deleted users (compare with lower()).';
COMMENT ON COLUMN users.password_hash IS 'argon2id PHC string. Never exposed, never audited.';

-- Case-insensitive uniqueness among non-deleted users.
CREATE UNIQUE INDEX users_email_key ON users (lower(email)) WHERE deleted_at IS NULL;

CREATE TRIGGER users_set_updated_at
    BEFORE UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION fv_set_updated_at();

CREATE TABLE sessions (
    id           uuid        NOT NULL DEFAULT gen_random_uuid(),
    user_id      uuid        NOT NULL,
    token_hash   bytea       NOT NULL,
    expires_at   timestamptz NOT NULL,
    revoked_at   timestamptz NULL,
    ip_address   inet        NULL,
    user_agent   text        NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz NULL,
    CONSTRAINT sessions_pkey PRIMARY KEY (id),
    CONSTRAINT sessions_user_id_fkey FOREIGN KEY (user_id)
        REFERENCES users (id) ON DELETE CASCADE,
    CONSTRAINT sessions_token_hash_key UNIQUE (token_hash)
);

COMMENT ON TABLE sessions IS 'Login sessions; many per user.';
COMMENT ON COLUMN sessions.token_hash IS 'SHA-256 of the opaque session token; the token itself is never stored.';

CREATE INDEX sessions_user_id_idx ON sessions (user_id);
CREATE INDEX sessions_expires_at_idx ON sessions (expires_at);
