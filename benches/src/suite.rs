//! The benchmark suites: their data (generated once, cached) and their query texts.

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A query suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Suite {
    /// TPC-H: 22 queries, 8 tables.
    Tpch,
    /// TPC-DS: 99 queries, 24 tables.
    Tpcds,
}

impl Suite {
    /// Lower-case name, as in file and directory names.
    pub fn name(self) -> &'static str {
        match self {
            Suite::Tpch => "tpch",
            Suite::Tpcds => "tpcds",
        }
    }

    /// Human-readable name.
    pub fn title(self) -> &'static str {
        match self {
            Suite::Tpch => "TPC-H",
            Suite::Tpcds => "TPC-DS",
        }
    }

    /// Number of queries in the suite.
    pub fn query_count(self) -> usize {
        match self {
            Suite::Tpch => 22,
            Suite::Tpcds => 99,
        }
    }
}

/// Generated data of one suite at one scale: one directory of Parquet files per table.
pub struct Dataset {
    /// (table name, directory) pairs, sorted by name.
    pub tables: Vec<(String, PathBuf)>,
}

/// The marker file a complete dataset directory holds; written last, so a half-written
/// directory is regenerated.
const SUCCESS_MARKER: &str = "_SUCCESS";

/// Generates the suite's data at `scale` under `data_dir` unless a complete copy is there.
///
/// TPC-H comes from the same in-process generator `osprey local` uses (8 files per large
/// table). TPC-DS comes from `tpcgen-cli` (PyPI `tpcgen-cli`, installed by `benches/setup.sh`),
/// looked up beside `python` and then on `PATH`.
pub async fn ensure_dataset(
    suite: Suite,
    data_dir: &Path,
    scale: f64,
    python: &Path,
) -> Result<Dataset> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create {}", data_dir.display()))?;
    let data_dir = data_dir.canonicalize()?;
    let dir = match suite {
        Suite::Tpch => osprey_service::ensure_dataset(&data_dir, scale, 8).await?,
        Suite::Tpcds => ensure_tpcds(&data_dir, scale, python)?,
    };
    let mut tables = Vec::new();
    for entry in std::fs::read_dir(&dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            tables.push((
                entry.file_name().to_string_lossy().into_owned(),
                entry.path(),
            ));
        }
    }
    tables.sort();
    if tables.is_empty() {
        bail!("no tables in {}", dir.display());
    }
    Ok(Dataset { tables })
}

fn ensure_tpcds(data_dir: &Path, scale: f64, python: &Path) -> Result<PathBuf> {
    let dir = data_dir.join("tpcds").join(format!("sf{scale}"));
    if dir.join(SUCCESS_MARKER).exists() {
        return Ok(dir);
    }
    let generator = python
        .parent()
        .map(|bin| bin.join("tpcgen-cli"))
        .filter(|path| path.exists())
        .unwrap_or_else(|| PathBuf::from("tpcgen-cli"));
    let staging = data_dir.join("tpcds").join(format!(".sf{scale}.partial"));
    if staging.exists() {
        std::fs::remove_dir_all(&staging)?;
    }
    std::fs::create_dir_all(&staging)?;
    eprintln!(
        "  generating TPC-DS SF{scale} with {} (first run only)...",
        generator.display()
    );
    let status = Command::new(&generator)
        .args(["tpcds", "parquet", "--parts", "4", "--scale-factor"])
        .arg(scale.to_string())
        .arg("--output-dir")
        .arg(&staging)
        .status()
        .with_context(|| {
            format!(
                "cannot run {}: install the benchmark tools with benches/setup.sh, or pass \
                 --python pointing into a venv that has tpcgen-cli",
                generator.display()
            )
        })?;
    if !status.success() {
        bail!("{} failed ({status})", generator.display());
    }
    std::fs::write(staging.join(SUCCESS_MARKER), b"")?;
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::rename(&staging, &dir)?;
    Ok(dir)
}

/// The dataset's tables as Iceberg tables, made once beside it (`<dataset>-iceberg/`) by
/// `peers/iceberg_tables.py` with pyiceberg from `python`'s venv: each table's Parquet files,
/// hard-linked under the table's `data/` and added with pyiceberg's `add_files`, so both
/// formats read the very same files. Returns (table name, Iceberg table directory) pairs.
pub fn ensure_iceberg(dataset: &Dataset, python: &Path) -> Result<Vec<(String, PathBuf)>> {
    let source = dataset.tables[0]
        .1
        .parent()
        .context("a dataset's tables are in one directory")?;
    let name = source.file_name().unwrap_or_default().to_string_lossy();
    let dir = source.with_file_name(format!("{name}-iceberg"));
    if !dir.join(SUCCESS_MARKER).exists() {
        // Written in place (Iceberg metadata holds absolute paths, so it cannot be moved), and
        // marked complete last; a half-written copy is written again.
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        eprintln!("  writing the tables as Iceberg with pyiceberg (first run only)...");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("peers/iceberg_tables.py");
        let status = Command::new(python)
            .arg(&script)
            .arg(source)
            .arg(&dir)
            .status()
            .with_context(|| format!("cannot run {}", python.display()))?;
        if !status.success() {
            bail!(
                "{} failed ({status}): it needs pyiceberg, which benches/setup.sh installs",
                script.display()
            );
        }
        std::fs::write(dir.join(SUCCESS_MARKER), b"")?;
    }
    Ok(dataset
        .tables
        .iter()
        .map(|(table, _)| (table.clone(), dir.join("tables").join(table)))
        .collect())
}

/// The SQL statements of one query file, in order (TPC-H q15 has three).
pub fn statements(suite: Suite, query: usize) -> Result<Vec<String>> {
    let path = osprey_tests::queries_dir()
        .join(suite.name())
        .join(format!("q{query}.sql"));
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    Ok(osprey_tests::split_statements(&text))
}
