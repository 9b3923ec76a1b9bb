//! Batched lookups of the modelling domain.

use std::collections::HashMap;

use async_graphql::dataloader::Loader;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use uuid::Uuid;

use super::{
    files::ModelFileRow,
    metrics::{DependencyRow, MetricRow},
    models::ModelRow,
    parameters::{ParameterRow, ParameterValueRow},
    scenarios::ScenarioRow,
    values::MetricValueRow,
};
use crate::{
    db::schema::{
        financial_models, metric_dependencies, metric_values, metrics, model_files, organizations,
        parameter_values, parameters, scenarios,
    },
    domain::{
        loader::{LoadError, PgLoader},
        organizations::OrganizationRow,
    },
    error::AppError,
};

/// A live model by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ModelById(pub Uuid);

/// Every live model of an organization, oldest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ModelsOfOrganization(pub Uuid);

impl Loader<ModelById> for PgLoader {
    type Value = ModelRow;
    type Error = LoadError;

    #[tracing::instrument(skip_all, fields(keys = keys.len()))]
    async fn load(&self, keys: &[ModelById]) -> Result<HashMap<ModelById, ModelRow>, LoadError> {
        let (mut found, missing) = self.take_primed(keys, |k| k.0, |p| &mut p.models);
        if missing.is_empty() {
            return Ok(found);
        }
        let mut conn = self.db().conn().await?;
        // With its organization (live or not, so the model's own answer is unchanged), which
        // the caller's role check or `organization` will ask for next.
        let rows: Vec<(ModelRow, OrganizationRow, bool)> = financial_models::table
            .inner_join(organizations::table)
            .filter(financial_models::id.eq_any(missing))
            .filter(financial_models::deleted_at.is_null())
            .select((
                ModelRow::as_select(),
                OrganizationRow::as_select(),
                organizations::deleted_at.is_null(),
            ))
            .load(&mut conn)
            .await
            .map_err(AppError::from)?;
        self.prime(|p| {
            for (_, org, live) in &rows {
                if *live {
                    p.organizations.insert(org.id, org.clone());
                }
            }
        });
        found.extend(rows.into_iter().map(|(m, _, _)| (ModelById(m.id), m)));
        Ok(found)
    }
}

impl Loader<ModelsOfOrganization> for PgLoader {
    type Value = Vec<ModelRow>;
    type Error = LoadError;

    #[tracing::instrument(skip_all, fields(keys = keys.len()))]
    async fn load(
        &self,
        keys: &[ModelsOfOrganization],
    ) -> Result<HashMap<ModelsOfOrganization, Vec<ModelRow>>, LoadError> {
        let mut conn = self.db().conn().await?;
        let rows: Vec<ModelRow> = financial_models::table
            .filter(
                financial_models::organization_id
                    .eq_any(keys.iter().map(|k| k.0).collect::<Vec<_>>()),
            )
            .filter(financial_models::deleted_at.is_null())
            .order((financial_models::created_at, financial_models::id))
            .select(ModelRow::as_select())
            .load(&mut conn)
            .await
            .map_err(AppError::from)?;
        let mut out: HashMap<ModelsOfOrganization, Vec<ModelRow>> =
            keys.iter().map(|k| (*k, Vec::new())).collect();
        for row in rows {
            out.entry(ModelsOfOrganization(row.organization_id))
                .or_default()
                .push(row);
        }
        Ok(out)
    }
}

/// A live scenario by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ScenarioById(pub Uuid);

/// Every live scenario of a model, oldest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ScenariosOfModel(pub Uuid);

impl Loader<ScenarioById> for PgLoader {
    type Value = ScenarioRow;
    type Error = LoadError;

