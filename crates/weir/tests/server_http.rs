//! `weir server` over real HTTP: write semantics of both InfluxDB APIs,
//! bodies and limits, the probe endpoints, every query format, metrics.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::sync::Arc;

use common::*;
use serde_json::{json, Value};

const V1_BAD: &str = "partial write";

#[test]
fn v1_write_keeps_valid_lines_and_names_each_bad_one() {
    let (_tmp, dir) = data_dir();
    let weir = server(&dir, &[]);
    let (url, t) = (&weir.url, Some(weir.admin()));

    let body = "ping,dst=a rtt=10 1700000000\nping,dst=b rtt=oops 1700000001\n\
                ping,dst=c rtt=3 1700000002\nping,dst=d rtt=1i 1700000003\nnonsense\n";
    let (status, text) = write_v1(url, t, "db=net&precision=s", body);
    assert_eq!(status, 400, "{text}");
    let error = serde_json::from_str::<Value>(&text).unwrap()["error"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(error.starts_with(V1_BAD), "{error}");
    assert!(
        error.contains("3 of 5 lines rejected, the other 2 stored"),
        "{error}"
    );
    assert!(
        error.contains("line 2, col 16: invalid field value \"oops\""),
        "{error}"
    );
    assert!(error.contains("line 4: field \"rtt\""), "{error}");
    assert!(error.contains("line 5, col "), "{error}");
    let stored = rows(
        url,
        t,
        "net",
        "SELECT dst, rtt, time FROM ping ORDER BY dst",
    );
    assert_eq!(
        stored,
        [
            json!({"dst": "a", "rtt": 10.0, "time": "2023-11-14T22:13:20Z"}),
            json!({"dst": "c", "rtt": 3.0, "time": "2023-11-14T22:13:22Z"}),
        ]
    );

    // Precisions as InfluxDB v1 names them.
    for (precision, ts) in [
        ("ns", "1700000000000000000"),
        ("u", "1700000000000000"),
        ("ms", "1700000000000"),
        ("s", "1700000000"),
        ("m", "28333333"),
        ("h", "472222"),
    ] {
        let (status, text) = write_v1(
            url,
            t,
            &format!("db=prec&precision={precision}&rp=autogen"),
            &format!("p,unit={precision} v=1 {ts}"),
        );
        assert_eq!(status, 204, "{precision}: {text}");
    }
    let times = rows(
        url,
        t,
        "prec",
        "SELECT unit, CAST(time AS BIGINT) AS ns FROM p ORDER BY unit",
    );
    for row in times {
        let ns = row["ns"].as_i64().unwrap();
        let expected = match row["unit"].as_str().unwrap() {
            "m" => 28_333_333 * 60_000_000_000,
            "h" => 472_222 * 3_600_000_000_000,
            _ => 1_700_000_000_000_000_000,
        };
        assert_eq!(ns, expected, "{row}");
    }

    let (status, text) = write_v1(url, t, "precision=s", "m v=1");
    assert_eq!(
        (status, text.contains("database is required")),
        (400, true),
        "{text}"
    );
    let (status, text) = write_v1(url, t, "db=net&precision=fortnights", "m v=1");
    assert_eq!(status, 400);
    assert!(
        text.contains("invalid precision \\\"fortnights\\\""),
        "{text}"
    );
    let (status, text) = write_v1(url, t, "db=bad/name", "m v=1");
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("invalid database name"), "{text}");
    // An empty body stores nothing and is no error.
    assert_eq!(write_v1(url, t, "db=net", "").0, 204);
    weir.stop();
}

