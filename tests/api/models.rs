//! Financial models: create, update, archive, delete, list with filter and order, roles.

use serde_json::{Value, json};

use crate::{
    factories::Team,
    helpers::{TestApp, TestUser, redactions},
};

const CREATE: &str = "mutation($input: CreateModelInput!) { createModel(input: $input) { id name currency periodGranularity startPeriod endPeriod periods status version createdBy { displayName } organization { slug } } }";

async fn create(
    app: &TestApp,
    user: &TestUser,
    org: &str,
    name: &str,
    extra: Value,
) -> crate::helpers::Gql {
    let mut input = json!({"organizationId": org, "name": name, "currency": "USD", "startPeriod": "2026-01-01", "endPeriod": "2026-12-01"});
    if let (Some(input), Some(extra)) = (input.as_object_mut(), extra.as_object()) {
        input.extend(extra.clone());
    }
    app.gql(Some(&user.token), CREATE, json!({"input": input}))
        .await
}

#[tokio::test]
async fn analysts_create_models_with_a_timeline() {
    let app = TestApp::spawn().await;
    let Team {
        org,
        analyst,
        viewer,
        ..
    } = Team::new(&app).await;
    let res = create(
        &app,
        &analyst,
        &org,
        "SaaS P&L",
        json!({"periodGranularity": "QUARTER", "endPeriod": "2027-10-01"}),
    )
    .await;
    // A quarterly timeline of eight periods, a DRAFT at version 1, by the analyst.
    redactions(&[]).bind(|| insta::assert_json_snapshot!(res.data()));

    // Monthly by default.
    let res = create(&app, &analyst, &org, "Retail", json!({})).await;
    assert_eq!(res.data()["createModel"]["periodGranularity"], "MONTH");

    let res = create(&app, &viewer, &org, "Nope", json!({})).await;
    assert_eq!(res.code(), "FORBIDDEN");
    assert!(
        app.audit_actions()
            .await
            .iter()
            .filter(|a| *a == "model.create")
            .count()
            == 2
    );
}

#[tokio::test]
async fn bad_input_names_the_field_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let Team { org, owner, .. } = Team::new(&app).await;
    let before = app.audit_actions().await.len();
    for (extra, field) in [
        (json!({"currency": "usd"}), "input.currency"),
        (json!({"currency": "XYZ"}), "input.currency"),
        (json!({"startPeriod": "2026-01-15"}), "input.startPeriod"),
        (
            json!({"periodGranularity": "QUARTER", "endPeriod": "2026-12-01"}),
            "input.endPeriod",
        ),
        (json!({"endPeriod": "2025-01-01"}), "input.endPeriod"),
        (json!({"name": "  "}), "input.name"),
    ] {
        let res = create(&app, &owner, &org, "M", extra.clone()).await;
        assert_eq!(res.code(), "BAD_USER_INPUT", "{extra}");
        assert_eq!(res.field().as_deref(), Some(field), "{extra}");
    }
    assert_eq!(app.audit_actions().await.len(), before);

    create(&app, &owner, &org, "Budget", json!({})).await.data();
    let res = create(&app, &owner, &org, "BUDGET", json!({})).await;
    assert_eq!(res.code(), "CONFLICT");
}

