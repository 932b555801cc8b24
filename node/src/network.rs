//! Raft transport over tonic: the client side (`RaftNetworkFactory`) and the
//! `Peer` gRPC service that feeds incoming RPCs to the local Raft.
//!
//! openraft's messages travel as postcard bytes inside a protobuf
//! `RaftMessage`: compact for log entries and snapshot chunks, and the
//! generated protobuf stays independent of openraft's internals. Every
//! outbound call has a deadline (openraft's hard TTL) and every inbound
//! message a size limit.

use std::sync::Arc;
use std::time::Duration;

use openraft::BasicNode;
use openraft::error::{
    InstallSnapshotError, NetworkError, PayloadTooLarge, RPCError, RaftError, RemoteError,
    Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use senatus_proto::v1::peer_client::PeerClient;
use senatus_proto::v1::{RaftMessage, WriteCommand, WriteReply};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tonic::transport::{Channel, Endpoint};

use crate::raft_types::{TypeConfig, Vote};
use crate::store::LogStore;
use senatus_genesis::NodeId;
use senatus_transport::NodeTls;

/// Largest public API request accepted by the gRPC layer (tonic refuses
/// larger ones with `OUT_OF_RANGE`); the gate's own API clients use it too.
pub const API_MESSAGE_BYTES_MAX: usize = 1024 * 1024;

/// Largest gRPC message a peer accepts or sends. Snapshot chunks are sized
/// well below it (`SNAPSHOT_CHUNK_BYTES`); an append batch whose encoding
/// would exceed [`APPEND_PAYLOAD_BYTES_MAX`] is refused before sending with
/// openraft's `PayloadTooLarge`, which makes openraft resend fewer entries.
/// One entry always fits: a command is at most
/// `ledger::LEDGER_PAYLOAD_BYTES_MAX` (4 MiB) plus a few bytes.
pub const PEER_MESSAGE_BYTES_MAX: usize = 16 * 1024 * 1024;
/// Largest encoded AppendEntries request sent: the message limit less room
/// for the protobuf framing around it.
pub const APPEND_PAYLOAD_BYTES_MAX: usize = PEER_MESSAGE_BYTES_MAX - 64 * 1024;
/// Snapshot chunk size handed to openraft; must leave room for framing
/// inside [`PEER_MESSAGE_BYTES_MAX`].
pub const SNAPSHOT_CHUNK_BYTES: u64 = 4 * 1024 * 1024;
/// Connect timeout for a peer channel.
pub const PEER_CONNECT_TIMEOUT_MS: u64 = 500;

/// Encodes a Raft message for the wire.
pub fn encode<T: Serialize>(v: &T) -> Result<Vec<u8>, postcard::Error> {
    postcard::to_stdvec(v)
}

/// Decodes a Raft message from the wire.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, postcard::Error> {
    postcard::from_bytes(bytes)
}

/// Why a channel to a validator could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    /// The address is not `host:port`.
    #[error("validator {id} address {addr}: {reason}")]
    Address {
        /// The validator.
        id: u64,
        /// The address from genesis.
        addr: String,
        /// Why.
        reason: String,
    },
    /// The TLS configuration could not be built.
    #[error("validator {id}: {source}")]
    Tls {
        /// The validator.
        id: u64,
        /// Why.
        source: senatus_transport::ConfigError,
    },
}

fn endpoint(id: u64, addr: &str) -> Result<Endpoint, ChannelError> {
    Ok(Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|e| ChannelError::Address {
            id,
            addr: addr.to_string(),
            reason: e.to_string(),
        })?
        .connect_timeout(Duration::from_millis(PEER_CONNECT_TIMEOUT_MS))
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(5))
        .keep_alive_timeout(Duration::from_secs(5))
        // Pings also while idle: the other side closes a connection that
        // hears nothing for its idle timeout.
        .keep_alive_while_idle(true))
}

/// A lazily connecting mutual-TLS channel to validator `id`'s peer port:
/// presents this validator's certificate, accepts only `id`'s.
pub fn peer_channel(tls: &NodeTls, id: u64, addr: &str) -> Result<Channel, ChannelError> {
    channel(id, addr, |target| tls.peer_client(target))
}

/// A lazily connecting TLS channel to validator `id`'s public API, which
/// must present `id`'s certificate (a follower forwarding to its leader).
pub fn api_channel(tls: &NodeTls, id: u64, addr: &str) -> Result<Channel, ChannelError> {
    channel(id, addr, |target| {
        senatus_transport::api_client(tls.genesis().clone(), Some(target))
    })
}

