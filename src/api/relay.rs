//! Relay: opaque global IDs and connections with `edges/nodes/pageInfo/totalCount`.

use async_graphql::{
    ID, SimpleObject,
    connection::{Connection, Edge, EmptyFields},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use uuid::Uuid;

use crate::error::{AppError, AppResult};

/// The kinds of objects a global ID can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    /// `User`
    User,
    /// `Organization`
    Organization,
    /// `Membership` (two ids: organization, user)
    Membership,
    /// `FinancialModel`
    FinancialModel,
    /// `Scenario`
    Scenario,
    /// `Parameter`
    Parameter,
    /// `Metric`
    Metric,
    /// `ApiKey`
    ApiKey,
    /// `AuditEvent` (named by its sequence, not a uuid: see [`sequence_id`])
    AuditEvent,
    /// `ModelFile`
    ModelFile,
    /// `Report`
    Report,
    /// `WebhookEndpoint`
    WebhookEndpoint,
}

impl NodeKind {
    fn name(self) -> &'static str {
        match self {
            NodeKind::User => "User",
            NodeKind::Organization => "Organization",
            NodeKind::Membership => "Membership",
            NodeKind::FinancialModel => "FinancialModel",
            NodeKind::Scenario => "Scenario",
            NodeKind::Parameter => "Parameter",
            NodeKind::Metric => "Metric",
            NodeKind::ApiKey => "ApiKey",
            NodeKind::AuditEvent => "AuditEvent",
            NodeKind::ModelFile => "ModelFile",
            NodeKind::Report => "Report",
            NodeKind::WebhookEndpoint => "WebhookEndpoint",
        }
    }

    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "User" => NodeKind::User,
            "Organization" => NodeKind::Organization,
            "Membership" => NodeKind::Membership,
            "FinancialModel" => NodeKind::FinancialModel,
            "Scenario" => NodeKind::Scenario,
            "Parameter" => NodeKind::Parameter,
            "Metric" => NodeKind::Metric,
            "ApiKey" => NodeKind::ApiKey,
            "AuditEvent" => NodeKind::AuditEvent,
            "ModelFile" => NodeKind::ModelFile,
            "Report" => NodeKind::Report,
            "WebhookEndpoint" => NodeKind::WebhookEndpoint,
            _ => return None,
        })
    }
}

/// The global ID of an object: base64url of `Kind:uuid[:uuid]`. Opaque to clients.
pub fn global_id(kind: NodeKind, ids: &[Uuid]) -> ID {
    let mut raw = kind.name().to_owned();
    for id in ids {
        raw.push(':');
        raw.push_str(&id.to_string());
    }
    ID(URL_SAFE_NO_PAD.encode(raw))
}

/// The global ID of an audit event: its sequence, since events have no uuid.
pub fn sequence_id(kind: NodeKind, sequence: i64) -> ID {
    ID(URL_SAFE_NO_PAD.encode(format!("{}:{sequence}", kind.name())))
}

/// The kind and the text after it of a global ID.
fn decode_raw(id: &str, field: &str) -> AppResult<(NodeKind, String)> {
    let malformed = || AppError::bad_input(field, "not a valid ID");
    let raw = URL_SAFE_NO_PAD
        .decode(id.trim_end_matches('='))
        .map_err(|_| malformed())?;
    let raw = String::from_utf8(raw).map_err(|_| malformed())?;
    let (kind, rest) = raw.split_once(':').ok_or_else(malformed)?;
    let kind = NodeKind::parse(kind).ok_or_else(malformed)?;
    Ok((kind, rest.to_owned()))
}

/// The sequence of an audit event's global ID.
pub fn decode_sequence(id: &str, field: &str) -> AppResult<i64> {
    match decode_raw(id, field)? {
        (NodeKind::AuditEvent, rest) => rest
            .parse::<i64>()
            .map_err(|_| AppError::bad_input(field, "not a valid ID")),
        _ => Err(AppError::bad_input(
            field,
            "expected the ID of an AuditEvent",
        )),
    }
}

/// Decode any global ID; `field` names the input for `BAD_USER_INPUT`. An audit event's ID
/// decodes to no uuids: read its sequence with [`decode_sequence`].
pub fn decode_any(id: &str, field: &str) -> AppResult<(NodeKind, Vec<Uuid>)> {
    let malformed = || AppError::bad_input(field, "not a valid ID");
    let (kind, rest) = decode_raw(id, field)?;
    if kind == NodeKind::AuditEvent {
        decode_sequence(id, field)?;
        return Ok((kind, Vec::new()));
    }
    let ids = rest
        .split(':')
        .map(Uuid::parse_str)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| malformed())?;
    let expected = if kind == NodeKind::Membership { 2 } else { 1 };
    if ids.len() != expected {
        return Err(malformed());
    }
    Ok((kind, ids))
}

