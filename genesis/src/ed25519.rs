//! Ed25519 public keys as every verifier in senatus takes them
//! (`docs/PROTOCOL.md` 1.1): a canonical encoding of a point that is not of
//! small order. Signatures are then checked with `verify_strict`
//! (canonical `S < L`, canonical `R` not of small order, the cofactorless
//! equation), so one message and key have at most one valid encoding of a
//! signature, and every implementation accepts the same set.

use ed25519_dalek::VerifyingKey;

/// Why 32 bytes are not an acceptable Ed25519 public key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The bytes do not decode to a curve point.
    #[error("not the encoding of an Ed25519 curve point")]
    NotAPoint,
    /// A point, but encoded non-canonically (`y >= p`, or `x = 0` with the
    /// sign bit set): another 32-byte string names the same key.
    #[error("not the canonical encoding of its point")]
    NonCanonical,
    /// A point of small order: a "signature" verifies for many messages.
    #[error("a point of small order, which verifies signatures on messages it never signed")]
    SmallOrder,
}

/// The verifying key `bytes` encode, if they are an acceptable public key.
pub fn verifying_key(bytes: &[u8; 32]) -> Result<VerifyingKey, KeyError> {
    let key = VerifyingKey::from_bytes(bytes).map_err(|_| KeyError::NotAPoint)?;
    if key.to_edwards().compress().to_bytes() != *bytes {
        return Err(KeyError::NonCanonical);
    }
    if key.is_weak() {
        return Err(KeyError::SmallOrder);
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex32(s: &str) -> [u8; 32] {
        hex::decode(s).expect("hex").try_into().expect("32 bytes")
    }

    #[test]
    fn small_order_and_non_canonical_keys_are_refused() {
        // The identity (order 1): with R = identity and S = 0 it "signs"
        // every message under a verifier that does not refuse it.
        let identity = hex32("0100000000000000000000000000000000000000000000000000000000000000");
        assert_eq!(verifying_key(&identity).err(), Some(KeyError::SmallOrder));
        let forged = ed25519_dalek::Signature::from_bytes(
            &[identity, [0; 32]].concat().try_into().expect("64"),
        );
        let loose = VerifyingKey::from_bytes(&identity).expect("a point");
        assert!(
            ed25519_dalek::Verifier::verify(&loose, b"any message at all", &forged).is_ok(),
            "the lax check does accept it: that is what is refused"
        );
        assert!(loose.verify_strict(b"any message at all", &forged).is_err());
        // The point of order 2, and y = 1 encoded as y = p + 1 (the
        // identity again, non-canonically).
        let order2 = hex32("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f");
        assert_eq!(verifying_key(&order2).err(), Some(KeyError::SmallOrder));
        let non_canonical =
            hex32("eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f");
        assert_eq!(
            verifying_key(&non_canonical).err(),
            Some(KeyError::NonCanonical)
        );
        // An ordinary key is taken.
        let k = ed25519_dalek::SigningKey::from_bytes(&[7; 32]).verifying_key();
        assert_eq!(verifying_key(k.as_bytes()), Ok(k));
    }
}
