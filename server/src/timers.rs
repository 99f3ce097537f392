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

use std::collections::BTreeSet;
use std::time::Instant;

/// Armed deadlines, ordered by time.
#[derive(Debug, Default)]
pub struct Timers {
    set: BTreeSet<(Instant, usize)>,
}

impl Timers {
    /// Arms `key` for `want`. `armed` is the connection's current entry (kept in the connection).
    pub fn arm(&mut self, key: usize, armed: &mut Option<Instant>, want: Option<Instant>) {
        match (*armed, want) {
            (_, None) => {}                    // a spurious wake-up is harmless
            (Some(a), Some(w)) if a <= w => {} // fires early, re-arms then
            (old, Some(w)) => {
                if let Some(a) = old {
                    self.set.remove(&(a, key));
                }
                self.set.insert((w, key));
                *armed = Some(w);
            }
        }
    }

    /// Removes `key`'s entry (the connection closed).
    pub fn disarm(&mut self, key: usize, armed: &mut Option<Instant>) {
        if let Some(a) = armed.take() {
            self.set.remove(&(a, key));
        }
    }

    /// The earliest deadline.
    pub fn next(&self) -> Option<Instant> {
        self.set.first().map(|(t, _)| *t)
    }

    /// Removes and returns one connection whose deadline is at or before `now`. The caller must
    /// clear that connection's `armed`.
    pub fn pop_due(&mut self, now: Instant) -> Option<usize> {
        let &(t, key) = self.set.first()?;
        if t > now {
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
}
