//! Dates without panics: the range every trendscore date must lie in, ISO week indices and
//! the Arrow `Date32` conversions, all total functions.
//!
//! chrono's `NaiveDate` spans years -262144..=262143, and `date + days` panics past those
//! ends; Arrow's `Date32` spans about ±5.8 million years. Spark, DuckDB, pandas and Athena
//! read dates with four-digit years, so trendscore accepts exactly
//! [`MIN_DATE`]`..=`[`MAX_DATE`] (0001-01-01 to 9999-12-31) wherever a date enters (Kafka
//! messages, Parquet and CSV files) and rejects anything else with a clear error. Inside that
//! range every arithmetic the crates do (a window's 12 weeks, a 30-day horizon) stays far
//! from chrono's limits, and [`iso_week_index`] is total on every `NaiveDate` anyway.

use chrono::{Datelike, NaiveDate};

/// The earliest date trendscore accepts: 0001-01-01.
pub const MIN_DATE: NaiveDate = match NaiveDate::from_ymd_opt(1, 1, 1) {
    Some(d) => d,
    None => panic!("valid date"),
};
/// The latest date trendscore accepts: 9999-12-31.
pub const MAX_DATE: NaiveDate = match NaiveDate::from_ymd_opt(9999, 12, 31) {
    Some(d) => d,
    None => panic!("valid date"),
};

/// Days from 0001-01-01 (CE day 1) to 1970-01-01, the Arrow/Unix epoch.
const UNIX_EPOCH_CE_DAY: i64 = 719_163;

/// `Ok(d)` when `d` lies in [`MIN_DATE`]`..=`[`MAX_DATE`], else why not.
pub fn check_date(d: NaiveDate) -> Result<NaiveDate, String> {
    if (MIN_DATE..=MAX_DATE).contains(&d) {
        Ok(d)
    } else {
        Err(format!("date {d} is outside {MIN_DATE}..={MAX_DATE}"))
    }
}

/// Index of the ISO week that contains `d`: consecutive ISO weeks differ by exactly 1, also
/// across year boundaries (it counts Mondays since 1970-01-05). Total: defined for every
/// `NaiveDate`, no overflow.
pub fn iso_week_index(d: NaiveDate) -> i64 {
    let monday = i64::from(d.num_days_from_ce()) - i64::from(d.weekday().num_days_from_monday());
    let epoch_monday = UNIX_EPOCH_CE_DAY + 4; // 1970-01-05 was a Monday
    (monday - epoch_monday).div_euclid(7)
}

/// Arrow `Date32` (days since 1970-01-01) of a date.
pub fn date_to_days(d: NaiveDate) -> i32 {
    // |days| < 2^27 for every NaiveDate, so the cast is exact.
    (i64::from(d.num_days_from_ce()) - UNIX_EPOCH_CE_DAY) as i32
}

/// The date of an Arrow `Date32` value, or why it is not a trendscore date (outside
/// [`MIN_DATE`]`..=`[`MAX_DATE`]; Date32 can hold ±5.8 million years).
pub fn days_to_date(days: i32) -> Result<NaiveDate, String> {
    let ce = i64::from(days) + UNIX_EPOCH_CE_DAY;
    i32::try_from(ce)
        .ok()
        .and_then(NaiveDate::from_num_days_from_ce_opt)
        .ok_or_else(|| format!("Date32 value {days} is outside {MIN_DATE}..={MAX_DATE}"))
        .and_then(check_date)
}

/// Parses `YYYY-MM-DD` (also the date part of `YYYY-MM-DDTHH:MM:SS` or
/// `YYYY-MM-DD HH:MM:SS`) into a date in [`MIN_DATE`]`..=`[`MAX_DATE`].
pub fn parse_date(s: &str) -> Result<NaiveDate, String> {
    let s = s.trim();
    let head = match (s.as_bytes().get(10), s.get(..10)) {
        (Some(b'T') | Some(b' '), Some(head)) => head,
        _ => s,
    };
    let d = NaiveDate::parse_from_str(head, "%Y-%m-%d")
        .map_err(|e| format!("expected YYYY-MM-DD: {e}"))?;
    check_date(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_week_index_is_consecutive_across_years() {
        let thu = NaiveDate::from_ymd_opt(2020, 12, 31).unwrap(); // ISO week 53
        let next = NaiveDate::from_ymd_opt(2021, 1, 8).unwrap(); // Friday, ISO week 1
        assert_eq!(iso_week_index(next) - iso_week_index(thu), 1);
        let mon = NaiveDate::from_ymd_opt(2024, 1, 1).unwrap();
        let sun = NaiveDate::from_ymd_opt(2024, 1, 7).unwrap();
        assert_eq!(iso_week_index(mon), iso_week_index(sun));
        assert_eq!(
            iso_week_index(sun.succ_opt().unwrap()),
            iso_week_index(mon) + 1
        );
        let epoch_monday = NaiveDate::from_ymd_opt(1970, 1, 5).unwrap();
        assert_eq!(iso_week_index(epoch_monday), 0);
        assert_eq!(iso_week_index(epoch_monday.pred_opt().unwrap()), -1);
    }

    #[test]
    fn iso_week_index_is_total_at_chronos_ends() {
        let (lo, hi) = (NaiveDate::MIN, NaiveDate::MAX);
        assert!(iso_week_index(lo) < iso_week_index(hi));
        assert_eq!(
            iso_week_index(hi) - iso_week_index(hi.pred_opt().unwrap()),
            i64::from(hi.weekday() == chrono::Weekday::Mon)
        );
    }

    #[test]
    fn date32_round_trips_and_refuses_out_of_range_values() {
        for d in [
            MIN_DATE,
            MAX_DATE,
            NaiveDate::from_ymd_opt(1970, 1, 1).unwrap(),
        ] {
            assert_eq!(days_to_date(date_to_days(d)), Ok(d));
        }
        assert_eq!(
            date_to_days(NaiveDate::from_ymd_opt(1970, 1, 2).unwrap()),
            1
        );
        for days in [
            i32::MIN,
            i32::MAX,
            date_to_days(MIN_DATE) - 1,
            date_to_days(MAX_DATE) + 1,
        ] {
            let e = days_to_date(days).unwrap_err();
            assert!(e.contains("outside 0001-01-01..=9999-12-31"), "{e}");
        }
        // chrono's own ends are valid NaiveDates but not trendscore dates
        assert!(days_to_date(date_to_days(NaiveDate::MIN)).is_err());
        assert!(days_to_date(date_to_days(NaiveDate::MAX)).is_err());
    }

    #[test]
    fn parse_date_accepts_four_digit_years_only() {
        assert_eq!(
            parse_date(" 2024-01-05T00:00:00 "),
            Ok(NaiveDate::from_ymd_opt(2024, 1, 5).unwrap())
        );
        for bad in [
            "-262144-01-01",
            "+262143-12-31",
            "10000-01-01",
            "2024-02-30",
            "",
            "é€-01-0🙂",
        ] {
            assert!(parse_date(bad).is_err(), "{bad}");
        }
    }
}
