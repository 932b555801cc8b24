//! The params digest: SHA3-256 over the RFC 8785 (JCS) canonical JSON of a
//! request's params object. No domain tag, so a broker in any language can
//! recompute it from the params it is about to execute with a stock JCS
//! library and a stock SHA3-256.

use senatus_genesis::Digest;
use sha3::{Digest as _, Sha3_256};

/// Deepest JSON nesting accepted in params (arrays and objects).
pub const PARAMS_DEPTH_MAX: usize = 32;

/// Largest integer magnitude params may carry: I-JSON (RFC 7493 2.2)
/// interoperable integers are `[-(2^53 - 1), 2^53 - 1]`.
pub const PARAMS_INTEGER_MAX: u64 = (1 << 53) - 1;

/// Why params cannot be digested.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamsError {
    /// The text is not JSON.
    #[error("params are not JSON: {0}")]
    NotJson(String),
    /// One object names a key twice: a parser keeps one of the two values
    /// (serde_json the last, others the first), so the executor and the
    /// digest could read different params.
    #[error(
        "params repeat the key {key:?} in one object; every key must be unique (RFC 8259 4, RFC 7493 2.3)"
    )]
    DuplicateKey {
        /// The repeated key (at most 64 characters of it).
        key: String,
    },
    /// A number whose text denotes another decimal value than its RFC 8785
    /// form: the double it parses to is not that number, so an executor
    /// reading the text and the digest would bind different values.
    #[error(
        "params number {text} is not exactly a double: RFC 8785 makes it {canonical}; send a number a double holds exactly"
    )]
    InexactNumber {
        /// The number as sent (at most 64 characters of it).
        text: String,
        /// Its RFC 8785 form.
        canonical: String,
    },
    /// An integer outside I-JSON's interoperable range.
    #[error(
        "params integer {text} is beyond +/-(2^53 - 1), the integers every JSON reader holds exactly (RFC 7493 2.2)"
    )]
    IntegerOutOfRange {
        /// The integer (at most 64 characters of it).
        text: String,
    },
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

/// The first integer in `v` beyond [`PARAMS_INTEGER_MAX`] in magnitude.
fn integer_out_of_range(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::Number(n) => {
            let beyond = n.as_u64().is_some_and(|u| u > PARAMS_INTEGER_MAX)
                || n.as_i64()
                    .is_some_and(|i| i.unsigned_abs() > PARAMS_INTEGER_MAX);
            beyond.then(|| n.to_string())
        }
        serde_json::Value::Array(a) => a.iter().find_map(integer_out_of_range),
        serde_json::Value::Object(o) => o.values().find_map(integer_out_of_range),
        _ => None,
    }
}

/// The RFC 8785 canonical bytes of `params` (which must be an object, at
/// most [`PARAMS_DEPTH_MAX`] deep, with integers within
/// [`PARAMS_INTEGER_MAX`]).
pub fn canonical_params(params: &serde_json::Value) -> Result<Vec<u8>, ParamsError> {
    if !params.is_object() {
        return Err(ParamsError::NotAnObject {
            found: json_type(params),
        });
    }
    if depth(params) > PARAMS_DEPTH_MAX {
        return Err(ParamsError::TooDeep);
    }
    if let Some(text) = integer_out_of_range(params) {
        return Err(ParamsError::IntegerOutOfRange { text: clip(&text) });
    }
    serde_jcs::to_vec(params).map_err(|e| ParamsError::Canonicalization(e.to_string()))
}

