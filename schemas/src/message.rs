//! The JSON value of one input-topic message (DESIGN.md's Kafka contract):
//! `{"ticker": "AAPL", "week": "2024-01-05", "features": [62 numbers]}` with optional
//! `trend_7day` / `trend_30day`. Validation (width, finiteness, date) is the consumer's job:
//! this type only carries what was sent, so a bad row can be dead-lettered with its reason.

use serde::{Deserialize, Serialize};

use crate::WeeklyRow;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InputMessage {
    pub ticker: String,
    pub week: String,
    pub features: Vec<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trend_7day: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trend_30day: Option<f64>,
}

impl From<&WeeklyRow> for InputMessage {
    fn from(r: &WeeklyRow) -> Self {
        InputMessage {
            ticker: r.ticker.clone(),
            week: r.week.format("%Y-%m-%d").to_string(),
            features: r.features.iter().map(|&v| f64::from(v)).collect(),
            trend_7day: r.trend_7day.map(f64::from),
            trend_30day: r.trend_30day.map(f64::from),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f32_features_survive_the_json_round_trip_exactly() {
        let row = WeeklyRow {
            ticker: "IBM".into(),
            week: chrono::NaiveDate::from_ymd_opt(2024, 1, 5).unwrap(),
            features: vec![0.1, -3.75e-7, 12345.678, f32::MAX],
            trend_7day: Some(0.3),
            trend_30day: None,
        };
        let json = serde_json::to_string(&InputMessage::from(&row)).unwrap();
        assert!(!json.contains("trend_30day"));
        let back: InputMessage = serde_json::from_str(&json).unwrap();
        let feats: Vec<f32> = back.features.iter().map(|&v| v as f32).collect();
        assert_eq!(feats, row.features);
    }
}
