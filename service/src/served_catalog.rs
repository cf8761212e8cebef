//! Osprey's own catalog served as an Iceberg REST catalog, with no protocol in it: the front
//! door (`/iceberg/v1/...` on the HTTP port) decodes requests into these calls and encodes
//! their answers and errors.
//!
//! The namespaces are the schemas of Osprey's catalog and the tables its Iceberg tables, so
//! Spark, pyiceberg, Trino and DuckDB read and write the tables Osprey manages, and Osprey
//! sees their commits at its next statement. Commits are the clients' requirements and
//! updates, applied by `osprey_iceberg::commit_requested` through the same compare-and-swap
//! as Osprey's own commits.
//!
//! What this catalog refuses, and why:
//! - a table's files stay under the warehouse where Osprey put them: no `location` on create,
//!   no `set-location`; a registered table's metadata and files must be in the warehouse, in
//!   no other table's directory;
//! - no storage credentials are vended (clients read the warehouse with their own), so none
//!   is ever vended beyond what a user may read;
//! - a dropped table's files are deleted with it (`purgeRequested` or not), as DROP TABLE of
//!   a managed table does in SQL.
//!
//! Governance holds here as in SQL, for the same user (see [`crate::Governance`]): listings
//! show what the user may see; loading a table needs `SELECT` on all of it; a commit that adds
//! an append needs `INSERT`, any other snapshot `INSERT` and `DELETE`, and a change of the
//! table's schema, spec, order, properties or history its owner; creating and registering
//! need `CREATE` on the namespace (and make the user the owner), dropping and renaming the
//! owner. A table the user may not see answers `403`, whether it exists or not.

use crate::auth::Principal;
use crate::catalogs::{AttachedCatalogs, WarehouseCatalog};
use crate::governance::{Governance, OwnershipChange, Privilege, RoleSelection};
use crate::lakehouse::committed::CommittedCatalog;
use crate::policy::PolicySubject;
use datafusion::execution::runtime_env::RuntimeEnv;
use object_store::ObjectStoreExt;
use osprey_catalog::SecuredObject;
use osprey_iceberg::{
    CommittedTable, IcebergCatalog, IcebergError, StoreLocation, TableRequirement, TableUpdate,
};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Why a call to the served catalog failed; each kind is one of the REST protocol's errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServedCatalogError {
    /// The request is malformed or asks for something invalid (400).
    #[error("{0}")]
    BadRequest(String),
    /// What the request asks for is not supported here (406).
    #[error("{0}")]
    NotSupported(String),
    /// The user may not do this (403).
    #[error("{0}")]
    Forbidden(String),
    /// No such namespace (404).
    #[error("{0}")]
    NoSuchNamespace(String),
    /// No such table (404).
    #[error("{0}")]
    NoSuchTable(String),
    /// The namespace or table exists already (409).
    #[error("{0}")]
    AlreadyExists(String),
    /// The namespace still holds tables or views (409).
    #[error("{0}")]
    NamespaceNotEmpty(String),
    /// A requirement of the commit does not hold, or other writers kept winning (409).
    #[error("{0}")]
    CommitFailed(String),
    /// The commit may or may not have happened (504 in the protocol's terms).
    #[error("{0}")]
    CommitStateUnknown(String),
    /// The catalog database or storage did not answer (503).
    #[error("{0}")]
    Unavailable(String),
}

/// Osprey's catalog as an Iceberg REST catalog (see the module docs). Every call takes the
/// user it is made for, whose privileges it checks.
#[derive(Clone)]
pub struct ServedCatalog {
    warehouse: WarehouseCatalog,
    committed: CommittedCatalog,
    runtime: Arc<RuntimeEnv>,
    governance: Governance,
    /// The name of Osprey's catalog, which privileges name.
    catalog: String,
}

impl std::fmt::Debug for ServedCatalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServedCatalog")
            .field("warehouse", &self.warehouse.warehouse())
            .finish()
    }
}

/// A table's name: its namespace and name.
pub type TableName<'a> = (&'a str, &'a str);

