//! Identity: users, passwords, sessions, the viewer.

pub mod accounts;
pub mod api_keys;
pub mod password;
pub mod sessions;
pub mod throttle;
pub mod usage;
pub mod users;
pub mod viewer;

pub use viewer::{Caller, RequestMeta, Viewer};
