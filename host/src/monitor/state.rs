//! The state machine of each rule × series pair, and what it keeps.
//!
//! ```text
//! ok ──beyond threshold──▶ pending ──held for `for`──▶ firing ──▶ resource.alert
//!  ▲                          │                          │ every `repeat`: resource.alert again
//!  └──back before `for`───────┘                          │ back past `recovery`: resource.resolved
//!  └─────────────────────────────────────────────────────┘
//! ```
//!
//! Between the threshold and the recovery threshold (the hysteresis band)
//! a firing pair stays firing and sends nothing but its repeats, so a
//! value flapping around the threshold raises no storm. `evaluate` moves
//! pairs between ok and pending at once and hands back the changes that
//! send an event (`Due`); the caller writes each event with its kept
//! record and only then calls `applied`, so memory never runs ahead of
//! the store.

use std::collections::{BTreeMap, HashMap};

use carillon_outbox::{KeptWrite, Timestamp};
use serde::{Deserialize, Serialize};

use super::KEPT_PREFIX;
use super::series::{Reading, series_id};
use crate::config::MonitorRule;

/// Where a pair stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Not beyond the threshold (or not yet evaluated).
    Ok,
    /// Beyond the threshold since `since`, for less than `for`.
    Pending {
        /// When it crossed.
        since: Timestamp,
    },
    /// Alerted.
    Firing {
        /// When it started firing.
        since: Timestamp,
        /// When the last `resource.alert` was written.
        last_fired: Timestamp,
    },
}

impl Phase {
    /// `ok`, `pending` or `firing`.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Ok => "ok",
            Phase::Pending { .. } => "pending",
            Phase::Firing { .. } => "firing",
        }
    }
}

/// One rule × series pair.
#[derive(Debug, Clone, PartialEq)]
pub struct Track {
    /// The series' labels.
    pub labels: BTreeMap<String, String>,
    /// The series' unit.
    pub unit: String,
    /// The last value read, if any since start.
    pub value: Option<f64>,
    /// When it was read.
    pub read_at: Option<Timestamp>,
    /// Where it stands.
    pub phase: Phase,
    /// When the phase last changed (start: when the pair was first seen).
    pub changed_at: Timestamp,
}

/// What a change sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// `resource.alert`; `repeat` when already firing.
    Alert {
        /// A repeat while firing.
        repeat: bool,
    },
    /// `resource.resolved`.
    Resolved,
    /// `resource.resolved` with `stale`: a firing series stopped
    /// reporting, so its alert is closed without a value saying so.
    Stale,
}

/// A change that sends an event: apply it with [`Engine::applied`] once
/// the event and `kept` are written together.
#[derive(Debug, Clone)]
pub struct Due {
    /// The rule's index in [`Engine::rules`].
    pub rule: usize,
    /// The series' id.
    pub series: String,
    /// What it sends.
    pub change: Change,
    /// The pair's phase before.
    pub from: Phase,
    /// Its phase once applied.
    pub to: Phase,
    /// The value that caused it.
    pub value: f64,
    /// The kept record to write with the event.
    pub kept: KeptWrite,
}

/// A firing or pending pair's kept record.
#[derive(Debug, Serialize, Deserialize)]
struct Record {
    v: u8,
    labels: BTreeMap<String, String>,
    unit: String,
    value: f64,
    since: u64,
    last_fired: u64,
    /// Pending since `since` (not fired yet); records before it are firing.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pending: bool,
}

/// The kept record's key of rule `rule`, series `series`.
fn kept_key(rule: &str, series: &str) -> String {
    // Rule names hold no `/`: the first one after the prefix ends it.
    format!("{KEPT_PREFIX}{rule}/{series}")
}

