//! The genesis lock: what a node checks before it opens any port, and again
//! whenever breach detection asks.
//!
//! The lock binds the verified genesis, the active seal, the policy layer the
//! node actually holds, its identity key and its FROST share. Each mismatch
//! is its own error naming the file and the expected and found values.

use std::path::{Path, PathBuf};

use crate::codec::{Digest, Encoder};
use crate::config::{ConfigError, NodeConfig};
use crate::document::{Genesis, GenesisError, Key32, Validator};
use crate::ids::NodeId;
use crate::keys::{FrostShare, KeyFileError, SecretKey};
use crate::policy::{PolicyError, PolicyLayer};
use crate::seal::Seal;

/// A verified binding of genesis, active seal, policy, identity and share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenesisLock {
    /// Digest of the verified genesis.
    pub genesis_digest: Digest,
    /// Digest of the active seal.
    pub seal_digest: Digest,
    /// The sealed (and held) policy digest.
    pub policy_digest: Digest,
    /// This node.
    pub node_id: NodeId,
    /// Its identity key.
    pub identity_key: Key32,
    /// Its FROST verifying share.
    pub verifying_share: Key32,
    /// SHA3-256 over all of the above (`docs/PROTOCOL.md`, lock digest).
    pub lock_digest: Digest,
}

/// Which check of the genesis lock failed.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// The config file is unreadable or malformed.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Genesis is unreadable, malformed or its signature fails.
    #[error(transparent)]
    Genesis(#[from] GenesisError),
    /// The config names another chain than genesis.
    #[error("config chain_id {config:?} does not match genesis chain_id {genesis:?}")]
    ChainId {
        /// From the config.
        config: String,
        /// From genesis.
        genesis: String,
    },
    /// The on-disk policy layer does not parse or validate.
    #[error("policy layer {path}: {source}")]
    Policy {
        /// The directory.
        path: String,
        /// Why.
        source: PolicyError,
    },
    /// The policy layer held differs from the sealed one.
    #[error("policy layer {path} has digest {found}, sealed digest is {expected}")]
    PolicyDigest {
        /// Directory (or "memory" for the in-memory copy).
        path: String,
        /// Sealed digest.
        expected: Digest,
        /// Digest of what is held.
        found: Digest,
    },
    /// A key file is unreadable or malformed.
    #[error(transparent)]
    KeyFile(#[from] KeyFileError),
    /// This node id is not in the active membership.
    #[error("node {0} is not a validator in the active membership")]
    NotAValidator(NodeId),
    /// A key file belongs to another node id.
    #[error("{path} is for node {found}, but this node is {expected}")]
    WrongNode {
        /// The key file.
        path: String,
        /// Node id from config.
        expected: NodeId,
        /// Node id the file names.
        found: NodeId,
    },
    /// The identity key is not the one genesis lists for this node.
    #[error("identity key {path} has public key {found}, genesis lists {expected} for node {node}")]
    IdentityKey {
        /// The key file.
        path: String,
        /// This node.
        node: NodeId,
        /// From genesis.
        expected: Key32,
        /// From the file.
        found: Key32,
    },
    /// The TLS key or certificate is missing, malformed, or does not
    /// speak for this validator.
    #[error("TLS material of node {node}: {source}")]
    Tls {
        /// This node.
        node: NodeId,
        /// Why (names the file and the keys).
        source: crate::tls::TlsIdentityError,
    },
    /// The FROST share does not belong to this group or this node.
    #[error("FROST share {path}: {what}: expected {expected}, found {found}")]
    FrostShare {
        /// The key file.
        path: String,
        /// Which property failed (group key, identifier, verifying share, threshold).
        what: &'static str,
        /// Expected value (hex or number).
        expected: String,
        /// Found value.
        found: String,
    },
}

/// What the lock is checked against, already loaded.
#[derive(Debug)]
pub struct LockInputs<'a> {
    /// Verified genesis.
    pub genesis: &'a Genesis,
    /// The newest seal this node has verified (seal 0 at first boot).
    pub active_seal: &'a Seal,
    /// The policy layer the node holds.
    pub policy: &'a PolicyLayer,
    /// Where it came from, for messages ("memory" for the live copy).
    pub policy_source: &'a str,
    /// This node.
    pub node_id: NodeId,
    /// Identity key and the file it came from.
    pub identity: (&'a SecretKey, &'a Path),
    /// FROST share and the file it came from.
    pub frost: (&'a FrostShare, &'a Path),
}

