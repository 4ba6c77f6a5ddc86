//! Rollups (half-hourly and daily): what persist writes beside the raw
//! rows, how partial rollups of one bucket add up to the raw aggregates,
//! how compaction merges them, and their own retention.

// Helpers outside #[test] fns unwrap too: in a test a panic is the report.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use arrow::array::{Array, BinaryArray, Float64Array, TimestampNanosecondArray, UInt64Array};
use arrow::record_batch::RecordBatch;
use arrow::util::display::array_value_to_string;
use lineproto::Precision;
use sketch::DDSketch;
use store::{RollupGrain, Store, StoreConfig, ROLLUP_NANOS};

fn open(dir: &Path) -> Store {
    let config = StoreConfig {
        background_persist: false,
        ..StoreConfig::default()
    };
    Store::open(dir, config).unwrap()
}

fn all(store: &Store, table: &str) -> RecordBatch {
    let schema = store.table_schema("db", table).unwrap();
    let batches = store.scan("db", table).unwrap().unwrap();
    arrow::compute::concat_batches(&schema, &batches).unwrap()
}

/// Aggregates of one series, bucket and field.
#[derive(Debug, Clone, PartialEq)]
struct Agg {
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
    values: Vec<f64>,
}

type Key = (String, i64);

/// Per (host tag, bucket of `grain`) the aggregates of field `f` of the
/// raw rows.
fn raw_aggregates(store: &Store, grain: RollupGrain) -> BTreeMap<Key, Agg> {
    let batch = all(store, "m");
    let host = batch.column_by_name("host").unwrap();
    let time = batch.column_by_name("time").unwrap();
    let time = time
        .as_any()
        .downcast_ref::<TimestampNanosecondArray>()
        .unwrap();
    let f = batch.column_by_name("f").unwrap();
    let f = f.as_any().downcast_ref::<Float64Array>().unwrap();
    let mut out: BTreeMap<Key, Agg> = BTreeMap::new();
    for i in 0..batch.num_rows() {
        if f.is_null(i) {
            continue;
        }
        let key = (
            array_value_to_string(host, i).unwrap(),
            grain.floor(time.value(i)),
        );
        let v = f.value(i);
        let agg = out.entry(key).or_insert(Agg {
            count: 0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            values: Vec::new(),
        });
        agg.count += 1;
        agg.sum += v;
        agg.min = agg.min.min(v);
        agg.max = agg.max.max(v);
        agg.values.push(v);
    }
    out
}

/// Per (host, bucket) the rollup rows of `m`'s rollup table at `grain`
/// merged, with the number of partial rows each had and the merged sketch.
fn rollup_aggregates(store: &Store, grain: RollupGrain) -> BTreeMap<Key, (Agg, usize, DDSketch)> {
    let batch = all(store, &grain.table_name("m"));
    let col = |name: &str| std::sync::Arc::clone(batch.column_by_name(name).unwrap());
    let host = col("host");
    let time = col("time");
    let time = time
        .as_any()
        .downcast_ref::<TimestampNanosecondArray>()
        .unwrap();
    let count = col("f_count");
    let count = count.as_any().downcast_ref::<UInt64Array>().unwrap();
    let [sum, min, max] = ["f_sum", "f_min", "f_max"].map(|n| {
        col(n)
            .as_any()
            .downcast_ref::<Float64Array>()
            .unwrap()
            .clone()
    });
    let sketches = col("f_sketch");
    let sketches = sketches.as_any().downcast_ref::<BinaryArray>().unwrap();
    let mut out: BTreeMap<Key, (Agg, usize, DDSketch)> = BTreeMap::new();
    for i in 0..batch.num_rows() {
        if count.is_null(i) {
            continue;
        }
        let key = (array_value_to_string(&host, i).unwrap(), time.value(i));
        assert_eq!(key.1 % grain.nanos(), 0, "rollup times start buckets");
        let (agg, parts, sketch) = out.entry(key).or_insert((
            Agg {
                count: 0,
                sum: 0.0,
                min: f64::INFINITY,
                max: f64::NEG_INFINITY,
                values: Vec::new(),
            },
            0,
            DDSketch::default(),
        ));
        agg.count += count.value(i);
        agg.sum += sum.value(i);
        agg.min = agg.min.min(min.value(i));
        agg.max = agg.max.max(max.value(i));
        *parts += 1;
        sketch
            .merge(&DDSketch::decode(sketches.value(i)).unwrap())
            .unwrap();
    }
    out
}

