//! Branches and tags (spec: "Snapshot References"): created, replaced and dropped as one
//! metadata commit each, and a branch fast-forwarded to another's head, the last step of
//! write-audit-publish (write to a branch, check it, move `main` to it).

use super::metadata_commit::{Current, commit_metadata};
use crate::catalog::IcebergCatalog;
use crate::error::IcebergError;
use crate::metadata::{SnapshotRefKind, TableMetadata};
use crate::updates::{TableRequirement, TableUpdate};
use object_store::ObjectStore;
use std::sync::Arc;

/// `CREATE [OR REPLACE] BRANCH | TAG [IF NOT EXISTS] name [AS OF VERSION id] [RETAIN ...]`,
/// or `REPLACE BRANCH | TAG name ...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefChange {
    /// The ref's name.
    pub name: String,
    /// Branch or tag.
    pub kind: SnapshotRefKind,
    /// The snapshot it points at; `None`: the table's current snapshot.
    pub snapshot_id: Option<i64>,
    /// Whether a new ref may be made.
    pub create: bool,
    /// Whether an existing ref may be moved.
    pub replace: bool,
    /// Whether an existing ref is no error (and is left as it is).
    pub if_not_exists: bool,
    /// How long the ref lives, in ms (`RETAIN`).
    pub max_ref_age_ms: Option<i64>,
}

fn kind_name(kind: SnapshotRefKind) -> &'static str {
    match kind {
        SnapshotRefKind::Branch => "branch",
        SnapshotRefKind::Tag => "tag",
    }
}

/// Creates or moves a ref of `namespace.name` as `change` says.
pub async fn set_ref(
    catalog: &dyn IcebergCatalog,
    namespace: &str,
    name: &str,
    store: Arc<dyn ObjectStore>,
    change: &RefChange,
) -> Result<(), IcebergError> {
    let build = |current: &Current| {
        let metadata = &current.metadata;
        let existing = metadata.refs.get(&change.name);
        let what = kind_name(change.kind);
        match existing {
            Some(existing) if existing.kind != change.kind => {
                return Err(IcebergError::Invalid(format!(
                    "{} is a {} of {namespace}.{name}, not a {what}",
                    change.name,
                    kind_name(existing.kind)
                )));
            }
            Some(_) if change.if_not_exists => return Ok(None),
            Some(_) if !change.replace => {
                return Err(IcebergError::Invalid(format!(
                    "{namespace}.{name} has a {what} {} already (CREATE OR REPLACE moves it)",
                    change.name
                )));
            }
            None if !change.create => {
                return Err(IcebergError::Invalid(format!(
                    "{namespace}.{name} has no {what} {}",
                    change.name
                )));
            }
            _ => {}
        }
        if change.name == "main" && change.kind == SnapshotRefKind::Tag {
            return Err(IcebergError::Invalid(
                "main is the table's own branch; a tag needs another name".to_string(),
            ));
        }
        let snapshot_id = target_snapshot(metadata, change.snapshot_id, namespace, name)?;
        let requirements = vec![TableRequirement::AssertRefSnapshotId {
            reference: change.name.clone(),
            snapshot_id: existing.map(|r| r.snapshot_id),
        }];
        let updates = vec![TableUpdate::SetSnapshotRef {
            ref_name: change.name.clone(),
            kind: what.to_string(),
            snapshot_id,
            max_ref_age_ms: change.max_ref_age_ms,
            max_snapshot_age_ms: None,
            min_snapshots_to_keep: None,
        }];
        Ok(Some((requirements, updates)))
    };
    commit_metadata(catalog, (namespace, name), &store, build).await?;
    Ok(())
}

/// The snapshot a ref is made to point at: `wanted`, which must exist, else the current one.
fn target_snapshot(
    metadata: &TableMetadata,
    wanted: Option<i64>,
    namespace: &str,
    name: &str,
) -> Result<i64, IcebergError> {
    match wanted {
        Some(id) if metadata.snapshot(id).is_some() => Ok(id),
        Some(id) => Err(IcebergError::Invalid(format!(
            "{namespace}.{name} has no snapshot {id}"
        ))),
        None => metadata.current_snapshot_id.ok_or_else(|| {
            IcebergError::Invalid(format!(
                "{namespace}.{name} has no snapshot yet: write to it first, or name a version"
            ))
        }),
    }
}

