//! When a push task fires: monthly (days of the month at a time), weekly
//! (weekdays at a time), daily (a time), or hourly (every N hours between
//! two times, or listed hours at a minute), in an IANA time zone.
//!
//! Every kind compiles to one representation, a five-field cron pattern
//! evaluated by `croner` on `jiff` zoned times, so the preview ("the next
//! 10 fire times") and the scheduler agree by construction. Across
//! daylight-saving changes a wall-clock time that does not exist that day
//! (02:30 when clocks jump from 02:00 to 03:00) fires at the first minute
//! after the jump, and one that happens twice fires once, at its first
//! occurrence (croner's rules, as Vixie cron does for fixed times).

use std::str::FromStr as _;

use croner::Cron;
use jiff::tz::TimeZone;
use jiff::{Timestamp, Zoned};
use serde::{Deserialize, Serialize};

/// A schedule as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum Schedule {
    /// Days of the month (1–31, or `"last"`) at a time.
    Monthly {
        /// The days.
        days: Vec<MonthDay>,
        /// `HH:MM`.
        at: String,
    },
    /// Weekdays (`mon` … `sun`) at a time.
    Weekly {
        /// The weekdays.
        weekdays: Vec<String>,
        /// `HH:MM`.
        at: String,
    },
    /// Every day at a time.
    Daily {
        /// `HH:MM`.
        at: String,
    },
    /// Every `every` hours from `from` until `until` (both `HH:MM`, the
    /// minute of `from` each time), or at the listed `hours` at `minute`.
    Hourly {
        /// Hours between fires (1–23).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        every: Option<u8>,
        /// The first fire of the day.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<String>,
        /// No fire after this.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        until: Option<String>,
        /// Or: these hours (0–23)…
        #[serde(default, skip_serializing_if = "Option::is_none")]
        hours: Option<Vec<u8>>,
        /// …at this minute (0–59).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        minute: Option<u8>,
    },
}

/// A day of the month: a number or `"last"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MonthDay {
    /// 1–31 (a month without that day has no fire for it).
    Day(u8),
    /// `"last"`: the month's last day.
    Last(String),
}

/// A schedule that cannot be used, at its field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ScheduleError {
    /// The field (`at`, `days/2`, `time_zone`).
    pub field: String,
    /// Why.
    pub message: String,
}

fn err(field: impl Into<String>, message: impl Into<String>) -> ScheduleError {
    ScheduleError {
        field: field.into(),
        message: message.into(),
    }
}

/// A schedule ready to evaluate.
#[derive(Debug, Clone)]
pub struct Compiled {
    cron: Cron,
    pattern: String,
    tz: TimeZone,
}

/// How far ahead a schedule must fire at least once (a day 31 fires
/// within two months; a schedule with no fire in four years never does).
const HORIZON_DAYS: i64 = 4 * 366;

/// `HH:MM` → (hour, minute).
fn clock(field: &str, text: &str) -> Result<(u8, u8), ScheduleError> {
    let bad = || {
        err(
            field,
            format!("{text:?} is not a time of day such as \"09:00\""),
        )
    };
    let (h, m) = text.split_once(':').ok_or_else(bad)?;
    let (h, m): (u8, u8) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if h > 23 || m > 59 || text.len() != 5 {
        return Err(bad());
    }
    Ok((h, m))
}

fn list(items: &[u8]) -> String {
    let mut v = items.to_vec();
    v.sort_unstable();
    v.dedup();
    v.iter().map(u8::to_string).collect::<Vec<_>>().join(",")
}

