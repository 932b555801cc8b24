//! Deterministic evaluation of a decision request against the active
//! policy layer: every validator runs this on apply, and every signer runs
//! it again before contributing a signature share.
//!
//! # Rules, in order (the first that applies decides)
//! 1. The request fails [`DecisionRequest::validate_with`] at the
//!    constitution's `limits.params_bytes_max` → SILENCE
//!    [`REASON_INVALID_REQUEST`]. (The request is already in the ledger when
//!    this runs, so malformed input is an outcome, never a panic.)
//! 2. `uncertainty_permille >= uncertainty.alpha_permille` → SILENCE
//!    [`REASON_UNCERTAINTY`]; policy is not consulted.
//! 3. The request does not fit the Cedar schema (unknown action
//!    `<surface>.<action>`, params missing, extra or ill-typed for that
//!    action, principal or resource type not allowed) → SILENCE
//!    [`REASON_INVALID_REQUEST`].
//! 4. More distinct external endpoints than
//!    `detectors.external_endpoints_max` → DENY
//!    [`REASON_EXTERNAL_ENDPOINTS`].
//! 5. Cedar authorization with the sealed entities:
//!    * any policy raised an evaluation error → DENY, reasons = the forbid
//!      clauses that matched plus `senatus.policy-error:<clause id>` for
//!      each erroring clause. Cedar itself skips an erroring policy, which
//!      for a `forbid` would fail open; so an error anywhere fails closed,
//!      even if it was in a permit (e.g. a tenant missing from
//!      `entities.json`, whose attributes a permit reads);
//!    * a forbid matched → DENY, reasons = the matching forbid clause ids;
//!    * a permit matched → PERMIT, reasons = the matching permit clause ids;
//!    * nothing matched → SILENCE [`REASON_NO_PERMIT`].
//!
//! Reasons are sorted bytewise and unique. Ids starting with `senatus.` are
//! reserved for the evaluator: the plain ones are only ever emitted alone,
//! and `senatus.policy-error:<id>` holds a `:`, which no clause id can. (A
//! sealed layer should not name a clause `senatus.*`; the genesis clause-id
//! rule does not forbid it yet.)
//!
//! # Determinism
//! Evaluation reads only the request, `now_unix_ms` (the leader's batch
//! timestamp from the ledger) and the sealed layer. Params are evaluated in
//! their canonical (RFC 8785) form, re-parsed, exactly as a replica that
//! decodes the ledger entry sees them, so a float such as `2.0` is `2` for
//! everyone.
//!
//! # Decision encoding (`senatus/decision/v1`)
//! ```text
//! "senatus/decision/v1" 0x00
//! u8  outcome code          1 PERMIT, 2 DENY, 3 SILENCE
//! u32 number_of_reasons
//!   str reason              sorted bytewise, unique
//! u64 policy_version
//! ```
//! Facts, findings and `detail` are not part of the encoding: they are
//! forensics, and the outcome and reasons already depend on them.

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr as _;

use cedar_policy::{
    Authorizer, Context, Decision as CedarDecision, Entities, EntityId, EntityTypeName, EntityUid,
    PolicySet, Request, RestrictedExpression, Schema,
};
use senatus_genesis::codec::{Digest, Encoder, sha3};
use senatus_genesis::{PolicyLayer, PolicyVersion};

use crate::detect::{DetectError, Detectors, Facts, Finding};
use crate::outcome::Outcome;
use crate::request::DecisionRequest;

/// Domain-separation object name of the decision encoding.
pub const DECISION_TAG: &str = "decision";
/// Version of the decision encoding.
pub const DECISION_VERSION: u8 = 1;

/// Reason: the agent's uncertainty reached α.
pub const REASON_UNCERTAINTY: &str = "senatus.uncertainty";
/// Reason: the request is malformed or does not fit the schema.
pub const REASON_INVALID_REQUEST: &str = "senatus.invalid-request";
/// Reason: the request names too many external endpoints.
pub const REASON_EXTERNAL_ENDPOINTS: &str = "senatus.external-endpoints";
/// Reason: no permit clause matched.
pub const REASON_NO_PERMIT: &str = "senatus.no-permit";
/// Reason prefix: a clause raised an error; the clause id follows.
pub const REASON_POLICY_ERROR_PREFIX: &str = "senatus.policy-error:";