#[tokio::test]
async fn strangers_see_nothing_and_cannot_write() {
    let app = TestApp::spawn().await;
    let Team { org, owner, .. } = Team::new(&app).await;
    let id = create(&app, &owner, &org, "Secret", json!({})).await.data()["createModel"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let stranger = app.user("stranger").await;
    let res = app
        .gql(
            Some(&stranger.token),
            "query($id: ID!) { model(id: $id) { name } node(id: $id) { id } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(res.data()["model"], Value::Null);
    assert_eq!(res.data()["node"], Value::Null);
    let res = app
        .gql(
            Some(&stranger.token),
            "mutation($id: ID!) { archiveModel(id: $id, version: 1) { id } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(res.code(), "NOT_FOUND");
    let res = create(&app, &stranger, &org, "Intruder", json!({})).await;
    assert_eq!(res.code(), "NOT_FOUND");
}

#[tokio::test]
async fn update_archive_and_delete_follow_versions_and_roles() {
    let app = TestApp::spawn().await;
    let Team {
        org,
        admin,
        analyst,
        viewer,
        ..
    } = Team::new(&app).await;
    let id = create(&app, &analyst, &org, "Plan", json!({})).await.data()["createModel"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let update = "mutation($input: UpdateModelInput!) { updateModel(input: $input) { name version endPeriod status } }";

    let res = app.gql(Some(&analyst.token), update, json!({"input": {"id": id, "version": 1, "name": "Plan 2027", "endPeriod": "2027-06-01"}})).await;
    assert_eq!(
        res.data()["updateModel"],
        json!({"name": "Plan 2027", "version": 2, "endPeriod": "2027-06-01", "status": "DRAFT"})
    );
    let res = app
        .gql(
            Some(&analyst.token),
            update,
            json!({"input": {"id": id, "version": 1, "name": "Stale"}}),
        )
        .await;
    assert_eq!(res.code(), "CONFLICT");
    let res = app
        .gql(
            Some(&viewer.token),
            update,
            json!({"input": {"id": id, "version": 2, "name": "Viewer"}}),
        )
        .await;
    assert_eq!(res.code(), "FORBIDDEN");

    let archive =
        "mutation($id: ID!, $v: Int!) { archiveModel(id: $id, version: $v) { status version } }";
    let res = app
        .gql(Some(&analyst.token), archive, json!({"id": id, "v": 2}))
        .await;
    assert_eq!(
        res.data()["archiveModel"],
        json!({"status": "ARCHIVED", "version": 3})
    );

    let delete = "mutation($id: ID!) { deleteModel(id: $id) }";
    assert_eq!(
        app.gql(Some(&analyst.token), delete, json!({"id": id}))
            .await
            .code(),
        "FORBIDDEN"
    );
    assert_eq!(
        app.gql(Some(&admin.token), delete, json!({"id": id}))
            .await
            .data()["deleteModel"],
        true
    );
    let res = app
        .gql(
            Some(&admin.token),
            "query($id: ID!) { model(id: $id) { id } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(res.data()["model"], Value::Null);

    let actions = app.audit_actions().await;
    let model_actions: Vec<_> = actions.iter().filter(|a| a.starts_with("model.")).collect();
    assert_eq!(
        model_actions,
        [
            "model.create",
            "model.update",
            "model.archive",
            "model.delete"
        ]
    );

    // The update recorded only what changed.
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    use finvision::db::schema::audit_events::dsl as ae;
    let mut conn = app.db.superuser_conn().await;
    let (old, new): (Option<Value>, Option<Value>) = ae::audit_events
        .filter(ae::action.eq("model.update"))
        .select((ae::old_values, ae::new_values))
        .first(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        old.unwrap(),
        json!({"name": "Plan", "endPeriod": "2026-12-01"})
    );
    assert_eq!(
        new.unwrap(),
        json!({"name": "Plan 2027", "endPeriod": "2027-06-01"})
    );
}

#[tokio::test]
async fn organization_models_filter_search_order_and_page() {
    let app = TestApp::spawn().await;
    let Team { org, owner, .. } = Team::new(&app).await;
    for name in [
        "Zeta forecast",
        "alpha budget",
        "Beta Forecast",
        "gamma plan",
    ] {
        create(&app, &owner, &org, name, json!({})).await.data();
    }
    let id =
        |res: &crate::helpers::Gql| res.data()["createModel"]["id"].as_str().unwrap().to_owned();
    let archived = id(&create(&app, &owner, &org, "Old forecast", json!({})).await);
    app.gql(
        Some(&owner.token),
        "mutation($id: ID!) { archiveModel(id: $id, version: 1) { id } }",
        json!({"id": archived}),
    )
    .await
    .data();

    let q = "query($id: ID!, $filter: ModelFilter, $order: ModelOrder, $first: Int, $after: String) { node(id: $id) { ... on Organization { models(filter: $filter, orderBy: $order, first: $first, after: $after) { totalCount pageInfo { hasNextPage endCursor } nodes { name status } } } } }";
    let names = |res: &crate::helpers::Gql| -> Vec<String> {
        res.data()["node"]["models"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["name"].as_str().unwrap().to_owned())
            .collect()
    };

    let res = app
        .gql(
            Some(&owner.token),
            q,
            json!({"id": org, "filter": {"search": "FORECAST"}, "order": {"field": "NAME"}}),
        )
        .await;
    assert_eq!(
        names(&res),
        ["Beta Forecast", "Old forecast", "Zeta forecast"]
    );

    let res = app
        .gql(Some(&owner.token), q, json!({"id": org, "filter": {"search": "forecast", "status": ["DRAFT"]}, "order": {"field": "NAME", "direction": "DESC"}}))
        .await;
    assert_eq!(names(&res), ["Zeta forecast", "Beta Forecast"]);

    let res = app
        .gql(
            Some(&owner.token),
            q,
            json!({"id": org, "order": {"field": "NAME"}, "first": 2}),
        )
        .await;
    assert_eq!(names(&res), ["alpha budget", "Beta Forecast"]);
    assert_eq!(res.data()["node"]["models"]["totalCount"], 5);
    let cursor = res.data()["node"]["models"]["pageInfo"]["endCursor"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = app
        .gql(
            Some(&owner.token),
            q,
            json!({"id": org, "order": {"field": "NAME"}, "first": 2, "after": cursor}),
        )
        .await;
    assert_eq!(names(&res), ["gamma plan", "Old forecast"]);
    assert_eq!(
        res.data()["node"]["models"]["pageInfo"]["hasNextPage"],
        true
    );
}
