//! Where the agent finds the host's /proc, /sys and mount points: under a
//! configurable root, so that tests read fixture trees and a containerised
//! agent reads the host's files mounted at, say, `/hostfs`.

use std::path::{Path, PathBuf};

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

/// Reads a whole file into a string, as `std::fs::read_to_string` does but
/// without first asking the file for its size and position (`statx`,
/// `lseek`), which `/proc` and `/sys` files answer with 0 anyway: two of
/// the five system calls of each of the hundreds of files the inputs read
/// per collection.
pub fn read_file(path: &Path) -> std::io::Result<String> {
    let mut text = String::with_capacity(4096);
    // Through `Take`, `read_to_string` reads to the end without the size hint.
    std::io::Read::read_to_string(
        &mut std::io::Read::take(std::fs::File::open(path)?, u64::MAX),
        &mut text,
    )?;
    Ok(text)
}

impl Default for HostPaths {
    fn default() -> Self {
        HostPaths::under("/")
    }
}
