//! Schema contract test.
//!
//! The design contract lives in `../shared/design/schema.target.graphql`; the repository's
//! `schema.graphql` is exported from the Rust schema (`Schema::sdl()`). Both files are parsed into a
//! [`SchemaModel`] and [`compare`]d:
//!
//! * **mismatches** are things present on both sides that disagree (types, defaults, kinds,
//!   implemented interfaces, union members, newly required arguments). They break clients, so
//!   `contract_has_no_mismatches` must always pass.
//! * **missing** items are parts of the target that are not built yet. `contract_is_complete` checks
//!   them against the explicit allow-list `tests/api/contract_pending.txt`, which may only shrink.
//!
//! Regenerate the allow-list (after building features, or once at the start) with
//! `FV_UPDATE_CONTRACT_PENDING=1 cargo test --test api contract_is_complete`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;

// The parser's value and name types live in async-graphql-value, which is not a direct
// dependency; async-graphql re-exports the same types.
use async_graphql::parser::types::{
    BaseType, FieldDefinition, InputValueDefinition, Type, TypeKind, TypeSystemDefinition,
};
use async_graphql::parser::{Positioned, parse_schema};
use async_graphql::{Name, Value};

/// The design contract as the team keeps it, beside the repository.
const SHARED_TARGET_PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/design/schema.target.graphql"
);
/// The copy of the contract the repository carries, so a clone without `../shared` still checks
/// its schema; `vendored_target_is_current` keeps it equal to the shared one where that exists.
const TARGET_PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/api/schema.target.graphql"
);
const ACTUAL_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql");
const PENDING_PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/api/contract_pending.txt"
);
const UPDATE_ENV: &str = "FV_UPDATE_CONTRACT_PENDING";

/// Written when regenerating a pending file that has no header of its own.
const DEFAULT_PENDING_HEADER: &str = "\
# Target schema items not built yet: one item per line, exactly as the contract report prints them.
# Lines starting with `#` and blank lines are ignored. This list may only shrink: contract_is_complete
# fails when an item here is built (remove the line) or when something missing is not listed here.
# Regenerate: FV_UPDATE_CONTRACT_PENDING=1 cargo test --test api contract_is_complete";

/// Canonical names of the root operation types. Roots are compared by role, not by name, because
/// the target says `Query` while async-graphql exports e.g. `schema { query: QueryRoot }`.
const ROOT_NAMES: [&str; 3] = ["Query", "Mutation", "Subscription"];

/// A parsed SDL document reduced to what the contract cares about: names, kinds, types as written
/// and normalised defaults. Descriptions, comments and directives are ignored on purpose: they are
/// documentation or server behaviour, not the shape clients compile against.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SchemaModel {
    /// In document order, with the root operation types renamed to `Query`/`Mutation`/`Subscription`.
    pub types: Vec<(String, TypeModel)>,
}

impl SchemaModel {
    pub fn get(&self, name: &str) -> Option<&TypeModel> {
        lookup(&self.types, name)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum TypeModel {
    Scalar,
    Object(Composite),
    Interface(Composite),
    Union(Vec<String>),
    Enum(Vec<String>),
    InputObject(Vec<(String, InputValue)>),
}

/// Fields of an object or interface plus the interfaces it implements. Vectors keep document
/// order so reports read in the same order as the target file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Composite {
    pub implements: Vec<String>,
    pub fields: Vec<(String, Field)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    /// The type as written, e.g. `[Membership!]!`.
    pub ty: String,
    pub args: Vec<(String, InputValue)>,
}

/// An argument or input field.
#[derive(Debug, Clone, PartialEq)]
pub struct InputValue {
    pub ty: String,
    /// Normalised default value text (see [`normalise_default`]); `None` when there is none.
    pub default: Option<String>,
}

impl InputValue {
    /// Adding such an argument/input field makes every existing request that omits it invalid.
    fn is_required(&self) -> bool {
        self.ty.ends_with('!') && self.default.is_none()
    }
}

impl TypeModel {
    fn kind_name(&self) -> &'static str {
        match self {
            TypeModel::Scalar => "scalar",
            TypeModel::Object(_) => "type",
            TypeModel::Interface(_) => "interface",
            TypeModel::Union(_) => "union",
            TypeModel::Enum(_) => "enum",
            TypeModel::InputObject(_) => "input",
        }
    }
}