/// Compiles `schedule` for the IANA zone `time_zone`.
pub fn compile(schedule: &Schedule, time_zone: &str) -> Result<Compiled, ScheduleError> {
    let tz = TimeZone::get(time_zone).map_err(|_| {
        err(
            "time_zone",
            format!("{time_zone:?} is not an IANA time zone such as \"Asia/Shanghai\""),
        )
    })?;
    let pattern = match schedule {
        Schedule::Daily { at } => {
            let (h, m) = clock("at", at)?;
            format!("{m} {h} * * *")
        }
        Schedule::Weekly { weekdays, at } => {
            let (h, m) = clock("at", at)?;
            if weekdays.is_empty() {
                return Err(err("weekdays", "lists no weekday"));
            }
            let mut days = Vec::new();
            for (i, d) in weekdays.iter().enumerate() {
                let n = match d.to_ascii_lowercase().as_str() {
                    "sun" => 0,
                    "mon" => 1,
                    "tue" => 2,
                    "wed" => 3,
                    "thu" => 4,
                    "fri" => 5,
                    "sat" => 6,
                    _ => {
                        return Err(err(
                            format!("weekdays/{i}"),
                            format!("{d:?} is not a weekday (mon, tue, wed, thu, fri, sat, sun)"),
                        ));
                    }
                };
                days.push(n);
            }
            format!("{m} {h} * * {}", list(&days))
        }
        Schedule::Monthly { days, at } => {
            let (h, m) = clock("at", at)?;
            if days.is_empty() {
                return Err(err("days", "lists no day"));
            }
            let mut numbers = Vec::new();
            let mut last = false;
            for (i, d) in days.iter().enumerate() {
                match d {
                    MonthDay::Day(n) if (1..=31).contains(n) => numbers.push(*n),
                    MonthDay::Last(s) if s == "last" => last = true,
                    _ => {
                        return Err(err(
                            format!("days/{i}"),
                            "must be a day from 1 to 31, or \"last\"",
                        ));
                    }
                }
            }
            let mut field = list(&numbers);
            if last {
                if !field.is_empty() {
                    field.push(',');
                }
                field.push('L');
            }
            format!("{m} {h} {field} * *")
        }
        Schedule::Hourly {
            every,
            from,
            until,
            hours,
            minute,
        } => match (every, hours) {
            (Some(every), None) => {
                if !(1..=23).contains(every) {
                    return Err(err("every", "must be from 1 to 23 hours"));
                }
                let (fh, fm) = clock("from", from.as_deref().unwrap_or("00:00"))?;
                let (uh, um) = clock("until", until.as_deref().unwrap_or("23:59"))?;
                if minute.is_some() {
                    return Err(err(
                        "minute",
                        "goes with `hours`; with `every` the minute is `from`'s",
                    ));
                }
                let fires: Vec<u8> = (fh..=23)
                    .step_by(usize::from(*every))
                    .filter(|h| (*h, fm) <= (uh, um))
                    .collect();
                if fires.is_empty() {
                    return Err(err("until", "is before `from`: the schedule never fires"));
                }
                format!("{fm} {} * * *", list(&fires))
            }
            (None, Some(hours)) => {
                if hours.is_empty() || hours.iter().any(|h| *h > 23) {
                    return Err(err("hours", "must list hours from 0 to 23"));
                }
                if from.is_some() || until.is_some() {
                    return Err(err("from", "goes with `every`, not with `hours`"));
                }
                let m = minute.unwrap_or(0);
                if m > 59 {
                    return Err(err("minute", "must be from 0 to 59"));
                }
                format!("{m} {} * * *", list(hours))
            }
            _ => {
                return Err(err(
                    "every",
                    "an hourly schedule gives either `every` (with `from` and `until`) or `hours` (with `minute`)",
                ));
            }
        },
    };
    let cron = Cron::from_str(&pattern)
        .map_err(|e| err("schedule", format!("does not compile ({pattern}): {e}")))?;
    let compiled = Compiled { cron, pattern, tz };
    let now = Timestamp::now();
    match compiled.next_after(now) {
        Some(t) if t.duration_since(now).as_hours() <= HORIZON_DAYS * 24 => Ok(compiled),
        _ => Err(err("schedule", "never fires")),
    }
}

impl Compiled {
    /// The cron pattern it compiled to (`0 9 * * 1,5`).
    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    /// The first fire strictly after `t`.
    pub fn next_after(&self, t: Timestamp) -> Option<Timestamp> {
        let zoned = t.to_zoned(self.tz.clone());
        self.cron
            .find_next_occurrence(&zoned, false)
            .ok()
            .map(|z| z.timestamp())
    }

