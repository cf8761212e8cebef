//! Governance's SQL, as Trino and the SQL standard spell it:
//!
//! ```sql
//! CREATE ROLE analysts;            DROP ROLE [IF EXISTS] analysts;
//! GRANT analysts TO USER ana;      GRANT readers TO ROLE analysts;   -- nested roles
//! REVOKE analysts FROM USER ana;
//! GRANT SELECT, INSERT ON TABLE sales.orders TO ROLE analysts [WITH GRANT OPTION];
//! GRANT SELECT (id, region) ON sales.orders TO USER ben;           -- columns
//! GRANT ALL PRIVILEGES ON SCHEMA sales TO USER ana;
//! GRANT CREATE ON CATALOG osprey TO ROLE engineers;
//! GRANT USAGE ON LOCATION raw TO ROLE loaders;                     -- or ON LOCATION 's3://..'
//! GRANT SELECT ON TAGGED domain = 'sales' AND pii = 'false' TO ROLE analysts;   -- tags

//! REVOKE [GRANT OPTION FOR] SELECT ON sales.orders FROM ROLE analysts;
//! SHOW GRANTS [ON [TABLE | SCHEMA | CATALOG] name | FOR name];
//! SHOW ROLES;   SHOW CURRENT ROLES;
//! SET ROLE analysts | ALL | NONE;
//! ```
//!
//! The object kind defaults to `TABLE`, the grantee kind to `USER`; `public` is the role every
//! user holds. Only admins create, drop and grant roles. Privileges are granted by an admin,
//! the object's owner, or a holder of the privilege `WITH GRANT OPTION`.

pub use super::filter_statements::DataFilterStatement;
use super::model::Privilege;
pub use super::object_names::NamedObject;
use super::object_names::{object, object_text};
pub use super::tag_statements::TagStatement;
use crate::admin_sql::{Tokens, syntax};
use crate::error::QueryError;
use crate::policy::RoleSelection;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::Token;
use osprey_catalog::Grantee;

/// What a grant or revoke of privileges names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrivilegeChange {
    /// The privileges (`ALL PRIVILEGES` expanded).
    pub privileges: Vec<Privilege>,
    /// For `SELECT (a, b)`: the columns.
    pub columns: Vec<String>,
    /// The object.
    pub object: NamedObject,
    /// Who.
    pub grantees: Vec<Grantee>,
    /// `WITH GRANT OPTION` (grant) or `GRANT OPTION FOR` (revoke).
    pub grant_option: bool,
}

/// A parsed governance statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GovernanceStatement {
    /// `CREATE ROLE name`.
    CreateRole(String),
    /// `DROP ROLE [IF EXISTS] name`.
    DropRole {
        /// The role.
        name: String,
        /// `IF EXISTS`.
        if_exists: bool,
    },
    /// `GRANT role, ... TO grantee, ...`.
    GrantRoles(Vec<String>, Vec<Grantee>),
    /// `REVOKE role, ... FROM grantee, ...`.
    RevokeRoles(Vec<String>, Vec<Grantee>),
    /// `GRANT privileges ON object TO grantee, ...`.
    Grant(PrivilegeChange),
    /// `REVOKE privileges ON object FROM grantee, ...`.
    Revoke(PrivilegeChange),
    /// `SHOW GRANTS [ON object | FOR name]`.
    ShowGrants {
        /// `ON object`.
        on: Option<NamedObject>,
        /// `FOR name`: a user or role.
        holder: Option<String>,
    },
    /// `SHOW ROLES`.
    ShowRoles,
    /// `SHOW CURRENT ROLES`.
    ShowCurrentRoles,
    /// `SET ROLE r | ALL | NONE`.
    SetRole(RoleSelection),
    /// `CREATE | DROP ROW FILTER | COLUMN MASK`, `SHOW ROW FILTERS | COLUMN MASKS`.
    DataFilter(DataFilterStatement),
    /// `CREATE | ALTER | DROP TAG`, `SHOW TAGS`, `ALTER ... SET | UNSET TAG`.
    Tag(TagStatement),
}

impl GovernanceStatement {
    /// The columns of its listing, for a `SHOW`; `None` for the others.
    pub fn listing_schema(&self) -> Option<datafusion::arrow::datatypes::SchemaRef> {
        match self {
            GovernanceStatement::ShowGrants { .. } => Some(super::show::grants_schema()),
            GovernanceStatement::ShowRoles => Some(super::show::roles_schema()),
            GovernanceStatement::ShowCurrentRoles => Some(super::show::current_roles_schema()),
            GovernanceStatement::DataFilter(DataFilterStatement::Show { .. }) => {
                Some(super::show::filters_schema())
            }
            GovernanceStatement::Tag(TagStatement::Show(None)) => {
                Some(super::show::tag_definitions_schema())
            }
            GovernanceStatement::Tag(TagStatement::Show(Some(_))) => {
                Some(super::show::tag_assignments_schema())
            }
            _ => None,
        }
    }

