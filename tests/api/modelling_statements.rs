//! The modelling graph takes a constant number of SQL statements whatever its size: an
//! organization → its models → their scenarios → every scenario's series, and `nodes` of one vs
//! many scenarios; with computed values checked against values computed here.

use std::collections::HashMap;

use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::{Value, json};

use crate::helpers::{Gql, TestApp, TestUser};

const PERIODS: i64 = 36;

/// The INPUT metrics; every model has them, with values stored on Base in bulk.
const INPUTS: [&str; 8] = [
    "units",
    "price",
    "headcount",
    "salary",
    "rent",
    "marketing",
    "other_opex",
    "capex",
];

/// The DERIVED metrics, in dependency order: offsets, `sum`, `max`, parameters, a recursive one.
const DERIVED: [(&str, &str); 12] = [
    ("revenue", "units * price"),
    ("revenue_growth", "revenue / revenue[-1] - 1"),
    ("cogs", "revenue * cogs_ratio"),
    ("gross_profit", "revenue - cogs"),
    ("gross_margin", "gross_profit / revenue"),
    ("payroll", "headcount * salary"),
    ("opex", "payroll + rent + marketing + other_opex"),
    ("ebitda", "gross_profit - opex"),
    ("tax", "max(ebitda * tax_rate, 0)"),
    ("net_income", "ebitda - tax - capex"),
    ("trailing_revenue", "sum(revenue, 3)"),
    ("projection", "projection[-1] * (1 + growth)"),
];

const PARAMETERS: [(&str, &str); 3] = [
    ("growth", "0.05"),
    ("tax_rate", "0.25"),
    ("cogs_ratio", "0.4"),
];

/// The whole tree of the brief.
const TREE: &str = "query($org: ID!) { organization(id: $org) { models(first: 100) { nodes { name
  scenarios(first: 100) { nodes { name parameterValues { value }
    series { metric { key dependsOn { key } } points { period value } } } }
  metrics { key } parameters { key } } } } }";

const ONE: &str = "query($id: ID!) { node(id: $id) { ... on Scenario { name
  series { metric { key dependsOn { key } } points { period value } } } } }";

const MANY: &str = "query($ids: [ID!]!) { nodes(ids: $ids) { ... on Scenario { name
  series { metric { key dependsOn { key } } points { period value } } } } }";

fn id_of(res: &Gql, field: &str) -> String {
    res.data()[field]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{field}: {:#}", res.body))
        .to_owned()
}

fn period(i: i64) -> String {
    format!("{}-{:02}-01", 2026 + i / 12, i % 12 + 1)
}

/// Statements the app sends for one request, and its data.
async fn count(app: &TestApp, token: &str, query: &str, vars: Value) -> (u64, Value) {
    let before = app.statements();
    let res = app.gql(Some(token), query, vars).await;
    let data = res.data().clone();
    (app.statements() - before, data)
}

struct Builder<'a> {
    app: &'a TestApp,
    user: &'a TestUser,
    org: String,
}