/// Writes `rows` points per host for 3 hosts, 37 s apart from `start` (s),
/// with values that differ by host and time.
fn write(store: &Store, start: i64, rows: i64) {
    let mut body = String::new();
    for i in 0..rows {
        for h in 0..3 {
            let t = start + i * 37;
            let v = ((i * 7919 + h * 104_729) % 1000) as f64 / 10.0 + 1.0;
            body.push_str(&format!("m,host=h{h} f={v},ok={} {t}\n", i % 5 != 0));
        }
    }
    store
        .write_lines("db", body.as_bytes(), Precision::Seconds)
        .unwrap();
}

/// Checks both grains; returns how many partial rows (beyond one per
/// series and bucket) they hold.
fn assert_rollups_match_raw(store: &Store) -> usize {
    RollupGrain::ALL
        .into_iter()
        .map(|grain| assert_grain_matches_raw(store, grain))
        .sum()
}

fn assert_grain_matches_raw(store: &Store, grain: RollupGrain) -> usize {
    let raw = raw_aggregates(store, grain);
    let rolled = rollup_aggregates(store, grain);
    assert_eq!(
        raw.keys().collect::<Vec<_>>(),
        rolled.keys().collect::<Vec<_>>(),
        "the same series and buckets ({grain:?})"
    );
    let mut partials = 0;
    for (key, want) in &raw {
        let (got, parts, sketch) = &rolled[key];
        partials += parts - 1;
        assert_eq!(got.count, want.count, "{key:?}");
        assert!(
            (got.sum - want.sum).abs() < 1e-9 * want.sum.abs().max(1.0),
            "{key:?}"
        );
        assert_eq!(got.min, want.min, "{key:?}");
        assert_eq!(got.max, want.max, "{key:?}");
        assert_eq!(sketch.count(), want.count, "{key:?}");
        let mut sorted = want.values.clone();
        sorted.sort_by(f64::total_cmp);
        let exact = sorted[(sorted.len() - 1) / 2];
        let estimate = sketch.quantile(0.5).unwrap().unwrap();
        // The sketch's median is within 1 % of a rank-neighbouring value.
        let near = sorted.iter().any(|v| ((estimate - v) / v).abs() <= 0.0101);
        assert!(near, "{key:?}: median {estimate} vs exact {exact}");
    }
    partials
}

#[test]
fn partial_rollups_across_persists_and_memory_add_up_to_the_raw_aggregates() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    // Three writes, each persisted, overlapping the same half-hours, then
    // a fourth left in memory: every half-hour has partial rollups.
    let t0 = 1_700_000_000 - 1_700_000_000 % 86_400 - 3_600;
    for round in 0..3 {
        write(&store, t0 + round * 11, 300);
        let summary = store.persist().unwrap();
        assert_eq!(
            summary.rollup_files, 4,
            "a rollup file per table, grain and day (two days)"
        );
    }
    write(&store, t0 + 33, 300);
    assert!(store.buffered_rows() > 0);
    assert!(store.table_names("db").contains(&"m_30m".to_owned()));
    assert!(store.table_names("db").contains(&"m_1d".to_owned()));
    assert_eq!(raw_aggregates(&store, RollupGrain::Day).len(), 3 * 2);
    let partials = assert_rollups_match_raw(&store);
    assert!(partials > 0, "the test must exercise partial rollups");

    // Booleans: count and sum (trues), no sketch.
    let schema = store.table_schema("db", "m_30m").unwrap();
    assert!(schema.column_with_name("ok_sum").is_some());
    assert!(schema.column_with_name("ok_sketch").is_none());

    // Compaction merges partials into one row per series and bucket;
    // the totals stay the same, also across a restart.
    store.persist().unwrap();
    let before = store.rollup_files().len();
    store.compact().unwrap();
    assert!(store.rollup_files().len() < before);
    drop(store);
    let store = open(dir.path());
    assert_eq!(
        assert_rollups_match_raw(&store),
        0,
        "merged into one row each"
    );
}

