//! Whatever a client sends, the handshake ends (no panic, no wait past the
//! end of its bytes), however the bytes are split into reads.

#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use relay::fuzz::{handshake, Outcome};
use relay::Credentials;

/// Arbitrary bytes, some starting like SOCKS5 or an HTTP CONNECT.
fn client_bytes() -> impl Strategy<Value = Vec<u8>> {
    let bytes = proptest::collection::vec(any::<u8>(), 0..600);
    prop_oneof![
        bytes.clone(),
        bytes.clone().prop_map(|mut v| {
            v.insert(0, 5);
            v
        }),
        (
            proptest::collection::vec(any::<u8>(), 0..8),
            proptest::collection::vec(any::<u8>(), 0..300)
        )
            .prop_map(|(methods, rest)| {
                let mut v = vec![5, methods.len() as u8];
                v.extend(methods);
                v.extend([5, 1, 0]);
                v.extend(rest);
                v
            }),
        bytes.prop_map(|v| {
            let mut head = b"CONNECT ".to_vec();
            head.extend(v);
            head
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_never_panic_the_handshake(
        input in client_bytes(),
        chunk in 1usize..64,
        auth in any::<bool>(),
    ) {
        let c = Credentials::new("u", "p").unwrap();
        let credentials = auth.then_some(&c);
        let (outcome, out) = handshake(&input, chunk, credentials);
        prop_assert_ne!(&outcome, &Outcome::Pending);
        // The same bytes in one read come to the same end.
        prop_assert_eq!(handshake(&input, usize::MAX, credentials), (outcome.clone(), out.clone()));
        if let (Outcome::Failed(_), Some(&first)) = (&outcome, input.first()) {
            // A refused HTTP client gets a 4xx status line, or nothing (EOF).
            if first != 5 && !out.is_empty() {
                prop_assert!(out.starts_with(b"HTTP/1.1 4"), "{:?}", String::from_utf8_lossy(&out));
            }
        }
        if input.is_empty() {
            prop_assert_eq!(outcome, Outcome::Silent);
        } else if let Outcome::Request { early, .. } = outcome {
            prop_assert!(early < input.len());
        }
    }

    #[test]
    fn bytes_after_a_request_are_kept_for_the_target(
        tail in proptest::collection::vec(any::<u8>(), 0..200),
        chunk in 1usize..64,
    ) {
        let mut socks = vec![5, 1, 0, 5, 1, 0, 3, 11];
        socks.extend_from_slice(b"example.org");
        socks.extend_from_slice(&[1, 187]);
        socks.extend_from_slice(&tail);
        // SOCKS5 reads exact lengths: the tail stays in the socket.
        prop_assert_eq!(
            handshake(&socks, chunk, None).0,
            Outcome::Request { target: "example.org:443".into(), transport: "socks5", early: 0 }
        );
        let mut http = b"CONNECT example.org:443 HTTP/1.1\r\nHost: example.org\r\n\r\n".to_vec();
        http.extend_from_slice(&tail);
        let (outcome, out) = handshake(&http, chunk, None);
        prop_assert!(out.is_empty());
        match outcome {
            Outcome::Request { target, transport, early } => {
                prop_assert_eq!(target, "example.org:443");
                prop_assert_eq!(transport, "http-connect");
                // HTTP reads ahead: what it read past the head is forwarded.
                prop_assert!(early <= tail.len());
            }
            other => prop_assert!(false, "{:?}", other),
        }
    }
}
