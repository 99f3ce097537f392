//! The search over the server's hidden choices (see the [module docs](super)).
//!
//! A node is a model state: a clone of the codec's [`ServerSession`], the requests it has handed
//! to the application and not yet seen answered, the frames it has queued and not yet seen
//! sent, how far the client's input has been fed, and how many observed frames are explained.
//! From a node the walk may:
//!
//! 1. **explain the next observed frame** by a queued frame it matches (in an order §3.6.1
//!    allows), or by completing the outstanding request with its ID with an outcome the spec
//!    allows (the response, or BUSY, or CANCELLED after a CANCEL);
//! 2. **feed the next atom** of input — unless a timer, or the signal, must have acted first
//!    because that input was sent after the latest moment they could act;
//! 3. **fire the armed timer** (handshake, idle or drain) inside its window;
//! 4. **deliver SIGTERM** to the connection (`start_drain`), once, near the moment it was sent.
//!
//! A node that has fed every atom and explained every frame is judged at the end: how the
//! connection ended (end of stream, reset, still open) against what the model says, and what
//! the model still owes (an unanswered request, a timer that must have fired by now).

use std::collections::{BTreeMap, HashSet};
use std::hash::{Hash, Hasher};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use echowire_codec::decoder::FrameDecoder;
use echowire_codec::frame::MessageType;
use echowire_codec::message::Message;
use echowire_codec::session::{CloseReason, Event, ServerConfig, ServerSession, SessionState};
use echowire_codec::{ErrorCode, Frame};

use super::matcher::{self, Reading};
use super::observe::{AtomKind, CloseKind, Observation};
use super::rules::Rule;
use super::service::{self, Model, Outcome};
use super::{LINGER_MS, Setup, TIMER_LATENESS_MS, Windows};

/// Most consecutive writes the model reads at once (a hidden choice: they arrived together).
const MAX_READ_TOGETHER: usize = 256;

/// Nodes one judgement may visit before it gives up (inconclusive, never a failure).
pub const NODE_BUDGET: usize = 200_000;

/// The oracle's answer for one connection.
#[derive(Clone, Debug)]
pub enum Verdict {
    /// Some choices the spec permits explain everything observed.
    Pass {
        /// Nodes visited.
        nodes: usize,
        /// The coverage cells the explaining path went through.
        cells: Vec<Cell>,
    },
    /// Nothing is wrong yet, but the model still expects something (a response, a timer, the
    /// close): observe until `until_ms` and judge again.
    Waiting {
        /// Until when (milliseconds since the connection opened).
        until_ms: u64,
        /// What is expected.
        what: String,
    },
    /// No choice the spec permits explains the observation.
    Fail(Divergence),
    /// The budget ran out before an explanation was found.
    Inconclusive {
        /// Nodes visited.
        nodes: usize,
    },
}

/// Where an observation leaves every permitted path.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Divergence {
    /// The observed frame no path explains (its index), if it is a frame.
    pub frame: Option<usize>,
    /// When it was observed (milliseconds since the connection opened).
    pub at_ms: Option<u64>,
    /// What was observed.
    pub observed: String,
    /// What the model allowed at that point.
    pub expected: String,
    /// The rule applied.
    #[serde(skip)]
    pub rule: Rule,
    /// Input fed to the model on the deepest path (octets of the client's stream).
    pub input_offset: u64,
}

impl Divergence {
    /// The rule's sentence, as the reports print it.
    pub fn sentence(&self) -> String {
        let r = self.rule.spec();
        match crate::spec::resolve(&r) {
            Ok(s) => crate::spec::display(s),
            Err(_) => format!("§{}: {}", r.section, r.quote),
        }
    }
}

/// A coverage cell: the state a frame arrived in, its type, and what became of it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct Cell {
    /// `handshake`, `open`, `draining`, `closing`.
    pub state: &'static str,
    /// The type's spec name, `application` or `unknown`.
    pub message: String,
    /// `served`, `ignored`, or the code of the ERROR it got.
    pub outcome: String,
}

/// The cells of one path, shared between clones.
#[derive(Debug)]
struct Cells {
    cell: Cell,
    prev: Option<Rc<Cells>>,
}

#[derive(Clone, Debug)]
struct Pending {
    message: Message<Bytes>,
    cancelled: bool,
    /// When the model received it: the earliest its response can have been queued.
    received_ms: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum DueKind {
    /// A response, or an ERROR answering a rejected frame: any order.
    Response,
    /// WELCOME.
    Welcome,
    /// ERROR with ID 0 ending the connection: last.
    ConnectionError,
    /// GOODBYE the server sent on its own (SHUTTING_DOWN, IDLE_TIMEOUT): any order.
    ServerGoodbye,
    /// GOODBYE NO_ERROR ending a drain: after everything else.
    FinalGoodbye,
    /// ERROR TRUNCATED_FRAME: any order, before the final GOODBYE.
    Truncated,
}

#[derive(Clone, Debug)]
struct Due {
    frame: Frame,
    kind: DueKind,
    /// Not observable before this (a timer's frame: no earlier than the timer's value).
    earliest_ms: u64,
}

#[derive(Clone)]
struct Node {
    s: ServerSession,
    pending: BTreeMap<u32, Pending>,
    due: Vec<Due>,
    /// Atoms fed.
    inp: usize,
    /// Observed frames explained.
    out: usize,
    /// The model's clock (milliseconds): the latest moment it was given.
    clock: u64,
    /// The latest the idle period can have restarted.
    activity_hi: u64,
    /// The latest the current drain or closing phase can have started.
    phase_hi: u64,
    server_drain: bool,
    /// The server was signalled while the client's own drain (GOODBYE, half-close) was under
    /// way: which of the two names the one GOODBYE is the server's choice.
    two_drains: bool,
    signalled: bool,
    /// When the connection ERROR was observed.
    error_sent_ms: Option<u64>,
    /// When the model finished (nothing more to send: the server closes now).
    finished_ms: Option<u64>,
    client_reset: bool,
    /// The server closed the connection at its shutdown before the handshake completed (the
    /// spec's state table has no row for a shutdown in HANDSHAKE: closing at once is as
    /// conformant as answering a HELLO already received, which the codec does).
    shut_in_handshake: bool,
    cells: Option<Rc<Cells>>,
}

/// Judges one connection. `final_look`: the observation cannot be extended (the run is over),
/// so what the model still expects is a failure instead of a reason to wait.
pub fn judge(obs: &Observation, setup: &Setup, final_look: bool) -> Verdict {
    Search::new(obs, setup, final_look).run()
}

struct Search<'a> {
    obs: &'a Observation,
    setup: &'a Setup,
    final_look: bool,
    t0: Instant,
    windows: Windows,
    /// Atom indices, without the signal (a step of its own).
    atoms: Vec<usize>,
    signal_ms: Option<u64>,
    model: Model,
    nodes: usize,
    seen: HashSet<u64>,
    best: Option<((usize, usize), Divergence)>,
    waiting: Option<(u64, String)>,
    /// `ECHOWIRE_ORACLE_TRACE` is set: every node visited is printed on standard error.
    trace: bool,
}

