-- Every policy tries the caller's first organization by equality before the list: a user of one
-- organization (most of them) or an API key passes each row with one comparison of two uuids.
-- `= ANY (list)` against a parameter takes the array apart again for every row it checks: on the
-- bench, reading a scenario's 2,880 values cost 0.46 ms under the policy against 0.39 ms with
-- no policy; with the equality first, 0.41 ms (pgbench, 1 client).

-- The first organization the caller names (an API key's one), or NULL.
CREATE FUNCTION fv_caller_org() RETURNS uuid
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
DECLARE
    caller text := coalesce(current_setting('fv.caller', true), '');
BEGIN
    IF caller LIKE 'o:%' THEN
        RETURN substr(caller, 3, 36)::uuid;
    ELSIF caller LIKE 'u:%' AND length(caller) > 39 THEN
        RETURN substr(caller, 40, 36)::uuid;
    END IF;
    RETURN NULL;
END
$$;
GRANT EXECUTE ON FUNCTION fv_caller_org() TO finvision_app;

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
