//! weir's charts as self-contained SVG: the CDF of a measurement per group,
//! quantile bands over time drawn like SmokePing's smoke, and the failure
//! rainbow. Every point, band and bar carries a `<title>`, which browsers
//! show on hover. No fonts, no files, no dependencies: `weir plot` writes
//! them for reports, and the dashboard is to render them on the server.
//! With the feature `png`, [`png::Rasterizer`] renders them as PNG (resvg,
//! text in a system font).
//!
//! ```
//! let svg = charts::cdf("TTFB", "µs", &[charts::CdfSeries {
//!     name: "IR".into(),
//!     points: vec![(100.0, 0.5), (250.0, 1.0)],
//! }]);
//! assert!(svg.starts_with("<svg") && svg.contains("<title>IR: 50 % ≤ 100</title>"));
//! ```

#[cfg(feature = "png")]
pub mod png;
mod svg;

use std::fmt::Write as _;

use svg::{escape, label, Canvas, Scale, PALETTE};

/// One group's CDF: `(value, fraction)` points, fractions ascending to 1.
#[derive(Debug, Clone, PartialEq)]
pub struct CdfSeries {
    /// The group, as the legend shows it.
    pub name: String,
    /// The points.
    pub points: Vec<(f64, f64)>,
}

/// The CDFs of several groups on one chart (step lines).
pub fn cdf(title: &str, unit: &str, series: &[CdfSeries]) -> String {
    let values = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .filter(|v| v.is_finite());
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
        (a.min(v), b.max(v))
    });
    let (x0, x1) = Canvas::x_range();
    let (y0, y1) = Canvas::y_range();
    let x = Scale::new(lo, hi, x0, x1);
    let y = Scale::new(0.0, 1.0, y0, y1);
    let mut c = Canvas::new(title);
    c.axes(&x, &y, &x.ticks(6), &|v| label(v), unit, "fraction ≤ value");
    for (i, s) in series.iter().enumerate() {
        let colour = PALETTE[i % PALETTE.len()];
        let mut path = String::new();
        let mut previous = 0.0;
        for (k, &(v, f)) in s.points.iter().enumerate() {
            if !(v.is_finite() && f.is_finite()) {
                continue;
            }
            let (px, py) = (x.at(v), y.at(f));
            if k == 0 {
                let _ = write!(path, "M{px:.1},{:.1}", y.at(previous));
            } else {
                let _ = write!(path, "H{px:.1}");
            }
            let _ = write!(path, "V{py:.1}");
            previous = f;
        }
        c.push(&format!(
            "<path d=\"{path}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\"/>"
        ));
        // Hover marks, thinned to at most 100 per series.
        let every = s.points.len().div_ceil(100).max(1);
        for &(v, f) in s.points.iter().step_by(every) {
            if v.is_finite() && f.is_finite() {
                c.push(&format!(
                    "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{colour}\"><title>{}: {} % ≤ {}</title></circle>",
                    x.at(v),
                    y.at(f),
                    escape(&s.name),
                    label(f * 100.0),
                    escape(&label(v))
                ));
            }
        }
        c.legend(&s.name, colour);
    }
    c.finish()
}

/// One time bucket of quantile bands: its start (Unix seconds) and the
/// value at each quantile of [`BandsSeries::qs`] (`None` where empty).
#[derive(Debug, Clone, PartialEq)]
pub struct Band {
    /// Start of the bucket, Unix seconds.
    pub time: f64,
    /// Values, one per quantile.
    pub values: Vec<Option<f64>>,
}

/// Quantile bands of one group over time.
#[derive(Debug, Clone, PartialEq)]
pub struct BandsSeries {
    /// The group.
    pub name: String,
    /// The quantiles, ascending.
    pub qs: Vec<f64>,
    /// The buckets, in time order.
    pub buckets: Vec<Band>,
}

/// `YYYY-MM-DD HH:MM` (UTC) for Unix seconds.
pub fn utc(secs: f64) -> String {
    let secs = secs.floor() as i64;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil from days (H. Hinnant).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60
    )
}

/// Quantile bands over time, drawn like SmokePing's smoke: each pair of
/// symmetric quantiles (5 % and 95 %, 10 % and 90 % …) a band, darker toward
/// the middle, and the median a line.
pub fn bands(title: &str, unit: &str, series: &BandsSeries) -> String {
    let times: Vec<f64> = series.buckets.iter().map(|b| b.time).collect();
    let (t_lo, t_hi) = times
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &t| {
            (a.min(t), b.max(t))
        });
    let all = series
        .buckets
        .iter()
        .flat_map(|b| b.values.iter().flatten().copied());
    let (v_lo, v_hi) = all.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
        (a.min(v), b.max(v))
    });
    let (x0, x1) = Canvas::x_range();
    let (y0, y1) = Canvas::y_range();
    let x = Scale::new(t_lo, t_hi, x0, x1);
    let y = Scale::new(v_lo.min(0.0), v_hi, y0, y1);
    let mut c = Canvas::new(title);
    let ticks = x.ticks(4);
    c.axes(&x, &y, &ticks, &|t| utc(t), "time (UTC)", unit);
    let n = series.qs.len();
    let colour = PALETTE[0];
    for i in 0..n / 2 {
        let (lo_q, hi_q) = (i, n - 1 - i);
        let mut upper = String::new();
        let mut lower = Vec::new();
        for b in &series.buckets {
            if let (Some(Some(lo)), Some(Some(hi))) = (b.values.get(lo_q), b.values.get(hi_q)) {
                let _ = write!(upper, "{:.1},{:.1} ", x.at(b.time), y.at(*hi));
                lower.push(format!("{:.1},{:.1}", x.at(b.time), y.at(*lo)));
            }
        }
        lower.reverse();
        let opacity = 0.08 + 0.5 * (i as f64 + 1.0) / (n / 2) as f64 * 0.6;
        c.push(&format!(
            "<polygon points=\"{upper}{}\" fill=\"{colour}\" fill-opacity=\"{opacity:.2}\" stroke=\"none\"><title>{} %–{} %</title></polygon>",
            lower.join(" "),
            label(series.qs[lo_q] * 100.0),
            label(series.qs[hi_q] * 100.0),
        ));
    }
    // The median (or the quantile nearest to it).
    if let Some(mid) = (0..n).min_by(|&a, &b| {
        (series.qs[a] - 0.5)
            .abs()
            .total_cmp(&(series.qs[b] - 0.5).abs())
    }) {
        let mut line = String::new();
        for b in &series.buckets {
            if let Some(Some(v)) = b.values.get(mid) {
                let _ = write!(line, "{:.1},{:.1} ", x.at(b.time), y.at(*v));
                c.push(&format!(
                    "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"2.5\" fill=\"#111\"><title>{}: q{} = {}</title></circle>",
                    x.at(b.time),
                    y.at(*v),
                    utc(b.time),
                    series.qs[mid],
                    escape(&label(*v))
                ));
            }
        }
        c.push(&format!(
            "<polyline points=\"{line}\" fill=\"none\" stroke=\"#111\" stroke-width=\"1.5\"/>"
        ));
        c.legend(&format!("{} median", series.name), "#111");
    }
    c.legend(&format!("{} bands", series.name), colour);
    c.finish()
}

