//! The steps of a case, typed and validated when a case file is loaded.
//!
//! Case files are data any runner can execute (`spec/conformance/README.md` documents the
//! format). This module is the format's schema in Rust: every step, send and expectation is a
//! type with `deny_unknown_fields`, and [`validate`] checks what serde cannot (hex is hex, a frame
//! names a real message type and its symbolic body encodes, a time expression names a known
//! timeout, a pattern names only frame fields). So a typo in a case file is an error naming the
//! file, the case and the field when the runner starts — never a *server* failing a MUST case.
//!
//! What this module does not do: run anything. [`crate::exec`] executes typed steps.

use std::fmt;

use bytes::BufMut;
use echowire_codec::frame::{FrameHeader, MessageType};
use echowire_codec::message::Message;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::target::Timeouts;
use crate::verdict::{eval, expand};

/// One step of a case, executed in order on one connection.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Step {
    /// Preface and HELLO, then expect WELCOME.
    Handshake(Handshake),
    /// Bytes to send.
    Send(Send),
    /// What must arrive (or not) next.
    Expect(Expect),
    /// Shut down the runner's write side (always `true`).
    HalfClose(bool),
    /// Wait before the next send.
    Pause(Wait),
    /// Send one octet per interval (slowloris).
    Trickle(Trickle),
    /// Do not read for a while; sends continue (backpressure).
    StopReading(Wait),
    /// Abort the connection (SO_LINGER 0); always `true`.
    Reset(bool),
    /// Run steps on several connections at once.
    Parallel(Parallel),
    /// Signal the target: `"terminate"` starts its graceful shutdown (SIGTERM, spec §3.8). The
    /// case then runs on an instance of its own.
    Signal(Signal),
    /// Write ECHOs without reading until the server stops reading (backpressure, spec §8.4),
    /// then read every reply.
    Flood(Flood),
    /// Start connections that run these steps beside this one, without waiting for them (load
    /// from other clients: a worker pool kept busy, a shared queue filled). The case ends when
    /// they have ended too, and their failures are the case's. Judged cases only.
    Background(Parallel),
    /// Observe the connection to its end and judge everything the server sent, and how it
    /// closed, against the executable model of the spec ([`crate::oracle`]). The last step of
    /// a *judged* case, which reads all along instead of expecting frames one by one: it has no
    /// `expect`, `handshake` or `flood` steps. The fuzzer writes its findings as judged cases.
    Judge(Judge),
}

/// `{"judge": {"quiet_ms"?, "max_ms"?}}`.
///
/// After its last write the runner keeps reading until the server closes, or until nothing
/// arrives for `quiet_ms` and the model owes nothing (no response, no timer that may still fire
/// within `max_ms`); at most `max_ms` after the connection opened.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Judge {
    /// How long a quiet connection is watched after the last write (default 300 ms).
    #[serde(default = "quiet_default")]
    pub quiet_ms: Millis,
    /// The longest a run observes (default 20 s).
    #[serde(default = "max_default")]
    pub max_ms: Millis,
}

impl Default for Judge {
    fn default() -> Self {
        Judge {
            quiet_ms: quiet_default(),
            max_ms: max_default(),
        }
    }
}

fn quiet_default() -> Millis {
    Millis::Number(300)
}

fn max_default() -> Millis {
    Millis::Number(20_000)
}

impl Step {
    /// Whether the steps form a judged case (the last step is [`Step::Judge`]).
    pub fn judged(steps: &[Step]) -> bool {
        matches!(steps.last(), Some(Step::Judge(_)))
    }
}

/// `{"flood": {...}}`: ECHO requests with IDs from `first_id` up, each with a payload of
/// `payload_len` octets (every octet the ID's low octet), written whole (the split strategy does
/// not apply) without reading anything, until a write makes no progress for `stall_ms` — the
/// server stopped reading, as §8.4 requires of a server whose output queue is full — or until
/// `max_bytes` were written, which fails the step: a server that reads that much from a client
/// that reads nothing queues without bound. After the stall every ECHO written (the one the stall
/// cut included, completed as the server resumes reading) must be answered with its payload, in
/// any order.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Flood {
    /// The first ECHO's request ID.
    pub first_id: u32,
    /// Octets of each payload.
    pub payload_len: u32,
    /// Octets the server may read from a non-reading client before it must stop reading.
    pub max_bytes: u64,
    /// A write that makes no progress for this long is the stall.
    pub stall_ms: u64,
}

