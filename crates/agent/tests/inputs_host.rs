//! The host inputs (cpu, mem, swap, kernel, processes, system, disk,
//! diskio) against fixture trees: copies of this machine's /proc files and
//! crafted ones with known numbers and edge cases. Each input is built the
//! way the runtime builds it, from a TOML configuration whose `host_root`
//! is the fixture.

use std::path::Path;

use agent::inputs::{build, BuildContext};
use agent::{Accumulator, AgentConfig, Input, Metric};
use lineproto::FieldValue;
use tempfile::TempDir;

const T0: i64 = 1_700_000_000_000_000_000;
const TEN_S: i64 = 10_000_000_000;

fn write(root: &Path, rel: &str, content: impl AsRef<[u8]>) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().expect("fixture paths have parents"))
        .expect("create fixture dir");
    std::fs::write(&path, content).expect("write fixture file");
}

/// Copies this machine's `/proc/<rel>` into the fixture.
fn copy_proc(root: &Path, rel: &str) {
    let text = std::fs::read(Path::new("/proc").join(rel)).expect("read real /proc file");
    write(root, &format!("proc/{rel}"), text);
}

fn config(root: &Path, table: &str) -> Result<Box<dyn Input>, String> {
    let toml = format!("[agent]\nhost_root = \"{}\"\n{table}\n", root.display());
    let config =
        AgentConfig::from_toml_str(&toml, "test.toml".as_ref()).map_err(|e| e.to_string())?;
    build(
        &config.inputs[0],
        &BuildContext {
            host: config.agent.host_paths(),
        },
    )
    .map_err(|e| e.to_string())
}

fn input(root: &Path, table: &str) -> Box<dyn Input> {
    match config(root, table) {
        Ok(i) => i,
        Err(e) => panic!("building {table}: {e}"),
    }
}

fn gather(input: &mut Box<dyn Input>, time: i64) -> Vec<Metric> {
    let mut acc = Accumulator::new(time);
    if let Err(e) = input.gather(&mut acc) {
        panic!("gather failed: {e}");
    }
    acc.into_metrics()
}

fn gather_err(input: &mut Box<dyn Input>, time: i64) -> (Vec<Metric>, String) {
    let mut acc = Accumulator::new(time);
    let err = input.gather(&mut acc).expect_err("gather should fail");
    (acc.into_metrics(), err.to_string())
}

fn float(m: &Metric, key: &str) -> f64 {
    match m.field(key) {
        Some(FieldValue::Float(v)) => *v,
        other => panic!("{key} of {m:?} is {other:?}, expected a float"),
    }
}

fn integer(m: &Metric, key: &str) -> i64 {
    match m.field(key) {
        Some(FieldValue::Integer(v)) => *v,
        other => panic!("{key} of {m:?} is {other:?}, expected an integer"),
    }
}

fn string(m: &Metric, key: &str) -> String {
    match m.field(key) {
        Some(FieldValue::String(v)) => v.to_string(),
        other => panic!("{key} of {m:?} is {other:?}, expected a string"),
    }
}

fn keys(m: &Metric) -> Vec<String> {
    let mut k: Vec<String> = m.fields.iter().map(|(k, _)| k.to_string()).collect();
    k.sort();
    k
}

fn sorted(list: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = list.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

fn by_tag<'a>(metrics: &'a [Metric], key: &str, value: &str) -> Vec<&'a Metric> {
    metrics
        .iter()
        .filter(|m| m.tag(key) == Some(value))
        .collect()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

// ---------------------------------------------------------------- cpu ----

const USAGE_FIELDS: &[&str] = &[
    "usage_user",
    "usage_system",
    "usage_idle",
    "usage_nice",
    "usage_iowait",
    "usage_irq",
    "usage_softirq",
    "usage_steal",
    "usage_guest",
    "usage_guest_nice",
];

const STAT_1: &str = "\
cpu  1000 100 500 8000 50 10 20 5 200 10
cpu0 500 50 250 4000 25 5 10 5 100 5
cpu1 500 50 250 4000 25 5 10 0 100 5
intr 12345 1 2 3
ctxt 67890
btime 1700000000
processes 4242
procs_running 2
procs_blocked 0
";

// Every CPU: user +300 (guest +100 of it), nice +20 (guest_nice +10),
// system +100, idle +500, iowait +20, irq +10, softirq +20, steal +30:
// 1000 ticks in all.
const STAT_2: &str = "\
cpu  1600 140 700 9000 90 30 60 65 400 30
cpu0 800 70 350 4500 45 15 30 35 200 15
cpu1 800 70 350 4500 45 15 30 30 200 15
intr 22345 1 2 3
ctxt 77890
btime 1700000000
processes 4343
";

