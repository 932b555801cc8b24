//! The sealed policy layer (IEPL): Cedar policies, the Cedar schema, sealed
//! reference entities and the constitution, with their canonical encoding and
//! digest.
//!
//! # Layout
//! A policy layer is a directory holding exactly these UTF-8 files:
//!
//! * `constitution.toml` — immutable clause ids with their digests, amendment
//!   rules, epoch length, uncertainty bound α, detector settings, size
//!   limits and quotas (see [`Constitution`]);
//! * `schema.cedarschema` — the Cedar schema (human-readable syntax);
//! * `entities.json` — Cedar entities (sealed reference data: per-tenant
//!   limits, blocklists, groups), validated against the schema;
//! * `identities.toml` — the identity registry (optional; absent means
//!   empty): agents, operators, auditors and brokers with their keys (see
//!   [`crate::registry`]);
//! * `policies/<clause-id>.cedar` — exactly one static Cedar policy per file.
//!   The clause id is the file stem and matches `^[a-z0-9][a-z0-9._-]{0,63}$`;
//!   it becomes the Cedar `PolicyId`, so decisions report clause ids as their
//!   reasons.
//!
//! Nothing else is accepted: no other files, no other subdirectories, no
//! symlinks, no templates, no non-UTF-8 text.
//!
//! # Canonical encoding and digest
//! The layer's canonical bytes are (primitives from [`crate::codec`]):
//!
//! ```text
//! "senatus/policy-layer/v1" 0x00
//! u32 number_of_files
//! for each file, sorted bytewise by relative path ('/' separator):
//!     u32 len(path)    path (UTF-8)
//!     u32 len(content) content (exact file bytes)
//! policy_digest = SHA3-256(canonical bytes)
//! ```
//!
//! The digest is over the **exact file bytes** the validators reviewed, not
//! over a normalised form of the policies: reformatting a policy, editing a
//! comment or reordering JSON keys changes the digest. This is deliberate: the
//! sealed artefact is the text humans signed off, an auditor needs nothing but
//! SHA3-256 to recompute it, and no Cedar pretty-printer version can ever
//! change what is sealed. The canonical bytes are also the transport form, so
//! a layer travels inside a ledger entry; [`PolicyLayer::from_canonical_bytes`]
//! decodes them strictly.
//!
//! A clause digest (used for immutable clauses) is
//! `SHA3-256("senatus/policy-clause/v1" 0x00 || u32 len(id) id || u32 len(text) text)`,
//! see [`clause_digest`].
//!
//! # Limits
//! Besides the constitution's `[limits]`, fixed ceilings bound what any layer
//! may cost to decode and validate, because every validator decodes a
//! proposed layer before anyone reviews it: [`LAYER_BYTES_HARD_MAX`],
//! [`POLICIES_HARD_MAX`], [`SCHEMA_BYTES_MAX`], [`ENTITIES_MAX`],
//! [`ENTITY_ANCESTRY_MAX`], [`REQUEST_ENVS_MAX`], [`VALIDATION_WORK_MAX`],
//! [`NESTING_DEPTH_MAX`] and [`CLAUSE_OPERATORS_MAX`]. The last two are
//! measured on the raw text before Cedar parses it: Cedar's parser has no
//! stack guard, and a deeply nested policy would abort the process.
//! Strict validation must pass with no warnings either.
//!
//! # Evaluation notes for the gate
//! Cedar skips a policy whose evaluation errors. For a `forbid` clause that
//! would fail open, so the layer rejects a `forbid` clause that names an
//! entity absent from `entities.json` (or from the schema's actions), and the
//! gate must treat any evaluation error as DENY.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::str::FromStr as _;

use cedar_policy::{Effect, Entities, PolicyId, PolicySet, Schema, ValidationMode, Validator};
use serde::{Deserialize, Serialize};

use crate::codec::{Digest, Encoder, ReadError, Reader, domain_tag, sha3};
use crate::document::Key32;
use crate::registry::{IDENTITIES_FILE, Registry, RegistryError};

/// Path of the constitution inside a layer.
pub const CONSTITUTION_FILE: &str = "constitution.toml";
/// Path of the Cedar schema inside a layer.
pub const SCHEMA_FILE: &str = "schema.cedarschema";
/// Path of the sealed entities inside a layer.
pub const ENTITIES_FILE: &str = "entities.json";
/// Directory holding one policy file per clause.
pub const POLICIES_DIR: &str = "policies";
/// Extension of a policy file.
pub const POLICY_EXTENSION: &str = ".cedar";

/// Domain-separation object name of the canonical layer encoding.
pub const LAYER_TAG: &str = "policy-layer";
/// Version of the canonical layer encoding.
pub const LAYER_VERSION: u8 = 1;
/// Domain-separation object name of a clause digest.
pub const CLAUSE_TAG: &str = "policy-clause";
/// Version of the clause digest encoding.
pub const CLAUSE_VERSION: u8 = 1;

// Hard ceilings. A proposed layer is decoded and validated by every
// validator before anyone has reviewed it, so whatever its constitution
// claims, parsing and validating it must stay cheap (well under a second on
// the 2-core reference machine) and must not exhaust a 2 MiB thread stack.

/// Hard ceiling on a canonical layer, whatever its constitution says. Checked
/// before anything is allocated, since the constitution is not yet known then.
pub const LAYER_BYTES_HARD_MAX: u32 = 4 * 1024 * 1024;
/// Hard ceiling on the number of policy files.
pub const POLICIES_HARD_MAX: u32 = 1024;
/// Hard ceiling on the number of files in a layer (policies plus the three
/// fixed files and the identity registry).
pub const FILES_HARD_MAX: u32 = POLICIES_HARD_MAX + 4;
/// Most keys in `amendment.proposers`.
pub const PROPOSERS_MAX: usize = 64;
/// Hard ceiling on `limits.params_bytes_max`.
pub const PARAMS_BYTES_HARD_MAX: u32 = 1024 * 1024;
/// Longest clause id, in bytes.
pub const CLAUSE_ID_BYTES_MAX: usize = 64;
/// Largest `schema.cedarschema`, in bytes (schema parsing costs about 30 µs
/// per declaration).
pub const SCHEMA_BYTES_MAX: u32 = 256 * 1024;
/// Most entities in `entities.json`.
pub const ENTITIES_MAX: u32 = 10_000;
/// Most (entity, ancestor) pairs in the entity hierarchy's transitive
/// closure, which Cedar computes eagerly (quadratic in a parent chain).
pub const ENTITY_ANCESTRY_MAX: u32 = 200_000;
/// Most request environments (action × principal type × resource type) the
/// schema may declare.
pub const REQUEST_ENVS_MAX: u32 = 1024;
/// Bound on strict validation work: the sum over policies of (operators + 1)
/// times the schema's request environments (about 0.4 s at the bound).
pub const VALIDATION_WORK_MAX: u64 = 1_000_000;
/// Deepest bracket nesting (`(`, `[`, `{`) in a policy file, and also (with
/// `<`) in the schema. Cedar's parser recurses without a stack guard and
/// overflows a 2 MiB thread stack at about 150 levels; every validator
/// decodes proposed layers, so this is checked on the raw text first.
pub const NESTING_DEPTH_MAX: u32 = 32;
/// Most operators, member accesses, `if`s and `,` element separators in one
/// policy file. Each one is an expression node Cedar may nest or typecheck
/// once per request environment; long chains overflow the parser's stack or
/// exhaust the validator's recursion budget (at which point it stops
/// reporting type errors). Large sets belong in `entities.json`.
pub const CLAUSE_OPERATORS_MAX: u32 = 256;

