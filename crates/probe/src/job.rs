//! A scheduled measurement as configured (`[[inputs.probe]]`, `[[probe]]` in
//! `weir probe --config`) and checked into something that can run.

use std::path::PathBuf;
use std::time::Duration;

use lineproto::Line;
use serde::{Deserialize, Deserializer};

use crate::echo::{EchoPlan, MIN_ECHO_SIZE};
use crate::record::{self, Labels};
use crate::target::{Reach, Scheme, Socks5, Target};

/// What a probe measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// A timed download (`probe_http`).
    Download,
    /// An echo round (`probe_echo`).
    Echo,
}

/// One probe's keys, as written in TOML. Durations are strings like
/// `"300s"` or `"5m"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeConfig {
    /// `http(s)://…` to download or to `POST /echo`, `tcp://host:port` to echo.
    pub url: String,
    /// `download` (default) or `echo` (default for `tcp://`).
    #[serde(default)]
    pub mode: Option<Mode>,
    /// Tag `target` (default: the URL's `host:port`).
    #[serde(default)]
    pub name: Option<String>,
    /// Time between measurements (default 300 s).
    #[serde(default, deserialize_with = "duration")]
    pub every: Option<Duration>,
    /// Limit of one measurement (default 270 s, and less than `every`).
    #[serde(default, deserialize_with = "duration")]
    pub timeout: Option<Duration>,
    /// The longest wait for any byte (default 30 s).
    #[serde(default, deserialize_with = "duration")]
    pub stallout: Option<Duration>,
    /// Delay of the first measurement (default: random within `every`).
    #[serde(default, deserialize_with = "duration")]
    pub start_delay: Option<Duration>,
    /// Expected body length when the target does not announce one.
    #[serde(default)]
    pub size: Option<u64>,
    /// SOCKS5 proxy `host:port` to measure through.
    #[serde(default)]
    pub socks5: Option<String>,
    /// SOCKS5 username (with `socks5_password`).
    #[serde(default)]
    pub socks5_username: Option<String>,
    /// SOCKS5 password.
    #[serde(default)]
    pub socks5_password: Option<String>,
    /// PEM file of CAs to trust for HTTPS instead of the bundled web roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Echo pairs per round (default 20, at least 3).
    #[serde(default)]
    pub echo_count: Option<u32>,
    /// Bytes per echo request (default 64, 16 to 1 MiB).
    #[serde(default)]
    pub echo_size: Option<usize>,
    /// A pair without its reply after this long is lost (default 2 s).
    #[serde(default, deserialize_with = "duration")]
    pub echo_timeout: Option<Duration>,
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    let text = String::deserialize(d)?;
    humantime::parse_duration(&text)
        .map(Some)
        .map_err(|e| serde::de::Error::custom(format!("duration {text:?}: {e}")))
}

/// The default time between measurements.
pub const DEFAULT_EVERY: Duration = Duration::from_secs(300);

/// What a job measures, checked.
#[derive(Debug, Clone)]
pub enum Kind {
    /// A download of this many bytes when the target does not say.
    Download(Option<u64>),
    /// An echo round.
    Echo(EchoPlan),
}

/// A checked probe: what to measure, how to reach it, when, and its tags.
#[derive(Debug, Clone)]
pub struct Job {
    /// The target.
    pub target: Target,
    /// How to reach it.
    pub reach: Reach,
    /// What to measure.
    pub kind: Kind,
    /// Tags of its rows.
    pub labels: Labels,
    /// Time between measurements.
    pub every: Duration,
    /// Delay of the first one; `None`: random within `every`.
    pub start_delay: Option<Duration>,
}

