//! The built-in TPC-H dataset: generated in-process (the `tpchgen` crates), written as Parquet
//! under the data directory, and registered as the schema `tpch`.
//!
//! Layout: `<data_dir>/tpch/sf<scale>/<table>/part-<n>.parquet`. A `_SUCCESS` marker is written
//! last; a directory without it is a half-finished earlier run and is regenerated, so a crash
//! during generation never leaves partial tables visible.

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use std::path::{Path, PathBuf};
use tpchgen::generators::{
    CustomerGenerator, LineItemGenerator, NationGenerator, OrderGenerator, PartGenerator,
    PartSuppGenerator, RegionGenerator, SupplierGenerator,
};
use tpchgen_arrow::{
    CustomerArrow, LineItemArrow, NationArrow, OrderArrow, PartArrow, PartSuppArrow, RegionArrow,
    SupplierArrow,
};

/// The eight TPC-H tables.
pub const TABLES: [&str; 8] = [
    "region", "nation", "supplier", "customer", "part", "partsupp", "orders", "lineitem",
];

const SUCCESS_MARKER: &str = "_SUCCESS";

/// Why the dataset could not be generated or registered.
#[derive(Debug, thiserror::Error)]
pub enum TpchError {
    /// Reading or writing files failed.
    #[error("TPC-H data in {path}: {source}")]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Encoding Parquet failed.
    #[error("writing TPC-H Parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    /// Generating rows failed.
    #[error("generating TPC-H rows: {0}")]
    Arrow(#[from] ArrowError),
    /// Registering the tables failed.
    #[error("registering TPC-H tables: {0}")]
    Register(#[from] crate::error::QueryError),
    /// The scale factor is not positive.
    #[error("TPC-H scale factor must be greater than 0, got {0}")]
    BadScale(f64),
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> TpchError + '_ {
    move |source| TpchError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The directory holding the dataset for `scale_factor` under `data_dir`.
pub fn dataset_dir(data_dir: &Path, scale_factor: f64) -> PathBuf {
    data_dir.join("tpch").join(format!("sf{scale_factor}"))
}

/// Generates the dataset unless a complete copy is already there. Returns its directory.
///
/// Runs on blocking threads; `parts` files are written per large table so scans split into
/// several tasks.
pub async fn ensure_dataset(
    data_dir: &Path,
    scale_factor: f64,
    parts: usize,
) -> Result<PathBuf, TpchError> {
    if scale_factor <= 0.0 || !scale_factor.is_finite() {
        return Err(TpchError::BadScale(scale_factor));
    }
    let dir = dataset_dir(data_dir, scale_factor);
    if dir.join(SUCCESS_MARKER).exists() {
        return Ok(dir);
    }
    if dir.exists() {
        tracing::warn!(dir = %dir.display(), "removing incomplete TPC-H data from an earlier run");
        std::fs::remove_dir_all(&dir).map_err(io_error(&dir))?;
    }
    tracing::info!(scale_factor, dir = %dir.display(), "generating TPC-H data (first start only)");
    let started = std::time::Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for table in TABLES {
        let table_parts = if matches!(table, "region" | "nation") {
            1
        } else {
            parts.max(1)
        };
        for part in 1..=table_parts {
            let dir = dir.clone();
            tasks.spawn_blocking(move || write_part(&dir, table, scale_factor, part, table_parts));
        }
    }
    while let Some(result) = tasks.join_next().await {
        result.map_err(|err| TpchError::Io {
            path: dir.clone(),
            source: std::io::Error::other(err.to_string()),
        })??;
    }
    let marker = dir.join(SUCCESS_MARKER);
    std::fs::write(&marker, b"").map_err(io_error(&marker))?;
    tracing::info!(elapsed = ?started.elapsed(), "TPC-H data ready");
    Ok(dir)
}

/// Writes one part of one table, to a temporary name first so readers never see half a file.
fn write_part(
    dir: &Path,
    table: &str,
    scale_factor: f64,
    part: usize,
    part_count: usize,
) -> Result<(), TpchError> {
    let table_dir = dir.join(table);
    std::fs::create_dir_all(&table_dir).map_err(io_error(&table_dir))?;
    let final_path = table_dir.join(format!("part-{part}.parquet"));
    let tmp_path = table_dir.join(format!(".part-{part}.parquet.tmp"));
    let (p, n) = (part as i32, part_count as i32);
    let sf = scale_factor;
    let (schema, batches): (
        SchemaRef,
        Box<dyn Iterator<Item = Result<RecordBatch, ArrowError>>>,
    ) = match table {
        "region" => (
            RegionArrow::schema_ref(),
            Box::new(RegionArrow::new(RegionGenerator::new(sf, p, n))),
        ),
        "nation" => (
            NationArrow::schema_ref(),
            Box::new(NationArrow::new(NationGenerator::new(sf, p, n))),
        ),
        "supplier" => (
            SupplierArrow::schema_ref(),
            Box::new(SupplierArrow::new(SupplierGenerator::new(sf, p, n))),
        ),
        "customer" => (
            CustomerArrow::schema_ref(),
            Box::new(CustomerArrow::new(CustomerGenerator::new(sf, p, n))),
        ),
        "part" => (
            PartArrow::schema_ref(),
            Box::new(PartArrow::new(PartGenerator::new(sf, p, n))),
        ),
        "partsupp" => (
            PartSuppArrow::schema_ref(),
            Box::new(PartSuppArrow::new(PartSuppGenerator::new(sf, p, n))),
        ),
        "orders" => (
            OrderArrow::schema_ref(),
            Box::new(OrderArrow::new(OrderGenerator::new(sf, p, n))),
        ),
        "lineitem" => (
            LineItemArrow::schema_ref(),
            Box::new(LineItemArrow::new(LineItemGenerator::new(sf, p, n))),
        ),
        other => unreachable!("unknown TPC-H table {other}"),
    };
    let file = std::fs::File::create(&tmp_path).map_err(io_error(&tmp_path))?;
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(1)?))
        .set_max_row_group_row_count(Some(256 * 1024))
        .build();
    let mut writer = ArrowWriter::try_new(file, schema, Some(props))?;
    for batch in batches {
        writer.write(&batch?)?;
    }
    writer.close()?;
    std::fs::rename(&tmp_path, &final_path).map_err(io_error(&final_path))?;
    Ok(())
}

/// Registers the dataset in `dir` as schema `schema` of the catalog: ordinary external tables,
/// created once and kept in the persistent catalog like any other (so users may add views
/// next to them). Tables that exist already are left alone.
pub async fn register_dataset(
    engine: &crate::query::QueryEngine,
    dir: &Path,
    schema: &str,
) -> Result<(), TpchError> {
    engine
        .prepare(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
        .await?;
    for table in TABLES {
        let location = format!("{}/", dir.join(table).display());
        engine
            .prepare(&format!(
                "CREATE EXTERNAL TABLE IF NOT EXISTS {schema}.{table} STORED AS PARQUET LOCATION '{}'",
                location.replace('\'', "''")
            ))
            .await?;
    }
    Ok(())
}
