//! Demo data: the "Acme Corp" organization with one user per role and two models (a monthly SaaS
//! P&L over 36 months, a quarterly retail model), built through the same domain operations (and
//! audit events) as the API, so the demo exercises exactly what clients get.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use rand::Rng;

mod demo_models;

use crate::{
    db::schema::organizations,
    domain::{
        Core,
        auth::{Caller, Roles, Viewer, accounts},
        organizations::{OrgRole, members, service},
    },
    error::AppResult,
};

/// Slug of the demo organization.
pub const DEMO_SLUG: &str = "acme";

/// A demo account and its one-time password.
#[derive(Debug, Clone)]
pub struct DemoAccount {
    /// Sign-in email.
    pub email: String,
    /// Generated password (printed once, never stored in clear).
    pub password: String,
    /// Role in Acme Corp.
    pub role: OrgRole,
}

fn password() -> String {
    rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(16)
        .map(char::from)
        .collect()
}

/// Seed the demo organization unless any organization exists; returns the accounts created.
#[tracing::instrument(skip_all)]
pub async fn seed_demo_if_empty(core: &Core) -> AppResult<Vec<DemoAccount>> {
    let mut conn = core.db.conn().await?;
    let existing: i64 = organizations::table.count().get_result(&mut conn).await?;
    drop(conn);
    if existing > 0 {
        tracing::info!("the database already has organizations: demo data not seeded");
        return Ok(Vec::new());
    }
    seed_demo(core).await
}

/// Seed the demo organization and print the credentials once (stdout, never the log).
#[tracing::instrument(skip_all)]
pub async fn seed_demo(core: &Core) -> AppResult<Vec<DemoAccount>> {
    let accounts_spec = [
        ("owner@acme.example", "Olivia Owner", OrgRole::Owner),
        ("admin@acme.example", "Adam Admin", OrgRole::Admin),
        ("analyst@acme.example", "Ana Analyst", OrgRole::Analyst),
        ("viewer@acme.example", "Victor Viewer", OrgRole::Viewer),
    ];
    let mut created = Vec::new();
    let mut owner_id = None;
    for (email, name, role) in accounts_spec {
        let pw = password();
        let user = accounts::create_user(core, email, name, &pw, false).await?;
        owner_id.get_or_insert(user.id);
        created.push(DemoAccount {
            email: email.to_owned(),
            password: pw,
            role,
        });
    }
    let as_owner = |roles| Caller {
        // The seed acts as the owner it just created; it has no session of its own.
        viewer: Viewer::User {
            user_id: owner_id.unwrap_or_default(),
            session_id: uuid::Uuid::nil(),
            is_superadmin: false,
            roles,
        },
        meta: Default::default(),
    };
    let owner = as_owner(Roles::default());
    let org = service::create(
        core,
        &owner,
        "Acme Corp",
        DEMO_SLUG,
        Some(serde_json::json!({"fiscalYearStartMonth": 1})),
    )
    .await?;
    // Roles are read with the credential: the owner's now include the new organization.
    let owner = as_owner(Roles::new([(org.id, OrgRole::Owner)]));
    for account in created.iter().skip(1) {
        members::add(core, &owner, org.id, &account.email, account.role).await?;
    }
    demo_models::seed(core, &owner, org.id).await?;
    println!(
        "Demo organization \"Acme Corp\" (slug `{DEMO_SLUG}`) created. Sign in with `login(email, password)`:"
    );
    for account in &created {
        println!(
            "  {:<8} {:<24} {}",
            account.role.as_str(),
            account.email,
            account.password
        );
    }
    println!("These passwords are shown once.");
    Ok(created)
}
