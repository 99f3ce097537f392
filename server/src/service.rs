//! What each request does (spec §4), and the dispatch every I/O model shares.
//!
//! Cheap requests are answered inline on the connection's thread. COMPUTE is *heavy*: it goes to
//! the worker pool, and its response comes back later, possibly after responses to requests that
//! arrived after it (no head-of-line blocking, spec §2.5).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Instant;

use bytes::Bytes;
use echowire_codec::ErrorCode;
use echowire_codec::message::{
    Compute, ComputeResult, Echo, EchoReply, Message, RkyvBody, Stats, StatsReply, Sum, SumResult,
    compute_digest,
};
use echowire_codec::service::{Reply, Service, dispatch as serve};
use echowire_codec::session::{Event, ServerSession};

use crate::shared::Shared;
use crate::workers::{Job, JobCell, Reply as JobReply};

/// How long a client should wait after BUSY (sent in version 2).
const BUSY_RETRY_MS: u32 = 50;

/// Heavy requests of one connection that a worker has not finished: their cancel states. One
/// pointer while a connection has never had one (most connections): the map is allocated on the
/// first heavy request and given back by [`Jobs::release`] once the connection is quiet.
#[derive(Debug, Default)]
// The box is the point: 8 bytes in every connection instead of an empty map's 48.
#[allow(clippy::box_collection)]
pub(crate) struct Jobs(Option<Box<HashMap<u32, JobCell>>>);

impl Jobs {
    pub(crate) fn new() -> Self {
        Jobs(None)
    }
    pub(crate) fn insert(&mut self, id: u32, cell: JobCell) {
        self.0.get_or_insert_with(Default::default).insert(id, cell);
    }
    pub(crate) fn get(&self, id: &u32) -> Option<&JobCell> {
        self.0.as_ref()?.get(id)
    }
    pub(crate) fn remove(&mut self, id: &u32) -> Option<JobCell> {
        self.0.as_mut()?.remove(id)
    }
    pub(crate) fn values(&self) -> impl Iterator<Item = &JobCell> {
        self.0.iter().flat_map(|m| m.values())
    }
    pub(crate) fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |m| m.len())
    }
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Frees the map if it is empty.
    pub(crate) fn release(&mut self) {
        if self.is_empty() {
            self.0 = None;
        }
    }
}

/// A connection closed: its queued jobs are not worth running (a running one finishes, and its
/// response finds no session). Every I/O model calls this once, as the connection goes.
pub(crate) fn cancel_all(jobs: &Jobs) {
    for state in jobs.values() {
        state.try_cancel();
    }
}

/// The reference server's answers (spec §4): ECHO, SUM and STATS inline on the connection's
/// thread; COMPUTE is *heavy* and goes to the worker pool, its response coming back later,
/// possibly after responses to requests that arrived after it (no head-of-line blocking,
/// spec §2.5). One per dispatch, borrowing the connection's job map and the server's state.
struct Reference<'a, R> {
    jobs: &'a mut Jobs,
    shared: &'a Shared,
    /// Builds the closure a worker calls with a job's response.
    reply_to: R,
}