/// One bucket of the failure rainbow: its start and each category's share.
#[derive(Debug, Clone, PartialEq)]
pub struct RainbowBucket {
    /// Start of the bucket, Unix seconds.
    pub time: f64,
    /// (category, share of the bucket's rows).
    pub shares: Vec<(String, f64)>,
}

/// The failure rainbow: per bucket, a bar stacked by category share; `ok`
/// at the bottom in grey, the classes above in a fixed colour each.
pub fn rainbow(title: &str, buckets: &[RainbowBucket]) -> String {
    // Categories by overall share, ok first.
    let mut categories: Vec<(String, f64)> = Vec::new();
    for b in buckets {
        for (c, s) in &b.shares {
            match categories.iter_mut().find(|(k, _)| k == c) {
                Some(e) => e.1 += s,
                None => categories.push((c.clone(), *s)),
            }
        }
    }
    categories.sort_by(|a, b| (b.0 == "ok").cmp(&(a.0 == "ok")).then(b.1.total_cmp(&a.1)));
    let colour = |c: &str| -> &'static str {
        if c == "ok" {
            return "#d9d9d9";
        }
        let i = categories
            .iter()
            .filter(|(k, _)| k != "ok")
            .position(|(k, _)| k == c)
            .unwrap_or(0);
        PALETTE[i % PALETTE.len()]
    };
    let (x0, x1) = Canvas::x_range();
    let (y0, y1) = Canvas::y_range();
    let (t_lo, t_hi) = buckets
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), k| {
            (a.min(k.time), b.max(k.time))
        });
    let width = ((x1 - x0) / buckets.len().max(1) as f64).max(1.0);
    let x = Scale::new(t_lo, t_hi, x0 + width / 2.0, x1 - width / 2.0);
    let y = Scale::new(0.0, 1.0, y0, y1);
    let mut c = Canvas::new(title);
    c.axes(
        &x,
        &y,
        &x.ticks(4),
        &|t| utc(t),
        "time (UTC)",
        "share of measurements",
    );
    for b in buckets {
        let mut base = 0.0;
        for (cat, _) in &categories {
            let Some(share) = b.shares.iter().find(|(k, _)| k == cat).map(|(_, s)| *s) else {
                continue;
            };
            let (top, bottom) = (y.at(base + share), y.at(base));
            c.push(&format!(
                "<rect x=\"{:.1}\" y=\"{top:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{}\"><title>{}: {} {} %</title></rect>",
                x.at(b.time) - width * 0.45,
                width * 0.9,
                (bottom - top).max(0.0),
                colour(cat),
                utc(b.time),
                escape(cat),
                label(share * 100.0)
            ));
            base += share;
        }
    }
    for (cat, _) in &categories {
        c.legend(cat, colour(cat));
    }
    c.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0.0), "1970-01-01 00:00");
        assert_eq!(utc(1_700_000_000.0), "2023-11-14 22:13");
        assert_eq!(utc(951_782_400.0), "2000-02-29 00:00");
    }

    #[test]
    fn charts_are_svg_with_hover_titles() {
        let b = bands(
            "TTLB",
            "µs",
            &BandsSeries {
                name: "IR".into(),
                qs: vec![0.05, 0.5, 0.95],
                buckets: vec![
                    Band {
                        time: 0.0,
                        values: vec![Some(1.0), Some(2.0), Some(5.0)],
                    },
                    Band {
                        time: 3600.0,
                        values: vec![Some(1.5), Some(2.5), None],
                    },
                ],
            },
        );
        assert!(b.starts_with("<svg") && b.ends_with("</svg>\n"));
        assert!(b.contains("<polygon") && b.contains("q0.5 = 2.5"));
        let r = rainbow(
            "failures",
            &[RainbowBucket {
                time: 0.0,
                shares: vec![("ok".into(), 0.9), ("TIMEOUT".into(), 0.1)],
            }],
        );
        assert!(r.contains("TIMEOUT 10 %") && r.contains("#d9d9d9"));
        let empty = cdf("nothing", "µs", &[]);
        assert!(empty.contains("</svg>") && !empty.contains("NaN"));
    }
}
