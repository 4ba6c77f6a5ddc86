//! Echo rounds over TCP and HTTP against a real perfd, losses counted
//! against a target that drops replies, and the prober's schedule.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{perfd, quick};
use probe::{echo, EchoPlan, FailureClass, ProbeConfig, Prober, Target};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_rounds_over_tcp_and_http() {
    let (http, tcp) = perfd(None).await;
    for url in [format!("tcp://{tcp}"), format!("http://{http}/echo")] {
        let r = echo(&Target::parse(&url).unwrap(), &quick(), EchoPlan::default()).await;
        assert!(r.failure.is_none(), "{url}: {:?}", r.failure);
        assert_eq!(r.samples.len(), 20);
        assert_eq!(r.lost(), 0);
        assert!(r
            .samples
            .iter()
            .enumerate()
            .all(|(i, s)| s.seq as usize == i));
        let lines = probe::record::echo_lines(&r, &probe::record::Labels::default());
        assert_eq!(lines.len(), 20);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_through_socks5() {
    let (_, tcp) = perfd(None).await;
    let proxy = common::socks5(common::Socks::Forward).await;
    let reach = probe::Reach {
        socks5: Some(probe::Socks5::parse(&proxy.to_string()).unwrap()),
        ..quick()
    };
    let url = format!("tcp://localhost:{}", tcp.port());
    let r = echo(&Target::parse(&url).unwrap(), &reach, EchoPlan::default()).await;
    assert!(r.failure.is_none(), "{:?}", r.failure);
    assert_eq!((r.samples.len(), r.lost()), (20, 0));
    assert!(r.times.socks_reply.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_replies_are_counted_and_late_ones_skipped() {
    // Echoes only even-numbered requests; odd ones come back a second late,
    // after the next request's reply would be due.
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut s, _) = l.accept().await.unwrap();
        let mut buf = [0u8; 16];
        let mut late = Vec::new();
        while s.read_exact(&mut buf).await.is_ok() {
            if buf[7] % 2 == 1 {
                late.push(buf);
                continue;
            }
            for b in late.drain(..) {
                let _ = s.write_all(&b).await;
            }
            let _ = s.write_all(&buf).await;
        }
    });
    let plan = EchoPlan {
        count: 6,
        size: 16,
        reply_timeout: Duration::from_millis(200),
    };
    let r = echo(
        &Target::parse(&format!("tcp://{addr}")).unwrap(),
        &quick(),
        plan,
    )
    .await;
    assert!(r.failure.is_none(), "{:?}", r.failure);
    assert_eq!(r.samples.len(), 6);
    assert_eq!(r.lost(), 3);
    assert!(r
        .samples
        .iter()
        .all(|s| s.rtt_us.is_some() == (s.seq % 2 == 0)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_to_a_closed_port_fails_in_connect() {
    let closed = common::closed_port().await;
    let r = echo(
        &Target::parse(&format!("tcp://{closed}")).unwrap(),
        &quick(),
        EchoPlan::default(),
    )
    .await;
    let f = r.failure.as_ref().unwrap();
    assert_eq!(f.class, FailureClass::Connect);
    let lines = probe::record::echo_lines(&r, &probe::record::Labels::default());
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0].tag("error"), Some("CONNECT"));
}

#[test]
fn the_prober_runs_jobs_on_schedule() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (http, tcp) = runtime.block_on(perfd(None));
    let jobs = [
        format!("url = \"http://{http}/bulk/2000\"\nevery = \"200ms\"\nstart_delay = \"0s\""),
        format!("url = \"tcp://{tcp}\"\nevery = \"1h\"\nstart_delay = \"0s\"\necho_count = 3"),
    ]
    .iter()
    .map(|t| {
        toml::from_str::<ProbeConfig>(t)
            .unwrap()
            .into_job()
            .unwrap()
    })
    .collect();
    let (tx, rx) = std::sync::mpsc::sync_channel(100);
    let prober = Prober::start(jobs, tx).unwrap();
    let mut http_rows = 0;
    let mut echo_rows = 0;
    while http_rows < 3 || echo_rows < 3 {
        let line = rx.recv_timeout(Duration::from_secs(20)).expect("a row");
        match line.measurement.as_ref() {
            "probe_http" => {
                assert_eq!(
                    line.field("ok"),
                    Some(&lineproto::FieldValue::Boolean(true))
                );
                assert_eq!(line.tag("size"), Some("2000"));
                http_rows += 1;
            }
            "probe_echo" => echo_rows += 1,
            other => panic!("{other}"),
        }
    }
    drop(prober);
    assert_eq!(echo_rows, 3, "one round of three pairs in the first hour");
}
