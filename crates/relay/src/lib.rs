//! weir relay: a SOCKS5 (RFC 1928, RFC 1929) and HTTP CONNECT forwarding
//! proxy whose upstream connections are metered with [`meter`] — the
//! measured network in a box, like a Lantern proxy or a Tor exit.
//!
//! - One listener; each client is its own task. The client's first byte
//!   decides: `0x05` starts a SOCKS5 greeting, anything else an HTTP request
//!   head (at most 8 KiB), of which only `CONNECT host:port` is served.
//! - Names are resolved by the relay (remote DNS); the dial has a timeout;
//!   its failure is answered with the SOCKS5 reply code (or HTTP status) it
//!   maps to. Then bytes are copied both ways until either side is done.
//! - With a [`Meter`], the upstream connection is metered: transport
//!   `socks5` or `http-connect`, the target host as requested as the peer,
//!   protocol `http` (port 80), `https` (443) or `tcp`, the client's and
//!   the target's addresses, the dial time. Dial failures and failed
//!   handshakes become connection records with their class and phase.
//! - Bad input never panics and never stops the relay; [`Relay::serve`]
//!   stops accepting when its shutdown future resolves and gives open
//!   connections [`RelayConfig::drain_timeout`] to finish.
//!
//! ```no_run
//! # async fn f() -> Result<(), relay::RelayError> {
//! let meter = meter::Meter::new(meter::MeterConfig::default());
//! let mut config = relay::RelayConfig::new(([127, 0, 0, 1], 1080).into());
//! config.meter = Some(meter);
//! let relay = relay::Relay::bind(config).await?;
//! println!("SOCKS5 and HTTP CONNECT on {}", relay.local_addr());
//! relay.serve(std::future::pending()).await;
//! # Ok(()) }
//! ```

mod client;
mod connect;
mod dial;
mod handshake;
pub mod metrics;
mod socks;

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use meter::Meter;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

/// The transport label of connections relayed for SOCKS5 clients.
pub const SOCKS5: &str = "socks5";
/// The transport label of connections relayed for HTTP CONNECT clients.
pub const HTTP_CONNECT: &str = "http-connect";

/// How a [`Relay`] listens, authenticates, times out and meters.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// The listener's address (port 0 picks a free one).
    pub listen: SocketAddr,
    /// Username and password clients must give (SOCKS5: RFC 1929; HTTP:
    /// `Proxy-Authorization: Basic`); `None` serves everyone.
    pub credentials: Option<Credentials>,
    /// From accept to a complete request (default 10 s).
    pub handshake_timeout: Duration,
    /// Resolving and connecting to the target (default 10 s).
    pub connect_timeout: Duration,
    /// After shutdown, how long open connections may go on (default 5 s);
    /// then they are cut.
    pub drain_timeout: Duration,
    /// Clients served at once; more are closed at accept (default 4096).
    pub max_clients: usize,
    /// Meter upstream connections here; `None`: no metering at all.
    pub meter: Option<Meter>,
    /// Take the meter's connection-rate samples this often (default 1 s);
    /// `None` when something else does (a [`meter::export::Exporter`]).
    pub sample_every: Option<Duration>,
}

impl RelayConfig {
    /// Defaults, listening on `listen`, without a meter.
    pub fn new(listen: SocketAddr) -> Self {
        RelayConfig {
            listen,
            credentials: None,
            handshake_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(10),
            drain_timeout: Duration::from_secs(5),
            max_clients: 4096,
            meter: None,
            sample_every: Some(Duration::from_secs(1)),
        }
    }
}

/// A username and password (each 1–255 bytes, as RFC 1929 allows).
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    user: String,
    password: String,
}

impl Credentials {
    /// Checks the lengths.
    pub fn new(user: impl Into<String>, password: impl Into<String>) -> Result<Self, RelayError> {
        let (user, password) = (user.into(), password.into());
        for (what, v) in [("username", &user), ("password", &password)] {
            if v.is_empty() || v.len() > 255 {
                return Err(RelayError::Credentials(format!(
                    "the {what} must be 1 to 255 bytes long"
                )));
            }
        }
        Ok(Credentials { user, password })
    }

    /// The username.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// Whether `user` and `password` are these, comparing every byte
    /// whatever the first difference.
    pub(crate) fn matches(&self, user: &[u8], password: &[u8]) -> bool {
        same(user, self.user.as_bytes()) & same(password, self.password.as_bytes())
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &"(hidden)")
            .finish()
    }
}

fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Why the relay could not start.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The listener could not be bound.
    #[error("listening on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// Credentials that RFC 1929 cannot carry.
    #[error("credentials: {0}")]
    Credentials(String),
}

/// What every client task shares.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) credentials: Option<Credentials>,
    pub(crate) handshake_timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) meter: Option<Meter>,
}

/// A bound relay; [`Relay::serve`] runs it.
#[derive(Debug)]
pub struct Relay {
    listener: TcpListener,
    local: SocketAddr,
    shared: Arc<Shared>,
    drain: Duration,
    max_clients: usize,
    sample_every: Option<Duration>,
}

/// How long cut connections get to end (and send their records) before
/// their tasks are dropped.
const CUT_GRACE: Duration = Duration::from_secs(1);

