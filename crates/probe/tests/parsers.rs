//! The parsers that read what a peer sent — HTTP responses, echo replies,
//! perfd's query knobs, target URLs — never panic, and read valid input
//! exactly, however it is split.

#![allow(clippy::unwrap_used)]

use probe::perfd::Faults;
use probe::{fuzz, FailureClass, Target};
use proptest::prelude::*;

/// `body` as a chunked response with chunks of the given sizes.
fn chunked(body: &[u8], sizes: &[usize]) -> Vec<u8> {
    let mut out = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    let mut rest = body;
    let mut i = 0;
    while !rest.is_empty() {
        let n = sizes[i % sizes.len()].clamp(1, rest.len());
        out.extend_from_slice(format!("{n:x}\r\n").as_bytes());
        out.extend_from_slice(&rest[..n]);
        out.extend_from_slice(b"\r\n");
        rest = &rest[n..];
        i += 1;
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

proptest! {
    #[test]
    fn any_bytes_as_a_response_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = fuzz::response(&bytes);
        let mut pending = bytes.clone();
        let _ = fuzz::echo_reply(&mut pending, 16, 7, true);
        let mut pending = bytes;
        let _ = fuzz::echo_reply(&mut pending, 16, 7, false);
    }

    #[test]
    fn chunked_bodies_decode_to_their_length(
        body in proptest::collection::vec(any::<u8>(), 0..2000),
        sizes in proptest::collection::vec(1usize..300, 1..8),
    ) {
        let response = chunked(&body, &sizes);
        prop_assert_eq!(fuzz::response(&response).unwrap(), (200, body.len() as u64));
        // Cut anywhere before the last chunk: the body is short.
        let cut = &response[..response.len() - 3];
        prop_assert_eq!(fuzz::response(cut).unwrap_err().class, FailureClass::Short);
    }

    #[test]
    fn content_length_bodies_short_or_whole(len in 0u64..5000, got in 0u64..5000) {
        let mut response = format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\n\r\n").into_bytes();
        response.resize(response.len() + got as usize, b'x');
        match fuzz::response(&response) {
            Ok((200, n)) => prop_assert!(got >= len && n == len),
            Err(f) => prop_assert!(got < len && f.class == FailureClass::Short),
            Ok(other) => prop_assert!(false, "{:?}", other),
        }
    }

    #[test]
    fn queries_and_urls_never_panic(text in ".{0,200}") {
        let _ = Faults::from_query(&text);
        let _ = Target::parse(&text);
        let _ = probe::Socks5::parse(&text);
    }
}

#[test]
fn echo_replies_are_matched_by_sequence_and_nonce() {
    let mut reply = Vec::new();
    reply.extend_from_slice(&3u64.to_be_bytes());
    reply.extend_from_slice(&7u64.to_be_bytes());
    let mut pending = reply[..10].to_vec();
    assert_eq!(fuzz::echo_reply(&mut pending, 16, 7, false).unwrap(), None);
    pending.extend_from_slice(&reply[10..]);
    assert_eq!(
        fuzz::echo_reply(&mut pending, 16, 7, false).unwrap(),
        Some(3)
    );
    assert!(pending.is_empty());
    let mut wrong = reply.clone();
    assert!(fuzz::echo_reply(&mut wrong, 16, 8, false).is_err());
    let mut http = b"HTTP/1.1 200 OK\r\nContent-Length: 16\r\n\r\n".to_vec();
    http.extend_from_slice(&reply);
    assert_eq!(fuzz::echo_reply(&mut http, 16, 7, true).unwrap(), Some(3));
    let mut busy = b"HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n".to_vec();
    assert_eq!(
        fuzz::echo_reply(&mut busy, 16, 7, true).unwrap_err().class,
        FailureClass::Http(503)
    );
}
