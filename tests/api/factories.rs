//! Builders for test data (after crates.io's `test_utils::builders`): a test names what it needs,
//! `OrganizationBuilder::new("acme", &owner).member(&viewer, "VIEWER").build(&app)`, and the
//! builder does it the way a client would, through the API, except for users.
//!
//! Users are the exception because registering one runs argon2 (19 MiB, a few tens of
//! milliseconds, and the server lets only as many run at once as there are cores): a user row is
//! inserted by SQL with a password hash computed once per test run, and a session is opened the
//! way the server opens one, a random `fvs_` token of which only the SHA-256 is stored. The
//! token then authenticates through the normal path, and `login` with [`PASSWORD`] works too.
//! Tests that are about registration call `register` themselves (see [`TestApp::register`]).
// Every module uses a different subset of the builders.
#![allow(dead_code)]

use std::sync::OnceLock;

use argon2::{
    Algorithm, Argon2, Params, Version,
    password_hash::{PasswordHasher, SaltString, rand_core::OsRng},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use diesel::sql_types::{Bool, Bytea, Text, Timestamptz};
use diesel_async::RunQueryDsl;
use rand::RngCore;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::helpers::{Gql, PASSWORD, TestApp, TestUser};

/// The argon2id PHC string of [`PASSWORD`], computed once per test process.
fn password_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| {
        // The server's parameters (argon2id, m = 19 MiB, t = 2, p = 1), so signing in with it
        // costs what it costs in production.
        let params = Params::new(19 * 1024, 2, 1, None).expect("argon2 parameters");
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password(PASSWORD.as_bytes(), &SaltString::generate(&mut OsRng))
            .expect("hash the test password")
            .to_string()
    })
}

#[derive(diesel::QueryableByName)]
struct Inserted {
    #[diesel(sql_type = Text)]
    id: String,
}

/// A user with a signed-in session: `UserBuilder::new("ann").build(&app)`.
pub struct UserBuilder {
    name: String,
    email: Option<String>,
    superadmin: bool,
}

impl UserBuilder {
    /// A user named `name`, with the email `<name>@example.com`.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            email: None,
            superadmin: false,
        }
    }

    /// Another email than `<name>@example.com`.
    pub fn email(mut self, email: &str) -> Self {
        self.email = Some(email.to_owned());
        self
    }

    /// A platform superadmin.
    pub fn superadmin(mut self) -> Self {
        self.superadmin = true;
        self
    }

    /// Insert the user and open a session for it: one statement.
    pub async fn build(self, app: &TestApp) -> TestUser {
        let email = self
            .email
            .unwrap_or_else(|| format!("{}@example.com", self.name));
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let token = format!("fvs_{}", URL_SAFE_NO_PAD.encode(bytes));
        let expires_at = chrono::Utc::now()
            + chrono::Duration::from_std(app.app.config().session_ttl()).expect("session ttl");
        let mut conn = app.db.superuser_conn().await;
        let row: Inserted = diesel::sql_query(
            "WITH u AS (INSERT INTO users (email, password_hash, display_name, is_superadmin) \
                        VALUES ($1, $2, $3, $4) RETURNING id) \
             INSERT INTO sessions (user_id, token_hash, expires_at) \
             SELECT id, $5, $6 FROM u RETURNING user_id::text AS id",
        )
        .bind::<Text, _>(&email)
        .bind::<Text, _>(password_hash())
        .bind::<Text, _>(&self.name)
        .bind::<Bool, _>(self.superadmin)
        .bind::<Bytea, _>(Sha256::digest(token.as_bytes()).to_vec())
        .bind::<Timestamptz, _>(expires_at)
        .get_result(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("insert user {email}: {e}"));
        TestUser {
            id: URL_SAFE_NO_PAD.encode(format!("User:{}", row.id)),
            email,
            token,
        }
    }
}

/// An organization created by its owner through `createOrganization`, with members added through
/// `addMember`: `OrganizationBuilder::new("acme", &owner).member(&viewer, "VIEWER").build(&app)`.
pub struct OrganizationBuilder<'a> {
    slug: String,
    owner: &'a TestUser,
    members: Vec<(&'a TestUser, &'static str)>,
}

impl<'a> OrganizationBuilder<'a> {
    /// The organization `slug` (also its name), owned by `owner`.
    pub fn new(slug: &str, owner: &'a TestUser) -> Self {
        Self {
            slug: slug.to_owned(),
            owner,
            members: Vec::new(),
        }
    }

