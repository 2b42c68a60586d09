//! A small SVG line chart, written by hand: one panel per series stacked
//! over a shared time axis, each panel scaled from zero to its own
//! largest value, so series of any unit sit side by side and a slope
//! shows whatever its size. Plain SVG 1.1 with no script or external
//! reference, so it renders on GitHub and in any browser as committed.

use std::fmt::Write as _;

/// One panel.
#[derive(Debug, Clone)]
pub struct Series {
    /// The panel's title, unit included (`gateway RSS (MiB)`).
    pub title: String,
    /// One value per sample; `None` where there is none (no delivery in a
    /// window has no latency), leaving a gap.
    pub values: Vec<Option<f64>>,
}

/// The whole chart.
#[derive(Debug, Clone)]
pub struct Chart {
    /// The heading.
    pub title: String,
    /// A line under it (what was run, when).
    pub subtitle: String,
    /// Each sample's time, in minutes; the x axis.
    pub minutes: Vec<f64>,
    /// The panels, top to bottom.
    pub series: Vec<Series>,
    /// Times (minutes) drawn as thin vertical lines in every panel, e.g.
    /// plugin reloads.
    pub markers: Vec<f64>,
    /// What a marker is, for the legend.
    pub marker_label: String,
}

const WIDTH: f64 = 960.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 90.0;
const PANEL: f64 = 78.0;
const GAP: f64 = 34.0;
const TOP: f64 = 58.0;

impl Chart {
    /// The chart as an SVG document.
    pub fn svg(&self) -> String {
        let height = TOP + (PANEL + GAP) * self.series.len() as f64 + 24.0;
        let plot = WIDTH - LEFT - RIGHT;
        let end = self
            .minutes
            .iter()
            .copied()
            .fold(0.0_f64, f64::max)
            .max(1e-9);
        let x = |m: f64| LEFT + plot * (m / end).clamp(0.0, 1.0);
        let mut s = String::new();
        let _ = write!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height:.0}" viewBox="0 0 {WIDTH} {height:.0}" font-family="sans-serif" font-size="11">"#
        );
        let _ = write!(
            s,
            r##"<rect width="100%" height="100%" fill="#fff"/><text x="{LEFT}" y="20" font-size="15" font-weight="bold">{}</text><text x="{LEFT}" y="38" fill="#555">{}</text>"##,
            escape(&self.title),
            escape(&self.subtitle)
        );
        if !self.markers.is_empty() {
            let _ = write!(
                s,
                r##"<line x1="{a}" y1="48" x2="{a}" y2="56" stroke="#c60" stroke-width="1"/><text x="{b}" y="55" fill="#c60">{}</text>"##,
                escape(&self.marker_label),
                a = WIDTH - RIGHT - 160.0,
                b = WIDTH - RIGHT - 155.0,
            );
        }
        let ticks = minute_ticks(end);
        for (i, series) in self.series.iter().enumerate() {
            let top = TOP + (PANEL + GAP) * i as f64 + 14.0;
            let bottom = top + PANEL;
            let max = series
                .values
                .iter()
                .flatten()
                .copied()
                .filter(|v| v.is_finite())
                .fold(0.0_f64, f64::max);
            let scale = nice_ceiling(max);
            let y = |v: f64| bottom - PANEL * (v / scale).clamp(0.0, 1.0);
            let _ = write!(
                s,
                r##"<text x="{LEFT}" y="{:.1}" font-weight="bold">{}</text><rect x="{LEFT}" y="{top:.1}" width="{plot}" height="{PANEL}" fill="none" stroke="#999"/>"##,
                top - 4.0,
                escape(&series.title)
            );
            for t in &ticks {
                let _ = write!(
                    s,
                    r##"<line x1="{0:.1}" y1="{top:.1}" x2="{0:.1}" y2="{bottom:.1}" stroke="#eee"/>"##,
                    x(*t)
                );
            }
            for m in &self.markers {
                let _ = write!(
                    s,
                    r##"<line x1="{0:.1}" y1="{top:.1}" x2="{0:.1}" y2="{bottom:.1}" stroke="#c60" stroke-opacity="0.35"/>"##,
                    x(*m)
                );
            }
            let _ = write!(
                s,
                r##"<text x="{a}" y="{top:.1}" text-anchor="end" dominant-baseline="hanging" fill="#555">{}</text><text x="{a}" y="{bottom:.1}" text-anchor="end" fill="#555">0</text>"##,
                short(scale),
                a = LEFT - 6.0,
            );
            for line in polylines(&self.minutes, &series.values) {
                let points: Vec<String> = line
                    .iter()
                    .map(|(m, v)| format!("{:.1},{:.1}", x(*m), y(*v)))
                    .collect();
                if points.len() == 1 {
                    let (m, v) = line[0];
                    let _ = write!(
                        s,
                        r##"<circle cx="{:.1}" cy="{:.1}" r="2" fill="#1f5fa8"/>"##,
                        x(m),
                        y(v)
                    );
                } else {
                    let _ = write!(
                        s,
                        r##"<polyline points="{}" fill="none" stroke="#1f5fa8" stroke-width="1.6"/>"##,
                        points.join(" ")
                    );
                }
            }
            if let Some(last) = series.values.iter().rev().flatten().next() {
                let _ = write!(
                    s,
                    r##"<text x="{:.1}" y="{:.1}" fill="#1f5fa8">{}</text>"##,
                    WIDTH - RIGHT + 6.0,
                    y(*last) + 4.0,
                    short(*last)
                );
            }
            if i + 1 == self.series.len() {
                for t in &ticks {
                    let _ = write!(
                        s,
                        r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#555">{}</text>"##,
                        x(*t),
                        bottom + 14.0,
                        short(*t)
                    );
                }
                let _ = write!(
                    s,
                    r##"<text x="{:.1}" y="{:.1}" text-anchor="end" fill="#555">minutes</text>"##,
                    WIDTH - RIGHT,
                    bottom + 28.0
                );
            }
        }
        s.push_str("</svg>\n");
        s
    }
}

