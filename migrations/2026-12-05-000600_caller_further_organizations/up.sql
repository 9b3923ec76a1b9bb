-- `fv.orgs` names only the caller's further organizations: those after the first, which
-- `fv.org` already names. Empty (NULL to the policies) when there are none, which is the
-- common case: a user in one organization, an API key, the server's own work, nobody.
--
-- Why: a policy's last arm, `organization_id = ANY ((SELECT fv_scope_orgs())::uuid[])`, is
-- evaluated for every row the first arm rejects, which is every foreign row a plan reads and
-- filters (a generic plan's sequential scan of `financial_models` in a read of one scenario
-- reads ~500 of them at the benchmark's full scale). Over an array it takes it apart for each
-- row; over NULL it stops at once. That arm cost a read of one scenario with its model and
-- organization 25 % more instructions in the database (callgrind, bench/rls_cost.py:
-- +33.0 % over no row-level security before, +7.8 % after).
--
-- The server writes the settings itself (src/db/caller.rs); `fv_set_caller` derives the same
-- in SQL for the membership trigger, and a test checks that both agree for every kind of caller.
CREATE OR REPLACE FUNCTION fv_set_caller(caller text, local boolean) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('fv.caller', caller, local);
    PERFORM set_config('fv.all', CASE WHEN caller = 'all' THEN 'on' ELSE 'off' END, local);
    PERFORM set_config('fv.org',
        coalesce(fv_caller_org()::text, '00000000-0000-0000-0000-000000000000'), local);
    PERFORM set_config('fv.orgs', CASE WHEN cardinality(fv_caller_orgs()) > 1
                                       THEN (fv_caller_orgs())[2:]::text ELSE '' END, local);
    RETURN caller;
END
$$;

COMMENT ON FUNCTION fv_scope_orgs() IS
    'The caller''s organizations after the first (fv.orgs), or NULL when there are none.';
