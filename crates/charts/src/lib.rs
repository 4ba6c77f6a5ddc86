//! weir's charts as self-contained SVG: the CDF of a measurement per group,
//! quantile bands over time drawn like SmokePing's smoke, lines over time,
//! and the failure rainbow. Every point, band and bar carries a `<title>`,
//! which browsers show on hover. No fonts, no files: `weir plot` writes
//! them for reports and the server's dashboard renders them on request.
//! [`analytics`] turns the answers of the analytics API into these charts.
//! With the feature `png`, [`png::Rasterizer`] renders them as PNG (resvg,
//! text in a system font).
//!
//! ```
//! let svg = charts::cdf(&charts::Frame::new("TTFB"), "µs", &[charts::CdfSeries {
//!     name: "IR".into(),
//!     points: vec![(100.0, 0.5), (250.0, 1.0)],
//! }]);
//! assert!(svg.starts_with("<svg") && svg.contains("<title>IR: 50 % ≤ 100</title>"));
//! ```

pub mod analytics;
#[cfg(feature = "png")]
pub mod png;
mod svg;
mod time;

use std::fmt::Write as _;

use svg::{escape, label, Canvas, Scale, PALETTE};
pub use time::utc;

/// A chart's title and size in SVG user units (pixels at 100 %).
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    /// The title drawn at the top.
    pub title: String,
    /// Width, from [`Frame::MIN_WIDTH`] to [`Frame::MAX_WIDTH`].
    pub width: f64,
    /// Height (of each panel, for charts with a panel per group), from
    /// [`Frame::MIN_HEIGHT`] to [`Frame::MAX_HEIGHT`].
    pub height: f64,
    /// The time range (Unix seconds) a chart over time spans, so that
    /// missing data shows as such; by default its data's.
    pub span: Option<(f64, f64)>,
}

impl Frame {
    /// The default width.
    pub const WIDTH: f64 = 760.0;
    /// The default height.
    pub const HEIGHT: f64 = 420.0;
    /// The narrowest frame that leaves room for the plot beside the legend.
    pub const MIN_WIDTH: f64 = 400.0;
    /// The widest frame.
    pub const MAX_WIDTH: f64 = 4000.0;
    /// The lowest frame.
    pub const MIN_HEIGHT: f64 = 200.0;
    /// The highest frame.
    pub const MAX_HEIGHT: f64 = 2000.0;

    /// A frame of the default size.
    pub fn new(title: impl Into<String>) -> Frame {
        Frame {
            title: title.into(),
            width: Self::WIDTH,
            height: Self::HEIGHT,
            span: None,
        }
    }

    /// The same frame over a time range (ignored unless `start < end`).
    pub fn with_span(self, start: f64, end: f64) -> Frame {
        Frame {
            span: (start.is_finite() && end.is_finite() && start < end).then_some((start, end)),
            ..self
        }
    }

    /// The same frame at another size, held within the bounds.
    pub fn with_size(self, width: f64, height: f64) -> Frame {
        let clamp = |v: f64, lo: f64, hi: f64, default: f64| {
            if v.is_finite() {
                v.clamp(lo, hi)
            } else {
                default
            }
        };
        Frame {
            width: clamp(width, Self::MIN_WIDTH, Self::MAX_WIDTH, Self::WIDTH),
            height: clamp(height, Self::MIN_HEIGHT, Self::MAX_HEIGHT, Self::HEIGHT),
            ..self
        }
    }

    /// The same size with another title.
    fn titled(&self, title: String) -> Frame {
        Frame {
            title,
            ..self.clone()
        }
    }
}

/// A chart with nothing to draw: the frame, and "no data" with the reason
/// (`detail`, may be empty).
pub fn empty(frame: &Frame, detail: &str) -> String {
    let mut c = Canvas::new(frame);
    c.no_data(detail);
    c.finish()
}

/// One group's CDF: `(value, fraction)` points, fractions ascending to 1.
#[derive(Debug, Clone, PartialEq)]
pub struct CdfSeries {
    /// The group, as the legend shows it.
    pub name: String,
    /// The points.
    pub points: Vec<(f64, f64)>,
}

