//! Client authentication: users stored in the catalog with Argon2id password hashes, and the
//! bearer tokens handed out when they log in.
//!
//! Users come from two places. The configuration (`[[users]]`, `OSPREY_ADMIN_PASSWORD`) defines
//! *configured* users: at every start [`Authenticator::open`] writes them into the catalog
//! (creating them, or updating a changed password or admin flag) and removes configured users
//! that are no longer configured. SQL (`CREATE USER`, see [`crate::users`]) manages the rest.
//!
//! A successful login returns a random 256-bit bearer token that expires after
//! [`AuthConfig::token_ttl`]. Tokens live in the coordinator's memory only: a restart logs
//! everyone out. Changing a user's password or admin flag, or dropping the user, revokes the
//! user's tokens; `ALTER USER name REVOKE TOKENS` revokes them on demand.

use crate::expiring::ExpiringStore;
use crate::login_checks::MAX_CONCURRENT_PASSWORD_CHECKS;
use crate::login_checks::{NoTurn, PasswordChecks};
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, SaltString};
use base64::Engine as _;
use osprey_catalog::{CatalogError, CatalogStore, ManagedBy, UserRecord, new_user_id, now_ms};
use rand::RngCore;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

/// A user defined in the configuration.
#[derive(Clone)]
pub struct UserCredential {
    /// The login name.
    pub name: String,
    /// The password. Held in memory only; never logged.
    pub password: String,
    /// Whether the user administers the service (manages users, sees every query).
    pub admin: bool,
}

impl std::fmt::Debug for UserCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserCredential")
            .field("name", &self.name)
            .field("password", &"<redacted>")
            .field("admin", &self.admin)
            .finish()
    }
}

/// Authentication settings.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// Users the configuration defines (written into the catalog at start).
    pub users: Vec<UserCredential>,
    /// How long a bearer token stays valid after login.
    pub token_ttl: Duration,
    /// The most tokens held at once, all users together; past it logins are refused.
    pub max_tokens: usize,
    /// The most tokens one user holds at once; past it a login drops that user's oldest
    /// token (its oldest session), nobody else's.
    pub max_tokens_per_user: usize,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            users: Vec::new(),
            token_ttl: Duration::from_secs(12 * 3600),
            max_tokens: 100_000,
            max_tokens_per_user: 1_000,
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
    /// The bearer token is unknown, expired or revoked.
    #[error("invalid, expired or revoked bearer token: log in again")]
    BadToken,
    /// The authorization header is not `Basic` or `Bearer`.
    #[error("unsupported authorization header: use `Basic` (login) or `Bearer` (token)")]
    Malformed,
    /// The catalog holding the users could not be read; the login may succeed later.
    #[error("cannot check credentials now (the catalog is unavailable); try again shortly")]
    Unavailable,
    /// Too many logins are being checked at once; nothing was checked.
    #[error(
        "too many logins at once: try again in a second (clients that log in once and reuse \
         their bearer token avoid this)"
    )]
    Busy,
}

/// Why the authenticator could not start.
#[derive(Debug, thiserror::Error)]
pub enum AuthSetupError {
    /// The catalog could not be read or written.
    #[error("cannot store the configured users: {0}")]
    Catalog(#[from] CatalogError),
    /// A password could not be hashed.
    #[error("cannot hash the password of configured user {user}: {reason}")]
    Hash {
        /// The user.
        user: String,
        /// The hasher's reason.
        reason: String,
    },
    /// Nobody could log in.
    #[error(
        "no users: set OSPREY_ADMIN_PASSWORD to create the admin user `admin`, or add a \
         `[[users]]` entry to the configuration"
    )]
    NoUsers,
}

/// The identity a request was authenticated as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The user name.
    pub user: String,
    /// The user's identity ([`UserRecord::id`]). Handles a user holds (tickets, prepared
    /// statements, queries of the HTTP API) belong to it, not to the name: a user dropped and
    /// created again under the same name does not inherit them.
    pub user_id: String,
    /// Whether the user was an admin when it authenticated (changing the flag revokes the
    /// user's tokens, so a token never outlives the flag it was issued with).
    pub is_admin: bool,
    /// The client session the request belongs to: its bearer token, for clients that logged in
    /// (one login, one session). `None` for requests with Basic credentials on every call.
    pub session_id: Option<String>,
}

