//! The memory budget: every byte a connection makes the server hold, counted per connection and
//! server-wide.
//!
//! **What counts.** A connection holds its input buffer (its capacity, not just what is in it:
//! the allocation is what costs), its queued output (`Outbox::len`: ECHO_REPLY payloads are
//! slices of earlier input buffers, so this is the input those buffers keep alive), and a fixed
//! charge per queued heavy job ([`JOB_CHARGE`]). Before the handshake the input buffer is bounded
//! by the 4096-octet first-frame limit (spec §2.2), so an unauthenticated peer holds at most a
//! few KiB.
//!
//! **Per connection** (`--max-connection-memory`): a connection that holds more than its cap is
//! not read (backpressure, spec §8.4) until its output drains; one maximum-size frame always
//! fits, so a connection can always make progress.
//!
//! **Server-wide** (`--memory-budget`): while the sum over all connections is at or above the
//! budget, no connection is read. Writing continues, so readers give the memory back. If the
//! server stays at its budget for the eviction grace period, each reactor resets its heaviest
//! connection among those that have written nothing for that long (the non-readers), until the
//! sum is below the budget. The eviction is an abortive close (spec §3.11), not an ERROR frame:
//! the peer is by definition not reading, so an ERROR would sit behind megabytes of queued
//! output it will never see, and the reset tells the truth about the discarded responses (their
//! fate is unknown to the client). Evictions are counted (`connections_evicted`) and logged at a
//! bounded rate.
//!
//! The budget can be exceeded by at most one read and one decoded batch per reactor (the check
//! is before a read, not per byte): a bound of `reactors x max-connection-memory` above it.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

/// The charge for one heavy job queued or running for a connection (its closure, its cancel cell,
/// its map entry).
pub const JOB_CHARGE: usize = 256;

/// Server-wide memory accounting.
#[derive(Debug)]
pub struct Budget {
    used: AtomicUsize,
    high_water: AtomicU64,
    budget: usize,
}

impl Default for Budget {
    /// No limit.
    fn default() -> Self {
        Budget::new(usize::MAX)
    }
}

impl Budget {
    /// A budget of `budget` bytes.
    pub fn new(budget: usize) -> Self {
        Budget {
            used: AtomicUsize::new(0),
            high_water: AtomicU64::new(0),
            budget,
        }
    }

    /// Moves one connection's charge from `old` to `new` bytes.
    pub fn recharge(&self, old: usize, new: usize) {
        if new > old {
            let now = self.used.fetch_add(new - old, Relaxed) + (new - old);
            self.high_water.fetch_max(now as u64, Relaxed);
        } else if old > new {
            self.used.fetch_sub(old - new, Relaxed);
        }
    }

    /// Bytes held by all connections now.
    pub fn used(&self) -> usize {
        self.used.load(Relaxed)
    }

    /// The most ever held at once.
    pub fn high_water(&self) -> u64 {
        self.high_water.load(Relaxed)
    }

    /// Whether the server is at its budget (no connection may read).
    pub fn exhausted(&self) -> bool {
        self.used() >= self.budget
    }

    /// The configured budget.
    pub fn limit(&self) -> usize {
        self.budget
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_add_up_and_return() {
        let b = Budget::new(1000);
        b.recharge(0, 600);
        b.recharge(0, 300);
        assert_eq!(b.used(), 900);
        assert!(!b.exhausted());
        b.recharge(300, 450);
        assert!(b.exhausted());
        assert_eq!(b.high_water(), 1050);
        b.recharge(600, 0);
        b.recharge(450, 0);
        assert_eq!(b.used(), 0);
        assert_eq!(b.high_water(), 1050);
    }
}