impl Builder<'_> {
    async fn call(&self, query: &str, input: Value) -> Gql {
        let res = self
            .app
            .gql(Some(&self.user.token), query, json!({"i": input}))
            .await;
        res.data();
        res
    }

    async fn metric(&self, model: &str, key: &str, formula: Option<&str>) {
        let kind = if formula.is_some() {
            "DERIVED"
        } else {
            "INPUT"
        };
        self.call(
            "mutation($i: DefineMetricInput!) { defineMetric(input: $i) { id } }",
            json!({"modelId": model, "key": key, "name": key, "unit": "NUMBER", "kind": kind, "formula": formula}),
        )
        .await;
    }

    async fn scenario(&self, model: &str, name: &str, base: Option<&str>) -> String {
        id_of(
            &self
                .call(
                    "mutation($i: CreateScenarioInput!) { createScenario(input: $i) { id } }",
                    json!({"modelId": model, "name": name, "kind": "CUSTOM", "baseScenarioId": base}),
                )
                .await,
            "createScenario",
        )
    }

    async fn parameter_value(&self, scenario: &str, key: &str, value: &str) {
        self.call(
            "mutation($i: SetParameterValueInput!) { setParameterValue(input: $i) { value } }",
            json!({"scenarioId": scenario, "parameterKey": key, "value": value}),
        )
        .await;
    }

    async fn upsert(&self, scenario: &str, values: Vec<(&str, i64, String)>) {
        let values: Vec<Value> = values
            .into_iter()
            .map(|(k, i, v)| json!({"metricKey": k, "period": period(i), "value": v}))
            .collect();
        self.call(
            "mutation($i: UpsertMetricValuesInput!) { upsertMetricValues(input: $i) { upserted } }",
            json!({"scenarioId": scenario, "values": values}),
        )
        .await;
    }

    /// Model `M{m}`: 3 parameters, 20 metrics, scenarios Base ← Mid ← Leaf and (unless
    /// `three`) Alt ← Base; the Base inputs stored in bulk (one `INSERT … SELECT`), overrides
    /// on the others through the API. Returns the scenario IDs by name.
    async fn model(&self, m: i64, three: bool) -> HashMap<String, String> {
        let name = format!("M{m}");
        let model = id_of(
            &self
                .call(
                    "mutation($i: CreateModelInput!) { createModel(input: $i) { id } }",
                    json!({"organizationId": self.org, "name": name, "currency": "USD", "startPeriod": "2026-01-01", "endPeriod": "2028-12-01"}),
                )
                .await,
            "createModel",
        );
        for (key, default) in PARAMETERS {
            self.call(
                "mutation($i: DefineParameterInput!) { defineParameter(input: $i) { id } }",
                json!({"modelId": model, "key": key, "name": key, "unit": "RATIO", "defaultValue": default}),
            )
            .await;
        }
        for key in INPUTS {
            self.metric(&model, key, None).await;
        }
        for (key, formula) in DERIVED {
            self.metric(&model, key, Some(formula)).await;
        }
        let base = self.scenario(&model, "Base", None).await;
        let mid = self.scenario(&model, "Mid", Some(&base)).await;
        let leaf = self.scenario(&model, "Leaf", Some(&mid)).await;
        let mut ids = HashMap::from([
            ("Base".to_owned(), base.clone()),
            ("Mid".to_owned(), mid.clone()),
            ("Leaf".to_owned(), leaf.clone()),
        ]);
        let stored = self
            .app
            .sql_exec(&format!(
                "INSERT INTO metric_values (scenario_id, metric_id, period, value)
                 SELECT s.id, m.id, (f.start_period + make_interval(months => i))::date,
                        CASE m.key
                          WHEN 'units' THEN 100 + i + 10 * {m}
                          WHEN 'price' THEN 10 + i % 4
                          WHEN 'headcount' THEN 5 + i / 12
                          WHEN 'salary' THEN 1000
                          WHEN 'rent' THEN 500
                          WHEN 'marketing' THEN 20 * i
                          WHEN 'other_opex' THEN 100 + {m}
                          WHEN 'capex' THEN 50
                        END
                 FROM financial_models f
                 JOIN scenarios s ON s.model_id = f.id AND s.name = 'Base'
                 JOIN metrics m ON m.model_id = f.id AND m.kind = 'INPUT'
                 CROSS JOIN generate_series(0, {}) AS i
                 WHERE f.name = '{name}' AND f.deleted_at IS NULL",
                PERIODS - 1
            ))
            .await;
        assert_eq!(stored, 8 * 36);
        // The recursive projection starts from a seed stored on Base.
        self.upsert(&base, vec![("projection", 0, "1000".into())])
            .await;
        self.parameter_value(&mid, "growth", "0.2").await;
        self.upsert(
            &mid,
            (0..12)
                .map(|i| ("units", i, (200 + i).to_string()))
                .collect(),
        )
        .await;
        self.upsert(
            &leaf,
            (6..9).map(|i| ("price", i, "20".to_owned())).collect(),
        )
        .await;
        if !three {
            let alt = self.scenario(&model, "Alt", Some(&base)).await;
            self.parameter_value(&alt, "tax_rate", "0.3").await;
            self.upsert(
                &alt,
                (0..PERIODS)
                    .map(|i| ("marketing", i, "0".to_owned()))
                    .collect(),
            )
            .await;
            ids.insert("Alt".to_owned(), alt);
        }
        ids.insert("model".to_owned(), model);
        ids
    }
}

