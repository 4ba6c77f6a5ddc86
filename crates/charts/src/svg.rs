//! The drawing surface every chart shares: an SVG of the frame's size with a
//! plot area, linear axes with round ticks, a legend, a "no data" notice,
//! and escaped text.

use std::fmt::Write as _;

use crate::Frame;

/// Margins around the plot area, in SVG user units; the right one holds
/// the legend.
const LEFT: f64 = 70.0;
const RIGHT: f64 = 170.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 50.0;
/// Height of one legend entry.
const LEGEND_LINE: f64 = 18.0;
/// Characters of a legend entry shown before it is cut (the whole name is
/// its hover title).
const LEGEND_CHARS: usize = 22;

/// Colours for series, in order (a colour-blind-safe palette).
pub(crate) const PALETTE: [&str; 8] = [
    "#0072b2", "#e69f00", "#009e73", "#d55e00", "#cc79a7", "#56b4e9", "#f0e442", "#000000",
];

/// Text for SVG content and attributes.
pub(crate) fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A linear scale from a data range onto a pixel range.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scale {
    lo: f64,
    hi: f64,
    from: f64,
    to: f64,
}

impl Scale {
    /// `lo..hi` (widened when empty) onto `from..to`.
    pub(crate) fn new(lo: f64, hi: f64, from: f64, to: f64) -> Scale {
        let (lo, hi) = if lo.is_finite() && hi.is_finite() && hi > lo {
            (lo, hi)
        } else if lo.is_finite() {
            (lo - 1.0, lo + 1.0)
        } else {
            (0.0, 1.0)
        };
        Scale { lo, hi, from, to }
    }

    pub(crate) fn at(&self, v: f64) -> f64 {
        self.from + (v - self.lo) / (self.hi - self.lo) * (self.to - self.from)
    }

    /// About `n` round tick values within the range.
    pub(crate) fn ticks(&self, n: usize) -> Vec<f64> {
        let raw = (self.hi - self.lo) / n.max(1) as f64;
        let magnitude = 10f64.powf(raw.log10().floor());
        let step = [1.0, 2.0, 5.0, 10.0]
            .iter()
            .map(|m| m * magnitude)
            .find(|s| *s >= raw)
            .unwrap_or(magnitude * 10.0);
        let mut v = (self.lo / step).ceil() * step;
        let mut out = Vec::new();
        while v <= self.hi + step * 1e-9 && out.len() < 50 {
            out.push(v);
            v += step;
        }
        out
    }
}

/// Steps of time ticks, in seconds: minutes, hours, days, weeks, 30 days.
const TIME_STEPS: [f64; 17] = [
    1.0,
    10.0,
    60.0,
    300.0,
    600.0,
    900.0,
    1800.0,
    3600.0,
    7200.0,
    10_800.0,
    21_600.0,
    43_200.0,
    86_400.0,
    172_800.0,
    604_800.0,
    1_209_600.0,
    2_592_000.0,
];

impl Scale {
    /// About `n` ticks over a range of Unix seconds, on round UTC times
    /// (whole minutes, hours, midnights), labelled by date once the step is
    /// a day or more.
    pub(crate) fn time_ticks(&self, n: usize) -> Vec<(f64, String)> {
        let raw = (self.hi - self.lo) / n.max(1) as f64;
        let step = TIME_STEPS
            .iter()
            .copied()
            .find(|s| *s >= raw)
            .unwrap_or(TIME_STEPS[TIME_STEPS.len() - 1]);
        let mut t = (self.lo / step).ceil() * step;
        let mut out = Vec::new();
        while t <= self.hi && out.len() < 50 {
            let text = crate::utc(t);
            let text = if step >= 86_400.0 {
                text[..10].to_owned()
            } else {
                text[5..].to_owned()
            };
            out.push((t, text));
            t += step;
        }
        out
    }
}