impl ServedCatalog {
    /// The catalog that `attached` writes Osprey's own Iceberg tables through; `None` before
    /// the engine serves them.
    pub(crate) fn new(
        attached: &AttachedCatalogs,
        committed: CommittedCatalog,
        runtime: Arc<RuntimeEnv>,
        governance: Governance,
        catalog: String,
    ) -> Option<Self> {
        Some(Self {
            warehouse: attached.warehouse()?.clone(),
            committed,
            runtime,
            governance,
            catalog,
        })
    }

    fn schema_object(&self, namespace: &str) -> SecuredObject {
        SecuredObject::Schema(self.catalog.clone(), namespace.to_string())
    }

    fn table_object(&self, name: TableName<'_>) -> SecuredObject {
        SecuredObject::Table(self.catalog.clone(), name.0.to_string(), name.1.to_string())
    }

    /// Whether `user` sees `object`.
    fn sees(&self, user: &Principal, object: &SecuredObject) -> bool {
        let model = self.governance.model();
        model.sees(&model.subject(user, &RoleSelection::All), object)
    }

    /// Checks that `user` holds `needed` on `object` (or owns it, for `None`); a table it may
    /// not see at all is refused the same way whether it exists or not.
    async fn require(
        &self,
        user: &Principal,
        action: &str,
        needed: Option<Privilege>,
        object: &SecuredObject,
    ) -> Result<(), ServedCatalogError> {
        let subject = PolicySubject {
            principal: Some(user),
            role: &RoleSelection::All,
            catalog: &self.catalog,
            schema: "",
            statement_id: None,
        };
        self.governance
            .authorize(&subject, action, needed, object)
            .await
            .map_err(|err| ServedCatalogError::Forbidden(err.to_string()))
    }

    /// Records what a call changed for owners.
    async fn record(
        &self,
        user: &Principal,
        change: OwnershipChange,
    ) -> Result<(), ServedCatalogError> {
        self.governance
            .record(Some(user), Some(change))
            .await
            .map_err(|err| ServedCatalogError::Unavailable(err.to_string()))
    }

    /// The warehouse every table is under (a URL ending in `/`).
    pub fn warehouse(&self) -> &str {
        self.warehouse.warehouse()
    }

    /// Every namespace.
    pub async fn namespaces(&self, user: &Principal) -> Result<Vec<String>, ServedCatalogError> {
        let mut namespaces = self.warehouse.namespaces().await.map_err(failed)?;
        namespaces.retain(|namespace| self.sees(user, &self.schema_object(namespace)));
        Ok(namespaces)
    }

    /// Whether `namespace` exists, for `user` (who sees only what it may).
    pub fn namespace_exists(&self, user: &Principal, namespace: &str) -> bool {
        self.sees(user, &self.schema_object(namespace))
            && self.committed.persistent_schema_exists(namespace)
    }

    /// Creates `namespace`.
    pub async fn create_namespace(
        &self,
        user: &Principal,
        namespace: &str,
    ) -> Result<(), ServedCatalogError> {
        let catalog = SecuredObject::Catalog(self.catalog.clone());
        self.require(
            user,
            "creating a namespace in",
            Some(Privilege::Create),
            &catalog,
        )
        .await?;
        // Built-in schemas (`system`, the TPC-H data) count too: their names are taken.
        if self.committed.schema_exists(namespace) {
            return Err(ServedCatalogError::AlreadyExists(format!(
                "namespace {namespace} already exists"
            )));
        }
        self.warehouse
            .create_namespace(namespace)
            .await
            .map_err(failed)?;
        self.record(
            user,
            OwnershipChange::Created(self.schema_object(namespace)),
        )
        .await
    }

    /// Drops the empty `namespace`.
    pub async fn drop_namespace(
        &self,
        user: &Principal,
        namespace: &str,
    ) -> Result<(), ServedCatalogError> {
        self.require_namespace(user, namespace)?;
        self.require(user, "DROP", None, &self.schema_object(namespace))
            .await?;
        if !self.committed.table_names(namespace).is_empty() {
            return Err(ServedCatalogError::NamespaceNotEmpty(format!(
                "namespace {namespace} is not empty: drop its tables first"
            )));
        }
        self.warehouse
            .drop_namespace(namespace)
            .await
            .map(drop)
            .map_err(failed)?;
        self.record(
            user,
            OwnershipChange::Dropped(self.schema_object(namespace)),
        )
        .await
    }

