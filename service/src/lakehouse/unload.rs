//! `UNLOAD (SELECT ...) TO 'location' WITH (format = 'PARQUET' | 'CSV' | 'JSON')`: Athena-style
//! export of a query result as files, plus a manifest listing them.
//!
//! The target must be empty (UNLOAD never overwrites or mixes with other data). The executors
//! write their files under a staging prefix *beside* the target (so nothing appears under the
//! target while the query runs), then the coordinator moves them into the target and writes the
//! manifest last. The manifest marks a complete export. If the query fails or is cancelled,
//! the staging prefix is deleted; if the move fails, the target (known to have been empty) is
//! deleted too. Both prefixes are recorded as pending writes in the catalog, so a coordinator
//! crash midway is cleaned up at the next start.

use super::Lakehouse;
use super::writes::{StagedWrite, delete_prefix};
use crate::error::QueryError;
use datafusion::common::DataFusionError;
use datafusion::datasource::listing::ListingTableUrl;
use datafusion::execution::context::SessionState;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::logical_expr::LogicalPlan;
use datafusion::sql::sqlparser::ast::{Expr, SqlOption, Value};
use futures::StreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use osprey_engine::WriteFormat;
use std::sync::Arc;

/// The manifest's file name inside the target: one file URL per line. Its extension is not one
/// of the data formats', so a table over the target never reads it as data.
pub const MANIFEST_FILE: &str = "_manifest.txt";

/// The options `UNLOAD ... WITH (...)` takes.
const KNOWN_OPTIONS: &str = "format ('PARQUET', 'CSV' or 'JSON'), field_delimiter (CSV, one \
                             character), header (CSV, true or false)";

/// What an UNLOAD wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unloaded {
    /// Rows written.
    pub rows: u64,
    /// Data files written.
    pub files: usize,
    /// The manifest's URL.
    pub manifest: String,
}

/// Reads the `WITH (...)` options into a file format; unknown options are refused.
pub fn unload_format(options: &[SqlOption]) -> Result<WriteFormat, QueryError> {
    let mut format = "parquet".to_string();
    let mut delimiter = None;
    let mut header = None;
    for option in options {
        let SqlOption::KeyValue { key, value } = option else {
            return Err(QueryError::InvalidStatement(format!(
                "UNLOAD option {option} is not of the form name = value; options: {KNOWN_OPTIONS}"
            )));
        };
        let text = option_text(value).ok_or_else(|| {
            QueryError::InvalidStatement(format!(
                "UNLOAD option {key} takes a literal value, not {value}"
            ))
        })?;
        match key.value.to_lowercase().as_str() {
            "format" => format = text.to_lowercase(),
            "field_delimiter" | "delimiter" => {
                let [byte] = text.as_bytes() else {
                    return Err(QueryError::InvalidStatement(format!(
                        "UNLOAD field_delimiter must be one ASCII character, not '{text}'"
                    )));
                };
                delimiter = Some(*byte);
            }
            "header" => {
                header = Some(match text.to_lowercase().as_str() {
                    "true" => true,
                    "false" => false,
                    _ => {
                        return Err(QueryError::InvalidStatement(format!(
                            "UNLOAD header must be true or false, not '{text}'"
                        )));
                    }
                });
            }
            "partitioned_by" | "compression" | "max_file_size" => {
                return Err(QueryError::NotSupported(format!(
                    "UNLOAD option {key}; options: {KNOWN_OPTIONS}"
                )));
            }
            _ => {
                return Err(QueryError::InvalidStatement(format!(
                    "unknown UNLOAD option {key}; options: {KNOWN_OPTIONS}"
                )));
            }
        }
    }
    let csv_only = delimiter.is_some() || header.is_some();
    match format.as_str() {
        "parquet" if !csv_only => Ok(WriteFormat::Parquet),
        "json" if !csv_only => Ok(WriteFormat::Json),
        "csv" | "textfile" => Ok(WriteFormat::Csv {
            delimiter: delimiter.unwrap_or(b','),
            header: header.unwrap_or(true),
        }),
        "parquet" | "json" => Err(QueryError::InvalidStatement(
            "field_delimiter and header apply to format = 'CSV' only".to_string(),
        )),
        other => Err(QueryError::InvalidStatement(format!(
            "UNLOAD format '{other}' is not supported: use 'PARQUET', 'CSV' or 'JSON'"
        ))),
    }
}

fn option_text(value: &Expr) -> Option<String> {
    match value {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => Some(s.clone()),
            Value::Boolean(b) => Some(b.to_string()),
            Value::Number(n, _) => Some(n.clone()),
            _ => None,
        },
        Expr::Identifier(ident) => Some(ident.value.clone()),
        _ => None,
    }
}

