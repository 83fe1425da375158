//! Input-message validation: the JSON value of an input-topic message becomes a
//! [`ValidRow`] or a [`Reason`] for the dead-letter topic. Pure, no I/O.

use chrono::NaiveDate;
use trendscore_schemas::{InputMessage, NUM_FEATURES};

/// A validated input row: non-empty ticker, a real date, exactly 62 finite f32 features.
#[derive(Clone, Debug, PartialEq)]
pub struct ValidRow {
    /// Ticker symbol (the message key should equal it; the value wins).
    pub ticker: String,
    /// The week's date (last trading day).
    pub week: NaiveDate,
    /// Raw features, length [`NUM_FEATURES`].
    pub features: Vec<f32>,
}

/// Why a message goes to the dead-letter topic (the `reason` header).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    /// Not JSON, or not the input-message shape (missing/mistyped field).
    MalformedJson,
    /// `features` does not hold exactly 62 numbers.
    WrongWidth,
    /// A feature is NaN, infinite, or outside the f32 range.
    NonFinite,
    /// `week` is not a `YYYY-MM-DD` date.
    BadDate,
    /// `ticker` is empty or blank.
    EmptyTicker,
    /// The week is older than the newest week already seen for the ticker.
    Late,
}

impl Reason {
    /// Every reason, for metrics.
    pub const ALL: [Reason; 6] = [
        Reason::MalformedJson,
        Reason::WrongWidth,
        Reason::NonFinite,
        Reason::BadDate,
        Reason::EmptyTicker,
        Reason::Late,
    ];