/// Result of [`compare`]. Every entry is a single line; `missing` entries are the exact strings
/// used in `contract_pending.txt`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContractReport {
    pub mismatches: Vec<String>,
    pub missing: Vec<String>,
}

/// Parses an SDL document into a [`SchemaModel`].
pub fn parse_model(sdl: &str) -> Result<SchemaModel, String> {
    let doc = parse_schema(sdl).map_err(|e| format!("SDL parse error: {e}"))?;

    // First pass: the root operation types. Without a `schema {}` definition the spec's default
    // names apply, which is the identity mapping.
    let mut roots: HashMap<String, &'static str> = HashMap::new();
    let mut explicit_schema = false;
    for def in &doc.definitions {
        if let TypeSystemDefinition::Schema(schema) = def {
            explicit_schema = true;
            let schema = &schema.node;
            for (name, canonical) in [
                (&schema.query, ROOT_NAMES[0]),
                (&schema.mutation, ROOT_NAMES[1]),
                (&schema.subscription, ROOT_NAMES[2]),
            ] {
                if let Some(name) = name {
                    roots.insert(name.node.to_string(), canonical);
                }
            }
        }
    }
    if explicit_schema {
        // A non-root type that happens to be called `Query` would collide with the renamed root.
        for def in &doc.definitions {
            if let TypeSystemDefinition::Type(t) = def {
                let name = t.node.name.node.as_str();
                if ROOT_NAMES.contains(&name) && roots.get(name).is_none_or(|c| *c != name) {
                    return Err(format!(
                        "type `{name}` is not the {} root but shares its conventional name",
                        name.to_lowercase()
                    ));
                }
            }
        }
    }
    let rename = |name: &str| -> String {
        roots
            .get(name)
            .map_or_else(|| name.to_string(), |c| (*c).to_string())
    };
    let ty_text = |ty: &Type| type_text(ty, &rename);
    let input_value = |v: &InputValueDefinition| InputValue {
        ty: ty_text(&v.ty.node),
        default: normalise_default(v.default_value.as_ref().map(|d| &d.node), &v.ty.node),
    };
    let field = |f: &FieldDefinition| {
        (
            f.name.node.to_string(),
            Field {
                ty: ty_text(&f.ty.node),
                args: f
                    .arguments
                    .iter()
                    .map(|a| (a.node.name.node.to_string(), input_value(&a.node)))
                    .collect(),
            },
        )
    };
    let composite =
        |implements: &[Positioned<Name>], fields: &[Positioned<FieldDefinition>]| Composite {
            implements: implements.iter().map(|n| rename(&n.node)).collect(),
            fields: fields.iter().map(|f| field(&f.node)).collect(),
        };

    let mut model = SchemaModel::default();
    for def in &doc.definitions {
        // Directive definitions (`directive @oneOf ...`) are server machinery, not contract.
        let TypeSystemDefinition::Type(t) = def else {
            continue;
        };
        let t = &t.node;
        let name = rename(&t.name.node);
        let new = match &t.kind {
            TypeKind::Scalar => TypeModel::Scalar,
            TypeKind::Object(o) => TypeModel::Object(composite(&o.implements, &o.fields)),
            TypeKind::Interface(i) => TypeModel::Interface(composite(&i.implements, &i.fields)),
            TypeKind::Union(u) => {
                TypeModel::Union(u.members.iter().map(|m| rename(&m.node)).collect())
            }
            TypeKind::Enum(e) => TypeModel::Enum(
                e.values
                    .iter()
                    .map(|v| v.node.value.node.to_string())
                    .collect(),
            ),
            TypeKind::InputObject(i) => TypeModel::InputObject(
                i.fields
                    .iter()
                    .map(|f| (f.node.name.node.to_string(), input_value(&f.node)))
                    .collect(),
            ),
        };
        match model.types.iter_mut().find(|(n, _)| *n == name) {
            None => model.types.push((name, new)),
            // `extend type X { ... }` (or a repeated definition) adds to the existing type.
            Some((_, existing)) => {
                merge(existing, new).map_err(|e| format!("type `{name}`: {e}"))?
            }
        }
    }
    Ok(model)
}

