//! Feeds arbitrary client bytes to the relay's handshake (SOCKS5 greeting,
//! RFC 1929 authentication and request, or an HTTP CONNECT head), split
//! into reads of a size the input chooses, with and without credentials:
//! it must never panic or wait past the end of the bytes, must come to the
//! same end however the bytes are split, and must answer a refused HTTP
//! client with a status line.

#![no_main]

use libfuzzer_sys::fuzz_target;
use relay::fuzz::{handshake, Outcome};
use relay::Credentials;

fuzz_target!(|data: &[u8]| {
    let Some((&control, input)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(control & 0x3f) + 1;
    let known = Credentials::new("user", "password").ok();
    let credentials = known.as_ref().filter(|_| control & 0x40 != 0);
    let (outcome, out) = handshake(input, chunk, credentials);
    assert_ne!(outcome, Outcome::Pending);
    assert_eq!(
        handshake(input, usize::MAX, credentials),
        (outcome.clone(), out.clone())
    );
    if let (Outcome::Failed(_), Some(&first)) = (&outcome, input.first()) {
        if first != 5 && !out.is_empty() {
            assert!(
                out.starts_with(b"HTTP/1.1 4"),
                "{:?}",
                String::from_utf8_lossy(&out)
            );
        }
    }
});
