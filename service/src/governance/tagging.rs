//! What tags mean to decisions (Lake Formation's tag-based access control):
//!
//! - a catalog, schema, table or column carries the tags set on it, and those of what holds
//!   it, unless set again closer: a column's own tag overrides its table's, a table's its
//!   schema's, a schema's its catalog's;
//! - a grant `ON TAGGED domain = 'sales' AND pii = 'false'` covers each catalog, schema and
//!   table whose tags match every term, and, within a table, the columns whose tags match. A
//!   table that matches but holds a column tagged `pii = 'true'` is covered but for that
//!   column; a table that does not match is covered for the columns tagged to match.
//!
//! So a new table that carries the right tags (its own, or its schema's) is covered at once,
//! with no new grant.

use crate::error::QueryError;
use osprey_catalog::{SecuredObject, TagAssignment, TagDefinition, TagExpression};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Which columns of a table a grant covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColumnScope {
    /// Every column (and, for a schema or catalog, the whole object).
    All,
    /// These columns only (none: nothing).
    Only(BTreeSet<String>),
    /// Every column but these.
    AllBut(BTreeSet<String>),
}

impl ColumnScope {
    /// No column at all.
    pub fn nothing() -> Self {
        ColumnScope::Only(BTreeSet::new())
    }

    /// The scope of a grant's column list (empty: every column).
    pub fn of_grant(columns: &[String]) -> Self {
        match columns.is_empty() {
            true => ColumnScope::All,
            false => ColumnScope::Only(columns.iter().cloned().collect()),
        }
    }

    /// Whether it covers no column.
    pub fn is_nothing(&self) -> bool {
        matches!(self, ColumnScope::Only(columns) if columns.is_empty())
    }

    /// Whether it covers `column`.
    pub fn contains(&self, column: &str) -> bool {
        match self {
            ColumnScope::All => true,
            ColumnScope::Only(columns) => columns.contains(column),
            ColumnScope::AllBut(columns) => !columns.contains(column),
        }
    }

    /// The columns either covers.
    pub fn union(self, other: ColumnScope) -> ColumnScope {
        use ColumnScope::*;
        match (self, other) {
            (All, _) | (_, All) => All,
            (Only(mut a), Only(b)) => {
                a.extend(b);
                Only(a)
            }
            (AllBut(a), AllBut(b)) => AllBut(a.intersection(&b).cloned().collect()),
            (AllBut(but), Only(only)) | (Only(only), AllBut(but)) => {
                AllBut(but.difference(&only).cloned().collect())
            }
        }
    }
}

/// The tags and where they are set, indexed for decisions.
#[derive(Debug, Default)]
pub struct TagIndex {
    /// Each tag's allowed values.
    definitions: BTreeMap<String, BTreeSet<String>>,
    /// The tags set on each catalog, schema and table itself.
    on_objects: HashMap<SecuredObject, BTreeMap<String, String>>,
    /// The tags set on columns, by table, then column.
    on_columns: HashMap<SecuredObject, BTreeMap<String, BTreeMap<String, String>>>,
}

/// A tag's value on an object, and where it was set.
pub type TagSource = (String, SecuredObject);

impl TagIndex {
    /// The index of `definitions` and `assignments`.
    pub fn new(definitions: Vec<TagDefinition>, assignments: Vec<TagAssignment>) -> Self {
        let mut index = TagIndex {
            definitions: definitions
                .into_iter()
                .map(|tag| (tag.key, tag.values))
                .collect(),
            ..Default::default()
        };
        for assignment in assignments {
            let tags = match assignment.column {
                Some(column) => index
                    .on_columns
                    .entry(assignment.object)
                    .or_default()
                    .entry(column)
                    .or_default(),
                None => index.on_objects.entry(assignment.object).or_default(),
            };
            tags.insert(assignment.key, assignment.value);
        }
        index
    }

