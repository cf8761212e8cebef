//! Per-client session settings: the current catalog and schema (`USE`), and DataFusion options
//! changed with `SET` (undone with `RESET`).
//!
//! The coordinator's shared `SessionContext` is never changed by a client: each statement is
//! planned and run on a copy of its state with the client's settings applied. Front doors keep
//! one [`SessionSettings`] per client session in a [`SessionStore`].

use crate::auth::Principal;
use crate::error::QueryError;
use crate::metadata_tables::{MetadataFlavor, MetadataTables, SqlMetadata};
use datafusion::common::config::ConfigOptions;
use datafusion::execution::context::SessionState;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

/// What one client session changed from the server's defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionSettings {
    /// The current catalog (`USE catalog.schema`), if changed.
    pub catalog: Option<String>,
    /// The current schema (`USE schema`), if changed.
    pub schema: Option<String>,
    /// Options changed with `SET`, by their full DataFusion key.
    pub options: BTreeMap<String, String>,
    /// Who runs the session's statements; `None` for the coordinator itself (every right).
    /// Front doors always set it. Planning sees it as a `Principal` config extension, which
    /// `system.queries` reads to show non-admins only their own queries.
    pub principal: Option<Principal>,
    /// Whose metadata tables the session sees: `None` for Osprey's ([`crate::SqlMetadata`]:
    /// SQL type names in upper case); a front door whose clients expect another engine's sets
    /// its own.
    pub metadata: Option<MetadataFlavor>,
    /// Which of its user's roles the session acts with (`SET ROLE`; all by default).
    pub role: crate::policy::RoleSelection,
}

impl SessionSettings {
    /// Applies the settings to a copy of the server's state.
    ///
    /// ```
    /// use datafusion::prelude::SessionContext;
    /// use osprey_service::SessionSettings;
    ///
    /// let ctx = SessionContext::new();
    /// let mut settings = SessionSettings::default();
    /// settings.schema = Some("sales".into());
    /// settings.set(ctx.state().config_options(), "datafusion.execution.target_partitions", "3").unwrap();
    /// let mut state = ctx.state();
    /// settings.apply(&mut state).unwrap();
    /// assert_eq!(state.config_options().catalog.default_schema, "sales");
    /// assert_eq!(state.config_options().execution.target_partitions, 3);
    /// ```
    pub fn apply(&self, state: &mut SessionState) -> Result<(), QueryError> {
        state.config_mut().set_extension(Arc::new(
            crate::session_options::OspreySettings::from_options(&self.options),
        ));
        let options = state.config_mut().options_mut();
        let datafusion_options = self
            .options
            .iter()
            .filter(|(key, _)| !key.starts_with(crate::session_options::PREFIX));
        for (key, value) in datafusion_options {
            options.set(key, value).map_err(|err| {
                QueryError::InvalidStatement(crate::error_text::plain_message(&err))
            })?;
        }
        if let Some(catalog) = &self.catalog {
            options.catalog.default_catalog = catalog.clone();
        }
        if let Some(schema) = &self.schema {
            options.catalog.default_schema = schema.clone();
        }
        if let Some(principal) = &self.principal {
            state
                .config_mut()
                .set_extension(std::sync::Arc::new(principal.clone()));
        }
        // DataFusion answers `information_schema` itself when this is on, before asking the
        // catalogs; off, the flavor's catalog list answers it, with SQL type names.
        state.config_mut().options_mut().catalog.information_schema = false;
        let catalogs = match &self.metadata {
            Some(MetadataFlavor(tables)) => tables.wrap(Arc::clone(state.catalog_list())),
            None => SqlMetadata.wrap(Arc::clone(state.catalog_list())),
        };
        *state = datafusion::execution::SessionStateBuilder::new_from_existing(state.clone())
            .with_catalog_list(catalogs)
            .build();
        Ok(())
    }

