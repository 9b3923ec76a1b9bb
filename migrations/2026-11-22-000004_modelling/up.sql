-- Financial modelling: models, their uploaded files, scenarios, parameters and metrics.

CREATE TABLE financial_models (
    id                 uuid        NOT NULL DEFAULT gen_random_uuid(),
    organization_id    uuid        NOT NULL,
    name               text        NOT NULL,
    description        text        NULL,
    currency           char(3)     NOT NULL,
    period_granularity text        NOT NULL DEFAULT 'MONTH',
    start_period       date        NOT NULL,
    end_period         date        NOT NULL,
    status             text        NOT NULL DEFAULT 'DRAFT',
    created_by         uuid        NULL,
    version            integer     NOT NULL DEFAULT 1,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    deleted_at         timestamptz NULL,
    CONSTRAINT financial_models_pkey PRIMARY KEY (id),
    CONSTRAINT financial_models_organization_id_fkey FOREIGN KEY (organization_id)
        REFERENCES organizations (id) ON DELETE CASCADE,
    CONSTRAINT financial_models_created_by_fkey FOREIGN KEY (created_by)
        REFERENCES users (id) ON DELETE SET NULL,
    CONSTRAINT financial_models_currency_check CHECK (currency ~ '^[A-Z]{3}$'),
    CONSTRAINT financial_models_period_granularity_check
        CHECK (period_granularity IN ('MONTH', 'QUARTER', 'YEAR')),
    CONSTRAINT financial_models_status_check
        CHECK (status IN ('DRAFT', 'ACTIVE', 'ARCHIVED')),
    CONSTRAINT financial_models_period_range_check CHECK (end_period >= start_period)
);

COMMENT ON TABLE financial_models IS 'A financial model of an organization. Soft-deleted rows are invisible to the API.';
COMMENT ON COLUMN financial_models.currency IS 'ISO 4217 currency code.';
COMMENT ON COLUMN financial_models.start_period IS 'First period of the model timeline (inclusive, on a granularity boundary).';
COMMENT ON COLUMN financial_models.end_period IS 'Last period of the model timeline (inclusive, on a granularity boundary).';

-- Name unique per organization among non-deleted models (case-insensitive).
CREATE UNIQUE INDEX financial_models_org_name_key
    ON financial_models (organization_id, lower(name)) WHERE deleted_at IS NULL;
-- The partial unique index above does not cover soft-deleted rows, so the FK gets its own index.
CREATE INDEX financial_models_organization_id_idx ON financial_models (organization_id);
CREATE INDEX financial_models_created_by_idx ON financial_models (created_by);

CREATE TRIGGER financial_models_set_updated_at
    BEFORE UPDATE ON financial_models
    FOR EACH ROW EXECUTE FUNCTION fv_set_updated_at();

CREATE TABLE model_files (
    id             uuid        NOT NULL DEFAULT gen_random_uuid(),
    model_id       uuid        NOT NULL,
    version_number integer     NOT NULL,
    file_name      text        NOT NULL,
    content_type   text        NOT NULL,
    size_bytes     bigint      NOT NULL,
    sha256         bytea       NOT NULL,
    storage_key    text        NOT NULL,
    uploaded_by    uuid        NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT model_files_pkey PRIMARY KEY (id),
    CONSTRAINT model_files_model_id_fkey FOREIGN KEY (model_id)
        REFERENCES financial_models (id) ON DELETE CASCADE,
    CONSTRAINT model_files_uploaded_by_fkey FOREIGN KEY (uploaded_by)
        REFERENCES users (id) ON DELETE SET NULL,
    CONSTRAINT model_files_model_id_version_number_key UNIQUE (model_id, version_number),
    CONSTRAINT model_files_version_number_check CHECK (version_number >= 1),
    CONSTRAINT model_files_size_bytes_check CHECK (size_bytes >= 0)
);

COMMENT ON TABLE model_files IS 'File history of the uploaded workbook; the bytes live in object storage.';
COMMENT ON COLUMN model_files.sha256 IS 'SHA-256 digest of the file content (raw bytes).';
COMMENT ON COLUMN model_files.storage_key IS 'Object storage key of the file content.';

-- model_id is covered by model_files_model_id_version_number_key (leading column).
CREATE INDEX model_files_uploaded_by_idx ON model_files (uploaded_by);

