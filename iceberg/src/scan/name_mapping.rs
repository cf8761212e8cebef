//! The table property `schema.name-mapping.default`: field ids for the columns of files
//! written without them (files imported into a table), matched by the names they may have.

use crate::error::IcebergError;
use serde::{Deserialize, Serialize};

/// The property that holds a table's default name mapping.
pub const NAME_MAPPING_PROPERTY: &str = "schema.name-mapping.default";

/// A name mapping: for each field id, the names a file may use for it, at every depth.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NameMapping {
    fields: Vec<MappedField>,
}

/// One mapped field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MappedField {
    /// The field's id (the spec lets a mapping list names with no id: such columns stay
    /// unread).
    #[serde(rename = "field-id", default)]
    pub field_id: Option<i32>,
    /// The names files may give it.
    #[serde(default)]
    pub names: Vec<String>,
    /// Its children's mappings (struct fields, a list's `element`, a map's `key` and `value`).
    #[serde(default)]
    pub fields: Vec<MappedField>,
}

impl NameMapping {
    /// Parses the JSON of [`NAME_MAPPING_PROPERTY`].
    pub fn parse(json: &str) -> Result<Self, IcebergError> {
        serde_json::from_str(json).map_err(|err| {
            IcebergError::Invalid(format!("the table's {NAME_MAPPING_PROPERTY}: {err}"))
        })
    }

    /// The top-level mapped fields.
    pub fn fields(&self) -> &[MappedField] {
        &self.fields
    }

    /// The field of `fields` a file's column `name` maps to.
    pub fn lookup_in<'a>(fields: &'a [MappedField], name: &str) -> Option<&'a MappedField> {
        fields
            .iter()
            .find(|field| field.names.iter().any(|known| known == name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mapping_finds_ids_by_any_of_their_names_at_every_depth() {
        let mapping = NameMapping::parse(
            r#"[{"field-id": 1, "names": ["id", "record_id"]},
                {"field-id": 2, "names": ["location"], "fields": [
                    {"field-id": 3, "names": ["lat"]}]}]"#,
        )
        .unwrap();
        let id = NameMapping::lookup_in(mapping.fields(), "record_id").unwrap();
        assert_eq!(id.field_id, Some(1));
        let location = NameMapping::lookup_in(mapping.fields(), "location").unwrap();
        assert_eq!(
            NameMapping::lookup_in(&location.fields, "lat").and_then(|f| f.field_id),
            Some(3)
        );
        assert!(NameMapping::lookup_in(mapping.fields(), "other").is_none());
        assert!(NameMapping::parse("{").is_err());
    }
}
