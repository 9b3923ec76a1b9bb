//! Every guard, allowed and denied, for every kind of caller; private user fields directly and
//! through the `Node` interface; tenant isolation.

use serde_json::{Value, json};

use crate::{
    factories::{Cast, EVERYONE, Who},
    helpers::{Gql, TestApp, TestUser},
    organizations::{ADD, DELETE, REMOVE, ROLE, TRANSFER, UPDATE, role_of},
};

/// Who may use a guard that needs ADMIN: `None` when allowed, else the error code.
const ADMIN_AND_UP: [(Who, Option<&str>); 7] = [
    (Who::Viewer, Some("FORBIDDEN")),
    (Who::Analyst, Some("FORBIDDEN")),
    (Who::Admin, None),
    (Who::Owner, None),
    (Who::Stranger, Some("NOT_FOUND")),
    (Who::Superadmin, None),
    (Who::Anonymous, Some("UNAUTHENTICATED")),
];

/// Who may use a guard that needs OWNER.
const OWNER_ONLY: [(Who, Option<&str>); 7] = [
    (Who::Viewer, Some("FORBIDDEN")),
    (Who::Analyst, Some("FORBIDDEN")),
    (Who::Admin, Some("FORBIDDEN")),
    (Who::Owner, None),
    (Who::Stranger, Some("NOT_FOUND")),
    (Who::Superadmin, None),
    (Who::Anonymous, Some("UNAUTHENTICATED")),
];

