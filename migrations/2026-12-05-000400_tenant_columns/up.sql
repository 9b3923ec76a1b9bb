-- Every tenant table carries its organization, so that each row-level security policy is one
-- comparison with the caller's organizations. The policies of 000201 reached a scenario's
-- organization through its model (`model_id IN (SELECT id FROM financial_models)`) and a value's
-- through its scenario: every statement built a hash of every model and scenario the caller may
-- see, a cost that grew with the size of the organization (0.08 ms → 0.23 ms for one scenario by
-- id on the bench dataset). Now a policy costs one array comparison per row.
--
-- The column is kept right by the database, not by the application:
-- - a composite foreign key (parent id, organization_id) → parent (id, organization_id) replaces
--   the plain one, so a row's organization is always its parent's (and a parent never changes
--   organization under its children);
-- - a BEFORE INSERT trigger fills it from the parent when an INSERT leaves it out (the
--   application's single-row inserts, SQL typed by hand); the bulk inserts of values name it, so
--   that 10,000 values do not run a trigger 10,000 times (its WHEN clause is evaluated without
--   calling the function).

-- Parents: the pair a child's foreign key points at.
ALTER TABLE financial_models
    ADD CONSTRAINT financial_models_id_organization_id_key UNIQUE (id, organization_id);

-- The organization of a parent row, as the inserting role sees it: a parent the caller may not
-- see gives NULL, and the NOT NULL column refuses the row.
CREATE FUNCTION fv_inherit_organization() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    CASE TG_ARGV[0]
        WHEN 'model' THEN
            NEW.organization_id := (SELECT m.organization_id FROM financial_models m WHERE m.id = NEW.model_id);
        WHEN 'scenario' THEN
            NEW.organization_id := (SELECT s.organization_id FROM scenarios s WHERE s.id = NEW.scenario_id);
        WHEN 'metric' THEN
            NEW.organization_id := (SELECT m.organization_id FROM metrics m WHERE m.id = NEW.metric_id);
    END CASE;
    RETURN NEW;
END
$$;

-- Children of a model.
ALTER TABLE scenarios ADD COLUMN organization_id uuid;
UPDATE scenarios c SET organization_id = p.organization_id FROM financial_models p WHERE p.id = c.model_id;
ALTER TABLE scenarios ALTER COLUMN organization_id SET NOT NULL,
    DROP CONSTRAINT scenarios_model_id_fkey,
    ADD CONSTRAINT scenarios_model_id_organization_id_fkey FOREIGN KEY (model_id, organization_id)
        REFERENCES financial_models (id, organization_id) ON DELETE CASCADE,
    ADD CONSTRAINT scenarios_id_organization_id_key UNIQUE (id, organization_id);
CREATE TRIGGER scenarios_inherit_organization BEFORE INSERT ON scenarios
    FOR EACH ROW WHEN (NEW.organization_id IS NULL) EXECUTE FUNCTION fv_inherit_organization('model');

ALTER TABLE parameters ADD COLUMN organization_id uuid;
UPDATE parameters c SET organization_id = p.organization_id FROM financial_models p WHERE p.id = c.model_id;
ALTER TABLE parameters ALTER COLUMN organization_id SET NOT NULL,
    DROP CONSTRAINT parameters_model_id_fkey,
    ADD CONSTRAINT parameters_model_id_organization_id_fkey FOREIGN KEY (model_id, organization_id)
        REFERENCES financial_models (id, organization_id) ON DELETE CASCADE;
CREATE TRIGGER parameters_inherit_organization BEFORE INSERT ON parameters
    FOR EACH ROW WHEN (NEW.organization_id IS NULL) EXECUTE FUNCTION fv_inherit_organization('model');

ALTER TABLE metrics ADD COLUMN organization_id uuid;
UPDATE metrics c SET organization_id = p.organization_id FROM financial_models p WHERE p.id = c.model_id;
ALTER TABLE metrics ALTER COLUMN organization_id SET NOT NULL,
    DROP CONSTRAINT metrics_model_id_fkey,
    ADD CONSTRAINT metrics_model_id_organization_id_fkey FOREIGN KEY (model_id, organization_id)
        REFERENCES financial_models (id, organization_id) ON DELETE CASCADE,
    ADD CONSTRAINT metrics_id_organization_id_key UNIQUE (id, organization_id);
CREATE TRIGGER metrics_inherit_organization BEFORE INSERT ON metrics
    FOR EACH ROW WHEN (NEW.organization_id IS NULL) EXECUTE FUNCTION fv_inherit_organization('model');

ALTER TABLE model_files ADD COLUMN organization_id uuid;
UPDATE model_files c SET organization_id = p.organization_id FROM financial_models p WHERE p.id = c.model_id;
ALTER TABLE model_files ALTER COLUMN organization_id SET NOT NULL,
    DROP CONSTRAINT model_files_model_id_fkey,
    ADD CONSTRAINT model_files_model_id_organization_id_fkey FOREIGN KEY (model_id, organization_id)
        REFERENCES financial_models (id, organization_id) ON DELETE CASCADE;
CREATE TRIGGER model_files_inherit_organization BEFORE INSERT ON model_files
    FOR EACH ROW WHEN (NEW.organization_id IS NULL) EXECUTE FUNCTION fv_inherit_organization('model');

-- Children of a scenario or a metric.
ALTER TABLE parameter_values ADD COLUMN organization_id uuid;
UPDATE parameter_values c SET organization_id = p.organization_id FROM scenarios p WHERE p.id = c.scenario_id;
ALTER TABLE parameter_values ALTER COLUMN organization_id SET NOT NULL,
    DROP CONSTRAINT parameter_values_scenario_id_fkey,
    ADD CONSTRAINT parameter_values_scenario_id_organization_id_fkey FOREIGN KEY (scenario_id, organization_id)
        REFERENCES scenarios (id, organization_id) ON DELETE CASCADE;
CREATE TRIGGER parameter_values_inherit_organization BEFORE INSERT ON parameter_values
    FOR EACH ROW WHEN (NEW.organization_id IS NULL) EXECUTE FUNCTION fv_inherit_organization('scenario');

ALTER TABLE metric_values ADD COLUMN organization_id uuid;
UPDATE metric_values c SET organization_id = p.organization_id FROM scenarios p WHERE p.id = c.scenario_id;
ALTER TABLE metric_values ALTER COLUMN organization_id SET NOT NULL,
    DROP CONSTRAINT metric_values_scenario_id_fkey,
    ADD CONSTRAINT metric_values_scenario_id_organization_id_fkey FOREIGN KEY (scenario_id, organization_id)
        REFERENCES scenarios (id, organization_id) ON DELETE CASCADE;
CREATE TRIGGER metric_values_inherit_organization BEFORE INSERT ON metric_values
    FOR EACH ROW WHEN (NEW.organization_id IS NULL) EXECUTE FUNCTION fv_inherit_organization('scenario');

ALTER TABLE metric_dependencies ADD COLUMN organization_id uuid;
UPDATE metric_dependencies c SET organization_id = p.organization_id FROM metrics p WHERE p.id = c.metric_id;
ALTER TABLE metric_dependencies ALTER COLUMN organization_id SET NOT NULL,
    DROP CONSTRAINT metric_dependencies_metric_id_fkey,
    ADD CONSTRAINT metric_dependencies_metric_id_organization_id_fkey FOREIGN KEY (metric_id, organization_id)
        REFERENCES metrics (id, organization_id) ON DELETE CASCADE;
CREATE TRIGGER metric_dependencies_inherit_organization BEFORE INSERT ON metric_dependencies
    FOR EACH ROW WHEN (NEW.organization_id IS NULL) EXECUTE FUNCTION fv_inherit_organization('metric');

-- The policies: one comparison each (USING also checks new rows: nothing is written into an
-- organization the caller does not belong to).
ALTER POLICY tenant ON scenarios
    USING ((SELECT fv_sees_all()) OR organization_id = ANY ((SELECT fv_caller_orgs())::uuid[]));
ALTER POLICY tenant ON parameters
    USING ((SELECT fv_sees_all()) OR organization_id = ANY ((SELECT fv_caller_orgs())::uuid[]));
ALTER POLICY tenant ON metrics
    USING ((SELECT fv_sees_all()) OR organization_id = ANY ((SELECT fv_caller_orgs())::uuid[]));
ALTER POLICY tenant ON model_files
    USING ((SELECT fv_sees_all()) OR organization_id = ANY ((SELECT fv_caller_orgs())::uuid[]));
ALTER POLICY tenant ON parameter_values
    USING ((SELECT fv_sees_all()) OR organization_id = ANY ((SELECT fv_caller_orgs())::uuid[]));
ALTER POLICY tenant ON metric_values
    USING ((SELECT fv_sees_all()) OR organization_id = ANY ((SELECT fv_caller_orgs())::uuid[]));
ALTER POLICY tenant ON metric_dependencies
    USING ((SELECT fv_sees_all()) OR organization_id = ANY ((SELECT fv_caller_orgs())::uuid[]));

COMMENT ON COLUMN scenarios.organization_id IS 'The model''s organization (row-level security compares it; the composite foreign key keeps it right).';
COMMENT ON COLUMN parameters.organization_id IS 'The model''s organization (row-level security compares it; the composite foreign key keeps it right).';
COMMENT ON COLUMN metrics.organization_id IS 'The model''s organization (row-level security compares it; the composite foreign key keeps it right).';
COMMENT ON COLUMN model_files.organization_id IS 'The model''s organization (row-level security compares it; the composite foreign key keeps it right).';
COMMENT ON COLUMN parameter_values.organization_id IS 'The scenario''s organization (row-level security compares it; the composite foreign key keeps it right).';
COMMENT ON COLUMN metric_values.organization_id IS 'The scenario''s organization (row-level security compares it; the composite foreign key keeps it right).';
COMMENT ON COLUMN metric_dependencies.organization_id IS 'The metric''s organization (row-level security compares it; the composite foreign key keeps it right).';
