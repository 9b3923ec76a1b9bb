ALTER POLICY tenant ON scenarios
    USING ((SELECT fv_sees_all()) OR model_id IN (SELECT id FROM financial_models));
ALTER POLICY tenant ON parameters
    USING ((SELECT fv_sees_all()) OR model_id IN (SELECT id FROM financial_models));
ALTER POLICY tenant ON metrics
    USING ((SELECT fv_sees_all()) OR model_id IN (SELECT id FROM financial_models));
ALTER POLICY tenant ON model_files
    USING ((SELECT fv_sees_all()) OR model_id IN (SELECT id FROM financial_models));
ALTER POLICY tenant ON parameter_values
    USING ((SELECT fv_sees_all()) OR scenario_id IN (SELECT id FROM scenarios));
ALTER POLICY tenant ON metric_values
    USING ((SELECT fv_sees_all()) OR scenario_id IN (SELECT id FROM scenarios));
ALTER POLICY tenant ON metric_dependencies
    USING ((SELECT fv_sees_all()) OR metric_id IN (SELECT id FROM metrics));

DROP TRIGGER metric_dependencies_inherit_organization ON metric_dependencies;
ALTER TABLE metric_dependencies
    ADD CONSTRAINT metric_dependencies_metric_id_fkey FOREIGN KEY (metric_id)
        REFERENCES metrics (id) ON DELETE CASCADE,
    DROP CONSTRAINT metric_dependencies_metric_id_organization_id_fkey,
    DROP COLUMN organization_id;

DROP TRIGGER metric_values_inherit_organization ON metric_values;
ALTER TABLE metric_values
    ADD CONSTRAINT metric_values_scenario_id_fkey FOREIGN KEY (scenario_id)
        REFERENCES scenarios (id) ON DELETE CASCADE,
    DROP CONSTRAINT metric_values_scenario_id_organization_id_fkey,
    DROP COLUMN organization_id;

DROP TRIGGER parameter_values_inherit_organization ON parameter_values;
ALTER TABLE parameter_values
    ADD CONSTRAINT parameter_values_scenario_id_fkey FOREIGN KEY (scenario_id)
        REFERENCES scenarios (id) ON DELETE CASCADE,
    DROP CONSTRAINT parameter_values_scenario_id_organization_id_fkey,
    DROP COLUMN organization_id;

DROP TRIGGER model_files_inherit_organization ON model_files;
ALTER TABLE model_files
    ADD CONSTRAINT model_files_model_id_fkey FOREIGN KEY (model_id)
        REFERENCES financial_models (id) ON DELETE CASCADE,
    DROP CONSTRAINT model_files_model_id_organization_id_fkey,
    DROP COLUMN organization_id;

DROP TRIGGER metrics_inherit_organization ON metrics;
ALTER TABLE metrics
    ADD CONSTRAINT metrics_model_id_fkey FOREIGN KEY (model_id)
        REFERENCES financial_models (id) ON DELETE CASCADE,
    DROP CONSTRAINT metrics_model_id_organization_id_fkey,
    DROP CONSTRAINT metrics_id_organization_id_key,
    DROP COLUMN organization_id;

DROP TRIGGER parameters_inherit_organization ON parameters;
ALTER TABLE parameters
    ADD CONSTRAINT parameters_model_id_fkey FOREIGN KEY (model_id)
        REFERENCES financial_models (id) ON DELETE CASCADE,
    DROP CONSTRAINT parameters_model_id_organization_id_fkey,
    DROP COLUMN organization_id;

DROP TRIGGER scenarios_inherit_organization ON scenarios;
ALTER TABLE scenarios
    ADD CONSTRAINT scenarios_model_id_fkey FOREIGN KEY (model_id)
        REFERENCES financial_models (id) ON DELETE CASCADE,
    DROP CONSTRAINT scenarios_model_id_organization_id_fkey,
    DROP CONSTRAINT scenarios_id_organization_id_key,
    DROP COLUMN organization_id;

DROP FUNCTION fv_inherit_organization();
ALTER TABLE financial_models DROP CONSTRAINT financial_models_id_organization_id_key;
