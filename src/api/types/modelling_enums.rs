//! The modelling enums of the contract (each mirrors a domain enum).

use async_graphql::Enum;

/// Lifecycle of a model.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "crate::domain::modelling::ModelStatus")]
pub enum ModelStatus {
    /// Being built.
    Draft,
    /// In use.
    Active,
    /// Kept for reference; still readable.
    Archived,
}

/// Period length of a model's timeline.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "crate::domain::modelling::PeriodGranularity")]
pub enum PeriodGranularity {
    /// Calendar months (periods start on the 1st).
    Month,
    /// Calendar quarters (Jan, Apr, Jul, Oct 1).
    Quarter,
    /// Calendar years (Jan 1).
    Year,
}

/// Sort direction.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortDirection {
    /// Smallest first.
    #[default]
    Asc,
    /// Largest first.
    Desc,
}

/// What a scenario represents.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "crate::domain::modelling::ScenarioKind")]
pub enum ScenarioKind {
    /// The reference case.
    Base,
    /// An optimistic case.
    Upside,
    /// A pessimistic case.
    Downside,
    /// Anything else.
    Custom,
}

/// Unit of a metric or parameter.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "crate::domain::modelling::MetricUnit")]
pub enum MetricUnit {
    /// Money, in the model's currency.
    Currency,
    /// A percentage.
    Percent,
    /// A ratio.
    Ratio,
    /// A plain number.
    Number,
}

/// Whether a metric is entered or computed.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "crate::domain::modelling::MetricKind")]
pub enum MetricKind {
    /// A stored time series.
    Input,
    /// Computed from a formula (a stored value still overrides it for its period).
    Derived,
}