#[test]
fn rollups_keep_their_own_retention() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    // Five days ago and now.
    write(&store, now - 5 * 86_400, 100);
    write(&store, now - 600, 10);
    store.persist().unwrap();
    store
        .set_retention("db", Some(Duration::from_secs(2 * 86_400)))
        .unwrap();
    store
        .set_rollup_retention("db", Some(Duration::from_secs(30 * 86_400)))
        .unwrap();
    store.expire().unwrap();
    let raw = all(&store, "m");
    assert_eq!(raw.num_rows(), 30, "old raw rows are gone");
    let rollups = rollup_aggregates(&store, RollupGrain::HalfHour);
    let old = rollups
        .keys()
        .filter(|(_, t)| *t < (now - 86_400) * 1_000_000_000)
        .count();
    assert!(old > 0, "rollups of the old rows remain");

    // A shorter rollup retention drops them (files too), raw rows stay.
    store
        .set_rollup_retention("db", Some(Duration::from_secs(86_400)))
        .unwrap();
    store.expire().unwrap();
    assert!(rollup_aggregates(&store, RollupGrain::HalfHour)
        .keys()
        .all(|(_, t)| *t >= (now - 86_400) * 1_000_000_000 - ROLLUP_NANOS));
    assert!(rollup_aggregates(&store, RollupGrain::Day)
        .keys()
        .all(|(_, t)| *t >= (now - 86_400) * 1_000_000_000 - RollupGrain::Day.nanos()));
    assert!(store
        .rollup_files()
        .iter()
        .all(|f| f.max_time >= (now - 2 * 86_400) * 1_000_000_000));
    assert_eq!(all(&store, "m").num_rows(), 30);
    drop(store);
    let store = open(dir.path());
    assert_eq!(
        store.catalog().databases["db"].rollup_retention_secs,
        Some(86_400)
    );
}

#[test]
fn a_raw_table_named_like_a_rollup_table_wins() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    write(&store, 1_700_000_000, 10);
    store
        .write_lines("db", b"m_30m,host=x g=1 1700000000", Precision::Seconds)
        .unwrap();
    store.persist().unwrap();
    let batch = all(&store, "m_30m");
    assert_eq!(batch.num_rows(), 1, "the raw table m_30m");
    assert!(batch.column_by_name("g").is_some());
    let names = store.table_names("db");
    assert_eq!(names.iter().filter(|n| *n == "m_30m").count(), 1);
    assert!(names.contains(&"m_30m_30m".to_owned()));
    assert!(names.contains(&"m_1d".to_owned()));
    assert_eq!(
        all(&store, "m_1d").num_rows(),
        3,
        "one row per host and day"
    );
    assert!(store.table_schema("db", "nothing_30m").is_none());
}

#[test]
fn late_rows_past_the_raw_retention_still_reach_the_rollups() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store.create_database("db").unwrap();
    store
        .set_retention("db", Some(Duration::from_secs(2 * 86_400)))
        .unwrap();
    store
        .set_rollup_retention("db", Some(Duration::from_secs(30 * 86_400)))
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    write(&store, now - 5 * 86_400, 20);
    store.persist().unwrap();
    assert_eq!(all(&store, "m").num_rows(), 0, "past the raw retention");
    for grain in RollupGrain::ALL {
        let rolled: u64 = rollup_aggregates(&store, grain)
            .values()
            .map(|(a, _, _)| a.count)
            .sum();
        assert_eq!(rolled, 60, "within the rollup retention ({grain:?})");
    }
    assert!(store.files().is_empty());
    assert!(!store.rollup_files().is_empty());
}

