//! The genesis ceremony: keys, FROST shares, the signed genesis and one
//! folder per validator.
//!
//! Key generation is a trusted dealer for local testnets. [`DealtKeys`] is
//! the seam where a distributed key generation run by the validators will
//! plug in: the rest of the ceremony only needs the group key, each
//! validator's verifying share and each validator's key package.

use std::collections::BTreeMap;
use std::path::Path;

use rand::{CryptoRng, RngCore};

use crate::codec::Digest;
use crate::config::{ListenConfig, NodeConfig, RaftConfig};
use crate::document::{Genesis, GenesisBody, GenesisError, Key32, Validator};
use crate::ids::{NodeId, PolicyVersion};
use crate::keys::{FrostShare, KeyFileError, SecretKey};
use crate::policy::PolicyLayer;
use crate::tls::TlsMaterial;

/// Addresses for one validator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeAddrs {
    /// Peer gRPC, advertised in genesis and bound.
    pub peer: String,
    /// Public gRPC, advertised in genesis and bound.
    pub api: String,
    /// Metrics HTTP, bound (not in genesis).
    pub metrics: String,
}

/// What the ceremony is asked to make.
#[derive(Debug)]
pub struct CeremonyParams {
    /// Chain id.
    pub chain_id: String,
    /// FROST threshold; must equal the constitution's amendment threshold.
    pub threshold: u16,
    /// One entry per validator; ids are assigned 1, 2, … in this order.
    pub nodes: Vec<NodeAddrs>,
    /// The policy layer to seal.
    pub policy: PolicyLayer,
    /// Creation time, Unix milliseconds.
    pub created_at_ms: u64,
}

/// FROST key material for a validator set.
pub struct DealtKeys {
    /// Group verifying key.
    pub group_key: Key32,
    /// Each validator's key package.
    pub shares: BTreeMap<NodeId, frost_ed25519::keys::KeyPackage>,
    /// Each validator's verifying share.
    pub verifying_shares: BTreeMap<NodeId, Key32>,
}

impl std::fmt::Debug for DealtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DealtKeys(group={}, shares=<redacted>)", self.group_key)
    }
}

