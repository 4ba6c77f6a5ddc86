//! Six hours of the measurements the dashboard shows, ending now: probe
//! downloads to three targets from two vantages with some failures, echo
//! round trips, host measurements of two hosts, and the rate monitor's
//! records of their interfaces (one of them at risk of overload).

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

/// A deterministic pseudo-random number from 0 to 1 (xorshift).
struct Dice(u64);

impl Dice {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }

    /// `base` times a factor from `1 - spread` to `1 + spread`.
    fn around(&mut self, base: f64, spread: f64) -> f64 {
        base * (1.0 - spread + 2.0 * spread * self.next())
    }
}

/// The targets, each with its typical TTFB in µs.
pub(crate) const TARGETS: [(&str, f64); 3] =
    [("ams", 40_000.0), ("fra", 25_000.0), ("sin", 180_000.0)];
/// The hosts; `h1`'s `eth0` is at risk.
pub(crate) const HOSTS: [&str; 2] = ["h1", "h2"];

/// Now, in Unix seconds.
pub(crate) fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Line protocol (seconds) for six hours ending at `end`, every 5 minutes.
pub(crate) fn lines(end: i64) -> String {
    let mut dice = Dice(0x5eed_1234_abcd_ef01);
    let mut out = String::new();
    for step in 0..72i64 {
        let t = end - 6 * 3600 + step * 300;
        for (target, base) in TARGETS {
            for vantage in ["v1", "v2"] {
                let tags = format!("target={target},vantage={vantage}");
                let ttfb = dice.around(base, 0.4) as i64;
                let roll = dice.next();
                if roll < 0.05 {
                    let _ = writeln!(out, "probe_http,{tags},error=TIMEOUT,phase=body ttfb_us={ttfb}i,bytes_received=1000i,ok=false,timeout=true,partial=false {t}");
                } else if roll < 0.09 {
                    let _ = writeln!(out, "probe_http,{tags},error=RESET,phase=body ttfb_us={ttfb}i,bytes_received=2000i,ok=false,timeout=false,partial=true {t}");
                } else if roll < 0.12 && target == "sin" {
                    let _ = writeln!(out, "probe_http,{tags},error=CONNECT,phase=connect ok=false,timeout=false,partial=false {t}");
                } else {
                    let slow = if target == "sin" { 3.0 } else { 1.0 };
                    let ttlb = ttfb + dice.around(800_000.0 * slow, 0.3) as i64;
                    let bps = 5.0 * 1_048_576.0 * 8.0 / (ttlb as f64 / 1e6);
                    let _ = writeln!(out, "probe_http,{tags},size=5242880 ttfb_us={ttfb}i,ttlb_us={ttlb}i,dl_last_mib_bps={bps:.1},bytes_received=5242880i,ok=true,timeout=false,partial=false {t}");
                }
                for seq in 0..5 {
                    let rtt = dice.around(base * 0.8, 0.2) as i64;
                    let _ = writeln!(
                        out,
                        "probe_echo,{tags},transport=tcp seq={seq}i,rtt_us={rtt}i,ok=true {}",
                        t + seq
                    );
                }
            }
        }
        for (host, load) in [("h1", 0.7), ("h2", 2.5)] {
            let _ = writeln!(
                out,
                "system,host={host} load1={:.2},load5={load},load15={load},n_cpus=4i,uptime={}i {t}",
                dice.around(load, 0.5),
                259_200 + step * 300
            );
            let _ = writeln!(
                out,
                "cpu,host={host},cpu=cpu-total usage_idle={:.1},usage_user={:.1} {t}",
                dice.around(60.0, 0.4),
                dice.around(25.0, 0.5)
            );
            let _ = writeln!(
                out,
                "mem,host={host} used_percent={:.1},total=8000000000i {t}",
                dice.around(50.0, 0.3)
            );
            for interface in ["eth0", "eth1"] {
                let hot = host == "h1" && interface == "eth0";
                let (risk, tx) = if hot {
                    (dice.around(97.5, 0.015), dice.around(110e6, 0.1))
                } else {
                    (dice.around(1.0, 0.5), dice.around(2e6, 0.5))
                };
                let _ = writeln!(
                    out,
                    "ratemon,host={host},interface={interface} linerate=125000000,tx={tx:.0},rx={:.0},overload_risk_tx={risk:.2},overload_risk_rx=0.1,alarm_trigger_value=95,cutoff=99,alarm_tx={},alarm_rx=false {t}",
                    tx / 3.0,
                    risk > 95.0
                );
                let _ = writeln!(
                    out,
                    "net,host={host},interface={interface} bytes_sent={}i,bytes_recv={}i {t}",
                    step * 1_000_000,
                    step * 300_000
                );
            }
        }
    }
    out
}

/// Writes [`lines`] ending now into `db`.
pub(crate) fn write(url: &str, token: Option<&str>, db: &str) {
    let (status, body) =
        super::write_v1(url, token, &format!("db={db}&precision=s"), &lines(now()));
    assert_eq!(status, 204, "{body}");
}

/// A read token for `db`, made with `weir token create`.
pub(crate) fn read_token(data_dir: &std::path::Path, db: &str) -> String {
    let out = super::run(&[
        "token",
        "create",
        "--data-dir",
        data_dir.to_str().unwrap_or_default(),
        "--db",
        db,
        "--read",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .trim()
        .to_owned()
}
