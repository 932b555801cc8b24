//! Signed requests (PROTOCOL 10.1), as a signer reads them from a decision
//! batch: decode then encode is the identity on accepted input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use senatus_quorum::auth::SignedRequest;

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = SignedRequest::decode(data) {
        assert_eq!(r.encode(), data, "decode then encode is the identity");
        assert_eq!(SignedRequest::decode(&r.encode()), Ok(r), "round trip");
    }
});
