//! The dashboard in a real browser: headless Chromium (Debian's `chromium`,
//! installed by `scripts/install-chromium.sh` when missing) logs in with a
//! read token and visits every page of a real server holding realistic
//! data. No page may raise a JavaScript exception, call `console.error`
//! or fail to load a resource; each must show rendered SVG charts (Explore:
//! the results of a query). A screenshot of each page is saved under the
//! target directory (`CARGO_TARGET_TMPDIR/dashboard/<page>.png`).
//!
//! The test fails, saying what is missing, when Chromium cannot be had.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{dashboard_data, data_dir, server, PATIENCE};
use headless_chrome::protocol::cdp::types::Event;
use headless_chrome::protocol::cdp::{Log, Page, Runtime};
use headless_chrome::{Browser, LaunchOptions, Tab};

/// How long installing Chromium may take (a download of ~100 MB).
const INSTALL_PATIENCE: Duration = Duration::from_secs(900);

/// Chromium's path, installed first when missing.
fn chromium() -> PathBuf {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/install-chromium.sh");
    let mut child = Command::new("bash")
        .arg(&script)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    let deadline = Instant::now() + INSTALL_PATIENCE;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{} did not finish within {INSTALL_PATIENCE:?}",
                script.display()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let output = child.wait_with_output().unwrap();
    assert!(
        status.success(),
        "Chromium is missing and {} could not install it ({status}); this test needs Debian's \
         `chromium` package.\nstdout: {}\nstderr: {}",
        script.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let found = Command::new("sh")
        .args(["-c", "command -v chromium"])
        .output()
        .unwrap();
    let path = String::from_utf8_lossy(&found.stdout).trim().to_owned();
    assert!(
        !path.is_empty(),
        "the install script succeeded but there is no chromium on PATH"
    );
    PathBuf::from(path)
}

/// What the page said went wrong: exceptions, `console.error`, and the
/// browser's own errors (a resource that failed to load, a CSP violation).
#[derive(Default)]
struct Complaints(Mutex<Vec<String>>);

impl Complaints {
    fn hear(&self, event: &Event) {
        let complaint = match event {
            Event::RuntimeExceptionThrown(e) => {
                let d = &e.params.exception_details;
                let what = d
                    .exception
                    .as_ref()
                    .and_then(|x| x.description.clone())
                    .unwrap_or_else(|| d.text.clone());
                Some(format!("exception: {what} ({:?}:{})", d.url, d.line_number))
            }
            Event::RuntimeConsoleAPICalled(e)
                if matches!(
                    e.params.Type,
                    Runtime::ConsoleAPICalledEventTypeOption::Error
                ) =>
            {
                let args: Vec<String> = e
                    .params
                    .args
                    .iter()
                    .map(|a| {
                        a.value
                            .as_ref()
                            .map(|v| v.to_string())
                            .or_else(|| a.description.clone())
                            .unwrap_or_default()
                    })
                    .collect();
                Some(format!("console.error: {}", args.join(" ")))
            }
            Event::LogEntryAdded(e)
                if matches!(e.params.entry.level, Log::LogEntryLevel::Error) =>
            {
                Some(format!(
                    "browser: {} ({:?})",
                    e.params.entry.text, e.params.entry.url
                ))
            }
            _ => None,
        };
        if let Some(c) = complaint {
            self.0.lock().unwrap().push(c);
        }
    }

    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

/// Evaluates `expression` (JSON-valued) in the page.
fn eval(tab: &Tab, expression: &str) -> serde_json::Value {
    let wrapped = format!("JSON.stringify((() => {{ return {expression}; }})())");
    let result = tab.evaluate(&wrapped, false).unwrap();
    let text = result
        .value
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    serde_json::from_str(&text).unwrap_or(serde_json::Value::Null)
}

/// Waits (bounded) until `expression` is true in the page.
fn wait_for(tab: &Tab, what: &str, expression: &str) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if eval(tab, expression) == serde_json::Value::Bool(true) {
            return;
        }
        if Instant::now() > deadline {
            let text = eval(tab, "document.body.innerText.slice(0, 2000)");
            panic!("timed out after {PATIENCE:?} waiting for {what}; the page says: {text}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The whole page as PNG under the target directory.
fn screenshot(tab: &Tab, page: &str) -> PathBuf {
    // From the top, or the sticky header is drawn where the page was scrolled to.
    eval(tab, "(() => { window.scrollTo(0, 0); return true; })()");
    let height = eval(tab, "document.documentElement.scrollHeight")
        .as_f64()
        .unwrap_or(1000.0);
    let width = eval(tab, "document.documentElement.scrollWidth")
        .as_f64()
        .unwrap_or(1400.0);
    let data = tab
        .call_method(Page::CaptureScreenshot {
            format: Some(Page::CaptureScreenshotFormatOption::Png),
            quality: None,
            clip: Some(Page::Viewport {
                x: 0.0,
                y: 0.0,
                width,
                height,
                scale: 1.0,
            }),
            from_surface: Some(true),
            capture_beyond_viewport: Some(true),
            optimize_for_speed: None,
        })
        .unwrap()
        .data;
    use base64::Engine as _;
    let png = base64::engine::general_purpose::STANDARD
        .decode(data)
        .unwrap();
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{page}.png"));
    std::fs::write(&path, png).unwrap();
    path
}

/// Charts on the page that drew data, and charts at all.
const CHARTS_DRAWN: &str =
    "document.querySelectorAll('#page figure.chart .chart-body > svg').length";
const CHARTS_WITH_DATA: &str =
    "document.querySelectorAll('#page figure.chart:not(.empty) .chart-body > svg').length";

/// Goes to `page` by its link and waits for its charts.
fn visit(tab: &Tab, page: &str, charts: usize) {
    tab.wait_for_element(&format!("nav a[data-page=\"{page}\"]"))
        .unwrap()
        .click()
        .unwrap();
    wait_for(
        tab,
        &format!("{charts} charts on {page}"),
        &format!(
            "document.querySelector('#page').dataset.page === '{page}' && \
             !document.querySelector('#page').hasAttribute('aria-busy') && {CHARTS_DRAWN} >= {charts}"
        ),
    );
}

#[test]
fn every_page_loads_in_chromium_without_errors_and_shows_charts() {
    let chromium = chromium();
    let (_tmp, dir) = data_dir();
    let weir = server(&dir, &[]);
    dashboard_data::write(&weir.url, Some(weir.admin()), "telemetry");
    let reader = dashboard_data::read_token(&dir, "telemetry");

    let browser = Browser::new(LaunchOptions {
        path: Some(chromium),
        headless: true,
        // Root in a container has no user namespace for the sandbox.
        sandbox: false,
        window_size: Some((1400, 1000)),
        idle_browser_timeout: PATIENCE,
        ..LaunchOptions::default()
    })
    .expect("headless Chromium starts");
    let tab = browser.new_tab().unwrap();
    tab.set_default_timeout(PATIENCE);
    let complaints = Arc::new(Complaints::default());
    let ear = Arc::clone(&complaints);
    tab.add_event_listener(Arc::new(move |event: &Event| ear.hear(event)))
        .unwrap();
    tab.enable_runtime().unwrap();
    tab.enable_log().unwrap();

    // A wrong token is refused with the server's reason, on the form.
    tab.navigate_to(&format!("{}/", weir.url))
        .unwrap()
        .wait_until_navigated()
        .unwrap();
    tab.wait_for_element("#token").unwrap().click().unwrap();
    // Pasted, as a token is.
    tab.send_character("weir_not-a-token").unwrap();
    tab.wait_for_element("#login-form button[type=submit]")
        .unwrap()
        .click()
        .unwrap();
    wait_for(
        &tab,
        "the login form to say why",
        "!document.querySelector('#login-error').hidden && \
         document.querySelector('#login-error').textContent.includes('unknown token')",
    );
    // That 401 is the one error the browser may log.
    let refused = complaints.take();
    assert!(
        !refused.is_empty() && refused.iter().all(|c| c.contains("401")),
        "the refused login, and only it: {refused:?}"
    );

    tab.wait_for_element("#token").unwrap().click().unwrap();
    tab.send_character(&reader).unwrap();
    tab.wait_for_element("#login-form button[type=submit]")
        .unwrap()
        .click()
        .unwrap();
    wait_for(
        &tab,
        "the database list",
        "document.querySelector('#db').value === 'telemetry'",
    );

    let mut shots = Vec::new();
    // Overview: the host and interface tables, the risky interface marked.
    visit(&tab, "overview", 4);
    wait_for(
        &tab,
        "the hosts table",
        "document.querySelectorAll('#page tbody tr').length >= 6",
    );
    assert_eq!(
        eval(&tab, "[...document.querySelectorAll('#page tr.risk td')].slice(0, 2).map(td => td.textContent)"),
        serde_json::json!(["h1", "eth0"])
    );
    assert_eq!(eval(&tab, CHARTS_WITH_DATA), serde_json::json!(4));
    shots.push(("overview", screenshot(&tab, "overview")));

    // Probes: 4 CDFs, the smoke bands and the rainbow, all with data.
    visit(&tab, "probes", 6);
    assert_eq!(eval(&tab, CHARTS_WITH_DATA), serde_json::json!(6));
    assert_eq!(
        eval(
            &tab,
            "document.querySelector('#page figure[data-chart=bands]').innerHTML.includes('— sin')"
        ),
        serde_json::Value::Bool(true),
        "a smoke panel per target"
    );
    // The downloads go through fetch with the token; catch the files.
    eval(
        &tab,
        "(() => { window.__files = []; const click = HTMLAnchorElement.prototype.click; \
          HTMLAnchorElement.prototype.click = function () { \
            if (this.download) { window.__files.push(this.download); return; } \
            return click.call(this); }; return true; })()",
    );
    tab.wait_for_element("#page figure[data-chart=rainbow] figcaption button:nth-of-type(1)")
        .unwrap()
        .click()
        .unwrap();
    tab.wait_for_element("#page figure[data-chart=rainbow] figcaption button:nth-of-type(2)")
        .unwrap()
        .click()
        .unwrap();
    wait_for(
        &tab,
        "the SVG and CSV downloads",
        "JSON.stringify(window.__files) === JSON.stringify(['failures.svg', 'failures.csv'])",
    );
    shots.push(("probes", screenshot(&tab, "probes")));

    // Network: utilisation and balance CDFs and the node table.
    visit(&tab, "network", 2);
    assert_eq!(eval(&tab, CHARTS_WITH_DATA), serde_json::json!(2));
    wait_for(
        &tab,
        "the node table",
        "document.querySelectorAll('#page tbody tr').length === 2",
    );
    shots.push(("network", screenshot(&tab, "network")));

    // Explore: a query of our own, its rows in a table; a bad one's error.
    visit(&tab, "explore", 0);
    eval(
        &tab,
        "(() => { document.querySelector('#sql').value = \
          \"SELECT target, count(*) AS downloads FROM probe_http GROUP BY target ORDER BY target\"; \
          return true; })()",
    );
    tab.wait_for_element("#run").unwrap().click().unwrap();
    wait_for(
        &tab,
        "the query's rows",
        "[...document.querySelectorAll('#result tbody tr td:first-child')].map(td => td.textContent).join() === 'ams,fra,sin'",
    );
    shots.push(("explore", screenshot(&tab, "explore")));
    let heard = complaints.take();
    assert!(heard.is_empty(), "the pages complained: {heard:#?}");

    // A query the engine refuses: its reason on the page (and the 400 the
    // browser logs for it, nothing else).
    eval(
        &tab,
        "(() => { document.querySelector('#sql').value = 'SELECT nope FROM probe_http'; return true; })()",
    );
    tab.wait_for_element("#run").unwrap().click().unwrap();
    wait_for(
        &tab,
        "the query's error",
        "(document.querySelector('#result .error') || {textContent: ''}).textContent.includes('nope')",
    );
    let heard = complaints.take();
    assert!(
        !heard.is_empty() && heard.iter().all(|c| c.contains("400")),
        "the refused query, and only it: {heard:#?}"
    );
    for (page, path) in shots {
        let size = std::fs::metadata(&path).unwrap().len();
        assert!(
            size > 20_000,
            "{page}: a {size}-byte screenshot shows little"
        );
        eprintln!("dashboard {page}: {}", path.display());
    }
}
