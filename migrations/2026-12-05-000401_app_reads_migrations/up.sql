-- The application role may see which migrations ran (and nothing else of the table): a server
-- that connects as that role alone checks, without writing, that the owner has migrated.
GRANT SELECT ON __diesel_schema_migrations TO finvision_app;
