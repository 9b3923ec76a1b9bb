//! A connection's `totalCount` and cursor checks cost a statement only when the query selects
//! them: an audit page alone is one statement after authentication; `totalCount` (directly, by
//! alias, through a fragment spread or an inline fragment) adds one, and so does `pageInfo` that
//! events beyond a cursor decide, together with the count when both are selected. Every number
//! is checked against the database.

use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser};

/// `auditEvents` of `$org` with `args` and `selection`, which may spread the fragments `Counted`
/// (`totalCount`) and `Before` (`hasPreviousPage`); only the spread ones are defined (a document
/// with an unused fragment is invalid).
fn audit_query(args: &str, selection: &str) -> String {
    let mut query =
        format!("query($org: ID!) {{ auditEvents(organizationId: $org{args}) {{ {selection} }} }}");
    if selection.contains("...Counted") {
        query.push_str(" fragment Counted on AuditEventConnection { totalCount }");
    }
    if selection.contains("...Before") {
        query.push_str(" fragment Before on PageInfo { hasPreviousPage }");
    }
    query
}

/// Statements the app sends for one request, and its `auditEvents`.
async fn count(app: &TestApp, user: &TestUser, query: &str, org: &str) -> (u64, Value) {
    let before = app.statements();
    let res = app.gql(Some(&user.token), query, json!({"org": org})).await;
    let data = res.data()["auditEvents"].clone();
    (app.statements() - before, data)
}

/// An organization with some history: its creation, two members, three models.
async fn history(app: &TestApp) -> (TestUser, String) {
    let owner = app.user("owner").await;
    let org = app.organization(&owner, "acme").await;
    for name in ["ann", "bob"] {
        let member = app.user(name).await;
        app.add_member(&owner, &org, &member, "VIEWER").await;
    }
    for name in ["Plan", "Budget", "Forecast"] {
        app.gql(
            Some(&owner.token),
            "mutation($input: CreateModelInput!) { createModel(input: $input) { id } }",
            json!({"input": {"organizationId": org, "name": name, "currency": "USD", "startPeriod": "2026-01-01", "endPeriod": "2026-12-01"}}),
        )
        .await
        .data();
    }
    (owner, org)
}

/// The organization's events as the database counts them, and their sequences in order.
async fn stored(app: &TestApp) -> Vec<i64> {
    app.sql_texts(
        "SELECT id::text AS t FROM audit_events WHERE organization_id = \
         (SELECT id FROM organizations WHERE slug = 'acme') ORDER BY id",
    )
    .await
    .iter()
    .map(|t| t.parse().expect("a sequence"))
    .collect()
}

/// What authentication and the `auditEvents` guard cost, measured: a page size over the limit is
/// refused after both, before the page is read.
async fn before_the_page(app: &TestApp, owner: &TestUser, org: &str) -> u64 {
    let before = app.statements();
    let res = app
        .gql(
            Some(&owner.token),
            &audit_query(", first: 101", "nodes { id }"),
            json!({"org": org}),
        )
        .await;
    assert_eq!(res.code(), "BAD_USER_INPUT", "{:#}", res.body);
    app.statements() - before
}

fn sequences(connection: &Value) -> Vec<i64> {
    connection["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| {
            n["sequence"]
                .as_str()
                .expect("sequence")
                .parse()
                .expect("number")
        })
        .collect()
}