impl<'a> Search<'a> {
    fn new(obs: &'a Observation, setup: &'a Setup, final_look: bool) -> Self {
        let atoms = (0..obs.input.len())
            .filter(|&i| obs.input[i].kind != AtomKind::Signal)
            .collect();
        let signal_ms = obs
            .input
            .iter()
            .find(|a| a.kind == AtomKind::Signal)
            .map(|a| a.at_ms);
        Search {
            obs,
            setup,
            final_look,
            t0: Instant::now(),
            windows: Windows::of(&setup.timeouts),
            atoms,
            signal_ms,
            model: Model::default(),
            nodes: 0,
            seen: HashSet::new(),
            best: None,
            waiting: None,
            trace: std::env::var_os("ECHOWIRE_ORACLE_TRACE").is_some(),
        }
    }

    fn at(&self, ms: u64) -> Instant {
        self.t0 + Duration::from_millis(ms)
    }

    fn ms(&self, t: Instant) -> u64 {
        t.saturating_duration_since(self.t0).as_millis() as u64
    }

    fn config(&self) -> ServerConfig {
        let mut c = ServerConfig {
            max_pending_output: usize::MAX,
            handshake_timeout: Duration::from_millis(self.windows.handshake.0),
            idle_timeout: Some(Duration::from_millis(self.windows.idle.0)),
            drain_timeout: Duration::from_millis(self.windows.drain.0),
            max_version: self.setup.max_version.clamp(1, 2),
            capabilities: self.setup.capabilities,
            ..ServerConfig::default()
        };
        // The limits the server chose are whatever its WELCOME announced (any permitted value).
        let reading = Reading {
            version: None,
            capabilities: 0,
            server_drain: false,
            two_drains: false,
        };
        for o in &self.obs.output {
            if let Ok(Message::Welcome(w)) = matcher::decode(&o.frame, &reading) {
                c.max_frame_size = w.max_frame_size;
                c.max_outstanding = w.max_outstanding;
                break;
            }
        }
        c
    }

    fn run(mut self) -> Verdict {
        if let Some(g) = &self.obs.garbage {
            return Verdict::Fail(Divergence {
                frame: Some(self.obs.output.len()),
                at_ms: None,
                observed: g.clone(),
                expected: "frames (spec 2.1)".into(),
                rule: Rule::Framing,
                input_offset: 0,
            });
        }
        let root = Node {
            s: ServerSession::new(Arc::new(self.config()), self.t0),
            pending: BTreeMap::new(),
            due: Vec::new(),
            inp: 0,
            out: 0,
            clock: 0,
            activity_hi: 0,
            phase_hi: 0,
            server_drain: false,
            two_drains: false,
            signalled: false,
            error_sent_ms: None,
            finished_ms: None,
            client_reset: false,
            shut_in_handshake: false,
            cells: None,
        };
        let mut stack = vec![root];
        while let Some(n) = stack.pop() {
            self.nodes += 1;
            if self.nodes > NODE_BUDGET {
                return Verdict::Inconclusive { nodes: self.nodes };
            }
            if !self.seen.insert(key(&n)) {
                continue;
            }
            if self.trace {
                eprintln!(
                    "oracle: atom {}/{} frame {}/{} state {} clock {} activity<= {} phase<= {} timer {:?} due {} pending {:?}",
                    n.inp,
                    self.atoms.len(),
                    n.out,
                    self.obs.output.len(),
                    state_name(n.s.state()),
                    n.clock,
                    n.activity_hi,
                    n.phase_hi,
                    self.timer(&n).map(|t| (t.lo, t.hi)),
                    n.due.len(),
                    n.pending.keys().collect::<Vec<_>>()
                );
            }
            if n.inp == self.atoms.len() && n.out == self.obs.output.len() {
                match self.end(&n) {
                    End::Pass => {
                        return Verdict::Pass {
                            nodes: self.nodes,
                            cells: cells(&n),
                        };
                    }
                    End::Wait(until, what) => {
                        if self.waiting.as_ref().is_none_or(|(u, _)| until < *u) {
                            self.waiting = Some((until, what));
                        }
                    }
                    End::Fail(d) => self.note(&n, d),
                }
            }
            let children = self.children(&n);
            // Depth first, in the order produced (explanations of the next frame first).
            stack.extend(children.into_iter().rev());
        }
        if let Some((until_ms, what)) = self.waiting {
            if !self.final_look {
                return Verdict::Waiting { until_ms, what };
            }
            let observed = match self.obs.close {
                Some((how, t)) => format!("{} at {t} ms", close_words(how)),
                None => format!("nothing more by {} ms", self.obs.end_ms),
            };
            return Verdict::Fail(Divergence {
                frame: None,
                at_ms: Some(self.obs.end_ms),
                observed,
                expected: what,
                rule: Rule::AnswerExactlyOnce,
                input_offset: 0,
            });
        }
        match self.best {
            Some((_, d)) => Verdict::Fail(d),
            None => Verdict::Inconclusive { nodes: self.nodes },
        }
    }