/// Why the ceremony stopped.
#[derive(Debug, thiserror::Error)]
pub enum CeremonyError {
    /// Parameters contradict each other or the constitution.
    #[error("ceremony parameters: {0}")]
    Params(String),
    /// FROST key generation failed.
    #[error("FROST key generation failed: {0}")]
    Frost(String),
    /// The resulting genesis is invalid.
    #[error(transparent)]
    Genesis(#[from] GenesisError),
    /// Writing a key file failed.
    #[error(transparent)]
    KeyFile(#[from] KeyFileError),
    /// The output directory exists and is not empty: nothing is overwritten.
    #[error("output directory {0} exists and is not empty; refusing to overwrite a ceremony")]
    OutputNotEmpty(String),
    /// Writing output failed.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
}

/// Deals a `threshold`-of-`ids.len()` FROST key with a trusted dealer.
pub fn trusted_dealer<R: RngCore + CryptoRng>(
    ids: &[NodeId],
    threshold: u16,
    rng: &mut R,
) -> Result<DealtKeys, CeremonyError> {
    let n = u16::try_from(ids.len())
        .map_err(|_| CeremonyError::Params(format!("{} validators is too many", ids.len())))?;
    let frost_ids: Vec<_> = ids.iter().map(|id| id.frost_identifier()).collect();
    let (secret_shares, public) = frost_ed25519::keys::generate_with_dealer(
        n,
        threshold,
        frost_ed25519::keys::IdentifierList::Custom(&frost_ids),
        rng,
    )
    .map_err(|e| CeremonyError::Frost(e.to_string()))?;
    let to32 = |v: Vec<u8>| -> Result<Key32, CeremonyError> {
        v.try_into()
            .map(Key32)
            .map_err(|_| CeremonyError::Frost("element is not 32 bytes".into()))
    };
    let group_key = to32(
        public
            .verifying_key()
            .serialize()
            .map_err(|e| CeremonyError::Frost(e.to_string()))?,
    )?;
    let mut shares = BTreeMap::new();
    let mut verifying_shares = BTreeMap::new();
    for &id in ids {
        let secret = secret_shares
            .get(&id.frost_identifier())
            .ok_or_else(|| CeremonyError::Frost(format!("no share dealt for node {id}")))?
            .clone();
        // Each participant verifies its share against the dealer's commitment.
        let kp = frost_ed25519::keys::KeyPackage::try_from(secret)
            .map_err(|e| CeremonyError::Frost(format!("share for node {id}: {e}")))?;
        let vs = to32(
            kp.verifying_share()
                .serialize()
                .map_err(|e| CeremonyError::Frost(e.to_string()))?,
        )?;
        verifying_shares.insert(id, vs);
        shares.insert(id, kp);
    }
    Ok(DealtKeys {
        group_key,
        shares,
        verifying_shares,
    })
}

/// One validator's secret and public material.
#[derive(Debug)]
pub struct NodeMaterial {
    /// Its id.
    pub id: NodeId,
    /// Identity key.
    pub identity: SecretKey,
    /// FROST share.
    pub frost: FrostShare,
    /// TLS key and certificate, endorsed by the identity key.
    pub tls: TlsMaterial,
    /// Addresses.
    pub addrs: NodeAddrs,
}

/// A completed ceremony, in memory.
#[derive(Debug)]
pub struct Ceremony {
    /// The signed genesis.
    pub genesis: Genesis,
    /// The founding authority key (keep offline after the ceremony).
    pub authority: SecretKey,
    /// Per-validator material, by id.
    pub nodes: Vec<NodeMaterial>,
    /// The sealed policy layer.
    pub policy: PolicyLayer,
}

impl Ceremony {
    /// The attestations of validators `ids` (with their identity keys) that
    /// their ledgers hold `entry_hash` at `ledger_index` and that `seal` is
    /// the next seal there (PROTOCOL 4.1). A testnet's dealer holds every
    /// identity key; a real cluster collects one from each validator.
    pub fn attest_seal(
        &self,
        seal: &crate::Seal,
        ids: &[u64],
        ledger_index: u64,
        entry_hash: crate::Digest,
    ) -> crate::seal::SealAttestations {
        let digest = seal.digest();
        crate::seal::SealAttestations::new(
            ledger_index,
            entry_hash,
            self.nodes
                .iter()
                .filter(|n| ids.contains(&n.id.get()))
                .map(|n| {
                    crate::seal::HeadAttestation::sign(
                        n.id,
                        n.identity.signing_key(),
                        &digest,
                        ledger_index,
                        &entry_hash,
                    )
                }),
        )
    }

    /// Runs the ceremony. Pure: randomness and time come from the caller.
    pub fn run<R: RngCore + CryptoRng>(
        params: CeremonyParams,
        rng: &mut R,
    ) -> Result<Ceremony, CeremonyError> {
        let c = params.policy.constitution();
        let n = params.nodes.len();
        let want_n = usize::from(c.amendment.validators);
        if n != want_n {
            return Err(CeremonyError::Params(format!(
                "{n} validators requested, but the policy's constitution says validators = {want_n}; \
                 use a policy layer whose constitution matches"
            )));
        }
        if u64::from(params.threshold) != u64::from(c.amendment.threshold) {
            return Err(CeremonyError::Params(format!(
                "threshold {} requested, but the policy's constitution says threshold = {}; \
                 use a policy layer whose constitution matches",
                params.threshold, c.amendment.threshold
            )));
        }
        let ids = (1..=n)
            .map(|i| NodeId::new(i as u64))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| CeremonyError::Params(e.to_string()))?;

        let authority = SecretKey::generate(rng);
        let identities: Vec<SecretKey> = ids.iter().map(|_| SecretKey::generate(rng)).collect();
        let dealt = trusted_dealer(&ids, params.threshold, rng)?;

        let validators = ids
            .iter()
            .zip(&identities)
            .zip(&params.nodes)
            .map(|((&id, key), addrs)| Validator {
                id,
                identity_key: Key32(key.public()),
                verifying_share: dealt.verifying_shares[&id],
                peer_addr: addrs.peer.clone(),
                api_addr: addrs.api.clone(),
            })
            .collect();
        let body = GenesisBody {
            chain_id: params.chain_id,
            created_at_ms: params.created_at_ms,
            authority_key: Key32(authority.public()),
            threshold: params.threshold,
            group_key: dealt.group_key,
            validators,
            policy_digest: params.policy.digest(),
            policy_version: PolicyVersion(c.version),
            epoch_length_decisions: c.epoch.length_decisions,
        };
        let genesis = Genesis::sign(body, authority.signing_key())?;

        let mut shares = dealt.shares;
        let chain_id = genesis.body.chain_id.clone();
        let issued = params.created_at_ms;
        let expires = issued.saturating_add(crate::tls::ENDORSEMENT_VALIDITY_MS_DEFAULT);
        let nodes = ids
            .into_iter()
            .zip(identities)
            .zip(params.nodes)
            .map(|((id, identity), addrs)| {
                let tls = TlsMaterial::issue(&identity, &chain_id, id, issued, expires, rng)
                    .map_err(|e| CeremonyError::Params(format!("TLS key of node {id}: {e}")))?;
                Ok(NodeMaterial {
                    id,
                    identity,
                    frost: FrostShare {
                        node_id: id,
                        key_package: shares.remove(&id).expect("a share was dealt for every id"),
                    },
                    tls,
                    addrs,
                })
            })
            .collect::<Result<_, CeremonyError>>()?;
        Ok(Ceremony {
            genesis,
            authority,
            nodes,
            policy: params.policy,
        })
    }

    /// The policy digest that was sealed.
    pub fn policy_digest(&self) -> Digest {
        self.genesis.body.policy_digest
    }

    /// Writes the ceremony to `dir` (which must be absent or empty):
    ///
    /// ```text
    /// dir/genesis.json         public
    /// dir/authority.key        founding authority secret (0600): move offline
    /// dir/policy/              the sealed policy layer
    /// dir/node-<id>/node.toml  config, relative paths
    /// dir/node-<id>/identity.key, frost-share.key, tls.key  (0600)
    /// dir/node-<id>/tls.crt    TLS certificate carrying the endorsement
    /// dir/node-<id>/genesis.json, policy/
    /// ```
    pub fn write(&self, dir: &Path) -> Result<(), CeremonyError> {
        let io = |path: &Path| {
            let path = path.display().to_string();
            move |source| CeremonyError::Io { path, source }
        };
        if dir.exists() {
            let mut entries = std::fs::read_dir(dir).map_err(io(dir))?;
            if entries.next().is_some() {
                return Err(CeremonyError::OutputNotEmpty(dir.display().to_string()));
            }
        }
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let genesis_json = self.genesis.to_json();
        let write = |path: &Path, text: &str| std::fs::write(path, text).map_err(io(path));
        write(&dir.join("genesis.json"), &genesis_json)?;
        self.authority.write(&dir.join("authority.key"), None)?;
        let policy_dir = dir.join("policy");
        self.policy
            .write_dir(&policy_dir)
            .map_err(io(&policy_dir))?;
        for node in &self.nodes {
            let nd = dir.join(format!("node-{}", node.id));
            std::fs::create_dir_all(&nd).map_err(io(&nd))?;
            write(&nd.join("genesis.json"), &genesis_json)?;
            let np = nd.join("policy");
            self.policy.write_dir(&np).map_err(io(&np))?;
            node.identity
                .write(&nd.join("identity.key"), Some(node.id))?;
            node.frost.write(&nd.join("frost-share.key"))?;
            node.tls
                .write(&nd.join("tls.key"), &nd.join("tls.crt"))
                .map_err(|e| CeremonyError::Params(e.to_string()))?;
            let config = NodeConfig {
                node_id: node.id,
                chain_id: self.genesis.body.chain_id.clone(),
                genesis: "genesis.json".into(),
                policy_dir: "policy".into(),
                data_dir: "data".into(),
                identity_key: "identity.key".into(),
                frost_share: "frost-share.key".into(),
                tls_key: "tls.key".into(),
                tls_cert: "tls.crt".into(),
                listen: ListenConfig {
                    peer: node.addrs.peer.clone(),
                    api: node.addrs.api.clone(),
                    metrics: node.addrs.metrics.clone(),
                },
                raft: RaftConfig::default(),
            };
            write(&nd.join("node.toml"), &config.to_toml())?;
        }
        Ok(())
    }
}
