//! `input AuditEventFilter`.

use async_graphql::{ID, InputObject};
use chrono::{DateTime, Utc};

use crate::{
    api::relay::{NodeKind, decode_any},
    domain::audit::history::{ActorRef, AuditFilter},
    error::{AppError, AppResult},
};

/// Conditions on audit events; every condition given must hold.
#[derive(InputObject, Default)]
pub struct AuditEventFilter {
    /// Any of these actions, e.g. `["model.create", "model.update"]`.
    pub actions: Option<Vec<String>>,
    /// Events on entities of this type, e.g. `FinancialModel`.
    pub entity_type: Option<String>,
    /// Events on this entity (its global ID).
    pub entity_id: Option<ID>,
    /// Events by this actor: the global ID of a `User` or an `ApiKey`.
    pub actor_id: Option<ID>,
    /// At or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Before this time (exclusive).
    pub until: Option<DateTime<Utc>>,
}

impl AuditEventFilter {
    /// The core's filter; IDs are checked here (`BAD_USER_INPUT` naming `filter.<field>`).
    pub fn into_domain(self) -> AppResult<AuditFilter> {
        let entity_id = match &self.entity_id {
            None => None,
            Some(id) => Some(match decode_any(id, "filter.entityId")? {
                // Membership events are recorded on the member's user id.
                (NodeKind::Membership, ids) => ids[1],
                (_, ids) => *ids.first().ok_or_else(|| {
                    AppError::bad_input("filter.entityId", "audit events are not entities")
                })?,
            }),
        };
        let actor = match &self.actor_id {
            None => None,
            Some(id) => Some(match decode_any(id, "filter.actorId")? {
                (NodeKind::User, ids) => ActorRef::User(ids[0]),
                (NodeKind::ApiKey, ids) => ActorRef::ApiKey(ids[0]),
                _ => {
                    return Err(AppError::bad_input(
                        "filter.actorId",
                        "expected the ID of a User or an ApiKey",
                    ));
                }
            }),
        };
        Ok(AuditFilter {
            actions: self.actions,
            entity_type: self.entity_type,
            entity_id,
            actor,
            since: self.since,
            until: self.until,
        })
    }
}
