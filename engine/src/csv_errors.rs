//! CSV errors that name their file and its line.
//!
//! Arrow's CSV reader reports a bad value as "... for column 1 at line 3", with no file, and
//! counts lines from the first data row of what it was given. Just before a plan runs (on the
//! coordinator for its own part, on an executor for a task's), each CSV scan is wrapped so that
//! its errors say which file and which line of that file, counted as an editor counts them:
//! `bad CSV data in /data/people.csv, line 4: ...`.
//!
//! DataFusion's `CsvSource` has no hook for this, so [`NamedCsvErrors`] delegates to it and
//! wraps only its file opener. The wrapping happens after planning and never travels between
//! processes (each side wraps its own part of the plan), so no codec needs to know it.

use datafusion::arrow::error::ArrowError;
use datafusion::catalog::Session;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode, TreeNodeRecursion};
use datafusion::common::{DataFusionError, Result};
use datafusion::datasource::physical_plan::{
    CsvSource, FileOpenFuture, FileOpener, FileScanConfig, FileScanConfigBuilder, FileSource,
};
use datafusion::datasource::source::DataSourceExec;
use datafusion::datasource::table_schema::TableSchema;
use datafusion::execution::context::QueryPlanner;
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::projection::ProjectionExprs;
use datafusion::physical_plan::metrics::ExecutionPlanMetricsSet;
use datafusion::physical_plan::{DisplayFormatType, ExecutionPlan};
use futures::{FutureExt, StreamExt};
use object_store::{ObjectStore, ObjectStoreExt};
use std::fmt;
use std::sync::Arc;

/// `plan` with each CSV scan's errors naming their file and line, down to (not into) the
/// stages other processes run.
pub fn with_named_csv_errors(plan: Arc<dyn ExecutionPlan>) -> Result<Arc<dyn ExecutionPlan>> {
    plan.transform_down(|node| {
        if crate::distributed::is_stage_boundary(node.as_ref()) {
            return Ok(Transformed::new(node, false, TreeNodeRecursion::Jump));
        }
        let Some(exec) = node.downcast_ref::<DataSourceExec>() else {
            return Ok(Transformed::no(node));
        };
        let Some(config) = exec.data_source().downcast_ref::<FileScanConfig>() else {
            return Ok(Transformed::no(node));
        };
        if config.file_source().downcast_ref::<CsvSource>().is_none() {
            return Ok(Transformed::no(node));
        }
        let source = Arc::new(NamedCsvErrors {
            inner: Arc::clone(config.file_source()),
        });
        let config = FileScanConfigBuilder::from(config.clone())
            .with_source(source)
            .build();
        Ok(Transformed::yes(DataSourceExec::from_data_source(config)))
    })
    .data()
}

/// A query planner that wraps another's physical plans' CSV scans (see the module docs): the
/// coordinator's outermost planner, after the distributed planner has cut the stages.
#[derive(Debug)]
pub struct NamedCsvErrorsPlanner(pub Arc<dyn QueryPlanner + Send + Sync>);

#[async_trait::async_trait]
impl QueryPlanner for NamedCsvErrorsPlanner {
    async fn create_physical_plan(
        &self,
        logical_plan: &LogicalPlan,
        session_state: &dyn Session,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let plan = self
            .0
            .create_physical_plan(logical_plan, session_state)
            .await?;
        with_named_csv_errors(plan)
    }
}

/// A CSV source whose errors name their file and line (see the module docs).
#[derive(Clone)]
struct NamedCsvErrors {
    inner: Arc<dyn FileSource>,
}

