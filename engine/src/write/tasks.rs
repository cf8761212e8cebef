//! What one write task does: streams its share of the rows into files under the write's
//! prefix, one partition per file when the write partitions, and reports each file.

use super::{WriteFormat, WriteTarget, encode_partition_key, written_files_schema};
use datafusion::arrow::array::{ArrayRef, BinaryArray, RecordBatch, StringArray, UInt64Array};
use datafusion::arrow::compute::partition;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::row::{OwnedRow, RowConverter, SortField};
use datafusion::common::DataFusionError;
use datafusion::error::Result;
use datafusion::execution::SendableRecordBatchStream;
use futures::StreamExt;
use object_store::ObjectStore;
use object_store::buffered::BufWriter;
use object_store::path::Path;
use parquet::arrow::AsyncArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;

/// One file being written.
enum OpenFile {
    Parquet(Box<AsyncArrowWriter<BufWriter>>),
    Text { writer: Box<BufWriter>, bytes: u64 },
}

/// A file being written, with its rows so far and its partition key (encoded).
struct OpenWrite {
    path: Path,
    file: OpenFile,
    rows: u64,
    partition: Option<Arc<Vec<u8>>>,
}

/// The files one task writes: rows go to the open file until it is full, or until the
/// partition key changes.
struct TaskFiles<'a> {
    store: Arc<dyn ObjectStore>,
    prefix: Path,
    target: &'a WriteTarget,
    max_rows: u64,
    open: Option<OpenWrite>,
    done: Vec<ClosedFile>,
}

/// A file a task finished: what it reports.
struct ClosedFile {
    path: String,
    size: u64,
    rows: u64,
    partition: Option<Arc<Vec<u8>>>,
}

impl TaskFiles<'_> {
    /// Writes `batch`, all of one partition (`partition`, encoded), starting new files as
    /// they fill.
    async fn write(
        &mut self,
        mut batch: RecordBatch,
        partition: &Option<Arc<Vec<u8>>>,
    ) -> Result<()> {
        while batch.num_rows() > 0 {
            let open = match &mut self.open {
                Some(open) => open,
                None => {
                    let path = self.prefix.clone().join(format!(
                        "part-{}.{}",
                        uuid::Uuid::new_v4().simple(),
                        self.target.format.extension()
                    ));
                    let file = open_file(&self.store, &path, batch.schema(), &self.target.format)?;
                    self.open.insert(OpenWrite {
                        path,
                        file,
                        rows: 0,
                        partition: partition.clone(),
                    })
                }
            };
            let room = (self.max_rows - open.rows) as usize;
            let chunk = batch.slice(0, room.min(batch.num_rows()));
            batch = batch.slice(chunk.num_rows(), batch.num_rows() - chunk.num_rows());
            append(&mut open.file, &chunk, &self.target.format, open.rows == 0).await?;
            open.rows += chunk.num_rows() as u64;
            if open.rows >= self.max_rows {
                self.close().await?;
            }
        }
        Ok(())
    }

    /// Closes the open file, if any.
    async fn close(&mut self) -> Result<()> {
        if let Some(open) = self.open.take() {
            let size = close(open.file).await?;
            self.done.push(ClosedFile {
                path: open.path.to_string(),
                size,
                rows: open.rows,
                partition: open.partition,
            });
        }
        Ok(())
    }
}

