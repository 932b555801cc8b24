//! The server side: TLS handshakes outside the accept loop, with bounds.
//!
//! The accept loop only accepts: each handshake runs in its own task under
//! a timeout, and at most `handshakes_max` run at once (a connection over
//! that is closed at once, so slow handshakes cannot starve the loop). An
//! established connection holds one of `connections_max` permits and one
//! of `per_peer_max` slots of its peer (the validator on the mutual-TLS
//! peer port, the source address on the public API), and is closed after
//! `idle_timeout` without a byte from the other side.

use std::collections::HashMap;
use std::future::Future as _;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::ServerConfig;
use senatus_genesis::NodeId;
use senatus_genesis::tls::PresentedIdentity;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::time::{Instant, Sleep};
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;

/// Bounds of one TLS listener.
#[derive(Debug, Clone, Copy)]
pub struct AcceptLimits {
    /// Most connections at once, handshaking or established.
    pub connections_max: usize,
    /// Most TLS handshakes in progress at once.
    pub handshakes_max: usize,
    /// Most established connections per peer (a validator on the peer
    /// port; a source address on the public API).
    pub per_peer_max: usize,
    /// Longest a TLS handshake may take.
    pub handshake_timeout_ms: u64,
    /// An established connection that receives nothing for this long is
    /// closed (validators send HTTP/2 keepalive pings every 5 s).
    pub idle_timeout_ms: u64,
}

impl Default for AcceptLimits {
    fn default() -> Self {
        AcceptLimits {
            connections_max: 512,
            handshakes_max: 64,
            per_peer_max: 256,
            handshake_timeout_ms: 5_000,
            idle_timeout_ms: 120_000,
        }
    }
}

/// Who is on the other end of a connection; tonic hands it to every
/// request on that connection as an extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerInfo {
    /// The remote socket address.
    pub remote: Option<SocketAddr>,
    /// The validator that authenticated with a client certificate (mutual
    /// TLS), if any.
    pub node: Option<NodeId>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum PeerKey {
    Node(NodeId),
    Addr(IpAddr),
}

type Counts = Arc<Mutex<HashMap<PeerKey, usize>>>;

/// One of a peer's connection slots, given back on drop.
#[derive(Debug)]
struct PeerSlot {
    counts: Counts,
    key: PeerKey,
}

impl PeerSlot {
    fn take(counts: &Counts, key: PeerKey, max: usize) -> Option<PeerSlot> {
        let mut c = counts.lock().unwrap_or_else(|e| e.into_inner());
        let n = c.entry(key).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(PeerSlot {
            counts: counts.clone(),
            key,
        })
    }
}

impl Drop for PeerSlot {
    fn drop(&mut self) {
        let mut c = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = c.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                c.remove(&self.key);
            }
        }
    }
}

/// Accepts TCP connections on `listener`, runs the TLS handshake of each
/// with `config` under `limits`, and yields the established ones. The
/// accept task ends when the returned stream is dropped (the server
/// stopped). `what` names the listener in logs.
pub fn incoming(
    listener: TcpListener,
    config: Arc<ServerConfig>,
    limits: AcceptLimits,
    what: &'static str,
) -> ReceiverStream<std::io::Result<TlsConn>> {
    let (tx, rx) = mpsc::channel(64);
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let conns = Arc::new(Semaphore::new(limits.connections_max));
    let handshakes = Arc::new(Semaphore::new(limits.handshakes_max));
    let counts: Counts = Arc::default();
    tokio::spawn(async move {
        loop {
            let permit = tokio::select! {
                () = tx.closed() => return,
                p = conns.clone().acquire_owned() => match p {
                    Ok(p) => p,
                    Err(_) => return,
                },
            };
            let (tcp, remote) = tokio::select! {
                () = tx.closed() => return,
                r = listener.accept() => match r {
                    Ok(c) => c,
                    Err(e) => {
                        // Out of descriptors and the like: back off briefly
                        // rather than spin; the listener stays open.
                        tracing::warn!(listener = what, error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let Ok(hs) = handshakes.clone().try_acquire_owned() else {
                tracing::warn!(listener = what, %remote, limit = limits.handshakes_max, "too many TLS handshakes in progress; connection closed");
                continue;
            };
            let acceptor = acceptor.clone();
            let tx = tx.clone();
            let counts = counts.clone();
            tokio::spawn(async move {
                let _ = tcp.set_nodelay(true);
                let timeout = Duration::from_millis(limits.handshake_timeout_ms);
                let tls = match tokio::time::timeout(timeout, acceptor.accept(tcp)).await {
                    Err(_) => {
                        tracing::info!(listener = what, %remote, timeout_ms = limits.handshake_timeout_ms, "TLS handshake timed out; connection closed");
                        return;
                    }
                    Ok(Err(e)) => {
                        tracing::warn!(listener = what, %remote, error = %e, "TLS handshake refused");
                        return;
                    }
                    Ok(Ok(s)) => s,
                };
                drop(hs);
                // The verifier accepted this certificate during the
                // handshake; read back which validator it speaks for.
                let node = tls
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|c| c.first())
                    .and_then(|c| PresentedIdentity::from_cert_der(c).ok())
                    .map(|p| p.endorsement.node_id);
                let key = node.map_or(PeerKey::Addr(remote.ip()), PeerKey::Node);
                let Some(slot) = PeerSlot::take(&counts, key, limits.per_peer_max) else {
                    tracing::warn!(listener = what, %remote, ?node, limit = limits.per_peer_max, "per-peer connection limit reached; connection closed");
                    return;
                };
                let conn = TlsConn {
                    io: tls,
                    idle: Box::pin(tokio::time::sleep(Duration::from_millis(
                        limits.idle_timeout_ms,
                    ))),
                    idle_for: Duration::from_millis(limits.idle_timeout_ms),
                    info: PeerInfo {
                        remote: Some(remote),
                        node,
                    },
                    _permit: permit,
                    _slot: slot,
                };
                let _ = tx.send(Ok(conn)).await;
            });
        }
    });
    ReceiverStream::new(rx)
}

/// An established TLS connection: who is on the other end, its connection
/// permit and peer slot, and its idle timer.
pub struct TlsConn {
    io: TlsStream<TcpStream>,
    idle: Pin<Box<Sleep>>,
    idle_for: Duration,
    info: PeerInfo,
    _permit: OwnedSemaphorePermit,
    _slot: PeerSlot,
}

impl std::fmt::Debug for TlsConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConn").field("info", &self.info).finish()
    }
}

impl AsyncRead for TlsConn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(r) => {
                if buf.filled().len() > before {
                    let next = Instant::now() + this.idle_for;
                    this.idle.as_mut().reset(next);
                }
                Poll::Ready(r)
            }
            Poll::Pending => match this.idle.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "connection idle; closed",
                ))),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

impl AsyncWrite for TlsConn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

impl tonic::transport::server::Connected for TlsConn {
    type ConnectInfo = PeerInfo;

    fn connect_info(&self) -> PeerInfo {
        self.info
    }
}
