//! The monitors' state machine with a scripted sampler and a controlled
//! clock, its changes written to a real outbox with their kept records
//! (reopened for the restart cases); and the real sampler on this machine.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use carillon_outbox::{Enqueued, ManualClock, NewEvent, Outbox, OutboxConfig, Timestamp};

use super::*;
use crate::config::MonitorRule;
use crate::config::monitors::Op;
use crate::message::Severity;

const T0: u64 = 1_700_000_000_000;
const MIN: u64 = 60_000;

fn at(ms: u64) -> Timestamp {
    Timestamp::from_millis(T0 + ms)
}

fn rule(for_secs: u64, repeat: Option<u64>) -> MonitorRule {
    MonitorRule {
        name: "disk-full".into(),
        metric: "host.disk_percent".into(),
        labels: BTreeMap::from([("mount".to_owned(), "/".to_owned())]),
        op: Op::Gt,
        threshold: 90.0,
        recovery: 80.0,
        for_: Duration::from_secs(for_secs),
        severity: Severity::Error,
        repeat: repeat.map(Duration::from_secs),
    }
}

fn disk(v: f64) -> Vec<Reading> {
    vec![Reading::new("host.disk_percent", v, "%").label("mount", "/")]
}

/// An engine whose changes are written to a real outbox, as the driver
/// writes them.
struct Harness {
    dir: tempfile::TempDir,
    rules: Vec<MonitorRule>,
    outbox: Option<Outbox>,
    engine: Engine,
    sent: Vec<(Change, u64)>,
    /// The last tick's time (ms after T0).
    last_ms: u64,
}

/// The harness's `stale_after`, past every scripted scenario but one.
const DAY: Duration = Duration::from_secs(86_400);

fn open(dir: &std::path::Path) -> Outbox {
    let mut c = OutboxConfig::new(dir);
    c.clock = Arc::new(ManualClock::new(at(0)));
    c.min_free_bytes = 0;
    Outbox::open(c).expect("open")
}

impl Harness {
    fn new(rules: Vec<MonitorRule>) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let outbox = open(dir.path());
        let (engine, orphans) = Engine::restore(rules.clone(), 100, DAY, Vec::new(), at(0));
        assert!(orphans.is_empty());
        Harness {
            dir,
            rules,
            outbox: Some(outbox),
            engine,
            sent: Vec::new(),
            last_ms: 0,
        }
    }

    /// One sampler tick at `ms` after T0: observe, evaluate, write what is
    /// due with its kept record, apply.
    async fn tick(&mut self, sampler: &mut ScriptedSampler, ms: u64) {
        let now = at(ms);
        self.last_ms = ms;
        for r in sampler.sample(now) {
            self.engine.observe(&r, now);
        }
        let outbox = self.outbox.as_ref().unwrap();
        let due = self.engine.evaluate(now);
        for w in self.engine.take_quiet_writes() {
            match &w.value {
                Some(v) => outbox.put_kept(&w.key, v).unwrap(),
                None => {
                    outbox.remove_kept(&w.key).unwrap();
                }
            }
        }
        for d in due {
            let track = self.engine.track(&d).unwrap();
            let event = events::event(&self.engine.rules()[d.rule], track, &d, now);
            let body = serde_json::to_vec(&event).unwrap();
            let e = NewEvent {
                source: "monitor".into(),
                idempotency_key: None,
                body,
            };
            let done = outbox.enqueue_kept(e, Vec::new(), d.kept.clone()).await;
            assert!(matches!(done, Ok(Enqueued::Accepted { .. })), "{done:?}");
            self.engine.applied(&d, now);
            self.sent.push((d.change, ms));
        }
    }

    /// Ticks once a minute from `from` to `to` (inclusive), each tick
    /// reading `value`.
    async fn hold(&mut self, value: f64, from: u64, to: u64) {
        let mut t = from;
        while t <= to {
            let mut s = ScriptedSampler::new([disk(value)]);
            self.tick(&mut s, t).await;
            t += MIN;
        }
    }

    /// Closes the outbox, reopens it, and restores the engine from it.
    fn restart(&mut self) {
        if let Some(o) = self.outbox.take() {
            o.close().unwrap();
        }
        let outbox = open(self.dir.path());
        let kept = outbox.kept(KEPT_PREFIX).unwrap();
        let (engine, orphans) =
            Engine::restore(self.rules.clone(), 100, DAY, kept, at(self.last_ms));
        assert!(orphans.is_empty(), "{orphans:?}");
        self.engine = engine;
        self.outbox = Some(outbox);
    }

    fn alerts(&self) -> usize {
        self.sent
            .iter()
            .filter(|(c, _)| matches!(c, Change::Alert { .. }))
            .count()
    }

    fn resolved(&self) -> usize {
        self.sent
            .iter()
            .filter(|(c, _)| *c == Change::Resolved)
            .count()
    }
}

