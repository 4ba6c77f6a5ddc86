//! `[[outputs.file]]` and `[[outputs.stdout]]`: metrics to files or
//! standard output, as line protocol or JSON lines, with rotation.
//!
//! Options are Telegraf's `file` output's: `files` (`["stdout"]`; a path
//! or `"stdout"`), `data_format` (`"influx"` or `"json"`),
//! `json_timestamp_units` (`"1s"`), `use_batch_format`,
//! `rotation_interval`, `rotation_max_size` (e.g. `"10MB"`; zero: never)
//! and `rotation_max_archives` (5; -1 keeps all). A rotated file is renamed
//! `NAME.YYYY-MM-DD-UNIXSECONDS.EXT` beside the file, as Telegraf names
//! them. `stdout` takes the same options with `files = ["stdout"]`.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Deserialize;

use super::format::DataFormat;
use super::{Output, OutputError, WriteFuture};
use crate::config::{ConfigError, OutputCommon, PluginSpec};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Options {
    files: Vec<String>,
    data_format: String,
    #[serde(deserialize_with = "crate::config::duration_option")]
    json_timestamp_units: Duration,
    use_batch_format: bool,
    #[serde(deserialize_with = "crate::config::duration_option")]
    rotation_interval: Duration,
    #[serde(deserialize_with = "byte_size")]
    rotation_max_size: u64,
    rotation_max_archives: i64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            files: vec!["stdout".into()],
            data_format: "influx".into(),
            json_timestamp_units: Duration::from_secs(1),
            use_batch_format: false,
            rotation_interval: Duration::ZERO,
            rotation_max_size: 0,
            rotation_max_archives: 5,
        }
    }
}

fn byte_size<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let value = toml::Value::deserialize(d)?;
    crate::config::parse_byte_size(&value).map_err(serde::de::Error::custom)
}

/// Writes batches to files and standard output.
#[derive(Debug)]
pub struct FileOutput {
    label: String,
    format: DataFormat,
    sinks: Vec<Sink>,
}

#[derive(Debug)]
enum Sink {
    Stdout,
    File(RotatingFile),
}

#[derive(Debug)]
struct RotatingFile {
    path: PathBuf,
    file: File,
    size: u64,
    opened: Instant,
    max_size: u64,
    interval: Duration,
    max_archives: i64,
}

impl FileOutput {
    /// Builds a `file` output (or `stdout`, whose files default to
    /// standard output only) from its table, opening the files.
    pub fn build(spec: &PluginSpec<OutputCommon>, stdout: bool) -> Result<Self, ConfigError> {
        let o: Options = spec.options()?;
        if stdout && o.files.iter().any(|f| f != "stdout") {
            return Err(spec.error("stdout writes to standard output only; use outputs.file"));
        }
        let format = DataFormat::from_options(
            spec,
            &o.data_format,
            o.json_timestamp_units,
            o.use_batch_format,
        )?;
        let mut sinks = Vec::new();
        for f in &o.files {
            if f == "stdout" {
                sinks.push(Sink::Stdout);
                continue;
            }
            let path = PathBuf::from(f);
            let (file, size) = open(&path).map_err(|e| spec.error(format!("{f}: {e}")))?;
            sinks.push(Sink::File(RotatingFile {
                path,
                file,
                size,
                opened: Instant::now(),
                max_size: o.rotation_max_size,
                interval: o.rotation_interval,
                max_archives: o.rotation_max_archives,
            }));
        }
        Ok(FileOutput {
            label: spec.label(),
            format,
            sinks,
        })
    }

    fn write_batch(&mut self, batch: &[u8]) -> Result<(), OutputError> {
        let (bytes, bad) = self.format.serialize(batch);
        if bad > 0 {
            tracing::warn!(output = %self.label, "skipped {bad} lines that do not parse");
        }
        for sink in &mut self.sinks {
            let result = match sink {
                Sink::Stdout => {
                    let mut out = std::io::stdout().lock();
                    out.write_all(&bytes).and_then(|()| out.flush())
                }
                Sink::File(f) => f.write(&bytes),
            };
            if let Err(e) = result {
                let name = match sink {
                    Sink::Stdout => "stdout".to_owned(),
                    Sink::File(f) => f.path.display().to_string(),
                };
                return Err(OutputError::Retry {
                    reason: format!("writing {name}: {e}"),
                    after: None,
                });
            }
        }
        Ok(())
    }
}

impl Output for FileOutput {
    fn write<'a>(&'a mut self, batch: &'a [u8], _lines: usize) -> WriteFuture<'a> {
        Box::pin(std::future::ready(self.write_batch(batch)))
    }
}

fn open(path: &Path) -> std::io::Result<(File, u64)> {
    let file = OpenOptions::new().create(true).append(true).open(path)?;
    let size = file.metadata()?.len();
    Ok((file, size))
}

impl RotatingFile {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let by_size =
            self.max_size > 0 && self.size > 0 && self.size + bytes.len() as u64 > self.max_size;
        let by_time = !self.interval.is_zero() && self.opened.elapsed() >= self.interval;
        if by_size || by_time {
            self.rotate()?;
        }
        self.file.write_all(bytes)?;
        self.size += bytes.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        self.file.flush()?;
        let (stem, ext) = stem_ext(&self.path);
        let wall = SystemTime::now();
        let now = wall.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        // `YYYY-MM-DD` of the UTC date.
        let stamp = humantime::format_rfc3339_seconds(wall).to_string();
        let date = stamp.get(..10).unwrap_or(&stamp);
        let base = format!("{stem}.{date}-{now}");
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let mut archive = dir.join(format!("{base}{ext}"));
        let mut n = 1;
        while archive.exists() {
            archive = dir.join(format!("{base}-{n}{ext}"));
            n += 1;
        }
        std::fs::rename(&self.path, &archive)?;
        let (file, size) = open(&self.path)?;
        self.file = file;
        self.size = size;
        self.opened = Instant::now();
        if self.max_archives >= 0 {
            self.purge(dir, &stem, &ext)?;
        }
        Ok(())
    }

    /// Deletes the oldest archives beyond `max_archives`.
    fn purge(&self, dir: &Path, stem: &str, ext: &str) -> std::io::Result<()> {
        let prefix = format!("{stem}.");
        let mut archives = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let is_archive = name
                .strip_prefix(&prefix)
                .and_then(|rest| rest.strip_suffix(ext))
                .is_some_and(|mid| {
                    mid.len() >= 10 && mid.bytes().all(|b| b.is_ascii_digit() || b == b'-')
                });
            if is_archive {
                let modified = entry.metadata()?.modified().unwrap_or(UNIX_EPOCH);
                archives.push((modified, name.to_owned()));
            }
        }
        archives.sort();
        let keep = usize::try_from(self.max_archives).unwrap_or(usize::MAX);
        let excess = archives.len().saturating_sub(keep);
        for (_, name) in archives.into_iter().take(excess) {
            std::fs::remove_file(dir.join(name))?;
        }
        Ok(())
    }
}

/// `metrics.out` → (`metrics`, `.out`); `metrics` → (`metrics`, ``).
fn stem_ext(path: &Path) -> (String, String) {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let ext = path
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default();
    (stem, ext)
}
