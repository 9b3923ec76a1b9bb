//! Builds the schema: merged roots, limits, extensions.

use async_graphql::Schema;

use super::{extension::ApiRules, mutation::Mutation, query::Query, subscription::Subscription};

/// The schema type.
pub type AppSchema = Schema<Query, Mutation, Subscription>;

/// The limits a schema enforces.
#[derive(Debug, Clone)]
pub struct SchemaOptions {
    /// Maximum depth; `None` for none (the introspection schema).
    pub max_depth: Option<usize>,
    /// Maximum complexity; `None` for none.
    pub max_complexity: Option<usize>,
    /// Whether introspection is answered (and field suggestions given).
    pub introspection: bool,
}

impl Default for SchemaOptions {
    fn default() -> Self {
        Self {
            max_depth: Some(12),
            max_complexity: Some(5_000),
            introspection: true,
        }
    }
}

/// Directives allowed on one field.
const MAX_DIRECTIVES: usize = 16;

/// Build the schema with `options`.
pub fn build_schema(options: &SchemaOptions) -> AppSchema {
    let mut builder = Schema::build(
        Query::default(),
        Mutation::default(),
        Subscription::default(),
    )
    .extension(ApiRules)
    .limit_directives(MAX_DIRECTIVES)
    .limit_recursive_depth(64);
    if let Some(depth) = options.max_depth {
        builder = builder.limit_depth(depth);
    }
    if let Some(complexity) = options.max_complexity {
        builder = builder.limit_complexity(complexity);
    }
    if !options.introspection {
        // Suggestions ("did you mean …") would reveal the schema that introspection hides.
        builder = builder.disable_introspection().disable_suggestions();
    }
    builder.finish()
}

/// The SDL of the schema (what `schema.graphql` holds).
pub fn sdl() -> String {
    build_schema(&SchemaOptions::default()).sdl()
}
