-- Tenancy: organizations, memberships (user roles) and API keys.

CREATE TABLE organizations (
    id         uuid        NOT NULL DEFAULT gen_random_uuid(),
    name       text        NOT NULL,
    slug       text        NOT NULL,
    settings   jsonb       NOT NULL DEFAULT '{}'::jsonb,
    version    integer     NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    deleted_at timestamptz NULL,
    CONSTRAINT organizations_pkey PRIMARY KEY (id)
);

COMMENT ON TABLE organizations IS 'The tenant boundary. Soft-deleted rows are invisible to the API.';
COMMENT ON COLUMN organizations.version IS 'Optimistic concurrency: an update names the version it read.';

CREATE UNIQUE INDEX organizations_slug_key ON organizations (slug) WHERE deleted_at IS NULL;

CREATE TRIGGER organizations_set_updated_at
    BEFORE UPDATE ON organizations
    FOR EACH ROW EXECUTE FUNCTION fv_set_updated_at();

CREATE TABLE memberships (
    organization_id uuid        NOT NULL,
    user_id         uuid        NOT NULL,
    role            text        NOT NULL,
    invited_by      uuid        NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT memberships_pkey PRIMARY KEY (organization_id, user_id),
    CONSTRAINT memberships_organization_id_fkey FOREIGN KEY (organization_id)
        REFERENCES organizations (id) ON DELETE CASCADE,
    CONSTRAINT memberships_user_id_fkey FOREIGN KEY (user_id)
        REFERENCES users (id) ON DELETE CASCADE,
    CONSTRAINT memberships_invited_by_fkey FOREIGN KEY (invited_by)
        REFERENCES users (id) ON DELETE SET NULL,
    CONSTRAINT memberships_role_check
        CHECK (role IN ('OWNER', 'ADMIN', 'ANALYST', 'VIEWER'))
);

COMMENT ON TABLE memberships IS 'A user''s role in an organization. An organization always keeps at least one OWNER.';

-- organization_id is covered by the primary key (leading column).
CREATE INDEX memberships_user_id_idx ON memberships (user_id);
CREATE INDEX memberships_invited_by_idx ON memberships (invited_by);

CREATE TRIGGER memberships_set_updated_at
    BEFORE UPDATE ON memberships
    FOR EACH ROW EXECUTE FUNCTION fv_set_updated_at();

CREATE TABLE api_keys (
    id              uuid        NOT NULL DEFAULT gen_random_uuid(),
    organization_id uuid        NOT NULL,
    name            text        NOT NULL,
    prefix          text        NOT NULL,
    key_hash        bytea       NOT NULL,
    role            text        NOT NULL,
    created_by      uuid        NULL,
    expires_at      timestamptz NULL,
    last_used_at    timestamptz NULL,
    revoked_at      timestamptz NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT api_keys_pkey PRIMARY KEY (id),
    CONSTRAINT api_keys_organization_id_fkey FOREIGN KEY (organization_id)
        REFERENCES organizations (id) ON DELETE CASCADE,
    CONSTRAINT api_keys_created_by_fkey FOREIGN KEY (created_by)
        REFERENCES users (id) ON DELETE SET NULL,
    CONSTRAINT api_keys_key_hash_key UNIQUE (key_hash),
    CONSTRAINT api_keys_role_check
        CHECK (role IN ('ADMIN', 'ANALYST', 'VIEWER'))
);

COMMENT ON TABLE api_keys IS 'Integration credentials, scoped to one organization. Never OWNER.';
COMMENT ON COLUMN api_keys.prefix IS 'First characters of the key, shown to humans.';
COMMENT ON COLUMN api_keys.key_hash IS 'SHA-256 of the key; the key itself is never stored.';

CREATE INDEX api_keys_organization_id_idx ON api_keys (organization_id);
CREATE INDEX api_keys_created_by_idx ON api_keys (created_by);
