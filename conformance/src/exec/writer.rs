//! The writer thread: it owns the sending half of a connection, applies the split strategy to
//! each send, performs half-closes, pauses and trickles, and logs every write. It never blocks the
//! reader, so a case where the server stops reading (backpressure) cannot deadlock the runner.

use std::io::Write;
use std::net::Shutdown;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::SeedableRng;

use super::{Dir, WireEntry};
use crate::split::Cut;
use crate::target::Conn;

pub(super) type Log = Arc<Mutex<Vec<WireEntry>>>;

pub(super) enum Cmd {
    Data(Vec<u8>),
    HalfClose,
    Pause(Duration),
    Trickle(Vec<u8>, Duration),
    Sync(Sender<()>),
    /// Write the flood's frames until the server stops reading; report on the sender.
    Flood(super::flood::Plan, Sender<super::flood::Outcome>),
}

pub(super) struct Writer {
    tx: Option<Sender<Cmd>>,
    thread: Option<JoinHandle<u64>>,
}

impl Writer {
    /// Starts the writer thread. Every write has a deadline of `deadline`: a server that stops
    /// reading for longer makes the write fail (logged as a write error) instead of hanging the
    /// run — backpressure is allowed, a stall without end is not.
    pub(super) fn start(
        conn: Conn,
        cut: Cut,
        log: Log,
        start: Instant,
        deadline: Duration,
        reset: Arc<AtomicBool>,
    ) -> Writer {
        let _ = conn.set_write_timeout(Some(deadline));
        let (tx, rx) = channel();
        let thread =
            std::thread::spawn(move || writer_loop(conn, cut, rx, log, start, deadline, &reset));
        Writer {
            tx: Some(tx),
            thread: Some(thread),
        }
    }

    pub(super) fn send(&self, cmd: Cmd) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(cmd);
        }
    }

    /// Waits until everything queued was written (or failed); `false` if it still was not
    /// after `timeout` (the server is not reading).
    pub(super) fn sync(&self, timeout: Duration) -> bool {
        let (tx, rx) = channel();
        self.send(Cmd::Sync(tx));
        rx.recv_timeout(timeout).is_ok()
    }

    /// Stops the thread; returns the bytes written.
    pub(super) fn finish(&mut self) -> u64 {
        self.tx.take();
        self.thread.take().and_then(|t| t.join().ok()).unwrap_or(0)
    }
}

/// Logs octets written or read (hex).
pub(super) fn log_entry(log: &Log, start: Instant, dir: Dir, offset: u64, hex: String) {
    push(log, start, dir, offset, hex, None, None);
}

/// Logs octets written by a write that began at `began` (see [`WireEntry::at_us`]).
fn log_write(log: &Log, start: Instant, began: Instant, offset: u64, hex: String) {
    push(
        log,
        start,
        Dir::ClientToServer,
        offset,
        hex,
        None,
        Some(began),
    );
}

/// Logs an event that is not octets: an end of stream, a reset, a write error, a signal.
pub(super) fn log_note(log: &Log, start: Instant, dir: Dir, offset: u64, note: String) {
    push(log, start, dir, offset, String::new(), Some(note), None);
}

fn push(
    log: &Log,
    start: Instant,
    dir: Dir,
    offset: u64,
    hex: String,
    note: Option<String>,
    began: Option<Instant>,
) {
    let now = start.elapsed();
    let at_ms = now.as_millis() as u64;
    let at_us = began
        .map_or(now, |b| b.saturating_duration_since(start))
        .as_micros() as u64;
    log.lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(WireEntry {
            dir,
            at_ms,
            offset,
            hex,
            note,
            at_us,
        });
}

fn writer_loop(
    mut conn: Conn,
    cut: Cut,
    rx: Receiver<Cmd>,
    log: Log,
    start: Instant,
    deadline: Duration,
    reset: &AtomicBool,
) -> u64 {
    let seed = match cut {
        Cut::Random(s) | Cut::Delayed(s) => s,
        _ => 0,
    };
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut offset = 0u64;
    let mut broken = false;
    // `delayed` and `boundaries` pause between chunks; a budget keeps long cases (1000 pipelined
    // requests) within the expectations' deadlines: the first pauses are what matter.
    let mut pauses_left = 200u32;
    let write = |conn: &mut Conn, chunk: &[u8], offset: &mut u64, broken: &mut bool| {
        if *broken || chunk.is_empty() {
            return;
        }
        let began = Instant::now();
        match conn.write_all(chunk) {
            Ok(()) => {
                log_write(&log, start, began, *offset, hex::encode(chunk));
                *offset += chunk.len() as u64;
            }
            Err(e) => {
                if e.kind() == std::io::ErrorKind::ConnectionReset {
                    // The socket reports a reset once: to whichever call meets it first. The
                    // reader, which then sees only the end of the stream, must know.
                    reset.store(true, Ordering::Release);
                }
                log_note(
                    &log,
                    start,
                    Dir::ClientToServer,
                    *offset,
                    format!("write error: {e}"),
                );
                *broken = true;
            }
        }
    };
    for cmd in rx {
        match cmd {
            Cmd::Data(data) => {
                let sizes = cut.chunk_sizes(&mut rng, offset, data.len());
                let mut at = 0;
                for (i, n) in sizes.iter().enumerate() {
                    if i > 0 && cut.pauses() && pauses_left > 0 {
                        pauses_left -= 1;
                        // A pause long enough for the server to read the previous chunk alone.
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    write(&mut conn, &data[at..at + n], &mut offset, &mut broken);
                    at += n;
                }
            }
            Cmd::HalfClose => {
                let _ = conn.shutdown(Shutdown::Write);
                log_note(
                    &log,
                    start,
                    Dir::ClientToServer,
                    offset,
                    "FIN (half-close)".into(),
                );
            }
            Cmd::Pause(d) => std::thread::sleep(d),
            Cmd::Trickle(data, interval) => {
                for b in data {
                    write(&mut conn, &[b], &mut offset, &mut broken);
                    if broken {
                        break;
                    }
                    std::thread::sleep(interval);
                }
            }
            Cmd::Sync(done) => {
                let _ = done.send(());
            }
            Cmd::Flood(plan, done) => {
                if !broken {
                    let at = offset;
                    let (written, ok) =
                        super::flood::write(&mut conn, &plan, deadline, &done, reset);
                    offset += written;
                    let what = if ok {
                        format!("(flood: {written} octets of ECHO frames, not shown)")
                    } else {
                        format!("(flood: {written} octets of ECHO frames, then a write error)")
                    };
                    log_note(&log, start, Dir::ClientToServer, at, what);
                    broken = !ok;
                }
            }
        }
    }
    offset
}