#[test]
fn v2_write_stores_nothing_of_a_batch_with_a_parse_error() {
    let (_tmp, dir) = data_dir();
    let weir = server(&dir, &[]);
    let (url, t) = (&weir.url, Some(weir.admin()));

    let (status, text) = write_v2(
        url,
        t,
        "bucket=net&org=any&precision=s",
        "ping,dst=a rtt=1 1700000000",
    );
    assert_eq!(status, 204, "{text}");
    let body =
        "ping,dst=b rtt=2 1700000001\nping,dst=c rtt= 1700000002\nping,dst=d rtt=4 1700000003";
    let (status, text) = write_v2(url, t, "bucket=net&precision=s", body);
    assert_eq!(status, 400, "{text}");
    let answer: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(answer["code"], "invalid");
    let message = answer["message"].as_str().unwrap();
    assert!(
        message.contains("1 of 3 lines could not be parsed; nothing was stored"),
        "{message}"
    );
    assert!(message.contains("line 2, col "), "{message}");
    assert_eq!(count(url, t, "net", "ping"), 1, "nothing of the bad batch");

    // Type conflicts are found by the store: those lines alone are refused (422).
    let body = "ping,dst=e rtt=5 1700000004\nping,dst=f rtt=\"slow\" 1700000005";
    let (status, text) = write_v2(url, t, "bucket=net/autogen&precision=s", body);
    assert_eq!(status, 422, "{text}");
    let answer: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(answer["code"], "unprocessable entity");
    assert!(
        answer["message"].as_str().unwrap().contains("line 2"),
        "{text}"
    );
    assert_eq!(count(url, t, "net", "ping"), 2);

    // Precisions as InfluxDB v2 names them; v1-only names are refused.
    for (precision, ts) in [
        ("ns", "1700000010000000000"),
        ("us", "1700000010000000"),
        ("ms", "1700000010000"),
        ("s", "1700000010"),
    ] {
        let (status, text) = write_v2(
            url,
            t,
            &format!("bucket=p2&precision={precision}"),
            &format!("p,u={precision} v=1 {ts}"),
        );
        assert_eq!(status, 204, "{precision}: {text}");
    }
    let distinct = rows(
        url,
        t,
        "p2",
        "SELECT count(DISTINCT time) AS n, count(*) AS c FROM p",
    );
    assert_eq!(distinct, [json!({"n": 1, "c": 4})]);
    let (status, text) = write_v2(url, t, "bucket=net&precision=h", "m v=1");
    assert_eq!(status, 400);
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap()["code"],
        "invalid"
    );
    let (status, text) = write_v2(url, t, "org=x", "m v=1");
    assert_eq!(status, 400);
    assert!(text.contains("bucket is required"), "{text}");
    weir.stop();
}

