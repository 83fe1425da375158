//! Where predictions go: the [`PredictionSink`] trait and [`Rolling`], the one
//! implementation of it, over a [`Storage`] backend: a local directory ([`local::LocalDir`])
//! or an object store such as S3, GCS or Azure ([`object::ObjectDir`]), chosen by the URL
//! of `sink.output_dir` ([`open`]).
//!
//! Durability protocol (what makes crash recovery exact), the same for every backend:
//! - rows of one source partition are appended in input-offset order;
//! - a file becomes visible under its final name `TOPIC-PARTITION-FIRSTOFFSET.parquet` only
//!   once it is complete and durable (local: temporary name, fsync, rename, fsync of the
//!   directory; object store: one PUT or a completed multipart upload, both atomic);
//! - rolling closes *every* open file of the partition at once, and
//!   [`PredictionSink::first_open_offset`] says below which offset every row is durable;
//! - on (re)assignment [`PredictionSink::discard_after`] removes the partition's incomplete
//!   files (temporary files, multipart uploads) and the files whose first offset is at or
//!   past the committed offset. So a committed offset must never fall *inside* a closed
//!   file (first offset < committed <= last offset): the rows of that file at or past it
//!   would be kept and written again. [`ClosedFile`] reports each file's offset range and
//!   the offset ledger (`pipeline::ledger`) never commits inside one.

pub mod local;
pub mod object;

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use chrono::Datelike;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use trendscore_schemas::{prediction_schema, predictions_to_batch, PredictionRow};

use crate::config::{PartitionBy, SinkConfig};
use crate::{io_err, Result, ScorerError};

pub use local::{LocalDir, ParquetDirSink};
pub use object::ObjectDir;

/// One input partition: the unit of offsets, files and recovery.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SourceKey {
    /// Input topic (`backfill` for offline runs).
    pub topic: String,
    /// Input partition.
    pub partition: i32,
}

/// A file made durable.
#[derive(Clone, Debug, PartialEq)]
pub struct ClosedFile {
    /// Where it is: a local path or an object URL.
    pub location: String,
    /// The partition it belongs to.
    pub source: SourceKey,
    /// Rows in it.
    pub rows: usize,
    /// Input offset of its first row (the offset in its name).
    pub first_offset: i64,
    /// Input offset of its last row.
    pub last_offset: i64,
}

/// A destination for prediction rows with the durability protocol of this module.
pub trait PredictionSink: Send {
    /// Appends `rows` of `source`; `offsets[i]` is the input offset of `rows[i]`, ascending.
    /// May close files (returned) when the rolling policy or the open-file cap says so.
    fn write(
        &mut self,
        source: &SourceKey,
        rows: &[PredictionRow],
        offsets: &[i64],
        now: Instant,
    ) -> Result<Vec<ClosedFile>>;
    /// Closes the files of every partition that holds a file due at `now` (age).
    fn roll_due(&mut self, now: Instant) -> Result<Vec<ClosedFile>>;
    /// Closes every open file of `source`.
    fn close_source(&mut self, source: &SourceKey) -> Result<Vec<ClosedFile>>;
    /// Closes every open file.
    fn close_all(&mut self) -> Result<Vec<ClosedFile>>;
    /// The first input offset of `source` with rows in an open (not yet durable) file;
    /// `None` when `source` has no open file. Every row of `source` below it is durable.
    fn first_open_offset(&self, source: &SourceKey) -> Option<i64>;
    /// True while `source` has an open (not yet durable) file.
    fn has_open(&self, source: &SourceKey) -> bool {
        self.first_open_offset(source).is_some()
    }
    /// Removes `source`'s temporary files and files whose first offset >= `committed`;
    /// returns how many files were removed. Call only while `source` has no open file.
    fn discard_after(&mut self, source: &SourceKey, committed: i64) -> Result<usize>;
}

/// The sink `config.output_dir` names: `s3://`, `gs://`, `az://` (and the other object
/// store URLs) write to that object store, `file:///path` or a plain path to a local
/// directory.
pub fn open(config: &SinkConfig) -> Result<Box<dyn PredictionSink>> {
    match object::ObjectDir::from_config(config)? {
        Some(store) => Ok(Box::new(Rolling::new(config, store)?)),
        None => Ok(Box::new(ParquetDirSink::local(config)?)),
    }
}

