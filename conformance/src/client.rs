//! Client conformance: the runner plays the server. It starts the client under test as a driver
//! program (`spec/conformance/CLIENT-DRIVER.md`: commands as JSON lines on its standard input,
//! events as JSON lines on its standard output), accepts the client's connection on a loopback
//! listener, and replays the case's server bytes — cut by the split strategies exactly as the
//! server suite cuts the client's — while it checks what the client writes and what it tells
//! its caller.
//!
//! A case's steps (`spec/conformance/client/*.json`):
//!
//! * `{"driver": COMMAND}`: one command to the driver (`connect` gets the listener's `address`);
//! * `{"accept": {"hello": PATTERN}}`: accept the connection, read the preface and HELLO;
//! * `{"send": SEND}`: server bytes, as the server cases' `send` (a frame, hex, a length
//!   prefix); a string `"$tag"` anywhere in it is the request ID the client chose for that tag;
//! * `{"client_frame": {"match": PATTERN, "bind": TAG}}`: the next frame from the client;
//!   `bind` remembers its request ID;
//! * `{"client_closed": "any"|"clean"}`: the client closes its connection (after any frames
//!   listed before it);
//! * `{"event": PATTERN}`: the driver's next event; `{"no_event": MS}`: none for that long;
//! * `{"close": "fin"|"rst"}`: the runner closes the connection;
//! * `{"pause": MS}`; `{"stop_reading": MS}`: the runner reads nothing for that long.
//! * `{"held_or_refused": {"tag": T, "ms": MS}}`: a request the client may not send yet (spec
//!   9.1: past `max_outstanding`) is either held (no frame for MS) or refused to its caller (no
//!   frame for MS, and a `refused` event for T by MS after that). If refused, every later step that names
//!   T (its frame, a send with `$T`, an event for T) is skipped.
//!
//! Each run starts a fresh driver process and a fresh listener, so runs are independent.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use echowire_codec::decoder::FrameDecoder;
use echowire_codec::frame::PREFACE;
use echowire_codec::message::{self, DecodeContext, Role};
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::SeedableRng;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::case::{Case, Level};
use crate::exec::{Dir, Failure, RunResult, WireEntry};
use crate::split::Cut;
use crate::step::Send;
use crate::verdict::{Outcome, describe, matches};
use crate::{CaseResult, Event, Options, Report, TargetReport};

include!(concat!(env!("OUT_DIR"), "/client_cases.rs"));

/// One client case.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientCase {
    /// Stable ID, `SECTION-name`.
    pub id: String,
    /// The spec section.
    pub section: String,
    /// Requirement level.
    pub level: Level,
    /// One line.
    pub title: String,
    /// What is expected and why.
    pub description: String,
    /// The sentences of the spec the case tests.
    #[serde(default)]
    pub spec: Vec<crate::spec::SpecRef>,
    /// The steps.
    pub steps: Vec<CStep>,
    /// Runs under `whole` only (timeouts).
    #[serde(default)]
    pub timing_sensitive: bool,
}

/// A client case's step.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum CStep {
    /// A command to the driver.
    Driver(Value),
    /// Accept the client's connection and read its preface and HELLO.
    Accept(Accept),
    /// Server bytes (`$tag` strings are replaced by bound request IDs).
    Send(Value),
    /// The next frame from the client.
    ClientFrame(ClientFrame),
    /// The client closes the connection.
    ClientClosed(String),
    /// The driver's next event.
    Event(Value),
    /// No driver event for this many milliseconds.
    NoEvent(u64),
    /// The runner closes the connection: `fin` or `rst`.
    Close(String),
    /// Wait.
    Pause(u64),
    /// Read nothing from the client for this many milliseconds.
    StopReading(u64),
    /// No frame from the client for this many milliseconds.
    NoClientFrame(u64),
    /// These tags were bound to distinct request IDs.
    Distinct(Vec<String>),
    /// The request `tag` is held back or refused (spec 9.1).
    HeldOrRefused(HeldOrRefused),
}

/// `{"held_or_refused": {"tag": T, "ms": MS}}`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeldOrRefused {
    /// The request's tag.
    pub tag: String,
    /// How long no frame may come.
    pub ms: u64,
}

