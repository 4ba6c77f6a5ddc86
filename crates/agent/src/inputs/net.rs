//! `[[inputs.net]]`: per-interface traffic counters from `/proc/net/dev`,
//! as Telegraf's `net` input emits them on Linux.
//!
//! One `net` metric per interface, tagged `interface`, with the integer
//! fields `bytes_sent`, `bytes_recv`, `packets_sent`, `packets_recv`,
//! `err_in`, `err_out`, `drop_in`, `drop_out` and `speed` (Mbit/s from
//! `/sys/class/net/IF/speed`, `-1` when the kernel does not know it).
//!
//! Without `interfaces`, loopback and interfaces that are down are left out
//! (flags from `/sys/class/net/IF/flags`); with it, the interfaces whose
//! names match one of its globs are reported whatever their state.
//!
//! Telegraf up to 1.35 also emitted `net,interface=all` with every counter of
//! `/proc/net/snmp` (`tcp_activeopens`, `udp_indatagrams`, …) unless
//! `ignore_protocol_stats = true`; current Telegraf dropped them in favour of
//! the `nstat` input. Here they are off by default too and come back with an
//! explicit `ignore_protocol_stats = false`.

use std::path::Path;

use lineproto::{FieldValue, Line};
use serde::Deserialize;

use crate::config::{ConfigError, InputCommon, PluginSpec};
use crate::host::HostPaths;
use crate::input::{Accumulator, Input, InputError};
use crate::inputs::BuildContext;

/// The table's own keys (Telegraf's names).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct NetConfig {
    /// Globs of interface names to report regardless of state.
    interfaces: Vec<String>,
    /// Leave out the `interface=all` protocol counters (the default).
    ignore_protocol_stats: bool,
}

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig {
            interfaces: Vec::new(),
            ignore_protocol_stats: true,
        }
    }
}

/// The `net` input.
#[derive(Debug)]
struct Net {
    host: HostPaths,
    interfaces: Vec<glob::Pattern>,
    protocol_stats: bool,
}

/// Builds the input from its table.
pub(crate) fn build(
    spec: &PluginSpec<InputCommon>,
    ctx: &BuildContext,
) -> Result<Box<dyn Input>, ConfigError> {
    let config: NetConfig = spec.options()?;
    let interfaces = config
        .interfaces
        .iter()
        .map(|g| {
            glob::Pattern::new(g)
                .map_err(|e| spec.error(format!("interfaces: invalid glob {g:?}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Box::new(Net {
        host: ctx.host.clone(),
        interfaces,
        protocol_stats: !config.ignore_protocol_stats,
    }))
}

/// A kernel counter as Telegraf's default InfluxDB serializer writes an
/// unsigned value: an integer, saturating at `i64::MAX`.
pub(crate) fn counter(value: u64) -> FieldValue<'static> {
    FieldValue::Integer(i64::try_from(value).unwrap_or(i64::MAX))
}

/// One interface's line of `/proc/net/dev`.
#[derive(Debug, PartialEq)]
struct DevStats {
    name: String,
    bytes_recv: u64,
    packets_recv: u64,
    err_in: u64,
    drop_in: u64,
    bytes_sent: u64,
    packets_sent: u64,
    err_out: u64,
    drop_out: u64,
}

/// Parses `/proc/net/dev`: two header lines, then `name: 16 counters`.
fn parse_dev(path: &Path, text: &str) -> Result<Vec<DevStats>, InputError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate().skip(2) {
        if line.trim().is_empty() {
            continue;
        }
        let parse_err = |reason: String| InputError::Parse {
            path: path.to_owned(),
            line: i + 1,
            reason,
        };
        let (name, rest) = line
            .split_once(':')
            .ok_or_else(|| parse_err("no `:` after the interface name".into()))?;
        let values = rest
            .split_whitespace()
            .map(|v| {
                v.parse::<u64>()
                    .map_err(|_| parse_err(format!("counter {v:?} is not a number")))
            })
            .collect::<Result<Vec<u64>, _>>()?;
        if values.len() < 12 {
            return Err(parse_err(format!(
                "expected 16 counters, found {}",
                values.len()
            )));
        }
        out.push(DevStats {
            name: name.trim().to_owned(),
            bytes_recv: values[0],
            packets_recv: values[1],
            err_in: values[2],
            drop_in: values[3],
            bytes_sent: values[8],
            packets_sent: values[9],
            err_out: values[10],
            drop_out: values[11],
        });
    }
    Ok(out)
}

const IFF_UP: u64 = 0x1;
const IFF_LOOPBACK: u64 = 0x8;

