//! A sleep that wakes the agent once.
//!
//! tokio's timer wheel reaches a far deadline in steps: a 10 s sleep wakes
//! the runtime's thread at the end of a 4 s slot, then of a 64 ms slot,
//! then at the deadline, and in a virtual machine every wake-up costs tens
//! of microseconds of CPU. A Linux `timerfd` armed for the deadline and
//! watched by the runtime's `epoll` wakes it once. Where a `timerfd`
//! cannot be had (another system, a sandbox that forbids it) tokio's sleep
//! is used.

use std::time::Duration;

#[cfg(target_os = "linux")]
use rustix::fd::OwnedFd;
#[cfg(target_os = "linux")]
use tokio::io::unix::AsyncFd;

/// One pending sleep at a time; a sleep dropped before its end (its
/// `select!` took another branch) leaves nothing behind.
#[derive(Debug)]
pub(crate) struct Timer {
    #[cfg(target_os = "linux")]
    fd: Option<AsyncFd<OwnedFd>>,
}

impl Timer {
    /// A timer on the monotonic clock; must be created inside the runtime.
    pub(crate) fn new() -> Timer {
        #[cfg(target_os = "linux")]
        {
            use rustix::time::{timerfd_create, TimerfdClockId, TimerfdFlags};
            let fd = timerfd_create(
                TimerfdClockId::Monotonic,
                TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC,
            )
            .map_err(std::io::Error::from)
            .and_then(register);
            match fd {
                Ok(fd) => Timer { fd: Some(fd) },
                Err(e) => {
                    tracing::debug!("no timerfd ({e}); sleeping on tokio's timer");
                    Timer { fd: None }
                }
            }
        }
        #[cfg(not(target_os = "linux"))]
        Timer {}
    }

    /// Sleeps for `duration`.
    pub(crate) async fn sleep(&mut self, duration: Duration) {
        #[cfg(target_os = "linux")]
        if let Some(fd) = &self.fd {
            match sleep_on(fd, duration).await {
                Ok(()) => return,
                Err(e) => {
                    tracing::debug!("the timerfd failed ({e}); sleeping on tokio's timer");
                    self.fd = None;
                }
            }
        }
        tokio::time::sleep(duration).await;
    }
}

/// Hands the timerfd to the runtime's reactor.
///
/// `AsyncFd::new` is deprecated because the descriptor of an arbitrary
/// `AsRawFd` value could change or close under the reactor; an `OwnedFd`
/// moved into the `AsyncFd` is open, and the same, until the `AsyncFd` is
/// dropped, which is what the unsafe `AsyncFd::register` asks its caller to
/// promise.
#[cfg(target_os = "linux")]
#[allow(deprecated)]
fn register(fd: OwnedFd) -> std::io::Result<AsyncFd<OwnedFd>> {
    AsyncFd::new(fd)
}

/// Arms the timerfd for `duration` from now and waits for it to expire.
#[cfg(target_os = "linux")]
async fn sleep_on(fd: &AsyncFd<OwnedFd>, duration: Duration) -> std::io::Result<()> {
    use rustix::time::{timerfd_settime, Itimerspec, TimerfdTimerFlags, Timespec};
    // A zero it_value disarms a timerfd: the shortest sleep is 1 ns.
    let duration = duration.max(Duration::from_nanos(1));
    let value = Itimerspec {
        it_interval: Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        },
        it_value: Timespec {
            tv_sec: i64::try_from(duration.as_secs()).unwrap_or(i64::MAX),
            tv_nsec: i64::from(duration.subsec_nanos()),
        },
    };
    // Arming again also clears an expiry left unread by a dropped sleep.
    timerfd_settime(fd.get_ref(), TimerfdTimerFlags::empty(), &value)?;
    loop {
        let mut ready = fd.readable().await?;
        let mut expirations = [0u8; 8];
        match ready.try_io(|fd| Ok(rustix::io::read(fd.get_ref(), &mut expirations)?)) {
            Ok(Ok(_)) => return Ok(()),
            Ok(Err(e)) => return Err(e),
            // Readiness left from an earlier, re-armed expiry.
            Err(_would_block) => continue,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Timer;
    use std::time::{Duration, Instant};

    #[tokio::test]
    async fn sleeps_as_long_as_asked_and_can_be_dropped_midway() {
        let mut timer = Timer::new();
        // Dropped before its end: the next sleep is not cut short by it.
        let cut = tokio::time::timeout(
            Duration::from_millis(20),
            timer.sleep(Duration::from_millis(40)),
        )
        .await;
        assert!(cut.is_err());
        tokio::time::sleep(Duration::from_millis(40)).await;
        let start = Instant::now();
        timer.sleep(Duration::from_millis(50)).await;
        let slept = start.elapsed();
        assert!(slept >= Duration::from_millis(50), "{slept:?}");
        assert!(slept < Duration::from_secs(2), "{slept:?}");
        timer.sleep(Duration::ZERO).await;
    }
}
