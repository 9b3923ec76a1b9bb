//! Reports: `generateReport`, `deleteReport`, `FinancialModel.reports`, `GET /reports/{id}`.
//! Every cell of a generated file is compared with what `series` (and `compare`) return through
//! GraphQL for the same scenarios, metrics and periods.

use std::io::Cursor;

use axum::http::{StatusCode, header};
use calamine::{Data, Reader, Xlsx};
use chrono::NaiveDate;
use finvision::App;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::{
    factories::{Team, id},
    files::download,
    helpers::{Gql, TestApp, TestUser},
};

/// A monthly model over 2026 with a metric of every unit, formulas whose values have more than
/// six decimals (rounded half-even on output) or none at all (a division by zero), and two
/// scenarios: Base, and Upside inheriting from it with a parameter override and a value of its
/// own.
struct Fixture {
    team: Team,
    model: String,
    base: String,
    upside: String,
}

const METRICS: [(&str, &str, &str, Option<&str>); 6] = [
    ("revenue", "Revenue", "CURRENCY", None),
    (
        "cogs",
        "Cost of goods sold",
        "CURRENCY",
        Some("revenue * cogs_ratio"),
    ),
    ("units", "Units", "NUMBER", None),
    (
        "gross_margin",
        "Gross margin",
        "PERCENT",
        Some("(revenue - cogs) / revenue"),
    ),
    (
        "revenue_per_unit",
        "Revenue per unit",
        "RATIO",
        Some("revenue / units"),
    ),
    (
        "growth",
        "Growth",
        "PERCENT",
        Some("revenue / revenue[-1] - 1"),
    ),
];

async fn fixture(app: &TestApp) -> Fixture {
    let team = Team::new(app).await;
    let t = Some(team.owner.token.as_str());
    let model = id(
        &app.gql(
            t,
            "mutation($i: CreateModelInput!) { createModel(input: $i) { id } }",
            json!({"i": {"organizationId": team.org, "name": "Plan", "currency": "EUR",
                         "startPeriod": "2026-01-01", "endPeriod": "2026-12-01"}}),
        )
        .await,
        "createModel",
    );
    let scenario = async |name: &str, base: Option<&str>| {
        id(
            &app.gql(
                t,
                "mutation($i: CreateScenarioInput!) { createScenario(input: $i) { id } }",
                json!({"i": {"modelId": model, "name": name, "kind": "CUSTOM", "baseScenarioId": base}}),
            )
            .await,
            "createScenario",
        )
    };
    let base = scenario("Base", None).await;
    let upside = scenario("Upside", Some(&base)).await;
    app.gql(
        t,
        "mutation($i: DefineParameterInput!) { defineParameter(input: $i) { key } }",
        json!({"i": {"modelId": model, "key": "cogs_ratio", "name": "COGS ratio", "unit": "RATIO", "defaultValue": "0.333333"}}),
    )
    .await
    .data();
    for (key, name, unit, formula) in METRICS {
        let kind = if formula.is_some() {
            "DERIVED"
        } else {
            "INPUT"
        };
        app.gql(
            t,
            "mutation($i: DefineMetricInput!) { defineMetric(input: $i) { id } }",
            json!({"i": {"modelId": model, "key": key, "name": name, "unit": unit, "kind": kind, "formula": formula}}),
        )
        .await
        .data();
    }
    let v = |k: &str, p: &str, x: &str| json!({"metricKey": k, "period": p, "value": x});
    let mut values = Vec::new();
    for month in 1..=12 {
        let period = format!("2026-{month:02}-01");
        // Month 5 has no revenue: its formulas are null.
        if month != 5 {
            values.push(v("revenue", &period, &format!("{}.5", 1000 + month * 37)));
        }
        // Month 3 sells no unit: revenue per unit divides by zero.
        let units = if month == 3 { 0 } else { month * 3 };
        values.push(v("units", &period, &units.to_string()));
    }
    upsert(app, &team.owner, &base, Value::Array(values)).await;
    upsert(
        app,
        &team.owner,
        &upside,
        json!([v("revenue", "2026-06-01", "2500.25")]),
    )
    .await;
    app.gql(
        t,
        "mutation($i: SetParameterValueInput!) { setParameterValue(input: $i) { value } }",
        json!({"i": {"scenarioId": upside, "parameterKey": "cogs_ratio", "value": "0.285714"}}),
    )
    .await
    .data();
    Fixture {
        team,
        model,
        base,
        upside,
    }
}

async fn upsert(app: &TestApp, user: &TestUser, scenario: &str, values: Value) {
    app.gql(
        Some(&user.token),
        "mutation($i: UpsertMetricValuesInput!) { upsertMetricValues(input: $i) { upserted } }",
        json!({"i": {"scenarioId": scenario, "values": values}}),
    )
    .await
    .data();
}

const REPORT_FIELDS: &str = "id name format status metricKeys from to byteSize sha256 downloadUrl error createdAt completedAt createdBy { id } model { id } scenarios { id name }";

