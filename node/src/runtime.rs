//! Starting a validator: storage, integrity check, Raft, and the three
//! servers (peer gRPC, public gRPC, metrics). Listeners and the shutdown
//! signal come from the caller, so tests run real nodes in-process on
//! `127.0.0.1:0`.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Arc;

use openraft::{BasicNode, Config, Raft, SnapshotPolicy};
use senatus_genesis::lock::BootMaterial;
use senatus_proto::v1::peer_server::PeerServer;
use senatus_proto::v1::senatus_server::SenatusServer;
use senatus_transport::{AcceptLimits, NodeTls};
use tokio::net::TcpListener;

use crate::cluster::Cluster;
use crate::metrics::Metrics;
use crate::network::{PEER_MESSAGE_BYTES_MAX, PeerNetwork, SNAPSHOT_CHUNK_BYTES};
use crate::service::api::ApiService;
use crate::service::peer::PeerService;
use crate::service::{API_MESSAGE_BYTES_MAX, Shared, WriteBounds};
use crate::store;

/// Tunables of a running node; defaults suit five validators on one host.
#[derive(Debug, Clone)]
pub struct NodeOptions {
    /// Raft heartbeat interval.
    pub heartbeat_ms: u64,
    /// Election timeout range (a new leader within about 2 s of a crash).
    pub election_timeout_ms: (u64, u64),
    /// Take a snapshot after this many log entries since the last one.
    pub snapshot_logs_since_last: u64,
    /// Log entries kept behind a snapshot (for slow followers).
    pub logs_kept_after_snapshot: u64,
    /// Write path bounds.
    pub bounds: WriteBounds,
    /// Bounds of the peer port's TLS listener (peers are counted by
    /// validator).
    pub peer_accept: AcceptLimits,
    /// Bounds of the public API's TLS listener (peers are counted by
    /// source address).
    pub api_accept: AcceptLimits,
}

impl NodeOptions {
    /// Options from the node's `[raft]` config; other bounds at defaults.
    pub fn from_config(r: &senatus_genesis::config::RaftConfig) -> Self {
        NodeOptions {
            heartbeat_ms: r.heartbeat_ms,
            election_timeout_ms: (r.election_timeout_min_ms, r.election_timeout_max_ms),
            snapshot_logs_since_last: r.snapshot_logs_since_last,
            logs_kept_after_snapshot: r.logs_kept_after_snapshot,
            bounds: WriteBounds::default(),
            // A validator opens a handful of channels to each peer (Raft,
            // signing, forwarding); 16 leaves room for reconnects.
            peer_accept: AcceptLimits {
                connections_max: 128,
                per_peer_max: 16,
                ..AcceptLimits::default()
            },
            api_accept: AcceptLimits::default(),
        }
    }
}

impl Default for NodeOptions {
    fn default() -> Self {
        NodeOptions::from_config(&senatus_genesis::config::RaftConfig::default())
    }
}

/// The three bound listeners of a node.
#[derive(Debug)]
pub struct Listeners {
    /// Peer gRPC.
    pub peer: TcpListener,
    /// Public gRPC.
    pub api: TcpListener,
    /// Metrics HTTP.
    pub metrics: TcpListener,
}

impl Listeners {
    /// Binds the addresses in the node's config.
    pub async fn bind(m: &BootMaterial) -> Result<Listeners, StartError> {
        let l = &m.config.listen;
        let bind = |addr: String| async move {
            TcpListener::bind(&addr)
                .await
                .map_err(|source| StartError::Bind { addr, source })
        };
        Ok(Listeners {
            peer: bind(l.peer.clone()).await?,
            api: bind(l.api.clone()).await?,
            metrics: bind(l.metrics.clone()).await?,
        })
    }
}

/// Why a node refused to start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The store could not be opened.
    #[error("cannot open store {path}: {source}")]
    Store {
        /// Database directory.
        path: String,
        /// Why.
        source: store::StoreError,
    },
    /// The stored ledger does not verify; the node refuses to serve.
    #[error("ledger integrity check failed, refusing to serve: {0}")]
    Integrity(crate::ledger::ChainError),
    /// The stored certificates could not be read.
    #[error("cannot read stored certificates in {path}: {source}")]
    Certificates {
        /// The certificates directory.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Raft could not start.
    #[error("raft failed to start: {0}")]
    Raft(String),
    /// The TLS material cannot be used now (expired, not yet valid) or the
    /// TLS configuration cannot be built.
    #[error("TLS: {0}")]
    Tls(String),
    /// A configured address could not be bound.
    #[error("cannot bind {addr}: {source}")]
    Bind {
        /// The address from the node's config.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
}

/// A running node: its shared state and a handle to stop it.
pub struct RunningNode {
    /// State shared with the services.
    pub shared: Shared,
    tasks: tokio::task::JoinSet<()>,
    stop: tokio::sync::watch::Sender<bool>,
}

impl std::fmt::Debug for RunningNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningNode")
            .field("id", &self.shared.id)
            .finish_non_exhaustive()
    }
}

