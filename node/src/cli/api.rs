//! The one way the `senatus` commands reach a validator's public API:
//! TLS 1.3 pinned to genesis, no certificate authority.
//!
//! A command that takes `--api` also needs the chain's genesis (`--genesis`
//! or `SENATUS_GENESIS`): the validator must present a certificate whose
//! endorsement verifies under the identity key genesis lists for it
//! (`senatus_transport::api_client`). A handshake that fails is reported as
//! one line naming the address and the reason, not as tonic's generic
//! transport error.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use senatus_genesis::Genesis;
use senatus_proto::v1::senatus_client::SenatusClient;
use tonic::transport::{Channel, Endpoint};

/// Environment variable naming the genesis file when `--genesis` is absent.
pub const GENESIS_ENV: &str = "SENATUS_GENESIS";
/// Connect timeout of every public API call (TCP connect and TLS handshake
/// together).
pub const API_CONNECT_TIMEOUT_MS: u64 = 3_000;
/// Largest reply accepted from the public API (a seal chain, a ledger
/// page).
pub const API_REPLY_BYTES_MAX: usize = 64 * 1024 * 1024;
/// Largest request sent: what the public API accepts.
pub const API_REQUEST_BYTES_MAX: usize = crate::service::API_MESSAGE_BYTES_MAX;

/// The one line printed when a command that talks to a validator has no
/// genesis to pin its TLS connection to.
pub const GENESIS_MISSING: &str = "the public API is TLS pinned to genesis (no certificate authority): pass --genesis PATH (the chain's genesis.json) or set SENATUS_GENESIS";

/// `--api` and `--genesis`, for commands that had no genesis of their own.
#[derive(Debug, Clone, clap::Args)]
pub struct ApiArgs {
    /// Public API address of a validator (host:port).
    #[arg(long)]
    pub api: String,
    /// The chain's genesis.json. The public API speaks TLS 1.3 pinned to
    /// genesis, with no certificate authority: the validator must present
    /// a certificate endorsed by the identity key genesis lists for it, or
    /// nothing is sent.
    #[arg(long, value_name = "PATH", env = GENESIS_ENV, hide_env_values = true)]
    pub genesis: Option<PathBuf>,
}

impl ApiArgs {
    /// The genesis path, or the one-line [`GENESIS_MISSING`] error.
    pub fn genesis_path(&self) -> anyhow::Result<&Path> {
        require_genesis(self.genesis.as_deref())
    }
}

/// `genesis`, or the one-line [`GENESIS_MISSING`] error.
pub fn require_genesis(genesis: Option<&Path>) -> anyhow::Result<&Path> {
    genesis.ok_or_else(|| anyhow::anyhow!(GENESIS_MISSING))
}

/// Reads and verifies a genesis file (authority signature, structure).
pub fn load_genesis(path: &Path) -> anyhow::Result<Arc<Genesis>> {
    Genesis::load(path)
        .map(Arc::new)
        .map_err(|e| anyhow::anyhow!("genesis {}: {e}", path.display()))
}

/// A public API client for `api`, over TLS pinned to the genesis at
/// `genesis` (loaded and verified here). Connects lazily, on the first
/// call; must be called inside a tokio runtime.
pub fn api_client(api: &str, genesis: &Path) -> anyhow::Result<SenatusClient<Channel>> {
    api_client_pinned(api, load_genesis(genesis)?)
}

/// [`api_client`] with a genesis already loaded and verified.
pub fn api_client_pinned(
    api: &str,
    genesis: Arc<Genesis>,
) -> anyhow::Result<SenatusClient<Channel>> {
    let endpoint = Endpoint::from_shared(format!("http://{api}"))
        .map_err(|e| anyhow::anyhow!("bad API address {api:?}: {e}"))?
        .connect_timeout(Duration::from_millis(API_CONNECT_TIMEOUT_MS))
        .tcp_nodelay(true);
    let tls = senatus_transport::api_client(genesis, None)
        .map_err(|e| anyhow::anyhow!("TLS client for {api}: {e}"))?;
    Ok(
        SenatusClient::new(senatus_transport::lazy_channel(&endpoint, tls))
            .max_decoding_message_size(API_REPLY_BYTES_MAX)
            .max_encoding_message_size(API_REQUEST_BYTES_MAX),
    )
}