#[tokio::test]
async fn crossed_for_less_than_for_sends_nothing() {
    let mut h = Harness::new(vec![rule(300, None)]);
    // Beyond for 4 minutes, back, beyond again for 4 minutes.
    h.hold(95.0, 0, 4 * MIN).await;
    h.hold(85.0, 5 * MIN, 5 * MIN).await;
    h.hold(95.0, 6 * MIN, 10 * MIN).await;
    assert!(h.sent.is_empty(), "{:?}", h.sent);
    let (_, _, t) = h.engine.tracks().next().unwrap();
    assert_eq!(t.phase, Phase::Pending { since: at(6 * MIN) });
}

#[tokio::test]
async fn held_for_its_duration_sends_one_alert() {
    let mut h = Harness::new(vec![rule(300, None)]);
    h.hold(95.0, 0, 60 * MIN).await;
    assert_eq!(h.sent, vec![(Change::Alert { repeat: false }, 5 * MIN)]);
    assert_eq!(h.engine.firing(), 1);
    let kept = h.outbox.as_ref().unwrap().kept(KEPT_PREFIX).unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!(
        kept[0].0,
        "monitor/disk-full/host.disk_percent{mount=\"/\"}"
    );
}

#[tokio::test]
async fn a_firing_rule_repeats_at_its_interval() {
    let mut h = Harness::new(vec![rule(0, Some(3600))]);
    h.hold(95.0, 0, 150 * MIN).await;
    assert_eq!(
        h.sent,
        vec![
            (Change::Alert { repeat: false }, 0),
            (Change::Alert { repeat: true }, 60 * MIN),
            (Change::Alert { repeat: true }, 120 * MIN),
        ]
    );
}

#[tokio::test]
async fn recovery_through_the_hysteresis_band_sends_one_resolved() {
    let mut h = Harness::new(vec![rule(0, None)]);
    h.hold(95.0, 0, 0).await;
    // Below the threshold but above the recovery threshold: still firing.
    h.hold(85.0, MIN, 10 * MIN).await;
    assert_eq!(h.resolved(), 0);
    assert_eq!(h.engine.firing(), 1);
    h.hold(79.0, 11 * MIN, 20 * MIN).await;
    assert_eq!(h.alerts(), 1);
    assert_eq!(h.resolved(), 1);
    assert_eq!(h.sent[1], (Change::Resolved, 11 * MIN));
    assert!(
        h.outbox
            .as_ref()
            .unwrap()
            .kept(KEPT_PREFIX)
            .unwrap()
            .is_empty()
    );
    // Crossing again is a new alert.
    h.hold(91.0, 21 * MIN, 21 * MIN).await;
    assert_eq!(h.alerts(), 2);
}

#[tokio::test]
async fn flapping_inside_the_band_raises_no_storm() {
    let mut h = Harness::new(vec![rule(0, None)]);
    let mut t = 0;
    for i in 0..100 {
        let v = if i % 2 == 0 { 91.0 } else { 89.0 };
        h.hold(v, t, t).await;
        t += 10_000;
    }
    assert_eq!(h.sent, vec![(Change::Alert { repeat: false }, 0)]);
}

