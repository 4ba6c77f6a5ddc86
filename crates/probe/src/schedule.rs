//! The prober: runs each job on its own schedule on a thread of its own, and
//! hands the rows to whoever drains the channel (the agent's gather).

use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use lineproto::Line;
use rand::Rng;
use tokio::time::Instant;

use crate::job::Job;

/// Running jobs; dropping it stops them (a measurement in flight is abandoned).
#[derive(Debug)]
pub struct Prober {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Prober {
    /// Starts `jobs`, each first after its start delay (random within its
    /// interval unless set), then every interval on absolute deadlines; a
    /// measurement still running at the next deadline makes it skip that one.
    /// Rows go to `rows`; when it is full they are dropped and counted in the log.
    pub fn start(jobs: Vec<Job>, rows: SyncSender<Line<'static>>) -> std::io::Result<Prober> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("weir-probe".into())
            .spawn(move || {
                runtime.block_on(async move {
                    for job in jobs {
                        tokio::spawn(run_job(Arc::new(job), rows.clone()));
                    }
                    let _ = stopped.await;
                });
                // A name lookup still running on a blocking thread is left
                // to finish on its own rather than waited for.
                runtime.shutdown_background();
            })?;
        Ok(Prober {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Prober {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn run_job(job: Arc<Job>, rows: SyncSender<Line<'static>>) {
    let first = job.start_delay.unwrap_or_else(|| {
        let every = job.every.as_micros().min(u128::from(u64::MAX)) as u64;
        Duration::from_micros(rand::thread_rng().gen_range(0..every.max(1)))
    });
    let mut next = Instant::now() + first;
    let mut dropped = 0u64;
    loop {
        tokio::time::sleep_until(next).await;
        for line in job.measure().await {
            match rows.try_send(line) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) => {
                    dropped += 1;
                    if dropped.is_power_of_two() {
                        tracing::warn!(
                            target = %job.labels.target,
                            "probe rows dropped: nobody collects them fast enough ({dropped} so far)"
                        );
                    }
                }
                Err(TrySendError::Disconnected(_)) => return,
            }
        }
        let now = Instant::now();
        next += job.every;
        while next <= now {
            next += job.every;
        }
    }
}