    /// Its statement tag.
    pub fn kind(&self) -> &'static str {
        match self {
            GovernanceStatement::CreateRole(_) => "CREATE ROLE",
            GovernanceStatement::DropRole { .. } => "DROP ROLE",
            GovernanceStatement::GrantRoles(..) => "GRANT ROLE",
            GovernanceStatement::RevokeRoles(..) => "REVOKE ROLE",
            GovernanceStatement::Grant(_) => "GRANT",
            GovernanceStatement::Revoke(_) => "REVOKE",
            GovernanceStatement::ShowGrants { .. } => "SHOW GRANTS",
            GovernanceStatement::ShowRoles => "SHOW ROLES",
            GovernanceStatement::ShowCurrentRoles => "SHOW CURRENT ROLES",
            GovernanceStatement::SetRole(_) => "SET ROLE",
            GovernanceStatement::DataFilter(statement) => statement.tag(),
            GovernanceStatement::Tag(statement) => statement.tag(),
        }
    }
}

/// What `statement` is about, in a few words, for the audit trail: `SELECT (id) ON TABLE
/// sales.orders TO role analysts`.
pub fn summary(statement: &GovernanceStatement) -> String {
    let grantees = |grantees: &[Grantee]| -> String {
        let names: Vec<String> = grantees.iter().map(super::show::grantee_text).collect();
        names.join(", ")
    };
    let privileges = |change: &PrivilegeChange| -> String {
        let names: Vec<&str> = change.privileges.iter().map(|p| p.name()).collect();
        match change.columns.is_empty() {
            true => names.join(", "),
            false => format!("{} ({})", names.join(", "), change.columns.join(", ")),
        }
    };
    match statement {
        GovernanceStatement::CreateRole(role) => format!("role {role}"),
        GovernanceStatement::DropRole { name, .. } => format!("role {name}"),
        GovernanceStatement::GrantRoles(roles, to) => {
            format!("role {} TO {}", roles.join(", "), grantees(to))
        }
        GovernanceStatement::RevokeRoles(roles, from) => {
            format!("role {} FROM {}", roles.join(", "), grantees(from))
        }
        GovernanceStatement::Grant(change) => format!(
            "{} ON {} TO {}",
            privileges(change),
            object_text(&change.object),
            grantees(&change.grantees)
        ),
        GovernanceStatement::Revoke(change) => format!(
            "{} ON {} FROM {}",
            privileges(change),
            object_text(&change.object),
            grantees(&change.grantees)
        ),
        GovernanceStatement::SetRole(_)
        | GovernanceStatement::ShowGrants { .. }
        | GovernanceStatement::ShowRoles
        | GovernanceStatement::ShowCurrentRoles => statement.kind().to_string(),
        GovernanceStatement::DataFilter(DataFilterStatement::Create(definition)) => format!(
            "{} {} ON TABLE {}",
            definition.kind.name(),
            definition.name,
            definition.table.join(".")
        ),
        GovernanceStatement::DataFilter(DataFilterStatement::Drop {
            kind, name, table, ..
        }) => format!("{} {name} ON TABLE {}", kind.name(), table.join(".")),
        GovernanceStatement::DataFilter(DataFilterStatement::Show { .. }) => {
            statement.kind().to_string()
        }
        GovernanceStatement::Tag(tag) => match tag {
            TagStatement::Create { key, .. }
            | TagStatement::AddValues { key, .. }
            | TagStatement::Drop { key, .. } => format!("tag {key}"),
            TagStatement::Show(_) => statement.kind().to_string(),
            TagStatement::Assign {
                object,
                column,
                tags,
            } => {
                let keys: Vec<&str> = tags.iter().map(|(k, _)| k.as_str()).collect();
                let column = column
                    .as_ref()
                    .map(|c| format!(" COLUMN {c}"))
                    .unwrap_or_default();
                format!("tag {} ON {}{column}", keys.join(", "), object_text(object))
            }
        },
    }
}

