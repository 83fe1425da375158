//! The partition pipeline: everything `scorer run` and `scorer backfill` do to a message
//! between reading it and writing its prediction, as pure code (no I/O, no clock: the
//! caller passes `now` in). The Kafka service ([`crate::service`]) and the offline backfill
//! ([`crate::backfill`]) are two thin drivers over the same parts, so the two give the same
//! rows for the same input.
//!
//! - [`partition`]: one input partition's window state (the live [`WindowStore`] and, with a
//!   changelog, its shadow) and [`PartitionWindows::apply`]: `(offset, parsed message) ->`
//!   [`Step`] (ready window, dead letter with its reason, duplicate, filling; gap noted).
//! - [`restore`]: [`Restorer`], the pure half of a restore: changelog records plus an input
//!   replay in, a [`PartitionWindows`] exact at the committed offset out.
//! - [`batcher`]: [`Batcher`], the pending windows and dead letters and the "due" rule.
//! - [`ledger`]: [`OffsetLedger`], per partition the next, stored and durable offsets and the
//!   rule that makes an offset durable: no open file below it and every record produced for
//!   the messages below it acknowledged by the broker.
//! - [`score`]: a batch of windows -> model -> prediction rows grouped by partition.
//!
//! [`WindowStore`]: crate::window::WindowStore

pub mod batcher;
pub mod ledger;
pub mod partition;
pub mod restore;
pub mod score;

pub use batcher::{Batch, BatchRule, Batcher, DeadLetter, ReadyWindow};
pub use ledger::{DeliveryFailure, OffsetLedger};
pub use partition::{Applied, PartitionWindows, Step};
pub use restore::{RestoreSource, RestoreSummary, Restorer};
pub use score::{score_batch, score_windows, Lineage, PartitionRows};