fn channel(
    id: u64,
    addr: &str,
    config: impl FnOnce(NodeId) -> Result<Arc<rustls::ClientConfig>, senatus_transport::ConfigError>,
) -> Result<Channel, ChannelError> {
    let target = NodeId::new(id).map_err(|e| ChannelError::Address {
        id,
        addr: addr.to_string(),
        reason: e.to_string(),
    })?;
    let config = config(target).map_err(|source| ChannelError::Tls { id, source })?;
    Ok(senatus_transport::lazy_channel(
        &endpoint(id, addr)?,
        config,
    ))
}

/// Hands out one [`PeerConnection`] per target.
#[derive(Debug, Clone)]
pub struct PeerNetwork {
    /// This node, sent as `from` on every message.
    pub self_id: u64,
    /// This node's TLS identity.
    pub tls: NodeTls,
    /// This node's Raft log: replies are checked against its vote's term.
    pub log: LogStore,
}

impl RaftNetworkFactory<TypeConfig> for PeerNetwork {
    type Network = PeerConnection;

    async fn new_client(&mut self, target: u64, node: &BasicNode) -> Self::Network {
        PeerConnection {
            self_id: self.self_id,
            tls: self.tls.clone(),
            log: self.log.clone(),
            target,
            addr: node.addr.clone(),
            client: None,
        }
    }
}

/// A connection to one peer; reconnects lazily after a transport error.
#[derive(Debug)]
pub struct PeerConnection {
    self_id: u64,
    tls: NodeTls,
    log: LogStore,
    target: u64,
    addr: String,
    client: Option<PeerClient<Channel>>,
}

type RpcErr<E = openraft::error::Infallible> = RPCError<u64, BasicNode, RaftError<u64, E>>;

impl PeerConnection {
    fn client(&mut self) -> Result<PeerClient<Channel>, Unreachable> {
        if let Some(c) = &self.client {
            return Ok(c.clone());
        }
        let ch =
            peer_channel(&self.tls, self.target, &self.addr).map_err(|e| Unreachable::new(&e))?;
        let c = peer_client(ch);
        self.client = Some(c.clone());
        Ok(c)
    }

    async fn call<Req, Resp, E>(
        &mut self,
        which: Rpc,
        req: &Req,
        option: &RPCOption,
    ) -> Result<Resp, RpcErr<E>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let payload = encode(req).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        self.call_encoded(which, payload, option).await
    }

    async fn call_encoded<Resp, E>(
        &mut self,
        which: Rpc,
        payload: Vec<u8>,
        option: &RPCOption,
    ) -> Result<Resp, RpcErr<E>>
    where
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let mut client = self.client().map_err(RPCError::Unreachable)?;
        let mut request = tonic::Request::new(RaftMessage {
            from: self.self_id,
            payload,
        });
        request.set_timeout(option.hard_ttl());
        let result = match which {
            Rpc::Append => client.append_entries(request).await,
            Rpc::Vote => client.vote(request).await,
            Rpc::Snapshot => client.install_snapshot(request).await,
        };
        let reply = match result {
            Ok(r) => r.into_inner(),
            Err(status) => {
                // Drop the channel so the next call reconnects.
                self.client = None;
                return Err(match status.code() {
                    tonic::Code::Unavailable | tonic::Code::DeadlineExceeded => {
                        RPCError::Unreachable(Unreachable::new(&status))
                    }
                    _ => RPCError::Network(NetworkError::new(&status)),
                });
            }
        };
        let decoded: Result<Resp, RaftError<u64, E>> =
            decode(&reply.payload).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        decoded.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

impl PeerConnection {
    /// A peer's reply carrying a vote whose term is too far above this
    /// validator's own is refused like such a request (`crate::peer_guard`):
    /// openraft would otherwise adopt the term from the reply.
    fn check_reply(&self, rpc: &'static str, vote: &Vote) -> Result<(), NetworkError> {
        let term = vote.leader_id().term;
        crate::peer_guard::check_term(term, self.log.vote_term()).map_err(|lie| {
            tracing::warn!(
                node = self.self_id,
                rpc,
                sender = self.target,
                %lie,
                "reply refused, nothing changed"
            );
            NetworkError::new(&lie)
        })
    }
}

#[derive(Debug, Clone, Copy)]
enum Rpc {
    Append,
    Vote,
    Snapshot,
}