impl Net {
    /// Whether Telegraf would report this interface.
    fn selected(&self, name: &str) -> bool {
        if !self.interfaces.is_empty() {
            return self.interfaces.iter().any(|p| p.matches(name));
        }
        let flags_path = self.host.sys_path(&format!("class/net/{name}/flags"));
        match crate::host::read_file(&flags_path) {
            Ok(text) => {
                let t = text.trim();
                let t = t.strip_prefix("0x").unwrap_or(t);
                match u64::from_str_radix(t, 16) {
                    Ok(flags) => flags & IFF_LOOPBACK == 0 && flags & IFF_UP != 0,
                    Err(_) => name != "lo",
                }
            }
            // No /sys for it (e.g. /sys not mounted under host_root): judge
            // by name alone.
            Err(_) => name != "lo",
        }
    }

    fn speed(&self, name: &str) -> i64 {
        let path = self.host.sys_path(&format!("class/net/{name}/speed"));
        crate::host::read_file(&path)
            .ok()
            .and_then(|s| s.trim().parse::<i64>().ok())
            .unwrap_or(-1)
    }

    fn gather_protocols(&self, acc: &mut Accumulator) -> Result<(), InputError> {
        let path = self.host.proc_path("net/snmp");
        let text = self.host.read(&path)?;
        let mut line = Line::new("net").with_tag("interface", "all");
        let lines: Vec<&str> = text.lines().collect();
        for (i, pair) in lines.chunks(2).enumerate() {
            let [header, values] = pair else {
                return Err(InputError::Parse {
                    path,
                    line: i * 2 + 1,
                    reason: "a header line without a values line".into(),
                });
            };
            let mut names = header.split_whitespace();
            let mut vals = values.split_whitespace();
            let (Some(proto), Some(_)) = (names.next(), vals.next()) else {
                continue;
            };
            let proto = proto.trim_end_matches(':').to_ascii_lowercase();
            for (name, value) in names.zip(vals) {
                // Like gopsutil, a value that is not an integer is skipped.
                if let Ok(v) = value.parse::<i64>() {
                    line = line.with_field(
                        format!("{proto}_{}", name.to_ascii_lowercase()),
                        FieldValue::Integer(v),
                    );
                }
            }
        }
        acc.add(line);
        Ok(())
    }
}

impl Input for Net {
    fn never_waits(&self) -> bool {
        true
    }

    fn gather(&mut self, acc: &mut Accumulator) -> Result<(), InputError> {
        let path = self.host.proc_path("net/dev");
        let text = self.host.read(&path)?;
        for dev in parse_dev(&path, &text)? {
            if !self.selected(&dev.name) {
                continue;
            }
            let speed = self.speed(&dev.name);
            acc.add(
                Line::new("net")
                    .with_tag("interface", dev.name)
                    .with_field("bytes_sent", counter(dev.bytes_sent))
                    .with_field("bytes_recv", counter(dev.bytes_recv))
                    .with_field("packets_sent", counter(dev.packets_sent))
                    .with_field("packets_recv", counter(dev.packets_recv))
                    .with_field("err_in", counter(dev.err_in))
                    .with_field("err_out", counter(dev.err_out))
                    .with_field("drop_in", counter(dev.drop_in))
                    .with_field("drop_out", counter(dev.drop_out))
                    .with_field("speed", FieldValue::Integer(speed)),
            );
        }
        if self.protocol_stats {
            // Telegraf ignored a failure to read /proc/net/snmp silently;
            // here it is reported, after the interfaces are in.
            self.gather_protocols(acc)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_lines_parse() {
        let text = "Inter-|   Receive |  Transmit\n face |bytes packets|bytes\n  eth0: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n";
        let devs = parse_dev(Path::new("dev"), text).expect("parses");
        assert_eq!(devs.len(), 1);
        assert_eq!(devs[0].name, "eth0");
        assert_eq!(devs[0].bytes_recv, 1);
        assert_eq!(devs[0].drop_in, 4);
        assert_eq!(devs[0].bytes_sent, 9);
        assert_eq!(devs[0].drop_out, 12);
    }

    #[test]
    fn malformed_dev_line_names_the_line() {
        let text = "h1\nh2\n  eth0: 1 2 x 4\n";
        let err = parse_dev(Path::new("/p/net/dev"), text).expect_err("malformed");
        assert!(err.to_string().contains("line 3"), "{err}");
    }

    #[test]
    fn counters_saturate() {
        assert_eq!(counter(u64::MAX), FieldValue::Integer(i64::MAX));
        assert_eq!(counter(7), FieldValue::Integer(7));
    }
}