async fn generate(app: &TestApp, user: &TestUser, input: Value) -> Gql {
    app.gql(
        Some(&user.token),
        &format!(
            "mutation($i: GenerateReportInput!) {{ generateReport(input: $i) {{ {REPORT_FIELDS} }} }}"
        ),
        json!({"i": input}),
    )
    .await
}

/// The id of a report `generateReport` accepted.
async fn generated(app: &TestApp, user: &TestUser, input: Value) -> String {
    let created = generate(app, user, input).await;
    created.data()["generateReport"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no report id in {:#}", created.body))
        .to_owned()
}

async fn report(app: &TestApp, user: &TestUser, id: &str) -> Value {
    let res = app
        .gql(
            Some(&user.token),
            &format!(
                "query($id: ID!) {{ node(id: $id) {{ ... on Report {{ {REPORT_FIELDS} }} }} }}"
            ),
            json!({"id": id}),
        )
        .await;
    res.data()["node"].clone()
}

/// Wait (at most 30 s: debug builds on a busy machine) until the report is no longer PENDING;
/// its final state.
async fn settled(app: &TestApp, user: &TestUser, id: &str) -> Value {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let state = report(app, user, id).await;
        if state["status"] != "PENDING" {
            return state;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "waited 30 s for the report to leave PENDING: {state:#}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// `series` of a scenario through GraphQL: (metric key, name, unit, [(period, value)]).
type SeriesRows = Vec<(String, String, String, Vec<(String, Option<String>)>)>;

async fn series(
    app: &TestApp,
    user: &TestUser,
    scenario: &str,
    keys: Option<&[&str]>,
    from: Option<&str>,
    to: Option<&str>,
) -> SeriesRows {
    let res = app
        .gql(
            Some(&user.token),
            "query($id: ID!, $keys: [String!], $from: Date, $to: Date) { scenario(id: $id) { series(metricKeys: $keys, from: $from, to: $to) { metric { key name unit } points { period value } } } }",
            json!({"id": scenario, "keys": keys, "from": from, "to": to}),
        )
        .await;
    res.data()["scenario"]["series"]
        .as_array()
        .expect("series")
        .iter()
        .map(|s| {
            let points = s["points"]
                .as_array()
                .expect("points")
                .iter()
                .map(|p| {
                    (
                        p["period"].as_str().expect("period").to_owned(),
                        p["value"].as_str().map(str::to_owned),
                    )
                })
                .collect();
            (
                s["metric"]["key"].as_str().expect("key").to_owned(),
                s["metric"]["name"].as_str().expect("name").to_owned(),
                s["metric"]["unit"].as_str().expect("unit").to_owned(),
                points,
            )
        })
        .collect()
}

/// The Excel serial number of a date (days since 1899-12-30).
fn excel_serial(date: &str) -> f64 {
    let date = NaiveDate::parse_from_str(date, "%Y-%m-%d").expect("a date");
    let epoch = NaiveDate::from_ymd_opt(1899, 12, 30).expect("epoch");
    #[allow(clippy::cast_precision_loss)]
    let days = (date - epoch).num_days() as f64;
    days
}

/// A decimal string as the number an XLSX cell holds.
fn as_f64(value: &str) -> f64 {
    value.parse().expect("a decimal")
}

/// The number in a cell, or `None` for an empty one.
fn cell(range: &calamine::Range<Data>, row: usize, col: usize) -> Option<f64> {
    let at = (
        u32::try_from(row).expect("row"),
        u32::try_from(col).expect("col"),
    );
    match range.get_value(at) {
        None | Some(Data::Empty) => None,
        Some(Data::Float(f)) => Some(*f),
        Some(Data::Int(i)) => {
            #[allow(clippy::cast_precision_loss)]
            let f = *i as f64;
            Some(f)
        }
        Some(other) => panic!("cell {at:?} holds {other:?}, not a number"),
    }
}

fn text(range: &calamine::Range<Data>, row: usize, col: usize) -> String {
    let at = (
        u32::try_from(row).expect("row"),
        u32::try_from(col).expect("col"),
    );
    match range.get_value(at) {
        Some(Data::String(s)) => s.clone(),
        other => panic!("cell {at:?} holds {other:?}, not text"),
    }
}

fn header_date(range: &calamine::Range<Data>, col: usize) -> f64 {
    let at = (0, u32::try_from(col).expect("col"));
    match range.get_value(at) {
        Some(Data::DateTime(d)) => d.as_f64(),
        Some(Data::Float(f)) => *f,
        other => panic!("header {at:?} holds {other:?}, not a date"),
    }
}

/// Download a report's file as `user`.
async fn fetch(
    app: &TestApp,
    user: &TestUser,
    report: &Value,
) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    let url = report["downloadUrl"].as_str().expect("a download URL");
    download(app, Some(&user.token), url).await
}

#[tokio::test]
async fn every_xlsx_cell_is_the_series_value() {
    let app = TestApp::spawn().await;
    let f = fixture(&app).await;
    let viewer = &f.team.viewer;
    let created = generate(
        &app,
        viewer,
        json!({"modelId": f.model, "name": "Plan Q1–Q3", "format": "XLSX",
               "scenarioIds": [f.base, f.upside], "from": "2026-01-01", "to": "2026-09-01"}),
    )
    .await;
    let created = created.data()["generateReport"].clone();
    assert_eq!(created["format"], "XLSX");
    assert_eq!(created["metricKeys"], json!([]));
    assert_eq!(created["createdBy"]["id"], viewer.id.as_str());
    let ready = settled(&app, viewer, created["id"].as_str().unwrap()).await;
    assert_eq!(ready["status"], "READY", "{ready:#}");
    assert!(ready["error"].is_null());
    assert!(ready["completedAt"].is_string());
    assert_eq!(
        ready["scenarios"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["Base", "Upside"]
    );

    let (status, headers, bytes) = fetch(&app, viewer, &ready).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        headers[header::CONTENT_TYPE],
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    );
    assert!(
        headers[header::CONTENT_DISPOSITION]
            .to_str()
            .unwrap()
            .contains("filename*=UTF-8''Plan%20Q1%E2%80%93Q3.xlsx")
    );
    assert_eq!(headers[header::CACHE_CONTROL], "private, no-store");
    assert_eq!(ready["byteSize"], bytes.len());
    let digest = hex::encode(Sha256::digest(&bytes));
    assert_eq!(ready["sha256"], digest.as_str());
    assert_eq!(
        headers[header::ETAG].to_str().unwrap(),
        format!("\"{digest}\"")
    );

    let mut workbook = Xlsx::new(Cursor::new(bytes)).expect("an XLSX file");
    assert_eq!(
        workbook.sheet_names(),
        ["Cover", "Base", "Upside", "Compare"]
    );
    let mut compared_cells = 0;
    for (sheet, scenario) in [("Base", &f.base), ("Upside", &f.upside)] {
        let range = workbook
            .worksheet_range(sheet)
            .expect("the scenario's sheet");
        let expected = series(
            &app,
            viewer,
            scenario,
            None,
            Some("2026-01-01"),
            Some("2026-09-01"),
        )
        .await;
        assert_eq!(expected.len(), METRICS.len());
        // Every metric, in display order: one row each under the header.
        assert_eq!(range.height(), expected.len() + 1, "{sheet}");
        for (i, (key, name, unit, points)) in expected.iter().enumerate() {
            assert_eq!(points.len(), 9);
            let row = i + 1;
            assert_eq!(text(&range, row, 0), *name);
            assert_eq!(text(&range, row, 1), *key);
            assert_eq!(text(&range, row, 2), *unit);
            for (p, (period, value)) in points.iter().enumerate() {
                assert_eq!(
                    header_date(&range, 3 + p),
                    excel_serial(period),
                    "{sheet} header"
                );
                assert_eq!(
                    cell(&range, row, 3 + p),
                    value.as_deref().map(as_f64),
                    "{sheet} {key} {period}"
                );
                compared_cells += 1;
            }
        }
    }
    assert_eq!(compared_cells, 2 * 6 * 9);
    // The fixture has nulls (no revenue in May, no unit in March) and rounded values.
    let base = series(&app, viewer, &f.base, None, None, None).await;
    assert!(base.iter().any(|s| s.3.iter().any(|p| p.1.is_none())));

    // The Compare sheet: for each metric the base, the other, its delta and delta percent, as
    // `compare` computes them.
    let range = workbook.worksheet_range("Compare").expect("Compare");
    let res = app
        .gql(
            Some(&viewer.token),
            "query($id: ID!, $other: ID!) { scenario(id: $id) { compare(otherScenarioId: $other, from: \"2026-01-01\", to: \"2026-09-01\") { metric { key } points { base other delta deltaPercent } } } }",
            json!({"id": f.base, "other": f.upside}),
        )
        .await;
    let compared = res.data()["scenario"]["compare"]
        .as_array()
        .unwrap()
        .clone();
    for (m, comparison) in compared.iter().enumerate() {
        let key = comparison["metric"]["key"].as_str().unwrap();
        let first_row = 1 + m * 4;
        assert_eq!(text(&range, first_row, 1), key);
        assert_eq!(text(&range, first_row, 2), "Base");
        assert_eq!(text(&range, first_row + 1, 2), "Upside");
        assert_eq!(text(&range, first_row + 2, 2), "Δ Upside");
        assert_eq!(text(&range, first_row + 3, 2), "Δ% Upside");
        for (p, point) in comparison["points"].as_array().unwrap().iter().enumerate() {
            for (offset, field) in ["base", "other", "delta", "deltaPercent"]
                .iter()
                .enumerate()
            {
                assert_eq!(
                    cell(&range, first_row + offset, 3 + p),
                    point[field].as_str().map(as_f64),
                    "Compare {key} {field} {p}"
                );
            }
        }
    }

    // The cover names the model, the scenarios with their bases, the parameters and the author.
    let cover = workbook.worksheet_range("Cover").expect("Cover");
    let texts: Vec<String> = cover
        .cells()
        .filter_map(|(_, _, v)| match v {
            Data::String(s) => Some(s.clone()),
            _ => None,
        })
        .collect();
    for expected in [
        "Plan",
        "EUR",
        "Base",
        "Upside",
        "cogs_ratio",
        "viewer",
        "default",
        "this scenario",
    ] {
        assert!(
            texts.iter().any(|t| t == expected),
            "the cover shows {expected}: {texts:?}"
        );
    }
    let numbers: Vec<f64> = cover
        .cells()
        .filter_map(|(_, _, v)| match v {
            Data::Float(f) => Some(*f),
            _ => None,
        })
        .collect();
    assert!(
        numbers.contains(&0.333_333) && numbers.contains(&0.285_714),
        "{numbers:?}"
    );
}

#[tokio::test]
async fn every_csv_cell_is_the_series_value() {
    let app = TestApp::spawn().await;
    let f = fixture(&app).await;
    let analyst = &f.team.analyst;
    let keys = ["gross_margin", "revenue", "revenue_per_unit"];
    let id = generated(
        &app,
        analyst,
        json!({"modelId": f.model, "name": "margins", "format": "CSV",
               "scenarioIds": [f.upside, f.base], "metricKeys": keys,
               "from": "2026-02-01", "to": "2026-07-01"}),
    )
    .await;
    let ready = settled(&app, analyst, &id).await;
    assert_eq!(ready["status"], "READY", "{ready:#}");
    assert_eq!(ready["metricKeys"], json!(keys));
    assert_eq!(ready["from"], "2026-02-01");
    assert_eq!(ready["to"], "2026-07-01");
    let (status, headers, bytes) = fetch(&app, &f.team.viewer, &ready).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], "text/csv; charset=utf-8");
    assert_eq!(ready["byteSize"], bytes.len());
    assert_eq!(
        ready["sha256"],
        hex::encode(Sha256::digest(&bytes)).as_str()
    );

    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(bytes.as_slice());
    let records: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("a record")).collect();
    let periods = [
        "2026-02-01",
        "2026-03-01",
        "2026-04-01",
        "2026-05-01",
        "2026-06-01",
        "2026-07-01",
    ];
    let mut header = vec!["scenario", "metric_key", "metric_name", "unit"];
    header.extend(periods);
    assert_eq!(records[0].iter().collect::<Vec<_>>(), header);
    // One row per scenario × metric, scenarios in the order asked for, metrics too.
    assert_eq!(records.len(), 1 + 2 * keys.len());
    let mut row = 1;
    let mut nulls = 0;
    for (name, scenario) in [("Upside", &f.upside), ("Base", &f.base)] {
        let expected = series(
            &app,
            analyst,
            scenario,
            Some(&keys),
            Some("2026-02-01"),
            Some("2026-07-01"),
        )
        .await;
        for (key, metric_name, unit, points) in expected {
            let record = &records[row];
            assert_eq!(&record[0], name);
            assert_eq!(record[1], key);
            assert_eq!(record[2], metric_name);
            assert_eq!(record[3], unit);
            for (p, (period, value)) in points.iter().enumerate() {
                assert_eq!(*period, periods[p]);
                // The same text as the API: half-even, six places; empty for null.
                assert_eq!(
                    &record[4 + p],
                    value.as_deref().unwrap_or(""),
                    "{name} {key} {period}"
                );
                nulls += usize::from(value.is_none());
            }
            row += 1;
        }
    }
    assert!(nulls > 0, "the fixture exports null cells");
    assert!(
        String::from_utf8(bytes).unwrap().contains("\r\n"),
        "RFC 4180 lines end with CRLF"
    );
}