CREATE TABLE scenarios (
    id               uuid        NOT NULL DEFAULT gen_random_uuid(),
    model_id         uuid        NOT NULL,
    name             text        NOT NULL,
    kind             text        NOT NULL,
    description      text        NULL,
    base_scenario_id uuid        NULL,
    is_locked        boolean     NOT NULL DEFAULT false,
    created_by       uuid        NULL,
    version          integer     NOT NULL DEFAULT 1,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    deleted_at       timestamptz NULL,
    CONSTRAINT scenarios_pkey PRIMARY KEY (id),
    CONSTRAINT scenarios_model_id_fkey FOREIGN KEY (model_id)
        REFERENCES financial_models (id) ON DELETE CASCADE,
    CONSTRAINT scenarios_base_scenario_id_fkey FOREIGN KEY (base_scenario_id)
        REFERENCES scenarios (id) ON DELETE RESTRICT,
    CONSTRAINT scenarios_created_by_fkey FOREIGN KEY (created_by)
        REFERENCES users (id) ON DELETE SET NULL,
    CONSTRAINT scenarios_kind_check
        CHECK (kind IN ('BASE', 'UPSIDE', 'DOWNSIDE', 'CUSTOM')),
    CONSTRAINT scenarios_base_scenario_not_self_check CHECK (base_scenario_id <> id)
);

COMMENT ON TABLE scenarios IS 'A scenario of a model. Inherits every value and parameter it does not override from its base scenario (same model, no cycles). Soft-deleted rows are invisible to the API.';
COMMENT ON COLUMN scenarios.is_locked IS 'A locked scenario rejects edits.';

CREATE UNIQUE INDEX scenarios_model_name_key
    ON scenarios (model_id, lower(name)) WHERE deleted_at IS NULL;
CREATE INDEX scenarios_model_id_idx ON scenarios (model_id);
CREATE INDEX scenarios_base_scenario_id_idx ON scenarios (base_scenario_id);
CREATE INDEX scenarios_created_by_idx ON scenarios (created_by);

CREATE TRIGGER scenarios_set_updated_at
    BEFORE UPDATE ON scenarios
    FOR EACH ROW EXECUTE FUNCTION fv_set_updated_at();

CREATE TABLE parameters (
    id            uuid          NOT NULL DEFAULT gen_random_uuid(),
    model_id      uuid          NOT NULL,
    key           text          NOT NULL,
    name          text          NOT NULL,
    unit          text          NOT NULL,
    default_value numeric(20,6) NOT NULL,
    created_at    timestamptz   NOT NULL DEFAULT now(),
    updated_at    timestamptz   NOT NULL DEFAULT now(),
    CONSTRAINT parameters_pkey PRIMARY KEY (id),
    CONSTRAINT parameters_model_id_fkey FOREIGN KEY (model_id)
        REFERENCES financial_models (id) ON DELETE CASCADE,
    CONSTRAINT parameters_model_key_key UNIQUE (model_id, key),
    CONSTRAINT parameters_key_check CHECK (key ~ '^[a-z_][a-z0-9_]*$'),
    CONSTRAINT parameters_unit_check
        CHECK (unit IN ('CURRENCY', 'PERCENT', 'RATIO', 'NUMBER'))
);

COMMENT ON TABLE parameters IS 'Configurable model inputs (growth rate, tax rate, ...).';
COMMENT ON COLUMN parameters.key IS 'Identifier used in formulas, unique per model.';

-- model_id is covered by parameters_model_key_key (leading column).

CREATE TRIGGER parameters_set_updated_at
    BEFORE UPDATE ON parameters
    FOR EACH ROW EXECUTE FUNCTION fv_set_updated_at();

CREATE TABLE parameter_values (
    scenario_id  uuid          NOT NULL,
    parameter_id uuid          NOT NULL,
    value        numeric(20,6) NOT NULL,
    updated_at   timestamptz   NOT NULL DEFAULT now(),
    CONSTRAINT parameter_values_pkey PRIMARY KEY (scenario_id, parameter_id),
    CONSTRAINT parameter_values_scenario_id_fkey FOREIGN KEY (scenario_id)
        REFERENCES scenarios (id) ON DELETE CASCADE,
    CONSTRAINT parameter_values_parameter_id_fkey FOREIGN KEY (parameter_id)
        REFERENCES parameters (id) ON DELETE CASCADE
);

COMMENT ON TABLE parameter_values IS 'A scenario''s override of a parameter.';