/// Everything that makes a policy layer unacceptable. Each message names the
/// file or clause and the offending value.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// Reading or listing a file failed.
    #[error("policy layer I/O error at {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A required file is absent.
    #[error("policy layer is missing required file `{0}`")]
    MissingFile(String),
    /// A file or directory that has no place in a layer.
    #[error("unexpected file in policy layer: `{0}`")]
    UnexpectedFile(String),
    /// A symlink inside the layer directory.
    #[error("symlink in policy layer: {0} (layers hold regular files only)")]
    Symlink(PathBuf),
    /// Something that is neither a regular file nor the policies directory.
    #[error("not a regular file in policy layer: {0}")]
    NotRegularFile(PathBuf),
    /// A file (or file name) that is not valid UTF-8.
    #[error("not valid UTF-8: `{0}`")]
    NotUtf8(String),
    /// A clause id that does not match `^[a-z0-9][a-z0-9._-]{{0,63}}$`.
    #[error("bad clause id {0:?}: want ^[a-z0-9][a-z0-9._-]{{0,63}}$")]
    BadClauseId(String),
    /// A policy file that Cedar cannot parse.
    #[error("policies/{clause}.cedar does not parse: {message}")]
    PolicyParse {
        /// The clause id.
        clause: String,
        /// Cedar's parse errors.
        message: String,
    },
    /// A policy file with zero or several policies.
    #[error("policies/{clause}.cedar holds {found} policies, want exactly 1")]
    NotExactlyOnePolicy {
        /// The clause id.
        clause: String,
        /// How many policies the file holds.
        found: usize,
    },
    /// A policy file holding a template (a policy with slots).
    #[error("policies/{clause}.cedar is a template; only static policies are sealed")]
    TemplateNotAllowed {
        /// The clause id.
        clause: String,
    },
    /// The schema does not parse.
    #[error("schema.cedarschema does not parse: {0}")]
    SchemaParse(String),
    /// Policies that fail strict validation against the schema.
    #[error("policies fail strict schema validation: clauses {clauses:?}: {message}")]
    SchemaValidation {
        /// The failing clause ids, sorted.
        clauses: Vec<String>,
        /// The validator's errors.
        message: String,
    },
    /// Policies that draw validator warnings (e.g. a policy that can never
    /// apply). Rejected because a safety clause that can never fire is a
    /// silent hole.
    #[error("policies draw schema validation warnings: clauses {clauses:?}: {message}")]
    ValidationWarnings {
        /// The clause ids warned about, sorted.
        clauses: Vec<String>,
        /// The validator's warnings.
        message: String,
    },
    /// A policy file or the schema nests or chains expressions deeper than
    /// the layer allows (see [`NESTING_DEPTH_MAX`], [`CLAUSE_OPERATORS_MAX`]).
    #[error("{path}: {measure} is {value}, limit {max}")]
    TooComplex {
        /// The file.
        path: String,
        /// What was measured.
        measure: &'static str,
        /// The measured value.
        value: u64,
        /// The limit.
        max: u64,
    },
    /// `entities.json` does not parse or does not conform to the schema.
    #[error("entities.json is invalid: {0}")]
    EntitiesInvalid(String),
    /// `identities.toml` breaks a rule of the identity registry.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// A `forbid` clause names an entity that does not exist; evaluating it
    /// would error, and Cedar skips erroring policies, so it would fail open.
    #[error("forbid clause `{clause}` names entity {entity} which entities.json does not define")]
    ForbidNamesUnknownEntity {
        /// The clause id.
        clause: String,
        /// The missing entity uid.
        entity: String,
    },
    /// `constitution.toml` does not parse (syntax, types, unknown keys).
    #[error("constitution.toml: {message}")]
    Constitution {
        /// The TOML / serde error.
        message: String,
    },
    /// A rule between constitution fields is violated.
    #[error("constitution.toml violates rule `{rule}`: {value}")]
    ConstitutionRule {
        /// The rule, written as the relation that must hold.
        rule: &'static str,
        /// The offending values.
        value: String,
    },
    /// An immutable clause has no policy file.
    #[error("immutable clause `{id}` is missing: no policies/{id}.cedar")]
    ImmutableClauseMissing {
        /// The clause id.
        id: String,
    },
    /// An immutable clause's text does not match its sealed digest.
    #[error(
        "immutable clause `{id}` changed: constitution.toml expects digest {expected}, \
         policies/{id}.cedar has {found}"
    )]
    ImmutableClauseChanged {
        /// The clause id.
        id: String,
        /// The digest in the constitution.
        expected: Digest,
        /// The digest of the file present.
        found: Digest,
    },
    /// A file or the whole layer exceeds its size limit.
    #[error("{what} is {bytes} bytes, limit {max}")]
    TooLarge {
        /// What was measured (a path, or "canonical layer").
        what: String,
        /// Its size.
        bytes: u64,
        /// The limit.
        max: u64,
    },
    /// More policy files than `limits.policies_max` (or the hard maximum).
    #[error("policy layer has {count} policies, limit {max}")]
    TooManyPolicies {
        /// How many policy files.
        count: u64,
        /// The limit.
        max: u64,
    },
    /// Malformed canonical bytes.
    #[error("canonical policy layer malformed at byte {offset}: {message}")]
    Canonical {
        /// Byte offset where decoding failed.
        offset: usize,
        /// What was wrong.
        message: String,
    },
}

/// A clause id that must survive every amendment unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImmutableClause {
    /// The clause id (file stem under `policies/`).
    pub id: String,
    /// The clause digest, see [`clause_digest`].
    pub sha3: Digest,
}

/// How the policy layer may be amended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AmendmentRules {
    /// Approvals (t) an amendment needs.
    pub threshold: u16,
    /// Validators (n) that vote.
    pub validators: u16,
    /// No amendment may lower `threshold` below this.
    pub threshold_floor: u16,
    /// Ledger entries after which an open proposal expires.
    pub deadline_entries: u64,
    /// Ed25519 public keys (64 hex characters each) that may propose
    /// amendments, besides the founding authority and the identity keys of
    /// the active validators. Optional: an absent list means no one else,
    /// and leaves the layer's bytes (so its digest) exactly as they were.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub proposers: Vec<Key32>,
}

/// Epoch (membership rotation) parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EpochRules {
    /// Decisions per epoch.
    pub length_decisions: u64,
}

/// The uncertainty bound.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UncertaintyRules {
    /// Requests whose uncertainty (in permille) is at least this get SILENCE.
    pub alpha_permille: u16,
}

/// Which detectors the gate runs, and their bounds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetectorSettings {
    /// Detect personal data in request parameters.
    pub pii: bool,
    /// Detect credentials and key material in request parameters.
    pub secrets: bool,
    /// Most distinct external endpoints one request may name.
    pub external_endpoints_max: u32,
}

/// Size limits on the layer and on requests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Largest policy file, in bytes.
    pub policy_bytes_max: u32,
    /// Largest canonical layer, in bytes.
    pub layer_bytes_max: u32,
    /// Most policy files.
    pub policies_max: u32,
    /// Largest request parameters the gate accepts, in bytes.
    pub params_bytes_max: u32,
}

/// The parsed `constitution.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Constitution {
    /// Policy version; each sealed amendment makes it active + 1.
    pub version: u64,
    /// Clauses no amendment may remove or change.
    #[serde(default)]
    pub immutable_clauses: Vec<ImmutableClause>,
    /// Amendment rules.
    pub amendment: AmendmentRules,
    /// Epoch parameters.
    pub epoch: EpochRules,
    /// Uncertainty bound.
    pub uncertainty: UncertaintyRules,
    /// Detector settings.
    pub detectors: DetectorSettings,
    /// Size limits.
    pub limits: Limits,
    /// Breach handling: which shutdown certificates a sealed amendment
    /// lifts. Optional: an absent table leaves the layer's bytes (so its
    /// digest) exactly as they were.
    #[serde(default, skip_serializing_if = "BreachRules::is_empty")]
    pub breach: BreachRules,
    /// Bounds on the times a decision batch (and so every token) carries,
    /// which each signer re-derives before it signs. Optional: an absent
    /// table means the defaults, and leaves the layer's bytes as they were.
    #[serde(default, skip_serializing_if = "TokenRules::is_default")]
    pub tokens: TokenRules,
    /// Bounds on a signed request's own time (docs/PROTOCOL.md 10.1).
    /// Optional: an absent table means the defaults.
    #[serde(default, skip_serializing_if = "RequestRules::is_default")]
    pub requests: RequestRules,
    /// How many decisions and redemptions one agent, and one tenant, may
    /// ask for per window (docs/PROTOCOL.md 10.4). Optional: an absent
    /// table means the defaults, and leaves the layer's bytes as they were.
    #[serde(default, skip_serializing_if = "QuotaRules::is_default")]
    pub quotas: QuotaRules,
}

