//! Every string input of every mutation, sent once with a NUL character and once over its cap:
//! each is a `BAD_USER_INPUT` naming the field, and nothing changes (PostgreSQL refuses NUL and
//! over-long index keys, which surfaced as `INTERNAL` before).

use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp};

/// What the rows look like: every table a mutation writes, audit log included.
const FINGERPRINT: &str = "SELECT md5(coalesce(string_agg(x, '|' ORDER BY x), '')) AS t FROM ( \
    SELECT t::text AS x FROM users t UNION ALL SELECT t::text FROM sessions t \
    UNION ALL SELECT t::text FROM organizations t UNION ALL SELECT t::text FROM memberships t \
    UNION ALL SELECT t::text FROM api_keys t UNION ALL SELECT t::text FROM financial_models t \
    UNION ALL SELECT t::text FROM scenarios t UNION ALL SELECT t::text FROM parameters t \
    UNION ALL SELECT t::text FROM parameter_values t UNION ALL SELECT t::text FROM metrics t \
    UNION ALL SELECT t::text FROM metric_values t UNION ALL SELECT t::text FROM audit_events t) s";

/// The ids the mutations act on.
struct Ids {
    org: Value,
    model: Value,
    scenario: Value,
    metric: Value,
}

/// One string input: the mutation, its variables around the value `v`, and the field reported.
struct Case {
    query: &'static str,
    vars: fn(&Ids, Value) -> Value,
    field: &'static str,
    /// The over-long value.
    long: Value,
    /// Signed in, or anonymous (`register`, `login`).
    signed_in: bool,
}

fn long(n: usize) -> Value {
    json!("x".repeat(n + 1))
}

fn long_email() -> Value {
    json!(format!("{}@example.com", "a".repeat(250)))
}

fn case(
    query: &'static str,
    vars: fn(&Ids, Value) -> Value,
    field: &'static str,
    long: Value,
    signed_in: bool,
) -> Case {
    Case {
        query,
        vars,
        field,
        long,
        signed_in,
    }
}

