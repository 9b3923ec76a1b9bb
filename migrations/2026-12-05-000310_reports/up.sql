-- Reports: a model's evaluated series exported as a file (CSV or XLSX), generated off the
-- request path by a bounded queue of jobs. The row exists from the request on (PENDING); the
-- job fills in the file's size, digest and object key (READY) or why it failed (FAILED).
CREATE TABLE reports (
    id              uuid        NOT NULL DEFAULT gen_random_uuid(),
    organization_id uuid        NOT NULL,
    model_id        uuid        NOT NULL,
    name            text        NOT NULL,
    format          text        NOT NULL,
    status          text        NOT NULL DEFAULT 'PENDING',
    scenario_ids    uuid[]      NOT NULL,
    metric_keys     text[]      NOT NULL DEFAULT '{}',
    from_period     date        NULL,
    to_period       date        NULL,
    byte_size       bigint      NULL,
    sha256          bytea       NULL,
    storage_key     text        NULL,
    error           text        NULL,
    created_by      uuid        NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    completed_at    timestamptz NULL,
    CONSTRAINT reports_pkey PRIMARY KEY (id),
    CONSTRAINT reports_organization_id_fkey FOREIGN KEY (organization_id)
        REFERENCES organizations (id) ON DELETE CASCADE,
    CONSTRAINT reports_model_id_fkey FOREIGN KEY (model_id)
        REFERENCES financial_models (id) ON DELETE CASCADE,
    CONSTRAINT reports_created_by_fkey FOREIGN KEY (created_by)
        REFERENCES users (id) ON DELETE SET NULL,
    CONSTRAINT reports_format_check CHECK (format IN ('CSV', 'XLSX')),
    CONSTRAINT reports_status_check CHECK (status IN ('PENDING', 'READY', 'FAILED')),
    CONSTRAINT reports_scenario_ids_check CHECK (cardinality(scenario_ids) >= 1),
    CONSTRAINT reports_period_order_check CHECK (from_period IS NULL OR to_period IS NULL OR from_period <= to_period),
    CONSTRAINT reports_byte_size_check CHECK (byte_size IS NULL OR byte_size >= 0),
    -- A READY report names its file; no other status does.
    CONSTRAINT reports_ready_check CHECK ((status = 'READY') = (storage_key IS NOT NULL AND sha256 IS NOT NULL AND byte_size IS NOT NULL)),
    CONSTRAINT reports_failed_check CHECK ((status = 'FAILED') = (error IS NOT NULL))
);

COMMENT ON TABLE reports IS 'Generated reports: a model''s evaluated series as a CSV or XLSX file in object storage.';
COMMENT ON COLUMN reports.scenario_ids IS 'The exported scenarios, in the order asked for.';
COMMENT ON COLUMN reports.metric_keys IS 'The exported metrics, in the order asked for; empty: every metric in display order.';
COMMENT ON COLUMN reports.sha256 IS 'SHA-256 digest of the file (raw bytes); set when READY.';
COMMENT ON COLUMN reports.storage_key IS 'Object storage key of the file (reports/<model>/<report>); set when READY.';
COMMENT ON COLUMN reports.error IS 'Why the generation failed; set when FAILED.';

-- FinancialModel.reports (newest first), the start-up sweep of PENDING rows, exportMyData.
CREATE INDEX reports_model_id_created_at_idx ON reports (model_id, created_at DESC);
CREATE INDEX reports_pending_idx ON reports (created_at) WHERE status = 'PENDING';
CREATE INDEX reports_created_by_idx ON reports (created_by);
CREATE INDEX reports_organization_id_idx ON reports (organization_id);

GRANT SELECT, INSERT, UPDATE, DELETE ON reports TO finvision_app;
ALTER TABLE reports ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON reports TO finvision_app
    USING ((SELECT fv_sees_all()) OR organization_id = ANY ((SELECT fv_caller_orgs())::uuid[]));
