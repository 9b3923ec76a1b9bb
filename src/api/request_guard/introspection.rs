//! An estimate of an introspection response's size, from the shape of the query and the sizes of
//! the real schema. Introspection types reference each other (`possibleTypes { interfaces {
//! possibleTypes … } }`), so a short query can ask for a response that grows tenfold per level;
//! depth alone does not bound it, the product of list sizes along each path does.

use std::collections::HashMap;

use async_graphql::parser::{
    parse_schema,
    types::{ExecutableDocument, Selection, SelectionSet, TypeKind, TypeSystemDefinition},
};

/// The sizes of a schema's introspection lists: the largest per parent and the total over the
/// schema. Computed once at start-up from the schema's SDL.
#[derive(Debug, Clone, Default)]
pub(crate) struct SchemaBounds {
    types: u64,
    directives: u64,
    fields: Bound,
    field_args: Bound,
    interfaces: Bound,
    possible_types: Bound,
    enum_values: Bound,
    input_fields: Bound,
    directive_args: Bound,
    locations: Bound,
}

/// One list's sizes: the largest on one parent, and the sum over every parent in the schema.
#[derive(Debug, Clone, Copy, Default)]
struct Bound {
    max: u64,
    total: u64,
}

impl Bound {
    fn add(&mut self, len: usize) {
        let len = u64::try_from(len).unwrap_or(u64::MAX);
        self.max = self.max.max(len);
        self.total = self.total.saturating_add(len);
    }
}

/// The introspection types, the built-in scalars and directives: in every response, never in the
/// SDL. Figures from the October 2021 spec plus `specifiedByURL`, `isOneOf` and the
/// `includeDeprecated` arguments: (fields, field arguments, enum values).
const INTROSPECTION_TYPES: &[(usize, usize, usize)] = &[
    (6, 0, 0),  // __Schema
    (11, 3, 0), // __Type
    (6, 1, 0),  // __Field
    (6, 0, 0),  // __InputValue
    (4, 0, 0),  // __EnumValue
    (5, 1, 0),  // __Directive
    (0, 0, 8),  // __TypeKind
    (0, 0, 19), // __DirectiveLocation
];
const BUILTIN_SCALARS: u64 = 5;
/// skip, include, deprecated, specifiedBy, oneOf: (arguments, locations).
const BUILTIN_DIRECTIVES: &[(usize, usize)] = &[(1, 3), (1, 3), (1, 4), (1, 1), (0, 1)];

impl SchemaBounds {
    /// The bounds of the schema printed as `sdl`. An SDL that does not parse (never ours) gives
    /// the built-in figures only: the estimate then errs low, and the depth cap still holds.
    pub(crate) fn from_sdl(sdl: &str) -> Self {
        let mut b = SchemaBounds {
            types: BUILTIN_SCALARS,
            ..Default::default()
        };
        for &(fields, args, values) in INTROSPECTION_TYPES {
            b.types += 1;
            b.fields.add(fields);
            b.field_args.add(args);
            b.enum_values.add(values);
        }
        for &(args, locations) in BUILTIN_DIRECTIVES {
            b.directives += 1;
            b.directive_args.add(args);
            b.locations.add(locations);
        }
        let Ok(doc) = parse_schema(sdl) else {
            return b;
        };
        let mut possible: HashMap<String, usize> = HashMap::new();
        for definition in &doc.definitions {
            match definition {
                TypeSystemDefinition::Type(ty) => {
                    b.types += 1;
                    let (fields, implements) = match &ty.node.kind {
                        TypeKind::Object(o) => (&o.fields[..], &o.implements[..]),
                        TypeKind::Interface(i) => (&i.fields[..], &i.implements[..]),
                        TypeKind::Union(u) => {
                            b.possible_types.add(u.members.len());
                            (&[][..], &[][..])
                        }
                        TypeKind::Enum(e) => {
                            b.enum_values.add(e.values.len());
                            (&[][..], &[][..])
                        }
                        TypeKind::InputObject(i) => {
                            b.input_fields.add(i.fields.len());
                            (&[][..], &[][..])
                        }
                        TypeKind::Scalar => (&[][..], &[][..]),
                    };
                    b.fields.add(fields.len());
                    for field in fields {
                        b.field_args.add(field.node.arguments.len());
                    }
                    b.interfaces.add(implements.len());
                    for interface in implements {
                        *possible.entry(interface.node.to_string()).or_default() += 1;
                    }
                }
                TypeSystemDefinition::Directive(d) => {
                    b.directives += 1;
                    b.directive_args.add(d.node.arguments.len());
                    b.locations.add(d.node.locations.len());
                }
                TypeSystemDefinition::Schema(_) => {}
            }
        }
        possible.values().for_each(|&n| b.possible_types.add(n));
        b
    }
}

/// The introspection type a selection set applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ctx {
    Schema,
    Type,
    Field,
    InputValue,
    EnumValue,
    Directive,
}

/// The objects a selection set applies to: how many, and whether they are every object of their
/// kind exactly once (`__schema { types { fields … } }`), in which case a child list holds the
/// schema's total rather than `count × largest`.
#[derive(Debug, Clone, Copy)]
struct Parents {
    count: u64,
    every: bool,
}

/// What a field of an introspection type returns.
enum Child {
    Scalar,
    ScalarList(Bound),
    One(Ctx),
    List(Ctx, Bound, bool),
}