/// Checks passwords against the users in the catalog, and issues, checks and revokes bearer
/// tokens.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use osprey_catalog::CatalogStore;
/// use osprey_service::{AuthConfig, Authenticator, UserCredential};
///
/// let store = CatalogStore::open("sqlite::memory:").await.unwrap();
/// let config = AuthConfig {
///     users: vec![UserCredential { name: "ana".into(), password: "s3cret".into(), admin: true }],
///     ..AuthConfig::default()
/// };
/// let auth = Authenticator::open(store, &config).await.unwrap();
/// let token = auth.login("ana", "s3cret", None).await.unwrap();
/// assert_eq!(auth.check_token(&token).unwrap().user, "ana");
/// assert!(auth.login("ana", "wrong", None).await.is_err());
/// auth.revoke_token(&token);
/// assert!(auth.check_token(&token).is_err());
/// # }
/// ```
#[derive(Clone)]
pub struct Authenticator {
    store: CatalogStore,
    tokens: ExpiringStore<Principal>,
    /// A hash checked when the user does not exist, so a login takes as long either way.
    decoy_hash: Arc<str>,
    verified: VerifiedCredentials,
    checks: PasswordChecks,
    memory: ArgonMemory,
}

/// How long a verified username and password are remembered.
const VERIFIED_TTL: std::time::Duration = std::time::Duration::from_secs(60);
/// The most remembered credentials; the cache starts over when full.
const VERIFIED_CAPACITY: usize = 10_000;

/// Recently verified Basic credentials. Argon2 costs tens of milliseconds by design, and HTTP
/// clients (the Trino protocol above all) send Basic credentials on every request. Entries are
/// keyed by a salted SHA-256 of user and password (the password itself is not kept), expire
/// after a minute, and are dropped when the user changes.
#[derive(Clone)]
struct VerifiedCredentials {
    salt: Arc<[u8; 32]>,
    entries: Arc<std::sync::Mutex<VerifiedEntries>>,
}

/// Salted credential hash to the principal it verified as, and when.
type VerifiedEntries = std::collections::HashMap<[u8; 32], (Principal, std::time::Instant)>;

impl VerifiedCredentials {
    fn new() -> Self {
        let mut salt = [0u8; 32];
        rand::rng().fill_bytes(&mut salt);
        Self {
            salt: Arc::new(salt),
            entries: Arc::default(),
        }
    }

    fn key(&self, user: &str, password: &str) -> [u8; 32] {
        use sha2::Digest;
        let mut hasher = sha2::Sha256::new();
        hasher.update(self.salt.as_slice());
        hasher.update((user.len() as u64).to_le_bytes());
        hasher.update(user.as_bytes());
        hasher.update(password.as_bytes());
        hasher.finalize().into()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VerifiedEntries> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn get(&self, key: &[u8; 32]) -> Option<Principal> {
        self.lock()
            .get(key)
            .filter(|(_, verified)| verified.elapsed() < VERIFIED_TTL)
            .map(|(principal, _)| principal.clone())
    }

    fn insert(&self, key: [u8; 32], principal: Principal) {
        let mut entries = self.lock();
        if entries.len() >= VERIFIED_CAPACITY {
            entries.clear();
        }
        entries.insert(key, (principal, std::time::Instant::now()));
    }

    fn forget_user(&self, user: &str) {
        self.lock()
            .retain(|_, (principal, _)| principal.user != user);
    }
}

impl Authenticator {
    /// Writes the configured users into the catalog (see the module documentation) and returns
    /// an authenticator for every stored user. Fails when nobody could log in.
    pub async fn open(store: CatalogStore, config: &AuthConfig) -> Result<Self, AuthSetupError> {
        sync_configured_users(&store, &config.users).await?;
        let users = store.users().await?;
        if users.is_empty() {
            return Err(AuthSetupError::NoUsers);
        }
        if !users.iter().any(|user| user.is_admin) {
            tracing::warn!(
                "no admin user: users can be changed only in the configuration; set \
                 OSPREY_ADMIN_PASSWORD or `admin = true` on a `[[users]]` entry to manage them \
                 with SQL"
            );
        }
        let mut decoy = [0u8; 32];
        rand::rng().fill_bytes(&mut decoy);
        let decoy_password = base64::engine::general_purpose::STANDARD.encode(decoy);
        let decoy_hash =
            hash_blocking(decoy_password)
                .await
                .map_err(|reason| AuthSetupError::Hash {
                    user: "(decoy)".to_string(),
                    reason,
                })?;
        Ok(Self {
            store,
            tokens: ExpiringStore::new(
                config.token_ttl,
                config.max_tokens,
                config.max_tokens_per_user,
            ),
            decoy_hash: decoy_hash.into(),
            verified: VerifiedCredentials::new(),
            checks: PasswordChecks::new(),
            memory: ArgonMemory::default(),
        })
    }

