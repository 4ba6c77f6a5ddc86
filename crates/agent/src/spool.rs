//! A disk spool: each output's queue of line-protocol lines, kept in files
//! so that points survive server outages and agent restarts (`SIGKILL`
//! included) and are delivered in the order they were collected.
//!
//! # On disk
//!
//! A spool directory holds segments named by a 20-digit sequence number,
//! `00000000000000000001.spool`, `00000000000000000002.spool`, …, appended
//! to in that order, and a `position` file.
//!
//! * A segment is a run of records, one per line:
//!   `[length u32 LE][crc32c of the bytes u32 LE][the line's bytes, '\n' included]`.
//!   The newest segment is written to; when it reaches the segment size
//!   (4 MiB by default) it is `fsync`ed and a new one is started.
//! * `position` says where the oldest line not yet acknowledged starts:
//!   two checksummed slots of `[generation][segment][byte offset]`, the
//!   older of which every [`Spool::ack`] overwrites in place (see
//!   `position.rs`). Segments wholly before it are deleted.
//!
//! Appends are written to the operating system before [`Spool::append`]
//! returns but not `fsync`ed each time: a killed process loses nothing
//! (the page cache survives it), a power cut may lose the last moments
//! (segments are `fsync`ed when rolled and when the spool is dropped).
//!
//! # Recovery
//!
//! [`Spool::open`] reads every segment and checks every record. At the
//! first record that is torn (shorter than its header says) or corrupt
//! (length zero or its checksum wrong) the segment is truncated there, the
//! file and offset are logged, and the lines that followed (estimated by
//! their line breaks) are counted as dropped; the complete records before
//! it are kept. A missing or corrupt `position` file means "from the
//! oldest segment": a lost acknowledgement re-delivers a batch, it never
//! loses one. Corruption found later, while reading, is handled the same
//! way. Nothing read from disk is trusted enough to panic on.
//!
//! # Bounded
//!
//! The spool holds at most `limit_bytes` (or one segment's worth of
//! records if the limit is smaller than that; [`Spool::open`] makes
//! segments an eighth of the limit, 64 KiB to 4 MiB). When an append would exceed it, the oldest
//! segments are deleted — acknowledged or not — and their unsent lines are
//! counted in [`SpoolStats::dropped`] and logged.
//!
//! ```
//! let dir = tempfile::tempdir().unwrap();
//! let spool = agent::spool::Spool::open(dir.path(), 1 << 20).unwrap();
//! spool.append(b"cpu usage=1 1\ncpu usage=2 2\n").unwrap();
//! let batch = spool.peek(10).unwrap();
//! assert_eq!(batch.lines, 2);
//! assert_eq!(batch.bytes, b"cpu usage=1 1\ncpu usage=2 2\n");
//! spool.ack(batch.lines).unwrap();
//! assert_eq!(spool.peek(10).unwrap().lines, 0);
//! ```

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

mod position;

use position::PositionFile;

/// Default size at which a segment is closed and a new one started.
pub const DEFAULT_SEGMENT_BYTES: u64 = 4 << 20;

/// Bytes of a record's header: length and checksum.
const HEADER: u64 = 8;
const SUFFIX: &str = ".spool";
const LOCK: &str = "lock";

/// Why a spool operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    /// A spool file could not be read or written.
    #[error("spool {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },
    /// Another process has the spool directory open.
    #[error("spool {dir} is in use by another process (lock held on {dir}/lock)")]
    Locked {
        /// The spool directory.
        dir: PathBuf,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> SpoolError + '_ {
    move |source| SpoolError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The oldest unacknowledged lines, as [`Spool::peek`] returns them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Batch {
    /// The lines, concatenated, each ending in `\n`.
    pub bytes: Vec<u8>,
    /// How many lines `bytes` holds.
    pub lines: usize,
}

impl Batch {
    /// Whether the batch holds no lines.
    pub fn is_empty(&self) -> bool {
        self.lines == 0
    }
}

/// A spool's size and what it has lost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SpoolStats {
    /// Bytes of records in the segments on disk (acknowledged ones not yet
    /// deleted included).
    pub bytes: u64,
    /// Lines appended and not yet acknowledged.
    pub lines: u64,
    /// Lines dropped since the spool was opened: deleted unsent to stay
    /// under the limit, or lost to corruption.
    pub dropped: u64,
    /// Segment files on disk.
    pub segments: usize,
}