impl Relay {
    /// Binds the listener.
    pub async fn bind(config: RelayConfig) -> Result<Relay, RelayError> {
        let bind_error = |source| RelayError::Bind {
            addr: config.listen,
            source,
        };
        let listener = TcpListener::bind(config.listen).await.map_err(bind_error)?;
        let local = listener.local_addr().map_err(bind_error)?;
        Ok(Relay {
            listener,
            local,
            shared: Arc::new(Shared {
                credentials: config.credentials,
                handshake_timeout: config.handshake_timeout,
                connect_timeout: config.connect_timeout,
                meter: config.meter,
            }),
            drain: config.drain_timeout,
            max_clients: config.max_clients.max(1),
            sample_every: config.sample_every.filter(|d| !d.is_zero()),
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Serves clients until `shutdown` resolves; then stops accepting,
    /// waits up to the drain timeout for open connections, cuts the rest,
    /// and returns once every client task has ended (so every connection
    /// record has been handed to the meter).
    pub async fn serve(self, shutdown: impl Future<Output = ()>) {
        let Relay {
            listener,
            shared,
            drain,
            max_clients,
            sample_every,
            ..
        } = self;
        let (cut, cut_rx) = watch::channel(false);
        let slots = Arc::new(Semaphore::new(max_clients));
        let mut clients = JoinSet::new();
        let mut ticker = sample_every
            .filter(|_| shared.meter.is_some())
            .map(|every| {
                let mut t = tokio::time::interval(every);
                t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
                t
            });
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        let at = Instant::now();
                        while let Some(done) = clients.try_join_next() {
                            report(done);
                        }
                        let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
                            tracing::warn!(%peer, max_clients, "too many clients; closing the new one");
                            continue;
                        };
                        let shared = Arc::clone(&shared);
                        let cut = cut_rx.clone();
                        clients.spawn(async move {
                            client::serve(stream, peer, at, &shared, cut).await;
                            drop(permit);
                        });
                    }
                    Err(e) => {
                        // Out of descriptors, say: wait rather than spin.
                        tracing::warn!(error = %e, "accepting a client failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
                () = tick(&mut ticker) => {
                    if let Some(m) = &shared.meter {
                        m.sample_connections();
                    }
                }
            }
        }
        drop(listener);
        if !clients.is_empty() {
            tracing::info!(
                open = clients.len(),
                "relay stopping: waiting for open connections"
            );
        }
        if tokio::time::timeout(drain, join_all(&mut clients))
            .await
            .is_err()
        {
            tracing::info!(
                open = clients.len(),
                "relay stopping: cutting open connections"
            );
            let _ = cut.send(true);
            if tokio::time::timeout(CUT_GRACE, join_all(&mut clients))
                .await
                .is_err()
            {
                clients.abort_all();
                join_all(&mut clients).await;
            }
        }
    }
}

async fn tick(ticker: &mut Option<tokio::time::Interval>) {
    match ticker {
        Some(t) => {
            t.tick().await;
        }
        None => std::future::pending().await,
    }
}

async fn join_all(clients: &mut JoinSet<()>) {
    while let Some(done) = clients.join_next().await {
        report(done);
    }
}

fn report(done: Result<(), tokio::task::JoinError>) {
    if let Err(e) = done {
        if e.is_panic() {
            tracing::error!("a client task panicked; the relay goes on");
        }
    }
}

/// Entry points for the fuzz target and property tests: the handshake
/// over scripted client bytes. Not a stable interface.
#[doc(hidden)]
pub mod fuzz {
    use std::future::Future;
    use std::io;
    use std::pin::Pin;
    use std::task::{Context, Poll, Waker};

    use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

    use crate::{handshake, Credentials};

    /// What a handshake came to.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum Outcome {
        /// The client sent nothing.
        Silent,
        /// A complete request: `host:port` as asked, the transport label and
        /// how many bytes the client sent past the handshake.
        Request {
            /// The target as the client named it.
            target: String,
            /// `socks5` or `http-connect`.
            transport: &'static str,
            /// Bytes read beyond the request, to be forwarded.
            early: usize,
        },
        /// The handshake failed with this error class.
        Failed(&'static str),
        /// The handshake wanted more than a scripted stream can give (never,
        /// as the script ends in EOF).
        Pending,
    }

    /// Runs the handshake over `input`, which arrives at most `chunk`
    /// bytes per read; returns the outcome and what the relay wrote back.
    pub fn handshake(
        input: &[u8],
        chunk: usize,
        credentials: Option<&Credentials>,
    ) -> (Outcome, Vec<u8>) {
        let mut io = Script {
            input,
            chunk: chunk.max(1),
            output: Vec::new(),
        };
        let outcome = {
            let run = async {
                let first = match handshake::first_byte(&mut io).await {
                    Ok(Some(b)) => b,
                    _ => return Outcome::Silent,
                };
                match handshake::negotiate(first, &mut io, credentials).await {
                    Ok(r) => Outcome::Request {
                        target: r.target.to_string(),
                        transport: r.transport.label(),
                        early: r.early.len(),
                    },
                    Err(e) => Outcome::Failed(e.class),
                }
            };
            let mut run = std::pin::pin!(run);
            let mut cx = Context::from_waker(Waker::noop());
            match run.as_mut().poll(&mut cx) {
                Poll::Ready(o) => o,
                Poll::Pending => Outcome::Pending,
            }
        };
        (outcome, io.output)
    }

    /// A client that sends `input` in pieces of `chunk`, then EOF, and
    /// whose every write succeeds at once.
    struct Script<'a> {
        input: &'a [u8],
        chunk: usize,
        output: Vec<u8>,
    }

    impl AsyncRead for Script<'_> {
        fn poll_read(
            self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            let this = self.get_mut();
            let n = this.input.len().min(this.chunk).min(buf.remaining());
            buf.put_slice(&this.input[..n]);
            this.input = &this.input[n..];
            Poll::Ready(Ok(()))
        }
    }

    impl AsyncWrite for Script<'_> {
        fn poll_write(
            self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            self.get_mut().output.extend_from_slice(buf);
            Poll::Ready(Ok(buf.len()))
        }

        fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }
}