impl FileSource for NamedCsvErrors {
    fn create_file_opener(
        &self,
        object_store: Arc<dyn ObjectStore>,
        base_config: &FileScanConfig,
        partition: usize,
    ) -> Result<Arc<dyn FileOpener>> {
        // Local files by their path, others by their URL (`s3://bucket/key`).
        let store = base_config.object_store_url.as_str().trim_end_matches('/');
        let root = if store == "file:" || store == "file://" {
            String::new()
        } else {
            store.to_string()
        };
        Ok(Arc::new(NamedOpener {
            inner: self.inner.create_file_opener(
                Arc::clone(&object_store),
                base_config,
                partition,
            )?,
            store: object_store,
            root,
        }))
    }

    fn table_schema(&self) -> &TableSchema {
        self.inner.table_schema()
    }

    fn with_batch_size(&self, batch_size: usize) -> Arc<dyn FileSource> {
        Arc::new(NamedCsvErrors {
            inner: self.inner.with_batch_size(batch_size),
        })
    }

    fn filter(&self) -> Option<Arc<dyn PhysicalExpr>> {
        self.inner.filter()
    }

    fn projection(&self) -> Option<&ProjectionExprs> {
        self.inner.projection()
    }

    fn metrics(&self) -> &ExecutionPlanMetricsSet {
        self.inner.metrics()
    }

    fn file_type(&self) -> &str {
        self.inner.file_type()
    }

    fn fmt_extra(&self, t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        self.inner.fmt_extra(t, f)
    }

    fn supports_repartitioning(&self) -> bool {
        self.inner.supports_repartitioning()
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        self.inner.apply_expressions(f)
    }
}

/// Opens files with the CSV opener, naming the file in their errors.
struct NamedOpener {
    inner: Arc<dyn FileOpener>,
    store: Arc<dyn ObjectStore>,
    /// What comes before a file's location to name it: nothing for local files.
    root: String,
}

impl FileOpener for NamedOpener {
    fn open(
        &self,
        file: datafusion::datasource::listing::PartitionedFile,
    ) -> Result<FileOpenFuture> {
        let place = Arc::new(Place {
            name: format!("{}/{}", self.root, file.object_meta.location),
            location: file.object_meta.location.clone(),
            // A file split into byte ranges: arrow counts lines from the range's start.
            start: file
                .range
                .as_ref()
                .map_or(0, |range| range.start.max(0) as u64),
            store: Arc::clone(&self.store),
        });
        let opening = self.inner.open(file)?;
        Ok(async move {
            let stream = match opening.await {
                Ok(stream) => stream,
                Err(err) => return Err(place.name(err).await),
            };
            Ok(stream
                .then(move |item| {
                    let place = Arc::clone(&place);
                    async move {
                        match item {
                            Ok(batch) => Ok(batch),
                            Err(err) => Err(place.name(err).await),
                        }
                    }
                })
                .boxed())
        }
        .boxed())
    }
}

/// The most bytes read before a range's start to count its lines; past it, an error in a
/// range names the row within the range instead.
const MAX_COUNTED_BYTES: u64 = 64 << 20;

/// Where a file's rows come from, for its errors.
struct Place {
    /// The file as people name it: its path, or its URL.
    name: String,
    location: object_store::path::Path,
    /// Where the scanned range starts (0: the whole file).
    start: u64,
    store: Arc<dyn ObjectStore>,
}

impl Place {
    /// `err` naming the file and, for a bad row, its line counted from the top of the file.
    async fn name(&self, err: DataFusionError) -> DataFusionError {
        let Some(text) = csv_error_text(&err) else {
            return err;
        };
        let place = match data_row(&text) {
            Some((message, offset)) => match self.first_line().await {
                Some(first) => (message, format!(", line {}", first + offset)),
                None => (
                    message,
                    format!(", row {} of the part from byte {}", offset + 1, self.start),
                ),
            },
            None => (text.clone(), String::new()),
        };
        let (message, line) = place;
        // Still a parse error: the data's fault (INVALID_DATA), not the engine's.
        DataFusionError::ArrowError(
            Box::new(ArrowError::ParseError(format!(
                "bad CSV data in {}{line}: {message}",
                self.name
            ))),
            None,
        )
    }