    /// Remembers a failure; the one on the deepest path is reported.
    fn note(&mut self, n: &Node, d: Divergence) {
        // The deepest path; of equally deep ones the first found, which the search reaches
        // by explaining frames before firing timers (the likeliest story).
        // A path that expected a concrete frame in its place (a response of the same ID) says
        // more than one that expected nothing there: at equal depth it wins.
        let concrete = |d: &Divergence| !matches!(d.rule, Rule::AnswerExactlyOnce | Rule::States);
        let depth = (n.out, n.inp);
        if self
            .best
            .as_ref()
            .is_none_or(|(b, bd)| depth > *b || (depth == *b && concrete(&d) && !concrete(bd)))
        {
            self.best = Some((depth, d));
        }
    }

    fn reading(&self, n: &Node) -> Reading {
        let open = !matches!(
            n.s.state(),
            SessionState::Preface { .. } | SessionState::Handshake
        );
        Reading {
            version: open.then(|| n.s.version()),
            capabilities: n.s.capabilities(),
            server_drain: n.server_drain,
            two_drains: n.two_drains,
        }
    }

    fn input_offset(&self, n: &Node) -> u64 {
        match self.atoms.get(n.inp) {
            Some(&i) => self.obs.input[i].offset,
            // Everything was fed: the length of the client's stream.
            None => self
                .obs
                .input
                .iter()
                .map(|a| match &a.kind {
                    AtomKind::Octets(o) => a.offset + o.len() as u64,
                    _ => a.offset,
                })
                .max()
                .unwrap_or(0),
        }
    }

    // ---- the moves ------------------------------------------------------------------------

    fn children(&mut self, n: &Node) -> Vec<Node> {
        let mut out = Vec::new();
        if n.client_reset || n.shut_in_handshake {
            return out;
        }
        let timer = self.timer(n);
        // 1. Explain the next observed frame, once the model has read what the server must
        //    have read by then.
        if let Some(o) = self.obs.output.get(n.out)
            && !self.must_read_first(n, o.at_ms)
        {
            let (explained, why_not) = self.explain(n, n.out);
            if self.trace && explained.is_empty() {
                eprintln!("oracle:   frame {} not explained: {:?}", n.out, why_not.0);
            }
            if explained.is_empty() && n.inp == self.atoms.len() {
                let reading = self.reading(n);
                let d = Divergence {
                    frame: Some(n.out),
                    at_ms: Some(o.at_ms),
                    observed: format!(
                        "frame {} at {} ms: {}",
                        n.out,
                        o.at_ms,
                        matcher::show(&o.frame, &reading)
                    ),
                    expected: self.expectation(n, &why_not.0),
                    rule: why_not.1,
                    input_offset: self.input_offset(n),
                };
                self.note(n, d);
            }
            out.extend(explained);
        }
        // 2. Feed the next atom, unless a timer or the signal must act first.
        if let Some(&i) = self.atoms.get(n.inp) {
            let a = &self.obs.input[i];
            let timer_first = timer
                .as_ref()
                .is_some_and(|t| t.hi.is_some_and(|hi| hi < a.at_ms));
            let signal_first = !n.signalled
                && self
                    .signal_ms
                    .is_some_and(|t| a.at_ms > t + self.setup.slack_ms);
            if !timer_first && !signal_first {
                let fed = self.feed(n, i);
                // A server may read several writes at once when they arrived together: then
                // what it processes before a close includes them all (document 1.2, §3.8:
                // every frame read before the close is processed). Only where it matters: the
                // atom alone would end the connection (on some path).
                let closes = fed
                    .iter()
                    .any(|c| matches!(c.s.state(), SessionState::Closing));
                out.extend(fed);
                let mut k = if closes { n.inp + 1 } else { usize::MAX };
                let mut together = n.clone();
                while let Some(&j) = self.atoms.get(k)
                    && k - n.inp < MAX_READ_TOGETHER
                    && matches!(self.obs.input[j].kind, AtomKind::Octets(_))
                    && self.obs.input[j].at_ms <= a.at_ms + self.setup.slack_ms
                    && !self.signal_ms.is_some_and(|t| {
                        !n.signalled && self.obs.input[j].at_ms > t + self.setup.slack_ms
                    })
                {
                    let AtomKind::Octets(b) = &self.obs.input[self.atoms[k - 1]].kind else {
                        break;
                    };
                    together.s.handle_input(b);
                    together.inp = k;
                    out.extend(self.feed(&together, j));
                    k += 1;
                }
            }
        }
        // 3. Fire the armed timer.
        if let Some(t) = timer
            && let Some(c) = self.fire(n, &t)
        {
            out.push(c);
        }
        // 4. SIGTERM.
        if let Some(t) = self.signal_ms
            && !n.signalled
        {
            let fed_before = n
                .inp
                .checked_sub(1)
                .map(|k| self.obs.input[self.atoms[k]].at_ms);
            if fed_before.is_none_or(|f| f <= t + self.setup.slack_ms) {
                out.push(self.signal(n, t));
                if n.out == self.obs.output.len()
                    && matches!(
                        n.s.state(),
                        SessionState::Preface { .. } | SessionState::Handshake
                    )
                {
                    let mut c = n.clone();
                    c.signalled = true;
                    c.shut_in_handshake = true;
                    c.clock = c.clock.max(t);
                    c.inp = self.atoms.len();
                    c.due.clear();
                    c.pending.clear();
                    c.finished_ms = Some(c.clock);
                    out.push(c);
                }
            }
        }
        out
    }

    /// Whether the next atom must have been read before something the server did at `t_ms`.
    ///
    /// A server reads what arrives (spec §8.4: it stops reading only when its bounded output
    /// queue is full), so input written well before `t_ms` — more than the tolerance before,
    /// after any period the runner did not read (`latest_ms`) — was read by then. Not while a
    /// lot of output was on its way (over 64 KiB since the input was written): the server's
    /// own output queue may have been full, which is when it may stop reading.
    fn must_read_first(&self, n: &Node, t_ms: u64) -> bool {
        let Some(&i) = self.atoms.get(n.inp) else {
            return false;
        };
        let a = &self.obs.input[i];
        if a.latest_ms + self.setup.slack_ms >= t_ms {
            return false;
        }
        let sent_since: usize = self
            .obs
            .output
            .iter()
            .filter(|o| o.at_ms >= a.at_ms && o.at_ms <= t_ms)
            .map(|o| o.frame.body.len() + 12)
            .sum();
        sent_since <= 64 * 1024
    }