/// The CDFs of several groups on one chart (step lines).
pub fn cdf(frame: &Frame, unit: &str, series: &[CdfSeries]) -> String {
    let values = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .filter(|v| v.is_finite());
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
        (a.min(v), b.max(v))
    });
    let mut c = Canvas::new(frame);
    let (x0, x1) = c.x_range();
    let (y0, y1) = c.y_range();
    let x = Scale::new(lo, hi, x0, x1);
    let y = Scale::new(0.0, 1.0, y0, y1);
    let ticks: Vec<(f64, String)> = x.ticks(6).into_iter().map(|v| (v, label(v))).collect();
    c.axes(&x, &y, &ticks, unit, "fraction ≤ value");
    if !lo.is_finite() {
        c.no_data("");
        return c.finish();
    }
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

/// The smallest and largest finite value of an iterator, if any.
fn extent(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
    lo.is_finite().then_some((lo, hi))
}

/// A canvas with time and value axes over `times` (or the frame's span)
/// and `values` (from zero), and their scales; the finished "no data"
/// chart if there are no values.
fn time_canvas(
    frame: &Frame,
    unit: &str,
    times: Option<(f64, f64)>,
    values: Option<(f64, f64)>,
) -> Result<(Canvas, Scale, Scale), String> {
    let mut c = Canvas::new(frame);
    let (x0, x1) = c.x_range();
    let (y0, y1) = c.y_range();
    let (t_lo, t_hi) = frame.span.or(times).unwrap_or((f64::NAN, f64::NAN));
    let (v_lo, v_hi) = values.unwrap_or((0.0, 1.0));
    let x = Scale::new(t_lo, t_hi, x0, x1);
    let y = Scale::new(v_lo.min(0.0), v_hi, y0, y1);
    c.axes(&x, &y, &x.time_ticks(4), "time (UTC)", unit);
    if values.is_none() {
        c.no_data("");
        return Err(c.finish());
    }
    Ok((c, x, y))
}