    /// The Iceberg tables of `namespace`.
    pub async fn tables(
        &self,
        user: &Principal,
        namespace: &str,
    ) -> Result<Vec<String>, ServedCatalogError> {
        self.require_namespace(user, namespace)?;
        let mut tables = self
            .warehouse
            .table_names(namespace)
            .await
            .map_err(failed)?;
        tables.retain(|table| self.sees(user, &self.table_object((namespace, table))));
        Ok(tables)
    }

    /// The table `name` as it is now.
    pub async fn load_table(
        &self,
        user: &Principal,
        name: TableName<'_>,
    ) -> Result<CommittedTable, ServedCatalogError> {
        self.require(
            user,
            "loading",
            Some(Privilege::Select),
            &self.table_object(name),
        )
        .await?;
        let location = self.metadata_location(user, name).await?;
        let store = self.store(&location)?;
        let path = StoreLocation::parse(&location)
            .and_then(|root| root.path_of(&location))
            .map_err(failed)?;
        let bytes = store
            .get(&path)
            .await
            .map_err(|err| {
                ServedCatalogError::Unavailable(format!("cannot read {location}: {err}"))
            })?
            .bytes()
            .await
            .map_err(|err| {
                ServedCatalogError::Unavailable(format!("cannot read {location}: {err}"))
            })?;
        let metadata = serde_json::from_slice(&bytes).map_err(|err| {
            ServedCatalogError::Unavailable(format!("{location} is not JSON: {err}"))
        })?;
        Ok(CommittedTable {
            metadata_location: location,
            metadata,
        })
    }

    /// Creates the table `name` from a client's schema, partition spec, write order and
    /// properties. `location`, when the client chose one, is refused.
    pub async fn create_table(
        &self,
        user: &Principal,
        name: TableName<'_>,
        request: NewServedTable,
    ) -> Result<CommittedTable, ServedCatalogError> {
        self.require_namespace(user, name.0)?;
        let schema = self.schema_object(name.0);
        self.require(
            user,
            "creating a table in",
            Some(Privilege::Create),
            &schema,
        )
        .await?;
        osprey_catalog::check_name("table", name.1)
            .map_err(|err| ServedCatalogError::BadRequest(err.to_string()))?;
        if let Some(location) = request.location {
            return Err(ServedCatalogError::NotSupported(format!(
                "a location for a new table ({location}): Osprey puts its tables under its \
                 warehouse; leave the location out"
            )));
        }
        if request.stage_create {
            return Err(ServedCatalogError::NotSupported(
                "staged creation (stage-create): create the table, then commit to it".to_string(),
            ));
        }
        self.require_free_name(name)?;
        let definition = osprey_iceberg::requested_definition(
            request.schema,
            request.partition_spec,
            request.write_order,
            request.properties,
        )
        .map_err(failed)?;
        let runtime = Arc::clone(&self.runtime);
        let store = async move |location: &str| {
            let url = StoreLocation::parse(location)?.store_url();
            runtime
                .object_store(&url)
                .map_err(|err| IcebergError::Invalid(err.to_string()))
        };
        let created = osprey_iceberg::create_requested(&self.warehouse, name, &definition, store)
            .await
            .map_err(failed)?;
        self.record(user, OwnershipChange::Created(self.table_object(name)))
            .await?;
        Ok(created)
    }

    /// Applies a client's commit to the table `name`.
    pub async fn commit_table(
        &self,
        user: &Principal,
        name: TableName<'_>,
        requirements: &[TableRequirement],
        updates: &[TableUpdate],
    ) -> Result<CommittedTable, ServedCatalogError> {
        let table = self.table_object(name);
        for needed in commit_needs(updates) {
            self.require(user, "changing the metadata of", needed, &table)
                .await?;
        }
        let location = self.metadata_location(user, name).await?;
        let store = self.store(&location)?;
        osprey_iceberg::commit_requested(&self.warehouse, name, &store, requirements, updates)
            .await
            .map_err(failed)
    }