#[tokio::test]
async fn downloads_are_authorized_like_the_model() {
    let app = TestApp::spawn().await;
    let f = fixture(&app).await;
    let stranger = app.user("stranger").await;
    let rival = Team::with_slug(&app, "rival").await;
    let id = generated(
        &app,
        &f.team.analyst,
        json!({"modelId": f.model, "name": "r", "format": "CSV", "scenarioIds": [f.base]}),
    )
    .await;
    let ready = settled(&app, &f.team.viewer, &id).await;
    let url = ready["downloadUrl"].as_str().unwrap().to_owned();
    assert_eq!(url, format!("/reports/{id}"));

    let (status, headers, _) = download(&app, None, &url).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(headers[header::WWW_AUTHENTICATE], "Bearer");
    for outsider in [&stranger, &rival.owner] {
        let (status, _, body) = download(&app, Some(&outsider.token), &url).await;
        assert_eq!(
            status,
            StatusCode::NOT_FOUND,
            "{}",
            String::from_utf8_lossy(&body)
        );
        // Nor through GraphQL.
        assert!(report(&app, outsider, &id).await.is_null());
    }
    for bad in ["/reports/nonsense", &format!("/reports/{}", f.model)] {
        let (status, _, _) = download(&app, Some(&f.team.viewer.token), bad).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{bad}");
    }
    for member in [
        &f.team.viewer,
        &f.team.analyst,
        &f.team.admin,
        &f.team.owner,
    ] {
        let (status, _, _) = download(&app, Some(&member.token), &url).await;
        assert_eq!(status, StatusCode::OK);
    }
    // A superadmin who is a member of nothing reads it too.
    let root = app.user("root").await;
    app.make_superadmin(&root.email).await;
    let (status, _, _) = download(&app, Some(&root.token), &url).await;
    assert_eq!(status, StatusCode::OK);

    // Generating needs a member of the model's organization.
    let refused = generate(
        &app,
        &stranger,
        json!({"modelId": f.model, "name": "r", "format": "CSV", "scenarioIds": [f.base]}),
    )
    .await;
    assert_eq!(refused.code(), "NOT_FOUND");
    let anonymous = app
        .gql(
            None,
            "mutation($i: GenerateReportInput!) { generateReport(input: $i) { id } }",
            json!({"i": {"modelId": f.model, "name": "r", "format": "CSV", "scenarioIds": [f.base]}}),
        )
        .await;
    assert_eq!(anonymous.code(), "UNAUTHENTICATED");
    assert_eq!(app.count_rows("reports").await, 1);
}

