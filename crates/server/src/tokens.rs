//! Access tokens: creating, listing and deleting them in
//! `<data-dir>/tokens.json`, and checking presented tokens against it.
//!
//! A token is `weir_` followed by 32 random bytes in unpadded base64url. Only
//! a salted SHA-256 of it is stored (a token has 256 bits of entropy, so a
//! fast hash is enough: nothing can be guessed), together with its id,
//! scope, database, description and creation time:
//!
//! ```json
//! {"version": 1, "tokens": [{"id": "3f9c0a7d51e2b846", "scope": "write", "db": "telemetry",
//!   "description": "agents", "created": "2026-11-22T00:29:45Z",
//!   "salt": "<16 bytes, base64url>", "sha256": "<SHA-256(salt ‖ token), base64url>"}]}
//! ```
//!
//! `db` is a database name or `*` for every database. Changes are made under
//! an exclusive lock on `tokens.lock` (so `weir token create` and a running
//! server never lose each other's changes) and saved atomically: temporary
//! file with mode 0600, fsync, rename, fsync of the directory.
//!
//! ```
//! use server::tokens::{Scope, Tokens, Verifier};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let tokens = Tokens::new(dir.path());
//! let new = tokens.create(Scope::Write, Some("telemetry"), "agents").unwrap();
//! assert!(new.secret.starts_with("weir_"));
//!
//! let verifier = Verifier::new(tokens);
//! let grant = verifier.verify(&new.secret).unwrap();
//! assert!(grant.allows(Scope::Write, "telemetry"));
//! assert!(!grant.allows(Scope::Read, "telemetry"));
//! assert!(!grant.allows(Scope::Write, "other"));
//! assert!(verifier.verify("weir_not-a-token").is_none());
//! ```

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The token file under the data directory.
pub const TOKENS_FILE: &str = "tokens.json";
/// The file holding the admin token made at first start (mode 0600).
pub const ADMIN_TOKEN_FILE: &str = "admin.token";
/// Held (flock) while the token file is read, changed and saved.
const LOCK_FILE: &str = "tokens.lock";
/// Every token starts with this.
pub const TOKEN_PREFIX: &str = "weir_";
/// Stands for every database in [`TokenInfo::db`].
pub const ALL_DATABASES: &str = "*";
/// How often a [`Verifier`] looks at the token file for changes while it
/// only sees tokens it knows.
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(1);

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Query.
    Read,
    /// Write points.
    Write,
    /// Read, write and manage tokens.
    Admin,
}

impl Scope {
    /// Whether a token of this scope may do what `need` asks.
    pub fn allows(self, need: Scope) -> bool {
        self == Scope::Admin || self == need
    }

    /// The scope's name: `read`, `write` or `admin`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
            Scope::Admin => "admin",
        }
    }
}

impl FromStr for Scope {
    type Err = TokenError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "read" => Ok(Scope::Read),
            "write" => Ok(Scope::Write),
            "admin" => Ok(Scope::Admin),
            other => Err(TokenError::InvalidScope(other.to_owned())),
        }
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// What went wrong with tokens.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// A file-system operation failed.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The token file cannot be read.
    #[error("token file {path} is corrupt: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What the decoder said.
        reason: String,
    },
    /// No token has this id.
    #[error("no token has id {0:?} (weir token list shows them)")]
    NotFound(String),
    /// A scope name other than read, write and admin.
    #[error("unknown scope {0:?}; expected read, write or admin")]
    InvalidScope(String),
    /// A database name a token cannot be for.
    #[error("invalid database name {0:?} for a token: give a database name, or all databases")]
    InvalidDatabase(String),
}

impl TokenError {
    fn io(what: &'static str, path: &Path, source: std::io::Error) -> Self {
        TokenError::Io {
            what,
            path: path.to_owned(),
            source,
        }
    }
}

/// A stored token: everything about it but the secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenInfo {
    /// Short random id, for listing and deleting; not a secret.
    pub id: String,
    /// What the token may do.
    pub scope: Scope,
    /// The database it is for, or [`ALL_DATABASES`].
    pub db: String,
    /// Free text from whoever made it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// When it was made, RFC 3339 UTC.
    pub created: String,
    /// Random salt, base64url.
    salt: String,
    /// SHA-256 of salt and token, base64url.
    sha256: String,
}

