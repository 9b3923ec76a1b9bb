//! The database layer: pool, migrations, the embedded cluster, the generated schema.

pub mod embedded;
pub mod migrate;
pub mod pool;
pub mod schema;

pub use pool::{Db, PgConn, PoolOptions};
