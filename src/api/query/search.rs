//! `search`: ranked, typo-tolerant search in one organization (VIEWER+).

use async_graphql::{Context, ID, Object};
use futures_util::future::try_join_all;

use crate::{
    api::{
        context::state,
        errors::ApiResult,
        guards::OrgRoleGuard,
        relay::{NodeKind, decode},
        types::{HitObject, SearchHit, SearchKind},
    },
    domain::{
        organizations::OrgRole,
        search::{self, DEFAULT_HITS, SearchRequest},
    },
};

#[derive(Default)]
pub struct SearchQuery;

#[Object]
impl SearchQuery {
    /// Search an organization's models and scenarios (names, descriptions), metrics (keys,
    /// names, descriptions) and parameters (keys, names), best hits first (VIEWER+). Soft-deleted
    /// models and scenarios, and everything of a deleted model, are left out; archived models
    /// are found.
    ///
    /// Ranking: names or keys starting with the query first, then texts where every word of the
    /// query starts a word ("downside hiring" finds "Downside – hiring freeze"), then texts
    /// containing the query, then fuzzy matches that tolerate typos ("donwside" finds
    /// "Downside"). The query is literal (`%`, `_` and `\` match themselves) and
    /// case-insensitive; 1 to 200 characters once trimmed. `kinds`: only these (omitted: all).
    /// `first`: 1 to 100 hits (default 20).
    #[graphql(
        complexity = "crate::api::complexity::search(first, child_complexity)",
        guard = "OrgRoleGuard::org_input(OrgRole::Viewer, &organization_id, \"organizationId\")"
    )]
    async fn search(
        &self,
        ctx: &Context<'_>,
        organization_id: ID,
        query: String,
        kinds: Option<Vec<SearchKind>>,
        #[graphql(default_with = "Some(DEFAULT_HITS)")] first: Option<i32>,
    ) -> ApiResult<Vec<SearchHit>> {
        let org = decode(&organization_id, NodeKind::Organization, "organizationId")?;
        let kinds = kinds.map(|kinds| kinds.into_iter().map(Into::into).collect());
        // An explicit `null` means the default too.
        let request = SearchRequest::new(org, &query, kinds, first)?;
        let hits = search::search(&state(ctx).core, &request).await?;
        if !ctx.look_ahead().field("node").exists() {
            return Ok(hits
                .into_iter()
                .map(|hit| SearchHit { hit, object: None })
                .collect());
        }
        // Loaded together: the DataLoader sends one statement per kind for all of them. A hit
        // whose object went away since the search read it is left out.
        let objects = try_join_all(hits.iter().map(|hit| HitObject::fetch(ctx, hit))).await?;
        Ok(hits
            .into_iter()
            .zip(objects)
            .filter_map(|(hit, object)| {
                object.map(|object| SearchHit {
                    hit,
                    object: Some(object),
                })
            })
            .collect())
    }
}