/// Cedar type of the principal.
pub const AGENT_TYPE: &str = "Senatus::Agent";
/// Cedar type of the action entities.
pub const ACTION_TYPE: &str = "Senatus::Action";
/// Longest `detail` kept in a decision, in bytes.
pub const DETAIL_BYTES_MAX: usize = 512;

/// The outcome of evaluating one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// PERMIT, DENY or SILENCE.
    pub outcome: Outcome,
    /// Determining clause ids or reserved `senatus.*` reasons; sorted,
    /// unique, never empty.
    pub reasons: Vec<String>,
    /// What the detectors measured (all default when the request was
    /// rejected before detection).
    pub facts: Facts,
    /// Which detectors fired (sorted, unique).
    pub findings: Vec<Finding>,
    /// Version of the policy layer that decided.
    pub policy_version: PolicyVersion,
    /// Human-readable detail for operators (why a request was invalid,
    /// which evaluation error occurred); not encoded, not signed.
    pub detail: Option<String>,
}

impl Decision {
    /// The canonical bytes (see the module documentation).
    pub fn encode(&self) -> Vec<u8> {
        let mut e = Encoder::new(DECISION_TAG, DECISION_VERSION);
        e.u8(self.outcome.code());
        e.count(self.reasons.len());
        for reason in &self.reasons {
            e.str(reason);
        }
        e.u64(self.policy_version.0);
        e.finish()
    }

    /// SHA3-256 of [`Decision::encode`].
    pub fn digest(&self) -> Digest {
        sha3(&self.encode())
    }
}

/// Why a policy layer cannot be turned into an evaluator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvalError {
    /// Sealed detector data is malformed.
    #[error("detectors: {0}")]
    Detectors(#[from] DetectError),
    /// A fixed Cedar type name failed to parse (a broken build).
    #[error("Cedar type name {name:?}: {message}")]
    TypeName {
        /// The name.
        name: &'static str,
        /// Cedar's error.
        message: String,
    },
}

/// The compiled form of one policy layer: policies, schema, entities and
/// detectors parsed once, so that each evaluation only builds one Cedar
/// request.
#[derive(Debug, Clone)]
pub struct Evaluator {
    policies: PolicySet,
    schema: Schema,
    entities: Entities,
    detectors: Detectors,
    actions: BTreeMap<String, EntityUid>,
    agent_type: EntityTypeName,
    tenant_type: EntityTypeName,
    alpha_permille: u16,
    external_endpoints_max: u32,
    params_bytes_max: u32,
    policy_version: PolicyVersion,
    policy_digest: Digest,
    registry: std::sync::Arc<senatus_genesis::registry::Registry>,
    signed_skew_ms_max: u64,
    quotas: senatus_genesis::policy::QuotaRules,
}

fn type_name(name: &'static str) -> Result<EntityTypeName, EvalError> {
    EntityTypeName::from_str(name).map_err(|e| EvalError::TypeName {
        name,
        message: e.to_string(),
    })
}

fn cut(mut s: String) -> String {
    if s.len() > DETAIL_BYTES_MAX {
        let mut at = DETAIL_BYTES_MAX;
        while !s.is_char_boundary(at) {
            at -= 1;
        }
        s.truncate(at);
        s.push('…');
    }
    s
}