#[tokio::test]
async fn a_page_without_count_or_cursor_checks_is_one_statement() {
    let app = TestApp::spawn_uncached().await;
    let (owner, org) = history(&app).await;
    let all = stored(&app).await;
    assert!(all.len() >= 6, "{all:?}");
    let auth = before_the_page(&app, &owner, &org).await;
    assert!(auth >= 1, "authentication reads the session: {auth}");

    // The query of the issue: nodes only.
    let (n, page) = count(
        &app,
        &owner,
        &audit_query(", first: 100", "nodes { id action sequence }"),
        &org,
    )
    .await;
    assert_eq!(n, auth + 1, "the page alone");
    assert_eq!(sequences(&page), all);

    // Edges, cursors, and page info the page itself answers (`hasNextPage` going forward, from
    // its one extra row; `hasPreviousPage` with no `after`): still the page alone.
    let (n, page) = count(
        &app,
        &owner,
        &audit_query(
            ", first: 2",
            "edges { cursor node { id } } pageInfo { hasNextPage hasPreviousPage startCursor endCursor }",
        ),
        &org,
    )
    .await;
    assert_eq!(n, auth + 1, "the page alone: {page:#}");
    assert_eq!(page["pageInfo"]["hasNextPage"], true);
    assert_eq!(page["pageInfo"]["hasPreviousPage"], false);

    // Going forward after a cursor with `hasNextPage` only (what most clients select).
    let after = all[1].to_string();
    let (n, page) = count(
        &app,
        &owner,
        &audit_query(
            &format!(", first: 2, after: \"{after}\""),
            "nodes { sequence } pageInfo { hasNextPage endCursor }",
        ),
        &org,
    )
    .await;
    assert_eq!(n, auth + 1, "the page alone: {page:#}");
    assert_eq!(sequences(&page), all[2..4]);
}

#[tokio::test]
async fn total_count_is_one_more_statement_and_right_however_it_is_selected() {
    let app = TestApp::spawn_uncached().await;
    let (owner, org) = history(&app).await;
    let all = stored(&app).await;
    let auth = before_the_page(&app, &owner, &org).await;
    for selection in [
        "totalCount nodes { id }",
        "n: totalCount",
        "...Counted nodes { id }",
        "... on AuditEventConnection { totalCount }",
        "... { ...Counted }",
    ] {
        let (n, page) = count(&app, &owner, &audit_query(", first: 2", selection), &org).await;
        assert_eq!(n, auth + 2, "{selection}: the page and its count");
        let total = page.get("n").unwrap_or(&page["totalCount"]);
        assert_eq!(total, all.len(), "{selection}: {page:#}");
    }
    // A filter counts what it matches.
    let (n, page) = count(
        &app,
        &owner,
        &audit_query(
            ", first: 1, filter: {actions: [\"model.create\"]}",
            "...Counted nodes { action }",
        ),
        &org,
    )
    .await;
    assert_eq!(n, auth + 2);
    assert_eq!(page["totalCount"], 3);
    assert_eq!(page["nodes"][0]["action"], "model.create");
}

