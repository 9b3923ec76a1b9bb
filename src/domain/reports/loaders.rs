//! Batched lookups of reports.

use std::collections::HashMap;

use async_graphql::dataloader::Loader;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::rows::ReportRow;
use crate::{
    db::schema::reports,
    domain::loader::{LoadError, PgLoader, group, loader_keys},
    error::AppError,
};

loader_keys! {
    /// Every report of a model, newest first.
    ReportsOfModel;
    /// A report by id (whatever its model's state: callers check visibility through the model).
    ReportById;
}

impl Loader<ReportsOfModel> for PgLoader {
    type Value = Vec<ReportRow>;
    type Error = LoadError;

    #[tracing::instrument(skip_all, fields(keys = keys.len()))]
    async fn load(
        &self,
        keys: &[ReportsOfModel],
    ) -> Result<HashMap<ReportsOfModel, Vec<ReportRow>>, LoadError> {
        let mut conn = self.db().conn().await?;
        let rows: Vec<ReportRow> = reports::table
            .filter(reports::model_id.eq_any(keys.iter().map(|k| k.0).collect::<Vec<_>>()))
            .order((
                reports::model_id,
                reports::created_at.desc(),
                reports::id.desc(),
            ))
            .select(ReportRow::as_select())
            .load(&mut conn)
            .await
            .map_err(AppError::from)?;
        Ok(group(keys, rows, |r| ReportsOfModel(r.model_id)))
    }
}

impl Loader<ReportById> for PgLoader {
    type Value = ReportRow;
    type Error = LoadError;

    #[tracing::instrument(skip_all, fields(keys = keys.len()))]
    async fn load(&self, keys: &[ReportById]) -> Result<HashMap<ReportById, ReportRow>, LoadError> {
        let mut conn = self.db().conn().await?;
        let rows: Vec<ReportRow> = reports::table
            .filter(reports::id.eq_any(keys.iter().map(|k| k.0).collect::<Vec<_>>()))
            .select(ReportRow::as_select())
            .load(&mut conn)
            .await
            .map_err(AppError::from)?;
        Ok(rows.into_iter().map(|r| (ReportById(r.id), r)).collect())
    }
}
