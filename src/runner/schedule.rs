//! When each monitor is due. Pure bookkeeping, no I/O and no clock of its own (callers pass
//! `now`), so every rule here is unit-tested.
//!
//! Rules: next = previous scheduled time + interval (a slow check does not push the schedule),
//! plus an optional random jitter that does not accumulate; a monitor in flight is never due;
//! missed runs are skipped, not burst; first runs are spread about one per tick, never over
//! more than one interval, so a restart does not fire everything at once.
//!
//! Due times sit on the tick grid (the first `set_targets` time plus whole ticks; the ticker
//! ticks on the same grid): the ticker only looks every tick, so a run scheduled between two
//! ticks could not start before the second anyway. Putting it there keeps the intervals exact
//! over time (the unrounded schedule advances, never the rounded one) and leaves a run's whole
//! first tick to the queue and the workers, which is what the start-lag metric then measures.
//!
//! A tick costs what is due, not the fleet: monitors waiting for their time sit in a min-heap
//! keyed by due time (one entry per monitor not in flight; a monitor in flight is pushed back
//! when it is released), so 100,000 monitors at one interval cost a few heap operations per
//! due monitor rather than a scan of all of them every tick.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::hash::Hash;
use std::time::{Duration, Instant};

/// What the schedule needs to know about a monitor.
pub(super) trait Scheduled {
    type Id: Clone + Eq + Hash + Ord;
    fn id(&self) -> &Self::Id;
    fn interval(&self) -> Duration;
}

struct Entry<T> {
    target: T,
    /// The unjittered scheduled time of the next run; successive runs are `interval` apart.
    base: Instant,
    /// `base` plus this run's jitter: when it is actually due.
    due: Instant,
    in_flight: bool,
}

/// A run that is due now.
pub(super) struct Due<T> {
    pub target: T,
    /// When it was due (for the start-lag metric).
    pub due: Instant,
}

pub(super) struct Schedule<T: Scheduled> {
    entries: HashMap<T::Id, Entry<T>>,
    /// (due, id) of every entry not in flight, earliest on top. Invariant: exactly one item per
    /// such entry, carrying its current `due`; none for an entry in flight.
    waiting: BinaryHeap<Reverse<(Instant, T::Id)>>,
    tick: Duration,
    jitter: Duration,
    rng: fastrand::Rng,
    /// Entries with `in_flight` set, kept in step so reading it is O(1) (it is read on every
    /// completion).
    in_flight: usize,
    /// Where the tick grid starts: the first `set_targets` time.
    origin: Option<Instant>,
}

impl<T: Scheduled + Clone> Schedule<T> {
    pub(super) fn new(tick: Duration, jitter: Duration) -> Self {
        Schedule {
            entries: HashMap::new(),
            waiting: BinaryHeap::new(),
            tick,
            jitter,
            rng: fastrand::Rng::new(),
            in_flight: 0,
            origin: None,
        }
    }

    /// The start of the tick grid (for the ticker, which ticks on it); `None` before the first
    /// `set_targets`.
    pub(super) fn origin(&self) -> Option<Instant> {
        self.origin
    }

    /// `t` rounded up to the tick grid.
    fn on_grid(&self, t: Instant) -> Instant {
        on_grid(self.origin, self.tick, t)
    }

