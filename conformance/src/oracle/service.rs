//! The service model: what a conformant server answers each request with (spec §4), and which
//! other outcomes the spec lets it choose instead.
//!
//! The normal response comes from the codec's table-generated [`Service`] trait, so a request
//! type added to the table does not compile until the model says how it is answered. The
//! alternatives are the spec's:
//!
//! * ERROR BUSY for COMPUTE, the heavy request (§4.6, §8.4: "MAY answer ERROR BUSY when their
//!   capacity for it is exhausted"), with any retry hint;
//! * ERROR CANCELLED for a request the client cancelled while it was outstanding (§3.7);
//! * for STATS, any counters (§4.11: "names implementation-defined").

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use bytes::Bytes;
use echowire_codec::ErrorCode;
use echowire_codec::message::{self, *};
use echowire_codec::service::{Reply, Service, dispatch};

/// The reference answers, computed on demand.
#[derive(Debug, Default)]
pub struct Model {}

/// Digests at least this costly are remembered for the whole process: a campaign repeats the
/// same slow COMPUTE (a fixed seed, the target's measured slow cost) in most sessions, and
/// without the cache the oracle spent as much CPU re-deriving those digests as the server spent
/// computing them (98% of a campaign's CPU against the embedded reference was SHA-256).
const CACHED_COST: u32 = 10_000;
/// At most this many remembered digests (the cache is cleared when full; a campaign uses a few).
const CACHE_ENTRIES: usize = 256;

/// Remembered digests by `(cost, seed)`.
type Digests = HashMap<(u32, Bytes), [u8; 32]>;

fn digest(cost: u32, seed: &Bytes) -> [u8; 32] {
    if cost < CACHED_COST {
        return compute_digest(cost, seed);
    }
    static CACHE: OnceLock<Mutex<Digests>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let key = (cost, seed.clone());
    if let Some(d) = cache.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
        return *d;
    }
    // Computed outside the lock: two threads may compute the same digest once each.
    let d = compute_digest(cost, seed);
    let mut map = cache.lock().unwrap_or_else(|p| p.into_inner());
    if map.len() >= CACHE_ENTRIES {
        map.clear();
    }
    map.insert(key, d);
    d
}

impl Service for Model {
    fn echo(&mut self, _id: u32, r: Echo) -> Reply<EchoReply> {
        Reply::Now(EchoReply { payload: r.payload })
    }

    fn compute(&mut self, _id: u32, r: Compute) -> Reply<ComputeResult> {
        Reply::Now(ComputeResult {
            digest: digest(r.cost, &r.seed),
        })
    }

    fn sum(&mut self, _id: u32, r: Sum) -> Reply<SumResult> {
        Reply::Now(SumResult::of(r.values))
    }

    fn sum_archived(&mut self, _id: u32, r: RkyvBody) -> Reply<SumResult> {
        match echowire_codec::body::archive::check_sum(&r.archive) {
            Ok(a) => Reply::Now(SumResult::of(a.values())),
            Err(e) => Reply::error(e.code(), e.to_string()),
        }
    }

    fn stats(&mut self, _id: u32, _r: Stats) -> Reply<StatsReply> {
        // Any counters are conformant: the matcher does not compare them.
        Reply::Now(StatsReply {
            entries: Vec::new(),
        })
    }
}

/// The outcome an observed response claims for a request, if the spec permits it.
#[derive(Debug)]
pub enum Outcome {
    /// The type's own response (or what the service model answers).
    Normal(Message<Bytes>),
    /// ERROR with this code (BUSY, CANCELLED), as observed.
    Error(ErrorCode),
}

/// Whether `request` is the heavy kind that may be answered BUSY.
pub fn may_be_busy(request: &Message<Bytes>) -> bool {
    matches!(request, Message::Compute(_))
}

impl Model {
    /// Which outcome `observed` (a frame with the request's ID) claims: BUSY and CANCELLED where
    /// allowed, otherwise the normal response, which the caller then compares field by field.
    pub fn outcome(
        &mut self,
        id: u32,
        request: &Message<Bytes>,
        cancelled: bool,
        observed: Option<&Message<Bytes>>,
    ) -> Outcome {
        if let Some(Message::Error(e)) = observed {
            if e.code == ErrorCode::BUSY && may_be_busy(request) {
                return Outcome::Error(ErrorCode::BUSY);
            }
            if e.code == ErrorCode::CANCELLED && cancelled {
                return Outcome::Error(ErrorCode::CANCELLED);
            }
        }
        match dispatch(self, id, request.clone()) {
            Some(m) => Outcome::Normal(m),
            // The model answers everything now; `Later` is not one of its replies.
            None => Outcome::Error(ErrorCode::INTERNAL_ERROR),
        }
    }
}

/// The ERROR message an outcome is sent as (its text is not compared).
pub fn error_message(code: ErrorCode, retry_after_ms: u32) -> Message<Bytes> {
    let mut e = message::Error::new(code, "");
    e.retry_after_ms = retry_after_ms;
    Message::Error(e)
}
