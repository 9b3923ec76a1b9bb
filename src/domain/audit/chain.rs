//! The tamper-evident chain: `hash = SHA-256(prev_hash || canonical JSON of the event)`, per organization.

use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// JSON with object keys sorted at every level and no insignificant white space, so the same
/// event always hashes the same whatever map order serde or PostgreSQL produced.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(&map[key], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// The chained hash of an event's canonical JSON.
pub fn chain_hash(prev_hash: Option<&[u8]>, canonical: &str) -> Vec<u8> {
    let mut hasher = Sha256::new();
    if let Some(prev) = prev_hash {
        hasher.update(prev);
    }
    hasher.update(canonical.as_bytes());
    hasher.finalize().to_vec()
}

/// The advisory-lock key of an organization's chain head (platform events share one chain).
/// Writers in one organization serialise on it, so sequence order is commit order there.
pub fn chain_lock_key(organization_id: Option<Uuid>) -> i64 {
    match organization_id {
        Some(id) => {
            let bytes = id.as_bytes();
            let mut key = [0u8; 8];
            key.copy_from_slice(&bytes[..8]);
            i64::from_be_bytes(key) ^ i64::from_be_bytes(bytes[8..].try_into().unwrap_or([0; 8]))
        }
        None => 0x4656_4155_4449_5400, // "FVAUDIT"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_json_sorts_keys_at_every_level() {
        let a = json!({"b": 1, "a": {"z": [1, {"y": 2, "x": 3}], "c": null}});
        assert_eq!(
            canonical_json(&a),
            r#"{"a":{"c":null,"z":[1,{"x":3,"y":2}]},"b":1}"#
        );
    }

    #[test]
    fn hash_depends_on_previous_hash() {
        let first = chain_hash(None, "{}");
        assert_ne!(chain_hash(Some(&first), "{}"), first);
        assert_eq!(first.len(), 32);
    }
}