/// Longest quota window any constitution may set, in ms (one hour).
pub const QUOTA_WINDOW_MS_HARD_MAX: u64 = 3_600_000;

/// `[quotas]`: the most decisions and redemptions the leader admits per
/// window for one agent (its registered identity) and for one tenant. The
/// defaults are far above what the 2-core bench sustains from one agent
/// (about 3,000 decisions/s), so only a layer that sets them throttles.
/// Tenant limits need not be at least the agent limits: each is checked on
/// its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuotaRules {
    /// Length of a quota window, in ms (1 ..= [`QUOTA_WINDOW_MS_HARD_MAX`];
    /// default 1,000).
    #[serde(default = "QuotaRules::default_window")]
    pub window_ms: u64,
    /// Most `Decide` requests one agent may have admitted per window
    /// (>= 1; default 20,000).
    #[serde(default = "QuotaRules::default_agent")]
    pub agent_decisions_max: u64,
    /// Most `Decide` requests one tenant's agents together may have
    /// admitted per window (>= 1; default 100,000).
    #[serde(default = "QuotaRules::default_tenant")]
    pub tenant_decisions_max: u64,
    /// Most redemptions of one agent's tokens per window (>= 1; default
    /// 20,000).
    #[serde(default = "QuotaRules::default_agent")]
    pub agent_redemptions_max: u64,
    /// Most redemptions of one tenant's tokens per window (>= 1; default
    /// 100,000).
    #[serde(default = "QuotaRules::default_tenant")]
    pub tenant_redemptions_max: u64,
}

impl QuotaRules {
    fn default_window() -> u64 {
        1_000
    }

    fn default_agent() -> u64 {
        20_000
    }

    fn default_tenant() -> u64 {
        100_000
    }

    /// True for the defaults (the table may then be left out).
    pub fn is_default(&self) -> bool {
        *self == QuotaRules::default()
    }
}

impl Default for QuotaRules {
    fn default() -> Self {
        QuotaRules {
            window_ms: Self::default_window(),
            agent_decisions_max: Self::default_agent(),
            tenant_decisions_max: Self::default_tenant(),
            agent_redemptions_max: Self::default_agent(),
            tenant_redemptions_max: Self::default_tenant(),
        }
    }
}

/// Largest freshness window any constitution may allow for a signed
/// request, in ms (five minutes): a request signed ten minutes ago is
/// refused under every constitution.
pub const SIGNED_SKEW_MS_HARD_MAX: u64 = 300_000;

/// `[requests]`: how far a signed request's `signed_at_ms` may lie from the
/// validator's clock when it arrives, and from the batch's `issued_at_ms`
/// when it is evaluated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestRules {
    /// Largest `|signed_at_ms - now|`, in ms (1 ..=
    /// [`SIGNED_SKEW_MS_HARD_MAX`]; default 120,000: two minutes).
    #[serde(default = "RequestRules::default_skew")]
    pub signed_skew_ms_max: u64,
}

impl RequestRules {
    fn default_skew() -> u64 {
        120_000
    }

    /// True for the defaults (the table may then be left out).
    pub fn is_default(&self) -> bool {
        *self == RequestRules::default()
    }
}

impl Default for RequestRules {
    fn default() -> Self {
        RequestRules {
            signed_skew_ms_max: Self::default_skew(),
        }
    }
}

/// Longest token lifetime any constitution may allow, in ms (one hour):
/// a broker, which holds no policy layer, refuses any token living longer.
pub const TOKEN_LIFETIME_MS_HARD_MAX: u64 = 3_600_000;
/// Largest clock skew any constitution may allow between a batch's
/// `issued_at_ms` and a signer's clock, in ms (ten minutes).
pub const ISSUED_SKEW_MS_HARD_MAX: u64 = 600_000;

/// `[tokens]`: what a signer checks of a batch's times against its own
/// clock before it signs (docs/PROTOCOL.md 21.4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenRules {
    /// Longest `expires_at_ms - issued_at_ms` a signer signs, in ms
    /// (1 ..= [`TOKEN_LIFETIME_MS_HARD_MAX`]; default 300,000: five minutes).
    #[serde(default = "TokenRules::default_lifetime")]
    pub lifetime_ms_max: u64,
    /// Largest distance between a batch's `issued_at_ms` and the signer's
    /// own clock when it signs, in ms (1 ..= [`ISSUED_SKEW_MS_HARD_MAX`];
    /// default 10,000). It covers clock skew between validators and the
    /// time from issue to commit.
    #[serde(default = "TokenRules::default_skew")]
    pub issued_skew_ms_max: u64,
}

impl TokenRules {
    fn default_lifetime() -> u64 {
        300_000
    }

    fn default_skew() -> u64 {
        10_000
    }

    /// True for the defaults (the table may then be left out).
    pub fn is_default(&self) -> bool {
        *self == TokenRules::default()
    }
}

impl Default for TokenRules {
    fn default() -> Self {
        TokenRules {
            lifetime_ms_max: Self::default_lifetime(),
            issued_skew_ms_max: Self::default_skew(),
        }
    }
}

/// What a sealed amendment says about shutdown certificates.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BreachRules {
    /// Ids (SHA3-256, 64 hex characters) of shutdown certificates whose
    /// subject this layer reinstates once it is sealed: the only way a
    /// certified validator or agent is reinstated (DESIGN.md, flow 5).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reinstate: Vec<Digest>,
}

impl BreachRules {
    /// True when the table lists nothing.
    pub fn is_empty(&self) -> bool {
        self.reinstate.is_empty()
    }
}

fn rule(rule: &'static str, value: String) -> PolicyError {
    PolicyError::ConstitutionRule { rule, value }
}

