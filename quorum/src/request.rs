//! A governed agent's decision request, its validation, and its canonical
//! binary encoding (the bytes the leader writes into the ledger entry and
//! every validator decodes and evaluates on apply).
//!
//! # Canonical encoding (`senatus/request/v1`)
//! Primitives as in `senatus_genesis::codec`: big-endian fixed-width
//! integers; `str`/`bytes` = `u32` big-endian length, then the bytes; lists
//! = `u32` big-endian count, then the items.
//!
//! ```text
//! "senatus/request/v1" 0x00
//! str   surface                 [a-z0-9_-], 1..=64 bytes, first byte [a-z0-9]
//! str   action                  same alphabet and bounds as surface
//! str   actor                   [A-Za-z0-9._:@/+-], 1..=128 bytes
//! str   tenant                  same alphabet and bounds as actor
//! bytes params                  RFC 8785 (JCS) canonical UTF-8 JSON of the
//!                               params object, exactly as `canonical_params`
//!                               produces it (so `SHA3-256(params)` is the
//!                               token's params digest)
//! u16   uncertainty_permille    0..=1000
//! u32   number_of_resources     0..=32
//!   per resource, sorted strictly ascending bytewise by name:
//!   str name                    [a-z0-9_], 1..=64 bytes
//!   u64 amount
//! u32   number_of_endpoints     0..=32
//!   per endpoint, in the order the agent declared them (duplicates kept):
//!   str endpoint                visible ASCII 0x21..=0x7e, 1..=2048 bytes,
//!                               must name a host (see `crate::detect`)
//! str   idempotency_key         visible ASCII 0x21..=0x7e, 1..=128 bytes
//! request_digest = SHA3-256(all of the above)
//! ```
//!
//! [`DecisionRequest::decode`] is strict: wrong tag, a length beyond the
//! input, invalid UTF-8, params that are not the canonical JCS form of a
//! JSON object, unsorted or duplicate resource names, and trailing bytes are
//! all rejected, and the decoded request must pass
//! [`DecisionRequest::validate_with`] at [`PARAMS_BYTES_WIRE_MAX`]. Params
//! are carried as their canonical bytes, so decoding normalises them (for
//! example `2.0` becomes `2`); `encode(decode(encode(r))) == encode(r)`
//! always holds, and evaluation always looks at the canonical form (see
//! `crate::evaluate`), so leader and replay cannot disagree.

use std::collections::BTreeMap;
use std::fmt;

use senatus_genesis::codec::{Bound, DecodeError, Decoder, Digest, Encoder, sha3};
use senatus_genesis::policy::PARAMS_BYTES_HARD_MAX;

use crate::params::{ParamsError, canonical_params};

/// Domain-separation object name of the request encoding.
pub const REQUEST_TAG: &str = "request";
/// Version of the request encoding.
pub const REQUEST_VERSION: u8 = 1;

/// Longest `surface` and `action`, in bytes.
pub const NAME_BYTES_MAX: usize = 64;
/// Longest `actor` and `tenant`, in bytes.
pub const ID_BYTES_MAX: usize = 128;
/// Longest `idempotency_key`, in bytes.
pub const IDEMPOTENCY_KEY_BYTES_MAX: usize = 128;
/// Most declared resources in the agent context.
pub const RESOURCES_MAX: usize = 32;
/// Longest resource name, in bytes.
pub const RESOURCE_NAME_BYTES_MAX: usize = 64;
/// Most declared external endpoints in the agent context.
pub const ENDPOINTS_MAX: usize = 32;
/// Longest declared endpoint, in bytes.
pub const ENDPOINT_BYTES_MAX: usize = 2048;
/// Largest uncertainty, in permille.
pub const UNCERTAINTY_PERMILLE_MAX: u16 = 1000;
/// Default bound on canonical params bytes ([`DecisionRequest::validate`]);
/// at evaluation the constitution's `limits.params_bytes_max` applies.
pub const PARAMS_BYTES_MAX_DEFAULT: u32 = 64 * 1024;
/// Bound on canonical params bytes accepted by [`DecisionRequest::decode`]:
/// the largest `limits.params_bytes_max` any constitution may set, so that
/// every request some sealed policy could have accepted can be decoded and
/// then judged against the active limit.
pub const PARAMS_BYTES_WIRE_MAX: u32 = PARAMS_BYTES_HARD_MAX;
/// Characters of an offending value echoed in an error message.
pub const ECHO_CHARS_MAX: usize = 64;