#[test]
fn cpu_first_gather_has_no_usage_then_exact_percentages() {
    let tmp = TempDir::new().expect("tempdir");
    write(tmp.path(), "proc/stat", STAT_1);
    let mut cpu = input(tmp.path(), "[[inputs.cpu]]");
    assert!(
        gather(&mut cpu, T0).is_empty(),
        "first gather emits no usage"
    );

    write(tmp.path(), "proc/stat", STAT_2);
    let metrics = gather(&mut cpu, T0 + TEN_S);
    let names: Vec<&str> = metrics.iter().filter_map(|m| m.tag("cpu")).collect();
    assert_eq!(names, ["cpu0", "cpu1", "cpu-total"]);
    for m in &metrics {
        assert_eq!(m.measurement, "cpu");
        assert_eq!(m.timestamp, Some(T0 + TEN_S));
        assert_eq!(keys(m), sorted(USAGE_FIELDS));
    }
    // cpu-total: the deltas are twice cpu0's, the percentages the same.
    for m in &metrics {
        assert!(
            close(float(m, "usage_user"), 20.0),
            "user minus guest: {m:?}"
        );
        assert!(close(float(m, "usage_nice"), 1.0), "nice minus guest_nice");
        assert!(close(float(m, "usage_system"), 10.0));
        assert!(close(float(m, "usage_idle"), 50.0));
        assert!(close(float(m, "usage_iowait"), 2.0));
        assert!(close(float(m, "usage_irq"), 1.0));
        assert!(close(float(m, "usage_softirq"), 2.0));
        assert!(close(float(m, "usage_steal"), 3.0));
        assert!(close(float(m, "usage_guest"), 10.0));
        assert!(close(float(m, "usage_guest_nice"), 1.0));
    }
}

#[test]
fn cpu_report_active_and_collect_cpu_time() {
    let tmp = TempDir::new().expect("tempdir");
    write(tmp.path(), "proc/stat", STAT_1);
    let mut cpu = input(
        tmp.path(),
        "[[inputs.cpu]]\npercpu = false\ncollect_cpu_time = true\nreport_active = true",
    );
    let first = gather(&mut cpu, T0);
    assert_eq!(first.len(), 1, "time point only: {first:?}");
    let t = &first[0];
    assert_eq!(t.tag("cpu"), Some("cpu-total"));
    assert!(close(float(t, "time_user"), 10.0));
    assert!(close(float(t, "time_nice"), 1.0));
    assert!(close(float(t, "time_system"), 5.0));
    assert!(close(float(t, "time_idle"), 80.0));
    assert!(close(float(t, "time_guest"), 2.0));
    assert!(close(float(t, "time_guest_nice"), 0.1));
    // Active: everything but idle and guest (which user and nice hold).
    assert!(close(
        float(t, "time_active"),
        (1000.0 + 100.0 + 500.0 + 50.0 + 10.0 + 20.0 + 5.0) / 100.0
    ));

    write(tmp.path(), "proc/stat", STAT_2);
    let second = gather(&mut cpu, T0 + TEN_S);
    assert_eq!(second.len(), 2);
    let usage = second
        .iter()
        .find(|m| m.field("usage_idle").is_some())
        .expect("a usage point");
    assert!(close(float(usage, "usage_active"), 50.0));
    assert!(usage.field("time_user").is_none());
}

#[test]
fn cpu_counters_going_backwards_and_cpus_appearing() {
    let tmp = TempDir::new().expect("tempdir");
    write(tmp.path(), "proc/stat", STAT_1);
    let mut cpu = input(tmp.path(), "[[inputs.cpu]]");
    gather(&mut cpu, T0);

    // cpu0 restarts from small counters (hot-plug); cpu2 appears.
    write(
        tmp.path(),
        "proc/stat",
        "cpu  1600 140 700 9000 90 30 60 65 400 30\n\
         cpu0 10 0 10 10 0 0 0 0 0 0\n\
         cpu1 800 70 350 4500 45 15 30 30 200 15\n\
         cpu2 100 0 100 800 0 0 0 0 0 0\n",
    );
    let second = gather(&mut cpu, T0 + TEN_S);
    let names: Vec<&str> = second.iter().filter_map(|m| m.tag("cpu")).collect();
    assert_eq!(
        names,
        ["cpu1", "cpu-total"],
        "cpu0 went backwards, cpu2 is new"
    );
    for m in &second {
        for f in USAGE_FIELDS {
            let v = float(m, f);
            assert!((0.0..=100.0).contains(&v), "{f} = {v}");
        }
    }

    // The round after, cpu0 and cpu2 have a baseline again.
    write(
        tmp.path(),
        "proc/stat",
        "cpu  1700 140 800 9800 90 30 60 65 400 30\n\
         cpu0 60 0 60 110 0 0 0 0 0 0\n\
         cpu1 800 70 350 4500 45 15 30 30 200 15\n\
         cpu2 150 0 150 1000 0 0 0 0 0 0\n",
    );
    let third = gather(&mut cpu, T0 + 2 * TEN_S);
    let names: Vec<&str> = third.iter().filter_map(|m| m.tag("cpu")).collect();
    // cpu1 did not move: no time passed for it, no point (as Telegraf).
    assert_eq!(names, ["cpu0", "cpu2", "cpu-total"]);
    let cpu0 = by_tag(&third, "cpu", "cpu0")[0];
    assert!(close(float(cpu0, "usage_user"), 25.0));
    assert!(close(float(cpu0, "usage_idle"), 50.0));
    let cpu2 = by_tag(&third, "cpu", "cpu2")[0];
    assert!(close(float(cpu2, "usage_idle"), 200.0 / 300.0 * 100.0));

    // A CPU that disappears is simply not reported.
    write(
        tmp.path(),
        "proc/stat",
        "cpu  1800 140 900 9900 90 30 60 65 400 30\ncpu0 70 0 70 120 0 0 0 0 0 0\n",
    );
    let fourth = gather(&mut cpu, T0 + 3 * TEN_S);
    let names: Vec<&str> = fourth.iter().filter_map(|m| m.tag("cpu")).collect();
    assert_eq!(names, ["cpu0", "cpu-total"]);
}