    /// The ways the next observed frame can be explained, and why each candidate failed.
    fn explain(&mut self, n: &Node, k: usize) -> (Vec<Node>, (Vec<String>, Rule)) {
        let o = &self.obs.output[k];
        let reading = self.reading(n);
        let mut out = Vec::new();
        let mut why = Vec::new();
        let mut rule = Rule::Response;
        // A frame the model queued.
        let others = n.due.len();
        for (i, d) in n.due.iter().enumerate() {
            if d.kind == DueKind::FinalGoodbye && others > 1 {
                if matcher::matches(&o.frame, &d.frame, &reading).is_ok() {
                    why.push("the final GOODBYE, but only after every response".into());
                    rule = Rule::FinalGoodbyeAfterResponses;
                }
                continue;
            }
            match matcher::matches(&o.frame, &d.frame, &reading) {
                Ok(()) => {
                    if o.at_ms + self.setup.slack_ms < d.earliest_ms {
                        why.push(format!(
                            "{} no earlier than {} ms",
                            matcher::show(&d.frame, &reading),
                            d.earliest_ms
                        ));
                        rule = Rule::TimerWindow;
                        continue;
                    }
                    let mut c = n.clone();
                    c.out += 1;
                    c.clock = c.clock.max(o.at_ms);
                    c.activity_hi = c.activity_hi.max(o.at_ms);
                    c.due.remove(i);
                    if d.kind == DueKind::ConnectionError {
                        // §3.6.1 rule 3: the last frame; what was not sent is never sent.
                        c.error_sent_ms = Some(o.at_ms);
                        c.due.clear();
                        c.pending.clear();
                    }
                    out.push(c);
                    // Identical queued frames are interchangeable: one is enough.
                    break;
                }
                Err(e) => {
                    if d.frame.header.request_id == o.frame.header.request_id
                        && d.frame.header.msg_type == o.frame.header.msg_type
                    {
                        why.push(format!("{}: {e}", matcher::show(&d.frame, &reading)));
                        rule = rule_of(&d.frame, &reading, &e);
                    } else if d.frame.header.request_id == o.frame.header.request_id {
                        why.push(format!(
                            "{} (observed {e})",
                            matcher::show(&d.frame, &reading)
                        ));
                        rule = rule_of(&d.frame, &reading, &e);
                    }
                }
            }
        }
        // Completing the outstanding request with this ID.
        let id = o.frame.header.request_id;
        if id != 0
            && let Some(p) = n.pending.get(&id)
        {
            let observed = matcher::decode(&o.frame, &reading).ok();
            let outcome = self
                .model
                .outcome(id, &p.message, p.cancelled, observed.as_ref());
            let response = match outcome {
                Outcome::Normal(m) => m,
                Outcome::Error(code) => {
                    let retry = match &observed {
                        Some(Message::Error(e)) => e.retry_after_ms,
                        _ => 0,
                    };
                    service::error_message(code, retry)
                }
            };
            let mut c = n.clone();
            // When was the response queued? Not before the request arrived, and, while the
            // runner reads, not long before it arrived here (loopback delivers at once); but
            // while the runner did not read, any time since that period began (the output was
            // blocked). Timers are judged from the earliest moment; `activity_hi` keeps the
            // latest.
            let slack = self.setup.slack_ms;
            let stalled_since = self
                .obs
                .not_reading
                .iter()
                .filter(|&&(a, b)| a <= o.at_ms && o.at_ms <= b + slack)
                .map(|&(a, _)| a)
                .min();
            let queued_ms = match stalled_since {
                Some(a) => p.received_ms.max(a),
                None => p.received_ms.max(o.at_ms.saturating_sub(slack)),
            };
            let now = self.at(queued_ms);
            c.s.respond(id, &response, now);
            c.pending.remove(&id);
            let queued = self.take(&mut c, o.at_ms);
            match queued.first() {
                Some(first) => match matcher::matches(&o.frame, &first.frame, &reading) {
                    Ok(()) => {
                        c.out += 1;
                        c.clock = c.clock.max(o.at_ms);
                        c.activity_hi = c.activity_hi.max(o.at_ms);
                        c.due.extend(queued.into_iter().skip(1));
                        self.finished(&mut c, o.at_ms);
                        out.push(c);
                    }
                    Err(e) => {
                        why.push(format!(
                            "the response to {} {id}: {} ({e})",
                            matcher::type_name(p.message.msg_type()),
                            matcher::show(&first.frame, &reading)
                        ));
                        rule = rule_of(&first.frame, &reading, &e);
                        if let Ok(Message::Error(e)) = matcher::decode(&o.frame, &reading) {
                            rule = Rule::Code(e.code);
                        }
                    }
                },
                None => why.push(format!(
                    "request {id} is outstanding, but the model cannot answer it now"
                )),
            }
        } else if id != 0 && n.due.iter().all(|d| d.frame.header.request_id != id) {
            why.push(format!(
                "nothing with request ID {id}: no outstanding request has it"
            ));
            rule = Rule::AnswerExactlyOnce;
            if let Ok(Message::Error(e)) = matcher::decode(&o.frame, &reading) {
                rule = Rule::Code(e.code);
            }
        }
        if n.error_sent_ms.is_some() {
            why.push("nothing: the connection ERROR was the last frame".into());
            rule = Rule::ErrorIsLast;
        }
        (out, (why, rule))
    }

