//! The reactor model: one acceptor thread, N reactor threads (one mio `Poll` each), the worker pool.
//!
//! **Accepting.** One acceptor thread waits on every listener and hands accepted sockets to the
//! reactors round-robin through a channel plus the reactor's `mio::Waker`. Only one thread ever
//! waits on a listener, so there is no thundering herd. We chose this over one `SO_REUSEPORT`
//! listener per reactor because it treats TCP and Unix sockets alike, keeps `--max-connections`
//! exact and `EMFILE` handling in one place, and balances a single load generator's connections
//! evenly (the kernel's reuseport hash can put most of a few connections on one reactor). The
//! cost is one channel send and one wakeup per accepted connection. That cost has not been
//! benchmarked here against reuseport.
//!
//! With `--reuseport` each reactor instead owns one `SO_REUSEPORT` socket per TCP address and
//! accepts on it itself (the acceptor thread keeps the Unix listeners and the shutdown signal):
//! no channel hop and no wakeup per connection, but the kernel's hash decides which reactor gets
//! which connection. BENCHMARKS.md measures the two.
//!
//! **A connection** lives in its reactor's slab. Its token is the slab key; a generation number
//! guards completions from workers against a slot reused by a newer connection. Stale readiness
//! events for a reused slot are harmless: every handler reads or writes until `WouldBlock`, so a
//! spurious event does nothing.
//!
//! **Reading** goes straight into the session's receive buffer: the session sizes each read
//! (`ServerSession::read_with`: a window that adapts to what arrives, at most 64 KiB, one
//! exact buffer for a frame of 16 KiB or more), and [`MioStream::recv_into`] receives into its
//! spare capacity — no scratch buffer, no copy, and no `Length` parsed here. One read per step,
//! then decode and write before reading again, until `WouldBlock` or a short read (mio is
//! edge-triggered). Decoding between reads keeps the input buffer at one partial frame plus one
//! read, instead of a maximum-size frame's worth of pipelined requests. Everything after that —
//! decoding, ECHO_REPLY payloads — shares that buffer without copying.
//! Reading stops when the session's output queue is above its cap, when the connection holds
//! more than `--max-connection-memory`, or while the server is at its memory budget
//! ([`crate::memory`]); it resumes when writes make progress or memory is given back.
//!
//! **Buffers** of a connection whose turn left them empty go to a small per-reactor pool, from
//! which the next turn of any connection takes them ([`crate::pool`]): an idle connection
//! holds none, and a busy one does not allocate and free them on every turn. When a sweep finds
//! no connection of the reactor active, the pool is freed and the allocator trimmed, so memory
//! goes back to the system after a load.
//!
//! **Timers**: one entry per connection at most ([`crate::timers`]).
//!
//! **Writing** is one vectored write of the session's outbox; what the socket does not take stays
//! queued, and WRITABLE interest is registered only while output is pending.
//!
//! **Closing** is lingering (spec §3.10): shut down the write side, read and discard until EOF or
//! `linger`, then drop. Idle connections give back their buffers, so an idle connection costs
//! its slab entry, its session and the kernel socket.

use std::io::{self, Read};
use std::net::Shutdown;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, unbounded};
use echowire_codec::ErrorCode;
use echowire_codec::message::Message;
use echowire_codec::session::ServerSession;
use mio::{Events, Interest, Poll, Token, Waker};
use slab::Slab;

use crate::Shared;
use crate::admission::{Peer, admit};
use crate::listener::Bound;
use crate::memory::{Budget, JOB_CHARGE};
use crate::pool::BufferPool;
use crate::ratelimit::RateLimit;
use crate::service::{self, Jobs};
use crate::stream::MioStream;
use crate::timers::{Tick, Timers};

const WAKER: Token = Token(usize::MAX);
/// Tokens of a reactor's own listeners (`--reuseport`): `LISTENER_TOKENS - j`.
const LISTENER_TOKENS: usize = usize::MAX - 1;
/// Most TCP addresses one server listens on with `--reuseport`.
const MAX_OWN_LISTENERS: usize = 64;
/// What a lingering close reads (and discards) at a time.
const DISCARD: usize = 16 * 1024;
const EMFILE_BACKOFF: Duration = Duration::from_millis(100);
/// Buffers of a connection that did no I/O for between one and two of these are given back.
const SWEEP: Duration = Duration::from_secs(1);
/// How often a reactor looks at the memory budget while it is exhausted or connections wait
/// for it.
const BUDGET_TICK: Duration = Duration::from_millis(50);

