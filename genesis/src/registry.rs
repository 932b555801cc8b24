//! The identity registry: every key that may call a validator's public API,
//! sealed in the policy layer as `identities.toml` (docs/PROTOCOL.md 2.1).
//!
//! ```toml
//! [[identity]]
//! name = "agent-7"            # unique in the registry
//! role = "agent"              # agent | operator | auditor | broker
//! key = "<64 hex>"            # Ed25519 public key, unique in the registry
//! tenant = "acme"             # agents only: the tenant it acts for
//! actors = ["agent-7"]        # agents only: the actor names it may use
//! # surfaces = ["payments"]   # brokers only: surfaces it may redeem for
//! ```
//!
//! Identities change only by amendment: the file is part of the sealed
//! layer, so adding, removing or re-keying one changes the policy digest.
//! A layer without the file has an empty registry, in which no agent may
//! decide and no auditor may read: the registry fails closed.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::document::Key32;

/// Public keys whose secret seeds are published (the test vectors' agent-7,
/// agent-9 and auditor-1: seeds of 32 bytes 0x07, 0x09, 0xa1), sealed in
/// the bundled example layer. Anyone can sign as them: a genesis of one's
/// own layer must not list them ([`Registry::published_keys`]).
pub const PUBLISHED_VECTOR_KEYS: [&str; 3] = [
    "ea4a6c63e29c520abef5507b132ec5f9954776aebebe7b92421eea691446d22c",
    "fd1724385aa0c75b64fb78cd602fa1d991fdebf76b13c58ed702eac835e9f618",
    "bc7cbcb5636375fa1d82434d466724d92377f53b980695dd49d26d0ce12205a5",
];

/// Path of the registry inside a layer.
pub const IDENTITIES_FILE: &str = "identities.toml";
/// Most identities in one registry.
pub const IDENTITIES_MAX: usize = 4096;
/// Most actor names one agent may use.
pub const ACTORS_PER_AGENT_MAX: usize = 64;
/// Most surfaces one broker may redeem for.
pub const SURFACES_PER_BROKER_MAX: usize = 64;
/// Longest identity name, tenant or actor, in bytes (the request's bound).
pub const NAME_BYTES_MAX: usize = 128;
/// Longest surface name, in bytes (the request's bound).
pub const SURFACE_BYTES_MAX: usize = 64;

/// What an identity may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A governed agent: signs `Decide` for its tenant and actors.
    Agent,
    /// A validator operator: appends records, reads the ledger.
    Operator,
    /// An auditor: reads the ledger, exports and replays it.
    Auditor,
    /// A broker in front of an execution surface: redeems tokens.
    Broker,
}

impl Role {
    /// Every role, in order.
    pub const ALL: [Role; 4] = [Role::Agent, Role::Operator, Role::Auditor, Role::Broker];

    /// The role's name as the registry and key files spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Operator => "operator",
            Role::Auditor => "auditor",
            Role::Broker => "broker",
        }
    }

    /// `roles` as a reader says them: "auditor or operator".
    pub fn either(roles: &[Role]) -> String {
        roles
            .iter()
            .map(|r| r.as_str())
            .collect::<Vec<_>>()
            .join(" or ")
    }

    /// The role named `s`.
    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One registered key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Identity {
    /// Unique name, e.g. `agent-7` or `auditor-1`.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// Its Ed25519 public key (canonical, not of small order).
    pub key: Key32,
    /// Agents: the tenant it acts for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// Agents: the actor names (Cedar principals) it may use.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actors: Vec<String>,
    /// Brokers: the surfaces it may redeem tokens for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub surfaces: Vec<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RegistryFile {
    #[serde(default)]
    identity: Vec<Identity>,
}

