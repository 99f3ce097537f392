//! The session grammar: random client sessions, written as the steps of a judged case.
//!
//! A session opens (a good preface and HELLO most of the time, a faulty one sometimes), does a
//! random number of things, and ends (half-close, GOODBYE, a reset, an ERROR with ID 0, a
//! partial frame, or nothing at all so the timers act). The things it does are weighted toward
//! where rules combine:
//!
//! * requests of every type and version, with IDs that are fresh, reused while outstanding,
//!   reused after an answer or a cancel, or 0; edge values (empty payloads, the cost range's
//!   ends, sums that wrap, payloads at and above the peer's limit);
//! * faulty frames: header fields (version, flags, type, direction), bodies (truncated,
//!   trailing octets, invalid UTF-8), impossible Lengths;
//! * lifecycle: bursts pipelined past the outstanding limit, CANCEL before/while/after, GOODBYE
//!   and ERROR from the client, a second HELLO, pauses short of and beyond the declared
//!   timeouts, periods of not reading (backpressure), SIGTERM to a target the runner started.
//!
//! The generator does not predict anything: the oracle judges what comes back. It only keeps
//! enough state to make the interesting choices likely (which IDs were sent, which version was
//! negotiated, whether the session is over).

use bytes::Bytes;
use echowire_codec::ErrorCode;
use echowire_codec::message::{self, Message};
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{Rng as _, SeedableRng};
use serde_json::Value;

use crate::step::{FrameSpec, Hex, Judge, Millis, Send, Step, Wait};
use crate::target::Timeouts;

/// What the generator knows of the target.
#[derive(Clone, Debug)]
pub struct GenConfig {
    /// The target's declared timeouts (pauses cross only declared ones).
    pub timeouts: Timeouts,
    /// The target's `max_frame_size` (from its probe).
    pub limit: u32,
    /// The target supports version 2.
    pub v2: bool,
    /// The target accepts the RKYV capability.
    pub rkyv: bool,
    /// The runner started the target and may signal it (a session with SIGTERM).
    pub may_signal: bool,
    /// The oracle's timing tolerance: pauses stay this far from every timer's window.
    pub slack_ms: u64,
    /// A COMPUTE cost that keeps one of the target's workers busy for about 1.5 s (measured
    /// when the target is opened): long enough to cross a timer or a drain.
    pub slow_cost: u32,
    /// The target serves several connections at once (background connections are drawn).
    pub concurrent: bool,
}

impl Default for GenConfig {
    fn default() -> Self {
        GenConfig {
            timeouts: Timeouts::default(),
            limit: 1 << 20,
            v2: true,
            rkyv: false,
            may_signal: false,
            slack_ms: crate::oracle::DEFAULT_SLACK_MS,
            slow_cost: 4_000_000,
            concurrent: true,
        }
    }
}

/// A seeded random source with the few draws the grammar needs.
#[derive(Debug)]
pub struct Rng(ChaCha8Rng);

impl Rng {
    /// From a seed.
    pub fn new(seed: u64) -> Self {
        Rng(ChaCha8Rng::seed_from_u64(seed))
    }

    /// `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.0.next_u64() % n }
    }

    /// `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi.saturating_sub(lo) + 1)
    }

    /// True `per_mille` times in a thousand.
    pub fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }

    /// One of `items`.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// A choice by weight: the index of the chosen weight.
    pub fn weighted(&mut self, weights: &[u64]) -> usize {
        let total: u64 = weights.iter().sum();
        let mut x = self.below(total);
        for (i, w) in weights.iter().enumerate() {
            if x < *w {
                return i;
            }
            x -= w;
        }
        weights.len() - 1
    }

    /// `n` random octets.
    pub fn octets(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.0.next_u64() as u8).collect()
    }
}

/// A generated session: the steps and the words for what it does.
#[derive(Clone, Debug)]
pub struct Session {
    /// The steps of a judged case (the last one is `judge`).
    pub steps: Vec<Step>,
    /// It signals the target (needs an instance of its own).
    pub signals: bool,
}

/// Generates one session.
pub fn session(seed: u64, cfg: &GenConfig) -> Session {
    let mut g = Gen {
        rng: Rng::new(seed),
        cfg,
        steps: Vec::new(),
        version: 1,
        open: false,
        over: false,
        next_id: 1,
        sent: Vec::new(),
        rkyv: false,
        client_limit: 16 << 20,
        signalled: false,
        goodbye: false,
    };
    g.opening();
    // Mostly short sessions: many of them per second, and each one a small search for the
    // oracle; a few long ones for what only builds up.
    let actions = match g.rng.weighted(&[40, 45, 15]) {
        0 => g.rng.range(0, 4),
        1 => g.rng.range(3, 12),
        _ => g.rng.range(10, 30),
    };
    for _ in 0..actions {
        if g.over {
            break;
        }
        g.action();
    }
    if !g.over {
        g.ending();
    }
    let mut judge = Judge::default();
    if let Some(idle) = cfg.timeouts.idle {
        // Long enough to see an idle GOODBYE and its drain if the session leaves it open.
        let drain = cfg.timeouts.drain.map_or(0, |d| d.as_millis() as u64);
        judge.max_ms =
            Millis::Number(total_pauses(&g.steps) + idle.as_millis() as u64 + drain + 6_000);
    }
    g.steps.push(Step::Judge(judge));
    Session {
        signals: g.signalled,
        steps: g.steps,
    }
}

