//! Where the agent finds the host's /proc, /sys and mount points: under a
//! configurable root, so that tests read fixture trees and a containerised
//! agent reads the host's files mounted at, say, `/hostfs`.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Component, Path, PathBuf};

use crate::input::InputError;

/// The host's file system locations. Telegraf's `HOST_PROC`, `HOST_SYS` and
/// `HOST_MOUNT_PREFIX` environment variables, in one value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPaths {
    /// The root under which absolute host paths (mount points) are found.
    pub root: PathBuf,
    /// The host's `/proc`.
    pub proc: PathBuf,
    /// The host's `/sys`.
    pub sys: PathBuf,
}

impl HostPaths {
    /// Paths for a host whose file system is mounted at `root` (`/` for the
    /// machine the agent runs on).
    pub fn under(root: impl Into<PathBuf>) -> Self {
        let root = root.into();
        HostPaths {
            proc: root.join("proc"),
            sys: root.join("sys"),
            root,
        }
    }

    /// `rel` under the host's /proc, e.g. `proc_path("net/dev")`.
    pub fn proc_path(&self, rel: &str) -> PathBuf {
        self.proc.join(rel)
    }

    /// `rel` under the host's /sys, e.g. `sys_path("class/net")`.
    pub fn sys_path(&self, rel: &str) -> PathBuf {
        self.sys.join(rel)
    }

    /// An absolute host path (a mount point) as seen from the agent.
    pub fn host_path(&self, abs: &Path) -> PathBuf {
        match abs.strip_prefix("/") {
            Ok(rel) => self.root.join(rel),
            Err(_) => self.root.join(abs),
        }
    }

    /// Reads a file under these paths into a string, naming it on error.
    pub fn read(&self, path: &Path) -> Result<String, InputError> {
        read_file(path).map_err(|e| InputError::io(path, e))
    }
}

/// At most this many files are kept open per thread (see [`read_file`]).
const KEPT_OPEN_MAX: usize = 64;

thread_local! {
    /// The live host's `/proc` and `/sys` files this thread has read, kept
    /// open: inputs gather on one thread, the same files every time.
    static KEPT_OPEN: RefCell<HashMap<PathBuf, File>> = RefCell::new(HashMap::new());
}

/// Reads a whole file into a string, naming no path in the error (callers
/// do).
///
/// A file of the live host's `/proc` or `/sys` (the paths start there) is
/// kept open by the reading thread and read again from its start the next
/// time (`pread`), which the kernel answers with fresh contents: no path
/// walk, no open and no close, three of the four system calls each file
/// cost at every collection. Files of processes (`/proc/<pid>/…`) are not
/// kept, nor any under another host root (fixture trees, a host mounted
/// elsewhere: their files may be replaced), nor more than 64 per thread.
/// A kept file that fails (an interface removed) is dropped and the path
/// opened again.
pub fn read_file(path: &Path) -> std::io::Result<String> {
    if !keeps_open(path) {
        return read_from_start(&File::open(path)?);
    }
    KEPT_OPEN.with_borrow_mut(|files| {
        if let Some(file) = files.get(path) {
            match read_from_start(file) {
                Ok(text) => return Ok(text),
                Err(_) => {
                    files.remove(path);
                }
            }
        }
        let file = File::open(path)?;
        let text = read_from_start(&file)?;
        if files.len() >= KEPT_OPEN_MAX {
            files.clear();
        }
        files.insert(path.to_owned(), file);
        Ok(text)
    })
}

/// Whether [`read_file`] keeps `path` open: under `/proc` or `/sys`, and
/// not a process's own.
fn keeps_open(path: &Path) -> bool {
    let mut parts = path.components();
    if parts.next() != Some(Component::RootDir) {
        return false;
    }
    let top = parts.next();
    if top != Some(Component::Normal("proc".as_ref()))
        && top != Some(Component::Normal("sys".as_ref()))
    {
        return false;
    }
    !matches!(parts.next(), Some(Component::Normal(p))
        if p.as_encoded_bytes().iter().all(u8::is_ascii_digit))
}

/// Reads `file` from offset 0 to its end, without asking its size first
/// (`/proc` and `/sys` files say 0).
fn read_from_start(file: &File) -> std::io::Result<String> {
    let mut buf = vec![0u8; 4096];
    let mut len = 0;
    loop {
        if buf.len() - len < 1024 {
            buf.resize(buf.len() * 2, 0);
        }
        // A short read is not the end: a /proc file of many records may
        // answer a page at a time.
        let n = file.read_at(&mut buf[len..], len as u64)?;
        if n == 0 {
            break;
        }
        len += n;
    }
    buf.truncate(len);
    String::from_utf8(buf).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

impl Default for HostPaths {
    fn default() -> Self {
        HostPaths::under("/")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_live_hosts_shared_files_are_kept_open() {
        for (path, kept) in [
            ("/proc/stat", true),
            ("/proc/net/dev", true),
            ("/sys/class/net/lo/flags", true),
            ("/proc/1/mountinfo", false),
            ("/proc/12345/stat", false),
            ("/hostfs/proc/stat", false),
            ("proc/stat", false),
            ("/tmp/fixture/proc/stat", false),
        ] {
            assert_eq!(keeps_open(Path::new(path)), kept, "{path}");
        }
    }

    #[test]
    fn a_kept_file_answers_with_fresh_contents() {
        // /proc/uptime counts hundredths of a second.
        let first = read_file(Path::new("/proc/uptime")).expect("read");
        std::thread::sleep(std::time::Duration::from_millis(30));
        let second = read_file(Path::new("/proc/uptime")).expect("read");
        assert!(KEPT_OPEN.with_borrow(|f| f.contains_key(Path::new("/proc/uptime"))));
        assert_ne!(first, second);
        // A file longer than the first buffer, read to its end.
        let mounts = read_file(Path::new("/proc/self/mountinfo")).expect("read");
        assert_eq!(
            mounts,
            std::fs::read_to_string("/proc/self/mountinfo").expect("read")
        );
        let missing = read_file(Path::new("/proc/no-such-file")).expect_err("missing");
        assert_eq!(missing.kind(), std::io::ErrorKind::NotFound);
    }
}