#[test]
fn days_stored_before_daily_rollups_get_them_from_their_half_hours() {
    let dir = tempfile::tempdir().unwrap();
    let t0 = 1_700_000_000 - 1_700_000_000 % 86_400 - 3_600;
    {
        let store = open(dir.path());
        write(&store, t0, 300);
        store.persist().unwrap();
    }
    // What an older weir left: raw and half-hour files, no daily ones.
    let path = dir.path().join("manifest.json");
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    manifest["files"]
        .as_array_mut()
        .unwrap()
        .retain(|f| f["table"] != "m_1d");
    std::fs::write(&path, serde_json::to_vec(&manifest).unwrap()).unwrap();

    let store = open(dir.path());
    assert!(store.rollups_cover("db", "m", RollupGrain::HalfHour));
    assert!(!store.rollups_cover("db", "m", RollupGrain::Day));
    assert!(rollup_aggregates(&store, RollupGrain::Day).is_empty());
    // A late row for such a day starts no daily file of its own…
    write(&store, t0 + 5, 1);
    store.persist().unwrap();
    assert!(!store.rollups_cover("db", "m", RollupGrain::Day));
    // …compaction derives each day's daily rows from all its half-hours.
    while store.compact().unwrap() > 0 {}
    assert!(store.rollups_cover("db", "m", RollupGrain::Day));
    assert_eq!(assert_rollups_match_raw(&store), 0);
    drop(store);
    let store = open(dir.path());
    assert!(store.rollups_cover("db", "m", RollupGrain::Day));
    assert_grain_matches_raw(&store, RollupGrain::Day);
}

#[test]
fn a_database_with_rollups_off_persists_none_and_is_rolled_up_by_compaction_once_they_are_on() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let day = 1_700_006_400; // a UTC midnight
    write(&store, day, 50);
    store.persist().unwrap();
    assert!(store.keeps_rollups("db"));
    assert!(store.rollups_cover("db", "m", RollupGrain::HalfHour));
    let rollup_files = store.rollup_files().len();
    assert!(rollup_files > 0);

    // Off: more rows of the same day, which has rollup files, persist raw
    // only, and the rollups no longer cover the table.
    store.set_rollups("db", false).unwrap();
    write(&store, day + 3_600, 50);
    let rolled_rows = |store: &Store| rolled_rows(store, RollupGrain::HalfHour);
    assert_eq!(rolled_rows(&store), 150, "rows in memory are not rolled up");
    store.persist().unwrap();
    assert!(!store.rollups_cover("db", "m", RollupGrain::HalfHour));
    // And the next day.
    write(&store, day + 86_400, 50);
    store.persist().unwrap();
    assert_eq!(
        store.rollup_files().len(),
        rollup_files,
        "no rollups written"
    );
    assert_eq!(rolled_rows(&store), 150);
    assert!(store.files().iter().filter(|f| f.unrolled).count() >= 2);
    for grain in RollupGrain::ALL {
        assert!(!store.rollups_cover("db", "m", grain), "{grain:?}");
    }

    // The setting survives a restart; compaction keeps the mark.
    drop(store);
    let store = open(dir.path());
    assert!(!store.keeps_rollups("db"));
    assert!(store.compact().unwrap() > 0);
    assert!(store.files().iter().filter(|f| f.unrolled).count() >= 2);
    assert!(!store.rollups_cover("db", "m", RollupGrain::HalfHour));

    // On again: persists write rollups, which still do not cover the rows
    // persisted meanwhile.
    store.set_rollups("db", true).unwrap();
    write(&store, day + 2 * 86_400, 50);
    store.persist().unwrap();
    assert!(store.rollup_files().len() > rollup_files);
    assert!(!store.rollups_cover("db", "m", RollupGrain::HalfHour));
    assert_eq!(
        all(&store, "m").num_rows(),
        4 * 150,
        "every raw row is kept"
    );
    // Compaction rolls up the days persisted meanwhile from their rows
    // (day + 1 is one file: rolled up, kept as it is).
    store.compact().unwrap();
    assert!(store.files().iter().all(|f| !f.unrolled));
    assert_eq!(all(&store, "m").num_rows(), 4 * 150);
    assert_eq!(covered(&store), [true, true]);
    assert_eq!(rolled_rows(&store), 4 * 150);
    assert_eq!(assert_rollups_match_raw(&store), 0);
}

