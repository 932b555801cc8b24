//! The gate's detectors: pure functions from a request (plus the decision
//! time and the sealed policy layer) to the `Facts` record that Cedar
//! policies read as `context.facts`.
//!
//! Facts are what the validators measured, never what the agent claims, and
//! every validator must measure the same thing: detectors are deterministic
//! (no clock, no I/O, no locale), and the regular expressions are compiled
//! once per policy layer in [`Detectors`].
//!
//! # What is scanned
//! Every string in `params`, recursively: object keys and string values.
//! Integer numbers are also scanned as their decimal text, so a card number
//! sent as a JSON number is still found. Declared context endpoints are only
//! used for endpoint facts.
//!
//! # Personal data (`pii_detected`, when `detectors.pii`)
//! * `pii.email` — `local@domain.tld`, TLD alphabetic, at least 2 letters.
//! * `pii.payment-card` — a maximal run of digits, each pair optionally
//!   separated by one space or dash, holding 13–19 digits and passing the
//!   Luhn check. A run longer than 19 digits is not split into candidates.
//! * `pii.us-ssn` — `ddd-dd-dddd` (or with spaces, the same separator
//!   twice), not adjacent to another digit or dash, excluding the ranges the
//!   SSA never issues: area 000, 666 or 900–999, group 00, serial 0000.
//! * `pii.iban` — two letters, two check digits, then alphanumerics (single
//!   spaces allowed between characters), case-insensitive. The country code
//!   must be in the SWIFT IBAN registry table below and the number must have
//!   exactly that country's length (the characters after it may not continue
//!   the alphanumeric run), and ISO 13616 mod-97 of the rearranged number
//!   must be 1.
//!
//! # Secrets (`secrets_detected`, when `detectors.secrets`)
//! * `secret.aws-access-key-id` — `AKIA` or `ASIA` and 16 of `[A-Z0-9]`.
//! * `secret.private-key` — a PEM header `-----BEGIN … PRIVATE KEY…-----`
//!   (RSA, EC, DSA, OPENSSH, ENCRYPTED, PGP … BLOCK).
//! * `secret.github-token` — `ghp_`/`gho_`/`ghu_`/`ghs_`/`ghr_` and at least
//!   36 alphanumerics, or `github_pat_` and at least 22 of `[A-Za-z0-9_]`.
//! * `secret.slack-token` — `xox[abposr]-` and at least 10 of `[A-Za-z0-9-]`.
//! * `secret.api-key` — `sk_live_`/`sk_test_`/`rk_live_`/`rk_test_` and at
//!   least 16 alphanumerics, or `sk-` and at least 20 of `[A-Za-z0-9_-]`; in
//!   both cases the part after the prefix must hold a letter and a digit (so
//!   `sk-some-long-hyphenated-name` is not a key).
//! * `secret.jwt` — `eyJ…` `.` `eyJ…` `.` `[A-Za-z0-9_-]*`: three base64url
//!   parts whose first two decode to JSON objects (`eyJ` is `{"`).
//!
//! # Endpoints
//! A *host* is read from:
//! * a declared context endpoint: the authority of `scheme://authority/…`,
//!   or else of `authority/…` (see [`endpoint_host`]);
//! * every `scheme://authority` URL found in any params string;
//! * `params.destination` (top level) when it is a string naming a host (see
//!   [`destination_host`]): a URL, an e-mail address, `host:port`, an IP
//!   address, or a dotted domain name with an alphabetic TLD. Anything else
//!   (`"warehouse"`, `"tenant:acme/reports"`) is a *logical* destination
//!   inside the tenant's own systems.
//!
//! Hosts are lower-cased, stripped of user info, port, IPv6 brackets and a
//! trailing dot. A host is *internal* when it equals or is a subdomain of one
//! of the tenant's sealed `internal_domains`; every other host is external.
//!
//! * `external_endpoints` — the number of distinct external hosts above.
//! * `destination_external` — true when `params.destination` exists and is
//!   not a string (fail closed) or names an external host, or when any
//!   declared context endpoint is external (the agent says it will talk to
//!   the outside during the action, so whatever it moves may leave).
//!
//! # Change windows
//! `in_change_window` is true when the decision time `now_unix_ms` (the
//! leader's batch timestamp recorded in the ledger, never a validator's
//! clock) lies in a half-open window `[start_unix_ms, end_unix_ms)` among
//! the tenant's sealed `change_windows`. No windows: false (fail closed).
//!
//! # Sealed tenant data
//! `internal_domains` (`Set<String>`) and `change_windows`
//! (`Set<{ start_unix_ms: Long, end_unix_ms: Long }>`) are optional
//! attributes of the `Senatus::Tenant::"<tenant>"` entity in the layer's
//! `entities.json`, read by name. A layer whose schema does not declare them
//! (such as the example layer) has no internal domains and no change
//! windows: every host is external and no request is in a change window.
//! Adding them is an ordinary sealed amendment (schema + entities); policy
//! text never has to name domains or times.

