//! Reading daily prices: CSV, gzip CSV or Parquet (detected from the file's first bytes), long
//! (`date,ticker,close[,adj_close,open,high,low,volume]`) or wide (`date` + one close column per
//! ticker) layout, and a market index file holding one series.
//!
//! Validation (every error names the file, the 1-based data row and the column):
//! - a missing `date` column, a long file without `close`/`adj_close`, an unknown column in a long
//!   file, an empty or duplicated column name, an empty file or one without data rows: error;
//! - an unparsable date, a non-numeric, infinite, zero or negative price, an empty ticker: error;
//! - dates not strictly increasing per ticker (unsorted or duplicated): error; a long file may
//!   interleave tickers (sorted by date or by ticker then date) but each ticker's dates must rise;
//! - a missing price (empty, `NA`, `NaN`, `null`): an error in a long file (the row exists but has
//!   no price), while in a wide file it means "this ticker has no price that day" (not listed yet,
//!   delisted, halted): the cell is skipped and counted in [`PriceTable::missing_cells`].
//!
//! Column names match case-insensitively with spaces and dashes read as `_` (`Adj Close` is
//! `adj_close`, `Date` is `date`, `Symbol` is `ticker`).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use arrow_array::cast::AsArray;
use arrow_array::types::{Date32Type, Float64Type};
use arrow_array::{Array, RecordBatch};
use arrow_schema::DataType;
use chrono::NaiveDate;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use serde::{Deserialize, Serialize};
use trendscore_schemas::dates::{check_date, days_to_date};

use crate::error::{FeaturesError, Result};

/// One ticker's daily closes, dates strictly increasing, prices finite and positive.
#[derive(Clone, Debug, PartialEq)]
pub struct DailySeries {
    /// Ticker symbol (for a market file: the series' column name or ticker).
    pub ticker: String,
    /// Trading dates, strictly increasing.
    pub dates: Vec<NaiveDate>,
    /// Close on each date, finite and > 0.
    pub closes: Vec<f64>,
}

/// Which layout a price file had.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Layout {
    /// One row per (date, ticker).
    Long,
    /// One row per date, one column per ticker.
    Wide,
}

/// Which price column of a long file is the close used for features and labels.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PriceColumn {
    /// `adj_close` when the file has one (split/dividend adjusted, so splits are not read as
    /// crashes), else `close`.
    #[default]
    Auto,
    /// Always `close`.
    Close,
    /// Always `adj_close` (error when missing).
    AdjClose,
}

/// All tickers of one price file.
#[derive(Clone, Debug, PartialEq)]
pub struct PriceTable {
    /// One series per ticker, sorted by ticker.
    pub series: Vec<DailySeries>,
    /// The layout the file had.
    pub layout: Layout,
    /// The column the closes came from (`close`, `adj_close`, or `<ticker columns>` for wide).
    pub price_column: String,
    /// Data rows read.
    pub rows_read: usize,
    /// Wide layout only: empty price cells skipped (ticker without a price that day).
    pub missing_cells: usize,
}

/// Long-layout column names this reader knows (after normalisation).
pub const LONG_COLUMNS: [&str; 8] = [
    "date",
    "ticker",
    "close",
    "adj_close",
    "open",
    "high",
    "low",
    "volume",
];

/// A cell as read from CSV (always text) or Parquet (typed).
#[derive(Clone, Debug)]
enum Cell {
    Str(String),
    Num(f64),
    Date(NaiveDate),
    /// A typed date outside 0001-01-01..=9999-12-31, with the reason.
    BadDate(String),
    Null,
}

/// Lower-case, trimmed, spaces and dashes as `_`; `symbol` is read as `ticker`.
fn normalise(name: &str) -> String {
    let n: String = name
        .trim()
        .chars()
        .map(|c| match c {
            ' ' | '-' => '_',
            c => c.to_ascii_lowercase(),
        })
        .collect();
    match n.as_str() {
        "symbol" => "ticker".to_string(),
        "adjclose" | "adjusted_close" => "adj_close".to_string(),
        _ => n,
    }
}

