//! Server-wide counters: logged at shutdown and served by STATS (spec §4.11).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use echowire_codec::session::SessionStats;

/// Counters shared by every thread of a server. Cheap to update (relaxed atomics); the
/// per-code error table is merged once per closed connection.
#[derive(Debug, Default)]
pub struct Counters {
    /// Connections accepted (including refused ones).
    pub connections_accepted: AtomicU64,
    /// Connections open now.
    pub connections_open: AtomicU64,
    /// Connections refused (limit, credentials).
    pub connections_refused: AtomicU64,
    /// Frames received.
    pub frames_in: AtomicU64,
    /// Frames sent.
    pub frames_out: AtomicU64,
    /// Bytes received.
    pub bytes_in: AtomicU64,
    /// Bytes written.
    pub bytes_out: AtomicU64,
    /// Heavy requests answered BUSY because the worker queue was full.
    pub busy_rejections: AtomicU64,
    /// Heavy requests completed by workers.
    pub jobs_completed: AtomicU64,
    /// The most output ever queued for one connection after a write attempt (bytes): shows the
    /// backpressure cap holding.
    pub output_high_water: AtomicU64,
    /// SUM requests answered from their archived body (spec §6.9), read in place.
    pub archived_sums: AtomicU64,
    /// Connections reset because they held memory without reading while the server was at its
    /// memory budget.
    pub connections_evicted: AtomicU64,
    /// Connections whose Unix-domain peer was refused or that exceeded the limit are in
    /// `connections_refused`; accepts that failed for lack of descriptors are here.
    pub accept_emfile: AtomicU64,
    /// Connections reset because the shutdown's drain timeout expired or a second signal
    /// aborted it (their clients cannot know what was processed).
    pub drain_resets: AtomicU64,
    /// The memory budget and what connections hold now (see [`crate::memory`]).
    pub memory: crate::memory::Budget,
    /// ERROR frames sent, by code.
    errors: Mutex<BTreeMap<u16, u64>>,
}

impl Counters {
    /// Counters at zero, with a memory budget of `budget` bytes.
    pub fn with_budget(budget: usize) -> Self {
        Counters {
            memory: crate::memory::Budget::new(budget),
            ..Counters::default()
        }
    }

    /// Adds a closed connection's session counters.
    pub fn merge_session(&self, s: &SessionStats) {
        self.frames_in.fetch_add(s.frames_in, Relaxed);
        self.frames_out.fetch_add(s.frames_out, Relaxed);
        if !s.errors_sent.is_empty() {
            let mut e = self.errors.lock().unwrap_or_else(|p| p.into_inner());
            for (code, n) in &s.errors_sent {
                *e.entry(*code).or_default() += n;
            }
        }
    }

    /// ERROR frames sent by code, for connections closed so far.
    pub fn errors_by_code(&self) -> BTreeMap<u16, u64> {
        self.errors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The counters as STATS_REPLY entries.
    pub fn entries(&self) -> Vec<(String, u64)> {
        let errors: u64 = self.errors_by_code().values().sum();
        vec![
            (
                "connections_accepted".into(),
                self.connections_accepted.load(Relaxed),
            ),
            (
                "connections_open".into(),
                self.connections_open.load(Relaxed),
            ),
            (
                "connections_refused".into(),
                self.connections_refused.load(Relaxed),
            ),
            ("frames_in".into(), self.frames_in.load(Relaxed)),
            ("frames_out".into(), self.frames_out.load(Relaxed)),
            ("bytes_in".into(), self.bytes_in.load(Relaxed)),
            ("bytes_out".into(), self.bytes_out.load(Relaxed)),
            ("errors_sent".into(), errors),
            ("busy_rejections".into(), self.busy_rejections.load(Relaxed)),
            ("jobs_completed".into(), self.jobs_completed.load(Relaxed)),
            (
                "output_high_water".into(),
                self.output_high_water.load(Relaxed),
            ),
            ("archived_sums".into(), self.archived_sums.load(Relaxed)),
            (
                "connections_evicted".into(),
                self.connections_evicted.load(Relaxed),
            ),
            ("accept_emfile".into(), self.accept_emfile.load(Relaxed)),
            ("drain_resets".into(), self.drain_resets.load(Relaxed)),
            ("memory_held".into(), self.memory.used() as u64),
            ("memory_high_water".into(), self.memory.high_water()),
        ]
    }
}