fn total_pauses(steps: &[Step]) -> u64 {
    steps
        .iter()
        .map(|s| match s {
            Step::Pause(Wait {
                ms: Millis::Number(n),
            }) => *n,
            Step::StopReading(Wait {
                ms: Millis::Number(n),
            }) => *n,
            _ => 0,
        })
        .sum()
}

struct Gen<'a> {
    rng: Rng,
    cfg: &'a GenConfig,
    steps: Vec<Step>,
    /// The header version of frames after the handshake.
    version: u8,
    /// A HELLO the server should accept was sent.
    open: bool,
    /// The session certainly ended (a connection error was provoked): stop.
    over: bool,
    next_id: u32,
    /// Request IDs sent, most recent last.
    sent: Vec<u32>,
    rkyv: bool,
    /// The client's announced limit.
    client_limit: u32,
    signalled: bool,
    goodbye: bool,
}

const PREFACE: &[u8] = &echowire_codec::frame::PREFACE;

impl Gen<'_> {
    fn send(&mut self, send: Send) {
        self.steps.push(Step::Send(send));
    }

    fn frame(&mut self, ty: &str, id: u32, flags: u16, version: u8, m: Option<&Message<Bytes>>) {
        let body = m.map(|m| {
            serde_json::to_value(m)
                .map(|v| v["body"].clone())
                .unwrap_or(Value::Null)
        });
        self.send(Send::Frame(FrameSpec {
            ty: ty.into(),
            request_id: id,
            flags,
            version: Some(version),
            body: body.or(Some(Value::Object(Default::default()))),
            body_hex: None,
            length: None,
        }));
    }

    fn raw_frame(&mut self, ty: u8, id: u32, flags: u16, version: u8, body: Vec<u8>) {
        let mut out = Vec::with_capacity(12 + body.len());
        out.extend_from_slice(&(8 + body.len() as u32).to_be_bytes());
        out.push(version);
        out.push(ty);
        out.extend_from_slice(&flags.to_be_bytes());
        out.extend_from_slice(&id.to_be_bytes());
        out.extend_from_slice(&body);
        self.send(Send::Hex(Hex(out)));
    }

    fn pause(&mut self, ms: u64) {
        self.steps.push(Step::Pause(Wait {
            ms: Millis::Number(ms),
        }));
    }

    fn fresh_id(&mut self) -> u32 {
        let id = self.next_id;
        self.next_id += self.rng.range(1, 3) as u32;
        id
    }

    /// An ID for a request: usually fresh, sometimes reused, sometimes 0.
    fn request_id(&mut self) -> u32 {
        let recent = self.sent.len().saturating_sub(6);
        match self.rng.weighted(&[80, 8, 6, 3, 3]) {
            1 if !self.sent.is_empty() => *self.rng.pick(&self.sent[recent..]),
            2 if !self.sent.is_empty() => *self.rng.pick(&self.sent[..]),
            3 => 0,
            4 => self.rng.range(1, u64::from(u32::MAX)) as u32,
            _ => self.fresh_id(),
        }
    }

    // ---- opening --------------------------------------------------------------------------

    fn opening(&mut self) {
        match self.rng.weighted(&[86, 3, 3, 3, 2, 3]) {
            0 => self.hello(),
            1 => {
                // A preface with one octet wrong.
                let mut p = PREFACE.to_vec();
                let k = self.rng.below(8) as usize;
                p[k] ^= 1 << self.rng.below(8);
                self.send(Send::Hex(Hex(p)));
                self.over = true;
            }
            2 => {
                // A request before HELLO.
                self.send(Send::Hex(Hex(PREFACE.to_vec())));
                let m = Message::Ping(message::Ping { data: 7 });
                self.frame("PING", 1, 0, 1, Some(&m));
                self.over = true;
            }
            3 => {
                // Part of the preface, then the end of the stream or nothing.
                let k = self.rng.range(1, 7) as usize;
                self.send(Send::Hex(Hex(PREFACE[..k].to_vec())));
                if self.rng.chance(500) {
                    self.steps.push(Step::HalfClose(true));
                }
                self.over = true;
            }
            4 => {
                // A HELLO with a fault in its header.
                self.send(Send::Hex(Hex(PREFACE.to_vec())));
                let body = self.hello_body(1, 2, 16 << 20, 0);
                let (version, flags, id) = match self.rng.below(3) {
                    0 => (2, 0, 0),
                    1 => (1, 1 << self.rng.below(16), 0),
                    _ => (1, 0, self.rng.range(1, 9) as u32),
                };
                self.raw_frame(0x01, id, flags, version, body);
                self.over = true;
            }
            _ => {
                // A HELLO whose body is short, or long.
                self.send(Send::Hex(Hex(PREFACE.to_vec())));
                let mut body = self.hello_body(1, 2, 16 << 20, 0);
                if self.rng.chance(500) {
                    let keep = self.rng.below(body.len() as u64) as usize;
                    body.truncate(keep);
                } else {
                    body.push(0);
                }
                self.raw_frame(0x01, 0, 0, 1, body);
                self.over = true;
            }
        }
    }

    fn hello_body(&self, min: u8, max: u8, limit: u32, caps: u32) -> Vec<u8> {
        let m = Message::Hello(message::Hello {
            min_version: min,
            max_version: max,
            max_frame_size: limit,
            capabilities: caps,
            agent: message::Str::<Bytes>::from("echowire-fuzz"),
        });
        let mut b = Vec::new();
        let _ = m.encode_body(1, &mut b);
        b
    }

    /// The preface and a HELLO, as octets.
    fn hello_bytes(&self, min: u8, max: u8, limit: u32, caps: u32) -> Vec<u8> {
        let body = self.hello_body(min, max, limit, caps);
        let mut bytes = PREFACE.to_vec();
        bytes.extend_from_slice(&(8 + body.len() as u32).to_be_bytes());
        bytes.extend_from_slice(&[1, 0x01, 0, 0, 0, 0, 0, 0]);
        bytes.extend_from_slice(&body);
        bytes
    }

    fn hello(&mut self) {
        let server_max = if self.cfg.v2 { 2 } else { 1 };
        // Mostly a HELLO that succeeds: the interesting rules are after the handshake.
        const OFFERS: [(u8, u8); 7] = [(1, 2), (1, 1), (2, 2), (1, 255), (2, 9), (3, 3), (2, 1)];
        let (min, max) = OFFERS[self.rng.weighted(&[45, 15, 15, 10, 5, 5, 5])];
        let limit = match self.rng.weighted(&[60, 10, 3, 12, 15]) {
            0 => 16 << 20,
            1 => 4096,
            2 => 4095,
            3 => (16 << 20) + 1,
            _ => self.rng.range(4096, 1 << 20) as u32,
        };
        let caps = *self.rng.pick(&[0, 0, message::CAP_RKYV, u32::MAX, 0x10]);
        let bytes = self.hello_bytes(min, max, limit, caps);
        // The preface and HELLO in one write, or in two.
        if self.rng.chance(200) {
            let (a, b) = bytes.split_at(8);
            self.send(Send::Hex(Hex(a.to_vec())));
            self.send(Send::Hex(Hex(b.to_vec())));
        } else {
            self.send(Send::Hex(Hex(bytes)));
        }
        let chosen = (min..=max.min(server_max)).next_back();
        match chosen {
            Some(v) if min <= max && limit >= 4096 => {
                self.version = v;
                self.open = true;
                self.rkyv = caps & message::CAP_RKYV != 0 && self.cfg.rkyv;
                self.client_limit = limit.min(16 << 20);
            }
            _ => self.over = true,
        }
        if self.open && self.rng.chance(300) {
            // Requests right behind HELLO (allowed when one version is offered, §3.2).
            let ms = self.rng.range(0, 30);
            self.pause(ms);
        }
    }

    // ---- actions --------------------------------------------------------------------------

    fn action(&mut self) {
        let timers = self.cfg.timeouts.idle.is_some() || self.cfg.timeouts.drain.is_some();
        let weights = [
            400,                         // 0 request
            60,                          // 1 burst
            90,                          // 2 cancel
            35,                          // 3 goodbye
            15,                          // 4 client ERROR
            20,                          // 5 a frame a server does not receive
            10,                          // 6 HELLO again
            15,                          // 7 unknown or application type
            90,                          // 8 short pause
            if timers { 15 } else { 0 }, // 9 pause past a timer
            30,                          // 10 stop reading
            if self.cfg.may_signal && !self.signalled {
                12
            } else {
                0
            }, // 11 SIGTERM
            12,                          // 12 faulty frame
            8,                           // 13 impossible Length
            90,                          // 14 a drain with work in flight
            20,                          // 15 heavy work past the pool
            if timers { 10 } else { 0 }, // 16 frames that are not requests, spaced
            if timers { 25 } else { 0 }, // 17 slow work, then silence
        ];
        match self.rng.weighted(&weights) {
            0 => self.request(),
            1 => self.burst(),
            2 => self.cancel(),
            3 => self.goodbye(),
            4 => self.client_error(),
            5 => self.wrong_direction(),
            6 => {
                let body = self.hello_body(1, 2, 16 << 20, 0);
                let v = if self.rng.chance(500) {
                    1
                } else {
                    self.version
                };
                self.raw_frame(0x01, 0, 0, v, body);
                self.over = true; // PROTOCOL_ERROR
            }
            7 => self.unknown_type(),
            8 => {
                let ms = self.rng.range(1, 60);
                self.pause(ms);
            }
            9 => self.long_pause(),
            10 => self.stop_reading(),
            11 => {
                self.signalled = true;
                self.steps
                    .push(Step::Signal(crate::step::Signal::Terminate));
            }
            12 => self.faulty_frame(),
            13 => self.bad_length(),
            14 => self.drain_in_flight(),
            15 => self.heavy_burst(),
            16 => self.spaced_non_requests(),
            _ => self.slow_then_silence(),
        }
    }

    /// A COMPUTE that occupies a worker for about 1.5 s.
    fn slow_compute(&mut self, id: u32) {
        let cost = match self.rng.weighted(&[55, 10, 25, 10]) {
            0 => self.cfg.slow_cost,
            1 => (self.cfg.slow_cost / 3).max(1),
            // About 4.5 s: past a timer's whole window (its value, one second late, the slack).
            2 => self.cfg.slow_cost.saturating_mul(3).min(1 << 24),
            // The largest cost the spec allows (a valid input a server must accept).
            _ => 1 << 24,
        };
        let m = Message::Compute(message::Compute {
            cost,
            seed: Bytes::from_static(b"slow"),
        });
        self.frame("COMPUTE", id, 0, self.version, Some(&m));
        self.sent.push(id);
    }

    /// Where drains meet everything else: slow work, then the client's GOODBYE, a SIGTERM or a
    /// half-close, then what a client may still send (CANCEL of the running or queued work,
    /// requests, a reused ID, PING, ERROR with ID 0 of any code, a second GOODBYE, a partial
    /// frame, an invalid COMPUTE).
    fn drain_in_flight(&mut self) {
        let a = self.fresh_id();
        if self.cfg.concurrent && self.rng.chance(300) {
            // The slow work is another client's: what this one queues waits behind it.
            self.background_load();
            let m = Message::Compute(message::Compute {
                cost: self.rng.range(1, 2_000) as u32,
                seed: Bytes::new(),
            });
            self.frame("COMPUTE", a, 0, self.version, Some(&m));
            self.sent.push(a);
        } else {
            self.slow_compute(a);
        }
        let mut queued = Vec::new();
        let extra = if self.rng.chance(500) { 1 } else { 3 };
        for _ in 0..self.rng.range(0, extra) {
            let id = self.fresh_id();
            let m = Message::Compute(message::Compute {
                cost: self.rng.range(1, 2_000) as u32,
                seed: Bytes::new(),
            });
            self.frame("COMPUTE", id, 0, self.version, Some(&m));
            self.sent.push(id);
            queued.push(id);
        }
        if self.rng.chance(500) {
            let ms = self.rng.range(100, 400);
            self.pause(ms);
        }
        let signal = if self.cfg.may_signal && !self.signalled {
            25
        } else {
            0
        };
        match self.rng.weighted(&[60, signal, 15]) {
            0 => {
                let m = Message::Goodbye(message::Goodbye {
                    code: ErrorCode::NO_ERROR,
                    message: "bye".into(),
                });
                self.frame("GOODBYE", 0, 0, self.version, Some(&m));
                self.goodbye = true;
            }
            1 => {
                self.signalled = true;
                self.steps
                    .push(Step::Signal(crate::step::Signal::Terminate));
            }
            _ => {
                self.steps.push(Step::HalfClose(true));
                self.over = true;
                return;
            }
        }
        // Follow-ups, sometimes spread past the drain timeout.
        let spread = self.rng.chance(300);
        for _ in 0..self
            .rng
            .range(if spread { 3 } else { 1 }, if spread { 10 } else { 4 })
        {
            if self.over {
                return;
            }
            if spread {
                let ms = self.rng.range(300, 600);
                self.pause(ms);
            }
            match self.rng.weighted(&[35, 15, 10, 10, 10, 8, 7, 10]) {
                0 => {
                    let id = if !queued.is_empty() && self.rng.chance(400) {
                        *self.rng.pick(&queued)
                    } else {
                        a
                    };
                    let m = Message::Cancel(message::Cancel {});
                    self.frame("CANCEL", id, 0, self.version, Some(&m));
                }
                1 => self.request(),
                2 => {
                    // A reused ID: the slow one (still outstanding) or a queued one.
                    let id = if !queued.is_empty() && self.rng.chance(500) {
                        *self.rng.pick(&queued)
                    } else {
                        a
                    };
                    self.request_with(id);
                }
                3 => {
                    let id = self.fresh_id();
                    let m = Message::Ping(message::Ping { data: 9 });
                    self.frame("PING", id, 0, self.version, Some(&m));
                }
                4 => {
                    let code = ErrorCode::ALL[self.rng.below(ErrorCode::ALL.len() as u64) as usize];
                    let mut e = message::Error::new(code, "client error");
                    if self.version < 2 {
                        e.retry_after_ms = 0;
                    }
                    self.frame("ERROR", 0, 0, self.version, Some(&Message::Error(e)));
                    self.over = true;
                }
                5 => {
                    let m = Message::Goodbye(message::Goodbye {
                        code: ErrorCode::NO_ERROR,
                        message: "again".into(),
                    });
                    self.frame("GOODBYE", 0, 0, self.version, Some(&m));
                }
                6 => {
                    // Part of a frame, then the end of the stream.
                    let n = self.rng.range(1, 11) as usize;
                    let mut b = 20u32.to_be_bytes().to_vec();
                    b.extend_from_slice(&[self.version, 0x03, 0, 0, 0, 0, 0, 77]);
                    b.truncate(n);
                    self.send(Send::Hex(Hex(b)));
                    self.steps.push(Step::HalfClose(true));
                    self.over = true;
                }
                _ => {
                    let id = self.fresh_id();
                    let cost = if self.rng.chance(500) {
                        0
                    } else {
                        (1 << 24) + 1
                    };
                    let m = Message::Compute(message::Compute {
                        cost,
                        seed: Bytes::new(),
                    });
                    self.frame("COMPUTE", id, 0, self.version, Some(&m));
                    self.sent.push(id);
                }
            }
            if self.rng.chance(300) {
                let ms = self.rng.range(10, 300);
                self.pause(ms);
            }
        }
        // What follows a drain is mostly more SHUTTING_DOWN: usually the session ends here and
        // the judge watches the drain play out.
        if self.rng.chance(700) {
            self.over = true;
        }
    }

    /// More heavy requests than the pool admits, often behind another connection's slow work,
    /// sometimes at the outstanding limit: BUSY, TOO_MANY_OUTSTANDING and their order.
    fn heavy_burst(&mut self) {
        if self.rng.chance(400) {
            self.background_load();
        }
        let n = self.rng.range(2, 7);
        for k in 0..n {
            let id = self.fresh_id();
            if k == 0 || self.rng.chance(400) {
                self.slow_compute(id);
            } else {
                let m = Message::Compute(message::Compute {
                    cost: self.rng.range(1, 1_000) as u32,
                    seed: Bytes::new(),
                });
                self.frame("COMPUTE", id, 0, self.version, Some(&m));
                self.sent.push(id);
            }
        }
        let last = self.next_id;
        if self.rng.chance(500) {
            // And something cheap behind them, which counts toward the outstanding limit too.
            let id = self.fresh_id();
            let m = Message::Ping(message::Ping { data: 1 });
            self.frame("PING", id, 0, self.version, Some(&m));
            self.sent.push(id);
        }
        if self.rng.chance(500) {
            // The ID of a request likely refused (BUSY, TOO_MANY_OUTSTANDING) again, once its
            // answer has had time to come: an answered ID may be reused.
            let ms = self.rng.range(50, 200);
            self.pause(ms);
            let id = *self.sent.iter().rev().find(|&&id| id < last).unwrap_or(&1);
            let m = Message::Echo(message::Echo {
                payload: Bytes::from_static(b"again"),
            });
            self.frame("ECHO", id, 0, self.version, Some(&m));
        }
    }

    /// Slow work, then silence: the idle timer against outstanding work, and the idle period
    /// after it is answered.
    fn slow_then_silence(&mut self) {
        let id = self.fresh_id();
        self.slow_compute(id);
        self.over = true;
    }

    /// Other clients keep workers busy with slow COMPUTEs (background connections).
    fn background_load(&mut self) {
        if self.cfg.concurrent {
            let hello = self.hello_bytes(1, self.version.max(1), 16 << 20, 0);
            let m = Message::Compute(message::Compute {
                cost: self.cfg.slow_cost,
                seed: Bytes::from_static(b"other"),
            });
            let mut body = Vec::new();
            let _ = m.encode_body(self.version, &mut body);
            let mut compute = (8 + body.len() as u32).to_be_bytes().to_vec();
            compute.extend_from_slice(&[self.version, 0x07, 0, 0, 0, 0, 0, 1]);
            compute.extend_from_slice(&body);
            let connections = self.rng.range(1, 3) as usize;
            self.steps.push(Step::Background(crate::step::Parallel {
                connections,
                steps: vec![
                    Step::Send(Send::Hex(Hex(hello))),
                    Step::Send(Send::Hex(Hex(compute))),
                    Step::Judge(Judge::default()),
                ],
            }));
            self.pause(50);
        }
    }

    /// Frames that are not requests (CANCEL of unknown IDs, ERRORs with an ID), spaced a little
    /// under the idle timeout, for longer than it: every complete frame restarts the idle period.
    fn spaced_non_requests(&mut self) {
        let Some(idle) = self.cfg.timeouts.idle else {
            return;
        };
        let idle = idle.as_millis() as u64;
        let gap = (idle / 2).max(1);
        let rounds = 2 * idle / gap + 1;
        for _ in 0..rounds {
            self.pause(gap);
            let id = self.next_id + 1000 + self.rng.range(0, 100) as u32;
            if self.rng.chance(700) {
                let m = Message::Cancel(message::Cancel {});
                self.frame("CANCEL", id, 0, self.version, Some(&m));
            } else {
                let mut e = message::Error::new(ErrorCode::CANCELLED, "x");
                if self.version < 2 {
                    e.retry_after_ms = 0;
                }
                self.frame("ERROR", id, 0, self.version, Some(&Message::Error(e)));
            }
        }
    }

    fn request(&mut self) {
        let id = self.request_id();
        self.request_with(id);
    }

    fn request_with(&mut self, id: u32) {
        let v2 = self.version >= 2;
        let kinds: &[u64] = &[15, 30, 25, 20, if v2 { 8 } else { 2 }];
        let version = if self.rng.chance(20) {
            3 - self.version.min(2)
        } else {
            self.version
        };
        let flags = if self.rng.chance(25) {
            1 << self.rng.below(16)
        } else {
            0
        };
        match self.rng.weighted(kinds) {
            0 => {
                let m = Message::Ping(message::Ping {
                    data: self.rng.below(u64::MAX),
                });
                self.frame("PING", id, flags, version, Some(&m));
            }
            1 => {
                let n = match self.rng.weighted(&[10, 60, 20, 6, 4]) {
                    0 => 0,
                    1 => self.rng.range(1, 64),
                    2 => self.rng.range(1024, 16 * 1024),
                    // Just at, or just past, what the client accepts back (RESPONSE_TOO_LARGE).
                    3 => u64::from(self.client_limit.min(self.cfg.limit)).saturating_sub(12),
                    _ => u64::from(self.client_limit).saturating_sub(11),
                } as usize;
                if 12 + n > self.cfg.limit as usize || n > 2048 {
                    // Large payloads: the header, then a fill (a case file stays readable).
                    let mut head = Vec::new();
                    head.extend_from_slice(&(12 + n as u32).to_be_bytes());
                    head.extend_from_slice(&[version, 0x05]);
                    head.extend_from_slice(&flags.to_be_bytes());
                    head.extend_from_slice(&id.to_be_bytes());
                    head.extend_from_slice(&(n as u32).to_be_bytes());
                    self.send(Send::Hex(Hex(head)));
                    if 12 + n > self.cfg.limit as usize {
                        // FRAME_TOO_LARGE is decided at the Length: a little of the body is enough.
                        self.send(Send::Fill {
                            byte: b'e',
                            len: n.min(1024),
                        });
                        self.over = true;
                    } else {
                        self.send(Send::Fill { byte: b'e', len: n });
                    }
                } else {
                    let payload = Bytes::from(self.rng.octets(n));
                    let m = Message::Echo(message::Echo { payload });
                    self.frame("ECHO", id, flags, version, Some(&m));
                }
            }
            2 => {
                let cost = match self.rng.weighted(&[4, 20, 40, 30, 6]) {
                    0 => 0,
                    1 => 1,
                    2 => self.rng.range(2, 2_000),
                    3 => self.rng.range(20_000, 200_000),
                    _ => (1 << 24) + 1,
                } as u32;
                let seed = Bytes::from({
                    let n = self.rng.range(0, 8) as usize;
                    self.rng.octets(n)
                });
                let m = Message::Compute(message::Compute { cost, seed });
                self.frame("COMPUTE", id, flags, version, Some(&m));
            }
            3 => {
                let n = self.rng.range(0, 12) as usize;
                let values: Vec<i64> = (0..n)
                    .map(|_| match self.rng.below(4) {
                        0 => i64::MAX,
                        1 => i64::MIN,
                        _ => self.rng.below(2000) as i64 - 1000,
                    })
                    .collect();
                if self.rkyv && self.rng.chance(300) {
                    let mut archive = Vec::new();
                    if echowire_codec::body::archive::write_sum(&values, &mut archive).is_ok() {
                        self.raw_frame(0x0C, id, 0x0001, version, archive);
                    }
                } else {
                    let m = Message::Sum(message::Sum { values });
                    self.frame("SUM", id, flags, version, Some(&m));
                }
            }
            _ => {
                let m = Message::Stats(message::Stats {});
                self.frame("STATS", id, flags, version, Some(&m));
            }
        }
        if id != 0 {
            self.sent.push(id);
        }
    }

    /// Requests pipelined in one write, often past the outstanding limit, often behind slow
    /// COMPUTEs so that they stay outstanding.
    fn burst(&mut self) {
        let n = match self.rng.weighted(&[60, 30, 10]) {
            0 => self.rng.range(3, 12),
            1 => self.rng.range(12, 40),
            _ => self.rng.range(40, 130),
        };
        let slow = self.rng.chance(500);
        for k in 0..n {
            let id = self.fresh_id();
            if slow && k < 3 {
                let m = Message::Compute(message::Compute {
                    cost: self.rng.range(100_000, 400_000) as u32,
                    seed: Bytes::from_static(b"s"),
                });
                self.frame("COMPUTE", id, 0, self.version, Some(&m));
            } else if self.rng.chance(500) {
                let m = Message::Ping(message::Ping {
                    data: u64::from(id),
                });
                self.frame("PING", id, 0, self.version, Some(&m));
            } else {
                let m = Message::Echo(message::Echo {
                    payload: Bytes::from(vec![id as u8; self.rng.range(0, 16) as usize]),
                });
                self.frame("ECHO", id, 0, self.version, Some(&m));
            }
            self.sent.push(id);
        }
        if self.rng.chance(300) {
            // Everything as one write (the steps coalesce when the split is whole anyway).
            let ms = self.rng.range(0, 20);
            self.pause(ms);
        }
    }

    fn cancel(&mut self) {
        let id = match self.rng.weighted(&[60, 20, 10, 10]) {
            0 if !self.sent.is_empty() => *self.sent.last().unwrap_or(&1),
            1 if !self.sent.is_empty() => *self.rng.pick(&self.sent[..]),
            2 => 0,
            _ => self.next_id + 100,
        };
        let m = Message::Cancel(message::Cancel {});
        self.frame("CANCEL", id, 0, self.version, Some(&m));
        if self.rng.chance(400) {
            // A request reusing the ID just cancelled (allowed once it is answered).
            let ms = self.rng.range(0, 40);
            self.pause(ms);
            if id != 0 {
                self.request_with(id);
            }
        }
    }

    fn goodbye(&mut self) {
        let id = if self.rng.chance(80) {
            self.rng.range(1, 5) as u32
        } else {
            0
        };
        let text = if self.rng.chance(60) {
            // Invalid UTF-8 in the message: INVALID_UTF8 (§6.3).
            let mut b = Vec::new();
            b.extend_from_slice(&0u16.to_be_bytes());
            b.extend_from_slice(&2u32.to_be_bytes());
            b.extend_from_slice(&[0xC3, 0x28]);
            self.raw_frame(0x0B, id, 0, self.version, b);
            return;
        } else {
            "bye"
        };
        let m = Message::Goodbye(message::Goodbye {
            code: ErrorCode::NO_ERROR,
            message: text.into(),
        });
        self.frame("GOODBYE", id, 0, self.version, Some(&m));
        self.goodbye = true;
    }

    fn client_error(&mut self) {
        let id = if self.rng.chance(600) {
            0
        } else {
            self.rng.range(1, 50) as u32
        };
        let code = ErrorCode::ALL[self.rng.below(ErrorCode::ALL.len() as u64) as usize];
        let mut e = message::Error::new(code, "client error");
        if self.version < 2 {
            e.retry_after_ms = 0;
        }
        let m = Message::Error(e);
        self.frame("ERROR", id, 0, self.version, Some(&m));
        if id == 0 {
            self.over = true;
        }
    }

    fn wrong_direction(&mut self) {
        let id = self.request_id();
        match self.rng.below(4) {
            0 => {
                let m = Message::Pong(message::Pong { data: 1 });
                self.frame("PONG", id, 0, self.version, Some(&m));
            }
            1 => {
                let m = Message::EchoReply(message::EchoReply {
                    payload: Bytes::from_static(b"x"),
                });
                self.frame("ECHO_REPLY", id, 0, self.version, Some(&m));
            }
            2 => {
                let m = Message::SumResult(message::SumResult { count: 0, sum: 0 });
                self.frame("SUM_RESULT", id, 0, self.version, Some(&m));
            }
            _ => {
                let m = Message::Welcome(message::Welcome {
                    version: self.version,
                    max_frame_size: 4096,
                    max_outstanding: 1,
                    capabilities: 0,
                    agent: "x".into(),
                });
                self.frame("WELCOME", id, 0, self.version, Some(&m));
            }
        }
    }

    fn unknown_type(&mut self) {
        let id = self.request_id();
        let ty = if self.rng.chance(500) {
            self.rng.range(0x80, 0xFF) as u8
        } else {
            *self.rng.pick(&[0x00u8, 0x10, 0x42, 0x7F])
        };
        let body = {
            let n = self.rng.range(0, 6) as usize;
            self.rng.octets(n)
        };
        self.raw_frame(ty, id, 0, self.version, body);
        if id != 0 {
            self.sent.push(id);
        }
    }

    fn long_pause(&mut self) {
        let slack = self.cfg.slack_ms;
        let t = &self.cfg.timeouts;
        let options: Vec<u64> = [t.idle, t.drain]
            .iter()
            .flatten()
            .map(|d| d.as_millis() as u64)
            .collect();
        let Some(&base) = options.first() else { return };
        let base = if options.len() > 1 && self.rng.chance(500) {
            options[1]
        } else {
            base
        };
        // Well clear of the window [value - slack, value + 1 s + slack]: short of it, or past it.
        let ms = if self.rng.chance(300) {
            base.saturating_sub(2 * slack + 200).max(1)
        } else {
            base + 1_000 + 2 * slack + 200
        };
        self.pause(ms);
    }

    fn stop_reading(&mut self) {
        // Something large to answer first, so that the output backs up.
        if self.rng.chance(600) {
            for _ in 0..self.rng.range(1, 6) {
                let id = self.fresh_id();
                let n = (self.rng.range(16, 200) * 1024)
                    .min(u64::from(self.cfg.limit.min(self.client_limit)) - 12)
                    as usize;
                let mut head = Vec::new();
                head.extend_from_slice(&(12 + n as u32).to_be_bytes());
                head.extend_from_slice(&[self.version, 0x05, 0, 0]);
                head.extend_from_slice(&id.to_be_bytes());
                head.extend_from_slice(&(n as u32).to_be_bytes());
                self.send(Send::Hex(Hex(head)));
                self.send(Send::Fill { byte: b'b', len: n });
                self.sent.push(id);
            }
        }
        let ms = self.rng.range(50, 600);
        self.steps.push(Step::StopReading(Wait {
            ms: Millis::Number(ms),
        }));
    }

    fn faulty_frame(&mut self) {
        let id = self.request_id();
        match self.rng.below(3) {
            0 => {
                // ECHO whose payload length claims more than the body holds.
                let mut b = Vec::new();
                b.extend_from_slice(&10u32.to_be_bytes());
                b.extend_from_slice(b"abc");
                self.raw_frame(0x05, id, 0, self.version, b);
            }
            1 => {
                // PING with trailing octets.
                let mut b = 5u64.to_be_bytes().to_vec();
                b.push(0xFF);
                self.raw_frame(0x03, id, 0, self.version, b);
            }
            _ => {
                // COMPUTE with its seed cut short.
                let mut b = 7u32.to_be_bytes().to_vec();
                b.extend_from_slice(&9u32.to_be_bytes());
                b.extend_from_slice(b"ab");
                self.raw_frame(0x07, id, 0, self.version, b);
            }
        }
    }

    fn bad_length(&mut self) {
        let length: u32 = if self.rng.chance(500) {
            self.rng.below(8) as u32
        } else {
            self.cfg.limit + 1
        };
        let mut b = length.to_be_bytes().to_vec();
        b.extend_from_slice(&[self.version, 0x05, 0, 0, 0, 0, 0, 9]);
        self.send(Send::Hex(Hex(b)));
        self.over = true;
    }

    // ---- ending ---------------------------------------------------------------------------

    fn ending(&mut self) {
        match self.rng.weighted(&[30, 25, 22, 8, 5, 10]) {
            0 => self.steps.push(Step::HalfClose(true)),
            1 => {
                if !self.goodbye {
                    let m = Message::Goodbye(message::Goodbye {
                        code: ErrorCode::NO_ERROR,
                        message: "done".into(),
                    });
                    self.frame("GOODBYE", 0, 0, self.version, Some(&m));
                }
                if self.rng.chance(400) {
                    self.steps.push(Step::HalfClose(true));
                }
            }
            2 => {} // leave it open: the judge watches (and the timers act)
            3 => self.steps.push(Step::Reset(true)),
            4 => {
                let m = Message::Error(message::Error::new(ErrorCode::INTERNAL_ERROR, "gone"));
                self.frame("ERROR", 0, 0, self.version, Some(&m));
            }
            _ => {
                // A partial frame, then the end of the stream: TRUNCATED_FRAME.
                let id = self.fresh_id();
                let mut b = 20u32.to_be_bytes().to_vec();
                b.extend_from_slice(&[self.version, 0x05, 0, 0]);
                b.extend_from_slice(&id.to_be_bytes());
                let keep = self.rng.range(1, b.len() as u64 - 1) as usize;
                b.truncate(keep);
                self.send(Send::Hex(Hex(b)));
                self.steps.push(Step::HalfClose(true));
            }
        }
    }
}
