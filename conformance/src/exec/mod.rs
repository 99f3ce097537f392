//! Runs a case's typed steps over one connection and records the wire log.
//!
//! The work is split by job:
//!
//! * `writer`: a thread owns the sending half — it applies the split strategy to each send,
//!   performs half-closes, pauses and trickles, and never blocks the reader, so a case where the
//!   server stops reading (backpressure) cannot deadlock the runner;
//! * `reader`: the calling thread reads frames, ends of stream and resets, each wait bounded by
//!   a deadline, so no case can hang the runner;
//! * `expect`: matches expectations against what was read, including the orders spec §3.6.1
//!   permits;
//! * `probe`: what a target offers, and whether it still serves after a case;
//! * this module: the step loop, sends, coalescing.
//!
//! Splits are planned by [`crate::split`]; cases are typed and validated by [`crate::step`].

use std::net::Shutdown;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use echowire_codec::decoder::FrameDecoder;
use echowire_codec::frame::PREFACE;
use echowire_codec::message::{self, Message};

use crate::split::Cut;
use crate::step::{Expect, ExpectKind, Millis, Step};
use crate::target::{Conn, Target, Timeouts};

mod expect;
mod flood;
mod judged;
mod probe;
mod reader;
mod writer;

pub use crate::wire::{Dir, WireEntry, frame_json};
pub use probe::{ProbeError, TargetInfo, alive, probe, settle};
use reader::Closed;
use writer::{Cmd, Log, Writer, log_note};

/// Why a run failed.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Failure {
    /// Step index (0-based) that failed; for parallel steps, "connection N" is in `expected`.
    pub step: usize,
    /// What the case accepts.
    pub expected: String,
    /// What happened.
    pub observed: String,
}

/// One run of a case under one cut.
#[derive(Clone, Debug, serde::Serialize)]
pub struct RunResult {
    /// The cut (strategy and seed).
    pub cut: String,
    /// Local address of the connection.
    pub local_addr: String,
    /// `None` if every step passed.
    pub failure: Option<Failure>,
    /// Both directions, in order.
    pub wire: Vec<WireEntry>,
    /// Bytes the runner sent (for `boundaries`).
    #[serde(skip)]
    pub sent_bytes: u64,
    /// What the oracle said, for a judged case.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oracle: Option<OracleRun>,
    /// When the wire log's clock started (its times are milliseconds since then): the
    /// timestamps of a capture ([`crate::capture`]).
    #[serde(skip)]
    pub started: Option<std::time::SystemTime>,
    /// The server's end of the connection (`ip:port`, or a Unix socket's description).
    #[serde(skip)]
    pub peer_addr: String,
}

/// The oracle's judgement of a judged run ([`crate::oracle`]).
#[derive(Clone, Debug, serde::Serialize)]
pub struct OracleRun {
    /// Model states visited.
    pub nodes: usize,
    /// The coverage cells of the path that explained the run.
    pub cells: Vec<crate::oracle::Cell>,
    /// Where the observation left every permitted path.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub divergence: Option<crate::oracle::Divergence>,
    /// The search's budget ran out (neither a pass nor a failure).
    pub inconclusive: bool,
}

/// Per-run settings.
#[derive(Clone, Debug)]
pub struct RunSettings {
    /// How bytes are cut.
    pub cut: Cut,
    /// Default deadline of each expectation.
    pub timeout: Duration,
    /// Whether the case allows coalescing.
    pub coalesce: bool,
    /// The timeouts the target declares: time expressions (`idle_timeout+1500`) use them.
    pub timeouts: Timeouts,
    /// What the target's capability probe found (versions, capabilities, limit), for judged
    /// cases.
    pub server: Option<TargetInfo>,
    /// Timing tolerance of judged cases, in milliseconds ([`crate::oracle::Setup::slack_ms`]).
    pub slack_ms: u64,
}

struct Exec {
    conn: Conn,
    writer: Writer,
    log: Log,
    start: Instant,
    dec: FrameDecoder,
    buf: BytesMut,
    rx_offset: u64,
    closed: Option<Closed>,
    version: Option<u8>,
    /// Version requests are written in before WELCOME is read (coalesced handshake).
    assumed_version: Option<u8>,
    limit: Option<u32>,
    caps: u32,
    settings: RunSettings,
    pending: Vec<u8>,
    deferred: Vec<(usize, Expect)>,
    finished: bool,
    /// Set when the writer met the server's reset (a socket reports it to one call only).
    peer_reset: Arc<std::sync::atomic::AtomicBool>,
    /// Received octets are not logged one by one (a flood's replies; summarized instead).
    quiet: bool,
}

