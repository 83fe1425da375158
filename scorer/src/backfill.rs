//! `scorer backfill`: scores weekly-rows files offline, a short driver over the same
//! [`crate::pipeline`] parts as `scorer run` (window rules, batching, scoring) and the same
//! sinks (local directory or object store), so the two give the same rows for the same
//! input (apart from the Kafka lineage columns, null here).
//!
//! Large histories:
//! - **Inputs**: files, directories (their `.parquet`, `.csv`, `.csv.gz` files) and globs.
//! - **Shards** (`--shard i/n`): a ticker belongs to shard `fnv1a64(ticker) % n` (FNV-1a,
//!   stable across versions and machines), so n machines (a Kubernetes indexed Job) split
//!   a backfill. Output files are named `backfill-N-I-FIRSTROW.parquet`: a run of shard
//!   `i/n` first removes exactly the files of `i/n` and never touches another shard's.
//! - **Memory** is bounded by the rows of the tickers in flight: a first pass reads only
//!   the ticker column and counts each ticker's rows; the shard's tickers are then scored
//!   in groups of at most `max_rows_in_memory` rows, each group read with a ticker filter
//!   (rows of other tickers are skipped before they are decoded). One group, one read, in
//!   the common case; a history larger than memory costs one read of the input per group.
//! - **Cores**: within a group the tickers are split across `threads` workers, each with
//!   its own model instance (single-threaded, so the workers do not fight over cores); one
//!   writer encodes the Parquet files.
//! - **Progress**: a progress bar on a terminal, a log line every 10 s otherwise.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use trendscore_infer::{load_model, BackendChoice, InferenceModel, LoadOptions};
use trendscore_schemas::{read_rows_where, ticker_counts, PredictionRow, WeeklyRow};

use crate::config::{GapPolicy, SinkConfig};
use crate::pipeline::{
    score_batch, BatchRule, Batcher, Lineage, PartitionWindows, ReadyWindow, Step,
};
use crate::sink::{self, PredictionSink, SourceKey};
use crate::validate::{Reason, ValidRow};
use crate::window::WindowStore;
use crate::{Result, ScorerError};

/// One shard of a backfill: tickers with `fnv1a64(ticker) % count == index`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// This shard, `0..count`.
    pub index: u32,
    /// Number of shards.
    pub count: u32,
}

impl Default for Shard {
    fn default() -> Self {
        Self { index: 0, count: 1 }
    }
}

impl std::str::FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let (i, n) = s
            .split_once('/')
            .ok_or_else(|| format!("shard {s:?}: expected I/N, e.g. 0/4"))?;
        let index: u32 = i.trim().parse().map_err(|e| format!("shard {s:?}: {e}"))?;
        let count: u32 = n.trim().parse().map_err(|e| format!("shard {s:?}: {e}"))?;
        if count == 0 || index >= count {
            return Err(format!("shard {s:?}: need 0 <= I < N"));
        }
        Ok(Self { index, count })
    }
}

/// FNV-1a, 64 bit: the stable ticker hash of shards.
pub fn fnv1a64(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

impl Shard {
    /// Whether `ticker` belongs to this shard.
    pub fn owns(&self, ticker: &str) -> bool {
        fnv1a64(ticker) % u64::from(self.count) == u64::from(self.index)
    }

    /// The sink source of this shard's files (`backfill-N-I-...`).
    pub fn source(&self) -> SourceKey {
        SourceKey {
            topic: format!("backfill-{}", self.count),
            partition: self.index as i32,
        }
    }
}

/// What `scorer backfill` does.
#[derive(Clone, Debug)]
pub struct BackfillOptions {
    /// The exported ONNX model.
    pub model: PathBuf,
    /// The backend to load it on.
    pub backend: BackendChoice,
    /// Input files, directories and globs.
    pub inputs: Vec<String>,
    /// Output location and layout.
    pub sink: SinkConfig,
    /// The shard to score.
    pub shard: Shard,
    /// Window gap policy.
    pub gap_policy: GapPolicy,
    /// Windows per inference call.
    pub batch: usize,
    /// Scoring threads; 0 = one per core.
    pub threads: usize,
    /// Most input rows in memory at once.
    pub max_rows_in_memory: usize,
    /// Draw a progress bar (else log lines).
    pub progress: bool,
}

/// What a backfill did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct BackfillReport {
    /// Input files read.
    pub files_in: usize,
    /// Input rows of this shard.
    pub rows_in: usize,
    /// Tickers of this shard.
    pub tickers: usize,
    /// Ticker groups scored (1 unless the shard exceeds `max_rows_in_memory`).
    pub groups: usize,
    /// Predictions written.
    pub scored: usize,
    /// Rows after a week gap.
    pub gaps: usize,
    /// Duplicate rows dropped (another date in the same ISO week as the ticker's newest).
    pub duplicates: usize,
    /// Rows older than the ticker's newest week (cannot happen after sorting; counted).
    pub late: usize,
    /// Files written.
    pub files: usize,
    /// Scoring threads used.
    pub threads: usize,
    /// Wall time, milliseconds.
    pub millis: u64,
}

