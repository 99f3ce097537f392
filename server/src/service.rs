//! What each request does (spec §4), and the dispatch every I/O model shares.
//!
//! Cheap requests are answered inline on the connection's thread. COMPUTE is *heavy*: it goes to
//! the worker pool, and its response comes back later, possibly after responses to requests that
//! arrived after it (no head-of-line blocking, spec §2.5).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Instant;

use echowire_codec::ErrorCode;
use echowire_codec::message::{SumResult, compute_digest};
use echowire_codec::session::{Event, RequestKind, Response, ServerSession};

use crate::Shared;
use crate::workers::{CANCELLED, Job, QUEUED, Reply};

/// How long a client should wait after BUSY (sent in version 2).
const BUSY_RETRY_MS: u32 = 50;

/// Heavy requests of one connection that a worker has not finished: their cancel states.
pub(crate) type Jobs = HashMap<u32, Arc<AtomicU8>>;

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
                    let state = Arc::new(AtomicU8::new(QUEUED));
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
                && state
                    .compare_exchange(QUEUED, CANCELLED, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
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
