//! The files a commit writes and reads in the table's object store: a file read whole, and
//! the record of what a commit attempt wrote, deleted when the attempt does not become the
//! table's.

use crate::error::IcebergError;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions};
use std::sync::Arc;

/// The bytes of the file `path` of `store`.
pub(super) async fn read(store: &dyn ObjectStore, path: &Path) -> Result<Vec<u8>, IcebergError> {
    let fail =
        |err: object_store::Error| IcebergError::Invalid(format!("cannot read {path}: {err}"));
    Ok(store
        .get(path)
        .await
        .map_err(fail)?
        .bytes()
        .await
        .map_err(fail)?
        .to_vec())
}

/// Files a commit attempt wrote, deleted when it does not become the table's.
pub(super) struct Written {
    store: Arc<dyn ObjectStore>,
    paths: Vec<Path>,
}

impl Written {
    pub(super) fn new(store: Arc<dyn ObjectStore>) -> Self {
        Self {
            store,
            paths: Vec::new(),
        }
    }

    /// Writes a new file, unless one is there already: `false` then.
    pub(super) async fn create_new(
        &mut self,
        path: &Path,
        bytes: Vec<u8>,
    ) -> Result<bool, IcebergError> {
        let options = PutOptions {
            mode: PutMode::Create,
            ..PutOptions::default()
        };
        match self.store.put_opts(path, bytes.into(), options).await {
            Ok(_) => {
                self.paths.push(path.clone());
                Ok(true)
            }
            Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
            Err(err) => Err(IcebergError::Invalid(format!("cannot write {path}: {err}"))),
        }
    }

    /// Writes a new file (never over an existing one).
    pub(super) async fn create(&mut self, path: &Path, bytes: Vec<u8>) -> Result<(), IcebergError> {
        let options = PutOptions {
            mode: PutMode::Create,
            ..PutOptions::default()
        };
        self.store
            .put_opts(path, bytes.into(), options)
            .await
            .map_err(|err| IcebergError::Invalid(format!("cannot write {path}: {err}")))?;
        self.paths.push(path.clone());
        Ok(())
    }

    pub(super) async fn delete_all(&mut self) {
        for path in self.paths.drain(..) {
            if let Err(err) = self.store.delete(&path).await {
                tracing::warn!(%path, error = %err, "cannot delete a file of a failed Iceberg commit");
            }
        }
    }
}