/// The input files `inputs` name: files as given, the rows files of directories (not
/// recursive), glob matches; sorted, without repeats. None is an error.
pub fn expand_inputs(inputs: &[String]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for input in inputs {
        let p = Path::new(input);
        if p.is_dir() {
            let entries = std::fs::read_dir(p).map_err(|e| crate::io_err(p, e))?;
            for e in entries {
                let path = e.map_err(|e| crate::io_err(p, e))?.path();
                if path.is_file() && trendscore_schemas::is_rows_file(&path) {
                    out.push(path);
                }
            }
        } else if p.exists() {
            out.push(p.to_path_buf());
        } else {
            let matches = glob::glob(input)
                .map_err(|e| ScorerError::Config(format!("--input {input:?}: {e}")))?;
            let before = out.len();
            for m in matches {
                let path = m.map_err(|e| ScorerError::Config(format!("--input {input:?}: {e}")))?;
                if path.is_file() {
                    out.push(path);
                }
            }
            if out.len() == before {
                return Err(ScorerError::Config(format!(
                    "--input {input:?}: no such file, directory or matching file"
                )));
            }
        }
    }
    out.sort();
    out.dedup();
    if out.is_empty() {
        return Err(ScorerError::Config("--input: no input files".into()));
    }
    Ok(out)
}

/// Packs tickers (name, rows) into groups of at most `max_rows` rows (a ticker larger than
/// that is a group of its own); ascending by name within and across groups.
pub fn plan_groups(mut tickers: Vec<(String, usize)>, max_rows: usize) -> Vec<Vec<String>> {
    tickers.sort();
    let mut groups: Vec<Vec<String>> = Vec::new();
    let mut rows = 0;
    for (t, n) in tickers {
        if groups.is_empty() || rows + n > max_rows.max(1) {
            groups.push(Vec::new());
            rows = 0;
        }
        rows += n;
        groups.last_mut().expect("pushed").push(t);
    }
    groups
}

/// One ticker and its rows, in week order.
type TickerRows = (String, Vec<WeeklyRow>);

/// Counts of a scoring run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Counts {
    gaps: usize,
    duplicates: usize,
    late: usize,
}

impl std::ops::AddAssign for Counts {
    fn add_assign(&mut self, o: Self) {
        self.gaps += o.gaps;
        self.duplicates += o.duplicates;
        self.late += o.late;
    }
}

