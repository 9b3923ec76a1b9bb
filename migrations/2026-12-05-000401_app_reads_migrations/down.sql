REVOKE SELECT ON __diesel_schema_migrations FROM finvision_app;
