//! One client, start to end: the handshake under its timeout, the dial,
//! the answer, then bytes copied both ways — through the meter when there
//! is one. Failures before the copy become connection records.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use meter::{ConnectionBuilder, ConnectionError, Phase};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::dial;
use crate::handshake::{self, HandshakeError, Request, Transport};
use crate::Shared;

/// The copy buffer per direction.
const COPY_BUFFER: usize = 32 * 1024;

/// Serves the client on `stream`, accepted at `accepted`; `cut` turns true
/// when the relay stops waiting for open connections.
pub(crate) async fn serve(
    mut stream: TcpStream,
    peer: SocketAddr,
    accepted: Instant,
    shared: &Shared,
    cut: watch::Receiver<bool>,
) {
    let deadline = tokio::time::Instant::from_std(accepted + shared.handshake_timeout);
    // A client that closes (or idles out) before its first byte asked for
    // nothing: no record.
    let first = match tokio::time::timeout_at(deadline, handshake::first_byte(&mut stream)).await {
        Ok(Ok(Some(b))) => b,
        _ => {
            tracing::debug!(%peer, "closed or idle before a first byte");
            return;
        }
    };
    let transport = Transport::of(first);
    let negotiated = tokio::time::timeout_at(
        deadline,
        handshake::negotiate(first, &mut stream, shared.credentials.as_ref()),
    )
    .await;
    let request = match negotiated {
        Ok(Ok(request)) => request,
        Ok(Err(e)) => {
            handshake_failed(shared, transport, peer, accepted, e);
            return linger(stream).await;
        }
        Err(_) => {
            let e = HandshakeError {
                class: "timeout",
                detail: format!("no complete request within {:?}", shared.handshake_timeout),
            };
            return handshake_failed(shared, transport, peer, accepted, e);
        }
    };
    let _ = stream.set_nodelay(true);
    let builder = shared.meter.as_ref().map(|m| {
        m.connection(transport.label())
            .peer(request.target.host.to_string())
            .protocol(request.target.protocol())
            .local_addr(peer.ip())
            .started_at(accepted)
    });
    let dialed = match dial::dial(&request.target, shared.connect_timeout).await {
        Ok(d) => d,
        Err(e) => {
            tracing::debug!(%peer, target = %request.target, error = %e.detail, "dial failed");
            let _ = stream.write_all(&transport.refusal(&e)).await;
            if let (Some(m), Some(b)) = (&shared.meter, builder) {
                let mut b = b.dial_time(e.elapsed);
                if let Some(ip) = e.remote {
                    b = b.remote_addr(ip);
                }
                let error = ConnectionError {
                    class: Cow::Borrowed(e.class),
                    phase: Phase::Dial,
                    detail: e.detail,
                };
                m.failed(b, error);
            }
            return linger(stream).await;
        }
    };
    let _ = dialed.stream.set_nodelay(true);
    let reply = transport.success(dialed.stream.local_addr().ok());
    match builder {
        None => {
            let mut upstream = dialed.stream;
            let _ = splice(&mut stream, &mut upstream, &reply, &request, cut).await;
        }
        Some(b) => metered(b, dialed, stream, &reply, &request, cut).await,
    }
}

/// Copies through a metered upstream; what ends the copy other than the
/// two sides finishing goes into the record (upstream I/O errors are
/// recorded by the wrapper itself).
async fn metered(
    builder: ConnectionBuilder,
    dialed: dial::Dialed,
    mut client: TcpStream,
    reply: &[u8],
    request: &Request,
    cut: watch::Receiver<bool>,
) {
    let conn = builder
        .remote_addr(dialed.remote.ip())
        .dial_time(dialed.elapsed)
        .open();
    let mut upstream = conn.wrap(dialed.stream);
    match splice(&mut client, &mut upstream, reply, request, cut).await {
        Ok(()) | Err(End::Copy) => {}
        // First error wins: when the upstream failed too, its own record
        // stands. The class says the client's side (`client_reset`, …), so
        // that records tell clients that give up from failures of the target.
        Err(End::Client(e, phase)) => conn.error(ConnectionError {
            class: Cow::Owned(format!("client_{}", meter::error_class(&e))),
            phase,
            detail: format!(
                "{} the client: {e}",
                if phase == Phase::Read {
                    "reading from"
                } else {
                    "writing to"
                }
            ),
        }),
        Err(End::Answer(e)) => conn.error(ConnectionError {
            class: Cow::Borrowed(meter::error_class(&e)),
            phase: Phase::Handshake,
            detail: format!("answering the client: {e}"),
        }),
        Err(End::Cut) => conn.error(ConnectionError {
            class: Cow::Borrowed("shutdown"),
            phase: Phase::Read,
            detail: "the relay shut down while the connection was open".to_owned(),
        }),
    }
}