    /// Add `user` with `role` (`ADMIN`, `ANALYST`, `VIEWER` or `OWNER`).
    pub fn member(mut self, user: &'a TestUser, role: &'static str) -> Self {
        self.members.push((user, role));
        self
    }

    /// Create it; returns its global ID.
    pub async fn build(self, app: &TestApp) -> String {
        let org = app.organization(self.owner, &self.slug).await;
        for (user, role) in self.members {
            app.add_member(self.owner, &org, user, role).await;
        }
        org
    }
}

/// One organization `acme` with a member of every role.
pub struct Team {
    pub org: String,
    pub owner: TestUser,
    pub admin: TestUser,
    pub analyst: TestUser,
    pub viewer: TestUser,
}

impl Team {
    /// Users `owner`, `admin`, `analyst` and `viewer`, and the organization `acme`.
    pub async fn new(app: &TestApp) -> Self {
        Self::with_slug(app, "acme").await
    }

    /// The same with another slug (and users named `<slug>-owner`, … unless the slug is `acme`).
    pub async fn with_slug(app: &TestApp, slug: &str) -> Self {
        let name = |role: &str| {
            if slug == "acme" {
                role.to_owned()
            } else {
                format!("{slug}-{role}")
            }
        };
        let owner = UserBuilder::new(&name("owner")).build(app).await;
        let admin = UserBuilder::new(&name("admin")).build(app).await;
        let analyst = UserBuilder::new(&name("analyst")).build(app).await;
        let viewer = UserBuilder::new(&name("viewer")).build(app).await;
        let org = OrganizationBuilder::new(slug, &owner)
            .member(&admin, "ADMIN")
            .member(&analyst, "ANALYST")
            .member(&viewer, "VIEWER")
            .build(app)
            .await;
        Self {
            org,
            owner,
            admin,
            analyst,
            viewer,
        }
    }

    /// A model "Plan" (monthly, 2026) created by the owner; its ID.
    pub async fn plan(&self, app: &TestApp) -> String {
        ModelBuilder::new("Plan")
            .build(app, &self.owner, &self.org)
            .await
            .id
    }
}

/// A financial model created through `createModel`, with scenarios created through
/// `createScenario`: `ModelBuilder::new("Plan").scenario("Base").build(&app, &owner, &org)`.
pub struct ModelBuilder {
    name: String,
    currency: &'static str,
    start: &'static str,
    end: &'static str,
    extra: Value,
    scenarios: Vec<(String, &'static str, Option<String>)>,
}

/// What [`ModelBuilder::build`] made: the model's ID and its scenarios' IDs, in order.
#[derive(Debug, Clone)]
pub struct BuiltModel {
    pub id: String,
    pub scenarios: Vec<String>,
}

impl ModelBuilder {
    /// A monthly model in USD over 2026.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            currency: "USD",
            start: "2026-01-01",
            end: "2026-12-01",
            extra: json!({}),
            scenarios: Vec::new(),
        }
    }

    /// Its currency.
    pub fn currency(mut self, currency: &'static str) -> Self {
        self.currency = currency;
        self
    }

    /// Its first and last period.
    pub fn periods(mut self, start: &'static str, end: &'static str) -> Self {
        self.start = start;
        self.end = end;
        self
    }

    /// More fields of `CreateModelInput`.
    pub fn with(mut self, extra: Value) -> Self {
        self.extra = extra;
        self
    }

    /// A `BASE` scenario of no other.
    pub fn scenario(self, name: &str) -> Self {
        self.scenario_of(name, "BASE", None)
    }

    /// A scenario of `kind` inheriting from the scenario named `base` (added before it).
    pub fn scenario_of(mut self, name: &str, kind: &'static str, base: Option<&str>) -> Self {
        self.scenarios
            .push((name.to_owned(), kind, base.map(str::to_owned)));
        self
    }

    /// The `CreateModelInput` for `org`.
    pub fn input(&self, org: &str) -> Value {
        let mut input = json!({"organizationId": org, "name": self.name, "currency": self.currency,
                               "startPeriod": self.start, "endPeriod": self.end});
        if let (Some(input), Some(extra)) = (input.as_object_mut(), self.extra.as_object()) {
            input.extend(extra.clone());
        }
        input
    }

    /// Create it in `org` as `by`.
    pub async fn build(self, app: &TestApp, by: &TestUser, org: &str) -> BuiltModel {
        let token = Some(by.token.as_str());
        let id = app
            .gql(
                token,
                "mutation($i: CreateModelInput!) { createModel(input: $i) { id } }",
                json!({"i": self.input(org)}),
            )
            .await
            .id("createModel");
        let mut scenarios: Vec<String> = Vec::new();
        for (name, kind, base) in &self.scenarios {
            let base = base.as_ref().map(|base| {
                let at = self
                    .scenarios
                    .iter()
                    .position(|(n, _, _)| n == base)
                    .unwrap_or_else(|| panic!("no scenario {base} before {name}"));
                scenarios[at].clone()
            });
            scenarios.push(
                app.gql(
                    token,
                    "mutation($i: CreateScenarioInput!) { createScenario(input: $i) { id } }",
                    json!({"i": {"modelId": id, "name": name, "kind": kind, "baseScenarioId": base}}),
                )
                .await
                .id("createScenario"),
            );
        }
        BuiltModel { id, scenarios }
    }
}

