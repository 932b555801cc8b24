//! A validator's configuration file (`node.toml`), written by the ceremony.
//!
//! Relative paths are resolved against the directory holding the config
//! file, so a node folder can be moved as a whole.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::ids::NodeId;

/// Largest config file read.
pub const CONFIG_BYTES_MAX: u64 = 64 * 1024;

/// `node.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// This validator's id in genesis.
    pub node_id: NodeId,
    /// The chain this node belongs to (must equal genesis `chain_id`).
    pub chain_id: String,
    /// Genesis document.
    pub genesis: PathBuf,
    /// The on-disk copy of the active policy layer.
    pub policy_dir: PathBuf,
    /// Where the node keeps its RocksDB and state.
    pub data_dir: PathBuf,
    /// Ed25519 identity key file.
    pub identity_key: PathBuf,
    /// FROST key package file.
    pub frost_share: PathBuf,
    /// TLS key file (0600): the key this validator speaks TLS with.
    #[serde(default = "default_tls_key")]
    pub tls_key: PathBuf,
    /// TLS certificate (PEM) carrying the identity key's endorsement of
    /// the TLS key (`senatus genesis tls` renews both).
    #[serde(default = "default_tls_cert")]
    pub tls_cert: PathBuf,
    /// Addresses to bind.
    pub listen: ListenConfig,
    /// Raft timing and log compaction; every field has a default.
    #[serde(default)]
    pub raft: RaftConfig,
}

fn default_tls_key() -> PathBuf {
    "tls.key".into()
}

fn default_tls_cert() -> PathBuf {
    "tls.crt".into()
}

/// Raft tunables (`[raft]` in node.toml). Defaults suit five validators on
/// one host or a LAN: a crashed leader is replaced within about 2 s.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RaftConfig {
    /// Leader heartbeat interval.
    pub heartbeat_ms: u64,
    /// Lower bound of the randomized election timeout.
    pub election_timeout_min_ms: u64,
    /// Upper bound of the randomized election timeout.
    pub election_timeout_max_ms: u64,
    /// Build a snapshot after this many log entries since the last one.
    pub snapshot_logs_since_last: u64,
    /// Log entries kept behind a snapshot for slow followers.
    pub logs_kept_after_snapshot: u64,
}

impl Default for RaftConfig {
    /// Timing chosen so a crashed leader is replaced well inside 2 s on a
    /// loaded two-core machine: a heartbeat every 50 ms, elections after
    /// 250-500 ms of silence (a split vote costs one more such round).
    fn default() -> Self {
        RaftConfig {
            heartbeat_ms: 50,
            election_timeout_min_ms: 250,
            election_timeout_max_ms: 500,
            snapshot_logs_since_last: 5_000,
            logs_kept_after_snapshot: 1_000,
        }
    }
}

impl RaftConfig {
    /// Rules between fields: heartbeats well inside the election timeout,
    /// a non-empty timeout range, a snapshot threshold of at least one.
    pub fn validate(&self) -> Result<(), String> {
        if self.heartbeat_ms == 0 {
            return Err("raft.heartbeat_ms must be at least 1".into());
        }
        if self.election_timeout_min_ms >= self.election_timeout_max_ms {
            return Err(format!(
                "raft.election_timeout_min_ms {} must be below election_timeout_max_ms {}",
                self.election_timeout_min_ms, self.election_timeout_max_ms
            ));
        }
        if self.heartbeat_ms.saturating_mul(2) > self.election_timeout_min_ms {
            return Err(format!(
                "raft.heartbeat_ms {} must be at most half of election_timeout_min_ms {}",
                self.heartbeat_ms, self.election_timeout_min_ms
            ));
        }
        if self.snapshot_logs_since_last == 0 {
            return Err("raft.snapshot_logs_since_last must be at least 1".into());
        }
        Ok(())
    }
}

/// Addresses a node binds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenConfig {
    /// Peer gRPC (Raft, signing).
    pub peer: String,
    /// Public gRPC (clients, brokers).
    pub api: String,
    /// Prometheus text metrics over HTTP.
    pub metrics: String,
}

/// Why a config file was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Could not read it.
    #[error("cannot read config {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// Over [`CONFIG_BYTES_MAX`].
    #[error("config {path} is {bytes} bytes, over the {CONFIG_BYTES_MAX}-byte limit")]
    TooLarge {
        /// The file.
        path: String,
        /// Its size.
        bytes: u64,
    },
    /// Not valid TOML for this schema (truncated, garbled, unknown keys).
    #[error("config {path} is malformed: {message}")]
    Malformed {
        /// The file.
        path: String,
        /// The parser's message, one line.
        message: String,
    },
}

impl NodeConfig {
    /// Reads and parses `path`; relative paths inside are resolved against
    /// its directory.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let shown = path.display().to_string();
        let io = |source| ConfigError::Io {
            path: shown.clone(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(io)?;
        if meta.len() > CONFIG_BYTES_MAX {
            return Err(ConfigError::TooLarge {
                path: shown,
                bytes: meta.len(),
            });
        }
        let text = std::fs::read_to_string(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::InvalidData => ConfigError::Malformed {
                path: shown.clone(),
                message: "not UTF-8".into(),
            },
            _ => io(e),
        })?;
        let mut cfg: NodeConfig = toml::from_str(&text).map_err(|e| ConfigError::Malformed {
            path: shown.clone(),
            message: e.message().replace('\n', " "),
        })?;
        cfg.raft
            .validate()
            .map_err(|message| ConfigError::Malformed {
                path: shown.clone(),
                message,
            })?;
        let base = path.parent().unwrap_or(Path::new("."));
        for p in [
            &mut cfg.genesis,
            &mut cfg.policy_dir,
            &mut cfg.data_dir,
            &mut cfg.identity_key,
            &mut cfg.frost_share,
            &mut cfg.tls_key,
            &mut cfg.tls_cert,
        ] {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        Ok(cfg)
    }

    /// TOML text.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("node config serializes")
    }
}
