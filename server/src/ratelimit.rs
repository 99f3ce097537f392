//! Rate-limited logging of repeated events (refused connections, descriptor exhaustion,
//! evictions): the first occurrence is logged, then at most one line per interval, which says
//! how many were not logged in between. A flood of refusals costs a line a second, not a line
//! per connection.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// One kind of repeated event.
#[derive(Debug)]
pub struct RateLimit {
    interval: Duration,
    last: Mutex<Option<Instant>>,
    suppressed: AtomicU64,
}

impl RateLimit {
    /// At most one line per `interval`.
    pub const fn new(interval: Duration) -> Self {
        RateLimit {
            interval,
            last: Mutex::new(None),
            suppressed: AtomicU64::new(0),
        }
    }

    /// Records one event at `now`. `Some(n)`: log this one, mentioning the `n` not logged since
    /// the previous line; `None`: stay quiet.
    pub fn check(&self, now: Instant) -> Option<u64> {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        match *last {
            Some(t) if now.saturating_duration_since(t) < self.interval => {
                self.suppressed.fetch_add(1, Relaxed);
                None
            }
            _ => {
                *last = Some(now);
                Some(self.suppressed.swap(0, Relaxed))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_interval_with_the_count_of_the_rest() {
        let r = RateLimit::new(Duration::from_secs(1));
        let t0 = Instant::now();
        assert_eq!(r.check(t0), Some(0));
        for i in 1..=2_000u64 {
            assert_eq!(r.check(t0 + Duration::from_micros(i * 100)), None);
        }
        assert_eq!(r.check(t0 + Duration::from_millis(1001)), Some(2000));
        assert_eq!(r.check(t0 + Duration::from_millis(1002)), None);
        assert_eq!(r.check(t0 + Duration::from_millis(2002)), Some(1));
    }
}