static EMFILE_LOG: RateLimit = RateLimit::new(Duration::from_secs(1));

/// `accept` failed for want of a descriptor (the process's or the system's).
fn out_of_descriptors(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(code) if code == nix::libc::EMFILE || code == nix::libc::ENFILE)
}

/// Counts an `EMFILE`/`ENFILE` accept, logs it (rate-limited) and returns when to try again.
/// Accepting is paused rather than retried at once: the pending connection stays in the
/// backlog, and spinning on it would burn the reactor's core without freeing a descriptor.
fn accept_backoff(shared: &Shared, e: &io::Error) -> Instant {
    shared
        .counters
        .accept_emfile
        .fetch_add(1, Ordering::Relaxed);
    let now = Instant::now();
    if let Some(quiet) = EMFILE_LOG.check(now) {
        tracing::warn!(error = %e, not_logged = quiet, "out of file descriptors; pausing accept for {EMFILE_BACKOFF:?} (raise the descriptor limit or lower --max-connections)");
    }
    now + EMFILE_BACKOFF
}
static EVICT_LOG: RateLimit = RateLimit::new(Duration::from_secs(1));

/// Messages to a reactor.
enum Msg {
    NewConn {
        stream: MioStream,
        refuse: Option<(ErrorCode, String)>,
    },
    Completion {
        key: usize,
        generation: u64,
        id: u32,
        response: Message,
    },
    Shutdown,
}

#[derive(Clone)]
struct ReactorHandle {
    tx: Sender<Msg>,
    waker: Arc<Waker>,
}

impl ReactorHandle {
    fn send(&self, msg: Msg) {
        if self.tx.send(msg).is_ok() {
            let _ = self.waker.wake();
        }
    }
}

