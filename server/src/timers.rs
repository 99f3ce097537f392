//! Connection deadlines of one reactor: at most one entry per connection.
//!
//! A binary heap with lazy deletion gains an entry every time a deadline moves (the idle
//! deadline moves with every request), and drops entries only when they fire: under steady load
//! it grows for a whole idle timeout. Here each connection has at most one entry, removed when
//! the connection closes, so the structure's size is bounded by the number of connections.
//!
//! A deadline that moves *later* keeps its earlier entry: when that fires, the connection
//! recomputes its real deadline (a timeout handled early does nothing) and re-arms. That keeps
//! the common case — the idle deadline sliding forward on every request — free of tree
//! operations.
//!
//! Deadlines are kept as [`Tick`]s, nanoseconds since the reactor started in 8 bytes, instead
//! of 16-byte `Instant`s: every idle connection holds one in its slab entry and one in the
//! tree, and idle connections are what a server has most of.

use std::collections::BTreeSet;
use std::num::NonZeroU64;
use std::time::{Duration, Instant};

/// A point in time as nanoseconds (plus one, so `Option<Tick>` is 8 bytes) since the epoch of
/// the [`Timers`] that made it. Good for 584 years.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Tick(NonZeroU64);

/// Armed deadlines, ordered by time.
#[derive(Debug)]
pub struct Timers {
    epoch: Instant,
    set: BTreeSet<(Tick, usize)>,
}

impl Default for Timers {
    fn default() -> Self {
        Timers {
            epoch: Instant::now(),
            set: BTreeSet::new(),
        }
    }
}

impl Timers {
    /// `at` as a tick of this reactor's clock (a time before its epoch is the epoch).
    pub fn tick(&self, at: Instant) -> Tick {
        let nanos = at.saturating_duration_since(self.epoch).as_nanos();
        Tick(NonZeroU64::MIN.saturating_add(u64::try_from(nanos).unwrap_or(u64::MAX)))
    }

    /// The time `t` stands for.
    pub fn instant(&self, t: Tick) -> Instant {
        self.epoch + Duration::from_nanos(t.0.get() - 1)
    }

    /// Arms `key` for `want`. `armed` is the connection's current entry (kept in the connection).
    pub fn arm(&mut self, key: usize, armed: &mut Option<Tick>, want: Option<Instant>) {
        let Some(w) = want.map(|w| self.tick(w)) else {
            return; // a spurious wake-up is harmless
        };
        match *armed {
            Some(a) if a <= w => {} // fires early, re-arms then
            old => {
                if let Some(a) = old {
                    self.set.remove(&(a, key));
                }
                self.set.insert((w, key));
                *armed = Some(w);
            }
        }
    }

    /// Removes `key`'s entry (the connection closed).
    pub fn disarm(&mut self, key: usize, armed: &mut Option<Tick>) {
        if let Some(a) = armed.take() {
            self.set.remove(&(a, key));
        }
    }

    /// The earliest deadline.
    pub fn next(&self) -> Option<Instant> {
        self.set.first().map(|&(t, _)| self.instant(t))
    }

    /// Removes and returns one connection whose deadline is at or before `now`. The caller must
    /// clear that connection's `armed`.
    pub fn pop_due(&mut self, now: Instant) -> Option<usize> {
        let &(t, key) = self.set.first()?;
        if t > self.tick(now) {
            return None;
        }
        self.set.pop_first();
        Some(key)
    }

    /// Entries armed.
    pub fn len(&self) -> usize {
        self.set.len()
    }

    /// Whether nothing is armed.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn one_entry_per_connection_however_often_deadlines_move() {
        let t0 = Instant::now();
        let mut timers = Timers::default();
        let mut armed = vec![None; 100];
        for round in 0..10_000u64 {
            let key = (round % 100) as usize;
            // Sliding forward (idle deadline), sometimes earlier (a drain starts).
            let at = if round % 7 == 0 {
                t0 + Duration::from_millis(round / 2)
            } else {
                t0 + Duration::from_millis(round * 10)
            };
            timers.arm(key, &mut armed[key], Some(at));
            assert!(timers.len() <= 100, "{} entries", timers.len());
        }
        assert_eq!(timers.len(), 100);
        for (key, a) in armed.iter_mut().enumerate().take(50) {
            timers.disarm(key, a);
        }
        assert_eq!(timers.len(), 50);
        // Everything is due eventually, each connection once.
        let mut fired = 0;
        while let Some(key) = timers.pop_due(t0 + Duration::from_secs(1_000_000)) {
            assert!(key >= 50);
            armed[key] = None;
            fired += 1;
        }
        assert_eq!(fired, 50);
        assert!(timers.is_empty());
    }

    #[test]
    fn earlier_deadlines_replace_later_ones_and_fire_in_order() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut timers = Timers::default();
        let (mut a, mut b) = (None, None);
        timers.arm(1, &mut a, Some(ms(500)));
        timers.arm(2, &mut b, Some(ms(300)));
        timers.arm(1, &mut a, Some(ms(100)));
        assert_eq!(timers.len(), 2);
        assert_eq!(timers.next(), Some(ms(100)));
        assert_eq!(timers.pop_due(ms(50)), None);
        assert_eq!(timers.pop_due(ms(400)), Some(1));
        assert_eq!(timers.pop_due(ms(400)), Some(2));
        assert_eq!(timers.pop_due(ms(400)), None);
    }

    #[test]
    fn ticks_keep_nanoseconds_and_order_and_are_small() {
        let timers = Timers::default();
        let t = timers.epoch + Duration::from_nanos(123_456_789_012);
        assert_eq!(timers.instant(timers.tick(t)), t);
        assert!(timers.tick(t) < timers.tick(t + Duration::from_nanos(1)));
        // Before the epoch: the epoch (due at once, never a panic).
        let early = timers.epoch.checked_sub(Duration::from_secs(1));
        if let Some(early) = early {
            assert_eq!(timers.instant(timers.tick(early)), timers.epoch);
        }
        assert_eq!(std::mem::size_of::<Option<Tick>>(), 8);
    }
}
