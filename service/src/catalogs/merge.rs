//! `MERGE INTO` the Iceberg tables of attached catalogs, merge-on-read, with every clause
//! Trino takes: `WHEN MATCHED [AND ...] THEN UPDATE | DELETE`, `WHEN NOT MATCHED [AND ...]
//! THEN INSERT` and `WHEN NOT MATCHED BY SOURCE [AND ...] THEN UPDATE | DELETE`.
//!
//! The target's scan (with row ids) is joined to the source on the `ON` condition (inner,
//! outer or full, as the clauses need), and each joined row gets the index of the first
//! clause it meets (`__osprey_action`). The plan is then read three times, all from the
//! snapshot the target's scan pinned: once to count the changes and check that no target row
//! matched two source rows (the standard's cardinality rule), once for the positions of the
//! updated and deleted target rows (position delete files), once for the updated and inserted
//! rows' values (data files). One snapshot commits them.

use super::removal::{RemovalMode, RemovedRows, RowIdScan, remove_rows};
use super::row_changes::commit;
use super::writes::{CatalogTarget, WriteTable, internal, open, stage, write_data};
use crate::error::QueryError;
use crate::lakehouse::committed::CommittedCatalog;
use datafusion::common::{JoinType, ScalarValue, TableReference};
use datafusion::datasource::{provider_as_source, source_as_provider};
use datafusion::execution::SessionState;
use datafusion::functions::expr_fn::concat;
use datafusion::functions_aggregate::expr_fn::{count, count_distinct};
use datafusion::logical_expr::dml::{MergeIntoAction, MergeIntoClauseKind, MergeIntoOp};
use datafusion::logical_expr::{
    Case, Expr, LogicalPlan, LogicalPlanBuilder, TableSource, cast, col, lit, when,
};
use datafusion::physical_plan::collect;
use osprey_iceberg::{FILE_COLUMN, IcebergTable, POSITION_COLUMN};
use std::sync::Arc;

const ACTION: &str = "__osprey_action";
const TARGET_PRESENT: &str = "__osprey_target_row";
const SOURCE_PRESENT: &str = "__osprey_source_row";

/// A `MERGE INTO` statement as planned.
pub(crate) struct MergeStatement<'a> {
    /// The target's name in the plan (its columns are qualified by it).
    pub name: &'a TableReference,
    /// The target's provider as planned (it pins the snapshot read).
    pub target: &'a Arc<dyn TableSource>,
    /// The `USING` source.
    pub source: LogicalPlan,
    /// The `ON` condition and the `WHEN` clauses.
    pub merge: &'a MergeIntoOp,
}

