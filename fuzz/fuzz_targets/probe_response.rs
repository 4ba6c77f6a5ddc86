//! Feeds arbitrary bytes to the prober's readers of what a target sends —
//! an HTTP response (header, chunked or sized body) and echo replies — and
//! to perfd's query-knob parser: none may panic, and a response read whole
//! never reports more body than it holds.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((_, n)) = probe::fuzz::response(data) {
        assert!(n <= data.len() as u64);
    }
    for http in [false, true] {
        let mut pending = data.to_vec();
        while let Ok(Some(_)) = probe::fuzz::echo_reply(&mut pending, 16, 0, http) {}
    }
    let _ = probe::perfd::Faults::from_query(&String::from_utf8_lossy(data));
});
