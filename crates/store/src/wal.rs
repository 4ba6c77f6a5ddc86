//! The write-ahead log: append-only segments of checksummed records, written
//! by one thread that commits concurrent writes with a shared fsync.
//!
//! A segment is `wal/<20-digit number>.wal`: the 8-byte magic `WEIRWAL1`,
//! then records framed as `[payload length: u32 LE][CRC32C of payload: u32
//! LE][payload]`. A write is acknowledged only once its record is on disk
//! (unless `sync` is off). On open, segments already persisted to Parquet
//! are deleted and the others replayed in order; a torn or corrupt record
//! ends its segment: the last segment is truncated there, with a warning.
//! Writing goes on in a fresh segment (or in the last one if it holds only
//! its header).

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::catalog::sync_dir;
use crate::error::StoreError;
use crate::latency::LatencyHistogram;
use crate::rows::PreparedWrite;

const MAGIC: &[u8; 8] = b"WEIRWAL1";
const FRAME_HEADER: usize = 8;
/// The largest record: writes beyond it are refused before logging, and
/// larger lengths are treated as corruption on replay.
pub(crate) const MAX_RECORD_BYTES: usize = 1 << 30;
/// A commit group stops gathering writes past this many bytes.
const MAX_GROUP_BYTES: usize = 16 << 20;

/// How the log writes and syncs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalConfig {
    /// fsync before acknowledging. `false` acknowledges once the record is
    /// handed to the operating system: a process crash loses nothing, a
    /// power failure or kernel crash can lose the last writes.
    pub sync: bool,
    /// The longest a commit group keeps taking writes that are already
    /// queued behind its first one (it never waits for more): under load,
    /// concurrent writes share one fsync; an idle log commits a lone write
    /// at once.
    pub flush_interval: Duration,
    /// A segment is closed and a new one started past this size.
    pub segment_bytes: u64,
}

impl Default for WalConfig {
    fn default() -> Self {
        WalConfig {
            sync: true,
            flush_interval: Duration::from_millis(10),
            segment_bytes: 64 << 20,
        }
    }
}

/// One write waiting for its record to be durable.
struct Request {
    payload: Vec<u8>,
    /// The record's rows already built for the buffer, if its writer did.
    prepared: Option<PreparedWrite>,
    done: SyncSender<Result<(), String>>,
}

/// What the log thread is asked to do, in order.
enum Message {
    /// Make a record durable, apply it, acknowledge it.
    Append(Request),
    /// Close the segment (everything before is in it), start a new one,
    /// call the rotate hook, answer with the closed segment's number.
    Rotate(SyncSender<Result<u64, String>>),
}

/// Called by the log thread when it closes a segment on request, after every
/// earlier record was applied and before any later one is.
pub(crate) type OnRotate = Box<dyn FnMut() + Send>;

/// Called by the log thread, in log order, for each record (with the rows
/// its writer built, if any) once it is durable and before its writer is
/// told so.
pub(crate) type OnDurable = Box<dyn FnMut(&[u8], Option<PreparedWrite>) + Send>;

