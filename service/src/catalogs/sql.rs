//! SQL for attached catalogs (see [`super`]), in Trino's spelling:
//!
//! ```sql
//! CREATE [OR REPLACE] CATALOG [IF NOT EXISTS] lake USING iceberg
//!     WITH (type = 'rest', uri = 'https://catalog.example.com', credential = 'id:secret');
//! DROP CATALOG [IF EXISTS] lake;
//! SHOW CATALOGS [LIKE 'pattern'];
//! SHOW CREATE CATALOG lake;
//! ```
//!
//! Creating and dropping need an admin. Property names may be written as identifiers
//! (`oauth2_server_uri`) or strings (`'oauth2-server-uri'`); values are strings.

use super::AttachedCatalogs;
use crate::admin_sql::{Tokens, listing_plan, syntax};
use crate::auth::Principal;
use crate::error::QueryError;
use crate::users::require_admin;
use datafusion::arrow::array::StringArray;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::CatalogProviderList;
use datafusion::logical_expr::{LogicalPlan, LogicalPlanBuilder, col, lit};
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::Token;
use osprey_catalog::{AttachedCatalogRecord, now_ms};
use std::collections::BTreeMap;
use std::sync::Arc;

/// A parsed catalog statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CatalogStatement {
    /// `CREATE [OR REPLACE] CATALOG [IF NOT EXISTS] name USING connector WITH (...)`.
    Create {
        /// The catalog's name.
        name: String,
        /// `USING connector`, lower case.
        connector: String,
        /// The WITH clause, names as stored (lower case, `-` for `_`).
        properties: BTreeMap<String, String>,
        /// `OR REPLACE`.
        replace: bool,
        /// `IF NOT EXISTS`.
        if_not_exists: bool,
    },
    /// `DROP CATALOG [IF EXISTS] name`.
    Drop {
        /// The catalog's name.
        name: String,
        /// `IF EXISTS`.
        if_exists: bool,
    },
    /// `SHOW CATALOGS [LIKE 'pattern']`.
    Show {
        /// The LIKE pattern.
        like: Option<String>,
    },
    /// `SHOW CREATE CATALOG name`.
    ShowCreate {
        /// The catalog's name.
        name: String,
    },
}

impl CatalogStatement {
    /// The statement's kind, as its update count reports it.
    pub fn kind(&self) -> &'static str {
        match self {
            CatalogStatement::Create { .. } => "CREATE CATALOG",
            CatalogStatement::Drop { .. } => "DROP CATALOG",
            CatalogStatement::Show { .. } => "SHOW CATALOGS",
            CatalogStatement::ShowCreate { .. } => "SHOW CREATE CATALOG",
        }
    }
}

impl CatalogStatement {
    /// The columns of the listing the statement answers; `None` when it answers none.
    pub fn listing_schema(&self) -> Option<SchemaRef> {
        let column = match self {
            CatalogStatement::Show { .. } => "Catalog",
            CatalogStatement::ShowCreate { .. } => "Create Catalog",
            _ => return None,
        };
        Some(listing_schema(column))
    }
}

/// A listing of one text column.
fn listing_schema(column: &str) -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new(column, DataType::Utf8, false)]))
}

/// What a catalog statement produced.
pub enum CatalogStatementResult {
    /// It attached or detached a catalog.
    Done,
    /// `SHOW CATALOGS`, `SHOW CREATE CATALOG`.
    Listing(LogicalPlan),
}