/// A JSON value as a Cedar restricted expression, for the fast path of
/// [`Evaluator::evaluate`]; `None` for what has no direct Cedar form (null,
/// floats, integers beyond i64, and objects using Cedar's JSON escapes
/// `__entity`, `__extn` or `__expr`, which only the schema-directed parser
/// may interpret).
fn to_restricted(v: &serde_json::Value) -> Option<RestrictedExpression> {
    Some(match v {
        serde_json::Value::Bool(b) => RestrictedExpression::new_bool(*b),
        serde_json::Value::Number(n) => RestrictedExpression::new_long(n.as_i64()?),
        serde_json::Value::String(s) => RestrictedExpression::new_string(s.clone()),
        serde_json::Value::Array(items) => RestrictedExpression::new_set(
            items
                .iter()
                .map(to_restricted)
                .collect::<Option<Vec<_>>>()?,
        ),
        serde_json::Value::Object(map) => {
            if ["__entity", "__extn", "__expr"]
                .iter()
                .any(|k| map.contains_key(*k))
            {
                return None;
            }
            let fields = map
                .iter()
                .map(|(k, v)| Some((k.clone(), to_restricted(v)?)))
                .collect::<Option<Vec<_>>>()?;
            RestrictedExpression::new_record(fields).ok()?
        }
        serde_json::Value::Null => return None,
    })
}

impl Evaluator {
    /// Compiles `layer` for evaluation.
    pub fn new(layer: &PolicyLayer) -> Result<Evaluator, EvalError> {
        let constitution = layer.constitution();
        let schema = layer.schema().clone();
        let action_type = type_name(ACTION_TYPE)?;
        let actions = schema
            .actions()
            .filter(|uid| uid.type_name() == &action_type)
            .map(|uid| (uid.id().unescaped().to_string(), uid.clone()))
            .collect();
        Ok(Evaluator {
            policies: layer.policies().clone(),
            entities: layer.entities().clone(),
            detectors: Detectors::from_layer(layer)?,
            actions,
            agent_type: type_name(AGENT_TYPE)?,
            tenant_type: type_name(crate::detect::TENANT_TYPE)?,
            alpha_permille: constitution.uncertainty.alpha_permille,
            external_endpoints_max: constitution.detectors.external_endpoints_max,
            params_bytes_max: constitution.limits.params_bytes_max,
            policy_version: PolicyVersion(constitution.version),
            policy_digest: layer.digest(),
            registry: std::sync::Arc::new(layer.registry().clone()),
            signed_skew_ms_max: constitution.requests.signed_skew_ms_max,
            quotas: constitution.quotas,
            schema,
        })
    }

    /// The layer's identity registry.
    pub fn registry(&self) -> &senatus_genesis::registry::Registry {
        &self.registry
    }

    /// The layer's freshness window for signed requests, in ms.
    pub fn signed_skew_ms_max(&self) -> u64 {
        self.signed_skew_ms_max
    }

    /// The layer's quotas (`[quotas]`): what the leader admits per agent
    /// and per tenant ([`crate::quota`]).
    pub fn quotas(&self) -> &senatus_genesis::policy::QuotaRules {
        &self.quotas
    }

    /// Checks that `signed` comes from a registered agent allowed its
    /// tenant and actor, signed within the layer's freshness window of
    /// `at_ms`, for the chain `genesis_digest` (docs/PROTOCOL.md 10.1).
    /// A signature `memo` has seen verify is not verified again.
    pub fn authenticate(
        &self,
        signed: &crate::auth::SignedRequest,
        genesis_digest: &Digest,
        at_ms: u64,
        memo: &dyn crate::auth::Verified,
    ) -> Result<&senatus_genesis::registry::Identity, crate::auth::AuthError> {
        signed.authenticate_memo(
            &self.registry,
            genesis_digest,
            at_ms,
            self.signed_skew_ms_max,
            memo,
        )
    }

    /// Version of the layer this evaluator decides with.
    pub fn policy_version(&self) -> PolicyVersion {
        self.policy_version
    }

    /// Digest of the layer this evaluator decides with.
    pub fn policy_digest(&self) -> Digest {
        self.policy_digest
    }

    /// The layer's detectors.
    pub fn detectors(&self) -> &Detectors {
        &self.detectors
    }

    fn decision(
        &self,
        outcome: Outcome,
        reasons: BTreeSet<String>,
        facts: Facts,
        findings: Vec<Finding>,
        detail: Option<String>,
    ) -> Decision {
        assert!(!reasons.is_empty(), "a decision always names its reasons");
        Decision {
            outcome,
            reasons: reasons.into_iter().collect(),
            facts,
            findings,
            policy_version: self.policy_version,
            detail: detail.map(cut),
        }
    }

