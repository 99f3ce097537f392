//! Runs a case's steps over real connections and records the wire log.
//!
//! A writer thread owns the sending half: it applies the split strategy to each send, performs
//! half-closes, pauses and trickles, and never blocks the reader — so a case where the server stops
//! reading (backpressure) cannot deadlock the runner. The calling thread reads and matches
//! expectations, each with a deadline: no case can hang the runner.

use std::io::{Read, Write};
use std::net::Shutdown;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::{BufMut, BytesMut};
use echowire_codec::decoder::FrameDecoder;
use echowire_codec::frame::{FrameHeader, MessageType, PREFACE};
use echowire_codec::message::{self, DecodeContext, Message, Role};
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::SeedableRng;
use serde_json::{Value, json};

use crate::split::{Cut, random_chunks};
use crate::target::{Conn, Target};
use crate::verdict::{describe, eval, expand, matches};

/// Direction of a wire-log entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Dir {
    /// Client (runner) to server.
    #[serde(rename = "c2s")]
    ClientToServer,
    /// Server to client.
    #[serde(rename = "s2c")]
    ServerToClient,
}

/// One write or read.
#[derive(Clone, Debug, serde::Serialize)]
pub struct WireEntry {
    /// Which way.
    pub dir: Dir,
    /// Milliseconds since the connection opened.
    pub at_ms: u64,
    /// Stream offset of the first byte.
    pub offset: u64,
    /// The bytes, hex (or a note such as "FIN", "RST", "write error: ...").
    pub hex: String,
}

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
}

type Log = Arc<Mutex<Vec<WireEntry>>>;

enum Cmd {
    Data(Vec<u8>),
    HalfClose,
    Pause(Duration),
    Trickle(Vec<u8>, Duration),
    Sync(Sender<()>),
}

struct Writer {
    tx: Option<Sender<Cmd>>,
    thread: Option<JoinHandle<u64>>,
}

impl Writer {
    fn start(conn: Conn, cut: Cut, log: Log, start: Instant) -> Writer {
        let (tx, rx) = channel();
        let thread = std::thread::spawn(move || writer_loop(conn, cut, rx, log, start));
        Writer {
            tx: Some(tx),
            thread: Some(thread),
        }
    }

    fn send(&self, cmd: Cmd) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(cmd);
        }
    }

    /// Waits until everything queued was written (or failed).
    fn sync(&self, timeout: Duration) {
        let (tx, rx) = channel();
        self.send(Cmd::Sync(tx));
        let _ = rx.recv_timeout(timeout);
    }

    /// Stops the thread; returns the bytes written.
    fn finish(&mut self) -> u64 {
        self.tx.take();
        self.thread.take().and_then(|t| t.join().ok()).unwrap_or(0)
    }
}

fn log_entry(log: &Log, start: Instant, dir: Dir, offset: u64, hex: String) {
    let at_ms = start.elapsed().as_millis() as u64;
    log.lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(WireEntry {
            dir,
            at_ms,
            offset,
            hex,
        });
}

