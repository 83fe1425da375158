//! One input partition's window state and what a message does to it.
//!
//! The live [`WindowStore`] holds the windows as of the last applied message. With a window
//! changelog, a [`PartitionLog`] keeps a shadow store that trails the live one: exact at the
//! offset last *stored* (see [`crate::changelog`] for why the shadow exists). Both are
//! changed only here, so the service, the backfill and the crash-anywhere test move them
//! the same way.

use crate::changelog::{Outgoing, PartitionLog};
use crate::validate::{Reason, Rejection, ValidRow};
use crate::window::{Fate, Window, WindowStore};

/// What applying one message did.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// The row completed a window: score it.
    Ready(Window),
    /// The row was stored; the ticker's window holds this many rows (fewer than 12).
    Filling(usize),
    /// Same ISO week as the ticker's newest row: dropped and counted.
    Duplicate,
    /// The message goes to the dead-letter topic with this reason (invalid, or late).
    DeadLetter(Rejection),
}

/// A [`Step`] plus whether the row followed a gap of one or more weeks.
#[derive(Clone, Debug, PartialEq)]
pub struct Applied {
    /// What happened.
    pub step: Step,
    /// The row came after a gap (the gap policy applied).
    pub gap: bool,
}

/// The window state of one input partition.
#[derive(Debug)]
pub struct PartitionWindows {
    live: WindowStore,
    log: Option<PartitionLog>,
}

impl PartitionWindows {
    /// A partition without a changelog (backfill, or `kafka.changelog_topic = ""`).
    pub fn unlogged(live: WindowStore) -> Self {
        Self { live, log: None }
    }

    /// A partition whose changes are logged by `log` (its shadow equals `live` now).
    pub fn logged(live: WindowStore, log: PartitionLog) -> Self {
        Self {
            live,
            log: Some(log),
        }
    }

    /// Applies the message at `offset` (offsets increase), parsed or rejected.
    pub fn apply(&mut self, offset: i64, msg: Result<ValidRow, Rejection>) -> Applied {
        let row = match msg {
            Ok(row) => row,
            Err(rejection) => {
                return Applied {
                    step: Step::DeadLetter(rejection),
                    gap: false,
                }
            }
        };
        let kept = self.log.as_ref().map(|_| row.clone());
        let pushed = self.live.push(row);
        if let (Some(log), Some(row)) = (self.log.as_mut(), kept) {
            if matches!(pushed.fate, Fate::Ready(_) | Fate::Filling(_)) {
                log.queue(offset, row);
            }
        }
        let step = match pushed.fate {
            Fate::Ready(w) => Step::Ready(w),
            Fate::Filling(n) => Step::Filling(n),
            Fate::Duplicate => Step::Duplicate,
            Fate::Late(newest) => Step::DeadLetter(Rejection {
                reason: Reason::Late,
                detail: format!("week is older than the newest week {newest} seen for the ticker"),
            }),
        };
        Applied {
            step,
            gap: pushed.gap,
        }
    }

    /// The consumer stored offset `next` (every message below it is durable): the shadow
    /// store follows.
    pub fn stored(&mut self, next: i64) {
        if let Some(log) = self.log.as_mut() {
            log.advance(next);
        }
    }

    /// The changelog records to produce now that the stored offset is committed (empty
    /// without a changelog or when nothing moved).
    pub fn changelog_records(&mut self) -> Vec<Outgoing> {
        self.log
            .as_mut()
            .map(PartitionLog::after_commit)
            .unwrap_or_default()
    }

    /// The live windows.
    pub fn live(&self) -> &WindowStore {
        &self.live
    }

    /// The changelog writer, when there is one.
    pub fn log(&self) -> Option<&PartitionLog> {
        self.log.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::GapPolicy;
    use chrono::NaiveDate;
    use trendscore_schemas::NUM_FEATURES;

    fn row(t: &str, w: i64) -> ValidRow {
        ValidRow {
            ticker: t.into(),
            week: NaiveDate::from_ymd_opt(2024, 1, 5).unwrap() + chrono::Duration::weeks(w),
            features: vec![w as f32; NUM_FEATURES],
        }
    }

    #[test]
    fn each_kind_of_message_has_its_step() {
        let mut p = PartitionWindows::unlogged(WindowStore::new(GapPolicy::Reset));
        for w in 0..11 {
            assert_eq!(
                p.apply(w, Ok(row("A", w))).step,
                Step::Filling(w as usize + 1)
            );
        }
        assert!(matches!(p.apply(11, Ok(row("A", 11))).step, Step::Ready(_)));
        assert_eq!(p.apply(12, Ok(row("A", 11))).step, Step::Duplicate);
        match p.apply(13, Ok(row("A", 3))).step {
            Step::DeadLetter(r) => assert_eq!(r.reason, Reason::Late),
            s => panic!("{s:?}"),
        }
        let bad = Rejection {
            reason: Reason::WrongWidth,
            detail: "x".into(),
        };
        assert_eq!(
            p.apply(14, Err(bad.clone())).step,
            Step::DeadLetter(bad),
            "a rejection passes through"
        );
        let gap = p.apply(15, Ok(row("A", 14)));
        assert!(gap.gap);
        assert_eq!(gap.step, Step::Filling(1));
    }
}