    /// What the model allowed at node `n`, in words.
    fn expectation(&self, n: &Node, why: &[String]) -> String {
        let reading = self.reading(n);
        let mut parts = Vec::new();
        if !why.is_empty() {
            parts.push(why.join("; "));
        }
        let queued: Vec<String> = n
            .due
            .iter()
            .map(|d| matcher::show(&d.frame, &reading))
            .collect();
        if !queued.is_empty() {
            parts.push(format!("queued by the model: {}", queued.join(", ")));
        }
        if !n.pending.is_empty() {
            let ids: Vec<String> = n
                .pending
                .iter()
                .map(|(id, p)| {
                    format!(
                        "{} {id}{}",
                        matcher::type_name(p.message.msg_type()),
                        if p.cancelled { " (cancelled)" } else { "" }
                    )
                })
                .collect();
            parts.push(format!("outstanding: {}", ids.join(", ")));
        }
        if parts.is_empty() {
            parts.push("no frame at all here".into());
        }
        format!("in state {}: {}", state_name(n.s.state()), parts.join("; "))
    }

    /// Feeds atom `i`: the nodes it can lead to.
    ///
    /// One hidden choice is made here, between frames: a CANCEL of an outstanding request may
    /// be answered ERROR CANCELLED at once (section 3.7: the request waited and is dropped),
    /// before the server processes the next frame. That ends the request then, so a frame
    /// after it may reuse its ID (section 2.5), take its place under `max_outstanding`, or
    /// find a drain with nothing left outstanding — even when the runner reads the CANCELLED
    /// late (it was not reading, or the machine was busy). The other path keeps the request
    /// outstanding until its response is observed.
    fn feed(&mut self, n: &Node, i: usize) -> Vec<Node> {
        let a = &self.obs.input[i];
        let mut c = n.clone();
        c.inp += 1;
        c.clock = c.clock.max(a.at_ms);
        let before = c.s.state();
        let frames_before = c.s.stats().frames_in;
        match &a.kind {
            AtomKind::Octets(b) => c.s.handle_input(b),
            AtomKind::Eof => c.s.handle_eof(),
            AtomKind::Reset => {
                c.client_reset = true;
                return vec![c];
            }
            AtomKind::Signal => {}
        }
        // A frame is processed at the model's clock, but a server may count it as received
        // from the moment it could have read it (it may read ahead and process later, once
        // its output drains): the idle period is judged from the earliest.
        let received = self.at(a.at_ms);
        let mut fed = Vec::new();
        let mut work: Vec<(Node, Option<&'static str>)> = vec![(c, None)];
        while let Some((mut c, mut first_event)) = work.pop() {
            while let Some(ev) = c.s.poll_event(received) {
                match ev {
                    Event::Request { id, message } => {
                        first_event.get_or_insert("served");
                        c.pending.insert(
                            id,
                            Pending {
                                message,
                                cancelled: false,
                                received_ms: a.at_ms,
                            },
                        );
                    }
                    Event::Cancel { id } => {
                        first_event.get_or_insert("cancel");
                        if let Some(p) = c.pending.get_mut(&id)
                            && !p.cancelled
                        {
                            p.cancelled = true;
                            let mut at_once = c.clone();
                            let cancelled = service::error_message(ErrorCode::CANCELLED, 0);
                            if at_once.s.respond(id, &cancelled, received) {
                                at_once.pending.remove(&id);
                                work.push((at_once, first_event));
                            }
                        }
                    }
                }
            }
            fed.push(self.fed(c, a, before, frames_before, first_event));
        }
        fed
    }

    /// Completes a node after atom `a` was fed and its events handled.
    fn fed(
        &self,
        mut c: Node,
        a: &super::Atom,
        before: SessionState,
        frames_before: u64,
        first_event: Option<&'static str>,
    ) -> Node {
        let queued = self.take(&mut c, a.at_ms);
        if c.s.stats().frames_in > frames_before {
            c.activity_hi = c.activity_hi.max(a.latest_ms);
        }
        if let Some((ty, _)) = a.completes {
            let outcome = queued
                .iter()
                .find(|d| d.frame.header.msg_type == MessageType::Error)
                .and_then(|d| error_code(&d.frame))
                .map(|code| format!("{code:?}"))
                .or_else(|| first_event.map(str::to_string))
                .or_else(|| (!queued.is_empty()).then(|| "served".to_string()))
                .unwrap_or_else(|| "ignored".to_string());
            let cell = Cell {
                state: state_name(before),
                message: type_label(ty),
                outcome,
            };
            c.cells = Some(Rc::new(Cells {
                cell,
                prev: c.cells.take(),
            }));
        }
        c.due.extend(queued);
        if c.s.state() != before {
            c.phase_hi = a.latest_ms + self.setup.slack_ms;
        }
        self.finished(&mut c, a.at_ms);
        c
    }

    /// Takes what the model session queued, classified.
    fn take(&self, c: &mut Node, at_ms: u64) -> Vec<Due> {
        let out = c.s.take_output();
        if out.is_empty() {
            return Vec::new();
        }
        let mut buf = BytesMut::from(&out[..]);
        let mut dec = FrameDecoder::new(u32::MAX);
        let mut frames = Vec::new();
        while let Ok(Some(frame)) = dec.decode(&mut buf) {
            let kind = classify(&frame);
            frames.push(Due {
                frame,
                kind,
                earliest_ms: at_ms,
            });
        }
        // An ERROR with ID 0 that the session closed with is a connection error whatever its
        // code's scope (a HELLO refused for a malformed body, say).
        if matches!(c.s.close_reason(), Some(CloseReason::LocalError(_)))
            && let Some(last) = frames.last_mut()
            && last.kind == DueKind::Response
            && last.frame.header.msg_type == MessageType::Error
            && last.frame.header.request_id == 0
        {
            last.kind = DueKind::ConnectionError;
        }
        frames
    }

    fn finished(&self, c: &mut Node, at_ms: u64) {
        if c.finished_ms.is_none() && c.s.state() == SessionState::Closing {
            c.finished_ms = Some(at_ms);
        }
    }

    /// The armed timer, if any, and its window.
    fn timer(&self, n: &Node) -> Option<Timer> {
        let d = self.ms(n.s.poll_timeout()?);
        let slack = self.setup.slack_ms;
        let late = TIMER_LATENESS_MS + slack;
        let (lo, hi) = match n.s.state() {
            SessionState::Preface { .. } | SessionState::Handshake => {
                (d, self.windows.handshake.1.map(|h| h + late))
            }
            SessionState::Open => {
                let (lo_v, hi_v) = self.windows.idle;
                (d, hi_v.map(|h| (d - lo_v).max(n.activity_hi) + h + late))
            }
            SessionState::Draining | SessionState::Closing => {
                let (lo_v, hi_v) = self.windows.drain;
                let _ = lo_v;
                (d, hi_v.map(|h| n.phase_hi + h + late))
            }
        };
        Some(Timer { lo, hi })
    }

    fn fire(&mut self, n: &Node, t: &Timer) -> Option<Node> {
        let at = t.lo.max(n.clock);
        if t.hi.is_some_and(|hi| at > hi) {
            return None;
        }
        if self.must_read_first(n, at) {
            // Input the server had read by then restarts or changes the timer: feed it first.
            return None;
        }
        let mut c = n.clone();
        c.clock = at;
        let before = c.s.state();
        c.s.handle_timeout(self.at(at));
        if c.s.state() == before && !c.s.is_abortive() {
            return None; // nothing fired (the session disagrees that the timer is due)
        }
        let earliest = t.lo.saturating_sub(self.setup.slack_ms);
        let mut queued = self.take(&mut c, at);
        for d in &mut queued {
            d.earliest_ms = earliest.max(d.earliest_ms.min(t.lo));
        }
        if before == SessionState::Open {
            c.server_drain = true; // GOODBYE IDLE_TIMEOUT
        }
        c.due.extend(queued);
        c.phase_hi = t.hi.unwrap_or(at) + self.setup.slack_ms;
        if c.s.is_abortive() {
            // The drain timeout: nothing queued is sent any more.
            c.due.clear();
            c.pending.clear();
        }
        self.finished(&mut c, at);
        Some(c)
    }

    fn signal(&mut self, n: &Node, t: u64) -> Node {
        let mut c = n.clone();
        c.signalled = true;
        c.clock = c.clock.max(t);
        let before = c.s.state();
        c.two_drains =
            !n.server_drain && matches!(before, SessionState::Draining | SessionState::Closing);
        c.server_drain = true;
        c.s.start_drain(self.at(t));
        let queued = self.take(&mut c, t);
        c.due.extend(queued);
        if c.s.state() != before {
            c.phase_hi = t + self.setup.slack_ms;
        }
        self.finished(&mut c, t);
        c
    }

    // ---- the end --------------------------------------------------------------------------

    fn end(&self, n: &Node) -> End {
        if n.client_reset {
            return End::Pass;
        }
        if n.shut_in_handshake {
            return match self.obs.close {
                Some(_) => End::Pass,
                None => End::Wait(
                    n.clock + LINGER_MS + self.setup.slack_ms,
                    "the close of a connection shut before its handshake".into(),
                ),
            };
        }
        let slack = self.setup.slack_ms;
        let reading = self.reading(n);
        let owed: Vec<String> = n
            .due
            .iter()
            .map(|d| matcher::show(&d.frame, &reading))
            .chain(n.pending.iter().map(|(id, p)| {
                format!(
                    "a response to {} {id}",
                    matcher::type_name(p.message.msg_type())
                )
            }))
            .collect();
        let end_ms = self.obs.close.map_or(self.obs.end_ms, |(_, t)| t);
        // A timer that must have fired by the end.
        if let Some(t) = self.timer(n)
            && let Some(hi) = t.hi
            && !n.s.is_abortive()
        {
            if hi < end_ms {
                return End::Fail(self.div(
                    n,
                    format!("{} at {end_ms} ms", self.ending()),
                    format!(
                        "the {} timer (armed in state {}) to fire between {} and {hi} ms",
                        timer_name(n.s.state()),
                        state_name(n.s.state()),
                        t.lo
                    ),
                    Rule::TimerWindow,
                ));
            }
            if self.obs.close.is_none() {
                return End::Wait(
                    hi + slack,
                    format!("the {} timer to fire by {hi} ms", timer_name(n.s.state())),
                );
            }
        }
        let reason = n.s.close_reason().cloned();
        let error_close = matches!(
            reason,
            Some(CloseReason::LocalError(_) | CloseReason::PeerError(_))
        );
        let finished = n.s.is_finished() || n.s.is_abortive();
        match self.obs.close {
            Some((how, t)) => {
                let abortive = n.s.is_abortive();
                let must_reset = abortive && !self.setup.unix;
                if how == CloseKind::Clean && must_reset {
                    return End::Fail(self.div(
                        n,
                        format!("a clean end of stream at {t} ms"),
                        "an abortive close (reset): the drain timeout expired".into(),
                        Rule::DrainTimeout,
                    ));
                }
                if !finished {
                    if how == CloseKind::Reset {
                        // §3.11: a peer MAY reset at any time; what was outstanding is lost.
                        return End::Pass;
                    }
                    let (expected, rule) = if owed.is_empty() {
                        (
                            format!(
                                "the connection to stay open (state {})",
                                state_name(n.s.state())
                            ),
                            Rule::States,
                        )
                    } else {
                        (
                            format!("before closing: {}", owed.join(", ")),
                            Rule::AnswerExactlyOnce,
                        )
                    };
                    return End::Fail(self.div(
                        n,
                        format!("{} at {t} ms", close_words(how)),
                        expected,
                        rule,
                    ));
                }
                if !error_close && !owed.is_empty() {
                    return End::Fail(self.div(
                        n,
                        format!("{} at {t} ms", close_words(how)),
                        format!("before closing: {}", owed.join(", ")),
                        Rule::AnswerExactlyOnce,
                    ));
                }
                if error_close
                    && matches!(reason, Some(CloseReason::LocalError(_)))
                    && n.error_sent_ms.is_none()
                    && !abortive
                    && how == CloseKind::Clean
                {
                    return End::Fail(self.div(
                        n,
                        format!("{} at {t} ms", close_words(how)),
                        format!("before closing: {}", owed.join(", ")),
                        Rule::ErrorIsLast,
                    ));
                }
                if how == CloseKind::Reset && !abortive && !self.setup.unix {
                    // A lingering close ends with a FIN; a reset is the kernel's answer to
                    // input left unread after the linger deadline, or to a peer that did not
                    // read while the server still had output to write.
                    let since = n.error_sent_ms.or(n.finished_ms).unwrap_or(0);
                    let late_input = self.obs.input.iter().any(|a| {
                        matches!(a.kind, AtomKind::Octets(_))
                            && a.at_ms + slack >= since + LINGER_MS
                    });
                    let stalled = self.obs.not_reading_near(since.saturating_sub(slack), t);
                    if !late_input && !stalled && self.obs.write_failed_ms.is_none() {
                        return End::Fail(
                            self.div(
                                n,
                                format!("a reset at {t} ms"),
                                "a lingering close: the queued frames, then a clean end of stream"
                                    .into(),
                                Rule::Lingering,
                            ),
                        );
                    }
                }
                End::Pass
            }
            None => {
                if finished {
                    let since = n.finished_ms.unwrap_or(0);
                    let by = since + LINGER_MS + slack;
                    if self.obs.end_ms > by && !self.obs.not_reading_near(since, self.obs.end_ms) {
                        return End::Fail(self.div(
                            n,
                            format!("no end of stream by {} ms", self.obs.end_ms),
                            format!(
                                "the close (the model finished at {since} ms{})",
                                if n.s.is_abortive() {
                                    ", abortively"
                                } else {
                                    ""
                                }
                            ),
                            Rule::Lingering,
                        ));
                    }
                    return End::Wait(by, "the server's close".into());
                }
                if !owed.is_empty() {
                    return End::Wait(
                        self.obs.end_ms + 1,
                        format!("still owed: {}", owed.join(", ")),
                    );
                }
                End::Pass
            }
        }
    }

    fn ending(&self) -> &'static str {
        match self.obs.close {
            Some((CloseKind::Clean, _)) => "the end of stream",
            Some((CloseKind::Reset, _)) => "the reset",
            None => "the end of the observation",
        }
    }

