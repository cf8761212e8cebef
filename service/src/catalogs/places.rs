//! Where an Iceberg catalog's tables may keep their files: an attached catalog's anywhere but
//! Osprey's own storage, Osprey's own under its warehouse only.

use crate::error::QueryError;
use crate::locations::Locations;

/// Where a catalog's tables may keep their files.
#[derive(Debug, Clone)]
pub(crate) enum TablePlaces {
    /// An attached catalog's tables: anywhere but Osprey's own storage (the warehouse and the
    /// data directory).
    OutsideOspreyStorage(Locations),
    /// Osprey's own Iceberg tables: under the warehouse (a URL ending in `/`, normalized as
    /// locations are: see [`TablePlaces::warehouse`]) only.
    Warehouse(String),
}

impl TablePlaces {
    /// Osprey's own tables, under `warehouse`, normalized once here rather than at each check.
    pub(crate) fn warehouse(warehouse: &str) -> Self {
        Self::Warehouse(
            crate::locations::normalize(warehouse).unwrap_or_else(|_| warehouse.to_string()),
        )
    }

    /// Checks that a table at `location` keeps its files where it may.
    pub(crate) fn check(&self, location: &str) -> Result<(), QueryError> {
        match self {
            Self::OutsideOspreyStorage(locations) => {
                locations.check_unprotected(location).map(drop)
            }
            Self::Warehouse(warehouse) => {
                let url = crate::locations::normalize(location)?;
                match url.starts_with(warehouse.as_str()) {
                    true => Ok(()),
                    false => Err(QueryError::PermissionDenied(format!(
                        "{location} is outside the warehouse ({warehouse}), where the tables of \
                         Osprey's own catalog keep their files"
                    ))),
                }
            }
        }
    }
}
