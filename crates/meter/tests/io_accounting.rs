//! Exact byte accounting through the std `Read`/`Write` wrappers: short
//! reads, partial writes, transient results, hard errors, vectored I/O and
//! protocol streams.
#![allow(clippy::unwrap_used)]

use std::collections::VecDeque;
use std::io::{self, IoSlice, IoSliceMut, Read, Write};

use meter::{ConnectionRecord, Meter, MeterConfig, Phase, Records, Traffic};
use proptest::prelude::*;

/// What the scripted I/O object does on its next call.
#[derive(Debug, Clone, Copy)]
enum Step {
    /// Move at most this many bytes (a short read or a partial write).
    Bytes(usize),
    /// `ErrorKind::Interrupted`.
    Interrupted,
    /// `ErrorKind::WouldBlock`.
    WouldBlock,
    /// A hard error of this kind.
    Fail(io::ErrorKind),
}

/// An I/O object that follows a script: reads come from `source`, written
/// bytes go to `sink`; once the script is exhausted every call moves as
/// much as it can.
#[derive(Debug, Default)]
struct Scripted {
    script: VecDeque<Step>,
    source: VecDeque<u8>,
    sink: Vec<u8>,
    /// Bytes really handed to the caller by reads.
    delivered: usize,
}

impl Scripted {
    fn new(script: &[Step], source: &[u8]) -> Self {
        Scripted {
            script: script.iter().copied().collect(),
            source: source.iter().copied().collect(),
            ..Scripted::default()
        }
    }

    fn next_limit(&mut self) -> io::Result<usize> {
        match self.script.pop_front() {
            None => Ok(usize::MAX),
            Some(Step::Bytes(n)) => Ok(n),
            Some(Step::Interrupted) => Err(io::ErrorKind::Interrupted.into()),
            Some(Step::WouldBlock) => Err(io::ErrorKind::WouldBlock.into()),
            Some(Step::Fail(k)) => Err(io::Error::new(k, "scripted failure")),
        }
    }
}

impl Read for Scripted {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let limit = self.next_limit()?;
        let n = limit.min(buf.len()).min(self.source.len());
        for b in buf.iter_mut().take(n) {
            *b = self.source.pop_front().unwrap();
        }
        self.delivered += n;
        Ok(n)
    }

    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        let mut limit = self.next_limit()?;
        let mut total = 0;
        for buf in bufs.iter_mut() {
            let n = limit.min(buf.len()).min(self.source.len());
            for b in buf.iter_mut().take(n) {
                *b = self.source.pop_front().unwrap();
            }
            total += n;
            limit -= n;
            if limit == 0 || self.source.is_empty() {
                break;
            }
        }
        self.delivered += total;
        Ok(total)
    }
}

impl Write for Scripted {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.next_limit()?.min(buf.len());
        self.sink.extend_from_slice(&buf[..n]);
        Ok(n)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let mut limit = self.next_limit()?;
        let mut total = 0;
        for buf in bufs {
            let n = limit.min(buf.len());
            self.sink.extend_from_slice(&buf[..n]);
            total += n;
            limit -= n;
            if limit == 0 {
                break;
            }
        }
        Ok(total)
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.script.pop_front() {
            Some(Step::Fail(k)) => Err(io::Error::new(k, "scripted flush failure")),
            _ => Ok(()),
        }
    }
}

fn meter() -> (Meter, Records) {
    let meter = Meter::new(MeterConfig::default());
    let records = meter.records().unwrap();
    (meter, records)
}

fn only_record(records: &Records) -> ConnectionRecord {
    let mut all = records.drain();
    assert_eq!(all.len(), 1, "{all:?}");
    all.pop().unwrap()
}

fn label<'a>(list: &'a [(std::sync::Arc<str>, Traffic)], name: &str) -> &'a Traffic {
    &list
        .iter()
        .find(|(l, _)| &**l == name)
        .unwrap_or_else(|| panic!("no label {name} in {list:?}"))
        .1
}

fn payload(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 31 % 251) as u8).collect()
}