impl CStep {
    /// Whether the step names request `tag` (its frame, a send with `$tag`, an event for it).
    fn names(&self, tag: &str) -> bool {
        let dollar = format!("${tag}");
        let mentions = |v: &Value| v.to_string().contains(&format!("\"{dollar}\""));
        match self {
            CStep::ClientFrame(cf) => cf.bind.as_deref() == Some(tag) || mentions(&cf.pattern),
            CStep::Send(v) => mentions(v),
            CStep::Event(p) => p["tag"].as_str() == Some(tag),
            CStep::Driver(cmd) => cmd["tag"].as_str() == Some(tag),
            _ => false,
        }
    }
}

/// `{"accept": {"hello": PATTERN}}`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Accept {
    /// What the HELLO must match.
    #[serde(default)]
    pub hello: Option<Value>,
}

/// `{"client_frame": {"match": PATTERN, "bind": TAG}}`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientFrame {
    /// What the frame must match.
    #[serde(rename = "match")]
    pub pattern: Value,
    /// Remember its request ID under this tag.
    #[serde(default)]
    pub bind: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    format: String,
    format_version: u32,
    #[serde(default, rename = "generated_by")]
    _generated_by: Option<String>,
    cases: Vec<ClientCase>,
}

/// Parses client case files.
pub fn parse(files: &[(&str, &str)]) -> Result<Vec<ClientCase>, String> {
    let mut all = Vec::new();
    for (name, text) in files {
        let f: File = serde_json::from_str(text).map_err(|e| format!("{name}: {e}"))?;
        if f.format != "echowire-client-conformance" || f.format_version != 1 {
            return Err(format!(
                "{name}: unsupported format {} v{}",
                f.format, f.format_version
            ));
        }
        for c in &f.cases {
            for s in &c.steps {
                if let CStep::Send(v) = s {
                    // Valid once the tags are bound: check with every tag as ID 1.
                    serde_json::from_value::<Send>(bind(v, &HashMap::new(), 1))
                        .map_err(|e| format!("{name}: case {}: send: {e}", c.id))?;
                }
            }
        }
        all.extend(f.cases);
    }
    let mut ids = std::collections::HashSet::new();
    for c in &all {
        if !ids.insert(c.id.clone()) {
            return Err(format!("duplicate client case ID {}", c.id));
        }
    }
    all.sort_by(|a, b| {
        crate::case::section_key(&a.section)
            .cmp(&crate::case::section_key(&b.section))
            .then(a.id.cmp(&b.id))
    });
    Ok(all)
}

/// The embedded client cases.
pub fn builtin() -> Vec<ClientCase> {
    parse(CLIENT_CASE_FILES).expect("the embedded client case files are valid (checked by tests)")
}

impl ClientCase {
    /// The case as the report writers see it.
    pub fn as_case(&self) -> Case {
        Case {
            id: self.id.clone(),
            section: self.section.clone(),
            level: self.level,
            title: self.title.clone(),
            description: self.description.clone(),
            spec: self.spec.clone(),
            steps: Vec::new(),
            requires: Vec::new(),
            timing_sensitive: self.timing_sensitive,
            profile: Default::default(),
            coalesce: false,
            finding: None,
            file: String::new(),
        }
    }
}

