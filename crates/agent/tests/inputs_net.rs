//! The network and process inputs (net, netstat, nstat, net_response,
//! procstat), built the way the runtime builds them, against fixture trees
//! made from this machine's /proc, crafted edge cases, real sockets on
//! 127.0.0.1 and the test process itself.

use std::io::{Read, Write};
use std::net::{TcpListener, UdpSocket};
use std::path::Path;
use std::time::Duration;

use agent::inputs::{build, BuildContext};
use agent::{Accumulator, AgentConfig, Input, Metric};
use lineproto::FieldValue;

const TS: i64 = 1_700_000_000_000_000_000;

fn input(root: &Path, table: &str) -> Box<dyn Input> {
    let text = format!(
        "[agent]\nhost_root = {:?}\n{table}\n",
        root.display().to_string()
    );
    let config = AgentConfig::from_toml_str(&text, "t.toml".as_ref()).expect("config parses");
    build(
        &config.inputs[0],
        &BuildContext {
            host: config.agent.host_paths(),
        },
    )
    .expect("input builds")
}

fn build_err(table: &str) -> String {
    let config = AgentConfig::from_toml_str(table, "t.toml".as_ref()).expect("config parses");
    build(&config.inputs[0], &BuildContext::default())
        .expect_err("input refused")
        .to_string()
}

fn gather(input: &mut dyn Input) -> Vec<Metric> {
    let mut acc = Accumulator::new(TS);
    input.gather(&mut acc).expect("gather succeeds");
    acc.into_metrics()
}

fn write(root: &Path, rel: &str, text: &str) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().expect("has a parent")).expect("mkdir");
    std::fs::write(path, text).expect("write fixture");
}

fn copy_real(root: &Path, rel: &str) -> bool {
    match std::fs::read_to_string(Path::new("/").join(rel)) {
        Ok(text) => {
            write(root, rel, &text);
            true
        }
        Err(_) => false,
    }
}

fn int(m: &Metric, key: &str) -> i64 {
    match m.field(key) {
        Some(FieldValue::Integer(v)) => *v,
        other => panic!("{key}: expected an integer, got {other:?} in {m:?}"),
    }
}

fn float(m: &Metric, key: &str) -> f64 {
    match m.field(key) {
        Some(FieldValue::Float(v)) => *v,
        other => panic!("{key}: expected a float, got {other:?} in {m:?}"),
    }
}

const DEV_HEADER: &str = "Inter-|   Receive                                                |  Transmit\n face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n";

#[test]
fn net_real_proc_net_dev_parses() {
    let dir = tempfile::tempdir().expect("tempdir");
    assert!(copy_real(dir.path(), "proc/net/dev"));
    let mut net = input(dir.path(), "[[inputs.net]]\ninterfaces = [\"*\"]");
    let metrics = gather(net.as_mut());
    let real = std::fs::read_to_string("/proc/net/dev").expect("read");
    assert_eq!(metrics.len(), real.lines().count() - 2);
    for m in &metrics {
        assert_eq!(m.measurement, "net");
        assert!(m.tag("interface").is_some());
        for f in [
            "bytes_sent",
            "bytes_recv",
            "packets_sent",
            "packets_recv",
            "err_in",
            "err_out",
            "drop_in",
            "drop_out",
        ] {
            assert!(int(m, f) >= 0);
        }
        // No /sys in the fixture: the speed is unknown.
        assert_eq!(int(m, "speed"), -1);
        assert_eq!(m.timestamp, Some(TS));
    }
}