#[test]
fn short_reads_and_transient_errors_count_exactly_what_was_read() {
    let (meter, records) = meter();
    let conn = meter.connection("tcp").peer("peer-a").protocol("p").open();
    let data = payload(10_000);
    let script = [
        Step::Bytes(1),
        Step::Interrupted,
        Step::Bytes(7),
        Step::WouldBlock,
        Step::Bytes(0), // a zero-length read in the middle: counts nothing
        Step::Bytes(4096),
        Step::Interrupted,
        Step::Interrupted,
        Step::Bytes(3),
    ];
    let mut rx = conn.wrap(Scripted::new(&script, &data));
    let mut got = Vec::new();
    let mut buf = [0u8; 1500];
    let mut transient = 0;
    loop {
        match rx.read(&mut buf) {
            Ok(0) if rx.get_ref().source.is_empty() => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock
                ) =>
            {
                transient += 1
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(transient, 4);
    assert_eq!(got, data);
    assert_eq!(rx.get_ref().delivered, data.len());
    assert_eq!(conn.bytes(), (10_000, 0));

    let snap = meter.snapshot();
    assert_eq!(snap.global.bytes_in, 10_000);
    assert_eq!(label(&snap.transports, "tcp").bytes_in, 10_000);
    assert_eq!(label(&snap.protocols, "p").bytes_in, 10_000);
    assert_eq!(snap.peers[0].traffic.bytes_in, 10_000);
    assert_eq!(snap.global.bytes_out, 0);

    drop((rx, conn));
    let r = only_record(&records);
    assert_eq!((r.bytes_in, r.bytes_out), (10_000, 0));
    assert_eq!(r.error, None, "transient errors are not errors");
}

#[test]
fn partial_writes_and_transient_errors_count_exactly_what_was_accepted() {
    let (meter, records) = meter();
    let conn = meter.connection("tcp").peer("peer-b").open();
    let data = payload(70_000);
    let script = [
        Step::Bytes(3),
        Step::WouldBlock,
        Step::Bytes(1),
        Step::Interrupted,
        Step::Bytes(65_536),
        Step::Bytes(0),
        Step::Bytes(17),
    ];
    let mut tx = conn.wrap(Scripted::new(&script, &[]));
    let mut off = 0;
    let mut zero = 0;
    while off < data.len() {
        match tx.write(&data[off..]) {
            Ok(0) => zero += 1,
            Ok(n) => off += n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock
                ) => {}
            Err(e) => panic!("{e}"),
        }
        assert_eq!(conn.bytes().1, off as u64, "counted = accepted, always");
    }
    assert_eq!(zero, 1);
    // write_all retries Interrupted itself and counts the same.
    let more = payload(5_000);
    tx.get_mut()
        .script
        .extend([Step::Bytes(10), Step::Interrupted, Step::Bytes(2000)]);
    tx.write_all(&more).unwrap();
    tx.flush().unwrap();
    assert_eq!(tx.get_ref().sink.len(), 75_000);
    assert_eq!(&tx.get_ref().sink[..70_000], &data[..]);
    assert_eq!(conn.bytes(), (0, 75_000));
    let snap = meter.snapshot();
    assert_eq!(snap.global.bytes_out, 75_000);
    assert_eq!(snap.peers[0].traffic.bytes_out, 75_000);
    drop((tx, conn));
    let r = only_record(&records);
    assert_eq!(r.bytes_out, 75_000);
    assert!(r.error.is_none());
}

#[test]
fn a_hard_read_error_is_the_connections_first_error() {
    let (meter, records) = meter();
    let conn = meter.connection("tcp").open();
    let script = [
        Step::Bytes(5),
        Step::Fail(io::ErrorKind::ConnectionReset),
        Step::Fail(io::ErrorKind::BrokenPipe),
    ];
    let mut io = conn.wrap(Scripted::new(&script, b"hello world"));
    let mut buf = [0u8; 64];
    assert_eq!(io.read(&mut buf).unwrap(), 5);
    let e = io.read(&mut buf).unwrap_err();
    assert_eq!(
        e.kind(),
        io::ErrorKind::ConnectionReset,
        "errors pass through"
    );
    // A later error (here on the write side) does not replace the first.
    let e = io.write(b"x").unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::BrokenPipe);
    assert_eq!(conn.bytes(), (5, 0), "failed calls count nothing");
    drop((io, conn));
    let r = only_record(&records);
    let err = r.error.unwrap();
    assert_eq!(err.class, "reset");
    assert_eq!(err.phase, Phase::Read);
    assert!(err.detail.contains("scripted failure"), "{}", err.detail);
}

