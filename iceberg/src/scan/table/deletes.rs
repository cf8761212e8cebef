//! Which delete files apply to which data files of a scan.

use super::IcebergTable;
use crate::error::IcebergError;
use crate::manifest::FileContent;
use crate::plan::{LiveFile, SnapshotFiles};
use crate::scan::deletes::{DataFileDeletes, DeleteFile, DeleteKind, ScanDeletes};
use datafusion::common::{DataFusionError, Result};

impl IcebergTable {
    /// Which delete files apply to which data files: by sequence number, by partition, and by
    /// the data file a deletion vector or file-scoped position delete names.
    pub(super) fn deletes(&self, files: &SnapshotFiles) -> Result<ScanDeletes> {
        let mut scan = ScanDeletes::default();
        if files.deletes.is_empty() {
            return Ok(scan);
        }
        for data in &files.data {
            let applying: Vec<DeleteFile> = files
                .deletes_for(data)
                .filter(|delete| self.applies(delete, data))
                .map(|delete| self.delete_file(delete))
                .collect::<Result<_>>()?;
            if applying.is_empty() {
                continue;
            }
            scan.files.insert(
                self.location.path_of(&data.file.file_path)?.to_string(),
                DataFileDeletes {
                    location: data.file.file_path.clone(),
                    record_count: data.file.record_count.max(0) as u64,
                    deletes: applying,
                },
            );
        }
        Ok(scan)
    }

    fn applies(&self, delete: &LiveFile, data: &LiveFile) -> bool {
        if let Some(referenced) = &delete.file.referenced_data_file {
            return *referenced == data.file.file_path;
        }
        // An unpartitioned delete applies to every partition; a partitioned one to its own.
        let unpartitioned = self
            .metadata
            .partition_spec(delete.partition_spec_id)
            .is_none_or(|spec| spec.fields.is_empty());
        unpartitioned
            || (delete.partition_spec_id == data.partition_spec_id
                && delete.file.partition_key == data.file.partition_key)
    }

    fn delete_file(&self, delete: &LiveFile) -> Result<DeleteFile> {
        let file = &delete.file;
        let kind = match file.content {
            FileContent::EqualityDeletes => DeleteKind::Equality {
                field_ids: file.equality_ids.clone(),
            },
            FileContent::PositionDeletes if file.file_format == "PUFFIN" => {
                match (file.content_offset, file.content_size_in_bytes) {
                    (Some(offset), Some(length)) if offset >= 0 && length >= 0 => {
                        DeleteKind::Vector {
                            offset: offset as u64,
                            length: length as u64,
                        }
                    }
                    _ => {
                        return Err(IcebergError::Invalid(format!(
                            "deletion vector {} without its content offset and size",
                            file.file_path
                        ))
                        .into());
                    }
                }
            }
            FileContent::PositionDeletes => DeleteKind::Positions,
            FileContent::Data => {
                return Err(DataFusionError::Internal("a data file as a delete".into()));
            }
        };
        if !matches!(file.file_format.as_str(), "PARQUET" | "PUFFIN") {
            return Err(IcebergError::Unsupported(format!(
                "{} delete files ({})",
                file.file_format, file.file_path
            ))
            .into());
        }
        Ok(DeleteFile {
            path: self.location.path_of(&file.file_path)?.to_string(),
            location: file.file_path.clone(),
            size: file.file_size_in_bytes.max(0) as u64,
            kind,
        })
    }
}