pub(super) async fn write_partition(
    mut input: SendableRecordBatchStream,
    store: Arc<dyn ObjectStore>,
    prefix: Path,
    target: &WriteTarget,
) -> Result<RecordBatch> {
    let file_schema = target.decoded_file_schema()?;
    let key_columns = target.partition_columns;
    let mut files = TaskFiles {
        store,
        prefix,
        target,
        max_rows: target.max_rows_per_file.max(1) as u64,
        open: None,
        done: Vec::new(),
    };
    // The key of the open file, to compare with each run of equal keys.
    let mut converter: Option<RowConverter> = None;
    let mut current: Option<(OwnedRow, Option<Arc<Vec<u8>>>)> = None;
    while let Some(batch) = input.next().await {
        let batch = batch?;
        let data_columns = batch.num_columns().saturating_sub(key_columns);
        let conformed = |batch: RecordBatch| match &file_schema {
            Some(schema) => conform(batch, schema),
            None => Ok(batch),
        };
        if key_columns == 0 {
            files.write(conformed(batch)?, &None).await?;
            continue;
        }
        let keys = batch.project(&(data_columns..batch.num_columns()).collect::<Vec<_>>())?;
        let data = conformed(batch.project(&(0..data_columns).collect::<Vec<_>>())?)?;
        let converter = match &mut converter {
            Some(converter) => converter,
            None => converter.insert(RowConverter::new(
                keys.schema()
                    .fields()
                    .iter()
                    .map(|f| SortField::new(f.data_type().clone()))
                    .collect(),
            )?),
        };
        let rows = converter.convert_columns(keys.columns())?;
        // The input is sorted by the key: each run of equal keys is one partition's rows.
        for run in partition(keys.columns())?.ranges() {
            let key = rows.row(run.start);
            if current.as_ref().is_none_or(|(row, _)| row.row() != key) {
                files.close().await?;
                let encoded = encode_partition_key(&keys.slice(run.start, 1))?;
                current = Some((key.owned(), Some(Arc::new(encoded))));
            }
            let partition = current.as_ref().and_then(|(_, encoded)| encoded.clone());
            files
                .write(data.slice(run.start, run.end - run.start), &partition)
                .await?;
        }
    }
    files.close().await?;
    let done = files.done;
    let paths: StringArray = done.iter().map(|f| Some(f.path.as_str())).collect();
    let sizes = UInt64Array::from_iter_values(done.iter().map(|f| f.size));
    let rows = UInt64Array::from_iter_values(done.iter().map(|f| f.rows));
    let partitions: BinaryArray = done
        .iter()
        .map(|f| f.partition.as_ref().map(|key| key.as_slice()))
        .collect();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(paths),
        Arc::new(sizes),
        Arc::new(rows),
        Arc::new(partitions),
    ];
    Ok(RecordBatch::try_new(written_files_schema(), columns)?)
}

/// `batch` under `schema`: each column cast to its field's type where it differs (nested field
/// metadata differs in type too). A null in a non-nullable column fails the write.
fn conform(batch: RecordBatch, schema: &SchemaRef) -> Result<RecordBatch> {
    if batch.num_columns() != schema.fields().len() {
        return Err(DataFusionError::Internal(format!(
            "a write got {} columns for {} file columns",
            batch.num_columns(),
            schema.fields().len()
        )));
    }
    let columns = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(
            |(column, field)| match column.data_type() == field.data_type() {
                true => Ok(Arc::clone(column)),
                false => datafusion::arrow::compute::cast(column, field.data_type()),
            },
        )
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(RecordBatch::try_new(Arc::clone(schema), columns)?)
}

fn open_file(
    store: &Arc<dyn ObjectStore>,
    path: &Path,
    schema: SchemaRef,
    format: &WriteFormat,
) -> Result<OpenFile> {
    Ok(match format {
        WriteFormat::Parquet => {
            let properties = WriterProperties::builder()
                .set_compression(Compression::ZSTD(ZstdLevel::default()))
                .build();
            let writer = BufWriter::new(Arc::clone(store), path.clone());
            OpenFile::Parquet(Box::new(AsyncArrowWriter::try_new(
                writer,
                schema,
                Some(properties),
            )?))
        }
        WriteFormat::Csv { .. } | WriteFormat::Json => OpenFile::Text {
            writer: Box::new(BufWriter::new(Arc::clone(store), path.clone())),
            bytes: 0,
        },
    })
}

async fn append(
    file: &mut OpenFile,
    batch: &RecordBatch,
    format: &WriteFormat,
    first: bool,
) -> Result<()> {
    match file {
        OpenFile::Parquet(writer) => writer.write(batch).await?,
        OpenFile::Text { writer, bytes } => {
            let mut buffer = Vec::new();
            match format {
                WriteFormat::Csv { delimiter, header } => {
                    let mut csv = datafusion::arrow::csv::WriterBuilder::new()
                        .with_delimiter(*delimiter)
                        .with_header(*header && first)
                        .build(&mut buffer);
                    csv.write(batch)?;
                }
                _ => {
                    let mut json = datafusion::arrow::json::LineDelimitedWriter::new(&mut buffer);
                    json.write(batch)?;
                    json.finish()?;
                }
            }
            writer.write_all(&buffer).await?;
            *bytes += buffer.len() as u64;
        }
    }
    Ok(())
}

async fn close(file: OpenFile) -> Result<u64> {
    match file {
        OpenFile::Parquet(mut writer) => {
            writer.finish().await?;
            Ok(writer.bytes_written() as u64)
        }
        OpenFile::Text { mut writer, bytes } => {
            writer.shutdown().await?;
            Ok(bytes)
        }
    }
}
