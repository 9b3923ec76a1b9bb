-- Row-level security: defence in depth behind the API's own checks. The server names its caller
-- in one custom setting, `fv.caller`, sent with the first statement of every checkout (see
-- `db::caller`): `all` (the server's own work: credential lookups, the audit listener, usage
-- flushes, the demo seed; and superadmins), `u:<user id>` (a user: the organizations of their
-- memberships), `o:<organization id>` (an API key: its one organization), or nothing (an
-- anonymous request: no organization). Tables are owned by the migrating role, which RLS does not
-- apply to (no FORCE): migrations and the SECURITY DEFINER functions below see everything.

-- Whether the caller sees every organization.
CREATE FUNCTION fv_sees_all() RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT coalesce(current_setting('fv.caller', true), '') = 'all'
$$;

-- The user the caller is (NULL for API keys, anonymous requests and the server's own work).
-- PL/pgSQL, as below: a statement is planned only when reached, so that the planner never
-- folds a cast of a setting that is not a UUID.
CREATE FUNCTION fv_caller_user() RETURNS uuid
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
DECLARE
    caller text := coalesce(current_setting('fv.caller', true), '');
BEGIN
    IF caller LIKE 'u:%' THEN
        RETURN substr(caller, 3)::uuid;
    END IF;
    RETURN NULL;
END
$$;

-- The organizations the caller belongs to: read as the owner (memberships are themselves under
-- RLS), and as of the calling statement, so that a membership created earlier in the same
-- transaction (a new organization's owner) counts at once. Policies call it as `(SELECT
-- fv_caller_orgs())`: an InitPlan, evaluated once per statement, not per row.
CREATE FUNCTION fv_caller_orgs() RETURNS uuid[]
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    caller text := coalesce(current_setting('fv.caller', true), '');
BEGIN
    IF caller LIKE 'o:%' THEN
        RETURN ARRAY[substr(caller, 3)::uuid];
    ELSIF caller LIKE 'u:%' THEN
        RETURN ARRAY(SELECT m.organization_id FROM public.memberships m
                     WHERE m.user_id = substr(caller, 3)::uuid);
    END IF;
    RETURN '{}'::uuid[];
END
$$;
REVOKE ALL ON FUNCTION fv_caller_orgs() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION fv_caller_orgs() TO finvision_app;

-- Whether an organization has no member yet: one being created, by a transaction that has not
-- added its owner (`INSERT … RETURNING` must see its row). Every other organization keeps at
-- least one OWNER, and an uncommitted one is invisible to other transactions anyway. Read as the
-- owner: under the caller's own view of memberships every foreign organization would look empty.
CREATE FUNCTION fv_org_without_members(org uuid) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT NOT EXISTS (SELECT 1 FROM public.memberships m WHERE m.organization_id = org)
$$;
REVOKE ALL ON FUNCTION fv_org_without_members(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION fv_org_without_members(uuid) TO finvision_app;

-- Tenant tables carrying organization_id.
ALTER TABLE organizations ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON organizations TO finvision_app
    USING ((SELECT fv_sees_all()) OR id = ANY ((SELECT fv_caller_orgs())::uuid[])
           OR ((SELECT fv_caller_user()) IS NOT NULL AND fv_org_without_members(id)))
    WITH CHECK ((SELECT fv_sees_all()) OR id = ANY ((SELECT fv_caller_orgs())::uuid[]) OR (SELECT fv_caller_user()) IS NOT NULL);

ALTER TABLE financial_models ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON financial_models TO finvision_app
    USING ((SELECT fv_sees_all()) OR organization_id = ANY ((SELECT fv_caller_orgs())::uuid[]));

ALTER TABLE api_keys ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON api_keys TO finvision_app
    USING ((SELECT fv_sees_all()) OR organization_id = ANY ((SELECT fv_caller_orgs())::uuid[]));

-- Memberships: a user's own (their organizations, joining a new one, leaving) and those of the
-- organizations they belong to (members, invitations).
ALTER TABLE memberships ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON memberships TO finvision_app
    USING ((SELECT fv_sees_all()) OR user_id = (SELECT fv_caller_user())
           OR organization_id = ANY ((SELECT fv_caller_orgs())::uuid[]));

-- Tables reached through their model: visible when the model is (the subquery is itself under
-- financial_models' policy, and runs once per statement as a hashed SubPlan).
ALTER TABLE scenarios ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON scenarios TO finvision_app
    USING ((SELECT fv_sees_all()) OR model_id IN (SELECT id FROM financial_models));

ALTER TABLE parameters ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON parameters TO finvision_app
    USING ((SELECT fv_sees_all()) OR model_id IN (SELECT id FROM financial_models));

ALTER TABLE metrics ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON metrics TO finvision_app
    USING ((SELECT fv_sees_all()) OR model_id IN (SELECT id FROM financial_models));

ALTER TABLE model_files ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON model_files TO finvision_app
    USING ((SELECT fv_sees_all()) OR model_id IN (SELECT id FROM financial_models));

-- Grandchildren: through their scenario or metric (themselves under their model's policy).
ALTER TABLE parameter_values ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON parameter_values TO finvision_app
    USING ((SELECT fv_sees_all()) OR scenario_id IN (SELECT id FROM scenarios));

ALTER TABLE metric_values ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON metric_values TO finvision_app
    USING ((SELECT fv_sees_all()) OR scenario_id IN (SELECT id FROM scenarios));

ALTER TABLE metric_dependencies ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON metric_dependencies TO finvision_app
    USING ((SELECT fv_sees_all()) OR metric_id IN (SELECT id FROM metrics));

-- The audit trail: an organization's events to its members; platform events (no organization:
-- sign-ins, registrations, failed attempts) stay readable and writable by every context, since
-- sign-in throttling counts them before anyone is known. Append-only: no UPDATE or DELETE
-- policy (and no such grant).
ALTER TABLE audit_events ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_read ON audit_events FOR SELECT TO finvision_app
    USING ((SELECT fv_sees_all()) OR organization_id IS NULL
           OR organization_id = ANY ((SELECT fv_caller_orgs())::uuid[])
           OR actor_user_id = (SELECT fv_caller_user()));
-- Appending: to the caller's organizations, or as the actor (a member who has just left, in the
-- same transaction, records their leaving; `INSERT … RETURNING` needs the row readable too,
-- hence the actor's own events in the read policy).
CREATE POLICY tenant_append ON audit_events FOR INSERT TO finvision_app
    WITH CHECK ((SELECT fv_sees_all()) OR organization_id IS NULL
                OR organization_id = ANY ((SELECT fv_caller_orgs())::uuid[])
                OR actor_user_id = (SELECT fv_caller_user()));

-- The head of an organization's chain (or of the platform's, for NULL), whatever the caller may
-- read: the hash of an event must not depend on who appends it (a member who has just left no
-- longer sees the organization's events). Called under the chain's advisory lock.
CREATE FUNCTION fv_audit_chain_head(org uuid) RETURNS bytea
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    IF org IS NULL THEN
        RETURN (SELECT e.hash FROM public.audit_events e WHERE e.organization_id IS NULL
                ORDER BY e.id DESC LIMIT 1);
    END IF;
    RETURN (SELECT e.hash FROM public.audit_events e WHERE e.organization_id = org
            ORDER BY e.id DESC LIMIT 1);
END
$$;
REVOKE ALL ON FUNCTION fv_audit_chain_head(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION fv_audit_chain_head(uuid) TO finvision_app;

-- users and sessions stay without RLS: both are read before the caller is known (sign-in by
-- e-mail, a session by its token's hash, registration), hold no tenant data, and their secrets
-- are hashes; the API's own rules decide which users a caller sees.