#[tokio::test]
async fn a_report_is_pending_until_a_worker_settles_it() {
    let app = TestApp::spawn().await;
    let f = fixture(&app).await;
    let queue = app.app.core().report_queue();
    queue.pause();
    let viewer = &f.team.viewer;
    let created = generate(
        &app,
        viewer,
        json!({"modelId": f.model, "name": "later", "format": "XLSX", "scenarioIds": [f.base, f.upside]}),
    )
    .await;
    let pending = created.data()["generateReport"].clone();
    assert_eq!(pending["status"], "PENDING");
    for field in ["downloadUrl", "byteSize", "sha256", "completedAt", "error"] {
        assert!(pending[field].is_null(), "{field}");
    }
    let id = pending["id"].as_str().unwrap().to_owned();
    // Not downloadable yet: 409, saying why.
    let (status, _, body) = download(&app, Some(&viewer.token), &format!("/reports/{id}")).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(String::from_utf8_lossy(&body).contains("PENDING"));
    assert_eq!(queue.counts().pending, 1);

    // The scenario goes away before the job runs: the report FAILS, saying so.
    app.gql(
        Some(&f.team.owner.token),
        "mutation($id: ID!) { deleteScenario(id: $id) }",
        json!({"id": f.upside}),
    )
    .await
    .data();
    queue.resume();
    let failed = settled(&app, viewer, &id).await;
    assert_eq!(failed["status"], "FAILED");
    assert!(
        failed["error"].as_str().unwrap().contains("deleted"),
        "{failed:#}"
    );
    assert!(failed["completedAt"].is_string());
    assert!(failed["downloadUrl"].is_null());
    let (status, _, _) = download(&app, Some(&viewer.token), &format!("/reports/{id}")).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(queue.counts().pending, 0);
    assert_eq!(queue.counts().failed, 1);
}

