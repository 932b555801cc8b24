//! `senatus genesis init|verify|tls`: the ceremony, its verification, and
//! re-issuing a validator's TLS key.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use senatus_genesis::ceremony::{Ceremony, CeremonyParams, NodeAddrs};
use senatus_genesis::config::NodeConfig;
use senatus_genesis::keys::SecretKey;
use senatus_genesis::lock;
use senatus_genesis::registry::{Identity, Registry, Role};
use senatus_genesis::seal::Seal;
use senatus_genesis::tls::TlsMaterial;
use senatus_genesis::{Genesis, Key32, PolicyLayer};

/// Default validity of a re-issued TLS endorsement (`genesis tls --days`).
pub const TLS_VALIDITY_DAYS_DEFAULT: u64 = 365;
/// Longest validity `genesis tls --days` accepts: ten years.
pub const TLS_VALIDITY_DAYS_MAX: u64 = 3650;
const DAY_MS: u64 = 24 * 3600 * 1000;

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

/// Arguments of `senatus genesis tls`.
#[derive(Debug, clap::Args)]
pub struct TlsArgs {
    /// The validator's node.toml. Read from it: node_id, chain_id, genesis
    /// (the node must be a validator of it), identity_key (the key that
    /// endorses the new TLS key; it must be the one genesis lists), and
    /// where to write: tls_key and tls_cert (default tls.key and tls.crt
    /// beside node.toml).
    #[arg(long, value_name = "NODE_TOML")]
    pub config: PathBuf,
    /// Validity of the new endorsement, in days from now.
    #[arg(
        long,
        default_value_t = TLS_VALIDITY_DAYS_DEFAULT,
        value_parser = clap::value_parser!(u64).range(1..=TLS_VALIDITY_DAYS_MAX)
    )]
    pub days: u64,
}

