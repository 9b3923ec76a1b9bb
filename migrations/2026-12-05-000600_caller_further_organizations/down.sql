-- `fv.orgs` names every organization of the caller again (…000430).
COMMENT ON FUNCTION fv_scope_orgs() IS NULL;

CREATE OR REPLACE FUNCTION fv_set_caller(caller text, local boolean) RETURNS text
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
