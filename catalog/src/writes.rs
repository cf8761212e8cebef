//! Writes in progress: recorded before their files are written, published into a managed
//! table in one transaction, and listed after a crash so that their files can be cleaned up.

use crate::entries::DataFile;
use crate::error::{CatalogError, db};
use crate::store::{CatalogStore, Tx, now_ms};
use sqlx::Row;

/// A write that started and was never published or cleaned up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingWrite {
    /// The write's id.
    pub write_id: String,
    /// The URL prefix everything the write produced lives under.
    pub staging_prefix: String,
}

impl CatalogStore {
    /// Records that a write is about to put files under `staging_prefix`.
    pub async fn begin_write(
        &self,
        write_id: &str,
        staging_prefix: &str,
    ) -> Result<(), CatalogError> {
        sqlx::query(
            "INSERT INTO osprey_pending_writes (write_id, staging_prefix, started_at_ms) VALUES ($1, $2, $3)",
        )
        .bind(write_id)
        .bind(staging_prefix)
        .bind(now_ms())
        .execute(&self.pool)
        .await
        .map_err(db("recording a write"))?;
        Ok(())
    }

    /// Publishes a write's files into a managed table, in one transaction. Fails with
    /// [`CatalogError::NotFound`] if the table was dropped meanwhile.
    pub async fn append_files(
        &self,
        table_id: &str,
        files: &[DataFile],
        write_id: &str,
    ) -> Result<(), CatalogError> {
        let mut tx = self.pool.begin().await.map_err(db("publishing a write"))?;
        if sqlx::query("SELECT 1 FROM osprey_tables WHERE table_id = $1")
            .bind(table_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db("publishing a write"))?
            .is_none()
        {
            return Err(CatalogError::NotFound {
                kind: "table",
                name: format!("with id {table_id} (it was dropped while the write ran)"),
            });
        }
        insert_files(&mut tx, table_id, files, write_id).await?;
        finish_pending(&mut tx, write_id).await?;
        tx.commit().await.map_err(db("publishing a write"))?;
        Ok(())
    }

    /// Forgets a pending write whose files were cleaned up (or published elsewhere).
    pub async fn end_write(&self, write_id: &str) -> Result<(), CatalogError> {
        sqlx::query("DELETE FROM osprey_pending_writes WHERE write_id = $1")
            .bind(write_id)
            .execute(&self.pool)
            .await
            .map_err(db("forgetting a write"))?;
        Ok(())
    }

    /// Writes that were never published nor cleaned up (a coordinator crashed meanwhile).
    pub async fn pending_writes(&self) -> Result<Vec<PendingWrite>, CatalogError> {
        sqlx::query("SELECT write_id, staging_prefix FROM osprey_pending_writes")
            .fetch_all(&self.pool)
            .await
            .map_err(db("reading pending writes"))?
            .into_iter()
            .map(|row| {
                Ok(PendingWrite {
                    write_id: row.try_get(0).map_err(db("reading pending writes"))?,
                    staging_prefix: row.try_get(1).map_err(db("reading pending writes"))?,
                })
            })
            .collect()
    }
}

pub(crate) async fn insert_files(
    tx: &mut Tx<'_>,
    table_id: &str,
    files: &[DataFile],
    write_id: &str,
) -> Result<(), CatalogError> {
    for file in files {
        sqlx::query(
            "INSERT INTO osprey_table_files (table_id, path, size_bytes, row_count, write_id) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(table_id)
        .bind(&file.path)
        .bind(file.size_bytes.min(i64::MAX as u64) as i64)
        .bind(file.row_count.min(i64::MAX as u64) as i64)
        .bind(write_id)
        .execute(&mut **tx)
        .await
        .map_err(db("publishing data files"))?;
    }
    Ok(())
}

pub(crate) async fn finish_pending(tx: &mut Tx<'_>, write_id: &str) -> Result<(), CatalogError> {
    sqlx::query("DELETE FROM osprey_pending_writes WHERE write_id = $1")
        .bind(write_id)
        .execute(&mut **tx)
        .await
        .map_err(db("publishing a write"))?;
    Ok(())
}
