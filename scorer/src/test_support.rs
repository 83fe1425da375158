//! Test doubles shared by the unit tests of several modules.

use trendscore_infer::{BackendKind, InferError, InferenceModel, ModelInfo, ModelOutputs};
use trendscore_schemas::{NUM_FEATURES, SEQUENCE_LENGTH};

/// Test double: trend_7d = the window's first feature of the newest week, so each
/// prediction can be traced to its window. (The real model is exercised by the
/// integration tests in tests/python/test_scorer_kafka.py.)
pub(crate) struct Echo(ModelInfo);

impl InferenceModel for Echo {
    fn info(&self) -> &ModelInfo {
        &self.0
    }
    fn backend(&self) -> BackendKind {
        BackendKind::Tract
    }
    fn predict(&self, features: &[f32], batch: usize) -> Result<ModelOutputs, InferError> {
        let per = SEQUENCE_LENGTH * NUM_FEATURES;
        assert_eq!(features.len(), batch * per);
        let newest: Vec<f32> = (0..batch)
            .map(|i| features[i * per + (SEQUENCE_LENGTH - 1) * NUM_FEATURES])
            .collect();
        let oldest: Vec<f32> = (0..batch).map(|i| features[i * per]).collect();
        Ok(ModelOutputs {
            batch,
            seq_len: SEQUENCE_LENGTH,
            trend_7d: newest,
            direction_7d: vec![0.0; 2 * batch],
            trend_30d: oldest,
            direction_30d: vec![0.0; 2 * batch],
            attention: vec![1.0 / SEQUENCE_LENGTH as f32; batch * SEQUENCE_LENGTH],
        })
    }
}

pub(crate) fn echo() -> Echo {
    Echo(ModelInfo {
        model_version: "echo-1".into(),
        feature_names: trendscore_schemas::feature_names(),
        sequence_length: SEQUENCE_LENGTH,
        input_dim: NUM_FEATURES,
        horizons: vec![7, 30],
        metrics_json: "{}".into(),
    })
}

/// Test double: [`Echo`] whose `predict` blocks while `hold` is set (a stuck inference call).
pub(crate) struct Held {
    pub inner: Echo,
    pub hold: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl InferenceModel for Held {
    fn info(&self) -> &ModelInfo {
        self.inner.info()
    }
    fn backend(&self) -> BackendKind {
        self.inner.backend()
    }
    fn predict(&self, features: &[f32], batch: usize) -> Result<ModelOutputs, InferError> {
        while self.hold.load(std::sync::atomic::Ordering::Relaxed) {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        self.inner.predict(features, batch)
    }
}

/// Test double: [`Echo`] for its first `ok_calls` calls, then every call fails as a backend
/// would (an inference error in the middle of a stream).
pub(crate) struct FailsAfter {
    pub inner: Echo,
    pub ok_calls: usize,
    pub calls: std::sync::atomic::AtomicUsize,
}

impl InferenceModel for FailsAfter {
    fn info(&self) -> &ModelInfo {
        self.inner.info()
    }
    fn backend(&self) -> BackendKind {
        self.inner.backend()
    }
    fn predict(&self, features: &[f32], batch: usize) -> Result<ModelOutputs, InferError> {
        let n = self
            .calls
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if n >= self.ok_calls {
            return Err(InferError::Run {
                backend: "tract",
                reason: format!("call {n} failed on purpose"),
            });
        }
        self.inner.predict(features, batch)
    }
}