    /// `SET variable = value`: checked against `defaults` (unknown keys and bad values are
    /// refused), then kept. `TIME ZONE`/`timezone` name DataFusion's time zone option. Users
    /// who are not admins may change only the settings of `USER_SETTINGS`, within their
    /// bounds: the rest size memory, parallelism and the parser, which the service sets for
    /// everyone.
    pub fn set(
        &mut self,
        defaults: &ConfigOptions,
        variable: &str,
        value: &str,
    ) -> Result<(), QueryError> {
        let key = option_key(variable);
        if key.starts_with(crate::session_options::PREFIX) {
            let value = crate::session_options::checked(&key, value)?;
            self.options.insert(key, value);
            return Ok(());
        }
        if self.principal.as_ref().is_some_and(|p| !p.is_admin) {
            check_user_setting(defaults, &key, value)?;
        }
        let mut check = defaults.clone();
        check.set(&key, value).map_err(|err| {
            QueryError::InvalidStatement(format!(
                "SET {variable}: {}; SHOW ALL lists the settings",
                crate::error_text::plain_message(&err)
            ))
        })?;
        self.options.insert(key, value.to_string());
        Ok(())
    }

    /// `RESET variable` (or `RESET ALL`): back to the server's default.
    pub fn reset(&mut self, variable: &str) {
        if variable.eq_ignore_ascii_case("all") {
            self.options.clear();
        } else {
            self.options.remove(&option_key(variable));
        }
    }
}

/// The settings any user may change (exact keys, or prefixes ending in `.`). Everything else
/// needs an admin.
pub const USER_SETTINGS: &[&str] = &[
    "datafusion.execution.time_zone",
    "datafusion.execution.batch_size",
    "datafusion.execution.target_partitions",
    "datafusion.execution.parquet.pushdown_filters",
    "datafusion.execution.parquet.reorder_filters",
    "datafusion.sql_parser.dialect",
    "datafusion.sql_parser.enable_ident_normalization",
    "datafusion.sql_parser.parse_float_as_decimal",
    "datafusion.explain.",
    "datafusion.format.",
];

/// The largest `batch_size` a user may set (DataFusion's default is 8,192).
pub const MAX_USER_BATCH_SIZE: usize = 65_536;

/// Settings under a `USER_SETTINGS` prefix that stay an admin's: statistics in `EXPLAIN` are
/// estimates over every row of a table, those a row filter hides included.
const ADMIN_ONLY_SETTINGS: &[&str] = &["datafusion.explain.show_statistics"];