/// Parses `YYYY-MM-DD`, optionally followed by a time of day (`2020-01-02 00:00:00`,
/// `2020-01-02T00:00:00Z`), whose time part is ignored. The date must lie in
/// 0001-01-01..=9999-12-31 (`trendscore_schemas::dates`), so no later date arithmetic can
/// overflow.
pub fn parse_date(s: &str) -> std::result::Result<NaiveDate, String> {
    let s = s.trim();
    let day = match s.get(..10) {
        Some(d) if s.len() == 10 || matches!(s.as_bytes()[10], b' ' | b'T') => d,
        _ => {
            return Err(format!(
                "cannot parse {s:?} as a date (expected YYYY-MM-DD)"
            ))
        }
    };
    let d = NaiveDate::parse_from_str(day, "%Y-%m-%d")
        .map_err(|e| format!("cannot parse {s:?} as a date (expected YYYY-MM-DD): {e}"))?;
    check_date(d)
}

fn is_missing_text(s: &str) -> bool {
    matches!(
        s.trim().to_ascii_lowercase().as_str(),
        "" | "na" | "nan" | "null" | "none" | "n/a"
    )
}

/// `Ok(None)` for a missing price; an error message for anything else that is not a finite
/// positive number.
fn cell_price(cell: &Cell) -> std::result::Result<Option<f64>, String> {
    let v = match cell {
        Cell::Null => return Ok(None),
        Cell::Str(s) if is_missing_text(s) => return Ok(None),
        Cell::Str(s) => s
            .trim()
            .parse::<f64>()
            .map_err(|_| format!("cannot parse {s:?} as a price"))?,
        Cell::Num(v) if v.is_nan() => return Ok(None),
        Cell::Num(v) => *v,
        Cell::Date(d) => return Err(format!("expected a price, found the date {d}")),
        Cell::BadDate(e) => return Err(format!("expected a price, found a date ({e})")),
    };
    if !v.is_finite() {
        return Err(format!("price {v} is not finite"));
    }
    if v <= 0.0 {
        return Err(format!("non-positive price {v} (prices must be > 0)"));
    }
    Ok(Some(v))
}

fn cell_date(cell: &Cell) -> std::result::Result<NaiveDate, String> {
    match cell {
        Cell::Date(d) => Ok(*d),
        Cell::BadDate(e) => Err(e.clone()),
        Cell::Str(s) => parse_date(s),
        Cell::Null => Err("missing date".to_string()),
        Cell::Num(v) => Err(format!("expected a date, found the number {v}")),
    }
}

fn cell_text(cell: &Cell) -> Option<String> {
    match cell {
        Cell::Str(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        _ => None,
    }
}

/// A source of rows of cells, from CSV or Parquet.
trait RowSource {
    fn header(&self) -> &[String];
    /// Fills `buf` with the next row; false at the end.
    fn next_row(&mut self, buf: &mut Vec<Cell>) -> Result<bool>;
}

struct CsvSource {
    path: PathBuf,
    reader: csv::Reader<Box<dyn Read>>,
    header: Vec<String>,
    record: csv::StringRecord,
}

impl RowSource for CsvSource {
    fn header(&self) -> &[String] {
        &self.header
    }
    fn next_row(&mut self, buf: &mut Vec<Cell>) -> Result<bool> {
        let more = self
            .reader
            .read_record(&mut self.record)
            .map_err(|source| FeaturesError::Csv {
                path: self.path.clone(),
                source,
            })?;
        if !more {
            return Ok(false);
        }
        buf.clear();
        buf.extend(self.record.iter().map(|s| Cell::Str(s.to_string())));
        Ok(true)
    }
}

/// Parquet columns converted per batch to one of three kinds.
enum Col {
    Str(arrow_array::StringArray),
    Num(arrow_array::Float64Array),
    Date(arrow_array::Date32Array),
}

struct ParquetSource {
    path: PathBuf,
    reader: ParquetRecordBatchReader,
    header: Vec<String>,
    cols: Vec<Col>,
    pos: usize,
    len: usize,
}

impl ParquetSource {
    fn convert(&self, batch: &RecordBatch) -> Result<Vec<Col>> {
        let arrow_err = |source| FeaturesError::Arrow {
            path: self.path.clone(),
            source,
        };
        let mut cols = Vec::with_capacity(batch.num_columns());
        for (i, field) in batch.schema().fields().iter().enumerate() {
            let a = batch.column(i);
            let col = match a.data_type() {
                DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
                    let c = arrow_cast::cast(a, &DataType::Utf8).map_err(arrow_err)?;
                    Col::Str(c.as_string::<i32>().clone())
                }
                DataType::Date32 | DataType::Date64 | DataType::Timestamp(_, _) => {
                    let c = arrow_cast::cast(a, &DataType::Date32).map_err(arrow_err)?;
                    Col::Date(c.as_primitive::<Date32Type>().clone())
                }
                t if t.is_numeric() => {
                    let c = arrow_cast::cast(a, &DataType::Float64).map_err(arrow_err)?;
                    Col::Num(c.as_primitive::<Float64Type>().clone())
                }
                t => {
                    return Err(FeaturesError::file(
                        &self.path,
                        format!(
                        "column `{}` has unsupported type {t} (expected a string, date or number)",
                        field.name()
                    ),
                    ))
                }
            };
            cols.push(col);
        }
        Ok(cols)
    }
}