/// Replaces every string `"$tag"` with the bound ID (`default` for unbound tags).
fn bind(v: &Value, ids: &HashMap<String, u32>, default: u32) -> Value {
    match v {
        Value::String(s) if s.starts_with('$') => {
            Value::from(ids.get(&s[1..]).copied().unwrap_or(default))
        }
        Value::Array(a) => Value::Array(a.iter().map(|x| bind(x, ids, default)).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| (k.clone(), bind(x, ids, default)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The driver process of one run.
struct Driver {
    child: Child,
    stdin: std::process::ChildStdin,
    events: Receiver<Value>,
    stderr: Arc<Mutex<String>>,
}

impl Driver {
    fn start(command: &str) -> std::io::Result<Driver> {
        let mut child = crate::children::own_group(
            Command::new("/bin/sh")
                .arg("-c")
                .arg(command)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped()),
        )
        .spawn()?;
        crate::children::register(child.id());
        let stdin = child
            .stdin
            .take()
            .ok_or_else(|| std::io::Error::other("no stdin"))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| std::io::Error::other("no stdout"))?;
        let stderr_pipe = child.stderr.take();
        let (tx, events) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line.trim().is_empty() {
                    continue;
                }
                let v = serde_json::from_str(&line)
                    .unwrap_or_else(|_| json!({"event": "not-json", "line": line}));
                if tx.send(v).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        if let Some(mut pipe) = stderr_pipe {
            let keep = stderr.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = pipe.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    let mut s = keep.lock().unwrap_or_else(|p| p.into_inner());
                    if s.len() < 16 * 1024 {
                        s.push_str(&String::from_utf8_lossy(&buf[..n]));
                    }
                }
            });
        }
        Ok(Driver {
            child,
            stdin,
            events,
            stderr,
        })
    }

    fn command(&mut self, v: &Value) -> std::io::Result<()> {
        writeln!(self.stdin, "{v}")?;
        self.stdin.flush()
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "{}", json!({"cmd": "exit"}));
        let deadline = Instant::now() + Duration::from_millis(500);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        // The driver's group: a shell's children and whatever the driver started.
        let pid = self.child.id();
        let _ = crate::children::signal_group(pid, nix::sys::signal::Signal::SIGKILL);
        let _ = self.child.wait();
        crate::children::forget(pid);
    }
}

/// One run's state.
struct Run<'a> {
    opts: &'a Options,
    cut: Cut,
    rng: ChaCha8Rng,
    listener: TcpListener,
    driver: Driver,
    conn: Option<TcpStream>,
    start: Instant,
    wire: Vec<WireEntry>,
    tx: u64,
    rx: u64,
    buf: BytesMut,
    dec: FrameDecoder,
    ids: HashMap<String, u32>,
    version: u8,
    client_closed: Option<&'static str>,
    read_pause_until: Option<Instant>,
    /// The client's address, once it connected.
    peer: String,
    /// Tags of requests the client refused (`held_or_refused`): their later steps are skipped.
    refused: Vec<String>,
}

type StepResult = Result<(), Failure>;

fn fail(step: usize, expected: impl Into<String>, observed: impl Into<String>) -> Failure {
    Failure {
        step,
        expected: expected.into(),
        observed: observed.into(),
    }
}

/// Runs one client case once under `cut` with a fresh driver started from `command`.
pub fn run_once(command: &str, case: &ClientCase, cut: Cut, opts: &Options) -> RunResult {
    let failed = |observed: String| RunResult {
        cut: cut.to_string(),
        local_addr: String::new(),
        failure: Some(fail(0, "a driver and a listener", observed)),
        wire: Vec::new(),
        oracle: None,
        sent_bytes: 0,
        started: None,
        peer_addr: String::new(),
    };
    let listener = match TcpListener::bind("127.0.0.1:0") {
        Ok(l) => l,
        Err(e) => return failed(format!("cannot listen on 127.0.0.1: {e}")),
    };
    let driver = match Driver::start(command) {
        Ok(d) => d,
        Err(e) => return failed(format!("cannot start the driver: {e}")),
    };
    let seed = match cut {
        Cut::Random(s) | Cut::Delayed(s) => s,
        _ => 0,
    };
    // The listener's address is the server's end of a capture ([`crate::capture`]).
    let server_addr = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let started = std::time::SystemTime::now();
    let mut run = Run {
        opts,
        cut: cut.clone(),
        rng: ChaCha8Rng::seed_from_u64(seed),
        listener,
        driver,
        conn: None,
        start: Instant::now(),
        wire: Vec::new(),
        tx: 0,
        rx: 0,
        buf: BytesMut::new(),
        dec: FrameDecoder::new(16 << 20),
        ids: HashMap::new(),
        version: 1,
        client_closed: None,
        read_pause_until: None,
        peer: String::new(),
        refused: Vec::new(),
    };
    let mut failure = None;
    let mut i = 0;
    while i < case.steps.len() {
        if run.refused.iter().any(|t| case.steps[i].names(t.as_str())) {
            i += 1; // a step of a request the client refused (held_or_refused)
            continue;
        }
        // Consecutive `event` steps are one group matched in any order: a client delivers
        // responses to different requests independently (each caller awaits its own).
        let group: Vec<&Value> = case.steps[i..]
            .iter()
            .map_while(|s| match s {
                CStep::Event(p) => Some(p),
                _ => None,
            })
            .filter(|p| {
                !run.refused
                    .iter()
                    .any(|t| p["tag"].as_str() == Some(t.as_str()))
            })
            .collect();
        let r = if group.len() > 1 {
            let n = group.len();
            let r = run.events(i, &group);
            i += n;
            r
        } else {
            let r = run.step(i, &case.steps[i]);
            i += 1;
            r
        };
        if let Err(f) = r {
            failure = Some(f);
            break;
        }
    }
    if let Some(f) = &mut failure {
        let err = run
            .driver
            .stderr
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default();
        if !err.trim().is_empty() {
            f.observed.push_str(&format!(
                " (the driver's standard error: {})",
                crate::verdict::cut(err.trim(), 400)
            ));
        }
    }
    let local_addr = std::mem::take(&mut run.peer);
    RunResult {
        cut: cut.to_string(),
        local_addr,
        failure,
        sent_bytes: run.tx,
        wire: std::mem::take(&mut run.wire),
        oracle: None,
        started: Some(started),
        peer_addr: server_addr,
    }
}