/// `{"signal": "terminate"}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Signal {
    /// SIGTERM: stop accepting, GOODBYE to every client, finish accepted work, exit.
    Terminate,
}

/// `{"handshake": {...}}`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Handshake {
    /// HELLO's `min_version`.
    pub min_version: u8,
    /// HELLO's `max_version` (default: `min_version`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_version: Option<u8>,
    /// HELLO's `max_frame_size` (default 16 MiB).
    #[serde(default = "sixteen_mib")]
    pub max_frame_size: u32,
    /// HELLO's capabilities.
    #[serde(default)]
    pub capabilities: u32,
    /// The version WELCOME must choose.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_version: Option<u8>,
    /// More WELCOME pattern, merged into `{"type": "WELCOME", "request_id": 0}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect: Option<Pattern>,
}

fn sixteen_mib() -> u32 {
    16 << 20
}

impl Handshake {
    /// HELLO's `max_version`.
    pub fn max_version(&self) -> u8 {
        self.max_version.unwrap_or(self.min_version)
    }

    /// The WELCOME pattern this step expects.
    pub fn welcome_pattern(&self) -> Value {
        let mut p = json!({"type": "WELCOME", "request_id": 0});
        if let Some(v) = self.expect_version {
            p["body"] = json!({ "version": v });
        }
        if let Some(extra) = &self.expect {
            merge(&mut p, &extra.0);
        }
        p
    }
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

/// `{"send": {...}}`: exactly one of these.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Send {
    /// Raw octets.
    Hex(Hex),
    /// `len` copies of `byte`.
    Fill {
        /// The octet.
        byte: u8,
        /// How many.
        len: usize,
    },
    /// A frame described symbolically.
    Frame(FrameSpec),
    /// A 4-octet length prefix alone.
    LengthPrefix(Expr),
    /// An ECHO whose `Length` is the expression (its payload octets are `a`).
    EchoFill {
        /// The request ID.
        request_id: u32,
        /// The frame's `Length`.
        length: Expr,
    },
}

impl Send {
    /// Whether building it needs the target's announced limit (`limit` in an expression).
    pub fn needs_limit(&self) -> bool {
        match self {
            Send::LengthPrefix(e) | Send::EchoFill { length: e, .. } => e.uses_limit(),
            Send::Frame(f) => f.length.as_ref().is_some_and(Expr::uses_limit),
            _ => false,
        }
    }

    /// The octets, given the negotiated (or assumed) version and the target's limit.
    pub fn build(&self, version: u8, limit: u32) -> Result<Vec<u8>, String> {
        match self {
            Send::Hex(h) => Ok(h.0.clone()),
            Send::Fill { byte, len } => Ok(vec![*byte; *len]),
            Send::LengthPrefix(e) => {
                let n = e.eval(limit)?;
                Ok((n.min(u64::from(u32::MAX)) as u32).to_be_bytes().to_vec())
            }
            Send::EchoFill { request_id, length } => {
                let length = e_usize(length.eval(limit)?)?.max(12);
                let payload = length - 12;
                let mut out = Vec::with_capacity(length + 4);
                FrameHeader::new(
                    version,
                    MessageType::Echo,
                    Default::default(),
                    *request_id,
                    payload + 4,
                )
                .encode(&mut out);
                out.put_u32(payload as u32);
                out.put_bytes(b'a', payload);
                Ok(out)
            }
            Send::Frame(f) => f.build(version, limit),
        }
    }
}

fn e_usize(n: u64) -> Result<usize, String> {
    usize::try_from(n).map_err(|_| format!("{n} is too large"))
}

/// `{"send": {"frame": {...}}}`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FrameSpec {
    /// A spec type name or `0xNN`.
    #[serde(rename = "type")]
    pub ty: String,
    /// The request ID.
    #[serde(default)]
    pub request_id: u32,
    /// The flags.
    #[serde(default)]
    pub flags: u16,
    /// The header version (default: the negotiated one, 1 before WELCOME).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u8>,
    /// The body in the vectors' JSON form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
    /// The body as raw octets instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_hex: Option<Hex>,
    /// Overrides the `Length` field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub length: Option<Expr>,
}