use std::collections::{BTreeMap, BTreeSet};

use regex::Regex;
use senatus_genesis::policy::{DetectorSettings, ENTITIES_FILE, PolicyLayer};

use crate::request::DecisionRequest;

/// The Cedar entity type of a request's resource.
pub const TENANT_TYPE: &str = "Senatus::Tenant";
/// Sealed tenant attribute: internal domain suffixes.
pub const INTERNAL_DOMAINS_ATTR: &str = "internal_domains";
/// Sealed tenant attribute: change windows.
pub const CHANGE_WINDOWS_ATTR: &str = "change_windows";
/// Most internal domains or change windows per tenant.
pub const TENANT_ZONES_MAX: usize = 1024;

/// What the detectors measured: the `Facts` record of the Cedar schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Facts {
    /// Personal data detected in params.
    pub pii_detected: bool,
    /// Credentials or key material detected in params.
    pub secrets_detected: bool,
    /// Distinct external hosts named by the request.
    pub external_endpoints: i64,
    /// The destination lies outside the tenant's own systems.
    pub destination_external: bool,
    /// The decision time falls in one of the tenant's change windows.
    pub in_change_window: bool,
}

impl Facts {
    /// The Cedar context value, keyed as in the schema's `Facts` type.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "pii_detected": self.pii_detected,
            "secrets_detected": self.secrets_detected,
            "external_endpoints": self.external_endpoints,
            "destination_external": self.destination_external,
            "in_change_window": self.in_change_window,
        })
    }
}

/// One detector that fired. Only the kind is recorded, never the matched
/// text: that may be the very secret the detector protects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Finding {
    /// An e-mail address.
    Email,
    /// A Luhn-valid payment card number.
    PaymentCard,
    /// A US social security number.
    UsSsn,
    /// A mod-97-valid IBAN.
    Iban,
    /// An AWS access key id.
    AwsAccessKeyId,
    /// A PEM private key header.
    PrivateKey,
    /// A GitHub token.
    GithubToken,
    /// A Slack token.
    SlackToken,
    /// A payment/LLM provider API key.
    ApiKey,
    /// A JSON Web Token.
    Jwt,
}

impl Finding {
    /// Stable id, as recorded in forensics.
    pub fn id(self) -> &'static str {
        match self {
            Finding::Email => "pii.email",
            Finding::PaymentCard => "pii.payment-card",
            Finding::UsSsn => "pii.us-ssn",
            Finding::Iban => "pii.iban",
            Finding::AwsAccessKeyId => "secret.aws-access-key-id",
            Finding::PrivateKey => "secret.private-key",
            Finding::GithubToken => "secret.github-token",
            Finding::SlackToken => "secret.slack-token",
            Finding::ApiKey => "secret.api-key",
            Finding::Jwt => "secret.jwt",
        }
    }

    /// Whether this finding is personal data (else it is a secret).
    pub fn is_pii(self) -> bool {
        matches!(
            self,
            Finding::Email | Finding::PaymentCard | Finding::UsSsn | Finding::Iban
        )
    }
}