/// The handle writers use; the log thread owns the file.
#[derive(Debug)]
pub(crate) struct Wal {
    dir: PathBuf,
    /// How long each fsync took.
    sync_latency: Arc<LatencyHistogram>,
    tx: Mutex<Option<SyncSender<Message>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Wal {
    /// Deletes the segments up to `persisted_through` (their rows are in
    /// Parquet already), replays every later record into `replay`, then
    /// starts the log thread on a new segment.
    pub(crate) fn open(
        dir: &Path,
        config: WalConfig,
        persisted_through: u64,
        mut replay: impl FnMut(&[u8]),
        on_durable: OnDurable,
        on_rotate: OnRotate,
    ) -> Result<Wal, StoreError> {
        fs::create_dir_all(dir).map_err(|e| StoreError::io("creating WAL directory", dir, e))?;
        sync_dir(dir.parent().unwrap_or(Path::new(".")))?;
        remove_through(dir, persisted_through)?;
        let segments = list_segments(dir)?;
        let last = segments
            .last()
            .map_or(0, |(n, _)| *n)
            .max(persisted_through);
        for (i, (_, path)) in segments.iter().enumerate() {
            replay_segment(path, i + 1 == segments.len(), &mut replay)?;
        }
        // An empty last segment (a store opened and closed without writes,
        // such as a `weir query`) is reused rather than piling up.
        let writer = match segments.last() {
            Some((n, path))
                if *n == last
                    && fs::metadata(path).is_ok_and(|m| m.len() == MAGIC.len() as u64) =>
            {
                SegmentWriter::reopen_empty(dir, *n, config)?
            }
            _ => SegmentWriter::create(dir, last + 1, config)?,
        };
        let (tx, rx) = mpsc::sync_channel::<Message>(1024);
        let sync_latency = Arc::new(LatencyHistogram::default());
        let timings = Arc::clone(&sync_latency);
        let thread = std::thread::Builder::new()
            .name("weir-wal".into())
            .spawn(move || run(writer, rx, on_durable, on_rotate, &timings))
            .map_err(|e| StoreError::io("starting WAL thread for", dir, e))?;
        Ok(Wal {
            dir: dir.to_owned(),
            sync_latency,
            tx: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
        })
    }

    /// How long each fsync took.
    pub(crate) fn sync_latency(&self) -> &LatencyHistogram {
        &self.sync_latency
    }

    /// Queues `payload`; the returned receiver says when it is durable. Used
    /// by writers that must queue under a lock and wait outside it.
    pub(crate) fn submit(
        &self,
        payload: Vec<u8>,
        prepared: Option<PreparedWrite>,
    ) -> Result<Pending, StoreError> {
        let (done, wait) = mpsc::sync_channel(1);
        self.send(Message::Append(Request {
            payload,
            prepared,
            done,
        }))?;
        Ok(Pending(wait))
    }

    /// Closes the current segment once everything queued before is applied,
    /// and returns its number; records queued later go to a new segment.
    pub(crate) fn rotate(&self) -> Result<u64, StoreError> {
        let (done, wait) = mpsc::sync_channel(1);
        self.send(Message::Rotate(done))?;
        match wait.recv() {
            Ok(Ok(n)) => Ok(n),
            Ok(Err(e)) => Err(StoreError::WalUnavailable(e)),
            Err(_) => Err(StoreError::WalUnavailable(
                "the log thread has stopped".into(),
            )),
        }
    }

    /// Deletes the closed segments up to number `through`.
    pub(crate) fn remove_through(&self, through: u64) -> Result<(), StoreError> {
        remove_through(&self.dir, through)
    }

    fn send(&self, message: Message) -> Result<(), StoreError> {
        // Cloned out of the lock so a full queue blocks no other sender.
        let tx = self
            .tx
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or_else(|| StoreError::WalUnavailable("the log is closed".into()))?;
        tx.send(message)
            .map_err(|_| StoreError::WalUnavailable("the log thread has stopped".into()))
    }

    fn wait(wait: Receiver<Result<(), String>>) -> Result<(), StoreError> {
        match wait.recv() {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(StoreError::WalUnavailable(e)),
            Err(_) => Err(StoreError::WalUnavailable(
                "the log thread has stopped".into(),
            )),
        }
    }

    /// Commits what is queued and stops the log thread.
    pub(crate) fn close(&self) {
        self.tx.lock().unwrap_or_else(|p| p.into_inner()).take();
        let thread = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(thread) = thread {
            if thread.join().is_err() {
                tracing::error!("the WAL thread panicked");
            }
        }
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        self.close();
    }
}

/// A queued write; [`Pending::wait`] returns once it is durable.
#[derive(Debug)]
pub(crate) struct Pending(Receiver<Result<(), String>>);

impl Pending {
    /// Blocks until the record is durable and applied, or the log failed.
    pub(crate) fn wait(self) -> Result<(), StoreError> {
        Wal::wait(self.0)
    }
}

/// The log thread: gather a group, write it, sync once, apply, acknowledge;
/// rotate when asked, between groups.
fn run(
    mut writer: SegmentWriter,
    rx: Receiver<Message>,
    mut on_durable: OnDurable,
    mut on_rotate: OnRotate,
    sync_latency: &LatencyHistogram,
) {
    let mut next = rx.recv().ok();
    while let Some(message) = next.take() {
        let first = match message {
            Message::Rotate(done) => {
                let result = writer.rotate();
                if result.is_ok() {
                    on_rotate();
                }
                let _ = done.send(result);
                next = rx.recv().ok();
                continue;
            }
            Message::Append(request) => request,
        };
        let started = Instant::now();
        let mut bytes = first.payload.len();
        let mut group = vec![first];
        while bytes < MAX_GROUP_BYTES && started.elapsed() < writer.config.flush_interval {
            match rx.try_recv() {
                Ok(Message::Append(request)) => {
                    bytes += request.payload.len();
                    group.push(request);
                }
                // A rotation waits for the group ahead of it.
                Ok(rotate @ Message::Rotate(_)) => {
                    next = Some(rotate);
                    break;
                }
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        let result = writer
            .commit(group.iter().map(|r| r.payload.as_slice()))
            .map(|synced| {
                if let Some(took) = synced {
                    sync_latency.observe(took);
                }
            });
        for request in group {
            if result.is_ok() {
                on_durable(&request.payload, request.prepared);
            }
            // A writer that gave up waiting is no error of the log's.
            let _ = request.done.send(result.clone());
        }
        if next.is_none() {
            next = rx.recv().ok();
        }
    }
    if let Err(e) = writer.file.sync_all() {
        tracing::warn!(
            "syncing WAL segment {} at close: {e}",
            writer.path.display()
        );
    }
}

/// The open segment.
struct SegmentWriter {
    dir: PathBuf,
    number: u64,
    path: PathBuf,
    file: File,
    len: u64,
    config: WalConfig,
    frame: Vec<u8>,
}

impl SegmentWriter {
    fn create(dir: &Path, number: u64, config: WalConfig) -> Result<Self, StoreError> {
        let path = segment_path(dir, number);
        let mut file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)
            .map_err(|e| StoreError::io("creating WAL segment", &path, e))?;
        let ready = file
            .write_all(MAGIC)
            .and_then(|()| file.sync_all())
            .map_err(|e| StoreError::io("writing WAL segment header", &path, e))
            .and_then(|()| sync_dir(dir));
        if let Err(e) = ready {
            // Leave no half-made segment behind: the next try creates it anew.
            let _ = fs::remove_file(&path);
            return Err(e);
        }
        Ok(SegmentWriter::header_only(dir, number, path, file, config))
    }

    /// A writer for segment `file`, which holds only its header.
    fn header_only(dir: &Path, number: u64, path: PathBuf, file: File, config: WalConfig) -> Self {
        SegmentWriter {
            dir: dir.to_owned(),
            number,
            path,
            file,
            len: MAGIC.len() as u64,
            config,
            frame: Vec::new(),
        }
    }

    /// Appends to existing segment `number`, which holds only its header.
    fn reopen_empty(dir: &Path, number: u64, config: WalConfig) -> Result<Self, StoreError> {
        let path = segment_path(dir, number);
        let file = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(|e| StoreError::io("opening WAL segment", &path, e))?;
        Ok(SegmentWriter::header_only(dir, number, path, file, config))
    }

    /// Writes a group of records with one write and one sync, and says how
    /// long the sync took (`None`: not synced). On failure the segment is
    /// cut back to where the group began.
    fn commit<'p>(
        &mut self,
        payloads: impl Iterator<Item = &'p [u8]>,
    ) -> Result<Option<Duration>, String> {
        self.frame.clear();
        for payload in payloads {
            let len = u32::try_from(payload.len()).map_err(|_| "record too large".to_owned())?;
            self.frame.extend_from_slice(&len.to_le_bytes());
            self.frame
                .extend_from_slice(&crc32c::crc32c(payload).to_le_bytes());
            self.frame.extend_from_slice(payload);
        }
        let written = self.file.write_all(&self.frame).and_then(|()| {
            if !self.config.sync {
                return Ok(None);
            }
            let start = Instant::now();
            self.file.sync_data()?;
            Ok(Some(start.elapsed()))
        });
        let synced = match written {
            Ok(synced) => synced,
            Err(e) => {
                let msg = format!("writing WAL segment {}: {e}", self.path.display());
                tracing::error!("{msg}");
                if let Err(e) = self.file.set_len(self.len) {
                    tracing::error!("cutting back WAL segment {}: {e}", self.path.display());
                }
                // Whatever the failed write left behind, later records go to a
                // fresh segment so replay never has to read past it.
                if let Err(e) = self.rotate() {
                    tracing::error!("{e}");
                }
                return Err(msg);
            }
        };
        self.len += self.frame.len() as u64;
        if self.len >= self.config.segment_bytes {
            // On failure keep appending to the full segment; retried next time.
            if let Err(e) = self.rotate() {
                tracing::error!("{e}");
            }
        }
        Ok(synced)
    }

    /// Syncs and closes this segment, continues in the next one; returns the
    /// closed segment's number.
    fn rotate(&mut self) -> Result<u64, String> {
        let closed = self.number;
        self.file
            .sync_all()
            .map_err(|e| format!("syncing WAL segment {}: {e}", self.path.display()))?;
        let next = SegmentWriter::create(&self.dir, closed + 1, self.config)
            .map_err(|e| format!("rotating WAL: {e}"))?;
        let frame = std::mem::take(&mut self.frame);
        *self = next;
        self.frame = frame;
        Ok(closed)
    }
}

fn segment_path(dir: &Path, number: u64) -> PathBuf {
    dir.join(format!("{number:020}.wal"))
}

/// Deletes the segments under `dir` numbered up to `through`.
fn remove_through(dir: &Path, through: u64) -> Result<(), StoreError> {
    let mut removed = false;
    for (number, path) in list_segments(dir)? {
        if number <= through {
            fs::remove_file(&path).map_err(|e| StoreError::io("removing WAL segment", &path, e))?;
            removed = true;
        }
    }
    if removed {
        sync_dir(dir)?;
    }
    Ok(())
}

/// The segments under `dir`, in order.
fn list_segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>, StoreError> {
    let entries = fs::read_dir(dir).map_err(|e| StoreError::io("listing WAL directory", dir, e))?;
    let mut segments = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| StoreError::io("listing WAL directory", dir, e))?;
        let name = entry.file_name();
        let Some(number) = name
            .to_str()
            .and_then(|n| n.strip_suffix(".wal"))
            .and_then(|n| n.parse::<u64>().ok())
        else {
            continue;
        };
        segments.push((number, entry.path()));
    }
    segments.sort();
    Ok(segments)
}