fn merge(existing: &mut TypeModel, new: TypeModel) -> Result<(), String> {
    match (existing, new) {
        (TypeModel::Scalar, TypeModel::Scalar) => {}
        (TypeModel::Object(a), TypeModel::Object(b))
        | (TypeModel::Interface(a), TypeModel::Interface(b)) => {
            a.implements.extend(b.implements);
            a.fields.extend(b.fields);
        }
        (TypeModel::Union(a), TypeModel::Union(b)) | (TypeModel::Enum(a), TypeModel::Enum(b)) => {
            a.extend(b)
        }
        (TypeModel::InputObject(a), TypeModel::InputObject(b)) => a.extend(b),
        (a, b) => {
            return Err(format!(
                "defined as {} and extended as {}",
                a.kind_name(),
                b.kind_name()
            ));
        }
    }
    Ok(())
}

/// Type text as written (`[Membership!]!`), with root type names mapped like type definitions.
fn type_text(ty: &Type, rename: &dyn Fn(&str) -> String) -> String {
    let base = match &ty.base {
        BaseType::Named(name) => rename(name),
        BaseType::List(inner) => format!("[{}]", type_text(inner, rename)),
    };
    if ty.nullable {
        base
    } else {
        format!("{base}!")
    }
}

/// Canonical text of a default value, so that spellings with identical meaning compare equal:
/// * an explicit `= null` is the same as no default (async-graphql resolves both to `None`);
/// * numbers compare by value (`1`, `1.0` and `1e0` are all `1`);
/// * input objects compare with sorted keys (field order carries no meaning);
/// * a single value for a list type is wrapped in a list, mirroring GraphQL input coercion.
///
/// Enum values and strings stay distinct (`ASC` vs `"ASC"`): only the former is valid for an enum.
pub fn normalise_default(value: Option<&Value>, ty: &Type) -> Option<String> {
    match value {
        None | Some(Value::Null) => None,
        Some(v) => {
            let mut out = String::new();
            write_value(&mut out, v, Some(ty));
            Some(out)
        }
    }
}

fn write_value(out: &mut String, value: &Value, ty: Option<&Type>) {
    let list_item = ty.and_then(|t| match &t.base {
        BaseType::List(inner) => Some(inner.as_ref()),
        BaseType::Named(_) => None,
    });
    match (value, list_item) {
        (Value::List(items), _) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_value(out, item, list_item);
            }
            out.push(']');
        }
        (Value::Null, _) => out.push_str("null"),
        (single, Some(item_ty)) => {
            out.push('[');
            write_value(out, single, Some(item_ty));
            out.push(']');
        }
        (Value::Number(n), None) => {
            let text = match (n.as_i64(), n.as_u64(), n.as_f64()) {
                (Some(i), _, _) => i.to_string(),
                (_, Some(u), _) => u.to_string(),
                // Integral floats below 2^53 are exact, so print them like integers.
                (_, _, Some(f)) if f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0 => {
                    format!("{}", f as i64)
                }
                (_, _, Some(f)) => f.to_string(),
                _ => n.to_string(),
            };
            out.push_str(&text);
        }
        (Value::Object(map), None) => {
            let sorted: BTreeMap<&str, &Value> = map.iter().map(|(k, v)| (k.as_str(), v)).collect();
            out.push('{');
            for (i, (k, v)) in sorted.into_iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                // Field types of nested input objects are not tracked here; list coercion inside
                // them is not normalised, which is acceptable for a contract check.
                let _ = write!(out, "{k}: ");
                write_value(out, v, None);
            }
            out.push('}');
        }
        (other, None) => {
            let _ = write!(out, "{other}");
        }
    }
}

fn lookup<'a, T>(items: &'a [(String, T)], name: &str) -> Option<&'a T> {
    items.iter().find(|(n, _)| n == name).map(|(_, v)| v)
}

/// Compares the `actual` schema against the `target` contract. Pure: no I/O.
///
/// Missing items are enumerated exhaustively (a missing type also lists all its fields, a missing
/// field all its arguments) so that the missing set only ever shrinks as features land: building a
/// type with half of its fields must not make new lines appear in `contract_pending.txt`.
pub fn compare(target: &SchemaModel, actual: &SchemaModel) -> ContractReport {
    let mut report = ContractReport::default();
    for (name, t) in &target.types {
        match actual.get(name) {
            None => list_missing_type(&mut report.missing, name, t),
            Some(a) => compare_type(&mut report, actual, name, t, a),
        }
    }
    report
}