impl NodeKind {
    /// Decode a global ID that must name this kind (see [`decode`]).
    pub fn decode(self, id: &ID, field: &str) -> AppResult<Uuid> {
        decode(id, self, field)
    }
}

/// Decode a global ID that must name a `kind`.
pub fn decode(id: &ID, kind: NodeKind, field: &str) -> AppResult<Uuid> {
    match decode_any(id, field)? {
        (k, ids) if k == kind => ids
            .first()
            .copied()
            .ok_or_else(|| AppError::bad_input(field, "not a valid ID")),
        _ => Err(AppError::bad_input(
            field,
            format!("expected the ID of a {}", kind.name()),
        )),
    }
}

/// The extra field of every connection.
#[derive(SimpleObject)]
pub struct ConnectionTotal {
    /// How many items match, across all pages.
    pub total_count: i32,
}

/// A Relay connection of `N` with opaque string cursors.
pub type Conn<N> = Connection<String, N, ConnectionTotal, EmptyFields>;

/// Page size when the client gives neither `first` nor `last`.
pub const DEFAULT_PAGE: usize = 20;
/// Largest `first`/`last` accepted.
pub const MAX_PAGE: i32 = 100;

/// The paging arguments of a connection field.
#[derive(Debug, Clone, Default)]
pub struct PageArgs {
    /// Forward page size.
    pub first: Option<i32>,
    /// Cursor to start after.
    pub after: Option<String>,
    /// Backward page size.
    pub last: Option<i32>,
    /// Cursor to end before.
    pub before: Option<String>,
}

impl PageArgs {
    /// All four arguments, as the client sent them.
    pub fn new(
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Self {
        Self {
            first,
            after,
            last,
            before,
        }
    }

    /// Forward paging only (`first`, `after`).
    pub fn forward(first: Option<i32>, after: Option<String>) -> Self {
        Self {
            first,
            after,
            ..Self::default()
        }
    }

    /// A page size, checked against the limits; `None` when not given.
    pub(crate) fn size(value: Option<i32>, field: &str) -> AppResult<Option<usize>> {
        match value {
            None => Ok(None),
            Some(n) if (0..=MAX_PAGE).contains(&n) => Ok(usize::try_from(n).ok()),
            Some(_) => Err(AppError::bad_input(
                field,
                format!("must be between 0 and {MAX_PAGE}"),
            )),
        }
    }
}

/// A cursor is the opaque form of an item's sort key.
pub fn encode_cursor(key: &str) -> String {
    URL_SAFE_NO_PAD.encode(key)
}

fn decode_cursor(cursor: &str, field: &str) -> AppResult<String> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|raw| String::from_utf8(raw).ok())
        .ok_or_else(|| AppError::bad_input(field, "not a valid cursor"))
}

/// The sort key of a row ordered by creation time then id: RFC 3339 with fixed microseconds
/// in UTC sorts as text in the same order as in time.
pub fn time_key(at: chrono::DateTime<chrono::Utc>, id: impl std::fmt::Display) -> String {
    format!(
        "{}|{id}",
        at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
    )
}

/// Page an in-memory list (a relationship already loaded whole by a DataLoader). Items are
/// ordered by `key`; cursors compare by key, so a cursor whose item was deleted still works.
pub fn paginate<T, N>(
    items: Vec<T>,
    args: &PageArgs,
    key: impl Fn(&T) -> String,
    node: impl Fn(T) -> N,
) -> AppResult<Conn<N>>
where
    N: async_graphql::OutputType,
{
    paginate_ordered(items, args, key, node, false)
}