/// Starts the acceptor and the reactors; returns their threads and a way to stop them.
pub(crate) fn start(
    listeners: Vec<Bound>,
    shared: Arc<Shared>,
) -> io::Result<(Vec<JoinHandle<()>>, Arc<Waker>)> {
    let mut threads = Vec::new();
    let mut handles = Vec::new();
    let reactors = shared.config.reactors.max(1);
    // --reuseport: the TCP listeners move to the reactors (one socket per reactor and address).
    let (tcp, mut listeners): (Vec<Bound>, Vec<Bound>) = if shared.config.reuseport {
        listeners
            .into_iter()
            .partition(|b| matches!(b, Bound::Tcp(_)))
    } else {
        (Vec::new(), listeners)
    };
    if tcp.len() > MAX_OWN_LISTENERS {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("--reuseport serves at most {MAX_OWN_LISTENERS} TCP addresses"),
        ));
    }
    let mut own: Vec<Vec<mio::net::TcpListener>> = (0..reactors).map(|_| Vec::new()).collect();
    for b in tcp {
        let Bound::Tcp(first) = b else { continue };
        let addr = first.local_addr()?;
        for (i, slot) in own.iter_mut().enumerate() {
            let l = if i == 0 {
                first.try_clone()?
            } else {
                crate::listener::bind_reuseport_tcp(addr).map_err(|e| {
                    io::Error::new(
                        e.kind(),
                        format!("--reuseport: a second socket on {addr}: {e} (the listener must be bound with SO_REUSEPORT)"),
                    )
                })?
            };
            l.set_nonblocking(true)?;
            slot.push(mio::net::TcpListener::from_std(l));
        }
    }
    let named = |e: io::Error| {
        io::Error::new(
            e.kind(),
            format!("cannot start {reactors} reactor threads (--reactors): {e}"),
        )
    };
    for (i, mut own_listeners) in own.into_iter().enumerate() {
        let poll = Poll::new().map_err(named)?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER).map_err(named)?);
        for (j, l) in own_listeners.iter_mut().enumerate() {
            poll.registry()
                .register(l, Token(LISTENER_TOKENS - j), Interest::READABLE)?;
        }
        let (tx, rx) = unbounded();
        shared.add_waker(waker.clone());
        let handle = ReactorHandle { tx, waker };
        let mut reactor = Reactor {
            poll,
            rx,
            me: handle.clone(),
            // Sized once for this reactor's share of --max-connections: a slab that doubles
            // copies itself, and the old copy stays resident in the allocator (measured: about
            // 120 bytes per idle connection at 9,000). Untouched capacity costs no RSS.
            conns: Slab::with_capacity((shared.config.max_connections / reactors + 1).min(1 << 16)),
            timers: Timers::default(),
            discard: vec![0u8; DISCARD].into_boxed_slice(),
            pool: BufferPool::default(),
            shared: shared.clone(),
            next_generation: 0,
            drain_deadline: None,
            paused: Vec::new(),
            exhausted_since: None,
            own_listeners,
            accept_backoff: None,
            holding: Vec::new(),
            next_sweep: None,
        };
        handles.push(handle);
        threads.push(
            std::thread::Builder::new()
                .name(format!("echowire-reactor-{i}"))
                .spawn(move || {
                    if let Err(e) = reactor.run() {
                        tracing::error!(error = %e, "reactor failed");
                    }
                })
                .map_err(named)?,
        );
    }
    let poll = Poll::new()?;
    let stop = Arc::new(Waker::new(poll.registry(), WAKER)?);
    let mut acceptor = Acceptor {
        poll,
        listeners: Vec::new(),
        reactors: handles,
        next: 0,
        shared,
    };
    listeners.shrink_to_fit();
    for (i, b) in listeners.into_iter().enumerate() {
        let mut l = match b {
            Bound::Tcp(l) => {
                l.set_nonblocking(true)?;
                Listener::Tcp(mio::net::TcpListener::from_std(l))
            }
            Bound::Unix(l, path, lock) => {
                l.set_nonblocking(true)?;
                Listener::Unix(mio::net::UnixListener::from_std(l), path, lock)
            }
        };
        match &mut l {
            Listener::Tcp(t) => {
                acceptor
                    .poll
                    .registry()
                    .register(t, Token(i), Interest::READABLE)?
            }
            Listener::Unix(u, _, _) => {
                acceptor
                    .poll
                    .registry()
                    .register(u, Token(i), Interest::READABLE)?
            }
        }
        acceptor.listeners.push(l);
    }
    threads.push(
        std::thread::Builder::new()
            .name("echowire-acceptor".into())
            .spawn(move || {
                if let Err(e) = acceptor.run() {
                    tracing::error!(error = %e, "acceptor failed");
                }
            })?,
    );
    Ok((threads, stop))
}

enum Listener {
    Tcp(mio::net::TcpListener),
    Unix(
        mio::net::UnixListener,
        std::path::PathBuf,
        crate::listener::PathLock,
    ),
}

struct Acceptor {
    poll: Poll,
    listeners: Vec<Listener>,
    reactors: Vec<ReactorHandle>,
    next: usize,
    shared: Arc<Shared>,
}

impl Acceptor {
    fn run(&mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(64);
        let mut backoff: Option<Instant> = None;
        loop {
            let timeout = backoff.map(|t| t.saturating_duration_since(Instant::now()));
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            if self.shared.shutting_down() {
                // What the kernel already completed into the accept queues is served (the
                // reactors drain it: a buffered HELLO gets WELCOME and GOODBYE); closing the
                // listeners with it queued would reset those clients. After a hand-over the
                // successor accepts it instead.
                if !self.shared.handed_over() {
                    for i in 0..self.listeners.len() {
                        self.accept_all(i);
                    }
                }
                break;
            }
            if backoff.is_some_and(|t| Instant::now() < t) {
                continue;
            }
            backoff = None;
            // Accept on every listener (after a backoff no event may come for queued connections).
            for i in 0..self.listeners.len() {
                if let Some(until) = self.accept_all(i) {
                    backoff = Some(until);
                }
            }
        }
        for l in self.listeners.drain(..) {
            if let Listener::Unix(_, path, lock) = l {
                crate::listener::release_unix(&path, lock, self.shared.handed_over());
            }
        }
        for r in &self.reactors {
            r.send(Msg::Shutdown);
        }
        Ok(())
    }