impl Constitution {
    /// Parses `constitution.toml` text and checks [`Constitution::validate`].
    pub fn parse(text: &str) -> Result<Self, PolicyError> {
        // toml's Display draws a multi-line source excerpt; boot errors are
        // one line, so keep its message and say where.
        let c: Constitution = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| {
                1 + text.as_bytes()[..s.start.min(text.len())]
                    .iter()
                    .filter(|b| **b == b'\n')
                    .count()
            });
            let message = e.message().replace('\n', " ");
            PolicyError::Constitution {
                message: match line {
                    Some(l) => format!("line {l}: {}", message.trim_end()),
                    None => message.trim_end().to_string(),
                },
            }
        })?;
        c.validate()?;
        Ok(c)
    }

    /// Checks the rules between fields. Does not look at policy files; the
    /// existence and digests of immutable clauses are checked by
    /// [`PolicyLayer::from_files`].
    pub fn validate(&self) -> Result<(), PolicyError> {
        if self.version < 1 {
            return Err(rule("version >= 1", format!("version = {}", self.version)));
        }
        let a = &self.amendment;
        if a.threshold_floor < 1 {
            return Err(rule(
                "amendment.threshold_floor >= 1",
                format!("threshold_floor = {}", a.threshold_floor),
            ));
        }
        if a.threshold_floor > a.threshold {
            return Err(rule(
                "amendment.threshold_floor <= amendment.threshold",
                format!(
                    "threshold_floor = {}, threshold = {}",
                    a.threshold_floor, a.threshold
                ),
            ));
        }
        if a.threshold > a.validators {
            return Err(rule(
                "amendment.threshold <= amendment.validators",
                format!("threshold = {}, validators = {}", a.threshold, a.validators),
            ));
        }
        // Two disjoint groups of t validators could otherwise seal two
        // conflicting amendments at once.
        if 2 * u32::from(a.threshold) <= u32::from(a.validators) {
            return Err(rule(
                "2 * amendment.threshold > amendment.validators",
                format!("threshold = {}, validators = {}", a.threshold, a.validators),
            ));
        }
        if a.deadline_entries < 1 {
            return Err(rule(
                "amendment.deadline_entries >= 1",
                format!("deadline_entries = {}", a.deadline_entries),
            ));
        }
        if a.proposers.len() > PROPOSERS_MAX {
            return Err(rule(
                "amendment.proposers holds at most PROPOSERS_MAX (64) keys",
                format!("{} keys", a.proposers.len()),
            ));
        }
        let mut proposers = BTreeSet::new();
        for key in &a.proposers {
            // Verification refuses small-order and non-canonical keys
            // (PROTOCOL 1.1), so such a key could never sign an admissible
            // proposal: refuse it here, where the operator can see why.
            let valid = crate::ed25519::verifying_key(&key.0).is_ok();
            if !valid {
                return Err(rule(
                    "amendment.proposers are valid Ed25519 public keys (canonical, not of small order)",
                    format!("{key}"),
                ));
            }
            if !proposers.insert(*key) {
                return Err(rule(
                    "amendment.proposers are unique",
                    format!("{key} listed twice"),
                ));
            }
        }
        if self.epoch.length_decisions < 1 {
            return Err(rule(
                "epoch.length_decisions >= 1",
                format!("length_decisions = {}", self.epoch.length_decisions),
            ));
        }
        if self.uncertainty.alpha_permille > 1000 {
            return Err(rule(
                "uncertainty.alpha_permille <= 1000",
                format!("alpha_permille = {}", self.uncertainty.alpha_permille),
            ));
        }
        let t = &self.tokens;
        if !(1..=TOKEN_LIFETIME_MS_HARD_MAX).contains(&t.lifetime_ms_max) {
            return Err(rule(
                "1 <= tokens.lifetime_ms_max <= TOKEN_LIFETIME_MS_HARD_MAX (3600000)",
                format!("lifetime_ms_max = {}", t.lifetime_ms_max),
            ));
        }
        if !(1..=ISSUED_SKEW_MS_HARD_MAX).contains(&t.issued_skew_ms_max) {
            return Err(rule(
                "1 <= tokens.issued_skew_ms_max <= ISSUED_SKEW_MS_HARD_MAX (600000)",
                format!("issued_skew_ms_max = {}", t.issued_skew_ms_max),
            ));
        }
        let skew = self.requests.signed_skew_ms_max;
        if !(1..=SIGNED_SKEW_MS_HARD_MAX).contains(&skew) {
            return Err(rule(
                "1 <= requests.signed_skew_ms_max <= SIGNED_SKEW_MS_HARD_MAX (300000)",
                format!("signed_skew_ms_max = {skew}"),
            ));
        }
        let q = &self.quotas;
        if !(1..=QUOTA_WINDOW_MS_HARD_MAX).contains(&q.window_ms) {
            return Err(rule(
                "1 <= quotas.window_ms <= QUOTA_WINDOW_MS_HARD_MAX (3600000)",
                format!("window_ms = {}", q.window_ms),
            ));
        }
        for (name, value) in [
            ("quotas.agent_decisions_max >= 1", q.agent_decisions_max),
            ("quotas.tenant_decisions_max >= 1", q.tenant_decisions_max),
            ("quotas.agent_redemptions_max >= 1", q.agent_redemptions_max),
            (
                "quotas.tenant_redemptions_max >= 1",
                q.tenant_redemptions_max,
            ),
        ] {
            // A zero quota would refuse every call: that is what removing
            // the agent (or its tenant's agents) from the registry is for.
            if value < 1 {
                return Err(rule(name, format!("{value}")));
            }
        }
        let l = &self.limits;
        for (name, value) in [
            ("limits.policy_bytes_max >= 1", l.policy_bytes_max),
            ("limits.layer_bytes_max >= 1", l.layer_bytes_max),
            ("limits.policies_max >= 1", l.policies_max),
            ("limits.params_bytes_max >= 1", l.params_bytes_max),
        ] {
            if value < 1 {
                return Err(rule(name, format!("{value}")));
            }
        }
        if l.layer_bytes_max > LAYER_BYTES_HARD_MAX {
            return Err(rule(
                "limits.layer_bytes_max <= LAYER_BYTES_HARD_MAX (4194304)",
                format!("layer_bytes_max = {}", l.layer_bytes_max),
            ));
        }
        if l.policy_bytes_max > l.layer_bytes_max {
            return Err(rule(
                "limits.policy_bytes_max <= limits.layer_bytes_max",
                format!(
                    "policy_bytes_max = {}, layer_bytes_max = {}",
                    l.policy_bytes_max, l.layer_bytes_max
                ),
            ));
        }
        if l.policies_max > POLICIES_HARD_MAX {
            return Err(rule(
                "limits.policies_max <= POLICIES_HARD_MAX (1024)",
                format!("policies_max = {}", l.policies_max),
            ));
        }
        if l.params_bytes_max > PARAMS_BYTES_HARD_MAX {
            return Err(rule(
                "limits.params_bytes_max <= PARAMS_BYTES_HARD_MAX (1048576)",
                format!("params_bytes_max = {}", l.params_bytes_max),
            ));
        }
        let mut seen = BTreeSet::new();
        for clause in &self.immutable_clauses {
            check_clause_id(&clause.id)?;
            if !seen.insert(clause.id.as_str()) {
                return Err(rule(
                    "immutable_clauses ids are unique",
                    format!("`{}` listed twice", clause.id),
                ));
            }
        }
        Ok(())
    }

    /// Whether `id` is an immutable clause.
    pub fn is_immutable(&self, id: &str) -> bool {
        self.immutable_clauses.iter().any(|c| c.id == id)
    }
}

/// Checks a clause id against `^[a-z0-9][a-z0-9._-]{0,63}$`.
pub fn check_clause_id(id: &str) -> Result<(), PolicyError> {
    let bytes = id.as_bytes();
    let ok = !bytes.is_empty()
        && bytes.len() <= CLAUSE_ID_BYTES_MAX
        && (bytes[0].is_ascii_lowercase() || bytes[0].is_ascii_digit())
        && bytes.iter().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        });
    if ok {
        Ok(())
    } else {
        Err(PolicyError::BadClauseId(id.to_string()))
    }
}

/// The clause digest: SHA3-256 over `Encoder::new("policy-clause", 1)`, the
/// clause id as a string and the exact file bytes.
pub fn clause_digest(id: &str, text: &[u8]) -> Digest {
    let mut e = Encoder::new(CLAUSE_TAG, CLAUSE_VERSION);
    e.str(id).bytes(text);
    e.digest_of()
}

/// What a path inside a layer is.
enum FileKind<'a> {
    Constitution,
    Identities,
    Schema,
    Entities,
    Policy(&'a str),
}

fn classify(path: &str) -> Result<FileKind<'_>, PolicyError> {
    match path {
        CONSTITUTION_FILE => return Ok(FileKind::Constitution),
        SCHEMA_FILE => return Ok(FileKind::Schema),
        ENTITIES_FILE => return Ok(FileKind::Entities),
        IDENTITIES_FILE => return Ok(FileKind::Identities),
        _ => {}
    }
    let Some(name) = path
        .strip_prefix(POLICIES_DIR)
        .and_then(|rest| rest.strip_prefix('/'))
    else {
        return Err(PolicyError::UnexpectedFile(path.to_string()));
    };
    if name.contains('/') {
        return Err(PolicyError::UnexpectedFile(path.to_string()));
    }
    let Some(id) = name.strip_suffix(POLICY_EXTENSION) else {
        return Err(PolicyError::UnexpectedFile(path.to_string()));
    };
    check_clause_id(id)?;
    Ok(FileKind::Policy(id))
}

/// Measures a Cedar text lexically (comments and string literals skipped):
/// the deepest bracket nesting and, for policies, the number of operators,
/// member accesses, `if`s and `,` separators. `schema` also counts `<` `>` as brackets.
fn check_shape(path: &str, text: &str, schema: bool) -> Result<u32, PolicyError> {
    let bytes = text.as_bytes();
    let mut depth: u32 = 0;
    let mut depth_max: u32 = 0;
    let mut operators: u32 = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let next = bytes.get(i + 1).copied();
        match b {
            b'/' if next == Some(b'/') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
                continue;
            }
            b'(' | b'[' | b'{' => {
                depth += 1;
                depth_max = depth_max.max(depth);
            }
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            b'<' if schema => {
                depth += 1;
                depth_max = depth_max.max(depth);
            }
            b'>' if schema => depth = depth.saturating_sub(1),
            b'&' | b'|' | b'=' | b'!' | b'<' | b'>' => {
                operators += 1;
                // Two-byte operators count once.
                if matches!(next, Some(b'&' | b'|' | b'=')) {
                    i += 1;
                }
            }
            // `,` separates set and record elements, each one typechecked.
            b'+' | b'-' | b'*' | b'.' | b',' => operators += 1,
            b if b.is_ascii_alphabetic() || b == b'_' => {
                let start = i;
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
                if matches!(&bytes[start..i], b"if" | b"in" | b"has" | b"like" | b"is") {
                    operators += 1;
                }
                continue;
            }
            _ => {}
        }
        if depth_max > NESTING_DEPTH_MAX {
            return Err(PolicyError::TooComplex {
                path: path.to_string(),
                measure: "bracket nesting depth",
                value: u64::from(depth_max),
                max: u64::from(NESTING_DEPTH_MAX),
            });
        }
        i += 1;
    }
    if !schema && operators > CLAUSE_OPERATORS_MAX {
        return Err(PolicyError::TooComplex {
            path: path.to_string(),
            measure: "operator count",
            value: u64::from(operators),
            max: u64::from(CLAUSE_OPERATORS_MAX),
        });
    }
    Ok(operators)
}

