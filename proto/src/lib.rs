//! Wire formats shared by the Osprey coordinator and its executors.
//!
//! Plans themselves travel as datafusion-proto bytes inside the `datafusion-distributed` worker
//! protocol (see `osprey-engine`); this crate holds what Osprey adds around that protocol:
//!
//! - [`cluster_auth`]: the cluster credential every coordinator-to-executor and
//!   executor-to-executor request carries, and its constant-time check;
//! - [`progress`]: the executor progress service's methods and messages (live query progress
//!   and executor load);
//! - [`credentials`]: storage credentials a catalog vended, shared with executors apart from
//!   plans.

pub mod cluster_auth;
pub mod credentials;
pub mod progress;

pub use cluster_auth::{CLUSTER_SECRET_HEADER, ClusterAuthError, ClusterSecret};