impl Lakehouse {
    /// Runs `input` on the executors and exports its result under `to` (see the module docs).
    pub async fn unload(
        &self,
        state: &SessionState,
        input: LogicalPlan,
        to: &str,
        format: WriteFormat,
    ) -> Result<Unloaded, QueryError> {
        let target = target_url(to)?;
        let (store_url, target_path) = store_and_path(&target)?;
        let store = state.runtime_env().object_store(&store_url)?;
        refuse_non_empty(&store, &target_path, &target).await?;
        let parent = target
            .trim_end_matches('/')
            .rsplit_once('/')
            .map(|(parent, _)| parent)
            .filter(|parent| parent.len() > store_url.as_str().trim_end_matches('/').len())
            .ok_or_else(|| {
                QueryError::InvalidStatement(format!(
                    "UNLOAD needs a directory below the root of the store, not {target}"
                ))
            })?;
        let write_id = uuid::Uuid::new_v4().to_string();
        let staging = format!("{parent}/.osprey-staging-{write_id}/");
        let mut write = StagedWrite::begin(
            &self.catalog,
            Arc::clone(state.runtime_env()),
            write_id,
            staging,
        )
        .await?;
        let files = write.run(state, input, format).await?;
        // From here on the target holds our files only, until published or deleted.
        write.claim(&target).await?;
        let mut published = Vec::with_capacity(files.len());
        for file in &files {
            let from = Path::from(file.path.as_str());
            let name = from.filename().ok_or_else(|| {
                QueryError::Execution(format!("a write task reported a bad path {}", file.path))
            })?;
            let to = target_path.clone().join(name);
            store.rename(&from, &to).await.map_err(|err| {
                QueryError::Execution(format!("moving {from} into {target}: {err}"))
            })?;
            published.push(format!("{store_url}{to}"));
        }
        let manifest_path = target_path.clone().join(MANIFEST_FILE);
        let mut manifest = published.join("\n");
        manifest.push('\n');
        store
            .put(&manifest_path, PutPayload::from(manifest.into_bytes()))
            .await
            .map_err(|err| QueryError::Execution(format!("writing the UNLOAD manifest: {err}")))?;
        // Only empty directories remain under the staging prefix (local stores keep them).
        if let Err(err) = delete_prefix(state.runtime_env(), &write.prefix).await {
            tracing::warn!(prefix = %write.prefix, error = %err, "cannot delete an UNLOAD's staging prefix");
        }
        write.forget().await?;
        write.published();
        Ok(Unloaded {
            rows: files.iter().map(|f| f.row_count).sum(),
            files: files.len(),
            manifest: format!("{store_url}{manifest_path}"),
        })
    }
}

/// The target as a URL ending in `/`.
fn target_url(to: &str) -> Result<String, QueryError> {
    if to.trim().is_empty() {
        return Err(QueryError::InvalidStatement(
            "UNLOAD needs a target location, e.g. TO 's3://bucket/exports/orders/'".to_string(),
        ));
    }
    let directory = if to.ends_with('/') {
        to.to_string()
    } else {
        format!("{to}/")
    };
    let url = ListingTableUrl::parse(&directory)?;
    Ok(url.as_str().to_string())
}

fn store_and_path(url: &str) -> Result<(ObjectStoreUrl, Path), QueryError> {
    let parsed = url::Url::parse(url)
        .map_err(|err| QueryError::InvalidStatement(format!("bad location {url}: {err}")))?;
    let store_url = ObjectStoreUrl::parse(&parsed[..url::Position::BeforePath])?;
    let path = Path::from_url_path(parsed.path())
        .map_err(|err| QueryError::InvalidStatement(format!("bad location {url}: {err}")))?;
    Ok((store_url, path))
}

async fn refuse_non_empty(
    store: &Arc<dyn ObjectStore>,
    path: &Path,
    target: &str,
) -> Result<(), QueryError> {
    match store.list(Some(path)).next().await {
        None => Ok(()),
        Some(Ok(object)) => Err(QueryError::InvalidStatement(format!(
            "UNLOAD target {target} is not empty (it holds {}): UNLOAD never overwrites, \
             choose a new location or delete the old files first",
            object.location
        ))),
        Some(Err(err)) => {
            let err = DataFusionError::ObjectStore(Box::new(err));
            let message = format!(
                "cannot list the UNLOAD target {target}: {}",
                crate::error_text::plain_message(&err)
            );
            Err(match QueryError::from_ref(&err) {
                QueryError::PermissionDenied(_) => QueryError::PermissionDenied(format!(
                    "{message}. Check the credentials in [[storage]] for this location (or the \
                     environment of the coordinator and executors)"
                )),
                _ => QueryError::Execution(message),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::sqlparser::ast::{Ident, ValueWithSpan};
    use datafusion::sql::sqlparser::tokenizer::Span;

    fn option(key: &str, value: Value) -> SqlOption {
        SqlOption::KeyValue {
            key: Ident::new(key),
            value: Expr::Value(ValueWithSpan {
                value,
                span: Span::empty(),
            }),
        }
    }

    fn text(s: &str) -> Value {
        Value::SingleQuotedString(s.to_string())
    }

    #[test]
    fn formats_default_to_parquet_and_csv_takes_its_options() {
        assert_eq!(unload_format(&[]).unwrap(), WriteFormat::Parquet);
        assert_eq!(
            unload_format(&[option("format", text("JSON"))]).unwrap(),
            WriteFormat::Json
        );
        assert_eq!(
            unload_format(&[
                option("format", text("csv")),
                option("field_delimiter", text("|")),
                option("header", Value::Boolean(false)),
            ])
            .unwrap(),
            WriteFormat::Csv {
                delimiter: b'|',
                header: false
            }
        );
    }

    #[test]
    fn bad_options_are_refused_with_the_list_of_known_ones() {
        let unknown = unload_format(&[option("colour", text("red"))]).unwrap_err();
        assert!(unknown.to_string().contains("field_delimiter"), "{unknown}");
        let format = unload_format(&[option("format", text("ORC"))]).unwrap_err();
        assert!(format.to_string().contains("'orc'"), "{format}");
        let delimiter = unload_format(&[
            option("format", text("CSV")),
            option("field_delimiter", text("||")),
        ])
        .unwrap_err();
        assert!(delimiter.to_string().contains("one ASCII"), "{delimiter}");
        let misplaced = unload_format(&[option("header", Value::Boolean(true))]).unwrap_err();
        assert!(misplaced.to_string().contains("CSV"), "{misplaced}");
    }
}
