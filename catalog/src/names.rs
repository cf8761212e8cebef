//! What a stored name may be. Schema and table names become path segments under the warehouse
//! (`<warehouse>/<schema>/<table>-<id>/`), so a name is checked before anything is stored or
//! written: a name such as `../..` or `a/b` would otherwise reach outside the warehouse.

use crate::CatalogError;

/// The longest name, in bytes (PostgreSQL allows 63, object stores 1,024 per key).
pub const MAX_NAME_BYTES: usize = 255;

/// Checks that `name`, the name of a `kind` ("schema", "table", "view"), is safe to store and
/// to use as one path segment: not empty, at most [`MAX_NAME_BYTES`], not `.` or `..`, and
/// without `/`, `\` or control characters.
///
/// ```
/// use osprey_catalog::check_name;
///
/// assert!(check_name("schema", "sales_2024").is_ok());
/// assert!(check_name("table", "Line Items").is_ok());
/// assert!(check_name("schema", "../../etc").is_err());
/// assert!(check_name("table", "..").is_err());
/// assert!(check_name("table", "a\nb").is_err());
/// ```
pub fn check_name(kind: &'static str, name: &str) -> Result<(), CatalogError> {
    let reason = if name.is_empty() {
        Some("it is empty")
    } else if name.len() > MAX_NAME_BYTES {
        Some("it is longer than 255 bytes")
    } else if name == "." || name == ".." {
        Some("`.` and `..` are reserved")
    } else if name.contains(['/', '\\']) {
        Some("it contains `/` or `\\`")
    } else if name.chars().any(char::is_control) {
        Some("it contains a control character")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(CatalogError::InvalidName {
            kind,
            name: name.escape_debug().to_string(),
            reason,
        }),
        None => Ok(()),
    }
}