/// A number as a tick label: short, without float noise.
pub(crate) fn label(v: f64) -> String {
    let a = v.abs();
    if a >= 1e9 {
        format!("{:.3}G", v / 1e9)
    } else if a >= 1e6 {
        format!("{:.3}M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.1}k", v / 1e3)
    } else if a >= 100.0 || v == v.trunc() {
        format!("{v:.0}")
    } else {
        let text = format!("{v:.3}");
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
    .replace(".000", "")
}

/// An SVG document being drawn.
#[derive(Debug)]
pub(crate) struct Canvas {
    out: String,
    width: f64,
    height: f64,
    legend: Vec<(String, String)>,
}

impl Canvas {
    /// A canvas of the frame's size, with its title.
    pub(crate) fn new(frame: &Frame) -> Canvas {
        let (width, height) = (frame.width, frame.height);
        let mut out = String::new();
        let _ = write!(
            out,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {width} {height}\" width=\"{width}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"12\">\
             <rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\
             <text x=\"{LEFT}\" y=\"24\" font-size=\"15\" font-weight=\"bold\">{}</text>",
            escape(&frame.title)
        );
        Canvas {
            out,
            width,
            height,
            legend: Vec::new(),
        }
    }

    /// The plot area's x pixel range.
    pub(crate) fn x_range(&self) -> (f64, f64) {
        (LEFT, self.width - RIGHT)
    }

    /// The plot area's y pixel range (bottom to top).
    pub(crate) fn y_range(&self) -> (f64, f64) {
        (self.height - BOTTOM, TOP)
    }

    /// Appends raw SVG.
    pub(crate) fn push(&mut self, svg: &str) {
        self.out.push_str(svg);
    }

    /// Axes with ticks: `x_ticks` are the x values with their labels.
    pub(crate) fn axes(
        &mut self,
        x: &Scale,
        y: &Scale,
        x_ticks: &[(f64, String)],
        x_title: &str,
        y_title: &str,
    ) {
        let (x0, x1) = self.x_range();
        let (y0, y1) = self.y_range();
        let mut s = String::new();
        for t in y.ticks(5) {
            let py = y.at(t);
            let _ = write!(
                s,
                "<line x1=\"{x0}\" x2=\"{x1}\" y1=\"{py:.1}\" y2=\"{py:.1}\" stroke=\"#e5e5e5\"/>\
                 <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
                x0 - 6.0,
                py + 4.0,
                escape(&label(t))
            );
        }
        for (t, text) in x_ticks {
            let px = x.at(*t);
            let _ = write!(
                s,
                "<line x1=\"{px:.1}\" x2=\"{px:.1}\" y1=\"{y0}\" y2=\"{:.1}\" stroke=\"#888\"/>\
                 <text x=\"{px:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
                y0 + 5.0,
                y0 + 18.0,
                escape(text)
            );
        }
        let _ = write!(
            s,
            "<line x1=\"{x0}\" x2=\"{x1}\" y1=\"{y0}\" y2=\"{y0}\" stroke=\"#333\"/>\
             <line x1=\"{x0}\" x2=\"{x0}\" y1=\"{y0}\" y2=\"{y1}\" stroke=\"#333\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>\
             <text transform=\"translate(16 {:.1}) rotate(-90)\" text-anchor=\"middle\">{}</text>",
            (x0 + x1) / 2.0,
            self.height - 10.0,
            escape(x_title),
            (y0 + y1) / 2.0,
            escape(y_title)
        );
        self.out.push_str(&s);
    }

    /// A notice across the plot area that there is nothing to draw, and
    /// why (`detail`, a smaller line under it, may be empty).
    pub(crate) fn no_data(&mut self, detail: &str) {
        let (x0, x1) = self.x_range();
        let (y0, y1) = self.y_range();
        let (cx, cy) = ((x0 + x1) / 2.0, (y0 + y1) / 2.0);
        let _ = write!(
            self.out,
            "<text class=\"weir-no-data\" x=\"{cx:.1}\" y=\"{cy:.1}\" text-anchor=\"middle\" font-size=\"16\" fill=\"#666\">no data</text>"
        );
        if !detail.is_empty() {
            let _ = write!(
                self.out,
                "<text x=\"{cx:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#666\">{}</text>",
                cy + 20.0,
                escape(detail)
            );
        }
    }

    /// Adds a legend entry.
    pub(crate) fn legend(&mut self, name: &str, colour: &str) {
        self.legend.push((name.to_owned(), colour.to_owned()));
    }

    /// The finished document.
    pub(crate) fn finish(mut self) -> String {
        let x = self.width - RIGHT + 14.0;
        let room = ((self.height - TOP - BOTTOM) / LEGEND_LINE)
            .floor()
            .max(1.0) as usize;
        let shown = self.legend.len().min(room);
        for (i, (name, colour)) in self.legend.iter().enumerate().take(shown) {
            let y = TOP + 8.0 + i as f64 * LEGEND_LINE;
            let text = if i + 1 == shown && shown < self.legend.len() {
                format!("… {} more", self.legend.len() - i)
            } else if name.chars().count() > LEGEND_CHARS {
                let cut: String = name.chars().take(LEGEND_CHARS - 1).collect();
                format!("{cut}…")
            } else {
                name.clone()
            };
            let _ = write!(
                self.out,
                "<g><title>{}</title><rect x=\"{x}\" y=\"{:.1}\" width=\"12\" height=\"12\" fill=\"{colour}\"/>\
                 <text x=\"{:.1}\" y=\"{:.1}\">{}</text></g>",
                escape(name),
                y - 10.0,
                x + 18.0,
                y,
                escape(&text)
            );
        }
        self.out.push_str("</svg>\n");
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_inside() {
        let s = Scale::new(0.0, 97.0, 0.0, 100.0);
        assert_eq!(s.ticks(5), [0.0, 20.0, 40.0, 60.0, 80.0]);
        let s = Scale::new(0.13, 0.91, 0.0, 1.0);
        assert!(s.ticks(4).iter().all(|t| (0.13..=0.91).contains(t)));
        assert_eq!(label(2500.0), "2500");
        assert_eq!(label(25_000.0), "25.0k");
        assert_eq!(escape("<a&b>"), "&lt;a&amp;b&gt;");
        assert_eq!(label(0.8), "0.8");
        assert_eq!(label(0.125), "0.125");
        let empty = Scale::new(5.0, 5.0, 0.0, 10.0);
        assert!(empty.at(5.0).is_finite());
        let day = Scale::new(1_700_000_000.0, 1_700_086_400.0, 0.0, 1.0);
        let ticks = day.time_ticks(4);
        assert_eq!(ticks[0], (1_700_006_400.0, "11-15 00:00".to_owned()));
        assert!(ticks.windows(2).all(|w| w[1].0 - w[0].0 == 21_600.0));
        let month = Scale::new(1_700_000_000.0, 1_702_592_000.0, 0.0, 1.0);
        let ticks = month.time_ticks(4);
        assert!(
            ticks.len() >= 2 && ticks.iter().all(|t| t.1.len() == 10),
            "{ticks:?}"
        );
    }

    #[test]
    fn a_crowded_legend_is_cut_with_a_count() {
        let mut c = Canvas::new(&Frame::new("t").with_size(600.0, 200.0));
        for i in 0..30 {
            c.legend(&format!("a very long group name number {i}"), "#000");
        }
        let svg = c.finish();
        assert!(svg.contains("more</text>"), "{svg}");
        assert!(svg.contains("<title>a very long group name number 0</title>"));
        assert!(svg.contains(">a very long group nam…</text>"), "{svg}");
    }
}
