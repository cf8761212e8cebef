//! Deletion vectors for format-3 tables (spec: "Deletion Vectors", Puffin
//! `deletion-vector-v1`): the positions a row-level change deletes from each data file, merged
//! with what the file's current vector (or file-scoped position deletes) already deleted, as
//! one blob per data file in one Puffin file per commit.
//!
//! The executors write positions as Parquet (`file_path`, `pos`), as for format 2; here the
//! coordinator reads them back (they are small: two columns of the changed rows), builds the
//! vectors and writes the Puffin file. Puffin is written by hand (its layout is a magic, the
//! blobs, and a JSON footer between magics; no crate on crates.io writes it without pulling in
//! another Iceberg implementation).

use super::manifests::AddedFile;
use super::metrics::WrittenMetrics;
use crate::error::IcebergError;
use crate::plan::{LiveFile, SnapshotFiles};
use crate::scan::deletes::{decode_vector, encode_vector};
use crate::scan::location::StoreLocation;
use datafusion::arrow::array::Int64Array;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use object_store::{ObjectStore, ObjectStoreExt};
use roaring::RoaringTreemap;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

const PUFFIN_MAGIC: &[u8; 4] = b"PFA1";
/// The reserved field id a deletion vector's blob names (`_pos`).
const POSITION_FIELD_ID: i32 = 2147483645;

/// The vectors of one commit.
pub(super) struct Vectors {
    /// One added delete file per data file, all in one Puffin file.
    pub files: Vec<(AddedFile, String)>,
    /// The data files whose earlier vector or position deletes the new vectors replace.
    pub superseded: BTreeSet<String>,
    /// The Puffin file, written.
    pub puffin: Option<object_store::path::Path>,
}

/// Reads the positions a change deletes (Parquet files of `file_path`, `pos`: their location,
/// the data file they are in, their size), merges each data file's set with what `live`
/// already deletes from it, and writes the vectors as one Puffin file under the table's
/// `data/` directory. Each added file's partition is left empty for the caller to fill with
/// its data file's.
pub(super) async fn write_vectors(
    store: &Arc<dyn ObjectStore>,
    table: &StoreLocation,
    table_location: &str,
    positions: &[(String, String, u64)],
    live: &SnapshotFiles,
) -> Result<Vectors, IcebergError> {
    let data_files: BTreeMap<&str, &LiveFile> = live
        .data
        .iter()
        .map(|file| (file.file.file_path.as_str(), file))
        .collect();
    let mut by_file: BTreeMap<String, RoaringTreemap> = BTreeMap::new();
    for (location, data_file, _) in positions {
        let bitmap = by_file.entry(data_file.clone()).or_default();
        read_positions(store, &table.path_of(location)?, bitmap).await?;
    }
    let mut superseded = BTreeSet::new();
    let mut blobs: Vec<(String, Vec<u8>, u64)> = Vec::new();
    for (data_file, mut bitmap) in by_file {
        let Some(data) = data_files.get(data_file.as_str()) else {
            return Err(IcebergError::Invalid(format!(
                "a deletion names {data_file}, which is not a live data file"
            )));
        };
        for earlier in live.deletes_for(data) {
            if earlier.file.referenced_data_file.as_deref() != Some(data_file.as_str()) {
                continue;
            }
            let earlier_path = table.path_of(&earlier.file.file_path)?;
            match (
                earlier.file.content_offset,
                earlier.file.content_size_in_bytes,
            ) {
                (Some(offset), Some(length)) => {
                    let range = offset as u64..(offset + length) as u64;
                    let blob = store
                        .get_range(&earlier_path, range)
                        .await
                        .map_err(|err| read_error(&earlier.file.file_path, &err))?;
                    bitmap |= decode_vector(&blob).map_err(IcebergError::Invalid)?;
                }
                _ => read_positions(store, &earlier_path, &mut bitmap).await?,
            }
            superseded.insert(data_file.clone());
        }
        let cardinality = bitmap.len();
        blobs.push((data_file, encode_vector(&bitmap), cardinality));
    }
    if blobs.is_empty() {
        return Ok(Vectors {
            files: Vec::new(),
            superseded,
            puffin: None,
        });
    }
    let location = format!(
        "{}/data/{}-deletes.puffin",
        table_location.trim_end_matches('/'),
        uuid::Uuid::new_v4()
    );
    let (bytes, placed) = puffin_file(&blobs);
    let size = bytes.len() as i64;
    let path = table.path_of(&location)?;
    store
        .put(&path, bytes.into())
        .await
        .map_err(|err| IcebergError::Invalid(format!("cannot write {location}: {err}")))?;
    let mut files = Vec::with_capacity(placed.len());
    for (data_file, offset, length, cardinality) in placed {
        files.push((
            AddedFile {
                location: location.clone(),
                size,
                metrics: WrittenMetrics {
                    record_count: cardinality as i64,
                    ..WrittenMetrics::default()
                },
                partition: Vec::new(),
                referenced_data_file: Some(data_file.clone()),
                vector: Some((offset, length)),
            },
            data_file,
        ));
    }
    Ok(Vectors {
        files,
        superseded,
        puffin: Some(path),
    })
}