impl Run<'_> {
    fn log(&mut self, dir: Dir, offset: u64, hex: String, note: Option<String>) {
        // One thread reads and writes: the log is in causal order as it is.
        let now = self.start.elapsed();
        self.wire.push(WireEntry {
            dir,
            at_ms: now.as_millis() as u64,
            offset,
            hex,
            note,
            at_us: now.as_micros() as u64,
        });
    }

    fn timeout(&self) -> Duration {
        self.opts.timeout
    }

    fn step(&mut self, i: usize, step: &CStep) -> StepResult {
        match step {
            CStep::Driver(cmd) => {
                let mut cmd = cmd.clone();
                if cmd["cmd"] == "connect"
                    && let Value::Object(o) = &mut cmd
                {
                    let addr = self
                        .listener
                        .local_addr()
                        .map(|a| a.to_string())
                        .unwrap_or_default();
                    o.insert("address".into(), Value::String(addr));
                }
                self.driver
                    .command(&cmd)
                    .map_err(|e| fail(i, format!("the driver to take {cmd}"), e.to_string()))
            }
            CStep::Accept(a) => self.accept(i, a),
            CStep::Send(v) => {
                let send: Send = serde_json::from_value(bind(v, &self.ids, 0))
                    .map_err(|e| fail(i, "a valid send step", e.to_string()))?;
                let bytes = send
                    .build(self.version, 1 << 24)
                    .map_err(|e| fail(i, "a buildable send", e))?;
                self.write(&bytes);
                Ok(())
            }
            CStep::ClientFrame(cf) => {
                let deadline = Instant::now() + self.timeout();
                let pattern = bind(&cf.pattern, &self.ids, 0);
                match self.next_frame(deadline) {
                    Ok(Some(v)) if matches(&pattern, &v) => {
                        if let Some(tag) = &cf.bind {
                            let id = v["request_id"].as_u64().unwrap_or(0) as u32;
                            self.ids.insert(tag.clone(), id);
                        }
                        Ok(())
                    }
                    Ok(Some(v)) => Err(fail(
                        i,
                        format!("from the client: frame {}", describe(&pattern)),
                        format!("frame {}", describe(&v)),
                    )),
                    Ok(None) => Err(fail(
                        i,
                        format!("from the client: frame {}", describe(&pattern)),
                        self.closed_or_nothing(),
                    )),
                    Err(e) => Err(fail(
                        i,
                        format!("from the client: frame {}", describe(&pattern)),
                        e,
                    )),
                }
            }
            CStep::ClientClosed(how) => {
                let deadline = Instant::now() + self.timeout();
                match self.next_frame(deadline) {
                    Ok(None) if self.client_closed.is_some() => {
                        let got = self.client_closed.unwrap_or("FIN");
                        if how == "clean" && got != "FIN" {
                            return Err(fail(i, "the client to close cleanly (FIN)", got));
                        }
                        Ok(())
                    }
                    Ok(None) => Err(fail(
                        i,
                        "the client to close the connection",
                        "it stayed open until the deadline",
                    )),
                    Ok(Some(v)) => Err(fail(
                        i,
                        "the client to close the connection",
                        format!("frame {}", describe(&v)),
                    )),
                    Err(e) => Err(fail(i, "the client to close the connection", e)),
                }
            }
            CStep::Event(p) => self.events(i, &[p]),
            CStep::NoEvent(ms) => {
                match self.next_event(Instant::now() + Duration::from_millis(*ms)) {
                    None => Ok(()),
                    Some(ev) => Err(fail(
                        i,
                        format!("no event from the driver for {ms} ms"),
                        format!("it reported {}", describe(&ev)),
                    )),
                }
            }
            CStep::Close(how) => {
                if let Some(c) = &self.conn {
                    if how == "rst" {
                        let _ = socket2::SockRef::from(c).set_linger(Some(Duration::ZERO));
                        self.log(
                            Dir::ServerToClient,
                            self.tx,
                            String::new(),
                            Some("RST".into()),
                        );
                        self.conn = None;
                    } else {
                        let _ = c.shutdown(Shutdown::Write);
                        self.log(
                            Dir::ServerToClient,
                            self.tx,
                            String::new(),
                            Some("FIN".into()),
                        );
                    }
                }
                Ok(())
            }
            CStep::Pause(ms) => {
                std::thread::sleep(Duration::from_millis(*ms));
                Ok(())
            }
            CStep::NoClientFrame(ms) => {
                match self.next_frame(Instant::now() + Duration::from_millis(*ms)) {
                    Ok(None) => Ok(()),
                    Ok(Some(v)) => Err(fail(
                        i,
                        format!("no frame from the client for {ms} ms"),
                        format!("frame {}", describe(&v)),
                    )),
                    Err(e) => Err(fail(i, format!("no frame from the client for {ms} ms"), e)),
                }
            }
            CStep::Distinct(tags) => {
                let ids: Vec<Option<u32>> = tags.iter().map(|t| self.ids.get(t).copied()).collect();
                let mut seen = std::collections::HashSet::new();
                if ids
                    .iter()
                    .all(|id| id.is_some_and(|id| id != 0 && seen.insert(id)))
                {
                    Ok(())
                } else {
                    Err(fail(
                        i,
                        format!("distinct non-zero request IDs for {tags:?}"),
                        format!("{ids:?}"),
                    ))
                }
            }
            CStep::HeldOrRefused(h) => {
                let until = Instant::now() + Duration::from_millis(h.ms);
                let what = format!(
                    "request {:?} held back (no frame for {} ms) or refused to its caller \
                     (a refused event), spec 9.1",
                    h.tag, h.ms
                );
                // The frame first, for the whole period: a client that writes the request at
                // once fails whether or not it also reports something. (Waiting for the event
                // first used up the period, and a frame already in the socket was never read.)
                match self.next_frame(until) {
                    Ok(None) => {}
                    Ok(Some(v)) => return Err(fail(i, what, format!("frame {}", describe(&v)))),
                    Err(e) => return Err(fail(i, what, e)),
                }
                // Then a refusal, reported within as long again.
                let until = Instant::now() + Duration::from_millis(h.ms);
                if let Some(ev) = self.next_event(until) {
                    if ev["event"] == "refused" && ev["tag"].as_str() == Some(h.tag.as_str()) {
                        self.refused.push(h.tag.clone());
                    } else {
                        return Err(fail(i, what, format!("it reported {}", describe(&ev))));
                    }
                }
                Ok(())
            }
            CStep::StopReading(ms) => {
                self.read_pause_until = Some(Instant::now() + Duration::from_millis(*ms));
                std::thread::sleep(Duration::from_millis(*ms));
                Ok(())
            }
        }
    }

    /// The driver's next events match `group`, in any order. A `lost` or `closed` event no
    /// pattern asks for is passed over (they follow a failure the patterns already check).
    fn events(&mut self, i: usize, group: &[&Value]) -> StepResult {
        let mut left: Vec<&Value> = group.to_vec();
        let deadline = Instant::now() + self.timeout();
        let expected = || format!("the driver to report {}", left_text(group));
        while !left.is_empty() {
            let Some(ev) = self.next_event(deadline) else {
                let rest: Vec<String> = left.iter().map(|p| describe(p)).collect();
                return Err(fail(
                    i,
                    expected(),
                    format!(
                        "no event before the deadline for {} (the client neither delivered nor failed)",
                        rest.join(", ")
                    ),
                ));
            };
            if let Some(k) = left.iter().position(|p| matches(p, &ev)) {
                left.remove(k);
                continue;
            }
            let kind = ev["event"].as_str().unwrap_or("");
            let asked = group.iter().any(|p| p["event"].as_str() == Some(kind));
            if matches!(kind, "lost" | "closed") && !asked {
                continue;
            }
            return Err(fail(
                i,
                expected(),
                format!("it reported {}", describe(&ev)),
            ));
        }
        Ok(())
    }

    fn closed_or_nothing(&self) -> String {
        match self.client_closed {
            Some(how) => format!("the client closed the connection ({how})"),
            None if !self.buf.is_empty() => format!(
                "no whole frame before the deadline; what arrived is {}",
                crate::wire::partial(&self.buf)
            ),
            None => "nothing before the deadline".into(),
        }
    }

    fn accept(&mut self, i: usize, a: &Accept) -> StepResult {
        let deadline = Instant::now() + self.timeout();
        let _ = self.listener.set_nonblocking(true);
        let conn = loop {
            match self.listener.accept() {
                Ok((c, _)) => break c,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if let Ok(Some(status)) = self.driver.child.try_wait() {
                        return Err(fail(
                            i,
                            "the client to connect",
                            format!("the driver exited ({status}) without connecting"),
                        ));
                    }
                    if Instant::now() >= deadline {
                        return Err(fail(
                            i,
                            "the client to connect",
                            "no connection before the deadline",
                        ));
                    }
                    std::thread::sleep(Duration::from_millis(2));
                }
                Err(e) => return Err(fail(i, "the client to connect", e.to_string())),
            }
        };
        let _ = conn.set_nonblocking(false);
        let _ = conn.set_nodelay(true);
        self.peer = conn.peer_addr().map(|a| a.to_string()).unwrap_or_default();
        let _ = conn.set_write_timeout(Some(self.timeout()));
        self.conn = Some(conn);
        // The preface, then HELLO.
        while self.buf.len() < PREFACE.len() {
            if !self.fill(deadline)? {
                return Err(fail(i, "the preface", self.closed_or_nothing()));
            }
        }
        if self.buf[..PREFACE.len()] != PREFACE {
            let got = hex::encode(&self.buf[..PREFACE.len()]);
            return Err(fail(i, "the preface", format!("octets {got}")));
        }
        let _ = self.buf.split_to(PREFACE.len());
        let pattern = a.hello.clone().unwrap_or(json!({"type": "HELLO"}));
        match self.next_frame(deadline) {
            Ok(Some(v)) if matches(&pattern, &v) => Ok(()),
            Ok(Some(v)) => Err(fail(
                i,
                format!("HELLO {}", describe(&pattern)),
                format!("frame {}", describe(&v)),
            )),
            Ok(None) => Err(fail(i, "HELLO", self.closed_or_nothing())),
            Err(e) => Err(fail(i, "HELLO", e)),
        }
    }

    /// Reads more octets; `Ok(false)` when the client closed.
    fn fill(&mut self, deadline: Instant) -> Result<bool, Failure> {
        let Some(conn) = self.conn.as_mut() else {
            return Ok(false);
        };
        if self.client_closed.is_some() {
            return Ok(false);
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(true);
        }
        let _ = conn.set_read_timeout(Some((deadline - now).max(Duration::from_millis(1))));
        let mut chunk = [0u8; 16 * 1024];
        match conn.read(&mut chunk) {
            Ok(0) => {
                self.client_closed = Some("FIN");
                self.log(
                    Dir::ClientToServer,
                    self.rx,
                    String::new(),
                    Some("FIN".into()),
                );
                Ok(false)
            }
            Ok(n) => {
                let hex = hex::encode(&chunk[..n]);
                self.log(Dir::ClientToServer, self.rx, hex, None);
                self.rx += n as u64;
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(true)
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                ) =>
            {
                Ok(true)
            }
            Err(e) => {
                self.client_closed = Some("RST");
                self.log(
                    Dir::ClientToServer,
                    self.rx,
                    String::new(),
                    Some(format!("RST ({e})")),
                );
                Ok(false)
            }
        }
    }

    /// The next whole frame from the client (JSON form), `None` if it closed or the deadline
    /// passed, `Err` for bytes that are not a frame.
    fn next_frame(&mut self, deadline: Instant) -> Result<Option<Value>, String> {
        if let Some(until) = self.read_pause_until.take() {
            let now = Instant::now();
            if until > now {
                std::thread::sleep(until - now);
            }
        }
        loop {
            match self.dec.decode(&mut self.buf) {
                Ok(Some(frame)) => {
                    let ctx = DecodeContext {
                        receiver: Role::Server,
                        version: Some(self.version),
                        capabilities: 0,
                    };
                    let mut f = frame;
                    let header_version = f.header.version;
                    // Judge the body in the frame's own header version; the version is in the
                    // JSON for patterns to check.
                    f.header.version = header_version.max(1);
                    return match message::decode(&f, &ctx).or_else(|_| {
                        message::decode(
                            &f,
                            &DecodeContext {
                                receiver: Role::Server,
                                version: None,
                                capabilities: 0,
                            },
                        )
                    }) {
                        Ok(m) => {
                            let mut v = crate::exec::frame_json(&f, &m);
                            v["version"] = Value::from(header_version);
                            Ok(Some(v))
                        }
                        Err(e) => Err(format!("an undecodable frame from the client: {e}")),
                    };
                }
                Ok(None) => {}
                Err(e) => return Err(format!("bytes from the client that are not a frame: {e}")),
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            if !self.fill(deadline).map_err(|f| f.observed)? {
                return Ok(None);
            }
        }
    }

    fn next_event(&mut self, deadline: Instant) -> Option<Value> {
        let now = Instant::now();
        let ev = self
            .driver
            .events
            .recv_timeout(deadline.saturating_duration_since(now))
            .ok()?;
        if ev["event"] == "welcome"
            && let Some(v) = ev["version"].as_u64()
        {
            self.version = v as u8;
        }
        let text = ev.to_string();
        self.log(
            Dir::ClientToServer,
            self.rx,
            String::new(),
            Some(format!(
                "(driver event: {})",
                crate::verdict::cut(&text, 300)
            )),
        );
        Some(ev)
    }

    /// Writes server octets, cut by the run's split.
    fn write(&mut self, bytes: &[u8]) {
        let sizes = self.cut.chunk_sizes(&mut self.rng, self.tx, bytes.len());
        let pause = self.cut.pauses();
        let mut at = 0;
        for (n, size) in sizes.into_iter().enumerate() {
            if n > 0 && pause {
                std::thread::sleep(Duration::from_millis(5));
            }
            let chunk = &bytes[at..at + size];
            at += size;
            let Some(conn) = self.conn.as_mut() else {
                return;
            };
            match conn.write_all(chunk) {
                Ok(()) => {
                    let offset = self.tx;
                    self.tx += chunk.len() as u64;
                    self.log(Dir::ServerToClient, offset, hex::encode(chunk), None);
                }
                Err(e) => {
                    let offset = self.tx;
                    self.log(
                        Dir::ServerToClient,
                        offset,
                        String::new(),
                        Some(format!("write error: {e}")),
                    );
                    return;
                }
            }
        }
    }
}