/// What went wrong with a call, as one line (without the address: the
/// caller names the call and the address in front of it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explained {
    /// `Code: message`, or what failed in the TLS handshake and why.
    pub line: String,
    /// The TLS handshake failed (the connection never carried a request).
    pub tls_failed: bool,
    /// ...because the server's certificate was refused: it is not a
    /// validator of the genesis given (or its endorsement expired). A
    /// trust-material problem, not an unreachable cluster.
    pub tls_refused: bool,
    /// The verifier's reason for refusing the certificate.
    pub refused_because: Option<String>,
}

/// Explains a failed call: a TLS failure found in the status's source
/// chain is named as such (the certificate refused, with the verifier's
/// reason; or the handshake failing), anything else is the status code
/// and message.
pub fn explain(s: &tonic::Status) -> Explained {
    if let Some(tls) = tls_error(s) {
        return match tls {
            rustls::Error::InvalidCertificate(why) => {
                let reason = certificate_reason(why);
                Explained {
                    line: format!(
                        "TLS: not a validator of the genesis given: {reason} (is --genesis / SENATUS_GENESIS this cluster's genesis?)"
                    ),
                    tls_failed: true,
                    tls_refused: true,
                    refused_because: Some(reason),
                }
            }
            other => Explained {
                line: format!(
                    "TLS handshake failed: {other} (is --api a validator's public API address?)"
                ),
                tls_failed: true,
                tls_refused: false,
                refused_because: None,
            },
        };
    }
    let mut line = format!("{:?}: {}", s.code(), s.message());
    // What tonic's message leaves out (e.g. "operation was canceled" hides
    // "connection closed"): the distinct messages of the source chain.
    let mut extra: Vec<String> = Vec::new();
    for cause in causes(s) {
        let text = cause.to_string();
        if text.is_empty()
            || GENERIC_CAUSES.contains(&text.as_str())
            || line.contains(&text)
            || extra.iter().any(|e| e.contains(&text))
        {
            continue;
        }
        extra.push(text);
    }
    if !extra.is_empty() {
        line = format!("{line} ({})", extra.join(": "));
    }
    Explained {
        line: line.replace('\n', " "),
        tls_failed: false,
        tls_refused: false,
        refused_because: None,
    }
}

/// A failed call, as one line: what was asked of whom, and
/// [`explain`]'s account of why. Commands choose the exit code.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {}", .why.line)]
pub struct ApiCallFailed {
    /// The call and the address, e.g. "status of 127.0.0.1:7001".
    pub what: String,
    /// Why it failed.
    pub why: Explained,
}

impl ApiCallFailed {
    /// An error for a failed call; `what` names the call and the address.
    pub fn error(what: &str, s: &tonic::Status) -> anyhow::Error {
        anyhow::Error::new(ApiCallFailed {
            what: what.to_string(),
            why: explain(s),
        })
    }
}

/// Causes that say nothing the status does not: left out of the line.
const GENERIC_CAUSES: &[&str] = &["transport error"];
/// Longest source chain followed (they are short; this guards a cycle).
const CAUSES_MAX: usize = 32;

/// The errors under the status, outermost first. An `io::Error` hides the
/// error it wraps from `source()` (it returns the wrapped error's own
/// source), so it is opened with `get_ref`.
fn causes(s: &tonic::Status) -> Vec<&(dyn std::error::Error + 'static)> {
    let mut out = Vec::new();
    let mut next: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(s);
    while let Some(err) = next {
        if out.len() >= CAUSES_MAX {
            break;
        }
        out.push(err);
        next = match err.downcast_ref::<std::io::Error>() {
            Some(io) => match io.get_ref() {
                Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
                None => err.source(),
            },
            None => err.source(),
        };
    }
    out
}

/// The rustls error somewhere in the status's source chain.
fn tls_error(s: &tonic::Status) -> Option<&rustls::Error> {
    causes(s)
        .into_iter()
        .find_map(|e| e.downcast_ref::<rustls::Error>())
}

/// Why a certificate was refused: our verifier's reason (the genesis check,
/// see `senatus_transport::PeerRefused`) rather than rustls' debug form.
fn certificate_reason(why: &rustls::CertificateError) -> String {
    match why {
        rustls::CertificateError::Other(other) => other.0.to_string(),
        other => other.to_string(),
    }
}