fn too_complex(path: &str, measure: &'static str, value: u64, max: u64) -> PolicyError {
    PolicyError::TooComplex {
        path: path.to_string(),
        measure,
        value,
        max,
    }
}

/// The `{"type", "id"}` of an entity reference in entities JSON, with or
/// without the `__entity` escape.
fn json_uid(v: &serde_json::Value) -> Option<(&str, &str)> {
    let v = v.get("__entity").unwrap_or(v);
    Some((v.get("type")?.as_str()?, v.get("id")?.as_str()?))
}

/// Bounds `entities.json` before Cedar parses it: entity count, no parent
/// cycles, and the size of the transitive closure Cedar would compute.
/// Shapes this does not recognise are left for Cedar to reject.
fn check_entities_shape(text: &str) -> Result<(), PolicyError> {
    // serde_json stops at 128 levels of nesting, so this cannot overflow.
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| PolicyError::EntitiesInvalid(format!("not JSON: {e}")))?;
    let Some(list) = value.as_array() else {
        return Err(PolicyError::EntitiesInvalid(
            "top level must be a JSON array of entities".to_string(),
        ));
    };
    if list.len() as u64 > u64::from(ENTITIES_MAX) {
        return Err(too_complex(
            ENTITIES_FILE,
            "entity count",
            list.len() as u64,
            u64::from(ENTITIES_MAX),
        ));
    }
    // Index every uid mentioned; parents[i] lists the parent indices.
    let mut index: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    fn intern<'a>(
        uid: (&'a str, &'a str),
        index: &mut BTreeMap<(&'a str, &'a str), usize>,
    ) -> usize {
        let next = index.len();
        *index.entry(uid).or_insert(next)
    }
    let mut edges: Vec<(usize, usize)> = Vec::new();
    for entity in list {
        let Some(child) = entity.get("uid").and_then(json_uid) else {
            continue;
        };
        let child = intern(child, &mut index);
        let parents = entity.get("parents").and_then(|p| p.as_array());
        for parent in parents.into_iter().flatten() {
            if let Some(parent) = json_uid(parent) {
                edges.push((child, intern(parent, &mut index)));
            }
        }
    }
    let n = index.len();
    let mut parents: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); n];
    for &(c, p) in &edges {
        parents[c].push(p);
        children[p].push(c);
    }
    // Kahn's order from the roots down; ancestors[v] is sorted, unique.
    let mut pending: Vec<usize> = parents.iter().map(Vec::len).collect();
    let mut ready: Vec<usize> = (0..n).filter(|&v| pending[v] == 0).collect();
    let mut ancestors: Vec<Vec<u32>> = vec![Vec::new(); n];
    let mut done = 0usize;
    let mut total: u64 = 0;
    while let Some(v) = ready.pop() {
        done += 1;
        let mut set: Vec<u32> = Vec::new();
        for &p in &parents[v] {
            set.push(p as u32);
            set.extend_from_slice(&ancestors[p]);
            if total + set.len() as u64 > u64::from(ENTITY_ANCESTRY_MAX) {
                set.sort_unstable();
                set.dedup();
            }
            if total + set.len() as u64 > u64::from(ENTITY_ANCESTRY_MAX) {
                return Err(too_complex(
                    ENTITIES_FILE,
                    "entity ancestry (transitive closure) size",
                    total + set.len() as u64,
                    u64::from(ENTITY_ANCESTRY_MAX),
                ));
            }
        }
        set.sort_unstable();
        set.dedup();
        total += set.len() as u64;
        ancestors[v] = set;
        for &c in &children[v] {
            pending[c] -= 1;
            if pending[c] == 0 {
                ready.push(c);
            }
        }
    }
    if done < n {
        let (ty, id) = index
            .iter()
            .find(|(_, v)| pending[**v] > 0)
            .map(|(uid, _)| *uid)
            .unwrap_or_default();
        return Err(PolicyError::EntitiesInvalid(format!(
            "entity hierarchy has a cycle through {ty}::{id:?}"
        )));
    }
    Ok(())
}

/// An error and its sources, joined with ": ". Cedar puts the specifics
/// (which attribute, which entity) in the source chain, not the top message.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let msg = s.to_string();
        if !out.contains(&msg) {
            out.push_str(": ");
            out.push_str(&msg);
        }
        source = s.source();
    }
    out
}

fn policy_path(id: &str) -> String {
    format!("{POLICIES_DIR}/{id}{POLICY_EXTENSION}")
}

fn encode_files(files: &BTreeMap<String, Vec<u8>>) -> Vec<u8> {
    let mut e = Encoder::new(LAYER_TAG, LAYER_VERSION);
    e.count(files.len());
    // BTreeMap<String> iterates in bytewise order of the UTF-8 paths.
    for (path, content) in files {
        e.str(path).bytes(content);
    }
    e.finish()
}

/// A parsed, validated policy layer with its digest.
#[derive(Debug, Clone)]
pub struct PolicyLayer {
    files: BTreeMap<String, Vec<u8>>,
    constitution: Constitution,
    policies: PolicySet,
    schema: Schema,
    entities: Entities,
    registry: Registry,
    digest: Digest,
}

impl PartialEq for PolicyLayer {
    /// Two layers are equal when their digests are; the digest covers every
    /// byte of every file.
    fn eq(&self, other: &Self) -> bool {
        self.digest == other.digest
    }
}

impl Eq for PolicyLayer {}

impl fmt::Display for PolicyLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "policy layer v{} ({} clauses, digest {})",
            self.constitution.version,
            self.policies.num_of_policies(),
            self.digest
        )
    }
}

impl PolicyLayer {
    /// Reads a layer directory and validates it as [`PolicyLayer::from_files`]
    /// does. Rejects symlinks, subdirectories other than `policies/`, and
    /// files that would exceed [`LAYER_BYTES_HARD_MAX`] before reading them.
    pub fn load_dir(dir: &Path) -> Result<Self, PolicyError> {
        let mut files = BTreeMap::new();
        let mut total: u64 = 0;
        read_level(dir, None, &mut files, &mut total)?;
        Self::from_files(files)
    }

    /// The policy digest of a layer directory's bytes exactly as they are on
    /// disk, without parsing or validating them: what drift detection
    /// compares with the sealed digest, cheaply and on a timer. Reads the
    /// same files, under the same bounds, as [`PolicyLayer::load_dir`].
    pub fn dir_digest(dir: &Path) -> Result<Digest, PolicyError> {
        let mut files = BTreeMap::new();
        let mut total: u64 = 0;
        read_level(dir, None, &mut files, &mut total)?;
        Ok(sha3(&encode_files(&files)))
    }

    /// SHA3-256 over the canonical bytes of the files this value holds now,
    /// recomputed (not the digest recorded when it was built): a check that
    /// the in-memory layer still is the sealed one.
    pub fn recompute_digest(&self) -> Digest {
        sha3(&encode_files(&self.files))
    }

