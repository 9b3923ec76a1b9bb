//! The browser tests: the analyst's workbench (the GraphiQL page) and the single-page app of
//! `examples/web`, each driven in headless Chromium (Debian's `chromium`, through playwright-core)
//! against a real server over the demo data. Node.js and Chromium are part of the suite's
//! toolchain (`.ci/run` installs them): when one is missing the test fails and says so.
//!
//! Screenshots go to the target directory; with `FV_BLESS_SCREENSHOTS=1` to `docs/screenshots/`
//! (the README shows those).

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use serde_json::{Value, json};

use crate::{
    helpers::{TestApp, npm_ci, require_node},
    websocket::serve,
};

const NODE_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/node");
const WEB_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/web");

/// The Chromium binary: `FV_CHROMIUM`, else Debian's.
fn chromium() -> String {
    let path = std::env::var("FV_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&path).exists(),
        "Chromium is not installed ({path} is missing): the browser tests need it. Install it \
         with `apt-get install chromium` (.ci/run does), or name another binary in FV_CHROMIUM"
    );
    path
}

fn screenshot_dir() -> PathBuf {
    if std::env::var_os("FV_BLESS_SCREENSHOTS").is_some() {
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/screenshots"))
    } else {
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("screenshots")
    }
}

/// Runs `node <args>` in `dir` and parses the one JSON object it prints last.
async fn run_node(dir: &str, args: &[&str], env: &[(&str, &str)]) -> Value {
    let shots = screenshot_dir();
    std::fs::create_dir_all(&shots).expect("screenshot directory");
    let mut command = tokio::process::Command::new("node");
    command
        .args(args)
        .arg(&shots)
        .current_dir(dir)
        .env("FV_CHROMIUM", chromium())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (name, value) in env {
        command.env(name, value);
    }
    let output = tokio::time::timeout(Duration::from_secs(180), command.output())
        .await
        .expect("the browser test finishes within 180 s")
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "node {args:?} failed:\n{stdout}\n{stderr}"
    );
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|_| panic!("JSON from node: {stdout}\n{stderr}"))
}

async fn login(app: &TestApp, email: &str, password: &str) -> String {
    let res = app
        .gql(
            None,
            "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }",
            json!({"e": email, "p": password}),
        )
        .await;
    res.data()["login"]["token"].as_str().unwrap().to_owned()
}

/// The demo SaaS model's scenario ids by name.
async fn saas_scenarios(app: &TestApp, token: &str) -> Value {
    let res = app
        .gql(
            Some(token),
            r#"{ organization(slug: "acme") { id models(filter: {search: "SaaS"}) { nodes {
                 id scenarios { nodes { id name } } } } } }"#,
            json!({}),
        )
        .await;
    let model = &res.data()["organization"]["models"]["nodes"][0];
    let mut by_name = serde_json::Map::new();
    for s in model["scenarios"]["nodes"].as_array().unwrap() {
        by_name.insert(s["name"].as_str().unwrap().to_owned(), s["id"].clone());
    }
    json!({"org": res.data()["organization"]["id"], "model": model["id"], "scenarios": by_name})
}

