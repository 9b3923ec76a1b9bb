-- The role is cluster-wide and other databases may use it: only this database's grants go.
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM finvision_app;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM finvision_app;
REVOKE USAGE ON SCHEMA public FROM finvision_app;
