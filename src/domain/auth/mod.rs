//! Identity: users, passwords, sessions, the viewer.

pub mod accounts;
pub mod api_keys;
pub mod cache;
pub mod password;
pub mod personal_data;
pub mod sessions;
pub mod throttle;
pub mod usage;
pub mod users;
pub mod viewer;

pub use viewer::{Caller, RequestMeta, Roles, Standing, Viewer};

use crate::{domain::Core, error::AppResult};

/// The viewer as its credential stands now (roles included), read again by id: `None` once the
/// session or key no longer works; anonymous stays anonymous. One statement.
#[tracing::instrument(skip_all)]
pub async fn reread(core: &Core, viewer: &Viewer) -> AppResult<Option<Viewer>> {
    // A credential lookup is the server's own work, like the first one: it must see the
    // organizations the caller has just joined, which the request's own context does not name
    // yet (row-level security).
    let core = &core.for_server();
    match viewer {
        Viewer::Anonymous => Ok(Some(Viewer::Anonymous)),
        Viewer::User { session_id, .. } => sessions::viewer_of_session(core, *session_id).await,
        Viewer::ApiKey { key_id, .. } => api_keys::viewer_of_key(core, *key_id).await,
    }
}