/// Feeds each intact record of the segment at `path` to `replay`. A bad
/// record ends the segment; if it is the `last` one it is truncated there.
fn replay_segment(
    path: &Path,
    last: bool,
    replay: &mut impl FnMut(&[u8]),
) -> Result<(), StoreError> {
    let mut bytes = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(|e| StoreError::io("reading WAL segment", path, e))?;
    let mut pos = MAGIC.len();
    let mut problem = None;
    if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
        problem = Some("missing or damaged segment header".to_owned());
        pos = 0;
    } else {
        while pos < bytes.len() {
            match record_at(&bytes, pos) {
                Ok(payload) => {
                    replay(payload);
                    pos += FRAME_HEADER + payload.len();
                }
                Err(why) => {
                    problem = Some(why);
                    break;
                }
            }
        }
    }
    let Some(why) = problem else { return Ok(()) };
    let dropped = bytes.len() - pos;
    if last {
        tracing::warn!(
            "WAL segment {}: {why} at byte {pos}; truncating the {dropped} bytes from there (a write \
             torn by a crash is never acknowledged)",
            path.display()
        );
        OpenOptions::new()
            .write(true)
            .open(path)
            .and_then(|f| {
                f.set_len(pos as u64)?;
                f.sync_all()
            })
            .map_err(|e| StoreError::io("truncating WAL segment", path, e))?;
    } else {
        tracing::warn!(
            "WAL segment {}: {why} at byte {pos}; skipping the {dropped} bytes from there",
            path.display()
        );
    }
    Ok(())
}

