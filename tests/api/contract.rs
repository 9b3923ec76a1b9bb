//! Schema contract tests.
//!
//! The design contract lives in `../shared/design/schema.target.graphql`, and the repository
//! carries a copy of it (`tests/api/schema.target.graphql`) so that a clone without `../shared`
//! checks its schema too; the repository's `schema.graphql` is exported from the Rust schema
//! (`Schema::sdl()`). Both are parsed into a schema model and compared (`contract/`):
//!
//! * **mismatches** are things present on both sides that disagree (types, defaults, kinds,
//!   implemented interfaces, union members, newly required arguments). They break clients, so
//!   `contract_has_no_mismatches` must always pass.
//! * **missing** items are parts of the target that are not built yet. `contract_is_complete` checks
//!   them against the explicit allow-list `tests/api/contract_pending.txt`, which may only shrink.
//!
//! Regenerate the allow-list (after building features, or once at the start) with
//! `FV_UPDATE_CONTRACT_PENDING=1 cargo test --test api contract_is_complete`.

mod diff;
mod files;
mod model;

use diff::{ContractReport, compare, render_list, render_missing};
use files::{
    DEFAULT_PENDING_HEADER, PENDING_PATH, SHARED_TARGET_PATH, TARGET_PATH, UPDATE_ENV,
    check_pending, load_report, parse_pending, pending_header, report_against,
};
use model::parse_model;

#[test]
fn contract_has_no_mismatches() {
    let report = load_report();
    // Always shown (run with --nocapture to see it on success) so the developer sees progress.
    eprintln!("{}", render_missing(&report));
    assert!(
        report.mismatches.is_empty(),
        "schema.graphql contradicts the design contract\n{}",
        render_list("mismatches", &report.mismatches)
    );
}

#[test]
fn contract_is_complete() {
    let report = load_report();
    let existing = std::fs::read_to_string(PENDING_PATH).unwrap_or_default();
    if std::env::var(UPDATE_ENV).is_ok_and(|v| v == "1") {
        let mut text = pending_header(&existing);
        text.push('\n');
        for item in &report.missing {
            text.push_str(item);
            text.push('\n');
        }
        std::fs::write(PENDING_PATH, text)
            .unwrap_or_else(|e| panic!("cannot write {PENDING_PATH}: {e}"));
        eprintln!(
            "rewrote {PENDING_PATH} with {} pending items",
            report.missing.len()
        );
        return;
    }
    if let Some(msg) = check_pending(&report.missing, &parse_pending(&existing)) {
        // Regenerating is the right fix only when the target itself changed; otherwise a
        // "not listed" item means the schema lost something the contract requires.
        panic!(
            "{msg}\nIf this is intended (the target gained items, or features landed), regenerate: \
             {UPDATE_ENV}=1 cargo test --test api contract_is_complete"
        );
    }
}

mod unit {
    use super::*;

    const BASE: &str = r#"
        scalar Date  # comments are fine
        interface Node { id: ID! }
        enum SortDirection { ASC DESC }
        enum ScenarioKind { BASE CUSTOM }
        union Actor = User | ApiKey
        type User implements Node { id: ID! name: String! }
        type ApiKey implements Node { id: ID! }
        input Order { direction: SortDirection! = ASC  tags: [String!] = ["a"] }
        type Query {
          user(id: ID!): User
          users(first: Int, after: String, order: Order, kind: ScenarioKind = CUSTOM): [User!]!
        }
    "#;

    fn report(target: &str, actual: &str) -> ContractReport {
        compare(
            &parse_model(target).expect("target parses"),
            &parse_model(actual).expect("actual parses"),
        )
    }

    fn clean(r: &ContractReport) {
        assert!(r.mismatches.is_empty(), "{:?}", r.mismatches);
        assert!(r.missing.is_empty(), "{:?}", r.missing);
    }

    #[test]
    fn identical_schemas_are_clean() {
        clean(&report(BASE, BASE));
    }

    #[test]
    fn async_graphql_style_export_is_clean() {
        // Descriptions, directives, explicit defaults spelled differently, reordered definitions
        // and a `schema {}` block with different root names, as `Schema::sdl()` writes them.
        let actual = r#"
            directive @oneOf on INPUT_OBJECT
            """An ISO date"""
            scalar Date
            type ApiKey implements Node { id: ID! }
            union Actor = ApiKey | User
            enum ScenarioKind { BASE CUSTOM EXTRA }
            enum SortDirection { ASC DESC }
            interface Node { "The id" id: ID! }
            input Order @oneOf { tags: [String!] = "a"  direction: SortDirection! = ASC }
            type QueryRoot {
              users(first: Int, after: String, order: Order = null, kind: ScenarioKind = CUSTOM,
                    extra: Boolean! = false, other: Int): [User!]!
              user(id: ID!): User @deprecated(reason: "x")
              extraField: String
            }
            type User implements Node { id: ID! name: String! }
            schema { query: QueryRoot }
        "#;
        clean(&report(BASE, actual));
    }

