//! The dashboard over HTTP on a real server: the shell at `/` needs no
//! token, the chart endpoints draw valid SVG from written data (and "no
//! data" for tables not written yet), they are read-scoped like the
//! analytics API, bad parameters are 400s naming the parameter, and the
//! overview sums up hosts and interfaces.

#![allow(clippy::unwrap_used)]

mod common;

use common::{answer, dashboard_data, data_dir, http, server, with_token};

fn get(url: &str, token: Option<&str>, path: &str) -> (u16, String, String) {
    let response = with_token(http().get(format!("{url}{path}")), token)
        .send()
        .unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, content_type, response.text().unwrap())
}

/// A chart that must be drawn: 200, SVG, well-formed XML, hover titles.
fn svg(url: &str, token: Option<&str>, path: &str) -> String {
    let (status, content_type, body) = get(url, token, path);
    assert_eq!(status, 200, "{path}: {body}");
    assert_eq!(content_type, "image/svg+xml", "{path}");
    let doc = roxmltree::Document::parse(&body)
        .unwrap_or_else(|e| panic!("{path}: not well-formed XML: {e}\n{body}"));
    assert_eq!(doc.root_element().tag_name().name(), "svg", "{path}");
    assert_eq!(
        doc.root_element().tag_name().namespace(),
        Some("http://www.w3.org/2000/svg")
    );
    body
}

#[test]
fn the_shell_needs_no_token_and_says_whether_one_is_needed() {
    let (_tmp, dir) = data_dir();
    let weir = server(&dir, &[]);
    let (status, content_type, html) = get(&weir.url, None, "/");
    assert_eq!(status, 200);
    assert_eq!(content_type, "text/html; charset=utf-8");
    assert!(html.contains("<script src=\"/dashboard/app.js\""), "{html}");
    assert!(html.contains("data-auth=\"on\""));
    let response = http().get(format!("{}/", weir.url)).send().unwrap();
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .unwrap();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("connect-src 'self'"),
        "{csp}"
    );
    for (asset, kind, marker) in [
        ("app.js", "text/javascript; charset=utf-8", "Authorization"),
        ("app.css", "text/css; charset=utf-8", "figure.chart"),
    ] {
        let (status, content_type, body) = get(&weir.url, None, &format!("/dashboard/{asset}"));
        assert_eq!((status, content_type.as_str()), (200, kind), "{asset}");
        assert!(body.contains(marker), "{asset}");
    }
    // Only the shell and its assets are public.
    assert_eq!(get(&weir.url, None, "/dashboard/secrets.txt").0, 401);

    let (_tmp2, open_dir) = data_dir();
    let open = server(&open_dir, &["--no-auth"]);
    let (_, _, html) = get(&open.url, None, "/");
    assert!(html.contains("data-auth=\"off\""));
}

#[test]
fn charts_draw_written_data_as_svg_with_hover_titles() {
    let (_tmp, dir) = data_dir();
    let weir = server(&dir, &[]);
    let (url, t) = (&weir.url, Some(weir.admin()));
    dashboard_data::write(url, t, "telemetry");
    let now = dashboard_data::now();
    let range = format!("db=telemetry&start={}&end={}", now - 86_400, now + 60);

    let body = svg(
        url,
        t,
        &format!("/api/v1/chart/cdf.svg?{range}&table=probe_http&field=ttfb_us&group_by=target&unit=ms&scale=0.001&width=900&title=TTFB"),
    );
    assert!(body.contains("width=\"900\"") && body.contains(">TTFB</text>"));
    for (target, _) in dashboard_data::TARGETS {
        assert!(
            body.contains(&format!("<title>{target}: ")),
            "{target}: {body}"
        );
    }
    assert!(body.contains(">ms</text>"));

    // Smoke: a panel per group, bands and the median.
    let body = svg(
        url,
        t,
        &format!("/api/v1/chart/bands.svg?{range}&table=probe_http&field=ttfb_us&group_by=target&every=30m"),
    );
    assert_eq!(
        body.matches("<polygon").count(),
        3 * 10,
        "10 bands × 3 targets"
    );
    assert!(body.contains("quantiles per 30m — sin"));

    // The rainbow: every failure class written, a panel per vantage.
    let body = svg(
        url,
        t,
        &format!("/api/v1/chart/rainbow.svg?{range}&table=probe_http&group_by=vantage"),
    );
    for class in ["TIMEOUT", "RESET", "CONNECT", "ok"] {
        assert!(body.contains(&format!(": {class} ")), "{class}");
    }
    assert!(body.contains("— v1") && body.contains("— v2"));

    // Lines: the highest risk per bucket, one per interface.
    let body = svg(
        url,
        t,
        &format!("/api/v1/chart/lines.svg?{range}&table=ratemon&field=overload_risk_tx&group_by=host,interface&q=1"),
    );
    assert_eq!(body.matches("<path").count(), 4, "{body}");
    assert!(body.contains("<title>h1 eth0 "));

    for chart in ["utilisation", "balance"] {
        let body = svg(
            url,
            t,
            &format!("/api/v1/chart/{chart}.svg?db=telemetry&table=ratemon&field=tx&node=interface&role=host&window=1h&peak_window=1d"),
        );
        assert!(
            body.contains("<title>h1: ") && body.contains("<title>h2: "),
            "{chart}: {body}"
        );
    }

    // Echo RTTs, and the CSV behind a chart from its analytics endpoint.
    svg(
        url,
        t,
        &format!("/api/v1/chart/cdf.svg?{range}&table=probe_echo&field=rtt_us&group_by=target"),
    );
    let (status, body) = answer(with_token(
        http().get(format!(
            "{url}/api/v1/cdf?{range}&table=probe_echo&field=rtt_us&group_by=target&format=csv"
        )),
        t,
    ));
    assert_eq!(status, 200);
    assert_eq!(body.lines().next(), Some("target,value,fraction"));
}

