//! The schema model: an SDL document reduced to what the contract compares (names, kinds, types
//! as written, normalised defaults).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

// The parser's value and name types live in async-graphql-value, which is not a direct
// dependency; async-graphql re-exports the same types.
use async_graphql::parser::types::{
    BaseType, FieldDefinition, InputValueDefinition, Type, TypeKind, TypeSystemDefinition,
};
use async_graphql::parser::{Positioned, parse_schema};
use async_graphql::{Name, Value};

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
    pub fn is_required(&self) -> bool {
        self.ty.ends_with('!') && self.default.is_none()
    }
}

impl TypeModel {
    pub fn kind_name(&self) -> &'static str {
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

pub fn lookup<'a, T>(items: &'a [(String, T)], name: &str) -> Option<&'a T> {
    items.iter().find(|(n, _)| n == name).map(|(_, v)| v)
}
