//! The validators of a ceremony directory and their configs.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use senatus_genesis::config::NodeConfig;

/// Most validator folders a testnet directory may hold.
const NODES_MAX: usize = 64;

/// One validator of a ceremony directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSpec {
    /// Validator id.
    pub id: u64,
    /// Absolute path of `node-<id>/node.toml`.
    pub config: PathBuf,
    /// `node-<id>/`.
    pub dir: PathBuf,
    /// Peer gRPC address.
    pub peer: String,
    /// Public gRPC address.
    pub api: String,
    /// Metrics HTTP address.
    pub metrics: String,
    /// `node-<id>/node.log`.
    pub log: PathBuf,
    /// The RocksDB directory (`<data_dir>/db`).
    pub db: PathBuf,
}

/// The validators of ceremony directory `dir` (`node-<id>/node.toml`),
/// sorted by id. Each config is parsed and validated.
pub fn discover(dir: &Path) -> anyhow::Result<Vec<NodeSpec>> {
    let dir = std::path::absolute(dir).with_context(|| format!("resolving {}", dir.display()))?;
    let mut out = Vec::new();
    let entries = std::fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("listing {}", dir.display()))?;
        let name = entry.file_name();
        let Some(id) = name
            .to_str()
            .and_then(|n| n.strip_prefix("node-"))
            .and_then(|n| n.parse::<u64>().ok())
        else {
            continue;
        };
        let node_dir = entry.path();
        let config = node_dir.join("node.toml");
        if !config.is_file() {
            continue;
        }
        let cfg = NodeConfig::load(&config).with_context(|| format!("node {id}"))?;
        anyhow::ensure!(
            cfg.node_id.get() == id,
            "{} says node_id {} but sits in folder node-{id}",
            config.display(),
            cfg.node_id
        );
        out.push(NodeSpec {
            id,
            log: node_dir.join("node.log"),
            db: cfg.data_dir.join("db"),
            dir: node_dir,
            config,
            peer: cfg.listen.peer,
            api: cfg.listen.api,
            metrics: cfg.listen.metrics,
        });
        anyhow::ensure!(
            out.len() <= NODES_MAX,
            "{} holds more than {NODES_MAX} node folders",
            dir.display()
        );
    }
    anyhow::ensure!(
        !out.is_empty(),
        "{} holds no node-<id>/node.toml (run `senatus genesis init --out {}` first)",
        dir.display(),
        dir.display()
    );
    out.sort_by_key(|n| n.id);
    Ok(out)
}

/// Overrides for the `[raft]` table of every `node.toml`; `None` keeps the
/// file's value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RaftOverrides {
    /// `raft.heartbeat_ms`.
    pub heartbeat_ms: Option<u64>,
    /// `raft.election_timeout_min_ms`.
    pub election_timeout_min_ms: Option<u64>,
    /// `raft.election_timeout_max_ms`.
    pub election_timeout_max_ms: Option<u64>,
    /// `raft.snapshot_logs_since_last`.
    pub snapshot_logs_since_last: Option<u64>,
    /// `raft.logs_kept_after_snapshot`.
    pub logs_kept_after_snapshot: Option<u64>,
}

impl RaftOverrides {
    /// True when nothing is overridden.
    pub fn is_empty(&self) -> bool {
        self == &RaftOverrides::default()
    }

    fn fields(&self) -> [(&'static str, Option<u64>); 5] {
        [
            ("heartbeat_ms", self.heartbeat_ms),
            ("election_timeout_min_ms", self.election_timeout_min_ms),
            ("election_timeout_max_ms", self.election_timeout_max_ms),
            ("snapshot_logs_since_last", self.snapshot_logs_since_last),
            ("logs_kept_after_snapshot", self.logs_kept_after_snapshot),
        ]
    }
}

/// Rewrites the `[raft]` table of the `node.toml` at `config` with
/// `overrides`, keeping every other key as written (relative paths stay
/// relative). The result is re-read with the node's own parser, so a
/// combination the node would refuse (e.g. heartbeat above half the
/// election timeout) is refused here and the file left unchanged.
pub fn patch_raft(config: &Path, overrides: &RaftOverrides) -> anyhow::Result<()> {
    if overrides.is_empty() {
        return Ok(());
    }
    let text =
        std::fs::read_to_string(config).with_context(|| format!("reading {}", config.display()))?;
    let mut doc: toml::Table =
        toml::from_str(&text).with_context(|| format!("parsing {}", config.display()))?;
    let raft = doc
        .entry("raft")
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    let toml::Value::Table(raft) = raft else {
        anyhow::bail!("{}: `raft` is not a table", config.display());
    };
    for (key, value) in overrides.fields() {
        if let Some(v) = value {
            let v = i64::try_from(v).with_context(|| format!("raft.{key} = {v} is too large"))?;
            raft.insert(key.to_string(), toml::Value::Integer(v));
        }
    }
    let patched = toml::to_string_pretty(&doc).context("encoding node.toml")?;
    // Validate a copy beside the original before replacing it.
    let tmp = config.with_extension("toml.patch");
    std::fs::write(&tmp, &patched).with_context(|| format!("writing {}", tmp.display()))?;
    if let Err(e) = NodeConfig::load(&tmp) {
        let _ = std::fs::remove_file(&tmp);
        anyhow::bail!("raft overrides refused for {}: {e}", config.display());
    }
    std::fs::rename(&tmp, config).with_context(|| format!("writing {}", config.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"node_id = 2
chain_id = "senatus-local"
genesis = "genesis.json"
policy_dir = "policy"
data_dir = "data"
identity_key = "identity.key"
frost_share = "frost-share.key"

[listen]
peer = "127.0.0.1:1"
api = "127.0.0.1:2"
metrics = "127.0.0.1:3"
"#;

    #[test]
    fn patches_raft_keeps_the_rest_and_refuses_invalid_combinations() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let node = tmp.path().join("node-2");
        std::fs::create_dir(&node).expect("mkdir");
        let path = node.join("node.toml");
        std::fs::write(&path, CONFIG).expect("write");

        let o = RaftOverrides {
            snapshot_logs_since_last: Some(50),
            logs_kept_after_snapshot: Some(10),
            ..RaftOverrides::default()
        };
        patch_raft(&path, &o).expect("patch");
        let cfg = NodeConfig::load(&path).expect("load");
        assert_eq!(cfg.raft.snapshot_logs_since_last, 50);
        assert_eq!(cfg.raft.logs_kept_after_snapshot, 10);
        assert_eq!(
            cfg.raft.heartbeat_ms,
            senatus_genesis::config::RaftConfig::default().heartbeat_ms,
            "untouched fields keep defaults"
        );
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(text.contains("data_dir = \"data\""), "{text}");

        let specs = discover(tmp.path()).expect("discover");
        assert_eq!(specs.len(), 1);
        assert_eq!(specs[0].id, 2);
        assert_eq!(specs[0].api, "127.0.0.1:2");
        assert_eq!(specs[0].db, node.join("data").join("db"));

        let before = std::fs::read_to_string(&path).expect("read");
        let bad = RaftOverrides {
            heartbeat_ms: Some(300),
            ..RaftOverrides::default()
        };
        let err = patch_raft(&path, &bad).expect_err("heartbeat above half the timeout");
        assert!(err.to_string().contains("heartbeat_ms 300"), "{err}");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), before);
        assert!(!node.join("node.toml.patch").exists());
    }

    #[test]
    fn discover_refuses_an_empty_directory() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let err = discover(tmp.path()).expect_err("empty");
        assert!(err.to_string().contains("genesis init"), "{err}");
    }
}
