//! Trace parsing and lookup (system-model.md §1 arrival-rate traces, §4 link-rate traces). This
//! module turns trace *text* into piecewise-constant time series; it never touches the file
//! system (the binary reads the file and passes its text with the file name as `origin`, which
//! every error repeats together with the line number and what was expected).
//!
//! Two formats:
//! - a simple CSV with a header row, a `time_s` column and one named value column
//!   (`bandwidth_bps` for link traces, `rate_per_s` for arrival-rate traces, ...);
//! - the Mahimahi packet-delivery format (Netravali et al., "Mahimahi: Accurate Record-and-Replay
//!   for HTTP", USENIX ATC 2015): one integer millisecond timestamp per line, each line one
//!   opportunity to deliver one MTU-sized packet, the trace repeating with period = last
//!   timestamp. It is converted to bit/s over fixed bins.

use crate::validate::{InvalidField, Validation, non_negative};
use std::fmt;

/// Mahimahi's delivery opportunity is one MTU-sized packet (Netravali et al. 2015, §3: "each
/// line ... represents a packet delivery opportunity ... of an MTU-sized (1500-byte) packet").
pub const MAHIMAHI_PACKET_BYTES: u32 = 1500;

/// Bits per byte, named so conversions read as units.
const BITS_PER_BYTE: f64 = 8.0;
/// Mahimahi timestamps are milliseconds.
const MS_PER_S: f64 = 1000.0;

/// A trace that could not be parsed: `origin:line: message (expected ...)`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct TraceError {
    /// Where the text came from (a file path, as given by the caller).
    pub origin: String,
    /// 1-based line number of the offending line (0 when the problem is not tied to a line,
    /// e.g. an invalid parser argument).
    pub line: usize,
    pub message: String,
    pub expected: String,
}

impl fmt::Display for TraceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {} (expected {})", self.origin, self.line, self.message, self.expected)
    }
}

impl TraceError {
    fn new(origin: &str, line: usize, message: impl Into<String>, expected: impl Into<String>) -> Self {
        Self { origin: origin.to_string(), line, message: message.into(), expected: expected.into() }
    }
}

/// A position hint for monotone lookups: the index of the last sample looked up. Lookups at
/// non-decreasing times scan forward from it (amortised O(1)); a jump back (a loop wrap or a
/// restart) falls back to a binary search. It is plain data, so it can live in an env state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TraceCursor {
    pub index: usize,
}

/// A piecewise-constant series: `values[i]` holds on `[times_s[i], times_s[i + 1])`, the last
/// value on `[times_s[n-1], times_s[0] + period_s)`. It carries link-rate traces (bit/s, §4) and
/// arrival-rate traces (requests/s, §1) alike.
///
/// Looked up without looping, the first value holds before `times_s[0]` and the last value holds
/// for ever after the end. Looked up with looping, the series is periodic in both directions: a
/// time before `times_s[0]` maps into the pass as well (it reads the value one period later).
///
/// The fields are public so tests and callers can build series by hand; [`TimeSeries::validate`]
/// checks the invariants the lookups rely on, and the parsers and constructors only produce valid
/// series.
#[derive(Clone, Debug, PartialEq)]
pub struct TimeSeries {
    pub times_s: Vec<f64>,
    pub values: Vec<f64>,
    /// Length of one pass. For a CSV the last row holds for as long as the interval before it
    /// (rows are samples, each valid until the next); a single-row series is constant and has an
    /// infinite period. A Mahimahi trace has its own period (the last timestamp).
    pub period_s: f64,
}

/// A cursor lookup this many samples or more behind `t` binary-searches the rest instead of
/// scanning: slot-by-slot lookups move zero or one sample, so the scan is the common case and a
/// jump (a fresh cursor, a restored state) stays O(log n).
const CURSOR_SCAN_SAMPLES: usize = 8;

impl TimeSeries {
    /// A series with the CSV period convention (see [`TimeSeries::period_s`]), validated.
    pub fn new(times_s: Vec<f64>, values: Vec<f64>) -> Result<Self, InvalidField> {
        let period_s = csv_period_s(&times_s);
        Self::with_period(times_s, values, period_s)
    }

    /// A series with an explicit period, validated.
    pub fn with_period(times_s: Vec<f64>, values: Vec<f64>, period_s: f64) -> Result<Self, InvalidField> {
        let series = Self { times_s, values, period_s };
        series.validate()?;
        Ok(series)
    }