    /// The line of the file the scanned range's first row is on. DataFusion starts a range
    /// after the first line break at or after `start - 1`; the lines before it are counted
    /// (`None` when that is more than [`MAX_COUNTED_BYTES`] to read, or the read fails).
    async fn first_line(&self) -> Option<usize> {
        if self.start == 0 {
            return Some(1);
        }
        if self.start > MAX_COUNTED_BYTES {
            return None;
        }
        let before = self
            .store
            .get_range(&self.location, 0..self.start - 1)
            .await
            .ok()?;
        Some(before.iter().filter(|b| **b == b'\n').count() + 2)
    }
}

/// The text of a CSV parsing error (a value that does not parse, a row of the wrong width).
fn csv_error_text(err: &DataFusionError) -> Option<String> {
    let arrow = match err {
        DataFusionError::ArrowError(arrow, _) => arrow.as_ref(),
        DataFusionError::External(inner) => inner.downcast_ref::<ArrowError>()?,
        _ => return None,
    };
    match arrow {
        // Already named (an error passed through twice).
        ArrowError::ParseError(text) if text.starts_with("bad CSV data in ") => None,
        ArrowError::ParseError(text) | ArrowError::CsvError(text) => Some(text.clone()),
        _ => None,
    }
}

/// Arrow's message without its place, and the place as lines after the first line arrow read.
/// Arrow says `... at line N. Row data: ...` for a bad value (N counts the lines it read from
/// 0, a header included) and `incorrect number of fields for line N, expected ...` for a row of
/// the wrong width (N counts them from 1).
fn data_row(text: &str) -> Option<(String, usize)> {
    // The number after `marker`, and the text after the number.
    let number_after = |marker: &str| -> Option<(usize, usize, &str)> {
        let at = text.find(marker)?;
        let rest = &text[at + marker.len()..];
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        Some((at, rest[..digits].parse().ok()?, &rest[digits..]))
    };
    if let Some((at, offset, _)) = number_after(" at line ") {
        return Some((text[..at].to_string(), offset));
    }
    let (at, line, rest) = number_after(" for line ")?;
    Some((format!("{}{rest}", &text[..at]), line.checked_sub(1)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::physical_plan::collect;
    use datafusion::prelude::{CsvReadOptions, SessionContext};

    async fn error_of(dir: &std::path::Path, csv: &str) -> String {
        let path = dir.join("people.csv");
        std::fs::write(&path, csv).unwrap();
        let ctx = SessionContext::new();
        let schema = datafusion::arrow::datatypes::Schema::new(vec![
            datafusion::arrow::datatypes::Field::new(
                "id",
                datafusion::arrow::datatypes::DataType::Int64,
                true,
            ),
            datafusion::arrow::datatypes::Field::new(
                "name",
                datafusion::arrow::datatypes::DataType::Utf8,
                true,
            ),
        ]);
        ctx.register_csv(
            "people",
            path.to_str().unwrap(),
            CsvReadOptions::new().schema(&schema),
        )
        .await
        .unwrap();
        let plan = ctx
            .sql("SELECT * FROM people")
            .await
            .unwrap()
            .create_physical_plan()
            .await
            .unwrap();
        let plan = with_named_csv_errors(plan).unwrap();
        collect(plan, ctx.task_ctx()).await.unwrap_err().to_string()
    }

    #[tokio::test]
    async fn bad_rows_name_their_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let err = error_of(dir.path(), "id,name\n1,ada\n2,grace\nthree,alan\n").await;
        assert!(err.contains("people.csv, line 4: "), "{err}");
        assert!(
            err.contains("Error while parsing value 'three' as type 'Int64' for column 0"),
            "{err}"
        );
        let err = error_of(dir.path(), "id,name\n1,ada\n2,grace,extra\n").await;
        assert!(
            err.contains("people.csv, line 3: incorrect number of fields, expected 2 got 3"),
            "{err}"
        );
    }
}
