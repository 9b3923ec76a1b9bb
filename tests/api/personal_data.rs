//! Personal data: `exportMyData` (everything about the caller, no secrets), `deleteMyAccount`
//! and `anonymizeUser` (pseudonym, no password, sessions revoked, memberships ended, the last
//! OWNER refused), and the audit trail that erasure leaves valid because it holds ids only.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use finvision::{
    db::schema::audit_events,
    domain::audit::{history::AuditEventRow, verify::row_is_intact},
};
use serde_json::{Value, json};

use crate::{
    factories::{ModelBuilder, UserBuilder},
    helpers::{PASSWORD, TestApp, TestUser},
};

const EXPORT: &str = "{ exportMyData { generatedAt user { id displayName } data } }";
const DELETE: &str = "mutation($password: String!) { deleteMyAccount(password: $password) }";
const ANONYMIZE: &str =
    "mutation($id: ID!) { anonymizeUser(userId: $id) { id displayName email isActive } }";
const VERIFY: &str =
    "query($org: ID!) { verifyAuditChain(organizationId: $org) { valid eventsChecked } }";
const LOGIN: &str = "mutation($email: String!, $password: String!) { login(email: $email, password: $password) { token } }";

/// Register through the API with a distinctive display name (the audit scan looks for it).
async fn register(app: &TestApp, email: &str, display_name: &str) -> TestUser {
    let res = app
        .gql(
            None,
            "mutation($input: RegisterInput!) { register(input: $input) { token user { id } } }",
            json!({"input": {"email": email, "password": PASSWORD, "displayName": display_name}}),
        )
        .await;
    let data = &res.data()["register"];
    TestUser {
        id: data["user"]["id"].as_str().expect("id").to_owned(),
        email: email.to_owned(),
        token: data["token"].as_str().expect("token").to_owned(),
    }
}

async fn create_api_key(app: &TestApp, by: &TestUser, org: &str) -> String {
    let res = app
        .gql(
            Some(&by.token),
            "mutation($input: CreateApiKeyInput!) { createApiKey(input: $input) { secret } }",
            json!({"input": {"organizationId": org, "name": "etl", "role": "VIEWER"}}),
        )
        .await;
    res.data()["createApiKey"]["secret"]
        .as_str()
        .expect("secret")
        .to_owned()
}

async fn chain_is_valid(app: &TestApp, superadmin: &TestUser, org: &str) -> bool {
    let res = app
        .gql(Some(&superadmin.token), VERIFY, json!({"org": org}))
        .await;
    res.data()["verifyAuditChain"]["valid"] == true
}

/// The platform chain (accounts, sign-ins) recomputed row by row: no API reads it.
async fn platform_chain_is_intact(app: &TestApp) -> bool {
    let mut conn = app.db.superuser_conn().await;
    let rows: Vec<AuditEventRow> = audit_events::table
        .filter(audit_events::organization_id.is_null())
        .order(audit_events::id.asc())
        .select(AuditEventRow::as_select())
        .load(&mut conn)
        .await
        .expect("platform events");
    let mut previous: Option<Vec<u8>> = None;
    for row in &rows {
        if !row_is_intact(row, previous.as_deref()) {
            return false;
        }
        previous = Some(row.hash.clone());
    }
    !rows.is_empty()
}

fn keys_of(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                out.push(key.clone());
                keys_of(inner, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|item| keys_of(item, out)),
        _ => {}
    }
}

#[tokio::test]
async fn export_my_data_holds_everything_about_the_caller_and_no_secret() {
    let app = TestApp::spawn().await;
    let ann = register(&app, "ann.export@example.com", "Annika Export").await;
    let org = app.organization(&ann, "acme").await;
    ModelBuilder::new("Plan")
        .scenario("Base")
        .build(&app, &ann, &org)
        .await;
    let secret = create_api_key(&app, &ann, &org).await;
    // Someone else's data stays out.
    let bob = UserBuilder::new("bob").build(&app).await;
    app.organization(&bob, "other").await;

    let res = app.gql(Some(&ann.token), EXPORT, json!({})).await;
    let export = &res.data()["exportMyData"];
    assert_eq!(export["user"]["id"], ann.id.as_str());
    let data = &export["data"];
    assert_eq!(data["account"]["email"], ann.email.as_str());
    assert_eq!(data["account"]["display_name"], "Annika Export");
    assert_eq!(data["sessions"].as_array().unwrap().len(), 1);
    let memberships = data["memberships"].as_array().unwrap();
    assert_eq!(memberships.len(), 1);
    assert_eq!(memberships[0]["organization_slug"], "acme");
    assert_eq!(memberships[0]["role"], "OWNER");
    assert_eq!(data["apiKeys"].as_array().unwrap().len(), 1);
    assert_eq!(data["models"][0]["name"], "Plan");
    assert!(!data["scenarios"].as_array().unwrap().is_empty());
    assert_eq!(data["reports"], json!([]));
    let actions: Vec<&str> = data["auditEvents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for action in [
        "user.register",
        "organization.create",
        "model.create",
        "api_key.create",
        "user.data_export",
    ] {
        assert!(actions.contains(&action), "{action} in {actions:?}");
    }

    let mut keys = Vec::new();
    keys_of(data, &mut keys);
    for secret_column in ["password_hash", "token_hash", "key_hash"] {
        assert!(!keys.iter().any(|k| k == secret_column), "{secret_column}");
    }
    let text = data.to_string();
    assert!(!text.contains("$argon2"), "no password hash");
    assert!(!text.contains(&secret), "no API key secret");
    assert!(!text.contains(&ann.token), "no session token");
    assert!(!text.contains(&bob.email), "nobody else's data");

    // People only: an API key is refused, anonymous callers too.
    let by_key = app.gql(Some(&secret), EXPORT, json!({})).await;
    assert_eq!(by_key.code(), "FORBIDDEN", "{:#}", by_key.body);
    let anonymous = app.gql(None, EXPORT, json!({})).await;
    assert_eq!(anonymous.code(), "UNAUTHENTICATED", "{:#}", anonymous.body);
}