impl TokenInfo {
    /// The grant this token gives.
    pub fn grant(&self) -> Grant {
        Grant {
            id: self.id.clone(),
            scope: self.scope,
            db: self.db.clone(),
        }
    }
}

/// A token just made: its record and, this once, its secret.
#[derive(Debug, Clone)]
pub struct NewToken {
    /// The stored record.
    pub info: TokenInfo,
    /// The token to hand out; it cannot be recovered later.
    pub secret: String,
}

/// What a verified token allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The token's id.
    pub id: String,
    /// Its scope.
    pub scope: Scope,
    /// Its database, or [`ALL_DATABASES`].
    pub db: String,
}

impl Grant {
    /// Whether it allows `need` on database `db`.
    pub fn allows(&self, need: Scope, db: &str) -> bool {
        self.scope.allows(need) && self.covers(db)
    }

    /// Whether it is for database `db` (or for all).
    pub fn covers(&self, db: &str) -> bool {
        self.db == ALL_DATABASES || self.db == db
    }

    /// "read token 3f9c… for database "x"" — for error messages.
    pub fn describe(&self) -> String {
        if self.db == ALL_DATABASES {
            format!("{} token {} for all databases", self.scope, self.id)
        } else {
            format!(
                "{} token {} for database {:?}",
                self.scope, self.id, self.db
            )
        }
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenFile {
    version: u32,
    tokens: Vec<TokenInfo>,
}

/// The tokens of one data directory, on disk.
#[derive(Debug, Clone)]
pub struct Tokens {
    dir: PathBuf,
}

impl Tokens {
    /// The tokens kept in data directory `dir` (created when a token is).
    pub fn new(dir: &Path) -> Self {
        Tokens {
            dir: dir.to_owned(),
        }
    }

    /// The token file's path.
    pub fn path(&self) -> PathBuf {
        self.dir.join(TOKENS_FILE)
    }

    /// Every token, oldest first.
    pub fn list(&self) -> Result<Vec<TokenInfo>, TokenError> {
        Ok(load(&self.path())?.tokens)
    }

    /// Makes a token of `scope` for database `db` (`None`: all databases).
    pub fn create(
        &self,
        scope: Scope,
        db: Option<&str>,
        description: &str,
    ) -> Result<NewToken, TokenError> {
        let db = match db {
            None => ALL_DATABASES.to_owned(),
            Some(name) if name.is_empty() || name.chars().any(char::is_control) => {
                return Err(TokenError::InvalidDatabase(name.to_owned()))
            }
            Some(name) => name.to_owned(),
        };
        self.change(|file| {
            let new = new_token(scope, db, description);
            file.tokens.push(new.info.clone());
            Ok(new)
        })
    }

    /// Deletes the token with id `id`.
    pub fn delete(&self, id: &str) -> Result<TokenInfo, TokenError> {
        self.change(|file| {
            let at = file
                .tokens
                .iter()
                .position(|t| t.id == id)
                .ok_or_else(|| TokenError::NotFound(id.to_owned()))?;
            Ok(file.tokens.remove(at))
        })
    }

    /// If there is no token at all, makes an admin token for all databases,
    /// writes it to `<dir>/admin.token` (mode 0600) and returns it.
    pub fn ensure_admin(&self) -> Result<Option<NewToken>, TokenError> {
        self.change(|file| {
            if !file.tokens.is_empty() {
                return Ok(None);
            }
            let new = new_token(
                Scope::Admin,
                ALL_DATABASES.to_owned(),
                "made at first start",
            );
            let path = self.dir.join(ADMIN_TOKEN_FILE);
            write_private(&path, format!("{}\n", new.secret).as_bytes())?;
            file.tokens.push(new.info.clone());
            Ok(Some(new))
        })
    }

    /// Runs `f` on the token file under the lock and saves the result if
    /// `f` succeeds.
    fn change<T>(
        &self,
        f: impl FnOnce(&mut TokenFile) -> Result<T, TokenError>,
    ) -> Result<T, TokenError> {
        fs::create_dir_all(&self.dir)
            .map_err(|e| TokenError::io("creating data directory", &self.dir, e))?;
        let lock_path = self.dir.join(LOCK_FILE);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&lock_path)
            .map_err(|e| TokenError::io("opening", &lock_path, e))?;
        lock.lock()
            .map_err(|e| TokenError::io("locking", &lock_path, e))?;
        let path = self.path();
        let mut file = load(&path)?;
        let out = f(&mut file)?;
        file.version = 1;
        let mut text = serde_json::to_vec_pretty(&file).map_err(|e| TokenError::Corrupt {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        text.push(b'\n');
        write_private(&path, &text)?;
        drop(lock);
        Ok(out)
    }
}

fn load(path: &Path) -> Result<TokenFile, TokenError> {
    let text = match fs::read(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(TokenFile::default()),
        Err(e) => return Err(TokenError::io("reading", path, e)),
    };
    let file: TokenFile = serde_json::from_slice(&text).map_err(|e| TokenError::Corrupt {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    if file.version != 1 {
        return Err(TokenError::Corrupt {
            path: path.to_owned(),
            reason: format!("version {} is not 1", file.version),
        });
    }
    Ok(file)
}

fn new_token(scope: Scope, db: String, description: &str) -> NewToken {
    let mut rng = rand::rngs::OsRng;
    let mut secret = [0u8; 32];
    rng.fill_bytes(&mut secret);
    let secret = format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(secret));
    let mut salt = [0u8; 16];
    rng.fill_bytes(&mut salt);
    let mut id = [0u8; 8];
    rng.fill_bytes(&mut id);
    let info = TokenInfo {
        id: id.iter().map(|b| format!("{b:02x}")).collect(),
        scope,
        db,
        description: description.to_owned(),
        created: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
        salt: URL_SAFE_NO_PAD.encode(salt),
        sha256: URL_SAFE_NO_PAD.encode(hash(&salt, &secret)),
    };
    NewToken { info, secret }
}

fn hash(salt: &[u8], secret: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(salt);
    h.update(secret.as_bytes());
    h.finalize().into()
}

/// Writes `bytes` to `path` atomically with mode 0600: temporary file,
/// fsync, rename, fsync of the directory.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), TokenError> {
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(".tmp");
    let tmp = PathBuf::from(tmp_name);
    let mut file = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| TokenError::io("creating", &tmp, e))?;
    // A temporary file left by a crash keeps its old mode; make sure.
    file.set_permissions(fs::Permissions::from_mode(0o600))
        .map_err(|e| TokenError::io("setting permissions of", &tmp, e))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| TokenError::io("writing", &tmp, e))?;
    drop(file);
    fs::rename(&tmp, path).map_err(|e| TokenError::io("renaming into place", path, e))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| TokenError::io("syncing directory", dir, e))
}