/// Environment variable naming the caller's key file when `--key` is absent.
pub const KEY_ENV: &str = "SENATUS_KEY";

/// Reads the client key file at `path` (`--key` or `SENATUS_KEY`) for a
/// command that needs a key of one of `roles`: refused, naming the key
/// file, its role and the rule, when there is none or it was made for
/// another role.
pub fn read_role_key(
    path: Option<&Path>,
    roles: &[senatus_genesis::registry::Role],
    command: &str,
) -> anyhow::Result<senatus_genesis::keys::SecretKey> {
    let needs = senatus_genesis::registry::Role::either(roles);
    let path = path.ok_or_else(|| {
        anyhow::anyhow!(
            "{command} is signed by a registered {needs} key: pass --key KEY_FILE (made by \
             `senatus keygen --role {}`) or set {KEY_ENV}",
            roles.first().map_or("agent", |r| r.as_str())
        )
    })?;
    let (key, found) =
        senatus_genesis::keys::SecretKey::read_client(path).map_err(|e| anyhow::anyhow!("{e}"))?;
    anyhow::ensure!(
        roles.contains(&found),
        "key file {} (public key {}) was made for role {found}; {command} needs role \
         {needs} (the registry's role rule)",
        path.display(),
        hex::encode(key.public()),
    );
    Ok(key)
}

/// The signature of a registered operator or auditor on one call
/// (docs/PROTOCOL.md 10.2), made now.
pub fn call_auth(
    key: &senatus_genesis::keys::SecretKey,
    genesis_digest: &senatus_genesis::Digest,
    method: &str,
    body: &[u8],
) -> senatus_proto::v1::CallAuth {
    let a = senatus_quorum::auth::CallAuth::sign(
        key.signing_key(),
        genesis_digest,
        method,
        body,
        crate::clock::now_ms(),
    );
    senatus_proto::v1::CallAuth {
        key: a.key.0.to_vec(),
        signed_at_ms: a.signed_at_ms,
        signature: a.signature.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_certificate_is_named_with_the_verifiers_reason() {
        let why = std::io::Error::other(
            "TLS certificate names node 9, which is not a validator of genesis",
        );
        let tls = rustls::Error::InvalidCertificate(rustls::CertificateError::Other(
            rustls::OtherError(Arc::new(why)),
        ));
        // As the connector returns it: an io::Error around the rustls error,
        // inside tonic's connect error.
        let io = std::io::Error::new(std::io::ErrorKind::InvalidData, tls);
        let connect = tonic::ConnectError(Box::new(io));
        let s = tonic::Status::from_error(Box::new(connect));
        let e = explain(&s);
        assert!(e.tls_failed && e.tls_refused, "{e:?}");
        assert!(
            e.line.starts_with(
                "TLS: not a validator of the genesis given: TLS certificate names node 9, which is not a validator of genesis"
            ),
            "{}",
            e.line
        );
        assert!(!e.line.contains('\n'));
    }

    #[test]
    fn a_cause_the_message_hides_is_added_once() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "connection closed");
        let mut s = tonic::Status::cancelled("operation was canceled");
        s.set_source(Arc::new(io));
        let e = explain(&s);
        assert!(!e.tls_failed);
        assert_eq!(
            e.line,
            "Cancelled: operation was canceled (connection closed)"
        );
        // Already in the message: not repeated.
        let io = std::io::Error::other("Connection refused (os error 111)");
        let connect = tonic::ConnectError(Box::new(io));
        let s = tonic::Status::from_error(Box::new(connect));
        assert_eq!(
            explain(&s).line,
            "Unavailable: Connection refused (os error 111)"
        );
    }

    #[test]
    fn other_failures_keep_their_code_and_message() {
        let s = tonic::Status::unavailable("no quorum:\n2 of 5");
        let e = explain(&s);
        assert!(!e.tls_failed && !e.tls_refused);
        assert_eq!(e.line, "Unavailable: no quorum: 2 of 5");
    }

    #[test]
    fn a_missing_genesis_is_one_line_naming_both_ways() {
        let e = require_genesis(None).expect_err("missing");
        let line = e.to_string();
        assert!(!line.contains('\n'));
        assert!(
            line.contains("--genesis") && line.contains("SENATUS_GENESIS"),
            "{line}"
        );
    }
}
