//! Names and encodings of the store's keys: column families, fixed keys,
//! index keys, and the JSON of openraft's storage types. A leaf: every other
//! store module uses it, it uses none.

/// Column family names.
pub mod cf {
    /// Raft log entries.
    pub const LOGS: &str = "logs";
    /// Raft vote, committed and last purged log ids.
    pub const LOG_META: &str = "log_meta";
    /// State machine metadata: genesis, applied log id, membership, ledger head.
    pub const SM_META: &str = "sm_meta";
    /// Ledger entries.
    pub const LEDGER: &str = "ledger";
    /// Kept empty: the active policy layer and the seal chain are derived
    /// from the ledger's seals. The column family stays so existing stores
    /// open, and a snapshot carrying anything in it is refused.
    pub const POLICY: &str = "policy";
    /// Redeemed token nonces.
    pub const NONCES: &str = "nonces";
    /// Idempotency keys of applied commands.
    pub const IDEMPOTENCY: &str = "idempotency";
    /// The current snapshot (meta and bytes).
    pub const SNAPSHOT: &str = "snapshot";
    /// The state digest after each ledger entry.
    pub const STATE: &str = "state";

    /// Every column family this version opens.
    pub const ALL: [&str; 9] = [
        LOGS,
        LOG_META,
        SM_META,
        LEDGER,
        POLICY,
        NONCES,
        IDEMPOTENCY,
        SNAPSHOT,
        STATE,
    ];
}

/// Fixed keys inside the metadata column families.
pub mod key {
    /// `log_meta`: the last saved vote.
    pub const VOTE: &[u8] = b"vote";
    /// `log_meta`: the last saved committed log id.
    pub const COMMITTED: &[u8] = b"committed";
    /// `log_meta`: the last purged log id.
    pub const LAST_PURGED: &[u8] = b"last_purged";
    /// `sm_meta`: the genesis digest the database belongs to.
    pub const GENESIS: &[u8] = b"genesis";
    /// `sm_meta`: last applied log id.
    pub const APPLIED: &[u8] = b"applied";
    /// `sm_meta`: last applied membership.
    pub const MEMBERSHIP: &[u8] = b"membership";
    /// `sm_meta`: ledger head.
    pub const LEDGER_HEAD: &[u8] = b"ledger_head";
    /// `snapshot`: JSON snapshot meta.
    pub const SNAPSHOT_META: &[u8] = b"meta";
    /// `snapshot`: snapshot bytes.
    pub const SNAPSHOT_DATA: &[u8] = b"data";
}

/// Big-endian key of a log or ledger index (sorts numerically).
pub fn index_key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

/// A key printed readably: ASCII as text, anything else as hex.
pub fn key_label(key: &[u8]) -> String {
    if !key.is_empty() && key.iter().all(|b| b.is_ascii_graphic()) {
        String::from_utf8_lossy(key).into_owned()
    } else if key.len() == 8 {
        let mut a = [0u8; 8];
        a.copy_from_slice(key);
        format!("#{}", u64::from_be_bytes(a))
    } else {
        format!("0x{}", hex::encode(key))
    }
}

/// Encodes a value as JSON. The types stored this way (openraft ids, votes,
/// memberships, entries) always serialize; a failure is a broken invariant.
pub fn to_json<T: serde::Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("openraft storage types serialize to JSON")
}