#[test]
fn cpu_on_this_machines_proc_stat() {
    let tmp = TempDir::new().expect("tempdir");
    copy_proc(tmp.path(), "stat");
    let mut cpu = input(tmp.path(), "[[inputs.cpu]]\ncollect_cpu_time = true");
    let first = gather(&mut cpu, T0);
    assert!(first.iter().any(|m| m.tag("cpu") == Some("cpu-total")));
    assert!(first.iter().any(|m| m.tag("cpu") == Some("cpu0")));
    assert!(first.iter().all(|m| m.field("usage_user").is_none()));
    std::thread::sleep(std::time::Duration::from_millis(50));
    copy_proc(tmp.path(), "stat");
    let second = gather(&mut cpu, T0 + TEN_S);
    for m in second.iter().filter(|m| m.field("usage_idle").is_some()) {
        for f in USAGE_FIELDS {
            let v = float(m, f);
            assert!((0.0..=100.0).contains(&v), "{f} = {v} in {m:?}");
        }
    }
}

#[test]
fn cpu_unknown_option_and_missing_file() {
    let tmp = TempDir::new().expect("tempdir");
    let err = config(tmp.path(), "[[inputs.cpu]]\npercpuu = true").expect_err("typo refused");
    assert!(err.contains("percpuu"), "{err}");

    let mut cpu = input(tmp.path(), "[[inputs.cpu]]");
    let (_, err) = gather_err(&mut cpu, T0);
    assert!(err.contains("proc/stat"), "{err}");

    write(tmp.path(), "proc/stat", "cpu 1 2 x 4\n");
    let (_, err) = gather_err(&mut cpu, T0);
    assert!(err.contains("line 1") && err.contains("`x`"), "{err}");
}

// ---------------------------------------------------------------- mem ----

const MEMINFO: &str = "\
MemTotal:       16000000 kB
MemFree:         2000000 kB
MemAvailable:    9000000 kB
Buffers:          500000 kB
Cached:          5000000 kB
SwapCached:         1000 kB
Active:          6000000 kB
Inactive:        4000000 kB
Dirty:               120 kB
Writeback:             4 kB
Mapped:           400000 kB
Shmem:            300000 kB
Slab:            1000000 kB
SReclaimable:     700000 kB
SUnreclaim:       300000 kB
PageTables:        20000 kB
WritebackTmp:          8 kB
CommitLimit:    12000000 kB
Committed_AS:   11000000 kB
VmallocTotal:   34359738367 kB
VmallocUsed:       50000 kB
VmallocChunk:          0 kB
HugePages_Total:      16
HugePages_Free:        4
Hugepagesize:       2048 kB
SwapTotal:       4000000 kB
SwapFree:        3000000 kB
";

const MEM_FIELDS: &[&str] = &[
    "active",
    "available",
    "available_percent",
    "buffered",
    "cached",
    "commit_limit",
    "committed_as",
    "dirty",
    "free",
    "high_free",
    "high_total",
    "huge_page_size",
    "huge_pages_free",
    "huge_pages_total",
    "inactive",
    "low_free",
    "low_total",
    "mapped",
    "page_tables",
    "shared",
    "slab",
    "sreclaimable",
    "sunreclaim",
    "swap_cached",
    "swap_free",
    "swap_total",
    "total",
    "used",
    "used_percent",
    "vmalloc_chunk",
    "vmalloc_total",
    "vmalloc_used",
    "write_back",
    "write_back_tmp",
];

#[test]
fn mem_fields_types_and_gopsutil_arithmetic() {
    let tmp = TempDir::new().expect("tempdir");
    write(tmp.path(), "proc/meminfo", MEMINFO);
    let mut mem = input(tmp.path(), "[[inputs.mem]]");
    let metrics = gather(&mut mem, T0);
    assert_eq!(metrics.len(), 1);
    let m = &metrics[0];
    assert_eq!(m.measurement, "mem");
    assert!(m.tags.is_empty());
    assert_eq!(keys(m), sorted(MEM_FIELDS));
    for key in MEM_FIELDS {
        if key.ends_with("_percent") {
            float(m, key);
        } else {
            integer(m, key);
        }
    }
    let k = 1024i64;
    assert_eq!(integer(m, "total"), 16_000_000 * k);
    assert_eq!(integer(m, "free"), 2_000_000 * k);
    assert_eq!(integer(m, "available"), 9_000_000 * k);
    // cached = Cached + SReclaimable; used = total - free - buffers - cached.
    assert_eq!(integer(m, "cached"), 5_700_000 * k);
    assert_eq!(
        integer(m, "used"),
        (16_000_000 - 2_000_000 - 500_000 - 5_700_000) * k
    );
    assert!(close(
        float(m, "used_percent"),
        7_800_000.0 / 16_000_000.0 * 100.0
    ));
    assert!(close(float(m, "available_percent"), 56.25));
    assert_eq!(integer(m, "huge_pages_total"), 16, "pages, not kB");
    assert_eq!(integer(m, "huge_pages_free"), 4);
    assert_eq!(integer(m, "huge_page_size"), 2048 * k);
    assert_eq!(integer(m, "shared"), 300_000 * k);
    assert_eq!(integer(m, "write_back"), 4 * k);
    assert_eq!(integer(m, "write_back_tmp"), 8 * k);
    assert_eq!(integer(m, "vmalloc_total"), 34_359_738_367 * k);
    assert_eq!(integer(m, "high_total"), 0, "absent keys are zero");
}

