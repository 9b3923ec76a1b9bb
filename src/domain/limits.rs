//! Caps on text input, in one place: every service checks its string inputs through these
//! functions, so a NUL character or an over-long value is a `BAD_USER_INPUT` naming the field
//! instead of a PostgreSQL error (PostgreSQL refuses NUL in `text`, and a key of a few KB
//! overflows a btree index row): both surfaced as `INTERNAL` before.

use std::net::IpAddr;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde_json::Value;

use crate::error::{AppError, AppResult};

/// Longest email address (RFC 5321's path limit).
pub const MAX_EMAIL_LEN: usize = 254;
/// Longest display name of a person.
pub const MAX_DISPLAY_NAME_LEN: usize = 100;
/// Longest name of a thing: organizations, models, scenarios, parameters, metrics, keys.
pub const MAX_NAME_LEN: usize = 200;
/// Longest identifier-like input (slugs, parameter and metric keys, currency codes): their own
/// rules are stricter; this only bounds the work before those rules run.
pub const MAX_KEY_LEN: usize = 200;
/// Longest free-text description.
pub const MAX_DESCRIPTION_LEN: usize = 10_000;
/// Largest organization settings object, serialized, in bytes.
pub const MAX_SETTINGS_BYTES: usize = 64 * 1024;
/// Deepest nesting of the settings object (objects and arrays).
pub const MAX_SETTINGS_DEPTH: usize = 16;
/// Longest accepted `x-request-id`; longer or non-printable ids are replaced by a fresh one.
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// Check a string input: no NUL, at most `max` characters. Returns it unchanged.
pub fn text<'a>(raw: &'a str, field: &str, max: usize) -> AppResult<&'a str> {
    if raw.contains('\0') {
        return Err(AppError::bad_input(
            field,
            "the text must not contain a NUL character",
        ));
    }
    if raw.chars().count() > max {
        return Err(AppError::bad_input(
            field,
            format!("the text must have at most {max} characters"),
        ));
    }
    Ok(raw)
}

/// [`text`] for an optional input.
pub fn optional_text<'a>(
    raw: Option<&'a str>,
    field: &str,
    max: usize,
) -> AppResult<Option<&'a str>> {
    raw.map(|r| text(r, field, max)).transpose()
}

/// Check a description: no NUL, at most [`MAX_DESCRIPTION_LEN`] characters.
pub fn description<'a>(raw: Option<&'a str>, field: &str) -> AppResult<Option<&'a str>> {
    optional_text(raw, field, MAX_DESCRIPTION_LEN)
}

/// Check a settings object: at most [`MAX_SETTINGS_BYTES`] serialized, [`MAX_SETTINGS_DEPTH`]
/// deep, and no NUL in any key or string (PostgreSQL's `jsonb` refuses `\u0000`).
pub fn settings(value: &Value, field: &str) -> AppResult<()> {
    fn walk(value: &Value, depth: usize, field: &str) -> AppResult<()> {
        if depth > MAX_SETTINGS_DEPTH {
            return Err(AppError::bad_input(
                field,
                format!("the settings must nest at most {MAX_SETTINGS_DEPTH} levels deep"),
            ));
        }
        match value {
            Value::String(s) => text(s, field, usize::MAX).map(drop),
            Value::Array(items) => items.iter().try_for_each(|v| walk(v, depth + 1, field)),
            Value::Object(map) => map.iter().try_for_each(|(k, v)| {
                text(k, field, usize::MAX)?;
                walk(v, depth + 1, field)
            }),
            Value::Null | Value::Bool(_) | Value::Number(_) => Ok(()),
        }
    }
    walk(value, 0, field)?;
    let size = serde_json::to_vec(value).map_or(usize::MAX, |v| v.len());
    if size > MAX_SETTINGS_BYTES {
        return Err(AppError::bad_input(
            field,
            format!("the settings must take at most {MAX_SETTINGS_BYTES} bytes as JSON"),
        ));
    }
    Ok(())
}

/// The rate-limit bucket of a client address: the address itself for IPv4, its /64 for IPv6
/// (one subscriber usually holds a whole /64, so single IPv6 addresses would be free to rotate).
pub fn address_bucket(ip: IpAddr) -> IpNet {
    match ip.to_canonical() {
        IpAddr::V4(v4) => IpNet::V4(Ipv4Net::from(v4)),
        IpAddr::V6(v6) => Ipv6Net::new(v6, 64)
            .map(|net| IpNet::V6(net.trunc()))
            .unwrap_or_else(|_| IpNet::from(IpAddr::V6(v6))),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn text_refuses_nul_and_length_naming_the_field() {
        for (raw, max) in [("a\0b", 10), ("abcd", 3)] {
            let err = text(raw, "input.name", max).unwrap_err();
            assert!(
                matches!(err, AppError::BadUserInput { field: Some(ref f), .. } if f == "input.name")
            );
        }
        assert_eq!(text("héllo", "f", 5).unwrap(), "héllo");
        assert_eq!(optional_text(None, "f", 1).unwrap(), None);
    }

    #[test]
    fn settings_are_bounded_in_size_depth_and_nul() {
        assert!(settings(&json!({"a": [1, "b", {"c": null}]}), "s").is_ok());
        assert!(settings(&json!({"a\u{0}": 1}), "s").is_err());
        assert!(settings(&json!({"a": "x\u{0}"}), "s").is_err());
        let mut deep = json!(1);
        for _ in 0..=MAX_SETTINGS_DEPTH {
            deep = json!([deep]);
        }
        assert!(settings(&deep, "s").is_err());
        assert!(settings(&json!({"a": "x".repeat(MAX_SETTINGS_BYTES)}), "s").is_err());
    }

    #[test]
    fn ipv6_buckets_are_slash_64_and_mapped_ipv4_is_ipv4() {
        let a = address_bucket("2001:db8:1:2:aaaa::1".parse().unwrap());
        let b = address_bucket("2001:db8:1:2:bbbb::9".parse().unwrap());
        let c = address_bucket("2001:db8:1:3::1".parse().unwrap());
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.to_string(), "2001:db8:1:2::/64");
        assert_eq!(
            address_bucket("::ffff:192.0.2.7".parse().unwrap()).to_string(),
            "192.0.2.7/32"
        );
    }
}
