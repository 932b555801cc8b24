//! TLS between validators and towards clients, pinned to genesis.
//!
//! No certificate authority is involved. A validator's certificate carries
//! its identity key's endorsement of its TLS key (`senatus_genesis::tls`),
//! and every verifier here accepts exactly the validators of genesis:
//!
//! * the **peer port** runs mutual TLS 1.3: the server learns which
//!   validator is calling ([`PeerInfo::node`]), the client checks that the
//!   server is the validator it meant to reach;
//! * the **public API** runs server-authenticated TLS 1.3: a client holding
//!   only genesis knows it speaks to a validator of that chain.
//!
//! The verifiers still check the TLS 1.3 handshake signature against the
//! certificate's key, so a copied certificate is worthless without its key.
//! TLS 1.2 is refused in both directions.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, DistinguishedName, OtherError,
    ServerConfig, SignatureScheme,
};
use senatus_genesis::tls::{PresentedIdentity, TlsIdentityError, TlsMaterial};
use senatus_genesis::{Genesis, NodeId};

mod accept;
mod connect;

pub use accept::{AcceptLimits, PeerInfo, TlsConn, incoming};
pub use connect::lazy_channel;

/// ALPN protocol id of gRPC (HTTP/2).
pub const ALPN_H2: &[u8] = b"h2";

/// The crypto provider used everywhere: rustls' `ring` provider.
///
/// rustls deprecates it for offering no post-quantum key exchange
/// (X25519MLKEM768 needs aws-lc-rs, a far heavier build on two cores). The
/// key exchange is X25519; a recorded session could be decrypted by a
/// future quantum adversary, while authentication (Ed25519 pinned to
/// genesis) is unaffected after the fact. A deliberate, stated trade-off.
#[allow(deprecated)]
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Why a peer's certificate was refused; carried inside rustls' error so
/// the handshake failure names the reason. Its `Debug` is its message,
/// because that is what rustls prints.
#[derive(thiserror::Error)]
pub enum PeerRefused {
    /// The certificate does not speak for any validator of genesis.
    #[error(transparent)]
    Identity(#[from] TlsIdentityError),
    /// A validator of genesis, but not the one this connection was for.
    #[error("the server is validator {found}, not validator {expected} that was dialled")]
    WrongValidator {
        /// The validator dialled.
        expected: NodeId,
        /// The validator that answered.
        found: NodeId,
    },
}

impl std::fmt::Debug for PeerRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

/// Accepts a certificate only if it carries a valid endorsement by the
/// identity key of a validator of genesis (one given validator, if
/// `expect` is set), and checks TLS 1.3 handshake signatures against it.
#[derive(Debug)]
pub struct GenesisVerifier {
    genesis: Arc<Genesis>,
    expect: Option<NodeId>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl GenesisVerifier {
    /// A verifier accepting any validator of `genesis`, or only `expect`.
    pub fn new(genesis: Arc<Genesis>, expect: Option<NodeId>) -> GenesisVerifier {
        GenesisVerifier {
            genesis,
            expect,
            algorithms: provider().signature_verification_algorithms,
        }
    }

    /// The validator a certificate speaks for, checked against genesis at
    /// `now` (and against the expected validator, if any).
    pub fn identify(
        &self,
        cert: &CertificateDer<'_>,
        now: UnixTime,
    ) -> Result<NodeId, PeerRefused> {
        let presented = PresentedIdentity::from_cert_der(cert)?;
        let node = presented.check(&self.genesis, now.as_secs().saturating_mul(1000))?;
        match self.expect {
            Some(expected) if expected != node => Err(PeerRefused::WrongValidator {
                expected,
                found: node,
            }),
            _ => Ok(node),
        }
    }

    fn verify_cert(
        &self,
        cert: &CertificateDer<'_>,
        now: UnixTime,
    ) -> Result<NodeId, rustls::Error> {
        self.identify(cert, now).map_err(|e| {
            rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(e))))
        })
    }

    fn tls13(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }
}

fn tls12_refused() -> rustls::Error {
    rustls::Error::General("TLS 1.2 is refused: senatus speaks TLS 1.3 only".into())
}