/// Where the bytes of files go: the backend half of a sink.
pub trait Storage: Send {
    /// The output one open file writes to.
    type Out: std::io::Write + Send;
    /// Opens the output of the file `name` in the Hive directory `dir` ("" = the root).
    fn create(&mut self, dir: &str, name: &str) -> Result<Self::Out>;
    /// Called after rows were written: may upload what is complete (multipart parts).
    fn progress(&mut self, _out: &mut Self::Out) -> Result<()> {
        Ok(())
    }
    /// Makes a closed file durable under its final name; returns its location.
    fn commit(&mut self, out: Self::Out) -> Result<String>;
    /// Removes `source`'s incomplete files and its files whose first offset >= `committed`;
    /// returns how many were removed.
    fn discard_after(&mut self, source: &SourceKey, committed: i64) -> Result<usize>;
    /// A description for errors and logs (the root path or URL).
    fn describe(&self) -> String;
}

/// Writer settings every backend shares.
pub fn writer_properties(config: &SinkConfig) -> Result<WriterProperties> {
    let level = ZstdLevel::try_new(config.zstd_level)
        .map_err(|e| ScorerError::Config(format!("sink.zstd_level: {e}")))?;
    Ok(WriterProperties::builder()
        .set_compression(Compression::ZSTD(level))
        .set_max_row_group_size(config.row_group_rows.max(1))
        .set_created_by("trendscore-scorer".into())
        .build())
}

struct OpenFile<O: std::io::Write + Send> {
    writer: ArrowWriter<O>,
    first_offset: i64,
    last_offset: i64,
    rows: usize,
    opened_at: Instant,
}

/// The sink: Hive directories, rolling, the open-file cap and the durability protocol of
/// this module, over any [`Storage`].
pub struct Rolling<S: Storage> {
    storage: S,
    by: PartitionBy,
    policy: RollingPolicy,
    max_open: usize,
    props: WriterProperties,
    open: HashMap<(SourceKey, String), OpenFile<S::Out>>,
}

impl<S: Storage> Rolling<S> {
    /// A sink over `storage` with the layout and rolling of `config`.
    pub fn new(config: &SinkConfig, storage: S) -> Result<Self> {
        Ok(Self {
            storage,
            by: config.partition_by,
            policy: RollingPolicy::from_config(config),
            max_open: config.max_open_files.max(1),
            props: writer_properties(config)?,
            open: HashMap::new(),
        })
    }

    /// Number of open files.
    pub fn open_files(&self) -> usize {
        self.open.len()
    }

    fn parquet_err(&self, source: parquet::errors::ParquetError) -> ScorerError {
        ScorerError::Parquet {
            path: self.storage.describe().into(),
            source,
        }
    }

    fn open_file(
        &mut self,
        source: &SourceKey,
        dir: &str,
        first_offset: i64,
        now: Instant,
    ) -> Result<()> {
        let out = self.storage.create(dir, &file_name(source, first_offset))?;
        let writer = ArrowWriter::try_new(out, prediction_schema(), Some(self.props.clone()))
            .map_err(|e| self.parquet_err(e))?;
        self.open.insert(
            (source.clone(), dir.to_string()),
            OpenFile {
                writer,
                first_offset,
                last_offset: first_offset,
                rows: 0,
                opened_at: now,
            },
        );
        Ok(())
    }

    fn finish(&mut self, key: (SourceKey, String), f: OpenFile<S::Out>) -> Result<ClosedFile> {
        let (rows, first_offset, last_offset) = (f.rows, f.first_offset, f.last_offset);
        let out = f.writer.into_inner().map_err(|e| self.parquet_err(e))?;
        let location = self.storage.commit(out)?;
        Ok(ClosedFile {
            location,
            source: key.0,
            rows,
            first_offset,
            last_offset,
        })
    }

    fn close_where(&mut self, pred: impl Fn(&SourceKey) -> bool) -> Result<Vec<ClosedFile>> {
        let mut keys: Vec<(SourceKey, String)> =
            self.open.keys().filter(|k| pred(&k.0)).cloned().collect();
        keys.sort();
        let mut closed = Vec::with_capacity(keys.len());
        for key in keys {
            if let Some(f) = self.open.remove(&key) {
                closed.push(self.finish(key, f)?);
            }
        }
        Ok(closed)
    }
}

