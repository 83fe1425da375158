//! `scaler.json`: the StandardScaler fit on the training split, and the one normalisation
//! rule (`(x - mean) / std`, a std of 0 read as 1) that the trainer, the exported graph and the
//! reference model all apply.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::error::{read, write_json};
use super::{CheckpointError, SpecError};

/// Per-feature mean and population standard deviation (`scaler.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Scaler {
    /// Feature names, model-input order.
    pub feature_names: Vec<String>,
    /// Training-split means.
    pub mean: Vec<f64>,
    /// Training-split standard deviations; 0 is read as 1.
    pub std: Vec<f64>,
}

impl Scaler {
    /// Fits on `rows` (each `feature_names.len()` wide), accumulating in f64 in the order
    /// given: mean, then population std. No rows gives means and stds of 0.
    pub fn fit(feature_names: Vec<String>, rows: &[&[f32]]) -> Self {
        let f = feature_names.len();
        let n = rows.len().max(1) as f64;
        let mut mean = vec![0.0f64; f];
        for x in rows {
            for (m, v) in mean.iter_mut().zip(x.iter()) {
                *m += f64::from(*v);
            }
        }
        mean.iter_mut().for_each(|m| *m /= n);
        let mut var = vec![0.0f64; f];
        for x in rows {
            for ((acc, v), m) in var.iter_mut().zip(x.iter()).zip(&mean) {
                *acc += (f64::from(*v) - m).powi(2);
            }
        }
        Self {
            feature_names,
            mean,
            std: var.into_iter().map(|v| (v / n).sqrt()).collect(),
        }
    }

    /// The std each feature is divided by: the stored std, 0 read as 1.
    pub fn effective_std(&self) -> Vec<f64> {
        self.std
            .iter()
            .map(|s| if *s == 0.0 { 1.0 } else { *s })
            .collect()
    }

    /// `(x - mean) / std` in f64, then f32 (std 0 read as 1); `raw` is (.., n_features)
    /// row-major.
    pub fn normalise(&self, raw: &[f32]) -> Vec<f32> {
        let f = self.mean.len();
        let std = self.effective_std();
        raw.iter()
            .enumerate()
            .map(|(i, &v)| ((f64::from(v) - self.mean[i % f]) / std[i % f]) as f32)
            .collect()
    }

    /// Checks that `mean` and `std` are as long as `feature_names`, finite, and std >= 0.
    pub fn validate(&self) -> Result<(), SpecError> {
        let n = self.feature_names.len();
        for (what, len) in [("mean", self.mean.len()), ("std", self.std.len())] {
            if len != n {
                return Err(SpecError::ScalerLength {
                    what,
                    len,
                    against: "the number of feature_names",
                    expected: n,
                });
            }
        }
        for (index, (mean, std)) in self.mean.iter().zip(&self.std).enumerate() {
            if !mean.is_finite() || !std.is_finite() || *std < 0.0 {
                return Err(SpecError::ScalerValue {
                    index,
                    name: self.feature_names[index].clone(),
                    mean: *mean,
                    std: *std,
                });
            }
        }
        Ok(())
    }

    /// Writes `scaler.json` (pretty JSON).
    pub fn save(&self, path: &Path) -> Result<(), CheckpointError> {
        write_json(path, self)
    }

    /// Reads and validates `scaler.json`.
    pub fn load(path: &Path) -> Result<Self, CheckpointError> {
        let s: Scaler = serde_json::from_slice(&read(path)?)
            .map_err(|e| CheckpointError::json(path, e.to_string()))?;
        s.validate().map_err(CheckpointError::invalid(path))?;
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scaler() -> Scaler {
        Scaler {
            feature_names: vec!["a".into(), "b".into()],
            mean: vec![1.0, 2.0],
            std: vec![0.0, 2.0],
        }
    }

    #[test]
    fn zero_std_reads_as_one() {
        assert_eq!(scaler().effective_std(), vec![1.0, 2.0]);
        assert_eq!(
            scaler().normalise(&[3.0, 6.0, 1.0, 2.0]),
            vec![2.0, 2.0, 0.0, 0.0]
        );
    }

    #[test]
    fn fit_is_mean_and_population_std() {
        let rows: [&[f32]; 2] = [&[1.0, 5.0], &[3.0, 5.0]];
        let s = Scaler::fit(vec!["a".into(), "b".into()], &rows);
        assert_eq!(s.mean, vec![2.0, 5.0]);
        assert_eq!(s.std, vec![1.0, 0.0]);
    }

    #[test]
    fn round_trips_through_scaler_json() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(super::super::files::SCALER);
        let s = Scaler {
            mean: vec![0.1 + 0.2, -1e300],
            ..scaler()
        };
        s.save(&path).unwrap();
        assert_eq!(Scaler::load(&path).unwrap(), s);
        // The file is the documented shape, readable by the Python reference.
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(v["feature_names"][1], "b");
        assert_eq!(v["std"][1], 2.0);
    }

    #[test]
    fn broken_scalers_name_the_file_and_field() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("scaler.json");
        let missing = Scaler::load(&path).unwrap_err();
        assert!(
            matches!(missing, CheckpointError::MissingFile(_)),
            "{missing}"
        );
        let mut s = scaler();
        s.mean.pop();
        s.save(&path).unwrap();
        let e = Scaler::load(&path).unwrap_err().to_string();
        assert!(
            e.contains("scaler.json") && e.contains("mean has 1 entries"),
            "{e}"
        );
        std::fs::write(
            &path,
            r#"{"feature_names": ["a"], "mean": [1.0], "std": [-1.0]}"#,
        )
        .unwrap();
        let e = Scaler::load(&path).unwrap_err().to_string();
        assert!(e.contains("feature 0 (a)"), "{e}");
        std::fs::write(&path, r#"{"feature_names": ["a"], "mean": [1.0]}"#).unwrap();
        let e = Scaler::load(&path).unwrap_err().to_string();
        assert!(e.contains("missing field `std`"), "{e}");
    }
}
