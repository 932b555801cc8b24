//! Talking to nodes over the public gRPC API: TLS 1.3 pinned to the
//! testnet's genesis, as every client of a validator.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use senatus_genesis::{Genesis, NodeId};
use senatus_proto::v1 as pb;
use senatus_proto::v1::senatus_client::SenatusClient;
use tonic::transport::{Channel, Endpoint};

/// Longest wait for a TCP connection to a node on loopback.
pub(crate) const CONNECT_TIMEOUT_MS: u64 = 1000;
/// Longest wait for a `Status` answer while polling.
pub(crate) const STATUS_TIMEOUT_MS: u64 = 1000;
/// Largest reply the harness accepts (a full `GetLedger` page).
pub(crate) const REPLY_BYTES_MAX: usize = 128 * 1024 * 1024;

/// A ledger head as a node reports it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Head {
    /// Ledger index of the newest entry (0: empty ledger).
    pub index: u64,
    /// Its entry hash (the genesis digest for an empty ledger).
    pub hash: Vec<u8>,
}

impl Head {
    /// The head a `Status` reply names.
    pub fn of(s: &pb::StatusReply) -> Head {
        Head {
            index: s.ledger_index,
            hash: s.ledger_hash.clone(),
        }
    }

    /// The first 8 bytes of the hash in hex.
    pub fn short_hash(&self) -> String {
        hex::encode(&self.hash[..self.hash.len().min(8)])
    }
}

impl std::fmt::Display for Head {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.index, self.short_hash())
    }
}

/// The genesis of the ceremony in `dir` (`dir/genesis.json`), loaded and
/// verified once: what every connection to the testnet's nodes is pinned
/// to.
pub(crate) fn load_genesis(dir: &Path) -> anyhow::Result<Arc<Genesis>> {
    let path = dir.join("genesis.json");
    Genesis::load(&path)
        .map(Arc::new)
        .map_err(|e| anyhow::anyhow!("testnet genesis {}: {e}", path.display()))
}

/// A channel to node `id`'s public API at `addr`, over TLS pinned to
/// `genesis`: the node must present validator `id`'s certificate. Connects
/// on first use (TCP and handshake within the connect timeout) and again
/// after the node restarts. Must be called inside a tokio runtime.
pub(crate) fn api_channel(genesis: &Arc<Genesis>, id: u64, addr: &str) -> anyhow::Result<Channel> {
    let node = NodeId::new(id).map_err(|e| anyhow::anyhow!("node id {id}: {e}"))?;
    let tls = senatus_transport::api_client(genesis.clone(), Some(node))
        .map_err(|e| anyhow::anyhow!("TLS client for node {id}: {e}"))?;
    let ep = Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|e| anyhow::anyhow!("bad node address {addr}: {e}"))?
        .connect_timeout(Duration::from_millis(CONNECT_TIMEOUT_MS))
        .tcp_nodelay(true);
    Ok(senatus_transport::lazy_channel(&ep, tls))
}

/// A client on `channel` with a reply limit large enough for any page.
pub(crate) fn client(channel: Channel) -> SenatusClient<Channel> {
    SenatusClient::new(channel).max_decoding_message_size(REPLY_BYTES_MAX)
}

/// `Status` of one node, bounded; the error is one line.
pub(crate) async fn status(channel: Channel) -> Result<pb::StatusReply, String> {
    let call = async move { client(channel).status(pb::StatusRequest {}).await };
    match tokio::time::timeout(Duration::from_millis(STATUS_TIMEOUT_MS), call).await {
        Err(_) => Err(format!("no answer within {STATUS_TIMEOUT_MS} ms")),
        Ok(Err(s)) => Err(format!("{:?}: {}", s.code(), s.message())),
        Ok(Ok(r)) => Ok(r.into_inner()),
    }
}

/// `Status` of several nodes at once.
pub(crate) async fn statuses(
    nodes: Vec<(u64, Channel)>,
) -> std::collections::BTreeMap<u64, Result<pb::StatusReply, String>> {
    let mut set = tokio::task::JoinSet::new();
    for (id, ch) in nodes {
        set.spawn(async move { (id, status(ch).await) });
    }
    let mut out = std::collections::BTreeMap::new();
    while let Some(r) = set.join_next().await {
        if let Ok((id, s)) = r {
            out.insert(id, s);
        }
    }
    out
}

/// The leader every answering node agrees on: one node says it leads and
/// every other answer names it as leader in the same term.
pub(crate) fn agreed_leader<'a>(
    answers: impl IntoIterator<Item = &'a pb::StatusReply> + Clone,
) -> Option<u64> {
    let leader = answers
        .clone()
        .into_iter()
        .filter(|s| s.role == "leader")
        .max_by_key(|s| s.term)?;
    answers
        .into_iter()
        .all(|s| s.leader_id == leader.node_id && s.term == leader.term)
        .then_some(leader.node_id)
}
