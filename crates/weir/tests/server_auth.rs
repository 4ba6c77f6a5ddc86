//! Tokens against a real `weir server` process: the auth matrix, every way
//! of presenting a token, tokens made and deleted while the server runs,
//! restarts, `weir up` and the configuration file.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::{json, Value};

/// The token `weir token create` printed: alone on the last line.
fn create_token(dir: &std::path::Path, args: &[&str]) -> String {
    let mut all = vec!["token", "create", "--data-dir", dir.to_str().unwrap()];
    all.extend_from_slice(args);
    let out = run(&all);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let last = stdout.lines().last().unwrap().to_owned();
    assert!(last.starts_with("weir_") && !last.contains(' '), "{stdout}");
    last
}

#[test]
fn the_auth_matrix() {
    let (_tmp, dir) = data_dir();
    let weir = server(&dir, &[]);
    let url = weir.url.clone();
    let admin = weir.admin().to_owned();
    let read = create_token(&dir, &["--db", "net", "--read"]);
    let write = create_token(&dir, &["--db", "net", "--write", "--description", "agents"]);
    let other = create_token(&dir, &["--db", "other", "--admin"]);
    let all_read = create_token(&dir, &["--all-databases", "--read"]);
    let line = "ping,dst=a rtt=1 1";

    // No token, an unknown token: 401 with a challenge and a JSON body.
    let response = http()
        .post(format!("{url}/write?db=net"))
        .body(line)
        .send()
        .unwrap();
    assert_eq!(response.status(), 401);
    assert!(response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("Token"));
    let body: Value = serde_json::from_str(&response.text().unwrap()).unwrap();
    assert!(
        body["error"].as_str().unwrap().starts_with("missing token"),
        "{body}"
    );
    let (status, text) = write_v1(&url, Some("weir_guessed"), "db=net", line);
    assert_eq!(status, 401);
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap(),
        json!({"error": "unknown token"})
    );
    let (status, text) = write_v2(&url, None, "bucket=net", line);
    assert_eq!(status, 401);
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap()["code"],
        "unauthorized"
    );

    // Scopes and databases.
    let sql = json!({"db": "net", "sql": "SELECT count(*) AS n FROM ping"});
    assert_eq!(write_v1(&url, Some(&write), "db=net", line).0, 204);
    assert_eq!(
        write_v2(&url, Some(&write), "bucket=net", "ping,dst=b rtt=2 2").0,
        204
    );
    let (status, text) = write_v1(&url, Some(&read), "db=net", line);
    assert_eq!(status, 403, "read token writing");
    let error = serde_json::from_str::<Value>(&text).unwrap()["error"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        error.contains("read token") && error.contains("may not write to database \"net\""),
        "{error}"
    );
    let (status, text) = write_v2(&url, Some(&read), "bucket=net", line);
    assert_eq!(status, 403);
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap()["code"],
        "forbidden"
    );
    assert_eq!(
        query(&url, Some(&write), sql.clone()).0,
        403,
        "write token reading"
    );
    assert_eq!(query(&url, Some(&read), sql.clone()).0, 200);
    assert_eq!(query(&url, Some(&all_read), sql.clone()).0, 200);
    assert_eq!(write_v1(&url, Some(&all_read), "db=net", line).0, 403);
    assert_eq!(
        query(&url, Some(&other), sql.clone()).0,
        403,
        "token for another database"
    );
    assert_eq!(write_v1(&url, Some(&other), "db=net", line).0, 403);
    assert_eq!(
        write_v1(&url, Some(&other), "db=other", line).0,
        204,
        "admin of its own database"
    );
    assert_eq!(write_v1(&url, Some(&read), "db=other", line).0, 403);
    assert_eq!(write_v1(&url, Some(&admin), "db=net", line).0, 204);
    assert_eq!(query(&url, Some(&admin), sql.clone()).0, 200);

    // Every way of presenting a token.
    let (status, _) = answer(
        http()
            .post(format!("{url}/write?db=net"))
            .bearer_auth(&write)
            .body(line),
    );
    assert_eq!(status, 204, "Bearer");
    let (status, _) = answer(
        http()
            .post(format!("{url}/write?db=net"))
            .basic_auth("whoever", Some(&write))
            .body(line),
    );
    assert_eq!(status, 204, "Basic");
    let (status, _) = answer(
        http()
            .post(format!("{url}/write"))
            .query(&[("db", "net"), ("u", "me"), ("p", write.as_str())])
            .body(line),
    );
    assert_eq!(status, 204, "u/p parameters");
    let (status, _) = answer(
        http()
            .post(format!("{url}/write?db=net"))
            .basic_auth("whoever", Some("weir_wrong"))
            .body(line),
    );
    assert_eq!(status, 401);

    // SHOW DATABASES lists what the token may see.
    let (_, text) = answer(http().get(format!("{url}/query?q=SHOW+DATABASES&p={other}")));
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["results"][0]["series"][0]["values"], json!([["other"]]));
    let (status, _) = answer(http().post(format!("{url}/query?q=CREATE+DATABASE+x&p={read}")));
    assert_eq!(status, 403);

    // Public endpoints and /metrics (needs a read scope).
    assert_eq!(
        http().get(format!("{url}/ping")).send().unwrap().status(),
        204
    );
    assert_eq!(
        http().get(format!("{url}/health")).send().unwrap().status(),
        200
    );
    assert_eq!(
        http()
            .get(format!("{url}/metrics"))
            .send()
            .unwrap()
            .status(),
        401
    );
    assert_eq!(
        with_token(http().get(format!("{url}/metrics")), Some(&write))
            .send()
            .unwrap()
            .status(),
        403
    );
    assert_eq!(
        with_token(http().get(format!("{url}/metrics")), Some(&read))
            .send()
            .unwrap()
            .status(),
        200
    );
    weir.stop();
}