/// Every rule and the pairs it watches.
#[derive(Debug)]
pub struct Engine {
    rules: Vec<MonitorRule>,
    by_name: HashMap<String, usize>,
    /// (rule index, series id) → pair.
    tracks: BTreeMap<(usize, String), Track>,
    max_tracks: usize,
    /// A pair with no reading for this long is stale (ms).
    stale_after_ms: u64,
    dropped: u64,
    /// Kept records of pairs that turned pending or quiet again: written
    /// without an event (nothing is sent), so that a restart keeps how
    /// long a pair has been beyond its threshold.
    quiet_writes: Vec<KeptWrite>,
}

impl Engine {
    /// An engine for `rules`, watching at most `max_tracks` pairs, with
    /// the firing pairs of `kept` (the outbox's records under
    /// [`KEPT_PREFIX`]), restored at `now` (a restored pair that gets no
    /// reading goes stale `stale_after` later). Also returns the keys of
    /// records no rule owns any more (to remove).
    pub fn restore(
        rules: Vec<MonitorRule>,
        max_tracks: usize,
        stale_after: std::time::Duration,
        kept: Vec<(String, Vec<u8>)>,
        now: Timestamp,
    ) -> (Engine, Vec<String>) {
        let by_name = rules
            .iter()
            .enumerate()
            .map(|(i, r)| (r.name.clone(), i))
            .collect();
        let mut engine = Engine {
            rules,
            by_name,
            tracks: BTreeMap::new(),
            max_tracks,
            stale_after_ms: u64::try_from(stale_after.as_millis()).unwrap_or(u64::MAX),
            dropped: 0,
            quiet_writes: Vec::new(),
        };
        let mut orphans = Vec::new();
        for (key, bytes) in kept {
            if !engine.restore_one(&key, &bytes, now) {
                orphans.push(key);
            }
        }
        (engine, orphans)
    }

    fn restore_one(&mut self, key: &str, bytes: &[u8], now: Timestamp) -> bool {
        let Some((rule, series)) = key
            .strip_prefix(KEPT_PREFIX)
            .and_then(|rest| rest.split_once('/'))
        else {
            return false;
        };
        let Ok(rec) = serde_json::from_slice::<Record>(bytes) else {
            return false;
        };
        let Some(&index) = self.by_name.get(rule) else {
            return false;
        };
        let r = &self.rules[index];
        // A rule edited to watch something else no longer owns the pair.
        if series_id(&r.metric, &rec.labels) != series
            || !r.labels.iter().all(|(k, v)| rec.labels.get(k) == Some(v))
            || self.tracks.len() >= self.max_tracks
        {
            return false;
        }
        let since = Timestamp::from_millis(rec.since);
        let phase = if rec.pending {
            Phase::Pending { since }
        } else {
            Phase::Firing {
                since,
                last_fired: Timestamp::from_millis(rec.last_fired),
            }
        };
        self.tracks.insert(
            (index, series.to_owned()),
            Track {
                labels: rec.labels,
                unit: rec.unit,
                value: Some(rec.value),
                // Staleness counts from the restart.
                read_at: Some(now),
                phase,
                changed_at: since,
            },
        );
        true
    }

    /// The rules.
    pub fn rules(&self) -> &[MonitorRule] {
        &self.rules
    }

    /// Every pair, by rule index and series id.
    pub fn tracks(&self) -> impl Iterator<Item = (&MonitorRule, &str, &Track)> {
        self.tracks
            .iter()
            .map(|((i, s), t)| (&self.rules[*i], s.as_str(), t))
    }

    /// How many pairs are firing.
    pub fn firing(&self) -> usize {
        self.tracks
            .values()
            .filter(|t| matches!(t.phase, Phase::Firing { .. }))
            .count()
    }

    /// Readings dropped because `max_tracks` pairs were watched, since
    /// start.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Records `reading` at `now` for every rule that matches it. Returns
    /// how many pairs took it (0: no rule watches it, or no room).
    pub fn observe(&mut self, reading: &Reading, now: Timestamp) -> usize {
        self.observe_pairs(reading, now).len()
    }