#[test]
fn no_auto_create_answers_404_until_the_database_exists() {
    let (_tmp, dir) = data_dir();
    let weir = server(&dir, &["--no-auto-create", "--no-auth"]);
    let url = &weir.url;
    let (status, text) = write_v1(url, None, "db=fresh", "m v=1");
    assert_eq!(status, 404, "{text}");
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap(),
        json!({"error": "database not found: \"fresh\""})
    );
    let (status, text) = write_v2(url, None, "bucket=fresh", "m v=1");
    assert_eq!(status, 404, "{text}");
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap(),
        json!({"code": "not found", "message": "bucket \"fresh\" not found"})
    );
    let (status, _) = answer(http().post(format!("{url}/query?q=CREATE+DATABASE+fresh")));
    assert_eq!(status, 200);
    assert_eq!(write_v1(url, None, "db=fresh", "m v=1").0, 204);
    assert_eq!(write_v2(url, None, "bucket=fresh", "m v=2").0, 204);
    assert_eq!(count(url, None, "fresh", "m"), 2);
    assert!(
        weir.stderr().contains("authentication is off"),
        "{}",
        weir.stderr()
    );
    weir.stop();
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[test]
fn gzip_bodies_and_the_body_limit() {
    let (_tmp, dir) = data_dir();
    let weir = server(&dir, &[]);
    let (url, t) = (weir.url.clone(), weir.admin().to_owned());
    let post = |path: &str, body: Vec<u8>, gz: bool| {
        let mut r = http()
            .post(format!("{url}{path}"))
            .header("Authorization", format!("Token {t}"))
            .body(body);
        if gz {
            r = r.header("Content-Encoding", "gzip");
        }
        answer(r)
    };

    let lines: String = (0..1000)
        .map(|i| format!("g,k=v{} n={i}i {i}\n", i % 7))
        .collect();
    assert_eq!(post("/write?db=gz", gzip(lines.as_bytes()), true).0, 204);
    assert_eq!(
        post("/api/v2/write?bucket=gz", gzip(b"g2 n=1i 1"), true).0,
        204
    );
    assert_eq!(count(&url, Some(&t), "gz", "g"), 1000);

    let (status, text) = post("/write?db=gz", b"definitely not gzip".to_vec(), true);
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("invalid gzip body"), "{text}");
    let (status, text) = post(
        "/api/v2/write?bucket=gz",
        b"\x1f\x8b\x08junk".to_vec(),
        true,
    );
    assert_eq!(status, 400, "{text}");
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap()["code"],
        "invalid"
    );

    // Over the default limit of 32 MiB: 413, as sent…
    let big = vec![b'#'; (32 << 20) + 1];
    let (status, text) = post("/write?db=gz", big, false);
    assert_eq!(status, 413, "{text}");
    assert!(
        text.contains("larger than the limit of 33554432 bytes"),
        "{text}"
    );
    // …and after decompression (a gzip bomb of a few dozen KiB).
    let bomb = gzip(&vec![b'#'; 40 << 20]);
    assert!(bomb.len() < 1 << 20);
    let (status, text) = post("/write?db=gz", bomb, true);
    assert_eq!(status, 413, "{text}");
    assert!(text.contains("decompressed request body"), "{text}");
    let (status, text) = answer(
        http()
            .post(format!("{url}/write?db=gz"))
            .header("Authorization", format!("Token {t}"))
            .header("Content-Encoding", "br")
            .body("x"),
    );
    assert_eq!(status, 415, "{text}");
    assert_eq!(
        count(&url, Some(&t), "gz", "g"),
        1000,
        "nothing more stored"
    );
    weir.stop();

    // The limit is configurable.
    let weir = server(&dir, &["--max-body-bytes", "100"]);
    let token = std::fs::read_to_string(dir.join("admin.token")).unwrap();
    let (status, _) = write_v1(&weir.url, Some(token.trim()), "db=gz", &"#".repeat(101));
    assert_eq!(status, 413);
    let (status, _) = write_v1(&weir.url, Some(token.trim()), "db=gz", "g,k=x n=1i 5000");
    assert_eq!(status, 204);
    weir.stop();
}

#[test]
fn ping_health_and_the_v1_query_probe() {
    let (_tmp, dir) = data_dir();
    let weir = server(&dir, &[]);
    let (url, t) = (&weir.url, weir.admin());

    let ping = http().get(format!("{url}/ping")).send().unwrap();
    assert_eq!(ping.status(), 204);
    assert_eq!(ping.headers()["x-influxdb-version"], "1.8.10");
    assert!(ping.headers().contains_key("x-influxdb-build"));
    assert_eq!(
        http().head(format!("{url}/ping")).send().unwrap().status(),
        204
    );
    let (status, text) = answer(http().get(format!("{url}/ping?verbose=true")));
    assert_eq!((status, text.contains("1.8.10")), (200, true));
    let (status, text) = answer(http().get(format!("{url}/health")));
    assert_eq!(status, 200);
    let health: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(health["status"], "pass");

    let v1 = |method: reqwest::Method, q: &str| {
        answer(
            http()
                .request(method, format!("{url}/query"))
                .query(&[("q", q)])
                .basic_auth("anyone", Some(t)),
        )
    };
    let (status, text) = v1(reqwest::Method::GET, "SHOW DATABASES");
    assert_eq!(status, 200, "{text}");
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap(),
        json!({"results": [{"statement_id": 0, "series": [{"name": "databases", "columns": ["name"]}]}]})
    );
    let (status, text) = v1(
        reqwest::Method::POST,
        "CREATE DATABASE \"telegraf\"; CREATE DATABASE net",
    );
    assert_eq!(status, 200, "{text}");
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap(),
        json!({"results": [{"statement_id": 0}, {"statement_id": 1}]})
    );
    let (_, text) = v1(reqwest::Method::GET, "show databases");
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap()["results"][0]["series"][0]["values"],
        json!([["net"], ["telegraf"]])
    );
    // A form body works as well.
    let (status, text) = answer(
        http()
            .post(format!("{url}/query"))
            .basic_auth("anyone", Some(t))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body("q=SHOW+DATABASES"),
    );
    assert_eq!((status, text.contains("telegraf")), (200, true), "{text}");
    let (status, text) = v1(reqwest::Method::GET, "SELECT * FROM cpu");
    assert_eq!(status, 400);
    let error = serde_json::from_str::<Value>(&text).unwrap()["error"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        error.contains("InfluxQL") && error.contains("/api/v1/query"),
        "{error}"
    );
    let (status, text) = answer(http().get(format!("{url}/query")).basic_auth("x", Some(t)));
    assert_eq!(
        (status, text.contains("missing required parameter")),
        (400, true),
        "{text}"
    );
    let (status, text) = answer(
        http()
            .get(format!("{url}/nowhere"))
            .basic_auth("x", Some(t)),
    );
    assert_eq!(
        (status, text.contains("no endpoint /nowhere")),
        (404, true),
        "{text}"
    );
    weir.stop();
}