#[test]
fn net_selection_speed_new_interfaces_and_big_counters() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let big = u64::MAX - 5;
    write(
        root,
        "proc/net/dev",
        &format!(
            "{DEV_HEADER}    lo: 10 1 0 0 0 0 0 0 10 1 0 0 0 0 0 0\n  eth0: {big} 2 3 4 0 0 0 0 500 6 7 8 0 0 0 0\n  eth1: 1 1 1 1 0 0 0 0 1 1 1 1 0 0 0 0\n"
        ),
    );
    write(root, "sys/class/net/lo/flags", "0x9\n");
    write(root, "sys/class/net/eth0/flags", "0x1003\n");
    write(root, "sys/class/net/eth0/speed", "10000\n");
    write(root, "sys/class/net/eth1/flags", "0x1002\n"); // down
    let mut net = input(root, "[[inputs.net]]");
    let metrics = gather(net.as_mut());
    assert_eq!(metrics.len(), 1, "{metrics:?}");
    let eth0 = &metrics[0];
    assert_eq!(eth0.tag("interface"), Some("eth0"));
    assert_eq!(int(eth0, "bytes_recv"), i64::MAX, "saturates like Telegraf");
    assert_eq!(int(eth0, "packets_recv"), 2);
    assert_eq!(int(eth0, "err_in"), 3);
    assert_eq!(int(eth0, "drop_in"), 4);
    assert_eq!(int(eth0, "bytes_sent"), 500);
    assert_eq!(int(eth0, "packets_sent"), 6);
    assert_eq!(int(eth0, "err_out"), 7);
    assert_eq!(int(eth0, "drop_out"), 8);
    assert_eq!(int(eth0, "speed"), 10000);
    assert!(eth0.tag("interface") != Some("all"));

    // An interface that appears between collections just shows up.
    write(
        root,
        "proc/net/dev",
        &format!(
            "{DEV_HEADER}  eth0: 1 2 3 4 0 0 0 0 5 6 7 8 0 0 0 0\n  wg0: 9 9 9 9 0 0 0 0 9 9 9 9 0 0 0 0\n"
        ),
    );
    write(root, "sys/class/net/wg0/flags", "0x91\n");
    let names: Vec<String> = gather(net.as_mut())
        .iter()
        .map(|m| m.tag("interface").unwrap_or_default().to_owned())
        .collect();
    assert_eq!(names, ["eth0", "wg0"]);

    // Listing interfaces takes loopback and down ones too.
    let mut net = input(root, "[[inputs.net]]\ninterfaces = [\"lo\", \"eth*\"]");
    write(
        root,
        "proc/net/dev",
        &format!(
            "{DEV_HEADER}    lo: 10 1 0 0 0 0 0 0 10 1 0 0 0 0 0 0\n  eth1: 1 1 1 1 0 0 0 0 1 1 1 1 0 0 0 0\n  wg0: 9 9 9 9 0 0 0 0 9 9 9 9 0 0 0 0\n"
        ),
    );
    let names: Vec<String> = gather(net.as_mut())
        .iter()
        .map(|m| m.tag("interface").unwrap_or_default().to_owned())
        .collect();
    assert_eq!(names, ["lo", "eth1"]);
}

#[test]
fn net_protocol_stats_on_request() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    write(root, "proc/net/dev", DEV_HEADER);
    write(
        root,
        "proc/net/snmp",
        "Tcp: RtoAlgorithm MaxConn ActiveOpens\nTcp: 1 -1 55965\nUdp: InDatagrams NoPorts\nUdp: 522136 5961\n",
    );
    let mut net = input(root, "[[inputs.net]]\nignore_protocol_stats = false");
    let metrics = gather(net.as_mut());
    assert_eq!(metrics.len(), 1);
    let all = &metrics[0];
    assert_eq!(all.tag("interface"), Some("all"));
    assert_eq!(int(all, "tcp_rtoalgorithm"), 1);
    assert_eq!(int(all, "tcp_maxconn"), -1);
    assert_eq!(int(all, "tcp_activeopens"), 55965);
    assert_eq!(int(all, "udp_indatagrams"), 522136);
    assert_eq!(int(all, "udp_noports"), 5961);

    // Off by default, as in current Telegraf.
    let mut net = input(root, "[[inputs.net]]");
    assert!(gather(net.as_mut()).is_empty());
}

#[test]
fn net_malformed_line_is_a_parse_error_naming_the_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "proc/net/dev",
        &format!("{DEV_HEADER}  eth0: 1 2 3 4 0 0 0 0 5 6 7 8 0 0 0 0\n  eth1 1 2 3\n"),
    );
    let mut net = input(dir.path(), "[[inputs.net]]\ninterfaces = [\"*\"]");
    let mut acc = Accumulator::new(TS);
    let err = net.gather(&mut acc).expect_err("malformed").to_string();
    assert!(err.contains("net/dev") && err.contains("line 4"), "{err}");
}