/// An output's disk queue of lines; see the [module docs](self). Shared
/// between the collector that appends and the delivery loop that peeks and
/// acknowledges (`Arc<Spool>`); every method takes an internal lock.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Segment {
    seq: u64,
    path: PathBuf,
    /// Bytes of complete records.
    bytes: u64,
    /// Records in it.
    lines: u64,
    /// Logical index (this process's count) of its first line.
    first_index: u64,
}

/// A place in the spool: a segment, a byte offset in it, and the logical
/// index of the line that starts there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pos {
    seq: u64,
    offset: u64,
    index: u64,
}

#[derive(Debug)]
struct Inner {
    limit_bytes: u64,
    segment_bytes: u64,
    /// Oldest first; never empty: the last one is written to.
    segments: VecDeque<Segment>,
    /// The newest segment, open for appending.
    writer: File,
    /// The oldest unacknowledged line.
    read: Pos,
    /// The last peek since the last ack: its first line's index and where
    /// each of its lines ends, so an ack need not read the lines again.
    peeked: Option<(u64, Vec<(u64, u64)>)>,
    dropped: u64,
    /// Where `read` is recorded on disk.
    position: PositionFile,
    /// Held for the spool's lifetime: an exclusive `flock`.
    _lock: File,
}

impl Spool {
    /// Opens (creating if needed) the spool in `dir`, holding at most
    /// `limit_bytes`, with segments of an eighth of the limit, between
    /// 64 KiB and [`DEFAULT_SEGMENT_BYTES`].
    pub fn open(dir: &Path, limit_bytes: u64) -> Result<Spool, SpoolError> {
        // The limit drops whole segments: at least eight per limit, so that
        // a full spool loses its oldest eighth, not most of itself.
        let segment = (limit_bytes / 8).clamp(64 << 10, DEFAULT_SEGMENT_BYTES);
        Self::open_with_segment_size(dir, limit_bytes, segment)
    }