/// The facts and the detectors that fired (sorted, unique).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Detection {
    /// The measured facts.
    pub facts: Facts,
    /// Which detectors fired.
    pub fired: Vec<Finding>,
}

/// A sealed change window, `[start_unix_ms, end_unix_ms)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChangeWindow {
    /// First millisecond inside the window.
    pub start_unix_ms: i64,
    /// First millisecond after the window.
    pub end_unix_ms: i64,
}

/// A tenant's sealed network zones and change windows.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TenantZones {
    /// Domain suffixes (lower case, no trailing dot) of internal hosts.
    pub internal_domains: Vec<String>,
    /// Declared change windows.
    pub change_windows: Vec<ChangeWindow>,
}

impl TenantZones {
    /// Whether `host` (normalised) is internal to this tenant.
    pub fn is_internal(&self, host: &str) -> bool {
        self.internal_domains.iter().any(|d| {
            host == d
                || (host.len() > d.len()
                    && host.ends_with(d.as_str())
                    && host.as_bytes()[host.len() - d.len() - 1] == b'.')
        })
    }

    /// Whether `now_unix_ms` lies in a change window.
    pub fn in_change_window(&self, now_unix_ms: u64) -> bool {
        let now = i64::try_from(now_unix_ms).unwrap_or(i64::MAX);
        self.change_windows
            .iter()
            .any(|w| w.start_unix_ms <= now && now < w.end_unix_ms)
    }
}

/// Sealed data the detectors need that `entities.json` holds in a shape
/// they cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DetectError {
    /// `entities.json` is not a JSON array.
    #[error("entities.json: {0}")]
    Entities(String),
    /// A tenant's sealed zone attribute is malformed.
    #[error("entities.json: tenant {tenant:?} attribute {attr}: {message}")]
    TenantAttr {
        /// The tenant id.
        tenant: String,
        /// The attribute.
        attr: &'static str,
        /// What is wrong.
        message: String,
    },
}

/// Reads every tenant's [`TenantZones`] from `entities.json` text. Tenants
/// without either attribute are left out.
pub fn sealed_tenants(entities_json: &str) -> Result<BTreeMap<String, TenantZones>, DetectError> {
    let value: serde_json::Value = serde_json::from_str(entities_json)
        .map_err(|e| DetectError::Entities(format!("not JSON: {e}")))?;
    let list = value
        .as_array()
        .ok_or_else(|| DetectError::Entities("top level is not an array".to_string()))?;
    let mut out = BTreeMap::new();
    for entity in list {
        let Some(uid) = entity.get("uid") else {
            continue;
        };
        let uid = uid.get("__entity").unwrap_or(uid);
        let (Some(ty), Some(id)) = (
            uid.get("type").and_then(|v| v.as_str()),
            uid.get("id").and_then(|v| v.as_str()),
        ) else {
            continue;
        };
        if ty != TENANT_TYPE {
            continue;
        }
        let attrs = entity.get("attrs");
        let bad = |attr: &'static str, message: &str| DetectError::TenantAttr {
            tenant: id.to_string(),
            attr,
            message: message.to_string(),
        };
        let mut zones = TenantZones::default();
        if let Some(v) = attrs.and_then(|a| a.get(INTERNAL_DOMAINS_ATTR)) {
            let items = v
                .as_array()
                .ok_or_else(|| bad(INTERNAL_DOMAINS_ATTR, "not a set"))?;
            if items.len() > TENANT_ZONES_MAX {
                return Err(bad(INTERNAL_DOMAINS_ATTR, "too many entries"));
            }
            for item in items {
                let domain = item
                    .as_str()
                    .and_then(normalise_host)
                    .ok_or_else(|| bad(INTERNAL_DOMAINS_ATTR, "entry is not a host name"))?;
                zones.internal_domains.push(domain);
            }
            zones.internal_domains.sort();
            zones.internal_domains.dedup();
        }
        if let Some(v) = attrs.and_then(|a| a.get(CHANGE_WINDOWS_ATTR)) {
            let items = v
                .as_array()
                .ok_or_else(|| bad(CHANGE_WINDOWS_ATTR, "not a set"))?;
            if items.len() > TENANT_ZONES_MAX {
                return Err(bad(CHANGE_WINDOWS_ATTR, "too many entries"));
            }
            for item in items {
                let start = item.get("start_unix_ms").and_then(|v| v.as_i64());
                let end = item.get("end_unix_ms").and_then(|v| v.as_i64());
                let (Some(start_unix_ms), Some(end_unix_ms)) = (start, end) else {
                    return Err(bad(
                        CHANGE_WINDOWS_ATTR,
                        "entry is not { start_unix_ms: Long, end_unix_ms: Long }",
                    ));
                };
                if start_unix_ms >= end_unix_ms {
                    return Err(bad(
                        CHANGE_WINDOWS_ATTR,
                        "entry has start_unix_ms >= end_unix_ms",
                    ));
                }
                zones.change_windows.push(ChangeWindow {
                    start_unix_ms,
                    end_unix_ms,
                });
            }
        }
        if zones != TenantZones::default() {
            out.insert(id.to_string(), zones);
        }
    }
    Ok(out)
}