fn list_missing_type(missing: &mut Vec<String>, name: &str, t: &TypeModel) {
    missing.push(format!("{} {name}", t.kind_name()));
    match t {
        TypeModel::Scalar => {}
        TypeModel::Object(c) | TypeModel::Interface(c) => {
            for iface in &c.implements {
                missing.push(format!("{name} implements {iface}"));
            }
            for (field, f) in &c.fields {
                list_missing_field(missing, name, field, f);
            }
        }
        TypeModel::Union(members) => {
            for m in members {
                missing.push(format!("union {name} = {m}"));
            }
        }
        TypeModel::Enum(values) => {
            for v in values {
                missing.push(format!("enum {name}.{v}"));
            }
        }
        TypeModel::InputObject(fields) => {
            for (field, _) in fields {
                missing.push(format!("{name}.{field}"));
            }
        }
    }
}

fn list_missing_field(missing: &mut Vec<String>, type_name: &str, field: &str, f: &Field) {
    missing.push(format!("{type_name}.{field}"));
    for (arg, _) in &f.args {
        missing.push(format!("{type_name}.{field}({arg})"));
    }
}

fn compare_type(
    report: &mut ContractReport,
    actual_schema: &SchemaModel,
    name: &str,
    target: &TypeModel,
    actual: &TypeModel,
) {
    match (target, actual) {
        (TypeModel::Scalar, TypeModel::Scalar) => {}
        (TypeModel::Object(t), TypeModel::Object(a))
        | (TypeModel::Interface(t), TypeModel::Interface(a)) => {
            for iface in &t.implements {
                if a.implements.contains(iface) {
                    continue;
                }
                // An interface that exists but is not implemented is wiring gone wrong; one that
                // does not exist yet is simply not built.
                if actual_schema.get(iface).is_some() {
                    report
                        .mismatches
                        .push(format!("{name}: does not implement {iface}"));
                } else {
                    report.missing.push(format!("{name} implements {iface}"));
                }
            }
            for (field, tf) in &t.fields {
                match lookup(&a.fields, field) {
                    None => list_missing_field(&mut report.missing, name, field, tf),
                    Some(af) => compare_field(report, name, field, tf, af),
                }
            }
        }
        (TypeModel::Union(t), TypeModel::Union(a)) => {
            // Same reasoning as for interfaces: a member type that exists must be in the union.
            for m in t.iter().filter(|m| !a.contains(m)) {
                if actual_schema.get(m).is_some() {
                    report
                        .mismatches
                        .push(format!("union {name}: member {m} missing"));
                } else {
                    report.missing.push(format!("union {name} = {m}"));
                }
            }
        }
        (TypeModel::Enum(t), TypeModel::Enum(a)) => {
            for v in t.iter().filter(|v| !a.contains(v)) {
                report.missing.push(format!("enum {name}.{v}"));
            }
        }
        (TypeModel::InputObject(t), TypeModel::InputObject(a)) => {
            compare_input_values(report, &format!("{name}."), "", "input field", t, a);
        }
        (t, a) => report.mismatches.push(format!(
            "{name}: {} in target, {} in actual",
            t.kind_name(),
            a.kind_name()
        )),
    }
}

fn compare_field(report: &mut ContractReport, type_name: &str, field: &str, t: &Field, a: &Field) {
    if t.ty != a.ty {
        report.mismatches.push(format!(
            "{type_name}.{field}: type {} in target, {} in actual",
            t.ty, a.ty
        ));
    }
    compare_input_values(
        report,
        &format!("{type_name}.{field}("),
        ")",
        "argument",
        &t.args,
        &a.args,
    );
}

