//! The two simple I/O models from the project's roadmap, kept for comparison and teaching:
//!
//! * `threaded`: one OS thread per connection, blocking std::net I/O;
//! * `blocking`: one connection at a time on the accepting thread.
//!
//! Both drive the same [`ServerSession`] and the same dispatch (`service.rs`) as the reactor,
//! so they speak exactly the same protocol; heavy requests still go to the worker pool, whose
//! completions come back through a channel that the connection loop checks between reads (reads
//! use a short timeout while work is outstanding). What they cannot do is the point of the
//! comparison: `blocking` serves nobody else while one client is connected, and `threaded` pays a
//! thread (stack, scheduler) per connection.

use std::io::{self, Read};
use std::net::Shutdown;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::unbounded;
use echowire_codec::ErrorCode;
use echowire_codec::session::ServerSession;

use crate::admission::{Peer, admit};
use crate::config::Model;
use crate::listener::Bound;
use crate::service::{self, Jobs};
use crate::shared::Shared;
use crate::stream::{StdStream, is_transient};

/// How often an idle connection loop looks at the shutdown flag.
const TICK: Duration = Duration::from_millis(50);
/// Read timeout while a worker may complete a job of this connection.
const JOB_POLL: Duration = Duration::from_millis(2);

pub(crate) fn start(listeners: Vec<Bound>, shared: Arc<Shared>) -> io::Result<Vec<JoinHandle<()>>> {
    let mut ls = Vec::new();
    for b in listeners {
        match &b {
            Bound::Tcp(l) => l.set_nonblocking(true)?,
            Bound::Unix(l, _, _) => l.set_nonblocking(true)?,
        }
        ls.push(b);
    }
    let name = format!("echowire-{:?}-acceptor", shared.config.model).to_lowercase();
    let t = std::thread::Builder::new()
        .name(name)
        .spawn(move || accept_loop(ls, shared))?;
    Ok(vec![t])
}

