//! `search`: ranking (prefix and word matches before fuzzy ones), typo tolerance, snippets,
//! literal input, `kinds` and `first`, who may search, what is left out, and the input rules.
//! Its statement count is pinned with the read path's (`read_path_statements.rs`).

use serde_json::{Value, json};

use crate::{
    factories::{ModelBuilder, OrganizationBuilder, Team, UserBuilder},
    helpers::{Gql, TestApp, TestUser},
};

const SEARCH: &str = "query($org: ID!, $q: String!, $kinds: [SearchKind!], $first: Int) {
  search(organizationId: $org, query: $q, kinds: $kinds, first: $first) {
    kind title snippet score
    node { id ... on Scenario { name } ... on FinancialModel { name } ... on Metric { key } ... on Parameter { key } } } }";

/// The organization `acme` (a member of each role) with one live model full of names to find,
/// a deleted model and a deleted scenario; and `rival`, another organization with look-alikes.
struct Fixture {
    app: TestApp,
    team: Team,
    rival: TestUser,
    rival_org: String,
}

async fn mutate(app: &TestApp, user: &TestUser, mutation: &str, input: Value) -> Value {
    let res = app
        .gql(Some(&user.token), mutation, json!({"i": input}))
        .await;
    res.data().clone()
}

async fn define_metric(
    app: &TestApp,
    by: &TestUser,
    model: &str,
    key: &str,
    name: &str,
    description: &str,
) {
    mutate(
        app,
        by,
        "mutation($i: DefineMetricInput!) { defineMetric(input: $i) { id } }",
        json!({"modelId": model, "key": key, "name": name, "unit": "NUMBER", "kind": "INPUT",
               "description": description}),
    )
    .await;
}