/// Lower-cases a host, strips one trailing dot, and checks its characters
/// (`[a-z0-9._-]`, or `[0-9a-f:.]` inside IPv6 brackets, brackets dropped).
fn normalise_host(raw: &str) -> Option<String> {
    let lower = raw.to_ascii_lowercase();
    if let Some(inner) = lower.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        let ok = !inner.is_empty()
            && inner
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
        return ok.then(|| inner.to_string());
    }
    let host = lower.strip_suffix('.').unwrap_or(&lower);
    let ok = !host.is_empty()
        && !host.starts_with('.')
        && !host.contains("..")
        && host.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'_')
        });
    ok.then(|| host.to_string())
}

/// The host of an authority `[userinfo@]host[:port]`.
fn authority_host(authority: &str) -> Option<String> {
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if hostport.starts_with('[') {
        let end = hostport.find(']')?;
        return normalise_host(&hostport[..=end]);
    }
    let host = hostport.split_once(':').map_or(hostport, |(h, _)| h);
    normalise_host(host)
}

fn authority_of(rest: &str) -> &str {
    rest.split(['/', '?', '#']).next().unwrap_or_default()
}

/// The host a declared endpoint names: the authority of
/// `scheme://authority/…`, or else of `authority/…`.
pub fn endpoint_host(endpoint: &str) -> Option<String> {
    let rest = endpoint
        .split_once("://")
        .map_or(endpoint, |(_, rest)| rest);
    authority_host(authority_of(rest))
}

/// The host `params.destination` names, or `None` for a logical
/// destination (see the module documentation).
pub fn destination_host(destination: &str) -> Option<String> {
    if destination.contains("://") {
        return endpoint_host(destination);
    }
    if let Some((_, domain)) = destination.rsplit_once('@') {
        return normalise_host(authority_of(domain));
    }
    let authority = authority_of(destination);
    if authority.starts_with('[') {
        return authority_host(authority);
    }
    if let Some((host, port)) = authority.split_once(':') {
        let numeric_port = !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit());
        return if numeric_port {
            normalise_host(host)
        } else {
            None
        };
    }
    let host = normalise_host(authority)?;
    let labels: Vec<&str> = host.split('.').collect();
    let ipv4 = labels.len() == 4
        && labels
            .iter()
            .all(|l| !l.is_empty() && l.len() <= 3 && l.bytes().all(|b| b.is_ascii_digit()));
    let tld = labels.last().copied().unwrap_or_default();
    let domain = labels.len() >= 2 && tld.len() >= 2 && tld.bytes().all(|b| b.is_ascii_lowercase());
    (ipv4 || domain).then_some(host)
}

