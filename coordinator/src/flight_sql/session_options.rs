//! Flight's session actions: `SetSessionOptions`, `GetSessionOptions` and `CloseSession`
//! (the JDBC driver sends `catalog` and `schema` this way, from its connection URL).
//!
//! arrow-flight 59 does not ship these messages, so they are declared here with prost,
//! field for field as in Flight.proto.

use osprey_service::{QueryEngine, QueryError, SessionSettings, is_known_option};
use std::collections::HashMap;

/// A session option's value (Flight.proto `SessionOptionValue`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct SessionOptionValue {
    /// The value.
    #[prost(oneof = "OptionValue", tags = "1, 2, 3, 4, 5")]
    pub option_value: Option<OptionValue>,
}

/// The kinds of value a session option holds.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum OptionValue {
    /// A string.
    #[prost(string, tag = "1")]
    StringValue(String),
    /// A boolean.
    #[prost(bool, tag = "2")]
    BoolValue(bool),
    /// A 64-bit integer.
    #[prost(sfixed64, tag = "3")]
    Int64Value(i64),
    /// A double.
    #[prost(double, tag = "4")]
    DoubleValue(f64),
    /// A list of strings.
    #[prost(message, tag = "5")]
    StringListValue(StringListValue),
}

/// A list of strings (Flight.proto `SessionOptionValue.StringListValue`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct StringListValue {
    /// The strings.
    #[prost(string, repeated, tag = "1")]
    pub values: Vec<String>,
}

/// `SetSessionOptions` request.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SetSessionOptionsRequest {
    /// Options to set, by name.
    #[prost(map = "string, message", tag = "1")]
    pub session_options: HashMap<String, SessionOptionValue>,
}

/// `SetSessionOptions` result: the options that could not be set.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SetSessionOptionsResult {
    /// Errors, by option name.
    #[prost(map = "string, message", tag = "1")]
    pub errors: HashMap<String, SetSessionOptionError>,
}

/// Why one option was not set.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SetSessionOptionError {
    /// 1: invalid name, 2: invalid value, 3: other error.
    #[prost(int32, tag = "1")]
    pub value: i32,
}

/// `SetSessionOptionsResult.ErrorValue.INVALID_NAME`.
pub const INVALID_NAME: i32 = 1;
/// `SetSessionOptionsResult.ErrorValue.INVALID_VALUE`.
pub const INVALID_VALUE: i32 = 2;

/// `GetSessionOptions` result.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GetSessionOptionsResult {
    /// The session's options, by name.
    #[prost(map = "string, message", tag = "1")]
    pub session_options: HashMap<String, SessionOptionValue>,
}

/// `CloseSession` result.
#[derive(Clone, PartialEq, prost::Message)]
pub struct CloseSessionResult {
    /// 1: closed.
    #[prost(int32, tag = "1")]
    pub status: i32,
}

/// `CloseSessionResult.Status.CLOSED`.
pub const CLOSED: i32 = 1;

fn text(value: &SessionOptionValue) -> Option<String> {
    match value.option_value.as_ref()? {
        OptionValue::StringValue(s) => Some(s.clone()),
        OptionValue::BoolValue(b) => Some(b.to_string()),
        OptionValue::Int64Value(i) => Some(i.to_string()),
        OptionValue::DoubleValue(d) => Some(d.to_string()),
        OptionValue::StringListValue(_) => None,
    }
}

fn string_value(value: String) -> SessionOptionValue {
    SessionOptionValue {
        option_value: Some(OptionValue::StringValue(value)),
    }
}

/// Applies a `SetSessionOptions` request to `session`: `catalog` and `schema` switch the
/// current schema (which must exist); any other name is a DataFusion setting, as with `SET`.
/// Each option that fails is reported and leaves the session as it was for that option.
pub fn set_options(
    engine: &QueryEngine,
    session: &mut SessionSettings,
    request: SetSessionOptionsRequest,
) -> SetSessionOptionsResult {
    let mut errors = HashMap::new();
    let mut options: Vec<_> = request.session_options.into_iter().collect();
    // The catalog first, so that a schema set in the same request lands in it.
    options.sort_by_key(|(name, _)| name != "catalog");
    let defaults = engine.session().state().config_options().clone();
    for (name, value) in options {
        let Some(value) = text(&value) else {
            errors.insert(
                name,
                SetSessionOptionError {
                    value: INVALID_VALUE,
                },
            );
            continue;
        };
        let result: Result<(), QueryError> = match name.as_str() {
            "catalog" => engine.switch_catalog(session, &value),
            "schema" => {
                let catalog = session.catalog.clone();
                engine.switch_schema(session, catalog.as_deref(), &value)
            }
            _ => session.set(&defaults, &name, &value),
        };
        if let Err(err) = result {
            let known =
                matches!(name.as_str(), "catalog" | "schema") || is_known_option(&defaults, &name);
            let kind = if known { INVALID_VALUE } else { INVALID_NAME };
            tracing::info!(option = %name, error = %err, "session option refused");
            errors.insert(name, SetSessionOptionError { value: kind });
        }
    }
    SetSessionOptionsResult { errors }
}

/// The session's options: the current catalog and schema, and every setting changed with `SET`.
pub fn get_options(engine: &QueryEngine, session: &SessionSettings) -> GetSessionOptionsResult {
    let (catalog, schema) = engine.current_schema(session);
    let mut session_options: HashMap<String, SessionOptionValue> = session
        .options
        .iter()
        .map(|(k, v)| (k.clone(), string_value(v.clone())))
        .collect();
    session_options.insert("catalog".to_string(), string_value(catalog));
    session_options.insert("schema".to_string(), string_value(schema));
    GetSessionOptionsResult { session_options }
}
