//! Trino compatibility: what the Trino client protocol endpoint (`POST /v1/statement`, in
//! [`crate::http::trino`]) needs beyond the engine, so that unmodified Trino clients work.
//!
//! - [`types`]: Arrow types as Trino type names and signatures, values as Trino's JSON.
//! - [`metadata`]: Trino's `information_schema` and `system` tables.
//! - [`errors`]: failures as Trino's error names, codes and types.

pub mod errors;
pub mod metadata;
pub mod types;