/// IBAN length by country, from the SWIFT IBAN registry.
const IBAN_LENGTHS: &[(&str, usize)] = &[
    ("AD", 24),
    ("AE", 23),
    ("AL", 28),
    ("AT", 20),
    ("AZ", 28),
    ("BA", 20),
    ("BE", 16),
    ("BG", 22),
    ("BH", 22),
    ("BR", 29),
    ("BY", 28),
    ("CH", 21),
    ("CR", 22),
    ("CY", 28),
    ("CZ", 24),
    ("DE", 22),
    ("DK", 18),
    ("DO", 28),
    ("EE", 20),
    ("EG", 29),
    ("ES", 24),
    ("FI", 18),
    ("FO", 18),
    ("FR", 27),
    ("GB", 22),
    ("GE", 22),
    ("GI", 23),
    ("GL", 18),
    ("GR", 27),
    ("GT", 28),
    ("HR", 21),
    ("HU", 28),
    ("IE", 22),
    ("IL", 23),
    ("IQ", 23),
    ("IS", 26),
    ("IT", 27),
    ("JO", 30),
    ("KW", 30),
    ("KZ", 20),
    ("LB", 28),
    ("LC", 32),
    ("LI", 21),
    ("LT", 20),
    ("LU", 20),
    ("LV", 21),
    ("MC", 27),
    ("MD", 24),
    ("ME", 22),
    ("MK", 19),
    ("MR", 27),
    ("MT", 31),
    ("MU", 30),
    ("NL", 18),
    ("NO", 15),
    ("PK", 24),
    ("PL", 28),
    ("PS", 29),
    ("PT", 25),
    ("QA", 29),
    ("RO", 24),
    ("RS", 22),
    ("SA", 24),
    ("SC", 31),
    ("SE", 24),
    ("SI", 19),
    ("SK", 24),
    ("SM", 27),
    ("ST", 25),
    ("SV", 28),
    ("TL", 23),
    ("TN", 24),
    ("TR", 26),
    ("UA", 29),
    ("VA", 22),
    ("VG", 24),
    ("XK", 20),
];

