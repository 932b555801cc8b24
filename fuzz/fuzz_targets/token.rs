//! Token wire bytes (PROTOCOL 9.6), as a broker receives them: the strict
//! decoder accepts exactly one encoding per token, so whatever it accepts
//! re-encodes to the very bytes it came from.
#![no_main]

use libfuzzer_sys::fuzz_target;
use senatus_quorum::token::Token;

fuzz_target!(|data: &[u8]| {
    if let Ok(t) = Token::from_bytes(data) {
        assert_eq!(t.to_bytes(), data, "decode then encode is the identity");
        let again = Token::from_bytes(&t.to_bytes()).expect("an encoding decodes");
        assert_eq!(again, t, "encode then decode round-trips");
    }
});