/// Recognizes a catalog statement; `None` for anything else.
pub fn parse_catalog_statement(tokens: &[Token]) -> Result<Option<CatalogStatement>, QueryError> {
    let mut parser = Tokens::new(tokens);
    let replace = parser.words(&["CREATE", "OR", "REPLACE", "CATALOG"]);
    let statement = if replace || parser.words(&["CREATE", "CATALOG"]) {
        let if_not_exists = parser.keywords(&[Keyword::IF, Keyword::NOT, Keyword::EXISTS]);
        let name = parser.identifier("a catalog name")?;
        if !parser.keywords(&[Keyword::USING]) {
            return Err(create_syntax());
        }
        let connector = parser.identifier("a connector (iceberg)")?.to_lowercase();
        let mut properties = BTreeMap::new();
        if parser.keywords(&[Keyword::WITH]) {
            if !parser.consume(&Token::LParen) {
                return Err(create_syntax());
            }
            loop {
                let key = super::property_name(&parser.identifier("a property name")?);
                if !parser.consume(&Token::Eq) {
                    return Err(syntax(&format!("expected = after the property {key}")));
                }
                let value = parser
                    .string()
                    .ok_or_else(|| syntax(&format!("the property {key} needs a 'string' value")))?;
                if properties.insert(key.clone(), value).is_some() {
                    return Err(syntax(&format!("the property {key} is given twice")));
                }
                if !parser.consume(&Token::Comma) {
                    break;
                }
            }
            if !parser.consume(&Token::RParen) {
                return Err(create_syntax());
            }
        }
        CatalogStatement::Create {
            name,
            connector,
            properties,
            replace,
            if_not_exists,
        }
    } else if parser.words(&["DROP", "CATALOG"]) {
        let if_exists = parser.keywords(&[Keyword::IF, Keyword::EXISTS]);
        let name = parser.identifier("a catalog name")?;
        CatalogStatement::Drop { name, if_exists }
    } else if parser.words(&["SHOW", "CATALOGS"]) {
        let like = if parser.keywords(&[Keyword::LIKE]) {
            Some(
                parser
                    .string()
                    .ok_or_else(|| syntax("expected a 'pattern' after LIKE"))?,
            )
        } else {
            None
        };
        CatalogStatement::Show { like }
    } else if parser.words(&["SHOW", "CREATE", "CATALOG"]) {
        let name = parser.identifier("a catalog name")?;
        CatalogStatement::ShowCreate { name }
    } else {
        return Ok(None);
    };
    parser.end("a catalog statement")?;
    Ok(Some(statement))
}

fn create_syntax() -> QueryError {
    syntax(
        "write CREATE [OR REPLACE] CATALOG [IF NOT EXISTS] name USING iceberg \
         WITH (type = 'rest' | 'sql' | 'hadoop', property = 'value', ...)",
    )
}

/// Runs a catalog statement for `principal` (`None`: the coordinator itself); `catalogs` are
/// the ones the session sees (for `SHOW CATALOGS`).
pub async fn execute_catalog_statement(
    attached: &AttachedCatalogs,
    catalogs: &dyn CatalogProviderList,
    principal: Option<&Principal>,
    statement: CatalogStatement,
) -> Result<CatalogStatementResult, QueryError> {
    let is_admin = principal.is_none_or(|p| p.is_admin);
    match statement {
        CatalogStatement::Create {
            name,
            connector,
            properties,
            replace,
            if_not_exists,
        } => {
            require_admin(is_admin, "CREATE CATALOG")?;
            let record = AttachedCatalogRecord {
                name: name.clone(),
                connector,
                properties,
                created_by: principal.map_or_else(|| "osprey".to_string(), |p| p.user.clone()),
                created_at_ms: now_ms(),
            };
            attached.attach(record, replace, if_not_exists).await?;
            tracing::info!(catalog = %name, "catalog attached");
        }
        CatalogStatement::Drop { name, if_exists } => {
            require_admin(is_admin, "DROP CATALOG")?;
            attached.detach(&name, if_exists).await?;
            tracing::info!(catalog = %name, "catalog dropped");
        }
        CatalogStatement::Show { like } => {
            let mut names = catalogs.catalog_names();
            names.sort();
            names.dedup();
            let plan = listing_plan(
                "catalogs",
                listing_schema("Catalog"),
                vec![Arc::new(StringArray::from_iter_values(names))],
            )?;
            let plan = match like {
                Some(pattern) => LogicalPlanBuilder::from(plan)
                    .filter(col("Catalog").like(lit(pattern)))?
                    .build()?,
                None => plan,
            };
            return Ok(CatalogStatementResult::Listing(plan));
        }
        CatalogStatement::ShowCreate { name } => {
            let Some(catalog) = attached.list().into_iter().find(|c| c.name == name) else {
                let built_in = catalogs.catalog(&name).is_some();
                return Err(QueryError::NotFound(match built_in {
                    true => format!("catalog {name} is built in: it has no CREATE CATALOG"),
                    false => format!("catalog {name} does not exist: SHOW CATALOGS lists them"),
                }));
            };
            let text = show_create(&catalog);
            return Ok(CatalogStatementResult::Listing(listing_plan(
                "create_catalog",
                listing_schema("Create Catalog"),
                vec![Arc::new(StringArray::from_iter_values([text]))],
            )?));
        }
    }
    Ok(CatalogStatementResult::Done)
}

