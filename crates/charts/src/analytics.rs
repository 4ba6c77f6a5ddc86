//! Charts from the answers of weir's analytics API (`/api/v1/cdf`,
//! `/quantiles`, `/rainbow`, `/utilisation`, as JSON): which answer each
//! chart reads, how its groups become series, and the default titles.
//! `weir plot` and the server's chart endpoints both draw through
//! [`draw`], so a chart looks the same from either.
//!
//! ```
//! use charts::analytics::{draw, Chart, Options};
//!
//! let answer = serde_json::json!({
//!     "field": "ttfb_us",
//!     "groups": [{"group": {"target": "ams"}, "count": 2,
//!                 "points": [{"value": 1000.0, "fraction": 0.5}, {"value": 3000.0, "fraction": 1.0}]}],
//! });
//! let options = Options { unit: Some("ms".into()), scale: 0.001, ..Options::default() };
//! let svg = draw(Chart::Cdf, &answer, &options);
//! assert!(svg.contains("<title>ams: 50 % ≤ 1</title>"));
//! ```

use serde_json::Value;

use crate::{
    bands_panels, cdf, lines, rainbows, Band, BandsSeries, CdfSeries, Frame, LineSeries,
    RainbowBucket, RainbowSeries,
};

/// The charts there are, each drawn from one analytics endpoint's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chart {
    /// The CDF of a field per group (`/api/v1/cdf`).
    Cdf,
    /// Quantile bands over time like SmokePing's smoke, a panel per group
    /// (`/api/v1/quantiles`).
    Bands,
    /// The first quantile asked for over time, a line per group
    /// (`/api/v1/quantiles`).
    Lines,
    /// The share of each failure class over time, a panel per group
    /// (`/api/v1/rainbow`).
    Rainbow,
    /// The CDF of the nodes' utilisation per role (`/api/v1/utilisation`).
    Utilisation,
    /// The CDF of the nodes' balance ratios per role (`/api/v1/utilisation`).
    Balance,
}

impl Chart {
    /// Every chart.
    pub const ALL: [Chart; 6] = [
        Chart::Cdf,
        Chart::Bands,
        Chart::Lines,
        Chart::Rainbow,
        Chart::Utilisation,
        Chart::Balance,
    ];

    /// The chart's name (`cdf`, `bands`, …).
    pub fn name(self) -> &'static str {
        match self {
            Chart::Cdf => "cdf",
            Chart::Bands => "bands",
            Chart::Lines => "lines",
            Chart::Rainbow => "rainbow",
            Chart::Utilisation => "utilisation",
            Chart::Balance => "balance",
        }
    }

    /// The chart of a name.
    pub fn from_name(name: &str) -> Option<Chart> {
        Chart::ALL.into_iter().find(|c| c.name() == name)
    }

    /// The analytics endpoint whose answer it draws (`/api/v1/<this>`).
    pub fn endpoint(self) -> &'static str {
        match self {
            Chart::Cdf => "cdf",
            Chart::Bands | Chart::Lines => "quantiles",
            Chart::Rainbow => "rainbow",
            Chart::Utilisation | Chart::Balance => "utilisation",
        }
    }

    /// Whether it draws values over time buckets (`every`).
    pub fn has_buckets(self) -> bool {
        matches!(self, Chart::Bands | Chart::Lines | Chart::Rainbow)
    }
}

/// How to draw an answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// The title; by default one that says what the chart shows.
    pub title: Option<String>,
    /// The values' unit on the axis; by default the field's name.
    pub unit: Option<String>,
    /// Each value is multiplied by this before it is drawn (0.001 shows
    /// µs as ms); shares, fractions and ratios are not.
    pub scale: f64,
    /// Width of the chart.
    pub width: f64,
    /// Height of the chart, or of each panel.
    pub height: f64,
    /// The most panels (groups) a bands or rainbow chart draws.
    pub max_panels: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            title: None,
            unit: None,
            scale: 1.0,
            width: Frame::WIDTH,
            height: Frame::HEIGHT,
            max_panels: 12,
        }
    }
}

/// The measured field an answer is about (its table when it names none).
fn field_of(answer: &Value) -> String {
    match answer["field"].as_str() {
        Some(f) if !f.is_empty() => f.to_owned(),
        _ => answer["table"].as_str().unwrap_or("").to_owned(),
    }
}

