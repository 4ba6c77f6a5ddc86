//! The client side of a SOCKS5 CONNECT (RFC 1928, RFC 1929), written out so
//! that the moment the proxy chose a method and the moment it answered the
//! CONNECT are both timed, and its reply code becomes the failure class.

use std::net::IpAddr;
use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::failure::{Failure, FailureClass, Phase};
use crate::timings::{micros, Timestamps};

fn protocol(detail: impl Into<String>) -> Failure {
    Failure::new(FailureClass::ProxyProtocol, Phase::Socks, detail)
}

fn io_failure(e: std::io::Error) -> Failure {
    match e.kind() {
        std::io::ErrorKind::UnexpectedEof => protocol("the proxy closed the connection"),
        _ => Failure::io(&e, Phase::Socks, true),
    }
}

/// Asks the proxy on `stream` to connect to `host:port`; names go to the
/// proxy unresolved (remote DNS). The method and reply times go into
/// `times` (µs since `start`) as soon as they are known, failure or not.
pub(crate) async fn connect(
    stream: &mut TcpStream,
    host: &str,
    port: u16,
    credentials: Option<&(String, String)>,
    start: Instant,
    times: &mut Timestamps,
) -> Result<(), Failure> {
    let greeting: &[u8] = if credentials.is_some() {
        &[5, 2, 0, 2]
    } else {
        &[5, 1, 0]
    };
    stream.write_all(greeting).await.map_err(io_failure)?;
    let mut choice = [0u8; 2];
    stream.read_exact(&mut choice).await.map_err(io_failure)?;
    times.socks_method = Some(micros(start, Instant::now()));
    if choice[0] != 5 {
        return Err(protocol(format!(
            "the proxy answered version {} (not SOCKS5)",
            choice[0]
        )));
    }
    match (choice[1], credentials) {
        (0, _) => {}
        (2, Some((user, pass))) => authenticate(stream, user, pass).await?,
        (0xFF, _) => return Err(protocol("the proxy accepts none of the offered methods")),
        (m, _) => {
            return Err(protocol(format!(
                "the proxy chose method {m}, which was not offered"
            )))
        }
    }
    let mut request = vec![5, 1, 0];
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V4(a)) => {
            request.push(1);
            request.extend_from_slice(&a.octets());
        }
        Ok(IpAddr::V6(a)) => {
            request.push(4);
            request.extend_from_slice(&a.octets());
        }
        Err(_) => {
            let name = u8::try_from(host.len())
                .map_err(|_| protocol("the host name is longer than 255 bytes"))?;
            request.push(3);
            request.push(name);
            request.extend_from_slice(host.as_bytes());
        }
    }
    request.extend_from_slice(&port.to_be_bytes());
    stream.write_all(&request).await.map_err(io_failure)?;
    let mut head = [0u8; 4];
    stream.read_exact(&mut head).await.map_err(io_failure)?;
    times.socks_reply = Some(micros(start, Instant::now()));
    if head[0] != 5 {
        return Err(protocol(format!(
            "the CONNECT reply has version {}",
            head[0]
        )));
    }
    if head[1] != 0 {
        return Err(Failure::new(
            FailureClass::SocksReply(head[1]),
            Phase::Socks,
            format!("the proxy answered CONNECT with {}", reply_text(head[1])),
        ));
    }
    let rest = match head[3] {
        1 => 4 + 2,
        4 => 16 + 2,
        3 => {
            let mut len = [0u8; 1];
            stream.read_exact(&mut len).await.map_err(io_failure)?;
            usize::from(len[0]) + 2
        }
        t => return Err(protocol(format!("the CONNECT reply has address type {t}"))),
    };
    let mut bound = [0u8; 257];
    stream
        .read_exact(&mut bound[..rest])
        .await
        .map_err(io_failure)?;
    Ok(())
}

async fn authenticate(stream: &mut TcpStream, user: &str, pass: &str) -> Result<(), Failure> {
    let (Ok(ulen), Ok(plen)) = (u8::try_from(user.len()), u8::try_from(pass.len())) else {
        return Err(protocol(
            "username and password must be at most 255 bytes each",
        ));
    };
    let mut msg = vec![1, ulen];
    msg.extend_from_slice(user.as_bytes());
    msg.push(plen);
    msg.extend_from_slice(pass.as_bytes());
    stream.write_all(&msg).await.map_err(io_failure)?;
    let mut status = [0u8; 2];
    stream.read_exact(&mut status).await.map_err(io_failure)?;
    if status[1] != 0 {
        return Err(protocol(format!(
            "the proxy refused the username and password (status {})",
            status[1]
        )));
    }
    Ok(())
}

/// RFC 1928's words for a reply code.
fn reply_text(code: u8) -> String {
    let text = match code {
        1 => "general SOCKS server failure",
        2 => "connection not allowed by ruleset",
        3 => "network unreachable",
        4 => "host unreachable",
        5 => "connection refused",
        6 => "TTL expired",
        7 => "command not supported",
        8 => "address type not supported",
        _ => "an unassigned code",
    };
    format!("{code} ({text})")
}
