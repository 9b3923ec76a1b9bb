//! The modelling enums, stored as checked text.

use crate::domain::text_enum::text_enum;

text_enum! {
    /// Lifecycle of a model.
    pub enum ModelStatus {
        /// Being built.
        Draft => "DRAFT",
        /// In use.
        Active => "ACTIVE",
        /// Kept for reference.
        Archived => "ARCHIVED",
    }
}

text_enum! {
    /// The period length of a model's timeline.
    pub enum PeriodGranularity {
        /// Calendar months.
        Month => "MONTH",
        /// Calendar quarters.
        Quarter => "QUARTER",
        /// Calendar years.
        Year => "YEAR",
    }
}

text_enum! {
    /// What a scenario represents.
    pub enum ScenarioKind {
        /// The reference case.
        Base => "BASE",
        /// An optimistic case.
        Upside => "UPSIDE",
        /// A pessimistic case.
        Downside => "DOWNSIDE",
        /// Anything else.
        Custom => "CUSTOM",
    }
}

text_enum! {
    /// The unit of a metric or parameter.
    pub enum MetricUnit {
        /// Money, in the model's currency.
        Currency => "CURRENCY",
        /// A percentage.
        Percent => "PERCENT",
        /// A ratio.
        Ratio => "RATIO",
        /// A plain number.
        Number => "NUMBER",
    }
}

text_enum! {
    /// Whether a metric is entered or computed.
    pub enum MetricKind {
        /// Stored time series.
        Input => "INPUT",
        /// Computed from a formula.
        Derived => "DERIVED",
    }
}