impl RowSource for ParquetSource {
    fn header(&self) -> &[String] {
        &self.header
    }
    fn next_row(&mut self, buf: &mut Vec<Cell>) -> Result<bool> {
        while self.pos >= self.len {
            match self.reader.next() {
                None => return Ok(false),
                Some(batch) => {
                    let batch = batch.map_err(|source| FeaturesError::Arrow {
                        path: self.path.clone(),
                        source,
                    })?;
                    self.cols = self.convert(&batch)?;
                    self.pos = 0;
                    self.len = batch.num_rows();
                }
            }
        }
        let i = self.pos;
        self.pos += 1;
        buf.clear();
        for c in &self.cols {
            buf.push(match c {
                Col::Str(a) if a.is_valid(i) => Cell::Str(a.value(i).to_string()),
                Col::Num(a) if a.is_valid(i) => Cell::Num(a.value(i)),
                // Date32 spans millions of years; only 0001..=9999 are dates here.
                Col::Date(a) if a.is_valid(i) => match days_to_date(a.value(i)) {
                    Ok(d) => Cell::Date(d),
                    Err(e) => Cell::BadDate(e),
                },
                _ => Cell::Null,
            });
        }
        Ok(true)
    }
}

fn open_source(path: &Path) -> Result<Box<dyn RowSource>> {
    let io = |e| FeaturesError::io(path, e);
    let mut magic = [0u8; 4];
    let n = {
        let mut f = File::open(path).map_err(io)?;
        let mut n = 0;
        while n < 4 {
            let k = f.read(&mut magic[n..]).map_err(io)?;
            if k == 0 {
                break;
            }
            n += k;
        }
        n
    };
    if n == 0 {
        return Err(FeaturesError::file(path, "empty file (no header, no rows)"));
    }
    if n == 4 && &magic == b"PAR1" {
        let f = File::open(path).map_err(io)?;
        let pq = |source| FeaturesError::Parquet {
            path: path.to_path_buf(),
            source,
        };
        let builder = ParquetRecordBatchReaderBuilder::try_new(f).map_err(pq)?;
        let header = builder
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        let reader = builder.with_batch_size(8192).build().map_err(pq)?;
        return Ok(Box::new(ParquetSource {
            path: path.to_path_buf(),
            reader,
            header,
            cols: Vec::new(),
            pos: 0,
            len: 0,
        }));
    }
    let f = BufReader::with_capacity(1 << 16, File::open(path).map_err(io)?);
    let input: Box<dyn Read> = if n >= 2 && magic[0] == 0x1f && magic[1] == 0x8b {
        Box::new(BufReader::with_capacity(
            1 << 16,
            flate2::read::MultiGzDecoder::new(f),
        ))
    } else {
        Box::new(f)
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .trim(csv::Trim::All)
        .from_reader(input);
    let header: Vec<String> = reader
        .headers()
        .map_err(|source| FeaturesError::Csv {
            path: path.to_path_buf(),
            source,
        })?
        .iter()
        .map(str::to_string)
        .collect();
    if header.iter().all(|h| h.is_empty()) {
        return Err(FeaturesError::file(path, "empty file (no header, no rows)"));
    }
    Ok(Box::new(CsvSource {
        path: path.to_path_buf(),
        reader,
        header,
        record: csv::StringRecord::new(),
    }))
}

/// Per-ticker accumulation with the strictly-increasing check.
#[derive(Default)]
struct Acc {
    dates: Vec<NaiveDate>,
    closes: Vec<f64>,
    last_row: usize,
}

impl Acc {
    fn push(
        &mut self,
        path: &Path,
        row: usize,
        date_col: &str,
        ticker: &str,
        d: NaiveDate,
        p: f64,
    ) -> Result<()> {
        if let Some(&last) = self.dates.last() {
            if d == last {
                return Err(FeaturesError::cell(
                    path,
                    row,
                    date_col,
                    format!(
                        "duplicate date {d} for ticker {ticker} (first at row {})",
                        self.last_row
                    ),
                ));
            }
            if d < last {
                return Err(FeaturesError::cell(
                    path,
                    row,
                    date_col,
                    format!(
                        "dates are not sorted: {d} for ticker {ticker} comes after {last} (row {}); \
                         sort the file by date",
                        self.last_row
                    ),
                ));
            }
        }
        self.dates.push(d);
        self.closes.push(p);
        self.last_row = row;
        Ok(())
    }
}

/// Reads a price file (see the module docs for formats and validation).
pub fn read_prices(path: &Path, price_column: PriceColumn) -> Result<PriceTable> {
    let mut src = open_source(path)?;
    let header = src.header().to_vec();
    let norm: Vec<String> = header.iter().map(|h| normalise(h)).collect();
    for (i, h) in header.iter().enumerate() {
        if h.trim().is_empty() {
            return Err(FeaturesError::file(
                path,
                format!("column {} has an empty name", i + 1),
            ));
        }
        if let Some(j) = norm[..i].iter().position(|n| *n == norm[i]) {
            return Err(FeaturesError::file(
                path,
                format!("duplicate column `{}` (same as `{}`)", h, header[j]),
            ));
        }
    }
    let Some(date_idx) = norm.iter().position(|n| n == "date") else {
        return Err(FeaturesError::file(
            path,
            format!("missing column `date` (found: {})", header.join(", ")),
        ));
    };
    let ticker_idx = norm.iter().position(|n| n == "ticker");
    match ticker_idx {
        Some(ti) => read_long(path, &mut *src, &header, &norm, date_idx, ti, price_column),
        None => {
            if let Some(n) = norm.iter().find(|n| {
                ["close", "adj_close", "open", "high", "low", "volume"].contains(&n.as_str())
            }) {
                return Err(FeaturesError::file(
                    path,
                    format!(
                        "column `{n}` looks like a long file, but there is no `ticker` column \
                         (long: date,ticker,close[,...]; wide: date + one close column per ticker)"
                    ),
                ));
            }
            read_wide(path, &mut *src, &header, date_idx)
        }
    }
}

fn read_long(
    path: &Path,
    src: &mut dyn RowSource,
    header: &[String],
    norm: &[String],
    date_idx: usize,
    ticker_idx: usize,
    price_column: PriceColumn,
) -> Result<PriceTable> {
    if let Some((i, _)) = norm
        .iter()
        .enumerate()
        .find(|(_, n)| !LONG_COLUMNS.contains(&n.as_str()))
    {
        return Err(FeaturesError::file(
            path,
            format!(
                "unknown column `{}` in a long file (expected date, ticker, close and optionally \
                 adj_close, open, high, low, volume)",
                header[i]
            ),
        ));
    }
    let close = norm.iter().position(|n| n == "close");
    let adj = norm.iter().position(|n| n == "adj_close");
    let price_idx = match (price_column, close, adj) {
        (PriceColumn::Auto, _, Some(a)) | (PriceColumn::AdjClose, _, Some(a)) => a,
        (PriceColumn::Auto, Some(c), None) | (PriceColumn::Close, Some(c), _) => c,
        (PriceColumn::AdjClose, _, None) => {
            return Err(FeaturesError::file(path, "missing column `adj_close`"))
        }
        _ => {
            return Err(FeaturesError::file(
                path,
                format!("missing column `close` (found: {})", header.join(", ")),
            ))
        }
    };
    let (date_col, ticker_col, price_col) = (
        header[date_idx].as_str(),
        header[ticker_idx].as_str(),
        header[price_idx].as_str(),
    );
    let mut accs: BTreeMap<String, Acc> = BTreeMap::new();
    let mut buf = Vec::new();
    let mut row = 0usize;
    while src.next_row(&mut buf)? {
        row += 1;
        let d =
            cell_date(&buf[date_idx]).map_err(|m| FeaturesError::cell(path, row, date_col, m))?;
        let Some(t) = cell_text(&buf[ticker_idx]) else {
            return Err(FeaturesError::cell(path, row, ticker_col, "missing ticker"));
        };
        let p = match cell_price(&buf[price_idx]) {
            Ok(Some(p)) => p,
            Ok(None) => return Err(FeaturesError::cell(path, row, price_col, "missing price")),
            Err(m) => return Err(FeaturesError::cell(path, row, price_col, m)),
        };
        accs.entry(t.clone())
            .or_default()
            .push(path, row, date_col, &t, d, p)?;
    }
    if row == 0 {
        return Err(FeaturesError::file(
            path,
            "empty file (header but no data rows)",
        ));
    }
    Ok(PriceTable {
        series: accs
            .into_iter()
            .map(|(ticker, a)| DailySeries {
                ticker,
                dates: a.dates,
                closes: a.closes,
            })
            .collect(),
        layout: Layout::Long,
        price_column: norm[price_idx].clone(),
        rows_read: row,
        missing_cells: 0,
    })
}

fn read_wide(
    path: &Path,
    src: &mut dyn RowSource,
    header: &[String],
    date_idx: usize,
) -> Result<PriceTable> {
    let tick_idx: Vec<usize> = (0..header.len()).filter(|&i| i != date_idx).collect();
    if tick_idx.is_empty() {
        return Err(FeaturesError::file(
            path,
            "no price columns: a wide file needs `date` and one close column per ticker",
        ));
    }
    let date_col = header[date_idx].as_str();
    let mut accs: Vec<Acc> = tick_idx.iter().map(|_| Acc::default()).collect();
    let mut buf = Vec::new();
    let mut row = 0usize;
    let mut prev: Option<(NaiveDate, usize)> = None;
    let mut missing = 0usize;
    while src.next_row(&mut buf)? {
        row += 1;
        let d =
            cell_date(&buf[date_idx]).map_err(|m| FeaturesError::cell(path, row, date_col, m))?;
        if let Some((pd, pr)) = prev {
            if d == pd {
                return Err(FeaturesError::cell(
                    path,
                    row,
                    date_col,
                    format!("duplicate date {d} (first at row {pr})"),
                ));
            }
            if d < pd {
                return Err(FeaturesError::cell(
                    path,
                    row,
                    date_col,
                    format!("dates are not sorted: {d} comes after {pd} (row {pr}); sort the file by date"),
                ));
            }
        }
        prev = Some((d, row));
        for (k, &ci) in tick_idx.iter().enumerate() {
            match cell_price(&buf[ci]) {
                Ok(Some(p)) => accs[k].push(path, row, date_col, &header[ci], d, p)?,
                Ok(None) => missing += 1,
                Err(m) => return Err(FeaturesError::cell(path, row, &header[ci], m)),
            }
        }
    }
    if row == 0 {
        return Err(FeaturesError::file(
            path,
            "empty file (header but no data rows)",
        ));
    }
    let mut series: Vec<DailySeries> = tick_idx
        .iter()
        .zip(accs)
        .map(|(&ci, a)| DailySeries {
            ticker: header[ci].trim().to_string(),
            dates: a.dates,
            closes: a.closes,
        })
        .filter(|s| !s.dates.is_empty())
        .collect();
    series.sort_by(|a, b| a.ticker.cmp(&b.ticker));
    Ok(PriceTable {
        series,
        layout: Layout::Wide,
        price_column: "<ticker columns>".to_string(),
        rows_read: row,
        missing_cells: missing,
    })
}

/// Reads a market index file holding exactly one series: `date` + one value column (e.g.
/// skfolio's `Date,SP500`), a long file with one ticker, or `date,close[,...]` without a ticker
/// column (the price column chosen as for long files).
pub fn read_market(path: &Path, price_column: PriceColumn) -> Result<DailySeries> {
    let table = match read_prices(path, price_column) {
        Err(FeaturesError::File { message, .. }) if message.contains("no `ticker` column") => {
            read_market_ohlc(path, price_column)?
        }
        other => other?,
    };
    match table.series.len() {
        1 => Ok(table.series.into_iter().next().expect("one series")),
        n => Err(FeaturesError::file(
            path,
            format!(
                "a market file must hold one series, found {n} ({})",
                table
                    .series
                    .iter()
                    .map(|s| s.ticker.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
    }
}

/// `date,close[,open,...]` without a ticker column: one series named after the file stem.
fn read_market_ohlc(path: &Path, price_column: PriceColumn) -> Result<PriceTable> {
    let src = open_source(path)?;
    let header = src.header().to_vec();
    let mut norm: Vec<String> = header.iter().map(|h| normalise(h)).collect();
    norm.push("ticker".to_string());
    let date_idx = norm.iter().position(|n| n == "date").expect("checked");
    let ticker_idx = norm.len() - 1;
    let name = path
        .file_name()
        .and_then(|s| s.to_str())
        .and_then(|s| s.split('.').next())
        .unwrap_or("market")
        .to_string();
    let mut header2 = header.clone();
    header2.push("ticker".to_string());
    let mut inner = WithTicker { src, name };
    read_long(
        path,
        &mut inner,
        &header2,
        &norm,
        date_idx,
        ticker_idx,
        price_column,
    )
}

struct WithTicker {
    src: Box<dyn RowSource>,
    name: String,
}

impl RowSource for WithTicker {
    fn header(&self) -> &[String] {
        self.src.header()
    }
    fn next_row(&mut self, buf: &mut Vec<Cell>) -> Result<bool> {
        let more = self.src.next_row(buf)?;
        if more {
            buf.push(Cell::Str(self.name.clone()));
        }
        Ok(more)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_dates_with_and_without_time() {
        let d = NaiveDate::from_ymd_opt(2020, 1, 2).unwrap();
        assert_eq!(parse_date("2020-01-02").unwrap(), d);
        assert_eq!(parse_date("2020-01-02 00:00:00").unwrap(), d);
        assert_eq!(parse_date("2020-01-02T00:00:00Z").unwrap(), d);
        assert!(parse_date("02/01/2020").is_err());
        assert!(parse_date("2020-13-01").is_err());
        assert!(parse_date("2020-01-0212").is_err());
        let e = parse_date("0000-12-31").unwrap_err();
        assert!(e.contains("outside 0001-01-01..=9999-12-31"), "{e}");
        assert!(parse_date("-999-01-01").is_err());
        assert!(parse_date("9999-12-31").is_ok() && parse_date("0001-01-01").is_ok());
    }

    #[test]
    fn normalises_column_names() {
        assert_eq!(normalise(" Adj Close "), "adj_close");
        assert_eq!(normalise("Date"), "date");
        assert_eq!(normalise("Symbol"), "ticker");
        assert_eq!(normalise("AAPL"), "aapl");
    }

    #[test]
    fn price_cells() {
        assert_eq!(cell_price(&Cell::Str("1.5".into())).unwrap(), Some(1.5));
        assert_eq!(cell_price(&Cell::Str("".into())).unwrap(), None);
        assert_eq!(cell_price(&Cell::Str("NaN".into())).unwrap(), None);
        assert!(cell_price(&Cell::Str("0".into()))
            .unwrap_err()
            .contains("non-positive"));
        assert!(cell_price(&Cell::Str("-3".into()))
            .unwrap_err()
            .contains("non-positive"));
        assert!(cell_price(&Cell::Str("inf".into()))
            .unwrap_err()
            .contains("not finite"));
        assert!(cell_price(&Cell::Str("abc".into()))
            .unwrap_err()
            .contains("cannot parse"));
    }
}
