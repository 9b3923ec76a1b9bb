//! The database layer: pool, replicas, migrations, the embedded cluster, the generated schema.

pub mod caller;
pub mod embedded;
pub mod migrate;
pub mod pool;
pub mod prepared;
pub mod replicas;
pub mod schema;
pub mod stats;

pub use caller::DbCaller;
pub use pool::{CommitLsn, Db, PgConn, PoolOptions, Route};
pub use replicas::{Lsn, ReplicaOptions, ReplicaState, ReplicaStatus};
pub use stats::{RequestStats, SlowStatement};