/// The statement that attaches `catalog` again, secrets masked.
fn show_create(catalog: &super::AttachedCatalog) -> String {
    let quote = |text: &str| format!("'{}'", text.replace('\'', "''"));
    // The type first: it says what the other properties mean.
    let mut ordered: Vec<(&String, &String)> = catalog.properties.iter().collect();
    ordered.sort_by_key(|(name, _)| (name.as_str() != "type", name.as_str()));
    let properties: Vec<String> = ordered
        .into_iter()
        .map(|(name, value)| {
            let name = match name.contains('-') {
                true => quote(name),
                false => name.clone(),
            };
            format!("   {name} = {}", quote(value))
        })
        .collect();
    format!(
        "CREATE CATALOG {} USING {}\nWITH (\n{}\n)",
        crate::lakehouse::tables::quote_ident(&catalog.name),
        catalog.connector,
        properties.join(",\n")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(sql: &str) -> Result<Option<CatalogStatement>, QueryError> {
        parse_catalog_statement(&crate::parser::tokens_of(sql))
    }

    #[test]
    fn statements_parse() {
        assert_eq!(
            parse(
                "create or replace catalog if not exists Lake using ICEBERG \
                 with (type = 'rest', 'oauth2-server-uri' = 'http://idp', OAuth2_Scope = 's');"
            )
            .unwrap()
            .unwrap(),
            CatalogStatement::Create {
                name: "lake".into(),
                connector: "iceberg".into(),
                properties: BTreeMap::from([
                    ("type".to_string(), "rest".to_string()),
                    ("oauth2-server-uri".to_string(), "http://idp".to_string()),
                    ("oauth2-scope".to_string(), "s".to_string()),
                ]),
                replace: true,
                if_not_exists: true,
            }
        );
        assert_eq!(
            parse("DROP CATALOG IF EXISTS lake").unwrap(),
            Some(CatalogStatement::Drop {
                name: "lake".into(),
                if_exists: true
            })
        );
        assert_eq!(
            parse("SHOW CATALOGS LIKE 'l%'").unwrap(),
            Some(CatalogStatement::Show {
                like: Some("l%".into())
            })
        );
        assert_eq!(
            parse("show create catalog lake").unwrap(),
            Some(CatalogStatement::ShowCreate {
                name: "lake".into()
            })
        );
        assert!(parse("SELECT 1").unwrap().is_none());
        for bad in [
            "CREATE CATALOG lake",
            "CREATE CATALOG lake USING iceberg WITH (type 'rest')",
            "CREATE CATALOG lake USING iceberg WITH (type = rest)",
            "CREATE CATALOG lake USING iceberg WITH (type = 'a', type = 'b')",
            "CREATE CATALOG lake USING iceberg WITH (type = 'a'",
            "DROP CATALOG lake extra",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn show_create_masks_and_quotes() {
        let catalog = super::super::AttachedCatalog {
            name: "lake".into(),
            connector: "iceberg".into(),
            properties: BTreeMap::from([
                ("type".to_string(), "rest".to_string()),
                (
                    "oauth2-server-uri".to_string(),
                    "http://idp/it's".to_string(),
                ),
            ]),
            managed_by: osprey_catalog::ManagedBy::Sql,
        };
        assert_eq!(
            show_create(&catalog),
            "CREATE CATALOG lake USING iceberg\nWITH (\n   type = 'rest',\n   'oauth2-server-uri' = 'http://idp/it''s'\n)"
        );
    }
}