impl FrameSpec {
    fn msg_type(&self) -> Result<MessageType, String> {
        MessageType::from_name(&self.ty)
            .ok_or_else(|| format!("unknown message type {:?}", self.ty))
    }

    /// The frame's octets.
    pub fn build(&self, negotiated: u8, limit: u32) -> Result<Vec<u8>, String> {
        let ty = self.msg_type()?;
        let version = self.version.unwrap_or(negotiated);
        let body: Vec<u8> = match (&self.body_hex, &self.body) {
            (Some(_), Some(_)) => return Err("both body and body_hex".into()),
            (Some(h), None) => h.0.clone(),
            (None, body) => {
                let body = expand(body.as_ref().unwrap_or(&json!({})), limit);
                let text = json!({"type": self.ty, "body": body}).to_string();
                let m: Message =
                    serde_json::from_str(&text).map_err(|e| format!("body of {}: {e}", self.ty))?;
                let mut b = Vec::new();
                m.encode_body(version, &mut b)
                    .map_err(|e| format!("body of {}: {e}", self.ty))?;
                b
            }
        };
        let mut header = FrameHeader::new(
            version,
            ty,
            echowire_codec::Flags(self.flags),
            self.request_id,
            body.len(),
        );
        if let Some(l) = &self.length {
            header.length = l.eval(limit)?.min(u64::from(u32::MAX)) as u32;
        }
        let mut out = Vec::with_capacity(12 + body.len());
        header.encode(&mut out);
        out.extend_from_slice(&body);
        Ok(out)
    }
}

/// Octets written as lowercase or uppercase hex in a case file.
#[derive(Clone, PartialEq, Eq)]
pub struct Hex(pub Vec<u8>);

impl fmt::Debug for Hex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hex({})", hex::encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for Hex {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        hex::decode(&s)
            .map(Hex)
            .map_err(|e| serde::de::Error::custom(format!("{s:?} is not hex: {e}")))
    }
}

impl Serialize for Hex {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(&self.0))
    }
}

/// A number of octets: a number, or `limit`, `limit+N`, `limit-N` (the target's announced
/// `max_frame_size`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum Expr {
    /// A literal.
    Number(u64),
    /// An expression over `limit`.
    Text(String),
}

impl Expr {
    fn uses_limit(&self) -> bool {
        matches!(self, Expr::Text(t) if t.contains("limit"))
    }

    /// Its value given the limit.
    pub fn eval(&self, limit: u32) -> Result<u64, String> {
        match self {
            Expr::Number(n) => Ok(*n),
            Expr::Text(t) => {
                eval(t, limit).ok_or_else(|| format!("{t:?} is not N, limit, limit+N or limit-N"))
            }
        }
    }
}

/// A duration in milliseconds: a number, or a time expression over the target's declared
/// timeouts (`NAME`, `NAME+N`, `NAME-N`, `NAME/N`; [`crate::exec::eval_ms`]).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum Millis {
    /// A literal.
    Number(u64),
    /// A time expression.
    Text(String),
}

impl Millis {
    /// Its value given the target's timeouts; `None` for an undeclared timeout.
    pub fn eval(&self, t: &Timeouts) -> Option<u64> {
        match self {
            Millis::Number(n) => Some(*n),
            Millis::Text(s) => eval_ms(s, t),
        }
    }
}

/// `{"ms": MILLIS}`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Wait {
    /// How long.
    pub ms: Millis,
}

/// `{"trickle": {"hex", "interval_ms"}}`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Trickle {
    /// The octets, one per interval.
    pub hex: Hex,
    /// The interval.
    pub interval_ms: Millis,
}

/// `{"parallel": {"connections", "steps"}}`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Parallel {
    /// How many connections.
    pub connections: usize,
    /// What each does.
    pub steps: Vec<Step>,
}

/// How the server must have closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CloseHow {
    /// A clean end of stream (FIN).
    Clean,
    /// FIN or RST.
    Any,
    /// An abortive close (RST over TCP; any close over a Unix socket).
    Reset,
}

/// A frame pattern (matched by [`crate::verdict::matches`]): only the keys it names are compared.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(transparent)]
pub struct Pattern(pub Value);