/// Parses params from JSON text, refusing what JCS cannot bind one to one
/// (`docs/PROTOCOL.md` 9.1): a key repeated in one object, a number whose
/// text is another decimal value than its RFC 8785 form
/// (`0.10000000000000001`, `9007199254740993`), an integer beyond
/// [`PARAMS_INTEGER_MAX`]; then the rules of [`canonical_params`]. Numbers a
/// double holds exactly in any spelling (`1.0`, `1e2`, `0.5`) are
/// accepted and returned as their RFC 8785 form says (`1`, `100`, `0.5`).
pub fn parse_params(text: &str) -> Result<serde_json::Value, ParamsError> {
    use serde::de::DeserializeSeed as _;
    let repeated = std::cell::RefCell::new(None);
    let mut de = serde_json::Deserializer::from_str(text);
    let value = Strict(&repeated)
        .deserialize(&mut de)
        .and_then(|v| de.end().map(|()| v))
        .map_err(|e| match repeated.take() {
            Some(key) => ParamsError::DuplicateKey { key },
            None => ParamsError::NotJson(e.to_string()),
        })?;
    for token in number_tokens(text) {
        check_number(token)?;
    }
    // The params are what their RFC 8785 form says: `4e1` and `40` are
    // then one value (an integer) to the evaluation as much as to the
    // digest.
    let canonical = canonical_params(&value)?;
    serde_json::from_slice(&canonical).map_err(|e| ParamsError::Canonicalization(e.to_string()))
}

/// At most 64 characters of `s`, for an error message.
fn clip(s: &str) -> String {
    s.chars().take(64).collect()
}

/// A `serde_json::Value` deserializer that refuses a key repeated in one
/// object (serde_json's own keeps the last silently), noting the key.
struct Strict<'a>(&'a std::cell::RefCell<Option<String>>);

impl<'de> serde::de::DeserializeSeed<'de> for Strict<'_> {
    type Value = serde_json::Value;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Strict<'_> {
    type Value = serde_json::Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Self::Value, E> {
        serde_json::Number::from_f64(v)
            .map(serde_json::Value::Number)
            .ok_or_else(|| E::custom(format!("{v} is not a finite number")))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(serde_json::Value::Null)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = a.next_element_seed(Strict(self.0))? {
            out.push(v);
        }
        Ok(serde_json::Value::Array(out))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
        let mut out = serde_json::Map::new();
        while let Some(key) = a.next_key::<String>()? {
            if out.contains_key(&key) {
                let key = clip(&key);
                let e = serde::de::Error::custom(format!("key {key:?} repeated"));
                *self.0.borrow_mut() = Some(key);
                return Err(e);
            }
            let v = a.next_value_seed(Strict(self.0))?;
            out.insert(key, v);
        }
        Ok(serde_json::Value::Object(out))
    }
}

/// The number tokens of JSON `text` (which parsed): the runs of number
/// characters outside strings.
fn number_tokens(text: &str) -> Vec<&str> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                while i < b.len() && matches!(b[i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
                {
                    i += 1;
                }
                out.push(&text[start..i]);
            }
            _ => i += 1,
        }
    }
    out
}