#[test]
fn mem_on_this_machines_meminfo_and_errors() {
    let tmp = TempDir::new().expect("tempdir");
    copy_proc(tmp.path(), "meminfo");
    let mut mem = input(tmp.path(), "[[inputs.mem]]");
    let m = &gather(&mut mem, T0)[0];
    assert_eq!(keys(m), sorted(MEM_FIELDS));
    assert!(integer(m, "total") > 0);
    let p = float(m, "used_percent");
    assert!((0.0..=100.0).contains(&p));

    write(
        tmp.path(),
        "proc/meminfo",
        "MemTotal: 10 kB\nMemFree: lots kB\n",
    );
    let (_, err) = gather_err(&mut mem, T0);
    assert!(err.contains("meminfo") && err.contains("line 2"), "{err}");

    let err = config(tmp.path(), "[[inputs.mem]]\nfoo = 1").expect_err("mem has no options");
    assert!(err.contains("foo"), "{err}");
}

// --------------------------------------------------------------- swap ----

#[test]
fn swap_two_points_and_missing_vmstat() {
    let tmp = TempDir::new().expect("tempdir");
    write(tmp.path(), "proc/meminfo", MEMINFO);
    write(
        tmp.path(),
        "proc/vmstat",
        "nr_free_pages 1\npswpin 10\npswpout 25\n",
    );
    let mut swap = input(tmp.path(), "[[inputs.swap]]");
    let metrics = gather(&mut swap, T0);
    assert_eq!(metrics.len(), 2);
    let (g, c) = (&metrics[0], &metrics[1]);
    assert_eq!(g.measurement, "swap");
    assert_eq!(keys(g), sorted(&["total", "used", "free", "used_percent"]));
    assert_eq!(integer(g, "total"), 4_000_000 * 1024);
    assert_eq!(integer(g, "free"), 3_000_000 * 1024);
    assert_eq!(integer(g, "used"), 1_000_000 * 1024);
    assert!(close(float(g, "used_percent"), 25.0));
    assert_eq!(keys(c), sorted(&["in", "out"]));
    assert_eq!(integer(c, "in"), 10 * 4096);
    assert_eq!(integer(c, "out"), 25 * 4096);

    std::fs::remove_file(tmp.path().join("proc/vmstat")).expect("remove");
    let (kept, err) = gather_err(&mut swap, T0);
    assert_eq!(kept.len(), 1, "the space point is kept");
    assert!(err.contains("proc/vmstat"), "{err}");
}

#[test]
fn swap_without_swap_space() {
    let tmp = TempDir::new().expect("tempdir");
    copy_proc(tmp.path(), "vmstat");
    write(
        tmp.path(),
        "proc/meminfo",
        "MemTotal: 100 kB\nSwapTotal: 0 kB\nSwapFree: 0 kB\n",
    );
    let mut swap = input(tmp.path(), "[[inputs.swap]]");
    let metrics = gather(&mut swap, T0);
    assert_eq!(integer(&metrics[0], "total"), 0);
    assert!(close(float(&metrics[0], "used_percent"), 0.0));
    integer(&metrics[1], "in");
}

// ------------------------------------------------------------- kernel ----

#[test]
fn kernel_counters_entropy_ksm_and_psi() {
    let tmp = TempDir::new().expect("tempdir");
    write(tmp.path(), "proc/stat", STAT_1);
    write(tmp.path(), "proc/sys/kernel/random/entropy_avail", "256\n");
    let mut kernel = input(tmp.path(), "[[inputs.kernel]]");
    let m = &gather(&mut kernel, T0)[0];
    assert_eq!(m.measurement, "kernel");
    assert_eq!(
        keys(m),
        sorted(&[
            "boot_time",
            "context_switches",
            "entropy_avail",
            "interrupts",
            "processes_forked"
        ])
    );
    assert_eq!(integer(m, "boot_time"), 1_700_000_000);
    assert_eq!(integer(m, "context_switches"), 67_890);
    assert_eq!(integer(m, "interrupts"), 12_345);
    assert_eq!(integer(m, "processes_forked"), 4_242);
    assert_eq!(integer(m, "entropy_avail"), 256);

    let ksm = [
        "full_scans",
        "max_page_sharing",
        "merge_across_nodes",
        "pages_shared",
        "pages_sharing",
        "pages_to_scan",
        "pages_unshared",
        "pages_volatile",
        "run",
        "sleep_millisecs",
        "stable_node_chains",
        "stable_node_chains_prune_millisecs",
        "stable_node_dups",
        "use_zero_pages",
    ];
    for (i, f) in ksm.iter().enumerate() {
        write(
            tmp.path(),
            &format!("sys/kernel/mm/ksm/{f}"),
            format!("{i}\n"),
        );
    }
    write(tmp.path(), "proc/pressure/cpu", "some avg10=1.53 avg60=1.87 avg300=1.73 total=1088168194\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n");
    write(tmp.path(), "proc/pressure/memory", "some avg10=0.00 avg60=0.10 avg300=0.00 total=3463792\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=1429641\n");
    write(tmp.path(), "proc/pressure/io", "some avg10=0.00 avg60=0.00 avg300=0.00 total=68568296\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=54982338\n");
    let mut kernel = input(
        tmp.path(),
        "[[inputs.kernel]]\ncollect = [\"ksm\", \"psi\"]",
    );
    let metrics = gather(&mut kernel, T0);
    let k = &metrics[0];
    for (i, f) in ksm.iter().enumerate() {
        assert_eq!(integer(k, &format!("ksm_{f}")), i as i64);
    }
    assert!(
        k.field("ksm_general_profit").is_none(),
        "absent on this kernel"
    );
    let pressure: Vec<&Metric> = metrics
        .iter()
        .filter(|m| m.measurement == "pressure")
        .collect();
    assert_eq!(
        pressure.len(),
        10,
        "5 resource/type pairs, a total and an avg point each"
    );
    assert!(pressure
        .iter()
        .all(|m| !(m.tag("resource") == Some("cpu") && m.tag("type") == Some("full"))));
    let cpu_some: Vec<&&Metric> = pressure
        .iter()
        .filter(|m| m.tag("resource") == Some("cpu") && m.tag("type") == Some("some"))
        .collect();
    assert_eq!(integer(cpu_some[0], "total"), 1_088_168_194);
    assert!(close(float(cpu_some[1], "avg10"), 1.53));
    assert!(close(float(cpu_some[1], "avg300"), 1.73));

    let err = config(tmp.path(), "[[inputs.kernel]]\ncollect = [\"kms\"]").expect_err("bad group");
    assert!(err.contains("kms"), "{err}");
}

