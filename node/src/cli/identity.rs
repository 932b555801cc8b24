//! `senatus keygen` and `senatus agent add|remove|rotate-key`: client keys,
//! and the amendments that change the sealed identity registry.
//!
//! Identities change only by amendment (docs/PROTOCOL.md 2.1): each `agent`
//! command reads the active layer, changes its `identities.toml`, raises the
//! constitution's version by one, validates the result as every validator
//! will, and writes it as a new layer directory, ready for `senatus amend
//! propose` (or proposes it at once with --api and --proposer-key).

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use senatus_genesis::keys::SecretKey;
use senatus_genesis::policy::CONSTITUTION_FILE;
use senatus_genesis::registry::{Identity, Registry, Role};
use senatus_genesis::{Key32, PolicyLayer};

use crate::cli::api::GENESIS_ENV;

/// Arguments of `senatus keygen`.
#[derive(Debug, clap::Args)]
pub struct KeygenArgs {
    /// What the key is for: agent (signs Decide), operator (appends
    /// records, reads the ledger), auditor (reads, exports, replays the
    /// ledger) or broker (redeems tokens).
    #[arg(long, value_parser = parse_role)]
    pub role: Role,
    /// Key file to write (mode 0600); refused if it exists.
    #[arg(long)]
    pub out: PathBuf,
}

fn parse_role(s: &str) -> Result<Role, String> {
    Role::parse(s).ok_or_else(|| format!("{s:?} is not a role: agent, operator, auditor or broker"))
}

/// `senatus agent ...`
#[derive(Debug, clap::Subcommand)]
pub enum AgentCommand {
    /// Register an identity (an agent by default) in a new layer.
    Add {
        #[command(flatten)]
        change: ChangeArgs,
        /// The identity's unique name.
        #[arg(long)]
        name: String,
        /// Its role.
        #[arg(long, value_parser = parse_role, default_value = "agent")]
        role: Role,
        /// Its public key: 64 hex digits, or a key file from `senatus keygen`
        /// (only its public half is used).
        #[arg(long, value_name = "HEX_OR_KEY_FILE")]
        key: String,
        /// Agents: the tenant it acts for.
        #[arg(long)]
        tenant: Option<String>,
        /// Agents: an actor name it may use (repeatable; default its name).
        #[arg(long = "actor")]
        actors: Vec<String>,
        /// Brokers: a surface it may redeem for (repeatable).
        #[arg(long = "surface")]
        surfaces: Vec<String>,
    },
    /// Remove an identity in a new layer. Once the amendment is sealed its
    /// key is refused by every validator: requests it signed and had not
    /// yet committed get DENY `senatus.identity.unknown-key`.
    Remove {
        #[command(flatten)]
        change: ChangeArgs,
        /// The identity's name.
        #[arg(long)]
        name: String,
    },
    /// Give an identity a new key in a new layer; the old key is refused
    /// once the amendment is sealed.
    RotateKey {
        #[command(flatten)]
        change: ChangeArgs,
        /// The identity's name.
        #[arg(long)]
        name: String,
        /// The new public key: 64 hex digits or a key file.
        #[arg(long, value_name = "HEX_OR_KEY_FILE")]
        key: String,
    },
}

/// The layer to change, where to write the new one, and how to propose it.
#[derive(Debug, clap::Args)]
pub struct ChangeArgs {
    /// The active policy layer directory (e.g. the `policy/` beside
    /// genesis.json, or the last layer sealed).
    #[arg(long)]
    pub policy: PathBuf,
    /// Directory to write the new layer to; must not exist.
    #[arg(long)]
    pub out: PathBuf,
    /// Propose the new layer at once through this validator (host:port).
    #[arg(long, requires = "proposer_key")]
    pub api: Option<String>,
    /// The proposer's key (authority, validator identity, or a listed
    /// proposer), with --api.
    #[arg(long, requires = "api")]
    pub proposer_key: Option<PathBuf>,
    /// Why (recorded on the ledger), with --api.
    #[arg(long, default_value = "identity registry change")]
    pub justification: String,
    /// The chain's genesis.json, with --api.
    #[arg(long, value_name = "PATH", env = GENESIS_ENV, hide_env_values = true)]
    pub genesis: Option<PathBuf>,
}

/// `senatus keygen`.
pub fn keygen(a: &KeygenArgs) -> anyhow::Result<()> {
    if a.out.exists() {
        bail!(
            "{} exists; refusing to overwrite a key file",
            a.out.display()
        );
    }
    let key = SecretKey::generate(&mut rand::rngs::OsRng);
    key.write_client(&a.out, a.role)?;
    println!("{} key written to {} (0600)", a.role, a.out.display());
    println!("public key: {}", hex::encode(key.public()));
    Ok(())
}

/// A public key given as 64 hex digits or as a client key file.
fn public_key(text: &str) -> anyhow::Result<Key32> {
    if text.len() == 64
        && let Ok(bytes) = hex::decode(text)
    {
        let key: [u8; 32] = bytes.try_into().expect("64 hex digits are 32 bytes");
        return Ok(Key32(key));
    }
    let (key, _) = SecretKey::read_client(Path::new(text)).map_err(|e| {
        anyhow::anyhow!("--key {text:?} is neither 64 hex digits nor a readable key file: {e}")
    })?;
    Ok(Key32(key.public()))
}