    /// Accepts until `WouldBlock`; on descriptor exhaustion returns when to try again.
    fn accept_all(&mut self, i: usize) -> Option<Instant> {
        loop {
            let accepted = match &self.listeners[i] {
                Listener::Tcp(l) => l.accept().map(|(s, _)| {
                    let _ = s.set_nodelay(true);
                    let refuse = admit(&self.shared, Peer::Tcp);
                    (MioStream::Tcp(s), refuse)
                }),
                Listener::Unix(l, _, _) => l.accept().map(|(s, _)| {
                    let refuse = admit(&self.shared, Peer::Unix(s.as_fd()));
                    (MioStream::Unix(s), refuse)
                }),
            };
            match accepted {
                Ok((stream, refuse)) => {
                    let r = &self.reactors[self.next % self.reactors.len()];
                    self.next = self.next.wrapping_add(1);
                    r.send(Msg::NewConn { stream, refuse });
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if out_of_descriptors(&e) => {
                    return Some(accept_backoff(&self.shared, &e));
                }
                Err(e) => {
                    // ECONNABORTED and friends concern one connection only.
                    tracing::debug!(error = %e, "accept failed");
                    continue;
                }
            }
        }
    }
}

enum Phase {
    Active,
    /// Write side shut down; reading and discarding until EOF or the deadline.
    Lingering,
}

struct Conn {
    stream: MioStream,
    generation: u64,
    session: ServerSession,
    jobs: Jobs,
    phase: Phase,
    eof: bool,
    /// The poller reported the peer's end of stream (or an error): read until `read` says so,
    /// even after a short read.
    read_closed: bool,
    writable: bool,
    timer: Option<Tick>,
    /// Bytes this connection is charged against the memory budget.
    charged: usize,
    /// Since when queued output has been waiting without a byte written (a non-reader).
    stalled_since: Option<Tick>,
    /// Driven since the last sweep.
    active: bool,
    /// In the reactor's list of connections holding buffers.
    holding: bool,
}

impl Conn {
    /// Charges the budget with what this connection holds now: its input buffer's capacity,
    /// its queued output and its queued work.
    fn recharge(&mut self, budget: &Budget) {
        let held = self.session.buffered_memory() + self.jobs.len() * JOB_CHARGE;
        budget.recharge(self.charged, held);
        self.charged = held;
    }
}

struct Reactor {
    poll: Poll,
    rx: Receiver<Msg>,
    me: ReactorHandle,
    conns: Slab<Conn>,
    timers: Timers,
    /// Where a lingering close reads what it discards.
    discard: Box<[u8]>,
    /// Spare input and output buffers, passed from one connection's turn to the next.
    pool: BufferPool,
    shared: Arc<Shared>,
    next_generation: u64,
    drain_deadline: Option<Instant>,
    /// Connections that stopped reading because the server is at its memory budget (key,
    /// generation): driven again when it is not.
    paused: Vec<(usize, u64)>,
    /// Since when this reactor has seen the server at its memory budget.
    exhausted_since: Option<Instant>,
    /// Connections that may hold buffers, swept every [`SWEEP`] (key, generation).
    holding: Vec<(usize, u64)>,
    next_sweep: Option<Instant>,
    /// `--reuseport`: this reactor's own TCP listeners.
    own_listeners: Vec<mio::net::TcpListener>,
    /// Accepting on them paused until then (out of descriptors).
    accept_backoff: Option<Instant>,
}

impl Reactor {
    fn run(&mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        loop {
            let now = Instant::now();
            let next_timer = self.timers.next();
            let deadline = match (next_timer, self.drain_deadline) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let deadline = match (deadline, self.next_sweep) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let deadline = match (deadline, self.accept_backoff) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let mut timeout = deadline.map(|d| d.saturating_duration_since(now));
            if !self.paused.is_empty() || self.exhausted_since.is_some() {
                timeout = Some(timeout.map_or(BUDGET_TICK, |t| t.min(BUDGET_TICK)));
            }
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            let mut accept = false;
            for event in events.iter() {
                if event.token() == WAKER {
                    continue; // the channel is drained below, whatever woke us
                }
                let key = event.token().0;
                if key > LISTENER_TOKENS - MAX_OWN_LISTENERS {
                    accept = true;
                    continue;
                }
                if (event.is_read_closed() || event.is_error())
                    && let Some(conn) = self.conns.get_mut(key)
                {
                    conn.read_closed = true;
                }
                self.drive(key);
            }
            if self.accept_backoff.is_some_and(|t| Instant::now() >= t) {
                self.accept_backoff = None;
                accept = true;
            }
            if accept && self.accept_backoff.is_none() {
                self.accept_own();
            }
            if self.shared.aborting() {
                let keys: Vec<usize> = self.conns.iter().map(|(k, _)| k).collect();
                if !keys.is_empty() {
                    tracing::warn!(
                        connections = keys.len(),
                        "shutdown aborted: resetting every connection"
                    );
                }
                self.shared
                    .counters
                    .drain_resets
                    .fetch_add(keys.len() as u64, Ordering::Relaxed);
                for k in keys {
                    self.conns[k].stream.set_abortive();
                    self.close(k, "shutdown aborted");
                }
                return Ok(());
            }
            self.drain_channel();
            self.fire_timers();
            self.housekeep_memory();
            self.sweep();
            if let Some(deadline) = self.drain_deadline {
                if self.conns.is_empty() {
                    return Ok(());
                }
                if Instant::now() >= deadline {
                    let n = self.conns.len();
                    tracing::warn!(
                        connections = n,
                        "drain timeout: closing connections with work still outstanding"
                    );
                    let keys: Vec<usize> = self.conns.iter().map(|(k, _)| k).collect();
                    self.shared
                        .counters
                        .drain_resets
                        .fetch_add(keys.len() as u64, Ordering::Relaxed);
                    for k in keys {
                        // §3.8: past the drain timeout the close is abortive.
                        self.conns[k].stream.set_abortive();
                        self.close(k, "drain timeout");
                    }
                    return Ok(());
                }
            }
        }
    }

