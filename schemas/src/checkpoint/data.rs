//! The `data` section of `config.json`: what the model was trained on, as the feature
//! manifest of the rows file says (docs/contracts.md). The label target and the
//! cross-sectional transform change what a prediction means (`xs`: "beats this week's median
//! ticker", not "goes up"), so the checkpoint carries them, and the exporter copies them into
//! the model card and the ONNX metadata.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::weekly::{footer_metadata, FEATURE_MANIFEST_KEY};

/// Written where the rows carry no feature manifest (hand-made rows, older files).
pub const UNKNOWN: &str = "unknown";

/// `config.json` `data`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DataSection {
    /// The rows file trained on, as given.
    pub rows: String,
    /// The manifest's `feature_set_version` (`v1`), or `unknown`.
    pub feature_set_version: String,
    /// The manifest's `labels.target`: `raw` (the DESIGN.md label), `excess` (in excess of
    /// the market index) or `xs` (relative to the week's cross-sectional median), or `unknown`.
    pub target: String,
    /// The manifest's `cross_sectional` feature transform: `none`, `rank` or `zscore`, or
    /// `unknown`. With `rank`/`zscore` the model expects rows transformed the same way.
    pub cross_sectional: String,
}

impl Default for DataSection {
    fn default() -> Self {
        Self {
            rows: String::new(),
            feature_set_version: UNKNOWN.into(),
            target: UNKNOWN.into(),
            cross_sectional: UNKNOWN.into(),
        }
    }
}

impl DataSection {
    /// Reads the feature manifest of `rows` (the Parquet footer key
    /// [`FEATURE_MANIFEST_KEY`], else the `<rows>.manifest.json` sidecar). Rows without a
    /// readable manifest give `unknown` fields and the reason, never an error: training on
    /// rows from elsewhere stays possible.
    pub fn of_rows(rows: &Path) -> (Self, Option<String>) {
        let mut out = Self {
            rows: rows.display().to_string(),
            ..Self::default()
        };
        let text = match footer_metadata(rows, FEATURE_MANIFEST_KEY) {
            Ok(Some(t)) => t,
            Ok(None) | Err(_) => {
                let mut side = rows.as_os_str().to_owned();
                side.push(".manifest.json");
                match std::fs::read_to_string(&side) {
                    Ok(t) => t,
                    Err(_) => return (out, Some("the rows carry no feature manifest".into())),
                }
            }
        };
        let doc: serde_json::Value = match serde_json::from_str(&text) {
            Ok(d) => d,
            Err(e) => return (out, Some(format!("the feature manifest is not JSON: {e}"))),
        };
        let field = |v: Option<&serde_json::Value>| {
            v.and_then(|v| v.as_str())
                .map_or_else(|| UNKNOWN.to_string(), str::to_string)
        };
        out.feature_set_version = field(doc.get("feature_set_version"));
        out.target = field(doc.pointer("/labels/target"));
        out.cross_sectional = field(doc.get("cross_sectional"));
        (out, None)
    }
}