async fn create_scenario(
    app: &TestApp,
    by: &TestUser,
    model: &str,
    name: &str,
    description: Option<&str>,
) -> String {
    mutate(
        app,
        by,
        "mutation($i: CreateScenarioInput!) { createScenario(input: $i) { id } }",
        json!({"modelId": model, "name": name, "kind": "CUSTOM", "description": description}),
    )
    .await["createScenario"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn fixture() -> Fixture {
    let app = TestApp::spawn().await;
    let team = Team::new(&app).await;
    let owner = &team.owner;
    let model = ModelBuilder::new("SaaS P&L 2026")
        .with(json!({"description": "Monthly plan: revenue, hiring and margins"}))
        .build(&app, owner, &team.org)
        .await
        .id;
    for (name, description) in [
        ("Base", None),
        ("Downside", Some("Lower growth, higher churn")),
        ("Downside – hiring freeze", Some("No new hires from Q3")),
        ("Growth 10% cap", None),
        ("Growth 10 per cent cap", None),
        ("Plan 5_0", None),
        ("Plan 500", None),
        (r"Path a\b", None),
        ("Path ab", None),
    ] {
        create_scenario(&app, owner, &model, name, description).await;
    }
    let gone = create_scenario(&app, owner, &model, "Downside old", None).await;
    mutate(
        &app,
        owner,
        "mutation($i: ID!) { deleteScenario(id: $i) }",
        json!(gone),
    )
    .await;
    define_metric(
        &app,
        owner,
        &model,
        "revenue",
        "Revenue",
        "Recognised revenue",
    )
    .await;
    define_metric(
        &app,
        owner,
        &model,
        "headcount",
        "Headcount",
        "Hiring plan result",
    )
    .await;
    mutate(
        &app,
        owner,
        "mutation($i: DefineParameterInput!) { defineParameter(input: $i) { id } }",
        json!({"modelId": model, "key": "downside_factor", "name": "Downside factor",
               "unit": "RATIO", "defaultValue": "0.9"}),
    )
    .await;
    let deleted = ModelBuilder::new("Downside archive")
        .scenario("Downside legacy")
        .build(&app, owner, &team.org)
        .await
        .id;
    mutate(
        &app,
        owner,
        "mutation($i: ID!) { deleteModel(id: $i) }",
        json!(deleted),
    )
    .await;

    let rival = UserBuilder::new("rival").build(&app).await;
    let rival_org = OrganizationBuilder::new("rival", &rival).build(&app).await;
    ModelBuilder::new("Downside rival")
        .scenario("Downside – rival freeze")
        .build(&app, &rival, &rival_org)
        .await;
    Fixture {
        app,
        team,
        rival,
        rival_org,
    }
}

impl Fixture {
    async fn ask(
        &self,
        user: Option<&TestUser>,
        org: &str,
        q: &str,
        kinds: Option<Value>,
        first: Option<i64>,
    ) -> Gql {
        self.app
            .gql(
                user.map(|u| u.token.as_str()),
                SEARCH,
                json!({"org": org, "q": q, "kinds": kinds, "first": first}),
            )
            .await
    }

    /// The owner's hits for `q` in `acme`.
    async fn hits(&self, q: &str) -> Vec<Value> {
        self.hits_of(q, None, None).await
    }

    async fn hits_of(&self, q: &str, kinds: Option<Value>, first: Option<i64>) -> Vec<Value> {
        let res = self
            .ask(Some(&self.team.owner), &self.team.org, q, kinds, first)
            .await;
        res.data()["search"].as_array().unwrap().clone()
    }
}

fn titles(hits: &[Value]) -> Vec<&str> {
    hits.iter().map(|h| h["title"].as_str().unwrap()).collect()
}

fn score(hit: &Value) -> f64 {
    hit["score"].as_f64().unwrap()
}

#[tokio::test]
async fn search_ranks_prefix_and_word_matches_before_fuzzy_ones() {
    let fx = fixture().await;

    let hits = fx.hits("downside hiring").await;
    assert_eq!(hits[0]["title"], "Downside – hiring freeze", "{hits:#?}");
    assert_eq!(hits[0]["kind"], "SCENARIO");
    assert_eq!(hits[0]["node"]["name"], "Downside – hiring freeze");
    assert_eq!(hits[0]["snippet"], "«Downside» – «hiring» freeze");
    // Every word starts a word there; "Downside" alone holds only one of them.
    assert!(score(&hits[0]) >= 2.0, "{hits:#?}");
    assert!(titles(&hits).contains(&"Downside"), "{hits:#?}");
    assert!(
        hits.windows(2).all(|w| score(&w[0]) >= score(&w[1])),
        "{hits:#?}"
    );

    let hits = fx.hits("downside").await;
    // The exact name first, then the other names and keys starting with the query, then the
    // rest: a name that merely contains it, or fuzzy matches.
    assert_eq!(hits[0]["title"], "Downside", "{hits:#?}");
    let prefixed: Vec<&str> = titles(&hits)
        .into_iter()
        .zip(&hits)
        .filter(|(_, h)| score(h) >= 3.0)
        .map(|(t, _)| t)
        .collect();
    let mut sorted = prefixed.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        ["Downside", "Downside factor", "Downside – hiring freeze"]
    );
    assert_eq!(
        &titles(&hits)[..3],
        &prefixed[..],
        "prefix matches come first: {hits:#?}"
    );
    let parameter = hits.iter().find(|h| h["kind"] == "PARAMETER").unwrap();
    assert_eq!(parameter["node"]["key"], "downside_factor");
    assert_eq!(parameter["snippet"], "«Downside» factor");

    let hits = fx.hits("rev").await;
    assert_eq!(hits[0]["title"], "Revenue", "{hits:#?}");
    assert_eq!(hits[0]["node"]["key"], "revenue");
    // The model's description has the word too: a word match, after the prefix.
    let model = hits.iter().find(|h| h["kind"] == "MODEL").unwrap();
    assert_eq!(model["node"]["name"], "SaaS P&L 2026");
    assert!((2.0..3.0).contains(&score(model)), "{hits:#?}");
    assert_eq!(
        model["snippet"],
        "Monthly plan: «revenue», hiring and margins"
    );
}

#[tokio::test]
async fn search_tolerates_typos_and_marks_what_matched() {
    let fx = fixture().await;

    let hits = fx.hits("donwside").await;
    assert_eq!(hits[0]["title"], "Downside", "{hits:#?}");
    assert_eq!(hits[0]["snippet"], "«Downside»");
    assert!(score(&hits[0]) < 1.0, "a fuzzy match only: {hits:#?}");
    assert!(
        titles(&hits).contains(&"Downside – hiring freeze"),
        "{hits:#?}"
    );

    // The description matched: the snippet shows it.
    let hits = fx.hits_of("hiring", Some(json!(["METRIC"])), None).await;
    assert_eq!(titles(&hits), ["Headcount"]);
    assert_eq!(hits[0]["snippet"], "«Hiring» plan result");

    // Nothing close: no hits at all.
    assert!(fx.hits("zyxwvut").await.is_empty());
}

#[tokio::test]
async fn search_input_is_literal() {
    let fx = fixture().await;
    let scenarios = Some(json!(["SCENARIO"]));

    // `%` and `_` are no wildcards, `\` escapes nothing.
    assert_eq!(
        titles(&fx.hits_of("%", scenarios.clone(), None).await),
        ["Growth 10% cap"]
    );
    assert_eq!(
        titles(&fx.hits_of("_", scenarios.clone(), None).await),
        ["Plan 5_0"]
    );
    assert_eq!(
        titles(&fx.hits_of("5_0", scenarios.clone(), None).await),
        ["Plan 5_0"]
    );
    let hits = fx.hits_of(r"a\b", scenarios.clone(), None).await;
    assert_eq!(titles(&hits), [r"Path a\b"]);
    assert_eq!(hits[0]["snippet"], r"Path «a\b»");

    // "10 per cent cap" shares the words "10" and "cap" but not "10%": fuzzy only, after.
    let hits = fx.hits_of("10% cap", scenarios, None).await;
    assert_eq!(hits[0]["title"], "Growth 10% cap", "{hits:#?}");
    assert_eq!(hits[0]["snippet"], "Growth «10%» «cap»");
    assert!(score(&hits[0]) >= 2.0, "{hits:#?}");
    assert!(hits[1..].iter().all(|h| score(h) < 1.0), "{hits:#?}");
}

#[tokio::test]
async fn search_kinds_and_first_narrow_the_hits() {
    let fx = fixture().await;

    let all = fx.hits("downside").await;
    let kinds: std::collections::BTreeSet<&str> =
        all.iter().map(|h| h["kind"].as_str().unwrap()).collect();
    assert!(
        kinds.contains("SCENARIO") && kinds.contains("PARAMETER"),
        "{all:#?}"
    );

    let hits = fx
        .hits_of("downside", Some(json!(["PARAMETER"])), None)
        .await;
    assert_eq!(titles(&hits), ["Downside factor"]);
    // "hiring" is in a scenario's name too; only the metric and the model come back.
    let everything = fx.hits("hiring").await;
    assert!(
        everything.iter().any(|h| h["kind"] == "SCENARIO"),
        "{everything:#?}"
    );
    let hits = fx
        .hits_of("hiring", Some(json!(["METRIC", "MODEL"])), None)
        .await;
    let mut found: Vec<(&str, &str)> = hits
        .iter()
        .map(|h| (h["kind"].as_str().unwrap(), h["title"].as_str().unwrap()))
        .collect();
    found.sort_unstable();
    assert_eq!(found, [("METRIC", "Headcount"), ("MODEL", "SaaS P&L 2026")]);

    let one = fx.hits_of("downside", None, Some(1)).await;
    assert_eq!(titles(&one), [all[0]["title"].as_str().unwrap()]);
    let two = fx.hits_of("downside", None, Some(2)).await;
    assert_eq!(titles(&two), titles(&all[..2]));
    // The default page is 20; there are fewer hits here than that.
    assert_eq!(
        fx.hits_of("downside", None, Some(100)).await.len(),
        all.len()
    );
}

#[tokio::test]
async fn search_leaves_out_deleted_things_and_other_organizations() {
    let fx = fixture().await;
    for q in ["downside", "legacy", "archive", "rival", "old"] {
        let hits = fx.hits(q).await;
        for title in titles(&hits) {
            assert!(
                ![
                    "Downside old",
                    "Downside archive",
                    "Downside legacy",
                    "Downside rival",
                    "Downside – rival freeze"
                ]
                .contains(&title),
                "{q}: {hits:#?}"
            );
        }
    }
    // The rival finds their own, and only theirs.
    let res = fx
        .ask(Some(&fx.rival), &fx.rival_org, "downside", None, None)
        .await;
    let hits = res.data()["search"].as_array().unwrap().clone();
    let mut found = titles(&hits);
    found.sort_unstable();
    assert_eq!(found, ["Downside rival", "Downside – rival freeze"]);
}

#[tokio::test]
async fn search_needs_viewer_of_the_organization() {
    let fx = fixture().await;
    let team = &fx.team;
    for member in [&team.viewer, &team.analyst, &team.admin, &team.owner] {
        let res = fx
            .ask(Some(member), &team.org, "downside", None, None)
            .await;
        assert!(
            !res.data()["search"].as_array().unwrap().is_empty(),
            "{:#}",
            res.body
        );
    }
    let root = UserBuilder::new("root").superadmin().build(&fx.app).await;
    let res = fx.ask(Some(&root), &team.org, "downside", None, None).await;
    assert!(!res.data()["search"].as_array().unwrap().is_empty());

    // Another organization's member: the organization does not exist for them.
    let res = fx
        .ask(Some(&fx.rival), &team.org, "downside", None, None)
        .await;
    assert_eq!(res.code(), "NOT_FOUND", "{:#}", res.body);
    let res = fx
        .ask(Some(&team.viewer), &fx.rival_org, "downside", None, None)
        .await;
    assert_eq!(res.code(), "NOT_FOUND", "{:#}", res.body);
    let res = fx.ask(None, &team.org, "downside", None, None).await;
    assert_eq!(res.code(), "UNAUTHENTICATED", "{:#}", res.body);
    // Not an organization's ID.
    let res = fx
        .ask(Some(&team.owner), &team.owner.id, "downside", None, None)
        .await;
    assert_eq!(res.code(), "BAD_USER_INPUT", "{:#}", res.body);
}

#[tokio::test]
async fn search_refuses_bad_input() {
    let fx = fixture().await;
    let long = "x".repeat(201);
    let cases: [(&str, Option<Value>, Option<i64>, &str); 7] = [
        ("", None, None, "query"),
        ("  \t ", None, None, "query"),
        (&long, None, None, "query"),
        ("plan", None, Some(0), "first"),
        ("plan", None, Some(-1), "first"),
        ("plan", None, Some(101), "first"),
        ("plan", Some(json!([])), None, "kinds"),
    ];
    for (q, kinds, first, field) in cases {
        let res = fx
            .ask(Some(&fx.team.viewer), &fx.team.org, q, kinds, first)
            .await;
        assert_eq!(
            res.code(),
            "BAD_USER_INPUT",
            "{q:?} {first:?}: {:#}",
            res.body
        );
        assert_eq!(res.field().as_deref(), Some(field), "{:#}", res.body);
    }
    // At the limits: 200 characters, 100 hits.
    let res = fx
        .ask(
            Some(&fx.team.viewer),
            &fx.team.org,
            &"x".repeat(200),
            None,
            Some(100),
        )
        .await;
    assert!(res.data()["search"].is_array(), "{:#}", res.body);
}

/// `fv_search` runs as the tables' owner (so that its trigram indexes serve it under row-level
/// security) and applies the tenant rule itself: as the application role, a context that does
/// not admit the organization gets nothing from it, whatever SQL it sends.
#[tokio::test]
async fn the_search_function_applies_the_tenant_rule_itself() {
    use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};

    let fx = fixture().await;
    let app = &fx.app;
    let one = |sql: String| async move { app.sql_texts(&sql).await.remove(0) };
    let acme = one("SELECT id::text AS t FROM organizations WHERE slug = 'acme'".into()).await;
    let rival_org =
        one("SELECT id::text AS t FROM organizations WHERE slug = 'rival'".into()).await;
    let user = |email: &str| format!("SELECT id::text AS t FROM users WHERE email = '{email}'");
    let owner = one(user(&fx.team.owner.email)).await;
    let rival = one(user(&fx.rival.email)).await;

    let mut conn = AsyncPgConnection::establish(&fx.app.db.app_url)
        .await
        .expect("connect as the application role");
    let mut hits = async |caller: &str| -> i64 {
        conn.batch_execute(&format!("SELECT fv_set_caller('{caller}', false)"))
            .await
            .expect("set the caller");
        let sql = format!(
            "SELECT count(*) AS n FROM fv_search('{acme}', 'downside', \
             ARRAY['MODEL', 'SCENARIO', 'METRIC', 'PARAMETER'], 100)"
        );
        #[derive(diesel::QueryableByName)]
        struct Count {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        diesel_async::RunQueryDsl::get_result::<Count>(diesel::sql_query(sql), &mut conn)
            .await
            .expect("fv_search")
            .n
    };
    for caller in [
        String::new(),
        format!("u:{rival}:{rival_org}"),
        format!("o:{rival_org}"),
    ] {
        assert_eq!(hits(&caller).await, 0, "caller {caller:?}");
    }
    assert!(hits(&format!("u:{owner}:{acme}")).await >= 3);
    assert!(hits(&format!("o:{acme}")).await >= 3);
    assert!(hits("all").await >= 3);
}

/// `first` defaults to 20 and goes up to 100.
#[tokio::test]
async fn search_returns_twenty_hits_unless_asked_for_more() {
    let app = TestApp::spawn().await;
    let team = Team::new(&app).await;
    let mut model = ModelBuilder::new("Cases");
    for n in 1..=25 {
        model = model.scenario(&format!("Case {n:02}"));
    }
    model.build(&app, &team.owner, &team.org).await;
    let count = |first: Option<i64>| {
        let (app, team) = (&app, &team);
        async move {
            let res = app
                .gql(
                    Some(&team.viewer.token),
                    SEARCH,
                    json!({"org": team.org, "q": "case", "kinds": ["SCENARIO"], "first": first}),
                )
                .await;
            res.data()["search"].as_array().unwrap().len()
        }
    };
    assert_eq!(count(None).await, 20);
    assert_eq!(count(Some(100)).await, 25);
    assert_eq!(count(Some(7)).await, 7);
}
