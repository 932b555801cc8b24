//! The params digest: SHA3-256 over the RFC 8785 (JCS) canonical JSON of a
//! request's params object. No domain tag, so a broker in any language can
//! recompute it from the params it is about to execute with a stock JCS
//! library and a stock SHA3-256.

use senatus_genesis::Digest;
use sha3::{Digest as _, Sha3_256};

/// Deepest JSON nesting accepted in params (arrays and objects).
pub const PARAMS_DEPTH_MAX: usize = 32;

/// Why params cannot be digested.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamsError {
    /// Params must be a JSON object.
    #[error("params must be a JSON object, found {found}")]
    NotAnObject {
        /// The JSON type found instead.
        found: &'static str,
    },
    /// Nested deeper than [`PARAMS_DEPTH_MAX`].
    #[error("params nest deeper than {PARAMS_DEPTH_MAX} levels")]
    TooDeep,
    /// The JCS serializer refused the value (e.g. a non-finite number).
    #[error("params cannot be canonicalized (RFC 8785): {0}")]
    Canonicalization(String),
}

fn json_type(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

fn depth(v: &serde_json::Value) -> usize {
    match v {
        serde_json::Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
        serde_json::Value::Object(o) => 1 + o.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// The RFC 8785 canonical bytes of `params` (which must be an object).
pub fn canonical_params(params: &serde_json::Value) -> Result<Vec<u8>, ParamsError> {
    if !params.is_object() {
        return Err(ParamsError::NotAnObject {
            found: json_type(params),
        });
    }
    if depth(params) > PARAMS_DEPTH_MAX {
        return Err(ParamsError::TooDeep);
    }
    serde_jcs::to_vec(params).map_err(|e| ParamsError::Canonicalization(e.to_string()))
}

/// SHA3-256 of [`canonical_params`].
pub fn params_digest(params: &serde_json::Value) -> Result<Digest, ParamsError> {
    let bytes = canonical_params(params)?;
    Ok(Digest(Sha3_256::digest(&bytes).into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_order_and_whitespace_do_not_change_the_digest() {
        let a: serde_json::Value =
            serde_json::from_str(r#"{"b": 1, "a": {"y": "x", "c": [1, 2.0]}}"#).expect("json");
        let b: serde_json::Value =
            serde_json::from_str(r#"{"a":{"c":[1,2],"y":"x"},"b":1}"#).expect("json");
        assert_eq!(
            canonical_params(&a).expect("jcs"),
            br#"{"a":{"c":[1,2],"y":"x"},"b":1}"#.to_vec()
        );
        assert_eq!(params_digest(&a).expect("d"), params_digest(&b).expect("d"));
        let c: serde_json::Value =
            serde_json::from_str(r#"{"b":2,"a":{"c":[1,2],"y":"x"}}"#).expect("json");
        assert_ne!(params_digest(&a).expect("d"), params_digest(&c).expect("d"));
    }

    #[test]
    fn refuses_non_objects_and_deep_nesting() {
        let err = params_digest(&serde_json::json!([1])).expect_err("array");
        assert_eq!(err, ParamsError::NotAnObject { found: "an array" });
        let mut v = serde_json::json!(1);
        for _ in 0..PARAMS_DEPTH_MAX {
            v = serde_json::json!({ "k": v });
        }
        params_digest(&v).expect("exactly at the limit");
        let v = serde_json::json!({ "k": v });
        assert_eq!(
            params_digest(&v).expect_err("too deep"),
            ParamsError::TooDeep
        );
    }
}
