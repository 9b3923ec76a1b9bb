-- Cheaper policies. Every execution of a statement builds and initialises the InitPlans of
-- every policy it meets (run or not), with a permission check and a function lookup for each
-- function call in them, and a PL/pgSQL body adds its own frame. The policies of …000420 read
-- the caller through `fv_sees_all()`, `fv_caller_org()` and `fv_caller_orgs()`, which parse
-- `fv.caller`: three InitPlans per table, and a read of one scenario with its model and
-- organization cost 54-57 % more instructions in the database than without row-level security
-- (callgrind, bench/README.md "Row-level security: fewer and cheaper InitPlans"; the parsing as
-- inlined SQL takes ten built-in calls per InitPlan and was no cheaper than PL/pgSQL).
--
-- Now the caller is also written out in three settings, which the server sets with `fv.caller`
-- at each checkout (src/db/caller.rs) and `fv_set_caller` derives from it in SQL, and each
-- policy reads them with one or two built-in calls per InitPlan:
--   fv.org    the caller's first organization (most users have one; an API key has one), or
--             the nil UUID: `organization_id = fv_scope_org()` first, one comparison per row;
--   fv.all    'on' for the server's own work and superadmins;
--   fv.orgs   every organization of the caller, as an array literal.
-- Never set, or emptied, they admit nothing: closed, not open.

CREATE FUNCTION fv_scope_org() RETURNS uuid
LANGUAGE sql STABLE PARALLEL SAFE AS $$ SELECT nullif(current_setting('fv.org', true), '')::uuid $$;
CREATE FUNCTION fv_scope_all() RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS $$ SELECT current_setting('fv.all', true) = 'on' $$;
CREATE FUNCTION fv_scope_orgs() RETURNS uuid[]
LANGUAGE sql STABLE PARALLEL SAFE AS $$ SELECT nullif(current_setting('fv.orgs', true), '')::uuid[] $$;
GRANT EXECUTE ON FUNCTION fv_scope_org(), fv_scope_all(), fv_scope_orgs() TO finvision_app;

-- The caller (the `fv.caller` text of …000402: 'all', 'u:<user>:<org>,…', 'o:<org>' or '') and
-- the three settings derived from it, for the session or (`local`) the transaction.
CREATE FUNCTION fv_set_caller(caller text, local boolean) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('fv.caller', caller, local);
    PERFORM set_config('fv.all', CASE WHEN caller = 'all' THEN 'on' ELSE 'off' END, local);
    PERFORM set_config('fv.org',
        coalesce(fv_caller_org()::text, '00000000-0000-0000-0000-000000000000'), local);
    PERFORM set_config('fv.orgs', fv_caller_orgs()::text, local);
    RETURN caller;
END
$$;
GRANT EXECUTE ON FUNCTION fv_set_caller(text, boolean) TO finvision_app;

-- A transaction that changes the caller's own memberships renames their organizations (…000402),
-- in all four settings now.
CREATE OR REPLACE FUNCTION fv_memberships_rename_caller() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    caller text := coalesce(current_setting('fv.caller', true), '');
BEGIN
    IF caller LIKE 'u:%' THEN
        PERFORM fv_set_caller(substr(caller, 1, 38) || ':' || coalesce(
            (SELECT string_agg(m.organization_id::text, ',') FROM memberships m
             WHERE m.user_id = substr(caller, 3, 36)::uuid), ''), true);
    END IF;
    RETURN NULL;
END
$$;

ALTER POLICY tenant ON api_keys
    USING (organization_id = (SELECT fv_scope_org()) OR (SELECT fv_scope_all()) OR organization_id = ANY ((SELECT fv_scope_orgs())::uuid[]));
ALTER POLICY tenant ON financial_models
    USING (organization_id = (SELECT fv_scope_org()) OR (SELECT fv_scope_all()) OR organization_id = ANY ((SELECT fv_scope_orgs())::uuid[]));
