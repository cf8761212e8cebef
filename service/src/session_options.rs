//! Osprey's own session settings, `SET osprey.<name> = '<value>'`. They are kept with a
//! session's DataFusion options but never set into DataFusion's configuration (which travels
//! to executors, where they would mean nothing): the statement's planning state carries them
//! as a config extension ([`OspreySettings`]).
//!
//! | Setting | Values | Default |
//! |---|---|---|
//! | `osprey.partition_overwrite_mode` | `static`: `INSERT OVERWRITE` replaces every row of the table; `dynamic`: only the partitions the new rows fall in (Spark's `partitionOverwriteMode`) | `static` |

use crate::error::QueryError;
use datafusion::execution::SessionState;
use std::collections::BTreeMap;

/// The prefix of Osprey's settings.
pub(crate) const PREFIX: &str = "osprey.";

/// Every setting and the values it takes.
const SETTINGS: &[(&str, &[&str])] = &[("osprey.partition_overwrite_mode", &["static", "dynamic"])];

/// How `INSERT OVERWRITE` replaces a partitioned Iceberg table's rows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PartitionOverwriteMode {
    /// Every row of the table.
    #[default]
    Static,
    /// The rows of the partitions the new rows fall in.
    Dynamic,
}

/// A session's Osprey settings, as one statement sees them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OspreySettings {
    /// `osprey.partition_overwrite_mode`.
    pub partition_overwrite_mode: PartitionOverwriteMode,
}

impl OspreySettings {
    /// The settings among a session's options (by full key).
    pub(crate) fn from_options(options: &BTreeMap<String, String>) -> Self {
        let mode = match options
            .get("osprey.partition_overwrite_mode")
            .map(String::as_str)
        {
            Some("dynamic") => PartitionOverwriteMode::Dynamic,
            _ => PartitionOverwriteMode::Static,
        };
        Self {
            partition_overwrite_mode: mode,
        }
    }

    /// The settings of the statement planned with `state`.
    pub(crate) fn of(state: &SessionState) -> Self {
        state
            .config()
            .get_extension::<OspreySettings>()
            .map(|settings| *settings)
            .unwrap_or_default()
    }
}

/// Whether `key` (lower case) is one of Osprey's settings.
pub(crate) fn is_setting(key: &str) -> bool {
    SETTINGS.iter().any(|(name, _)| *name == key)
}

/// `value` for the setting `key` (lower case), checked: a setting Osprey has, a value it
/// takes.
pub(crate) fn checked(key: &str, value: &str) -> Result<String, QueryError> {
    let Some((_, values)) = SETTINGS.iter().find(|(name, _)| *name == key) else {
        return Err(QueryError::InvalidStatement(format!(
            "SET {key}: Osprey has no such setting; its settings are {}",
            SETTINGS
                .iter()
                .map(|(name, _)| *name)
                .collect::<Vec<_>>()
                .join(", ")
        )));
    };
    let value = value.trim().trim_matches('\'').to_ascii_lowercase();
    match values.contains(&value.as_str()) {
        true => Ok(value),
        false => Err(QueryError::InvalidStatement(format!(
            "SET {key} = '{value}': it takes {}",
            values.join(" or ")
        ))),
    }
}
