//! The oracle: judges everything a server did on one connection against an executable model of
//! the spec — the codec's own sans-IO [`ServerSession`] plus a model of the service (ECHO,
//! COMPUTE, SUM, STATS results).
//!
//! A fixed case says what must arrive next. The oracle instead asks whether the whole
//! observation — every frame the server sent, with the time it arrived, and how the connection
//! ended — is one the spec permits for the octets the client sent, at the times it sent them.
//! The server's hidden choices are searched, not guessed:
//!
//! * **when** it read each part of the input, relative to when it answered (so a response that
//!   arrives before an ERROR TOO_MANY_OUTSTANDING proves the request it answers was no longer
//!   outstanding, and one that arrives after it proves nothing);
//! * **in which order** it sends responses (spec §3.6.1: any order; a connection error last; a
//!   final GOODBYE after every response);
//! * **which outcome** a request got where several are allowed (a COMPUTE's result or BUSY;
//!   ERROR CANCELLED or the normal response after a CANCEL, §3.7);
//! * **when** its timers fired, within the window spec §8.3 allows (no earlier than the value,
//!   at most one second later), and when it acted on SIGTERM.
//!
//! The search ([`search`]) is a depth-first walk over the interleavings of the client's input
//! (cut where a server can act: after the preface, each Length, each header and each frame)
//! with the observed frames, on clones of the
//! model session; an observed frame is explained either by a frame the model has queued or by
//! completing a request the model has handed to the application, so each step is driven by the
//! observation and most choices are forced. Visited states are remembered, and a budget bounds
//! the walk (an exhausted budget is reported as inconclusive, never as a failure).
//!
//! Two assumptions go beyond the spec's text, and they are what every implementation does:
//!
//! * a request counts as answered (no longer outstanding) from the moment its response is
//!   queued, and a connection has one output queue, so the order frames arrive in is the order
//!   they were queued in. Without it, a server could claim any response was queued long before
//!   it was written, and the limits of §8.4 could never be checked from outside;
//! * a server reads what arrives: input written more than the tolerance before the server did
//!   something was read by then, unless the runner was not reading (its output was blocked) or a
//!   lot of output was on its way (over 64 KiB: the server's output queue may have been full,
//!   the one case §8.4 lets it stop reading). Without it, every late answer could be blamed on a
//!   late read, and a server that ignores an ERROR with ID 0 during a drain, or restarts its
//!   idle timer only on requests, could never be told from one that reads lazily.
//!
//! A response's queueing time is judged the same way: no earlier than its request arrived, and,
//! while the runner read, no earlier than the tolerance before it arrived; timers are held to
//! their windows from those earliest moments, so no timing the spec permits is refused.
//!
//! Modules: [`observe`] turns a run's wire log into an [`Observation`]; [`search`] walks the
//! model; [`matcher`] compares an observed frame with a model frame where the spec leaves
//! fields open (texts, retry hints, STATS counters); [`service`] is the service model.

use std::time::Duration;

use echowire_codec::session::ServerSession;

pub mod matcher;
pub mod observe;
pub mod rules;
pub mod search;
pub mod service;

pub use observe::{Atom, AtomKind, CloseKind, Observation, Observed};
pub use search::{Cell, Divergence, Verdict, judge};

use crate::target::Timeouts;

/// What the oracle knows about the target besides the observation.
#[derive(Clone, Debug)]
pub struct Setup {
    /// The timeouts the target declared (an undeclared one is judged by the spec's range).
    pub timeouts: Timeouts,
    /// Timing tolerance in milliseconds: delivery, scheduling, a busy machine. Timers are
    /// judged within `[value - slack, value + 1 s + slack]`.
    pub slack_ms: u64,
    /// The highest version the target supports (its capability probe).
    pub max_version: u8,
    /// The capabilities the target accepts (its capability probe).
    pub capabilities: u32,
    /// The connection is a Unix-domain socket: there is no reset to tell from a close.
    pub unix: bool,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            timeouts: Timeouts::default(),
            slack_ms: DEFAULT_SLACK_MS,
            max_version: 2,
            capabilities: echowire_codec::message::CAP_DEFINED,
            unix: false,
        }
    }
}

/// The default timing tolerance.
pub const DEFAULT_SLACK_MS: u64 = 300;

/// The spec's range of each timer (§8.3), as `(lowest, highest)` in milliseconds, narrowed to
/// the declared value where there is one. `None` as the highest: the server need not have the
/// timer at all (idle and drain are SHOULDs).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Windows {
    pub handshake: (u64, Option<u64>),
    pub idle: (u64, Option<u64>),
    pub drain: (u64, Option<u64>),
}

impl Windows {
    pub(crate) fn of(t: &Timeouts) -> Windows {
        let ms = |d: Duration| d.as_millis() as u64;
        let exact = |d: Option<Duration>, lo: u64, hi: Option<u64>| match d {
            Some(d) => (ms(d), Some(ms(d))),
            None => (lo, hi),
        };
        Windows {
            handshake: exact(t.handshake, 1_000, Some(30_000)),
            idle: exact(t.idle, 1_000, None),
            drain: exact(t.drain, 1_000, None),
        }
    }
}

/// A model session is compared by what it would do next, not by its buffers.
pub(crate) fn session_key(s: &ServerSession) -> (String, usize) {
    (format!("{:?}", s.state()), s.outstanding())
}

/// How long a timer may be late (spec §8.3: "SHOULD fire no later than its value plus 1 second").
pub const TIMER_LATENESS_MS: u64 = 1_000;
/// The linger deadline the spec recommends (§3.10), after which a server may close even with
/// unread input (a reset).
pub const LINGER_MS: u64 = 1_000;