impl RunningNode {
    /// Stops the servers and Raft and waits for them.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        let _ = self.shared.raft.shutdown().await;
        while self.tasks.join_next().await.is_some() {}
    }
}

/// Opens storage, verifies it, and only then binds the configured
/// addresses and starts Raft and the servers: a node whose stored ledger
/// does not verify never opens a port.
pub async fn start(
    material: &BootMaterial,
    options: NodeOptions,
) -> Result<RunningNode, StartError> {
    let id = material.lock.node_id.get();
    let genesis_digest = material.lock.genesis_digest;
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    material
        .tls
        .presented
        .check_validity(now_ms)
        .map_err(|e| StartError::Tls(format!("{}: {e}", material.config.tls_cert.display())))?;
    let tls = NodeTls::new(&material.tls, Arc::new(material.genesis.clone()));
    let peer_tls = tls
        .peer_server()
        .map_err(|e| StartError::Tls(e.to_string()))?;
    let api_tls = tls
        .api_server()
        .map_err(|e| StartError::Tls(e.to_string()))?;
    let db_path = material.config.data_dir.join("db");
    let (log, sm) = store::open(&db_path, genesis_digest).map_err(|source| StartError::Store {
        path: db_path.display().to_string(),
        source,
    })?;
    let head = sm.verify_integrity().map_err(StartError::Integrity)?;
    tracing::info!(node = id, ledger_index = head.index, ledger_hash = %head.hash, "ledger chain verified");
    let amend = crate::amend::AmendState::new(
        Arc::new(material.policy.clone()),
        senatus_genesis::Seal::genesis(&material.genesis),
        material.genesis.body.authority_key,
    )
    .map_err(|e| StartError::Raft(format!("amendment tally: {e}")))?
    .with_genesis(material.genesis.clone());
    sm.load_state(Some(amend))
        .map_err(|source| StartError::Store {
            path: db_path.display().to_string(),
            source,
        })?;
    let listeners = Listeners::bind(material).await?;

    let config = Config {
        cluster_name: material.genesis.body.chain_id.clone(),
        heartbeat_interval: options.heartbeat_ms,
        election_timeout_min: options.election_timeout_ms.0,
        election_timeout_max: options.election_timeout_ms.1,
        snapshot_policy: SnapshotPolicy::LogsSinceLast(options.snapshot_logs_since_last),
        max_in_snapshot_log_to_keep: options.logs_kept_after_snapshot,
        snapshot_max_chunk_size: SNAPSHOT_CHUNK_BYTES,
        max_payload_entries: 256,
        ..Config::default()
    }
    .validate()
    .map_err(|e| StartError::Raft(e.to_string()))?;

    let raft = Raft::new(
        id,
        Arc::new(config),
        PeerNetwork {
            self_id: id,
            tls: tls.clone(),
            log: log.clone(),
        },
        log.clone(),
        sm.clone(),
    )
    .await
    .map_err(|e| StartError::Raft(e.to_string()))?;

    let members: BTreeMap<u64, BasicNode> = material
        .genesis
        .body
        .validators
        .iter()
        .map(|v| (v.id.get(), BasicNode::new(v.peer_addr.clone())))
        .collect();
    // Every validator initializes with the genesis membership; openraft
    // accepts this only on an empty log, so restarts skip it.
    let initialized = raft
        .is_initialized()
        .await
        .map_err(|e| StartError::Raft(e.to_string()))?;
    if !initialized && let Err(e) = raft.initialize(members.clone()).await {
        tracing::debug!(node = id, error = %e, "initialize skipped");
    }

    let forward: BTreeMap<u64, _> = members
        .iter()
        .filter(|(k, _)| **k != id)
        .map(|(k, v)| {
            let ch = crate::network::peer_channel(&tls, *k, &v.addr)?;
            Ok((*k, crate::network::peer_client(ch)))
        })
        .collect::<Result<_, crate::network::ChannelError>>()
        .map_err(|e| StartError::Raft(format!("bad peer address: {e}")))?;
    let certs = Arc::new(
        crate::certs::Certificates::open(
            material.lock.node_id,
            &material.config.data_dir,
            &material.genesis,
        )
        .map_err(|source| StartError::Certificates {
            path: material
                .config
                .data_dir
                .join("certificates")
                .display()
                .to_string(),
            source,
        })?,
    );
    let breach = Arc::new(crate::breach::Breach::new(
        certs.clone(),
        material.identity.signing_key().clone(),
        forward.clone(),
    ));
    let cluster = Cluster {
        id,
        chain_id: material.genesis.body.chain_id.clone(),
        raft,
        sm,
        genesis_digest,
        forward: Arc::new(forward),
        certs,
        metrics: Arc::new(Metrics::default()),
        bounds: options.bounds,
        guard: Arc::new(crate::peer_guard::Guard::new(log)),
    };
    let gate = Arc::new(
        crate::gate::Gate::new(
            id,
            material,
            crate::gate::GateConfig::default(),
            cluster.sm.amendments().clone(),
            breach.clone(),
            &tls,
        )
        .map_err(|e| StartError::Raft(format!("decision gate: {e}")))?,
    );
    let shared = Shared {
        cluster: cluster.clone(),
        gate: gate.clone(),
        breach: breach.clone(),
    };

    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let mut tasks = tokio::task::JoinSet::new();

    let peer = PeerServer::new(PeerService(shared.clone()))
        .max_decoding_message_size(PEER_MESSAGE_BYTES_MAX)
        .max_encoding_message_size(PEER_MESSAGE_BYTES_MAX);
    let peer_incoming =
        senatus_transport::incoming(listeners.peer, peer_tls, options.peer_accept, "peer");
    let s = stopped();
    tasks.spawn(async move {
        let r = tonic::transport::Server::builder()
            .concurrency_limit_per_connection(256)
            .tcp_nodelay(true)
            .add_service(peer)
            .serve_with_incoming_shutdown(peer_incoming, s)
            .await;
        if let Err(e) = r {
            tracing::error!(error = %e, "peer server stopped");
        }
    });

    let api = SenatusServer::new(ApiService(shared.clone()))
        .max_decoding_message_size(API_MESSAGE_BYTES_MAX)
        .max_encoding_message_size(PEER_MESSAGE_BYTES_MAX);
    let api_incoming =
        senatus_transport::incoming(listeners.api, api_tls, options.api_accept, "api");
    let s = stopped();
    tasks.spawn(async move {
        let r = tonic::transport::Server::builder()
            .concurrency_limit_per_connection(256)
            .tcp_nodelay(true)
            .timeout(std::time::Duration::from_secs(30))
            .add_service(api)
            .serve_with_incoming_shutdown(api_incoming, s)
            .await;
        if let Err(e) = r {
            tracing::error!(error = %e, "api server stopped");
        }
    });

    let render_shared = shared.clone();
    let render = move || {
        let s = render_shared.clone();
        async move {
            let g = s.gauges().await;
            s.metrics.render(&g)
        }
    };
    let s = stopped();
    tasks.spawn(crate::metrics::serve(listeners.metrics, render, s));
    tasks.spawn(crate::amend::run_driver(
        cluster.clone(),
        gate.clone(),
        material.identity.signing_key().clone(),
        material.config.data_dir.clone(),
        Box::pin(stopped()),
    ));

    tasks.spawn(crate::witness::run(
        cluster.clone(),
        breach.clone(),
        gate.witnesses().clone(),
        Box::pin(stopped()),
    ));
    gate.spawn(cluster.clone(), stopped(), &mut tasks);
    tasks.spawn(crate::breach::run_detectors(
        cluster.clone(),
        breach,
        material.config.policy_dir.clone(),
        material.config.data_dir.clone(),
        Box::pin(stopped()),
    ));

    let members: BTreeSet<u64> = members.keys().copied().collect();
    tracing::info!(node = id, ?members, "validator started");
    Ok(RunningNode {
        shared,
        tasks,
        stop,
    })
}

/// Runs a node until `shutdown` resolves (the `senatus node` command).
pub async fn run_until(
    material: BootMaterial,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let options = NodeOptions::from_config(&material.config.raft);
    let node = start(&material, options).await?;
    println!(
        "node {} serving: peer {} api {} metrics {}",
        node.shared.id,
        material.config.listen.peer,
        material.config.listen.api,
        material.config.listen.metrics
    );
    shutdown.await;
    tracing::info!(node = node.shared.id, "shutting down");
    node.shutdown().await;
    Ok(())
}