/// Checks presented tokens against the token file, noticing changes made
/// by other processes (`weir token create` and `delete` while a server
/// runs): the file's identity (size, modification and change times, inode)
/// is looked at on every unknown token and otherwise at most once per
/// [`RELOAD_INTERVAL`]; the file is re-read when it changed. A created token
/// works at once; a deleted one stops working within a second.
#[derive(Debug)]
pub struct Verifier {
    tokens: Tokens,
    known: RwLock<Vec<Entry>>,
    /// The identity of the file `known` came from, and when it was checked.
    checked: Mutex<(Option<Stamp>, Instant)>,
}

#[derive(Debug)]
struct Entry {
    grant: Grant,
    salt: Vec<u8>,
    sha256: Vec<u8>,
}

/// What tells one version of the token file from another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
    ino: u64,
}

impl Verifier {
    /// A verifier over `tokens`, which it reads at once (a broken file is
    /// logged and read as empty until it is fixed).
    pub fn new(tokens: Tokens) -> Self {
        let verifier = Verifier {
            tokens,
            known: RwLock::new(Vec::new()),
            checked: Mutex::new((None, Instant::now())),
        };
        verifier.refresh(true);
        verifier
    }

    /// The grant of `secret`, if it is a known token.
    pub fn verify(&self, secret: &str) -> Option<Grant> {
        if !secret.starts_with(TOKEN_PREFIX) {
            return None;
        }
        self.refresh(false);
        if let Some(grant) = self.find(secret) {
            return Some(grant);
        }
        if self.refresh(true) {
            return self.find(secret);
        }
        None
    }