fn child_of(bounds: &SchemaBounds, ctx: Ctx, field: &str) -> Child {
    let all = |n: u64| Bound { max: n, total: n };
    match (ctx, field) {
        (Ctx::Schema, "types") => Child::List(Ctx::Type, all(bounds.types), true),
        (Ctx::Schema, "directives") => Child::List(Ctx::Directive, all(bounds.directives), true),
        (Ctx::Schema, "queryType" | "mutationType" | "subscriptionType") => Child::One(Ctx::Type),
        (Ctx::Type, "fields") => Child::List(Ctx::Field, bounds.fields, true),
        (Ctx::Type, "interfaces") => Child::List(Ctx::Type, bounds.interfaces, false),
        (Ctx::Type, "possibleTypes") => Child::List(Ctx::Type, bounds.possible_types, false),
        (Ctx::Type, "enumValues") => Child::List(Ctx::EnumValue, bounds.enum_values, true),
        (Ctx::Type, "inputFields") => Child::List(Ctx::InputValue, bounds.input_fields, true),
        (Ctx::Type, "ofType") | (Ctx::Field | Ctx::InputValue, "type") => Child::One(Ctx::Type),
        (Ctx::Field, "args") => Child::List(Ctx::InputValue, bounds.field_args, true),
        (Ctx::Directive, "args") => Child::List(Ctx::InputValue, bounds.directive_args, true),
        (Ctx::Directive, "locations") => Child::ScalarList(bounds.locations),
        _ => Child::Scalar,
    }
}

/// Walks introspection selections with spreads expanded, summing the values the response would
/// hold. Stops (saturated) past `cap` or `max_depth`, and counts its steps.
pub(crate) struct CostWalk<'a> {
    pub(crate) doc: &'a ExecutableDocument,
    pub(crate) bounds: &'a SchemaBounds,
    pub(crate) cap: u64,
    pub(crate) max_depth: u64,
    /// Selection nodes visited.
    pub(crate) steps: u64,
    /// Steps allowed: spreads of fragments that select nothing (they spread unknown fragments)
    /// add no selections, so the selection cap alone would not bound a chain of them.
    pub(crate) max_steps: u64,
}

impl CostWalk<'_> {
    /// The estimated values under the root fields `__schema` and `__type` of `root`.
    pub(crate) fn root(&mut self, root: &SelectionSet) -> u64 {
        if self.steps > self.max_steps {
            return u64::MAX;
        }
        let mut cost = 0u64;
        for item in &root.items {
            self.steps = self.steps.saturating_add(1);
            let add = match &item.node {
                Selection::Field(f) => {
                    // The one schema is every schema: its lists hold each type once. A type
                    // named by `__type` is any type.
                    let (ctx, every) = match f.node.name.node.as_str() {
                        "__schema" => (Ctx::Schema, true),
                        "__type" => (Ctx::Type, false),
                        _ => continue,
                    };
                    let one = Parents { count: 1, every };
                    self.set(&f.node.selection_set.node, ctx, one, 2)
                        .saturating_add(1)
                }
                Selection::InlineFragment(i) => self.root(&i.node.selection_set.node),
                Selection::FragmentSpread(s) => {
                    match self.doc.fragments.get(&s.node.fragment_name.node) {
                        Some(f) => self.root(&f.node.selection_set.node),
                        None => 0,
                    }
                }
            };
            cost = cost.saturating_add(add);
            if cost > self.cap {
                return u64::MAX;
            }
        }
        cost
    }

    /// The values of `set` applied to `parents` objects of type `ctx`, at nesting `depth`.
    fn set(&mut self, set: &SelectionSet, ctx: Ctx, parents: Parents, depth: u64) -> u64 {
        if set.items.is_empty() {
            return 0;
        }
        if depth > self.max_depth || self.steps > self.max_steps {
            return u64::MAX;
        }
        let mut cost = 0u64;
        for item in &set.items {
            self.steps = self.steps.saturating_add(1);
            let add = match &item.node {
                Selection::Field(f) => {
                    let children = &f.node.selection_set.node;
                    match child_of(self.bounds, ctx, f.node.name.node.as_str()) {
                        Child::Scalar => parents.count,
                        Child::ScalarList(bound) => parents.count.saturating_mul(bound.max),
                        Child::One(child) => {
                            let next = Parents {
                                count: parents.count,
                                every: false,
                            };
                            parents
                                .count
                                .saturating_add(self.set(children, child, next, depth + 1))
                        }
                        Child::List(child, bound, keeps_every) => {
                            let mut count = parents.count.saturating_mul(bound.max);
                            if parents.every {
                                count = count.min(bound.total);
                            }
                            let next = Parents {
                                count,
                                every: parents.every && keeps_every,
                            };
                            count.saturating_add(self.set(children, child, next, depth + 1))
                        }
                    }
                }
                Selection::InlineFragment(i) => {
                    self.set(&i.node.selection_set.node, ctx, parents, depth)
                }
                Selection::FragmentSpread(s) => {
                    match self.doc.fragments.get(&s.node.fragment_name.node) {
                        Some(f) => self.set(&f.node.selection_set.node, ctx, parents, depth),
                        None => 0,
                    }
                }
            };
            cost = cost.saturating_add(add);
            if cost > self.cap {
                return u64::MAX;
            }
        }
        cost
    }
}
