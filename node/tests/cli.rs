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
        .output()
        .expect("run senatus")
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
        vec!["node", "--help"],
        vec!["ledger", "--help"],
        vec!["ledger", "export", "--help"],
        vec!["ledger", "verify", "--help"],
        vec!["ledger", "append", "--help"],
        vec!["status", "--help"],
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
    let out = senatus(&["node", "--config", cfg.to_str().expect("path")]);
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
    let out = senatus(&["ledger", "append", "--api", &api, "hello"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("append failed"),
        "{}",
        text(&out.stderr)
    );
    let g = dir.join("genesis.json");
    let out = senatus(&[
        "ledger",
        "verify",
        "--genesis",
        g.to_str().expect("p"),
        "--api",
        &api,
    ]);
    assert_eq!(out.status.code(), Some(2));
}
