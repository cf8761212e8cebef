//! The Osprey statement service: what every front door asks of Osprey, with no client
//! protocol in it (no gRPC, HTTP or Flight types).
//!
//! - [`statement`]: the one way to run SQL. A statement is registered, submitted and started;
//!   the service keeps its history record, admits it through its workgroup, runs it again when
//!   executors are lost and holds its time limit. Front doors map its handle and its
//!   [`error::QueryError`] to their wire.
//! - [`session`]: a client session's settings (`USE`, `SET`), and the metadata flavor a front
//!   door's clients expect.
//! - [`query`]: statement routing and the engine underneath (planning on the query runtime,
//!   [`query_runtime`]; reruns, [`retry`]; the nesting bound, [`nesting`]).
//! - [`lakehouse`]: the catalog as DataFusion sees it (providers, DDL, writes, UNLOAD).
//! - [`auth`], [`users`], [`login_checks`], [`expiring`]: users, passwords, tokens and handles.
//! - [`workgroups`], [`locations`], [`history`]: admission, the storage locations users may
//!   reach, and the query history with `system.queries`.
//! - [`discovery`]: the live executors.
//! - [`tpch`]: the built-in TPC-H dataset.

mod admin_sql;
pub mod auth;
pub mod discovery;
pub mod error;
pub mod expiring;
pub mod history;
pub mod immediate;
pub mod lakehouse;
pub mod locations;
pub mod locations_sql;
pub mod login_checks;
pub mod nesting;
pub mod query;
pub mod query_runtime;
pub mod retry;
pub mod session;
pub mod statement;
pub mod statement_stats;
pub mod system_tables;
pub mod tpch;
pub mod units;
pub mod users;
pub mod workgroups;
