-- Audit webhooks: an organization's audit events POSTed in sequence order to an HTTPS endpoint,
-- signed (Standard Webhooks), at least once. The endpoint row is the delivery's whole state:
-- its cursor (the last sequence a receiver acknowledged with a 2xx), the batch in flight (its
-- Webhook-Id and last sequence, kept across retries so that a retry is the same message), the
-- retry schedule, and the lease of the one server instance delivering it.
CREATE TABLE webhook_endpoints (
    id                  uuid        NOT NULL DEFAULT gen_random_uuid(),
    organization_id     uuid        NOT NULL,
    url                 text        NOT NULL,
    description         text        NULL,
    actions             text[]      NULL,
    entity_type         text        NULL,
    active              boolean     NOT NULL DEFAULT true,
    secret              text        NOT NULL,
    previous_secret     text        NULL,
    previous_secret_expires_at timestamptz NULL,
    cursor              bigint      NOT NULL,
    batch_id            text        NULL,
    batch_last          bigint      NULL,
    attempts            integer     NOT NULL DEFAULT 0,
    retrying_since      timestamptz NULL,
    next_attempt_at     timestamptz NOT NULL DEFAULT now(),
    failing_since       timestamptz NULL,
    last_error          text        NULL,
    leased_by           uuid        NULL,
    leased_until        timestamptz NULL,
    version             integer     NOT NULL DEFAULT 1,
    created_by          uuid        NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT webhook_endpoints_pkey PRIMARY KEY (id),
    CONSTRAINT webhook_endpoints_organization_id_fkey FOREIGN KEY (organization_id)
        REFERENCES organizations (id) ON DELETE CASCADE,
    CONSTRAINT webhook_endpoints_created_by_fkey FOREIGN KEY (created_by)
        REFERENCES users (id) ON DELETE SET NULL,
    CONSTRAINT webhook_endpoints_cursor_check CHECK (cursor >= 0),
    CONSTRAINT webhook_endpoints_batch_check CHECK ((batch_id IS NULL) = (batch_last IS NULL))
);

COMMENT ON TABLE webhook_endpoints IS 'Audit webhooks: where an organization''s audit events are POSTed, and the delivery''s state.';
COMMENT ON COLUMN webhook_endpoints.secret IS 'The signing secret (whsec_ + base64 of 32 bytes): kept as is, since signing needs it; returned only by the mutation that makes it.';
COMMENT ON COLUMN webhook_endpoints.cursor IS 'The last sequence delivered (acknowledged with a 2xx, or skipped by the filter).';
COMMENT ON COLUMN webhook_endpoints.batch_id IS 'The Webhook-Id of the batch in flight, stable across its retries.';
COMMENT ON COLUMN webhook_endpoints.retrying_since IS 'The first failed attempt of the current run of failures.';
COMMENT ON COLUMN webhook_endpoints.failing_since IS 'When retries passed the horizon: the endpoint is paused until resumed.';
COMMENT ON COLUMN webhook_endpoints.leased_by IS 'The server instance delivering to this endpoint, until leased_until.';

-- Organization.webhookEndpoints; the claim of due endpoints.
CREATE INDEX webhook_endpoints_organization_id_idx ON webhook_endpoints (organization_id, created_at);
CREATE INDEX webhook_endpoints_due_idx ON webhook_endpoints (next_attempt_at)
    WHERE active AND failing_since IS NULL;

-- Every attempt: what was sent, what came back. Kept per endpoint up to a bound (the worker
-- removes the oldest beyond it).
CREATE TABLE webhook_deliveries (
    id              bigint      GENERATED ALWAYS AS IDENTITY,
    endpoint_id     uuid        NOT NULL,
    organization_id uuid        NOT NULL,
    webhook_id      text        NOT NULL,
    attempted_at    timestamptz NOT NULL DEFAULT now(),
    first_sequence  bigint      NOT NULL,
    last_sequence   bigint      NOT NULL,
    event_count     integer     NOT NULL,
    status_code     integer     NULL,
    duration_ms     integer     NOT NULL,
    error           text        NULL,
    CONSTRAINT webhook_deliveries_pkey PRIMARY KEY (id),
    CONSTRAINT webhook_deliveries_endpoint_id_fkey FOREIGN KEY (endpoint_id)
        REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    CONSTRAINT webhook_deliveries_organization_id_fkey FOREIGN KEY (organization_id)
        REFERENCES organizations (id) ON DELETE CASCADE
);

COMMENT ON TABLE webhook_deliveries IS 'Attempts to deliver a batch of audit events to a webhook endpoint.';

CREATE INDEX webhook_deliveries_endpoint_id_idx ON webhook_deliveries (endpoint_id, id DESC);
CREATE INDEX webhook_deliveries_organization_id_idx ON webhook_deliveries (organization_id);

GRANT SELECT, INSERT, UPDATE, DELETE ON webhook_endpoints TO finvision_app;
GRANT SELECT, INSERT, DELETE ON webhook_deliveries TO finvision_app;
ALTER TABLE webhook_endpoints ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON webhook_endpoints TO finvision_app
    USING (organization_id = (SELECT fv_scope_org()) OR (SELECT fv_scope_all())
           OR organization_id = ANY ((SELECT fv_scope_orgs())::uuid[]));
ALTER TABLE webhook_deliveries ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON webhook_deliveries TO finvision_app
    USING (organization_id = (SELECT fv_scope_org()) OR (SELECT fv_scope_all())
           OR organization_id = ANY ((SELECT fv_scope_orgs())::uuid[]));