#[test]
fn a_hard_write_error_is_recorded_with_phase_write() {
    let (meter, records) = meter();
    let conn = meter.connection("tcp").open();
    let script = [
        Step::Bytes(100),
        Step::Interrupted,
        Step::WouldBlock,
        Step::Fail(io::ErrorKind::BrokenPipe),
    ];
    let mut tx = conn.wrap(Scripted::new(&script, &[]));
    assert_eq!(tx.write(&[1; 300]).unwrap(), 100);
    assert!(tx.write(&[1; 300]).is_err());
    assert!(tx.write(&[1; 300]).is_err());
    let e = tx.write(&[1; 300]).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::BrokenPipe);
    drop((tx, conn));
    let r = only_record(&records);
    assert_eq!(r.bytes_out, 100);
    let err = r.error.unwrap();
    assert_eq!((&*err.class, err.phase), ("broken_pipe", Phase::Write));
}

#[test]
fn a_failed_flush_is_a_write_error() {
    let (meter, records) = meter();
    let conn = meter.connection("tcp").open();
    let mut tx = conn.wrap(Scripted::new(&[Step::Fail(io::ErrorKind::TimedOut)], &[]));
    assert!(tx.flush().is_err());
    drop((tx, conn));
    let err = only_record(&records).error.unwrap();
    assert_eq!((&*err.class, err.phase), ("timeout", Phase::Write));
}

#[test]
fn interrupted_and_would_block_alone_leave_no_error() {
    let (meter, records) = meter();
    let conn = meter.connection("tcp").open();
    let script = [
        Step::Interrupted,
        Step::WouldBlock,
        Step::Interrupted,
        Step::WouldBlock,
    ];
    let mut io = conn.wrap(Scripted::new(&script, b"abc"));
    let mut buf = [0u8; 8];
    assert!(io.read(&mut buf).is_err());
    assert!(io.read(&mut buf).is_err());
    assert!(io.write(b"abc").is_err());
    assert!(io.write(b"abc").is_err());
    assert_eq!(conn.bytes(), (0, 0));
    drop((io, conn));
    assert_eq!(only_record(&records).error, None);
}

#[test]
fn vectored_reads_and_writes_count_what_moved() {
    let (meter, _records) = meter();
    let conn = meter.connection("tcp").protocol("v").open();
    let data = payload(1000);
    let mut io = conn.wrap(Scripted::new(
        &[Step::Bytes(300), Step::Interrupted, Step::Bytes(5)],
        &data,
    ));
    let (mut a, mut b, mut c) = ([0u8; 100], [0u8; 150], [0u8; 1000]);
    let n = io
        .read_vectored(&mut [
            IoSliceMut::new(&mut a),
            IoSliceMut::new(&mut b),
            IoSliceMut::new(&mut c),
        ])
        .unwrap();
    assert_eq!(n, 300, "a short vectored read over three buffers");
    assert_eq!(&a[..], &data[..100]);
    assert_eq!(&b[..], &data[100..250]);
    assert_eq!(&c[..50], &data[250..300]);
    assert!(io.read_vectored(&mut [IoSliceMut::new(&mut a)]).is_err());
    assert_eq!(io.read_vectored(&mut [IoSliceMut::new(&mut a)]).unwrap(), 5);
    // Script exhausted: the rest in one go.
    let mut rest = Vec::new();
    io.read_to_end(&mut rest).unwrap();
    assert_eq!(rest.len(), 1000 - 305);
    assert_eq!(conn.bytes().0, 1000);

    io.get_mut()
        .script
        .extend([Step::Bytes(7), Step::WouldBlock, Step::Bytes(400)]);
    let bufs = [IoSlice::new(&[1; 5]), IoSlice::new(&[2; 500])];
    assert_eq!(io.write_vectored(&bufs).unwrap(), 7);
    assert!(io.write_vectored(&bufs).is_err());
    assert_eq!(io.write_vectored(&bufs).unwrap(), 400);
    assert_eq!(io.get_ref().sink.len(), 407);
    assert_eq!(conn.bytes(), (1000, 407));
    let snap = meter.snapshot();
    assert_eq!(label(&snap.protocols, "v").bytes_in, 1000);
    assert_eq!(label(&snap.protocols, "v").bytes_out, 407);
}