/// Why a registry is refused. Each message names the identity and the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// Not TOML of the registry's shape.
    #[error("{IDENTITIES_FILE}: {0}")]
    Parse(String),
    /// More identities, actors or surfaces than allowed.
    #[error("{IDENTITIES_FILE}: {what} has {count} entries, limit {max}")]
    TooMany {
        /// What is too long.
        what: String,
        /// How many.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A name, tenant, actor or surface outside its alphabet or length.
    #[error("{IDENTITIES_FILE}: identity {name:?}: {field} {value:?} {rule}")]
    BadName {
        /// The identity.
        name: String,
        /// The field.
        field: &'static str,
        /// The value.
        value: String,
        /// The rule it breaks.
        rule: &'static str,
    },
    /// Two identities with one name.
    #[error("{IDENTITIES_FILE}: name {0:?} is registered twice")]
    DuplicateName(String),
    /// Two identities with one key.
    #[error("{IDENTITIES_FILE}: identities {first:?} and {second:?} have the same key {key}")]
    DuplicateKey {
        /// The first holder.
        first: String,
        /// The second.
        second: String,
        /// The key.
        key: Key32,
    },
    /// An actor of a tenant claimed by two agents.
    #[error(
        "{IDENTITIES_FILE}: actor {actor:?} of tenant {tenant:?} is claimed by both {first:?} and {second:?}"
    )]
    DuplicateActor {
        /// The tenant.
        tenant: String,
        /// The actor.
        actor: String,
        /// The first agent.
        first: String,
        /// The second.
        second: String,
    },
    /// A key that is not an acceptable Ed25519 public key.
    #[error("{IDENTITIES_FILE}: identity {name:?}: key {key}: {error}")]
    BadKey {
        /// The identity.
        name: String,
        /// The key.
        key: Key32,
        /// Why.
        error: crate::ed25519::KeyError,
    },
    /// A field the role requires is missing, or one it does not take is set.
    #[error("{IDENTITIES_FILE}: identity {name:?} (role {role}): {rule}")]
    RoleFields {
        /// The identity.
        name: String,
        /// Its role.
        role: Role,
        /// The rule.
        rule: &'static str,
    },
}

/// A parsed, validated registry, indexed by key and by (tenant, actor).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Registry {
    identities: Vec<Identity>,
    /// Each identity's key, decoded once (a point decompression saved on
    /// every signature checked).
    verifying: Vec<ed25519_dalek::VerifyingKey>,
    by_key: BTreeMap<Key32, usize>,
    by_actor: BTreeMap<(String, String), usize>,
}

fn id_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"._:@/+-".contains(&b)
}

fn surface_char(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-'
}

fn check_name(
    owner: &str,
    field: &'static str,
    value: &str,
    max: usize,
    ok: fn(u8) -> bool,
    alphabet: &'static str,
) -> Result<(), RegistryError> {
    let bad = |rule| RegistryError::BadName {
        name: owner.chars().take(64).collect(),
        field,
        value: value.chars().take(64).collect(),
        rule,
    };
    if value.is_empty() {
        return Err(bad("is empty"));
    }
    if value.len() > max {
        return Err(bad(if max == SURFACE_BYTES_MAX {
            "is longer than 64 bytes"
        } else {
            "is longer than 128 bytes"
        }));
    }
    if !value.bytes().all(ok) {
        return Err(bad(alphabet));
    }
    Ok(())
}

const ID_ALPHABET: &str = "has a character outside [A-Za-z0-9._:@/+-]";
const SURFACE_ALPHABET: &str = "has a character outside [a-z0-9_-]";

impl Registry {
    /// Parses and validates `identities.toml`.
    pub fn parse(text: &str) -> Result<Registry, RegistryError> {
        let file: RegistryFile =
            toml::from_str(text).map_err(|e| RegistryError::Parse(e.message().to_string()))?;
        Registry::new(file.identity)
    }

