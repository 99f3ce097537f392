//! What each request does (spec §4), and the dispatch every I/O model shares.
//!
//! Cheap requests are answered inline on the connection's thread. COMPUTE is *heavy*: it goes to
//! the worker pool, and its response comes back later, possibly after responses to requests that
//! arrived after it (no head-of-line blocking, spec §2.5).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Instant;

use echowire_codec::ErrorCode;
use echowire_codec::message::{SumResult, compute_digest};
use echowire_codec::session::{Event, RequestKind, Response, ServerSession};

use crate::Shared;
use crate::workers::{Job, JobCell, Reply};

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

/// Handles one session event. `reply_to(id)` builds the closure a worker calls with the response.
pub(crate) fn dispatch(
    event: Event,
    session: &mut ServerSession,
    jobs: &mut Jobs,
    shared: &Shared,
    now: Instant,
    reply_to: impl FnOnce(u32) -> Reply,
) {
    match event {
        Event::Request(req) => {
            let id = req.id;
            let response = match req.kind {
                RequestKind::Echo { payload } => Response::EchoReply { payload },
                RequestKind::Sum(s) => Response::SumResult(SumResult::of(s.values)),
                RequestKind::SumRkyv { archive } => {
                    // Validated by the session already; read through the checked path again
                    // (cheap: five comparisons) so no archive is ever read unvalidated (§6.9).
                    match echowire_codec::body::archive::check_sum(&archive) {
                        Ok(a) => {
                            shared
                                .counters
                                .archived_sums
                                .fetch_add(1, Ordering::Relaxed);
                            Response::SumResult(SumResult::of(a.values()))
                        }
                        Err(e) => Response::error(e.code(), e.to_string()),
                    }
                }
                RequestKind::Stats => Response::StatsReply(shared.counters.entries()),
                RequestKind::Compute { cost, seed } => {
                    // The cost range was checked by the session (spec §2.7 rule 10.1).
                    let state = JobCell::new();
                    let job = Job {
                        work: Box::new(move || Response::ComputeResult {
                            digest: compute_digest(cost, &seed),
                        }),
                        state: state.clone(),
                        reply: reply_to(id),
                    };
                    match shared.pool.submit(job) {
                        Ok(()) => {
                            jobs.insert(id, state);
                            return;
                        }
                        Err(_) => {
                            shared
                                .counters
                                .busy_rejections
                                .fetch_add(1, Ordering::Relaxed);
                            Response::Error {
                                code: ErrorCode::BUSY,
                                message: "worker queue is full".into(),
                                retry_after_ms: BUSY_RETRY_MS,
                            }
                        }
                    }
                }
                RequestKind::Application { type_code, .. } => Response::error(
                    ErrorCode::UNKNOWN_TYPE,
                    format!("type 0x{type_code:02X} is not served here"),
                ),
                other => Response::error(
                    ErrorCode::INTERNAL_ERROR,
                    format!("unexpected request {other:?}"),
                ),
            };
            session.respond(id, response, now);
        }
        Event::Cancel { id } => {
            if let Some(state) = jobs.get(&id)
                && state.try_cancel()
            {
                jobs.remove(&id);
                session.respond(
                    id,
                    Response::error(ErrorCode::CANCELLED, "cancelled before it ran"),
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
    inbuf: &mut bytes::BytesMut,
    jobs: &mut Jobs,
    shared: &Shared,
    now: Instant,
    reply_to: impl Fn(u32) -> Reply,
) -> bool {
    let mut progress = false;
    while let Some(ev) = session.poll_event(inbuf, now) {
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
    if session.outbox().is_empty() {
        return Ok(0);
    }
    let n = echowire_codec::io::write_outbox(session.outbox(), stream)?;
    let c = &shared.counters;
    if n > 0 {
        c.bytes_out.fetch_add(n as u64, Ordering::Relaxed);
    }
    // The high-water mark is what stayed queued after a write attempt (spec §8.4's cap).
    c.output_high_water
        .fetch_max(session.outbox().len() as u64, Ordering::Relaxed);
    Ok(n)
}

/// A worker finished job `id`.
pub(crate) fn complete(
    session: &mut ServerSession,
    jobs: &mut Jobs,
    id: u32,
    response: Response,
    now: Instant,
) {
    jobs.remove(&id);
    session.respond(id, response, now);
}