const TCP_HEADER: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n";

fn tcp_line(i: usize, state: &str) -> String {
    format!("   {i}: 0100007F:1F90 00000000:0000 {state} 00000000:00000000 00:00000000 00000000     0        0 {i} 1 0000000000000000 100 0 0 10 0\n")
}

#[test]
fn netstat_counts_states_and_tolerates_missing_ipv6() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let mut tcp = TCP_HEADER.to_owned();
    for (i, st) in [
        "0A", "0A", "01", "01", "01", "06", "08", "02", "03", "04", "05", "07", "09", "0B", "0C",
    ]
    .iter()
    .enumerate()
    {
        tcp.push_str(&tcp_line(i, st));
    }
    write(root, "proc/net/tcp", &tcp);
    // No tcp6: IPv6 disabled.
    write(
        root,
        "proc/net/udp",
        &format!("{TCP_HEADER}{}{}", tcp_line(0, "07"), tcp_line(1, "01")),
    );
    write(
        root,
        "proc/net/udp6",
        &format!("{TCP_HEADER}{}", tcp_line(0, "07")),
    );
    let mut netstat = input(root, "[[inputs.netstat]]");
    let metrics = gather(netstat.as_mut());
    assert_eq!(metrics.len(), 1);
    let m = &metrics[0];
    assert_eq!(m.measurement, "netstat");
    assert!(m.tags.is_empty());
    let expect = [
        ("tcp_established", 3),
        ("tcp_syn_sent", 1),
        ("tcp_syn_recv", 1),
        ("tcp_fin_wait1", 1),
        ("tcp_fin_wait2", 1),
        ("tcp_time_wait", 1),
        ("tcp_close", 1),
        ("tcp_close_wait", 1),
        ("tcp_last_ack", 1),
        ("tcp_listen", 2),
        ("tcp_closing", 1),
        ("tcp_none", 1),
        ("udp_socket", 3),
    ];
    for (k, v) in expect {
        assert_eq!(int(m, k), v, "{k}");
    }
    assert_eq!(m.fields.len(), expect.len());

    // A malformed line is an error naming file and line.
    write(root, "proc/net/tcp6", &format!("{TCP_HEADER}garbage\n"));
    let mut acc = Accumulator::new(TS);
    let err = netstat.gather(&mut acc).expect_err("malformed").to_string();
    assert!(err.contains("tcp6") && err.contains("line 2"), "{err}");
}

#[test]
fn netstat_real_tables() {
    let dir = tempfile::tempdir().expect("tempdir");
    for t in ["tcp", "tcp6", "udp", "udp6"] {
        copy_real(dir.path(), &format!("proc/net/{t}"));
    }
    let mut netstat = input(dir.path(), "[[inputs.netstat]]");
    let metrics = gather(netstat.as_mut());
    assert_eq!(metrics[0].fields.len(), 13);
}

/// TCP sockets by state as `/proc/net/tcp` and `tcp6` list them.
fn proc_tcp_states() -> Vec<i64> {
    let mut counts = vec![0i64; 12];
    for name in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(name) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let state = line.split_whitespace().nth(3).expect("a state column");
            let state = usize::from(u8::from_str_radix(state, 16).expect("hexadecimal"));
            counts[if state < 12 { state } else { 0 }] += 1;
        }
    }
    counts
}

