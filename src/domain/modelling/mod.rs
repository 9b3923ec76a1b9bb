//! Financial modelling: models, scenarios, parameters, metrics, values and the formula engine.

pub mod enums;
pub mod evaluation;
pub mod files;
pub mod formula;
pub mod loaders;
pub mod metrics;
pub mod models;
pub mod numbers;
pub mod parameters;
pub mod periods;
pub mod scenarios;
pub mod selection;
pub mod series;
pub mod values;

pub use enums::{MetricKind, MetricUnit, ModelStatus, PeriodGranularity, ScenarioKind};
pub use models::ModelRow;