fn left_text(group: &[&Value]) -> String {
    let all: Vec<String> = group.iter().map(|p| describe(p)).collect();
    if all.len() == 1 {
        all.join("")
    } else {
        format!("in any order: {}", all.join(", "))
    }
}

/// The planned cuts of a client case (as for server cases: `boundaries` is sampled at 16
/// points of the server's octets).
fn client_cuts(case: &ClientCase, opts: &Options) -> Vec<Cut> {
    if case.timing_sensitive {
        return vec![Cut::Whole];
    }
    let base = crate::fnv(&case.id) ^ opts.seed;
    let mut out = Vec::new();
    for s in &opts.strategies {
        use crate::split::Strategy;
        match s {
            Strategy::Whole | Strategy::Coalesced => out.push(Cut::Whole),
            Strategy::Bytewise => out.push(Cut::Bytewise),
            Strategy::Random(n) => {
                out.extend((0..*n).map(|i| Cut::Random(base.wrapping_add(u64::from(i)))))
            }
            Strategy::Delayed => out.push(Cut::Delayed(base)),
            Strategy::Boundaries => out.extend((1..=16).map(|k| Cut::At(k * 7))),
            Strategy::Exactly(c) => out.push(c.clone()),
        }
    }
    out.dedup();
    out
}

/// Runs one client case under every planned cut.
pub fn run_case(command: &str, case: &ClientCase, opts: &Options) -> CaseResult {
    let started = Instant::now();
    let mut runs = 0;
    let mut failures = Vec::new();
    let mut unsplit_failed = false;
    let mut to_shrink = None;
    let keep_all = opts.capture.as_ref().is_some_and(|c| c.all);
    let mut captured = Vec::new();
    for cut in client_cuts(case, opts) {
        runs += 1;
        let r = run_once(command, case, cut.clone(), opts);
        if keep_all {
            captured.push(r.clone());
        }
        if r.failure.is_none() {
            continue;
        }
        unsplit_failed |= cut == Cut::Whole;
        if cut.is_multi() && to_shrink.is_none() {
            to_shrink = Some((cut, r.clone()));
        }
        if failures.len() < 3 {
            failures.push(r);
        }
    }
    // As for servers: a failure only under a multi-cut split of the server's octets is shrunk
    // to the smallest set of cuts that still fails it.
    let shrunk = match to_shrink {
        Some((cut, failed)) if opts.shrink && !unsplit_failed => Some(crate::shrink::shrink(
            &case.id,
            &cut,
            &failed,
            &|c| run_once(command, case, c, opts),
            Dir::ServerToClient,
        )),
        _ => None,
    };
    CaseResult {
        outcome: Outcome::of(case.level, !failures.is_empty()),
        reason: None,
        runs,
        failures,
        millis: started.elapsed().as_millis() as u64,
        shrunk,
        retried: None,
        captured,
    }
}

