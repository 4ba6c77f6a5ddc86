//! The catalog: databases, their tables and each table's typed columns.
//!
//! Schemas only grow: a new tag or field becomes a new column, and a
//! column's kind and type never change, so a line that disagrees with them is
//! rejected while the rest of its batch is kept. The catalog is saved
//! atomically (temporary file, fsync, rename, fsync of the directory).

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use lineproto::{FieldValue, Line};
use serde::{Deserialize, Serialize};

use crate::error::StoreError;

/// The name of the time column every table has.
pub const TIME_COLUMN: &str = "time";

/// The type of a field column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    /// 64-bit float.
    Float,
    /// Signed 64-bit integer.
    Integer,
    /// Unsigned 64-bit integer.
    UInteger,
    /// Boolean.
    Boolean,
    /// UTF-8 string.
    String,
}

impl FieldType {
    /// The type of a parsed field value.
    pub fn of(value: &FieldValue<'_>) -> Self {
        match value {
            FieldValue::Float(_) => FieldType::Float,
            FieldValue::Integer(_) => FieldType::Integer,
            FieldValue::UInteger(_) => FieldType::UInteger,
            FieldValue::Boolean(_) => FieldType::Boolean,
            FieldValue::String(_) => FieldType::String,
        }
    }

    /// The name users see, as in line-protocol error messages.
    pub fn name(self) -> &'static str {
        match self {
            FieldType::Float => "float",
            FieldType::Integer => "integer",
            FieldType::UInteger => "unsigned integer",
            FieldType::Boolean => "boolean",
            FieldType::String => "string",
        }
    }
}

/// What a column holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "type")]
pub enum ColumnKind {
    /// The nanosecond timestamp.
    Time,
    /// A tag: a dimension, stored dictionary-encoded.
    Tag,
    /// A field: a metric of the given type.
    Field(FieldType),
}

/// One column of a table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Column {
    /// The column's name: the tag key or field key.
    pub name: String,
    /// Tag, field (with type) or time.
    pub kind: ColumnKind,
}

/// A table (InfluxDB measurement) and its columns in the order they appeared;
/// `time` is always first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableSchema {
    /// The table's name.
    pub name: String,
    /// The columns, `time` first.
    pub columns: Vec<Column>,
}

impl TableSchema {
    fn new(name: &str) -> Self {
        TableSchema {
            name: name.to_owned(),
            columns: vec![Column {
                name: TIME_COLUMN.to_owned(),
                kind: ColumnKind::Time,
            }],
        }
    }

    /// The column called `name`, if any.
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }
}

/// A database: a namespace of tables.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatabaseSchema {
    /// Tables by name.
    pub tables: BTreeMap<String, TableSchema>,
    /// Raw rows older than this many seconds are never returned and their
    /// files are deleted; `None` keeps everything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_secs: Option<u64>,
    /// Rollup rows (tables `<table>_30m`, `<table>_1d`) older than this many seconds are
    /// never returned and their files are deleted; `None` keeps everything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollup_retention_secs: Option<u64>,
    /// Persists write no rollups of this database's tables (on dense host
    /// metrics the rollups take about 0.6 times the raw rows' bytes); set
    /// with [`crate::Store::set_rollups`].
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rollups_off: bool,
}

/// Every database, table and column the store knows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Catalog {
    /// Databases by name.
    pub databases: BTreeMap<String, DatabaseSchema>,
}

/// Why a line does not fit its table's schema.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaConflict {
    /// A tag or field named like the time column.
    #[error("{0} {1:?} uses the reserved column name \"time\"")]
    ReservedName(&'static str, String),
    /// A field whose type differs from its column's.
    #[error("field {field:?} is {got}, but column {field:?} of table {table:?} is {want}")]
    FieldType {
        /// The table.
        table: String,
        /// The field key.
        field: String,
        /// The column's type.
        want: &'static str,
        /// The line's type.
        got: &'static str,
    },
    /// A key used as a tag where the column is a field, or the reverse.
    #[error("{key:?} is a {got} in this line, but column {key:?} of table {table:?} is a {want}")]
    Kind {
        /// The table.
        table: String,
        /// The key.
        key: String,
        /// What the column is.
        want: &'static str,
        /// What the line uses it as.
        got: &'static str,
    },
}