    /// Parses and validates a layer from its files, keyed by relative path
    /// (`constitution.toml`, `policies/<id>.cedar`, ...).
    pub fn from_files(files: BTreeMap<String, Vec<u8>>) -> Result<Self, PolicyError> {
        if files.len() as u64 > u64::from(FILES_HARD_MAX) {
            return Err(PolicyError::TooManyPolicies {
                count: files.len() as u64,
                max: u64::from(POLICIES_HARD_MAX),
            });
        }
        let mut clauses: Vec<&str> = Vec::new();
        let mut total: u64 = 0;
        for (path, content) in &files {
            if let FileKind::Policy(id) = classify(path)? {
                clauses.push(id);
            }
            total = total.saturating_add(content.len() as u64);
        }
        for required in [CONSTITUTION_FILE, SCHEMA_FILE, ENTITIES_FILE] {
            if !files.contains_key(required) {
                return Err(PolicyError::MissingFile(required.to_string()));
            }
        }
        if total > u64::from(LAYER_BYTES_HARD_MAX) {
            return Err(PolicyError::TooLarge {
                what: "policy layer files".to_string(),
                bytes: total,
                max: u64::from(LAYER_BYTES_HARD_MAX),
            });
        }
        let mut texts: BTreeMap<&str, &str> = BTreeMap::new();
        for (path, content) in &files {
            let text =
                std::str::from_utf8(content).map_err(|_| PolicyError::NotUtf8(path.clone()))?;
            texts.insert(path.as_str(), text);
        }
        let text_of = |path: &str| -> &str { texts.get(path).copied().unwrap_or_default() };

        // The constitution first: it carries the limits and the sealed
        // clause digests, which are checked before any Cedar parsing so that
        // an edited immutable clause is reported as such.
        let constitution = Constitution::parse(text_of(CONSTITUTION_FILE))?;
        let limits = &constitution.limits;
        if clauses.len() as u64 > u64::from(limits.policies_max) {
            return Err(PolicyError::TooManyPolicies {
                count: clauses.len() as u64,
                max: u64::from(limits.policies_max),
            });
        }
        for id in &clauses {
            let path = policy_path(id);
            let len = files.get(&path).map_or(0, Vec::len) as u64;
            if len > u64::from(limits.policy_bytes_max) {
                return Err(PolicyError::TooLarge {
                    what: path,
                    bytes: len,
                    max: u64::from(limits.policy_bytes_max),
                });
            }
        }
        let canonical = encode_files(&files);
        if canonical.len() as u64 > u64::from(limits.layer_bytes_max) {
            return Err(PolicyError::TooLarge {
                what: "canonical layer".to_string(),
                bytes: canonical.len() as u64,
                max: u64::from(limits.layer_bytes_max),
            });
        }
        for sealed in &constitution.immutable_clauses {
            let Some(text) = files.get(&policy_path(&sealed.id)) else {
                return Err(PolicyError::ImmutableClauseMissing {
                    id: sealed.id.clone(),
                });
            };
            let found = clause_digest(&sealed.id, text);
            if found != sealed.sha3 {
                return Err(PolicyError::ImmutableClauseChanged {
                    id: sealed.id.clone(),
                    expected: sealed.sha3,
                    found,
                });
            }
        }

        // Bound the shape of every Cedar text before Cedar parses it.
        let schema_len = files.get(SCHEMA_FILE).map_or(0, Vec::len) as u64;
        if schema_len > u64::from(SCHEMA_BYTES_MAX) {
            return Err(PolicyError::TooLarge {
                what: SCHEMA_FILE.to_string(),
                bytes: schema_len,
                max: u64::from(SCHEMA_BYTES_MAX),
            });
        }
        check_shape(SCHEMA_FILE, text_of(SCHEMA_FILE), true)?;
        let mut operators_total: u64 = 0;
        for id in &clauses {
            let path = policy_path(id);
            operators_total += u64::from(check_shape(&path, text_of(&path), false)?) + 1;
        }
        check_entities_shape(text_of(ENTITIES_FILE))?;

        let (schema, _warnings) = Schema::from_cedarschema_str(text_of(SCHEMA_FILE))
            .map_err(|e| PolicyError::SchemaParse(error_chain(&e)))?;
        let mut envs: u64 = 0;
        for action in schema.actions() {
            let principals = schema
                .principals_for_action(action)
                .map_or(0, Iterator::count);
            let resources = schema
                .resources_for_action(action)
                .map_or(0, Iterator::count);
            envs = envs.saturating_add((principals as u64).saturating_mul(resources as u64));
        }
        if envs > u64::from(REQUEST_ENVS_MAX) {
            return Err(too_complex(
                SCHEMA_FILE,
                "request environment count",
                envs,
                u64::from(REQUEST_ENVS_MAX),
            ));
        }
        let work = operators_total.saturating_mul(envs);
        if work > VALIDATION_WORK_MAX {
            return Err(too_complex(
                "policies/",
                "validation work (sum of (operators + 1) x request environments)",
                work,
                VALIDATION_WORK_MAX,
            ));
        }
        let entities = Entities::from_json_str(text_of(ENTITIES_FILE), Some(&schema))
            .map_err(|e| PolicyError::EntitiesInvalid(error_chain(&e)))?;
        // No registry file is an empty registry: nobody may call in.
        let registry = Registry::parse(text_of(IDENTITIES_FILE))?;

        let mut policies = PolicySet::new();
        for id in &clauses {
            let text = text_of(&policy_path(id));
            let parsed = PolicySet::from_str(text).map_err(|e| PolicyError::PolicyParse {
                clause: (*id).to_string(),
                message: error_chain(&e),
            })?;
            if parsed.num_of_templates() > 0 {
                return Err(PolicyError::TemplateNotAllowed {
                    clause: (*id).to_string(),
                });
            }
            let found = parsed.num_of_policies();
            let policy = match parsed.policies().next() {
                Some(p) if found == 1 => p.new_id(PolicyId::new(id)),
                _ => {
                    return Err(PolicyError::NotExactlyOnePolicy {
                        clause: (*id).to_string(),
                        found,
                    });
                }
            };
            if policy.effect() == Effect::Forbid {
                // Literals in a forbid must resolve, or evaluation errors and
                // Cedar silently skips the forbid.
                for uid in policy.entity_literals() {
                    if entities.get(&uid).is_none() {
                        return Err(PolicyError::ForbidNamesUnknownEntity {
                            clause: (*id).to_string(),
                            entity: uid.to_string(),
                        });
                    }
                }
            }
            // Ids are unique: they come from distinct file paths.
            policies.add(policy).map_err(|e| PolicyError::PolicyParse {
                clause: (*id).to_string(),
                message: e.to_string(),
            })?;
        }

        let result = Validator::new(schema.clone()).validate(&policies, ValidationMode::Strict);
        if !result.validation_passed() {
            let clauses: BTreeSet<String> = result
                .validation_errors()
                .map(|e| e.policy_id().to_string())
                .collect();
            let message = result
                .validation_errors()
                .map(|e| error_chain(e))
                .collect::<Vec<_>>()
                .join("; ");
            return Err(PolicyError::SchemaValidation {
                clauses: clauses.into_iter().collect(),
                message,
            });
        }
        if result.validation_warnings().next().is_some() {
            let clauses: BTreeSet<String> = result
                .validation_warnings()
                .map(|w| w.policy_id().to_string())
                .collect();
            let message = result
                .validation_warnings()
                .map(|w| error_chain(w))
                .collect::<Vec<_>>()
                .join("; ");
            return Err(PolicyError::ValidationWarnings {
                clauses: clauses.into_iter().collect(),
                message,
            });
        }

        let digest = sha3(&canonical);
        Ok(PolicyLayer {
            files,
            constitution,
            policies,
            schema,
            entities,
            registry,
            digest,
        })
    }

