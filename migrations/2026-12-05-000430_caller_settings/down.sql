-- The policies of …000420, reading `fv.caller` through its functions again.
ALTER POLICY tenant ON api_keys
    USING ((SELECT fv_sees_all()) OR organization_id = (SELECT fv_caller_org()) OR organization_id = ANY ((SELECT fv_caller_orgs())::uuid[]));
ALTER POLICY tenant ON financial_models
    USING ((SELECT fv_sees_all()) OR organization_id = (SELECT fv_caller_org()) OR organization_id = ANY ((SELECT fv_caller_orgs())::uuid[]));
ALTER POLICY tenant ON scenarios
    USING ((SELECT fv_sees_all()) OR organization_id = (SELECT fv_caller_org()) OR organization_id = ANY ((SELECT fv_caller_orgs())::uuid[]));
ALTER POLICY tenant ON parameters
    USING ((SELECT fv_sees_all()) OR organization_id = (SELECT fv_caller_org()) OR organization_id = ANY ((SELECT fv_caller_orgs())::uuid[]));
ALTER POLICY tenant ON metrics
    USING ((SELECT fv_sees_all()) OR organization_id = (SELECT fv_caller_org()) OR organization_id = ANY ((SELECT fv_caller_orgs())::uuid[]));
ALTER POLICY tenant ON model_files
    USING ((SELECT fv_sees_all()) OR organization_id = (SELECT fv_caller_org()) OR organization_id = ANY ((SELECT fv_caller_orgs())::uuid[]));
ALTER POLICY tenant ON parameter_values
    USING ((SELECT fv_sees_all()) OR organization_id = (SELECT fv_caller_org()) OR organization_id = ANY ((SELECT fv_caller_orgs())::uuid[]));
ALTER POLICY tenant ON metric_values
    USING ((SELECT fv_sees_all()) OR organization_id = (SELECT fv_caller_org()) OR organization_id = ANY ((SELECT fv_caller_orgs())::uuid[]));
ALTER POLICY tenant ON metric_dependencies
    USING ((SELECT fv_sees_all()) OR organization_id = (SELECT fv_caller_org()) OR organization_id = ANY ((SELECT fv_caller_orgs())::uuid[]));
ALTER POLICY tenant ON reports
    USING ((SELECT fv_sees_all()) OR organization_id = (SELECT fv_caller_org()) OR organization_id = ANY ((SELECT fv_caller_orgs())::uuid[]));
ALTER POLICY tenant ON audit_archives
    USING ((SELECT fv_sees_all()) OR organization_id = (SELECT fv_caller_org()) OR organization_id = ANY ((SELECT fv_caller_orgs())::uuid[]));
ALTER POLICY tenant ON memberships
    USING ((SELECT fv_sees_all()) OR organization_id = (SELECT fv_caller_org()) OR user_id = (SELECT fv_caller_user()) OR organization_id = ANY ((SELECT fv_caller_orgs())::uuid[]));
ALTER POLICY tenant ON organizations
    USING ((SELECT fv_sees_all()) OR id = (SELECT fv_caller_org()) OR id = ANY ((SELECT fv_caller_orgs())::uuid[])
           OR ((SELECT fv_caller_user()) IS NOT NULL AND fv_org_without_members(id)))
    WITH CHECK ((SELECT fv_sees_all()) OR id = (SELECT fv_caller_org()) OR id = ANY ((SELECT fv_caller_orgs())::uuid[])
                OR (SELECT fv_caller_user()) IS NOT NULL);
ALTER POLICY tenant_read ON audit_events
    USING ((SELECT fv_sees_all()) OR organization_id = (SELECT fv_caller_org()) OR organization_id IS NULL OR organization_id = ANY ((SELECT fv_caller_orgs())::uuid[])
           OR actor_user_id = (SELECT fv_caller_user()));
ALTER POLICY tenant_append ON audit_events
    WITH CHECK ((SELECT fv_sees_all()) OR organization_id = (SELECT fv_caller_org()) OR organization_id IS NULL OR organization_id = ANY ((SELECT fv_caller_orgs())::uuid[])
                OR actor_user_id = (SELECT fv_caller_user()));

CREATE OR REPLACE FUNCTION fv_memberships_rename_caller() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    caller text := coalesce(current_setting('fv.caller', true), '');
BEGIN
    IF caller LIKE 'u:%' THEN
        PERFORM set_config('fv.caller', substr(caller, 1, 38) || ':' || coalesce(
            (SELECT string_agg(m.organization_id::text, ',') FROM memberships m
             WHERE m.user_id = substr(caller, 3, 36)::uuid), ''), true);
    END IF;
    RETURN NULL;
END
$$;

DROP FUNCTION fv_set_caller(text, boolean);
DROP FUNCTION fv_scope_org();
DROP FUNCTION fv_scope_all();
DROP FUNCTION fv_scope_orgs();
ALTER FUNCTION fv_search(uuid, text, text[], integer) RESET plan_cache_mode;
