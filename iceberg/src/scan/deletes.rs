//! Row-level deletes, applied where a data file is read (on the executor that reads it).
//!
//! The coordinator says, for each data file of a scan, which delete files apply to it
//! ([`ScanDeletes`], matched by sequence number as the spec says); executors read those files
//! and apply them:
//! - position deletes (v2) and deletion vectors (v3, Puffin `deletion-vector-v1` blobs) become
//!   one set of deleted row positions, which the Parquet reader skips (a row selection), so
//!   pruning, page skipping and limits still work;
//! - equality deletes (v2) drop the rows whose values in the delete's columns equal one of the
//!   delete file's rows (NULL equals NULL, as the spec says), after the file is read.

use crate::error::IcebergError;
use datafusion::arrow::array::{Array, ArrayRef, BooleanArray, Int64Array, RecordBatch};
use datafusion::arrow::compute::{cast, filter_record_batch};
use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::arrow::row::{OwnedRow, RowConverter, SortField};
use datafusion::common::{DataFusionError, Result};
use datafusion::parquet::arrow::arrow_reader::{
    ParquetRecordBatchReaderBuilder, RowSelection, RowSelector,
};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use roaring::RoaringTreemap;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

/// The delete files of a scan, by the store path of the data file they apply to.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ScanDeletes {
    /// Data files that have deletes, by store path.
    pub files: HashMap<String, DataFileDeletes>,
}

/// The deletes of one data file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataFileDeletes {
    /// The data file's location as the metadata writes it (position delete files name it so).
    pub location: String,
    /// Its rows.
    pub record_count: u64,
    /// The delete files that apply.
    pub deletes: Vec<DeleteFile>,
}

/// One delete file, as executors need it: where it is and what it holds. Never credentials.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DeleteFile {
    /// Its path in the table's object store.
    pub path: String,
    /// Its location as the metadata writes it, for errors.
    pub location: String,
    /// Its size in bytes.
    pub size: u64,
    /// What it holds.
    pub kind: DeleteKind,
}

/// What a delete file holds.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DeleteKind {
    /// A Parquet file of `(file_path, pos)` rows.
    Positions,
    /// A deletion vector: the blob at `offset` (`length` bytes) of a Puffin file.
    Vector {
        /// The blob's offset in the file.
        offset: u64,
        /// The blob's length.
        length: u64,
    },
    /// A Parquet file of rows whose values in the columns `field_ids` delete equal rows.
    Equality {
        /// The equality columns' field ids.
        field_ids: Vec<i32>,
    },
}

/// The deletes of one data file, loaded: the positions to skip and the equality sets to drop.
#[derive(Debug, Default)]
pub(crate) struct LoadedDeletes {
    pub positions: RoaringTreemap,
    pub equality: Vec<Arc<EqualitySet>>,
}

/// The rows of one equality delete file, over its columns as the table types them.
pub(crate) struct EqualitySet {
    /// The equality columns, by field id.
    pub field_ids: Vec<i32>,
    converter: RowConverter,
    rows: HashSet<OwnedRow>,
}

impl std::fmt::Debug for EqualitySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EqualitySet")
            .field("field_ids", &self.field_ids)
            .field("rows", &self.rows.len())
            .finish()
    }
}

impl EqualitySet {
    /// Which rows of `columns` (the equality columns, in `field_ids` order, as the table types
    /// them) survive: false where a delete row equals the row.
    pub fn keep(&self, columns: &[ArrayRef]) -> Result<BooleanArray> {
        let rows = self.converter.convert_columns(columns)?;
        Ok((0..rows.num_rows())
            .map(|i| Some(!self.rows.contains(&rows.row(i).owned())))
            .collect())
    }
}

/// Delete files already read by this process for one scan, shared by its partitions: a
/// position delete file often covers many data files.
#[derive(Debug, Default)]
pub(crate) struct DeleteCache {
    positions: Mutex<HashMap<String, Arc<HashMap<String, RoaringTreemap>>>>,
    equality: Mutex<HashMap<String, Arc<EqualitySet>>>,
}