#[test]
fn stream_meters_count_their_protocol_and_connections_the_rest() {
    let (meter, records) = meter();
    let conn = meter
        .connection("quic")
        .peer("12D3KooWPeer")
        .protocol("yamux")
        .open();
    let ping = conn.stream("/ipfs/ping/1.0.0");
    let kad = conn.stream("/ipfs/kad/1.0.0");
    assert_eq!(ping.protocol(), "/ipfs/ping/1.0.0");
    // A stream's bytes pass through the connection's wrapper too, as they
    // would over a multiplexer: nest the wrappers.
    let mut ping_io = ping.wrap(conn.wrap(Scripted::new(&[], &[7; 32])));
    let mut kad_io = kad.wrap(conn.wrap(Scripted::new(&[Step::Bytes(10)], &[9; 64])));
    let mut buf = [0u8; 64];
    assert_eq!(ping_io.read(&mut buf).unwrap(), 32);
    ping_io.write_all(&[0; 32]).unwrap();
    assert_eq!(kad_io.read(&mut buf).unwrap(), 10);
    assert_eq!(kad_io.read(&mut buf).unwrap(), 54);
    kad_io.write_all(&[0; 100]).unwrap();

    // Two more streams of one protocol add up.
    let ping2 = conn.stream("/ipfs/ping/1.0.0");
    let mut ping2_io = ping2.wrap(conn.wrap(Vec::new()));
    ping2_io.write_all(&[0; 8]).unwrap();

    let snap = meter.snapshot();
    let p = label(&snap.protocols, "/ipfs/ping/1.0.0");
    assert_eq!((p.bytes_in, p.bytes_out), (32, 40));
    let k = label(&snap.protocols, "/ipfs/kad/1.0.0");
    assert_eq!((k.bytes_in, k.bytes_out), (64, 100));
    let y = label(&snap.protocols, "yamux");
    assert_eq!((y.bytes_in, y.bytes_out), (96, 140));
    assert_eq!((snap.global.bytes_in, snap.global.bytes_out), (96, 140));
    assert_eq!(snap.peers[0].traffic.bytes_in, 96);
    assert_eq!(conn.bytes(), (96, 140));

    // Streams keep the connection open: no record until the last drops.
    drop(conn);
    drop((ping_io, kad_io, ping, kad));
    assert_eq!(meter.active_connections(), 1);
    assert!(records.drain().is_empty());
    drop((ping2_io, ping2));
    assert_eq!(meter.active_connections(), 0);
    let r = only_record(&records);
    assert_eq!((r.bytes_in, r.bytes_out), (96, 140));
    assert_eq!(r.protocol.as_deref(), Some("yamux"));
}

#[test]
fn off_counts_nothing_and_changes_nothing() {
    let data = payload(5000);
    let mut io = meter::Metered::new(
        Scripted::new(&[Step::Bytes(3), Step::Interrupted], &data),
        meter::Off,
    );
    let mut buf = [0u8; 10];
    assert_eq!(io.read(&mut buf).unwrap(), 3);
    assert_eq!(
        io.read(&mut buf).unwrap_err().kind(),
        io::ErrorKind::Interrupted
    );
    let mut rest = Vec::new();
    io.read_to_end(&mut rest).unwrap();
    assert_eq!(rest.len(), 4997);
    io.write_all(&data).unwrap();
    let (inner, _off) = io.into_parts();
    assert_eq!(inner.sink, data);
}