/// The payload of the record framed at `pos`, or why it is not intact.
fn record_at(bytes: &[u8], pos: usize) -> Result<&[u8], String> {
    let header = bytes
        .get(pos..pos + FRAME_HEADER)
        .ok_or_else(|| "torn record header".to_owned())?;
    let mut len = [0u8; 4];
    let mut crc = [0u8; 4];
    len.copy_from_slice(&header[..4]);
    crc.copy_from_slice(&header[4..]);
    let len = u32::from_le_bytes(len) as usize;
    if len > MAX_RECORD_BYTES {
        return Err(format!("implausible record length {len}"));
    }
    let payload = bytes
        .get(pos + FRAME_HEADER..pos + FRAME_HEADER + len)
        .ok_or_else(|| "torn record".to_owned())?;
    if crc32c::crc32c(payload) != u32::from_le_bytes(crc) {
        return Err("checksum mismatch".to_owned());
    }
    Ok(payload)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    impl Wal {
        fn append(&self, payload: Vec<u8>) -> Result<(), StoreError> {
            self.submit(payload, None)?.wait()
        }
    }

    fn open(dir: &Path, seen: &mut Vec<Vec<u8>>) -> (Wal, Arc<Mutex<Vec<Vec<u8>>>>) {
        let durable = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&durable);
        let wal = Wal::open(
            dir,
            WalConfig::default(),
            0,
            |p| seen.push(p.to_vec()),
            Box::new(move |p, _| sink.lock().unwrap().push(p.to_vec())),
            Box::new(|| {}),
        )
        .unwrap();
        (wal, durable)
    }

    #[test]
    fn records_replay_in_order_after_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut seen = Vec::new();
        let (wal, durable) = open(dir.path(), &mut seen);
        assert!(seen.is_empty());
        for i in 0..100u32 {
            wal.append(i.to_le_bytes().to_vec()).unwrap();
        }
        wal.close();
        assert_eq!(durable.lock().unwrap().len(), 100);
        let (_wal, _) = open(dir.path(), &mut seen);
        let expect: Vec<Vec<u8>> = (0..100u32).map(|i| i.to_le_bytes().to_vec()).collect();
        assert_eq!(seen, expect);
    }

    #[test]
    fn torn_and_corrupt_tails_are_truncated_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        let mut seen = Vec::new();
        let (wal, _) = open(dir.path(), &mut seen);
        wal.append(b"one".to_vec()).unwrap();
        wal.append(b"two".to_vec()).unwrap();
        wal.close();
        let seg = segment_path(dir.path(), 1);
        let full = fs::read(&seg).unwrap();

        // Torn: half of the last record.
        fs::write(&seg, &full[..full.len() - 2]).unwrap();
        let (wal, _) = open(dir.path(), &mut seen);
        drop(wal);
        assert_eq!(seen, [b"one".to_vec()]);
        assert_eq!(fs::read(&seg).unwrap().len(), full.len() - 3 - FRAME_HEADER);

        // Corrupt: a flipped bit in the payload of the last record.
        seen.clear();
        let mut bad = full.clone();
        let n = bad.len();
        bad[n - 1] ^= 1;
        fs::write(&seg, &bad).unwrap();
        for entry in fs::read_dir(dir.path()).unwrap() {
            let p = entry.unwrap().path();
            if p != seg {
                fs::remove_file(p).unwrap();
            }
        }
        let (wal, _) = open(dir.path(), &mut seen);
        drop(wal);
        assert_eq!(seen, [b"one".to_vec()]);
    }

    #[test]
    fn concurrent_writers_all_land_once_each() {
        let dir = tempfile::tempdir().unwrap();
        let mut seen = Vec::new();
        let (wal, durable) = open(dir.path(), &mut seen);
        let wal = Arc::new(wal);
        let threads: Vec<_> = (0..4u8)
            .map(|t| {
                let wal = Arc::clone(&wal);
                std::thread::spawn(move || {
                    for i in 0..50u8 {
                        wal.append(vec![t, i]).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let mut got = durable.lock().unwrap().clone();
        got.sort();
        assert_eq!(got.len(), 200);
        got.dedup();
        assert_eq!(got.len(), 200);
    }

    #[test]
    fn segments_rotate_and_replay_across_them() {
        let dir = tempfile::tempdir().unwrap();
        let config = WalConfig {
            segment_bytes: 64,
            ..WalConfig::default()
        };
        let wal = Wal::open(
            dir.path(),
            config,
            0,
            |_| {},
            Box::new(|_, _| {}),
            Box::new(|| {}),
        )
        .unwrap();
        for i in 0..20u8 {
            wal.append(vec![i; 10]).unwrap();
        }
        wal.close();
        assert!(list_segments(dir.path()).unwrap().len() > 3);
        let mut seen = Vec::new();
        let wal = Wal::open(
            dir.path(),
            config,
            0,
            |p| seen.push(p[0]),
            Box::new(|_, _| {}),
            Box::new(|| {}),
        )
        .unwrap();
        drop(wal);
        assert_eq!(seen, (0..20u8).collect::<Vec<_>>());
    }

    #[test]
    fn rotation_splits_the_log_where_asked_and_persisted_segments_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let events = Arc::new(Mutex::new(Vec::<String>::new()));
        let (e1, e2) = (Arc::clone(&events), Arc::clone(&events));
        let wal = Wal::open(
            dir.path(),
            WalConfig::default(),
            0,
            |_| {},
            Box::new(move |p, _| {
                e1.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(p).into_owned())
            }),
            Box::new(move || e2.lock().unwrap().push("rotate".into())),
        )
        .unwrap();
        wal.append(b"a".to_vec()).unwrap();
        wal.append(b"b".to_vec()).unwrap();
        let closed = wal.rotate().unwrap();
        wal.append(b"c".to_vec()).unwrap();
        wal.close();
        assert_eq!(closed, 1);
        assert_eq!(*events.lock().unwrap(), ["a", "b", "rotate", "c"]);

        // Segments up to `closed` are persisted elsewhere: deleted, not replayed.
        let mut seen = Vec::new();
        let wal = Wal::open(
            dir.path(),
            WalConfig::default(),
            closed,
            |p| seen.push(p.to_vec()),
            Box::new(|_, _| {}),
            Box::new(|| {}),
        )
        .unwrap();
        wal.close();
        assert_eq!(seen, [b"c".to_vec()]);
        assert!(!segment_path(dir.path(), 1).exists());
    }
}