/// Scores whole tickers (each ticker's rows in week order) through the pipeline; hands each
/// batch's rows to `out`. Rows of one ticker must all be in `tickers`.
fn score_tickers(
    model: &dyn InferenceModel,
    tickers: Vec<TickerRows>,
    gap_policy: GapPolicy,
    batch: usize,
    done: &AtomicUsize,
    out: &mut dyn FnMut(Vec<PredictionRow>) -> Result<()>,
) -> Result<Counts> {
    let mut part = PartitionWindows::unlogged(WindowStore::new(gap_policy));
    let mut batcher = Batcher::new(BatchRule {
        max_rows: batch,
        max_wait: Duration::MAX,
    });
    let mut counts = Counts::default();
    let now = Instant::now();
    let mut offset = 0i64;
    let mut flush = |batcher: &mut Batcher| -> Result<()> {
        let b = batcher.take();
        if b.windows.is_empty() {
            return Ok(());
        }
        let scored = score_batch(
            model,
            &b.windows,
            trendscore_schemas::now_ms(),
            Lineage::Offline,
        )?;
        for (_, rows) in scored {
            out(rows.rows)?;
        }
        Ok(())
    };
    for (_, rows) in tickers {
        let n = rows.len();
        for row in rows {
            let applied = part.apply(
                offset,
                Ok(ValidRow {
                    ticker: row.ticker,
                    week: row.week,
                    features: row.features,
                }),
            );
            counts.gaps += usize::from(applied.gap);
            match applied.step {
                Step::Ready(window) => batcher.push_window(ReadyWindow {
                    partition: 0,
                    offset,
                    live_ts_ms: None,
                    window,
                }),
                Step::Duplicate => counts.duplicates += 1,
                Step::DeadLetter(r) if r.reason == Reason::Late => counts.late += 1,
                Step::DeadLetter(_) | Step::Filling(_) => {}
            }
            batcher.consumed(0, offset, now);
            offset += 1;
            if batcher.due(now) {
                flush(&mut batcher)?;
            }
        }
        done.fetch_add(n, Ordering::Relaxed);
    }
    flush(&mut batcher)?;
    Ok(counts)
}

/// Groups rows by ticker, each ticker's rows in week order (stable: file order within a
/// week), tickers ascending.
fn by_ticker(rows: Vec<WeeklyRow>) -> Vec<TickerRows> {
    let mut map: HashMap<String, Vec<WeeklyRow>> = HashMap::new();
    for r in rows {
        map.entry(r.ticker.clone()).or_default().push(r);
    }
    let mut out: Vec<TickerRows> = map.into_iter().collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    for (_, rows) in out.iter_mut() {
        rows.sort_by_key(|r| r.week);
    }
    out
}

/// Writes scored rows to the sink with increasing row numbers as offsets.
struct Writer {
    sink: Box<dyn PredictionSink>,
    source: SourceKey,
    next: i64,
    scored: usize,
    files: usize,
    started: Instant,
}

impl Writer {
    fn write(&mut self, rows: Vec<PredictionRow>) -> Result<()> {
        let offsets: Vec<i64> = (self.next..self.next + rows.len() as i64).collect();
        self.next += rows.len() as i64;
        self.scored += rows.len();
        self.files += self
            .sink
            .write(&self.source, &rows, &offsets, self.started)?
            .len();
        Ok(())
    }
}

fn offline_sink(config: &SinkConfig, source: &SourceKey) -> Result<Box<dyn PredictionSink>> {
    let mut cfg = config.clone();
    cfg.max_file_age_ms = u64::MAX / 4; // offline: roll by rows and bytes only
    let mut sink = sink::open(&cfg)?;
    let removed = sink.discard_after(source, 0)?;
    if removed > 0 {
        tracing::info!(removed, "removed this shard's earlier output");
    }
    Ok(sink)
}

/// Runs a backfill (see the module docs).
pub fn run(opts: &BackfillOptions) -> Result<BackfillReport> {
    let plan = first_pass(opts)?;
    let threads = match opts.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
    .clamp(1, plan.tickers.max(1));
    let mut load = LoadOptions {
        backend: opts.backend,
        intra_threads: (threads > 1).then_some(1),
        ..LoadOptions::default()
    };
    let load_one = |load: &LoadOptions| {
        load_model(&opts.model, load)
            .map_err(|e| ScorerError::Model(format!("{}: {e}", opts.model.display())))
    };
    // The first copy resolves `auto` (and logs its choice); the other threads load the same
    // backend explicitly, so every thread runs what the first chose and `auto` probes once.
    let first = load_one(&load)?;
    load.backend = first.backend().into();
    let mut models: Vec<Box<dyn InferenceModel>> = vec![first];
    for _ in 1..threads {
        models.push(load_one(&load)?);
    }
    crate::model::probe(models[0].as_ref())?;
    run_with_models(opts, &models, plan)
}