    /// Non-empty, one value per time, times finite and strictly increasing, values finite and
    /// >= 0, and a period (> 0, possibly infinite) long enough for one pass to hold every row.
    pub fn validate(&self) -> Validation {
        let Some((&first_s, &last_s)) = self.times_s.first().zip(self.times_s.last()) else {
            return Err(InvalidField::new("times_s", "[]", "a time series needs at least one row"));
        };
        if self.values.len() != self.times_s.len() {
            return Err(InvalidField::new(
                "values",
                format!("{} entries", self.values.len()),
                format!("must have one value per time ({})", self.times_s.len()),
            ));
        }
        for (i, &t) in self.times_s.iter().enumerate() {
            if !t.is_finite() || (i > 0 && t <= self.times_s[i - 1]) {
                return Err(InvalidField::new(
                    format!("times_s[{i}]"),
                    t,
                    "times must be finite and strictly increasing",
                ));
            }
        }
        for (i, &v) in self.values.iter().enumerate() {
            non_negative(&format!("values[{i}]"), v, "a series value")?;
        }
        let span_s = last_s - first_s;
        if !(self.period_s > 0.0 && self.period_s >= span_s) {
            return Err(InvalidField::new(
                "period_s",
                self.period_s,
                format!("must be > 0 and >= times_s[last] − times_s[0] = {span_s} (one pass holds every row)"),
            ));
        }
        Ok(())
    }

    /// Value at time `t_s`.
    pub fn value_at(&self, t_s: f64, loop_trace: bool) -> f64 {
        let mut cursor = TraceCursor::default();
        self.value_at_cursor(&mut cursor, t_s, loop_trace)
    }

    /// Value at time `t_s`, cheap when successive calls have non-decreasing `t_s`. This is the
    /// one lookup every caller goes through. Allocation-free; an (invalid) empty series reads 0.
    #[inline]
    pub fn value_at_cursor(&self, cursor: &mut TraceCursor, t_s: f64, loop_trace: bool) -> f64 {
        let n = self.times_s.len().min(self.values.len());
        if n == 0 {
            return 0.0;
        }
        let times = &self.times_s[..n];
        let t = self.wrap_time(t_s, loop_trace);
        let mut i = cursor.index.min(n - 1);
        if t < times[i] {
            // Jumped back: binary search for the last sample at or before t (0 if before the start).
            i = times.partition_point(|&x| x <= t).saturating_sub(1);
        } else if i + CURSOR_SCAN_SAMPLES < n && times[i + CURSOR_SCAN_SAMPLES] <= t {
            // Far ahead: the answer is at or past i + CURSOR_SCAN_SAMPLES, binary-search the rest.
            i += CURSOR_SCAN_SAMPLES + times[i + CURSOR_SCAN_SAMPLES + 1..].partition_point(|&x| x <= t);
        } else {
            while i + 1 < n && times[i + 1] <= t {
                i += 1;
            }
        }
        cursor.index = i;
        self.values[i]
    }

    /// Maps `t_s` into one pass of the series (looping a finite period) or leaves it.
    #[inline]
    fn wrap_time(&self, t_s: f64, loop_trace: bool) -> f64 {
        let start_s = self.start_s();
        if loop_trace && self.period_s.is_finite() && self.period_s > 0.0 {
            start_s + (t_s - start_s).rem_euclid(self.period_s)
        } else {
            t_s
        }
    }

    /// First time of the series.
    pub fn start_s(&self) -> f64 {
        self.times_s.first().copied().unwrap_or(0.0)
    }

    /// Time at which one pass ends (infinite for a constant single-row series).
    pub fn end_s(&self) -> f64 {
        self.start_s() + self.period_s
    }

    /// Multiplies every value by `factor` (a link config's `scale`, e.g. to turn a 3G trace into
    /// a faster link with the same dynamics).
    pub fn scaled(mut self, factor: f64) -> Self {
        for value in &mut self.values {
            *value *= factor;
        }
        self
    }

