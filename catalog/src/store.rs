//! The catalog database: connecting to SQLite or PostgreSQL, the embedded migrations, and the
//! helpers every part of the store shares (its transactions, timestamps, redacted URLs).

use crate::error::{CatalogError, db};
use sqlx::AnyPool;
use sqlx::any::AnyPoolOptions;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use std::borrow::Cow;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_millis() as i64
}

/// The embedded migrations. Built by hand rather than with `sqlx::migrate!` so the crate needs
/// no proc-macro build of sqlx; the SQL files are still the single source.
fn migrator() -> Migrator {
    Migrator {
        migrations: Cow::Owned(vec![
            Migration::new(
                1,
                Cow::Borrowed("catalog"),
                MigrationType::Simple,
                Cow::Borrowed(include_str!("../migrations/0001_catalog.sql")),
                false,
            ),
            Migration::new(
                2,
                Cow::Borrowed("query history"),
                MigrationType::Simple,
                Cow::Borrowed(include_str!("../migrations/0002_query_history.sql")),
                false,
            ),
            Migration::new(
                3,
                Cow::Borrowed("users"),
                MigrationType::Simple,
                Cow::Borrowed(include_str!("../migrations/0003_users.sql")),
                false,
            ),
            Migration::new(
                4,
                Cow::Borrowed("query attempts"),
                MigrationType::Simple,
                Cow::Borrowed(include_str!("../migrations/0004_query_attempts.sql")),
                false,
            ),
            Migration::new(
                5,
                Cow::Borrowed("workgroups"),
                MigrationType::Simple,
                Cow::Borrowed(include_str!("../migrations/0005_workgroups.sql")),
                false,
            ),
            Migration::new(
                6,
                Cow::Borrowed("locations"),
                MigrationType::Simple,
                Cow::Borrowed(include_str!("../migrations/0006_locations.sql")),
                false,
            ),
            Migration::new(
                7,
                Cow::Borrowed("user ids"),
                MigrationType::Simple,
                Cow::Borrowed(include_str!("../migrations/0007_user_ids.sql")),
                false,
            ),
            Migration::new(
                8,
                Cow::Borrowed("attached catalogs"),
                MigrationType::Simple,
                Cow::Borrowed(include_str!("../migrations/0008_attached_catalogs.sql")),
                false,
            ),
            Migration::new(
                9,
                Cow::Borrowed("iceberg tables"),
                MigrationType::Simple,
                Cow::Borrowed(include_str!("../migrations/0009_iceberg_tables.sql")),
                false,
            ),
            Migration::new(
                10,
                Cow::Borrowed("privileges"),
                MigrationType::Simple,
                Cow::Borrowed(include_str!("../migrations/0010_privileges.sql")),
                false,
            ),
            Migration::new(
                11,
                Cow::Borrowed("data filters"),
                MigrationType::Simple,
                Cow::Borrowed(include_str!("../migrations/0011_data_filters.sql")),
                false,
            ),
            Migration::new(
                12,
                Cow::Borrowed("audit"),
                MigrationType::Simple,
                Cow::Borrowed(include_str!("../migrations/0012_audit.sql")),
                false,
            ),
            Migration::new(
                13,
                Cow::Borrowed("tags"),
                MigrationType::Simple,
                Cow::Borrowed(include_str!("../migrations/0013_tags.sql")),
                false,
            ),
        ]),
        ..Migrator::DEFAULT
    }
}

/// The catalog database.
#[derive(Debug, Clone)]
pub struct CatalogStore {
    pub(crate) pool: AnyPool,
}

impl CatalogStore {
    /// Connects (creating an SQLite file if needed) and applies pending migrations.
    pub async fn open(url: &str) -> Result<Self, CatalogError> {
        sqlx::any::install_default_drivers();
        let is_sqlite = url.starts_with("sqlite:");
        if !is_sqlite && !url.starts_with("postgres://") && !url.starts_with("postgresql://") {
            return Err(CatalogError::UnsupportedUrl(redact_url(url)));
        }
        let url = if is_sqlite && !url.contains("mode=") {
            // Create the database file on first start.
            let separator = if url.contains('?') { '&' } else { '?' };
            format!("{url}{separator}mode=rwc")
        } else {
            url.to_string()
        };
        let pool = AnyPoolOptions::new()
            // SQLite serializes writers anyway; one connection avoids "database is locked".
            .max_connections(if is_sqlite { 1 } else { 8 })
            .acquire_timeout(Duration::from_secs(10))
            .connect(&url)
            .await
            .map_err(db("connecting"))?;
        if is_sqlite {
            sqlx::query("PRAGMA journal_mode=WAL")
                .execute(&pool)
                .await
                .map_err(db("enabling the SQLite write-ahead log"))?;
        }
        migrator().run(&pool).await?;
        Ok(Self { pool })
    }
}

pub(crate) type Tx<'a> = sqlx::Transaction<'a, sqlx::Any>;

/// The URL with any password replaced, for error messages and logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("postgres://osprey:hunter2@db:5432/catalog"),
            "postgres://osprey:***@db:5432/catalog"
        );
        assert_eq!(
            redact_url("sqlite:///x/catalog.db"),
            "sqlite:///x/catalog.db"
        );
    }
}