#[test]
fn clones_of_a_connection_meter_share_counters_across_threads() {
    let (meter, records) = meter();
    let conn = meter.connection("tcp").peer("p").open();
    let threads: Vec<_> = (0..4)
        .map(|i| {
            let c = conn.clone();
            std::thread::spawn(move || {
                let mut rx = c.wrap(io::repeat(i).take(1 << 20));
                let mut tx = c.wrap(io::sink());
                let n = io::copy(&mut rx, &mut tx).unwrap();
                assert_eq!(n, 1 << 20);
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(conn.bytes(), (4 << 20, 4 << 20));
    drop(conn);
    let r = only_record(&records);
    assert_eq!((r.bytes_in, r.bytes_out), (4 << 20, 4 << 20));
    assert_eq!(meter.snapshot().global.bytes_in, 4 << 20);
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (0usize..5000).prop_map(Step::Bytes),
        1 => Just(Step::Interrupted),
        1 => Just(Step::WouldBlock),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Any mix of chunk sizes, short reads, partial writes and transient
    /// results: the counters equal the bytes that actually moved.
    #[test]
    fn counters_equal_bytes_transferred(
        len in 0usize..40_000,
        read_script in proptest::collection::vec(step(), 0..40),
        write_script in proptest::collection::vec(step(), 0..40),
        buf_sizes in proptest::collection::vec(1usize..9000, 1..20),
        vectored in any::<bool>(),
    ) {
        let (meter, records) = meter();
        let conn = meter.connection("tcp").peer("x").protocol("y").open();
        let data = payload(len);
        let mut rx = conn.wrap(Scripted::new(&read_script, &data));
        let mut tx = conn.wrap(Scripted::new(&write_script, &[]));
        let mut got = Vec::new();
        let mut i = 0;
        // Copy by hand with varying buffer sizes until the source is dry
        // and the script is used up.
        loop {
            let size = buf_sizes[i % buf_sizes.len()];
            i += 1;
            let mut buf = vec![0u8; size];
            let r = if vectored {
                let (a, b) = buf.split_at_mut(size / 2);
                rx.read_vectored(&mut [IoSliceMut::new(a), IoSliceMut::new(b)])
            } else {
                rx.read(&mut buf)
            };
            match r {
                Ok(0) if rx.get_ref().source.is_empty() && rx.get_ref().script.is_empty() => break,
                Ok(n) => {
                    let mut off = 0;
                    while off < n {
                        let w = if vectored {
                            let (a, b) = buf[off..n].split_at(1.min(n - off));
                            tx.write_vectored(&[IoSlice::new(a), IoSlice::new(b)])
                        } else {
                            tx.write(&buf[off..n])
                        };
                        match w {
                            Ok(k) => off += k,
                            Err(e) => prop_assert!(matches!(e.kind(), io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock)),
                        }
                    }
                    got.extend_from_slice(&buf[..n]);
                }
                Err(e) => prop_assert!(matches!(e.kind(), io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock)),
            }
            prop_assert_eq!(conn.bytes().0 as usize, rx.get_ref().delivered);
            prop_assert_eq!(conn.bytes().1 as usize, tx.get_ref().sink.len());
        }
        prop_assert_eq!(&got, &data);
        prop_assert_eq!(&tx.get_ref().sink, &data);
        let snap = meter.snapshot();
        prop_assert_eq!(snap.global.bytes_in, len as u64);
        prop_assert_eq!(snap.global.bytes_out, len as u64);
        prop_assert_eq!(label(&snap.protocols, "y").bytes_in, len as u64);
        prop_assert_eq!(snap.peers[0].traffic.bytes_out, len as u64);
        drop((rx, tx, conn));
        let r = only_record(&records);
        prop_assert_eq!((r.bytes_in, r.bytes_out), (len as u64, len as u64));
        prop_assert!(r.error.is_none());
    }
}
