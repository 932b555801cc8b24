//! The three outcomes of a governed decision, shared by evaluation, tokens
//! and the broker.

use std::fmt;

/// What the cluster decided about one request.
///
/// The wire code (`code`) is part of every token's signed bytes, so it is
/// fixed forever: 1 PERMIT, 2 DENY, 3 SILENCE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Outcome {
    /// A permit clause matched and no forbid clause did.
    Permit,
    /// A forbid clause matched.
    Deny,
    /// Nothing permitted the request, or the agent's uncertainty reached
    /// the constitution's bound α. Never redeemable.
    Silence,
}

impl Outcome {
    /// Every outcome, in code order.
    pub const ALL: [Outcome; 3] = [Outcome::Permit, Outcome::Deny, Outcome::Silence];

    /// The byte written into signed and hashed encodings.
    pub fn code(self) -> u8 {
        match self {
            Outcome::Permit => 1,
            Outcome::Deny => 2,
            Outcome::Silence => 3,
        }
    }

    /// The outcome with wire code `code`, if any.
    pub fn from_code(code: u8) -> Option<Outcome> {
        Outcome::ALL.into_iter().find(|o| o.code() == code)
    }

    /// Upper-case name, as printed and as used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Permit => "PERMIT",
            Outcome::Deny => "DENY",
            Outcome::Silence => "SILENCE",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_fixed_and_round_trip() {
        let codes: Vec<u8> = Outcome::ALL.iter().map(|o| o.code()).collect();
        assert_eq!(codes, vec![1, 2, 3]);
        for o in Outcome::ALL {
            assert_eq!(Outcome::from_code(o.code()), Some(o));
        }
        assert_eq!(Outcome::from_code(0), None);
        assert_eq!(Outcome::from_code(4), None);
        assert_eq!(Outcome::Silence.to_string(), "SILENCE");
    }
}