/// [`paginate`] in ascending or descending key order.
pub fn paginate_ordered<T, N>(
    mut items: Vec<T>,
    args: &PageArgs,
    key: impl Fn(&T) -> String,
    node: impl Fn(T) -> N,
    descending: bool,
) -> AppResult<Conn<N>>
where
    N: async_graphql::OutputType,
{
    let first = PageArgs::size(args.first, "first")?;
    let last = PageArgs::size(args.last, "last")?;
    let after = args
        .after
        .as_deref()
        .map(|c| decode_cursor(c, "after"))
        .transpose()?;
    let before = args
        .before
        .as_deref()
        .map(|c| decode_cursor(c, "before"))
        .transpose()?;

    let total = items.len();
    let mut keyed: Vec<(String, T)> = items.drain(..).map(|item| (key(&item), item)).collect();
    keyed.sort_by(|a, b| {
        if descending {
            b.0.cmp(&a.0)
        } else {
            a.0.cmp(&b.0)
        }
    });
    // "Comes before cursor `c` in list order", whichever the direction.
    let precedes = |k: &String, c: &String| if descending { k > c } else { k < c };

    let start = after.as_ref().map_or(0, |a| {
        keyed.partition_point(|(k, _)| precedes(k, a) || k == a)
    });
    let end = before
        .as_ref()
        .map_or(keyed.len(), |b| {
            keyed.partition_point(|(k, _)| precedes(k, b))
        })
        .max(start);
    let (mut lo, mut hi) = (start, end);
    let first = if first.is_none() && last.is_none() {
        Some(DEFAULT_PAGE)
    } else {
        first
    };
    if let Some(n) = first {
        hi = hi.min(lo + n);
    }
    if let Some(n) = last {
        lo = lo.max(hi.saturating_sub(n));
    }
    let has_previous = lo > start || (after.is_some() && start > 0);
    let has_next = hi < end || (before.is_some() && end < keyed.len());

    let mut connection = Connection::with_additional_fields(
        has_previous,
        has_next,
        ConnectionTotal {
            total_count: i32::try_from(total).unwrap_or(i32::MAX),
        },
    );
    connection.edges = keyed
        .into_iter()
        .skip(lo)
        .take(hi - lo)
        .map(|(k, item)| Edge::new(encode_cursor(&k), node(item)))
        .collect();
    Ok(connection)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(args: PageArgs) -> (Vec<i32>, bool, bool) {
        let items: Vec<i32> = (10..20).collect();
        let c = paginate(items, &args, |i| format!("{i:03}"), |i| i).unwrap();
        (
            c.edges.iter().map(|e| e.node).collect(),
            c.has_previous_page,
            c.has_next_page,
        )
    }

    #[test]
    fn forward_and_backward_paging() {
        assert_eq!(
            page(PageArgs::forward(Some(3), None)),
            (vec![10, 11, 12], false, true)
        );
        let after = Some(encode_cursor("012"));
        assert_eq!(
            page(PageArgs::forward(Some(3), after.clone())),
            (vec![13, 14, 15], true, true)
        );
        assert_eq!(
            page(PageArgs {
                last: Some(2),
                ..Default::default()
            }),
            (vec![18, 19], true, false)
        );
        let before = Some(encode_cursor("013"));
        assert_eq!(
            page(PageArgs {
                last: Some(2),
                before,
                ..Default::default()
            }),
            (vec![11, 12], true, true)
        );
        assert_eq!(
            page(PageArgs::forward(Some(5), Some(encode_cursor("017")))),
            (vec![18, 19], true, false)
        );
    }

    #[test]
    fn descending_order_pages_the_other_way() {
        let items: Vec<i32> = (10..20).collect();
        let args = PageArgs::forward(Some(3), Some(encode_cursor("017")));
        let c = paginate_ordered(items, &args, |i| format!("{i:03}"), |i| i, true).unwrap();
        assert_eq!(
            c.edges.iter().map(|e| e.node).collect::<Vec<_>>(),
            vec![16, 15, 14]
        );
        assert!(c.has_previous_page && c.has_next_page);
    }

    #[test]
    fn limits_and_bad_cursors_are_user_errors() {
        let items: Vec<i32> = vec![];
        for args in [
            PageArgs::forward(Some(101), None),
            PageArgs::forward(Some(-1), None),
            PageArgs::forward(None, Some("%%".into())),
        ] {
            let err = paginate(items.clone(), &args, |i| i.to_string(), |i| i)
                .err()
                .unwrap();
            assert!(matches!(err, AppError::BadUserInput { .. }));
        }
    }

    #[test]
    fn global_ids_round_trip_and_check_kind() {
        let id = Uuid::new_v4();
        let gid = global_id(NodeKind::User, &[id]);
        assert_eq!(decode(&gid, NodeKind::User, "id").unwrap(), id);
        assert!(
            matches!(decode(&gid, NodeKind::Organization, "id"), Err(AppError::BadUserInput { field: Some(f), .. }) if f == "id")
        );
        assert!(decode(&ID("garbage".into()), NodeKind::User, "id").is_err());
        let m = global_id(NodeKind::Membership, &[id, id]);
        assert_eq!(decode_any(&m, "id").unwrap().1, vec![id, id]);
    }
}
