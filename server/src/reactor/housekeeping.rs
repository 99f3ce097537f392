//! Housekeeping: buffers of connections that went quiet are given back ([`Reactor::sweep`]),
//! and the memory budget is watched: connections paused for it resume once it has room, and the
//! heaviest non-readers are evicted once it stayed exhausted for the grace period
//! ([`Reactor::housekeep_memory`]).

use super::*;

pub(super) static EVICT_LOG: RateLimit = RateLimit::new(Duration::from_secs(1));

impl Reactor {
    /// Gives back the buffers of connections that did nothing since the last sweep: an idle
    /// connection costs its slab entry, its session and the kernel socket.
    pub(super) fn sweep(&mut self) {
        let now = Instant::now();
        if self.next_sweep.is_none_or(|t| now < t) {
            return;
        }
        let budget = &self.shared.counters.memory;
        let mut keep = Vec::with_capacity(self.holding.len());
        for (key, generation) in std::mem::take(&mut self.holding) {
            let Some(conn) = self.conns.get_mut(key) else {
                continue;
            };
            if conn.generation != generation {
                continue;
            }
            if conn.active {
                conn.active = false;
                keep.push((key, generation));
                continue;
            }
            conn.session.release_memory();
            conn.jobs.release();
            conn.holding = false;
            conn.recharge(budget);
        }
        self.holding = keep;
        self.next_sweep = (!self.holding.is_empty()).then(|| now + SWEEP);
        if self.holding.is_empty() {
            // No connection took a turn for a sweep period: the spare buffers go back too and the
            // allocator is trimmed (`BufferPool::clear`). Kept, one of them may sit at the top of
            // the allocator's heap and hold every page freed below it (the non-reader test saw
            // up to 32 MiB stay resident after the load without this).
            self.pool.clear();
        }
    }

    /// The memory budget (see [`crate::memory`]): resumes connections paused for it once it has
    /// room, and evicts the heaviest non-readers once it has been exhausted for the grace period.
    pub(super) fn housekeep_memory(&mut self) {
        let shared = self.shared.clone();
        let budget = &shared.counters.memory;
        let now = Instant::now();
        if !budget.exhausted() {
            self.exhausted_since = None;
            for (key, generation) in std::mem::take(&mut self.paused) {
                if self
                    .conns
                    .get(key)
                    .is_some_and(|c| c.generation == generation)
                {
                    self.drive(key);
                }
            }
            return;
        }
        let since = *self.exhausted_since.get_or_insert(now);
        let grace = self.shared.config.eviction_grace;
        if now.saturating_duration_since(since) < grace {
            return;
        }
        while budget.exhausted() {
            // The heaviest connection that has written nothing for the grace period.
            let stalled_before = now.checked_sub(grace).map(|t| self.timers.tick(t));
            let victim = self
                .conns
                .iter()
                .filter(|(_, c)| {
                    c.stalled_since
                        .zip(stalled_before)
                        .is_some_and(|(t, before)| t <= before)
                })
                .max_by_key(|(_, c)| c.charged)
                .map(|(k, c)| (k, c.charged));
            let Some((key, held)) = victim else { break };
            self.shared
                .counters
                .connections_evicted
                .fetch_add(1, Ordering::Relaxed);
            if let Some(quiet) = EVICT_LOG.check(now) {
                tracing::warn!(
                    conn = self.conns[key].generation,
                    peer = self.conns[key].stream.peer(),
                    held,
                    budget = budget.limit(),
                    not_logged = quiet,
                    "memory budget exhausted: resetting a connection that has not read for {grace:?}"
                );
            }
            self.conns[key].stream.set_abortive();
            self.close(key, "evicted (memory budget)");
        }
    }
}