/// Who calls, in the role tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Who {
    Viewer,
    Analyst,
    Admin,
    Owner,
    /// Signed in, not a member (a member of another organization where it says so).
    Stranger,
    /// A platform superadmin who is a member of nothing.
    Superadmin,
    Anonymous,
}

impl Who {
    /// Its name in lower case (a slug, a user name).
    pub fn slug(self) -> String {
        format!("{self:?}").to_lowercase()
    }
}

/// Every kind of caller.
pub const EVERYONE: [Who; 7] = [
    Who::Viewer,
    Who::Analyst,
    Who::Admin,
    Who::Owner,
    Who::Stranger,
    Who::Superadmin,
    Who::Anonymous,
];

/// The people of a role table: one user per kind of caller (the superadmin is one) and a
/// `target` that mutations act on. Organizations are made per case with [`Cast::org`].
pub struct Cast {
    pub owner: TestUser,
    pub admin: TestUser,
    pub analyst: TestUser,
    pub viewer: TestUser,
    pub stranger: TestUser,
    pub root: TestUser,
    pub target: TestUser,
}

impl Cast {
    /// Seven users; nobody is a member of anything yet.
    pub async fn new(app: &TestApp) -> Self {
        Self {
            owner: UserBuilder::new("owner").build(app).await,
            admin: UserBuilder::new("admin").build(app).await,
            analyst: UserBuilder::new("analyst").build(app).await,
            viewer: UserBuilder::new("viewer").build(app).await,
            stranger: UserBuilder::new("stranger").build(app).await,
            root: UserBuilder::new("root").superadmin().build(app).await,
            target: UserBuilder::new("target").build(app).await,
        }
    }

    /// A fresh organization of the owner with the admin, analyst and viewer, and (when given)
    /// the target with `target_role`.
    pub async fn org(
        &self,
        app: &TestApp,
        slug: &str,
        target_role: Option<&'static str>,
    ) -> String {
        let mut org = OrganizationBuilder::new(slug, &self.owner)
            .member(&self.admin, "ADMIN")
            .member(&self.analyst, "ANALYST")
            .member(&self.viewer, "VIEWER");
        if let Some(role) = target_role {
            org = org.member(&self.target, role);
        }
        org.build(app).await
    }

    /// The caller's user (`None` for [`Who::Anonymous`]).
    pub fn user(&self, who: Who) -> Option<&TestUser> {
        Some(match who {
            Who::Viewer => &self.viewer,
            Who::Analyst => &self.analyst,
            Who::Admin => &self.admin,
            Who::Owner => &self.owner,
            Who::Stranger => &self.stranger,
            Who::Superadmin => &self.root,
            Who::Anonymous => return None,
        })
    }

    /// The caller's bearer token (`None` for [`Who::Anonymous`]).
    pub fn token(&self, who: Who) -> Option<&str> {
        self.user(who).map(|u| u.token.as_str())
    }
}

impl Gql {
    /// `data.<field>.id`, asserting there are no errors.
    #[track_caller]
    pub fn id(&self, field: &str) -> String {
        self.data()[field]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("no {field}.id: {:#}", self.body))
            .to_owned()
    }
}

/// `data.<field>.id` of a response, asserting there are no errors.
#[track_caller]
pub fn id(res: &Gql, field: &str) -> String {
    res.id(field)
}
