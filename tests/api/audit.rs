//! Audit history: lists paged in SQL with filters (ADMIN+), events through `node`, the actor
//! union, and verifying the hash chain after tampering behind the API.

use serde_json::{Value, json};

use crate::{
    factories::Team,
    helpers::{Gql, TestApp, TestUser},
};

const EVENTS: &str = "query($org: ID!, $first: Int, $after: String, $last: Int, $before: String, $filter: AuditEventFilter) {
  auditEvents(organizationId: $org, first: $first, after: $after, last: $last, before: $before, filter: $filter) {
    totalCount
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { cursor node { sequence action entityType entityId } }
  }
}";

async fn create_model(app: &TestApp, user: &TestUser, org: &str, name: &str) -> String {
    let res = app
        .gql(
            Some(&user.token),
            "mutation($input: CreateModelInput!) { createModel(input: $input) { id } }",
            json!({"input": {"organizationId": org, "name": name, "currency": "USD", "startPeriod": "2026-01-01", "endPeriod": "2026-12-01"}}),
        )
        .await;
    res.data()["createModel"]["id"].as_str().unwrap().to_owned()
}

async fn rename_model(app: &TestApp, user: &TestUser, id: &str, version: i64, name: &str) {
    let res = app
        .gql(
            Some(&user.token),
            "mutation($input: UpdateModelInput!) { updateModel(input: $input) { version } }",
            json!({"input": {"id": id, "version": version, "name": name}}),
        )
        .await;
    res.data();
}

async fn events(app: &TestApp, user: &TestUser, org: &str, args: Value) -> Gql {
    let mut variables = json!({"org": org});
    if let (Some(v), Some(a)) = (variables.as_object_mut(), args.as_object()) {
        v.extend(a.clone());
    }
    app.gql(Some(&user.token), EVENTS, variables).await
}

fn actions(res: &Gql) -> Vec<String> {
    res.data()["auditEvents"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["action"].as_str().unwrap().to_owned())
        .collect()
}

fn sequences(res: &Gql) -> Vec<i64> {
    res.data()["auditEvents"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            assert_eq!(e["cursor"], e["node"]["sequence"], "cursors are sequences");
            e["node"]["sequence"].as_str().unwrap().parse().unwrap()
        })
        .collect()
}

