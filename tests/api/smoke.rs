use serde_json::json;

use crate::helpers::TestApp;

#[tokio::test]
async fn register_login_and_me() {
    let app = TestApp::spawn().await;
    let ann = app.register("ann").await;
    let res = app
        .gql(
            Some(&ann.token),
            "{ me { id email displayName } }",
            json!({}),
        )
        .await;
    assert_eq!(res.data()["me"]["email"], "ann@example.com");
    let org = app.organization(&ann, "acme").await;
    let res = app.gql(Some(&ann.token), "query($id: ID!) { node(id: $id) { ... on Organization { slug viewerRole members { totalCount nodes { role user { email } } } } } }", json!({"id": org})).await;
    assert_eq!(res.data()["node"]["members"]["nodes"][0]["role"], "OWNER");
    assert_eq!(
        app.audit_actions().await,
        vec!["user.register", "organization.create"]
    );
}
