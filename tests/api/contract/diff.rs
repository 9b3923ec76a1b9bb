//! Comparing a schema with the contract: what contradicts it (mismatches) and what is not built
//! yet (missing), and the text the tests print.

use std::fmt::Write as _;

use super::model::{Field, InputValue, SchemaModel, TypeModel, lookup};

/// Result of [`compare`]. Every entry is a single line; `missing` entries are the exact strings
/// used in `contract_pending.txt`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContractReport {
    pub mismatches: Vec<String>,
    pub missing: Vec<String>,
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

pub fn render_list(header: &str, items: &[String]) -> String {
    let mut out = format!("{header} ({}):\n", items.len());
    for item in items {
        let _ = writeln!(out, "  {item}");
    }
    out
}
