//! `schema.graphql` is the Rust schema's SDL export, kept in the repository for typed clients.

const SCHEMA_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql");

#[test]
fn schema_graphql_is_up_to_date() {
    let exported = finvision::api::schema::sdl();
    if std::env::var_os("FV_UPDATE_SCHEMA").is_some() {
        std::fs::write(SCHEMA_PATH, &exported).expect("write schema.graphql");
        return;
    }
    let committed = std::fs::read_to_string(SCHEMA_PATH).unwrap_or_default();
    assert!(
        committed == exported,
        "schema.graphql is stale: regenerate it with `cargo run -- schema > schema.graphql` (or FV_UPDATE_SCHEMA=1 cargo test --test api schema_graphql)"
    );
}