    /// [`Engine::observe`], answering the pairs that took the reading.
    pub fn observe_pairs(&mut self, reading: &Reading, now: Timestamp) -> Vec<(usize, String)> {
        let mut taken = Vec::new();
        let mut id = None;
        for (i, rule) in self.rules.iter().enumerate() {
            if rule.metric != reading.metric
                || !rule
                    .labels
                    .iter()
                    .all(|(k, v)| reading.labels.get(k) == Some(v))
            {
                continue;
            }
            let series = id.get_or_insert_with(|| reading.series_id()).clone();
            let key = (i, series);
            if !self.tracks.contains_key(&key) && self.tracks.len() >= self.max_tracks {
                self.dropped += 1;
                continue;
            }
            let track = self.tracks.entry(key.clone()).or_insert_with(|| Track {
                labels: reading.labels.clone(),
                unit: reading.unit.clone(),
                value: None,
                read_at: None,
                phase: Phase::Ok,
                changed_at: now,
            });
            track.value = Some(reading.value);
            track.read_at = Some(now);
            if !reading.unit.is_empty() {
                track.unit.clone_from(&reading.unit);
            }
            taken.push(key);
        }
        taken
    }

    /// Evaluates every pair at `now` on its last value: drops the quiet
    /// pairs whose series went stale, moves pairs between ok and pending,
    /// and returns the changes that send an event (not applied: see
    /// [`Engine::applied`]), a firing pair gone stale among them.
    pub fn evaluate(&mut self, now: Timestamp) -> Vec<Due> {
        let stale_after = self.stale_after_ms;
        let stale = |t: &Track| {
            t.read_at
                .is_some_and(|r| now.as_millis().saturating_sub(r.as_millis()) >= stale_after)
        };
        // A series that stopped reporting is forgotten, so its memory and
        // its room under `max_series` come back; a firing one first
        // closes its alert.
        let rules = &self.rules;
        let quiet = &mut self.quiet_writes;
        self.tracks.retain(|(index, series), t| {
            if !stale(t) || matches!(t.phase, Phase::Firing { .. }) {
                return true;
            }
            if matches!(t.phase, Phase::Pending { .. }) {
                quiet.push(KeptWrite {
                    key: kept_key(&rules[*index].name, series),
                    value: None,
                });
            }
            false
        });
        self.tracks
            .iter_mut()
            .filter_map(|((index, series), track)| {
                if stale(track) {
                    return Some(Self::closed(&rules[*index], *index, series, track));
                }
                Self::step(&rules[*index], *index, series, track, now, quiet)
            })
            .collect()
    }

    /// The kept records of pairs that turned pending or quiet since the
    /// last call: the caller writes them (`Outbox::put_kept`,
    /// `remove_kept`).
    pub fn take_quiet_writes(&mut self) -> Vec<KeptWrite> {
        std::mem::take(&mut self.quiet_writes)
    }

    /// The change that closes a firing pair whose series went stale.
    fn closed(rule: &MonitorRule, index: usize, series: &str, track: &Track) -> Due {
        Due {
            rule: index,
            series: series.to_owned(),
            change: Change::Stale,
            from: track.phase,
            to: Phase::Ok,
            value: track.value.unwrap_or(f64::NAN),
            kept: KeptWrite {
                key: kept_key(&rule.name, series),
                value: None,
            },
        }
    }

    /// Evaluates only the pairs `pairs` names (those a batch of readings
    /// touched), so a gauge costs what it touches, not every pair.
    pub fn evaluate_pairs(&mut self, now: Timestamp, pairs: &[(usize, String)]) -> Vec<Due> {
        let mut due = Vec::new();
        for key in pairs {
            if let Some(track) = self.tracks.get_mut(key)
                && let Some(d) = Self::step(
                    &self.rules[key.0],
                    key.0,
                    &key.1,
                    track,
                    now,
                    &mut self.quiet_writes,
                )
            {
                due.push(d);
            }
        }
        due
    }

