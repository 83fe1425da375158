//! The inference stage: the thread between the consumer loop and the worker that runs the
//! model.
//!
//! It takes the consumer loop's [`Job`]s in their order, scores each batch in one model call,
//! and hands the worker the same jobs in the same order, the batches scored ([`Work`]). So
//! the worker's side of a batch (Parquet encoding, fsyncs, producing, delivery reports) runs
//! while the next batch is in the model, instead of the model waiting behind it. The stage
//! is at most one scored batch ahead of the worker (a queue of one): its memory stays bounded
//! and a `Close` waits behind at most that batch.
//!
//! Failures: a model error is handed on in place of its batch (the worker reports it and stops)
//! and the stage stops; a closed job channel (the consumer side went away) stops it, which
//! closes the worker's channel in turn.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, SendTimeoutError, Sender};

use crate::health::{Health, Loop};
use crate::metrics::Metrics;
use crate::model::ModelHandle;
use crate::pipeline::{score_batch, Batch, DeadLetter, Lineage, PartitionRows};

/// Work for the pipeline, in the order the consumer loop decided it: `B` is the batch, as
/// the consumer loop collected it ([`Batch`]) or as the model scored it ([`Scored`]).
#[derive(Debug)]
pub(crate) enum Job<B = Batch> {
    /// Score, write and produce a batch.
    Batch(B),
    /// Newly assigned partitions at their committed offsets: discard the files past those
    /// offsets and start tracking the partitions. Answered by `Event::Recovered`.
    Recover(Vec<(i32, i64)>),
    /// Revoked partitions: close their files, wait (bounded) for their records to be
    /// acknowledged, forget them. Answered by `Event::Closed`.
    Close(Vec<i32>),
    /// Close everything, wait for acknowledgements, answer `Event::Closed` and stop.
    Shutdown,
}

/// A batch after the model: its rows by input partition, with what the batch carried.
#[derive(Debug)]
pub(crate) struct Scored {
    /// Dead letters to produce, in consumption order.
    pub dead_letters: Vec<DeadLetter>,
    /// Prediction rows per input partition, in offset order.
    pub rows: BTreeMap<i32, PartitionRows>,
    /// Per partition, the offset after the last message the batch covers.
    pub next: BTreeMap<i32, i64>,
}

/// What the worker takes: the [`Job`]s with their batches scored, or the error the model
/// gave on a batch (the worker reports it and stops).
pub(crate) type Work = crate::Result<Job<Scored>>;

/// How often the stage beats while it waits for a job or for room in the worker's queue.
const BEAT: Duration = Duration::from_millis(200);

pub(crate) struct InferenceStage {
    pub model: Arc<ModelHandle>,
    pub metrics: Arc<Metrics>,
    pub health: Arc<Health>,
}

impl InferenceStage {
    /// Runs until [`Job::Shutdown`] (handed on), a closed channel on either side, or a model
    /// error (handed on).
    pub fn run(self, jobs: Receiver<Job>, work: Sender<Work>) {
        loop {
            self.health.beat(Loop::Inference);
            let job = match jobs.recv_timeout(BEAT) {
                Ok(job) => job,
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => break,
            };
            let next: Work = match job {
                Job::Batch(b) => self.score(b).map(Job::Batch),
                Job::Recover(p) => Ok(Job::Recover(p)),
                Job::Close(p) => Ok(Job::Close(p)),
                Job::Shutdown => Ok(Job::Shutdown),
            };
            let last = matches!(next, Err(_) | Ok(Job::Shutdown));
            if !self.hand_on(&work, next) || last {
                break;
            }
        }
        self.health.stopped(Loop::Inference);
    }

    fn score(&self, batch: Batch) -> crate::Result<Scored> {
        let rows = if batch.windows.is_empty() {
            BTreeMap::new()
        } else {
            let model = self.model.current();
            let t = Instant::now();
            let rows = score_batch(
                model.as_ref(),
                &batch.windows,
                trendscore_schemas::now_ms(),
                Lineage::Kafka,
            )?;
            self.metrics
                .inference_seconds
                .observe(t.elapsed().as_secs_f64());
            self.metrics.batch_size.observe(batch.windows.len() as f64);
            rows
        };
        Ok(Scored {
            dead_letters: batch.dead_letters,
            rows,
            next: batch.next,
        })
    }

    /// Hands `w` to the worker, beating while its queue is full; false once the worker is
    /// gone.
    fn hand_on(&self, work: &Sender<Work>, mut w: Work) -> bool {
        loop {
            match work.send_timeout(w, BEAT) {
                Ok(()) => return true,
                Err(SendTimeoutError::Timeout(back)) => {
                    self.health.beat(Loop::Inference);
                    w = back;
                }
                Err(SendTimeoutError::Disconnected(_)) => return false,
            }
        }
    }
}