/// `MERGE INTO namespace.table` as `statement` says; returns the rows inserted, updated and
/// deleted.
pub(super) async fn merge(
    catalog: &CatalogTarget<'_>,
    table: WriteTable<'_>,
    state: &SessionState,
    committed: &CommittedCatalog,
    statement: MergeStatement<'_>,
) -> Result<u64, QueryError> {
    let MergeStatement {
        name,
        target,
        source,
        merge,
    } = statement;
    let opened = open(catalog, table.namespace, table.table).await?;
    let provider = source_as_provider(target)?;
    let scanned = provider
        .as_ref()
        .downcast_ref::<IcebergTable>()
        .ok_or_else(|| internal("a MERGE target that is not an Iceberg table"))?;
    let base = scanned.snapshot().map(|s| s.snapshot_id);
    let mode = RemovalMode::of(&opened, "write.merge.mode")?;
    let row_id_scan = RowIdScan {
        name: name.clone(),
        table: scanned
            .clone()
            .with_row_ids()
            .map_err(|err| opened.failed(err))?,
    };
    let with_ids = provider_as_source(Arc::new(row_id_scan.table.clone()));
    let table_columns: Vec<String> = opened
        .metadata
        .current_schema()
        .fields
        .iter()
        .map(|f| f.name.clone())
        .collect();
    let table_types = opened.metadata.current_schema().to_arrow();

    // The target, its row ids and a marker; the source and a marker; joined.
    let target_plan = LogicalPlanBuilder::scan(name.clone(), with_ids, None)?.build()?;
    let mut target_columns: Vec<Expr> = target_plan
        .schema()
        .columns()
        .into_iter()
        .map(Expr::Column)
        .collect();
    target_columns.push(lit(true).alias(TARGET_PRESENT));
    let mut source_columns: Vec<Expr> = source
        .schema()
        .columns()
        .into_iter()
        .map(Expr::Column)
        .collect();
    source_columns.push(lit(true).alias(SOURCE_PRESENT));
    let kinds = |f: fn(&MergeIntoClauseKind) -> bool| merge.clauses.iter().any(|c| f(&c.kind));
    let join_type = match (
        kinds(MergeIntoClauseKind::is_not_matched_by_target),
        kinds(|k| *k == MergeIntoClauseKind::NotMatchedBySource),
    ) {
        (false, false) => JoinType::Inner,
        (true, false) => JoinType::Right,
        (false, true) => JoinType::Left,
        (true, true) => JoinType::Full,
    };
    let source_plan = LogicalPlanBuilder::from(source)
        .project(source_columns)?
        .build()?;
    let joined = LogicalPlanBuilder::from(target_plan)
        .project(target_columns)?
        .join_on(source_plan, join_type, vec![merge.on.clone()])?
        .build()?;

    // The first clause each row meets.
    let matched = col(TARGET_PRESENT)
        .is_not_null()
        .and(col(SOURCE_PRESENT).is_not_null());
    let arms = merge.clauses.iter().enumerate().map(|(index, clause)| {
        let kind = match clause.kind {
            MergeIntoClauseKind::Matched => matched.clone(),
            MergeIntoClauseKind::NotMatchedBySource => col(SOURCE_PRESENT).is_null(),
            _ => col(TARGET_PRESENT).is_null(),
        };
        let condition = match &clause.predicate {
            Some(predicate) => kind.and(predicate.clone().is_true()),
            None => kind,
        };
        (condition, lit(index as i32))
    });
    let action = first_match(arms.collect(), ScalarValue::Int32(None))?;
    let mut with_action: Vec<Expr> = joined
        .schema()
        .columns()
        .into_iter()
        .map(Expr::Column)
        .collect();
    with_action.push(action.alias(ACTION));
    let actions = LogicalPlanBuilder::from(joined)
        .project(with_action)?
        .build()?;

    // Which clauses change target rows (their positions are deleted), and which write rows.
    let indices = |f: fn(&MergeIntoAction) -> bool| -> Vec<Expr> {
        merge
            .clauses
            .iter()
            .enumerate()
            .filter(|(_, c)| f(&c.action))
            .map(|(i, _)| lit(i as i32))
            .collect()
    };
    let changes_target = indices(|a| !matches!(a, MergeIntoAction::Insert { .. }));
    let writes_rows = indices(|a| !matches!(a, MergeIntoAction::Delete));
    let in_list = |list: &Vec<Expr>| col(ACTION).in_list(list.clone(), false);

    // Pass 1: count, and refuse a target row matched by more than one source row.
    let position = concat(vec![
        col(FILE_COLUMN),
        lit("#"),
        cast(
            col(POSITION_COLUMN),
            datafusion::arrow::datatypes::DataType::Utf8,
        ),
    ]);
    let target_row =
        when(in_list(&changes_target), position).otherwise(lit(ScalarValue::Utf8(None)))?;
    let counts = LogicalPlanBuilder::from(actions.clone())
        .filter(col(ACTION).is_not_null())?
        .aggregate(
            Vec::<Expr>::new(),
            vec![
                count(lit(1)).alias("changed"),
                count(target_row.clone()).alias("target_rows"),
                count_distinct(target_row).alias("distinct_target_rows"),
            ],
        )?
        .build()?;
    let batches = collect(state.create_physical_plan(&counts).await?, state.task_ctx()).await?;
    let figure = |column: usize| -> Result<i64, QueryError> {
        match batches
            .first()
            .map(|b| ScalarValue::try_from_array(b.column(column), 0))
        {
            Some(Ok(ScalarValue::Int64(Some(n)))) => Ok(n),
            _ => Err(internal("a MERGE count that is not a number")),
        }
    };
    let (changed, target_rows, distinct) = (figure(0)?, figure(1)?, figure(2)?);
    if target_rows != distinct {
        return Err(QueryError::InvalidData(format!(
            "MERGE into {}: a target row matched more than one source row; make the ON \
             condition match each target row at most once",
            opened.subject
        )));
    }
    if changed == 0 {
        return Ok(0);
    }

    let write = stage(catalog, committed, &opened).await?;
    // Pass 2: the positions of the target rows updated or deleted.
    let removed = match changes_target.is_empty() {
        true => RemovedRows::default(),
        false => {
            let changed_rows = LogicalPlanBuilder::from(actions.clone())
                .filter(in_list(&changes_target))?
                .build()?;
            remove_rows(&write, state, &opened, &row_id_scan, changed_rows, mode).await?
        }
    };
    // Pass 3: the values of the rows updated and inserted, in the table's columns.
    let mut data = removed.kept;
    data.extend(match writes_rows.is_empty() {
        true => Vec::new(),
        false => {
            let mut values = Vec::with_capacity(table_columns.len());
            for (position, column) in table_columns.iter().enumerate() {
                let target_value =
                    Expr::Column(datafusion::common::Column::new(Some(name.clone()), column));
                let data_type = table_types.field(position).data_type().clone();
                let mut arms = Vec::new();
                for (index, clause) in merge.clauses.iter().enumerate() {
                    let value = match &clause.action {
                        MergeIntoAction::Delete => continue,
                        MergeIntoAction::Update(assignments) => assignments
                            .iter()
                            .find(|(name, _)| name == column)
                            .map(|(_, value)| value.clone())
                            .unwrap_or_else(|| target_value.clone()),
                        MergeIntoAction::Insert { columns, values } if columns.is_empty() => values
                            .get(position)
                            .cloned()
                            .unwrap_or(lit(ScalarValue::Null)),
                        MergeIntoAction::Insert { columns, values } => columns
                            .iter()
                            .position(|c| c == column)
                            .and_then(|i| values.get(i).cloned())
                            .unwrap_or(lit(ScalarValue::Null)),
                    };
                    let condition = col(ACTION).eq(lit(index as i32));
                    arms.push((condition, cast(value, data_type.clone())));
                }
                let value = first_match(arms, ScalarValue::try_from(&data_type)?)?;
                values.push(value.alias(column));
            }
            let new_rows = LogicalPlanBuilder::from(actions)
                .filter(in_list(&writes_rows))?
                .project(values)?
                .build()?;
            write_data(&write, state, &opened, new_rows).await?.0
        }
    });
    let delta = osprey_iceberg::RowDelta {
        base,
        deletes: removed.deletes,
        data,
        data_spec_id: opened.metadata.default_spec_id,
        removed: removed.rewritten,
        branch: table.branch.to_string(),
        isolation_property: "write.merge.isolation-level",
    };
    commit(catalog, table, &opened, write, delta).await?;
    Ok(changed as u64)
}

/// `CASE WHEN c1 THEN v1 WHEN c2 THEN v2 ... ELSE otherwise END` of `arms`: the value of the
/// first condition that holds.
fn first_match(arms: Vec<(Expr, Expr)>, otherwise: ScalarValue) -> Result<Expr, QueryError> {
    if arms.is_empty() {
        return Err(internal("a MERGE without a clause for this"));
    }
    let arms = arms
        .into_iter()
        .map(|(condition, value)| (Box::new(condition), Box::new(value)))
        .collect();
    Ok(Expr::Case(Case::new(
        None,
        arms,
        Some(Box::new(lit(otherwise))),
    )))
}