/// The frame `chart` is drawn in: the options' size, and their title or
/// one that says what the chart shows.
pub fn frame(chart: Chart, answer: &Value, options: &Options) -> Frame {
    let text = |key: &str| answer[key].as_str().unwrap_or("").to_owned();
    let field = field_of(answer);
    let title = options.title.clone().unwrap_or_else(|| match chart {
        Chart::Cdf => format!("CDF of {field}"),
        Chart::Bands => format!("{field} quantiles per {}", text("every")),
        Chart::Lines => {
            let q = answer["q"][0].as_f64().unwrap_or(0.5);
            format!("{field} q{q} per {}", text("every"))
        }
        Chart::Rainbow => format!(
            "{} of {} per {}",
            text("category"),
            text("table"),
            text("every")
        ),
        Chart::Utilisation => format!("utilisation of {field} per {}", text("node")),
        Chart::Balance => format!("balance of {field} per {}", text("node")),
    });
    let secs = |key: &str| answer[key].as_f64().map_or(f64::NAN, |ns| ns / 1e9);
    let frame = Frame::new(title).with_size(options.width, options.height);
    if chart.has_buckets() {
        frame.with_span(secs("start"), secs("end"))
    } else {
        frame
    }
}

/// Draws `chart` from the JSON answer of its endpoint ([`Chart::endpoint`]).
/// An answer without groups is a "no data" chart.
pub fn draw(chart: Chart, answer: &Value, options: &Options) -> String {
    let text = |key: &str| answer[key].as_str().unwrap_or("").to_owned();
    let field = field_of(answer);
    let frame = frame(chart, answer, options);
    let unit = options.unit.clone().unwrap_or_else(|| field.clone());
    let scale = options.scale;
    match chart {
        Chart::Cdf => cdf(&frame, &unit, &cdf_series(answer, scale)),
        Chart::Bands => {
            let mut series = bands_series(answer, scale);
            let frame = cut_panels(&mut series, options.max_panels, frame);
            bands_panels(&frame, &unit, &series)
        }
        Chart::Lines => lines(&frame, &unit, &line_series(answer, scale)),
        Chart::Rainbow => {
            let mut series = rainbow_series(answer);
            let frame = cut_panels(&mut series, options.max_panels, frame);
            rainbows(&frame, &series)
        }
        Chart::Utilisation => cdf(
            &frame,
            &format!(
                "mean over {} ÷ peak over {}",
                text("window"),
                text("peak_window")
            ),
            &role_cdfs(answer, "utilisation_cdf"),
        ),
        Chart::Balance => cdf(
            &frame,
            "mean ÷ mean of its role (1 = fair share)",
            &role_cdfs(answer, "balance_cdf"),
        ),
    }
}

/// Keeps the first `max` panels (at least one); the title says so when
/// there were more.
fn cut_panels<T>(series: &mut Vec<T>, max: usize, frame: Frame) -> Frame {
    let (max, all) = (max.max(1), series.len());
    if all <= max {
        return frame;
    }
    series.truncate(max);
    Frame {
        title: format!("{} (first {max} of {all} groups)", frame.title),
        ..frame
    }
}

/// A group's name: its values joined, or "all".
pub fn group_name(group: &Value) -> String {
    match group.as_object() {
        Some(m) if !m.is_empty() => m
            .values()
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
            .collect::<Vec<_>>()
            .join(" "),
        _ => "all".to_owned(),
    }
}

/// Seconds since the epoch of an RFC 3339 bucket start.
fn seconds(time: &Value) -> Option<f64> {
    let t = humantime::parse_rfc3339_weak(time.as_str()?).ok()?;
    Some(t.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs_f64())
}

fn array<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v[key].as_array().map_or(&[], Vec::as_slice)
}

/// `/api/v1/cdf`'s groups as CDF series, values scaled.
pub fn cdf_series(answer: &Value, scale: f64) -> Vec<CdfSeries> {
    array(answer, "groups")
        .iter()
        .map(|g| CdfSeries {
            name: group_name(&g["group"]),
            points: array(g, "points")
                .iter()
                .filter_map(|p| Some((p["value"].as_f64()? * scale, p["fraction"].as_f64()?)))
                .collect(),
        })
        .filter(|s| !s.points.is_empty())
        .collect()
}

/// `/api/v1/quantiles`'s series as bands, values scaled.
pub fn bands_series(answer: &Value, scale: f64) -> Vec<BandsSeries> {
    let qs: Vec<f64> = array(answer, "q")
        .iter()
        .filter_map(Value::as_f64)
        .collect();
    array(answer, "series")
        .iter()
        .map(|s| BandsSeries {
            name: group_name(&s["group"]),
            qs: qs.clone(),
            buckets: array(s, "buckets")
                .iter()
                .filter_map(|b| {
                    Some(Band {
                        time: seconds(&b["time"])?,
                        values: array(b, "values")
                            .iter()
                            .map(|v| v.as_f64().map(|v| v * scale))
                            .collect(),
                    })
                })
                .collect(),
        })
        .collect()
}

