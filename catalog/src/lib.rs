//! Osprey's persistent catalog: the metadata a coordinator keeps across restarts.
//!
//! One code path, through sqlx's `Any` driver, serves both backends:
//!
//! - embedded SQLite (`sqlite:///path/catalog.db`), the default, in the coordinator's data
//!   directory;
//! - PostgreSQL (`postgres://user:pass@host/db`) for production.
//!
//! Migrations are embedded in the binary and run at [`CatalogStore::open`]. The store holds
//! schemas, tables and views (with their definitions as JSON), the data files of managed tables,
//! writes in progress (so a restarted coordinator can clean up after a crash), and the query
//! history ([`QueryRecord`]) and the users who may log in ([`UserRecord`]). Every change
//! that must be atomic (publishing a write, creating a table with its data) is one database
//! transaction.
//!
//! ```no_run
//! # async fn run() -> Result<(), osprey_catalog::CatalogError> {
//! use osprey_catalog::CatalogStore;
//!
//! let store = CatalogStore::open("sqlite:///tmp/osprey-catalog.db").await?;
//! store.create_schema("osprey", "sales").await?;
//! let contents = store.load().await?;
//! assert!(contents.schemas.iter().any(|s| s.schema == "sales"));
//! # Ok(()) }
//! ```

mod attached;
mod audit;
mod data_filters;
mod entries;
mod error;
mod history;
mod iceberg;
mod locations;
mod names;
mod privileges;
mod store;
mod tables;
mod tags;
mod users;
mod workgroups;
mod writes;

pub use attached::AttachedCatalogRecord;
pub use audit::{AUDIT_RETENTION_MS, AuditRecord};
pub use data_filters::{DataFilter, DataFilterKind};
pub use entries::{CatalogContents, DataFile, SchemaEntry, TableDefinition, TableEntry, TableKind};
pub use error::CatalogError;
pub use history::{HistoryCursor, QueryRecord, QueryState};
pub use locations::LocationRecord;
pub use names::{MAX_NAME_BYTES, check_name};
pub use privileges::{AccessRecords, Grantee, PrivilegeGrant, RoleMembership, SecuredObject};
pub use store::{CatalogStore, now_ms, redact_url};
pub use tags::{TagAssignment, TagDefinition, TagExpression};
pub use users::{ManagedBy, UserRecord, new_user_id};
pub use workgroups::WorkgroupRecord;
pub use writes::PendingWrite;

// For the store's modules, which map driver errors with `super::db`.
use error::db;
