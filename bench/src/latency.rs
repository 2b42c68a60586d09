//! Latency summaries from raw samples.
//!
//! Samples are kept as a plain `Vec<u64>` of nanoseconds and sorted once at
//! the end rather than in an HDR histogram: every scenario's sample count is
//! bounded by its event count (1 million for the backlog, 8 MB), the
//! percentiles and the max are then exact, and the suite needs no extra
//! dependency. A histogram would only pay off for unbounded runs.

use serde::Serialize;

/// Percentiles of one set of latencies, in milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Latency {
    /// How many samples.
    pub count: u64,
    /// Median.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Largest.
    pub max_ms: f64,
}

impl Latency {
    /// Summarizes `samples` (nanoseconds); sorts them in place.
    pub fn of(samples: &mut [u64]) -> Latency {
        samples.sort_unstable();
        let Some(last) = samples.len().checked_sub(1) else {
            return Latency::default();
        };
        let at = |q: f64| {
            // Sample counts stay far below 2^52, so the index is exact.
            #[allow(
                clippy::cast_precision_loss,
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss
            )]
            let i = (last as f64 * q).round() as usize;
            ms(samples[i.min(last)])
        };
        Latency {
            count: samples.len() as u64,
            p50_ms: at(0.50),
            p99_ms: at(0.99),
            max_ms: ms(samples[last]),
        }
    }
}

/// Nanoseconds as milliseconds.
pub fn ms(nanos: u64) -> f64 {
    // Below 2^52 ns (52 days) the conversion is exact.
    #[allow(clippy::cast_precision_loss)]
    let n = nanos as f64;
    n / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_exact_samples() {
        let mut s: Vec<u64> = (1..=100).rev().map(|i| i * 1_000_000).collect();
        let l = Latency::of(&mut s);
        assert_eq!(l.count, 100);
        assert!((l.p50_ms - 51.0).abs() < 1e-9, "{l:?}");
        assert!((l.p99_ms - 99.0).abs() < 1e-9, "{l:?}");
        assert!((l.max_ms - 100.0).abs() < 1e-9, "{l:?}");
        assert_eq!(Latency::of(&mut []).count, 0);
    }
}