    /// [`Spool::open`] with segments rolled at `segment_bytes` (at least
    /// one record each).
    pub fn open_with_segment_size(
        dir: &Path,
        limit_bytes: u64,
        segment_bytes: u64,
    ) -> Result<Spool, SpoolError> {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let lock_path = dir.join(LOCK);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_err(&lock_path))?;
        // A process forked by this one keeps a just-closed spool's lock
        // until it execs: wait a moment before calling the spool taken.
        let mut tries = 0;
        loop {
            match rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => break,
                Err(e) if e == rustix::io::Errno::WOULDBLOCK && tries < 100 => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                Err(e) if e == rustix::io::Errno::WOULDBLOCK => {
                    return Err(SpoolError::Locked {
                        dir: dir.to_owned(),
                    })
                }
                Err(e) => {
                    return Err(SpoolError::Io {
                        path: lock_path,
                        source: e.into(),
                    })
                }
            }
        }

        let mut seqs = Vec::new();
        for entry in fs::read_dir(dir).map_err(io_err(dir))? {
            let entry = entry.map_err(io_err(dir))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if let Some(seq) = name
                .strip_suffix(SUFFIX)
                .and_then(|s| s.parse::<u64>().ok())
            {
                seqs.push(seq);
            }
        }
        seqs.sort_unstable();

        let (position_file, position) = PositionFile::read(dir);
        let mut dropped = 0;
        let mut segments = VecDeque::new();
        let mut next_index = 0;
        let mut first_ends = None;
        for seq in seqs {
            let path = segment_path(dir, seq);
            if let Some((pseq, _)) = position {
                if seq < pseq {
                    // Wholly acknowledged; its deletion was interrupted.
                    fs::remove_file(&path).map_err(io_err(&path))?;
                    continue;
                }
            }
            let scan = scan_segment(&path)?;
            dropped += scan.lost_lines;
            let lines = scan.ends.len() as u64;
            if segments.is_empty() {
                first_ends = Some(scan.ends);
            }
            segments.push_back(Segment {
                seq,
                path,
                bytes: scan.valid_bytes,
                lines,
                first_index: next_index,
            });
            next_index += lines;
        }

        // Where reading starts: the position, snapped to a record boundary
        // at or before it, or the oldest segment's start.
        let read = match (position, segments.front()) {
            (_, None) => None,
            (Some((pseq, poff)), Some(first)) if first.seq == pseq => {
                let ends = first_ends.unwrap_or_default();
                let before = ends.iter().take_while(|&&end| end <= poff).count();
                let offset = before
                    .checked_sub(1)
                    .and_then(|i| ends.get(i))
                    .copied()
                    .unwrap_or(0);
                Some(Pos {
                    seq: pseq,
                    offset,
                    index: first.first_index + before as u64,
                })
            }
            (_, Some(first)) => Some(Pos {
                seq: first.seq,
                offset: 0,
                index: first.first_index,
            }),
        };

        let (writer, read) = match (segments.back(), read) {
            (Some(last), Some(read)) => (open_append(&last.path)?, read),
            _ => {
                let seq = position.map_or(1, |(pseq, _)| pseq + 1);
                let path = segment_path(dir, seq);
                let writer = create_segment(dir, &path)?;
                segments.push_back(Segment {
                    seq,
                    path,
                    bytes: 0,
                    lines: 0,
                    first_index: 0,
                });
                (
                    writer,
                    Pos {
                        seq,
                        offset: 0,
                        index: 0,
                    },
                )
            }
        };

        let mut inner = Inner {
            limit_bytes,
            segment_bytes: segment_bytes.max(1),
            segments,
            writer,
            read,
            peeked: None,
            dropped,
            position: position_file,
            _lock: lock,
        };
        inner.normalize()?;
        Ok(Spool {
            dir: dir.to_owned(),
            inner: Mutex::new(inner),
        })
    }

    /// The spool's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves the state as consistent as
        // an I/O error would: carry on.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends one or more lines of line protocol, each ending in `\n` (a
    /// last line without one gets one; empty lines are skipped), one record
    /// per line. The records are written to the operating system before
    /// this returns.
    pub fn append(&self, lines: &[u8]) -> Result<(), SpoolError> {
        let records: Vec<&[u8]> = split_lines(lines).collect();
        if records.is_empty() {
            return Ok(());
        }
        let size: u64 = records
            .iter()
            .map(|r| HEADER + r.len() as u64 + u64::from(!r.ends_with(b"\n")))
            .sum();
        let mut inner = self.lock();
        let mut buf = Vec::with_capacity(size as usize);
        let mut n = 0u64;
        for record in records {
            let missing_newline = !record.ends_with(b"\n");
            let len = record.len() + usize::from(missing_newline);
            let written = inner.current().bytes + buf.len() as u64;
            if written > 0 && written + HEADER + len as u64 > inner.segment_bytes {
                inner.make_room(&self.dir, buf.len() as u64)?;
                inner.write_records(&buf, n)?;
                buf.clear();
                n = 0;
                inner.roll(&self.dir)?;
            }
            let crc = if missing_newline {
                crc32c::crc32c_append(crc32c::crc32c(record), b"\n")
            } else {
                crc32c::crc32c(record)
            };
            buf.extend_from_slice(&(len as u32).to_le_bytes());
            buf.extend_from_slice(&crc.to_le_bytes());
            buf.extend_from_slice(record);
            if missing_newline {
                buf.push(b'\n');
            }
            n += 1;
        }
        inner.make_room(&self.dir, buf.len() as u64)?;
        inner.write_records(&buf, n)
    }

    /// The oldest lines not yet acknowledged, at most `max_lines` of them,
    /// concatenated; an empty batch when there are none. Peeking again
    /// without an ack returns the same lines.
    pub fn peek(&self, max_lines: usize) -> Result<Batch, SpoolError> {
        let mut inner = self.lock();
        let read = inner.read;
        let (bytes, ends) = inner.read_from(read, max_lines, true)?;
        let lines = ends.len();
        inner.peeked = Some((inner.read.index, ends));
        Ok(Batch { bytes, lines })
    }

    /// Marks `lines` lines delivered, counted from the start of the last
    /// [`Spool::peek`] (or from the oldest unacknowledged line if there was
    /// no peek since the last ack): they will not be returned again, here
    /// or after a restart. Lines dropped by the limit in between are not
    /// acknowledged twice.
    pub fn ack(&self, lines: usize) -> Result<(), SpoolError> {
        let mut inner = self.lock();
        let peeked = inner.peeked.take();
        if lines == 0 {
            return Ok(());
        }
        let start = peeked
            .as_ref()
            .map_or(inner.read.index, |(start, _)| *start);
        let target = (start + lines as u64).min(inner.end_index());
        if target <= inner.read.index {
            return Ok(());
        }
        let end = match &peeked {
            Some((start, ends))
                if inner.read.index >= *start && target - start <= ends.len() as u64 =>
            {
                ends[(target - start - 1) as usize]
            }
            _ => {
                let want = (target - inner.read.index) as usize;
                let read = inner.read;
                let (_, ends) = inner.read_from(read, want, false)?;
                match ends.last() {
                    Some(end) => *end,
                    None => return Ok(()),
                }
            }
        };
        inner.read = Pos {
            seq: end.0,
            offset: end.1,
            index: target,
        };
        inner.position.write(end.0, end.1)?;
        inner.normalize()
    }

    /// Sizes and counts.
    pub fn stats(&self) -> SpoolStats {
        let inner = self.lock();
        SpoolStats {
            bytes: inner.segments.iter().map(|s| s.bytes).sum(),
            lines: inner.end_index() - inner.read.index,
            dropped: inner.dropped,
            segments: inner.segments.len(),
        }
    }

    /// `fsync`s the segment being written (also done when the spool is
    /// dropped).
    pub fn sync(&self) -> Result<(), SpoolError> {
        let inner = self.lock();
        inner
            .writer
            .sync_data()
            .map_err(io_err(&inner.current().path))
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        let inner = self.lock();
        if let Err(e) = inner.writer.sync_data() {
            tracing::warn!(spool = %self.dir.display(), "syncing the spool on close: {e}");
        }
    }
}