/// Where a vector is in its Puffin file: its data file, offset, length and cardinality.
type Placed = (String, i64, i64, u64);

/// The Puffin file of `blobs` (data file, `deletion-vector-v1` blob, cardinality): its bytes,
/// and where each blob is.
fn puffin_file(blobs: &[(String, Vec<u8>, u64)]) -> (Vec<u8>, Vec<Placed>) {
    let mut bytes = PUFFIN_MAGIC.to_vec();
    let mut footer_blobs = Vec::new();
    let mut placed = Vec::new();
    for (data_file, blob, cardinality) in blobs {
        let offset = bytes.len();
        bytes.extend_from_slice(blob);
        footer_blobs.push(serde_json::json!({
            "type": "deletion-vector-v1",
            "fields": [POSITION_FIELD_ID],
            "snapshot-id": -1,
            "sequence-number": -1,
            "offset": offset,
            "length": blob.len(),
            "properties": {
                "referenced-data-file": data_file,
                "cardinality": cardinality.to_string(),
            },
        }));
        placed.push((
            data_file.clone(),
            offset as i64,
            blob.len() as i64,
            *cardinality,
        ));
    }
    let footer = serde_json::json!({"blobs": footer_blobs}).to_string();
    bytes.extend_from_slice(PUFFIN_MAGIC);
    bytes.extend_from_slice(footer.as_bytes());
    bytes.extend_from_slice(&(footer.len() as i32).to_le_bytes());
    bytes.extend_from_slice(&[0u8; 4]); // flags: the footer is not compressed
    bytes.extend_from_slice(PUFFIN_MAGIC);
    (bytes, placed)
}

/// Adds the positions of a position delete file (Parquet: `file_path`, `pos`) to `bitmap`; the
/// file is known to hold one data file's positions (its `file_path` is not read). Position
/// files are small next to the data they delete from: read whole, then decoded.
async fn read_positions(
    store: &Arc<dyn ObjectStore>,
    path: &object_store::path::Path,
    bitmap: &mut RoaringTreemap,
) -> Result<(), IcebergError> {
    let fail = |err: &dyn std::fmt::Display| read_error(path.as_ref(), err);
    let bytes = store
        .get(path)
        .await
        .map_err(|err| fail(&err))?
        .bytes()
        .await
        .map_err(|err| fail(&err))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
        .and_then(|builder| builder.build())
        .map_err(|err| fail(&err))?;
    for batch in reader {
        let batch = batch.map_err(|err| fail(&err))?;
        let positions = batch
            .column_by_name("pos")
            .and_then(|c| c.as_any().downcast_ref::<Int64Array>())
            .ok_or_else(|| fail(&"no pos column of longs"))?;
        bitmap.extend(positions.iter().flatten().map(|p| p as u64));
    }
    Ok(())
}

fn read_error(path: &str, err: &dyn std::fmt::Display) -> IcebergError {
    IcebergError::Invalid(format!("cannot read the position deletes {path}: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn puffin_files_hold_each_vector_where_the_footer_says() {
        let a: RoaringTreemap = [1u64, 5, 1 << 40].into_iter().collect();
        let b: RoaringTreemap = [0u64].into_iter().collect();
        let blobs = vec![
            (
                "s3://b/t/data/a.parquet".to_string(),
                encode_vector(&a),
                a.len(),
            ),
            (
                "s3://b/t/data/b.parquet".to_string(),
                encode_vector(&b),
                b.len(),
            ),
        ];
        let (bytes, placed) = puffin_file(&blobs);
        assert_eq!(&bytes[..4], PUFFIN_MAGIC);
        assert_eq!(&bytes[bytes.len() - 4..], PUFFIN_MAGIC);
        // The footer: its length and flags before the closing magic, its JSON before them.
        let end = bytes.len() - 12;
        let length = i32::from_le_bytes(bytes[end..end + 4].try_into().unwrap()) as usize;
        assert_eq!(&bytes[end + 4..end + 8], &[0, 0, 0, 0]);
        assert_eq!(&bytes[end - length - 4..end - length], PUFFIN_MAGIC);
        let footer: serde_json::Value = serde_json::from_slice(&bytes[end - length..end]).unwrap();
        for (index, (data_file, offset, size, cardinality)) in placed.iter().enumerate() {
            let blob = &footer["blobs"][index];
            assert_eq!(blob["type"], "deletion-vector-v1");
            assert_eq!(blob["offset"].as_i64(), Some(*offset));
            assert_eq!(blob["length"].as_i64(), Some(*size));
            assert_eq!(
                blob["properties"]["referenced-data-file"],
                data_file.as_str()
            );
            assert_eq!(blob["properties"]["cardinality"], cardinality.to_string());
            let range = *offset as usize..(*offset + *size) as usize;
            let decoded = decode_vector(&bytes[range]).unwrap();
            assert_eq!(decoded, [&a, &b][index].clone());
        }
    }
}
