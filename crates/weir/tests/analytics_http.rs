//! The analytics endpoints of a real server over HTTP: CDFs, quantile bands,
//! the failure rainbow and pivots, with filters, group-bys (tags and derived
//! dimensions), CSV, and errors that name the parameter.

#![allow(clippy::unwrap_used)]

mod common;

use common::{data_dir, server, write_v1};
use serde_json::Value;

/// 2 countries × 48 hours of downloads: IR slower, DE faster; some
/// failures with their class (and `partial`).
fn load(url: &str, token: Option<&str>) -> Vec<(String, i64, Option<&'static str>)> {
    let start = 1_700_000_000i64 - 1_700_000_000 % 86_400; // a midnight, UTC
    let mut rows = Vec::new();
    let mut body = String::new();
    for hour in 0..48i64 {
        for (country, egress, base) in [("IR", "ams", 800i64), ("DE", "fra", 100)] {
            for k in 0..5i64 {
                let t = start + hour * 3600 + k * 60;
                let ttfb = base + hour * 3 + k * 11;
                let error = match (hour + k) % 10 {
                    0 if country == "IR" => Some("TIMEOUT"),
                    5 => Some("RESET"),
                    _ => None,
                };
                let mut line = format!("probe_http,country={country},egress={egress}");
                if let Some(e) = error {
                    line.push_str(&format!(",error={e},phase=body"));
                }
                let partial = error == Some("RESET");
                line.push_str(&format!(
                    " ttfb_us={ttfb}i,partial={partial},ok={} {t}\n",
                    error.is_none()
                ));
                body.push_str(&line);
                rows.push((country.to_owned(), ttfb, error));
            }
        }
    }
    assert_eq!(write_v1(url, token, "db=net&precision=s", &body).0, 204);
    rows
}

fn get(url: &str, token: Option<&str>, path: &str) -> (u16, String) {
    common::answer(common::with_token(
        common::http().get(format!("{url}{path}")),
        token,
    ))
}