    fn find(&self, secret: &str) -> Option<Grant> {
        let known = self.known.read().unwrap_or_else(|p| p.into_inner());
        known
            .iter()
            .find(|e| bool::from(hash(&e.salt, secret).ct_eq(e.sha256.as_slice())))
            .map(|e| e.grant.clone())
    }

    /// Re-reads the token file if it changed (looking only if `force` or
    /// the last look is older than [`RELOAD_INTERVAL`]); returns whether it
    /// re-read it.
    fn refresh(&self, force: bool) -> bool {
        let mut checked = self.checked.lock().unwrap_or_else(|p| p.into_inner());
        if !force && checked.1.elapsed() < RELOAD_INTERVAL {
            return false;
        }
        checked.1 = Instant::now();
        let path = self.tokens.path();
        let stamp = fs::metadata(&path).ok().map(|m| Stamp {
            len: m.len(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
            ino: m.ino(),
        });
        if stamp == checked.0 && checked.0.is_some() {
            return false;
        }
        let entries = match self.tokens.list() {
            Ok(list) => list
                .into_iter()
                .filter_map(|t| {
                    let salt = URL_SAFE_NO_PAD.decode(&t.salt).ok()?;
                    let sha256 = URL_SAFE_NO_PAD.decode(&t.sha256).ok()?;
                    Some(Entry {
                        grant: t.grant(),
                        salt,
                        sha256,
                    })
                })
                .collect(),
            Err(e) => {
                // Keep what was known: a half-edited file must not lock
                // everyone out, nor let anyone in.
                tracing::error!("reading tokens: {e}");
                return false;
            }
        };
        *self.known.write().unwrap_or_else(|p| p.into_inner()) = entries;
        checked.0 = stamp;
        true
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn tokens_are_stored_hashed_private_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let tokens = Tokens::new(dir.path());
        let admin = tokens.ensure_admin().unwrap().unwrap();
        assert!(tokens.ensure_admin().unwrap().is_none(), "made only once");
        let saved = fs::read_to_string(dir.path().join(ADMIN_TOKEN_FILE)).unwrap();
        assert_eq!(saved.trim(), admin.secret);
        for file in [TOKENS_FILE, ADMIN_TOKEN_FILE] {
            let mode = fs::metadata(dir.path().join(file))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{file}");
        }
        let text = fs::read_to_string(tokens.path()).unwrap();
        assert!(!text.contains(&admin.secret[TOKEN_PREFIX.len()..]));
        assert_eq!(admin.secret.len(), TOKEN_PREFIX.len() + 43);

        let verifier = Verifier::new(tokens.clone());
        assert_eq!(verifier.verify(&admin.secret).unwrap().scope, Scope::Admin);
        // Made by "another process": seen at once.
        let read = tokens.create(Scope::Read, Some("db"), "").unwrap();
        assert!(verifier
            .verify(&read.secret)
            .unwrap()
            .allows(Scope::Read, "db"));
        // Deleted: gone once the file is looked at again.
        tokens.delete(&read.info.id).unwrap();
        assert!(verifier.refresh(true));
        assert!(verifier.verify(&read.secret).is_none());
        assert!(matches!(
            tokens.delete(&read.info.id),
            Err(TokenError::NotFound(_))
        ));
        assert_eq!(tokens.list().unwrap().len(), 1);
    }

    #[test]
    fn scopes_and_databases() {
        let g = Grant {
            id: "x".into(),
            scope: Scope::Admin,
            db: "a".into(),
        };
        assert!(g.allows(Scope::Read, "a") && g.allows(Scope::Write, "a"));
        assert!(!g.allows(Scope::Read, "b"));
        let all = Grant {
            db: ALL_DATABASES.into(),
            scope: Scope::Read,
            ..g
        };
        assert!(all.allows(Scope::Read, "anything") && !all.allows(Scope::Write, "a"));
        assert!("root".parse::<Scope>().is_err());
    }

    #[test]
    fn a_corrupt_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(TOKENS_FILE), b"{nope").unwrap();
        let err = Tokens::new(dir.path()).list().unwrap_err().to_string();
        assert!(err.contains("tokens.json is corrupt"), "{err}");
    }
}