impl Catalog {
    /// Checks `line` against database `db`, adding the table and any new
    /// columns it brings. Returns whether the catalog changed. On a conflict
    /// nothing is added.
    pub fn admit(&mut self, db: &str, line: &Line<'_>) -> Result<bool, SchemaConflict> {
        let table_name = line.measurement.as_ref();
        let existing = self
            .databases
            .get(db)
            .and_then(|d| d.tables.get(table_name));
        let mut new_columns: Vec<Column> = Vec::new();
        let lookup = |name: &str, new: &[Column]| -> Option<ColumnKind> {
            existing
                .and_then(|t| t.column(name))
                .or_else(|| new.iter().find(|c| c.name == name))
                .map(|c| c.kind)
        };
        for (key, _) in &line.tags {
            if key == TIME_COLUMN {
                return Err(SchemaConflict::ReservedName("tag key", key.to_string()));
            }
            match lookup(key, &new_columns) {
                Some(ColumnKind::Tag) => {}
                Some(_) => {
                    return Err(SchemaConflict::Kind {
                        table: table_name.to_owned(),
                        key: key.to_string(),
                        want: "field",
                        got: "tag",
                    })
                }
                None => new_columns.push(Column {
                    name: key.to_string(),
                    kind: ColumnKind::Tag,
                }),
            }
        }
        for (key, value) in &line.fields {
            if key == TIME_COLUMN {
                return Err(SchemaConflict::ReservedName("field key", key.to_string()));
            }
            let got = FieldType::of(value);
            match lookup(key, &new_columns) {
                Some(ColumnKind::Field(want)) if want == got => {}
                Some(ColumnKind::Field(want)) => {
                    return Err(SchemaConflict::FieldType {
                        table: table_name.to_owned(),
                        field: key.to_string(),
                        want: want.name(),
                        got: got.name(),
                    })
                }
                Some(_) => {
                    return Err(SchemaConflict::Kind {
                        table: table_name.to_owned(),
                        key: key.to_string(),
                        want: "tag",
                        got: "field",
                    })
                }
                None => new_columns.push(Column {
                    name: key.to_string(),
                    kind: ColumnKind::Field(got),
                }),
            }
        }
        if existing.is_some() && new_columns.is_empty() {
            return Ok(false);
        }
        let table = self
            .databases
            .entry(db.to_owned())
            .or_default()
            .tables
            .entry(table_name.to_owned())
            .or_insert_with(|| TableSchema::new(table_name));
        table.columns.extend(new_columns);
        Ok(true)
    }

    /// Admits each of `lines` to `db` as [`Catalog::admit`] does, calling
    /// `verdict` with its index and result, in order. A line with the same
    /// measurement, keys and field types as the line admitted before it is
    /// admitted without looking its columns up: most writes repeat one
    /// shape thousands of times.
    pub fn admit_all<'a>(
        &mut self,
        db: &str,
        lines: impl Iterator<Item = &'a Line<'a>>,
        mut verdict: impl FnMut(usize, Result<bool, SchemaConflict>),
    ) {
        let mut last: Option<&Line<'_>> = None;
        for (i, line) in lines.enumerate() {
            let result = match last {
                Some(prev) if same_shape(prev, line) => Ok(false),
                _ => self.admit(db, line),
            };
            if result.is_ok() {
                last = Some(line);
            }
            verdict(i, result);
        }
    }

    /// Adds an empty database; returns whether it is new.
    pub fn create_database(&mut self, db: &str) -> bool {
        if self.databases.contains_key(db) {
            return false;
        }
        self.databases
            .insert(db.to_owned(), DatabaseSchema::default());
        true
    }

    /// The schema of `db.table`, if it exists.
    pub fn table(&self, db: &str, table: &str) -> Option<&TableSchema> {
        self.databases.get(db)?.tables.get(table)
    }

    /// Reads the catalog saved at `path`, or an empty one if there is none.
    pub fn load(path: &Path) -> Result<Self, StoreError> {
        match fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| StoreError::CorruptCatalog {
                path: path.to_owned(),
                reason: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Catalog::default()),
            Err(e) => Err(StoreError::io("reading the catalog", path, e)),
        }
    }

    /// Saves the catalog to `path` atomically: a crash leaves either the old
    /// or the new catalog, never a mix.
    pub fn save(&self, path: &Path) -> Result<(), StoreError> {
        let json = serde_json::to_vec_pretty(self).map_err(|e| StoreError::CorruptCatalog {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        write_atomically(path, &json)
    }
}

/// Writes `bytes` to `path` through a temporary file, fsync, rename and an
/// fsync of the directory.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let tmp = tmp_path(path);
    let io = |what, e| StoreError::io(what, &tmp, e);
    let mut file = File::create(&tmp).map_err(|e| io("creating", e))?;
    file.write_all(bytes).map_err(|e| io("writing", e))?;
    file.sync_all().map_err(|e| io("syncing", e))?;
    drop(file);
    fs::rename(&tmp, path).map_err(|e| StoreError::io("renaming into place", path, e))?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(".tmp");
    path.with_file_name(name)
}