fn cases() -> Vec<Case> {
    const REGISTER: &str = "mutation($i: RegisterInput!) { register(input: $i) { token } }";
    const LOGIN: &str =
        "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }";
    const CHANGE: &str = "mutation($i: ChangePasswordInput!) { changePassword(input: $i) }";
    const CREATE_ORG: &str =
        "mutation($i: CreateOrganizationInput!) { createOrganization(input: $i) { id } }";
    const UPDATE_ORG: &str =
        "mutation($i: UpdateOrganizationInput!) { updateOrganization(input: $i) { id } }";
    const ADD_MEMBER: &str = "mutation($i: AddMemberInput!) { addMember(input: $i) { role } }";
    const CREATE_KEY: &str =
        "mutation($i: CreateApiKeyInput!) { createApiKey(input: $i) { secret } }";
    const CREATE_MODEL: &str = "mutation($i: CreateModelInput!) { createModel(input: $i) { id } }";
    const UPDATE_MODEL: &str = "mutation($i: UpdateModelInput!) { updateModel(input: $i) { id } }";
    const CREATE_SCENARIO: &str =
        "mutation($i: CreateScenarioInput!) { createScenario(input: $i) { id } }";
    const CLONE_SCENARIO: &str =
        "mutation($i: CloneScenarioInput!) { cloneScenario(input: $i) { id } }";
    const UPDATE_SCENARIO: &str =
        "mutation($i: UpdateScenarioInput!) { updateScenario(input: $i) { id } }";
    const DEFINE_PARAMETER: &str =
        "mutation($i: DefineParameterInput!) { defineParameter(input: $i) { id } }";
    const SET_PARAMETER: &str =
        "mutation($i: SetParameterValueInput!) { setParameterValue(input: $i) { value } }";
    const DEFINE_METRIC: &str =
        "mutation($i: DefineMetricInput!) { defineMetric(input: $i) { id } }";
    const UPDATE_METRIC: &str =
        "mutation($i: UpdateMetricInput!) { updateMetric(input: $i) { id } }";
    const UPSERT_VALUES: &str =
        "mutation($i: UpsertMetricValuesInput!) { upsertMetricValues(input: $i) { upserted } }";
    vec![
        case(
            REGISTER,
            |_, v| json!({"i": {"email": v, "password": PASSWORD, "displayName": "x"}}),
            "input.email",
            long_email(),
            false,
        ),
        case(
            REGISTER,
            |_, v| json!({"i": {"email": "new@example.com", "password": PASSWORD, "displayName": v}}),
            "input.displayName",
            long(100),
            false,
        ),
        case(
            REGISTER,
            |_, v| json!({"i": {"email": "new@example.com", "password": v, "displayName": "x"}}),
            "input.password",
            long(256),
            false,
        ),
        case(
            LOGIN,
            |_, v| json!({"e": v, "p": PASSWORD}),
            "email",
            long_email(),
            false,
        ),
        case(
            LOGIN,
            |_, v| json!({"e": "ann@example.com", "p": v}),
            "password",
            long(256),
            false,
        ),
        case(
            CHANGE,
            |_, v| json!({"i": {"currentPassword": v, "newPassword": "another password"}}),
            "input.currentPassword",
            long(256),
            true,
        ),
        case(
            CHANGE,
            |_, v| json!({"i": {"currentPassword": PASSWORD, "newPassword": v}}),
            "input.newPassword",
            long(256),
            true,
        ),
        case(
            CREATE_ORG,
            |_, v| json!({"i": {"name": v, "slug": "fresh"}}),
            "input.name",
            long(200),
            true,
        ),
        case(
            CREATE_ORG,
            |_, v| json!({"i": {"name": "Fresh", "slug": v}}),
            "input.slug",
            long(200),
            true,
        ),
        case(
            UPDATE_ORG,
            |ids, v| json!({"i": {"id": ids.org, "version": 1, "name": v}}),
            "input.name",
            long(200),
            true,
        ),
        case(
            UPDATE_ORG,
            |ids, v| json!({"i": {"id": ids.org, "version": 1, "slug": v}}),
            "input.slug",
            long(200),
            true,
        ),
        case(
            ADD_MEMBER,
            |ids, v| json!({"i": {"organizationId": ids.org, "email": v, "role": "VIEWER"}}),
            "input.email",
            long_email(),
            true,
        ),
        case(
            CREATE_KEY,
            |ids, v| json!({"i": {"organizationId": ids.org, "name": v, "role": "VIEWER"}}),
            "input.name",
            long(200),
            true,
        ),
        case(
            CREATE_MODEL,
            |ids, v| json!({"i": {"organizationId": ids.org, "name": v, "currency": "USD", "startPeriod": "2026-01-01", "endPeriod": "2026-03-01"}}),
            "input.name",
            long(200),
            true,
        ),
        case(
            CREATE_MODEL,
            |ids, v| json!({"i": {"organizationId": ids.org, "name": "M2", "description": v, "currency": "USD", "startPeriod": "2026-01-01", "endPeriod": "2026-03-01"}}),
            "input.description",
            long(10_000),
            true,
        ),
        case(
            CREATE_MODEL,
            |ids, v| json!({"i": {"organizationId": ids.org, "name": "M2", "currency": v, "startPeriod": "2026-01-01", "endPeriod": "2026-03-01"}}),
            "input.currency",
            long(200),
            true,
        ),
        case(
            UPDATE_MODEL,
            |ids, v| json!({"i": {"id": ids.model, "version": 1, "name": v}}),
            "input.name",
            long(200),
            true,
        ),
        case(
            UPDATE_MODEL,
            |ids, v| json!({"i": {"id": ids.model, "version": 1, "description": v}}),
            "input.description",
            long(10_000),
            true,
        ),
        case(
            UPDATE_MODEL,
            |ids, v| json!({"i": {"id": ids.model, "version": 1, "currency": v}}),
            "input.currency",
            long(200),
            true,
        ),
        case(
            CREATE_SCENARIO,
            |ids, v| json!({"i": {"modelId": ids.model, "name": v, "kind": "UPSIDE"}}),
            "input.name",
            long(200),
            true,
        ),
        case(
            CREATE_SCENARIO,
            |ids, v| json!({"i": {"modelId": ids.model, "name": "S2", "kind": "UPSIDE", "description": v}}),
            "input.description",
            long(10_000),
            true,
        ),
        case(
            CLONE_SCENARIO,
            |ids, v| json!({"i": {"scenarioId": ids.scenario, "name": v}}),
            "input.name",
            long(200),
            true,
        ),
        case(
            UPDATE_SCENARIO,
            |ids, v| json!({"i": {"id": ids.scenario, "version": 1, "name": v}}),
            "input.name",
            long(200),
            true,
        ),
        case(
            UPDATE_SCENARIO,
            |ids, v| json!({"i": {"id": ids.scenario, "version": 1, "description": v}}),
            "input.description",
            long(10_000),
            true,
        ),
        case(
            DEFINE_PARAMETER,
            |ids, v| json!({"i": {"modelId": ids.model, "key": v, "name": "G", "unit": "PERCENT", "defaultValue": "0"}}),
            "input.key",
            long(200),
            true,
        ),
        case(
            DEFINE_PARAMETER,
            |ids, v| json!({"i": {"modelId": ids.model, "key": "g2", "name": v, "unit": "PERCENT", "defaultValue": "0"}}),
            "input.name",
            long(200),
            true,
        ),
        case(
            SET_PARAMETER,
            |ids, v| json!({"i": {"scenarioId": ids.scenario, "parameterKey": v, "value": "1"}}),
            "input.parameterKey",
            long(200),
            true,
        ),
        case(
            DEFINE_METRIC,
            |ids, v| json!({"i": {"modelId": ids.model, "key": v, "name": "C", "unit": "CURRENCY", "kind": "INPUT"}}),
            "input.key",
            long(200),
            true,
        ),
        case(
            DEFINE_METRIC,
            |ids, v| json!({"i": {"modelId": ids.model, "key": "cost", "name": v, "unit": "CURRENCY", "kind": "INPUT"}}),
            "input.name",
            long(200),
            true,
        ),
        case(
            DEFINE_METRIC,
            |ids, v| json!({"i": {"modelId": ids.model, "key": "cost", "name": "C", "unit": "CURRENCY", "kind": "DERIVED", "formula": v}}),
            "input.formula",
            long(10_000),
            true,
        ),
        case(
            DEFINE_METRIC,
            |ids, v| json!({"i": {"modelId": ids.model, "key": "cost", "name": "C", "unit": "CURRENCY", "kind": "INPUT", "description": v}}),
            "input.description",
            long(10_000),
            true,
        ),
        case(
            UPDATE_METRIC,
            |ids, v| json!({"i": {"id": ids.metric, "version": 1, "name": v}}),
            "input.name",
            long(200),
            true,
        ),
        case(
            UPDATE_METRIC,
            |ids, v| json!({"i": {"id": ids.metric, "version": 1, "formula": v}}),
            "input.formula",
            long(10_000),
            true,
        ),
        case(
            UPDATE_METRIC,
            |ids, v| json!({"i": {"id": ids.metric, "version": 1, "description": v}}),
            "input.description",
            long(10_000),
            true,
        ),
        case(
            UPSERT_VALUES,
            |ids, v| json!({"i": {"scenarioId": ids.scenario, "values": [{"metricKey": v, "period": "2026-01-01", "value": "1"}]}}),
            "input.values.0.metricKey",
            long(200),
            true,
        ),
    ]
}