/// Drops the ref `ref_name` (a `kind`) of `namespace.name`; `false` when there was none.
/// `main` cannot be dropped.
pub async fn drop_ref(
    catalog: &dyn IcebergCatalog,
    namespace: &str,
    name: &str,
    store: Arc<dyn ObjectStore>,
    (ref_name, kind): (&str, SnapshotRefKind),
) -> Result<bool, IcebergError> {
    if ref_name == "main" {
        return Err(IcebergError::Invalid(
            "main is the table's own branch and cannot be dropped".to_string(),
        ));
    }
    let build = |current: &Current| match current.metadata.refs.get(ref_name) {
        None => Ok(None),
        Some(existing) if existing.kind != kind => Err(IcebergError::Invalid(format!(
            "{ref_name} is a {} of {namespace}.{name}, not a {}",
            kind_name(existing.kind),
            kind_name(kind)
        ))),
        Some(existing) => Ok(Some((
            vec![TableRequirement::AssertRefSnapshotId {
                reference: ref_name.to_string(),
                snapshot_id: Some(existing.snapshot_id),
            }],
            vec![TableUpdate::RemoveSnapshotRef {
                ref_name: ref_name.to_string(),
            }],
        ))),
    };
    Ok(commit_metadata(catalog, (namespace, name), &store, build)
        .await?
        .is_some())
}

/// Moves the branch `branch` of `namespace.name` to the head of `to`, which must descend from
/// it (a fast-forward: no commit of `branch` is lost). Answers the heads before and after.
pub async fn fast_forward(
    catalog: &dyn IcebergCatalog,
    namespace: &str,
    name: &str,
    store: Arc<dyn ObjectStore>,
    (branch, to): (&str, &str),
) -> Result<(Option<i64>, i64), IcebergError> {
    let mut heads = (None, 0);
    let build = |current: &Current| {
        let metadata = &current.metadata;
        let head = |ref_name: &str| -> Result<Option<i64>, IcebergError> {
            match (ref_name, metadata.refs.get(ref_name)) {
                (_, Some(r)) if r.kind == SnapshotRefKind::Branch => Ok(Some(r.snapshot_id)),
                ("main", None) => Ok(metadata.current_snapshot_id),
                _ => Err(IcebergError::Invalid(format!(
                    "{namespace}.{name} has no branch {ref_name}"
                ))),
            }
        };
        let from = head(branch)?;
        let Some(target) = head(to)? else {
            return Err(IcebergError::Invalid(format!(
                "the branch {to} of {namespace}.{name} has no snapshot"
            )));
        };
        heads = (from, target);
        if from == Some(target) {
            return Ok(None);
        }
        if !descends(metadata, target, from) {
            return Err(IcebergError::Invalid(format!(
                "{branch} of {namespace}.{name} cannot fast-forward to {to}: {to} does not \
                 descend from {branch}'s head (they diverged)"
            )));
        }
        Ok(Some((
            vec![TableRequirement::AssertRefSnapshotId {
                reference: branch.to_string(),
                snapshot_id: from,
            }],
            vec![TableUpdate::SetSnapshotRef {
                ref_name: branch.to_string(),
                kind: "branch".to_string(),
                snapshot_id: target,
                max_ref_age_ms: None,
                max_snapshot_age_ms: None,
                min_snapshots_to_keep: None,
            }],
        )))
    };
    commit_metadata(catalog, (namespace, name), &store, build).await?;
    Ok(heads)
}

/// Whether `ancestor` (`None`: the empty table) is `snapshot` or one of its parents.
fn descends(metadata: &TableMetadata, snapshot: i64, ancestor: Option<i64>) -> bool {
    let Some(ancestor) = ancestor else {
        return true;
    };
    let mut next = Some(snapshot);
    while let Some(id) = next {
        if id == ancestor {
            return true;
        }
        next = metadata.snapshot(id).and_then(|s| s.parent_snapshot_id);
    }
    false
}