impl<R: Fn(u32) -> JobReply> Service for Reference<'_, R> {
    fn echo(&mut self, _id: u32, request: Echo) -> Reply<EchoReply> {
        // The payload is a slice of the receive buffer; a large one is written from there.
        Reply::Now(EchoReply {
            payload: request.payload,
        })
    }

    fn compute(&mut self, id: u32, request: Compute) -> Reply<ComputeResult> {
        // The cost range was checked by the session (spec §2.7 rule 10.1).
        let state = JobCell::new();
        let Compute { cost, seed } = request;
        let job = Job {
            work: Box::new(move || {
                Message::ComputeResult(ComputeResult {
                    digest: compute_digest(cost, &seed),
                })
            }),
            state: state.clone(),
            reply: (self.reply_to)(id),
        };
        match self.shared.pool.submit(job) {
            Ok(()) => {
                self.jobs.insert(id, state);
                Reply::Later
            }
            Err(_) => {
                self.shared
                    .counters
                    .busy_rejections
                    .fetch_add(1, Ordering::Relaxed);
                let mut e =
                    echowire_codec::message::Error::new(ErrorCode::BUSY, "worker queue is full");
                e.retry_after_ms = BUSY_RETRY_MS;
                Reply::Error(e)
            }
        }
    }

    fn sum(&mut self, _id: u32, request: Sum) -> Reply<SumResult> {
        Reply::Now(SumResult::of(request.values))
    }

    fn sum_archived(&mut self, _id: u32, request: RkyvBody) -> Reply<SumResult> {
        // Validated by the session (spec §6.9.3): read through the checked path, which costs
        // five comparisons, so that no archive is ever read unvalidated.
        match echowire_codec::body::archive::check_sum(&request.archive) {
            Ok(a) => {
                self.shared
                    .counters
                    .archived_sums
                    .fetch_add(1, Ordering::Relaxed);
                Reply::Now(SumResult::of(a.values()))
            }
            Err(e) => Reply::error(e.code(), e.to_string()),
        }
    }

    fn stats(&mut self, _id: u32, _request: Stats) -> Reply<StatsReply> {
        Reply::Now(StatsReply::from_pairs(self.shared.counters.entries()))
    }
}

/// Handles one session event. `reply_to(id)` builds the closure a worker calls with the response.
pub(crate) fn dispatch(
    event: Event,
    session: &mut ServerSession,
    jobs: &mut Jobs,
    shared: &Shared,
    now: Instant,
    reply_to: impl Fn(u32) -> JobReply,
) {
    match event {
        Event::Request { id, message } => {
            let mut service = Reference {
                jobs,
                shared,
                reply_to,
            };
            if let Some(response) = serve(&mut service, id, message) {
                let _ = session.respond(id, &response, now);
            }
        }
        Event::Cancel { id } => {
            if let Some(state) = jobs.get(&id)
                && state.try_cancel()
            {
                jobs.remove(&id);
                let _ = session.respond(
                    id,
                    &Message::<Bytes>::error(ErrorCode::CANCELLED, "cancelled before it ran"),
                    now,
                );
            }
        }
    }
}

/// The step every I/O model shares, after a read: the session turns buffered input into events,
/// each is dispatched (inline, or to the worker pool), and protocol replies are queued.
/// `reply_to(id)` builds the closure a worker calls with job `id`'s response. Returns whether
/// any event was handled.
pub(crate) fn process(
    session: &mut ServerSession,
    jobs: &mut Jobs,
    shared: &Shared,
    now: Instant,
    reply_to: impl Fn(u32) -> JobReply,
) -> bool {
    let mut progress = false;
    while let Some(ev) = session.poll_event(now) {
        progress = true;
        dispatch(ev, session, jobs, shared, now, &reply_to);
    }
    progress
}

/// The write half of the shared step: one vectored write of what the session queued (what the
/// socket does not take stays queued), counted; returns the bytes written.
pub(crate) fn flush(
    session: &mut ServerSession,
    stream: &mut impl std::io::Write,
    shared: &Shared,
) -> std::io::Result<usize> {
    // Called on every turn of a connection's loop: nothing to write costs no atomic operation.
    if session.pending_output() == 0 {
        return Ok(0);
    }
    let n = echowire_codec::io::write_output(session, stream)?;
    let c = &shared.counters;
    if n > 0 {
        c.bytes_out.fetch_add(n as u64, Ordering::Relaxed);
    }
    // The high-water mark is what stayed queued after a write attempt (spec §8.4's cap).
    c.output_high_water
        .fetch_max(session.pending_output() as u64, Ordering::Relaxed);
    Ok(n)
}

/// A worker finished job `id`.
pub(crate) fn complete(
    session: &mut ServerSession,
    jobs: &mut Jobs,
    id: u32,
    response: Message,
    now: Instant,
) {
    jobs.remove(&id);
    let _ = session.respond(id, &response, now);
}
