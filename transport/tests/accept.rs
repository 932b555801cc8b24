//! The TLS listener's bounds and identities, in process over loopback:
//! who is on the other end, the handshake timeout, the per-peer limit and
//! the idle timeout. Every wait is bounded.

use std::sync::Arc;
use std::time::Duration;

use rand::SeedableRng as _;
use rand_chacha::ChaCha20Rng;
use senatus_genesis::ceremony::{Ceremony, CeremonyParams, NodeAddrs};
use senatus_genesis::{Genesis, NodeId, PolicyLayer};
use senatus_transport::{AcceptLimits, NodeTls, PeerInfo, TlsConn, incoming};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio_stream::StreamExt as _;
use tonic::transport::server::Connected as _;

const BOUND: Duration = Duration::from_secs(10);

fn ceremony() -> (Ceremony, Arc<Genesis>) {
    let now = u64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_millis(),
    )
    .expect("ms");
    let params = CeremonyParams {
        chain_id: "transport-test".into(),
        threshold: 3,
        nodes: (0..5)
            .map(|i| NodeAddrs {
                peer: format!("127.0.0.1:{}", 7000 + i),
                api: format!("127.0.0.1:{}", 7100 + i),
                metrics: format!("127.0.0.1:{}", 7200 + i),
            })
            .collect(),
        policy: PolicyLayer::example(),
        created_at_ms: now - 1000,
    };
    let c = Ceremony::run(params, &mut ChaCha20Rng::seed_from_u64(1)).expect("ceremony");
    let g = Arc::new(c.genesis.clone());
    (c, g)
}

fn tls(c: &Ceremony, g: &Arc<Genesis>, id: u64) -> NodeTls {
    let m = c.nodes.iter().find(|n| n.id.get() == id).expect("node");
    NodeTls::new(&m.tls, g.clone())
}

fn id(n: u64) -> NodeId {
    NodeId::new(n).expect("id")
}

async fn listen(
    server: &NodeTls,
    limits: AcceptLimits,
) -> (
    String,
    tokio_stream::wrappers::ReceiverStream<std::io::Result<TlsConn>>,
) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = l.local_addr().expect("addr").to_string();
    let conns = incoming(l, server.peer_server().expect("config"), limits, "test");
    (addr, conns)
}

async fn dial(
    addr: &str,
    config: Arc<rustls::ClientConfig>,
) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let name = rustls::pki_types::ServerName::try_from("senatus.invalid")
        .expect("name")
        .to_owned();
    tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
}

async fn next(
    conns: &mut tokio_stream::wrappers::ReceiverStream<std::io::Result<TlsConn>>,
) -> TlsConn {
    tokio::time::timeout(BOUND, conns.next())
        .await
        .expect("a connection within the bound")
        .expect("stream open")
        .expect("connection")
}

#[tokio::test]
async fn the_server_learns_which_validator_called() {
    let (c, g) = ceremony();
    let (addr, mut conns) = listen(&tls(&c, &g, 1), AcceptLimits::default()).await;
    let mut client = dial(&addr, tls(&c, &g, 2).peer_client(id(1)).expect("config"))
        .await
        .expect("handshake");
    client.write_all(b"x").await.expect("write");
    let conn = next(&mut conns).await;
    let info: PeerInfo = conn.connect_info();
    assert_eq!(info.node, Some(id(2)));
    assert!(info.remote.is_some());
}

#[tokio::test]
async fn a_silent_client_is_dropped_at_the_handshake_timeout() {
    let (c, g) = ceremony();
    let limits = AcceptLimits {
        handshake_timeout_ms: 200,
        ..AcceptLimits::default()
    };
    let (addr, _conns) = listen(&tls(&c, &g, 1), limits).await;
    let mut tcp = tokio::net::TcpStream::connect(&addr).await.expect("tcp");
    let mut buf = [0u8; 16];
    // Says nothing; the server closes (EOF or reset) well inside the bound.
    let r = tokio::time::timeout(BOUND, tcp.read(&mut buf))
        .await
        .expect("closed within the bound");
    assert!(matches!(r, Ok(0) | Err(_)), "{r:?}");
}

#[tokio::test]
async fn a_validator_over_its_connection_limit_is_turned_away() {
    let (c, g) = ceremony();
    let limits = AcceptLimits {
        per_peer_max: 1,
        ..AcceptLimits::default()
    };
    let (addr, mut conns) = listen(&tls(&c, &g, 1), limits).await;
    let config = tls(&c, &g, 2).peer_client(id(1)).expect("config");
    let _first = dial(&addr, config.clone()).await.expect("first");
    let held = next(&mut conns).await;
    assert_eq!(held.connect_info().node, Some(id(2)));
    // The second connection of validator 2 completes TLS and is closed.
    let mut second = dial(&addr, config).await.expect("handshake");
    let mut buf = [0u8; 16];
    let r = tokio::time::timeout(BOUND, second.read(&mut buf))
        .await
        .expect("closed within the bound");
    assert!(matches!(r, Ok(0) | Err(_)), "{r:?}");
    // Another validator is not affected by validator 2's limit.
    let _third = dial(&addr, tls(&c, &g, 3).peer_client(id(1)).expect("config"))
        .await
        .expect("third");
    assert_eq!(next(&mut conns).await.connect_info().node, Some(id(3)));
}

#[tokio::test]
async fn an_idle_connection_is_closed() {
    let (c, g) = ceremony();
    let limits = AcceptLimits {
        idle_timeout_ms: 200,
        ..AcceptLimits::default()
    };
    let (addr, mut conns) = listen(&tls(&c, &g, 1), limits).await;
    let _client = dial(&addr, tls(&c, &g, 2).peer_client(id(1)).expect("config"))
        .await
        .expect("handshake");
    let mut conn = next(&mut conns).await;
    let mut buf = [0u8; 16];
    let r = tokio::time::timeout(BOUND, conn.read(&mut buf))
        .await
        .expect("the idle timer fires within the bound");
    let e = r.expect_err("idle connection");
    assert_eq!(e.kind(), std::io::ErrorKind::TimedOut, "{e}");
}