#[tokio::test]
async fn nul_and_over_long_strings_are_refused_naming_the_field_and_change_nothing() {
    let app = TestApp::spawn().await;
    let ann = app.user("ann").await;
    let org = app.organization(&ann, "acme").await;
    let data = |res: crate::helpers::Gql, path: &str| res.data()[path]["id"].clone();
    let model = data(app.gql(Some(&ann.token), "mutation($o: ID!) { createModel(input: {organizationId: $o, name: \"Plan\", currency: \"USD\", startPeriod: \"2026-01-01\", endPeriod: \"2026-03-01\"}) { id } }", json!({"o": org})).await, "createModel");
    let scenario = data(app.gql(Some(&ann.token), "mutation($m: ID!) { createScenario(input: {modelId: $m, name: \"Base\", kind: BASE}) { id } }", json!({"m": model})).await, "createScenario");
    app.gql(Some(&ann.token), "mutation($m: ID!) { defineParameter(input: {modelId: $m, key: \"growth\", name: \"Growth\", unit: PERCENT, defaultValue: \"0\"}) { id } }", json!({"m": model})).await.data();
    let metric = data(app.gql(Some(&ann.token), "mutation($m: ID!) { defineMetric(input: {modelId: $m, key: \"revenue\", name: \"Revenue\", unit: CURRENCY, kind: INPUT}) { id } }", json!({"m": model})).await, "defineMetric");
    let ids = Ids {
        org: json!(org),
        model,
        scenario,
        metric,
    };

    let before = app.sql_texts(FINGERPRINT).await;
    let mut failures = Vec::new();
    for case in cases() {
        let nul = if case.field.ends_with("email") {
            json!("a\u{0}b@example.com")
        } else {
            json!("bad\u{0}value")
        };
        for value in [nul, case.long.clone()] {
            let token = case.signed_in.then_some(ann.token.as_str());
            let res = app
                .gql(token, case.query, (case.vars)(&ids, value.clone()))
                .await;
            let code = res.errors().first().map(|_| res.code());
            if code.as_deref() != Some("BAD_USER_INPUT")
                || res.field().as_deref() != Some(case.field)
            {
                let shown: String = value
                    .as_str()
                    .unwrap_or_default()
                    .chars()
                    .take(12)
                    .collect();
                failures.push(format!(
                    "{} {} ({shown:?}…): {code:?} {:?}",
                    case.query,
                    case.field,
                    res.field()
                ));
            }
        }
    }
    // Settings: a NUL inside, a deep nesting, and an object over 64 KiB.
    let mut deep = json!(1);
    for _ in 0..40 {
        deep = json!([deep]);
    }
    for settings in [
        json!({"k": "a\u{0}"}),
        json!({"deep": deep}),
        json!({"k": "x".repeat(70_000)}),
    ] {
        for (query, vars) in [
            (
                "mutation($i: CreateOrganizationInput!) { createOrganization(input: $i) { id } }",
                json!({"i": {"name": "S", "slug": "settings", "settings": settings}}),
            ),
            (
                "mutation($i: UpdateOrganizationInput!) { updateOrganization(input: $i) { id } }",
                json!({"i": {"id": org, "version": 1, "settings": settings}}),
            ),
        ] {
            let res = app.gql(Some(&ann.token), query, vars).await;
            if res.code() != "BAD_USER_INPUT" || res.field().as_deref() != Some("input.settings") {
                failures.push(format!("{query} settings: {:#}", res.body));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} inputs not refused as they should be:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(
        app.sql_texts(FINGERPRINT).await,
        before,
        "a refused input changed something"
    );
}
