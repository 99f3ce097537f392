//! What every thread of one server shares: the settings, the counters, the worker pool and the
//! shutdown flags; and the [`Stopper`] that sets them from another thread (a signal handler's).
//! Every model, the reactor's modules and the service take it from here (none reaches up into
//! the crate root).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use crate::config::Config;
use crate::counters::Counters;
use crate::workers;

/// State shared by every thread of one server.
#[derive(Debug)]
pub struct Shared {
    /// Settings.
    pub config: Config,
    /// Per-connection protocol settings derived from `config`.
    pub session_config: Arc<echowire_codec::session::ServerConfig>,
    /// Counters.
    pub counters: Arc<Counters>,
    /// The worker pool.
    pub pool: workers::Pool,
    shutdown: AtomicBool,
    /// When the drain ends (spec §3.8): the shutdown's start plus the drain timeout, one clock
    /// for every connection (a connection served later, in the blocking model, or accepted
    /// from the queue at shutdown, does not get a fresh drain timeout of its own).
    drain_deadline: OnceLock<Instant>,
    abort: AtomicBool,
    handed_over: AtomicBool,
    /// The last connection number given out ([`Shared::next_connection`]).
    connections: std::sync::atomic::AtomicU64,
    /// The reactors' wakers (reactor model), for [`Stopper::abort`].
    wakers: std::sync::Mutex<Vec<Arc<mio::Waker>>>,
}

impl Shared {
    /// The state of a server about to start.
    pub(crate) fn new(config: Config, counters: Arc<Counters>, pool: workers::Pool) -> Self {
        Shared {
            session_config: Arc::new(config.session()),
            config,
            counters,
            pool,
            shutdown: AtomicBool::new(false),
            drain_deadline: OnceLock::new(),
            abort: AtomicBool::new(false),
            handed_over: AtomicBool::new(false),
            connections: std::sync::atomic::AtomicU64::new(0),
            wakers: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// Whether a graceful shutdown has begun.
    pub fn shutting_down(&self) -> bool {
        self.shutdown.load(Ordering::Acquire)
    }

    /// When the graceful shutdown's drain ends, once it has begun.
    pub fn drain_deadline(&self) -> Option<Instant> {
        self.drain_deadline.get().copied()
    }

    /// A number for a new connection, unique in this server (1, 2, …): its log lines from open
    /// to close carry it as `conn`.
    pub fn next_connection(&self) -> u64 {
        self.connections.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Whether the shutdown was cut short: every connection is reset at once.
    pub fn aborting(&self) -> bool {
        self.abort.load(Ordering::Acquire)
    }

    /// Whether the listeners were handed to a successor (see [`crate::handover`]): their Unix socket
    /// files and path locks are the successor's now.
    pub fn handed_over(&self) -> bool {
        self.handed_over.load(Ordering::Acquire)
    }

    pub(crate) fn add_waker(&self, w: Arc<mio::Waker>) {
        self.wakers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(w);
    }
}

/// Stops a running server from another thread (a signal handler's): gracefully, or at once.
#[derive(Clone, Debug)]
pub struct Stopper {
    shared: Arc<Shared>,
    waker: Option<Arc<mio::Waker>>,
}

impl Stopper {
    pub(crate) fn new(shared: Arc<Shared>, waker: Option<Arc<mio::Waker>>) -> Self {
        Stopper { shared, waker }
    }

    /// Begins a graceful shutdown (see [`crate::ServerHandle::shutdown`]).
    pub fn begin_shutdown(&self) {
        let timeout = self.shared.config.drain_timeout;
        self.shared.drain_deadline.get_or_init(|| {
            let now = Instant::now();
            now.checked_add(timeout).unwrap_or(now)
        });
        self.shared.shutdown.store(true, Ordering::Release);
        if let Some(w) = &self.waker {
            let _ = w.wake();
        }
    }

    /// Begins a graceful shutdown after the listeners were handed to a successor: Unix socket
    /// files stay, path locks stay held (by the successor).
    pub fn hand_over(&self) {
        self.shared.handed_over.store(true, Ordering::Release);
        self.begin_shutdown();
    }

    /// Ends the server now: stop accepting, reset every connection (abortive close, spec
    /// §3.11: the fate of outstanding requests is unknown to their clients), cancel queued
    /// work. For a second signal during a drain.
    pub fn abort(&self) {
        self.shared.abort.store(true, Ordering::Release);
        self.begin_shutdown();
        for w in self
            .shared
            .wakers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let _ = w.wake();
        }
    }
}
