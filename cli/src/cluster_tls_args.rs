//! `--cluster-tls-cert`, `--cluster-tls-key` and `--cluster-tls-ca`: mutual TLS between the
//! coordinator and the executors, shared by `osprey coordinator` and `osprey executor`.

use crate::config_file::ClusterSection;
use anyhow::{Result, bail};
use clap::Args;
use osprey_engine::ClusterTlsFiles;
use std::path::PathBuf;

/// Mutual TLS with the rest of the cluster.
#[derive(Args, Debug, Clone, Default)]
pub struct ClusterTlsArgs {
    /// This process's certificate (PEM) for mutual TLS with the rest of the cluster, signed by
    /// --cluster-tls-ca, valid for server and client authentication, naming the address
    /// others dial it by. Needs --cluster-tls-key and --cluster-tls-ca. The three files are
    /// read again every 5 s, so a rewritten certificate is used without a restart.
    #[arg(long, env = "OSPREY_CLUSTER_TLS_CERT", value_name = "FILE")]
    pub cluster_tls_cert: Option<PathBuf>,

    /// Private key (PEM) of --cluster-tls-cert.
    #[arg(long, env = "OSPREY_CLUSTER_TLS_KEY", value_name = "FILE")]
    pub cluster_tls_key: Option<PathBuf>,

    /// Certificate authorities (PEM) the cluster's processes trust: only peers with a
    /// certificate they signed are accepted. Holds the old and the new CA while rotating one.
    #[arg(long, env = "OSPREY_CLUSTER_TLS_CA", value_name = "FILE")]
    pub cluster_tls_ca: Option<PathBuf>,

    /// The name executors' certificates must hold, instead of the address they are dialled
    /// by: for executors found as addresses (--executor-dns of a Kubernetes headless
    /// Service), which share a certificate for one stable name.
    #[arg(long, env = "OSPREY_CLUSTER_TLS_SERVER_NAME", value_name = "NAME")]
    pub cluster_tls_server_name: Option<String>,
}

impl ClusterTlsArgs {
    /// The files from the flags (or their environment variables), else from `[cluster]`;
    /// `None` when neither names any.
    pub fn resolve(&self, section: &ClusterSection) -> Result<Option<ClusterTlsFiles>> {
        let (cert, key, ca) = if self.cluster_tls_cert.is_some()
            || self.cluster_tls_key.is_some()
            || self.cluster_tls_ca.is_some()
        {
            (
                self.cluster_tls_cert.clone(),
                self.cluster_tls_key.clone(),
                self.cluster_tls_ca.clone(),
            )
        } else {
            (
                section.tls_cert.clone(),
                section.tls_key.clone(),
                section.tls_ca.clone(),
            )
        };
        match (cert, key, ca) {
            (None, None, None) => Ok(None),
            (Some(cert), Some(key), Some(ca)) => Ok(Some(ClusterTlsFiles {
                cert,
                key,
                ca,
                server_name: self
                    .cluster_tls_server_name
                    .clone()
                    .or(section.tls_server_name.clone()),
            })),
            (cert, key, ca) => {
                let missing: Vec<&str> = [
                    (cert.is_none(), "--cluster-tls-cert"),
                    (key.is_none(), "--cluster-tls-key"),
                    (ca.is_none(), "--cluster-tls-ca"),
                ]
                .into_iter()
                .filter_map(|(absent, flag)| absent.then_some(flag))
                .collect();
                bail!(
                    "cluster TLS needs a certificate, its key and the CA together: {} missing \
                     (or tls_cert, tls_key, tls_ca under [cluster])",
                    missing.join(" and ")
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_three_or_none() {
        let section = ClusterSection::default();
        assert!(
            ClusterTlsArgs::default()
                .resolve(&section)
                .unwrap()
                .is_none()
        );
        let partial = ClusterTlsArgs {
            cluster_tls_cert: Some("c.pem".into()),
            ..Default::default()
        };
        let err = partial.resolve(&section).unwrap_err().to_string();
        assert!(
            err.contains("--cluster-tls-key and --cluster-tls-ca"),
            "{err}"
        );
        let from_file = ClusterSection {
            tls_cert: Some("c.pem".into()),
            tls_key: Some("k.pem".into()),
            tls_ca: Some("ca.pem".into()),
            ..Default::default()
        };
        let files = ClusterTlsArgs::default()
            .resolve(&from_file)
            .unwrap()
            .unwrap();
        assert_eq!(files.ca, PathBuf::from("ca.pem"));
    }
}