    #[tracing::instrument(skip_all, fields(keys = keys.len()))]
    async fn load(
        &self,
        keys: &[ScenarioById],
    ) -> Result<HashMap<ScenarioById, ScenarioRow>, LoadError> {
        let mut conn = self.db().conn().await?;
        // With its model and organization, primed for the lookups that follow a scenario
        // (its visibility, `model`, `model.organization`): one statement for three levels. The
        // scenario's own answer does not depend on them.
        type Joined = (ScenarioRow, ModelRow, bool, OrganizationRow, bool);
        let rows: Vec<Joined> = scenarios::table
            .inner_join(financial_models::table.inner_join(organizations::table))
            .filter(scenarios::id.eq_any(keys.iter().map(|k| k.0).collect::<Vec<_>>()))
            .filter(scenarios::deleted_at.is_null())
            .select((
                ScenarioRow::as_select(),
                ModelRow::as_select(),
                financial_models::deleted_at.is_null(),
                OrganizationRow::as_select(),
                organizations::deleted_at.is_null(),
            ))
            .load(&mut conn)
            .await
            .map_err(AppError::from)?;
        self.prime(|p| {
            for (_, model, model_live, org, org_live) in &rows {
                if *model_live {
                    p.models.insert(model.id, model.clone());
                }
                if *org_live {
                    p.organizations.insert(org.id, org.clone());
                }
            }
        });
        Ok(rows
            .into_iter()
            .map(|(s, ..)| (ScenarioById(s.id), s))
            .collect())
    }
}

impl Loader<ScenariosOfModel> for PgLoader {
    type Value = Vec<ScenarioRow>;
    type Error = LoadError;

    #[tracing::instrument(skip_all, fields(keys = keys.len()))]
    async fn load(
        &self,
        keys: &[ScenariosOfModel],
    ) -> Result<HashMap<ScenariosOfModel, Vec<ScenarioRow>>, LoadError> {
        let mut conn = self.db().conn().await?;
        let rows: Vec<ScenarioRow> = scenarios::table
            .filter(scenarios::model_id.eq_any(keys.iter().map(|k| k.0).collect::<Vec<_>>()))
            .filter(scenarios::deleted_at.is_null())
            .order((scenarios::created_at, scenarios::id))
            .select(ScenarioRow::as_select())
            .load(&mut conn)
            .await
            .map_err(AppError::from)?;
        let mut out: HashMap<ScenariosOfModel, Vec<ScenarioRow>> =
            keys.iter().map(|k| (*k, Vec::new())).collect();
        for row in rows {
            out.entry(ScenariosOfModel(row.model_id))
                .or_default()
                .push(row);
        }
        Ok(out)
    }
}

/// Every parameter of a model, by key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ParametersOfModel(pub Uuid);

/// A parameter by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ParameterById(pub Uuid);

/// The parameter overrides set on a scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ParameterValuesOfScenario(pub Uuid);

impl Loader<ParametersOfModel> for PgLoader {
    type Value = Vec<ParameterRow>;
    type Error = LoadError;

    #[tracing::instrument(skip_all, fields(keys = keys.len()))]
    async fn load(
        &self,
        keys: &[ParametersOfModel],
    ) -> Result<HashMap<ParametersOfModel, Vec<ParameterRow>>, LoadError> {
        let mut conn = self.db().conn().await?;
        let rows: Vec<ParameterRow> = parameters::table
            .filter(parameters::model_id.eq_any(keys.iter().map(|k| k.0).collect::<Vec<_>>()))
            .order((parameters::model_id, parameters::key))
            .select(ParameterRow::as_select())
            .load(&mut conn)
            .await
            .map_err(AppError::from)?;
        let mut out: HashMap<ParametersOfModel, Vec<ParameterRow>> =
            keys.iter().map(|k| (*k, Vec::new())).collect();
        for row in rows {
            out.entry(ParametersOfModel(row.model_id))
                .or_default()
                .push(row);
        }
        Ok(out)
    }
}

impl Loader<ParameterById> for PgLoader {
    type Value = ParameterRow;
    type Error = LoadError;

