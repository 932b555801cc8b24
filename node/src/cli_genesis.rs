//! `senatus genesis init|verify`: the ceremony and its verification.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use senatus_genesis::ceremony::{Ceremony, CeremonyParams, NodeAddrs};
use senatus_genesis::lock;
use senatus_genesis::seal::Seal;
use senatus_genesis::{Genesis, PolicyLayer};

/// Arguments of `senatus genesis init`.
#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// Directory to create; must be absent or empty (nothing is overwritten).
    #[arg(long)]
    pub out: PathBuf,
    /// Number of validators. Must equal `validators` in the policy's
    /// constitution.
    #[arg(long, default_value_t = 5)]
    pub validators: u16,
    /// FROST threshold t (signers per token or seal). Must equal `threshold`
    /// in the policy's constitution.
    #[arg(long, default_value_t = 3)]
    pub threshold: u16,
    /// Chain id, 1-64 characters of [A-Za-z0-9._-].
    #[arg(long, default_value = "senatus-local")]
    pub chain_id: String,
    /// Policy layer directory to seal; defaults to the bundled example.
    #[arg(long)]
    pub policy: Option<PathBuf>,
    /// Host advertised and bound by every validator.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// First port: validator i gets peer = base+10(i-1), api = +1,
    /// metrics = +2. Without it, free ports are picked on the host.
    #[arg(long)]
    pub base_port: Option<u16>,
}

/// Arguments of `senatus genesis verify`.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// A genesis.json, a ceremony directory, a node directory or a node.toml.
    /// Several may be given; each is verified in turn.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
}

/// Runs the ceremony and writes it.
pub fn init(args: &InitArgs) -> anyhow::Result<()> {
    let policy = match &args.policy {
        Some(dir) => PolicyLayer::load_dir(dir)
            .with_context(|| format!("loading policy layer {}", dir.display()))?,
        None => PolicyLayer::example(),
    };
    let nodes = allocate_addrs(&args.host, args.validators, args.base_port)?;
    let created_at_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .context("system clock before 1970")?
        .as_millis();
    let params = CeremonyParams {
        chain_id: args.chain_id.clone(),
        threshold: args.threshold,
        nodes,
        policy,
        created_at_ms: u64::try_from(created_at_ms).context("clock out of range")?,
    };
    let ceremony = Ceremony::run(params, &mut rand::rngs::OsRng)?;
    ceremony.write(&args.out)?;
    let g = &ceremony.genesis.body;
    println!(
        "genesis written to {}: chain {} with {} validators, threshold {}",
        args.out.display(),
        g.chain_id,
        g.validators.len(),
        g.threshold
    );
    println!("  genesis digest {}", ceremony.genesis.digest());
    println!(
        "  policy digest  {} (version {})",
        g.policy_digest, g.policy_version
    );
    println!("  group key      {}", g.group_key);
    println!(
        "  authority key  {}/authority.key: move it offline, it is needed only to make a new genesis",
        args.out.display()
    );
    for v in &g.validators {
        println!(
            "  node {}: peer {} api {}  config {}/node-{}/node.toml",
            v.id,
            v.peer_addr,
            v.api_addr,
            args.out.display(),
            v.id
        );
    }
    Ok(())
}

fn allocate_addrs(host: &str, n: u16, base: Option<u16>) -> anyhow::Result<Vec<NodeAddrs>> {
    let mut out = Vec::with_capacity(usize::from(n));
    // Hold every probe listener until all are chosen so no port is picked
    // twice; they are released when this function returns. Another process
    // could take a port before the node binds it: the node then fails to
    // start, naming the address.
    let mut held = Vec::new();
    for i in 0..n {
        let ports: [u16; 3] = match base {
            Some(b) => {
                let p = u32::from(b) + 10 * u32::from(i);
                if p + 2 > u32::from(u16::MAX) {
                    bail!("--base-port {b} leaves no room for {n} validators");
                }
                let p = p as u16;
                [p, p + 1, p + 2]
            }
            None => {
                let mut ports = [0u16; 3];
                for port in &mut ports {
                    let l = TcpListener::bind((host, 0))
                        .with_context(|| format!("binding {host}:0 to find a free port"))?;
                    *port = l.local_addr()?.port();
                    held.push(l);
                }
                ports
            }
        };
        out.push(NodeAddrs {
            peer: format!("{host}:{}", ports[0]),
            api: format!("{host}:{}", ports[1]),
            metrics: format!("{host}:{}", ports[2]),
        });
    }
    Ok(out)
}

/// Verifies each path; prints a summary per path.
pub fn verify(args: &VerifyArgs) -> anyhow::Result<()> {
    let mut failed = 0usize;
    for path in &args.paths {
        match verify_one(path) {
            Ok(summary) => println!("{summary}"),
            Err(e) => {
                failed += 1;
                println!("FAILED {}: {e:#}", path.display());
            }
        }
    }
    if failed > 0 {
        bail!("{failed} of {} failed verification", args.paths.len());
    }
    Ok(())
}

fn verify_one(path: &Path) -> anyhow::Result<String> {
    let node_toml = if path.is_dir() && path.join("node.toml").is_file() {
        Some(path.join("node.toml"))
    } else if path.extension().is_some_and(|e| e == "toml") {
        Some(path.to_path_buf())
    } else {
        None
    };
    if let Some(cfg) = node_toml {
        let m = lock::load_and_verify(&cfg)?;
        return Ok(format!(
            "OK {}: node {} of chain {}; genesis {}; policy {} (version {}); lock {}",
            cfg.display(),
            m.lock.node_id,
            m.genesis.body.chain_id,
            m.lock.genesis_digest,
            m.lock.policy_digest,
            m.genesis.body.policy_version,
            m.lock.lock_digest
        ));
    }
    let (genesis_path, policy_dir) = if path.is_dir() {
        (path.join("genesis.json"), Some(path.join("policy")))
    } else {
        (path.to_path_buf(), path.parent().map(|p| p.join("policy")))
    };
    let genesis = Genesis::load(&genesis_path)?;
    let b = &genesis.body;
    let mut policy_line = String::from("policy layer not present beside it; digest not checked");
    if let Some(dir) = policy_dir.filter(|d| d.is_dir()) {
        let layer = PolicyLayer::load_dir(&dir)
            .with_context(|| format!("policy layer {}", dir.display()))?;
        if layer.digest() != b.policy_digest {
            bail!(
                "policy layer {} has digest {}, genesis seals {}",
                dir.display(),
                layer.digest(),
                b.policy_digest
            );
        }
        policy_line = format!("policy layer {} matches", dir.display());
    }
    let seal0 = Seal::genesis(&genesis);
    let mut s = format!(
        "OK {}: chain {}, {} validators, threshold {}\n  genesis digest {}\n  authority key  {}\n  group key      {}\n  policy digest  {} (version {}); {}\n  seal 0 digest  {}\n  epoch length   {} decisions",
        genesis_path.display(),
        b.chain_id,
        b.validators.len(),
        b.threshold,
        genesis.digest(),
        b.authority_key,
        b.group_key,
        b.policy_digest,
        b.policy_version,
        policy_line,
        seal0.digest(),
        b.epoch_length_decisions
    );
    for v in &b.validators {
        s.push_str(&format!(
            "\n  node {}: identity {} peer {} api {}",
            v.id, v.identity_key, v.peer_addr, v.api_addr
        ));
    }
    Ok(s)
}