#[test]
fn netstat_on_this_machine_counts_what_proc_net_tcp_lists() {
    // On the live host the TCP counts come from the kernel's socket
    // diagnostics: they must be the sockets the files list, of both
    // families, listening and connected ones.
    let v4 = TcpListener::bind("127.0.0.1:0").expect("bind");
    let v6 = TcpListener::bind("[::1]:0").ok();
    let mut conns = Vec::new();
    for _ in 0..3 {
        let client = std::net::TcpStream::connect(v4.local_addr().expect("addr")).expect("connect");
        let (server, _) = v4.accept().expect("accept");
        conns.push((client, server));
    }
    let mut netstat = input(Path::new("/"), "[[inputs.netstat]]");
    const NAMES: [&str; 12] = [
        "tcp_none",
        "tcp_established",
        "tcp_syn_sent",
        "tcp_syn_recv",
        "tcp_fin_wait1",
        "tcp_fin_wait2",
        "tcp_time_wait",
        "tcp_close",
        "tcp_close_wait",
        "tcp_last_ack",
        "tcp_listen",
        "tcp_closing",
    ];
    // Other tests open and close sockets meanwhile: compare at a moment
    // when the files read the same before and after the gather.
    let mut last = None;
    for _ in 0..50 {
        let before = proc_tcp_states();
        let metrics = gather(netstat.as_mut());
        let after = proc_tcp_states();
        let got: Vec<i64> = NAMES.iter().map(|n| int(&metrics[0], n)).collect();
        assert!(got[1] >= 6, "the test's own connections: {got:?}");
        assert!(
            got[10] > i64::from(v6.is_some()),
            "the test's listeners: {got:?}"
        );
        if before == after && got == before {
            return;
        }
        last = Some((before, got, after));
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("the counts never matched /proc/net/tcp{{,6}}: (before, netstat, after) {last:?}");
}

#[test]
fn nstat_real_and_crafted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    for f in ["netstat", "snmp", "snmp6"] {
        copy_real(root, &format!("proc/net/{f}"));
    }
    let mut nstat = input(root, "[[inputs.nstat]]\ndump_zeros = true");
    let metrics = gather(nstat.as_mut());
    let names: Vec<&str> = metrics.iter().filter_map(|m| m.tag("name")).collect();
    if Path::new("/proc/net/snmp6").exists() {
        assert_eq!(names, ["netstat", "snmp", "snmp6"]);
        assert!(matches!(
            metrics[2].field("Ip6InReceives"),
            Some(FieldValue::Integer(_))
        ));
    } else {
        assert_eq!(names, ["netstat", "snmp"]);
    }
    assert!(metrics.iter().all(|m| m.measurement == "nstat"));
    assert!(matches!(
        metrics[1].field("IpForwarding"),
        Some(FieldValue::Integer(_))
    ));
    assert!(matches!(
        metrics[1].field("TcpActiveOpens"),
        Some(FieldValue::Integer(_))
    ));
    assert!(matches!(
        metrics[0].field("TcpExtSyncookiesSent"),
        Some(FieldValue::Integer(_))
    ));

    // Crafted: zeros left out by default, no snmp6 is fine.
    write(
        root,
        "proc/net/netstat",
        "TcpExt: SyncookiesSent SyncookiesRecv\nTcpExt: 0 7\nIpExt: InNoRoutes\nIpExt: 3\n",
    );
    write(root, "proc/net/snmp", "Tcp: MaxConn RtoMin\nTcp: -1 200\n");
    std::fs::remove_file(root.join("proc/net/snmp6")).ok();
    let mut nstat = input(root, "[[inputs.nstat]]");
    let metrics = gather(nstat.as_mut());
    assert_eq!(metrics.len(), 2);
    assert_eq!(metrics[0].tag("name"), Some("netstat"));
    assert_eq!(metrics[0].field("TcpExtSyncookiesSent"), None);
    assert_eq!(int(&metrics[0], "TcpExtSyncookiesRecv"), 7);
    assert_eq!(int(&metrics[0], "IpExtInNoRoutes"), 3);
    assert_eq!(int(&metrics[1], "TcpMaxConn"), -1);
    assert_eq!(int(&metrics[1], "TcpRtoMin"), 200);

    // Configured paths are host paths under host_root.
    write(root, "elsewhere/snmp", "Udp: InErrors\nUdp: 4\n");
    let mut nstat = input(
        root,
        "[[inputs.nstat]]\nproc_net_snmp = \"/elsewhere/snmp\"",
    );
    let metrics = gather(nstat.as_mut());
    assert_eq!(int(&metrics[1], "UdpInErrors"), 4);
}

fn net_response(table: &str) -> Metric {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut input = input(dir.path(), &format!("[[inputs.net_response]]\n{table}"));
    let mut metrics = gather(input.as_mut());
    assert_eq!(metrics.len(), 1);
    metrics.remove(0)
}