#[tokio::test]
async fn page_info_beyond_a_cursor_is_checked_only_when_selected_and_right() {
    let app = TestApp::spawn_uncached().await;
    let (owner, org) = history(&app).await;
    let all = stored(&app).await;
    let auth = before_the_page(&app, &owner, &org).await;
    let after = |i: usize| format!(", first: 2, after: \"{}\"", all[i]);

    // After the third event: earlier events exist, which the page cannot see.
    for selection in [
        "pageInfo { hasPreviousPage }",
        "pageInfo { ...Before }",
        "pageInfo { ... on PageInfo { hasPreviousPage } }",
    ] {
        let (n, page) = count(
            &app,
            &owner,
            &audit_query(&after(2), &format!("nodes {{ sequence }} {selection}")),
            &org,
        )
        .await;
        assert_eq!(n, auth + 2, "{selection}: the page and one check");
        assert_eq!(page["pageInfo"]["hasPreviousPage"], true, "{selection}");
        assert_eq!(sequences(&page), all[3..5]);
    }

    // With `totalCount` too: one statement for both.
    let (n, page) = count(
        &app,
        &owner,
        &audit_query(
            &after(2),
            "totalCount pageInfo { hasPreviousPage hasNextPage }",
        ),
        &org,
    )
    .await;
    assert_eq!(n, auth + 2, "the page, then the count with the check");
    assert_eq!(page["totalCount"], all.len());
    assert_eq!(page["pageInfo"]["hasPreviousPage"], true);
    assert_eq!(page["pageInfo"]["hasNextPage"], true);

    // Before the first event nothing precedes, with or without the count.
    for selection in [
        "pageInfo { hasPreviousPage }",
        "totalCount pageInfo { hasPreviousPage }",
    ] {
        let (n, page) = count(
            &app,
            &owner,
            &audit_query(", first: 2, after: \"0\"", selection),
            &org,
        )
        .await;
        assert_eq!(n, auth + 2, "{selection}");
        assert_eq!(page["pageInfo"]["hasPreviousPage"], false, "{selection}");
    }

    // The check applies the filter: before the first `model.create` lie only other actions.
    let first_model = app
        .sql_texts("SELECT min(id)::text AS t FROM audit_events WHERE action = 'model.create'")
        .await[0]
        .parse::<i64>()
        .expect("a sequence");
    let filtered = |cursor: i64| {
        audit_query(
            &format!(", first: 1, after: \"{cursor}\", filter: {{actions: [\"model.create\"]}}"),
            "nodes { action } pageInfo { hasPreviousPage }",
        )
    };
    let (_, page) = count(&app, &owner, &filtered(first_model - 1), &org).await;
    assert_eq!(page["pageInfo"]["hasPreviousPage"], false, "{page:#}");
    let (_, page) = count(&app, &owner, &filtered(first_model), &org).await;
    assert_eq!(page["pageInfo"]["hasPreviousPage"], true, "{page:#}");

    // Backwards before a cursor: `hasNextPage` checks what lies at or after it.
    let before = format!(", last: 2, before: \"{}\"", all[3]);
    let (n, page) = count(
        &app,
        &owner,
        &audit_query(&before, "nodes { sequence } pageInfo { hasNextPage }"),
        &org,
    )
    .await;
    assert_eq!(n, auth + 2);
    assert_eq!(page["pageInfo"]["hasNextPage"], true);
    assert_eq!(sequences(&page), all[1..3]);
    // … and not when unselected: the page alone.
    let (n, _) = count(
        &app,
        &owner,
        &audit_query(&before, "nodes { sequence } pageInfo { hasPreviousPage }"),
        &org,
    )
    .await;
    assert_eq!(
        n,
        auth + 1,
        "going backwards, the page answers hasPreviousPage"
    );
}

#[tokio::test]
async fn nested_audit_connections_count_only_when_selected() {
    let app = TestApp::spawn_uncached().await;
    let (owner, org) = history(&app).await;
    let all = stored(&app).await;
    const PAGE: &str =
        "query($org: ID!) { organization(id: $org) { auditEvents(first: 3) { nodes { id } } } }";
    const COUNTED: &str = "query($org: ID!) { organization(id: $org) { auditEvents(first: 3) { ...Counted nodes { id } } } }
        fragment Counted on AuditEventConnection { totalCount }";
    let measure = async |query: &str| {
        let before = app.statements();
        let res = app
            .gql(Some(&owner.token), query, json!({"org": org}))
            .await;
        let data = res.data()["organization"]["auditEvents"].clone();
        (app.statements() - before, data)
    };
    let (plain, _) = measure(PAGE).await;
    let (counted, data) = measure(COUNTED).await;
    assert_eq!(
        counted,
        plain + 1,
        "Organization.auditEvents: the count only when selected"
    );
    assert_eq!(data["totalCount"], all.len());

    // A model's history through a fragment spread: the count is the model's events.
    let model = app
        .gql(
            Some(&owner.token),
            "query($org: ID!) { organization(id: $org) { models(first: 1) { nodes { id } } } }",
            json!({"org": org}),
        )
        .await
        .data()["organization"]["models"]["nodes"][0]["id"]
        .clone();
    let res = app
        .gql(
            Some(&owner.token),
            "query($m: ID!) { model(id: $m) { auditEvents(first: 100) { ...Counted nodes { id } } } }
             fragment Counted on AuditEventConnection { totalCount }",
            json!({"m": model}),
        )
        .await;
    let history = &res.data()["model"]["auditEvents"];
    let nodes = history["nodes"].as_array().expect("nodes").len();
    assert!(nodes >= 1, "{history:#}");
    assert_eq!(history["totalCount"], nodes);
}
