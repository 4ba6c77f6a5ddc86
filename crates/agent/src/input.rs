//! What an input is to the agent's runtime: something that, once per
//! interval, reads its sources and adds metrics to an [`Accumulator`].

use std::path::PathBuf;

use lineproto::Line;

/// One measurement point as the agent handles it: a line of line protocol
/// that owns its text.
pub type Metric = Line<'static>;

/// Collects the metrics of one gather call and stamps them with the
/// collection's time, so that every metric of one round shares a timestamp
/// (as Telegraf does; rounded to the interval when `round_interval` is on).
#[derive(Debug)]
pub struct Accumulator {
    time_ns: i64,
    metrics: Vec<Metric>,
}

impl Accumulator {
    /// An empty accumulator for a collection at `time_ns` (Unix nanoseconds).
    pub fn new(time_ns: i64) -> Self {
        Accumulator {
            time_ns,
            metrics: Vec::new(),
        }
    }

    /// The collection's time in nanoseconds since the Unix epoch.
    pub fn time_ns(&self) -> i64 {
        self.time_ns
    }

    /// Adds a metric; one without a timestamp gets the collection's time.
    /// A metric without fields is dropped: line protocol cannot carry it.
    pub fn add(&mut self, mut metric: Metric) {
        if metric.fields.is_empty() {
            return;
        }
        if metric.timestamp.is_none() {
            metric.timestamp = Some(self.time_ns);
        }
        self.metrics.push(metric);
    }

    /// The metrics added so far.
    pub fn metrics(&self) -> &[Metric] {
        &self.metrics
    }

    /// Takes the metrics added so far.
    pub fn into_metrics(self) -> Vec<Metric> {
        self.metrics
    }
}

/// A periodic input: the runtime calls [`Input::gather`] once per interval
/// on a blocking thread, so an input may read files and sockets directly.
pub trait Input: Send + std::fmt::Debug {
    /// Reads the input's sources once and adds what it found to `acc`.
    ///
    /// An error is logged and counted by the runtime; the metrics added
    /// before it are kept. Inputs that read many independent sources (one
    /// file per disk, one socket per address) should add what they can and
    /// report the first failure rather than stop at it.
    fn gather(&mut self, acc: &mut Accumulator) -> Result<(), InputError>;

    /// True for an input that only reads `/proc`, `/sys`, files in memory
    /// (`/run`) or its own state, and so never waits.
    /// The runtime gathers such inputs that share a schedule one after the
    /// other on its own thread: a trip to a blocking thread and back costs
    /// two thread wake-ups, a good part of a cheap input's cost. An input
    /// that can wait (a mount point's `statfs` on a hung NFS server, a
    /// network round trip) keeps the default, its own trip to a blocking
    /// thread, so that it holds up nothing else.
    fn never_waits(&self) -> bool {
        false
    }
}

/// Why a gather call failed.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// A file could not be read.
    #[error("reading {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// A file's content was not what the input expected.
    #[error("{path}: line {line}: {reason}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The 1-based line number.
        line: usize,
        /// What was wrong.
        reason: String,
    },
    /// Anything else, in words.
    #[error("{0}")]
    Other(String),
}

impl InputError {
    /// An [`InputError::Io`] for `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        InputError::Io {
            path: path.into(),
            source,
        }
    }
}
