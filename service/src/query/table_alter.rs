//! `ALTER TABLE` on the Iceberg tables of attached catalogs: columns added, dropped, renamed
//! and widened, `NOT NULL` dropped, properties set (Trino's `SET PROPERTIES`, Spark's `SET
//! TBLPROPERTIES`), and a new partitioning. The statement becomes one
//! [`osprey_iceberg::TableAlteration`], committed as one metadata change.

use super::table_properties::altered_properties;
use super::*;
use crate::lakehouse::ddl::normalize_ident;
use osprey_iceberg::{ColumnChange, TableAlteration};

impl QueryEngine {
    /// Runs `alter` when it names a table of an attached catalog; `None` when it does not.
    pub(super) async fn alter_attached_table(
        &self,
        state: &SessionState,
        alter: &ast::AlterTable,
    ) -> Option<Result<PreparedStatement, QueryError>> {
        let attached = self.attached_catalogs();
        let name = match table_reference(&alter.name) {
            Ok(name) => name,
            Err(err) => return Some(Err(err)),
        };
        let defaults = &state.config_options().catalog;
        let name = name.resolve(&defaults.default_catalog, &defaults.default_schema);
        if !(attached.is_attached(&name.catalog) || attached.is_owned_iceberg(&name)) {
            return None;
        }
        if let [ast::AlterTableOperation::RenameTable { table_name }] = alter.operations.as_slice()
        {
            let new_name = match table_name {
                ast::RenameTableNameKind::As(name) | ast::RenameTableNameKind::To(name) => name,
            };
            return Some(
                self.rename_attached_table(&name, new_name, alter.if_exists)
                    .await,
            );
        }
        Some(
            async {
                let alteration = alteration(state, &alter.operations).await?;
                attached
                    .alter_table(&name, &alteration, alter.if_exists)
                    .await?;
                Ok(PreparedStatement::ddl_done("ALTER TABLE"))
            }
            .await,
        )
    }
}

impl QueryEngine {
    /// `ALTER TABLE [IF EXISTS] name RENAME TO new_name` in an attached catalog: the table
    /// moves within its catalog (an unqualified new name stays in its namespace).
    async fn rename_attached_table(
        &self,
        name: &datafusion::common::ResolvedTableReference,
        new_name: &ast::ObjectName,
        if_exists: bool,
    ) -> Result<PreparedStatement, QueryError> {
        let parts = name_parts(new_name);
        let (namespace, table) = match parts.as_slice() {
            [table] => (name.schema.to_string(), table.clone()),
            [namespace, table] => (namespace.clone(), table.clone()),
            [catalog, namespace, table] if *catalog == *name.catalog => {
                (namespace.clone(), table.clone())
            }
            _ => {
                return Err(QueryError::InvalidStatement(format!(
                    "{name} can be renamed within its catalog {} only",
                    name.catalog
                )));
            }
        };
        let attached = self.attached_catalogs();
        attached
            .rename_table(name, (&namespace, &table), if_exists)
            .await?;
        self.catalogs.refresh(Some(&name.catalog)).await?;
        Ok(PreparedStatement::ddl_done("RENAME TABLE"))
    }
}

/// What `operations` change.
async fn alteration(
    state: &SessionState,
    operations: &[ast::AlterTableOperation],
) -> Result<TableAlteration, QueryError> {
    use ast::AlterTableOperation as Op;
    let mut alteration = TableAlteration::default();
    for operation in operations {
        match operation {
            Op::AddColumn {
                if_not_exists,
                column_def,
                column_position: None,
                ..
            } => {
                let name = normalize_ident(&column_def.name);
                let mut comment = None;
                for option in &column_def.options {
                    match &option.option {
                        ast::ColumnOption::Comment(text) => comment = Some(text.clone()),
                        ast::ColumnOption::Null => {}
                        ast::ColumnOption::NotNull => {
                            return Err(QueryError::InvalidStatement(format!(
                                "ADD COLUMN {name} ... NOT NULL: the rows already written have \
                                 no value for it, so a new column of an Iceberg table is nullable"
                            )));
                        }
                        other => {
                            return Err(QueryError::NotSupported(format!(
                                "the column option {other} in ALTER TABLE ... ADD COLUMN"
                            )));
                        }
                    }
                }
                alteration.columns.push(ColumnChange::Add {
                    data_type: arrow_type(state, &column_def.data_type).await?,
                    name,
                    comment,
                    if_not_exists: *if_not_exists,
                });
            }
            Op::DropColumn {
                column_names,
                if_exists,
                ..
            } => {
                for column in column_names {
                    alteration.columns.push(ColumnChange::Drop {
                        name: normalize_ident(column),
                        if_exists: *if_exists,
                    });
                }
            }
            Op::RenameColumn {
                old_column_name,
                new_column_name,
            } => alteration.columns.push(ColumnChange::Rename {
                from: normalize_ident(old_column_name),
                to: normalize_ident(new_column_name),
            }),
            Op::AlterColumn { column_name, op } => {
                let name = normalize_ident(column_name);
                match op {
                    ast::AlterColumnOperation::SetDataType {
                        data_type,
                        using: None,
                        ..
                    } => alteration.columns.push(ColumnChange::SetType {
                        data_type: arrow_type(state, data_type).await?,
                        name,
                    }),
                    ast::AlterColumnOperation::DropNotNull => {
                        alteration.columns.push(ColumnChange::DropNotNull { name })
                    }
                    ast::AlterColumnOperation::SetNotNull => {
                        return Err(QueryError::InvalidStatement(format!(
                            "ALTER COLUMN {name} SET NOT NULL: Iceberg cannot make a column \
                             required once rows may lack it"
                        )));
                    }
                    other => {
                        return Err(QueryError::NotSupported(format!(
                            "ALTER COLUMN {name} {other} on an Iceberg table"
                        )));
                    }
                }
            }
            Op::SetTblProperties { table_properties } => {
                altered_properties(table_properties, &mut alteration)?;
            }
            other => {
                return Err(QueryError::NotSupported(format!(
                    "ALTER TABLE ... {other} on an Iceberg table; Osprey takes ADD COLUMN, DROP \
                     COLUMN, RENAME COLUMN, ALTER COLUMN ... SET DATA TYPE | DROP NOT NULL, and \
                     SET PROPERTIES"
                )));
            }
        }
    }
    Ok(alteration)
}

/// The Arrow type of the SQL type `data_type`, as DataFusion plans it.
async fn arrow_type(
    state: &SessionState,
    data_type: &ast::DataType,
) -> Result<datafusion::arrow::datatypes::DataType, QueryError> {
    let plan = state
        .create_logical_plan(&format!("SELECT CAST(NULL AS {data_type})"))
        .await?;
    Ok(plan.schema().field(0).data_type().clone())
}
