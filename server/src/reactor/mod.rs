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

//!
//! The parts, each a small module: `acceptor` (the thread that accepts and hands out
//! connections, and `--reuseport` accepting), `connection` (one connection's turn: read into its
//! session, process, write; the lingering close), `housekeeping` (idle buffers given back, the
//! memory budget and evictions) and this module, the event loop that ties them together.

mod acceptor;
mod connection;
mod housekeeping;

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

use crate::admission::{Peer, admit};
use crate::listener::Bound;
use crate::memory::{Budget, JOB_CHARGE};
use crate::pool::BufferPool;
use crate::ratelimit::RateLimit;
use crate::service::{self, Jobs};
use crate::shared::Shared;
use crate::stream::MioStream;
use crate::timers::{Tick, Timers};

use self::acceptor::{Acceptor, Listener};
use self::connection::{Conn, Phase};

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
            let bytes = crate::listener::socket_buffer_size(shared.config.max_connection_memory);
            let sock = socket2::SockRef::from(&l);
            sock.set_send_buffer_size(bytes)?;
            sock.set_recv_buffer_size(bytes)?;
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
                if !self.conns.is_empty() {
                    tracing::warn!(
                        connections = self.conns.len(),
                        "shutdown aborted: resetting every connection"
                    );
                }
                self.reset_all("shutdown aborted");
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
                    tracing::warn!(
                        connections = self.conns.len(),
                        "drain timeout: closing connections with work still outstanding"
                    );
                    // §3.8: past the drain timeout the close is abortive.
                    self.reset_all("drain timeout");
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
                        let now = Instant::now();
                        self.drain_deadline = Some(
                            self.shared
                                .drain_deadline()
                                .unwrap_or(now + self.shared.config.drain_timeout),
                        );
                        let keys: Vec<usize> = self.conns.iter().map(|(k, _)| k).collect();
                        for k in keys {
                            // What the socket already holds was sent before the drain: it is
                            // read and processed first (spec §3.8, document 1.2), then the
                            // drain starts its own clock.
                            self.drive(k);
                            if let Some(conn) = self.conns.get_mut(k) {
                                conn.session.start_drain(Instant::now());
                            }
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
        // Unique in the server, not only in this reactor: the connection's log lines carry it.
        self.next_generation = self.shared.next_connection();
        let mut session = ServerSession::new(self.shared.session_config.clone(), now);
        if let Some((code, msg)) = &refuse {
            session.refuse(*code, msg);
        } else if self.drain_deadline.is_some() {
            session.start_drain(now);
        }
        if tracing::enabled!(tracing::Level::DEBUG) {
            tracing::debug!(
                conn = self.next_generation,
                peer = stream.peer(),
                "connection open"
            );
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

    /// Resets every connection (abortive close, spec §3.11), counted as drain resets — except
    /// those already in their lingering close, which have nothing outstanding and owe nothing
    /// (their linger is cut short).
    fn reset_all(&mut self, why: &str) {
        let keys: Vec<usize> = self.conns.iter().map(|(k, _)| k).collect();
        let owing = self
            .conns
            .iter()
            .filter(|(_, c)| !matches!(c.phase, Phase::Lingering))
            .count();
        self.shared
            .counters
            .drain_resets
            .fetch_add(owing as u64, Ordering::Relaxed);
        for k in keys {
            self.conns[k].stream.set_abortive();
            self.close(k, why);
        }
    }

    fn schedule(&mut self, key: usize, at: Option<Instant>) {
        let conn = &mut self.conns[key];
        self.timers.arm(key, &mut conn.timer, at);
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
            tracing::debug!(conn = conn.generation, why, reason, "connection closed");
        }
    }
}
