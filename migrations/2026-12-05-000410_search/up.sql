-- Search (`Query.search`): typo-tolerant, ranked search over the names and descriptions of an
-- organization's models and scenarios and the keys, names and descriptions of its metrics and
-- parameters, with pg_trgm (postgresql-contrib; trusted since PostgreSQL 13, so a database
-- owner may create it).
CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- btree_gin (postgresql-contrib too, trusted likewise) lets a GIN index hold a plain column next
-- to the trigrams, so that one index serves "this organization" and "this text" together.
CREATE EXTENSION IF NOT EXISTS btree_gin;

-- The organization's rows, for a search that reads them all and filters (the common plan: an
-- organization holds a few thousand rows at most, and trigram posting lists are long when
-- tenants share a vocabulary). financial_models has financial_models_organization_id_idx; the
-- children of 000400 have their organization only as the second column of a unique key.
CREATE INDEX scenarios_organization_id_idx ON scenarios (organization_id);
CREATE INDEX metrics_organization_id_idx ON metrics (organization_id);
CREATE INDEX parameters_organization_id_idx ON parameters (organization_id);

-- One index per table over the organization and the text a hit can match ("the document").
-- `fv_search` repeats these expressions exactly, so that the planner matches them to the
-- indexes. Models and scenarios are searched only while live: the indexes leave soft-deleted
-- rows out.
CREATE INDEX financial_models_search_idx ON financial_models
    USING gin (organization_id, (name || ' ' || coalesce(description, '')) gin_trgm_ops)
    WHERE deleted_at IS NULL;
CREATE INDEX scenarios_search_idx ON scenarios
    USING gin (organization_id, (name || ' ' || coalesce(description, '')) gin_trgm_ops)
    WHERE deleted_at IS NULL;
CREATE INDEX metrics_search_idx ON metrics
    USING gin (organization_id, (key || ' ' || name || ' ' || coalesce(description, '')) gin_trgm_ops);
CREATE INDEX parameters_search_idx ON parameters
    USING gin (organization_id, (key || ' ' || name) gin_trgm_ops);