fn result(m: &Metric) -> (&str, i64) {
    assert_eq!(m.measurement, "net_response");
    let tag = m.tag("result").expect("result tag");
    assert_eq!(
        m.field("result_type"),
        Some(&FieldValue::String(tag.to_owned().into()))
    );
    (tag, int(m, "result_code"))
}

#[test]
fn net_response_tcp() {
    // Answers with a greeting line.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let server = std::thread::spawn(move || {
        for _ in 0..2 {
            let (mut s, _) = listener.accept().expect("accept");
            let mut buf = [0u8; 16];
            let _ = s.read(&mut buf);
            let _ = s.write_all(b"SSH-2.0-OpenSSH_9.6\r\n");
        }
    });
    let m = net_response(&format!(
        "protocol = \"tcp\"\naddress = \"127.0.0.1:{port}\"\nsend = \"hello\"\nexpect = \"SSH-2\"\ntimeout = \"2s\""
    ));
    assert_eq!(result(&m), ("success", 0));
    assert_eq!(m.tag("server"), Some("127.0.0.1"));
    assert_eq!(m.tag("port"), Some(port.to_string().as_str()));
    assert_eq!(m.tag("protocol"), Some("tcp"));
    assert!(float(&m, "response_time") >= 0.0);
    assert_eq!(m.field("string_found"), Some(&FieldValue::Boolean(true)));

    // A wrong answer.
    let m = net_response(&format!(
        "protocol = \"tcp\"\naddress = \"127.0.0.1:{port}\"\nsend = \"hello\"\nexpect = \"^HTTP\""
    ));
    assert_eq!(result(&m), ("string_mismatch", 4));
    assert_eq!(m.field("string_found"), Some(&FieldValue::Boolean(false)));
    server.join().expect("server");

    // Connect only, no expect: no string_found.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let m = net_response(&format!(
        "protocol = \"tcp\"\naddress = \"127.0.0.1:{port}\""
    ));
    assert_eq!(result(&m), ("success", 0));
    assert_eq!(m.field("string_found"), None);

    // A listener that never answers, with expect set.
    let m = net_response(&format!(
        "protocol = \"tcp\"\naddress = \"127.0.0.1:{port}\"\nexpect = \"x\"\nread_timeout = \"200ms\""
    ));
    assert_eq!(result(&m), ("read_failed", 3));
    assert!(float(&m, "response_time") >= 0.2);
    drop(listener);

    // A closed port.
    let closed = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let m = net_response(&format!(
        "protocol = \"tcp\"\naddress = \"127.0.0.1:{port}\""
    ));
    assert_eq!(result(&m), ("connection_failed", 2));
    assert_eq!(m.field("response_time"), None);

    // An empty host is localhost.
    let m = net_response(&format!("protocol = \"tcp\"\naddress = \":{port}\""));
    assert_eq!(m.tag("server"), Some("localhost"));
}

#[test]
fn net_response_udp() {
    let echo = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let port = echo.local_addr().expect("addr").port();
    let server = std::thread::spawn(move || {
        let mut buf = [0u8; 64];
        let (n, from) = echo.recv_from(&mut buf).expect("recv");
        echo.send_to(&buf[..n], from).expect("echo");
    });
    let m = net_response(&format!(
        "protocol = \"udp\"\naddress = \"127.0.0.1:{port}\"\nsend = \"ping-42\"\nexpect = \"ping-4\""
    ));
    assert_eq!(result(&m), ("success", 0));
    assert_eq!(m.tag("protocol"), Some("udp"));
    assert!(float(&m, "response_time") >= 0.0);
    server.join().expect("server");

    // Nobody answers.
    let silent = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let port = silent.local_addr().expect("addr").port();
    let m = net_response(&format!(
        "protocol = \"udp\"\naddress = \"127.0.0.1:{port}\"\nsend = \"x\"\nexpect = \"y\"\nread_timeout = \"100ms\""
    ));
    assert_eq!(result(&m), ("read_failed", 3));
    assert_eq!(m.field("response_time"), None);
    assert_eq!(m.field("string_found"), Some(&FieldValue::Boolean(false)));
}

