//! Machine-readable error reasons on the wire (docs/PROTOCOL.md 20).
//!
//! Every error a validator answers with carries a stable reason code next
//! to its gRPC code and its human message: a `google.rpc.Status` in the
//! `grpc-status-details-bin` trailer holding one `google.rpc.ErrorInfo {
//! reason, domain = "senatus", metadata }` packed in a `google.protobuf.Any`
//! (see `errors.proto`; the messages are wire-identical to google's, so
//! grpcio-status and tonic-types decode them). Clients, the CLI and the
//! validators themselves decide by [`Reason`], never by the message text,
//! which stays free to change for humans.
//!
//! Decoding is for hostile input: [`reason_of`] reads at most
//! [`DETAILS_BYTES_MAX`] bytes and answers `None` for absent, oversized,
//! malformed or foreign details rather than failing.

use std::collections::BTreeMap;

use prost::Message;
use tonic::{Code, Status};

use crate::v1::{AnyDetail, ErrorInfo, RpcStatus};

/// The `ErrorInfo.domain` of every senatus reason.
pub const DOMAIN: &str = "senatus";
/// The `Any.type_url` of a packed `google.rpc.ErrorInfo`.
pub const ERROR_INFO_TYPE_URL: &str = "type.googleapis.com/google.rpc.ErrorInfo";
/// Longest details [`reason_of`] decodes; longer ones are not ours.
pub const DETAILS_BYTES_MAX: usize = 8 * 1024;
/// Longest message a reasoned status carries (longer ones are cut at a
/// character boundary and end in "..."). The message travels twice, in
/// `grpc-message` and inside the details, and a client refuses trailers
/// above 16 KiB: this keeps both well inside.
pub const MESSAGE_BYTES_MAX: usize = 4 * 1024;
/// Most metadata entries one reason carries (sent and accepted).
pub const METADATA_ENTRIES_MAX: usize = 16;
/// Longest metadata value sent (longer ones are cut like the message).
pub const METADATA_VALUE_BYTES_MAX: usize = 256;
/// Longest reason code (AIP-193: `[A-Z][A-Z0-9_]+[A-Z0-9]`, at most 63).
pub const REASON_BYTES_MAX: usize = 63;