/// The keys a frame pattern may name at its top level.
const PATTERN_KEYS: &[&str] = &[
    "version",
    "type",
    "flags",
    "request_id",
    "length",
    "body",
    "$one_of",
];

impl Pattern {
    fn validate(&self) -> Result<(), String> {
        let Value::Object(o) = &self.0 else {
            return Err(format!("a frame pattern is an object, not {}", self.0));
        };
        for (k, v) in o {
            if !PATTERN_KEYS.contains(&k.as_str()) {
                return Err(format!(
                    "frame pattern key {k:?} is not one of {}",
                    PATTERN_KEYS.join(", ")
                ));
            }
            match (k.as_str(), v) {
                ("type", Value::String(t)) if MessageType::from_name(t).is_none() => {
                    return Err(format!("unknown message type {t:?} in a pattern"));
                }
                ("$one_of", Value::Array(alts)) => {
                    for a in alts {
                        Pattern(a.clone()).validate()?;
                    }
                }
                ("$one_of", other) => return Err(format!("$one_of takes a list, not {other}")),
                _ => {}
            }
        }
        Ok(())
    }
}

/// `{"expect": {...}}`: one expectation, with an optional deadline.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(try_from = "ExpectRepr", into = "ExpectRepr")]
pub struct Expect {
    /// What must happen.
    pub kind: ExpectKind,
    /// Its deadline, if not the run's default (patience: never below the run's `--timeout`).
    pub within_ms: Option<Millis>,
    /// A bound the spec sets (e.g. a timeout fires at most 1 s late, §8.3): the expectation fails
    /// if it is not met this long after the step starts, whatever the run's `--timeout`.
    pub at_most_ms: Option<Millis>,
}

/// The kinds of expectation.
#[derive(Clone, Debug, PartialEq)]
pub enum ExpectKind {
    /// The next frame matches.
    Frame(Pattern),
    /// The next frame matches one of these.
    OneOf(Vec<Pattern>),
    /// The next frames match these, in any order.
    Unordered(Vec<Pattern>),
    /// The server closed.
    Closed(CloseHow),
    /// The server closed, after any number of frames (read and discarded): for a close that
    /// comes while the server still has output queued (`"skip_frames": true`).
    ClosedAfterFrames(CloseHow),
    /// Nothing arrives (no octet, no close) for this long.
    Nothing(Millis),
}

#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct ExpectRepr {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    frame: Option<Pattern>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    one_of: Option<Vec<Pattern>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    unordered: Option<Vec<Pattern>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    closed: Option<CloseHow>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    nothing: Option<Wait>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    skip_frames: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    within_ms: Option<Millis>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    at_most_ms: Option<Millis>,
}

impl TryFrom<ExpectRepr> for Expect {
    type Error = String;
    fn try_from(r: ExpectRepr) -> Result<Self, String> {
        let mut kinds = Vec::new();
        if let Some(p) = r.frame {
            kinds.push(ExpectKind::Frame(p));
        }
        if let Some(p) = r.one_of {
            kinds.push(ExpectKind::OneOf(p));
        }
        if let Some(p) = r.unordered {
            kinds.push(ExpectKind::Unordered(p));
        }
        match (r.closed, r.skip_frames) {
            (Some(c), false) => kinds.push(ExpectKind::Closed(c)),
            (Some(c), true) => kinds.push(ExpectKind::ClosedAfterFrames(c)),
            (None, true) => return Err("skip_frames goes only with closed".into()),
            (None, false) => {}
        }
        if let Some(n) = r.nothing {
            kinds.push(ExpectKind::Nothing(n.ms));
        }
        if kinds.len() != 1 {
            return Err(format!(
                "an expectation names exactly one of frame, one_of, unordered, closed, nothing ({} given)",
                kinds.len()
            ));
        }
        if r.within_ms.is_some() && r.at_most_ms.is_some() {
            return Err("an expectation takes within_ms or at_most_ms, not both".into());
        }
        Ok(Expect {
            kind: kinds.remove(0),
            within_ms: r.within_ms,
            at_most_ms: r.at_most_ms,
        })
    }
}

