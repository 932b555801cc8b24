//! Newtypes for the numbers the protocol must never mix up.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A validator id. Ids are `1..=65535` because each id is also the validator's
/// FROST participant identifier (a non-zero `u16`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "u64", into = "u64")]
pub struct NodeId(u16);

impl NodeId {
    /// Validates `raw` as a node id.
    pub fn new(raw: u64) -> Result<Self, NodeIdError> {
        match u16::try_from(raw) {
            Ok(v) if v != 0 => Ok(NodeId(v)),
            _ => Err(NodeIdError(raw)),
        }
    }

    /// The id as the integer used on the wire and in Raft.
    pub fn get(self) -> u64 {
        u64::from(self.0)
    }

    /// The FROST participant identifier for this validator.
    pub fn frost_identifier(self) -> frost_ed25519::Identifier {
        // `Identifier::try_from` fails only for zero, which `new` excludes.
        frost_ed25519::Identifier::try_from(self.0).expect("non-zero u16 is a FROST identifier")
    }
}

impl TryFrom<u64> for NodeId {
    type Error = NodeIdError;
    fn try_from(raw: u64) -> Result<Self, Self::Error> {
        NodeId::new(raw)
    }
}

impl From<NodeId> for u64 {
    fn from(id: NodeId) -> u64 {
        id.get()
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "n{}", self.0)
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A node id outside `1..=65535`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("node id {0} is out of range (want 1..=65535)")]
pub struct NodeIdError(pub u64);

macro_rules! counter_newtype {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Default, Serialize,
            Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(pub u64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }
    };
}

counter_newtype!(
    /// Version of the sealed policy layer; genesis seals the constitution's
    /// version and every passed amendment adds one.
    PolicyVersion
);
counter_newtype!(
    /// Membership epoch; genesis is epoch 0.
    Epoch
);
counter_newtype!(
    /// Position in the decision ledger; the first entry is 1.
    LedgerIndex
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_id_range_is_enforced() {
        assert_eq!(NodeId::new(0), Err(NodeIdError(0)));
        assert_eq!(NodeId::new(65_536), Err(NodeIdError(65_536)));
        assert_eq!(NodeId::new(65_535).map(NodeId::get), Ok(65_535));
        let parsed: Result<NodeId, _> = serde_json::from_str("0");
        assert!(parsed.is_err());
    }
}
