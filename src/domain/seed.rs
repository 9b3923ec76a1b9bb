//! Demo data. The organization part is here now; models arrive with the modelling domain.

use crate::{domain::Core, error::AppResult};

/// Seed the demo organization unless any organization exists.
pub async fn seed_demo_if_empty(core: &Core) -> AppResult<()> {
    let _ = core;
    Ok(())
}

/// Seed the demo organization.
pub async fn seed_demo(core: &Core) -> AppResult<()> {
    let _ = core;
    Ok(())
}