    /// The next `n` fires after `t`, in the schedule's zone: the preview.
    pub fn preview(&self, t: Timestamp, n: usize) -> Vec<Zoned> {
        let mut out = Vec::with_capacity(n);
        let mut at = t;
        while out.len() < n {
            let Some(next) = self.next_after(at) else {
                break;
            };
            out.push(next.to_zoned(self.tz.clone()));
            at = next;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn fires(schedule: &Schedule, tz: &str, after: &str, n: usize) -> Vec<String> {
        compile(schedule, tz)
            .unwrap()
            .preview(at(after), n)
            .iter()
            .map(|z| z.timestamp().to_string())
            .collect()
    }

    fn parse(json: &str) -> Schedule {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn daily_across_a_spring_forward_and_a_fall_back() {
        // New York jumps from 02:00 to 03:00 on 2026-03-08 and back from
        // 02:00 to 01:00 on 2026-11-01.
        let s = parse(r#"{"kind": "daily", "at": "09:00"}"#);
        assert_eq!(
            fires(&s, "America/New_York", "2026-03-06T00:00:00Z", 3),
            [
                "2026-03-06T14:00:00Z",
                "2026-03-07T14:00:00Z",
                "2026-03-08T13:00:00Z"
            ]
        );
        // A time the jump skips fires right after the jump, once.
        let s = parse(r#"{"kind": "daily", "at": "02:30"}"#);
        assert_eq!(
            fires(&s, "America/New_York", "2026-03-07T00:00:00Z", 3),
            [
                "2026-03-07T07:30:00Z",
                "2026-03-08T07:00:00Z",
                "2026-03-09T06:30:00Z"
            ]
        );
        // A time that happens twice fires once, at the first.
        let s = parse(r#"{"kind": "daily", "at": "01:30"}"#);
        assert_eq!(
            fires(&s, "America/New_York", "2026-10-31T12:00:00Z", 2),
            ["2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"]
        );
    }

    #[test]
    fn weekly_monthly_and_hourly_compile_and_preview() {
        let s = parse(r#"{"kind": "weekly", "weekdays": ["mon", "fri"], "at": "09:00"}"#);
        let c = compile(&s, "Europe/Berlin").unwrap();
        assert_eq!(c.pattern(), "0 9 * * 1,5");
        // Berlin moves to summer time on 2026-03-29: 08:00Z, then 07:00Z.
        assert_eq!(
            fires(&s, "Europe/Berlin", "2026-03-26T00:00:00Z", 3),
            [
                "2026-03-27T08:00:00Z",
                "2026-03-30T07:00:00Z",
                "2026-04-03T07:00:00Z"
            ]
        );
        let s = parse(r#"{"kind": "monthly", "days": [1, 15, "last"], "at": "08:30"}"#);
        assert_eq!(
            fires(&s, "Asia/Shanghai", "2026-02-01T00:00:00Z", 4),
            [
                "2026-02-01T00:30:00Z",
                "2026-02-15T00:30:00Z",
                "2026-02-28T00:30:00Z",
                "2026-03-01T00:30:00Z"
            ]
        );
        let s = parse(r#"{"kind": "hourly", "every": 4, "from": "08:15", "until": "20:00"}"#);
        assert_eq!(compile(&s, "UTC").unwrap().pattern(), "15 8,12,16 * * *");
        let s = parse(r#"{"kind": "hourly", "hours": [18, 9, 9], "minute": 5}"#);
        assert_eq!(compile(&s, "UTC").unwrap().pattern(), "5 9,18 * * *");
    }

    #[test]
    fn every_bad_schedule_names_its_field() {
        for (json, tz, field) in [
            (r#"{"kind": "daily", "at": "9:00"}"#, "UTC", "at"),
            (r#"{"kind": "daily", "at": "24:00"}"#, "UTC", "at"),
            (
                r#"{"kind": "daily", "at": "09:00"}"#,
                "Mars/Olympus",
                "time_zone",
            ),
            (
                r#"{"kind": "weekly", "weekdays": ["mon", "funday"], "at": "09:00"}"#,
                "UTC",
                "weekdays/1",
            ),
            (
                r#"{"kind": "weekly", "weekdays": [], "at": "09:00"}"#,
                "UTC",
                "weekdays",
            ),
            (
                r#"{"kind": "monthly", "days": [0], "at": "09:00"}"#,
                "UTC",
                "days/0",
            ),
            (
                r#"{"kind": "monthly", "days": ["first"], "at": "09:00"}"#,
                "UTC",
                "days/0",
            ),
            (
                r#"{"kind": "hourly", "every": 2, "from": "18:00", "until": "08:00"}"#,
                "UTC",
                "until",
            ),
            (r#"{"kind": "hourly", "every": 0}"#, "UTC", "every"),
            (r#"{"kind": "hourly", "hours": [25]}"#, "UTC", "hours"),
            (r#"{"kind": "hourly"}"#, "UTC", "every"),
        ] {
            let e = compile(&parse(json), tz).unwrap_err();
            assert_eq!(e.field, field, "{json}: {e}");
        }
        assert!(serde_json::from_str::<Schedule>(r#"{"kind": "yearly"}"#).is_err());
    }
}
