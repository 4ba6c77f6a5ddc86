//! `[[inputs.probe]]`: active measurements (crate `probe`) as an agent
//! input. The prober runs each table's schedule on its own thread from the
//! moment the agent starts; each gather takes the rows finished since the
//! last one (`probe_http`, `probe_echo`), each stamped with its start.
//!
//! ```toml
//! [[inputs.probe]]
//! url = "http://perfd.example.net:8480/bulk/5242880"
//! every = "300s"          # default 300 s, first run at a random offset
//! timeout = "270s"        # default 270 s (less than every)
//! stallout = "30s"        # no byte for this long: STALLOUT
//! # socks5 = "127.0.0.1:9050"   # measure through a SOCKS5 proxy (remote DNS)
//! # ca_file = "/etc/weir/ca.pem"
//! [[inputs.probe]]
//! url = "tcp://perfd.example.net:8481"   # echo rounds: 20 pairs each
//! every = "60s"
//! ```

use std::sync::mpsc::{Receiver, TryRecvError};

use probe::{ProbeConfig, Prober};

use crate::config::{ConfigError, InputCommon, PluginSpec};
use crate::input::{Accumulator, Input, InputError};
use crate::inputs::BuildContext;

/// Rows waiting for a gather: an echo round of 20 pairs every second still
/// fits a 10-minute agent interval many times over.
const QUEUE: usize = 16 * 1024;

/// A running prober and the rows it hands over.
#[derive(Debug)]
pub struct ProbeInput {
    /// Keeps the schedule running as long as the input lives.
    _prober: Prober,
    rows: Receiver<lineproto::Line<'static>>,
}

impl ProbeInput {
    /// Starts the schedule of `jobs`.
    pub fn start(jobs: Vec<probe::Job>) -> std::io::Result<ProbeInput> {
        let (tx, rows) = std::sync::mpsc::sync_channel(QUEUE);
        Ok(ProbeInput {
            _prober: Prober::start(jobs, tx)?,
            rows,
        })
    }
}

impl Input for ProbeInput {
    fn gather(&mut self, acc: &mut Accumulator) -> Result<(), InputError> {
        loop {
            match self.rows.try_recv() {
                Ok(row) => acc.add(row),
                Err(TryRecvError::Empty) => return Ok(()),
                Err(TryRecvError::Disconnected) => {
                    return Err(InputError::Other("the prober has stopped".into()))
                }
            }
        }
    }
}

/// Builds the input from its table, starting the schedule.
pub(crate) fn build(
    spec: &PluginSpec<InputCommon>,
    _ctx: &BuildContext,
) -> Result<Box<dyn Input>, ConfigError> {
    let config: ProbeConfig = spec.options()?;
    let job = config.into_job().map_err(|e| spec.error(e))?;
    let input = ProbeInput::start(vec![job])
        .map_err(|e| spec.error(format!("starting the prober: {e}")))?;
    Ok(Box::new(input))
}
