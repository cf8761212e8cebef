//! Views: a stored query, planned each time a query reads it.

use super::TableFormat;
use crate::error::QueryError;
use crate::lakehouse::committed::CommittedCatalog;
use crate::lakehouse::tables::SqlView;
use datafusion::catalog::TableProvider;
use datafusion::common::config::ConfigOptions;
use datafusion::error::Result;
use datafusion::execution::context::SessionState;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::logical_expr::LogicalPlan;
use osprey_catalog::{DataFile, TableEntry};
use std::sync::Arc;

/// Views (`CREATE VIEW`): no data of their own, so nothing to write or purge.
#[derive(Debug)]
pub struct ViewFormat;

impl ViewFormat {
    /// The name views are registered under.
    pub const NAME: &'static str = "view";
}

#[async_trait::async_trait]
impl TableFormat for ViewFormat {
    fn name(&self) -> &str {
        Self::NAME
    }

    async fn open(
        &self,
        entry: &TableEntry,
        _files: Vec<DataFile>,
        _config: &ConfigOptions,
        _runtime: &Arc<RuntimeEnv>,
    ) -> Result<Arc<dyn TableProvider>> {
        Ok(Arc::new(SqlView::new(entry)?))
    }

    async fn insert(
        &self,
        _catalog: &CommittedCatalog,
        _state: &SessionState,
        entry: &TableEntry,
        _input: LogicalPlan,
    ) -> Result<u64, QueryError> {
        Err(QueryError::InvalidStatement(format!(
            "{} is a view; INSERT needs a table",
            entry.qualified_name()
        )))
    }
}