#[test]
fn tokens_made_and_deleted_while_the_server_runs() {
    let (_tmp, dir) = data_dir();
    let weir = server(&dir, &[]);
    let url = weir.url.clone();
    let d = dir.to_str().unwrap();

    let token = create_token(&dir, &["--db", "live", "--write"]);
    assert_eq!(
        write_v1(&url, Some(&token), "db=live", "m v=1 1").0,
        204,
        "accepted at once"
    );

    let out = run(&["token", "list", "--data-dir", d]);
    let list = String::from_utf8(out.stdout).unwrap();
    assert!(
        list.contains("write") && list.contains("live") && list.contains("admin"),
        "{list}"
    );
    assert!(!list.contains("weir_"), "no secrets in the list:\n{list}");
    let text = std::fs::read_to_string(dir.join("tokens.json")).unwrap();
    assert!(!text.contains(&token[5..]), "no secrets in tokens.json");
    let id = list
        .lines()
        .find(|l| l.contains("live"))
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    let out = run(&["token", "delete", "--data-dir", d, &id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eventually("the deleted token to be refused", || {
        write_v1(&url, Some(&token), "db=live", "m v=1 2").0 == 401
    });
    let out = run(&["token", "delete", "--data-dir", d, &id]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no token has id"));
    let out = run(&["token", "create", "--data-dir", d, "--db", "x"]);
    assert_eq!(out.status.code(), Some(2), "a scope is required");

    // Admins manage tokens over HTTP too.
    let admin = weir.admin().to_owned();
    let (status, text) = answer(
        with_token(http().post(format!("{url}/api/v1/tokens")), Some(&admin))
            .body(json!({"db": "live", "scope": "read", "description": "dashboards"}).to_string()),
    );
    assert_eq!(status, 201, "{text}");
    let made: Value = serde_json::from_str(&text).unwrap();
    let secret = made["token"].as_str().unwrap().to_owned();
    assert_eq!(
        query(
            &url,
            Some(&secret),
            json!({"db": "live", "sql": "SELECT 1"})
        )
        .0,
        200
    );
    let (status, text) = answer(with_token(
        http().get(format!("{url}/api/v1/tokens")),
        Some(&admin),
    ));
    assert_eq!(status, 200);
    assert!(
        text.contains("dashboards") && !text.contains(&secret),
        "{text}"
    );
    let (status, _) = answer(with_token(
        http().get(format!("{url}/api/v1/tokens")),
        Some(&secret),
    ));
    assert_eq!(status, 403, "a read token manages nothing");
    let (status, _) = answer(with_token(
        http().delete(format!(
            "{url}/api/v1/tokens/{}",
            made["id"].as_str().unwrap()
        )),
        Some(&admin),
    ));
    assert_eq!(status, 204);
    eventually("the token deleted over HTTP to be refused", || {
        query(
            &url,
            Some(&secret),
            json!({"db": "live", "sql": "SELECT 1"}),
        )
        .0 == 401
    });
    weir.stop();
}

#[test]
fn a_restart_keeps_data_and_tokens() {
    let (_tmp, dir) = data_dir();
    let weir = server(&dir, &[]);
    let admin = weir.admin().to_owned();
    assert_eq!(
        std::fs::read_to_string(dir.join("admin.token"))
            .unwrap()
            .trim(),
        admin
    );
    let writer = create_token(&dir, &["--db", "keep", "--write"]);
    let body: String = (0..500)
        .map(|i| format!("k,s=s{} v={i}i {i}\n", i % 5))
        .collect();
    assert_eq!(write_v1(&weir.url, Some(&writer), "db=keep", &body).0, 204);
    weir.stop();
    // A clean stop persists the buffer: the rows (and their half-hour and
    // daily rollups) are in Parquet.
    let parquet = std::fs::read_dir(dir.join("data"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "parquet"))
        })
        .count();
    assert_eq!(parquet, 3, "no Parquet files after a clean stop");

    let weir = server(&dir, &[]);
    assert!(weir.admin.is_none(), "no new admin token: {:?}", weir.lines);
    assert_eq!(count(&weir.url, Some(&admin), "keep", "k"), 500);
    assert_eq!(
        write_v1(&weir.url, Some(&writer), "db=keep", "k,s=x v=1i 1000").0,
        204
    );
    assert_eq!(count(&weir.url, Some(&admin), "keep", "k"), 501);
    weir.stop();

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for file in ["tokens.json", "admin.token"] {
            let mode = std::fs::metadata(dir.join(file))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{file}");
        }
    }
}

