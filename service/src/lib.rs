//! The Osprey statement service: what every front door asks of Osprey, with no client
//! protocol in it (no gRPC, HTTP or Flight types).
//!
//! - Running SQL: a [`StatementService`] registers a [`Statement`], which is submitted
//!   ([`Submitted`]: DDL, writes, `USE` and `SET` ran; a query is planned) and started
//!   ([`Running`]: its result streams). The service keeps the statement's history record,
//!   admits it through its workgroup ([`Workgroups`]), runs it again when executors are lost
//!   ([`RetryPolicy`]) and holds its time limit. Every refusal is a [`QueryError`], which each
//!   front door maps to its wire in one table.
//! - The policy hook: every plan passes a [`StatementPolicy`] for its principal before physical
//!   planning, and the policy chooses the catalogs a session sees, for listings too
//!   ([`StatementService::catalogs`]). Today's policy is [`AllowAll`].
//! - Sessions: [`SessionSettings`] (`USE`, `SET`), kept per client in a [`SessionStore`], with
//!   the [`MetadataTables`] flavor a front door's clients expect.
//! - Users and handles: [`Authenticator`] (passwords, tokens, the failure slowdown),
//!   [`Principal`], [`ExpiringStore`] for a front door's opaque handles.
//! - Open statements: every handle a door gives out holds an [`OpenStatement`] from the
//!   service, one bound per user across all doors ([`StatementLimits`]).
//! - Statement events: every change of a statement is published to the subscribers of
//!   [`StatementEvents`] ([`StatementListener`]); the [`QueryHistory`] is the first.
//! - The engine underneath: [`QueryEngine`] (statement routing, planning on the
//!   [`QueryRuntime`]), the [`Lakehouse`] catalog with its [`TableFormats`] (one
//!   [`TableFormat`] per format), [`Locations`] users may reach, the [`QueryHistory`], the
//!   live executors ([`ExecutorRegistry`]), the built-in TPC-H dataset ([`ensure_dataset`],
//!   [`register_dataset`]).
//!
//! The modules are private: this list of `pub use` is the crate's whole surface.

mod admin_sql;
mod auth;
mod catalogs;
mod discovery;
mod error;
mod error_text;
mod events;
mod expiring;
mod governance;
mod history;
mod immediate;
mod lakehouse;
mod locations;
mod locations_sql;
mod login_checks;
mod metadata_tables;
mod nesting;
mod open_statements;
mod parser;
mod policy;
mod query;
mod query_runtime;
mod retry;
mod served_catalog;
mod session;
mod session_options;
mod sql_types;
mod statement;
mod statement_stats;
mod system_tables;
mod table_procedures;
mod time_travel;
mod tpch;
mod units;
mod users;
mod workgroups;

pub use auth::{
    AuthConfig, AuthError, AuthSetupError, Authenticator, Principal, UserCredential,
    basic_credentials,
};
pub use catalogs::{AttachedCatalog, AttachedCatalogs, CatalogConfig};
pub use discovery::{DiscoveryConfig, ExecutorHealth, ExecutorRegistry};
pub use error::{QueryError, SourceLocation};
pub use events::{StatementEvents, StatementListener};
pub use expiring::{ExpiringStore, HandleLimitReached};
pub use governance::{Governance, Privilege, RoleSelection};
pub use history::{QueryHistory, QuerySummary, QueueClock};
pub use lakehouse::Lakehouse;
pub use lakehouse::committed::CommittedCatalog;
pub use lakehouse::formats::{FilesFormat, TableFormat, TableFormats, ViewFormat};
pub use lakehouse::writes::clean_abandoned_writes;
pub use locations::{LocationConfig, Locations};
pub use metadata_tables::{
    MetadataCatalogList, MetadataFlavor, MetadataStyle, MetadataTables, SqlMetadata,
};
pub use nesting::MAX_PARSER_RECURSION;
pub use open_statements::{OpenStatement, OpenStatements, StatementLimits};
pub use osprey_catalog::{QueryRecord, QueryState};
pub use osprey_iceberg::{
    CommittedTable as CommittedIcebergTable, TableRequirement as IcebergTableRequirement,
    TableUpdate as IcebergTableUpdate,
};
pub use policy::{AllowAll, PolicySubject, StatementPolicy};
pub use query::{Description, EngineParts, QueryEngine};
pub use query_runtime::QueryRuntime;
pub use retry::RetryPolicy;
pub use served_catalog::{NewServedTable, ServedCatalog, ServedCatalogError, TableName};
pub use session::{SessionSettings, SessionStore, is_known_option};
pub use sql_types::{TypeNameCase, map_key_value, sql_type_name, time_precision};
pub use statement::{
    Running, Statement, StatementRecord, StatementRequest, StatementService, Submitted,
};
pub use system_tables::{SystemTable, SystemTableSource};
pub use tpch::{TpchError, ensure_dataset, register_dataset};
pub use units::{parse_byte_size, parse_seconds};
pub use workgroups::{WorkgroupConfig, WorkgroupSetupError, Workgroups, WorkgroupsConfig};