#[tokio::test]
async fn a_restart_while_firing_sends_no_duplicate_and_loses_no_recovery() {
    let mut h = Harness::new(vec![rule(0, Some(3600))]);
    h.hold(95.0, 0, 10 * MIN).await;
    assert_eq!(h.alerts(), 1);
    h.restart();
    assert_eq!(h.engine.firing(), 1, "restored firing");
    h.hold(95.0, 11 * MIN, 59 * MIN).await;
    assert_eq!(h.alerts(), 1, "no duplicate after the restart");
    // The repeat keeps its schedule from before the restart.
    h.hold(95.0, 60 * MIN, 60 * MIN).await;
    assert_eq!(h.sent[1], (Change::Alert { repeat: true }, 60 * MIN));
    h.restart();
    h.hold(70.0, 61 * MIN, 70 * MIN).await;
    assert_eq!(h.resolved(), 1, "the recovery after a restart is sent");
    h.restart();
    assert_eq!(h.engine.firing(), 0);
    h.hold(70.0, 71 * MIN, 80 * MIN).await;
    assert_eq!(h.sent.len(), 3, "{:?}", h.sent);
}

#[tokio::test]
async fn a_rule_taken_out_leaves_an_orphan_and_pairs_are_bounded() {
    let mut h = Harness::new(vec![rule(0, None)]);
    h.hold(95.0, 0, 0).await;
    let kept = h.outbox.as_ref().unwrap().kept(KEPT_PREFIX).unwrap();
    let mut other = rule(0, None);
    other.name = "renamed".into();
    let (engine, orphans) = Engine::restore(vec![other.clone()], 100, DAY, kept, at(0));
    assert_eq!(engine.firing(), 0);
    assert_eq!(orphans.len(), 1);
    // One pair at most: a second series is dropped, counted.
    other.labels.clear();
    let (mut engine, _) = Engine::restore(vec![other], 1, DAY, Vec::new(), at(0));
    let r = |m: &str| Reading::new("host.disk_percent", 50.0, "%").label("mount", m);
    assert_eq!(engine.observe(&r("/"), at(0)), 1);
    assert_eq!(engine.observe(&r("/data"), at(0)), 0);
    assert_eq!(engine.observe(&r("/"), at(1)), 1);
    assert_eq!(engine.dropped(), 1);
}

#[test]
fn events_carry_what_the_template_shows() {
    let mut h = Harness::new(vec![rule(0, None)]);
    let now = at(0);
    h.engine.observe(&disk(93.5)[0], now);
    let due = h.engine.evaluate(now);
    let track = h.engine.track(&due[0]).unwrap();
    let e = events::event(&h.rules[0], track, &due[0], now);
    assert_eq!(e.event_type, ALERT);
    assert_eq!(e.severity, Severity::Error);
    assert_eq!(e.data["value"], serde_json::json!(93.5));
    assert_eq!(e.data["threshold"], serde_json::json!(90));
    assert_eq!(e.data["unit"], "%");
    assert_eq!(e.data["resourceid"], "mount=/");
    assert_eq!(e.data["status"], "firing");
    assert_eq!(e.labels["mount"], "/");
    h.outbox.take();
}

#[test]
fn the_real_sampler_reports_sane_values_on_this_machine() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = Arc::new(open(dir.path()));
    let settings = crate::config::MonitorSettings::default();
    let mut sampler = SystemSampler::new(&settings, outbox);
    let first = sampler.sample(at(0));
    std::thread::sleep(sysinfo::MINIMUM_CPU_UPDATE_INTERVAL);
    let second = sampler.sample(at(1000));
    let find = |rs: &[Reading], m: &str| rs.iter().find(|r| r.metric == m).cloned();
    assert!(
        find(&first, "host.cpu_percent").is_none(),
        "the first call primes"
    );
    for metric in [
        "host.cpu_percent",
        "host.memory_percent",
        "host.disk_percent",
    ] {
        let r = find(&second, metric).unwrap_or_else(|| panic!("{metric} in {second:?}"));
        assert!((0.0..=100.0).contains(&r.value), "{r:?}");
        assert_eq!(r.unit, "%");
    }
    let root = find(&second, "host.disk_percent").unwrap();
    assert_eq!(root.labels["mount"], "/");
    assert!(
        root.value > 0.0,
        "a root file system holds something: {root:?}"
    );
    assert_eq!(
        find(&second, "carillon.outbox_depth").map(|r| r.value),
        Some(0.0)
    );
    assert_eq!(
        find(&second, "carillon.dead_letters_per_minute").map(|r| r.value),
        Some(0.0)
    );
    assert_eq!(
        find(&second, "carillon.oldest_pending_seconds").map(|r| r.value),
        Some(0.0)
    );
}

