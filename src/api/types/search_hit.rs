//! `type SearchHit`, `enum SearchKind`: what `search` returns.

use async_graphql::{Context, Enum, Object};

use super::{FinancialModel, Metric, Node, Parameter, Scenario};
use crate::{
    api::{context::loader, errors::ApiResult},
    domain::{
        modelling::{
            loaders::{MetricById, ModelById, ParameterById, ScenarioById},
            metrics::MetricRow,
            models::ModelRow,
            parameters::ParameterRow,
            scenarios::ScenarioRow,
        },
        search::{Hit, SearchKind as DomainKind},
    },
    error::AppError,
};

/// What a search hit is.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "crate::domain::search::SearchKind")]
pub enum SearchKind {
    /// A financial model (name, description).
    Model,
    /// A scenario (name, description).
    Scenario,
    /// A metric (key, name, description).
    Metric,
    /// A parameter (key, name).
    Parameter,
}

/// One result of `search`, best first.
pub struct SearchHit {
    /// The hit as the domain ranked it.
    pub hit: Hit,
    /// Its object's row, when the search loaded it (the selection asked for `node`).
    pub object: Option<HitObject>,
}

/// The row of the object a hit names.
#[derive(Debug, Clone)]
pub enum HitObject {
    /// A model.
    Model(ModelRow),
    /// A scenario.
    Scenario(ScenarioRow),
    /// A metric.
    Metric(MetricRow),
    /// A parameter.
    Parameter(ParameterRow),
}

impl HitObject {
    /// Load the object `hit` names through the request's DataLoader (one statement per kind for
    /// a whole result, whatever its size); `None` when it is gone (deleted since the search).
    pub async fn fetch(ctx: &Context<'_>, hit: &Hit) -> ApiResult<Option<Self>> {
        let loader = loader(ctx);
        Ok(match hit.kind {
            DomainKind::Model => loader.load_one(ModelById(hit.id)).await?.map(Self::Model),
            DomainKind::Scenario => loader
                .load_one(ScenarioById(hit.id))
                .await?
                .map(Self::Scenario),
            DomainKind::Metric => loader.load_one(MetricById(hit.id)).await?.map(Self::Metric),
            DomainKind::Parameter => loader
                .load_one(ParameterById(hit.id))
                .await?
                .map(Self::Parameter),
        })
    }

    /// As the `Node` it is.
    fn node(self) -> Node {
        match self {
            Self::Model(m) => Node::FinancialModel(FinancialModel(m)),
            Self::Scenario(s) => Node::Scenario(Scenario(s)),
            Self::Metric(m) => Node::Metric(Metric(m)),
            Self::Parameter(p) => Node::Parameter(Parameter(p)),
        }
    }
}

#[Object]
impl SearchHit {
    /// What the hit is.
    async fn kind(&self) -> SearchKind {
        self.hit.kind.into()
    }

    /// The model, scenario, metric or parameter.
    async fn node(&self, ctx: &Context<'_>) -> ApiResult<Node> {
        if let Some(object) = &self.object {
            return Ok(object.clone().node());
        }
        // `search` loads the objects when its selection asks for `node`; this only serves a
        // selection its look-ahead did not see.
        Ok(HitObject::fetch(ctx, &self.hit)
            .await?
            .ok_or(AppError::NotFound("search hit"))?
            .node())
    }

    /// Its name.
    async fn title(&self) -> &str {
        &self.hit.title
    }

    /// The text that matched (the name, a metric's or parameter's key, or the description,
    /// whichever matches the most words of the query), the matching words marked `«…»`, cut to
    /// 160 characters around the first mark (`…` where text was left out). `null` when no single
    /// word explains the match (the query's letters spread across words).
    async fn snippet(&self) -> Option<&str> {
        self.hit.snippet.as_deref()
    }

    /// Relevance, higher first: 3 to 4 when the name (or key) starts with the query, 2 to 3 when
    /// every word of the query starts a word, 1 to 2 when the text contains the query, below 1
    /// for a fuzzy (typo-tolerant) match; within each band, the closer the text the higher.
    async fn score(&self) -> f64 {
        self.hit.score
    }
}
