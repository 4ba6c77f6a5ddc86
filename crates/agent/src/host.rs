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
        std::fs::read_to_string(path).map_err(|e| InputError::io(path, e))
    }
}

impl Default for HostPaths {
    fn default() -> Self {
        HostPaths::under("/")
    }
}