/// Recognizes a governance statement; `None` for anything else.
pub fn parse_governance_statement(
    tokens: &[Token],
) -> Result<Option<GovernanceStatement>, QueryError> {
    if let Some(statement) = super::filter_statements::parse(tokens)? {
        return Ok(Some(GovernanceStatement::DataFilter(statement)));
    }
    if let Some(statement) = super::tag_statements::parse(tokens)? {
        return Ok(Some(GovernanceStatement::Tag(statement)));
    }
    let mut parser = Tokens::new(tokens);
    let statement = if parser.words(&["CREATE", "ROLE"]) {
        GovernanceStatement::CreateRole(parser.identifier("a role name")?)
    } else if parser.words(&["DROP", "ROLE"]) {
        let if_exists = parser.keywords(&[Keyword::IF, Keyword::EXISTS]);
        GovernanceStatement::DropRole {
            name: parser.identifier("a role name")?,
            if_exists,
        }
    } else if parser.word("GRANT") {
        grant(&mut parser)?
    } else if parser.word("REVOKE") {
        revoke(&mut parser)?
    } else if parser.words(&["SHOW", "GRANTS"]) {
        if parser.word("ON") {
            GovernanceStatement::ShowGrants {
                on: Some(object(&mut parser)?),
                holder: None,
            }
        } else if parser.word("FOR") {
            GovernanceStatement::ShowGrants {
                on: None,
                holder: Some(parser.identifier("a user or role name")?),
            }
        } else {
            GovernanceStatement::ShowGrants {
                on: None,
                holder: None,
            }
        }
    } else if parser.words(&["SHOW", "ROLES"]) {
        GovernanceStatement::ShowRoles
    } else if parser.words(&["SHOW", "CURRENT", "ROLES"]) {
        GovernanceStatement::ShowCurrentRoles
    } else if parser.words(&["SET", "ROLE"]) {
        GovernanceStatement::SetRole(if parser.word("ALL") {
            RoleSelection::All
        } else if parser.word("NONE") {
            RoleSelection::None
        } else {
            RoleSelection::One(parser.identifier("a role name, ALL or NONE")?)
        })
    } else {
        return Ok(None);
    };
    parser.end("a governance statement")?;
    Ok(Some(statement))
}

fn grant(parser: &mut Tokens<'_>) -> Result<GovernanceStatement, QueryError> {
    if let Some((privileges, columns)) = privileges(parser)? {
        if !parser.word("ON") {
            return Err(grant_syntax());
        }
        let object = object(parser)?;
        if !parser.word("TO") {
            return Err(grant_syntax());
        }
        let grantees = grantees(parser)?;
        let grant_option = parser.words(&["WITH", "GRANT", "OPTION"]);
        return Ok(GovernanceStatement::Grant(PrivilegeChange {
            privileges,
            columns,
            object,
            grantees,
            grant_option,
        }));
    }
    let roles = names(parser, "a role name")?;
    if !parser.word("TO") {
        return Err(grant_syntax());
    }
    Ok(GovernanceStatement::GrantRoles(roles, grantees(parser)?))
}

fn revoke(parser: &mut Tokens<'_>) -> Result<GovernanceStatement, QueryError> {
    let grant_option = parser.words(&["GRANT", "OPTION", "FOR"]);
    if let Some((privileges, columns)) = privileges(parser)? {
        if !parser.word("ON") {
            return Err(revoke_syntax());
        }
        let object = object(parser)?;
        if !parser.word("FROM") {
            return Err(revoke_syntax());
        }
        return Ok(GovernanceStatement::Revoke(PrivilegeChange {
            privileges,
            columns,
            object,
            grantees: grantees(parser)?,
            grant_option,
        }));
    }
    if grant_option {
        return Err(revoke_syntax());
    }
    let roles = names(parser, "a role name")?;
    if !parser.word("FROM") {
        return Err(revoke_syntax());
    }
    Ok(GovernanceStatement::RevokeRoles(roles, grantees(parser)?))
}

/// Privileges, and the columns of a `SELECT (a, b)` among them.
type PrivilegeList = (Vec<Privilege>, Vec<String>);