/// Reads the deletes of one data file. `column_type` gives the table's type of a field id (the
/// type equality values are compared as).
pub(crate) async fn load(
    store: &Arc<dyn ObjectStore>,
    file: &DataFileDeletes,
    cache: &DeleteCache,
    column_type: &(dyn Fn(i32) -> Option<Field> + Send + Sync),
) -> Result<LoadedDeletes> {
    let mut loaded = LoadedDeletes::default();
    for delete in &file.deletes {
        match &delete.kind {
            DeleteKind::Positions => {
                let cached = lock(&cache.positions).get(&delete.path).cloned();
                let by_file = match cached {
                    Some(by_file) => by_file,
                    None => {
                        let by_file = Arc::new(read_positions(store, delete).await?);
                        lock(&cache.positions).insert(delete.path.clone(), Arc::clone(&by_file));
                        by_file
                    }
                };
                if let Some(positions) = by_file.get(&file.location) {
                    loaded.positions |= positions;
                }
            }
            DeleteKind::Vector { offset, length } => {
                loaded.positions |= read_vector(store, delete, *offset, *length).await?;
            }
            DeleteKind::Equality { field_ids } => {
                let cached = lock(&cache.equality).get(&delete.path).cloned();
                let set = match cached {
                    Some(set) => set,
                    None => {
                        let set =
                            Arc::new(read_equality(store, delete, field_ids, column_type).await?);
                        lock(&cache.equality).insert(delete.path.clone(), Arc::clone(&set));
                        set
                    }
                };
                loaded.equality.push(set);
            }
        }
    }
    Ok(loaded)
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The rows of a file of `record_count` rows left once `deleted` positions are skipped.
pub(crate) fn selection_without(deleted: &RoaringTreemap, record_count: u64) -> RowSelection {
    let mut selectors = Vec::new();
    let mut next = 0u64;
    for position in deleted.iter().take_while(|p| *p < record_count) {
        if position > next {
            selectors.push(RowSelector::select((position - next) as usize));
            selectors.push(RowSelector::skip(1));
        } else {
            match selectors.last_mut() {
                Some(last) if last.skip => last.row_count += 1,
                _ => selectors.push(RowSelector::skip(1)),
            }
        }
        next = position + 1;
    }
    if next < record_count {
        selectors.push(RowSelector::select((record_count - next) as usize));
    }
    RowSelection::from(selectors)
}

fn delete_error(delete: &DeleteFile, message: impl std::fmt::Display) -> DataFusionError {
    DataFusionError::External(Box::new(IcebergError::Invalid(format!(
        "delete file {}: {message}",
        delete.location
    ))))
}

/// The batches of a Parquet delete file.
async fn read_parquet(
    store: &Arc<dyn ObjectStore>,
    delete: &DeleteFile,
) -> Result<Vec<RecordBatch>> {
    // Delete files are small next to the data they delete from: read whole, then decoded.
    let bytes = store
        .get(&Path::from(delete.path.as_str()))
        .await
        .map_err(|err| delete_error(delete, err))?
        .bytes()
        .await
        .map_err(|err| delete_error(delete, err))?;
    ParquetRecordBatchReaderBuilder::try_new(bytes)
        .and_then(|builder| builder.build())
        .map_err(|err| delete_error(delete, err))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| delete_error(delete, err))
}

/// A position delete file's positions, by the data file location they delete from.
async fn read_positions(
    store: &Arc<dyn ObjectStore>,
    delete: &DeleteFile,
) -> Result<HashMap<String, RoaringTreemap>> {
    let mut by_file: HashMap<String, RoaringTreemap> = HashMap::new();
    for batch in read_parquet(store, delete).await? {
        let column = |name: &str| {
            batch
                .column_by_name(name)
                .ok_or_else(|| delete_error(delete, format!("no {name} column")))
        };
        let paths = cast(column("file_path")?, &DataType::Utf8)?;
        let paths = paths
            .as_any()
            .downcast_ref::<datafusion::arrow::array::StringArray>()
            .ok_or_else(|| delete_error(delete, "file_path is not a string"))?;
        let positions = cast(column("pos")?, &DataType::Int64)?;
        let positions = positions
            .as_any()
            .downcast_ref::<Int64Array>()
            .ok_or_else(|| delete_error(delete, "pos is not a long"))?;
        for row in 0..batch.num_rows() {
            if paths.is_null(row) || positions.is_null(row) || positions.value(row) < 0 {
                return Err(delete_error(
                    delete,
                    "a row with a null or negative position",
                ));
            }
            by_file
                .entry(paths.value(row).to_string())
                .or_default()
                .insert(positions.value(row) as u64);
        }
    }
    Ok(by_file)
}

/// The magic that starts a `deletion-vector-v1` blob.
const VECTOR_MAGIC: [u8; 4] = [0xD1, 0xD3, 0x39, 0x64];

/// A deletion vector: the Puffin blob's length (4 bytes, big-endian), magic, a portable 64-bit
/// roaring bitmap, and the CRC-32 of magic and bitmap (big-endian).
async fn read_vector(
    store: &Arc<dyn ObjectStore>,
    delete: &DeleteFile,
    offset: u64,
    length: u64,
) -> Result<RoaringTreemap> {
    let blob = store
        .get_range(&Path::from(delete.path.as_str()), offset..offset + length)
        .await
        .map_err(|err| delete_error(delete, err))?;
    decode_vector(&blob).map_err(|message| delete_error(delete, message))
}