-- The search itself: one statement for the four kinds, ranked, at most `max_hits` rows.
--
-- Why a SECURITY DEFINER function rather than SQL sent by the server (PL/pgSQL, whose plans
-- are cached per connection, where a SQL function's body is planned again on every call):
-- * Row-level security. Under the application role's policies, PostgreSQL may not evaluate a
--   condition whose function is not LEAKPROOF (pg_trgm's operators, ILIKE) before the policy's,
--   so it never uses an index for it: every search would read every row the policy admits,
--   table by table. This function runs as the tables' owner, whom the policies do not bind, and
--   applies the same rule itself, once: the organization must be one the caller's context
--   admits (`fv_sees_all()` or `fv_caller_orgs()`, exactly the rule every tenant table's policy
--   applies to its organization_id). It returns nothing but that organization's rows.
-- * The fuzzy threshold. `<%` matches when word_similarity >= pg_trgm.word_similarity_threshold
--   (0.6 by default; a transposition such as "donwside" for "downside" scores 0.38). The SET
--   clause below applies 0.35 for this function's duration only: no session state, so it holds
--   behind PgBouncer and on replicas alike.
-- * The plan. Every table carries organization_id (000400): per table, the planner reads the
--   organization's rows through `<table>_organization_id_idx` and filters them, or, when the
--   organization holds many rows and the query is selective, the `(organization_id, text)`
--   trigram index above finds the matching rows of that organization alone. Either way the cost
--   follows the organization's size, not the number of tenants. A scenario, metric or parameter
--   also needs its model live; the join names the model's organization too (equal by the
--   composite foreign key) so that it reads that organization's models, not every tenant's.
--   Sequential scans stay off for this function: PostgreSQL costs the trigram filters like any
--   cheap operator, so where one organization holds every row (a single-tenant server, the
--   embedded default) it read whole tables and ran word_similarity on each rather than take the
--   trigram index (bench dataset moved into one organization: "ebitda" p50 21 ms against 9 ms
--   with the setting). With several tenants the plans are the same with or without it.
--
-- Ranking: score = tier + (word_similarity(query, document) + similarity(query, title)) / 2,
-- where the tier is 3 when the title or key starts with the query, 2 when every word of the
-- query starts a word of the document, 1 when the document contains the query, 0 for a fuzzy
-- match only; so literal matches come first, prefixes and whole words before fragments, and
-- within a tier the closer text first. Input is literal: LIKE patterns escape `\`, `%` and `_`,
-- regular expressions escape every character that is not a letter, digit or space.
CREATE FUNCTION fv_search(org uuid, query text, kinds text[], max_hits integer)
RETURNS TABLE (kind text, id uuid, title text, key text, description text, score double precision)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, public
SET pg_trgm.word_similarity_threshold = 0.35
SET enable_seqscan = off
AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    WITH words AS (
        -- Each word of the query, as a regular expression matching it at the start of a word.
        SELECT coalesce(array_agg('(^|[^[:alnum:]])'
                                  || regexp_replace(w, '([^[:alnum:][:space:]])', '\\\1', 'g')),
                        '{}') AS starts
        FROM regexp_split_to_table(lower(query), '\s+') AS w
        WHERE w <> ''
    ),
    hits AS (
        SELECT 'MODEL' AS kind, m.id, m.name AS title, NULL::text AS key, m.description,
               m.name || ' ' || coalesce(m.description, '') AS doc
        FROM public.financial_models m
        WHERE 'MODEL' = ANY (kinds) AND m.organization_id = org AND m.deleted_at IS NULL
          AND ((m.name || ' ' || coalesce(m.description, ''))
                   ILIKE '%' || replace(replace(replace(query, '\', '\\'), '%', '\%'), '_', '\_') || '%'
               OR query <% (m.name || ' ' || coalesce(m.description, '')))
        UNION ALL
        SELECT 'SCENARIO', s.id, s.name, NULL, s.description,
               s.name || ' ' || coalesce(s.description, '')
        FROM public.scenarios s
        JOIN public.financial_models m ON m.id = s.model_id
        WHERE 'SCENARIO' = ANY (kinds) AND s.organization_id = org
          AND m.organization_id = org AND m.deleted_at IS NULL
          AND s.deleted_at IS NULL
          AND ((s.name || ' ' || coalesce(s.description, ''))
                   ILIKE '%' || replace(replace(replace(query, '\', '\\'), '%', '\%'), '_', '\_') || '%'
               OR query <% (s.name || ' ' || coalesce(s.description, '')))
        UNION ALL
        SELECT 'METRIC', x.id, x.name, x.key, x.description,
               x.key || ' ' || x.name || ' ' || coalesce(x.description, '')
        FROM public.metrics x
        JOIN public.financial_models m ON m.id = x.model_id
        WHERE 'METRIC' = ANY (kinds) AND x.organization_id = org
          AND m.organization_id = org AND m.deleted_at IS NULL
          AND ((x.key || ' ' || x.name || ' ' || coalesce(x.description, ''))
                   ILIKE '%' || replace(replace(replace(query, '\', '\\'), '%', '\%'), '_', '\_') || '%'
               OR query <% (x.key || ' ' || x.name || ' ' || coalesce(x.description, '')))
        UNION ALL
        SELECT 'PARAMETER', p.id, p.name, p.key, NULL,
               p.key || ' ' || p.name
        FROM public.parameters p
        JOIN public.financial_models m ON m.id = p.model_id
        WHERE 'PARAMETER' = ANY (kinds) AND p.organization_id = org
          AND m.organization_id = org AND m.deleted_at IS NULL
          AND ((p.key || ' ' || p.name)
                   ILIKE '%' || replace(replace(replace(query, '\', '\\'), '%', '\%'), '_', '\_') || '%'
               OR query <% (p.key || ' ' || p.name))
    )
    SELECT h.kind, h.id, h.title, h.key, h.description,
           (CASE
                WHEN h.title ILIKE replace(replace(replace(query, '\', '\\'), '%', '\%'), '_', '\_') || '%'
                  OR h.key ILIKE replace(replace(replace(query, '\', '\\'), '%', '\%'), '_', '\_') || '%'
                    THEN 3
                WHEN (SELECT bool_and(lower(h.doc) ~ r) FROM unnest(words.starts) AS r) THEN 2
                WHEN h.doc ILIKE '%' || replace(replace(replace(query, '\', '\\'), '%', '\%'), '_', '\_') || '%'
                    THEN 1
                ELSE 0
            END
            + (word_similarity(query, h.doc) + similarity(query, h.title)) / 2)::double precision
    FROM hits h, words
    WHERE (SELECT public.fv_sees_all() OR org = ANY (public.fv_caller_orgs()))
    ORDER BY 6 DESC, lower(h.title), h.kind, h.id
    LIMIT max_hits;
END
$$;
REVOKE ALL ON FUNCTION fv_search(uuid, text, text[], integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION fv_search(uuid, text, text[], integer) TO finvision_app;
