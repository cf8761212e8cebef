//! The cluster credential: a shared secret that proves a gRPC request comes from a member of the
//! cluster (the coordinator, or an executor fetching shuffle data from a peer).
//!
//! The secret travels in the [`CLUSTER_SECRET_HEADER`] request header. On its own it protects
//! against callers that do not know it; it does not protect against someone who can read the
//! traffic. Across hosts, run the executor port behind TLS (a service mesh or a TLS-terminating
//! sidecar) so the header is never sent in the clear.

use std::fmt;
use subtle::ConstantTimeEq;

/// The gRPC metadata key that carries the cluster secret.
pub const CLUSTER_SECRET_HEADER: &str = "x-osprey-cluster-secret";

/// The shortest secret accepted, in bytes. Shorter secrets are guessable.
pub const MIN_SECRET_LEN: usize = 16;

/// Why a request or a configured secret was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ClusterAuthError {
    /// The request carried no cluster secret at all.
    #[error("missing cluster credential: the request has no `{CLUSTER_SECRET_HEADER}` header")]
    Missing,
    /// The request carried a secret that does not match this executor's.
    #[error("wrong cluster credential")]
    Mismatch,
    /// A configured secret is too short or not a valid header value.
    #[error(
        "invalid cluster secret: it must be at least {MIN_SECRET_LEN} printable ASCII characters \
         (generate one with `openssl rand -hex 32`)"
    )]
    Invalid,
}

/// A cluster secret. Its `Debug` and `Display` never print the value, so it is safe to log
/// structures that hold one.
///
/// ```
/// use osprey_proto::ClusterSecret;
///
/// let secret = ClusterSecret::new("0123456789abcdef0123").unwrap();
/// assert_eq!(format!("{secret:?}"), "ClusterSecret(<redacted>)");
/// assert!(ClusterSecret::new("short").is_err());
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct ClusterSecret(String);

impl ClusterSecret {
    /// Validates and wraps a secret.
    pub fn new(value: impl Into<String>) -> Result<Self, ClusterAuthError> {
        let value = value.into();
        let printable = value.bytes().all(|b| b.is_ascii_graphic());
        if value.len() < MIN_SECRET_LEN || !printable {
            return Err(ClusterAuthError::Invalid);
        }
        Ok(Self(value))
    }

    /// The secret's value, for placing into an outgoing request header. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The header value to attach to outgoing requests.
    pub fn header_value(&self) -> http::HeaderValue {
        // Validated as printable ASCII in `new`, which is always a valid header value.
        let mut value = http::HeaderValue::from_str(&self.0)
            .unwrap_or_else(|_| http::HeaderValue::from_static(""));
        value.set_sensitive(true);
        value
    }

    /// Checks the secret presented in `headers` against this one, in constant time.
    ///
    /// ```
    /// use osprey_proto::{CLUSTER_SECRET_HEADER, ClusterAuthError, ClusterSecret};
    ///
    /// let secret = ClusterSecret::new("0123456789abcdef0123").unwrap();
    /// let mut headers = http::HeaderMap::new();
    /// assert_eq!(secret.verify(&headers), Err(ClusterAuthError::Missing));
    /// headers.insert(CLUSTER_SECRET_HEADER, "wrong-wrong-wrong-wrong".parse().unwrap());
    /// assert_eq!(secret.verify(&headers), Err(ClusterAuthError::Mismatch));
    /// headers.insert(CLUSTER_SECRET_HEADER, secret.header_value());
    /// assert_eq!(secret.verify(&headers), Ok(()));
    /// ```
    pub fn verify(&self, headers: &http::HeaderMap) -> Result<(), ClusterAuthError> {
        let presented = headers
            .get(CLUSTER_SECRET_HEADER)
            .ok_or(ClusterAuthError::Missing)?;
        if bool::from(presented.as_bytes().ct_eq(self.0.as_bytes())) {
            Ok(())
        } else {
            Err(ClusterAuthError::Mismatch)
        }
    }

    /// A tonic interceptor that refuses any request without this secret with
    /// `UNAUTHENTICATED`. Mount it in front of every executor service.
    pub fn interceptor(
        &self,
    ) -> impl Fn(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> + Clone + use<>
    {
        let secret = self.clone();
        move |request: tonic::Request<()>| {
            let headers = request.metadata().clone().into_headers();
            match secret.verify(&headers) {
                Ok(()) => Ok(request),
                Err(err) => Err(tonic::Status::unauthenticated(err.to_string())),
            }
        }
    }
}

impl fmt::Debug for ClusterSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClusterSecret(<redacted>)")
    }
}

impl fmt::Display for ClusterSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_non_printable_secret() {
        assert_eq!(
            ClusterSecret::new("0123456789abcdef 0123"),
            Err(ClusterAuthError::Invalid)
        );
    }

    #[test]
    fn rejects_prefix_of_secret() {
        let secret = ClusterSecret::new("0123456789abcdef0123").unwrap();
        let mut headers = http::HeaderMap::new();
        headers.insert(CLUSTER_SECRET_HEADER, "0123456789abcdef".parse().unwrap());
        assert_eq!(secret.verify(&headers), Err(ClusterAuthError::Mismatch));
    }
}