/// Makes a directory's entries (new, renamed or removed files) durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError::io("syncing directory", dir, e))
}

/// Whether `a` and `b` have the same measurement, tag keys and field keys
/// in the same order, and fields of the same types.
fn same_shape(a: &Line<'_>, b: &Line<'_>) -> bool {
    a.measurement == b.measurement
        && a.tags.len() == b.tags.len()
        && a.fields.len() == b.fields.len()
        && a.tags.iter().zip(&b.tags).all(|((x, _), (y, _))| x == y)
        && a.fields
            .iter()
            .zip(&b.fields)
            .all(|((x, v), (y, w))| x == y && FieldType::of(v) == FieldType::of(w))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(text: &str) -> Line<'_> {
        lineproto::parse_lines(text.as_bytes())
            .next()
            .unwrap()
            .unwrap()
    }

    #[test]
    fn admitting_lines_of_one_shape_still_catches_each_conflict() {
        let mut c = Catalog::default();
        let lines: Vec<Line<'_>> = [
            "m,h=a v=1",
            "m,h=b v=2",  // same shape: admitted without lookups
            "m,h=c v=3i", // same keys, another type: refused
            "m,h=d v=4",
            "m,v=x v=5", // a tag named like a field: refused
            "m,h=e v=6,w=true",
        ]
        .iter()
        .map(|t| line(t))
        .collect();
        let mut verdicts = Vec::new();
        c.admit_all("db", lines.iter(), |i, r| verdicts.push((i, r.is_ok())));
        assert_eq!(
            verdicts,
            [
                (0, true),
                (1, true),
                (2, false),
                (3, true),
                (4, false),
                (5, true)
            ]
        );
        let table = c.table("db", "m").unwrap();
        assert!(table.column("w").is_some());
        assert_eq!(table.columns.len(), 4);
    }

    #[test]
    fn schema_grows_and_conflicts_are_named() {
        let mut c = Catalog::default();
        assert!(c.admit("db", &line("cpu,host=a usage=1.5")).unwrap());
        assert!(!c.admit("db", &line("cpu,host=b usage=2")).unwrap());
        assert!(c
            .admit("db", &line("cpu,host=b,dc=x usage=2,n=1i"))
            .unwrap());
        let names: Vec<_> = c
            .table("db", "cpu")
            .unwrap()
            .columns
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(names, ["time", "host", "usage", "dc", "n"]);

        let e = c.admit("db", &line("cpu usage=1i")).unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"field "usage" is integer, but column "usage" of table "cpu" is float"#
        );
        let e = c.admit("db", &line("cpu,usage=x n=1i")).unwrap_err();
        assert!(matches!(e, SchemaConflict::Kind { .. }), "{e}");
        let e = c.admit("db", &line("cpu time=1")).unwrap_err();
        assert!(matches!(e, SchemaConflict::ReservedName(..)), "{e}");
        // A rejected line adds nothing, not even its other new columns.
        assert!(c.admit("db", &line("cpu fresh=1,usage=\"s\"")).is_err());
        assert!(c.table("db", "cpu").unwrap().column("fresh").is_none());
    }

    #[test]
    fn saved_catalog_loads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("catalog.json");
        assert_eq!(Catalog::load(&path).unwrap(), Catalog::default());
        let mut c = Catalog::default();
        c.admit("db", &line("m,t=v f=1u,b=t,s=\"x\"")).unwrap();
        c.save(&path).unwrap();
        assert_eq!(Catalog::load(&path).unwrap(), c);
        fs::write(&path, b"{not json").unwrap();
        assert!(matches!(
            Catalog::load(&path),
            Err(StoreError::CorruptCatalog { .. })
        ));
    }
}
