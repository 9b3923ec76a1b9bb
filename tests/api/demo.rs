//! The demo data: what the quick start puts in front of an analyst.

use serde_json::json;

use crate::helpers::TestApp;

#[tokio::test]
async fn the_demo_organization_is_explorable() {
    let app = TestApp::spawn().await;
    let accounts = finvision::domain::seed::seed_demo(app.app.core())
        .await
        .expect("seed");
    assert_eq!(accounts.len(), 4);
    // Seeding again only when empty.
    assert!(
        finvision::domain::seed::seed_demo_if_empty(app.app.core())
            .await
            .unwrap()
            .is_empty()
    );

    let viewer = accounts
        .iter()
        .find(|a| a.email.starts_with("viewer"))
        .unwrap();
    let res = app
        .gql(
            None,
            "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }",
            json!({"e": viewer.email, "p": viewer.password}),
        )
        .await;
    let token = res.data()["login"]["token"].as_str().unwrap().to_owned();

    let q = r#"{ organization(slug: "acme") { name viewerRole members { totalCount }
        models(orderBy: {field: NAME}) { nodes { name periodGranularity periods
          scenarios { nodes { name kind baseScenario { name }
            series(metricKeys: ["revenue"]) { points { period value } } } } } } } }"#;
    let res = app.gql(Some(&token), q, json!({})).await;
    let org = &res.data()["organization"];
    assert_eq!(org["viewerRole"], "VIEWER");
    assert_eq!(org["members"]["totalCount"], 4);
    let models = org["models"]["nodes"].as_array().unwrap();
    assert_eq!(models.len(), 2);
    let retail = &models[0];
    let saas = &models[1];
    assert_eq!(saas["periods"].as_array().unwrap().len(), 36);
    assert_eq!(retail["periodGranularity"], "QUARTER");

    let revenue_at = |model: &serde_json::Value, scenario: &str, i: usize| -> f64 {
        let s = model["scenarios"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == scenario)
            .unwrap();
        s["series"][0]["points"][i]["value"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap()
    };
    // Actuals are shared; after them, the scenarios diverge in the expected order.
    assert_eq!(revenue_at(saas, "Upside", 2), revenue_at(saas, "Base", 2));
    assert!(revenue_at(saas, "Upside", 35) > revenue_at(saas, "Base", 35));
    assert!(revenue_at(saas, "Base", 35) > revenue_at(saas, "Downside", 35));
    assert_eq!(revenue_at(retail, "Base", 0), 40.0 * 210_000.0);

    // Every derived metric of the demo evaluates (no nulls after the seeds, where inputs exist).
    let q = r#"{ organization(slug: "acme") { models { nodes { scenarios { nodes { name
        series { metric { key } points { value } } } } } } } }"#;
    let res = app.gql(Some(&token), q, json!({})).await;
    let saas_base =
        &res.data()["organization"]["models"]["nodes"][0]["scenarios"]["nodes"][0]["series"];
    let margin = saas_base
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["metric"]["key"] == "ebitda_margin")
        .unwrap();
    assert!(
        margin["points"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["value"].is_string()),
        "{margin:#}"
    );
}
