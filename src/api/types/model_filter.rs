//! `input ModelFilter`, `input ModelOrder`, `enum ModelOrderField`: how `Organization.models` is
//! narrowed and sorted.

use async_graphql::{Enum, InputObject};

use super::{ModelStatus, SortDirection};
use crate::{
    api::relay::time_key,
    domain::modelling::{ModelRow, ModelStatus as DomainStatus},
};

/// Which models to list.
#[derive(InputObject, Default)]
pub struct ModelFilter {
    /// Only these statuses.
    pub status: Option<Vec<ModelStatus>>,
    /// Case-insensitive substring of the name.
    pub search: Option<String>,
}

impl ModelFilter {
    /// Whether `model` passes the filter.
    pub fn accepts(&self, model: &ModelRow) -> bool {
        let status_ok = self.status.as_ref().is_none_or(|statuses| {
            statuses
                .iter()
                .any(|s| DomainStatus::from(*s) == model.status)
        });
        let search_ok = self
            .search
            .as_deref()
            .map(str::trim)
            .is_none_or(|needle| model.name.to_lowercase().contains(&needle.to_lowercase()));
        status_ok && search_ok
    }
}

/// The field models are sorted by.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ModelOrderField {
    /// Name, case-insensitively.
    Name,
    /// Creation time (the default).
    #[default]
    CreatedAt,
    /// Last change.
    UpdatedAt,
}

/// Sort order of models.
#[derive(InputObject, Default)]
pub struct ModelOrder {
    /// The field.
    pub field: ModelOrderField,
    /// The direction.
    #[graphql(default)]
    pub direction: SortDirection,
}

impl ModelOrder {
    /// The sort key of `model` (its cursor): text that sorts like the field, ties broken by id.
    pub fn key(&self, model: &ModelRow) -> String {
        match self.field {
            // NUL sorts before every character a name can hold, so "a" < "a b" as tuples.
            ModelOrderField::Name => format!("{}\u{0}{}", model.name.to_lowercase(), model.id),
            ModelOrderField::CreatedAt => time_key(model.created_at, model.id),
            ModelOrderField::UpdatedAt => time_key(model.updated_at, model.id),
        }
    }
}
