//! Mutual TLS between the processes of a cluster: the coordinator and executors, and
//! executors among themselves.
//!
//! Each process has a certificate and key, and trusts one certificate authority (a PEM bundle,
//! which may hold the old and the new CA while a CA is rotated). An executor accepts a
//! connection only from a client whose certificate that CA signed, and every process checks
//! the server's certificate against the CA and the address it dialled. The cluster secret
//! stays a second factor: each request still carries it.
//!
//! The three files are read again every [`RELOAD_INTERVAL`]; when they change and still make
//! a valid configuration, new connections use them (established connections keep theirs until
//! they close), so cert-manager or any tool that rewrites the files rotates certificates
//! without a restart. Files that do not load are reported and the last good ones stay in use.
//!
//! Written on `tokio-rustls` (which tonic already puts in the build) rather than with tonic's
//! own `ServerTlsConfig` and `ClientTlsConfig`, which are fixed when a server or channel is
//! built and so cannot rotate.

use futures::Stream;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, RwLock, Weak};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio_rustls::server::TlsStream;

/// How often the certificate, key and CA files are checked for changes.
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(5);

/// How long a peer has to complete its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How many handshakes may be in progress at once; further connections wait to be accepted.
const MAX_PENDING_HANDSHAKES: usize = 256;

/// The files of a process's cluster identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterTlsFiles {
    /// Its certificate chain (PEM), usable for both server and client authentication.
    pub cert: PathBuf,
    /// The certificate's private key (PEM).
    pub key: PathBuf,
    /// The certificate authorities (PEM) whose certificates the cluster's processes trust.
    pub ca: PathBuf,
    /// The name an executor's certificate must hold, instead of the address it is dialled by:
    /// for executors found by address (a Kubernetes headless Service gives pod IPs), which
    /// share one certificate for a stable name. `None` checks the dialled host.
    pub server_name: Option<String>,
}

/// Why the cluster's TLS files could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ClusterTlsError {
    /// A file could not be read.
    #[error("cannot read cluster TLS file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// A file does not hold what it should, or the files do not fit together.
    #[error("cluster TLS: {}: {reason}", path.display())]
    Invalid {
        /// The file at fault.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// The TLS settings of a process in the cluster, reloaded when their files change. Cheap to
/// clone; clones share the settings.
#[derive(Clone)]
pub struct ClusterTls {
    inner: Arc<Inner>,
}

struct Inner {
    files: ClusterTlsFiles,
    current: RwLock<Arc<Loaded>>,
}

struct Loaded {
    /// The files' contents, to tell a change.
    contents: [Vec<u8>; 3],
    server: Arc<ServerConfig>,
    client: Arc<ClientConfig>,
}

impl std::fmt::Debug for ClusterTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterTls")
            .field("files", &self.inner.files)
            .finish_non_exhaustive()
    }
}

impl ClusterTls {
    /// Loads `files`; fails if they do not make a valid configuration.
    pub fn load(files: ClusterTlsFiles) -> Result<Self, ClusterTlsError> {
        let loaded = load(&files)?;
        Ok(Self {
            inner: Arc::new(Inner {
                files,
                current: RwLock::new(Arc::new(loaded)),
            }),
        })
    }