impl ServerCertVerifier for GenesisVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.verify_cert(end_entity, now)?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(tls12_refused())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.tls13(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }
}

impl ClientCertVerifier for GenesisVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.verify_cert(end_entity, now)?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(tls12_refused())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.tls13(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }
}

/// Why a TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
#[error("TLS configuration: {0}")]
pub struct ConfigError(#[from] rustls::Error);

/// A validator's TLS configurations, built once at start.
#[derive(Clone)]
pub struct NodeTls {
    genesis: Arc<Genesis>,
    cert: CertificateDer<'static>,
    key: Arc<PrivateKeyDer<'static>>,
    /// This validator.
    pub node: NodeId,
}

impl std::fmt::Debug for NodeTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeTls")
            .field("node", &self.node)
            .field("key", &"<redacted>")
            .finish()
    }
}

impl NodeTls {
    /// From a validator's loaded TLS material.
    pub fn new(material: &TlsMaterial, genesis: Arc<Genesis>) -> NodeTls {
        NodeTls {
            genesis,
            cert: CertificateDer::from(material.cert_der.clone()),
            key: Arc::new(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
                material.pkcs8_der().to_vec(),
            ))),
            node: material.presented.endorsement.node_id,
        }
    }

    /// The genesis this validator's verifiers pin to.
    pub fn genesis(&self) -> &Arc<Genesis> {
        &self.genesis
    }

    /// The peer port's server side: TLS 1.3, a client certificate of a
    /// validator of genesis required.
    pub fn peer_server(&self) -> Result<Arc<ServerConfig>, ConfigError> {
        let verifier = Arc::new(GenesisVerifier::new(self.genesis.clone(), None));
        self.server(Some(verifier))
    }

    /// The public API's server side: TLS 1.3, no client certificate.
    pub fn api_server(&self) -> Result<Arc<ServerConfig>, ConfigError> {
        self.server(None)
    }

    fn server(
        &self,
        clients: Option<Arc<dyn ClientCertVerifier>>,
    ) -> Result<Arc<ServerConfig>, ConfigError> {
        let b = ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])?;
        let b = match clients {
            Some(v) => b.with_client_cert_verifier(v),
            None => b.with_no_client_auth(),
        };
        let mut c = b.with_single_cert(vec![self.cert.clone()], self.key.clone_key())?;
        c.alpn_protocols = vec![ALPN_H2.to_vec()];
        Ok(Arc::new(c))
    }

    /// The peer port's client side towards validator `target`: presents
    /// this validator's certificate and accepts only `target`'s.
    pub fn peer_client(&self, target: NodeId) -> Result<Arc<ClientConfig>, ConfigError> {
        client(self.genesis.clone(), Some(target), Some(self))
    }
}

/// A public API client's configuration: TLS 1.3, accepting any validator
/// of `genesis` (or only `expect`), presenting no certificate.
pub fn api_client(
    genesis: Arc<Genesis>,
    expect: Option<NodeId>,
) -> Result<Arc<ClientConfig>, ConfigError> {
    client(genesis, expect, None)
}

/// TLS 1.3 towards a validator of `genesis` (or only `expect`),
/// presenting `me`'s certificate if given. SNI is off: the verifier pins
/// the key, not a name.
fn client(
    genesis: Arc<Genesis>,
    expect: Option<NodeId>,
    me: Option<&NodeTls>,
) -> Result<Arc<ClientConfig>, ConfigError> {
    let verifier = Arc::new(GenesisVerifier::new(genesis, expect));
    let b = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut c = match me {
        Some(me) => b.with_client_auth_cert(vec![me.cert.clone()], me.key.clone_key())?,
        None => b.with_no_client_auth(),
    };
    c.alpn_protocols = vec![ALPN_H2.to_vec()];
    c.enable_sni = false;
    Ok(Arc::new(c))
}

/// The validator that authenticated this request's connection (mutual
/// TLS), or `None` on a connection without a client certificate.
pub fn caller<T>(req: &tonic::Request<T>) -> Option<NodeId> {
    req.extensions().get::<PeerInfo>().and_then(|p| p.node)
}
