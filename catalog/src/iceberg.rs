//! The Iceberg tables Osprey owns: their entries (in `osprey_tables`, as every table) and the
//! location of each one's current metadata file, swapped by a commit only if it is still the
//! file the commit was built on, as the JDBC catalog swaps it.

use crate::entries::TableEntry;
use crate::error::{CatalogError, db};
use crate::store::CatalogStore;
use crate::tables::insert_entry;

impl CatalogStore {
    /// Creates the Iceberg table `entry`, whose first metadata file is at `metadata_location`,
    /// in one transaction. Fails when a table or view of its name exists.
    pub async fn create_iceberg_table(
        &self,
        entry: &TableEntry,
        metadata_location: &str,
    ) -> Result<(), CatalogError> {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(db("creating an Iceberg table"))?;
        insert_entry(&mut tx, entry, false).await?;
        sqlx::query(
            "INSERT INTO osprey_iceberg_tables (table_id, metadata_location) VALUES ($1, $2)",
        )
        .bind(&entry.id)
        .bind(metadata_location)
        .execute(&mut *tx)
        .await
        .map_err(db("creating an Iceberg table"))?;
        tx.commit().await.map_err(db("creating an Iceberg table"))?;
        Ok(())
    }

    /// The current metadata file of the Iceberg table `table_id`; `None` when it has none
    /// (dropped meanwhile).
    pub async fn iceberg_metadata_location(
        &self,
        table_id: &str,
    ) -> Result<Option<String>, CatalogError> {
        sqlx::query_scalar(
            "SELECT metadata_location FROM osprey_iceberg_tables WHERE table_id = $1",
        )
        .bind(table_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db("reading an Iceberg table's metadata location"))
    }

    /// Points the Iceberg table `table_id` at `next` if it still points at `base`: `false`
    /// when another commit came first (or the table was dropped).
    pub async fn swap_iceberg_metadata(
        &self,
        table_id: &str,
        base: &str,
        next: &str,
    ) -> Result<bool, CatalogError> {
        let swapped = sqlx::query(
            "UPDATE osprey_iceberg_tables \
             SET metadata_location = $1, previous_metadata_location = $2 \
             WHERE table_id = $3 AND metadata_location = $2",
        )
        .bind(next)
        .bind(base)
        .bind(table_id)
        .execute(&self.pool)
        .await
        .map_err(db("committing to an Iceberg table"))?;
        Ok(swapped.rows_affected() == 1)
    }
}