#[test]
fn kernel_missing_entropy_names_the_file() {
    let tmp = TempDir::new().expect("tempdir");
    copy_proc(tmp.path(), "stat");
    let mut kernel = input(tmp.path(), "[[inputs.kernel]]");
    let (_, err) = gather_err(&mut kernel, T0);
    assert!(err.contains("entropy_avail"), "{err}");

    copy_proc(tmp.path(), "sys/kernel/random/entropy_avail");
    let m = &gather(&mut kernel, T0)[0];
    assert!(integer(m, "boot_time") > 0);
    assert!(integer(m, "context_switches") > 0);
}

// ---------------------------------------------------------- processes ----

fn proc_stat(pid: u32, comm: &str, state: char, threads: u32) -> String {
    format!("{pid} ({comm}) {state} 1 1 1 0 -1 4194560 100 0 0 0 5 6 0 0 20 0 {threads} 0 100 1000 10 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n")
}

#[test]
fn processes_by_state() {
    let tmp = TempDir::new().expect("tempdir");
    let root = tmp.path();
    write(root, "proc/1/stat", proc_stat(1, "systemd", 'S', 1));
    write(
        root,
        "proc/20/stat",
        proc_stat(20, "weird) name (x", 'R', 4),
    );
    write(root, "proc/21/stat", proc_stat(21, "zz", 'Z', 1));
    write(root, "proc/22/stat", proc_stat(22, "kworker/0:1", 'I', 1));
    write(root, "proc/23/stat", proc_stat(23, "d", 'D', 2));
    write(root, "proc/24/stat", proc_stat(24, "t", 't', 1));
    write(root, "proc/25/stat", proc_stat(25, "p", 'P', 1));
    write(root, "proc/26/stat", proc_stat(26, "p2", 'P', 1));
    write(root, "proc/27/stat", proc_stat(27, "x", 'X', 1));
    std::fs::create_dir_all(root.join("proc/28")).expect("a process that exited");
    write(root, "proc/self/stat", proc_stat(99, "not a pid", 'R', 1));
    write(root, "proc/stat", STAT_1);
    let mut p = input(root, "[[inputs.processes]]");
    let m = &gather(&mut p, T0)[0];
    assert_eq!(m.measurement, "processes");
    assert_eq!(
        keys(m),
        sorted(&[
            "blocked",
            "dead",
            "idle",
            "paging",
            "parked",
            "running",
            "sleeping",
            "stopped",
            "total",
            "total_threads",
            "unknown",
            "zombies"
        ])
    );
    assert_eq!(integer(m, "sleeping"), 1);
    assert_eq!(integer(m, "running"), 1);
    assert_eq!(integer(m, "zombies"), 1);
    assert_eq!(integer(m, "idle"), 1);
    assert_eq!(integer(m, "blocked"), 1);
    assert_eq!(integer(m, "stopped"), 1);
    assert_eq!(integer(m, "parked"), 2);
    assert_eq!(integer(m, "dead"), 1);
    assert_eq!(integer(m, "paging"), 0);
    assert_eq!(integer(m, "unknown"), 0);
    assert_eq!(integer(m, "total"), 9);
    assert_eq!(integer(m, "total_threads"), 13);
}

#[test]
fn processes_on_this_machine() {
    let mut p = input(Path::new("/"), "[[inputs.processes]]\nuse_sudo = false");
    let m = &gather(&mut p, T0)[0];
    assert!(integer(m, "total") >= 1);
    assert!(integer(m, "total_threads") >= integer(m, "total"));
    assert!(m.field("parked").is_none() || integer(m, "parked") > 0);
}

// ------------------------------------------------------------- system ----

fn utmp_record(kind: i16, user: &str) -> Vec<u8> {
    let mut rec = vec![0u8; 384];
    rec[0..2].copy_from_slice(&kind.to_ne_bytes());
    rec[44..44 + user.len()].copy_from_slice(user.as_bytes());
    rec
}

