//! The spool's `position` file: where the oldest line not yet
//! acknowledged starts.
//!
//! Two 32-byte slots, each `[generation u64 LE][segment u64 LE][byte offset
//! u64 LE][crc32c of those 24 bytes u32 LE][0u32]`; the valid slot with the
//! higher generation is the position. An acknowledgement overwrites the
//! older slot in place, through the file kept open: one `pwrite`, where
//! replacing the file (write beside, rename over) cost four system calls
//! and a directory update on every batch delivered. A slot torn by a
//! power cut fails its checksum and the other slot, one acknowledgement
//! older, is used: a batch is delivered twice, none is lost.
//!
//! The file written by earlier versions, a single 20-byte
//! `[segment][offset][crc32c of 16 bytes]`, is still read; the first
//! acknowledgement replaces it, by rename, with the two-slot file.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::{io_err, SpoolError};

const NAME: &str = "position";
const TMP: &str = "position.tmp";
const SLOT: usize = 32;

/// The `position` file of one spool directory.
#[derive(Debug)]
pub(super) struct PositionFile {
    path: PathBuf,
    /// Open for writing once this process has written the two-slot form.
    file: Option<File>,
    /// The generation of the newest valid slot (0: none yet).
    generation: u64,
}

/// One slot's bytes for a position.
fn slot(generation: u64, seq: u64, offset: u64) -> [u8; SLOT] {
    let mut data = [0u8; SLOT];
    data[..8].copy_from_slice(&generation.to_le_bytes());
    data[8..16].copy_from_slice(&seq.to_le_bytes());
    data[16..24].copy_from_slice(&offset.to_le_bytes());
    let crc = crc32c::crc32c(&data[..24]);
    data[24..28].copy_from_slice(&crc.to_le_bytes());
    data
}

fn u64_at(data: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(data.get(at..at + 8)?.try_into().ok()?))
}

fn u32_at(data: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(data.get(at..at + 4)?.try_into().ok()?))
}

/// `(generation, segment, offset)` of a whole slot, or `None`.
fn parse_slot(data: &[u8]) -> Option<(u64, u64, u64)> {
    let generation = u64_at(data, 0)?;
    (generation > 0 && u32_at(data, 24)? == crc32c::crc32c(data.get(..24)?)).then_some((
        generation,
        u64_at(data, 8)?,
        u64_at(data, 16)?,
    ))
}

/// `(generation, segment, offset)` from the file's bytes, in either form.
fn parse(data: &[u8]) -> Option<(u64, u64, u64)> {
    match data.len() {
        20 => (u32_at(data, 16)? == crc32c::crc32c(&data[..16])).then_some((
            0,
            u64_at(data, 0)?,
            u64_at(data, 8)?,
        )),
        len if len == 2 * SLOT => {
            let (a, b) = data.split_at(SLOT);
            match (parse_slot(a), parse_slot(b)) {
                (Some(a), Some(b)) => Some(if a.0 >= b.0 { a } else { b }),
                (a, b) => a.or(b),
            }
        }
        _ => None,
    }
}

impl PositionFile {
    /// Reads the position in `dir`: the file and `(segment, offset)` if it
    /// is there and whole. A missing or corrupt file gives `None` (read
    /// from the oldest segment), a corrupt one with a warning.
    pub(super) fn read(dir: &Path) -> (PositionFile, Option<(u64, u64)>) {
        let path = dir.join(NAME);
        let parsed = match fs::read(&path) {
            Ok(data) => {
                let parsed = parse(&data);
                if parsed.is_none() {
                    tracing::warn!(file = %path.display(), "spool: the position file is corrupt; starting from the oldest segment (some lines may be sent twice)");
                }
                parsed
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => {
                tracing::warn!(file = %path.display(), "spool: reading the position: {e}; starting from the oldest segment");
                None
            }
        };
        let file = PositionFile {
            path,
            file: None,
            generation: parsed.map_or(0, |(g, _, _)| g),
        };
        (file, parsed.map(|(_, seq, offset)| (seq, offset)))
    }

    /// Records `(seq, offset)` as the position.
    pub(super) fn write(&mut self, seq: u64, offset: u64) -> Result<(), SpoolError> {
        let generation = self.generation + 1;
        let data = slot(generation, seq, offset);
        let at = (generation % 2) as usize * SLOT;
        match &self.file {
            Some(file) => file
                .write_all_at(&data, at as u64)
                .map_err(io_err(&self.path))?,
            None => {
                // The first write of this process: the whole two-slot file,
                // replacing whatever was there at once.
                let mut whole = [0u8; 2 * SLOT];
                whole[at..at + SLOT].copy_from_slice(&data);
                let tmp = self.path.with_file_name(TMP);
                fs::write(&tmp, whole).map_err(io_err(&tmp))?;
                fs::rename(&tmp, &self.path).map_err(io_err(&self.path))?;
                let file = OpenOptions::new()
                    .write(true)
                    .open(&self.path)
                    .map_err(io_err(&self.path))?;
                self.file = Some(file);
            }
        }
        self.generation = generation;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_whole_slot_is_the_position() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut file, none) = PositionFile::read(dir.path());
        assert_eq!(none, None);
        for (seq, offset) in [(1, 100), (1, 200), (2, 0)] {
            file.write(seq, offset).expect("write");
            assert_eq!(PositionFile::read(dir.path()).1, Some((seq, offset)));
        }
        // A torn newest slot: the one before it stands.
        let path = dir.path().join(NAME);
        let mut data = fs::read(&path).expect("read");
        // The third write, generation 3, went to the second slot.
        data[SLOT + 9] ^= 0xff;
        fs::write(&path, &data).expect("write");
        assert_eq!(PositionFile::read(dir.path()).1, Some((1, 200)));
        // Both torn: from the oldest segment.
        data[9] ^= 0xff;
        fs::write(&path, &data).expect("write");
        assert_eq!(PositionFile::read(dir.path()).1, None);
    }

    #[test]
    fn an_earlier_versions_file_is_read_and_replaced() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut legacy = Vec::new();
        legacy.extend_from_slice(&7u64.to_le_bytes());
        legacy.extend_from_slice(&4096u64.to_le_bytes());
        legacy.extend_from_slice(&crc32c::crc32c(&legacy).to_le_bytes());
        fs::write(dir.path().join(NAME), &legacy).expect("write");
        let (mut file, position) = PositionFile::read(dir.path());
        assert_eq!(position, Some((7, 4096)));
        file.write(7, 5000).expect("write");
        file.write(8, 0).expect("write");
        assert_eq!(
            fs::metadata(dir.path().join(NAME)).expect("metadata").len(),
            64
        );
        assert_eq!(PositionFile::read(dir.path()).1, Some((8, 0)));
    }
}