    #[cfg(test)]
    fn with_seed(tick: Duration, jitter: Duration, seed: u64) -> Self {
        Schedule {
            rng: fastrand::Rng::with_seed(seed),
            ..Schedule::new(tick, jitter)
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }

    /// Heap items (the invariant: one per entry not in flight).
    #[cfg(test)]
    fn waiting_len(&self) -> usize {
        self.waiting.len()
    }

    pub(super) fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Replaces the set of monitors (start-up and reload). Kept monitors keep their place,
    /// pulled earlier if their interval shrank; new ones are spread over the coming ticks;
    /// removed ones are forgotten (a completion for them is ignored).
    pub(super) fn set_targets(&mut self, targets: Vec<T>, now: Instant) {
        let origin = *self.origin.get_or_insert(now);
        let now = if self.tick.is_zero() {
            now
        } else {
            now.max(origin)
        };
        let mut old = std::mem::take(&mut self.entries);
        let mut fresh: Vec<T> = Vec::new();
        for t in targets {
            match old.remove(t.id()) {
                Some(mut e) => {
                    let latest = now + t.interval();
                    if e.base > latest {
                        e.base = latest;
                        e.due = self.on_grid(latest);
                    }
                    e.target = t;
                    self.entries.insert(e.target.id().clone(), e);
                }
                None => fresh.push(t),
            }
        }
        self.in_flight = self.entries.values().filter(|e| e.in_flight).count();
        fresh.sort_by(|a, b| a.id().cmp(b.id()));
        let n = fresh.len() as u32;
        for (i, t) in fresh.into_iter().enumerate() {
            let window = t.interval().min(self.tick.saturating_mul(n.max(1)));
            let offset = window.mul_f64(i as f64 / n.max(1) as f64);
            let base = now + offset;
            let due = self.on_grid(base);
            self.entries.insert(
                t.id().clone(),
                Entry {
                    target: t,
                    base,
                    due,
                    in_flight: false,
                },
            );
        }
        // Rebuilt whole (O(n), once per reload) rather than patched: kept entries may have
        // moved and removed ones must leave.
        self.waiting = self
            .entries
            .iter()
            .filter(|(_, e)| !e.in_flight)
            .map(|(id, e)| Reverse((e.due, id.clone())))
            .collect();
    }

    /// Monitors due at `now`, earliest first, each marked in flight and advanced to its next
    /// run.
    pub(super) fn take_due(&mut self, now: Instant) -> Vec<Due<T>> {
        let mut due = Vec::new();
        while let Some(Reverse((at, _))) = self.waiting.peek()
            && *at <= now
        {
            let Some(Reverse((at, id))) = self.waiting.pop() else {
                break;
            };
            let Some(e) = self.entries.get_mut(&id) else {
                continue;
            };
            if e.in_flight || e.due != at {
                // Cannot happen while the invariant holds; an item that disagrees with its
                // entry is simply stale.
                continue;
            }
            due.push(Due {
                target: e.target.clone(),
                due: e.due,
            });
            e.in_flight = true;
            self.in_flight += 1;
            let interval = e.target.interval().max(Duration::from_millis(1));
            e.base += interval;
            if e.base <= now {
                // Skip the runs we missed instead of bursting them.
                let behind = now - e.base;
                let skip = (behind.as_nanos() / interval.as_nanos()) as u32 + 1;
                e.base += interval * skip;
            }
            let jitter = if self.jitter.is_zero() {
                Duration::ZERO
            } else {
                self.jitter.mul_f64(self.rng.f64())
            };
            e.due = on_grid(self.origin, self.tick, e.base + jitter);
        }
        due
    }

    /// The run finished, or its job was dropped: the monitor may be due again.
    pub(super) fn release(&mut self, id: &T::Id) {
        if let Some(e) = self.entries.get_mut(id)
            && e.in_flight
        {
            e.in_flight = false;
            self.in_flight -= 1;
            self.waiting.push(Reverse((e.due, id.clone())));
        }
    }

    /// When the next monitor is due.
    #[cfg(test)]
    fn next_due(&self) -> Option<Instant> {
        self.entries
            .values()
            .filter(|e| !e.in_flight)
            .map(|e| e.due)
            .min()
    }
}

/// `t` rounded up to the grid of `tick`s from `origin` (unchanged without an origin or a tick).
fn on_grid(origin: Option<Instant>, tick: Duration, t: Instant) -> Instant {
    let Some(origin) = origin else { return t };
    if tick.is_zero() || t <= origin {
        return t.max(origin);
    }
    let ticks = (t - origin).as_nanos().div_ceil(tick.as_nanos());
    // A u32 of ticks is over a century even at 1 ms ticks; saturating keeps it total.
    origin + tick.saturating_mul(u32::try_from(ticks).unwrap_or(u32::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Debug)]
    struct M(String, Duration);

    impl Scheduled for M {
        type Id = String;
        fn id(&self) -> &String {
            &self.0
        }
        fn interval(&self) -> Duration {
            self.1
        }
    }

    fn m(id: &str, secs: u64) -> M {
        M(id.into(), Duration::from_secs(secs))
    }

    const TICK: Duration = Duration::from_secs(1);

    fn ids(d: &[Due<M>]) -> Vec<String> {
        d.iter().map(|d| d.target.0.clone()).collect()
    }

    #[test]
    fn the_in_flight_count_follows_takes_releases_and_removals() {
        let t0 = Instant::now();
        let mut s = Schedule::new(TICK, Duration::ZERO);
        s.set_targets(vec![m("a", 60), m("b", 60), m("c", 60)], t0);
        assert_eq!(s.take_due(t0 + TICK * 5).len(), 3);
        assert_eq!(s.in_flight(), 3);
        s.release(&"a".to_owned());
        s.release(&"a".to_owned());
        assert_eq!(s.in_flight(), 2, "a second release does not count twice");
        s.set_targets(vec![m("a", 60), m("b", 60)], t0 + TICK * 6);
        assert_eq!(s.in_flight(), 1, "a removed monitor is no longer in flight");
        s.release(&"c".to_owned());
        assert_eq!(
            s.in_flight(),
            1,
            "a completion for a removed monitor is ignored"
        );
    }

    #[test]
    fn first_runs_are_spread_one_per_tick() {
        let t0 = Instant::now();
        let mut s = Schedule::new(TICK, Duration::ZERO);
        s.set_targets(vec![m("a", 60), m("b", 60), m("c", 60)], t0);
        assert_eq!(ids(&s.take_due(t0)), ["a"]);
        assert_eq!(ids(&s.take_due(t0 + TICK)), ["b"]);
        assert_eq!(ids(&s.take_due(t0 + TICK * 2)), ["c"]);
    }

    #[test]
    fn spread_never_exceeds_one_interval() {
        let t0 = Instant::now();
        let mut s = Schedule::new(TICK, Duration::ZERO);
        let many: Vec<M> = (0..1000).map(|i| m(&format!("m{i:04}"), 10)).collect();
        s.set_targets(many, t0);
        let all = s.take_due(t0 + Duration::from_secs(10));
        assert_eq!(all.len(), 1000);
    }

    #[test]
    fn next_run_is_previous_schedule_plus_interval_not_completion() {
        let t0 = Instant::now();
        let mut s = Schedule::new(TICK, Duration::ZERO);
        s.set_targets(vec![m("a", 10)], t0);
        assert_eq!(s.take_due(t0).len(), 1);
        // The check took 7 s; it is still due at t0 + 10 s.
        s.release(&"a".to_string());
        assert!(s.take_due(t0 + Duration::from_secs(9)).is_empty());
        let d = s.take_due(t0 + Duration::from_secs(10));
        assert_eq!(d[0].due, t0 + Duration::from_secs(10));
    }

    #[test]
    fn in_flight_is_never_due_and_missed_runs_are_skipped() {
        let t0 = Instant::now();
        let mut s = Schedule::new(TICK, Duration::ZERO);
        s.set_targets(vec![m("a", 10)], t0);
        assert_eq!(s.take_due(t0).len(), 1);
        // Still in flight 35 s later: nothing due.
        assert!(s.take_due(t0 + Duration::from_secs(35)).is_empty());
        s.release(&"a".to_string());
        // One run now, not three.
        let late = t0 + Duration::from_secs(35);
        assert_eq!(s.take_due(late).len(), 1);
        s.release(&"a".to_string());
        assert!(s.take_due(late + Duration::from_secs(4)).is_empty());
        assert_eq!(s.take_due(t0 + Duration::from_secs(40)).len(), 1);
    }

    #[test]
    fn due_times_sit_on_the_tick_grid_and_do_not_drift() {
        let t0 = Instant::now();
        let tick = Duration::from_millis(300);
        let on_grid = |t: Instant| (t - t0).as_nanos().is_multiple_of(tick.as_nanos());
        let mut s = Schedule::with_seed(tick, Duration::from_millis(700), 3);
        // 10 s is not a whole number of 300 ms ticks: rounding must not accumulate.
        let fleet: Vec<M> = (0..50).map(|i| m(&format!("m{i:02}"), 10)).collect();
        s.set_targets(fleet, t0);
        let mut firsts: HashMap<String, Instant> = HashMap::new();
        let mut last: HashMap<String, (u32, Instant)> = HashMap::new();
        for k in 0..400u32 {
            let now = t0 + tick * k;
            for d in s.take_due(now) {
                assert!(on_grid(d.due), "due off the grid");
                assert!(d.due <= now && now - d.due < tick, "dispatched at its tick");
                let first = *firsts.entry(d.target.0.clone()).or_insert(d.due);
                let runs = last.get(&d.target.0).map_or(0, |(n, _)| n + 1);
                // Run n is due within a tick plus the jitter of first + n intervals.
                let ideal = first + Duration::from_secs(10) * runs;
                assert!(
                    d.due + tick >= ideal && d.due <= ideal + tick + Duration::from_millis(700),
                    "run {runs} of {} drifted",
                    d.target.0
                );
                last.insert(d.target.0.clone(), (runs, d.due));
                s.release(&d.target.0);
            }
        }
        assert!(
            last.values().all(|(n, _)| *n >= 10),
            "every monitor kept running"
        );
    }

    #[test]
    fn jitter_is_bounded_and_does_not_accumulate() {
        let t0 = Instant::now();
        let jitter = Duration::from_secs(3);
        let mut s = Schedule::with_seed(TICK, jitter, 7);
        s.set_targets(vec![m("a", 10)], t0);
        s.take_due(t0);
        for k in 1..50u32 {
            s.release(&"a".to_string());
            let base = t0 + Duration::from_secs(10) * k;
            let due = s.next_due().unwrap();
            assert!(due >= base && due <= base + jitter, "run {k}");
            assert_eq!(s.take_due(base + jitter).len(), 1);
        }
    }

    #[test]
    fn reload_keeps_places_adds_and_removes() {
        let t0 = Instant::now();
        let mut s = Schedule::new(TICK, Duration::ZERO);
        s.set_targets(vec![m("a", 600), m("b", 600)], t0);
        s.take_due(t0 + TICK);
        s.release(&"a".to_string());
        s.release(&"b".to_string());
        // b removed, c added, a's interval shrinks to 20 s.
        let t1 = t0 + Duration::from_secs(5);
        s.set_targets(vec![m("a", 20), m("c", 600)], t1);
        assert_eq!(s.len(), 2);
        assert_eq!(ids(&s.take_due(t1)), ["c"]);
        assert_eq!(ids(&s.take_due(t1 + Duration::from_secs(20))), ["a"]);
        s.release(&"b".to_string()); // a late completion of a removed monitor is harmless
        assert_eq!(s.len(), 2);
    }

    #[test]
    fn a_100k_fleet_runs_once_per_interval_with_one_heap_item_per_waiting_monitor() {
        let t0 = Instant::now();
        let n = 100_000;
        let mut s = Schedule::new(TICK, Duration::ZERO);
        let fleet: Vec<M> = (0..n).map(|i| m(&format!("m{i:06}"), 60)).collect();
        s.set_targets(fleet.clone(), t0);
        assert_eq!(s.waiting_len(), n);
        let mut runs: HashMap<String, Vec<Instant>> = HashMap::new();
        // Two intervals, one tick at a time; every run finishes before the next tick.
        for k in 0..120u32 {
            let due = s.take_due(t0 + TICK * k);
            assert_eq!(s.waiting_len() + s.in_flight(), n, "tick {k}");
            assert!(
                due.windows(2).all(|w| w[0].due <= w[1].due),
                "earliest first"
            );
            for d in due {
                runs.entry(d.target.0.clone()).or_default().push(d.due);
                s.release(&d.target.0);
            }
        }
        assert_eq!(runs.len(), n, "every monitor ran");
        for (id, dues) in &runs {
            assert!(
                dues.windows(2)
                    .all(|w| w[1] - w[0] == Duration::from_secs(60)),
                "{id}: runs one interval apart, never twice in one"
            );
        }
        // The first runs were spread over the first interval: those that started by second 59
        // (nearly all) had their second run by tick 119, the last few not yet.
        let twice = runs.values().filter(|d| d.len() == 2).count();
        assert!(twice > n / 2 && twice < n, "{twice}");
        // A reload keeps the invariant, in-flight monitors included.
        let taken = s.take_due(t0 + TICK * 120).len();
        assert!(taken > 0);
        s.set_targets(fleet[..n / 2].to_vec(), t0 + TICK * 120);
        assert_eq!(s.waiting_len() + s.in_flight(), n / 2);
    }
}