    /// Time-weighted mean over one pass, the last sample holding until the pass ends (a constant
    /// single-row series: its value).
    pub fn mean_value(&self) -> f64 {
        if !(self.period_s.is_finite() && self.period_s > 0.0) {
            return self.values.first().copied().unwrap_or(0.0);
        }
        let end_s = self.end_s();
        let mut area = 0.0;
        for (i, value) in self.values.iter().enumerate() {
            let next_s = self.times_s.get(i + 1).copied().unwrap_or(end_s);
            area += value * (next_s - self.times_s[i]);
        }
        area / self.period_s
    }

    /// The largest value (0 for an empty series; values are >= 0).
    pub fn max_value(&self) -> f64 {
        self.values.iter().copied().fold(0.0, f64::max)
    }
}

/// The CSV period convention: the last row lasts as long as the interval before it, so a series
/// sampled every dt has period n·dt; a single row is constant (infinite period).
fn csv_period_s(times_s: &[f64]) -> f64 {
    match times_s.len() {
        0 | 1 => f64::INFINITY,
        n => times_s[n - 1] + (times_s[n - 1] - times_s[n - 2]) - times_s[0],
    }
}

/// Splits off a `#` comment and surrounding whitespace.
fn strip_comment(line: &str) -> &str {
    line.split('#').next().unwrap_or("").trim()
}

/// Parses a CSV time series: a header row naming the columns (at least `time_s` and
/// `value_column`; other columns are allowed and ignored), then one row per sample. Blank lines
/// and `#` comments are skipped. Times must be finite, >= 0 and strictly increasing; values
/// finite and >= 0. Every row must have as many fields as the header.
pub fn parse_time_series_csv(text: &str, origin: &str, value_column: &str) -> Result<TimeSeries, TraceError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let expected_header = format!("a header row with columns `time_s` and `{value_column}`");
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, strip_comment(l)));
    let mut last_line = 0;

    let header = loop {
        match lines.next() {
            None => {
                return Err(TraceError::new(origin, last_line.max(1), "empty trace: no header row", expected_header));
            }
            Some((n, l)) => {
                last_line = n;
                if !l.is_empty() {
                    break (n, l);
                }
            }
        }
    };
    let (header_line, header_text) = header;
    let columns: Vec<&str> = header_text.split(',').map(str::trim).collect();
    for (i, name) in columns.iter().enumerate() {
        if columns[..i].contains(name) {
            return Err(TraceError::new(
                origin,
                header_line,
                format!("column `{name}` appears twice in the header"),
                "distinct column names",
            ));
        }
    }
    let find = |name: &str| {
        columns.iter().position(|c| *c == name).ok_or_else(|| {
            TraceError::new(
                origin,
                header_line,
                format!("missing column `{name}` in header `{header_text}`"),
                expected_header.clone(),
            )
        })
    };
    let time_col = find("time_s")?;
    let value_col = find(value_column)?;

    let mut times_s = Vec::new();
    let mut values = Vec::new();
    for (n, l) in lines {
        last_line = n;
        if l.is_empty() {
            continue;
        }
        let fields: Vec<&str> = l.split(',').map(str::trim).collect();
        if fields.len() != columns.len() {
            return Err(TraceError::new(
                origin,
                n,
                format!("row has {} fields, the header has {}", fields.len(), columns.len()),
                format!("{} comma-separated fields", columns.len()),
            ));
        }
        let number = |col: usize, name: &str| -> Result<f64, TraceError> {
            let raw = fields[col];
            match raw.parse::<f64>() {
                Ok(x) if x.is_finite() && x >= 0.0 => Ok(x),
                Ok(x) => Err(TraceError::new(
                    origin,
                    n,
                    format!("`{name}` = {x} is negative or not finite"),
                    format!("a finite number >= 0 in column `{name}`"),
                )),
                Err(_) => Err(TraceError::new(
                    origin,
                    n,
                    format!("`{raw}` is not a number"),
                    format!("a finite number >= 0 in column `{name}`"),
                )),
            }
        };
        let t = number(time_col, "time_s")?;
        let v = number(value_col, value_column)?;
        if let Some(&prev) = times_s.last()
            && t <= prev
        {
            return Err(TraceError::new(
                origin,
                n,
                format!("time_s = {t} does not increase (previous row: {prev})"),
                "strictly increasing time_s",
            ));
        }
        times_s.push(t);
        values.push(v);
    }
    if times_s.is_empty() {
        return Err(TraceError::new(
            origin,
            last_line.max(header_line),
            "the trace has a header but no data rows",
            format!("at least one row of `time_s,{value_column}` values after the header"),
        ));
    }
    let period_s = csv_period_s(&times_s);
    Ok(TimeSeries { times_s, values, period_s })
}