    /// Drops the table `name` and deletes its files.
    pub async fn drop_table(
        &self,
        user: &Principal,
        name: TableName<'_>,
    ) -> Result<(), ServedCatalogError> {
        self.require_namespace(user, name.0)?;
        self.require(user, "DROP", None, &self.table_object(name))
            .await?;
        let entry = self
            .warehouse
            .entry(name.0, name.1)
            .ok_or_else(|| no_such_table(name))?;
        self.warehouse
            .drop_table(name.0, name.1)
            .await
            .map_err(failed)?;
        if let Some(location) = &entry.definition.location {
            let table = entry.qualified_name();
            crate::lakehouse::formats::delete_owned_table_files(&self.runtime, &table, location)
                .await;
        }
        self.record(user, OwnershipChange::Dropped(self.table_object(name)))
            .await
    }

    /// Renames the table `from` to `to`.
    pub async fn rename_table(
        &self,
        user: &Principal,
        from: TableName<'_>,
        to: TableName<'_>,
    ) -> Result<(), ServedCatalogError> {
        self.require_namespace(user, from.0)?;
        self.require_namespace(user, to.0)?;
        self.require(user, "RENAME", None, &self.table_object(from))
            .await?;
        let target = self.schema_object(to.0);
        self.require(user, "renaming into", Some(Privilege::Create), &target)
            .await?;
        self.warehouse
            .entry(from.0, from.1)
            .ok_or_else(|| no_such_table(from))?;
        osprey_catalog::check_name("table", to.1)
            .map_err(|err| ServedCatalogError::BadRequest(err.to_string()))?;
        self.require_free_name(to)?;
        self.warehouse
            .rename_table(from, to)
            .await
            .map_err(failed)?;
        let change = OwnershipChange::Renamed(self.table_object(from), self.table_object(to));
        self.record(user, change).await
    }

    /// Registers the table whose metadata file is `metadata_location` as `name`: the file and
    /// the table's location must be in the warehouse, in no other table's directory.
    pub async fn register_table(
        &self,
        user: &Principal,
        name: TableName<'_>,
        metadata_location: &str,
    ) -> Result<CommittedTable, ServedCatalogError> {
        self.require_namespace(user, name.0)?;
        let schema = self.schema_object(name.0);
        self.require(
            user,
            "registering a table in",
            Some(Privilege::Create),
            &schema,
        )
        .await?;
        osprey_catalog::check_name("table", name.1)
            .map_err(|err| ServedCatalogError::BadRequest(err.to_string()))?;
        self.require_free_name(name)?;
        let store = self.store(metadata_location)?;
        let metadata = osprey_iceberg::read_metadata(store.as_ref(), metadata_location)
            .await
            .map_err(failed)?;
        for place in [metadata_location, metadata.location.as_str()] {
            self.require_free_place(place)?;
        }
        self.warehouse
            .register_table(name.0, name.1, metadata_location)
            .await
            .map_err(failed)?;
        self.record(user, OwnershipChange::Created(self.table_object(name)))
            .await?;
        self.load_table(user, name).await
    }

    /// The current metadata file of the table `name`.
    async fn metadata_location(
        &self,
        user: &Principal,
        name: TableName<'_>,
    ) -> Result<String, ServedCatalogError> {
        self.require_namespace(user, name.0)?;
        let loaded = self
            .warehouse
            .load_table(name.0, name.1)
            .await
            .map_err(failed)?
            .ok_or_else(|| no_such_table(name))?;
        Ok(loaded.metadata_location)
    }

    fn require_namespace(
        &self,
        user: &Principal,
        namespace: &str,
    ) -> Result<(), ServedCatalogError> {
        match self.namespace_exists(user, namespace) {
            true => Ok(()),
            false => Err(ServedCatalogError::NoSuchNamespace(format!(
                "namespace {namespace} does not exist"
            ))),
        }
    }

    fn require_free_name(&self, name: TableName<'_>) -> Result<(), ServedCatalogError> {
        match self.committed.table(name.0, name.1) {
            Some(existing) => Err(ServedCatalogError::AlreadyExists(format!(
                "{} {}.{} already exists",
                existing.kind.noun(),
                name.0,
                name.1
            ))),
            None => Ok(()),
        }
    }