#[tokio::test]
async fn delete_my_account_erases_the_person_and_keeps_a_valid_history() {
    let app = TestApp::spawn().await;
    let root = UserBuilder::new("root").superadmin().build(&app).await;
    let ann = register(&app, "ann.owner@example.com", "Annika Quillfeather").await;
    let bob = register(&app, "bob.analyst@example.com", "Bartholomew Snodgrass").await;
    let org = app.organization(&ann, "acme").await;
    app.add_member(&ann, &org, &bob, "ANALYST").await;
    ModelBuilder::new("Bob's plan")
        .build(&app, &bob, &org)
        .await;
    assert!(chain_is_valid(&app, &root, &org).await);
    assert!(platform_chain_is_intact(&app).await);

    // A wrong password is a failed sign-in check, and changes nothing.
    let wrong = app
        .gql(
            Some(&bob.token),
            DELETE,
            json!({"password": "not the password"}),
        )
        .await;
    assert_eq!(wrong.code(), "BAD_USER_INPUT", "{:#}", wrong.body);
    assert_eq!(wrong.field().as_deref(), Some("password"));
    assert_eq!(
        app.sql_texts(
            "SELECT new_values->>'via' AS t FROM audit_events WHERE action = 'auth.login_failed'"
        )
        .await,
        ["deleteMyAccount"]
    );

    let res = app
        .gql(Some(&bob.token), DELETE, json!({"password": PASSWORD}))
        .await;
    assert_eq!(res.data()["deleteMyAccount"], true, "{:#}", res.body);

    // The session is gone and the account can never sign in again.
    let me = app.gql(Some(&bob.token), "{ me { id } }", json!({})).await;
    assert!(me.body["data"]["me"].is_null(), "{:#}", me.body);
    let login = app
        .gql(
            None,
            LOGIN,
            json!({"email": bob.email, "password": PASSWORD}),
        )
        .await;
    assert_eq!(login.code(), "UNAUTHENTICATED");
    let row = app
        .sql_texts(
            "SELECT concat_ws('|', email, display_name, timezone, locale, password_hash, is_active, deleted_at IS NOT NULL) AS t \
               FROM users WHERE email NOT LIKE '%@example.com' AND display_name <> 'root'",
        )
        .await;
    assert_eq!(row.len(), 1, "{row:?}");
    assert!(row[0].starts_with("deleted-"), "{row:?}");
    assert!(
        row[0].ends_with("@invalid|Deleted user|UTC|en|!|f|t"),
        "{row:?}"
    );
    assert_eq!(
        app.count_rows("sessions s JOIN users u ON u.id = s.user_id WHERE u.display_name = 'Deleted user' AND s.revoked_at IS NULL")
            .await,
        0
    );
    // The membership ended; the model they created stays.
    let members = app
        .gql(
            Some(&ann.token),
            "query($id: ID!) { node(id: $id) { ... on Organization { members { nodes { user { displayName } } } models { nodes { createdBy { displayName } } } } } }",
            json!({"id": org}),
        )
        .await;
    let names: Vec<&Value> = members.data()["node"]["members"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| &m["user"]["displayName"])
        .collect();
    assert_eq!(names, [&json!("Annika Quillfeather")]);

    // History keeps the actor's id, and every chain still verifies.
    let acted = app
        .sql_texts("SELECT action AS t FROM audit_events a JOIN users u ON u.id = a.actor_user_id WHERE u.display_name = 'Deleted user' ORDER BY a.id")
        .await;
    for action in [
        "user.register",
        "model.create",
        "member.remove",
        "user.erase",
    ] {
        assert!(acted.iter().any(|a| a == action), "{action} in {acted:?}");
    }
    assert!(chain_is_valid(&app, &root, &org).await);
    assert!(platform_chain_is_intact(&app).await);

    // The last OWNER cannot leave, whoever erases them.
    let refused = app
        .gql(Some(&ann.token), DELETE, json!({"password": PASSWORD}))
        .await;
    assert_eq!(refused.code(), "CONFLICT", "{:#}", refused.body);
    let refused = app
        .gql(Some(&root.token), ANONYMIZE, json!({"id": ann.id}))
        .await;
    assert_eq!(refused.code(), "CONFLICT", "{:#}", refused.body);
}