-- scenario_id is covered by the primary key (leading column).
CREATE INDEX parameter_values_parameter_id_idx ON parameter_values (parameter_id);

CREATE TRIGGER parameter_values_set_updated_at
    BEFORE UPDATE ON parameter_values
    FOR EACH ROW EXECUTE FUNCTION fv_set_updated_at();

CREATE TABLE metrics (
    id            uuid        NOT NULL DEFAULT gen_random_uuid(),
    model_id      uuid        NOT NULL,
    key           text        NOT NULL,
    name          text        NOT NULL,
    unit          text        NOT NULL,
    kind          text        NOT NULL,
    formula       text        NULL,
    description   text        NULL,
    display_order integer     NOT NULL DEFAULT 0,
    version       integer     NOT NULL DEFAULT 1,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT metrics_pkey PRIMARY KEY (id),
    CONSTRAINT metrics_model_id_fkey FOREIGN KEY (model_id)
        REFERENCES financial_models (id) ON DELETE CASCADE,
    CONSTRAINT metrics_model_key_key UNIQUE (model_id, key),
    CONSTRAINT metrics_key_check CHECK (key ~ '^[a-z_][a-z0-9_]*$'),
    CONSTRAINT metrics_unit_check
        CHECK (unit IN ('CURRENCY', 'PERCENT', 'RATIO', 'NUMBER')),
    CONSTRAINT metrics_kind_check CHECK (kind IN ('INPUT', 'DERIVED')),
    CONSTRAINT metrics_formula_check CHECK ((kind = 'DERIVED') = (formula IS NOT NULL))
);

COMMENT ON TABLE metrics IS 'Metrics of a model: INPUT (stored series) or DERIVED (formula).';
COMMENT ON COLUMN metrics.key IS 'Identifier used in formulas, unique per model.';
COMMENT ON COLUMN metrics.formula IS 'Formula of a DERIVED metric; NULL for INPUT metrics.';

-- model_id is covered by metrics_model_key_key (leading column).

CREATE TRIGGER metrics_set_updated_at
    BEFORE UPDATE ON metrics
    FOR EACH ROW EXECUTE FUNCTION fv_set_updated_at();

CREATE TABLE metric_dependencies (
    metric_id            uuid NOT NULL,
    depends_on_metric_id uuid NOT NULL,
    CONSTRAINT metric_dependencies_pkey PRIMARY KEY (metric_id, depends_on_metric_id),
    CONSTRAINT metric_dependencies_metric_id_fkey FOREIGN KEY (metric_id)
        REFERENCES metrics (id) ON DELETE CASCADE,
    CONSTRAINT metric_dependencies_depends_on_metric_id_fkey FOREIGN KEY (depends_on_metric_id)
        REFERENCES metrics (id) ON DELETE RESTRICT
);

COMMENT ON TABLE metric_dependencies IS 'Formula dependency graph (derived from metrics.formula on save); acyclic.';

-- metric_id is covered by the primary key (leading column).
CREATE INDEX metric_dependencies_depends_on_metric_id_idx
    ON metric_dependencies (depends_on_metric_id);

CREATE TABLE metric_values (
    scenario_id uuid          NOT NULL,
    metric_id   uuid          NOT NULL,
    period      date          NOT NULL,
    value       numeric(20,6) NOT NULL,
    updated_at  timestamptz   NOT NULL DEFAULT now(),
    CONSTRAINT metric_values_pkey PRIMARY KEY (scenario_id, metric_id, period),
    CONSTRAINT metric_values_scenario_id_fkey FOREIGN KEY (scenario_id)
        REFERENCES scenarios (id) ON DELETE CASCADE,
    CONSTRAINT metric_values_metric_id_fkey FOREIGN KEY (metric_id)
        REFERENCES metrics (id) ON DELETE CASCADE
);

COMMENT ON TABLE metric_values IS 'Stored time series values (INPUT metrics, actuals and seeds of DERIVED metrics).';
COMMENT ON COLUMN metric_values.period IS 'First day of the period (month, quarter or year).';

-- scenario_id is covered by the primary key (leading column).
CREATE INDEX metric_values_metric_id_idx ON metric_values (metric_id);

CREATE TRIGGER metric_values_set_updated_at
    BEFORE UPDATE ON metric_values
    FOR EACH ROW EXECUTE FUNCTION fv_set_updated_at();
