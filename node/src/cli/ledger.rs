//! `senatus ledger export|verify|append` and `senatus status`: operator and
//! auditor tools over the public API.

use std::io::{BufRead as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use senatus_genesis::{Digest, Genesis, PolicyLayer};
use senatus_proto::v1 as pb;
use senatus_replica::{MemRecords, State};
use serde::{Deserialize, Serialize};

use crate::amend::AmendState;
use crate::cli::api::{
    ApiArgs, ApiCallFailed, KEY_ENV, api_client, api_client_pinned, call_auth, load_genesis,
    read_role_key,
};
use senatus_genesis::keys::SecretKey;
use senatus_genesis::registry::Role;

/// The roles that may read the ledger.
pub const READER_ROLES: [Role; 2] = [Role::Auditor, Role::Operator];
use crate::ledger::{ChainVerifier, EntryKind, LedgerEntry};
use crate::service::GET_LEDGER_ENTRIES_MAX;

/// `format` of the first line of an export file.
pub const EXPORT_FORMAT: &str = "senatus.ledger-export.v1";
/// Timeout of each API call these tools make.
pub const CLI_CALL_TIMEOUT_MS: u64 = 10_000;

/// `senatus ledger ...`
#[derive(Debug, clap::Subcommand)]
pub enum LedgerCommand {
    /// Export a node's ledger (genesis to head) to a JSON Lines file an
    /// auditor can verify offline: a header line, then one line per entry
    /// with its exact encoded bytes (docs/PROTOCOL.md, ledger).
    Export {
        /// Any validator, and the genesis its TLS certificate must verify
        /// under.
        #[command(flatten)]
        target: ApiArgs,
        /// File to write; refused if it exists.
        #[arg(long)]
        out: PathBuf,
        /// The caller's key file (auditor or operator, `senatus keygen`):
        /// ledger reads are signed (docs/PROTOCOL.md 10.2).
        #[arg(long, value_name = "KEY_FILE", env = KEY_ENV, hide_env_values = true)]
        key: Option<PathBuf>,
    },
    /// Verify a ledger from genesis to head: every entry's hash and its link
    /// to the one before, entry 1 linking to the genesis digest. Names the
    /// first bad index. With the policy layer genesis sealed, also runs
    /// every entry through the replicated core again (docs/PROTOCOL.md,
    /// section 19) and, with --api, compares the state digest the node
    /// reports at every index with the one computed here. Exits non-zero on
    /// any break or difference.
    Verify {
        /// The genesis to verify against (its signature is checked first).
        /// With --api the connection is TLS pinned to it too: the
        /// validator's certificate must verify under it.
        #[arg(long)]
        genesis: PathBuf,
        /// Verify a running node's ledger through its public API...
        #[arg(long, conflicts_with = "file", required_unless_present = "file")]
        api: Option<String>,
        /// ...or an exported file.
        #[arg(long)]
        file: Option<PathBuf>,
        /// The policy layer genesis sealed (version 1), to replay the state.
        /// Default: `policy/` beside the genesis file, used when its digest
        /// is the one genesis seals; without it only the chain is verified.
        #[arg(long)]
        policy: Option<PathBuf>,
        /// The caller's key file (auditor or operator, `senatus keygen`):
        /// with --api, ledger reads are signed (docs/PROTOCOL.md 10.2).
        #[arg(long, value_name = "KEY_FILE", env = KEY_ENV, hide_env_values = true)]
        key: Option<PathBuf>,
    },
    /// Append an operator record (free text) to the ledger through Raft.
    Append {
        /// Any validator (it forwards to the leader), and the genesis its
        /// TLS certificate must verify under.
        #[command(flatten)]
        target: ApiArgs,
        /// The record's text (at most 64 KiB).
        text: String,
        /// The operator's key file (`senatus keygen --role operator`): a
        /// record is signed (docs/PROTOCOL.md 10.2).
        #[arg(long, value_name = "KEY_FILE", env = KEY_ENV, hide_env_values = true)]
        key: Option<PathBuf>,
    },
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExportHeader {
    format: String,
    chain_id: String,
    pub(crate) genesis_digest: Digest,
    pub(crate) head_index: u64,
    pub(crate) head_hash: Digest,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExportLine {
    index: u64,
    kind: u8,
    hash: Digest,
    /// Hex of the exact encoded entry: hash pre-image, then the hash.
    entry: String,
}

fn req<T>(msg: T) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.set_timeout(Duration::from_millis(CLI_CALL_TIMEOUT_MS));
    r
}

/// A wire entry as the domain entry, with the state digest the node
/// reported after it (when it did).
fn entry_from_wire(e: pb::LedgerEntry) -> anyhow::Result<(LedgerEntry, Option<Digest>)> {
    let digest = |b: Vec<u8>, what: &str| -> anyhow::Result<Digest> {
        let a: [u8; 32] = b
            .try_into()
            .map_err(|_| anyhow::anyhow!("ledger index {}: {what} is not 32 bytes", e.index))?;
        Ok(Digest(a))
    };
    let code = u8::try_from(e.kind)
        .map_err(|_| anyhow::anyhow!("ledger index {}: kind {} out of range", e.index, e.kind))?;
    let state_digest = match e.state_digest.is_empty() {
        true => None,
        false => Some(digest(e.state_digest.clone(), "state_digest")?),
    };
    let entry = LedgerEntry {
        index: e.index,
        kind: EntryKind::from_code(code)
            .map_err(|err| anyhow::anyhow!("ledger index {}: {err}", e.index))?,
        prev_hash: digest(e.prev_hash.clone(), "prev_hash")?,
        hash: digest(e.hash.clone(), "hash")?,
        payload: e.payload,
    };
    Ok((entry, state_digest))
}

/// Streams a node's ledger page by page to `sink`, each entry with the
/// state digest the node reports after it, over a connection pinned to
/// `genesis`; returns the head it read. A failed call is an
/// [`ApiCallFailed`].
pub(crate) async fn fetch_ledger(
    api: &str,
    genesis: Arc<Genesis>,
    key: &SecretKey,
    mut sink: impl FnMut(LedgerEntry, Option<Digest>) -> anyhow::Result<()>,
) -> anyhow::Result<(pb::LedgerHeadReply, pb::StatusReply)> {
    let genesis_digest = genesis.digest();
    let mut c = api_client_pinned(api, genesis)?;
    let status = c
        .status(req(pb::StatusRequest {}))
        .await
        .map_err(|s| ApiCallFailed::error(&format!("status of {api}"), &s))?
        .into_inner();
    let head = c
        .ledger_head(req(pb::LedgerHeadRequest {}))
        .await
        .map_err(|s| ApiCallFailed::error(&format!("ledger head of {api}"), &s))?
        .into_inner();
    let mut next = 1u64;
    while next <= head.index {
        let page = c
            .get_ledger(req(pb::GetLedgerRequest {
                from: next,
                to: head.index,
                limit: GET_LEDGER_ENTRIES_MAX,
                auth: Some(call_auth(
                    key,
                    &genesis_digest,
                    "GetLedger",
                    &senatus_quorum::auth::get_ledger_body(
                        next,
                        head.index,
                        GET_LEDGER_ENTRIES_MAX,
                    ),
                )),
            }))
            .await
            .map_err(|s| ApiCallFailed::error(&format!("ledger entries from {next} on {api}"), &s))?
            .into_inner();
        if page.entries.is_empty() {
            bail!(
                "node {api} returned no entries from index {next} though its head is {}",
                head.index
            );
        }
        for e in page.entries {
            next = e.index + 1;
            let (entry, state_digest) = entry_from_wire(e)?;
            sink(entry, state_digest)?;
        }
    }
    Ok((head, status))
}

pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

/// Runs a ledger subcommand.
pub fn run(cmd: &LedgerCommand) -> anyhow::Result<()> {
    match cmd {
        LedgerCommand::Export { target, out, key } => {
            let genesis = load_genesis(target.genesis_path()?)?;
            let key = read_role_key(key.as_deref(), &READER_ROLES, "ledger export")?;
            export(&target.api, &genesis, &key, out)
        }
        LedgerCommand::Verify {
            genesis,
            api,
            file,
            policy,
            key,
        } => {
            let key = match api {
                Some(_) => Some(read_role_key(
                    key.as_deref(),
                    &READER_ROLES,
                    "ledger verify --api",
                )?),
                None => None,
            };
            verify(
                genesis,
                api.as_deref(),
                key.as_ref(),
                file.as_deref(),
                policy.as_deref(),
            )
        }
        LedgerCommand::Append { target, text, key } => {
            let api = &target.api;
            let genesis = target.genesis_path()?;
            let key = read_role_key(key.as_deref(), &[Role::Operator], "ledger append")?;
            let genesis_digest = load_genesis(genesis)?.digest();
            let payload = text.as_bytes().to_vec();
            let auth = call_auth(&key, &genesis_digest, "AppendRecord", &payload);
            let rt = runtime()?;
            rt.block_on(async {
                let mut c = api_client(api, genesis)?;
                let r = c
                    .append_record(req(pb::AppendRecordRequest {
                        payload,
                        auth: Some(auth),
                    }))
                    .await
                    .map_err(|s| ApiCallFailed::error(&format!("append failed on {api}"), &s))?
                    .into_inner();
                println!(
                    "appended ledger index {} hash {}",
                    r.index,
                    hex::encode(&r.hash)
                );
                Ok(())
            })
        }
    }
}

fn export(api: &str, genesis: &Arc<Genesis>, key: &SecretKey, out: &PathBuf) -> anyhow::Result<()> {
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(out)
        .with_context(|| format!("cannot create {} (refusing to overwrite)", out.display()))?;
    let mut w = std::io::BufWriter::new(file);
    let mut lines = Vec::new();
    let rt = runtime()?;
    let fetched = rt.block_on(fetch_ledger(api, genesis.clone(), key, |e, _| {
        lines.push(ExportLine {
            index: e.index,
            kind: e.kind.code(),
            hash: e.hash,
            entry: hex::encode(e.encode()),
        });
        Ok(())
    }));
    // A refused or failed read leaves no file behind: the one created
    // above is empty, and an empty export is not an export.
    if fetched.is_err() {
        let _ = std::fs::remove_file(out);
    }
    let (head, status) = fetched?;
    let digest = |b: &[u8]| -> anyhow::Result<Digest> {
        Ok(Digest(b.try_into().context("digest is not 32 bytes")?))
    };
    let header = ExportHeader {
        format: EXPORT_FORMAT.into(),
        chain_id: status.chain_id,
        genesis_digest: digest(&head.genesis_digest)?,
        head_index: head.index,
        head_hash: digest(&head.hash)?,
    };
    serde_json::to_writer(&mut w, &header)?;
    w.write_all(b"\n")?;
    for l in &lines {
        serde_json::to_writer(&mut w, l)?;
        w.write_all(b"\n")?;
    }
    w.flush()?;
    w.get_ref().sync_all()?;
    println!(
        "exported {} entries (head {} {}) to {}",
        lines.len(),
        header.head_index,
        header.head_hash,
        out.display()
    );
    Ok(())
}

/// Reads an export file written by `senatus ledger export`, checking its
/// header against `genesis_digest` and each line against the entry it
/// encodes, and streams the entries to `sink`; returns the header (whose
/// claimed head the caller compares with what the chain reached).
pub(crate) fn read_export(
    path: &Path,
    genesis_digest: Digest,
    mut sink: impl FnMut(LedgerEntry) -> anyhow::Result<()>,
) -> anyhow::Result<ExportHeader> {
    let f = std::fs::File::open(path).with_context(|| format!("open {}", path.display()))?;
    let mut lines = std::io::BufReader::new(f).lines();
    let first = lines.next().context("empty export file")??;
    let header: ExportHeader =
        serde_json::from_str(&first).context("export header is malformed")?;
    if header.format != EXPORT_FORMAT {
        bail!(
            "export format {:?}, expected {EXPORT_FORMAT:?}",
            header.format
        );
    }
    if header.genesis_digest != genesis_digest {
        bail!(
            "export is for genesis {}, not {genesis_digest}",
            header.genesis_digest
        );
    }
    for (n, line) in lines.enumerate() {
        let line = line?;
        let l: ExportLine = serde_json::from_str(&line)
            .with_context(|| format!("export line {} is malformed", n + 2))?;
        let bytes = hex::decode(&l.entry)
            .with_context(|| format!("ledger index {}: entry is not hex", l.index))?;
        let e = LedgerEntry::decode(&bytes)
            .map_err(|err| anyhow::anyhow!("ledger index {}: {err}", l.index))?;
        if e.index != l.index || e.hash != l.hash || e.kind.code() != l.kind {
            bail!(
                "ledger index {}: line fields disagree with the encoded entry",
                l.index
            );
        }
        sink(e)?;
    }
    Ok(header)
}

/// Runs a ledger through the replicated core again and compares the state
/// digest at every index with the one a node reported.
struct StateCheck {
    state: State,
    records: MemRecords,
    compared: u64,
}

impl StateCheck {
    /// Over the policy layer at `policy` (or `policy/` beside the genesis
    /// file): `None` when none is given and the default is absent or is not
    /// the layer genesis seals.
    fn new(
        genesis: &Genesis,
        genesis_path: &Path,
        policy: Option<&Path>,
    ) -> anyhow::Result<Option<Self>> {
        let layer = match policy {
            Some(dir) => {
                let layer = PolicyLayer::load_dir(dir)
                    .map_err(|e| anyhow::anyhow!("policy layer {}: {e}", dir.display()))?;
                if layer.digest() != genesis.body.policy_digest {
                    bail!(
                        "policy layer {} has digest {}, genesis seals {}",
                        dir.display(),
                        layer.digest(),
                        genesis.body.policy_digest
                    );
                }
                layer
            }
            None => {
                let dir = genesis_path
                    .parent()
                    .unwrap_or_else(|| Path::new("."))
                    .join("policy");
                match PolicyLayer::load_dir(&dir) {
                    Ok(l) if l.digest() == genesis.body.policy_digest => l,
                    _ => return Ok(None),
                }
            }
        };
        let amend = AmendState::new(
            Arc::new(layer),
            senatus_genesis::Seal::genesis(genesis),
            genesis.body.authority_key,
        )
        .map_err(|e| anyhow::anyhow!("amendment state over genesis: {e}"))?
        .with_genesis(genesis.clone());
        Ok(Some(StateCheck {
            state: State::new(genesis.digest(), Some(amend)),
            records: MemRecords::new(),
            compared: 0,
        }))
    }

    fn push(&mut self, e: &LedgerEntry, reported: Option<Digest>) -> anyhow::Result<()> {
        let effects = self
            .state
            .replay(&self.records, e)
            .map_err(|err| anyhow::anyhow!("replicated state: {err}"))?;
        self.records.absorb(&effects);
        if let Some(r) = reported {
            if r != effects.state_digest {
                bail!(
                    "ledger index {}: the node reports state digest {r}, replaying the ledger gives {}",
                    e.index,
                    effects.state_digest
                );
            }
            self.compared += 1;
        }
        Ok(())
    }
}

fn verify(
    genesis: &Path,
    api: Option<&str>,
    key: Option<&SecretKey>,
    file: Option<&Path>,
    policy: Option<&Path>,
) -> anyhow::Result<()> {
    let g = load_genesis(genesis)?;
    let gd = g.digest();
    let mut v = ChainVerifier::new(gd);
    let mut state = StateCheck::new(&g, genesis, policy)?;
    let mut count = 0u64;
    let claimed_head = match (api, file) {
        (Some(api), _) => {
            let rt = runtime()?;
            let key = key.ok_or_else(|| anyhow::anyhow!("ledger verify --api needs --key"))?;
            let (head, _) = rt.block_on(fetch_ledger(api, g.clone(), key, |e, reported| {
                count += 1;
                v.push(&e).map_err(|err| anyhow::anyhow!("{err}"))?;
                match &mut state {
                    Some(s) => {
                        let r = reported.ok_or_else(|| {
                            anyhow::anyhow!(
                                "ledger index {}: the node reports no state digest",
                                e.index
                            )
                        })?;
                        s.push(&e, Some(r))
                    }
                    None => Ok(()),
                }
            }))?;
            if head.genesis_digest != gd.0 {
                bail!(
                    "node {api} serves genesis {}, not {gd}",
                    hex::encode(&head.genesis_digest)
                );
            }
            (head.index, hex::encode(&head.hash))
        }
        (None, Some(path)) => {
            let header = read_export(path, gd, |e| {
                count += 1;
                v.push(&e).map_err(|err| anyhow::anyhow!("{err}"))?;
                match &mut state {
                    Some(s) => s.push(&e, None),
                    None => Ok(()),
                }
            })?;
            (header.head_index, header.head_hash.to_hex())
        }
        (None, None) => bail!("give --api or --file"),
    };
    let head = v.head();
    if head.index != claimed_head.0 || head.hash.to_hex() != claimed_head.1 {
        bail!(
            "chain ends at index {} hash {}, but the claimed head is index {} hash {}",
            head.index,
            head.hash,
            claimed_head.0,
            claimed_head.1
        );
    }
    println!(
        "ledger OK: {count} entries from genesis {gd} to head {} {}",
        head.index, head.hash
    );
    match &state {
        Some(s) if api.is_some() => println!(
            "state OK: every entry applies again; the node's state digest matches at all {} entries; state digest {}",
            s.compared,
            s.state.digest()
        ),
        Some(s) => println!(
            "state OK: every entry applies again; state digest {}",
            s.state.digest()
        ),
        None => {
            println!("state not replayed: no policy layer genesis seals beside it (give --policy)")
        }
    }
    Ok(())
}

/// `senatus status --api ADDR --genesis PATH`: one node's view of the
/// cluster.
pub fn status(target: &ApiArgs) -> anyhow::Result<()> {
    let api = &target.api;
    let genesis = target.genesis_path()?;
    let rt = runtime()?;
    rt.block_on(async {
        let mut c = api_client(api, genesis)?;
        let s = c
            .status(req(pb::StatusRequest {}))
            .await
            .map_err(|s| ApiCallFailed::error(&format!("status of {api}"), &s))?
            .into_inner();
        println!(
            "node {} ({}) chain {}: {} term {} leader {} commit {} applied {} ledger {} {} voters {:?}",
            s.node_id,
            api,
            s.chain_id,
            s.role,
            s.term,
            s.leader_id,
            s.commit_index,
            s.applied_index,
            s.ledger_index,
            hex::encode(&s.ledger_hash),
            s.voters
        );
        Ok(())
    })
}