/// The runs of consecutive present, finite values, as (minute, value).
fn polylines(minutes: &[f64], values: &[Option<f64>]) -> Vec<Vec<(f64, f64)>> {
    let mut lines = vec![Vec::new()];
    for (m, v) in minutes.iter().zip(values) {
        match v {
            Some(v) if v.is_finite() => {
                if let Some(line) = lines.last_mut() {
                    line.push((*m, *v));
                }
            }
            _ => {
                if lines.last().is_some_and(|l| !l.is_empty()) {
                    lines.push(Vec::new());
                }
            }
        }
    }
    lines.retain(|l| !l.is_empty());
    lines
}

/// The smallest 1, 2 or 5 × 10ⁿ at least `v` (1 for nothing above 0), so
/// axis labels are round.
fn nice_ceiling(v: f64) -> f64 {
    if !v.is_finite() || v <= 0.0 {
        return 1.0;
    }
    let power = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * power)
        .find(|c| *c >= v)
        .unwrap_or(10.0 * power)
}

/// Grid lines at round minutes: about six over the run.
fn minute_ticks(end: f64) -> Vec<f64> {
    let step = nice_ceiling(end / 6.0);
    let mut ticks = Vec::new();
    let mut t = 0.0;
    while t <= end + 1e-9 && ticks.len() < 100 {
        ticks.push(t);
        t += step;
    }
    ticks
}

/// A number in at most four significant figures, with k/M for large ones.
fn short(v: f64) -> String {
    let a = v.abs();
    if a >= 10_000_000.0 {
        format!("{:.0}M", v / 1e6)
    } else if a >= 10_000.0 {
        format!("{:.0}k", v / 1e3)
    } else if a >= 100.0 || a == 0.0 || (a - a.round()).abs() < 1e-9 {
        format!("{v:.0}")
    } else if a >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// Text safe inside an SVG element.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales_are_round_and_gaps_split_lines() {
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(nice_ceiling(3.2), 5.0);
        assert_eq!(nice_ceiling(120.0), 200.0);
        assert_eq!(nice_ceiling(1000.0), 1000.0);
        assert_eq!(
            minute_ticks(60.0),
            vec![0.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0]
        );
        let lines = polylines(
            &[0.0, 1.0, 2.0, 3.0],
            &[Some(1.0), None, Some(2.0), Some(f64::NAN)],
        );
        assert_eq!(lines, vec![vec![(0.0, 1.0)], vec![(2.0, 2.0)]]);
        assert_eq!(short(1234.6), "1235");
        assert_eq!(short(45_000.0), "45k");
        assert_eq!(short(0.126), "0.13");
    }

    #[test]
    fn draws_one_panel_per_series() {
        let chart = Chart {
            title: "a <b>".into(),
            subtitle: "x & y".into(),
            minutes: vec![0.0, 1.0, 2.0],
            series: vec![
                Series {
                    title: "one".into(),
                    values: vec![Some(1.0), Some(2.0), Some(2.0)],
                },
                Series {
                    title: "two".into(),
                    values: vec![None, Some(5.0), None],
                },
            ],
            markers: vec![1.5],
            marker_label: "reload".into(),
        };
        let svg = chart.svg();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("a &lt;b&gt;") && svg.contains("x &amp; y"));
        assert_eq!(svg.matches("<polyline").count(), 1);
        assert_eq!(svg.matches("<circle").count(), 1);
        assert!(svg.contains(">reload<"));
    }
}
