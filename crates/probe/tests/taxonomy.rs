//! Each failure class of DESIGN's taxonomy, with its phase, produced by a
//! real perfd (or a real SOCKS5 server) on loopback; and successes, direct,
//! through SOCKS5 and over TLS.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{closed_port, perfd, quick, socks5, Socks};
use probe::{download, DownloadResult, FailureClass, Phase, Reach, Socks5, Target};

async fn get(url: &str, reach: &Reach) -> DownloadResult {
    download(&Target::parse(url).unwrap(), reach, None).await
}

fn assert_fails(r: &DownloadResult, class: FailureClass, phase: Phase) {
    let f = r
        .failure
        .as_ref()
        .unwrap_or_else(|| panic!("{} succeeded", r.url));
    assert_eq!(
        (f.class, f.phase),
        (class, phase),
        "{}: {}",
        r.url,
        f.detail
    );
    assert!(!r.ok());
}

fn via(proxy: std::net::SocketAddr) -> Reach {
    Reach {
        socks5: Some(Socks5::parse(&proxy.to_string()).unwrap()),
        ..quick()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_complete_download_has_every_timestamp() {
    let (http, _) = perfd(None).await;
    let r = get(&format!("http://{http}/bulk/{}", 5 << 20), &quick()).await;
    assert!(r.ok(), "{:?}", r.failure);
    assert_eq!(r.bytes_received, 5 << 20);
    assert_eq!(r.status, Some(200));
    let t = &r.times;
    let order = [
        t.dns,
        t.connect,
        t.request_sent,
        t.response_header,
        t.first_byte,
        t.milestones[0],
        t.milestones[1],
        t.milestones[4],
        t.last_byte,
    ];
    let order: Vec<u64> = order.iter().map(|v| v.expect("timestamp")).collect();
    assert!(order.windows(2).all(|w| w[0] <= w[1]), "{order:?}");
    assert!(t.deciles.iter().all(Option::is_some));
    assert_eq!(t.deciles[9], t.last_byte);
    assert!(t.dl_last_mib_bps().is_some() && t.dl_legacy_bps().is_some());
    assert!(t.socks_reply.is_none() && t.tls.is_none());
    assert_eq!(r.ttlb_us(), t.last_byte);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_failure() {
    let r = get("http://weir-probe-test.invalid/bulk/10", &quick()).await;
    assert_fails(&r, FailureClass::Dns, Phase::Dns);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_and_proxy_connect_failures() {
    let closed = closed_port().await;
    let r = get(&format!("http://{closed}/bulk/10"), &quick()).await;
    assert_fails(&r, FailureClass::Connect, Phase::Connect);
    let (http, _) = perfd(None).await;
    let r = get(&format!("http://{http}/bulk/10"), &via(closed)).await;
    assert_fails(&r, FailureClass::ProxyConnect, Phase::Connect);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_socks_reply_code_is_its_own_class() {
    for code in 1..=8u8 {
        let proxy = socks5(Socks::Reply(code)).await;
        let r = get("http://example.org/bulk/10", &via(proxy)).await;
        assert_fails(&r, FailureClass::SocksReply(code), Phase::Socks);
        assert!(r.times.socks_method.is_some() && r.times.socks_reply.is_some());
    }
    let proxy = socks5(Socks::NoMethod).await;
    let r = get("http://example.org/bulk/10", &via(proxy)).await;
    assert_fails(&r, FailureClass::ProxyProtocol, Phase::Socks);
    let proxy = socks5(Socks::Silent).await;
    let reach = Reach {
        stallout: Duration::from_millis(300),
        ..via(proxy)
    };
    let r = get("http://example.org/bulk/10", &reach).await;
    assert_fails(&r, FailureClass::Stallout, Phase::Socks);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_through_socks5_with_remote_dns_and_credentials() {
    let (http, _) = perfd(None).await;
    let proxy = socks5(Socks::Forward).await;
    // "localhost" goes to the proxy unresolved; it resolves it.
    let url = format!("http://localhost:{}/bulk/1048576", http.port());
    let r = get(&url, &via(proxy)).await;
    assert!(r.ok(), "{:?}", r.failure);
    assert_eq!(r.bytes_received, 1 << 20);
    let t = &r.times;
    assert!(t.connect <= t.socks_method && t.socks_method <= t.socks_reply);
    assert!(t.socks_reply <= t.request_sent);

    let proxy = socks5(Socks::ForwardWithAuth("u".into(), "secret".into())).await;
    let mut reach = via(proxy);
    if let Some(p) = &mut reach.socks5 {
        p.credentials = Some(("u".into(), "secret".into()));
    }
    assert!(get(&url, &reach).await.ok());
    if let Some(p) = &mut reach.socks5 {
        p.credentials = Some(("u".into(), "wrong".into()));
    }
    assert_fails(
        &get(&url, &reach).await,
        FailureClass::ProxyProtocol,
        Phase::Socks,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_the_right_and_the_wrong_ca() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = common::certificates(dir.path(), "good");
    let (other_ca, _, _) = common::certificates(dir.path(), "other");
    let (https, _) = perfd(Some((cert, key))).await;
    let url = format!("https://127.0.0.1:{}/bulk/100000", https.port());
    let trusted = Reach {
        ca_file: Some(ca),
        ..quick()
    };
    let r = get(&url, &trusted).await;
    assert!(r.ok(), "{:?}", r.failure);
    assert!(r.times.tls.is_some() && r.times.tls <= r.times.request_sent);
    let wrong = Reach {
        ca_file: Some(other_ca),
        ..quick()
    };
    assert_fails(&get(&url, &wrong).await, FailureClass::Tls, Phase::Tls);
    let r = get(&format!("{url}?close_after=5000"), &trusted).await;
    assert_fails(&r, FailureClass::Short, Phase::Body);
    assert_eq!(r.bytes_received, 5000);
    // The bundled web roots do not know the test CA either.
    assert_fails(&get(&url, &quick()).await, FailureClass::Tls, Phase::Tls);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_status() {
    let (http, _) = perfd(None).await;
    let r = get(&format!("http://{http}/bulk/1000?status=503"), &quick()).await;
    assert_fails(&r, FailureClass::Http(503), Phase::Header);
    assert_eq!(r.status, Some(503));
    assert!(!r.partial());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_mid_body_is_a_partial_failure() {
    let (http, _) = perfd(None).await;
    let r = get(
        &format!("http://{http}/bulk/1048576?reset_after=300000"),
        &quick(),
    )
    .await;
    assert_fails(&r, FailureClass::Reset, Phase::Body);
    assert!(r.bytes_received <= 300_000, "{}", r.bytes_received);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_body_and_eof_before_the_header() {
    let (http, _) = perfd(None).await;
    let r = get(
        &format!("http://{http}/bulk/1048576?close_after=1000"),
        &quick(),
    )
    .await;
    assert_fails(&r, FailureClass::Short, Phase::Body);
    assert_eq!(r.bytes_received, 1000);
    assert!(r.partial());

    // A server that reads the request and closes without answering.
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        use tokio::io::AsyncReadExt;
        while let Ok((mut s, _)) = l.accept().await {
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf).await;
        }
    });
    let r = get(&format!("http://{addr}/bulk/10"), &quick()).await;
    assert_fails(&r, FailureClass::Eof, Phase::Header);
    assert!(!r.partial());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stallout_and_timeout_are_timeouts() {
    let (http, _) = perfd(None).await;
    let reach = Reach {
        stallout: Duration::from_millis(300),
        ..quick()
    };
    let r = get(
        &format!("http://{http}/bulk/1048576?stall_after=1000"),
        &reach,
    )
    .await;
    assert_fails(&r, FailureClass::Stallout, Phase::Body);
    assert_eq!(r.bytes_received, 1000);

    // 100 kB/s for 1 MiB takes 10 s; the timeout is half a second.
    let reach = Reach {
        timeout: Duration::from_millis(500),
        ..quick()
    };
    let r = get(&format!("http://{http}/bulk/1048576?rate=100000"), &reach).await;
    assert_fails(&r, FailureClass::Timeout, Phase::Body);
    // A timeout, not a partial failure, though bytes arrived.
    assert!(r.bytes_received > 0 && !r.partial());
    assert!(r.failure.unwrap().class.is_timeout());

    let r = get(
        &format!("http://{http}/bulk/10?header_delay_ms=2000"),
        &reach,
    )
    .await;
    assert_fails(&r, FailureClass::Timeout, Phase::Header);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checksum_mismatch() {
    let (http, _) = perfd(None).await;
    let r = get(
        &format!("http://{http}/bulk/100000?bad_checksum=true"),
        &quick(),
    )
    .await;
    assert_fails(&r, FailureClass::Checksum, Phase::Body);
    assert_eq!(r.bytes_received, 100_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttled_throughput_is_within_five_percent() {
    let (http, _) = perfd(None).await;
    let rate: u64 = 2 << 20; // bytes per second
    let r = get(
        &format!("http://{http}/bulk/{}?rate={rate}", 3 << 20),
        &quick(),
    )
    .await;
    assert!(r.ok(), "{:?}", r.failure);
    let want = rate as f64 * 8.0;
    for (name, got) in [
        ("last MiB", r.times.dl_last_mib_bps()),
        ("second half", r.times.dl_second_half_bps(3 << 20)),
    ] {
        let got = got.unwrap();
        assert!(
            (got / want - 1.0).abs() < 0.05,
            "{name}: {got} bit/s, want {want}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_byte_delay_bounds_ttfb() {
    let (http, _) = perfd(None).await;
    let d = 200_000u64;
    // The best of three: a busy test machine may delay one run's wake-up.
    let mut best = u64::MAX;
    for _ in 0..3 {
        let r = get(
            &format!("http://{http}/bulk/1000?body_delay_ms=200"),
            &quick(),
        )
        .await;
        assert!(r.ok(), "{:?}", r.failure);
        let ttfb = r.times.ttfb_us().unwrap();
        assert!(ttfb >= d, "TTFB {ttfb} µs before the {d} µs delay");
        assert!(
            r.times.request_latency_us() < Some(d),
            "the header came before the delay"
        );
        best = best.min(ttfb);
    }
    assert!(best < d + 20_000, "TTFB {best} µs");
}