#[test]
fn system_load_cpus_users_uptime() {
    let tmp = TempDir::new().expect("tempdir");
    let root = tmp.path();
    write(root, "proc/loadavg", "0.25 1.50 2.75 1/85 8812\n");
    write(root, "proc/uptime", "93784.57 180000.00\n");
    let mut cpuinfo = String::new();
    for i in 0..4 {
        cpuinfo.push_str(&format!(
            "processor\t: {i}\nphysical id\t: 0\ncore id\t\t: {}\ncpu cores\t: 2\n\n",
            i / 2
        ));
    }
    write(root, "proc/cpuinfo", cpuinfo);
    let mut utmp = Vec::new();
    utmp.extend(utmp_record(2, "reboot"));
    utmp.extend(utmp_record(7, "alice"));
    utmp.extend(utmp_record(7, "bob"));
    utmp.extend(utmp_record(7, "alice"));
    utmp.extend(utmp_record(6, "LOGIN"));
    write(root, "var/run/utmp", utmp);

    let mut system = input(root, "[[inputs.system]]");
    let metrics = gather(&mut system, T0);
    assert_eq!(metrics.len(), 3);
    let m = &metrics[0];
    assert_eq!(m.measurement, "system");
    assert_eq!(
        keys(m),
        sorted(&[
            "load1",
            "load5",
            "load15",
            "n_cpus",
            "n_physical_cpus",
            "n_users",
            "n_unique_users"
        ])
    );
    assert!(close(float(m, "load1"), 0.25));
    assert!(close(float(m, "load5"), 1.5));
    assert!(close(float(m, "load15"), 2.75));
    assert_eq!(integer(m, "n_cpus"), 4);
    assert_eq!(integer(m, "n_physical_cpus"), 2);
    assert_eq!(integer(m, "n_users"), 3);
    assert_eq!(integer(m, "n_unique_users"), 2);
    assert_eq!(keys(&metrics[1]), ["uptime"]);
    assert_eq!(integer(&metrics[1], "uptime"), 93_784);
    assert_eq!(string(&metrics[2], "uptime_format"), "1 day,  2:03");

    // Without utmp the user counts are left out, as Telegraf does.
    std::fs::remove_file(root.join("var/run/utmp")).expect("remove");
    write(root, "proc/uptime", "300000.00 1.00\n");
    let metrics = gather(&mut system, T0);
    assert!(metrics[0].field("n_users").is_none());
    assert!(metrics[0].field("n_unique_users").is_none());
    assert_eq!(string(&metrics[2], "uptime_format"), "3 days, 11:20");
}

#[test]
fn system_on_this_machine_and_missing_loadavg() {
    let tmp = TempDir::new().expect("tempdir");
    let mut system = input(tmp.path(), "[[inputs.system]]");
    let (_, err) = gather_err(&mut system, T0);
    assert!(err.contains("proc/loadavg"), "{err}");

    for f in ["loadavg", "uptime", "stat", "cpuinfo"] {
        copy_proc(tmp.path(), f);
    }
    let metrics = gather(&mut system, T0);
    assert!(integer(&metrics[0], "n_cpus") >= 1);
    assert!(integer(&metrics[0], "n_physical_cpus") >= 0);
    assert!(integer(&metrics[1], "uptime") > 0);
    assert!(string(&metrics[2], "uptime_format").contains(':'));
}

// --------------------------------------------------------------- disk ----

#[test]
fn disk_mounts_filters_and_unstatable_points() {
    let tmp = TempDir::new().expect("tempdir");
    let root = tmp.path();
    std::fs::create_dir_all(root.join("data")).expect("mkdir");
    std::fs::create_dir_all(root.join("mnt/my disk")).expect("mkdir");
    write(
        root,
        "proc/self/mounts",
        "/dev/vda / ext4 rw,relatime 0 0\n\
         tmpfs /run tmpfs rw,nosuid 0 0\n\
         /dev/sdb1 /data xfs ro,noatime 0 0\n\
         /dev/sdc1 /mnt/my\\040disk ext4 rw 0 0\n\
         auto /auto autofs rw 0 0\n\
         /dev/sdz1 /does/not/exist ext4 rw 0 0\n",
    );
    let mut disk = input(root, "[[inputs.disk]]");
    let metrics = gather(&mut disk, T0);
    let paths: Vec<&str> = metrics.iter().filter_map(|m| m.tag("path")).collect();
    assert_eq!(paths, ["/", "/data", "/mnt/my disk"]);

    let st = rustix::fs::statvfs(root).expect("statvfs of the fixture");
    let frsize = if st.f_frsize != 0 {
        st.f_frsize
    } else {
        st.f_bsize
    };
    let m = &metrics[0];
    assert_eq!(m.measurement, "disk");
    assert_eq!(m.tag("device"), Some("vda"));
    assert_eq!(m.tag("fstype"), Some("ext4"));
    assert_eq!(m.tag("mode"), Some("rw"));
    assert_eq!(
        keys(m),
        sorted(&[
            "total",
            "free",
            "used",
            "used_percent",
            "inodes_total",
            "inodes_free",
            "inodes_used",
            "inodes_used_percent"
        ])
    );
    assert_eq!(integer(m, "total"), (st.f_blocks * frsize) as i64);
    let used = integer(m, "used");
    let free = integer(m, "free");
    assert!(close(
        float(m, "used_percent"),
        used as f64 / (used + free) as f64 * 100.0
    ));
    assert_eq!(
        integer(m, "inodes_used"),
        integer(m, "inodes_total") - integer(m, "inodes_free")
    );
    float(m, "inodes_used_percent");
    assert_eq!(metrics[1].tag("mode"), Some("ro"));
    assert_eq!(metrics[1].tag("device"), Some("sdb1"));

    let mut only = input(
        root,
        "[[inputs.disk]]\nmount_points = [\"/data\"]\nignore_fs = []",
    );
    let paths: Vec<String> = gather(&mut only, T0)
        .iter()
        .filter_map(|m| m.tag("path").map(String::from))
        .collect();
    assert_eq!(paths, ["/data"]);

    let mut no_ro = input(root, "[[inputs.disk]]\nignore_mount_opts = [\"ro\"]");
    let paths: Vec<String> = gather(&mut no_ro, T0)
        .iter()
        .filter_map(|m| m.tag("path").map(String::from))
        .collect();
    assert_eq!(paths, ["/", "/mnt/my disk"]);

    // tmpfs is only ignored by default.
    std::fs::create_dir_all(root.join("run")).expect("mkdir");
    let mut all = input(root, "[[inputs.disk]]\nignore_fs = []");
    let n = gather(&mut all, T0).len();
    assert_eq!(n, 4, "/, /run, /data, /mnt/my disk; autofs never");
}