macro_rules! reasons {
    ($($(#[doc = $doc:literal])* $name:ident = $code:literal => $grpc:ident,)+) => {
        /// A stable, machine-readable reason for an error (AIP-193 style
        /// UPPER_SNAKE_CASE codes). docs/PROTOCOL.md 20 lists each with its
        /// gRPC code and metadata keys. New reasons may be added; a client
        /// treats one it does not know like an error without a reason of
        /// the same gRPC code.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Reason {
            $($(#[doc = $doc])* $name,)+
        }

        impl Reason {
            /// Every reason, in the order docs/PROTOCOL.md lists them.
            pub const ALL: &'static [Reason] = &[$(Reason::$name,)+];

            /// The code on the wire, e.g. `"LOCKED_DOWN"`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Reason::$name => $code,)+
                }
            }

            /// The gRPC code this reason travels with (docs/PROTOCOL.md
            /// 19). `LEADER_UNREACHABLE` keeps the transport's code instead
            /// when there is one ([`Reasoned::carried`]).
            pub fn code(self) -> Code {
                match self {
                    $(Reason::$name => Code::$grpc,)+
                }
            }

            /// The reason named by `code`, if this build knows it.
            pub fn parse(code: &str) -> Option<Reason> {
                match code {
                    $($code => Some(Reason::$name),)+
                    _ => None,
                }
            }
        }
    };
}

reasons! {
    /// This validator is locked down by a shutdown certificate about it;
    /// it decides, signs and votes on nothing. Ask another validator.
    LockedDown = "LOCKED_DOWN" => Unavailable,
    /// No leader was known within the wait: the cluster may have lost its
    /// quorum. Nothing was written.
    NoLeader = "NO_LEADER" => Unavailable,
    /// The node asked is not (or no longer) the leader, or a locked leader
    /// is giving way. Nothing was written; ask again (the leader moved).
    NotLeader = "NOT_LEADER" => FailedPrecondition,
    /// A call forwarded to the leader got no answer within its bound.
    LeaderTimeout = "LEADER_TIMEOUT" => Unavailable,
    /// A call forwarded to the leader failed without a senatus answer
    /// (transport); the gRPC code is the transport's.
    LeaderUnreachable = "LEADER_UNREACHABLE" => Unavailable,
    /// The decision gate is not running on this validator (starting or
    /// stopping).
    GateUnavailable = "GATE_UNAVAILABLE" => Unavailable,
    /// The request is not a protobuf of the expected message.
    MalformedMessage = "MALFORMED_MESSAGE" => InvalidArgument,
    /// A field of the request is invalid; `field` names it when one does.
    InvalidRequest = "INVALID_REQUEST" => InvalidArgument,
    /// The call is not signed, or signed by a key the sealed registry does
    /// not hold, with a signature that does not verify, or outside the
    /// freshness window; `key`, `rule` name what failed. Nothing changed.
    CallerUnauthenticated = "CALLER_UNAUTHENTICATED" => Unauthenticated,
    /// The caller's registered identity may not make this call: another
    /// role, tenant or actor; `key`, `role`, `rule` say which. Nothing
    /// changed.
    CallerNotAuthorized = "CALLER_NOT_AUTHORIZED" => PermissionDenied,
    /// A payload is above its bound.
    PayloadTooLarge = "PAYLOAD_TOO_LARGE" => InvalidArgument,
    /// The idempotency key was already used by this agent for a different
    /// request (decided, or being decided). No token.
    IdempotencyConflict = "IDEMPOTENCY_CONFLICT" => FailedPrecondition,
    /// The same request is being decided right now; retry for its answer.
    IdempotencyInFlight = "IDEMPOTENCY_IN_FLIGHT" => Aborted,
    /// The leader's decision queue is full; retry later.
    QueueFull = "QUEUE_FULL" => ResourceExhausted,
    /// The agent, or its tenant, has reached a quota of the constitution's
    /// `[quotas]` for the current window (or the leader's quota table is
    /// full); `quota` names which. Nothing was queued; retry after the
    /// window.
    QuotaExceeded = "QUOTA_EXCEEDED" => ResourceExhausted,
    /// This validator has not yet redeclared the active seal, so it does
    /// not decide under it. No token.
    NotRedeclared = "NOT_REDECLARED" => Unavailable,
    /// The decision was committed but fewer than t validators signed it.
    /// No token.
    NotSigned = "NOT_SIGNED" => Unavailable,
    /// A batch names a seal this validator has not sealed.
    SealUnknown = "SEAL_UNKNOWN" => FailedPrecondition,
    /// The agent's presentation is missing, does not decode, or does not
    /// hand this token to this broker with these params under the key of
    /// the agent the token names; `rule` says which. Nothing changed and
    /// nobody is certified.
    PresentationRefused = "PRESENTATION_REFUSED" => PermissionDenied,
    /// The token does not decode.
    TokenMalformed = "TOKEN_MALFORMED" => InvalidArgument,
    /// The token decodes but does not verify; its agent is certified.
    TokenForged = "TOKEN_FORGED" => PermissionDenied,
    /// The params presented are not the ones the token was issued for; its
    /// agent is certified.
    TokenParamsMismatch = "TOKEN_PARAMS_MISMATCH" => PermissionDenied,
    /// The token is a DENY or SILENCE receipt, which never redeems.
    TokenNotPermit = "TOKEN_NOT_PERMIT" => PermissionDenied,
    /// The token has expired.
    TokenExpired = "TOKEN_EXPIRED" => PermissionDenied,
    /// The token's nonce was already redeemed.
    NonceRedeemed = "NONCE_REDEEMED" => AlreadyExists,
    /// The leader has not heard from a majority recently; nothing was
    /// written.
    NoQuorum = "NO_QUORUM" => Unavailable,
    /// The entry was not committed within the bound; it may still commit.
    CommitTimeout = "COMMIT_TIMEOUT" => Unavailable,
    /// Raft refused the write for another reason; nothing was written.
    WriteFailed = "WRITE_FAILED" => Unavailable,
    /// A decision batch named a seal no longer active at its index; nothing
    /// was decided, retry.
    StalePolicy = "STALE_POLICY" => Aborted,
    /// A ledger entry's payload is not of its kind.
    EntryMalformed = "ENTRY_MALFORMED" => InvalidArgument,
    /// The amendment state refused the entry (proposal, vote, seal,
    /// redeclaration or certificate); the message says why.
    AmendmentRefused = "AMENDMENT_REFUSED" => InvalidArgument,
    /// This node does not tally amendments.
    AmendmentsDisabled = "AMENDMENTS_DISABLED" => Unavailable,
    /// The certificate is already on the ledger.
    CertificateOnLedger = "CERTIFICATE_ON_LEDGER" => InvalidArgument,
    /// A shutdown certificate was refused (does not decode or check out).
    CertificateRefused = "CERTIFICATE_REFUSED" => InvalidArgument,
    /// No such proposal on this node's ledger.
    ProposalNotFound = "PROPOSAL_NOT_FOUND" => NotFound,
    /// A peer call without a validator certificate.
    PeerUnauthenticated = "PEER_UNAUTHENTICATED" => Unauthenticated,
    /// A peer message names another validator than the authenticated one.
    PeerIdentityMismatch = "PEER_IDENTITY_MISMATCH" => PermissionDenied,
    /// A forwarded write that the sender may not forward.
    ForwardRefused = "FORWARD_REFUSED" => PermissionDenied,
    /// A signing call from a node that is not the leader this validator
    /// follows.
    CallerNotLeader = "CALLER_NOT_LEADER" => FailedPrecondition,
    /// A Raft message from a validator with a term too far above this
    /// validator's own; nothing changed.
    PeerTermOutOfBounds = "PEER_TERM_OUT_OF_BOUNDS" => FailedPrecondition,
    /// An AppendEntries from a validator that contradicts this validator's
    /// committed log, or whose entries do not run consecutively; nothing
    /// changed.
    PeerLogConflict = "PEER_LOG_CONFLICT" => FailedPrecondition,
    /// A snapshot (or chunk of one) from a validator that does not verify;
    /// nothing changed.
    SnapshotRefused = "SNAPSHOT_REFUSED" => InvalidArgument,
    /// A decision batch whose times this signer refuses to sign: issued
    /// too far from its own clock, or living longer than the constitution
    /// allows. No share.
    BatchTimesRefused = "BATCH_TIMES_REFUSED" => FailedPrecondition,
    /// The signer has not applied the entry it is asked to sign in time.
    EntryNotApplied = "ENTRY_NOT_APPLIED" => Unavailable,
    /// The signer refuses to sign (its own evaluation or tally differs, or
    /// it is not among the signers).
    SigningRefused = "SIGNING_REFUSED" => FailedPrecondition,
    /// A read from this node's store failed.
    StorageFailed = "STORAGE_FAILED" => DataLoss,
    /// A stored ledger entry is missing or not what it must be.
    LedgerInconsistent = "LEDGER_INCONSISTENT" => DataLoss,
    /// A broken invariant on the validator; the message says which.
    InternalError = "INTERNAL_ERROR" => Internal,
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Reason {
    /// The senatus reason `s` carries, if any and if this build knows it.
    pub fn of(s: &Status) -> Option<Reason> {
        reason_of(s)?.known()
    }
}

/// A module error that knows its reason: the one way such an error becomes
/// a [`Status`] at the service edge ([`Reasoned::to_status`]). Its words
/// (`Display`) are the message; [`Reasoned::reason`] and
/// [`Reasoned::metadata`] travel beside them.
pub trait Reasoned: std::fmt::Display {
    /// The reason; `None` only for an error carrying another validator's
    /// answer whose reason this build does not know.
    fn reason(&self) -> Option<Reason>;

    /// The reason's metadata (lowerCamelCase keys): the culprit and the
    /// value at fault, as text.
    fn metadata(&self) -> Vec<(&'static str, String)>;

    /// A status this error carries from elsewhere: another validator's
    /// answer, kept whole when it has a reason, or a transport failure,
    /// whose code is kept.
    fn carried(&self) -> Option<&Status> {
        None
    }

    /// The gRPC code: the carried status's, else the reason's.
    fn code(&self) -> Code {
        match self.carried() {
            Some(s) => s.code(),
            None => self.reason().map_or(Code::Internal, Reason::code),
        }
    }

    /// The status a client gets: this error's words, with the carried
    /// status's reason and metadata if it has one, else its own.
    fn to_status(&self) -> Status {
        let message = self.to_string();
        if let Some(s) = self.carried().filter(|s| reason_of(s).is_some()) {
            return restate(s, message);
        }
        let reason = self.reason().unwrap_or(Reason::InternalError);
        status(self.code(), message, reason, self.metadata())
    }
}

/// A reason as decoded from a status: its code (possibly one this build
/// does not know) and its metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorReason {
    /// The reason code, UPPER_SNAKE_CASE.
    pub reason: String,
    /// The reason's metadata.
    pub metadata: BTreeMap<String, String>,
}

impl ErrorReason {
    /// The reason, if this build knows it.
    pub fn known(&self) -> Option<Reason> {
        Reason::parse(&self.reason)
    }
}

/// A status with `code` and `message` carrying `reason` and `metadata`
/// (keys lowerCamelCase) in its details. The message is bounded by
/// [`MESSAGE_BYTES_MAX`], metadata by [`METADATA_ENTRIES_MAX`] entries of
/// at most [`METADATA_VALUE_BYTES_MAX`] bytes.
pub fn status(
    code: Code,
    message: impl Into<String>,
    reason: Reason,
    metadata: impl IntoIterator<Item = (&'static str, String)>,
) -> Status {
    let metadata = metadata
        .into_iter()
        .map(|(k, v)| {
            debug_assert!(
                is_metadata_key(k),
                "metadata key {k:?} is not lowerCamelCase"
            );
            (k.to_string(), v)
        })
        .collect();
    encode(code, message.into(), reason.as_str(), metadata)
}

/// `s` with another message: the same code, and the same reason and
/// metadata if it carries one (e.g. to add context to a reply passed on).
pub fn restate(s: &Status, message: impl Into<String>) -> Status {
    match reason_of(s) {
        Some(r) => encode(s.code(), message.into(), &r.reason, r.metadata),
        None => Status::new(s.code(), message),
    }
}

fn encode(code: Code, message: String, reason: &str, metadata: BTreeMap<String, String>) -> Status {
    let message = bounded(message, MESSAGE_BYTES_MAX);
    let metadata = metadata
        .into_iter()
        .take(METADATA_ENTRIES_MAX)
        .map(|(k, v)| (k, bounded(v, METADATA_VALUE_BYTES_MAX)))
        .collect();
    let info = ErrorInfo {
        reason: reason.to_string(),
        domain: DOMAIN.to_string(),
        metadata,
    };
    let details = RpcStatus {
        code: code as i32,
        message: message.clone(),
        details: vec![AnyDetail {
            type_url: ERROR_INFO_TYPE_URL.to_string(),
            value: info.encode_to_vec(),
        }],
    };
    Status::with_details(code, message, details.encode_to_vec().into())
}

/// The senatus reason in `s`'s details: `None` when there are none, when
/// they are longer than [`DETAILS_BYTES_MAX`], do not decode as a
/// `google.rpc.Status` of `s`'s own code, hold no `ErrorInfo` of domain
/// [`DOMAIN`], or hold one whose reason is not an AIP-193 code or whose
/// metadata has more than [`METADATA_ENTRIES_MAX`] entries.
pub fn reason_of(s: &Status) -> Option<ErrorReason> {
    let details = s.details();
    if details.is_empty() || details.len() > DETAILS_BYTES_MAX {
        return None;
    }
    let rpc = RpcStatus::decode(details).ok()?;
    if rpc.code != s.code() as i32 {
        return None;
    }
    rpc.details
        .iter()
        .filter(|a| a.type_url == ERROR_INFO_TYPE_URL)
        .filter_map(|a| ErrorInfo::decode(a.value.as_slice()).ok())
        .find(|i| i.domain == DOMAIN)
        .filter(|i| is_reason_code(&i.reason) && i.metadata.len() <= METADATA_ENTRIES_MAX)
        .map(|i| ErrorReason {
            reason: i.reason,
            metadata: i.metadata,
        })
}

/// AIP-193: `[A-Z][A-Z0-9_]+[A-Z0-9]`, at most 63 characters.
fn is_reason_code(r: &str) -> bool {
    let b = r.as_bytes();
    (3..=REASON_BYTES_MAX).contains(&b.len())
        && b[0].is_ascii_uppercase()
        && b.iter()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == b'_')
        && b[b.len() - 1] != b'_'
}

/// `[a-z][a-zA-Z0-9]*`, at most 64 characters (lowerCamelCase).
fn is_metadata_key(k: &str) -> bool {
    let b = k.as_bytes();
    (1..=64).contains(&b.len())
        && b[0].is_ascii_lowercase()
        && b.iter().all(u8::is_ascii_alphanumeric)
}

/// `s` cut to at most `max` bytes at a character boundary, ending in
/// "..." when cut.
fn bounded(mut s: String, max: usize) -> String {
    if s.len() <= max {
        return s;
    }
    let mut end = max.saturating_sub(3);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    s.push_str("...");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn locked() -> Status {
        status(
            Code::Unavailable,
            "LockedDown: validator 3 is locked down; no token",
            Reason::LockedDown,
            [("node", "3".to_string()), ("certificate", "ab".repeat(32))],
        )
    }

    #[test]
    fn a_reason_round_trips_with_its_metadata_and_leaves_code_and_message_alone() {
        let s = locked();
        assert_eq!(s.code(), Code::Unavailable);
        assert_eq!(
            s.message(),
            "LockedDown: validator 3 is locked down; no token"
        );
        let r = reason_of(&s).expect("a reason");
        assert_eq!(r.reason, "LOCKED_DOWN");
        assert_eq!(r.known(), Some(Reason::LockedDown));
        assert_eq!(r.metadata.get("node").map(String::as_str), Some("3"));
        assert_eq!(r.metadata.len(), 2);
        assert_eq!(Reason::of(&s), Some(Reason::LockedDown));
    }

    #[test]
    fn the_details_are_a_google_rpc_status_with_one_packed_error_info() {
        let s = locked();
        // What a stock google.rpc.Status decoder sees.
        let rpc = RpcStatus::decode(s.details()).expect("google.rpc.Status");
        assert_eq!(rpc.code, 14, "UNAVAILABLE");
        assert_eq!(rpc.message, s.message());
        assert_eq!(rpc.details.len(), 1);
        assert_eq!(
            rpc.details[0].type_url,
            "type.googleapis.com/google.rpc.ErrorInfo"
        );
        let info = ErrorInfo::decode(rpc.details[0].value.as_slice()).expect("ErrorInfo");
        assert_eq!(info.domain, "senatus");
        assert_eq!(info.reason, "LOCKED_DOWN");
    }

    /// The bytes, hand-encoded from the protobuf wire format (field number
    /// << 3 | wire type, lengths as varints, map entries as key 1 / value
    /// 2 messages): what an outside decoder of google.rpc.Status reads.
    #[test]
    fn the_details_bytes_are_pinned() {
        let s = status(
            Code::FailedPrecondition,
            "m",
            Reason::NotLeader,
            [("node", "2".to_string())],
        );
        let mut info = Vec::new();
        info.extend([0x0a, 10]);
        info.extend(b"NOT_LEADER");
        info.extend([0x12, 7]);
        info.extend(b"senatus");
        info.extend([0x1a, 9, 0x0a, 4]);
        info.extend(b"node");
        info.extend([0x12, 1]);
        info.extend(b"2");
        let url = b"type.googleapis.com/google.rpc.ErrorInfo";
        let mut any = vec![0x0a, url.len() as u8];
        any.extend(url);
        any.extend([0x12, info.len() as u8]);
        any.extend(&info);
        let mut want = vec![0x08, 9, 0x12, 1, b'm', 0x1a, any.len() as u8];
        want.extend(&any);
        assert_eq!(s.details(), want.as_slice());
    }

    #[test]
    fn absent_garbage_foreign_or_oversized_details_give_no_reason() {
        let none = Status::unavailable("transport");
        assert_eq!(reason_of(&none), None);
        let garbage = Status::with_details(Code::Unavailable, "x", vec![0xff; 40].into());
        assert_eq!(reason_of(&garbage), None);
        // A valid google.rpc.Status, but oversized.
        let big = RpcStatus {
            code: Code::Unavailable as i32,
            message: "x".repeat(DETAILS_BYTES_MAX),
            details: locked_details(),
        };
        let s = Status::with_details(Code::Unavailable, "x", big.encode_to_vec().into());
        assert_eq!(reason_of(&s), None);
        // Another domain's ErrorInfo is not a senatus reason.
        let mut rpc = RpcStatus::decode(locked().details()).expect("decodes");
        let mut info = ErrorInfo::decode(rpc.details[0].value.as_slice()).expect("decodes");
        info.domain = "example.com".into();
        rpc.details[0].value = info.encode_to_vec();
        let s = Status::with_details(Code::Unavailable, "x", rpc.encode_to_vec().into());
        assert_eq!(reason_of(&s), None);
        // Another type packed in the Any.
        let mut rpc = RpcStatus::decode(locked().details()).expect("decodes");
        rpc.details[0].type_url = "type.googleapis.com/google.rpc.RetryInfo".into();
        let s = Status::with_details(Code::Unavailable, "x", rpc.encode_to_vec().into());
        assert_eq!(reason_of(&s), None);
        // Details describing another code than the status's own.
        let s = Status::with_details(Code::Internal, "x", locked().details().to_vec().into());
        assert_eq!(reason_of(&s), None);
    }

    fn locked_details() -> Vec<AnyDetail> {
        RpcStatus::decode(locked().details())
            .expect("decodes")
            .details
    }

    #[test]
    fn a_malformed_reason_or_too_much_metadata_gives_no_reason() {
        for bad in [
            "",
            "AB",
            "lower_case",
            "TRAILING_",
            "HAS SPACE",
            &"A".repeat(64),
        ] {
            let info = ErrorInfo {
                reason: bad.to_string(),
                domain: DOMAIN.into(),
                metadata: BTreeMap::new(),
            };
            let s = with_info(info);
            assert_eq!(reason_of(&s), None, "{bad:?}");
        }
        let info = ErrorInfo {
            reason: "LOCKED_DOWN".into(),
            domain: DOMAIN.into(),
            metadata: (0..=METADATA_ENTRIES_MAX)
                .map(|i| (format!("k{i}"), String::new()))
                .collect(),
        };
        assert_eq!(reason_of(&with_info(info)), None);
        // An unknown but well-formed code is passed on, not known.
        let info = ErrorInfo {
            reason: "FROM_A_NEWER_VALIDATOR".into(),
            domain: DOMAIN.into(),
            metadata: BTreeMap::new(),
        };
        let r = reason_of(&with_info(info)).expect("well formed");
        assert_eq!(r.reason, "FROM_A_NEWER_VALIDATOR");
        assert_eq!(r.known(), None);
    }

    fn with_info(info: ErrorInfo) -> Status {
        let rpc = RpcStatus {
            code: Code::Unavailable as i32,
            message: "x".into(),
            details: vec![AnyDetail {
                type_url: ERROR_INFO_TYPE_URL.into(),
                value: info.encode_to_vec(),
            }],
        };
        Status::with_details(Code::Unavailable, "x", rpc.encode_to_vec().into())
    }

    #[test]
    fn long_messages_and_values_are_bounded_and_restate_keeps_the_reason() {
        let s = status(
            Code::InvalidArgument,
            "é".repeat(MESSAGE_BYTES_MAX),
            Reason::InvalidRequest,
            [("field", "x".repeat(1000))],
        );
        assert!(s.message().len() <= MESSAGE_BYTES_MAX);
        assert!(s.message().ends_with("..."));
        assert!(s.details().len() <= DETAILS_BYTES_MAX);
        let r = reason_of(&s).expect("reason");
        assert!(r.metadata["field"].len() <= METADATA_VALUE_BYTES_MAX);

        let again = restate(&locked(), "forwarding: LockedDown ...");
        assert_eq!(again.code(), Code::Unavailable);
        assert_eq!(again.message(), "forwarding: LockedDown ...");
        assert_eq!(
            RpcStatus::decode(again.details()).expect("decodes").message,
            again.message()
        );
        assert_eq!(reason_of(&again), reason_of(&locked()));
        let plain = restate(&Status::cancelled("a"), "b");
        assert_eq!((plain.code(), plain.message()), (Code::Cancelled, "b"));
        assert_eq!(reason_of(&plain), None);
    }

    /// The gRPC code's name as the docs spell it.
    fn code_name(c: Code) -> &'static str {
        match c {
            Code::Unavailable => "UNAVAILABLE",
            Code::FailedPrecondition => "FAILED_PRECONDITION",
            Code::InvalidArgument => "INVALID_ARGUMENT",
            Code::Aborted => "ABORTED",
            Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
            Code::PermissionDenied => "PERMISSION_DENIED",
            Code::AlreadyExists => "ALREADY_EXISTS",
            Code::NotFound => "NOT_FOUND",
            Code::Unauthenticated => "UNAUTHENTICATED",
            Code::DataLoss => "DATA_LOSS",
            Code::Internal => "INTERNAL",
            other => panic!("no reason travels with {other:?}"),
        }
    }

    #[test]
    fn every_code_is_aip_193_unique_parses_back_and_is_documented() {
        let proto = include_str!("../proto/senatus/v1/errors.proto");
        let doc = include_str!("../../docs/PROTOCOL.md");
        let section = doc
            .split_once("## 20. Error reasons")
            .map(|(_, s)| s)
            .expect("PROTOCOL.md has section 20");
        let mut seen = std::collections::BTreeSet::new();
        for r in Reason::ALL {
            let code = r.as_str();
            assert!(is_reason_code(code), "{code}");
            assert!(seen.insert(code), "{code} twice");
            assert_eq!(Reason::parse(code), Some(*r));
            let grpc = code_name(r.code());
            let line = proto
                .lines()
                .find(|l| l.starts_with(&format!("//   {code} ")))
                .unwrap_or_else(|| panic!("{code} in errors.proto"));
            assert!(line.contains(grpc), "{code} travels with {grpc}: {line}");
            let row = section
                .lines()
                .find(|l| l.starts_with(&format!("| `{code}` |")))
                .unwrap_or_else(|| panic!("{code} in PROTOCOL.md 20"));
            assert!(
                row.contains(&format!("| {grpc}")),
                "{code} travels with {grpc}: {row}"
            );
        }
        assert_eq!(Reason::parse("LOCKED_DOWN "), None);
    }
}
