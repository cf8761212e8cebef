//! Trino compatibility: what the Trino client protocol endpoint (`POST /v1/statement`, in
//! [`crate::http::trino`]) needs beyond the engine, so that unmodified Trino clients work.
//!
//! - [`types`]: Arrow types as Trino type names and signatures, values as Trino's JSON.
//! - [`TrinoMetadata`]: the metadata tables in Trino's style (lower case type names, the
//!   `system.jdbc` tables).
//! - [`errors`]: failures as Trino's error names, codes and types.

pub mod errors;
pub mod types;

use datafusion::catalog::CatalogProviderList;
use osprey_service::{MetadataCatalogList, MetadataStyle, MetadataTables};
use std::sync::Arc;

/// Trino's metadata tables, as a session's [`MetadataTables`] flavor: lower case type names
/// and the `system.jdbc` tables Trino's clients read ([`MetadataStyle::TRINO`]).
#[derive(Debug)]
pub struct TrinoMetadata;

impl MetadataTables for TrinoMetadata {
    fn name(&self) -> &'static str {
        "trino"
    }

    fn wrap(&self, catalogs: Arc<dyn CatalogProviderList>) -> Arc<dyn CatalogProviderList> {
        Arc::new(MetadataCatalogList::new(catalogs, MetadataStyle::TRINO))
    }
}
