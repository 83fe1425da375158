//! Rebalances: what happens when partitions are assigned to this instance or revoked from
//! it. Both run inside the consumer's poll, on the consumer thread.
//!
//! - **Assign**: read the committed offsets; the worker discards files past them and starts
//!   tracking the partitions; each partition's windows are restored (changelog, then input
//!   replay) before any of its messages is applied; with `--drain`, note each partition's
//!   end offset. Ready again once every partition is restored.
//! - **Revoke**: hand the pending batch to the worker; the worker closes the partitions'
//!   files and waits for their records' acknowledgements; store and commit the final
//!   offsets, write and deliver the changelog, then forget the partitions.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tracing::{debug, info, warn};

use crate::health::Phase;
use crate::metrics::Metrics;
use crate::service::inference::Job;
use crate::service::restore::RestoreReader;
use crate::service::session::{lock, Session};
use crate::service::worker::Event;
use crate::{Result, ScorerError};

/// The consumer's context: rebalance and commit callbacks.
pub(crate) struct ScorerContext {
    pub session: Arc<Session>,
}

impl ClientContext for ScorerContext {}

impl ConsumerContext for ScorerContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(tpl) => {
                let parts = self.session.partitions(tpl);
                self.session.on_revoke(consumer, &parts);
            }
            Rebalance::Assign(tpl) => self.session.on_assign(consumer, tpl),
            Rebalance::Error(e) => warn!(error = %e, "rebalance error"),
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, offsets: &TopicPartitionList) {
        match result {
            Ok(()) => debug!(?offsets, "offsets committed"),
            Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
            Err(e) => {
                Metrics::labelled(&self.session.metrics.commits, "result", "failed");
                warn!(error = %e, "offset commit failed (retried on the next commit)");
            }
        }
    }
}

impl Session {
    pub fn partitions(&self, tpl: &TopicPartitionList) -> Vec<i32> {
        tpl.elements()
            .iter()
            .filter(|e| e.topic() == self.topic())
            .map(|e| e.partition())
            .collect()
    }

    pub fn on_revoke<C: ConsumerContext>(&self, consumer: &BaseConsumer<C>, partitions: &[i32]) {
        if lock(&self.state).closed {
            self.commit(consumer, CommitMode::Sync);
            return;
        }
        self.health.set_phase(Phase::Rebalancing);
        info!(?partitions, "partitions revoked: flushing");
        self.flush_batch(true);
        if self.send(Job::Close(partitions.to_vec())) {
            match self.wait_reply(consumer, |e| match e {
                Event::Closed(offsets) => Ok(offsets),
                other => Err(other),
            }) {
                Ok(offsets) => {
                    self.poll_events(consumer);
                    self.store(consumer, &offsets);
                    self.commit(consumer, CommitMode::Sync);
                }
                Err(e) => self.fail(e),
            }
        }
        // The next owner reads the changelog once this callback returns: deliver it first.
        self.flush_changelog();
        let mut st = lock(&self.state);
        for p in partitions {
            // A revoked partition's lag is the next owner's to report: drop the series, so
            // dashboards summing consumer_lag over instances do not count it twice.
            self.metrics
                .consumer_lag
                .remove(&vec![("partition".into(), p.to_string())]);
            st.parts.remove(p);
            st.consumed.remove(p);
            st.ends.remove(p);
        }
    }

    pub fn on_assign<C: ConsumerContext>(
        &self,
        consumer: &BaseConsumer<C>,
        tpl: &TopicPartitionList,
    ) {
        let partitions = self.partitions(tpl);
        self.health.set_phase(Phase::Rebalancing);
        match self.assign(consumer, tpl, &partitions) {
            Ok(()) => self.health.set_phase(Phase::Ready),
            Err(e) => self.fail(ScorerError::Restore {
                partitions,
                error: Box::new(e),
            }),
        }
    }

    fn assign<C: ConsumerContext>(
        &self,
        consumer: &BaseConsumer<C>,
        tpl: &TopicPartitionList,
        partitions: &[i32],
    ) -> Result<()> {
        if partitions.is_empty() {
            info!("joined the group with no partition assigned");
            return Ok(());
        }
        let committed = consumer.committed_offsets(tpl.clone(), Duration::from_secs(30))?;
        let recover: Vec<(i32, i64)> = partitions
            .iter()
            .map(|&p| {
                let c = committed
                    .find_partition(self.topic(), p)
                    .and_then(|e| match e.offset() {
                        Offset::Offset(o) => Some(o),
                        _ => None,
                    })
                    .unwrap_or(0);
                (p, c)
            })
            .collect();
        info!(
            ?recover,
            "partitions assigned: recovering from committed offsets"
        );
        if !self.send(Job::Recover(recover.clone())) {
            return Err(ScorerError::Internal("the worker thread stopped".into()));
        }
        self.wait_reply(consumer, |e| match e {
            Event::Recovered(r) => Ok(r),
            other => Err(other),
        })??;
        let reader = RestoreReader {
            config: &self.config,
            health: &self.health,
        };
        for (p, c) in recover {
            let t = Instant::now();
            let (windows, summary) = reader.restore(p, c)?;
            let secs = t.elapsed().as_secs_f64();
            info!(
                partition = p,
                committed = c,
                rows = summary.input_rows,
                changelog_records = summary.changelog_records,
                tickers = summary.tickers,
                source = summary.source.as_str(),
                secs,
                "windows restored"
            );
            self.metrics.restore_seconds.observe(secs);
            for (source, n) in [
                ("input", summary.input_rows),
                ("changelog", summary.changelog_records),
            ] {
                self.metrics
                    .restore_records
                    .get_or_create(&vec![("source".into(), source.into())])
                    .inc_by(n as u64);
            }
            let end = if self.config.run.drain {
                let (_, high) =
                    consumer.fetch_watermarks(self.topic(), p, Duration::from_secs(30))?;
                Some(high)
            } else {
                None
            };
            let mut st = lock(&self.state);
            st.parts.insert(p, windows);
            st.consumed.insert(p, c);
            if let Some(end) = end {
                st.ends.insert(p, end);
            }
        }
        Ok(())
    }
}
