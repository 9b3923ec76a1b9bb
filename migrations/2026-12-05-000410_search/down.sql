DROP FUNCTION fv_search(uuid, text, text[], integer);
DROP INDEX parameters_search_idx;
DROP INDEX metrics_search_idx;
DROP INDEX scenarios_search_idx;
DROP INDEX financial_models_search_idx;
DROP INDEX parameters_organization_id_idx;
DROP INDEX metrics_organization_id_idx;
DROP INDEX scenarios_organization_id_idx;
-- Nothing else here uses them; a database where something does keeps them.
DROP EXTENSION IF EXISTS btree_gin RESTRICT;
DROP EXTENSION IF EXISTS pg_trgm RESTRICT;