fn accept_loop(listeners: Vec<Bound>, shared: Arc<Shared>) {
    let mut threads: Vec<JoinHandle<()>> = Vec::new();
    let mut last_round = false;
    loop {
        // At shutdown, one more round takes what the kernel already completed into the accept
        // queue: those clients may have sent a HELLO and requests; closing the listener would
        // reset them. They are served like every connection at shutdown (a buffered HELLO gets
        // WELCOME and GOODBYE SHUTTING_DOWN).
        if shared.shutting_down() {
            // After a hand-over the successor accepts what is queued.
            if last_round || shared.handed_over() {
                break;
            }
            last_round = true;
            if shared.drain_deadline().is_some_and(|d| Instant::now() >= d) {
                // The drain is over (the blocking model reached the queue late): the clients
                // still queued never got a WELCOME, so closing the listener tells them that
                // nothing they sent was processed.
                break;
            }
        }
        let mut accepted = false;
        for l in &listeners {
            let r = match l {
                Bound::Tcp(l) => l.accept().map(|(s, a)| {
                    let _ = s.set_nodelay(true);
                    let refuse = admit(&shared, Peer::Tcp);
                    (StdStream::Tcp(s), a.to_string(), refuse)
                }),
                Bound::Unix(l, p, _) => l.accept().map(|(s, _)| {
                    let refuse = admit(&shared, Peer::Unix(s.as_fd()));
                    (StdStream::Unix(s), format!("unix:{}", p.display()), refuse)
                }),
            };
            match r {
                Ok((stream, peer, refuse)) => {
                    accepted = true;
                    if shared.config.model == Model::Blocking {
                        serve(stream, peer, refuse, &shared);
                    } else {
                        let conn_shared = shared.clone();
                        match std::thread::Builder::new()
                            .name("echowire-conn".into())
                            .spawn(move || serve(stream, peer, refuse, &conn_shared))
                        {
                            Ok(t) => threads.push(t),
                            Err(e) => {
                                tracing::warn!(error = %e, "cannot spawn a connection thread");
                                shared_dec(&shared);
                            }
                        }
                        threads.retain(|t| !t.is_finished());
                    }
                }
                Err(e) if is_transient(&e) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed; backing off");
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
        if last_round {
            if accepted {
                last_round = false; // keep taking until the queue is empty
            }
            continue;
        }
        if !accepted {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    for l in listeners {
        if let Bound::Unix(_, path, lock) = l {
            crate::listener::release_unix(&path, lock, shared.handed_over());
        }
    }
    for t in threads {
        let _ = t.join();
    }
}

fn shared_dec(shared: &Shared) {
    shared
        .counters
        .connections_open
        .fetch_sub(1, Ordering::Relaxed);
}

/// Serves one connection to the end (both simple models).
fn serve(
    mut stream: StdStream,
    peer: String,
    refuse: Option<(ErrorCode, String)>,
    shared: &Shared,
) {
    let now = Instant::now();
    let conn = shared.next_connection();
    tracing::debug!(conn, peer, "connection open");
    let mut session = ServerSession::new(shared.session_config.clone(), now);
    if let Some((code, msg)) = &refuse {
        session.refuse(*code, msg);
    }
    let (tx, rx) = unbounded();
    let mut jobs = Jobs::new();
    let mut eof = false;
    let mut drain_deadline: Option<Instant> = None;
    // The drain begins once what the socket already held at the shutdown has been read and
    // processed (spec §3.8, document 1.2: a frame received before the close is answered or
    // refused, never dropped; a HELLO from the accept queue gets its WELCOME first).
    let mut drain_started = false;
    // Reads before the drain starts, bounded: a client that never stops sending cannot hold it.
    let mut reads_before_drain = 0u32;
    let why = loop {
        let now = Instant::now();
        while let Ok((id, response)) = rx.try_recv() {
            service::complete(&mut session, &mut jobs, id, response, now);
        }
        if shared.aborting() {
            shared.counters.drain_resets.fetch_add(1, Ordering::Relaxed);
            stream.set_abortive();
            break "shutdown aborted";
        }
        if drain_deadline.is_none()
            && let Some(d) = shared.drain_deadline()
        {
            drain_deadline = Some(d);
        }
        if drain_started && drain_deadline.is_some_and(|d| now >= d) {
            // §3.8: past the drain timeout the close is abortive (one deadline for the whole
            // server, however late this connection was reached).
            shared.counters.drain_resets.fetch_add(1, Ordering::Relaxed);
            stream.set_abortive();
            break "drain timeout";
        }
        service::process(&mut session, &mut jobs, shared, now, |id| {
            let tx = tx.clone();
            Box::new(move |response| {
                let _ = tx.send((id, response));
            })
        });
        if session.pending_output() > 0 {
            // A short write timeout keeps a client that does not read from wedging this loop.
            let _ = stream.set_timeouts(Some(TICK), Some(TICK));
            match service::flush(&mut session, &mut stream, shared) {
                Ok(_) => {}
                Err(e) if is_transient(&e) => {}
                Err(e) => {
                    break if e.kind() == io::ErrorKind::BrokenPipe {
                        "peer gone"
                    } else {
                        "write error"
                    };
                }
            }
        }
        if session.is_finished() {
            if session.is_abortive() {
                if drain_deadline.is_some() {
                    shared.counters.drain_resets.fetch_add(1, Ordering::Relaxed);
                }
                stream.set_abortive();
                break "drain timeout";
            }
            // The lingering close never outlasts the server's drain.
            let linger_for = drain_deadline.map_or(shared.config.linger, |d| {
                shared
                    .config
                    .linger
                    .min(d.saturating_duration_since(Instant::now()))
            });
            linger(&mut stream, linger_for, eof);
            break "finished";
        }
        let wait = if !jobs.is_empty() || session.pending_output() > 0 {
            JOB_POLL
        } else {
            session.poll_timeout().map_or(TICK, |t| {
                t.saturating_duration_since(now)
                    .clamp(Duration::from_millis(1), TICK)
            })
        };
        let wait_for_worker = |session: &mut ServerSession, jobs: &mut Jobs| {
            // Nothing to read now: wait for a worker (or the next tick).
            if let Ok((id, response)) = rx.recv_timeout(wait) {
                service::complete(session, jobs, id, response, Instant::now());
            }
        };
        let reading_before_drain = drain_deadline.is_some() && !drain_started;
        if reading_before_drain && reads_before_drain >= 64 {
            session.start_drain(now);
            drain_started = true;
            continue;
        }
        if eof || !session.wants_read() {
            if reading_before_drain {
                session.start_drain(now);
                drain_started = true;
                continue;
            }
            wait_for_worker(&mut session, &mut jobs);
        } else {
            let wait = if reading_before_drain {
                Duration::from_millis(1)
            } else {
                wait
            };
            let _ = stream.set_timeouts(Some(wait), Some(TICK));
            // The session sizes the read and receives straight into its buffer.
            match session.read_with(|buf, max| stream.recv_into(buf, max)) {
                Ok(None) if reading_before_drain => {
                    session.start_drain(now);
                    drain_started = true;
                }
                Ok(None) => wait_for_worker(&mut session, &mut jobs),
                Ok(Some(0)) => eof = true, // the session took the end of the stream
                Ok(Some(n)) => {
                    reads_before_drain += u32::from(reading_before_drain);
                    shared
                        .counters
                        .bytes_in
                        .fetch_add(n as u64, Ordering::Relaxed);
                }
                Err(e) if is_transient(&e) => {
                    if reading_before_drain {
                        // The socket is empty: everything sent before the shutdown is in.
                        session.start_drain(now);
                        drain_started = true;
                    }
                }
                Err(_) => break "read error",
            }
        }
        if let Some(t) = session.poll_timeout()
            && Instant::now() >= t
        {
            session.handle_timeout(Instant::now());
        }
    };
    service::cancel_all(&jobs);
    shared.counters.merge_session(session.stats());
    shared_dec(shared);
    tracing::debug!(conn, peer, why, reason = ?session.close_reason(), "connection closed");
}

/// Lingering close (spec §3.10): FIN, then read and discard until EOF or `linger`.
fn linger(stream: &mut StdStream, linger: Duration, eof: bool) {
    let _ = stream.shutdown(Shutdown::Write);
    if eof {
        return;
    }
    let deadline = Instant::now() + linger;
    let mut sink = [0u8; 4096];
    while Instant::now() < deadline {
        let left = deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1));
        let _ = stream.set_timeouts(Some(left), None);
        match stream.read(&mut sink) {
            Ok(0) => return,
            Ok(_) => continue,
            Err(e) if is_transient(&e) => continue,
            Err(_) => return,
        }
    }
}