impl Inner {
    fn current(&self) -> &Segment {
        // `segments` is never empty (see the field's doc); the front is the
        // fallback only to avoid a panic path.
        self.segments
            .back()
            .or(self.segments.front())
            .unwrap_or_else(|| unreachable!("a spool always has a segment"))
    }

    fn end_index(&self) -> u64 {
        let last = self.current();
        last.first_index + last.lines
    }

    fn write_records(&mut self, buf: &[u8], n: u64) -> Result<(), SpoolError> {
        if buf.is_empty() {
            return Ok(());
        }
        let result = self.writer.write_all(buf);
        let last = self
            .segments
            .back_mut()
            .unwrap_or_else(|| unreachable!("a spool always has a segment"));
        if let Err(e) = result {
            // Take back a partly written record so the segment stays whole.
            let _ = self.writer.set_len(last.bytes);
            return Err(SpoolError::Io {
                path: last.path.clone(),
                source: e,
            });
        }
        last.bytes += buf.len() as u64;
        last.lines += n;
        Ok(())
    }

    /// Closes the current segment (`fsync`ed) and starts the next.
    fn roll(&mut self, dir: &Path) -> Result<(), SpoolError> {
        let last = self.current();
        self.writer.sync_data().map_err(io_err(&last.path))?;
        let seq = last.seq + 1;
        let first_index = last.first_index + last.lines;
        let path = segment_path(dir, seq);
        self.writer = create_segment(dir, &path)?;
        self.segments.push_back(Segment {
            seq,
            path,
            bytes: 0,
            lines: 0,
            first_index,
        });
        self.normalize()
    }

    /// Moves the read position off the end of a finished segment, deleting
    /// segments wholly acknowledged.
    fn normalize(&mut self) -> Result<(), SpoolError> {
        while self.segments.len() > 1 {
            let Some(front) = self.segments.front() else {
                break;
            };
            let done = self.read.seq > front.seq
                || (self.read.seq == front.seq && self.read.offset >= front.bytes);
            if !done {
                break;
            }
            if let Some(front) = self.segments.pop_front() {
                remove(&front.path)?;
            }
            if let Some(next) = self.segments.front() {
                if self.read.seq < next.seq {
                    self.read = Pos {
                        seq: next.seq,
                        offset: 0,
                        index: next.first_index,
                    };
                }
            }
        }
        Ok(())
    }

    /// Deletes the oldest segments until `incoming` more bytes fit.
    fn make_room(&mut self, dir: &Path, incoming: u64) -> Result<(), SpoolError> {
        let mut dropped_lines = 0u64;
        loop {
            let total: u64 = self.segments.iter().map(|s| s.bytes).sum();
            if total + incoming <= self.limit_bytes || total == 0 {
                break;
            }
            if self.segments.len() == 1 {
                // Only the segment being written: start afresh after it.
                self.roll(dir)?;
                continue;
            }
            let Some(front) = self.segments.pop_front() else {
                break;
            };
            remove(&front.path)?;
            let front_end = front.first_index + front.lines;
            dropped_lines += front_end.saturating_sub(self.read.index.max(front.first_index));
            if self.read.seq <= front.seq {
                if let Some(next) = self.segments.front() {
                    self.read = Pos {
                        seq: next.seq,
                        offset: 0,
                        index: next.first_index,
                    };
                }
            }
        }
        if dropped_lines > 0 {
            self.dropped += dropped_lines;
            tracing::warn!(
                spool = %dir.display(),
                limit_bytes = self.limit_bytes,
                "spool full: dropped the {dropped_lines} oldest unsent lines"
            );
        }
        Ok(())
    }