#[test]
fn net_response_config_errors() {
    let err = build_err("[[inputs.net_response]]\nprotocol = \"udp\"\naddress = \"h:1\"\n");
    assert!(err.contains("send"), "{err}");
    let err = build_err("[[inputs.net_response]]\nprotocol = \"icmp\"\naddress = \"h:1\"\n");
    assert!(err.contains("protocol"), "{err}");
    let err = build_err("[[inputs.net_response]]\nprotocol = \"tcp\"\naddress = \"nohost\"\n");
    assert!(err.contains("address"), "{err}");
}

#[test]
fn procstat_own_process_by_pid_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pid = std::process::id();
    let pid_file = dir.path().join("t.pid");
    std::fs::write(&pid_file, format!("{pid}\n")).expect("write pid file");
    let mut procstat = input(
        Path::new("/"),
        &format!(
            "[[inputs.procstat]]\npid_file = {:?}",
            pid_file.display().to_string()
        ),
    );
    let first = gather(procstat.as_mut());
    assert_eq!(first.len(), 2, "{first:?}");
    let m = &first[0];
    assert_eq!(m.measurement, "procstat");
    assert_eq!(m.tag("pidfile"), Some(pid_file.to_str().expect("utf-8")));
    assert!(m.tag("process_name").is_some_and(|n| !n.is_empty()));
    assert_eq!(int(m, "pid"), i64::from(pid));
    assert!(int(m, "memory_rss") > 0);
    assert!(int(m, "memory_vms") > 0);
    assert!(int(m, "num_threads") >= 1);
    assert!(int(m, "created_at") > 1_000_000_000_000_000_000);
    assert!(float(m, "cpu_time_user") >= 0.0);
    assert!(float(m, "memory_usage") > 0.0);
    assert!(int(m, "num_fds") > 0);
    assert!(int(m, "read_bytes") >= 0);
    assert!(matches!(m.field("cmdline"), Some(FieldValue::String(_))));
    assert!(matches!(m.field("status"), Some(FieldValue::String(_))));
    assert!(matches!(m.field("user"), Some(FieldValue::String(_))));
    assert_eq!(m.field("cpu_usage"), None, "no usage from one sample");
    let lookup = &first[1];
    assert_eq!(lookup.measurement, "procstat_lookup");
    assert_eq!(lookup.tag("pid_finder"), Some("pgrep"));
    assert_eq!(lookup.tag("result"), Some("success"));
    assert_eq!(int(lookup, "pid_count"), 1);
    assert_eq!(int(lookup, "running"), 1);
    assert_eq!(int(lookup, "result_code"), 0);

    // Burn a little CPU; the second gather has a usage.
    let mut x = 0u64;
    for i in 0..5_000_000u64 {
        x = x.wrapping_mul(31).wrapping_add(i);
    }
    assert!(x != 1);
    std::thread::sleep(Duration::from_millis(20));
    let second = gather(procstat.as_mut());
    assert!(float(&second[0], "cpu_usage") >= 0.0);

    // A pid file that is gone: lookup_error, and an error.
    std::fs::remove_file(&pid_file).expect("rm");
    let mut acc = Accumulator::new(TS);
    assert!(procstat.gather(&mut acc).is_err());
    let lookup = &acc.metrics()[0];
    assert_eq!(lookup.tag("result"), Some("lookup_error"));
    assert_eq!(int(lookup, "result_code"), 1);
}