    #[test]
    fn retyped_field_is_a_mismatch() {
        let actual = BASE.replace("name: String!", "name: String");
        let r = report(BASE, &actual);
        assert_eq!(
            r.mismatches,
            ["User.name: type String! in target, String in actual"]
        );
        assert!(r.missing.is_empty());
    }

    #[test]
    fn retyped_argument_is_a_mismatch() {
        let actual = BASE.replace("user(id: ID!)", "user(id: String!)");
        assert_eq!(
            report(BASE, &actual).mismatches,
            ["Query.user(id): type ID! in target, String! in actual"]
        );
    }

    #[test]
    fn missing_field_enum_value_argument_and_member_are_missing() {
        let actual = BASE
            .replace("name: String!", "")
            .replace("BASE CUSTOM", "BASE")
            .replace("after: String, ", "")
            .replace("User | ApiKey", "User")
            .replace("type ApiKey implements Node { id: ID! }", "");
        let r = report(BASE, &actual);
        assert!(r.mismatches.is_empty(), "{:?}", r.mismatches);
        assert_eq!(
            r.missing,
            [
                "enum ScenarioKind.CUSTOM",
                "union Actor = ApiKey",
                "User.name",
                "type ApiKey",
                "ApiKey implements Node",
                "ApiKey.id",
                "Query.users(after)",
            ]
        );
    }

    #[test]
    fn missing_field_lists_its_arguments() {
        // So that adding the field with only some arguments never grows the missing list.
        let actual = BASE.replace(
            "users(first: Int, after: String, order: Order, kind: ScenarioKind = CUSTOM): [User!]!",
            "",
        );
        assert_eq!(
            report(BASE, &actual).missing,
            [
                "Query.users",
                "Query.users(first)",
                "Query.users(after)",
                "Query.users(order)",
                "Query.users(kind)",
            ]
        );
    }

    #[test]
    fn changed_default_is_a_mismatch() {
        let actual = BASE
            .replace("= CUSTOM", "= BASE")
            .replace("= ASC", "= DESC")
            .replace("tags: [String!] = [\"a\"]", "tags: [String!]");
        assert_eq!(
            report(BASE, &actual).mismatches,
            [
                "Order.direction: default ASC in target, DESC in actual",
                "Order.tags: default [\"a\"] in target, none in actual",
                "Query.users(kind): default CUSTOM in target, BASE in actual",
            ]
        );
    }

    #[test]
    fn numeric_defaults_compare_by_value() {
        let target = "type Query { f(a: Float = 1, b: Int = 2): Int }";
        let actual = "type Query { f(a: Float = 1.0, b: Int = 2): Int }";
        clean(&report(target, actual));
        let actual = "type Query { f(a: Float = 1.5, b: Int = 2): Int }";
        assert_eq!(
            report(target, actual).mismatches,
            ["Query.f(a): default 1 in target, 1.5 in actual"]
        );
    }

    #[test]
    fn added_optional_argument_is_fine() {
        let actual = BASE.replace("user(id: ID!)", "user(id: ID!, a: Int, b: Int! = 3)");
        clean(&report(BASE, &actual));
    }

    #[test]
    fn added_required_argument_is_a_mismatch() {
        let actual = BASE.replace("user(id: ID!)", "user(id: ID!, tenant: ID!)");
        let r = report(BASE, &actual);
        assert_eq!(r.mismatches.len(), 1, "{:?}", r.mismatches);
        assert!(
            r.mismatches[0]
                .starts_with("Query.user(tenant): argument of type ID! is not in the target"),
            "{}",
            r.mismatches[0]
        );
    }

    #[test]
    fn added_required_input_field_is_a_mismatch() {
        let actual = BASE.replace("input Order {", "input Order { tenant: ID! ");
        let r = report(BASE, &actual);
        assert_eq!(r.mismatches.len(), 1, "{:?}", r.mismatches);
        assert!(r.mismatches[0].starts_with("Order.tenant: input field of type ID!"));
    }

