//! Echo rounds: N small request/echo pairs, one after the other, over one
//! established connection (raw TCP or HTTP keep-alive `POST /echo`). Each
//! pair's round-trip time is kept; a pair without its reply in time is lost.

use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;

use crate::conn::{self, State};
use crate::download::{read_some, unix_ns_now};
use crate::failure::{Failure, FailureClass, Phase};
use crate::target::{Reach, Scheme, Target};
use crate::timings::{micros, Timestamps};

/// The smallest echo payload: sequence number and round nonce.
pub const MIN_ECHO_SIZE: usize = 16;

/// How a round exchanges its pairs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EchoPlan {
    /// Pairs per round (DESIGN: at least 3, default 20).
    pub count: u32,
    /// Bytes per request (at least [`MIN_ECHO_SIZE`]).
    pub size: usize,
    /// A pair whose reply takes longer is lost.
    pub reply_timeout: Duration,
}

impl Default for EchoPlan {
    fn default() -> Self {
        EchoPlan {
            count: 20,
            size: 64,
            reply_timeout: Duration::from_secs(2),
        }
    }
}

/// One request/echo pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EchoSample {
    /// Its place in the round, from 0.
    pub seq: u32,
    /// When the request left, ns since the Unix epoch.
    pub sent_unix_ns: i64,
    /// Round-trip time; `None` when the reply was lost.
    pub rtt_us: Option<u64>,
}

/// The result of one echo round.
#[derive(Debug, Clone)]
pub struct EchoResult {
    /// The URL measured.
    pub url: String,
    /// `tcp` or `http`.
    pub transport: &'static str,
    /// When the round started, ns since the Unix epoch.
    pub start_unix_ns: i64,
    /// Connection set-up times (dns, connect, socks, tls).
    pub times: Timestamps,
    /// Every pair sent, in order.
    pub samples: Vec<EchoSample>,
    /// Why the round ended early; pairs not sent are not in `samples`.
    pub failure: Option<Failure>,
}

impl EchoResult {
    /// Pairs whose reply did not arrive in time.
    pub fn lost(&self) -> usize {
        self.samples.iter().filter(|s| s.rtt_us.is_none()).count()
    }
}

/// Runs one echo round against `target` (`tcp://` or an HTTP `/echo` URL).
pub async fn echo(target: &Target, reach: &Reach, plan: EchoPlan) -> EchoResult {
    let start_unix_ns = unix_ns_now();
    let mut state = State::new();
    let mut samples = Vec::with_capacity(plan.count as usize);
    let failure = match tokio::time::timeout(
        reach.timeout,
        run(target, reach, plan, &mut state, &mut samples),
    )
    .await
    {
        Ok(Ok(())) => None,
        Ok(Err(f)) => Some(f),
        Err(_) => Some(Failure::timeout(state.phase, reach.timeout)),
    };
    EchoResult {
        url: target.url.clone(),
        transport: if target.scheme == Scheme::Tcp {
            "tcp"
        } else {
            "http"
        },
        start_unix_ns,
        times: state.times,
        samples,
        failure,
    }
}

async fn run(
    target: &Target,
    reach: &Reach,
    plan: EchoPlan,
    state: &mut State,
    samples: &mut Vec<EchoSample>,
) -> Result<(), Failure> {
    let mut io = conn::open(target, reach, state).await?;
    state.phase = Phase::Echo;
    let nonce: u64 = rand::random();
    let size = plan.size.max(MIN_ECHO_SIZE);
    let mut payload = vec![b'x'; size];
    payload[8..16].copy_from_slice(&nonce.to_be_bytes());
    let http_head = (target.scheme != Scheme::Tcp).then(|| {
        format!(
            "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/octet-stream\r\nContent-Length: {size}\r\n\r\n",
            target.path,
            target.host_header()
        )
    });
    let mut pending: Vec<u8> = Vec::with_capacity(4096);
    let mut buf = vec![0u8; 16 * 1024];
    for seq in 0..plan.count {
        payload[..8].copy_from_slice(&u64::from(seq).to_be_bytes());
        let mut message = Vec::with_capacity(size + 256);
        if let Some(head) = &http_head {
            message.extend_from_slice(head.as_bytes());
        }
        message.extend_from_slice(&payload);
        let sent = Instant::now();
        samples.push(EchoSample {
            seq,
            sent_unix_ns: unix_ns_now(),
            rtt_us: None,
        });
        io.write_all(&message)
            .await
            .map_err(|e| Failure::io(&e, Phase::Echo, false))?;
        let deadline = sent + plan.reply_timeout;
        // Replies to earlier, lost pairs may still come: skip them.
        loop {
            let reply = match take_reply(&mut pending, size, nonce, http_head.is_some())? {
                Some(r) => r,
                None => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    match read_some(&mut io, &mut buf, left, Phase::Echo).await {
                        Ok(0) => {
                            return Err(Failure::new(
                                FailureClass::Eof,
                                Phase::Echo,
                                "the target closed the connection",
                            ))
                        }
                        Ok(n) => {
                            pending.extend_from_slice(&buf[..n]);
                            continue;
                        }
                        Err(f) if f.class == FailureClass::Stallout => break,
                        Err(f) => return Err(f),
                    }
                }
            };
            if reply == u64::from(seq) {
                if let Some(s) = samples.last_mut() {
                    s.rtt_us = Some(micros(sent, Instant::now()));
                }
                break;
            }
            if reply > u64::from(seq) {
                return Err(Failure::new(
                    FailureClass::Read,
                    Phase::Echo,
                    format!("a reply to request {reply} came before request {seq}'s"),
                ));
            }
        }
    }
    let _ = io.shutdown().await;
    Ok(())
}

/// Takes one complete reply off the front of `pending`, returning its
/// sequence number; `None` until one is complete.
pub(crate) fn take_reply(
    pending: &mut Vec<u8>,
    size: usize,
    nonce: u64,
    http: bool,
) -> Result<Option<u64>, Failure> {
    let bad = |detail: String| Failure::new(FailureClass::Read, Phase::Echo, detail);
    if size < MIN_ECHO_SIZE {
        return Err(bad(format!(
            "echo requests have at least {MIN_ECHO_SIZE} bytes"
        )));
    }
    let (skip, body_len) = if http {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut response = httparse::Response::new(&mut headers);
        let head_len = match response.parse(pending) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(e) => return Err(bad(format!("malformed echo response: {e}"))),
        };
        let status = response.code.unwrap_or(0);
        if status != 200 {
            return Err(Failure::new(
                FailureClass::Http(status),
                Phase::Echo,
                format!("the echo answered status {status}"),
            ));
        }
        let len = response
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case("content-length"))
            .and_then(|h| {
                std::str::from_utf8(h.value)
                    .ok()?
                    .trim()
                    .parse::<usize>()
                    .ok()
            })
            .ok_or_else(|| bad("the echo response has no Content-Length".into()))?;
        (head_len, len)
    } else {
        (0, size)
    };
    if body_len != size {
        return Err(bad(format!(
            "an echo reply of {body_len} bytes to a request of {size}"
        )));
    }
    if pending.len() < skip + body_len {
        return Ok(None);
    }
    let body = &pending[skip..skip + body_len];
    let mut word = [0u8; 8];
    word.copy_from_slice(&body[8..16]);
    if u64::from_be_bytes(word) != nonce {
        return Err(bad("an echo reply does not carry the round's nonce".into()));
    }
    word.copy_from_slice(&body[..8]);
    let seq = u64::from_be_bytes(word);
    pending.drain(..skip + body_len);
    Ok(Some(seq))
}