fn get_json(url: &str, token: Option<&str>, path: &str) -> Value {
    let (status, body) = get(url, token, path);
    assert_eq!(status, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap()
}

fn exact_quantile(mut v: Vec<f64>, q: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    let pos = q * (v.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
}

#[test]
fn cdf_quantiles_rainbow_and_pivot() {
    let (_tmp, dir) = data_dir();
    let weir = server(&dir, &[]);
    let (url, t) = (&weir.url, Some(weir.admin()));
    let rows = load(url, t);

    // CDF per country: monotone, ends at 1, counts right.
    let j = get_json(
        url,
        t,
        "/api/v1/cdf?db=net&table=probe_http&field=ttfb_us&group_by=country&points=10",
    );
    assert_eq!(j["source"], "raw");
    let groups = j["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 2);
    for g in groups {
        let country = g["group"]["country"].as_str().unwrap();
        let n = rows.iter().filter(|r| r.0 == country).count();
        assert_eq!(g["count"], n as i64);
        let pts = g["points"].as_array().unwrap();
        assert_eq!(pts.len(), 10);
        for w in pts.windows(2) {
            assert!(w[1]["value"].as_f64() >= w[0]["value"].as_f64());
            assert!(w[1]["fraction"].as_f64() > w[0]["fraction"].as_f64());
        }
        assert_eq!(pts[9]["fraction"], 1.0);
        let max = rows
            .iter()
            .filter(|r| r.0 == country)
            .map(|r| r.1)
            .max()
            .unwrap();
        assert_eq!(pts[9]["value"].as_f64(), Some(max as f64));
    }
    // A filter leaves one group; CSV has a header and a row per point.
    let j = get_json(
        url,
        t,
        "/api/v1/cdf?db=net&table=probe_http&field=ttfb_us&where=country=IR&points=4",
    );
    assert_eq!(j["groups"].as_array().unwrap().len(), 1);
    let (status, csv) = get(
        url,
        t,
        "/api/v1/cdf?db=net&table=probe_http&field=ttfb_us&group_by=country&points=4&format=csv",
    );
    assert_eq!(status, 200);
    assert_eq!(csv.lines().next(), Some("country,value,fraction"));
    assert_eq!(csv.lines().count(), 1 + 2 * 4);

    // Quantile bands per day: exact against the rows of each (country, day).
    let j = get_json(url, t, "/api/v1/quantiles?db=net&table=probe_http&field=ttfb_us&group_by=country&every=1d&q=0.5,0.9");
    let series = j["series"].as_array().unwrap();
    assert_eq!(series.len(), 2);
    for s in series {
        let country = s["group"]["country"].as_str().unwrap();
        let buckets = s["buckets"].as_array().unwrap();
        assert_eq!(buckets.len(), 2, "two days");
        for (day, b) in buckets.iter().enumerate() {
            let per_day = 24 * 5;
            let values: Vec<f64> = rows
                .iter()
                .filter(|r| r.0 == country)
                .skip(day * per_day)
                .take(per_day)
                .map(|r| r.1 as f64)
                .collect();
            assert_eq!(b["count"], per_day as i64);
            for (i, q) in [0.5, 0.9].iter().enumerate() {
                let want = exact_quantile(values.clone(), *q);
                let got = b["values"][i].as_f64().unwrap();
                assert!(
                    (got - want).abs() < 1e-9,
                    "{country} day {day} q{q}: {got} vs {want}"
                );
            }
            assert!(b["time"].as_str().unwrap().ends_with("T00:00:00Z"), "{b}");
        }
    }
    // Default bands: every 5 % from 0 to 1.
    let j = get_json(
        url,
        t,
        "/api/v1/quantiles?db=net&table=probe_http&field=ttfb_us",
    );
    assert_eq!(j["q"].as_array().unwrap().len(), 21);

    // The rainbow: shares add up to 1; timeouts, failures and partial apart.
    let j = get_json(
        url,
        t,
        "/api/v1/rainbow?db=net&table=probe_http&group_by=country&every=1d",
    );
    for s in j["series"].as_array().unwrap() {
        let country = s["group"]["country"].as_str().unwrap();
        for b in s["buckets"].as_array().unwrap() {
            let sum: f64 = b["shares"]
                .as_object()
                .unwrap()
                .values()
                .map(|v| v.as_f64().unwrap())
                .sum();
            assert!((sum - 1.0).abs() < 1e-9, "{b}");
            assert_eq!(b["total"], 120);
            if country == "DE" {
                assert_eq!(b["timeouts"], 0.0);
            } else {
                assert!(b["timeouts"].as_f64().unwrap() > 0.0);
            }
            assert!(b["failures"].as_f64().unwrap() > 0.0);
            assert_eq!(b["partial"], b["failures"], "every RESET here is partial");
            assert!(b["shares"]["ok"].as_f64().unwrap() > 0.5);
        }
    }

    // Pivot: count per country × egress; a quantile per cell.
    let j = get_json(
        url,
        t,
        "/api/v1/pivot?db=net&table=probe_http&rows=country&columns=egress&agg=count",
    );
    assert_eq!(j["column_keys"], serde_json::json!(["ams", "fra"]));
    let ir = j["row_keys"]
        .as_array()
        .unwrap()
        .iter()
        .position(|k| k == "IR")
        .unwrap();
    assert_eq!(j["cells"][ir][0], 240.0);
    assert_eq!(j["cells"][ir][1], Value::Null);
    let j = get_json(url, t, "/api/v1/pivot?db=net&table=probe_http&field=ttfb_us&rows=country&columns=day_of_week&agg=p50");
    assert_eq!(
        j["column_keys"].as_array().unwrap().len(),
        2,
        "two days: two weekdays"
    );

    // Two dimensions: CSV columns in group_by order.
    let (_, csv) = get(url, t, "/api/v1/cdf?db=net&table=probe_http&field=ttfb_us&group_by=egress,country&points=1&format=csv");
    assert_eq!(csv.lines().next(), Some("egress,country,value,fraction"));
    assert!(csv.lines().any(|l| l.starts_with("ams,IR,")), "{csv}");
    // Numeric column keys in numeric order.
    let j = get_json(
        url,
        t,
        "/api/v1/pivot?db=net&table=probe_http&rows=country&columns=half_hour_of_day&agg=count",
    );
    let keys: Vec<i64> = j["column_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().parse().unwrap())
        .collect();
    assert_eq!(keys, (0..24).map(|h| h * 2).collect::<Vec<_>>());

    // A derived dimension as a group.
    let j = get_json(
        url,
        t,
        "/api/v1/cdf?db=net&table=probe_http&field=ttfb_us&group_by=half_hour_of_day&points=2",
    );
    assert_eq!(
        j["groups"].as_array().unwrap().len(),
        24,
        "rows fall in the first half hour of each hour"
    );
}

#[test]
fn long_ranges_read_the_rollups_and_say_so() {
    let (_tmp, dir) = data_dir();
    let weir = server(&dir, &[]);
    let (url, t) = (&weir.url, Some(weir.admin()));
    load(url, t);
    let start = 1_700_000_000i64 - 1_700_000_000 % 86_400;
    let range = format!("start={start}&end={}", start + 2 * 86_400);
    let both = |path: &str| {
        let auto = get_json(url, t, &format!("{path}&{range}"));
        let raw = get_json(url, t, &format!("{path}&{range}&source=raw"));
        assert_eq!(auto["source"], "rollup", "{path}");
        assert_eq!(raw["source"], "raw");
        (auto, raw)
    };
    let close = |a: &Value, b: &Value, what: &str| {
        let (a, b) = (a.as_f64().unwrap(), b.as_f64().unwrap());
        assert!((a - b).abs() <= 0.01 * b.abs(), "{what}: {a} vs {b}");
    };

    // CDF: the same counts; every point within 1 % of the exact one.
    let (auto, raw) =
        both("/api/v1/cdf?db=net&table=probe_http&field=ttfb_us&group_by=country&points=10");
    for (a, r) in auto["groups"]
        .as_array()
        .unwrap()
        .iter()
        .zip(raw["groups"].as_array().unwrap())
    {
        assert_eq!(a["group"], r["group"]);
        assert_eq!(a["count"], r["count"]);
        for (pa, pr) in a["points"]
            .as_array()
            .unwrap()
            .iter()
            .zip(r["points"].as_array().unwrap())
        {
            assert_eq!(pa["fraction"], pr["fraction"]);
            close(&pa["value"], &pr["value"], "cdf point");
        }
    }

    // Two whole days: the daily rollups answer alone.
    assert_eq!(auto["rollup_table"], "probe_http_1d");
    assert_eq!(auto["rollup_tables"], serde_json::json!(["probe_http_1d"]));

    // From 06:00: the first day's rest from half-hours, the second whole.
    let ragged = format!("start={}&end={}", start + 6 * 3600, start + 2 * 86_400);
    let path = "/api/v1/cdf?db=net&table=probe_http&field=ttfb_us&group_by=country&points=10";
    let auto = get_json(url, t, &format!("{path}&{ragged}"));
    let raw = get_json(url, t, &format!("{path}&{ragged}&source=raw"));
    assert_eq!(
        auto["rollup_tables"],
        serde_json::json!(["probe_http_1d", "probe_http_30m"])
    );
    for (a, r) in auto["groups"]
        .as_array()
        .unwrap()
        .iter()
        .zip(raw["groups"].as_array().unwrap())
    {
        assert_eq!(a["count"], r["count"], "no row read twice or missed");
        let (pa, pr) = (&a["points"], &r["points"]);
        for i in 0..10 {
            close(&pa[i]["value"], &pr[i]["value"], "ragged cdf point");
        }
    }
    // Daily buckets from 06:00 would cut daily rows: half-hours only.
    let j = get_json(
        url,
        t,
        &format!("/api/v1/quantiles?db=net&table=probe_http&field=ttfb_us&every=1d&{ragged}"),
    );
    assert_eq!(j["rollup_tables"], serde_json::json!(["probe_http_30m"]));
    // So does grouping by the half hour of the day.
    let j = get_json(
        url,
        t,
        &format!(
            "/api/v1/cdf?db=net&table=probe_http&field=ttfb_us&group_by=half_hour_of_day&{range}"
        ),
    );
    assert_eq!(j["rollup_tables"], serde_json::json!(["probe_http_30m"]));

    // Daily bands: counts equal, medians within 1 %.
    let (auto, raw) = both(
        "/api/v1/quantiles?db=net&table=probe_http&field=ttfb_us&group_by=country&every=1d&q=0.5",
    );
    let buckets = |j: &Value| -> Vec<Value> {
        j["series"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|s| s["buckets"].as_array().unwrap().clone())
            .collect()
    };
    let (ba, br) = (buckets(&auto), buckets(&raw));
    assert_eq!(ba.len(), 4);
    for (a, r) in ba.iter().zip(&br) {
        assert_eq!(a["time"], r["time"]);
        assert_eq!(a["count"], r["count"]);
        close(&a["values"][0], &r["values"][0], "daily median");
    }

    // Rainbow and pivot: counts and sums are exact through rollups.
    let (auto, raw) = both("/api/v1/rainbow?db=net&table=probe_http&group_by=country&every=1d");
    assert_eq!(auto["series"], raw["series"]);
    let (auto, raw) =
        both("/api/v1/pivot?db=net&table=probe_http&rows=country&columns=egress&agg=count");
    assert_eq!(auto["cells"], raw["cells"]);
    let (auto, raw) = both("/api/v1/pivot?db=net&table=probe_http&field=ttfb_us&rows=country&columns=day_of_week&agg=avg");
    for (ra, rr) in auto["cells"]
        .as_array()
        .unwrap()
        .iter()
        .zip(raw["cells"].as_array().unwrap())
    {
        for (a, r) in ra.as_array().unwrap().iter().zip(rr.as_array().unwrap()) {
            let (a, r) = (a.as_f64().unwrap(), r.as_f64().unwrap());
            assert!((a - r).abs() < 1e-6 * r, "avg {a} vs {r}");
        }
    }

    // Fine buckets and short ranges stay raw; asking for rollups then
    // says why not.
    let fine = "/api/v1/quantiles?db=net&table=probe_http&field=ttfb_us&every=10m";
    let j = get_json(url, t, &format!("{fine}&{range}"));
    assert_eq!(j["source"], "raw");
    let (status, body) = get(url, t, &format!("{fine}&{range}&source=rollup"));
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("source") && body.contains("30m"), "{body}");
    let short = format!("start={start}&end={}", start + 3600);
    let j = get_json(
        url,
        t,
        &format!("/api/v1/cdf?db=net&table=probe_http&field=ttfb_us&{short}"),
    );
    assert_eq!(j["source"], "raw");
    let (status, body) = get(
        url,
        t,
        &format!("/api/v1/cdf?db=net&table=probe_http&field=ttfb_us&{range}&source=fast"),
    );
    assert_eq!(status, 400);
    assert!(body.contains("source"), "{body}");
    // `where` filters on tags; a field there is named as the mistake.
    let (status, body) = get(
        url,
        t,
        "/api/v1/cdf?db=net&table=probe_http&field=ttfb_us&where=ok=true",
    );
    assert_eq!(status, 400);
    assert!(
        body.contains("where") && body.contains("not a tag"),
        "{body}"
    );

    // The rollup table is there for SQL too.
    let rows = common::rows(
        url,
        t,
        "net",
        "SELECT CAST(sum(_rows) AS BIGINT) AS n FROM probe_http_30m",
    );
    assert_eq!(rows[0]["n"], 480);
}

#[test]
fn analytics_errors_name_the_parameter_and_need_a_read_token() {
    let (_tmp, dir) = data_dir();
    let weir = server(&dir, &[]);
    let (url, t) = (&weir.url, Some(weir.admin()));
    load(url, t);
    for (path, words) in [
        ("/api/v1/cdf?db=net&table=probe_http&field=nope", "nope"),
        ("/api/v1/cdf?db=net&table=nothing&field=ttfb_us", "nothing"),
        ("/api/v1/cdf?db=net&table=probe_http", "field"),
        (
            "/api/v1/cdf?db=net&table=probe_http&field=ttfb_us&points=0",
            "points",
        ),
        (
            "/api/v1/quantiles?db=net&table=probe_http&field=ttfb_us&q=2",
            "q",
        ),
        (
            "/api/v1/rainbow?db=net&table=probe_http&every=soon",
            "every",
        ),
        (
            "/api/v1/pivot?db=net&table=probe_http&rows=country",
            "columns",
        ),
        (
            "/api/v1/pivot?db=net&table=probe_http&rows=country&columns=egress&agg=mode",
            "agg",
        ),
        (
            "/api/v1/cdf?db=net&table=probe_http&field=ttfb_us&format=xml",
            "format",
        ),
        (
            "/api/v1/cdf?db=net&table=probe_http&field=ttfb_us&color=red",
            "color",
        ),
        (
            "/api/v1/cdf?db=net&table=probe_http&field=ttfb_us&every=1h",
            "every",
        ),
        (
            "/api/v1/rainbow?db=net&table=probe_http&category=klass",
            "klass",
        ),
        (
            "/api/v1/pivot?db=net&table=probe_http&rows=country&columns=egress&group_by=egress",
            "group_by",
        ),
    ] {
        let (status, body) = get(url, t, path);
        assert_eq!(status, 400, "{path}: {body}");
        assert!(body.contains(words), "{path}: {body}");
    }
    let path = "/api/v1/cdf?db=net&table=probe_http&field=ttfb_us";
    assert_eq!(get(url, None, path).0, 401);
    let other = common::run(&[
        "token",
        "create",
        "--data-dir",
        dir.to_str().unwrap(),
        "--db",
        "other",
        "--read",
    ]);
    let token = String::from_utf8(other.stdout)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .to_owned();
    assert_eq!(get(url, Some(&token), path).0, 403);
}

#[test]
fn weir_plot_draws_svg_from_the_analytics_api() {
    let (_tmp, dir) = data_dir();
    let weir = server(&dir, &[]);
    let (url, t) = (&weir.url, Some(weir.admin()));
    load(url, t);
    let out = tempfile::tempdir().unwrap();
    let base = [
        "--url",
        url.as_str(),
        "--token",
        weir.admin(),
        "--db",
        "net",
        "--table",
        "probe_http",
    ];
    for (chart, extra, marks) in [
        (
            "cdf",
            vec!["--field", "ttfb_us", "--group-by", "country"],
            vec!["<path", "IR: ", "DE: "],
        ),
        (
            "bands",
            vec!["--field", "ttfb_us", "--where", "country=IR"],
            vec!["<polygon", "q0.5 = "],
        ),
        (
            "rainbow",
            vec!["--every", "1d"],
            vec!["<rect", "TIMEOUT", "RESET"],
        ),
    ] {
        let file = out.path().join(format!("{chart}.svg"));
        let mut args = vec!["plot", chart];
        args.extend_from_slice(&base);
        args.extend(extra);
        args.extend(["-o", file.to_str().unwrap()]);
        let result = common::run(&args);
        assert!(
            result.status.success(),
            "{chart}: {}",
            String::from_utf8_lossy(&result.stderr)
        );
        let svg = std::fs::read_to_string(&file).unwrap();
        assert!(
            svg.starts_with("<svg") && svg.contains("<title>"),
            "{chart}"
        );
        for m in marks {
            assert!(svg.contains(m), "{chart} lacks {m}");
        }
    }
    let jpeg = out.path().join("x.jpeg");
    let mut args = vec!["plot", "cdf"];
    args.extend_from_slice(&base);
    args.extend(["--field", "ttfb_us", "-o", jpeg.to_str().unwrap()]);
    let result = common::run(&args);
    assert!(!result.status.success());
    assert!(String::from_utf8_lossy(&result.stderr).contains(".svg or .png"));
    assert!(!jpeg.exists());
}

#[test]
fn weir_plot_renders_png() {
    let (_tmp, dir) = data_dir();
    let weir = server(&dir, &[]);
    let (url, t) = (&weir.url, Some(weir.admin()));
    load(url, t);
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("ttfb.png");
    let result = common::run(&[
        "plot",
        "cdf",
        "--url",
        url,
        "--token",
        weir.admin(),
        "--db",
        "net",
        "--table",
        "probe_http",
        "--field",
        "ttfb_us",
        "--group-by",
        "country",
        "-o",
        file.to_str().unwrap(),
    ]);
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    let bytes = std::fs::read(&file).unwrap();
    // The signature, then IHDR first: width and height, big-endian.
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"));
    assert_eq!(&bytes[12..16], b"IHDR");
    let size = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
    assert_eq!(
        (size(16), size(20)),
        (1520, 840),
        "twice the SVG's 760 × 420"
    );

    let mut reader = png::Decoder::new(std::io::Cursor::new(&bytes))
        .read_info()
        .unwrap();
    let mut rgba = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut rgba).unwrap();
    assert_eq!(info.color_type, png::ColorType::Rgba);
    // In the plot area (70..590 × 40..370 in SVG units), the two
    // countries' steps in their colours: saturated pixels, unlike the
    // white background, the grey grid and the black text.
    let coloured = (80..740)
        .flat_map(|y| (140..1180).map(move |x| (y * 1520 + x) * 4))
        .filter(|&i| {
            let [r, g, b] = [rgba[i], rgba[i + 1], rgba[i + 2]];
            r.max(g).max(b) - r.min(g).min(b) > 80
        })
        .count();
    assert!(
        coloured > 500,
        "{coloured} coloured pixels in the plot area"
    );
}

#[test]
fn utilisation_per_node_and_role_with_bottleneck_and_balance() {
    let (_tmp, dir) = data_dir();
    let weir = server(&dir, &[]);
    let (url, t) = (&weir.url, Some(weir.admin()));
    let end = 1_700_000_000i64;
    let mut body = String::new();
    for (host, role, recent) in [
        ("a", "edge", 500),
        ("b", "edge", 300),
        ("c", "edge", 100),
        ("d", "core", 900),
        ("e", "core", 800),
    ] {
        // The peak, ten days ago; then the last hour at the node's rate.
        body.push_str(&format!(
            "net,host={host},role={role} tx=1000 {}\n",
            end - 10 * 86_400
        ));
        for k in 1..=6 {
            body.push_str(&format!(
                "net,host={host},role={role} tx={recent} {}\n",
                end - k * 600
            ));
        }
    }
    assert_eq!(write_v1(url, t, "db=net&precision=s", &body).0, 204);
    let j = get_json(
        url,
        t,
        &format!("/api/v1/utilisation?db=net&table=net&field=tx&role=role&end={end}"),
    );
    assert_eq!(j["bottleneck"], "core");
    let roles = j["roles"].as_array().unwrap();
    let edge = roles.iter().find(|r| r["role"] == "edge").unwrap();
    let node = |name: &str| {
        edge["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["node"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(node("a")["utilisation"], 0.5);
    assert_eq!(node("c")["utilisation"], 0.1);
    assert_eq!(node("b")["balance"], 1.0);
    assert!((node("a")["balance"].as_f64().unwrap() - 5.0 / 3.0).abs() < 1e-9);
    let cdf = edge["utilisation_cdf"].as_array().unwrap();
    assert_eq!(cdf.len(), 3);
    assert_eq!(cdf[2]["fraction"], 1.0);
    // Only the peak window counts: a window that misses the old peak.
    let j = get_json(
        url,
        t,
        &format!(
            "/api/v1/utilisation?db=net&table=net&field=tx&role=role&end={end}&peak_window=2h"
        ),
    );
    let core = j["roles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["role"] == "core")
        .unwrap()
        .clone();
    assert!(
        core["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["utilisation"] == 1.0),
        "{core}"
    );
    let (status, body) = get(
        url,
        t,
        "/api/v1/utilisation?db=net&table=net&field=tx&node=nodename",
    );
    assert_eq!(status, 400);
    assert!(body.contains("nodename"), "{body}");
}

#[test]
fn a_database_configured_without_rollups_is_answered_from_raw_rows() {
    let (tmp, dir) = data_dir();
    let config = tmp.path().join("weir.toml");
    std::fs::write(&config, "[databases.net]\nrollups = false\n").unwrap();
    let weir = server(&dir, &["--config", config.to_str().unwrap()]);
    let (url, t) = (&weir.url, Some(weir.admin()));
    load(url, t);
    let count = |sql: &str| common::rows(url, t, "net", sql)[0]["n"].clone();
    assert_eq!(count("SELECT count(*) AS n FROM probe_http"), 480);
    assert_eq!(count("SELECT count(*) AS n FROM probe_http_30m"), 0);
    let start = 1_700_000_000i64 - 1_700_000_000 % 86_400;
    let cdf = format!(
        "/api/v1/cdf?db=net&table=probe_http&field=ttfb_us&start={start}&end={}",
        start + 2 * 86_400
    );
    assert_eq!(get_json(url, t, &cdf)["source"], "raw");
    let (status, body) = get(url, t, &format!("{cdf}&source=rollup"));
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("keeps no rollups"), "{body}");
}

#[test]
fn a_database_keeps_its_rollups_longer_than_its_raw_rows() {
    let (tmp, dir) = data_dir();
    let config = tmp.path().join("weir.toml");
    std::fs::write(
        &config,
        "[databases.net]\nretention = \"2d\"\nrollup-retention = \"400d\"\n",
    )
    .unwrap();
    let weir = server(&dir, &["--config", config.to_str().unwrap()]);
    let (url, t) = (&weir.url, Some(weir.admin()));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut body = String::new();
    for days_ago in [10, 0] {
        for k in 0..3 {
            let t = now - days_ago * 86_400 - 600 - k * 60;
            body.push_str(&format!("probe_http,country=IR ttfb_us={}i {t}\n", 100 + k));
        }
    }
    assert_eq!(write_v1(url, t, "db=net&precision=s", &body).0, 204);
    let count = |sql: &str| common::rows(url, t, "net", sql)[0]["n"].clone();
    assert_eq!(
        count("SELECT count(*) AS n FROM probe_http"),
        3,
        "old raw rows are past retention"
    );
    assert_eq!(
        count("SELECT CAST(sum(_rows) AS BIGINT) AS n FROM probe_http_30m"),
        6,
        "the rollups of both days"
    );
    // A bad retention stops the start, naming the key.
    std::fs::write(&config, "[databases.net]\nrollup-retention = \"soon\"\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["server", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(tmp.path().join("other"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("databases.net.rollup-retention"),
        "{stderr}"
    );
}

#[test]
fn a_batch_delivered_twice_is_never_counted_twice_and_rollups_answer_again_once_compacted() {
    let (_tmp, dir) = data_dir();
    let weir = server(&dir, &[]);
    let token = weir.admin().to_owned();
    let t = Some(token.as_str());
    let rows = load(&weir.url, t).len() as u64;
    // Stopped cleanly: persisted, then compacted at the next start.
    weir.stop();
    let weir = server(&dir, &[]);
    let url = &weir.url;
    let start = 1_700_000_000i64 - 1_700_000_000 % 86_400;
    let cdf = format!(
        "/api/v1/cdf?db=net&table=probe_http&field=ttfb_us&points=10&start={start}&end={}",
        start + 2 * 86_400
    );
    let counted = |j: &Value| j["groups"][0]["count"].as_u64().unwrap();
    let answer = get_json(url, t, &cdf);
    assert_eq!(answer["source"], "rollup");
    assert_eq!(counted(&answer), rows);

    // The same batch again, as a client resends one whose acknowledgement
    // it lost: the rollups would count it twice, so the raw rows answer.
    load(url, t);
    let answer = get_json(url, t, &cdf);
    assert_eq!(answer["source"], "raw", "{answer}");
    assert_eq!(counted(&answer), rows);
    let (status, body) = get(url, t, &format!("{cdf}&source=rollup"));
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("written again"), "{body}");

    // Persisted at the stop; compaction after the next start rebuilds the
    // two days' rollups from their rows, once each.
    weir.stop();
    let weir = server(&dir, &[]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let answer = loop {
        let answer = get_json(&weir.url, t, &cdf);
        if answer["source"] == "rollup" {
            break answer;
        }
        assert!(std::time::Instant::now() < deadline, "{answer}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    assert_eq!(counted(&answer), rows);
    let sum = common::rows(
        &weir.url,
        t,
        "net",
        "SELECT CAST(sum(_rows) AS BIGINT) AS n FROM probe_http_1d",
    );
    assert_eq!(sum[0]["n"], rows);
}