impl GenesisLock {
    /// Checks every binding; pure (no I/O). Breach detection re-runs this.
    pub fn verify(inputs: &LockInputs<'_>) -> Result<GenesisLock, LockError> {
        let seal = inputs.active_seal;
        let found = inputs.policy.digest();
        if found != seal.policy_digest {
            return Err(LockError::PolicyDigest {
                path: inputs.policy_source.to_string(),
                expected: seal.policy_digest,
                found,
            });
        }
        let me: &Validator = seal
            .membership
            .iter()
            .find(|v| v.id == inputs.node_id)
            .ok_or(LockError::NotAValidator(inputs.node_id))?;

        let (identity, identity_path) = inputs.identity;
        let public = Key32(identity.public());
        if public != me.identity_key {
            return Err(LockError::IdentityKey {
                path: identity_path.display().to_string(),
                node: inputs.node_id,
                expected: me.identity_key,
                found: public,
            });
        }

        let (share, share_path) = inputs.frost;
        let frost_err = |what, expected: String, found: String| LockError::FrostShare {
            path: share_path.display().to_string(),
            what,
            expected,
            found,
        };
        if share.node_id != inputs.node_id {
            return Err(LockError::WrongNode {
                path: share_path.display().to_string(),
                expected: inputs.node_id,
                found: share.node_id,
            });
        }
        let kp = &share.key_package;
        let group = key32(kp.verifying_key().serialize());
        if group != Some(seal.group_key) {
            return Err(frost_err(
                "group key",
                seal.group_key.to_string(),
                show(group),
            ));
        }
        let want_id = inputs.node_id.frost_identifier();
        if *kp.identifier() != want_id {
            return Err(frost_err(
                "identifier",
                hex::encode(want_id.serialize()),
                hex::encode(kp.identifier().serialize()),
            ));
        }
        if *kp.min_signers() != seal.threshold {
            return Err(frost_err(
                "threshold",
                seal.threshold.to_string(),
                kp.min_signers().to_string(),
            ));
        }
        let claimed = key32(kp.verifying_share().serialize());
        if claimed != Some(me.verifying_share) {
            return Err(frost_err(
                "verifying share",
                me.verifying_share.to_string(),
                show(claimed),
            ));
        }
        // The secret share must actually produce that verifying share;
        // otherwise the file pairs a public part with a foreign secret.
        let derived =
            key32(frost_ed25519::keys::VerifyingShare::from(*kp.signing_share()).serialize());
        if derived != Some(me.verifying_share) {
            return Err(frost_err(
                "signing share (does not match its verifying share)",
                me.verifying_share.to_string(),
                show(derived),
            ));
        }

        let genesis_digest = inputs.genesis.digest();
        let seal_digest = seal.digest();
        let lock_digest = lock_digest(
            &genesis_digest,
            &seal_digest,
            &seal.policy_digest,
            inputs.node_id,
            &public,
            &me.verifying_share,
        );
        Ok(GenesisLock {
            genesis_digest,
            seal_digest,
            policy_digest: seal.policy_digest,
            node_id: inputs.node_id,
            identity_key: public,
            verifying_share: me.verifying_share,
            lock_digest,
        })
    }
}

/// The lock digest (`docs/PROTOCOL.md`).
pub fn lock_digest(
    genesis: &Digest,
    seal: &Digest,
    policy: &Digest,
    node: NodeId,
    identity_key: &Key32,
    verifying_share: &Key32,
) -> Digest {
    let mut e = Encoder::new("genesis-lock", 1);
    e.digest(genesis)
        .digest(seal)
        .digest(policy)
        .u64(node.get())
        .fixed32(&identity_key.0)
        .fixed32(&verifying_share.0);
    e.digest_of()
}

fn key32(r: Result<Vec<u8>, frost_ed25519::Error>) -> Option<Key32> {
    r.ok().and_then(|v| v.try_into().ok()).map(Key32)
}

