//! Vended storage credentials, shared by the coordinator with an executor before the first task
//! of a query reaches it (`ShareStorageCredentials`), so that plans name only the opaque store
//! URL `osprey-vended://<id>` and never a secret.
//!
//! Served by the executor's own gRPC service (the one [`crate::progress`] names), behind the
//! cluster credential like every other method. Written as `prost` structs for the same reason
//! as the progress messages.

/// The gRPC method executors accept vended credentials on.
pub const SHARE_CREDENTIALS_METHOD: &str = "/osprey.ExecutorProgress/ShareStorageCredentials";

/// Coordinator to executor: credentials to keep, by id.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ShareCredentialsRequest {
    /// The credentials, one entry per id.
    #[prost(message, repeated, tag = "1")]
    pub stores: Vec<SharedStore>,
}

/// One set of vended S3 credentials and the bucket it reaches. Its `Debug` shows no secret.
#[derive(Clone, PartialEq, prost::Message)]
#[prost(skip_debug)]
pub struct SharedStore {
    /// The id in `osprey-vended://<id>`.
    #[prost(string, tag = "1")]
    pub id: String,
    /// The bucket, `s3://name`.
    #[prost(string, tag = "2")]
    pub bucket: String,
    /// The access key id.
    #[prost(string, tag = "3")]
    pub access_key_id: String,
    /// Its secret.
    #[prost(string, tag = "4")]
    pub secret_access_key: String,
    /// The session token, when the credentials are temporary.
    #[prost(string, optional, tag = "5")]
    pub session_token: Option<String>,
    /// When they expire, in milliseconds since the epoch.
    #[prost(int64, optional, tag = "6")]
    pub expires_at_ms: Option<i64>,
    /// The bucket's region, as the catalog said.
    #[prost(string, optional, tag = "7")]
    pub region: Option<String>,
}

impl std::fmt::Debug for SharedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedStore")
            .field("id", &self.id)
            .field("bucket", &self.bucket)
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

/// Executor to coordinator: the credentials are kept.
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct ShareCredentialsResponse {}