/// What an allowed call changed, and a refused one left alone, as the owner sees it.
#[derive(Clone, Copy)]
enum Effect {
    /// The organization's name: this when allowed, the caller's slug (its original) when not.
    Renamed(&'static str),
    /// The organization is gone when allowed.
    Deleted,
    /// The target's role (`None`: not a member) when allowed / when refused.
    TargetRole(Option<&'static str>, Option<&'static str>),
}

/// A guarded organization mutation: one row of the guard tests.
struct Guard {
    query: &'static str,
    vars: fn(&Cast, &str) -> Value,
    /// The target's role in the organization before the call, if a member.
    target_role: Option<&'static str>,
    allowed: [(Who, Option<&'static str>); 7],
    effect: Effect,
}

/// Run a guard as every kind of caller, each on a fresh organization: the outcome, exactly one
/// audit event for the allowed calls and none for the refused ones, and the data.
async fn check_matrix(guard: Guard) {
    let app = TestApp::spawn().await;
    let cast = Cast::new(&app).await;
    assert_eq!(guard.allowed.map(|(who, _)| who), EVERYONE);
    for (who, want) in guard.allowed {
        let org = cast.org(&app, &who.slug(), guard.target_role).await;
        let before = app.audit_rows().await.len();
        let res = app
            .gql(cast.token(who), guard.query, (guard.vars)(&cast, &org))
            .await;
        let after = app.audit_rows().await.len();
        let ok = match want {
            None => {
                assert!(res.errors().is_empty(), "{who:?}: {:#}", res.body);
                assert_eq!(after, before + 1, "{who:?}: one audit event");
                true
            }
            Some(code) => {
                assert_eq!(res.code(), code, "{who:?}: {:#}", res.body);
                assert_eq!(after, before, "{who:?}: no audit event");
                false
            }
        };
        match guard.effect {
            Effect::Renamed(name) => {
                let res = app
                    .gql(
                        Some(&cast.owner.token),
                        "query($id: ID!) { organization(id: $id) { name } }",
                        json!({"id": org}),
                    )
                    .await;
                let want = if ok { name.to_owned() } else { who.slug() };
                assert_eq!(res.data()["organization"]["name"], want.as_str(), "{who:?}");
            }
            Effect::Deleted => {
                let res = app
                    .gql(
                        Some(&cast.owner.token),
                        "query($id: ID!) { organization(id: $id) { id } }",
                        json!({"id": org}),
                    )
                    .await;
                assert_eq!(res.data()["organization"].is_null(), ok, "{who:?}");
            }
            Effect::TargetRole(allowed, refused) => {
                let role = role_of(&app, &cast.owner.token, &org, &cast.target).await;
                let want = if ok { allowed } else { refused };
                assert_eq!(role.as_deref(), want, "{who:?}");
            }
        }
    }
}

#[tokio::test]
async fn update_organization_guard() {
    check_matrix(Guard {
        query: UPDATE,
        vars: |_, org| json!({"input": {"id": org, "version": 1, "name": "renamed"}}),
        target_role: None,
        allowed: ADMIN_AND_UP,
        effect: Effect::Renamed("renamed"),
    })
    .await;
}

#[tokio::test]
async fn delete_organization_guard() {
    check_matrix(Guard {
        query: DELETE,
        vars: |_, org| json!({"id": org}),
        target_role: None,
        allowed: OWNER_ONLY,
        effect: Effect::Deleted,
    })
    .await;
}

#[tokio::test]
async fn add_member_guard() {
    check_matrix(Guard {
        query: ADD,
        vars: |cast, org| {
            json!({"input": {"organizationId": org, "email": cast.target.email, "role": "VIEWER"}})
        },
        target_role: None,
        allowed: ADMIN_AND_UP,
        effect: Effect::TargetRole(Some("VIEWER"), None),
    })
    .await;
}

#[tokio::test]
async fn update_member_role_guard() {
    check_matrix(Guard {
        query: ROLE,
        vars: |cast, org| {
            json!({"input": {"organizationId": org, "userId": cast.target.id, "role": "VIEWER"}})
        },
        target_role: Some("ANALYST"),
        allowed: ADMIN_AND_UP,
        effect: Effect::TargetRole(Some("VIEWER"), Some("ANALYST")),
    })
    .await;
}

#[tokio::test]
async fn remove_member_guard() {
    check_matrix(Guard {
        query: REMOVE,
        vars: |cast, org| json!({"input": {"organizationId": org, "userId": cast.target.id}}),
        target_role: Some("VIEWER"),
        allowed: ADMIN_AND_UP,
        effect: Effect::TargetRole(None, Some("VIEWER")),
    })
    .await;
}

#[tokio::test]
async fn transfer_ownership_guard() {
    check_matrix(Guard {
        query: TRANSFER,
        vars: |cast, org| json!({"input": {"organizationId": org, "toUserId": cast.target.id}}),
        target_role: Some("ADMIN"),
        allowed: OWNER_ONLY,
        effect: Effect::TargetRole(Some("OWNER"), Some("ADMIN")),
    })
    .await;
}

/// Where the private fields of the target are read from.
#[derive(Debug, Clone, Copy)]
enum Path {
    Members,
    Node,
    Nodes,
}

/// Read the target's `email` and `lastLoginAt` by `path`; returns the user object and the
/// FORBIDDEN errors' paths.
async fn read_private(
    app: &TestApp,
    token: &str,
    org: &str,
    target: &TestUser,
    path: Path,
) -> (Value, Vec<Value>, Gql) {
    let (res, user, base): (Gql, Value, Vec<Value>) = match path {
        Path::Members => {
            let res = app
                .gql(
                    Some(token),
                    "query($id: ID!) { organization(id: $id) { name members(first: 100) { nodes { role user { id displayName email lastLoginAt } } } } }",
                    json!({"id": org}),
                )
                .await;
            assert_eq!(res.body["data"]["organization"]["name"], "shared");
            let nodes = res.body["data"]["organization"]["members"]["nodes"]
                .as_array()
                .expect("members")
                .clone();
            let i = nodes
                .iter()
                .position(|n| n["user"]["id"] == target.id.as_str())
                .expect("target is a member");
            let user = nodes[i]["user"].clone();
            let base = vec![
                json!("organization"),
                json!("members"),
                json!("nodes"),
                json!(i),
                json!("user"),
            ];
            (res, user, base)
        }
        Path::Node => {
            let res = app
                .gql(
                    Some(token),
                    "query($id: ID!) { node(id: $id) { id ... on User { displayName email lastLoginAt } } }",
                    json!({"id": target.id}),
                )
                .await;
            let user = res.body["data"]["node"].clone();
            (res, user, vec![json!("node")])
        }
        Path::Nodes => {
            let res = app
                .gql(
                    Some(token),
                    "query($ids: [ID!]!) { nodes(ids: $ids) { id ... on User { displayName email lastLoginAt } } }",
                    json!({"ids": [org, target.id]}),
                )
                .await;
            assert!(res.body["data"]["nodes"][0]["id"] == org);
            let user = res.body["data"]["nodes"][1].clone();
            (res, user, vec![json!("nodes"), json!(1)])
        }
    };
    let forbidden: Vec<Value> = res
        .errors()
        .into_iter()
        .filter(|e| {
            e["extensions"]["code"] == "FORBIDDEN"
                && e["path"]
                    .as_array()
                    .is_some_and(|p| p.len() == base.len() + 1 && p[..base.len()] == base[..])
        })
        .map(|e| e["path"][base.len()].clone())
        .collect();
    (user, forbidden, res)
}

#[tokio::test]
async fn private_user_fields_directly_and_through_the_node_interface() {
    let app = TestApp::spawn().await;
    let cast = Cast::new(&app).await;
    let org = app.organization(&cast.owner, "shared").await;
    for (user, role) in [
        (&cast.admin, "ADMIN"),
        (&cast.analyst, "ANALYST"),
        (&cast.viewer, "VIEWER"),
        (&cast.target, "VIEWER"),
    ] {
        app.add_member(&cast.owner, &org, user, role).await;
    }
    // The target signs in, so lastLoginAt has a value.
    let login = app
        .gql(
            None,
            "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }",
            json!({"e": cast.target.email, "p": crate::helpers::PASSWORD}),
        )
        .await;
    login.data();

    let callers: [(&str, &TestUser, bool); 6] = [
        ("self", &cast.target, true),
        ("owner", &cast.owner, true),
        ("admin", &cast.admin, true),
        ("superadmin", &cast.root, true),
        ("analyst", &cast.analyst, false),
        ("viewer", &cast.viewer, false),
    ];
    for (name, caller, visible) in callers {
        for path in [Path::Members, Path::Node, Path::Nodes] {
            let (user, forbidden, res) =
                read_private(&app, &caller.token, &org, &cast.target, path).await;
            assert_eq!(
                user["displayName"], "target",
                "{name} {path:?}: {:#}",
                res.body
            );
            if visible {
                assert_eq!(
                    user["email"],
                    cast.target.email.as_str(),
                    "{name} {path:?}: {:#}",
                    res.body
                );
                assert!(
                    user["lastLoginAt"].is_string(),
                    "{name} {path:?}: {:#}",
                    res.body
                );
                assert!(forbidden.is_empty(), "{name} {path:?}: {:#}", res.body);
            } else {
                assert!(user["email"].is_null(), "{name} {path:?}: {:#}", res.body);
                assert!(
                    user["lastLoginAt"].is_null(),
                    "{name} {path:?}: {:#}",
                    res.body
                );
                let mut fields: Vec<&str> = forbidden.iter().filter_map(Value::as_str).collect();
                fields.sort_unstable();
                assert_eq!(
                    fields,
                    ["email", "lastLoginAt"],
                    "{name} {path:?}: {:#}",
                    res.body
                );
                // The rest of the response stands.
                assert!(!res.body["data"].is_null());
            }
        }
    }
}

#[tokio::test]
async fn tenant_isolation() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await; // owns A
    let bert = app.user("bert").await; // owns B
    let amy = app.user("amy").await; // member of A only
    let sam = app.user("sam").await; // member of A and B
    let bo = app.user("bo").await; // member of B only
    let a = app.organization(&alice, "org-a").await;
    let b = app.organization(&bert, "org-b").await;
    app.add_member(&alice, &a, &amy, "ADMIN").await;
    app.add_member(&alice, &a, &sam, "VIEWER").await;
    app.add_member(&bert, &b, &sam, "ANALYST").await;
    app.add_member(&bert, &b, &bo, "VIEWER").await;

    let b_members = app
        .gql(
            Some(&bert.token),
            "query($id: ID!) { organization(id: $id) { members { nodes { id user { id } } } } }",
            json!({"id": b}),
        )
        .await;
    let membership_ids: Vec<String> = b_members.data()["organization"]["members"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(membership_ids.len(), 3);

    let q = |query: &'static str, vars: Value| {
        let token = amy.token.clone();
        let app = &app;
        async move { app.gql(Some(&token), query, vars).await }
    };

    let res = q(
        "query($id: ID!) { organization(id: $id) { id } }",
        json!({"id": b}),
    )
    .await;
    assert!(res.data()["organization"].is_null());
    let res = q("{ organization(slug: \"org-b\") { id } }", json!({})).await;
    assert!(res.data()["organization"].is_null());
    for id in [&b, &bert.id, &bo.id]
        .into_iter()
        .chain(membership_ids.iter())
    {
        let res = q(
            "query($id: ID!) { node(id: $id) { id } }",
            json!({"id": id}),
        )
        .await;
        assert!(res.data()["node"].is_null(), "{id}: {:#}", res.body);
    }
    let mut ids = vec![b.clone(), bert.id.clone(), bo.id.clone()];
    ids.extend(membership_ids.iter().cloned());
    let res = q(
        "query($ids: [ID!]!) { nodes(ids: $ids) { id } }",
        json!({"ids": ids}),
    )
    .await;
    assert!(
        res.data()["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .all(Value::is_null),
        "{:#}",
        res.body
    );
    let res = q("{ organizations { totalCount nodes { id } } }", json!({})).await;
    assert_eq!(res.data()["organizations"]["totalCount"], 1);
    assert_eq!(res.data()["organizations"]["nodes"][0]["id"], a.as_str());

    // The shared user is visible, but only with the shared organization.
    let res = q(
        "query($id: ID!) { node(id: $id) { ... on User { displayName memberships { totalCount nodes { role organization { id slug } } } organizations { totalCount nodes { id } } } } }",
        json!({"id": sam.id}),
    )
    .await;
    let user = &res.data()["node"];
    assert_eq!(user["displayName"], "sam");
    assert_eq!(user["memberships"]["totalCount"], 1, "{:#}", res.body);
    assert_eq!(
        user["memberships"]["nodes"][0]["organization"]["id"],
        a.as_str()
    );
    assert_eq!(user["memberships"]["nodes"][0]["role"], "VIEWER");
    assert_eq!(user["organizations"]["totalCount"], 1);
    assert_eq!(user["organizations"]["nodes"][0]["id"], a.as_str());
    // The same through the organization's members.
    let res = q(
        "query($id: ID!) { organization(id: $id) { members { nodes { user { id memberships { totalCount nodes { organization { id } } } } } } } }",
        json!({"id": a}),
    )
    .await;
    for node in res.data()["organization"]["members"]["nodes"]
        .as_array()
        .unwrap()
    {
        for m in node["user"]["memberships"]["nodes"].as_array().unwrap() {
            assert_eq!(m["organization"]["id"], a.as_str(), "{:#}", res.body);
        }
    }
    // The shared user sees both of their own memberships.
    let res = app
        .gql(
            Some(&sam.token),
            "{ me { memberships { totalCount } } }",
            json!({}),
        )
        .await;
    assert_eq!(res.data()["me"]["memberships"]["totalCount"], 2);

    // Mutations on B are NOT_FOUND for A's ADMIN.
    let before = app.audit_rows().await.len();
    for (query, vars) in [
        (
            UPDATE,
            json!({"input": {"id": b, "version": 1, "name": "x"}}),
        ),
        (
            ADD,
            json!({"input": {"organizationId": b, "email": amy.email, "role": "VIEWER"}}),
        ),
        (
            REMOVE,
            json!({"input": {"organizationId": b, "userId": bo.id}}),
        ),
    ] {
        let res = app.gql(Some(&amy.token), query, vars).await;
        assert_eq!(res.code(), "NOT_FOUND", "{:#}", res.body);
    }
    assert_eq!(app.audit_rows().await.len(), before);
}

#[tokio::test]
async fn superadmin_sees_everything_without_a_role() {
    let app = TestApp::spawn().await;
    let ann = app.user("ann").await;
    let ben = app.user("ben").await;
    let root = app.user("root").await;
    app.make_superadmin(&root.email).await;
    let a = app.organization(&ann, "acme").await;
    let b = app.organization(&ben, "beta").await;
    let own = app.organization(&root, "root-org").await;

    let res = app
        .gql(
            Some(&root.token),
            "query($id: ID!) { organization(id: $id) { name viewerRole members { totalCount } } }",
            json!({"id": a}),
        )
        .await;
    assert_eq!(res.data()["organization"]["name"], "acme");
    assert!(res.data()["organization"]["viewerRole"].is_null());
    assert_eq!(res.data()["organization"]["members"]["totalCount"], 1);
    let res = app
        .gql(
            Some(&root.token),
            "query($id: ID!) { node(id: $id) { ... on Organization { viewerRole } } }",
            json!({"id": own}),
        )
        .await;
    assert_eq!(res.data()["node"]["viewerRole"], "OWNER");

    let res = app
        .gql(
            Some(&root.token),
            "{ organizations { totalCount nodes { id viewerRole } } }",
            json!({}),
        )
        .await;
    assert_eq!(res.data()["organizations"]["totalCount"], 3);
    let ids: Vec<&str> = res.data()["organizations"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [a.as_str(), b.as_str(), own.as_str()]);
}