    #[tracing::instrument(skip_all, fields(keys = keys.len()))]
    async fn load(
        &self,
        keys: &[ParameterById],
    ) -> Result<HashMap<ParameterById, ParameterRow>, LoadError> {
        let mut conn = self.db().conn().await?;
        let rows: Vec<ParameterRow> = parameters::table
            .filter(parameters::id.eq_any(keys.iter().map(|k| k.0).collect::<Vec<_>>()))
            .select(ParameterRow::as_select())
            .load(&mut conn)
            .await
            .map_err(AppError::from)?;
        Ok(rows.into_iter().map(|r| (ParameterById(r.id), r)).collect())
    }
}

impl Loader<ParameterValuesOfScenario> for PgLoader {
    type Value = Vec<ParameterValueRow>;
    type Error = LoadError;

    #[tracing::instrument(skip_all, fields(keys = keys.len()))]
    async fn load(
        &self,
        keys: &[ParameterValuesOfScenario],
    ) -> Result<HashMap<ParameterValuesOfScenario, Vec<ParameterValueRow>>, LoadError> {
        let mut conn = self.db().conn().await?;
        let rows: Vec<ParameterValueRow> = parameter_values::table
            .filter(
                parameter_values::scenario_id.eq_any(keys.iter().map(|k| k.0).collect::<Vec<_>>()),
            )
            .select(ParameterValueRow::as_select())
            .load(&mut conn)
            .await
            .map_err(AppError::from)?;
        let mut out: HashMap<ParameterValuesOfScenario, Vec<ParameterValueRow>> =
            keys.iter().map(|k| (*k, Vec::new())).collect();
        for row in rows {
            out.entry(ParameterValuesOfScenario(row.scenario_id))
                .or_default()
                .push(row);
        }
        Ok(out)
    }
}

/// Every metric of a model, in display order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MetricsOfModel(pub Uuid);

/// A metric by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MetricById(pub Uuid);

/// The metrics a metric's formula reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DependenciesOfMetric(pub Uuid);

/// The values stored on a scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MetricValuesOfScenario(pub Uuid);

impl Loader<MetricsOfModel> for PgLoader {
    type Value = Vec<MetricRow>;
    type Error = LoadError;

    #[tracing::instrument(skip_all, fields(keys = keys.len()))]
    async fn load(
        &self,
        keys: &[MetricsOfModel],
    ) -> Result<HashMap<MetricsOfModel, Vec<MetricRow>>, LoadError> {
        let mut conn = self.db().conn().await?;
        let rows: Vec<MetricRow> = metrics::table
            .filter(metrics::model_id.eq_any(keys.iter().map(|k| k.0).collect::<Vec<_>>()))
            .order((metrics::model_id, metrics::display_order, metrics::key))
            .select(MetricRow::as_select())
            .load(&mut conn)
            .await
            .map_err(AppError::from)?;
        let mut out: HashMap<MetricsOfModel, Vec<MetricRow>> =
            keys.iter().map(|k| (*k, Vec::new())).collect();
        for row in rows {
            out.entry(MetricsOfModel(row.model_id))
                .or_default()
                .push(row);
        }
        Ok(out)
    }
}

impl Loader<MetricById> for PgLoader {
    type Value = MetricRow;
    type Error = LoadError;

    #[tracing::instrument(skip_all, fields(keys = keys.len()))]
    async fn load(&self, keys: &[MetricById]) -> Result<HashMap<MetricById, MetricRow>, LoadError> {
        let mut conn = self.db().conn().await?;
        let rows: Vec<MetricRow> = metrics::table
            .filter(metrics::id.eq_any(keys.iter().map(|k| k.0).collect::<Vec<_>>()))
            .select(MetricRow::as_select())
            .load(&mut conn)
            .await
            .map_err(AppError::from)?;
        Ok(rows.into_iter().map(|r| (MetricById(r.id), r)).collect())
    }
}

impl Loader<DependenciesOfMetric> for PgLoader {
    type Value = Vec<Uuid>;
    type Error = LoadError;

