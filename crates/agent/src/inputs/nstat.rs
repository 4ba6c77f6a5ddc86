//! `[[inputs.nstat]]`: the kernel's SNMP and extended network counters, as
//! Telegraf's `nstat` input emits them.
//!
//! Three `nstat` metrics, tagged `name=netstat` (from `/proc/net/netstat`),
//! `name=snmp` (`/proc/net/snmp`) and `name=snmp6` (`/proc/net/snmp6`),
//! each with one integer field per counter: the table's prefix and the
//! counter's name run together (`TcpExtSyncookiesSent`, `IpInReceives`,
//! `Ip6InReceives`). Counters that are zero are left out unless
//! `dump_zeros = true`; a value that is not a signed 64-bit integer is
//! skipped, as Telegraf does. A missing `snmp6` (IPv6 disabled) is not an
//! error.

use std::path::{Path, PathBuf};

use lineproto::{FieldValue, Line};
use serde::Deserialize;

use crate::config::{ConfigError, InputCommon, PluginSpec};
use crate::input::{Accumulator, Input, InputError};
use crate::inputs::BuildContext;

/// The table's own keys (Telegraf's names).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct NstatConfig {
    /// The host's `/proc/net/netstat`; empty for the default.
    proc_net_netstat: String,
    /// The host's `/proc/net/snmp`; empty for the default.
    proc_net_snmp: String,
    /// The host's `/proc/net/snmp6`; empty for the default.
    proc_net_snmp6: String,
    /// Report counters that are zero too.
    dump_zeros: bool,
}

/// The `nstat` input.
#[derive(Debug)]
struct Nstat {
    netstat: PathBuf,
    snmp: PathBuf,
    snmp6: PathBuf,
    dump_zeros: bool,
}

/// Builds the input from its table. Paths given in the options are host
/// paths, found under the agent's `host_root`.
pub(crate) fn build(
    spec: &PluginSpec<InputCommon>,
    ctx: &BuildContext,
) -> Result<Box<dyn Input>, ConfigError> {
    let config: NstatConfig = spec.options()?;
    let path = |configured: &str, default: &str| -> PathBuf {
        if configured.is_empty() {
            ctx.host.proc_path(default)
        } else {
            ctx.host.host_path(Path::new(configured))
        }
    };
    Ok(Box::new(Nstat {
        netstat: path(&config.proc_net_netstat, "net/netstat"),
        snmp: path(&config.proc_net_snmp, "net/snmp"),
        snmp6: path(&config.proc_net_snmp6, "net/snmp6"),
        dump_zeros: config.dump_zeros,
    }))
}

/// Parses a table whose lines come in pairs, a header and its values:
/// `Tcp: RtoAlgorithm RtoMin …` then `Tcp: 1 200 …`.
fn paired_table(
    path: &Path,
    text: &str,
    dump_zeros: bool,
) -> Result<Vec<(String, i64)>, InputError> {
    let mut out = Vec::new();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    for (i, pair) in lines.chunks(2).enumerate() {
        let parse_err = |line: usize, reason: String| InputError::Parse {
            path: path.to_owned(),
            line,
            reason,
        };
        let [header, values] = pair else {
            return Err(parse_err(
                i * 2 + 1,
                "a header line without a values line".into(),
            ));
        };
        let mut names = header.split_whitespace();
        let mut vals = values.split_whitespace();
        let prefix = names.next().unwrap_or_default().trim_end_matches(':');
        let value_prefix = vals.next().unwrap_or_default().trim_end_matches(':');
        if prefix != value_prefix {
            return Err(parse_err(
                i * 2 + 2,
                format!("values for {value_prefix:?} follow the header of {prefix:?}"),
            ));
        }
        for (name, value) in names.zip(vals) {
            push(&mut out, format!("{prefix}{name}"), value, dump_zeros);
        }
    }
    Ok(out)
}

/// Parses a table of `Name value` lines (`/proc/net/snmp6`).
fn flat_table(text: &str, dump_zeros: bool) -> Vec<(String, i64)> {
    let mut out = Vec::new();
    let mut words = text.split_whitespace();
    while let (Some(name), Some(value)) = (words.next(), words.next()) {
        push(&mut out, name.to_owned(), value, dump_zeros);
    }
    out
}

fn push(out: &mut Vec<(String, i64)>, name: String, value: &str, dump_zeros: bool) {
    if let Ok(v) = value.parse::<i64>() {
        if v != 0 || dump_zeros {
            out.push((name, v));
        }
    }
}

fn add(acc: &mut Accumulator, name: &'static str, counters: Vec<(String, i64)>) {
    let mut line = Line::new("nstat").with_tag("name", name);
    for (k, v) in counters {
        line = line.with_field(k, FieldValue::Integer(v));
    }
    acc.add(line);
}

impl Input for Nstat {
    fn never_waits(&self) -> bool {
        true
    }

    fn gather(&mut self, acc: &mut Accumulator) -> Result<(), InputError> {
        let mut first_error = None;
        for (path, name) in [(&self.netstat, "netstat"), (&self.snmp, "snmp")] {
            let result = crate::host::read_file(path)
                .map_err(|e| InputError::io(path, e))
                .and_then(|text| paired_table(path, &text, self.dump_zeros));
            match result {
                Ok(counters) => add(acc, name, counters),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        match crate::host::read_file(&self.snmp6) {
            Ok(text) => add(acc, "snmp6", flat_table(&text, self.dump_zeros)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                first_error.get_or_insert(InputError::io(&self.snmp6, e));
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paired_and_flat_tables() {
        let text = "Tcp: RtoMin MaxConn Zero\nTcp: 200 -1 0\n";
        let got = paired_table(Path::new("snmp"), text, false).expect("parses");
        assert_eq!(
            got,
            vec![("TcpRtoMin".to_owned(), 200), ("TcpMaxConn".to_owned(), -1)]
        );
        let got = flat_table("Ip6InReceives 5\nIp6InHdrErrors 0\n", true);
        assert_eq!(got.len(), 2);
    }

    #[test]
    fn a_lone_header_is_an_error() {
        let err = paired_table(Path::new("/p/snmp"), "Tcp: A B\nTcp: 1 2\nUdp: X\n", false)
            .expect_err("malformed");
        assert!(err.to_string().contains("line 3"), "{err}");
    }
}
