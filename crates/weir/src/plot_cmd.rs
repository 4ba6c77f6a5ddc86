//! `weir plot cdf|bands|rainbow … -o FILE.svg|FILE.png`: asks a server's
//! analytics API and draws the answer with `charts::analytics`, as the
//! dashboard does, as SVG or rendered to PNG at twice its size.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use serde_json::Value;

/// Which chart.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum Chart {
    /// The CDF of a field per group (/api/v1/cdf).
    Cdf,
    /// Quantile bands over time, like SmokePing (/api/v1/quantiles; a panel per group).
    Bands,
    /// The share of each failure class over time (/api/v1/rainbow; a panel per group).
    Rainbow,
}

impl From<Chart> for charts::analytics::Chart {
    fn from(chart: Chart) -> Self {
        match chart {
            Chart::Cdf => charts::analytics::Chart::Cdf,
            Chart::Bands => charts::analytics::Chart::Bands,
            Chart::Rainbow => charts::analytics::Chart::Rainbow,
        }
    }
}

/// `weir plot`'s arguments.
#[derive(Debug, Args)]
pub(crate) struct PlotArgs {
    /// What to draw.
    chart: Chart,
    /// The server.
    #[arg(long, default_value = "http://127.0.0.1:8086")]
    url: String,
    /// A read token for the database.
    #[arg(long, env = "WEIR_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// The database.
    #[arg(long)]
    db: String,
    /// The table (measurement).
    #[arg(long)]
    table: String,
    /// The field (cdf and bands).
    #[arg(long)]
    field: Option<String>,
    /// Keep rows whose tag has this value (TAG=VALUE, repeatable).
    #[arg(long = "where", value_name = "TAG=VALUE")]
    filters: Vec<String>,
    /// Group by these comma-separated tags or derived dimensions.
    #[arg(long)]
    group_by: Option<String>,
    /// From (RFC 3339 or Unix seconds).
    #[arg(long)]
    start: Option<String>,
    /// Until (RFC 3339 or Unix seconds).
    #[arg(long)]
    end: Option<String>,
    /// Time bucket of bands and rainbow, such as 1h.
    #[arg(long, default_value = "1h")]
    every: String,
    /// Points of a CDF.
    #[arg(long, default_value_t = 100)]
    points: u32,
    /// The tag holding the failure class (rainbow).
    #[arg(long, default_value = "error")]
    category: String,
    /// The chart's title (default: what it shows).
    #[arg(long)]
    title: Option<String>,
    /// Where to write the chart: SVG, or PNG (1520 × 840 pixels, text in
    /// a system font) by the file name's ending.
    #[arg(short = 'o', long, value_name = "FILE.svg|FILE.png")]
    output: PathBuf,
}

/// PNGs are rendered at twice the charts' size, for sharp text on
/// high-density screens and in print.
const PNG_SCALE: f32 = 2.0;

/// Runs `weir plot`.
pub(crate) fn run(args: PlotArgs) -> Result<()> {
    // Fonts are found before the server is asked, so that a machine
    // without any fails at once.
    let rasterizer = match args.output.extension().and_then(|e| e.to_str()) {
        Some("svg") => None,
        Some("png") => Some(charts::png::Rasterizer::with_system_fonts()?),
        _ => bail!("-o: the file name must end in .svg or .png"),
    };
    let (path, extra) = match args.chart {
        Chart::Cdf => ("cdf", vec![("points", args.points.to_string())]),
        Chart::Bands => ("quantiles", vec![("every", args.every.clone())]),
        Chart::Rainbow => (
            "rainbow",
            vec![
                ("every", args.every.clone()),
                ("category", args.category.clone()),
            ],
        ),
    };
    let mut query: Vec<(&str, String)> =
        vec![("db", args.db.clone()), ("table", args.table.clone())];
    if let Some(f) = &args.field {
        query.push(("field", f.clone()));
    }
    for w in &args.filters {
        query.push(("where", w.clone()));
    }
    for (k, v) in [
        ("group_by", &args.group_by),
        ("start", &args.start),
        ("end", &args.end),
    ] {
        if let Some(v) = v {
            query.push((k, v.clone()));
        }
    }
    query.extend(extra);
    let url = format!("{}/api/v1/{path}", args.url.trim_end_matches('/'));
    let client = reqwest::blocking::Client::new();
    let mut request = client.get(&url).query(&query);
    if let Some(t) = &args.token {
        request = request.header("Authorization", format!("Token {t}"));
    }
    let response = request.send().with_context(|| format!("asking {url}"))?;
    let status = response.status();
    let body = response.text().context("reading the answer")?;
    if !status.is_success() {
        bail!("the server answered {status}: {}", body.trim());
    }
    let answer: Value = serde_json::from_str(&body).context("the answer is not JSON")?;
    let options = charts::analytics::Options {
        title: args.title,
        ..charts::analytics::Options::default()
    };
    let svg = charts::analytics::draw(args.chart.into(), &answer, &options);
    let bytes = match &rasterizer {
        Some(r) => r.render(&svg, PNG_SCALE)?,
        None => svg.into_bytes(),
    };
    std::fs::write(&args.output, bytes)
        .with_context(|| format!("writing {}", args.output.display()))?;
    eprintln!("weir plot: wrote {}", args.output.display());
    Ok(())
}