impl ProbeConfig {
    /// Checks the keys; an error says which key is wrong and why.
    pub fn into_job(self) -> Result<Job, String> {
        let target = Target::parse(&self.url).map_err(|e| format!("url: {e}"))?;
        let mode = self.mode.unwrap_or(if target.scheme == Scheme::Tcp {
            Mode::Echo
        } else {
            Mode::Download
        });
        if mode == Mode::Download && target.scheme == Scheme::Tcp {
            return Err("url: a tcp:// target can only be echoed (mode = \"echo\")".into());
        }
        let every = self.every.unwrap_or(DEFAULT_EVERY);
        if every.is_zero() {
            return Err("every: must be longer than 0 s".into());
        }
        let defaults = Reach::default();
        let timeout = self
            .timeout
            .unwrap_or_else(|| defaults.timeout.min(every.mul_f64(0.9)));
        if timeout.is_zero() || timeout >= every {
            return Err(format!(
                "timeout: {} must be shorter than every ({})",
                humantime::format_duration(timeout),
                humantime::format_duration(every)
            ));
        }
        let stallout = self.stallout.unwrap_or(defaults.stallout);
        if stallout.is_zero() {
            return Err("stallout: must be longer than 0 s".into());
        }
        let mut socks5 = self.socks5.as_deref().map(Socks5::parse).transpose()?;
        match (&mut socks5, self.socks5_username, self.socks5_password) {
            (Some(p), Some(u), Some(pw)) => p.credentials = Some((u, pw)),
            (_, None, None) => {}
            (None, _, _) => return Err("socks5_username and socks5_password need socks5".into()),
            _ => return Err("socks5_username and socks5_password go together".into()),
        }
        if let Some(path) = &self.ca_file {
            if !path.is_file() {
                return Err(format!("ca_file: {} is not a file", path.display()));
            }
        }
        let kind = match mode {
            Mode::Download => Kind::Download(self.size),
            Mode::Echo => {
                let plan = EchoPlan {
                    count: self.echo_count.unwrap_or(EchoPlan::default().count),
                    size: self.echo_size.unwrap_or(EchoPlan::default().size),
                    reply_timeout: self
                        .echo_timeout
                        .unwrap_or(EchoPlan::default().reply_timeout),
                };
                if plan.count < 3 {
                    return Err("echo_count: at least 3 pairs per round".into());
                }
                if !(MIN_ECHO_SIZE..=1024 * 1024).contains(&plan.size) {
                    return Err(format!(
                        "echo_size: between {MIN_ECHO_SIZE} and 1048576 bytes"
                    ));
                }
                Kind::Echo(plan)
            }
        };
        let labels = Labels {
            target: self.name.unwrap_or_else(|| target.authority()),
            proxy: socks5.as_ref().map(Socks5::authority),
            extra: Vec::new(),
        };
        Ok(Job {
            target,
            reach: Reach {
                socks5,
                ca_file: self.ca_file,
                timeout,
                stallout,
            },
            kind,
            labels,
            every,
            start_delay: self.start_delay,
        })
    }
}

impl Job {
    /// Runs the measurement once and returns its rows.
    pub async fn measure(&self) -> Vec<Line<'static>> {
        match &self.kind {
            Kind::Download(size) => {
                let r = crate::download(&self.target, &self.reach, *size).await;
                vec![record::download_line(&r, &self.labels)]
            }
            Kind::Echo(plan) => {
                let r = crate::echo(&self.target, &self.reach, *plan).await;
                record::echo_lines(&r, &self.labels)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Job, String> {
        let c: ProbeConfig = toml::from_str(text).map_err(|e| e.to_string())?;
        c.into_job()
    }

    #[test]
    fn defaults_follow_design() {
        let j = parse("url = \"http://127.0.0.1:8480/bulk/5242880\"").unwrap();
        assert_eq!(j.every, Duration::from_secs(300));
        assert_eq!(j.reach.timeout, Duration::from_secs(270));
        assert_eq!(j.reach.stallout, Duration::from_secs(30));
        assert!(matches!(j.kind, Kind::Download(None)));
        assert_eq!(j.labels.target, "127.0.0.1:8480");
        let j = parse("url = \"tcp://127.0.0.1:7\"\nevery = \"60s\"").unwrap();
        assert!(matches!(j.kind, Kind::Echo(p) if p.count == 20));
        assert_eq!(j.reach.timeout, Duration::from_secs(54));
    }

    #[test]
    fn bad_keys_are_named() {
        let e = parse("url = \"http://h/\"\nevery = \"60s\"\ntimeout = \"60s\"").unwrap_err();
        assert!(e.starts_with("timeout"), "{e}");
        assert!(parse("url = \"http://h/\"\nspeed = 1")
            .unwrap_err()
            .contains("speed"));
        assert!(parse("url = \"tcp://h:7\"\nmode = \"download\"")
            .unwrap_err()
            .starts_with("url"));
        assert!(parse("url = \"tcp://h:7\"\necho_count = 2")
            .unwrap_err()
            .starts_with("echo_count"));
        assert!(parse("url = \"http://h/\"\nsocks5_username = \"u\"").is_err());
        assert!(parse("url = \"http://h/\"\nevery = \"soon\"")
            .unwrap_err()
            .contains("soon"));
    }
}
