//! Judged runs: a case whose last step is `judge` is not a script of expectations. The runner
//! writes its steps (through the same writer thread, splits and pauses as every case) while a
//! reader thread reads all along and logs each read with its time, except while a
//! `stop_reading` step holds it; the `judge` step then watches the connection to its end and
//! hands the whole wire log to the oracle ([`crate::oracle`]), which says whether any behaviour
//! the spec permits explains it. The oracle may answer "not yet" (a response still owed, a timer
//! that may still fire): the runner then keeps reading until that moment, within the step's
//! `max_ms`.

use std::io::Read;
use std::net::Shutdown;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::writer::{Cmd, Log, Writer, log_entry, log_note};
use super::{Dir, Failure, OracleRun, RunResult, RunSettings, fail};
use crate::oracle::observe::notes;
use crate::oracle::{self, Observation, Setup, Verdict};
use crate::step::{Judge, Step};
use crate::target::{Conn, Target};

/// How often the reader looks at its controls.
const TICK: Duration = Duration::from_millis(10);

/// What the step thread tells the reader, and what the reader reports.
#[derive(Default)]
struct Ctl {
    /// Do not read before this.
    hold_until: Mutex<Option<Instant>>,
    /// Stop reading and return.
    stop: AtomicBool,
    /// The server's side ended (FIN or reset).
    closed: AtomicBool,
    /// Milliseconds since the start when something last arrived.
    last_rx_ms: AtomicU64,
}

/// Runs a judged case on a new connection.
pub(super) fn run(target: &Target, steps: &[Step], settings: RunSettings) -> RunResult {
    let start = Instant::now();
    let started = std::time::SystemTime::now();
    let log: Log = Arc::new(Mutex::new(Vec::new()));
    let cut = settings.cut.to_string();
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
    let (wconn, rconn) = match (conn.try_clone(), conn.try_clone()) {
        (Ok(w), Ok(r)) => (w, r),
        (Err(e), _) | (_, Err(e)) => {
            return failed(
                local_addr,
                "a usable connection",
                format!("cannot clone the socket: {e}"),
            );
        }
    };
    let unix = matches!(conn, Conn::Unix(_));
    let peer_reset = Arc::new(AtomicBool::new(false));
    let mut writer = Writer::start(
        wconn,
        settings.cut.clone(),
        log.clone(),
        start,
        settings.timeout,
        peer_reset.clone(),
    );
    let ctl = Arc::new(Ctl::default());
    let mut reader = Some(spawn_reader(
        rconn,
        ctl.clone(),
        log.clone(),
        start,
        peer_reset,
    ));
    let mut run = Judged {
        target,
        settings: &settings,
        start,
        log: &log,
        ctl: &ctl,
        unix,
        oracle: None,
        background: Vec::new(),
    };
    let mut failure = None;
    for (i, step) in steps.iter().enumerate() {
        let r = match step {
            Step::Reset(_) => {
                // Every descriptor of the socket must close for the kernel to send RST: the
                // reader's first.
                writer.sync(Duration::from_millis(500).min(settings.timeout));
                stop_reader(&ctl, &mut reader);
                let _ = conn.set_linger_zero();
                log_note(
                    &log,
                    start,
                    Dir::ClientToServer,
                    0,
                    format!("{} (SO_LINGER 0, close)", notes::RESET),
                );
                writer.finish();
                break;
            }
            _ => run.step(i, step, &writer),
        };
        if let Err(f) = r {
            failure = Some(f);
            break;
        }
    }
    stop_reader(&ctl, &mut reader);
    let sent_bytes = writer.finish();
    // Background connections end on their own (each has its judge step); their failures are
    // the case's, unless the case signals the target: their oracle does not see the signal
    // (it is in this connection's log), so they are load then, and not judged.
    let signals = steps.iter().any(|s| matches!(s, Step::Signal(_)));
    for (i, h) in std::mem::take(&mut run.background) {
        let results = h.join().unwrap_or_default();
        if signals {
            continue;
        }
        for (k, r) in results.into_iter().enumerate() {
            if failure.is_none()
                && let Some(f) = r.failure
            {
                failure = Some(fail(
                    i,
                    format!(
                        "background connection {k}, its step {}: {}",
                        f.step, f.expected
                    ),
                    f.observed,
                ));
            }
        }
    }
    if failure.is_none() && run.oracle.is_none() {
        // The client reset the connection before the judge step: what the server sent until
        // then is judged as it stands.
        let i = steps.len().saturating_sub(1);
        if let Err(f) = run.verdict(i, true) {
            failure = Some(f);
        }
    }
    let _ = conn.shutdown(Shutdown::Both);
    let wire = log.lock().unwrap_or_else(|p| p.into_inner()).clone();
    RunResult {
        cut,
        local_addr,
        failure,
        wire,
        sent_bytes,
        oracle: run.oracle,
        started: Some(started),
        peer_addr,
    }
}