impl RaftNetwork<TypeConfig> for PeerConnection {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<u64>, RpcErr> {
        #[cfg(feature = "fault-injection")]
        let rpc = crate::fault::fork_entries(self.target, rpc);
        let payload = encode(&rpc).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        if let Some(hint) = entries_hint(payload.len(), rpc.entries.len()) {
            tracing::debug!(
                target_node = self.target,
                bytes = payload.len(),
                entries = rpc.entries.len(),
                hint,
                "append batch over the peer message limit; openraft resends fewer entries"
            );
            return Err(RPCError::PayloadTooLarge(
                PayloadTooLarge::new_entries_hint(hint),
            ));
        }
        let reply: AppendEntriesResponse<u64> =
            self.call_encoded(Rpc::Append, payload, &option).await?;
        if let AppendEntriesResponse::HigherVote(v) = &reply {
            self.check_reply("AppendEntries", v)
                .map_err(RPCError::Network)?;
        }
        Ok(reply)
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<u64>, RpcErr<InstallSnapshotError>> {
        let reply: InstallSnapshotResponse<u64> = self.call(Rpc::Snapshot, &rpc, &option).await?;
        self.check_reply("InstallSnapshot", &reply.vote)
            .map_err(RPCError::Network)?;
        Ok(reply)
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<u64>,
        option: RPCOption,
    ) -> Result<VoteResponse<u64>, RpcErr> {
        let reply: VoteResponse<u64> = self.call(Rpc::Vote, &rpc, &option).await?;
        self.check_reply("Vote", &reply.vote)
            .map_err(RPCError::Network)?;
        Ok(reply)
    }

    fn backoff(&self) -> openraft::network::Backoff {
        // A dead peer is retried every 200 ms: quick enough to notice a
        // restart, slow enough not to spin.
        openraft::network::Backoff::new(std::iter::repeat(Duration::from_millis(200)))
    }
}

/// For an AppendEntries request of `bytes` encoded bytes carrying `entries`
/// entries: `None` if it fits in [`APPEND_PAYLOAD_BYTES_MAX`], else how many
/// entries to send instead (at least one, strictly fewer than `entries`).
///
/// # Panics
/// If a single entry does not fit: commands are bounded far below the
/// limit, so that is a broken invariant, not a peer fault.
pub fn entries_hint(bytes: usize, entries: usize) -> Option<u64> {
    if bytes <= APPEND_PAYLOAD_BYTES_MAX {
        return None;
    }
    assert!(
        entries > 1,
        "one Raft entry encodes to {bytes} bytes, over the {APPEND_PAYLOAD_BYTES_MAX}-byte append limit"
    );
    // Scale by the average entry size, with a margin for uneven entries.
    let fit = (entries as u128 * APPEND_PAYLOAD_BYTES_MAX as u128 * 9 / 10) / bytes as u128;
    let fit = u64::try_from(fit).unwrap_or(u64::MAX);
    Some(fit.clamp(1, entries as u64 - 1))
}

/// A peer client on `channel`, with the peer message limits both ways.
pub fn peer_client(channel: Channel) -> PeerClient<Channel> {
    PeerClient::new(channel)
        .max_decoding_message_size(PEER_MESSAGE_BYTES_MAX)
        .max_encoding_message_size(PEER_MESSAGE_BYTES_MAX)
}

/// Forwards a client write to the leader's peer service.
pub async fn forward_write(
    client: &PeerClient<Channel>,
    cmd: WriteCommand,
    timeout: Duration,
) -> Result<WriteReply, tonic::Status> {
    let mut req = tonic::Request::new(cmd);
    req.set_timeout(timeout);
    client
        .clone()
        .forward_write(req)
        .await
        .map(|r| r.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_append_batch_over_the_limit_is_split_and_one_that_fits_is_not() {
        assert_eq!(entries_hint(APPEND_PAYLOAD_BYTES_MAX, 256), None);
        assert_eq!(entries_hint(1, 1), None);
        // 256 entries of 64 KiB each: about 16 MiB, just over the limit.
        let hint = entries_hint(256 * 65_600, 256).expect("over");
        assert!((200..256).contains(&hint), "hint {hint}");
        assert!(hint as usize * 65_600 <= APPEND_PAYLOAD_BYTES_MAX);
        // Two 4 MiB commands and one giant: always at least one entry.
        assert_eq!(entries_hint(APPEND_PAYLOAD_BYTES_MAX * 10, 2), Some(1));
    }

    #[test]
    #[should_panic(expected = "over the")]
    fn a_single_entry_over_the_limit_is_a_broken_invariant() {
        let _ = entries_hint(APPEND_PAYLOAD_BYTES_MAX + 1, 1);
    }
}
