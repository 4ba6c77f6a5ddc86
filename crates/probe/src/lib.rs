//! weir's active measurements, OnionPerf style.
//!
//! - [`download`]: one timed HTTP(S) download, direct or through SOCKS5,
//!   with DESIGN's timestamps (dns, connect, socks, tls, request, header,
//!   first byte, each 10 %, the 50 KiB … 5 MiB milestones, last byte), the
//!   figures derived from them, and the failure taxonomy ([`FailureClass`],
//!   [`Phase`]).
//! - [`echo`]: a round of request/echo pairs over one connection (raw TCP or
//!   HTTP keep-alive), each RTT kept, losses counted.
//! - [`Job`] / [`Prober`]: measurements on a schedule, rows out as
//!   `probe_http` and `probe_echo` points ([`record`]).
//! - [`perfd`]: the target: `/bulk/N`, `/echo`, a TCP echo port, and fault
//!   knobs that make it fail in each classified way.
//!
//! ```no_run
//! # async fn f() {
//! use probe::{download, Reach, Target};
//! let target = Target::parse("http://127.0.0.1:8480/bulk/1048576").unwrap();
//! let r = download(&target, &Reach::default(), None).await;
//! println!("TTFB {:?} µs, failure {:?}", r.times.ttfb_us(), r.failure);
//! # }
//! ```

mod chunked;
mod conn;
mod download;
mod echo;
mod failure;
mod job;
pub mod payload;
pub mod perfd;
pub mod record;
mod schedule;
mod socks;
mod target;
mod timings;

pub use download::{download, DownloadResult};
pub use echo::{echo, EchoPlan, EchoResult, EchoSample, MIN_ECHO_SIZE};
pub use failure::{Failure, FailureClass, Phase};
pub use job::{Job, Kind, Mode, ProbeConfig, DEFAULT_EVERY};
pub use schedule::Prober;
pub use target::{Reach, Scheme, Socks5, Target, TargetError};
pub use timings::{Timestamps, MILESTONES};

/// Entry points for the fuzz targets and property tests: the parsers that
/// read what a network peer sent. Not a stable interface.
#[doc(hidden)]
pub mod fuzz {
    /// A whole HTTP response read as a download reads it: (status, body
    /// bytes) or the failure it would report.
    pub fn response(bytes: &[u8]) -> Result<(u16, u64), crate::Failure> {
        crate::download::decode_response(bytes)
    }

    /// Takes one echo reply off the front of `pending` (`http`: with its
    /// response header): its sequence number, `None` until one is complete.
    pub fn echo_reply(
        pending: &mut Vec<u8>,
        size: usize,
        nonce: u64,
        http: bool,
    ) -> Result<Option<u64>, crate::Failure> {
        crate::echo::take_reply(pending, size, nonce, http)
    }
}