    /// The Cedar request, validated against the schema.
    ///
    /// Fast path: params are converted directly into a Cedar record (JSON
    /// string, integer, boolean, array and object become String, Long, Bool,
    /// Set and Record) and [`Request::new`] checks the whole context against
    /// the action's schema. This is about ten times cheaper than Cedar's
    /// JSON context parser. Only when the fast path cannot represent the
    /// params or the schema refuses them (e.g. a schema that types a param
    /// as an entity or extension value, or a float) does the slow path run:
    /// Cedar's schema-directed JSON parser, whose verdict then stands. Both
    /// paths yield the same context whenever the fast one succeeds, so which
    /// path ran never changes a decision.
    fn cedar_request(
        &self,
        principal: EntityUid,
        action: &EntityUid,
        resource: EntityUid,
        params: serde_json::Value,
        facts: &Facts,
    ) -> Result<Request, String> {
        let facts_expr = || {
            RestrictedExpression::new_record([
                (
                    "pii_detected".to_string(),
                    RestrictedExpression::new_bool(facts.pii_detected),
                ),
                (
                    "secrets_detected".to_string(),
                    RestrictedExpression::new_bool(facts.secrets_detected),
                ),
                (
                    "external_endpoints".to_string(),
                    RestrictedExpression::new_long(facts.external_endpoints),
                ),
                (
                    "destination_external".to_string(),
                    RestrictedExpression::new_bool(facts.destination_external),
                ),
                (
                    "in_change_window".to_string(),
                    RestrictedExpression::new_bool(facts.in_change_window),
                ),
            ])
            .ok()
        };
        let fast = to_restricted(&params)
            .zip(facts_expr())
            .and_then(|(p, f)| {
                Context::from_pairs([("params".to_string(), p), ("facts".to_string(), f)]).ok()
            })
            .and_then(|context| {
                Request::new(
                    principal.clone(),
                    action.clone(),
                    resource.clone(),
                    context,
                    Some(&self.schema),
                )
                .ok()
            });
        if let Some(request) = fast {
            return Ok(request);
        }
        let context = serde_json::json!({ "params": params, "facts": facts.to_json() });
        let context = Context::from_json_value(context, Some((&self.schema, action)))
            .map_err(|e| format!("context: {e}"))?;
        Request::new(
            principal,
            action.clone(),
            resource,
            context,
            Some(&self.schema),
        )
        .map_err(|e| format!("request: {e}"))
    }