/// What the engine must compute, by hand: metric `key` of scenario `scenario` of model `M{m}`
/// in period `i` (rounded half-even to 6 places as the API returns it).
fn expected(m: i64, scenario: &str, key: &str, i: i64) -> Option<String> {
    let d = Decimal::from;
    let units = |i: i64| {
        if matches!(scenario, "Mid" | "Leaf" | "Extra") && i < 12 {
            d(200 + i)
        } else {
            d(100 + i + 10 * m)
        }
    };
    let price = |i: i64| {
        if scenario == "Leaf" && (6..9).contains(&i) {
            d(20)
        } else {
            d(10 + i % 4)
        }
    };
    let growth = if matches!(scenario, "Mid" | "Leaf" | "Extra") {
        Decimal::new(2, 1)
    } else {
        Decimal::new(5, 2)
    };
    let tax_rate = if scenario == "Alt" {
        Decimal::new(3, 1)
    } else {
        Decimal::new(25, 2)
    };
    let marketing = if scenario == "Alt" { d(0) } else { d(20 * i) };
    let revenue = |i: i64| units(i) * price(i);
    let gross_profit = revenue(i) - revenue(i) * Decimal::new(4, 1);
    let opex = d(5 + i / 12) * d(1000) + d(500) + marketing + d(100 + m);
    let ebitda = gross_profit - opex;
    let tax = (ebitda * tax_rate).max(d(0));
    let value = match key {
        "revenue" => Some(revenue(i)),
        "revenue_growth" => (i > 0).then(|| revenue(i) / revenue(i - 1) - d(1)),
        "gross_margin" => Some(gross_profit / revenue(i)),
        "ebitda" => Some(ebitda),
        "net_income" => Some(ebitda - tax - d(50)),
        "trailing_revenue" => (i >= 2).then(|| revenue(i) + revenue(i - 1) + revenue(i - 2)),
        "projection" => {
            let mut p = d(1000);
            for _ in 0..i {
                p *= d(1) + growth;
            }
            Some(p)
        }
        _ => unreachable!("{key}"),
    };
    value.map(|v| {
        format!(
            "{:.6}",
            v.round_dp_with_strategy(6, RoundingStrategy::MidpointNearestEven)
        )
    })
}