#[test]
fn procstat_pattern_matching_nothing_and_tag_with() {
    let mut procstat = input(
        Path::new("/"),
        "[[inputs.procstat]]\npattern = \"^no-such-process-[0-9]{9}$\"",
    );
    let metrics = gather(procstat.as_mut());
    assert_eq!(metrics.len(), 1);
    assert_eq!(metrics[0].measurement, "procstat_lookup");
    assert_eq!(
        metrics[0].tag("pattern"),
        Some("^no-such-process-[0-9]{9}$")
    );
    assert_eq!(int(&metrics[0], "pid_count"), 0);
    assert_eq!(int(&metrics[0], "running"), 0);

    // The test binary's own name, as a pattern, with pid as a tag and a prefix.
    let exe = std::env::current_exe().expect("exe");
    let name = exe.file_name().and_then(|n| n.to_str()).expect("name");
    let mut procstat = input(
        Path::new("/"),
        &format!(
            "[[inputs.procstat]]\npattern = {:?}\ntag_with = [\"pid\"]\nprefix = \"t\"",
            regex_escape(name)
        ),
    );
    let metrics = gather(procstat.as_mut());
    let own = std::process::id().to_string();
    let m = metrics
        .iter()
        .find(|m| m.tag("pid") == Some(own.as_str()))
        .expect("finds itself");
    assert_eq!(m.field("pid"), None);
    assert!(int(m, "t_memory_rss") > 0);
}

fn regex_escape(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c.to_string()
            } else {
                format!("\\{c}")
            }
        })
        .collect()
}

#[test]
fn unknown_option_is_an_error_naming_the_key() {
    for (name, key) in [
        ("net", "interfacez"),
        ("netstat", "whatever"),
        ("nstat", "dump_zero"),
        ("net_response", "adress"),
        ("procstat", "pidfile"),
    ] {
        let err = build_err(&format!("[[inputs.{name}]]\n{key} = \"x\"\n"));
        assert!(err.contains(key), "{name}: {err}");
        assert!(err.contains(&format!("inputs.{name}")), "{name}: {err}");
    }
}

#[test]
fn ratemon_hands_over_each_record_with_its_own_time() {
    let mut input = input(
        Path::new("/"),
        "[[inputs.ratemon]]\ninterface = \"lo\"\nsample_rate = 500\nestimation_interval = 0.1\nmeter_interval = 0.1\nlink_speed = 1000",
    );
    std::thread::sleep(Duration::from_millis(450));
    let metrics = gather(input.as_mut());
    assert!(
        metrics.len() >= 2,
        "{} records in 450 ms at 100 ms",
        metrics.len()
    );
    let m = &metrics[0];
    assert_eq!(m.measurement, "ratemon");
    assert_eq!(m.tag("interface"), Some("lo"));
    assert_ne!(m.timestamp, Some(TS), "a record keeps the time it was made");
    assert_eq!(m.field("linerate"), Some(&FieldValue::Float(125e6)));
    assert!(matches!(m.field("alarm_tx"), Some(FieldValue::Boolean(_))));
    assert!(matches!(m.field("samples"), Some(FieldValue::Integer(n)) if *n > 0));
    assert!(matches!(
        m.field("overload_risk_rx"),
        Some(FieldValue::Float(_))
    ));
    // The next gather has only what came since.
    let again = gather(input.as_mut());
    assert!(again.len() <= 1, "{} records again", again.len());
}

#[test]
fn ratemon_without_a_line_rate_leaves_risk_out() {
    let mut input = input(
        Path::new("/"),
        "[[inputs.ratemon]]\ninterface = \"lo\"\nsample_rate = 200\nestimation_interval = 0.1\nmeter_interval = 0.1",
    );
    std::thread::sleep(Duration::from_millis(250));
    let metrics = gather(input.as_mut());
    let m = metrics.first().expect("a record");
    assert!(m.field("linerate").is_none() && m.field("overload_risk_tx").is_none());
    assert!(m.field("alarm_rx").is_none() && m.field("tx").is_some());
}

#[test]
fn ratemon_refuses_bad_tables_by_name() {
    let err = build_err("[[inputs.ratemon]]\ninterface = \"lo\"\nbogus = 1");
    assert!(err.contains("bogus"), "{err}");
    let err = build_err("[[inputs.ratemon]]\ninterface = \"nosuch0\"");
    assert!(err.contains("no interface named `nosuch0`"), "{err}");
    let err = build_err("[[inputs.ratemon]]\ninterface = \"lo\"\ncutoff = 0");
    assert!(err.contains("cutoff"), "{err}");
    let err = build_err("[[inputs.ratemon]]\ninterface = \"lo\"\ncounters = \"proc\"");
    assert!(
        err.contains("unknown variant `proc`") && err.contains("sysfs"),
        "{err}"
    );
}