/// A governed agent's request to perform one action.
#[derive(Debug, Clone, PartialEq)]
pub struct DecisionRequest {
    /// Execution surface, e.g. `payments`.
    pub surface: String,
    /// Action on that surface, e.g. `transfer`; the Cedar action is
    /// `Senatus::Action::"<surface>.<action>"`.
    pub action: String,
    /// The agent; the Cedar principal is `Senatus::Agent::"<actor>"`.
    pub actor: String,
    /// The tenant; the Cedar resource is `Senatus::Tenant::"<tenant>"`.
    pub tenant: String,
    /// Action parameters: a JSON object, checked against the schema's
    /// per-action params record at evaluation.
    pub params: serde_json::Value,
    /// What the agent declares about itself and the call.
    pub context: AgentContext,
    /// Client-chosen key that makes a retried request the same request.
    pub idempotency_key: String,
}

/// The agent's own declarations accompanying a request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AgentContext {
    /// The agent's uncertainty about the action, 0..=1000 permille.
    pub uncertainty_permille: u16,
    /// Declared resource use, e.g. `"cpu_millis" -> 250`.
    pub resources: BTreeMap<String, u64>,
    /// Endpoints the agent declares it will contact (URLs or hosts).
    pub external_endpoints: Vec<String>,
}

/// Why a request is malformed. Each variant names the field and echoes the
/// offending value (truncated to [`ECHO_CHARS_MAX`] characters; params are
/// never echoed, since they may carry personal data or secrets).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// A required field is empty.
    #[error("{field} is empty")]
    Empty {
        /// The field.
        field: String,
    },
    /// A field is longer than its limit.
    #[error("{field} is {bytes} bytes, limit {max}: {value:?}")]
    TooLong {
        /// The field.
        field: String,
        /// Its length in bytes.
        bytes: usize,
        /// The limit.
        max: usize,
        /// The value, truncated.
        value: String,
    },
    /// A field holds a character outside its alphabet.
    #[error("{field} has a character outside {allowed}: {value:?}")]
    BadCharacter {
        /// The field.
        field: String,
        /// The allowed alphabet.
        allowed: &'static str,
        /// The value, truncated.
        value: String,
    },
    /// A list or map holds more entries than its limit.
    #[error("{field} has {count} entries, limit {max}")]
    TooMany {
        /// The field.
        field: String,
        /// How many entries.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// The uncertainty is above 1000 permille.
    #[error("context.uncertainty_permille is {value}, want 0..={UNCERTAINTY_PERMILLE_MAX}")]
    UncertaintyOutOfRange {
        /// The value given.
        value: u16,
    },
    /// A declared endpoint from which no host can be read.
    #[error("{field} names no host: {value:?}")]
    EndpointWithoutHost {
        /// The field, with its index.
        field: String,
        /// The value, truncated.
        value: String,
    },
    /// Params are not a digestible JSON object.
    #[error("params: {0}")]
    Params(#[from] ParamsError),
    /// Canonical params exceed the limit in force.
    #[error("params are {bytes} canonical bytes, limit {max}")]
    ParamsTooLarge {
        /// Canonical size.
        bytes: usize,
        /// The limit.
        max: u32,
    },
    /// Encoded bytes do not start with `senatus/request/v1\0`.
    #[error("encoded request does not start with the tag {want:?}")]
    BadTag {
        /// The expected tag.
        want: String,
    },
    /// Encoded bytes end inside a field.
    #[error("encoded request truncated at byte {offset}, reading {field}")]
    Truncated {
        /// The field being read.
        field: String,
        /// Where the input ended.
        offset: usize,
    },
    /// A string field is not UTF-8.
    #[error("encoded request: {field} at byte {offset} is not UTF-8")]
    NotUtf8 {
        /// The field.
        field: String,
        /// Where the field starts.
        offset: usize,
    },
    /// Encoded params are not JSON, or not in canonical JCS form.
    #[error("encoded request: params at byte {offset} are not canonical JCS JSON: {message}")]
    NonCanonicalParams {
        /// Where the params bytes start.
        offset: usize,
        /// What was wrong.
        message: String,
    },
    /// Resource names are not strictly ascending.
    #[error(
        "encoded request: resource {name:?} at byte {offset} is not strictly after the previous one"
    )]
    ResourcesUnsorted {
        /// The name out of order, truncated.
        name: String,
        /// Where it starts.
        offset: usize,
    },
    /// Bytes left after the last field.
    #[error("encoded request has {count} trailing bytes at byte {offset}")]
    TrailingBytes {
        /// Where the trailing bytes start.
        offset: usize,
        /// How many.
        count: usize,
    },
}

