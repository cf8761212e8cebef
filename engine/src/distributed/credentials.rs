//! Vended storage credentials reach an executor before the first task of each query does, over
//! the cluster's authenticated channel and apart from the plan (see `storage::vended`).
//!
//! Shared once per executor and query: a restarted executor, which has forgotten them, gets
//! them again with the next query's first task.

use crate::storage::{StorageRegistry, VendedCredentials, VendedStore};
use datafusion::common::DataFusionError;
use datafusion::error::Result;
use datafusion_distributed::grpc::BoxCloneSyncChannel;
use osprey_proto::credentials::{
    SHARE_CREDENTIALS_METHOD, ShareCredentialsRequest, ShareCredentialsResponse, SharedStore,
};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::OnceCell;
use url::Url;

/// How many (executor, query) pairs are remembered before the finished ones are forgotten.
const REMEMBERED_SHARES: usize = 4096;

/// Shares done or under way, by executor and query.
type Shares = HashMap<(Url, [u8; 16]), Arc<OnceCell<()>>>;

/// What is shared with whom (see the module docs).
#[derive(Clone)]
pub(super) struct CredentialSharing {
    storage: Arc<StorageRegistry>,
    shared: Arc<Mutex<Shares>>,
}

impl CredentialSharing {
    pub(super) fn new(storage: Arc<StorageRegistry>) -> Self {
        Self {
            storage,
            shared: Arc::default(),
        }
    }

    /// Shares every live set of vended credentials with the executor at `url` (reached
    /// through `channel`), once for the query `query_id`; tasks of the query wait for it.
    pub(super) async fn before_dispatch(
        &self,
        channel: impl FnOnce() -> Result<BoxCloneSyncChannel>,
        url: &Url,
        query_id: [u8; 16],
    ) -> Result<()> {
        let stores = self.storage.live_vended();
        if stores.is_empty() {
            return Ok(());
        }
        let cell = {
            let mut shared = self
                .shared
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if shared.len() >= REMEMBERED_SHARES {
                shared.retain(|_, cell| !cell.initialized());
            }
            Arc::clone(shared.entry((url.clone(), query_id)).or_default())
        };
        cell.get_or_try_init(|| async { share(channel()?, url, stores).await })
            .await
            .map(|_| ())
    }
}

/// Sends `stores` to the executor at `url`, through `channel`.
async fn share(channel: BoxCloneSyncChannel, url: &Url, stores: Vec<VendedStore>) -> Result<()> {
    let unavailable = |err: String| {
        DataFusionError::Execution(format!(
            "cannot share a table's vended storage credentials with the executor at {url}: {err}"
        ))
    };
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|err| unavailable(err.to_string()))?;
    let request = tonic::Request::new(ShareCredentialsRequest {
        stores: stores.into_iter().map(to_wire).collect(),
    });
    grpc.unary::<_, ShareCredentialsResponse, _>(
        request,
        http::uri::PathAndQuery::from_static(SHARE_CREDENTIALS_METHOD),
        tonic_prost::ProstCodec::default(),
    )
    .await
    .map_err(|status| unavailable(status.message().to_string()))?;
    Ok(())
}

fn to_wire(store: VendedStore) -> SharedStore {
    SharedStore {
        id: store.id,
        bucket: store.bucket,
        access_key_id: store.credentials.access_key_id,
        secret_access_key: store.credentials.secret_access_key,
        session_token: store.credentials.session_token,
        expires_at_ms: store.credentials.expires_at_ms,
        region: store.credentials.region,
    }
}

/// The credentials an executor was sent, as its storage keeps them.
pub(super) fn from_wire(request: ShareCredentialsRequest) -> Vec<VendedStore> {
    request
        .stores
        .into_iter()
        .map(|store| VendedStore {
            id: store.id,
            bucket: store.bucket,
            credentials: VendedCredentials {
                access_key_id: store.access_key_id,
                secret_access_key: store.secret_access_key,
                session_token: store.session_token,
                expires_at_ms: store.expires_at_ms,
                region: store.region,
            },
        })
        .collect()
}