#[test]
fn every_query_format_streams_the_same_rows() {
    let (_tmp, dir) = data_dir();
    let weir = server(&dir, &[]);
    let (url, t) = (&weir.url, Some(weir.admin()));
    let body: String = (0..20_000)
        .map(|i| {
            let host = format!("h{}", i % 3);
            if i % 10 == 0 {
                format!("cpu,host={host} usage={}.5,n={i}i,ok=true {i}\n", i % 100)
            } else {
                format!("cpu,host={host} usage={}.5,n={i}i {i}\n", i % 100)
            }
        })
        .collect();
    assert_eq!(write_v1(url, t, "db=fmt&precision=s", &body).0, 204);
    let sql = "SELECT host, usage, n, ok, time FROM cpu ORDER BY n";

    // json (the default): an array of row objects with every column.
    let json_rows = rows(url, t, "fmt", sql);
    assert_eq!(json_rows.len(), 20_000);
    assert_eq!(
        json_rows[10],
        json!({"host": "h1", "usage": 10.5, "n": 10, "ok": true, "time": "1970-01-01T00:00:10Z"})
    );
    assert_eq!(json_rows[11]["ok"], Value::Null);

    // jsonl: the same objects, one per line.
    let (status, bytes) = query(url, t, json!({"db": "fmt", "sql": sql, "format": "jsonl"}));
    assert_eq!(status, 200);
    let text = String::from_utf8(bytes).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines, json_rows);

    // csv: a header, then the rows.
    let (status, bytes) = query(url, t, json!({"db": "fmt", "sql": sql, "format": "csv"}));
    assert_eq!(status, 200);
    let text = String::from_utf8(bytes).unwrap();
    let mut csv = text.lines();
    assert_eq!(csv.next(), Some("host,usage,n,ok,time"));
    assert_eq!(csv.next(), Some("h0,0.5,0,true,1970-01-01T00:00:00Z"));
    assert_eq!(csv.next(), Some("h1,1.5,1,,1970-01-01T00:00:01Z"));
    assert_eq!(text.lines().count(), 20_001);

    // arrow: an IPC stream with the same values.
    let response = http()
        .post(format!("{url}/api/v1/query"))
        .header("Authorization", format!("Token {}", t.unwrap()))
        .body(json!({"db": "fmt", "sql": sql, "format": "arrow"}).to_string())
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "application/vnd.apache.arrow.stream"
    );
    let reader = arrow::ipc::reader::StreamReader::try_new(response, None).unwrap();
    let batches: Vec<_> = reader.map(Result::unwrap).collect();
    let total: usize = batches.iter().map(|b| b.num_rows()).sum();
    assert_eq!(total, 20_000);
    let first = &batches[0];
    let n = first
        .column_by_name("n")
        .unwrap()
        .as_any()
        .downcast_ref::<arrow::array::Int64Array>()
        .unwrap();
    assert_eq!((n.value(0), n.value(7)), (0, 7));
    let schema = first.schema();
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(names, ["host", "usage", "n", "ok", "time"]);

    // An empty result is still a valid document in each format.
    let empty = "SELECT host FROM cpu WHERE n < 0";
    for (format, expected) in [("json", "[]"), ("jsonl", ""), ("csv", "host\n")] {
        let (status, bytes) = query(url, t, json!({"db": "fmt", "sql": empty, "format": format}));
        assert_eq!(
            (status, String::from_utf8(bytes).unwrap()),
            (200, expected.to_owned())
        );
    }

    // Errors: the engine's message with 400; an unknown database 404.
    let (status, bytes) = query(url, t, json!({"db": "fmt", "sql": "SELECT nope FROM cpu"}));
    let text = String::from_utf8(bytes).unwrap();
    assert_eq!(status, 400, "{text}");
    let error = serde_json::from_str::<Value>(&text).unwrap()["error"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(error.contains("No field named nope"), "{error}");
    let (status, bytes) = query(url, t, json!({"db": "fmt", "sql": "SELEC 1"}));
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&bytes));
    let (status, bytes) = query(url, t, json!({"db": "nope", "sql": "SELECT 1"}));
    assert_eq!(status, 404);
    assert_eq!(
        serde_json::from_slice::<Value>(&bytes).unwrap(),
        json!({"error": "database not found: \"nope\""})
    );
    let (status, bytes) = query(
        url,
        t,
        json!({"db": "fmt", "sql": "SELECT 1", "format": "xml"}),
    );
    assert_eq!(status, 400);
    assert!(String::from_utf8_lossy(&bytes).contains("unknown variant `xml`"));
    let (status, bytes) = query(url, t, json!({"db": "fmt", "query": "SELECT 1"}));
    assert_eq!(status, 400);
    assert!(String::from_utf8_lossy(&bytes).contains("unknown field `query`"));
    weir.stop();
}