impl From<Expect> for ExpectRepr {
    fn from(e: Expect) -> Self {
        let mut r = ExpectRepr {
            frame: None,
            one_of: None,
            unordered: None,
            closed: None,
            nothing: None,
            skip_frames: false,
            within_ms: e.within_ms,
            at_most_ms: e.at_most_ms,
        };
        match e.kind {
            ExpectKind::Frame(p) => r.frame = Some(p),
            ExpectKind::OneOf(p) => r.one_of = Some(p),
            ExpectKind::Unordered(p) => r.unordered = Some(p),
            ExpectKind::Closed(c) => r.closed = Some(c),
            ExpectKind::ClosedAfterFrames(c) => {
                r.closed = Some(c);
                r.skip_frames = true;
            }
            ExpectKind::Nothing(ms) => r.nothing = Some(Wait { ms }),
        }
        r
    }
}

impl Expect {
    /// A frame expectation without a deadline of its own.
    pub fn frame(p: Value) -> Expect {
        Expect {
            kind: ExpectKind::Frame(Pattern(p)),
            within_ms: None,
            at_most_ms: None,
        }
    }

    /// The patterns of an expectation that names only responses (spec §3.6.1 rule 2: they may
    /// arrive in any order): every pattern has a non-zero request ID, or is an ERROR with ID 0
    /// whose code does not end the connection. `None` otherwise, or if it has its own deadline.
    pub fn response_patterns(&self) -> Option<Vec<Pattern>> {
        if self.within_ms.is_some() {
            return None;
        }
        let pats = match &self.kind {
            ExpectKind::Frame(p) => vec![p.clone()],
            ExpectKind::Unordered(p) => p.clone(),
            _ => return None,
        };
        pats.iter()
            .all(|p| is_response_pattern(&p.0))
            .then_some(pats)
    }
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

/// Checks what the types alone cannot: every `true`-only flag is `true`, every frame builds,
/// every pattern names frame fields, every time expression names a known timeout, and the
/// counts are sane. The error names the step (0-based) and what is wrong.
pub fn validate(steps: &[Step]) -> Result<(), String> {
    // Every timeout declared, so that only the expression's form is checked.
    let all = Timeouts {
        handshake: Some(std::time::Duration::from_secs(10)),
        idle: Some(std::time::Duration::from_secs(10)),
        drain: Some(std::time::Duration::from_secs(10)),
    };
    let millis = |m: &Millis| {
        m.eval(&all)
            .map(|_| ())
            .ok_or_else(|| format!("{m:?} is not a duration or a time expression"))
    };
    for (i, step) in steps.iter().enumerate() {
        let r = match step {
            Step::HalfClose(b) | Step::Reset(b) if !b => Err("takes `true`".into()),
            Step::HalfClose(_) | Step::Reset(_) => Ok(()),
            Step::Handshake(h) => match &h.expect {
                Some(p) => p.validate(),
                None => Ok(()),
            },
            Step::Send(s) => s.build(2, 1 << 20).map(|_| ()),
            Step::Expect(e) => {
                let deadline = e
                    .within_ms
                    .as_ref()
                    .or(e.at_most_ms.as_ref())
                    .map_or(Ok(()), millis);
                deadline.and_then(|()| match &e.kind {
                    ExpectKind::Frame(p) => p.validate(),
                    ExpectKind::OneOf(ps) | ExpectKind::Unordered(ps) if ps.is_empty() => {
                        Err("an empty list of patterns".into())
                    }
                    ExpectKind::OneOf(ps) | ExpectKind::Unordered(ps) => {
                        ps.iter().try_for_each(Pattern::validate)
                    }
                    ExpectKind::Closed(_) | ExpectKind::ClosedAfterFrames(_) => Ok(()),
                    ExpectKind::Nothing(ms) => millis(ms),
                })
            }
            Step::Pause(w) | Step::StopReading(w) => millis(&w.ms),
            Step::Trickle(t) => millis(&t.interval_ms),
            Step::Parallel(p) if !(1..=1000).contains(&p.connections) => {
                Err(format!("{} connections (1..=1000)", p.connections))
            }
            Step::Parallel(p) => validate(&p.steps).map_err(|e| format!("in parallel: {e}")),
            Step::Background(_) if !matches!(steps.last(), Some(Step::Judge(_))) => {
                Err("background connections are for judged cases (the last step is judge)".into())
            }
            Step::Background(p) if !(1..=100).contains(&p.connections) => {
                Err(format!("{} connections (1..=100)", p.connections))
            }
            Step::Background(p) => validate(&p.steps).map_err(|e| format!("in background: {e}")),
            Step::Signal(_) => Ok(()),
            Step::Judge(j) if i + 1 != steps.len() => {
                let _ = j;
                Err("judge must be the last step".into())
            }
            Step::Judge(j) => millis(&j.quiet_ms)
                .and_then(|()| millis(&j.max_ms))
                .and_then(|()| {
                    match steps
                    .iter()
                    .find(|s| matches!(s, Step::Expect(_) | Step::Handshake(_) | Step::Flood(_)))
                {
                    Some(_) => Err(
                        "a judged case has no expect, handshake or flood steps: the model judges \
                         what arrives"
                            .into(),
                    ),
                    None => Ok(()),
                }
                }),
            Step::Flood(f) => {
                if f.first_id == 0 {
                    Err("first_id must not be 0".into())
                } else if !(1..=1 << 20).contains(&f.payload_len) {
                    Err(format!("payload_len {} (1..=1048576)", f.payload_len))
                } else if !(1 << 20..=1 << 30).contains(&f.max_bytes) {
                    Err(format!("max_bytes {} (1 MiB..=1 GiB)", f.max_bytes))
                } else if !(100..=60_000).contains(&f.stall_ms) {
                    Err(format!("stall_ms {} (100..=60000)", f.stall_ms))
                } else {
                    Ok(())
                }
            }
        };
        r.map_err(|e| format!("step {i}: {e}"))?;
    }
    Ok(())
}

/// Evaluates a time expression: `N`, `NAME`, `NAME+N`, `NAME-N` or `NAME/N`, where `NAME` is
/// `handshake_timeout`, `idle_timeout` or `drain_timeout` in milliseconds as the target declared
/// it. `None` for a malformed expression or an undeclared timeout.
pub fn eval_ms(expr: &str, timeouts: &Timeouts) -> Option<u64> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: Value) -> Result<Vec<Step>, String> {
        let steps: Vec<Step> = serde_json::from_value(v).map_err(|e| e.to_string())?;
        validate(&steps)?;
        Ok(steps)
    }

    #[test]
    fn typos_are_load_errors_not_server_failures() {
        for (bad, why) in [
            (json!([{"sned": {"hex": "00"}}]), "unknown variant `sned`"),
            (json!([{"send": {"hex": "zz"}}]), "not hex"),
            (
                json!([{"send": {"frame": {"type": "ECHOO"}}}]),
                "unknown message type",
            ),
            (
                json!([{"send": {"frame": {"type": "ECHO", "reqest_id": 1}}}]),
                "unknown field",
            ),
            (
                json!([{"send": {"frame": {"type": "ECHO", "body": {"paylod": "00"}}}}]),
                "body of ECHO",
            ),
            (
                json!([{"expect": {"frame": {"reqest_id": 1}}}]),
                "frame pattern key",
            ),
            (
                json!([{"expect": {"frame": {"type": "PONGG"}}}]),
                "unknown message type",
            ),
            (
                json!([{"expect": {"closed": "cleanly"}}]),
                "unknown variant",
            ),
            (
                json!([{"expect": {"frame": {}, "closed": "any"}}]),
                "exactly one",
            ),
            (
                json!([{"expect": {"nothing": {"ms": "idle+5"}}}]),
                "time expression",
            ),
            (json!([{"half_close": false}]), "takes `true`"),
            (json!([{"send": {"length_prefix": "limt+1"}}]), "limit"),
            (
                json!([{"parallel": {"connections": 0, "steps": []}}]),
                "connections",
            ),
        ] {
            let e = parse(bad.clone()).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn steps_round_trip_through_their_json_form() {
        let v = json!([
            {"handshake": {"min_version": 1, "max_frame_size": 4096, "capabilities": 0}},
            {"send": {"frame": {"type": "ECHO", "request_id": 1, "flags": 0, "body": {"payload": "6869"}}}},
            {"expect": {"unordered": [{"request_id": 1}], "within_ms": "idle_timeout+10"}},
            {"trickle": {"hex": "00", "interval_ms": 5}},
            {"half_close": true}
        ]);
        let steps = parse(v.clone()).unwrap();
        let back = serde_json::to_value(&steps).unwrap();
        assert_eq!(back, v);
    }
}