fn check_user_setting(defaults: &ConfigOptions, key: &str, value: &str) -> Result<(), QueryError> {
    if ADMIN_ONLY_SETTINGS.contains(&key) {
        return Err(QueryError::PermissionDenied(format!(
            "SET {key} needs an admin: statistics count rows a row filter may hide from you"
        )));
    }
    let allowed = USER_SETTINGS
        .iter()
        .any(|setting| match setting.ends_with('.') {
            true => key.starts_with(setting),
            false => key == *setting,
        });
    if !allowed {
        return Err(QueryError::PermissionDenied(format!(
            "SET {key} needs an admin: it applies service-wide limits. Users may set {}",
            USER_SETTINGS
                .iter()
                .map(|s| match s.ends_with('.') {
                    true => format!("{s}*"),
                    false => s.to_string(),
                })
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let bound = match key {
        "datafusion.execution.batch_size" => Some(MAX_USER_BATCH_SIZE),
        // More partitions than the service plans with means more memory and threads per query.
        "datafusion.execution.target_partitions" => Some(defaults.execution.target_partitions),
        _ => None,
    };
    if let Some(bound) = bound {
        match value.trim().parse::<usize>() {
            Ok(n) if (1..=bound).contains(&n) => {}
            _ => {
                return Err(QueryError::InvalidStatement(format!(
                    "SET {key}: {value} is out of range: choose 1 to {bound}"
                )));
            }
        }
    }
    Ok(())
}

/// Whether `variable` names one of DataFusion's settings (as `SET` reads it).
pub fn is_known_option(defaults: &ConfigOptions, variable: &str) -> bool {
    let key = option_key(variable);
    crate::session_options::is_setting(&key)
        || defaults.entries().iter().any(|entry| entry.key == key)
}

/// The DataFusion key a `SET` names.
fn option_key(variable: &str) -> String {
    let lower = variable.trim().to_lowercase();
    match lower.as_str() {
        "timezone" | "time zone" | "time_zone" => "datafusion.execution.time_zone".to_string(),
        _ if lower.starts_with("datafusion.")
            || lower.starts_with(crate::session_options::PREFIX) =>
        {
            lower
        }
        // `SET batch_size = ...` is short for the execution option, as in DataFusion's CLI.
        _ => format!("datafusion.execution.{lower}"),
    }
}

/// Session settings by session id (a front door's handle for one client session, such as its
/// bearer token).
#[derive(Debug, Clone, Default)]
pub struct SessionStore {
    sessions: Arc<Mutex<HashMap<String, SessionSettings>>>,
}

impl SessionStore {
    /// The settings of session `id` (defaults if it has none).
    pub fn get(&self, id: &str) -> SessionSettings {
        self.lock().get(id).cloned().unwrap_or_default()
    }

    /// Stores `settings` for session `id`, and forgets sessions `is_live` rejects (their
    /// client's token expired or was revoked).
    pub fn put(&self, id: &str, settings: SessionSettings, is_live: impl Fn(&str) -> bool) {
        let mut sessions = self.lock();
        sessions.retain(|key, _| is_live(key));
        let unchanged = SessionSettings {
            principal: settings.principal.clone(),
            ..SessionSettings::default()
        };
        if settings == unchanged {
            sessions.remove(id);
        } else {
            sessions.insert(id.to_string(), settings);
        }
    }

    /// Forgets session `id`.
    pub fn close(&self, id: &str) {
        self.lock().remove(id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, SessionSettings>> {
        self.sessions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_checks_keys_and_values_and_reset_undoes() {
        let defaults = ConfigOptions::default();
        let mut settings = SessionSettings::default();
        settings.set(&defaults, "TIME ZONE", "+02:00").unwrap();
        settings.set(&defaults, "batch_size", "100").unwrap();
        assert_eq!(
            settings
                .options
                .get("datafusion.execution.time_zone")
                .unwrap(),
            "+02:00"
        );
        let unknown = settings.set(&defaults, "datafusion.nope", "1").unwrap_err();
        assert!(unknown.to_string().contains("SHOW ALL"), "{unknown}");
        assert!(settings.set(&defaults, "batch_size", "many").is_err());
        settings.reset("batch_size");
        assert_eq!(settings.options.len(), 1);
        settings.reset("ALL");
        assert!(settings.options.is_empty());
    }

    #[test]
    fn users_change_only_harmless_settings_within_bounds() {
        let mut defaults = ConfigOptions::default();
        defaults.execution.target_partitions = 8;
        let mut settings = SessionSettings {
            principal: Some(crate::auth::Principal {
                user: "ana".into(),
                user_id: "ana-id".into(),
                is_admin: false,
                session_id: None,
            }),
            ..SessionSettings::default()
        };
        settings.set(&defaults, "TIME ZONE", "+02:00").unwrap();
        settings.set(&defaults, "target_partitions", "4").unwrap();
        settings
            .set(&defaults, "datafusion.explain.format", "tree")
            .unwrap();
        for (key, value) in [
            ("target_partitions", "4000"),
            ("batch_size", "100000000"),
            ("batch_size", "0"),
        ] {
            let err = settings.set(&defaults, key, value).unwrap_err();
            assert!(err.to_string().contains("out of range"), "{err}");
        }
        for key in [
            "datafusion.execution.sort_spill_reservation_bytes",
            "datafusion.sql_parser.recursion_limit",
            "datafusion.catalog.information_schema",
        ] {
            let err = settings.set(&defaults, key, "1").unwrap_err();
            assert!(
                matches!(err, QueryError::PermissionDenied(_)),
                "{key}: {err}"
            );
        }
        // Admins set anything DataFusion knows.
        settings.principal.as_mut().unwrap().is_admin = true;
        settings
            .set(
                &defaults,
                "datafusion.execution.sort_spill_reservation_bytes",
                "1",
            )
            .unwrap();
    }
}