    /// Checks the files every [`RELOAD_INTERVAL`] on the current runtime, until every clone of
    /// this is dropped.
    pub fn spawn_reloader(&self) {
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(RELOAD_INTERVAL);
            ticks.tick().await;
            let mut reported: Option<String> = None;
            loop {
                ticks.tick().await;
                let Some(inner) = weak.upgrade() else {
                    return;
                };
                match (ClusterTls { inner }).reload() {
                    Ok(true) => {
                        reported = None;
                        tracing::info!("cluster TLS: certificate, key or CA changed; reloaded");
                    }
                    Ok(false) => {}
                    Err(err) => {
                        // Once per failure, not every few seconds.
                        let text = err.to_string();
                        if reported.as_deref() != Some(text.as_str()) {
                            tracing::warn!(error = %text, "cluster TLS: changed files not \
                                used; the previous certificate stays in use");
                            reported = Some(text);
                        }
                    }
                }
            }
        });
    }

    /// Reads the files again and, if they changed and are valid, uses them from the next
    /// connection on; whether they changed.
    pub fn reload(&self) -> Result<bool, ClusterTlsError> {
        let contents = read_all(&self.inner.files)?;
        if self.loaded().contents == contents {
            return Ok(false);
        }
        let loaded = build(&self.inner.files, contents)?;
        *self
            .inner
            .current
            .write()
            .unwrap_or_else(|p| p.into_inner()) = Arc::new(loaded);
        Ok(true)
    }

    /// The settings in use (shared, not copied: each connection takes them).
    fn loaded(&self) -> Arc<Loaded> {
        Arc::clone(&self.inner.current.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Dials `host:port` and completes a TLS handshake that presents this process's
    /// certificate and checks the server's against the CA and `host`.
    pub(crate) async fn connect(
        &self,
        host: &str,
        port: u16,
    ) -> Result<tokio_rustls::client::TlsStream<TcpStream>, Box<dyn std::error::Error + Send + Sync>>
    {
        let expected = self.inner.files.server_name.as_deref().unwrap_or(host);
        let name = ServerName::try_from(expected.to_string())
            .map_err(|err| format!("{expected} is not a name a certificate can hold: {err}"))?;
        let tcp = TcpStream::connect((host, port)).await?;
        tcp.set_nodelay(true)?;
        let connector = tokio_rustls::TlsConnector::from(Arc::clone(&self.loaded().client));
        Ok(connector.connect(name, tcp).await?)
    }

    /// The connections of `incoming` that complete a TLS handshake with a client certificate
    /// the CA signed. Handshakes run in their own tasks, bounded in number and time, so a peer
    /// that connects and says nothing holds up no one.
    pub(crate) fn accept<S>(&self, incoming: S) -> TlsIncoming
    where
        S: Stream<Item = Result<TcpStream, std::io::Error>> + Send + 'static,
    {
        let (sender, handshaken) = mpsc::channel(16);
        let tls = self.clone();
        let task = tokio::spawn(async move {
            use futures::StreamExt;
            let pending = Arc::new(Semaphore::new(MAX_PENDING_HANDSHAKES));
            let mut incoming = std::pin::pin!(incoming);
            while let Some(next) = incoming.next().await {
                let Ok(permit) = Arc::clone(&pending).acquire_owned().await else {
                    return;
                };
                let stream = match next {
                    Ok(stream) => stream,
                    Err(err) => {
                        // Usually too many open files: back off instead of spinning.
                        tracing::warn!(error = %err, "cluster accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let acceptor = tokio_rustls::TlsAcceptor::from(Arc::clone(&tls.loaded().server));
                let sender = sender.clone();
                tokio::spawn(async move {
                    let _permit = permit;
                    let peer = stream.peer_addr().ok();
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let _ = sender.send(tls).await;
                        }
                        Ok(Err(err)) => tracing::warn!(
                            ?peer,
                            error = %err,
                            "cluster TLS handshake refused (a peer without a certificate the \
                             cluster CA signed?)"
                        ),
                        Err(_) => tracing::debug!(?peer, "cluster TLS handshake timed out"),
                    }
                });
            }
        });
        TlsIncoming {
            handshaken,
            task: task.abort_handle(),
        }
    }
}

/// Connections that completed the cluster's TLS handshake, for tonic's
/// `serve_with_incoming`. Dropping it stops accepting.
pub(crate) struct TlsIncoming {
    handshaken: mpsc::Receiver<TlsStream<TcpStream>>,
    task: tokio::task::AbortHandle,
}

impl Stream for TlsIncoming {
    type Item = Result<TlsStream<TcpStream>, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.handshaken.poll_recv(cx).map(|next| next.map(Ok))
    }
}

impl Drop for TlsIncoming {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn read_all(files: &ClusterTlsFiles) -> Result<[Vec<u8>; 3], ClusterTlsError> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|source| ClusterTlsError::Read {
            path: path.to_path_buf(),
            source,
        })
    };
    Ok([read(&files.cert)?, read(&files.key)?, read(&files.ca)?])
}

fn load(files: &ClusterTlsFiles) -> Result<Loaded, ClusterTlsError> {
    build(files, read_all(files)?)
}

fn build(files: &ClusterTlsFiles, contents: [Vec<u8>; 3]) -> Result<Loaded, ClusterTlsError> {
    let invalid = |path: &Path, reason: String| ClusterTlsError::Invalid {
        path: path.to_path_buf(),
        reason,
    };
    let [cert_pem, key_pem, ca_pem] = &contents;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|err| invalid(&files.cert, format!("unreadable certificate: {err}")))?;
    if certs.is_empty() {
        return Err(invalid(
            &files.cert,
            "no PEM certificate in the file".into(),
        ));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem)
        .map_err(|err| invalid(&files.key, format!("unreadable private key: {err}")))?;
    let mut roots = RootCertStore::empty();
    for ca in CertificateDer::pem_slice_iter(ca_pem) {
        let ca = ca.map_err(|err| invalid(&files.ca, format!("unreadable certificate: {err}")))?;
        roots
            .add(ca)
            .map_err(|err| invalid(&files.ca, format!("not a usable CA certificate: {err}")))?;
    }
    if roots.is_empty() {
        return Err(invalid(&files.ca, "no PEM certificate in the file".into()));
    }
    let roots = Arc::new(roots);
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let verifier =
        WebPkiClientVerifier::builder_with_provider(Arc::clone(&roots), provider.clone())
            .build()
            .map_err(|err| invalid(&files.ca, err.to_string()))?;
    let mut server = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|err| invalid(&files.cert, err.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs.clone(), key.clone_key())
        .map_err(|err| invalid(&files.key, format!("does not fit the certificate: {err}")))?;
    // gRPC is HTTP/2.
    server.alpn_protocols = vec![b"h2".to_vec()];
    let mut client = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|err| invalid(&files.cert, err.to_string()))?
        .with_root_certificates(roots)
        .with_client_auth_cert(certs, key)
        .map_err(|err| invalid(&files.key, format!("does not fit the certificate: {err}")))?;
    client.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Loaded {
        contents,
        server: Arc::new(server),
        client: Arc::new(client),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_and_empty_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let files = ClusterTlsFiles {
            cert: dir.path().join("cert.pem"),
            key: dir.path().join("key.pem"),
            ca: dir.path().join("ca.pem"),
            server_name: None,
        };
        let err = ClusterTls::load(files.clone()).unwrap_err().to_string();
        assert!(err.contains("cert.pem"), "{err}");
        for path in [&files.cert, &files.key, &files.ca] {
            std::fs::write(path, "not pem").unwrap();
        }
        let err = ClusterTls::load(files).unwrap_err().to_string();
        assert!(
            err.contains("cert.pem") && err.contains("no PEM certificate"),
            "{err}"
        );
    }
}
