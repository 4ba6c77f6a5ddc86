//! `weir plot cdf|bands|rainbow … -o FILE.svg|FILE.png`: asks a server's
//! analytics API and draws the answer (crate `charts`) for reports, as SVG
//! or rendered to PNG at twice its size.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use serde_json::Value;

/// Which chart.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum Chart {
    /// The CDF of a field per group (/api/v1/cdf).
    Cdf,
    /// Quantile bands over time, like SmokePing (/api/v1/quantiles; the first group).
    Bands,
    /// The share of each failure class over time (/api/v1/rainbow; the first group).
    Rainbow,
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
    let field = args.field.as_deref().unwrap_or(&args.table);
    let svg = match args.chart {
        Chart::Cdf => {
            let title = args.title.unwrap_or_else(|| format!("CDF of {field}"));
            charts::cdf(&title, field, &cdf_series(&answer))
        }
        Chart::Bands => {
            let title = args
                .title
                .unwrap_or_else(|| format!("{field} quantiles per {}", args.every));
            charts::bands(&title, field, &bands_series(&answer)?)
        }
        Chart::Rainbow => {
            let title = args.title.unwrap_or_else(|| {
                format!("{} of {} per {}", args.category, args.table, args.every)
            });
            charts::rainbow(&title, &rainbow_buckets(&answer)?)
        }
    };
    let bytes = match &rasterizer {
        Some(r) => r.render(&svg, PNG_SCALE)?,
        None => svg.into_bytes(),
    };
    std::fs::write(&args.output, bytes)
        .with_context(|| format!("writing {}", args.output.display()))?;
    eprintln!("weir plot: wrote {}", args.output.display());
    Ok(())
}

/// A group's name: its values joined, or "all".
fn group_name(group: &Value) -> String {
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

fn cdf_series(answer: &Value) -> Vec<charts::CdfSeries> {
    let groups = answer["groups"].as_array().cloned().unwrap_or_default();
    groups
        .iter()
        .map(|g| charts::CdfSeries {
            name: group_name(&g["group"]),
            points: g["points"]
                .as_array()
                .map(|pts| {
                    pts.iter()
                        .filter_map(|p| Some((p["value"].as_f64()?, p["fraction"].as_f64()?)))
                        .collect()
                })
                .unwrap_or_default(),
        })
        .collect()
}

fn first_series(answer: &Value) -> Result<&Value> {
    answer["series"]
        .as_array()
        .and_then(|s| s.first())
        .context("no rows in that selection")
}

fn bands_series(answer: &Value) -> Result<charts::BandsSeries> {
    let s = first_series(answer)?;
    let qs = answer["q"]
        .as_array()
        .map(|q| q.iter().filter_map(Value::as_f64).collect())
        .unwrap_or_default();
    let buckets = s["buckets"]
        .as_array()
        .map(|b| {
            b.iter()
                .filter_map(|b| {
                    Some(charts::Band {
                        time: seconds(&b["time"])?,
                        values: b["values"].as_array()?.iter().map(Value::as_f64).collect(),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(charts::BandsSeries {
        name: group_name(&s["group"]),
        qs,
        buckets,
    })
}

fn rainbow_buckets(answer: &Value) -> Result<Vec<charts::RainbowBucket>> {
    let s = first_series(answer)?;
    Ok(s["buckets"]
        .as_array()
        .map(|b| {
            b.iter()
                .filter_map(|b| {
                    Some(charts::RainbowBucket {
                        time: seconds(&b["time"])?,
                        shares: b["shares"]
                            .as_object()?
                            .iter()
                            .filter_map(|(k, v)| Some((k.clone(), v.as_f64()?)))
                            .collect(),
                    })
                })
                .collect()
        })
        .unwrap_or_default())
}