    #[test]
    fn kind_change_and_lost_interface_are_mismatches() {
        let actual = BASE
            .replace("input Order {", "type Order {")
            .replace("= ASC", "")
            .replace("= [\"a\"]", "")
            .replace("type User implements Node", "type User");
        assert_eq!(
            report(BASE, &actual).mismatches,
            [
                "User: does not implement Node",
                "Order: input in target, type in actual",
            ]
        );
    }

    #[test]
    fn union_member_that_exists_elsewhere_is_a_mismatch() {
        let actual = BASE.replace("User | ApiKey", "User");
        assert_eq!(
            report(BASE, &actual).mismatches,
            ["union Actor: member ApiKey missing"]
        );
    }

    #[test]
    fn roots_are_mapped_through_schema_definition() {
        let target = "type Query { a: Int }  type Mutation { b(x: Int): Query! }";
        let actual = "schema { query: QueryRoot mutation: MutationRoot }
                      type QueryRoot { a: Int }  type MutationRoot { b(x: Int): QueryRoot! }";
        clean(&report(target, actual));

        let actual = "schema { query: QueryRoot } type QueryRoot { a: String }";
        let r = report(target, actual);
        assert_eq!(
            r.mismatches,
            ["Query.a: type Int in target, String in actual"]
        );
        assert_eq!(r.missing, ["type Mutation", "Mutation.b", "Mutation.b(x)"]);
    }

    #[test]
    fn root_name_collision_is_rejected() {
        let err = parse_model(
            "schema { query: QueryRoot } type QueryRoot { a: Int } type Query { b: Int }",
        )
        .unwrap_err();
        assert!(err.contains("`Query`"), "{err}");
    }

    #[test]
    fn type_extensions_are_merged() {
        let actual = "type Query { a: Int } extend type Query { b: Int }";
        clean(&report("type Query { a: Int b: Int }", actual));
    }

    #[test]
    fn pending_list_can_only_shrink() {
        let missing = vec!["A.b".to_string(), "A.c".to_string()];
        let pending = parse_pending("# header\n\nA.b\n  A.c  \n");
        assert_eq!(check_pending(&missing, &pending), None);

        let msg = check_pending(&missing, &parse_pending("A.b\nA.d\n")).expect("fails");
        assert!(
            msg.contains("not listed in tests/api/contract_pending.txt"),
            "{msg}"
        );
        assert!(msg.contains("  A.c\n"), "{msg}");
        assert!(msg.contains("remove these lines"), "{msg}");
        assert!(msg.contains("  A.d\n"), "{msg}");
    }

    #[test]
    fn pending_header_is_kept() {
        assert_eq!(pending_header("# one\n# two\nA.b\n"), "# one\n# two");
        assert_eq!(pending_header("A.b\n"), DEFAULT_PENDING_HEADER);
    }

    #[test]
    fn render_missing_has_count_header() {
        let r = ContractReport {
            mismatches: vec![],
            missing: vec![
                "Organization.models".into(),
                "enum ScenarioKind.CUSTOM".into(),
            ],
        };
        assert_eq!(
            render_missing(&r),
            "target fields not built yet (2):\n  Organization.models\n  enum ScenarioKind.CUSTOM\n"
        );
    }

    #[test]
    fn vendored_target_is_current() {
        // Without ../shared (a user's clone) the vendored copy is the contract: say so, once.
        let Ok(shared) = std::fs::read_to_string(SHARED_TARGET_PATH) else {
            eprintln!(
                "no ../shared/design/schema.target.graphql beside the repository: \
                 the vendored tests/api/schema.target.graphql is the contract"
            );
            return;
        };
        let vendored = std::fs::read_to_string(TARGET_PATH).expect("vendored target readable");
        assert!(
            shared == vendored,
            "the design contract changed: cp ../shared/design/schema.target.graphql tests/api/ \
             and list its new items as pending (FV_UPDATE_CONTRACT_PENDING=1)"
        );
        // And the schema against the shared file itself, in full.
        let report = report_against(SHARED_TARGET_PATH);
        assert!(
            report.mismatches.is_empty(),
            "schema.graphql contradicts ../shared/design/schema.target.graphql\n{}",
            render_list("mismatches", &report.mismatches)
        );
        assert_eq!(
            check_pending(
                &report.missing,
                &parse_pending(&std::fs::read_to_string(PENDING_PATH).unwrap_or_default())
            ),
            None
        );
    }

    #[test]
    fn target_contract_parses() {
        let text = std::fs::read_to_string(TARGET_PATH).expect("target readable");
        let model = parse_model(&text).expect("target parses");
        assert!(model.get("Subscription").is_some());
        // Compared with itself the contract is trivially satisfied.
        clean(&compare(&model, &model));
    }
}
