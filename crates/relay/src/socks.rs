//! The server side of SOCKS5 (RFC 1928) with username/password
//! authentication (RFC 1929): method choice, authentication, the CONNECT
//! request, and the replies. Each message is read with exact lengths, so
//! nothing the client sends after its request is read here.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::dial::{Host, Target};
use crate::handshake::HandshakeError;
use crate::Credentials;

/// The protocol version, and so a SOCKS5 client's first byte.
pub(crate) const VERSION: u8 = 5;
const NO_AUTH: u8 = 0x00;
const USER_PASS: u8 = 0x02;
const NO_ACCEPTABLE: u8 = 0xFF;
/// RFC 1929's subnegotiation version.
const AUTH_VERSION: u8 = 1;
const CONNECT: u8 = 1;
const ATYP_IPV4: u8 = 1;
const ATYP_DOMAIN: u8 = 3;
const ATYP_IPV6: u8 = 4;

/// Reply codes (RFC 1928 §6) sent from here; the dial's come from
/// [`crate::dial::Failure::socks_reply`].
pub(crate) const SUCCEEDED: u8 = 0x00;
const GENERAL_FAILURE: u8 = 0x01;
const COMMAND_NOT_SUPPORTED: u8 = 0x07;
const ADDRESS_TYPE_NOT_SUPPORTED: u8 = 0x08;

async fn read<S: AsyncRead + Unpin>(
    io: &mut S,
    buf: &mut [u8],
    during: &str,
) -> Result<(), HandshakeError> {
    io.read_exact(buf)
        .await
        .map(|_| ())
        .map_err(|e| HandshakeError::io(&e, during))
}

async fn read_u8<S: AsyncRead + Unpin>(io: &mut S, during: &str) -> Result<u8, HandshakeError> {
    let mut b = [0u8; 1];
    read(io, &mut b, during).await?;
    Ok(b[0])
}

/// Sends an answer that precedes a refusal; the refusal is what gets
/// recorded, so a client already gone changes nothing.
async fn answer<S: AsyncWrite + Unpin>(io: &mut S, bytes: &[u8]) {
    let _ = io.write_all(bytes).await;
}

/// Negotiates after the version byte: a method, credentials if the relay
/// wants them, then a CONNECT request, whose target is returned. Failures
/// are answered (method 0xFF, authentication status 1, or a reply code)
/// before they are returned.
pub(crate) async fn negotiate<S>(
    io: &mut S,
    credentials: Option<&Credentials>,
) -> Result<Target, HandshakeError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let n = read_u8(io, "SOCKS5 greeting").await?;
    let mut methods = vec![0u8; usize::from(n)];
    read(io, &mut methods, "SOCKS5 greeting").await?;
    let wanted = if credentials.is_some() {
        USER_PASS
    } else {
        NO_AUTH
    };
    if !methods.contains(&wanted) {
        answer(io, &[VERSION, NO_ACCEPTABLE]).await;
        return Err(HandshakeError::auth(if credentials.is_some() {
            "the client did not offer username/password authentication"
        } else {
            "the client did not offer to go without authentication"
        }));
    }
    io.write_all(&[VERSION, wanted])
        .await
        .map_err(|e| HandshakeError::io(&e, "SOCKS5 method choice"))?;
    if let Some(c) = credentials {
        authenticate(io, c).await?;
    }
    request(io).await
}

/// RFC 1929: VER 1, ULEN, UNAME, PLEN, PASSWD; answered 1, 0 (success) or
/// 1, 1 (failure, and the connection closes).
async fn authenticate<S>(io: &mut S, credentials: &Credentials) -> Result<(), HandshakeError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    const DURING: &str = "SOCKS5 authentication";
    let version = read_u8(io, DURING).await?;
    if version != AUTH_VERSION {
        answer(io, &[AUTH_VERSION, 1]).await;
        return Err(HandshakeError::protocol(format!(
            "authentication version {version} (not 1)"
        )));
    }
    let mut user = vec![0u8; usize::from(read_u8(io, DURING).await?)];
    read(io, &mut user, DURING).await?;
    let mut password = vec![0u8; usize::from(read_u8(io, DURING).await?)];
    read(io, &mut password, DURING).await?;
    if !credentials.matches(&user, &password) {
        answer(io, &[AUTH_VERSION, 1]).await;
        return Err(HandshakeError::auth("wrong username or password"));
    }
    io.write_all(&[AUTH_VERSION, 0])
        .await
        .map_err(|e| HandshakeError::io(&e, DURING))
}