/// Luhn check over ASCII digits.
pub fn luhn_valid(digits: &[u8]) -> bool {
    let mut sum = 0u32;
    for (i, d) in digits.iter().rev().enumerate() {
        let mut v = u32::from(d - b'0');
        if i % 2 == 1 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    sum.is_multiple_of(10)
}

/// ISO 13616 check of a compact IBAN (no spaces, any case): registry
/// country and length, then mod-97 of the rearranged number equals 1.
pub fn iban_valid(compact: &str) -> bool {
    let upper = compact.to_ascii_uppercase();
    let b = upper.as_bytes();
    if b.len() < 4 || !b.iter().all(u8::is_ascii_alphanumeric) {
        return false;
    }
    let Some(&(_, len)) = IBAN_LENGTHS.iter().find(|(cc, _)| cc.as_bytes() == &b[..2]) else {
        return false;
    };
    if b.len() != len || !b[2].is_ascii_digit() || !b[3].is_ascii_digit() {
        return false;
    }
    let mut rem: u32 = 0;
    for &c in b[4..].iter().chain(&b[..4]) {
        rem = if c.is_ascii_digit() {
            (rem * 10 + u32::from(c - b'0')) % 97
        } else {
            (rem * 100 + u32::from(c - b'A') + 10) % 97
        };
    }
    rem == 1
}

/// Whether a candidate 'ddd-dd-dddd' is an SSN the SSA could issue.
fn ssn_valid(area: &str, group: &str, serial: &str) -> bool {
    let area: u32 = area.parse().unwrap_or(0);
    area != 0 && area != 666 && area < 900 && group != "00" && serial != "0000"
}

/// The detectors of one policy layer: settings, sealed tenant zones and
/// compiled regular expressions. Build once per active layer.
#[derive(Debug, Clone)]
pub struct Detectors {
    settings: DetectorSettings,
    tenants: BTreeMap<String, TenantZones>,
    email: Regex,
    digit_run: Regex,
    ssn: Regex,
    iban: Regex,
    aws: Regex,
    pem: Regex,
    github: Regex,
    slack: Regex,
    api_key: Regex,
    jwt: Regex,
    url: Regex,
}

fn compile(pattern: &str) -> Regex {
    // The patterns are constants of this file; a test compiles them all.
    Regex::new(pattern).unwrap_or_else(|e| panic!("detector pattern {pattern:?} is invalid: {e}"))
}

impl Detectors {
    /// Detectors with `settings` and the given sealed tenant zones.
    pub fn new(settings: &DetectorSettings, tenants: BTreeMap<String, TenantZones>) -> Detectors {
        Detectors {
            settings: settings.clone(),
            tenants,
            email: compile(
                r"(?i)[a-z0-9._%+-]+@[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*\.[a-z]{2,63}\b",
            ),
            digit_run: compile(r"[0-9](?:[ -]?[0-9])*"),
            ssn: compile(r"([0-9]{3})([- ])([0-9]{2})([- ])([0-9]{4})"),
            iban: compile(r"(?i)\b[a-z]{2}[0-9]{2}(?: ?[a-z0-9]){11,34}"),
            aws: compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"),
            pem: compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----"),
            github: compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})"),
            slack: compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}"),
            api_key: compile(
                r"\b(?:(?:sk|rk)_(?:live|test)_([A-Za-z0-9]{16,})|sk-([A-Za-z0-9_-]{20,}))",
            ),
            jwt: compile(r"\beyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"),
            url: compile(r"(?i)\b[a-z][a-z0-9+.-]{0,31}://([^\s/?#\\]*)"),
        }
    }

    /// The detectors of `layer`: its constitution's settings and the sealed
    /// tenant zones in its `entities.json`.
    pub fn from_layer(layer: &PolicyLayer) -> Result<Detectors, DetectError> {
        let text = layer
            .files()
            .get(ENTITIES_FILE)
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default();
        let tenants = sealed_tenants(&text)?;
        Ok(Detectors::new(&layer.constitution().detectors, tenants))
    }

    /// The sealed zones of `tenant` (empty if none are declared).
    pub fn tenant_zones(&self, tenant: &str) -> Option<&TenantZones> {
        self.tenants.get(tenant)
    }

    /// Runs every detector over `req` at decision time `now_unix_ms`.
    pub fn detect(&self, req: &DecisionRequest, now_unix_ms: u64) -> Detection {
        self.detect_parts(
            &req.tenant,
            &req.params,
            &req.context.external_endpoints,
            now_unix_ms,
        )
    }

    /// [`Detectors::detect`] over the parts of a request that detection
    /// reads (the evaluator passes params in their canonical form).
    pub fn detect_parts(
        &self,
        tenant: &str,
        params: &serde_json::Value,
        endpoints: &[String],
        now_unix_ms: u64,
    ) -> Detection {
        let empty = TenantZones::default();
        let zones = self.tenants.get(tenant).unwrap_or(&empty);
        let mut fired: BTreeSet<Finding> = BTreeSet::new();
        let mut external: BTreeSet<String> = BTreeSet::new();
        let mut destination_external = false;

        // Every string in params, without recursion (params nesting is
        // bounded by validation, but an explicit stack costs nothing).
        let mut stack: Vec<&serde_json::Value> = vec![params];
        while let Some(v) = stack.pop() {
            match v {
                serde_json::Value::String(s) => self.scan(s, zones, &mut fired, &mut external),
                serde_json::Value::Number(n) if self.settings.pii && (n.is_i64() || n.is_u64()) => {
                    self.scan_pii(&n.to_string(), &mut fired);
                }
                serde_json::Value::Array(items) => stack.extend(items.iter()),
                serde_json::Value::Object(map) => {
                    for (key, value) in map {
                        self.scan(key, zones, &mut fired, &mut external);
                        stack.push(value);
                    }
                }
                _ => {}
            }
        }

        match params.get("destination") {
            None => {}
            Some(serde_json::Value::String(d)) => {
                if let Some(host) = destination_host(d)
                    && !zones.is_internal(&host)
                {
                    destination_external = true;
                    external.insert(host);
                }
            }
            Some(_) => destination_external = true,
        }
        for endpoint in endpoints {
            match endpoint_host(endpoint) {
                Some(host) if zones.is_internal(&host) => {}
                Some(host) => {
                    destination_external = true;
                    external.insert(host);
                }
                // Validation rejects endpoints without a host; if one gets
                // here anyway, count it as external (fail closed).
                None => {
                    destination_external = true;
                    external.insert(endpoint.to_ascii_lowercase());
                }
            }
        }

        let facts = Facts {
            pii_detected: fired.iter().any(|f| f.is_pii()),
            secrets_detected: fired.iter().any(|f| !f.is_pii()),
            external_endpoints: i64::try_from(external.len()).unwrap_or(i64::MAX),
            destination_external,
            in_change_window: zones.in_change_window(now_unix_ms),
        };
        Detection {
            facts,
            fired: fired.into_iter().collect(),
        }
    }

    fn scan(
        &self,
        s: &str,
        zones: &TenantZones,
        fired: &mut BTreeSet<Finding>,
        external: &mut BTreeSet<String>,
    ) {
        if self.settings.pii {
            self.scan_pii(s, fired);
        }
        if self.settings.secrets {
            self.scan_secrets(s, fired);
        }
        if s.contains("://") {
            for caps in self.url.captures_iter(s) {
                if let Some(host) = caps.get(1).and_then(|a| authority_host(a.as_str()))
                    && !zones.is_internal(&host)
                {
                    external.insert(host);
                }
            }
        }
    }

    fn scan_pii(&self, s: &str, fired: &mut BTreeSet<Finding>) {
        let bytes = s.as_bytes();
        if s.contains('@') && self.email.is_match(s) {
            fired.insert(Finding::Email);
        }
        let mut digits: Vec<u8> = Vec::new();
        for m in self.digit_run.find_iter(s) {
            digits.clear();
            digits.extend(m.as_str().bytes().filter(u8::is_ascii_digit));
            if (13..=19).contains(&digits.len()) && luhn_valid(&digits) {
                fired.insert(Finding::PaymentCard);
                break;
            }
        }
        for caps in self.ssn.captures_iter(s) {
            let (Some(all), Some(area), Some(sep1), Some(group), Some(sep2), Some(serial)) = (
                caps.get(0),
                caps.get(1),
                caps.get(2),
                caps.get(3),
                caps.get(4),
                caps.get(5),
            ) else {
                continue;
            };
            let joins = |b: u8| b.is_ascii_digit() || b == b'-';
            let before = all.start().checked_sub(1).map(|i| bytes[i]);
            let after = bytes.get(all.end()).copied();
            if sep1.as_str() == sep2.as_str()
                && !before.is_some_and(joins)
                && !after.is_some_and(joins)
                && ssn_valid(area.as_str(), group.as_str(), serial.as_str())
            {
                fired.insert(Finding::UsSsn);
                break;
            }
        }
        for m in self.iban.find_iter(s) {
            let cc = m.as_str()[..2].to_ascii_uppercase();
            let Some(&(_, len)) = IBAN_LENGTHS.iter().find(|(c, _)| *c == cc) else {
                continue;
            };
            // Take exactly `len` alphanumerics from the start of the match;
            // the IBAN must end there (not run on into more alphanumerics).
            let mut compact = String::with_capacity(len);
            let mut end = m.start();
            for (i, b) in s[m.start()..].bytes().enumerate() {
                if compact.len() == len {
                    break;
                }
                if b.is_ascii_alphanumeric() {
                    compact.push(char::from(b));
                } else if b != b' ' {
                    break;
                }
                end = m.start() + i + 1;
            }
            let ends_cleanly = !bytes.get(end).is_some_and(u8::is_ascii_alphanumeric);
            if compact.len() == len && ends_cleanly && iban_valid(&compact) {
                fired.insert(Finding::Iban);
                break;
            }
        }
    }

    fn scan_secrets(&self, s: &str, fired: &mut BTreeSet<Finding>) {
        if self.aws.is_match(s) {
            fired.insert(Finding::AwsAccessKeyId);
        }
        if s.contains("-----BEGIN ") && self.pem.is_match(s) {
            fired.insert(Finding::PrivateKey);
        }
        if self.github.is_match(s) {
            fired.insert(Finding::GithubToken);
        }
        if s.contains("xox") && self.slack.is_match(s) {
            fired.insert(Finding::SlackToken);
        }
        let mixed = |t: &str| {
            t.bytes().any(|b| b.is_ascii_alphabetic()) && t.bytes().any(|b| b.is_ascii_digit())
        };
        for caps in self.api_key.captures_iter(s) {
            if caps
                .get(1)
                .or_else(|| caps.get(2))
                .is_some_and(|t| mixed(t.as_str()))
            {
                fired.insert(Finding::ApiKey);
                break;
            }
        }
        if s.contains("eyJ") && self.jwt.is_match(s) {
            fired.insert(Finding::Jwt);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn_and_iban_reference_values() {
        assert!(luhn_valid(b"4111111111111111"));
        assert!(luhn_valid(b"79927398713"));
        assert!(!luhn_valid(b"4111111111111112"));
        assert!(iban_valid("DE89370400440532013000"));
        assert!(iban_valid("GB82WEST12345698765432"));
        assert!(iban_valid("gb82west12345698765432"));
        assert!(!iban_valid("GB82WEST12345698765433"));
        assert!(!iban_valid("DE8937040044053201300"), "wrong length");
        assert!(!iban_valid("ZZ89370400440532013000"), "unknown country");
    }

    #[test]
    fn ssn_ranges() {
        assert!(ssn_valid("123", "45", "6789"));
        for (a, g, s) in [
            ("000", "45", "6789"),
            ("666", "45", "6789"),
            ("900", "45", "6789"),
            ("123", "00", "6789"),
            ("123", "45", "0000"),
        ] {
            assert!(!ssn_valid(a, g, s), "{a}-{g}-{s}");
        }
    }

    #[test]
    fn hosts_are_normalised() {
        assert_eq!(
            endpoint_host("https://u:p@API.Example.com.:443/x").as_deref(),
            Some("api.example.com")
        );
        assert_eq!(
            endpoint_host("api.example.com:8443").as_deref(),
            Some("api.example.com")
        );
        assert_eq!(endpoint_host("http://[::1]:80/").as_deref(), Some("::1"));
        assert_eq!(endpoint_host("https:///nohost"), None);
        assert_eq!(destination_host("warehouse"), None);
        assert_eq!(destination_host("tenant:acme/reports"), None);
        assert_eq!(
            destination_host("localhost:9000").as_deref(),
            Some("localhost")
        );
        assert_eq!(
            destination_host("bob@Partner.com").as_deref(),
            Some("partner.com")
        );
        assert_eq!(
            destination_host("files.partner.com/upload").as_deref(),
            Some("files.partner.com")
        );
        assert_eq!(destination_host("10.0.0.7").as_deref(), Some("10.0.0.7"));
        assert_eq!(
            destination_host("report.v2"),
            None,
            "numeric-ish TLD is not a domain"
        );
    }

    #[test]
    fn internal_means_equal_or_subdomain() {
        let z = TenantZones {
            internal_domains: vec!["acme.internal".to_string()],
            change_windows: vec![ChangeWindow {
                start_unix_ms: 10,
                end_unix_ms: 20,
            }],
        };
        assert!(z.is_internal("acme.internal"));
        assert!(z.is_internal("db.acme.internal"));
        assert!(!z.is_internal("evilacme.internal"));
        assert!(!z.is_internal("acme.internal.evil.com"));
        assert!(!z.in_change_window(9));
        assert!(z.in_change_window(10));
        assert!(z.in_change_window(19));
        assert!(!z.in_change_window(20));
        assert!(!z.in_change_window(u64::MAX));
    }
}
