//! The client side: a lazily connecting tonic channel over TLS 1.3.

use std::sync::Arc;

use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tonic::transport::{Channel, Endpoint, Uri};

/// A channel to `endpoint` (an `http://host:port` endpoint with the
/// caller's timeouts) that connects over TLS with `config` on first use and
/// again after a failure. The endpoint's connect timeout covers the TCP
/// connect and the TLS handshake together.
pub fn lazy_channel(endpoint: &Endpoint, config: Arc<ClientConfig>) -> Channel {
    let connector = tokio_rustls::TlsConnector::from(config);
    let connect = tower::service_fn(move |uri: Uri| {
        let connector = connector.clone();
        async move {
            let authority = uri
                .authority()
                .ok_or_else(|| std::io::Error::other(format!("no host:port in {uri}")))?
                .to_string();
            let tcp = TcpStream::connect(&authority).await?;
            tcp.set_nodelay(true)?;
            // The verifier pins the key; the name is not used (SNI is off).
            let name = ServerName::try_from("senatus.invalid")
                .map_err(std::io::Error::other)?
                .to_owned();
            let tls = connector.connect(name, tcp).await?;
            Ok::<_, std::io::Error>(TokioIo::new(tls))
        }
    });
    endpoint.connect_with_connector_lazy(connect)
}