    /// The example layer bundled from `genesis/example-policy/`.
    ///
    /// # Panics
    /// If the bundled files are not a valid layer; a test loads it, so that
    /// would be a broken build, not a runtime condition.
    pub fn example() -> Self {
        let files: [(&str, &[u8]); 10] = [
            (
                CONSTITUTION_FILE,
                include_bytes!("../example-policy/constitution.toml"),
            ),
            (
                SCHEMA_FILE,
                include_bytes!("../example-policy/schema.cedarschema"),
            ),
            (
                ENTITIES_FILE,
                include_bytes!("../example-policy/entities.json"),
            ),
            (
                IDENTITIES_FILE,
                include_bytes!("../example-policy/identities.toml"),
            ),
            (
                "policies/data.export-internal.cedar",
                include_bytes!("../example-policy/policies/data.export-internal.cedar"),
            ),
            (
                "policies/data.no-pii-external.cedar",
                include_bytes!("../example-policy/policies/data.no-pii-external.cedar"),
            ),
            (
                "policies/infra.mutate-sre-window.cedar",
                include_bytes!("../example-policy/policies/infra.mutate-sre-window.cedar"),
            ),
            (
                "policies/payments.blocklist.cedar",
                include_bytes!("../example-policy/policies/payments.blocklist.cedar"),
            ),
            (
                "policies/payments.transfer-within-limit.cedar",
                include_bytes!("../example-policy/policies/payments.transfer-within-limit.cedar"),
            ),
            (
                "policies/safety.no-secrets.cedar",
                include_bytes!("../example-policy/policies/safety.no-secrets.cedar"),
            ),
        ];
        let files = files
            .into_iter()
            .map(|(path, bytes)| (path.to_string(), bytes.to_vec()))
            .collect();
        match Self::from_files(files) {
            Ok(layer) => layer,
            Err(e) => panic!("bundled example policy layer is invalid: {e}"),
        }
    }

    /// This layer with `registry` as its `identities.toml` (written by
    /// [`Registry::to_toml`]), validated anew: how a registry change is
    /// turned into the layer an amendment proposes.
    pub fn with_registry(&self, registry: &Registry) -> Result<PolicyLayer, PolicyError> {
        let mut files = self.files.clone();
        files.insert(IDENTITIES_FILE.to_string(), registry.to_toml().into_bytes());
        PolicyLayer::from_files(files)
    }

    /// The canonical bytes (see the module documentation); also the
    /// transport form.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        encode_files(&self.files)
    }

    /// Decodes canonical bytes strictly (tag, counts, sorted unique paths,
    /// no trailing bytes, sizes checked before allocation) and validates the
    /// layer as [`PolicyLayer::from_files`] does.
    pub fn from_canonical_bytes(bytes: &[u8]) -> Result<Self, PolicyError> {
        if bytes.len() as u64 > u64::from(LAYER_BYTES_HARD_MAX) {
            return Err(PolicyError::TooLarge {
                what: "canonical layer".to_string(),
                bytes: bytes.len() as u64,
                max: u64::from(LAYER_BYTES_HARD_MAX),
            });
        }
        let mut r = Reader::new(bytes);
        r.tag(LAYER_TAG, LAYER_VERSION)
            .map_err(|_| PolicyError::Canonical {
                offset: 0,
                message: format!(
                    "wrong domain tag, want {:?}",
                    domain_tag(LAYER_TAG, LAYER_VERSION)
                ),
            })?;
        let count_at = r.position();
        let count = r.u32("file count")?;
        if count > FILES_HARD_MAX {
            return Err(PolicyError::Canonical {
                offset: count_at,
                message: format!("file count {count} exceeds {FILES_HARD_MAX}"),
            });
        }
        // Each file takes at least two length prefixes.
        if u64::from(count) * 8 > r.remaining() as u64 {
            return Err(PolicyError::Canonical {
                offset: count_at,
                message: format!(
                    "file count {count} cannot fit in the {} bytes left",
                    r.remaining()
                ),
            });
        }
        let mut files = BTreeMap::new();
        let mut previous: Option<String> = None;
        for _ in 0..count {
            let path_at = r.position();
            let path = r.str("path")?.to_string();
            if let Some(prev) = &previous
                && prev.as_bytes() >= path.as_bytes()
            {
                return Err(PolicyError::Canonical {
                    offset: path_at,
                    message: format!(
                        "path {path:?} does not sort strictly after {prev:?} (paths must be sorted and unique)"
                    ),
                });
            }
            let content = r.bytes("content")?.to_vec();
            previous = Some(path.clone());
            files.insert(path, content);
        }
        r.finish()?;
        let layer = Self::from_files(files)?;
        debug_assert_eq!(layer.canonical_bytes(), bytes);
        Ok(layer)
    }

    /// SHA3-256 of the canonical bytes: the policy digest that gets sealed.
    pub fn digest(&self) -> Digest {
        self.digest
    }

    /// Writes exactly the layer's files into `dir`, which must be absent or
    /// empty. Files are synced before returning.
    pub fn write_dir(&self, dir: &Path) -> std::io::Result<()> {
        fs::create_dir_all(dir)?;
        if fs::read_dir(dir)?.next().is_some() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                format!("{} is not empty", dir.display()),
            ));
        }
        for (path, content) in &self.files {
            let target = dir.join(path);
            if let Some(parent) = target.parent() {
                fs::create_dir_all(parent)?;
            }
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&target)?;
            std::io::Write::write_all(&mut f, content)?;
            f.sync_all()?;
        }
        Ok(())
    }

    /// The files, keyed by relative path.
    pub fn files(&self) -> &BTreeMap<String, Vec<u8>> {
        &self.files
    }

    /// The parsed constitution.
    pub fn constitution(&self) -> &Constitution {
        &self.constitution
    }

    /// The Cedar policies; each `PolicyId` is its clause id.
    pub fn policies(&self) -> &PolicySet {
        &self.policies
    }

    /// The Cedar schema.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// The identity registry (`identities.toml`; empty when absent).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The sealed entities (including the schema's action entities).
    pub fn entities(&self) -> &Entities {
        &self.entities
    }

    /// The clause ids, sorted.
    pub fn clause_ids(&self) -> impl Iterator<Item = &str> {
        self.files.keys().filter_map(|path| {
            path.strip_prefix(POLICIES_DIR)?
                .strip_prefix('/')?
                .strip_suffix(POLICY_EXTENSION)
        })
    }

    /// The exact text of clause `id`, if the layer has it.
    pub fn clause_text(&self, id: &str) -> Option<&[u8]> {
        self.files.get(&policy_path(id)).map(Vec::as_slice)
    }
}

/// Canonical-bytes errors keep the messages (and offsets) this module has
/// always given.
impl From<ReadError> for PolicyError {
    fn from(e: ReadError) -> Self {
        let (offset, message) = match e {
            ReadError::Truncated {
                field,
                offset,
                needed,
                remaining,
            } => (
                offset,
                format!("truncated: {field} needs {needed} bytes, {remaining} left"),
            ),
            // Not read here (counts are checked in place); kept total.
            ReadError::TooLong(b) | ReadError::TooMany(b) => (
                b.offset,
                format!(
                    "{} declares {}, over the bound of {}",
                    b.field, b.value, b.max
                ),
            ),
            ReadError::NotUtf8 { field, offset } => (offset, format!("{field} is not UTF-8")),
            ReadError::Tag { offset, expected } => {
                (offset, format!("wrong domain tag, want {expected:?}"))
            }
            ReadError::Trailing { offset, count } => (offset, format!("{count} trailing bytes")),
        };
        PolicyError::Canonical { offset, message }
    }
}

