DROP TABLE metric_values;
DROP TABLE metric_dependencies;
DROP TABLE metrics;
DROP TABLE parameter_values;
DROP TABLE parameters;
DROP TABLE scenarios;
DROP TABLE model_files;
DROP TABLE financial_models;