    /// Validates `identities` (in file order) and indexes them.
    pub fn new(identities: Vec<Identity>) -> Result<Registry, RegistryError> {
        if identities.len() > IDENTITIES_MAX {
            return Err(RegistryError::TooMany {
                what: "the registry".into(),
                count: identities.len(),
                max: IDENTITIES_MAX,
            });
        }
        let mut names = BTreeSet::new();
        let mut verifying = Vec::with_capacity(identities.len());
        let mut by_key = BTreeMap::new();
        let mut by_actor = BTreeMap::new();
        for (i, id) in identities.iter().enumerate() {
            check_name(
                &id.name,
                "name",
                &id.name,
                NAME_BYTES_MAX,
                id_char,
                ID_ALPHABET,
            )?;
            if !names.insert(id.name.as_str()) {
                return Err(RegistryError::DuplicateName(id.name.clone()));
            }
            verifying.push(crate::ed25519::verifying_key(&id.key.0).map_err(|error| {
                RegistryError::BadKey {
                    name: id.name.clone(),
                    key: id.key,
                    error,
                }
            })?);
            if let Some(j) = by_key.insert(id.key, i) {
                return Err(RegistryError::DuplicateKey {
                    first: identities[j].name.clone(),
                    second: id.name.clone(),
                    key: id.key,
                });
            }
            let rule = |rule| RegistryError::RoleFields {
                name: id.name.clone(),
                role: id.role,
                rule,
            };
            if id.role != Role::Broker && !id.surfaces.is_empty() {
                return Err(rule("only a broker lists surfaces"));
            }
            if id.role != Role::Agent && (id.tenant.is_some() || !id.actors.is_empty()) {
                return Err(rule("only an agent has a tenant and actors"));
            }
            match id.role {
                Role::Agent => {
                    let Some(tenant) = &id.tenant else {
                        return Err(rule("an agent needs a tenant"));
                    };
                    check_name(
                        &id.name,
                        "tenant",
                        tenant,
                        NAME_BYTES_MAX,
                        id_char,
                        ID_ALPHABET,
                    )?;
                    if id.actors.is_empty() {
                        return Err(rule("an agent needs at least one actor"));
                    }
                    if id.actors.len() > ACTORS_PER_AGENT_MAX {
                        return Err(RegistryError::TooMany {
                            what: format!("actors of {:?}", id.name),
                            count: id.actors.len(),
                            max: ACTORS_PER_AGENT_MAX,
                        });
                    }
                    for actor in &id.actors {
                        check_name(
                            &id.name,
                            "actor",
                            actor,
                            NAME_BYTES_MAX,
                            id_char,
                            ID_ALPHABET,
                        )?;
                        if let Some(j) = by_actor.insert((tenant.clone(), actor.clone()), i) {
                            return Err(RegistryError::DuplicateActor {
                                tenant: tenant.clone(),
                                actor: actor.clone(),
                                first: identities[j].name.clone(),
                                second: id.name.clone(),
                            });
                        }
                    }
                }
                Role::Broker => {
                    if id.surfaces.is_empty() {
                        return Err(rule("a broker needs at least one surface"));
                    }
                    if id.surfaces.len() > SURFACES_PER_BROKER_MAX {
                        return Err(RegistryError::TooMany {
                            what: format!("surfaces of {:?}", id.name),
                            count: id.surfaces.len(),
                            max: SURFACES_PER_BROKER_MAX,
                        });
                    }
                    let mut seen = BTreeSet::new();
                    for s in &id.surfaces {
                        check_name(
                            &id.name,
                            "surface",
                            s,
                            SURFACE_BYTES_MAX,
                            surface_char,
                            SURFACE_ALPHABET,
                        )?;
                        if !seen.insert(s) {
                            return Err(rule("a surface is listed twice"));
                        }
                    }
                }
                Role::Operator | Role::Auditor => {}
            }
        }
        Ok(Registry {
            identities,
            verifying,
            by_key,
            by_actor,
        })
    }

    /// Every identity, in file order.
    pub fn identities(&self) -> &[Identity] {
        &self.identities
    }

    /// The identity holding `key`.
    pub fn by_key(&self, key: &Key32) -> Option<&Identity> {
        self.by_key.get(key).map(|i| &self.identities[*i])
    }

    /// The identities whose keys are [`PUBLISHED_VECTOR_KEYS`].
    pub fn published_keys(&self) -> Vec<&Identity> {
        self.identities
            .iter()
            .filter(|i| PUBLISHED_VECTOR_KEYS.contains(&i.key.to_string().as_str()))
            .collect()
    }

    /// The decoded key of the identity holding `key` (checked canonical and
    /// not of small order when the registry was built).
    pub fn verifying_key(&self, key: &Key32) -> Option<&ed25519_dalek::VerifyingKey> {
        self.by_key.get(key).map(|i| &self.verifying[*i])
    }

    /// The identity named `name`.
    pub fn by_name(&self, name: &str) -> Option<&Identity> {
        self.identities.iter().find(|i| i.name == name)
    }

    /// The agent that may act as `actor` for `tenant`.
    pub fn agent_for(&self, tenant: &str, actor: &str) -> Option<&Identity> {
        self.by_actor
            .get(&(tenant.to_string(), actor.to_string()))
            .map(|i| &self.identities[*i])
    }