/// VER, CMD, RSV, ATYP, DST.ADDR, DST.PORT: only CONNECT is served.
async fn request<S>(io: &mut S) -> Result<Target, HandshakeError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    const DURING: &str = "SOCKS5 request";
    let mut head = [0u8; 4];
    read(io, &mut head, DURING).await?;
    let [version, command, _reserved, atyp] = head;
    if version != VERSION {
        answer(io, &reply(GENERAL_FAILURE, None)).await;
        return Err(HandshakeError::protocol(format!(
            "request version {version} (not 5)"
        )));
    }
    if command != CONNECT {
        answer(io, &reply(COMMAND_NOT_SUPPORTED, None)).await;
        return Err(HandshakeError::unsupported(format!(
            "command {command} (only CONNECT, 1, is served)"
        )));
    }
    let host = match atyp {
        ATYP_IPV4 => {
            let mut a = [0u8; 4];
            read(io, &mut a, DURING).await?;
            Host::Ip(IpAddr::from(a))
        }
        ATYP_IPV6 => {
            let mut a = [0u8; 16];
            read(io, &mut a, DURING).await?;
            Host::Ip(IpAddr::from(a))
        }
        ATYP_DOMAIN => {
            let mut name = vec![0u8; usize::from(read_u8(io, DURING).await?)];
            read(io, &mut name, DURING).await?;
            // Read the port too, so that a refusal comes after the whole request.
            let mut port = [0u8; 2];
            read(io, &mut port, DURING).await?;
            let host = std::str::from_utf8(&name).ok().and_then(Host::parse);
            let Some(host) = host else {
                answer(io, &reply(GENERAL_FAILURE, None)).await;
                return Err(HandshakeError::protocol(format!(
                    "not a host name: {:?}",
                    String::from_utf8_lossy(&name)
                )));
            };
            return Ok(Target {
                host,
                port: u16::from_be_bytes(port),
            });
        }
        other => {
            answer(io, &reply(ADDRESS_TYPE_NOT_SUPPORTED, None)).await;
            return Err(HandshakeError::unsupported(format!("address type {other}")));
        }
    };
    let mut port = [0u8; 2];
    read(io, &mut port, DURING).await?;
    Ok(Target {
        host,
        port: u16::from_be_bytes(port),
    })
}

