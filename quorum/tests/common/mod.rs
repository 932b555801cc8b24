//! Fixtures shared by the vector tests: where the vector files live and
//! the seeded ceremony of `docs/vectors/genesis-v1.json`.

#![allow(dead_code)]

use std::path::PathBuf;

use rand::SeedableRng as _;
use rand_chacha::ChaCha20Rng;
use senatus_genesis::PolicyLayer;
use senatus_genesis::ceremony::{Ceremony, CeremonyParams, NodeAddrs};

/// `docs/vectors/` of this checkout.
pub fn vectors_dir() -> PathBuf {
    PathBuf::from(
        // At run time: cargo sets it to this checkout, while a binary reused
        // from a shared target dir may have another checkout compiled in.
        &std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").into()),
    )
    .join("../docs/vectors")
}

/// The ceremony of `genesis-v1.json` (same parameters and seed as
/// `genesis/tests/vectors.rs`), so vectors built on it chain to that
/// genesis.
pub fn seeded_ceremony() -> Ceremony {
    let params = CeremonyParams {
        chain_id: "senatus-vectors".into(),
        threshold: 3,
        nodes: (1..=5)
            .map(|i| NodeAddrs {
                peer: format!("10.0.0.{i}:7000"),
                api: format!("10.0.0.{i}:7001"),
                metrics: format!("10.0.0.{i}:7002"),
            })
            .collect(),
        policy: PolicyLayer::example(),
        created_at_ms: 1_767_225_600_000,
    };
    Ceremony::run(params, &mut ChaCha20Rng::seed_from_u64(2026)).expect("ceremony")
}

/// Pins `value` as `docs/vectors/NAME`: with `SENATUS_WRITE_VECTORS` set it
/// writes the file (regenerate deliberately, then update docs/PROTOCOL.md
/// and review the diff); otherwise the file must hold exactly this JSON.
pub fn pin(name: &str, value: &serde_json::Value) {
    let path = vectors_dir().join(name);
    let text = format!("{}\n", serde_json::to_string_pretty(value).expect("json"));
    if std::env::var_os("SENATUS_WRITE_VECTORS").is_some() {
        std::fs::write(&path, &text).expect("write vector");
        return;
    }
    let pinned = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("missing vector {}: {e}", path.display()));
    assert_eq!(
        pinned, text,
        "docs/vectors/{name} no longer matches the code; if the protocol changed on \
         purpose, regenerate (see the test file's header) and update docs/PROTOCOL.md"
    );
}