/// Parses a Mahimahi packet-delivery trace into bit/s over bins of `bin_s` seconds.
///
/// Each line is an integer millisecond timestamp (non-decreasing; repeated timestamps are
/// several packets in the same millisecond) and grants one delivery of `packet_bytes` bytes.
/// The trace repeats with period P = last timestamp (> 0), so the opportunities of one pass are
/// those in (0, P]; the one at P is also time 0 of the next pass, which is where it is counted.
/// Bin i covers `[i·bin_s, min((i+1)·bin_s, P))` and its rate is
/// `packets · packet_bytes · 8 / bin length`. Example: the single line `1` is one 1500-byte
/// packet per ms = 12 Mbit/s.
pub fn parse_mahimahi(text: &str, origin: &str, packet_bytes: u32, bin_s: f64) -> Result<TimeSeries, TraceError> {
    if packet_bytes == 0 {
        return Err(TraceError::new(origin, 0, "packet_bytes = 0", "a packet size > 0 bytes"));
    }
    if !(bin_s.is_finite() && bin_s > 0.0) {
        return Err(TraceError::new(origin, 0, format!("bin_s = {bin_s}"), "a bin length > 0 s"));
    }
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut stamps_ms: Vec<u64> = Vec::new();
    let mut last_line = 0;
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        last_line = n;
        let l = strip_comment(raw);
        if l.is_empty() {
            continue;
        }
        let Ok(t) = l.parse::<u64>() else {
            return Err(TraceError::new(
                origin,
                n,
                format!("`{l}` is not a millisecond timestamp"),
                "one non-negative integer (milliseconds) per line",
            ));
        };
        if let Some(&prev) = stamps_ms.last()
            && t < prev
        {
            return Err(TraceError::new(
                origin,
                n,
                format!("timestamp {t} ms is earlier than the previous one ({prev} ms)"),
                "non-decreasing timestamps",
            ));
        }
        stamps_ms.push(t);
    }
    let Some(&period_ms) = stamps_ms.last() else {
        return Err(TraceError::new(
            origin,
            last_line.max(1),
            "empty trace: no timestamps",
            "one millisecond timestamp per line",
        ));
    };
    if period_ms == 0 {
        return Err(TraceError::new(
            origin,
            last_line,
            "the last timestamp is 0 ms, so the trace has no duration",
            "a last timestamp > 0 ms (it is the loop period)",
        ));
    }

    let period_s = period_ms as f64 / MS_PER_S;
    let n_bins = (period_s / bin_s).ceil().max(1.0) as usize;
    let mut packets = vec![0u64; n_bins];
    for &t in &stamps_ms {
        let t_s = (t % period_ms) as f64 / MS_PER_S;
        let bin = ((t_s / bin_s) as usize).min(n_bins - 1);
        packets[bin] += 1;
    }
    let packet_bits = f64::from(packet_bytes) * BITS_PER_BYTE;
    let mut times_s = Vec::with_capacity(n_bins);
    let mut values = Vec::with_capacity(n_bins);
    for (i, &count) in packets.iter().enumerate() {
        let start = i as f64 * bin_s;
        let length = (period_s - start).min(bin_s);
        times_s.push(start);
        values.push(count as f64 * packet_bits / length);
    }
    Ok(TimeSeries { times_s, values, period_s })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, rel: f64) -> bool {
        (a - b).abs() <= rel * b.abs().max(1e-300)
    }

    #[test]
    fn csv_parses_columns_comments_and_period() {
        let text = "# LTE drive, 1 s samples\n\
                    time_s, bandwidth_bps, note\n\
                    0, 5e6, a\n\
                    \n\
                    1, 8e6, b # comment after a row\n\
                    2.5, 2e6, c\n";
        let s = parse_time_series_csv(text, "lte.csv", "bandwidth_bps").unwrap();
        assert_eq!(s.times_s, vec![0.0, 1.0, 2.5]);
        assert_eq!(s.values, vec![5e6, 8e6, 2e6]);
        // Last row lasts as long as the interval before it: 2.5 + 1.5 = 4.0.
        assert_eq!(s.period_s, 4.0);
        assert_eq!(s.value_at(0.99, false), 5e6);
        assert_eq!(s.value_at(1.0, false), 8e6);
        assert_eq!(s.value_at(3.9, false), 2e6);
        // Holding: after the end the last value stays; looping: 4.5 ≡ 0.5.
        assert_eq!(s.value_at(100.0, false), 2e6);
        assert_eq!(s.value_at(4.5, true), 5e6);
        assert_eq!(s.value_at(5.2, true), 8e6);
    }

    #[test]
    fn csv_single_row_is_constant_forever() {
        let s = parse_time_series_csv("time_s,rate_per_s\n0,3\n", "x.csv", "rate_per_s").unwrap();
        assert!(s.period_s.is_infinite());
        assert_eq!(s.value_at(1e9, true), 3.0);
        assert_eq!(s.value_at(1e9, false), 3.0);
    }

    #[test]
    fn csv_rate_trace_scales_and_averages() {
        let s = parse_time_series_csv("time_s,bandwidth_bps\n0,1e6\n1,3e6\n", "t", "bandwidth_bps").unwrap();
        let r = s.scaled(2.0);
        // Hand computation: 2·(1e6·1 s + 3e6·1 s) / 2 s = 4e6.
        assert!(close(r.mean_value(), 4e6, 1e-12));
        assert_eq!(r.value_at(1.5, true), 6e6);
    }

    #[test]
    fn cursor_lookup_matches_binary_search_with_loops() {
        let s = parse_time_series_csv("time_s,bandwidth_bps\n0.5,1\n1,2\n1.7,3\n3,4\n", "t", "bandwidth_bps").unwrap();
        let mut cursor = TraceCursor::default();
        for k in 0..400 {
            let t = k as f64 * 0.037;
            for looped in [true, false] {
                let mut c = cursor;
                assert_eq!(s.value_at_cursor(&mut c, t, looped), s.value_at(t, looped), "t={t}");
            }
            s.value_at_cursor(&mut cursor, t, true);
        }
        // Before the first time the first value holds when not looping.
        assert_eq!(s.value_at(0.1, false), 1.0);
        // Looping maps 0.1 to 0.1 + period (3 + 1.3 − 0.5 = 3.8) → 3.9 ≥ 3 → 4.
        assert_eq!(s.value_at(0.1, true), 4.0);
    }

    #[test]
    fn cursor_lookup_matches_a_brute_force_reference_on_a_long_series() {
        // 40 irregular samples (gaps 1, 1.3, 0.7 repeating) so that forward jumps longer than
        // CURSOR_SCAN_SAMPLES take the binary-search branch. Reference: wrap into one pass by
        // hand, then the last sample at or before t by a linear count.
        let times_s: Vec<f64> = (0..40).map(|i| i as f64 + 0.3 * (i % 3) as f64).collect();
        let values: Vec<f64> = (0..40).map(|i| i as f64).collect();
        let s = TimeSeries::new(times_s.clone(), values).unwrap();
        let reference = |t_s: f64, looped: bool| {
            let t = if looped { s.start_s() + (t_s - s.start_s()).rem_euclid(s.period_s) } else { t_s };
            times_s.iter().filter(|&&x| x <= t).count().saturating_sub(1) as f64
        };
        // Small steps, a long jump forward, jumps back, a loop wrap and times before the start.
        let queries = [0.0, 0.4, 1.0, 1.1, 2.5, 3.0, 25.2, 25.3, 39.0, 40.2, 41.0, 12.0, -3.0, 80.5, 5.5, 100.0];
        for looped in [true, false] {
            let mut cursor = TraceCursor::default();
            for &t in &queries {
                assert_eq!(s.value_at_cursor(&mut cursor, t, looped), reference(t, looped), "t={t} loop={looped}");
                assert_eq!(s.value_at(t, looped), reference(t, looped), "t={t} loop={looped}");
            }
        }
    }

    #[test]
    fn validate_names_the_offending_entry() {
        assert_eq!(TimeSeries::new(vec![], vec![]).unwrap_err().field, "times_s");
        assert_eq!(TimeSeries::new(vec![0.0, 1.0], vec![1.0]).unwrap_err().field, "values");
        assert_eq!(TimeSeries::new(vec![0.0, f64::NAN], vec![1.0, 1.0]).unwrap_err().field, "times_s[1]");
        let e = TimeSeries::new(vec![0.0, 1.0, 1.0], vec![1.0; 3]).unwrap_err();
        assert_eq!(e.field, "times_s[2]");
        assert!(e.to_string().starts_with("times_s[2] = 1: times must be finite and strictly increasing"), "{e}");
        assert_eq!(TimeSeries::new(vec![0.0, 1.0], vec![1.0, f64::INFINITY]).unwrap_err().field, "values[1]");
        assert_eq!(TimeSeries::new(vec![0.0], vec![-1.0]).unwrap_err().field, "values[0]");
        // One pass must hold every row: rows up to t = 2 need a period >= 2.
        assert_eq!(TimeSeries::with_period(vec![0.0, 1.0, 2.0], vec![1.0; 3], 1.5).unwrap_err().field, "period_s");
        assert_eq!(TimeSeries::with_period(vec![0.0], vec![1.0], f64::NAN).unwrap_err().field, "period_s");
        assert_eq!(TimeSeries::with_period(vec![0.0], vec![1.0], 0.0).unwrap_err().field, "period_s");
        // What the parsers produce is valid.
        parse_time_series_csv("time_s,v\n0,1\n2,3\n", "t", "v").unwrap().validate().unwrap();
        parse_mahimahi("10\n10\n50\n150\n210\n250\n", "m", 1500, 0.1).unwrap().validate().unwrap();
    }

    #[test]
    fn constructor_applies_the_csv_period_and_summaries_by_hand() {
        // Rows at 5 and 7 s: the last row lasts the 2 s gap before it, period 4 s, pass [5, 9).
        let s = TimeSeries::new(vec![5.0, 7.0], vec![3.0, 1.0]).unwrap();
        assert_eq!((s.start_s(), s.period_s, s.end_s()), (5.0, 4.0, 9.0));
        // (3·2 + 1·2)/4 = 2; max 3.
        assert_eq!(s.mean_value(), 2.0);
        assert_eq!(s.max_value(), 3.0);
        let one = TimeSeries::new(vec![2.0], vec![7.0]).unwrap();
        assert!(one.period_s.is_infinite() && one.end_s().is_infinite());
        assert_eq!((one.mean_value(), one.max_value()), (7.0, 7.0));
    }

    #[test]
    fn csv_errors_name_origin_line_and_expectation() {
        let e = parse_time_series_csv("", "empty.csv", "bandwidth_bps").unwrap_err();
        assert_eq!(e.line, 1);
        assert!(e.to_string().starts_with("empty.csv:1: empty trace"), "{e}");
        assert!(e.to_string().contains("(expected a header row"), "{e}");

        let e = parse_time_series_csv("# only\n\ntime_s,bandwidth_bps\n", "h.csv", "bandwidth_bps").unwrap_err();
        assert_eq!(e.line, 3);
        assert!(e.message.contains("no data rows"), "{e}");

        let e = parse_time_series_csv("time_s,rate\n0,1\n", "m.csv", "bandwidth_bps").unwrap_err();
        assert_eq!((e.line, e.origin.as_str()), (1, "m.csv"));
        assert!(e.message.contains("missing column `bandwidth_bps`"), "{e}");

        let text = "time_s,bandwidth_bps\n0,1e6\n1,fast\n";
        let e = parse_time_series_csv(text, "n.csv", "bandwidth_bps").unwrap_err();
        assert_eq!(
            e.to_string(),
            "n.csv:3: `fast` is not a number (expected a finite number >= 0 in column `bandwidth_bps`)"
        );

        let text = "time_s,bandwidth_bps\n0,1e6\n2,1e6\n# c\n1.5,1e6\n";
        let e = parse_time_series_csv(text, "d.csv", "bandwidth_bps").unwrap_err();
        assert_eq!(e.line, 5);
        assert!(e.message.contains("does not increase"), "{e}");

        let text = "time_s,bandwidth_bps\n0,1e6\n1,1e6\n1,2e6\n";
        assert_eq!(parse_time_series_csv(text, "d", "bandwidth_bps").unwrap_err().line, 4);

        let text = "time_s,bandwidth_bps\n0,-1\n";
        let e = parse_time_series_csv(text, "neg.csv", "bandwidth_bps").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("negative"), "{e}");

        let text = "time_s,bandwidth_bps\n0,inf\n";
        assert_eq!(parse_time_series_csv(text, "i", "bandwidth_bps").unwrap_err().line, 2);

        let text = "time_s,bandwidth_bps\n0,1,2\n";
        let e = parse_time_series_csv(text, "w.csv", "bandwidth_bps").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("3 fields"), "{e}");

        let e = parse_time_series_csv("time_s,time_s\n", "dup", "time_s").unwrap_err();
        assert_eq!(e.line, 1);
        assert!(e.message.contains("twice"), "{e}");
    }

    #[test]
    fn mahimahi_one_packet_per_ms_is_12_mbps() {
        // Mahimahi's constant 12 Mbit/s trace: the single line `1` = one 1500 B packet per ms,
        // 1500·8 bit / 1 ms = 12e6 bit/s. The period (1 ms) is shorter than the bin, so the one
        // bin is 1 ms long.
        let r = parse_mahimahi("1\n", "12mbps", MAHIMAHI_PACKET_BYTES, 1.0).unwrap();
        assert_eq!(r.period_s, 0.001);
        assert_eq!(r.values.len(), 1);
        assert!(close(r.values[0], 12e6, 1e-12));
        assert!(close(r.value_at(123.4567, true), 12e6, 1e-12));

        // The same link written out over 2 s: timestamps 1..=2000, bins of 0.5 s.
        let text: String = (1..=2000).map(|t| format!("{t}\n")).collect();
        let r = parse_mahimahi(&text, "12mbps-long", 1500, 0.5).unwrap();
        assert_eq!(r.times_s, vec![0.0, 0.5, 1.0, 1.5]);
        for rate in &r.values {
            assert!(close(*rate, 12e6, 1e-12), "{rate}");
        }
    }

    #[test]
    fn mahimahi_irregular_trace_bins_by_hand() {
        // Period P = 250 ms, bins of 100 ms: [0,100), [100,200), [200,250).
        // Stamps: 10, 10, 50 → bin 0 (3 packets); 150 → bin 1; 210, 250 → 250 wraps to 0 ms,
        // so bin 0 gets 4 packets, bin 2 one packet.
        // Rates: bin 0: 4·12000 bit / 0.1 s = 480 kbit/s; bin 1: 120 kbit/s;
        // bin 2: 12000 / 0.05 s = 240 kbit/s.
        let text = "10\n10\n50\n150\n210\n250\n";
        let r = parse_mahimahi(text, "irregular", 1500, 0.1).unwrap();
        assert_eq!(r.period_s, 0.25);
        assert_eq!(r.times_s.len(), 3);
        let want = [480e3, 120e3, 240e3];
        for (got, want) in r.values.iter().zip(want) {
            assert!(close(*got, want, 1e-12), "{got} vs {want}");
        }
        // Conservation: mean rate = 6 packets · 12000 bit / 0.25 s = 288 kbit/s.
        assert!(close(r.mean_value(), 288e3, 1e-12));
        // Looping: t = 0.26 s is 10 ms into the second pass → bin 0.
        assert!(close(r.value_at(0.26, true), 480e3, 1e-12));
    }

    #[test]
    fn mahimahi_errors_name_the_line() {
        let e = parse_mahimahi("1\n2\nx3\n", "bad.up", 1500, 1.0).unwrap_err();
        assert_eq!(e.line, 3);
        assert!(e.to_string().starts_with("bad.up:3: `x3` is not a millisecond timestamp"));
        let e = parse_mahimahi("1\n5\n4\n", "dec.up", 1500, 1.0).unwrap_err();
        assert_eq!(e.line, 3);
        assert!(e.message.contains("earlier"), "{e}");
        assert_eq!(parse_mahimahi("1.5\n", "f", 1500, 1.0).unwrap_err().line, 1);
        assert_eq!(parse_mahimahi("-1\n", "f", 1500, 1.0).unwrap_err().line, 1);
        let e = parse_mahimahi("\n\n", "empty.up", 1500, 1.0).unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("empty"), "{e}");
        assert_eq!(parse_mahimahi("0\n0\n", "z", 1500, 1.0).unwrap_err().line, 2);
        assert!(parse_mahimahi("1\n", "p", 0, 1.0).is_err());
        assert!(parse_mahimahi("1\n", "p", 1500, 0.0).is_err());
    }
}
