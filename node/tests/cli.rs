//! The `senatus` binary as an operator meets it: help texts, the ceremony,
//! boot refusals with one clear line, offline ledger verification.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use senatus_genesis::Digest;
use senatus_node::ledger::{EntryKind, LedgerEntry, LedgerHead};

fn senatus(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_senatus"))
        .args(args)
        .env_remove("SENATUS_LOG")
        .env_remove("SENATUS_GENESIS")
        .output()
        .expect("run senatus")
}

/// Runs `senatus` and kills it if it has not exited within `limit`: a
/// regression that let a refused node serve must fail the test, not hang it.
fn senatus_bounded(args: &[&str], limit: std::time::Duration) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_senatus"))
        .args(args)
        .env_remove("SENATUS_LOG")
        .env_remove("SENATUS_GENESIS")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn senatus");
    let started = std::time::Instant::now();
    loop {
        if child.try_wait().expect("try_wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "senatus {args:?} still running after {limit:?}; killed. stdout: {} stderr: {}",
                text(&out.stdout),
                text(&out.stderr)
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn ceremony(tmp: &Path) -> PathBuf {
    let dir = tmp.join("net");
    let out = senatus(&[
        "genesis",
        "init",
        "--out",
        dir.to_str().expect("utf-8 path"),
    ]);
    assert!(out.status.success(), "init failed: {}", text(&out.stderr));
    dir
}

#[test]
fn every_command_explains_itself() {
    for args in [
        vec!["--help"],
        vec!["genesis", "--help"],
        vec!["genesis", "init", "--help"],
        vec!["genesis", "verify", "--help"],
        vec!["genesis", "tls", "--help"],
        vec!["node", "--help"],
        vec!["ledger", "--help"],
        vec!["ledger", "export", "--help"],
        vec!["ledger", "verify", "--help"],
        vec!["ledger", "append", "--help"],
        vec!["status", "--help"],
        vec!["replay", "--help"],
        vec!["amend", "--help"],
        vec!["amend", "propose", "--help"],
        vec!["amend", "status", "--help"],
        vec!["seal", "--help"],
        vec!["seal", "chain", "--help"],
    ] {
        let out = senatus(&args);
        assert!(out.status.success(), "{args:?}");
        let help = text(&out.stdout);
        assert!(help.contains("Usage:"), "{args:?}: {help}");
        // More than a usage line: every command says what it does.
        assert!(
            help.lines().count() > 6,
            "{args:?} help is too thin: {help}"
        );
    }
    let node_help = text(&senatus(&["node", "--help"]).stdout);
    assert!(node_help.contains("genesis lock"), "{node_help}");
}

#[test]
fn ceremony_then_verify_then_boot_check() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = ceremony(tmp.path());
    let out = senatus(&["genesis", "verify", dir.to_str().expect("path")]);
    assert!(out.status.success(), "{}", text(&out.stdout));
    let summary = text(&out.stdout);
    assert!(summary.contains("5 validators, threshold 3"), "{summary}");
    assert!(summary.contains("matches"), "{summary}");
    for id in 1..=5 {
        let cfg = dir.join(format!("node-{id}/node.toml"));
        let out = senatus(&["node", "--config", cfg.to_str().expect("path"), "--check"]);
        assert!(out.status.success(), "node {id}: {}", text(&out.stderr));
        assert!(text(&out.stdout).contains(&format!("node {id} ")));
    }
    // A second ceremony into the same directory is refused, nothing lost.
    let before = std::fs::read(dir.join("genesis.json")).expect("read");
    let out = senatus(&["genesis", "init", "--out", dir.to_str().expect("path")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("refusing to overwrite"));
    assert_eq!(
        std::fs::read(dir.join("genesis.json")).expect("read"),
        before
    );
}

#[test]
fn tampered_policy_stops_boot_with_one_line_naming_file_and_digests() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = ceremony(tmp.path());
    let constitution = dir.join("node-3/policy/constitution.toml");
    let mut bytes = std::fs::read(&constitution).expect("read");
    bytes.extend_from_slice(b"# drift\n");
    std::fs::write(&constitution, bytes).expect("write");
    let cfg = dir.join("node-3/node.toml");
    // Without --check too: the lock is verified before any port opens.
    let out = senatus_bounded(
        &["node", "--config", cfg.to_str().expect("path")],
        std::time::Duration::from_secs(30),
    );
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert_eq!(err.lines().count(), 1, "one line, got: {err}");
    assert!(err.contains("genesis lock failed"), "{err}");
    assert!(err.contains("node-3/policy"), "{err}");
    assert!(err.contains("sealed digest is"), "{err}");
    assert!(
        text(&out.stdout).is_empty(),
        "nothing served: {}",
        text(&out.stdout)
    );
}

#[test]
fn genesis_verify_refuses_a_tampered_genesis_and_a_drifted_policy() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = ceremony(tmp.path());
    let genesis = dir.join("genesis.json");
    let original = std::fs::read_to_string(&genesis).expect("read");

    // The chain id changed after signing: the authority signature fails.
    let forged = original.replacen("senatus-local", "senatus-locaX", 1);
    assert_ne!(forged, original);
    std::fs::write(&genesis, &forged).expect("write");
    // Each refused path is one FAILED line on stdout; the count on stderr.
    let refused = |path: &Path, needles: &[&str]| {
        let out = senatus(&["genesis", "verify", path.to_str().expect("path")]);
        let (o, e) = (text(&out.stdout), text(&out.stderr));
        assert_eq!(out.status.code(), Some(2), "{o}{e}");
        assert_eq!(o.lines().count(), 1, "{o}");
        assert!(o.starts_with("FAILED "), "{o}");
        for n in needles {
            assert!(o.contains(n), "wanted {n:?}: {o}");
        }
        assert!(e.contains("1 of 1 failed verification"), "{e}");
    };
    refused(
        &genesis,
        &["genesis signature does not verify under authority key"],
    );

    // Truncated: malformed, not a panic.
    std::fs::write(&genesis, &original[..original.len() / 2]).expect("write");
    refused(&genesis, &["genesis.json"]);
    std::fs::write(&genesis, &original).expect("restore");

    // A node whose policy copy drifted: the line names the digests.
    let policy = dir.join("node-2/policy/schema.cedarschema");
    let mut bytes = std::fs::read(&policy).expect("read");
    bytes.extend_from_slice(b"\n// drift\n");
    std::fs::write(&policy, bytes).expect("write");
    refused(&dir.join("node-2"), &["node-2/policy", "sealed digest is"]);
    // The other nodes still verify.
    let out = senatus(&[
        "genesis",
        "verify",
        dir.join("node-1").to_str().expect("path"),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn genesis_init_honours_its_options_and_refuses_what_the_constitution_forbids() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("custom");
    let d = dir.to_str().expect("path");
    let out = senatus(&[
        "genesis",
        "init",
        "--out",
        d,
        "--chain-id",
        "acme-prod-1",
        "--host",
        "127.0.0.2",
        "--base-port",
        "47100",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let g: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("genesis.json")).expect("read"))
            .expect("json");
    assert_eq!(g["chain_id"], "acme-prod-1", "{g}");
    let validators = g["validators"].as_array().expect("validators");
    assert_eq!(validators.len(), 5);
    for (i, v) in validators.iter().enumerate() {
        let base = 47100 + 10 * i;
        assert_eq!(v["peer_addr"], format!("127.0.0.2:{base}"), "{v}");
        assert_eq!(v["api_addr"], format!("127.0.0.2:{}", base + 1), "{v}");
    }
    let cfg = std::fs::read_to_string(dir.join("node-3/node.toml")).expect("node.toml");
    assert!(cfg.contains("127.0.0.2:47122"), "{cfg}");

    // Free ports when no base is given: fifteen distinct loopback ports.
    let free = tmp.path().join("free");
    let out = senatus(&["genesis", "init", "--out", free.to_str().expect("path")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let g: serde_json::Value =
        serde_json::from_slice(&std::fs::read(free.join("genesis.json")).expect("read"))
            .expect("json");
    let mut addrs = std::collections::BTreeSet::new();
    for v in g["validators"].as_array().expect("validators") {
        for key in ["peer_addr", "api_addr"] {
            let a = v[key].as_str().expect("addr");
            assert!(a.starts_with("127.0.0.1:"), "{a}");
            assert!(addrs.insert(a.to_string()), "{a} used twice");
        }
    }
    assert_eq!(addrs.len(), 10);

    // The constitution is sealed: a ceremony cannot disagree with it.
    for (flag, value, needle) in [
        ("--validators", "4", "validators"),
        ("--threshold", "2", "threshold"),
    ] {
        let out_dir = tmp.path().join(format!("bad{flag}"));
        let out = senatus(&[
            "genesis",
            "init",
            "--out",
            out_dir.to_str().expect("path"),
            flag,
            value,
        ]);
        assert_eq!(out.status.code(), Some(2), "{flag} {value}");
        let err = text(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(needle) && err.contains(value), "{flag}: {err}");
        assert!(
            !out_dir.join("genesis.json").exists(),
            "{flag}: nothing written"
        );
    }
    let out = senatus(&[
        "genesis",
        "init",
        "--out",
        tmp.path().join("badid").to_str().expect("path"),
        "--chain-id",
        "no spaces allowed",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("chain"), "{}", text(&out.stderr));
}

#[test]
fn garbled_config_and_missing_files_are_one_line_errors() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = ceremony(tmp.path());
    let cfg = dir.join("node-1/node.toml");
    std::fs::write(&cfg, "node_id = \"one\"\n").expect("write");
    let out = senatus(&["node", "--config", cfg.to_str().expect("path"), "--check"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("node.toml is malformed"), "{err}");

    let out = senatus(&["node", "--config", "/nonexistent/node.toml", "--check"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("cannot read config /nonexistent/node.toml"));
}

fn write_export(path: &Path, genesis_digest: Digest, entries: &[LedgerEntry]) {
    let head = entries
        .last()
        .map_or(LedgerHead::genesis(genesis_digest), |e| e.head());
    let mut s = serde_json::json!({
        "format": "senatus.ledger-export.v1",
        "chain_id": "senatus-local",
        "genesis_digest": genesis_digest.to_hex(),
        "head_index": head.index,
        "head_hash": head.hash.to_hex(),
    })
    .to_string();
    s.push('\n');
    for e in entries {
        s.push_str(
            &serde_json::json!({
                "index": e.index,
                "kind": e.kind.code(),
                "hash": e.hash.to_hex(),
                "entry": hex::encode(e.encode()),
            })
            .to_string(),
        );
        s.push('\n');
    }
    std::fs::write(path, s).expect("write export");
}

#[test]
fn offline_ledger_verify_names_the_first_bad_index() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = ceremony(tmp.path());
    let genesis_path = dir.join("genesis.json");
    let genesis = senatus_genesis::Genesis::load(&genesis_path).expect("genesis");
    let mut head = LedgerHead::genesis(genesis.digest());
    let mut entries = Vec::new();
    for i in 0..5u8 {
        let e = LedgerEntry::next(&head, EntryKind::Record, vec![i; 10]);
        head = e.head();
        entries.push(e);
    }
    let good = tmp.path().join("good.jsonl");
    write_export(&good, genesis.digest(), &entries);
    let g = genesis_path.to_str().expect("path");
    let out = senatus(&[
        "ledger",
        "verify",
        "--genesis",
        g,
        "--file",
        good.to_str().expect("p"),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("ledger OK: 5 entries"));

    // Entry 3's payload changed after hashing.
    let mut bad_entries = entries.clone();
    bad_entries[2].payload[0] ^= 1;
    let bad = tmp.path().join("bad.jsonl");
    write_export(&bad, genesis.digest(), &bad_entries);
    let out = senatus(&[
        "ledger",
        "verify",
        "--genesis",
        g,
        "--file",
        bad.to_str().expect("p"),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("ledger index 3"),
        "{}",
        text(&out.stderr)
    );

    // A ledger from another genesis.
    let other = tmp.path().join("other.jsonl");
    write_export(&other, senatus_genesis::sha3(b"another chain"), &entries);
    let out = senatus(&[
        "ledger",
        "verify",
        "--genesis",
        g,
        "--file",
        other.to_str().expect("p"),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("export is for genesis"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn ledger_tools_fail_closed_when_the_node_is_unreachable() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = ceremony(tmp.path());
    // Bind-and-drop gives a loopback port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let api = format!("127.0.0.1:{port}");
    let g = dir.join("genesis.json");
    let operator = dir.join("clients/operator-1.key");
    let auditor = dir.join("clients/auditor-1.key");
    let out = senatus(&[
        "ledger",
        "append",
        "--key",
        operator.to_str().expect("p"),
        "--api",
        &api,
        "--genesis",
        g.to_str().expect("p"),
        "hello",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("append failed"),
        "{}",
        text(&out.stderr)
    );
    let out = senatus(&[
        "ledger",
        "verify",
        "--genesis",
        g.to_str().expect("p"),
        "--key",
        auditor.to_str().expect("p"),
        "--api",
        &api,
    ]);
    assert_eq!(out.status.code(), Some(2));
    // Without a key, nothing is attempted: the rule is named.
    let out = senatus(&[
        "ledger",
        "verify",
        "--genesis",
        g.to_str().expect("p"),
        "--api",
        &api,
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("registered auditor or operator key: pass --key"),
        "{}",
        text(&out.stderr)
    );
    // A key made for another role is refused before any call, naming it.
    let out = senatus(&[
        "ledger",
        "export",
        "--genesis",
        g.to_str().expect("p"),
        "--key",
        dir.join("clients/agent-7.key").to_str().expect("p"),
        "--api",
        &api,
        "--out",
        tmp.path().join("x.jsonl").to_str().expect("p"),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("was made for role agent; ledger export needs role auditor or operator"),
        "{err}"
    );
}

#[test]
fn commands_that_reach_a_validator_need_genesis_and_say_so_in_one_line() {
    // Nothing listens there, and nothing is attempted: the missing genesis
    // is refused before any connection.
    let api = "127.0.0.1:9";
    for args in [
        vec!["status", "--api", api],
        vec!["ledger", "append", "--api", api, "x"],
        vec!["ledger", "export", "--api", api, "--out", "/nonexistent/x"],
        vec!["amend", "status", "--api", api],
        vec!["seal", "chain", "--api", api],
        vec!["certificates", "list", "--api", api],
        vec![
            "decide",
            "--api",
            api,
            "--surface",
            "payments",
            "--action",
            "transfer",
            "--actor",
            "agent-7",
            "--tenant",
            "acme",
        ],
        vec![
            "broker",
            "fetch-chain",
            "--api",
            api,
            "--out",
            "/nonexistent/b",
        ],
    ] {
        let out = senatus(&args);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(
            err.trim_end().lines().count(),
            1,
            "{args:?}: one line: {err}"
        );
        assert!(
            err.contains("TLS pinned to genesis")
                && err.contains("--genesis")
                && err.contains("SENATUS_GENESIS"),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn genesis_tls_reissues_a_validators_tls_key_from_its_identity_key() {
    use senatus_genesis::tls::TlsMaterial;
    use std::os::unix::fs::PermissionsExt as _;

    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = ceremony(tmp.path());
    let node = dir.join("node-2");
    let config = node.join("node.toml");
    let cfg = config.to_str().expect("p");
    let before =
        TlsMaterial::read(&node.join("tls.key"), &node.join("tls.crt")).expect("ceremony TLS");

    let out = senatus(&["genesis", "tls", "--config", cfg, "--days", "30"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let after = TlsMaterial::read(&node.join("tls.key"), &node.join("tls.crt")).expect("new TLS");
    assert_ne!(
        after.presented.tls_key, before.presented.tls_key,
        "a fresh TLS key"
    );
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(&after.presented.tls_key.to_string()),
        "prints the new TLS public key: {stdout}"
    );
    assert!(stdout.contains("30 days"), "{stdout}");
    let e = &after.presented.endorsement;
    assert_eq!(e.node_id.get(), 2);
    assert_eq!(e.expires_at_ms - e.issued_at_ms, 30 * 24 * 3600 * 1000);
    let genesis = senatus_genesis::Genesis::load(&dir.join("genesis.json")).expect("genesis");
    assert_eq!(
        after
            .presented
            .check(&genesis, e.issued_at_ms)
            .expect("verifies under genesis")
            .get(),
        2
    );
    let mode = std::fs::metadata(node.join("tls.key"))
        .expect("key")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "key file mode {mode:o}");
    assert!(!node.join("tls.key.new").exists() && !node.join("tls.crt.new").exists());
    // The node's boot check accepts it.
    let out = senatus(&["node", "--config", cfg, "--check"]);
    assert!(out.status.success(), "{}", text(&out.stderr));

    // An identity key for node 2 that genesis does not list: refused,
    // naming the file, and nothing is replaced.
    let stranger = senatus_genesis::keys::SecretKey::generate(&mut rand::rngs::OsRng);
    std::fs::remove_file(node.join("identity.key")).expect("rm");
    stranger
        .write(
            &node.join("identity.key"),
            Some(senatus_genesis::NodeId::new(2).expect("id")),
        )
        .expect("write key");
    let out = senatus(&["genesis", "tls", "--config", cfg]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("identity.key") && err.contains("is not node 2's identity key"),
        "{err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    // Another validator's identity key in its place: refused too.
    std::fs::copy(dir.join("node-3/identity.key"), node.join("identity.key")).expect("copy");
    let out = senatus(&["genesis", "tls", "--config", cfg]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("identity.key") && err.contains("node 3"),
        "{err}"
    );
    let kept = TlsMaterial::read(&node.join("tls.key"), &node.join("tls.crt")).expect("kept");
    assert_eq!(kept.presented, after.presented, "nothing replaced");

    // Out-of-range validity is refused by the parser.
    let out = senatus(&["genesis", "tls", "--config", cfg, "--days", "0"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
}

#[test]
fn keygen_and_agent_commands_build_amended_layers_naming_what_changed() {
    use senatus_genesis::PolicyLayer;
    use senatus_genesis::registry::Role;
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = ceremony(tmp.path());
    let p = |x: &Path| x.to_str().expect("utf-8").to_string();
    let key = tmp.path().join("agent-10.key");
    let out = senatus(&["keygen", "--role", "agent", "--out", &p(&key)]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let public = text(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("public key: ").map(str::to_string))
        .expect("prints the public key");
    // Never over an existing key file.
    let again = senatus(&["keygen", "--role", "agent", "--out", &p(&key)]);
    assert_eq!(again.status.code(), Some(2));
    assert!(text(&again.stderr).contains("refusing to overwrite"));
    let bad_role = senatus(&[
        "keygen",
        "--role",
        "root",
        "--out",
        &p(&tmp.path().join("x")),
    ]);
    assert_eq!(bad_role.status.code(), Some(2));

    let v1 = dir.join("policy");
    let v2 = tmp.path().join("v2");
    let out = senatus(&[
        "agent",
        "add",
        "--policy",
        &p(&v1),
        "--out",
        &p(&v2),
        "--name",
        "agent-10",
        "--key",
        &p(&key),
        "--tenant",
        "acme",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("version 1 -> 2, adds agent agent-10"),
        "{}",
        text(&out.stdout)
    );
    let layer = PolicyLayer::load_dir(&v2).expect("a valid layer");
    let added = layer.registry().by_name("agent-10").expect("registered");
    assert_eq!(
        (added.role, added.key.to_string()),
        (Role::Agent, public.clone())
    );
    assert_eq!(added.actors, ["agent-10"], "its own name by default");
    assert_eq!(layer.constitution().version, 2);

    // Rotate its key, then remove another agent; each names the rule it
    // would break otherwise.
    let v3 = tmp.path().join("v3");
    let fresh = "ab".repeat(16);
    let rotated_key = senatus_genesis::Key32(
        ed25519_dalek::SigningKey::from_bytes(&[0x44; 32])
            .verifying_key()
            .to_bytes(),
    );
    let out = senatus(&[
        "agent",
        "rotate-key",
        "--policy",
        &p(&v2),
        "--out",
        &p(&v3),
        "--name",
        "agent-10",
        "--key",
        &rotated_key.to_string(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let layer = PolicyLayer::load_dir(&v3).expect("valid");
    assert_eq!(
        layer.registry().by_name("agent-10").expect("there").key,
        rotated_key
    );
    assert_eq!(layer.constitution().version, 3);
    let v4 = tmp.path().join("v4");
    let out = senatus(&[
        "agent",
        "remove",
        "--policy",
        &p(&v3),
        "--out",
        &p(&v4),
        "--name",
        "agent-3",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        PolicyLayer::load_dir(&v4)
            .expect("valid")
            .registry()
            .by_name("agent-3")
            .is_none()
    );
    // Refusals: an unknown name, a key another identity holds, a key that
    // is not one, an --out that exists.
    let v5 = tmp.path().join("v5");
    for (args, needle) in [
        (
            vec!["remove", "--name", "agent-99"],
            "no identity named \"agent-99\"",
        ),
        (
            vec![
                "rotate-key",
                "--name",
                "agent-1",
                "--key",
                &rotated_key.to_string(),
            ],
            "have the same key",
        ),
        (
            vec!["rotate-key", "--name", "agent-1", "--key", &fresh],
            "neither 64 hex digits",
        ),
    ] {
        let mut all = vec!["agent", args[0], "--policy", &p(&v4), "--out", &p(&v5)]
            .into_iter()
            .map(str::to_string)
            .collect::<Vec<_>>();
        all.extend(args[1..].iter().map(|a| a.to_string()));
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        let out = senatus(&all);
        assert_eq!(out.status.code(), Some(2), "{all:?}");
        assert!(
            text(&out.stderr).contains(needle),
            "{all:?}: {}",
            text(&out.stderr)
        );
        assert!(!v5.exists(), "nothing written on a refusal");
    }
    let out = senatus(&[
        "agent",
        "remove",
        "--policy",
        &p(&v4),
        "--out",
        &p(&v4),
        "--name",
        "agent-1",
    ]);
    assert!(text(&out.stderr).contains("exists; refusing to overwrite"));
    // A genesis of one's own layer that still seals a published test key is
    // refused, naming it.
    let own = tmp.path().join("own");
    let out = senatus(&[
        "genesis",
        "init",
        "--out",
        &p(&own),
        "--policy",
        &p(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../genesis/example-policy")),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("a test-vector key whose secret is published"),
        "{}",
        text(&out.stderr)
    );
}
