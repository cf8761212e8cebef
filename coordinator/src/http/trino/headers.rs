//! The Trino protocol's HTTP headers: reading request headers, the base URI of answers, and
//! the session properties sent (`X-Trino-Session`) and changed (`X-Trino-Set-*`).

use crate::http::{ApiError, HttpState};
use axum::http::{HeaderMap, StatusCode};
use osprey_service::{RoleSelection, SessionSettings};

/// The headers that carry a statement's session changes back to the client.
pub(super) fn session_changes(
    before: &SessionSettings,
    after: &SessionSettings,
) -> Vec<(&'static str, String)> {
    let mut headers = Vec::new();
    if after.catalog != before.catalog
        && let Some(catalog) = &after.catalog
    {
        headers.push(("x-trino-set-catalog", catalog.clone()));
    }
    if after.schema != before.schema
        && let Some(schema) = &after.schema
    {
        headers.push(("x-trino-set-schema", schema.clone()));
    }
    for (key, value) in &after.options {
        if before.options.get(key) != Some(value) {
            let value =
                percent_encoding::utf8_percent_encode(value, percent_encoding::NON_ALPHANUMERIC);
            headers.push(("x-trino-set-session", format!("{key}={value}")));
        }
    }
    for key in before.options.keys() {
        if !after.options.contains_key(key) {
            headers.push(("x-trino-clear-session", key.clone()));
        }
    }
    if after.role != before.role {
        let role = match &after.role {
            RoleSelection::All => "ALL".to_string(),
            RoleSelection::None => "NONE".to_string(),
            RoleSelection::One(role) => format!("ROLE{{{role}}}"),
        };
        let role = percent_encoding::utf8_percent_encode(&role, percent_encoding::NON_ALPHANUMERIC);
        headers.push(("x-trino-set-role", format!("system={role}")));
    }
    headers
}

/// `X-Trino-Role: system=ROLE{r}` (or `ALL`, `NONE`; values percent-encoded): the roles the
/// client's session enabled with `SET ROLE`. Roles of other catalogs are Trino connectors'
/// and have no meaning here.
pub(super) fn role_selection(header: Option<&str>) -> Result<Option<RoleSelection>, ApiError> {
    let Some(header) = header else {
        return Ok(None);
    };
    for entry in header.split(',') {
        let Some((catalog, value)) = entry.trim().split_once('=') else {
            continue;
        };
        if catalog.trim() != "system" {
            continue;
        }
        let value = percent_encoding::percent_decode_str(value.trim())
            .decode_utf8()
            .map_err(|_| bad_role(entry))?;
        return Ok(Some(match value.as_ref() {
            "ALL" => RoleSelection::All,
            "NONE" => RoleSelection::None,
            other => match other
                .strip_prefix("ROLE{")
                .and_then(|r| r.strip_suffix('}'))
            {
                Some(role) => RoleSelection::One(role.to_string()),
                None => RoleSelection::One(other.to_string()),
            },
        }));
    }
    Ok(None)
}

fn bad_role(entry: &str) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "INVALID_ARGUMENT",
        format!("X-Trino-Role: {entry:?} is not system=ROLE{{name}}, ALL or NONE"),
    )
}

/// `X-Trino-Session: key=value,key=value` (values percent-encoded).
pub(super) fn session_properties(header: Option<&str>) -> Result<Vec<(String, String)>, ApiError> {
    let Some(header) = header else {
        return Ok(Vec::new());
    };
    header
        .split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            let (key, value) = entry.split_once('=').ok_or_else(|| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "INVALID_ARGUMENT",
                    format!("X-Trino-Session entry {entry:?} is not key=value"),
                )
            })?;
            let value = percent_encoding::percent_decode_str(value)
                .decode_utf8()
                .map_err(|_| {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "INVALID_ARGUMENT",
                        format!("X-Trino-Session value of {key} is not UTF-8"),
                    )
                })?;
            Ok((key.trim().to_string(), value.into_owned()))
        })
        .collect()
}

/// A request header as text (`None` when absent or empty).
pub(super) fn header<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, ApiError> {
    match headers.get(name) {
        None => Ok(None),
        Some(value) => value
            .to_str()
            .map(|text| Some(text.trim()).filter(|text| !text.is_empty()))
            .map_err(|_| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "INVALID_ARGUMENT",
                    format!("header {name} is not visible ASCII"),
                )
            }),
    }
}

/// `https://host:port` as the client reached the server, for the URIs in answers.
pub(super) fn base_uri(state: &HttpState, headers: &HeaderMap) -> Result<String, ApiError> {
    let host = header(headers, "host")?
        .filter(|host| {
            host.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-:[]_".contains(&b))
        })
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "INVALID_ARGUMENT",
                "the Host header is missing or malformed",
            )
        })?;
    let scheme = if state.tls { "https" } else { "http" };
    Ok(format!("{scheme}://{host}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_decoded() {
        assert_eq!(
            role_selection(Some("system=ROLE%7Banalysts%7D")).unwrap(),
            Some(RoleSelection::One("analysts".into()))
        );
        assert_eq!(
            role_selection(Some("hive=ALL, system=NONE")).unwrap(),
            Some(RoleSelection::None)
        );
        assert_eq!(role_selection(Some("hive=ALL")).unwrap(), None);
    }

    #[test]
    fn session_properties_are_decoded() {
        let parsed =
            session_properties(Some("datafusion.execution.time_zone=%2B01%3A00, a=b")).unwrap();
        assert_eq!(
            parsed,
            vec![
                (
                    "datafusion.execution.time_zone".to_string(),
                    "+01:00".to_string()
                ),
                ("a".to_string(), "b".to_string())
            ]
        );
        assert!(session_properties(Some("novalue")).is_err());
    }
}
