-- The application role: what the server runs as. It owns nothing (the tables belong to the role
-- that runs the migrations), holds only the grants below, and so cannot ALTER, DROP, TRUNCATE or
-- disable a trigger on anything. The name is fixed (`finvision_app`): grants live in migrations,
-- which cannot read configuration. Roles are cluster-wide, so the role is created only when
-- missing (operators create it beforehand with LOGIN and a password: `finvision migrate` prints
-- the SQL); a role created here has no LOGIN until an operator gives it one.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'finvision_app') THEN
        BEGIN
            CREATE ROLE finvision_app NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS;
        EXCEPTION WHEN insufficient_privilege THEN
            RAISE EXCEPTION 'the role finvision_app does not exist and % may not create it', current_user
                USING HINT = 'create it first: see `finvision migrate --help` or the README, "Data governance"';
        END;
    END IF;
END
$$;

GRANT USAGE ON SCHEMA public TO finvision_app;

-- Data tables: read and write rows, nothing else (no TRUNCATE, REFERENCES or TRIGGER).
GRANT SELECT, INSERT, UPDATE, DELETE ON
    users, sessions, organizations, memberships, api_keys,
    financial_models, model_files, scenarios, parameters, parameter_values,
    metrics, metric_dependencies, metric_values
    TO finvision_app;

-- The audit trail: append and read, never change. Granted on the table by name, so that a
-- partitioned `audit_events` (whose partitions are reached through it) keeps the same rights.
GRANT SELECT, INSERT ON audit_events TO finvision_app;

-- Identity columns (`audit_events.id`) and any sequence: the inserting role needs USAGE.
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO finvision_app;
