//! One connection's turn ([`Reactor::drive`]): read once into its session (which sizes the
//! read), process what arrived, write what is queued, repeat while that makes progress; then
//! register for writability only while output is pending, hand empty buffers to the pool, and
//! begin the close when the session is finished. The lingering close (spec §3.10) reads and
//! discards until the peer's end of stream or the deadline.

use super::*;

pub(super) enum Phase {
    Active,
    /// Write side shut down; reading and discarding until EOF or the deadline.
    Lingering,
}

pub(super) struct Conn {
    pub(super) stream: MioStream,
    pub(super) generation: u64,
    pub(super) session: ServerSession,
    pub(super) jobs: Jobs,
    pub(super) phase: Phase,
    pub(super) eof: bool,
    /// The poller reported the peer's end of stream (or an error): read until `read` says so,
    /// even after a short read.
    pub(super) read_closed: bool,
    pub(super) writable: bool,
    pub(super) timer: Option<Tick>,
    /// Bytes this connection is charged against the memory budget.
    pub(super) charged: usize,
    /// Since when queued output has been waiting without a byte written (a non-reader).
    pub(super) stalled_since: Option<Tick>,
    /// Driven since the last sweep.
    pub(super) active: bool,
    /// In the reactor's list of connections holding buffers.
    pub(super) holding: bool,
}

impl Conn {
    /// Charges the budget with what this connection holds now: its input buffer's capacity,
    /// its queued output and its queued work.
    pub(super) fn recharge(&mut self, budget: &Budget) {
        let held = self.session.buffered_memory() + self.jobs.len() * JOB_CHARGE;
        budget.recharge(self.charged, held);
        self.charged = held;
    }
}

impl Reactor {
    /// Reads, processes and writes until nothing more can be done without new readiness.
    pub(super) fn drive(&mut self, key: usize) {
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
                let open = shared.counters.connections_open.load(Ordering::Relaxed) as usize;
                let flowing = conn.stalled_since.is_none() && queued == 0;
                if !shared
                    .counters
                    .memory
                    .may_read(conn.session.buffered_memory(), open, flowing)
                {
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

    pub(super) fn linger_read(&mut self, key: usize) {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An idle connection costs its slab entry and little else (BENCHMARKS.md: at most 512 bytes
    /// of RSS per idle connection). A field added here is paid 10,000 times over.
    #[test]
    pub(super) fn a_connection_stays_small() {
        let (conn, session) = (size_of::<Conn>(), size_of::<ServerSession>());
        println!("Conn {conn} bytes, ServerSession {session} bytes");
        assert!(conn <= 320, "Conn is {conn} bytes");
        // The session owns the receive buffer the connection held before (32 bytes moved from
        // Conn into ServerSession, Conn unchanged at 312), and the adaptive read window (2
        // octets, 8 with the alignment of the wire state that holds them: 240 -> 248).
        assert!(session <= 248, "ServerSession is {session} bytes");
    }
}