/// A reply: VER, REP, RSV, ATYP, BND.ADDR, BND.PORT; `bound` absent is
/// 0.0.0.0:0.
pub(crate) fn reply(code: u8, bound: Option<SocketAddr>) -> Vec<u8> {
    let bound = bound.unwrap_or_else(|| SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)));
    let mut out = vec![VERSION, code, 0];
    match bound.ip() {
        IpAddr::V4(a) => {
            out.push(ATYP_IPV4);
            out.extend_from_slice(&a.octets());
        }
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => {
                out.push(ATYP_IPV4);
                out.extend_from_slice(&v4.octets());
            }
            None => {
                out.push(ATYP_IPV6);
                out.extend_from_slice(&Ipv6Addr::octets(&a));
            }
        },
    }
    out.extend_from_slice(&bound.port().to_be_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fuzz::{handshake, Outcome};

    fn run(input: &[u8]) -> (Outcome, Vec<u8>) {
        let whole = handshake(input, usize::MAX, None);
        // Byte by byte, the same.
        assert_eq!(handshake(input, 1, None), whole, "{input:?}");
        whole
    }

    fn ok(target: &str) -> Outcome {
        Outcome::Request {
            target: target.into(),
            transport: "socks5",
            early: 0,
        }
    }

    #[test]
    fn connect_by_ipv4_ipv6_and_name() {
        let (o, out) = run(&[5, 1, 0, 5, 1, 0, 1, 127, 0, 0, 1, 0x1f, 0x90]);
        assert_eq!(o, ok("127.0.0.1:8080"));
        assert_eq!(out, [5, 0], "no reply until the dial is done");
        let mut v6 = vec![5, 2, 2, 0, 5, 1, 0, 4];
        v6.extend_from_slice(&"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets());
        v6.extend_from_slice(&[1, 187]);
        assert_eq!(run(&v6).0, ok("[2001:db8::1]:443"));
        let mut name = vec![5, 1, 0, 5, 1, 0, 3, 11];
        name.extend_from_slice(b"example.org");
        name.extend_from_slice(&[0, 80]);
        assert_eq!(run(&name).0, ok("example.org:80"));
    }

    #[test]
    fn a_truncated_greeting_or_request_is_eof() {
        for input in [
            &[5][..],
            &[5, 2, 0],
            &[5, 1, 0, 5, 1, 0],
            &[5, 1, 0, 5, 1, 0, 1, 127, 0],
            &[5, 1, 0, 5, 1, 0, 3, 9, b'a'],
            &[5, 1, 0, 5, 1, 0, 1, 127, 0, 0, 1, 0],
        ] {
            assert_eq!(run(input).0, Outcome::Failed("eof"), "{input:?}");
        }
    }

    #[test]
    fn a_wrong_version_in_the_request_is_a_protocol_error() {
        let (o, out) = run(&[5, 1, 0, 4, 1, 0, 1, 127, 0, 0, 1, 0, 80]);
        assert_eq!(o, Outcome::Failed("protocol"));
        assert_eq!(out, [5, 0, 5, GENERAL_FAILURE, 0, 1, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn unknown_commands_and_address_types_get_their_reply_codes() {
        let (o, out) = run(&[5, 1, 0, 5, 2, 0, 1, 127, 0, 0, 1, 0, 80]);
        assert_eq!(o, Outcome::Failed("unsupported"));
        assert_eq!(out[2..4], [5, 0x07]);
        let (o, out) = run(&[5, 1, 0, 5, 1, 0, 9, 1, 2, 3]);
        assert_eq!(o, Outcome::Failed("unsupported"));
        assert_eq!(out[2..4], [5, 0x08]);
        let (o, out) = run(&[5, 1, 0, 5, 1, 0, 3, 3, b'a', b' ', b'b', 0, 80]);
        assert_eq!(o, Outcome::Failed("protocol"));
        assert_eq!(out[2..4], [5, 0x01]);
        let (o, _) = run(&[5, 1, 0, 5, 1, 0, 3, 0, 0, 80]);
        assert_eq!(o, Outcome::Failed("protocol"), "an empty name");
    }

    #[test]
    fn no_acceptable_method_is_answered_0xff() {
        let (o, out) = run(&[5, 1, 2]);
        assert_eq!(o, Outcome::Failed("auth"));
        assert_eq!(out, [5, 0xFF]);
        let (o, out) = run(&[5, 0]);
        assert_eq!(o, Outcome::Failed("auth"));
        assert_eq!(out, [5, 0xFF]);
    }

    #[test]
    fn username_and_password() {
        let c = Credentials::new("alice", "s3cret").unwrap();
        let with = |input: &[u8]| handshake(input, 3, Some(&c));
        // No-auth alone is refused once the relay has credentials.
        assert_eq!(with(&[5, 1, 0]), (Outcome::Failed("auth"), vec![5, 0xFF]));
        let mut good = vec![5, 2, 0, 2, 1, 5];
        good.extend_from_slice(b"alice");
        good.push(6);
        good.extend_from_slice(b"s3cret");
        good.extend_from_slice(&[5, 1, 0, 1, 10, 0, 0, 1, 0, 22]);
        let (o, out) = with(&good);
        assert_eq!(o, ok("10.0.0.1:22"));
        assert_eq!(out, [5, 2, 1, 0]);
        let mut bad = vec![5, 1, 2, 1, 5];
        bad.extend_from_slice(b"alice");
        bad.push(6);
        bad.extend_from_slice(b"s3creT");
        assert_eq!(with(&bad), (Outcome::Failed("auth"), vec![5, 2, 1, 1]));
        let (o, out) = with(&[5, 1, 2, 5, 5]);
        assert_eq!(o, Outcome::Failed("protocol"), "subnegotiation version 5");
        assert_eq!(out, [5, 2, 1, 1]);
        assert_eq!(with(&[5, 1, 2, 1, 5, b'a']).0, Outcome::Failed("eof"));
    }

    #[test]
    fn replies_carry_the_bound_address() {
        assert_eq!(
            reply(0, Some("10.1.2.3:1080".parse().unwrap())),
            [5, 0, 0, 1, 10, 1, 2, 3, 0x04, 0x38]
        );
        let v6 = reply(0, Some("[2001:db8::2]:80".parse().unwrap()));
        assert_eq!((v6[3], v6.len()), (4, 22));
        let mapped = reply(0, Some("[::ffff:10.0.0.1]:80".parse().unwrap()));
        assert_eq!(mapped, [5, 0, 0, 1, 10, 0, 0, 1, 0, 80]);
        assert_eq!(reply(5, None), [5, 5, 0, 1, 0, 0, 0, 0, 0, 0]);
    }
}
