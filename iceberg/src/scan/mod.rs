//! Reading Iceberg tables with DataFusion: a snapshot's files become a Parquet scan whose
//! columns are matched by field id and whose deletes are applied where each file is read.
//!
//! - [`table`]: the table provider (plans a snapshot's files into a scan);
//! - [`source`]: the Parquet source that applies deletes;
//! - [`deletes`]: position deletes, deletion vectors and equality deletes;
//! - [`field_ids`]: columns matched by field id, with the name-mapping fallback;
//! - [`codec`]: the scan inside plans sent to executors;
//! - [`location`]: a table's object store and its files' paths in it.

pub(crate) mod codec;
pub(crate) mod deletes;
pub(crate) mod field_ids;
pub(crate) mod location;
pub(crate) mod name_mapping;
pub(crate) mod source;
pub(crate) mod table;