/// `value` cut to [`ECHO_CHARS_MAX`] characters, marked with `…` if cut.
pub fn truncate_echo(value: &str) -> String {
    match value.char_indices().nth(ECHO_CHARS_MAX) {
        None => value.to_string(),
        Some((at, _)) => format!("{}…", &value[..at]),
    }
}

const NAME_ALPHABET: &str = "[a-z0-9_-] starting with [a-z0-9]";
const ID_ALPHABET: &str = "[A-Za-z0-9._:@/+-]";
const VISIBLE_ASCII: &str = "visible ASCII 0x21..=0x7e";
const RESOURCE_ALPHABET: &str = "[a-z0-9_]";

fn check_text(
    field: &dyn fmt::Display,
    value: &str,
    max: usize,
    allowed: &'static str,
    ok: impl Fn(usize, u8) -> bool,
) -> Result<(), RequestError> {
    if value.is_empty() {
        return Err(RequestError::Empty {
            field: field.to_string(),
        });
    }
    if value.len() > max {
        return Err(RequestError::TooLong {
            field: field.to_string(),
            bytes: value.len(),
            max,
            value: truncate_echo(value),
        });
    }
    if !value.bytes().enumerate().all(|(i, b)| ok(i, b)) {
        return Err(RequestError::BadCharacter {
            field: field.to_string(),
            allowed,
            value: truncate_echo(value),
        });
    }
    Ok(())
}

fn name_byte(i: usize, b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || (i > 0 && matches!(b, b'_' | b'-'))
}

fn id_byte(_: usize, b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'@' | b'/' | b'+' | b'-')
}

fn visible_byte(_: usize, b: u8) -> bool {
    (0x21..=0x7e).contains(&b)
}

fn resource_byte(_: usize, b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'
}

impl DecisionRequest {
    /// The Cedar action id, `<surface>.<action>`.
    pub fn action_id(&self) -> String {
        format!("{}.{}", self.surface, self.action)
    }

    /// Checks every field with params bounded by
    /// [`PARAMS_BYTES_MAX_DEFAULT`].
    pub fn validate(&self) -> Result<(), RequestError> {
        self.validate_with(PARAMS_BYTES_MAX_DEFAULT).map(|_| ())
    }

    /// Checks every field, with canonical params bounded by
    /// `params_bytes_max`, and returns the canonical params bytes.
    pub fn validate_with(&self, params_bytes_max: u32) -> Result<Vec<u8>, RequestError> {
        check_text(
            &"surface",
            &self.surface,
            NAME_BYTES_MAX,
            NAME_ALPHABET,
            name_byte,
        )?;
        check_text(
            &"action",
            &self.action,
            NAME_BYTES_MAX,
            NAME_ALPHABET,
            name_byte,
        )?;
        check_text(&"actor", &self.actor, ID_BYTES_MAX, ID_ALPHABET, id_byte)?;
        check_text(&"tenant", &self.tenant, ID_BYTES_MAX, ID_ALPHABET, id_byte)?;
        check_text(
            &"idempotency_key",
            &self.idempotency_key,
            IDEMPOTENCY_KEY_BYTES_MAX,
            VISIBLE_ASCII,
            visible_byte,
        )?;
        let ctx = &self.context;
        if ctx.uncertainty_permille > UNCERTAINTY_PERMILLE_MAX {
            return Err(RequestError::UncertaintyOutOfRange {
                value: ctx.uncertainty_permille,
            });
        }
        if ctx.resources.len() > RESOURCES_MAX {
            return Err(RequestError::TooMany {
                field: "context.resources".to_string(),
                count: ctx.resources.len(),
                max: RESOURCES_MAX,
            });
        }
        for name in ctx.resources.keys() {
            check_text(
                &"context.resources key",
                name,
                RESOURCE_NAME_BYTES_MAX,
                RESOURCE_ALPHABET,
                resource_byte,
            )?;
        }
        if ctx.external_endpoints.len() > ENDPOINTS_MAX {
            return Err(RequestError::TooMany {
                field: "context.external_endpoints".to_string(),
                count: ctx.external_endpoints.len(),
                max: ENDPOINTS_MAX,
            });
        }
        for (i, endpoint) in ctx.external_endpoints.iter().enumerate() {
            let field = format!("context.external_endpoints[{i}]");
            check_text(
                &field,
                endpoint,
                ENDPOINT_BYTES_MAX,
                VISIBLE_ASCII,
                visible_byte,
            )?;
            if crate::detect::endpoint_host(endpoint).is_none() {
                return Err(RequestError::EndpointWithoutHost {
                    field,
                    value: truncate_echo(endpoint),
                });
            }
        }
        let params = canonical_params(&self.params)?;
        if params.len() as u64 > u64::from(params_bytes_max) {
            return Err(RequestError::ParamsTooLarge {
                bytes: params.len(),
                max: params_bytes_max,
            });
        }
        Ok(params)
    }

