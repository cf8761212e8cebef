//! SQL for external locations (see [`crate::locations`]):
//!
//! ```sql
//! CREATE [OR REPLACE] LOCATION [IF NOT EXISTS] raw URL 's3://lake/raw/'
//!     [READ ONLY] [FOR ALL USERS | FOR USERS ana, ben];
//! DROP LOCATION [IF EXISTS] raw;
//! SHOW LOCATIONS;
//! ```
//!
//! Creating and dropping need an admin. A location created without `FOR ...` is granted to
//! nobody yet (admins reach every location anyway). `SHOW LOCATIONS` lists every location to
//! admins and the ones granted to them to other users.

use crate::admin_sql::{Tokens, listing_plan, syntax};
use crate::auth::Principal;
use crate::error::QueryError;
use crate::locations::{Locations, granted_to};
use crate::users::require_admin;
use datafusion::arrow::array::{BooleanArray, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::logical_expr::LogicalPlan;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::Token;
use osprey_catalog::{LocationRecord, ManagedBy, now_ms};
use std::sync::Arc;

/// A parsed location statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocationStatement {
    /// `CREATE [OR REPLACE] LOCATION [IF NOT EXISTS] name URL '...' [READ ONLY] [FOR ...]`.
    Create {
        /// The location's name.
        name: String,
        /// Its URL prefix, as written.
        url: String,
        /// Who it is granted to (`"*"`: every user).
        users: Vec<String>,
        /// External tables only.
        read_only: bool,
        /// `OR REPLACE`.
        replace: bool,
        /// `IF NOT EXISTS`.
        if_not_exists: bool,
    },
    /// `DROP LOCATION [IF EXISTS] name`.
    Drop {
        /// The location's name.
        name: String,
        /// `IF EXISTS`.
        if_exists: bool,
    },
    /// `SHOW LOCATIONS`.
    Show,
}

/// What a location statement produced.
pub enum LocationStatementResult {
    /// It changed the locations.
    Done,
    /// `SHOW LOCATIONS`.
    Listing(LogicalPlan),
}

/// Recognizes a location statement; `None` for anything else.
pub fn parse_location_statement(tokens: &[Token]) -> Result<Option<LocationStatement>, QueryError> {
    let mut parser = Tokens::new(tokens);
    let replace = parser.words(&["CREATE", "OR", "REPLACE", "LOCATION"]);
    let statement = if replace || parser.words(&["CREATE", "LOCATION"]) {
        let if_not_exists = parser.keywords(&[Keyword::IF, Keyword::NOT, Keyword::EXISTS]);
        let name = parser.identifier("a location name")?;
        if !parser.keywords(&[Keyword::URL]) {
            return Err(create_syntax());
        }
        let url = parser.string().ok_or_else(create_syntax)?;
        let read_only = parser.keywords(&[Keyword::READ, Keyword::ONLY]);
        let users = if parser.keywords(&[Keyword::FOR, Keyword::ALL]) {
            if !parser.word("USERS") {
                return Err(create_syntax());
            }
            vec!["*".to_string()]
        } else if parser.keywords(&[Keyword::FOR]) {
            if !parser.word("USERS") {
                return Err(create_syntax());
            }
            let mut users = vec![parser.identifier("a user name")?];
            while parser.consume(&Token::Comma) {
                users.push(parser.identifier("a user name")?);
            }
            users
        } else {
            Vec::new()
        };
        LocationStatement::Create {
            name,
            url,
            users,
            read_only,
            replace,
            if_not_exists,
        }
    } else if parser.words(&["DROP", "LOCATION"]) {
        let if_exists = parser.keywords(&[Keyword::IF, Keyword::EXISTS]);
        let name = parser.identifier("a location name")?;
        LocationStatement::Drop { name, if_exists }
    } else if parser.words(&["SHOW", "LOCATIONS"]) {
        LocationStatement::Show
    } else {
        return Ok(None);
    };
    parser.end("a location statement")?;
    Ok(Some(statement))
}

fn create_syntax() -> QueryError {
    syntax(
        "write CREATE [OR REPLACE] LOCATION [IF NOT EXISTS] name URL 'prefix' [READ ONLY] \
         [FOR ALL USERS | FOR USERS name, ...]",
    )
}

