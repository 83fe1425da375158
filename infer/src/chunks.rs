//! One batch run as chunks on several threads at once, each chunk a single-threaded call.
//!
//! Both CPU backends score this way: independent single-threaded calls scale with the cores
//! where a backend's own intra-op pool either barely helps (tract) or stalls whenever the
//! machine is shared (ONNX Runtime: its parallel sections wait for the slowest thread, so a
//! core taken by the broker or the Parquet encoder stalls the whole call; the scorer's stream
//! ran at 0.4x of inference-only speed that way). Here a descheduled thread delays only its
//! own chunk while the others take the rest from a shared counter.
//!
//! [`run`] cuts, runs and reassembles; the backend says how big a chunk is, whether the last
//! one is padded to full size (tract's plans are per concrete batch), and how one chunk runs
//! on worker `k` (worker `k` owns session `k`, so workers never wait on each other).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::{InferError, ModelInfo, ModelOutputs};

/// One chunk's five outputs in contract order.
pub(crate) type ChunkResult = Result<[Vec<f32>; 5], InferError>;

/// How a batch is cut.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Cut {
    /// Windows per chunk (the last chunk may hold fewer real ones).
    pub chunk: usize,
    /// Pad the last chunk to `chunk` windows with copies of the first window (outputs
    /// dropped), for backends whose plans take one concrete batch size.
    pub pad: bool,
    /// Threads at most (worker 0 is the caller).
    pub workers: usize,
}

/// Output values per window for the five outputs, given the window length.
fn widths(seq: usize) -> [usize; 5] {
    [1, 2, 1, 2, seq]
}

/// Locks `m`, taking the value over from a thread that panicked while holding it.
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The worker threads for `LoadOptions::intra_threads`: as configured, unset = all cores;
/// at least 1.
pub(crate) fn workers(intra_threads: Option<usize>) -> usize {
    intra_threads
        .unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
        })
        .max(1)
}

/// Runs `batch` windows of `features` (shaped as `info` says) as chunks cut by `cut`:
/// `run(worker, input, windows)` scores one chunk of `windows` windows. Returns the outputs
/// of the `batch` real windows in order, checked for `backend`.
pub(crate) fn run<F>(
    features: &[f32],
    batch: usize,
    info: &ModelInfo,
    cut: Cut,
    backend: &'static str,
    run: F,
) -> Result<ModelOutputs, InferError>
where
    F: Fn(usize, &[f32], usize) -> ChunkResult + Sync,
{
    let (seq, per_window) = (info.sequence_length, info.sequence_length * info.input_dim);
    let chunk = cut.chunk.clamp(1, batch.max(1));
    let n_chunks = batch.div_ceil(chunk);
    let rows_of = |c: usize| chunk.min(batch - c * chunk);
    let padded: Option<Vec<f32>> = (cut.pad && !batch.is_multiple_of(chunk)).then(|| {
        let start = (n_chunks - 1) * chunk;
        let mut p = features[start * per_window..batch * per_window].to_vec();
        while p.len() < chunk * per_window {
            p.extend_from_slice(&features[..per_window]);
        }
        p
    });
    // (input, windows the call scores)
    let input = |c: usize| -> (&[f32], usize) {
        match &padded {
            Some(p) if c == n_chunks - 1 => (p, chunk),
            _ => {
                let start = c * chunk * per_window;
                (
                    &features[start..start + rows_of(c) * per_window],
                    rows_of(c),
                )
            }
        }
    };
    let workers = cut.workers.clamp(1, n_chunks.max(1));
    let results: Vec<ChunkResult> = if workers == 1 {
        (0..n_chunks)
            .map(|c| {
                let (x, n) = input(c);
                run(0, x, n)
            })
            .collect()
    } else {
        let next = AtomicUsize::new(0);
        let slots: Vec<Mutex<Option<ChunkResult>>> =
            (0..n_chunks).map(|_| Mutex::new(None)).collect();
        let work = |k: usize| loop {
            let c = next.fetch_add(1, Ordering::Relaxed);
            if c >= n_chunks {
                break;
            }
            let (x, n) = input(c);
            *lock(&slots[c]) = Some(run(k, x, n));
        };
        std::thread::scope(|s| {
            let work = &work;
            for k in 1..workers {
                s.spawn(move || work(k));
            }
            work(0);
        });
        slots
            .into_iter()
            .map(|m| {
                m.into_inner()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .unwrap_or_else(|| Err(run_error(backend, "a chunk was not run".into())))
            })
            .collect()
    };
    let widths = widths(seq);
    let mut outs: [Vec<f32>; 5] = widths.map(|w| Vec::with_capacity(batch * w));
    for (c, r) in results.into_iter().enumerate() {
        let r = r?;
        for k in 0..5 {
            let want = rows_of(c) * widths[k];
            let got = r[k].get(..want).ok_or_else(|| {
                run_error(
                    backend,
                    format!(
                        "output {k} of a chunk holds {} values, not {want}",
                        r[k].len()
                    ),
                )
            })?;
            outs[k].extend_from_slice(got);
        }
    }
    let [trend_7d, direction_7d, trend_30d, direction_30d, attention] = outs;
    ModelOutputs {
        batch,
        seq_len: seq,
        trend_7d,
        direction_7d,
        trend_30d,
        direction_30d,
        attention,
    }
    .check(backend)
}