/// How a splice ended early.
#[derive(Debug)]
enum End {
    /// The client could not be answered.
    Answer(std::io::Error),
    /// Copying failed on the upstream side (the meter's wrapper has
    /// recorded it).
    Copy,
    /// Copying failed on the client's side: reading from it or writing to
    /// it.
    Client(std::io::Error, Phase),
    /// The relay cut the connection at shutdown.
    Cut,
}

/// Answers the client, forwards its early bytes, then copies both ways
/// until both sides are done, either fails, or the relay cuts.
async fn splice<U>(
    client: &mut TcpStream,
    upstream: &mut U,
    reply: &[u8],
    request: &Request,
    mut cut: watch::Receiver<bool>,
) -> Result<(), End>
where
    U: AsyncRead + AsyncWrite + Unpin,
{
    client.write_all(reply).await.map_err(End::Answer)?;
    let mut client = Watched {
        io: client,
        failed: None,
    };
    let copy = async {
        if !request.early.is_empty() {
            upstream.write_all(&request.early).await?;
        }
        tokio::io::copy_bidirectional_with_sizes(&mut client, upstream, COPY_BUFFER, COPY_BUFFER)
            .await
    };
    let cut = async {
        if cut.wait_for(|&c| c).await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        copied = copy => match copied {
            Ok(_) => Ok(()),
            Err(e) => {
                tracing::debug!(target = %request.target, error = %e, "relayed connection failed");
                Err(match client.failed {
                    Some(phase) => End::Client(e, phase),
                    None => End::Copy,
                })
            }
        },
        () = cut => Err(End::Cut),
    }
}

/// The client's stream, remembering whether a read or a write on it failed,
/// so that a copy error can be told apart from the upstream's.
struct Watched<'a> {
    io: &'a mut TcpStream,
    failed: Option<Phase>,
}

impl Watched<'_> {
    fn note<T>(
        &mut self,
        phase: Phase,
        polled: Poll<std::io::Result<T>>,
    ) -> Poll<std::io::Result<T>> {
        // Retried errors are not failures (as in the meter's own wrapper).
        if let Poll::Ready(Err(e)) = &polled {
            if !meter::is_transient(e) {
                self.failed.get_or_insert(phase);
            }
        }
        polled
    }
}

impl AsyncRead for Watched<'_> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut *this.io).poll_read(cx, buf);
        this.note(Phase::Read, polled)
    }
}

impl AsyncWrite for Watched<'_> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut *this.io).poll_write(cx, buf);
        this.note(Phase::Write, polled)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut *this.io).poll_flush(cx);
        this.note(Phase::Write, polled)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut *this.io).poll_shutdown(cx);
        this.note(Phase::Write, polled)
    }
}

/// How long a refused client may go on sending before the relay closes.
const LINGER: std::time::Duration = std::time::Duration::from_millis(500);

/// Closes after a refusal without losing it: sends FIN, then reads and
/// drops what the client still sends (at most 64 KiB, for at most
/// [`LINGER`]), since closing with unread bytes would reset the connection
/// and the client might never read the answer.
async fn linger(mut stream: TcpStream) {
    use tokio::io::AsyncReadExt;
    let _ = stream.shutdown().await;
    let drain = async {
        let mut buf = [0u8; 4096];
        let mut left = 64 * 1024usize;
        while left > 0 {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    };
    let _ = tokio::time::timeout(LINGER, drain).await;
}

/// Records a failed handshake (no target known, or none reached).
fn handshake_failed(
    shared: &Shared,
    transport: Transport,
    peer: SocketAddr,
    accepted: Instant,
    e: HandshakeError,
) {
    tracing::debug!(%peer, class = e.class, detail = %e.detail, "handshake failed");
    if let Some(m) = &shared.meter {
        let builder = m
            .connection(transport.label())
            .local_addr(peer.ip())
            .started_at(accepted);
        m.failed(
            builder,
            ConnectionError {
                class: Cow::Borrowed(e.class),
                phase: Phase::Handshake,
                detail: e.detail,
            },
        );
    }
}