    fn div(&self, n: &Node, observed: String, expected: String, rule: Rule) -> Divergence {
        Divergence {
            frame: None,
            at_ms: self.obs.close.map(|(_, t)| t).or(Some(self.obs.end_ms)),
            observed,
            expected: format!("in state {}: {expected}", state_name(n.s.state())),
            rule,
            input_offset: self.input_offset(n),
        }
    }
}

struct Timer {
    lo: u64,
    hi: Option<u64>,
}

enum End {
    Pass,
    Wait(u64, String),
    Fail(Divergence),
}

fn classify(frame: &Frame) -> DueKind {
    match frame.header.msg_type {
        MessageType::Welcome => DueKind::Welcome,
        MessageType::Goodbye => match goodbye_code(frame) {
            Some(ErrorCode::NO_ERROR) => DueKind::FinalGoodbye,
            _ => DueKind::ServerGoodbye,
        },
        MessageType::Error if frame.header.request_id == 0 => match error_code(frame) {
            Some(ErrorCode::TRUNCATED_FRAME) => DueKind::Truncated,
            Some(c) if c.is_connection_scope() => DueKind::ConnectionError,
            // A request error sent with ID 0 (a frame with ID 0, or the ID rule).
            _ => DueKind::Response,
        },
        _ => DueKind::Response,
    }
}