/// Quantile bands over time, drawn like SmokePing's smoke: each pair of
/// symmetric quantiles (5 % and 95 %, 10 % and 90 % …) a band, darker toward
/// the middle, and the median a line.
pub fn bands(frame: &Frame, unit: &str, series: &BandsSeries) -> String {
    let times = extent(series.buckets.iter().map(|b| b.time));
    let values = extent(
        series
            .buckets
            .iter()
            .flat_map(|b| b.values.iter().flatten().copied()),
    );
    let (mut c, x, y) = match time_canvas(frame, unit, times, values) {
        Ok(drawn) => drawn,
        Err(no_data) => return no_data,
    };
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

/// One group's values over time: `(bucket start in Unix seconds, value)`,
/// `None` where the bucket is empty (the line has a gap there).
#[derive(Debug, Clone, PartialEq)]
pub struct LineSeries {
    /// The group.
    pub name: String,
    /// The points, in time order.
    pub points: Vec<(f64, Option<f64>)>,
}

/// Several groups' values over time, a line each.
pub fn lines(frame: &Frame, unit: &str, series: &[LineSeries]) -> String {
    let times = extent(series.iter().flat_map(|s| s.points.iter().map(|p| p.0)));
    let values = extent(
        series
            .iter()
            .flat_map(|s| s.points.iter().filter_map(|p| p.1)),
    );
    let (mut c, x, y) = match time_canvas(frame, unit, times, values) {
        Ok(drawn) => drawn,
        Err(no_data) => return no_data,
    };
    for (i, s) in series.iter().enumerate() {
        let colour = PALETTE[i % PALETTE.len()];
        let mut path = String::new();
        let mut pen_down = false;
        for &(t, v) in &s.points {
            match v.filter(|v| v.is_finite()) {
                Some(v) => {
                    let _ = write!(
                        path,
                        "{}{:.1},{:.1}",
                        if pen_down { "L" } else { "M" },
                        x.at(t),
                        y.at(v)
                    );
                    pen_down = true;
                }
                None => pen_down = false,
            }
        }
        c.push(&format!(
            "<path d=\"{path}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"1.5\"/>"
        ));
        let every = s.points.len().div_ceil(150).max(1);
        for &(t, v) in s.points.iter().step_by(every) {
            if let Some(v) = v.filter(|v| v.is_finite()) {
                c.push(&format!(
                    "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"2.5\" fill=\"{colour}\"><title>{} {}: {}</title></circle>",
                    x.at(t),
                    y.at(v),
                    escape(&s.name),
                    utc(t),
                    escape(&label(v))
                ));
            }
        }
        c.legend(&s.name, colour);
    }
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

/// The categories of some buckets by overall share, `ok` first: the order
/// they stack in and take their colours by.
fn categories<'a>(buckets: impl Iterator<Item = &'a RainbowBucket>) -> Vec<String> {
    let mut totals: Vec<(String, f64)> = Vec::new();
    for b in buckets {
        for (c, s) in &b.shares {
            match totals.iter_mut().find(|(k, _)| k == c) {
                Some(e) => e.1 += s,
                None => totals.push((c.clone(), *s)),
            }
        }
    }
    totals.sort_by(|a, b| (b.0 == "ok").cmp(&(a.0 == "ok")).then(b.1.total_cmp(&a.1)));
    totals.into_iter().map(|(c, _)| c).collect()
}

/// The failure rainbow: per bucket, a bar stacked by category share; `ok`
/// at the bottom in grey, the classes above in a fixed colour each.
pub fn rainbow(frame: &Frame, buckets: &[RainbowBucket]) -> String {
    rainbow_with(frame, buckets, &categories(buckets.iter()))
}

fn rainbow_with(frame: &Frame, buckets: &[RainbowBucket], categories: &[String]) -> String {
    let colour = |c: &str| -> &'static str {
        if c == "ok" {
            return "#d9d9d9";
        }
        let i = categories
            .iter()
            .filter(|k| *k != "ok")
            .position(|k| k == c)
            .unwrap_or(0);
        PALETTE[i % PALETTE.len()]
    };
    let mut c = Canvas::new(frame);
    let (x0, x1) = c.x_range();
    let (y0, y1) = c.y_range();
    let mut times: Vec<f64> = buckets
        .iter()
        .map(|b| b.time)
        .filter(|t| t.is_finite())
        .collect();
    times.sort_by(f64::total_cmp);
    // A bar spans its bucket: the shortest gap between bucket starts.
    let gap = times
        .windows(2)
        .map(|w| w[1] - w[0])
        .filter(|g| *g > 0.0)
        .fold(f64::INFINITY, f64::min);
    let gap = if gap.is_finite() {
        gap
    } else {
        frame.span.map_or(1.0, |(lo, hi)| (hi - lo) / 60.0)
    };
    let (t_lo, t_hi) = match (frame.span, times.first(), times.last()) {
        (Some(span), _, _) => span,
        (None, Some(lo), Some(hi)) => (*lo, hi + gap),
        _ => (f64::NAN, f64::NAN),
    };
    let x = Scale::new(t_lo, t_hi, x0, x1);
    let y = Scale::new(0.0, 1.0, y0, y1);
    c.axes(
        &x,
        &y,
        &x.time_ticks(4),
        "time (UTC)",
        "share of measurements",
    );
    if buckets.is_empty() {
        c.no_data("");
        return c.finish();
    }
    for b in buckets {
        let (left, right) = (x.at(b.time).max(x0), x.at(b.time + gap).min(x1));
        if right <= left {
            continue;
        }
        let width = ((right - left) * 0.9).max(1.0);
        let mut base = 0.0;
        for cat in categories {
            let Some(share) = b.shares.iter().find(|(k, _)| k == cat).map(|(_, s)| *s) else {
                continue;
            };
            let (top, bottom) = (y.at(base + share), y.at(base));
            c.push(&format!(
                "<rect x=\"{left:.1}\" y=\"{top:.1}\" width=\"{width:.1}\" height=\"{:.1}\" fill=\"{}\"><title>{}: {} {} %</title></rect>",
                (bottom - top).max(0.0),
                colour(cat),
                utc(b.time),
                escape(cat),
                label(share * 100.0)
            ));
            base += share;
        }
    }
    for cat in categories {
        if buckets
            .iter()
            .any(|b| b.shares.iter().any(|(k, _)| k == cat))
        {
            c.legend(cat, colour(cat));
        }
    }
    c.finish()
}

/// One group's rainbow.
#[derive(Debug, Clone, PartialEq)]
pub struct RainbowSeries {
    /// The group.
    pub name: String,
    /// Its buckets, in time order.
    pub buckets: Vec<RainbowBucket>,
}

/// A rainbow per group, one panel each under the other, every class in
/// the same colour in every panel. The frame's height is each panel's.
pub fn rainbows(frame: &Frame, series: &[RainbowSeries]) -> String {
    let order = categories(series.iter().flat_map(|s| s.buckets.iter()));
    let panels: Vec<String> = series
        .iter()
        .map(|s| rainbow_with(&panel_frame(frame, &s.name), &s.buckets, &order))
        .collect();
    stack(frame, panels)
}