#[tokio::test]
async fn the_workbench_signs_in_runs_the_compare_example_and_charts_it() {
    require_node();
    chromium();
    npm_ci(
        Path::new(NODE_DIR),
        &["graphql-ws", "ws", "playwright-core"],
    );
    let app = TestApp::spawn().await;
    let accounts = finvision::domain::seed::seed_demo(app.app.core())
        .await
        .expect("seed");
    let analyst = accounts
        .iter()
        .find(|a| a.email.starts_with("analyst"))
        .unwrap();
    let token = login(&app, &analyst.email, &analyst.password).await;
    let saas = saas_scenarios(&app, &token).await;
    let addr = serve(&app).await;
    let out = run_node(
        NODE_DIR,
        &[
            "workbench.mjs",
            &format!("http://{addr}"),
            &analyst.email,
            &analyst.password,
            saas["org"].as_str().unwrap(),
        ],
        &[],
    )
    .await;

    assert_eq!(out["consoleErrors"], json!([]), "{out}");
    assert_eq!(out["foreignRequests"], json!([]), "offline: {out}");
    assert_eq!(out["before"], "Not signed in");
    let tabs = out["tabs"].to_string();
    for tab in ["Models", "Compare", "Assumptions"] {
        assert!(tabs.contains(tab), "{tabs}");
    }
    assert!(
        out["wrongPassword"]
            .as_str()
            .unwrap()
            .contains("invalid email or password"),
        "{out}"
    );
    assert_eq!(out["signedInAs"], "Signed in as Ana Analyst");
    // "Remember on this browser" was not ticked: the token lives in the page only.
    assert_eq!(out["remembered"], Value::Null);

    // The Compare tab's variables were filled with the analyst's own scenarios.
    assert_eq!(
        out["variables"],
        json!({"base": saas["scenarios"]["Base"], "downside": saas["scenarios"]["Downside"]})
    );

    let compare = out["response"]["data"]["scenario"]["compare"]
        .as_array()
        .unwrap_or_else(|| panic!("{out}"));
    assert_eq!(compare.len(), 2);
    assert!(
        compare
            .iter()
            .all(|c| c["points"].as_array().unwrap().len() == 12)
    );

    // One chart per unit; in each, a line per metric and scenario and the deltas as bars, drawn.
    let charts = out["charts"].as_array().unwrap();
    assert_eq!(charts.len(), 2, "{out}");
    assert_eq!(charts[0]["unit"], "CURRENCY");
    assert_eq!(
        charts[0]["series"],
        json!(["Revenue · Base", "Revenue · other scenario", "Δ Revenue"])
    );
    assert_eq!(charts[0]["axisLabels"], json!(["currency", "Δ currency"]));
    assert_eq!(charts[1]["unit"], "PERCENT");
    assert_eq!(charts[1]["series"].as_array().unwrap().len(), 3);
    assert_eq!(charts[1]["axisLabels"], json!(["%", "Δ %"]));
    // Percent metrics are fractions, shown as percentages.
    assert!(
        charts[1]["ticks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t.as_str().unwrap().ends_with('%')),
        "{out}"
    );
    for chart in charts {
        assert!(chart["painted"].as_u64().unwrap() > 2000, "{chart}");
    }

    // Widening the pane widens the charts.
    for width in out["widened"].as_array().unwrap() {
        assert!(width.as_u64().unwrap() > 600, "{out}");
    }

    // The CSV holds the API's Decimal strings as they are.
    let csv = out["csv"].as_str().unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 13, "{csv}");
    assert!(
        lines[0].starts_with("period,Revenue · Base (currency),"),
        "{csv}"
    );
    let revenue = &compare[0]["points"][0];
    let ebitda = &compare[1]["points"][0];
    let first_row = [
        revenue["period"].as_str().unwrap(),
        revenue["base"].as_str().unwrap(),
        revenue["other"].as_str().unwrap(),
        revenue["delta"].as_str().unwrap(),
        ebitda["base"].as_str().unwrap(),
        ebitda["other"].as_str().unwrap(),
        ebitda["delta"].as_str().unwrap(),
    ]
    .join(",");
    assert_eq!(lines[1], first_row);

    // The Assumptions example: four series of one scenario, two units, lines only; the API's
    // nulls (growth has no month before January 2026) stay nulls: gaps.
    let series = out["seriesResponse"]["data"]["scenario"]["series"]
        .as_array()
        .unwrap_or_else(|| panic!("{out}"));
    let mut expected: Vec<Value> = Vec::new();
    for entry in series {
        let unit = &entry["metric"]["unit"];
        let label = format!("{} · Base", entry["metric"]["name"].as_str().unwrap());
        let nulls = entry["points"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["value"].is_null())
            .count();
        match expected.iter_mut().find(|chart| &chart["unit"] == unit) {
            Some(chart) => {
                chart["series"].as_array_mut().unwrap().push(json!(label));
                chart["nulls"].as_array_mut().unwrap().push(json!(nulls));
            }
            None => expected.push(json!({"unit": unit, "series": [label], "nulls": [nulls]})),
        }
    }
    assert_eq!(expected.len(), 2, "{series:?}");
    assert!(
        expected
            .iter()
            .any(|chart| chart["nulls"].as_array().unwrap().iter().any(|n| n != 0)),
        "the demo's first month of growth is null: {series:?}"
    );
    assert_eq!(out["seriesCharts"], json!(expected));

    // The subscription carried the panel's token.
    let errors = &out["subscriptionResponse"]["errors"];
    assert_eq!(errors[0]["extensions"]["code"], "FORBIDDEN", "{out}");

    // "Remember on this browser" survives a reload; signing out forgets and revokes the token.
    assert_eq!(out["rememberedAfterReload"], true, "{out}");
    assert_eq!(out["rememberedAfterSignOut"], Value::Null);
    let revoked = out["signedOutToken"].as_str().unwrap();
    let res = app.gql(Some(revoked), "{ me { id } }", json!({})).await;
    assert_eq!(res.code(), "UNAUTHENTICATED");
}

