//! Whether the soak ended flat: for each series, the mean of the last
//! quarter of the samples against the mean of the second quarter (the
//! first quarter is warm-up: caches filling, the queue and the retention
//! window reaching their steady size). A series is flat when the last
//! quarter is within a tolerance of the second: a relative share plus an
//! absolute slack, so that small numbers (a few file descriptors) do not
//! fail on noise. Growth is what a soak looks for; a drop is flat, except
//! for the delivery rate, which must hold in both directions.
//!
//! The verdict is reported, never asserted: it depends on the machine.

use serde::Serialize;

use super::sample::Sample;

/// One series' verdict.
#[derive(Debug, Clone, Serialize)]
pub struct SeriesVerdict {
    /// The series (`rss_bytes`, `p99_ms`, …).
    pub series: String,
    /// Mean over the second quarter of the samples.
    pub second_quarter_mean: f64,
    /// Mean over the last quarter.
    pub last_quarter_mean: f64,
    /// `last ÷ second − 1` (0 when the second quarter's mean is 0).
    pub change: f64,
    /// The relative tolerance.
    pub tolerance: f64,
    /// The absolute slack, in the series' unit.
    pub slack: f64,
    /// Within tolerance.
    pub flat: bool,
}

/// The whole verdict.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    /// Every series flat (and enough samples to say so).
    pub flat: bool,
    /// Why there is no verdict, when there is none.
    pub note: Option<String>,
    /// Per series.
    pub series: Vec<SeriesVerdict>,
}

/// How much a series may move, and in which direction.
struct Rule {
    name: &'static str,
    tolerance: f64,
    slack: f64,
    both_ways: bool,
    value: fn(&Sample) -> Option<f64>,
}

/// The verdict over `samples` (the baseline sample at time 0 excluded by
/// the caller) at an offered `rate` of events a second.
pub fn judge(samples: &[Sample], rate: f64) -> Verdict {
    const MIB: f64 = 1024.0 * 1024.0;
    let rules = [
        Rule {
            name: "rss_bytes",
            tolerance: 0.10,
            slack: 16.0 * MIB,
            both_ways: false,
            value: |s| Some(s.rss_bytes as f64),
        },
        Rule {
            name: "fds",
            tolerance: 0.10,
            slack: 8.0,
            both_ways: false,
            value: |s| Some(s.fds as f64),
        },
        Rule {
            name: "maps",
            tolerance: 0.10,
            slack: 32.0,
            both_ways: false,
            value: |s| Some(s.maps as f64),
        },
        Rule {
            name: "data_dir_bytes",
            tolerance: 0.15,
            slack: 16.0 * MIB,
            both_ways: false,
            value: |s| Some(s.data_dir_bytes as f64),
        },
        Rule {
            name: "p99_ms",
            tolerance: 0.50,
            slack: 500.0,
            both_ways: false,
            value: |s| (s.latency.count > 0).then_some(s.latency.p99_ms),
        },
        Rule {
            name: "delivered_per_sec",
            tolerance: 0.10,
            slack: 1.0,
            both_ways: true,
            value: |s| Some(s.delivered_per_sec),
        },
        Rule {
            name: "backlog",
            tolerance: 0.50,
            // A few seconds of the offered load: one rate-limit pause.
            slack: (rate * 5.0).max(100.0),
            both_ways: false,
            value: |s| Some(s.backlog as f64),
        },
        Rule {
            name: "dead_letters",
            tolerance: 0.0,
            slack: 0.0,
            both_ways: false,
            value: |s| Some(s.dead_letters as f64),
        },
    ];
    let n = samples.len();
    if n < 4 {
        return Verdict {
            flat: false,
            note: Some(format!(
                "{n} samples: at least 4 are needed for quarters (a longer run or a shorter --soak-sample-secs)"
            )),
            series: Vec::new(),
        };
    }
    let second = &samples[n / 4..n / 2];
    let last = &samples[n - n / 4..];
    let series: Vec<SeriesVerdict> = rules
        .iter()
        .map(|r| {
            let a = mean(second.iter().filter_map(r.value));
            let b = mean(last.iter().filter_map(r.value));
            let bound = a * r.tolerance + r.slack;
            let flat = b <= a + bound && (!r.both_ways || b >= a - bound);
            SeriesVerdict {
                series: r.name.to_owned(),
                second_quarter_mean: a,
                last_quarter_mean: b,
                change: if a > 0.0 { b / a - 1.0 } else { 0.0 },
                tolerance: r.tolerance,
                slack: r.slack,
                flat,
            }
        })
        .collect();
    Verdict {
        flat: series.iter().all(|s| s.flat),
        note: None,
        series,
    }
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, count) = values.fold((0.0, 0u32), |(s, c), v| (s + v, c + 1));
    if count == 0 {
        0.0
    } else {
        sum / f64::from(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(rss_mib: u64, delivered: f64) -> Sample {
        Sample {
            rss_bytes: rss_mib * 1024 * 1024,
            fds: 40,
            delivered_per_sec: delivered,
            ..Sample::default()
        }
    }

    #[test]
    fn growth_beyond_the_tolerance_is_not_flat() {
        let flat: Vec<Sample> = (0..8).map(|_| sample(100, 500.0)).collect();
        let v = judge(&flat, 500.0);
        assert!(v.flat, "{v:?}");
        let growing: Vec<Sample> = (0..8).map(|i| sample(100 + 20 * i, 500.0)).collect();
        let v = judge(&growing, 500.0);
        assert!(!v.flat);
        let rss = v.series.iter().find(|s| s.series == "rss_bytes").unwrap();
        assert!(!rss.flat && rss.change > 0.5, "{rss:?}");
        // A falling delivery rate is not flat either.
        let slowing: Vec<Sample> = (0..8)
            .map(|i| sample(100, 500.0 - 50.0 * i as f64))
            .collect();
        assert!(!judge(&slowing, 500.0).flat);
        assert!(judge(&flat[..3], 500.0).note.is_some());
    }
}
