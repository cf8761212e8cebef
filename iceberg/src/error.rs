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
}

/// Iceberg errors inside DataFusion (scans, table providers) keep their message and kind.
impl From<IcebergError> for datafusion::common::DataFusionError {
    fn from(err: IcebergError) -> Self {
        datafusion::common::DataFusionError::External(Box::new(err))
    }
}