    #[tracing::instrument(skip_all, fields(keys = keys.len()))]
    async fn load(
        &self,
        keys: &[DependenciesOfMetric],
    ) -> Result<HashMap<DependenciesOfMetric, Vec<Uuid>>, LoadError> {
        let mut conn = self.db().conn().await?;
        let rows: Vec<DependencyRow> = metric_dependencies::table
            .filter(
                metric_dependencies::metric_id.eq_any(keys.iter().map(|k| k.0).collect::<Vec<_>>()),
            )
            .select(DependencyRow::as_select())
            .load(&mut conn)
            .await
            .map_err(AppError::from)?;
        let mut out: HashMap<DependenciesOfMetric, Vec<Uuid>> =
            keys.iter().map(|k| (*k, Vec::new())).collect();
        for row in rows {
            out.entry(DependenciesOfMetric(row.metric_id))
                .or_default()
                .push(row.depends_on_metric_id);
        }
        Ok(out)
    }
}

impl Loader<MetricValuesOfScenario> for PgLoader {
    type Value = Vec<MetricValueRow>;
    type Error = LoadError;

    #[tracing::instrument(skip_all, fields(keys = keys.len()))]
    async fn load(
        &self,
        keys: &[MetricValuesOfScenario],
    ) -> Result<HashMap<MetricValuesOfScenario, Vec<MetricValueRow>>, LoadError> {
        let mut conn = self.db().conn().await?;
        let rows: Vec<MetricValueRow> = metric_values::table
            .filter(metric_values::scenario_id.eq_any(keys.iter().map(|k| k.0).collect::<Vec<_>>()))
            .select(MetricValueRow::as_select())
            .load(&mut conn)
            .await
            .map_err(AppError::from)?;
        let mut out: HashMap<MetricValuesOfScenario, Vec<MetricValueRow>> =
            keys.iter().map(|k| (*k, Vec::new())).collect();
        for row in rows {
            out.entry(MetricValuesOfScenario(row.scenario_id))
                .or_default()
                .push(row);
        }
        Ok(out)
    }
}

/// Every file version of a model, newest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FilesOfModel(pub Uuid);

/// A file version by id (whatever its model's state: callers check visibility through the model).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileById(pub Uuid);

impl Loader<FilesOfModel> for PgLoader {
    type Value = Vec<ModelFileRow>;
    type Error = LoadError;

    #[tracing::instrument(skip_all, fields(keys = keys.len()))]
    async fn load(
        &self,
        keys: &[FilesOfModel],
    ) -> Result<HashMap<FilesOfModel, Vec<ModelFileRow>>, LoadError> {
        let mut conn = self.db().conn().await?;
        let rows: Vec<ModelFileRow> = model_files::table
            .filter(model_files::model_id.eq_any(keys.iter().map(|k| k.0).collect::<Vec<_>>()))
            .order((model_files::model_id, model_files::version_number.desc()))
            .select(ModelFileRow::as_select())
            .load(&mut conn)
            .await
            .map_err(AppError::from)?;
        let mut out: HashMap<FilesOfModel, Vec<ModelFileRow>> =
            keys.iter().map(|k| (*k, Vec::new())).collect();
        for row in rows {
            out.entry(FilesOfModel(row.model_id)).or_default().push(row);
        }
        Ok(out)
    }
}

impl Loader<FileById> for PgLoader {
    type Value = ModelFileRow;
    type Error = LoadError;

    #[tracing::instrument(skip_all, fields(keys = keys.len()))]
    async fn load(&self, keys: &[FileById]) -> Result<HashMap<FileById, ModelFileRow>, LoadError> {
        let mut conn = self.db().conn().await?;
        let rows: Vec<ModelFileRow> = model_files::table
            .filter(model_files::id.eq_any(keys.iter().map(|k| k.0).collect::<Vec<_>>()))
            .select(ModelFileRow::as_select())
            .load(&mut conn)
            .await
            .map_err(AppError::from)?;
        Ok(rows.into_iter().map(|r| (FileById(r.id), r)).collect())
    }
}