/// The privilege list at the cursor (with `SELECT`'s columns), or `None` if the statement
/// grants roles instead.
fn privileges(parser: &mut Tokens<'_>) -> Result<Option<PrivilegeList>, QueryError> {
    if parser.words(&["ALL", "PRIVILEGES"]) || parser.word("ALL") {
        return Ok(Some((Privilege::ALL.to_vec(), Vec::new())));
    }
    let starts = |parser: &Tokens<'_>| match parser.peek() {
        Some(Token::Word(word)) if word.quote_style.is_none() => Privilege::parse(&word.value),
        _ => None,
    };
    if starts(parser).is_none() {
        return Ok(None);
    }
    let mut privileges = Vec::new();
    let mut columns = Vec::new();
    loop {
        let Some(privilege) = starts(parser) else {
            return Err(grant_syntax());
        };
        parser.identifier("a privilege")?;
        if parser.consume(&Token::LParen) {
            if privilege != Privilege::Select {
                return Err(syntax(
                    "columns can be granted for SELECT only: GRANT SELECT (a, b) ON t TO ...",
                ));
            }
            columns = names(parser, "a column name")?;
            if !parser.consume(&Token::RParen) {
                return Err(grant_syntax());
            }
        }
        privileges.push(privilege);
        if !parser.consume(&Token::Comma) {
            break;
        }
    }
    Ok(Some((privileges, columns)))
}

fn grantees(parser: &mut Tokens<'_>) -> Result<Vec<Grantee>, QueryError> {
    let mut grantees = Vec::new();
    loop {
        let grantee = if parser.word("ROLE") {
            Grantee::Role(parser.identifier("a role name")?)
        } else {
            parser.word("USER");
            let name = parser.identifier("a user name")?;
            // `TO public` names the role every user holds.
            match name == super::model::PUBLIC_ROLE {
                true => Grantee::Role(name),
                false => Grantee::User(name),
            }
        };
        grantees.push(grantee);
        if !parser.consume(&Token::Comma) {
            return Ok(grantees);
        }
    }
}

fn names(parser: &mut Tokens<'_>, what: &str) -> Result<Vec<String>, QueryError> {
    let mut names = vec![parser.identifier(what)?];
    while parser.consume(&Token::Comma) {
        names.push(parser.identifier(what)?);
    }
    Ok(names)
}

fn grant_syntax() -> QueryError {
    syntax(
        "write GRANT privilege [, ...] | ALL PRIVILEGES ON [TABLE | SCHEMA | CATALOG] name | \
         TAGGED tag = 'value' [AND ...] TO [USER | ROLE] name [WITH GRANT OPTION], or GRANT \
         role TO [USER | ROLE] name",
    )
}

fn revoke_syntax() -> QueryError {
    syntax(
        "write REVOKE [GRANT OPTION FOR] privilege [, ...] ON [TABLE | SCHEMA | CATALOG] name \
         | TAGGED tag = 'value' [AND ...] FROM [USER | ROLE] name, or REVOKE role FROM \
         [USER | ROLE] name",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::sqlparser::dialect::GenericDialect;
    use datafusion::sql::sqlparser::tokenizer::Tokenizer;

    fn parse(sql: &str) -> Result<Option<GovernanceStatement>, QueryError> {
        let tokens: Vec<Token> = Tokenizer::new(&GenericDialect {}, sql)
            .tokenize()
            .unwrap()
            .into_iter()
            .filter(|t| !matches!(t, Token::Whitespace(_)))
            .collect();
        parse_governance_statement(&tokens)
    }

    #[test]
    fn grants_parse_as_trino_spells_them() {
        let Some(GovernanceStatement::Grant(change)) =
            parse("GRANT SELECT (id, region), INSERT ON sales.orders TO ROLE analysts, ben WITH GRANT OPTION").unwrap()
        else {
            panic!("not a grant");
        };
        assert_eq!(
            change.privileges,
            vec![Privilege::Select, Privilege::Insert]
        );
        assert_eq!(change.columns, vec!["id", "region"]);
        assert_eq!(
            change.object,
            NamedObject::Table(vec!["sales".into(), "orders".into()])
        );
        assert_eq!(
            change.grantees,
            vec![
                Grantee::Role("analysts".into()),
                Grantee::User("ben".into())
            ]
        );
        assert!(change.grant_option);
        assert_eq!(
            parse("GRANT analysts TO USER ana").unwrap(),
            Some(GovernanceStatement::GrantRoles(
                vec!["analysts".into()],
                vec![Grantee::User("ana".into())]
            ))
        );
        assert!(matches!(
            parse("REVOKE GRANT OPTION FOR ALL PRIVILEGES ON SCHEMA tpch FROM public").unwrap(),
            Some(GovernanceStatement::Revoke(PrivilegeChange {
                grant_option: true,
                ..
            }))
        ));
        assert!(parse("GRANT INSERT (a) ON t TO ana").is_err());
        assert_eq!(parse("SELECT 1").unwrap(), None);
        assert_eq!(
            parse("SET ROLE NONE").unwrap(),
            Some(GovernanceStatement::SetRole(RoleSelection::None))
        );
    }
}