ALTER POLICY tenant ON scenarios
    USING (organization_id = (SELECT fv_scope_org()) OR (SELECT fv_scope_all()) OR organization_id = ANY ((SELECT fv_scope_orgs())::uuid[]));
ALTER POLICY tenant ON parameters
    USING (organization_id = (SELECT fv_scope_org()) OR (SELECT fv_scope_all()) OR organization_id = ANY ((SELECT fv_scope_orgs())::uuid[]));
ALTER POLICY tenant ON metrics
    USING (organization_id = (SELECT fv_scope_org()) OR (SELECT fv_scope_all()) OR organization_id = ANY ((SELECT fv_scope_orgs())::uuid[]));
ALTER POLICY tenant ON model_files
    USING (organization_id = (SELECT fv_scope_org()) OR (SELECT fv_scope_all()) OR organization_id = ANY ((SELECT fv_scope_orgs())::uuid[]));
ALTER POLICY tenant ON parameter_values
    USING (organization_id = (SELECT fv_scope_org()) OR (SELECT fv_scope_all()) OR organization_id = ANY ((SELECT fv_scope_orgs())::uuid[]));
ALTER POLICY tenant ON metric_values
    USING (organization_id = (SELECT fv_scope_org()) OR (SELECT fv_scope_all()) OR organization_id = ANY ((SELECT fv_scope_orgs())::uuid[]));
ALTER POLICY tenant ON metric_dependencies
    USING (organization_id = (SELECT fv_scope_org()) OR (SELECT fv_scope_all()) OR organization_id = ANY ((SELECT fv_scope_orgs())::uuid[]));
ALTER POLICY tenant ON reports
    USING (organization_id = (SELECT fv_scope_org()) OR (SELECT fv_scope_all()) OR organization_id = ANY ((SELECT fv_scope_orgs())::uuid[]));
ALTER POLICY tenant ON audit_archives
    USING (organization_id = (SELECT fv_scope_org()) OR (SELECT fv_scope_all()) OR organization_id = ANY ((SELECT fv_scope_orgs())::uuid[]));
-- Their own memberships too: the user's organizations, joining one, leaving one.
ALTER POLICY tenant ON memberships
    USING (organization_id = (SELECT fv_scope_org()) OR (SELECT fv_scope_all()) OR organization_id = ANY ((SELECT fv_scope_orgs())::uuid[]) OR user_id = (SELECT fv_caller_user()));
-- And an organization being created, before its owner's membership exists.
ALTER POLICY tenant ON organizations
    USING (id = (SELECT fv_scope_org()) OR (SELECT fv_scope_all()) OR id = ANY ((SELECT fv_scope_orgs())::uuid[])
           OR ((SELECT fv_caller_user()) IS NOT NULL AND fv_org_without_members(id)))
    WITH CHECK (id = (SELECT fv_scope_org()) OR (SELECT fv_scope_all()) OR id = ANY ((SELECT fv_scope_orgs())::uuid[]) OR (SELECT fv_caller_user()) IS NOT NULL);
ALTER POLICY tenant_read ON audit_events
    USING (organization_id = (SELECT fv_scope_org()) OR (SELECT fv_scope_all()) OR organization_id = ANY ((SELECT fv_scope_orgs())::uuid[]) OR organization_id IS NULL
           OR actor_user_id = (SELECT fv_caller_user()));
ALTER POLICY tenant_append ON audit_events
    WITH CHECK (organization_id = (SELECT fv_scope_org()) OR (SELECT fv_scope_all()) OR organization_id = ANY ((SELECT fv_scope_orgs())::uuid[]) OR organization_id IS NULL
                OR actor_user_id = (SELECT fv_caller_user()));

-- The server's connections keep generic plans (`SET plan_cache_mode = force_generic_plan`,
-- src/db/pool.rs). Search is the one place where a custom plan can matter (a pattern's
-- selectivity decides between its trigram indexes and a scan): it keeps PostgreSQL's choice.
ALTER FUNCTION fv_search(uuid, text, text[], integer) SET plan_cache_mode = auto;