    /// Wakes coalesce: drain everything queued.
    fn drain_channel(&mut self) {
        while let Ok(msg) = self.rx.try_recv() {
            match msg {
                Msg::NewConn { stream, refuse } => self.add(stream, refuse),
                Msg::Completion {
                    key,
                    generation,
                    id,
                    response,
                } => {
                    let Some(conn) = self.conns.get_mut(key) else {
                        continue;
                    };
                    if conn.generation != generation {
                        continue;
                    }
                    service::complete(
                        &mut conn.session,
                        &mut conn.jobs,
                        id,
                        response,
                        Instant::now(),
                    );
                    self.drive(key);
                }
                Msg::Shutdown => {
                    if self.drain_deadline.is_none() {
                        // Own listeners (--reuseport): what their queues hold is served, then
                        // they close (each socket has its own queue; nobody else accepts it).
                        self.accept_own();
                        for mut l in std::mem::take(&mut self.own_listeners) {
                            let _ = self.poll.registry().deregister(&mut l);
                        }
                        self.drain_deadline =
                            Some(Instant::now() + self.shared.config.drain_timeout);
                        let keys: Vec<usize> = self.conns.iter().map(|(k, _)| k).collect();
                        for k in keys {
                            self.conns[k].session.start_drain();
                            self.drive(k);
                        }
                    }
                }
            }
        }
    }

    fn add(&mut self, mut stream: MioStream, refuse: Option<(ErrorCode, String)>) {
        let now = Instant::now();
        let entry = self.conns.vacant_entry();
        let key = entry.key();
        if let Err(e) = self
            .poll
            .registry()
            .register(&mut stream, Token(key), Interest::READABLE)
        {
            tracing::warn!(error = %e, "cannot register connection");
            self.shared
                .counters
                .connections_open
                .fetch_sub(1, Ordering::Relaxed);
            return;
        }
        self.next_generation += 1;
        let mut session = ServerSession::new(self.shared.session_config.clone(), now);
        if let Some((code, msg)) = &refuse {
            session.refuse(*code, msg);
        } else if self.drain_deadline.is_some() {
            session.start_drain();
        }
        if tracing::enabled!(tracing::Level::DEBUG) {
            tracing::debug!(peer = stream.peer(), key, "connection open");
        }
        entry.insert(Conn {
            stream,
            generation: self.next_generation,
            session,
            jobs: Jobs::new(),
            phase: Phase::Active,
            eof: false,
            read_closed: false,
            writable: false,
            timer: None,
            charged: 0,
            stalled_since: None,
            active: false,
            holding: false,
        });
        self.drive(key);
    }

