//! Feeds arbitrary bytes to the rate monitor's control-request parser, as
//! its TCP port would: it must never panic, an accepted request must carry
//! only finite numbers, and a refusal must say something.

#![no_main]

use libfuzzer_sys::fuzz_target;
use ratemon::ControlRequest;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match ControlRequest::parse(text.trim()) {
        Ok(r) => {
            let numbers = [
                r.sample_rate,
                r.estimation_interval,
                r.meter_interval,
                r.link_speed.flatten(),
                r.alarm_trigger,
                r.cutoff,
            ];
            assert!(numbers.iter().flatten().all(|n| n.is_finite()), "{r:?}");
            assert!(!(r.pause && r.resume), "{r:?}");
        }
        Err(message) => assert!(!message.is_empty()),
    }
});