    /// Reads up to `max` records from `from`, across segments; returns
    /// their bytes (if `collect`) and where each ends.
    #[allow(clippy::type_complexity)]
    fn read_from(
        &mut self,
        from: Pos,
        max: usize,
        collect: bool,
    ) -> Result<(Vec<u8>, Vec<(u64, u64)>), SpoolError> {
        let mut bytes = Vec::new();
        let mut ends = Vec::new();
        let mut i = self.segments.iter().position(|s| s.seq >= from.seq);
        let mut offset = from.offset;
        while let Some(si) = i {
            if ends.len() >= max {
                break;
            }
            let Some(seg) = self.segments.get(si) else {
                break;
            };
            if seg.seq != from.seq {
                offset = 0;
            }
            if offset < seg.bytes {
                let (seq, path, limit) = (seg.seq, seg.path.clone(), seg.bytes);
                let file = match File::open(&path) {
                    Ok(file) => file,
                    // Deleted under us (a cleaner, an operator): its lines
                    // are gone; count them and go on with the next segment
                    // rather than stop delivering.
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {
                        self.lose(si);
                        i = Some(si + 1).filter(|&n| n < self.segments.len());
                        continue;
                    }
                    Err(e) => return Err(io_err(&path)(e)),
                };
                let mut reader = BufReader::new(file);
                reader
                    .seek(SeekFrom::Start(offset))
                    .map_err(io_err(&path))?;
                while offset < limit && ends.len() < max {
                    match read_record(&mut reader, limit - offset) {
                        Ok(record) => {
                            offset += HEADER + record.len() as u64;
                            if collect {
                                bytes.extend_from_slice(&record);
                            }
                            ends.push((seq, offset));
                        }
                        // Shorter than we wrote it (truncated under us):
                        // as good as a torn tail.
                        Err(RecordError::Io(e)) if e.kind() == io::ErrorKind::UnexpectedEof => {
                            self.cut(si, offset, "the file ends early")?;
                            break;
                        }
                        Err(RecordError::Io(e)) => return Err(io_err(&path)(e)),
                        Err(RecordError::Corrupt(why)) => {
                            self.cut(si, offset, &why)?;
                            break;
                        }
                    }
                }
            }
            i = Some(si + 1).filter(|&n| n < self.segments.len());
        }
        Ok((bytes, ends))
    }

    /// Segment `si`'s file has disappeared: count its unread lines as
    /// dropped and forget its contents (appends to the newest segment go
    /// on through the open descriptor until it rolls).
    fn lose(&mut self, si: usize) {
        let Some(seg) = self.segments.get_mut(si) else {
            return;
        };
        let lost = seg.lines;
        tracing::warn!(
            file = %seg.path.display(),
            "spool: segment file missing; {lost} lines lost"
        );
        seg.bytes = 0;
        seg.lines = 0;
        self.dropped += lost;
        for later in self.segments.iter_mut().skip(si + 1) {
            later.first_index -= lost;
        }
    }

    /// A corrupt record was found at `offset` of segment `si` while
    /// reading: drop the rest of the segment.
    fn cut(&mut self, si: usize, offset: u64, why: &str) -> Result<(), SpoolError> {
        let Some(seg) = self.segments.get_mut(si) else {
            return Ok(());
        };
        // Lines before `offset` in this segment: count them.
        let scan = scan_prefix(&seg.path, offset)?;
        let kept = scan as u64;
        let lost = seg.lines.saturating_sub(kept);
        tracing::warn!(
            file = %seg.path.display(),
            offset,
            "spool: corrupt record ({why}); dropping the rest of the segment ({lost} lines)"
        );
        let file = OpenOptions::new()
            .write(true)
            .open(&seg.path)
            .map_err(io_err(&seg.path))?;
        file.set_len(offset).map_err(io_err(&seg.path))?;
        seg.bytes = offset;
        seg.lines = kept;
        self.dropped += lost;
        // Later segments' logical indexes shift down by what was lost.
        for later in self.segments.iter_mut().skip(si + 1) {
            later.first_index -= lost;
        }
        Ok(())
    }
}

enum RecordError {
    Io(io::Error),
    Corrupt(String),
}

