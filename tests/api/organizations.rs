//! Organizations and memberships: creation, updates, deletion, members, ownership, and the audit
//! event every one of those mutations writes.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{
    factories::{OrganizationBuilder, UserBuilder},
    helpers::{AuditRow, Gql, PASSWORD, TestApp, TestUser, redactions},
};

pub const CREATE: &str = "mutation($input: CreateOrganizationInput!) { createOrganization(input: $input) { id name slug version settings viewerRole members { totalCount nodes { role user { id email } } } } }";
pub const UPDATE: &str = "mutation($input: UpdateOrganizationInput!) { updateOrganization(input: $input) { id name slug version settings } }";
pub const DELETE: &str = "mutation($id: ID!) { deleteOrganization(id: $id) }";
pub const ADD: &str = "mutation($input: AddMemberInput!) { addMember(input: $input) { id role user { id } organization { id } } }";
pub const ROLE: &str = "mutation($input: UpdateMemberRoleInput!) { updateMemberRole(input: $input) { role user { id } } }";
pub const REMOVE: &str = "mutation($input: RemoveMemberInput!) { removeMember(input: $input) }";
pub const TRANSFER: &str = "mutation($input: TransferOwnershipInput!) { transferOwnership(input: $input) { id viewerRole } }";
const ORG: &str = "query($id: ID!) { organization(id: $id) { id name slug version viewerRole } }";

/// The UUID inside a global ID (`Kind:uuid`), to compare with database columns.
pub fn raw_uuid(global_id: &str) -> Uuid {
    let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(global_id).expect("base64")).expect("utf8");
    let (_, id) = raw.split_once(':').expect("Kind:uuid");
    Uuid::parse_str(id).expect("uuid")
}