    /// The catalog the users are stored in.
    pub fn store(&self) -> &CatalogStore {
        &self.store
    }

    /// Checks a username and password and returns a fresh bearer token.
    pub async fn login(
        &self,
        user: &str,
        password: &str,
        peer: Option<IpAddr>,
    ) -> Result<String, AuthError> {
        let principal = self.check_password(user, password, peer).await?;
        let user = principal.user.clone();
        self.tokens
            .insert_evicting(&user, principal)
            .map_err(|_| AuthError::Busy)
    }

    /// Checks a username and password without issuing a token. `peer` is the client's address,
    /// when known: failures from one address slow further attempts from it.
    pub async fn check_password(
        &self,
        user: &str,
        password: &str,
        peer: Option<IpAddr>,
    ) -> Result<Principal, AuthError> {
        let key = self.verified.key(user, password);
        if let Some(principal) = self.verified.get(&key) {
            return Ok(principal);
        }
        let _turn = self
            .checks
            .turn(user, peer)
            .await
            .map_err(|no_turn| match no_turn {
                NoTurn::Busy => AuthError::Busy,
                NoTurn::Closed => AuthError::Unavailable,
            })?;
        let record = self.store.user(user).await.map_err(|err| {
            tracing::warn!(error = %err, "cannot read users from the catalog");
            AuthError::Unavailable
        })?;
        // An unknown user is checked against the decoy, so the time taken does not reveal
        // which names exist.
        let hash = match &record {
            Some(record) => record.password_hash.clone(),
            None => self.decoy_hash.to_string(),
        };
        let matches = verify_blocking(password.to_string(), hash, self.memory.clone()).await;
        match record {
            Some(record) if matches => {
                let principal = Principal {
                    user: record.name,
                    user_id: record.id,
                    is_admin: record.is_admin,
                    session_id: None,
                };
                self.verified.insert(key, principal.clone());
                self.checks.succeeded(user, peer);
                Ok(principal)
            }
            _ => {
                self.checks.failed(user, peer);
                Err(AuthError::BadCredentials)
            }
        }
    }

    /// How long a token from [`login`](Self::login) lives.
    pub fn token_ttl(&self) -> std::time::Duration {
        self.tokens.ttl()
    }

    /// Checks a bearer token.
    pub fn check_token(&self, token: &str) -> Result<Principal, AuthError> {
        let mut principal = self.tokens.get(token).ok_or(AuthError::BadToken)?;
        principal.session_id = Some(token.to_string());
        Ok(principal)
    }

    /// Authenticates an `authorization` header value: `Bearer <token>`, or `Basic <base64>` for
    /// clients that send their password on every call.
    pub async fn check_authorization(
        &self,
        header: Option<&str>,
        peer: Option<IpAddr>,
    ) -> Result<Principal, AuthError> {
        let header = header.ok_or(AuthError::Missing)?;
        if let Some(token) = strip_prefix_ignore_case(header, "bearer ") {
            return self.check_token(token.trim());
        }
        let (user, password) = basic_credentials(header)?;
        self.check_password(&user, &password, peer).await
    }

    /// Revokes one token (a logout); false if it was unknown or expired already.
    pub fn revoke_token(&self, token: &str) -> bool {
        self.tokens.remove(token).is_some()
    }