/// An ERROR frame's code (the code is the body's first two octets in every version).
fn error_code(frame: &Frame) -> Option<ErrorCode> {
    (frame.header.msg_type == MessageType::Error)
        .then(|| {
            frame
                .body
                .first_chunk::<2>()
                .map(|b| ErrorCode(u16::from_be_bytes(*b)))
        })
        .flatten()
}

fn goodbye_code(frame: &Frame) -> Option<ErrorCode> {
    frame
        .body
        .first_chunk::<2>()
        .map(|b| ErrorCode(u16::from_be_bytes(*b)))
}

/// The rule a mismatch with `model` breaks.
fn rule_of(model: &Frame, reading: &Reading, why: &str) -> Rule {
    if why.contains("retry_after_ms") {
        return Rule::RetryHint;
    }
    match matcher::decode(model, reading) {
        Ok(Message::Error(e)) => Rule::Code(e.code),
        _ => Rule::Response,
    }
}

fn key(n: &Node) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (n.inp, n.out, n.signalled, n.server_drain, n.client_reset).hash(&mut h);
    n.shut_in_handshake.hash(&mut h);
    n.error_sent_ms.is_some().hash(&mut h);
    super::session_key(&n.s).hash(&mut h);
    n.s.is_abortive().hash(&mut h);
    // Timing is state too: the same input and output with a timer at another moment, or a
    // phase that began at another moment, may go on differently.
    (n.clock, n.activity_hi, n.phase_hi, n.finished_ms).hash(&mut h);
    n.s.poll_timeout().hash(&mut h);
    for (id, p) in &n.pending {
        (id, p.cancelled).hash(&mut h);
    }
    for d in &n.due {
        (d.kind, d.earliest_ms).hash(&mut h);
        d.frame.header.request_id.hash(&mut h);
        d.frame.body.hash(&mut h);
    }
    h.finish()
}

fn cells(n: &Node) -> Vec<Cell> {
    let mut v = Vec::new();
    let mut at = n.cells.clone();
    while let Some(c) = at {
        v.push(c.cell.clone());
        at = c.prev.clone();
    }
    v.reverse();
    v
}

/// A state's name in reports.
pub fn state_name(s: SessionState) -> &'static str {
    match s {
        SessionState::Preface { .. } => "preface",
        SessionState::Handshake => "handshake",
        SessionState::Open => "open",
        SessionState::Draining => "draining",
        SessionState::Closing => "closing",
    }
}

fn timer_name(s: SessionState) -> &'static str {
    match s {
        SessionState::Preface { .. } | SessionState::Handshake => "handshake",
        SessionState::Open => "idle",
        SessionState::Draining | SessionState::Closing => "drain",
    }
}

fn type_label(code: u8) -> String {
    match MessageType::from_u8(code) {
        MessageType::Application(_) => "application".into(),
        MessageType::Unknown(_) => "unknown".into(),
        t => matcher::type_name(t),
    }
}