/// Decodes a `deletion-vector-v1` blob (see [`read_vector`]).
pub(crate) fn decode_vector(blob: &[u8]) -> Result<RoaringTreemap, String> {
    if blob.len() < 12 {
        return Err(format!(
            "a deletion vector of {} bytes is too short",
            blob.len()
        ));
    }
    let declared = u32::from_be_bytes(blob[0..4].try_into().expect("4 bytes")) as usize;
    if declared + 8 != blob.len() {
        return Err(format!(
            "a deletion vector declares {declared} bytes but its blob holds {}",
            blob.len() - 8
        ));
    }
    let body = &blob[4..4 + declared];
    if body[0..4] != VECTOR_MAGIC {
        return Err("not a deletion vector (bad magic)".to_string());
    }
    let crc = u32::from_be_bytes(blob[4 + declared..].try_into().expect("4 bytes"));
    if crc32fast::hash(body) != crc {
        return Err("the deletion vector's checksum does not match".to_string());
    }
    RoaringTreemap::deserialize_from(&body[4..])
        .map_err(|err| format!("an unreadable deletion vector: {err}"))
}

/// Encodes `positions` as a `deletion-vector-v1` blob: its length (4 bytes, big-endian), the
/// magic, the portable 64-bit roaring bitmap and the CRC-32 of magic and bitmap.
pub fn encode_vector(positions: &RoaringTreemap) -> Vec<u8> {
    let mut body = VECTOR_MAGIC.to_vec();
    positions
        .serialize_into(&mut body)
        .expect("writing to a Vec cannot fail");
    let mut blob = (body.len() as u32).to_be_bytes().to_vec();
    blob.extend_from_slice(&body);
    blob.extend_from_slice(&crc32fast::hash(&body).to_be_bytes());
    blob
}

/// An equality delete file's rows over its columns `field_ids`, typed as the table types them.
async fn read_equality(
    store: &Arc<dyn ObjectStore>,
    delete: &DeleteFile,
    field_ids: &[i32],
    column_type: &(dyn Fn(i32) -> Option<Field> + Send + Sync),
) -> Result<EqualitySet> {
    let fields = field_ids
        .iter()
        .map(|id| {
            column_type(*id).ok_or_else(|| {
                delete_error(
                    delete,
                    format!("equality field id {id} is not a table column"),
                )
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let converter = RowConverter::new(
        fields
            .iter()
            .map(|field| SortField::new(field.data_type().clone()))
            .collect(),
    )?;
    let mut rows = HashSet::new();
    for batch in read_parquet(store, delete).await? {
        let columns = field_ids
            .iter()
            .zip(&fields)
            .map(|(id, field)| {
                let index = batch
                    .schema()
                    .fields()
                    .iter()
                    .position(|f| super::field_ids::field_id(f) == Some(*id))
                    .ok_or_else(|| delete_error(delete, format!("no column with field id {id}")))?;
                Ok(cast(batch.column(index), field.data_type())?)
            })
            .collect::<Result<Vec<_>>>()?;
        let converted = converter.convert_columns(&columns)?;
        rows.extend(converted.iter().map(|row| row.owned()));
    }
    Ok(EqualitySet {
        field_ids: field_ids.to_vec(),
        converter,
        rows,
    })
}

/// `batch` without the rows an equality set deletes; `columns_of` finds the set's columns in
/// the batch.
pub(crate) fn drop_equal_rows(
    batch: RecordBatch,
    sets: &[Arc<EqualitySet>],
    columns_of: &dyn Fn(&EqualitySet, &RecordBatch) -> Result<Vec<ArrayRef>>,
) -> Result<RecordBatch> {
    let mut batch = batch;
    for set in sets {
        let columns = columns_of(set, &batch)?;
        let keep = set.keep(&columns)?;
        batch = filter_record_batch(&batch, &keep)?;
    }
    Ok(batch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deletion_vectors_round_trip_and_are_checked() {
        let positions: RoaringTreemap = [0u64, 5, 1 << 33].into_iter().collect();
        let blob = encode_vector(&positions);
        assert_eq!(decode_vector(&blob).unwrap(), positions);
        let mut corrupt = blob.clone();
        let last = corrupt.len() - 5;
        corrupt[last] ^= 0xFF;
        assert!(decode_vector(&corrupt).unwrap_err().contains("checksum"));
        assert!(decode_vector(&blob[..6]).is_err());
    }

    #[test]
    fn deleted_positions_become_a_selection_of_the_rest() {
        let deleted: RoaringTreemap = [0u64, 3, 4, 9, 12].into_iter().collect();
        let selection = selection_without(&deleted, 10);
        assert_eq!(selection.row_count(), 6);
        assert_eq!(
            Vec::<RowSelector>::from(selection),
            vec![
                RowSelector::skip(1),
                RowSelector::select(2),
                RowSelector::skip(2),
                RowSelector::select(4),
                RowSelector::skip(1),
            ]
        );
    }
}
