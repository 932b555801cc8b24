//! `testnet.json`: what `up` started, so `down` stops exactly that.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

/// File name of the manifest inside a testnet directory.
pub const MANIFEST_FILE: &str = "testnet.json";
/// Format version written into every manifest.
pub const MANIFEST_VERSION: u32 = 1;
/// Largest manifest read (it holds a handful of lines per node).
const MANIFEST_BYTES_MAX: u64 = 1024 * 1024;

/// The processes of a running testnet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// [`MANIFEST_VERSION`].
    pub version: u32,
    /// The executable the nodes were started from.
    pub senatus_exe: PathBuf,
    /// One entry per started node, by id.
    pub nodes: Vec<ManifestNode>,
}

/// One started node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestNode {
    /// Validator id.
    pub id: u64,
    /// Process id of its newest start.
    pub pid: u32,
    /// Absolute path of its `node.toml`; `down` signals `pid` only while
    /// the process's command line still names this path.
    pub config: PathBuf,
    /// Peer gRPC address.
    pub peer: String,
    /// Public gRPC address.
    pub api: String,
    /// Metrics HTTP address.
    pub metrics: String,
    /// Its log file.
    pub log: PathBuf,
}

impl Manifest {
    /// `dir/testnet.json`.
    pub fn path(dir: &Path) -> PathBuf {
        dir.join(MANIFEST_FILE)
    }

    /// Reads the manifest of `dir`; `None` when there is none.
    pub fn load(dir: &Path) -> anyhow::Result<Option<Manifest>> {
        let path = Self::path(dir);
        let meta = match std::fs::metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        anyhow::ensure!(
            meta.len() <= MANIFEST_BYTES_MAX,
            "{} is {} bytes, over the {MANIFEST_BYTES_MAX}-byte limit",
            path.display(),
            meta.len()
        );
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let m: Manifest = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a testnet manifest", path.display()))?;
        anyhow::ensure!(
            m.version == MANIFEST_VERSION,
            "{} has version {}, this build reads version {MANIFEST_VERSION}",
            path.display(),
            m.version
        );
        Ok(Some(m))
    }

    /// Writes the manifest atomically (temporary file, then rename).
    pub fn save(&self, dir: &Path) -> anyhow::Result<()> {
        let path = Self::path(dir);
        let tmp = dir.join(format!("{MANIFEST_FILE}.tmp"));
        let text = serde_json::to_string_pretty(self).context("encoding manifest")?;
        std::fs::write(&tmp, text + "\n").with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
        Ok(())
    }

    /// Removes the manifest of `dir` if present.
    pub fn remove(dir: &Path) -> anyhow::Result<()> {
        let path = Self::path(dir);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e).with_context(|| format!("removing {}", path.display())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_other_versions() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(Manifest::load(dir.path()).expect("load"), None);
        let m = Manifest {
            version: MANIFEST_VERSION,
            senatus_exe: "/bin/senatus".into(),
            nodes: vec![ManifestNode {
                id: 1,
                pid: 42,
                config: "/x/node-1/node.toml".into(),
                peer: "127.0.0.1:1".into(),
                api: "127.0.0.1:2".into(),
                metrics: "127.0.0.1:3".into(),
                log: "/x/node-1/node.log".into(),
            }],
        };
        m.save(dir.path()).expect("save");
        assert_eq!(Manifest::load(dir.path()).expect("load"), Some(m.clone()));

        let mut other = m;
        other.version = MANIFEST_VERSION + 1;
        other.save(dir.path()).expect("save");
        let err = Manifest::load(dir.path()).expect_err("other version refused");
        assert!(err.to_string().contains("version 2"), "{err}");

        std::fs::write(Manifest::path(dir.path()), "{").expect("write");
        let err = Manifest::load(dir.path()).expect_err("garbage refused");
        assert!(err.to_string().contains("not a testnet manifest"), "{err}");

        Manifest::remove(dir.path()).expect("remove");
        Manifest::remove(dir.path()).expect("remove twice");
        assert_eq!(Manifest::load(dir.path()).expect("load"), None);
    }
}