fn close_words(how: CloseKind) -> &'static str {
    match how {
        CloseKind::Clean => "end of stream",
        CloseKind::Reset => "reset",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Dir, WireEntry};
    use echowire_codec::message::{self, Cancel, Echo};

    fn entry(dir: Dir, at_ms: u64, offset: usize, octets: &[u8]) -> WireEntry {
        WireEntry {
            dir,
            at_ms,
            offset: offset as u64,
            hex: hex::encode(octets),
            note: None,
            at_us: at_ms * 1000,
        }
    }

    fn frame(id: u32, m: Message<Bytes>) -> BytesMut {
        let mut b = BytesMut::new();
        m.encode(1, id, u32::MAX, &mut b).expect("encodes");
        b
    }

    #[test]
    fn a_cancel_answered_at_once_frees_its_id_for_the_same_write() {
        // Fuzz campaign seed 105, session 57: ECHO 5, CANCEL 5 and ECHO 5 again in one write;
        // the server answers CANCELLED at once (freeing ID 5) and serves the second ECHO 5, but
        // the runner reads both answers late (here 690 ms later, beyond the slack). The model
        // must not insist that ID 5 was still outstanding when the third frame was read.
        let mut client = echowire_codec::frame::PREFACE.to_vec();
        let hello = Message::Hello(message::Hello {
            min_version: 1,
            max_version: 1,
            max_frame_size: 1 << 20,
            capabilities: 0,
            agent: message::Str::<Bytes>::from("test"),
        });
        client.extend_from_slice(&frame(0, hello));
        let mut burst = frame(
            5,
            Message::Echo(Echo {
                payload: Bytes::from_static(b"a"),
            }),
        );
        burst.extend_from_slice(&frame(5, Message::Cancel(Cancel {})));
        burst.extend_from_slice(&frame(
            5,
            Message::Echo(Echo {
                payload: Bytes::from_static(b"b"),
            }),
        ));

        // The server: the codec's own session, answering the CANCEL at once.
        let t0 = Instant::now();
        let mut srv = ServerSession::new(Arc::new(ServerConfig::default()), t0);
        srv.handle_input(&client);
        while srv.poll_event(t0).is_some() {}
        let welcome = srv.take_output();
        srv.handle_input(&burst);
        let mut served = 0;
        while let Some(ev) = srv.poll_event(t0) {
            match ev {
                Event::Cancel { id } => {
                    let cancelled = service::error_message(ErrorCode::CANCELLED, 0);
                    assert!(srv.respond(id, &cancelled, t0));
                }
                Event::Request { id, message } => {
                    served += 1;
                    if served == 2 {
                        let Message::Echo(e) = message else {
                            panic!("an ECHO")
                        };
                        let reply = Message::EchoReply(message::EchoReply { payload: e.payload });
                        assert!(srv.respond(id, &reply, t0));
                    }
                }
            }
        }
        assert_eq!(
            served, 2,
            "the codec's session accepts the reuse once CANCELLED is queued"
        );
        let answers = srv.take_output();

        let log = vec![
            entry(Dir::ClientToServer, 0, 0, &client),
            entry(Dir::ServerToClient, 1, 0, &welcome),
            entry(Dir::ClientToServer, 10, client.len(), &burst),
            entry(Dir::ServerToClient, 700, welcome.len(), &answers),
        ];
        let setup = Setup::default();
        let obs = Observation::from_log(&log, 800, setup.slack_ms);
        match judge(&obs, &setup, true) {
            Verdict::Pass { .. } => {}
            other => panic!("expected a pass, got {other:?}"),
        }
    }

    #[test]
    fn a_cancel_answered_at_once_can_end_a_client_drain_before_the_next_frame_of_a_read() {
        // Fuzz campaign seed 105, session 57 (profile tight, shrunk): COMPUTE 1, GOODBYE,
        // CANCEL 1 and ECHO 1, written at once. The Python server answers CANCELLED at once,
        // which leaves the client's drain with nothing outstanding, reads ECHO 1 in the same
        // read and answers it SHUTTING_DOWN (every frame read before the close is processed,
        // section 3.8), then GOODBYE NO_ERROR and FIN. Confirmed 2 of 2 replays as a finding
        // before the model answered a CANCEL between the frames of one read.
        let hexed = |dir, at_ms, offset: u64, h: &str| WireEntry {
            dir,
            at_ms,
            offset,
            hex: h.to_string(),
            note: None,
            at_us: at_ms * 1000,
        };
        let note = |dir, at_ms, offset: u64, n: &str| WireEntry {
            dir,
            at_ms,
            offset,
            hex: String::new(),
            note: Some(n.to_string()),
            at_us: at_ms * 1000,
        };
        let log = vec![
            hexed(
                Dir::ClientToServer,
                0,
                0,
                "894557520d0a1a0a000000230101000000000000010101000001000000010000000d6563686f776972652d66757a7a",
            ),
            hexed(
                Dir::ClientToServer,
                0,
                47,
                "000000100107000000000001000004b000000000",
            ),
            hexed(
                Dir::ClientToServer,
                0,
                67,
                "00000011010b000000000000000000000003627965",
            ),
            hexed(Dir::ClientToServer, 0, 88, "000000080109000000000001"),
            hexed(
                Dir::ClientToServer,
                0,
                100,
                "000000340105000000000001000000289ddb194bb4be6b85842358d437652cd69da536985c3b52c76e7fbde7213614e07b575c423c5e204d",
            ),
            hexed(
                Dir::ServerToClient,
                0,
                0,
                "0000002c010200000000000001000040000000000300000000000000136563686f776972652d707974686f6e2f302e3100000025010a00000000000100170000001763616e63656c6c6564206265666f72652069742072616e00000028010a00000000000100180000001a74686520636f6e6e656374696f6e20697320647261696e696e670000000e010b000000000000000000000000",
            ),
            note(Dir::ServerToClient, 0, 151, "FIN"),
        ];
        // The Python server offers no capabilities (no rkyv).
        let setup = Setup {
            capabilities: 0,
            ..Setup::default()
        };
        let obs = Observation::from_log(&log, 500, setup.slack_ms);
        match judge(&obs, &setup, true) {
            Verdict::Pass { .. } => {}
            other => panic!("expected a pass, got {other:?}"),
        }
    }
}
