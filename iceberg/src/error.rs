//! Why Iceberg metadata could not be read.

/// Why Iceberg metadata could not be read.
#[derive(Debug, thiserror::Error)]
pub enum IcebergError {
    /// The file is not valid Iceberg metadata (bad JSON, a missing or malformed field).
    #[error("invalid Iceberg metadata: {0}")]
    Invalid(String),
    /// The metadata uses something of the spec Osprey does not read yet (a format version, a
    /// type, a transform); it is refused rather than read wrongly.
    #[error("not supported yet: {0}")]
    Unsupported(String),
    /// A catalog could not be reached or answered with a server error; trying again later may
    /// work.
    #[error("{0}")]
    CatalogUnavailable(String),
    /// A catalog refused Osprey's credentials.
    #[error("{0}")]
    CatalogDenied(String),
    /// A catalog answered something other than the protocol says, or its configuration is
    /// wrong.
    #[error("{0}")]
    Catalog(String),
    /// Other writers kept committing first (or changed what the write depends on); running
    /// the statement again may succeed.
    #[error("{0}")]
    CommitConflict(String),
    /// Written data breaks the table's schema (nulls in a required column); nothing is
    /// committed.
    #[error("{0}")]
    ConstraintViolation(String),
    /// A commit was sent but its outcome is unknown (the catalog failed or did not answer):
    /// it may have happened, so nothing it references may be deleted.
    #[error("{0}")]
    CommitStateUnknown(String),
}

/// Iceberg errors inside DataFusion (scans, table providers) keep their message and kind.
impl From<IcebergError> for datafusion::common::DataFusionError {
    fn from(err: IcebergError) -> Self {
        datafusion::common::DataFusionError::External(Box::new(err))
    }
}