/// [`run`] with models already loaded, one per scoring thread (tests pass test doubles).
pub fn run_with(
    opts: &BackfillOptions,
    models: &[Box<dyn InferenceModel>],
) -> Result<BackfillReport> {
    run_with_models(opts, models, first_pass(opts)?)
}

/// What the first pass found.
struct Plan {
    files: Vec<PathBuf>,
    rows_in: usize,
    tickers: usize,
    groups: Vec<Vec<String>>,
    started: Instant,
}

/// The first pass: the input files, and the shard's tickers with their row counts (the
/// ticker column only), packed into groups.
fn first_pass(opts: &BackfillOptions) -> Result<Plan> {
    let started = Instant::now();
    let files = expand_inputs(&opts.inputs)?;
    let mut counts: HashMap<String, usize> = HashMap::new();
    for f in &files {
        for (t, n) in ticker_counts(f)? {
            if opts.shard.owns(&t) {
                *counts.entry(t).or_default() += n;
            }
        }
    }
    Ok(Plan {
        files,
        rows_in: counts.values().sum(),
        tickers: counts.len(),
        groups: plan_groups(counts.into_iter().collect(), opts.max_rows_in_memory),
        started,
    })
}

fn run_with_models(
    opts: &BackfillOptions,
    models: &[Box<dyn InferenceModel>],
    plan: Plan,
) -> Result<BackfillReport> {
    let Plan {
        files,
        rows_in,
        tickers,
        groups,
        started,
    } = plan;
    let threads = models.len().max(1);
    tracing::info!(
        files = files.len(),
        rows = rows_in,
        tickers,
        groups = groups.len(),
        threads,
        backend = %models[0].backend(),
        shard = format!("{}/{}", opts.shard.index, opts.shard.count),
        "backfill"
    );
    let source = opts.shard.source();
    let mut writer = Writer {
        sink: offline_sink(&opts.sink, &source)?,
        source,
        next: 0,
        scored: 0,
        files: 0,
        started,
    };
    let done = AtomicUsize::new(0);
    let bar = opts.progress.then(|| {
        let b = indicatif::ProgressBar::new(rows_in as u64);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{elapsed_precise} [{bar:40}] {pos}/{len} rows ({per_sec}, eta {eta})",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    });
    let mut total = Counts::default();
    let mut last_log = Instant::now();
    for group in &groups {
        let keep: HashSet<&str> = group.iter().map(String::as_str).collect();
        let mut rows = Vec::new();
        for f in &files {
            rows.extend(read_rows_where(f, &|t| keep.contains(t))?);
        }
        let mut work = by_ticker(rows);
        // Balance by rows: largest tickers first, each to the lightest worker.
        work.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(&b.0)));
        let mut shares: Vec<(usize, Vec<TickerRows>)> =
            (0..threads).map(|_| (0, Vec::new())).collect();
        for t in work {
            let lightest = shares
                .iter_mut()
                .min_by_key(|(n, _)| *n)
                .expect("threads >= 1");
            lightest.0 += t.1.len();
            lightest.1.push(t);
        }
        let (tx, rx) = crossbeam_channel::bounded::<Vec<PredictionRow>>(4 * threads);
        let group_counts = std::thread::scope(|scope| -> Result<Counts> {
            let mut handles = Vec::new();
            for ((_, mut share), model) in shares.into_iter().zip(models) {
                share.sort_by(|a, b| a.0.cmp(&b.0));
                let tx = tx.clone();
                let done = &done;
                let (policy, batch) = (opts.gap_policy, opts.batch);
                handles.push(scope.spawn(move || {
                    score_tickers(model.as_ref(), share, policy, batch, done, &mut |rows| {
                        tx.send(rows).map_err(|_| {
                            ScorerError::Internal("the backfill writer stopped".into())
                        })
                    })
                }));
            }
            drop(tx);
            let mut write_result = Ok(());
            for rows in rx.iter() {
                if write_result.is_ok() {
                    write_result = writer.write(rows);
                }
                let d = done.load(Ordering::Relaxed);
                if let Some(b) = &bar {
                    b.set_position(d as u64);
                } else if last_log.elapsed() >= Duration::from_secs(10) {
                    last_log = Instant::now();
                    let secs = started.elapsed().as_secs_f64();
                    tracing::info!(
                        rows = d,
                        of = rows_in,
                        rows_per_sec = (d as f64 / secs) as u64,
                        "backfill progress"
                    );
                }
            }
            let mut c = Counts::default();
            for h in handles {
                c += h
                    .join()
                    .map_err(|_| ScorerError::Internal("a backfill worker panicked".into()))??;
            }
            write_result?;
            Ok(c)
        })?;
        total += group_counts;
    }
    writer.files += writer.sink.close_all()?.len();
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let secs = started.elapsed().as_secs_f64();
    let report = BackfillReport {
        files_in: files.len(),
        rows_in,
        tickers,
        groups: groups.len(),
        scored: writer.scored,
        gaps: total.gaps,
        duplicates: total.duplicates,
        late: total.late,
        files: writer.files,
        threads,
        millis: (secs * 1000.0) as u64,
    };
    tracing::info!(
        rows = report.rows_in,
        scored = report.scored,
        files = report.files,
        secs,
        rows_per_sec = (report.rows_in as f64 / secs.max(1e-9)) as u64,
        "backfill done"
    );
    Ok(report)
}

