//! Parameters: definitions, overrides resolved through two levels of base scenarios.

use serde_json::json;

use crate::helpers::{Gql, TestApp};

fn id(res: &Gql, field: &str) -> String {
    res.data()[field]["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn overrides_resolve_through_the_base_chain() {
    let app = TestApp::spawn().await;
    let owner = app.user("owner").await;
    let org = app.organization(&owner, "acme").await;
    let t = Some(owner.token.as_str());
    let model = id(
        &app.gql(t, "mutation($i: CreateModelInput!) { createModel(input: $i) { id } }", json!({"i": {"organizationId": org, "name": "P", "currency": "USD", "startPeriod": "2026-01-01", "endPeriod": "2026-03-01"}})).await,
        "createModel",
    );
    let scenario = |name: &str, base: Option<String>| {
        let vars = json!({"i": {"modelId": model, "name": name, "kind": "CUSTOM", "baseScenarioId": base}});
        app.gql(
            t,
            "mutation($i: CreateScenarioInput!) { createScenario(input: $i) { id } }",
            vars,
        )
    };
    let base = id(&scenario("Base", None).await, "createScenario");
    let mid = id(&scenario("Mid", Some(base.clone())).await, "createScenario");
    let leaf = id(&scenario("Leaf", Some(mid.clone())).await, "createScenario");

    let define = "mutation($i: DefineParameterInput!) { defineParameter(input: $i) { key unit defaultValue } }";
    let res = app.gql(t, define, json!({"i": {"modelId": model, "key": "growth_rate", "name": "Growth", "unit": "PERCENT", "defaultValue": "0.05"}})).await;
    assert_eq!(
        res.data()["defineParameter"],
        json!({"key": "growth_rate", "unit": "PERCENT", "defaultValue": "0.050000"})
    );
    app.gql(t, define, json!({"i": {"modelId": model, "key": "tax_rate", "name": "Tax", "unit": "PERCENT", "defaultValue": 0.25}})).await.data();

    for (key, value, field) in [
        ("Growth", "1", "input.key"),
        ("sum", "1", "input.key"),
        ("ok_key", "0.0000001", "input.defaultValue"),
        ("ok_key", "100000000000000", "input.defaultValue"),
    ] {
        let res = app.gql(t, define, json!({"i": {"modelId": model, "key": key, "name": "x", "unit": "NUMBER", "defaultValue": value}})).await;
        assert_eq!(
            (res.code(), res.field()),
            ("BAD_USER_INPUT".to_owned(), Some(field.to_owned())),
            "{key} {value}"
        );
    }
    let res = app.gql(t, define, json!({"i": {"modelId": model, "key": "tax_rate", "name": "again", "unit": "NUMBER", "defaultValue": "1"}})).await;
    assert_eq!(res.code(), "CONFLICT");

    let set = "mutation($i: SetParameterValueInput!) { setParameterValue(input: $i) { value isDefault inheritedFrom { name } parameter { key } } }";
    let res = app
        .gql(
            t,
            set,
            json!({"i": {"scenarioId": base, "parameterKey": "growth_rate", "value": "0.10"}}),
        )
        .await;
    assert_eq!(
        res.data()["setParameterValue"],
        json!({"value": "0.100000", "isDefault": false, "inheritedFrom": null, "parameter": {"key": "growth_rate"}})
    );
    let res = app
        .gql(
            t,
            set,
            json!({"i": {"scenarioId": mid, "parameterKey": "tax_rate", "value": "0.30"}}),
        )
        .await
        .data()
        .clone();
    assert_eq!(res["setParameterValue"]["value"], "0.300000");

    let q = "query($id: ID!) { scenario(id: $id) { parameterValues { parameter { key } value isDefault inheritedFrom { name } } } }";
    let values = |res: &Gql| res.data()["scenario"]["parameterValues"].clone();
    assert_eq!(
        values(&app.gql(t, q, json!({"id": leaf})).await),
        json!([
            {"parameter": {"key": "growth_rate"}, "value": "0.100000", "isDefault": false, "inheritedFrom": {"name": "Base"}},
            {"parameter": {"key": "tax_rate"}, "value": "0.300000", "isDefault": false, "inheritedFrom": {"name": "Mid"}},
        ])
    );
    // An override on the leaf wins; removing it falls back to the chain.
    app.gql(
        t,
        set,
        json!({"i": {"scenarioId": leaf, "parameterKey": "growth_rate", "value": "0.2"}}),
    )
    .await
    .data();
    assert_eq!(
        values(&app.gql(t, q, json!({"id": leaf})).await)[0],
        json!({"parameter": {"key": "growth_rate"}, "value": "0.200000", "isDefault": false, "inheritedFrom": null})
    );
    let res = app
        .gql(
            t,
            set,
            json!({"i": {"scenarioId": leaf, "parameterKey": "growth_rate", "value": null}}),
        )
        .await;
    assert_eq!(
        res.data()["setParameterValue"]["inheritedFrom"]["name"],
        "Base"
    );
    assert_eq!(
        values(&app.gql(t, q, json!({"id": base})).await)[1],
        json!({"parameter": {"key": "tax_rate"}, "value": "0.250000", "isDefault": true, "inheritedFrom": null})
    );

    let res = app
        .gql(
            t,
            set,
            json!({"i": {"scenarioId": leaf, "parameterKey": "nope", "value": "1"}}),
        )
        .await;
    assert_eq!(
        (res.code(), res.field()),
        (
            "BAD_USER_INPUT".to_owned(),
            Some("input.parameterKey".to_owned())
        )
    );
    let res = app
        .gql(
            t,
            set,
            json!({"i": {"scenarioId": leaf, "parameterKey": "tax_rate", "value": "abc"}}),
        )
        .await;
    assert_eq!(res.code(), "BAD_USER_INPUT");

    app.gql(
        t,
        "mutation($id: ID!) { lockScenario(id: $id, locked: true) { id } }",
        json!({"id": leaf}),
    )
    .await
    .data();
    let res = app
        .gql(
            t,
            set,
            json!({"i": {"scenarioId": leaf, "parameterKey": "tax_rate", "value": "0.1"}}),
        )
        .await;
    assert_eq!(res.code(), "CONFLICT");

    let q = "query($id: ID!) { model(id: $id) { parameters { key name defaultValue } } }";
    let res = app.gql(t, q, json!({"id": model})).await;
    assert_eq!(
        res.data()["model"]["parameters"].as_array().map(Vec::len),
        Some(2)
    );
    let audit = app.audit_actions().await;
    assert_eq!(audit.iter().filter(|a| *a == "parameter.define").count(), 2);
    assert_eq!(
        audit.iter().filter(|a| *a == "parameter_value.set").count(),
        4
    );
}
