//! Redemption ledger entries (PROTOCOL 15.2), as every validator applies
//! them: decode then encode is the identity on accepted input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use senatus_replica::records::Redemption;

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = Redemption::decode(data) {
        assert_eq!(r.encode(), data, "decode then encode is the identity");
        assert_eq!(Redemption::decode(&r.encode()), Ok(r), "round trip");
    }
});
