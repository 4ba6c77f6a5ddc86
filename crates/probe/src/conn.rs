//! Reaching a target: name lookup, TCP connect (to the proxy when there is
//! one), SOCKS5 CONNECT, TLS — each step timed and each failure classified.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::failure::{Failure, FailureClass, Phase};
use crate::target::{Reach, Scheme, Target};
use crate::timings::{micros, Timestamps};

/// A byte stream to the target, plain or TLS.
pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// What a measurement knows while it runs: where it is, and when each step
/// happened. Kept outside the measurement's future so that a TIMEOUT still
/// reports the phase and the bytes.
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) start: Instant,
    pub(crate) phase: Phase,
    pub(crate) times: Timestamps,
    pub(crate) bytes: u64,
    /// The response's status, once its header is in.
    pub(crate) status: Option<u16>,
    /// The body's expected length: Content-Length, else what was asked for.
    pub(crate) expected: Option<u64>,
}

impl State {
    pub(crate) fn new() -> State {
        State {
            start: Instant::now(),
            phase: Phase::Dns,
            times: Timestamps::default(),
            bytes: 0,
            status: None,
            expected: None,
        }
    }

    pub(crate) fn now_us(&self) -> u64 {
        micros(self.start, Instant::now())
    }
}

/// Opens the connection to `target` as `reach` says, recording dns,
/// connect, socks and tls times in `state`.
pub(crate) async fn open(
    target: &Target,
    reach: &Reach,
    state: &mut State,
) -> Result<Box<dyn Io>, Failure> {
    state.phase = Phase::Dns;
    let (host, port) = match &reach.socks5 {
        Some(p) => (p.host.as_str(), p.port),
        None => (target.host.as_str(), target.port),
    };
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| Failure::new(FailureClass::Dns, Phase::Dns, format!("{host}: {e}")))?
        .collect();
    if addrs.is_empty() {
        return Err(Failure::new(
            FailureClass::Dns,
            Phase::Dns,
            format!("{host} has no address"),
        ));
    }
    state.times.dns = Some(state.now_us());

    state.phase = Phase::Connect;
    let mut last = None;
    let mut stream = None;
    for addr in &addrs {
        match TcpStream::connect(addr).await {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = Some(format!("{addr}: {e}")),
        }
    }
    let Some(mut stream) = stream else {
        let class = if reach.socks5.is_some() {
            FailureClass::ProxyConnect
        } else {
            FailureClass::Connect
        };
        return Err(Failure::new(
            class,
            Phase::Connect,
            last.unwrap_or_default(),
        ));
    };
    state.times.connect = Some(state.now_us());
    // Small requests and echoes must leave at once.
    let _ = stream.set_nodelay(true);

    if let Some(proxy) = &reach.socks5 {
        state.phase = Phase::Socks;
        let handshake = crate::socks::connect(
            &mut stream,
            &target.host,
            target.port,
            proxy.credentials.as_ref(),
            state.start,
            &mut state.times,
        );
        tokio::time::timeout(reach.stallout, handshake)
            .await
            .map_err(|_| Failure::stallout(Phase::Socks, reach.stallout))??;
    }

    if target.scheme != Scheme::Https {
        return Ok(Box::new(stream));
    }
    state.phase = Phase::Tls;
    let config = tls_config(reach.ca_file.as_deref())?;
    let name = ServerName::try_from(target.host.clone()).map_err(|e| {
        Failure::new(
            FailureClass::Tls,
            Phase::Tls,
            format!("{}: {e}", target.host),
        )
    })?;
    let handshake = tokio_rustls::TlsConnector::from(config).connect(name, stream);
    let tls = tokio::time::timeout(reach.stallout, handshake)
        .await
        .map_err(|_| Failure::stallout(Phase::Tls, reach.stallout))?
        .map_err(|e| Failure::new(FailureClass::Tls, Phase::Tls, e.to_string()))?;
    state.times.tls = Some(state.now_us());
    Ok(Box::new(tls))
}

/// The TLS client settings: the bundled web roots, or the CAs of a PEM file.
fn tls_config(ca_file: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, Failure> {
    static WEB_ROOTS: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    let internal = |detail: String| Failure::new(FailureClass::Internal, Phase::Tls, detail);
    let build = |roots: rustls::RootCertStore| -> Result<Arc<rustls::ClientConfig>, Failure> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| internal(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    };
    let Some(path) = ca_file else {
        if let Some(c) = WEB_ROOTS.get() {
            return Ok(Arc::clone(c));
        }
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        let config = build(roots)?;
        return Ok(Arc::clone(WEB_ROOTS.get_or_init(|| config)));
    };
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| internal(format!("CA file {}: {e}", path.display())))?;
    for cert in certs {
        let cert = cert.map_err(|e| internal(format!("CA file {}: {e}", path.display())))?;
        roots
            .add(cert)
            .map_err(|e| internal(format!("CA file {}: {e}", path.display())))?;
    }
    if roots.is_empty() {
        return Err(internal(format!(
            "CA file {} holds no certificate",
            path.display()
        )));
    }
    build(roots)
}
