//! Batched lookups of the modelling domain.

use std::collections::HashMap;

use async_graphql::dataloader::Loader;
use diesel::{
    prelude::*,
    sql_types::{Date, Integer, Nullable, Numeric, Text, Timestamptz},
};
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
    db::prepared::Prepared,
    db::schema::{
        financial_models, metric_dependencies, metric_values, metrics, model_files, organizations,
        parameter_values, parameters, scenarios,
    },
    domain::{
        loader::{LoadError, PgLoader, group, loader_keys},
        organizations::OrganizationRow,
    },
    error::AppError,
};

loader_keys! {
    /// A live model by id.
    ModelById;
    /// Every live model of an organization, oldest first.
    ModelsOfOrganization;
}

impl Loader<ModelById> for PgLoader {
    type Value = ModelRow;
    type Error = LoadError;

    #[tracing::instrument(name = "dataloader.batch", skip_all, fields(loader = "ModelById", keys = keys.len()))]
    async fn load(&self, keys: &[ModelById]) -> Result<HashMap<ModelById, ModelRow>, LoadError> {
        crate::domain::loader::record_batch("ModelById", keys.len());
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

    #[tracing::instrument(name = "dataloader.batch", skip_all, fields(loader = "ModelsOfOrganization", keys = keys.len()))]
    async fn load(
        &self,
        keys: &[ModelsOfOrganization],
    ) -> Result<HashMap<ModelsOfOrganization, Vec<ModelRow>>, LoadError> {
        crate::domain::loader::record_batch("ModelsOfOrganization", keys.len());
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
        Ok(group(keys, rows, |r| {
            ModelsOfOrganization(r.organization_id)
        }))
    }
}

loader_keys! {
    /// A live scenario by id.
    ScenarioById;
    /// Every live scenario of a model, oldest first.
    ScenariosOfModel;
}

impl Loader<ScenarioById> for PgLoader {
    type Value = ScenarioRow;
    type Error = LoadError;

    #[tracing::instrument(name = "dataloader.batch", skip_all, fields(loader = "ScenarioById", keys = keys.len()))]
    async fn load(
        &self,
        keys: &[ScenarioById],
    ) -> Result<HashMap<ScenarioById, ScenarioRow>, LoadError> {
        crate::domain::loader::record_batch("ScenarioById", keys.len());
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

    #[tracing::instrument(name = "dataloader.batch", skip_all, fields(loader = "ScenariosOfModel", keys = keys.len()))]
    async fn load(
        &self,
        keys: &[ScenariosOfModel],
    ) -> Result<HashMap<ScenariosOfModel, Vec<ScenarioRow>>, LoadError> {
        crate::domain::loader::record_batch("ScenariosOfModel", keys.len());
        let mut conn = self.db().conn().await?;
        let rows: Vec<ScenarioRow> = scenarios::table
            .filter(scenarios::model_id.eq_any(keys.iter().map(|k| k.0).collect::<Vec<_>>()))
            .filter(scenarios::deleted_at.is_null())
            .order((scenarios::created_at, scenarios::id))
            .select(ScenarioRow::as_select())
            .load(&mut conn)
            .await
            .map_err(AppError::from)?;
        Ok(group(keys, rows, |r| ScenariosOfModel(r.model_id)))
    }
}

loader_keys! {
    /// Every parameter of a model, by key.
    ParametersOfModel;
    /// A parameter by id.
    ParameterById;
    /// The parameter overrides set on a scenario.
    ParameterValuesOfScenario;
}

impl Loader<ParametersOfModel> for PgLoader {
    type Value = Vec<ParameterRow>;
    type Error = LoadError;