type StepResult = Result<(), Failure>;

fn fail(step: usize, expected: impl Into<String>, observed: impl Into<String>) -> Failure {
    Failure {
        step,
        expected: expected.into(),
        observed: observed.into(),
    }
}

impl RunResult {
    /// A run that failed before its first step (no connection, no target).
    pub fn failed_to_start(cut: Cut, expected: &str, observed: String) -> RunResult {
        RunResult {
            cut: cut.to_string(),
            local_addr: String::new(),
            failure: Some(fail(0, expected, observed)),
            wire: Vec::new(),
            sent_bytes: 0,
            oracle: None,
            started: None,
            peer_addr: String::new(),
        }
    }
}

/// Runs `steps` on a new connection to `target`.
pub fn run(target: &Target, steps: &[Step], settings: RunSettings) -> RunResult {
    if Step::judged(steps) {
        return judged::run(target, steps, settings);
    }
    let cut = settings.cut.to_string();
    let start = Instant::now();
    let started = std::time::SystemTime::now();
    let log: Log = Arc::new(Mutex::new(Vec::new()));
    let failed = |local_addr: String, expected: &str, observed: String| RunResult {
        local_addr,
        ..RunResult::failed_to_start(settings.cut.clone(), expected, observed)
    };
    let conn = match target.connect() {
        Ok(c) => c,
        Err(e) => {
            return failed(
                String::new(),
                "a connection",
                format!("connect failed: {e}"),
            );
        }
    };
    let local_addr = conn.local_addr();
    let peer_addr = conn.peer_addr();
    let wconn = match conn.try_clone() {
        Ok(c) => c,
        Err(e) => {
            let why = format!("cannot clone the socket: {e}");
            return failed(local_addr, "a usable connection", why);
        }
    };
    let peer_reset = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut ex = Exec {
        writer: Writer::start(
            wconn,
            settings.cut.clone(),
            log.clone(),
            start,
            settings.timeout,
            peer_reset.clone(),
        ),
        peer_reset,
        conn,
        log: log.clone(),
        start,
        dec: FrameDecoder::new(u32::MAX),
        buf: BytesMut::new(),
        rx_offset: 0,
        closed: None,
        version: None,
        assumed_version: None,
        limit: None,
        caps: 0,
        settings,
        pending: Vec::new(),
        deferred: Vec::new(),
        finished: false,
        quiet: false,
    };
    let mut failure = None;
    for (i, step) in steps.iter().enumerate() {
        if ex.finished {
            break;
        }
        if let Err(f) = ex.step(i, step, target) {
            failure = Some(f);
            break;
        }
    }
    if failure.is_none() {
        failure = ex.flush_and_check().err();
    }
    let sent_bytes = ex.writer.finish();
    let wire = log.lock().unwrap_or_else(|p| p.into_inner()).clone();
    RunResult {
        cut,
        local_addr,
        failure,
        wire,
        sent_bytes,
        oracle: None,
        started: Some(started),
        peer_addr,
    }
}

impl Exec {
    fn coalescing(&self) -> bool {
        self.settings.cut == Cut::Coalesced && self.settings.coalesce
    }

    fn default_version(&self) -> u8 {
        self.version.or(self.assumed_version).unwrap_or(1)
    }

    fn send_bytes(&mut self, bytes: Vec<u8>) {
        if self.coalescing() {
            self.pending.extend_from_slice(&bytes);
        } else {
            self.writer.send(Cmd::Data(bytes));
        }
    }

    /// A duration of a step. Cases that use an undeclared timeout are Skipped before they run
    /// (their `requires`), and the forms were validated at load, so the fallback of 0 is never
    /// reached by a valid case.
    fn ms(&self, m: &Millis) -> Duration {
        Duration::from_millis(m.eval(&self.settings.timeouts).unwrap_or(0))
    }