/// The rollups' total row count at `grain`.
fn rolled_rows(store: &Store, grain: RollupGrain) -> u64 {
    let rollups = all(store, &grain.table_name("m"));
    let rows = rollups.column_by_name("_rows").unwrap();
    let rows = rows.as_any().downcast_ref::<UInt64Array>().unwrap();
    rows.iter().flatten().sum()
}

fn covered(store: &Store) -> [bool; 2] {
    RollupGrain::ALL.map(|grain| store.rollups_cover("db", "m", grain))
}

#[test]
fn points_written_again_are_never_rolled_up_twice_once_compaction_rebuilds_their_day() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let day = 1_700_006_400; // a UTC midnight
    write(&store, day, 200);
    store.persist().unwrap();
    // Later rows of the same series, and a new series starting earlier
    // than the others' latest rows: nothing repeats.
    write(&store, day + 200 * 37, 50);
    store
        .write_lines(
            "db",
            format!("m,host=late f=5 {}\n", day + 60).as_bytes(),
            Precision::Seconds,
        )
        .unwrap();
    store.persist().unwrap();
    assert!(store.files().iter().all(|f| !f.repeats));
    assert_eq!(covered(&store), [true, true]);
    assert_eq!(
        assert_rollups_match_raw(&store),
        2 * 3,
        "a partial row per host and grain"
    );

    // The next day, then a batch of the first delivered again (its
    // acknowledgement lost): the same points.
    write(&store, day + 86_400, 10);
    store.persist().unwrap();
    write(&store, day, 200);
    assert_eq!(
        covered(&store),
        [false, false],
        "in memory, it would count twice"
    );
    store.persist().unwrap();
    assert!(store.files().iter().any(|f| f.repeats));
    assert_eq!(covered(&store), [false, false]);
    // Questions about the next day alone are still answered by rollups.
    let nanos = |s: i64| s * 1_000_000_000;
    let next_day = nanos(day + 86_400)..nanos(day + 2 * 86_400);
    let first_hour = nanos(day)..nanos(day + 3_600);
    for grain in RollupGrain::ALL {
        assert!(store.rollups_cover_range("db", "m", grain, next_day.clone()));
        assert!(!store.rollups_cover_range("db", "m", grain, first_hour.clone()));
    }
    // What the mark protects from: raw scans deduplicate, rollups add up.
    let raw_rows = all(&store, "m").num_rows() as u64;
    assert_eq!(raw_rows, 3 * 250 + 1 + 3 * 10);
    assert_eq!(rolled_rows(&store, RollupGrain::Day), raw_rows + 3 * 200);

    // Compaction merges the day whole and rebuilds its rollups from it,
    // also after a restart.
    drop(store);
    let store = open(dir.path());
    assert_eq!(covered(&store), [false, false]);
    assert!(store.compact().unwrap() > 0);
    assert!(store.files().iter().all(|f| !f.repeats));
    assert_eq!(covered(&store), [true, true]);
    for grain in RollupGrain::ALL {
        assert_eq!(rolled_rows(&store, grain), raw_rows, "{grain:?}");
    }
    assert_eq!(
        assert_rollups_match_raw(&store),
        0,
        "one row per series and bucket"
    );

    // A field of an existing point sent on its own, later: the same point.
    store
        .write_lines(
            "db",
            format!("m,host=h1 ok=true {day}\n").as_bytes(),
            Precision::Seconds,
        )
        .unwrap();
    store.persist().unwrap();
    assert_eq!(covered(&store), [false, false]);
    store.compact().unwrap();
    assert_eq!(covered(&store), [true, true]);
    assert_eq!(rolled_rows(&store, RollupGrain::Day), raw_rows);
}