    /// Revokes every token of `user` except `keep` (the caller's own session), and forgets its
    /// recently verified passwords; returns how many tokens were revoked.
    pub fn revoke_tokens_of(&self, user: &str, keep: Option<&str>) -> usize {
        self.verified.forget_user(user);
        self.tokens
            .remove_where(keep, |principal| principal.user == user)
    }

    /// Marks the token `token` as belonging to an admin or not (after the caller changed its
    /// own flag, so its session keeps working with the new rights).
    pub fn set_token_admin(&self, token: &str, is_admin: bool) {
        self.tokens
            .update(token, |principal| principal.is_admin = is_admin);
    }
}

/// Hashes a password as an Argon2id PHC string with a random salt, the default parameters
/// (19 MiB, 2 passes) and on a blocking thread, since hashing takes tens of milliseconds.
pub async fn hash_password(password: &str) -> Result<String, String> {
    hash_blocking(password.to_string()).await
}

async fn hash_blocking(password: String) -> Result<String, String> {
    tokio::task::spawn_blocking(move || {
        let mut salt = [0u8; 16];
        rand::rng().fill_bytes(&mut salt);
        let salt = SaltString::encode_b64(&salt).map_err(|err| err.to_string())?;
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .map_err(|err| err.to_string())
    })
    .await
    .map_err(|err| format!("hashing task failed: {err}"))?
}

/// Whether `password` matches the PHC string `hash` (false for an unreadable hash).
async fn verify_blocking(password: String, hash: String, memory: ArgonMemory) -> bool {
    tokio::task::spawn_blocking(move || verify_password(&password, &hash, &memory))
        .await
        .unwrap_or(false)
}

/// Argon2's working memory (19 MiB per check with the default parameters), kept for reuse.
/// Freshly allocated for every check, it piles up in the allocator's per-thread arenas under a
/// login flood (hundreds of MiB that are never given back); at most
/// [`MAX_CONCURRENT_PASSWORD_CHECKS`] buffers are ever in use, so at most that many are kept.
#[derive(Clone, Default)]
struct ArgonMemory {
    free: Arc<std::sync::Mutex<Vec<Vec<argon2::Block>>>>,
}

impl ArgonMemory {
    fn take(&self, blocks: usize) -> Vec<argon2::Block> {
        let reused = self.free.lock().unwrap_or_else(|p| p.into_inner()).pop();
        match reused {
            Some(memory) if memory.len() == blocks => memory,
            _ => vec![argon2::Block::default(); blocks],
        }
    }

    fn give_back(&self, memory: Vec<argon2::Block>) {
        let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
        if free.len() < MAX_CONCURRENT_PASSWORD_CHECKS {
            free.push(memory);
        }
    }
}

/// Verifies `password` against the PHC string `hash` as the argon2 crate's verifier does (same
/// parameters, constant-time comparison), but in working memory from `memory`.
fn verify_password(password: &str, hash: &str, memory: &ArgonMemory) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    let (Some(expected), Some(salt)) = (parsed.hash, parsed.salt) else {
        return false;
    };
    let Ok(algorithm) = argon2::Algorithm::try_from(parsed.algorithm) else {
        return false;
    };
    let version = match parsed.version.map(argon2::Version::try_from) {
        None => argon2::Version::default(),
        Some(Ok(version)) => version,
        Some(Err(_)) => return false,
    };
    let Ok(params) = argon2::Params::try_from(&parsed) else {
        return false;
    };
    let mut salt_bytes = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    let mut blocks = memory.take(params.block_count());
    let mut out = vec![0u8; expected.len()];
    let hashed = Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(password.as_bytes(), salt, &mut out, &mut blocks)
        .is_ok();
    memory.give_back(blocks);
    hashed && subtle::ConstantTimeEq::ct_eq(out.as_slice(), expected.as_bytes()).into()
}