fn show(k: Option<Key32>) -> String {
    k.map_or_else(|| "<unencodable>".to_string(), |k| k.to_string())
}

/// Everything a booting node loads from its config, verified.
#[derive(Debug)]
pub struct BootMaterial {
    /// The parsed config (paths resolved).
    pub config: NodeConfig,
    /// Verified genesis.
    pub genesis: Genesis,
    /// The policy layer on disk.
    pub policy: PolicyLayer,
    /// Identity key.
    pub identity: SecretKey,
    /// FROST share.
    pub frost: FrostShare,
    /// The verified lock.
    pub lock: GenesisLock,
    /// TLS key and certificate; the endorsement verifies under this node's
    /// identity key (its validity window is checked by the node's clock).
    pub tls: crate::tls::TlsMaterial,
}

/// Loads a node's files and verifies the lock against seal 0 (first boot).
///
/// The node later re-verifies against its newest stored seal.
pub fn load_and_verify(config_path: &Path) -> Result<BootMaterial, LockError> {
    let config = NodeConfig::load(config_path)?;
    let genesis = Genesis::load(&config.genesis)?;
    if config.chain_id != genesis.body.chain_id {
        return Err(LockError::ChainId {
            config: config.chain_id.clone(),
            genesis: genesis.body.chain_id.clone(),
        });
    }
    let seal0 = Seal::genesis(&genesis);
    load_and_verify_with(config, genesis, &seal0)
}

/// Like [`load_and_verify`], against a given active seal.
pub fn load_and_verify_with(
    config: NodeConfig,
    genesis: Genesis,
    active_seal: &Seal,
) -> Result<BootMaterial, LockError> {
    let policy_path: PathBuf = config.policy_dir.clone();
    let policy = PolicyLayer::load_dir(&policy_path).map_err(|source| LockError::Policy {
        path: policy_path.display().to_string(),
        source,
    })?;
    let (identity, id_node) = SecretKey::read_identity(&config.identity_key)?;
    if id_node != config.node_id {
        return Err(LockError::WrongNode {
            path: config.identity_key.display().to_string(),
            expected: config.node_id,
            found: id_node,
        });
    }
    let frost = FrostShare::read(&config.frost_share)?;
    let source = policy_path.display().to_string();
    let lock = GenesisLock::verify(&LockInputs {
        genesis: &genesis,
        active_seal,
        policy: &policy,
        policy_source: &source,
        node_id: config.node_id,
        identity: (&identity, &config.identity_key),
        frost: (&frost, &config.frost_share),
    })?;
    let tls = load_tls(&config, &genesis)?;
    Ok(BootMaterial {
        config,
        genesis,
        policy,
        identity,
        frost,
        lock,
        tls,
    })
}

/// Reads the TLS key and certificate and checks that the certificate's
/// endorsement is this node's, signed by its identity key in genesis.
fn load_tls(config: &NodeConfig, genesis: &Genesis) -> Result<crate::tls::TlsMaterial, LockError> {
    use crate::tls::{TlsIdentityError, TlsMaterial};
    let node = config.node_id;
    let tls_err = |source| LockError::Tls { node, source };
    let tls = TlsMaterial::read(&config.tls_key, &config.tls_cert).map_err(|e| match e {
        TlsIdentityError::KeyFile(KeyFileError::Io { path, source })
            if source.kind() == std::io::ErrorKind::NotFound =>
        {
            tls_err(TlsIdentityError::File {
                path,
                message: "missing; `senatus genesis tls --config NODE_TOML` issues a TLS key and certificate from the identity key".into(),
            })
        }
        e => tls_err(e),
    })?;
    let cert = config.tls_cert.display().to_string();
    let claimed = tls.presented.endorsement.node_id;
    if claimed != node {
        return Err(tls_err(TlsIdentityError::File {
            path: cert,
            message: format!("endorses node {claimed}, but this node is {node}"),
        }));
    }
    tls.presented.check_endorsement(genesis).map_err(|e| {
        tls_err(TlsIdentityError::File {
            path: cert,
            message: e.to_string(),
        })
    })?;
    Ok(tls)
}