    /// The canonical bytes (see the module documentation). Total: a request
    /// whose params cannot be canonicalised (not an object, too deep) is
    /// encoded with its params in plain serde_json form, which
    /// [`DecisionRequest::decode`] then rejects; the gate validates before
    /// encoding, so that only happens to requests built by hand.
    pub fn encode(&self) -> Vec<u8> {
        let params = canonical_params(&self.params)
            .or_else(|_| serde_json::to_vec(&self.params))
            .unwrap_or_default();
        self.encode_with_params(&params)
    }

    /// [`DecisionRequest::encode`] with the canonical params already at hand.
    pub(crate) fn encode_with_params(&self, params: &[u8]) -> Vec<u8> {
        let mut e = Encoder::new(REQUEST_TAG, REQUEST_VERSION);
        e.str(&self.surface)
            .str(&self.action)
            .str(&self.actor)
            .str(&self.tenant)
            .bytes(params)
            .u16(self.context.uncertainty_permille);
        e.count(self.context.resources.len());
        for (name, amount) in &self.context.resources {
            e.str(name).u64(*amount);
        }
        e.count(self.context.external_endpoints.len());
        for endpoint in &self.context.external_endpoints {
            e.str(endpoint);
        }
        e.str(&self.idempotency_key);
        e.finish()
    }

    /// SHA3-256 of [`DecisionRequest::encode`].
    pub fn digest(&self) -> Digest {
        sha3(&self.encode())
    }

    /// Decodes canonical bytes strictly (see the module documentation).
    pub fn decode(bytes: &[u8]) -> Result<DecisionRequest, RequestError> {
        let wire = |e: DecodeError| RequestError::from_wire(e, bytes.len());
        let mut r = Decoder::new(bytes, REQUEST_TAG, REQUEST_VERSION).map_err(wire)?;
        let surface = r.str("surface").map_err(wire)?.to_string();
        let action = r.str("action").map_err(wire)?.to_string();
        let actor = r.str("actor").map_err(wire)?.to_string();
        let tenant = r.str("tenant").map_err(wire)?.to_string();
        let params_at = r.position();
        let params_bytes = r.bytes("params").map_err(wire)?;
        if params_bytes.len() as u64 > u64::from(PARAMS_BYTES_WIRE_MAX) {
            return Err(RequestError::ParamsTooLarge {
                bytes: params_bytes.len(),
                max: PARAMS_BYTES_WIRE_MAX,
            });
        }
        let params: serde_json::Value =
            serde_json::from_slice(params_bytes).map_err(|e| RequestError::NonCanonicalParams {
                offset: params_at,
                message: e.to_string(),
            })?;
        let canonical = canonical_params(&params)?;
        if canonical != params_bytes {
            return Err(RequestError::NonCanonicalParams {
                offset: params_at,
                message: "bytes differ from the RFC 8785 form of the same value".to_string(),
            });
        }
        let uncertainty_permille = r.u16("context.uncertainty_permille").map_err(wire)?;
        let count = read_count(&mut r, "context.resources", RESOURCES_MAX)?;
        let mut resources = BTreeMap::new();
        let mut previous: Option<&str> = None;
        for _ in 0..count {
            let name_at = r.position();
            let name = r.str("context.resources key").map_err(wire)?;
            if previous.is_some_and(|p| p.as_bytes() >= name.as_bytes()) {
                return Err(RequestError::ResourcesUnsorted {
                    name: truncate_echo(name),
                    offset: name_at,
                });
            }
            let amount = r.u64("context.resources amount").map_err(wire)?;
            previous = Some(name);
            resources.insert(name.to_string(), amount);
        }
        let count = read_count(&mut r, "context.external_endpoints", ENDPOINTS_MAX)?;
        let mut external_endpoints = Vec::with_capacity(count);
        for _ in 0..count {
            let endpoint = r.str("context.external_endpoints item").map_err(wire)?;
            external_endpoints.push(endpoint.to_string());
        }
        let idempotency_key = r.str("idempotency_key").map_err(wire)?.to_string();
        r.finish().map_err(wire)?;
        let request = DecisionRequest {
            surface,
            action,
            actor,
            tenant,
            params,
            context: AgentContext {
                uncertainty_permille,
                resources,
                external_endpoints,
            },
            idempotency_key,
        };
        request.validate_with(PARAMS_BYTES_WIRE_MAX)?;
        Ok(request)
    }
}