    /// The stable name used in headers, metrics and docs.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::MalformedJson => "malformed_json",
            Reason::WrongWidth => "wrong_width",
            Reason::NonFinite => "non_finite",
            Reason::BadDate => "bad_date",
            Reason::EmptyTicker => "empty_ticker",
            Reason::Late => "late",
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A rejected message: the reason and a human-readable detail (the `error` header).
#[derive(Clone, Debug, PartialEq)]
pub struct Rejection {
    /// Machine-readable reason.
    pub reason: Reason,
    /// What exactly was wrong (field, index, value).
    pub detail: String,
}

fn reject(reason: Reason, detail: impl Into<String>) -> Rejection {
    Rejection {
        reason,
        detail: detail.into(),
    }
}

/// Parses and validates one message value.
pub fn parse_message(value: Option<&[u8]>) -> Result<ValidRow, Rejection> {
    let bytes = value.ok_or_else(|| reject(Reason::MalformedJson, "empty message value"))?;
    let msg: InputMessage = match serde_json::from_slice(bytes) {
        Ok(m) => m,
        Err(e) => {
            // JSON has no NaN/Infinity; Python's json.dumps writes them anyway, and numbers
            // beyond f64 fail as "out of range": both are non-finite features, not bad JSON.
            let text = String::from_utf8_lossy(bytes);
            let out_of_range = e.to_string().contains("out of range");
            let nan_token = e.is_syntax() && ["NaN", "Infinity"].iter().any(|t| text.contains(t));
            let reason = if out_of_range || nan_token {
                Reason::NonFinite
            } else {
                Reason::MalformedJson
            };
            return Err(reject(reason, e.to_string()));
        }
    };
    validate(msg)
}

/// Validates a parsed message.
pub fn validate(msg: InputMessage) -> Result<ValidRow, Rejection> {
    let ticker = msg.ticker.trim();
    if ticker.is_empty() {
        return Err(reject(Reason::EmptyTicker, "ticker is empty"));
    }
    let week = trendscore_schemas::parse_date(&msg.week)
        .map_err(|e| reject(Reason::BadDate, format!("week {:?}: {e}", msg.week)))?;
    if msg.features.len() != NUM_FEATURES {
        return Err(reject(
            Reason::WrongWidth,
            format!(
                "features has {} values, expected {NUM_FEATURES}",
                msg.features.len()
            ),
        ));
    }
    let mut features = Vec::with_capacity(NUM_FEATURES);
    for (i, &v) in msg.features.iter().enumerate() {
        let f = v as f32;
        if !f.is_finite() {
            return Err(reject(
                Reason::NonFinite,
                format!("features[{i}] = {v} is not a finite f32"),
            ));
        }
        features.push(f);
    }
    Ok(ValidRow {
        ticker: ticker.to_string(),
        week,
        features,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(ticker: &str, week: &str, n: usize) -> String {
        let f: Vec<String> = (0..n).map(|i| format!("{}.5", i)).collect();
        format!(
            r#"{{"ticker":"{ticker}","week":"{week}","features":[{}]}}"#,
            f.join(",")
        )
    }

    fn reason(v: &str) -> Reason {
        parse_message(Some(v.as_bytes())).unwrap_err().reason
    }

    #[test]
    fn good_message_parses() {
        let r = parse_message(Some(msg("AAPL", "2024-01-05", 62).as_bytes())).unwrap();
        assert_eq!(r.ticker, "AAPL");
        assert_eq!(r.week, NaiveDate::from_ymd_opt(2024, 1, 5).unwrap());
        assert_eq!(r.features.len(), 62);
        assert_eq!(r.features[3], 3.5);
    }

    #[test]
    fn each_bad_input_has_its_reason() {
        assert_eq!(reason("{not json"), Reason::MalformedJson);
        assert_eq!(reason(r#"{"ticker":"A"}"#), Reason::MalformedJson);
        assert_eq!(reason(&msg("A", "2024-01-05", 61)), Reason::WrongWidth);
        assert_eq!(reason(&msg("A", "2024-02-30", 62)), Reason::BadDate);
        assert_eq!(reason(&msg("A", "last week", 62)), Reason::BadDate);
        for extreme in [
            "-262144-01-01",
            "+262143-12-31",
            "0000-12-31",
            "10000-01-01",
        ] {
            assert_eq!(reason(&msg("A", extreme, 62)), Reason::BadDate, "{extreme}");
        }
        assert_eq!(reason(&msg(" ", "2024-01-05", 62)), Reason::EmptyTicker);
        let nan = msg("A", "2024-01-05", 62).replace("0.5", "NaN");
        assert_eq!(reason(&nan), Reason::NonFinite);
        let inf = msg("A", "2024-01-05", 62).replace("0.5", "1e999");
        assert_eq!(reason(&inf), Reason::NonFinite);
        let big = msg("A", "2024-01-05", 62).replace("0.5", "1e300");
        assert_eq!(reason(&big), Reason::NonFinite);
        assert_eq!(
            parse_message(None).unwrap_err().reason,
            Reason::MalformedJson
        );
    }

    mod properties {
        use super::super::*;
        use proptest::prelude::*;

        fn json() -> impl Strategy<Value = serde_json::Value> {
            let leaf = prop_oneof![
                Just(serde_json::Value::Null),
                any::<bool>().prop_map(serde_json::Value::Bool),
                any::<f64>().prop_map(|f| serde_json::json!(f)),
                any::<i64>().prop_map(|i| serde_json::json!(i)),
                ".*".prop_map(serde_json::Value::String),
                "[-+]?[0-9]{1,6}-[0-9]{1,2}-[0-9]{1,2}".prop_map(serde_json::Value::String),
            ];
            leaf.prop_recursive(3, 64, 8, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..70).prop_map(serde_json::Value::Array),
                    prop::collection::btree_map(
                        prop_oneof![
                            Just("ticker".to_string()),
                            Just("week".to_string()),
                            Just("features".to_string()),
                            Just("trend_7day".to_string()),
                            ".{0,8}".prop_map(|s: String| s),
                        ],
                        inner,
                        0..6,
                    )
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
                ]
            })
        }

        fn check(bytes: &[u8]) {
            match parse_message(Some(bytes)) {
                Ok(row) => {
                    assert!(!row.ticker.trim().is_empty());
                    assert!(trendscore_schemas::check_date(row.week).is_ok());
                    assert_eq!(row.features.len(), NUM_FEATURES);
                    assert!(row.features.iter().all(|f| f.is_finite()));
                }
                Err(r) => assert!(Reason::ALL.contains(&r.reason) && !r.detail.is_empty()),
            }
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]

            #[test]
            fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
                check(&bytes);
            }

            #[test]
            fn arbitrary_json_values_never_panic(v in json()) {
                check(&serde_json::to_vec(&v).unwrap());
            }

            #[test]
            fn near_valid_messages_get_a_row_or_a_reason(
                ticker in ".{0,6}",
                week in prop_oneof![
                    "[-+]?[0-9]{1,6}-[0-9]{1,2}-[0-9]{1,2}",
                    Just("-262144-01-01".to_string()),
                    Just("+262143-12-31".to_string()),
                    Just("9999-12-31".to_string()),
                ],
                features in prop::collection::vec(
                    prop_oneof![any::<f64>(), -1e3f64..1e3, Just(f64::MAX), Just(3.5e38)],
                    60..64,
                ),
            ) {
                let v = serde_json::json!({"ticker": ticker, "week": week, "features": features});
                check(&serde_json::to_vec(&v).unwrap());
            }
        }
    }
}