#[tokio::test]
async fn history_pages_forward_and_backward_in_sequence_order() {
    let app = TestApp::spawn().await;
    let Team { org, owner, .. } = Team::new(&app).await;
    let model = create_model(&app, &owner, &org, "Plan").await;
    for version in 1..=4 {
        rename_model(&app, &owner, &model, version, &format!("Plan {version}")).await;
    }
    // organization.create, 3 × member.add, model.create, 4 × model.update.
    let all = events(&app, &owner, &org, json!({"first": 100})).await;
    let every = sequences(&all);
    assert_eq!(every.len(), 9);
    assert!(every.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(actions(&all)[0], "organization.create");
    assert_eq!(all.data()["auditEvents"]["totalCount"], 9);

    let page = events(&app, &owner, &org, json!({"first": 4})).await;
    assert_eq!(sequences(&page), every[..4]);
    let info = &page.data()["auditEvents"]["pageInfo"];
    assert_eq!(info["hasNextPage"], true);
    assert_eq!(info["hasPreviousPage"], false);
    assert_eq!(page.data()["auditEvents"]["totalCount"], 9);
    let page = events(
        &app,
        &owner,
        &org,
        json!({"first": 4, "after": info["endCursor"]}),
    )
    .await;
    assert_eq!(sequences(&page), every[4..8]);
    let info = &page.data()["auditEvents"]["pageInfo"];
    assert_eq!(
        (info["hasNextPage"].clone(), info["hasPreviousPage"].clone()),
        (json!(true), json!(true))
    );
    let page = events(
        &app,
        &owner,
        &org,
        json!({"first": 4, "after": info["endCursor"]}),
    )
    .await;
    assert_eq!(sequences(&page), every[8..]);
    assert_eq!(page.data()["auditEvents"]["pageInfo"]["hasNextPage"], false);

    // `last: N` is the latest N; backwards from a cursor.
    let latest = events(&app, &owner, &org, json!({"last": 3})).await;
    assert_eq!(sequences(&latest), every[6..]);
    let info = &latest.data()["auditEvents"]["pageInfo"];
    assert_eq!(
        (info["hasNextPage"].clone(), info["hasPreviousPage"].clone()),
        (json!(false), json!(true))
    );
    let earlier = events(
        &app,
        &owner,
        &org,
        json!({"last": 3, "before": info["startCursor"]}),
    )
    .await;
    assert_eq!(sequences(&earlier), every[3..6]);
    let info = &earlier.data()["auditEvents"]["pageInfo"];
    assert_eq!(
        (info["hasNextPage"].clone(), info["hasPreviousPage"].clone()),
        (json!(true), json!(true))
    );

    // Bad cursors and sizes are the client's error.
    let res = events(&app, &owner, &org, json!({"after": "abc"})).await;
    assert_eq!(res.field().as_deref(), Some("after"));
    let res = events(&app, &owner, &org, json!({"first": 101})).await;
    assert_eq!(res.field().as_deref(), Some("first"));
}

#[tokio::test]
async fn history_filters_by_action_entity_actor_and_time() {
    let app = TestApp::spawn().await;
    let Team {
        org,
        owner,
        admin,
        analyst,
        ..
    } = Team::new(&app).await;
    let plan = create_model(&app, &analyst, &org, "Plan").await;
    let budget = create_model(&app, &owner, &org, "Budget").await;
    rename_model(&app, &analyst, &plan, 1, "Plan B").await;
    let key = app
        .gql(
            Some(&owner.token),
            "mutation($org: ID!) { createApiKey(input: {organizationId: $org, name: \"etl\", role: ANALYST}) { secret apiKey { id } } }",
            json!({"org": org}),
        )
        .await;
    let secret = key.data()["createApiKey"]["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let key_id = key.data()["createApiKey"]["apiKey"]["id"].clone();
    let by_key = app
        .gql(
            Some(&secret),
            "mutation($input: CreateModelInput!) { createModel(input: $input) { id } }",
            json!({"input": {"organizationId": org, "name": "Feed", "currency": "EUR", "startPeriod": "2026-01-01", "endPeriod": "2026-03-01"}}),
        )
        .await;
    by_key.data();

    let filtered = |filter: Value| {
        let app = &app;
        let admin = &admin;
        let org = org.clone();
        async move { events(app, admin, &org, json!({"first": 100, "filter": filter})).await }
    };
    let res = filtered(json!({"actions": ["model.create", "model.update"]})).await;
    assert_eq!(
        actions(&res),
        [
            "model.create",
            "model.create",
            "model.update",
            "model.create"
        ]
    );
    assert_eq!(res.data()["auditEvents"]["totalCount"], 4);
    let res = filtered(json!({"entityType": "Membership"})).await;
    assert_eq!(actions(&res), ["member.add"; 3]);
    let res = filtered(json!({"entityId": plan})).await;
    assert_eq!(actions(&res), ["model.create", "model.update"]);
    for edge in res.data()["auditEvents"]["edges"].as_array().unwrap() {
        assert_eq!(
            edge["node"]["entityId"],
            plan.as_str(),
            "entityId is the global ID"
        );
    }
    let res = filtered(json!({"actorId": analyst.id})).await;
    assert_eq!(actions(&res), ["model.create", "model.update"]);
    let res = filtered(json!({"actorId": key_id})).await;
    assert_eq!(actions(&res), ["model.create"]);
    let res = filtered(json!({"actorId": org})).await;
    assert_eq!(res.field().as_deref(), Some("filter.actorId"));

    // since is inclusive, until exclusive.
    let times = app
        .sql_texts(
            "SELECT to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') AS t FROM audit_events WHERE action = 'model.update'",
        )
        .await;
    let res = filtered(json!({"since": times[0]})).await;
    assert_eq!(
        actions(&res),
        ["model.update", "api_key.create", "model.create"]
    );
    let res = filtered(json!({"until": times[0], "actions": ["model.create"]})).await;
    assert_eq!(res.data()["auditEvents"]["totalCount"], 2);
    let _ = budget;
}

#[tokio::test]
async fn history_is_for_admins_only() {
    let app = TestApp::spawn().await;
    let Team {
        org,
        owner,
        admin,
        analyst,
        viewer,
    } = Team::new(&app).await;
    let model = create_model(&app, &owner, &org, "Plan").await;
    let queries = [
        (EVENTS, json!({"org": org})),
        (
            "query($org: ID!) { node(id: $org) { ... on Organization { auditEvents { totalCount } } } }",
            json!({"org": org}),
        ),
        (
            "query($id: ID!) { model(id: $id) { auditEvents { totalCount } } }",
            json!({"id": model}),
        ),
        (
            "query($org: ID!) { verifyAuditChain(organizationId: $org) { valid } }",
            json!({"org": org}),
        ),
    ];
    for (query, variables) in &queries {
        for user in [&owner, &admin] {
            app.gql(Some(&user.token), query, variables.clone())
                .await
                .data();
        }
        for user in [&analyst, &viewer] {
            let res = app.gql(Some(&user.token), query, variables.clone()).await;
            assert_eq!(res.code(), "FORBIDDEN", "{query}");
        }
    }
    let stranger = app.user("stranger").await;
    let res = app
        .gql(Some(&stranger.token), EVENTS, json!({"org": org}))
        .await;
    assert_eq!(res.code(), "NOT_FOUND");
    let res = app.gql(None, EVENTS, json!({"org": org})).await;
    assert_eq!(res.code(), "UNAUTHENTICATED");
}

#[tokio::test]
async fn events_through_node_keep_their_private_fields_for_admins() {
    let app = TestApp::spawn().await;
    let Team {
        org,
        owner,
        admin,
        analyst,
        viewer,
    } = Team::new(&app).await;
    let model = create_model(&app, &owner, &org, "Plan").await;
    rename_model(&app, &owner, &model, 1, "Plan B").await;
    let res = events(&app, &owner, &org, json!({"last": 1})).await;
    let seq = res.data()["auditEvents"]["edges"][0]["node"]["sequence"].clone();
    let id = app
        .gql(
            Some(&owner.token),
            "query($org: ID!) { auditEvents(organizationId: $org, last: 1) { nodes { id } } }",
            json!({"org": org}),
        )
        .await
        .data()["auditEvents"]["nodes"][0]["id"]
        .clone();
    let query = "query($id: ID!) { node(id: $id) { __typename ... on AuditEvent { sequence action oldValues newValues ipAddress userAgent hash prevHash actor { __typename ... on User { displayName } } organization { slug } } } }";
    for user in [&owner, &admin] {
        let res = app.gql(Some(&user.token), query, json!({"id": id})).await;
        let event = &res.data()["node"];
        assert_eq!(event["__typename"], "AuditEvent");
        assert_eq!(event["sequence"], seq);
        assert_eq!(event["action"], "model.update");
        assert_eq!(event["oldValues"], json!({"name": "Plan"}));
        assert_eq!(event["newValues"], json!({"name": "Plan B"}));
        assert_eq!(
            event["actor"],
            json!({"__typename": "User", "displayName": "owner"})
        );
        assert_eq!(event["organization"]["slug"], "acme");
        let hash = event["hash"].as_str().unwrap();
        assert_eq!(hash.len(), 64);
        assert!(
            hash.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
        assert_eq!(event["prevHash"].as_str().unwrap().len(), 64);
    }
    // To everyone else the event does not exist (the history is ADMIN+ reading), so its private
    // fields are never reached.
    let stranger = app.user("stranger").await;
    for user in [&analyst, &viewer, &stranger] {
        let res = app.gql(Some(&user.token), query, json!({"id": id})).await;
        assert_eq!(res.data()["node"], Value::Null);
    }
    let res = app
        .gql(Some(&owner.token), query, json!({"id": "QXVkaXRFdmVudDp4"}))
        .await;
    assert_eq!(res.code(), "BAD_USER_INPUT");
}

#[tokio::test]
async fn a_model_history_covers_what_is_inside_it() {
    let app = TestApp::spawn().await;
    let Team { org, owner, .. } = Team::new(&app).await;
    let plan = create_model(&app, &owner, &org, "Plan").await;
    let other = create_model(&app, &owner, &org, "Other").await;
    let scenario = app
        .gql(
            Some(&owner.token),
            "mutation($m: ID!) { createScenario(input: {modelId: $m, name: \"Base\", kind: BASE}) { id } }",
            json!({"m": plan}),
        )
        .await;
    scenario.data();
    let metric = app
        .gql(
            Some(&owner.token),
            "mutation($m: ID!) { defineMetric(input: {modelId: $m, key: \"revenue\", name: \"Revenue\", unit: CURRENCY, kind: INPUT}) { id } }",
            json!({"m": plan}),
        )
        .await;
    metric.data();
    app.gql(
        Some(&owner.token),
        "mutation($m: ID!) { createScenario(input: {modelId: $m, name: \"Base\", kind: BASE}) { id } }",
        json!({"m": other}),
    )
    .await
    .data();
    let res = app
        .gql(
            Some(&owner.token),
            "query($m: ID!) { model(id: $m) { auditEvents(first: 50) { totalCount nodes { action } } } }",
            json!({"m": plan}),
        )
        .await;
    let history = &res.data()["model"]["auditEvents"];
    assert_eq!(
        history["nodes"],
        json!([{"action": "model.create"}, {"action": "scenario.create"}, {"action": "metric.define"}])
    );
    assert_eq!(history["totalCount"], 3);
    let res = app
        .gql(
            Some(&owner.token),
            "query($m: ID!) { model(id: $m) { auditEvents(filter: {actions: [\"scenario.create\"]}) { totalCount } } }",
            json!({"m": plan}),
        )
        .await;
    assert_eq!(res.data()["model"]["auditEvents"]["totalCount"], 1);
}

#[tokio::test]
async fn a_page_costs_the_same_statements_whatever_its_size() {
    let app = TestApp::spawn_uncached().await;
    let Team { org, owner, .. } = Team::new(&app).await;
    let model = create_model(&app, &owner, &org, "Plan").await;
    let key = app
        .gql(
            Some(&owner.token),
            "mutation($org: ID!) { createApiKey(input: {organizationId: $org, name: \"etl\", role: ANALYST}) { secret } }",
            json!({"org": org}),
        )
        .await;
    let secret = key.data()["createApiKey"]["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    // The key acts once before the first measure, so that both measures load the same kinds.
    let feed = "mutation($input: CreateModelInput!) { createModel(input: $input) { id } }";
    let feed_input = |name: String| json!({"input": {"organizationId": org, "name": name, "currency": "EUR", "startPeriod": "2026-01-01", "endPeriod": "2026-03-01"}});
    app.gql(Some(&secret), feed, feed_input("Feed".into()))
        .await
        .data();
    let query = "query($org: ID!) { auditEvents(organizationId: $org, first: 100) { totalCount nodes { id entityId oldValues newValues actor { __typename ... on User { displayName } ... on ApiKey { name createdBy { displayName } } } organization { slug } } } }";
    let measure = async || {
        let before = app.statements();
        let res = app
            .gql(Some(&owner.token), query, json!({"org": org}))
            .await;
        let count = res.data()["auditEvents"]["totalCount"].as_i64().unwrap();
        (app.statements() - before, count)
    };
    let (small, few) = measure().await;
    for version in 1..=12 {
        rename_model(&app, &owner, &model, version, &format!("Plan {version}")).await;
        app.gql(Some(&secret), feed, feed_input(format!("Feed {version}")))
            .await
            .data();
    }
    let (large, many) = measure().await;
    assert!(many >= few + 24, "{few} → {many}");
    // Authentication is outside the count's difference; the page and its count (`totalCount` is
    // selected) are two statements.
    assert_eq!(
        small, large,
        "statements grew with the rows: {small} → {large}"
    );
}

/// Tamper with `audit_events` as the database superuser: the triggers that refuse UPDATE and
/// DELETE are disabled for the one statement.
async fn tamper(app: &TestApp, sql: &str) {
    app.sql_exec("ALTER TABLE audit_events DISABLE TRIGGER USER")
        .await;
    app.sql_exec(sql).await;
    app.sql_exec("ALTER TABLE audit_events ENABLE TRIGGER USER")
        .await;
}

async fn verify(app: &TestApp, user: &TestUser, org: &str) -> Value {
    app.gql(
        Some(&user.token),
        "query($org: ID!) { verifyAuditChain(organizationId: $org) { organization { slug } eventsChecked valid firstBrokenSequence } }",
        json!({"org": org}),
    )
    .await
    .data()["verifyAuditChain"]
        .clone()
}

async fn org_sequences(app: &TestApp, user: &TestUser, org: &str) -> Vec<i64> {
    sequences(&events(app, user, org, json!({"first": 100})).await)
}

#[tokio::test]
async fn verifying_the_chain_finds_an_edited_event() {
    let app = TestApp::spawn().await;
    let Team { org, owner, .. } = Team::new(&app).await;
    // A second organization interleaves its events: chains are per organization.
    let other = app.user("other").await;
    let other_org = app.organization(&other, "globex").await;
    let model = create_model(&app, &owner, &org, "Plan").await;
    create_model(&app, &other, &other_org, "Theirs").await;
    rename_model(&app, &owner, &model, 1, "Plan ü \"quoted\" 🚀").await;
    create_model(&app, &owner, &org, "Budget").await;
    // An API key's act hashes its `actor_api_key_id` too.
    let key = app
        .gql(
            Some(&owner.token),
            "mutation($org: ID!) { createApiKey(input: {organizationId: $org, name: \"etl\", role: ANALYST}) { secret } }",
            json!({"org": org}),
        )
        .await;
    let secret = key.data()["createApiKey"]["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    app.gql(
        Some(&secret),
        "mutation($input: CreateModelInput!) { createModel(input: $input) { id } }",
        json!({"input": {"organizationId": org, "name": "Feed", "currency": "EUR", "startPeriod": "2026-01-01", "endPeriod": "2026-03-01"}}),
    )
    .await
    .data();

    let report = verify(&app, &owner, &org).await;
    assert_eq!(
        report,
        json!({"organization": {"slug": "acme"}, "eventsChecked": 9, "valid": true, "firstBrokenSequence": null})
    );
    let seqs = org_sequences(&app, &owner, &org).await;
    let victim = seqs[5];
    tamper(
        &app,
        &format!(
            "UPDATE audit_events SET new_values = '{{\"name\": \"Plan Z\"}}' WHERE id = {victim}"
        ),
    )
    .await;
    let report = verify(&app, &owner, &org).await;
    assert_eq!(report["valid"], false);
    assert_eq!(report["eventsChecked"], 9);
    assert_eq!(report["firstBrokenSequence"], victim.to_string());
    // The other organization's chain is untouched.
    assert_eq!(verify(&app, &other, &other_org).await["valid"], true);
}

#[tokio::test]
async fn verifying_the_chain_finds_a_removed_event() {
    let app = TestApp::spawn().await;
    let Team { org, owner, .. } = Team::new(&app).await;
    let model = create_model(&app, &owner, &org, "Plan").await;
    rename_model(&app, &owner, &model, 1, "Plan B").await;
    let seqs = org_sequences(&app, &owner, &org).await;
    assert_eq!(verify(&app, &owner, &org).await["valid"], true);
    tamper(
        &app,
        &format!("DELETE FROM audit_events WHERE id = {}", seqs[2]),
    )
    .await;
    let report = verify(&app, &owner, &org).await;
    assert_eq!(report["valid"], false);
    assert_eq!(report["eventsChecked"], seqs.len() - 1);
    assert_eq!(report["firstBrokenSequence"], seqs[3].to_string());

    // Removing the first event breaks the (new) first one: it still names a predecessor.
    tamper(
        &app,
        &format!("DELETE FROM audit_events WHERE id = {}", seqs[0]),
    )
    .await;
    let report = verify(&app, &owner, &org).await;
    assert_eq!(report["firstBrokenSequence"], seqs[1].to_string());
}