    #[tracing::instrument(name = "dataloader.batch", skip_all, fields(loader = "ParametersOfModel", keys = keys.len()))]
    async fn load(
        &self,
        keys: &[ParametersOfModel],
    ) -> Result<HashMap<ParametersOfModel, Vec<ParameterRow>>, LoadError> {
        crate::domain::loader::record_batch("ParametersOfModel", keys.len());
        // Read with the model's metrics when they were loaded first (`MetricsOfModel`).
        let (found, missing) = self.take_primed(keys, |k| k.0, |p| &mut p.parameters_of_model);
        if missing.is_empty() {
            return Ok(found);
        }
        let mut conn = self.db().conn().await?;
        let rows: Vec<ParameterRow> = parameters::table
            .filter(parameters::model_id.eq_any(missing))
            .order((parameters::model_id, parameters::key))
            .select(ParameterRow::as_select())
            .load(&mut conn)
            .await
            .map_err(AppError::from)?;
        let mut out: HashMap<ParametersOfModel, Vec<ParameterRow>> = keys
            .iter()
            .filter(|k| !found.contains_key(k))
            .map(|k| (*k, Vec::new()))
            .collect();
        out.extend(found);
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

    #[tracing::instrument(name = "dataloader.batch", skip_all, fields(loader = "ParameterById", keys = keys.len()))]
    async fn load(
        &self,
        keys: &[ParameterById],
    ) -> Result<HashMap<ParameterById, ParameterRow>, LoadError> {
        crate::domain::loader::record_batch("ParameterById", keys.len());
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

    #[tracing::instrument(name = "dataloader.batch", skip_all, fields(loader = "ParameterValuesOfScenario", keys = keys.len()))]
    async fn load(
        &self,
        keys: &[ParameterValuesOfScenario],
    ) -> Result<HashMap<ParameterValuesOfScenario, Vec<ParameterValueRow>>, LoadError> {
        crate::domain::loader::record_batch("ParameterValuesOfScenario", keys.len());
        // Read with the scenario's stored values when they were loaded first.
        let (found, missing) =
            self.take_primed(keys, |k| k.0, |p| &mut p.parameter_values_of_scenario);
        if missing.is_empty() {
            return Ok(found);
        }
        let mut conn = self.db().conn().await?;
        let rows: Vec<ParameterValueRow> = parameter_values::table
            .filter(parameter_values::scenario_id.eq_any(missing))
            .select(ParameterValueRow::as_select())
            .load(&mut conn)
            .await
            .map_err(AppError::from)?;
        let mut out: HashMap<ParameterValuesOfScenario, Vec<ParameterValueRow>> = keys
            .iter()
            .filter(|k| !found.contains_key(k))
            .map(|k| (*k, Vec::new()))
            .collect();
        out.extend(found);
        for row in rows {
            out.entry(ParameterValuesOfScenario(row.scenario_id))
                .or_default()
                .push(row);
        }
        Ok(out)
    }
}

loader_keys! {
    /// Every metric of a model, in display order.
    MetricsOfModel;
    /// A metric by id.
    MetricById;
    /// The metrics a metric's formula reads.
    DependenciesOfMetric;
    /// The values stored on a scenario.
    MetricValuesOfScenario;
}

impl Loader<MetricsOfModel> for PgLoader {
    type Value = Vec<MetricRow>;
    type Error = LoadError;

    #[tracing::instrument(name = "dataloader.batch", skip_all, fields(loader = "MetricsOfModel", keys = keys.len()))]
    async fn load(
        &self,
        keys: &[MetricsOfModel],
    ) -> Result<HashMap<MetricsOfModel, Vec<MetricRow>>, LoadError> {
        crate::domain::loader::record_batch("MetricsOfModel", keys.len());
        let ids: Vec<Uuid> = keys.iter().map(|k| k.0).collect();
        let mut conn = self.db().conn().await?;
        if !self.is_priming() {
            let rows: Vec<MetricRow> = metrics::table
                .filter(metrics::model_id.eq_any(ids))
                .order((metrics::model_id, metrics::display_order, metrics::key))
                .select(MetricRow::as_select())
                .load(&mut conn)
                .await
                .map_err(AppError::from)?;
            return Ok(group(keys, rows, |r| MetricsOfModel(r.model_id)));
        }
        // A model's metrics and parameters are its definitions, read together: whoever needs
        // one (an evaluation, `metrics`) usually needs the other next. One statement: the
        // parameters ride along in the metrics' shape (`tag` 'p') and prime their own loader.
        let rows: Vec<DefinitionRow> = Prepared::new(
            &[
                "SELECT 'm' AS tag, id, model_id, key, name, unit, kind, formula, description, \
                    display_order, version, created_at, NULL::numeric AS default_value \
                 FROM metrics WHERE model_id = ANY(",
                ") UNION ALL \
                 SELECT 'p', id, model_id, key, name, unit, NULL, NULL, NULL, 0, 0, created_at, \
                    default_value \
                 FROM parameters WHERE model_id = ANY(",
                ") ORDER BY tag, model_id, display_order, key",
            ],
            ids,
        )
        .load(&mut conn)
        .await
        .map_err(AppError::from)?;
        let (mut metric_rows, mut parameter_rows) = (Vec::new(), Vec::new());
        for row in rows {
            match (row.tag.as_str(), row.kind, row.default_value) {
                ("m", Some(kind), _) => metric_rows.push(MetricRow {
                    id: row.id,
                    model_id: row.model_id,
                    key: row.key,
                    name: row.name,
                    unit: row.unit,
                    kind,
                    formula: row.formula,
                    description: row.description,
                    display_order: row.display_order,
                    version: row.version,
                    created_at: row.created_at,
                }),
                ("p", _, Some(default_value)) => parameter_rows.push(ParameterRow {
                    id: row.id,
                    model_id: row.model_id,
                    key: row.key,
                    name: row.name,
                    unit: row.unit,
                    default_value,
                    created_at: row.created_at,
                }),
                _ => {
                    return Err(
                        AppError::internal(anyhow::anyhow!("unexpected definition row")).into(),
                    );
                }
            }
        }
        let parameters = group(
            &keys
                .iter()
                .map(|k| ParametersOfModel(k.0))
                .collect::<Vec<_>>(),
            parameter_rows,
            |r| ParametersOfModel(r.model_id),
        );
        self.prime(|p| {
            p.parameters_of_model
                .extend(parameters.into_iter().map(|(k, v)| (k.0, v)));
        });
        Ok(group(keys, metric_rows, |r| MetricsOfModel(r.model_id)))
    }
}

/// A metric or a parameter (`tag` 'm' or 'p') in one shape.
#[derive(QueryableByName)]
struct DefinitionRow {
    #[diesel(sql_type = Text)]
    tag: String,
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    id: Uuid,
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    model_id: Uuid,
    #[diesel(sql_type = Text)]
    key: String,
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    unit: super::enums::MetricUnit,
    #[diesel(sql_type = Nullable<Text>)]
    kind: Option<super::enums::MetricKind>,
    #[diesel(sql_type = Nullable<Text>)]
    formula: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    description: Option<String>,
    #[diesel(sql_type = Integer)]
    display_order: i32,
    #[diesel(sql_type = Integer)]
    version: i32,
    #[diesel(sql_type = Timestamptz)]
    created_at: chrono::DateTime<chrono::Utc>,
    #[diesel(sql_type = Nullable<Numeric>)]
    default_value: Option<rust_decimal::Decimal>,
}

impl Loader<MetricById> for PgLoader {
    type Value = MetricRow;
    type Error = LoadError;

    #[tracing::instrument(name = "dataloader.batch", skip_all, fields(loader = "MetricById", keys = keys.len()))]
    async fn load(&self, keys: &[MetricById]) -> Result<HashMap<MetricById, MetricRow>, LoadError> {
        crate::domain::loader::record_batch("MetricById", keys.len());
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

    #[tracing::instrument(name = "dataloader.batch", skip_all, fields(loader = "DependenciesOfMetric", keys = keys.len()))]
    async fn load(
        &self,
        keys: &[DependenciesOfMetric],
    ) -> Result<HashMap<DependenciesOfMetric, Vec<Uuid>>, LoadError> {
        crate::domain::loader::record_batch("DependenciesOfMetric", keys.len());
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

    #[tracing::instrument(name = "dataloader.batch", skip_all, fields(loader = "MetricValuesOfScenario", keys = keys.len()))]
    async fn load(
        &self,
        keys: &[MetricValuesOfScenario],
    ) -> Result<HashMap<MetricValuesOfScenario, Vec<MetricValueRow>>, LoadError> {
        crate::domain::loader::record_batch("MetricValuesOfScenario", keys.len());
        let ids: Vec<Uuid> = keys.iter().map(|k| k.0).collect();
        let mut conn = self.db().conn().await?;
        if !self.is_priming() {
            let rows: Vec<MetricValueRow> = metric_values::table
                .filter(metric_values::scenario_id.eq_any(ids))
                .select(MetricValueRow::as_select())
                .load(&mut conn)
                .await
                .map_err(AppError::from)?;
            return Ok(group(keys, rows, |r| MetricValuesOfScenario(r.scenario_id)));
        }
        // A scenario's inputs, stored values and parameter overrides, in one statement: an
        // evaluation reads both. Overrides have no period, and prime their own loader.
        let rows: Vec<InputRow> = Prepared::new(
            &[
                "SELECT scenario_id, metric_id AS item_id, period, value \
                 FROM metric_values WHERE scenario_id = ANY(",
                ") UNION ALL \
                 SELECT scenario_id, parameter_id, NULL::date, value \
                 FROM parameter_values WHERE scenario_id = ANY(",
                ")",
            ],
            ids,
        )
        .load(&mut conn)
        .await
        .map_err(AppError::from)?;
        let (mut values, mut overrides) = (Vec::new(), Vec::new());
        for row in rows {
            match row.period {
                Some(period) => values.push(MetricValueRow {
                    scenario_id: row.scenario_id,
                    metric_id: row.item_id,
                    period,
                    value: row.value,
                }),
                None => overrides.push(ParameterValueRow {
                    scenario_id: row.scenario_id,
                    parameter_id: row.item_id,
                    value: row.value,
                }),
            }
        }
        let overrides = group(
            &keys
                .iter()
                .map(|k| ParameterValuesOfScenario(k.0))
                .collect::<Vec<_>>(),
            overrides,
            |r| ParameterValuesOfScenario(r.scenario_id),
        );
        self.prime(|p| {
            p.parameter_values_of_scenario
                .extend(overrides.into_iter().map(|(k, v)| (k.0, v)));
        });
        Ok(group(keys, values, |r| {
            MetricValuesOfScenario(r.scenario_id)
        }))
    }
}

/// A stored value (with a period) or a parameter override (without) in one shape.
#[derive(QueryableByName)]
struct InputRow {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    scenario_id: Uuid,
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    item_id: Uuid,
    #[diesel(sql_type = Nullable<Date>)]
    period: Option<chrono::NaiveDate>,
    #[diesel(sql_type = Numeric)]
    value: rust_decimal::Decimal,
}

loader_keys! {
    /// Every file version of a model, newest first.
    FilesOfModel;
    /// A file version by id (whatever its model's state: callers check visibility through the model).
    FileById;
}

impl Loader<FilesOfModel> for PgLoader {
    type Value = Vec<ModelFileRow>;
    type Error = LoadError;

    #[tracing::instrument(name = "dataloader.batch", skip_all, fields(loader = "FilesOfModel", keys = keys.len()))]
    async fn load(
        &self,
        keys: &[FilesOfModel],
    ) -> Result<HashMap<FilesOfModel, Vec<ModelFileRow>>, LoadError> {
        crate::domain::loader::record_batch("FilesOfModel", keys.len());
        let mut conn = self.db().conn().await?;
        let rows: Vec<ModelFileRow> = model_files::table
            .filter(model_files::model_id.eq_any(keys.iter().map(|k| k.0).collect::<Vec<_>>()))
            .order((model_files::model_id, model_files::version_number.desc()))
            .select(ModelFileRow::as_select())
            .load(&mut conn)
            .await
            .map_err(AppError::from)?;
        Ok(group(keys, rows, |r| FilesOfModel(r.model_id)))
    }
}

impl Loader<FileById> for PgLoader {
    type Value = ModelFileRow;
    type Error = LoadError;

    #[tracing::instrument(name = "dataloader.batch", skip_all, fields(loader = "FileById", keys = keys.len()))]
    async fn load(&self, keys: &[FileById]) -> Result<HashMap<FileById, ModelFileRow>, LoadError> {
        crate::domain::loader::record_batch("FileById", keys.len());
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
