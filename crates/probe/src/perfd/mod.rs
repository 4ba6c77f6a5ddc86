//! perfd, the measurement target: `GET /bulk/<bytes>` (deterministic body,
//! CRC-32C in a header), `POST /echo`, a raw TCP echo port, and fault knobs
//! that make it fail in each of the ways the prober classifies.
//!
//! The HTTP/1.1 side is written out over the socket because the faults
//! live below HTTP: a reset needs SO_LINGER 0 on the very socket, a stall
//! needs the connection held open with nothing sent.

mod faults;
mod http;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

pub use faults::Faults;

/// Connections served at once (HTTP and echo together); more are closed.
const MAX_CONNECTIONS: usize = 1024;
/// An idle connection is closed after this long.
const IDLE: Duration = Duration::from_secs(60);

/// Where perfd listens and how it behaves.
#[derive(Debug, Clone)]
pub struct PerfdConfig {
    /// The HTTP (or HTTPS) listener.
    pub listen: SocketAddr,
    /// The raw TCP echo listener, if any.
    pub echo_listen: Option<SocketAddr>,
    /// Certificate chain and private key (PEM files): serve HTTPS.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Faults applied to every `/bulk` request unless its query says otherwise.
    pub faults: Faults,
}

/// Why perfd could not start.
#[derive(Debug, thiserror::Error)]
pub enum PerfdError {
    /// A listener could not be bound.
    #[error("listening on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// The certificate or key could not be used.
    #[error("TLS: {0}")]
    Tls(String),
    /// A default fault makes no sense.
    #[error("faults: {0}")]
    Faults(String),
}

/// Bound listeners, ready to serve.
pub struct Perfd {
    http: TcpListener,
    echo: Option<TcpListener>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    faults: Arc<Faults>,
}

impl std::fmt::Debug for Perfd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Perfd")
            .field("http", &self.http_addr())
            .field("echo", &self.echo_addr())
            .field("tls", &self.tls.is_some())
            .field("faults", &self.faults)
            .finish()
    }
}

impl Perfd {
    /// Binds the listeners (port 0 picks a free one) and loads the TLS files.
    pub async fn bind(config: PerfdConfig) -> Result<Perfd, PerfdError> {
        config.faults.check().map_err(PerfdError::Faults)?;
        let tls = config
            .tls
            .as_ref()
            .map(|(cert, key)| tls_acceptor(cert, key))
            .transpose()?;
        let bind = |addr: SocketAddr| async move {
            TcpListener::bind(addr)
                .await
                .map_err(|source| PerfdError::Bind { addr, source })
        };
        let http = bind(config.listen).await?;
        let echo = match config.echo_listen {
            Some(addr) => Some(bind(addr).await?),
            None => None,
        };
        Ok(Perfd {
            http,
            echo,
            tls,
            faults: Arc::new(config.faults),
        })
    }

    /// The HTTP listener's address.
    pub fn http_addr(&self) -> SocketAddr {
        self.http
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    /// The echo listener's address.
    pub fn echo_addr(&self) -> Option<SocketAddr> {
        self.echo.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// True when the HTTP listener speaks TLS.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Serves until `shutdown` resolves; connections still open then are
    /// dropped.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) {
        let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        let mut conns = JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            let (stream, echo) = tokio::select! {
                _ = &mut shutdown => return,
                Some(_) = conns.join_next(), if !conns.is_empty() => continue,
                r = self.http.accept() => (r, false),
                r = accept(self.echo.as_ref()) => (r, true),
            };
            let stream = match stream {
                Ok((s, _)) => s,
                Err(e) => {
                    // EMFILE and the like: wait rather than spin.
                    tracing::warn!("perfd: accepting a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
                continue; // over the limit: closed at once
            };
            let _ = stream.set_nodelay(true);
            let faults = Arc::clone(&self.faults);
            let tls = self.tls.clone();
            conns.spawn(async move {
                let _permit = permit;
                if echo {
                    echo_tcp(stream).await;
                } else if let Some(tls) = tls {
                    if let Ok(Ok(s)) = tokio::time::timeout(IDLE, tls.accept(stream)).await {
                        http::serve(s, &faults).await;
                    }
                } else {
                    http::serve(stream, &faults).await;
                }
            });
        }
    }
}

async fn accept(listener: Option<&TcpListener>) -> std::io::Result<(TcpStream, SocketAddr)> {
    match listener {
        Some(l) => l.accept().await,
        None => std::future::pending().await,
    }
}

/// The raw echo port: every byte goes back as it came, until the client
/// closes, sends nothing or takes nothing back for [`IDLE`].
async fn echo_tcp(mut stream: TcpStream) {
    let mut buf = vec![0u8; 16 * 1024];
    while let Ok(Ok(n)) = tokio::time::timeout(IDLE, stream.read(&mut buf)).await {
        if n == 0 {
            return;
        }
        let echoed = tokio::time::timeout(IDLE, stream.write_all(&buf[..n])).await;
        if !matches!(echoed, Ok(Ok(()))) {
            return;
        }
    }
}

fn tls_acceptor(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<tokio_rustls::TlsAcceptor, PerfdError> {
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|i| i.collect::<Result<Vec<_>, _>>())
        .map_err(|e| PerfdError::Tls(format!("{}: {e}", cert.display())))?;
    if certs.is_empty() {
        return Err(PerfdError::Tls(format!(
            "{} holds no certificate",
            cert.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| PerfdError::Tls(format!("{}: {e}", key.display())))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| PerfdError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| PerfdError::Tls(e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}