    /// Decides `req` at decision time `now_unix_ms` (see the module
    /// documentation for the rules).
    pub fn evaluate(&self, req: &DecisionRequest, now_unix_ms: u64) -> Decision {
        let reserved = |r: &str| BTreeSet::from([r.to_string()]);
        let invalid = |facts: Facts, findings: Vec<Finding>, detail: String| {
            self.decision(
                Outcome::Silence,
                reserved(REASON_INVALID_REQUEST),
                facts,
                findings,
                Some(detail),
            )
        };

        let canonical = match req.validate_with(self.params_bytes_max) {
            Ok(bytes) => bytes,
            Err(e) => return invalid(Facts::default(), Vec::new(), e.to_string()),
        };
        let params: serde_json::Value = match serde_json::from_slice(&canonical) {
            Ok(v) => v,
            Err(e) => return invalid(Facts::default(), Vec::new(), format!("params: {e}")),
        };
        let detection = self.detectors.detect_parts(
            &req.tenant,
            &params,
            &req.context.external_endpoints,
            now_unix_ms,
        );
        let facts = detection.facts;
        let findings = detection.fired;

        if req.context.uncertainty_permille >= self.alpha_permille {
            return self.decision(
                Outcome::Silence,
                reserved(REASON_UNCERTAINTY),
                facts,
                findings,
                Some(format!(
                    "uncertainty_permille {} >= alpha_permille {}",
                    req.context.uncertainty_permille, self.alpha_permille
                )),
            );
        }

        let action_id = req.action_id();
        let Some(action) = self.actions.get(&action_id) else {
            return invalid(
                facts,
                findings,
                format!("the schema declares no action {action_id:?}"),
            );
        };
        let principal =
            EntityUid::from_type_name_and_id(self.agent_type.clone(), EntityId::new(&req.actor));
        let resource =
            EntityUid::from_type_name_and_id(self.tenant_type.clone(), EntityId::new(&req.tenant));
        let request = match self.cedar_request(principal, action, resource, params, &facts) {
            Ok(r) => r,
            Err(detail) => return invalid(facts, findings, detail),
        };

        if facts.external_endpoints > i64::from(self.external_endpoints_max) {
            return self.decision(
                Outcome::Deny,
                reserved(REASON_EXTERNAL_ENDPOINTS),
                facts,
                findings,
                Some(format!(
                    "{} distinct external endpoints, limit {}",
                    facts.external_endpoints, self.external_endpoints_max
                )),
            );
        }

        let response = Authorizer::new().is_authorized(&request, &self.policies, &self.entities);
        let diagnostics = response.diagnostics();
        let matched: BTreeSet<String> = diagnostics.reason().map(ToString::to_string).collect();
        let mut errors: BTreeSet<String> = BTreeSet::new();
        let mut messages: Vec<String> = Vec::new();
        for error in diagnostics.errors() {
            let cedar_policy::AuthorizationError::PolicyEvaluationError(e) = error;
            errors.insert(format!("{REASON_POLICY_ERROR_PREFIX}{}", e.policy_id()));
            messages.push(error.to_string());
        }
        if !errors.is_empty() {
            messages.sort();
            let mut reasons = errors;
            if response.decision() == CedarDecision::Deny {
                // On Deny, Cedar's reasons are the satisfied forbids.
                reasons.extend(matched);
            }
            return self.decision(
                Outcome::Deny,
                reasons,
                facts,
                findings,
                Some(messages.join("; ")),
            );
        }
        match (response.decision(), matched.is_empty()) {
            (CedarDecision::Allow, _) => {
                self.decision(Outcome::Permit, matched, facts, findings, None)
            }
            (CedarDecision::Deny, false) => {
                self.decision(Outcome::Deny, matched, facts, findings, None)
            }
            (CedarDecision::Deny, true) => self.decision(
                Outcome::Silence,
                reserved(REASON_NO_PERMIT),
                facts,
                findings,
                None,
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decision_layout_is_exact() {
        let d = Decision {
            outcome: Outcome::Deny,
            reasons: vec!["a.b".to_string(), "senatus.no-permit".to_string()],
            facts: Facts::default(),
            findings: Vec::new(),
            policy_version: PolicyVersion(7),
            detail: Some("ignored".to_string()),
        };
        let mut want = b"senatus/decision/v1\0".to_vec();
        want.push(2);
        want.extend_from_slice(&2u32.to_be_bytes());
        want.extend_from_slice(&3u32.to_be_bytes());
        want.extend_from_slice(b"a.b");
        want.extend_from_slice(&17u32.to_be_bytes());
        want.extend_from_slice(b"senatus.no-permit");
        want.extend_from_slice(&7u64.to_be_bytes());
        assert_eq!(d.encode(), want);
        assert_eq!(d.digest(), sha3(&want));
        // Pinned for outside implementations (docs/PROTOCOL.md).
        assert_eq!(
            d.digest().to_hex(),
            "d54332401e13e4ce8a42e4f914a9ac0c63ad9b8d470755307df1ba953ee03e7e"
        );
    }

    #[test]
    fn detail_is_cut_on_a_char_boundary() {
        let s = cut("é".repeat(DETAIL_BYTES_MAX));
        assert!(s.len() <= DETAIL_BYTES_MAX + '…'.len_utf8());
        assert!(s.ends_with('…'));
        assert_eq!(cut("short".to_string()), "short");
    }
}