    /// One pair's evaluation: moves it between ok and pending, or answers
    /// the change that sends an event.
    fn step(
        rule: &MonitorRule,
        index: usize,
        series: &str,
        track: &mut Track,
        now: Timestamp,
        quiet: &mut Vec<KeptWrite>,
    ) -> Option<Due> {
        let value = track.value?;
        let beyond = rule.op.holds(value, rule.threshold);
        let held = |since: Timestamp| {
            now.as_millis().saturating_sub(since.as_millis())
                >= u64::try_from(rule.for_.as_millis()).unwrap_or(u64::MAX)
        };
        let fire = |from: Phase, since: Timestamp, repeat: bool| Due {
            rule: index,
            series: series.to_owned(),
            change: Change::Alert { repeat },
            from,
            to: Phase::Firing {
                since,
                last_fired: now,
            },
            value,
            kept: KeptWrite {
                key: kept_key(&rule.name, series),
                value: Some(record(track, value, since, now)),
            },
        };
        match track.phase {
            Phase::Ok if beyond && rule.for_.is_zero() => {
                return Some(fire(track.phase, now, false));
            }
            Phase::Ok if beyond => {
                track.phase = Phase::Pending { since: now };
                track.changed_at = now;
                quiet.push(KeptWrite {
                    key: kept_key(&rule.name, series),
                    value: Some(pending_record(track, value, now)),
                });
            }
            Phase::Ok => {}
            Phase::Pending { .. } if !beyond => {
                track.phase = Phase::Ok;
                track.changed_at = now;
                quiet.push(KeptWrite {
                    key: kept_key(&rule.name, series),
                    value: None,
                });
            }
            Phase::Pending { since } if held(since) => {
                return Some(fire(track.phase, now, false));
            }
            Phase::Pending { .. } => {}
            Phase::Firing { .. } if !rule.op.holds(value, rule.recovery) => {
                return Some(Due {
                    rule: index,
                    series: series.to_owned(),
                    change: Change::Resolved,
                    from: track.phase,
                    to: Phase::Ok,
                    value,
                    kept: KeptWrite {
                        key: kept_key(&rule.name, series),
                        value: None,
                    },
                });
            }
            Phase::Firing { since, last_fired } => {
                let again = rule.repeat.is_some_and(|every| {
                    now.as_millis().saturating_sub(last_fired.as_millis())
                        >= u64::try_from(every.as_millis()).unwrap_or(u64::MAX)
                });
                if again {
                    return Some(fire(track.phase, since, true));
                }
            }
        }
        None
    }

    /// `due` was written (its event and kept record): the pair moves on.
    /// A pair that moved meanwhile (another evaluation applied first) is
    /// left alone.
    pub fn applied(&mut self, due: &Due, now: Timestamp) {
        if let Some(track) = self.tracks.get_mut(&(due.rule, due.series.clone()))
            && track.phase == due.from
        {
            track.phase = due.to;
            if due.to.name() != due.from.name() {
                track.changed_at = now;
            }
        }
    }

    /// The pair `due` is about.
    pub fn track(&self, due: &Due) -> Option<&Track> {
        self.tracks.get(&(due.rule, due.series.clone()))
    }
}

fn record(track: &Track, value: f64, since: Timestamp, fired: Timestamp) -> Vec<u8> {
    let rec = Record {
        v: 1,
        labels: track.labels.clone(),
        unit: track.unit.clone(),
        value,
        since: since.as_millis(),
        last_fired: fired.as_millis(),
        pending: false,
    };
    // Plain strings and numbers always serialize.
    serde_json::to_vec(&rec).unwrap_or_default()
}

fn pending_record(track: &Track, value: f64, since: Timestamp) -> Vec<u8> {
    let rec = Record {
        v: 1,
        labels: track.labels.clone(),
        unit: track.unit.clone(),
        value,
        since: since.as_millis(),
        last_fired: 0,
        pending: true,
    };
    serde_json::to_vec(&rec).unwrap_or_default()
}