#[test]
fn weir_up_prints_the_url_and_a_working_token() {
    let (_tmp, dir) = data_dir();
    let d = dir.to_str().unwrap();
    let weir = spawn(
        &["up", "--listen", "127.0.0.1:0", "--data-dir", d],
        "weir is up: ",
    );
    let token_line = weir.next_line().unwrap();
    let token = common::admin_token_in(&token_line).unwrap();
    assert_eq!(
        write_v1(&weir.url, Some(&token), "db=net", "ping rtt=1 1").0,
        204
    );
    assert_eq!(count(&weir.url, Some(&token), "net", "ping"), 1);
    weir.stop();

    // Later starts show the saved token again.
    let weir = spawn(
        &["up", "--listen", "127.0.0.1:0", "--data-dir", d],
        "weir is up: ",
    );
    assert_eq!(weir.next_line().unwrap(), token_line);
    weir.stop();
}

#[test]
fn the_configuration_file_and_flags() {
    let (tmp, dir) = data_dir();
    let config = tmp.path().join("weir.toml");
    std::fs::write(
        &config,
        "listen = \"127.0.0.1:1\"\nno-auth = true\nmax-body-bytes = 10\n",
    )
    .unwrap();
    let c = config.to_str().unwrap();
    // Flags win over the file.
    let weir = server(&dir, &["--config", c, "--max-body-bytes", "1000"]);
    assert!(weir.admin.is_none(), "no token with no-auth = true");
    assert_eq!(write_v1(&weir.url, None, "db=c", "m v=1 1").0, 204);
    assert_eq!(write_v1(&weir.url, None, "db=c", &"#".repeat(1001)).0, 413);
    weir.stop();

    std::fs::write(&config, "listen = \"127.0.0.1:0\"\nquery_timeout = 5\n").unwrap();
    let out = run(&["server", "--config", c, "--data-dir", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("unknown field `query_timeout`"), "{stderr}");
    assert!(stderr.contains("weir.toml"), "{stderr}");
    let out = run(&["server", "--config", "/nonexistent/weir.toml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/weir.toml"));

    // A data directory in use by another server is refused with the reason.
    let weir = server(&dir, &["--no-auth"]);
    let out = run(&[
        "server",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("in use by another weir process"));
    weir.stop();
}