#[test]
fn what_is_not_written_yet_is_a_chart_that_says_no_data() {
    let (_tmp, dir) = data_dir();
    let weir = server(&dir, &[]);
    let (url, t) = (&weir.url, Some(weir.admin()));
    dashboard_data::write(url, t, "telemetry");
    for (path, why) in [
        ("/api/v1/chart/cdf.svg?db=telemetry&table=probe_tls&field=ttfb_us", "probe_tls"),
        ("/api/v1/chart/cdf.svg?db=telemetry&table=probe_echo&field=rtt_us&group_by=country", "country"),
        ("/api/v1/chart/bands.svg?db=nowhere&table=probe_http&field=ttfb_us", "nowhere"),
        // Written, but not in this range.
        ("/api/v1/chart/rainbow.svg?db=telemetry&table=probe_http&start=2001-01-01T00:00:00Z&end=2001-01-02T00:00:00Z", ""),
    ] {
        let body = svg(url, t, path);
        assert!(body.contains(">no data</text>"), "{path}: {body}");
        assert!(body.contains(why), "{path}: {body}");
    }
}

#[test]
fn charts_need_a_read_token_for_the_database_and_name_bad_parameters() {
    let (_tmp, dir) = data_dir();
    let weir = server(&dir, &[]);
    let (url, t) = (&weir.url, Some(weir.admin()));
    dashboard_data::write(url, t, "telemetry");
    let path = "/api/v1/chart/cdf.svg?db=telemetry&table=probe_http&field=ttfb_us";
    assert_eq!(get(url, None, path).0, 401);
    assert_eq!(get(url, None, "/api/v1/overview?db=telemetry").0, 401);
    let other = dashboard_data::read_token(&dir, "other");
    let (status, _, body) = get(url, Some(&other), path);
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("telemetry"), "{body}");
    assert_eq!(
        get(url, Some(&other), "/api/v1/overview?db=telemetry").0,
        403
    );
    let reader = dashboard_data::read_token(&dir, "telemetry");
    svg(url, Some(&reader), path);

    for (path, words) in [
        (
            "/api/v1/chart/cdf.svg?db=telemetry&table=probe_http&field=ttfb_us&width=10",
            "width",
        ),
        (
            "/api/v1/chart/cdf.svg?db=telemetry&table=probe_http&field=ttfb_us&height=tall",
            "height",
        ),
        (
            "/api/v1/chart/cdf.svg?db=telemetry&table=probe_http&field=ttfb_us&scale=-1",
            "scale",
        ),
        (
            "/api/v1/chart/cdf.svg?db=telemetry&table=probe_http&field=ttfb_us&format=csv",
            "format",
        ),
        (
            "/api/v1/chart/cdf.svg?db=telemetry&table=probe_http&field=ttfb_us&colour=red",
            "colour",
        ),
        (
            "/api/v1/chart/cdf.svg?db=telemetry&table=probe_http",
            "field",
        ),
        ("/api/v1/chart/cdf.svg?table=probe_http&field=ttfb_us", "db"),
        (
            "/api/v1/chart/bands.svg?db=telemetry&table=probe_http&field=ttfb_us&start=yesterday",
            "start",
        ),
        (
            "/api/v1/chart/rainbow.svg?db=telemetry&table=probe_http&every=soon",
            "every",
        ),
        (
            "/api/v1/chart/utilisation.svg?db=telemetry&table=ratemon&field=tx&window=forever",
            "window",
        ),
        ("/api/v1/overview?db=telemetry&host=h1", "host"),
        ("/api/v1/overview", "db"),
    ] {
        let (status, _, body) = get(url, Some(&reader), path);
        assert_eq!(status, 400, "{path}: {body}");
        assert!(body.contains(words), "{path}: {body}");
    }
    let (status, _, body) = get(url, Some(&reader), "/api/v1/chart/pie.svg?db=telemetry");
    assert_eq!(status, 404);
    assert!(body.contains("cdf.svg"), "{body}");
}

#[test]
fn the_overview_sums_up_hosts_and_interfaces_at_risk_first() {
    let (_tmp, dir) = data_dir();
    let weir = server(&dir, &[]);
    let (url, t) = (&weir.url, Some(weir.admin()));
    let (status, _, body) = get(url, t, "/api/v1/overview?db=telemetry");
    assert_eq!(status, 200, "{body}");
    let empty: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        empty["hosts"],
        serde_json::json!([]),
        "no database yet: nothing"
    );
    dashboard_data::write(url, t, "telemetry");
    let (status, _, body) = get(url, t, "/api/v1/overview?db=telemetry");
    assert_eq!(status, 200, "{body}");
    let o: serde_json::Value = serde_json::from_str(&body).unwrap();
    let hosts = o["hosts"].as_array().unwrap();
    assert_eq!(hosts.len(), dashboard_data::HOSTS.len());
    for h in hosts {
        for key in [
            "uptime",
            "load1",
            "n_cpus",
            "cpu_used_percent",
            "mem_used_percent",
        ] {
            assert!(h[key].is_number(), "{key}: {h}");
        }
        assert!(h["time"].as_str().unwrap().ends_with('Z'));
    }
    let interfaces = o["interfaces"].as_array().unwrap();
    assert_eq!(interfaces.len(), 4);
    assert_eq!(
        (
            interfaces[0]["host"].as_str(),
            interfaces[0]["interface"].as_str()
        ),
        (Some("h1"), Some("eth0"))
    );
    assert_eq!(interfaces[0]["at_risk"], true);
    assert!(interfaces[1..].iter().all(|i| i["at_risk"] == false));
}