#[tokio::test]
async fn the_web_example_pages_compares_edits_and_follows_the_audit_stream() {
    require_node();
    chromium();
    let web = Path::new(WEB_DIR);
    npm_ci(web, &["vite", "urql", "graphql-ws", "playwright-core"]);
    // codegen from schema.graphql, the type check and the bundle: a schema change that breaks
    // the example fails here.
    let build = std::process::Command::new("npm")
        .args(["run", "build", "--silent"])
        .current_dir(web)
        .output()
        .expect("npm runs");
    assert!(
        build.status.success(),
        "npm run build in examples/web failed:\n{}{}",
        String::from_utf8_lossy(&build.stdout),
        String::from_utf8_lossy(&build.stderr)
    );

    let app = TestApp::spawn().await;
    let accounts = finvision::domain::seed::seed_demo(app.app.core())
        .await
        .expect("seed");
    let account = |prefix: &str| {
        accounts
            .iter()
            .find(|a| a.email.starts_with(prefix))
            .unwrap()
    };
    let owner = account("owner");
    let owner_token = login(&app, &owner.email, &owner.password).await;
    let admin_token = login(&app, &account("admin").email, &account("admin").password).await;
    let saas = saas_scenarios(&app, &owner_token).await;
    // Six models: more than the app's page of five.
    for name in ["Budget 2027", "Cash plan", "Hiring plan", "Pricing"] {
        let res = app
            .gql(
                Some(&owner_token),
                "mutation($input: CreateModelInput!) { createModel(input: $input) { id } }",
                json!({"input": {"organizationId": saas["org"], "name": name, "currency": "USD",
                    "startPeriod": "2027-01-01", "endPeriod": "2027-12-01"}}),
            )
            .await;
        assert!(res.errors().is_empty(), "{:?}", res.errors());
    }
    let addr = serve(&app).await;
    let api = format!("http://{addr}");
    let out = run_node(
        WEB_DIR,
        &["e2e/app.mjs", &owner.email, &owner.password, &admin_token],
        &[("FV_API", &api)],
    )
    .await;

    assert_eq!(out["consoleErrors"], json!([]), "{out}");
    assert_eq!(out["signedInAs"], "Olivia Owner");
    let first_page = out["firstPage"].as_array().unwrap();
    let all: Vec<&str> = out["allModels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    assert_eq!(first_page.len(), 5);
    assert_eq!(all.len(), 6, "{all:?}");
    let mut sorted = all.clone();
    sorted.sort_unstable();
    assert_eq!(all, sorted, "ordered by name across pages");
    assert_eq!(out["moreAfterLastPage"], 0);

    // Base against Downside, revenue: 36 months, two lines and a bar per month.
    assert_eq!(
        out["chart"],
        json!({"caption": "Revenue (USD): base, other, Δ as bars", "base": 36, "other": 36,
            "deltaBars": 36})
    );

    assert!(
        out["conflict"].as_str().unwrap().contains("CONFLICT"),
        "{out}"
    );
    assert_eq!(out["conflictAfterSave"], 0);
    let downside = &saas["scenarios"]["Downside"];
    let res = app
        .gql(
            Some(&owner_token),
            "query($id: ID!) { scenario(id: $id) { name } }",
            json!({"id": downside}),
        )
        .await;
    assert_eq!(res.data()["scenario"]["name"], "Downside (while paused)");

    // Three renames (theirs, ours, theirs while paused), each once, newest first.
    let audit = out["audit"].as_array().unwrap();
    let sequences: Vec<u64> = audit
        .iter()
        .map(|e| e["sequence"].as_str().unwrap().parse().unwrap())
        .collect();
    let mut expected = sequences.clone();
    expected.sort_unstable_by(|a, b| b.cmp(a));
    expected.dedup();
    assert_eq!(sequences, expected, "{audit:?}");
    let updates = audit
        .iter()
        .filter(|e| e["text"].as_str().unwrap().contains("scenario.update"))
        .count();
    assert_eq!(updates, 3, "{audit:?}");
    assert_eq!(out["whilePaused"], 2);

    // "Sign out" revoked the session the app used.
    assert_eq!(out["signedOut"], true);
    let token = out["token"].as_str().unwrap();
    let res = app.gql(Some(token), "{ me { id } }", json!({})).await;
    assert_eq!(res.code(), "UNAUTHENTICATED");
}
