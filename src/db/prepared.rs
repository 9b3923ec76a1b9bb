//! Hand-written SQL that PostgreSQL plans once per connection. `diesel::sql_query` marks its
//! statement unsafe to cache, so every call is parsed and planned again: on the read path's two
//! combined loaders (a scenario's values with its overrides, a model's metrics with its
//! parameters) planning took as long as executing, and longer under row-level security, whose
//! policies the planner expands each time. A [`Prepared`] is the same text with the same
//! array of ids bound wherever it is named; diesel-async keeps it in the connection's statement
//! cache by its text.

use diesel::{
    pg::Pg,
    query_builder::{AstPass, Query, QueryFragment, QueryId},
    sql_types::{Array, Untyped, Uuid as SqlUuid},
};
use uuid::Uuid;

/// SQL text in `parts`, with `ids` bound (as `uuid[]`) between each two of them.
#[derive(Debug, Clone)]
pub struct Prepared {
    parts: &'static [&'static str],
    ids: Vec<Uuid>,
}

impl Prepared {
    /// `parts` joined by a bind of `ids` each (`["… = ANY(", ") UNION … = ANY(", ")"]`).
    pub fn new(parts: &'static [&'static str], ids: Vec<Uuid>) -> Self {
        Self { parts, ids }
    }
}

impl QueryId for Prepared {
    type QueryId = ();
    // No type to key on: the statement cache keys it by its SQL text, which is fixed.
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl Query for Prepared {
    type SqlType = Untyped;
}

impl QueryFragment<Pg> for Prepared {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> diesel::QueryResult<()> {
        let mut parts = self.parts.iter();
        if let Some(first) = parts.next() {
            out.push_sql(first);
        }
        for part in parts {
            out.push_bind_param::<Array<SqlUuid>, _>(&self.ids)?;
            out.push_sql(part);
        }
        Ok(())
    }
}