    /// Checks that `location` is in the warehouse and in no table's directory.
    fn require_free_place(&self, location: &str) -> Result<(), ServedCatalogError> {
        let forbidden = |why: String| ServedCatalogError::Forbidden(why);
        let url =
            crate::locations::normalize(location).map_err(|err| forbidden(err.to_string()))?;
        let warehouse = crate::locations::normalize(self.warehouse())
            .map_err(|err| forbidden(err.to_string()))?;
        if !url.starts_with(&warehouse) {
            return Err(forbidden(format!(
                "{location} is outside the warehouse ({}): register only tables whose files are \
                 there (for others, attach their catalog or CREATE EXTERNAL TABLE ... STORED AS \
                 ICEBERG)",
                self.warehouse()
            )));
        }
        for schema in self.committed.schema_names() {
            for table in self.committed.table_names(&schema) {
                let Some(root) = self
                    .committed
                    .table(&schema, &table)
                    .and_then(|entry| entry.definition.location)
                    .and_then(|root| crate::locations::normalize(&root).ok())
                else {
                    continue;
                };
                if url.starts_with(&root) || root.starts_with(&url) {
                    return Err(forbidden(format!(
                        "{location} belongs to the table {schema}.{table}"
                    )));
                }
            }
        }
        Ok(())
    }

    fn store(
        &self,
        location: &str,
    ) -> Result<Arc<dyn object_store::ObjectStore>, ServedCatalogError> {
        let url = StoreLocation::parse(location).map_err(failed)?.store_url();
        self.runtime
            .object_store(&url)
            .map_err(|err| ServedCatalogError::Unavailable(err.to_string()))
    }
}

/// What a commit of `updates` needs: `INSERT` for an append, `INSERT` and `DELETE` for any
/// other snapshot, and the owner (`None`) for anything else it changes.
fn commit_needs(updates: &[TableUpdate]) -> Vec<Option<Privilege>> {
    let mut needs = Vec::new();
    for update in updates {
        let wanted: &[Option<Privilege>] = match update {
            TableUpdate::AddSnapshot { snapshot } => {
                match snapshot
                    .pointer("/summary/operation")
                    .and_then(|o| o.as_str())
                {
                    Some("append") => &[Some(Privilege::Insert)],
                    _ => &[Some(Privilege::Insert), Some(Privilege::Delete)],
                }
            }
            // Moving a branch to a snapshot the commit adds is part of writing.
            TableUpdate::SetSnapshotRef { .. } => &[Some(Privilege::Insert)],
            _ => &[None],
        };
        for need in wanted {
            if !needs.contains(need) {
                needs.push(*need);
            }
        }
    }
    needs
}

/// What a client asks a new table to be.
#[derive(Debug, Clone, Default)]
pub struct NewServedTable {
    /// Its schema, as metadata spells it, ids assigned.
    pub schema: serde_json::Value,
    /// Its partition spec.
    pub partition_spec: Option<serde_json::Value>,
    /// Its write order.
    pub write_order: Option<serde_json::Value>,
    /// Where the client wants it (refused).
    pub location: Option<String>,
    /// Whether the client only stages it (refused).
    pub stage_create: bool,
    /// Its properties.
    pub properties: BTreeMap<String, String>,
}

fn no_such_table((namespace, name): TableName<'_>) -> ServedCatalogError {
    ServedCatalogError::NoSuchTable(format!("table {namespace}.{name} does not exist"))
}

/// An Iceberg error as the served catalog's.
fn failed(err: IcebergError) -> ServedCatalogError {
    match err {
        IcebergError::Unsupported(message) => ServedCatalogError::NotSupported(message),
        IcebergError::Invalid(message) | IcebergError::Catalog(message) => {
            ServedCatalogError::BadRequest(message)
        }
        IcebergError::ConstraintViolation(message) => ServedCatalogError::BadRequest(message),
        IcebergError::CommitConflict(message) => ServedCatalogError::CommitFailed(message),
        IcebergError::CommitStateUnknown(message) => {
            ServedCatalogError::CommitStateUnknown(message)
        }
        IcebergError::CatalogUnavailable(message) => ServedCatalogError::Unavailable(message),
        IcebergError::CatalogDenied(message) => ServedCatalogError::Forbidden(message),
    }
}
