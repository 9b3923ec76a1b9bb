DROP FUNCTION fv_search(uuid, text, text[], integer);
DROP INDEX parameters_search_idx;
DROP INDEX metrics_search_idx;
DROP INDEX scenarios_search_idx;
DROP INDEX financial_models_search_idx;
-- Nothing else here uses it; a database where something does keeps it.
DROP EXTENSION IF EXISTS pg_trgm RESTRICT;