/// Brings the configured users into the catalog: creates missing ones, updates a changed
/// password or admin flag, takes over a SQL user of the same name, and removes configured users
/// no longer in the configuration.
async fn sync_configured_users(
    store: &CatalogStore,
    configured: &[UserCredential],
) -> Result<(), AuthSetupError> {
    for user in configured {
        let stored = store.user(&user.name).await?;
        let unchanged = stored.as_ref().is_some_and(|stored| {
            stored.managed_by == ManagedBy::Config
                && stored.is_admin == user.admin
                && verify_password(
                    &user.password,
                    &stored.password_hash,
                    &ArgonMemory::default(),
                )
        });
        if unchanged {
            continue;
        }
        let password_hash = hash_blocking(user.password.clone())
            .await
            .map_err(|reason| AuthSetupError::Hash {
                user: user.name.clone(),
                reason,
            })?;
        let record = UserRecord {
            name: user.name.clone(),
            // A new id for a new user; update_user leaves an existing user's id alone.
            id: stored
                .as_ref()
                .map_or_else(new_user_id, |stored| stored.id.clone()),
            password_hash,
            is_admin: user.admin,
            managed_by: ManagedBy::Config,
            created_at_ms: now_ms(),
            updated_at_ms: now_ms(),
            // Kept on update (update_user leaves it); SQL assigns workgroups.
            workgroup: None,
        };
        if stored.is_some() {
            store.update_user(&record).await?;
        } else {
            store.create_user(&record).await?;
        }
        tracing::info!(user = %user.name, admin = user.admin, "configured user stored");
    }
    for stored in store.users().await? {
        if stored.managed_by == ManagedBy::Config
            && !configured.iter().any(|user| user.name == stored.name)
        {
            store.drop_user(&stored.name).await?;
            tracing::info!(user = %stored.name, "user removed from the configuration: dropped");
        }
    }
    Ok(())
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
    use crate::login_checks::MAX_WAITING_PASSWORD_CHECKS;

    async fn authenticator(ttl: Duration) -> Authenticator {
        let store = CatalogStore::open("sqlite::memory:").await.unwrap();
        let config = AuthConfig {
            users: vec![UserCredential {
                name: "admin".into(),
                password: "pw".into(),
                admin: true,
            }],
            token_ttl: ttl,
            max_tokens: 10,
            max_tokens_per_user: 10,
        };
        Authenticator::open(store, &config).await.unwrap()
    }

    #[tokio::test]
    async fn expired_and_revoked_tokens_are_refused() {
        let auth = authenticator(Duration::ZERO).await;
        let token = auth.login("admin", "pw", None).await.unwrap();
        assert_eq!(auth.check_token(&token), Err(AuthError::BadToken));

        let auth = authenticator(Duration::from_secs(60)).await;
        let first = auth.login("admin", "pw", None).await.unwrap();
        let second = auth.login("admin", "pw", None).await.unwrap();
        assert_eq!(auth.revoke_tokens_of("admin", Some(&second)), 1);
        assert_eq!(auth.check_token(&first), Err(AuthError::BadToken));
        assert!(auth.check_token(&second).unwrap().is_admin);
    }

    #[tokio::test]
    async fn verified_passwords_are_remembered_until_the_user_changes() {
        let auth = authenticator(Duration::from_secs(60)).await;
        assert!(auth.check_password("admin", "pw", None).await.is_ok());
        assert!(auth.check_password("admin", "pw2", None).await.is_err());
        // Change the stored hash behind the cache: the verified password is remembered...
        let mut record = auth.store().user("admin").await.unwrap().unwrap();
        record.password_hash = hash_password("new").await.unwrap();
        auth.store().update_user(&record).await.unwrap();
        assert!(auth.check_password("admin", "pw", None).await.is_ok());
        // ...until the user changes through the authenticator, as ALTER USER does.
        auth.revoke_tokens_of("admin", None);
        assert!(auth.check_password("admin", "pw", None).await.is_err());
        assert!(auth.check_password("admin", "new", None).await.is_ok());
    }

    #[tokio::test]
    async fn verification_reuses_its_working_memory() {
        let hash = hash_password("correct horse").await.unwrap();
        let memory = ArgonMemory::default();
        assert!(verify_password("correct horse", &hash, &memory));
        assert!(!verify_password("correct horsf", &hash, &memory));
        assert!(!verify_password("correct horse", "not a hash", &memory));
        assert_eq!(memory.free.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_login_flood_waits_its_turn_and_beyond_the_queue_is_refused() {
        let auth = authenticator(Duration::from_secs(60)).await;
        let attempts = MAX_WAITING_PASSWORD_CHECKS + 64;
        let logins = futures::future::join_all((0..attempts).map(|i| {
            let auth = auth.clone();
            async move {
                auth.check_password(&format!("nobody{i}"), "wrong", None)
                    .await
            }
        }))
        .await;
        let busy = logins
            .iter()
            .filter(|r| **r == Err(AuthError::Busy))
            .count();
        let refused = logins
            .iter()
            .filter(|r| **r == Err(AuthError::BadCredentials))
            .count();
        // Four run and 128 wait; the rest are refused without being checked.
        assert!(busy >= 32, "busy {busy}");
        assert_eq!(busy + refused, attempts);
        // The flood is over: a real user logs in.
        assert!(auth.check_password("admin", "pw", None).await.is_ok());
    }

    #[tokio::test]
    async fn repeated_failures_slow_that_user_name_down() {
        let auth = authenticator(Duration::from_secs(60)).await;
        for _ in 0..crate::login_checks::FREE_USER_FAILURES + 3 {
            let _ = auth.check_password("admin", "wrong", None).await;
        }
        assert!(auth.checks.delay_for("admin", None) >= Duration::from_millis(1000));
        assert!(auth.checks.delay_for("ben", None).is_zero());
        let started = std::time::Instant::now();
        assert!(auth.check_password("admin", "pw", None).await.is_ok());
        assert!(started.elapsed() >= Duration::from_millis(1000));
        assert!(auth.checks.delay_for("admin", None).is_zero());
    }

    #[tokio::test]
    async fn unknown_users_and_wrong_passwords_look_the_same() {
        let auth = authenticator(Duration::from_secs(60)).await;
        assert_eq!(
            auth.check_password("nobody", "pw", None).await,
            Err(AuthError::BadCredentials)
        );
        assert_eq!(
            auth.check_password("admin", "nope", None).await,
            Err(AuthError::BadCredentials)
        );
    }

    #[tokio::test]
    async fn configured_users_follow_the_configuration() {
        let store = CatalogStore::open("sqlite::memory:").await.unwrap();
        let user = |name: &str, password: &str, admin| UserCredential {
            name: name.into(),
            password: password.into(),
            admin,
        };
        let config = |users| AuthConfig {
            users,
            ..AuthConfig::default()
        };
        Authenticator::open(
            store.clone(),
            &config(vec![user("root", "a", true), user("bob", "b", false)]),
        )
        .await
        .unwrap();
        let stored = store.user("root").await.unwrap().unwrap();
        assert!(stored.password_hash.starts_with("$argon2id$"));
        // A new password takes effect; a user dropped from the configuration is removed.
        let auth = Authenticator::open(store.clone(), &config(vec![user("root", "c", true)]))
            .await
            .unwrap();
        assert!(auth.check_password("root", "c", None).await.is_ok());
        assert!(auth.check_password("root", "a", None).await.is_err());
        assert!(store.user("bob").await.unwrap().is_none());
        // Nobody left to log in: refused.
        assert!(matches!(
            Authenticator::open(store, &config(vec![])).await,
            Err(AuthSetupError::NoUsers)
        ));
    }

    #[tokio::test]
    async fn basic_and_bearer_headers() {
        let auth = authenticator(Duration::from_secs(60)).await;
        let basic = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("admin:pw")
        );
        assert_eq!(
            auth.check_authorization(Some(&basic), None)
                .await
                .unwrap()
                .user,
            "admin"
        );
        let unpadded = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD_NO_PAD.encode("admin:pw")
        );
        assert_eq!(
            auth.check_authorization(Some(&unpadded), None)
                .await
                .unwrap()
                .user,
            "admin"
        );
        let token = auth.login("admin", "pw", None).await.unwrap();
        let bearer = format!("bearer {token}");
        assert_eq!(
            auth.check_authorization(Some(&bearer), None)
                .await
                .unwrap()
                .user,
            "admin"
        );
        assert_eq!(
            auth.check_authorization(None, None).await,
            Err(AuthError::Missing)
        );
        assert_eq!(
            auth.check_authorization(Some("Digest x"), None).await,
            Err(AuthError::Malformed)
        );
    }
}