#[tokio::test]
async fn a_series_that_stops_reporting_is_dropped_and_a_firing_one_closed_once() {
    let mut h = Harness::new(vec![rule(0, None)]);
    h.engine = Engine::restore(
        h.rules.clone(),
        100,
        Duration::from_secs(600),
        Vec::new(),
        at(0),
    )
    .0;
    // Fires at once, then the series stops reporting.
    h.hold(95.0, 0, 2 * MIN).await;
    assert_eq!(h.alerts(), 1);
    // Quiet for less than stale_after: nothing.
    h.tick(
        &mut ScriptedSampler::new(Vec::<Vec<Reading>>::new()),
        11 * MIN,
    )
    .await;
    assert_eq!(h.sent.len(), 1);
    // 10 minutes after the last reading: closed, once, and forgotten.
    h.tick(
        &mut ScriptedSampler::new(Vec::<Vec<Reading>>::new()),
        12 * MIN,
    )
    .await;
    assert_eq!(h.sent.last().map(|(c, _)| *c), Some(Change::Stale));
    h.tick(
        &mut ScriptedSampler::new(Vec::<Vec<Reading>>::new()),
        13 * MIN,
    )
    .await;
    assert_eq!(h.sent.len(), 2);
    assert_eq!(h.engine.tracks().count(), 0, "the stale pair is forgotten");
    // A quiet pair (ok) goes away without a word.
    h.hold(50.0, 20 * MIN, 20 * MIN).await;
    assert_eq!(h.engine.tracks().count(), 1);
    h.tick(
        &mut ScriptedSampler::new(Vec::<Vec<Reading>>::new()),
        31 * MIN,
    )
    .await;
    assert_eq!(h.engine.tracks().count(), 0);
    assert_eq!(h.sent.len(), 2);
}

#[test]
fn a_stale_close_says_so_in_its_event() {
    let r = rule(0, None);
    let (mut engine, _) = Engine::restore(
        vec![r.clone()],
        10,
        Duration::from_secs(600),
        Vec::new(),
        at(0),
    );
    engine.observe(&disk(95.0)[0], at(0));
    let due = engine.evaluate(at(0));
    engine.applied(&due[0], at(0));
    let due = engine.evaluate(at(10 * MIN));
    assert_eq!(due[0].change, Change::Stale);
    let track = engine.track(&due[0]).unwrap();
    let e = events::event(&r, track, &due[0], at(10 * MIN));
    assert_eq!(e.event_type, RESOLVED);
    assert_eq!(e.data["status"], "resolved");
    assert_eq!(e.data["stale"], true);
    assert!(e.data["last_reading"].is_string(), "{:?}", e.data);
}

#[tokio::test]
async fn a_restart_keeps_how_long_a_pair_has_been_pending() {
    let mut h = Harness::new(vec![rule(300, None)]);
    // Beyond for 3 of the 5 minutes, then a restart.
    h.hold(95.0, 0, 3 * MIN).await;
    assert_eq!(h.alerts(), 0);
    h.restart();
    let (_, _, track) = h
        .engine
        .tracks()
        .next()
        .expect("the pending pair is restored");
    assert_eq!(track.phase, Phase::Pending { since: at(0) });
    // It fires 5 minutes after it first crossed, not 5 after the restart.
    h.hold(95.0, 4 * MIN, 5 * MIN).await;
    assert_eq!(h.sent, vec![(Change::Alert { repeat: false }, 5 * MIN)]);
    // Back inside before `for`: the pending record goes, a restart finds
    // nothing.
    let mut h = Harness::new(vec![rule(300, None)]);
    h.hold(95.0, 0, MIN).await;
    h.hold(50.0, 2 * MIN, 2 * MIN).await;
    h.restart();
    assert_eq!(h.engine.tracks().count(), 0);
}