fn writer_loop(mut conn: Conn, cut: Cut, rx: Receiver<Cmd>, log: Log, start: Instant) -> u64 {
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
        match conn.write_all(chunk) {
            Ok(()) => {
                log_entry(
                    &log,
                    start,
                    Dir::ClientToServer,
                    *offset,
                    hex::encode(chunk),
                );
                *offset += chunk.len() as u64;
            }
            Err(e) => {
                log_entry(
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
                let sizes: Vec<usize> = match cut {
                    Cut::Whole | Cut::Coalesced => vec![data.len()],
                    Cut::Bytewise => vec![1; data.len()],
                    Cut::At(k) if offset < k && k < offset + data.len() as u64 => {
                        let first = (k - offset) as usize;
                        vec![first, data.len() - first]
                    }
                    Cut::At(_) => vec![data.len()],
                    Cut::Random(_) => random_chunks(&mut rng, data.len(), 32),
                    Cut::Delayed(_) => random_chunks(&mut rng, data.len(), (data.len() / 3).max(1)),
                };
                let mut at = 0;
                for (i, n) in sizes.iter().enumerate() {
                    if i > 0 && matches!(cut, Cut::Delayed(_) | Cut::At(_)) && pauses_left > 0 {
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
                log_entry(
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
        }
    }
    offset
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Closed {
    Clean,
    Reset,
}

enum Ev {
    Frame(Value),
    Closed(Closed),
    Invalid(String),
    Timeout,
}

impl Ev {
    fn describe(&self) -> String {
        match self {
            Ev::Frame(v) => format!("frame {}", describe(v)),
            Ev::Closed(Closed::Clean) => "end of stream (FIN)".into(),
            Ev::Closed(Closed::Reset) => "connection reset (RST)".into(),
            Ev::Invalid(e) => format!("invalid bytes from the server: {e}"),
            Ev::Timeout => "nothing before the deadline".into(),
        }
    }
}

/// Per-run settings.
#[derive(Clone, Copy, Debug)]
pub struct RunSettings {
    /// How bytes are cut.
    pub cut: Cut,
    /// Default deadline of each expectation.
    pub timeout: Duration,
    /// Whether the case allows coalescing.
    pub coalesce: bool,
    /// The timeouts the target declares: time expressions (`idle_timeout+1500`) use them.
    pub timeouts: crate::target::Timeouts,
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
    deferred: Vec<(usize, Value)>,
    finished: bool,
}

type StepResult = Result<(), Failure>;

fn fail(step: usize, expected: impl Into<String>, observed: impl Into<String>) -> Failure {
    Failure {
        step,
        expected: expected.into(),
        observed: observed.into(),
    }
}

/// Runs `steps` on a new connection to `target`.
pub fn run(target: &Target, steps: &[Value], settings: RunSettings) -> RunResult {
    let start = Instant::now();
    let log: Log = Arc::new(Mutex::new(Vec::new()));
    let conn = match target.connect() {
        Ok(c) => c,
        Err(e) => {
            return RunResult {
                cut: settings.cut.to_string(),
                local_addr: String::new(),
                failure: Some(fail(0, "a connection", format!("connect failed: {e}"))),
                wire: Vec::new(),
                sent_bytes: 0,
            };
        }
    };
    let local_addr = conn.local_addr();
    let wconn = match conn.try_clone() {
        Ok(c) => c,
        Err(e) => {
            return RunResult {
                cut: settings.cut.to_string(),
                local_addr,
                failure: Some(fail(
                    0,
                    "a usable connection",
                    format!("cannot clone the socket: {e}"),
                )),
                wire: Vec::new(),
                sent_bytes: 0,
            };
        }
    };
    let mut ex = Exec {
        writer: Writer::start(wconn, settings.cut, log.clone(), start),
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
        cut: settings.cut.to_string(),
        local_addr,
        failure,
        wire,
        sent_bytes,
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

    /// Writes what coalescing held back and checks the expectations deferred behind it.
    fn flush_and_check(&mut self) -> StepResult {
        if !self.pending.is_empty() {
            let bytes = std::mem::take(&mut self.pending);
            self.writer.send(Cmd::Data(bytes));
        }
        // Spec §3.6.1: responses to frames that went out in one write may come in any order, so
        // consecutive deferred response expectations are matched as one unordered group.
        let deferred = std::mem::take(&mut self.deferred);
        let mut k = 0;
        while k < deferred.len() {
            let (i, e) = &deferred[k];
            let mut group: Vec<Vec<Value>> = Vec::new();
            while let Some((_, e)) = deferred.get(k + group.len()) {
                match response_patterns(e) {
                    Some(p) if e.get("within_ms").is_none() => group.push(p),
                    _ => break,
                }
            }
            if group.len() > 1 {
                k += group.len();
                let deadline = self.deadline(e);
                self.expect_unordered(*i, group.concat(), deadline)?;
                continue;
            }
            self.expect(*i, e)?;
            k += 1;
        }
        Ok(())
    }

    fn step(&mut self, i: usize, step: &Value, target: &Target) -> StepResult {
        let obj = step
            .as_object()
            .ok_or_else(|| fail(i, "a step object", step.to_string()))?;
        if let Some(send) = obj.get("send") {
            if self.coalescing() && send_needs_limit(send) && self.limit.is_none() {
                self.flush_and_check()?;
            }
            let bytes = self.build_send(i, send)?;
            self.send_bytes(bytes);
            return Ok(());
        }
        if let Some(e) = obj.get("expect") {
            // "Nothing for N ms" observes time: everything before it must be on the wire first.
            if self.coalescing() && e.get("nothing").is_none() {
                self.deferred.push((i, e.clone()));
                return Ok(());
            }
            self.flush_and_check()?;
            return self.expect(i, e);
        }
        if let Some(h) = obj.get("handshake") {
            let min = h["min_version"].as_u64().unwrap_or(1) as u8;
            let max = h["max_version"].as_u64().unwrap_or(u64::from(min)) as u8;
            let mut bytes = PREFACE.to_vec();
            let hello = Message::Hello(message::Hello {
                min_version: min,
                max_version: max,
                max_frame_size: h["max_frame_size"].as_u64().unwrap_or(16 << 20) as u32,
                capabilities: h["capabilities"].as_u64().unwrap_or(0) as u32,
                agent: "echowire-conformance".into(),
            });
            hello
                .encode(1, 0, u32::MAX, &mut bytes)
                .map_err(|e| fail(i, "an encodable HELLO", e.to_string()))?;
            self.send_bytes(bytes);
            let mut pattern = json!({"type": "WELCOME", "request_id": 0});
            if let Some(v) = h.get("expect_version") {
                pattern["body"] = json!({"version": v});
            }
            if let Some(extra) = h.get("expect") {
                merge(&mut pattern, extra);
            }
            let e = json!({"frame": pattern});
            if self.coalescing() && min == max {
                self.assumed_version = Some(min);
                self.deferred.push((i, e));
                return Ok(());
            }
            self.flush_and_check()?;
            return self.expect(i, &e);
        }
        // Every other step acts on the connection in order: coalescing stops here.
        self.flush_and_check()?;
        if obj.contains_key("half_close") {
            self.writer.send(Cmd::HalfClose);
        } else if let Some(p) = obj.get("pause") {
            self.writer
                .send(Cmd::Pause(Duration::from_millis(self.ms(&p["ms"], 0))));
        } else if let Some(t) = obj.get("trickle") {
            let bytes = hex::decode(t["hex"].as_str().unwrap_or(""))
                .map_err(|e| fail(i, "hex", e.to_string()))?;
            self.writer.send(Cmd::Trickle(
                bytes,
                Duration::from_millis(self.ms(&t["interval_ms"], 100)),
            ));
        } else if let Some(s) = obj.get("stop_reading") {
            std::thread::sleep(Duration::from_millis(self.ms(&s["ms"], 0)));
        } else if obj.contains_key("reset") {
            self.writer.sync(self.settings.timeout);
            self.writer.finish();
            let _ = self.conn.set_linger_zero();
            log_entry(
                &self.log,
                self.start,
                Dir::ClientToServer,
                0,
                "RST (SO_LINGER 0, close)".into(),
            );
            let _ = self.conn.shutdown(Shutdown::Read);
            self.finished = true;
            // Dropping `self.conn` with the run closes the socket: a reset.
        } else if let Some(p) = obj.get("parallel") {
            let n = p["connections"].as_u64().unwrap_or(1) as usize;
            let steps: Vec<Value> = p["steps"].as_array().cloned().unwrap_or_default();
            let settings = self.settings;
            let results: Vec<RunResult> = std::thread::scope(|s| {
                let hs: Vec<_> = (0..n)
                    .map(|_| s.spawn(|| run(target, &steps, settings)))
                    .collect();
                hs.into_iter()
                    .map(|h| h.join().expect("parallel connection thread"))
                    .collect()
            });
            for (k, r) in results.into_iter().enumerate() {
                if let Some(f) = r.failure {
                    return Err(fail(
                        i,
                        format!("connection {k} of {n}, its step {}: {}", f.step, f.expected),
                        f.observed,
                    ));
                }
            }
        } else {
            return Err(fail(i, "a known step", step.to_string()));
        }
        Ok(())
    }

    fn build_send(&mut self, i: usize, send: &Value) -> Result<Vec<u8>, Failure> {
        let limit = self
            .limit
            .unwrap_or(echowire_codec::frame::MIN_MAX_FRAME_SIZE);
        if let Some(h) = send.get("hex") {
            return hex::decode(h.as_str().unwrap_or(""))
                .map_err(|e| fail(i, "valid hex", e.to_string()));
        }
        if let Some(f) = send.get("fill") {
            return Ok(vec![
                f["byte"].as_u64().unwrap_or(0) as u8;
                f["len"].as_u64().unwrap_or(0) as usize
            ]);
        }
        if let Some(l) = send.get("length_prefix") {
            let n = l
                .as_str()
                .and_then(|s| eval(s, limit))
                .or(l.as_u64())
                .ok_or_else(|| fail(i, "a length", l.to_string()))?;
            return Ok((n.min(u64::from(u32::MAX)) as u32).to_be_bytes().to_vec());
        }
        if let Some(e) = send.get("echo_fill") {
            let length = e["length"]
                .as_str()
                .and_then(|s| eval(s, limit))
                .unwrap_or(12) as usize;
            let id = e["request_id"].as_u64().unwrap_or(1) as u32;
            let payload = length.saturating_sub(12);
            let mut out = BytesMut::with_capacity(length + 4);
            FrameHeader::new(
                self.default_version(),
                MessageType::Echo,
                Default::default(),
                id,
                payload + 4,
            )
            .encode(&mut out);
            out.put_u32(payload as u32);
            out.put_bytes(b'a', payload);
            return Ok(out.to_vec());
        }
        if let Some(f) = send.get("frame") {
            return self.build_frame(i, f, limit);
        }
        Err(fail(i, "a known send item", send.to_string()))
    }

    fn build_frame(&self, i: usize, f: &Value, limit: u32) -> Result<Vec<u8>, Failure> {
        let type_name = f["type"].as_str().unwrap_or("");
        let ty = MessageType::from_name(type_name)
            .ok_or_else(|| fail(i, "a message type", type_name))?;
        let version = f
            .get("version")
            .and_then(Value::as_u64)
            .map_or(self.default_version(), |v| v as u8);
        let body: Vec<u8> = if let Some(h) = f.get("body_hex") {
            hex::decode(h.as_str().unwrap_or(""))
                .map_err(|e| fail(i, "valid hex", e.to_string()))?
        } else {
            let body = expand(f.get("body").unwrap_or(&json!({})), limit);
            let text = json!({"type": type_name, "body": body}).to_string();
            let m: Message<'_> = serde_json::from_str(&text)
                .map_err(|e| fail(i, "a valid symbolic body", format!("{e}: {text}")))?;
            let mut b = Vec::new();
            m.encode_body(version, &mut b)
                .map_err(|e| fail(i, "an encodable body", e.to_string()))?;
            b
        };
        let flags = f["flags"].as_u64().unwrap_or(0) as u16;
        let id = f["request_id"].as_u64().unwrap_or(0) as u32;
        let mut header =
            FrameHeader::new(version, ty, echowire_codec::Flags(flags), id, body.len());
        if let Some(l) = f.get("length") {
            header.length = l
                .as_str()
                .and_then(|s| eval(s, limit))
                .or(l.as_u64())
                .unwrap_or(0) as u32;
        }
        let mut out = Vec::with_capacity(12 + body.len());
        header.encode(&mut out);
        out.extend_from_slice(&body);
        Ok(out)
    }

    fn deadline(&self, e: &Value) -> Instant {
        let d = match e.get("within_ms") {
            Some(v) => Duration::from_millis(self.ms(v, 0)).max(self.settings.timeout),
            None => self.settings.timeout,
        };
        Instant::now() + d
    }

    /// A duration in milliseconds: a number, or a time expression over the target's declared
    /// timeouts (see [`eval_ms`]). Cases that use an undeclared timeout are skipped before they
    /// run (their `requires`), so `default` is only reached for a missing key.
    fn ms(&self, v: &Value, default: u64) -> u64 {
        match v {
            Value::Number(n) => n.as_u64().unwrap_or(default),
            Value::String(s) => eval_ms(s, &self.settings.timeouts).unwrap_or(default),
            _ => default,
        }
    }

    fn expect(&mut self, i: usize, e: &Value) -> StepResult {
        let limit = self.limit.unwrap_or(u32::MAX);
        if let Some(p) = e.get("frame") {
            let p = expand(p, limit);
            let ev = self.next_event(self.deadline(e));
            return match &ev {
                Ev::Frame(v) if matches(&p, v) => Ok(()),
                _ => Err(fail(i, format!("frame {}", describe(&p)), ev.describe())),
            };
        }
        if let Some(Value::Array(alts)) = e.get("one_of") {
            let alts: Vec<Value> = alts.iter().map(|a| expand(a, limit)).collect();
            let ev = self.next_event(self.deadline(e));
            return match &ev {
                Ev::Frame(v) if alts.iter().any(|a| matches(a, v)) => Ok(()),
                _ => Err(fail(
                    i,
                    format!("one of {}", describe(&Value::Array(alts))),
                    ev.describe(),
                )),
            };
        }
        if let Some(Value::Array(pats)) = e.get("unordered") {
            return self.expect_unordered(i, pats.clone(), self.deadline(e));
        }
        if let Some(how) = e.get("closed").and_then(Value::as_str) {
            let ev = self.next_event(self.deadline(e));
            // Over a Unix-domain socket there is no reset: an abortive close is an end of stream.
            let reset_visible = self.conn.has_reset();
            return match (&ev, how) {
                (Ev::Closed(Closed::Clean), "clean" | "any")
                | (Ev::Closed(Closed::Reset), "any" | "reset") => Ok(()),
                (Ev::Closed(Closed::Clean), "reset") if !reset_visible => Ok(()),
                _ => Err(fail(
                    i,
                    match how {
                        "clean" => "a clean end of stream (FIN, no RST)",
                        "reset" => "an abortive close (RST) with no frame before it",
                        _ => "the connection closed (FIN or RST)",
                    },
                    ev.describe(),
                )),
            };
        }
        if let Some(n) = e.get("nothing") {
            let ms = self.ms(&n["ms"], 300);
            let ev = self.next_event(Instant::now() + Duration::from_millis(ms));
            return match ev {
                Ev::Timeout => Ok(()),
                other => Err(fail(i, format!("nothing for {ms} ms"), other.describe())),
            };
        }
        Err(fail(i, "a known expectation", e.to_string()))
    }

    /// The next `pats.len()` frames match `pats` in any order.
    fn expect_unordered(&mut self, i: usize, pats: Vec<Value>, deadline: Instant) -> StepResult {
        let limit = self.limit.unwrap_or(u32::MAX);
        let mut left: Vec<Value> = pats.iter().map(|a| expand(a, limit)).collect();
        let total = left.len();
        while !left.is_empty() {
            let ev = self.next_event(deadline);
            let found = match &ev {
                Ev::Frame(v) => left.iter().position(|p| matches(p, v)),
                _ => None,
            };
            let Some(k) = found else {
                let expected = format!(
                    "{} more of {total} frames in any order, e.g. {}",
                    left.len(),
                    describe(&left[0])
                );
                return Err(fail(i, expected, ev.describe()));
            };
            left.swap_remove(k);
        }
        Ok(())
    }

    fn next_event(&mut self, deadline: Instant) -> Ev {
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            match self.dec.decode(&mut self.buf) {
                Ok(Some(frame)) => return self.frame_event(frame),
                Ok(None) => {}
                Err(e) => return Ev::Invalid(e.to_string()),
            }
            if let Some(c) = self.closed {
                if !self.buf.is_empty() {
                    return Ev::Invalid(format!(
                        "stream ended inside a frame ({} bytes buffered)",
                        self.buf.len()
                    ));
                }
                return Ev::Closed(c);
            }
            let now = Instant::now();
            if now >= deadline {
                return Ev::Timeout;
            }
            let _ = self
                .conn
                .set_read_timeout(Some((deadline - now).max(Duration::from_millis(1))));
            match self.conn.read(&mut chunk) {
                Ok(0) => {
                    log_entry(
                        &self.log,
                        self.start,
                        Dir::ServerToClient,
                        self.rx_offset,
                        "FIN".into(),
                    );
                    self.closed = Some(Closed::Clean);
                }
                Ok(n) => {
                    log_entry(
                        &self.log,
                        self.start,
                        Dir::ServerToClient,
                        self.rx_offset,
                        hex::encode(&chunk[..n]),
                    );
                    self.rx_offset += n as u64;
                    self.buf.extend_from_slice(&chunk[..n]);
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    log_entry(
                        &self.log,
                        self.start,
                        Dir::ServerToClient,
                        self.rx_offset,
                        format!("RST ({e})"),
                    );
                    self.closed = Some(Closed::Reset);
                }
            }
        }
    }

    fn frame_event(&mut self, frame: echowire_codec::Frame) -> Ev {
        let ctx = DecodeContext {
            receiver: Role::Client,
            version: self.version,
            capabilities: self.caps,
        };
        match message::decode(&frame, &ctx) {
            Ok(m) => {
                if let Message::Welcome(w) = &m {
                    self.version = Some(w.version);
                    self.limit = Some(w.max_frame_size);
                    self.caps = w.capabilities;
                }
                Ev::Frame(frame_json(&frame, &m))
            }
            Err(e) => Ev::Invalid(format!("undecodable frame: {e}")),
        }
    }
}

/// The JSON form of a received frame (as in the vectors, plus `length`).
pub fn frame_json(frame: &echowire_codec::Frame, m: &Message<'_>) -> Value {
    let tagged = serde_json::to_value(m).unwrap_or(Value::Null);
    json!({
        "version": frame.header.version,
        "type": tagged["type"],
        "flags": frame.header.flags.0,
        "request_id": frame.header.request_id,
        "length": frame.header.length,
        "body": tagged["body"],
    })
}

fn send_needs_limit(send: &Value) -> bool {
    send.to_string().contains("\"limit")
}

fn merge(into: &mut Value, extra: &Value) {
    match (into, extra) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (slot, v) => *slot = v.clone(),
    }
}

/// What a target offers, from a handshake offering every version and capability.
#[derive(Clone, Debug, serde::Serialize)]
pub struct TargetInfo {
    /// The version it picked from 1..=255.
    pub version: u8,
    /// Capabilities it accepted from 0xFFFFFFFF.
    pub capabilities: u32,
    /// Its max_frame_size.
    pub max_frame_size: u32,
    /// Its agent string.
    pub agent: String,
}

/// Why the capability probe failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProbeError {
    /// Nothing accepts connections there: one clear error, no case is run.
    Unreachable(String),
    /// It accepts connections but its handshake is broken: the cases still run (as for a
    /// version-1 target without capabilities) so the report shows what fails.
    Handshake(String),
}

/// Handshakes with the target to learn what it supports.
pub fn probe(target: &Target, timeout: Duration) -> Result<TargetInfo, ProbeError> {
    let conn = target.connect().map_err(|e| {
        ProbeError::Unreachable(format!("cannot connect to {}: {e}", target.address()))
    })?;
    probe_handshake(conn, target, timeout).map_err(ProbeError::Handshake)
}

fn probe_handshake(
    mut conn: Conn,
    target: &Target,
    timeout: Duration,
) -> Result<TargetInfo, String> {
    let mut out = PREFACE.to_vec();
    Message::Hello(message::Hello {
        min_version: 1,
        max_version: 255,
        max_frame_size: 16 << 20,
        capabilities: u32::MAX,
        agent: "echowire-conformance probe".into(),
    })
    .encode(1, 0, u32::MAX, &mut out)
    .map_err(|e| e.to_string())?;
    conn.write_all(&out)
        .map_err(|e| format!("cannot write to {}: {e}", target.address()))?;
    conn.set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    let mut dec = FrameDecoder::new(u32::MAX);
    let mut buf = BytesMut::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(f) = dec
            .decode(&mut buf)
            .map_err(|e| format!("the target does not speak Echowire: {e}"))?
        {
            let ctx = DecodeContext {
                receiver: Role::Client,
                version: None,
                capabilities: 0,
            };
            return match message::decode(&f, &ctx) {
                Ok(Message::Welcome(w)) => {
                    let _ = conn.shutdown(Shutdown::Write);
                    Ok(TargetInfo {
                        version: w.version,
                        capabilities: w.capabilities,
                        max_frame_size: w.max_frame_size,
                        agent: w.agent.into_owned(),
                    })
                }
                Ok(other) => Err(format!("the target answered HELLO with {other:?}")),
                Err(e) => Err(format!("the target does not speak Echowire: {e}")),
            };
        }
        match conn.read(&mut chunk) {
            Ok(0) => return Err("the target closed the connection during the handshake".into()),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) => return Err(format!("no WELCOME from {}: {e}", target.address())),
        }
    }
}

/// The liveness probe run after each case: a fresh connection, handshake, one ECHO.
pub fn alive(target: &Target, timeout: Duration) -> Result<(), String> {
    let steps = vec![
        json!({"handshake": {"min_version": 1, "max_version": 1, "max_frame_size": 1 << 20, "capabilities": 0}}),
        json!({"send": {"frame": {"type": "ECHO", "request_id": 1, "body": {"payload": "6c697665"}}}}),
        json!({"expect": {"frame": {"type": "ECHO_REPLY", "request_id": 1, "body": {"payload": "6c697665"}}}}),
    ];
    let mut last = String::new();
    for _ in 0..3 {
        let r = run(
            target,
            &steps,
            RunSettings {
                cut: Cut::Whole,
                timeout,
                coalesce: true,
                timeouts: target.timeouts,
            },
        );
        match r.failure {
            None => return Ok(()),
            Some(f) => {
                last = format!(
                    "{}: expected {}, observed {}",
                    f.step, f.expected, f.observed
                )
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Err(last)
}

/// Evaluates a time expression: `N`, `NAME`, `NAME+N`, `NAME-N` or `NAME/N`, where `NAME` is
/// `handshake_timeout`, `idle_timeout` or `drain_timeout` in milliseconds as the target declared
/// it. `None` for a malformed expression or an undeclared timeout.
pub fn eval_ms(expr: &str, timeouts: &crate::target::Timeouts) -> Option<u64> {
    let expr = expr.trim();
    if let Ok(n) = expr.parse::<u64>() {
        return Some(n);
    }
    let split = expr.find(['+', '-', '/']).unwrap_or(expr.len());
    let (name, rest) = expr.split_at(split);
    let base = timeouts.millis(name.trim())?;
    if rest.is_empty() {
        return Some(base);
    }
    let (op, n) = rest.split_at(1);
    let n: u64 = n.trim().parse().ok()?;
    match op {
        "+" => base.checked_add(n),
        "-" => base.checked_sub(n),
        "/" => base.checked_div(n),
        _ => None,
    }
}

/// The frame patterns of an expectation that only names responses (spec §3.6.1 rule 2: they may
/// come in any order): a `frame` or `unordered` expectation whose every pattern has a non-zero
/// request ID, or is an ERROR with ID 0 whose code does not end the connection (a request error
/// sent with ID 0, or TRUNCATED_FRAME). `None` for anything else.
fn response_patterns(e: &Value) -> Option<Vec<Value>> {
    let pats = if let Some(p) = e.get("frame") {
        vec![p.clone()]
    } else {
        e.get("unordered")?.as_array()?.clone()
    };
    pats.iter().all(is_response_pattern).then_some(pats)
}

fn is_response_pattern(p: &Value) -> bool {
    match p.get("request_id").and_then(Value::as_u64) {
        Some(0) => {
            p.get("type").and_then(Value::as_str) == Some("ERROR")
                && p.pointer("/body/code")
                    .and_then(Value::as_str)
                    .and_then(echowire_codec::ErrorCode::from_name)
                    .is_some_and(|c| !c.is_connection_scope())
        }
        Some(_) => true,
        None => false,
    }
}