    /// Each tag with its allowed values.
    pub fn definitions(&self) -> &BTreeMap<String, BTreeSet<String>> {
        &self.definitions
    }

    /// Whether tag `key` is set anywhere.
    pub fn is_set_anywhere(&self, key: &str) -> bool {
        self.on_objects.values().any(|tags| tags.contains_key(key))
            || self
                .on_columns
                .values()
                .flat_map(|columns| columns.values())
                .any(|tags| tags.contains_key(key))
    }

    /// Refuses an expression that names a tag or value that does not exist.
    pub fn check(&self, expression: &TagExpression) -> Result<(), QueryError> {
        for (key, values) in expression.terms() {
            let allowed = self.definitions.get(key).ok_or_else(|| no_such_tag(key))?;
            if let Some(value) = values.iter().find(|v| !allowed.contains(*v)) {
                return Err(QueryError::InvalidStatement(format!(
                    "tag {key} takes {}, not '{value}'",
                    quoted_list(allowed)
                )));
            }
        }
        Ok(())
    }

    /// `object`'s tags with where each was set: its own, and those of what holds it.
    pub fn effective_with_source(&self, object: &SecuredObject) -> BTreeMap<String, TagSource> {
        let mut tags = BTreeMap::new();
        for level in lineage(object) {
            for (key, value) in self.on_objects.get(&level).into_iter().flatten() {
                tags.insert(key.clone(), (value.clone(), level.clone()));
            }
        }
        tags
    }

    /// `object`'s tags: its own, and those of what holds it.
    pub fn effective(&self, object: &SecuredObject) -> BTreeMap<String, String> {
        self.effective_with_source(object)
            .into_iter()
            .map(|(key, (value, _))| (key, value))
            .collect()
    }

    /// The tags set on `table`'s columns themselves, by column.
    pub fn column_tags(
        &self,
        table: &SecuredObject,
    ) -> Option<&BTreeMap<String, BTreeMap<String, String>>> {
        self.on_columns.get(table)
    }

    /// What a grant on `expression` covers of `object`.
    pub fn coverage(&self, expression: &TagExpression, object: &SecuredObject) -> ColumnScope {
        if matches!(
            object,
            SecuredObject::Location(_) | SecuredObject::Tagged(_)
        ) {
            return ColumnScope::nothing();
        }
        let tags = self.effective(object);
        let matches = expression.matches(&tags);
        let Some(columns) = self.on_columns.get(object) else {
            return match matches {
                true => ColumnScope::All,
                false => ColumnScope::nothing(),
            };
        };
        // Only the columns tagged themselves can differ from their table.
        let differing: BTreeSet<String> = columns
            .iter()
            .filter(|(_, own)| {
                let mut merged = tags.clone();
                merged.extend(own.iter().map(|(k, v)| (k.clone(), v.clone())));
                expression.matches(&merged) != matches
            })
            .map(|(column, _)| column.clone())
            .collect();
        match (matches, differing.is_empty()) {
            (true, true) => ColumnScope::All,
            (true, false) => ColumnScope::AllBut(differing),
            (false, _) => ColumnScope::Only(differing),
        }
    }

    /// Whether a grant on `expression` covers something strictly inside `object` (a table of
    /// a schema, a column of a table), which makes `object` visible in listings.
    pub fn covers_inside(&self, expression: &TagExpression, object: &SecuredObject) -> bool {
        if !self.coverage(expression, object).is_nothing() {
            return true;
        }
        // What inside could differ carries tags of its own (or has columns that do).
        let inside = |o: &SecuredObject| object.covers(o) && o != object;
        self.on_objects
            .keys()
            .chain(self.on_columns.keys())
            .filter(|o| inside(o))
            .any(|o| !self.coverage(expression, o).is_nothing())
    }
}

/// The error for tag `key`, which does not exist.
pub fn no_such_tag(key: &str) -> QueryError {
    QueryError::NotFound(format!(
        "tag {key} does not exist: an admin makes it with CREATE TAG {key} VALUES ('...')"
    ))
}