/// Backfills rows already in memory, single-threaded, into `sink_config.output_dir` as
/// shard 0/1 (tests and tools; `run` is the command).
pub fn backfill_rows(
    model: &dyn InferenceModel,
    rows: Vec<WeeklyRow>,
    sink_config: &SinkConfig,
    gap_policy: GapPolicy,
    batch: usize,
) -> Result<BackfillReport> {
    let started = Instant::now();
    let rows_in = rows.len();
    let source = Shard::default().source();
    let mut writer = Writer {
        sink: offline_sink(sink_config, &source)?,
        source,
        next: 0,
        scored: 0,
        files: 0,
        started,
    };
    let work = by_ticker(rows);
    let tickers = work.len();
    let done = AtomicUsize::new(0);
    let c = score_tickers(model, work, gap_policy, batch, &done, &mut |rows| {
        writer.write(rows)
    })?;
    writer.files += writer.sink.close_all()?.len();
    Ok(BackfillReport {
        files_in: 0,
        rows_in,
        tickers,
        groups: 1,
        scored: writer.scored,
        gaps: c.gaps,
        duplicates: c.duplicates,
        late: c.late,
        files: writer.files,
        threads: 1,
        millis: started.elapsed().as_millis() as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;
    use trendscore_schemas::NUM_FEATURES;

    use crate::test_support::echo;

    fn rows(tickers: usize, weeks: usize, skip: Option<(usize, usize)>) -> Vec<WeeklyRow> {
        let base = NaiveDate::from_ymd_opt(2024, 1, 5).unwrap();
        let mut out = Vec::new();
        for t in 0..tickers {
            for w in 0..weeks {
                if skip == Some((t, w)) {
                    continue;
                }
                let mut features = vec![0.0; NUM_FEATURES];
                features[0] = (t * 1000 + w) as f32;
                out.push(WeeklyRow {
                    ticker: format!("T{t}"),
                    week: base + chrono::Duration::weeks(w as i64),
                    features,
                    trend_7day: None,
                    trend_30day: None,
                });
            }
        }
        out
    }

    #[test]
    fn backfill_scores_every_full_window_once_in_small_files() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = SinkConfig {
            output_dir: dir.path().to_path_buf(),
            max_rows_per_file: 7,
            ..SinkConfig::default()
        };
        let report = backfill_rows(&echo(), rows(3, 20, None), &cfg, GapPolicy::Reset, 5).unwrap();
        assert_eq!(report.scored, 3 * (20 - 11));
        let preds = crate::sink::read_all_predictions(dir.path()).unwrap();
        assert_eq!(preds.len(), 27);
        for p in &preds {
            let t: usize = p.ticker[1..].parse().unwrap();
            let w = (p.week - NaiveDate::from_ymd_opt(2024, 1, 5).unwrap()).num_weeks() as usize;
            assert_eq!(
                p.trend_7d,
                (t * 1000 + w) as f32,
                "newest row of the window"
            );
            assert_eq!(
                p.trend_30d,
                (t * 1000 + w - 11) as f32,
                "oldest row of the window"
            );
            assert_eq!(p.window_start, p.week - chrono::Duration::weeks(11));
            assert_eq!(p.model_version, "echo-1");
            assert_eq!(p.p_up_7d, 0.5);
            assert!(p.source_partition.is_none() && p.source_offset.is_none());
        }
        // running again replaces, never duplicates
        backfill_rows(&echo(), rows(3, 20, None), &cfg, GapPolicy::Reset, 64).unwrap();
        assert_eq!(
            crate::sink::read_all_predictions(dir.path()).unwrap().len(),
            27
        );
    }

    #[test]
    fn backfill_gap_policy_reset_and_carry() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = SinkConfig {
            output_dir: dir.path().join("reset"),
            ..SinkConfig::default()
        };
        // ticker 0 misses week 5: reset -> weeks 6..19 (14 rows) give 3 windows
        let r = backfill_rows(
            &echo(),
            rows(1, 20, Some((0, 5))),
            &cfg,
            GapPolicy::Reset,
            8,
        )
        .unwrap();
        assert_eq!((r.scored, r.gaps), (3, 1));
        let cfg = SinkConfig {
            output_dir: dir.path().join("carry"),
            ..SinkConfig::default()
        };
        // carry: 19 rows in one run -> 8 windows
        let r = backfill_rows(
            &echo(),
            rows(1, 20, Some((0, 5))),
            &cfg,
            GapPolicy::Carry,
            8,
        )
        .unwrap();
        assert_eq!((r.scored, r.gaps), (8, 1));
    }

    fn opts(inputs: Vec<String>, out: &Path, shard: Shard) -> BackfillOptions {
        BackfillOptions {
            model: PathBuf::from("unused"),
            backend: BackendChoice::Tract,
            inputs,
            sink: SinkConfig {
                output_dir: out.to_path_buf(),
                ..SinkConfig::default()
            },
            shard,
            gap_policy: GapPolicy::Reset,
            batch: 16,
            threads: 2,
            max_rows_in_memory: 1_000_000,
            progress: false,
        }
    }

    fn echoes(n: usize) -> Vec<Box<dyn InferenceModel>> {
        (0..n)
            .map(|_| Box::new(echo()) as Box<dyn InferenceModel>)
            .collect()
    }

    fn key(rows: &[PredictionRow]) -> Vec<(String, NaiveDate, u32)> {
        let mut k: Vec<_> = rows
            .iter()
            .map(|r| (r.ticker.clone(), r.week, r.trend_7d.to_bits()))
            .collect();
        k.sort();
        k
    }

    #[test]
    fn shards_are_stable_and_split_every_ticker_once() {
        assert_eq!(fnv1a64(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(
            fnv1a64("a"),
            0xaf63_dc4c_8601_ec8c,
            "the published FNV-1a test vector"
        );
        let shards: Vec<Shard> = (0..4).map(|i| format!("{i}/4").parse().unwrap()).collect();
        for t in 0..200 {
            let ticker = format!("T{t}");
            assert_eq!(shards.iter().filter(|s| s.owns(&ticker)).count(), 1);
        }
        for bad in ["4/4", "1/0", "x/2", "3"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
        assert_eq!(shards[3].source().topic, "backfill-4");
    }

    #[test]
    fn groups_bound_the_rows_in_memory() {
        let g = plan_groups(
            vec![
                ("C".into(), 5),
                ("A".into(), 4),
                ("B".into(), 4),
                ("D".into(), 20),
            ],
            10,
        );
        assert_eq!(
            g,
            vec![
                vec!["A".to_string(), "B".into()],
                vec!["C".into()],
                vec!["D".into()]
            ]
        );
    }

    #[test]
    fn sharded_runs_together_equal_the_unsharded_one_and_rerun_only_their_own_files() {
        let dir = tempfile::tempdir().unwrap();
        // the input split over two files by year (a ticker's windows span both) and a glob
        let all = rows(9, 30, None);
        let (a, b): (Vec<_>, Vec<_>) = all
            .iter()
            .cloned()
            .partition(|r| r.week < NaiveDate::from_ymd_opt(2024, 4, 1).unwrap());
        trendscore_schemas::write_rows_parquet(&dir.path().join("in-a.parquet"), &a, &[]).unwrap();
        trendscore_schemas::write_rows_parquet(&dir.path().join("in-b.parquet"), &b, &[]).unwrap();
        let glob = format!("{}/in-*.parquet", dir.path().display());
        let whole = dir.path().join("whole");
        let r = run_with(
            &opts(vec![glob.clone()], &whole, Shard::default()),
            &echoes(2),
        )
        .unwrap();
        assert_eq!((r.files_in, r.rows_in, r.tickers), (2, 9 * 30, 9));
        assert_eq!(r.scored, 9 * 19);
        let expected = key(&crate::sink::read_all_predictions(&whole).unwrap());
        let sharded = dir.path().join("sharded");
        let mut got = Vec::new();
        for i in 0..3 {
            let shard = Shard { index: i, count: 3 };
            // tiny groups: one read of the input per group, same rows
            let mut o = opts(vec![dir.path().display().to_string()], &sharded, shard);
            o.max_rows_in_memory = 60;
            let r = run_with(&o, &echoes(2)).unwrap();
            assert!(r.groups > 1, "{r:?}");
            got.push(r.scored);
        }
        assert_eq!(got.iter().sum::<usize>(), 9 * 19);
        assert_eq!(
            key(&crate::sink::read_all_predictions(&sharded).unwrap()),
            expected
        );
        // a re-run of shard 1 replaces exactly its own files
        let names = |d: &Path| {
            let mut v: Vec<String> = walk(d)
                .into_iter()
                .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
                .collect();
            v.sort();
            v
        };
        let before = names(&sharded);
        let others: Vec<String> = before
            .iter()
            .filter(|n| !n.starts_with("backfill-3-1-"))
            .cloned()
            .collect();
        let o = opts(vec![glob], &sharded, Shard { index: 1, count: 3 });
        run_with(&o, &echoes(1)).unwrap();
        let after = names(&sharded);
        assert!(
            others.iter().all(|n| after.contains(n)),
            "other shards' files untouched"
        );
        assert_eq!(
            key(&crate::sink::read_all_predictions(&sharded).unwrap()),
            expected
        );
    }

    fn walk(d: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
        out
    }

    #[test]
    fn inputs_that_name_nothing_are_clear_errors() {
        let e = expand_inputs(&["/nonexistent/*.parquet".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("no such file"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let e = expand_inputs(&[dir.path().display().to_string()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("no input files"), "{e}");
    }

    #[test]
    fn extreme_dates_in_the_input_are_a_clear_error_not_a_panic() {
        use arrow_array::{Date32Array, RecordBatch};
        let dir = tempfile::tempdir().unwrap();
        let good = trendscore_schemas::rows_to_batch(&rows(1, 1, None)).unwrap();
        let idx = good.schema().index_of("week").unwrap();
        let mut cols = good.columns().to_vec();
        cols[idx] = std::sync::Arc::new(Date32Array::from(vec![i32::MAX]));
        let batch = RecordBatch::try_new(good.schema(), cols).unwrap();
        let path = dir.path().join("extreme.parquet");
        let mut w = parquet::arrow::ArrowWriter::try_new(
            std::fs::File::create(&path).unwrap(),
            batch.schema(),
            None,
        )
        .unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
        let out = dir.path().join("out");
        let e = run_with(
            &opts(vec![path.display().to_string()], &out, Shard::default()),
            &echoes(1),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("outside 0001-01-01..=9999-12-31"), "{e}");
    }
}
