//! Prometheus metrics of the scorer (served on `/metrics` by [`crate::http`]).

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::validate::Reason;

type Labels = Vec<(String, String)>;

/// Every metric the scorer keeps. Cheap to clone (all handles are shared).
pub struct Metrics {
    registry: Registry,
    /// Input messages consumed.
    pub rows_in: Counter,
    /// Predictions written (Parquet rows).
    pub rows_scored: Counter,
    /// Messages dead-lettered, by reason.
    pub dead_lettered: Family<Labels, Counter>,
    /// Duplicate (ticker, week) rows dropped.
    pub duplicates: Counter,
    /// Rows that followed a gap (the gap policy applied).
    pub gaps: Counter,
    /// Windows per inference call.
    pub batch_size: Histogram,
    /// Seconds per inference call.
    pub inference_seconds: Histogram,
    /// Seconds from a message's timestamp (when it is recent: a live producer) to the
    /// Parquet file holding its prediction being durable.
    pub produce_to_parquet_seconds: Histogram,
    /// Consumer lag (high watermark - next offset) by partition.
    pub consumer_lag: Family<Labels, Gauge>,
    /// Parquet files made durable.
    pub files_written: Counter,
    /// Files removed on assignment because they were past the committed offset.
    pub files_removed: Counter,
    /// Model reloads by result (`ok`, `failed`).
    pub model_reloads: Family<Labels, Counter>,
    /// 1 for the model being served, labelled with its `backend` (what `auto` chose) and
    /// `model_version`; the only series (a reload replaces it).
    pub model_info: Family<Labels, Gauge>,
    /// The labels of the `model_info` series now at 1.
    served: std::sync::Mutex<Option<Labels>>,
    /// Offset commits by result.
    pub commits: Family<Labels, Counter>,
    /// Produce failures (predictions or dead-letter topic) after librdkafka's retries.
    pub produce_errors: Counter,
    /// Window changelog records produced (ticker records and markers).
    pub changelog_records: Counter,
    /// Records read while restoring windows, by source (`changelog`, `input`).
    pub restore_records: Family<Labels, Counter>,
    /// Seconds to restore one partition's windows.
    pub restore_seconds: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("scorer");
        let rows_in = Counter::default();
        let rows_scored = Counter::default();
        let dead_lettered = Family::<Labels, Counter>::default();
        let duplicates = Counter::default();
        let gaps = Counter::default();
        let batch_size = Histogram::new(exponential_buckets(1.0, 2.0, 12));
        let inference_seconds = Histogram::new(exponential_buckets(0.0001, 2.0, 18));
        let produce_to_parquet_seconds = Histogram::new(exponential_buckets(0.001, 2.0, 18));
        let consumer_lag = Family::<Labels, Gauge>::default();
        let files_written = Counter::default();
        let files_removed = Counter::default();
        let model_reloads = Family::<Labels, Counter>::default();
        let model_info = Family::<Labels, Gauge>::default();
        let commits = Family::<Labels, Counter>::default();
        let produce_errors = Counter::default();
        let changelog_records = Counter::default();
        let restore_records = Family::<Labels, Counter>::default();
        let restore_seconds = Histogram::new(exponential_buckets(0.01, 2.0, 14));
        registry.register(
            "restore_seconds",
            "Seconds to restore one partition's windows",
            restore_seconds.clone(),
        );
        registry.register(
            "changelog_records",
            "Window changelog records produced",
            changelog_records.clone(),
        );
        registry.register(
            "restore_records",
            "Records read while restoring windows, by source",
            restore_records.clone(),
        );
        registry.register("rows_in", "Input messages consumed", rows_in.clone());
        registry.register("rows_scored", "Predictions written", rows_scored.clone());
        registry.register(
            "dead_lettered",
            "Messages dead-lettered by reason",
            dead_lettered.clone(),
        );
        registry.register("duplicates", "Duplicate rows dropped", duplicates.clone());
        registry.register("gaps", "Rows after a week gap", gaps.clone());
        registry.register(
            "batch_size",
            "Windows per inference call",
            batch_size.clone(),
        );
        registry.register(
            "inference_seconds",
            "Seconds per inference call",
            inference_seconds.clone(),
        );
        registry.register(
            "produce_to_parquet_seconds",
            "Seconds from message timestamp to durable Parquet (recent timestamps only)",
            produce_to_parquet_seconds.clone(),
        );
        registry.register(
            "consumer_lag",
            "Messages behind the high watermark",
            consumer_lag.clone(),
        );
        registry.register(
            "files_written",
            "Parquet files made durable",
            files_written.clone(),
        );
        registry.register(
            "files_removed",
            "Files past the committed offset removed on assignment",
            files_removed.clone(),
        );
        registry.register(
            "model_reloads",
            "Model reloads by result",
            model_reloads.clone(),
        );
        registry.register(
            "model_info",
            "The model being served (1), by backend and model version",
            model_info.clone(),
        );
        registry.register("commits", "Offset commits by result", commits.clone());
        registry.register("produce_errors", "Failed produces", produce_errors.clone());
        for r in Reason::ALL {
            // Pre-create every reason so dashboards see zeros.
            let _ = dead_lettered.get_or_create(&vec![("reason".into(), r.as_str().into())]);
        }
        Self {
            registry,
            rows_in,
            rows_scored,
            dead_lettered,
            duplicates,
            gaps,
            batch_size,
            inference_seconds,
            produce_to_parquet_seconds,
            consumer_lag,
            files_written,
            files_removed,
            model_reloads,
            model_info,
            served: std::sync::Mutex::new(None),
            commits,
            produce_errors,
            changelog_records,
            restore_records,
            restore_seconds,
        }
    }

    /// Counts a dead-lettered message.
    pub fn dead_letter(&self, reason: Reason) {
        self.dead_lettered
            .get_or_create(&vec![("reason".into(), reason.as_str().into())])
            .inc();
    }

    /// The count for one dead-letter reason.
    pub fn dead_letter_count(&self, reason: Reason) -> u64 {
        self.dead_lettered
            .get_or_create(&vec![("reason".into(), reason.as_str().into())])
            .get()
    }

    /// Records the model being served: `model_info{backend, model_version}` = 1, the only
    /// series of the family (the previous model's is removed). The new series is set before
    /// the old one goes, so a scrape never sees no model.
    pub fn set_model(&self, backend: &str, model_version: &str) {
        let labels: Labels = vec![
            ("backend".into(), backend.into()),
            ("model_version".into(), model_version.into()),
        ];
        let mut served = self.served.lock().unwrap_or_else(|p| p.into_inner());
        self.model_info.get_or_create(&labels).set(1);
        if let Some(old) = served.replace(labels.clone()).filter(|old| *old != labels) {
            self.model_info.remove(&old);
        }
    }

    /// Counts a labelled event (`family` is one of the label families above).
    pub fn labelled(family: &Family<Labels, Counter>, key: &str, value: &str) {
        family
            .get_or_create(&vec![(key.into(), value.into())])
            .inc();
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_has_reasons_and_counts() {
        let m = Metrics::new();
        m.rows_in.inc();
        m.dead_letter(Reason::Late);
        let text = m.render();
        assert!(text.contains("scorer_rows_in_total 1"), "{text}");
        assert!(
            text.contains("scorer_dead_lettered_total{reason=\"late\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("scorer_dead_lettered_total{reason=\"bad_date\"} 0"),
            "{text}"
        );
        assert_eq!(m.dead_letter_count(Reason::Late), 1);
    }

    #[test]
    fn model_info_names_only_the_model_being_served() {
        let m = Metrics::new();
        m.set_model("tract", "v1");
        let text = m.render();
        assert!(
            text.contains("scorer_model_info{backend=\"tract\",model_version=\"v1\"} 1"),
            "{text}"
        );
        m.set_model("ort-cpu", "v2");
        let text = m.render();
        assert!(
            text.contains("scorer_model_info{backend=\"ort-cpu\",model_version=\"v2\"} 1"),
            "{text}"
        );
        assert!(
            !text.contains("v1"),
            "the replaced model's series is gone: {text}"
        );
    }
}
