//! Data generators, loaders and peer comparisons for weir's benchmarks.
//!
//! weir's performance is measured side by side with its peers on the same
//! data, so the data has to be reproducible: every generator here is
//! deterministic for a given seed and writes line protocol straight into a
//! byte buffer.
//!
//! * [`tsbs`]: the TSBS "devops cpu-only" data set (100 hosts × 24 h at
//!   10 s by default), streamed in batches so that loaders never hold it
//!   whole in memory;
//! * [`mixed`]: a corpus that uses every corner of line protocol (escapes,
//!   all value types and spellings, strings with line breaks), accepted by
//!   both weir's parser and `influxdb-line-protocol`;
//! * [`ingest`]: loads the TSBS data set into weir's store in-process with
//!   durable acknowledgements (`weir-bench ingest`);
//! * [`queries`]: the TSBS devops queries as SQL, with TSBS's random
//!   parameters from a seed (`weir-bench query` times them in-process);
//! * [`probes`]: a month of probe downloads from many vantage points with
//!   six dimensions (`weir-bench analytics` times CDFs and quantile bands
//!   through rollups and raw rows).
//!
//! The `weir-bench` binary writes either to standard output
//! (`weir-bench gen tsbs-cpu --hosts 100 --hours 24`), and
//! `cargo bench -p weir-bench` compares weir's line-protocol parser with
//! `influxdb-line-protocol` on both.
//!
//! ```
//! use weir_bench::{mixed::mixed_corpus, tsbs::CpuOnly};
//!
//! // One hour of 4 hosts: 1 440 points, fed in batches of 500.
//! let mut stream = CpuOnly::new(4, 1, 1).stream();
//! let mut batch = Vec::new();
//! let mut points = 0;
//! while stream.write_points(&mut batch, 500) > 0 {
//!     points += lineproto::parse_lines(&batch).filter(Result::is_ok).count();
//!     batch.clear();
//! }
//! assert_eq!(points, 1_440);
//!
//! let corpus = mixed_corpus(100, 1);
//! assert_eq!(corpus, mixed_corpus(100, 1));
//! ```

pub mod analytics;
pub mod ingest;
pub mod mixed;
pub mod probes;
pub mod queries;
pub mod tsbs;