/// `text` of a constitution with its top-level `version` raised by one.
fn bump_version(text: &str, from: u64) -> anyhow::Result<String> {
    let mut done = false;
    let mut out = String::with_capacity(text.len() + 1);
    for line in text.split_inclusive('\n') {
        let bare = line.trim_end();
        if !done
            && let Some(rest) = bare.strip_prefix("version")
            && let Some(value) = rest.trim_start().strip_prefix('=')
            && value.trim() == from.to_string()
        {
            out.push_str(&format!("version = {}", from + 1));
            out.push_str(&line[bare.len()..]);
            done = true;
            continue;
        }
        if bare.starts_with('[') && !done {
            bail!(
                "{CONSTITUTION_FILE}: no top-level `version = {from}` line before the first table"
            );
        }
        out.push_str(line);
    }
    anyhow::ensure!(done, "{CONSTITUTION_FILE}: no `version = {from}` line");
    Ok(out)
}

/// The layer `base` with `registry` and the next constitution version.
fn amended(base: &PolicyLayer, registry: &Registry) -> anyhow::Result<PolicyLayer> {
    let version = base.constitution().version;
    let text = std::str::from_utf8(
        base.files()
            .get(CONSTITUTION_FILE)
            .expect("a valid layer has a constitution"),
    )
    .expect("a valid layer is UTF-8");
    let mut files = base.files().clone();
    files.insert(
        CONSTITUTION_FILE.to_string(),
        bump_version(text, version)?.into_bytes(),
    );
    let bumped =
        PolicyLayer::from_files(files).context("the constitution with its next version")?;
    bumped
        .with_registry(registry)
        .context("the new identity registry")
}

/// Runs an `agent` subcommand.
pub fn run_agent(cmd: &AgentCommand) -> anyhow::Result<()> {
    let change = match cmd {
        AgentCommand::Add { change, .. }
        | AgentCommand::Remove { change, .. }
        | AgentCommand::RotateKey { change, .. } => change,
    };
    let base = PolicyLayer::load_dir(&change.policy)
        .with_context(|| format!("policy layer {}", change.policy.display()))?;
    if change.out.exists() {
        bail!(
            "--out {} exists; refusing to overwrite",
            change.out.display()
        );
    }
    let mut ids: Vec<Identity> = base.registry().identities().to_vec();
    let find = |ids: &[Identity], name: &str| {
        ids.iter().position(|i| i.name == name).ok_or_else(|| {
            anyhow::anyhow!(
                "no identity named {name:?} in {} (its registry has {})",
                change.policy.display(),
                ids.iter()
                    .map(|i| i.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
    };
    let what = match cmd {
        AgentCommand::Add {
            name,
            role,
            key,
            tenant,
            actors,
            surfaces,
            ..
        } => {
            let actors = if actors.is_empty() && *role == Role::Agent {
                vec![name.clone()]
            } else {
                actors.clone()
            };
            ids.push(Identity {
                name: name.clone(),
                role: *role,
                key: public_key(key)?,
                tenant: tenant.clone(),
                actors,
                surfaces: surfaces.clone(),
            });
            format!("adds {role} {name}")
        }
        AgentCommand::Remove { name, .. } => {
            let at = find(&ids, name)?;
            let gone = ids.remove(at);
            format!("removes {} {name} (key {})", gone.role, gone.key)
        }
        AgentCommand::RotateKey { name, key, .. } => {
            let at = find(&ids, name)?;
            let new = public_key(key)?;
            let old = std::mem::replace(&mut ids[at].key, new);
            format!("gives {name} key {new} in place of {old}")
        }
    };
    let registry = Registry::new(ids)?;
    let layer = amended(&base, &registry)?;
    layer
        .write_dir(&change.out)
        .with_context(|| format!("writing {}", change.out.display()))?;
    println!(
        "layer {} written to {}: version {} -> {}, {what}",
        layer.digest(),
        change.out.display(),
        base.constitution().version,
        layer.constitution().version
    );
    match (&change.api, &change.proposer_key) {
        (Some(api), Some(key)) => crate::cli::amend::propose(
            api,
            &change.out,
            &change.justification,
            key,
            crate::cli::api::require_genesis(change.genesis.as_deref())?,
        ),
        _ => {
            println!(
                "propose it: senatus amend propose --api HOST:PORT --policy {} --key PROPOSER_KEY \
                 --justification '...'",
                change.out.display()
            );
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_top_level_version_line_is_raised() {
        let text = "# c\nversion = 4\n\n[amendment]\nversion = 4\n";
        assert_eq!(
            bump_version(text, 4).expect("bumps"),
            "# c\nversion = 5\n\n[amendment]\nversion = 4\n"
        );
        assert!(bump_version("[a]\nversion = 4\n", 4).is_err());
        assert!(bump_version("version = 3\n", 4).is_err());
    }
}
