//! Batched lookups of webhook endpoints and their deliveries.

use std::collections::HashMap;

use async_graphql::dataloader::Loader;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::rows::{WebhookDeliveryRow, WebhookEndpointRow};
use crate::{
    db::schema::{webhook_deliveries, webhook_endpoints},
    domain::loader::{LoadError, PgLoader, group, loader_keys},
    error::AppError,
};

loader_keys! {
    /// Every webhook endpoint of an organization, oldest first.
    WebhookEndpointsOfOrganization;
    /// An endpoint by id (callers check the caller's role in its organization).
    WebhookEndpointById;
    /// The kept deliveries of an endpoint (at most `delivery::KEPT_DELIVERIES`), newest first.
    DeliveriesOfEndpoint;
}

impl Loader<WebhookEndpointsOfOrganization> for PgLoader {
    type Value = Vec<WebhookEndpointRow>;
    type Error = LoadError;

    #[tracing::instrument(skip_all, fields(keys = keys.len()))]
    async fn load(
        &self,
        keys: &[WebhookEndpointsOfOrganization],
    ) -> Result<HashMap<WebhookEndpointsOfOrganization, Vec<WebhookEndpointRow>>, LoadError> {
        let mut conn = self.db().conn().await?;
        let rows: Vec<WebhookEndpointRow> = webhook_endpoints::table
            .filter(
                webhook_endpoints::organization_id
                    .eq_any(keys.iter().map(|k| k.0).collect::<Vec<_>>()),
            )
            .order((webhook_endpoints::created_at, webhook_endpoints::id))
            .select(WebhookEndpointRow::as_select())
            .load(&mut conn)
            .await
            .map_err(AppError::from)?;
        Ok(group(keys, rows, |r| {
            WebhookEndpointsOfOrganization(r.organization_id)
        }))
    }
}

impl Loader<WebhookEndpointById> for PgLoader {
    type Value = WebhookEndpointRow;
    type Error = LoadError;

    #[tracing::instrument(skip_all, fields(keys = keys.len()))]
    async fn load(
        &self,
        keys: &[WebhookEndpointById],
    ) -> Result<HashMap<WebhookEndpointById, WebhookEndpointRow>, LoadError> {
        let mut conn = self.db().conn().await?;
        let rows: Vec<WebhookEndpointRow> = webhook_endpoints::table
            .filter(webhook_endpoints::id.eq_any(keys.iter().map(|k| k.0).collect::<Vec<_>>()))
            .select(WebhookEndpointRow::as_select())
            .load(&mut conn)
            .await
            .map_err(AppError::from)?;
        Ok(rows
            .into_iter()
            .map(|r| (WebhookEndpointById(r.id), r))
            .collect())
    }
}

impl Loader<DeliveriesOfEndpoint> for PgLoader {
    type Value = Vec<WebhookDeliveryRow>;
    type Error = LoadError;

    #[tracing::instrument(skip_all, fields(keys = keys.len()))]
    async fn load(
        &self,
        keys: &[DeliveriesOfEndpoint],
    ) -> Result<HashMap<DeliveriesOfEndpoint, Vec<WebhookDeliveryRow>>, LoadError> {
        let mut conn = self.db().conn().await?;
        let rows: Vec<WebhookDeliveryRow> = webhook_deliveries::table
            .filter(
                webhook_deliveries::endpoint_id
                    .eq_any(keys.iter().map(|k| k.0).collect::<Vec<_>>()),
            )
            .order((
                webhook_deliveries::endpoint_id,
                webhook_deliveries::id.desc(),
            ))
            .select(WebhookDeliveryRow::as_select())
            .load(&mut conn)
            .await
            .map_err(AppError::from)?;
        Ok(group(keys, rows, |r| DeliveriesOfEndpoint(r.endpoint_id)))
    }
}