    fn step(&mut self, i: usize, step: &Step, target: &Target) -> StepResult {
        // Sends and expectations may be coalesced; every other step acts on the connection in
        // order, so what coalescing held back goes out (and is checked) first.
        if !matches!(step, Step::Send(_) | Step::Expect(_) | Step::Handshake(_)) {
            self.flush_and_check()?;
        }
        match step {
            Step::Send(send) => {
                if self.coalescing() && send.needs_limit() && self.limit.is_none() {
                    self.flush_and_check()?;
                }
                let limit = self
                    .limit
                    .unwrap_or(echowire_codec::frame::MIN_MAX_FRAME_SIZE);
                let bytes = send
                    .build(self.default_version(), limit)
                    .map_err(|e| fail(i, "a buildable send", e))?;
                self.send_bytes(bytes);
            }
            Step::Expect(e) => {
                // "Nothing for N ms" observes time: everything before it must be on the wire.
                if self.coalescing() && !matches!(e.kind, ExpectKind::Nothing(_)) {
                    self.deferred.push((i, e.clone()));
                    return Ok(());
                }
                self.flush_and_check()?;
                return self.expect(i, e);
            }
            Step::Handshake(h) => {
                let (min, max) = (h.min_version, h.max_version());
                let mut bytes = PREFACE.to_vec();
                let hello = Message::<&[u8]>::Hello(message::Hello {
                    min_version: min,
                    max_version: max,
                    max_frame_size: h.max_frame_size,
                    capabilities: h.capabilities,
                    agent: "echowire-conformance".into(),
                });
                hello
                    .encode(1, 0, u32::MAX, &mut bytes)
                    .map_err(|e| fail(i, "an encodable HELLO", e.to_string()))?;
                self.send_bytes(bytes);
                let e = Expect::frame(h.welcome_pattern());
                if self.coalescing() && min == max {
                    self.assumed_version = Some(min);
                    self.deferred.push((i, e));
                    return Ok(());
                }
                self.flush_and_check()?;
                return self.expect(i, &e);
            }
            Step::HalfClose(_) => self.writer.send(Cmd::HalfClose),
            Step::Pause(w) => self.writer.send(Cmd::Pause(self.ms(&w.ms))),
            Step::Trickle(t) => self
                .writer
                .send(Cmd::Trickle(t.hex.0.clone(), self.ms(&t.interval_ms))),
            Step::StopReading(w) => std::thread::sleep(self.ms(&w.ms)),
            Step::Flood(f) => return self.flood(i, f),
            Step::Judge(_) | Step::Background(_) => {
                // Only in a judged case, which `judged` runs.
                return Err(fail(
                    i,
                    "a judged case",
                    "judge is run by judged cases only",
                ));
            }
            Step::Reset(_) => {
                // What was sent goes out first, but a reset may come at any point: a server
                // that stops reading (backpressure) must not hold the runner. If the writer is
                // still stuck after a moment, shutting the socket down releases it.
                let synced = self
                    .writer
                    .sync(Duration::from_millis(500).min(self.settings.timeout));
                let _ = self.conn.set_linger_zero();
                if !synced {
                    let _ = self.conn.shutdown(Shutdown::Write);
                }
                self.writer.finish();
                log_note(
                    &self.log,
                    self.start,
                    Dir::ClientToServer,
                    0,
                    if synced {
                        "RST (SO_LINGER 0, close)".into()
                    } else {
                        "RST (SO_LINGER 0, close; the server had stopped reading)".into()
                    },
                );
                let _ = self.conn.shutdown(Shutdown::Read);
                self.finished = true;
                // Dropping `self.conn` with the run closes the socket: a reset.
            }
            Step::Signal(sig) => {
                // What was sent goes out first, so the signal finds it read (or in flight).
                self.writer.sync(self.settings.timeout);
                let crate::step::Signal::Terminate = sig;
                log_note(
                    &self.log,
                    self.start,
                    Dir::ClientToServer,
                    0,
                    "(to the target: SIGTERM, graceful shutdown)".into(),
                );
                target
                    .terminate()
                    .map_err(|e| fail(i, "the target signalled", e.to_string()))?;
            }
            Step::Parallel(p) => {
                let settings = &self.settings;
                let results: Vec<RunResult> = std::thread::scope(|s| {
                    let hs: Vec<_> = (0..p.connections)
                        .map(|_| s.spawn(|| run(target, &p.steps, settings.clone())))
                        .collect();
                    hs.into_iter()
                        .map(|h| h.join().expect("parallel connection thread"))
                        .collect()
                });
                for (k, r) in results.into_iter().enumerate() {
                    if let Some(f) = r.failure {
                        let n = p.connections;
                        return Err(fail(
                            i,
                            format!("connection {k} of {n}, its step {}: {}", f.step, f.expected),
                            f.observed,
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

pub use crate::step::eval_ms;