struct Judged<'a> {
    target: &'a Target,
    settings: &'a RunSettings,
    start: Instant,
    log: &'a Log,
    ctl: &'a Arc<Ctl>,
    unix: bool,
    oracle: Option<OracleRun>,
    /// Background connections (their step's index, their thread).
    background: Vec<(usize, JoinHandle<Vec<RunResult>>)>,
}

impl Judged<'_> {
    fn ms(&self, m: &crate::step::Millis) -> Duration {
        Duration::from_millis(m.eval(&self.settings.timeouts).unwrap_or(0))
    }

    fn step(&mut self, i: usize, step: &Step, writer: &Writer) -> Result<(), Failure> {
        match step {
            Step::Send(send) => {
                let limit = self
                    .settings
                    .server
                    .as_ref()
                    .map_or(echowire_codec::frame::MIN_MAX_FRAME_SIZE, |s| {
                        s.max_frame_size
                    });
                let bytes = send
                    .build(1, limit)
                    .map_err(|e| fail(i, "a buildable send", e))?;
                writer.send(Cmd::Data(bytes));
            }
            Step::Pause(w) => writer.send(Cmd::Pause(self.ms(&w.ms))),
            Step::HalfClose(_) => writer.send(Cmd::HalfClose),
            Step::Trickle(t) => writer.send(Cmd::Trickle(t.hex.0.clone(), self.ms(&t.interval_ms))),
            Step::StopReading(w) => {
                // Sends continue while the reader is held; the hold starts where the step is.
                writer.sync(self.settings.timeout);
                let d = self.ms(&w.ms);
                *self
                    .ctl
                    .hold_until
                    .lock()
                    .unwrap_or_else(|p| p.into_inner()) = Some(Instant::now() + d);
                log_note(
                    self.log,
                    self.start,
                    Dir::ServerToClient,
                    0,
                    format!("{} for {} ms)", notes::STOP_READING, d.as_millis()),
                );
            }
            Step::Signal(_) => {
                writer.sync(self.settings.timeout);
                log_note(
                    self.log,
                    self.start,
                    Dir::ClientToServer,
                    0,
                    format!("{}, graceful shutdown)", notes::SIGNAL),
                );
                self.target
                    .terminate()
                    .map_err(|e| fail(i, "the target signalled", e.to_string()))?;
            }
            Step::Parallel(p) => {
                let settings = self.settings;
                let target = self.target;
                let results: Vec<RunResult> = std::thread::scope(|s| {
                    let hs: Vec<_> = (0..p.connections)
                        .map(|_| s.spawn(|| super::run(target, &p.steps, settings.clone())))
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
            Step::Background(p) => {
                let target = self.target.peer();
                let settings = self.settings.clone();
                let p = p.clone();
                let h = std::thread::spawn(move || {
                    std::thread::scope(|s| {
                        let hs: Vec<_> = (0..p.connections)
                            .map(|_| s.spawn(|| super::run(&target, &p.steps, settings.clone())))
                            .collect();
                        hs.into_iter()
                            .filter_map(|h| h.join().ok())
                            .collect::<Vec<RunResult>>()
                    })
                });
                self.background.push((i, h));
            }
            Step::Judge(j) => {
                writer.sync(self.settings.timeout.max(Duration::from_secs(30)));
                return self.judge(i, j);
            }
            Step::Reset(_) => {}
            Step::Expect(_) | Step::Handshake(_) | Step::Flood(_) => {
                return Err(fail(
                    i,
                    "a step a judged case may have",
                    "expect, handshake and flood steps are not run in a judged case",
                ));
            }
        }
        Ok(())
    }

    fn setup(&self) -> Setup {
        let server = self.settings.server.as_ref();
        Setup {
            timeouts: self.settings.timeouts,
            slack_ms: self.settings.slack_ms,
            max_version: server.map_or(2, |s| s.version.min(2)),
            capabilities: server.map_or(echowire_codec::message::CAP_DEFINED, |s| s.capabilities),
            unix: self.unix,
        }
    }

    /// Watches the connection to its end (or `max_ms`), judging when it goes quiet.
    fn judge(&mut self, i: usize, j: &Judge) -> Result<(), Failure> {
        let quiet = self.ms(&j.quiet_ms);
        let max = self.start + self.ms(&j.max_ms);
        let mut wait_until = Instant::now() + quiet;
        loop {
            // Observe until the server closes, or it is quiet, or the time asked for is up.
            loop {
                let now = Instant::now();
                if self.ctl.closed.load(Ordering::Acquire) || now >= max {
                    break;
                }
                let last_rx =
                    self.start + Duration::from_millis(self.ctl.last_rx_ms.load(Ordering::Acquire));
                let quiet_since = last_rx.max(self.last_write());
                let held = self
                    .ctl
                    .hold_until
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .is_some();
                if now >= wait_until && now >= quiet_since + quiet && !held {
                    break;
                }
                std::thread::sleep(TICK);
            }
            let now = Instant::now();
            let final_look = self.ctl.closed.load(Ordering::Acquire) || now >= max;
            match self.verdict(i, final_look)? {
                None => return Ok(()),
                Some(until_ms) => {
                    let until = self.start + Duration::from_millis(until_ms);
                    wait_until = until.min(max).max(now + TICK);
                }
            }
        }
    }

    /// Judges the log as it stands: `Ok(None)` decided (passed or inconclusive), `Ok(Some(t))`
    /// not yet (look again at `t` ms), `Err` a divergence.
    fn verdict(&mut self, i: usize, final_look: bool) -> Result<Option<u64>, Failure> {
        let setup = self.setup();
        {
            let end_ms = self.start.elapsed().as_millis() as u64;
            let snapshot = self.log.lock().unwrap_or_else(|p| p.into_inner()).clone();
            let obs = Observation::from_log(&snapshot, end_ms, setup.slack_ms);
            match oracle::judge(&obs, &setup, final_look) {
                Verdict::Pass { nodes, cells } => {
                    self.oracle = Some(OracleRun {
                        nodes,
                        cells,
                        divergence: None,
                        inconclusive: false,
                    });
                    Ok(None)
                }
                Verdict::Inconclusive { nodes } => {
                    self.oracle = Some(OracleRun {
                        nodes,
                        cells: Vec::new(),
                        divergence: None,
                        inconclusive: true,
                    });
                    Ok(None)
                }
                Verdict::Fail(d) => {
                    let f = fail(
                        i,
                        format!("{} (rule: {})", d.expected, d.sentence()),
                        d.observed.clone(),
                    );
                    self.oracle = Some(OracleRun {
                        nodes: 0,
                        cells: Vec::new(),
                        divergence: Some(d),
                        inconclusive: false,
                    });
                    Err(f)
                }
                Verdict::Waiting { until_ms, .. } => Ok(Some(until_ms)),
            }
        }
    }

    fn last_write(&self) -> Instant {
        let log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        let ms = log
            .iter()
            .rev()
            .find(|e| e.dir == Dir::ClientToServer)
            .map_or(0, |e| e.at_ms);
        self.start + Duration::from_millis(ms)
    }
}

fn spawn_reader(
    mut conn: Conn,
    ctl: Arc<Ctl>,
    log: Log,
    start: Instant,
    peer_reset: Arc<AtomicBool>,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let _ = conn.set_read_timeout(Some(TICK));
        let mut buf = vec![0u8; 64 * 1024];
        let mut offset = 0u64;
        let closed = |ctl: &Ctl, offset: u64, note: String| {
            log_note(&log, start, Dir::ServerToClient, offset, note);
            ctl.closed.store(true, Ordering::Release);
        };
        loop {
            if ctl.stop.load(Ordering::Acquire) {
                return;
            }
            {
                let mut hold = ctl.hold_until.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(until) = *hold {
                    if Instant::now() < until {
                        drop(hold);
                        std::thread::sleep(TICK);
                        continue;
                    }
                    *hold = None;
                    log_note(
                        &log,
                        start,
                        Dir::ServerToClient,
                        offset,
                        notes::READING_AGAIN.into(),
                    );
                }
            }
            match conn.read(&mut buf) {
                Ok(0) if peer_reset.load(Ordering::Acquire) => {
                    return closed(
                        &ctl,
                        offset,
                        format!("{} (reported to a write)", notes::RESET),
                    );
                }
                Ok(0) => return closed(&ctl, offset, notes::FIN.into()),
                Ok(n) => {
                    log_entry(
                        &log,
                        start,
                        Dir::ServerToClient,
                        offset,
                        hex::encode(&buf[..n]),
                    );
                    offset += n as u64;
                    ctl.last_rx_ms
                        .store(start.elapsed().as_millis() as u64, Ordering::Release);
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock
                            | std::io::ErrorKind::TimedOut
                            | std::io::ErrorKind::Interrupted
                    ) => {}
                Err(e) => return closed(&ctl, offset, format!("{} ({e})", notes::RESET)),
            }
        }
    })
}

fn stop_reader(ctl: &Ctl, reader: &mut Option<JoinHandle<()>>) {
    ctl.stop.store(true, Ordering::Release);
    if let Some(h) = reader.take() {
        let _ = h.join();
    }
}
