//! Real targets on loopback for the probe's tests: perfd on an ephemeral
//! port, a SOCKS5 server that forwards or answers a chosen reply code, and
//! certificates made on the spot.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use probe::perfd::{Faults, Perfd, PerfdConfig};
use probe::Reach;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A perfd on loopback with an echo port; serves until the test's runtime ends.
pub async fn perfd(tls: Option<(PathBuf, PathBuf)>) -> (SocketAddr, SocketAddr) {
    let p = Perfd::bind(PerfdConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        echo_listen: Some("127.0.0.1:0".parse().unwrap()),
        tls,
        faults: Faults::default(),
    })
    .await
    .unwrap();
    let addrs = (p.http_addr(), p.echo_addr().unwrap());
    tokio::spawn(p.serve(std::future::pending()));
    addrs
}

/// Limits short enough for tests.
pub fn quick() -> Reach {
    Reach {
        timeout: Duration::from_secs(20),
        stallout: Duration::from_secs(10),
        ..Reach::default()
    }
}

/// A port nothing listens on.
pub async fn closed_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap()
}

/// What the test SOCKS5 server does after the greeting.
#[derive(Debug, Clone)]
pub enum Socks {
    /// Connects where asked (names resolved here) and relays.
    Forward,
    /// Like `Forward`, but only with this username and password.
    ForwardWithAuth(String, String),
    /// Answers the CONNECT with this reply code and closes.
    Reply(u8),
    /// Accepts no offered method.
    NoMethod,
    /// Reads the greeting and never answers.
    Silent,
}

/// A SOCKS5 server on loopback, serving every connection as `mode` says.
pub async fn socks5(mode: Socks) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((s, _)) = l.accept().await else { return };
            let mode = mode.clone();
            tokio::spawn(async move {
                let _ = socks_conn(s, mode).await;
            });
        }
    });
    addr
}

async fn socks_conn(mut s: TcpStream, mode: Socks) -> std::io::Result<()> {
    let mut head = [0u8; 2];
    s.read_exact(&mut head).await?;
    let mut methods = vec![0u8; usize::from(head[1])];
    s.read_exact(&mut methods).await?;
    match &mode {
        Socks::Silent => {
            tokio::time::sleep(Duration::from_secs(60)).await;
            return Ok(());
        }
        Socks::NoMethod => {
            s.write_all(&[5, 0xFF]).await?;
            return Ok(());
        }
        Socks::ForwardWithAuth(user, pass) => {
            assert!(methods.contains(&2), "the client offers username/password");
            s.write_all(&[5, 2]).await?;
            let mut v = [0u8; 2];
            s.read_exact(&mut v).await?;
            let mut u = vec![0u8; usize::from(v[1])];
            s.read_exact(&mut u).await?;
            let mut plen = [0u8; 1];
            s.read_exact(&mut plen).await?;
            let mut p = vec![0u8; usize::from(plen[0])];
            s.read_exact(&mut p).await?;
            let good = u == user.as_bytes() && p == pass.as_bytes();
            s.write_all(&[1, if good { 0 } else { 1 }]).await?;
            if !good {
                return Ok(());
            }
        }
        _ => s.write_all(&[5, 0]).await?,
    }
    let mut req = [0u8; 4];
    s.read_exact(&mut req).await?;
    let host = match req[3] {
        1 => {
            let mut a = [0u8; 4];
            s.read_exact(&mut a).await?;
            std::net::Ipv4Addr::from(a).to_string()
        }
        3 => {
            let mut len = [0u8; 1];
            s.read_exact(&mut len).await?;
            let mut name = vec![0u8; usize::from(len[0])];
            s.read_exact(&mut name).await?;
            String::from_utf8(name).unwrap()
        }
        t => panic!("address type {t}"),
    };
    let mut port = [0u8; 2];
    s.read_exact(&mut port).await?;
    let port = u16::from_be_bytes(port);
    let reply = |code: u8| [5, code, 0, 1, 127, 0, 0, 1, 0, 0];
    if let Socks::Reply(code) = mode {
        s.write_all(&reply(code)).await?;
        return Ok(());
    }
    let Ok(mut upstream) = TcpStream::connect((host.as_str(), port)).await else {
        s.write_all(&reply(5)).await?;
        return Ok(());
    };
    s.write_all(&reply(0)).await?;
    tokio::io::copy_bidirectional(&mut s, &mut upstream).await?;
    Ok(())
}

/// A CA and a certificate it signed for `localhost` and 127.0.0.1, as PEM
/// files: (CA, certificate, key).
pub fn certificates(dir: &std::path::Path, name: &str) -> (PathBuf, PathBuf, PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&key, &ca, &ca_key)
        .unwrap();
    let paths = (
        dir.join(format!("{name}-ca.pem")),
        dir.join(format!("{name}-cert.pem")),
        dir.join(format!("{name}-key.pem")),
    );
    std::fs::write(&paths.0, ca.pem()).unwrap();
    std::fs::write(&paths.1, cert.pem()).unwrap();
    std::fs::write(&paths.2, key.serialize_pem()).unwrap();
    paths
}