/// Runs the ceremony and writes it.
pub fn init(args: &InitArgs) -> anyhow::Result<()> {
    // A local testnet on the bundled example gets a key for each example
    // identity, sealed in its registry; a layer of one's own brings its
    // registry with it.
    let mut clients = Vec::new();
    let policy = match &args.policy {
        Some(dir) => {
            let layer = PolicyLayer::load_dir(dir)
                .with_context(|| format!("loading policy layer {}", dir.display()))?;
            let published = layer.registry().published_keys();
            if let Some(id) = published.first() {
                bail!(
                    "policy layer {}: identity {:?} ({}) has key {}, a test-vector key whose \
                     secret is published: anyone could sign as it. Give it a key of its own \
                     (`senatus keygen`, then edit identities.toml)",
                    dir.display(),
                    id.name,
                    id.role,
                    id.key
                );
            }
            layer
        }
        None => {
            let (registry, keys) = example_identities(&mut rand::rngs::OsRng)?;
            clients = keys;
            PolicyLayer::example()
                .with_registry(&registry)
                .context("sealing the example identities")?
        }
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
    if !clients.is_empty() {
        let dir = args.out.join(CLIENTS_DIR);
        std::fs::create_dir(&dir).with_context(|| format!("creating {}", dir.display()))?;
        for (id, key) in &clients {
            key.write_client(&dir.join(format!("{}.key", id.name)), id.role)?;
        }
    }
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
    if !clients.is_empty() {
        println!(
            "  client keys    {}/{CLIENTS_DIR}/<name>.key (0600), sealed in the registry:",
            args.out.display()
        );
        for (id, _) in &clients {
            let scope = match (&id.tenant, id.actors.is_empty()) {
                (Some(t), false) => format!(" of tenant {t} as {}", id.actors.join(", ")),
                _ if !id.surfaces.is_empty() => format!(" for {}", id.surfaces.join(", ")),
                _ => String::new(),
            };
            println!("    {} {}{scope}: {}", id.role, id.name, id.key);
        }
    }
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

/// Directory of a local testnet's client keys, inside the ceremony's.
pub const CLIENTS_DIR: &str = "clients";

/// The example layer's identities for a local testnet, each with a fresh
/// key: agents `agent-1`..`agent-9`, `ops-agent-1` and `bench-agent` of
/// tenant acme, `agent-g1` of globex, and `operator-1`, `auditor-1`,
/// `broker-1` (payments, data, infra) and `broker-2` (payments, data).
pub fn example_identities<R: rand::RngCore + rand::CryptoRng>(
    rng: &mut R,
) -> anyhow::Result<(Registry, Vec<(Identity, SecretKey)>)> {
    let mut out = Vec::new();
    let mut add = |name: &str, role: Role, tenant: Option<&str>, surfaces: &[&str]| {
        let key = SecretKey::generate(rng);
        let id = Identity {
            name: name.to_string(),
            role,
            key: Key32(key.public()),
            tenant: tenant.map(str::to_string),
            actors: tenant.map(|_| vec![name.to_string()]).unwrap_or_default(),
            surfaces: surfaces.iter().map(|s| s.to_string()).collect(),
        };
        out.push((id, key));
    };
    for i in 1..=9 {
        add(&format!("agent-{i}"), Role::Agent, Some("acme"), &[]);
    }
    add("ops-agent-1", Role::Agent, Some("acme"), &[]);
    add("bench-agent", Role::Agent, Some("acme"), &[]);
    add("agent-g1", Role::Agent, Some("globex"), &[]);
    add("operator-1", Role::Operator, None, &[]);
    add("auditor-1", Role::Auditor, None, &[]);
    add(
        "broker-1",
        Role::Broker,
        None,
        &["payments", "data", "infra"],
    );
    add("broker-2", Role::Broker, None, &["payments", "data"]);
    let registry = Registry::new(out.iter().map(|(i, _)| i.clone()).collect())?;
    Ok((registry, out))
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

/// `senatus genesis tls`: a fresh TLS key for this validator, endorsed by
/// its identity key, written over the old key and certificate.
pub fn tls(args: &TlsArgs) -> anyhow::Result<()> {
    let cfg_shown = args.config.display();
    let config = NodeConfig::load(&args.config)?;
    let genesis = Genesis::load(&config.genesis).map_err(|e| {
        anyhow::anyhow!(
            "genesis {} (from {cfg_shown}): {e}",
            config.genesis.display()
        )
    })?;
    let g = &genesis.body;
    if config.chain_id != g.chain_id {
        bail!(
            "{cfg_shown} names chain {:?}, but genesis {} is chain {:?}",
            config.chain_id,
            config.genesis.display(),
            g.chain_id
        );
    }
    let node = config.node_id;
    let listed = g.validators.iter().find(|v| v.id == node).ok_or_else(|| {
        anyhow::anyhow!(
            "{cfg_shown} is node {node}, which is not a validator of genesis {}",
            config.genesis.display()
        )
    })?;
    let (identity, key_node) = SecretKey::read_identity(&config.identity_key)?;
    if key_node != node {
        bail!(
            "identity key {} is node {key_node}'s, but {cfg_shown} is node {node}",
            config.identity_key.display()
        );
    }
    let public = Key32(identity.public());
    if public != listed.identity_key {
        bail!(
            "identity key {} (public key {public}) is not node {node}'s identity key {} in genesis {}; refusing to issue a TLS certificate no validator would accept",
            config.identity_key.display(),
            listed.identity_key,
            config.genesis.display()
        );
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .context("system clock before 1970")?
        .as_millis();
    let now = u64::try_from(now).context("clock out of range")?;
    let expires = now.saturating_add(args.days.saturating_mul(DAY_MS));
    let material = TlsMaterial::issue(
        &identity,
        &g.chain_id,
        node,
        now,
        expires,
        &mut rand::rngs::OsRng,
    )?;
    // What every peer and client will check, checked before writing.
    material
        .presented
        .check(&genesis, now)
        .context("the new TLS certificate does not verify under genesis")?;
    write_tls_atomically(&material, &config.tls_key, &config.tls_cert)?;
    println!(
        "TLS key and certificate of node {node} (chain {}) re-issued",
        g.chain_id
    );
    println!("  TLS public key  {}", material.presented.tls_key);
    println!(
        "  valid           {} to {} ({} days; Unix ms {now} to {expires})",
        utc(now),
        utc(expires),
        args.days
    );
    println!(
        "  endorsed by     identity key {public} ({})",
        config.identity_key.display()
    );
    println!("  key             {} (0600)", config.tls_key.display());
    println!("  certificate     {}", config.tls_cert.display());
    println!("restart the node to use them (a running node keeps its current TLS key)");
    Ok(())
}

/// Writes the key and the certificate next to their final paths, reads
/// them back and checks they are what was issued, then renames each over
/// the old file: a reader sees an old file or a new one, never a torn one.
/// (The two renames are not one step: a crash between them leaves a key
/// and a certificate that do not match, which the node refuses at boot
/// naming both files; running this command again repairs it.)
fn write_tls_atomically(m: &TlsMaterial, key: &Path, cert: &Path) -> anyhow::Result<()> {
    let tmp = |p: &Path| -> anyhow::Result<PathBuf> {
        let name = p
            .file_name()
            .ok_or_else(|| anyhow::anyhow!("{} names no file", p.display()))?;
        let mut name = name.to_os_string();
        name.push(".new");
        Ok(p.with_file_name(name))
    };
    let (key_tmp, cert_tmp) = (tmp(key)?, tmp(cert)?);
    for t in [&key_tmp, &cert_tmp] {
        match std::fs::remove_file(t) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => bail!("removing a stale {}: {e}", t.display()),
        }
    }
    m.write(&key_tmp, &cert_tmp)?;
    std::fs::File::open(&cert_tmp)
        .and_then(|f| f.sync_all())
        .with_context(|| format!("syncing {}", cert_tmp.display()))?;
    let back = TlsMaterial::read(&key_tmp, &cert_tmp)?;
    if back.presented != m.presented || back.cert_der != m.cert_der {
        bail!(
            "{} and {} do not read back as written; nothing replaced",
            key_tmp.display(),
            cert_tmp.display()
        );
    }
    for (from, to) in [(&key_tmp, key), (&cert_tmp, cert)] {
        std::fs::rename(from, to)
            .with_context(|| format!("replacing {} with {}", to.display(), from.display()))?;
        if let Some(dir) = to.parent().filter(|d| !d.as_os_str().is_empty()) {
            // The rename itself durable (best effort: not every platform
            // syncs directories).
            let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
        }
    }
    Ok(())
}

/// `YYYY-MM-DD HH:MM:SS UTC` of Unix milliseconds (proleptic Gregorian;
/// days-to-civil after Howard Hinnant's `civil_from_days`).
fn utc(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rest) = ((secs / 86_400) as i64, secs % 86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates_are_civil_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        // 2000-02-29 12:34:56 UTC, a leap day.
        assert_eq!(utc(951_827_696_000), "2000-02-29 12:34:56 UTC");
        assert_eq!(utc(4_102_444_799_999), "2099-12-31 23:59:59 UTC");
    }
}