#[test]
fn weir_query_url_prints_tables_and_formats() {
    let (_tmp, dir) = data_dir();
    let weir = server(&dir, &[]);
    let (url, t) = (weir.url.as_str(), weir.admin());
    let body = "ping,dst=ams rtt=10 1\nping,dst=ams rtt=30 2\nping,dst=fra rtt=5 3\n";
    assert_eq!(write_v1(url, Some(t), "db=net&precision=s", body).0, 204);
    let sql = "SELECT dst, avg(rtt) AS mean, count(*) AS n FROM ping GROUP BY dst ORDER BY dst";
    let out = run(&["query", "--url", url, "--token", t, "--db", "net", sql]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let table: Vec<&str> = stdout.lines().filter(|l| l.starts_with("| ")).collect();
    assert_eq!(
        table,
        [
            "| dst | mean | n |",
            "| ams | 20.0 | 2 |",
            "| fra | 5.0  | 1 |"
        ]
    );
    let out = run(&[
        "query", "--url", url, "--token", t, "--db", "net", "--format", "csv", sql,
    ]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "dst,mean,n\nams,20.0,2\nfra,5.0,1\n"
    );
    let out = run(&[
        "query", "--url", url, "--token", t, "--db", "net", "--format", "json", sql,
    ]);
    let parsed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(parsed[1], json!({"dst": "fra", "mean": 5.0, "n": 1}));
    // The token may come from the environment.
    let out = weir_command()
        .env("WEIR_TOKEN", t)
        .args([
            "query", "--url", url, "--db", "net", "--format", "jsonl", sql,
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 2);

    let out = run(&[
        "query",
        "--url",
        url,
        "--token",
        t,
        "--db",
        "net",
        "SELECT nope FROM ping",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("weir query: the server answered 400: Schema error"),
        "{stderr}"
    );
    let out = run(&["query", "--url", url, "--db", "net", "SELECT 1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("401: missing token"));
    weir.stop();
}

#[test]
fn query_limits_stop_runaway_queries() {
    let (_tmp, dir) = data_dir();
    let weir = server(
        &dir,
        &[
            "--no-auth",
            "--query-timeout-secs",
            "1",
            "--query-memory-limit-bytes",
            "100000",
        ],
    );
    let url = &weir.url;
    assert_eq!(write_v1(url, None, "db=lim", "m v=1 1").0, 204);
    let (status, bytes) = query(
        url,
        None,
        json!({"db": "lim", "sql": "SELECT v FROM generate_series(1, 300000) AS t(v) ORDER BY v DESC"}),
    );
    let text = String::from_utf8_lossy(&bytes);
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("Resources exhausted"), "{text}");
    let (status, bytes) = query(
        url,
        None,
        json!({"db": "lim", "sql": "SELECT sum(v) FROM generate_series(1, 100000000000) AS t(v)"}),
    );
    let text = String::from_utf8_lossy(&bytes);
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("ran longer than 1 s"), "{text}");

    // Past the timeout after rows were sent: the body is cut off, so the
    // client sees an error rather than a short result that looks whole.
    for format in ["csv", "jsonl", "json", "arrow"] {
        let response = http()
            .post(format!("{url}/api/v1/query"))
            .body(
                json!({"db": "lim", "sql": "SELECT v FROM generate_series(1, 100000000000) AS t(v)", "format": format})
                    .to_string(),
            )
            .send()
            .unwrap();
        assert_eq!(response.status(), 200, "{format}: streaming started");
        let cut = response.bytes();
        assert!(
            cut.is_err(),
            "{format}: a cut-off body must not end cleanly"
        );
    }
    weir.stop();
}

#[test]
fn garbage_never_takes_the_server_down() {
    let (_tmp, dir) = data_dir();
    let weir = server(&dir, &["--no-auth"]);
    let url = &weir.url;
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut noise = |n: usize| -> Vec<u8> {
        (0..n)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                (seed >> 24) as u8
            })
            .collect()
    };
    for round in 0..40 {
        let body = noise(1 + round * 97);
        for (path, encoding) in [
            ("/write?db=g", None),
            ("/write?db=g", Some("gzip")),
            ("/api/v2/write?bucket=g&precision=s", None),
            ("/api/v1/query", None),
            ("/query", None),
            ("/api/v1/tokens", None),
        ] {
            let mut r = http().post(format!("{url}{path}")).body(body.clone());
            if let Some(e) = encoding {
                r = r.header("Content-Encoding", e);
            }
            let status = r.send().unwrap().status().as_u16();
            assert!(status < 500, "{path}: {status}");
        }
    }
    for q in ["%ff%fe", "db=%00&precision=%zz", "db=g&db=h", "q=%22"] {
        let status = http()
            .post(format!("{url}/write?{q}"))
            .body("m v=1")
            .send()
            .unwrap()
            .status();
        assert!(status.as_u16() < 500, "{q}: {status}");
    }
    assert_eq!(
        http().get(format!("{url}/ping")).send().unwrap().status(),
        204
    );
    weir.stop();
}

#[test]
fn metrics_count_requests_lines_and_storage() {
    let (_tmp, dir) = data_dir();
    let weir = server(&dir, &[]);
    let (url, t) = (&weir.url, Some(weir.admin()));
    assert_eq!(write_v1(url, t, "db=m", "a v=1 1\na v=2 2\na v=x 3").0, 400);
    assert_eq!(write_v1(url, t, "db=m", "a v=4 4").0, 204);
    rows(url, t, "m", "SELECT * FROM a");
    // A query is counted once its last byte is sent, which the client may
    // see a moment before the server records it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let (status, text) = loop {
        let (status, text) = answer(with_token(http().get(format!("{url}/metrics")), t));
        if text.contains("weir_query_duration_seconds_count 1\n")
            || std::time::Instant::now() > deadline
        {
            break (status, text);
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert_eq!(status, 200);
    for expected in [
        "weir_http_requests_total{endpoint=\"/write\",status=\"400\"} 1\n",
        "weir_http_requests_total{endpoint=\"/write\",status=\"204\"} 1\n",
        "weir_http_requests_total{endpoint=\"/api/v1/query\",status=\"200\"} 1\n",
        "weir_write_lines_accepted_total 3\n",
        "weir_write_lines_rejected_total 1\n",
        "weir_write_duration_seconds_count 2\n",
        "weir_query_duration_seconds_count 1\n",
        "weir_queries_total{result=\"ok\"} 1\n",
        "weir_buffer_rows 3\n",
        "weir_persisted_files 0\n",
        "weir_databases 1\n",
        "# TYPE weir_write_duration_seconds histogram\n",
        "# TYPE weir_wal_fsync_duration_seconds histogram\n",
    ] {
        assert!(text.contains(expected), "no {expected:?} in\n{text}");
    }
    // Each acknowledged write waited for an fsync of the log.
    let fsyncs: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("weir_wal_fsync_duration_seconds_count "))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no fsync count in\n{text}"));
    assert!(fsyncs >= 2, "{fsyncs} fsyncs for two writes\n{text}");
    weir.stop();
}

#[test]
fn queries_cannot_change_anything() {
    let (_tmp, dir) = data_dir();
    let weir = server(&dir, &["--no-auth"]);
    let url = &weir.url;
    assert_eq!(write_v1(url, None, "db=ro", "m v=1 1").0, 204);
    let target = dir.join("copied.csv");
    for sql in [
        format!(
            "COPY (SELECT * FROM m) TO '{}' STORED AS CSV",
            target.display()
        ),
        "CREATE TABLE t AS SELECT 1 AS x".to_owned(),
        "CREATE VIEW v AS SELECT * FROM m".to_owned(),
        "INSERT INTO m (v) VALUES (2)".to_owned(),
        "DROP TABLE m".to_owned(),
        "SET datafusion.execution.batch_size = 1".to_owned(),
    ] {
        let (status, bytes) = query(url, None, json!({"db": "ro", "sql": sql}));
        let text = String::from_utf8_lossy(&bytes);
        assert_eq!(status, 400, "{sql}: {text}");
        assert!(text.contains("not supported"), "{sql}: {text}");
    }
    assert!(!target.exists(), "COPY TO wrote {}", target.display());
    assert_eq!(
        rows(url, None, "ro", "SELECT v FROM m"),
        vec![json!({"v": 1.0})]
    );
    weir.stop();
}

#[test]
fn many_clients_at_once() {
    let (_tmp, dir) = data_dir();
    let weir = server(&dir, &["--no-auth"]);
    let url = Arc::new(weir.url.clone());
    let writers: Vec<_> = (0..8)
        .map(|c| {
            let url = Arc::clone(&url);
            std::thread::spawn(move || {
                for batch in 0..20 {
                    let body: String = (0..50)
                        .map(|i| format!("load,c=c{c} v={i}i {}\n", batch * 50 + i))
                        .collect();
                    assert_eq!(write_v1(&url, None, "db=load", &body).0, 204);
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    assert_eq!(count(&url, None, "load", "load"), 8 * 20 * 50);
    weir.stop();
}

#[test]
fn distribution_aggregates_come_back_as_json_lists_and_csv_says_why_not() {
    let (_tmp, dir) = data_dir();
    let weir = server(&dir, &[]);
    let (url, t) = (&weir.url, Some(weir.admin()));
    let body: String = (1..=100)
        .map(|i| format!("probe_http,target=a ttfb_us={i}i {i}\n"))
        .collect();
    assert_eq!(write_v1(url, t, "db=net&precision=s", &body).0, 204);
    let sql = "SELECT quantiles(ttfb_us, 0.5, 0.99) AS q, cdf(ttfb_us, 4) AS c FROM probe_http";
    let got = rows(url, t, "net", sql);
    assert_eq!(got[0]["q"], json!([50.5, 99.01]));
    assert_eq!(got[0]["c"][3], json!({"value": 100.0, "fraction": 1.0}));
    assert_eq!(got[0]["c"][0], json!({"value": 25.0, "fraction": 0.25}));
    let (status, bytes) = query(url, t, json!({"db": "net", "sql": sql, "format": "csv"}));
    let text = String::from_utf8_lossy(&bytes);
    assert_eq!(status, 400, "{text}");
    assert!(
        text.contains("\\\"q\\\"") && text.contains("json"),
        "{text}"
    );
}