fn run_error(backend: &'static str, reason: String) -> InferError {
    InferError::Run { backend, reason }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake backend: each window's outputs are its first feature (and the worker that ran
    /// it, to see the threads used); padded windows must never reach the result.
    fn fake(
        used: &Mutex<Vec<(usize, usize)>>,
    ) -> impl Fn(usize, &[f32], usize) -> ChunkResult + Sync + '_ {
        move |k, x, n| {
            lock(used).push((k, n));
            assert_eq!(x.len(), n * 3);
            let first: Vec<f32> = (0..n).map(|i| x[i * 3]).collect();
            Ok([
                first.clone(),
                first.iter().flat_map(|v| [*v, -v]).collect(),
                first.clone(),
                first.iter().flat_map(|v| [*v, -v]).collect(),
                vec![1.0; n],
            ])
        }
    }

    /// Windows of one step of 3 features; attention then has one value per window.
    fn info() -> ModelInfo {
        ModelInfo {
            model_version: "fake".into(),
            feature_names: vec!["a".into(), "b".into(), "c".into()],
            sequence_length: 1,
            input_dim: 3,
            horizons: vec![7, 30],
            metrics_json: "{}".into(),
        }
    }

    fn features(batch: usize) -> Vec<f32> {
        (0..batch)
            .flat_map(|i| [i as f32 / 100.0, 0.0, 0.0])
            .collect()
    }

    #[test]
    fn chunks_reassemble_in_order_padded_or_not() {
        for pad in [false, true] {
            for (batch, chunk, workers) in [(1, 4, 2), (7, 4, 2), (8, 4, 2), (10, 3, 3), (5, 64, 1)]
            {
                let used = Mutex::new(Vec::new());
                let cut = Cut {
                    chunk,
                    pad,
                    workers,
                };
                let out = run(&features(batch), batch, &info(), cut, "fake", fake(&used)).unwrap();
                let want: Vec<f32> = (0..batch).map(|i| i as f32 / 100.0).collect();
                assert_eq!(out.trend_7d, want, "batch {batch} chunk {chunk} pad {pad}");
                assert_eq!(out.attention.len(), batch);
                let calls = lock(&used).clone();
                assert_eq!(calls.len(), batch.div_ceil(chunk.min(batch)));
                let scored: usize = calls.iter().map(|c| c.1).sum();
                if pad {
                    assert!(calls.iter().all(|c| c.1 == chunk.min(batch)), "{calls:?}");
                } else {
                    assert_eq!(scored, batch, "{calls:?}");
                }
                assert!(calls.iter().all(|c| c.0 < workers), "{calls:?}");
            }
        }
    }

    #[test]
    fn a_failing_chunk_fails_the_batch() {
        let cut = Cut {
            chunk: 2,
            pad: false,
            workers: 2,
        };
        let err = run(&features(6), 6, &info(), cut, "fake", |_, x, _| {
            if x[0] > 0.01 {
                Err(run_error("fake", "boom".into()))
            } else {
                Ok([
                    vec![0.0; 2],
                    vec![0.0; 4],
                    vec![0.0; 2],
                    vec![0.0; 4],
                    vec![0.5; 4],
                ])
            }
        })
        .unwrap_err();
        assert!(err.to_string().contains("boom"), "{err}");
    }

    #[test]
    fn a_short_chunk_output_is_an_error_not_a_panic() {
        let cut = Cut {
            chunk: 4,
            pad: false,
            workers: 1,
        };
        let err = run(&features(4), 4, &info(), cut, "fake", |_, _, _| {
            Ok([vec![0.0; 1], vec![], vec![], vec![], vec![]])
        })
        .unwrap_err();
        assert!(err.to_string().contains("holds 1 values"), "{err}");
    }
}
