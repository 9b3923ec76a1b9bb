-- Shared trigger function: keeps `updated_at` current on every UPDATE.
-- Attached (BEFORE UPDATE FOR EACH ROW) to every table that has an `updated_at` column.
CREATE FUNCTION fv_set_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;