/// Shared by field arguments (`Type.field(arg)`) and input object fields (`Input.field`): both
/// are input values with a type and a default, and both break clients the same ways.
fn compare_input_values(
    report: &mut ContractReport,
    prefix: &str,
    suffix: &str,
    what: &str,
    target: &[(String, InputValue)],
    actual: &[(String, InputValue)],
) {
    for (name, t) in target {
        let path = format!("{prefix}{name}{suffix}");
        let Some(a) = lookup(actual, name) else {
            report.missing.push(path);
            continue;
        };
        if t.ty != a.ty {
            report.mismatches.push(format!(
                "{path}: type {} in target, {} in actual",
                t.ty, a.ty
            ));
        }
        if t.default != a.default {
            let show = |d: &Option<String>| d.clone().unwrap_or_else(|| "none".to_string());
            report.mismatches.push(format!(
                "{path}: default {} in target, {} in actual",
                show(&t.default),
                show(&a.default)
            ));
        }
    }
    // Extra optional inputs are a compatible extension; extra required ones reject every request
    // written against the target.
    for (name, a) in actual {
        if lookup(target, name).is_none() && a.is_required() {
            report.mismatches.push(format!(
                "{prefix}{name}{suffix}: {what} of type {} is not in the target and is required \
                 (non-null without a default), which breaks existing clients",
                a.ty
            ));
        }
    }
}

/// The progress view printed by the tests: a count header and one missing item per line.
pub fn render_missing(report: &ContractReport) -> String {
    let mut out = format!("target fields not built yet ({}):\n", report.missing.len());
    for item in &report.missing {
        let _ = writeln!(out, "  {item}");
    }
    out
}

fn render_list(header: &str, items: &[String]) -> String {
    let mut out = format!("{header} ({}):\n", items.len());
    for item in items {
        let _ = writeln!(out, "  {item}");
    }
    out
}

fn read_file(path: &str, what: &str, hint: &str) -> String {
    match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => panic!("cannot read {what} at {path}: {e}\n{hint}"),
    }
}

/// Parses both files and compares them; panics with a readable message when a file is absent or
/// not valid SDL, since no contract check is possible then.
fn load_report() -> ContractReport {
    let target = read_file(
        TARGET_PATH,
        "the design contract",
        "The repository carries it in tests/api/ (a copy of ../shared/design/).",
    );
    let actual = read_file(
        ACTUAL_PATH,
        "the exported schema",
        "schema.graphql has not been generated yet: export the Rust schema's SDL \
         (async-graphql `Schema::sdl()`) to schema.graphql at the repository root.",
    );
    let target = parse_model(&target).unwrap_or_else(|e| panic!("{TARGET_PATH}: {e}"));
    let actual = parse_model(&actual).unwrap_or_else(|e| panic!("{ACTUAL_PATH}: {e}"));
    compare(&target, &actual)
}

/// Items listed in the pending file; `#` comments and blank lines are skipped.
fn parse_pending(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

/// The leading block of `#` lines, kept when the file is regenerated.
fn pending_header(text: &str) -> String {
    let header: Vec<&str> = text
        .lines()
        .take_while(|l| l.trim_start().starts_with('#'))
        .collect();
    if header.is_empty() {
        DEFAULT_PENDING_HEADER.to_string()
    } else {
        header.join("\n")
    }
}

/// What `contract_is_complete` checks, separated from I/O so it can be unit tested.
/// Returns the failure message, if any.
fn check_pending(missing: &[String], pending: &[String]) -> Option<String> {
    let pending_set: BTreeSet<&str> = pending.iter().map(String::as_str).collect();
    let missing_set: BTreeSet<&str> = missing.iter().map(String::as_str).collect();
    let unexpected: Vec<String> = missing
        .iter()
        .filter(|m| !pending_set.contains(m.as_str()))
        .cloned()
        .collect();
    let done: Vec<String> = pending
        .iter()
        .filter(|p| !missing_set.contains(p.as_str()))
        .cloned()
        .collect();
    let mut msg = String::new();
    if !unexpected.is_empty() {
        msg.push_str(&render_list(
            "missing from schema.graphql but not listed in tests/api/contract_pending.txt \
             (removed or renamed? the pending list may only shrink)",
            &unexpected,
        ));
    }
    if !done.is_empty() {
        msg.push_str(&render_list(
            "built now: remove these lines from tests/api/contract_pending.txt",
            &done,
        ));
    }
    (!msg.is_empty()).then_some(msg)
}

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
        // Without ../shared (a user's clone) the vendored copy is the contract.
        let Ok(shared) = std::fs::read_to_string(SHARED_TARGET_PATH) else {
            return;
        };
        let vendored = std::fs::read_to_string(TARGET_PATH).expect("vendored target readable");
        assert!(
            shared == vendored,
            "the design contract changed: cp ../shared/design/schema.target.graphql tests/api/ \
             and list its new items as pending (FV_UPDATE_CONTRACT_PENDING=1)"
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