impl RequestError {
    /// The request error for a shared-decoder failure on an input of
    /// `input_len` bytes.
    fn from_wire(e: DecodeError, input_len: usize) -> RequestError {
        match e {
            DecodeError::Tag { expected } => RequestError::BadTag { want: expected },
            DecodeError::Truncated { field, offset, .. } => RequestError::Truncated {
                field: field.to_string(),
                offset,
            },
            DecodeError::NotUtf8 { field, offset } => RequestError::NotUtf8 {
                field: field.to_string(),
                offset,
            },
            DecodeError::Trailing { count } => RequestError::TrailingBytes {
                offset: input_len - count,
                count,
            },
            DecodeError::TooMany(Bound {
                field, value, max, ..
            }) => RequestError::TooMany {
                field: field.to_string(),
                count: value,
                max,
            },
            // No request field reads a bounded length; kept total for
            // safety (the value was never read, so none is echoed).
            DecodeError::TooLong(Bound {
                field, value, max, ..
            }) => RequestError::TooLong {
                field: field.to_string(),
                bytes: value,
                max,
                value: String::new(),
            },
        }
    }
}

/// A list count, refused above `max` before any item is read.
fn read_count(r: &mut Decoder<'_>, field: &'static str, max: usize) -> Result<usize, RequestError> {
    r.count(field, max)
        .map_err(|e| RequestError::from_wire(e, r.position() + r.remaining()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> DecisionRequest {
        DecisionRequest {
            surface: "payments".to_string(),
            action: "transfer".to_string(),
            actor: "agent-7".to_string(),
            tenant: "acme".to_string(),
            params: serde_json::json!({"to_account": "acct-1", "currency": "EUR", "amount": 5}),
            context: AgentContext {
                uncertainty_permille: 12,
                resources: BTreeMap::from([("cpu_millis".to_string(), 250)]),
                external_endpoints: vec!["https://api.example.com/v1".to_string()],
            },
            idempotency_key: "k-1".to_string(),
        }
    }

    #[test]
    fn layout_is_exact() {
        let r = sample();
        let mut want = b"senatus/request/v1\0".to_vec();
        for s in ["payments", "transfer", "agent-7", "acme"] {
            want.extend_from_slice(&(s.len() as u32).to_be_bytes());
            want.extend_from_slice(s.as_bytes());
        }
        let params = br#"{"amount":5,"currency":"EUR","to_account":"acct-1"}"#;
        want.extend_from_slice(&(params.len() as u32).to_be_bytes());
        want.extend_from_slice(params);
        want.extend_from_slice(&12u16.to_be_bytes());
        want.extend_from_slice(&1u32.to_be_bytes());
        want.extend_from_slice(&10u32.to_be_bytes());
        want.extend_from_slice(b"cpu_millis");
        want.extend_from_slice(&250u64.to_be_bytes());
        want.extend_from_slice(&1u32.to_be_bytes());
        want.extend_from_slice(&26u32.to_be_bytes());
        want.extend_from_slice(b"https://api.example.com/v1");
        want.extend_from_slice(&3u32.to_be_bytes());
        want.extend_from_slice(b"k-1");
        assert_eq!(r.encode(), want);
        assert_eq!(r.digest(), sha3(&want));
        // Pinned for outside implementations (docs/PROTOCOL.md).
        assert_eq!(
            r.digest().to_hex(),
            "8663fdf3c1fa2d7531d784f59ef46bd7ea9fb5a0c2caa0cf9aab1eb17914fc5a"
        );
    }

    #[test]
    fn truncate_echo_cuts_on_char_boundaries() {
        assert_eq!(truncate_echo("abc"), "abc");
        let long = "é".repeat(100);
        let cut = truncate_echo(&long);
        assert_eq!(cut.chars().count(), ECHO_CHARS_MAX + 1);
        assert!(cut.ends_with('…'));
    }
}
