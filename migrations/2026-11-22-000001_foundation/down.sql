DROP FUNCTION fv_set_updated_at();