#[test]
fn disk_mountinfo_bind_mounts_and_errors() {
    let tmp = TempDir::new().expect("tempdir");
    let root = tmp.path();
    std::fs::create_dir_all(root.join("srv")).expect("mkdir");
    write(
        root,
        "proc/1/mountinfo",
        "29 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n\
         30 29 254:0 /var/lib/x /srv rw,relatime shared:1 - ext4 /dev/vda rw\n",
    );
    write(root, "proc/self/mounts", "garbage that is never read\n");
    let mut disk = input(root, "[[inputs.disk]]");
    let metrics = gather(&mut disk, T0);
    let paths: Vec<&str> = metrics.iter().filter_map(|m| m.tag("path")).collect();
    assert_eq!(paths, ["/", "/srv"]);
    let mut no_bind = input(root, "[[inputs.disk]]\nignore_mount_opts = [\"bind\"]");
    let metrics = gather(&mut no_bind, T0);
    let paths: Vec<&str> = metrics.iter().filter_map(|m| m.tag("path")).collect();
    assert_eq!(paths, ["/"]);

    write(
        root,
        "proc/1/mountinfo",
        "29 1 254:0 / / rw,relatime no separator\n",
    );
    let (_, err) = gather_err(&mut disk, T0);
    assert!(err.contains("mountinfo") && err.contains("line 1"), "{err}");

    let empty = TempDir::new().expect("tempdir");
    let mut disk = input(empty.path(), "[[inputs.disk]]");
    let (_, err) = gather_err(&mut disk, T0);
    assert!(err.contains("mountinfo"), "{err}");

    let err = config(root, "[[inputs.disk]]\nmount_point = [\"/\"]").expect_err("typo");
    assert!(err.contains("mount_point"), "{err}");
}

#[test]
fn disk_with_this_machines_mounts() {
    // The mount points of this machine do not exist under the fixture
    // root (except `/`), so most are skipped, and none is fatal.
    let tmp = TempDir::new().expect("tempdir");
    copy_proc(tmp.path(), "self/mounts");
    let mut disk = input(tmp.path(), "[[inputs.disk]]");
    let metrics = gather(&mut disk, T0);
    for m in &metrics {
        assert!(integer(m, "total") > 0);
    }
    // And on the real root, `/` is there.
    let mut real = input(Path::new("/"), "[[inputs.disk]]\nmount_points = [\"/\"]");
    let metrics = gather(&mut real, T0);
    assert!(
        metrics.iter().any(|m| m.tag("path") == Some("/")),
        "{metrics:?}"
    );
}

// ------------------------------------------------------------- diskio ----

const DISKSTATS_1: &str = "\
   7       0 loop0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0
   8       0 sda 1000 10 20000 500 2000 20 40000 1500 1 3000 2100 0 0 0 0 0 0
   8       1 sda1 900 10 18000 450 1900 20 38000 1400 0 2900 1900
 254       0 vda 5 0 40 1 0 0 0 0 0 2 1
   1       2 short 1 2 3
";

// sda: reads +100, writes +300, read_time +400, write_time +800,
// io_time +2000 over 10 s.
const DISKSTATS_2: &str = "\
   7       0 loop0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0
   8       0 sda 1100 10 22000 900 2300 20 46000 2300 2 5000 4100 0 0 0 0 0 0
   8       1 sda1 1000 10 20000 850 2200 20 44000 2200 0 4900 3900
 254       0 vda 5 0 40 1 0 0 0 0 0 2 1
";

const DISKIO_FIELDS: &[&str] = &[
    "reads",
    "writes",
    "read_bytes",
    "write_bytes",
    "read_time",
    "write_time",
    "io_time",
    "weighted_io_time",
    "iops_in_progress",
    "merged_reads",
    "merged_writes",
];

#[test]
fn diskio_counters_then_derived_fields() {
    let tmp = TempDir::new().expect("tempdir");
    write(tmp.path(), "proc/diskstats", DISKSTATS_1);
    let mut diskio = input(tmp.path(), "[[inputs.diskio]]");
    let first = gather(&mut diskio, T0);
    let names: Vec<&str> = first.iter().filter_map(|m| m.tag("name")).collect();
    assert_eq!(
        names,
        ["sda", "sda1", "vda"],
        "all-zero and short lines skipped"
    );
    let sda = &first[0];
    assert_eq!(sda.measurement, "diskio");
    assert_eq!(sda.tags.len(), 1, "no serial tag by default: {sda:?}");
    assert_eq!(keys(sda), sorted(DISKIO_FIELDS));
    assert_eq!(integer(sda, "reads"), 1000);
    assert_eq!(integer(sda, "merged_reads"), 10);
    assert_eq!(integer(sda, "read_bytes"), 20000 * 512);
    assert_eq!(integer(sda, "read_time"), 500);
    assert_eq!(integer(sda, "writes"), 2000);
    assert_eq!(integer(sda, "merged_writes"), 20);
    assert_eq!(integer(sda, "write_bytes"), 40000 * 512);
    assert_eq!(integer(sda, "write_time"), 1500);
    assert_eq!(integer(sda, "iops_in_progress"), 1);
    assert_eq!(integer(sda, "io_time"), 3000);
    assert_eq!(integer(sda, "weighted_io_time"), 2100);

    write(tmp.path(), "proc/diskstats", DISKSTATS_2);
    let second = gather(&mut diskio, T0 + TEN_S);
    let sda = by_tag(&second, "name", "sda")[0];
    assert!(close(float(sda, "io_await"), 1200.0 / 400.0));
    assert!(close(float(sda, "io_svctm"), 2000.0 / 400.0));
    assert!(close(float(sda, "io_util"), 100.0 * 2000.0 / 10_000.0));
    let vda = by_tag(&second, "name", "vda")[0];
    assert!(vda.field("io_await").is_none(), "nothing completed");
    assert!(close(float(vda, "io_util"), 0.0));

    // A counter going backwards: counters still reported, no derived values.
    write(tmp.path(), "proc/diskstats", DISKSTATS_1);
    let third = gather(&mut diskio, T0 + 2 * TEN_S);
    let sda = by_tag(&third, "name", "sda")[0];
    assert_eq!(integer(sda, "reads"), 1000);
    assert!(sda.field("io_await").is_none());
    assert!(sda.field("io_util").is_none());
}