impl<S: Storage> PredictionSink for Rolling<S> {
    fn write(
        &mut self,
        source: &SourceKey,
        rows: &[PredictionRow],
        offsets: &[i64],
        now: Instant,
    ) -> Result<Vec<ClosedFile>> {
        if rows.len() != offsets.len() {
            return Err(ScorerError::Internal(format!(
                "sink.write: {} rows but {} offsets",
                rows.len(),
                offsets.len()
            )));
        }
        let mut closed = Vec::new();
        let mut i = 0;
        while i < rows.len() {
            // A run of consecutive rows for one directory keeps offset order within files.
            let dir = hive_dir(self.by, &rows[i]);
            let mut j = i + 1;
            while j < rows.len() && hive_dir(self.by, &rows[j]) == dir {
                j += 1;
            }
            let key = (source.clone(), dir.clone());
            if !self.open.contains_key(&key) {
                if self.open.len() >= self.max_open {
                    // Close the partition holding the oldest open file.
                    if let Some(oldest) = self
                        .open
                        .iter()
                        .min_by_key(|(_, f)| f.opened_at)
                        .map(|(k, _)| k.0.clone())
                    {
                        closed.extend(self.close_where(|s| *s == oldest)?);
                    }
                }
                self.open_file(source, &dir, offsets[i], now)?;
            }
            let max_rows = self.policy.max_rows;
            let f = self
                .open
                .get_mut(&key)
                .ok_or_else(|| ScorerError::Internal("open file vanished".into()))?;
            // Never put more than max_rows into one file.
            let j = j.min(i + max_rows.saturating_sub(f.rows).max(1));
            let batch = predictions_to_batch(&rows[i..j])?;
            if let Err(e) = f.writer.write(&batch) {
                return Err(self.parquet_err(e));
            }
            f.rows += j - i;
            f.last_offset = offsets[j - 1];
            let bytes = (f.writer.bytes_written() + f.writer.in_progress_size()) as u64;
            let roll =
                self.policy
                    .should_roll(f.rows, bytes, now.saturating_duration_since(f.opened_at));
            self.storage.progress(f.writer.inner_mut())?;
            if roll {
                closed.extend(self.close_where(|s| s == source)?);
            }
            i = j;
        }
        Ok(closed)
    }

    fn roll_due(&mut self, now: Instant) -> Result<Vec<ClosedFile>> {
        let mut due: Vec<SourceKey> = self
            .open
            .iter()
            .filter(|(_, f)| {
                self.policy
                    .should_roll(0, 0, now.saturating_duration_since(f.opened_at))
            })
            .map(|(k, _)| k.0.clone())
            .collect();
        due.sort();
        due.dedup();
        let mut closed = Vec::new();
        for s in due {
            closed.extend(self.close_where(|k| *k == s)?);
        }
        Ok(closed)
    }

    fn close_source(&mut self, source: &SourceKey) -> Result<Vec<ClosedFile>> {
        self.close_where(|s| s == source)
    }

    fn close_all(&mut self) -> Result<Vec<ClosedFile>> {
        self.close_where(|_| true)
    }

    fn first_open_offset(&self, source: &SourceKey) -> Option<i64> {
        self.open
            .iter()
            .filter(|(k, _)| &k.0 == source)
            .map(|(_, f)| f.first_offset)
            .min()
    }

    fn discard_after(&mut self, source: &SourceKey, committed: i64) -> Result<usize> {
        if self.has_open(source) {
            return Err(ScorerError::Internal(format!(
                "discard_after({source:?}) with open files"
            )));
        }
        self.storage.discard_after(source, committed)
    }
}

/// When a file is closed: the pure rolling rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RollingPolicy {
    /// Close at this many rows.
    pub max_rows: usize,
    /// Close at about this many bytes (written plus buffered).
    pub max_bytes: u64,
    /// Close this long after opening.
    pub max_age: Duration,
}

impl RollingPolicy {
    /// From the sink config.
    pub fn from_config(c: &SinkConfig) -> Self {
        Self {
            max_rows: c.max_rows_per_file.max(1),
            max_bytes: c.max_bytes_per_file.max(1),
            max_age: Duration::from_millis(c.max_file_age_ms),
        }
    }

    /// Whether a file with these numbers should be closed now.
    pub fn should_roll(&self, rows: usize, bytes: u64, age: Duration) -> bool {
        rows >= self.max_rows || bytes >= self.max_bytes || age >= self.max_age
    }
}

