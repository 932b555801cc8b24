//! Presentations (PROTOCOL 10.3), as a validator receives them in
//! `Redeem`: decode then encode is the identity on accepted input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use senatus_quorum::presentation::Presentation;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = Presentation::decode(data) {
        assert_eq!(p.encode(), data, "decode then encode is the identity");
        assert_eq!(Presentation::decode(&p.encode()), Ok(p), "round trip");
    }
});
