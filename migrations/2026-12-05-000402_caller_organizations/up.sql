-- The caller's organizations come with the caller: `fv.caller` is `u:<user>:<org>,<org>…` for a
-- user, the organizations the server read with their credential. The policies compared with
-- `fv_caller_orgs()`, which read the user's memberships as the owner (SECURITY DEFINER) once per
-- statement and table: on the bench it cost more than everything else a simple read does (a
-- SECURITY DEFINER call with its lookup ~60 µs, against under 1 µs to parse the list). The list
-- is as trustworthy as the user id next to it: the server sets both from the credential it
-- verified, and neither is a wall against SQL injection (see 000201).

-- The user: the 36 characters after `u:`.
CREATE OR REPLACE FUNCTION fv_caller_user() RETURNS uuid
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
DECLARE
    caller text := coalesce(current_setting('fv.caller', true), '');
BEGIN
    IF caller LIKE 'u:%' THEN
        RETURN substr(caller, 3, 36)::uuid;
    END IF;
    RETURN NULL;
END
$$;

-- Their organizations: the list after `u:<user>:`, or an API key's one organization. No table
-- is read, and the function runs as the caller (no SECURITY DEFINER).
CREATE OR REPLACE FUNCTION fv_caller_orgs() RETURNS uuid[]
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
DECLARE
    caller text := coalesce(current_setting('fv.caller', true), '');
BEGIN
    IF caller LIKE 'o:%' THEN
        RETURN ARRAY[substr(caller, 3)::uuid];
    ELSIF caller LIKE 'u:%' AND length(caller) > 39 THEN
        RETURN string_to_array(substr(caller, 40), ',')::uuid[];
    END IF;
    RETURN '{}'::uuid[];
END
$$;

-- A transaction that changes the caller's own memberships (creating an organization makes
-- them its OWNER; leaving one) renames their organizations for the rest of the transaction,
-- read from the table as the caller (their own memberships are theirs to see): the audit event
-- and the rows it writes next are in an organization the policies now admit. The request reads
-- its caller again after such a change (`reread_caller`), so its later checkouts agree.
CREATE FUNCTION fv_memberships_rename_caller() RETURNS trigger
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
CREATE TRIGGER memberships_rename_caller AFTER INSERT OR UPDATE OR DELETE ON memberships
    FOR EACH STATEMENT EXECUTE FUNCTION fv_memberships_rename_caller();