/// The Hive-style directory of a prediction row, relative to the output directory.
pub fn hive_dir(by: PartitionBy, row: &PredictionRow) -> String {
    match by {
        PartitionBy::Week => format!("week={}", row.week.format("%Y-%m-%d")),
        PartitionBy::Year => format!("year={}", row.week.year()),
        PartitionBy::None => String::new(),
    }
}

/// The final file name of a file.
pub fn file_name(source: &SourceKey, first_offset: i64) -> String {
    format!(
        "{}-{}-{:020}.parquet",
        source.topic, source.partition, first_offset
    )
}

/// Parses `TOPIC-PARTITION-OFFSET.parquet` or its temporary form `.NAME.inprogress`;
/// returns (topic, partition, first offset, is_temporary).
pub fn parse_file_name(name: &str) -> Option<(String, i32, i64, bool)> {
    let (base, temp) = match name
        .strip_prefix('.')
        .and_then(|n| n.strip_suffix(".inprogress"))
    {
        Some(b) => (b, true),
        None => (name, false),
    };
    let stem = base.strip_suffix(".parquet")?;
    let mut parts = stem.rsplitn(3, '-');
    let offset: i64 = parts.next()?.parse().ok()?;
    let partition: i32 = parts.next()?.parse().ok()?;
    let topic = parts.next()?.to_string();
    Some((topic, partition, offset, temp))
}