/// A decimal number as (negative, significant digits without leading or
/// trailing zeros, exponent of the last digit); zero is `(false, "", 0)`.
fn decimal(text: &str) -> Option<(bool, String, i64)> {
    let (negative, rest) = match text.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, text),
    };
    let (mantissa, exp) = match rest.find(['e', 'E']) {
        Some(i) => (&rest[..i], rest[i + 1..].parse::<i64>().ok()?),
        None => (rest, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let mut digits: String = format!("{int}{frac}");
    let mut exp = exp.checked_sub(i64::try_from(frac.len()).ok()?)?;
    let trimmed = digits.trim_start_matches('0').to_string();
    digits = trimmed;
    while digits.ends_with('0') {
        digits.pop();
        exp = exp.checked_add(1)?;
    }
    if digits.is_empty() {
        return Some((false, String::new(), 0));
    }
    Some((negative, digits, exp))
}

/// One number token: the same decimal value as its RFC 8785 form, and an
/// integer within [`PARAMS_INTEGER_MAX`].
fn check_number(token: &str) -> Result<(), ParamsError> {
    let integer = !token.contains(['.', 'e', 'E']);
    if integer {
        let magnitude = token.trim_start_matches('-');
        let beyond = magnitude
            .parse::<u64>()
            .map_or(true, |u| u > PARAMS_INTEGER_MAX);
        if beyond {
            return Err(ParamsError::IntegerOutOfRange { text: clip(token) });
        }
        return Ok(());
    }
    let inexact = || ParamsError::InexactNumber {
        text: clip(token),
        canonical: String::new(),
    };
    let double: f64 = token.parse().map_err(|_| inexact())?;
    let canonical = serde_json::Number::from_f64(double)
        .and_then(|n| serde_jcs::to_string(&serde_json::Value::Number(n)).ok())
        .ok_or_else(inexact)?;
    if decimal(token) != decimal(&canonical) || decimal(token).is_none() {
        return Err(ParamsError::InexactNumber {
            text: clip(token),
            canonical,
        });
    }
    Ok(())
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
    fn a_repeated_key_is_refused_however_it_is_spelled() {
        for text in [
            r#"{"amount": 1, "amount": 2}"#,
            r#"{"a": {"to": "x", "to": "y"}}"#,
            r#"{"amount": 1, "am\u006funt": 2}"#,
        ] {
            match parse_params(text) {
                Err(ParamsError::DuplicateKey { key }) => {
                    assert!(key == "amount" || key == "to", "{text}: {key}")
                }
                other => panic!("{text}: {other:?}"),
            }
        }
        // The same key in two objects is no repeat.
        parse_params(r#"{"a": {"k": 1}, "b": {"k": 1}}"#).expect("two objects");
    }

    #[test]
    fn numbers_are_accepted_only_when_a_double_holds_them_exactly() {
        let digest = |t: &str| params_digest(&parse_params(t).expect(t)).expect("digest");
        // Other spellings of numbers a double holds: the same digest.
        assert_eq!(digest(r#"{"n": 1.0}"#), digest(r#"{"n": 1}"#));
        assert_eq!(digest(r#"{"n": 1e2}"#), digest(r#"{"n": 100}"#));
        assert_eq!(digest(r#"{"n": 0.50}"#), digest(r#"{"n": 5E-1}"#));
        assert_eq!(
            parse_params(r#"{"n": 4e1, "m": 2.50}"#),
            Ok(serde_json::json!({"n": 40, "m": 2.5})),
            "an integral double is the integer its RFC 8785 form spells"
        );
        for ok in [
            "0.1",
            "-0",
            "12.34",
            "1e20",
            "9007199254740991",
            "-9007199254740991",
        ] {
            parse_params(&format!(r#"{{"n": {ok}}}"#)).expect(ok);
        }
        // Texts a double turns into another value.
        for (text, canonical) in [
            ("0.10000000000000001", "0.1"),
            ("1.00000000000000001", "1"),
            ("9007199254740993.0", "9007199254740992"),
        ] {
            assert_eq!(
                parse_params(&format!(r#"{{"n": [{text}]}}"#)),
                Err(ParamsError::InexactNumber {
                    text: text.into(),
                    canonical: canonical.into()
                })
            );
        }
        // Integers beyond I-JSON's range, as text or as a value.
        for text in [
            "9007199254740992",
            "9007199254740993",
            "-9007199254740993",
            "18446744073709551616",
        ] {
            assert_eq!(
                parse_params(&format!(r#"{{"n": {text}}}"#)),
                Err(ParamsError::IntegerOutOfRange { text: text.into() })
            );
        }
        assert_eq!(
            params_digest(&serde_json::json!({ "n": 9_007_199_254_740_993u64 })),
            Err(ParamsError::IntegerOutOfRange {
                text: "9007199254740993".into()
            })
        );
        // Numbers inside strings are text, not numbers.
        parse_params(r#"{"n": "0.10000000000000001", "m": "9007199254740993"}"#).expect("strings");
        assert!(matches!(parse_params("{"), Err(ParamsError::NotJson(_))));
        assert!(matches!(
            parse_params("{} {}"),
            Err(ParamsError::NotJson(_))
        ));
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
