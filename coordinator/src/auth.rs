//! Client authentication: username/password checks and the bearer tokens handed out for them.
//!
//! Users come from the configuration for now (the catalog will store them later). A successful
//! login returns a random 256-bit bearer token that expires after [`AuthConfig::token_ttl`];
//! every later request presents it.

use crate::expiring::ExpiringStore;
use base64::Engine as _;
use std::sync::Arc;
use std::time::Duration;
use subtle::ConstantTimeEq;

/// A user allowed to log in.
#[derive(Clone)]
pub struct UserCredential {
    /// The login name.
    pub name: String,
    /// The password. Held in memory only; never logged.
    pub password: String,
}

impl std::fmt::Debug for UserCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserCredential")
            .field("name", &self.name)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Authentication settings.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// Users who may log in.
    pub users: Vec<UserCredential>,
    /// How long a bearer token stays valid after login.
    pub token_ttl: Duration,
    /// The most tokens held at once; the oldest are dropped past it.
    pub max_tokens: usize,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            users: Vec::new(),
            token_ttl: Duration::from_secs(12 * 3600),
            max_tokens: 100_000,
        }
    }
}

/// Why a login or a token was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    /// Unknown user or wrong password (deliberately not told apart).
    #[error("invalid username or password")]
    BadCredentials,
    /// The request carried no credentials.
    #[error(
        "authentication required: log in with username and password (Flight SQL Handshake) \
         and send the returned `authorization: Bearer <token>` header"
    )]
    Missing,
    /// The bearer token is unknown or expired.
    #[error("invalid or expired bearer token: log in again")]
    BadToken,
    /// The authorization header is not `Basic` or `Bearer`.
    #[error("unsupported authorization header: use `Basic` (login) or `Bearer` (token)")]
    Malformed,
}

/// The identity a request was authenticated as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The user name.
    pub user: String,
    /// The client session the request belongs to: its bearer token, for clients that logged in
    /// (one login, one session). `None` for requests with Basic credentials on every call.
    pub session_id: Option<String>,
}

/// Checks passwords and issues and checks bearer tokens.
///
/// ```
/// use osprey_coordinator::auth::{AuthConfig, Authenticator, UserCredential};
///
/// let auth = Authenticator::new(AuthConfig {
///     users: vec![UserCredential { name: "ana".into(), password: "s3cret".into() }],
///     ..AuthConfig::default()
/// });
/// let token = auth.login("ana", "s3cret").unwrap();
/// assert_eq!(auth.check_token(&token).unwrap().user, "ana");
/// assert!(auth.login("ana", "wrong").is_err());
/// ```
#[derive(Clone)]
pub struct Authenticator {
    users: Arc<Vec<UserCredential>>,
    tokens: ExpiringStore<Principal>,
}

impl Authenticator {
    /// An authenticator for the configured users.
    pub fn new(config: AuthConfig) -> Self {
        Self {
            users: Arc::new(config.users),
            tokens: ExpiringStore::new(config.token_ttl, config.max_tokens),
        }
    }

    /// Checks a username and password and returns a fresh bearer token.
    pub fn login(&self, user: &str, password: &str) -> Result<String, AuthError> {
        let principal = self.check_password(user, password)?;
        Ok(self.tokens.insert(principal))
    }

    /// Checks a username and password without issuing a token.
    pub fn check_password(&self, user: &str, password: &str) -> Result<Principal, AuthError> {
        // Compare against every user so the time taken does not reveal which names exist.
        let mut matched = None;
        for candidate in self.users.iter() {
            let name_ok = candidate.name.as_bytes().ct_eq(user.as_bytes());
            let password_ok = candidate.password.as_bytes().ct_eq(password.as_bytes());
            if bool::from(name_ok & password_ok) {
                matched = Some(candidate.name.clone());
            }
        }
        matched
            .map(|user| Principal {
                user,
                session_id: None,
            })
            .ok_or(AuthError::BadCredentials)
    }

    /// Checks a bearer token.
    pub fn check_token(&self, token: &str) -> Result<Principal, AuthError> {
        let mut principal = self.tokens.get(token).ok_or(AuthError::BadToken)?;
        principal.session_id = Some(token.to_string());
        Ok(principal)
    }

    /// Authenticates an `authorization` header value: `Bearer <token>`, or `Basic <base64>` for
    /// clients that send their password on every call.
    pub fn check_authorization(&self, header: Option<&str>) -> Result<Principal, AuthError> {
        let header = header.ok_or(AuthError::Missing)?;
        if let Some(token) = strip_prefix_ignore_case(header, "bearer ") {
            return self.check_token(token.trim());
        }
        let (user, password) = basic_credentials(header)?;
        self.check_password(&user, &password)
    }
}

/// The user and password of a `Basic <base64>` authorization header.
pub fn basic_credentials(header: &str) -> Result<(String, String), AuthError> {
    let encoded = strip_prefix_ignore_case(header, "basic ").ok_or(AuthError::Malformed)?;
    decode_basic(encoded.trim())
}

/// Decodes the payload of a `Basic` authorization header into user and password.
///
/// Padding is optional: the Go Flight client (used by the ADBC driver) sends it unpadded.
fn decode_basic(encoded: &str) -> Result<(String, String), AuthError> {
    const LENIENT: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    let decoded = LENIENT.decode(encoded).map_err(|_| AuthError::Malformed)?;
    let text = String::from_utf8(decoded).map_err(|_| AuthError::Malformed)?;
    let (user, password) = text.split_once(':').ok_or(AuthError::Malformed)?;
    Ok((user.to_string(), password.to_string()))
}

fn strip_prefix_ignore_case<'a>(value: &'a str, prefix: &str) -> Option<&'a str> {
    let head = value.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &value[prefix.len()..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn authenticator(ttl: Duration) -> Authenticator {
        Authenticator::new(AuthConfig {
            users: vec![UserCredential {
                name: "admin".into(),
                password: "pw".into(),
            }],
            token_ttl: ttl,
            max_tokens: 2,
        })
    }

    #[test]
    fn expired_tokens_are_refused() {
        let auth = authenticator(Duration::ZERO);
        let token = auth.login("admin", "pw").unwrap();
        assert_eq!(auth.check_token(&token), Err(AuthError::BadToken));
    }

    #[test]
    fn basic_and_bearer_headers() {
        let auth = authenticator(Duration::from_secs(60));
        let basic = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("admin:pw")
        );
        assert_eq!(
            auth.check_authorization(Some(&basic)).unwrap().user,
            "admin"
        );
        let unpadded = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD_NO_PAD.encode("admin:pw")
        );
        assert_eq!(
            auth.check_authorization(Some(&unpadded)).unwrap().user,
            "admin"
        );
        let token = auth.login("admin", "pw").unwrap();
        let bearer = format!("bearer {token}");
        assert_eq!(
            auth.check_authorization(Some(&bearer)).unwrap().user,
            "admin"
        );
        assert_eq!(auth.check_authorization(None), Err(AuthError::Missing));
        assert_eq!(
            auth.check_authorization(Some("Digest x")),
            Err(AuthError::Malformed)
        );
    }
}