#[tokio::test]
async fn a_store_failure_fails_the_report() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data_dir = dir.path().to_path_buf();
    let app = TestApp::spawn_with(|c| {
        c.data_dir = data_dir;
        c.object_store_url = None;
    })
    .await;
    let f = fixture(&app).await;
    // A file where the reports' directory should be: the store cannot write under it.
    std::fs::write(dir.path().join("files").join("reports"), b"in the way").expect("a file");
    let id = generated(
        &app,
        &f.team.viewer,
        json!({"modelId": f.model, "name": "r", "format": "CSV", "scenarioIds": [f.base]}),
    )
    .await;
    let failed = settled(&app, &f.team.viewer, &id).await;
    assert_eq!(failed["status"], "FAILED", "{failed:#}");
    assert_eq!(
        failed["error"],
        "internal error while generating the report; generate it again"
    );
    assert!(failed["sha256"].is_null() && failed["byteSize"].is_null());

    // With the obstacle gone, the same request succeeds and lands under reports/<model>/<id>.
    std::fs::remove_file(dir.path().join("files").join("reports")).expect("removed");
    let id = generated(
        &app,
        &f.team.viewer,
        json!({"modelId": f.model, "name": "r", "format": "CSV", "scenarioIds": [f.base]}),
    )
    .await;
    let ready = settled(&app, &f.team.viewer, &id).await;
    assert_eq!(ready["status"], "READY");
    let key = app
        .sql_texts("SELECT storage_key AS t FROM reports WHERE status = 'READY'")
        .await
        .remove(0);
    let row = app
        .sql_texts(
            "SELECT model_id::text || '/' || id::text AS t FROM reports WHERE status = 'READY'",
        )
        .await
        .remove(0);
    assert_eq!(key, format!("reports/{row}"));
    let on_disk = std::fs::read(dir.path().join("files").join(&key)).expect("the stored file");
    assert_eq!(ready["byteSize"], on_disk.len());
}