/// Reads every prediction under `dir` (final files only, recursively), sorted by
/// (ticker, week, source partition, source offset). For tests and tools.
pub fn read_all_predictions(dir: &Path) -> Result<Vec<PredictionRow>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).map_err(|e| io_err(&d, e))? {
            let entry = entry.map_err(|e| io_err(&d, e))?;
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if matches!(
                parse_file_name(&entry.file_name().to_string_lossy()),
                Some((_, _, _, false))
            ) {
                out.extend(trendscore_schemas::read_predictions(&path)?);
            }
        }
    }
    out.sort_by(|a, b| {
        (&a.ticker, a.week, a.source_partition, a.source_offset).cmp(&(
            &b.ticker,
            b.week,
            b.source_partition,
            b.source_offset,
        ))
    });
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn pred(ticker: &str, week: i64, offset: i64) -> PredictionRow {
        let w = NaiveDate::from_ymd_opt(2024, 1, 5).unwrap() + chrono::Duration::weeks(week);
        PredictionRow {
            ticker: ticker.into(),
            week: w,
            model_version: "v1".into(),
            trend_7d: 0.1,
            p_up_7d: 0.6,
            trend_30d: -0.2,
            p_up_30d: 0.4,
            attention: vec![1.0 / 12.0; 12],
            window_start: w - chrono::Duration::weeks(11),
            scored_at: trendscore_schemas::now_ms(),
            source_partition: Some(0),
            source_offset: Some(offset),
        }
    }

    fn config(dir: &Path, by: PartitionBy) -> SinkConfig {
        SinkConfig {
            output_dir: dir.to_path_buf(),
            partition_by: by,
            max_rows_per_file: 3,
            max_file_age_ms: 1000,
            max_open_files: 2,
            ..SinkConfig::default()
        }
    }

    fn src(p: i32) -> SourceKey {
        SourceKey {
            topic: "rows".into(),
            partition: p,
        }
    }

    #[test]
    fn rolling_policy_rules() {
        let p = RollingPolicy {
            max_rows: 10,
            max_bytes: 100,
            max_age: Duration::from_secs(5),
        };
        assert!(!p.should_roll(9, 99, Duration::from_secs(4)));
        assert!(p.should_roll(10, 0, Duration::ZERO));
        assert!(p.should_roll(0, 100, Duration::ZERO));
        assert!(p.should_roll(0, 0, Duration::from_secs(5)));
    }

    #[test]
    fn file_names_round_trip() {
        let n = file_name(
            &SourceKey {
                topic: "weekly-rows".into(),
                partition: 3,
            },
            42,
        );
        assert_eq!(n, "weekly-rows-3-00000000000000000042.parquet");
        assert_eq!(
            parse_file_name(&n),
            Some(("weekly-rows".into(), 3, 42, false))
        );
        assert_eq!(
            parse_file_name(&format!(".{n}.inprogress")),
            Some(("weekly-rows".into(), 3, 42, true))
        );
        assert_eq!(parse_file_name("notes.txt"), None);
    }

    #[test]
    fn rows_roll_and_files_are_readable_in_hive_dirs() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = ParquetDirSink::local(&config(dir.path(), PartitionBy::Week)).unwrap();
        let t0 = Instant::now();
        let rows: Vec<_> = (0..4).map(|i| pred("A", 0, i)).collect();
        let closed = s.write(&src(0), &rows, &[0, 1, 2, 3], t0).unwrap();
        // 3 rows roll, the 4th opens a new file
        assert_eq!(closed.len(), 1);
        assert_eq!(closed[0].rows, 3);
        assert!(closed[0]
            .location
            .ends_with("week=2024-01-05/rows-0-00000000000000000000.parquet"));
        assert!(s.has_open(&src(0)));
        assert_eq!(
            s.first_open_offset(&src(0)),
            Some(3),
            "rows 0..3 are durable"
        );
        // no final file for the open one yet, only a temp
        let wdir = dir.path().join("week=2024-01-05");
        assert!(wdir
            .join(".rows-0-00000000000000000003.parquet.inprogress")
            .exists());
        assert!(!wdir.join("rows-0-00000000000000000003.parquet").exists());
        // age roll on the timer
        assert!(s
            .roll_due(t0 + Duration::from_millis(999))
            .unwrap()
            .is_empty());
        let closed = s.roll_due(t0 + Duration::from_millis(1000)).unwrap();
        assert_eq!(closed.len(), 1);
        assert!(!s.has_open(&src(0)));
        let back = read_all_predictions(dir.path()).unwrap();
        assert_eq!(back.len(), 4);
        assert_eq!(back, rows);
    }

    #[test]
    fn open_file_cap_closes_the_oldest_partition() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = ParquetDirSink::local(&config(dir.path(), PartitionBy::Year)).unwrap();
        let t0 = Instant::now();
        s.write(&src(0), &[pred("A", 0, 0)], &[0], t0).unwrap();
        s.write(
            &src(1),
            &[pred("B", 0, 0)],
            &[0],
            t0 + Duration::from_millis(1),
        )
        .unwrap();
        assert_eq!(s.open_files(), 2);
        let closed = s
            .write(
                &src(2),
                &[pred("C", 0, 0)],
                &[0],
                t0 + Duration::from_millis(2),
            )
            .unwrap();
        assert_eq!(closed.len(), 1);
        assert_eq!(closed[0].source, src(0));
        assert_eq!(s.open_files(), 2);
    }

    #[test]
    fn one_partition_many_dirs_rolls_together() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = config(dir.path(), PartitionBy::Week);
        cfg.max_open_files = 10;
        let mut s = ParquetDirSink::local(&cfg).unwrap();
        let t0 = Instant::now();
        let rows = vec![
            pred("A", 0, 0),
            pred("B", 1, 1),
            pred("A", 0, 2),
            pred("C", 0, 3),
        ];
        let closed = s.write(&src(0), &rows, &[0, 1, 2, 3], t0).unwrap();
        // week 0 reaches 3 rows at offset 3 -> both files of the partition close
        assert_eq!(closed.len(), 2);
        assert!(!s.has_open(&src(0)));
        assert_eq!(read_all_predictions(dir.path()).unwrap().len(), 4);
    }

    #[test]
    fn discard_after_removes_uncommitted_and_temp_files_only_of_that_partition() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = config(dir.path(), PartitionBy::None);
        cfg.max_rows_per_file = 2;
        cfg.max_open_files = 10;
        let mut s = ParquetDirSink::local(&cfg).unwrap();
        let t0 = Instant::now();
        let rows: Vec<_> = (0..6).map(|i| pred("A", i, i)).collect();
        s.write(&src(0), &rows, &[0, 1, 2, 3, 4, 5], t0).unwrap(); // files at 0, 2, 4
        s.write(&src(1), &rows[..2], &[0, 1], t0).unwrap(); // file at 0 of partition 1
        std::fs::write(
            dir.path()
                .join(".rows-0-00000000000000000009.parquet.inprogress"),
            b"x",
        )
        .unwrap();
        let removed = s.discard_after(&src(0), 2).unwrap();
        assert_eq!(removed, 3); // offsets 2 and 4, and the temp file
        let back = read_all_predictions(dir.path()).unwrap();
        assert_eq!(back.len(), 4); // partition 0 offsets 0,1 + partition 1 offsets 0,1
    }
}
