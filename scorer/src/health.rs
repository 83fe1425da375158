//! Liveness and readiness, as facts the loops report and a verdict the HTTP probes read.
//!
//! - **Liveness** (`/healthz`): each loop (the consumer loop, the inference stage and the
//!   worker) beats at least every few hundred milliseconds while it runs, also while it
//!   waits for a broker, a restore read, an acknowledgement or room in the next queue. A
//!   loop whose last beat is older than `health.stall_timeout_ms` is stuck (a wedged poll,
//!   an inference call that never returns, a sink that hangs): the probe fails and
//!   Kubernetes restarts the pod. A loop counts only once it has started, and not after it
//!   stopped cleanly.
//! - **Readiness** (`/readyz`): ready only while the consumer is in its group and every
//!   partition assigned to it is restored ([`Phase::Ready`]); not while starting, during a
//!   rebalance or restore, or while stopping. An instance that joined and was assigned no
//!   partition (more instances than partitions) is ready: it has nothing to restore.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::time::{Duration, Instant};

/// The loops whose progress is watched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Loop {
    /// The consumer loop (polls, rebalances, restores, commits).
    Consumer,
    /// The inference stage (the model calls).
    Inference,
    /// The worker (sink, producing, the offset ledger).
    Worker,
}

impl Loop {
    const ALL: [Loop; 3] = [Loop::Consumer, Loop::Inference, Loop::Worker];

    fn index(self) -> usize {
        match self {
            Loop::Consumer => 0,
            Loop::Inference => 1,
            Loop::Worker => 2,
        }
    }

    /// The loop's name in probe answers.
    pub fn name(self) -> &'static str {
        match self {
            Loop::Consumer => "consumer",
            Loop::Inference => "inference",
            Loop::Worker => "worker",
        }
    }
}

/// Where the service is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Phase {
    /// Model loaded, not yet in the group.
    Starting = 0,
    /// A rebalance is under way: partitions are being revoked, assigned or restored.
    Rebalancing = 1,
    /// In the group; every assigned partition restored.
    Ready = 2,
    /// Shutting down.
    Stopping = 3,
}

const NOT_RUNNING: u64 = u64::MAX;

/// The shared health state (see the module docs).
#[derive(Debug)]
pub struct Health {
    origin: Instant,
    stall: Duration,
    /// Per loop: milliseconds since `origin` of the last beat, or [`NOT_RUNNING`].
    beats: [AtomicU64; 3],
    phase: AtomicU8,
}

impl Health {
    /// Health with the given stall bound; no loop running, phase [`Phase::Starting`].
    pub fn new(stall: Duration) -> Self {
        Self {
            origin: Instant::now(),
            stall,
            beats: [
                AtomicU64::new(NOT_RUNNING),
                AtomicU64::new(NOT_RUNNING),
                AtomicU64::new(NOT_RUNNING),
            ],
            phase: AtomicU8::new(Phase::Starting as u8),
        }
    }

    fn ms(&self, t: Instant) -> u64 {
        t.saturating_duration_since(self.origin).as_millis() as u64
    }

    /// The loop made progress now.
    pub fn beat(&self, l: Loop) {
        self.beats[l.index()].store(self.ms(Instant::now()), Ordering::Relaxed);
    }

    /// The loop ended on purpose; it is no longer watched.
    pub fn stopped(&self, l: Loop) {
        self.beats[l.index()].store(NOT_RUNNING, Ordering::Relaxed);
    }

    /// Liveness at `now`: `Err` names each stuck loop and for how long it has been silent.
    pub fn liveness_at(&self, now: Instant) -> Result<(), String> {
        let now = self.ms(now);
        let stuck: Vec<String> = Loop::ALL
            .iter()
            .filter_map(|l| {
                let last = self.beats[l.index()].load(Ordering::Relaxed);
                let silent = now.saturating_sub(last);
                (last != NOT_RUNNING && silent > self.stall.as_millis() as u64)
                    .then(|| format!("{} loop made no progress for {silent} ms", l.name()))
            })
            .collect();
        if stuck.is_empty() {
            Ok(())
        } else {
            Err(stuck.join("; "))
        }
    }

    /// Liveness now.
    pub fn liveness(&self) -> Result<(), String> {
        self.liveness_at(Instant::now())
    }

    /// Sets the phase.
    pub fn set_phase(&self, p: Phase) {
        self.phase.store(p as u8, Ordering::Relaxed);
    }

    /// The phase.
    pub fn phase(&self) -> Phase {
        match self.phase.load(Ordering::Relaxed) {
            0 => Phase::Starting,
            1 => Phase::Rebalancing,
            2 => Phase::Ready,
            _ => Phase::Stopping,
        }
    }

    /// Readiness: `Err` says why not.
    pub fn readiness(&self) -> Result<(), &'static str> {
        match self.phase() {
            Phase::Ready => Ok(()),
            Phase::Starting => Err("starting: not yet in the consumer group"),
            Phase::Rebalancing => Err("rebalancing: partitions are being assigned and restored"),
            Phase::Stopping => Err("stopping"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_silent_loop_is_unhealthy_until_it_beats_again() {
        let h = Health::new(Duration::from_millis(100));
        let t0 = h.origin;
        assert!(
            h.liveness_at(t0 + Duration::from_secs(60)).is_ok(),
            "nothing runs yet"
        );
        h.beats[0].store(0, Ordering::Relaxed);
        h.beats[2].store(0, Ordering::Relaxed);
        assert!(h.liveness_at(t0 + Duration::from_millis(100)).is_ok());
        let e = h.liveness_at(t0 + Duration::from_millis(150)).unwrap_err();
        assert!(
            e.contains("consumer loop made no progress for 150 ms"),
            "{e}"
        );
        assert!(e.contains("worker loop"), "{e}");
        h.beats[0].store(140, Ordering::Relaxed);
        let e = h.liveness_at(t0 + Duration::from_millis(150)).unwrap_err();
        assert!(!e.contains("consumer") && e.contains("worker"), "{e}");
        h.stopped(Loop::Worker);
        assert!(h.liveness_at(t0 + Duration::from_millis(150)).is_ok());
    }

    #[test]
    fn ready_only_in_the_ready_phase() {
        let h = Health::new(Duration::from_secs(1));
        assert!(h.readiness().unwrap_err().contains("starting"));
        h.set_phase(Phase::Rebalancing);
        assert!(h.readiness().is_err());
        h.set_phase(Phase::Ready);
        assert!(h.readiness().is_ok());
        h.set_phase(Phase::Stopping);
        assert!(h.readiness().is_err());
    }
}