/// The members of an organization as `(user id, role)`, as its owner (or anyone who sees it).
pub async fn roles(app: &TestApp, token: &str, org: &str) -> Vec<(String, String)> {
    let res = app
        .gql(
            Some(token),
            "query($id: ID!) { organization(id: $id) { members(first: 100) { nodes { role user { id } } } } }",
            json!({"id": org}),
        )
        .await;
    res.data()["organization"]["members"]["nodes"]
        .as_array()
        .expect("members")
        .iter()
        .map(|m| {
            (
                m["user"]["id"].as_str().unwrap().to_owned(),
                m["role"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// The role of `user` in `org`, seen by `token`; `None` when not a member.
pub async fn role_of(app: &TestApp, token: &str, org: &str, user: &TestUser) -> Option<String> {
    roles(app, token, org)
        .await
        .into_iter()
        .find(|(id, _)| *id == user.id)
        .map(|(_, role)| role)
}

/// Run `f`, assert it wrote exactly one audit event, and return it.
async fn one_event(app: &TestApp, res: Gql, before: usize) -> (Gql, AuditRow) {
    let rows = app.audit_rows().await;
    assert_eq!(
        rows.len(),
        before + 1,
        "expected exactly one new audit event: {:?} ({:#})",
        &rows[before.min(rows.len())..],
        res.body
    );
    (res, rows.last().unwrap().clone())
}

#[track_caller]
fn assert_code(res: &Gql, code: &str) {
    assert_eq!(res.code(), code, "{:#}", res.body);
}

/// A call that must be refused with `code` (and `extensions.field`, when given) and write no
/// audit event: one row of a refusal table run by [`check_refused`].
struct Refused<'a> {
    by: Option<&'a TestUser>,
    query: &'static str,
    vars: Value,
    code: &'static str,
    field: Option<&'static str>,
}

/// `by` calling `query` with `vars` is refused with `code`.
fn refused<'a>(
    by: Option<&'a TestUser>,
    query: &'static str,
    vars: Value,
    code: &'static str,
) -> Refused<'a> {
    Refused {
        by,
        query,
        vars,
        code,
        field: None,
    }
}

impl Refused<'_> {
    /// … naming `field` as the culprit.
    fn at(mut self, field: &'static str) -> Self {
        self.field = Some(field);
        self
    }
}

/// Run a refusal table: each call fails as its row says and writes no audit event.
async fn check_refused(app: &TestApp, cases: Vec<Refused<'_>>) {
    for case in cases {
        let before = app.audit_rows().await.len();
        let res = app
            .gql(
                case.by.map(|u| u.token.as_str()),
                case.query,
                case.vars.clone(),
            )
            .await;
        let what = format!("{} {}", case.query, case.vars);
        assert_eq!(res.code(), case.code, "{what}: {:#}", res.body);
        if let Some(field) = case.field {
            assert_eq!(res.field().as_deref(), Some(field), "{what}");
        }
        assert_eq!(
            app.audit_rows().await.len(),
            before,
            "a failed mutation wrote an audit event: {what}"
        );
    }
}

#[tokio::test]
async fn create_organization_makes_the_caller_owner() {
    let app = TestApp::spawn().await;
    let ann = app.user("ann").await;
    let before = app.audit_rows().await.len();
    let res = app
        .gql(
            Some(&ann.token),
            CREATE,
            json!({"input": {"name": "Acme Corp", "slug": "acme-corp", "settings": {"fiscalYearStart": 4}}}),
        )
        .await;
    let (res, event) = one_event(&app, res, before).await;
    let org_id = res.id("createOrganization");
    // Version 1, the settings as given, and ann its one member, an OWNER.
    redactions(&[(&ann.id, "ann"), (&org_id, "org")])
        .bind(|| insta::assert_json_snapshot!(res.data()));

    assert_eq!(event.action, "organization.create");
    assert_eq!(event.entity_type, "Organization");
    let org_id = org_id.as_str();
    assert_eq!(event.organization_id, Some(raw_uuid(org_id)));
    assert_eq!(event.new_values.as_ref().unwrap()["slug"], "acme-corp");

    // Without settings: an empty object.
    let res = app
        .gql(
            Some(&ann.token),
            CREATE,
            json!({"input": {"name": "Beta", "slug": "beta"}}),
        )
        .await;
    assert_eq!(res.data()["createOrganization"]["settings"], json!({}));
}

#[tokio::test]
async fn create_organization_rejects_bad_input_and_duplicates() {
    let app = TestApp::spawn().await;
    let ann = app.user("ann").await;
    app.organization(&ann, "acme").await;
    let mut cases = Vec::new();
    for bad in ["ab", "Acme", "-acme", "acme-", "acme corp", "acme_corp", ""] {
        let input = json!({"input": {"name": "X", "slug": bad}});
        cases.push(refused(Some(&ann), CREATE, input, "BAD_USER_INPUT").at("input.slug"));
    }
    let taken = json!({"input": {"name": "Other", "slug": "acme"}});
    cases.push(refused(Some(&ann), CREATE, taken, "CONFLICT"));
    for settings in [json!([1, 2]), json!("text"), json!(3)] {
        let input = json!({"input": {"name": "S", "slug": "settings-org", "settings": settings}});
        cases.push(refused(Some(&ann), CREATE, input, "BAD_USER_INPUT").at("input.settings"));
    }
    // Anonymous callers cannot create organizations.
    let anon = json!({"input": {"name": "A", "slug": "anon"}});
    cases.push(refused(None, CREATE, anon, "UNAUTHENTICATED"));
    check_refused(&app, cases).await;
}

#[tokio::test]
async fn update_organization_checks_version_and_slug_rights() {
    let app = TestApp::spawn().await;
    let owner = app.user("owner").await;
    let admin = app.user("admin").await;
    let org = app.organization(&owner, "acme").await;
    app.add_member(&owner, &org, &admin, "ADMIN").await;

    // A rename at the right version increments it and records only the name.
    let before = app.audit_rows().await.len();
    let res = app
        .gql(
            Some(&admin.token),
            UPDATE,
            json!({"input": {"id": org, "version": 1, "name": "Acme Inc"}}),
        )
        .await;
    let (res, event) = one_event(&app, res, before).await;
    let updated = &res.data()["updateOrganization"];
    assert_eq!(updated["name"], "Acme Inc");
    assert_eq!(updated["slug"], "acme");
    assert_eq!(updated["version"], 2);
    assert_eq!(event.action, "organization.update");
    assert_eq!(event.organization_id, Some(raw_uuid(&org)));
    assert_eq!(event.old_values, Some(json!({"name": "acme"})));
    assert_eq!(event.new_values, Some(json!({"name": "Acme Inc"})));

    // A stale version is a conflict, an ADMIN cannot change the slug, bad settings and a bad
    // slug are input errors: none changes anything.
    let update = |input: Value| json!({"input": input});
    check_refused(
        &app,
        vec![
            refused(
                Some(&admin),
                UPDATE,
                update(json!({"id": org, "version": 1, "name": "Stale"})),
                "CONFLICT",
            ),
            refused(
                Some(&admin),
                UPDATE,
                update(json!({"id": org, "version": 2, "slug": "acme-new"})),
                "FORBIDDEN",
            ),
            refused(
                Some(&owner),
                UPDATE,
                update(json!({"id": org, "version": 2, "settings": [1]})),
                "BAD_USER_INPUT",
            )
            .at("input.settings"),
            refused(
                Some(&owner),
                UPDATE,
                update(json!({"id": org, "version": 2, "slug": "Not A Slug"})),
                "BAD_USER_INPUT",
            )
            .at("input.slug"),
        ],
    )
    .await;
    let now = app.gql(Some(&owner.token), ORG, json!({"id": org})).await;
    assert_eq!(now.data()["organization"]["name"], "Acme Inc");
    assert_eq!(now.data()["organization"]["slug"], "acme");
    assert_eq!(now.data()["organization"]["version"], 2);

    // The OWNER can change the slug; only the slug is recorded.
    let before = app.audit_rows().await.len();
    let res = app
        .gql(
            Some(&owner.token),
            UPDATE,
            json!({"input": {"id": org, "version": 2, "slug": "acme-new"}}),
        )
        .await;
    let (res, event) = one_event(&app, res, before).await;
    assert_eq!(res.data()["updateOrganization"]["slug"], "acme-new");
    assert_eq!(res.data()["updateOrganization"]["version"], 3);
    assert_eq!(event.old_values, Some(json!({"slug": "acme"})));
    assert_eq!(event.new_values, Some(json!({"slug": "acme-new"})));
    let by_slug = app
        .gql(
            Some(&owner.token),
            "{ organization(slug: \"acme-new\") { id } }",
            json!({}),
        )
        .await;
    assert_eq!(by_slug.data()["organization"]["id"], org.as_str());

    // Settings replace the object and are recorded alone.
    let before = app.audit_rows().await.len();
    let res = app
        .gql(
            Some(&admin.token),
            UPDATE,
            json!({"input": {"id": org, "version": 3, "settings": {"currency": "EUR"}}}),
        )
        .await;
    let (res, event) = one_event(&app, res, before).await;
    assert_eq!(
        res.data()["updateOrganization"]["settings"],
        json!({"currency": "EUR"})
    );
    assert_eq!(event.old_values, Some(json!({"settings": {}})));
    assert_eq!(
        event.new_values,
        Some(json!({"settings": {"currency": "EUR"}}))
    );
}

#[tokio::test]
async fn delete_organization_hides_it_and_frees_the_slug() {
    let app = TestApp::spawn().await;
    let owner = app.user("owner").await;
    let viewer = app.user("viewer").await;
    let root = app.user("root").await;
    app.make_superadmin(&root.email).await;
    let org = app.organization(&owner, "acme").await;
    let other = app.organization(&owner, "other").await;
    app.add_member(&owner, &org, &viewer, "VIEWER").await;

    let before = app.audit_rows().await.len();
    let res = app
        .gql(Some(&owner.token), DELETE, json!({"id": org}))
        .await;
    let (res, event) = one_event(&app, res, before).await;
    assert_eq!(res.data()["deleteOrganization"], true);
    assert_eq!(event.action, "organization.delete");
    assert_eq!(event.organization_id, Some(raw_uuid(&org)));

    for user in [&owner, &viewer, &root] {
        let res = app.gql(Some(&user.token), ORG, json!({"id": org})).await;
        assert!(res.data()["organization"].is_null(), "{:#}", res.body);
        let res = app
            .gql(
                Some(&user.token),
                "query($id: ID!) { node(id: $id) { id } }",
                json!({"id": org}),
            )
            .await;
        assert!(res.data()["node"].is_null(), "{:#}", res.body);
        let res = app
            .gql(
                Some(&user.token),
                "{ organization(slug: \"acme\") { id } }",
                json!({}),
            )
            .await;
        assert!(res.data()["organization"].is_null(), "{:#}", res.body);
        let res = app
            .gql(
                Some(&user.token),
                "{ organizations { totalCount nodes { id } } me { memberships { totalCount } } }",
                json!({}),
            )
            .await;
        let ids: Vec<&Value> = res.data()["organizations"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| &n["id"])
            .collect();
        assert!(!ids.contains(&&json!(org)), "{:#}", res.body);
    }
    let res = app
        .gql(
            Some(&owner.token),
            "{ organizations { totalCount nodes { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(res.data()["organizations"]["totalCount"], 1);
    assert_eq!(
        res.data()["organizations"]["nodes"][0]["id"],
        other.as_str()
    );

    // A deleted organization cannot be deleted or updated again.
    let zombie = json!({"input": {"id": org, "version": 1, "name": "zombie"}});
    check_refused(
        &app,
        vec![
            refused(Some(&owner), DELETE, json!({"id": org}), "NOT_FOUND"),
            refused(Some(&owner), UPDATE, zombie, "NOT_FOUND"),
        ],
    )
    .await;

    // The slug is free again.
    let again = app.organization(&viewer, "acme").await;
    assert_ne!(again, org);
    let res = app
        .gql(
            Some(&viewer.token),
            "{ organization(slug: \"acme\") { id viewerRole } }",
            json!({}),
        )
        .await;
    assert_eq!(res.data()["organization"]["id"], again.as_str());
    assert_eq!(res.data()["organization"]["viewerRole"], "OWNER");
}

#[tokio::test]
async fn organization_by_id_or_slug_exactly_one() {
    let app = TestApp::spawn().await;
    let ann = app.user("ann").await;
    let org = app.organization(&ann, "acme").await;
    let res = app
        .gql(
            Some(&ann.token),
            "query($slug: String!) { organization(slug: $slug) { id slug } }",
            json!({"slug": "acme"}),
        )
        .await;
    assert_eq!(res.data()["organization"]["id"], org.as_str());
    let res = app
        .gql(
            Some(&ann.token),
            "{ organization(slug: \"nope\") { id } }",
            json!({}),
        )
        .await;
    assert!(res.data()["organization"].is_null());

    let both = app
        .gql(
            Some(&ann.token),
            "query($id: ID!) { organization(id: $id, slug: \"acme\") { id } }",
            json!({"id": org}),
        )
        .await;
    assert_code(&both, "BAD_USER_INPUT");
    let neither = app
        .gql(Some(&ann.token), "{ organization { id } }", json!({}))
        .await;
    assert_code(&neither, "BAD_USER_INPUT");
}

#[tokio::test]
async fn add_member_by_email() {
    let app = TestApp::spawn().await;
    let owner = app.user("owner").await;
    let admin = app.user("admin").await;
    let bob = app.user("bob").await;
    let carl = app.user("carl").await;
    let org = app.organization(&owner, "acme").await;
    app.add_member(&owner, &org, &admin, "ADMIN").await;

    let before = app.audit_rows().await.len();
    let res = app
        .gql(
            Some(&admin.token),
            ADD,
            json!({"input": {"organizationId": org, "email": bob.email, "role": "ANALYST"}}),
        )
        .await;
    let (res, event) = one_event(&app, res, before).await;
    let m = &res.data()["addMember"];
    assert_eq!(m["role"], "ANALYST");
    assert_eq!(m["user"]["id"], bob.id.as_str());
    assert_eq!(m["organization"]["id"], org.as_str());
    assert_eq!(event.action, "member.add");
    assert_eq!(event.organization_id, Some(raw_uuid(&org)));
    assert_eq!(event.new_values.as_ref().unwrap()["role"], "ANALYST");

    // The email is matched case-insensitively.
    let before = app.audit_rows().await.len();
    let res = app
        .gql(
            Some(&admin.token),
            ADD,
            json!({"input": {"organizationId": org, "email": "CARL@Example.com", "role": "VIEWER"}}),
        )
        .await;
    let (res, _) = one_event(&app, res, before).await;
    assert_eq!(res.data()["addMember"]["user"]["id"], carl.id.as_str());

    let add = |email: &str, role: &str| json!({"input": {"organizationId": org, "email": email, "role": role}});
    check_refused(
        &app,
        vec![
            refused(
                Some(&admin),
                ADD,
                add("nobody@example.com", "VIEWER"),
                "BAD_USER_INPUT",
            )
            .at("input.email"),
            refused(Some(&admin), ADD, add(&bob.email, "VIEWER"), "CONFLICT"),
        ],
    )
    .await;
    assert_eq!(
        role_of(&app, &owner.token, &org, &bob).await.as_deref(),
        Some("ANALYST")
    );

    // Only an OWNER grants OWNER.
    let dora = app.user("dora").await;
    check_refused(
        &app,
        vec![refused(
            Some(&admin),
            ADD,
            add(&dora.email, "OWNER"),
            "FORBIDDEN",
        )],
    )
    .await;
    assert_eq!(role_of(&app, &owner.token, &org, &dora).await, None);
    let before = app.audit_rows().await.len();
    let res = app
        .gql(
            Some(&owner.token),
            ADD,
            json!({"input": {"organizationId": org, "email": dora.email, "role": "OWNER"}}),
        )
        .await;
    let (res, _) = one_event(&app, res, before).await;
    assert_eq!(res.data()["addMember"]["role"], "OWNER");
}

#[tokio::test]
async fn the_last_owner_stays() {
    let app = TestApp::spawn().await;
    let owner = app.user("owner").await;
    let admin = app.user("admin").await;
    let root = UserBuilder::new("root").superadmin().build(&app).await;
    let org = OrganizationBuilder::new("acme", &owner)
        .member(&admin, "ADMIN")
        .build(&app)
        .await;
    let role = |user: &TestUser, role: &str| json!({"input": {"organizationId": org, "userId": user.id, "role": role}});
    let remove = |user: &TestUser| json!({"input": {"organizationId": org, "userId": user.id}});

    check_refused(
        &app,
        vec![
            // The last OWNER can neither be demoted nor removed, not even by themself or a
            // superadmin.
            refused(Some(&owner), ROLE, role(&owner, "ADMIN"), "CONFLICT"),
            refused(Some(&owner), REMOVE, remove(&owner), "CONFLICT"),
            refused(Some(&root), REMOVE, remove(&owner), "CONFLICT"),
            refused(Some(&root), ROLE, role(&owner, "VIEWER"), "CONFLICT"),
            // An ADMIN can neither demote nor remove an OWNER.
            refused(Some(&admin), ROLE, role(&owner, "VIEWER"), "FORBIDDEN"),
            refused(Some(&admin), REMOVE, remove(&owner), "FORBIDDEN"),
        ],
    )
    .await;
    assert_eq!(
        role_of(&app, &owner.token, &org, &owner).await.as_deref(),
        Some("OWNER")
    );

    // With a second OWNER, the first may step down.
    let before = app.audit_rows().await.len();
    let res = app
        .gql(
            Some(&owner.token),
            ROLE,
            json!({"input": {"organizationId": org, "userId": admin.id, "role": "OWNER"}}),
        )
        .await;
    let (res, event) = one_event(&app, res, before).await;
    assert_eq!(res.data()["updateMemberRole"]["role"], "OWNER");
    assert_eq!(event.action, "member.role_change");
    assert_eq!(event.organization_id, Some(raw_uuid(&org)));
    assert_eq!(event.old_values, Some(json!({"role": "ADMIN"})));
    assert_eq!(event.new_values, Some(json!({"role": "OWNER"})));

    let before = app.audit_rows().await.len();
    let res = app
        .gql(
            Some(&owner.token),
            ROLE,
            json!({"input": {"organizationId": org, "userId": owner.id, "role": "ANALYST"}}),
        )
        .await;
    let (res, _) = one_event(&app, res, before).await;
    assert_eq!(res.data()["updateMemberRole"]["role"], "ANALYST");
    // … and now `admin` is the last OWNER.
    check_refused(
        &app,
        vec![refused(Some(&admin), REMOVE, remove(&admin), "CONFLICT")],
    )
    .await;
}

#[tokio::test]
async fn members_change_roles_and_leave() {
    let app = TestApp::spawn().await;
    let owner = app.user("owner").await;
    let admin = app.user("admin").await;
    let viewer = app.user("viewer").await;
    let analyst = app.user("analyst").await;
    let outsider = app.user("outsider").await;
    let org = app.organization(&owner, "acme").await;
    app.add_member(&owner, &org, &admin, "ADMIN").await;
    app.add_member(&owner, &org, &viewer, "VIEWER").await;
    app.add_member(&owner, &org, &analyst, "ANALYST").await;

    // ADMIN changes a role.
    let before = app.audit_rows().await.len();
    let res = app
        .gql(
            Some(&admin.token),
            ROLE,
            json!({"input": {"organizationId": org, "userId": analyst.id, "role": "VIEWER"}}),
        )
        .await;
    let (res, event) = one_event(&app, res, before).await;
    assert_eq!(res.data()["updateMemberRole"]["role"], "VIEWER");
    assert_eq!(event.action, "member.role_change");
    assert_eq!(event.old_values, Some(json!({"role": "ANALYST"})));
    assert_eq!(event.new_values, Some(json!({"role": "VIEWER"})));

    // A role change, or a removal, of someone who is not a member.
    check_refused(
        &app,
        vec![
            refused(
                Some(&admin),
                ROLE,
                json!({"input": {"organizationId": org, "userId": outsider.id, "role": "VIEWER"}}),
                "NOT_FOUND",
            ),
            refused(
                Some(&admin),
                REMOVE,
                json!({"input": {"organizationId": org, "userId": outsider.id}}),
                "NOT_FOUND",
            ),
        ],
    )
    .await;

    // A VIEWER leaves by themself.
    let before = app.audit_rows().await.len();
    let res = app
        .gql(
            Some(&viewer.token),
            REMOVE,
            json!({"input": {"organizationId": org, "userId": viewer.id}}),
        )
        .await;
    let (res, event) = one_event(&app, res, before).await;
    assert_eq!(res.data()["removeMember"], true);
    assert_eq!(event.action, "member.remove");
    assert_eq!(event.organization_id, Some(raw_uuid(&org)));
    assert_eq!(role_of(&app, &owner.token, &org, &viewer).await, None);
    let res = app.gql(Some(&viewer.token), ORG, json!({"id": org})).await;
    assert!(res.data()["organization"].is_null());

    // An ADMIN removes someone else.
    let before = app.audit_rows().await.len();
    let res = app
        .gql(
            Some(&admin.token),
            REMOVE,
            json!({"input": {"organizationId": org, "userId": analyst.id}}),
        )
        .await;
    let (_, event) = one_event(&app, res, before).await;
    assert_eq!(event.action, "member.remove");
    assert_eq!(role_of(&app, &owner.token, &org, &analyst).await, None);
}

#[tokio::test]
async fn transfer_ownership() {
    let app = TestApp::spawn().await;
    let owner = app.user("owner").await;
    let bob = app.user("bob").await;
    let outsider = app.user("outsider").await;
    let org = app.organization(&owner, "acme").await;
    app.add_member(&owner, &org, &bob, "VIEWER").await;

    let to = |user: &TestUser| json!({"input": {"organizationId": org, "toUserId": user.id}});
    check_refused(
        &app,
        vec![
            refused(Some(&owner), TRANSFER, to(&outsider), "NOT_FOUND"),
            // A VIEWER cannot take the organization.
            refused(Some(&bob), TRANSFER, to(&bob), "FORBIDDEN"),
        ],
    )
    .await;

    let before = app.audit_rows().await.len();
    let res = app
        .gql(
            Some(&owner.token),
            TRANSFER,
            json!({"input": {"organizationId": org, "toUserId": bob.id}}),
        )
        .await;
    let (res, event) = one_event(&app, res, before).await;
    assert_eq!(res.data()["transferOwnership"]["id"], org.as_str());
    assert_eq!(res.data()["transferOwnership"]["viewerRole"], "ADMIN");
    assert_eq!(event.action, "organization.ownership_transfer");
    assert_eq!(event.organization_id, Some(raw_uuid(&org)));
    assert_eq!(
        role_of(&app, &bob.token, &org, &bob).await.as_deref(),
        Some("OWNER")
    );
    assert_eq!(
        role_of(&app, &bob.token, &org, &owner).await.as_deref(),
        Some("ADMIN")
    );

    // The former owner is an ADMIN now: no more slug changes.
    let slug = json!({"input": {"id": org, "version": 1, "slug": "mine"}});
    check_refused(&app, vec![refused(Some(&owner), UPDATE, slug, "FORBIDDEN")]).await;
}

#[tokio::test]
async fn curl_session_end_to_end() {
    let app = TestApp::spawn().await;
    // register → login
    let reg = app
        .gql(
            None,
            "mutation($input: RegisterInput!) { register(input: $input) { user { id } } }",
            json!({"input": {"email": "olga@example.com", "password": PASSWORD, "displayName": "Olga"}}),
        )
        .await;
    let olga_id = reg.data()["register"]["user"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let login = app
        .gql(
            None,
            "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token user { id } } }",
            json!({"e": "olga@example.com", "p": PASSWORD}),
        )
        .await;
    assert_eq!(login.status, axum::http::StatusCode::OK);
    let token = login.data()["login"]["token"].as_str().unwrap().to_owned();
    assert_eq!(login.data()["login"]["user"]["id"], olga_id.as_str());
    let me = app
        .gql(Some(&token), "{ me { id email lastLoginAt } }", json!({}))
        .await;
    assert_eq!(me.data()["me"]["email"], "olga@example.com");
    assert!(me.data()["me"]["lastLoginAt"].is_string());

    // createOrganization → addMember (VIEWER)
    let created = app
        .gql(
            Some(&token),
            CREATE,
            json!({"input": {"name": "Acme", "slug": "acme"}}),
        )
        .await;
    let org = created.data()["createOrganization"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let vic = app.user("vic").await;
    let added = app
        .gql(
            Some(&token),
            ADD,
            json!({"input": {"organizationId": org, "email": vic.email, "role": "VIEWER"}}),
        )
        .await;
    assert_eq!(added.data()["addMember"]["role"], "VIEWER");

    // The viewer reads it but cannot update it.
    let read = app.gql(Some(&vic.token), ORG, json!({"id": org})).await;
    assert_eq!(read.data()["organization"]["name"], "Acme");
    assert_eq!(read.data()["organization"]["viewerRole"], "VIEWER");
    let mine = json!({"input": {"id": org, "version": 1, "name": "Mine"}});
    check_refused(
        &app,
        vec![refused(Some(&vic), UPDATE, mine.clone(), "FORBIDDEN")],
    )
    .await;

    // A stranger: the organization and its people do not exist.
    let stranger = app.user("stranger").await;
    let res = app
        .gql(Some(&stranger.token), ORG, json!({"id": org}))
        .await;
    assert!(res.data()["organization"].is_null(), "{:#}", res.body);
    let res = app
        .gql(
            Some(&stranger.token),
            "query($id: ID!) { node(id: $id) { id } }",
            json!({"id": org}),
        )
        .await;
    assert!(res.data()["node"].is_null(), "{:#}", res.body);
    check_refused(
        &app,
        vec![refused(Some(&stranger), UPDATE, mine, "NOT_FOUND")],
    )
    .await;
    let res = app
        .gql(
            Some(&stranger.token),
            "query($id: ID!) { node(id: $id) { id ... on User { email displayName } } }",
            json!({"id": olga_id}),
        )
        .await;
    assert!(res.data()["node"].is_null(), "{:#}", res.body);

    // The history: each mutation one event.
    let actions = app.audit_actions().await;
    assert_eq!(
        actions
            .iter()
            .filter(|a| a.starts_with("organization.") || a.starts_with("member."))
            .collect::<Vec<_>>(),
        vec!["organization.create", "member.add"]
    );
}