    /// Gives back the buffers of connections that did nothing since the last sweep: an idle
    /// connection costs its slab entry, its session and the kernel socket.
    fn sweep(&mut self) {
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

    /// `--reuseport`: accepts on this reactor's own listeners until they would block.
    fn accept_own(&mut self) {
        for j in 0..self.own_listeners.len() {
            loop {
                match self.own_listeners[j].accept() {
                    Ok((s, _)) => {
                        let _ = s.set_nodelay(true);
                        let refuse = admit(&self.shared, Peer::Tcp);
                        self.add(MioStream::Tcp(s), refuse);
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) if out_of_descriptors(&e) => {
                        self.accept_backoff = Some(accept_backoff(&self.shared, &e));
                        return;
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "accept failed");
                        continue;
                    }
                }
            }
        }
    }

    /// The memory budget (see [`crate::memory`]): resumes connections paused for it once it has
    /// room, and evicts the heaviest non-readers once it has been exhausted for the grace period.
    fn housekeep_memory(&mut self) {
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

    fn fire_timers(&mut self) {
        let now = Instant::now();
        while let Some(key) = self.timers.pop_due(now) {
            let Some(conn) = self.conns.get_mut(key) else {
                continue;
            };
            conn.timer = None;
            if let Phase::Lingering = conn.phase {
                self.close(key, "linger deadline");
                continue;
            }
            conn.session.handle_timeout(now);
            self.drive(key);
        }
    }

    /// Reads, processes and writes until nothing more can be done without new readiness.
    fn drive(&mut self, key: usize) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if let Phase::Lingering = conn.phase {
            return self.linger_read(key);
        }
        let shared = self.shared.clone();
        let me = self.me.clone();
        if let (_, Some(back)) = conn.session.reuse_buffers(None, self.pool.output()) {
            self.pool.put_output(back);
        }
        // A read that returned less than it asked for emptied the socket's receive queue: with
        // edge-triggered readiness, data that arrives later is a new event, so reading again
        // until `WouldBlock` would cost one more system call per turn for nothing (tokio does
        // the same). Not once the peer's FIN was reported: that edge has passed, and only a
        // read that returns 0 tells where the stream ends.
        let mut drained = false;
        loop {
            let mut progress = false;
            let now = Instant::now();
            // 1. Read once (then decode and write before reading more), unless at EOF or held
            //    back: the session's output cap, the connection's memory cap, the budget.
            while !conn.eof && !drained && conn.session.wants_read() {
                if let (Some(back), _) = conn.session.reuse_buffers(self.pool.input(), None) {
                    self.pool.put_input(back);
                }
                let queued = conn.session.pending_output();
                if queued > 0
                    && conn.session.buffered_memory() >= shared.config.max_connection_memory
                {
                    break; // resumes when writing makes progress
                }
                if shared.counters.memory.exhausted() {
                    if !self.paused.contains(&(key, conn.generation)) {
                        self.paused.push((key, conn.generation));
                    }
                    break;
                }
                let stream = &conn.stream;
                let mut asked = 0;
                let read = conn.session.read_with(|buf, max| {
                    asked = max;
                    stream.recv_into(buf, max)
                });
                match read {
                    Ok(None) => break, // a maximum-size frame is buffered
                    Ok(Some(0)) => {
                        // The session took the end of the stream.
                        conn.eof = true;
                        progress = true;
                    }
                    Ok(Some(n)) => {
                        drained = n < asked && !conn.read_closed;
                        shared
                            .counters
                            .bytes_in
                            .fetch_add(n as u64, Ordering::Relaxed);
                        progress = true;
                        break;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return self.close(key, &format!("read error: {e}")),
                }
            }
            // 2. Process what arrived; 3. write what is queued (the step every model shares).
            let generation = conn.generation;
            progress |= service::process(&mut conn.session, &mut conn.jobs, &shared, now, |id| {
                let me = me.clone();
                Box::new(move |response| {
                    me.send(Msg::Completion {
                        key,
                        generation,
                        id,
                        response,
                    })
                })
            });
            match service::flush(&mut conn.session, &mut conn.stream, &shared) {
                Ok(n) => {
                    progress |= n > 0;
                    if n > 0 || conn.session.pending_output() == 0 {
                        conn.stalled_since = None;
                    } else if conn.stalled_since.is_none() {
                        conn.stalled_since = Some(self.timers.tick(now));
                    }
                }
                Err(e) => return self.close(key, &format!("write error: {e}")),
            }
            if !progress {
                break;
            }
        }
        let pending = conn.session.pending_output() > 0;
        if pending != conn.writable {
            let interest = if pending {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            if let Err(e) = self
                .poll
                .registry()
                .reregister(&mut conn.stream, Token(key), interest)
            {
                return self.close(key, &format!("reregister failed: {e}"));
            }
            conn.writable = pending;
        }
        // A turn that leaves the I/O buffers empty gives them to the reactor's pool at once (a
        // buffer kept for a second by every connection of a burst of new ones stays resident in
        // the allocator afterwards); the next connection's turn takes them from there instead
        // of allocating ([`crate::pool`]). The request-ID table and the job map, which a busy
        // connection would reallocate on every turn, go back when the sweep finds it quiet.
        let (input, output) = conn.session.take_spare_buffers();
        if let Some(b) = input {
            self.pool.put_input(b);
        }
        if let Some(spare) = output {
            self.pool.put_output(spare);
        }
        conn.active = true;
        if !conn.holding {
            conn.holding = true;
            self.holding.push((key, conn.generation));
            self.next_sweep
                .get_or_insert_with(|| Instant::now() + SWEEP);
        }
        conn.recharge(&shared.counters.memory);
        if conn.session.is_finished() {
            if conn.session.is_abortive() {
                // The drain timeout expired (spec §3.8, §3.10): reset, do not linger.
                if self.drain_deadline.is_some() {
                    shared.counters.drain_resets.fetch_add(1, Ordering::Relaxed);
                }
                conn.stream.set_abortive();
                return self.close(key, "drain timeout");
            }
            // Lingering close (spec §3.10): FIN now, drop after EOF or the deadline.
            let _ = conn.stream.shutdown(Shutdown::Write);
            let deadline = Instant::now() + shared.config.linger;
            conn.phase = Phase::Lingering;
            if conn.eof {
                return self.close(key, "finished");
            }
            self.schedule(key, Some(deadline));
            return self.linger_read(key);
        }
        let next = conn.session.poll_timeout();
        self.schedule(key, next);
    }

    fn schedule(&mut self, key: usize, at: Option<Instant>) {
        let conn = &mut self.conns[key];
        self.timers.arm(key, &mut conn.timer, at);
    }

    fn linger_read(&mut self, key: usize) {
        let conn = &mut self.conns[key];
        loop {
            match conn.stream.read(&mut self.discard) {
                Ok(0) => return self.close(key, "finished"),
                Ok(_) => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return self.close(key, "finished (reset while lingering)"),
            }
        }
    }

    fn close(&mut self, key: usize, why: &str) {
        if !self.conns.contains(key) {
            return;
        }
        let mut conn = self.conns.remove(key);
        self.timers.disarm(key, &mut conn.timer);
        self.shared.counters.memory.recharge(conn.charged, 0);
        let _ = self.poll.registry().deregister(&mut conn.stream);
        service::cancel_all(&conn.jobs);
        self.shared.counters.merge_session(conn.session.stats());
        self.shared
            .counters
            .connections_open
            .fetch_sub(1, Ordering::Relaxed);
        if tracing::enabled!(tracing::Level::DEBUG) {
            let reason = conn.session.close_reason().map(|r| format!("{r:?}"));
            tracing::debug!(peer = conn.stream.peer(), why, reason, "connection closed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An idle connection costs its slab entry and little else (BENCHMARKS.md: at most 512 bytes
    /// of RSS per idle connection). A field added here is paid 10,000 times over.
    #[test]
    fn a_connection_stays_small() {
        let (conn, session) = (size_of::<Conn>(), size_of::<ServerSession>());
        println!("Conn {conn} bytes, ServerSession {session} bytes");
        assert!(conn <= 320, "Conn is {conn} bytes");
        // The session owns the receive buffer the connection held before (32 bytes moved from
        // Conn into ServerSession, Conn unchanged at 312).
        assert!(session <= 240, "ServerSession is {session} bytes");
    }
}
