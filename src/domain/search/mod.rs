//! Search over one organization's modelling objects: model and scenario names and descriptions,
//! metric and parameter keys, names and descriptions. Ranked and typo-tolerant with pg_trgm.
//!
//! The statement is the migration's `fv_search` function (`migrations/…_search/up.sql`): one
//! statement for every kind, ranked and limited in the database, whatever the number of hits.
//! It is a function, not SQL built here, because it must run as the tables' owner for its
//! trigram indexes to be usable under row-level security (it applies the tenant rule itself) and
//! because it carries its own fuzzy threshold; both reasons are spelled out there. What stays
//! here are the rules of the input (what a query may be) and the snippets.

pub mod snippet;

use diesel::{
    QueryableByName,
    sql_types::{Array, Double, Integer, Nullable, Text},
};
use diesel_async::RunQueryDsl;
use uuid::Uuid;

use crate::{
    domain::{Core, text_enum::text_enum},
    error::{AppError, AppResult},
};

/// Longest query accepted, in characters: longer text is a pasted document, not a search, and
/// each character costs trigram work.
pub const MAX_QUERY_CHARS: usize = 200;
/// Hits returned when the caller does not say.
pub const DEFAULT_HITS: i32 = 20;
/// Most hits one search returns.
pub const MAX_HITS: i32 = 100;

text_enum! {
    /// What a hit is.
    pub enum SearchKind {
        /// A financial model.
        Model => "MODEL",
        /// A scenario.
        Scenario => "SCENARIO",
        /// A metric.
        Metric => "METRIC",
        /// A parameter.
        Parameter => "PARAMETER",
    }
}

impl SearchKind {
    /// Every kind, in the order hits of equal score are listed.
    pub const ALL: [SearchKind; 4] = [
        SearchKind::Model,
        SearchKind::Scenario,
        SearchKind::Metric,
        SearchKind::Parameter,
    ];
}

/// A search as asked, checked: build it with [`SearchRequest::new`].
#[derive(Debug, Clone)]
pub struct SearchRequest {
    organization_id: Uuid,
    query: String,
    kinds: Vec<SearchKind>,
    first: i32,
}

impl SearchRequest {
    /// Check the input: a query of 1 to [`MAX_QUERY_CHARS`] characters once trimmed, at least
    /// one kind when kinds are given (`None`: every kind), and 1 to [`MAX_HITS`] hits. Each
    /// refusal is `BAD_USER_INPUT` naming the argument.
    pub fn new(
        organization_id: Uuid,
        query: &str,
        kinds: Option<Vec<SearchKind>>,
        first: Option<i32>,
    ) -> AppResult<Self> {
        let query = query.trim();
        if query.is_empty() {
            return Err(AppError::bad_input("query", "must not be empty"));
        }
        if query.chars().count() > MAX_QUERY_CHARS {
            return Err(AppError::bad_input(
                "query",
                format!("at most {MAX_QUERY_CHARS} characters"),
            ));
        }
        let mut kinds = kinds.unwrap_or_else(|| SearchKind::ALL.to_vec());
        if kinds.is_empty() {
            return Err(AppError::bad_input(
                "kinds",
                "name at least one kind, or leave kinds out for all of them",
            ));
        }
        kinds.sort_unstable();
        kinds.dedup();
        let first = first.unwrap_or(DEFAULT_HITS);
        if !(1..=MAX_HITS).contains(&first) {
            return Err(AppError::bad_input(
                "first",
                format!("must be between 1 and {MAX_HITS}"),
            ));
        }
        Ok(Self {
            organization_id,
            query: query.to_owned(),
            kinds,
            first,
        })
    }

    /// The query, trimmed.
    pub fn query(&self) -> &str {
        &self.query
    }
}

/// One row of `fv_search`.
#[derive(Debug, Clone, QueryableByName)]
struct SearchRow {
    #[diesel(sql_type = Text)]
    kind: SearchKind,
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    id: Uuid,
    #[diesel(sql_type = Text)]
    title: String,
    #[diesel(sql_type = Nullable<Text>)]
    key: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    description: Option<String>,
    #[diesel(sql_type = Double)]
    score: f64,
}

/// One hit, best first in a [`search`] result.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    /// What it is.
    pub kind: SearchKind,
    /// Its id (a model's, a scenario's, …).
    pub id: Uuid,
    /// Its name.
    pub title: String,
    /// The text that matched, matching words marked `«…»` ([`snippet::snippet`]).
    pub snippet: Option<String>,
    /// The rank: the tier (3 the title or key starts with the query, 2 every query word starts a
    /// word, 1 the text contains the query, 0 fuzzy only) plus a closeness in [0, 1].
    pub score: f64,
}

/// Run a search: one statement. The caller's right to read the organization is checked before
/// (the API's guard); the statement applies the row-level-security rule on its own as well.
#[tracing::instrument(skip_all, fields(kinds = request.kinds.len(), first = request.first))]
pub async fn search(core: &Core, request: &SearchRequest) -> AppResult<Vec<Hit>> {
    let kinds: Vec<&str> = request.kinds.iter().map(|k| k.as_str()).collect();
    let mut conn = core.db.conn().await?;
    let rows: Vec<SearchRow> = diesel::sql_query(
        "SELECT kind, id, title, key, description, score FROM fv_search($1, $2, $3, $4)",
    )
    .bind::<diesel::sql_types::Uuid, _>(request.organization_id)
    .bind::<Text, _>(&request.query)
    .bind::<Array<Text>, _>(&kinds)
    .bind::<Integer, _>(request.first)
    .load(&mut conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let fields = [
                Some(row.title.as_str()),
                row.key.as_deref(),
                row.description.as_deref(),
            ];
            Hit {
                kind: row.kind,
                id: row.id,
                snippet: snippet::snippet(&request.query, fields.into_iter().flatten()),
                title: row.title,
                score: row.score,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(query: &str, kinds: Option<Vec<SearchKind>>, first: Option<i32>) -> String {
        match SearchRequest::new(Uuid::nil(), query, kinds, first) {
            Err(AppError::BadUserInput {
                field: Some(field), ..
            }) => field,
            other => panic!("expected BAD_USER_INPUT, got {other:?}"),
        }
    }

    #[test]
    fn input_rules() {
        assert_eq!(refused("", None, None), "query");
        assert_eq!(refused(" \t\n ", None, None), "query");
        assert_eq!(refused(&"x".repeat(201), None, None), "query");
        assert_eq!(refused("x", Some(vec![]), None), "kinds");
        assert_eq!(refused("x", None, Some(0)), "first");
        assert_eq!(refused("x", None, Some(101)), "first");
        // 200 characters of 2 bytes each: characters count, not bytes.
        let ok = SearchRequest::new(Uuid::nil(), &"é".repeat(200), None, Some(100)).unwrap();
        assert_eq!(ok.first, 100);
        let ok = SearchRequest::new(
            Uuid::nil(),
            "  plan ",
            Some(vec![
                SearchKind::Metric,
                SearchKind::Model,
                SearchKind::Metric,
            ]),
            None,
        )
        .unwrap();
        assert_eq!(ok.query(), "plan");
        assert_eq!(ok.kinds, [SearchKind::Model, SearchKind::Metric]);
        assert_eq!(ok.first, DEFAULT_HITS);
    }
}
