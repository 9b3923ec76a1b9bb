ALTER POLICY tenant ON api_keys
    USING ((SELECT fv_sees_all()) OR organization_id = ANY ((SELECT fv_caller_orgs())::uuid[]));
ALTER POLICY tenant ON financial_models
    USING ((SELECT fv_sees_all()) OR organization_id = ANY ((SELECT fv_caller_orgs())::uuid[]));
ALTER POLICY tenant ON scenarios
    USING ((SELECT fv_sees_all()) OR organization_id = ANY ((SELECT fv_caller_orgs())::uuid[]));
ALTER POLICY tenant ON parameters
    USING ((SELECT fv_sees_all()) OR organization_id = ANY ((SELECT fv_caller_orgs())::uuid[]));
ALTER POLICY tenant ON metrics
    USING ((SELECT fv_sees_all()) OR organization_id = ANY ((SELECT fv_caller_orgs())::uuid[]));
ALTER POLICY tenant ON model_files
    USING ((SELECT fv_sees_all()) OR organization_id = ANY ((SELECT fv_caller_orgs())::uuid[]));
ALTER POLICY tenant ON parameter_values
    USING ((SELECT fv_sees_all()) OR organization_id = ANY ((SELECT fv_caller_orgs())::uuid[]));
ALTER POLICY tenant ON metric_values
    USING ((SELECT fv_sees_all()) OR organization_id = ANY ((SELECT fv_caller_orgs())::uuid[]));
ALTER POLICY tenant ON metric_dependencies
    USING ((SELECT fv_sees_all()) OR organization_id = ANY ((SELECT fv_caller_orgs())::uuid[]));
ALTER POLICY tenant ON reports
    USING ((SELECT fv_sees_all()) OR organization_id = ANY ((SELECT fv_caller_orgs())::uuid[]));
ALTER POLICY tenant ON audit_archives
    USING ((SELECT fv_sees_all()) OR organization_id = ANY ((SELECT fv_caller_orgs())::uuid[]));
ALTER POLICY tenant ON memberships
    USING ((SELECT fv_sees_all()) OR user_id = (SELECT fv_caller_user()) OR organization_id = ANY ((SELECT fv_caller_orgs())::uuid[]));
ALTER POLICY tenant ON organizations
    USING ((SELECT fv_sees_all()) OR id = ANY ((SELECT fv_caller_orgs())::uuid[])
           OR ((SELECT fv_caller_user()) IS NOT NULL AND fv_org_without_members(id)))
    WITH CHECK ((SELECT fv_sees_all()) OR id = ANY ((SELECT fv_caller_orgs())::uuid[]) OR (SELECT fv_caller_user()) IS NOT NULL);
ALTER POLICY tenant_read ON audit_events
    USING ((SELECT fv_sees_all()) OR organization_id IS NULL OR organization_id = ANY ((SELECT fv_caller_orgs())::uuid[])
           OR actor_user_id = (SELECT fv_caller_user()));
ALTER POLICY tenant_append ON audit_events
    WITH CHECK ((SELECT fv_sees_all()) OR organization_id IS NULL OR organization_id = ANY ((SELECT fv_caller_orgs())::uuid[])
                OR actor_user_id = (SELECT fv_caller_user()));
DROP FUNCTION fv_caller_org();
