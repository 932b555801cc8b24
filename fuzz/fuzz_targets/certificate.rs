//! Shutdown certificates (PROTOCOL 17), as a validator receives them from a
//! peer or a ledger entry: decode then encode is the identity on accepted
//! input, and the id is that of the signing bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use senatus_quorum::certificate::SignedCertificate;

fuzz_target!(|data: &[u8]| {
    if let Ok(c) = SignedCertificate::decode(data) {
        assert_eq!(c.encode(), data, "decode then encode is the identity");
        assert_eq!(
            c.id().0,
            senatus_genesis::sha3(&data[..data.len() - 64]),
            "the id is SHA3-256 of the signing bytes"
        );
        assert_eq!(SignedCertificate::decode(&c.encode()), Ok(c), "round trip");
    }
});