/// Quantile bands per group, one panel each under the other. The frame's
/// height is each panel's.
pub fn bands_panels(frame: &Frame, unit: &str, series: &[BandsSeries]) -> String {
    let panels: Vec<String> = series
        .iter()
        .map(|s| bands(&panel_frame(frame, &s.name), unit, s))
        .collect();
    stack(frame, panels)
}

/// A panel's frame: the chart's title with the group's name.
fn panel_frame(frame: &Frame, group: &str) -> Frame {
    if group.is_empty() || group == "all" {
        frame.clone()
    } else {
        frame.titled(format!("{} — {group}", frame.title))
    }
}

/// Panels of the frame's size in one document, each under the previous;
/// none at all is a "no data" chart.
fn stack(frame: &Frame, panels: Vec<String>) -> String {
    match panels.len() {
        0 => return empty(frame, ""),
        1 => return panels.into_iter().next().unwrap_or_default(),
        _ => {}
    }
    let (width, height) = (frame.width, frame.height * panels.len() as f64);
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {width} {height}\" width=\"{width}\" height=\"{height}\">"
    );
    for (i, panel) in panels.iter().enumerate() {
        let _ = write!(
            out,
            "<g transform=\"translate(0 {})\">{}</g>",
            frame.height * i as f64,
            panel.trim_end()
        );
    }
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two_buckets() -> BandsSeries {
        BandsSeries {
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
        }
    }

    #[test]
    fn charts_are_svg_with_hover_titles() {
        let b = bands(&Frame::new("TTLB"), "µs", &two_buckets());
        assert!(b.starts_with("<svg") && b.ends_with("</svg>\n"));
        assert!(b.contains("<polygon") && b.contains("q0.5 = 2.5"));
        let r = rainbow(
            &Frame::new("failures"),
            &[RainbowBucket {
                time: 0.0,
                shares: vec![("ok".into(), 0.9), ("TIMEOUT".into(), 0.1)],
            }],
        );
        assert!(r.contains("TIMEOUT 10 %") && r.contains("#d9d9d9"));
        let l = lines(
            &Frame::new("risk"),
            "%",
            &[LineSeries {
                name: "eth0".into(),
                points: vec![(0.0, Some(10.0)), (60.0, None), (120.0, Some(99.5))],
            }],
        );
        assert!(
            l.contains("<title>eth0 1970-01-01 00:02: 99.5</title>"),
            "{l}"
        );
        assert_eq!(l.matches('M').count(), 2, "a gap lifts the pen: {l}");
    }

    #[test]
    fn nothing_to_draw_says_no_data() {
        for svg in [
            cdf(&Frame::new("nothing"), "µs", &[]),
            bands_panels(&Frame::new("nothing"), "µs", &[]),
            rainbows(&Frame::new("nothing"), &[]),
            lines(&Frame::new("nothing"), "µs", &[]),
            empty(&Frame::new("nothing"), "table \"x\" does not exist"),
        ] {
            assert!(svg.contains(">no data</text>"), "{svg}");
            assert!(svg.ends_with("</svg>\n") && !svg.contains("NaN"), "{svg}");
        }
    }

    #[test]
    fn panels_stack_under_each_other_with_shared_colours() {
        let frame = Frame::new("TTFB").with_size(500.0, 300.0);
        let mut other = two_buckets();
        other.name = "DE".into();
        let svg = bands_panels(&frame, "µs", &[two_buckets(), other]);
        assert!(
            svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 500 600\"")
        );
        assert!(svg.contains("translate(0 300)") && svg.contains("TTFB — DE"));
        let bucket = |class: &str| RainbowBucket {
            time: 0.0,
            shares: vec![("ok".into(), 0.5), (class.into(), 0.5)],
        };
        let svg = rainbows(
            &frame,
            &[
                RainbowSeries {
                    name: "a".into(),
                    buckets: vec![bucket("RESET")],
                },
                RainbowSeries {
                    name: "b".into(),
                    buckets: vec![bucket("TIMEOUT")],
                },
            ],
        );
        // RESET and TIMEOUT tie; each keeps one colour across panels.
        assert_eq!(svg.matches(PALETTE[0]).count(), 2, "{svg}");
        assert_eq!(svg.matches(PALETTE[1]).count(), 2, "{svg}");
        assert_eq!(
            Frame::new("x").with_size(1.0, f64::NAN),
            Frame::new("x").with_size(Frame::MIN_WIDTH, Frame::HEIGHT)
        );
    }
}