/// Runs a location statement for `principal` (`None`: the coordinator itself).
pub async fn execute_location_statement(
    locations: &Locations,
    principal: Option<&Principal>,
    statement: LocationStatement,
) -> Result<LocationStatementResult, QueryError> {
    let is_admin = principal.is_none_or(|p| p.is_admin);
    match statement {
        LocationStatement::Show => {
            let visible: Vec<LocationRecord> = locations
                .list()
                .into_iter()
                .filter(|location| {
                    is_admin || principal.is_some_and(|p| granted_to(location, &p.user))
                })
                .collect();
            return Ok(LocationStatementResult::Listing(listing(&visible)?));
        }
        LocationStatement::Create {
            name,
            url,
            users,
            read_only,
            replace,
            if_not_exists,
        } => {
            require_admin(is_admin, "CREATE LOCATION")?;
            if if_not_exists && locations.list().iter().any(|l| l.name == name) {
                return Ok(LocationStatementResult::Done);
            }
            let record = LocationRecord {
                name: name.clone(),
                url,
                users,
                read_only,
                managed_by: ManagedBy::Sql,
                created_at_ms: now_ms(),
            };
            locations.create(record, replace).await?;
            tracing::info!(location = %name, "location created");
        }
        LocationStatement::Drop { name, if_exists } => {
            require_admin(is_admin, "DROP LOCATION")?;
            locations.drop(&name, if_exists).await?;
            tracing::info!(location = %name, "location dropped");
        }
    }
    Ok(LocationStatementResult::Done)
}

/// The columns of `SHOW LOCATIONS`.
pub fn listing_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("location_name", DataType::Utf8, false),
        Field::new("url", DataType::Utf8, false),
        Field::new("users", DataType::Utf8, false),
        Field::new("read_only", DataType::Boolean, false),
        Field::new("managed_by", DataType::Utf8, false),
    ]))
}

fn listing(locations: &[LocationRecord]) -> Result<LogicalPlan, QueryError> {
    let users = |l: &LocationRecord| match l.users.as_slice() {
        [all] if all == "*" => "ALL USERS".to_string(),
        users => users.join(", "),
    };
    listing_plan(
        "locations",
        listing_schema(),
        vec![
            Arc::new(StringArray::from_iter_values(
                locations.iter().map(|l| l.name.as_str()),
            )),
            Arc::new(StringArray::from_iter_values(
                locations.iter().map(|l| l.url.as_str()),
            )),
            Arc::new(StringArray::from_iter_values(locations.iter().map(users))),
            Arc::new(BooleanArray::from_iter(
                locations.iter().map(|l| Some(l.read_only)),
            )),
            Arc::new(StringArray::from_iter_values(
                locations.iter().map(|l| l.managed_by.as_str()),
            )),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_parse() {
        assert_eq!(
            parse_location_statement(&crate::parser::tokens_of("create or replace location if not exists \"Raw\" url 'file:///srv/raw' for all users;"))
                .unwrap()
                .unwrap(),
            LocationStatement::Create {
                name: "Raw".into(),
                url: "file:///srv/raw".into(),
                users: vec!["*".into()],
                read_only: false,
                replace: true,
                if_not_exists: true,
            }
        );
        assert_eq!(
            parse_location_statement(&crate::parser::tokens_of("DROP LOCATION IF EXISTS raw"))
                .unwrap(),
            Some(LocationStatement::Drop {
                name: "raw".into(),
                if_exists: true
            })
        );
        assert_eq!(
            parse_location_statement(&crate::parser::tokens_of("SHOW LOCATIONS")).unwrap(),
            Some(LocationStatement::Show)
        );
        for bad in [
            "CREATE LOCATION raw",
            "CREATE LOCATION raw URL s3",
            "CREATE LOCATION raw URL 's3://b/' FOR ana",
            "DROP LOCATION raw extra",
        ] {
            assert!(
                parse_location_statement(&crate::parser::tokens_of(bad)).is_err(),
                "{bad}"
            );
        }
    }
}

#[cfg(test)]
mod recognizer_example {
    use super::*;

    #[test]
    fn recognizes_its_statements_and_nothing_else() {
        let parsed = parse_location_statement(&crate::parser::tokens_of(
            "CREATE LOCATION raw URL 's3://lake/raw/' READ ONLY FOR USERS ana, Ben",
        ))
        .unwrap()
        .unwrap();
        assert_eq!(
            parsed,
            LocationStatement::Create {
                name: "raw".into(),
                url: "s3://lake/raw/".into(),
                users: vec!["ana".into(), "ben".into()],
                read_only: true,
                replace: false,
                if_not_exists: false,
            }
        );
        assert!(
            parse_location_statement(&crate::parser::tokens_of("SELECT 1"))
                .unwrap()
                .is_none()
        );
    }
}