#[test]
fn diskio_devices_udev_serial_tags_and_templates() {
    let tmp = TempDir::new().expect("tempdir");
    let root = tmp.path();
    write(root, "proc/diskstats", DISKSTATS_1);
    write(
        root,
        "run/udev/data/b8:0",
        "S:disk/by-id/ata-Disk_XYZ\nE:ID_SERIAL=Disk_XYZ\nE:ID_FS_TYPE=ext4\nE:DM_VG_NAME=vg\nE:DM_LV_NAME=root\n",
    );
    write(root, "sys/block/sda/wwid", "naa.5000c500a0b1c2d3\n");

    let mut d = input(root, "[[inputs.diskio]]\ndevices = [\"sd*\"]");
    let names: Vec<String> = gather(&mut d, T0)
        .iter()
        .filter_map(|m| m.tag("name").map(String::from))
        .collect();
    assert_eq!(names, ["sda", "sda1"]);

    let mut d = input(root, "[[inputs.diskio]]\ndevices = [\"/dev/vda\"]");
    let names: Vec<String> = gather(&mut d, T0)
        .iter()
        .filter_map(|m| m.tag("name").map(String::from))
        .collect();
    assert_eq!(names, ["vda"]);

    let mut d = input(root, "[[inputs.diskio]]\ndevices = [\"*Disk_XYZ\"]");
    let names: Vec<String> = gather(&mut d, T0)
        .iter()
        .filter_map(|m| m.tag("name").map(String::from))
        .collect();
    assert_eq!(names, ["sda"], "matched through a udev link");

    let mut d = input(
        root,
        "[[inputs.diskio]]\nskip_serial_number = false\ndevice_tags = [\"ID_FS_TYPE\", \"ID_MISSING\"]\nname_templates = [\"$ID_FS_LABEL\", \"${DM_VG_NAME}/${DM_LV_NAME}\"]",
    );
    let metrics = gather(&mut d, T0);
    let sda = &metrics[0];
    assert_eq!(sda.tag("name"), Some("vg/root"));
    assert_eq!(sda.tag("serial"), Some("Disk_XYZ"));
    assert_eq!(sda.tag("wwid"), Some("naa.5000c500a0b1c2d3"));
    assert_eq!(sda.tag("ID_FS_TYPE"), Some("ext4"));
    assert_eq!(sda.tag("ID_MISSING"), None);
    let sda1 = &metrics[1];
    assert_eq!(
        sda1.tag("name"),
        Some("sda1"),
        "no udev data: the kernel name"
    );
    assert_eq!(sda1.tag("serial"), Some("unknown"));

    let err = config(root, "[[inputs.diskio]]\ndevice = [\"sda\"]").expect_err("typo");
    assert!(err.contains("device"), "{err}");
}

#[test]
fn diskio_on_this_machine_and_missing_file() {
    let tmp = TempDir::new().expect("tempdir");
    let mut d = input(tmp.path(), "[[inputs.diskio]]");
    let (_, err) = gather_err(&mut d, T0);
    assert!(err.contains("proc/diskstats"), "{err}");

    copy_proc(tmp.path(), "diskstats");
    let first = gather(&mut d, T0);
    copy_proc(tmp.path(), "diskstats");
    let second = gather(&mut d, T0 + TEN_S);
    assert_eq!(first.len(), second.len());
    for m in &second {
        assert_eq!(m.measurement, "diskio");
        for f in DISKIO_FIELDS {
            assert!(integer(m, f) >= 0);
        }
        if let Some(FieldValue::Float(u)) = m.field("io_util") {
            assert!(*u >= 0.0);
        }
    }
}

// -------------------------------------------------------------- all ------

#[test]
fn every_input_on_this_machine_encodes_as_line_protocol() {
    for name in [
        "cpu",
        "mem",
        "swap",
        "kernel",
        "processes",
        "system",
        "disk",
        "diskio",
    ] {
        let mut i = input(Path::new("/"), &format!("[[inputs.{name}]]"));
        gather(&mut i, T0);
        for m in gather(&mut i, T0 + TEN_S) {
            let line = m.encode_to_string().expect("encodes");
            assert!(
                line.starts_with(name) || line.starts_with("pressure"),
                "{line}"
            );
            print!("{line}");
        }
    }
}