/// Runs every client case against every driver command (`opts.jobs` cases at a time).
pub fn run(
    commands: &[String],
    cases: Vec<ClientCase>,
    opts: Options,
    on_event: crate::OnEvent,
) -> Report {
    let started = Instant::now();
    let report_cases: Vec<Case> = cases.iter().map(ClientCase::as_case).collect();
    let mut targets = Vec::new();
    for command in commands {
        let name = format!("client:{command}");
        let results: Vec<Mutex<Option<CaseResult>>> =
            cases.iter().map(|_| Mutex::new(None)).collect();
        let next = std::sync::atomic::AtomicUsize::new(0);
        let done = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..opts.jobs.max(1) {
                s.spawn(|| {
                    loop {
                        let k = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(case) = cases.get(k) else { break };
                        on_event(Event::Started {
                            target: &name,
                            case: &report_cases[k],
                        });
                        let mut r = run_case(command, case, &opts);
                        if let Some(c) = &opts.capture {
                            let named = commands.len() > 1;
                            crate::capture::write_case(c, named, &report_cases[k], &name, &mut r);
                        }
                        let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                        on_event(Event::Finished {
                            target: &name,
                            done: n,
                            total: cases.len(),
                            case: &report_cases[k],
                            result: &r,
                        });
                        *results[k].lock().unwrap_or_else(|p| p.into_inner()) = Some(r);
                    }
                });
            }
        });
        targets.push(TargetReport {
            name,
            address: "127.0.0.1 (the runner listens; the driver connects)".into(),
            info: None,
            error: None,
            warning: None,
            died_after: None,
            died_reason: None,
            log_tail: None,
            results: results
                .into_iter()
                .map(|m| {
                    m.into_inner()
                        .unwrap_or_else(|p| p.into_inner())
                        .expect("every client case ran")
                })
                .collect(),
        });
    }
    Report {
        cases: report_cases,
        targets,
        options: opts,
        elapsed: started.elapsed(),
        incomplete: None,
    }
}