/// `/api/v1/quantiles`'s series as lines of their first quantile, scaled.
pub fn line_series(answer: &Value, scale: f64) -> Vec<LineSeries> {
    array(answer, "series")
        .iter()
        .map(|s| LineSeries {
            name: group_name(&s["group"]),
            points: array(s, "buckets")
                .iter()
                .filter_map(|b| {
                    Some((
                        seconds(&b["time"])?,
                        b["values"][0].as_f64().map(|v| v * scale),
                    ))
                })
                .collect(),
        })
        .collect()
}

/// `/api/v1/rainbow`'s series.
pub fn rainbow_series(answer: &Value) -> Vec<RainbowSeries> {
    array(answer, "series")
        .iter()
        .map(|s| RainbowSeries {
            name: group_name(&s["group"]),
            buckets: array(s, "buckets")
                .iter()
                .filter_map(|b| {
                    Some(RainbowBucket {
                        time: seconds(&b["time"])?,
                        shares: b["shares"]
                            .as_object()?
                            .iter()
                            .filter_map(|(k, v)| Some((k.clone(), v.as_f64()?)))
                            .collect(),
                    })
                })
                .collect(),
        })
        .collect()
}

/// `/api/v1/utilisation`'s per-role CDFs under `key` (`utilisation_cdf`
/// or `balance_cdf`).
pub fn role_cdfs(answer: &Value, key: &str) -> Vec<CdfSeries> {
    array(answer, "roles")
        .iter()
        .map(|r| CdfSeries {
            name: r["role"].as_str().unwrap_or("all").to_owned(),
            points: array(r, key)
                .iter()
                .filter_map(|p| Some((p["value"].as_f64()?, p["fraction"].as_f64()?)))
                .collect(),
        })
        .filter(|s| !s.points.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn each_chart_reads_its_answer() {
        let quantiles = json!({
            "field": "ttfb_us", "every": "1h", "q": [0.1, 0.5, 0.9],
            "series": [
                {"group": {"target": "a"}, "buckets": [
                    {"time": "2023-11-14T22:00:00Z", "count": 3, "values": [1000.0, 2000.0, 4000.0]},
                    {"time": "2023-11-14T23:00:00Z", "count": 0, "values": [null, null, null]}]},
                {"group": {"target": "b"}, "buckets": [
                    {"time": "2023-11-14T22:00:00Z", "count": 1, "values": [5.0, 5.0, 5.0]}]}
            ]
        });
        let options = Options {
            scale: 0.001,
            unit: Some("ms".into()),
            ..Options::default()
        };
        let svg = draw(Chart::Bands, &quantiles, &options);
        assert!(svg.contains("ttfb_us quantiles per 1h — a"), "{svg}");
        assert!(svg.contains("ttfb_us quantiles per 1h — b"));
        assert!(svg.contains("2023-11-14 22:00: q0.5 = 2</title>"), "{svg}");
        let svg = draw(
            Chart::Lines,
            &quantiles,
            &Options {
                max_panels: 1,
                ..options.clone()
            },
        );
        assert!(svg.contains("ttfb_us q0.1 per 1h") && svg.contains("<title>b "));
        let svg = draw(
            Chart::Bands,
            &quantiles,
            &Options {
                max_panels: 1,
                ..options
            },
        );
        assert!(!svg.contains("— b"), "only the first panel");
        assert!(svg.contains("(first 1 of 2 groups) — a"), "{svg}");

        let rainbow = json!({
            "table": "probe_http", "category": "error", "every": "1h",
            "series": [{"group": {}, "buckets": [
                {"time": "2023-11-14T22:00:00Z", "shares": {"ok": 0.75, "RESET": 0.25}}]}]
        });
        let svg = draw(Chart::Rainbow, &rainbow, &Options::default());
        assert!(svg.contains("error of probe_http per 1h") && svg.contains("RESET 25 %"));

        let utilisation = json!({
            "field": "tx", "node": "host", "window": "1h", "peak_window": "30days",
            "roles": [{"role": "edge", "utilisation_cdf": [{"value": 0.5, "fraction": 1.0}],
                       "balance_cdf": [{"value": 1.0, "fraction": 1.0}]}]
        });
        let svg = draw(Chart::Utilisation, &utilisation, &Options::default());
        assert!(svg.contains("utilisation of tx per host") && svg.contains("edge: 100 % ≤ 0.5"));
        let svg = draw(Chart::Balance, &utilisation, &Options::default());
        assert!(svg.contains("edge: 100 % ≤ 1<"));

        for chart in Chart::ALL {
            assert_eq!(Chart::from_name(chart.name()), Some(chart));
            let svg = draw(chart, &json!({}), &Options::default());
            assert!(svg.contains(">no data</text>"), "{chart:?}: {svg}");
        }
    }
}
