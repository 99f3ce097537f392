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
//! budget, a connection is read only if its output flows (nothing queued that its peer has not
//! taken), and then while it holds less than 128 KiB ([`FAIR_SHARE_FLOOR`]), or less than its
//! fair share of the budget (budget / connections) as long as the sum is within a reserve of a
//! quarter above the budget ([`Budget::may_read`]): a new client, or one that reads its
//! answers, keeps being served while non-readers hold the budget; the non-readers are not
//! read. Writing continues, so readers give the memory back. If the
//! server stays at its budget for the eviction grace period, each reactor resets its heaviest
//! connection among those that have written nothing for that long (the non-readers), until the
//! sum is below the budget. The eviction is an abortive close (spec §3.11), not an ERROR frame:
//! the peer is by definition not reading, so an ERROR would sit behind megabytes of queued
//! output it will never see, and the reset tells the truth about the discarded responses (their
//! fate is unknown to the client). Evictions are counted (`connections_evicted`) and logged at a
//! bounded rate.
//!
//! The budget can therefore be exceeded: by its reserve (a quarter), by 128 KiB per connection
//! whose output flows (at most `--max-connections` of them), and by one read and one decoded
//! batch per reactor (the check is before a read, not per byte).
//!
//! **Kernel buffers** are not counted: they are bounded instead. Every listener's `SO_SNDBUF`
//! and `SO_RCVBUF` (inherited by the connections it accepts) are half of
//! `--max-connection-memory` each, within 64 KiB ..= 8 MiB (Linux doubles them for its own
//! bookkeeping), so a connection holds at most about twice `--max-connection-memory` of kernel
//! memory beside what the budget counts — instead of the several MiB per direction the kernel's
//! autotuning gives a client that does not read.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

/// What every connection whose output flows may hold even at the budget ([`Budget::may_read`]):
/// a receive buffer of one full read window and a little more, enough for a handshake and small
/// requests.
pub const FAIR_SHARE_FLOOR: usize = 2 * echowire_codec::session::READ_CHUNK;

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

    /// Whether the server is at its budget: only connections below their fair share whose
    /// output flows are read ([`Budget::may_read`]).
    pub fn exhausted(&self) -> bool {
        self.used() >= self.budget
    }

    /// At the budget, whether a connection that holds `held` bytes, one of `connections`, may
    /// still be read. Only if its output flows (`flowing`: nothing queued that the peer has not
    /// taken), and then: always while it holds less than [`FAIR_SHARE_FLOOR`] (a handshake and
    /// small requests always get through), or while it holds less than its fair share
    /// (`budget / connections`) and the server is within its reserve (a quarter above the
    /// budget). So a new connection, or a light one that reads its answers, is served while
    /// non-readers hold the budget; the non-readers are not read.
    pub fn may_read(&self, held: usize, connections: usize, flowing: bool) -> bool {
        if !self.exhausted() {
            return true;
        }
        if !flowing {
            return false;
        }
        if held < FAIR_SHARE_FLOOR {
            return true;
        }
        held < self.budget / connections.max(1)
            && self.used() < self.budget.saturating_add(self.budget / 4)
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