/// `'a', 'b'`.
pub fn quoted_list(values: &BTreeSet<String>) -> String {
    let quoted: Vec<String> = values.iter().map(|v| format!("'{v}'")).collect();
    quoted.join(", ")
}

/// `object` and what holds it, outermost first.
fn lineage(object: &SecuredObject) -> Vec<SecuredObject> {
    use SecuredObject::*;
    match object {
        Catalog(_) => vec![object.clone()],
        Schema(c, _) => vec![Catalog(c.clone()), object.clone()],
        Table(c, s, _) => vec![
            Catalog(c.clone()),
            Schema(c.clone(), s.clone()),
            object.clone(),
        ],
        Location(_) | Tagged(_) => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(t: &str) -> SecuredObject {
        SecuredObject::Table("osprey".into(), "sales".into(), t.into())
    }

    fn set(object: SecuredObject, column: Option<&str>, key: &str, value: &str) -> TagAssignment {
        TagAssignment {
            object,
            column: column.map(str::to_string),
            key: key.into(),
            value: value.into(),
        }
    }

    fn expression(terms: &[(&str, &str)]) -> TagExpression {
        let mut map: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (k, v) in terms {
            map.entry(k.to_string()).or_default().insert(v.to_string());
        }
        TagExpression::new(map).unwrap()
    }

    fn names(columns: &[&str]) -> BTreeSet<String> {
        columns.iter().map(|c| c.to_string()).collect()
    }

    #[test]
    fn tags_pass_down_and_columns_override() {
        let schema = SecuredObject::Schema("osprey".into(), "sales".into());
        let index = TagIndex::new(
            Vec::new(),
            vec![
                set(
                    SecuredObject::Catalog("osprey".into()),
                    None,
                    "pii",
                    "false",
                ),
                set(schema.clone(), None, "domain", "sales"),
                set(table("orders"), Some("ssn"), "pii", "true"),
                set(table("hr_notes"), None, "domain", "hr"),
                set(table("hr_notes"), Some("dept"), "domain", "sales"),
            ],
        );
        let sales_public = expression(&[("domain", "sales"), ("pii", "false")]);
        // The schema matches, so a table with no tags of its own does: a new table is covered.
        assert_eq!(
            index.coverage(&sales_public, &table("new")),
            ColumnScope::All
        );
        assert_eq!(index.coverage(&sales_public, &schema), ColumnScope::All);
        // A column tagged pii = 'true' is left out.
        assert_eq!(
            index.coverage(&sales_public, &table("orders")),
            ColumnScope::AllBut(names(&["ssn"]))
        );
        // A table tagged hr is covered for the column tagged sales only.
        assert_eq!(
            index.coverage(&sales_public, &table("hr_notes")),
            ColumnScope::Only(names(&["dept"]))
        );
        let hr = expression(&[("domain", "hr")]);
        assert!(index.coverage(&hr, &schema).is_nothing());
        assert!(index.covers_inside(&hr, &schema));
        assert!(!index.covers_inside(&expression(&[("domain", "ops")]), &schema));
        assert_eq!(
            index.effective_with_source(&table("orders"))["domain"],
            ("sales".to_string(), schema)
        );
    }

    #[test]
    fn scopes_unite() {
        let all_but = ColumnScope::AllBut(names(&["ssn", "salary"]));
        assert_eq!(
            all_but.clone().union(ColumnScope::Only(names(&["ssn"]))),
            ColumnScope::AllBut(names(&["salary"]))
        );
        assert_eq!(
            all_but.union(ColumnScope::AllBut(names(&["ssn"]))),
            ColumnScope::AllBut(names(&["ssn"]))
        );
        assert_eq!(
            ColumnScope::nothing().union(ColumnScope::Only(names(&["a"]))),
            ColumnScope::Only(names(&["a"]))
        );
        assert!(!ColumnScope::AllBut(names(&["a"])).contains("a"));
    }
}
