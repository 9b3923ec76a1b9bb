//! Relay: opaque global IDs, `node`/`nodes`, connections, and DataLoader batching (statement
//! counts that do not grow with the number of rows).

use serde_json::{Value, json};

use crate::{
    helpers::{TestApp, TestUser},
    organizations::UPDATE,
};

#[tokio::test]
async fn global_ids_are_opaque_and_round_trip() {
    let app = TestApp::spawn().await;
    let ann = app.user("ann").await;
    let org = app.organization(&ann, "acme").await;
    let res = app
        .gql(
            Some(&ann.token),
            "query($id: ID!) { organization(id: $id) { members { nodes { id } } } }",
            json!({"id": org}),
        )
        .await;
    let membership = res.data()["organization"]["members"]["nodes"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    for (id, typename) in [
        (&ann.id, "User"),
        (&org, "Organization"),
        (&membership, "Membership"),
    ] {
        assert!(uuid::Uuid::parse_str(id).is_err(), "{id} is a raw UUID");
        assert!(!id.contains(typename), "{id} shows its type");
        let res = app
            .gql(
                Some(&ann.token),
                "query($id: ID!) { node(id: $id) { __typename id } }",
                json!({"id": id}),
            )
            .await;
        assert_eq!(res.data()["node"]["__typename"], typename);
        assert_eq!(res.data()["node"]["id"], id.as_str());
    }
    // Different kinds never share an ID.
    assert_ne!(ann.id, org);
    assert_ne!(org, membership);

    // Malformed IDs.
    for bad in [
        "garbage",
        "!!!",
        "",
        "VXNlcjpub3QtYS11dWlk",
        "00000000-0000-0000-0000-000000000000",
    ] {
        let res = app
            .gql(
                Some(&ann.token),
                "query($id: ID!) { node(id: $id) { id } }",
                json!({"id": bad}),
            )
            .await;
        assert_eq!(res.code(), "BAD_USER_INPUT", "{bad}: {:#}", res.body);
        assert_eq!(res.field().as_deref(), Some("id"), "{bad}");
    }

    // The wrong kind of ID in an input.
    let before = app.audit_rows().await.len();
    let res = app
        .gql(
            Some(&ann.token),
            UPDATE,
            json!({"input": {"id": ann.id, "version": 1, "name": "x"}}),
        )
        .await;
    assert_eq!(res.code(), "BAD_USER_INPUT", "{:#}", res.body);
    assert_eq!(res.field().as_deref(), Some("input.id"));
    let res = app
        .gql(
            Some(&ann.token),
            "query($id: ID!) { organization(id: $id) { id } }",
            json!({"id": membership}),
        )
        .await;
    assert_eq!(res.code(), "BAD_USER_INPUT", "{:#}", res.body);
    assert_eq!(res.field().as_deref(), Some("id"));
    assert_eq!(app.audit_rows().await.len(), before);
}

#[tokio::test]
async fn nodes_keeps_order_and_limits() {
    let app = TestApp::spawn().await;
    let ann = app.user("ann").await;
    let ben = app.user("ben").await;
    let cid = app.user("cid").await;
    let org = app.organization(&ann, "acme").await;
    let hidden = app.organization(&ben, "hidden").await;
    app.add_member(&ann, &org, &cid, "VIEWER").await;

    let ids = json!([org, ben.id, cid.id, hidden, ann.id, org]);
    let res = app
        .gql(
            Some(&ann.token),
            "query($ids: [ID!]!) { nodes(ids: $ids) { __typename id } }",
            json!({"ids": ids}),
        )
        .await;
    let nodes = res.data()["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 6);
    assert_eq!(nodes[0]["id"], org.as_str());
    assert!(nodes[1].is_null(), "ben shares nothing with ann");
    assert_eq!(nodes[2]["id"], cid.id.as_str());
    assert_eq!(nodes[2]["__typename"], "User");
    assert!(nodes[3].is_null(), "another tenant's organization");
    assert_eq!(nodes[4]["id"], ann.id.as_str());
    assert_eq!(nodes[5]["id"], org.as_str());

    let res = app
        .gql(
            Some(&ann.token),
            "query($ids: [ID!]!) { nodes(ids: $ids) { id } }",
            json!({"ids": vec![ann.id.clone(); 100]}),
        )
        .await;
    assert_eq!(res.data()["nodes"].as_array().unwrap().len(), 100);
    let res = app
        .gql(
            Some(&ann.token),
            "query($ids: [ID!]!) { nodes(ids: $ids) { id } }",
            json!({"ids": vec![ann.id.clone(); 101]}),
        )
        .await;
    assert_eq!(res.code(), "BAD_USER_INPUT", "{:#}", res.body);

    // A malformed one among good ones is a user error too.
    let res = app
        .gql(
            Some(&ann.token),
            "query($ids: [ID!]!) { nodes(ids: $ids) { id } }",
            json!({"ids": [ann.id, "garbage"]}),
        )
        .await;
    assert_eq!(res.code(), "BAD_USER_INPUT", "{:#}", res.body);
}

const PAGE: &str =
    "query($id: ID!, $first: Int, $after: String, $last: Int, $before: String, $role: OrgRole) {
  organization(id: $id) {
    members(first: $first, after: $after, last: $last, before: $before, role: $role) {
      totalCount
      pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
      edges { cursor node { id role user { id } } }
      nodes { id role user { id } }
    }
  }
}";

/// One page: (user ids, hasNext, hasPrevious, startCursor, endCursor, totalCount).
struct Page {
    users: Vec<String>,
    cursors: Vec<String>,
    has_next: bool,
    has_previous: bool,
    end: Option<String>,
    total: i64,
}

async fn page(app: &TestApp, token: &str, org: &str, args: Value) -> Page {
    let mut vars = args;
    vars["id"] = json!(org);
    let res = app.gql(Some(token), PAGE, vars).await;
    let conn = &res.data()["organization"]["members"];
    let edges = conn["edges"].as_array().unwrap();
    let nodes = conn["nodes"].as_array().unwrap();
    assert_eq!(edges.len(), nodes.len());
    for (edge, node) in edges.iter().zip(nodes) {
        assert_eq!(&edge["node"], node, "edges and nodes agree");
    }
    let cursors: Vec<String> = edges
        .iter()
        .map(|e| e["cursor"].as_str().unwrap().to_owned())
        .collect();
    let info = &conn["pageInfo"];
    assert_eq!(
        info["startCursor"].as_str(),
        cursors.first().map(String::as_str)
    );
    assert_eq!(
        info["endCursor"].as_str(),
        cursors.last().map(String::as_str)
    );
    Page {
        users: nodes
            .iter()
            .map(|n| n["user"]["id"].as_str().unwrap().to_owned())
            .collect(),
        cursors,
        has_next: info["hasNextPage"].as_bool().unwrap(),
        has_previous: info["hasPreviousPage"].as_bool().unwrap(),
        end: info["endCursor"].as_str().map(str::to_owned),
        total: conn["totalCount"].as_i64().unwrap(),
    }
}

#[tokio::test]
async fn member_connection_pages_both_ways() {
    let app = TestApp::spawn().await;
    let owner = app.user("owner").await;
    let org = app.organization(&owner, "acme").await;
    let mut all = vec![owner.id.clone()];
    for i in 0..6 {
        let u = app.user(&format!("member{i}")).await;
        let role = if i < 2 { "ADMIN" } else { "VIEWER" };
        app.add_member(&owner, &org, &u, role).await;
        all.push(u.id);
    }
    let t = &owner.token;

    // Forward: 3 + 3 + 1.
    let p1 = page(&app, t, &org, json!({"first": 3})).await;
    assert_eq!(p1.users, all[0..3]);
    assert_eq!((p1.has_next, p1.has_previous, p1.total), (true, false, 7));
    let p2 = page(&app, t, &org, json!({"first": 3, "after": p1.end})).await;
    assert_eq!(p2.users, all[3..6]);
    assert_eq!((p2.has_next, p2.has_previous, p2.total), (true, true, 7));
    let p3 = page(&app, t, &org, json!({"first": 3, "after": p2.end})).await;
    assert_eq!(p3.users, all[6..7]);
    assert_eq!((p3.has_next, p3.has_previous, p3.total), (false, true, 7));

    // Backward: the last two, then the two before them.
    let l1 = page(&app, t, &org, json!({"last": 2})).await;
    assert_eq!(l1.users, all[5..7]);
    assert_eq!((l1.has_next, l1.has_previous, l1.total), (false, true, 7));
    let l2 = page(&app, t, &org, json!({"last": 2, "before": l1.cursors[0]})).await;
    assert_eq!(l2.users, all[3..5]);
    assert_eq!((l2.has_next, l2.has_previous), (true, true));
    // Before the 5th member (index 4): the 3rd and 4th.
    let all_page = page(&app, t, &org, json!({"first": 100})).await;
    assert_eq!(all_page.users, all);
    assert!(!all_page.has_next && !all_page.has_previous);
    let l3 = page(
        &app,
        t,
        &org,
        json!({"last": 2, "before": all_page.cursors[4]}),
    )
    .await;
    assert_eq!(l3.users, all[2..4]);
    let l4 = page(
        &app,
        t,
        &org,
        json!({"last": 5, "before": all_page.cursors[2]}),
    )
    .await;
    assert_eq!(l4.users, all[0..2]);
    assert!(!l4.has_previous && l4.has_next);

    // Default page size (20) covers everything.
    let d = page(&app, t, &org, json!({})).await;
    assert_eq!(d.users, all);

    // Role filter.
    let admins = page(&app, t, &org, json!({"role": "ADMIN"})).await;
    assert_eq!(admins.users, all[1..3]);
    assert_eq!(admins.total, 2);
    let owners = page(&app, t, &org, json!({"role": "OWNER"})).await;
    assert_eq!(owners.users, all[0..1]);

    // Limits.
    for (args, field) in [
        (json!({"first": 101}), "first"),
        (json!({"first": -1}), "first"),
        (json!({"last": 101}), "last"),
        (json!({"last": -1}), "last"),
        (json!({"after": "%%%"}), "after"),
    ] {
        let mut vars = args.clone();
        vars["id"] = json!(org);
        let res = app.gql(Some(t), PAGE, vars).await;
        assert_eq!(res.code(), "BAD_USER_INPUT", "{args}: {:#}", res.body);
        assert_eq!(res.field().as_deref(), Some(field), "{args}");
    }
    let res = app
        .gql(
            Some(t),
            "{ organizations(first: 101) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(res.code(), "BAD_USER_INPUT", "{:#}", res.body);
}

const TREE: &str = "{ organizations(first: 100) { totalCount nodes { id name members(first: 10) { totalCount nodes { role user { displayName email memberships { totalCount } } } } } } }";

/// Statements the app sends for one request.
async fn count(app: &TestApp, token: &str, query: &str, vars: Value) -> (u64, Value) {
    let before = app.statements();
    let res = app.gql(Some(token), query, vars).await;
    let data = res.data().clone();
    (app.statements() - before, data)
}

/// `n` organizations owned in turn by the pool's users, each with 3–4 members; `all` (when given)
/// joins every one as ADMIN.
async fn populate(app: &TestApp, pool: &[TestUser], from: usize, n: usize, all: Option<&TestUser>) {
    for i in from..from + n {
        let owner = &pool[i % pool.len()];
        let org = app.organization(owner, &format!("org-{i:03}")).await;
        let extra = 2 + i % 2;
        for k in 1..=extra {
            let member = &pool[(i + k) % pool.len()];
            let role = ["VIEWER", "ANALYST", "ADMIN"][k % 3];
            app.add_member(owner, &org, member, role).await;
        }
        if let Some(all) = all {
            app.add_member(owner, &org, all, "ADMIN").await;
        }
    }
}

#[tokio::test]
async fn dataloader_statement_counts_do_not_grow_with_rows() {
    let app = TestApp::spawn_uncached().await;
    let mut pool = Vec::new();
    for i in 0..8 {
        pool.push(app.user(&format!("user{i}")).await);
    }
    let root = app.user("root").await;
    app.make_superadmin(&root.email).await;
    let everywhere = app.user("everywhere").await;
    populate(&app, &pool, 0, 30, Some(&everywhere)).await;

    let (super30, data) = count(&app, &root.token, TREE, json!({})).await;
    assert_eq!(data["organizations"]["totalCount"], 30);
    let orgs = data["organizations"]["nodes"].as_array().unwrap();
    assert_eq!(orgs.len(), 30);
    let members30: usize = orgs
        .iter()
        .map(|o| o["members"]["nodes"].as_array().unwrap().len())
        .sum();
    for org in orgs {
        let members = org["members"]["nodes"].as_array().unwrap();
        assert!((4..=5).contains(&members.len()), "{org:#}");
        assert!(members.iter().all(|m| m["user"]["email"].is_string()));
    }
    let (member30, data) = count(&app, &everywhere.token, TREE, json!({})).await;
    assert_eq!(data["organizations"]["totalCount"], 30);
    let emails = data["organizations"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|o| o["members"]["nodes"].as_array().unwrap().clone())
        .filter(|m| m["user"]["email"].is_string())
        .count();
    assert!(
        emails >= 120,
        "an ADMIN everywhere sees every email ({emails})"
    );

    // More rows: 10 more organizations, and one more member in each of the first ten.
    populate(&app, &pool, 30, 10, Some(&everywhere)).await;
    let extra = app.user("extra").await;
    let ids = app
        .gql(
            Some(&root.token),
            "{ organizations(first: 10) { nodes { id } } }",
            json!({}),
        )
        .await;
    for org in ids.data()["organizations"]["nodes"].as_array().unwrap() {
        app.add_member(&root, org["id"].as_str().unwrap(), &extra, "VIEWER")
            .await;
    }
    let (super40, data) = count(&app, &root.token, TREE, json!({})).await;
    assert_eq!(data["organizations"]["totalCount"], 40);
    let more: usize = data["organizations"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["members"]["nodes"].as_array().unwrap().len())
        .sum();
    assert!(more > members30, "{more} rows now vs {members30}");
    let (member40, data) = count(&app, &everywhere.token, TREE, json!({})).await;
    assert_eq!(data["organizations"]["totalCount"], 40);
    println!(
        "statements for 30 orgs: superadmin {super30} then {super40} with more rows; member of all {member30} then {member40}"
    );
    assert!(super30 <= 6, "superadmin tree: {super30} statements");
    assert!(member30 <= 8, "member tree: {member30} statements");
    assert_eq!(super40, super30, "superadmin: statements grow with rows");
    assert_eq!(member40, member30, "member: statements grow with rows");

    // One user by node(id) vs twenty by nodes(ids): the same number of statements.
    // Twenty users other than the member who asks (pool[0]).
    let mut users: Vec<String> = pool[1..].iter().map(|u| u.id.clone()).collect();
    users.push(everywhere.id.clone());
    users.push(extra.id.clone());
    for i in 0..11 {
        users.push(app.user(&format!("late{i}")).await.id);
    }
    // Make the late users visible: members of one organization.
    let late_org = app.organization(&pool[0], "late").await;
    for i in 0..11 {
        let email = format!("late{i}@example.com");
        let res = app
            .gql(
                Some(&pool[0].token),
                crate::organizations::ADD,
                json!({"input": {"organizationId": late_org, "email": email, "role": "VIEWER"}}),
            )
            .await;
        res.data();
    }
    assert_eq!(users.len(), 20);
    const ONE: &str = "query($id: ID!) { node(id: $id) { ... on User { displayName memberships { nodes { organization { name } } } } } }";
    const MANY: &str = "query($ids: [ID!]!) { nodes(ids: $ids) { ... on User { displayName memberships { nodes { organization { name } } } } } }";
    for (who, token) in [("superadmin", &root.token), ("member", &pool[0].token)] {
        let (one, data) = count(&app, token, ONE, json!({"id": users[0]})).await;
        assert!(data["node"]["displayName"].is_string());
        let (many, data) = count(&app, token, MANY, json!({"ids": users})).await;
        let seen = data["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n["displayName"].is_string())
            .count();
        println!("statements ({who}): node(1 user) {one}, nodes(20 users, {seen} visible) {many}");
        assert!(seen >= 10, "{who}: {seen}");
        assert_eq!(many, one, "{who}: nodes(20) vs node(1)");
    }
}
