//! Accepting: one thread waits on every listener and hands accepted sockets to the reactors
//! round-robin; with `--reuseport` each reactor accepts on its own listeners
//! ([`Reactor::accept_own`]). `EMFILE` pauses accepting instead of spinning on it.

use super::*;

/// `accept` failed for want of a descriptor (the process's or the system's).
pub(super) fn out_of_descriptors(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(code) if code == nix::libc::EMFILE || code == nix::libc::ENFILE)
}

/// Counts an `EMFILE`/`ENFILE` accept, logs it (rate-limited) and returns when to try again.
/// Accepting is paused rather than retried at once: the pending connection stays in the
/// backlog, and spinning on it would burn the reactor's core without freeing a descriptor.
pub(super) fn accept_backoff(shared: &Shared, e: &io::Error) -> Instant {
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

pub(super) enum Listener {
    Tcp(mio::net::TcpListener),
    Unix(
        mio::net::UnixListener,
        std::path::PathBuf,
        crate::listener::PathLock,
    ),
}

pub(super) struct Acceptor {
    pub(super) poll: Poll,
    pub(super) listeners: Vec<Listener>,
    pub(super) reactors: Vec<ReactorHandle>,
    pub(super) next: usize,
    pub(super) shared: Arc<Shared>,
}

impl Acceptor {
    pub(super) fn run(&mut self) -> io::Result<()> {
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
    pub(super) fn accept_all(&mut self, i: usize) -> Option<Instant> {
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

impl Reactor {
    /// `--reuseport`: accepts on this reactor's own listeners until they would block.
    pub(super) fn accept_own(&mut self) {
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
}