#[tokio::test]
async fn a_full_queue_is_unavailable_and_records_nothing() {
    let app = TestApp::spawn_with(|c| {
        c.report_queue = 2;
        c.report_workers = 1;
    })
    .await;
    let f = fixture(&app).await;
    let queue = app.app.core().report_queue();
    queue.pause();
    let input = json!({"modelId": f.model, "name": "r", "format": "CSV", "scenarioIds": [f.base]});
    let mut ids = Vec::new();
    for _ in 0..2 {
        let res = generate(&app, &f.team.viewer, input.clone()).await;
        ids.push(
            res.data()["generateReport"]["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let refused = generate(&app, &f.team.viewer, input.clone()).await;
    assert_eq!(refused.code(), "UNAVAILABLE");
    let error = &refused.errors()[0];
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("report queue is full")
    );
    assert!(error["extensions"]["retryAfter"].as_u64().is_some());
    assert_eq!(app.count_rows("reports").await, 2);
    let generated = app
        .audit_actions()
        .await
        .into_iter()
        .filter(|a| a == "report.generate")
        .count();
    assert_eq!(generated, 2);

    // The gauge shows the waiting jobs.
    let (status, _, body) = download(&app, None, "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    let metrics = String::from_utf8(body).unwrap();
    assert!(
        metrics.contains("fv_report_jobs{status=\"pending\"} 2"),
        "{metrics}"
    );

    queue.resume();
    for id in &ids {
        assert_eq!(settled(&app, &f.team.viewer, id).await["status"], "READY");
    }
    assert_eq!(queue.counts().pending, 0);
    let again = generate(&app, &f.team.viewer, input).await;
    assert_eq!(again.data()["generateReport"]["status"], "PENDING");
}

/// A second server over the same database, as after a restart.
fn restarted(app: &TestApp, configure: impl FnOnce(&mut finvision::config::Config)) -> App {
    let mut config = finvision::config::Config::for_database(&app.db.app_url);
    config.object_store_url = Some("memory://".into());
    configure(&mut config);
    App::new(config, app.pool.clone()).expect("a second app")
}

#[tokio::test]
async fn a_restart_queues_pending_reports_again_or_fails_them() {
    let app = TestApp::spawn().await;
    let f = fixture(&app).await;
    // The first process accepts three reports and stops before generating them.
    app.app.core().report_queue().pause();
    let mut ids = Vec::new();
    for name in ["first", "second", "third"] {
        let res = generate(
            &app,
            &f.team.viewer,
            json!({"modelId": f.model, "name": name, "format": "CSV", "scenarioIds": [f.base]}),
        )
        .await;
        ids.push(
            res.data()["generateReport"]["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    // The next one has room for two: the oldest two are generated, the third fails. (The
    // first stays paused: as good as stopped; the rows say what became of each report.)
    let _next = restarted(&app, |c| c.report_queue = 2);
    let mut states = Vec::new();
    for id in &ids {
        states.push(settled(&app, &f.team.viewer, id).await);
    }
    assert_eq!(states[0]["status"], "READY", "{:#}", states[0]);
    assert_eq!(states[1]["status"], "READY");
    assert_eq!(states[2]["status"], "FAILED");
    assert_eq!(
        states[2]["error"],
        finvision::domain::reports::jobs::RESTART_FAILURE
    );
    // Should the first process go on after all, its jobs find the rows settled and skip them.
    let queue = app.app.core().report_queue();
    queue.resume();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    while queue.counts().pending + queue.counts().running > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{:?}",
            queue.counts()
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!((queue.counts().ready, queue.counts().failed), (0, 0));
    assert_eq!(app.count_rows("reports WHERE status = 'READY'").await, 2);
    assert_eq!(app.count_rows("reports WHERE status = 'FAILED'").await, 1);
}

#[tokio::test]
async fn delete_report_removes_the_file_and_is_audited() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data_dir = dir.path().to_path_buf();
    let app = TestApp::spawn_with(|c| {
        c.data_dir = data_dir;
        c.object_store_url = None;
    })
    .await;
    let f = fixture(&app).await;
    let input = json!({"modelId": f.model, "name": "r", "format": "XLSX", "scenarioIds": [f.base]});
    let mine = generate(&app, &f.team.viewer, input.clone()).await.data()["generateReport"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let theirs = generate(&app, &f.team.analyst, input).await.data()["generateReport"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let ready = settled(&app, &f.team.viewer, &mine).await;
    settled(&app, &f.team.viewer, &theirs).await;
    let key = app
        .sql_texts(&format!(
            "SELECT storage_key AS t FROM reports WHERE created_by = '{}'",
            uuid_of(&f.team.viewer)
        ))
        .await
        .remove(0);
    let path = dir.path().join("files").join(&key);
    assert!(path.exists());

    let delete = async |user: &TestUser, id: &str| {
        app.gql(
            Some(&user.token),
            "mutation($id: ID!) { deleteReport(id: $id) }",
            json!({"id": id}),
        )
        .await
    };
    // Another member below ADMIN may not; a stranger does not even see it.
    assert_eq!(delete(&f.team.viewer, &theirs).await.code(), "FORBIDDEN");
    let stranger = app.user("stranger").await;
    assert_eq!(delete(&stranger, &mine).await.code(), "NOT_FOUND");
    assert_eq!(app.count_rows("reports").await, 2);

    // The creator may.
    assert_eq!(
        delete(&f.team.viewer, &mine).await.data()["deleteReport"],
        true
    );
    assert!(!path.exists(), "the file is removed");
    let (status, _, _) = fetch(&app, &f.team.viewer, &ready).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(report(&app, &f.team.viewer, &mine).await.is_null());
    assert_eq!(delete(&f.team.viewer, &mine).await.code(), "NOT_FOUND");
    // So may an ADMIN, of anyone's.
    assert_eq!(
        delete(&f.team.admin, &theirs).await.data()["deleteReport"],
        true
    );
    assert_eq!(app.count_rows("reports").await, 0);

    let events: Vec<_> = app
        .audit_rows()
        .await
        .into_iter()
        .filter(|r| r.action.starts_with("report."))
        .collect();
    let actions: Vec<&str> = events.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "report.generate",
            "report.generate",
            "report.delete",
            "report.delete"
        ]
    );
    for event in &events {
        assert_eq!(event.entity_type, "Report");
    }
    let deleted = events[2].old_values.as_ref().expect("the last values");
    assert_eq!(deleted["status"], "READY");
    assert_eq!(deleted["sha256"], ready["sha256"]);
    assert_eq!(events[0].new_values.as_ref().unwrap()["format"], "XLSX");
}

fn uuid_of(user: &TestUser) -> String {
    use base64::Engine as _;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(&user.id)
        .expect("a global ID");
    String::from_utf8(raw)
        .unwrap()
        .split_once(':')
        .unwrap()
        .1
        .to_owned()
}

#[tokio::test]
async fn bad_input_is_refused_and_records_nothing() {
    let app = TestApp::spawn().await;
    let f = fixture(&app).await;
    let other_model = crate::factories::ModelBuilder::new("Other")
        .scenario("Elsewhere")
        .build(&app, &f.team.owner, &f.team.org)
        .await;
    let base = json!({"modelId": f.model, "name": "r", "format": "CSV", "scenarioIds": [f.base]});
    let with = |extra: Value| {
        let mut input = base.clone();
        input
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        input
    };
    for (input, field) in [
        (
            with(json!({"scenarioIds": [f.base, other_model.scenarios[0]]})),
            "input.scenarioIds",
        ),
        (with(json!({"scenarioIds": []})), "input.scenarioIds"),
        (
            with(json!({"scenarioIds": [f.base, f.base]})),
            "input.scenarioIds",
        ),
        (with(json!({"scenarioIds": [f.model]})), "input.scenarioIds"),
        (
            with(json!({"metricKeys": ["revenue", "ebitda"]})),
            "input.metricKeys",
        ),
        (
            with(json!({"metricKeys": ["revenue", "revenue"]})),
            "input.metricKeys",
        ),
        (
            with(json!({"from": "2026-06-01", "to": "2026-03-01"})),
            "input.to",
        ),
        (with(json!({"from": "2026-06-15"})), "input.from"),
        (with(json!({"to": "2027-01-01"})), "input.to"),
        (with(json!({"from": "2025-12-01"})), "input.from"),
        (with(json!({"name": "  "})), "input.name"),
        (with(json!({"name": "a/b"})), "input.name"),
    ] {
        let res = generate(&app, &f.team.viewer, input.clone()).await;
        assert_eq!(res.code(), "BAD_USER_INPUT", "{input}: {:#}", res.body);
        assert_eq!(res.field().as_deref(), Some(field), "{input}");
    }
    assert_eq!(app.count_rows("reports").await, 0);
    assert!(
        !app.audit_actions()
            .await
            .iter()
            .any(|a| a.starts_with("report."))
    );
    assert_eq!(app.app.core().report_queue().counts().pending, 0);
}

#[tokio::test]
async fn model_reports_are_newest_first_and_cost_statements_by_depth() {
    let app = TestApp::spawn_uncached().await;
    let f = fixture(&app).await;
    let query = "query($id: ID!) { node(id: $id) { ... on FinancialModel { reports(first: 10) { totalCount nodes { name status model { name } scenarios { name model { name } } createdBy { displayName } } } } } }";
    let input = |name: &str| json!({"modelId": f.model, "name": name, "format": "CSV", "scenarioIds": [f.base, f.upside]});
    let mut ids = Vec::new();
    let mut costs = Vec::new();
    for (name, user) in [
        ("one", &f.team.viewer),
        ("two", &f.team.analyst),
        ("three", &f.team.owner),
    ] {
        let res = generate(&app, user, input(name)).await;
        let id = res.data()["generateReport"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        settled(&app, user, &id).await;
        ids.push(id);
        let before = app.statements();
        let res = app
            .gql(Some(&f.team.viewer.token), query, json!({"id": f.model}))
            .await;
        costs.push(app.statements() - before);
        let reports = &res.data()["node"]["reports"];
        assert_eq!(reports["totalCount"], ids.len());
        let names: Vec<&str> = reports["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        let expected: Vec<&str> = ["three", "two", "one"][3 - ids.len()..].to_vec();
        assert_eq!(names, expected, "newest first");
    }
    assert_eq!(
        costs[0], costs[2],
        "one report or three: the same statements ({costs:?})"
    );
    // The caller, the model, its reports, their scenarios (with their model, primed), their
    // creators: one statement per level.
    assert_eq!(costs[0], 5, "{costs:?}");

    // exportMyData lists the reports the caller created.
    let res = app
        .gql(
            Some(&f.team.analyst.token),
            "{ exportMyData { data } }",
            json!({}),
        )
        .await;
    let reports = res.data()["exportMyData"]["data"]["reports"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0]["name"], "two");
    assert_eq!(reports[0]["status"], "READY");
}

/// The README's end-to-end figure: a 10,000-cell XLSX report (1 scenario × 20 metrics, half of
/// them formulas, × 500 monthly periods) from `generateReport` to READY, measured by the row's
/// own `createdAt` and `completedAt`. Printed, not asserted on time (run it in release:
/// `cargo test --release --test api ten_thousand_cell_report -- --nocapture`); asserted on
/// content: every cell is there (but the ten formulas' first periods, which read the period
/// before the timeline: null, so empty).
#[tokio::test]
async fn ten_thousand_cell_report() {
    let app = TestApp::spawn().await;
    let team = Team::new(&app).await;
    let t = Some(team.owner.token.as_str());
    let model = id(
        &app.gql(
            t,
            "mutation($i: CreateModelInput!) { createModel(input: $i) { id } }",
            json!({"i": {"organizationId": team.org, "name": "Long", "currency": "USD",
                         "startPeriod": "2000-01-01", "endPeriod": "2041-08-01"}}),
        )
        .await,
        "createModel",
    );
    let base = id(
        &app.gql(
            t,
            "mutation($i: CreateScenarioInput!) { createScenario(input: $i) { id } }",
            json!({"i": {"modelId": model, "name": "Base", "kind": "BASE"}}),
        )
        .await,
        "createScenario",
    );
    let units = ["CURRENCY", "PERCENT", "RATIO", "NUMBER"];
    // The inputs first: a formula may only name metrics that exist.
    let metrics = (0..10)
        .map(|i| (i, format!("input_{i}"), None))
        .chain((0..10).map(|i| {
            let formula = format!("input_{i} / 7 + input_{}[-1]", (i + 1) % 10);
            (i, format!("derived_{i}"), Some(formula))
        }));
    for (i, key, formula) in metrics {
        let kind = if formula.is_some() {
            "DERIVED"
        } else {
            "INPUT"
        };
        app.gql(
            t,
            "mutation($i: DefineMetricInput!) { defineMetric(input: $i) { id } }",
            json!({"i": {"modelId": model, "key": key, "name": key, "unit": units[i % 4],
                         "kind": kind, "formula": formula}}),
        )
        .await
        .data();
    }
    let periods: Vec<String> = (0..500)
        .map(|m| format!("{}-{:02}-01", 2000 + m / 12, m % 12 + 1))
        .collect();
    let values: Vec<Value> = (0..10)
        .flat_map(|i| {
            periods.iter().enumerate().map(move |(p, period)| {
                json!({"metricKey": format!("input_{i}"), "period": period,
                       "value": format!("{}.{:02}", 1000 * i + p, p % 100)})
            })
        })
        .collect();
    upsert(&app, &team.owner, &base, Value::Array(values)).await;

    let id = generated(
        &app,
        &team.viewer,
        json!({"modelId": model, "name": "long", "format": "XLSX", "scenarioIds": [base]}),
    )
    .await;
    let ready = settled(&app, &team.viewer, &id).await;
    assert_eq!(ready["status"], "READY", "{ready:#}");
    let at = |field: &str| {
        chrono::DateTime::parse_from_rfc3339(ready[field].as_str().expect(field)).expect(field)
    };
    let elapsed = at("completedAt") - at("createdAt");
    println!(
        "10,000-cell XLSX report: {} bytes, generateReport → READY in {} ms",
        ready["byteSize"],
        elapsed.num_milliseconds()
    );
    let (status, _, bytes) = fetch(&app, &team.viewer, &ready).await;
    assert_eq!(status, StatusCode::OK);
    let mut workbook = Xlsx::new(Cursor::new(bytes)).expect("an XLSX file");
    let range = workbook.worksheet_range("Base").expect("the sheet");
    let numbers = range
        .cells()
        .filter(|(_, _, v)| matches!(v, Data::Float(_)))
        .count();
    // The derived metrics read the previous period: their first period is null.
    assert_eq!(numbers, 20 * 500 - 10);
}