#[tokio::test]
async fn anonymize_user_is_for_superadmins_only() {
    let app = TestApp::spawn().await;
    let root = UserBuilder::new("root").superadmin().build(&app).await;
    let ann = UserBuilder::new("ann").build(&app).await;
    let cat = register(&app, "cat.member@example.com", "Catriona Vexley").await;
    let org = app.organization(&ann, "acme").await;
    app.add_member(&ann, &org, &cat, "ADMIN").await;

    for who in [&ann, &cat] {
        let res = app
            .gql(Some(&who.token), ANONYMIZE, json!({"id": cat.id}))
            .await;
        assert_eq!(res.code(), "FORBIDDEN", "{:#}", res.body);
    }
    let res = app
        .gql(Some(&root.token), ANONYMIZE, json!({"id": cat.id}))
        .await;
    let user = &res.data()["anonymizeUser"];
    assert_eq!(user["displayName"], "Deleted user", "{:#}", res.body);
    assert!(
        user["email"].as_str().unwrap().starts_with("deleted-"),
        "{user}"
    );
    assert_eq!(user["isActive"], false);
    let me = app.gql(Some(&cat.token), "{ me { id } }", json!({})).await;
    assert!(me.body["data"]["me"].is_null(), "{:#}", me.body);
    // Once erased, there is nothing left to erase.
    let again = app
        .gql(Some(&root.token), ANONYMIZE, json!({"id": cat.id}))
        .await;
    assert_eq!(again.code(), "NOT_FOUND", "{:#}", again.body);
    let actions = app.audit_actions().await;
    assert!(
        actions.ends_with(&["member.remove".into(), "user.erase".into()]),
        "{actions:?}"
    );
    assert!(chain_is_valid(&app, &root, &org).await);
}

/// After a full scenario, no audit payload (`old_values`, `new_values`: hashed into the chains)
/// holds an email or a display name: erasure can leave the history untouched.
#[tokio::test]
async fn audit_payloads_hold_ids_never_emails_or_names() {
    let app = TestApp::spawn().await;
    let root = UserBuilder::new("root").superadmin().build(&app).await;
    let ann = register(&app, "ann.scan@example.com", "Annika Quillfeather").await;
    let bob = register(&app, "bob.scan@example.com", "Bartholomew Snodgrass").await;
    let cat = register(&app, "cat.scan@example.com", "Catriona Vexley").await;
    // Sign-ins, good and bad (an unknown email too).
    app.gql(
        None,
        LOGIN,
        json!({"email": ann.email, "password": PASSWORD}),
    )
    .await;
    app.gql(
        None,
        LOGIN,
        json!({"email": bob.email, "password": "wrong password"}),
    )
    .await;
    app.gql(
        None,
        LOGIN,
        json!({"email": "nobody.scan@example.com", "password": PASSWORD}),
    )
    .await;
    let org = app.organization(&ann, "acme").await;
    app.add_member(&ann, &org, &bob, "ANALYST").await;
    app.add_member(&ann, &org, &cat, "VIEWER").await;
    let change = app
        .gql(
            Some(&bob.token),
            "mutation($input: ChangePasswordInput!) { changePassword(input: $input) }",
            json!({"input": {"currentPassword": PASSWORD, "newPassword": "another good password"}}),
        )
        .await;
    assert_eq!(change.data()["changePassword"], true);
    app.gql(
        Some(&ann.token),
        "mutation($input: UpdateMemberRoleInput!) { updateMemberRole(input: $input) { role } }",
        json!({"input": {"organizationId": org, "userId": cat.id, "role": "ANALYST"}}),
    )
    .await;
    ModelBuilder::new("Plan")
        .scenario("Base")
        .build(&app, &bob, &org)
        .await;
    create_api_key(&app, &ann, &org).await;
    app.gql(Some(&cat.token), EXPORT, json!({})).await;
    let deleted = app
        .gql(
            Some(&bob.token),
            DELETE,
            json!({"password": "another good password"}),
        )
        .await;
    assert_eq!(deleted.data()["deleteMyAccount"], true);
    app.gql(Some(&root.token), ANONYMIZE, json!({"id": cat.id}))
        .await
        .data();

    let rows = app.audit_rows().await;
    assert!(rows.len() > 15, "{rows:?}");
    let personal = [
        "ann.scan@example.com",
        "bob.scan@example.com",
        "cat.scan@example.com",
        "nobody.scan@example.com",
        "Annika",
        "Bartholomew",
        "Catriona",
        "Quillfeather",
        "Snodgrass",
        "Vexley",
    ];
    for row in &rows {
        let payload = format!("{:?} {:?}", row.old_values, row.new_values).to_lowercase();
        for needle in personal {
            assert!(
                !payload.contains(&needle.to_lowercase()),
                "{} holds {needle}: {payload}",
                row.action
            );
        }
    }
    assert!(chain_is_valid(&app, &root, &org).await);
    assert!(platform_chain_is_intact(&app).await);
}