/// Reads one record with at most `remaining` bytes left in the segment.
fn read_record(r: &mut impl Read, remaining: u64) -> Result<Vec<u8>, RecordError> {
    if remaining < HEADER {
        return Err(RecordError::Corrupt(format!(
            "torn header: {remaining} bytes left"
        )));
    }
    let mut header = [0u8; HEADER as usize];
    r.read_exact(&mut header).map_err(RecordError::Io)?;
    let [l0, l1, l2, l3, c0, c1, c2, c3] = header;
    let len = u32::from_le_bytes([l0, l1, l2, l3]);
    let crc = u32::from_le_bytes([c0, c1, c2, c3]);
    if len == 0 {
        return Err(RecordError::Corrupt("zero length".into()));
    }
    if u64::from(len) > remaining - HEADER {
        return Err(RecordError::Corrupt(format!(
            "torn record: length {len}, {} bytes left",
            remaining - HEADER
        )));
    }
    let mut data = vec![0u8; len as usize];
    r.read_exact(&mut data).map_err(RecordError::Io)?;
    if crc32c::crc32c(&data) != crc {
        return Err(RecordError::Corrupt("checksum mismatch".into()));
    }
    Ok(data)
}

struct Scan {
    valid_bytes: u64,
    /// Where each complete record ends.
    ends: Vec<u64>,
    lost_lines: u64,
}

/// Reads a whole segment, truncating it at the first bad record.
fn scan_segment(path: &Path) -> Result<Scan, SpoolError> {
    let file = File::open(path).map_err(io_err(path))?;
    let size = file.metadata().map_err(io_err(path))?.len();
    let mut reader = BufReader::new(file);
    let mut offset = 0u64;
    let mut ends = Vec::new();
    while offset < size {
        match read_record(&mut reader, size - offset) {
            Ok(record) => {
                offset += HEADER + record.len() as u64;
                ends.push(offset);
            }
            Err(RecordError::Io(e)) => return Err(io_err(path)(e)),
            Err(RecordError::Corrupt(why)) => {
                // Estimate what was lost by the line breaks after the cut.
                let mut rest = Vec::new();
                let mut f = File::open(path).map_err(io_err(path))?;
                f.seek(SeekFrom::Start(offset)).map_err(io_err(path))?;
                f.read_to_end(&mut rest).map_err(io_err(path))?;
                let lost = rest.iter().filter(|&&b| b == b'\n').count().max(1) as u64;
                tracing::warn!(
                    file = %path.display(),
                    offset,
                    size,
                    "spool: {why} at offset {offset}; truncating the segment there \
                     (about {lost} lines lost), keeping the {} complete records before it",
                    ends.len()
                );
                let f = OpenOptions::new()
                    .write(true)
                    .open(path)
                    .map_err(io_err(path))?;
                f.set_len(offset).map_err(io_err(path))?;
                f.sync_data().map_err(io_err(path))?;
                return Ok(Scan {
                    valid_bytes: offset,
                    ends,
                    lost_lines: lost,
                });
            }
        }
    }
    Ok(Scan {
        valid_bytes: offset,
        ends,
        lost_lines: 0,
    })
}

/// How many complete records lie before `offset` (a record boundary).
fn scan_prefix(path: &Path, offset: u64) -> Result<usize, SpoolError> {
    let file = File::open(path).map_err(io_err(path))?;
    let mut reader = BufReader::new(file);
    let mut at = 0u64;
    let mut n = 0;
    while at < offset {
        match read_record(&mut reader, offset - at) {
            Ok(record) => {
                at += HEADER + record.len() as u64;
                n += 1;
            }
            Err(RecordError::Io(e)) => return Err(io_err(path)(e)),
            Err(RecordError::Corrupt(_)) => break,
        }
    }
    Ok(n)
}

/// The lines of `input`, each with its `\n` (the last may lack one);
/// empty lines skipped.
fn split_lines(input: &[u8]) -> impl Iterator<Item = &[u8]> {
    input
        .split_inclusive(|&b| b == b'\n')
        .filter(|l| !matches!(*l, b"\n" | b"\r\n"))
}

fn segment_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:020}{SUFFIX}"))
}

fn open_append(path: &Path) -> Result<File, SpoolError> {
    OpenOptions::new()
        .append(true)
        .open(path)
        .map_err(io_err(path))
}

fn create_segment(dir: &Path, path: &Path) -> Result<File, SpoolError> {
    let file = OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .map_err(io_err(path))?;
    // Make the new name durable.
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))?;
    Ok(file)
}

fn remove(path: &Path) -> Result<(), SpoolError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err(path)(e)),
    }
}