/// Check computed values of every scenario of every model in a tree response.
fn check_values(data: &Value, models: usize) -> usize {
    let mut checked = 0;
    let nodes = data["organization"]["models"]["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), models);
    for model in nodes {
        let m: i64 = model["name"].as_str().unwrap()[1..].parse().unwrap();
        for scenario in model["scenarios"]["nodes"].as_array().unwrap() {
            let name = scenario["name"].as_str().unwrap();
            let series: HashMap<&str, &Value> = scenario["series"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| (s["metric"]["key"].as_str().unwrap(), &s["points"]))
                .collect();
            for key in [
                "revenue",
                "revenue_growth",
                "gross_margin",
                "ebitda",
                "net_income",
                "trailing_revenue",
            ] {
                for i in [0, 1, 2, 6, 7, 11, 12, 23, 35] {
                    let point = &series[key][i as usize];
                    assert_eq!(point["period"], period(i).as_str());
                    assert_eq!(
                        point["value"].as_str().map(str::to_owned),
                        expected(m, name, key, i),
                        "M{m} {name} {key} period {i}"
                    );
                    checked += 1;
                }
            }
            for i in 0..4 {
                assert_eq!(
                    series["projection"][i as usize]["value"]
                        .as_str()
                        .map(str::to_owned),
                    expected(m, name, "projection", i),
                    "M{m} {name} projection period {i}"
                );
                checked += 1;
            }
        }
    }
    checked
}

#[tokio::test]
async fn modelling_statement_counts_do_not_grow_with_rows() {
    let app = TestApp::spawn_uncached().await;
    let owner = app.user("owner").await;
    let org = app.organization(&owner, "acme").await;
    let b = Builder {
        app: &app,
        user: &owner,
        org: org.clone(),
    };
    let mut scenarios: Vec<String> = Vec::new();
    let mut models = Vec::new();
    for m in 0..3 {
        let ids = b.model(m, m == 2).await;
        for name in ["Base", "Mid", "Leaf", "Alt"] {
            scenarios.extend(ids.get(name).cloned());
        }
        models.push(ids);
    }

    let (small, data) = count(&app, &owner.token, TREE, json!({"org": org})).await;
    let tree = &data["organization"]["models"]["nodes"];
    let scenario_count: usize = (0..3)
        .map(|m| tree[m]["scenarios"]["nodes"].as_array().unwrap().len())
        .sum();
    assert_eq!(scenario_count, 11);
    let points: usize = tree
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|m| m["scenarios"]["nodes"].as_array().unwrap())
        .flat_map(|s| s["series"].as_array().unwrap())
        .map(|s| s["points"].as_array().unwrap().len())
        .sum();
    assert_eq!(points, 11 * 20 * 36);
    assert_eq!(tree[0]["metrics"].as_array().unwrap().len(), 20);
    assert_eq!(tree[0]["parameters"].as_array().unwrap().len(), 3);
    let net_income = tree[0]["scenarios"]["nodes"][0]["series"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["metric"]["key"] == "net_income")
        .unwrap();
    assert_eq!(
        net_income["metric"]["dependsOn"],
        json!([{"key": "capex"}, {"key": "ebitda"}, {"key": "tax"}])
    );
    // Parameter values as each scenario sees them (by key: cogs_ratio, growth, tax_rate).
    let values = |m: usize, s: usize| tree[m]["scenarios"]["nodes"][s]["parameterValues"].clone();
    let v = |x: &str| json!({"value": x});
    assert_eq!(
        values(0, 2),
        json!([v("0.400000"), v("0.200000"), v("0.250000")])
    );
    assert_eq!(
        values(0, 3),
        json!([v("0.400000"), v("0.050000"), v("0.300000")])
    );
    let checked = check_values(&data, 3);

    // More rows: a fourth model, a fifth scenario (inheriting from Mid) and two more metrics in
    // each of the others, and more stored values.
    let mut ids = b.model(3, false).await;
    for name in ["Base", "Mid", "Leaf", "Alt"] {
        scenarios.extend(ids.remove(name));
    }
    for ids in &models {
        let model = &ids["model"];
        scenarios.push(b.scenario(model, "Extra", Some(&ids["Mid"])).await);
        b.metric(model, "bonus", None).await;
        b.metric(model, "bonus_share", Some("bonus / payroll[-1]"))
            .await;
    }
    // Bonus values on every scenario of the first three models, and capex on Extra equal to the
    // one it inherits (so the values checked below do not move).
    let stored = app
        .sql_exec(
            "INSERT INTO metric_values (scenario_id, metric_id, period, value)
             SELECT s.id, m.id, (f.start_period + make_interval(months => i))::date,
                    CASE m.key WHEN 'bonus' THEN 10 * i ELSE 50 END
             FROM financial_models f
             JOIN scenarios s ON s.model_id = f.id
             JOIN metrics m ON m.model_id = f.id
                           AND (m.key = 'bonus' OR (m.key = 'capex' AND s.name = 'Extra'))
             CROSS JOIN generate_series(0, 35) AS i
             WHERE f.name IN ('M0', 'M1', 'M2')",
        )
        .await;
    assert_eq!(stored, (14 + 3) * 36);

    let (large, data) = count(&app, &owner.token, TREE, json!({"org": org})).await;
    let tree = &data["organization"]["models"]["nodes"];
    let scenario_count: usize = (0..4)
        .map(|m| tree[m]["scenarios"]["nodes"].as_array().unwrap().len())
        .sum();
    assert_eq!(scenario_count, 11 + 4 + 3);
    assert_eq!(tree[0]["metrics"].as_array().unwrap().len(), 22);
    let checked_large = check_values(&data, 4);
    // bonus_share = bonus / payroll[-1] on Extra (bonus 10·i, payroll 5000 in the first year).
    let extra = tree[0]["scenarios"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "Extra")
        .unwrap();
    let share = extra["series"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["metric"]["key"] == "bonus_share")
        .unwrap();
    assert_eq!(share["points"][0]["value"], Value::Null);
    assert_eq!(share["points"][1]["value"], "0.002000");
    assert_eq!(share["points"][13]["value"], "0.021667"); // 130 / 6000
    println!(
        "statements for the modelling tree: {small} (3 models, 11 scenarios, 20 metrics, {checked} values checked), \
         {large} (4 models, 18 scenarios, 20–22 metrics, {checked_large} values checked)"
    );
    assert!(small <= 24, "modelling tree: {small} statements");
    assert_eq!(large, small, "the statement count grows with the rows");

    // One scenario's series vs ten scenarios' series (of four models) through `nodes`.
    let (one, data) = count(&app, &owner.token, ONE, json!({"id": scenarios[0]})).await;
    assert_eq!(data["node"]["name"], "Base");
    assert_eq!(data["node"]["series"].as_array().unwrap().len(), 22);
    let ten: Vec<&String> = scenarios.iter().skip(5).take(10).collect();
    assert_eq!(ten.len(), 10);
    let (many, data) = count(&app, &owner.token, MANY, json!({"ids": ten})).await;
    let seen = data["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["series"].as_array().is_some_and(|s| s.len() >= 20))
        .count();
    assert_eq!(seen, 10);
    let (many_again, _) = count(&app, &owner.token, MANY, json!({"ids": scenarios})).await;
    println!(
        "statements for series: node(1 scenario) {one}, nodes(10 scenarios) {many}, nodes({} scenarios) {many_again}",
        scenarios.len()
    );
    assert!(one <= 16, "one scenario's series: {one} statements");
    assert_eq!(many, one, "nodes(10) vs node(1)");
    assert_eq!(many_again, one, "nodes(all) vs node(1)");
}
