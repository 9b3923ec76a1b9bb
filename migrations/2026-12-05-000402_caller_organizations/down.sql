DROP TRIGGER memberships_rename_caller ON memberships;
DROP FUNCTION fv_memberships_rename_caller();

CREATE OR REPLACE FUNCTION fv_caller_user() RETURNS uuid
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

CREATE OR REPLACE FUNCTION fv_caller_orgs() RETURNS uuid[]
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