    /// The registry as `identities.toml` text: a header, then one
    /// `[[identity]]` table per identity in order. What `senatus agent`
    /// writes when it builds an amendment.
    pub fn to_toml(&self) -> String {
        let mut out = String::from(
            "# The identity registry (docs/PROTOCOL.md 2.1): every key that may call\n\
             # the validators' public API. It changes only by amendment.\n",
        );
        for id in &self.identities {
            let file = RegistryFile {
                identity: vec![id.clone()],
            };
            out.push('\n');
            out.push_str(&toml::to_string(&file).expect("a registry serializes"));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> Key32 {
        Key32(
            ed25519_dalek::SigningKey::from_bytes(&[seed; 32])
                .verifying_key()
                .to_bytes(),
        )
    }

    fn agent(name: &str, seed: u8, tenant: &str, actors: &[&str]) -> Identity {
        Identity {
            name: name.into(),
            role: Role::Agent,
            key: key(seed),
            tenant: Some(tenant.into()),
            actors: actors.iter().map(|a| a.to_string()).collect(),
            surfaces: Vec::new(),
        }
    }

    fn other(name: &str, seed: u8, role: Role) -> Identity {
        Identity {
            name: name.into(),
            role,
            key: key(seed),
            tenant: None,
            actors: Vec::new(),
            surfaces: if role == Role::Broker {
                vec!["payments".into()]
            } else {
                Vec::new()
            },
        }
    }

    #[test]
    fn a_registry_round_trips_through_its_text_and_indexes_keys_and_actors() {
        let r = Registry::new(vec![
            agent("agent-7", 1, "acme", &["agent-7", "agent-7b"]),
            other("auditor-1", 2, Role::Auditor),
            other("operator-1", 3, Role::Operator),
            other("broker-1", 4, Role::Broker),
        ])
        .expect("valid");
        let back = Registry::parse(&r.to_toml()).expect("its own text parses");
        assert_eq!(back, r);
        assert_eq!(r.by_key(&key(2)).map(|i| i.role), Some(Role::Auditor));
        assert_eq!(
            r.agent_for("acme", "agent-7b").map(|i| i.name.as_str()),
            Some("agent-7")
        );
        assert!(r.agent_for("globex", "agent-7").is_none());
        assert!(r.by_key(&key(9)).is_none());
        assert_eq!(Registry::parse("").expect("empty"), Registry::default());
    }

    #[test]
    fn the_published_vector_keys_are_the_seeds_public_halves() {
        for (seed, hex) in [0x07u8, 0x09, 0xa1].into_iter().zip(PUBLISHED_VECTOR_KEYS) {
            assert_eq!(key(seed).to_string(), hex);
        }
        let r = Registry::new(vec![
            agent("a", 7, "acme", &["a"]),
            agent("b", 1, "acme", &["b"]),
        ])
        .expect("valid");
        let named: Vec<&str> = r.published_keys().iter().map(|i| i.name.as_str()).collect();
        assert_eq!(named, ["a"]);
    }

    #[test]
    fn each_rule_of_the_registry_is_refused_by_name() {
        let dup_key = Registry::new(vec![
            agent("a", 1, "acme", &["a"]),
            other("b", 1, Role::Auditor),
        ]);
        assert!(
            matches!(dup_key, Err(RegistryError::DuplicateKey { .. })),
            "{dup_key:?}"
        );
        let dup_name = Registry::new(vec![
            agent("a", 1, "acme", &["a"]),
            other("a", 2, Role::Auditor),
        ]);
        assert_eq!(dup_name, Err(RegistryError::DuplicateName("a".into())));
        let dup_actor = Registry::new(vec![
            agent("a", 1, "acme", &["x"]),
            agent("b", 2, "acme", &["x"]),
        ]);
        assert!(matches!(
            dup_actor,
            Err(RegistryError::DuplicateActor { .. })
        ));
        // The same actor name in two tenants is two principals.
        Registry::new(vec![
            agent("a", 1, "acme", &["x"]),
            agent("b", 2, "globex", &["x"]),
        ])
        .expect("distinct tenants");
        let mut no_tenant = agent("a", 1, "acme", &["a"]);
        no_tenant.tenant = None;
        assert!(matches!(
            Registry::new(vec![no_tenant]),
            Err(RegistryError::RoleFields {
                rule: "an agent needs a tenant",
                ..
            })
        ));
        let mut auditor_actor = other("a", 1, Role::Auditor);
        auditor_actor.actors = vec!["x".into()];
        assert!(matches!(
            Registry::new(vec![auditor_actor]),
            Err(RegistryError::RoleFields { .. })
        ));
        let mut no_surface = other("b", 1, Role::Broker);
        no_surface.surfaces.clear();
        assert!(matches!(
            Registry::new(vec![no_surface]),
            Err(RegistryError::RoleFields {
                rule: "a broker needs at least one surface",
                ..
            })
        ));
        let bad_actor = Registry::new(vec![agent("a", 1, "acme", &["has space"])]);
        assert!(matches!(
            bad_actor,
            Err(RegistryError::BadName { field: "actor", .. })
        ));
        // The identity point (small order) is no key.
        let mut weak = other("w", 1, Role::Auditor);
        weak.key = Key32({
            let mut k = [0u8; 32];
            k[0] = 1;
            k
        });
        assert!(matches!(
            Registry::new(vec![weak]),
            Err(RegistryError::BadKey {
                error: crate::ed25519::KeyError::SmallOrder,
                ..
            })
        ));
        // Unknown fields and roles are refused, not ignored.
        assert!(matches!(
            Registry::parse("[[identity]]\nname='a'\nrole='agent'\nkey='00'\nsecret=1\n"),
            Err(RegistryError::Parse(_))
        ));
        assert!(matches!(
            Registry::parse(&format!(
                "[[identity]]\nname='a'\nrole='root'\nkey='{}'\n",
                key(1)
            )),
            Err(RegistryError::Parse(_))
        ));
    }
}