/// Reads one directory level of a layer into `files`. `prefix` is `None` at
/// the top and `Some("policies")` inside the policies directory.
fn read_level(
    dir: &Path,
    prefix: Option<&str>,
    files: &mut BTreeMap<String, Vec<u8>>,
    total: &mut u64,
) -> Result<(), PolicyError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| PolicyError::Io { path, source }
    };
    let entries = fs::read_dir(dir).map_err(io(dir))?;
    for entry in entries {
        let entry = entry.map_err(io(dir))?;
        let full = entry.path();
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            return Err(PolicyError::NotUtf8(full.display().to_string()));
        };
        let rel = match prefix {
            None => name.to_string(),
            Some(p) => format!("{p}/{name}"),
        };
        // `DirEntry::file_type` does not follow symlinks.
        let kind = entry.file_type().map_err(io(&full))?;
        if kind.is_symlink() {
            return Err(PolicyError::Symlink(full));
        }
        if kind.is_dir() {
            if prefix.is_none() && name == POLICIES_DIR {
                read_level(&full, Some(POLICIES_DIR), files, total)?;
                continue;
            }
            return Err(PolicyError::UnexpectedFile(format!("{rel}/")));
        }
        if !kind.is_file() {
            return Err(PolicyError::NotRegularFile(full));
        }
        if files.len() as u64 >= u64::from(FILES_HARD_MAX) {
            return Err(PolicyError::TooManyPolicies {
                count: files.len() as u64 + 1,
                max: u64::from(POLICIES_HARD_MAX),
            });
        }
        // Read at most one byte past the budget, so a huge (or growing) file
        // is refused without being read whole.
        let budget = u64::from(LAYER_BYTES_HARD_MAX) - *total;
        let file = fs::File::open(&full).map_err(io(&full))?;
        let mut content = Vec::new();
        file.take(budget + 1)
            .read_to_end(&mut content)
            .map_err(io(&full))?;
        if content.len() as u64 > budget {
            return Err(PolicyError::TooLarge {
                what: format!("policy layer files (at {rel})"),
                bytes: *total + content.len() as u64,
                max: u64::from(LAYER_BYTES_HARD_MAX),
            });
        }
        *total += content.len() as u64;
        files.insert(rel, content);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clause_ids_follow_the_pattern() {
        for good in ["a", "0", "payments.blocklist", "a-b_c.d", &"a".repeat(64)] {
            assert!(check_clause_id(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "A",
            ".a",
            "-a",
            "_a",
            "a/b",
            "a b",
            "é",
            &"a".repeat(65),
        ] {
            assert!(
                matches!(check_clause_id(bad), Err(PolicyError::BadClauseId(ref s)) if s == bad),
                "{bad}"
            );
        }
    }

    #[test]
    fn classify_accepts_only_the_layout() {
        assert!(matches!(
            classify("constitution.toml"),
            Ok(FileKind::Constitution)
        ));
        assert!(matches!(
            classify("schema.cedarschema"),
            Ok(FileKind::Schema)
        ));
        assert!(matches!(classify("entities.json"), Ok(FileKind::Entities)));
        assert!(matches!(
            classify("policies/x.cedar"),
            Ok(FileKind::Policy("x"))
        ));
        for bad in [
            "README.md",
            "policies",
            "policies/x.txt",
            "policies/a/x.cedar",
            "other/x.cedar",
            "policiesx.cedar",
            "./constitution.toml",
        ] {
            assert!(
                matches!(classify(bad), Err(PolicyError::UnexpectedFile(_))),
                "{bad}"
            );
        }
        assert!(matches!(
            classify("policies/.cedar"),
            Err(PolicyError::BadClauseId(_))
        ));
        assert!(matches!(
            classify("policies/Upper.cedar"),
            Err(PolicyError::BadClauseId(_))
        ));
    }

    #[test]
    fn clause_digest_layout_is_exact() {
        let mut want = b"senatus/policy-clause/v1\0".to_vec();
        want.extend_from_slice(&[0, 0, 0, 1, b'x', 0, 0, 0, 2, b'a', b'b']);
        assert_eq!(clause_digest("x", b"ab"), sha3(&want));
    }

    #[test]
    fn shape_skips_comments_and_strings_and_counts_operators() {
        let text = "// ((((\npermit (principal, action, resource) when { \"\\\"((\" == \"[\" && !(1 < 2) };";
        // `when {`, `!(`: depth 2; ops: 2 `,`, `==`, `&&`, `!`, `<`.
        assert_eq!(check_shape("p", text, false).ok(), Some(6));
        assert!(matches!(
            check_shape("s", &format!("{}{}", "<".repeat(33), ">".repeat(33)), true),
            Err(PolicyError::TooComplex { value: 33, .. })
        ));
        // In a policy `<` is an operator, not a bracket.
        assert_eq!(check_shape("p", &"<".repeat(40), false).ok(), Some(40));
    }

    #[test]
    fn entity_shape_follows_escaped_uids_and_finds_cycles() {
        let ok = r#"[{"uid": {"__entity": {"type": "A", "id": "a"}}, "attrs": {},
                      "parents": [{"__entity": {"type": "A", "id": "b"}}]},
                     {"uid": {"type": "A", "id": "b"}, "attrs": {}, "parents": []}]"#;
        assert!(check_entities_shape(ok).is_ok());
        let cycle = r#"[{"uid": {"__entity": {"type": "A", "id": "a"}}, "attrs": {},
                         "parents": [{"type": "A", "id": "a"}]}]"#;
        assert!(matches!(
            check_entities_shape(cycle),
            Err(PolicyError::EntitiesInvalid(m)) if m.contains("cycle")
        ));
        assert!(matches!(
            check_entities_shape("{}"),
            Err(PolicyError::EntitiesInvalid(_))
        ));
    }

    /// The example constitution with `proposers` set to `keys` (TOML text).
    fn with_proposers(keys: &str) -> String {
        let text = include_str!("../example-policy/constitution.toml");
        text.replace(
            "deadline_entries = 1000\n",
            &format!("deadline_entries = 1000\nproposers = [{keys}]\n"),
        )
    }

    // The Ed25519 base point: a valid key of prime order.
    const BASE: &str = "\"5866666666666666666666666666666666666666666666666666666666666666\"";

    #[test]
    fn token_rules_are_optional_and_bounded() {
        let example = include_str!("../example-policy/constitution.toml");
        let plain = Constitution::parse(example).expect("example");
        assert_eq!(plain.tokens, TokenRules::default());
        assert_eq!(plain.tokens.lifetime_ms_max, 300_000);
        assert_eq!(plain.tokens.issued_skew_ms_max, 10_000);
        let with = |table: &str| format!("{example}\n[tokens]\n{table}\n");
        let set = Constitution::parse(&with("lifetime_ms_max = 60000")).expect("set");
        assert_eq!(set.tokens.lifetime_ms_max, 60_000);
        assert_eq!(set.tokens.issued_skew_ms_max, 10_000);
        let refused = |table: &str, want: &str| match Constitution::parse(&with(table)) {
            Err(e) => assert!(e.to_string().contains(want), "{e}"),
            Ok(_) => panic!("accepted {table}"),
        };
        refused("lifetime_ms_max = 0", "tokens.lifetime_ms_max");
        refused("lifetime_ms_max = 3600001", "TOKEN_LIFETIME_MS_HARD_MAX");
        refused("issued_skew_ms_max = 0", "tokens.issued_skew_ms_max");
        refused("issued_skew_ms_max = 600001", "ISSUED_SKEW_MS_HARD_MAX");
        refused("lifetime = 5", "unknown field");
    }

    #[test]
    fn proposers_are_optional_and_parse_as_keys() {
        let plain = Constitution::parse(include_str!("../example-policy/constitution.toml"))
            .expect("example");
        assert!(plain.amendment.proposers.is_empty());
        let listed = Constitution::parse(&with_proposers(BASE)).expect("one proposer");
        assert_eq!(
            listed
                .amendment
                .proposers
                .iter()
                .map(Key32::to_string)
                .collect::<Vec<_>>(),
            vec!["5866666666666666666666666666666666666666666666666666666666666666"]
        );
    }

    #[test]
    fn proposers_refuse_bad_weak_duplicate_and_too_many_keys() {
        let refused = |text: &str, want: &str| match Constitution::parse(text) {
            Err(e) => assert!(e.to_string().contains(want), "{e}"),
            Ok(_) => panic!("accepted {text}"),
        };
        // Not 32 bytes of hex: a serde error naming the length.
        refused(&with_proposers("\"abcd\""), "want 32 bytes");
        // The identity point has small order.
        let identity = format!("\"01{}\"", "00".repeat(31));
        refused(&with_proposers(&identity), &identity[1..65]);
        // y = 2 is not on the curve.
        let off_curve = format!("\"02{}\"", "00".repeat(31));
        refused(&with_proposers(&off_curve), "not of small order");
        refused(&with_proposers(&format!("{BASE}, {BASE}")), "listed twice");
        let many = vec![BASE; PROPOSERS_MAX + 1].join(", ");
        refused(&with_proposers(&many), "65 keys");
    }

    #[test]
    fn reader_refuses_lengths_beyond_the_input() {
        let bytes = [0xff, 0xff, 0xff, 0xff, 1, 2];
        let mut r = Reader::new(&bytes);
        assert!(matches!(
            r.bytes("content").map_err(PolicyError::from),
            Err(PolicyError::Canonical { offset: 4, .. })
        ));
    }
}
